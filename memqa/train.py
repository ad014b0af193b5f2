"""The one training loop: any reader, any phase schedule, best epoch kept by validation.

The reader supplies its loss and its phases (MemN2N: linear start, then the annealed
schedule); the loop does SGD on mini-batches with gradient-norm clipping (§4.2), validates
after every epoch and keeps the weights of the best validation accuracy among the epochs of
the last phase (earlier phases, such as linear start, train a different model form). Ctrl-C or a NaN loss
stops training and keeps the best weights so far.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from memqa.config import TrainConfig
from memqa.data.babi import Example
from memqa.data.batching import EncodedSet, MemqaWarning, encode_examples, split_train_valid
from memqa.data.vocab import Vocab
from memqa.errors import DataError
from memqa.models.base import Phase, ReaderModel
from memqa.models.registry import build_model


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # counted from 1 across all phases
    phase: str
    learning_rate: float
    train_loss: float  # mean per question
    train_accuracy: float
    valid_loss: float
    valid_accuracy: float


@dataclass
class TrainResult:
    """What one training run produced; `model` holds the best epoch's weights."""

    model: ReaderModel
    vocab: Vocab
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    seed: int = 0
    stopped: str | None = None  # "interrupted" (Ctrl-C) or "diverged" (NaN loss); None when complete
    seconds: float = 0.0

    @property
    def best(self) -> EpochRecord | None:
        return next((r for r in self.history if r.epoch == self.best_epoch), None)

    @property
    def valid_accuracy(self) -> float:
        return self.best.valid_accuracy if self.best else 0.0

    @property
    def selection_key(self) -> tuple[float, float]:
        """Runs and epochs are ranked by validation accuracy, then by lower validation loss."""
        return (self.best.valid_accuracy, -self.best.valid_loss) if self.best else (-1.0, -math.inf)


EpochCallback = Callable[[int, EpochRecord, int], None]  # (repeat, record, total epochs)


@torch.no_grad()
def evaluate_set(model: ReaderModel, data: EncodedSet, batch_size: int = 1024,
                 device: torch.device | str = "cpu") -> tuple[float, float]:
    """(mean loss per question, accuracy) of `model` on `data`, in eval mode."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for batch in data.batches(batch_size):
        batch = batch.to(device)
        output = model(batch)
        total_loss += float(model.loss(batch, output))
        correct += int((output.logits.argmax(dim=1) == batch.answer_ids).sum())
    model.train(was_training)
    return total_loss / len(data), correct / len(data)


def train_model(model: ReaderModel, train_set: EncodedSet, valid_set: EncodedSet, config: TrainConfig, *,
                vocab: Vocab, seed: int = 0, device: str | torch.device = "cpu",
                on_epoch: Callable[[EpochRecord, int], None] | None = None) -> TrainResult:
    """Train `model` through its phases; returns it holding its best weights by validation."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    phases = model.phases(config)
    total_epochs = sum(p.epochs for p in phases)
    result = TrainResult(model, vocab, seed=seed)
    best_key, best_state = (-1.0, -math.inf), copy.deepcopy(model.state_dict())
    try:
        epoch = 0
        for phase in phases:
            model.enter_phase(phase)
            optimizer = torch.optim.SGD(model.parameters(), lr=phase.learning_rate)
            for phase_epoch in range(phase.epochs):
                epoch += 1
                lr = _learning_rate(phase, phase_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                train_loss, train_accuracy = _train_epoch(model, train_set, optimizer, config, generator, device)
                # The last step of an epoch can blow the weights up after a finite training loss:
                # a NaN validation loss is divergence too, and those weights must never be kept.
                valid_loss, valid_accuracy = (evaluate_set(model, valid_set, device=device)
                                              if math.isfinite(train_loss) else (math.nan, 0.0))
                if not (math.isfinite(train_loss) and math.isfinite(valid_loss)):
                    result.stopped = "diverged"
                    return result
                record = EpochRecord(epoch, phase.name, lr, train_loss, train_accuracy, valid_loss, valid_accuracy)
                result.history.append(record)
                # Only the last phase trains the reader as it will be used (linear start has no softmax).
                if phase is phases[-1] and (valid_accuracy, -valid_loss) > best_key:
                    best_key, best_state, result.best_epoch = (valid_accuracy, -valid_loss), copy.deepcopy(model.state_dict()), epoch
                if on_epoch:
                    on_epoch(record, total_epochs)
    except KeyboardInterrupt:
        result.stopped = "interrupted"
    finally:
        model.load_state_dict(best_state)
        model.enter_phase(phases[-1])
        model.eval()
        result.seconds = time.perf_counter() - started
    return result


def _learning_rate(phase: Phase, phase_epoch: int) -> float:
    return phase.learning_rate * phase.decay_factor ** (phase_epoch // phase.decay_every)


def _train_epoch(model: ReaderModel, data: EncodedSet, optimizer: torch.optim.Optimizer, config: TrainConfig,
                 generator: torch.Generator, device) -> tuple[float, float]:
    model.train()
    total_loss, correct = 0.0, 0
    for batch in data.batches(config.batch_size, shuffle=True, generator=generator):
        batch = batch.to(device)
        output = model(batch)
        loss = model.loss(batch, output)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        total_loss += loss.item()
        correct += int((output.logits.argmax(dim=1) == batch.answer_ids).sum())
    return total_loss / len(data), correct / len(data)


def fit(kind: str, model_config, config: TrainConfig, examples: Sequence[Example], *,
        device: str | torch.device = "cpu", on_epoch: EpochCallback | None = None,
        on_repeat_done: Callable[[int, TrainResult], None] | None = None) -> TrainResult:
    """Split `examples` 90/10 (seeded), train `config.repeats` runs with seeds seed, seed+1, ...
    and return the run with the best validation accuracy."""
    train_examples, valid_examples = split_train_valid(examples, config.valid_fraction, config.seed)
    if not train_examples or not valid_examples:
        raise DataError("need at least 2 questions to train (one goes to the validation split)")
    vocab = Vocab.build(examples)
    memory_size = model_config.encoder.memory_size
    train_set = encode_examples(train_examples, vocab, memory_size)
    valid_set = encode_examples(valid_examples, vocab, memory_size)
    truncated = train_set.truncated_stories + valid_set.truncated_stories
    if truncated:
        warnings.warn(f"{truncated} of {len(examples)} questions have stories longer than the memory "
                      f"({memory_size} sentences); they keep the most recent sentences", MemqaWarning, stacklevel=2)
    best: TrainResult | None = None
    for repeat in range(config.repeats):
        seed = config.seed + repeat
        torch.manual_seed(seed)
        model = build_model(kind, model_config, vocab)
        callback = (lambda record, total, r=repeat: on_epoch(r, record, total)) if on_epoch else None
        result = train_model(model, train_set, valid_set, config, vocab=vocab, seed=seed, device=device,
                             on_epoch=callback)
        if on_repeat_done:
            on_repeat_done(repeat, result)
        if best is None or result.selection_key > best.selection_key:
            best = result
        if result.stopped == "interrupted":
            break
    assert best is not None
    return best
