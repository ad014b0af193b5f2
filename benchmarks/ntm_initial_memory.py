"""Landmarks by position in a repeat-copy NTM's learned initial memory, and what they do.

    python benchmarks/ntm_initial_memory.py runs/rc-s0 [--sequences 64]

Prints, for a reader whose every initial-memory row was learned on its own (`--initial-memory rows`), each
row's distance from the mean of rows 40-119 (rows no trained sequence reaches), then the bit errors per
sequence at 5 × 10, 10 × 10 and 15 × 10 as trained and with the initial memory flattened, with no retraining:
every row set to that mean, rows 0-29 only, and rows 100-127 only (to the mean of rows 40-99). A reader that
reads nothing from where its rows start would not care.
"""

from __future__ import annotations

import argparse

import torch

from ntm_runs import load_run

from memqa.ntm_evaluate import score_sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--sequences", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, task, _ = load_run(args.run, "repeat-copy")
    learned = model.cell.initial_memory.detach().clone()  # (N, M), or (1, M) when shared or constant
    if learned.shape[0] < 120:
        raise SystemExit(f"{args.run}: its initial memory has {learned.shape[0]} row(s); this script reads "
                         "readers trained with --initial-memory rows and 128 rows")
    middle = learned[40:120].mean(dim=0)  # (M,)
    distance = (learned - middle).norm(dim=1)  # (N,)
    print("distance from the mean of rows 40-119: "
          + " ".join(f"{row}:{distance[row]:.2f}" for row in [*range(0, 30), *range(119, len(learned))]))
    flattened = {"as trained": learned, "every row": middle.expand_as(learned),
                 "rows 0-29": torch.cat([middle.expand(30, -1), learned[30:]]),
                 "rows 100-127": torch.cat([learned[:100], learned[40:100].mean(dim=0).expand(len(learned) - 100, -1)])}
    for name, memory in flattened.items():
        with torch.no_grad():
            model.cell.initial_memory.copy_(memory)
        scores = score_sizes(model, task, [5, 10, 15], repeats=10, sequences=args.sequences)
        print(f"{name:>13}: " + ", ".join(f"{s.size} x 10 {s.bit_errors:.2f}" for s in scores))


if __name__ == "__main__":
    main()
