"""Training step time of the bundled-model recipe: current front end vs the previous one.

    python scripts/bench_train_step.py [--steps 12] [--threads 2]

Builds the bundled model's shape (144 x 6, 4 heads, FFN 576, vocab 1000) with random weights
and a random batch like ``train_fast.py``'s (6 utterances of 8 s = 48 s of audio), and times
full steps (bf16 autocast forward, CTC loss, backward, AdamW) with two front ends, alternating
step by step so both see the same machine load:

* ``previous``: the front end as it was before session 4 (bf16 depthwise convs under autocast,
  in-place ReLU on the matrix products' reshaped outputs);
* ``current``: :class:`chunkasr.model.subsampling.DepthwiseSubsampling` as shipped (float32
  first and depthwise convs under CPU autocast, out-of-place ReLU with autograd).

Prints one JSON line per context (full, chunked 32/64/32) with median seconds per step, the
ratio previous/current, and the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import cast

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from chunkasr.model import ChunkFormerCTC, ModelConfig  # noqa: E402
from chunkasr.model.subsampling import DepthwiseSubsampling  # noqa: E402


def previous_forward(self: DepthwiseSubsampling, x: torch.Tensor) -> torch.Tensor:
    """The front end before session 4, kept here as the baseline."""
    c0, dw1, pw1, dw2, pw2 = (cast(nn.Conv2d, self.conv[i]) for i in (0, 2, 3, 5, 6))
    patches = x.unfold(1, 3, 2).unfold(2, 3, 2).flatten(3)
    y = nn.functional.linear(patches, c0.weight.flatten(1), c0.bias).relu_()
    for dw, pw in ((dw1, pw1), (dw2, pw2)):
        z = nn.functional.conv2d(y.permute(0, 3, 1, 2), dw.weight, dw.bias, stride=2, groups=dw.groups)
        y = nn.functional.linear(z.permute(0, 2, 3, 1), pw.weight.flatten(1), pw.bias).relu_()
    b, t, f, d = y.shape
    return cast(torch.Tensor, self.out(y.transpose(2, 3).reshape(b, t, d * f)) * self.xscale)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=1000, d_model=144, attention_heads=4, linear_units=576, num_blocks=6,
                      dropout_rate=0.1, positional_dropout_rate=0.1, attention_dropout_rate=0.0)  # fmt: skip
    model = ChunkFormerCTC(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(800, 80, generator=g) for _ in range(6)]
    targets = [torch.randint(1, 1000, (30,), generator=g) for _ in range(6)]
    current = DepthwiseSubsampling.forward

    def step(ctx: tuple[int, int, int], variant: str) -> float:
        DepthwiseSubsampling.forward = previous_forward if variant == "previous" else current  # type: ignore[method-assign]
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outs, _ = model.encoder(feats, *ctx)
            lens = torch.tensor([o.shape[0] for o in outs])
            lp = model.ctc(nn.utils.rnn.pad_sequence(outs))
        tl = torch.full((6,), 30)
        loss = nn.functional.ctc_loss(lp.float(), torch.cat(targets), lens, tl, reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__}  # fmt: skip
    try:
        for ctx in [(-1, 0, 0), (32, 64, 32)]:
            times: dict[str, list[float]] = {"previous": [], "current": []}
            for v in times:
                step(ctx, v)  # warm-up
            for _ in range(args.steps):
                for v in times:
                    times[v].append(step(ctx, v))
            prev, cur = (statistics.median(times[v]) for v in ("previous", "current"))
            row = {"context": list(ctx), "audio_s": 48.0, "previous_s": round(prev, 3),
                   "current_s": round(cur, 3), "speedup": round(prev / cur, 2),
                   "machine": machine}  # fmt: skip
            print(json.dumps(row), flush=True)
    finally:
        DepthwiseSubsampling.forward = current  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
