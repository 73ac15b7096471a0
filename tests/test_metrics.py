import pytest

from chunkasr.metrics import EditCounts, ErrorRate, alignment, cer, edit_counts, wer


def test_identical_is_zero():
    assert wer("the cat sat", "the cat sat") == 0.0
    assert cer("abc", "abc") == 0.0


def test_substitution_deletion_insertion_counts():
    c = edit_counts(["a", "b", "c", "d"], ["a", "x", "c"])
    assert (c.substitutions, c.deletions, c.insertions, c.ref_len) == (1, 1, 0, 4)
    c = edit_counts(["a", "b"], ["a", "b", "c", "d"])
    assert (c.substitutions, c.deletions, c.insertions) == (0, 0, 2)
    c = edit_counts([], ["x", "y"])
    assert (c.edits, c.insertions, c.ref_len) == (2, 2, 0)
    c = edit_counts(["x", "y", "z"], [])
    assert (c.edits, c.deletions) == (3, 3)


def test_classic_levenshtein():
    # kitten -> sitting: 3 edits (2 substitutions, 1 insertion)
    c = edit_counts(list("kitten"), list("sitting"))
    assert c.edits == 3
    assert (c.substitutions, c.insertions, c.deletions) == (2, 1, 0)
    assert edit_counts(list("flaw"), list("lawn")).edits == 2
    assert edit_counts(list("intention"), list("execution")).edits == 5


def test_wer_and_cer_values():
    assert wer("the cat sat on the mat", "the cat sit on mat") == 2 / 6
    # characters include the single spaces between words
    assert cer("ab cd", "ab cx") == 1 / 5
    assert cer("ab  cd", "ab cd") == 0.0
    assert wer("a b", "a b c d e") == 3 / 2  # insertions can exceed 100 %


def test_corpus_level_accumulation():
    er = ErrorRate()
    er.add("a b c d", "a b c d")
    er.add("e f", "e g")
    s = er.summary()
    assert er.words == EditCounts(1, 0, 0, 6)
    assert s["wer"] == round(100 / 6, 3)
    assert s["utterances"] == 2 and s["sentence_error"] == 50.0
    assert abs(er.cer - 1 / (7 + 3)) < 1e-12


@pytest.mark.parametrize(
    ("ref", "hyp"),
    [("kitten", "sitting"), ("", "ab"), ("ab", ""), ("the cat sat", "a cat sat down"), ("abc", "abc")],
)
def test_alignment_covers_both_sequences_with_the_minimum_edits(ref: str, hyp: str) -> None:
    pairs = alignment(ref, hyp)
    assert [i for i, _ in pairs if i is not None] == list(range(len(ref)))
    assert [j for _, j in pairs if j is not None] == list(range(len(hyp)))
    edits = sum(i is None or j is None or ref[i] != hyp[j] for i, j in pairs)
    assert edits == edit_counts(ref, hyp).edits


def test_alignment_pairs_substitutions_and_marks_gaps() -> None:
    assert alignment("kat", "cat") == [(0, 0), (1, 1), (2, 2)]
    assert alignment("pat", "hpat") == [(None, 0), (0, 1), (1, 2), (2, 3)]
    assert alignment("pats", "pat") == [(0, 0), (1, 1), (2, 2), (3, None)]
