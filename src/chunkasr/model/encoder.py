"""ChunkFormer encoder: masked-chunk Conformer over many files at once.

Every file is cut into chunks of C encoder frames. Chunk j of a file attends to the keys at
[jC - L, jC + C + R) of the same file and its convolution sees k frames on each side, taken from
the neighbouring chunks. Chunks of several files share one batch; masks keep files apart, so a
file's outputs never depend on which other files are in the batch (official masked batching).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .attention import ChunkSelfAttention, relative_positions
from .config import ModelConfig
from .convolution import ChunkConvolution
from .subsampling import FACTOR, RECEPTIVE_FIELD, DepthwiseSubsampling, subsampled_length

__all__ = ["ChunkFormerEncoder", "EncoderLayer", "ChunkPlan", "plan_chunks", "windows"]

_ACTIVATIONS = {"swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}


class FeedForward(nn.Module):
    def __init__(self, d_model: int, hidden: int, dropout: float, activation: nn.Module) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_model, hidden)
        self.activation = activation
        self.dropout = nn.Dropout(dropout)
        self.w_2 = nn.Linear(hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


class GlobalCMVN(nn.Module):
    """Feature normalisation with dataset statistics (``encoder.global_cmvn`` buffers)."""

    mean: torch.Tensor
    istd: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("istd", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.istd


def windows(frames: torch.Tensor, chunk: int, left: int, right: int) -> torch.Tensor:
    """(N*C, ...) frames of consecutive chunks -> (N, left + C + right, ...) zero-padded windows."""
    pad = [0, 0] * (frames.dim() - 1) + [left, right]
    padded = nn.functional.pad(frames, pad)
    w = padded.unfold(0, left + chunk + right, chunk)  # (N, ..., W)
    return w.movedim(-1, 1)


class EncoderLayer(nn.Module):
    """Macaron feed-forward, chunk attention, chunk convolution, feed-forward, final norm."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        D, act = cfg.d_model, _ACTIVATIONS[cfg.activation_type]
        self.self_attn = ChunkSelfAttention(D, cfg.attention_heads, cfg.attention_dropout_rate)
        self.feed_forward = FeedForward(D, cfg.linear_units, cfg.dropout_rate, act())
        self.feed_forward_macaron = (
            FeedForward(D, cfg.linear_units, cfg.dropout_rate, act()) if cfg.macaron_style else None
        )
        self.conv_module = (
            ChunkConvolution(D, cfg.cnn_module_kernel, cfg.cnn_module_norm, act())
            if cfg.use_cnn_module
            else None
        )
        eps = cfg.norm_eps
        self.norm_ff = nn.LayerNorm(D, eps=eps)
        self.norm_mha = nn.LayerNorm(D, eps=eps)
        self.norm_ff_macaron = nn.LayerNorm(D, eps=eps) if cfg.macaron_style else None
        self.norm_conv = nn.LayerNorm(D, eps=eps) if cfg.use_cnn_module else None
        self.norm_final = nn.LayerNorm(D, eps=eps) if cfg.use_cnn_module else None
        self.ff_scale = 0.5 if cfg.macaron_style else 1.0
        self.dropout = nn.Dropout(cfg.dropout_rate)

    # The layer is split in three frame-local stages around the two context-using operations
    # (attention over a key window, convolution over k neighbours), so that a streaming engine
    # can supply those windows from caches instead of from neighbouring chunks in the batch.

    def pre_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (..., D) -> residual x, queries (..., H, d_k), keys|values (..., 2D)."""
        if self.feed_forward_macaron is not None:
            assert self.norm_ff_macaron is not None
            x = x + self.ff_scale * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        q, kv = self.self_attn.project(self.norm_mha(x))
        return x, q, kv

    def post_attention(
        self, x: torch.Tensor, att: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Adds attention output; returns the residual and the gated conv input (or None)."""
        x = x + self.dropout(att)
        if self.conv_module is None:
            return x, None
        assert self.norm_conv is not None
        return x, self.conv_module.gate(self.norm_conv(x))

    def post_conv(self, x: torch.Tensor, conv: torch.Tensor | None) -> torch.Tensor:
        if conv is not None:
            x = x + self.dropout(conv)
        x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        if self.norm_final is not None:
            x = self.norm_final(x)
        return x

    def forward(
        self,
        x: torch.Tensor,
        att_mask: torch.Tensor,
        conv_mask: torch.Tensor,
        pos_emb: torch.Tensor,
        left: int,
        right: int,
    ) -> torch.Tensor:
        """x: (N, C, D) consecutive chunks; att_mask (N, L+C+R); conv_mask (N, C+2k)."""
        N, C, D = x.shape
        x, q, kv = self.pre_attention(x)
        kv_win = windows(kv.reshape(N * C, 2 * D), C, left, right)  # (N, L+C+R, 2D)
        x, g = self.post_attention(x, self.self_attn.attend(q, kv_win, att_mask, pos_emb))
        conv = None
        if g is not None:
            assert self.conv_module is not None
            k = self.conv_module.context
            conv = self.conv_module.finish(windows(g.reshape(N * C, D), C, k, k), conv_mask)
        return self.post_conv(x, conv)


