"""Train readers on bAbI tasks (or any bAbI-format file), score them and save them: the job
behind `memqa train`. One reader per task, one joint reader for all tasks, or one per file."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from memqa.config import JOINT_EMBEDDING_DIM, JOINT_TRAIN_CONFIG, MemN2NConfig, TrainConfig
from memqa.data.babi import Example, load_task, read_babi_file, require_data_dir
from memqa.errors import ConfigError
from memqa.reader import Reader
from memqa.sweep import LabelledEpochCallback, run_parallel
from memqa.train import EpochCallback, TrainResult, fit


@dataclass(frozen=True)
class TrainRequest:
    out: Path
    reader: str = "memn2n"
    tasks: tuple[int, ...] = (1,)
    joint: bool = False
    data: str = "en"
    data_dir: str | None = None
    train_file: str | None = None  # any bAbI-format file instead of the official tasks
    test_file: str | None = None
    model_config: MemN2NConfig = field(default_factory=MemN2NConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    device: str = "cpu"


@dataclass(frozen=True)
class TrainedReader:
    label: str  # "task 1", "joint 1-20" or the training file's name
    path: Path
    result: TrainResult
    test_accuracy: float | None


def default_configs(joint: bool) -> tuple[MemN2NConfig, TrainConfig]:
    """The paper's settings: per-task d = 20 and 100 epochs, or joint d = 50 and 60 epochs (§4.2)."""
    if not joint:
        return MemN2NConfig(), TrainConfig()
    model = MemN2NConfig()
    return dataclasses.replace(model, encoder=dataclasses.replace(model.encoder, embedding_dim=JOINT_EMBEDDING_DIM)), JOINT_TRAIN_CONFIG


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is usable, else 'cpu'; 'cuda' without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r}: choose auto, cpu or cuda")
    return device


def train_readers(request: TrainRequest, *, on_epoch: LabelledEpochCallback | None = None, workers: int = 1) -> list[TrainedReader]:
    """Run the request; each reader is saved as soon as it is trained (an interrupt keeps the best so far).
    With workers > 1 the readers train in parallel processes (one torch thread each)."""
    resolve_device(request.device)
    jobs = list(_jobs(request))
    if workers > 1 and len(jobs) > 1:
        return run_parallel(train_job, [(request, job) for job in jobs], workers, on_epoch)
    trained = []
    for job in jobs:
        callback = (lambda repeat, record, total, label=job.label: on_epoch(label, repeat, record, total)) if on_epoch else None
        item = train_job(request, job, callback)
        if item is None:  # interrupted before the first epoch ended: nothing worth saving
            break
        trained.append(item)
        if item.result.stopped:
            break
    return trained


def train_job(request: TrainRequest, job: Job, on_epoch: EpochCallback | None = None) -> TrainedReader | None:
    """Train, score and save one reader (None when interrupted before its first epoch)."""
    result = fit(request.reader, request.model_config, request.train_config, job.train,
                 device=resolve_device(request.device), on_epoch=on_epoch)
    if not result.history:
        return None
    reader = Reader(result.model, result.vocab, _info(request, result, job.tasks))
    test_accuracy = reader.evaluate(job.test) if job.test else None
    if test_accuracy is not None:
        reader.info["scores"]["test"] = test_accuracy
    reader.save_pretrained(job.out)
    return TrainedReader(job.label, job.out, result, test_accuracy)


class Job(NamedTuple):
    """One reader to train: its label, output folder, data and the task ids it covers."""

    label: str
    out: Path
    train: list[Example]
    test: list[Example] | None
    tasks: list[int]


def _jobs(request: TrainRequest) -> Iterator[Job]:
    if request.train_file:
        test = read_babi_file(request.test_file) if request.test_file else None
        yield Job(Path(request.train_file).name, request.out, read_babi_file(request.train_file), test, [])
        return
    data_dir = require_data_dir(request.data_dir)
    load = lambda task, split: load_task(task, split, data_dir=data_dir, data=request.data)  # noqa: E731
    if request.joint:
        train: list[Example] = [e for t in request.tasks for e in load(t, "train")]
        test = [e for t in request.tasks for e in load(t, "test")]
        yield Job(f"joint {_span(request.tasks)}", request.out, train, test, list(request.tasks))
        return
    for task in request.tasks:
        out = request.out if len(request.tasks) == 1 else request.out / f"task{task}"
        yield Job(f"task {task}", out, load(task, "train"), load(task, "test"), [task])


def _span(tasks: Sequence[int]) -> str:
    return f"{tasks[0]}-{tasks[-1]}" if list(tasks) == list(range(tasks[0], tasks[-1] + 1)) else ",".join(map(str, tasks))


def _info(request: TrainRequest, result: TrainResult, tasks: list[int]) -> dict:
    best = result.best
    return {
        "tasks": tasks,
        "data": request.train_file or request.data,
        "train_config": dataclasses.asdict(request.train_config),
        "seed": result.seed,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        "train_seconds": round(result.seconds, 2),
        "scores": {"train": best.train_accuracy, "valid": best.valid_accuracy} if best else {},
        "command": shlex.join(["memqa", *sys.argv[1:]]) if Path(sys.argv[0]).name == "memqa" else "",
    }
