"""The CLI's inputs and outputs: formats, stdin/stdout, directories, --skip-existing,
--files-from, bad inputs and Ctrl-C. Subprocesses where the real process matters (pipes,
tracebacks, signals), CliRunner elsewhere because it is much faster."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from chunkasr.cli import main

BAD = Path(__file__).parent / "data" / "bad"
SRC = Path(__file__).parent.parent / "src"
SRT_CUE = re.compile(r"\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n.+")


def _run(args: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-c", "from chunkasr.cli import main; main()", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, cwd=cwd, env=env, timeout=120)


@pytest.fixture(scope="module")
def blank_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its CTC layer forced to blank: every transcript is empty, as a
    real model's is for silence."""
    out = tmp_path_factory.mktemp("models") / "blank"
    shutil.copytree(tiny_model_dir, out)
    state = torch.load(out / "pytorch_model.bin", weights_only=True)
    state["ctc.ctc_lo.weight"].zero_()
    state["ctc.ctc_lo.bias"].zero_()
    state["ctc.ctc_lo.bias"][0] = 20.0
    torch.save(state, out / "pytorch_model.bin")
    return out


def _cli(args: list[str], stdin: bytes | None = None):
    return CliRunner().invoke(main, ["transcribe", *args], input=stdin, catch_exceptions=False)


@pytest.mark.slow
def test_stdin_to_stdout(tiny_model_dir, tmp_path):
    wav = BAD / "ünïcode file é.wav"
    piped = _run(["transcribe", "-", "-m", str(tiny_model_dir), "-f", "srt", "-q"], tmp_path,
                 stdin=wav.read_bytes())
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == b""
    by_path = _cli([str(wav), "-m", str(tiny_model_dir), "-f", "srt", "-q"])
    assert by_path.exit_code == 0
    assert piped.stdout.decode() == by_path.stdout  # same transcript whichever way it came
    for cue in piped.stdout.decode().strip().split("\n\n"):
        assert cue == "" or SRT_CUE.fullmatch(cue), cue


