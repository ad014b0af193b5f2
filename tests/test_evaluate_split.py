"""`memqa evaluate --split valid`: readers scored on the validation split they held out of each training
file (re-made from their config.json), the same questions for a per-task and a joint reader."""

from __future__ import annotations

import json

import pytest
from helpers import TINY_TEST, TINY_TRAIN, babi_tree
from test_cli import assert_ok, assert_one_line_error, invoke

from memqa.data.babi import load_task
from memqa.data.batching import split_train_valid
from memqa import evaluate as evaluate_module
from memqa.reader import load_reader

QUICK = ["--epochs", "4", "--linear-start-epochs", "1", "--batch-size", "4"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    data_dir = babi_tree(root)
    common = ["--tasks", "1-2", "--data-dir", data_dir, *QUICK, "--seed", "3"]
    assert_ok(invoke("train", *common, "--out", root / "per-task"))
    assert_ok(invoke("train", *common, "--joint", "--embedding-dim", "20", "--out", root / "joint"))
    return data_dir, root / "per-task", root / "joint"


def valid_questions(data_dir, task, seed=3):
    return split_train_valid(load_task(task, "train", data_dir=data_dir), 0.1, seed)[1]


def test_valid_split_is_the_one_training_held_out(runs):
    data_dir, per_task, _ = runs
    report = json.loads(assert_ok(invoke("evaluate", per_task, "--split", "valid", "--data-dir", data_dir,
                                         "--format", "json")))
    assert report["split"] == "valid"
    for row in report["tasks"]:
        task = int(row["task"])
        held_out = valid_questions(data_dir, task)
        reader = load_reader(per_task / f"task{task}")
        assert row["questions"] == len(held_out) > 0
        assert row["accuracy"] == reader.evaluate(held_out) == reader.info["scores"]["valid"]


def test_joint_and_per_task_readers_are_validated_on_the_same_questions(runs, monkeypatch):
    data_dir, per_task, joint = runs
    real, seen = evaluate_module.task_examples, []
    monkeypatch.setattr(evaluate_module, "task_examples", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    expected = [[e.source for e in valid_questions(data_dir, task)] for task in (1, 2)]
    for folder in (per_task, joint):
        seen.clear()
        evaluate_module.evaluate_tasks(folder, data_dir=data_dir, split="valid")
        assert [[e.source for e in examples] for examples in seen] == expected


def test_test_split_is_the_default_and_reads_the_test_files(runs):
    data_dir, per_task, _ = runs
    report = json.loads(assert_ok(invoke("evaluate", per_task, "--data-dir", data_dir, "--format", "json")))
    assert report["split"] == "test"
    assert [row["questions"] for row in report["tasks"]] == [len(load_task(t, "test", data_dir=data_dir)) for t in (1, 2)]


def test_bad_split_requests_are_one_line_errors(runs, tmp_path):
    data_dir, per_task, _ = runs
    assert_one_line_error(invoke("evaluate", per_task, "--split", "dev", "--data-dir", data_dir), "dev")
    assert_one_line_error(invoke("evaluate", per_task / "task1", "--split", "valid", "--test-file", TINY_TEST),
                          "--split valid")
    own_file = tmp_path / "own"
    assert_ok(invoke("train", "--train-file", TINY_TRAIN, *QUICK, "--out", own_file))
    assert_one_line_error(invoke("evaluate", own_file, "--split", "valid", "--tasks", "1", "--data-dir", data_dir),
                          "validation split")


def test_a_reader_trained_on_every_question_has_no_validation_split(runs, tmp_path):
    """--valid-fraction 0 (a refit on the whole training file): the last epoch is kept, config.json
    records no validation score, and --split valid refuses the reader in one line."""
    data_dir, _, _ = runs
    out = tmp_path / "refit"
    stdout = assert_ok(invoke("train", "--task", "1", "--data-dir", data_dir, *QUICK, "--repeats", "2",
                              "--valid-fraction", "0", "--out", out))
    info = json.loads((out / "config.json").read_text())["info"]
    assert info["best_epoch"] == info["epochs_run"] == 5
    assert set(info["scores"]) == {"train", "test"} and info["train_config"]["valid_fraction"] == 0
    assert "nan" not in stdout.lower()
    assert_one_line_error(invoke("evaluate", out, "--split", "valid", "--data-dir", data_dir), "no validation split")
    assert_one_line_error(invoke("train", "--task", "1", "--data-dir", data_dir, "--valid-fraction", "1",
                                 "--out", tmp_path / "bad"), "valid_fraction")
