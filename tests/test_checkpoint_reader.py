"""memqa.checkpoint and memqa.reader: the saved folder, strict loading, Reader.answer."""

from __future__ import annotations

import json
import re

import pytest
import torch
from helpers import TINY_TEST, small_memn2n_config

from memqa.checkpoint import FORMAT_VERSION
from memqa.data.babi import read_babi_file
from memqa.data.vocab import Vocab
from memqa.errors import CheckpointError, DataError, VocabularyError
from memqa.models.memn2n import MemN2N
from memqa.reader import Reader, load_reader, split_story


def all_logits(reader, examples):
    return reader.model(reader.encode(examples).batch(slice(None))).logits


# --- save / load ---------------------------------------------------------------------------


def test_save_then_load_gives_identical_logits(trained_reader, saved_reader_dir, tiny_examples):
    loaded = load_reader(saved_reader_dir)
    with torch.no_grad():
        assert torch.equal(all_logits(loaded, tiny_examples), all_logits(trained_reader, tiny_examples))
    assert loaded.vocab == trained_reader.vocab
    assert loaded.model.config == trained_reader.model.config
    assert loaded.info == trained_reader.info
    assert not loaded.model.training


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_round_trip_of_untrained_readers(tmp_path, tiny_vocab, tiny_examples, tying):
    torch.manual_seed(3)
    config = small_memn2n_config(weight_tying=tying, hops=2, encoder__encoding="bow", encoder__temporal=False)
    reader = Reader(MemN2N(config, tiny_vocab), tiny_vocab)
    loaded = load_reader(reader.save_pretrained(tmp_path / "r"))
    with torch.no_grad():
        assert torch.equal(all_logits(loaded, tiny_examples), all_logits(reader, tiny_examples))
    assert loaded.model.config == config


def test_saved_folder_layout(saved_reader_dir, trained_reader):
    assert sorted(p.name for p in saved_reader_dir.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                                  "vocab.json"]
    text = (saved_reader_dir / "config.json").read_text()
    config = json.loads(text)
    assert text == json.dumps(config, indent=2, sort_keys=True) + "\n"  # sorted keys, indented
    assert set(config) == {"format_version", "reader", "model", "info"}
    assert config["format_version"] == FORMAT_VERSION and config["reader"] == "memn2n"
    assert config["model"]["encoder"]["memory_size"] == 10
    assert Vocab.load(saved_reader_dir / "vocab.json") == trained_reader.vocab
    card = (saved_reader_dir / "README.md").read_text()
    assert card.startswith("# memqa memn2n reader")
    assert "| train | 100.0% |" in card


def test_save_over_an_existing_reader_and_refuse_other_folders(trained_reader, tmp_path):
    target = trained_reader.save_pretrained(tmp_path / "r")
    trained_reader.save_pretrained(target)  # replacing a saved reader is fine
    assert (target / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not a saved reader"):
        trained_reader.save_pretrained(other)
    assert (other / "keep.txt").read_text() == "mine"


def expect_error(folder, file_name, *fragments):
    with pytest.raises(CheckpointError) as caught:
        load_reader(folder)
    message = str(caught.value)
    assert str(folder / file_name) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def edit_config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "nope"))):
        load_reader(tmp_path / "nope")


def test_truncated_weights(reader_copy):
    weights = reader_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    expect_error(reader_copy, "model.safetensors", "damaged")


def test_corrupted_weights_header(reader_copy):
    weights = reader_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"\x00" * 32  # the JSON header starts at byte 8
    weights.write_bytes(bytes(data))
    expect_error(reader_copy, "model.safetensors", "damaged")


def test_weights_that_are_not_safetensors(reader_copy):
    (reader_copy / "model.safetensors").write_text("import os; os.system('rm -rf /')\n")
    expect_error(reader_copy, "model.safetensors")


