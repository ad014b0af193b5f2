"""Reader: a trained model with its vocabulary, ready to answer questions about any story."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from memqa.checkpoint import load_reader_files, save_reader
from memqa.data.babi import Example, tokenize
from memqa.data.batching import EncodedSet, encode_examples
from memqa.data.vocab import Vocab
from memqa.errors import CheckpointError, DataError, VocabularyError
from memqa.models.base import ReaderModel
from memqa.train import evaluate_set

_LEADING_ID = re.compile(r"^\s*\d+\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class HopAttention:
    """How strongly one hop attended to each sentence kept in memory (oldest first)."""

    weights: tuple[float, ...]

    @property
    def empty(self) -> float:
        """Attention left on the memory's empty slots (MemN2N's null-padded memory)."""
        return max(0.0, 1.0 - sum(self.weights))

    def top(self, count: int = 3) -> list[tuple[int, float]]:
        """(sentence index, weight) of the `count` most attended sentences, strongest first."""
        return sorted(enumerate(self.weights), key=lambda item: -item[1])[:count]


@dataclass(frozen=True)
class Answer:
    answer: str
    confidence: float  # softmax probability of the answer
    sentences: tuple[str, ...]  # the story sentences held in memory, oldest first
    hops: tuple[HopAttention, ...]  # one per hop; empty for readers without attention
    unknown_words: tuple[str, ...] = ()  # words the reader never saw (ignored, or read as unseen words by MemNN)
    dropped_sentences: int = 0  # oldest sentences that did not fit in memory
    alternatives: tuple[tuple[str, float], ...] = field(default=())  # next most likely answers


def split_story(story: str | Sequence[str]) -> list[str]:
    """Sentences of a story: plain text (one or more sentences a line) or bAbI-numbered lines.
    Question lines of a bAbI file (they hold a tab) are skipped."""
    lines = story.splitlines() if isinstance(story, str) else list(story)
    sentences = []
    for line in lines:
        if "\t" in line:
            continue
        line = _LEADING_ID.sub("", line).strip()
        sentences.extend(part.strip() for part in _SENTENCE_END.split(line) if part.strip())
    return sentences


class Reader:
    """A trained reader: `answer(story, question)`, `evaluate(examples)`, `save_pretrained(dir)`."""

    def __init__(self, model: ReaderModel, vocab: Vocab, info: dict[str, Any] | None = None):
        self.model = model.eval()
        self.vocab = vocab
        self.info = dict(info or {})

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def memory_size(self) -> int:
        return self.model.config.encoder.memory_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Reader":
        model, vocab, info = load_reader_files(path, device)
        if vocab is None:  # e.g. an NTM trained on an algorithmic task: it reads bits, not stories
            raise CheckpointError(f"{path}: holds a model of bit sequences ({model.kind}), which answers no questions; "
                                  f"score it with `memqa evaluate {path} --lengths ...`")
        return cls(model, vocab, info)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        return save_reader(path, self.model, self.vocab, self.info)

    def encode(self, examples: Sequence[Example]) -> EncodedSet:
        return encode_examples(examples, self.vocab, self.memory_size, unknown=self.model.unknown_words)

    def evaluate(self, examples: Sequence[Example]) -> float:
        """Accuracy on `examples` (answers never seen in training count as wrong)."""
        return evaluate_set(self.model, self.encode(examples), device=self.device)[1]

    @torch.no_grad()
    def answer(self, story: str | Sequence[str], question: str) -> Answer:
        """Answer `question` about `story` (plain sentences or bAbI lines). Unknown words are listed
        in the result: MemN2N ignores them, MemNN reads them by exact matches (and context features
        when trained with them); a story longer than memory keeps its latest sentences."""
        sentences = split_story(story)
        if not sentences:
            raise DataError("the story is empty: give at least one sentence before the question")
        question_words = tokenize(question)
        if not question_words:
            raise DataError(f"the question {question!r} has no words")
        known, unknown_question = self.vocab.word_ids(question_words, "ignore")
        if not known:
            raise VocabularyError(f"none of the question's words {list(question_words)} are known to this reader; "
                                  "rephrase it with words from its training stories")
        kept = sentences[-self.memory_size :]
        example = Example(tuple(tokenize(s) for s in sentences), question_words, self.vocab.answers[0])
        encoded = self.encode([example])
        output = self.model(encoded.batch(slice(None)).to(self.device))
        probabilities = output.logits[0].softmax(dim=0)  # (A,)
        ranked = probabilities.argsort(descending=True).tolist()
        hops = () if output.attention is None else tuple(
            HopAttention(tuple(w[: len(kept)])) for w in output.attention[0].tolist())  # (K, S)
        unknown = sorted(set(encoded.unknown_words) | set(unknown_question))
        return Answer(self.vocab.answers[ranked[0]], float(probabilities[ranked[0]]), tuple(kept), hops,
                      tuple(unknown), len(sentences) - len(kept),
                      tuple((self.vocab.answers[i], float(probabilities[i])) for i in ranked[1:4]))


def load_reader(path: str | os.PathLike, device: str | torch.device = "cpu") -> Reader:
    """Load a saved reader folder (strict: a damaged or mismatched folder raises CheckpointError)."""
    return Reader.from_pretrained(path, device)
