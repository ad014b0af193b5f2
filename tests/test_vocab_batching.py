"""memqa.data.vocab and memqa.data.batching: ids, unknown words, padding, truncation, the split."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch

from memqa.data.babi import Example, parse_babi
from memqa.data.batching import NO_ANSWER, NO_FACT, encode_examples, split_train_valid, story_folds
from memqa.data.vocab import PAD, PAD_ID, Vocab
from memqa.errors import CheckpointError, VocabularyError


def example(story, question, answer, supporting=()):
    return Example(tuple(tuple(s.split()) for s in story), tuple(question.split()), answer, tuple(supporting))


EXAMPLES = [
    example(["mary went to the kitchen", "john went to the garden"], "where is mary", "kitchen", [0]),
    example(["sandra moved to the office"], "where is sandra", "office", [0]),
]


# --- Vocab ---------------------------------------------------------------------------------


def test_build_sorted_with_pad_first():
    vocab = Vocab.build(EXAMPLES)
    assert vocab.words[PAD_ID] == PAD and PAD_ID == 0
    assert list(vocab.words[1:]) == sorted(
        {"mary", "went", "to", "the", "kitchen", "john", "garden", "sandra", "moved", "office", "where", "is"})
    assert vocab.answers == ("kitchen", "office")
    assert vocab.num_words == 13 and vocab.num_answers == 2


def test_answer_labels_are_words_too():
    # A comma-joined label is one token, so a reader can tie its answer matrix to a word embedding.
    vocab = Vocab.build([example(["the office is east of the hallway"], "how do you go", "n,w")])
    assert vocab.answers == ("n,w",)
    assert "n,w" in vocab.words and vocab.answer_word_ids() == [vocab.words.index("n,w")]


def test_word_ids_known_words():
    vocab = Vocab.build(EXAMPLES)
    ids, missing = vocab.word_ids(("where", "is", "mary"))
    assert [vocab.words[i] for i in ids] == ["where", "is", "mary"]
    assert PAD_ID not in ids and missing == []


def test_unknown_policy_error_raises():
    vocab = Vocab.build(EXAMPLES)
    with pytest.raises(VocabularyError, match="zebra"):
        vocab.word_ids(("where", "is", "zebra"), "error")


def test_unknown_policy_ignore_drops_and_reports():
    vocab = Vocab.build(EXAMPLES)
    ids, missing = vocab.word_ids(("where", "is", "zebra", PAD), "ignore")
    assert [vocab.words[i] for i in ids] == ["where", "is"]
    assert missing == ["zebra", PAD]  # the pad symbol is never a word


def test_answer_ids():
    vocab = Vocab.build(EXAMPLES)
    assert vocab.answer_id("office") == 1
    assert vocab.has_answer("kitchen") and not vocab.has_answer("moon")
    with pytest.raises(VocabularyError, match="moon"):
        vocab.answer_id("moon")


def test_save_load_round_trip(tmp_path):
    vocab = Vocab.build(EXAMPLES)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded == vocab
    assert loaded.word_ids(("where", "is", "mary")) == vocab.word_ids(("where", "is", "mary"))


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{\"words\": [\"<pad>\", \"a\"], \"answers\": [\"x\"]",  # truncated
        b"\xff\xfe not utf-8",
        json.dumps([PAD, "a"]).encode(),
        json.dumps({"words": [PAD, "a"]}).encode(),  # no answers
        json.dumps({"words": [PAD, "a"], "answers": ["x"], "extra": 1}).encode(),
        json.dumps({"words": ["a", PAD], "answers": ["x"]}).encode(),  # PAD not first
        json.dumps({"words": [PAD, "a", "a"], "answers": ["x"]}).encode(),  # duplicate
        json.dumps({"words": [PAD, 3], "answers": ["x"]}).encode(),  # not strings
        json.dumps({"words": [PAD, "a"], "answers": []}).encode(),
        json.dumps({"words": PAD, "answers": ["x"]}).encode(),
    ],
)
def test_load_damaged_vocab_raises_checkpoint_error(tmp_path, content):
    path = tmp_path / "vocab.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="vocab.json"):
        Vocab.load(path)


def test_load_missing_vocab(tmp_path):
    with pytest.raises(CheckpointError, match="vocab.json"):
        Vocab.load(tmp_path / "vocab.json")


# --- encode_examples -----------------------------------------------------------------------


def test_encode_shapes_and_masks():
    vocab = Vocab.build(EXAMPLES)
    data = encode_examples(EXAMPLES, vocab, memory_size=10)
    story_ids, memory_mask, question_ids, answer_ids, supporting_ids = data.tensors
    assert len(data) == 2
    assert story_ids.shape == (2, 2, 5)  # N, S (longest story), W (longest sentence)
    assert memory_mask.tolist() == [[True, True], [True, False]]
    assert story_ids.dtype == torch.long
    assert (story_ids[1, 1] == PAD_ID).all()  # the padded slot
    assert [vocab.words[i] for i in story_ids[1, 0, :4].tolist()] == ["sandra", "moved", "to", "the"]
    assert [vocab.words[i] for i in story_ids[0, 1].tolist()] == ["john", "went", "to", "the", "garden"]
    assert question_ids.shape == (2, 3)
    assert answer_ids.tolist() == [0, 1]
    assert supporting_ids.tolist() == [[0], [0]]
    assert data.tensors.story_lengths.tolist() == [2, 1]


def test_encode_pads_words_within_a_sentence():
    examples = [example(["a b c", "d"], "q", "x"), example(["e"], "q r", "y")]
    vocab = Vocab.build(examples)
    story_ids, memory_mask, question_ids, *_ = encode_examples(examples, vocab, 10).tensors
    assert story_ids.shape == (2, 2, 3)
    assert (story_ids[0, 1, 1:] == PAD_ID).all() and story_ids[0, 1, 0] != PAD_ID
    assert (question_ids[0, 1:] == PAD_ID).all() and (question_ids[1] != PAD_ID).all()


def test_encode_unknown_words_and_answers_under_ignore():
    vocab = Vocab.build(EXAMPLES)
    new = [example(["zebra went to the kitchen"], "where is zebra", "moon", [0])]
    data = encode_examples(new, vocab, 10, unknown="ignore")
    assert data.unknown_words == frozenset({"zebra"})
    assert data.tensors.answer_ids.tolist() == [NO_ANSWER]
    assert [vocab.words[i] for i in data.tensors.story_ids[0, 0].tolist() if i != PAD_ID] == ["went", "to", "the",
                                                                                              "kitchen"]
    with pytest.raises(VocabularyError):
        encode_examples(new, vocab, 10, unknown="error")


def test_long_story_keeps_most_recent_and_shifts_facts():
    story = [f"s{i} w" for i in range(7)]
    long = example(story, "q", "x", supporting=[1, 5, 6])  # fact 1 falls out of a memory of 4
    short = example(story[:3], "q", "x", supporting=[2])
    vocab = Vocab.build([long, short])
    data = encode_examples([long, short, long], vocab, memory_size=4)
    assert data.truncated_stories == 2  # counted here; fit() tells the user once (test_train.py)
    story_ids, memory_mask, *_, supporting_ids = data.tensors
    assert story_ids.shape[1] == 4
    kept = [vocab.words[i] for i in story_ids[0, :, 0].tolist()]
    assert kept == ["s3", "s4", "s5", "s6"]  # the most recent four, oldest first
    assert supporting_ids[0].tolist() == [2, 3]  # 5 -> 2, 6 -> 3; 1 dropped
    assert supporting_ids[1].tolist() == [2, NO_FACT]
    assert memory_mask[1].tolist() == [True, True, True, False]


def test_no_warning_when_stories_fit():
    vocab = Vocab.build(EXAMPLES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = encode_examples(EXAMPLES, vocab, memory_size=2)
    assert data.truncated_stories == 0


def test_encode_requires_examples():
    with pytest.raises(ValueError):
        encode_examples([], Vocab.build(EXAMPLES), 10)


def test_batch_trims_slots_to_longest_story():
    examples = [example(["a"] * 5, "q", "x"), example(["b"], "q", "y"), example(["c", "c"], "q", "x")]
    data = encode_examples(examples, Vocab.build(examples), 10)
    batch = data.batch(torch.tensor([1, 2]))
    assert batch.story_ids.shape[:2] == (2, 2)
    assert batch.memory_mask.shape == (2, 2)
    assert batch.answer_ids.tolist() == [1, 0]
    sizes = [len(b.answer_ids) for b in data.batches(2)]
    assert sizes == [2, 1]
    shuffled = torch.cat([b.answer_ids for b in data.batches(2, shuffle=True, generator=torch.Generator().manual_seed(1))])
    assert sorted(shuffled.tolist()) == sorted(data.tensors.answer_ids.tolist())


def test_length_buckets_group_stories_of_a_length_and_keep_every_question():
    # 48 questions, stories of 1-12 sentences; runs of 3 batches of 4 are sorted by length before they are cut
    lengths = [1 + (7 * i) % 12 for i in range(48)]
    examples = [example([f"s{i}"] * n, "q", "x" if i % 2 else "y") for i, n in enumerate(lengths)]
    data = encode_examples(examples, Vocab.build(examples), 20)

    def drawn(buckets, seed=3):
        return list(data.batches(4, shuffle=True, generator=torch.Generator().manual_seed(seed), length_buckets=buckets))

    def steps(batches):  # what a reader stepping through each batch's longest story runs
        return sum(b.memory_mask.shape[1] for b in batches)

    grouped, random = drawn(3), drawn(0)
    assert sorted(torch.cat([b.story_ids[:, 0, 0] for b in grouped]).tolist()) == \
        sorted(data.tensors.story_ids[:, 0, 0].tolist())  # every question once (s<i> is question i's word)
    assert steps(grouped) < steps(random)
    assert all((b.story_lengths.max() - b.story_lengths.min()) <= 6 for b in grouped)
    assert [b.story_lengths.tolist() for b in grouped] == [b.story_lengths.tolist() for b in drawn(3)]  # seeded
    assert [b.story_lengths.tolist() for b in grouped] != [b.story_lengths.tolist() for b in drawn(3, seed=4)]
    in_order = [b.answer_ids.tolist() for b in data.batches(4, length_buckets=3)]  # no shuffle: in order, as without
    assert in_order == [b.answer_ids.tolist() for b in data.batches(4)]


# --- split_train_valid -----------------------------------------------------------------------


def stories(n, questions_per_story=1):
    """n parsed stories; every question's answer names its story and question: 's<i>q<j>'."""
    lines = []
    for i in range(n):
        lines.append("1 Mary went home.")
        lines += [f"{j + 2} Where is Mary?\ts{i}q{j}\t1" for j in range(questions_per_story)]
    return parse_babi(lines, source="many.txt")


