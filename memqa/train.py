"""The one training loop: any reader, any phase schedule, best epoch kept by validation.

The reader supplies its loss, its phases (MemN2N: linear start, then the annealed schedule), its
optimiser and gradient clipping (SGD and ℓ2-norm clipping, §4.2, for the bAbI readers) and what counts
as a correct example; the loop steps through mini-batches of any TrainingData (bAbI questions, or an
algorithmic task's fresh sequences for the NTM), validates
after every epoch and keeps the weights of the best validation accuracy among the epochs of
the last phase (earlier phases, such as linear start, train a different model form); without a validation
set (TrainConfig.valid_fraction = 0, a refit on every question) it keeps the last epoch's. Ctrl-C or divergence
(a NaN loss, or a mean loss DIVERGENCE_FACTOR times the untrained reader's) stops training and keeps the
best weights so far. Given a Checkpointer (memqa/training_state.py; memqa/resume.py writes files), the loop saves its whole state
after every epoch and goes on from a saved state, so a stopped run resumed ends bit-identical to one never
stopped; the loop never asks which reader it trains.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from memqa.config import TrainConfig
from memqa.data.babi import Example
from memqa.data.batching import MemqaWarning, encode_examples, split_train_valid
from memqa.data.vocab import Vocab
from memqa.errors import CheckpointError, DataError
from memqa.models.base import Optimizer, Phase, ReaderModel
from memqa.models.registry import build_model, reader_class
from memqa.training_state import Checkpointer, TrainingState, capture_rng, restore_rng


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
    vocab: Vocab | None  # None for models that read no words (the NTM on algorithmic tasks)
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    seed: int = 0
    stopped: str | None = None  # "interrupted" (Ctrl-C) or "diverged" (see _divergence); None when complete
    seconds: float = 0.0  # over all sessions of a resumed run
    stop_detail: str = ""  # when diverged: the epoch, its learning rate and what blew up

    @property
    def best(self) -> EpochRecord | None:
        return next((r for r in self.history if r.epoch == self.best_epoch), None)

    @property
    def valid_accuracy(self) -> float:
        return self.best.valid_accuracy if self.best else 0.0

    @property
    def validated(self) -> bool:
        """False for a run trained without a validation split (TrainConfig.valid_fraction = 0)."""
        return self.best is not None and not math.isnan(self.best.valid_accuracy)

    @property
    def selection_key(self) -> tuple[float, float]:
        """Runs are ranked by their best epoch's ranking_key."""
        return ranking_key(self.best) if self.best else (-1.0, -math.inf)


def ranking_key(record: EpochRecord) -> tuple[float, float]:
    """Epochs and runs are ranked by validation accuracy, then by lower validation loss; without validation
    (NaN) by training accuracy, then lower training loss (the paper's rule, §4.2)."""
    if math.isnan(record.valid_accuracy):
        return (record.train_accuracy, -record.train_loss)
    return (record.valid_accuracy, -record.valid_loss)


EpochCallback = Callable[[int, EpochRecord, int], None]  # (repeat, record, total epochs)

# Judgement call, no paper defines it: a mean loss 100x the untrained reader's has blown up. With gradient
# clipping a learning rate 100x too high keeps the loss finite but takes it there within a few epochs.
DIVERGENCE_FACTOR = 100.0


class TrainingData(Protocol):
    """What the loop trains and validates on: bAbI's EncodedSet, or an NTM task's stream of fresh
    sequences (memqa.tasks.algorithmic.TaskStream). `len` counts the examples of one epoch."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[Any]: ...


@torch.no_grad()
def evaluate_set(model: ReaderModel, data: TrainingData, batch_size: int = 1024,
                 device: torch.device | str = "cpu") -> tuple[float, float]:
    """(mean loss per example, accuracy) of `model` on `data`, in eval mode."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for batch in data.batches(batch_size):
        batch = batch.to(device)
        output = model(batch)
        total_loss += float(model.loss(batch, output))
        correct += model.count_correct(batch, output)
    model.train(was_training)
    return total_loss / len(data), correct / len(data)


