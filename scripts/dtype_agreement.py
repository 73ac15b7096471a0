#!/usr/bin/env python
"""How far a reduced-precision run (bf16, or fp16 on CUDA) is from fp32, through the engine.

    python scripts/dtype_agreement.py --model models/en-small --manifest data/corpus/dev.jsonl
    python scripts/dtype_agreement.py --model DIR talk.wav lecture.flac --dtype bf16

Both runs go through :class:`chunkasr.api.Model` with the same chunking (default 64/128/128)
and full posteriors. Printed as one JSON line:

- ``max_abs_logp_diff`` / ``mean_abs_logp_diff``: CTC log-probs of the two runs, all frames;
- ``argmax_agreement``: share of frames whose most likely token is the same;
- ``token_agreement``: 1 - token edit distance between the two greedy token sequences,
  over the fp32 token count (what a user sees change);
- ``wer_between``: word error rate of the reduced-precision transcript against the fp32 one;
- with a manifest, ``wer_fp32`` / ``wer_<dtype>`` against the reference texts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from chunkasr.api import load_model  # noqa: E402
from chunkasr.decoding import ctc_greedy_search  # noqa: E402
from chunkasr.metrics import ErrorRate, edit_counts  # noqa: E402
from chunkasr.model import ChunkConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("audio", nargs="*", help="audio files")
    ap.add_argument("--model", required=True, help="model directory or hub id")
    ap.add_argument("--manifest", type=Path, help="jsonl with 'audio' and 'text' (corpus layout)")
    ap.add_argument("--limit", type=int, default=0, help="first N manifest entries")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chunk", default="64/128/128", help="chunk/left/right frames")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    sources, refs = list(a.audio), []
    if a.manifest:
        rows = [json.loads(line) for line in a.manifest.read_text().splitlines() if line.strip()]
        rows = rows[: a.limit] if a.limit else rows
        sources += [r["audio"] for r in rows]
        refs = [r["text"] for r in rows]
    if not sources:
        ap.error("give audio files or --manifest")
    c, left, right = (int(v) for v in a.chunk.split("/"))
    chunk = ChunkConfig(c, left, right)

    runs = {}
    for dt in ("fp32", a.dtype):
        model = load_model(a.model, device=a.device, dtype=dt)
        post = [r.posteriors for r in model.posteriors(sources, chunk, top_k=None)]
        if any(p is None for p in post):
            sys.exit(f"error: a source failed in the {dt} run")
        runs[dt] = (model, [p.logp.float().cpu() for p in post])  # type: ignore[union-attr]

    model, ref_logp = runs["fp32"]
    _, low_logp = runs[a.dtype]
    diff_max, diff_sum, frames, same = 0.0, 0.0, 0, 0
    tok_edits, tok_len = 0, 0
    between, vs_ref = ErrorRate(), {"fp32": ErrorRate(), a.dtype: ErrorRate()}
    for i, (x, y) in enumerate(zip(ref_logp, low_logp, strict=True)):
        d = (x - y).abs()
        diff_max = max(diff_max, float(d.max())) if d.numel() else diff_max
        diff_sum += float(d.sum())
        frames += x.shape[0]
        same += int((x.argmax(-1) == y.argmax(-1)).sum())
        tx = [t.id for t in ctc_greedy_search(x)]
        ty = [t.id for t in ctc_greedy_search(y)]
        e = edit_counts(tx, ty)
        tok_edits, tok_len = tok_edits + e.edits, tok_len + e.ref_len
        text_x, text_y = model.vocab.decode(tx), model.vocab.decode(ty)
        between.add(text_x, text_y)
        if refs and i >= len(a.audio):
            ref = refs[i - len(a.audio)]
            vs_ref["fp32"].add(ref, text_x)
            vs_ref[a.dtype].add(ref, text_y)
    out = {
        "model": a.model,
        "dtype": a.dtype,
        "device": a.device,
        "chunk": a.chunk,
        "files": len(sources),
        "frames": frames,
        "max_abs_logp_diff": round(diff_max, 4),
        "mean_abs_logp_diff": round(diff_sum / max(frames * ref_logp[0].shape[-1], 1), 5),
        "argmax_agreement": round(same / max(frames, 1), 5),
        "token_agreement": round(1 - tok_edits / max(tok_len, 1), 5),
        "wer_between": round(100 * between.wer, 3),
    }
    if refs:
        out["wer_fp32"] = round(100 * vs_ref["fp32"].wer, 3)
        out[f"wer_{a.dtype}"] = round(100 * vs_ref[a.dtype].wer, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
