"""The NTM's algorithmic tasks in `memqa train --reader ntm --task copy` and
`memqa evaluate RUN --lengths 20,40,80`: progress in sequences, tables in bits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memqa_cli.console import console, note
from memqa_cli.options import invoked_command

NTM_READER = "ntm"
LSTM_READER = "lstm"  # the paper's LSTM baseline on the same tasks (Table 3)


@dataclasses.dataclass(frozen=True)
class NTMOptions:
    """What `memqa train` was given for an NTM run (None: the task's default)."""

    out: Path
    task: str | None
    sequences: int | None  # None: the task's default (memqa.ntm_pipeline.DEFAULT_SEQUENCES)
    eval_every: int
    batch_size: int | None
    learning_rate: float | None
    controller: str | None
    controller_size: int | None
    heads: int | None
    memory_rows: int | None
    repeats: int
    seed: int
    device: str
    valid_sizes: str | None = None  # "LOW-HIGH" or "N"
    decay_every: int | None = None  # sequences between decays of the learning rate (None: no decay)
    decay_factor: float | None = None  # None: 0.5 when decay_every is given
    weight_decay: float | None = None
    optimizer: str | None = None  # "rmsprop", "graves" or "adam" (None: NTMConfig's default)
    reader: str = NTM_READER  # or LSTM_READER
    initial_memory: str | None = None  # "rows", "shared" or "constant" (None: NTMConfig's default)
    valid_repeats: str | None = None  # repeat copy: "LOW-HIGH" or "N"
    compile: bool = False  # torch.compile the NTM's step
    snapshot_every: int | None = None  # save the weights every N sequences in OUT/snapshots/
    state_noise: float | None = None  # training noise on the controller's hidden state (None: NTMConfig's 0)


def train_ntm_command(options: NTMOptions) -> None:
    from memqa.errors import ConfigError
    from memqa.ntm_pipeline import NTMTrainRequest, default_configs
    from memqa.pipeline import resolve_device
    from memqa.tasks.algorithmic import TASKS

    if options.task not in TASKS:
        babi = " or a bAbI task, 1-20" if options.reader == NTM_READER else ""
        raise ConfigError(f"--reader {options.reader} needs --task {' | '.join(TASKS)}{babi} (got {options.task!r})")
    task, model, train = default_configs(options.task, options.sequences, options.eval_every,
                                         batch_size=options.batch_size, reader=options.reader)
    if options.reader == LSTM_READER:
        given = [flag for flag, value in (("--controller", options.controller), ("--heads", options.heads),
                                          ("--memory-size", options.memory_rows),
                                          ("--initial-memory", options.initial_memory),
                                          ("--state-noise", options.state_noise)) if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to --reader lstm, "
                              "the LSTM baseline without memory (its size is --controller-size)")
        model = _replace(model, hidden_size=options.controller_size, optimizer=options.optimizer)
    else:
        heads = {} if options.heads is None else {"read_heads": options.heads, "write_heads": options.heads}
        model = _replace(model, controller=options.controller, controller_size=options.controller_size,
                         memory_rows=options.memory_rows, optimizer=options.optimizer,
                         initial_memory=options.initial_memory, state_noise=options.state_noise, **heads)
    train = _replace(train, learning_rate=options.learning_rate, repeats=options.repeats, seed=options.seed,
                     weight_decay=options.weight_decay, **_decay(options))
    request = NTMTrainRequest(options.out, task, model, train, options.eval_every, resolve_device(options.device),
                              parse_size_range(options.valid_sizes) if options.valid_sizes else None,
                              invoked_command(),
                              parse_size_range(options.valid_repeats, "--valid-repeats") if options.valid_repeats else None,
                              options.compile, options.snapshot_every)
    run_ntm_command(request)


def _decay(options: NTMOptions) -> dict[str, int | float]:
    """--decay-every SEQUENCES and --decay-factor as TrainConfig fields (its epochs are evaluations)."""
    from memqa.config import TrainConfig
    from memqa.errors import ConfigError

    if options.decay_every is None:
        if options.decay_factor is not None:
            raise ConfigError("--decay-factor needs --decay-every (NTM runs keep one learning rate by default)")
        return {}
    if options.decay_every < options.eval_every or options.decay_every % options.eval_every:
        raise ConfigError(f"--decay-every {options.decay_every} must be a multiple of --eval-every "
                          f"{options.eval_every} (the rate changes between evaluations)")
    factor = TrainConfig.decay_factor if options.decay_factor is None else options.decay_factor
    return {"decay_every": options.decay_every // options.eval_every, "decay_factor": factor}


def parse_size_range(spec: str, flag: str = "--valid-sizes") -> tuple[int, int]:
    """--valid-sizes (or --valid-repeats) "8-10" or "12" -> (low, high); ConfigError when it is neither."""
    from memqa.errors import ConfigError

    low, _, high = spec.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise ConfigError(f"{flag} must be LOW-HIGH or N (e.g. 8-10), got {spec!r}") from None


def run_ntm_command(request, resume: bool = False) -> None:
    """Train (or, with resume, go on with) an NTM run under a progress bar, then report."""
    from memqa.ntm_pipeline import sequence_reader, train_ntm

    eval_every = request.eval_every
    with _progress() as progress:
        bar = progress.add_task(f"{sequence_reader(request.model_config)} {request.task.name}", total=request.train_config.epochs * eval_every,
                                cost=0.0, errors=0.0)
        seen: list[int] = []

        def on_point(point: dict, total: int) -> None:
            if seen and point["sequences"] <= seen[-1]:  # a new seed started
                progress.reset(bar, total=total, cost=0.0, errors=0.0)
            seen.append(point["sequences"])
            progress.update(bar, completed=point["sequences"], cost=point["valid_cost_bits"],
                            errors=point["valid_bit_errors"])

        trained = train_ntm(request, on_point=on_point, resume=resume)
    _report(trained)


def _replace(config, **changes):
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("sequences"),
                    TextColumn("valid cost {task.fields[cost]:7.3f} bits/seq"),
                    TextColumn("bit errors {task.fields[errors]:6.3f}/seq"), TimeElapsedColumn(), console=console)


def _report(trained) -> None:
    if trained is None:
        note("stopped before the first evaluation; nothing was saved")
        return
    result, info_point = trained.result, trained.curve[trained.result.best_epoch - 1]
    table = Table(title=f"trained {trained.result.model.label}")
    for column in ("best at (sequences)", "valid cost (bits/seq)", "bit errors/seq", "perfect %", "seconds", "saved to"):
        table.add_column(column, justify="left" if column == "saved to" else "right")
    table.add_row(str(info_point["sequences"]), f"{info_point['valid_cost_bits']:.3f}",
                  f"{info_point['valid_bit_errors']:.3f}", f"{100 * info_point['valid_perfect']:.1f}",
                  f"{result.seconds:.1f}", str(trained.path))
    console.print(table)
    if result.stopped == "interrupted":
        from memqa.resume import is_resumable

        more = f"; continue with `memqa train --resume {trained.path}`" if is_resumable(trained.path) else ""
        note(f"training was interrupted; the best evaluation so far was saved{more}")
    elif result.stopped:
        note(f"training diverged in {result.stop_detail}; the best evaluation before that was saved; try a smaller --lr")


def is_ntm_folder(path: Path) -> bool:
    """Does `path` hold an NTM (or its LSTM baseline) trained on an algorithmic task? (Read from config.json.)"""
    import json

    try:
        kind = json.loads((path / "config.json").read_text(encoding="utf-8")).get("reader")
    except (OSError, ValueError, AttributeError):
        return False
    from memqa.ntm_pipeline import SEQUENCE_MODELS

    return kind in {model.kind for model in SEQUENCE_MODELS.values()}


def evaluate_ntm_command(path: Path, lengths: str | None, repeats: int | None, sequences: int, format: str,
                         output: Path | None, device: str, memory_rows: int | None = None) -> None:
    from memqa.errors import ConfigError
    from memqa.ntm_evaluate import load_ntm, score_sizes, scores_to_json, scores_to_markdown, with_test_memory

    model, task, _ = load_ntm(path, device)
    if repeats is not None and task.name != "repeat-copy":
        raise ConfigError(f"--repeats is for the repeat-copy task; {path} holds {task.name}")
    memory = ""
    if memory_rows is not None:
        larger = with_test_memory(model, memory_rows, path)
        memory = f", {memory_rows} memory rows (trained with {model.config.memory_rows})"
        model = larger
    sizes = parse_sizes(lengths) if lengths else default_sizes(task)
    scores = score_sizes(model, task, sizes, repeats=repeats, sequences=sequences, device=device)
    text = {"json": scores_to_json, "markdown": scores_to_markdown}.get(format)
    if text is not None:
        if output:
            output.write_text(text(task, scores) + "\n", encoding="utf-8")
            console.print(f"wrote {output}")
        else:
            print(text(task, scores))
        return
    table = Table(title=f"{model.label} {task.name}: {sequences} test sequences per {task.size_name}{memory}")
    for column in (task.size_name, "repeats", "cost (bits/seq)", "bit errors/seq", "perfect %"):
        table.add_column(column, justify="right")
    for s in scores:
        table.add_row(str(s.size), str(s.repeats or "-"), f"{s.cost_bits:.3f}", f"{s.bit_errors:.3f}",
                      f"{100 * s.perfect:.1f}")
    console.print(table)


def parse_sizes(text: str) -> list[int]:
    from memqa.errors import ConfigError

    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--lengths {text!r}: give whole numbers separated by commas, e.g. 20,40,80") from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--lengths {text!r}: give positive whole numbers, e.g. 20,40,80")
    return sizes


def default_sizes(task) -> list[int]:
    """The training maximum and the paper's generalisation sizes (§4: Figures 4, 8, 11)."""
    return {"copy": [10, 20, 30, 40, 50, 60, 80, 100, 120], "repeat-copy": [10, 20],
            "associative-recall": [6, 8, 10, 12, 15, 20], "priority-sort": [20]}[task.name]
