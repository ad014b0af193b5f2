"""Reader kinds by name: the CLI's --reader and a saved reader's config.json use these."""

from __future__ import annotations

from memqa.data.vocab import Vocab
from memqa.errors import ConfigError
from memqa.models.base import ReaderModel
from memqa.models.memnn import MemNN
from memqa.models.memn2n import MemN2N
from memqa.models.ntm import LSTMSequenceModel, NTMSequenceModel
from memqa.models.ntm_qa import NTMQA

READERS: dict[str, type[ReaderModel]] = {MemNN.kind: MemNN, MemN2N.kind: MemN2N,
                                        NTMQA.kind: NTMQA,  # the NTM reading bAbI stories
                                        NTMSequenceModel.kind: NTMSequenceModel,  # the NTM on bit sequences
                                        LSTMSequenceModel.kind: LSTMSequenceModel}  # and its LSTM baseline


def reader_class(kind: str) -> type[ReaderModel]:
    if kind not in READERS:
        raise ConfigError(f"unknown reader {kind!r}; choose one of {', '.join(sorted(READERS))}")
    return READERS[kind]


def build_model(kind: str, config, vocab: Vocab | None) -> ReaderModel:
    cls = reader_class(kind)
    if not isinstance(config, cls.config_class):
        raise ConfigError(f"a {kind} reader needs a {cls.config_class.__name__}, got {type(config).__name__}")
    return cls(config, vocab)
