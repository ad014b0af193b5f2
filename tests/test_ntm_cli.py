"""The NTM end to end: the trainer on an algorithmic task, save -> load, and `memqa train --reader
ntm`, `memqa evaluate --lengths` and `memqa plot` through typer's CliRunner with tiny settings."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest
import torch
from helpers import TINY_TRAIN
from typer.testing import CliRunner

from memqa.checkpoint import load_reader_files
from memqa.errors import CheckpointError
from memqa.ntm_evaluate import load_ntm, score_sizes
from memqa.ntm_pipeline import DEFAULT_SEQUENCES, NTMTrainRequest, default_configs, schedule, train_ntm
from memqa.reader import load_reader
from memqa.tasks.algorithmic import CopyTask, FixedSequences, RepeatCopyTask, uniform_int
from memqa_cli.main import app

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SMALL_MEMORY = ["--memory-size", "12", "--controller-size", "16"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_ok(result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return ANSI.sub("", result.stdout)


def tiny_request(out, seed: int = 0, sequences: int = 64) -> NTMTrainRequest:
    task, model, _ = default_configs("copy")
    task = CopyTask(bits=4, max_length=4)
    model = dataclasses.replace(model, input_size=task.input_size, output_size=task.output_size, memory_rows=8,
                                memory_width=6, controller_size=16)
    return NTMTrainRequest(out, task, model, schedule(sequences, 32, batch_size=8, learning_rate=1e-3, seed=seed), 32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ntm") / "copy"
    return train_ntm(tiny_request(out))


def test_training_keeps_a_curve_and_saves_a_folder(trained):
    assert trained.path.is_dir()
    assert sorted(p.name for p in trained.path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    info = json.loads((trained.path / "config.json").read_text())["info"]
    assert [point["sequences"] for point in info["curve"]] == [32, 64]
    assert info["task"] == {"name": "copy", "bits": 4, "min_length": 1, "max_length": 4}
    assert info["best_sequences"] == 32 * trained.result.best_epoch
    assert "bit errors/seq" in (trained.path / "README.md").read_text()


def test_save_then_load_gives_identical_outputs(trained):
    model, task, info = load_ntm(trained.path)
    batch = task.sample(4, torch.Generator().manual_seed(5), size=4)
    assert torch.equal(model(batch).logits, trained.result.model(batch).logits)
    _, vocab, _ = load_reader_files(trained.path)
    assert vocab is None  # no vocab.json: the NTM reads bits, not words


def test_an_ntm_folder_is_not_a_question_answering_reader(trained):
    with pytest.raises(CheckpointError, match="answers no questions"):
        load_reader(trained.path)


def test_training_is_seeded(tmp_path):
    logits = []
    for index, seed in enumerate((3, 3, 4)):
        result = train_ntm(tiny_request(tmp_path / f"run{index}", seed=seed, sequences=32)).result
        logits.append(result.model(CopyTask(bits=4).sample(2, torch.Generator().manual_seed(0), size=3)).logits)
    assert torch.equal(logits[0], logits[1])
    assert not torch.equal(logits[0], logits[2])


def test_score_sizes(trained):
    scores = score_sizes(trained.result.model, CopyTask(bits=4), [2, 6], sequences=10, batch_size=4)
    assert [(s.size, s.sequences) for s in scores] == [(2, 10), (6, 10)]
    assert all(0 <= s.bit_errors <= 4 * s.size and 0 <= s.perfect <= 1 for s in scores)


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "ntm-copy"
    result = invoke("train", "--reader", "ntm", "--task", "copy", "--out", out, "--sequences", 64, "--eval-every", 32,
                    "--batch-size", 16, *SMALL_MEMORY)
    return out, result


def test_cli_train(cli_run):
    out, result = cli_run
    stdout = assert_ok(result)
    assert "trained NTM" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["reader"] == "ntm-sequence"
    assert config["model"]["memory_rows"] == 12 and config["model"]["controller_size"] == 16
    assert config["info"]["train_config"]["batch_size"] == 16 and len(config["info"]["curve"]) == 2


def test_cli_train_sequences_default_per_task(tmp_path, monkeypatch):
    # without --sequences each task trains for its own default count; --sequences overrides it
    requests = []
    monkeypatch.setattr("memqa_cli.ntm.run_ntm_command", requests.append)
    cases = [("copy", [], 30_000), ("repeat-copy", [], 100_000), ("associative-recall", [], 100_000),
             ("priority-sort", [], 200_000), ("priority-sort", ["--sequences", 5000], 5000)]
    for index, (task, flags, _) in enumerate(cases):
        assert_ok(invoke("train", "--reader", "ntm", "--task", task, "--out", tmp_path / str(index), *flags))
    assert [(r.task.name, r.train_config.epochs * r.eval_every) for r in requests] == [
        (task, count) for task, _, count in cases]
    assert {task: count for task, flags, count in cases if not flags} == DEFAULT_SEQUENCES


def test_cli_train_optimizer_takes_effect(cli_run, tmp_path):
    # --optimizer graves trains with Graves 2013's RMSProp (another trajectory), is saved and reloads;
    # a folder saved before the setting existed loads as torch's RMSprop, what it trained with
    out = tmp_path / "graves"
    assert_ok(invoke("train", "--reader", "ntm", "--task", "copy", "--out", out, "--sequences", 64, "--eval-every", 32,
                     "--batch-size", 16, "--optimizer", "graves", *SMALL_MEMORY))
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["optimizer"] == "graves"
    assert config["info"]["curve"] != json.loads((cli_run[0] / "config.json").read_text())["info"]["curve"]
    assert load_ntm(out)[0].config.optimizer == "graves"
    adam = tmp_path / "adam"  # --optimizer adam (Collier & Beel 2018): a third trajectory
    assert_ok(invoke("train", "--reader", "ntm", "--task", "copy", "--out", adam, "--sequences", 64, "--eval-every", 32,
                     "--batch-size", 16, "--optimizer", "adam", *SMALL_MEMORY))
    assert load_ntm(adam)[0].config.optimizer == "adam"
    assert json.loads((adam / "config.json").read_text())["info"]["curve"] not in (config["info"]["curve"],
        json.loads((cli_run[0] / "config.json").read_text())["info"]["curve"])
    assert load_ntm(saved_before(cli_run[0], tmp_path, "optimizer"))[0].config.optimizer == "rmsprop"


def saved_before(run, tmp_path, setting: str):
    """A copy of `run` whose config.json lacks model.<setting>, as readers saved before it existed."""
    copy = tmp_path / f"saved-before-{setting}"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    del config["model"][setting]
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def test_cli_train_initial_memory_takes_effect(cli_run, tmp_path):
    # --initial-memory shared learns one row for every position: saved, reloaded with every row equal;
    # a folder saved before the setting existed loads as "rows", what it trained with
    out = tmp_path / "shared"
    assert_ok(invoke("train", "--reader", "ntm", "--task", "copy", "--out", out, "--sequences", 64, "--eval-every", 32,
                     "--batch-size", 16, "--initial-memory", "shared", *SMALL_MEMORY))
    assert json.loads((out / "config.json").read_text())["model"]["initial_memory"] == "shared"
    cell = load_ntm(out)[0].cell
    memory = cell.initial_state(torch.zeros(1, cell.config.input_size)).memory[0]  # (N, M)
    assert memory.shape == (12, 20) and memory.eq(memory[:1]).all() and not memory.eq(cell.config.memory_init).all()
    assert load_ntm(saved_before(cli_run[0], tmp_path, "initial_memory"))[0].config.initial_memory == "rows"
    result = invoke("train", "--reader", "lstm", "--task", "copy", "--out", tmp_path / "lstm", "--initial-memory", "shared")
    assert result.exit_code != 0 and "--initial-memory does not apply to --reader lstm" in result.output


def test_cli_train_state_noise_is_saved_and_refused_where_it_has_no_controller(cli_run, tmp_path):
    # --state-noise is the NTM's; saved in config.json and reloaded; a folder saved before it loads with none
    out = tmp_path / "noise"
    assert_ok(invoke("train", "--reader", "ntm", "--task", "copy", "--out", out, "--sequences", 32, "--eval-every", 16,
                     "--batch-size", 16, "--state-noise", 0.2, *SMALL_MEMORY))
    assert json.loads((out / "config.json").read_text())["model"]["state_noise"] == 0.2
    assert load_ntm(out)[0].cell.controller.noise == 0.2
    assert load_ntm(saved_before(cli_run[0], tmp_path, "state_noise"))[0].config.state_noise == 0.0
    result = invoke("train", "--reader", "lstm", "--task", "copy", "--out", tmp_path / "lstm", "--state-noise", 0.2)
    assert result.exit_code != 0 and "--state-noise does not apply to --reader lstm" in result.output
    result = invoke("train", "--train-file", TINY_TRAIN, "--state-noise", 0.2, "--out", tmp_path / "babi")
    assert result.exit_code != 0 and "--state-noise applies to --reader ntm only" in ANSI.sub("", result.output)


@pytest.mark.parametrize("reader, flags", [("lstm", ["--tasks", "1,2"]), ("lstm", ["--joint"]),
                                           ("lstm", ["--train-file", TINY_TRAIN]), ("ntm", ["--valid-fraction", "0.2"]),
                                           ("ntm", ["--length-buckets", "5"]), ("lstm", ["--length-buckets", "5"])])
def test_cli_train_refuses_babi_flags_for_an_algorithmic_task(tmp_path, reader, flags):
    # (--reader ntm with --tasks, --joint or --train-file trains the NTM reader of bAbI stories instead)
    result = invoke("train", "--reader", reader, "--task", "copy", "--out", tmp_path / "x", *flags)
    assert result.exit_code != 0 and "trains on one algorithmic --task" in " ".join(result.output.split())
    assert not (tmp_path / "x").exists()


def test_cli_train_decay_every_counts_sequences(tmp_path):
    # --decay-every is in sequences for the NTM; the curve records the rate of every evaluation
    out = tmp_path / "decay"
    assert_ok(invoke("train", "--reader", "ntm", "--task", "copy", "--out", out, "--sequences", 24, "--eval-every", 8,
                     "--batch-size", 8, "--lr", "1e-3", "--decay-every", 16, "--decay-factor", 0.25, "--weight-decay", 0.01,
                     *SMALL_MEMORY))
    info = json.loads((out / "config.json").read_text())["info"]
    assert [point["learning_rate"] for point in info["curve"]] == pytest.approx([1e-3, 1e-3, 2.5e-4])
    assert (info["train_config"]["decay_every"], info["train_config"]["weight_decay"]) == (2, 0.01)


@pytest.mark.parametrize("flags, fragment", [
    (["--decay-every", 12], "--decay-every 12 must be a multiple of --eval-every 8"),
    (["--decay-factor", 0.5], "--decay-factor needs --decay-every"),
])
def test_cli_train_bad_decay_flags(tmp_path, flags, fragment):
    result = invoke("train", "--reader", "ntm", "--task", "copy", "--out", tmp_path / "x", "--eval-every", 8, *flags)
    assert result.exit_code != 0 and fragment in ANSI.sub("", result.output)
    assert not (tmp_path / "x").exists()


def test_associative_recall_trains_with_adam_at_batch_32_and_a_constant_memory_by_default(tmp_path, monkeypatch):
    # TRAINING_DEFAULTS: Collier & Beel's Adam (lr 1e-3, batch 32) and constant initial memory for associative
    # recall, the paper's RMSProp at batch 8 and learned rows elsewhere; each flag still overrides its part,
    # and the LSTM baseline keeps Table 3's
    requests = []
    monkeypatch.setattr("memqa_cli.ntm.run_ntm_command", requests.append)
    runs = [("ntm", "associative-recall", []), ("ntm", "copy", []),
            ("ntm", "associative-recall", ["--optimizer", "rmsprop", "--batch-size", 8, "--lr", "3e-4",
                                           "--initial-memory", "rows"]),
            ("lstm", "associative-recall", [])]
    for index, (reader, task, flags) in enumerate(runs):
        assert_ok(invoke("train", "--reader", reader, "--task", task, "--out", tmp_path / str(index), *flags))
    assert [(r.model_config.optimizer, r.train_config.batch_size, r.train_config.learning_rate) for r in requests] == [
        ("adam", 32, 1e-3), ("rmsprop", 8, pytest.approx(3e-4)), ("rmsprop", 8, 3e-4), ("rmsprop", 8, pytest.approx(3e-4))]
    assert [r.model_config.initial_memory for r in requests[:3]] == ["constant", "rows", "rows"]


@pytest.mark.parametrize("task", ["repeat-copy", "associative-recall", "priority-sort"])
def test_cli_train_other_tasks(tmp_path, task):
    out = tmp_path / task
    assert_ok(invoke("train", "--reader", "ntm", "--task", task, "--out", out, "--sequences", 8, "--eval-every", 8,
                     "--batch-size", 8, "--heads", 1, *SMALL_MEMORY))
    assert json.loads((out / "config.json").read_text())["info"]["task"]["name"] == task


def test_cli_evaluate_threads(cli_run, monkeypatch):
    out, _ = cli_run
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    assert_ok(invoke("evaluate", out, "--lengths", "2", "--sequences", 4, "--threads", 1))
    assert calls == [1]
    for command in (["evaluate", out, "--lengths", "2"], ["train", "--reader", "ntm", "--task", "copy", "--out", out / "x"]):
        result = invoke(*command, "--threads", 0)
        assert result.exit_code == 2 and "Invalid value for '--threads'" in ANSI.sub("", result.output)


def test_cli_evaluate_lengths(cli_run):
    out, _ = cli_run
    report = json.loads(assert_ok(invoke("evaluate", out, "--lengths", "2,5", "--sequences", 8, "--format", "json")))
    assert report["task"] == "copy" and [row["size"] for row in report["scores"]] == [2, 5]
    model, task, _ = load_ntm(out)
    expected = score_sizes(model, task, [2, 5], sequences=8)
    assert [row["bit_errors"] for row in report["scores"]] == pytest.approx([s.bit_errors for s in expected])
    table = assert_ok(invoke("evaluate", out, "--lengths", "3", "--sequences", 4))
    assert "bit errors/seq" in table


def test_cli_evaluate_memory_size(cli_run, tmp_path):
    out, _ = cli_run  # trained with 12 memory rows
    model, task, _ = load_ntm(out)
    table = assert_ok(invoke("evaluate", out, "--lengths", "3", "--sequences", 4, "--memory-size", 20))
    assert "20 memory rows (trained with 12)" in " ".join(table.split())
    report = json.loads(assert_ok(invoke("evaluate", out, "--lengths", "14", "--sequences", 8, "--memory-size", 20,
                                         "--format", "json")))
    expected = score_sizes(model.with_memory_rows(20), task, [14], sequences=8)[0]
    assert report["scores"][0]["bit_errors"] == pytest.approx(expected.bit_errors)
    for args, message in (
            ([out, "--memory-size", 8], f"--memory-size 8: {out} was trained with 12 memory rows; give at least that many"),
            ([TINY_TRAIN.parent, "--memory-size", 20], "--memory-size applies to an NTM trained on an algorithmic task")):
        result = invoke("evaluate", *args)
        assert result.exit_code == 1 and message in ANSI.sub("", result.stderr).replace("\n", " ")
    lstm = tmp_path / "lstm"
    assert_ok(invoke("train", "--reader", "lstm", "--task", "copy", "--out", lstm, "--sequences", 8, "--eval-every", 8,
                     "--batch-size", 8, "--controller-size", 8))
    result = invoke("evaluate", lstm, "--lengths", "3", "--memory-size", 20)
    assert result.exit_code == 1 and "holds the LSTM baseline, which has no memory" in ANSI.sub("", result.stderr)


def test_cli_plot(cli_run, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the memqa[plots] extra")
    out, _ = cli_run
    stdout = assert_ok(invoke("plot", out, "--out", tmp_path / "img" / "copy", "--lengths", "2,4", "--sequences", 4,
                              "--episode-length", 3))
    for name in ("learning", "generalisation", "episode"):
        png = tmp_path / "img" / f"copy-{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| length | seed 0 |" in stdout


def test_cli_plot_memory_size(cli_run, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the memqa[plots] extra")
    out, _ = cli_run  # trained with 12 memory rows
    model, task, _ = load_ntm(out)
    stdout = assert_ok(invoke("plot", out, "--out", tmp_path / "copy", "--lengths", "14", "--sequences", 8,
                              "--episode-length", 14, "--memory-size", 20))
    expected = score_sizes(model.with_memory_rows(20), task, [14], sequences=8)[0]
    assert f"| 14 | {expected.bit_errors:.3f} |" in stdout
    assert (tmp_path / "copy-episode.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = invoke("plot", out, "--out", tmp_path / "small", "--memory-size", 8)
    message = f"--memory-size 8: {out} was trained with 12 memory rows; give at least that many"
    assert result.exit_code == 1 and message in ANSI.sub("", result.stderr).replace("\n", " ")
    assert not list(tmp_path.glob("small-*"))


@pytest.mark.parametrize("args, message", [
    (["train", "--reader", "ntm", "--task", "three", "--out", "x"], "--reader ntm needs --task copy"),
    (["train", "--reader", "ntm", "--task", "sort", "--out", "x"], "or a bAbI task, 1-20 (got 'sort')"),
    (["train", "--task", "copy", "--out", "x"], "task names such as copy need --reader ntm"),
    (["train", "--reader", "ntm-sequence", "--train-file", TINY_TRAIN, "--out", "x"], "not bAbI stories"),
    (["train", "--reader", "ntm", "--task", "copy", "--valid-sizes", "8-x", "--out", "x"], "--valid-sizes must be LOW-HIGH"),
    (["train", "--reader", "ntm", "--task", "copy", "--valid-sizes", "9-8", "--out", "x"], "1 <= LOW <= HIGH"),
    (["train", "--train-file", TINY_TRAIN, "--valid-sizes", "8-10", "--out", "x"], "--valid-sizes applies to --reader ntm or lstm"),
    (["train", "--reader", "ntm", "--task", "copy", "--valid-repeats", "10", "--out", "x"],
     "--valid-repeats is for --task repeat-copy; this run trains copy"),
    (["train", "--reader", "ntm", "--task", "repeat-copy", "--valid-repeats", "ten", "--out", "x"],
     "--valid-repeats must be LOW-HIGH or N"),
    (["train", "--reader", "ntm", "--task", "repeat-copy", "--valid-repeats", "0", "--out", "x"], "1 <= LOW <= HIGH"),
    (["train", "--train-file", TINY_TRAIN, "--valid-repeats", "10", "--out", "x"],
     "--valid-repeats applies to --reader ntm or lstm"),
    (["train", "--train-file", TINY_TRAIN, "--controller", "lstm", "--out", "x"], "--controller applies to --reader ntm only"),
    (["train", "--train-file", TINY_TRAIN, "--sequences", "10", "--out", "x"],
     "--sequences applies to --reader ntm or lstm (the algorithmic tasks) only"),
    (["train", "--train-file", TINY_TRAIN, "--optimizer", "graves", "--out", "x"],
     "--optimizer applies to --reader ntm or lstm (the algorithmic tasks) only"),
    (["train", "--reader", "lstm-sequence", "--train-file", TINY_TRAIN, "--out", "x"], "--reader ntm (or lstm, the baseline)"),
    (["train", "--reader", "ntm", "--task", "copy", "--optimizer", "sgd", "--out", "x"], "optimizer must be 'rmsprop', 'graves' or 'adam'"),
])
def test_cli_errors(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert message in ANSI.sub("", result.stderr).replace("\n", " ")


def test_cli_evaluate_repeats_only_for_repeat_copy(cli_run):
    out, _ = cli_run
    result = invoke("evaluate", out, "--lengths", "3", "--repeats", "2")
    assert result.exit_code == 1 and "--repeats is for the repeat-copy task" in ANSI.sub("", result.stderr)


def test_validation_set_is_fixed():
    first = FixedSequences.drawn(CopyTask(), 2, 4, seed=9)
    again = FixedSequences.drawn(CopyTask(), 2, 4, seed=9)
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first.batches(), again.batches()))


def test_focused_rows_handle_the_wrap_around():
    from memqa.plots import focused_rows

    weights = torch.zeros(3, 10)
    weights[0, 9], weights[1, 0], weights[2, 1] = 1.0, 1.0, 0.9  # a focus moving 9 -> 0 -> 1
    assert focused_rows(weights, margin=1).tolist() == [8, 9, 0, 1, 2]
    weights = torch.zeros(2, 10)
    weights[0, 3], weights[1, 5] = 1.0, 1.0
    assert focused_rows(weights, margin=0).tolist() == [3, 4, 5]
    assert focused_rows(torch.full((2, 4), 0.25)).tolist() == [0, 1, 2, 3]


def test_most_focused_head_and_priority_picture(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the memqa[plots] extra")
    from memqa.plots import most_focused_head, plot_priority_writes

    weightings = torch.full((4, 3, 8), 1 / 8)  # (T, H, N): heads 0 and 2 diffuse, head 1 sharp
    weightings[:, 1] = torch.eye(8)[:4]
    assert most_focused_head(weightings) == 1
    png = plot_priority_writes(torch.tensor([0.9, 0.1, -0.5, -0.9]), torch.eye(8)[:4], tmp_path / "w.png", "writes")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_validation_sizes_choose_the_kept_weights(tmp_path):
    drawn = FixedSequences.drawn(CopyTask(), 6, 2, seed=9, sizes=(7, 9))
    assert {batch.targets.shape[1] for batch in drawn.batches()} <= {7, 8, 9}
    assert len({batch.targets.shape[1] for batch in drawn.batches()}) > 1  # sizes drawn per batch
    out = tmp_path / "recall"
    assert_ok(invoke("train", "--reader", "ntm", "--task", "associative-recall", "--out", out, "--sequences", 8,
                     "--eval-every", 8, "--batch-size", 8, "--heads", 1, "--valid-sizes", "8-10", *SMALL_MEMORY))
    info = json.loads((out / "config.json").read_text())["info"]
    assert info["valid_sizes"] == [8, 10]
    assert "## Validation (items 8-10; trained on 2-6)" in (out / "README.md").read_text()
    # the validation sequences are longer than the training ones: their cost differs from a default run's
    default = tmp_path / "recall-default"
    assert_ok(invoke("train", "--reader", "ntm", "--task", "associative-recall", "--out", default, "--sequences", 8,
                     "--eval-every", 8, "--batch-size", 8, "--heads", 1, *SMALL_MEMORY))
    other = json.loads((default / "config.json").read_text())["info"]
    assert other["valid_sizes"] == [2, 6] and "## Validation (training sizes)" in (default / "README.md").read_text()
    assert info["scores"]["valid_cost_bits"] != other["scores"]["valid_cost_bits"]


def test_validation_repeats_give_repeat_copy_its_longest_episodes(tmp_path):
    task = RepeatCopyTask()
    drawn = FixedSequences.drawn(task, 4, 2, seed=9, sizes=(3, 5), repeats=(10, 10))
    for batch in drawn.batches():  # every batch repeats its sequence 10 times: 10 x length steps, then the end marker
        length = (batch.inputs.shape[1] - 2) // 11
        assert batch.targets.shape[1] == 10 * length + 1 and 3 <= length <= 5
    # without repeats, validation is the one drawn before --valid-repeats existed: saved runs keep their kept weights
    generator = torch.Generator().manual_seed(9)
    before = [task.sample(2, generator, uniform_int(3, 5, generator)) for _ in range(4)]
    now = FixedSequences.drawn(task, 4, 2, seed=9, sizes=(3, 5)).batches()
    assert all(torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets) for a, b in zip(before, now))

    out = tmp_path / "repeat"
    assert_ok(invoke("train", "--reader", "ntm", "--task", "repeat-copy", "--out", out, "--sequences", 8,
                     "--eval-every", 8, "--batch-size", 8, "--valid-sizes", "3-4", "--valid-repeats", "12",
                     *SMALL_MEMORY))
    info = json.loads((out / "config.json").read_text())["info"]
    assert info["valid_sizes"] == [3, 4] and info["valid_repeats"] == [12, 12]
    assert "## Validation (length 3-4; trained on 1-10; repeats 12; trained on 1-10)" in (out / "README.md").read_text()



def test_cli_train_snapshot_every_saves_readers_memqa_evaluate_reads(tmp_path):
    out = tmp_path / "snap"
    assert_ok(invoke("train", "--reader", "ntm", "--task", "copy", "--out", out, "--sequences", 24, "--eval-every", 8,
                     "--batch-size", 8, "--snapshot-every", 16, *SMALL_MEMORY))
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "snapshots"]
    assert [p.name for p in (out / "snapshots" / "seed0").iterdir()] == ["16"]
    snapshot = out / "snapshots" / "seed0" / "16"
    assert "(16 sequences, seed 0; best at 16)" in (snapshot / "README.md").read_text()
    report = json.loads(assert_ok(invoke("evaluate", snapshot, "--lengths", "3", "--sequences", 4, "--format", "json")))
    model, task, _ = load_ntm(snapshot)
    assert report["scores"][0]["bit_errors"] == pytest.approx(score_sizes(model, task, [3], sequences=4)[0].bit_errors)
    result = invoke("train", "--reader", "ntm", "--task", "copy", "--out", tmp_path / "x", "--eval-every", 8,
                    "--snapshot-every", 12)
    assert result.exit_code == 1 and "--snapshot-every 12 must be a multiple of --eval-every 8" in ANSI.sub(
        "", result.stderr).replace("\n", " ")
    assert not (tmp_path / "x").exists()
    result = invoke("train", "--reader", "memn2n", "--task", "1", "--out", tmp_path / "y", "--snapshot-every", 8)
    assert result.exit_code != 0 and "--snapshot-every" in ANSI.sub("", result.output)
