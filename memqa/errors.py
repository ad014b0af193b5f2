"""The errors memqa raises on bad input. Each carries one line that says what is wrong
and how to fix it; the CLI prints that line in red and exits with code 1."""

from __future__ import annotations


class MemqaError(Exception):
    """Base class: every error a user can cause is one of these."""


class DataError(MemqaError):
    """A data file is missing, malformed or empty (the message names file and line)."""


class VocabularyError(MemqaError):
    """Text cannot be encoded with a reader's vocabulary."""


class ConfigError(MemqaError):
    """A configuration has unknown, missing or invalid keys."""


class CheckpointError(MemqaError):
    """A saved reader or training checkpoint is missing, corrupt or does not match."""


class DownloadError(MemqaError):
    """The dataset could not be fetched, verified or extracted."""


class TrainingError(MemqaError):
    """Training could not go on (for example the loss became NaN)."""
