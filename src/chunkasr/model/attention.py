"""Chunk self-attention with relative positions covering left and right context.

A chunk of C query frames attends to a key window of L + C + R frames (L before the chunk,
R after it). Scores follow Transformer-XL: content term (q + u) k^T plus position term
(q + v) p^T, where p encodes the offset query - key, from C + L - 1 down to -(C + R - 1).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn

__all__ = ["ChunkSelfAttention", "relative_positions"]


@lru_cache(maxsize=32)
@torch.inference_mode(False)  # cached: a tensor made in inference mode would break autograd later
def _relative_positions_cpu(chunk: int, left: int, right: int, d_model: int) -> torch.Tensor:
    # Offsets C+L-1 ... -(C+R-1); float32 products like the official table, so values match.
    offsets = torch.arange(chunk + left - 1, -(chunk + right), -1, dtype=torch.float32)
    div = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model)
    )
    angles = offsets.unsqueeze(1) * div  # (P, D/2)
    pe = torch.empty(len(offsets), d_model)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe


def relative_positions(
    chunk: int, left: int, right: int, d_model: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(2C + L + R - 1, D) sinusoidal encodings of the query-key offsets of one chunk window."""
    return _relative_positions_cpu(chunk, left, right, d_model).to(device=device, dtype=dtype)


class ChunkSelfAttention(nn.Module):
    """Multi-head attention; parameter names follow the official checkpoints."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.h = heads
        self.d_k = d_model // heads
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k = nn.Linear(d_model, d_model)
        self.linear_v = nn.Linear(d_model, d_model)
        self.linear_out = nn.Linear(d_model, d_model)
        self.linear_pos = nn.Linear(d_model, d_model, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.dropout = nn.Dropout(dropout)

    def project(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., D) -> queries (..., H, d_k) and keys|values (..., 2D)."""
        q = self.linear_q(h).unflatten(-1, (self.h, self.d_k))
        kv = torch.cat([self.linear_k(h), self.linear_v(h)], dim=-1)
        return q, kv

    def attend(
        self, q: torch.Tensor, kv: torch.Tensor, key_mask: torch.Tensor, pos_emb: torch.Tensor
    ) -> torch.Tensor:
        """Attention of chunk queries over their key windows.

        q: (N, C, H, d_k); kv: (N, W, 2D) with W = L + C + R; key_mask: (N, W) True = valid;
        pos_emb: (2C + L + R - 1, D). Returns (N, C, D).
        """
        N, C, H, dk = q.shape
        W = kv.shape[1]
        k, v = kv.unflatten(-1, (2, H, dk)).unbind(2)  # 2 x (N, W, H, dk)
        k = k.transpose(1, 2)  # (N, H, W, dk)
        v = v.transpose(1, 2)
        p = self.linear_pos(pos_emb).unflatten(-1, (H, dk)).transpose(0, 1)  # (H, P, dk)
        q_u = (q + self.pos_bias_u).transpose(1, 2)  # (N, H, C, dk)
        blocked = ~key_mask[:, None, None, :]  # (N, 1, 1, W)
        training = (torch.is_grad_enabled() and q.requires_grad) or (self.training and self.dropout.p > 0)
        if not training:
            # Inference: the fused kernel takes the position term as an additive bias and never
            # materialises the probabilities (about 1.5x faster on CPU, same result). The scale
            # goes on the small query tensor; the position term is one (H, N*C, dk) x (H, dk, P)
            # product (torch.matmul would broadcast p by copying it N times); only chunks near a
            # file's start or end have keys to block, the rest skip the masking pass.
            qv = ((q + self.pos_bias_v) * (1.0 / math.sqrt(dk))).permute(2, 0, 1, 3).reshape(H, N * C, dk)
            pos = torch.bmm(qv, p.transpose(1, 2)).view(H, N, C, -1).transpose(0, 1)
            bias = _shift(pos, W)  # (N, H, C, W), a view of pos
            if not bool(key_mask.all()):
                bad = (~key_mask).any(1).nonzero().squeeze(1)
                if len(bad) == N:
                    bias = bias.masked_fill(blocked, float("-inf"))
                else:
                    bias[bad] = bias[bad].masked_fill(blocked[bad], float("-inf"))
            out = nn.functional.scaled_dot_product_attention(q_u, k, v, attn_mask=bias)
        else:
            q_v = (q + self.pos_bias_v).transpose(1, 2)
            position = _shift(torch.matmul(q_v, p.transpose(-2, -1)), W)  # (N, H, C, W)
            content = torch.matmul(q_u, k.transpose(-2, -1))  # (N, H, C, W)
            scores = ((content + position) / math.sqrt(dk)).masked_fill(blocked, float("-inf"))
            attn = torch.softmax(scores.float(), dim=-1).type_as(v).masked_fill(blocked, 0.0)
            out = torch.matmul(self.dropout(attn), v)  # (N, H, C, dk)
        return self.linear_out(out.transpose(1, 2).reshape(N, C, H * dk))


def _shift(x: torch.Tensor, width: int) -> torch.Tensor:
    """(N, H, C, P) scores per offset -> (N, H, C, W) scores per key: out[i, j] = x[i, C-1-i+j]."""
    N, H, C, P = x.shape
    s = x.stride()  # any layout: element [n, h, i, j] sits at n*s0 + h*s1 + i*s2 + (C-1-i+j)*s3
    return x.as_strided(
        (N, H, C, width), (s[0], s[1], s[2] - s[3], s[3]), x.storage_offset() + (C - 1) * s[3]
    )
