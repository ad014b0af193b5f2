"""`memqa train`: train readers on bAbI tasks or a file of your own, with a live progress bar."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memqa_cli.console import console, guarded, note
from memqa_cli.download import ensure_data_dir
from memqa_cli.ntm import LSTM_READER, NTM_READER, NTMOptions, run_ntm_command, train_ntm_command
from memqa_cli.resume import flag_name, given, resumed_request
from memqa_cli.options import DataDir, DataSet, Device, Tasks, Threads, invoked_command

_Opt = typer.Option


def _stop_on_sigterm(signum, frame) -> None:
    """SIGTERM (`kill PID`, what job schedulers send) stops training as Ctrl-C does: the best reader so far is
    saved and `--resume` goes on. Worker processes (--workers) are sent SIGINT, as Ctrl-C would reach them."""
    import multiprocessing

    for child in multiprocessing.active_children():
        os.kill(child.pid, signal.SIGINT)
    raise KeyboardInterrupt


def _stopping_on_sigterm(command):
    """Run `command` with _stop_on_sigterm as the SIGTERM handler, then put the previous one back."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
        try:
            return command(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper


@guarded
@_stopping_on_sigterm
def train(
    context: typer.Context,
    out: Annotated[Optional[Path], _Opt("--out", help="Folder for the reader (per-task readers go in OUT/task<N>/).", show_default=False)] = None,
    reader: Annotated[str, _Opt("--reader", help="Reader kind: memn2n, memnn (needs supporting facts), or ntm (bAbI stories one sentence a step; with --task copy etc. the NTM's algorithmic tasks; lstm: the paper's LSTM baseline on them).")] = "memn2n",
    task: Annotated[Optional[str], _Opt("--task", show_default=False, help=(
        "One bAbI task, 1-20; with --reader ntm also copy, repeat-copy, associative-recall or priority-sort."))] = None,
    tasks: Tasks = None,
    joint: Annotated[bool, _Opt("--joint", help="One reader for all --tasks at once (paper §4.2 joint schedule).")] = False,
    data: DataSet = "en",
    data_dir: DataDir = None,
    train_file: Annotated[Optional[Path], _Opt("--train-file", help="Train on any bAbI-format file.", show_default=False)] = None,
    test_file: Annotated[Optional[Path], _Opt("--test-file", help="Score the reader on this file.", show_default=False)] = None,
    epochs: Annotated[Optional[int], _Opt("--epochs", help="Epochs after linear start [100; joint 60; memnn 200; ntm on bAbI 20].", show_default=False)] = None,
    batch_size: Annotated[Optional[int], _Opt("--batch-size", help="[32; ntm 8, associative-recall 32]", show_default=False)] = None,
    learning_rate: Annotated[Optional[float], _Opt("--lr", help="Learning rate [0.01; with linear start both phases run at 0.005, as the authors' code; ntm 3e-4, priority-sort 9e-5, associative-recall and bAbI 1e-3]", show_default=False)] = None,
    decay_every: Annotated[Optional[int], _Opt("--decay-every", help="Multiply the learning rate by --decay-factor every N epochs [25; joint 15; memnn 100]; ntm: every N sequences [never].", show_default=False)] = None,
    decay_factor: Annotated[Optional[float], _Opt("--decay-factor", help="The learning rate's factor at each --decay-every [0.5].", show_default=False)] = None,
    weight_decay: Annotated[Optional[float], _Opt("--weight-decay", help="L2 penalty: weight_decay * w added to every gradient [0, as the papers].", show_default=False)] = None,
    length_buckets: Annotated[Optional[int], _Opt("--length-buckets", metavar="N", help="Sort each run of N shuffled batches by story length, so a batch's stories are about as long (faster for the NTM reader) [0: batches drawn at random, as the papers].", show_default=False)] = None,
    linear_start_epochs: Annotated[Optional[int], _Opt("--linear-start-epochs", help="0 turns linear start off [40; joint 30].", show_default=False)] = None,
    hops: Annotated[Optional[int], _Opt("--hops", help="[3; memnn 10, the most facts it finds before its learned stop; ntm on bAbI: the question's steps]", show_default=False)] = None,
    embedding_dim: Annotated[Optional[int], _Opt("--embedding-dim", help="[20; joint 50; memnn 30]", show_default=False)] = None,
    encoding: Annotated[Optional[str], _Opt("--encoding", help="position or bow [position]", show_default=False)] = None,
    position_scale: Annotated[Optional[float], _Opt("--position-scale", help="Scale of the paper's position weights l_kj [2, as the authors' code; 1 = the paper's formula].", show_default=False)] = None,
    temporal: Annotated[Optional[bool], _Opt("--temporal/--no-temporal", help="Temporal encoding [on].", show_default=False)] = None,
    random_noise: Annotated[Optional[float], _Opt("--random-noise", help="Fraction of empty memories added in training [0.1].", show_default=False)] = None,
    weight_tying: Annotated[Optional[str], _Opt("--weight-tying", help="adjacent or layerwise [adjacent]", show_default=False)] = None,
    relu: Annotated[Optional[bool], _Opt("--relu/--no-relu", help="MemN2N: ReLU on the controller state after each hop (paper App. A) [off].", show_default=False)] = None,
    dropout: Annotated[Optional[float], _Opt("--dropout", help="MemN2N: dropout on the embedded sentences and question in training (not in the paper) [0].", show_default=False)] = None,
    margin: Annotated[Optional[float], _Opt("--margin", help="MemNN: margin γ of the ranking loss [0.1].", show_default=False)] = None,
    time_features: Annotated[Optional[bool], _Opt("--time-features/--no-time-features", help="MemNN: write-time comparison features [on].", show_default=False)] = None,
    match_features: Annotated[Optional[bool], _Opt("--match-features/--no-match-features", help="MemNN: feature for words also in the question [on].", show_default=False)] = None,
    nonlinear: Annotated[Optional[bool], _Opt("--nonlinear/--linear", help="MemNN: non-linear response (NL) or the linear one [nonlinear].", show_default=False)] = None,
    unseen_words: Annotated[Optional[float], _Opt("--unseen-words", help="MemNN: share of training words represented by their left and right context, so that words never seen in training are too (2014 paper) [0: off].", show_default=False)] = None,
    memory_size: Annotated[Optional[int], _Opt("--memory-size", help="Sentences kept in memory [50]; NTM on the algorithmic tasks: memory rows [128].", show_default=False)] = None,
    repeats: Annotated[int, _Opt("--repeats", help="Train N seeded runs and keep the best on validation (with --valid-fraction 0: the lowest training error).")] = 1,
    valid_fraction: Annotated[Optional[float], _Opt("--valid-fraction", help="Share of each training file held out for validation [0.1]; 0 trains on every question and keeps each run's last epoch, e.g. to refit with epochs chosen by cross-validation.", show_default=False)] = None,
    workers: Annotated[int, _Opt("--workers", help="Train this many readers at once (one process each).")] = 1,
    seed: Annotated[int, _Opt("--seed")] = 0,
    device: Device = "cpu",
    threads: Threads = 1,
    compile: Annotated[bool, _Opt("--compile", help="NTM on the algorithmic tasks: torch.compile its step, about twice as fast on a CPU; the first steps compile (about a minute) and need a C++ compiler.")] = False,
    resume: Annotated[Optional[Path], _Opt("--resume", metavar="RUN_DIR", show_default=False, help=(
        "Continue the run in RUN_DIR where it stopped (Ctrl-C, a kill, a crash), with its saved settings; "
        "readers it finished are skipped."))] = None,
    sequences: Annotated[Optional[int], _Opt("--sequences", help="NTM: training sequences in all [copy 30000; repeat-copy, associative-recall 100000; priority-sort 200000].", show_default=False)] = None,
    eval_every: Annotated[int, _Opt("--eval-every", help="NTM: sequences between evaluations (the best is kept).")] = 1000,
    controller: Annotated[Optional[str], _Opt("--controller", help="NTM: lstm or feedforward (default lstm; associative-recall and bAbI: feedforward).", show_default=False)] = None,
    controller_size: Annotated[Optional[int], _Opt("--controller-size", help="NTM: controller units [100; associative-recall 256]; lstm: units per layer [Table 3: 256; repeat-copy 512; priority-sort 128].", show_default=False)] = None,
    heads: Annotated[Optional[int], _Opt("--heads", help="NTM: read heads = write heads [1; associative-recall 4; priority-sort 5; bAbI 2].", show_default=False)] = None,
    optimizer: Annotated[Optional[str], _Opt("--optimizer", help="NTM: rmsprop (torch's RMSprop), graves (Graves 2013 eqs. 38-41, centred) or adam (torch's Adam, as Collier & Beel 2018) [rmsprop; associative-recall adam].", show_default=False)] = None,
    initial_memory: Annotated[Optional[str], _Opt("--initial-memory", help="NTM: the memory each sequence starts from: rows (every row learned), shared (one learned row at every position) or constant (1e-6, not learned) [rows; associative-recall and bAbI constant].", show_default=False)] = None,
    valid_sizes: Annotated[Optional[str], _Opt("--valid-sizes", metavar="LOW-HIGH", help="NTM: sizes of the validation sequences that choose the kept weights, e.g. 8-10 [the training sizes].", show_default=False)] = None,
    valid_repeats: Annotated[Optional[str], _Opt("--valid-repeats", metavar="LOW-HIGH", help="NTM repeat-copy: repeat counts of the validation sequences, e.g. 10 with --valid-sizes 11-15 so that they hold the longest episodes [the training counts, 1-10].", show_default=False)] = None,
    state_noise: Annotated[Optional[float], _Opt("--state-noise", metavar="STD", help="NTM: in training, Gaussian noise of this standard deviation on the controller's hidden state at every step [0, as the paper].", show_default=False)] = None,
    snapshot_every: Annotated[Optional[int], _Opt("--snapshot-every", metavar="N", help="NTM: also save the weights every N sequences (a multiple of --eval-every), each a reader of its own in OUT/snapshots/seed<S>/<sequences>/ [off].", show_default=False)] = None,
) -> None:
    """Train a reader: memqa train --reader memn2n --task 1 --data en --out runs/t1

    Training state is saved after every epoch in OUT/.train-state/ until the run finishes; Ctrl-C or
    `kill PID` stops it, keeping the best reader so far."""
    import torch

    torch.set_num_threads(threads)
    from memqa.data.babi import parse_task_range
    from memqa.errors import ConfigError
    from memqa.pipeline import TrainRequest, default_configs

    if resume is not None:
        from memqa.ntm_pipeline import NTMTrainRequest

        request = resumed_request(context, resume)
        if isinstance(request, NTMTrainRequest):
            run_ntm_command(request, resume=True)
        else:
            _train(request, workers, resume=True)
        return
    if out is None:
        raise ConfigError("--out is missing: give the folder for the reader (or --resume RUN_DIR to continue a run)")
    if reader == NTM_READER and (tasks or joint or train_file or (task or "").strip().isdigit()):
        reader = NTM_QA_READER  # the NTM reading bAbI stories
    if reader in (NTM_READER, LSTM_READER):
        if tasks or joint or train_file or test_file or valid_fraction is not None or length_buckets is not None:
            raise ConfigError(f"--reader {reader} trains on one algorithmic --task; --tasks, --joint, --valid-fraction, "
                              "--length-buckets and the bAbI files do not apply")
        train_ntm_command(NTMOptions(out, task, sequences, eval_every, batch_size, learning_rate, controller,
                                     controller_size, heads, memory_size, repeats, seed, device, valid_sizes,
                                     decay_every, decay_factor, weight_decay, optimizer, reader, initial_memory,
                                     valid_repeats, compile, snapshot_every, state_noise))
        return
    for name in NTM_ONLY:
        if given(context, name) and not (reader == NTM_QA_READER and name in NTM_QA_FLAGS):
            readers = "ntm" if name in MEMORY_ONLY else "ntm or lstm (the algorithmic tasks)"
            raise ConfigError(f"{flag_name(context, name)} applies to --reader {readers} only, not "
                              f"{'bAbI stories' if reader == NTM_QA_READER else '--reader ' + reader}")
    if train_file is None and test_file is not None:
        raise ConfigError("--test-file needs --train-file (official tasks are scored on their own test files)")
    if task is not None and tasks is not None:
        raise ConfigError("give --task or --tasks, not both")
    task_ids = tuple(parse_task_range(tasks)) if tasks else (_babi_task(task) if task else 1,)
    model_config, train_config = default_configs(joint, reader)
    encoder = _replace(model_config.encoder, embedding_dim=embedding_dim, encoding=encoding, temporal=temporal,
                       memory_size=memory_size, position_scale=position_scale)
    model_config = _replace_for(_replace(model_config, encoder=encoder),
                                "ntm on bAbI stories" if reader == NTM_QA_READER else reader, {
        "--hops": ("hops", hops), "--random-noise": ("random_noise", random_noise),
        "--weight-tying": ("weight_tying", weight_tying), "--relu": ("relu", relu),
        "--dropout": ("dropout", dropout),
        "--linear-start-epochs": ("linear_start", None if linear_start_epochs is None else linear_start_epochs > 0),
        "--margin": ("margin", margin), "--time-features": ("time_features", time_features),
        "--match-features": ("match_features", match_features), "--nonlinear": ("nonlinear", nonlinear),
        "--unseen-words": ("unseen_words", unseen_words), "--controller": ("controller", controller),
        "--controller-size": ("controller_size", controller_size), "--heads": ("heads", heads),
        "--initial-memory": ("initial_memory", initial_memory)})
    train_config = _replace(train_config, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                            decay_every=decay_every, decay_factor=decay_factor, weight_decay=weight_decay,
                            linear_start_epochs=linear_start_epochs, repeats=repeats, seed=seed,
                            valid_fraction=valid_fraction, length_buckets=length_buckets)
    if learning_rate is not None and getattr(model_config, "linear_start", False) and train_config.linear_start_epochs:
        # With linear start the authors' code runs both phases at one rate (0.005): --lr sets that rate.
        train_config = _replace(train_config, linear_start_learning_rate=learning_rate)
    if train_file is None:
        data_dir = ensure_data_dir(data_dir)
    request = TrainRequest(out=out, reader=reader, tasks=task_ids, joint=joint, data=data,
                           data_dir=str(data_dir) if data_dir else None,
                           train_file=str(train_file) if train_file else None,
                           test_file=str(test_file) if test_file else None,
                           model_config=model_config, train_config=train_config, device=device,
                           command=invoked_command())
    _train(request, workers)


def _train(request, workers: int, resume: bool = False) -> None:
    """Run the request (or go on with it) under progress bars, then report."""
    from memqa.pipeline import train_readers

    repeats = request.train_config.repeats
    with _progress() as progress:
        bars: dict[tuple[str, int], int] = {}

        def on_epoch(label: str, repeat: int, record, total: int) -> None:
            if (label, repeat) not in bars:
                name = label + (f" run {repeat + 1}/{repeats}" if repeats > 1 else "")
                bars[label, repeat] = progress.add_task(name, total=total, loss=0.0, train=0.0, valid="-")
            progress.update(bars[label, repeat], completed=record.epoch, loss=record.train_loss,
                            train=100 * record.train_accuracy, valid=_percent(record.valid_accuracy))

        trained = train_readers(request, on_epoch=on_epoch, workers=workers, resume=resume)
    _report(trained, request.out)


NTM_ONLY = ("sequences", "eval_every", "controller", "controller_size", "heads", "valid_sizes", "optimizer",
            "initial_memory", "valid_repeats", "compile", "snapshot_every", "state_noise")  # train's parameters
MEMORY_ONLY = ("controller", "heads", "initial_memory", "compile", "state_noise")  # of those, the ones the LSTM baseline refuses too
NTM_QA_FLAGS = ("controller", "heads", "initial_memory", "controller_size")  # and the ones the NTM takes on bAbI stories
NTM_QA_READER = "ntm-qa"  # the kind `--reader ntm` trains on bAbI stories


def _babi_task(task: str) -> int:
    from memqa.errors import ConfigError

    if not task.strip().isdigit():
        raise ConfigError(f"--task {task!r}: give a bAbI task number, 1-20 (task names such as copy need --reader ntm)")
    return int(task)


def _replace(config, **changes):
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


def _replace_for(config, reader: str, flags: dict[str, tuple[str, object]]):
    """`config` with the flags given ({flag: (field, value)}, None = not given); a flag for a field that
    this reader's config lacks (e.g. --random-noise for memnn) is an error, never silently ignored."""
    from memqa.errors import ConfigError

    fields = {f.name for f in dataclasses.fields(config)}
    for flag, (name, value) in flags.items():
        if value is not None and name not in fields:
            raise ConfigError(f"{flag} does not apply to --reader {reader}")
    return _replace(config, **{name: value for name, value in flags.values() if name in fields})


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
                    TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("train {task.fields[train]:5.1f}%"),
                    TextColumn("valid {task.fields[valid]:>6}"), TimeElapsedColumn(), console=console)


