"""Every file in tests/data/bad/ (made by scripts/make_bad_inputs.py) gives the right
``AudioError`` or, for the odd-but-valid ones, the right audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chunkasr.audio import load_audio
from chunkasr.errors import AudioError

BAD = Path(__file__).parent / "data" / "bad"

# file name -> error message expected from load_audio (None: valid audio)
EXPECTED_ERRORS: dict[str, str | None] = {
    "empty.wav": "empty file",
    "text.wav": "not an audio file",
    "rate0.wav": "sample rate 0",
    "header_only.wav": "no audio samples",
    "nan.wav": "contains NaN or infinite samples",
    "x.wav": "is a directory",
    "missing.wav": "no such file",
    "truncated.wav": None,
    "short.wav": None,
    "silence.flac": None,
    "near_silent.wav": None,
    "ünïcode file é.wav": None,
}

VALID_SECONDS = {
    "truncated.wav": 0.5,  # decoded as far as the data goes
    "short.wav": 0.05,
    "silence.flac": 5.0,
    "near_silent.wav": 1.0,
    "ünïcode file é.wav": 0.5,
}


def test_every_bad_file_is_covered():
    on_disk = {p.name for p in BAD.iterdir()}
    assert on_disk == set(EXPECTED_ERRORS) - {"missing.wav"}


@pytest.mark.parametrize("name", [n for n, e in EXPECTED_ERRORS.items() if e])
def test_errors(name):
    with pytest.raises(AudioError) as info:
        load_audio(BAD / name)
    assert str(info.value) == EXPECTED_ERRORS[name]


@pytest.mark.parametrize("name", sorted(VALID_SECONDS))
def test_valid(name):
    x = load_audio(str(BAD / name))
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.shape[0] == round(VALID_SECONDS[name] * 16000)
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    if name == "silence.flac":
        assert not x.any()
    if name == "near_silent.wav":
        assert 0 < np.abs(x).max() < 1e-3


def test_bad_bytes_and_empty_bytes():
    with pytest.raises(AudioError, match="not an audio file"):
        load_audio((BAD / "text.wav").read_bytes())
    with pytest.raises(AudioError, match="sample rate 0"):
        load_audio((BAD / "rate0.wav").read_bytes())
    with pytest.raises(AudioError, match="empty input"):
        load_audio(b"")
