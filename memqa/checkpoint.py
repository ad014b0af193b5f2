"""A saved reader is one self-contained folder (the Hugging Face convention):

  config.json        format version, reader kind, its config, training facts and scores
  model.safetensors  the weights (never pickled code)
  vocab.json         words and answer labels (absent for models that read no words: the NTM on bit sequences)
  README.md          a short model card
  .train-state/      only while a run that saves here is unfinished (memqa/resume.py); kept on save
  snapshots/         an NTM run's weights at every --snapshot-every sequences, each a saved reader; kept on save

Loading is strict: each way a folder can be wrong is one CheckpointError naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from memqa.config import from_dict, to_dict
from memqa.data.vocab import Vocab
from memqa.errors import CheckpointError, ConfigError, VocabularyError
from memqa.models.base import ReaderModel
from memqa.models.registry import READERS, build_model

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE, CARD_FILE = "config.json", "model.safetensors", "vocab.json", "README.md"
_TOP_LEVEL_KEYS = {"format_version", "reader", "model", "info"}
TRAIN_STATE_DIR = ".train-state"  # a resumable run's state (memqa/resume.py), carried over when the reader is saved
SNAPSHOTS_DIR = "snapshots"  # an NTM run's weights along its training (memqa/ntm_pipeline.py), carried over too
_CARRIED_OVER = (TRAIN_STATE_DIR, SNAPSHOTS_DIR)


def save_reader(path: str | os.PathLike, model: ReaderModel, vocab: Vocab | None, info: dict[str, Any],
                card: str | None = None) -> Path:
    """Write the folder atomically: a temporary sibling is filled, then renamed into place.
    `vocab` is None for a model that reads no words; `card` replaces the bAbI model card."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        config = {"format_version": FORMAT_VERSION, "reader": model.kind, "model": to_dict(model.config), "info": info}
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
        save_file(state, str(staging / WEIGHTS_FILE), metadata={"reader": model.kind})
        if vocab is not None:
            vocab.save(staging / VOCAB_FILE)
        (staging / CARD_FILE).write_text(card or model_card(model.kind, config["model"], info), encoding="utf-8")
        _replace_dir(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def check_save_target(target: Path) -> None:
    """A reader may be saved at `target`: it is absent, empty (but for a run's state) or a saved reader."""
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"{target}: is a file, not a folder; choose another --out folder")
    if target.exists() and not (target / CONFIG_FILE).exists() and any(
            entry.name not in _CARRIED_OVER for entry in target.iterdir()):
        raise CheckpointError(f"{target}: exists and is not a saved reader; choose another --out folder")


def _replace_dir(new: Path, target: Path) -> None:
    if target.exists():
        check_save_target(target)
        for kept in _CARRIED_OVER:
            if (target / kept).is_dir():  # copied, not moved: a kill mid-swap must not lose it
                shutil.copytree(target / kept, new / kept)
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def load_reader_files(path: str | os.PathLike,
                      device: str | torch.device = "cpu") -> tuple[ReaderModel, Vocab | None, dict]:
    """(model in eval mode, vocab, info) from a saved folder; raises CheckpointError on any mismatch.
    The vocab is None for a model that reads no words (no vocab.json is read)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such reader folder; train one with `memqa train --out {path}`")
    config = _read_config(path / CONFIG_FILE)
    kind = config["reader"]
    vocab = Vocab.load(path / VOCAB_FILE) if READERS[kind].uses_vocab else None
    try:
        model_config = from_dict(READERS[kind].config_class, config["model"], where=f"{path / CONFIG_FILE}: model")
        model = build_model(kind, model_config, vocab)
    except (ConfigError, TypeError, ValueError) as error:  # a value of the wrong type or range
        message = str(error)
        if str(path / CONFIG_FILE) not in message:
            message = f"{path / CONFIG_FILE}: model: {message}"
        raise CheckpointError(message) from None
    except VocabularyError as error:  # e.g. an answer label that is not a word (tied answer matrix)
        raise CheckpointError(f"{path / VOCAB_FILE}: {error}; the file does not match this reader") from None
    _load_weights(model, path / WEIGHTS_FILE, path / VOCAB_FILE)
    return model.to(device).eval(), vocab, config["info"]


def _read_config(file: Path) -> dict:
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing; this folder is not a saved memqa reader") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{file}: not valid JSON ({error}); the file is damaged") from None
    if not isinstance(config, dict) or set(config) != _TOP_LEVEL_KEYS:
        found = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{file}: expected keys {sorted(_TOP_LEVEL_KEYS)}, found {found}")
    version = config["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{file}: format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{file}: format version {version} is newer than this memqa reads ({FORMAT_VERSION}); "
                              "upgrade memqa")
    if not isinstance(config["info"], dict):
        raise CheckpointError(f"{file}: 'info' must be an object, found {type(config['info']).__name__}")
    if not isinstance(config["reader"], str) or config["reader"] not in READERS:
        raise CheckpointError(f"{file}: unknown reader kind {config['reader']!r}; known: {', '.join(sorted(READERS))}")
    return config


def _load_weights(model: ReaderModel, file: Path, vocab_file: Path) -> None:
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; the reader folder has no weights")
    try:
        state = load_file(str(file))
    except Exception as error:  # safetensors raises several types for damaged files
        raise CheckpointError(f"{file}: damaged or not a safetensors file ({str(error).splitlines()[0][:120]})") from None
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{file}: weights do not match a {model.kind} reader (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            # Rows of word embeddings and answer weights count vocab.json entries; other sizes come from config.json.
            counts_vocab = name.endswith("word_embedding.weight") or name.startswith("answer")
            vocab_sized = counts_vocab and state[name].shape[0] != tensor.shape[0]
            culprit = vocab_file if vocab_sized else vocab_file.with_name(CONFIG_FILE)
            raise CheckpointError(f"{culprit}: does not match the weights ({name} has shape {tuple(state[name].shape)}, "
                                  f"the config and vocabulary need {tuple(tensor.shape)})")
        if not torch.isfinite(state[name]).all():
            raise CheckpointError(f"{file}: {name} holds NaN or infinite values; the weights are damaged")
    model.load_state_dict(state, strict=True)


def model_card(kind: str, model_config: dict, info: dict) -> str:
    """The README.md of a saved reader: what it is, how it was trained, how well it does."""
    lines = [f"# memqa {kind} reader", "",
             f"Trained on bAbI task(s) {info.get('tasks', '?')} ({info.get('data', '?')}) with memqa.", "",
             "```python", "from memqa import load_reader", "reader = load_reader('<this folder>')",
             "reader.answer('Mary went to the kitchen.', 'Where is Mary?')", "```", "",
             "## Scores", "", "| split | accuracy |", "|---|---|"]
    for split, accuracy in sorted(info.get("scores", {}).items()):
        lines.append(f"| {split} | {100 * accuracy:.1f}% |")
    lines += ["", "## Configuration", "", "```json", json.dumps(model_config, indent=2, sort_keys=True), "```", ""]
    if "command" in info:
        lines += ["Made by:", "", f"    {info['command']}", ""]
    return "\n".join(lines)
