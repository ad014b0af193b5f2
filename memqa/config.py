"""Typed configuration: one frozen dataclass per reader plus the training schedule.

Every default names its source. `to_dict` / `from_dict` round-trip through JSON; loading
rejects unknown and missing keys so a typo in a config file is an error, not a silent default; the one
exception is a field a config class lists in `added_fields` (added after readers were first saved), which
a saved config may lack and then gets its default, the behaviour from before the field existed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

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
    # The authors' code weights words by 1 + 4(k-(d+1)/2)(j-(J+1)/2)/(dJ) = 2·l_kj at cell centres,
    # averaging 1 like bag of words, where the paper's l_kj averages 1/2. Chosen on validation
    # (docs/results.md): at 1 tasks 4, 16 and 20 train far worse.
    position_scale: float = 2.0
    temporal: bool = True  # §4.1 temporal encoding (TE), used in all bAbI experiments
    memory_size: int = DEFAULT_MEMORY_SIZE  # §4.1: 50 most recent sentences
    init_std: float = 0.1  # §4.2: weights initialised from N(0, 0.1)

    def __post_init__(self) -> None:
        _require(self.embedding_dim > 0, "embedding_dim must be positive")
        _require(self.encoding in ("position", "bow"), "encoding must be 'position' or 'bow'")
        _require(self.position_scale > 0, "position_scale must be positive")
        _require(self.memory_size > 0, "memory_size must be positive")
        _require(self.init_std > 0, "init_std must be positive")


@dataclass(frozen=True)
class MemN2NConfig:
    """End-to-End Memory Network (Sukhbaatar, Szlam, Weston, Fergus 2015)."""

    added_fields: ClassVar[frozenset[str]] = frozenset({"dropout"})  # readers saved before it have none
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    hops: int = 3  # §4: K = 3 hops for the main bAbI results
    weight_tying: WeightTying = "adjacent"  # §2.2: adjacent tying for the bAbI models
    tie_answer: bool = True  # §2.2 adjacent tying: W^T = C^K (so does the authors' code); layer-wise never ties W
    linear_start: bool = True  # §4.2 linear start (LS): softmax removed at first
    random_noise: float = 0.1  # §4.1 random noise (RN): "randomly add 10% of empty memories"
    relu: bool = False  # Appendix A "PE LS LW RN*": ReLU on the controller state after each hop
    dropout: float = 0.0  # not in the paper: dropout on every embedded sentence and question while training

    def __post_init__(self) -> None:
        _require(self.hops >= 1, "hops must be at least 1")
        _require(self.weight_tying in ("adjacent", "layerwise"), "weight_tying must be 'adjacent' or 'layerwise'")
        _require(0.0 <= self.random_noise < 1.0, "random_noise must be in [0, 1)")
        _require(0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)")


def _memnn_encoder() -> EncoderConfig:
    """MemNN's input map I: summed word embeddings (the paper's Φ), no temporal rows (write time
    enters through the comparison features of MemNNConfig.time_features instead)."""
    return EncoderConfig(embedding_dim=MEMNN_EMBEDDING_DIM, encoding=MEMNN_ENCODING, temporal=False)


MEMNN_EMBEDDING_DIM = 30  # chosen on validation (docs/results.md: 30 > 50 > 100); the 2014 paper §5.2 fixed 100
MEMNN_ENCODING: Encoding = "position"  # chosen on validation (bag of words: tasks 17-19 far worse); the papers' Φ is "bow"


@dataclass(frozen=True)
class MemNNConfig:
    """Memory Network (Weston, Chopra, Bordes 2014) trained on supporting facts, with the adaptive
    memory (AM) and the non-linear response (NL) of Weston et al. 2015 (Towards AI-Complete QA, App. A)."""

    encoder: EncoderConfig = field(default_factory=_memnn_encoder)
    # With AM (always on here) hops is the hard limit of the hops, not their number: 2015 App. A uses 10
    # (tasks 3, 7, 8 and 16 need 3 to 8 facts); --hops 2 is the 2014 paper's k = 2.
    hops: int = 10
    margin: float = 0.1  # 2014 §5.2: margin γ = 0.1
    time_features: bool = True  # 2014 "modeling write time": the three-way write-time comparison s_Ot
    match_features: bool = True  # 2014 "exact matches": a feature for each memory word also in the question
    nonlinear: bool = True  # 2015 App. A (NL): E(x) = tanh(W tanh(Φx(x)ᵀU)) in the response R
    # Ours, chosen on validation: R also learns from the reader's own picks, not only from the annotated
    # facts (teacher forcing), so that it answers from another valid chain of facts (task 18: +11 points).
    response_on_picks: bool = True
    # 2014 "previously unseen words": words never seen in training are represented by their left and right
    # context; in training this share of the known words is too (the paper's "dropout" d%, value not given),
    # so the reader learns to. 0 (default, as the bAbI runs of both papers): no context features.
    unseen_words: float = 0.0

    def __post_init__(self) -> None:
        _require(self.hops >= 1, "hops must be at least 1")
        _require(self.margin > 0, "margin must be positive")
        _require(0.0 <= self.unseen_words < 1.0, "unseen_words must be in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """The training schedule. Defaults are the per-task schedule of Sukhbaatar et al. 2015 §4.2
    as run by the authors' released code (MemN2N-babi-matlab/config_babi.m)."""

    epochs: int = 100  # §4.2: "until 100 epochs"
    batch_size: int = 32  # §4.2
    learning_rate: float = 0.01  # §4.2: η = 0.01
    decay_every: int = 25  # §4.2: η halved every 25 epochs
    decay_factor: float = 0.5  # §4.2: "annealed by η/2"
    # L2 penalty: weight_decay · w is added to every gradient after clipping (torch.optim's weight_decay).
    # The papers train without one (Sukhbaatar et al. 2015 §4.2; Graves et al. 2014 §4).
    weight_decay: float = 0.0
    max_grad_norm: float = 40.0  # §4.2: gradients with ℓ2 norm > 40 are scaled down to 40
    # config_babi.m runs ls_nepochs = 20 (the paper: until the validation loss stalls, which ended LS too early
    # here). 40, chosen on validation (docs/results.md): mean validation error 13.7% against 14.6% at 20.
    linear_start_epochs: int = 40
    linear_start_learning_rate: float = 0.005  # §4.2: "LS uses an initial learning rate of 0.005"
    # §4.1: 10% of the training set held out for validation. 0 holds out nothing: every question is trained
    # on, each run keeps its last epoch and the run with the lowest training error is kept (§4.2's rule), for
    # a reader refit on the whole file once cross-validation has chosen its epochs (docs/results.md).
    valid_fraction: float = 0.1
    seed: int = 0
    repeats: int = 1  # §4.2 repeats training 10 times; we keep the best on validation
    # 0: batches drawn at random (the papers). N > 0: each run of N batches of the shuffled order is sorted by
    # story length before it is cut into batches, and the batches are shuffled, so that a batch's stories are
    # about as long: the NTM reader, which takes one step per slot of its batch's longest story, then takes
    # about the mean length's steps (EncodedSet.batches). Faster, but a batch's questions are less varied
    # (docs/ntm-reader.md measures both).
    length_buckets: int = 0

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, "epochs must be at least 1")
        _require(self.batch_size >= 1, "batch_size must be at least 1")
        _require(self.learning_rate > 0, "learning_rate must be positive")
        _require(self.decay_every >= 1, "decay_every must be at least 1")
        _require(self.decay_factor > 0.0, "decay_factor must be positive")
        _require(self.weight_decay >= 0.0, "weight_decay must be >= 0")
        _require(self.max_grad_norm > 0, "max_grad_norm must be positive")
        _require(self.linear_start_epochs >= 0, "linear_start_epochs must be >= 0")
        _require(0.0 <= self.valid_fraction < 1.0, "valid_fraction must be in [0, 1); 0 trains on every question")
        _require(self.repeats >= 1, "repeats must be at least 1")
        _require(self.length_buckets >= 0, "length_buckets must be >= 0; 0 draws batches at random")


