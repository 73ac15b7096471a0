"""Model resolution: a local directory, the bundled model, or a Hugging Face repo id.

Hub repos are fetched with ``huggingface_hub.snapshot_download`` into the usual cache; with
``HF_HUB_OFFLINE=1`` only the cache is used.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

__all__ = ["resolve_model", "bundled_model_dir", "list_models", "ModelInfo", "BUNDLED_NAME"]

BUNDLED_NAME = "en-small"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_REQUIRED = ("config.yaml", "vocab.txt")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    source: str  # "bundled" | "hub-cache"


def _bundled_candidates() -> list[Path]:
    env = os.environ.get("CHUNKASR_BUNDLED_MODEL")
    if env:  # an explicit location replaces the search
        return [Path(env)]
    cands: list[Path] = []
    here = Path(__file__).resolve()
    cands.append(here.parents[2] / "models" / BUNDLED_NAME)  # source checkout / editable install
    cands.append(Path(sys.prefix) / "share" / "chunkasr" / "models" / BUNDLED_NAME)
    return cands


def bundled_model_dir() -> Path | None:
    for cand in _bundled_candidates():
        if all((cand / f).is_file() for f in _REQUIRED):
            return cand
    return None


def resolve_model(name_or_path: str | os.PathLike[str] | None) -> Path:
    """Directory holding the model files for a path, a hub repo id, or None (bundled model)."""
    if name_or_path is None:
        found = bundled_model_dir()
        if found is None:
            raise ModelError(
                "no bundled model found (models/en-small is missing); pass --model DIR or a "
                "Hugging Face repo id such as khanhld/chunkformer-ctc-large-vie"
            )
        return found
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelError(f"{text}: not a model directory")
    if not _REPO_ID.match(text) or text.startswith((".", "/", "~")):
        raise ModelError(f"{text}: no such model directory")
    return _download(text)


def _download(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as e:  # pragma: no cover - dependency is declared
        raise ModelError(f"{repo_id}: huggingface_hub is not installed") from e
    try:
        return Path(snapshot_download(repo_id=repo_id))
    except LocalEntryNotFoundError as e:
        raise ModelError(
            f"{repo_id}: not in the local Hugging Face cache and the hub cannot be reached"
        ) from e
    except Exception as e:  # network, auth, missing repo: all end the same way for the user
        raise ModelError(f"{repo_id}: cannot download model: {e}") from e


def list_models() -> list[ModelInfo]:
    """The bundled model (if present) and ChunkFormer-looking repos in the hub cache."""
    found: list[ModelInfo] = []
    bundled = bundled_model_dir()
    if bundled is not None:
        found.append(ModelInfo(BUNDLED_NAME, bundled, "bundled"))
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # no cache directory yet, or an unreadable one: nothing to list
        return found
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            names = {f.file_name for f in rev.files}
            if all(f in names for f in _REQUIRED):
                found.append(ModelInfo(repo.repo_id, Path(rev.snapshot_path), "hub-cache"))
                break
    return found
