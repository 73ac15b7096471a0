"""The Python API: load_model, transcribe, results, progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import chunkasr
from chunkasr import ChunkConfig
from chunkasr.errors import AudioError, ConfigError


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return chunkasr.load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    p = tmp_path_factory.mktemp("api") / "noise.wav"
    sig = (np.random.default_rng(5).standard_normal(16000 * 3) * 0.1).astype(np.float32)
    sf.write(p, sig, 16000, subtype="PCM_16")
    return p


def test_sources_of_every_kind_agree(model, wav) -> None:
    array, _ = sf.read(wav, dtype="float32")
    chunk = ChunkConfig(8, 8, 8)
    from_path, from_bytes, from_array = model.transcribe([wav, wav.read_bytes(), array], chunk=chunk)
    assert from_path.audio == str(wav)
    assert from_path.text == from_bytes.text == from_array.text
    assert from_path.segments == from_bytes.segments
    assert abs(from_path.duration - 3.0) < 1e-6


def test_single_source_and_errors(model, wav, tmp_path) -> None:
    (one,) = list(model.transcribe(str(wav)))
    assert one.audio == str(wav)
    with pytest.raises(AudioError):
        list(model.transcribe(tmp_path / "missing.wav"))
    res = list(model.results([str(tmp_path / "missing.wav"), str(wav)]))
    assert res[0].error is not None and res[1].transcript is not None


def test_progress_reaches_total(model, wav) -> None:
    seen = []
    list(
        model.transcribe([wav, wav], chunk=ChunkConfig(8, 8, 8), batch_duration=1.0, on_progress=seen.append)
    )
    assert seen and abs(seen[-1].seconds_done - 6.0) < 1e-6
    assert [p.seconds_done for p in seen] == sorted(p.seconds_done for p in seen)


def test_bad_options() -> None:
    with pytest.raises(ConfigError):
        chunkasr.load_model(None, device="tpu")
    with pytest.raises(ValueError):
        ChunkConfig(0, 1, 1)


@pytest.mark.parametrize("fast,expected", [("1", torch.bfloat16), ("0", torch.float32)])
def test_auto_dtype_on_cpu_follows_native_bf16(monkeypatch, fast, expected) -> None:
    from chunkasr.api import cpu_has_fast_bf16, resolve_dtype

    monkeypatch.setenv("CHUNKASR_CPU_BF16", fast)
    cpu_has_fast_bf16.cache_clear()
    try:
        cpu = torch.device("cpu")
        assert resolve_dtype(None, cpu) == expected
        assert resolve_dtype("auto", cpu) == expected
        assert resolve_dtype("fp32", cpu) == torch.float32  # explicit choice always wins
        assert resolve_dtype("bf16", cpu) == torch.bfloat16
    finally:
        cpu_has_fast_bf16.cache_clear()


def test_cpu_bf16_detection_reads_cpu_flags(monkeypatch) -> None:
    from chunkasr.api import cpu_has_fast_bf16

    monkeypatch.delenv("CHUNKASR_CPU_BF16", raising=False)
    cpu_has_fast_bf16.cache_clear()
    try:
        cpuinfo = Path("/proc/cpuinfo")
        flags = cpuinfo.read_text() if cpuinfo.exists() else ""
        assert cpu_has_fast_bf16() == ("amx_bf16" in flags or "avx512_bf16" in flags)
    finally:
        cpu_has_fast_bf16.cache_clear()


def test_tune_allocator_can_be_turned_off(monkeypatch) -> None:
    from chunkasr.runtime import tune_allocator

    monkeypatch.setenv("CHUNKASR_MALLOC", "system")
    assert tune_allocator() is False
    monkeypatch.delenv("CHUNKASR_MALLOC")
    import platform

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert tune_allocator() is expected
