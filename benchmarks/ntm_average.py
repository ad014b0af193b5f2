"""Average an NTM run's snapshots over a stretch of its training into one reader, and pick the stretch on
validation sequences.

    python benchmarks/ntm_average.py RUN --windows 150000-250000,220000-250000 --sizes 10x10,15x10,10x14
                                     --out DIR [--memory-size 128] [--sequences 256] [--seed S]

A run trained with `memqa train ... --snapshot-every N` holds its weights at every N sequences
(RUN/snapshots/seed<S>/<sequences>/). For each window FROM-TO (sequences, both ends included) this averages,
parameter by parameter, the weights of the snapshots taken in it (stochastic weight averaging, Izmailov et al.
2018: an equal average of the weights along the run, which the NTM has no batch statistics to recompute for),
scores the average as `ntm_snapshots.py` scores a snapshot (bit errors per sequence and the share of perfect
sequences at each size, on sequences of their own, neither training's nor the test's), and saves the window
with the fewest bit errors summed over the sizes (the one listed first on a tie) as a reader of its own in
DIR, for `memqa evaluate DIR`. Its config.json's info is the window's last snapshot's, with `average_of` (the
run, the window and the snapshots averaged) added. Give a trained size among --sizes, as for
`ntm_snapshots.py`. `--memory-size N` scores with N memory rows (DIR keeps the trained rows; give
`memqa evaluate --memory-size N` again). `--seed S` chooses the seed of a run that trained several.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ntm_runs import VALID_SEED, load_run, score_at, size_names, sizes, with_rows

from memqa.checkpoint import check_save_target, save_reader
from memqa.errors import MemqaError
from memqa.ntm_pipeline import SequenceModelConfig, ntm_card, snapshot_seed, snapshots
from memqa.tasks.algorithmic import TASKS


def windows(text: str) -> list[tuple[int, int]]:
    """"150000-250000,220000-250000" -> [(150000, 250000), (220000, 250000)]."""
    parsed = []
    for item in text.split(","):
        low, _, high = item.partition("-")
        if not (low.isdigit() and high.isdigit() and int(low) <= int(high)):
            raise argparse.ArgumentTypeError(f"{item!r}: give each window as FROM-TO in sequences, FROM <= TO, "
                                             f"as 150000-250000")
        parsed.append((int(low), int(high)))
    return parsed


def average_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The parameter-by-parameter mean of `states` (summed in float64); tensors that are not floating point must be
    the same in every state and are kept."""
    first = states[0]
    averaged = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            total = torch.stack([state[name].double() for state in states]).mean(0)
            averaged[name] = total.to(tensor.dtype)
        elif all(torch.equal(state[name], tensor) for state in states):
            averaged[name] = tensor
        else:
            raise SystemExit(f"{name}: differs between the snapshots and is not a weight to average")
    return averaged


def averaged_info(info: dict, run: str, taken: list[Path], scores: dict[str, tuple[float, float]],
                  model_config: SequenceModelConfig) -> tuple[dict, str]:
    """(config.json's info, README.md) of the average of the snapshots `taken`, `info` the last one's: its
    validation scores are the snapshot's, not the average's, so they give way to `average_of` and, in the card, the
    average's bit errors on the sizes it was picked on."""
    window = {"run": str(Path(run).resolve()), "from": int(taken[0].name), "to": int(taken[-1].name),
              "snapshots": [int(path.name) for path in taken]}
    info = {key: value for key, value in info.items() if key != "scores"} | {"average_of": window}
    card = ntm_card(info, model_config)
    head, _, rest = card.partition("## Validation")
    scored = "; ".join(f"{name} {errors:.3f} ({100 * perfect:.1f}% perfect)"
                       for name, (errors, perfect) in scores.items())
    note = (f"## Averaged weights\n\nThe mean of the weights of {len(taken)} snapshots of {window['run']}, taken from "
            f"{window['from']} to {window['to']} sequences (`benchmarks/ntm_average.py`). Bit errors per sequence on "
            f"the sequences the window was picked on: {scored}.\n\n")
    return info, head + note + rest[rest.index("## Configuration"):]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--windows", type=windows, required=True, help="e.g. 150000-250000,220000-250000")
    parser.add_argument("--sizes", type=sizes, required=True,
                        help="e.g. 10x10,15x10,10x14 (repeat copy) or 20,40,60 (copy)")
    parser.add_argument("--out", type=Path, required=True, help="the folder the picked average is saved in")
    parser.add_argument("--sequences", type=int, default=256)
    parser.add_argument("--memory-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None, help="the seed's snapshots, for a run of several")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        check_save_target(args.out)
    except MemqaError as error:
        raise SystemExit(str(error)) from None
    found = snapshots(args.run)
    if not found:
        raise SystemExit(f"{args.run}: no snapshots; train with `memqa train ... --snapshot-every N --out {args.run}`")
    seeds = sorted({snapshot_seed(path) for path in found})
    if args.seed is None and len(seeds) > 1:
        raise SystemExit(f"{args.run}: snapshots of seeds {', '.join(map(str, seeds))}; give one with --seed")
    seed = seeds[0] if args.seed is None else args.seed
    if seed not in seeds:
        raise SystemExit(f"{args.run}: no snapshots of seed {seed}; it has seeds {', '.join(map(str, seeds))}")
    found = [path for path in found if snapshot_seed(path) == seed]
    windows_taken = [(low, high, [path for path in found if low <= int(path.name) <= high])
                     for low, high in args.windows]
    for low, high, taken in windows_taken:
        if not taken:
            raise SystemExit(f"{args.run}: no snapshots between {low} and {high} sequences; it has them from "
                             f"{found[0].name} to {found[-1].name}")
    names = size_names(args.sizes)
    print(f"{args.run} (seed {seed}): {len(args.windows)} window{'s' if len(args.windows) > 1 else ''}, "
          f"{args.sequences} validation sequences per size"
          f"{f', {args.memory_size} memory rows' if args.memory_size else ''}")
    print(" | ".join(["window", "snapshots", *names, "sum"]))
    # each snapshot read once, however many windows hold it
    weights = {path: load_run(str(path), *TASKS)[0].state_dict()
               for path in {path for _, _, taken in windows_taken for path in taken}}
    rows = []
    for low, high, taken in windows_taken:
        model, task, info = load_run(str(taken[-1]), *TASKS)  # a model of its own to hold the average
        model.load_state_dict(average_state([weights[path] for path in taken]))
        scored = model if args.memory_size is None else with_rows(model, args.memory_size, args.run)
        cells = score_at(scored.eval(), task, args.sizes, args.sequences, VALID_SEED)
        total = sum(errors for errors, _ in cells)
        rows.append((total, len(rows), low, high, taken, model, info, cells))
        print(" | ".join([f"{low}-{high}", str(len(taken)),
                          *(f"{errors:.3f} ({100 * perfect:.1f}%)" for errors, perfect in cells), f"{total:.3f}"]),
              flush=True)
    total, _, low, high, taken, model, info, cells = min(rows, key=lambda row: row[:2])
    save_reader(args.out, model, None, *averaged_info(info, args.run, taken, dict(zip(names, cells)), model.config))
    print(f"picked: {low}-{high} ({len(taken)} snapshots, {total:.3f} bit errors summed over {', '.join(names)}); "
          f"saved to {args.out}")


if __name__ == "__main__":
    main()
