#!/usr/bin/env python
"""How close word timestamps come to the true speech starts of a long recording.

    python scripts/make_longform.py --seconds 600 --seed 21 --out exp/ts/long.wav
    python scripts/eval_timestamps.py exp/ts/long.wav [--model models/en-small] [--json out.json]

The recording is a concatenation of TTS utterances whose start times are known (the reference
JSON that ``make_longform.py`` writes next to the WAV: ``[{"start", "end", "text"}, ...]``).
The transcript's words are aligned to the reference words (minimum edit distance over the
whole text); for each utterance, the hypothesis word aligned to its first word (a match or a
substitution) gives the predicted start. Reported: the median, mean and 90th percentile of
|reference start - predicted start|, how many utterances had an aligned first word, and WER.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

import chunkasr  # noqa: E402
from chunkasr.metrics import alignment, wer  # noqa: E402


def align(ref: list[str], hyp: list[str]) -> list[int | None]:
    """For each reference position, the hypothesis index it is matched or substituted with."""
    out: list[int | None] = [None] * len(ref)
    for i, j in alignment(ref, hyp):
        if i is not None:
            out[i] = j
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("wav", type=Path)
    ap.add_argument("--ref", type=Path, help="reference JSON (default: WAV with .json)")
    ap.add_argument("--model", help="model directory or hub id (default: the bundled model)")
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--json", type=Path, help="write the summary here")
    args = ap.parse_args()
    refs = json.loads((args.ref or args.wav.with_suffix(".json")).read_text())
    model = chunkasr.load_model(args.model, device="cpu", dtype=args.dtype)
    (t,) = list(model.transcribe(args.wav))
    words = [w for s in t.segments for w in s.words]
    ref_words: list[str] = []
    first: list[int] = []  # index in ref_words of each utterance's first word
    for r in refs:
        first.append(len(ref_words))
        ref_words += r["text"].split()
    hyp_words = [w.word.strip().lower() for w in words]
    link = align(ref_words, hyp_words)
    errors = []
    for r, k in zip(refs, first, strict=True):
        j = link[k]
        if j is not None:
            errors.append(abs(words[j].start - r["start"]))
    summary = {
        "wav": str(args.wav),
        "audio_s": round(t.duration, 1),
        "utterances": len(refs),
        "aligned": len(errors),
        "median_ms": round(1000 * statistics.median(errors), 1) if errors else None,
        "mean_ms": round(1000 * statistics.fmean(errors), 1) if errors else None,
        "p90_ms": round(1000 * sorted(errors)[int(0.9 * (len(errors) - 1))], 1) if errors else None,
        "wer": round(wer(" ".join(ref_words), " ".join(hyp_words)), 4),
    }
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
