"""The bAbI text format: parse it into Examples, write it back, and find the task files.

Two kinds of line, numbered from 1 in each story (Weston et al. 2015, the v1.2 README):
  statement  ``ID sentence``
  question   ``ID question<TAB>answer<TAB>supporting-ids`` (a space before the tab or not)
Comma-joined answers ("apple,football" in task 8, "n,w" in task 19) stay one label.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from memqa.errors import DataError

# Words are runs of letters, digits and apostrophes; punctuation is dropped. (The widely
# copied ``re.split('(\W+)?', s)`` splits into single characters on Python >= 3.7.)
_WORD = re.compile(r"[\w']+")

BABI_ENV_VAR = "MEMQA_BABI_DIR"
BABI_ROOT_NAME = "tasks_1-20_v1-2"
DATA_SETS = ("en", "en-10k")
TASK_IDS = tuple(range(1, 21))
DEFAULT_DOWNLOAD_DIR = Path("data")


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased words of `text`: 'Where is the milk?' -> ('where', 'is', 'the', 'milk')."""
    return tuple(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class Example:
    """One question with the story before it.

    story: tokenised statements, oldest first. supporting: indices into `story` of the
    annotated supporting facts, in the file's order (empty when the file has none).
    source: "file:line" of the question, for error messages. story_id: which story of its
    file the question belongs to (questions of one story share sentences, so they are
    never split between training and validation).
    """

    story: tuple[tuple[str, ...], ...]
    question: tuple[str, ...]
    answer: str
    supporting: tuple[int, ...] = ()
    task: int | None = None
    source: str = ""
    story_id: int = 0


def parse_babi(lines: Iterable[str], *, source: str = "<text>", task: int | None = None) -> list[Example]:
    """Parse bAbI-format lines. Any malformed line raises DataError naming `source` and the line."""
    examples: list[Example] = []
    story: list[tuple[str, ...]] = []
    slot_of_line: dict[int, int] = {}  # line id -> index in `story`
    previous_id, story_id = 0, -1
    for line_number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        where = f"{source}:{line_number}"
        line_id, text = _split_id(line, where)
        if line_id == 1:
            story, slot_of_line, story_id = [], {}, story_id + 1
        elif line_id != previous_id + 1:
            raise DataError(f"{where}: line id {line_id} follows {previous_id}; ids must count up from 1 in each story")
        previous_id = line_id
        if "\t" not in text:
            if not tokenize(text):
                raise DataError(f"{where}: statement has no words")
            slot_of_line[line_id] = len(story)
            story.append(tokenize(text))
            continue
        examples.append(_parse_question(text, story, slot_of_line, where, task, story_id))
    return examples


def _split_id(line: str, where: str) -> tuple[int, str]:
    head, _, text = line.strip(" ").partition(" ")
    if not _is_number(head) or not text.strip():
        raise DataError(f"{where}: expected 'ID sentence' or 'ID question<TAB>answer<TAB>facts', got {line[:60]!r}")
    return int(head), text


# No bAbI story has a billion lines; int() refuses strings over 4300 digits (sys.get_int_max_str_digits).
_MAX_ID_DIGITS = 9


def _is_number(text: str) -> bool:
    """ASCII digits only (str.isdigit() also accepts '²', which int() rejects), at most _MAX_ID_DIGITS."""
    return text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS


def _parse_question(text: str, story: list, slot_of_line: dict[int, int], where: str, task: int | None,
                    story_id: int) -> Example:
    fields = text.split("\t")
    if len(fields) not in (2, 3):
        raise DataError(f"{where}: a question line has 2 or 3 tab-separated fields, found {len(fields)}")
    question, answer = tokenize(fields[0]), fields[1].strip().lower()
    if not question:
        raise DataError(f"{where}: question has no words")
    if answer.split() != [answer]:  # empty, or words split by any whitespace ("\x0b" and "\u2028" too)
        raise DataError(f"{where}: answer must be one word or a comma-joined list, got {fields[1]!r}")
    if not story:
        raise DataError(f"{where}: question before any statement of its story")
    supporting = _supporting_slots(fields[2] if len(fields) == 3 else "", slot_of_line, where)
    return Example(tuple(story), question, answer, supporting, task, where, story_id)


def _supporting_slots(field: str, slot_of_line: dict[int, int], where: str) -> tuple[int, ...]:
    slots = []
    for token in field.split():
        if not _is_number(token):
            raise DataError(f"{where}: supporting-fact ids must be numbers, got {token[:20]!r}")
        if int(token) not in slot_of_line:
            raise DataError(f"{where}: supporting fact {token} is not an earlier statement of this story")
        slots.append(slot_of_line[int(token)])
    return tuple(slots)


def read_babi_file(path: str | os.PathLike, *, task: int | None = None) -> list[Example]:
    """Parse one bAbI file; missing, empty, non-UTF-8 or question-less files raise DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path or run `memqa download`")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({error.reason}); save the file as UTF-8") from None
    # "\n" only (read_text already turned "\r\n" into it): splitlines() would also break lines at
    # "\x0b", "\x1c" or "\u2028" inside a sentence, and error line numbers would disagree with editors.
    examples = parse_babi(text.split("\n"), source=str(path), task=task)
    if not examples:
        raise DataError(f"{path}: no questions found; a bAbI file needs lines 'ID question<TAB>answer<TAB>facts'")
    return examples


def format_babi(examples: Iterable[Example]) -> Iterator[str]:
    """Write examples back as bAbI lines (one story per example; parse_babi reads them back)."""
    for example in examples:
        for line_id, sentence in enumerate(example.story, start=1):
            yield f"{line_id} {' '.join(sentence)}"
        facts = " ".join(str(slot + 1) for slot in example.supporting)
        yield f"{len(example.story) + 1} {' '.join(example.question)}\t{example.answer}\t{facts}"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """Where the bAbI tasks are: `data_dir`, else $MEMQA_BABI_DIR, else data/ (downloaded).

    Returns the folder that holds en/ and en-10k/, or None when nothing is found."""
    candidates = [data_dir] if data_dir is not None else [os.environ.get(BABI_ENV_VAR), DEFAULT_DOWNLOAD_DIR]
    for candidate in candidates:
        if not candidate:
            continue
        root = Path(candidate).expanduser()
        for folder in (root, root / BABI_ROOT_NAME):
            if any((folder / name).is_dir() for name in DATA_SETS):
                return folder
        if data_dir is not None:
            raise DataError(f"{root}: no bAbI tasks here (expected {BABI_ROOT_NAME}/en/qa1_*_train.txt); "
                            f"point --data-dir at the folder that holds en/ and en-10k/")
    return None


def require_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    found = resolve_data_dir(data_dir)
    if found is None:
        raise DataError(f"bAbI data not found: run `memqa download`, or set {BABI_ENV_VAR}=/path/to/{BABI_ROOT_NAME} "
                        "(or pass --data-dir) to use a local copy")
    return found


def task_file(data_dir: Path, task: int, split: str, data: str = "en") -> Path:
    """The file of `task` (1-20) and `split` ('train' or 'test') in set `data` ('en' or 'en-10k')."""
    if task not in TASK_IDS:
        raise DataError(f"task {task} does not exist; bAbI tasks are numbered 1-20")
    if data not in DATA_SETS:
        raise DataError(f"unknown data set {data!r}; choose one of {', '.join(DATA_SETS)}")
    matches = sorted((data_dir / data).glob(f"qa{task}_*_{split}.txt"))
    if not matches:
        raise DataError(f"{data_dir / data}/qa{task}_*_{split}.txt: missing (task {task}, {split}, set {data}); "
                        "re-run `memqa download` or choose another --data set")
    return matches[0]


def load_task(task: int, split: str, *, data_dir: str | os.PathLike | None = None, data: str = "en") -> list[Example]:
    """Parse one official task file, e.g. load_task(1, 'train')."""
    return read_babi_file(task_file(require_data_dir(data_dir), task, split, data), task=task)


def parse_task_range(spec: str) -> list[int]:
    """'1-20' / '1,3,5-7' / '4' -> sorted task ids; anything else raises DataError."""
    tasks: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not _is_number(low) or (dash and not _is_number(high)) or (dash and int(high) < int(low)):
            raise DataError(f"bad task list {spec[:40]!r}; write e.g. 1-20 or 1,2,5")
        first, last = int(low), int(high or low)
        if first not in TASK_IDS or last not in TASK_IDS:  # checked first: '1-999999999' is no huge set
            raise DataError(f"bad task list {spec[:40]!r}: tasks are numbered 1-20")
        tasks.update(range(first, last + 1))
    if not tasks:
        raise DataError(f"bad task list {spec[:40]!r}: tasks are numbered 1-20")
    return sorted(tasks)
