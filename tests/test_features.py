"""Our fbank against torchaudio's Kaldi-compatible one (what the official pipeline runs)."""

import pytest
import torch
from torchaudio.compliance import kaldi

from chunkasr.features import fbank, num_frames


def _kaldi(samples: torch.Tensor) -> torch.Tensor:
    return kaldi.fbank(
        (samples * 32768.0).unsqueeze(0),
        num_mel_bins=80,
        frame_length=25.0,
        frame_shift=10.0,
        dither=0.0,
        energy_floor=0.0,
        sample_frequency=16000,
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda g: 0.3 * torch.randn(24000, generator=g),
        lambda g: torch.sin(torch.arange(16160) * 0.3) + 0.01 * torch.randn(16160, generator=g),
        lambda g: torch.full((8000,), 0.5),  # DC only: Kaldi's mean removal leaves exact zeros
        lambda g: 0.1 * torch.randn(400, generator=g),  # one frame
    ],
    ids=["noise", "tone", "constant", "one-frame"],
)
def test_fbank_equals_kaldi(make) -> None:
    x = make(torch.Generator().manual_seed(3))
    got, want = fbank(x), _kaldi(x)
    assert got.shape == want.shape == (num_frames(len(x)), 80)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_fbank_short_and_bad_input() -> None:
    assert fbank(torch.randn(399)).shape == (0, 80)
    with pytest.raises(ValueError, match="mono"):
        fbank(torch.randn(2, 800))
