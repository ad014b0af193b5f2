"""Per-task test accuracy of saved readers: the bAbI results table (accuracy, error, pass).

Readers are scored on the official test files, or (split="valid") on the validation split they held out
of each training file, re-made from the seed and fraction in their config.json: the questions on which
settings and readers may be compared and chosen without reading a test file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from memqa.checkpoint import CONFIG_FILE
from memqa.data.babi import Example, load_task, read_babi_file
from memqa.data.batching import NO_FACT, split_train_valid
from memqa.errors import CheckpointError, ConfigError
from memqa.reader import Reader, load_reader

# Weston et al. 2015 §4: a task is passed at >= 95% accuracy ("failed" = error > 5%).
PASS_ACCURACY = 0.95
EVAL_BATCH_SIZE = 1024  # questions per forward pass when scoring (as memqa.train.evaluate_set)
SPLITS = ("test", "valid")


@dataclass(frozen=True)
class TaskScore:
    task: str  # "1".."20" or a file name
    accuracy: float
    questions: int
    reader: str  # the folder the reader was loaded from
    facts: float | None = None  # hard-attention readers (MemNN): share of questions whose picks are the annotated facts

    @property
    def error(self) -> float:
        return 100.0 * (1.0 - self.accuracy)

    @property
    def passed(self) -> bool:
        return self.accuracy >= PASS_ACCURACY


@dataclass(frozen=True)
class EvaluationReport:
    scores: tuple[TaskScore, ...]
    split: str = "test"  # "test" (the official test files) or "valid" (the readers' validation splits)

    @property
    def mean_error(self) -> float:
        return sum(s.error for s in self.scores) / max(len(self.scores), 1)

    @property
    def failed(self) -> int:
        return sum(not s.passed for s in self.scores)

    @property
    def has_facts(self) -> bool:
        return any(s.facts is not None for s in self.scores)

    def to_json(self) -> str:
        rows = [{**asdict(s), "error": round(s.error, 2), "passed": s.passed} for s in self.scores]
        for row in rows:
            if row["facts"] is None:
                del row["facts"]
        return json.dumps({"split": self.split, "tasks": rows, "mean_error": round(self.mean_error, 2),
                           "failed": self.failed}, indent=2)

    def to_markdown(self) -> str:
        facts = self.has_facts
        lines = ["| task | questions | accuracy (%) | error (%) | passed |" + (" facts (%) |" if facts else ""),
                 "|---|---:|---:|---:|:---:|" + ("---:|" if facts else "")]
        for s in self.scores:
            fact_cell = (" - |" if s.facts is None else f" {100 * s.facts:.1f} |") if facts else ""
            lines.append(f"| {s.task} | {s.questions} | {100 * s.accuracy:.1f} | {s.error:.1f} | {'yes' if s.passed else 'no'} |"
                         + fact_cell)
        lines.append(f"| **mean error** | | | **{self.mean_error:.1f}** | {self.failed} failed |" + (" |" if facts else ""))
        return "\n".join(lines)


def picked_facts_match(attention: Tensor, supporting_ids: Tensor) -> Tensor:
    """Whether every hop picked the annotated fact of its rank: attention (B, K, S) one-hot per hop (a
    row of zeros: the reader stopped), supporting_ids (B, F) slots, NO_FACT padded. Returns (B,) bool;
    a question with more annotated facts than hops is judged on its first K."""
    K = attention.shape[1]
    picks = torch.where(attention.sum(dim=2) > 0, attention.argmax(dim=2), NO_FACT)  # (B, K)
    targets = F.pad(supporting_ids[:, :K], (0, max(K - supporting_ids.shape[1], 0)), value=NO_FACT)  # (B, K)
    return (picks == targets).all(dim=1)  # (B,)


@torch.no_grad()
def fact_accuracy(reader: Reader, examples: Sequence[Example]) -> float | None:
    """Share of the questions with annotated facts whose hops picked exactly those facts, in order;
    None for readers with soft attention, or when no question has annotated facts."""
    if not reader.model.hard_attention:
        return None
    data = reader.encode(examples)
    judged = (data.tensors.supporting_ids != NO_FACT).any(dim=1)  # (N,)
    if not judged.any():
        return None
    matches = [picked_facts_match(reader.model(batch.to(reader.device)).attention.cpu(), batch.supporting_ids)
               for batch in data.batches(EVAL_BATCH_SIZE)]
    return float((torch.cat(matches) & judged).sum()) / int(judged.sum())


def find_readers(path: str | os.PathLike) -> dict[int | None, Path]:
    """A reader folder -> {None: path}; a run folder of per-task readers (task1/, task2/, ...) ->
    {task: folder}."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return {None: path}
    found = {int(p.name[4:]): p for p in path.glob("task*") if p.name[4:].isdigit() and (p / CONFIG_FILE).is_file()}
    if not found:
        raise CheckpointError(f"{path}: neither a saved reader (no {CONFIG_FILE}) nor a folder of task<N>/ readers")
    return dict(sorted(found.items()))