def _percent(accuracy: float) -> str:
    """An accuracy as a percentage, '-' when there is none (no validation split)."""
    return "-" if math.isnan(accuracy) else f"{100 * accuracy:.1f}%"


def _report(trained, run_dir: Path) -> None:
    table = Table(title="trained readers")
    for column in ("reader", "best epoch", "train %", "valid %", "test %", "seconds", "saved to"):
        table.add_column(column, justify="left" if column in ("reader", "saved to") else "right")
    for item in trained:
        best = item.result.best
        test = "-" if item.test_accuracy is None else f"{100 * item.test_accuracy:.1f}"
        table.add_row(item.label, str(item.result.best_epoch), f"{100 * best.train_accuracy:.1f}",
                      _percent(best.valid_accuracy).rstrip("%"), test, f"{item.result.seconds:.1f}", str(item.path))
    console.print(table)
    from memqa.resume import is_resumable

    for item in trained:
        if item.result.stopped == "diverged":
            note(f"{item.label}: training diverged in {item.result.stop_detail}; it stopped and the best epoch "
                 f"before that was saved to {item.path}; train again with a smaller --lr")
    if is_resumable(run_dir):
        note(f"training was interrupted; what was trained so far was saved; continue with `memqa train --resume {run_dir}`")
    elif not trained:
        note("stopped before the first epoch ended; nothing was saved")
