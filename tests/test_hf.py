"""The datasets.DatasetDict view of the parsed tasks."""

from pathlib import Path

import pytest

from memqa.data.babi import read_babi_file
from memqa.data.batching import split_train_valid

pytest.importorskip("datasets")

from memqa.data.hf import load_babi_dataset  # noqa: E402

TRAIN = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel? \thallway\t4
1 Sandra took the apple there.
2 Sandra got the football there.
3 What is Sandra carrying?\tapple,football\t1 2
"""


@pytest.fixture
def babi_dir(tmp_path: Path) -> Path:
    root = tmp_path / "tasks_1-20_v1-2" / "en"
    root.mkdir(parents=True)
    (root / "qa1_single-supporting-fact_train.txt").write_text(TRAIN * 5)
    (root / "qa1_single-supporting-fact_test.txt").write_text(TRAIN)
    return tmp_path


def test_splits_match_the_trainer_split(babi_dir: Path) -> None:
    dataset = load_babi_dataset(1, data_dir=babi_dir)
    assert set(dataset) == {"train", "validation", "test"}
    examples = read_babi_file(babi_dir / "tasks_1-20_v1-2/en/qa1_single-supporting-fact_train.txt", task=1)
    train, valid = split_train_valid(examples, 0.1, 0)
    assert dataset["train"].num_rows == len(train) and dataset["validation"].num_rows == len(valid)
    assert dataset["test"].num_rows == 3
    row = dataset["test"][2]
    assert row == {"story": ["sandra took the apple there", "sandra got the football there"],
                   "question": "what is sandra carrying", "answer": "apple,football",
                   "supporting_facts": [0, 1], "task": 1}


def test_real_tasks_when_available() -> None:
    import os

    if not os.environ.get("MEMQA_BABI_DIR"):
        pytest.skip("MEMQA_BABI_DIR is not set: real bAbI data not available")
    dataset = load_babi_dataset([1, 8])
    assert dataset["train"].num_rows + dataset["validation"].num_rows == 2000
    assert dataset["validation"].num_rows == 200
    assert any("," in a for a in dataset["test"]["answer"])
