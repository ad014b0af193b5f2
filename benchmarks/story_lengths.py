"""How long bAbI stories are, and how far back their supporting facts lie (what a memory size drops).

    MEMQA_BABI_DIR=... python benchmarks/story_lengths.py --tasks 2,3 [--data en] [--split train]

Per task: the number of sentences before each question (median, 90th percentile, most) and the distance of
its oldest supporting fact counted back from the question (1: the last sentence; 99th percentile, most),
with how many questions have a supporting fact more than 20 and 30 sentences back.
"""

from __future__ import annotations

import argparse

from memqa.data.babi import load_task, parse_task_range


def quantile(values: list[int], q: float) -> int:
    return sorted(values)[int(q * len(values))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="1-20")
    parser.add_argument("--data", default="en")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    args = parser.parse_args()
    for task in parse_task_range(args.tasks):
        examples = load_task(task, args.split, data=args.data)
        lengths = [len(example.story) for example in examples]
        back = [len(example.story) - min(example.supporting) for example in examples if example.supporting]
        print(f"task {task} {args.split}: story length median {quantile(lengths, 0.5)}, 90% {quantile(lengths, 0.9)}, "
              f"most {max(lengths)}; oldest supporting fact back 99% {quantile(back, 0.99)}, most {max(back)}, "
              f"over 20: {sum(b > 20 for b in back)}, over 30: {sum(b > 30 for b in back)} of {len(back)}")


if __name__ == "__main__":
    main()
