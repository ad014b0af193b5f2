"""memqa.models.ntm_qa: the NTM reading bAbI stories, its attention mapped to sentences, and the reader
contract (shapes, padding, gradients to the shared encoder, overfitting, seeds, save and load)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from memqa.config import EncoderConfig, NTMQAConfig, TrainConfig
from memqa.data.batching import encode_examples
from memqa.errors import ConfigError
from memqa.models.ntm_qa import NTMQA, sentence_attention, written_by
from memqa.models.registry import build_model
from memqa.reader import Reader
from memqa.train import evaluate_set, fit


def small_config(**changes) -> NTMQAConfig:
    return NTMQAConfig(**{"encoder": EncoderConfig(memory_size=10, temporal=False), "memory_rows": 16,
                          "controller_size": 32, **changes})


def model(vocab, seed=0, **changes) -> NTMQA:
    torch.manual_seed(seed)
    return NTMQA(small_config(**changes), vocab)


@pytest.fixture(scope="module")
def batch(tiny_examples, tiny_vocab):
    # Questions 0 (2 sentences), 2 (6 sentences) and 4 (4 sentences): stories of different lengths.
    return encode_examples(tiny_examples, tiny_vocab, memory_size=10).batch(torch.tensor([0, 2, 4]))


def test_written_by_by_hand():
    # One row; step 0 writes all of it, step 1 half, step 2 a quarter: what is left of each step's write.
    writes = torch.tensor([[[1.0], [0.5], [0.25]]])  # (B=1, T=3, N=1)
    torch.testing.assert_close(written_by(writes), torch.tensor([[[1.0 * 0.5 * 0.75], [0.5 * 0.75], [0.25]]]))


def test_sentence_attention_by_hand():
    # Three rows. Sentence 0 writes row 0, sentence 1 row 1, sentence 2 overwrites row 0 half; the first
    # question step writes row 2 and nothing else. Step 0 reads row 0, step 1 rows 1 and 2 evenly.
    story = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0.5, 0, 0]]])  # (1, S=3, N=3)
    question_writes = torch.tensor([[[0, 0, 1.0], [0, 0, 0]]])  # (1, K=2, N)
    reads = torch.tensor([[[1.0, 0, 0], [0, 0.5, 0.5]]])  # (1, K, N)
    attention = sentence_attention(story, question_writes, reads)  # (1, K, S)
    torch.testing.assert_close(attention, torch.tensor([[[0.5, 0.0, 0.5], [0.0, 0.5, 0.0]]]))


def test_output_shapes_and_attention(tiny_vocab, batch):
    output = model(tiny_vocab, hops=2).eval()(batch)
    B, S = batch.memory_mask.shape
    assert output.logits.shape == (B, tiny_vocab.num_answers)
    assert output.attention.shape == (B, 2, S)
    assert torch.isfinite(output.logits).all()
    assert (output.attention >= 0).all() and (output.attention.sum(dim=2) <= 1 + 1e-5).all()
    assert (output.attention[~batch.memory_mask[:, None, :].expand_as(output.attention)] == 0).all()


@pytest.mark.parametrize("temporal", [False, True])
def test_padding_slots_are_not_steps(tiny_vocab, batch, temporal):
    # The same questions with five more padding slots at the end of every story answer the same.
    net = model(tiny_vocab, encoder=EncoderConfig(memory_size=15, temporal=temporal)).eval()
    padded = batch._replace(story_ids=torch.nn.functional.pad(batch.story_ids, (0, 0, 0, 5)),
                            memory_mask=torch.nn.functional.pad(batch.memory_mask, (0, 5)))
    with torch.no_grad():
        plain, longer = net(batch), net(padded)
    torch.testing.assert_close(longer.logits, plain.logits)
    torch.testing.assert_close(longer.attention[:, :, : batch.memory_mask.shape[1]], plain.attention)


def test_each_question_is_answered_alone(tiny_vocab, batch):
    # A batch is only a speed-up: a question answered alone gets the same scores.
    net = model(tiny_vocab).eval()
    with torch.no_grad():
        together = net(batch).logits
        alone = torch.cat([net(batch._replace(**{f: getattr(batch, f)[i : i + 1] for f in batch._fields})).logits
                           for i in range(len(together))])
    torch.testing.assert_close(alone, together)


def test_gradients_reach_the_shared_encoder_and_every_head(tiny_vocab, batch):
    net = model(tiny_vocab)
    net.loss(batch, net(batch)).backward()
    assert net.encoder.word_embedding.weight.grad.abs().sum() > 0
    assert net.cell.head_layer.weight.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_same_seed_same_logits(tiny_vocab, batch):
    first, second, other = model(tiny_vocab, 0).eval(), model(tiny_vocab, 0).eval(), model(tiny_vocab, 1).eval()
    torch.testing.assert_close(first(batch).logits, second(batch).logits)
    assert not torch.allclose(first(batch).logits, other(batch).logits)


@pytest.mark.parametrize("change", [{"hops": 0}, {"heads": 0}, {"controller": "gru"}, {"initial_memory": "none"},
                                    {"shift_range": 16}])
def test_bad_configs(change):
    with pytest.raises(ConfigError):
        small_config(**change)


def test_registry_and_feedforward_controller(tiny_vocab, batch):
    net = build_model("ntm-qa", small_config(controller="feedforward", heads=2), tiny_vocab).eval()
    assert net(batch).attention.shape == (3, 3, batch.memory_mask.shape[1])


def test_overfits_the_tiny_fixture_and_round_trips(tiny_examples, tmp_path):
    train = TrainConfig(epochs=60, batch_size=4, learning_rate=0.01, max_grad_norm=10.0, valid_fraction=0.0,
                        linear_start_epochs=0)
    result = fit("ntm-qa", small_config(), train, tiny_examples)
    encoded = encode_examples(tiny_examples, result.vocab, result.model.config.encoder.memory_size)
    assert evaluate_set(result.model, encoded)[1] == 1.0
    reader = Reader(result.model, result.vocab)
    reader.save_pretrained(tmp_path / "r")
    loaded = Reader.from_pretrained(tmp_path / "r")
    assert loaded.kind == "ntm-qa"
    batch = encoded.batch(slice(None))
    torch.testing.assert_close(loaded.model(batch).logits, reader.model(batch).logits)
    answer = loaded.answer("Mary moved to the bathroom. John went to the hallway.", "Where is Mary?")
    assert answer.answer == "bathroom" and len(answer.hops) == loaded.model.config.hops


def test_config_round_trips_through_json():
    from memqa.config import from_dict, to_dict

    config = dataclasses.replace(small_config(), heads=3, controller="feedforward")
    assert from_dict(NTMQAConfig, to_dict(config)) == config


# --- the command line: `--reader ntm` with a bAbI task or file trains this reader ------------------------------

def invoke(*args):
    from typer.testing import CliRunner

    from memqa_cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_trains_asks_and_evaluates(tmp_path):
    from helpers import TINY_TEST, TINY_TRAIN, babi_tree

    out = tmp_path / "nq"
    result = invoke("train", "--reader", "ntm", "--train-file", TINY_TRAIN, "--test-file", TINY_TEST, "--out", out,
                    "--epochs", "2", "--hops", "2", "--heads", "1", "--controller-size", "16", "--initial-memory", "rows")
    assert result.exit_code == 0, result.output
    reader = Reader.from_pretrained(out)
    assert reader.kind == "ntm-qa"
    assert (reader.model.config.hops, reader.model.config.heads, reader.model.config.controller_size,
            reader.model.config.initial_memory) == (2, 1, 16, "rows")
    assert reader.info["train_config"]["learning_rate"] == 1e-3 and reader.info["train_config"]["epochs"] == 2
    assert reader.info["train_config"]["length_buckets"] == 0  # batches drawn at random
    result = invoke("ask", out, "--text", "Mary moved to the bathroom. John went to the hallway.", "-q", "Where is Mary?")
    assert result.exit_code == 0, result.output
    assert "hop 2" in result.stdout and "hop 3" not in result.stdout
    assert "Mary moved to the bathroom." in result.stdout
    data_dir = babi_tree(tmp_path, tasks=(1,))
    result = invoke("train", "--reader", "ntm", "--task", "1", "--data-dir", data_dir, "--out", tmp_path / "t1",
                    "--epochs", "1", "--controller-size", "8")
    assert result.exit_code == 0, result.output
    assert Reader.from_pretrained(tmp_path / "t1").info["tasks"] == [1]
    result = invoke("evaluate", tmp_path / "t1", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    result = invoke("train", "--reader", "ntm", "--tasks", "1", "--joint", "--data-dir", data_dir, "--out",
                    tmp_path / "joint", "--epochs", "1", "--controller-size", "8", "--length-buckets", "3")
    assert result.exit_code == 0, result.output
    joint = Reader.from_pretrained(tmp_path / "joint")
    assert joint.kind == "ntm-qa" and joint.info["train_config"]["length_buckets"] == 3
    assert joint.model.config.heads == 2  # the default


@pytest.mark.parametrize("flags, message", [
    (["--sequences", "100"], "--sequences applies to --reader ntm or lstm (the algorithmic tasks) only, not bAbI stories"),
    (["--optimizer", "adam"], "--optimizer applies to --reader ntm or lstm (the algorithmic tasks) only, not bAbI stories"),
    (["--random-noise", "0.1"], "--random-noise does not apply to --reader ntm on bAbI stories"),
    (["--controller", "gru"], "controller must be 'lstm' or 'feedforward'"),
])
def test_cli_refuses_what_does_not_apply(tmp_path, flags, message):
    from helpers import TINY_TRAIN

    result = invoke("train", "--reader", "ntm", "--train-file", TINY_TRAIN, "--out", tmp_path / "x", "--epochs", "1",
                    *flags)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "x").exists()


def test_heads_start_writing_one_row_per_sentence(tiny_vocab, batch):
    # START_* biases: before training, sentence t is written to row t + 1 (the initial focus is row 0, each
    # step moves it one row), so each sentence's row holds it alone and the attention on it is readable.
    from memqa.models.ntm_qa import START_GATE_LOGIT, START_KEY_STRENGTH

    net = model(tiny_vocab).eval()
    size, width, heads = net.cell.addressing_size, net.config.memory_width, net.config.heads
    bias = net.cell.head_layer.bias
    assert heads == 2  # the default: heads 0-1 read, 2-3 write
    for read in range(heads):  # the read heads: content
        assert bias[read * size + width + 1] == START_GATE_LOGIT and bias[read * size + width] == START_KEY_STRENGTH
    for write in range(heads, 2 * heads):  # the write heads: location
        assert bias[write * size + width + 1] == -START_GATE_LOGIT
    writes = []
    state = net.cell.initial_state(torch.zeros(3, net.config.encoder.embedding_dim + 1))
    sentences = torch.nn.functional.pad(net.encoder(batch.story_ids), (0, 1))
    with torch.no_grad():
        for slot in range(2):  # every story has at least 2 sentences
            _, state = net.cell.step(sentences[:, slot], state)
            writes.append(state.write_weightings[:, 0])  # (B, N)
    assert [w.argmax(dim=1).tolist() for w in writes] == [[1, 1, 1], [2, 2, 2]]
    assert all((w.max(dim=1).values > 0.9).all() for w in writes)


def test_no_head_start_and_configs_saved_before_it(tiny_vocab):
    from memqa.config import from_dict, to_dict
    from memqa.models.ntm_qa import START_KEY_STRENGTH

    net = model(tiny_vocab, head_start=False)
    assert net.cell.head_layer.bias.abs().max() < 1  # torch's uniform init, nothing set
    saved = to_dict(small_config())
    del saved["head_start"]  # a reader saved before the field existed started its heads
    assert from_dict(NTMQAConfig, saved).head_start is True
    assert model(tiny_vocab).cell.head_layer.bias.max() == START_KEY_STRENGTH


def test_stopped_then_resumed_is_bit_identical(tiny_examples, tmp_path):
    # The reader trains with Adam: its moments are in the saved state, so a resumed run ends where one never stopped.
    from memqa.resume import StateStore

    schedule = TrainConfig(epochs=4, batch_size=4, learning_rate=0.01, max_grad_norm=10.0, linear_start_epochs=0,
                           length_buckets=2)  # batches grouped by story length are redrawn alike too

    def run(on_epoch=None):
        return fit("ntm-qa", small_config(), schedule, tiny_examples, on_epoch=on_epoch,
                   checkpoints=lambda repeat: StateStore(tmp_path / f"repeat-{repeat}"))

    def stop_in_epoch_3(repeat, record, total):
        if record.epoch == 3:
            raise KeyboardInterrupt  # epoch 3 trained, not saved: it is redone

    uninterrupted = fit("ntm-qa", small_config(), schedule, tiny_examples)
    assert run(stop_in_epoch_3).stopped == "interrupted"
    resumed = run()
    assert resumed.stopped is None and resumed.history == uninterrupted.history
    a, b = resumed.model.state_dict(), uninterrupted.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
