"""Put memqa's per-task test errors beside the published ones (markdown for docs/results.md).

    memqa evaluate runs/memn2n-1k --format json -o runs/memn2n-1k.json
    python benchmarks/results_table.py runs/memn2n-1k.json --column "PE LS RN"

Several evaluation files (readers of different tasks trained with different settings) make one
table; a task scored in two of them is an error.

The published columns are copied from Sukhbaatar et al. 2015, Table 1 (1k training questions per
task), as listed in the team's reference/published-results.md, and from the authors' own code
re-run (vinhkhuc/MemN2N-babi-python, bechmarks/README.md).
"""

from __future__ import annotations

import argparse
import json

# Test error (%) per task 1..20.
PUBLISHED = {
    "PE LS RN": [0.0, 8.3, 40.3, 2.8, 13.1, 7.6, 17.3, 10.0, 13.2, 15.1, 0.9, 0.2, 0.4, 1.7, 0.0, 1.3, 51.0, 11.1, 82.8, 0.0],
    "PE LS RN joint": [0.0, 11.4, 21.9, 13.4, 14.4, 2.8, 18.3, 9.3, 1.9, 6.5, 0.3, 0.1, 0.2, 6.9, 0.0, 2.7, 40.4, 9.4, 88.0, 0.0],
    "authors' code re-run": [0.1, 8.2, 41.8, 4.4, 13.7, 7.9, 20.3, 11.7, 13.6, 9.7, 0.7, 0.0, 0.3, 0.9, 0.0, 0.4, 51.0, 10.5, 81.4, 0.0],
    "MemNN (strong sup.)": [0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 15.0, 9.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 35.0, 5.0, 64.0, 0.0],
}
FAILED_ABOVE = 5.0  # Weston et al. 2015: a task fails when its error exceeds 5%


def table(scores: dict[int, float], columns: list[str]) -> str:
    header = "| task | memqa error (%) | " + " | ".join(f"{c} (%)" for c in columns) + " |"
    lines = [header, "|---:|---:|" + "---:|" * len(columns)]
    for task in range(1, 21):
        ours = f"{scores[task]:.1f}" if task in scores else "-"
        lines.append(f"| {task} | {ours} | " + " | ".join(f"{PUBLISHED[c][task - 1]:.1f}" for c in columns) + " |")
    tasks = sorted(scores)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    lines.append(f"| **mean** | **{mean([scores[t] for t in tasks]):.1f}** | "
                 + " | ".join(f"{mean([PUBLISHED[c][t - 1] for t in tasks]):.1f}" for c in columns) + " |")
    lines.append(f"| **failed (> 5%)** | **{sum(scores[t] > FAILED_ABOVE for t in tasks)}** | "
                 + " | ".join(str(sum(PUBLISHED[c][t - 1] > FAILED_ABOVE for t in tasks)) for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluation", nargs="+", help="output(s) of `memqa evaluate --format json`")
    parser.add_argument("--column", action="append", choices=sorted(PUBLISHED), help="published column(s) to show")
    args = parser.parse_args()
    scores: dict[int, float] = {}
    for path in args.evaluation:
        with open(path, encoding="utf-8") as file:
            for row in json.load(file)["tasks"]:
                if int(row["task"]) in scores:
                    parser.error(f"task {row['task']} is scored in more than one of {args.evaluation}")
                scores[int(row["task"])] = 100.0 * (1.0 - row["accuracy"])
    print(table(scores, args.column or ["PE LS RN", "authors' code re-run"]))


if __name__ == "__main__":
    main()
