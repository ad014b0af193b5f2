"""`memqa ask`: answer a question about a story and show which sentences each hop used."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from memqa_cli.console import console, guarded, note
from memqa_cli.options import Device


@guarded
def ask(
    path: Annotated[Path, typer.Argument(help="A saved reader folder.")],
    question: Annotated[str, typer.Option("--question", "-q", help="The question, e.g. 'Where is the milk?'.")],
    story: Annotated[Optional[str], typer.Option("--story", "-s", help="Story file (one sentence a line, or bAbI lines), or - for stdin.", show_default=False)] = None,
    text: Annotated[Optional[str], typer.Option("--text", "-t", help="The story inline, e.g. 'Joe went to the kitchen. Joe took the milk.'", show_default=False)] = None,
    top: Annotated[int, typer.Option("--top", help="Sentences shown per hop (0 = all).")] = 5,
    device: Device = "cpu",
) -> None:
    """Answer a question about your own story with a trained reader."""
    from memqa.errors import DataError
    from memqa.pipeline import resolve_device
    from memqa.reader import load_reader

    if (story is None) == (text is None):
        raise DataError("give the story with --story FILE (or - for stdin) or --text '...', exactly one of them")
    reader = load_reader(path, resolve_device(device))
    answer = reader.answer(text if text is not None else _read_story(story), question)
    if answer.unknown_words:
        if reader.model.unknown_words == "keep":
            how = "read by exact matches" + (" and their context" if getattr(reader.model, "context", None) else "")
            note(f"words never seen in training, {how}: {', '.join(answer.unknown_words)}")
        else:
            note(f"unknown words ignored (never seen in training): {', '.join(answer.unknown_words)}")
    if answer.dropped_sentences:
        note(f"the story is longer than the memory: the {answer.dropped_sentences} oldest sentences were left out")
    console.print(f"[bold]{answer.answer}[/]  (confidence {answer.confidence:.2f})")
    hard = reader.model.hard_attention  # MemNN: each hop picks one sentence, or stops
    for hop, attention in enumerate(answer.hops, start=1):
        if hard and attention.empty > 0.5:
            console.print(f"hop {hop}: [dim]stop (no further supporting fact)[/]")
            break
        table = Table(title=f"hop {hop}", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("sentence")
        table.add_column("attention", justify="right")
        table.add_column("")
        for index, weight in attention.top(top or len(answer.sentences)):
            if hard and weight == 0:
                continue
            table.add_row(str(index + 1), answer.sentences[index], f"{weight:.3f}", _bar(weight))
        if attention.empty >= 0.001:
            table.add_row("", f"[dim]({reader.model.attention_rest})[/]", f"{attention.empty:.3f}", _bar(attention.empty))
        console.print(table)


def _bar(weight: float) -> str:
    return "█" * round(20 * min(max(weight, 0.0), 1.0))


def _read_story(story: str) -> str:
    from memqa.errors import DataError

    if story == "-":
        return sys.stdin.read()
    path = Path(story)
    if not path.is_file():
        raise DataError(f"{path}: no such story file (use --text for an inline story)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the story as UTF-8") from None
