"""Text to CTC target ids, consistent with an official-format ``vocab.txt``.

``vocab.txt`` lists ``token id`` per line: ``<blank> 0``, ``<unk> 1``, the
sentencepiece pieces (with the ``▁`` word-start marker), ``<sos/eos>`` last.
Pieces are looked up by name, so the ids always agree with ``vocab.txt`` whatever
order the sentencepiece model numbers them in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ModelError
from .vocab import Vocabulary

__all__ = ["Tokenizer", "normalize_text"]

_DROP = re.compile(r"[^a-z' ]+")
_LONE_APOS = re.compile(r"(?<![a-z])'|'(?![a-z])")


def normalize_text(text: str) -> str:
    """Lowercase letters, in-word apostrophes and single spaces (hyphens become spaces).

    The text form the bundled English model is trained on; also what to compare
    hypotheses against when scoring."""
    t = text.lower().replace("\u2019", "'").replace("-", " ")
    t = _DROP.sub(" ", t)
    t = _LONE_APOS.sub(" ", t)
    return " ".join(t.split())


class Tokenizer:
    """``encode(text) -> ids`` for CTC training targets; ``decode(ids) -> text``."""

    def __init__(self, bpe_model: str | Path, vocab: Vocabulary) -> None:
        import sentencepiece as spm

        try:
            self._sp: Any = spm.SentencePieceProcessor(model_file=str(bpe_model))
        except (OSError, RuntimeError) as e:
            raise ModelError(f"{bpe_model}: cannot load sentencepiece model: {e}") from e
        self.vocab = vocab
        self._ids = {tok: i for i, tok in enumerate(vocab.tokens)}
        self.unk_id = self._ids.get("<unk>", 1)
        self.blank_id = 0

    @classmethod
    def from_dir(cls, lang_dir: str | Path) -> Tokenizer:
        """Load ``bpe.model`` and ``vocab.txt`` from one directory (e.g. ``data/lang``)."""
        lang_dir = Path(lang_dir)
        return cls(lang_dir / "bpe.model", Vocabulary.from_file(lang_dir / "vocab.txt"))

    def __len__(self) -> int:
        return len(self.vocab)

    def pieces(self, text: str) -> list[str]:
        return list(self._sp.encode(text, out_type=str))

    def encode(self, text: str) -> list[int]:
        """Token ids (never 0/blank) for ``text``; unknown pieces map to ``<unk>``."""
        return [self._ids.get(p, self.unk_id) for p in self.pieces(text)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.vocab.decode(ids)