def train_model(model: ReaderModel, train_set: TrainingData, valid_set: TrainingData | None, config: TrainConfig, *,
                vocab: Vocab | None, seed: int = 0, device: str | torch.device = "cpu",
                on_epoch: Callable[[EpochRecord, int], None] | None = None,
                checkpoint: Checkpointer | None = None) -> TrainResult:
    """Train `model` through its phases; returns it holding its best weights by validation (with
    `valid_set` None: its last epoch's, and every validation number is NaN).
    With `checkpoint`: go on from the state it holds, and save the state after every epoch."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    phases = model.phases(config)
    schedule = [(phase, phase_epoch) for phase in phases for phase_epoch in range(phase.epochs)]
    result = TrainResult(model, vocab, seed=seed)
    state = checkpoint.load(model) if checkpoint else None
    if state:
        _restore(state, schedule, model, generator, result, checkpoint)
    else:
        model.enter_phase(phases[-1])  # the baseline is the loss of the reader's final form
        state = TrainingState(0, {}, {}, copy.deepcopy(model.state_dict()), (-1.0, -math.inf), 0, [], {},
                              evaluate_set(model, train_set if valid_set is None else valid_set, device=device)[0], 0.0)
    optimizer = None
    try:
        for epoch in range(state.epoch + 1, len(schedule) + 1):
            phase, phase_epoch = schedule[epoch - 1]
            if optimizer is None or phase_epoch == 0:
                model.enter_phase(phase)
                optimizer = model.make_optimizer(phase.learning_rate, config.weight_decay)
                if phase_epoch > 0:  # resumed mid-phase: the saved optimizer goes on
                    optimizer.load_state_dict(state.optimizer)
            lr = _learning_rate(phase, phase_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loss, train_accuracy = _train_epoch(model, train_set, optimizer, config, generator, device)
            # The last step of an epoch can blow the weights up after a finite training loss:
            # a NaN validation loss is divergence too, and those weights must never be kept.
            if valid_set is None:  # no validation split (TrainConfig.valid_fraction = 0)
                valid_loss = valid_accuracy = math.nan
            elif math.isfinite(train_loss):
                valid_loss, valid_accuracy = evaluate_set(model, valid_set, device=device)
            else:
                valid_loss, valid_accuracy = math.nan, 0.0
            # Earlier phases train another model form (linear start), whose loss can spike and recover.
            problem = _divergence(train_loss, None if valid_set is None else valid_loss,
                                  state.baseline_loss if phase is phases[-1] else None)
            if problem:
                result.stopped, result.stop_detail = "diverged", f"epoch {epoch} (learning rate {lr:g}): {problem}"
                return result
            record = EpochRecord(epoch, phase.name, lr, train_loss, train_accuracy, valid_loss, valid_accuracy)
            result.history.append(record)
            # Only the last phase trains the reader as it will be used (linear start has no softmax).
            key = ranking_key(record)
            if phase is phases[-1] and (valid_set is None or key > state.best_key):
                state.best_key, state.best, result.best_epoch = key, copy.deepcopy(model.state_dict()), epoch
            if on_epoch:  # before the save: what it records of this epoch is redone if the save never happens
                on_epoch(record, len(schedule))
            if checkpoint:
                checkpoint.save(TrainingState(
                    epoch, model.state_dict(), optimizer.state_dict(), state.best, state.best_key, result.best_epoch,
                    result.history, capture_rng(generator), state.baseline_loss,
                    state.seconds + time.perf_counter() - started))
    except KeyboardInterrupt:
        result.stopped = "interrupted"
    finally:
        model.load_state_dict(state.best)
        model.enter_phase(phases[-1])
        model.eval()
        result.seconds = state.seconds + time.perf_counter() - started
    return result


def _restore(state: TrainingState, schedule: list[tuple[Phase, int]], model: ReaderModel,
             generator: torch.Generator, result: TrainResult, where: Checkpointer) -> None:
    """Put a saved state back (checked against this run's schedule first)."""
    epochs = [(record.epoch, record.phase) for record in state.history]
    if state.epoch > len(schedule) or epochs != [(e, schedule[e - 1][0].name) for e in range(1, state.epoch + 1)]:
        raise CheckpointError(f"{where}: its {state.epoch} epochs do not follow this run's schedule of "
                              f"{len(schedule)}; the run's settings changed since the state was saved")
    model.load_state_dict(state.model)
    restore_rng(generator, state.rng)
    result.history[:] = state.history
    result.best_epoch = state.best_epoch


def _divergence(train_loss: float, valid_loss: float | None, baseline_loss: float | None) -> str | None:
    """Why training diverged, or None: a NaN or infinite loss (valid_loss None: not validated), or (given
    a baseline) a mean training loss over DIVERGENCE_FACTOR x the untrained reader's (x 1.0 at least)."""
    if not math.isfinite(train_loss):
        return "the training loss became NaN or infinite"
    if valid_loss is not None and not math.isfinite(valid_loss):
        return "the validation loss became NaN or infinite"
    if baseline_loss is not None and train_loss > DIVERGENCE_FACTOR * max(baseline_loss, 1.0):
        return (f"the mean training loss {train_loss:.4g} is over {DIVERGENCE_FACTOR:g}x the untrained "
                f"reader's {baseline_loss:.3g}")
    return None


def _learning_rate(phase: Phase, phase_epoch: int) -> float:
    return phase.learning_rate * phase.decay_factor ** (phase_epoch // phase.decay_every)


def _train_epoch(model: ReaderModel, data: TrainingData, optimizer: Optimizer, config: TrainConfig,
                 generator: torch.Generator, device) -> tuple[float, float]:
    model.train()
    total_loss, correct = 0.0, 0
    by_length = {"length_buckets": config.length_buckets} if config.length_buckets else {}  # bAbI sets only
    for batch in data.batches(config.batch_size, shuffle=True, generator=generator, **by_length):
        batch = batch.to(device)
        output = model(batch)
        loss = model.loss(batch, output)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        model.clip_gradients(config)
        optimizer.step()
        total_loss += loss.item()
        correct += model.count_correct(batch, output)
    return total_loss / len(data), correct / len(data)


def fit(kind: str, model_config, config: TrainConfig, examples: Sequence[Example], *,
        device: str | torch.device = "cpu", on_epoch: EpochCallback | None = None,
        on_repeat_done: Callable[[int, TrainResult], None] | None = None,
        checkpoints: Callable[[int], Checkpointer] | None = None,
        split: tuple[Sequence[Example], Sequence[Example]] | None = None) -> TrainResult:
    """Split `examples` 90/10 (seeded), train `config.repeats` runs with seeds seed, seed+1, ...
    and return the run with the best validation accuracy. With `config.valid_fraction` 0 every example
    is trained on and the run with the lowest training error at its last epoch is returned (§4.2).
    `checkpoints(repeat)` makes each run resumable.
    `split` (train, validation), e.g. a fold of `story_folds(examples, ...)`, replaces the seeded split;
    the vocabulary and the memory size still come from all of `examples`."""
    reader_class(kind).check_training_data(examples)  # e.g. MemNN needs supporting facts
    validate = split is not None or config.valid_fraction > 0
    if split is not None:
        train_examples, valid_examples = split
    elif validate:
        train_examples, valid_examples = split_train_valid(examples, config.valid_fraction, config.seed)
    else:
        train_examples, valid_examples = list(examples), []
    if not train_examples or (validate and not valid_examples):
        raise DataError("need at least 2 questions to train (one goes to the validation split)")
    vocab = Vocab.build(examples)
    model_config = fit_memory_to_stories(model_config, examples)
    memory_size = model_config.encoder.memory_size
    train_set = encode_examples(train_examples, vocab, memory_size)
    valid_set = encode_examples(valid_examples, vocab, memory_size) if validate else None
    truncated = train_set.truncated_stories + (valid_set.truncated_stories if valid_set is not None else 0)
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
                             on_epoch=callback, checkpoint=checkpoints(repeat) if checkpoints else None)
        if on_repeat_done:
            on_repeat_done(repeat, result)
        if best is None or result.selection_key > best.selection_key:
            best = result
        if result.stopped == "interrupted":
            best.stopped = "interrupted"  # even when an earlier, finished run is the best: the fit is unfinished
            break
    assert best is not None
    return best


def fit_memory_to_stories(model_config, examples: Sequence[Example]):
    """A memory of min(memory_size, longest training story) slots, as the authors' code sizes it
    (config_babi.m: sz = min(50, story length)); empty slots take part in MemN2N's softmax, so a
    memory far larger than any story would drown short stories' facts in null slots."""
    longest = max(len(example.story) for example in examples)
    encoder = model_config.encoder
    if longest >= encoder.memory_size:
        return model_config
    return dataclasses.replace(model_config, encoder=dataclasses.replace(encoder, memory_size=longest))
