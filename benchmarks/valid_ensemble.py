"""On the VALIDATION split only: the best of N seeded MemN2N runs against an ensemble of them (the mean
of their answer probabilities), per bAbI task.

    MEMQA_BABI_DIR=... python benchmarks/valid_ensemble.py --tasks 2,6 --repeats 10 --out runs/ens.json [--set ...]

Each run keeps its best validation epoch, as `memqa train --repeats N` does, so the single best run and
the ensembles are all chosen on the same validation questions; the single best (a maximum over the
runs) is the more flattered. Printed per task: the best run's validation accuracy, the mean over the
runs, and the ensembles of the 3, 5 and all N runs ranked first by validation. `--set` as in
valid_sweep.py. No test file is read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from valid_sweep import configs

from memqa.data.babi import load_task, parse_task_range
from memqa.data.batching import encode_examples, split_train_valid
from memqa.data.vocab import Vocab
from memqa.train import TrainResult, fit, fit_memory_to_stories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tasks", default="1-20")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--data", default="en")
    parser.add_argument("--set", dest="settings", action="append", default=[])
    args = parser.parse_args()
    torch.set_num_threads(1)
    model_config, train_config = configs(args.settings, args.repeats, 0)
    sizes = sorted({k for k in (3, 5, args.repeats) if k <= args.repeats})
    report: dict[str, object] = {"settings": args.settings, "tasks": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for task in parse_task_range(args.tasks):
        examples = load_task(task, "train", data=args.data)  # the training file only
        runs: list[TrainResult] = []
        fit("memn2n", model_config, train_config, examples, on_repeat_done=lambda _, result: runs.append(result))
        _, valid_examples = split_train_valid(examples, train_config.valid_fraction, train_config.seed)
        memory_size = fit_memory_to_stories(model_config, examples).encoder.memory_size
        batch = encode_examples(valid_examples, Vocab.build(examples), memory_size).batch(slice(None))
        with torch.no_grad():
            probs = torch.stack([run.model.eval()(batch).logits.softmax(dim=-1) for run in runs])  # (R, Q, A)
        accuracy = lambda p: (p.argmax(dim=-1) == batch.answer_ids).float().mean().item()  # noqa: E731
        single = [accuracy(p) for p in probs]
        ranked = sorted(range(len(runs)), key=lambda i: runs[i].selection_key, reverse=True)
        ensembles = {k: accuracy(probs[ranked[:k]].mean(dim=0)) for k in sizes}
        report["tasks"][str(task)] = {"single": single, "best": single[ranked[0]], "ensembles": ensembles}
        args.out.write_text(json.dumps(report))
        print(f"task {task:2d}: best run {single[ranked[0]]:.3f}, mean of runs {sum(single) / len(single):.3f}, "
              + ", ".join(f"ensemble of {k} {v:.3f}" for k, v in ensembles.items()), flush=True)


if __name__ == "__main__":
    main()
