from __future__ import annotations

import io
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as taf

from chunkasr import audio
from chunkasr.audio import iter_blocks, load_audio, probe_duration
from chunkasr.errors import AudioError


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def reference(x: np.ndarray, rate: int) -> np.ndarray:
    """torchaudio's resampler with the same filter, in float64: blocks must equal it."""
    y = taf.resample(
        torch.from_numpy(x).double(), rate, 16000,
        lowpass_filter_width=16, rolloff=0.945,
        resampling_method="sinc_interp_kaiser", beta=8.555,
    ).numpy()
    return np.clip(y, -1, 1).astype(np.float32)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    return float(np.argmax(spectrum) * 16000 / x.shape[0])


def write_av(path: Path, x: np.ndarray, rate: int, *, fmt: str, codec: str,
             sample_fmt: str = "s16", offset: float = 0.0, video: bool = False) -> None:
    """Encode (samples, channels) float audio with PyAV; ``offset`` delays the audio stream;
    ``video`` adds a 16x16 video stream that starts at 0."""
    channels = x.shape[1]
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as c:
        if video:
            v = c.add_stream("mpeg4", rate=10)
            v.width, v.height, v.pix_fmt = 16, 16, "yuv420p"
        a = c.add_stream(codec, rate=rate, layout=layout)
        frame_size = a.codec_context.frame_size or 1024
        pts = round(offset * rate)
        for i in range(0, x.shape[0], frame_size):
            chunk = x[i : i + frame_size]
            if sample_fmt == "s16":
                arr = (chunk * 32767).astype(np.int16).reshape(1, -1)  # interleaved
            else:  # fltp
                arr = np.ascontiguousarray(chunk.T)
            f = av.AudioFrame.from_ndarray(arr, format=sample_fmt, layout=layout)
            f.sample_rate, f.pts, f.time_base = rate, pts, Fraction(1, rate)
            pts += chunk.shape[0]
            for p in a.encode(f):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
        if video:
            for i in range(round(x.shape[0] / rate * 10)):
                vf = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
                vf.pts, vf.time_base = i, Fraction(1, 10)
                for p in v.encode(vf):
                    c.mux(p)
            for p in v.encode(None):
                c.mux(p)


@pytest.mark.parametrize("rate", [44100, 22050, 48000, 8000])
def test_blocks_are_seamless(tmp_path, rate):
    rng = np.random.default_rng(rate)
    x = (rng.standard_normal((rate + 37, 2)) * 0.2).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    expected = reference(x.mean(axis=1), rate)
    for block_seconds in (0.37, 30.0):
        blocks = list(iter_blocks(path, block_seconds=block_seconds))
        size = round(block_seconds * 16000)
        assert all(b.shape[0] == size for b in blocks[:-1])
        assert 0 < blocks[-1].shape[0] <= size
        got = np.concatenate(blocks)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(load_audio(path), np.concatenate(list(iter_blocks(path))))


def test_resampling_quality():
    x = tone(1.0, 44100, freq=4000) + tone(1.0, 44100, freq=9000)  # 9 kHz would alias to 7
    y = audio.resample(x, 44100)[800:-800]
    assert y.shape[0] == 16000 - 1600
    assert abs(peak_hz(y) - 4000) < 2
    at_4k = np.sqrt(np.mean(y**2)) / (0.5 / np.sqrt(2))
    assert abs(20 * np.log10(at_4k)) < 0.1  # the 4 kHz tone passes, the 9 kHz one is gone


@pytest.mark.parametrize(
    "subtype,tolerance", [("PCM_U8", 1 / 64), ("PCM_16", 1e-4), ("PCM_24", 1e-6),
                          ("PCM_32", 1e-6), ("FLOAT", 1e-6), ("DOUBLE", 1e-6)]
)
def test_bit_depths_and_channels(tmp_path, subtype, tolerance):
    x = np.stack([tone(0.5, 16000), tone(0.5, 16000, amp=0.25)], axis=1)
    path = tmp_path / "a.wav"
    sf.write(path, x, 16000, subtype=subtype)
    y = load_audio(path)
    np.testing.assert_allclose(y, x.mean(axis=1), atol=tolerance)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("a.flac", {}),
        ("a.ogg", {}),
        ("a.mp3", {}),
    ],
)
def test_soundfile_formats(tmp_path, name, kwargs):
    path = tmp_path / name
    sf.write(path, tone(1.0, 22050), 22050, **kwargs)
    y = load_audio(path)
    assert abs(y.shape[0] - 16000) < 1200  # mp3 may pad a frame
    assert abs(peak_hz(y[:8000]) - 440) < 4
    assert 0.3 < np.abs(y).max() <= 0.6


