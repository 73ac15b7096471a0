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


@pytest.fixture(scope="module")
def lm() -> ArpaLM:
    return ArpaLM.from_lines(estimate_kneser_ney([s.split() for s in TEXT], 3).splitlines())


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
