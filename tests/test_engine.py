"""The streaming engine equals a single whole-file masked-batch pass, however it is fed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modelkit import random_model

from chunkasr.engine import Engine, EngineOptions
from chunkasr.features import fbank
from chunkasr.model import ChunkConfig, ModelConfig

CFG = ModelConfig(vocab_size=12, d_model=32, attention_heads=2, linear_units=64, num_blocks=3)
SR = 16000


@pytest.fixture(scope="module")
def model():
    return random_model(CFG, seed=3)


def _audio(seconds: list[float]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(int(s * SR)) * 0.2).astype(np.float32) for s in seconds]


def _reference(model, audio, ctx):
    with torch.no_grad():
        outs, _ = model.encoder([fbank(torch.from_numpy(a)) for a in audio], *ctx)
        return [model.ctc(o) for o in outs]


def _run(model, audio, ctx, batch_seconds, block_seconds):
    opts = EngineOptions(
        chunk=ChunkConfig(*ctx),
        batch_duration=batch_seconds,
        top_k=None,
        block_seconds=block_seconds,
    )
    return list(Engine(model, opts, torch.device("cpu")).run(audio))


# Lengths in encoder frames (80 ms): 0, 1, a chunk minus one frame, one frame past a chunk, longer.
SECONDS = [0.05, 0.19, 4 * 0.08 * 7 + 0.07, 4 * 0.08 * 8 + 0.15, 9.13, 3.3]


@pytest.mark.parametrize(
    ("ctx", "batch_seconds", "block_seconds"),
    [
        ((4, 8, 4), 1000, 60),  # everything in one pass
        ((4, 8, 4), 0.33, 0.37),  # one chunk per pass, audio blocks cut mid-chunk
        ((4, 2, 0), 0.7, 0.05),  # no right context, tiny audio blocks
        ((8, 4, 3), 0.33, 1.1),  # right context shorter than the conv reach
        ((2, 16, 8), 1.0, 0.5),  # left context of many chunks
    ],
)
def test_engine_matches_whole_file_pass(model, ctx, batch_seconds, block_seconds) -> None:
    audio = _audio(SECONDS)
    want = _reference(model, audio, ctx)
    got = _run(model, audio, ctx, batch_seconds, block_seconds)
    assert [r.index for r in got] == list(range(len(audio)))
    for w, r in zip(want, got, strict=True):
        assert r.error is None and r.posteriors is not None
        assert r.posteriors.logp.shape == w.shape
        if w.numel():
            assert float((r.posteriors.logp - w).abs().max()) < 1e-4


def test_batch_neighbours_do_not_change_outputs(model) -> None:
    ctx = (4, 8, 4)
    audio = _audio([7.7, 2.1, 5.0])
    alone = _run(model, audio[:1], ctx, 0.5, 1.3)[0].posteriors
    mixed = _run(model, audio, ctx, 0.5, 1.3)[0].posteriors
    assert alone is not None and mixed is not None
    assert float((alone.logp - mixed.logp).abs().max()) < 1e-5


def test_top_k_keeps_the_best(model) -> None:
    audio = _audio([3.0])
    full = _run(model, audio, (4, 8, 4), 10, 10)[0].posteriors
    opts = EngineOptions(chunk=ChunkConfig(4, 8, 4), batch_duration=10, top_k=3)
    top = list(Engine(model, opts, torch.device("cpu")).run(audio))[0].posteriors
    assert full is not None and top is not None and top.ids is not None
    assert torch.equal(top.ids[:, 0].long(), full.logp.argmax(-1))
    dense = top.dense(CFG.vocab_size)
    assert torch.allclose(dense.max(-1).values, full.logp.max(-1).values)


def test_errors_are_reported_in_order_and_others_complete(model, tmp_path) -> None:
    bad = tmp_path / "missing.wav"
    audio: list[object] = [_audio([1.0])[0], str(bad), _audio([2.0])[0]]
    opts = EngineOptions(chunk=ChunkConfig(4, 8, 4), batch_duration=0.5)
    res = list(Engine(model, opts, torch.device("cpu")).run(audio))
    assert [r.index for r in res] == [0, 1, 2]
    assert res[0].error is None and res[2].error is None
    assert res[1].error is not None and res[1].posteriors is None


def test_full_context_mode(model) -> None:
    audio = _audio([2.5, 0.4])
    want = _reference(model, audio, (-1, 0, 0))
    opts = EngineOptions(chunk=ChunkConfig(-1, 0, 0), top_k=None)
    got = list(Engine(model, opts, torch.device("cpu")).run(audio))
    for w, r in zip(want, got, strict=True):
        assert r.posteriors is not None
        assert float((r.posteriors.logp - w).abs().max()) < 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_matches_cpu(model, dtype) -> None:
    import copy

    audio = _audio([6.1, 0.9])
    want = _reference(model, audio, (4, 8, 4))
    gpu_model = copy.deepcopy(model).cuda()
    if dtype == torch.bfloat16:
        gpu_model.to(dtype)
        gpu_model.encoder.global_cmvn.float()
    opts = EngineOptions(chunk=ChunkConfig(4, 8, 4), batch_duration=0.5, top_k=None, dtype=dtype)
    got = list(Engine(gpu_model, opts, torch.device("cuda")).run(audio))
    tol = 1e-3 if dtype == torch.float32 else 0.5
    for w, r in zip(want, got, strict=True):
        assert r.posteriors is not None
        assert float((r.posteriors.logp.float() - w).abs().max()) < tol
        if dtype == torch.float32:
            assert torch.equal(r.posteriors.logp.argmax(-1), w.argmax(-1))
