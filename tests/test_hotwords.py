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
PIECES = ["<blank>", "<unk>", f"{M}new", f"{M}york", f"{M}yo", "rk", "s", f"{M}city", f"{M}ne", "w"]
VOCAB = Vocabulary([*PIECES, "<sos/eos>"])


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
    f = tmp_path / "hot.txt"
    f.write_text("# names\nnew york: 1.5\n\ncity\n")
    assert read_hotwords_file(f) == {"new york": 1.5, "city": DEFAULT_HOTWORD_WEIGHT}
    with pytest.raises(ConfigError):
        read_hotwords_file(tmp_path / "missing.txt")


def test_longest_match_tokenizer() -> None:
    tok = PhraseTokenizer(VOCAB)
    ids = {t: i for i, t in enumerate(VOCAB.tokens)}
    assert tok.encode("New York") == [ids[f"{M}new"], ids[f"{M}york"]]
    assert tok.encode("yorks") == [ids[f"{M}york"], ids["s"]]
    with pytest.raises(ConfigError):
        tok.encode("zebra")


def walk(graph: ContextGraph, tokens: list[int]) -> list[float]:
    state, deltas = graph.root, []
    for t in tokens:
        state, d = graph.step(state, t)
        deltas.append(d)
    deltas.append(graph.finish(state))
    return deltas


@pytest.fixture
def graph() -> ContextGraph:
    return ContextGraph.build({"new york": 1.0, "new york city": 2.0, "york": 0.5}, VOCAB)


def test_partial_match_grows_then_is_taken_back(graph: ContextGraph) -> None:
    new, york, city, s = 2, 3, 7, 6
    deltas = walk(graph, [new, city])  # "new city": no phrase
    assert deltas[0] > 0  # boosted while it could still match
    assert sum(deltas) == pytest.approx(0.0)
    assert sum(walk(graph, [new, york, s])) == pytest.approx(0.0)  # "new yorks" is not a word
    assert sum(walk(graph, [new, york])) == pytest.approx(4.0)  # weights are max over phrases
    assert sum(walk(graph, [new, york, city])) == pytest.approx(6.0)
    # "new york" completes at the word boundary before "new", then a fresh partial fails
    assert sum(walk(graph, [new, york, new, s])) == pytest.approx(4.0)
    assert sum(walk(graph, [york, york])) == pytest.approx(1.0)


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
