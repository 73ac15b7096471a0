#!/usr/bin/env python
"""Can the encoder learn a trivial frame-level function of its input? (a training diagnostic)

    python scripts/probe_depth.py linear
    python scripts/probe_depth.py chunkformer --blocks 6 [--shrink 0.01] [--bf16]

Task: for every 80 ms output frame, which of 10 groups of 8 mel bands has the most energy in
the 8 input frames it covers (after CMVN). A linear layer on stacked frames learns it in ~100
steps; any encoder that passes its input through should too. 120 steps of AdamW (lr 1e-3) on
batches of 8 clean training utterances from the feature store (``scripts/train.py prepare``);
prints cross-entropy and accuracy every 30 steps. Results are in docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from chunkasr.model import ChunkFormerCTC, ModelConfig  # noqa: E402
from chunkasr.model.checkpoint import load_cmvn  # noqa: E402
from chunkasr.training import shrink_block_outputs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", choices=["linear", "chunkformer"])
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--shrink", type=float, default=1.0, help="shrink_block_outputs scale (1 = off)")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--feats", default="exp/feats")
    ap.add_argument("--steps", type=int, default=120)
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = random.Random(0)
    items = []
    for meta in sorted(Path(args.feats).glob("train_clean.*.json")):
        d = json.loads(meta.read_text())
        arr = np.memmap(str(meta)[:-5] + ".f16", dtype=np.float16, mode="r").reshape(-1, 80)
        items += [(arr, o, n) for o, n in zip(d["offsets"], d["lengths"], strict=True) if n < 800]
    mean, istd = load_cmvn(f"{args.feats}/global_cmvn")
    model = ChunkFormerCTC(ModelConfig(vocab_size=1026, d_model=144, attention_heads=4, linear_units=576,
                                       num_blocks=args.blocks))  # fmt: skip
    model.encoder.global_cmvn.mean.copy_(mean)
    model.encoder.global_cmvn.istd.copy_(istd)
    if args.shrink != 1.0:
        shrink_block_outputs(model, args.shrink)
    linear = torch.nn.Linear(640, 10)
    params = list(linear.parameters()) if args.model == "linear" else list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)

    def labels(f: torch.Tensor, n: int) -> torch.Tensor:
        g = ((f - mean) * istd)[: n * 8].reshape(n, 8, 10, 8).mean((1, 3))
        return g.argmax(-1)

    for step in range(1, args.steps + 1):
        batch = rng.sample(items, 8)
        feats = [torch.from_numpy(np.array(a[o : o + n], dtype=np.float32)) for a, o, n in batch]
        if args.model == "linear":
            xs = [((f - mean) * istd)[: (f.shape[0] - 7) // 8 * 8].reshape(-1, 640) for f in feats]
            logits = torch.nn.utils.rnn.pad_sequence([linear(x) for x in xs])
            lens = [x.shape[0] for x in xs]
        else:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                outs, _ = model.encoder(feats, -1, 0, 0)
                logits = model.ctc(torch.nn.utils.rnn.pad_sequence(outs))
            lens = [o.shape[0] for o in outs]
        lab = torch.nn.utils.rnn.pad_sequence([labels(f, n) for f, n in zip(feats, lens, strict=True)],
                                              padding_value=-100)  # fmt: skip
        ce = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), lab.flatten(),
                                               ignore_index=-100)  # fmt: skip
        opt.zero_grad()
        ce.backward()
        opt.step()
        if step % 30 == 0:
            acc = float((logits.argmax(-1) == lab).float().sum() / (lab >= 0).sum())
            row = {"step": step, "ce": round(float(ce), 3), "accuracy": round(acc, 3)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
