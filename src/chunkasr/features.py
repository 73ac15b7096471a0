"""Kaldi fbank features exactly as the official pipeline computes them.

80 mel bins, 25 ms windows every 10 ms, no dither, energy floor 0, on samples scaled to the
int16 range (the official loader converts audio to 16-bit integers first). Frames are local
(frame t covers samples [160t, 160t + 400)), so long audio is featurised block by block with
a 240-sample overlap and the result equals a whole-file pass.
"""

from __future__ import annotations

import functools

import torch
from torchaudio.compliance import kaldi

__all__ = ["fbank", "num_frames", "SAMPLE_RATE", "HOP", "WINDOW", "N_MELS"]

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
N_MELS = 80
INT16_SCALE = 32768.0


def num_frames(n_samples: int) -> int:
    """Fbank frames produced from ``n_samples`` samples (Kaldi ``snip_edges``)."""
    return 0 if n_samples < WINDOW else 1 + (n_samples - WINDOW) // HOP


def fbank(samples: torch.Tensor, n_mels: int = N_MELS) -> torch.Tensor:
    """(N,) float samples in [-1, 1] at 16 kHz -> (T, n_mels) float32 log-mel energies.

    The steps of ``torchaudio.compliance.kaldi.fbank`` with the settings above (per-frame DC
    removal, pre-emphasis 0.97, Povey window, 512-point power spectrum, 20 Hz-8 kHz mel
    filters, log floored at float32 epsilon), with the window and filters built once per device
    and the power spectrum taken as re^2 + im^2 rather than ``abs().pow(2)``: 1.2-1.5x faster,
    equal to torchaudio's within float rounding (tests/test_features.py).
    Runs on the device of ``samples``.
    """
    if samples.dim() != 1:
        raise ValueError(f"expected mono samples (N,), got shape {tuple(samples.shape)}")
    n = num_frames(samples.shape[0])
    if n == 0:
        return samples.new_zeros(0, n_mels, dtype=torch.float32)
    window, mel = _constants(samples.device, n_mels)
    wave = samples.to(torch.float32) * INT16_SCALE
    frames = wave.as_strided((n, WINDOW), (HOP, 1))  # wave is a new contiguous tensor
    frames = frames - frames.mean(dim=1, keepdim=True)
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # x[-1] = x[0], as Kaldi
    frames = (frames - PREEMPHASIS * prev) * window
    spec = torch.fft.rfft(frames, n=FFT_SIZE)
    power = torch.addcmul(spec.real * spec.real, spec.imag, spec.imag)  # (T, 257)
    return torch.mm(power, mel).clamp_min_(EPSILON).log_()


PREEMPHASIS = 0.97
FFT_SIZE = 512
EPSILON = float(torch.finfo(torch.float32).eps)


@functools.lru_cache(maxsize=8)
def _constants(device: torch.device, n_mels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Povey window (WINDOW,) and mel filters (FFT_SIZE / 2 + 1, n_mels) on ``device``."""
    window = torch.hann_window(WINDOW, periodic=False, dtype=torch.float32).pow(0.85)
    banks, _ = kaldi.get_mel_banks(n_mels, FFT_SIZE, float(SAMPLE_RATE), 20.0, 0.0, 100.0, -500.0, 1.0)
    mel = torch.nn.functional.pad(banks.float(), (0, 1)).t().contiguous()  # Nyquist bin: weight 0
    return window.to(device), mel.to(device)
