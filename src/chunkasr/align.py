"""CTC tokens -> words -> segments -> subtitle cues.

Everything here works on encoder frames (80 ms, ``types.FRAME_SECONDS``) counted from the
start of the audio, so chunk boundaries of the encoder play no part: a word whose pieces
spike at frames 63 and 64 is one word like any other.

Timing rules (DESIGN section 6). CTC gives one spike frame per token and nothing else:

- a token's time is its spike frame x 80 ms;
- a word starts at its first token's spike;
- a word ends at ``min(next word's start, end of its last token's frame + WORD_TAIL_FRAMES
  frames, audio duration)``. CTC spikes sit near a token's onset, so the word is allowed a
  short tail of blank frames after its last spike, but never a long pause (the blank run
  that follows caps it) and never past the next word;
- a word's probability is the mean of its tokens' spike posteriors (rounded to 4 places);
- segments break where the blank run between two words (the frames strictly between the
  last spike of one and the first spike of the next) lasts at least ``pause`` seconds.

Times are rounded to the millisecond so that what is stored is what the writers print.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ConfigError
from .types import FRAME_SECONDS, Segment, TokenSpan, Transcript, Word
from .vocab import WORD_MARK, Vocabulary

__all__ = [
    "WORD_TAIL_FRAMES",
    "BREAK_GAP",
    "SubtitleOptions",
    "Cue",
    "tokens_to_words",
    "words_to_segments",
    "segment_words",
    "build_transcript",
    "subtitle_cues",
    "wrap_words",
]

WORD_TAIL_FRAMES = 2  # blank frames (160 ms) a word may extend past its last token's frame


@dataclass(frozen=True)
class _RawWord:
    """A word before it is given times: its text and the spans of its tokens."""

    text: str
    spans: tuple[TokenSpan, ...]


def _seconds(frame: int) -> float:
    return round(frame * FRAME_SECONDS, 3)


def _is_special(piece: str) -> bool:
    # <blank>, <unk>, <sos/eos>: never part of the text (same rule as Vocabulary.decode)
    return piece.startswith("<") and piece.endswith(">")


def _group_words(tokens: Sequence[TokenSpan], vocab: Vocabulary) -> list[_RawWord]:
    words: list[_RawWord] = []
    pieces: list[str] = []
    spans: list[TokenSpan] = []

    def close() -> None:
        text = "".join(pieces).replace(WORD_MARK, " ").strip()
        if text:  # a lone "▁" token makes no word of its own
            words.append(_RawWord(text, tuple(spans)))
        pieces.clear()
        spans.clear()

    for token in sorted(tokens, key=lambda t: t.frame):
        piece = vocab.piece(token.id)
        if _is_special(piece):
            continue
        if vocab.starts_word(token.id) and spans:
            close()
        pieces.append(piece)
        spans.append(token)
    if spans:
        close()
    return words


def tokens_to_words(
    tokens: Sequence[TokenSpan], vocab: Vocabulary, duration: float | None = None
) -> list[Word]:
    """Decoded tokens (any order, global frames) -> timed words, by the module's rules."""
    return _timed(_group_words(tokens, vocab), duration)


def _timed(raw: Sequence[_RawWord], duration: float | None) -> list[Word]:
    words: list[Word] = []
    for i, w in enumerate(raw):
        first, last = w.spans[0].frame, w.spans[-1].frame
        end_frame = last + 1 + WORD_TAIL_FRAMES
        if i + 1 < len(raw):
            end_frame = min(end_frame, raw[i + 1].spans[0].frame)
        start, end = _seconds(first), _seconds(end_frame)
        if duration is not None:
            # the last frame may reach past the audio (frames cover whole 80 ms steps)
            end = min(end, round(duration, 3))
            start = min(start, end)
        prob = sum(s.probability for s in w.spans) / len(w.spans)
        words.append(Word(word=w.text, start=start, end=end, probability=round(prob, 4)))
    return words


def _blank_seconds_between(a: _RawWord, b: _RawWord) -> float:
    return (b.spans[0].frame - a.spans[-1].frame - 1) * FRAME_SECONDS


def words_to_segments(words: Sequence[Word], breaks: Sequence[bool]) -> list[Segment]:
    """Group words into segments; ``breaks[i]`` says whether a segment starts at word ``i``."""
    if len(breaks) != len(words):
        raise ValueError("need one break flag per word")
    groups: list[list[Word]] = []
    for word, brk in zip(words, breaks, strict=True):
        if brk or not groups:
            groups.append([])
        groups[-1].append(word)
    return [
        Segment(
            id=i,
            start=g[0].start,
            end=g[-1].end,
            text=" ".join(w.word for w in g),
            words=list(g),
        )
        for i, g in enumerate(groups)
    ]


def segment_words(
    tokens: Sequence[TokenSpan],
    vocab: Vocabulary,
    pause: float = 0.5,
    duration: float | None = None,
) -> list[Segment]:
    """Tokens -> segments that break at blank runs of at least ``pause`` seconds."""
    if pause <= 0:
        raise ConfigError(f"pause must be positive, got {pause}")
    raw = _group_words(tokens, vocab)
    # frames x 0.08 is inexact in binary (7 x 0.08 = 0.5599999999999999): a little slack
    # makes 7 blank frames count as a pause of 0.56 s
    breaks = [
        i == 0 or _blank_seconds_between(raw[i - 1], raw[i]) >= pause - 1e-9
        for i in range(len(raw))
    ]
    return words_to_segments(_timed(raw, duration), breaks)


