"""The contract every reader keeps, so training, evaluation and `Reader.answer` never ask
which reader they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from torch import Tensor, nn

from memqa.config import TrainConfig
from memqa.data.batching import Batch


class ReaderOutput(NamedTuple):
    """logits: (B, A) answer scores before softmax. attention: (B, K, S) weight of each memory
    slot at each hop (one-hot for MemNN, softmax for MemN2N), or None."""

    logits: Tensor
    attention: Tensor | None


@dataclass(frozen=True)
class Phase:
    """A stretch of training with its own schedule: `epochs` epochs starting at `learning_rate`,
    multiplied by `decay_factor` every `decay_every` epochs. `name` is shown in progress output."""

    name: str
    epochs: int
    learning_rate: float
    decay_every: int
    decay_factor: float


class ReaderModel(nn.Module):
    """Base class of the readers. Subclasses set `kind` and `config_class`."""

    kind: ClassVar[str]
    config_class: ClassVar[type]

    def forward(self, batch: Batch) -> ReaderOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, batch: Batch, output: ReaderOutput) -> Tensor:  # pragma: no cover - abstract
        """The reader's training objective, summed over the batch."""
        raise NotImplementedError

    def phases(self, train: TrainConfig) -> list[Phase]:
        """The training schedule; by default one phase of `train.epochs`."""
        return [Phase("train", train.epochs, train.learning_rate, train.decay_every, train.decay_factor)]

    def enter_phase(self, phase: Phase) -> None:
        """Called by the trainer before each phase starts (e.g. linear start removes the softmax)."""
