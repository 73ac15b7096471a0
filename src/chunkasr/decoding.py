"""CTC decoding: log-probs (T, V) -> tokens with the frame of their spike.

Pure functions on tensors; no model, no audio. Two searches:

- ``ctc_greedy_search``: best path.
- ``ctc_prefix_beam_search`` (``chunkasr.beam_search``): CTC prefix beam search, optionally with
  a word n-gram LM (``chunkasr.lm``) and hotword biasing (``chunkasr.hotwords``) on prefixes.

Both return ``TokenSpan``s with the same spike convention, so word timestamps work alike.
Build a :class:`CTCDecoder` once per model (it loads the LM and the hotword trie) and call it
per file; :func:`decode` does that with a one-entry cache.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from .beam_search import Hypothesis, WordScorer, check_shape, ctc_prefix_beam_search
from .hotwords import ContextGraph
from .lm import ArpaLM
from .types import TokenSpan
from .vocab import Vocabulary

__all__ = [
    "CTCDecoder",
    "DecodeOptions",
    "Hypothesis",
    "ctc_greedy_search",
    "ctc_prefix_beam_search",
    "decode",
]


@dataclass(frozen=True)
class DecodeOptions:
    """How to turn CTC log-probs into tokens (shared by CLI and API).

    Beam search prunes in three ways, all approximations with small, stated losses:
    ``beam_size`` prefixes survive each frame; a frame extends prefixes only with its
    ``token_top_k`` most likely non-blank tokens whose posterior is at least ``token_min_prob``;
    a frame whose blank posterior exceeds ``blank_skip_prob`` is not searched at all: every
    prefix just moves to "ends in blank" (the paths dropped there carry at most
    ``1 - blank_skip_prob`` of each prefix's mass). ``blank_skip_prob=1`` turns that off.

    LM and hotword scores are natural-log bonuses added to a prefix's acoustic log-prob:
    ``lm_weight * ln P_lm(word | history) + word_score`` for every word, scored when the next
    word starts and at the end (then with ``</s>``); a word missing from the LM is scored as
    ``<unk>`` plus ``unk_score``, charged as soon as the partial word can no longer become a
    known one; hotword ``weight`` per matched piece.
    """

    method: str = "greedy"  # "greedy" | "beam"
    blank_id: int = 0
    beam_size: int = 8
    token_top_k: int = 8
    token_min_prob: float = 1e-4
    blank_skip_prob: float = 0.999
    lm_path: str | Path | None = None  # ARPA file (optionally .gz)
    lm_weight: float = 0.5
    word_score: float = 0.0
    unk_score: float = -10.0  # extra cost of a word the LM does not know (with an LM only)
    hotwords: Mapping[str, float] | None = None  # phrase -> bonus per matched piece
    bpe_model: str | Path | None = None  # sentencepiece model to split hotwords (else vocab match)

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam"):
            raise ValueError(f"unknown decoding method {self.method!r}")
        if self.blank_id < 0:
            raise ValueError(f"blank_id must be >= 0, got {self.blank_id}")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.token_top_k < 1:
            raise ValueError(f"token_top_k must be >= 1, got {self.token_top_k}")
        if not 0.0 <= self.token_min_prob < 1.0:
            raise ValueError(f"token_min_prob must be in [0, 1), got {self.token_min_prob}")
        if not 0.0 < self.blank_skip_prob <= 1.0:
            raise ValueError(f"blank_skip_prob must be in (0, 1], got {self.blank_skip_prob}")
        for name in ("lm_weight", "word_score", "unk_score"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")
        if self.lm_weight < 0:
            raise ValueError(f"lm_weight must be >= 0, got {self.lm_weight}")
        if self.hotwords is not None:
            words = dict(self.hotwords)
            for phrase, weight in words.items():
                if not phrase.strip() or not math.isfinite(weight) or weight < 0:
                    raise ValueError(f"bad hotword {phrase!r}: {weight}")
            object.__setattr__(self, "hotwords", words or None)  # a private copy
        if self.method == "greedy" and self.uses_words:
            raise ValueError("a language model, word score or hotwords need method='beam'")

    def __hash__(self) -> int:  # the generated one fails on the hotwords dict
        words = tuple(sorted(self.hotwords.items())) if self.hotwords else None
        fields = (self.method, self.blank_id, self.beam_size, self.token_top_k)
        return hash((*fields, self.lm_path, self.lm_weight, self.word_score, words))

    @property
    def uses_words(self) -> bool:
        """Whether the search needs word boundaries (an LM, a word score or hotwords)."""
        return self.lm_path is not None or self.word_score != 0.0 or bool(self.hotwords)


def ctc_greedy_search(
    log_probs: torch.Tensor, blank_id: int = 0, ids: torch.Tensor | None = None
) -> list[TokenSpan]:
    """Best path: argmax per frame, merge repeats, drop blanks.

    A token repeated across a blank ("a _ a") is two tokens; the spike frame of a token is the
    first frame of its run, its probability the posterior there. ``ids`` (T, K): the inputs
    are only each frame's top K log-probs, column k being token ``ids[t, k]`` (the engine's
    compact posteriors).
    """
    check_shape(log_probs, ids)
    if log_probs.shape[0] == 0:
        return []
    best, col = log_probs.max(dim=-1)  # (T,)
    ids = col if ids is None else ids.gather(1, col[:, None]).squeeze(1).long()
    prev = torch.cat([ids.new_full((1,), -1), ids[:-1]])
    keep = (ids != prev) & (ids != blank_id)
    frames = keep.nonzero().squeeze(1)
    probs = best[frames].exp()
    return [
        TokenSpan(int(i), int(f), float(p))
        for i, f, p in zip(ids[frames].tolist(), frames.tolist(), probs.tolist(), strict=True)
    ]


@functools.lru_cache(maxsize=4)
def _load_lm(path: str, mtime_ns: int) -> ArpaLM:
    del mtime_ns  # part of the cache key only: a rewritten file is read again
    return ArpaLM.from_file(path)


class CTCDecoder:
    """``decoder(log_probs) -> list[TokenSpan]`` for fixed options (LM and hotwords loaded once)."""

    def __init__(self, options: DecodeOptions | None = None, vocab: Vocabulary | None = None):
        self.options = options = options or DecodeOptions()
        self.vocab = vocab
        self._scorer: WordScorer | None = None
        if options.uses_words:
            if vocab is None:
                raise ValueError("a language model, word score or hotwords need the vocabulary")
            lm = None
            if options.lm_path is not None:
                path = os.fspath(options.lm_path)
                lm = _load_lm(path, _mtime(path))
            graph = None
            if options.hotwords:
                graph = ContextGraph.build(options.hotwords, vocab, options.bpe_model)
            self._scorer = WordScorer(
                vocab, lm, options.lm_weight, options.word_score, options.unk_score, graph
            )

    def __call__(
        self, log_probs: torch.Tensor, ids: torch.Tensor | None = None
    ) -> list[TokenSpan]:
        """Tokens of one file; ``log_probs`` (T, V), or (T, K) with ``ids`` (see greedy search)."""
        if self.options.method == "greedy":
            return ctc_greedy_search(log_probs, self.options.blank_id, ids)
        return self.search(log_probs, ids=ids)[0].tokens

    def search(
        self, log_probs: torch.Tensor, nbest: int = 1, ids: torch.Tensor | None = None
    ) -> list[Hypothesis]:
        """Beam search with these options, keeping the scores (whatever ``method`` says)."""
        o = self.options
        if self.vocab is not None and ids is None and log_probs.shape[-1] != len(self.vocab):
            raise ValueError(
                f"log-probs have {log_probs.shape[-1]} classes, the vocabulary {len(self.vocab)}"
            )
        return ctc_prefix_beam_search(
            log_probs,
            o.beam_size,
            o.blank_id,
            token_top_k=o.token_top_k,
            token_min_prob=o.token_min_prob,
            blank_skip_prob=o.blank_skip_prob,
            scorer=self._scorer,
            nbest=nbest,
            ids=ids,
        )


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0  # ArpaLM.from_file reports the error


_last_decoder: CTCDecoder | None = None


def decode(
    log_probs: torch.Tensor,
    options: DecodeOptions | None = None,
    vocab: Vocabulary | None = None,
    ids: torch.Tensor | None = None,
) -> list[TokenSpan]:
    """Decode one file's (T, V) log-probs (or top-K ones with ``ids``, see greedy search).

    ``vocab`` is needed for an LM, word score or hotwords. Reuses the decoder of the previous
    call when the options and vocabulary are the same.
    """
    global _last_decoder
    options = options or DecodeOptions()
    if options.method == "greedy":
        return ctc_greedy_search(log_probs, options.blank_id, ids)
    dec = _last_decoder
    if dec is None or dec.options != options or dec.vocab is not vocab:
        dec = _last_decoder = CTCDecoder(options, vocab)
    return dec(log_probs, ids)
