"""`memqa evaluate`: per-task test accuracy of saved readers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from memqa_cli.console import console, guarded
from memqa_cli.download import ensure_data_dir
from memqa_cli.ntm import evaluate_ntm_command, is_ntm_folder
from memqa_cli.options import DataDir, DataSet, Device, Tasks, Threads

FORMATS = ("table", "json", "markdown")


@guarded
def evaluate(
    path: Annotated[Path, typer.Argument(help="A saved reader, or a run folder of task<N>/ readers.")],
    tasks: Tasks = None,
    data: DataSet = "en",
    data_dir: DataDir = None,
    test_file: Annotated[Optional[Path], typer.Option("--test-file", help="Evaluate on any bAbI-format file.",
                                                      show_default=False)] = None,
    split: Annotated[str, typer.Option("--split", help=(
        "test: the official test files; valid: the validation split each reader held out of the training "
        "files (to compare and choose readers without reading a test file)."))] = "test",
    format: Annotated[str, typer.Option("--format", help="table, json or markdown.")] = "table",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the json/markdown here.",
                                                   show_default=False)] = None,
    device: Device = "cpu",
    lengths: Annotated[Optional[str], typer.Option("--lengths", show_default=False, help=(
        "NTM: test sizes, e.g. 20,40,80 (sequence length; items for associative recall; vectors for priority sort)."))] = None,
    repeats: Annotated[Optional[int], typer.Option("--repeats", help="NTM repeat copy: repeats per test sequence.",
                                                   show_default=False)] = None,
    sequences: Annotated[int, typer.Option("--sequences", help="NTM: test sequences per size.")] = 128,
    memory_size: Annotated[Optional[int], typer.Option("--memory-size", show_default=False, help=(
        "NTM: test with this many memory rows (at least the trained number), no retraining."))] = None,
    threads: Threads = None,
) -> None:
    """Evaluate readers on the official bAbI test files (or, with --split valid, on their validation
    splits): accuracy, error and pass (>= 95%) per task.
    An NTM trained on an algorithmic task is scored in bits per sequence at each of --lengths."""
    from memqa.data.babi import parse_task_range
    from memqa.errors import ConfigError
    from memqa.evaluate import evaluate_file, evaluate_tasks
    from memqa.pipeline import resolve_device

    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    if threads is not None:  # None: torch's default
        import torch

        torch.set_num_threads(threads)
    device = resolve_device(device)
    if lengths is not None or is_ntm_folder(path):
        evaluate_ntm_command(path, lengths, repeats, sequences, format, output, device, memory_size)
        return
    if memory_size is not None:
        raise ConfigError(f"--memory-size applies to an NTM trained on an algorithmic task; {path} holds bAbI readers")
    if test_file is not None:
        if split != "test":
            raise ConfigError("--split valid applies to the official tasks, not to --test-file")
        report = evaluate_file(path, test_file, device=device)
    else:
        task_ids = parse_task_range(tasks) if tasks else None
        report = evaluate_tasks(path, task_ids, data_dir=ensure_data_dir(data_dir), data=data, device=device,
                                split=split)
    text = {"json": report.to_json, "markdown": report.to_markdown}.get(format)
    if text is not None:
        if output:
            output.write_text(text() + "\n", encoding="utf-8")
            console.print(f"wrote {output}")
        else:
            print(text())
        return
    title = {"test": "test results", "valid": "validation results"}.get(report.split, report.split)
    table = Table(title=f"bAbI {title} ({data})" if test_file is None else f"results on {test_file}")
    facts = report.has_facts  # MemNN: how often the facts it picked are the annotated ones
    for column in ("task", "questions", "accuracy %", "error %", "passed") + (("facts %",) if facts else ()):
        table.add_column(column, justify="right")
    for score in report.scores:
        fact_cell = ("-" if score.facts is None else f"{100 * score.facts:.1f}",) if facts else ()
        table.add_row(score.task, str(score.questions), f"{100 * score.accuracy:.1f}", f"{score.error:.1f}",
                      "[green]yes[/]" if score.passed else "[red]no[/]", *fact_cell)
    table.add_section()
    table.add_row("mean", "", "", f"{report.mean_error:.1f}", f"{report.failed} failed")
    console.print(table)
