"""Error types. The CLI turns each into one line: ``error: FILE: reason``."""

from __future__ import annotations

__all__ = ["ChunkAsrError", "AudioError", "ModelError", "ConfigError", "OutputError"]


class ChunkAsrError(Exception):
    """Base class of every error chunkasr raises on purpose."""


class AudioError(ChunkAsrError):
    """An audio source cannot be read, decoded or is unusable."""


class ModelError(ChunkAsrError):
    """A model directory, config or checkpoint is missing, malformed or inconsistent."""


class ConfigError(ChunkAsrError):
    """Invalid options (chunk sizes, devices, formats...)."""


class OutputError(ChunkAsrError):
    """An output file cannot be written."""
