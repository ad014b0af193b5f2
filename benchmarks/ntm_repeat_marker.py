"""What makes a repeat-copy NTM jump back to the start of the sequence: a row of its memory, or a count.

    python benchmarks/ntm_repeat_marker.py runs/ntm-repeat-copy-s0 ... [--length 10] [--repeats 3] [--move-to 5]

After the input sequence the NTM has written its vectors to one row each, and at the delimiter step
and the first answer step it writes two more rows (a marker: what it wrote when the sequence ended).
This script runs the test sequences twice: as they are, and with those two rows moved (copied, and
the originals reset to the learned initial memory) onto the row of vector `--move-to`, before the
second answer step. Printed, for both runs: the answer step at which the first read head first
comes back to a row it has read before (its first jump back: about the length, when it reads every
stored row first), as counts over the sequences. A reader that counts steps jumps back where it did;
one that jumps back when it reads the marker row jumps back at about `--move-to`.

`--hold` instead runs them as they are and with the two marker rows held as they were when the input
ended (written back after every later step), and prints the bit errors per sequence and the share of
perfect sequences of both, and the share of the wrong bits that fall on the last answer step (the end
marker's): whether what the NTM writes to its marker during the answer matters, and for what.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch

from memqa.ntm_pipeline import TEST_SEED, load_ntm

MARKER_STEPS = 2  # the delimiter step and the first answer step


def first_return(rows: list[int]) -> int:
    """The first step whose row was read before (0: none)."""
    return next((step for step in range(1, len(rows)) if rows[step] in rows[:step]), 0)


@torch.no_grad()
def walk(model, inputs: torch.Tensor, length: int, move_to: int | None) -> list[list[int]]:
    """The first read head's most weighted row at each answer step, per sequence; with move_to, the
    marker rows are moved onto the row of vector move_to (1-based) before the second answer step."""
    cell, batch = model.cell, torch.arange(inputs.shape[0])
    state = cell.initial_state(inputs[:, 0])
    written, reads = [], []  # (B,) per step
    for step in range(inputs.shape[1]):
        if move_to is not None and step == length + MARKER_STEPS:
            memory, initial = state.memory.clone(), cell.initial_memory.to(state.memory)
            target = written[move_to - 1]
            for marker in written[length : length + MARKER_STEPS]:
                memory[batch, target] = memory[batch, marker]
                memory[batch, marker] = initial[marker]
            state = state._replace(memory=memory)
        _, state = cell.step(inputs[:, step], state)
        written.append(state.write_weightings[:, 0].argmax(dim=-1))
        reads.append(state.read_weightings[:, 0].argmax(dim=-1))
    answer = torch.stack(reads[length + 1:], dim=1)  # (B, T_out)
    return answer.tolist()


@torch.no_grad()
def held_errors(model, inputs: torch.Tensor, targets: torch.Tensor, length: int, hold: bool) -> torch.Tensor:
    """(B, T_out) wrong bits per answer step; with hold, the marker rows keep their content of the end of the input."""
    cell, batch = model.cell, torch.arange(inputs.shape[0])
    state = cell.initial_state(inputs[:, 0])
    written, outputs = [], []
    for step in range(inputs.shape[1]):
        output, state = cell.step(inputs[:, step], state)
        outputs.append(output)
        written.append(state.write_weightings[:, 0].argmax(dim=-1))
        if step == length + MARKER_STEPS - 1:
            markers, kept = written[length:], state.memory.clone()
        elif hold and step >= length + MARKER_STEPS:
            memory = state.memory.clone()
            for marker in markers:
                memory[batch, marker] = kept[batch, marker]
            state = state._replace(memory=memory)
    logits = torch.stack(outputs, dim=1)[:, -targets.shape[1]:]  # (B, T_out, O)
    return ((logits > 0).float() != targets).sum(dim=-1).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--move-to", type=int, default=5)
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()
    if not 2 <= args.move_to <= args.length:
        raise SystemExit(f"--move-to must be between 2 and --length ({args.length})")
    torch.set_num_threads(1)
    for path in args.runs:
        model, task, info = load_ntm(path, "cpu")
        if task.name != "repeat-copy":
            raise SystemExit(f"{path}: an NTM of {task.name}; this script reads repeat-copy runs")
        model.eval()
        batch = task.sample(args.sequences, torch.Generator().manual_seed(TEST_SEED), size=args.length,
                            repeats=args.repeats)
        inputs = batch.inputs
        if args.hold:
            runs = {label: held_errors(model, inputs, batch.targets, args.length, hold)
                    for label, hold in (("as written", False), ("marker held", True))}
            shown = "; ".join(f"{label}: {e.sum(dim=1).mean().item():.1f} bit errors/seq, "
                              f"{(e.sum(dim=1) == 0).float().mean().item():.0%} perfect, "
                              f"{e[:, -1].sum().item() / max(e.sum().item(), 1):.0%} of the wrong bits on the last step"
                              for label, e in runs.items())
            print(f"{path} (seed {info['seed']}), {args.length} x {args.repeats}, {args.sequences} sequences: {shown}")
            continue
        counts = {label: Counter(first_return(rows) for rows in walk(model, inputs, args.length, move))
                  for label, move in (("as written", None), (f"marker moved to vector {args.move_to}", args.move_to))}
        shown = "; ".join(f"{label}: " + ", ".join(f"step {p} in {n}" for p, n in c.most_common(3))
                          for label, c in counts.items())
        print(f"{path} (seed {info['seed']}), {args.length} x {args.repeats}, {args.sequences} sequences: {shown}")


if __name__ == "__main__":
    main()
