"""The Neural Turing Machine on sequences of bit vectors: the paper's algorithmic tasks
(Graves, Wayne, Danihelka 2014 §4).

The cell (memqa/nn/ntm.py) runs over every input step; the outputs of the last T_out steps are
the answer. The model keeps the trainer's contract (loss, count_correct, optimiser, clipping),
so `memqa.train.train_model` trains it like any reader; it reads no words, so a saved NTM has
no vocab.json and answers no bAbI questions (the bAbI NTM reader is a separate model).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from memqa.config import LSTMBaselineConfig, NTMConfig, TrainConfig
from memqa.data.babi import Example
from memqa.data.vocab import Vocab
from memqa.errors import ConfigError
from memqa.models.base import OneGroupOptimizer, Optimizer, ReaderModel
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


class BitSequenceModel(ReaderModel):
    """What the models of the algorithmic tasks share: they read bit vectors, not words, and train with the
    paper's objective (bits of cross-entropy), optimiser (RMSProp with momentum) and element-wise clipping (§4).
    `config` is an NTMConfig or an LSTMBaselineConfig (momentum, rmsprop_alpha, optimizer, gradient_clip)."""

    uses_vocab = False
    label: ClassVar[str]  # what tables and pictures call it: "NTM", "LSTM baseline"
    config: NTMConfig | LSTMBaselineConfig

    @classmethod
    def check_training_data(cls, examples: Sequence[Example]) -> None:
        raise ConfigError(f"the {cls.kind} model learns the NTM's algorithmic tasks, not bAbI stories: "
                          "train it with --reader ntm (or lstm, the baseline) --task copy (or repeat-copy, associative-recall, "
                          "priority-sort)")

    def forward(self, batch: SequenceBatch, trace: bool = False) -> SequenceOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, batch: SequenceBatch, output: SequenceOutput) -> Tensor:
        """Binary cross-entropy (nats) summed over bits, steps and the batch (§4)."""
        return sequence_loss(output.logits, batch.targets)

    def count_correct(self, batch: SequenceBatch, output: SequenceOutput) -> int:
        """Sequences with no bit error: the accuracy by which the trainer keeps the best weights."""
        return int((sequence_scores(output.logits, batch.targets).bit_errors == 0).sum())

    def make_optimizer(self, learning_rate: float, weight_decay: float = 0.0) -> Optimizer:
        """RMSProp with momentum 0.9 (§4; Graves 2013 eqs. 38-41: decay ℵ = 0.95): torch's, or with
        config.optimizer = "graves" the centred form of Graves 2013 (GravesRMSProp); "adam" is torch's Adam,
        the optimiser of Collier & Beel's 2018 reimplementation (momentum and rmsprop_alpha do not apply)."""
        if self.config.optimizer == "adam":
            return torch.optim.Adam(self.parameters(), lr=learning_rate, weight_decay=weight_decay)
        if self.config.optimizer == "graves":
            return GravesRMSProp(self.parameters(), lr=learning_rate, alpha=self.config.rmsprop_alpha,
                                 momentum=self.config.momentum, weight_decay=weight_decay)
        return torch.optim.RMSprop(self.parameters(), lr=learning_rate, alpha=self.config.rmsprop_alpha,
                                   momentum=self.config.momentum, weight_decay=weight_decay)

    def clip_gradients(self, train: TrainConfig) -> None:
        """Every gradient element clipped to (-10, 10) (§4); train.max_grad_norm is not used."""
        torch.nn.utils.clip_grad_value_(self.parameters(), self.config.gradient_clip)


