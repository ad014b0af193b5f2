"""Train the NTM on an algorithmic task and save it: the job behind `memqa train --reader ntm --task copy`
(scoring a saved one across sizes, `memqa evaluate RUN --lengths 20,40,80`, is memqa/ntm_evaluate.py).

Training is memqa.train.train_model, the loop the bAbI readers use: the task supplies the data
(a stream of fresh random sequences, `eval_every` per "epoch", and a fixed validation set), the
model its loss, optimiser (RMSProp), clipping (element-wise) and accuracy (sequences without a
bit error). The best evaluation point is kept. The learning curve (cost in bits per sequence and
bit errors per sequence against sequences seen) is saved in config.json's info.

With `snapshot_every`, the weights at every that many sequences are saved too, each a reader of its own in
OUT/snapshots/seed<S>/<sequences>/: the kept weights are one evaluation's, and which one decides what the
reader does past the trained sizes (docs/ntm/repeat-copy.md), so a run's other points can be scored after it.

A run is resumable as a bAbI run is (memqa/resume.py): OUT/.train-state/ holds the request, each seed's
training state after every evaluation and its learning curve so far (curve.json); `resume_ntm(OUT)`
goes on from there and ends bit-identical to a run never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from memqa.checkpoint import SNAPSHOTS_DIR, check_save_target, save_reader
from memqa.config import (NTM_LEARNING_RATE, LSTMBaselineConfig, NTMConfig, TrainConfig, from_dict, to_dict,
                          train_config_from_dict)
from memqa.errors import CheckpointError, ConfigError
from memqa.models.ntm import BitSequenceModel, LSTMSequenceModel, NTMSequenceModel
from memqa.nn.ntm import check_compile
from memqa.tasks.algorithmic import (FixedSequences, RepeatCopyTask, SequenceBatch, Task, TaskStream, make_task,
                                     sequence_scores, task_from_dict)
from memqa.resume import (StateStore, end_run, has_saved_epochs, read_json, read_request, start_run,
                          state_dir, write_json)
from memqa.train import EpochRecord, TrainResult, train_model

# Graves et al. 2014 Table 2 (LSTM controller): heads (read = write), controller layers x units, learning
# rate. Associative recall takes Table 1's feed-forward controller: §4.3 finds it learns faster, Fig. 11's
# generalisation is its, and Table 2's LSTM controller had not learned the task after 100k sequences here.
PAPER_SETTINGS = {
    "copy": dict(controller="lstm", heads=1, layers=1, units=100, learning_rate=NTM_LEARNING_RATE),
    "repeat-copy": dict(controller="lstm", heads=1, layers=1, units=100, learning_rate=NTM_LEARNING_RATE),
    "associative-recall": dict(controller="feedforward", heads=4, layers=1, units=256, learning_rate=NTM_LEARNING_RATE),
    "priority-sort": dict(controller="lstm", heads=5, layers=2, units=100, learning_rate=3e-5),
}
# Graves et al. 2014 Table 3, the LSTM baseline of 3 stacked layers: units per layer, learning rate.
BASELINE_SETTINGS = {
    "copy": dict(units=256, learning_rate=3e-5),
    "repeat-copy": dict(units=512, learning_rate=3e-5),
    "associative-recall": dict(units=256, learning_rate=1e-4),
    "priority-sort": dict(units=128, learning_rate=3e-5),
}
# The readers of the algorithmic tasks: `memqa train --reader ntm` and `--reader lstm` (the baseline).
SEQUENCE_MODELS: dict[str, type[BitSequenceModel]] = {"ntm": NTMSequenceModel, "lstm": LSTMSequenceModel}
SequenceModelConfig = NTMConfig | LSTMBaselineConfig
# The paper trains one sequence at a time; memqa trains batches of 8 with a 3x larger step: copy then
# learns in about 5k sequences and generalises to length 120, where batch 16 at 10x learned a solution
# that fails beyond length 20 (docs/ntm.md). `memqa train --lr 1e-4` gives the paper's rate.
BATCH_SIZE = 8
BATCH_LEARNING_RATE_FACTOR = 3.0
# Tasks whose NTM trains by default otherwise than above. Associative recall takes Collier & Beel's (2018)
# Adam at lr 1e-3 and batch 32 (their code's defaults) and their constant initial memory: over seeds 0-11
# it stays under 1 bit error at 12 items with 9 seeds; Adam with every row of the memory learned with 5,
# RMSProp at batch 8 with 2 and Graves's RMSProp with 3 (docs/ntm/associative-recall.md, sessions 17-21).
# Repeat copy stays on RMSProp: Adam did not learn it within 100k sequences, at batch 32 or 8 (sessions 17-18).
TRAINING_DEFAULTS = {"associative-recall": dict(optimizer="adam", batch_size=32, learning_rate=1e-3,
                                                initial_memory="constant")}
# Training sequences when --sequences is not given: about what each task took to learn here (docs/ntm.md).
# Copy learns within 5k-10k sequences; repeat copy needed 43k-79k and associative recall 4k-79k (at 3e-4
# and 1e-4) to get under 0.1 bit errors; priority sort's runs kept their weights of 149k and 198k, and the
# longer one got worse after 200k (the paper's curves run to about 1M sequences at batch 1).
DEFAULT_SEQUENCES = {"copy": 30_000, "repeat-copy": 100_000, "associative-recall": 100_000, "priority-sort": 200_000}
EVAL_EVERY = 1000  # sequences between evaluations ("epochs"): pytorch-ntm evaluates every 500
VALID_BATCHES, VALID_BATCH_SIZE, VALID_SEED = 8, 32, 1_000_003  # 256 fixed validation sequences


@dataclass(frozen=True)
class NTMTrainRequest:
    out: Path
    task: Task
    model_config: SequenceModelConfig  # NTMConfig, or LSTMBaselineConfig for the LSTM baseline
    train_config: TrainConfig  # epochs = evaluations; each covers `eval_every` training sequences
    eval_every: int = EVAL_EVERY
    device: str = "cpu"
    # The sizes (low, high) of the validation sequences that pick the kept weights; None: the training sizes.
    # Larger ones (associative recall: 8-10 items, trained on 2-6) favour the weights that generalise (docs/ntm.md).
    valid_sizes: tuple[int, int] | None = None
    command: str = ""  # the command line that started the run, kept in config.json and the model card
    # Repeat copy: the repeat counts (low, high) of the validation sequences; None: the training ones. With
    # --valid-sizes they can make validation hold the longest episodes, which the 8 drawn batches may miss.
    valid_repeats: tuple[int, int] | None = None
    # torch.compile the NTM's step (NTMCell.compile_step): about twice as fast on a CPU, the same arithmetic
    # rounded otherwise. An execution setting, but a resumed run keeps it, or it would not end as one never stopped.
    compile: bool = False
    # Save the weights at every `snapshot_every` sequences (a multiple of eval_every) in OUT/snapshots/; None: not.
    snapshot_every: int | None = None

    def __post_init__(self) -> None:
        for flag, value in (("--valid-sizes", self.valid_sizes), ("--valid-repeats", self.valid_repeats)):
            if value is not None and not 1 <= value[0] <= value[1]:
                raise ConfigError(f"{flag} must be LOW-HIGH with 1 <= LOW <= HIGH, got {value[0]}-{value[1]}")
        if self.valid_repeats is not None and not isinstance(self.task, RepeatCopyTask):
            raise ConfigError(f"--valid-repeats is for --task repeat-copy; this run trains {self.task.name}")
        if self.snapshot_every is not None and (self.snapshot_every < self.eval_every
                                                or self.snapshot_every % self.eval_every):
            raise ConfigError(f"--snapshot-every {self.snapshot_every} must be a multiple of --eval-every "
                              f"{self.eval_every} (snapshots are taken at evaluations)")
        if self.compile and not isinstance(self.model_config, NTMConfig):
            raise ConfigError("--compile speeds up the NTM's step; the LSTM baseline already runs torch's fused LSTM: "
                              "train it without --compile")


@dataclass
class TrainedNTM:
    path: Path
    result: TrainResult
    curve: list[dict] = field(default_factory=list)


def default_configs(task_name: str, sequences: int | None = None, eval_every: int = EVAL_EVERY, *,
                    batch_size: int | None = None, reader: str = "ntm") -> tuple[Task, SequenceModelConfig, TrainConfig]:
    """The task, the paper's model for it (reader "ntm": PAPER_SETTINGS and TRAINING_DEFAULTS; "lstm": the
    baseline, BASELINE_SETTINGS) and a schedule of `sequences` training sequences (None: the task's
    DEFAULT_SEQUENCES) in batches of `batch_size` (None: the task's default, BATCH_SIZE for most)."""
    if reader not in SEQUENCE_MODELS:
        raise ConfigError(f"unknown reader {reader!r} for the algorithmic tasks; choose {' or '.join(SEQUENCE_MODELS)}")
    task = make_task(task_name)
    sequences = DEFAULT_SEQUENCES[task_name] if sequences is None else sequences
    model: SequenceModelConfig
    overrides = {} if reader == "lstm" else TRAINING_DEFAULTS.get(task_name, {})
    if reader == "lstm":
        paper = BASELINE_SETTINGS[task_name]
        model = LSTMBaselineConfig(input_size=task.input_size, output_size=task.output_size, hidden_size=paper["units"])
    else:
        paper = PAPER_SETTINGS[task_name]
        model = NTMConfig(input_size=task.input_size, output_size=task.output_size, controller=paper["controller"],
                          read_heads=paper["heads"], write_heads=paper["heads"], controller_size=paper["units"],
                          controller_layers=paper["layers"], optimizer=overrides.get("optimizer", NTMConfig.optimizer),
                          initial_memory=overrides.get("initial_memory", NTMConfig.initial_memory))
    learning_rate = overrides.get("learning_rate", paper["learning_rate"] * BATCH_LEARNING_RATE_FACTOR)
    return task, model, schedule(sequences, eval_every, batch_size or overrides.get("batch_size", BATCH_SIZE), learning_rate)


def schedule(sequences: int, eval_every: int, batch_size: int, learning_rate: float, seed: int = 0) -> TrainConfig:
    """A TrainConfig for `sequences` training sequences, evaluated every `eval_every`; no decay."""
    if sequences < 1 or eval_every < 1:
        raise ConfigError("--sequences and --eval-every must be at least 1")
    epochs = max(1, math.ceil(sequences / eval_every))
    return TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, decay_every=epochs,
                       decay_factor=1.0, linear_start_epochs=0, seed=seed)


