#!/usr/bin/env python
"""Estimate a word n-gram LM (interpolated Kneser-Ney, ARPA format) from a text file.

    python scripts/make_arpa.py train.txt lm.arpa --order 3
    python scripts/make_arpa.py data/corpus/train.jsonl lm.arpa.gz  # JSONL: "text"
    python scripts/make_arpa.py a.txt b.jsonl lm.arpa.gz --min-count 2  # several inputs, pruned

Text is normalised like the bundled model's training text (lowercase, in-word apostrophes)
unless --keep-case; one sentence per line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from chunkasr.lm import ArpaLM, estimate_kneser_ney


def normalize(text: str) -> str:
    try:
        from chunkasr.tokenizer import normalize_text
    except ImportError:  # keep working without the training helpers
        return " ".join(text.lower().split())
    return normalize_text(text)


def sentences(path: Path, keep_case: bool) -> Iterator[list[str]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if path.suffix == ".jsonl":
                line = json.loads(line).get("text", "") if line.strip() else ""
            text = " ".join(line.split()) if keep_case else normalize(line)
            if text:
                yield text.split()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("text", type=Path, nargs="+",
                    help="text files (one sentence a line) or JSONL with 'text'")  # fmt: skip
    ap.add_argument("output", type=Path, help="ARPA file to write (.gz compresses)")
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--min-count", type=int, default=1,
                    help="leave out top-order n-grams seen fewer times (2: drop singletons)")  # fmt: skip
    ap.add_argument("--keep-case", action="store_true", help="do not normalise the text")
    args = ap.parse_args(argv)
    text = (words for path in args.text for words in sentences(path, args.keep_case))
    arpa = estimate_kneser_ney(text, args.order, args.min_count)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    if args.output.suffix == ".gz":
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            f.write(arpa)
    else:
        tmp.write_text(arpa, encoding="utf-8")
    tmp.replace(args.output)
    lm = ArpaLM.from_file(args.output)  # parse back: never leave an unreadable model
    print(f"{args.output}: order {lm.order}, {len(lm.vocabulary())} words", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
