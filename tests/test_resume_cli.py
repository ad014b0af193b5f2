"""`memqa train --resume RUN_DIR`: a real training process killed with SIGKILL and resumed ends with a
model.safetensors byte-identical to an uninterrupted run; finished readers are skipped; flags that
contradict the saved run, damaged run files and divergence each give one clear line."""

from __future__ import annotations

import json
import shlex
import signal
import sys

import pytest
from helpers import STATE, TINY_TEST, TINY_TRAIN, babi_tree, kill_after_saved_epochs, saved_epoch
from test_cli import assert_ok, assert_one_line_error, invoke, plain

from memqa import train as train_module

# Two seeded runs of 4 linear-start + 20 main epochs, random noise on: every RNG and phase takes part.
RUN = ["--train-file", TINY_TRAIN, "--epochs", "20", "--linear-start-epochs", "4", "--batch-size", "4",
       "--repeats", "2"]


@pytest.fixture(autouse=True)
def no_debug(monkeypatch):
    monkeypatch.delenv("MEMQA_DEBUG", raising=False)


def interrupt_on_epoch_call(monkeypatch, call: int) -> None:
    """Ctrl-C inside the call-th training epoch of this process (after the epoch trained, before its save)."""
    real, calls = train_module._train_epoch, []

    def epoch(*args):
        out = real(*args)
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(train_module, "_train_epoch", epoch)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "reader"
    assert_ok(invoke("train", *RUN, "--out", out))
    return out


# --- the SIGKILL test ----------------------------------------------------------------------------


