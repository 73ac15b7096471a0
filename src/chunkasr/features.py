"""Kaldi fbank features exactly as the official pipeline computes them.

80 mel bins, 25 ms windows every 10 ms, no dither, energy floor 0, on samples scaled to the
int16 range (the official loader converts audio to 16-bit integers first). Frames are local
(frame t covers samples [160t, 160t + 400)), so long audio is featurised block by block with
a 240-sample overlap and the result equals a whole-file pass.
"""

from __future__ import annotations

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

    Runs on the device of ``samples``.
    """
    if samples.dim() != 1:
        raise ValueError(f"expected mono samples (N,), got shape {tuple(samples.shape)}")
    if num_frames(samples.shape[0]) == 0:
        return samples.new_zeros(0, n_mels, dtype=torch.float32)
    wave = (samples.to(torch.float32) * INT16_SCALE).unsqueeze(0)
    return kaldi.fbank(
        wave,
        num_mel_bins=n_mels,
        frame_length=25.0,
        frame_shift=10.0,
        dither=0.0,
        energy_floor=0.0,
        sample_frequency=SAMPLE_RATE,
    )