@dataclass(frozen=True)
class ChunkPlan:
    """Where each chunk of a masked batch comes from.

    ``file``/``index``: owning file (position in the batch) and chunk number within it;
    ``length``: the owning file's length in encoder frames. Chunks of one file are consecutive.
    """

    chunk: int
    left: int
    right: int
    file: torch.Tensor  # (N,) long
    index: torch.Tensor  # (N,) long
    length: torch.Tensor  # (N,) long
    n_chunks: tuple[int, ...]  # per file
    lengths: tuple[int, ...]  # per file, encoder frames

    def key_mask(self) -> torch.Tensor:
        """(N, L + C + R): key position inside its own file."""
        return self._mask(self.left, self.right, limit_right=None)

    def conv_mask(self, k: int) -> torch.Tensor:
        """(N, C + 2k): neighbour inside its own file and at most R frames past the chunk.

        The R limit reproduces the official masks (it only matters when R < k).
        """
        return self._mask(k, k, limit_right=self.right)

    def _mask(self, left: int, right: int, limit_right: int | None) -> torch.Tensor:
        C = self.chunk
        offs = torch.arange(-left, C + right, device=self.index.device)  # (W,)
        pos = self.index[:, None] * C + offs  # (N, W) absolute frame in the file
        ok = (pos >= 0) & (pos < self.length[:, None])
        if limit_right is not None:
            ok &= offs < C + limit_right
        return ok


def plan_chunks(
    lengths: Sequence[int], chunk: int, left: int, right: int, device: torch.device
) -> ChunkPlan:
    """Chunk plan for files of ``lengths`` encoder frames. Files with 0 frames get no chunk."""
    n_chunks = tuple(-(-m // chunk) for m in lengths)
    file = torch.repeat_interleave(
        torch.arange(len(lengths)), torch.tensor(n_chunks, dtype=torch.long)
    )
    index = (
        torch.cat([torch.arange(n) for n in n_chunks])
        if n_chunks
        else torch.zeros(0, dtype=torch.long)
    )
    length = torch.tensor(lengths, dtype=torch.long)[file]
    return ChunkPlan(
        chunk,
        left,
        right,
        file.to(device),
        index.to(device),
        length.to(device),
        n_chunks,
        tuple(lengths),
    )


class ChunkFormerEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.global_cmvn = GlobalCMVN(cfg.input_dim)
        self.embed = DepthwiseSubsampling(cfg.input_dim, cfg.d_model)
        self.embed_dropout = nn.Dropout(cfg.positional_dropout_rate)
        self.encoders = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_blocks))
        self.after_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)

    def embed_chunks(self, feats: torch.Tensor) -> torch.Tensor:
        """(N, 8C + 7, F) raw fbank of each chunk -> (N, C, D) embedded chunk frames.

        CMVN runs in float32 even when the model runs in bf16 (fbank values need the mantissa).
        """
        x = self.global_cmvn(feats.float()).to(self.embed.out.weight.dtype)
        return self.embed_dropout(self.embed(x))

    def forward_layers(self, x: torch.Tensor, plan: ChunkPlan) -> torch.Tensor:
        """(N, C, D) embedded chunks -> (N, C, D) encoder output (masked-batch semantics)."""
        C, L, R = plan.chunk, plan.left, plan.right
        pos_emb = relative_positions(C, L, R, self.cfg.d_model, x.device, x.dtype)
        if self.training:
            pos_emb = self.embed_dropout(pos_emb)
        att_mask = plan.key_mask()
        conv_mask = plan.conv_mask(self.cfg.conv_context)
        for layer in self.encoders:
            x = layer(x, att_mask, conv_mask, pos_emb, L, R)
        return self.after_norm(x) if self.cfg.final_norm else x

    def forward(
        self, feats: Sequence[torch.Tensor], chunk: int, left: int, right: int
    ) -> tuple[list[torch.Tensor], ChunkPlan]:
        """Encode whole files. feats: per file (T_i, F) fbank. chunk -1 = full context.

        Returns per-file (m_i, D) outputs with m_i = (T_i - 7) // 8, and the chunk plan.
        """
        device = self.after_norm.weight.device
        lengths = [subsampled_length(f.shape[0]) for f in feats]
        if chunk == -1:  # full context: one chunk per file, as long as the longest file
            chunk, left, right = max([*lengths, 1]), 0, 0
        plan = plan_chunks(lengths, chunk, left, right, device)
        if sum(plan.n_chunks) == 0:
            empty = self.after_norm.weight.new_zeros(0, self.cfg.d_model)
            return [empty for _ in lengths], plan
        feats = [f.to(device) for f in feats]
        x = self.embed_chunks(chunk_features(feats, plan.n_chunks, chunk))
        out = self.forward_layers(x, plan)
        per_file = out.split(list(plan.n_chunks))
        return [
            o.reshape(-1, o.shape[-1])[:m] for o, m in zip(per_file, lengths, strict=True)
        ], plan


def chunk_features(
    feats: Sequence[torch.Tensor], n_chunks: Sequence[int], chunk: int
) -> torch.Tensor:
    """Cut each file's fbank into the (8C + 7)-frame spans behind its chunks (zero-padded)."""
    size = (chunk - 1) * FACTOR + RECEPTIVE_FIELD
    step = chunk * FACTOR
    pieces = []
    for f, n in zip(feats, n_chunks, strict=True):
        if n == 0:
            continue
        need = (n - 1) * step + size
        f = nn.functional.pad(f, (0, 0, 0, max(0, need - f.shape[0])))[:need]
        pieces.append(f.unfold(0, size, step).transpose(1, 2))  # (n, size, F)
    if not pieces:
        ref = feats[0] if feats else torch.zeros(0, 80)
        return ref.new_zeros(0, size, ref.shape[-1] if ref.dim() == 2 else 80)
    return torch.cat(pieces)
