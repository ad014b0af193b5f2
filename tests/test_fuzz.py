"""Property-based tests (hypothesis): arbitrary text into the bAbI parser, the vocabulary and
Reader.answer never escapes as anything but a MemqaError, and parse -> format -> parse round-trips.

Case counts per test are set by FUZZ_EXAMPLES (docs/reliability.md lists them; run with
`pytest tests/test_fuzz.py --hypothesis-show-statistics` to see them). MEMQA_FUZZ_EXAMPLES=5000 fuzzes harder.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from memqa.data.babi import Example, format_babi, parse_babi, parse_task_range, read_babi_file, tokenize
from memqa.data.vocab import Vocab
from memqa.errors import CheckpointError, DataError, MemqaError, VocabularyError
from memqa.reader import split_story

FUZZ_EXAMPLES = int(os.environ.get("MEMQA_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW_FUZZ = settings(FUZZ, max_examples=max(FUZZ_EXAMPLES // 3, 10))  # each case runs the reader

# Text that often looks like bAbI: ids, words, tabs, odd whitespace and a few non-ASCII letters.
WORDS = st.text(alphabet=string.ascii_letters + "  ,.?'-éİßΣ²¹\u00a0\u2028\x0b\x1c", max_size=30)
IDS = st.one_of(st.integers(0, 12).map(str), st.text(alphabet="0123456789²", min_size=1, max_size=5),
                st.just("1" * 5000))
FACTS = st.lists(IDS, max_size=3).map(" ".join)
BABI_LINES = st.one_of(
    st.tuples(IDS, WORDS).map(lambda p: f"{p[0]} {p[1]}"),
    st.tuples(IDS, WORDS, WORDS, FACTS).map(lambda p: f"{p[0]} {p[1]}\t{p[2]}\t{p[3]}"),
    st.tuples(IDS, WORDS, WORDS).map(lambda p: f"{p[0]} {p[1]}\t{p[2]}"),
    st.text(max_size=40),
)
FIELD = st.text(alphabet=string.ascii_lowercase + ",'éİ \u00a0\u2028\x0b\x1c\r", min_size=1, max_size=6)
WORD = st.text(alphabet=string.ascii_letters + "'éİßΣ0123456789", min_size=1, max_size=7)
WORDY = st.tuples(st.lists(WORD, min_size=1, max_size=6), st.sampled_from([" ", "  ", " \u00a0", "\x0b "]),
                  st.sampled_from(["", ".", "?", " ."])).map(lambda p: p[1].join(p[0]) + p[2])
SENTENCE = st.one_of(WORDY, WORDY, WORDY, WORDS.filter(bool))  # now and then any text, words or none
ANSWER = st.one_of(WORD.map(str.lower), st.lists(WORD, min_size=2, max_size=3).map(",".join), FIELD)


@st.composite
def near_babi(draw):
    """Well-numbered stories (new ones now and then) of random sentences, answers and supporting facts,
    the facts mostly earlier statements; one line in eight files is replaced by anything at all."""
    lines, line_id, statements = [], 0, []
    for _ in range(draw(st.integers(1, 10))):
        if line_id and draw(st.integers(0, 5)) == 0:
            line_id, statements = 0, []
        line_id += 1
        if statements and draw(st.integers(0, 2)) == 0:
            facts = draw(st.lists(st.one_of(st.sampled_from(statements), st.integers(0, line_id + 1)), max_size=2))
            lines.append(f"{line_id} {draw(SENTENCE)}{draw(st.sampled_from(['', ' ']))}\t{draw(ANSWER)}\t"
                         + " ".join(map(str, facts)))
        else:
            lines.append(f"{line_id} {draw(SENTENCE)}")
            statements.append(line_id)
    if draw(st.integers(0, 7)) == 0:
        lines[draw(st.integers(0, len(lines) - 1))] = draw(BABI_LINES)
    return lines


ANY_LINES = st.one_of(near_babi(), st.lists(BABI_LINES, max_size=12), st.lists(st.text(), max_size=8))


def fields(examples):
    return [(e.story, e.question, e.answer, e.supporting) for e in examples]


# --- the parser ------------------------------------------------------------------------------


@FUZZ
@given(ANY_LINES)
@example(["1" * 5000 + " Mary went home."])
@example(["1 Mary went home.", "2 Where is Mary?\thome\t" + "1" * 5000])
def test_parser_raises_only_data_errors(lines):
    try:
        examples = parse_babi(lines, source="fuzz.txt")
    except DataError as error:
        assert str(error).startswith("fuzz.txt:") and "\n" not in str(error)
        event("refused with a DataError")
        return
    event("parsed")
    for item in examples:
        assert item.question and item.story and item.answer
        assert all(0 <= slot < len(item.story) for slot in item.supporting)


@FUZZ
@given(st.one_of(near_babi(), ANY_LINES))
def test_whatever_parses_round_trips_through_format(lines):
    try:
        examples = parse_babi(lines)
    except DataError:
        return
    if not examples:  # statements only: read_babi_file rightly refuses a file without questions
        return
    event("parsed, so round-tripped")
    written = list(format_babi(examples))
    with tempfile.TemporaryDirectory() as folder:  # through a real file, as `memqa` reads one
        path = Path(folder) / "written.txt"
        path.write_text("\n".join(written) + "\n", encoding="utf-8")
        again = read_babi_file(path)
    assert fields(again) == fields(examples)
    assert list(format_babi(again)) == written


TOKENS = st.text(alphabet=string.ascii_lowercase + "0123456789'_éßσ", min_size=1, max_size=8).filter(
    lambda t: tokenize(t) == (t,))
SENTENCES = st.lists(TOKENS, min_size=1, max_size=6).map(tuple)
ANSWERS = st.lists(TOKENS, min_size=1, max_size=2).map(",".join)


@st.composite
def examples(draw):
    story = tuple(draw(st.lists(SENTENCES, min_size=1, max_size=8)))
    facts = draw(st.lists(st.integers(0, len(story) - 1), max_size=3))
    return Example(story, draw(SENTENCES), draw(ANSWERS), tuple(facts))


@FUZZ
@given(st.lists(examples(), min_size=1, max_size=5))
def test_examples_round_trip_through_format_and_parse(items):
    again = parse_babi(list(format_babi(items)))
    assert fields(again) == fields(items)


@FUZZ
@given(st.binary(max_size=300))
def test_files_of_arbitrary_bytes_raise_only_data_errors(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.txt"
        path.write_bytes(data)
        try:
            read_babi_file(path)
        except DataError as error:
            assert str(error).startswith(str(path)) and "\n" not in str(error)


@FUZZ
@given(st.text())
def test_tokenize_is_stable(text):
    words = tokenize(text)
    assert tokenize(" ".join(words)) == words


@FUZZ
@given(st.one_of(st.text(max_size=20), st.text(alphabet="0123456789-, ²", max_size=12)))
def test_task_ranges_raise_only_data_errors(spec):
    try:
        tasks = parse_task_range(spec)
    except DataError as error:
        assert len(str(error)) < 200
        return
    assert tasks and all(1 <= task <= 20 for task in tasks)


# --- the vocabulary ----------------------------------------------------------------------------


@FUZZ
@given(st.lists(examples(), min_size=1, max_size=5), st.lists(st.text(max_size=10), max_size=10))
def test_vocab_builds_encodes_and_round_trips(items, tokens):
    vocab = Vocab.build(items)
    with tempfile.TemporaryDirectory() as folder:
        vocab.save(Path(folder) / "vocab.json")
        assert Vocab.load(Path(folder) / "vocab.json") == vocab
    ids, unknown = vocab.word_ids(tokens, "ignore")
    assert all(0 < i < vocab.num_words for i in ids) and len(ids) + len(unknown) == len(tokens)
    try:
        vocab.word_ids(tokens, "error")
    except VocabularyError:
        assert unknown
    assert [vocab.answer_id(e.answer) for e in items] == [vocab.answers.index(e.answer) for e in items]
    vocab.answer_word_ids()  # every answer label is a word too


JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
VOCAB_FILES = st.one_of(
    st.binary(max_size=100),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"words": JSON_VALUES, "answers": JSON_VALUES}).map(lambda v: json.dumps(v).encode()),
    st.tuples(st.lists(st.text(max_size=5), max_size=4), st.lists(st.text(max_size=5), max_size=3)).map(
        lambda p: json.dumps({"words": ["<pad>", *p[0]], "answers": p[1]}).encode()),
)


@FUZZ
@given(VOCAB_FILES)
def test_vocab_files_of_any_content_load_or_raise_checkpoint_errors(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vocab.json"
        path.write_bytes(data)
        try:
            vocab = Vocab.load(path)
        except CheckpointError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            return
        assert vocab.words[0] == "<pad>" and vocab.answers


# --- Reader.answer -----------------------------------------------------------------------------

KNOWN = ["Mary went to the kitchen.", "John moved to the office.", "Sandra journeyed to the garden.",
         "3 Where is Mary?\tkitchen\t1", "Daniel went back to the hallway", "", "...", "1 Zorro flew home."]
STORIES = st.one_of(st.text(max_size=200), st.lists(BABI_LINES, max_size=15),
                    st.lists(st.one_of(st.sampled_from(KNOWN), SENTENCE), max_size=30).map("\n".join),
                    st.lists(st.one_of(st.sampled_from(KNOWN), SENTENCE), max_size=14).map(" ".join))
QUESTIONS = st.one_of(st.sampled_from(["Where is Mary?", "where is JOHN", "Where is Zorro now?", "Is Sandra?"]),
                      st.sampled_from(["Zorro?", "?", "", "Where\tis\u2028Mary"]), st.text(max_size=40), SENTENCE)


@SLOW_FUZZ
@given(story=STORIES, question=QUESTIONS)
def test_answer_raises_only_memqa_errors(trained_reader, story, question):
    try:
        answer = trained_reader.answer(story, question)
    except MemqaError as error:
        assert "\n" not in str(error)
        event(f"refused with a {type(error).__name__}")
        return
    event("answered")
    assert answer.answer in trained_reader.vocab.answers and 0.0 <= answer.confidence <= 1.0
    kept = len(split_story(story))
    assert len(answer.sentences) == min(kept, trained_reader.memory_size)
    assert answer.dropped_sentences == kept - len(answer.sentences)
    assert all(len(hop.weights) == len(answer.sentences) for hop in answer.hops)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    import torch

    torch.set_num_threads(1)
