"""memqa.models.memnn and memqa.nn.ranking: hand-computed scores and picks, write time, the margin
loss, the reader contract (shapes, seeds, save/load), the supporting-facts requirement, the CLI."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from helpers import BABI_DIR, TINY_TEST, TINY_TRAIN, requires_babi, small_memn2n_config
from test_cli import assert_ok, assert_one_line_error, invoke, plain

from memqa.config import EncoderConfig, MemNNConfig, TrainConfig, from_dict, to_dict
from memqa.data.babi import Example, read_babi_file
from memqa.data.batching import encode_examples
from memqa.data.vocab import Vocab
from memqa.errors import DataError
from memqa.evaluate import fact_accuracy, picked_facts_match
from memqa.models.memnn import OLDER_THAN_OTHER, MemNN, picks_from_attention
from memqa.models.registry import build_model, reader_class
from memqa.nn.encoder import StoryEncoder
from memqa.nn.ranking import hop_values, margin_ranking_loss, pick_memory, write_order
from memqa.reader import Reader, load_reader
from memqa.train import evaluate_set, fit, train_model

FAST = ["--epochs", "3", "--batch-size", "8", "--embedding-dim", "10"]
OVERFIT = TrainConfig(epochs=25, batch_size=4, learning_rate=0.05)


def small_config(**changes) -> MemNNConfig:
    """A small MemNN (d = 10, memory of 10 sentences); `encoder__x=...` changes the encoder."""
    encoder = {k[len("encoder__"):]: v for k, v in changes.items() if k.startswith("encoder__")}
    model = {k: v for k, v in changes.items() if not k.startswith("encoder__")}
    return MemNNConfig(encoder=EncoderConfig(**{"embedding_dim": 10, "memory_size": 10, "temporal": False, **encoder}),
                       **model)


def new_model(vocab, seed=0, **changes) -> MemNN:
    torch.manual_seed(seed)
    return MemNN(small_config(**changes), vocab)


@pytest.fixture(scope="module")
def tiny_set(tiny_examples, tiny_vocab):
    return encode_examples(tiny_examples, tiny_vocab, memory_size=10)


@pytest.fixture(scope="module")
def batch(tiny_set):
    return tiny_set.batch(torch.tensor([0, 2, 4]))  # stories of 2, 6 and 4 sentences


@pytest.fixture(scope="module")
def trained(tiny_vocab, tiny_set):
    """A MemNN trained on the whole tiny fixture."""
    model = new_model(tiny_vocab)
    return train_model(model, tiny_set, tiny_set, OVERFIT, vocab=tiny_vocab)


# --- a two-sentence story, by hand ----------------------------------------------------------------

TWO = [Example((("mary", "went", "kitchen"), ("john", "went", "garden")), ("where", "is", "mary"), "kitchen", (0,)),
       Example((("mary", "went", "kitchen"), ("mary", "went", "garden")), ("where", "is", "mary"), "garden", (1,))]


def hand_model(*, time_features=False) -> tuple[MemNN, Vocab]:
    """d = 2, bag of words, one hop, linear R; every weight zero except those set here:
    question "mary" -> (1, 0); memory "mary" -> (2, 0), "john" -> (0, 3); m_∅ -> (0.5, 0)."""
    vocab = Vocab.build(TWO)
    config = small_config(encoder__embedding_dim=2, encoder__encoding="bow", hops=1, time_features=time_features,
                          match_features=False, nonlinear=False)
    model = MemNN(config, vocab).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        word = vocab.words.index
        model.question.word_embedding.weight[word("mary")] = torch.tensor([1.0, 0.0])
        model.candidates.words.word_embedding.weight[word("mary")] = torch.tensor([2.0, 0.0])
        model.candidates.words.word_embedding.weight[word("john")] = torch.tensor([0.0, 3.0])
        model.stop_memory.copy_(torch.tensor([0.5, 0.0]))
    return model, vocab


def two_sentence_batch(vocab, index=0):
    return encode_examples(TWO, vocab, memory_size=10).batch(slice(index, index + 1))


def test_hand_computed_scores_and_pick():
    model, vocab = hand_model()
    batch = two_sentence_batch(vocab)
    memory, _, _ = model._write(batch)
    from memqa.models.memnn import start_state

    state = start_state(memory, model.question.encode_words(batch.question_ids))
    # s_O(x, m_i) = (1, 0)·y_i: mary went kitchen -> 2, john went garden -> 0, m_∅ -> 0.5
    expected = torch.tensor([[0.0, 2.0, 1.5], [-2.0, 0.0, -0.5], [-1.5, 0.5, 0.0]])
    torch.testing.assert_close(model._hop_comparisons(memory, state)[0], expected)
    attention = model(batch).attention  # (1, 1, 2)
    assert attention.tolist() == [[[1.0, 0.0]]]
    # The question now weighs the second dimension: john (0·1 + 3·1 = 3) beats mary (2).
    with torch.no_grad():
        model.question.word_embedding.weight[vocab.words.index("mary")] = torch.tensor([1.0, 1.0])
    assert model(batch).attention.tolist() == [[[0.0, 1.0]]]


def test_the_stop_memory_wins_when_no_memory_matches():
    model, vocab = hand_model()
    with torch.no_grad():
        model.stop_memory.copy_(torch.tensor([5.0, 0.0]))  # 5 > 2: nothing in memory is worth finding
    assert model(two_sentence_batch(vocab)).attention.tolist() == [[[0.0, 0.0]]]  # a row of zeros: stopped


@pytest.mark.parametrize("weight, winner", [(-1.0, 1), (1.0, 0)])
def test_time_features_order_two_matching_facts(weight, winner):
    """Both sentences are about Mary and score 2; the write-time feature decides: a negative weight on
    "y older than y'" picks the latest fact (where is Mary *now*), a positive one the oldest."""
    model, vocab = hand_model(time_features=True)
    with torch.no_grad():
        model.time_features[OLDER_THAN_OTHER] = torch.tensor([weight, 0.0])  # weight = (1, 0)·t
    batch = two_sentence_batch(vocab, index=1)
    memory, _, _ = model._write(batch)
    assert memory.order[0, :2, :2].tolist() == [[0.0, 1.0], [-1.0, 0.0]]  # slot 0 was written first
    assert model(batch).attention[0, 0].tolist() == [float(i == winner) for i in range(2)]


def test_write_order_and_picks_by_hand():
    ages = torch.tensor([[2, 1, 0, 0]])  # three sentences, oldest first, then padding
    real = torch.tensor([[True, True, True, False]])
    order = write_order(ages, real)[0]
    assert order.tolist() == [[0, 1, 1, 0], [-1, 0, 1, 0], [-1, -1, 0, 0], [0, 0, 0, 0]]
    comparisons = torch.tensor([[[0.0, 1.0, -2.0], [-1.0, 0.0, 3.0], [2.0, -3.0, 0.0]]])  # a cycle: no memory beats all
    available = torch.tensor([[True, True, True]])
    assert hop_values(comparisons, available).tolist() == [[-2.0, -1.0, -3.0]]
    assert pick_memory(comparisons, available).tolist() == [1]  # the best worst case
    alone = torch.tensor([[False, False, True]])
    assert hop_values(comparisons, alone).tolist() == [[-torch.inf, -torch.inf, 0.0]]
    assert pick_memory(comparisons, alone).tolist() == [2]


def test_margin_ranking_loss_by_hand():
    negatives = torch.tensor([[False, True, True]])
    assert margin_ranking_loss(torch.tensor([[0.0, 0.3, 0.1]]), negatives, 0.1) == 0  # every margin holds
    # γ - margin for the negatives inside the margin: (0.1 - 0.05) + (0.1 - (-0.2)) = 0.35
    loss = margin_ranking_loss(torch.tensor([[0.0, 0.05, -0.2]]), negatives, 0.1)
    assert loss.item() == pytest.approx(0.35)


def test_model_loss_is_zero_when_margins_hold_and_positive_otherwise():
    model, vocab = hand_model()
    batch = two_sentence_batch(vocab)  # answer kitchen; the fact (score 2) beats john (0) and m_∅ (0.5) by > γ
    kitchen, garden = vocab.answer_id("kitchen"), vocab.answer_id("garden")
    with torch.no_grad():  # linear R: logits = answer · (question + fact); question = (1, 0)
        model.response.question.word_embedding.weight[vocab.words.index("mary")] = torch.tensor([1.0, 0.0])
        model.response.answer.weight[kitchen] = torch.tensor([0.3, 0.0])
        model.response.answer.weight[garden] = torch.tensor([0.1, 0.0])
    output = model(batch)
    assert output.logits[0, kitchen].item() == pytest.approx(0.3) and output.logits[0, garden].item() == pytest.approx(0.1)
    assert model.loss(batch, output).item() == 0  # 0.3 - 0.1 = 0.2 > γ = 0.1
    with torch.no_grad():
        model.response.answer.weight[garden] = torch.tensor([0.25, 0.0])  # margin 0.05 < γ
        model.stop_memory.copy_(torch.tensor([1.95, 0.0]))  # the fact leads m_∅ by 0.05 only
    output = model(batch)
    assert model.loss(batch, output).item() == pytest.approx((0.1 - 0.05) + (0.1 - 0.05))


# --- the reader contract --------------------------------------------------------------------------


@pytest.mark.parametrize("hops", [1, 3])
@pytest.mark.parametrize("nonlinear", [True, False])
def test_output_shapes(tiny_vocab, batch, hops, nonlinear):
    for training in (False, True):
        output = new_model(tiny_vocab, hops=hops, nonlinear=nonlinear).train(training)(batch)
        B, S = batch.memory_mask.shape
        assert output.logits.shape == (B, tiny_vocab.num_answers) and torch.isfinite(output.logits).all()
        assert output.attention.shape == (B, hops, S)
        assert set(output.attention.sum(dim=2).flatten().tolist()) <= {0.0, 1.0}  # one-hot, or stopped
        stopped = output.attention.sum(dim=2) == 0  # (B, K): once stopped, stopped
        assert (stopped[:, :-1] <= stopped[:, 1:]).all()
        assert (output.attention[~batch.memory_mask[:, None, :].expand_as(output.attention)] == 0).all()


def test_gradients_reach_every_story_encoder(tiny_vocab, batch):
    model = new_model(tiny_vocab, hops=2)
    model.loss(batch, model(batch)).backward()
    encoders = {name: m for name, m in model.named_modules() if isinstance(m, StoryEncoder)}
    assert set(encoders) == {"question", "found", "candidates.words", "candidates.matches", "response.question",
                             "response.facts.words", "response.facts.matches"}
    for name, encoder in encoders.items():
        grad = encoder.word_embedding.weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.stop_memory.grad.abs().sum() > 0 and model.time_features.grad.abs().sum() > 0


def test_hops_are_taught_the_annotated_facts_then_the_stop_memory(tiny_vocab, batch):
    S = batch.memory_mask.shape[1]  # m_∅ is slot S
    targets = new_model(tiny_vocab, hops=3).fact_targets(batch)
    assert targets.tolist() == [[fact, S, S] for fact in batch.supporting_ids[:, 0].tolist()]


def test_same_seed_same_logits_different_seed_different(tiny_vocab, batch):
    first = new_model(tiny_vocab, seed=5).eval()(batch).logits
    assert torch.equal(first, new_model(tiny_vocab, seed=5).eval()(batch).logits)
    assert not torch.allclose(first, new_model(tiny_vocab, seed=6).eval()(batch).logits)


def test_overfits_the_tiny_fixture(trained, tiny_set, tiny_examples):
    loss, accuracy = evaluate_set(trained.model, tiny_set)
    assert accuracy == 1.0 and trained.best.valid_accuracy == 1.0
    assert fact_accuracy(Reader(trained.model, trained.vocab), tiny_examples) == 1.0  # it also finds the annotated facts


def test_save_then_load_gives_identical_logits(trained, tiny_set, tmp_path):
    reader = Reader(trained.model, trained.vocab, {"tasks": []})
    loaded = load_reader(reader.save_pretrained(tmp_path / "r"))
    batch = tiny_set.batch(slice(None))
    with torch.no_grad():
        assert torch.equal(loaded.model(batch).logits, trained.model(batch).logits)
        assert torch.equal(loaded.model(batch).attention, trained.model(batch).attention)
    assert loaded.kind == "memnn" and loaded.model.config == trained.model.config
    assert json.loads((tmp_path / "r" / "config.json").read_text())["reader"] == "memnn"


def test_config_round_trip_and_registry(tiny_vocab):
    config = small_config(hops=3, margin=0.2, nonlinear=False)
    assert from_dict(MemNNConfig, json.loads(json.dumps(to_dict(config)))) == config
    assert MemNNConfig().encoder.temporal is False  # write time enters through the comparison features
    assert reader_class("memnn") is MemNN and isinstance(build_model("memnn", config, tiny_vocab), MemNN)
    with pytest.raises(Exception, match="hops"):
        dataclasses.replace(config, hops=0)


def test_picked_facts_match():
    attention = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]],  # picks 1, then stops
                              [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])  # picks 0, then 2
    assert picks_from_attention(attention).tolist() == [[1, 3], [0, 2]]
    supporting = torch.tensor([[1, -1, -1], [0, 1, 2]])  # the second question has 3 facts: judged on 2
    assert picked_facts_match(attention, supporting).tolist() == [True, False]
    assert picked_facts_match(attention, torch.tensor([[1], [0]])).tolist() == [True, False]


# --- supporting facts are required ----------------------------------------------------------------


def write_without_facts(tmp_path):
    lines = [line.rsplit("\t", 1)[0] if line.count("\t") == 2 else line
             for line in TINY_TRAIN.read_text().splitlines()]
    path = tmp_path / "no_facts.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_training_without_supporting_facts_is_a_clear_error(tmp_path):
    examples = read_babi_file(write_without_facts(tmp_path))
    with pytest.raises(DataError, match=r"no_facts.txt:3: no supporting facts \(18 of 18 questions have none\)"):
        fit("memnn", small_config(), TrainConfig(epochs=1), examples)
    fit("memn2n", small_memn2n_config(), TrainConfig(epochs=1, linear_start_epochs=0), examples)  # MemN2N needs none


def test_cli_training_without_supporting_facts(tmp_path):
    path = write_without_facts(tmp_path)
    assert_one_line_error(invoke("train", "--reader", "memnn", "--train-file", path, "--out", tmp_path / "r"),
                          "no supporting facts", "--reader memn2n")
    assert not (tmp_path / "r").exists()


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_reader(tmp_path_factory):
    out = tmp_path_factory.mktemp("memnn-cli") / "reader"
    result = invoke("train", "--reader", "memnn", "--train-file", TINY_TRAIN, "--test-file", TINY_TEST, "--out",
                    out, *FAST)
    return out, result


def test_cli_train(cli_reader):
    out, result = cli_reader
    assert "trained readers" in assert_ok(result)
    config = json.loads((out / "config.json").read_text())
    assert config["reader"] == "memnn" and config["model"]["hops"] == MemNNConfig().hops
    assert config["model"]["encoder"]["embedding_dim"] == 10 and config["info"]["train_config"]["epochs"] == 3


@pytest.mark.parametrize("flags, check", [
    (["--hops", "3"], lambda model: model["hops"] == 3),
    (["--margin", "0.2"], lambda model: model["margin"] == 0.2),
    (["--no-time-features", "--no-match-features"], lambda model: not model["time_features"] and not model["match_features"]),
    (["--linear", "--encoding", "bow"], lambda model: not model["nonlinear"] and model["encoder"]["encoding"] == "bow"),
])
def test_cli_flags_take_effect(tmp_path, flags, check):
    out = tmp_path / "r"
    assert_ok(invoke("train", "--reader", "memnn", "--train-file", TINY_TRAIN, "--out", out, "--epochs", "1", *flags))
    assert check(json.loads((out / "config.json").read_text())["model"])


@pytest.mark.parametrize("flag", [["--random-noise", "0.1"], ["--weight-tying", "layerwise"],
                                  ["--linear-start-epochs", "5"]])
def test_cli_flags_of_other_readers_are_errors(tmp_path, flag):
    assert_one_line_error(invoke("train", "--reader", "memnn", "--train-file", TINY_TRAIN, "--out", tmp_path / "r",
                                 *flag), f"{flag[0]} does not apply to --reader memnn")


def test_cli_memnn_flags_are_errors_for_memn2n(tmp_path):
    assert_one_line_error(invoke("train", "--train-file", TINY_TRAIN, "--out", tmp_path / "r", "--margin", "0.2"),
                          "--margin does not apply to --reader memn2n")


def test_cli_evaluate_reports_facts(cli_reader):
    out, _ = cli_reader
    (row,) = json.loads(assert_ok(invoke("evaluate", out, "--test-file", TINY_TEST, "--format", "json")))["tasks"]
    reader = load_reader(out)
    examples = read_babi_file(TINY_TEST)
    assert row["accuracy"] == pytest.approx(reader.evaluate(examples))
    assert row["facts"] == pytest.approx(fact_accuracy(reader, examples))
    lines = assert_ok(invoke("evaluate", out, "--test-file", TINY_TEST, "--format", "markdown")).strip().splitlines()
    assert lines[0].endswith("| facts (%) |") and lines[2].endswith(f"| {100 * row['facts']:.1f} |")
    assert "facts %" in assert_ok(invoke("evaluate", out, "--test-file", TINY_TEST))


def test_cli_ask_shows_the_facts_picked(trained, tmp_path):
    out = Reader(trained.model, trained.vocab).save_pretrained(tmp_path / "r")
    story = "Mary moved to the bathroom. John went to the hallway. Mary went to the kitchen."
    stdout = plain(assert_ok(invoke("ask", out, "--text", story, "-q", "Where is Mary?")))
    answer = load_reader(out).answer(story, "Where is Mary?")
    assert stdout.startswith(answer.answer)
    (picked, weight), = [(i, w) for i, w in enumerate(answer.hops[0].weights) if w > 0]  # one sentence at hop 1
    hop_1 = stdout[stdout.index("hop 1"):stdout.index("hop 2")]
    assert weight == 1.0 and answer.sentences[picked] in hop_1 and "1.000" in hop_1
    assert all(sentence not in hop_1 for i, sentence in enumerate(answer.sentences) if i != picked)
    assert answer.hops[1].weights == (0.0, 0.0, 0.0)  # every tiny question has one fact: hop 2 stops
    assert "hop 2: stop (no further supporting fact)" in stdout and "hop 3" not in stdout


# --- the real data (skipped without MEMQA_BABI_DIR) ------------------------------------------------


@requires_babi
def test_real_task_1_in_a_few_epochs():
    """Where is X now? Two epochs find the latest fact about X (write time) and answer from it."""
    from memqa.data.babi import load_task

    result = fit("memnn", MemNNConfig(), TrainConfig(epochs=2), load_task(1, "train", data_dir=BABI_DIR))
    test = load_task(1, "test", data_dir=BABI_DIR)
    reader = Reader(result.model, result.vocab)
    assert reader.evaluate(test) > 0.95 and fact_accuracy(reader, test) > 0.95
