"""CTC prefix beam search (Hannun et al. 2014) with word-level LM and hotword scores.

Used through :class:`chunkasr.decoding.CTCDecoder`; pure functions on tensors otherwise.
Prefixes live in probability space, renormalised every frame (cheaper than log-add-exp in
Python), keyed by a rolling hash of their tokens, and form a tree of ``_Prefix`` nodes that
remembers each token's spike frame.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from .hotwords import ContextGraph
from .lm import EOS, UNK, ArpaLM
from .types import TokenSpan
from .vocab import Vocabulary

__all__ = ["Hypothesis", "WordScorer", "check_shape", "ctc_prefix_beam_search"]


def check_shape(log_probs: torch.Tensor, ids: torch.Tensor | None = None) -> None:
    if log_probs.dim() != 2:
        raise ValueError(f"expected (T, V) log-probs, got shape {tuple(log_probs.shape)}")
    if ids is not None and ids.shape != log_probs.shape:
        raise ValueError(f"ids {tuple(ids.shape)} do not match log-probs {tuple(log_probs.shape)}")


@dataclass
class Hypothesis:
    """One beam-search result: its tokens and scores (natural logs)."""

    tokens: list[TokenSpan]
    score: float  # acoustic + lm/word/hotword bonuses: what the beam ranks by
    acoustic: float  # ln P(token sequence | audio) as summed over the surviving paths
    ids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.ids = [t.id for t in self.tokens]


class _Prefix:
    """A node of the prefix tree: its last token, where it spiked, and scorer state."""

    __slots__ = ("token", "parent", "frame", "prob", "extra", "state")

    def __init__(
        self, token: int, parent: _Prefix | None, frame: int, prob: float, extra: float, state: Any
    ) -> None:
        self.token = token
        self.parent = parent
        self.frame = frame
        self.prob = prob
        self.extra = extra  # LM/word/hotword bonus of the whole prefix
        self.state = state

    def spans(self) -> list[TokenSpan]:
        out = []
        node: _Prefix | None = self
        while node is not None and node.parent is not None:
            out.append(TokenSpan(node.token, node.frame, node.prob))
            node = node.parent
        return out[::-1]


_State = tuple[Any, str, Any, bool]  # LM state, word so far, hotword state, word charged as OOV


class WordScorer:
    """Scores prefixes by words: a word ends where the next ``▁`` piece starts.

    A word the LM does not know costs ``unk_score`` on top of its ``<unk>`` LM score, charged as
    soon as the partial word can no longer become a known word: otherwise a prefix could avoid
    all LM costs by never starting a new word (gluing words into one long unknown one).
    """

    def __init__(
        self,
        vocab: Vocabulary,
        lm: ArpaLM | None,
        lm_weight: float,
        word_score: float,
        unk_score: float,
        graph: ContextGraph | None,
    ) -> None:
        self.pieces = [_fold_like(lm, p) for p in vocab.tokens] if lm else vocab.tokens
        self.starts = [vocab.starts_word(i) for i in range(len(vocab))]
        self.lm, self.lm_weight, self.word_score, self.graph = lm, lm_weight, word_score, graph
        self.unk_score = unk_score
        # No extension earns more than this (LM log-probs are <= 0 and lm_weight >= 0):
        # a word's score, an OOV charge and a hotword piece at most.
        self.max_bonus = (
            max(word_score, 0.0) + max(unk_score, 0.0) + (graph.max_weight if graph else 0.0)
        )
        self.prefixes = lm.word_prefixes() if lm is not None else frozenset()

    def initial(self) -> _State:
        lm_state = self.lm.begin() if self.lm else ()
        return (lm_state, "", self.graph.root if self.graph else None, False)

    def _unknown(self, lm_state: Any) -> tuple[float, Any]:
        assert self.lm is not None
        logp, lm_state = self.lm.score(lm_state, UNK)
        return self.lm_weight * logp + self.unk_score, lm_state

    def _word(self, lm_state: Any, word: str, charged: bool) -> tuple[float, Any]:
        """Score of a completed word (its OOV cost only if not charged already)."""
        if self.lm is None:
            return self.word_score, lm_state
        if charged:
            return self.word_score, self.lm.score(lm_state, UNK)[1]
        if not self.lm.has_word(word):
            cost, lm_state = self._unknown(lm_state)
            return cost + self.word_score, lm_state
        logp, lm_state = self.lm.score(lm_state, word)
        return self.lm_weight * logp + self.word_score, lm_state

    def extend(self, state: _State, token: int) -> tuple[float, _State]:
        lm_state, word, hot, charged = state
        delta = 0.0
        piece = self.pieces[token]
        if self.starts[token]:
            if word:
                delta, lm_state = self._word(lm_state, word, charged)
            word, charged = piece[1:], False
        else:
            word += piece
        if self.lm is not None and not charged and word and word not in self.prefixes:
            delta += self._unknown(lm_state)[0]
            charged = True
        if self.graph is not None:
            hot, bonus = self.graph.step(hot, token)
            delta += bonus
        return delta, (lm_state, word, hot, charged)

    def finish(self, state: _State) -> float:
        lm_state, word, hot, charged = state
        delta = 0.0
        if word:
            delta, lm_state = self._word(lm_state, word, charged)
        if self.lm is not None:
            delta += self.lm_weight * self.lm.score(lm_state, EOS)[0]
        if self.graph is not None:
            delta += self.graph.finish(hot)
        return delta


def _fold_like(lm: ArpaLM, piece: str) -> str:
    """``piece`` in the LM's case when the LM has one case only (uppercase LibriSpeech-style
    vocabularies with a lowercase LM, or the reverse), so words are found either way."""
    case = lm.case
    return piece.lower() if case == "lower" else piece.upper() if case == "upper" else piece


_HASH_MOD = (1 << 61) - 1  # prefixes are keyed by a rolling hash: O(1) per extension
_HASH_BASE = 1_000_003
_BLOCK = 4096  # frames per top-k block: bounds the extra memory for hour-long inputs


def _frame_candidates(
    log_probs: torch.Tensor,
    ids: torch.Tensor | None,
    blank_id: int,
    top_k: int,
    min_prob: float,
    skip_prob: float,
) -> tuple[Iterator[tuple[int, float, list[tuple[int, float]]]], float]:
    """(frame, blank posterior, candidate (token, posterior)s) of the frames to search, made
    block by block so a long file's Python lists stay small; and the log-mass of the skipped."""
    if ids is None:
        blank = log_probs[:, blank_id].double()  # (T,)
    else:  # a frame whose top K lacks the blank gives it probability 0
        is_blank = ids == blank_id
        blank = log_probs.masked_fill(~is_blank, -math.inf).amax(1).double()
    skip = blank.exp() > skip_prob
    frames = (~skip).nonzero().squeeze(1)
    skipped = float(blank[skip].sum())
    k = min(top_k + 1, log_probs.shape[1])  # +1: blank may be among the top
    floor = max(min_prob, 1e-300)  # pruned entries of compact inputs are -inf

    def blocks() -> Iterator[tuple[int, float, list[tuple[int, float]]]]:
        for start in range(0, len(frames), _BLOCK):
            sel = frames[start : start + _BLOCK]
            vals, cols = log_probs[sel].topk(k, dim=1)  # (B, k)
            toks = cols if ids is None else ids[sel].gather(1, cols)
            rows = zip(
                sel.tolist(),
                blank[sel].exp().tolist(),
                vals.exp().tolist(),
                toks.tolist(),
                strict=True,
            )
            for t, p_blank, vs, cs in rows:
                keep = [(c, p) for c, p in zip(cs, vs, strict=True) if c != blank_id and p >= floor]
                yield t, p_blank, keep[:top_k]

    return blocks(), skipped


