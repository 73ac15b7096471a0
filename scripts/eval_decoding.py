#!/usr/bin/env python
"""WER and speed of the CTC decoders: greedy, beam, beam + n-gram LM, beam + hotwords.

    python scripts/eval_decoding.py --model models/en-small \\
        --manifest data/corpus/dev.jsonl --manifest data/corpus/test_voices.jsonl \\
        --lm-text data/lang/train_text.txt --json exp/decoding.json
    python scripts/eval_decoding.py --synthetic-minutes 60 --vocab-size 5000   # speed only

Log-probs are computed once per file (full-context chunks of 64/128/128 like the CLI
default) and every decoder runs on the same tensors. The first manifest is the tuning set:
the LM weight and word score are picked there by a small grid, and the hotword list is the
words greedy decoding gets wrong there most often (reference count above hypothesis count, a
bag-of-words view per utterance). Hotword results report how many of those missed occurrences
come back (and how many correct ones are lost) and the WER on every manifest, the later ones
being text the list was not picked from. Decode speed is x realtime of the decode step alone,
log-probs given, one thread.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from chunkasr.decoding import CTCDecoder, DecodeOptions, ctc_greedy_search  # noqa: E402
from chunkasr.errors import ChunkAsrError  # noqa: E402
from chunkasr.hotwords import PhraseTokenizer  # noqa: E402
from chunkasr.lm import estimate_kneser_ney  # noqa: E402
from chunkasr.metrics import ErrorRate  # noqa: E402
from chunkasr.vocab import Vocabulary  # noqa: E402

FRAME_RATE = 12.5  # encoder frames per second (80 ms)


def normalize(text: str) -> str:
    try:
        from chunkasr.tokenizer import normalize_text
    except ImportError:
        return " ".join(text.lower().split())
    return normalize_text(text)


def synthetic_log_probs(frames: int, vocab_size: int, seed: int = 0) -> torch.Tensor:
    """Peaky CTC-like (T, V) log-probs.

    ~30% of frames spike on a random token (a speaking rate of ~4 tokens/s), the rest on blank;
    each frame leaves 1e-6 .. 1e-1 (log-uniform) to the others, 80% of it on one confusable
    token (or blank, for half the spikes: the edges of a spike), the rest spread at random.
    """
    g = torch.Generator().manual_seed(seed)
    spike = torch.rand(frames, generator=g) < 0.3
    top = torch.where(spike, torch.randint(1, vocab_size, (frames,), generator=g), 0)
    alt = torch.randint(1, vocab_size, (frames,), generator=g)
    alt = torch.where(spike & (torch.rand(frames, generator=g) < 0.5), 0, alt)
    resid = 10 ** (-1 - 5 * torch.rand(frames, generator=g))
    probs = torch.randn(frames, vocab_size, generator=g).softmax(-1) * (0.2 * resid[:, None])
    rows = torch.arange(frames)
    probs[rows, alt] += 0.8 * resid
    probs[rows, top] = 1 - resid
    return probs.log()


def synthetic_speed(minutes: float, vocab_size: int, beam_sizes: Sequence[int]) -> dict:
    frames = int(minutes * 60 * FRAME_RATE)
    lp = synthetic_log_probs(frames, vocab_size)
    audio = frames / FRAME_RATE
    out: dict[str, float] = {}
    start = time.perf_counter()
    greedy = ctc_greedy_search(lp)
    out["greedy_x_realtime"] = audio / (time.perf_counter() - start)
    for beam in beam_sizes:
        dec = CTCDecoder(DecodeOptions(method="beam", beam_size=beam))
        start = time.perf_counter()
        tokens = dec(lp)
        out[f"beam{beam}_x_realtime"] = audio / (time.perf_counter() - start)
        out[f"beam{beam}_agrees_with_greedy"] = float(tokens == greedy)
    skipped = float((lp[:, 0].exp() > DecodeOptions().blank_skip_prob).float().mean())
    return {"minutes": minutes, "vocab_size": vocab_size, "blank_skipped": skipped, **out}


class Simulator:
    """Log-probs a weak CTC model might give for a text: for sanity checks without a model.

    Each sentencepiece token spikes on one frame after 0-2 blank frames; 75% of tokens are
    clear (posterior 0.7-0.99), 25% are confused with a random other token that takes 90% of
    the rest (posterior 0.2-0.6, so greedy often picks the wrong one). The vocabulary is
    ``<blank>``, the sentencepiece pieces, ``<sos/eos>``, as ``vocab.txt`` files are built.
    """

    def __init__(self, bpe_model: Path, seed: int = 0) -> None:
        import random

        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(bpe_model))
        pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        self.vocab = Vocabulary(["<blank>", *pieces, "<sos/eos>"])
        self.ids = {t: i for i, t in enumerate(self.vocab.tokens)}
        self.rng = random.Random(seed)

    def __call__(self, text: str) -> torch.Tensor:
        V, rng = len(self.vocab), self.rng
        rows = []

        def frame(top: int, p: float, alt: int | None = None, p_alt: float = 0.0) -> None:
            row = torch.full((V,), (1 - p - p_alt) / (V - 1 - (alt is not None)))
            row[top] = p
            if alt is not None:
                row[alt] += p_alt
            rows.append(row)

        for piece in self.sp.encode(text, out_type=str):
            for _ in range(rng.randint(0, 2)):
                frame(0, 0.999)
            if rng.random() < 0.25:
                p = rng.uniform(0.2, 0.6)
                frame(self.ids[piece], p, rng.randrange(2, V - 1), 0.9 * (1 - p))
            else:
                frame(self.ids[piece], rng.uniform(0.7, 0.99))
        frame(0, 0.999)
        return torch.stack(rows).log()


def read_manifest(path: Path, limit: int) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[:limit] if limit else rows


def compute_log_probs(model: Any, rows: list[dict], batch: int) -> list[torch.Tensor]:
    import soundfile as sf

    from chunkasr.features import fbank

    out: list[torch.Tensor] = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch):
            feats = []
            for row in rows[start : start + batch]:
                path = Path(row["audio"])
                x, sr = sf.read(path if path.is_absolute() else REPO / path, dtype="float32")
                if x.ndim > 1:
                    x = x.mean(axis=1)
                if sr != 16000:
                    raise SystemExit(f"{path}: expected 16 kHz audio, got {sr} Hz")
                feats.append(fbank(torch.from_numpy(np.ascontiguousarray(x))))
            encoded, _ = model.encoder(feats, 64, 128, 128)
            out += [model.ctc(e).float() for e in encoded]
    return out


def run(
    decoder: CTCDecoder, logps: list[torch.Tensor], refs: list[str], vocab: Vocabulary
) -> tuple[ErrorRate, float, list[str]]:
    """Corpus WER, decode seconds and hypotheses of one decoder on one set."""
    rate = ErrorRate()
    hyps: list[str] = []
    seconds = 0.0
    for lp, ref in zip(logps, refs, strict=True):
        start = time.perf_counter()
        tokens = decoder(lp)
        seconds += time.perf_counter() - start
        hyp = normalize(vocab.decode([t.id for t in tokens]))
        rate.add(ref, hyp)
        hyps.append(hyp)
    return rate, seconds, hyps


def recognised(words: set[str], refs: list[str], hyps: list[str]) -> tuple[int, int, int]:
    """Occurrences of ``words`` in the references, how many the hypotheses have, and how many
    the hypotheses have beyond the references (false alarms); counted per utterance."""
    total = found = extra = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r = Counter(w for w in ref.split() if w in words)
        h = Counter(w for w in hyp.split() if w in words)
        total += sum(r.values())
        found += sum(min(c, h[w]) for w, c in r.items())
        extra += sum(max(c - r[w], 0) for w, c in h.items())
    return total, found, extra


def pick_hotwords(
    refs: list[str], hyps: list[str], count: int, min_len: int, tokenizer: PhraseTokenizer
) -> list[str]:
    """The words most often missing from the hypotheses (that the vocabulary can spell)."""
    missed: Counter[str] = Counter()
    for ref, hyp in zip(refs, hyps, strict=True):
        h = Counter(hyp.split())
        for w, c in Counter(ref.split()).items():
            if len(w) >= min_len and c > h[w]:
                missed[w] += c - h[w]
    words = []
    for w, _ in missed.most_common():
        try:
            tokenizer.encode(w)
        except ChunkAsrError:
            continue
        words.append(w)
        if len(words) == count:
            break
    return words


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, help="model directory (official layout)")
    ap.add_argument("--manifest", type=Path, action="append", default=[],
                    help="JSONL with audio/text; repeat; the first one is the tuning set")
    ap.add_argument("--limit", type=int, default=0, help="first N utterances per manifest")
    ap.add_argument("--batch", type=int, default=16, help="files per encoder call")
    ap.add_argument("--beam-size", type=int, default=8)
    ap.add_argument("--lm", type=Path, help="ARPA LM (else estimated from --lm-text)")
    ap.add_argument("--lm-text", type=Path, help="training text, one sentence a line")
    ap.add_argument("--lm-order", type=int, default=3)
    ap.add_argument("--lm-weights", default="0.3,0.5,0.8", help="grid, tuned on the first set")
    ap.add_argument("--word-scores", default="0,1,2", help="grid, tuned on the first set")
    ap.add_argument("--unk-score", type=float, default=DecodeOptions().unk_score)
    ap.add_argument("--hotwords", type=int, default=20, help="how many hotwords to pick")
    ap.add_argument("--hotword-min-len", type=int, default=4)
    ap.add_argument("--hotword-weight", type=float, default=1.5, help="bonus per piece")
    ap.add_argument("--synthetic-minutes", type=float, default=0.0,
                    help="also time the decoders on this much synthetic peaky log-probs")
    ap.add_argument("--vocab-size", type=int, default=5000, help="of the synthetic log-probs")
    ap.add_argument("--simulate", type=Path, metavar="BPE_MODEL",
                    help="no acoustic model: simulated log-probs of the reference text (checks "
                         "the decoders; the WERs say nothing about a real model)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    if not args.manifest and not args.synthetic_minutes:
        ap.error("give --model with --manifest, and/or --synthetic-minutes")
    if args.manifest and not (args.model or args.simulate):
        ap.error("--manifest needs --model or --simulate")
    report: dict = {}

    if args.synthetic_minutes:
        torch.set_num_threads(1)
        report["synthetic"] = synthetic_speed(
            args.synthetic_minutes, args.vocab_size, sorted({1, 4, args.beam_size})
        )
        print(json.dumps(report["synthetic"], indent=1), flush=True)
    if not args.manifest:
        return _finish(report, args.json)

    if args.simulate:
        sim = Simulator(args.simulate, seed=0)
        vocab = sim.vocab
    else:
        from chunkasr.model import load_model_dir

        model, _, vocab = load_model_dir(args.model)
    sets = []
    for path in args.manifest:
        rows = read_manifest(path, args.limit)
        start = time.perf_counter()
        if args.simulate:
            logps = [sim(normalize(r["text"])) for r in rows]
        else:
            logps = compute_log_probs(model, rows, args.batch)
        duration = sum(lp.shape[0] for lp in logps) / FRAME_RATE
        print(f"{path}: {len(rows)} utts, {duration / 60:.1f} min, log-probs in "
              f"{time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
        sets.append((path.stem, logps, [normalize(r["text"]) for r in rows], duration))
    torch.set_num_threads(1)  # decode speed is quoted for one thread

    lm_path = args.lm
    if lm_path is None and args.lm_text is not None:
        with args.lm_text.open(encoding="utf-8") as f:
            sentences = [normalize(line).split() for line in f if line.strip()]
        lm_path = Path(tempfile.mkdtemp()) / "lm.arpa"
        lm_path.write_text(estimate_kneser_ney(sentences, args.lm_order), encoding="utf-8")
        print(f"LM: {len(sentences)} sentences -> {lm_path}", file=sys.stderr)

    def evaluate(options: DecodeOptions, which: Sequence[int]) -> dict:
        decoder = CTCDecoder(options, vocab)
        out = {}
        for i in which:
            name, logps, refs, duration = sets[i]
            rate, seconds, hyps = run(decoder, logps, refs, vocab)
            out[name] = {**rate.summary(), "x_realtime": round(duration / max(seconds, 1e-9)),
                         "hyps": hyps}
        return out

    everything = range(len(sets))
    results: dict[str, dict] = {}
    beam = functools.partial(DecodeOptions, method="beam", beam_size=args.beam_size)
    results["greedy"] = evaluate(DecodeOptions(), everything)
    results[f"beam{args.beam_size}"] = evaluate(beam(), everything)
    if lm_path is not None:
        grid = []
        for a in floats(args.lm_weights):
            for b in floats(args.word_scores):
                opts = beam(lm_path=lm_path, lm_weight=a, word_score=b, unk_score=args.unk_score)
                wer = evaluate(opts, [0])[sets[0][0]]["wer"]
                grid.append((wer, a, b))
                print(f"  lm_weight {a} word_score {b}: {sets[0][0]} WER {wer}", file=sys.stderr)
        _, a, b = min(grid)
        report["lm"] = {"path": str(lm_path), "lm_weight": a, "word_score": b,
                        "grid": [{"wer": w, "lm_weight": x, "word_score": y} for w, x, y in grid]}
        opts = beam(lm_path=lm_path, lm_weight=a, word_score=b, unk_score=args.unk_score)
        results[f"beam{args.beam_size}+lm"] = evaluate(opts, everything)

    if args.hotwords:
        name, _, refs, _ = sets[0]
        words = pick_hotwords(refs, results["greedy"][name]["hyps"], args.hotwords,
                              args.hotword_min_len, PhraseTokenizer(vocab))
        opts = beam(hotwords=dict.fromkeys(words, args.hotword_weight))
        results[f"beam{args.beam_size}+hotwords"] = evaluate(opts, everything)
        chosen = set(words)
        effect = {}
        for i, (set_name, _, set_refs, _) in enumerate(sets):
            total, before, alarms_before = recognised(
                chosen, set_refs, results["greedy"][set_name]["hyps"])
            _, after, alarms_after = recognised(
                chosen, set_refs, results[f"beam{args.beam_size}+hotwords"][set_name]["hyps"])
            effect[set_name] = {"occurrences": total, "greedy_found": before,
                                "hotwords_found": after, "greedy_false_alarms": alarms_before,
                                "hotwords_false_alarms": alarms_after, "picked_here": i == 0}
        report["hotwords"] = {"words": words, "weight_per_piece": args.hotword_weight, **effect}

    for method, per_set in results.items():
        for set_name, res in per_set.items():
            res.pop("hyps")
            print(f"{method:>16} {set_name:>12}: WER {res['wer']:6.2f}  CER {res['cer']:6.2f}  "
                  f"decode {res['x_realtime']}x realtime")
    report["results"] = results
    report["sets"] = {name: {"utterances": len(refs), "minutes": round(d / 60, 2)}
                      for name, _, refs, d in sets}
    if "hotwords" in report:
        print(json.dumps(report["hotwords"], indent=1))
    return _finish(report, args.json)


def _finish(report: dict, path: Path | None) -> int:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
