"""Words never seen in training (the Memory Networks paper's "previously unseen words" and "exact
matches"): the vocabulary's "keep" policy, zero embeddings that keep their place, context features by
hand, and a MemNN that finds the fact about a name it never saw."""

from __future__ import annotations

import json

import pytest
import torch
from test_cli import assert_ok, invoke, plain
from test_memnn import OVERFIT, new_model

from memqa.config import EncoderConfig
from memqa.data.babi import Example
from memqa.data.batching import encode_examples
from memqa.data.vocab import PAD_ID
from memqa.models.memn2n import MemN2N
from memqa.nn.encoder import ContextFeatures, StoryEncoder, position_encoding
from memqa.reader import Reader, load_reader
from memqa.train import train_model

STORY = "Mary went to the kitchen. Frodo journeyed to the garden. Sandra moved to the office."


def test_keep_gives_each_new_word_one_id_past_the_vocabulary(tiny_vocab):
    V, unseen = tiny_vocab.num_words, {}
    ids, missing = tiny_vocab.word_ids(["frodo", "went", "frodo", "bilbo"], "keep", unseen)
    assert ids == [V, tiny_vocab.word_ids(["went"])[0][0], V, V + 1] and missing == ["frodo", "frodo", "bilbo"]
    again, _ = tiny_vocab.word_ids(["where", "is", "bilbo"], "keep", unseen)  # the same dict: the same id
    assert again[-1] == V + 1
    assert tiny_vocab.word_ids(["frodo", "went"], "ignore")[0] == tiny_vocab.word_ids(["went"])[0]


def test_encoded_examples_keep_a_new_name_in_story_and_question(tiny_vocab):
    example = Example((("frodo", "went", "to", "the", "kitchen"), ("gollum", "went", "to", "the", "office")),
                      ("where", "is", "frodo"), "kitchen")
    encoded = encode_examples([example], tiny_vocab, memory_size=10, unknown="keep")
    story, question = encoded.tensors.story_ids[0], encoded.tensors.question_ids[0]
    V = tiny_vocab.num_words
    assert story[0, 0] == V and story[1, 0] == V + 1 and question[2] == V  # frodo = V, gollum = V + 1
    assert encoded.unknown_words == {"frodo", "gollum"}
    ignored = encode_examples([example], tiny_vocab, memory_size=10)  # the default drops them
    assert (ignored.tensors.story_ids < V).all() and ignored.tensors.story_ids[0, 0, 0] != V


def test_an_unseen_id_embeds_to_zero_and_keeps_its_place():
    torch.manual_seed(0)
    encoder = StoryEncoder(EncoderConfig(embedding_dim=4, temporal=False, position_scale=1.0), num_words=5)
    a, b, unseen = 2, 3, 7  # 7 is past the 5-word vocabulary
    encoded = encoder.encode_words(torch.tensor([a, unseen, b]))
    weights = position_encoding(torch.tensor(3), 3, 4)  # (3, 4): the sentence still has J = 3 words
    table = encoder.word_embedding.weight
    assert torch.allclose(encoded, table[a] * weights[0] + table[b] * weights[2])


def test_context_features_by_hand():
    torch.manual_seed(0)
    context = ContextFeatures(EncoderConfig(embedding_dim=3), num_words=6)
    left, right = context.left.weight, context.right.weight
    words = torch.tensor([[2, 9, 4, PAD_ID], [9, 3, PAD_ID, PAD_ID]])  # 9: an unseen word
    unseen = words >= 6
    out = context(words, unseen)  # (2, 3)
    assert torch.allclose(out[0], left[2] + right[4])  # between "2" and "4"
    assert torch.allclose(out[1], right[3])  # first word: nothing to its left
    weights = torch.rand(2, 4, 3)
    weighted = context(words, unseen, weights)
    assert torch.allclose(weighted[0], (left[2] + right[4]) * weights[0, 1])
    assert torch.equal(context(words, torch.zeros_like(unseen)), torch.zeros(2, 3))  # nothing unseen: nothing added


@pytest.fixture(scope="module", params=[0.0, 0.2], ids=["exact-match", "exact-match+context"])
def trained_reader(request, tiny_vocab, tiny_examples):
    train = encode_examples(tiny_examples, tiny_vocab, memory_size=10)
    result = train_model(new_model(tiny_vocab, unseen_words=request.param), train, train, OVERFIT, vocab=tiny_vocab)
    return Reader(result.model, tiny_vocab)


def test_memnn_finds_the_fact_about_a_name_it_never_saw(trained_reader, monkeypatch):
    answer = trained_reader.answer(STORY, "Where is Frodo?")
    assert answer.unknown_words == ("frodo",)
    assert answer.hops[0].weights[1] == 1.0  # hop 1 picks "Frodo journeyed to the garden", by the exact match
    assert answer.answer == "garden"
    assert (trained_reader.model.context is not None) == (trained_reader.model.config.unseen_words > 0)
    # Dropping the new name instead ("where is ?"), the same reader picks another fact
    monkeypatch.setattr(type(trained_reader.model), "unknown_words", "ignore")
    assert trained_reader.answer(STORY, "Where is Frodo?").hops[0].weights[1] == 0.0


def test_training_with_unseen_words_is_seeded_and_saved(trained_reader, tmp_path):
    loaded = load_reader(trained_reader.save_pretrained(tmp_path / "r"))
    assert loaded.model.config == trained_reader.model.config
    assert loaded.answer(STORY, "Where is Frodo?") == trained_reader.answer(STORY, "Where is Frodo?")


def test_memn2n_still_ignores_unknown_words():
    assert MemN2N.unknown_words == "ignore"


def test_cli_unseen_words_flag_and_ask_note(tmp_path):
    from helpers import TINY_TRAIN

    out = tmp_path / "r"
    assert_ok(invoke("train", "--reader", "memnn", "--train-file", TINY_TRAIN, "--out", out, "--epochs", "2",
                     "--unseen-words", "0.25"))
    assert json.loads((out / "config.json").read_text())["model"]["unseen_words"] == 0.25
    result = invoke("ask", out, "--text", STORY, "-q", "Where is Frodo?")
    assert_ok(result)
    assert "never seen in training, read by exact matches and their context: frodo" in plain(result.stderr).replace("\n", " ")
    refused = invoke("train", "--train-file", TINY_TRAIN, "--out", tmp_path / "n2n", "--unseen-words", "0.1")
    assert refused.exit_code == 1 and "--unseen-words does not apply to --reader memn2n" in plain(refused.stderr)