@torch.no_grad()
def score_batches(model: BitSequenceModel, batches: Sequence[SequenceBatch],
                  device: str = "cpu") -> tuple[float, float, float]:
    """(cost bits, bit errors, perfect fraction) per sequence over `batches`."""
    was_training = model.training
    model.eval()
    cost, errors = [], []
    for batch in batches:
        batch = batch.to(device)
        scores = sequence_scores(model(batch).logits, batch.targets)
        cost.append(scores.cost_bits.cpu())
        errors.append(scores.bit_errors.cpu())
    model.train(was_training)
    cost_bits, bit_errors = torch.cat(cost), torch.cat(errors).float()
    return float(cost_bits.mean()), float(bit_errors.mean()), float((bit_errors == 0).float().mean())


def train_ntm(request: NTMTrainRequest, *, on_point: Callable[[dict, int], None] | None = None,
              resume: bool = False) -> TrainedNTM | None:
    """Train (seeds seed .. seed + repeats - 1, the best kept), save the best to request.out; None
    when interrupted before the first evaluation. The state is saved after every evaluation; with
    resume=True the run goes on from it (an interrupted run keeps it; a completed one removes it)."""
    check_save_target(request.out)
    if request.compile:
        check_compile()
    created = not request.out.exists()
    if not resume:
        start_run(request.out, ntm_request_to_json(request), [STATE_JOB])
    config = request.train_config
    best: tuple[TrainResult, list[dict]] | None = None
    interrupted = True  # until the loop ends: an exception also keeps the state to resume from
    try:
        for repeat in range(config.repeats):
            result, curve = _train_once(request, config.seed + repeat, on_point,
                                        state_dir(request.out) / STATE_JOB / f"repeat-{repeat}")
            if result.history and (best is None or result.selection_key > best[0].selection_key):
                best = (result, curve)
            if result.stopped == "interrupted":
                break
        else:
            interrupted = False
    finally:
        if not interrupted or not has_saved_epochs(request.out):
            end_run(request.out)  # finished, or nothing to go on with
        if created and request.out.is_dir() and not any(request.out.iterdir()):
            request.out.rmdir()  # a run that saved nothing leaves no trace
    if best is None:
        return None
    result, curve = best
    if interrupted:
        result.stopped = "interrupted"  # even when an earlier, finished seed is the best: the run is unfinished
    info = _info(request, result, curve)
    save_reader(request.out, result.model, None, info, card=ntm_card(info, request.model_config))
    return TrainedNTM(request.out, result, curve)


