"""memqa: memory-network question answering on bAbI.

    from memqa import load_reader
    reader = load_reader("runs/t1")
    reader.answer("Mary went to the kitchen. Mary took the milk.", "Where is the milk?")

Names are imported on first use, so `import memqa` (and `memqa --help`) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_reader": "memqa.reader",
    "Reader": "memqa.reader",
    "Answer": "memqa.reader",
    "MemN2N": "memqa.models.memn2n",
    "MemNN": "memqa.models.memnn",
    "NTMQA": "memqa.models.ntm_qa",
    "ReaderOutput": "memqa.models.base",
    "StoryEncoder": "memqa.nn.encoder",
    "EncoderConfig": "memqa.config",
    "MemN2NConfig": "memqa.config",
    "MemNNConfig": "memqa.config",
    "NTMQAConfig": "memqa.config",
    "TrainConfig": "memqa.config",
    "Example": "memqa.data.babi",
    "parse_babi": "memqa.data.babi",
    "read_babi_file": "memqa.data.babi",
    "load_task": "memqa.data.babi",
    "Vocab": "memqa.data.vocab",
    "fit": "memqa.train",
    "train_readers": "memqa.pipeline",
    "TrainRequest": "memqa.pipeline",
    "evaluate_tasks": "memqa.evaluate",
    "download_babi": "memqa.data.download",
    "load_babi_dataset": "memqa.data.hf",
    "MemqaError": "memqa.errors",
    "NTMConfig": "memqa.config",
    "NTMCell": "memqa.nn.ntm",
    "NTMState": "memqa.nn.ntm",
    "NTMSequenceModel": "memqa.models.ntm",
    "train_ntm": "memqa.ntm_pipeline",
    "load_ntm": "memqa.ntm_evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'memqa' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
