"""Model hyper-parameters, read from the official ``config.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ModelError

__all__ = ["ModelConfig", "ChunkConfig", "load_model_config"]


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a ChunkFormer-CTC model. Defaults are those of the released large models."""

    input_dim: int = 80  # fbank bins
    vocab_size: int = 5000  # CTC outputs, blank = 0
    d_model: int = 512  # encoder width ("output_size")
    attention_heads: int = 8
    linear_units: int = 2048  # feed-forward hidden width
    num_blocks: int = 17
    cnn_module_kernel: int = 15  # depthwise conv kernel, 7 frames each side
    cnn_module_norm: str = "layer_norm"  # or "batch_norm"
    activation_type: str = "swish"
    macaron_style: bool = True
    use_cnn_module: bool = True
    normalize_before: bool = True
    final_norm: bool = True
    dropout_rate: float = 0.1
    positional_dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.0
    norm_eps: float = 1e-5
    # Context sampled per batch in training (subsampled frames); -1/0 chunk means full context.
    dynamic_chunk_sizes: tuple[int, ...] = ()
    dynamic_left_context_sizes: tuple[int, ...] = ()
    dynamic_right_context_sizes: tuple[int, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.d_model % self.attention_heads:
            raise ModelError(
                f"d_model {self.d_model} is not divisible by attention_heads {self.attention_heads}"
            )
        if self.cnn_module_kernel % 2 != 1:
            raise ModelError(f"cnn_module_kernel must be odd, got {self.cnn_module_kernel}")
        if self.cnn_module_norm not in ("layer_norm", "batch_norm"):
            raise ModelError(f"unsupported cnn_module_norm {self.cnn_module_norm!r}")
        if self.activation_type not in ("swish", "relu", "gelu"):
            raise ModelError(f"unsupported activation_type {self.activation_type!r}")
        if not self.normalize_before:
            raise ModelError("only normalize_before: true models are supported")
        for name in ("input_dim", "vocab_size", "d_model", "num_blocks", "linear_units"):
            if getattr(self, name) <= 0:
                raise ModelError(f"{name} must be positive")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.attention_heads

    @property
    def conv_context(self) -> int:
        """Frames the convolution module sees on each side of a frame."""
        return self.cnn_module_kernel // 2 if self.use_cnn_module else 0

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> ModelConfig:
        """Build from the official config dict (``encoder_conf``, ``input_dim``, ``output_dim``)."""
        if cfg.get("encoder", "chunkformer") != "chunkformer":
            raise ModelError(f"unsupported encoder {cfg.get('encoder')!r} (need 'chunkformer')")
        if cfg.get("model", "asr_model") != "asr_model":
            raise ModelError(f"unsupported model type {cfg.get('model')!r} (need CTC 'asr_model')")
        enc = dict(cfg.get("encoder_conf") or {})
        for key, want in (
            ("input_layer", "dw_striding"),
            ("pos_enc_layer_type", "chunk_rel_pos"),
            ("selfattention_layer_type", "chunk_rel_seflattn"),
        ):
            if enc.get(key, want) != want:
                raise ModelError(f"unsupported encoder_conf.{key} {enc[key]!r} (need {want!r})")
        if enc.get("use_cnn_module", True) and not enc.get("dynamic_conv", True):
            raise ModelError("encoder_conf.dynamic_conv: false is not supported")
        if enc.get("causal", False):
            raise ModelError("encoder_conf.causal: true is not supported")
        if enc.get("layer_norm_type", "layer_norm") != "layer_norm":
            raise ModelError("only encoder_conf.layer_norm_type: layer_norm is supported")
        if "output_dim" not in cfg:
            raise ModelError("config has no output_dim (vocabulary size)")
        try:
            return cls(
                input_dim=int(cfg.get("input_dim", 80)),
                vocab_size=int(cfg["output_dim"]),
                d_model=int(enc.get("output_size", 256)),
                attention_heads=int(enc.get("attention_heads", 4)),
                linear_units=int(enc.get("linear_units", 2048)),
                num_blocks=int(enc.get("num_blocks", 6)),
                cnn_module_kernel=int(enc.get("cnn_module_kernel", 15)),
                cnn_module_norm=str(enc.get("cnn_module_norm", "batch_norm")),
                activation_type=str(enc.get("activation_type", "swish")),
                macaron_style=bool(enc.get("macaron_style", True)),
                use_cnn_module=bool(enc.get("use_cnn_module", True)),
                normalize_before=bool(enc.get("normalize_before", True)),
                final_norm=bool(enc.get("final_norm", True)),
                dropout_rate=float(enc.get("dropout_rate", 0.1)),
                positional_dropout_rate=float(enc.get("positional_dropout_rate", 0.1)),
                attention_dropout_rate=float(enc.get("attention_dropout_rate", 0.0)),
                norm_eps=float(enc.get("norm_eps", 1e-5)),
                dynamic_chunk_sizes=tuple(enc.get("dynamic_chunk_sizes") or ()),
                dynamic_left_context_sizes=tuple(enc.get("dynamic_left_context_sizes") or ()),
                dynamic_right_context_sizes=tuple(enc.get("dynamic_right_context_sizes") or ()),
                extra=dict(cfg),
            )
        except (TypeError, ValueError) as e:
            raise ModelError(f"bad value in config: {e}") from e

    def to_official_dict(self) -> dict[str, Any]:
        """The official ``config.yaml`` content for this model (CTC only, global CMVN)."""
        enc: dict[str, Any] = {
            "output_size": self.d_model,
            "attention_heads": self.attention_heads,
            "linear_units": self.linear_units,
            "num_blocks": self.num_blocks,
            "dropout_rate": self.dropout_rate,
            "positional_dropout_rate": self.positional_dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "input_layer": "dw_striding",
            "pos_enc_layer_type": "chunk_rel_pos",
            "selfattention_layer_type": "chunk_rel_seflattn",
            "normalize_before": True,
            "cnn_module_kernel": self.cnn_module_kernel,
            "use_cnn_module": self.use_cnn_module,
            "activation_type": self.activation_type,
            "cnn_module_norm": self.cnn_module_norm,
            "dynamic_conv": True,
            "macaron_style": self.macaron_style,
        }
        if self.dynamic_chunk_sizes:
            enc["dynamic_chunk_sizes"] = list(self.dynamic_chunk_sizes)
            enc["dynamic_left_context_sizes"] = list(self.dynamic_left_context_sizes)
            enc["dynamic_right_context_sizes"] = list(self.dynamic_right_context_sizes)
        return {
            "model": "asr_model",
            "encoder": "chunkformer",
            "encoder_conf": enc,
            "input_dim": self.input_dim,
            "output_dim": self.vocab_size,
            "cmvn": "global_cmvn",
            "cmvn_conf": {"cmvn_file": "global_cmvn", "is_json_cmvn": True},
            "ctc_conf": {"ctc_blank_id": 0},
            "fbank_conf": {"num_mel_bins": self.input_dim, "frame_length": 25, "frame_shift": 10},
        }


@dataclass(frozen=True)
class ChunkConfig:
    """Chunked attention context in encoder frames (80 ms each); chunk_size -1 = full context."""

    chunk_size: int = 64
    left_context: int = 128
    right_context: int = 128

    def __post_init__(self) -> None:
        if self.chunk_size == 0 or self.chunk_size < -1:
            raise ValueError(
                f"chunk size must be positive or -1 (full context), got {self.chunk_size}"
            )
        if self.full_context:
            return
        if self.left_context < 0 or self.right_context < 0:
            raise ValueError("left and right context must be >= 0")

    @property
    def full_context(self) -> bool:
        return self.chunk_size == -1


def load_model_config(path: str | Path) -> ModelConfig:
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ModelError(f"{path}: cannot read config: {e}") from e
    if not isinstance(cfg, dict):
        raise ModelError(f"{path}: config is not a mapping")
    return ModelConfig.from_dict(cfg)