STATE_JOB = "reader"  # the run's one job in OUT/.train-state (its seeds are repeat-0, repeat-1, ...)
CURVE_FILE = "curve.json"


def _train_once(request: NTMTrainRequest, seed: int, on_point, folder: Path) -> tuple[TrainResult, list[dict]]:
    torch.manual_seed(seed)
    model = SEQUENCE_MODELS[sequence_reader(request.model_config)](request.model_config)
    if request.compile:
        model.compile_steps()
    valid = FixedSequences.drawn(request.task, VALID_BATCHES, VALID_BATCH_SIZE, VALID_SEED, sizes=request.valid_sizes,
                                 repeats=request.valid_repeats)
    curve = _read_curve(folder / CURVE_FILE)  # a resumed seed's points so far
    last_time = time.perf_counter()

    def on_epoch(record: EpochRecord, total: int) -> None:
        nonlocal last_time
        cost, errors, perfect = score_batches(model, list(valid.batches()), request.device)
        sequences = record.epoch * request.eval_every
        curve[:] = [point for point in curve if point["sequences"] < sequences]  # points past a saved state go
        now = time.perf_counter()
        point = {"sequences": sequences, "seconds": round((curve[-1]["seconds"] if curve else 0.0) + now - last_time, 2),
                 "learning_rate": record.learning_rate, "train_cost_bits": record.train_loss / math.log(2), "valid_cost_bits": cost,
                 "valid_bit_errors": errors, "valid_perfect": perfect}
        last_time = now
        curve.append(point)
        # Written before train_model saves this evaluation's state: a kill in between redoes the point.
        write_json(folder / CURVE_FILE, {"format_version": 1, "curve": curve})
        if request.snapshot_every and sequences % request.snapshot_every == 0:
            info = _snapshot_info(request, model, seed, point)
            save_reader(snapshot_path(request.out, seed, sequences), model, None, info,
                        card=ntm_card(info, request.model_config))
        if on_point:
            on_point(point, total * request.eval_every)

    result = train_model(model, TaskStream(request.task, request.eval_every), valid,
                         dataclasses.replace(request.train_config, seed=seed), vocab=None, seed=seed,
                         device=request.device, on_epoch=on_epoch, checkpoint=StateStore(folder))
    del curve[len(result.history):]  # points of evaluations whose state was never saved
    return result, curve


