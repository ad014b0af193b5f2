"""How priority-sort NTMs sort: where each write head puts a vector, and where each read head looks.

    python benchmarks/ntm_priority_heads.py runs/ntm-ps-constant-s1 ... [--sequences 64]

On `--sequences` test sequences of 20 vectors (the test sequences of `memqa evaluate`):
- every write head, while the vectors come in: the mean of each step's largest write weight (1 is a
  one-hot write), and the rank correlation (Spearman) of a vector's priority with the row that gets the
  largest weight. A head that writes by priority (the paper's Figure 17) shows a correlation near ±1;
  one that writes in input order, near 0.
- every read head, at the answer steps: how often its largest weight falls on a row where a sharp write
  head (mean largest weight over 0.5) wrote the vector that step must output. A head that picks the
  vectors in priority order, wherever they were written, shows a share near 1.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import torch

from ntm_runs import load_run

from memqa.ntm_evaluate import TEST_SEED

SHARP = 0.5  # a write head whose mean largest weight is above this writes to one row a step


def ranks(values: torch.Tensor) -> torch.Tensor:
    """(..., T) -> (..., T) the rank of each value along the last dimension, as floats."""
    return values.argsort(dim=-1).argsort(dim=-1).float()


def spearman(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, T), (B, T) -> (B,) the rank correlation of each row pair."""
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(dim=-1, keepdim=True), ry - ry.mean(dim=-1, keepdim=True)
    return (rx * ry).sum(dim=-1) / (rx.norm(dim=-1) * ry.norm(dim=-1))


class HeadMeasures(NamedTuple):
    peak: torch.Tensor  # (Hw,) each write head's mean largest weight at the input steps
    correlation: list[float]  # per write head: the rank correlation of priority with the row written
    hits: torch.Tensor  # (Hr,) each read head's share of answer steps on the wanted vector's row


def measure(priority: torch.Tensor, writes: torch.Tensor, reads: torch.Tensor) -> HeadMeasures:
    """priority (B, T_in); writes (B, T_in, Hw, N) at the input steps; reads (B, T_out, Hr, N) at the answer
    steps, which output the T_out highest-priority vectors, highest first."""
    wanted = priority.argsort(dim=1, descending=True)[:, : reads.shape[1]]  # (B, T_out) input step of each answer
    peak = writes.amax(dim=-1).mean(dim=(0, 1))  # (Hw,)
    written = writes.argmax(dim=-1)  # (B, T_in, Hw) the row each head wrote at each input step
    correlation = [spearman(priority, written[..., h].float()).nanmean().item() for h in range(peak.shape[0])]
    sharp = written[..., peak > SHARP]  # (B, T_in, Hs)
    holding = sharp.gather(1, wanted[..., None].expand(-1, -1, sharp.shape[-1]))  # (B, T_out, Hs)
    looked = reads.argmax(dim=-1)  # (B, T_out, Hr)
    hits = (looked[..., :, None] == holding[..., None, :]).any(dim=-1).float().mean(dim=(0, 1))  # (Hr,)
    return HeadMeasures(peak, correlation, hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--sequences", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.runs:
        model, task, info = load_run(path, "priority-sort")
        size, kept = task.vectors, task.kept(task.vectors)
        batch = task.sample(args.sequences, torch.Generator().manual_seed(TEST_SEED), size=size)
        with torch.no_grad():
            trace = model(batch, trace=True).trace
        peak, correlation, hits = measure(batch.inputs[:, :size, task.bits], trace.write_weightings[:, :size],
                                          trace.read_weightings[:, -kept:])
        write_text = "; ".join(f"write head {h + 1}: peak {peak[h]:.2f}, priority-row correlation "
                               f"{correlation[h]:+.2f}" for h in range(peak.shape[0]))
        read_text = "; ".join(f"read head {h + 1}: {hits[h]:.0%}" for h in range(hits.shape[0]))
        print(f"{path} (seed {info['seed']}): {write_text}. On the wanted vector's row at the answer steps: "
              f"{read_text}")


if __name__ == "__main__":
    main()
