from __future__ import annotations

from itertools import pairwise

import pytest

from chunkasr.align import (
    SubtitleOptions,
    build_transcript,
    segment_words,
    subtitle_cues,
    tokens_to_words,
    wrap_words,
)
from chunkasr.errors import ConfigError
from chunkasr.types import Segment, TokenSpan, Word

HELLO, WOR, LD, THE, A, MARK, X, CAT, S, UNK = 2, 3, 4, 5, 6, 7, 8, 9, 10, 1


def spans(*items: tuple[int, int, float]) -> list[TokenSpan]:
    return [TokenSpan(i, f, p) for i, f, p in items]


def test_words_times_and_probability(toy_vocab):
    toks = spans((HELLO, 5, 0.9), (WOR, 10, 0.8), (LD, 12, 0.6), (THE, 40, 1.0))
    words = tokens_to_words(toks, toy_vocab)
    assert [w.word for w in words] == ["hello", "world", "the"]
    # hello ends where world starts (frame 10 < 5+1+2? no: tail caps at frame 8)
    assert words[0] == Word("hello", 0.4, 0.64, 0.9)
    # world: spikes 10, 12 -> ends at frame 12+1+2 = 15, before "the" at 40
    assert words[1] == Word("world", 0.8, 1.2, 0.7)
    assert words[2] == Word("the", 3.2, 3.44, 1.0)


def test_word_end_capped_by_next_word(toy_vocab):
    words = tokens_to_words(spans((HELLO, 5, 0.5), (THE, 6, 0.5)), toy_vocab)
    assert words[0].end == words[1].start == 0.48


def test_word_end_capped_by_duration(toy_vocab):
    words = tokens_to_words(spans((HELLO, 5, 0.5)), toy_vocab, duration=0.5)
    assert (words[0].start, words[0].end) == (0.4, 0.5)


def test_word_across_chunk_boundary(toy_vocab):
    # frames 63 and 64 sit in different 64-frame encoder chunks; still one word
    words = tokens_to_words(spans((WOR, 63, 0.5), (LD, 64, 1.0)), toy_vocab)
    assert [(w.word, w.start, w.end, w.probability) for w in words] == [
        ("world", 5.04, 5.36, 0.75)
    ]


def test_specials_and_lone_marks_make_no_words(toy_vocab):
    toks = spans((UNK, 1, 0.5), (MARK, 3, 0.5), (X, 4, 0.5), (MARK, 9, 0.4), (CAT, 20, 1.0))
    words = tokens_to_words(toks, toy_vocab)
    assert [w.word for w in words] == ["x", "cat"]
    assert words[0].start == 0.24  # starts at the "▁" piece that opened it


def test_unsorted_tokens_are_ordered_by_frame(toy_vocab):
    toks = spans((S, 11, 1.0), (CAT, 10, 1.0), (HELLO, 1, 1.0))
    assert [w.word for w in tokens_to_words(toks, toy_vocab)] == ["hello", "cats"]


def test_segments_break_at_pauses(toy_vocab):
    # blank run between "hello" (frame 5) and "the" (frame 12) is 6 frames = 0.48 s: no break;
    # between "the" (12) and "cat" (20) it is 7 frames = 0.56 s: break at pause 0.5
    toks = spans((HELLO, 5, 1.0), (THE, 12, 1.0), (CAT, 20, 1.0))
    segs = segment_words(toks, toy_vocab, pause=0.5)
    assert [s.text for s in segs] == ["hello the", "cat"]
    assert [s.id for s in segs] == [0, 1]
    assert segs[0].start == 0.4 and segs[0].end == segs[0].words[-1].end
    assert [s.text for s in segment_words(toks, toy_vocab, pause=0.4)] == ["hello", "the", "cat"]
    assert [s.text for s in segment_words(toks, toy_vocab, pause=1.0)] == ["hello the cat"]
    assert [s.text for s in segment_words(toks, toy_vocab, pause=0.56)] == ["hello the", "cat"]
    assert [s.text for s in segment_words(toks, toy_vocab, pause=0.57)] == ["hello the cat"]


def test_bad_pause(toy_vocab):
    with pytest.raises(ConfigError):
        segment_words([], toy_vocab, pause=0)


def test_build_transcript_invariants(toy_vocab):
    toks = spans((HELLO, 5, 1.0), (WOR, 8, 0.5), (LD, 9, 0.5), (THE, 40, 1.0), (CAT, 41, 0.2))
    t = build_transcript(toks, toy_vocab, "a.wav", 4.0, "m", "en", pause=0.5)
    assert t.text == "hello world the cat"
    assert t.text == " ".join(s.text for s in t.segments)
    for s in t.segments:
        assert s.text == " ".join(w.word for w in s.words)
        assert s.start <= s.end
    ws = [w for s in t.segments for w in s.words]
    assert all(a.end <= b.start for a, b in pairwise(ws))
    assert (t.audio, t.duration, t.model, t.language) == ("a.wav", 4.0, "m", "en")