def test_split_is_ten_percent_disjoint_and_complete():
    examples = stories(100)
    train, valid = split_train_valid(examples, 0.1, seed=0)
    assert len(valid) == 10 and len(train) == 90
    train_ids, valid_ids = {e.answer for e in train}, {e.answer for e in valid}
    assert not train_ids & valid_ids
    assert train_ids | valid_ids == {e.answer for e in examples}


def test_split_is_seeded():
    examples = stories(100)
    first = split_train_valid(examples, 0.1, seed=3)
    assert split_train_valid(examples, 0.1, seed=3) == first
    assert split_train_valid(examples, 0.1, seed=4)[1] != first[1]
    assert [e.answer for e in first[1]] != [e.answer for e in examples[90:]]  # random, not the tail


def test_split_keeps_each_story_on_one_side():
    examples = stories(40, questions_per_story=3)
    train, valid = split_train_valid(examples, 0.1, seed=0)
    assert 9 <= len(valid) <= 15 and len(train) + len(valid) == 120
    story_of = lambda e: e.answer.split("q")[0]  # noqa: E731
    assert not {story_of(e) for e in train} & {story_of(e) for e in valid}


def test_split_small_sets():
    train, valid = split_train_valid(stories(5), 0.1, seed=0)
    assert len(valid) == 1 and len(train) == 4


