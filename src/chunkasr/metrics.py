"""Word and character error rates by Levenshtein alignment.

``errors(ref, hyp)`` counts substitutions, deletions and insertions of a minimum-cost
alignment (all costs 1); :class:`ErrorRate` accumulates them over a test set. The rate is
total edits over total reference units, as in the usual corpus-level WER.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

__all__ = ["EditCounts", "ErrorRate", "alignment", "cer", "edit_counts", "wer"]


@dataclass(frozen=True)
class EditCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_len: int = 0

    @property
    def edits(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.ref_len + other.ref_len,
        )


def edit_counts(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> EditCounts:
    """Minimum edit alignment of ``hyp`` to ``ref``; ties prefer substitutions.

    Each DP cell holds (cost, subs, dels, ins) so the split is that of one optimal path.
    """
    n = len(ref)
    # prev[j]: alignment of ref[:i-1] with hyp[:j]
    prev = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, n + 1):
        r = ref[i - 1]
        cur = [(i, 0, i, 0)]
        for j in range(1, len(hyp) + 1):
            d = prev[j - 1]
            best = d if hyp[j - 1] == r else (d[0] + 1, d[1] + 1, d[2], d[3])
            up = prev[j]  # ref[i-1] deleted
            if up[0] + 1 < best[0]:
                best = (up[0] + 1, up[1], up[2] + 1, up[3])
            left = cur[j - 1]  # hyp[j-1] inserted
            if left[0] + 1 < best[0]:
                best = (left[0] + 1, left[1], left[2], left[3] + 1)
            cur.append(best)
        prev = cur
    _, subs, dels, ins = prev[-1]
    return EditCounts(subs, dels, ins, n)


def alignment(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> list[tuple[int | None, int | None]]:
    """One minimum edit alignment as (ref index, hyp index) pairs in order: a match or
    substitution pairs both, a deletion has hyp index None, an insertion ref index None.

    Its edits number ``edit_counts(ref, hyp).edits``; where paths tie, the backtrace prefers a
    match or substitution, then a deletion.
    """
    n, m = len(ref), len(hyp)
    cost = [list(range(m + 1))] + [[i] + [0] * m for i in range(1, n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])
            cost[i][j] = min(sub, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    out: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            i, j = i - 1, j - 1
            out.append((i, j))
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
            out.append((i, None))
        else:
            j -= 1
            out.append((None, j))
    return out[::-1]


def _words(text: str) -> list[str]:
    return text.split()


def _chars(text: str) -> list[str]:
    """Characters of the space-normalised text; spaces count as characters."""
    return list(" ".join(text.split()))


def wer(ref: str, hyp: str) -> float:
    c = edit_counts(_words(ref), _words(hyp))
    return c.edits / max(c.ref_len, 1)


def cer(ref: str, hyp: str) -> float:
    c = edit_counts(_chars(ref), _chars(hyp))
    return c.edits / max(c.ref_len, 1)


class ErrorRate:
    """Corpus-level WER and CER accumulated over (reference, hypothesis) pairs."""

    def __init__(self) -> None:
        self.words = EditCounts()
        self.chars = EditCounts()
        self.utterances = 0
        self.wrong_utterances = 0

    def add(self, ref: str, hyp: str) -> EditCounts:
        w = edit_counts(_words(ref), _words(hyp))
        self.words += w
        self.chars += edit_counts(_chars(ref), _chars(hyp))
        self.utterances += 1
        self.wrong_utterances += w.edits > 0
        return w

    @property
    def wer(self) -> float:
        return self.words.edits / max(self.words.ref_len, 1)

    @property
    def cer(self) -> float:
        return self.chars.edits / max(self.chars.ref_len, 1)

    def summary(self) -> dict[str, float | int]:
        w = self.words
        return {
            "wer": round(100 * self.wer, 3),
            "cer": round(100 * self.cer, 3),
            "words": w.ref_len,
            "sub": w.substitutions,
            "del": w.deletions,
            "ins": w.insertions,
            "utterances": self.utterances,
            "sentence_error": round(100 * self.wrong_utterances / max(self.utterances, 1), 2),
        }