def test_empty_tokens(toy_vocab):
    t = build_transcript([], toy_vocab, "s.wav", 5.0, "m", "en")
    assert t.text == "" and t.segments == []
    assert subtitle_cues(t.segments) == []


def test_subtitle_options_validated():
    for bad in (
        {"max_line_width": 0},
        {"max_line_count": 0},
        {"max_cue_duration": 0},
        {"min_gap": -0.1},
    ):
        with pytest.raises(ConfigError):
            SubtitleOptions(**bad)  # type: ignore[arg-type]


FOX = "the quick brown fox jumps over the lazy dog"


def test_wrap_words_balances_lines():
    words = FOX.split()
    assert wrap_words(words, 43) == ["the quick brown fox jumps over the lazy dog"]
    assert wrap_words(words, 42) == ["the quick brown fox", "jumps over the lazy dog"]
    lines = wrap_words(words, 30)
    assert lines == ["the quick brown fox", "jumps over the lazy dog"]
    assert wrap_words(["supercalifragilistic", "a"], 5) == ["supercalifragilistic", "a"]


def _words(n: int, step: float = 0.3, text: str = "word") -> list[Word]:
    return [Word(f"{text}{i}", i * step, i * step + step, 1.0) for i in range(n)]


def _segment(words: list[Word], id: int = 0) -> Segment:
    return Segment(id, words[0].start, words[-1].end, " ".join(w.word for w in words), words)


@pytest.mark.parametrize("width,count,dur", [(42, 2, 7.0), (10, 1, 2.0), (20, 3, 100.0)])
def test_cues_respect_limits(width, count, dur):
    opts = SubtitleOptions(max_line_width=width, max_line_count=count, max_cue_duration=dur)
    segs = [_segment(_words(60)), _segment([Word("x", 30.0, 30.5, 1.0)], 1)]
    cues = subtitle_cues(segs, opts)
    words_out = [w for c in cues for line in c.lines for w in line.split()]
    assert words_out == [w.word for s in segs for w in s.words]  # nothing lost or reordered
    for c in cues:
        assert c.lines and all(c.lines)
        assert len(c.lines) <= count
        assert all(len(line) <= width for line in c.lines)
        assert 0 < c.end - c.start <= dur + 1e-9
    for a, b in pairwise(cues):
        assert b.start - a.end >= opts.min_gap - 1e-9


def test_cues_break_at_segments_and_gap():
    seg1 = _segment([Word("one", 0.0, 0.5, 1.0), Word("two", 0.5, 1.0, 1.0)])
    seg2 = _segment([Word("three", 1.0, 1.4, 1.0)], 1)
    cues = subtitle_cues([seg1, seg2], SubtitleOptions(min_gap=0.1))
    assert [(c.start, c.end, c.lines) for c in cues] == [
        (0.0, 0.9, ("one two",)),
        (1.0, 1.4, ("three",)),
    ]


def test_single_long_word_gets_its_own_cue():
    w = Word("a" * 50, 0.0, 9.0, 1.0)
    cues = subtitle_cues([_segment([w, Word("b", 9.0, 9.2, 1.0)])])
    assert [c.lines for c in cues] == [("a" * 50,), ("b",)]


def test_tiny_cues_never_vanish():
    seg = _segment([Word("aaaa", 0.0, 0.08, 1.0), Word("bbbb", 0.08, 0.16, 1.0)])
    cues = subtitle_cues([seg], SubtitleOptions(max_line_width=4, max_line_count=1))
    assert len(cues) == 2
    assert cues[0].start < cues[0].end < cues[1].start


def test_segment_without_words_still_splits():
    seg = Segment(0, 0.0, 10.0, " ".join(["word"] * 30))
    cues = subtitle_cues([seg], SubtitleOptions(max_line_width=20, max_line_count=1))
    assert len(cues) > 1
    assert cues[0].start == 0.0 and cues[-1].end == 10.0
    assert all(a.end <= b.start for a, b in pairwise(cues))


def test_full_cue_is_cut_at_a_silence():
    # two 17-char lines hold 6 five-letter words, so the 7th overflows the first cue;
    # the 0.4 s silence before the 5th word is where that cue should end instead
    words, t = [], 0.0
    for i in range(8):
        if i == 4:
            t += 0.4
        words.append(Word(f"wor{i}d", round(t, 3), round(t + 0.3, 3), 1.0))
        t += 0.3
    cues = subtitle_cues([_segment(words)], SubtitleOptions(max_line_width=17))
    assert [" ".join(c.lines).split() for c in cues] == [
        [w.word for w in words[:4]], [w.word for w in words[4:]]
    ]
    no_gap = [Word(w.word, i * 0.3, i * 0.3 + 0.3, 1.0) for i, w in enumerate(words)]
    cues = subtitle_cues([_segment(no_gap)], SubtitleOptions(max_line_width=17))
    assert [len(" ".join(c.lines).split()) for c in cues] == [6, 2]