def snapshot_path(out: Path, seed: int, sequences: int) -> Path:
    """Where the run in `out` saves seed `seed`'s weights after `sequences` sequences (--snapshot-every)."""
    return out / SNAPSHOTS_DIR / f"seed{seed}" / str(sequences)


def snapshots(out: str | os.PathLike) -> list[Path]:
    """The snapshots the run in `out` saved, by seed, then in the order they were taken."""
    folder = Path(out) / SNAPSHOTS_DIR
    found = [path for path in folder.glob("seed*/*") if path.name.isdigit() and path.parent.name[4:].isdigit()]
    return sorted(found, key=lambda path: (snapshot_seed(path), int(path.name)))


def snapshot_seed(path: Path) -> int:
    """The seed of a snapshot of `snapshots`: RUN/snapshots/seed<S>/<sequences>/."""
    return int(path.parent.name[4:])


def _snapshot_info(request: NTMTrainRequest, model: BitSequenceModel, seed: int, point: dict) -> dict:
    """config.json's info of a snapshot: a finished run's (_info), as if it had stopped at this evaluation."""
    return {**_point_info(request, model, seed, point), "sequences_run": point["sequences"],
            "snapshot_of": os.path.abspath(request.out)}


def _read_curve(file: Path) -> list[dict]:
    if not file.is_file():
        return []
    curve = read_json(file, "learning curve").get("curve")
    if not isinstance(curve, list) or not all(isinstance(p, dict) and isinstance(p.get("sequences"), int)
                                              and isinstance(p.get("seconds"), (int, float)) for p in curve):
        raise CheckpointError(f"{file}: expected a list of points with 'sequences' and 'seconds'; the learning "
                              f"curve is damaged (delete {file.parent} to train that seed again)")
    return curve