# One model trained on all 20 tasks (§4.2): 60 epochs, η halved every 15, d = 50;
# config_babi_joint.m runs 30 linear-start epochs.
JOINT_TRAIN_CONFIG = TrainConfig(epochs=60, decay_every=15, linear_start_epochs=30)
JOINT_EMBEDDING_DIM = 50


# Chosen on validation (docs/results.md): SGD at the papers' rate 0.01 (0.02 is worse) for 200
# epochs, not the 2014 paper's 10 (§5.2): the non-linear response of tasks 17 and 19 still improves
# after 100. The rate is halved once, after epoch 100 (validation: task 19 51% vs 42% without).
MEMNN_TRAIN_CONFIG = TrainConfig(epochs=200, learning_rate=0.01, decay_every=100, decay_factor=0.5)


NTMController = Literal["lstm", "feedforward"]
NTMOptimizer = Literal["rmsprop", "graves", "adam"]
NTMInitialMemory = Literal["rows", "shared", "constant"]


@dataclass(frozen=True)
class NTMConfig:
    """Neural Turing Machine (Graves, Wayne, Danihelka 2014) over sequences of bit vectors.
    Defaults: the copy task with an LSTM controller (Table 2); a task sets input/output sizes."""

    # NTMs saved before these fields trained with "rmsprop", learned every row of the initial memory, had no state noise
    added_fields: ClassVar[frozenset[str]] = frozenset({"optimizer", "initial_memory", "state_noise"})

    input_size: int = 9  # copy: 8 bits + a delimiter channel (§4.1)
    output_size: int = 8  # copy: the 8 bits (§4.1)
    memory_rows: int = 128  # N: Tables 1-2, every task
    memory_width: int = 20  # M: Tables 1-2, every task
    controller: NTMController = "lstm"  # Table 2 (Table 1: "feedforward")
    controller_size: int = 100  # Table 2: 100 units for copy, repeat copy and associative recall
    controller_layers: int = 1  # Table 2 (priority sort: 2 x 100)
    read_heads: int = 1  # Table 2: 1 head for copy, repeat copy, associative recall
    write_heads: int = 1  # Table 2 (a "head" is a read and a write head; §4.5 "parallel read and write heads")
    shift_range: int = 1  # §3.3.2: shifts -1..+1, "s_t has three elements"
    memory_init: float = 1e-6  # Collier & Beel 2018: a small constant memory converges fastest (learned from there)
    # "rows": every row of the initial memory learned on its own; "shared": one learned row copied to
    # every row (the same at every position); "constant": memory_init everywhere, not learned (Collier & Beel)
    initial_memory: NTMInitialMemory = "rows"
    momentum: float = 0.9  # §4: RMSProp with momentum 0.9
    rmsprop_alpha: float = 0.95  # Graves 2013 eq. 38 (aleph = 0.95), as pytorch-ntm
    # "rmsprop": torch.optim.RMSprop (uncentred, eps 1e-8 outside the root), as pytorch-ntm;
    # "graves": Graves 2013 eqs. 38-41, the RMSProp §4 cites (centred, 1e-4 under the root);
    # "adam": torch.optim.Adam (betas 0.9, 0.999; momentum and rmsprop_alpha unused), as Collier & Beel 2018.
    optimizer: NTMOptimizer = "rmsprop"
    gradient_clip: float = 10.0  # §4: gradients clipped element-wise to (-10, 10)
    # In training only: Gaussian noise of this standard deviation added to the controller's hidden state
    # (every layer's output, which the heads, the output and the next step read) at every step. 0: none, as the paper.
    state_noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "memory_rows", "memory_width", "controller_size",
                     "controller_layers", "read_heads", "write_heads"):
            _require(getattr(self, name) >= 1, f"{name} must be at least 1")
        _require(self.controller in ("lstm", "feedforward"), "controller must be 'lstm' or 'feedforward'")
        _require(0 <= self.shift_range < self.memory_rows, "shift_range must be in [0, memory_rows)")
        _require(self.memory_init >= 0, "memory_init must be >= 0")
        _require(self.state_noise >= 0, "state_noise must be >= 0")
        _require(self.initial_memory in ("rows", "shared", "constant"),
                 "initial_memory must be 'rows', 'shared' or 'constant'")
        _check_rmsprop(self)


