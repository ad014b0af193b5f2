"""NTM addressing and memory (memqa/nn/addressing.py, memory.py): hand-computed cases, batching,
and finite outputs and gradients on zero memories and under extreme head parameters."""

from __future__ import annotations

import pytest
import torch

from memqa.nn.addressing import (HeadParameters, address, content_weights, cosine_similarity, interpolate, sharpen,
                                 shift)
from memqa.nn.memory import read, write


def batched(*rows):
    """A (1, 1, N) weighting or (1, 1, K) shift weighting from a plain list."""
    return torch.tensor([list(rows)], dtype=torch.float32)[None]


# --- content addressing (§3.3.1) ------------------------------------------------------------------


def test_content_weights_on_a_three_row_memory():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # (1, 3, 2)
    key = torch.tensor([[[1.0, 0.0]]])  # (1, 1, 2)
    # cosines 1, 0, 1/√2; with β = 1: softmax -> e^1, e^0, e^0.7071 over their sum 5.74639
    weights = content_weights(memory, key, torch.tensor([[1.0]]))
    assert weights[0, 0].tolist() == pytest.approx([0.47304, 0.17402, 0.35293], abs=1e-4)
    # β = 0 ignores content: uniform; a large β picks the best match
    assert content_weights(memory, key, torch.tensor([[0.0]]))[0, 0].tolist() == pytest.approx([1 / 3] * 3)
    assert content_weights(memory, key, torch.tensor([[100.0]]))[0, 0].tolist() == pytest.approx([1, 0, 0], abs=1e-6)


def test_cosine_similarity_hand_values():
    memory = torch.tensor([[[3.0, 4.0], [-3.0, -4.0], [0.0, 0.0]]])
    similarity = cosine_similarity(torch.tensor([[[6.0, 8.0]]]), memory)
    assert similarity[0, 0].tolist() == pytest.approx([1.0, -1.0, 0.0], abs=1e-6)


# --- location addressing (§3.3.2) -----------------------------------------------------------------


def test_interpolation_gate():
    content, previous = batched(0.7, 0.2, 0.1), batched(0.0, 0.0, 1.0)
    assert torch.equal(interpolate(content, previous, torch.tensor([[0.0]])), previous)  # g = 0 keeps w_{t-1}
    assert torch.equal(interpolate(content, previous, torch.tensor([[1.0]])), content)
    assert interpolate(content, previous, torch.tensor([[0.5]]))[0, 0].tolist() == pytest.approx([0.35, 0.1, 0.55])


@pytest.mark.parametrize("offset, before, after", [
    (+1, [0, 1, 0, 0], [0, 0, 1, 0]),
    (+1, [0, 0, 0, 1], [1, 0, 0, 0]),  # circular: the last row wraps to the first
    (-1, [0, 1, 0, 0], [1, 0, 0, 0]),
    (0, [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]),
])
def test_shift_moves_the_focus(offset, before, after):
    shift_weighting = batched(*[1.0 if o == offset else 0.0 for o in (-1, 0, 1)])
    assert shift(batched(*before), shift_weighting)[0, 0].tolist() == pytest.approx(after)


def test_shift_blurs_and_keeps_the_sum():
    # w̃(i) = Σ_j w(j) s(i - j): a focus at row 1 spread by s = (0.25, 0.5, 0.25)
    shifted = shift(batched(0, 1, 0, 0, 0), batched(0.25, 0.5, 0.25))
    assert shifted[0, 0].tolist() == pytest.approx([0.25, 0.5, 0.25, 0, 0])
    # a wider range: offsets -2..2, all weight on +2
    assert shift(batched(1, 0, 0, 0, 0), batched(0, 0, 0, 0, 1))[0, 0].tolist() == pytest.approx([0, 0, 1, 0, 0])


def test_sharpen():
    weighting = batched(0.5, 0.25, 0.25)
    assert sharpen(weighting, torch.tensor([[1.0]]))[0, 0].tolist() == pytest.approx([0.5, 0.25, 0.25])  # γ = 1
    assert sharpen(weighting, torch.tensor([[2.0]]))[0, 0].tolist() == pytest.approx([2 / 3, 1 / 6, 1 / 6])
    # a zero weight stays zero up to SHARPEN_EPS
    assert sharpen(batched(0.6, 0.4, 0.0), torch.tensor([[1.0]]))[0, 0].tolist() == pytest.approx([0.6, 0.4, 0], abs=1e-7)


