"""Reusable training parts for ChunkFormer-CTC models.

* :class:`FeatureStore` -- fbank of a whole corpus precomputed once into one fp16 memmap plus
  an index (offsets, lengths, token ids), so the training loop only slices arrays.
* Waveform augmentation (:func:`augment_waveform`): speed, gain, additive noise, telephone
  band, short reverberation; :func:`concat_with_pauses` builds long-form examples. Both run at
  feature-extraction time, as extra feature copies.
* :func:`spec_augment` masks frequency bands and time spans of the raw fbank (filled with the
  CMVN mean, i.e. zero after normalisation); :func:`freq_warp`, :func:`time_smear` and
  :func:`breath_noise` change the voice (vocal-tract length, smoothed trajectories, breathiness).
* :class:`BucketBatchSampler` -- length-bucketed batches bounded by total frames, with a
  resumable position; :func:`sample_context` draws chunk/left/right context per batch.
* :func:`shrink_block_outputs` -- near-identity blocks at init (deep stacks otherwise learn
  frame-level tasks several times slower than one block).
* :func:`ctc_step` -- forward, CTC loss, backward, clip, optimizer and scheduler step.
* :func:`save_checkpoint` / :func:`load_checkpoint` -- everything needed for exact resume.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF
from torch import nn

from .features import fbank
from .model.ctc import ChunkFormerCTC
from .model.subsampling import subsampled_length

__all__ = [
    "AugmentConfig",
    "BucketBatchSampler",
    "ContextSampler",
    "FeatureStore",
    "FeatureWriter",
    "cepstral_smooth",
    "augment_waveform",
    "cmvn_stats",
    "concat_with_pauses",
    "ctc_step",
    "load_checkpoint",
    "noam_cosine_lr",
    "save_checkpoint",
    "shrink_block_outputs",
    "freq_warp",
    "insert_blocks",
    "change_tempo",
    "spec_augment",
]

SR = 16000


# ---------------------------------------------------------------------------- features


class FeatureWriter:
    """Appends (T, 80) fbank matrices to ``<prefix>.f16`` and writes ``<prefix>.json`` at close."""

    def __init__(self, prefix: str | Path, n_mels: int = 80) -> None:
        self.prefix = Path(prefix)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self.n_mels = n_mels
        self._f = open(str(self.prefix) + ".f16.tmp", "wb")  # noqa: SIM115
        self.offsets: list[int] = []
        self.lengths: list[int] = []
        self.tokens: list[list[int]] = []
        self.texts: list[str] = []
        self.ids: list[str] = []
        self._pos = 0

    def add(self, utt_id: str, feats: np.ndarray | torch.Tensor, tokens: Sequence[int], text: str) -> None:
        a = feats.numpy() if isinstance(feats, torch.Tensor) else feats
        a = np.ascontiguousarray(a, dtype=np.float16)
        assert a.ndim == 2 and a.shape[1] == self.n_mels
        self._f.write(a.tobytes())
        self.offsets.append(self._pos)
        self.lengths.append(a.shape[0])
        self.tokens.append([int(t) for t in tokens])
        self.texts.append(text)
        self.ids.append(utt_id)
        self._pos += a.shape[0]

    def close(self) -> None:
        self._f.close()
        os.replace(str(self.prefix) + ".f16.tmp", str(self.prefix) + ".f16")
        index = {
            "n_mels": self.n_mels,
            "frames": self._pos,
            "ids": self.ids,
            "offsets": self.offsets,
            "lengths": self.lengths,
            "tokens": self.tokens,
            "texts": self.texts,
        }
        tmp = str(self.prefix) + ".json.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(index, f)
        os.replace(tmp, str(self.prefix) + ".json")


class FeatureStore:
    """Read side of :class:`FeatureWriter`; several stores can be merged with :meth:`concat`."""

    def __init__(self, prefixes: Sequence[str | Path]) -> None:
        self._arrays: list[np.ndarray] = []
        self.source: list[int] = []
        self.offsets: list[int] = []
        self.lengths: list[int] = []
        self.tokens: list[list[int]] = []
        self.texts: list[str] = []
        self.ids: list[str] = []
        for k, p in enumerate(prefixes):
            with open(str(p) + ".json", encoding="utf-8") as f:
                idx = json.load(f)
            n_mels = int(idx["n_mels"])
            frames = int(idx["frames"])
            arr = np.memmap(str(p) + ".f16", dtype=np.float16, mode="r", shape=(frames, n_mels))
            self._arrays.append(arr)
            self.source += [k] * len(idx["ids"])
            self.offsets += idx["offsets"]
            self.lengths += idx["lengths"]
            self.tokens += idx["tokens"]
            self.texts += idx["texts"]
            self.ids += idx["ids"]

    def __len__(self) -> int:
        return len(self.lengths)

    def feats(self, i: int) -> torch.Tensor:
        """(T, 80) float32 fbank of item ``i``."""
        a = self._arrays[self.source[i]]
        o = self.offsets[i]
        return torch.from_numpy(np.asarray(a[o : o + self.lengths[i]], dtype=np.float32))

    def total_seconds(self) -> float:
        return sum(self.lengths) / 100.0


def cmvn_stats(store: FeatureStore, max_items: int = 5000, seed: int = 0) -> dict[str, Any]:
    """Global CMVN statistics in the official JSON form (sums, sums of squares, frame count)."""
    order = list(range(len(store)))
    random.Random(seed).shuffle(order)
    s = torch.zeros(80, dtype=torch.float64)
    q = torch.zeros(80, dtype=torch.float64)
    n = 0
    for i in order[:max_items]:
        f = store.feats(i).double()
        s += f.sum(0)
        q += (f * f).sum(0)
        n += f.shape[0]
    return {"mean_stat": s.tolist(), "var_stat": q.tolist(), "frame_num": n}


# ---------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the waveform augmentations."""

    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-20.0, 4.0)
    p_telephone: float = 0.2
    p_reverb: float = 0.3
    rt60: tuple[float, float] = (0.15, 0.6)
    # Voice variety beyond speed (which moves pitch, formants and rate together): a tempo change
    # that keeps pitch and formants (sox's WSOLA ``tempo``), and a random peaking EQ (a different
    # microphone, room or vocal timbre). 0 turns each off; ``tempo`` needs the ``sox`` program.
    p_tempo: float = 0.0
    tempo: tuple[float, float] = (0.8, 1.25)
    p_eq: float = 0.0
    eq_gain_db: tuple[float, float] = (-10.0, 10.0)
    eq_hz: tuple[float, float] = (150.0, 5000.0)


