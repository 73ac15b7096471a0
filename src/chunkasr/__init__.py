"""chunkasr: long-form speech transcription with ChunkFormer models."""

__version__ = "0.1.0"

from .align import SubtitleOptions  # noqa: E402
from .api import Model, TranscriptionResult, load_model  # noqa: E402
from .audio import load_audio  # noqa: E402
from .decoding import DecodeOptions  # noqa: E402
from .errors import AudioError, ChunkAsrError, ConfigError, ModelError, OutputError  # noqa: E402
from .model import ChunkConfig  # noqa: E402
from .types import Segment, Transcript, Word  # noqa: E402

__all__ = [
    "AudioError",
    "ChunkAsrError",
    "ChunkConfig",
    "ConfigError",
    "DecodeOptions",
    "Model",
    "ModelError",
    "OutputError",
    "Segment",
    "SubtitleOptions",
    "Transcript",
    "TranscriptionResult",
    "Word",
    "__version__",
    "load_audio",
    "load_model",
]
