"""Where repeat-copy NTMs first go wrong: inside a repetition, or where one repetition gives way to the next.

    python benchmarks/ntm_repeat_slips.py runs/ntm-repeat-copy-s0 ... [--sizes 10x10,15x3,15x10,20x10] [--sequences 128]
                                         [--memory-size 256] [--evaluate-sequences]

For each length × repeats, on seeded test sequences (never seen in training): the share of sequences with any
wrong bit, and of those, the share whose first wrong output step is the first or second step of a
repetition (the 2nd, 3rd, ...) or the end marker (a boundary), with the mean repetition in which that first
error falls. A reader that loses the vectors goes wrong inside a repetition; one that loses track of
where a repetition ends goes wrong at a boundary, and every later step is then out of phase.
Also printed: the mean over the answer steps of the first read head's largest weight (1: it reads one row at a
time, however long the walk), and the wrong bits per sequence split between the vectors and the end-marker
channel (an end marker given early, or missed, at a boundary is the latter), how many of all the wrong bits fall
off the boundaries (neither a later repetition's first step nor the end: a reader that keeps copying right and
only loses count, as the paper's NTM past 11 repeats, makes none there), the share of the sequences with none
there (every repetition copied, at most the count lost), and the share of sequences whose every repetition is
right (all but the last step: a reader that copies all R repetitions and then does not stop fails only there).
`--show` also prints, for the first failing sequence of each size, the row the first read head weights most at
each answer step and the number of wrong bits there. `--memory-size N` runs each reader with N memory rows
instead of its trained number (as `memqa evaluate --memory-size`), so that a write head that keeps moving does
not come back round over the stored sequence. `--evaluate-sequences` reads, at each size, the test sequences
that `memqa evaluate RUN --lengths L --repeats R --sequences N` scores (seeded by the length) instead of the
script's own (seeded alike for every size), so that the two tell about the same sequences.
"""

from __future__ import annotations

import argparse

import torch

from ntm_runs import load_run, repeat_sizes

from memqa.ntm_evaluate import TEST_SEED, evaluation_batches
from memqa.tasks.algorithmic import SequenceBatch


def off_boundaries(length: int, repeats: int) -> torch.Tensor:
    """(T_out,) True at the answer steps that are neither a later repetition's first step nor the end marker."""
    step = torch.arange(length * repeats + 1)  # (T_out,)
    return (step < length * repeats) & ((step < length) | (step % length != 0))


def count_only(wrong_bits: torch.Tensor, length: int, repeats: int) -> torch.Tensor:
    """(B,) True for the sequences whose wrong bits (B, T_out) all fall on the boundaries: every repetition
    copied, and at most the count (where a repetition ends, and the stop) lost, as the paper's NTM past 11."""
    return (wrong_bits[:, off_boundaries(length, repeats)] == 0).all(dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--sizes", type=repeat_sizes, default=repeat_sizes("10x10,15x3,15x10,20x10"))
    parser.add_argument("--sequences", type=int, default=128)
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--memory-size", type=int, default=None)
    parser.add_argument("--evaluate-sequences", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.runs:
        model, task, info = load_run(path, "repeat-copy", memory_size=args.memory_size)
        cells = []
        for length, repeats in args.sizes:
            if args.evaluate_sequences:  # the ones `memqa evaluate --lengths L --repeats R` scores
                batches = evaluation_batches(task, length, args.sequences, repeats=repeats)
                batch = SequenceBatch(*(torch.cat(parts) for parts in zip(*batches)))
            else:
                batch = task.sample(args.sequences, torch.Generator().manual_seed(TEST_SEED), size=length,
                                    repeats=repeats)
            with torch.no_grad():
                output = model(batch, trace=True)
            logits = output.logits  # (B, T_out, O): L × R vector steps, then the end marker
            wrong_channels = (logits > 0).float() != batch.targets  # (B, T_out, O): the bits, then the end marker
            wrong_bits = wrong_channels.sum(dim=-1)  # (B, T_out)
            vector_bits, marker_bits = (wrong_channels[..., :-1].sum().item() / len(wrong_bits),
                                        wrong_channels[..., -1].sum().item() / len(wrong_bits))  # per sequence
            wrong = wrong_bits > 0
            failed = wrong.any(dim=1)  # (B,)
            copies_right = (~wrong[:, :-1].any(dim=1)).float().mean().item()  # every repetition right, the stop aside
            inside_bits = wrong_bits[:, off_boundaries(length, repeats)].sum().item() / len(wrong_bits)  # per sequence
            only_count = count_only(wrong_bits, length, repeats).float().mean().item()
            first = wrong.float().argmax(dim=1)[failed]  # (F,) the first wrong step of each failed sequence
            boundary = (first >= length) & (first % length <= 1)  # a later repetition's first two steps, or the end
            if args.show and len(first):
                b = int(failed.nonzero()[0])
                reads = output.trace.read_weightings[b, -logits.shape[1]:, 0].argmax(dim=-1)  # (T_out,)
                print(f"{path} {length}x{repeats}, sequence {b}: read rows {reads.tolist()}")
                print(f"{path} {length}x{repeats}, sequence {b}: wrong bits {wrong_bits[b].tolist()}")
            peak = output.trace.read_weightings[:, -logits.shape[1]:, 0].max(dim=-1).values.mean().item()
            if not len(first):
                cells.append(f"{length}x{repeats}: no sequence fails, read peak {peak:.3f}")
                continue
            repetition = (first // length + 1).float().mean().item()
            cells.append(f"{length}x{repeats}: {failed.float().mean().item():.0%} fail, "
                         f"{boundary.float().mean().item():.0%} of them at a boundary, first error in repetition "
                         f"{repetition:.1f}, read peak {peak:.3f}, wrong bits per sequence {vector_bits:.2f} in the "
                         f"vectors and {marker_bits:.2f} on the end-marker channel, {inside_bits:.2f} of them off the "
                         f"boundaries ({only_count:.0%} of the sequences with none there), {copies_right:.0%} of the "
                         "sequences with every repetition right (the last step, where the end marker goes, aside)")
        print(f"{path} (seed {info['seed']}): " + "; ".join(cells))


if __name__ == "__main__":
    main()
