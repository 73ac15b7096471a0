"""Load a model directory in the official layout, safely and strictly.

Layout: ``config.yaml``, ``pytorch_model.bin`` (or ``.pt``/``.ckpt``), ``global_cmvn`` (JSON
stats or Kaldi text), ``vocab.txt``. Tensors are read with ``weights_only=True``. The
attention-rescoring decoder (``decoder.*``) is ignored on purpose; any other missing,
unexpected or mis-shaped tensor is a :class:`ModelError` that names it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import ModelError
from ..vocab import Vocabulary
from .config import ModelConfig, load_model_config
from .ctc import ChunkFormerCTC

__all__ = [
    "load_model_dir",
    "save_model_dir",
    "load_cmvn",
    "load_state_dict",
    "storage_state",
    "STORAGE_DTYPES",
    "WEIGHT_FILES",
    "IGNORED_PREFIXES",
]

WEIGHT_FILES = ("pytorch_model.bin", "pytorch_model.pt", "pytorch_model.ckpt")
IGNORED_PREFIXES = ("decoder.",)  # attention-rescoring decoder: not used for CTC decoding
_CMVN_KEYS = ("encoder.global_cmvn.mean", "encoder.global_cmvn.istd")
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def storage_state(model: torch.nn.Module, dtype: str = "float32") -> dict[str, torch.Tensor]:
    """``model``'s state dict as written to ``pytorch_model.bin``, weights stored in ``dtype``.

    float16 halves the file; loading (here and in the official package, both through
    ``load_state_dict``) casts the values back to the model's float32 parameters, so only the
    storage is rounded. The CMVN buffers and integer tensors always stay as they are: the
    statistics are applied to raw fbank values, where float16's 3 digits would shift features.
    """
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"storage dtype {dtype!r}: expected one of {', '.join(STORAGE_DTYPES)}")
    target = STORAGE_DTYPES[dtype]
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if value.is_floating_point():
            keep = key in _CMVN_KEYS or target == torch.float32
            value = value.to(torch.float32 if keep else target)
            if not keep and not torch.isfinite(value).all():
                raise ModelError(f"tensor {key} overflows {dtype} storage")
        out[key] = value.contiguous()
    return out


def load_cmvn(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and inverse std from a ``global_cmvn`` file (JSON stats or Kaldi text)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: cannot read CMVN stats: {e}") from e
    try:
        if text.lstrip().startswith("{"):
            stats = json.loads(text)
            sums, squares, count = stats["mean_stat"], stats["var_stat"], float(stats["frame_num"])
        else:  # Kaldi: [ sum_1 .. sum_d count \n sq_1 .. sq_d 0 ]
            tok = text.replace("[", " ").replace("]", " ").split()
            vals = [float(t) for t in tok]
            dim = len(vals) // 2 - 1
            sums, count, squares = vals[:dim], vals[dim], vals[dim + 1 : 2 * dim + 1]
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: malformed CMVN stats: {e}") from e
    if count <= 0 or len(sums) != len(squares) or not sums:
        raise ModelError(
            f"{path}: malformed CMVN stats (count {count}, dims {len(sums)}/{len(squares)})"
        )
    mean = [s / count for s in sums]
    istd = [
        1.0 / math.sqrt(max(q / count - m * m, 1e-20)) for q, m in zip(squares, mean, strict=True)
    ]
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(istd, dtype=torch.float32)


def find_weights(model_dir: Path) -> Path:
    for name in WEIGHT_FILES:
        if (model_dir / name).is_file():
            return model_dir / name
    raise ModelError(f"{model_dir}: no checkpoint (expected one of {', '.join(WEIGHT_FILES)})")


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle/zip errors come in many types
        raise ModelError(f"{path}: cannot load checkpoint safely: {e}") from e
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path}: checkpoint is not a state dict of tensors")
    return dict(obj)


def load_state_dict(model: ChunkFormerCTC, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` strictly (``decoder.*`` ignored, CMVN buffers optional)."""
    own = model.state_dict()
    given = {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    unexpected = sorted(set(given) - set(own))
    missing = sorted(set(own) - set(given) - set(_CMVN_KEYS))
    if unexpected:
        raise ModelError(f"{source}: unexpected tensor {unexpected[0]}" + _more(unexpected))
    if missing:
        raise ModelError(f"{source}: missing tensor {missing[0]}" + _more(missing))
    for key, value in given.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ModelError(
                f"{source}: tensor {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}"
            )
    model.load_state_dict(given, strict=False)


def _more(keys: list[str]) -> str:
    return f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""


def load_model_dir(model_dir: str | Path) -> tuple[ChunkFormerCTC, ModelConfig, Vocabulary]:
    """Build the model of an official-layout directory on the CPU, in eval mode."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: model directory does not exist")
    if not (model_dir / "config.yaml").is_file():
        raise ModelError(f"{model_dir}: no config.yaml")
    cfg = load_model_config(model_dir / "config.yaml")
    vocab_path = model_dir / "vocab.txt"
    if not vocab_path.is_file():
        raise ModelError(f"{model_dir}: no vocab.txt")
    vocab = Vocabulary.from_file(vocab_path)
    if len(vocab) != cfg.vocab_size:
        raise ModelError(
            f"{model_dir}: vocab.txt has {len(vocab)} tokens but config output_dim is {cfg.vocab_size}"
        )
    model = ChunkFormerCTC(cfg)
    cmvn_path = model_dir / "global_cmvn"
    if cmvn_path.is_file():
        mean, istd = load_cmvn(cmvn_path)
        if mean.numel() != cfg.input_dim:
            raise ModelError(
                f"{cmvn_path}: {mean.numel()} dims, model input_dim is {cfg.input_dim}"
            )
        model.encoder.global_cmvn.mean.copy_(mean)
        model.encoder.global_cmvn.istd.copy_(istd)
    weights = find_weights(model_dir)
    # Checkpoint CMVN buffers, when present, win over the stats file (as in the official loader).
    load_state_dict(model, read_checkpoint(weights), str(weights))
    model.eval()
    return model, cfg, vocab


def save_model_dir(
    model: ChunkFormerCTC,
    tokens: list[str],
    model_dir: str | Path,
    cmvn_stats: tuple[list[float], list[float], int] | None = None,
    extra_config: Mapping[str, object] | None = None,
    dtype: str = "float32",
) -> Path:
    """Write ``model`` in the official layout (config.yaml, pytorch_model.bin, global_cmvn, vocab.txt).

    ``cmvn_stats`` = (sums, sums of squares, frame count); by default they are derived from the
    model's CMVN buffers so that mean and inverse std round-trip. ``dtype`` is the storage
    type of the weights (:func:`storage_state`).
    """
    import yaml

    state = storage_state(model, dtype)  # first: a bad dtype must not leave a partial directory
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    if len(tokens) != cfg.vocab_size:
        raise ModelError(f"{len(tokens)} tokens for a vocab_size of {cfg.vocab_size}")
    conf = cfg.to_official_dict()
    conf.update(extra_config or {})
    (model_dir / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False), encoding="utf-8")
    if cmvn_stats is None:
        mean = model.encoder.global_cmvn.mean.double()
        var = 1.0 / model.encoder.global_cmvn.istd.double() ** 2
        count = 1000
        cmvn_stats = ((mean * count).tolist(), ((var + mean**2) * count).tolist(), count)
    sums, squares, count = cmvn_stats
    (model_dir / "global_cmvn").write_text(
        json.dumps({"mean_stat": list(sums), "var_stat": list(squares), "frame_num": count}),
        encoding="utf-8",
    )
    (model_dir / "vocab.txt").write_text(
        "".join(f"{t} {i}\n" for i, t in enumerate(tokens)), encoding="utf-8"
    )
    torch.save(state, model_dir / "pytorch_model.bin")
    return model_dir
