"""Any audio source -> 16 kHz mono float32 samples in [-1, 1], whole or in blocks.

Sources: a path, ``"-"`` (all of stdin, read as bytes and decoded from memory), ``bytes``
(the contents of an encoded file) or a NumPy array (already 16 kHz; 1-D, or (samples,
channels) which is averaged).

Decoders. libsndfile (``soundfile``) is tried first on every input: it recognises WAV,
FLAC, Ogg (Vorbis/Opus), MP3, AIFF, ... from the file's first bytes rather than its name,
reads them exactly (no resampling or dithering of its own) and can read a file in pieces.
Anything it does not recognise (m4a, aac, mp4, mkv, webm, ...) goes to PyAV, because PyAV
wheels bundle their own FFmpeg build: every container and codec FFmpeg knows works after a
plain ``pip install``, with no system ``ffmpeg`` binary to find, spawn or version-check.

Resampling. A windowed-sinc low-pass (Kaiser window, beta 8.555, 16 zero crossings, cut-off
at 0.945 of the lower Nyquist frequency), applied as a polyphase filter bank with one
strided ``conv1d``. Measured from 44.1 kHz: flat to 6 kHz, -0.9 dB at 7 kHz, below -90 dB
from 9 kHz, so energy above the new Nyquist frequency does not fold back into the top mel
bands as it does with linear interpolation (what pydub/audioop, used by the official
loader, do). This is the filter ``torchaudio.functional.resample`` builds with
``sinc_interp_kaiser``; it is built here, once per rate pair, because torchaudio rebuilds it
on every call (0.4 s for 44.1 kHz), which block-wise decoding would pay on every block.
Long files are resampled in blocks by ``_StreamResampler``, which keeps enough input of
the previous block to give every output sample the same filter window a whole-file pass
would: block boundaries change nothing (tested to 1e-6).

Channels are averaged. Samples are clipped to [-1, 1] after resampling (the filter can
overshoot by a hair; float files can hold louder values, which the int16-scaled features
could not represent anyway).

Time zero. For containers decoded by PyAV, output sample 0 is the container's start time
(the earliest start of any of its streams), which is what video players show as 00:00:00,
so subtitles line up with the picture: audio that starts after the video is preceded by
that much silence, and audio samples stamped before the start are dropped. Timestamp gaps
inside the stream are not filled; frames are joined as decoded.

Bad input raises ``AudioError`` with a short reason (the CLI adds the file name): "no such
file", "is a directory", "empty file", "not an audio file", "sample rate 0", "no audio
samples", "contains NaN or infinite samples", ... NaN and infinite samples are an error,
not repaired: they mean a corrupt file, and silently zeroing them would hide that. A file
shorter than its header claims (an interrupted recording) is decoded as far as it goes, as
players do.
"""

from __future__ import annotations

import abc
import io
import math
import os
import struct
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import soundfile as sf
import torch

from .errors import AudioError

__all__ = [
    "SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "AudioSource",
    "load_audio",
    "iter_blocks",
    "probe_duration",
    "resample",
    "find_audio_files",
]

SAMPLE_RATE = 16000  # Hz, what every ChunkFormer model is trained on

_Encoded = Union[str, "os.PathLike[str]", bytes]  # a path, "-", or a file's bytes
AudioSource = Union[str, "os.PathLike[str]", bytes, np.ndarray]

# windowed-sinc resampling filter (see module docstring)
_ZERO_CROSSINGS = 16
_ROLLOFF = 0.945
_KAISER_BETA = 8.555
_MIN_PHASES = 32  # output samples computed per filter position; see _phases

# what a directory given as input is searched for (any file given by name is tried anyway)
_EXTENSIONS = """wav wave flac ogg oga opus mp3 m4a m4b aac mp4 m4v mkv mka webm mov avi wma wmv
aif aiff aifc au caf w64 amr 3gp ac3 mpg mpeg ts"""
AUDIO_EXTENSIONS = frozenset("." + e for e in _EXTENSIONS.split())

_HEADER_BYTES = 4096  # enough to find a WAV "fmt " chunk after a few metadata chunks


# ---------------------------------------------------------------- opening


