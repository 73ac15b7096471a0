"""Model resolution: directories, the bundled model, and the Hugging Face cache offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chunkasr import hub
from chunkasr.errors import ModelError


def _fake_hub_cache(cache: Path, repo_id: str, model_dir: Path) -> Path:
    """The on-disk layout huggingface_hub uses: blobs, refs/main, snapshots/<commit>/files."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    for f in model_dir.iterdir():
        shutil.copy(f, snap / f.name)
    return snap


def test_resolves_repo_id_from_offline_cache(tiny_model_dir, tmp_path, monkeypatch) -> None:
    cache = tmp_path / "hub"
    snap = _fake_hub_cache(cache, "someone/chunkformer-tiny", tiny_model_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert hub.resolve_model("someone/chunkformer-tiny").resolve() == snap.resolve()
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        hub.resolve_model("someone/absent-model")
    listed = [m.name for m in hub.list_models()]
    assert "someone/chunkformer-tiny" in listed


def test_directory_and_errors(tiny_model_dir, tmp_path) -> None:
    assert hub.resolve_model(tiny_model_dir) == tiny_model_dir
    with pytest.raises(ModelError, match="no such model directory"):
        hub.resolve_model(str(tmp_path / "missing" / "dir"))
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ModelError, match="not a model directory"):
        hub.resolve_model(f)


def test_bundled_model_override(tiny_model_dir, monkeypatch) -> None:
    monkeypatch.setenv("CHUNKASR_BUNDLED_MODEL", str(tiny_model_dir))
    assert hub.resolve_model(None) == tiny_model_dir