@pytest.mark.slow
def test_bad_inputs_batch(blank_model_dir, tmp_path):
    """Every bad input fails alone with one line; the good ones complete, silence with an
    empty transcript."""
    shutil.copytree(BAD, tmp_path / "in")
    names = sorted(p.name for p in (tmp_path / "in").iterdir()) + ["missing.wav"]
    proc = _run(["transcribe", "-m", str(blank_model_dir), "-f", "txt,json,srt", "-o", "out",
                 *[f"in/{n}" for n in names]], tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "Traceback" not in err
    expected = {
        "empty.wav": "empty file",
        "text.wav": "not an audio file",
        "rate0.wav": "sample rate 0",
        "header_only.wav": "no audio samples",
        "nan.wav": "contains NaN or infinite samples",
        "missing.wav": "no such file",
        "x.wav": "no audio files in directory",
    }
    lines = err.splitlines()
    for name, reason in expected.items():
        assert f"error: in/{name}: {reason}" in lines
    assert len([ln for ln in lines if ln.startswith("error: ")]) == len(expected)
    assert lines[-1].startswith("5 file(s), ") and ", 7 failed, " in lines[-1]
    good = ["near_silent", "short", "silence", "truncated", "ünïcode file é"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{g}.{ext}" for g in good for ext in ("json", "srt", "txt")
    )
    for g in good:
        assert (tmp_path / "out" / f"{g}.txt").read_text() == ""
        assert (tmp_path / "out" / f"{g}.srt").read_text() == ""
        doc = json.loads((tmp_path / "out" / f"{g}.json").read_text(encoding="utf-8"))
        assert doc["text"] == "" and doc["segments"] == [] and doc["duration"] > 0


def test_directory_and_skip_existing(blank_model_dir, tmp_path):
    src = tmp_path / "rec"
    (src / "sub").mkdir(parents=True)
    shutil.copy(BAD / "short.wav", src / "a.wav")
    shutil.copy(BAD / "silence.flac", src / "sub" / "b.flac")
    (src / "notes.txt").write_text("not audio, not picked up")
    out = tmp_path / "out"
    args = [str(src), "-m", str(blank_model_dir), "-f", "txt,tsv", "-o", str(out)]

    flat = _cli(args)
    assert flat.exit_code == 0, flat.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == ["a.tsv", "a.txt"]

    deep = _cli([*args, "--recursive"])
    assert deep.exit_code == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == [
        "a.tsv", "a.txt", "sub/b.tsv", "sub/b.txt"
    ]
    (out / "a.txt").write_text("kept")
    (out / "sub" / "b.tsv").unlink()
    again = _cli([*args, "--recursive", "--skip-existing"])
    assert again.exit_code == 0
    assert (out / "a.txt").read_text() == "kept"  # skipped: both its outputs exist
    assert (out / "sub" / "b.tsv").read_text() == "start\tend\ttext\n"  # redone
    assert again.stderr.splitlines()[-1].startswith("1 file(s), 1 skipped, ")


def test_files_from(blank_model_dir, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# inputs\n{BAD / 'short.wav'}\n\n{BAD / 'empty.wav'}\n")
    r = _cli(["--files-from", str(listing), "-m", str(blank_model_dir), "-o", str(tmp_path)])
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == f"error: {BAD / 'empty.wav'}: empty file"
    assert (tmp_path / "short.txt").exists()
    from_stdin = _cli(["--files-from", "-", "-m", str(blank_model_dir), "-q"],
                      stdin=str(BAD / "short.wav"))
    assert from_stdin.exit_code == 0 and from_stdin.stdout == ""


@pytest.mark.parametrize(
    "args,message",
    [
        (["a.wav", "-f", "srt,txt"], "several formats need --output-dir"),
        (["a.wav", "b.wav", "-f", "srt"], "several inputs need --output-dir"),
        (["a.wav", "--skip-existing"], "--skip-existing needs --output-dir"),
        ([], "no input files"),
        (["a.wav", "-f", "docx"], "unknown format"),
        (["a.wav", "--max-line-width", "0"], "--max-line-width"),
        (["a.wav", "--pause", "0"], "--pause"),
        (["-", "--files-from", "-"], "stdin cannot be both"),
    ],
)
def test_usage_errors(args, message):
    r = CliRunner().invoke(main, ["transcribe", *args])
    assert r.exit_code == 2
    assert message in r.stderr


def test_subtitle_options_reach_the_writers(tiny_model_dir, monkeypatch):
    """The options land in SubtitleOptions and Model.results (the model's output is
    replaced by the hand-built transcript of the golden tests)."""
    from test_writers import sample_transcript

    from chunkasr import api

    seen = {}

    def fake_results(self, sources, **kwargs):
        seen.update(kwargs)
        for i, source in enumerate(sources):
            yield api.TranscriptionResult(i, source, sample_transcript())

    monkeypatch.setattr(api.Model, "results", fake_results)
    r = _cli([str(BAD / "short.wav"), "-m", str(tiny_model_dir), "-f", "srt", "-q",
              "--max-line-width", "12", "--max-line-count", "1", "--max-cue-duration", "1.5",
              "--pause", "0.7"])
    assert r.exit_code == 0
    assert seen["pause"] == 0.7
    cues = r.stdout.strip().split("\n\n")
    assert len(cues) > 6
    for cue in cues:
        _, times, *lines = cue.split("\n")
        assert len(lines) == 1 and len(lines[0]) <= 12
        start, end = (_seconds(t) for t in times.split(" --> "))
        assert 0 < end - start <= 1.5


def _seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


N_FILES = 400


@pytest.mark.slow
def test_sigint_leaves_no_partial_output(tiny_model_dir, tmp_path):
    import numpy as np
    import soundfile as sf

    inputs = tmp_path / "in"
    inputs.mkdir()
    x = (np.random.default_rng(1).standard_normal(16000 * 20) * 0.3).astype(np.float32)
    sf.write(inputs / "f000.wav", x, 16000, subtype="PCM_16")
    # enough files that the whole job (~1 s per 40 files here) cannot finish between the first
    # output appearing and the signal landing: with 40 it sometimes did
    for i in range(1, N_FILES):
        os.link(inputs / "f000.wav", inputs / f"f{i:03d}.wav")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from chunkasr.cli import main; main()", "transcribe",
         str(inputs), "-m", str(tiny_model_dir), "-f", "json,srt", "-o", str(out),
         "--batch-duration", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    deadline = time.monotonic() + 60
    def finished() -> list[Path]:  # temporary files start with "." and do not count
        return [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []

    while not finished() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert err.decode().splitlines()[-1] == "error: interrupted"
    assert b"Traceback" not in err
    written = sorted(out.iterdir())
    assert 0 < len(written) < 2 * N_FILES  # interrupted mid-batch
    assert all(not p.name.startswith(".") for p in written)  # no temporary files left
    for p in written:  # and every output there is whole
        if p.suffix == ".json":
            assert json.loads(p.read_text())["duration"] == 20.0
        else:
            assert p.read_text() == "" or p.read_text().endswith("\n")


def test_all_formats_and_name_collisions(blank_model_dir, tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(BAD / "short.wav", tmp_path / d / "x.wav")
    out = tmp_path / "out"
    r = _cli([str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav"), "-f", "all",
              "-m", str(blank_model_dir), "-o", str(out)])
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == (
        f"error: {tmp_path / 'b' / 'x.wav'}: output name 'x' already used by "
        f"{tmp_path / 'a' / 'x.wav'}"
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "x.json", "x.srt", "x.tsv", "x.txt", "x.vtt"
    ]
    assert (out / "x.vtt").read_text() == "WEBVTT\n\n"
