"""Resuming NTM runs: stopped (Ctrl-C) after any evaluation, or killed with SIGKILL mid-run, and
resumed, an NTM run ends with the weights, learning curve and best point of a run never stopped."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from helpers import STATE, kill_after_saved_epochs, saved_epoch
from test_ntm_cli import ANSI, SMALL_MEMORY, assert_ok, invoke, tiny_request

from memqa.errors import CheckpointError, ConfigError
from memqa.ntm_evaluate import load_ntm
from memqa.ntm_pipeline import resume_ntm, snapshot_path, snapshots, train_ntm

# 2 seeds x 4 evaluations of 32 sequences each
SEQUENCES, EVAL_EVERY, REPEATS = 128, 32, 2


def two_seed_request(out):
    request = tiny_request(out, sequences=SEQUENCES)
    return dataclasses.replace(request, train_config=dataclasses.replace(request.train_config, repeats=REPEATS))


def without_seconds(curve):
    return [{k: v for k, v in point.items() if k != "seconds"} for point in curve]


def same_weights(a, b) -> bool:
    a, b = a.state_dict(), b.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train_ntm(two_seed_request(tmp_path_factory.mktemp("ntm") / "reference"))


def stop_at_point(count: int):
    """Ctrl-C in the count-th evaluation of this session (after it was scored, before its state is saved)."""
    seen = []

    def on_point(point, total):
        seen.append(point)
        if len(seen) == count:
            raise KeyboardInterrupt
    return on_point


@pytest.mark.parametrize("count", [1, 2, 4, 5, 7], ids=["nothing-saved", "first", "end-of-seed-0", "seed-1-first",
                                                         "seed-1-late"])
def test_stopped_then_resumed_ntm_is_bit_identical(uninterrupted, tmp_path, count):
    out = tmp_path / "run"
    stopped = train_ntm(two_seed_request(out), on_point=stop_at_point(count))
    if count == 1:  # stopped before the first state was saved: the evaluation's weights, nothing to resume
        assert stopped.result.stopped == "interrupted" and not (out / STATE).exists()
        with pytest.raises(CheckpointError, match="no training run to resume"):
            resume_ntm(out)
        return
    assert stopped.result.stopped == "interrupted" and (out / STATE / "request.json").is_file()
    assert (out / "model.safetensors").is_file()  # the best evaluation so far is saved meanwhile
    resumed = resume_ntm(out)
    assert resumed.result.stopped is None and not (out / STATE).exists()
    assert resumed.result.seed == uninterrupted.result.seed
    assert resumed.result.best_epoch == uninterrupted.result.best_epoch
    assert resumed.result.history == uninterrupted.result.history
    assert without_seconds(resumed.curve) == without_seconds(uninterrupted.curve)
    assert same_weights(resumed.result.model, uninterrupted.result.model)
    assert (out / "model.safetensors").read_bytes() == (uninterrupted.path / "model.safetensors").read_bytes()
    seconds = [point["seconds"] for point in resumed.curve]
    assert seconds == sorted(seconds)  # the wall-time axis goes on from where it stopped


def request_with(out, **changes):
    base = two_seed_request(out)
    return dataclasses.replace(base, model_config=dataclasses.replace(base.model_config, **changes))


@pytest.mark.parametrize("changes", [{"optimizer": "graves"}, {"optimizer": "adam"}, {"state_noise": 0.3}],
                         ids=["graves", "adam", "state-noise"])
def test_a_stopped_ntm_run_with_other_settings_resumes_bit_identical(tmp_path, changes):
    # the optimiser's state (n, g, Δ of eqs. 38-41; Adam's moments and step count) and torch's generator, which
    # draws the state noise, are saved with the run and picked up where it stopped
    reference = train_ntm(request_with(tmp_path / "reference", **changes))
    out = tmp_path / "run"
    train_ntm(request_with(out, **changes), on_point=stop_at_point(3))
    resumed = resume_ntm(out)
    assert without_seconds(resumed.curve) == without_seconds(reference.curve)
    assert (out / "model.safetensors").read_bytes() == (reference.path / "model.safetensors").read_bytes()


def test_state_noise_changes_training(uninterrupted, tmp_path):
    noisy = train_ntm(request_with(tmp_path / "noisy", state_noise=0.3))
    assert (noisy.path / "model.safetensors").read_bytes() != (uninterrupted.path / "model.safetensors").read_bytes()


def test_snapshots_hold_each_evaluation_and_survive_a_stop_and_the_final_save(uninterrupted, tmp_path):
    # --snapshot-every 32, the evaluation interval: every point of both seeds is a reader of its own; a run
    # stopped in seed 0's third evaluation and resumed ends with all of them, beside the uninterrupted run's reader
    out = tmp_path / "run"
    train_ntm(dataclasses.replace(two_seed_request(out), snapshot_every=EVAL_EVERY), on_point=stop_at_point(3))
    assert [p.relative_to(out).as_posix() for p in snapshots(out)] == [f"snapshots/seed0/{n}" for n in (32, 64, 96)]
    resumed = resume_ntm(out)
    points = range(EVAL_EVERY, SEQUENCES + 1, EVAL_EVERY)
    assert [p.relative_to(out).as_posix() for p in snapshots(out)] == [
        f"snapshots/seed{seed}/{n}" for seed in (0, 1) for n in points]
    assert (out / "model.safetensors").read_bytes() == (uninterrupted.path / "model.safetensors").read_bytes()
    best = resumed.curve[resumed.result.best_epoch - 1]
    kept, task, info = load_ntm(snapshot_path(out, resumed.result.seed, best["sequences"]))
    assert same_weights(kept, resumed.result.model) and task.name == "copy"
    assert (info["best_sequences"], info["seed"], info["snapshot_of"]) == (best["sequences"], resumed.result.seed, str(out))
    assert info["scores"]["valid_bit_errors"] == best["valid_bit_errors"]
    other, _, _ = load_ntm(snapshot_path(out, resumed.result.seed, 32 if best["sequences"] != 32 else 64))
    assert not same_weights(other, resumed.result.model)


def test_snapshots_are_taken_at_evaluations(tmp_path):
    with pytest.raises(ConfigError, match="--snapshot-every 48 must be a multiple of --eval-every 32"):
        dataclasses.replace(two_seed_request(tmp_path / "run"), snapshot_every=48)
    out = tmp_path / "every-other"
    train_ntm(dataclasses.replace(tiny_request(out, sequences=SEQUENCES), snapshot_every=2 * EVAL_EVERY))
    assert [p.name for p in snapshots(out)] == ["64", "128"]


def test_a_finished_ntm_run_has_nothing_to_resume(uninterrupted):
    with pytest.raises(CheckpointError, match="no training run to resume"):
        resume_ntm(uninterrupted.path)


def test_a_resumed_ntm_run_keeps_the_command_that_started_it(tmp_path):
    out, command = tmp_path / "run", "memqa train --reader ntm --task copy --out run"
    train_ntm(dataclasses.replace(two_seed_request(out), command=command), on_point=stop_at_point(3))
    resume_ntm(out)
    info = json.loads((out / "config.json").read_text())["info"]
    assert info["command"] == command and command in (out / "README.md").read_text()


def test_an_ntm_run_saved_before_the_command_was_kept_resumes(uninterrupted, tmp_path):
    out = tmp_path / "run"
    train_ntm(two_seed_request(out), on_point=stop_at_point(3))
    file = out / STATE / "request.json"
    saved = json.loads(file.read_text())
    del saved["request"]["command"]
    file.write_text(json.dumps(saved))
    resume_ntm(out)
    assert (out / "model.safetensors").read_bytes() == (uninterrupted.path / "model.safetensors").read_bytes()


def test_a_damaged_curve_is_one_clear_error(tmp_path):
    out = tmp_path / "run"
    train_ntm(two_seed_request(out), on_point=stop_at_point(3))
    curve = out / STATE / "reader" / "repeat-0" / "curve.json"
    curve.write_text('{"format_version": 1, "curve": [{"sequences": "x"}]}')
    with pytest.raises(CheckpointError) as caught:
        resume_ntm(out)
    assert str(curve) in str(caught.value) and "\n" not in str(caught.value)


# --- through the command line --------------------------------------------------------------------

CLI_RUN = ["--reader", "ntm", "--task", "copy", "--sequences", "480", "--eval-every", "16", "--batch-size", "8",
           *SMALL_MEMORY]


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "reference"
    assert_ok(invoke("train", *CLI_RUN, "--out", out))
    return out


def test_sigkill_mid_ntm_training_then_resume_is_bit_identical(cli_reference, tmp_path):
    run_dir = tmp_path / "killed"
    kill_after_saved_epochs(CLI_RUN, run_dir)
    assert 3 <= saved_epoch(run_dir) < 30 and not (run_dir / "model.safetensors").exists()

    stdout = assert_ok(invoke("train", "--resume", run_dir, "--threads", "1", "--task", "copy"))
    assert "trained NTM" in stdout
    assert (run_dir / "model.safetensors").read_bytes() == (cli_reference / "model.safetensors").read_bytes()
    resumed, reference = (json.loads((d / "config.json").read_text())["info"] for d in (run_dir, cli_reference))
    assert resumed["best_sequences"] == reference["best_sequences"] and resumed["scores"] == reference["scores"]
    assert without_seconds(resumed["curve"]) == without_seconds(reference["curve"])
    assert not (run_dir / STATE).exists()


@pytest.mark.parametrize("flags, fragment", [
    (["--sequences", "960"], "--sequences 960 contradicts"),
    (["--task", "repeat-copy"], "--task repeat-copy contradicts"),
    (["--heads", "2"], "--heads 2 contradicts"),
    (["--valid-sizes", "5-6"], "--valid-sizes 5-6 contradicts"),
    (["--valid-repeats", "3"], "--valid-repeats 3 contradicts"),
    (["--decay-every", "64"], "--decay-every 64 contradicts"),
    (["--optimizer", "graves"], "--optimizer graves contradicts"),
    (["--state-noise", "0.1"], "--state-noise 0.1 contradicts"),
    (["--hops", "2"], "--hops cannot be given with --resume"),
])
def test_ntm_flags_that_contradict_the_saved_run_are_refused(tmp_path, monkeypatch, flags, fragment):
    run_dir = tmp_path / "stopped"
    from memqa import ntm_pipeline

    real, calls = ntm_pipeline.score_batches, []

    def stop_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ntm_pipeline, "score_batches", stop_on_third)
    stopped = invoke("train", *CLI_RUN, "--out", run_dir)
    assert_ok(stopped)
    assert f"memqa train --resume {run_dir}" in ANSI.sub("", stopped.stderr).replace("\n", "")
    monkeypatch.undo()
    result = invoke("train", "--resume", run_dir, *flags)
    assert result.exit_code == 1
    assert fragment in ANSI.sub("", result.stderr).replace("\n", " ")
    assert saved_epoch(run_dir) == 2  # nothing was trained
