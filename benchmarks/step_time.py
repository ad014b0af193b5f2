"""Milliseconds per MemN2N training step (forward, backward, gradient clipping, SGD step) on real bAbI
batches, without data loading or validation: the part of train_speed.py that code changes move.

    MEMQA_BABI_DIR=/path/to/tasks_1-20_v1-2 python benchmarks/step_time.py --task 1
    # the NTM reader (Adam), on the first 640 questions of task 5 (10k), with one pair of heads:
    MEMQA_BABI_DIR=... python benchmarks/step_time.py --reader ntm-qa --task 5 --data en-10k --questions 640 --epochs 1 --heads 1
    # an older commit, for an A/B on the same machine (run the two alternately):
    git worktree add /tmp/old <commit> && cd /tmp/old && PYTHONPATH=/tmp/old python /path/to/memqa/benchmarks/step_time.py

Each round trains a fresh seeded reader for --epochs epochs of batch 32 (the paper's batch size) and
reports its mean step time; the lowest of --rounds rounds is the least disturbed by other load.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from memqa.data.babi import load_task
from memqa.data.batching import encode_examples
from memqa.data.vocab import Vocab
from memqa.models.registry import build_model
from memqa.pipeline import default_configs
from memqa.train import fit_memory_to_stories


def step_ms(task: int, epochs: int, seed: int = 0, reader: str = "memn2n", data_set: str = "en",
            questions: int | None = None, heads: int | None = None,
            length_buckets: int = 0) -> tuple[float, float]:
    """(ms a step, the last step's loss: equal across code changes that keep the numbers)."""
    model_config, train_config = default_configs(False, reader)
    examples = load_task(task, "train", data=data_set)[:questions]
    if reader == "memn2n":
        model_config = fit_memory_to_stories(model_config, examples)
    if heads is not None:
        model_config = dataclasses.replace(model_config, heads=heads)
    vocab = Vocab.build(examples)
    data = encode_examples(examples, vocab, model_config.encoder.memory_size)
    torch.manual_seed(seed)
    model = build_model(reader, model_config, vocab).train()
    optimizer = model.make_optimizer(train_config.learning_rate)
    generator, steps = torch.Generator().manual_seed(seed), 0
    by_length = {"length_buckets": length_buckets} if length_buckets else {}  # older commits lack the argument
    started = time.perf_counter()
    for _ in range(epochs):
        for batch in data.batches(train_config.batch_size, shuffle=True, generator=generator, **by_length):
            loss = model.loss(batch, model(batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            model.clip_gradients(train_config)
            optimizer.step()
            steps += 1
    return (time.perf_counter() - started) / steps * 1e3, loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reader", choices=("memn2n", "ntm-qa"), default="memn2n")
    parser.add_argument("--data", default="en")
    parser.add_argument("--questions", type=int, default=None, help="the first N training questions [all]")
    parser.add_argument("--heads", type=int, default=None, help="ntm-qa: read heads = write heads [its default]")
    parser.add_argument("--length-buckets", type=int, default=0, help="TrainConfig.length_buckets [0: random batches]")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = [step_ms(args.task, args.epochs, reader=args.reader, data_set=args.data, questions=args.questions,
                      heads=args.heads, length_buckets=args.length_buckets) for _ in range(args.rounds)]
    times = [ms for ms, _ in rounds]
    print(f"{args.reader}, task {args.task}: {min(times):.2f} ms a step (rounds: {', '.join(f'{t:.2f}' for t in times)}); "
          f"last loss {rounds[0][1]!r}; torch {torch.__version__}, 1 thread")


if __name__ == "__main__":
    main()
