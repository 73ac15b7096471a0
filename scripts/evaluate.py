#!/usr/bin/env python
"""Greedy-CTC WER/CER of a model on corpus splits, full context and chunked, plus speed.

    python scripts/evaluate.py --model models/en-small
    python scripts/evaluate.py --checkpoint exp/en-small/last.pt --ema --splits dev --limit 100

For each split and context mode (``full`` = chunk -1, ``C/L/R`` = masked chunks) the audio is
read, featurised with :func:`chunkasr.features.fbank` and decoded in batches. Speed is
measured end to end (reading wav files, fbank, encoder, CTC, greedy search) on the CPU with
the threads given, both for this batched path and for :class:`chunkasr.engine.Engine`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from chunkasr.decoding import ctc_greedy_search  # noqa: E402
from chunkasr.features import fbank  # noqa: E402
from chunkasr.metrics import ErrorRate  # noqa: E402
from chunkasr.model import ChunkFormerCTC, ModelConfig, load_model_dir  # noqa: E402
from chunkasr.vocab import Vocabulary  # noqa: E402


def load_from_checkpoint(path: Path, lang: Path, ema: bool) -> tuple[ChunkFormerCTC, Vocabulary]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = ModelConfig.from_dict(ck["config"])
    model = ChunkFormerCTC(cfg)
    model.load_state_dict(ck["ema"] if ema else ck["model"])
    model.eval()
    return model, Vocabulary.from_file(lang / "vocab.txt")


def read_rows(corpus: Path, split: str, limit: int) -> list[dict]:
    with (corpus / f"{split}.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[:limit] if limit else rows


def wav_path(p: str) -> str:
    return p if Path(p).is_absolute() else str(REPO / p)


def load_audio(path: str) -> torch.Tensor:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != 16000:
        raise SystemExit(f"{path}: expected 16 kHz, got {sr}")
    return torch.from_numpy(np.ascontiguousarray(x.mean(axis=1)))


@torch.inference_mode()
def transcribe(
    model: ChunkFormerCTC,
    vocab: Vocabulary,
    paths: list[str],
    context: tuple[int, int, int],
    batch_seconds: float,
    dtype: torch.dtype,
) -> tuple[list[str], float, float]:
    """Hypotheses, audio seconds, wall seconds (everything from reading files to text)."""
    t0 = time.perf_counter()
    hyps: list[str] = [""] * len(paths)
    audio = 0.0
    order = sorted(range(len(paths)), key=lambda i: Path(paths[i]).stat().st_size)
    batch: list[tuple[int, torch.Tensor]] = []
    size = 0.0

    def flush() -> None:
        feats = [f for _, f in batch]
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            outs, _ = model.encoder(feats, *context)
        for (i, _), o in zip(batch, outs, strict=True):
            spans = ctc_greedy_search(model.ctc(o.float()))
            hyps[i] = vocab.decode([s.id for s in spans])
        batch.clear()

    for i in order:
        x = load_audio(paths[i])
        audio += x.shape[0] / 16000
        batch.append((i, fbank(x)))
        size += x.shape[0] / 16000
        if size >= batch_seconds:
            flush()
            size = 0.0
    if batch:
        flush()
    return hyps, audio, time.perf_counter() - t0


def engine_speed(model: ChunkFormerCTC, vocab: Vocabulary, paths: list[str], dtype: torch.dtype) -> dict:
    """Realtime factor of the library's long-form engine at 64/128/128 (greedy decoding)."""
    from chunkasr.engine import Engine, EngineOptions
    from chunkasr.model import ChunkConfig

    eng = Engine(model, EngineOptions(chunk=ChunkConfig(64, 128, 128), dtype=dtype), torch.device("cpu"))
    t0 = time.perf_counter()
    audio = 0.0
    texts = []
    for r in eng.run(paths):
        audio += r.duration
        if r.posteriors is not None:
            lp = r.posteriors.dense(len(vocab))
            texts.append(vocab.decode([s.id for s in ctc_greedy_search(lp)]))
    wall = time.perf_counter() - t0
    return {"audio_s": round(audio, 1), "wall_s": round(wall, 2), "rtf_x": round(audio / wall, 1),
            "texts": texts}  # fmt: skip


