"""Shared by the NTM analysis scripts: a saved NTM run of a given task, ready to probe."""

from __future__ import annotations

from memqa.models.ntm import NTMSequenceModel
from memqa.ntm_evaluate import load_ntm
from memqa.tasks.algorithmic import Task


def load_run(path: str, task_name: str) -> tuple[NTMSequenceModel, Task, dict]:
    """(model in eval mode, task, info) of the NTM in `path`; exits with one line if it learned another task."""
    model, task, info = load_ntm(path, "cpu")
    if task.name != task_name:
        raise SystemExit(f"{path}: an NTM of {task.name}; this script reads {task_name} runs")
    return model.eval(), task, info
