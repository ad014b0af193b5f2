"""Tables of validation error from benchmarks/valid_sweep.py reports (no test numbers exist in them).

    python benchmarks/valid_table.py runs/sweep/baseline.json runs/sweep/d50.json [...]
    python benchmarks/valid_table.py runs/sweep/base.json+runs/sweep/base-easy.json runs/sweep/relu50.json --choose

Per task and setting: the mean over seeds of the best-epoch validation error (the epoch that training
keeps; optimistic, chosen on these same 100 questions) and of the last-epoch validation error.
Reports joined with "+" are one setting swept in parts (different tasks).

--choose picks a setting per task, by a rule fixed before it was run: the first setting (the default)
unless another one's best-epoch validation error is lower by at least --margin points; then the one
with the lowest (on a tie, the one listed first).

--paired adds, per task, each setting's best-epoch validation error minus the first setting's, run by
run (the runs matched by seed, which in a --folds sweep also names the fold), with its standard error
over those differences: how far a difference stands out of the seed-to-seed (or fold-to-fold) spread.

--epoch picks, per task of each report, the epoch of the last phase whose validation accuracy, averaged
over the runs (the folds of a --folds sweep), is highest (ties: the lower mean validation loss, then the
earlier epoch): where a reader refit on the whole training file (`memqa train --valid-fraction 0
--epochs N`) should stop. `--epochs-for TASK` prints only that N (the epochs after linear start).

    python benchmarks/valid_table.py runs/cv/t3.json --epoch
    memqa train --tasks 3 --valid-fraction 0 --epochs $(python benchmarks/valid_table.py runs/cv/t3.json --epochs-for 3) ..."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def load(spec: str) -> tuple[str, dict[int, list[dict]]]:
    runs: dict[int, list[dict]] = {}
    for path in spec.split("+"):
        report = json.loads(Path(path).read_text())
        runs.update({int(task): task_runs for task, task_runs in report["tasks"].items()})
    return Path(spec.split("+")[0]).stem, runs


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def errors(runs: list[dict], key: str) -> float:
    return 100 * (1 - mean([run[key] for run in runs]))


def table(reports: list[tuple[str, dict[int, list[dict]]]]) -> None:
    tasks = sorted(set.intersection(*(set(runs) for _, runs in reports)))
    if not tasks:
        raise SystemExit("valid_table.py: these reports share no task; compare reports of the same tasks "
                         "(or join the parts of one setting with +)")
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


def paired(reports: list[tuple[str, dict[int, list[dict]]]]) -> None:
    (first_name, first), others = reports[0], reports[1:]
    print("| task | " + " | ".join(f"{name} − {first_name}" for name, _ in others) + " |")
    print("|---:|" + "---:|" * len(others))
    for task in sorted(first):
        cells = []
        base = {run["seed"]: run["best_valid"] for run in first[task]}
        for _, runs in others:
            differences = [100 * (base[run["seed"]] - run["best_valid"]) for run in runs.get(task, []) if run["seed"] in base]
            if len(differences) < 2:
                cells.append("")
                continue
            error = statistics.stdev(differences) / len(differences) ** 0.5
            cells.append(f"{statistics.mean(differences):+.1f} ± {error:.1f} ({len(differences)} runs)")
        print(f"| {task} | " + " | ".join(cells) + " |")


def chosen_epoch(runs: list[dict]) -> tuple[int, int, float]:
    """(epoch counted from 1 across phases, epochs into the last phase, mean validation accuracy there)."""
    histories = [run["history"] for run in runs]
    if len({len(history) for history in histories}) != 1 or any(run["stopped"] for run in runs):
        raise SystemExit("valid_table.py --epoch: the runs of a task differ in length (one stopped or diverged); "
                         "their mean curve is undefined")
    last_phase = histories[0][-1][1]
    start = sum(1 for record in histories[0] if record[1] != last_phase)
    curve = [(mean([h[i][6] for h in histories]), -mean([h[i][5] for h in histories]), -i)
             for i in range(start, len(histories[0]))]
    accuracy, _, index = max(curve)
    return -index + 1, -index + 1 - start, accuracy


def epochs(reports: list[tuple[str, dict[int, list[dict]]]]) -> None:
    print("| setting | task | epoch | epochs after linear start | mean validation error there (%) | "
          "best-epoch error (mean of runs) | last-epoch error |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in reports:
        for task in sorted(runs):
            epoch, after, accuracy = chosen_epoch(runs[task])
            print(f"| {name} | {task} | {epoch} | {after} | {100 * (1 - accuracy):.1f} | "
                  f"{errors(runs[task], 'best_valid'):.1f} | {errors(runs[task], 'last_valid'):.1f} |")


def choose(reports: list[tuple[str, dict[int, list[dict]]]], margin: float) -> None:
    (default_name, default), others = reports[0], reports[1:]
    print(f"| task | chosen | best-epoch validation error (%): {default_name} | best other |")
    print("|---:|---|---:|---:|")
    for task in sorted(default):
        base = errors(default[task], "best_valid")
        candidates = [(errors(runs[task], "best_valid"), index, name) for index, (name, runs) in enumerate(others)
                      if task in runs]
        best, _, name = min(candidates, default=(base, -1, default_name))
        chosen = name if best <= base - margin + 1e-9 else default_name  # 1e-9: "at least" despite float rounding
        print(f"| {task} | {chosen} | {base:.1f} | {best:.1f} ({name}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", help="valid_sweep.py reports; A+B joins the parts of one setting")
    parser.add_argument("--choose", action="store_true", help="pick a setting per task (the first is the default)")
    parser.add_argument("--paired", action="store_true", help="also the run-by-run difference from the first setting")
    parser.add_argument("--margin", type=float, default=2.0, help="points another setting must win by [2]")
    parser.add_argument("--epoch", action="store_true", help="the epoch of the best mean validation accuracy")
    parser.add_argument("--epochs-for", type=int, metavar="TASK", help="print only that epoch's count after linear start")
    args = parser.parse_args()
    reports = [load(spec) for spec in args.reports]
    if args.epochs_for is not None:
        runs = [runs[args.epochs_for] for _, runs in reports if args.epochs_for in runs]
        if len(runs) != 1:
            raise SystemExit(f"valid_table.py --epochs-for {args.epochs_for}: give exactly one report of that task")
        print(chosen_epoch(runs[0])[1])
    elif args.epoch:
        epochs(reports)
    elif args.choose:
        choose(reports, args.margin)
    else:
        table(reports)
        if args.paired:
            print()
            paired(reports)


if __name__ == "__main__":
    main()
