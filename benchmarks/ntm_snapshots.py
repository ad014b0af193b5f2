"""Score every snapshot of an NTM run along its training, and pick one on validation sequences.

    python benchmarks/ntm_snapshots.py RUN --sizes 10x10,15x10,10x14 [--memory-size 128] [--sequences 256] [--test]
                                       [--from SEQUENCES]

A run trained with `memqa train ... --snapshot-every N` holds its weights at every N sequences in
RUN/snapshots/seed<S>/<sequences>/, each a reader of its own (`memqa evaluate RUN/snapshots/seed0/120000`).
The run keeps the weights of its best evaluation on its validation set; this scores all the snapshots at
other sizes (length x repeats for repeat copy, the size alone for the other tasks), e.g. past the trained
lengths and repeat counts at once, so that another choice can be made and its reasons seen. Give a trained size
among them: a snapshot can do well past the trained sizes and still miss the trained end marker
(docs/ntm/repeat-copy.md, session 30).

For each snapshot it prints the run's own validation bit errors at that point, then the bit errors per
sequence (and the share of perfect sequences) at each size, and marks the snapshot with the fewest bit errors
summed over the sizes (the later one on a tie). The sequences are drawn with a seed of their own
(VALID_SEED + size), not the test sequences `memqa evaluate` scores, so that the pick is made without the test;
test the picked snapshot with `memqa evaluate` afterwards. `--test` scores the test sequences instead: to see
what every snapshot does at test, never to pick one. `--memory-size N` runs each with N memory rows (as
`memqa evaluate --memory-size`). `--from N` scores only the snapshots taken at N sequences or later (each
snapshot's numbers do not depend on the others scored, so a long run can be scored in parts).
"""

from __future__ import annotations

import argparse

import torch

from ntm_runs import VALID_SEED, load_run, score_at, size_names, sizes

from memqa.ntm_evaluate import TEST_SEED
from memqa.ntm_pipeline import snapshots
from memqa.tasks.algorithmic import TASKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--sizes", type=sizes, required=True,
                        help="e.g. 10x10,15x10,10x14 (repeat copy) or 20,40,60 (copy)")
    parser.add_argument("--sequences", type=int, default=256)
    parser.add_argument("--memory-size", type=int, default=None)
    parser.add_argument("--test", action="store_true", help="score the test sequences (to look, not to pick)")
    parser.add_argument("--from", dest="first", type=int, default=0, metavar="SEQUENCES",
                        help="score the snapshots taken at this many sequences or later")
    args = parser.parse_args()
    torch.set_num_threads(1)
    found = snapshots(args.run)
    if not found:
        raise SystemExit(f"{args.run}: no snapshots; train with `memqa train ... --snapshot-every N --out {args.run}`")
    found = [path for path in found if int(path.name) >= args.first]
    if not found:
        raise SystemExit(f"{args.run}: no snapshots at {args.first} sequences or later; give a smaller --from")
    seed = TEST_SEED if args.test else VALID_SEED
    names = size_names(args.sizes)
    print(f"{args.run}: {len(found)} snapshot{'s' if len(found) > 1 else ''}, {args.sequences} "
          f"{'test' if args.test else 'validation'} sequences per size"
          f"{f', {args.memory_size} memory rows' if args.memory_size else ''}")
    print(" | ".join(["seed", "sequences", "run's validation", *names, "sum"]))
    rows = []
    for path in found:
        model, task, info = load_run(str(path), *TASKS, memory_size=args.memory_size)
        cells = score_at(model, task, args.sizes, args.sequences, seed)
        total = sum(errors for errors, _ in cells)
        rows.append((total, info["best_sequences"], path))
        print(" | ".join([str(info["seed"]), str(info["best_sequences"]), f"{info['scores']['valid_bit_errors']:.3f}",
                          *(f"{errors:.3f} ({100 * perfect:.1f}%)" for errors, perfect in cells), f"{total:.3f}"]),
              flush=True)
    total, _, path = min(rows, key=lambda row: (row[0], -row[1]))
    print(f"{'lowest at test (not a pick)' if args.test else 'picked'}: {path} ({total:.3f} bit errors summed over "
          f"{', '.join(names)})")


if __name__ == "__main__":
    main()
