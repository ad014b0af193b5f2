"""Rendering and the one error boundary: MemqaError -> a red line and exit code 1."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from memqa.errors import MemqaError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def guarded(command: F) -> F:
    """Run a command with memqa's error boundary (MEMQA_DEBUG=1 shows the traceback instead)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except MemqaError as error:
                if os.environ.get("MEMQA_DEBUG") == "1":
                    raise
                err_console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
                raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err_console.print(f"[yellow]note:[/] {message}", soft_wrap=True)


def note(message: str) -> None:
    err_console.print(f"[yellow]note:[/] {message}", soft_wrap=True)