def ctc_prefix_beam_search(
    log_probs: torch.Tensor,
    beam_size: int = 8,
    blank_id: int = 0,
    *,
    token_top_k: int = 8,
    token_min_prob: float = 1e-4,
    blank_skip_prob: float = 0.999,
    scorer: WordScorer | None = None,
    nbest: int = 1,
    ids: torch.Tensor | None = None,
) -> list[Hypothesis]:
    """CTC prefix beam search; returns up to ``nbest`` hypotheses, best first.

    Each prefix keeps P(prefix, path ends in blank) and P(prefix, path ends in its last token),
    in probability space renormalised every frame (cheaper than log-add-exp in Python).
    Spike frame of a token: the frame where it was first appended to its prefix; it moves to a
    later emission only if that emission brings more mass than the prefix held until then.
    With pruning off (large ``beam_size``/``token_top_k``, ``token_min_prob=0``,
    ``blank_skip_prob=1``) the best hypothesis is the exact most probable token sequence.
    ``ids``: as in :func:`ctc_greedy_search`.
    """
    check_shape(log_probs, ids)
    lp = log_probs.detach().float().cpu()
    if ids is not None:
        ids = ids.detach().cpu().long()
    root = _Prefix(-1, None, -1, 1.0, 0.0, scorer.initial() if scorer else None)
    beam: dict[int, list[Any]] = {0: [1.0, 0.0, root]}  # hash -> [p_blank, p_token, node]
    log_scale = 0.0
    skipped = 0.0
    if lp.shape[0] > 0:
        frames, skipped = _frame_candidates(
            lp, ids, blank_id, token_top_k, token_min_prob, blank_skip_prob
        )
        prev_t = -1
        for t, p_blank, cand in frames:
            if t > prev_t + 1:  # skipped blank frames in between: every path now ends in blank
                for e in beam.values():
                    e[0] += e[1]
                    e[1] = 0.0
            prev_t = t
            beam, scale = _step(beam, t, p_blank, cand, beam_size, scorer)
            log_scale += scale
    ends = []
    for e in beam.values():
        mass = e[0] + e[1]
        node = e[2]
        acoustic = (math.log(mass) if mass > 0 else -math.inf) + log_scale + skipped
        bonus = node.extra + (scorer.finish(node.state) if scorer else 0.0)
        ends.append((acoustic + bonus, acoustic, node))
    ends.sort(key=lambda x: x[0], reverse=True)
    return [Hypothesis(node.spans(), score, acoustic) for score, acoustic, node in ends[:nbest]]


