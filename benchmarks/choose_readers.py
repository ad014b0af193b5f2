"""Pick one saved reader per bAbI task among several candidates, on validation only, then score the
picks on the official test files (markdown for docs/results.md).

    python benchmarks/choose_readers.py runs/final/paper+runs/final/relu50+... runs/joint [--margin 2]

Each argument is one candidate: a reader folder or a run folder of task<N>/ readers, or several joined
with "+" (readers of different tasks trained with different settings: one candidate). The first
candidate is the default. Every candidate that covers a task is scored on that task's validation split
(`memqa evaluate --split valid`: the questions each reader held out of the training file; a joint
reader's split of a task is the per-task reader's); the rule, the one of valid_table.py --choose, is
fixed before any test file is read: a task keeps the default unless another candidate's validation error
is lower by at least --margin points, then it takes the lowest (on a tie, the one listed first). Only
then are the picked readers scored on the test files.
"""

from __future__ import annotations

import argparse
import os

import torch
from results_table import FAILED_ABOVE, PUBLISHED

from memqa.evaluate import TaskScore, evaluate_tasks, find_readers
from memqa.reader import load_reader


def readers_by_task(spec: str) -> dict[int, str]:
    """{task: the folder to evaluate it with} for one candidate ("A+B" joins parts)."""
    covered: dict[int, str] = {}
    for path in spec.split("+"):
        found = find_readers(path)
        if None in found:  # one reader, of one task or (joint) of several
            tasks = {task: path for task in load_reader(path).info.get("tasks") or []}
        else:
            tasks = {task: str(folder) for task, folder in found.items()}
        overlap = set(tasks) & set(covered)
        if overlap:
            raise SystemExit(f"{spec}: task(s) {sorted(overlap)} are covered twice")
        covered.update(tasks)
    return covered


def score(path: str, task: int, split: str, data_dir: str | None) -> TaskScore:
    return evaluate_tasks(path, [task], data_dir=data_dir, split=split).scores[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", help="reader or run folders; A+B joins parts of one candidate")
    parser.add_argument("--margin", type=float, default=2.0, help="points another candidate must win by [2]")
    parser.add_argument("--data-dir", default=os.environ.get("MEMQA_BABI_DIR"))
    parser.add_argument("--column", default="PE LS RN", choices=sorted(PUBLISHED))
    args = parser.parse_args()
    torch.set_num_threads(1)
    candidates = [readers_by_task(spec) for spec in args.candidates]
    names = [spec.split("+")[0].rstrip("/").split("/")[-1] + ("+..." if "+" in spec else "") for spec in args.candidates]
    picks: dict[int, tuple[int, list[float | None]]] = {}
    for task in sorted(candidates[0]):
        valid = [100 * (1 - score(c[task], task, "valid", args.data_dir).accuracy) if task in c else None
                 for c in candidates]
        best = min((error, index) for index, error in enumerate(valid) if error is not None)
        picks[task] = (best[1] if best[0] <= valid[0] - args.margin else 0, valid)
    # The choice is made; only now are test files read.
    print("| task | picked | " + " | ".join(f"valid error: {n} (%)" for n in names)
          + f" | test error (%) | {args.column} (%) |")
    print("|---:|---|" + "---:|" * len(names) + "---:|---:|")
    errors = {}
    for task, (index, valid) in picks.items():
        errors[task] = score(candidates[index][task], task, "test", args.data_dir).error
        cells = " | ".join("-" if v is None else f"{v:.1f}" for v in valid)
        print(f"| {task} | {names[index]} | {cells} | {errors[task]:.1f} | {PUBLISHED[args.column][task - 1]:.1f} |")
    mean = sum(errors.values()) / len(errors)
    published = [PUBLISHED[args.column][t - 1] for t in errors]
    print(f"| **mean** | | {' | ' * (len(names) - 1)} | **{mean:.1f}** | {sum(published) / len(published):.1f} |")
    print(f"| **failed (> {FAILED_ABOVE:g}%)** | | {' | ' * (len(names) - 1)} | "
          f"**{sum(e > FAILED_ABOVE for e in errors.values())}** | {sum(p > FAILED_ABOVE for p in published)} |")


if __name__ == "__main__":
    main()
