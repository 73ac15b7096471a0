"""Fused CPU inference kernel: linear + bias + activation in one oneDNN call.

Used by the front end, whose first convolution is a 9-wide matrix product with a 512-wide
output: memory-bound, so writing the output once with the ReLU applied in cache is ~1.7x faster
than ``F.linear`` then ``relu_``. (For the feed-forward's compute-bound 512 x 2048 products it
measured no faster end to end, and it compiles a new kernel per shape more slowly, so they keep
``F.linear``.) Training, autocast and other devices keep the plain path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

__all__ = ["linear_act"]

_ACTIVATIONS = ("swish", "relu")  # oneDNN post-op names
# dtypes this machine's oneDNN cannot run the op in (bf16 on CPUs without AVX512-BF16/AMX raises
# "could not create a primitive descriptor"); found on first use, then the plain path is taken
UNSUPPORTED: set[torch.dtype] = set()


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
        or activation not in _ACTIVATIONS
        or x.device.type != "cpu"
        or x.dtype not in (torch.float32, torch.bfloat16)
        or weight.dtype != x.dtype
        or x.numel() == 0
        or x.dtype in UNSUPPORTED
        or torch.is_autocast_enabled("cpu")
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    ):
        return None
    rows = x.reshape(-1, x.shape[-1])
    try:
        out = op(rows, weight, bias, activation, [], "")
    except RuntimeError:
        UNSUPPORTED.add(x.dtype)
        return None
    return out.view(*x.shape[:-1], weight.shape[0])
