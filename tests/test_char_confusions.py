"""scripts/char_confusions.py: the character alignment and error profile."""

from __future__ import annotations

import pytest
from scriptkit import load_script


@pytest.fixture(scope="module")
def cc():  # type: ignore[no-untyped-def]
    return load_script("char_confusions")


def test_align_is_a_minimum_edit_alignment(cc) -> None:  # type: ignore[no-untyped-def]
    pairs = cc.align("kat sat", "cat sa")
    assert "".join(a for a, _ in pairs).replace("-", "") == "kat sat"
    assert "".join(b for _, b in pairs).replace("-", "") == "cat sa"
    assert sum(a != b for a, b in pairs) == 2  # k>c and t>-
    assert ("k", "c") in pairs and ("t", "-") in pairs
    assert cc.align("", "ah") == [("-", "a"), ("-", "h")]


def test_profile_counts_rates_and_insertions(cc) -> None:  # type: ignore[no-untyped-def]
    rates, confusions = cc.profile(cc.align("pat pat", "hpat bat"))
    assert rates["p"] == pytest.approx(0.5) and rates["a"] == 0.0
    assert confusions[("-", "h")] == 1 and confusions[("p", "b")] == 1
    assert sum(confusions.values()) == 2
