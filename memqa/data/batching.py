"""Examples -> padded id tensors, once per data set; batches are index slices of those.

Stories are stored oldest sentence first, left-aligned in S memory slots; a story longer than
the memory keeps its most recent `memory_size` sentences (Sukhbaatar et al. 2015 §4.1) and its
supporting-fact indices are shifted to match (facts that fell out are dropped).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from memqa.data.babi import Example
from memqa.data.vocab import PAD_ID, UnknownPolicy, Vocab

NO_ANSWER = -1  # answer id of a test answer the reader never saw (always counted wrong)
NO_FACT = -1  # padding in supporting_ids


class MemqaWarning(UserWarning):
    """Something the user should know about their data that is not an error."""


class Batch(NamedTuple):
    """B questions. Shapes: story_ids (B, S, W), memory_mask (B, S) True = a real sentence,
    question_ids (B, Wq), answer_ids (B,), supporting_ids (B, F) memory slots, NO_FACT padded."""

    story_ids: Tensor
    memory_mask: Tensor
    question_ids: Tensor
    answer_ids: Tensor
    supporting_ids: Tensor

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(*(t.to(device) for t in self))

    @property
    def story_lengths(self) -> Tensor:
        return self.memory_mask.sum(dim=1)  # (B,)


@dataclass
class EncodedSet:
    """A whole data set as padded tensors (N questions); `batch(index)` slices it."""

    tensors: Batch
    truncated_stories: int = 0
    unknown_words: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return self.tensors.answer_ids.shape[0]

    def batch(self, index: Tensor | slice) -> Batch:
        """Rows `index`, with memory slots trimmed to the longest story among them."""
        rows = Batch(*(t[index] for t in self.tensors))
        longest = max(int(rows.memory_mask.sum(dim=1).max()), 1)
        if longest < rows.memory_mask.shape[1]:
            rows = rows._replace(story_ids=rows.story_ids[:, :longest], memory_mask=rows.memory_mask[:, :longest])
        return rows

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                length_buckets: int = 0):
        """Batches of `batch_size` questions, in order or shuffled. With shuffle and `length_buckets` N > 0,
        each run of N batches of the shuffled order is sorted by story length before it is cut into batches,
        and the batches are shuffled (TrainConfig.length_buckets)."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        if not (shuffle and length_buckets):
            for start in range(0, len(self), batch_size):
                yield self.batch(order[start : start + batch_size])
            return
        lengths = self.tensors.memory_mask.sum(dim=1)  # (N,)
        groups = []
        for chunk in order.split(batch_size * length_buckets):
            groups.extend(chunk[torch.argsort(lengths[chunk], stable=True)].split(batch_size))
        for group in torch.randperm(len(groups), generator=generator).tolist():
            yield self.batch(groups[group])


def encode_examples(examples: Sequence[Example], vocab: Vocab, memory_size: int,
                    unknown: UnknownPolicy = "ignore") -> EncodedSet:
    """Encode `examples`; unknown words are dropped (or raise, under unknown="error"; or, under
    "keep", get ids past the vocabulary, one per distinct word of an example: memqa.data.vocab).
    Stories cut to the memory are counted in `truncated_stories` (the caller tells the user once)."""
    if not examples:
        raise ValueError("encode_examples needs at least one example")
    stories, questions, unknown_words, truncated = [], [], set(), 0
    for example in examples:
        sentences = example.story[-memory_size:]
        truncated += len(example.story) > memory_size
        story, unseen = [], {}
        for sentence in sentences:
            ids, missing = vocab.word_ids(sentence, unknown, unseen)
            story.append(ids)
            unknown_words.update(missing)
        ids, missing = vocab.word_ids(example.question, unknown, unseen)
        unknown_words.update(missing)
        stories.append(story)
        questions.append(ids)
    tensors = Batch(*_story_tensors(stories), _pad_rows(questions),
                    torch.tensor([vocab.answer_id(e.answer) if vocab.has_answer(e.answer) else NO_ANSWER
                                  for e in examples], dtype=torch.long),
                    _supporting_tensor(examples, memory_size))
    return EncodedSet(tensors, truncated, frozenset(unknown_words))


def _story_tensors(stories: list[list[list[int]]]) -> tuple[Tensor, Tensor]:
    slots = max(max(len(story) for story in stories), 1)
    words = max((len(s) for story in stories for s in story), default=1) or 1
    story_ids = np.full((len(stories), slots, words), PAD_ID, dtype=np.int64)  # (N, S, W)
    memory_mask = np.zeros((len(stories), slots), dtype=bool)  # (N, S)
    for n, story in enumerate(stories):
        memory_mask[n, : len(story)] = True
        for s, sentence in enumerate(story):
            story_ids[n, s, : len(sentence)] = sentence
    return torch.from_numpy(story_ids), torch.from_numpy(memory_mask)


