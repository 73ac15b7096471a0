"""How much a model's greedy output changes when the features are distorted like another voice.

    python scripts/voice_sensitivity.py --model models/en-small \
        --set awb=data/corpus/dev.jsonl:flite:awb --set rms=data/corpus/test_voices.jsonl:flite:rms \
        --limit 30 --distortions none,smear3,smear5,breath-15,breath-10,warp0.9,warp1.1

Each distortion is one of the feature functions of :mod:`chunkasr.training`, applied to the
raw fbank of every clip: ``smearN`` (:func:`time_smear`, N frames), ``breath-D``
(:func:`breath_noise`, D dB below each frame's power), ``warpA`` (:func:`freq_warp`, formants
times A), ``liftK`` (:func:`cepstral_smooth`, the spectral envelope of K cepstral
coefficients) and ``cmn`` (each clip's mean feature vector replaced by the model's CMVN mean: a
fixed channel and spectral tilt). For each set and distortion it prints the greedy WER (full
context), the error rate of the stop consonants and ``h`` insertions (char alignment as in
``scripts/char_confusions.py``). A model trained with an augmentation should lose less under
it; a held-out voice whose profile one distortion reproduces points at what that voice does
differently (docs/training.md, sessions 14 and 15).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from char_confusions import align, profile  # noqa: E402

from chunkasr.decoding import ctc_greedy_search  # noqa: E402
from chunkasr.features import fbank  # noqa: E402
from chunkasr.metrics import wer  # noqa: E402
from chunkasr.model import load_model_dir  # noqa: E402
from chunkasr.training import breath_noise, cepstral_smooth, freq_warp, time_smear  # noqa: E402
from chunkasr.vocab import Vocabulary  # noqa: E402

STOPS = "pbtdkg"


def distortion(
    name: str, mean: torch.Tensor | None = None
) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """The feature distortion called ``name``: a function of (features, clip index).

    ``mean`` (80 values) is the target of ``cmn``: the model's CMVN mean, by default zeros.
    """
    try:
        if name == "none":
            return lambda f, i: f
        if name == "cmn":
            target = torch.zeros(80) if mean is None else mean
            return lambda f, i: f - f.mean(0) + target.to(f.dtype)
        if name.startswith("lift"):
            keep = int(name[4:])
            cepstral_smooth(torch.zeros(1, 80), keep)  # reject a bad order now, not per clip
            return lambda f, i: cepstral_smooth(f, keep)
        if name.startswith("smear"):
            width = int(name[5:])
            time_smear(torch.zeros(1, 1), width)  # reject an even width now, not per clip
            return lambda f, i: time_smear(f, width)
        if name.startswith("breath"):
            level = float(name[6:])
            if level >= 0:
                raise ValueError
            return lambda f, i: breath_noise(f, level, seed=i)
        if name.startswith("warp"):
            alpha = float(name[4:])
            if not 0.5 <= alpha <= 2.0:
                raise ValueError
            return lambda f, i: freq_warp(f, alpha)
    except ValueError:
        pass
    raise SystemExit(f"error: unknown distortion {name!r} (none, smearN, breath-D, warpA, liftK, cmn)")


def read_set(spec: str, limit: int) -> tuple[str, list[dict]]:
    """``NAME=MANIFEST:VOICE`` -> (name, the first ``limit`` rows of that voice)."""
    name, sep, rest = spec.partition("=")
    manifest, _, voice = rest.partition(":")
    if not sep or not name or not manifest:
        raise SystemExit(f"error: --set {spec!r}: expected NAME=MANIFEST[:VOICE]")
    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if voice in r.get("voice", "")][:limit]
    if not rows:
        raise SystemExit(f"error: {manifest}: no rows for voice {voice!r}")
    return name, rows


def read_16k(path: str) -> np.ndarray:
    """The first channel of a 16 kHz audio file (the corpus's format; no resampling here)."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != 16000:
        raise SystemExit(f"error: {path}: {sr} Hz audio, expected 16000")
    return x[:, 0]


def score(refs: list[str], hyps: list[str]) -> tuple[float, float, int]:
    """(WER, error rate of the stop consonants, number of inserted 'h') over a set of clips."""
    words = sum(len(r.split()) for r in refs)
    w = sum(wer(r, h) * len(r.split()) for r, h in zip(refs, hyps, strict=True)) / max(1, words)
    pairs = [p for r, h in zip(refs, hyps, strict=True) for p in align(r, h)]
    rates, confusions = profile(pairs)
    seen = {c: sum(1 for a, _ in pairs if a == c) for c in STOPS}
    stops = sum(rates.get(c, 0.0) * n for c, n in seen.items()) / max(1, sum(seen.values()))
    return w, stops, confusions[("-", "h")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/en-small", help="official-layout model directory")
    ap.add_argument("--set", action="append", required=True, metavar="NAME=MANIFEST[:VOICE]",
                    help="clips of one voice (a substring of the voice field); repeatable")  # fmt: skip
    ap.add_argument("--limit", type=int, default=30, help="clips per set")
    ap.add_argument("--distortions", default="none,smear3,smear5,breath-15,breath-10,warp0.9,warp1.1")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    names = a.distortions.split(",")
    for n in names:  # a typo fails before the model loads
        distortion(n)
    sets = [read_set(s, a.limit) for s in a.set]
    model, _, _ = load_model_dir(a.model)
    funcs = {n: distortion(n, model.encoder.global_cmvn.mean) for n in names}
    model.eval()
    vocab = Vocabulary.from_file(str(Path(a.model, "vocab.txt")))
    print(f"{'set':10s} {'distortion':11s} {'WER':>6s} {'stops':>6s} {'+h':>4s}")
    for name, rows in sets:
        feats = [fbank(torch.from_numpy(read_16k(r["audio"]))) for r in rows]
        refs = [r["text"] for r in rows]
        for dname, fn in funcs.items():
            with torch.no_grad():
                outs, _ = model.encoder([fn(f, i) for i, f in enumerate(feats)], -1, 0, 0)
                hyps = [vocab.decode([t.id for t in ctc_greedy_search(model.ctc(o))]) for o in outs]
            w, stops, ins_h = score(refs, hyps)
            print(f"{name:10s} {dname:11s} {100 * w:6.1f} {stops:6.2f} {ins_h:4d}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