def sequence_reader(config: SequenceModelConfig) -> str:
    """ "ntm" or "lstm": the --reader that trains a model of this config."""
    return next(name for name, model in SEQUENCE_MODELS.items() if isinstance(config, model.config_class))


def ntm_request_to_json(request: NTMTrainRequest) -> dict:
    # "reader" says the run is of an algorithmic task (memqa/resume.py); "model" which model it trains.
    return {"reader": "ntm", "model": sequence_reader(request.model_config), "out": os.path.abspath(request.out),
            "task": request.task.to_dict(), "model_config": to_dict(request.model_config),
            "train_config": to_dict(request.train_config), "eval_every": request.eval_every, "device": request.device,
            "valid_sizes": list(request.valid_sizes) if request.valid_sizes else None, "command": request.command,
            "valid_repeats": list(request.valid_repeats) if request.valid_repeats else None,
            "compile": request.compile,
            **({"snapshot_every": request.snapshot_every} if request.snapshot_every else {})}


def is_ntm_run(run_dir: str | os.PathLike) -> bool:
    """Does run_dir hold an NTM training run (rather than a bAbI one)? Raises when it holds none."""
    return read_request(run_dir).get("reader") == "ntm"


def load_ntm_request(run_dir: str | os.PathLike) -> NTMTrainRequest:
    """The NTM run request saved in run_dir (its out is run_dir, wherever the run was started)."""
    data, where = read_request(run_dir), f"{state_dir(run_dir) / 'request.json'}"
    expected = {"reader", "out", "task", "model_config", "train_config", "eval_every", "device"}
    # runs saved before --valid-sizes, before the command was kept, before the LSTM baseline or before
    # --valid-repeats or --compile lack these; a run without --snapshot-every lacks it
    optional = {"valid_sizes", "command", "model", "valid_repeats", "compile", "snapshot_every"}
    if not expected <= set(data) <= expected | optional:
        raise CheckpointError(f"{where}: expected keys {sorted(expected | optional)}, found {sorted(data)}")
    model = data.get("model", "ntm")
    if model not in SEQUENCE_MODELS:
        raise CheckpointError(f"{where}: unknown model {model!r}; expected {' or '.join(SEQUENCE_MODELS)}")
    try:
        return NTMTrainRequest(Path(run_dir), task_from_dict(data["task"]),
                               from_dict(SEQUENCE_MODELS[model].config_class, data["model_config"],
                                         where=f"{where}: model_config"),
                               train_config_from_dict(data["train_config"], where=f"{where}: train_config"),
                               int(data["eval_every"]), str(data["device"]), _sizes(data.get("valid_sizes")),
                               str(data.get("command", "")), _sizes(data.get("valid_repeats")),
                               _flag(data.get("compile", False), f"{where}: compile"),
                               _count(data.get("snapshot_every"), f"{where}: snapshot_every"))
    except (ConfigError, TypeError, ValueError) as error:
        message = str(error)
        raise CheckpointError(message if where in message else f"{where}: {message}") from None


