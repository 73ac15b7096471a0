"""Python API: ``load_model`` and ``Model.transcribe``.

Wires the engine (audio -> CTC posteriors), decoding (posteriors -> tokens) and alignment
(tokens -> words and segments) together. Library code never prints; progress goes through a
callback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from . import align
from .decoding import DecodeOptions, decode
from .engine import Engine, EngineOptions, FileResult, Progress
from .errors import ChunkAsrError, ConfigError, ModelError
from .hub import BUNDLED_NAME, bundled_model_dir, resolve_model
from .model import ChunkConfig, ChunkFormerCTC, ModelConfig, load_model_dir
from .types import Transcript
from .vocab import Vocabulary

__all__ = ["load_model", "Model", "TranscriptionResult", "resolve_device", "resolve_dtype"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA was requested but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r} (use auto, cpu or cuda[:N])")
    return dev


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AMX or AVX512-BF16, read from /proc/cpuinfo).

    Elsewhere bf16 is emulated and slower than fp32. ``CHUNKASR_CPU_BF16=0/1`` overrides.
    """
    forced = os.environ.get("CHUNKASR_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None/"auto": bf16 on CUDA and on CPUs with native bf16 (AMX/AVX512-BF16), else fp32.

    On such CPUs bf16 runs the encoder 2-3x faster and agrees with fp32 on 99.4% of tokens of a
    trained model (docs/benchmarks.md); ``fp32`` stays available as the reference-exact path.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda" or cpu_has_fast_bf16():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r} (use fp32, bf16 or fp16)")
    if dtype == "fp16" and device.type == "cpu":
        raise ConfigError("fp16 is not supported on CPU (use bf16 or fp32)")
    return _DTYPES[dtype]


DECODING_FILE = "decoding.yaml"
_DECODING_KEYS = {
    "method", "beam_size", "token_top_k", "token_min_prob", "blank_skip_prob",
    "lm", "lm_weight", "word_score", "unk_score",
}  # fmt: skip


def model_decode_options(model_dir: str | os.PathLike[str]) -> DecodeOptions:
    """The decoding a model directory recommends in its optional ``decoding.yaml``; else greedy.

    The file (chunkasr's own; the official package ignores it) holds ``DecodeOptions`` fields,
    with ``lm`` an ARPA file relative to the directory, e.g. ``{method: beam, lm: lm.arpa.gz,
    lm_weight: 0.3}``. A shipped model can so carry the decoder it was measured with.
    """
    path = Path(model_dir) / DECODING_FILE
    if not path.is_file():
        return DecodeOptions()
    try:
        conf = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ModelError(f"{path}: cannot read: {e}") from e
    if not isinstance(conf, dict):
        raise ModelError(f"{path}: expected a mapping of decoding options")
    unknown = sorted(set(conf) - _DECODING_KEYS)
    if unknown:
        raise ModelError(f"{path}: unknown decoding option {unknown[0]!r}")
    if "lm" in conf:
        lm = Path(model_dir) / str(conf.pop("lm"))
        if not lm.is_file():
            raise ModelError(f"{path}: language model {lm} does not exist")
        conf["lm_path"] = str(lm)
    try:
        return DecodeOptions(**conf)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{path}: {e}") from e


@dataclass
class TranscriptionResult:
    """One input's outcome: a transcript, or the error that stopped it."""

    index: int
    source: object
    transcript: Transcript | None
    error: ChunkAsrError | None = None


def load_model(
    name_or_path: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
) -> Model:
    """Load a model directory, a Hugging Face repo id, or (None) the bundled English model."""
    dev = resolve_device(device)  # option errors first: they are cheap and the user's to fix
    dt = resolve_dtype(dtype, dev)
    path = resolve_model(name_or_path)
    net, cfg, vocab = load_model_dir(path)
    net.to(dev)
    if dt == torch.bfloat16:
        net.to(dt)  # whole model in bf16; CMVN stays fp32 (see ChunkFormerEncoder.embed_chunks)
        net.encoder.global_cmvn.float()
    name = BUNDLED_NAME if name_or_path is None else os.fspath(name_or_path)
    bundled = bundled_model_dir()
    language = cfg.extra.get("language")
    if language is None and bundled is not None and path.resolve() == bundled.resolve():
        language = "en"
    return Model(net, cfg, vocab, name, path, dev, dt, language, model_decode_options(path))


class Model:
    """A loaded model ready to transcribe."""

    def __init__(
        self,
        net: ChunkFormerCTC,
        cfg: ModelConfig,
        vocab: Vocabulary,
        name: str,
        path: Path,
        device: torch.device,
        dtype: torch.dtype,
        language: str | None = None,
        decode_options: DecodeOptions | None = None,
    ) -> None:
        self.net = net
        self.cfg = cfg
        self.vocab = vocab
        self.name = name
        self.path = path
        self.device = device
        self.dtype = dtype
        self.language = language
        # what results()/transcribe() use when not given options: the model's recommendation
        self.decode_options = decode_options or DecodeOptions()

    def posteriors(
        self,
        sources: Iterable[object],
        chunk: ChunkConfig | None = None,
        batch_duration: float = 300.0,
        top_k: int | None = 16,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Iterator[FileResult]:
        """CTC posteriors per source, in input order, as each file completes."""
        opts = EngineOptions(
            chunk=chunk or ChunkConfig(),
            batch_duration=batch_duration,
            top_k=top_k,
            dtype=self.dtype,
        )
        return Engine(self.net, opts, self.device).run(sources, on_progress)

    def results(
        self,
        sources: Iterable[object],
        chunk: ChunkConfig | None = None,
        decode_options: DecodeOptions | None = None,
        batch_duration: float = 300.0,
        pause: float = 0.5,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Iterator[TranscriptionResult]:
        """Like :meth:`transcribe` but yields errors instead of raising them."""
        dec = decode_options or self.decode_options
        for r in self.posteriors(sources, chunk, batch_duration, on_progress=on_progress):
            if r.error is not None or r.posteriors is None:
                yield TranscriptionResult(r.index, r.source, None, r.error)
                continue
            post = r.posteriors  # compact top-k is decoded as is: no dense (T, V) copy
            tokens = decode(post.logp, dec, self.vocab, ids=post.ids)
            if isinstance(r.source, str):
                name = r.source
            else:
                name = f"<{'bytes' if isinstance(r.source, bytes) else 'array'} {r.index}>"
            transcript = align.build_transcript(
                tokens, self.vocab, str(name), r.duration, self.name, self.language or "und", pause
            )
            yield TranscriptionResult(r.index, r.source, transcript)

    def transcribe(
        self,
        sources: object | Iterable[object],
        chunk: ChunkConfig | None = None,
        decode_options: DecodeOptions | None = None,
        batch_duration: float = 300.0,
        pause: float = 0.5,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Iterator[Transcript]:
        """Transcripts of ``sources`` (paths, '-', encoded file bytes, or 16 kHz mono arrays).

        Results come in input order. A single source may be passed instead of a list. Raises
        the first error met (use :meth:`results` to get errors per source instead).
        """
        many: Iterable[object] = (
            [sources]
            if isinstance(sources, str | bytes | os.PathLike) or hasattr(sources, "shape")
            else sources  # type: ignore[assignment]
        )
        items = [os.fspath(s) if isinstance(s, os.PathLike) else s for s in many]
        for r in self.results(items, chunk, decode_options, batch_duration, pause, on_progress):
            if r.error is not None:
                raise r.error
            assert r.transcript is not None
            yield r.transcript