def _colored_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown noise of unit RMS."""
    kind = rng.integers(3)
    white = rng.standard_normal(n)
    if kind == 0:
        x = white
    else:
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec = spec / (f ** (0.5 if kind == 1 else 1.0))
        x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x * x)) + 1e-9)


def _reverb(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic exponentially decaying noise impulse response."""
    n = int(min(rt60, 0.5) * SR)
    t = np.arange(n) / SR
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 / max(rng.uniform(0.3, 1.0), 1e-3)  # direct path
    rir /= np.sqrt(np.sum(rir * rir))
    size = len(x) + n - 1
    nfft = 1 << (size - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(rir, nfft), nfft)[: len(x)]
    return y * (np.sqrt(np.mean(x * x)) / (np.sqrt(np.mean(y * y)) + 1e-9))


def change_tempo(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster with pitch and formants kept (sox ``tempo``, WSOLA)."""
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError("tempo augmentation needs the sox program (Debian package sox)")
    raw = ["-t", "raw", "-r", str(SR), "-e", "floating-point", "-b", "32", "-c", "1"]
    out = subprocess.run(
        [sox, *raw, "-", *raw, "-", "tempo", "-s", f"{factor:.4f}"],
        input=np.asarray(x, dtype=np.float32).tobytes(), capture_output=True, check=True,
    )  # fmt: skip
    return np.frombuffer(out.stdout, dtype=np.float32).astype(np.float64)


def augment_waveform(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig | None = None) -> np.ndarray:
    """Random speed, tempo, EQ, reverberation, telephone band, additive noise and gain; float32
    in [-1, 1]."""
    cfg = cfg or AugmentConfig()
    y = np.asarray(x, dtype=np.float64)
    speed = float(rng.choice(cfg.speeds))
    if speed != 1.0:
        orig = int(round(SR * speed / 100)) * 100  # 14400 / 17600: small gcd-friendly ratios
        y = AF.resample(torch.from_numpy(y), orig, SR).numpy()
    if rng.random() < cfg.p_tempo:
        y = change_tempo(y, rng.uniform(*cfg.tempo))
    if rng.random() < cfg.p_eq:
        hz = math.exp(rng.uniform(math.log(cfg.eq_hz[0]), math.log(cfg.eq_hz[1])))
        gain, q = rng.uniform(*cfg.eq_gain_db), rng.uniform(0.5, 2.0)
        y = AF.equalizer_biquad(torch.from_numpy(y), SR, hz, gain, q).numpy()
    if rng.random() < cfg.p_reverb:
        y = _reverb(y, rng.uniform(*cfg.rt60), rng)
    if rng.random() < cfg.p_telephone:
        t = AF.resample(torch.from_numpy(y), SR, 8000)
        t = AF.highpass_biquad(t, 8000, rng.uniform(200.0, 400.0))
        y = AF.resample(t, 8000, SR).numpy()[: len(y)]
    if rng.random() < cfg.p_noise:
        rms = np.sqrt(np.mean(y * y)) + 1e-9
        snr = rng.uniform(*cfg.snr_db)
        y = y + _colored_noise(len(y), rng) * rms / (10 ** (snr / 20))
    peak = np.max(np.abs(y)) + 1e-9
    g = 10 ** (rng.uniform(*cfg.gain_db) / 20) * 0.9 / peak
    return np.clip(y * min(g, 0.99 / peak), -1.0, 1.0).astype(np.float32)


def concat_with_pauses(
    waves: Sequence[np.ndarray], rng: np.random.Generator, pause: tuple[float, float] = (0.1, 1.5)
) -> np.ndarray:
    """Join utterances with random silent pauses (faint noise) -- a long-form example."""
    parts: list[np.ndarray] = []
    for k, w in enumerate(waves):
        if k:
            n = int(rng.uniform(*pause) * SR)
            parts.append((rng.standard_normal(n) * 1e-4).astype(np.float32))
        w = np.asarray(w, dtype=np.float32)
        parts.append(w / (np.max(np.abs(w)) + 1e-9) * rng.uniform(0.3, 0.9))
    return np.concatenate(parts)


def waveform_features(x: np.ndarray) -> torch.Tensor:
    return fbank(torch.from_numpy(np.asarray(x, dtype=np.float32)))


def spec_augment(
    feats: torch.Tensor,
    fill: torch.Tensor,
    rng: random.Random,
    n_freq: int = 2,
    max_freq: int = 12,
    time_ratio: float = 0.04,
    max_time: int = 40,
) -> torch.Tensor:
    """Mask ``n_freq`` frequency bands and about one time span per second of (T, F) fbank.

    Masked values are ``fill`` (the CMVN mean, so they are 0 after normalisation).
    """
    x = feats.clone()
    T, F = x.shape
    for _ in range(n_freq):
        w = rng.randint(0, max_freq)
        f0 = rng.randint(0, max(F - w, 0))
        x[:, f0 : f0 + w] = fill[f0 : f0 + w]
    n_time = max(1, int(T * time_ratio / 4))  # 4 masks of up to 10 frames per ~100 frames
    for _ in range(n_time):
        w = rng.randint(0, min(max_time, max(T // 10, 1)))
        t0 = rng.randint(0, max(T - w, 0))
        x[t0 : t0 + w] = fill
    return x


def _mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def freq_warp(
    feats: torch.Tensor, alpha: float, low_hz: float = 20.0, high_hz: float = 8000.0
) -> torch.Tensor:
    """Vocal-tract-length warp of (T, F) log-mel features: what was at f Hz moves to alpha * f.

    ``alpha`` > 1 raises the formants (a shorter vocal tract), < 1 lowers them, leaving the
    tempo and the pitch harmonics' spacing to speed perturbation. Bins are read from the
    input by linear interpolation at the warped mel position (the fbank's own mel scale,
    ``low_hz``..``high_hz``); positions past either end repeat the edge bin.
    """
    if alpha == 1.0:
        return feats.clone()
    F = feats.shape[1]
    m_lo, m_hi = _mel(low_hz), _mel(high_hz)
    delta = (m_hi - m_lo) / (F + 1)
    centers_hz = 700.0 * np.expm1((m_lo + delta * np.arange(1, F + 1)) / 1127.0)
    pos = (_mel(centers_hz / alpha) - m_lo) / delta - 1.0  # input bin index for each output bin
    pos = np.clip(pos, 0.0, F - 1.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, F - 1)
    w = torch.from_numpy(pos - lo).to(feats.dtype)
    return feats[:, lo] * (1 - w) + feats[:, hi] * w



def time_smear(feats: torch.Tensor, width: int) -> torch.Tensor:
    """Blur (T, F) log-mel features along time with a triangular kernel ``width`` frames wide.

    Mimics voices whose spectral trajectories are smoothed (statistical-parametric synthesis):
    stop bursts and fast formant moves are spread over ``width`` * 10 ms. ``width`` is odd; 1
    returns a copy. The edges repeat the first and last frame, so the length is unchanged.
    """
    if width < 1 or width % 2 == 0:
        raise ValueError(f"width must be odd and positive, got {width}")
    if width == 1:
        return feats.clone()
    r = width // 2
    k = torch.tensor([r + 1 - abs(i - r) for i in range(width)], dtype=feats.dtype)
    k = k / k.sum()
    padded = torch.cat([feats[:1].expand(r, -1), feats, feats[-1:].expand(r, -1)])
    T = feats.shape[0]
    return sum(k[i] * padded[i : i + T] for i in range(width))  # type: ignore[return-value]


def breath_noise(feats: torch.Tensor, level_db: float, seed: int) -> torch.Tensor:
    """Add aspiration-like noise to (T, F) log-mel (natural-log power) features.

    In each frame, noise at ``level_db`` below the frame's mean band power, rising linearly
    from a fifth of that at the lowest band to all of it at the highest (breath noise is
    high-pass), with the power of each band and frame fluctuating like noise does (a
    chi-square draw of 8 degrees of freedom, scaled to mean 1). Silence stays silent: the
    noise follows the speech, as breathiness does. ``seed`` makes the draw reproducible.
    """
    T, F = feats.shape
    g = torch.Generator().manual_seed(seed)
    power = feats.double().exp()
    frame = power.mean(1, keepdim=True) * 10.0 ** (level_db / 10.0)
    shape = torch.linspace(0.0, 1.0, F, dtype=torch.float64).clamp(min=0.2)
    jitter = torch.randn(T, F, 8, generator=g, dtype=torch.float64).pow(2).mean(-1)
    return (power + frame * shape * jitter).log().to(feats.dtype)


def cepstral_smooth(feats: torch.Tensor, keep: int) -> torch.Tensor:
    """Smooth (T, F) log-mel features across frequency by keeping ``keep`` cepstral coefficients.

    The log-mel spectrum of each frame is taken to the cepstrum (orthonormal DCT-II over the
    ``F`` bands), every coefficient from ``keep`` on is zeroed and the rest transformed back.
    What survives is the spectral envelope a low-order vocoder would carry; harmonic ripple and
    narrow peaks go. ``keep`` = ``F`` returns the input (to float rounding); ``keep`` = 1 leaves
    each frame's mean level only.
    """
    F = feats.shape[1]
    if not 1 <= keep <= F:
        raise ValueError(f"keep must be in 1..{F}, got {keep}")
    low = AF.create_dct(keep, F, norm="ortho").double()  # (band, coefficient)
    return (feats.double() @ low @ low.T).to(feats.dtype)


# ---------------------------------------------------------------------------- batching


class BucketBatchSampler:
    """Batches of similar-length items with at most ``max_frames`` (padded) fbank frames.

    Each epoch: items are shuffled, sorted by length inside windows of ``bucket_window``
    items, cut into batches, and the batches shuffled. ``state()``/``load_state()`` give the
    epoch and the position inside it, so a resumed run sees exactly the same batches.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames: int,
        seed: int = 0,
        bucket_window: int = 2000,
        max_items: int = 256,
    ) -> None:
        self.lengths = list(lengths)
        self.max_frames = max_frames
        self.seed = seed
        self.bucket_window = bucket_window
        self.max_items = max_items
        self.epoch = 0
        self.pos = 0
        self._batches: list[list[int]] | None = None

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 100003 + epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        batches: list[list[int]] = []
        for s in range(0, len(order), self.bucket_window):
            window = sorted(order[s : s + self.bucket_window], key=lambda i: self.lengths[i])
            cur: list[int] = []
            longest = 0
            for i in window:
                n = max(longest, self.lengths[i])
                if cur and (n * (len(cur) + 1) > self.max_frames or len(cur) >= self.max_items):
                    batches.append(cur)
                    cur, n = [], self.lengths[i]
                cur.append(i)
                longest = n
            if cur:
                batches.append(cur)
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            if self._batches is None:
                self._batches = self.epoch_batches(self.epoch)
            if self.pos >= len(self._batches):
                self.epoch += 1
                self.pos = 0
                self._batches = None
                continue
            b = self._batches[self.pos]
            self.pos += 1
            yield b

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._batches = None


