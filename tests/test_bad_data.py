"""Bad data that test_babi_parser.py and test_cli.py do not cover yet: each is one clear error naming
file and line (through the CLI: exit code 1, one 'error:' line, no traceback), or a documented behaviour."""

from __future__ import annotations

import re
import time

import pytest
from helpers import TINY_TRAIN
from test_cli import assert_ok, assert_one_line_error, invoke, plain

from memqa.data.babi import parse_babi, parse_task_range, read_babi_file
from memqa.errors import DataError

HUGE_ID = "1" * 5000  # int() refuses strings of over 4300 digits: this used to escape as a ValueError


@pytest.mark.parametrize("lines, line_number, words", [
    ([f"{HUGE_ID} Mary went home."], 1, "expected 'ID sentence'"),
    (["1 Mary went home.", f"2 Where is Mary?\thome\t{HUGE_ID}"], 2, "must be numbers"),
    (["1 Mary went home.", "2 Where is Mary?\thome\x0bgarden\t1"], 2, "answer"),  # whitespace other than a space
    (["1 Mary went home.", "2 Where is Mary?\thome\u2028garden\t1"], 2, "answer"),
], ids=["huge-id", "huge-fact-id", "vertical-tab-answer", "line-separator-answer"])
def test_more_malformed_lines(lines, line_number, words):
    with pytest.raises(DataError) as caught:
        parse_babi(lines, source="bad.txt")
    message = str(caught.value)
    assert message.startswith(f"bad.txt:{line_number}:") and words in message and len(message) < 300


def test_a_huge_task_range_is_refused_at_once():
    """'1-999999999' used to build a set of a billion task ids before saying they are not 1-20."""
    started = time.perf_counter()
    with pytest.raises(DataError, match="numbered 1-20"):
        parse_task_range("1-999999999")
    assert time.perf_counter() - started < 1.0


def test_line_numbers_count_newlines_only(tmp_path):
    """A '\\u2028' or '\\x0b' inside a sentence is not a line break: errors name the line an editor shows."""
    path = tmp_path / "odd.txt"
    path.write_text("1 Mary went\u2028home.\n2 John\x0bleft.\n4 Where is Mary?\thome\t1\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path}:3:") + ".*line id 4 follows 2"):
        read_babi_file(path)


def test_windows_and_old_mac_line_endings_parse(tmp_path):
    for ending in ("\r\n", "\r"):
        path = tmp_path / "endings.txt"
        path.write_bytes(ending.join(["1 Mary went home.", "2 Where is Mary?\thome\t1", ""]).encode())
        (example,) = read_babi_file(path)
        assert example.answer == "home" and example.supporting == (0,)


# --- through the CLI ------------------------------------------------------------------------------

BAD_FILES = {
    "empty": (b"", "no questions found"),
    "blank-lines-only": (b"\n\n   \n", "no questions found"),
    "statements-only": (b"1 Mary went home.\n2 John left.\n", "no questions found"),
    "non-utf8": (b"1 Mary went home.\n2 Zo\xeb left.\n3 Where is Mary?\thome\t1\n", ":2: not UTF-8"),
    "utf16": ("1 Mary went home.\n2 Where is Mary?\thome\t1\n".encode("utf-16"), ":1: not UTF-8"),
    "question-first": (b"1 Where is Mary?\thome\t\n", ":1: question before any statement"),
    "forward-fact": (b"1 Mary went home.\n2 Where is Mary?\thome\t3\n3 John left.\n", ":2: supporting fact 3"),
    "wrong-numbering": (b"1 Mary went home.\n3 Where is Mary?\thome\t1\n", ":2: line id 3 follows 1"),
    "huge-id": (f"{HUGE_ID} Mary went home.\n".encode(), ":1: expected 'ID sentence'"),
    "one-question": (b"1 Mary went home.\n2 Where is Mary?\thome\t1\n", "at least 2 questions"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_training_files_through_the_cli(tmp_path, kind):
    data, fragment = BAD_FILES[kind]
    path = tmp_path / f"{kind}.txt"
    path.write_bytes(data)
    out = tmp_path / "r"
    line = assert_one_line_error(invoke("train", "--train-file", path, "--out", out, "--epochs", "1"), fragment)
    if kind != "one-question":  # that one is about the data as a whole, not one file
        assert str(path) in line
    assert not out.exists()  # nothing was started


def test_bad_test_file_through_the_cli(tmp_path):
    path = tmp_path / "test.txt"
    path.write_bytes(b"1 Mary went home.\n2 Where is Mary?\thome\t9\n")
    assert_one_line_error(invoke("train", "--train-file", TINY_TRAIN, "--test-file", path, "--out", tmp_path / "r",
                                 "--epochs", "1"), f"{path}:2:")
    assert not (tmp_path / "r").exists()  # the test file is read before training starts


def test_long_stories_are_said_once(tmp_path):
    """Stories longer than --memory-size keep their most recent sentences; one note says so, however many
    runs (--repeats) train on them."""
    result = invoke("train", "--train-file", TINY_TRAIN, "--out", tmp_path / "r", "--memory-size", "3",
                    "--epochs", "1", "--linear-start-epochs", "0", "--repeats", "2")
    assert_ok(result)
    notes = [line for line in plain(result.stderr).splitlines() if "longer than the memory" in line]
    assert len(notes) == 1 and "(3 sentences)" in notes[0] and "most recent" in plain(result.stderr)


def test_unknown_words_when_evaluating_are_ignored(tmp_path, trained_reader):
    """A test file may use words the reader never saw: they are dropped (documented), the file still scores."""
    path = tmp_path / "new.txt"
    path.write_text("1 Zorro went to the kitchen.\n2 Mary went to the garden.\n3 Where is Mary?\tgarden\t2\n"
                    "4 Where is Zorro?\tkitchen\t1\n")
    accuracy = trained_reader.evaluate(read_babi_file(path))
    assert 0.0 <= accuracy <= 1.0
