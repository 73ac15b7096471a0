"""ARPA estimation, parsing and backoff scoring."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scriptkit import load_script

from chunkasr.errors import ModelError
from chunkasr.lm import BOS, EOS, UNK, ArpaLM, estimate_kneser_ney

ROOT = Path(__file__).resolve().parents[1]
TEXT = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the cat saw the dog",
    "on the mat sat a cat",
]


def _estimate(min_count: int = 1) -> ArpaLM:
    arpa = estimate_kneser_ney([s.split() for s in TEXT], 3, min_count=min_count)
    return ArpaLM.from_lines(arpa.splitlines())


@pytest.fixture(scope="module", params=[1, 2], ids=["full", "pruned"])
def lm(request: pytest.FixtureRequest) -> ArpaLM:
    return _estimate(request.param)


def test_every_context_sums_to_one(lm: ArpaLM) -> None:
    words = [w for w in lm.vocabulary() if w != BOS]
    assert UNK in words and EOS in words
    contexts = lm.contexts()
    assert len([c for c in contexts if len(c) == 2]) > 10  # the trigram contexts are exercised
    for ctx in contexts:
        if ctx and ctx[-1] == EOS:
            continue  # nothing follows </s>
        total = sum(10 ** lm.log10_prob(ctx, w) for w in words)
        assert total == pytest.approx(1.0, abs=1e-5), ctx


def test_pruning_drops_rare_top_order_ngrams_only() -> None:
    full, pruned = _estimate(1), _estimate(2)
    trigrams = {c for c in full._entries if len(c) == 3}
    kept = {c for c in pruned._entries if len(c) == 3}
    assert kept and kept < trigrams  # some trigrams go, the repeated ones stay
    assert ("sat", "on", "the") in kept and ("the", "cat", "sat") not in kept
    lower = {c: v[0] for c, v in full._entries.items() if len(c) < 3}
    assert lower == {c: v[0] for c, v in pruned._entries.items() if len(c) < 3}
    for g in kept:  # a kept trigram keeps its probability; its context's backoff changes
        assert pruned.log10_prob(g[:2], g[2]) == pytest.approx(full.log10_prob(g[:2], g[2]))
    # a dropped trigram now backs off, and the backoff weight was renormalised for it
    ctx, w = ("the", "cat"), "sat"
    assert pruned.log10_prob(ctx, w) != pytest.approx(full.log10_prob(ctx, w))
    with pytest.raises(ValueError, match="min_count"):
        estimate_kneser_ney([["a", "b"]], 3, min_count=0)


def test_scores_follow_the_data(lm: ArpaLM) -> None:
    state = lm.begin()
    the, state = lm.score(state, "the")
    assert lm.score(state, "cat")[0] > lm.score(state, "and")[0]
    assert lm.score(("sat", "on"), "the")[0] > math.log(0.5)
    unknown = lm.score(state, "zebra")[0]
    assert unknown == pytest.approx(lm.score(state, UNK)[0])
    assert unknown < lm.score(state, "log")[0]


def test_state_is_shortened_to_known_context(lm: ArpaLM) -> None:
    _, state = lm.score(("zebra",), "giraffe")
    assert state == ()
    _, state = lm.score(("on",), "the")
    assert state == ("on", "the")


def test_known_backoff_arithmetic() -> None:
    arpa = """
\\data\\
ngram 1=4
ngram 2=1

\\1-grams:
-1.0 <s> -0.5
-0.5 a -0.3
-0.7 b
-1.0 </s>

\\2-grams:
-0.2 <s> a

\\end\\
"""
    lm = ArpaLM.from_lines(arpa.splitlines())
    assert lm.log10_prob(("<s>",), "a") == pytest.approx(-0.2)
    assert lm.log10_prob(("<s>",), "b") == pytest.approx(-0.5 - 0.7)
    assert lm.log10_prob(("a",), "b") == pytest.approx(-0.3 - 0.7)
    assert lm.log10_prob(("b",), "zz") == pytest.approx(-100.0)  # no <unk>: KenLM's floor


@pytest.mark.parametrize(
    "text",
    ["no data here", "\\data\\\nngram 1=2\n\n\\1-grams:\n-1 a\n\\end\\\n", "\\data\\\nngram x\n"],
)
def test_malformed_files_are_model_errors(text: str) -> None:
    with pytest.raises(ModelError):
        ArpaLM.from_lines(text.splitlines())


def test_make_arpa_script_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "train.txt"
    src.write_text("\n".join(TEXT) + "\n")
    out = tmp_path / "lm.arpa.gz"
    script = load_script("make_arpa")
    assert script.main([str(src), str(out)]) == 0
    lm = ArpaLM.from_file(out)
    assert lm.order == 3 and "mat" in lm.vocabulary()
    small = tmp_path / "small.arpa"
    assert script.main([str(src), str(small), "--min-count", "2"]) == 0
    assert 0 < len(ArpaLM.from_file(small)._entries) < len(lm._entries)


def test_corpus_lm_text_is_all_training_sentences_and_the_dictionary_draws(tmp_path: Path) -> None:
    mc = load_script("make_corpus")
    sentences = [f"sentence {a} {b} reads well" for a in "pqrstuvwxyz" for b in "pqrstuvwxyz"]
    dictionary = ["aardvark", "bison", "camel", "dingo", "emu", "ferret", "gnu"]
    seed = 7
    train = list(mc.plan_train(sentences, dictionary, seed))
    draws = [u for i, u in enumerate(train) if mc.is_dictionary_draw(seed, i)]
    assert draws and len(draws) < len(train)  # the seed gives both kinds
    for u in draws:  # the rule agrees with the plan: a draw reads dictionary words only
        assert set(u.text.split()) <= set(dictionary)
    for u in train:
        if u not in draws:
            assert "sentence" in u.text
    out = tmp_path / "lm_text.txt"
    assert mc.write_lm_text(out, sentences, train, seed) == len(sentences) + len(draws)
    assert out.read_text().splitlines() == sentences + [u.text for u in draws]
