"""Character-level error profile of a model on one voice of a corpus split (greedy decoding).

    python scripts/char_confusions.py --model models/en-small --manifest data/corpus/test_voices.jsonl \
        --voice flite:rms --limit 40

Aligns each reference and hypothesis by characters (Levenshtein, spaces included) and prints the
error rate per reference character and the most frequent confusions (``a>e`` substitution,
``e>-`` deletion, ``->h`` insertion; a blank before or after ``>`` is a space). It shows which
sounds a voice loses, e.g. plosives or spurious ``h`` (docs/training.md, session 13).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from chunkasr.api import load_model  # noqa: E402
from chunkasr.decoding import DecodeOptions  # noqa: E402
from chunkasr.metrics import alignment  # noqa: E402


def align(ref: str, hyp: str) -> list[tuple[str, str]]:
    """(reference char, hypothesis char) pairs of a minimum edit alignment; '-' marks a gap."""
    return [
        (ref[i] if i is not None else "-", hyp[j] if j is not None else "-") for i, j in alignment(ref, hyp)
    ]


def profile(pairs: list[tuple[str, str]]) -> tuple[dict[str, float], collections.Counter[tuple[str, str]]]:
    """Error rate per reference character and the count of each confusion."""
    seen: collections.Counter[str] = collections.Counter()
    wrong: collections.Counter[str] = collections.Counter()
    confusions: collections.Counter[tuple[str, str]] = collections.Counter()
    for a, b in pairs:
        if a != "-":
            seen[a] += 1
        if a != b:
            confusions[(a, b)] += 1
            if a != "-":
                wrong[a] += 1
    return {c: wrong[c] / n for c, n in seen.items()}, confusions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/en-small")
    ap.add_argument("--manifest", required=True, help="jsonl with audio, text and voice")
    ap.add_argument("--voice", default=None, help="only rows of this voice (substring match)")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args(argv)
    rows = [json.loads(line) for line in Path(a.manifest).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if a.voice is None or a.voice in r["voice"]][: a.limit]
    if not rows:
        print(f"error: {a.manifest}: no rows for voice {a.voice!r}", file=sys.stderr)
        return 1
    model = load_model(a.model)
    hyps = [t.text for t in model.transcribe([r["audio"] for r in rows], decode_options=DecodeOptions())]
    pairs = [p for r, h in zip(rows, hyps, strict=True) for p in align(r["text"], h)]
    rates, confusions = profile(pairs)
    worst = sorted(rates.items(), key=lambda x: -x[1])[: a.top]
    print(f"{a.voice or 'all voices'}: {len(rows)} utterances, greedy")
    print("  error rate by reference char: " + ", ".join(f"{c!r} {r:.2f}" for c, r in worst))
    print(
        "  top confusions (ref>hyp): "
        + ", ".join(f"{x}>{y} {n}" for (x, y), n in confusions.most_common(a.top))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
