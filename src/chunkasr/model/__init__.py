"""ChunkFormer-CTC model code, compatible with the official checkpoints."""

from .checkpoint import load_model_dir
from .config import ChunkConfig, ModelConfig
from .ctc import ChunkFormerCTC
from .encoder import ChunkFormerEncoder
from .subsampling import subsampled_length

__all__ = [
    "ChunkConfig",
    "ChunkFormerCTC",
    "ChunkFormerEncoder",
    "ModelConfig",
    "load_model_dir",
    "subsampled_length",
]
