"""Parity with the official ChunkFormer implementation (golden files and live)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from chunkasr.model import load_model_dir

PARITY = Path(__file__).parent / "data" / "parity"
MODELS = sorted(p.name for p in PARITY.iterdir() if (p / "golden.pt").is_file())
TOL = 1e-4

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from make_parity_fixtures import features  # noqa: E402


def _ours(model_dir: Path, lengths: list[int], seeds: list[int], ctx: tuple[int, int, int]):
    model, _, _ = load_model_dir(model_dir)
    feats = [features(n, s) for n, s in zip(lengths, seeds, strict=True)]
    with torch.no_grad():
        outs, _ = model.encoder(feats, *ctx)
        return [model.ctc(o) for o in outs]


def _cases():
    for name in MODELS:
        golden = torch.load(PARITY / name / "golden.pt", weights_only=True)
        for key in golden["cases"]:
            yield name, key


@pytest.mark.parametrize(("name", "key"), list(_cases()))
def test_golden_parity(name: str, key: str) -> None:
    golden = torch.load(PARITY / name / "golden.pt", weights_only=True)
    case = golden["cases"][key]
    ctx = tuple(int(v) for v in key.split(","))
    ours = _ours(PARITY / name, case["lengths"], case["seeds"], ctx)  # type: ignore[arg-type]
    for n, want, got in zip(case["lengths"], case["logp"], ours, strict=True):
        assert got.shape == want.shape, (
            f"{n} frames: shape {tuple(got.shape)} != {tuple(want.shape)}"
        )
        if want.numel():
            diff = float((got - want).abs().max())
            assert diff < TOL, f"{name} {key} {n} frames: max abs diff {diff:.2e}"


def test_fixture_covers_required_lengths() -> None:
    golden = torch.load(PARITY / MODELS[0] / "golden.pt", weights_only=True)
    outs = [o.shape[0] for o in golden["cases"]["64,128,128"]["logp"]]
    assert 0 < outs[2] < 64 and outs[3] == 64 and outs[4] == 160 and outs[-1] > 64 * 20


def test_loads_official_dir_ignoring_only_decoder() -> None:
    state = torch.load(PARITY / MODELS[0] / "pytorch_model.bin", weights_only=True)
    model, _, _ = load_model_dir(PARITY / MODELS[0])
    ours = set(model.state_dict())
    ignored = {k for k in state if k not in ours}
    assert ignored and all(k.startswith("decoder.") for k in ignored)
    assert ours <= set(state)  # every tensor of ours came from the checkpoint


@pytest.mark.official
@pytest.mark.skipif(
    importlib.util.find_spec("chunkformer") is None,
    reason="the official chunkformer package is not installed",
)
@pytest.mark.parametrize("ctx", [(64, 128, 128), (32, 64, 32), (128, 256, 128), (16, 4, 0)])
def test_live_parity(ctx: tuple[int, int, int]) -> None:
    from make_parity_fixtures import MODELS as SPECS
    from make_parity_fixtures import official_outputs

    from chunkasr.model.checkpoint import read_checkpoint

    name = MODELS[0]
    model, _, _ = load_model_dir(PARITY / name)
    from chunkformer.utils.init_model import init_speech_model
    from make_parity_fixtures import official_config

    off, _ = init_speech_model(
        None, official_config(SPECS[name], str(PARITY / name / "global_cmvn"))
    )
    off.load_state_dict(read_checkpoint(PARITY / name / "pytorch_model.bin"), strict=False)
    off.eval()
    lengths = [15, 200, 1111, 4000]
    feats = [features(n, 7 + i) for i, n in enumerate(lengths)]
    want = official_outputs(off, feats, ctx)
    with torch.no_grad():
        outs, _ = model.encoder(feats, *ctx)
    for w, o in zip(want, outs, strict=True):
        assert float((model.ctc(o) - w).abs().max()) < TOL
