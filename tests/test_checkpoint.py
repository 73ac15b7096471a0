"""Strict, safe loading of official-layout model directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from chunkasr.errors import ModelError
from chunkasr.model import load_model_dir
from chunkasr.model.checkpoint import load_cmvn


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_state(model_dir: Path, edit) -> None:
    path = model_dir / "pytorch_model.bin"
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)


def test_round_trip(tiny_model_dir: Path) -> None:
    model, cfg, vocab = load_model_dir(tiny_model_dir)
    assert cfg.num_blocks == 2 and len(vocab) == cfg.vocab_size
    state = torch.load(tiny_model_dir / "pytorch_model.bin", weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_missing_tensor_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model_dir, tmp_path / "m")
    _edit_state(d, lambda s: s.pop("encoder.encoders.1.self_attn.linear_q.weight"))
    with pytest.raises(
        ModelError, match="missing tensor encoder.encoders.1.self_attn.linear_q.weight"
    ):
        load_model_dir(d)


def test_unexpected_tensor_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model_dir, tmp_path / "m")
    _edit_state(d, lambda s: s.__setitem__("encoder.extra.weight", torch.zeros(2)))
    with pytest.raises(ModelError, match="unexpected tensor encoder.extra.weight"):
        load_model_dir(d)


def test_decoder_tensors_are_ignored(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model_dir, tmp_path / "m")
    _edit_state(
        d, lambda s: s.__setitem__("decoder.left_decoder.embed.0.weight", torch.zeros(3, 2))
    )
    load_model_dir(d)


def test_wrong_shape_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model_dir, tmp_path / "m")
    _edit_state(d, lambda s: s.__setitem__("ctc.ctc_lo.bias", torch.zeros(5)))
    with pytest.raises(ModelError, match=r"ctc.ctc_lo.bias has shape \(5,\)"):
        load_model_dir(d)


def test_pickled_code_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model_dir, tmp_path / "m")
    torch.save({"x": Path("not a tensor")}, d / "pytorch_model.bin")
    with pytest.raises(ModelError, match="cannot load checkpoint safely"):
        load_model_dir(d)


def test_vocab_size_mismatch(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model_dir, tmp_path / "m")
    with (d / "vocab.txt").open("a") as f:
        f.write("extra 11\n")
    with pytest.raises(ModelError, match="vocab.txt has 12 tokens"):
        load_model_dir(d)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.yaml"):
        load_model_dir(tmp_path / "empty")


def test_cmvn_json_and_kaldi_agree(tmp_path: Path) -> None:
    sums, squares, n = [2.0, 4.0], [5.0, 20.0], 2
    (tmp_path / "a").write_text(
        '{"mean_stat": [2.0, 4.0], "var_stat": [5.0, 20.0], "frame_num": 2}'
    )
    (tmp_path / "b").write_text(" [\n 2.0 4.0 2\n 5.0 20.0 0 ]\n")
    ma, ia = load_cmvn(tmp_path / "a")
    mb, ib = load_cmvn(tmp_path / "b")
    assert torch.allclose(ma, torch.tensor([1.0, 2.0])) and torch.allclose(ma, mb)
    # var = 5/2 - 1 = 1.5 and 20/2 - 4 = 6
    assert torch.allclose(ia, torch.tensor([1.5**-0.5, 6**-0.5])) and torch.allclose(ia, ib)
    assert sums and squares and n


def test_float16_storage_halves_the_file_and_loads_as_rounded_float32(tmp_path: Path) -> None:
    from modelkit import TINY_TOKENS, random_model

    from chunkasr.model import ModelConfig
    from chunkasr.model.checkpoint import save_model_dir

    cfg = ModelConfig(vocab_size=len(TINY_TOKENS), d_model=32, attention_heads=2,
                      linear_units=64, num_blocks=2)  # fmt: skip
    model = random_model(cfg, seed=3)
    model.encoder.global_cmvn.mean.fill_(8.0001)  # not representable in float16
    full = save_model_dir(model, TINY_TOKENS, tmp_path / "f32")
    half = save_model_dir(model, TINY_TOKENS, tmp_path / "f16", dtype="float16")
    stored = torch.load(half / "pytorch_model.bin", weights_only=True)
    assert stored["ctc.ctc_lo.weight"].dtype == torch.float16
    assert stored["encoder.global_cmvn.mean"].dtype == torch.float32  # statistics stay exact
    size = [(d / "pytorch_model.bin").stat().st_size for d in (full, half)]
    assert size[1] < 0.6 * size[0]
    loaded, _, _ = load_model_dir(half)
    for key, value in model.state_dict().items():
        got = loaded.state_dict()[key]
        assert got.dtype == value.dtype, key  # the model computes in float32 again
        expect = value if key.startswith("encoder.global_cmvn") else value.half().float()
        assert torch.equal(got, expect), key
    assert not torch.equal(loaded.ctc.ctc_lo.weight, model.ctc.ctc_lo.weight)  # it was rounded


def test_storage_dtype_is_checked_before_anything_is_written(tmp_path: Path) -> None:
    from modelkit import TINY_TOKENS, random_model

    from chunkasr.model import ModelConfig
    from chunkasr.model.checkpoint import save_model_dir

    cfg = ModelConfig(vocab_size=len(TINY_TOKENS), d_model=32, attention_heads=2,
                      linear_units=64, num_blocks=1)  # fmt: skip
    model = random_model(cfg)
    with pytest.raises(ValueError, match="storage dtype 'int8'"):
        save_model_dir(model, TINY_TOKENS, tmp_path / "m", dtype="int8")
    assert not (tmp_path / "m").exists()
    with torch.no_grad():
        model.ctc.ctc_lo.weight[0, 0] = 1e6  # beyond float16's range
    with pytest.raises(ModelError, match="ctc.ctc_lo.weight overflows float16"):
        save_model_dir(model, TINY_TOKENS, tmp_path / "m", dtype="float16")
    assert not (tmp_path / "m").exists()


def test_bfloat16_weights_load_as_float32(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model_dir, tmp_path / "m")
    original = torch.load(d / "pytorch_model.bin", weights_only=True)
    _edit_state(d, lambda s: s.update({k: v.bfloat16() for k, v in s.items() if v.is_floating_point()}))
    model, _, _ = load_model_dir(d)
    for key, value in model.state_dict().items():
        assert value.dtype == original[key].dtype, key
        expect = original[key]
        if value.is_floating_point():
            expect = expect.bfloat16().to(expect.dtype)
        assert torch.equal(value, expect), key