@dataclass(frozen=True)
class ContextSampler:
    """Per-batch attention context (encoder frames); chunk -1 = full context."""

    p_full: float = 0.25
    chunks: tuple[int, ...] = (16, 32, 64, 64, 128)
    lefts: tuple[int, ...] = (32, 64, 128, 128, 256)
    rights: tuple[int, ...] = (0, 16, 32, 64, 128, 128)

    def __call__(self, rng: random.Random) -> tuple[int, int, int]:
        if rng.random() < self.p_full:
            return -1, 0, 0
        return rng.choice(self.chunks), rng.choice(self.lefts), rng.choice(self.rights)


# ---------------------------------------------------------------------------- optimisation


def noam_cosine_lr(step: int, peak: float, warmup: int, total: int, floor: float = 0.02) -> float:
    """Linear warm-up to ``peak`` then cosine decay to ``floor * peak`` at ``total`` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def _quantize_shapes(
    model: ChunkFormerCTC, feats: list[torch.Tensor], chunk: int, left: int, right: int, q: int
) -> tuple[list[torch.Tensor], int, int, int]:
    """Same outputs for the real files, but tensor shapes from a small set (oneDNN caches
    kernels per shape): full context becomes one chunk of a length rounded up to 16 frames;
    in chunked mode silent dummy files (CMVN mean) round the number of chunks up to a multiple of ``q``.
    """
    lengths = [subsampled_length(f.shape[0]) for f in feats]
    if chunk == -1:  # one chunk per file; the batch size varies little, leave it
        return feats, -(-max([*lengths, 1]) // 16) * 16, 0, 0
    n = sum(-(-m // chunk) for m in lengths)
    pad = -n % q
    if pad:
        fill = model.encoder.global_cmvn.mean.detach().to(feats[0].dtype)
        frames = (pad * chunk) * 8 + 7
        feats = [*feats, fill.expand(frames, -1).contiguous()]
    return feats, chunk, left, right


def ctc_loss(
    model: ChunkFormerCTC,
    feats: Sequence[torch.Tensor],
    targets: Sequence[Sequence[int]],
    context: tuple[int, int, int],
    autocast: bool = True,
    quantize: int = 0,
) -> tuple[torch.Tensor, int]:
    """Summed CTC loss of a batch and its number of target tokens.

    Utterances too short for their targets (or empty) are dropped from the batch.
    """
    keep = [
        i
        for i, (f, t) in enumerate(zip(feats, targets, strict=True))
        if len(t) > 0 and subsampled_length(f.shape[0]) >= len(t)
    ]
    feats = [feats[i] for i in keep]
    targets = [targets[i] for i in keep]
    if not feats:
        return torch.zeros((), requires_grad=True), 0
    chunk, left, right = context
    feats = list(feats)
    n_real = len(feats)
    if quantize:
        feats, chunk, left, right = _quantize_shapes(model, feats, chunk, left, right, quantize)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        outs, _ = model.encoder(feats, chunk, left, right)
        outs = outs[:n_real]
        lens = [o.shape[0] for o in outs]
        padded = nn.utils.rnn.pad_sequence(outs, batch_first=False)  # (T, B, D)
        log_probs = model.ctc(padded)  # float32
    tgt = torch.tensor([t for ts in targets for t in ts], dtype=torch.long)
    tlen = torch.tensor([len(ts) for ts in targets], dtype=torch.long)
    loss = nn.functional.ctc_loss(
        log_probs, tgt, torch.tensor(lens), tlen, blank=0, reduction="sum", zero_infinity=True
    )
    return loss, int(tlen.sum())


def ctc_step(
    model: ChunkFormerCTC,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    feats: Sequence[torch.Tensor],
    targets: Sequence[Sequence[int]],
    context: tuple[int, int, int],
    clip: float = 5.0,
    autocast: bool = True,
    quantize: int = 0,
) -> dict[str, float]:
    """One training step; the loss is normalised per target token. Returns loss and grad norm."""
    model.train()
    loss, n_tok = ctc_loss(model, feats, targets, context, autocast, quantize)
    optimizer.zero_grad(set_to_none=True)
    (loss / max(n_tok, 1)).backward()
    gnorm = float(nn.utils.clip_grad_norm_(model.parameters(), clip))
    if math.isfinite(gnorm):
        optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return {"loss": float(loss.detach()) / max(n_tok, 1), "grad_norm": gnorm, "tokens": n_tok}


def shrink_block_outputs(model: ChunkFormerCTC, scale: float = 0.01) -> None:
    """Scale the last projection of every residual branch (attention output, both feed-forward
    outputs, the convolution module's second pointwise conv) so that each block starts close to
    the identity.

    With PyTorch's default init, the blocks' near-uniform attention averages frames together:
    on a frame-level task (the dominant band of each 80 ms frame) one block reaches 85%
    accuracy in 120 steps, six blocks 42%; scaled by 0.01, six blocks reach 82% (docs/training.md).
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.rsplit(".", 2)[-2] in ("linear_out", "w_2", "pointwise_conv2"):
                p.mul_(scale)  # weight and bias


def insert_blocks(model: ChunkFormerCTC, after: Sequence[int], scale: float = 0.01) -> ChunkFormerCTC:
    """A deeper copy of ``model`` that computes (almost) the same function: a fresh block is
    inserted after each block index in ``after`` (0-based; repeat an index for several).

    A new block's residual branches start at ``scale`` of their init
    (:func:`shrink_block_outputs`), so it adds ~nothing to the stream. Every block ends with a
    LayerNorm (``norm_final``), which a new block would apply a second time; so the block
    before it hands over its final norm's gain and bias to the new block and keeps a plain
    normalisation (gain 1, bias 0): norm(norm(x)) = norm(x), and with ``scale=0`` the deeper
    model's output equals the original's to float rounding. Used to grow a trained model's
    capacity without starting over (``scripts/train_fast.py --grow``).
    """
    old = list(model.encoder.encoders)
    after = sorted(after)
    if any(not 0 <= k < len(old) for k in after):  # a new block takes over its predecessor's norm
        raise ValueError(f"insert positions {after} out of range for {len(old)} blocks")
    cfg = dataclasses.replace(model.cfg, num_blocks=len(old) + len(after))
    grown = ChunkFormerCTC(cfg)
    shrink_block_outputs(grown, scale)
    src = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.encoders.")}
    missing = grown.load_state_dict(src, strict=False).missing_keys
    assert all(k.startswith("encoder.encoders.") for k in missing), missing
    new_layers = grown.encoder.encoders
    j = 0
    with torch.no_grad():
        for i, layer in enumerate(old):
            new_layers[j].load_state_dict(layer.state_dict())
            j += 1
            for _ in range(after.count(i)):
                prev, fresh = new_layers[j - 1].norm_final, new_layers[j].norm_final
                if not isinstance(prev, nn.LayerNorm) or not isinstance(fresh, nn.LayerNorm):
                    raise ValueError("insert_blocks needs blocks with a final norm (use_cnn_module)")
                fresh.weight.copy_(prev.weight)
                fresh.bias.copy_(prev.bias)
                prev.weight.fill_(1.0)
                prev.bias.zero_()
                j += 1
    return grown


# ---------------------------------------------------------------------------- checkpoints


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_checkpoint(path: str | Path, **payload: Any) -> None:
    """Atomically write ``payload`` plus the global RNG states (``rng``) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "rng": rng_state()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, restore_rng: bool = True) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (our own file: full unpickling)."""
    ckpt: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    if restore_rng and "rng" in ckpt:
        set_rng_state(ckpt["rng"])
    return ckpt


def lambda_scheduler(
    optimizer: torch.optim.Optimizer, fn: Callable[[int], float]
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