@dataclass(frozen=True)
class LSTMBaselineConfig:
    """The paper's baseline for the algorithmic tasks (Graves et al. 2014 Table 3): a stack of LSTM layers
    with no memory, reading one input vector and emitting one output vector per step, trained as the NTM is
    (RMSProp with momentum, element-wise clipping). Defaults: the copy task's network, 3 x 256."""

    input_size: int = 9
    output_size: int = 8
    hidden_size: int = 256  # Table 3: copy and associative recall 3 x 256, repeat copy 3 x 512, priority sort 3 x 128
    layers: int = 3  # §4: "every LSTM baseline has 3 stacked hidden layers"
    momentum: float = 0.9
    rmsprop_alpha: float = 0.95
    optimizer: NTMOptimizer = "rmsprop"
    gradient_clip: float = 10.0

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "hidden_size", "layers"):
            _require(getattr(self, name) >= 1, f"{name} must be at least 1")
        _check_rmsprop(self)


def _check_rmsprop(config: NTMConfig | LSTMBaselineConfig) -> None:
    """The training fields the NTM and its LSTM baseline share (§4: RMSProp with momentum, clipping)."""
    _require(0 <= config.momentum < 1 and 0 < config.rmsprop_alpha < 1, "momentum must be in [0, 1), rmsprop_alpha in (0, 1)")
    _require(config.gradient_clip > 0, "gradient_clip must be positive")
    _require(config.optimizer in ("rmsprop", "graves", "adam"), "optimizer must be 'rmsprop', 'graves' or 'adam'")


