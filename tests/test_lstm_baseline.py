"""The paper's LSTM baseline on the algorithmic tasks (Graves et al. 2014 §4, Table 3): Table 3's sizes and
rates by default, it learns a few copy sequences, it trains, saves, reloads, resumes, evaluates and is drawn
beside an NTM through the same commands (`memqa train --reader lstm`, `memqa evaluate`, `memqa plot`)."""

from __future__ import annotations

import json

import pytest
import torch
from test_ntm_cli import ANSI, SMALL_MEMORY, assert_ok, invoke
from test_ntm_model import assert_overfits
from test_ntm_resume import same_weights, stop_at_point, without_seconds

from memqa.config import LSTMBaselineConfig
from memqa.errors import ConfigError
from memqa.models.ntm import LSTMSequenceModel
from memqa.ntm_evaluate import episode, load_ntm
from memqa.ntm_pipeline import (BATCH_LEARNING_RATE_FACTOR, NTMTrainRequest, default_configs, load_ntm_request, resume_ntm,
                                schedule, train_ntm)
from memqa.tasks.algorithmic import CopyTask

# Table 3 of the paper: (units per layer, learning rate) of the 3-layer LSTM baseline, copied here by hand
TABLE_3 = {"copy": (256, 3e-5), "repeat-copy": (512, 3e-5), "associative-recall": (256, 1e-4),
           "priority-sort": (128, 3e-5)}
SMALL = ["--controller-size", "8"]


@pytest.mark.parametrize("task_name", sorted(TABLE_3))
def test_defaults_are_table_3(task_name):
    task, model, train = default_configs(task_name, reader="lstm")
    units, rate = TABLE_3[task_name]
    assert isinstance(model, LSTMBaselineConfig)
    assert (model.layers, model.hidden_size) == (3, units)
    assert (model.input_size, model.output_size) == (task.input_size, task.output_size)
    assert train.learning_rate == pytest.approx(rate * BATCH_LEARNING_RATE_FACTOR)  # memqa's batch of 8, as the NTM
    baseline = LSTMSequenceModel(model)
    assert (baseline.lstm.num_layers, baseline.lstm.hidden_size) == (3, units)
    # By hand: 4 gates of the first layer read the input and its state, the others two states (torch
    # keeps two biases a gate); then the linear output layer and the learned initial state of each layer.
    inputs, outputs = task.input_size, task.output_size
    gates = 4 * units * (inputs + units) + 8 * units + 2 * (4 * units * 2 * units + 8 * units)
    assert sum(p.numel() for p in baseline.parameters()) == gates + units * outputs + outputs + 2 * 3 * units


def test_unknown_reader_for_the_algorithmic_tasks():
    with pytest.raises(ConfigError, match="choose ntm or lstm"):
        default_configs("copy", reader="gru")


def tiny_model(**changes) -> LSTMSequenceModel:
    return LSTMSequenceModel(LSTMBaselineConfig(input_size=5, output_size=4, hidden_size=32, layers=2, **changes))


def test_outputs_are_the_answer_steps_and_read_the_input():
    torch.manual_seed(0)
    model = tiny_model()
    batch = CopyTask(bits=4, max_length=4).sample(3, torch.Generator().manual_seed(0), size=4)
    logits = model(batch).logits
    assert logits.shape == batch.targets.shape == (3, 4, 4)
    changed = batch._replace(inputs=batch.inputs.clone())
    changed.inputs[:, 0, 0] = 1 - changed.inputs[:, 0, 0]  # flip a bit of the first input vector
    assert not torch.allclose(model(changed).logits, logits)  # the answer depends on what came in
    with pytest.raises(ConfigError, match="no memory"):
        model(batch, trace=True)


def test_initial_state_is_learned():
    model = tiny_model()
    names = dict(model.named_parameters())
    batch = CopyTask(bits=4, max_length=4).sample(2, torch.Generator().manual_seed(0), size=3)
    model.loss(batch, model(batch)).backward()
    assert names["initial_hidden"].grad.abs().sum() > 0 and names["initial_cell"].grad.abs().sum() > 0


def test_overfits_a_few_short_copy_sequences():
    torch.manual_seed(0)
    assert_overfits(tiny_model(), CopyTask(bits=4, max_length=3).sample(4, torch.Generator().manual_seed(1), size=3),
                    steps=500)


def tiny_request(out, sequences: int = 96, optimizer: str = "rmsprop") -> NTMTrainRequest:
    task = CopyTask(bits=4, max_length=4)
    model = LSTMBaselineConfig(input_size=task.input_size, output_size=task.output_size, hidden_size=16,
                               optimizer=optimizer)
    return NTMTrainRequest(out, task, model, schedule(sequences, 32, batch_size=8, learning_rate=1e-3), 32)


