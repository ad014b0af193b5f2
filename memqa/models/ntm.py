"""The Neural Turing Machine on sequences of bit vectors: the paper's algorithmic tasks
(Graves, Wayne, Danihelka 2014 §4).

The cell (memqa/nn/ntm.py) runs over every input step; the outputs of the last T_out steps are
the answer. The model keeps the trainer's contract (loss, count_correct, optimiser, clipping),
so `memqa.train.train_model` trains it like any reader; it reads no words, so a saved NTM has
no vocab.json and answers no bAbI questions (the bAbI NTM reader is a separate model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from memqa.config import NTMConfig, TrainConfig
from memqa.data.babi import Example
from memqa.data.vocab import Vocab
from memqa.errors import ConfigError
from memqa.models.base import ReaderModel
from memqa.nn.ntm import NTMCell, NTMState
from memqa.tasks.algorithmic import SequenceBatch, sequence_loss, sequence_scores


class NTMTrace(NamedTuple):
    """What happened at each of the T steps, for pictures like the paper's Figure 6:
    output_logits (B, T, O), read_weightings (B, T, Hr, N), write_weightings (B, T, Hw, N)."""

    output_logits: Tensor
    read_weightings: Tensor
    write_weightings: Tensor


class SequenceOutput(NamedTuple):
    """logits (B, T_out, O): the answer steps' outputs before the sigmoid; trace when asked for."""

    logits: Tensor
    trace: NTMTrace | None = None


class NTMSequenceModel(ReaderModel):
    kind = "ntm-sequence"
    config_class = NTMConfig
    uses_vocab = False

    @classmethod
    def check_training_data(cls, examples: Sequence[Example]) -> None:
        raise ConfigError(f"the {cls.kind} model learns the NTM's algorithmic tasks, not bAbI stories: "
                          "train it with --reader ntm --task copy (or repeat-copy, associative-recall, priority-sort)")

    def __init__(self, config: NTMConfig, vocab: Vocab | None = None):
        super().__init__()
        self.config = config
        self.cell = NTMCell(config)

    def forward(self, batch: SequenceBatch, trace: bool = False) -> SequenceOutput:
        """batch.inputs (B, T, I), batch.targets (B, T_out, O) -> logits (B, T_out, O)."""
        inputs, answer_steps = batch.inputs, batch.targets.shape[1]
        state = self.cell.initial_state(inputs[:, 0])
        outputs, states = [], []
        for step in range(inputs.shape[1]):
            output, state = self.cell.step(inputs[:, step], state)  # (B, O)
            outputs.append(output)
            if trace:
                states.append(state)
        all_logits = torch.stack(outputs, dim=1)  # (B, T, O)
        return SequenceOutput(all_logits[:, -answer_steps:], self._trace(all_logits, states) if trace else None)

    @staticmethod
    def _trace(all_logits: Tensor, states: list[NTMState]) -> NTMTrace:
        reads = torch.stack([s.read_weightings for s in states], dim=1)  # (B, T, Hr, N)
        writes = torch.stack([s.write_weightings for s in states], dim=1)  # (B, T, Hw, N)
        return NTMTrace(all_logits, reads, writes)

    def loss(self, batch: SequenceBatch, output: SequenceOutput) -> Tensor:
        """Binary cross-entropy (nats) summed over bits, steps and the batch (§4)."""
        return sequence_loss(output.logits, batch.targets)

    def count_correct(self, batch: SequenceBatch, output: SequenceOutput) -> int:
        """Sequences with no bit error: the accuracy by which the trainer keeps the best weights."""
        return int((sequence_scores(output.logits, batch.targets).bit_errors == 0).sum())

    def make_optimizer(self, learning_rate: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
        """RMSProp with momentum 0.9 (§4; Graves 2013 eqs. 38-41: decay ℵ = 0.95)."""
        return torch.optim.RMSprop(self.parameters(), lr=learning_rate, alpha=self.config.rmsprop_alpha,
                                   momentum=self.config.momentum, weight_decay=weight_decay)

    def clip_gradients(self, train: TrainConfig) -> None:
        """Every gradient element clipped to (-10, 10) (§4); train.max_grad_norm is not used."""
        torch.nn.utils.clip_grad_value_(self.parameters(), self.config.gradient_clip)
