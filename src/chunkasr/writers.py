"""Transcript -> txt, srt, vtt, json, tsv; and writing files so that none is ever half-written.

Formats (DESIGN section 7):

- ``txt``: one segment per line.
- ``srt``: cues numbered from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, lines wrapped at word
  boundaries within ``SubtitleOptions`` (``align.subtitle_cues``).
- ``vtt``: ``WEBVTT`` header, the same cues with ``HH:MM:SS.mmm``.
- ``json``: the whisper-style shape that existing tools read, straight from the dataclasses::

    {"audio", "duration", "model", "language", "text",
     "segments": [{"id", "start", "end", "text",
                   "words": [{"word", "start", "end", "probability"}]}]}

  Times are seconds from the start of the audio (media time 0 for containers, see
  ``audio``), rounded to the millisecond. A word's ``probability`` is the mean of the CTC
  posteriors at the spike frames of its tokens (the frame where greedy or beam search
  emitted each token), rounded to 4 places; it is a confidence score, not a calibrated
  probability that the word is right.
- ``tsv``: a ``start	end	text`` header, then one segment per row with integer milliseconds.

Each writer only implements ``format``; ``write`` goes through ``write_atomic``.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
import os
import secrets
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import ClassVar

from .align import SubtitleOptions, subtitle_cues
from .errors import ConfigError, OutputError
from .types import Transcript

__all__ = [
    "ResultWriter",
    "TxtWriter",
    "SrtWriter",
    "VttWriter",
    "JsonWriter",
    "TsvWriter",
    "WRITERS",
    "get_writer",
    "format_timestamp",
    "write_atomic",
]


def _milliseconds(seconds: float) -> int:
    if not math.isfinite(seconds):
        raise ValueError(f"timestamp must be finite, got {seconds}")
    if seconds < 0:
        raise ValueError(f"timestamp must not be negative, got {seconds}")
    # round half up on the shortest decimal form: 59.9995 is stored as 59.99949999..., and
    # binary rounding would print 00:00:59,999 where a reader expects 00:01:00,000
    return int((Decimal(repr(float(seconds))) * 1000).quantize(Decimal(1), ROUND_HALF_UP))


def format_timestamp(seconds: float, sep: str = ",") -> str:
    """``HH:MM:SS,mmm`` (``sep="."`` for WebVTT); hours grow past 99 rather than wrap."""
    ms = _milliseconds(seconds)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same directory and
    ``os.replace``, so readers (and an interrupted run) see either the old file or the whole
    new one, never a part. On any failure, Ctrl-C included, the temporary file is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with 0o666 lets the umask decide the mode, as a plain open() would
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
    except BaseException:  # Ctrl-C just after the file was created
        tmp.unlink(missing_ok=True)
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename: a crash never leaves it empty
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
        raise


class ResultWriter(abc.ABC):
    """Base of the output formats: subclasses set ``extension`` and implement ``format``."""

    extension: ClassVar[str]

    def __init__(self, subtitle_options: SubtitleOptions | None = None) -> None:
        self.subtitle_options = subtitle_options or SubtitleOptions()

    @abc.abstractmethod
    def format(self, transcript: Transcript) -> str:
        """The whole output file's text for one transcript."""

    def write(self, transcript: Transcript, path: str | os.PathLike[str]) -> None:
        write_atomic(path, self.format(transcript))


class TxtWriter(ResultWriter):
    extension = "txt"

    def format(self, transcript: Transcript) -> str:
        return "".join(f"{seg.text}\n" for seg in transcript.segments)


class SrtWriter(ResultWriter):
    extension = "srt"
    decimal_marker: ClassVar[str] = ","
    header: ClassVar[str] = ""
    numbered: ClassVar[bool] = True

    def format(self, transcript: Transcript) -> str:
        blocks = []
        for n, cue in enumerate(subtitle_cues(transcript.segments, self.subtitle_options), 1):
            start = format_timestamp(cue.start, self.decimal_marker)
            end = format_timestamp(cue.end, self.decimal_marker)
            number = f"{n}\n" if self.numbered else ""
            blocks.append(f"{number}{start} --> {end}\n{cue.text}\n")
        return self.header + "\n".join(blocks)


class VttWriter(SrtWriter):
    extension = "vtt"
    decimal_marker = "."
    header = "WEBVTT\n\n"
    numbered = False


class JsonWriter(ResultWriter):
    extension = "json"

    def format(self, transcript: Transcript) -> str:
        return json.dumps(dataclasses.asdict(transcript), ensure_ascii=False, indent=2) + "\n"


class TsvWriter(ResultWriter):
    extension = "tsv"

    def format(self, transcript: Transcript) -> str:
        rows = ["start\tend\ttext\n"]
        for seg in transcript.segments:
            text = " ".join(seg.text.split())  # a tab or newline would break the columns
            rows.append(f"{_milliseconds(seg.start)}\t{_milliseconds(seg.end)}\t{text}\n")
        return "".join(rows)


WRITERS: dict[str, type[ResultWriter]] = {
    w.extension: w for w in (TxtWriter, SrtWriter, VttWriter, JsonWriter, TsvWriter)
}


def get_writer(name: str, subtitle_options: SubtitleOptions | None = None) -> ResultWriter:
    try:
        cls = WRITERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown output format {name!r} (choose from {', '.join(WRITERS)})"
        ) from None
    return cls(subtitle_options)
