#!/usr/bin/env python
"""WER/CER of a model on the committed clips (examples/ and tests/data/heldout_clip.wav).

    python scripts/measure_examples.py [--model models/en-small]

Prints one JSON line per clip; the numbers quoted in models/en-small/README.md and the
regression bars of tests/test_bundled_model.py come from here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import chunkasr  # noqa: E402
from chunkasr.metrics import cer, wer  # noqa: E402


def reference(wav: Path) -> str | None:
    if wav.with_suffix(".json").exists():  # long-form reference: [{"start", "end", "text"}, ...]
        return " ".join(r["text"] for r in json.loads(wav.with_suffix(".json").read_text()))
    if wav.with_suffix(".txt").exists():
        return wav.with_suffix(".txt").read_text().strip()
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=None, help="model directory or name (default: the bundled one)")
    ap.add_argument("--dtype", default="fp32")
    args = ap.parse_args()
    model = chunkasr.load_model(args.model, device="cpu", dtype=args.dtype)
    clips = sorted((ROOT / "examples").glob("*.wav")) + [ROOT / "tests" / "data" / "heldout_clip.wav"]
    for wav in clips:
        ref = reference(wav)
        if ref is None:
            continue
        (t,) = list(model.transcribe(wav))
        row = {"clip": str(wav.relative_to(ROOT)), "wer": round(wer(ref, t.text), 3),
               "cer": round(cer(ref, t.text), 3), "text": t.text}  # fmt: skip
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
