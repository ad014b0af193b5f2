"""The real bAbI v1.2 files (MEMQA_BABI_DIR=/path/to/tasks_1-20_v1-2); skipped when it is unset."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from helpers import BABI_DIR, requires_babi

from memqa.config import EncoderConfig, MemN2NConfig, TrainConfig
from memqa.data.babi import TASK_IDS, load_task, read_babi_file, require_data_dir, task_file
from memqa.reader import Reader
from memqa.train import fit

pytestmark = requires_babi

SPLITS = ("train", "test")


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return require_data_dir(BABI_DIR)


@pytest.fixture(scope="module")
def all_files(data_dir):
    return {(task, split): read_babi_file(task_file(data_dir, task, split), task=task)
            for task in TASK_IDS for split in SPLITS}


def test_all_40_files_parse_with_1000_questions(all_files):
    assert len(all_files) == 40
    for (task, split), examples in all_files.items():
        assert len(examples) == 1000, (task, split)
        assert all(e.task == task and e.story and e.question and e.answer for e in examples)


def test_supporting_facts_point_into_the_story(all_files):
    for key, examples in all_files.items():
        for e in examples:
            assert all(0 <= slot < len(e.story) for slot in e.supporting), (key, e.source)


def test_task8_and_task19_have_comma_answers(all_files):
    for task in (8, 19):
        answers = {e.answer for split in SPLITS for e in all_files[task, split]}
        assert any("," in a for a in answers), task
    assert "n,w" in {e.answer for e in all_files[19, "train"]} | {e.answer for e in all_files[19, "test"]}


def test_no_single_character_tokens_from_a_broken_tokenizer(all_files):
    words = {w for e in all_files[1, "train"] for s in e.story for w in s}
    assert {"mary", "bathroom", "journeyed"} <= words
    assert max(len(w) for w in words) > 3


def test_task1_first_questions(all_files):
    first = all_files[1, "train"][:2]
    assert [e.answer for e in first] == ["bathroom", "hallway"]
    assert first[1].supporting == (2,) and len(first[1].story) == 4


def test_en_10k_has_ten_thousand_questions(data_dir):
    if not (data_dir / "en-10k").is_dir():
        pytest.skip("no en-10k folder in MEMQA_BABI_DIR")
    assert len(load_task(1, "train", data_dir=data_dir, data="en-10k")) == 10000


def test_training_task1_briefly_beats_chance(data_dir):
    started = time.perf_counter()
    train = load_task(1, "train", data_dir=data_dir)
    test = load_task(1, "test", data_dir=data_dir)
    torch.manual_seed(0)
    config = MemN2NConfig(encoder=EncoderConfig(memory_size=20))
    # 10 + 30 epochs take about 3 s on one core and reach about 98% (the paper's 100 epochs: 100%).
    result = fit("memn2n", config, TrainConfig(epochs=30, linear_start_epochs=10, batch_size=32), train)
    accuracy = Reader(result.model, result.vocab).evaluate(test)
    chance = 1 / result.vocab.num_answers  # 6 places
    assert result.vocab.num_answers == 6
    assert result.stopped is None
    assert accuracy > max(0.6, 3 * chance), accuracy
    assert time.perf_counter() - started < 20