def test_addressing_is_batched_not_looped():
    """Each (sequence, head) gets exactly what it would get on its own."""
    torch.manual_seed(0)
    memory = torch.randn(3, 6, 4)
    heads = HeadParameters(torch.randn(3, 2, 4), torch.rand(3, 2) * 5, torch.rand(3, 2),
                           torch.softmax(torch.randn(3, 2, 3), -1), 1 + torch.rand(3, 2) * 3)
    previous = torch.softmax(torch.randn(3, 2, 6), -1)
    together = address(memory, previous, heads)
    for b in range(3):
        for h in range(2):
            alone = address(memory[b : b + 1], previous[b : b + 1, h : h + 1],
                            HeadParameters(*(p[b : b + 1, h : h + 1] for p in heads)))
            assert torch.allclose(together[b, h], alone[0, 0], atol=1e-6)
    assert torch.allclose(together.sum(-1), torch.ones(3, 2))


# --- read and write (§3.1-3.2) --------------------------------------------------------------------


def test_read_is_a_weighted_sum_of_rows():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    weightings = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]])  # two read heads
    assert read(memory, weightings)[0].tolist() == [[2.0, 3.0], [5.0, 6.0]]


def test_write_erases_then_adds():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    before = memory.clone()
    new = write(memory, torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[10.0, 20.0]]]))
    assert new[0].tolist() == [[10.0, 22.0], [3.0, 4.0]]
    assert torch.equal(memory, before)  # pure: the old memory is untouched
    spread = write(memory, torch.tensor([[[0.5, 0.5]]]), torch.ones(1, 1, 2), torch.tensor([[[2.0, 2.0]]]))
    assert spread[0].tolist() == [[1.5, 2.0], [2.5, 3.0]]  # M(i)(1 - w(i)e) + w(i)a


def test_two_write_heads_multiply_erases_and_sum_adds():
    memory = torch.tensor([[[4.0], [8.0]]])
    weightings = torch.tensor([[[0.5, 0.0], [0.5, 1.0]]])  # head 1 half on row 0; head 2 half on row 0, all on row 1
    erase = torch.tensor([[[1.0], [1.0]]])
    add = torch.tensor([[[1.0], [2.0]]])
    new = write(memory, weightings, erase, add)
    # row 0: 4 (1 - 0.5)(1 - 0.5) + 0.5·1 + 0.5·2 = 2.5; row 1: 8 (1 - 0)(1 - 1) + 0 + 2 = 2
    assert new[0, :, 0].tolist() == [2.5, 2.0]
    assert torch.equal(new, write(memory, weightings.flip(1), erase.flip(1), add.flip(1)))  # head order is irrelevant


# --- numerical safety -----------------------------------------------------------------------------


def _extreme_heads(batch: int, heads: int, width: int, scale: float) -> HeadParameters:
    """Heads with every parameter at `scale` (β, γ at |scale|), gates 0 and 1, shifts saturated."""
    leaf = lambda value, *shape: torch.full(shape, value).requires_grad_()  # noqa: E731
    gate = torch.tensor([[0.0, 1.0]] * batch)[:, :heads].clone().requires_grad_()
    shift_weighting = torch.softmax(torch.tensor([scale, 0.0, -scale]).expand(batch, heads, 3), -1)
    return HeadParameters(leaf(scale, batch, heads, width), leaf(abs(scale), batch, heads), gate,
                          shift_weighting, leaf(1 + abs(scale), batch, heads))


@pytest.mark.parametrize("scale", [0.0, 1e-30, 1e4, 1e6, -1e6])
def test_finite_outputs_and_gradients_on_a_zero_memory(scale):
    memory = torch.zeros(2, 8, 5, requires_grad=True)
    previous = torch.zeros(2, 2, 8).index_fill_(2, torch.tensor([0]), 1.0).requires_grad_()  # one-hot: zeros elsewhere
    heads = _extreme_heads(2, 2, 5, scale)
    weightings = address(memory, previous, heads)
    new_memory = write(memory, weightings, torch.ones(2, 2, 5), torch.full((2, 2, 5), scale))
    loss = read(new_memory, weightings).sum() + read(memory, weightings).sum() + weightings.square().sum()
    loss.backward()
    assert torch.isfinite(weightings).all() and torch.isfinite(new_memory).all()
    assert torch.allclose(weightings.sum(-1), torch.ones(2, 2))
    for tensor in (memory, previous, heads.keys, heads.key_strength, heads.gate, heads.sharpening):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()


def test_sharpen_with_huge_gamma_picks_the_maximum():
    weighting = batched(0.3, 0.4, 0.3).requires_grad_()
    sharpened = sharpen(weighting, torch.tensor([[1e6]]))
    sharpened[0, 0, 1].backward()
    assert sharpened[0, 0].tolist() == pytest.approx([0, 1, 0])
    assert torch.isfinite(weighting.grad).all()


def test_content_weights_gradient_through_a_zero_row():
    memory = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]], requires_grad=True)
    weights = content_weights(memory, torch.tensor([[[1.0, 1.0]]]), torch.tensor([[5.0]]))
    weights[0, 0, 0].backward()
    assert torch.isfinite(memory.grad).all()
    assert torch.isfinite(weights).all()
