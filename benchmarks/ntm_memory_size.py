"""Does a trained NTM fail on long sequences because its write head comes back round the memory?

    python benchmarks/ntm_memory_size.py runs/rc-s0 ... [--rows 128,256] [--sizes 10x10,15x10,20x10,10x20] [--sequences 64]

An NTM's write head may keep moving while it answers. Training never shows it the cost: memqa's repeat-copy
sequences are at most 10 + 1 + 100 + 1 = 112 steps, fewer than the 128 rows of the memory, so a head that moves a
row a step never comes back to the rows that hold the input. At 20 × 10 (222 steps) it does, and what it writes
there overwrites the sequence it is copying.

For each run and each memory size (the trained one and larger ones, given with no retraining), this prints at
each test size (length x repeats for repeat copy, the length for copy) the bit errors per sequence, and the
write weight that falls during the answer on the rows that hold the input vectors (the first write head's most
weighted row at each of their steps; not the marker rows written at the delimiter), summed over the answer
steps and averaged over the sequences: near 0 for a head that leaves the input alone. Copy and repeat-copy
runs only.

The added rows go in the middle of the memory, where no head starts (`NTMSequenceModel.with_memory_rows`, which
`memqa evaluate RUN --memory-size N` uses too).
"""

from __future__ import annotations

import argparse

import torch

from ntm_runs import load_run, sizes

from memqa.models.ntm import NTMSequenceModel
from memqa.ntm_evaluate import TEST_SEED, score_sizes


@torch.no_grad()
def write_weight_on_input(model: NTMSequenceModel, task, size: int, repeats: int | None, sequences: int) -> float:
    """The first write head's weight on the input's rows during the answer, summed over steps, mean over sequences."""
    options = {} if repeats is None else {"repeats": repeats}
    batch = task.sample(sequences, torch.Generator().manual_seed(TEST_SEED + size), size=size, **options)
    writes = model(batch, trace=True).trace.write_weightings[:, :, 0]  # (B, T, N)
    answer_steps = batch.targets.shape[1]
    input_rows = writes[:, :size].argmax(dim=-1)  # (B, L): the row each input vector was written to most
    on_input = torch.zeros_like(writes[:, 0]).scatter_(1, input_rows, 1.0)  # (B, N): 1 on the input's rows
    return (writes[:, -answer_steps:] * on_input[:, None]).sum(dim=(1, 2)).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--rows", type=lambda text: [int(n) for n in text.split(",")], default=None,
                        help="memory sizes to test (default: the trained one and twice it)")
    parser.add_argument("--sizes", type=sizes, default=None,
                        help="default: 10x10,15x10,20x10,10x20 for repeat copy, 20,40,80,120 for copy")
    parser.add_argument("--sequences", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.runs:
        model, task, info = load_run(path, "copy", "repeat-copy")
        test_sizes = args.sizes or sizes("10x10,15x10,20x10,10x20" if task.name == "repeat-copy" else "20,40,80,120")
        trained = model.cell.config.memory_rows
        print(f"{path} ({task.name}, seed {info['seed']}, initial memory {model.cell.config.initial_memory}, "
              f"trained with {trained} rows)")
        for rows in args.rows or [trained, 2 * trained]:
            larger = model.with_memory_rows(rows)
            cells = []
            for size, repeats in test_sizes:
                score = score_sizes(larger, task, [size], repeats=repeats, sequences=args.sequences)[0]
                weight = write_weight_on_input(larger, task, size, repeats, args.sequences)
                cells.append(f"{size}{'' if repeats is None else f'x{repeats}'} {score.bit_errors:.2f} "
                             f"({score.perfect:.0%} perfect, write weight on the input {weight:.2f})")
            print(f"  {rows} rows: bit errors per sequence " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
