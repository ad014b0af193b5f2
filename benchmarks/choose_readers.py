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
then are the picked readers scored on the test files (the second table, beside a published column).
"""

from __future__ import annotations

import argparse
import os

import torch
from results_table import PUBLISHED, table

from memqa.evaluate import evaluate_tasks, find_readers
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


def errors(candidate: dict[int, str], tasks: list[int], split: str, data_dir: str | None) -> dict[int, float]:
    """{task: error (%)} of a candidate's readers on `split`, each reader folder loaded once."""
    by_folder: dict[str, list[int]] = {}
    for task in tasks:
        if task in candidate:
            by_folder.setdefault(candidate[task], []).append(task)
    return {int(s.task): s.error for folder, covered in by_folder.items()
            for s in evaluate_tasks(folder, covered, data_dir=data_dir, split=split).scores}


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
    tasks = sorted(candidates[0])
    valid = [errors(candidate, tasks, "valid", args.data_dir) for candidate in candidates]
    print("| task | picked | " + " | ".join(f"valid error: {n} (%)" for n in names) + " |")
    print("|---:|---|" + "---:|" * len(names))
    picks: dict[int, int] = {}
    for task in tasks:
        best, index = min((v[task], i) for i, v in enumerate(valid) if task in v)
        picks[task] = index if best <= valid[0][task] - args.margin else 0
        cells = " | ".join(f"{v[task]:.1f}" if task in v else "-" for v in valid)
        print(f"| {task} | {names[picks[task]]} | {cells} |")
    # The choice is made; only now are test files read.
    test = {task: errors(candidates[index], [task], "test", args.data_dir)[task] for task, index in picks.items()}
    print()
    print(table(test, [args.column]))


if __name__ == "__main__":
    main()
