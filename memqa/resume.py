"""Resumable training: the files `memqa train` keeps so that `memqa train --resume RUN_DIR` goes on
exactly where a stopped (Ctrl-C) or killed (SIGKILL, power cut) run left off.

  RUN_DIR/.train-state/
    request.json                 the whole run request, written when the run starts
    <reader>/                    one per reader: "reader" when RUN_DIR is the reader, else "task1", ...
      repeat-<r>/state.json      after every epoch: epoch, phase, learning rate, best epoch, history,
                                 optimizer settings, RNG bookkeeping, and the name and sha256 of ...
      repeat-<r>/state-<epoch>.safetensors   ... the tensors: weights, best weights, optimizer and RNG states
      finished.json              the reader is saved; a resumed run skips it

Every file is written to a temporary name in the same folder, fsync'd and renamed into place, and
state.json is written after the tensors it names, so a kill at any moment leaves the previous epoch's
state or the new one, never a mix. Nothing is pickled: tensors go to safetensors, the rest to JSON.
The folder is removed when every reader of the run finished without diverging.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor

from memqa.checkpoint import TRAIN_STATE_DIR
from memqa.errors import CheckpointError
from memqa.train import EpochRecord
from memqa.training_state import TrainingState

STATE_FORMAT_VERSION = 1
REQUEST_FILE, STATE_FILE, FINISHED_FILE = "request.json", "state.json", "finished.json"
_STATE_KEYS = {"format_version", "tensors", "sha256", "epoch", "phase", "learning_rate", "best_epoch", "best_key",
               "baseline_loss", "seconds", "history", "optimizer", "rng"}


def state_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / TRAIN_STATE_DIR


# --- writing files that survive a kill -----------------------------------------------------------


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary sibling, fsync it, rename it over `path` and fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_json(path: Path, data: Any) -> None:
    write_atomically(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def read_json(path: Path, what: str) -> Any:
    """The JSON in `path`; a damaged file is a CheckpointError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error}); the {what} is damaged") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object; the {what} is damaged")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: format_version must be a positive integer, got {version!r}")
    if version > STATE_FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version} is newer than this memqa reads "
                              f"({STATE_FORMAT_VERSION}); upgrade memqa to resume this run")
    return data


# --- the run: request, per-reader folders, finished markers --------------------------------------


def start_run(run_dir: Path, request: dict, job_names: list[str]) -> None:
    """Record a new run's request and its readers' names; refuse to start over a run that can still
    be resumed (a finished or diverged one is replaced)."""
    folder = state_dir(run_dir)
    if is_resumable(run_dir):
        raise CheckpointError(f"{run_dir}: holds an unfinished training run; continue it with "
                              f"`memqa train --resume {run_dir}`, or delete {folder} to start over")
    shutil.rmtree(folder, ignore_errors=True)
    write_json(folder / REQUEST_FILE, {"format_version": STATE_FORMAT_VERSION, "request": request,
                                       "readers": job_names})


def read_request(run_dir: str | os.PathLike) -> dict:
    """The request a run started with (as JSON); CheckpointError when there is none to resume."""
    return _read_run(run_dir)["request"]


def _read_run(run_dir: str | os.PathLike) -> dict:
    file = state_dir(run_dir) / REQUEST_FILE
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: no such run folder")
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; {run_dir} has no training run to resume (a run that finished "
                              "removes it; start a new one with `memqa train --out`)")
    data = read_json(file, "run request")
    if (set(data) != {"format_version", "request", "readers"} or not isinstance(data["request"], dict)
            or not isinstance(data["readers"], list) or not all(isinstance(n, str) for n in data["readers"])):
        raise CheckpointError(f"{file}: expected the keys 'format_version', 'request' and 'readers' (a list of names)")
    return data


def is_resumable(run_dir: str | os.PathLike) -> bool:
    """A run was started here and some reader of it has not finished (a damaged run counts: it is
    not replaced silently)."""
    if not (state_dir(run_dir) / REQUEST_FILE).is_file():
        return False
    try:
        names = _read_run(run_dir)["readers"]
    except CheckpointError:
        return True
    return not all((state_dir(run_dir) / name / FINISHED_FILE).is_file() for name in names)


