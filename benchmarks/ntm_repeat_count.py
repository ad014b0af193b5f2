"""Where a repeat count beyond the trained range does its damage: the read head's addressing, or the controller.

    python benchmarks/ntm_repeat_count.py runs/ntm-repeat-copy-s0 ... [--length 10] [--repeats 12,15,20]
                                          [--sequences 64] [--memory-size 128]

For each number of repeats R, on seeded test sequences of `--length` vectors, the reader runs the episode twice
with the same vectors: once with R repeats, once with the most it was trained on (R0, 10 for the paper's task).
The first R0 repetitions of the two answers are the same vectors, so over them the R0 run (which a reader that
learned the task copies right) is the reference. Printed for each R: the repeat channel's value (standardised
as in training: trained up to about 1.57), the wrong vector bits per sequence over those R0 repetitions at R
(and at R0), the share of those answer steps where the first read head's largest weight falls on the same row
as at R0, and the wrong bits when the output layer is given the R run's controller features with the R0 run's
read vectors, and the other way round. A reader whose count does its damage through addressing (the read head
goes to other rows) mends with the R0 reads; one whose count reaches the output through the controller's
features mends with the R0 features. Also printed: the norm of the controller's first-layer input weights from
the repeat channel (how hard a count far outside the trained range pushes on the controller).
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

from ntm_runs import load_run

from memqa.models.ntm import NTMSequenceModel
from memqa.ntm_evaluate import TEST_SEED
from memqa.tasks.algorithmic import SequenceBatch


def run_steps(model: NTMSequenceModel, batch: SequenceBatch) -> tuple[Tensor, Tensor, Tensor]:
    """The episode step by step -> the controller features (B, T, C) and read vectors (B, T, Hr·M) that each
    step's output layer takes, and the first read head's weightings (B, T, N)."""
    cell, inputs = model.cell, batch.inputs
    state = cell.initial_state(inputs[:, 0])
    features, reads, weightings = [], [], []
    for step in range(inputs.shape[1]):
        controller_input = torch.cat([inputs[:, step], state.read_vectors.flatten(1)], dim=1)  # (B, I + Hr·M)
        # the features the step computes inside (a feed-forward controller keeps them in no state), computed again
        features.append(cell.controller(controller_input, state.controller_hidden, state.controller_cell)[0])
        _, state = cell.step(inputs[:, step], state)
        reads.append(state.read_vectors.flatten(1))  # (B, Hr·M)
        weightings.append(state.read_weightings[:, 0])  # (B, N)
    return torch.stack(features, dim=1), torch.stack(reads, dim=1), torch.stack(weightings, dim=1)


def count_weight_norm(model: NTMSequenceModel, channel: int) -> float:
    """The norm of the controller's first-layer input weights from input `channel` (every gate of an LSTM)."""
    layer = model.cell.controller.layers[0]
    weights = layer.weight_ih if isinstance(layer, torch.nn.LSTMCell) else layer.weight  # (G·C, I + Hr·M)
    return weights[:, channel].norm().item()


@torch.no_grad()
def wrong_bits(model: NTMSequenceModel, features: Tensor, reads: Tensor, targets: Tensor) -> float:
    """Wrong vector bits per sequence of the output layer on features (B, S, C) and reads (B, S, Hr·M) against
    targets (B, S, O) (the end-marker channel, the last, left out)."""
    logits = model.cell.output_layer(torch.cat([features, reads], dim=-1))  # (B, S, O)
    return ((logits[..., :-1] > 0).float() != targets[..., :-1]).sum().item() / len(targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--repeats", type=lambda text: [int(r) for r in text.split(",")], default=[12, 15, 20])
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--memory-size", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.runs:
        model, task, info = load_run(path, "repeat-copy", memory_size=args.memory_size)
        trained = task.max_repeats
        if min(args.repeats) <= trained:
            raise SystemExit(f"--repeats: give counts above the trained {trained}, got {min(args.repeats)}")
        steps = args.length * trained  # the first R0 repetitions, the same vectors at R0 and R
        cut = slice(-(steps + 1), -1)  # the R0 run's answer steps but its end marker

        def episode(repeats: int) -> tuple[SequenceBatch, Tensor, Tensor, Tensor]:
            batch = task.sample(args.sequences, torch.Generator().manual_seed(TEST_SEED), size=args.length,
                                repeats=repeats)
            with torch.no_grad():
                return (batch, *run_steps(model, batch))

        reference, ref_features, ref_reads, ref_weightings = episode(trained)
        targets = reference.targets[:, :steps]  # (B, S, O)
        answer = reference.inputs.shape[1] - reference.targets.shape[1]  # the first answer step
        span = slice(answer, answer + steps)
        cells = [f"{args.length} x {trained}: {wrong_bits(model, ref_features[:, cut], ref_reads[:, cut], targets):.1f}"]
        for repeats in args.repeats:
            batch, features, reads, weightings = episode(repeats)
            same_row = (weightings[:, span].argmax(dim=-1) == ref_weightings[:, span].argmax(dim=-1)).float().mean()
            as_run = wrong_bits(model, features[:, span], reads[:, span], targets)
            with_ref_reads = wrong_bits(model, features[:, span], ref_reads[:, cut], targets)
            with_ref_features = wrong_bits(model, ref_features[:, cut], reads[:, span], targets)
            cells.append(f"{args.length} x {repeats} (count {task.normalised_repeats(repeats):.2f}): {as_run:.1f}, "
                         f"read head on the {trained}-repeat row {same_row.item():.0%}, with the {trained}-repeat "
                         f"reads {with_ref_reads:.1f}, with its features {with_ref_features:.1f}")
        norm = count_weight_norm(model, task.bits + 1)  # the repeat channel follows the bits and the delimiter
        print(f"{path} (seed {info['seed']}), repeat-channel weight norm {norm:.2f}, wrong vector bits per sequence "
              f"in the first {trained} repetitions: " + "; ".join(cells))


if __name__ == "__main__":
    main()