def _flag(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise CheckpointError(f"{where}: expected true or false, found {value!r}")
    return value


def _count(value, where: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise CheckpointError(f"{where}: expected a whole number of sequences, found {value!r}")
    return value


def _sizes(value) -> tuple[int, int] | None:
    if value is None:
        return None
    low, high = value  # a malformed entry raises TypeError or ValueError: a damaged request
    return int(low), int(high)


def resume_ntm(run_dir: str | os.PathLike, *,
               on_point: Callable[[dict, int], None] | None = None) -> TrainedNTM | None:
    """Go on with the NTM run saved in run_dir/.train-state (see train_ntm)."""
    return train_ntm(load_ntm_request(run_dir), on_point=on_point, resume=True)


def _info(request: NTMTrainRequest, result: TrainResult, curve: list[dict]) -> dict:
    best = curve[result.best_epoch - 1] if result.best_epoch else {}
    return {
        **_point_info(request, result.model, result.seed, best),
        "sequences_run": len(result.history) * request.eval_every,
        "stopped": result.stopped,
        "train_seconds": round(result.seconds, 2),
        "curve": [{k: round(v, 4) if isinstance(v, float) and k != "learning_rate" else v for k, v in point.items()}
                  for point in curve],
    }


def _point_info(request: NTMTrainRequest, model: BitSequenceModel, seed: int, point: dict) -> dict:
    """The info of a reader with the weights of the evaluation `point` (seed `seed`'s run)."""
    return {
        "task": request.task.to_dict(),
        "train_config": dataclasses.asdict(request.train_config),
        "eval_every": request.eval_every,
        "valid_sizes": list(request.valid_sizes or request.task.training_sizes),
        **({"valid_repeats": list(request.valid_repeats)} if request.valid_repeats else {}),
        "seed": seed,
        **({"compiled": True} if request.compile else {}),  # trained through torch.compile: rerun with --compile
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "best_sequences": point.get("sequences", 0),
        "scores": {k: point[k] for k in ("valid_cost_bits", "valid_bit_errors", "valid_perfect") if k in point},
        "command": request.command,
    }


def _sizes_title(info: dict, task: dict) -> str:
    """ "training sizes", or the validation sizes (and repeat counts) where they differ from the training ones
    (e.g. "items 8-10; trained on 2-6")."""
    sizes, repeats = info.get("valid_sizes"), info.get("valid_repeats")
    algorithmic = task_from_dict(task)
    training = algorithmic.training_sizes

    def span(low: int, high: int) -> str:
        return f"{low}" if low == high else f"{low}-{high}"

    parts = [] if not sizes or tuple(sizes) == training else [
        f"{algorithmic.size_name} {span(*sizes)}; trained on {span(*training)}"]
    if repeats and isinstance(algorithmic, RepeatCopyTask):
        parts.append(f"repeats {span(*repeats)}; trained on {span(algorithmic.min_repeats, algorithmic.max_repeats)}")
    return "; ".join(parts) or "training sizes"


def ntm_card(info: dict, model_config: SequenceModelConfig) -> str:
    """The README.md of a saved NTM (or LSTM baseline)."""
    task, scores = info["task"], info.get("scores", {})
    label = SEQUENCE_MODELS[sequence_reader(model_config)].label
    what = ("The LSTM baseline of Graves et al. 2014 (Table 3)" if isinstance(model_config, LSTMBaselineConfig)
            else "A Neural Turing Machine (Graves et al. 2014)")
    lines = [f"# memqa {label}: {task['name']}", "",
             f"{what} trained on the {task['name']} task with memqa "
             f"({info['sequences_run']} sequences, seed {info['seed']}; best at {info['best_sequences']})"
             + (f"; {info['parameters']:,} parameters." if "parameters" in info else "."), "",
             "```bash", "memqa evaluate <this folder> --lengths 20,40,80", "```", "",
             f"## Validation ({_sizes_title(info, task)})", "", "| cost (bits/seq) | bit errors/seq | perfect |", "|---:|---:|---:|",
             f"| {scores.get('valid_cost_bits', math.nan):.3f} | {scores.get('valid_bit_errors', math.nan):.3f} | "
             f"{100 * scores.get('valid_perfect', math.nan):.1f}% |", "",
             "## Configuration", "", "```json",
             json.dumps({"model": dataclasses.asdict(model_config), "task": task}, indent=2, sort_keys=True), "```", ""]
    if info.get("command"):
        lines += ["Made by:", "", f"    {info['command']}", ""]
    return "\n".join(lines)
