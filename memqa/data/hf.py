"""The parsed bAbI tasks as a Hugging Face `datasets.DatasetDict` (train / validation / test).

Validation is the same seeded 10% of the training file that `memqa train` holds out, so
numbers computed in the datasets ecosystem line up with memqa's. Needs `pip install memqa[hf]`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from memqa.data.babi import Example, load_task
from memqa.data.batching import split_train_valid
from memqa.errors import MemqaError


def examples_to_rows(examples: Sequence[Example]) -> dict[str, list]:
    """Column lists: story (sentences as text), question, answer, supporting_facts, task."""
    return {
        "story": [[" ".join(sentence) for sentence in e.story] for e in examples],
        "question": [" ".join(e.question) for e in examples],
        "answer": [e.answer for e in examples],
        "supporting_facts": [list(e.supporting) for e in examples],
        "task": [e.task or 0 for e in examples],
    }


def load_babi_dataset(tasks: int | Sequence[int] = 1, *, data_dir: str | os.PathLike | None = None, data: str = "en",
                      valid_fraction: float = 0.1, seed: int = 0):
    """`datasets.DatasetDict` with train/validation/test splits of the given tasks."""
    try:
        import datasets
    except ImportError:
        raise MemqaError("the Hugging Face view needs the datasets package: pip install 'memqa[hf]'") from None
    features = datasets.Features({
        "story": datasets.Sequence(datasets.Value("string")),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "supporting_facts": datasets.Sequence(datasets.Value("int32")),
        "task": datasets.Value("int32"),
    })
    splits: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    for task in [tasks] if isinstance(tasks, int) else tasks:
        train, valid = split_train_valid(load_task(task, "train", data_dir=data_dir, data=data), valid_fraction, seed)
        splits["train"] += train
        splits["validation"] += valid
        splits["test"] += load_task(task, "test", data_dir=data_dir, data=data)
    return datasets.DatasetDict({name: datasets.Dataset.from_dict(examples_to_rows(rows), features=features)
                                 for name, rows in splits.items()})
