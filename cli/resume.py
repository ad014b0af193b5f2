"""`memqa train --resume RUN_DIR` (bAbI readers and NTM runs): the run's settings come from
RUN_DIR/.train-state/request.json; a flag given beside --resume must agree with them (a resumed run
that changed would not be exact)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import typer

# Flags that only say how to run, not what to train: free to change on resume.
EXECUTION_FLAGS = {"resume", "workers", "threads"}

_ABSENT = object()


def _path(value: Any) -> str | None:
    return None if value is None else os.path.abspath(value)


def _setting(*names: str) -> Callable[[Any], Any]:
    """The saved request's value at request.<names[0]>.<names[1]>..., or _ABSENT."""
    def read(request: Any) -> Any:
        for name in names:
            request = getattr(request, name, _ABSENT)
        return request
    return read


def _parse_sizes(value: Any) -> tuple[int, int] | None:
    from memqa_cli.ntm import parse_size_range

    return None if value is None else parse_size_range(value)


def _path_setting(name: str) -> Callable[[Any], Any]:
    return lambda request: _path(getattr(request, name))


# flag (the train() parameter name) -> (the saved value, the flag's value in the same form)
_SAVED: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    **{name: (_path_setting(name), _path) for name in ("out", "data_dir", "train_file", "test_file")},
    "task": (_setting("tasks"), lambda task: (task,)),
    "tasks": (_setting("tasks"), lambda spec: tuple(_task_range(spec))),
    **{name: (_setting(name), lambda value: value) for name in ("reader", "joint", "data", "device")},
    **{name: (_setting("train_config", name), lambda value: value)
       for name in ("epochs", "batch_size", "learning_rate", "decay_every", "decay_factor", "weight_decay",
                    "linear_start_epochs", "repeats", "seed", "length_buckets")},
    **{name: (_setting("model_config", name), lambda value: value)
       for name in ("hops", "random_noise", "weight_tying", "relu", "dropout", "margin", "time_features", "match_features", "nonlinear",
                    "unseen_words")},
    **{name: (_setting("model_config", "encoder", name), lambda value: value)
       for name in ("embedding_dim", "encoding", "temporal", "memory_size", "position_scale")},
}


def _task_range(spec: str) -> list[int]:
    from memqa.data.babi import parse_task_range

    return parse_task_range(spec)


# The same for an NTM run (memqa.ntm_pipeline.NTMTrainRequest).
_SAVED_NTM: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "out": (_path_setting("out"), _path),
    "reader": (lambda request: _sequence_reader(request.model_config), lambda value: value),
    "task": (_setting("task", "name"), lambda value: value),
    "sequences": (lambda request: request.train_config.epochs * request.eval_every, lambda value: value),
    "eval_every": (_setting("eval_every"), lambda value: value),
    "device": (_setting("device"), lambda value: value),
    **{name: (_setting("train_config", name), lambda value: value)
       for name in ("batch_size", "learning_rate", "decay_factor", "weight_decay", "repeats", "seed")},
    "decay_every": (lambda request: request.train_config.decay_every * request.eval_every, lambda value: value),
    **{name: (_setting("model_config", name), lambda value: value) for name in ("controller", "optimizer", "initial_memory", "state_noise")},
    "controller_size": (lambda request: getattr(request.model_config, "controller_size",
                                                getattr(request.model_config, "hidden_size", _ABSENT)), lambda value: value),
    "heads": (_setting("model_config", "read_heads"), lambda value: value),
    "memory_size": (_setting("model_config", "memory_rows"), lambda value: value),
    "valid_sizes": (_setting("valid_sizes"), _parse_sizes),
    "valid_repeats": (_setting("valid_repeats"), _parse_sizes),
    "compile": (_setting("compile"), lambda value: value),
    "snapshot_every": (_setting("snapshot_every"), lambda value: value),
}


def _sequence_reader(config: Any) -> str:
    from memqa.ntm_pipeline import sequence_reader

    return sequence_reader(config)


def resumed_request(context: typer.Context, run_dir: Path):
    """The saved request of the run in run_dir (a bAbI TrainRequest or an NTMTrainRequest);
    ConfigError when a given flag contradicts it."""
    from memqa.ntm_pipeline import is_ntm_run, load_ntm_request
    from memqa.pipeline import load_run_request

    if is_ntm_run(run_dir):
        request, saved = load_ntm_request(run_dir), _SAVED_NTM
    else:
        request, saved = load_run_request(run_dir), _SAVED
    _check_flags(context, run_dir, request, saved)
    return request


def _check_flags(context: typer.Context, run_dir: Path, request: Any, saved: dict) -> None:
    from memqa.errors import ConfigError

    for name, value in context.params.items():
        if name in EXECUTION_FLAGS or not given(context, name):
            continue
        flag = flag_name(context, name)
        if name not in saved:
            raise ConfigError(f"{flag} cannot be given with --resume: the run keeps the settings it started with")
        saved_value, wanted = saved[name][0](request), saved[name][1](value)
        if saved_value is _ABSENT or saved_value != wanted:
            shown = "not set" if saved_value is _ABSENT else repr(saved_value)
            raise ConfigError(f"{flag} {value} contradicts the run in {run_dir} (saved: {shown}); a resumed run "
                              "keeps its settings: drop the flag, or start a new run with another --out")


def given(context: typer.Context, name: str) -> bool:
    """Was parameter `name` given on the command line (or through the environment), not defaulted?"""
    source = context.get_parameter_source(name)  # by name: typer bundles its own click and enum
    return getattr(source, "name", None) in ("COMMANDLINE", "ENVIRONMENT")


def flag_name(context: typer.Context, name: str) -> str:
    option = next((p for p in context.command.params if p.name == name), None)
    return option.opts[0] if option is not None and option.opts else f"--{name.replace('_', '-')}"