def _check_path(path: Path) -> bytes:
    """The first bytes of a readable, non-empty file, or the reason it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEADER_BYTES)
    except FileNotFoundError as e:
        raise AudioError("no such file") from e
    except IsADirectoryError as e:
        raise AudioError("is a directory") from e
    except PermissionError as e:
        raise AudioError("permission denied") from e
    except OSError as e:
        if path.is_dir():  # some platforms report EACCES/EISDIR differently for directories
            raise AudioError("is a directory") from e
        raise AudioError(f"cannot read: {e.strerror or e}") from e
    if not head:
        raise AudioError("empty file")
    return head


def _wav_problem(head: bytes) -> str | None:
    """Why a RIFF/WAVE header is unusable, when libsndfile only says 'struct incomplete'."""
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            if pos + 16 > len(head):
                break
            channels, rate = struct.unpack("<HI", head[pos + 10 : pos + 16])
            if rate == 0:
                return "sample rate 0"
            if channels == 0:
                return "0 channels"
            return None
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
    return "not a valid WAV file (no format chunk)"


class _Input:
    """A source resolved to something decoders can open: a path or an in-memory file."""

    def __init__(self, source: _Encoded) -> None:
        self.path: Path | None = None
        self.data: bytes | None = None
        if isinstance(source, bytes):
            if not source:
                raise AudioError("empty input")
            self.data = source
        elif isinstance(source, str) and source == "-":
            self.data = sys.stdin.buffer.read()
            if not self.data:
                raise AudioError("empty input on stdin")
        else:
            self.path = Path(source)
            self.head = _check_path(self.path)
            return
        self.head = self.data[:_HEADER_BYTES]

    def open(self) -> str | BinaryIO:
        """A fresh handle each time: a failed decoder may have moved the file position."""
        if self.path is not None:
            return str(self.path)
        assert self.data is not None
        return io.BytesIO(self.data)


def _downmix(a: np.ndarray) -> np.ndarray:
    """(samples, channels) -> (samples,) float32, the channels' mean."""
    if a.shape[1] == 1:
        return a[:, 0]
    # a matrix-vector product: numpy's strided mean over a short axis is ~10x slower
    return a @ np.full(a.shape[1], 1.0 / a.shape[1], dtype=np.float32)


class _Decoder(abc.ABC):
    """Native-rate mono float32 blocks from one opened source."""

    sample_rate: int

    @abc.abstractmethod
    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """The decoded audio in blocks of ``frames`` samples (the last may be shorter)."""

    @abc.abstractmethod
    def duration(self) -> float | None:
        """Seconds of audio, or None when the container does not say."""


