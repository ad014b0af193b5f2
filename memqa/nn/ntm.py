"""The Neural Turing Machine cell (Graves, Wayne, Danihelka 2014 §3, Figure 1).

One `step(x, prev_state) -> (output_logits, next_state)`: the controller reads the input and
the previous read vectors, emits the parameters of every head (§3.3, Figure 2), the heads
address the previous memory, the read heads read it (§3.1) and the write heads erase and add
to it (§3.2). All state lives in `NTMState`, passed in and out, never kept on the module.
The initial state is learned (Collier & Beel 2018: initialisation decides convergence); the
memory starts as a small constant and every head's weighting starts focused on row 0.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memqa.config import NTMConfig
from memqa.errors import ConfigError
from memqa.nn.addressing import HeadParameters, address
from memqa.nn.memory import read, write

# The initial weighting of every head puts this much weight on row 0 (the rest spread evenly):
# a definite start for location-based addressing, which content addressing on a constant memory lacks.
INITIAL_FOCUS = 0.99


@functools.cache
def check_compile() -> None:
    """Raise a ConfigError before training when torch.compile cannot build kernels here (no C++ compiler, a
    platform Inductor does not support): `--compile` fails at once, not at the first training step."""
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(2))
    except Exception as error:  # Inductor raises many kinds; any of them means the same to the user
        detail = (str(error).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"--compile: torch.compile does not work here ({type(error).__name__}: {detail}); "
                          "train without --compile") from None


class NTMState(NamedTuple):
    """Everything a step hands to the next. Hr read heads, Hw write heads, L controller layers.
    memory (B, N, M); read_vectors (B, Hr, M); read_weightings (B, Hr, N); write_weightings (B, Hw, N);
    controller_hidden, controller_cell (L, B, C) (LSTM state; unused by a feed-forward controller)."""

    memory: Tensor
    read_vectors: Tensor
    read_weightings: Tensor
    write_weightings: Tensor
    controller_hidden: Tensor
    controller_cell: Tensor


class Controller(nn.Module):
    """An LSTM (Table 2) or feed-forward network (Table 1, tanh layers) of `layers` x `size` units. In training,
    Gaussian noise of standard deviation `noise` is added to every layer's output (NTMConfig.state_noise)."""

    def __init__(self, kind: str, input_size: int, size: int, layers: int, noise: float = 0.0):
        super().__init__()
        self.kind = kind
        self.noise = noise
        sizes = [input_size] + [size] * (layers - 1)
        if kind == "lstm":
            self.layers = nn.ModuleList(nn.LSTMCell(n, size) for n in sizes)
        else:
            self.layers = nn.ModuleList(nn.Linear(n, size) for n in sizes)

    def forward(self, x: Tensor, hidden: Tensor, cell: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, I'); hidden, cell: (L, B, C) -> features (B, C), next hidden and cell (L, B, C)."""
        if self.kind != "lstm":
            for layer in self.layers:
                x = self._perturb(torch.tanh(layer(x)))  # (B, C)
            return x, hidden, cell
        next_hidden, next_cell = [], []
        for layer, h, c in zip(self.layers, hidden, cell):
            x, c = layer(x, (h, c))  # (B, C), (B, C)
            x = self._perturb(x)
            next_hidden.append(x)
            next_cell.append(c)
        return x, torch.stack(next_hidden), torch.stack(next_cell)  # (B, C), (L, B, C), (L, B, C)

    def _perturb(self, x: Tensor) -> Tensor:
        """x (B, C) plus N(0, noise²) noise in training; x itself otherwise."""
        return x + self.noise * torch.randn_like(x) if self.training and self.noise else x


class NTMCell(nn.Module):
    """An NTM with `config.read_heads` read and `config.write_heads` write heads."""

    def __init__(self, config: NTMConfig):
        super().__init__()
        self.config = config
        rows, width, reads, writes = config.memory_rows, config.memory_width, config.read_heads, config.write_heads
        self.addressing_size = width + 3 + (2 * config.shift_range + 1)  # k, β, g, γ, s per head
        self.controller = Controller(config.controller, config.input_size + reads * width, config.controller_size,
                                     config.controller_layers, config.state_noise)
        self.head_layer = nn.Linear(config.controller_size,
                                    (reads + writes) * self.addressing_size + writes * 2 * width)
        self.output_layer = nn.Linear(config.controller_size + reads * width, config.output_size)
        initial_memory = torch.full((rows if config.initial_memory == "rows" else 1, width), config.memory_init)
        if config.initial_memory == "constant":
            self.register_buffer("initial_memory", initial_memory)  # (1, M), not learned
        else:
            self.initial_memory = nn.Parameter(initial_memory)  # (N, M) or (1, M) shared by every row
        self.initial_read_vectors = nn.Parameter(torch.zeros(reads, width))  # (Hr, M)
        focus_logit = math.log(INITIAL_FOCUS * (rows - 1) / (1 - INITIAL_FOCUS)) if rows > 1 else 0.0
        self.initial_weighting_logits = nn.Parameter(
            torch.zeros(reads + writes, rows).index_fill_(1, torch.tensor([0]), focus_logit))  # (Hr+Hw, N)
        hidden_shape = (config.controller_layers, config.controller_size)
        self.initial_hidden = nn.Parameter(torch.zeros(hidden_shape))  # (L, C)
        self.initial_cell = nn.Parameter(torch.zeros(hidden_shape))  # (L, C)

    def initial_state(self, x: Tensor) -> NTMState:
        """The learned start state for the batch of first inputs x: (B, I), on x's device and dtype."""
        batch = x.shape[0]
        weightings = torch.softmax(self.initial_weighting_logits.to(x), dim=-1)  # (Hr+Hw, N)
        read_weightings, write_weightings = weightings.split([self.config.read_heads, self.config.write_heads])
        return NTMState(
            memory=self.initial_memory.to(x).expand(batch, self.config.memory_rows, -1),  # (B, N, M)
            read_vectors=self.initial_read_vectors.to(x).expand(batch, -1, -1),  # (B, Hr, M)
            read_weightings=read_weightings.expand(batch, -1, -1),  # (B, Hr, N)
            write_weightings=write_weightings.expand(batch, -1, -1),  # (B, Hw, N)
            controller_hidden=self.initial_hidden.to(x)[:, None].expand(-1, batch, -1),  # (L, B, C)
            controller_cell=self.initial_cell.to(x)[:, None].expand(-1, batch, -1),  # (L, B, C)
        )

    def compile_step(self) -> None:
        """Replace `step` on this cell with its torch.compile'd form (`memqa train --compile`). A step is about
        150 tiny tensor operations; Inductor fuses them, which on a CPU makes training about twice as fast
        (docs/ntm.md "Speed"). The arithmetic is the same, but fused kernels round otherwise, so a compiled
        run takes another path through training than an eager one. The first calls compile (tens of seconds)."""
        self.step = torch.compile(self.step)  # an instance attribute: the class's step stays eager

    def step(self, x: Tensor, prev_state: NTMState) -> tuple[Tensor, NTMState]:
        """x: (B, I) -> output logits (B, O) and the next state (Figure 1)."""
        batch, reads = x.shape[0], self.config.read_heads
        controller_input = torch.cat([x, prev_state.read_vectors.reshape(batch, -1)], dim=1)  # (B, I + Hr·M)
        features, hidden, cell = self.controller(controller_input, prev_state.controller_hidden,
                                                 prev_state.controller_cell)  # (B, C)
        heads, erase_vectors, add_vectors = self.head_parameters(features)
        prev_weightings = torch.cat([prev_state.read_weightings, prev_state.write_weightings], dim=1)  # (B, Hr+Hw, N)
        weightings = address(prev_state.memory, prev_weightings, heads)  # (B, Hr+Hw, N)
        read_weightings, write_weightings = weightings[:, :reads], weightings[:, reads:]  # (B, Hr, N), (B, Hw, N)
        read_vectors = read(prev_state.memory, read_weightings)  # (B, Hr, M)
        memory = write(prev_state.memory, write_weightings, erase_vectors, add_vectors)  # (B, N, M)
        output = self.output_layer(torch.cat([features, read_vectors.reshape(batch, -1)], dim=1))  # (B, O)
        return output, NTMState(memory, read_vectors, read_weightings, write_weightings, hidden, cell)

    def head_parameters(self, features: Tensor) -> tuple[HeadParameters, Tensor, Tensor]:
        """Controller features (B, C) -> addressing of the Hr+Hw heads, erase e ∈ [0, 1] and add
        vectors a ∈ [-1, 1] of the Hw write heads (B, Hw, M). Keys and adds go through tanh, as in
        Collier & Beel 2018's implementation; β = softplus, g = sigmoid, s = softmax, γ = 1 + softplus."""
        batch, width, writes = features.shape[0], self.config.memory_width, self.config.write_heads
        raw = self.head_layer(features)  # (B, P)
        heads_raw, write_raw = raw.split([raw.shape[1] - writes * 2 * width, writes * 2 * width], dim=1)
        heads_raw = heads_raw.reshape(batch, -1, self.addressing_size)  # (B, Hr+Hw, M+3+Z)
        keys, strength, gate, sharpening, shifts = heads_raw.split([width, 1, 1, 1, heads_raw.shape[2] - width - 3], dim=2)
        heads = HeadParameters(
            keys=torch.tanh(keys),  # (B, Hr+Hw, M)
            key_strength=F.softplus(strength.squeeze(2)),  # β ≥ 0: (B, Hr+Hw)
            gate=torch.sigmoid(gate.squeeze(2)),  # g ∈ [0, 1]: (B, Hr+Hw)
            shift_weighting=torch.softmax(shifts, dim=2),  # s: (B, Hr+Hw, Z)
            sharpening=1 + F.softplus(sharpening.squeeze(2)),  # γ ≥ 1: (B, Hr+Hw)
        )
        erase_raw, add_raw = write_raw.reshape(batch, writes, 2 * width).split(width, dim=2)  # (B, Hw, M) each
        return heads, torch.sigmoid(erase_raw), torch.tanh(add_raw)
