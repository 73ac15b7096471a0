"""8x time subsampling: three 3x3 stride-2 convolutions (depthwise-separable after the first).

No padding, so ``n`` fbank frames give ``(n - 7) // 8`` encoder frames and each encoder frame
``t`` sees exactly fbank frames ``[8t, 8t + 15)``: the front-end is local and can run
piecewise (chunk by chunk) with results identical to a whole-file pass.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from .fused import linear_act

__all__ = ["DepthwiseSubsampling", "subsampled_length", "RECEPTIVE_FIELD", "FACTOR"]

FACTOR = 8  # fbank frames (10 ms) per encoder frame (80 ms)
RECEPTIVE_FIELD = 15  # fbank frames behind one encoder frame
TILE_BYTES = 24 << 20  # first-conv output per tile at CPU inference (see forward)


def subsampled_length(n_frames: int) -> int:
    """Encoder frames produced from ``n_frames`` fbank frames."""
    return max(0, (n_frames - (RECEPTIVE_FIELD - FACTOR)) // FACTOR)


class DepthwiseSubsampling(nn.Module):
    """(B, T, F) fbank -> (B, (T - 7) // 8, D) scaled by sqrt(D), as the official ``embed``."""

    def __init__(self, input_dim: int, d_model: int) -> None:
        super().__init__()
        # Indices match the official state dict: conv.0, conv.2/3, conv.5/6 (1, 4, 7 are ReLU).
        self.conv = nn.Sequential(
            nn.Conv2d(1, d_model, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(d_model, d_model, 3, stride=2, groups=d_model),
            nn.Conv2d(d_model, d_model, 1),
            nn.ReLU(),
            nn.Conv2d(d_model, d_model, 3, stride=2, groups=d_model),
            nn.Conv2d(d_model, d_model, 1),
            nn.ReLU(),
        )
        freq = input_dim
        for _ in range(3):
            freq = (freq - 1) // 2
        self.out = nn.Linear(d_model * freq, d_model)
        self.xscale = math.sqrt(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same maths as ``self.conv`` (the official module), in cache-sized tiles at CPU inference.

        The first conv's output is (T / 2) x 39 x D values per input row, ~45x the input: a
        batch of 600 s of chunks writes ~340 MB (bf16) that the next conv reads back from
        memory. Cut into tiles of ~24 MB (a few chunks, or ~4k frames of one long input) it
        stays in cache, and the front-end runs 2-4x faster on CPU. Tiles are whole batch items,
        or time pieces cut where the 15-frame receptive fields allow (every output frame still
        sees the same 15 input frames), so the values are those of one pass.
        """
        if x.device.type != "cpu" or torch.is_grad_enabled() or x.shape[1] < RECEPTIVE_FIELD:
            return self._forward(x)
        b, t, f = x.shape
        per_row = ((f - 1) // 2) * self.out.out_features * x.element_size() / 2
        rows = max(256, int(TILE_BYTES / per_row))  # input rows (fbank frames) per tile
        if b * t <= rows:
            return self._forward(x)
        if t <= rows:  # whole items per tile
            return torch.cat([self._forward(p) for p in x.split(max(1, rows // t))])
        n = subsampled_length(t)
        step = max(1, (rows - (RECEPTIVE_FIELD - FACTOR)) // FACTOR)  # output frames per tile
        items = []
        for item in x.split(1):  # long inputs: time pieces of one item at a time
            pieces = [
                self._forward(item[:, FACTOR * a : FACTOR * min(n, a + step) + RECEPTIVE_FIELD - FACTOR])
                for a in range(0, n, step)
            ]
            items.append(torch.cat(pieces, dim=1))
        return torch.cat(items)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same maths as ``self.conv`` (the official module), laid out for speed.

        Channels stay last: the first conv is a 9-tap matrix product over 3x3 patches, the
        pointwise convs are matrix products, and the depthwise convs run on a channels-last view
        (about 4x faster on CPU than NCHW ``nn.Conv2d``, which copies to and from its layout).
        """
        c0, dw1, pw1, dw2, pw2 = (cast(nn.Conv2d, self.conv[i]) for i in (0, 2, 3, 5, 6))
        patches = x.unfold(1, 3, 2).unfold(2, 3, 2).flatten(3)  # (B, T1, F1, 9)
        # In-place ReLU saves a pass at inference; with autograd it would turn the backward of
        # the linear's reshaped output into a full copy (CopySlices), so training uses relu().
        inplace = not (torch.is_grad_enabled() and (x.requires_grad or c0.weight.requires_grad))
        # Under CPU autocast (training) the first conv and the depthwise convs run in float32:
        # bf16 depthwise kernels, and above all their backward, are ~4x slower than float32 on
        # CPU, and keeping the largest activation (B, T1, F1, D) in float32 avoids casting it.
        fp32 = x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        w0 = c0.weight.flatten(1)
        if fp32:
            with torch.autocast("cpu", enabled=False):
                y = _linear_relu(patches.float(), w0.float(), _f32(c0.bias), inplace)
        else:
            y = _linear_relu(patches, w0, c0.bias, inplace)  # (B, T1, F1, D)
        for dw, pw in ((dw1, pw1), (dw2, pw2)):
            z = _depthwise(y, dw, fp32)
            y = _linear_relu(z.permute(0, 2, 3, 1), pw.weight.flatten(1), pw.bias, inplace)
        b, t, f, d = y.shape  # (B, T', F', D)
        y = self.out(y.transpose(2, 3).reshape(b, t, d * f))  # official flattening order: (D, F')
        return y * self.xscale


def _depthwise(y: torch.Tensor, conv: nn.Conv2d, fp32: bool) -> torch.Tensor:
    """3x3 stride-2 depthwise conv of a channels-last (B, T, F, D) tensor -> (B, D, T', F')."""
    x = y.permute(0, 3, 1, 2)
    if fp32:
        with torch.autocast(x.device.type, enabled=False):
            return nn.functional.conv2d(
                x.float(), conv.weight.float(), _f32(conv.bias), stride=2, groups=conv.groups
            )
    return nn.functional.conv2d(x, conv.weight, conv.bias, stride=2, groups=conv.groups)


def _f32(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.float()


def _linear_relu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, inplace: bool) -> torch.Tensor:
    """relu(x @ w.T + b): fused at CPU inference (see fused.py), else linear then ReLU."""
    y = linear_act(x, w, b, "relu")
    return y if y is not None else nn.functional.relu(nn.functional.linear(x, w, b), inplace)
