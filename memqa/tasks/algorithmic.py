"""The algorithmic tasks of the NTM paper (Graves, Wayne, Danihelka 2014 §4): copy, repeat copy,
associative recall and priority sort, as seeded, batched generators of bit-vector sequences.

A batch holds B sequences of one size (length, items or vectors), drawn uniformly from the
training range per batch unless a size is asked for, so tensors need no padding. `inputs`
covers every time step, the answer phase included (where the input is zero); `targets` are the
bits expected in the last T_out steps. Losses are binary cross-entropy on logits (§4: "logistic
sigmoid output layers ... cross-entropy objective"); the paper's metrics are the cost in bits per
sequence and the bit errors per sequence (outputs thresholded at 1/2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from memqa.errors import ConfigError


class SequenceBatch(NamedTuple):
    """inputs (B, T, I) for every step; targets (B, T_out, O) for the last T_out steps."""

    inputs: Tensor
    targets: Tensor

    def to(self, device: torch.device | str) -> "SequenceBatch":
        return SequenceBatch(self.inputs.to(device), self.targets.to(device))


class SequenceScores(NamedTuple):
    """Per sequence: cost_bits (B,) cross-entropy in bits; bit_errors (B,) wrong output bits."""

    cost_bits: Tensor
    bit_errors: Tensor


def sequence_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Binary cross-entropy in nats, summed over bits, steps and the batch. logits, targets: (B, T_out, O)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")


def sequence_scores(logits: Tensor, targets: Tensor) -> SequenceScores:
    """The paper's metrics per sequence. logits, targets: (B, T_out, O)."""
    nats = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # (B, T_out, O)
    cost_bits = nats.sum(dim=(1, 2)) / math.log(2)  # (B,)
    bit_errors = ((logits > 0) != (targets > 0.5)).sum(dim=(1, 2))  # (B,)
    return SequenceScores(cost_bits, bit_errors)


