from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chunkasr.align import SubtitleOptions
from chunkasr.errors import ConfigError, OutputError
from chunkasr.types import Segment, Transcript, Word
from chunkasr.writers import WRITERS, format_timestamp, get_writer, write_atomic

GOLDEN = Path(__file__).parent / "data" / "golden"


def _seg(id: int, words: list[tuple[str, float, float, float]]) -> Segment:
    ws = [Word(*w) for w in words]
    return Segment(id, ws[0].start, ws[-1].end, " ".join(w.word for w in ws), ws)


LONG = (
    "this sentence is long enough that one subtitle line cannot hold it and a second cue is needed"
)


def sample_transcript() -> Transcript:
    """Hand-built: a short greeting, a long sentence that must wrap and split, a late cue
    past one hour, and a non-ASCII word."""
    long_words = LONG.split()
    seg1 = _seg(1, [(w, round(2.0 + 0.4 * i, 3), round(2.4 + 0.4 * i, 3), 0.9)
                    for i, w in enumerate(long_words)])
    segments = [
        _seg(0, [("hello", 0.32, 0.72, 0.97), ("world", 0.72, 1.2, 0.8512)]),
        seg1,
        _seg(2, [("café", 3723.5, 3724.0, 0.5), ("olé", 3724.0, 3725.0, 1.0)]),
    ]
    return Transcript(
        audio="talk.wav",
        duration=3726.04,
        model="toy-model",
        language="en",
        text=" ".join(s.text for s in segments),
        segments=segments,
    )


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_golden(fmt):
    expected = (GOLDEN / f"sample.{fmt}").read_text(encoding="utf-8")
    assert get_writer(fmt).format(sample_transcript()) == expected


def test_transcript_methods_match_writers():
    t = sample_transcript()
    assert t.to_srt() == (GOLDEN / "sample.srt").read_text(encoding="utf-8")
    assert t.to_vtt() == (GOLDEN / "sample.vtt").read_text(encoding="utf-8")
    assert t.to_txt() == (GOLDEN / "sample.txt").read_text(encoding="utf-8")
    assert t.to_tsv() == (GOLDEN / "sample.tsv").read_text(encoding="utf-8")
    assert json.loads(t.to_json())["segments"][2]["words"][0]["word"] == "café"
    one_line = t.to_srt(SubtitleOptions(max_line_count=1))
    assert all(len(block.splitlines()) == 3 for block in one_line.strip().split("\n\n"))


def test_json_shape():
    d = json.loads(get_writer("json").format(sample_transcript()))
    assert list(d) == ["audio", "duration", "model", "language", "text", "segments"]
    assert list(d["segments"][0]) == ["id", "start", "end", "text", "words"]
    assert list(d["segments"][0]["words"][0]) == ["word", "start", "end", "probability"]


def test_empty_transcript():
    t = Transcript("s.wav", 5.0, "m", "en", "", [])
    assert t.to_txt() == ""
    assert t.to_srt() == ""
    assert t.to_vtt() == "WEBVTT\n\n"
    assert t.to_tsv() == "start\tend\ttext\n"
    assert json.loads(t.to_json())["segments"] == []


@pytest.mark.parametrize(
    "seconds,sep,expected",
    [
        (0, ",", "00:00:00,000"),
        (0.0005, ",", "00:00:00,001"),
        (0.0004999, ",", "00:00:00,000"),
        (1.2345, ".", "00:00:01.235"),
        (59.9995, ",", "00:01:00,000"),
        (59.9994, ",", "00:00:59,999"),
        (3599.9999, ",", "01:00:00,000"),
        (3723.5, ".", "01:02:03.500"),
        (360000.0, ",", "100:00:00,000"),
        (0.1 + 0.2, ",", "00:00:00,300"),
    ],
)
def test_format_timestamp(seconds, sep, expected):
    assert format_timestamp(seconds, sep) == expected


@pytest.mark.parametrize("bad", [-0.001, float("nan"), float("inf")])
def test_format_timestamp_rejects(bad):
    with pytest.raises(ValueError):
        format_timestamp(bad)


def test_unknown_format():
    with pytest.raises(ConfigError, match="unknown output format"):
        get_writer("docx")


def test_write_atomic(tmp_path):
    target = tmp_path / "out.srt"
    target.write_text("old")
    write_atomic(target, "new ü\n")
    assert target.read_text(encoding="utf-8") == "new ü\n"
    assert os.listdir(tmp_path) == ["out.srt"]


def test_write_atomic_leaves_nothing_on_error(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "partial")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_write_atomic_missing_dir(tmp_path):
    with pytest.raises(OutputError, match="cannot write"):
        write_atomic(tmp_path / "nope" / "x.txt", "x")
    with pytest.raises(OutputError):
        write_atomic(tmp_path, "x")  # a directory: the rename fails
    assert os.listdir(tmp_path) == []
