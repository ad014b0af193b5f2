"""Train readers on bAbI tasks (or any bAbI-format file), score them and save them: the job
behind `memqa train`. One reader per task, one joint reader for all tasks, or one per file.

Every run is resumable: its request and each reader's training state live in OUT/.train-state/
(memqa/resume.py) until every reader finished; `resume_run(OUT)` goes on from there."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from memqa.checkpoint import check_save_target, load_reader_files
from memqa.config import (JOINT_EMBEDDING_DIM, JOINT_TRAIN_CONFIG, MEMNN_TRAIN_CONFIG, NTM_QA_TRAIN_CONFIG, MemN2NConfig,
                          MemNNConfig, NTMQAConfig, TrainConfig, from_dict, to_dict, train_config_from_dict)
from memqa.data.babi import Example, load_task, read_babi_file, require_data_dir
from memqa.errors import CheckpointError, ConfigError, TrainingError
from memqa.models.registry import reader_class
from memqa.reader import Reader
from memqa.resume import (REQUEST_FILE, StateStore, end_run, has_saved_epochs, mark_finished, read_finished,
                          read_request, start_run, state_dir)
from memqa.sweep import LabelledEpochCallback, run_parallel
from memqa.train import EpochCallback, EpochRecord, TrainResult, fit


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
    model_config: MemN2NConfig | MemNNConfig | NTMQAConfig = field(default_factory=MemN2NConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    device: str = "cpu"
    command: str = ""  # the command line that started the run, kept in each reader's config.json and model card


@dataclass(frozen=True)
class TrainedReader:
    label: str  # "task 1", "joint 1-20" or the training file's name
    path: Path
    result: TrainResult
    test_accuracy: float | None


def default_configs(joint: bool, reader: str = "memn2n") -> tuple[MemN2NConfig | MemNNConfig | NTMQAConfig, TrainConfig]:
    """The paper's settings: per-task d = 20 and 100 epochs, or joint d = 50 and 60 epochs (§4.2).
    MemNN: MemNNConfig() and MEMNN_TRAIN_CONFIG, per task and joint (chosen on validation); the NTM
    reader: NTMQAConfig() and NTM_QA_TRAIN_CONFIG."""
    config_class = reader_class(reader).config_class
    if config_class is MemNNConfig:
        return MemNNConfig(), MEMNN_TRAIN_CONFIG
    if config_class is NTMQAConfig:
        return NTMQAConfig(), NTM_QA_TRAIN_CONFIG
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


def train_readers(request: TrainRequest, *, on_epoch: LabelledEpochCallback | None = None, workers: int = 1,
                  resume: bool = False) -> list[TrainedReader]:
    """Run the request; each reader is saved as soon as it is trained (an interrupt keeps the best so far).
    With workers > 1 the readers train in parallel processes (one torch thread each). With resume=True
    the run goes on from its saved state; readers it finished are skipped (and listed)."""
    resolve_device(request.device)
    jobs = list(_jobs(request))
    for job in jobs:
        check_save_target(job.out)  # before training, not after it
    names = [_job_name(request, job) for job in jobs]
    created = not request.out.exists()
    if not resume:
        start_run(request.out, request_to_json(request), names)
    try:
        return _train_jobs(request, jobs, on_epoch, workers)
    finally:
        summaries = [read_finished(request.out, name) for name in names]
        if not has_saved_epochs(request.out) or all(s and s["stopped"] is None for s in summaries):
            end_run(request.out)  # nothing to go on with
        if created and request.out.is_dir() and not any(request.out.iterdir()):
            request.out.rmdir()  # a run that saved nothing leaves no trace


def resume_run(run_dir: str | os.PathLike, *, on_epoch: LabelledEpochCallback | None = None,
               workers: int = 1) -> list[TrainedReader]:
    """Go on with the run saved in run_dir/.train-state (see train_readers)."""
    return train_readers(load_run_request(run_dir), on_epoch=on_epoch, workers=workers, resume=True)


def _train_jobs(request: TrainRequest, jobs: list[Job], on_epoch: LabelledEpochCallback | None,
                workers: int) -> list[TrainedReader]:
    finished = {job.label: _finished_reader(request, job) for job in jobs}
    pending = [job for job in jobs if finished[job.label] is None]
    if workers > 1 and len(pending) > 1:
        fresh = {item.label: item for item in run_parallel(train_job, [(request, job) for job in pending], workers, on_epoch)}
        return [finished[job.label] or fresh[job.label] for job in jobs if finished[job.label] or job.label in fresh]
    trained = []
    for job in jobs:
        if finished[job.label]:
            trained.append(finished[job.label])
            continue
        callback = (lambda repeat, record, total, label=job.label: on_epoch(label, repeat, record, total)) if on_epoch else None
        item = train_job(request, job, callback)
        if item is None:  # interrupted before the first epoch ended: nothing worth saving
            break
        trained.append(item)
        if item.result.stopped:
            break
    return trained


def train_job(request: TrainRequest, job: Job, on_epoch: EpochCallback | None = None) -> TrainedReader | None:
    """Train, score and save one reader (None when stopped before an epoch of its final phase ended;
    TrainingError when it diverged before). Its state is saved every epoch; a saved state is resumed."""
    folder = state_dir(request.out) / _job_name(request, job)
    result = fit(request.reader, request.model_config, request.train_config, job.train,
                 device=resolve_device(request.device), on_epoch=on_epoch,
                 checkpoints=lambda repeat: StateStore(folder / f"repeat-{repeat}"))
    if result.best is None and result.stopped == "diverged":
        raise TrainingError(f"{job.label}: training diverged in {result.stop_detail}; nothing was saved: "
                            "train again with a smaller learning rate (--lr)")
    if result.best is None:  # stopped before an epoch of the final phase: no reader yet (its state is kept)
        return None
    reader = Reader(result.model, result.vocab, _info(request, result, job.tasks))
    test_accuracy = reader.evaluate(job.test) if job.test else None
    if test_accuracy is not None:
        reader.info["scores"]["test"] = test_accuracy
    reader.save_pretrained(job.out)
    if result.stopped != "interrupted":  # a diverged run would diverge again: it is finished too
        mark_finished(request.out, _job_name(request, job), {
            "label": job.label, "test_accuracy": test_accuracy, "seed": result.seed, "best_epoch": result.best_epoch,
            "stopped": result.stopped, "stop_detail": result.stop_detail, "seconds": result.seconds,
            "history": [vars(record) for record in result.history]})
    return TrainedReader(job.label, job.out, result, test_accuracy)


def _job_name(request: TrainRequest, job: Job) -> str:
    """The job's folder in OUT/.train-state: "reader" when OUT is the reader, else the reader's folder name."""
    return "reader" if job.out == request.out else job.out.name


def _finished_reader(request: TrainRequest, job: Job) -> TrainedReader | None:
    """A reader the run finished earlier, rebuilt from finished.json and its folder (None if unfinished;
    a missing or damaged reader folder is trained again from its complete state)."""
    summary = read_finished(request.out, _job_name(request, job))
    if summary is None:
        return None
    try:
        model, vocab, _ = load_reader_files(job.out)
        history = [EpochRecord(**record) for record in summary["history"]]
        result = TrainResult(model, vocab, history, summary["best_epoch"], summary["seed"], summary["stopped"],
                             summary["seconds"], summary["stop_detail"])
        return TrainedReader(job.label, job.out, result, summary["test_accuracy"])
    except CheckpointError:
        return None
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"{state_dir(request.out) / _job_name(request, job)}/finished.json: malformed "
                              f"({error!r}); delete it to train that reader again") from None


_PATH_FIELDS = ("out", "data_dir", "train_file", "test_file")


def request_to_json(request: TrainRequest) -> dict:
    """The request as JSON data; paths made absolute, so a resumed run finds its files from any folder."""
    data = {}
    for f in dataclasses.fields(request):
        value = getattr(request, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif f.name in _PATH_FIELDS and value is not None:
            value = os.path.abspath(value)
        data[f.name] = value
    return data


def load_run_request(run_dir: str | os.PathLike) -> TrainRequest:
    """The request of the run saved in run_dir (its out is run_dir, wherever the run was started)."""
    data, where = read_request(run_dir), f"{state_dir(run_dir) / REQUEST_FILE}"
    expected = {f.name for f in dataclasses.fields(TrainRequest)}
    if not expected - {"command"} <= set(data) <= expected:  # runs saved before the command was kept lack it
        raise CheckpointError(f"{where}: expected keys {sorted(expected)}, found {sorted(data)}")
    try:
        model_config = from_dict(reader_class(data["reader"]).config_class, data["model_config"],
                                 where=f"{where}: model_config")
        train_config = train_config_from_dict(data["train_config"], where=f"{where}: train_config")
        return TrainRequest(**{**data, "out": Path(run_dir), "tasks": tuple(data["tasks"]),
                               "model_config": model_config, "train_config": train_config})
    except (ConfigError, TypeError, ValueError) as error:
        message = str(error)
        raise CheckpointError(message if where in message else f"{where}: {message}") from None


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
        "scores": ({"train": best.train_accuracy, **({"valid": best.valid_accuracy} if result.validated else {})}
                   if best else {}),
        "command": request.command,
    }