def test_nan_weights(reader_copy):
    from safetensors.torch import load_file, save_file

    state = load_file(str(reader_copy / "model.safetensors"))
    state["embeddings.1.word_embedding.weight"][1, 0] = float("nan")
    save_file(state, str(reader_copy / "model.safetensors"))
    expect_error(reader_copy, "model.safetensors", "NaN")


def test_missing_weights(reader_copy):
    (reader_copy / "model.safetensors").unlink()
    expect_error(reader_copy, "model.safetensors", "missing")


def test_config_with_unknown_key(reader_copy):
    edit_config(reader_copy, lambda c: c["model"].update(hopz=3))
    expect_error(reader_copy, "config.json", "hopz")


def test_config_with_unknown_top_level_key(reader_copy):
    edit_config(reader_copy, lambda c: c.update(extra=1))
    expect_error(reader_copy, "config.json", "extra")


def test_config_with_missing_key(reader_copy):
    edit_config(reader_copy, lambda c: c["model"]["encoder"].pop("temporal"))
    expect_error(reader_copy, "config.json", "temporal")


def test_config_saved_before_dropout_existed_loads_without_it(reader_copy):
    edit_config(reader_copy, lambda c: c["model"].pop("dropout"))
    assert load_reader(reader_copy).model.config.dropout == 0.0


@pytest.mark.parametrize("change", [
    lambda c: c["model"].update(hops=0),  # out of range
    lambda c: c["model"].update(hops=2.5),  # wrong type
    lambda c: c["model"].update(hops="3"),
    lambda c: c["model"].update(encoder=[]),
    lambda c: c.update(reader=["memn2n"]),
    lambda c: c.update(info="trained yesterday"),
], ids=["hops-0", "hops-float", "hops-str", "encoder-list", "reader-list", "info-str"])
def test_config_with_bad_values(reader_copy, change):
    edit_config(reader_copy, change)
    expect_error(reader_copy, "config.json")


def test_config_not_json(reader_copy):
    (reader_copy / "config.json").write_text("{\"reader\": ")
    expect_error(reader_copy, "config.json", "not valid JSON")


def test_config_missing(reader_copy):
    (reader_copy / "config.json").unlink()
    expect_error(reader_copy, "config.json", "missing")


def test_unknown_reader_kind(reader_copy):
    edit_config(reader_copy, lambda c: c.update(reader="transformer"))
    expect_error(reader_copy, "config.json", "transformer")


def test_newer_format_version(reader_copy):
    edit_config(reader_copy, lambda c: c.update(format_version=FORMAT_VERSION + 1))
    expect_error(reader_copy, "config.json", "upgrade memqa")


def test_config_that_does_not_match_the_weights(reader_copy):
    edit_config(reader_copy, lambda c: c["model"]["encoder"].update(embedding_dim=7))
    expect_error(reader_copy, "config.json", "(10, 7)")  # the embedding size comes from the config
    edit_config(reader_copy, lambda c: (c["model"]["encoder"].update(embedding_dim=20), c["model"].update(hops=2)))
    expect_error(reader_copy, "model.safetensors", "unexpected")


def test_vocab_with_an_extra_word(reader_copy):
    vocab = json.loads((reader_copy / "vocab.json").read_text())
    vocab["words"].append("zebra")
    (reader_copy / "vocab.json").write_text(json.dumps(vocab))
    expect_error(reader_copy, "vocab.json", "does not match the weights")


def test_vocab_with_an_extra_answer(reader_copy):
    vocab = json.loads((reader_copy / "vocab.json").read_text())
    vocab["answers"].append("moon")
    (reader_copy / "vocab.json").write_text(json.dumps(vocab))
    expect_error(reader_copy, "vocab.json")


def test_vocab_damaged(reader_copy):
    (reader_copy / "vocab.json").write_bytes(b"\x00\x01garbage")
    expect_error(reader_copy, "vocab.json")


# --- Reader.answer -------------------------------------------------------------------------


