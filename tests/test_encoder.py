"""memqa.nn.encoder: position encoding against hand-computed numbers, bag of words, PAD, ages."""

from __future__ import annotations

import pytest
import torch

from memqa.config import EncoderConfig
from memqa.data.vocab import PAD_ID
from memqa.nn.encoder import StoryEncoder, encode_many, noisy_slot_ages, position_encoding, slot_ages

# l_kj = (1 - j/J) - (k/d)(1 - 2j/J), Sukhbaatar et al. 2015 §4.1, worked out by hand.
# J = 3 words, d = 4. Row j (word), column k (component).
#   j=1: 1 - 1/3 = 2/3, 1 - 2/3 = 1/3  -> 2/3 - k/12      = 7/12, 6/12, 5/12, 4/12
#   j=2: 1 - 2/3 = 1/3, 1 - 4/3 = -1/3 -> 1/3 + k/12      = 5/12, 6/12, 7/12, 8/12
#   j=3: 0,             1 - 2 = -1     -> k/4             = 3/12, 6/12, 9/12, 12/12
PE_J3_D4 = torch.tensor([[7, 6, 5, 4], [5, 6, 7, 8], [3, 6, 9, 12]], dtype=torch.float32) / 12
# J = 2 words, d = 4:
#   j=1: 1 - 1/2 = 1/2, 1 - 1 = 0     -> 1/2             = 6/12 each
#   j=2: 0,             1 - 2 = -1    -> k/4             = 3/12, 6/12, 9/12, 12/12
PE_J2_D4 = torch.tensor([[6, 6, 6, 6], [3, 6, 9, 12]], dtype=torch.float32) / 12


def test_position_encoding_matches_hand_computed_values():
    weights = position_encoding(torch.tensor([3]), width=3, dim=4)
    assert weights.shape == (1, 3, 4)
    torch.testing.assert_close(weights[0], PE_J3_D4)


def test_position_encoding_uses_each_sentences_own_length():
    # A 2-word sentence padded to width 4 uses J = 2, not J = 4.
    weights = position_encoding(torch.tensor([[2, 3]]), width=4, dim=4)
    assert weights.shape == (1, 2, 4, 4)
    torch.testing.assert_close(weights[0, 0, :2], PE_J2_D4)
    torch.testing.assert_close(weights[0, 1, :3], PE_J3_D4)


def encoder(encoding="position", temporal=False, dim=4, words=6, memory_size=5):
    torch.manual_seed(0)
    # position_scale=1: the paper's l_kj exactly (the default 2 is tested separately below)
    return StoryEncoder(EncoderConfig(embedding_dim=dim, encoding=encoding, temporal=temporal,
                                      memory_size=memory_size, position_scale=1.0), words)


def test_position_encoded_sentence_by_hand():
    enc = encoder()
    with torch.no_grad():
        enc.word_embedding.weight.copy_(torch.arange(24, dtype=torch.float32).reshape(6, 4))
        enc.word_embedding.weight[PAD_ID].zero_()
    # words 2 and 5, then two PADs: embeddings [8, 9, 10, 11] and [20, 21, 22, 23]
    sentence = torch.tensor([[2, 5, PAD_ID, PAD_ID]])
    expected = (torch.tensor([8.0, 9, 10, 11]) * PE_J2_D4[0] + torch.tensor([20.0, 21, 22, 23]) * PE_J2_D4[1])
    # k=1: 8*6/12 + 20*3/12 = 9;  k=2: 9/2 + 21/2 = 15;  k=3: 5 + 22*9/12 = 21.5;  k=4: 5.5 + 23 = 28.5
    torch.testing.assert_close(expected, torch.tensor([9.0, 15.0, 21.5, 28.5]))
    torch.testing.assert_close(enc.encode_words(sentence)[0], expected)


def test_bag_of_words_is_the_plain_sum():
    enc = encoder("bow")
    ids = torch.tensor([[[1, 2, 3, 0], [4, 0, 0, 0]], [[5, 5, 1, 2], [0, 0, 0, 0]]])  # (B=2, S=2, W=4)
    expected = enc.word_embedding.weight[ids].sum(dim=-2)
    torch.testing.assert_close(enc.encode_words(ids), expected)
    # order does not matter for a bag of words, but does for position encoding
    swapped = torch.tensor([[3, 2, 1]])
    torch.testing.assert_close(enc.encode_words(swapped), enc.encode_words(torch.tensor([[1, 2, 3]])))
    pe = encoder("position")
    assert not torch.allclose(pe.encode_words(swapped), pe.encode_words(torch.tensor([[1, 2, 3]])))


