"""Hotword parsing, phrase tokenisation and the context-graph scoring rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from chunkasr.errors import ConfigError
from chunkasr.hotwords import (
    DEFAULT_HOTWORD_WEIGHT,
    ContextGraph,
    PhraseTokenizer,
    parse_hotwords,
    read_hotwords_file,
)
from chunkasr.vocab import Vocabulary

M = "\u2581"
# a BPE-consistent vocabulary: a merged piece's id is its merge rank, characters come last
PIECES = ["<blank>", "<unk>", f"{M}n", "ew", f"{M}new", f"{M}y", "or", f"{M}yo", "rk", f"{M}york"]
CHARS = [M, "n", "e", "w", "y", "o", "r", "k", "s", "c", "i", "t"]
VOCAB = Vocabulary([*PIECES, *CHARS, f"{M}c", f"{M}city", "<sos/eos>"])
ID = {t: i for i, t in enumerate(VOCAB.tokens)}


def test_parse_spec_and_file(tmp_path: Path) -> None:
    assert parse_hotwords("word:3, other  phrase:2.5,plain,") == {
        "word": 3.0,
        "other phrase": 2.5,
        "plain": DEFAULT_HOTWORD_WEIGHT,
    }
    assert parse_hotwords("re:invent") == {"re:invent": DEFAULT_HOTWORD_WEIGHT}  # not a weight
    with pytest.raises(ConfigError):
        parse_hotwords("x:inf")
    with pytest.raises(ConfigError):
        parse_hotwords(":2")
    with pytest.raises(ConfigError):
        parse_hotwords("x:-1")
    f = tmp_path / "hot.txt"
    f.write_text("# names\nnew york: 1.5\n\ncity\n")
    assert read_hotwords_file(f) == {"new york": 1.5, "city": DEFAULT_HOTWORD_WEIGHT}
    with pytest.raises(ConfigError):
        read_hotwords_file(tmp_path / "missing.txt")


def test_tokenizer_replays_bpe_merges_and_offers_longest_match() -> None:
    tok = PhraseTokenizer(VOCAB)
    assert tok.encode("New") == [ID[f"{M}new"]]  # case folded to the vocabulary's
    york = [ID[f"{M}y"], ID["or"], ID["k"]]  # merges by rank: ▁y, or; "▁yor" is no piece
    assert tok.encode("york") == york
    assert tok.alternatives("york") == [york, [ID[f"{M}york"]]]
    assert tok.alternatives("new") == [[ID[f"{M}new"]]]
    with pytest.raises(ConfigError):
        tok.encode("zebra")


def walk(graph: ContextGraph, tokens: list[int]) -> list[float]:
    state, deltas = graph.root, []
    for t in tokens:
        state, d = graph.step(state, t)
        deltas.append(d)
    deltas.append(graph.finish(state))
    return deltas


STARTS = [t.startswith(M) for t in VOCAB.tokens]
NEW, YORK, CITY, S = ID[f"{M}new"], ID[f"{M}york"], ID[f"{M}city"], ID["s"]


@pytest.fixture
def graph() -> ContextGraph:
    phrases = {(NEW, YORK): 1.0, (NEW, YORK, CITY): 2.0, (YORK,): 0.5}
    return ContextGraph(phrases, STARTS)


def test_partial_match_grows_then_is_taken_back(graph: ContextGraph) -> None:
    deltas = walk(graph, [NEW, CITY])  # "new city": no phrase
    assert deltas[0] > 0  # boosted while it could still match
    assert sum(deltas) == pytest.approx(0.0)
    assert sum(walk(graph, [NEW, YORK, S])) == pytest.approx(0.0)  # "new yorks" is not a word
    assert sum(walk(graph, [NEW, YORK])) == pytest.approx(4.0)  # weights are max over phrases
    assert sum(walk(graph, [NEW, YORK, CITY])) == pytest.approx(6.0)
    # "new york" completes at the word boundary before "new", then a fresh partial fails
    assert sum(walk(graph, [NEW, YORK, NEW, S])) == pytest.approx(4.0)
    assert sum(walk(graph, [YORK, YORK])) == pytest.approx(1.0)


def test_build_accepts_every_segmentation() -> None:
    graph = ContextGraph.build({"york": 1.0}, VOCAB)
    assert sum(walk(graph, [ID[f"{M}y"], ID["or"], ID["k"]])) == pytest.approx(3.0)
    assert sum(walk(graph, [YORK])) == pytest.approx(1.0)
    assert sum(walk(graph, [ID[f"{M}y"], ID["or"], ID["k"], S])) == pytest.approx(0.0)


def test_sentencepiece_model_is_used_when_given(tmp_path: Path) -> None:
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "c.txt"
    corpus.write_text("new york city\nnew york\nthe city\n" * 50)
    prefix = tmp_path / "bpe"
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(prefix), vocab_size=20, model_type="bpe",
        character_coverage=1.0, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = Vocabulary(["<blank>", *[p for p in pieces if p not in ("<unk>", "<s>", "</s>")]])
    tok = PhraseTokenizer(vocab, str(prefix) + ".model")
    assert "".join(vocab.piece(i) for i in tok.encode("new york")) == f"{M}new{M}york"
