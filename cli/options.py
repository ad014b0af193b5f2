"""Options shared by several commands, declared once."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Folder holding the bAbI tasks (en/, en-10k/). Default: $MEMQA_BABI_DIR, then data/.",
    show_default=False)]
DataSet = Annotated[str, typer.Option("--data", help="bAbI set: en (1k questions a task) or en-10k.")]
Tasks = Annotated[Optional[str], typer.Option("--tasks", help="Tasks, e.g. 1-20 or 1,2,5.", show_default=False)]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
Threads = Annotated[Optional[int], typer.Option(
    "--threads", min=1, help="CPU threads for torch. Memory networks are small: one thread is fastest and lets runs share cores.")]


def invoked_command() -> str:
    """The memqa command line being run, as a shell would take it back ("" when memqa runs inside another program)."""
    return shlex.join(["memqa", *sys.argv[1:]]) if Path(sys.argv[0]).name == "memqa" else ""
