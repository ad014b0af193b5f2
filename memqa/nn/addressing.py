"""NTM addressing (Graves, Wayne, Danihelka 2014 §3.3), read like the paper:

    content_weights → interpolate → shift → sharpen

Each step is a small pure function batched over B sequences and H heads of a memory of N rows
of width M; none loops over the batch or the memory rows. Every step stays finite, with finite
gradients, on zero memory rows and under extreme head parameters (tests/test_ntm_addressing.py).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

# Added under the square root of every squared norm in the cosine similarity, so that a zero
# memory row (or key) has norm sqrt(ε) with a finite gradient instead of 0/0.
COSINE_EPS = 1e-8
# Added to the weights before the log in sharpening: log 0 = -inf would give NaN gradients.
SHARPEN_EPS = 1e-12


class HeadParameters(NamedTuple):
    """What the controller emits for H heads, already in range (§3.3, Figure 2):
    keys k (B, H, M), key_strength β ≥ 0 (B, H), gate g ∈ [0, 1] (B, H),
    shift_weighting s (B, H, 2·shift_range + 1) summing to 1 over offsets -shift_range..+shift_range,
    sharpening γ ≥ 1 (B, H)."""

    keys: Tensor
    key_strength: Tensor
    gate: Tensor
    shift_weighting: Tensor
    sharpening: Tensor


def cosine_similarity(keys: Tensor, memory: Tensor) -> Tensor:
    """K[u, v] = u·v / (‖u‖‖v‖) of every key with every memory row (§3.3.1, eq. 6).

    keys: (B, H, M), memory: (B, N, M) -> (B, H, N). Norms are sqrt(Σ u² + COSINE_EPS)."""
    dots = torch.einsum("bhm,bnm->bhn", keys, memory)  # (B, H, N)
    key_norms = (keys.square().sum(dim=-1) + COSINE_EPS).sqrt()  # (B, H)
    row_norms = (memory.square().sum(dim=-1) + COSINE_EPS).sqrt()  # (B, N)
    return dots / (key_norms[:, :, None] * row_norms[:, None, :])  # (B, H, N)


def content_weights(memory: Tensor, keys: Tensor, key_strength: Tensor) -> Tensor:
    """Content addressing (§3.3.1, eq. 5): w^c(i) = softmax_i(β K[k, M(i)]).

    memory: (B, N, M), keys: (B, H, M), key_strength β ≥ 0: (B, H) -> (B, H, N)."""
    similarity = cosine_similarity(keys, memory)  # (B, H, N)
    return torch.softmax(key_strength[:, :, None] * similarity, dim=-1)  # (B, H, N)


def interpolate(content_weighting: Tensor, prev_weighting: Tensor, gate: Tensor) -> Tensor:
    """Interpolation gate (§3.3.2, eq. 7): w^g = g w^c + (1 - g) w_{t-1}.

    content_weighting, prev_weighting: (B, H, N), gate g ∈ [0, 1]: (B, H) -> (B, H, N)."""
    gate = gate[:, :, None]  # (B, H, 1)
    return gate * content_weighting + (1 - gate) * prev_weighting  # (B, H, N)


def shift(weighting: Tensor, shift_weighting: Tensor) -> Tensor:
    """Circular convolution (§3.3.2, eq. 8): w̃(i) = Σ_j w(j) s(i - j), indices modulo N.

    weighting: (B, H, N); shift_weighting: (B, H, Z) over offsets -(Z-1)/2 .. +(Z-1)/2, Z odd.
    All weight on offset +1 moves a focus at row i to row i + 1. Returns (B, H, N)."""
    rows, offsets = weighting.shape[-1], shift_weighting.shape[-1]
    shift_range = offsets // 2
    offset = torch.arange(-shift_range, shift_range + 1, device=weighting.device)  # (Z,)
    row = torch.arange(rows, device=weighting.device)  # (N,)
    source_rows = (row[:, None] - offset[None, :]) % rows  # (N, Z): row i takes w(i - offset)
    shifted = weighting[..., source_rows]  # (B, H, N, Z)
    return torch.einsum("bhnz,bhz->bhn", shifted, shift_weighting)  # (B, H, N)


def sharpen(weighting: Tensor, sharpening: Tensor) -> Tensor:
    """Sharpening (§3.3.2, eq. 9): w(i) = w̃(i)^γ / Σ_j w̃(j)^γ, γ ≥ 1.

    Computed as softmax(γ log(w̃ + SHARPEN_EPS)), which cannot underflow to 0/0 for huge γ.
    weighting: (B, H, N), sharpening γ: (B, H) -> (B, H, N)."""
    log_weighting = torch.log(weighting + SHARPEN_EPS)  # (B, H, N)
    return torch.softmax(sharpening[:, :, None] * log_weighting, dim=-1)  # (B, H, N)


def address(memory: Tensor, prev_weighting: Tensor, heads: HeadParameters) -> Tensor:
    """The whole addressing pipeline of Figure 2 for H heads at once.

    memory: (B, N, M), prev_weighting w_{t-1}: (B, H, N) -> w_t: (B, H, N)."""
    content = content_weights(memory, heads.keys, heads.key_strength)  # (B, H, N)
    gated = interpolate(content, prev_weighting, heads.gate)  # (B, H, N)
    shifted = shift(gated, heads.shift_weighting)  # (B, H, N)
    return sharpen(shifted, heads.sharpening)  # (B, H, N)
