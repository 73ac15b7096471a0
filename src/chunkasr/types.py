"""Typed results passed between modules and returned to users.

Times are in seconds from the start of the audio. Word ``probability`` is the mean of
the CTC spike posteriors of the word's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .align import SubtitleOptions

__all__ = ["TokenSpan", "Word", "Segment", "Transcript"]

FRAME_SECONDS = 0.08  # one encoder frame = 8 fbank frames of 10 ms


@dataclass(frozen=True)
class TokenSpan:
    """A decoded token: vocabulary id, the encoder frame of its CTC spike and its posterior."""

    id: int
    frame: int
    probability: float


@dataclass
class Word:
    word: str
    start: float
    end: float
    probability: float


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    audio: str
    duration: float
    model: str
    language: str
    text: str
    segments: list[Segment] = field(default_factory=list)

    # Output formats live in writers.py; imported lazily because writers imports this module.
    def to_txt(self) -> str:
        from .writers import TxtWriter

        return TxtWriter().format(self)

    def to_srt(self, options: SubtitleOptions | None = None) -> str:
        from .writers import SrtWriter

        return SrtWriter(options).format(self)

    def to_vtt(self, options: SubtitleOptions | None = None) -> str:
        from .writers import VttWriter

        return VttWriter(options).format(self)

    def to_json(self) -> str:
        from .writers import JsonWriter

        return JsonWriter().format(self)

    def to_tsv(self) -> str:
        from .writers import TsvWriter

        return TsvWriter().format(self)