def test_sigkill_mid_training_then_resume_is_bit_identical(reference, tmp_path):
    run_dir = tmp_path / "killed"
    kill_after_saved_epochs(RUN, run_dir)
    killed_at = saved_epoch(run_dir)
    assert 3 <= killed_at <= 24 and not (run_dir / "model.safetensors").exists()

    result = invoke("train", "--resume", run_dir)
    assert_ok(result)
    assert (run_dir / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    resumed, uninterrupted = (json.loads((d / "config.json").read_text())["info"] for d in (run_dir, reference))
    assert (resumed["best_epoch"], resumed["seed"], resumed["scores"]) == (
        uninterrupted["best_epoch"], uninterrupted["seed"], uninterrupted["scores"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["README.md", "config.json", "model.safetensors", "vocab.json"]


def test_sigterm_stops_like_ctrl_c_then_resume_is_bit_identical(reference, tmp_path):
    # `kill PID` of a run started with SIGINT ignored (as `nohup memqa train ... &` is): the best reader
    # so far is saved, the note says how to go on, and going on ends where an uninterrupted run does
    run_dir = tmp_path / "terminated"
    stderr = kill_after_saved_epochs(RUN, run_dir, epochs=6, sig=signal.SIGTERM)  # past linear start: a best exists
    assert f"memqa train --resume {run_dir}" in plain(stderr).replace("\n", "")
    assert (run_dir / "model.safetensors").exists() and (run_dir / STATE).is_dir() and saved_epoch(run_dir) >= 6
    assert_ok(invoke("train", "--resume", run_dir))
    assert (run_dir / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    assert not (run_dir / STATE).exists()


def test_ctrl_c_then_resume_from_another_folder_is_bit_identical(reference, tmp_path, monkeypatch):
    run_dir = tmp_path / "stopped"
    interrupt_on_epoch_call(monkeypatch, 30)  # in run 2/2
    result = invoke("train", *RUN, "--out", run_dir)
    assert_ok(result)
    assert f"memqa train --resume {run_dir}" in plain(result.stderr).replace("\n", "")
    assert (run_dir / "model.safetensors").exists() and (run_dir / STATE).is_dir()  # best so far, and the state
    monkeypatch.undo()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the saved request holds absolute paths
    assert_ok(invoke("train", "--resume", run_dir, "--workers", "1", "--threads", "1", "--epochs", "20"))
    assert (run_dir / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    assert not (run_dir / STATE).exists()


# --- a multi-task run: finished readers are skipped --------------------------------------------


def test_finished_readers_of_a_multi_task_run_are_skipped(tmp_path, monkeypatch):
    tasks = ["--tasks", "1-2", "--data-dir", babi_tree(tmp_path), "--epochs", "4", "--linear-start-epochs", "1",
             "--batch-size", "4"]
    assert_ok(invoke("train", *tasks, "--out", tmp_path / "reference"))
    run_dir = tmp_path / "run"
    interrupt_on_epoch_call(monkeypatch, 5 + 2)  # task 1 runs 5 epochs; stop in task 2's second
    assert_ok(invoke("train", *tasks, "--out", run_dir))
    assert (run_dir / STATE / "task1" / "finished.json").is_file()
    assert not (run_dir / STATE / "task2" / "finished.json").exists() and saved_epoch(run_dir, "task2") == 1
    task1_file = run_dir / "task1" / "model.safetensors"
    task1_written = task1_file.stat().st_mtime_ns
    monkeypatch.undo()
    epochs_seen = []
    from memqa import pipeline

    real_fit = pipeline.fit
    monkeypatch.setattr(pipeline, "fit", lambda *a, **k: epochs_seen.append(len(a[3])) or real_fit(*a, **k))
    stdout = assert_ok(invoke("train", "--resume", run_dir))
    assert len(epochs_seen) == 1  # only task 2 trained
    assert "task 1" in stdout and "task 2" in stdout  # both listed
    assert task1_file.stat().st_mtime_ns == task1_written
    for task in ("task1", "task2"):
        assert (run_dir / task / "model.safetensors").read_bytes() == (
            tmp_path / "reference" / task / "model.safetensors").read_bytes()
    assert not (run_dir / STATE).exists()


def test_sigterm_reaches_the_workers_of_a_parallel_run(tmp_path):
    # --workers 2: the parent passes SIGTERM on to both workers, each saves its best so far, and the
    # resumed run ends with the readers of a run never stopped
    tasks = ["--tasks", "1-2", "--data-dir", babi_tree(tmp_path), "--epochs", "60", "--linear-start-epochs", "1",
             "--batch-size", "4", "--workers", "2"]
    assert_ok(invoke("train", *tasks, "--out", tmp_path / "reference"))
    run_dir = tmp_path / "run"
    kill_after_saved_epochs(tasks, run_dir, epochs=4, sig=signal.SIGTERM, job="task1")
    assert (run_dir / STATE).is_dir() and (run_dir / "task1" / "model.safetensors").exists()
    assert_ok(invoke("train", "--resume", run_dir))
    for task in ("task1", "task2"):
        assert (run_dir / task / "model.safetensors").read_bytes() == (
            tmp_path / "reference" / task / "model.safetensors").read_bytes()


# --- what --resume refuses -----------------------------------------------------------------------


@pytest.fixture
def stopped_run(tmp_path, monkeypatch):
    """A run of RUN stopped by Ctrl-C in its second epoch."""
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_on_epoch_call(patch, 2)
        assert_ok(invoke("train", *RUN, "--out", run_dir))
    return run_dir


@pytest.mark.parametrize("flags, fragment", [
    (["--epochs", "99"], "--epochs 99 contradicts"),
    (["--lr", "0.5"], "--lr 0.5 contradicts"),
    (["--seed", "0", "--repeats", "3"], "--repeats 3 contradicts"),  # the seed agrees, the repeats do not
    (["--train-file", TINY_TEST], "--train-file"),
    (["--hops", "2"], "--hops 2 contradicts"),
    (["--weight-decay", "0.1"], "--weight-decay 0.1 contradicts"),
    (["--length-buckets", "4"], "--length-buckets 4 contradicts"),
    (["--out", "elsewhere"], "--out elsewhere contradicts"),
])
def test_flags_that_contradict_the_saved_run_are_refused(stopped_run, flags, fragment):
    assert_one_line_error(invoke("train", "--resume", stopped_run, *flags), fragment, str(stopped_run))


def test_a_new_run_over_an_unfinished_one_is_refused(stopped_run):
    assert_one_line_error(invoke("train", *RUN, "--out", stopped_run), "unfinished training run",
                          f"--resume {stopped_run}")


def test_resume_without_a_run(tmp_path, reference):
    assert_one_line_error(invoke("train", "--resume", tmp_path / "nope"), "no such run folder")
    assert_one_line_error(invoke("train", "--resume", reference), "request.json: missing")  # finished: nothing left
    assert_one_line_error(invoke("train", "--train-file", TINY_TRAIN), "--out is missing")


@pytest.mark.parametrize("damage, fragment", [
    (lambda f: f.write_text("{"), "not valid JSON"),
    (lambda f: f.write_text(json.dumps({"format_version": 9, "request": {}})), "upgrade memqa"),
    (lambda f: f.write_text(json.dumps({"format_version": 1, "request": {"out": "x"}, "readers": ["reader"]})),
     "expected keys"),
    (lambda f: f.write_text(f.read_text().replace('"hops": 3', '"hops": 0')), "hops"),
], ids=["not-json", "newer", "keys", "bad-value"])
def test_a_damaged_request_is_one_line_naming_it(stopped_run, damage, fragment):
    file = stopped_run / STATE / "request.json"
    damage(file)
    assert_one_line_error(invoke("train", "--resume", stopped_run), str(file), fragment)


@pytest.mark.parametrize("field", ["weight_decay", "length_buckets"])
def test_a_run_saved_before_a_train_field_existed_resumes_as_it_started(stopped_run, reference, field):
    # request.json of a run interrupted before TrainConfig had weight_decay (or length_buckets): it trained
    # without one (with batches drawn at random)
    file = stopped_run / STATE / "request.json"
    saved = json.loads(file.read_text())
    del saved["request"]["train_config"][field]
    file.write_text(json.dumps(saved))
    assert_ok(invoke("train", "--resume", stopped_run))
    assert (stopped_run / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()


def test_a_resumed_run_keeps_the_command_that_started_it(tmp_path, monkeypatch):
    # config.json and the model card say how the reader was made: the first command, not `--resume`
    run_dir = tmp_path / "run"
    started = ["/venv/bin/memqa", "train", *map(str, RUN), "--out", str(run_dir)]
    with monkeypatch.context() as patch:
        patch.setattr(sys, "argv", started)
        interrupt_on_epoch_call(patch, 2)
        assert_ok(invoke("train", *RUN, "--out", run_dir))
    monkeypatch.setattr(sys, "argv", ["/venv/bin/memqa", "train", "--resume", str(run_dir)])
    assert_ok(invoke("train", "--resume", run_dir))
    command = shlex.join(["memqa", *started[1:]])
    assert json.loads((run_dir / "config.json").read_text())["info"]["command"] == command
    assert command in (run_dir / "README.md").read_text()


def test_a_run_saved_before_the_command_was_kept_resumes(stopped_run, reference):
    file = stopped_run / STATE / "request.json"
    saved = json.loads(file.read_text())
    del saved["request"]["command"]
    file.write_text(json.dumps(saved))
    assert_ok(invoke("train", "--resume", stopped_run))
    assert (stopped_run / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    assert json.loads((stopped_run / "config.json").read_text())["info"]["command"] == ""


def test_a_damaged_state_is_one_line_naming_it(stopped_run):
    tensors = next((stopped_run / STATE / "reader" / "repeat-0").glob("state-*.safetensors"))
    tensors.write_bytes(tensors.read_bytes()[:-10])
    assert_one_line_error(invoke("train", "--resume", stopped_run), str(tensors), "damaged")


def test_an_out_folder_that_is_not_a_reader_is_refused_before_training(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert_one_line_error(invoke("train", *RUN, "--out", out), "not a saved reader")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


# --- divergence ------------------------------------------------------------------------------------


def test_learning_rate_100x_too_high_diverges_clearly_and_keeps_the_last_good_state(tmp_path):
    out = tmp_path / "r"
    result = invoke("train", "--train-file", TINY_TRAIN, "--out", out, "--lr", "1", "--linear-start-epochs", "0",
                    "--epochs", "20")  # the default rate is 0.01
    assert_ok(result)
    note = " ".join(plain(result.stderr).split())
    assert "training diverged in epoch" in note and "100x the untrained reader" in note and "smaller --lr" in note
    info = json.loads((out / "config.json").read_text())["info"]
    assert info["stopped"] == "diverged" and info["epochs_run"] < 20
    diverged_at = int(note.split("diverged in epoch ")[1].split()[0])
    assert info["epochs_run"] == diverged_at - 1 == saved_epoch(out)  # the last good epoch's state is kept
    assert_ok(invoke("train", "--train-file", TINY_TRAIN, "--out", out, "--epochs", "1"))  # a new run may replace it
    assert not (out / STATE).exists()


def test_divergence_in_the_first_epoch_is_an_error_and_saves_nothing(tmp_path):
    out = tmp_path / "r"
    result = invoke("train", "--train-file", TINY_TRAIN, "--out", out, "--lr", "1000", "--linear-start-epochs", "0",
                    "--batch-size", "2", "--epochs", "3")
    assert_one_line_error(result, "diverged in epoch 1", "nothing was saved", "--lr")
    assert not out.exists()