def test_split_of_several_tasks_is_the_union_of_their_own_splits():
    # A joint reader must be validated on the questions each per-task reader was validated on.
    tasks = {task: [dataclasses.replace(e, task=task) for e in stories(30 + 10 * task, questions_per_story=2)]
             for task in (1, 2, 3)}
    pooled = [e for examples in tasks.values() for e in examples]
    train, valid = split_train_valid(pooled, 0.1, seed=5)
    expected = [split_train_valid(examples, 0.1, seed=5) for examples in tasks.values()]
    assert valid == [e for _, v in expected for e in v]
    assert train == [e for t, _ in expected for e in t]


def test_split_of_tasks_too_small_to_split_alone_still_validates():
    pooled = [dataclasses.replace(e, task=task) for task, e in enumerate(stories(2), start=1)]
    train, valid = split_train_valid(pooled, 0.1, seed=0)
    assert len(train) == 1 and len(valid) == 1


# --- story_folds -----------------------------------------------------------------------------


def test_folds_validate_every_question_once_on_whole_stories():
    examples = stories(23, questions_per_story=3)
    folds = story_folds(examples, 5, seed=0)
    assert len(folds) == 5
    story_of = lambda e: e.answer.split("q")[0]  # noqa: E731
    validated = [e.answer for _, valid in folds for e in valid]
    assert sorted(validated) == sorted(e.answer for e in examples)  # each question in exactly one fold
    for train, valid in folds:
        assert len(train) + len(valid) == len(examples)
        assert not {story_of(e) for e in train} & {story_of(e) for e in valid}
        assert len(valid) in (12, 15)  # 23 stories of 3 questions dealt evenly: 5, 5, 5, 4, 4 stories


def test_folds_are_seeded_and_balanced_per_task():
    tasks = {task: [dataclasses.replace(e, task=task) for e in stories(10 * task)] for task in (1, 2)}
    pooled = [e for examples in tasks.values() for e in examples]
    folds = story_folds(pooled, 10, seed=4)
    assert story_folds(pooled, 10, seed=4) == folds
    assert story_folds(pooled, 10, seed=5) != folds
    for _, valid in folds:  # one story of task 1 and two of task 2 in every fold
        assert sorted(e.task for e in valid) == [1, 2, 2]


def test_folds_need_enough_stories():
    with pytest.raises(ValueError, match="3 stories cannot fill 4 folds"):
        story_folds(stories(3), 4, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        story_folds(stories(3), 1, seed=0)
