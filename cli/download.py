"""`memqa download`, and the offer to download when a command finds no bAbI data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from memqa.data.babi import BABI_ENV_VAR, DEFAULT_DOWNLOAD_DIR, resolve_data_dir
from memqa_cli.console import console, guarded, note


@guarded
def download(
    dest: Annotated[Path, typer.Option("--dest", help="Where the archive is unpacked.")] = DEFAULT_DOWNLOAD_DIR,
    url: Annotated[Optional[str], typer.Option("--url", help="Another source: a URL, file:// URL or local .tar.gz.",
                                               show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if a verified copy exists.")] = False,
    verify: Annotated[bool, typer.Option(help="Check the archive's sha256 against the official release.")] = True,
) -> None:
    """Download the official bAbI v1.2 tasks (tasks_1-20_v1-2.tar.gz), verify and unpack them."""
    path = fetch(dest, url=url, force=force, verify=verify)
    console.print(f"bAbI tasks ready in [bold]{path}[/]")


def fetch(dest: Path, *, url: str | None = None, force: bool = False, verify: bool = True) -> Path:
    from memqa.data import download as dl

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True) as progress:
        bar = progress.add_task("downloading bAbI", total=None)
        report = lambda done, total: progress.update(bar, completed=done, total=total)  # noqa: E731
        kwargs = ({"url": url} if url else {}) | ({} if verify else {"sha256": None})
        return dl.download_babi(dest, progress=report, force=force, **kwargs)


def ensure_data_dir(data_dir: Path | None) -> Path:
    """The bAbI folder to use: --data-dir, $MEMQA_BABI_DIR, data/; otherwise offer the download."""
    found = resolve_data_dir(data_dir)
    if found is not None:
        return found
    hint = (f"bAbI data not found: run `memqa download`, or point at a local copy with "
            f"{BABI_ENV_VAR}=/path/to/tasks_1-20_v1-2 or --data-dir")
    if not sys.stdin.isatty():
        from memqa.errors import DataError

        raise DataError(hint)
    note(hint)
    if not typer.confirm("Download bAbI v1.2 (about 16 MB) into data/ now?", default=True):
        raise typer.Exit(1)
    return fetch(DEFAULT_DOWNLOAD_DIR)
