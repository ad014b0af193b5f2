"""Constants and small builders shared by the tests (conftest.py holds the fixtures)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TINY_TRAIN = FIXTURES / "tiny_train.txt"
TINY_TEST = FIXTURES / "tiny_test.txt"
TINY_TRAIN_QUESTIONS = 18  # counted by hand in tests/fixtures/tiny_train.txt

BABI_DIR = os.environ.get("MEMQA_BABI_DIR")
requires_babi = pytest.mark.skipif(
    not BABI_DIR, reason="real bAbI data not available: set MEMQA_BABI_DIR=/path/to/tasks_1-20_v1-2 to run"
)


def small_memn2n_config(**changes):
    """A small, fast MemN2N config (memory of 10 sentences); `encoder__x=...` changes the encoder."""
    import dataclasses

    from memqa.config import EncoderConfig, MemN2NConfig

    encoder_changes = {k[len("encoder__"):]: v for k, v in changes.items() if k.startswith("encoder__")}
    model_changes = {k: v for k, v in changes.items() if not k.startswith("encoder__")}
    encoder = dataclasses.replace(EncoderConfig(memory_size=10), **encoder_changes)
    return MemN2NConfig(encoder=encoder, **model_changes)


# Trains to 100% on the tiny fixture in about a second (checked in test_train.py); seeds 0-3 get there
# by epoch 40 (adjacent) and 57 (layer-wise) of these 90.
OVERFIT_TRAIN_CONFIG = dict(epochs=80, batch_size=4, learning_rate=0.1, linear_start_epochs=10,
                            linear_start_learning_rate=0.1)


def babi_tree(root: Path, tasks=(1, 2)) -> Path:
    """A bAbI folder (tasks_1-20_v1-2/en/) whose tasks' train and test files are the tiny fixtures."""
    folder = root / "tasks_1-20_v1-2" / "en"
    folder.mkdir(parents=True)
    for task in tasks:
        shutil.copy(TINY_TRAIN, folder / f"qa{task}_tiny_train.txt")
        shutil.copy(TINY_TEST, folder / f"qa{task}_tiny_test.txt")
    return folder.parent


STATE = ".train-state"  # a run's saved training state (memqa/resume.py)


def saved_epoch(run_dir, job="reader", repeat=0) -> int:
    """The last epoch (NTM: evaluation point) whose training state run_dir holds; 0 when none."""
    try:
        return json.loads((Path(run_dir) / STATE / job / f"repeat-{repeat}" / "state.json").read_text())["epoch"]
    except FileNotFoundError:
        return 0


def kill_after_saved_epochs(train_args, run_dir, epochs: int = 3, sig: int = signal.SIGKILL, job: str = "reader") -> str:
    """Start `memqa train ARGS --out run_dir` in a real process with SIGINT ignored (as `nohup ... &` starts
    it) and send it `sig` a little after the state of `job`'s epoch `epochs` landed (mid-epoch or mid-save).
    Returns its stderr; SIGKILL must kill it, any other signal must let it exit cleanly."""
    process = subprocess.Popen([sys.executable, "-m", "memqa_cli.main", "train", *map(str, train_args),
                                "--out", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while saved_epoch(run_dir, job) < epochs:
        assert process.poll() is None, f"training ended before it was killed: {process.stderr.read()!r}"
        assert time.monotonic() < deadline, "no state.json appeared"
        time.sleep(0.002)
    time.sleep(0.01)
    os.kill(process.pid, sig)
    process.wait(timeout=120)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 0), (process.returncode, stderr)
    return stderr