def _pad_rows(rows: list[list[int]]) -> Tensor:
    width = max(max((len(r) for r in rows), default=1), 1)
    out = np.full((len(rows), width), PAD_ID, dtype=np.int64)  # (N, Wq)
    for n, row in enumerate(rows):
        out[n, : len(row)] = row
    return torch.from_numpy(out)


def _supporting_tensor(examples: Sequence[Example], memory_size: int) -> Tensor:
    kept = []
    for example in examples:
        dropped = max(len(example.story) - memory_size, 0)
        kept.append([slot - dropped for slot in example.supporting if slot >= dropped])
    width = max(max((len(k) for k in kept), default=1), 1)
    out = np.full((len(examples), width), NO_FACT, dtype=np.int64)  # (N, F)
    for n, slots in enumerate(kept):
        out[n, : len(slots)] = slots
    return torch.from_numpy(out)


def split_train_valid(examples: Sequence[Example], valid_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded split holding out about `valid_fraction` of the questions (§4.1: 10%) for validation.

    Whole stories go to one side: the questions of a story share its sentences (and in task 20
    a later question's story states an earlier answer), so splitting them would leak. Each task is
    split on its own with the same seed, so a joint reader's validation split is the union of the
    per-task readers' splits and the two are scored on the same questions."""
    by_task: dict[int | None, list[int]] = {}
    for index, example in enumerate(examples):
        by_task.setdefault(example.task, []).append(index)
    valid = set().union(*(_valid_stories([examples[i] for i in indices], indices, valid_fraction, seed)
                          for indices in by_task.values()))
    if not valid and len(examples) > 1:  # every task too small to give up a question: split them together
        valid = _valid_stories(examples, range(len(examples)), valid_fraction, seed)
    return ([e for i, e in enumerate(examples) if i not in valid], [e for i, e in enumerate(examples) if i in valid])


def _story_key(example: Example) -> tuple:
    """Which story of which file an example's question belongs to."""
    return example.task, example.source.rsplit(":", 1)[0], example.story_id


def story_folds(examples: Sequence[Example], folds: int, seed: int) -> list[tuple[list[Example], list[Example]]]:
    """`folds` (train, validation) splits for k-fold cross-validation: the stories of each task,
    shuffled by `seed`, are dealt to the fold with the fewest of that task's questions so far, so
    every question is validated on exactly once, whole stories stay on one side (as in
    split_train_valid), and each fold holds about 1/folds of every task."""
    if folds < 2:
        raise ValueError("folds must be at least 2")
    fold_of: dict[int, int] = {}
    by_task: dict[int | None, dict[tuple, list[int]]] = {}
    for index, example in enumerate(examples):
        by_task.setdefault(example.task, {}).setdefault(_story_key(example), []).append(index)
    for task_stories in by_task.values():
        groups = list(task_stories.values())
        random.Random(seed).shuffle(groups)
        sizes = [0] * folds
        for group in groups:
            fold = min(range(folds), key=sizes.__getitem__)  # the first of the smallest
            sizes[fold] += len(group)
            fold_of.update((index, fold) for index in group)
    if len(set(fold_of.values())) < folds:
        stories = sum(len(task_stories) for task_stories in by_task.values())
        raise ValueError(f"{stories} stories cannot fill {folds} folds: use fewer folds")
    return [([e for i, e in enumerate(examples) if fold_of[i] != k], [e for i, e in enumerate(examples) if fold_of[i] == k])
            for k in range(folds)]


def _valid_stories(examples: Sequence[Example], indices: Sequence[int], valid_fraction: float, seed: int) -> set[int]:
    """The indices (from `indices`, one per example) held out: whole stories, shuffled by `seed`,
    until about `valid_fraction` of the questions and never all of them."""
    stories: dict[tuple, list[int]] = {}
    for index, example in zip(indices, examples):
        stories.setdefault(_story_key(example), []).append(index)
    groups = list(stories.values())
    random.Random(seed).shuffle(groups)
    wanted = max(1, round(len(examples) * valid_fraction)) if len(examples) > 1 else 0
    valid: set[int] = set()
    for group in groups:
        if len(valid) >= wanted or len(valid) + len(group) >= len(examples):
            break
        valid.update(group)
    return valid