class NTMSequenceModel(BitSequenceModel):
    kind = "ntm-sequence"
    label = "NTM"
    config_class = NTMConfig

    def __init__(self, config: NTMConfig, vocab: Vocab | None = None):
        super().__init__()
        self.config = config
        self.cell = NTMCell(config)

    def compile_steps(self) -> None:
        """torch.compile the cell's step (`memqa train --compile`; NTMCell.compile_step)."""
        self.cell.compile_step()

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

    def with_memory_rows(self, rows: int) -> "NTMSequenceModel":
        """This NTM with a memory of `rows` rows (at least its own), to test it on sequences longer than its
        memory: a head that keeps moving while it answers comes back round N rows and overwrites what it
        stored (docs/ntm/copy.md). No weight depends on N but the learned initial state. The new rows go in
        after row N/2, where no trained head starts: each takes the mean initial memory of the middle half of
        the rows (the shared or constant row, when there is one) and each head's median initial weighting
        logit over rows 1..N-1 (the heads start focused on row 0)."""
        trained = self.config.memory_rows
        if rows < trained:
            raise ConfigError(f"a memory of {rows} rows: this NTM was trained with {trained}; give at least that many")
        state = self.state_dict()
        half, added = trained // 2, rows - trained
        logits = state["cell.initial_weighting_logits"]  # (Hr+Hw, N)
        fill = logits[:, 1:].median(dim=1, keepdim=True).values.expand(-1, added)  # (Hr+Hw, added)
        state["cell.initial_weighting_logits"] = torch.cat([logits[:, :half], fill, logits[:, half:]], dim=1)
        if self.config.initial_memory == "rows":
            memory = state["cell.initial_memory"]  # (N, M)
            middle = memory[trained // 4: 3 * trained // 4].mean(dim=0, keepdim=True).expand(added, -1)  # (added, M)
            state["cell.initial_memory"] = torch.cat([memory[:half], middle, memory[half:]])
        larger = NTMSequenceModel(dataclasses.replace(self.config, memory_rows=rows))
        larger.load_state_dict(state)
        return larger.to(logits.device).train(self.training)

    @staticmethod
    def _trace(all_logits: Tensor, states: list[NTMState]) -> NTMTrace:
        reads = torch.stack([s.read_weightings for s in states], dim=1)  # (B, T, Hr, N)
        writes = torch.stack([s.write_weightings for s in states], dim=1)  # (B, T, Hw, N)
        return NTMTrace(all_logits, reads, writes)


class LSTMSequenceModel(BitSequenceModel):
    """The paper's LSTM baseline (§4, Table 3): `layers` stacked LSTM layers of `hidden_size` units and a
    linear output layer, with no memory. Like the NTM it reads the whole input, one vector a step, and its
    outputs of the last T_out steps are the answer; its initial state is learned ("reset to learned bias
    values", §4). torch's LSTM layer: two bias vectors, no peepholes (the paper does not say which LSTM)."""

    kind = "lstm-sequence"
    label = "LSTM baseline"
    config_class = LSTMBaselineConfig

    def __init__(self, config: LSTMBaselineConfig, vocab: Vocab | None = None):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(config.input_size, config.hidden_size, num_layers=config.layers, batch_first=True)
        self.output_layer = nn.Linear(config.hidden_size, config.output_size)
        self.initial_hidden = nn.Parameter(torch.zeros(config.layers, 1, config.hidden_size))  # (L, 1, H)
        self.initial_cell = nn.Parameter(torch.zeros(config.layers, 1, config.hidden_size))  # (L, 1, H)

    def forward(self, batch: SequenceBatch, trace: bool = False) -> SequenceOutput:
        """batch.inputs (B, T, I), batch.targets (B, T_out, O) -> logits (B, T_out, O)."""
        if trace:
            raise ConfigError("the LSTM baseline has no memory and no heads to picture; "
                              "trace an NTM (--reader ntm) instead")
        inputs, answer_steps = batch.inputs, batch.targets.shape[1]
        start = tuple(s.expand(-1, inputs.shape[0], -1).contiguous() for s in (self.initial_hidden, self.initial_cell))
        features, _ = self.lstm(inputs, start)  # (B, T, H)
        return SequenceOutput(self.output_layer(features[:, -answer_steps:]))  # (B, T_out, O)


class GravesRMSProp(OneGroupOptimizer):
    """RMSProp as Graves 2013 (Generating Sequences With RNNs, eqs. 38-41) defines it, the form the
    NTM paper cites (§4). For each weight w with gradient ε:

        n ← ℵ n + (1 - ℵ) ε²                 (38)
        g ← ℵ g + (1 - ℵ) ε                  (39)
        Δ ← ℶ Δ - ℷ ε / sqrt(n - g² + ℸ)     (40)
        w ← w + Δ                            (41)

    with ℵ = alpha (0.95), ℶ = momentum (0.9), ℷ = lr and ℸ = epsilon (1e-4). Unlike torch.optim.RMSprop's
    default, the variance is centred (n - g²) and ℸ sits under the root: a weight whose gradient is tiny
    moves by at most ℷ ε / sqrt(ℸ). Keeps the Optimizer protocol of memqa.models.base."""

    def __init__(self, params, lr: float, alpha: float = 0.95, momentum: float = 0.9, epsilon: float = 1e-4,
                 weight_decay: float = 0.0):
        self.param_groups = [{"params": list(params), "lr": lr, "alpha": alpha, "momentum": momentum,
                              "epsilon": epsilon, "weight_decay": weight_decay}]
        self.state: dict[int, dict[str, Tensor]] = {}

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        alpha, momentum = group["alpha"], group["momentum"]
        for index, param in enumerate(group["params"]):
            if param.grad is None:
                continue
            grad = self.decayed_gradient(param, group)
            if index not in self.state:
                self.state[index] = {name: torch.zeros_like(param) for name in ("square_avg", "grad_avg", "delta")}
            state = self.state[index]
            state["square_avg"].mul_(alpha).addcmul_(grad, grad, value=1 - alpha)  # n (38)
            state["grad_avg"].mul_(alpha).add_(grad, alpha=1 - alpha)  # g (39)
            scale = (state["square_avg"] - state["grad_avg"].square() + group["epsilon"]).sqrt()
            state["delta"].mul_(momentum).addcdiv_(grad, scale, value=-group["lr"])  # Δ (40)
            param.add_(state["delta"])  # (41)

    def state_dict(self) -> dict[str, Any]:
        group = self.param_groups[0]
        return {"state": {index: dict(values) for index, values in self.state.items()},
                "param_groups": [{**{k: v for k, v in group.items() if k != "params"},
                                  "params": list(range(len(group["params"])))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        (group,) = state_dict["param_groups"]
        params = self.param_groups[0]["params"]
        if len(group["params"]) != len(params) or "epsilon" not in group:
            raise ValueError("the saved optimizer state is not GravesRMSProp over these parameters")
        self.param_groups[0].update({k: v for k, v in group.items() if k != "params"})
        self.state = {int(index): {name: value.clone() for name, value in values.items()}
                      for index, values in state_dict["state"].items()}
