"""Tables of validation error from benchmarks/valid_sweep.py reports (no test numbers exist in them).

    python benchmarks/valid_table.py runs/sweep/baseline.json runs/sweep/d50.json [...]

Per task and setting: the mean over seeds of the best-epoch validation error (the epoch that training
keeps; optimistic, chosen on these same 100 questions) and of the last-epoch validation error."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(path: str) -> tuple[str, dict[int, list[dict]]]:
    report = json.loads(Path(path).read_text())
    return Path(path).stem, {int(task): runs for task, runs in report["tasks"].items()}


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def errors(runs: list[dict], key: str) -> float:
    return 100 * (1 - mean([run[key] for run in runs]))


def main(paths: list[str]) -> None:
    reports = [load(path) for path in paths]
    tasks = sorted(set.intersection(*(set(runs) for _, runs in reports)))
    print("| task | " + " | ".join(f"{name} best / last" for name, _ in reports) + " |")
    print("|---:|" + "---:|" * len(reports))
    for task in tasks:
        cells = [f"{errors(runs[task], 'best_valid'):.1f} / {errors(runs[task], 'last_valid'):.1f}" for _, runs in reports]
        print(f"| {task} | " + " | ".join(cells) + " |")
    cells = [f"**{mean([errors(runs[t], 'best_valid') for t in tasks]):.2f} / "
             f"{mean([errors(runs[t], 'last_valid') for t in tasks]):.2f}**" for _, runs in reports]
    print(f"| **mean ({len(tasks)} tasks)** | " + " | ".join(cells) + " |")
    # What `memqa train --repeats N` keeps: the run of the best validation accuracy (more optimistic still).
    cells = [f"{mean([100 * (1 - max(r['best_valid'] for r in runs[t])) for t in tasks]):.2f}" for _, runs in reports]
    print("| best run of the seeds (mean) | " + " | ".join(cells) + " |")
    cells = [f"{sum(r['seconds'] for t in tasks for r in runs[t]) / 60:.1f}" for _, runs in reports]
    print("| training minutes (all runs) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
