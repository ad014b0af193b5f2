"""The NTM reader's defaults, one changed at a time, on one bAbI task: validation and test accuracy.

    python benchmarks/ntm_reader_ablation.py --task 1 --data en-10k --epochs 10

Each variant trains with the defaults of `memqa train --reader ntm` (seed 0, the same 10% held out) except
the one setting named: one read and one write head (`--heads 1`), the LSTM controller (`--controller lstm`),
no temporal encoding (`--no-temporal`), and no head start (NTMQAConfig(head_start=False): the head layer as
torch initialises it). The kept epoch is the one with the best validation accuracy; the test file is only
scored, never used to choose.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from memqa.config import NTM_QA_TRAIN_CONFIG, NTMQAConfig
from memqa.data.babi import load_task, require_data_dir
from memqa.reader import Reader
from memqa.train import fit

DEFAULT = NTMQAConfig()
VARIANTS = {
    "defaults (feed-forward controller, two heads, temporal encoding, head start)": DEFAULT,
    "--heads 1": dataclasses.replace(DEFAULT, heads=1),
    "--controller lstm": dataclasses.replace(DEFAULT, controller="lstm"),
    "--no-temporal": dataclasses.replace(DEFAULT, encoder=dataclasses.replace(DEFAULT.encoder, temporal=False)),
    "no head start": dataclasses.replace(DEFAULT, head_start=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=int, default=1)
    parser.add_argument("--data", default="en-10k")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data_dir = require_data_dir(args.data_dir)
    train = load_task(args.task, "train", data_dir=data_dir, data=args.data)
    test = load_task(args.task, "test", data_dir=data_dir, data=args.data)
    schedule = dataclasses.replace(NTM_QA_TRAIN_CONFIG, epochs=args.epochs)
    print(f"| task {args.task} ({args.data}), {args.epochs} epochs | best epoch | validation % | test % | seconds |")
    print("|---|---:|---:|---:|---:|")
    for name, config in VARIANTS.items():
        start = time.perf_counter()
        result = fit("ntm-qa", config, schedule, train)
        test_accuracy = Reader(result.model, result.vocab).evaluate(test)
        print(f"| {name} | {result.best_epoch} | {100 * result.best.valid_accuracy:.1f} | {100 * test_accuracy:.1f} | "
              f"{time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