@pytest.mark.parametrize("encoding", ["position", "bow"])
def test_pad_embeds_to_zero_and_gets_no_gradient(encoding):
    enc = encoder(encoding)
    assert torch.count_nonzero(enc.word_embedding.weight[PAD_ID]) == 0
    ids = torch.tensor([[[1, 2, PAD_ID], [3, PAD_ID, PAD_ID]]])
    torch.testing.assert_close(enc.encode_words(torch.tensor([[PAD_ID, PAD_ID]])), torch.zeros(1, 4))
    enc(ids).pow(2).sum().backward()
    grad = enc.word_embedding.weight.grad
    assert torch.count_nonzero(grad[PAD_ID]) == 0
    assert torch.count_nonzero(grad[1]) > 0  # the real words did get gradient


def test_temporal_encoding_adds_the_row_of_each_age():
    enc = encoder(temporal=True)
    ids = torch.tensor([[[1, 2], [3, 0], [0, 0]]])  # two sentences, one empty slot
    ages = torch.tensor([[1, 0, 0]])
    expected = enc.encode_words(ids) + enc.temporal_embedding[ages]
    torch.testing.assert_close(enc(ids, ages), expected)
    torch.testing.assert_close(enc(ids), expected)  # default ages: slot_ages of the real sentences


def test_slot_ages_most_recent_is_zero():
    mask = torch.tensor([[True, True, True, False], [True, False, False, False], [False] * 4])
    assert slot_ages(mask).tolist() == [[2, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_noisy_slot_ages_order_range_and_padding():
    torch.manual_seed(0)
    lengths = torch.randint(1, 21, (500,))
    lengths[:3] = torch.tensor([1, 20, 10])
    mask = torch.arange(20)[None, :] < lengths[:, None]  # (500, 20)
    max_age = 49  # a memory of 50 holds every age these stories can reach
    ages = noisy_slot_ages(mask, 0.1, max_age)
    assert ages.shape == mask.shape and ages.dtype == torch.long
    assert (ages[~mask] == 0).all()
    assert ages.min() >= 0 and ages.max() <= max_age
    for row, n in zip(ages, lengths.tolist()):
        real = row[:n]
        assert (real[:-1] > real[1:]).all(), "ages must fall strictly from the oldest to the newest sentence"
        # n sentences spread over n + nblank slots, nblank <= ceil(0.1 n) (the authors' randi([0, ceil(n/10)]))
        assert real[0] <= n - 1 + -(-n // 10)
    differs = (ages != slot_ages(mask)).any(dim=1)
    assert differs.any() and not differs.all()


def test_noisy_slot_ages_adds_noise_to_short_stories():
    # A story of 8 sentences gets nblank ~ U{0, 1} (ceil(0.8) = 1): about half of them move.
    torch.manual_seed(1)
    mask = torch.ones(400, 8, dtype=torch.bool)
    changed = (noisy_slot_ages(mask, 0.1, 49) != slot_ages(mask)).any(dim=1).float().mean()
    assert 0.3 < changed < 0.7


def test_noisy_slot_ages_stay_within_a_full_memory():
    torch.manual_seed(2)
    mask = torch.ones(200, 10, dtype=torch.bool)
    ages = noisy_slot_ages(mask, 0.5, max_age=9)
    assert ages.max() <= 9 and ages.min() >= 0
    assert (ages[:, :-1] >= ages[:, 1:]).all()  # clipping may tie the oldest ages, never reorder them


def test_noise_zero_is_plain_ages():
    mask = torch.tensor([[True, True, False]])
    assert noisy_slot_ages(mask, 0.0, 9).tolist() == slot_ages(mask).tolist()


def test_position_scale_multiplies_the_papers_weights():
    ids = torch.tensor([[3, 5, 2, PAD_ID]])  # one sentence of J = 3 words padded to width 4
    paper = position_encoding(torch.tensor([3]), 4, 4)  # (1, W, D)
    for scale in (1.0, 2.0):
        encoder = StoryEncoder(EncoderConfig(embedding_dim=4, temporal=False, position_scale=scale), num_words=8)
        torch.testing.assert_close(encoder.word_weights(ids), scale * paper)


def test_the_authors_code_weights_are_twice_the_papers_at_cell_centres():
    # MemN2N-babi-matlab: 1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J), k = 1..d, j = 1..J
    d, J = 4, 3
    for k in range(1, d + 1):
        for j in range(1, J + 1):
            code = 1 + 4 * (k - (d + 1) / 2) * (j - (J + 1) / 2) / (d * J)
            centre = (1 - (j - 0.5) / J) - ((k - 0.5) / d) * (1 - 2 * (j - 0.5) / J)  # l_kj at (k-1/2, j-1/2)
            assert code == pytest.approx(2 * centre)


def encoders(encoding="position", temporal=True, count=3, words=9, scale=2.0):
    torch.manual_seed(1)
    config = EncoderConfig(embedding_dim=6, encoding=encoding, temporal=temporal, memory_size=5, position_scale=scale)
    return [StoryEncoder(config, words) for _ in range(count)]


def random_story(words=9, unknown=False):
    """(B=4, S=5, W=7) ids, left-aligned sentences of 0-7 words (ids past `words` when unknown), and its mask."""
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(1, words + 3 if unknown else words, (4, 5, 7), generator=generator)
    lengths = torch.randint(0, 8, (4, 5), generator=generator)
    ids = ids.masked_fill(torch.arange(7) >= lengths[..., None], PAD_ID)
    return ids, lengths > 0


def test_bag_table_is_the_papers_weights_regrouped():
    enc = encoder()  # position_scale 1
    table = enc.bag_table(4, torch.device("cpu"))  # (W+1, 2, W)
    k = torch.arange(1, 5) / 4  # k/d
    for J in range(1, 5):
        weights = table[J, 0][:, None] + table[J, 1][:, None] * k  # (W, D): f_j + (k/d) g_j
        torch.testing.assert_close(weights[:J], position_encoding(torch.tensor(J), 4, 4)[:J])
        assert (table[J, :, J:] == 0).all()  # past the sentence's end
    assert (table[0] == 0).all()
    assert encoder("bow").bag_table(3, torch.device("cpu"))[2].tolist() == [[1.0, 1.0, 0.0]]


@pytest.mark.parametrize("encoding", ["position", "bow"])
@pytest.mark.parametrize("temporal", [True, False])
@pytest.mark.parametrize("unknown", [False, True])
def test_encode_many_is_each_encoders_own_encoding(encoding, temporal, unknown):
    many = encoders(encoding, temporal)
    ids, mask = random_story(unknown=unknown)
    ages = slot_ages(mask)
    encoded = encode_many(many, ids, ages)  # (B, S, n, D)
    assert encoded.shape == (4, 5, 3, 6)
    for index, enc in enumerate(many):
        torch.testing.assert_close(encoded[:, :, index], enc(ids, ages))
        # a question: no temporal row
        torch.testing.assert_close(encode_many(many, ids[:, 0])[:, index], enc.encode_words(ids[:, 0]))


def test_encode_many_gives_temporal_rows_to_the_leading_sentences_only():
    many = encoders()
    ids, mask = random_story()
    ages = slot_ages(mask[:, :3])  # the first 3 slots are the story, the other 2 are something else
    encoded = encode_many(many, ids, ages)
    torch.testing.assert_close(encoded[:, :3, 1], many[1](ids[:, :3], ages))
    torch.testing.assert_close(encoded[:, 3:, 1], many[1].encode_words(ids[:, 3:]))
    assert (encode_many(many, torch.zeros(2, 1, 3, dtype=torch.long)) == 0).all()  # null sentences encode to 0


@pytest.mark.parametrize("encoding", ["position", "bow"])
def test_encode_many_has_each_encoders_gradients_and_none_for_pad(encoding):
    many, reference = encoders(encoding), encoders(encoding)
    ids, mask = random_story(unknown=True)
    ages = slot_ages(mask)
    target = torch.randn(4, 5, 3, 6, generator=torch.Generator().manual_seed(3))
    (encode_many(many, ids, ages) * target).sum().backward()
    sum((enc(ids, ages) * target[:, :, i]).sum() for i, enc in enumerate(reference)).backward()
    for enc, ref in zip(many, reference):
        torch.testing.assert_close(enc.word_embedding.weight.grad, ref.word_embedding.weight.grad)
        torch.testing.assert_close(enc.temporal_embedding.grad, ref.temporal_embedding.grad)
        assert torch.count_nonzero(enc.word_embedding.weight.grad[PAD_ID]) == 0
