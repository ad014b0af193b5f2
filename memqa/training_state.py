"""What train_model keeps between sessions, so that a stopped run, resumed, ends bit-identical to one
never stopped: TrainingState, the Checkpointer protocol that stores it (memqa.resume.StateStore keeps
it in files) and the random states training draws from."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from memqa.models.base import ReaderModel
    from memqa.train import EpochRecord


@dataclass
class TrainingState:
    """Everything train_model needs to go on after `epoch` exactly as if it had never stopped."""

    epoch: int  # epochs finished, counted from 1 across all phases
    model: dict[str, Tensor]  # the weights after that epoch
    optimizer: dict[str, Any]  # the current phase's optimizer.state_dict()
    best: dict[str, Tensor]  # weights of the best epoch so far (the initial weights before one)
    best_key: tuple[float, float]  # (valid accuracy, -valid loss) of the best epoch
    best_epoch: int
    history: list[EpochRecord]
    rng: dict[str, Any]  # capture_rng(): the shuffling generator, torch CPU/CUDA, python and numpy states
    baseline_loss: float  # the untrained reader's mean validation loss, the yardstick of divergence
    seconds: float  # training time over all sessions so far


class Checkpointer(Protocol):
    """Keeps train_model's state between sessions. `load` checks the state against `model` whole
    before returning it (nothing is applied half-way); `save` has written it when it returns."""

    def load(self, model: ReaderModel) -> TrainingState | None: ...

    def save(self, state: TrainingState) -> None: ...


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """Every random state training draws from: the batch-shuffling generator, torch's global
    generators (random noise), python's and numpy's (unused by memqa's readers, cheap to keep)."""
    return {"shuffle": generator.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "python": random.getstate(), "numpy": np.random.get_state()}


def restore_rng(generator: torch.Generator, states: dict[str, Any]) -> None:
    generator.set_state(states["shuffle"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
