"""MemNN on names it never saw: bAbI test questions whose people are renamed to names from outside bAbI.

    MEMQA_BABI_DIR=/path/to/tasks_1-20_v1-2 python benchmarks/unseen_words.py --tasks 1,6,11 --unseen-words 0.1

For each task, MemNN is trained twice on the training file with its defaults (best epoch on the
validation split, as always): once as is, once with the Memory Networks paper's context features for
previously unseen words (`--unseen-words`: that share of the training words is read by its
neighbours). Each reader is scored on the official test file and on a renamed copy of it, in which
every person (Mary, John, ...) is consistently replaced by a name that never occurs in bAbI
(Frodo, Samwise, ...). On the renamed copy the unknown names are either dropped (what MemN2N does with
unknown words) or kept, so that the exact-match feature and the context features can read them
(memqa.data.vocab's "keep" policy, MemNN's default). Questions whose answer is a person are left out
of the renamed copy (no reader can answer a label it never saw).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from memqa.data.babi import Example, load_task, parse_task_range
from memqa.evaluate import fact_accuracy
from memqa.pipeline import default_configs
from memqa.reader import Reader
from memqa.train import fit

NEW_NAMES = {"mary": "frodo", "john": "samwise", "daniel": "gandalf", "sandra": "arwen", "fred": "bilbo",
             "jeff": "legolas", "bill": "gimli", "julie": "galadriel"}


def renamed(examples: list[Example]) -> list[Example]:
    """The examples with every person renamed (questions answered by a person left out)."""
    rename = lambda words: tuple(NEW_NAMES.get(w, w) for w in words)  # noqa: E731
    return [dataclasses.replace(e, story=tuple(rename(s) for s in e.story), question=rename(e.question))
            for e in examples if e.answer not in NEW_NAMES]


def scores(reader: Reader, examples: list[Example], policy: str) -> tuple[float, float | None]:
    reader.model.unknown_words = policy  # this reader object only
    return reader.evaluate(examples), fact_accuracy(reader, examples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="1")
    parser.add_argument("--unseen-words", type=float, default=0.1)
    parser.add_argument("--data", default="en")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_config, train_config = default_configs(False, "memnn")
    print("| task | trained with | valid acc | test acc | renamed test: names dropped | renamed: exact match"
          " (+ context) | facts found, renamed | train s |\n|---:|---|---:|---:|---:|---:|---:|---:|")
    for task in parse_task_range(args.tasks):
        train, test = load_task(task, "train", data=args.data), load_task(task, "test", data=args.data)
        other = renamed(test)
        for rate in (0.0, args.unseen_words):
            started = time.perf_counter()
            result = fit("memnn", dataclasses.replace(model_config, unseen_words=rate), train_config, train)
            seconds = time.perf_counter() - started
            reader = Reader(result.model, result.vocab)
            test_accuracy, _ = scores(reader, test, "keep")
            dropped, _ = scores(reader, other, "ignore")
            kept, facts = scores(reader, other, "keep")
            label = "context features" if rate else "no context features"
            print(f"| {task} | {label} ({rate:g}) | {100 * result.valid_accuracy:.1f} | {100 * test_accuracy:.1f} | "
                  f"{100 * dropped:.1f} | {100 * kept:.1f} | {100 * (facts or 0):.1f} | {seconds:.0f} |", flush=True)
    print(f"\n{len(other)} renamed test questions in the last task; names: {NEW_NAMES}")


if __name__ == "__main__":
    main()
