"""Typed configuration: one frozen dataclass per reader plus the training schedule.

Every default names its source. `to_dict` / `from_dict` round-trip through JSON; loading
rejects unknown and missing keys so a typo in a config file is an error, not a silent default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from memqa.errors import ConfigError

Encoding = Literal["position", "bow"]
WeightTying = Literal["adjacent", "layerwise"]

# Sukhbaatar et al. 2015 §4.1: "the memory holds the 50 most recent sentences".
DEFAULT_MEMORY_SIZE = 50


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class EncoderConfig:
    """The shared StoryEncoder: word embedding + sentence encoding + temporal encoding."""

    embedding_dim: int = 20  # Sukhbaatar et al. 2015 §4.4: d = 20 for independent training
    encoding: Encoding = "position"  # §4.1 position encoding (PE); "bow" is the bag of words
    temporal: bool = True  # §4.1 temporal encoding (TE), used in all bAbI experiments
    memory_size: int = DEFAULT_MEMORY_SIZE  # §4.1: 50 most recent sentences
    init_std: float = 0.1  # §4.2: weights initialised from N(0, 0.1)

    def __post_init__(self) -> None:
        _require(self.embedding_dim > 0, "embedding_dim must be positive")
        _require(self.encoding in ("position", "bow"), "encoding must be 'position' or 'bow'")
        _require(self.memory_size > 0, "memory_size must be positive")
        _require(self.init_std > 0, "init_std must be positive")


@dataclass(frozen=True)
class MemN2NConfig:
    """End-to-End Memory Network (Sukhbaatar, Szlam, Weston, Fergus 2015)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    hops: int = 3  # §4: K = 3 hops for the main bAbI results
    weight_tying: WeightTying = "adjacent"  # §2.2: adjacent tying for the bAbI models
    tie_answer: bool = True  # §2.2 adjacent tying: W^T = C^K (so does the authors' code); layer-wise never ties W
    linear_start: bool = True  # §4.2 linear start (LS): softmax removed at first
    random_noise: float = 0.1  # §4.1 random noise (RN): "randomly add 10% of empty memories"
    relu: bool = False  # Appendix A "PE LS LW RN*": ReLU on the controller state after each hop

    def __post_init__(self) -> None:
        _require(self.hops >= 1, "hops must be at least 1")
        _require(self.weight_tying in ("adjacent", "layerwise"), "weight_tying must be 'adjacent' or 'layerwise'")
        _require(0.0 <= self.random_noise < 1.0, "random_noise must be in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """The training schedule. Defaults are the per-task schedule of Sukhbaatar et al. 2015 §4.2
    as run by the authors' released code (MemN2N-babi-matlab/config_babi.m)."""

    epochs: int = 100  # §4.2: "until 100 epochs"
    batch_size: int = 32  # §4.2
    learning_rate: float = 0.01  # §4.2: η = 0.01
    decay_every: int = 25  # §4.2: η halved every 25 epochs
    decay_factor: float = 0.5  # §4.2: "annealed by η/2"
    max_grad_norm: float = 40.0  # §4.2: gradients with ℓ2 norm > 40 are scaled down to 40
    linear_start_epochs: int = 20  # config_babi.m: ls_nepochs = 20 (the paper: until valid loss stalls)
    linear_start_learning_rate: float = 0.005  # §4.2: "LS uses an initial learning rate of 0.005"
    valid_fraction: float = 0.1  # §4.1: 10% of the training set held out for validation
    seed: int = 0
    repeats: int = 1  # §4.2 repeats training 10 times; we keep the best on validation

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, "epochs must be at least 1")
        _require(self.batch_size >= 1, "batch_size must be at least 1")
        _require(self.learning_rate > 0, "learning_rate must be positive")
        _require(self.decay_every >= 1, "decay_every must be at least 1")
        _require(self.max_grad_norm > 0, "max_grad_norm must be positive")
        _require(self.linear_start_epochs >= 0, "linear_start_epochs must be >= 0")
        _require(0.0 < self.valid_fraction < 1.0, "valid_fraction must be in (0, 1)")
        _require(self.repeats >= 1, "repeats must be at least 1")


# One model trained on all 20 tasks (§4.2): 60 epochs, η halved every 15, d = 50;
# config_babi_joint.m runs 30 linear-start epochs.
JOINT_TRAIN_CONFIG = TrainConfig(epochs=60, decay_every=15, linear_start_epochs=30)
JOINT_EMBEDDING_DIM = 50


ConfigT = TypeVar("ConfigT")


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-ready data (nested configs become nested dicts)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[ConfigT], data: dict[str, Any], *, where: str = "config") -> ConfigT:
    """Build `cls` from `data`, rejecting unknown and missing keys (nested configs too)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    missing = sorted(set(fields) - set(data))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {sorted(fields)}")
    if missing:
        raise ConfigError(f"{where}: missing keys {missing}")
    values = {}
    for name, value in data.items():
        nested = _nested_config_type(fields[name])
        values[name] = from_dict(nested, value, where=f"{where}.{name}") if nested else value
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def _nested_config_type(f: dataclasses.Field) -> type | None:
    factory = f.default_factory  # type: ignore[misc]
    if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
        return factory  # type: ignore[return-value]
    return None
