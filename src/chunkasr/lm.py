"""Word n-gram language models in ARPA format: a pure-Python reader/scorer and a small estimator.

Why our own code: the beam search scores whole words (BPE pieces joined at ``▁`` boundaries)
inside its own loop so it keeps CTC spike frames; a dictionary lookup per (context, word)
with a cache is fast enough there, and it avoids a compiled dependency (KenLM/flashlight).

Scores are natural logs (ARPA files store log10). Backoff follows the ARPA convention:
``P(w | h) = P*(w | h)`` if the n-gram is listed, else ``bow(h) * P(w | h[1:])``.
A word missing from the unigrams is scored as ``<unk>`` (or ``UNK_LOG10`` if the file has none).
"""

from __future__ import annotations

import functools
import gzip
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from .errors import ModelError

__all__ = ["ArpaLM", "estimate_kneser_ney", "BOS", "EOS", "UNK"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LN10 = math.log(10.0)
UNK_LOG10 = -100.0  # KenLM's convention for a model without <unk>
State = tuple[str, ...]


class ArpaLM:
    """A backoff n-gram model; ``score(state, word)`` -> (ln P(word | state), next state)."""

    def __init__(self, order: int, entries: dict[State, tuple[float, float]]) -> None:
        if order < 1:
            raise ValueError(f"n-gram order must be >= 1, got {order}")
        self.order = order
        self._entries = entries  # n-gram -> (log10 prob, log10 backoff)
        unk = entries.get((UNK,))
        self._unk_log10 = unk[0] if unk is not None else UNK_LOG10
        self._cache: dict[tuple[State, str], tuple[float, State]] = {}
        self._prefixes: frozenset[str] | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> ArpaLM:
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
                return cls.from_lines(f, str(path))
        except (OSError, UnicodeDecodeError) as e:
            raise ModelError(f"{path}: cannot read language model: {e}") from e

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = "<arpa>") -> ArpaLM:
        declared: dict[int, int] = {}
        entries: dict[State, tuple[float, float]] = {}
        section = -1  # -1 before \data\, 0 in \data\, n in \n-grams:
        seen: Counter[int] = Counter()
        for lineno, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line:
                continue
            if line == "\\data\\":
                section = 0
            elif line == "\\end\\":
                break
            elif line.startswith("\\") and line.endswith("-grams:"):
                try:
                    section = int(line[1:-7])
                except ValueError as e:
                    raise ModelError(f"{source}:{lineno}: bad section header {line!r}") from e
                if section not in declared:
                    raise ModelError(f"{source}:{lineno}: {section}-grams not declared in \\data\\")
            elif section == 0:
                if not line.startswith("ngram "):
                    raise ModelError(f"{source}:{lineno}: expected 'ngram N=count', got {line!r}")
                size_order, _, count = line[6:].partition("=")
                try:
                    declared[int(size_order)] = int(count)
                except ValueError as e:
                    raise ModelError(f"{source}:{lineno}: bad ngram count {line!r}") from e
            elif section > 0:
                parts = line.split()
                if len(parts) not in (section + 1, section + 2):
                    raise ModelError(f"{source}:{lineno}: malformed {section}-gram line {line!r}")
                try:
                    prob = float(parts[0])
                    bow = float(parts[section + 1]) if len(parts) == section + 2 else 0.0
                except ValueError as e:
                    raise ModelError(f"{source}:{lineno}: bad number in {line!r}") from e
                entries[tuple(parts[1 : section + 1])] = (prob, bow)
                seen[section] += 1
        if not declared:
            raise ModelError(f"{source}: not an ARPA file (no \\data\\ section)")
        for n, expected in declared.items():
            if seen[n] != expected:
                raise ModelError(f"{source}: declares {expected} {n}-grams, found {seen[n]}")
        return cls(max(declared), entries)

    def begin(self) -> State:
        """The state at the start of a sentence."""
        return (BOS,)

    def log10_prob(self, context: State, word: str) -> float:
        """log10 P(word | context) with ARPA backoff (context: most recent word last)."""
        entries = self._entries
        backoff = 0.0
        context = context[max(0, len(context) - self.order + 1) :] if self.order > 1 else ()
        for start in range(len(context) + 1):
            ctx = context[start:]
            hit = entries.get(ctx + (word,))
            if hit is not None:
                return backoff + hit[0]
            if ctx:
                bow = entries.get(ctx)
                if bow is not None:
                    backoff += bow[1]
        return backoff + self._unk_log10

    def score(self, state: State, word: str) -> tuple[float, State]:
        """(ln P(word | state), next state); cached, since beams revisit the same contexts."""
        key = (state, word)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        logp = self.log10_prob(state, word) * LN10
        nxt = (state + (word,))[-(self.order - 1) :] if self.order > 1 else ()
        # Shorten the state to the longest suffix the model knows: an unknown context has
        # backoff 1 and no extensions, so this changes no score and lets beams share states.
        while nxt and nxt not in self._entries:
            nxt = nxt[1:]
        if len(self._cache) > 1_000_000:
            self._cache.clear()
        self._cache[key] = (logp, nxt)
        return logp, nxt

    @functools.cached_property
    def case(self) -> str | None:
        """"lower" or "upper" if every cased word is in that case, else None."""
        words = [w for w in self.vocabulary() if w not in (BOS, EOS, UNK)]
        if not any(ch.isupper() for w in words for ch in w):
            return "lower"
        if not any(ch.islower() for w in words for ch in w):
            return "upper"
        return None

    def has_word(self, word: str) -> bool:
        return (word,) in self._entries and word not in (BOS, EOS, UNK)

    def word_prefixes(self) -> frozenset[str]:
        """Every prefix of every known word (the empty string included), for early OOV checks."""
        if self._prefixes is None:
            self._prefixes = frozenset(
                w[:i] for w in self.vocabulary() if w not in (BOS, EOS, UNK) for i in range(len(w) + 1)
            )
        return self._prefixes

    def vocabulary(self) -> list[str]:
        return [k[0] for k in self._entries if len(k) == 1]

    def contexts(self) -> list[State]:
        """Every n-gram that can serve as a context (orders 1 .. order-1), plus ``()``."""
        return [()] + [k for k in self._entries if len(k) < self.order]


