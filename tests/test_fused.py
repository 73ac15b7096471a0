"""CPU inference fast paths (fused linear+activation, SDPA attention) against the plain maths."""

import pytest
import torch

from chunkasr.model import ChunkFormerCTC, ModelConfig
from chunkasr.model.attention import ChunkSelfAttention, relative_positions
from chunkasr.model.fused import UNSUPPORTED, _op, linear_act

needs_op = pytest.mark.skipif(_op() is None, reason="this torch build has no oneDNN linear_pointwise")


@needs_op
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("name,act", [("swish", torch.nn.functional.silu), ("relu", torch.relu)])
def test_linear_act_matches_linear_then_activation(dtype, tol, name, act):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 7, 32, generator=g).to(dtype)
    w = torch.randn(48, 32, generator=g).to(dtype)
    b = torch.randn(48, generator=g).to(dtype)
    with torch.inference_mode():
        got = linear_act(x, w, b, name)
    if got is None and dtype == torch.bfloat16:
        # oneDNN without native bf16 (AVX2-only CPUs) cannot build the op: the caller falls back
        assert torch.bfloat16 in UNSUPPORTED and torch.float32 not in UNSUPPORTED
        pytest.skip("this CPU's oneDNN has no bf16 linear_pointwise; fallback checked")
    assert got is not None and got.shape == (3, 7, 48) and got.dtype == dtype
    ref = act(torch.nn.functional.linear(x.float(), w.float(), b.float()))
    err = float((got.float() - ref).abs().max())
    assert err <= tol * float(ref.abs().max()), err


def test_linear_act_declines_when_autograd_needs_the_graph():
    x = torch.randn(4, 8)
    w = torch.randn(6, 8, requires_grad=True)
    assert linear_act(x, w, None, "swish") is None
    assert linear_act(x, w.detach(), None, "gelu") is None  # unsupported activation


def test_attention_inference_path_equals_training_formula():
    """The SDPA path (bias from one bmm, masking only the chunks that need it) equals the
    explicit softmax formula, with windows that are fully valid, partly valid and mixed."""
    torch.manual_seed(0)
    C, L, R, D, H = 4, 6, 3, 16, 2
    att = ChunkSelfAttention(D, H).eval()
    N, W = 5, L + C + R
    q = torch.randn(N, C, H, D // H)
    kv = torch.randn(N, W, 2 * D)
    pos = relative_positions(C, L, R, D, torch.device("cpu"), torch.float32)
    masks = {
        "all valid": torch.ones(N, W, dtype=torch.bool),
        "mixed": torch.ones(N, W, dtype=torch.bool),
        "all partial": torch.ones(N, W, dtype=torch.bool),
    }
    masks["mixed"][0, :L] = False  # file start
    masks["mixed"][3, -2:] = False  # file end
    masks["all partial"][:, 0] = False
    for name, mask in masks.items():
        with torch.no_grad():
            fast = att.attend(q, kv, mask, pos)
        with torch.enable_grad():
            slow = att.attend(q.clone().requires_grad_(True), kv, mask, pos).detach()
        assert torch.allclose(fast, slow, atol=1e-5), (name, float((fast - slow).abs().max()))


def test_model_inference_mode_equals_autograd_forward():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=20, d_model=32, attention_heads=2, linear_units=64, num_blocks=2,
                      cnn_module_kernel=5)  # fmt: skip
    model = ChunkFormerCTC(cfg).eval()
    feats = [torch.randn(230, 80) * 3, torch.randn(97, 80) * 3]
    with torch.inference_mode():
        fast, _ = model.encoder(feats, 4, 6, 3)
    with torch.enable_grad():
        slow, _ = model.encoder(feats, 4, 6, 3)
    for a, b in zip(fast, slow, strict=True):
        assert torch.allclose(a, b.detach(), atol=1e-4), float((a - b).abs().max())


@pytest.mark.parametrize(
    "shape",
    [(20, 40, 80), (1, 700, 80), (2, 600, 80), (2, 100, 80)],
    ids=["whole-items", "time-pieces", "several-long-items", "untiled"],
)
def test_subsampling_tiles_equal_one_pass(monkeypatch, shape):
    """Tiled front-end (CPU inference) gives one pass's values and length, for every tiling."""
    import chunkasr.model.subsampling as sub

    torch.manual_seed(0)
    emb = sub.DepthwiseSubsampling(80, 16).eval()
    x = torch.randn(*shape)
    with torch.inference_mode():
        want = emb._forward(x)
        monkeypatch.setattr(sub, "TILE_BYTES", 1)  # the 256-row floor: tiles of <= 256 input rows
        got = emb(x)
    assert got.shape == want.shape == (shape[0], sub.subsampled_length(shape[1]), 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
