"""Every `memqa ...` and `python benchmarks/...` command written in README.md and docs/ parses: the
subcommand exists, every flag is one it takes, and its values have the flag's type. Nothing runs;
this catches the docs going stale when a flag is renamed or removed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from memqa_cli.main import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^\s*```")
INLINE = re.compile(r"`([^`]+)`")
# Shell variables of the docs' loops (`for s in 0 1 2; do ... --seed $s`) stand for a number.
SHELL_VARIABLE = re.compile(r"\$\{?\w+\}?")
SEPARATORS = {";", "&&", "||", "|", "&", ">", ">>", "<", "(", ")"}
LEADING = {"do", "then", "$"}


def _commands(page: Path) -> list[tuple[int, str]]:
    """(line number, command text) for every command in the page: code-block lines (with their `\\`
    continuations) and inline code spans in the prose (which may wrap over lines)."""
    found: list[tuple[int, str]] = []
    lines = page.read_text().splitlines()
    in_block = False
    pending = ""
    prose: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            in_block = not in_block
            continue
        if in_block:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            found.append((number, pending + line))
            pending = ""
        else:
            prose.append((number, line))
    # Inline spans: join each paragraph so that a span broken over two lines is read whole.
    paragraph: list[tuple[int, str]] = []
    for number, line in [*prose, (0, "")]:
        if line.strip():
            paragraph.append((number, line))
            continue
        if paragraph:
            text = " ".join(text for _, text in paragraph)
            found += [(paragraph[0][0], span) for span in INLINE.findall(text)]
        paragraph = []
    return found


def _invocations(text: str) -> list[list[str]]:
    """The argument lists of the memqa and python commands in one shell line."""
    lexer = shlex.shlex(SHELL_VARIABLE.sub("1", text), posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unclosed quote: prose in backticks, not a command
        return []
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token in SEPARATORS:
            segments.append([])
        else:
            segments[-1].append(token)
    invocations = []
    for segment in segments:
        while segment and segment[0] in LEADING:
            segment = segment[1:]
        if len(segment) >= 2 and segment[0] in ("memqa", ".venv/bin/memqa"):
            invocations.append(segment)
        elif len(segment) >= 2 and segment[0] in ("python", "python3") and segment[1].startswith("benchmarks/"):
            invocations.append(segment)
    return invocations


def _all_invocations() -> list[tuple[str, list[str]]]:
    return [
        (f"{page.relative_to(ROOT)}:{number}", invocation)
        for page in PAGES
        for number, text in _commands(page)
        for invocation in _invocations(text)
    ]


INVOCATIONS = _all_invocations()


def test_the_docs_have_commands_to_check():
    """The extraction itself works: README's quick start and the NTM pages are found."""
    memqa = {where.split(":")[0] for where, args in INVOCATIONS if args[0].endswith("memqa")}
    assert "README.md" in memqa and "docs/ntm.md" in memqa
    subcommands = {args[1] for _, args in INVOCATIONS if args[0].endswith("memqa")}
    assert {"download", "train", "evaluate", "ask", "plot"} <= subcommands
    assert any(args[0] == "python" for _, args in INVOCATIONS)


def _memqa_problem(args: list[str]) -> str | None:
    """Why `args` (a memqa command from the docs) would not parse, or None."""
    command = typer.main.get_command(app)
    name, rest = args[1], args[2:]
    if name in ("--help", "--version") or rest and rest[-1] in ("--help", "-h"):
        return None
    if name not in command.commands:
        return f"`memqa {name}` is not a memqa command"
    subcommand = command.commands[name]
    # Placeholders (RUN, SEQUENCES, ...) after a flag stand for a value the reader chooses, and prose may name a
    # flag without its value (`memqa train --resume`): give the flag's type something it accepts.
    takes_value = {opt for param in subcommand.params if not getattr(param, "is_flag", True) for opt in param.opts}
    placeholder = [token in ("...", "…") or token.isupper() and token.isalpha() for token in rest]
    rest = ["1" if placeholder[i] and i and rest[i - 1] in takes_value else token
            for i, token in enumerate(rest) if token not in ("...", "…") or i and rest[i - 1] in takes_value]
    if rest and rest[-1] in takes_value:
        rest.append("1")
    try:
        context = subcommand.make_context(f"memqa {name}", rest)
    except Exception as error:  # click's UsageError and BadParameter: a flag that is not there, a wrong type
        if type(error).__name__ == "MissingParameter":  # prose naming a command (`memqa ask`), not running it
            return None
        return f"`{shlex.join(args)}` does not parse: {error}"
    return f"`{shlex.join(args)}` has extra arguments {context.args}" if context.args else None


def test_the_check_catches_stale_commands():
    line = "for s in 0 1; do memqa train --reader ntm --seed $s --no-such-flag 3 --out runs/x-s$s; done"
    assert [_memqa_problem(args) for args in _invocations(line)] == [
        "`memqa train --reader ntm --seed 1 --no-such-flag 3 --out runs/x-s1` does not parse: No such option: --no-such-flag"]
    assert "does not parse" in _memqa_problem(["memqa", "evaluate", "RUN", "--lengths", "20", "--sequences", "many"])
    assert "not a memqa command" in _memqa_problem(["memqa", "fit", "--task", "1"])
    assert _memqa_problem(["memqa", "train", "--resume"]) is None  # prose naming the flag
    assert _memqa_problem(["memqa", "train", "--sequences", "SEQUENCES", "--out", "..."]) is None


@pytest.mark.parametrize(("where", "args"), [pair for pair in INVOCATIONS if pair[1][0].endswith("memqa")],
                         ids=lambda value: value if isinstance(value, str) else None)
def test_memqa_command_parses(where, args):
    problem = _memqa_problem(args)
    assert problem is None, f"{where}: {problem}"


def _benchmark_problem(args: list[str]) -> str | None:
    """Why `python benchmarks/X.py --flag ...` would not run: no such script, or a flag it does not define."""
    script = ROOT / args[1]
    if not script.is_file():
        return f"{args[1]} does not exist"
    source = script.read_text()
    missing = [flag for flag in (token.split("=")[0] for token in args[2:] if token.startswith("--"))
               if f'"{flag}"' not in source and f"'{flag}'" not in source]
    return f"{args[1]} takes no {', '.join(missing)}" if missing else None


def test_the_check_catches_stale_benchmark_commands():
    assert _benchmark_problem(["python", "benchmarks/ntm_speed.py", "--threads", "2"]) is None
    assert _benchmark_problem(["python", "benchmarks/ntm_speed.py", "--no-such-flag"]) == (
        "benchmarks/ntm_speed.py takes no --no-such-flag")
    assert _benchmark_problem(["python", "benchmarks/gone.py"]) == "benchmarks/gone.py does not exist"


@pytest.mark.parametrize(("where", "args"), [pair for pair in INVOCATIONS if pair[1][0].startswith("python")],
                         ids=lambda value: value if isinstance(value, str) else None)
def test_benchmark_command_names_its_flags(where, args):
    problem = _benchmark_problem(args)
    assert problem is None, f"{where}: {problem}"
