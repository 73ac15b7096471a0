#!/usr/bin/env python3
"""Build a long recording with known utterance times, for timestamp/long-form tests.

Held-out WordNet text (never in the training split) is spoken by a held-out voice
(never in training); utterances are joined with random pauses.  Writes a 16 kHz
mono 16-bit WAV and a JSON list of ``{"start": s, "end": s, "text": str}`` per
utterance, where start/end are the speech boundaries (silence trimmed at -40 dB).

    python scripts/make_longform.py --seconds 150 --out data/longform/long.wav
    python scripts/make_longform.py --single 5 --out examples/hello.wav

``--single S`` writes one utterance of about S seconds instead (reference JSON has
one entry).  The reference path defaults to the wav path with ``.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_corpus as mc  # noqa: E402


def heldout_sentences() -> list[str]:
    return sorted(s for s in mc.load_wordnet() if mc.text_split(s) == "heldout")


def speak(text: str, voice: str, rate: float) -> np.ndarray:
    x = mc.trim(mc.tts(text, voice, rate, 50))
    peak = float(np.abs(x).max()) or 1.0
    return (x / peak * 0.7).astype(np.float32)


def build_long(
    sentences: list[str], voice: str, seconds: float, rng: random.Random, rate: float
) -> tuple[np.ndarray, list[dict[str, object]]]:
    order = list(sentences)
    rng.shuffle(order)
    parts: list[np.ndarray] = []
    refs: list[dict[str, object]] = []
    t = rng.uniform(0.3, 1.0)
    parts.append(np.zeros(int(t * mc.SR), np.float32))
    for text in order:
        if t >= seconds:
            break
        if not 4 <= len(text.split()) <= 30:
            continue
        x = speak(text, voice, rate)
        refs.append({"start": round(t, 3), "end": round(t + len(x) / mc.SR, 3), "text": text})
        pause = rng.uniform(0.3, 1.5)
        parts += [x, np.zeros(int(pause * mc.SR), np.float32)]
        t += (len(x) + int(pause * mc.SR)) / mc.SR
    return np.concatenate(parts), refs


def build_single(
    sentences: list[str], voice: str, seconds: float, rng: random.Random, rate: float
) -> tuple[np.ndarray, list[dict[str, object]]]:
    words = max(3, round(seconds * 2.6))  # ~2.6 words/s at the default rate
    cands = [s for s in sentences if abs(len(s.split()) - words) <= 2]
    text = rng.choice(cands)
    x = speak(text, voice, rate)
    lead, tail = 0.3, 0.3
    audio = np.concatenate(
        [np.zeros(int(lead * mc.SR), np.float32), x, np.zeros(int(tail * mc.SR), np.float32)]
    )
    return audio, [{"start": lead, "end": round(lead + len(x) / mc.SR, 3), "text": text}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--ref", type=Path, help="reference JSON (default: OUT with .json)")
    ap.add_argument("--seconds", type=float, default=150.0, help="length of the long recording")
    ap.add_argument("--single", type=float, help="one utterance of about this many seconds")
    ap.add_argument("--voice", default=mc.HELDOUT_ESPEAK, choices=mc.HELDOUT_VOICES)
    ap.add_argument("--rate", type=float, default=1.0, help="relative speaking rate")
    ap.add_argument("--noise-db", type=float, default=-60.0, help="background noise vs. peak")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    sentences = heldout_sentences()
    if args.single:
        audio, refs = build_single(sentences, args.voice, args.single, rng, args.rate)
    else:
        audio, refs = build_long(sentences, args.voice, args.seconds, rng, args.rate)
    noise = np.random.default_rng(args.seed).standard_normal(len(audio)).astype(np.float32)
    audio = np.clip(audio + noise * 0.7 * 10 ** (args.noise_db / 20), -1, 1)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    mc.write_wav(args.out, audio)
    ref = args.ref or args.out.with_suffix(".json")
    ref.write_text(json.dumps(refs, indent=1) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(audio) / mc.SR:.1f} s, {len(refs)} utterances, voice {args.voice}")
    print(f"{ref}: reference")


if __name__ == "__main__":
    main()
