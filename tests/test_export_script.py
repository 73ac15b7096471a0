"""scripts/export_model.py: a training checkpoint to an official-layout directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from modelkit import TINY_TOKENS, random_model

from chunkasr.model import ModelConfig, load_model_dir

ROOT = Path(__file__).resolve().parent.parent


def _checkpoint(tmp_path: Path) -> tuple[Path, Path, torch.nn.Module]:
    cfg = ModelConfig(vocab_size=len(TINY_TOKENS), d_model=32, attention_heads=2,
                      linear_units=64, num_blocks=2)  # fmt: skip
    model = random_model(cfg, seed=5)
    lang = tmp_path / "lang"
    lang.mkdir()
    (lang / "vocab.txt").write_text("".join(f"{t} {i}\n" for i, t in enumerate(TINY_TOKENS)))
    (lang / "bpe.model").write_bytes(b"not read by the export")
    cmvn = {"mean_stat": [8.0 * 10] * 80, "var_stat": [80.0 * 10] * 80, "frame_num": 10}
    ck = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "step": 7, "config": cfg.to_official_dict(), "cmvn": cmvn}, ck)
    return ck, lang, model


def _export(ck: Path, lang: Path, out: Path, *extra: str) -> str:
    cmd = [sys.executable, str(ROOT / "scripts" / "export_model.py"), str(ck), str(out),
           "--raw", "--lang", str(lang), *extra]  # fmt: skip
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def test_float16_by_default_half_the_size_and_reloads_as_stored(tmp_path: Path) -> None:
    ck, lang, model = _checkpoint(tmp_path)
    said = _export(ck, lang, tmp_path / "h")
    _export(ck, lang, tmp_path / "f", "--dtype", "float32")
    assert "(float16)" in said and "reload max diff 0.00e+00" in said, said
    half, full = (torch.load(tmp_path / d / "pytorch_model.bin", weights_only=True) for d in "hf")
    assert half["encoder.encoders.0.self_attn.linear_q.weight"].dtype == torch.float16
    assert full["encoder.encoders.0.self_attn.linear_q.weight"].dtype == torch.float32
    sizes = [(tmp_path / d / "pytorch_model.bin").stat().st_size for d in "hf"]
    assert sizes[0] < 0.6 * sizes[1]
    loaded, _, _ = load_model_dir(tmp_path / "h")
    w = "ctc.ctc_lo.weight"
    assert torch.equal(loaded.state_dict()[w], model.state_dict()[w].half().float())
    exact, _, _ = load_model_dir(tmp_path / "f")
    assert torch.equal(exact.state_dict()[w], model.state_dict()[w])
