"""Score a saved NTM (or LSTM baseline) across sizes: the job behind `memqa evaluate RUN --lengths 20,40,80`,
and the one-sequence episode behind `memqa plot`'s Figure 6 picture. The test sequences are fresh and seeded
(TEST_SEED + size), never seen in training."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from memqa.checkpoint import load_reader_files
from memqa.errors import CheckpointError, ConfigError
from memqa.models.ntm import BitSequenceModel, NTMSequenceModel, NTMTrace
from memqa.ntm_pipeline import score_batches
from memqa.tasks.algorithmic import SequenceBatch, Task, task_from_dict

TEST_SEED = 2_000_003  # generalisation test sequences, never seen in training


@dataclass(frozen=True)
class SizeScore:
    """The paper's metrics at one test size, averaged over `sequences` sequences."""

    size: int
    repeats: int | None  # repeat copy only
    sequences: int
    cost_bits: float  # cross-entropy in bits per sequence
    bit_errors: float  # wrong output bits per sequence
    perfect: float  # fraction of sequences without any bit error


def load_ntm(path: str | os.PathLike, device: str = "cpu") -> tuple[BitSequenceModel, Task, dict]:
    """(model, its task, info) from a folder written by train_ntm: an NTM or the LSTM baseline."""
    model, _, info = load_reader_files(path, device)
    if not isinstance(model, BitSequenceModel) or not isinstance(info.get("task"), dict):
        raise CheckpointError(f"{path}: holds a {model.kind} reader, not an NTM trained on an algorithmic task")
    return model, task_from_dict(info["task"]), info


def with_test_memory(model: BitSequenceModel, rows: int, path: str | os.PathLike) -> NTMSequenceModel:
    """The NTM of `path` with `rows` memory rows, to test it (`--memory-size`): ConfigError when the reader has no
    memory (the LSTM baseline) or was trained with more rows."""
    if not isinstance(model, NTMSequenceModel):
        raise ConfigError(f"--memory-size: {path} holds the {model.label}, which has no memory")
    try:
        return model.with_memory_rows(rows)
    except ConfigError:  # fewer rows than it was trained with: say so in the flag's terms
        raise ConfigError(f"--memory-size {rows}: {path} was trained with {model.config.memory_rows} memory rows; "
                          "give at least that many") from None


def evaluation_batches(task: Task, size: int, sequences: int, *, batch_size: int = 64, seed: int = TEST_SEED,
                       **options: Any) -> list[SequenceBatch]:
    """The `sequences` test sequences of `size` that `score_sizes` scores (seeded: TEST_SEED + size), in batches;
    another `seed` draws others alike (e.g. validation sequences to choose a snapshot on)."""
    generator = torch.Generator().manual_seed(seed + size)
    return [task.sample(min(batch_size, sequences - start), generator, size=size, **options)
            for start in range(0, sequences, batch_size)]


def score_sizes(model: BitSequenceModel, task: Task, sizes: Sequence[int], *, repeats: int | None = None,
                sequences: int = 128, batch_size: int = 64, device: str = "cpu",
                on_size: Callable[[SizeScore], None] | None = None) -> list[SizeScore]:
    """The paper's metrics at each test size, on `sequences` fresh sequences (seeded: TEST_SEED)."""
    options = {} if repeats is None else {"repeats": repeats}
    scores = []
    for size in sizes:
        batches = evaluation_batches(task, size, sequences, batch_size=batch_size, **options)
        score = SizeScore(size, repeats, sequences, *score_batches(model, batches, device))
        scores.append(score)
        if on_size:
            on_size(score)
    return scores


@torch.no_grad()
def episode(model: BitSequenceModel, task: Task, size: int, *, repeats: int | None = None, seed: int = TEST_SEED,
            device: str = "cpu") -> tuple[SequenceBatch, NTMTrace]:
    """One test sequence of `size` and what the NTM did at each step (for the Figure 6 picture)."""
    if not isinstance(model, NTMSequenceModel):
        raise ConfigError(f"a {model.kind} reader has no memory to picture; give an NTM")
    options = {} if repeats is None else {"repeats": repeats}
    batch = task.sample(1, torch.Generator().manual_seed(seed), size=size, **options)
    model.eval()
    output = model(batch.to(device), trace=True)
    return batch, output.trace._replace(**{k: v.cpu() for k, v in output.trace._asdict().items()})


def scores_to_json(task: Task, scores: Sequence[SizeScore]) -> str:
    return json.dumps({"task": task.name, "size": task.size_name, "scores": [dataclasses.asdict(s) for s in scores]},
                      indent=2)


def scores_to_markdown(task: Task, scores: Sequence[SizeScore]) -> str:
    lines = [f"| {task.size_name} | repeats | sequences | cost (bits/seq) | bit errors/seq | perfect (%) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for s in scores:
        lines.append(f"| {s.size} | {s.repeats or '-'} | {s.sequences} | {s.cost_bits:.3f} | {s.bit_errors:.3f} | "
                     f"{100 * s.perfect:.1f} |")
    return "\n".join(lines)
