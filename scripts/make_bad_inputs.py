"""Write the tiny problem inputs in tests/data/bad/ (committed; rerun to regenerate).

Each file is one way real input goes wrong. The expected outcome of each is in
tests/test_bad_inputs.py. Everything is deterministic and small (< 100 KB in all).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "bad"


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav_bytes(x: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    path = OUT / ".tmp.wav"
    sf.write(path, x, rate, subtype=subtype)
    data = path.read_bytes()
    path.unlink()
    return data


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    (OUT / "empty.wav").write_bytes(b"")
    (OUT / "text.wav").write_text("This is a text file, renamed to .wav.\n" * 4)

    # header promises 1 s, only the first half of the samples is there
    full = wav_bytes(tone(1.0), 16000)
    (OUT / "truncated.wav").write_bytes(full[: 44 + 16000])
    # a header and nothing else
    (OUT / "header_only.wav").write_bytes(full[:44])

    # sample rate and byte rate patched to 0 in the canonical 44-byte header
    bad = bytearray(wav_bytes(tone(0.1), 16000))
    assert bad[12:16] == b"fmt "
    bad[24:32] = struct.pack("<II", 0, 0)
    (OUT / "rate0.wav").write_bytes(bytes(bad))

    (OUT / "short.wav").write_bytes(wav_bytes(tone(0.05), 16000))
    # FLAC: 5 s of digital silence at 8 kHz compresses to almost nothing
    sf.write(OUT / "silence.flac", np.zeros(5 * 8000, np.float32), 8000, subtype="PCM_16")
    rng = np.random.default_rng(4)
    noise = (rng.standard_normal(8000) * 1e-4).astype(np.float32)  # about 3 LSB of int16
    (OUT / "near_silent.wav").write_bytes(wav_bytes(noise, 8000))

    x = tone(0.05)
    x[100], x[200], x[300] = np.nan, np.inf, -np.inf
    (OUT / "nan.wav").write_bytes(wav_bytes(x, 16000, subtype="FLOAT"))

    (OUT / "x.wav").mkdir()
    (OUT / "x.wav" / "README").write_text("a directory named like an audio file\n")

    (OUT / "ünïcode file é.wav").write_bytes(wav_bytes(tone(0.5), 16000))


if __name__ == "__main__":
    main()
