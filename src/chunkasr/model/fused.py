"""Fused CPU inference kernel: linear + bias + activation in one oneDNN call.

At inference on CPU the frame-wise linears followed by an activation (the feed-forward's first
layer, the front end's first convolution) are memory-bound around the activation: a separate
SiLU/ReLU pass over a (frames, 2048) tensor costs as much as a third of the matrix product.
oneDNN applies the activation while the output tile is still in cache. Training, autocast and
other devices keep the plain ``F.linear`` path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

__all__ = ["linear_act"]

_ATTRS = {"swish": "swish", "relu": "relu"}


@functools.cache
def _op() -> Callable[..., torch.Tensor] | None:
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise  # type: ignore[no-any-return]
    except (AttributeError, RuntimeError):
        return None


def linear_act(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str
) -> torch.Tensor | None:
    """``activation(x @ weight.T + bias)`` fused, or None when the fused path does not apply."""
    op = _op()
    if (
        op is None
        or activation not in _ATTRS
        or x.device.type != "cpu"
        or x.dtype not in (torch.float32, torch.bfloat16)
        or weight.dtype != x.dtype
        or x.numel() == 0
        or torch.is_autocast_enabled("cpu")
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    ):
        return None
    rows = x.reshape(-1, x.shape[-1])
    return op(rows, weight, bias, _ATTRS[activation], [], "").view(*x.shape[:-1], weight.shape[0])
