"""`memqa plot`: PNG pictures of NTM runs (learning curves, generalisation, one sequence)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from memqa_cli.console import console, guarded
from memqa_cli.options import Device


@guarded
def plot(
    runs: Annotated[list[Path], typer.Argument(help="NTM or LSTM-baseline folders of one task (e.g. several seeds).")],
    out: Annotated[Path, typer.Option("--out", help="File prefix: writes OUT-learning.png, OUT-generalisation.png, "
                                      "OUT-episode.png.")],
    lengths: Annotated[Optional[str], typer.Option("--lengths", help="Test sizes, e.g. 10,20,40 [the task's].",
                                                   show_default=False)] = None,
    repeats: Annotated[Optional[int], typer.Option("--repeats", help="Repeat copy: repeats per test sequence.",
                                                   show_default=False)] = None,
    sequences: Annotated[int, typer.Option("--sequences", help="Test sequences per size.")] = 128,
    episode_length: Annotated[Optional[int], typer.Option("--episode-length", show_default=False,
                                                          help="Size of the sequence pictured [largest trained].")] = None,
    memory_size: Annotated[Optional[int], typer.Option("--memory-size", show_default=False, help=(
        "NTM: test with this many memory rows (at least the trained number), no retraining."))] = None,
    device: Device = "cpu",
) -> None:
    """Draw NTM runs (and LSTM baselines beside them): memqa plot runs/ntm-copy-s0 runs/lstm-copy-s0 --out docs/img/copy"""
    from memqa.ntm_evaluate import load_ntm
    from memqa.pipeline import resolve_device
    from memqa.plots import plot_runs
    from memqa_cli.ntm import default_sizes, parse_sizes

    device = resolve_device(device)
    sizes = parse_sizes(lengths) if lengths else default_sizes(load_ntm(runs[0], device)[1])
    made = plot_runs(runs, out, sizes=sizes, repeats=repeats, sequences=sequences, episode_size=episode_length,
                     device=device, memory_rows=memory_size)
    for file in made["files"]:
        console.print(f"wrote {file}")
    labels = list(made["scores"])
    print(f"| {made['task'].size_name} | " + " | ".join(labels) + " |")
    print("|---:|" + "---:|" * len(labels))
    for index, size in enumerate(sizes):
        print(f"| {size} | " + " | ".join(f"{made['scores'][label][index].bit_errors:.3f}" for label in labels) + " |")