@pytest.mark.parametrize(
    "name,fmt,codec,sample_fmt",
    [
        ("a.m4a", "mp4", "aac", "fltp"),
        ("a.webm", "webm", "libopus", "fltp"),
        ("a.mkv", "matroska", "pcm_s16le", "s16"),
        ("a.aac", "adts", "aac", "fltp"),
    ],
)
def test_pyav_formats(tmp_path, name, fmt, codec, sample_fmt):
    rate = 48000
    x = np.stack([tone(1.0, rate), tone(1.0, rate)], axis=1)
    path = tmp_path / name
    write_av(path, x, rate, fmt=fmt, codec=codec, sample_fmt=sample_fmt)
    y = load_audio(path)
    assert abs(y.shape[0] - 16000) < 1200
    assert abs(peak_hz(y[:8000]) - 440) < 4
    assert 0.3 < np.abs(y).max() <= 0.6
    assert probe_duration(path) == pytest.approx(1.0, abs=0.1)


def test_pyav_pcm_matches_soundfile(tmp_path):
    """The PyAV path (interleaved stereo int16) and libsndfile agree sample for sample."""
    x = np.stack([tone(0.5, 16000), tone(0.5, 16000, freq=300, amp=0.25)], axis=1)
    write_av(tmp_path / "a.mkv", x, 16000, fmt="matroska", codec="pcm_s16le")
    sf.write(tmp_path / "a.wav", (x * 32767).astype(np.int16), 16000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(tmp_path / "a.mkv"), load_audio(tmp_path / "a.wav"))


def test_container_start_offset(tmp_path):
    """Sample 0 is the container's start: audio starting 0.5 s after the video gets 0.5 s of
    silence first; an audio-only file that starts at 0.5 s starts at its first sample."""
    x = tone(1.0, 16000)[:, None]
    write_av(tmp_path / "av.mkv", x, 16000, fmt="matroska", codec="pcm_s16le",
             offset=0.5, video=True)
    write_av(tmp_path / "a.mkv", x, 16000, fmt="matroska", codec="pcm_s16le", offset=0.5)
    with av.open(str(tmp_path / "a.mkv")) as c:
        assert c.streams.audio[0].start_time != 0  # the offset really is in the file
    with_video = load_audio(tmp_path / "av.mkv")
    assert with_video.shape[0] == 24000
    assert not with_video[:8000].any()
    np.testing.assert_array_equal(with_video[8000:], load_audio(tmp_path / "a.mkv"))
    audio_only = load_audio(tmp_path / "a.mkv")
    assert audio_only.shape[0] == 16000 and abs(audio_only[:20]).max() > 0.01


def test_stdin_bytes_and_arrays(tmp_path, monkeypatch):
    x = tone(0.3, 44100)
    path = tmp_path / "a.flac"
    sf.write(path, x, 44100)
    expected = load_audio(path)

    class FakeStdin:
        buffer = io.BytesIO(path.read_bytes())

    monkeypatch.setattr(sys, "stdin", FakeStdin)
    np.testing.assert_array_equal(load_audio("-"), expected)
    np.testing.assert_array_equal(load_audio(path.read_bytes()), expected)
    assert probe_duration("-") is None

    monkeypatch.setattr(sys, "stdin", type("Empty", (), {"buffer": io.BytesIO(b"")}))
    with pytest.raises(AudioError, match="empty input on stdin"):
        load_audio("-")

    a = tone(0.2, 16000)
    np.testing.assert_array_equal(load_audio(a), a)
    np.testing.assert_allclose(load_audio(np.stack([a, 0 * a], axis=1)), a / 2)
    bad = a.copy()
    bad[5] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        load_audio(bad)


def test_probe_duration(tmp_path):
    sf.write(tmp_path / "a.wav", tone(1.5, 8000), 8000)
    assert probe_duration(tmp_path / "a.wav") == 1.5
    with pytest.raises(AudioError, match="no such file"):
        probe_duration(tmp_path / "missing.wav")


def test_errors_raised_at_open(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        iter_blocks(tmp_path / "missing.wav")  # no iteration needed
    with pytest.raises(ValueError):
        iter_blocks(tone(0.1, 16000), block_seconds=0)


def test_video_without_audio(tmp_path):
    path = tmp_path / "v.mkv"
    with av.open(str(path), "w", format="matroska") as c:
        v = c.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 16, 16, "yuv420p"
        for i in range(3):
            vf = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            for p in v.encode(vf):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    with pytest.raises(AudioError, match="no audio stream"):
        load_audio(path)


def test_find_audio_files(tmp_path):
    for name in ["b.WAV", "a.mp3", "notes.txt", ".hidden.wav", "sub/c.flac", ".git/d.wav",
                 "sub/deeper/e.m4a"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    rel = lambda ps: [p.relative_to(tmp_path).as_posix() for p in ps]  # noqa: E731
    assert rel(audio.find_audio_files(tmp_path)) == ["a.mp3", "b.WAV"]
    assert rel(audio.find_audio_files(tmp_path, recursive=True)) == [
        "a.mp3", "b.WAV", "sub/c.flac", "sub/deeper/e.m4a"
    ]