def evaluate_tasks(path: str | os.PathLike, tasks: Sequence[int] | None = None, *, data_dir=None, data: str = "en",
                   device: str = "cpu", on_task: Callable[[TaskScore], None] | None = None,
                   split: str = "test") -> EvaluationReport:
    """Evaluate the reader(s) at `path` on the official test files of `tasks` (split="valid": on the
    validation split of each task's training file that the reader held out, see task_examples).

    A single reader is evaluated on `tasks` (default: the tasks it was trained on); a run folder
    of per-task readers evaluates each on its own task (restricted to `tasks` when given)."""
    if split not in SPLITS:
        raise ConfigError(f"split {split!r}: choose test or valid")
    readers = find_readers(path)
    if None in readers:
        reader = load_reader(readers[None], device)
        plan = [(task, reader, readers[None]) for task in (tasks or reader.info.get("tasks") or [])]
        if not plan:
            raise CheckpointError(f"{path}: the reader does not say which tasks it was trained on; pass --tasks")
    else:
        chosen = [t for t in readers if tasks is None or t in tasks]
        missing = sorted(set(tasks or ()) - set(readers))
        if missing:
            raise CheckpointError(f"{path}: no reader for task(s) {missing} (found task folders {sorted(readers)})")
        plan = [(task, load_reader(readers[task], device), readers[task]) for task in chosen]
    scores = []
    for task, reader, folder in plan:
        examples = task_examples(task, split, reader, folder, data_dir=data_dir, data=data)
        score = TaskScore(str(task), reader.evaluate(examples), len(examples), str(folder),
                          fact_accuracy(reader, examples))
        scores.append(score)
        if on_task:
            on_task(score)
    return EvaluationReport(tuple(scores), split)


def task_examples(task: int, split: str, reader: Reader, folder: str | os.PathLike, *, data_dir=None,
                  data: str = "en") -> list[Example]:
    """The questions of `task` to score `reader` on: the official test file, or (split="valid") the
    validation split of the training file, made as training made it: the same seed and fraction
    (each task is split on its own, so a joint reader's split of a task is a per-task reader's)."""
    if split == "test":
        return load_task(task, "test", data_dir=data_dir, data=data)
    train_config = reader.info.get("train_config")
    if not isinstance(train_config, dict) or reader.info.get("data") != data or not {"seed", "valid_fraction"} <= set(train_config):
        raise CheckpointError(f"{folder}: its config.json does not record a validation split of the bAbI "
                              f"'{data}' training files (seed, valid_fraction, data); evaluate it on the test files")
    if not train_config["valid_fraction"]:
        raise CheckpointError(f"{folder}: was trained on every training question (valid_fraction 0), so it has "
                              "no validation split; evaluate it on the test files")
    examples = load_task(task, "train", data_dir=data_dir, data=data)
    return split_train_valid(examples, train_config["valid_fraction"], train_config["seed"])[1]


def evaluate_file(path: str | os.PathLike, test_file: str | os.PathLike, device: str = "cpu") -> EvaluationReport:
    """Evaluate one saved reader on any bAbI-format file."""
    readers = find_readers(path)
    if None not in readers:
        raise CheckpointError(f"{path}: holds several task readers; pass one of its task<N>/ folders with --test-file")
    reader = load_reader(readers[None], device)
    examples = read_babi_file(test_file)
    return EvaluationReport((TaskScore(Path(test_file).name, reader.evaluate(examples), len(examples), str(path),
                                       fact_accuracy(reader, examples)),))
