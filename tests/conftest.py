"""Shared fixtures: the tiny hand-written bAbI files, a quickly trained reader, and the
real-data switch (MEMQA_BABI_DIR)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from helpers import OVERFIT_TRAIN_CONFIG, TINY_TRAIN, small_memn2n_config

torch.set_num_threads(1)  # memory networks are tiny: one thread is fastest and keeps CI cores free


@pytest.fixture(scope="session")
def tiny_examples():
    from memqa.data.babi import read_babi_file

    return read_babi_file(TINY_TRAIN)


@pytest.fixture(scope="session")
def tiny_vocab(tiny_examples):
    from memqa.data.vocab import Vocab

    return Vocab.build(tiny_examples)


@pytest.fixture(scope="session")
def trained_reader(tiny_examples, tiny_vocab):
    """A MemN2N reader trained on the whole tiny fixture (memory of 10 sentences)."""
    from memqa.config import TrainConfig
    from memqa.data.batching import encode_examples
    from memqa.models.memn2n import MemN2N
    from memqa.reader import Reader
    from memqa.train import train_model

    torch.manual_seed(0)
    config = small_memn2n_config()
    data = encode_examples(tiny_examples, tiny_vocab, config.encoder.memory_size)
    model = MemN2N(config, tiny_vocab)
    result = train_model(model, data, data, TrainConfig(**OVERFIT_TRAIN_CONFIG), vocab=tiny_vocab)
    return Reader(result.model, tiny_vocab, {"tasks": [], "data": str(TINY_TRAIN), "scores": {"train": 1.0}})


@pytest.fixture(scope="session")
def saved_reader_dir(trained_reader, tmp_path_factory):
    """The trained reader saved once; tests that damage it must work on a copy (see `reader_copy`)."""
    return trained_reader.save_pretrained(tmp_path_factory.mktemp("saved") / "reader")


@pytest.fixture
def reader_copy(saved_reader_dir, tmp_path):
    return Path(shutil.copytree(saved_reader_dir, tmp_path / "reader"))