def estimate_kneser_ney(sentences: Iterable[list[str]], order: int = 3, min_count: int = 1) -> str:
    """Interpolated Kneser-Ney estimate of an ``order``-gram model, as ARPA text.

    Sentences are padded with one ``<s>`` and one ``</s>``. The highest order uses raw counts,
    lower orders continuation counts (distinct left neighbours), except n-grams starting with
    ``<s>``, which nothing precedes, so they keep raw counts. One absolute discount per order,
    ``D = n1 / (n1 + 2 n2)`` (Ney et al. 1994). The unigrams interpolate with a uniform
    distribution over the vocabulary plus ``<unk>``, so ``<unk>`` gets exactly that share.
    Written as a backoff model, ``bow(h)`` is the interpolation weight ``gamma(h)``, which makes
    every context's distribution sum to 1.

    ``min_count > 1`` prunes the highest order: n-grams seen fewer times are left out and their
    contexts' backoff weights are recomputed so that each distribution still sums to 1. The
    lower orders are estimated from the full counts either way. Most of a large model's size is
    top-order n-grams seen once, so ``min_count=2`` shrinks it several times over.
    """
    if order < 1:
        raise ValueError(f"n-gram order must be >= 1, got {order}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    raw: list[Counter[State]] = [Counter() for _ in range(order + 1)]
    for words in sentences:
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                raw[n][tuple(padded[i : i + n])] += 1
    if not raw[1]:
        raise ValueError("no text to estimate a language model from")

    counts: list[dict[State, int]] = [{} for _ in range(order + 1)]
    counts[order] = dict(raw[order])
    for n in range(order - 1, 0, -1):
        left: Counter[State] = Counter(g[1:] for g in raw[n + 1])  # distinct left neighbours
        counts[n] = {g: (c if g[0] == BOS else left[g]) for g, c in raw[n].items()}
    counts[1].pop((BOS,), None)  # never predicted; listed with log10 prob -99 below
    counts[1].setdefault((UNK,), 0)

    discounts = [0.0] * (order + 1)
    for n in range(1, order + 1):
        freq = Counter(c for c in counts[n].values() if c in (1, 2))
        n1, n2 = freq[1], freq[2]
        discounts[n] = n1 / (n1 + 2 * n2) if n1 and n2 else 0.5

    probs: list[dict[State, float]] = [{} for _ in range(order + 1)]
    gammas: list[dict[State, float]] = [{} for _ in range(order + 1)]
    for n in range(1, order + 1):
        totals: dict[State, int] = defaultdict(int)
        types: dict[State, int] = defaultdict(int)
        for g, c in counts[n].items():
            totals[g[:-1]] += c
            if c > 0:
                types[g[:-1]] += 1
        d = discounts[n]
        for h, total in totals.items():
            gammas[n][h] = d * types[h] / total if total else 1.0
        uniform = 1.0 / len(counts[1])
        for g, c in counts[n].items():
            h = g[:-1]
            total = totals[h]
            own = max(c - d, 0.0) / total if total else 0.0
            lower = probs[n - 1][g[1:]] if n > 1 else uniform
            probs[n][g] = own + gammas[n][h] * lower
    if min_count > 1 and order > 1:
        _prune_top_order(probs, gammas, raw[order], order, min_count)

    lines = ["\\data\\"]
    sizes = [len(probs[1]) + 1] + [len(probs[n]) for n in range(2, order + 1)]
    lines += [f"ngram {n}={size}" for n, size in enumerate(sizes, 1)]
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        rows = sorted(probs[n].items())
        if n == 1:
            rows = [((BOS,), 0.0), *rows]
        for g, p in rows:
            logp = -99.0 if g == (BOS,) else math.log10(p)
            text = f"{logp:.7f}\t{' '.join(g)}"
            gamma = gammas[n + 1].get(g) if n < order else None
            if gamma is not None:
                text += f"\t{math.log10(gamma) if gamma > 0 else -99.0:.7f}"
            lines.append(text)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def _prune_top_order(
    probs: list[dict[State, float]],
    gammas: list[dict[State, float]],
    raw: Counter[State],
    order: int,
    min_count: int,
) -> None:
    """Drop top-order n-grams seen fewer than ``min_count`` times; renormalise their contexts.

    A dropped word w after context h now backs off: P(w|h) = bow(h) P_lower(w|h'). With K the
    kept words of h, bow(h) = (1 - sum_K P(w|h)) / (1 - sum_K P_lower(w|h')) restores the sum 1.
    """
    kept = {g: p for g, p in probs[order].items() if raw[g] >= min_count}
    mass: dict[State, float] = defaultdict(float)
    mass_lower: dict[State, float] = defaultdict(float)
    for g, p in kept.items():
        mass[g[:-1]] += p
        mass_lower[g[:-1]] += probs[order - 1][g[1:]]
    for h in gammas[order]:
        free = 1.0 - mass_lower[h]
        gammas[order][h] = max(1.0 - mass[h], 0.0) / free if free > 1e-12 else 0.0
    probs[order] = kept
