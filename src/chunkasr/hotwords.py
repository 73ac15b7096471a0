"""Hotword (contextual) biasing: phrases -> BPE piece ids -> a trie walked by the beam search.

A hypothesis earns ``weight`` (natural-log units) for every piece that extends a match of a
phrase, as soon as the piece is emitted, so partial matches compete in the beam while they grow.
A match only counts once the phrase ends on a word boundary (the next piece starts a word, or
the utterance ends); when a match fails, its whole partial bonus is taken back, so a failed
partial match gains nothing. Completed phrases keep their bonus.

Simplification: after a failure the walk restarts from the current piece only (no
Aho-Corasick suffix links); phrases start at word boundaries, so the only matches this misses
are a phrase starting inside another, failed phrase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .vocab import WORD_MARK, Vocabulary

__all__ = [
    "DEFAULT_HOTWORD_WEIGHT",
    "ContextGraph",
    "PhraseTokenizer",
    "parse_hotwords",
    "read_hotwords_file",
]

DEFAULT_HOTWORD_WEIGHT = 2.0  # bonus per matched piece, in natural-log units


def _parse_item(item: str, default_weight: float, where: str) -> tuple[str, float]:
    phrase, sep, tail = item.rpartition(":")
    weight = default_weight
    if sep:
        try:
            weight = float(tail)
        except ValueError:
            phrase = item  # a colon inside the phrase, no weight
    else:
        phrase = item
    phrase = " ".join(phrase.split())
    if not phrase:
        raise ConfigError(f"{where}: empty hotword in {item!r}")
    if not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"{where}: hotword weight must be finite and >= 0, got {item!r}")
    return phrase, weight


def parse_hotwords(spec: str, default_weight: float = DEFAULT_HOTWORD_WEIGHT) -> dict[str, float]:
    """``"word:weight,other phrase:2.5,plain"`` -> ``{phrase: weight}`` (default weight if none)."""
    out: dict[str, float] = {}
    for item in spec.split(","):
        if item.strip():
            phrase, weight = _parse_item(item, default_weight, "hotwords")
            out[phrase] = weight
    return out


def read_hotwords_file(
    path: str | Path, default_weight: float = DEFAULT_HOTWORD_WEIGHT
) -> dict[str, float]:
    """One ``phrase[:weight]`` per line; blank lines and ``#`` comments are ignored."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read hotwords: {e}") from e
    out: dict[str, float] = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            phrase, weight = _parse_item(line, default_weight, f"{path}:{n}")
            out[phrase] = weight
    return out


class PhraseTokenizer:
    """Text -> piece ids of ``vocab``; each word starts with ``▁``.

    ``encode``: with a sentencepiece model, its own segmentation (what the acoustic model was
    trained on). Without one, BPE merges replayed from the vocabulary order: starting from
    characters, repeatedly join the adjacent pair whose joined piece has the lowest id.
    ``vocab.txt`` keeps sentencepiece's piece order, which for BPE models is the merge order,
    so this is sentencepiece BPE exactly (checked on every word of the bundled model's
    training text); for unigram models it is an approximation.
    ``alternatives`` adds the greedy longest match over the pieces, a split a CTC model may
    emit too; the hotword trie accepts any of them.
    Text is lower- or upper-cased when the vocabulary has only one case.
    """

    def __init__(self, vocab: Vocabulary, bpe_model: str | Path | None = None) -> None:
        self._ids = {tok: i for i, tok in enumerate(vocab.tokens) if not _is_special(tok)}
        self._longest = max((len(t) for t in self._ids), default=1)
        letters = "".join(self._ids)
        self._case = (
            str.lower if not any(ch.isupper() for ch in letters)
            else str.upper if not any(ch.islower() for ch in letters)
            else None
        )
        self._sp: Any = None
        if bpe_model is not None:
            import sentencepiece as spm

            try:
                self._sp = spm.SentencePieceProcessor(model_file=str(bpe_model))
            except (OSError, RuntimeError) as e:
                raise ConfigError(f"{bpe_model}: cannot load sentencepiece model: {e}") from e

    def encode(self, text: str) -> list[int]:
        text = self._case(text) if self._case is not None else text
        if self._sp is not None:
            pieces = list(self._sp.encode(text, out_type=str))
            missing = [p for p in pieces if p not in self._ids]
            if missing:
                raise ConfigError(f"hotword {text!r}: pieces {missing} are not in the vocabulary")
            return [self._ids[p] for p in pieces]
        try:
            return [i for w in text.split() for i in self._merge(WORD_MARK + w, text)]
        except ConfigError:  # not a BPE vocabulary (a merge's halves are missing)
            return self._greedy(text)

    def alternatives(self, text: str) -> list[list[int]]:
        """Distinct segmentations of ``text``: ``encode``'s first, then the longest match."""
        out = [self.encode(text)]
        try:
            greedy = self._greedy(self._case(text) if self._case is not None else text)
        except ConfigError:
            return out
        return out if greedy in out else [*out, greedy]

    def _greedy(self, text: str) -> list[int]:
        return [i for w in text.split() for i in self._longest_match(WORD_MARK + w, text)]

    def _merge(self, word: str, text: str) -> list[int]:
        ids = self._ids
        parts = list(word)
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                idx = ids.get(parts[i] + parts[i + 1])
                if idx is not None and (best is None or idx < best):
                    best, at = idx, i
            if best is None:
                break
            parts[at : at + 2] = [parts[at] + parts[at + 1]]
        missing = [p for p in parts if p not in ids]
        if missing:
            raise ConfigError(f"hotword {text!r}: {missing[0]!r} is not in the vocabulary")
        return [ids[p] for p in parts]

    def _longest_match(self, word: str, text: str) -> list[int]:
        ids: list[int] = []
        i = 0
        while i < len(word):
            for j in range(min(len(word), i + self._longest), i, -1):
                idx = self._ids.get(word[i:j])
                if idx is not None:
                    ids.append(idx)
                    i = j
                    break
            else:
                raise ConfigError(f"hotword {text!r}: {word[i]!r} is not in the vocabulary")
        return ids


