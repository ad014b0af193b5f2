"""Compare MemN2N training settings on the VALIDATION split only (no test file is ever read).

Trains one reader per bAbI task with seeds seed..seed+repeats-1 (the validation split is the same
seeded 10% of the training file for every seed and every setting) and writes, per task and seed,
the whole per-epoch history, the best-epoch and the last-epoch validation accuracy, to a JSON file
(rewritten after every task, so a stopped sweep keeps what it finished).

`--folds K` cross-validates instead: the training file's stories are dealt into K folds (seeded by
--seed, so every setting gets the same folds) and run k (seed seed+k) validates on fold k and trains
on the others, so every training question is validated on once; `--repeats` is then ignored.

    MEMQA_BABI_DIR=... python benchmarks/valid_sweep.py --out runs/sweep/d50.json --set encoder.embedding_dim=50

`--set` takes section.field=value with section encoder, model or train (the fields of EncoderConfig,
MemN2NConfig and TrainConfig); the value is read as JSON when it parses (50, true, 0.005) and as a
string otherwise. Use this, not `memqa train`, to compare settings: `memqa train` on the official
tasks also scores every reader on its test file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from memqa.config import MemN2NConfig, TrainConfig, to_dict
from memqa.data.babi import load_task, parse_task_range
from memqa.data.batching import story_folds
from memqa.train import TrainResult, fit


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def configs(settings: list[str], repeats: int, seed: int) -> tuple[MemN2NConfig, TrainConfig]:
    changes: dict[str, dict[str, Any]] = {"encoder": {}, "model": {}, "train": {}}
    for setting in settings:
        key, _, value = setting.partition("=")
        section, _, name = key.partition(".")
        if section not in changes or not name or not _:
            raise SystemExit(f"--set {setting!r}: write encoder.X=V, model.X=V or train.X=V")
        changes[section][name] = _value(value)
    model = MemN2NConfig()
    model = dataclasses.replace(model, encoder=dataclasses.replace(model.encoder, **changes["encoder"]),
                                **changes["model"])
    train = dataclasses.replace(TrainConfig(), repeats=repeats, seed=seed, **changes["train"])
    return model, train


def run_summary(result: TrainResult) -> dict[str, Any]:
    final = [r for r in result.history if r.phase == result.history[-1].phase]
    return {
        "seed": result.seed,
        "best_epoch": result.best_epoch,
        "best_valid": result.valid_accuracy,
        "last_valid": final[-1].valid_accuracy if final else 0.0,
        "last_train": final[-1].train_accuracy if final else 0.0,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        "seconds": round(result.seconds, 2),
        "history": [[r.epoch, r.phase, r.learning_rate, round(r.train_loss, 5), round(r.train_accuracy, 4),
                     round(r.valid_loss, 5), round(r.valid_accuracy, 4)] for r in result.history],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tasks", default="1-20")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="en")
    parser.add_argument("--folds", type=int, default=None, help="cross-validate on K folds (K >= 2)")
    parser.add_argument("--set", dest="settings", action="append", default=[])
    args = parser.parse_args()
    torch.set_num_threads(1)
    model_config, train_config = configs(args.settings, args.repeats, args.seed)
    report: dict[str, Any] = {"settings": args.settings, "model_config": to_dict(model_config),
                              "train_config": to_dict(train_config), "folds": args.folds, "tasks": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for task in parse_task_range(args.tasks):
        runs: list[dict[str, Any]] = []
        examples = load_task(task, "train", data=args.data)  # the training file only
        if args.folds:
            for fold, split in enumerate(story_folds(examples, args.folds, args.seed)):
                fold_config = dataclasses.replace(train_config, repeats=1, seed=args.seed + fold)
                runs.append({"fold": fold, **run_summary(fit("memn2n", model_config, fold_config, examples, split=split))})
        else:
            fit("memn2n", model_config, train_config, examples,
                on_repeat_done=lambda repeat, result: runs.append(run_summary(result)))
        report["tasks"][str(task)] = runs
        report["seconds"] = round(time.perf_counter() - started, 1)
        args.out.write_text(json.dumps(report))
        mean = lambda key: sum(r[key] for r in runs) / len(runs)  # noqa: E731
        print(f"task {task:2d}: best {mean('best_valid'):.3f} last {mean('last_valid'):.3f} "
              f"train {mean('last_train'):.3f} ({report['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
