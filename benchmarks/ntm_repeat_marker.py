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
from collections.abc import Callable

import torch

from ntm_runs import load_run

from memqa.nn.ntm import NTMState
from memqa.ntm_evaluate import TEST_SEED

MARKER_STEPS = 2  # the delimiter step and the first answer step


def first_return(rows: list[int]) -> int:
    """The first step whose row was read before (0: none)."""
    return next((step for step in range(1, len(rows)) if rows[step] in rows[:step]), 0)


Edit = Callable[[int, NTMState, list[torch.Tensor]], NTMState]  # (step, state before it, rows written so far)


@torch.no_grad()
def step_through(model, inputs: torch.Tensor, edit: Edit | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the NTM one step at a time, letting `edit` change the state before each step. Returns the
    first read head's most weighted row at each step (B, T) and the outputs (B, T, O)."""
    state = model.cell.initial_state(inputs[:, 0])
    written, reads, outputs = [], [], []  # (B,), (B,), (B, O) per step
    for step in range(inputs.shape[1]):
        if edit is not None:
            state = edit(step, state, written)
        output, state = model.cell.step(inputs[:, step], state)
        written.append(state.write_weightings[:, 0].argmax(dim=-1))
        reads.append(state.read_weightings[:, 0].argmax(dim=-1))
        outputs.append(output)
    return torch.stack(reads, dim=1), torch.stack(outputs, dim=1)


def move_marker(model, length: int, move_to: int) -> Edit:
    """Before the second answer step, copy the marker rows onto the row of vector move_to (1-based) and
    reset them to the learned initial memory."""
    def edit(step: int, state: NTMState, written: list[torch.Tensor]) -> NTMState:
        if step != length + MARKER_STEPS:
            return state
        batch, memory = torch.arange(state.memory.shape[0]), state.memory.clone()
        initial = model.cell.initial_memory.to(memory)
        for marker in written[length:]:
            memory[batch, written[move_to - 1]] = memory[batch, marker]
            memory[batch, marker] = initial[marker]
        return state._replace(memory=memory)
    return edit


def hold_marker(length: int) -> Edit:
    """From the second answer step on, write the marker rows back as they were when the input ended."""
    kept: dict[str, torch.Tensor] = {}

    def edit(step: int, state: NTMState, written: list[torch.Tensor]) -> NTMState:
        if step < length + MARKER_STEPS:
            return state
        if step == length + MARKER_STEPS:
            kept["memory"] = state.memory.clone()
            return state
        batch, memory = torch.arange(state.memory.shape[0]), state.memory.clone()
        for marker in written[length : length + MARKER_STEPS]:
            memory[batch, marker] = kept["memory"][batch, marker]
        return state._replace(memory=memory)
    return edit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--move-to", type=int, default=5)
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()
    if not args.hold and not 2 <= args.move_to <= args.length:  # --hold moves nothing
        raise SystemExit(f"--move-to must be between 2 and --length ({args.length})")
    torch.set_num_threads(1)
    for path in args.runs:
        model, task, info = load_run(path, "repeat-copy")
        batch = task.sample(args.sequences, torch.Generator().manual_seed(TEST_SEED), size=args.length,
                            repeats=args.repeats)
        inputs = batch.inputs
        answer = slice(args.length + 1, None)  # the answer steps
        if args.hold:
            runs = {label: ((step_through(model, inputs, edit)[1][:, answer] > 0).float() != batch.targets).sum(dim=-1).float()
                    for label, edit in (("as written", None), ("marker held", hold_marker(args.length)))}
            shown = "; ".join(f"{label}: {e.sum(dim=1).mean().item():.1f} bit errors/seq, "
                              f"{(e.sum(dim=1) == 0).float().mean().item():.0%} perfect, "
                              f"{e[:, -1].sum().item() / max(e.sum().item(), 1):.0%} of the wrong bits on the last step"
                              for label, e in runs.items())
            print(f"{path} (seed {info['seed']}), {args.length} x {args.repeats}, {args.sequences} sequences: {shown}")
            continue
        edits = (("as written", None), (f"marker moved to vector {args.move_to}", move_marker(model, args.length, args.move_to)))
        counts = {label: Counter(first_return(rows) for rows in step_through(model, inputs, edit)[0][:, answer].tolist())
                  for label, edit in edits}
        shown = "; ".join(f"{label}: " + ", ".join(f"step {p} in {n}" for p, n in c.most_common(3))
                          for label, c in counts.items())
        print(f"{path} (seed {info['seed']}), {args.length} x {args.repeats}, {args.sequences} sequences: {shown}")


if __name__ == "__main__":
    main()