def test_answer_a_plain_text_story(trained_reader):
    # The second story of the fixture (the reader has learned it), two sentences on a line.
    story = "Sandra travelled to the office. Mary went to the kitchen.\nDaniel journeyed to the garden."
    answer = trained_reader.answer(story, "Where is Mary?")
    assert answer.answer == "kitchen"
    assert answer.sentences == ("Sandra travelled to the office.", "Mary went to the kitchen.",
                                "Daniel journeyed to the garden.")
    assert len(answer.hops) == 3
    for hop in answer.hops:
        assert len(hop.weights) == 3
        assert 0 < sum(hop.weights) <= 1 + 1e-5 and hop.empty == pytest.approx(1 - sum(hop.weights), abs=1e-5)
    assert 0.0 < answer.confidence <= 1.0
    assert answer.unknown_words == () and answer.dropped_sentences == 0
    assert len(answer.alternatives) == 3 and answer.answer not in [a for a, _ in answer.alternatives]
    assert answer.confidence >= max(p for _, p in answer.alternatives)
    top = answer.hops[0].top(2)
    assert len(top) == 2 and top[0][1] >= top[1][1]


def test_answer_bAbI_numbered_lines_and_question_lines(trained_reader):
    story = ["1 John travelled to the kitchen.", "2 Daniel went to the bathroom.", "3 Where is John? \tkitchen\t1",
             "4 John moved to the office."]
    answer = trained_reader.answer(story, "Where is John?")
    assert answer.sentences == ("John travelled to the kitchen.", "Daniel went to the bathroom.",
                                "John moved to the office.")
    # The question line and the numbers are read away: the same as the plain sentences, as a list or one text.
    plain = trained_reader.answer(list(answer.sentences), "Where is John?")
    assert answer.answer == plain.answer and answer.confidence == pytest.approx(plain.confidence)
    assert answer.answer == trained_reader.answer("\n".join(story), "Where is John?").answer


def test_split_story():
    assert split_story("A went. B left!\n\n3 C came? D\n4 Where?\tx\t1") == ["A went.", "B left!", "C came?", "D"]


def test_answer_lists_unknown_words(trained_reader):
    answer = trained_reader.answer("Zorro went to the kitchen. Mary flew to the garden.", "Where is Zorro now?")
    assert answer.unknown_words == ("flew", "now", "zorro")
    assert answer.answer in trained_reader.vocab.answers


def test_answer_errors(trained_reader):
    with pytest.raises(DataError, match="empty"):
        trained_reader.answer("", "Where is Mary?")
    with pytest.raises(DataError, match="empty"):
        trained_reader.answer("  \n 1 \n", "Where is Mary?")
    with pytest.raises(DataError):
        trained_reader.answer("Mary went home.", "?")
    with pytest.raises(VocabularyError, match="zorro"):
        trained_reader.answer("Mary went to the kitchen.", "Zorro?")


def test_answer_keeps_the_most_recent_sentences(trained_reader):
    assert trained_reader.memory_size == 10
    story = [f"Sandra went to the {place}." for place in ["garden", "office"] * 6] + ["Mary went to the hallway."]
    answer = trained_reader.answer(" ".join(story), "Where is Mary?")
    assert answer.dropped_sentences == 3
    assert answer.sentences == tuple(story[3:])
    assert all(len(hop.weights) == 10 for hop in answer.hops)
    same = trained_reader.answer(" ".join(story[3:]), "Where is Mary?")  # the dropped sentences change nothing
    assert (answer.answer, answer.confidence, answer.hops) == (same.answer, same.confidence, same.hops)
    assert same.dropped_sentences == 0


def test_evaluate_on_a_file(trained_reader):
    examples = read_babi_file(TINY_TEST)
    accuracy = trained_reader.evaluate(examples)
    assert 0.0 <= accuracy <= 1.0
    logits = all_logits(trained_reader, examples)
    expected = sum(trained_reader.vocab.answers[i] == e.answer for i, e in zip(logits.argmax(1).tolist(), examples))
    assert accuracy == expected / len(examples)