def voice_family(voice: str) -> str:
    """'espeak:en-us+m3' -> 'espeak:en-us'; held-out voices keep their variant ('+f3' is unique)."""
    engine, _, name = voice.partition(":")
    base, _, variant = name.partition("+")
    return f"{engine}:{base}+{variant}" if variant == "f3" else f"{engine}:{base}"


def parse_context(s: str) -> tuple[int, int, int]:
    if s == "full":
        return -1, 0, 0
    c, left, right = (int(v) for v in s.split("/"))
    return c, left, right


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", help="model directory (official layout)")
    ap.add_argument("--checkpoint", help="training checkpoint (exp/<name>/last.pt)")
    ap.add_argument("--ema", action="store_true", help="use the checkpoint's EMA weights")
    ap.add_argument("--lang", default="data/lang")
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--splits", default="dev,test_voices")
    ap.add_argument("--contexts", default="full,64/128/128")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--batch-seconds", type=float, default=300.0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engine", action="store_true", help="also time chunkasr.engine.Engine")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--show", type=int, default=0, help="print this many errors per split")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    if args.model:
        model, _, vocab = load_model_dir(args.model)
    elif args.checkpoint:
        model, vocab = load_from_checkpoint(Path(args.checkpoint), Path(args.lang), args.ema)
    else:
        raise SystemExit("give --model or --checkpoint")
    results: dict = {"dtype": args.dtype, "threads": args.threads, "splits": {}}
    for split in args.splits.split(","):
        rows = read_rows(Path(args.corpus), split, args.limit)
        paths = [wav_path(r["audio"]) for r in rows]
        refs = [r["text"] for r in rows]
        results["splits"][split] = {}
        for ctx_name in args.contexts.split(","):
            hyps, audio, wall = transcribe(model, vocab, paths, parse_context(ctx_name), args.batch_seconds,
                                           dtype)  # fmt: skip
            er = ErrorRate()
            by_voice: dict[str, ErrorRate] = {}
            shown = 0
            for row, ref, hyp in zip(rows, refs, hyps, strict=True):
                w = er.add(ref, hyp)
                by_voice.setdefault(voice_family(row.get("voice", "?")), ErrorRate()).add(ref, hyp)
                if w.edits and shown < args.show:
                    print(f"  REF: {ref}\n  HYP: {hyp}")
                    shown += 1
            s = er.summary()
            s.update({"audio_s": round(audio, 1), "wall_s": round(wall, 2), "rtf_x": round(audio / wall, 1)})
            s["voices"] = {v: e.summary() for v, e in sorted(by_voice.items())}
            results["splits"][split][ctx_name] = s
            print(f"{split:12s} {ctx_name:11s} WER {s['wer']:6.2f}  CER {s['cer']:6.2f}  "
                  f"({s['utterances']} utts, {audio / 60:.1f} min, {audio / wall:.0f}x realtime)",
                  flush=True)  # fmt: skip
            if len(by_voice) <= 16:  # one line per voice family
                for v, vs in s["voices"].items():
                    print(
                        f"    {v:24s} WER {vs['wer']:6.2f}  CER {vs['cer']:6.2f}  ({vs['utterances']} utts)"
                    )
    if args.engine:
        rows = read_rows(Path(args.corpus), args.splits.split(",")[-1], args.limit)
        paths = [wav_path(r["audio"]) for r in rows]
        sp = engine_speed(model, vocab, paths, dtype)
        er = ErrorRate()
        for r, hyp in zip(rows, sp.pop("texts"), strict=True):
            er.add(r["text"], hyp)
        sp["wer"] = round(100 * er.wer, 3)
        results["engine_64_128_128"] = sp
        print(f"engine 64/128/128: {sp['rtf_x']}x realtime ({sp['audio_s']} s audio), WER {sp['wer']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
