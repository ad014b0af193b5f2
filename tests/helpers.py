"""Constants and small builders shared by the tests (conftest.py holds the fixtures)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TINY_TRAIN = FIXTURES / "tiny_train.txt"
TINY_TEST = FIXTURES / "tiny_test.txt"
TINY_TRAIN_QUESTIONS = 18  # counted by hand in tests/fixtures/tiny_train.txt

BABI_DIR = os.environ.get("MEMQA_BABI_DIR")
requires_babi = pytest.mark.skipif(
    not BABI_DIR, reason="real bAbI data not available: set MEMQA_BABI_DIR=/path/to/tasks_1-20_v1-2 to run"
)


def small_memn2n_config(**changes):
    """A small, fast MemN2N config (memory of 10 sentences); `encoder__x=...` changes the encoder."""
    import dataclasses

    from memqa.config import EncoderConfig, MemN2NConfig

    encoder_changes = {k[len("encoder__"):]: v for k, v in changes.items() if k.startswith("encoder__")}
    model_changes = {k: v for k, v in changes.items() if not k.startswith("encoder__")}
    encoder = dataclasses.replace(EncoderConfig(memory_size=10), **encoder_changes)
    return MemN2NConfig(encoder=encoder, **model_changes)


# Trains to 100% on the tiny fixture in about a second (checked in test_train.py); seeds 0-3 get there
# by epoch 40 (adjacent) and 57 (layer-wise) of these 90.
OVERFIT_TRAIN_CONFIG = dict(epochs=80, batch_size=4, learning_rate=0.1, linear_start_epochs=10,
                            linear_start_learning_rate=0.1)