def random_bits(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return torch.randint(0, 2, shape, generator=generator).float()


def uniform_int(low: int, high: int, generator: torch.Generator) -> int:
    """One integer drawn uniformly from low..high inclusive."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


@dataclass(frozen=True)
class Task:
    """A task's shape and training range; subclasses build the sequences."""

    name: ClassVar[str]
    size_name: ClassVar[str]  # what `size` counts: "length", "items" or "vectors"

    @property
    def input_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def output_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def training_sizes(self) -> tuple[int, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def make(self, size: int, batch_size: int, generator: torch.Generator, **options: Any) -> SequenceBatch:
        raise NotImplementedError  # pragma: no cover - abstract

    def sample(self, batch_size: int, generator: torch.Generator, size: int | None = None,
               **options: Any) -> SequenceBatch:
        """A batch of `size` (default: drawn uniformly from the training range)."""
        if size is None:
            size = uniform_int(*self.training_sizes, generator)
        if size < 1:
            raise ConfigError(f"{self.name}: the {self.size_name} must be at least 1, got {size}")
        return self.make(size, batch_size, generator, **options)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class CopyTask(Task):
    """§4.1: random 8-bit vectors, then a delimiter flag; then copy them back with no input."""

    name: ClassVar[str] = "copy"
    size_name: ClassVar[str] = "length"
    bits: int = 8  # §4.1: "random binary 8-bit vectors"
    min_length: int = 1  # §4.1: "sequence lengths ... between 1 and 20"
    max_length: int = 20

    input_size = property(lambda self: self.bits + 1)  # the bits + a delimiter channel
    output_size = property(lambda self: self.bits)
    training_sizes = property(lambda self: (self.min_length, self.max_length))

    def make(self, size: int, batch_size: int, generator: torch.Generator, **options: Any) -> SequenceBatch:
        vectors = random_bits((batch_size, size, self.bits), generator)  # (B, T_in, O)
        inputs = vectors.new_zeros(batch_size, 2 * size + 1, self.input_size)  # (B, T, I)
        inputs[:, :size, : self.bits] = vectors
        inputs[:, size, self.bits] = 1.0  # delimiter
        return SequenceBatch(inputs, vectors)


@dataclass(frozen=True)
class RepeatCopyTask(Task):
    """§4.2: a sequence, then the number of repeats on its own channel (normalised to mean 0 and
    variance 1 over the training range); output the sequence that many times, then an end marker."""

    name: ClassVar[str] = "repeat-copy"
    size_name: ClassVar[str] = "length"
    bits: int = 8  # §4.2: random 8-bit vectors
    min_length: int = 1  # §4.2: length and repeats "from 1 to 10"
    max_length: int = 10
    min_repeats: int = 1
    max_repeats: int = 10

    input_size = property(lambda self: self.bits + 2)  # bits, delimiter, repeat count
    output_size = property(lambda self: self.bits + 1)  # bits, end marker
    training_sizes = property(lambda self: (self.min_length, self.max_length))

    def normalised_repeats(self, repeats: int) -> float:
        """(repeats - mean) / std of the discrete uniform law on min_repeats..max_repeats."""
        count = self.max_repeats - self.min_repeats + 1
        mean, variance = (self.min_repeats + self.max_repeats) / 2, (count**2 - 1) / 12
        return (repeats - mean) / math.sqrt(variance) if variance > 0 else 0.0

    def make(self, size: int, batch_size: int, generator: torch.Generator, repeats: int | None = None,
             **options: Any) -> SequenceBatch:
        if repeats is None:
            repeats = uniform_int(self.min_repeats, self.max_repeats, generator)
        vectors = random_bits((batch_size, size, self.bits), generator)  # (B, T_in, O)
        answer_steps = size * repeats + 1
        inputs = vectors.new_zeros(batch_size, size + 1 + answer_steps, self.input_size)  # (B, T, I)
        inputs[:, :size, : self.bits] = vectors
        inputs[:, size, self.bits] = 1.0  # delimiter
        inputs[:, size, self.bits + 1] = self.normalised_repeats(repeats)
        targets = vectors.new_zeros(batch_size, answer_steps, self.output_size)  # (B, T_out, O)
        targets[:, :-1, : self.bits] = vectors.repeat(1, repeats, 1)  # (B, T_out - 1, O)
        targets[:, -1, self.bits] = 1.0  # end marker
        return SequenceBatch(inputs, targets)


@dataclass(frozen=True)
class AssociativeRecallTask(Task):
    """§4.3: items of 3 six-bit vectors, each after a delimiter; then a query item between two
    query delimiters; answer with the item that followed the query in the list."""

    name: ClassVar[str] = "associative-recall"
    size_name: ClassVar[str] = "items"
    bits: int = 6  # §4.3: "each item consisted of three six-bit binary vectors"
    item_length: int = 3
    min_items: int = 2  # §4.3: "between 2 and 6 items"
    max_items: int = 6

    input_size = property(lambda self: self.bits + 2)  # bits, item delimiter, query delimiter
    output_size = property(lambda self: self.bits)
    training_sizes = property(lambda self: (self.min_items, self.max_items))

    def make(self, size: int, batch_size: int, generator: torch.Generator, **options: Any) -> SequenceBatch:
        if size < 2:
            raise ConfigError(f"{self.name}: needs at least 2 items (one to ask, one to answer), got {size}")
        span = self.item_length + 1
        items = random_bits((batch_size, size, self.item_length, self.bits), generator)  # (B, items, 3, O)
        query = torch.randint(0, size - 1, (batch_size,), generator=generator)  # (B,) never the last item
        rows = torch.arange(batch_size)
        inputs = items.new_zeros(batch_size, size * span + span + 1 + self.item_length, self.input_size)  # (B, T, I)
        listed = inputs[:, : size * span].view(batch_size, size, span, self.input_size)  # (B, items, 4, I)
        listed[:, :, 0, self.bits] = 1.0  # item delimiter
        listed[:, :, 1:, : self.bits] = items
        start = size * span
        inputs[:, start, self.bits + 1] = 1.0  # query delimiter
        inputs[:, start + 1 : start + span, : self.bits] = items[rows, query]  # (B, 3, O)
        inputs[:, start + span, self.bits + 1] = 1.0
        return SequenceBatch(inputs, items[rows, query + 1])  # targets (B, 3, O)


@dataclass(frozen=True)
class PrioritySortTask(Task):
    """§4.5: random binary vectors, each with a priority drawn uniformly from [-1, 1] on its own
    channel; after a delimiter, output the `outputs` highest-priority vectors, highest first.
    Asked for another number of vectors, the task keeps the same fraction (16 of 20)."""

    name: ClassVar[str] = "priority-sort"
    size_name: ClassVar[str] = "vectors"
    bits: int = 8  # §4.5 does not give the width; copy's 8 bits
    vectors: int = 20  # §4.5: "a sequence of 20 random binary vectors"
    outputs: int = 16  # §4.5: "the 16 highest-priority vectors"

    input_size = property(lambda self: self.bits + 2)  # bits, priority, delimiter
    output_size = property(lambda self: self.bits)
    training_sizes = property(lambda self: (self.vectors, self.vectors))

    def kept(self, size: int) -> int:
        return max(1, round(size * self.outputs / self.vectors))

    def make(self, size: int, batch_size: int, generator: torch.Generator, **options: Any) -> SequenceBatch:
        kept = self.kept(size)
        vectors = random_bits((batch_size, size, self.bits), generator)  # (B, T_in, O)
        priority = torch.rand(batch_size, size, generator=generator) * 2 - 1  # (B, T_in) uniform in [-1, 1]
        inputs = vectors.new_zeros(batch_size, size + 1 + kept, self.input_size)  # (B, T, I)
        inputs[:, :size, : self.bits] = vectors
        inputs[:, :size, self.bits] = priority
        inputs[:, size, self.bits + 1] = 1.0  # delimiter
        order = priority.argsort(dim=1, descending=True)[:, :kept]  # (B, T_out)
        targets = vectors.gather(1, order[:, :, None].expand(-1, -1, self.bits))  # (B, T_out, O)
        return SequenceBatch(inputs, targets)


TASKS: dict[str, type[Task]] = {t.name: t for t in (CopyTask, RepeatCopyTask, AssociativeRecallTask, PrioritySortTask)}


def task_from_dict(data: dict[str, Any]) -> Task:
    """Rebuild a task from `Task.to_dict()` (a saved NTM's config.json info)."""
    from memqa.config import from_dict

    fields = dict(data)
    name = fields.pop("name", None)
    if name not in TASKS:
        raise ConfigError(f"unknown algorithmic task {name!r}; choose one of {', '.join(TASKS)}")
    return from_dict(TASKS[name], fields, where=f"task {name}")


def make_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"unknown algorithmic task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]()


class TaskStream:
    """`sequences` fresh random sequences per epoch, in batches: the trainer's training data."""

    def __init__(self, task: Task, sequences: int):
        self.task, self.sequences = task, sequences

    def __len__(self) -> int:
        return self.sequences

    def batches(self, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[SequenceBatch]:
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        for start in range(0, self.sequences, batch_size):
            yield self.task.sample(min(batch_size, self.sequences - start), generator)


class FixedSequences:
    """A fixed list of batches (validation or test data); `batches` yields them as they are."""

    def __init__(self, batches: list[SequenceBatch]):
        self.stored = batches

    @classmethod
    def drawn(cls, task: Task, batches: int, batch_size: int, seed: int, *, sizes: tuple[int, int] | None = None,
              repeats: tuple[int, int] | None = None, **size: Any) -> "FixedSequences":
        """`batches` batches; each of one size, drawn uniformly from `sizes` (low, high), by default the
        training range (or as `size` gives it); repeat copy's repeat count likewise from `repeats`."""
        generator = torch.Generator().manual_seed(seed)

        def batch() -> SequenceBatch:
            # Without `repeats`, the draws are the ones made before that option existed (runs keep their validation).
            length = None if sizes is None else uniform_int(*sizes, generator)
            count = {} if repeats is None else {"repeats": uniform_int(*repeats, generator)}
            return task.sample(batch_size, generator, length, **size, **count)

        return cls([batch() for _ in range(batches)])

    def __len__(self) -> int:
        return sum(batch.inputs.shape[0] for batch in self.stored)

    def batches(self, batch_size: int = 0, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[SequenceBatch]:
        yield from self.stored
