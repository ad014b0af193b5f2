"""A saved folder of one reader kind loaded as another: its config.json relabelled, or another kind's
model.safetensors dropped in. Each is one CheckpointError naming the file (the single-kind damage
cases live in test_checkpoint_reader.py)."""

from __future__ import annotations

import itertools
import json
import re
import shutil

import pytest
import torch
from test_cli import assert_one_line_error, invoke

from memqa.errors import CheckpointError
from memqa.models.registry import READERS, build_model
from memqa.reader import Reader, load_reader

KINDS = sorted(READERS)


@pytest.fixture(scope="module")
def folders(tiny_vocab, tmp_path_factory):
    """One untrained saved reader of every registered kind."""
    root = tmp_path_factory.mktemp("kinds")
    torch.manual_seed(0)
    return {kind: Reader(build_model(kind, READERS[kind].config_class(), tiny_vocab), tiny_vocab).save_pretrained(
        root / kind) for kind in KINDS}


@pytest.mark.parametrize("kind, other", list(itertools.permutations(KINDS, 2)))
def test_a_folder_relabelled_as_another_kind(folders, tmp_path, kind, other):
    folder = shutil.copytree(folders[kind], tmp_path / "r")
    config = json.loads((folder / "config.json").read_text())
    config["reader"] = other
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="^" + re.escape(f"{folder / 'config.json'}: model: unknown keys")):
        load_reader(folder)


@pytest.mark.parametrize("kind, other", list(itertools.permutations(KINDS, 2)))
def test_weights_of_another_kind(folders, tmp_path, kind, other):
    folder = shutil.copytree(folders[kind], tmp_path / "r")
    shutil.copy(folders[other] / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="^" + re.escape(f"{folder / 'model.safetensors'}: weights do not match a {kind}")):
        load_reader(folder)


def test_through_the_cli(folders, tmp_path):
    kind, other = KINDS[0], KINDS[1]
    folder = shutil.copytree(folders[kind], tmp_path / "r")
    shutil.copy(folders[other] / "model.safetensors", folder / "model.safetensors")
    assert_one_line_error(invoke("ask", folder, "--text", "Mary went home.", "-q", "Where is Mary?"),
                          str(folder / "model.safetensors"))