def build_transcript(
    tokens: Sequence[TokenSpan],
    vocab: Vocabulary,
    audio_name: str,
    duration: float,
    model_name: str,
    language: str,
    pause: float = 0.5,
) -> Transcript:
    """The whole result for one audio: segments, words and the joined text."""
    segments = segment_words(tokens, vocab, pause=pause, duration=duration)
    return Transcript(
        audio=audio_name,
        duration=round(duration, 3),
        model=model_name,
        language=language,
        text=" ".join(s.text for s in segments),
        segments=segments,
    )


# ---------------------------------------------------------------- subtitles


@dataclass(frozen=True)
class SubtitleOptions:
    """Limits for SRT/VTT cues (common broadcast guidelines: 42 chars, 2 lines, 7 s)."""

    max_line_width: int = 42  # characters per line
    max_line_count: int = 2  # lines per cue
    max_cue_duration: float = 7.0  # seconds
    min_gap: float = 0.08  # seconds between cues, so players never merge or flicker them

    def __post_init__(self) -> None:
        if self.max_line_width < 1:
            raise ConfigError(f"max_line_width must be at least 1, got {self.max_line_width}")
        if self.max_line_count < 1:
            raise ConfigError(f"max_line_count must be at least 1, got {self.max_line_count}")
        if not self.max_cue_duration > 0:
            raise ConfigError(f"max_cue_duration must be positive, got {self.max_cue_duration}")
        if not 0 <= self.min_gap < 1:
            raise ConfigError(f"min_gap must be in [0, 1) seconds, got {self.min_gap}")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _greedy_lines(words: Sequence[str], width: int) -> list[list[str]]:
    lines: list[list[str]] = []
    length = 0
    for w in words:
        if lines and length + 1 + len(w) <= width:
            lines[-1].append(w)
            length += 1 + len(w)
        else:
            lines.append([w])  # a word longer than the width gets a line of its own
            length = len(w)
    return lines


def wrap_words(words: Sequence[str], width: int) -> list[str]:
    """Break words into as few lines of at most ``width`` characters as greedy filling needs,
    then balance them: the narrowest width that still needs no more lines is used, so a
    two-line cue reads as two similar lines rather than one full line and a stub."""
    if not words:
        return []
    n_lines = len(_greedy_lines(words, width))
    lo = max(len(w) for w in words)
    hi = max(width, lo)
    while lo < hi:  # the line count only grows as the width shrinks: binary search
        mid = (lo + hi) // 2
        if len(_greedy_lines(words, mid)) <= n_lines:
            hi = mid
        else:
            lo = mid + 1
    return [" ".join(line) for line in _greedy_lines(words, lo)]


BREAK_GAP = 0.16  # s: a silence this long inside a cue is a better place to cut than none


def _fits(words: Sequence[Word], options: SubtitleOptions) -> bool:
    lines = _greedy_lines([w.word for w in words], options.max_line_width)
    duration = words[-1].end - words[0].start
    return len(lines) <= options.max_line_count and duration <= options.max_cue_duration + 1e-9


def _natural_break(cue: Sequence[Word]) -> int | None:
    """Where to cut a full cue instead of before the word that overflows it: at its longest
    silence of at least ``BREAK_GAP``, looking only in its second half so cues stay long."""
    best, where = BREAK_GAP - 1e-9, None
    for i in range(max(1, len(cue) // 2), len(cue)):
        gap = cue[i].start - cue[i - 1].end
        if gap >= best:
            best, where = gap, i
    return where


def _cue_words(words: Sequence[Word], options: SubtitleOptions) -> list[list[Word]]:
    """Split one segment's words into groups that each fit one cue."""
    cues: list[list[Word]] = []
    for word in words:
        if cues and _fits(cues[-1] + [word], options):
            cues[-1].append(word)
            continue
        cut = _natural_break(cues[-1]) if cues else None
        if cut is not None and _fits(cues[-1][cut:] + [word], options):
            tail = cues[-1][cut:]
            del cues[-1][cut:]
            cues.append(tail + [word])
        else:
            cues.append([word])
    return cues


def _spread_words(segment: Segment) -> list[Word]:
    """Words for a segment built without them (by hand, or by other tools): the segment's
    time shared out in proportion to word length, so it can still be split into cues."""
    texts = segment.text.split()
    total = sum(len(t) + 1 for t in texts)
    span = segment.end - segment.start
    words, done = [], 0
    for t in texts:
        start = segment.start + span * done / total
        done += len(t) + 1
        words.append(Word(t, round(start, 3), round(segment.start + span * done / total, 3), 0.0))
    return words


def subtitle_cues(
    segments: Sequence[Segment], options: SubtitleOptions | None = None
) -> list[Cue]:
    """Segments -> cues within ``options``' limits, in time order, never overlapping.

    A cue breaks at every segment boundary and where adding a word would need more lines or
    a longer duration than allowed (moved back to the cue's longest silence in its second
    half, if one lasts ``BREAK_GAP``); only a single word that alone exceeds a limit makes a
    cue over it. Cues end ``min_gap`` before the next one starts; when that would leave a
    cue no time at all (two one-frame cues back to back) it ends half way to the next one.
    """
    options = options or SubtitleOptions()
    groups = [
        g for seg in segments for g in _cue_words(seg.words or _spread_words(seg), options)
    ]
    cues: list[Cue] = []
    for i, group in enumerate(groups):
        start, end = group[0].start, group[-1].end
        if i + 1 < len(groups):
            next_start = groups[i + 1][0].start
            end = min(end, next_start - options.min_gap)
            if end <= start:
                end = (start + next_start) / 2
        lines = wrap_words([w.word for w in group], options.max_line_width)
        cues.append(Cue(start=round(start, 3), end=round(end, 3), lines=tuple(lines)))
    return cues
