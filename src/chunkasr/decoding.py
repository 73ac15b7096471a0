"""CTC decoding: log-probs (T, V) -> tokens with the frame of their spike.

Pure functions on tensors; no model, no audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .types import TokenSpan

__all__ = ["DecodeOptions", "ctc_greedy_search", "decode"]


@dataclass(frozen=True)
class DecodeOptions:
    """How to turn CTC log-probs into tokens (shared by CLI and API)."""

    method: str = "greedy"  # "greedy" | "beam"
    blank_id: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam"):
            raise ValueError(f"unknown decoding method {self.method!r}")


def ctc_greedy_search(log_probs: torch.Tensor, blank_id: int = 0) -> list[TokenSpan]:
    """Best path: argmax per frame, merge repeats, drop blanks.

    A token repeated across a blank ("a _ a") is two tokens; the spike frame of a token is the
    first frame of its run, its probability the posterior there.
    """
    if log_probs.dim() != 2:
        raise ValueError(f"expected (T, V) log-probs, got shape {tuple(log_probs.shape)}")
    if log_probs.shape[0] == 0:
        return []
    best, ids = log_probs.max(dim=-1)  # (T,)
    prev = torch.cat([ids.new_full((1,), -1), ids[:-1]])
    keep = (ids != prev) & (ids != blank_id)
    frames = keep.nonzero().squeeze(1)
    probs = best[frames].exp()
    return [
        TokenSpan(int(i), int(f), float(p))
        for i, f, p in zip(ids[frames].tolist(), frames.tolist(), probs.tolist(), strict=True)
    ]


def decode(log_probs: torch.Tensor, options: DecodeOptions | None = None) -> list[TokenSpan]:
    options = options or DecodeOptions()
    if options.method == "greedy":
        return ctc_greedy_search(log_probs, options.blank_id)
    raise NotImplementedError("beam search is not available yet")