class _SoundFileDecoder(_Decoder):
    def __init__(self, f: sf.SoundFile) -> None:
        self.file = f
        self.sample_rate = f.samplerate

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        with self.file as f:
            while True:
                try:
                    block = f.read(frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as e:
                    raise AudioError(f"cannot decode: {e}") from e
                if block.shape[0] == 0:
                    return
                yield _downmix(block)

    def duration(self) -> float | None:
        with self.file as f:
            return f.frames / self.sample_rate if f.frames > 0 else None


def _av_frame_to_mono(frame: Any) -> np.ndarray:
    """An ``av.AudioFrame`` of any sample format -> (samples,) float32 in [-1, 1]."""
    a = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:  # interleaved: (1, samples * channels)
        a = a.reshape(-1, channels).T
    kind = frame.format.name.rstrip("p")
    if kind == "u8":
        a = (a.astype(np.float32) - 128.0) / 128.0
    elif kind in ("s16", "s32", "s64"):
        a = a.astype(np.float32) / float(2 ** (int(kind[1:]) - 1))
    return _downmix(a.astype(np.float32).T)


class _PyAVDecoder(_Decoder):
    def __init__(self, container: Any) -> None:
        import av

        self.container = container
        if not container.streams.audio:
            container.close()
            raise AudioError("not an audio file (no audio stream)")
        # FFmpeg's pick (default disposition, most channels...), as ffmpeg/players would use
        self.stream = container.streams.best("audio") or container.streams.audio[0]
        self.stream.thread_type = "AUTO"
        self._frames = container.decode(self.stream)
        try:  # decode one frame now: rates are only certain (HE-AAC) once audio is decoded
            self._first = next(self._frames, None)
        except av.FFmpegError as e:
            container.close()
            raise AudioError(f"cannot decode: {e}") from e
        rate = self._first.sample_rate if self._first is not None else self.stream.rate
        if not rate:
            container.close()
            raise AudioError("sample rate 0")
        self.sample_rate = int(rate)

    def _start_shift(self) -> int:
        """Samples to prepend (> 0) or drop (< 0) so that sample 0 is the container start."""
        first = self._first
        if first is None or first.time is None:
            return 0
        origin = (self.container.start_time or 0) / 1_000_000  # AV_TIME_BASE units
        return round((first.time - origin) * self.sample_rate)

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        import av

        try:
            shift = self._start_shift()
            pending: list[np.ndarray] = []
            have = 0
            if shift > 0:
                pending.append(np.zeros(shift, np.float32))
                have = shift
            drop = max(0, -shift)
            frame = self._first
            while frame is not None:
                if frame.sample_rate != self.sample_rate:
                    raise AudioError("sample rate changes mid-stream")
                x = _av_frame_to_mono(frame)
                if drop:
                    x, drop = x[drop:], max(0, drop - x.shape[0])
                pending.append(x)
                have += x.shape[0]
                if have >= frames:
                    yield np.concatenate(pending)
                    pending, have = [], 0
                try:
                    frame = next(self._frames, None)
                except av.FFmpegError as e:
                    raise AudioError(f"cannot decode: {e}") from e
            if have:
                yield np.concatenate(pending)
        finally:
            self.container.close()

    def duration(self) -> float | None:
        try:
            if self.container.duration:
                return float(self.container.duration / 1_000_000)
            if self.stream.duration and self.stream.time_base:
                return float(self.stream.duration * self.stream.time_base)
            return None
        finally:
            self.container.close()


def _open(source: _Encoded) -> _Decoder:
    inp = _Input(source)
    try:
        f = sf.SoundFile(inp.open())
    except (sf.LibsndfileError, RuntimeError) as sf_error:
        problem = _wav_problem(inp.head)
        if problem is not None:
            raise AudioError(problem) from sf_error
    else:
        if f.samplerate <= 0:
            f.close()
            raise AudioError("sample rate 0")
        return _SoundFileDecoder(f)
    import av

    try:
        container = av.open(inp.open(), mode="r", metadata_errors="ignore")
    except av.FFmpegError as e:
        raise AudioError("not an audio file") from e
    return _PyAVDecoder(container)


# ---------------------------------------------------------------- resampling


@lru_cache(maxsize=16)
def _sinc_kernel(o: int, n: int) -> tuple[torch.Tensor, int]:
    """Filter bank for ``o -> n`` (see ``_phases``): row ``j`` holds the taps that
    make output phase ``j`` of each group from input ``[k*o - w, k*o + o + w)``.

    Returns the (n, 1, 2w + o) kernel and the half-width ``w`` in input samples.
    """
    cutoff = _ROLLOFF * min(o, n) / (2 * o)  # cycles per input sample
    half = _ZERO_CROSSINGS / (2 * cutoff)  # window half-length in input samples
    width = math.ceil(half)
    # distance of each tap from the ideal position j*o/n of output phase j
    taps = np.arange(-width, o + width, dtype=np.float64)[None, :]
    d = taps - (np.arange(n, dtype=np.float64) * o / n)[:, None]  # (n, 2w + o)
    r = np.clip(d / half, -1.0, 1.0)
    window = np.i0(_KAISER_BETA * np.sqrt(1 - r**2)) / np.i0(_KAISER_BETA)
    window[np.abs(d) > half] = 0.0  # the taps rounding ``width`` up adds lie outside
    kernel = 2 * cutoff * np.sinc(2 * cutoff * d) * window
    return torch.from_numpy(kernel.astype(np.float32))[:, None, :], width


def _phases(orig: int, new: int) -> tuple[int, int]:
    """``(o, n)``: each step of the filter bank reads ``o`` new input samples and makes ``n``
    output samples. The rates divided by their gcd give the fewest, but for simple ratios
    (48 -> 16 kHz is 3 -> 1) a bank of one or two rows is a slow convolution; scaling both
    up to 32 rows computes the same taps at the same positions three times faster."""
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    scale = -(-_MIN_PHASES // n)
    return o * scale, n * scale


def resample(x: np.ndarray, orig: int, new: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a whole (N,) float32 signal (zeros assumed outside it): ceil(N*new/orig)
    samples out."""
    if orig == new:
        return x
    o, n = _phases(orig, new)
    kernel, width = _sinc_kernel(o, n)
    padded = np.zeros(x.shape[0] + 2 * width + o, np.float32)
    padded[width : width + x.shape[0]] = x
    y = torch.nn.functional.conv1d(torch.from_numpy(padded)[None, None], kernel, stride=o)
    y = y[0].T.reshape(-1)  # (1, n, groups) -> (groups * n,): phases into time order
    return y[: -(-n * x.shape[0] // o)].numpy()


class _StreamResampler:
    """Resample a signal fed in arbitrary pieces exactly as one whole-signal call would.

    With ``o -> n`` from ``_phases``, output samples come in groups of ``n``,
    group ``k`` computed from input ``[k*o - w, k*o + o + w)`` (``w`` = filter half-width,
    zeros outside the signal). A group is emitted once its window is complete, and the
    input is kept from ``context`` groups before the next group, so each call sees that
    group's whole window, or the true signal start.
    """

    def __init__(self, orig: int, new: int = SAMPLE_RATE) -> None:
        self.orig, self.new = orig, new
        self.o, self.n = _phases(orig, new)
        self.width = _sinc_kernel(self.o, self.n)[1] if orig != new else 0
        self.context = -(-self.width // self.o) + 1  # groups of input kept on the left
        self.buf = np.zeros(0, np.float32)
        self.buf_group = 0  # group index of buf[0]
        self.next_group = 0  # first group not yet emitted
        self.seen = 0  # input samples received

    def _emit(self, end_group: int, end_sample: int) -> np.ndarray:
        y = resample(self.buf, self.orig, self.new)  # output of the buffer, from group buf_group on
        base = self.buf_group * self.n
        out = y[self.next_group * self.n - base : end_sample - base]
        self.next_group = end_group
        keep = max(0, end_group - self.context)
        self.buf = self.buf[(keep - self.buf_group) * self.o :]
        self.buf_group = keep
        return out

    def push(self, x: np.ndarray) -> np.ndarray:
        if self.orig == self.new:
            return x
        self.buf = np.concatenate([self.buf, x])
        self.seen += x.shape[0]
        end_group = (self.seen - self.width) // self.o  # groups before it have whole windows
        if end_group <= self.next_group:
            return np.zeros(0, np.float32)
        return self._emit(end_group, end_group * self.n)

    def flush(self) -> np.ndarray:
        if self.orig == self.new or self.seen == 0:
            return np.zeros(0, np.float32)
        total = -(-self.n * self.seen // self.o)  # ceil, as torchaudio trims the last group
        return self._emit(-(-total // self.n), total)


# ---------------------------------------------------------------- public API


def _array_blocks(a: np.ndarray, size: int) -> Iterator[np.ndarray]:
    if a.ndim == 2:
        a = a.mean(axis=1)
    elif a.ndim != 1:
        raise AudioError(f"expected samples (N,) or (N, channels), got shape {a.shape}")
    a = np.asarray(a, dtype=np.float32)
    for i in range(0, a.shape[0], size):
        yield a[i : i + size]


def iter_blocks(source: AudioSource, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Consecutive blocks of 16 kHz mono float32 samples; all are ``block_seconds`` long
    except the last. Their concatenation equals ``load_audio(source)``.

    Opening errors (missing file, not audio, ...) are raised here; decoding errors when the
    bad part is reached.
    """
    if not block_seconds > 0:
        raise ValueError(f"block_seconds must be positive, got {block_seconds}")
    size = max(1, round(block_seconds * SAMPLE_RATE))
    if isinstance(source, np.ndarray):
        return _rechunk(_array_blocks(source, size), SAMPLE_RATE, size)
    decoder = _open(source)
    native = decoder.blocks(max(1, round(block_seconds * decoder.sample_rate)))
    return _rechunk(native, decoder.sample_rate, size)


def _rechunk(native: Iterator[np.ndarray], rate: int, size: int) -> Iterator[np.ndarray]:
    resampler = _StreamResampler(rate)
    pending: list[np.ndarray] = []
    have = total = 0

    def resampled() -> Iterator[np.ndarray]:
        for block in native:
            if not np.isfinite(block).all():
                raise AudioError("contains NaN or infinite samples")
            yield resampler.push(block)
        yield resampler.flush()

    for y in resampled():
        pending.append(np.clip(y, -1.0, 1.0))
        have += y.shape[0]
        while have >= size:
            joined = np.concatenate(pending)
            yield joined[:size]
            pending, have = [joined[size:]], have - size
            total += size
    if have:
        yield np.concatenate(pending)
        total += have
    if total == 0:
        raise AudioError("no audio samples")


def load_audio(source: AudioSource) -> np.ndarray:
    """The whole source as (N,) float32 samples at 16 kHz, mono, in [-1, 1]."""
    return np.concatenate(list(iter_blocks(source)))


def probe_duration(source: AudioSource) -> float | None:
    """Duration in seconds from the file's header, without decoding; None when the format
    does not say (or for stdin, which cannot be read twice). Raises ``AudioError`` for
    sources that cannot be opened."""
    if isinstance(source, np.ndarray):
        return source.shape[0] / SAMPLE_RATE
    if isinstance(source, str) and source == "-":
        return None
    return _open(source).duration()


def find_audio_files(directory: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Files under ``directory`` whose extension is in ``AUDIO_EXTENSIONS`` (any case), in
    sorted path order; hidden files and directories (".name", e.g. our own temporary
    outputs) are skipped."""
    root = Path(directory)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        found.extend(
            Path(dirpath) / name
            for name in filenames
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS
        )
    return sorted(found)