def has_saved_epochs(run_dir: Path) -> bool:
    return any(state_dir(run_dir).glob(f"*/repeat-*/{STATE_FILE}"))


def mark_finished(run_dir: Path, job_name: str, summary: dict) -> None:
    write_json(state_dir(run_dir) / job_name / FINISHED_FILE, {"format_version": STATE_FORMAT_VERSION, **summary})


def read_finished(run_dir: Path, job_name: str) -> dict | None:
    """What finished.json recorded about a reader of the run, or None while it is unfinished."""
    file = state_dir(run_dir) / job_name / FINISHED_FILE
    if not file.is_file():
        return None
    data = read_json(file, "finished-reader record")
    data.pop("format_version")
    return data


def end_run(run_dir: Path) -> None:
    """Remove the run's state (request.json first: a half-removed folder is no resumable run)."""
    folder = state_dir(run_dir)
    (folder / REQUEST_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


# --- one repeat's training state ------------------------------------------------------------------


class StateStore:
    """Saves and loads train_model's state in one folder (a memqa.train.Checkpointer)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def __str__(self) -> str:
        return str(self.folder / STATE_FILE)

    def save(self, state: TrainingState) -> None:
        """Tensors first, then the state.json that names them, then the previous tensors go."""
        tensors, rng = _flatten_rng(state.rng)
        tensors.update({f"model/{k}": v for k, v in state.model.items()})
        tensors.update({f"best/{k}": v for k, v in state.best.items()})
        optimizer_tensors, optimizer = _flatten_optimizer(state.optimizer)
        tensors.update(optimizer_tensors)
        data = save_tensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        name = f"state-{state.epoch:04d}.safetensors"
        write_atomically(self.folder / name, data)
        last = state.history[-1] if state.history else None
        write_json(self.folder / STATE_FILE, {
            "format_version": STATE_FORMAT_VERSION, "tensors": name, "sha256": hashlib.sha256(data).hexdigest(),
            "epoch": state.epoch, "phase": last.phase if last else None,
            "learning_rate": last.learning_rate if last else None, "best_epoch": state.best_epoch,
            "best_key": list(state.best_key), "baseline_loss": state.baseline_loss, "seconds": state.seconds,
            "history": [vars(record) for record in state.history], "optimizer": optimizer, "rng": rng})
        for old in self.folder.glob("state-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def load(self, model: torch.nn.Module) -> TrainingState | None:
        """The saved state, checked whole against `model` before anything is used; None when none."""
        file = self.folder / STATE_FILE
        if not file.is_file():
            return None
        meta = read_json(file, "training state")
        if set(meta) != _STATE_KEYS:
            raise CheckpointError(f"{file}: expected keys {sorted(_STATE_KEYS)}, found {sorted(meta)}")
        tensors = self._read_tensors(meta)
        try:
            state = _unflatten(meta, tensors)
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{file}: malformed training state ({error!r}); delete {self.folder} "
                                  "to train this reader again from scratch") from None
        _check_weights(state, model, self.folder / meta["tensors"])
        return state

    def _read_tensors(self, meta: dict) -> dict[str, Tensor]:
        path = self.folder / str(meta["tensors"])
        if not path.is_file():
            raise CheckpointError(f"{path}: missing; the training state is incomplete")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise CheckpointError(f"{path}: does not match the sha256 in {STATE_FILE}; the file is damaged")
        try:
            return load_tensors(data)
        except Exception as error:  # safetensors raises several types for damaged files
            raise CheckpointError(f"{path}: damaged or not a safetensors file ({str(error)[:120]})") from None


def _check_weights(state: TrainingState, model: torch.nn.Module, file: Path) -> None:
    expected = model.state_dict()
    for part, weights in (("model", state.model), ("best", state.best)):
        if set(weights) != set(expected):
            raise CheckpointError(f"{file}: the {part} weights do not match this run's reader "
                                  f"(missing {sorted(set(expected) - set(weights))[:3]}, "
                                  f"unexpected {sorted(set(weights) - set(expected))[:3]})")
        for name, tensor in expected.items():
            if weights[name].shape != tensor.shape or weights[name].dtype != tensor.dtype:
                raise CheckpointError(f"{file}: {part}/{name} has shape {tuple(weights[name].shape)}, "
                                      f"this run's reader needs {tuple(tensor.shape)}")
    groups = state.optimizer.get("param_groups", [])
    indices = sorted(i for group in groups for i in group["params"])
    if indices != list(range(len(list(model.parameters())))):
        raise CheckpointError(f"{file}: the optimizer state does not match this run's reader")


def _unflatten(meta: dict, tensors: dict[str, Tensor]) -> TrainingState:
    part = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}  # noqa: E731
    history = [EpochRecord(**record) for record in meta["history"]]
    if len(history) != meta["epoch"]:
        raise ValueError(f"{len(history)} history records for epoch {meta['epoch']}")
    best_key = tuple(float(x) for x in meta["best_key"])
    if len(best_key) != 2:
        raise ValueError("best_key needs two numbers")
    return TrainingState(
        epoch=int(meta["epoch"]), model=part("model/"), optimizer=_unflatten_optimizer(meta["optimizer"], tensors),
        best=part("best/"), best_key=best_key, best_epoch=int(meta["best_epoch"]), history=history,
        rng=_unflatten_rng(meta["rng"], tensors), baseline_loss=float(meta["baseline_loss"]),
        seconds=float(meta["seconds"]))


def _flatten_optimizer(optimizer: dict) -> tuple[dict[str, Tensor], dict]:
    """optimizer.state_dict() -> (its tensors, named optimizer/<param>/<key>; the rest, as JSON)."""
    tensors, state = {}, {}
    for index, values in optimizer.get("state", {}).items():
        state[str(index)] = {}
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
                state[str(index)][key] = {"tensor": f"optimizer/{index}/{key}"}
            else:
                state[str(index)][key] = value
    return tensors, {"state": state, "param_groups": optimizer.get("param_groups", [])}


def _unflatten_optimizer(data: dict, tensors: dict[str, Tensor]) -> dict:
    state = {int(index): {key: tensors[value["tensor"]] if isinstance(value, dict) else value
                          for key, value in values.items()} for index, values in data["state"].items()}
    return {"state": state, "param_groups": data["param_groups"]}


def _flatten_rng(rng: dict) -> tuple[dict[str, Tensor], dict]:
    """capture_rng()'s states -> (tensors named rng/..., JSON bookkeeping)."""
    version, python_state, gauss = rng["python"]
    _, numpy_keys, position, has_gauss, cached = rng["numpy"]
    tensors = {"rng/shuffle": rng["shuffle"], "rng/torch": rng["torch"],
               "rng/python": torch.tensor(python_state, dtype=torch.int64),
               "rng/numpy": torch.from_numpy(numpy_keys.astype(np.int64))}
    tensors.update({f"rng/cuda/{i}": state for i, state in enumerate(rng["cuda"])})
    return tensors, {"python": {"version": version, "gauss_next": gauss},
                     "numpy": {"position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
                     "cuda_devices": len(rng["cuda"])}


def _unflatten_rng(data: dict, tensors: dict[str, Tensor]) -> dict:
    python, numpy_state = data["python"], data["numpy"]
    return {"shuffle": tensors["rng/shuffle"], "torch": tensors["rng/torch"],
            "cuda": [tensors[f"rng/cuda/{i}"] for i in range(int(data["cuda_devices"]))],
            "python": (python["version"], tuple(tensors["rng/python"].tolist()), python["gauss_next"]),
            "numpy": ("MT19937", tensors["rng/numpy"].numpy().astype(np.uint32), numpy_state["position"],
                      numpy_state["has_gauss"], numpy_state["cached_gaussian"])}
