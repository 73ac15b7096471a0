#!/usr/bin/env python
"""Export a training checkpoint to a model directory in the official ChunkFormer layout.

    python scripts/export_model.py exp/en-small/last.pt models/en-small [--raw]

Writes ``config.yaml``, ``pytorch_model.bin`` (state dict with official key names, weights
stored in ``--dtype``: float16 by default, half the size of float32),
``global_cmvn`` (JSON sums / sums of squares / frame count), ``vocab.txt`` and ``bpe.model``,
then reloads the directory with :func:`chunkasr.model.load_model_dir` (strict) and checks the
outputs equal those of the checkpoint weights rounded to the storage dtype (and prints how far
the rounding moves them from the unrounded weights). The EMA weights are exported unless ``--raw``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from chunkasr.model import ChunkFormerCTC, ModelConfig, load_model_dir  # noqa: E402
from chunkasr.model.checkpoint import STORAGE_DTYPES, storage_state  # noqa: E402
from chunkasr.vocab import Vocabulary  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--lang", default="data/lang")
    ap.add_argument("--raw", action="store_true", help="export the raw (not EMA) weights")
    ap.add_argument("--check-official", metavar="WAV",
                    help="also load with the official package and decode WAV")  # fmt: skip
    ap.add_argument("--cmvn", default="exp/feats/global_cmvn",
                    help="stats file, for checkpoints that do not carry them")  # fmt: skip
    ap.add_argument("--dtype", choices=sorted(STORAGE_DTYPES), default="float16",
                    help="storage dtype of the weights (loading casts them to float32)")  # fmt: skip
    ap.add_argument("--shape", help="d_model,heads,ffn,blocks for checkpoints without a config")
    args = ap.parse_args()
    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    vocab_size = len(Vocabulary.from_file(Path(args.lang) / "vocab.txt"))
    if "config" in ck:
        cfg = ModelConfig.from_dict(ck["config"])
    elif args.shape:
        d, h, f, b = (int(v) for v in args.shape.split(","))
        cfg = ModelConfig(
            vocab_size=vocab_size, d_model=d, attention_heads=h, linear_units=f, num_blocks=b,
            dynamic_chunk_sizes=(-1, 16, 32, 64, 128),
            dynamic_left_context_sizes=(32, 64, 128, 256),
            dynamic_right_context_sizes=(0, 16, 32, 64, 128),
        )  # fmt: skip
    else:
        raise SystemExit("checkpoint has no config: give --shape d_model,heads,ffn,blocks")
    state = ck["model"] if args.raw or "ema" not in ck else ck["ema"]
    cmvn = ck.get("cmvn") or json.loads(Path(args.cmvn).read_text())
    model = ChunkFormerCTC(cfg)
    model.load_state_dict(state)  # strict: keys are the official ones
    weights = storage_state(model, args.dtype)  # an overflow fails before anything is written
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(weights, out / "pytorch_model.bin")
    with (out / "config.yaml").open("w", encoding="utf-8") as f:
        yaml.safe_dump(cfg.to_official_dict(), f, sort_keys=False)
    (out / "global_cmvn").write_text(json.dumps(cmvn) + "\n")
    lang = Path(args.lang)
    for name in ("vocab.txt", "bpe.model"):  # --lang may be the output directory itself
        if not (out / name).exists() or not (lang / name).samefile(out / name):
            shutil.copyfile(lang / name, out / name)

    loaded, _, vocab = load_model_dir(out)
    model.eval()
    rounded = ChunkFormerCTC(cfg).eval()
    rounded.load_state_dict(weights)  # the checkpoint as stored: what the reload must reproduce
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(400, 80, generator=g) * 4 + 8, torch.randn(230, 80, generator=g) * 4 + 8]
    with torch.inference_mode():
        a, _ = rounded.encoder(feats, 16, 32, 16)
        b, _ = loaded.encoder(feats, 16, 32, 16)
        c, _ = model.encoder(feats, 16, 32, 16)
    diff = max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))
    rounding = max(float((x - y).abs().max()) for x, y in zip(c, b, strict=True))
    size = (out / "pytorch_model.bin").stat().st_size
    n = sum(v.numel() for v in weights.values())
    kind = "EMA" if state is ck.get("ema") else "raw"
    print(f"exported step {ck.get('step')} ({kind}) to {out}: {n / 1e6:.2f} M "
          f"values, {size / 1e6:.1f} MB ({args.dtype}), vocab {len(vocab)}, reload max diff "
          f"{diff:.2e}, {args.dtype} rounding moves outputs by {rounding:.2e}")  # fmt: skip
    if diff > 1e-5:
        raise SystemExit("reloaded model differs from the checkpoint")
    if args.check_official:
        from chunkformer import ChunkFormerModel  # the official package

        official = ChunkFormerModel.from_pretrained(str(out))
        print("official chunkformer:", official.batch_decode([args.check_official]))


if __name__ == "__main__":
    main()
