#!/usr/bin/env python
"""Out-of-domain text check: everyday sentences, spoken by training and held-out voices.

The corpus text is WordNet glosses; real speech is not. ``scripts/eval_text/everyday.txt``
holds sentences written for this project (conversation, directions, news-like statements),
never trained on. This speaks each one twice and writes two more corpus splits::

    data/corpus/everyday_train_voices.jsonl   a training voice per sentence (text shift only)
    data/corpus/everyday_heldout_voices.jsonl the two held-out voices, alternating

    python scripts/make_everyday_eval.py
    python scripts/evaluate.py --model models/en-small --lang models/en-small \\
        --splits everyday_train_voices,everyday_heldout_voices

Rate, pitch, level and noise are drawn per utterance as for the other splits; deterministic.
"""

from __future__ import annotations

import argparse
import random
import sys
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEXT = REPO / "scripts" / "eval_text" / "everyday.txt"
sys.path.insert(0, str(REPO / "scripts"))

import make_corpus as mc  # noqa: E402  (voices, utterance plans and synthesis of the corpus)


def read_sentences(path: Path) -> list[str]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        t = mc.normalize(line)
        if t is None:
            raise SystemExit(f"{path}:{n}: not speakable as written (digits, symbols or acronyms)")
        out.append(t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    sentences = read_sentences(TEXT)
    plans = {"everyday_train_voices": [], "everyday_heldout_voices": []}
    for i, text in enumerate(sentences):
        r = random.Random(f"{args.seed}-tv-{i}")
        plans["everyday_train_voices"].append(
            mc._params(f"everyday_tv_{i:04d}", text, mc.pick_train_voice(r), r)
        )
        r = random.Random(f"{args.seed}-hv-{i}")
        voice = mc.HELDOUT_VOICES[i % 2]
        plans["everyday_heldout_voices"].append(mc._params(f"everyday_hv_{i:04d}", text, voice, r))
    corpus = REPO / "data" / "corpus"
    with Pool(args.jobs) as pool:
        for split, utts in plans.items():
            rows = mc.synthesize(pool, utts, split)
            mc.write_manifest(corpus / f"{split}.jsonl", rows)
            secs = sum(float(r["duration"]) for r in rows)
            print(f"[{split}] {len(rows)} utts, {secs / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
