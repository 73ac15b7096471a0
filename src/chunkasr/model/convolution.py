"""Conformer convolution module, run per chunk with k frames of context on each side."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ChunkConvolution"]


class ChunkConvolution(nn.Module):
    """pointwise -> GLU -> depthwise (kernel 2k+1, no padding) -> norm -> act -> pointwise."""

    def __init__(self, channels: int, kernel_size: int, norm: str, activation: nn.Module) -> None:
        super().__init__()
        self.context = kernel_size // 2
        self.pointwise_conv1 = nn.Conv1d(channels, 2 * channels, 1)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, groups=channels)
        self.use_layer_norm = norm == "layer_norm"
        self.norm: nn.Module = (
            nn.LayerNorm(channels) if self.use_layer_norm else nn.BatchNorm1d(channels)
        )
        self.pointwise_conv2 = nn.Conv1d(channels, channels, 1)
        self.activation = activation

    def gate(self, h: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., D): first pointwise conv and GLU, which are frame-local."""
        w = self.pointwise_conv1.weight.squeeze(-1)
        return F.glu(F.linear(h, w, self.pointwise_conv1.bias), dim=-1)

    def finish(self, g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """g: (N, C + 2k, D) gated frames around each chunk; mask: (N, C + 2k). -> (N, C, D)."""
        if not bool(mask.all()):
            g = g.masked_fill(~mask.unsqueeze(-1), 0.0)
        g = g.transpose(1, 2)  # (N, D, C + 2k)
        y = self.depthwise_conv(g)  # (N, D, C)
        y = self.norm(y.transpose(1, 2)).transpose(1, 2) if self.use_layer_norm else self.norm(y)
        y = self.activation(y)
        w = self.pointwise_conv2.weight.squeeze(-1)
        return F.linear(y.transpose(1, 2), w, self.pointwise_conv2.bias)  # (N, C, D)
