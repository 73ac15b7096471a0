"""The official ``vocab.txt``: one ``token id`` per line, id 0 is the CTC blank.

Text is the tokens joined, with the sentencepiece word marker ``▁`` turned into spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import ModelError

__all__ = ["Vocabulary", "WORD_MARK"]

WORD_MARK = "\u2581"  # sentencepiece's "▁": a token starting with it begins a new word


class Vocabulary:
    def __init__(self, tokens: Sequence[str]) -> None:
        if not tokens:
            raise ModelError("vocabulary is empty")
        self.tokens = list(tokens)

    @classmethod
    def from_file(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ModelError(f"{path}: cannot read vocabulary: {e}") from e
        table: dict[int, str] = {}
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ModelError(f"{path}:{n}: expected 'token id', got {line!r}")
            token, idx = parts[0], int(parts[1])
            if idx in table:
                raise ModelError(f"{path}:{n}: id {idx} appears twice")
            table[idx] = token
        size = len(table)
        if sorted(table) != list(range(size)):
            raise ModelError(f"{path}: ids must be 0..{size - 1} without gaps")
        return cls([table[i] for i in range(size)])

    def __len__(self) -> int:
        return len(self.tokens)

    def piece(self, idx: int) -> str:
        return self.tokens[idx]

    def starts_word(self, idx: int) -> bool:
        return self.tokens[idx].startswith(WORD_MARK)

    def decode(self, ids: Sequence[int]) -> str:
        """Token ids to text; special tokens like ``<blank>``/``<unk>``/``<sos/eos>`` are dropped."""
        pieces = [self.tokens[i] for i in ids if not _is_special(self.tokens[i])]
        return "".join(pieces).replace(WORD_MARK, " ").strip()


def _is_special(token: str) -> bool:
    return token.startswith("<") and token.endswith(">")
