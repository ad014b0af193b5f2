"""memqa.resume and train_model's checkpoint hook: a run stopped at any epoch (or inside one) and
resumed ends bit-identical to a run never stopped; damaged or mismatched state is one clear error."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle

import pytest
import torch
from helpers import small_memn2n_config

from memqa import train as train_module
from memqa.config import TrainConfig
from memqa.errors import CheckpointError
from memqa.resume import STATE_FILE, StateStore, write_atomically
from memqa.train import fit

# Linear start (epochs 1-3), then the main phase (4-8); two seeded runs; random noise on (global RNG).
SCHEDULE = TrainConfig(epochs=5, linear_start_epochs=3, batch_size=4, learning_rate=0.05,
                       linear_start_learning_rate=0.05, decay_every=2, repeats=2)
EPOCHS_PER_RUN = 8


def run(examples, folder=None, on_epoch=None, schedule=SCHEDULE):
    checkpoints = (lambda repeat: StateStore(folder / f"repeat-{repeat}")) if folder else None
    return fit("memn2n", small_memn2n_config(), schedule, examples, on_epoch=on_epoch, checkpoints=checkpoints)


def same_weights(a, b) -> bool:
    a, b = a.model.state_dict(), b.model.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(tiny_examples):
    return run(tiny_examples)


def stop_at(repeat: int, epoch: int):
    def on_epoch(r, record, total):
        if (r, record.epoch) == (repeat, epoch):
            raise KeyboardInterrupt  # after the epoch trained, before its state is saved: it is redone
    return on_epoch


# Stopped in the epoch after the one named in the id (whose state is the last saved).
@pytest.mark.parametrize("repeat, epoch", [(0, 1), (0, 2), (0, 4), (0, 5), (1, 1), (1, 3), (1, 8)],
                         ids=["nothing-saved", "first-epoch", "end-of-linear-start", "first-main-epoch",
                              "end-of-run-0", "run-1-linear-start", "run-1-main"])
def test_stopped_after_any_epoch_then_resumed_is_bit_identical(tiny_examples, uninterrupted, tmp_path, repeat, epoch):
    stopped = run(tiny_examples, tmp_path, stop_at(repeat, epoch))
    assert stopped.stopped == "interrupted"
    resumed = run(tiny_examples, tmp_path)
    assert resumed.stopped is None and resumed.seed == uninterrupted.seed
    assert resumed.history == uninterrupted.history and resumed.best_epoch == uninterrupted.best_epoch
    assert same_weights(resumed, uninterrupted)


def test_a_run_without_validation_resumes_bit_identical(tiny_examples, tmp_path):
    """valid_fraction 0: the NaN validation numbers survive state.json and the last epoch is kept."""
    refit = dataclasses.replace(SCHEDULE, valid_fraction=0.0)
    uninterrupted = run(tiny_examples, schedule=refit)
    assert run(tiny_examples, tmp_path, stop_at(1, 5), schedule=refit).stopped == "interrupted"
    resumed = run(tiny_examples, tmp_path, schedule=refit)
    assert resumed.best_epoch == uninterrupted.best_epoch == EPOCHS_PER_RUN and not resumed.validated
    assert json.dumps([vars(r) for r in resumed.history]) == json.dumps([vars(r) for r in uninterrupted.history])
    assert same_weights(resumed, uninterrupted)


def test_stopped_inside_an_epoch_redoes_it_exactly(tiny_examples, uninterrupted, tmp_path, monkeypatch):
    """The 6th epoch trains (weights and RNG move on), then the process 'dies' before its state is saved."""
    real_epoch, calls = train_module._train_epoch, []

    def dies_after_training(*args):
        out = real_epoch(*args)
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(train_module, "_train_epoch", dies_after_training)
    assert run(tiny_examples, tmp_path).stopped == "interrupted"
    assert json.loads((tmp_path / "repeat-0" / STATE_FILE).read_text())["epoch"] == 5
    monkeypatch.setattr(train_module, "_train_epoch", real_epoch)
    assert same_weights(run(tiny_examples, tmp_path), uninterrupted)


def test_a_finished_state_trains_nothing_more(tiny_examples, uninterrupted, tmp_path):
    run(tiny_examples, tmp_path)
    seen = []
    again = run(tiny_examples, tmp_path, on_epoch=lambda *args: seen.append(args))
    assert seen == [] and same_weights(again, uninterrupted) and again.history == uninterrupted.history


def test_state_files_on_disk(tiny_examples, tmp_path):
    run(tiny_examples, tmp_path, stop_at(0, 5))  # epoch 5 is never saved
    folder = tmp_path / "repeat-0"
    assert sorted(p.name for p in folder.iterdir()) == ["state-0004.safetensors", STATE_FILE]  # older ones removed
    meta = json.loads((folder / STATE_FILE).read_text())
    assert (meta["epoch"], meta["phase"], meta["learning_rate"]) == (4, "train", 0.05)
    assert len(meta["history"]) == 4 and meta["optimizer"]["param_groups"][0]["lr"] == 0.05
    from safetensors import safe_open

    with safe_open(str(folder / meta["tensors"]), "pt") as tensors:
        names = set(tensors.keys())
    assert {"rng/shuffle", "rng/torch", "rng/python", "rng/numpy"} <= names
    assert any(n.startswith("model/") for n in names) and any(n.startswith("best/") for n in names)


def test_a_kill_while_writing_state_json_leaves_the_previous_epoch(tiny_examples, uninterrupted, tmp_path, monkeypatch):
    real_replace, calls = os.replace, []

    def replace(source, target):
        if str(target).endswith(STATE_FILE):
            calls.append(target)
            if len(calls) == 3:  # epoch 3: its tensors are on disk, its state.json never lands
                raise KeyboardInterrupt
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    assert run(tiny_examples, tmp_path).stopped == "interrupted"
    monkeypatch.setattr(os, "replace", real_replace)
    assert json.loads((tmp_path / "repeat-0" / STATE_FILE).read_text())["epoch"] == 2
    assert same_weights(run(tiny_examples, tmp_path), uninterrupted)


def test_write_atomically_leaves_old_or_new(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    write_atomically(target, b"old")
    monkeypatch.setattr(os, "replace", lambda *args: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"


# --- damaged or mismatched state: one line naming the file, nothing applied -----------------------


@pytest.fixture
def saved_state(tiny_examples, tmp_path):
    run(tiny_examples, tmp_path, stop_at(0, 5))  # saved after epoch 4
    return tmp_path / "repeat-0"


def edit_state(folder, change):
    meta = json.loads((folder / STATE_FILE).read_text())
    change(meta)
    (folder / STATE_FILE).write_text(json.dumps(meta))


def truncate_tensors(folder):
    path = next(folder.glob("state-*.safetensors"))
    path.write_bytes(path.read_bytes()[:100])


def forge_tensors(folder):
    """Valid safetensors whose sha256 is recorded, but holding other weights (a 2-hop model's)."""
    from safetensors.torch import load_file, save

    meta = json.loads((folder / STATE_FILE).read_text())
    tensors = {k: v for k, v in load_file(str(folder / meta["tensors"])).items() if "embeddings.3" not in k}
    data = save(tensors)
    (folder / meta["tensors"]).write_bytes(data)
    import hashlib

    edit_state(folder, lambda m: m.update(sha256=hashlib.sha256(data).hexdigest()))


DAMAGE = {
    "not-json": (lambda f: (f / STATE_FILE).write_text("{\"epoch\": 4,"), STATE_FILE, "not valid JSON"),
    "newer-format": (lambda f: edit_state(f, lambda m: m.update(format_version=99)), STATE_FILE, "upgrade memqa"),
    "unknown-key": (lambda f: edit_state(f, lambda m: m.update(extra=1)), STATE_FILE, "extra"),
    "missing-key": (lambda f: edit_state(f, lambda m: m.pop("rng")), STATE_FILE, "rng"),
    "bad-history": (lambda f: edit_state(f, lambda m: m["history"].pop()), STATE_FILE, "malformed"),
    "tensors-missing": (lambda f: next(f.glob("state-*.safetensors")).unlink(), "state-0004.safetensors", "missing"),
    "tensors-truncated": (truncate_tensors, "state-0004.safetensors", "sha256"),
    "other-model": (forge_tensors, "state-0004.safetensors", "do not match"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_state_is_one_clear_error_and_nothing_is_applied(tiny_examples, saved_state, kind):
    damage, file_name, fragment = DAMAGE[kind]
    damage(saved_state)
    with pytest.raises(CheckpointError) as caught:
        run(tiny_examples, saved_state.parent)
    message = str(caught.value)
    assert str(saved_state / file_name) in message and fragment in message and "\n" not in message, message
    # fit seeds the global RNG and builds the model before the state is read; the saved RNG was not applied
    refused = torch.get_rng_state()
    assert torch.equal(refused, _rng_after_model_init(tiny_examples))


def _rng_after_model_init(examples):
    """The global RNG after fit seeded it and built repeat 0's model: what a refused state leaves."""
    from memqa.data.vocab import Vocab
    from memqa.models.registry import build_model
    from memqa.train import fit_memory_to_stories

    torch.manual_seed(SCHEDULE.seed)
    build_model("memn2n", fit_memory_to_stories(small_memn2n_config(), examples), Vocab.build(examples))
    return torch.get_rng_state()


def test_a_state_from_another_schedule_is_refused(tiny_examples, saved_state):
    shorter = TrainConfig(**{**SCHEDULE.__dict__, "linear_start_epochs": 1})
    with pytest.raises(CheckpointError, match="schedule"):
        fit("memn2n", small_memn2n_config(), shorter, tiny_examples,
            checkpoints=lambda repeat: StateStore(saved_state.parent / f"repeat-{repeat}"))


def test_nothing_is_ever_unpickled(tiny_examples, saved_state, saved_reader_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    from memqa.reader import load_reader

    load_reader(saved_reader_dir)
    assert run(tiny_examples, saved_state.parent).stopped is None
