"""Word and answer vocabularies (the small job torchtext's Vocab used to do).

Word id 0 is the null symbol that pads sentences and stories; its embedding is fixed at
zero (Sukhbaatar et al. 2015 §4.1). Unknown words have no id in the vocabulary: the policy is
explicit at every call -- "error" raises VocabularyError, "ignore" drops them and reports
which were dropped (a reader answers a question about a story with new names), "keep" gives each
distinct unknown word an id past the vocabulary (num_words, num_words + 1, ...), which embeds to
zero but keeps the word's identity and place, for readers that represent unseen words by their
context and by exact matches (MemNN).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from memqa.errors import CheckpointError, VocabularyError

PAD = "<pad>"
PAD_ID = 0
UnknownPolicy = Literal["error", "ignore", "keep"]


@dataclass(frozen=True)
class Vocab:
    """`words` maps tokens to ids (words[0] is PAD); `answers` maps answer labels to classes."""

    words: tuple[str, ...]
    answers: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_word_ids", {w: i for i, w in enumerate(self.words)})
        object.__setattr__(self, "_answer_ids", {a: i for i, a in enumerate(self.answers)})

    @classmethod
    def build(cls, examples: Iterable) -> "Vocab":
        """Every word of stories and questions, and every answer label, sorted for stability.

        Answer labels are words too (a comma-joined label such as "n,w" is one token, as in the
        authors' code), so a reader can tie its answer matrix to a word embedding (W^T = C^K, §2.2)."""
        words: set[str] = set()
        answers: set[str] = set()
        for example in examples:
            for sentence in example.story:
                words.update(sentence)
            words.update(example.question)
            answers.add(example.answer)
        return cls((PAD, *sorted((words | answers) - {PAD})), tuple(sorted(answers)))

    @property
    def num_words(self) -> int:
        return len(self.words)

    @property
    def num_answers(self) -> int:
        return len(self.answers)

    def word_ids(self, tokens: Sequence[str], unknown: UnknownPolicy = "error",
                 unseen: dict[str, int] | None = None) -> tuple[list[int], list[str]]:
        """Ids of `tokens` and the unknown tokens (dropped under "ignore", raised under "error", given
        the ids num_words + unseen[token] under "keep": pass one `unseen` dict for all the sentences
        of an example, so that a new word has one id throughout it)."""
        ids, missing = [], []
        unseen = {} if unseen is None else unseen
        for token in tokens:
            word_id = self._word_ids.get(token)  # type: ignore[attr-defined]
            if word_id is None or word_id == PAD_ID:
                missing.append(token)
                if unknown == "keep":
                    ids.append(self.num_words + unseen.setdefault(token, len(unseen)))
            else:
                ids.append(word_id)
        if missing and unknown == "error":
            raise VocabularyError(f"unknown words {sorted(set(missing))}: the reader never saw them in training")
        return ids, missing

    def answer_word_ids(self) -> list[int]:
        """The word id of each answer label, in answer-id order."""
        missing = [a for a in self.answers if a not in self._word_ids]  # type: ignore[attr-defined]
        if missing:
            raise VocabularyError(f"answer labels {missing[:5]} are not in the word list")
        return [self._word_ids[a] for a in self.answers]  # type: ignore[attr-defined]

    def answer_id(self, answer: str) -> int:
        answer_id = self._answer_ids.get(answer)  # type: ignore[attr-defined]
        if answer_id is None:
            raise VocabularyError(f"answer {answer!r} is not one of the {self.num_answers} answers seen in training")
        return answer_id

    def has_answer(self, answer: str) -> bool:
        return answer in self._answer_ids  # type: ignore[attr-defined]

    def to_json(self) -> dict:
        return {"words": list(self.words), "answers": list(self.answers)}

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        """Read vocab.json; anything but {"words": [PAD, ...], "answers": [...]} is a CheckpointError."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing; a saved reader needs its vocab.json") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{path}: not valid JSON ({error}); the file is damaged") from None
        if not isinstance(data, dict) or set(data) != {"words", "answers"}:
            raise CheckpointError(f"{path}: expected exactly the keys 'words' and 'answers'")
        words, answers = data["words"], data["answers"]
        for name, items in (("words", words), ("answers", answers)):
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise CheckpointError(f"{path}: '{name}' must be a list of strings")
            if len(set(items)) != len(items):
                raise CheckpointError(f"{path}: '{name}' has duplicate entries")
        if not words or words[0] != PAD or not answers:
            raise CheckpointError(f"{path}: 'words' must start with {PAD!r} and 'answers' must not be empty")
        return cls(tuple(words), tuple(answers))
