"""The contract every reader keeps, so training, evaluation and `Reader.answer` never ask
which reader they hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

import torch
from torch import Tensor, nn

from memqa.config import TrainConfig
from memqa.data.babi import Example
from memqa.data.batching import Batch
from memqa.data.vocab import UnknownPolicy


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


class Optimizer(Protocol):
    """What the training loop asks of an optimiser (torch.optim's optimisers and PlainSGD have it)."""

    param_groups: list[dict[str, Any]]

    def zero_grad(self, set_to_none: bool = True) -> None: ...

    def step(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class OneGroupOptimizer:
    """What memqa's own optimisers share: one parameter group, gradients dropped by zero_grad, and weight
    decay added to the gradient (as torch.optim does) before the update rule of the subclass."""

    param_groups: list[dict[str, Any]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.param_groups[0]["params"]:
            param.grad = None

    @staticmethod
    def decayed_gradient(param: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        return param.grad.add(param, alpha=group["weight_decay"]) if group["weight_decay"] else param.grad


class PlainSGD(OneGroupOptimizer):
    """Stochastic gradient descent as the paper runs it (Sukhbaatar et al. 2015 §4.2): w <- w - lr * grad,
    no momentum, weight decay only when asked for; the same arithmetic as torch.optim.SGD, and its state_dict layout
    (saved training states load either way). Not torch.optim: an optimiser from there imports
    torch._dynamo the first time it is used, about a second at the start of every training process."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        self.param_groups = [{"params": list(params), "lr": lr, "weight_decay": weight_decay}]

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        for param in group["params"]:
            if param.grad is not None:
                param.add_(self.decayed_gradient(param, group), alpha=-group["lr"])

    def state_dict(self) -> dict[str, Any]:
        group = self.param_groups[0]
        return {"state": {}, "param_groups": [{
            "lr": group["lr"], "momentum": 0, "dampening": 0, "weight_decay": group["weight_decay"], "nesterov": False,
            "maximize": False, "foreach": None, "differentiable": False, "fused": None,
            "params": list(range(len(group["params"])))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        (group,) = state_dict["param_groups"]
        if len(group["params"]) != len(self.param_groups[0]["params"]) or state_dict.get("state"):
            raise ValueError("the saved optimizer state is not plain SGD over these parameters")
        self.param_groups[0]["lr"] = group["lr"]


class ReaderModel(nn.Module):
    """Base class of the readers. Subclasses set `kind` and `config_class`.

    The trainer uses only `loss`, `count_correct`, `phases`, `enter_phase`, `make_optimizer`
    and `clip_gradients`, so a model of other data that keeps them trains with the same loop
    (the NTM on the algorithmic tasks: memqa/models/ntm.py)."""

    kind: ClassVar[str]
    config_class: ClassVar[type]
    uses_vocab: ClassVar[bool] = True  # False: the model reads no words (no vocab.json is saved)
    hard_attention: ClassVar[bool] = False  # True: attention is one-hot, the memories picked (MemNN)
    attention_rest: ClassVar[str] = "empty memory slots"  # what the attention not on a sentence rests on
    # How the reader takes words it never saw in training (memqa.data.vocab): "ignore" drops them;
    # "keep" gives them ids past the vocabulary, which the reader represents otherwise (MemNN).
    unknown_words: ClassVar[UnknownPolicy] = "ignore"

    @classmethod
    def check_training_data(cls, examples: Sequence[Example]) -> None:
        """Raise a MemqaError before training when `examples` lack what this reader needs to learn
        from (MemNN: supporting facts). By default any bAbI-format data will do."""

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

    def count_correct(self, batch: Batch, output: ReaderOutput) -> int:
        """How many examples of the batch the output gets right (the trainer's accuracy)."""
        return int((output.logits.argmax(dim=1) == batch.answer_ids).sum())

    def make_optimizer(self, learning_rate: float, weight_decay: float = 0.0) -> Optimizer:
        """The optimiser of each phase: plain SGD, no momentum (Sukhbaatar et al. 2015 §4.2)."""
        return PlainSGD(self.parameters(), lr=learning_rate, weight_decay=weight_decay)

    def clip_gradients(self, train: TrainConfig) -> None:
        """Called before every step: rescale the gradients to ℓ2 norm ≤ max_grad_norm (§4.2)."""
        clip_grad_norm(self.parameters(), train.max_grad_norm)


@torch.no_grad()
def clip_grad_norm(parameters, max_norm: float) -> Tensor:
    """torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=True), number for number, without its
    per-call grouping of the tensors by device and dtype, and skipping the multiplication by 1 when the
    norm is within max_norm. Returns the total ℓ2 norm of the gradients."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        torch._foreach_mul_(grads, scale)
    return total
