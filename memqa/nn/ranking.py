"""Hard memory selection by pairwise comparison, and the margin ranking loss that trains it
(Weston, Chopra, Bordes 2014, "Modeling write time" and eqs. 6-8).

With write time, memories are compared in pairs: s_Ot(x, y, y') > 0 means y is preferred to y'.
The paper finds the winner with a loop that keeps the current winner and compares it with the
next memory; here every pair is scored at once, a (B, S, S) tensor of comparisons, and the pick
is the memory whose worst comparison is best (argmax_i min_j). When one memory beats every other
(what the loss trains for), both rules pick it; the batched rule does not depend on memory order.

Shapes use the glossary of memqa.nn: B batch, S memory slots.
"""

from __future__ import annotations

import torch
from torch import Tensor


def write_order(ages: Tensor, real: Tensor) -> Tensor:
    """+1 where slot i was written before slot j, -1 after, 0 for pairs with a slot that is not a
    real sentence. ages: (B, S) sentences since the write (0 = latest); real: (B, S). Returns (B, S, S)."""
    order = torch.sign(ages[:, :, None] - ages[:, None, :]).to(torch.float32)  # (B, S, S)
    return order * (real[:, :, None] & real[:, None, :])  # (B, S, S)


def written_after(ages: Tensor, real: Tensor, last: Tensor) -> Tensor:
    """Which real slots were written after slot `last`. ages, real: (B, S); last: (B,) slot ids.
    Returns (B, S) float 0/1: the feature "the fact found last is older than y"."""
    last_age = ages.gather(1, last[:, None])  # (B, 1)
    return ((ages < last_age) & real).to(torch.float32)  # (B, S)


def compare_memories(scores: Tensor, order: Tensor, order_weight: Tensor) -> Tensor:
    """The comparison of every pair: D[i, j] = score_i - score_j + order_weight * order[i, j], the
    paper's s_Ot(x, m_i, m_j) = Φx(x)ᵀUᵀU(Φy(m_i) - Φy(m_j) + Φt(x, m_i, m_j)) made antisymmetric.
    scores: (B, S) per-memory scores; order: (B, S, S) write_order; order_weight: (B,) the
    question's weight on "y older than y'" (> 0 prefers older facts). Returns (B, S, S)."""
    return scores[:, :, None] - scores[:, None, :] + order_weight[:, None, None] * order  # (B, S, S)


def hop_values(comparisons: Tensor, available: Tensor) -> Tensor:
    """How strongly each available memory i wins: min over the other available j of D[i, j] (> 0 when
    i beats every other memory; 0 when i is the only one left; -inf when i is not available).
    comparisons: (B, S, S); available: (B, S). Returns (B, S)."""
    S = comparisons.shape[1]
    others = available[:, None, :] & ~torch.eye(S, dtype=torch.bool, device=available.device)  # (B, S, S)
    worst = comparisons.masked_fill(~others, torch.inf).amin(dim=2)  # (B, S); +inf when alone
    worst = worst.masked_fill(worst == torch.inf, 0.0)  # (B, S)
    return worst.masked_fill(~available, -torch.inf)  # (B, S)


def pick_memory(comparisons: Tensor, available: Tensor) -> Tensor:
    """argmax over available i of min over other available j of D[i, j]: the memory that wins all its
    comparisons, when one does. comparisons: (B, S, S); available: (B, S), at least one per row.
    Returns (B,) slot ids."""
    return hop_values(comparisons, available).argmax(dim=1)  # (B,)


def margin_ranking_loss(target_scores: Tensor, negatives: Tensor, margin: float) -> Tensor:
    """Σ over negatives of max(0, γ - s(target) + s(negative)) (eqs. 6-8), summed over the batch.
    target_scores: (B, N) the margin by which the target beats each candidate (s(target) - s(n),
    or the comparison D[target, n]); negatives: (B, N) True where candidate n is a negative."""
    return (torch.relu(margin - target_scores) * negatives).sum()
