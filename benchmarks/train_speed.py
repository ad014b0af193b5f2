"""Training speed of the readers on bAbI: questions per second, wall time, peak memory.

    MEMQA_BABI_DIR=/path/to/tasks_1-20_v1-2 python benchmarks/train_speed.py            # task 1, 100 epochs
    MEMQA_BABI_DIR=... python benchmarks/train_speed.py --tasks 1-20 --schedule default  # all tasks, one run each
    MEMQA_BABI_DIR=... python benchmarks/train_speed.py --reader memnn                  # MemNN, its defaults
    MEMQA_BABI_DIR=... python benchmarks/train_speed.py --reader ntm-qa --tasks 5 --data en-10k --epochs 1 --length-buckets 0

"100 epochs" is the paper's schedule without linear start (§4.2); "default" is memqa's default,
20 linear-start epochs then 100 (as the authors' code runs it). Every epoch is followed by a
full pass over the validation split, as in real training. Times include encoding the data.
With --reader memnn or ntm-qa (the NTM reading stories) both schedules are that reader's defaults
(memqa.config.MEMNN_TRAIN_CONFIG, NTM_QA_TRAIN_CONFIG); --epochs and --length-buckets override them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import time

import torch

from memqa.pipeline import default_configs
from memqa.data.babi import load_task, parse_task_range
from memqa.train import fit


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run(task: int, schedule: str, batch_size: int | None, data: str, reader: str = "memn2n", hops: int | None = None,
        epochs: int | None = None, length_buckets: int | None = None) -> dict:
    model_config, train_config = default_configs(False, reader)
    changes = {"batch_size": batch_size, "epochs": epochs, "length_buckets": length_buckets}
    train_config = dataclasses.replace(train_config, **{k: v for k, v in changes.items() if v is not None})
    if hops is not None:
        model_config = dataclasses.replace(model_config, hops=hops)
    if schedule == "100" and reader == "memn2n":
        train_config = dataclasses.replace(train_config, linear_start_epochs=0)
    started = time.perf_counter()
    examples = load_task(task, "train", data=data)
    result = fit(reader, model_config, train_config, examples)
    seconds = time.perf_counter() - started
    epochs = len(result.history)
    train_questions = round(len(examples) * (1 - train_config.valid_fraction))
    return {"task": task, "epochs": epochs, "seconds": round(seconds, 2),
            "questions_per_second": round(epochs * train_questions / seconds),
            "valid_accuracy": round(result.valid_accuracy, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="1")
    parser.add_argument("--schedule", choices=("100", "default"), default="100")
    parser.add_argument("--batch-size", type=int, default=None, help="[the reader's default, 32]")
    parser.add_argument("--epochs", type=int, default=None, help="override the schedule's epochs")
    parser.add_argument("--length-buckets", type=int, default=None,
                        help="override TrainConfig.length_buckets [the reader's default, 0: random batches]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default="en")
    parser.add_argument("--reader", choices=("memn2n", "memnn", "ntm-qa"), default="memn2n")
    parser.add_argument("--hops", type=int, default=None, help="override the reader's default hops")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    baseline_rss = peak_rss_mib()
    started = time.perf_counter()
    rows = [run(task, args.schedule, args.batch_size, args.data, args.reader, args.hops, args.epochs, args.length_buckets)
            for task in parse_task_range(args.tasks)]
    total = time.perf_counter() - started
    summary = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s)",
               "torch": torch.__version__, "reader": args.reader, "schedule": args.schedule,
               "batch_size": args.batch_size, "length_buckets": args.length_buckets,
               "total_seconds": round(total, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
               "peak_rss_after_import_mib": round(baseline_rss, 1), "runs": rows}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print("| task | epochs | seconds | questions/s | valid acc |\n|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['task']} | {row['epochs']} | {row['seconds']} | {row['questions_per_second']} | {row['valid_accuracy']} |")
    print(f"\ntotal {summary['total_seconds']} s; peak RSS {summary['peak_rss_mib']} MiB "
          f"({summary['peak_rss_after_import_mib']} MiB after importing torch); {summary['machine']}; torch {summary['torch']}")


if __name__ == "__main__":
    main()
