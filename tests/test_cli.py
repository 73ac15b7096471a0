"""The command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "chunkasr", *args],
        capture_output=True,
        input=stdin,
        env=full_env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(1)
    paths = []
    for name, seconds in (("one", 1.5), ("two", 3.2)):
        p = d / f"{name}.wav"
        sf.write(
            p,
            (rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32),
            16000,
            subtype="PCM_16",
        )
        paths.append(p)
    return paths


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and b"chunkasr, version" in r.stdout


def test_transcribe_json_to_dir(tiny_model_dir, wavs, tmp_path) -> None:
    out = tmp_path / "out"
    r = run(
        "transcribe",
        *map(str, wavs),
        "--model",
        str(tiny_model_dir),
        "-f",
        "json",
        "-o",
        str(out),
        "--chunk-size",
        "8",
        "--left-context",
        "8",
        "--right-context",
        "8",
    )
    assert r.returncode == 0, r.stderr
    for w in wavs:
        doc = json.loads((out / f"{w.stem}.json").read_text())
        assert doc["audio"] == str(w) and abs(doc["duration"] - sf.info(w).duration) < 0.01
        assert isinstance(doc["text"], str) and isinstance(doc["segments"], list)


def test_missing_file_does_not_stop_others(tiny_model_dir, wavs, tmp_path) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "nope.wav"
    r = run(
        "transcribe", str(missing), str(wavs[0]), "--model", str(tiny_model_dir), "-o", str(out)
    )
    assert r.returncode == 1
    errors = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(missing) in errors[0]
    assert b"Traceback" not in r.stderr
    assert (out / "one.txt").is_file() and not (out / "nope.txt").exists()


def test_usage_errors_exit_2(tiny_model_dir, wavs) -> None:
    assert (
        run("transcribe", str(wavs[0]), "--model", str(tiny_model_dir), "-f", "doc").returncode == 2
    )
    assert run("transcribe", str(wavs[0]), "--chunk-size", "0").returncode == 2
    assert run("transcribe").returncode == 2


def test_no_bundled_model_is_one_clear_line(wavs, tmp_path) -> None:
    r = run("transcribe", str(wavs[0]), env={"CHUNKASR_BUNDLED_MODEL": str(tmp_path / "none")})
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "model" in lines[0]


def test_models_lists_bundled(tiny_model_dir) -> None:
    r = run("models", env={"CHUNKASR_BUNDLED_MODEL": str(tiny_model_dir)})
    assert r.returncode == 0 and str(tiny_model_dir).encode() in r.stdout
