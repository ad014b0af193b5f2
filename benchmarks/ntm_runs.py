"""Shared by the NTM analysis scripts: a saved NTM run of a given task, ready to probe."""

from __future__ import annotations

import argparse

from memqa.errors import MemqaError
from memqa.models.ntm import NTMSequenceModel
from memqa.ntm_evaluate import evaluation_batches, load_ntm
from memqa.ntm_pipeline import score_batches
from memqa.tasks.algorithmic import Task

VALID_SEED = 3_000_017  # the sequences a snapshot is picked on: neither training's nor the test's


def sizes(text: str) -> list[tuple[int, int | None]]:
    """"10x10,20x10" (length x repeats) or "40,80" (sizes of a task without repeats)."""
    parsed = []
    for item in text.split(","):
        size, _, repeats = item.partition("x")
        parsed.append((int(size), int(repeats) if repeats else None))
    return parsed


def size_names(parsed: list[tuple[int, int | None]]) -> list[str]:
    """The sizes as given: [(10, 20), (40, None)] -> ["10x20", "40"]."""
    return [f"{size}x{repeats}" if repeats else str(size) for size, repeats in parsed]


def repeat_sizes(text: str) -> list[tuple[int, int]]:
    """"10x10,20x10": length x repeats of repeat copy, the repeats of every size given."""
    parsed = sizes(text)
    missing = ", ".join(str(size) for size, repeats in parsed if repeats is None)
    if missing:
        raise argparse.ArgumentTypeError(f"{missing} has no repeats: give each size as LENGTHxREPEATS, as 10x20")
    return [(size, repeats) for size, repeats in parsed if repeats is not None]


def load_run(path: str, *task_names: str, memory_size: int | None = None) -> tuple[NTMSequenceModel, Task, dict]:
    """(model in eval mode, task, info) of the NTM in `path`, with `memory_size` rows when given (as `memqa
    evaluate --memory-size`); exits with one line if there is none, or if it is the LSTM baseline or learned a
    task other than `task_names`."""
    try:
        model, task, info = load_ntm(path, "cpu")
    except MemqaError as error:
        raise SystemExit(str(error)) from None
    if not isinstance(model, NTMSequenceModel):
        raise SystemExit(f"{path}: the {model.label} of {task.name}, which has no memory; this script reads NTM runs")
    if task.name not in task_names:
        raise SystemExit(f"{path}: an NTM of {task.name}; this script reads {' or '.join(task_names)} runs")
    if memory_size is not None:
        model = with_rows(model, memory_size, path)
    return model.eval(), task, info


def with_rows(model: NTMSequenceModel, memory_size: int, path: str) -> NTMSequenceModel:
    """`model` with `memory_size` memory rows (as `memqa evaluate --memory-size`); exits with one line if it cannot."""
    try:
        return model.with_memory_rows(memory_size)
    except MemqaError as error:
        raise SystemExit(f"{path}: {error}") from None


def score_at(model: NTMSequenceModel, task: Task, at: list[tuple[int, int | None]], sequences: int,
             seed: int) -> list[tuple[float, float]]:
    """(bit errors per sequence, perfect share) of `model` at each size of `at` (length x repeats for repeat copy),
    on `sequences` sequences drawn as `memqa evaluate` draws its (seeded `seed` + size)."""
    scores = []
    for size, repeats in at:
        options = {} if repeats is None else {"repeats": repeats}
        _, errors, perfect = score_batches(model, evaluation_batches(task, size, sequences, seed=seed, **options))
        scores.append((errors, perfect))
    return scores
