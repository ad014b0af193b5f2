"""memqa.models.memn2n: the reader contract, weight tying, linear start, seeds."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import small_memn2n_config
from memqa.config import TrainConfig
from memqa.data.batching import encode_examples
from memqa.errors import ConfigError
from memqa.models.base import Phase, ReaderOutput
from memqa.models.memn2n import MemN2N
from memqa.models.registry import build_model, reader_class
from memqa.nn.encoder import StoryEncoder, slot_ages


@pytest.fixture(scope="module")
def batch(tiny_examples, tiny_vocab):
    # Questions 0 (2 sentences), 2 (6 sentences) and 4 (4 sentences): stories of different lengths.
    data = encode_examples(tiny_examples, tiny_vocab, memory_size=10)
    return data.batch(torch.tensor([0, 2, 4]))


def model(vocab, seed=0, **changes):
    torch.manual_seed(seed)
    return MemN2N(small_memn2n_config(**changes), vocab)


@pytest.mark.parametrize("hops", [1, 3])
@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_output_shapes(tiny_vocab, batch, hops, tying):
    output = model(tiny_vocab, hops=hops, weight_tying=tying).eval()(batch)
    B, S = batch.memory_mask.shape
    assert isinstance(output, ReaderOutput)
    assert output.logits.shape == (B, tiny_vocab.num_answers)
    assert output.attention.shape == (B, hops, S)
    assert torch.isfinite(output.logits).all()


@pytest.mark.parametrize("training", [False, True])
def test_attention_leaves_the_rest_to_the_empty_slots(tiny_vocab, batch, training):
    net = model(tiny_vocab).train(training)
    attention = net(batch).attention  # (B, K, S)
    assert batch.memory_mask.sum(1).tolist() == [2, 6, 4]
    # A memory of 10 slots: the stories fill 2, 6 and 4; the rest hold the null symbol (score 0).
    total = attention.sum(dim=2)  # (B, K)
    assert (total < 1).all() and (total > 0).all()
    padded = ~batch.memory_mask[:, None, :].expand_as(attention)
    assert (attention[padded] == 0).all()
    assert (attention[~padded] > 0).all()


def test_empty_slots_weigh_exactly_as_materialised_null_memories(tiny_vocab, batch):
    net = model(tiny_vocab).eval()
    slots = net.config.encoder.memory_size
    with torch.no_grad():
        scores = first_hop_scores(net, batch)  # (B, S)
        attention = net(batch).attention[:, 0]  # (B, S)
    for row, stored in enumerate(batch.memory_mask.sum(1).tolist()):
        # Every empty slot scores u·0 = 0: the softmax over all 10 slots, written out.
        full = torch.cat([scores[row, :stored], torch.zeros(slots - stored)]).softmax(dim=0)
        torch.testing.assert_close(attention[row, :stored], full[:stored])


def softmax_over_all_slots(scores, memory_mask, slots):
    """The paper's softmax over a memory of `slots` slots, written out: each stored sentence's score, and
    a score u·0 = 0 for every empty slot. scores, memory_mask: (B, S) -> (B, S) over the stored sentences."""
    rows = []
    for row, mask in zip(scores, memory_mask):
        stored = int(mask.sum())
        full = torch.cat([row[:stored], torch.zeros(slots - stored)]).softmax(dim=0)
        rows.append(torch.cat([full[:stored], torch.zeros(len(row) - stored)]))
    return torch.stack(rows)


def test_the_empty_slot_bias():
    from memqa.models.memn2n import empty_slot_bias

    mask = torch.tensor([[True, True, True], [True, False, False]])
    bias = empty_slot_bias(mask, 4)
    # Stories of 3 and 1 sentences in 4 slots: 1 and 3 empty slots, log 1 and log 3 on the null slot.
    torch.testing.assert_close(bias, torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, -torch.inf, -torch.inf, math.log(3)]]))
    assert empty_slot_bias(torch.ones(1, 3, dtype=torch.bool), 3)[0, -1] == -torch.inf
    scores = torch.tensor([[1.0, 2.0, 3.0, 0.0]])  # the null slot scores 0
    expected = scores[:, :3].exp() / (scores[:, :3].exp().sum() + 1)
    torch.testing.assert_close((scores + empty_slot_bias(mask[:1], 4)).softmax(dim=1)[:, :3], expected)


def test_gradients_reach_every_story_encoder(tiny_vocab, batch):
    for tying in ("adjacent", "layerwise"):
        net = model(tiny_vocab, weight_tying=tying)
        net.loss(batch, net(batch)).backward()
        encoders = [m for m in net.modules() if isinstance(m, StoryEncoder)]
        assert encoders and len(encoders) == len(net.embeddings)
        for index, encoder in enumerate(encoders):
            grad = encoder.word_embedding.weight.grad
            assert grad is not None and grad.abs().sum() > 0, f"{tying}: encoder {index} got no gradient"
        if tying == "layerwise":
            assert net.hop_map.weight.grad.abs().sum() > 0
        if net.answer is not None:
            assert net.answer.weight.grad.abs().sum() > 0


def test_adjacent_tying_uses_hops_plus_one_encoders(tiny_vocab):
    for hops in (1, 2, 3):
        net = model(tiny_vocab, hops=hops, weight_tying="adjacent")
        assert len(net.embeddings) == hops + 1
        assert net.hop_map is None
        assert [net._memory_encoders(h) for h in range(hops)] == [(h, h + 1) for h in range(hops)]


def test_layerwise_tying_uses_three_encoders_and_a_hop_map(tiny_vocab):
    net = model(tiny_vocab, hops=3, weight_tying="layerwise", encoder__embedding_dim=7)
    assert len(net.embeddings) == 3
    assert net.hop_map.weight.shape == (7, 7)
    assert {net._memory_encoders(h) for h in range(3)} == {(1, 2)}
    names = {name.split(".")[0] for name, _ in net.named_parameters()}
    assert names == {"embeddings", "hop_map", "answer"}


def test_embedding_sizes_follow_the_config(tiny_vocab):
    net = model(tiny_vocab, encoder__embedding_dim=8, encoder__memory_size=7)
    for encoder in net.embeddings:
        assert encoder.word_embedding.weight.shape == (tiny_vocab.num_words, 8)
        assert encoder.temporal_embedding.shape == (7, 8)
    assert all(e.temporal_embedding is None for e in model(tiny_vocab, encoder__temporal=False).embeddings)
    untied = model(tiny_vocab, encoder__embedding_dim=8, tie_answer=False)
    assert untied.answer.weight.shape == (tiny_vocab.num_answers, 8)


def test_answer_matrix_tying(tiny_vocab, batch):
    # Adjacent tying (§2.2): W^T = C^K, so the answer scores come from the last embedding's rows of the
    # answer words and there is no separate answer matrix.
    tied = model(tiny_vocab, weight_tying="adjacent", tie_answer=True)
    assert tied.answer is None and "answer.weight" not in tied.state_dict()
    tied.loss(batch, tied(batch)).backward()
    answer_rows = tied.embeddings[-1].word_embedding.weight.grad[tiny_vocab.answer_word_ids()]
    assert (answer_rows.abs().sum(dim=1) > 0).all()  # every answer row learns through W
    with torch.no_grad():
        tied.embeddings[-1].word_embedding.weight[tiny_vocab.answer_word_ids()[0]] *= 3
    assert not torch.equal(tied.eval()(batch).logits[:, 0], model(tiny_vocab, tie_answer=True).eval()(batch).logits[:, 0])
    assert model(tiny_vocab, tie_answer=False).answer is not None
    assert model(tiny_vocab, weight_tying="layerwise", tie_answer=True).answer is not None  # never tied


def first_hop_scores(net, batch):
    """u^1ᵀ m_i of the first hop, computed from the encoders by hand (eval mode: no noise)."""
    memories = net.embeddings[0](batch.story_ids, slot_ages(batch.memory_mask))  # (B, S, D)
    question = net.embeddings[0].encode_words(batch.question_ids)  # (B, D)
    return torch.einsum("bsd,bd->bs", memories, question)


def test_linear_start_removes_the_softmax(tiny_vocab, batch):
    net = model(tiny_vocab).eval()
    with torch.no_grad():
        scores = first_hop_scores(net, batch)
        net.enter_phase(Phase("linear start", 1, 0.005, 2, 1.0))
        linear = net(batch).attention
        torch.testing.assert_close(linear[:, 0], scores * batch.memory_mask)
        assert not torch.allclose(linear.sum(dim=2), torch.ones(3, 3))
        net.enter_phase(Phase("train", 1, 0.005, 1, 0.5))
        soft = net(batch).attention
        torch.testing.assert_close(soft[:, 0], softmax_over_all_slots(scores, batch.memory_mask, 10))


@pytest.mark.parametrize("relu", [False, True])
def test_one_hop_by_hand_with_and_without_relu(tiny_vocab, batch, relu):
    # u^2 = u^1 + o^1 (eq. 2, adjacent tying), through a ReLU with relu=True (App. A's non-linearity);
    # answer scores W u^2 with W^T = C^1.
    net = model(tiny_vocab, hops=1, relu=relu).eval()
    with torch.no_grad():
        ages = slot_ages(batch.memory_mask)
        scores = first_hop_scores(net, batch)  # (B, S)
        attention = softmax_over_all_slots(scores, batch.memory_mask, net.config.encoder.memory_size)
        read = torch.einsum("bs,bsd->bd", attention, net.embeddings[1](batch.story_ids, ages))  # o^1: (B, D)
        controller = net.embeddings[0].encode_words(batch.question_ids) + read  # (B, D)
        if relu:
            controller = controller.clamp(min=0)
        answers = net.embeddings[1].word_embedding(torch.tensor(tiny_vocab.answer_word_ids()))  # (A, D)
        torch.testing.assert_close(net(batch).logits, controller @ answers.T)
        assert (controller == 0).any() == relu  # the ReLU does cut something in this batch


def test_phases_follow_the_train_config(tiny_vocab):
    net = model(tiny_vocab)
    config = TrainConfig(epochs=7, learning_rate=0.02, decay_every=5, decay_factor=0.3, linear_start_epochs=3,
                         linear_start_learning_rate=0.004)
    # Linear start as in the authors' code: no decay during LS, and the main phase starts at the LS rate.
    assert net.phases(config) == [Phase("linear start", 3, 0.004, 4, 1.0), Phase("train", 7, 0.004, 5, 0.3)]
    no_ls = TrainConfig(epochs=7, learning_rate=0.02, decay_every=5, decay_factor=0.3, linear_start_epochs=0)
    assert net.phases(no_ls) == [Phase("train", 7, 0.02, 5, 0.3)]
    assert model(tiny_vocab, linear_start=False).phases(config) == [Phase("train", 7, 0.02, 5, 0.3)]


def test_same_seed_same_logits_different_seed_different(tiny_vocab, batch):
    first = model(tiny_vocab, seed=5).eval()(batch).logits
    again = model(tiny_vocab, seed=5).eval()(batch).logits
    other = model(tiny_vocab, seed=6).eval()(batch).logits
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_random_noise_only_in_training(tiny_vocab, batch):
    net = model(tiny_vocab, random_noise=0.5).eval()
    assert torch.equal(net(batch).logits, net(batch).logits)  # eval: deterministic
    net.train()
    torch.manual_seed(0)
    runs = [net(batch).logits for _ in range(5)]
    assert any(not torch.equal(runs[0], r) for r in runs[1:])


def test_dropout_only_in_training(tiny_vocab, batch):
    # Random noise off, so that dropout is the only thing random in training.
    plain = model(tiny_vocab, seed=4, random_noise=0.0).eval()
    dropped = model(tiny_vocab, seed=4, random_noise=0.0, dropout=0.5).eval()
    assert torch.equal(dropped(batch).logits, plain(batch).logits)  # eval: no dropout, the same weights
    plain.train()
    assert torch.equal(plain(batch).logits, plain(batch).logits)  # without dropout training is deterministic here
    dropped.train()
    torch.manual_seed(0)
    runs = [dropped(batch).logits for _ in range(3)]
    assert not torch.equal(runs[0], runs[1]) and not torch.equal(runs[1], runs[2])


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_dropout_out_of_range(rate):
    with pytest.raises(ConfigError, match="dropout"):
        small_memn2n_config(dropout=rate)


def test_loss_is_summed_cross_entropy(tiny_vocab, batch):
    net = model(tiny_vocab).eval()
    output = net(batch)
    expected = torch.nn.functional.cross_entropy(output.logits, batch.answer_ids, reduction="mean") * 3
    torch.testing.assert_close(net.loss(batch, output), expected)


def test_registry(tiny_vocab):
    assert reader_class("memn2n") is MemN2N
    assert isinstance(build_model("memn2n", small_memn2n_config(), tiny_vocab), MemN2N)
    with pytest.raises(ConfigError, match="unknown reader"):
        reader_class("lstm")
    with pytest.raises(ConfigError):
        build_model("memn2n", TrainConfig(), tiny_vocab)