def _is_special(token: str) -> bool:
    return token.startswith("<") and token.endswith(">")


class _Node:
    __slots__ = ("children", "weight", "score", "end", "matched")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.weight = 0.0  # bonus for reaching this node (max over the phrases through it)
        self.score = 0.0  # sum of weights from the root: the partial-match bonus held here
        self.end = False  # a phrase ends here
        self.matched = 0.0  # bonus of the longest phrase already completed on this path


class ContextGraph:
    """A trie over piece ids; states are its nodes, ``step`` returns (next state, score delta)."""

    def __init__(self, phrases: Mapping[tuple[int, ...], float], starts_word: Sequence[bool]):
        self.root = _Node()
        self._starts = starts_word
        self.max_weight = 0.0  # no step earns more (beam search bounds scores with it)
        for ids, weight in phrases.items():
            if weight < 0:
                raise ValueError(f"hotword weights must be >= 0, got {weight}")
            if not ids:
                continue
            self.max_weight = max(self.max_weight, weight)
            node = self.root
            for token in ids:
                node = node.children.setdefault(token, _Node())
                node.weight = max(node.weight, weight)
            node.end = True
        stack = [self.root]
        while stack:
            node = stack.pop()
            for token, child in node.children.items():
                child.score = node.score + child.weight
                # a phrase ending at ``node`` is complete if the path goes on with a new word
                completed = node.end and starts_word[token]
                child.matched = node.score if completed else node.matched
                stack.append(child)

    @classmethod
    def build(
        cls,
        hotwords: Mapping[str, float],
        vocab: Vocabulary,
        bpe_model: str | Path | None = None,
    ) -> ContextGraph:
        tokenizer = PhraseTokenizer(vocab, bpe_model)
        phrases: dict[tuple[int, ...], float] = {}
        for phrase, weight in hotwords.items():
            for split in tokenizer.alternatives(phrase):
                ids = tuple(split)
                phrases[ids] = max(weight, phrases.get(ids, weight))
        starts = [vocab.starts_word(i) for i in range(len(vocab))]
        return cls(phrases, starts)

    def step(self, state: _Node, token: int) -> tuple[_Node, float]:
        child = state.children.get(token)
        if child is not None:
            return child, child.weight
        # The match fails: keep only what completed phrases earned, restart at this piece.
        kept = state.score if state.end and self._starts[token] else state.matched
        nxt = self.root.children.get(token, self.root)
        return nxt, kept - state.score + nxt.score

    def finish(self, state: _Node) -> float:
        """Score delta at the end of the utterance (a final phrase ends on a word boundary)."""
        kept = state.score if state.end else state.matched
        return kept - state.score
