"""`memqa train --resume RUN_DIR`: the run's settings come from RUN_DIR/.train-state/request.json;
a flag given beside --resume must agree with them (a resumed run that changed would not be exact)."""

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


def _path_setting(name: str) -> Callable[[Any], Any]:
    return lambda request: _path(getattr(request, name))


# flag (the train() parameter name) -> (the saved value, the flag's value in the same form)
_SAVED: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    **{name: (_path_setting(name), _path) for name in ("out", "data_dir", "train_file", "test_file")},
    "task": (_setting("tasks"), lambda task: (task,)),
    "tasks": (_setting("tasks"), lambda spec: tuple(_task_range(spec))),
    **{name: (_setting(name), lambda value: value) for name in ("reader", "joint", "data", "device")},
    **{name: (_setting("train_config", name), lambda value: value)
       for name in ("epochs", "batch_size", "learning_rate", "linear_start_epochs", "repeats", "seed")},
    **{name: (_setting("model_config", name), lambda value: value) for name in ("hops", "random_noise", "weight_tying")},
    **{name: (_setting("model_config", "encoder", name), lambda value: value)
       for name in ("embedding_dim", "encoding", "temporal", "memory_size")},
}


def _task_range(spec: str) -> list[int]:
    from memqa.data.babi import parse_task_range

    return parse_task_range(spec)


def resumed_request(context: typer.Context, run_dir: Path):
    """The saved request of the run in run_dir; ConfigError when a given flag contradicts it."""
    from memqa.errors import ConfigError
    from memqa.pipeline import load_run_request

    request = load_run_request(run_dir)
    for name, value in context.params.items():
        source = context.get_parameter_source(name)  # by name: typer bundles its own click and enum
        if name in EXECUTION_FLAGS or getattr(source, "name", None) not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        flag = _flag(context, name)
        if name not in _SAVED:
            raise ConfigError(f"{flag} cannot be given with --resume: the run keeps the settings it started with")
        saved_value, given = _SAVED[name][0](request), _SAVED[name][1](value)
        if saved_value is _ABSENT or saved_value != given:
            shown = "not set" if saved_value is _ABSENT else repr(saved_value)
            raise ConfigError(f"{flag} {value} contradicts the run in {run_dir} (saved: {shown}); a resumed run "
                              "keeps its settings: drop the flag, or start a new run with another --out")
    return request


def _flag(context: typer.Context, name: str) -> str:
    option = next((p for p in context.command.params if p.name == name), None)
    return option.opts[0] if option is not None and option.opts else f"--{name.replace('_', '-')}"
