"""memqa.data.babi: parsing real bAbI lines, every malformed input, writing back, finding task files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memqa.data.babi import (
    BABI_ENV_VAR,
    Example,
    format_babi,
    parse_babi,
    parse_task_range,
    read_babi_file,
    require_data_dir,
    resolve_data_dir,
    task_file,
    tokenize,
)
from memqa.errors import DataError

# Verbatim from qa1_single-supporting-fact_train.txt: a space before each question's tab.
TASK1_LINES = [
    "1 Mary moved to the bathroom.",
    "2 John went to the hallway.",
    "3 Where is Mary? \tbathroom\t1",
    "4 Daniel went back to the hallway.",
    "5 Sandra moved to the garden.",
    "6 Where is Daniel? \thallway\t4",
    "7 John moved to the office.",
    "8 Sandra journeyed to the bathroom.",
    "9 Where is Sandra? \tbathroom\t8",
    "1 Sandra travelled to the office.",
    "2 Where is Sandra? \toffice\t1",
]

# Verbatim from qa19_path-finding_train.txt: no space before the tab, a comma answer, two facts.
TASK19_LINES = [
    "1 The office is east of the hallway.",
    "2 The kitchen is north of the office.",
    "3 The garden is west of the bedroom.",
    "4 The office is west of the garden.",
    "5 The bathroom is north of the garden.",
    "6 How do you go from the kitchen to the garden?\ts,e\t2 4",
]

# From qa8_lists-sets_train.txt (shortened): comma-joined answers.
TASK8_LINES = [
    "1 Mary moved to the bathroom.",
    "2 Mary got the apple there.",
    "3 What is Mary carrying? \tapple\t2",
    "4 Mary picked up the football there.",
    "5 What is Mary carrying? \tapple,football\t2 4",
]


def parse(lines, source="f.txt"):
    return parse_babi(lines, source=source)


def assert_data_error(lines, *fragments, source="bad.txt"):
    with pytest.raises(DataError) as caught:
        parse(lines, source=source)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --- tokenizer ---------------------------------------------------------------------------


def test_tokenize_splits_words_not_characters():
    assert tokenize("Where is the milk?") == ("where", "is", "the", "milk")


def test_tokenize_drops_punctuation_and_lowercases():
    assert tokenize("Mary moved to the Bathroom.") == ("mary", "moved", "to", "the", "bathroom")
    assert tokenize("  ,.?!  ") == ()


# --- real lines ----------------------------------------------------------------------------


def test_task1_space_before_tab_and_interleaved_questions():
    examples = parse(TASK1_LINES)
    assert [e.question for e in examples] == [("where", "is", "mary")] + [("where", "is", "daniel")] + [
        ("where", "is", "sandra")] * 2
    assert [e.answer for e in examples] == ["bathroom", "hallway", "bathroom", "office"]
    # Question lines take a line id but are not story sentences: the story before question 3
    # (line 9) has the 6 statements 1, 2, 4, 5, 7, 8.
    third = examples[2]
    assert len(third.story) == 6
    assert third.story[0] == ("mary", "moved", "to", "the", "bathroom")
    assert third.story[-1] == ("sandra", "journeyed", "to", "the", "bathroom")
    # Line ids re-indexed to story positions: line 4 is story[2], line 8 is story[5].
    assert examples[0].supporting == (0,)
    assert examples[1].supporting == (2,)
    assert examples[1].story[2] == ("daniel", "went", "back", "to", "the", "hallway")
    assert third.supporting == (5,)


def test_new_story_starts_when_id_resets_to_1():
    examples = parse(TASK1_LINES)
    last = examples[-1]
    assert last.story == (("sandra", "travelled", "to", "the", "office"),)
    assert last.supporting == (0,)


def test_task19_no_space_before_tab_comma_answer_two_facts():
    (example,) = parse(TASK19_LINES)
    assert example.question == ("how", "do", "you", "go", "from", "the", "kitchen", "to", "the", "garden")
    assert example.answer == "s,e"  # one label, not two answers
    assert example.supporting == (1, 3)
    assert len(example.story) == 5


def test_task8_comma_answer_is_one_label():
    examples = parse(TASK8_LINES)
    assert [e.answer for e in examples] == ["apple", "apple,football"]
    assert examples[1].supporting == (1, 2)  # lines 2 and 4; line 3 was a question


def test_source_and_task_are_recorded():
    examples = parse_babi(TASK8_LINES, source="qa8.txt", task=8)
    assert examples[1].source == "qa8.txt:5"
    assert all(e.task == 8 for e in examples)


def test_question_without_supporting_field_and_blank_lines_and_crlf():
    examples = parse(["1 Mary went home.\r\n", "", "   ", "2 Where is Mary?\thome\r\n"])
    assert examples == [Example((("mary", "went", "home"),), ("where", "is", "mary"), "home", (), None, "f.txt:4")]


def test_answer_is_lowercased_and_stripped():
    (example,) = parse(["1 Mary went to Paris.", "2 Where is Mary?\t Paris \t1"])
    assert example.answer == "paris"


# --- malformed input: DataError naming file and line --------------------------------------


@pytest.mark.parametrize(
    "lines, line_number, words",
    [
        (["Mary moved to the bathroom."], 1, "expected 'ID sentence'"),  # no leading number
        (["1 Mary went home.", "x2 John left."], 2, "expected 'ID sentence'"),
        (["1"], 1, "expected 'ID sentence'"),  # a number and nothing else
        (["1 Mary went home.", "2 John left.", "4 Mary left."], 3, "line id 4 follows 2"),  # 1, 2, 4
        (["2 Mary went home."], 1, "line id 2 follows 0"),  # does not start at 1
        (["1 Mary went home.", "1 John left.", "3 Where is Mary?\thome\t1"], 3, "line id 3 follows 1"),
        (["1 Where is Mary?\thome\t"], 1, "before any statement"),  # question before any statement
        (["1 Mary went home.", "2 Where is Mary?\thome\t3"], 2, "supporting fact 3"),  # points at itself
        (["1 Mary went home.", "2 Where is Mary?\thome\t7"], 2, "supporting fact 7"),  # nonexistent
        (["1 A went.", "2 Where is A?\thome\t1", "3 Where is A?\thome\t2"], 3, "supporting fact 2"),  # a question
        (["1 Mary went home.", "2 Where is Mary?\thome\tone"], 2, "must be numbers"),
        (["1 Mary went home.", "2 Where is Mary?\thome\t1\textra"], 2, "found 4"),  # too many tab fields
        (["1 Mary went home.", "2 Where is Mary?\t\t1"], 2, "answer"),  # empty answer
        (["1 Mary went home.", "2 Where is Mary?\t  \t1"], 2, "answer"),  # blank answer
        (["1 Mary went home.", "2 Where is Mary?\tthe house\t1"], 2, "answer"),  # two-word answer
        (["1 Mary went home.", "2 ?\thome\t1"], 2, "question has no words"),
        (["1 Mary went home.", "2 ..."], 2, "statement has no words"),
        (["² Mary went home."], 1, "expected 'ID sentence'"),  # a digit int() cannot read
        (["1 Mary went home.", "2 Where is Mary?\thome\t¹"], 2, "must be numbers"),
    ],
)
def test_malformed_lines_raise_data_error_with_file_and_line(lines, line_number, words):
    message = assert_data_error(lines, f"bad.txt:{line_number}", words)
    assert message.startswith(f"bad.txt:{line_number}:")


def test_forward_supporting_fact_is_rejected():
    # Fact 3 is a statement of this story, but it comes after the question.
    lines = ["1 Mary went home.", "2 Where is Mary?\thome\t3", "3 John left."]
    assert_data_error(lines, "bad.txt:2", "supporting fact 3")


def test_supporting_fact_from_previous_story_is_rejected():
    lines = ["1 Mary went home.", "2 John left.", "1 Sandra left.", "2 Where is Sandra?\tout\t2"]
    assert_data_error(lines, "bad.txt:4", "supporting fact 2")


def test_read_file_missing(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        read_babi_file(missing)


def test_read_file_empty(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match=re.escape(str(empty)) + ".*no questions"):
        read_babi_file(empty)


def test_read_file_without_questions(tmp_path):
    path = tmp_path / "statements.txt"
    path.write_text("1 Mary went home.\n2 John left.\n")
    with pytest.raises(DataError, match="no questions"):
        read_babi_file(path)


def test_read_file_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"1 Mary went home.\n2 John left.\n3 Zo\xeb left.\n4 Where is Mary?\thome\t1\n")
    with pytest.raises(DataError) as caught:
        read_babi_file(path)
    assert f"{path}:3:" in str(caught.value)
    assert "UTF-8" in str(caught.value)


def test_read_file_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "qa_bad.txt"
    path.write_text("1 Mary went home.\n2 John left.\n4 Where is Mary?\thome\t1\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:3:")):
        read_babi_file(path)


def test_read_file_parses_fixture_with_task(tmp_path):
    path = tmp_path / "qa8.txt"
    path.write_text("\n".join(TASK8_LINES) + "\n")
    examples = read_babi_file(path, task=8)
    assert [e.answer for e in examples] == ["apple", "apple,football"]
    assert examples[0].source == f"{path}:3"
    assert examples[0].task == 8


# --- writing back --------------------------------------------------------------------------


@pytest.mark.parametrize("lines", [TASK1_LINES, TASK8_LINES, TASK19_LINES])
def test_format_then_parse_round_trips(lines):
    examples = parse(lines)
    again = parse(list(format_babi(examples)))
    strip = lambda es: [(e.story, e.question, e.answer, e.supporting) for e in es]  # noqa: E731
    assert strip(again) == strip(examples)


def test_format_babi_writes_one_numbered_story_per_example():
    examples = parse(TASK8_LINES)
    lines = list(format_babi(examples[1:]))
    assert lines == [
        "1 mary moved to the bathroom",
        "2 mary got the apple there",
        "3 mary picked up the football there",
        "4 what is mary carrying\tapple,football\t2 3",
    ]


# --- task ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("1-3,5", [1, 2, 3, 5]),
        ("4", [4]),
        ("1-20", list(range(1, 21))),
        ("5,1,3", [1, 3, 5]),
        ("2-4, 3-6", [2, 3, 4, 5, 6]),
        ("7-7", [7]),
    ],
)
def test_parse_task_range(spec, expected):
    assert parse_task_range(spec) == expected


@pytest.mark.parametrize("spec", ["", "0", "21", "1-21", "a", "1,,2", "1-", "-3", "1-2-3", "3-1", "3-1,5", "²", "1;2"])
def test_parse_task_range_errors(spec):
    with pytest.raises(DataError, match="bad task list"):
        parse_task_range(spec)


# --- finding the data ----------------------------------------------------------------------


def make_babi_tree(root: Path, files=("qa1_single-supporting-fact_train.txt",), data="en") -> Path:
    folder = root / "tasks_1-20_v1-2"
    (folder / data).mkdir(parents=True)
    for name in files:
        (folder / data / name).write_text("1 Mary went home.\n2 Where is Mary?\thome\t1\n")
    return folder


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No MEMQA_BABI_DIR, and a working directory with no data/ folder."""
    monkeypatch.delenv(BABI_ENV_VAR, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_resolve_data_dir_explicit_beats_env_and_download(clean_env, tmp_path, monkeypatch):
    explicit = make_babi_tree(tmp_path / "explicit")
    env = make_babi_tree(tmp_path / "env")
    make_babi_tree(clean_env / "data")
    monkeypatch.setenv(BABI_ENV_VAR, str(env))
    assert resolve_data_dir(explicit) == explicit
    assert resolve_data_dir(explicit.parent) == explicit  # the folder above tasks_1-20_v1-2 works too


def test_resolve_data_dir_env_beats_download(clean_env, tmp_path, monkeypatch):
    env = make_babi_tree(tmp_path / "env")
    make_babi_tree(clean_env / "data")
    monkeypatch.setenv(BABI_ENV_VAR, str(env))
    assert resolve_data_dir() == env


def test_resolve_data_dir_falls_back_to_downloaded_data(clean_env):
    downloaded = make_babi_tree(clean_env / "data")
    assert resolve_data_dir().resolve() == downloaded.resolve()


def test_resolve_data_dir_finds_en_10k_only(clean_env, tmp_path):
    folder = make_babi_tree(tmp_path / "ten", data="en-10k")
    assert resolve_data_dir(folder) == folder


def test_resolve_data_dir_nothing_found(clean_env):
    assert resolve_data_dir() is None
    with pytest.raises(DataError, match="memqa download"):
        require_data_dir()


def test_resolve_data_dir_explicit_folder_without_tasks_is_an_error(clean_env, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=re.escape(str(empty))):
        resolve_data_dir(empty)


def test_task_file_finds_the_file_and_not_task_10(tmp_path):
    folder = make_babi_tree(tmp_path, files=("qa1_single-supporting-fact_train.txt", "qa10_indefinite-knowledge_train.txt"))
    assert task_file(folder, 1, "train").name == "qa1_single-supporting-fact_train.txt"
    assert task_file(folder, 10, "train").name == "qa10_indefinite-knowledge_train.txt"


def test_task_file_missing_names_the_file(tmp_path):
    folder = make_babi_tree(tmp_path, files=("qa3_three-supporting-facts_test.txt",), data="en-10k")
    with pytest.raises(DataError) as caught:
        task_file(folder, 3, "train", "en-10k")
    message = str(caught.value)
    assert "qa3_*_train.txt" in message and "en-10k" in message


@pytest.mark.parametrize("task, data", [(0, "en"), (21, "en"), (1, "fr")])
def test_task_file_rejects_unknown_task_or_set(tmp_path, task, data):
    folder = make_babi_tree(tmp_path)
    with pytest.raises(DataError):
        task_file(folder, task, "train", data)
