"""CTC output layer (``ctc.ctc_lo`` in the official checkpoints)."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig

__all__ = ["CTCHead"]


class CTCHead(nn.Module):
    def __init__(self, d_model: int, vocab_size: int) -> None:
        super().__init__()
        self.ctc_lo = nn.Linear(d_model, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) encoder output -> (..., V) float32 log-probabilities."""
        return torch.log_softmax(self.ctc_lo(x).float(), dim=-1)


class ChunkFormerCTC(nn.Module):
    """Encoder + CTC head; ``state_dict`` keys match the official checkpoints (minus ``decoder.*``)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        from .encoder import ChunkFormerEncoder

        self.cfg = cfg
        self.encoder = ChunkFormerEncoder(cfg)
        self.ctc = CTCHead(cfg.d_model, cfg.vocab_size)
