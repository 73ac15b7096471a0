"""Random-weight models in the official layout, for tests that need a model but not accuracy."""

from __future__ import annotations

from pathlib import Path

import torch

from chunkasr.model import ChunkFormerCTC, ModelConfig
from chunkasr.model.checkpoint import save_model_dir

TINY_TOKENS = [
    "<blank>",
    "<unk>",
    "\u2581a",
    "\u2581b",
    "\u2581the",
    "\u2581cat",
    "s",
    "t",
    "\u2581",
    "e",
    "<sos/eos>",
]


def random_model(cfg: ModelConfig, seed: int = 0) -> ChunkFormerCTC:
    """A model whose norms and biases are random too, so every parameter matters."""
    torch.manual_seed(seed)
    model = ChunkFormerCTC(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.normal_(0.0, 0.3)
                if "norm" in name and name.endswith("weight"):
                    p.add_(1.0)
        model.encoder.global_cmvn.mean.fill_(8.0)
        model.encoder.global_cmvn.istd.fill_(0.25)
    return model


def make_tiny_model_dir(path: Path, seed: int = 0, blocks: int = 2) -> Path:
    cfg = ModelConfig(
        vocab_size=len(TINY_TOKENS),
        d_model=32,
        attention_heads=2,
        linear_units=64,
        num_blocks=blocks,
    )
    return save_model_dir(random_model(cfg, seed), TINY_TOKENS, path)