# Graves et al. 2014 Table 2: RMSProp learning rate 1e-4 (3e-5 for priority sort).
NTM_LEARNING_RATE = 1e-4


@dataclass(frozen=True)
class NTMQAConfig:
    """The NTM reading bAbI stories: each sentence, encoded by the shared StoryEncoder, is one input step
    (oldest first), then the question is the input for `hops` steps and the last step's output scores the
    answers. The paper has no bAbI experiment; the cell's sizes are its Table 2's, the question steps
    Gulcehre et al.'s "3-steps" NTM (D-NTM, Table 1). Controller and temporal encoding chosen on validation
    (docs/ntm-reader.md: task 1, 10k)."""

    # readers saved before head_start existed started their heads (True)
    added_fields: ClassVar[frozenset[str]] = frozenset({"head_start"})
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # with temporal encoding: it tells rows' ages
    hops: int = 3  # question steps: D-NTM's "3-steps" NTM reads the question three times
    memory_rows: int = 128  # N: Graves et al. 2014 Table 2
    memory_width: int = 20  # M: Table 2
    # Table 1's feed-forward controller: it must keep what it reads in memory; with an LSTM one the reader
    # stays near 52% on task 1 (10k), the defaults' 1k level (docs/ntm-reader.md)
    controller: NTMController = "feedforward"
    controller_size: int = 100  # Table 2
    # read heads = write heads. Table 2 has one for every task but priority sort; two, chosen on validation
    # (docs/ntm-reader.md: tasks 1, 2, 5 and 6, 10k), learn tasks 2 and 6, where one stays at chance
    heads: int = 2
    shift_range: int = 1  # §3.3.2
    initial_memory: NTMInitialMemory = "constant"  # Collier & Beel 2018: a small constant converges fastest
    # Ours, chosen on validation: the write head starts moving one row a step, the read heads addressing by
    # content (memqa/models/ntm_qa.py START_*); False leaves the head layer as torch initialises it
    head_start: bool = True

    def __post_init__(self) -> None:
        _require(self.hops >= 1, "hops must be at least 1")
        self.cell_config(1, 1)  # the cell's own checks: sizes, controller, shift range, initial memory

    def cell_config(self, input_size: int, output_size: int) -> NTMConfig:
        """The NTM cell that reads input_size numbers a step and emits output_size scores."""
        return NTMConfig(input_size=input_size, output_size=output_size, memory_rows=self.memory_rows,
                         memory_width=self.memory_width, controller=self.controller,
                         controller_size=self.controller_size, read_heads=self.heads, write_heads=self.heads,
                         shift_range=self.shift_range, initial_memory=self.initial_memory)


# The NTM reader trains with Adam at 1e-3 (as Collier & Beel 2018's NTM) in batches of 32, its gradients clipped
# to norm 10, for 20 epochs at one rate (decay_every > epochs); not from a paper: on 10k, task 1 is learned by
# epoch 10 (docs/ntm-reader.md).
NTM_QA_TRAIN_CONFIG = TrainConfig(epochs=20, learning_rate=1e-3, decay_every=25, decay_factor=0.5, max_grad_norm=10.0,
                                  linear_start_epochs=0)


ConfigT = TypeVar("ConfigT")

# TrainConfig fields added after training states were first saved, with the value those runs trained with:
# a run interrupted before the field existed resumes exactly as it started.
TRAIN_CONFIG_ADDED = {"weight_decay": 0.0, "length_buckets": 0}


def train_config_from_dict(data: dict[str, Any], *, where: str = "train_config") -> TrainConfig:
    """A saved TrainConfig (from_dict), with the fields of TRAIN_CONFIG_ADDED filled in when missing."""
    if isinstance(data, dict):
        data = {**TRAIN_CONFIG_ADDED, **data}
    return from_dict(TrainConfig, data, where=where)


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-ready data (nested configs become nested dicts)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[ConfigT], data: dict[str, Any], *, where: str = "config") -> ConfigT:
    """Build `cls` from `data`, rejecting unknown and missing keys (nested configs too)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    missing = sorted(set(fields) - set(data) - getattr(cls, "added_fields", frozenset()))
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
    if factory is dataclasses.MISSING:
        return None
    if dataclasses.is_dataclass(factory):
        return factory  # type: ignore[return-value]
    default = factory()  # a function building a nested config with other defaults (MemNNConfig.encoder)
    return type(default) if dataclasses.is_dataclass(default) else None