@pytest.mark.parametrize("optimizer", ["rmsprop", "graves", "adam"])
def test_stopped_then_resumed_baseline_is_bit_identical(tmp_path, optimizer):
    reference = train_ntm(tiny_request(tmp_path / "reference", optimizer=optimizer))
    out = tmp_path / "run"
    stopped = train_ntm(tiny_request(out, optimizer=optimizer), on_point=stop_at_point(3))
    assert stopped.result.stopped == "interrupted"
    assert isinstance(load_ntm_request(out).model_config, LSTMBaselineConfig)
    resumed = resume_ntm(out)
    assert without_seconds(resumed.curve) == without_seconds(reference.curve)
    assert same_weights(resumed.result.model, reference.result.model)
    model, task, info = load_ntm(out)
    assert isinstance(model, LSTMSequenceModel) and task.name == "copy" and info["sequences_run"] == 96
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert "# memqa LSTM baseline: copy" in (card := (out / "README.md").read_text())
    assert f"{info['parameters']:,} parameters" in card
    with pytest.raises(ConfigError, match="no memory to picture"):
        episode(model, task, 3)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("baseline")
    common = ["--task", "copy", "--sequences", 64, "--eval-every", 32]
    lstm = assert_ok(invoke("train", "--reader", "lstm", *common, "--out", folder / "lstm", *SMALL))
    ntm = assert_ok(invoke("train", "--reader", "ntm", *common, "--out", folder / "ntm", *SMALL_MEMORY))
    return folder, lstm, ntm


def test_cli_train_and_evaluate(cli_runs):
    folder, stdout, _ = cli_runs
    assert "trained LSTM baseline" in stdout
    config = json.loads((folder / "lstm" / "config.json").read_text())
    assert config["reader"] == "lstm-sequence"
    assert (config["model"]["hidden_size"], config["model"]["layers"]) == (8, 3)
    assert len(config["info"]["curve"]) == 2
    report = folder / "lstm.json"
    assert_ok(invoke("evaluate", folder / "lstm", "--lengths", "2,5", "--sequences", 8, "--format", "json",
                     "--output", report))
    scores = json.loads(report.read_text())["scores"]
    assert [row["size"] for row in scores] == [2, 5] and all(0 <= row["bit_errors"] <= 40 for row in scores)
    assert "LSTM baseline copy" in assert_ok(invoke("evaluate", folder / "lstm", "--lengths", "3", "--sequences", 4))


def test_cli_plot_an_ntm_beside_its_baseline(cli_runs, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the memqa[plots] extra")
    folder, _, _ = cli_runs
    stdout = assert_ok(invoke("plot", folder / "lstm", folder / "ntm", "--out", tmp_path / "copy", "--lengths", "2,4",
                              "--sequences", 4, "--episode-length", 3))
    assert "| length | LSTM baseline seed 0 | NTM seed 0 |" in stdout
    for name in ("learning", "generalisation", "episode"):  # the episode is the NTM's
        assert (tmp_path / f"copy-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_ok(invoke("plot", folder / "lstm", "--out", tmp_path / "alone", "--lengths", "2", "--sequences", 4))
    assert (tmp_path / "alone-learning.png").is_file() and not (tmp_path / "alone-episode.png").exists()
    result = invoke("plot", folder / "lstm", "--out", tmp_path / "rows", "--lengths", "2", "--memory-size", 20)
    assert result.exit_code == 1 and "these runs are LSTM baselines, which have no memory" in ANSI.sub("", result.stderr)


@pytest.mark.parametrize("flags, fragment", [
    (["--heads", "2"], "--heads does not apply to --reader lstm"),
    (["--controller", "feedforward", "--memory-size", "12"], "--controller, --memory-size do not apply"),
    (["--task", "3"], "--reader lstm needs --task copy"),
])
def test_cli_refuses_what_the_baseline_lacks(tmp_path, monkeypatch, flags, fragment):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--reader", "lstm", "--out", "x", *(["--task", "copy"] if "--task" not in flags else []), *flags]
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert fragment in ANSI.sub("", result.stderr).replace("\n", " ")
    assert not (tmp_path / "x").exists()


def test_cli_resume_checks_the_baseline_flags(tmp_path):
    out = tmp_path / "run"
    train_ntm(tiny_request(out), on_point=stop_at_point(2))
    result = invoke("train", "--resume", out, "--reader", "ntm")
    assert result.exit_code == 1 and "contradicts the run" in ANSI.sub("", result.stderr).replace("\n", " ")
    result = invoke("train", "--resume", out, "--controller-size", "32")
    assert result.exit_code == 1 and "saved: 16" in ANSI.sub("", result.stderr).replace("\n", " ")
    assert "trained LSTM baseline" in assert_ok(invoke("train", "--resume", out, "--reader", "lstm",
                                                       "--controller-size", "16"))
