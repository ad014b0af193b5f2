"""NTM memory access (Graves, Wayne, Danihelka 2014 §3.1-3.2) as pure functions: a write
returns a new memory tensor and never changes the one it was given."""

from __future__ import annotations

from torch import Tensor


def read(memory: Tensor, weightings: Tensor) -> Tensor:
    """Reading (§3.1, eq. 2): r = Σ_i w(i) M(i), for H read heads at once.

    memory: (B, N, M), weightings: (B, H, N) -> read vectors (B, H, M)."""
    return weightings @ memory  # (B, H, M)


def write(memory: Tensor, weightings: Tensor, erase_vectors: Tensor, add_vectors: Tensor) -> Tensor:
    """Writing (§3.2): erase, M̃(i) = M(i) ⊙ Π_h [1 - w_h(i) e_h] (eq. 3), then add,
    M'(i) = M̃(i) + Σ_h w_h(i) a_h (eq. 4). The erases of several heads multiply, their adds
    sum, so the order of the write heads does not matter (§3.2).

    memory: (B, N, M), weightings: (B, H, N), erase_vectors e ∈ [0, 1]: (B, H, M),
    add_vectors a: (B, H, M) -> new memory (B, N, M)."""
    erase = weightings[:, :, :, None] * erase_vectors[:, :, None, :]  # (B, H, N, M)
    keep = (1 - erase).prod(dim=1)  # (B, N, M)
    added = weightings.transpose(1, 2) @ add_vectors  # (B, N, M)
    return memory * keep + added  # (B, N, M)