def _step(
    beam: dict[int, list[Any]],
    t: int,
    p_blank: float,
    cand: list[tuple[int, float]],
    beam_size: int,
    scorer: WordScorer | None,
) -> tuple[dict[int, list[Any]], float]:
    """One frame of prefix beam search; returns the new beam and the log of its rescaling."""
    nxt: dict[int, list[Any]] = {}
    for h, (pb, pt, node) in beam.items():
        total = pb + pt
        own = nxt.get(h)
        if own is None:
            own = nxt[h] = [total * p_blank, 0.0, node]
        else:
            own[0] += total * p_blank
        last = node.token
        for c, p in cand:
            if c == last:
                own[1] += pt * p  # the same token continues: no new token
                add = pb * p  # after a blank, the same token again is a new token
                if add <= 0.0:
                    continue
            else:
                add = total * p
            ch = (h * _HASH_BASE + c + 1) % _HASH_MOD
            old = beam.get(ch)
            if old is None:
                entry = nxt.get(ch)
                if entry is None:
                    if scorer is None:
                        nxt[ch] = [0.0, add, _Prefix(c, node, t, p, 0.0, None)]
                    else:  # scored only if it can enter the beam (see _select)
                        nxt[ch] = [0.0, add, None, node, c, p]
                else:
                    entry[1] += add
                continue
            child = old[2]
            if add > old[0] + old[1]:  # this emission outweighs all the prefix had: spike moves
                child.frame, child.prob = t, p
            entry = nxt.get(ch)
            if entry is None:
                nxt[ch] = [0.0, add, child]
            else:
                entry[1] += add
    if scorer is not None:
        nxt = _select(nxt, beam_size, scorer, t)
    elif len(nxt) > beam_size:
        # sorted() beats heapq.nlargest on the few dozen candidates a frame has
        nxt = dict(sorted(nxt.items(), key=_mass, reverse=True)[:beam_size])
    top = max(e[0] + e[1] for e in nxt.values())
    if top <= 0.0:  # nothing survives this frame (compact input without blank): ignore it
        return beam, 0.0
    for e in nxt.values():
        e[0] /= top
        e[1] /= top
    return nxt, math.log(top)


def _mass(kv: tuple[int, list[Any]]) -> float:
    return kv[1][0] + kv[1][1]


def _select(
    nxt: dict[int, list[Any]], beam_size: int, scorer: WordScorer, t: int
) -> dict[int, list[Any]]:
    """The ``beam_size`` best prefixes by acoustic log-prob + bonus, scoring new ones lazily.

    A new prefix ``[0, mass, None, parent, token, prob]`` is ranked by an upper bound of its
    bonus (``scorer.max_bonus`` over its parent's) until it reaches the top of the heap; only
    then are its LM and hotword scores computed. A prefix popped with its exact score beats
    every remaining bound, so the result is the same as scoring all of them first.
    """
    heap: list[tuple[float, int, int]] = []
    for h, e in nxt.items():
        mass = e[0] + e[1]
        logm = math.log(mass) if mass > 0.0 else -math.inf
        node = e[2]
        if node is None:
            heap.append((-(logm + e[3].extra + scorer.max_bonus), 1, h))
        else:
            heap.append((-(logm + node.extra), 0, h))
    heapq.heapify(heap)
    out: dict[int, list[Any]] = {}
    while heap and len(out) < beam_size:
        _, pending, h = heapq.heappop(heap)
        e = nxt[h]
        if not pending:
            out[h] = e
            continue
        parent, c, p = e[3], e[4], e[5]
        delta, state = scorer.extend(parent.state, c)
        e[2] = _Prefix(c, parent, t, p, parent.extra + delta, state)
        del e[3:]
        mass = e[0] + e[1]
        logm = math.log(mass) if mass > 0.0 else -math.inf
        heapq.heappush(heap, (-(logm + e[2].extra), 0, h))
    return out
