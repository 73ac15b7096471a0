"""Shared fixtures. Keep additions small and independent: several modules' tests use this."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

try:  # tests run from a checkout without `pip install -e .` too
    import chunkasr  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).parent.parent / "src"))

from chunkasr.vocab import Vocabulary  # noqa: E402

# A hand-made sentencepiece-style vocabulary for alignment and writer tests.
TOY_TOKENS = [
    "<blank>", "<unk>", "\u2581hello", "\u2581wor", "ld", "\u2581the", "\u2581a",
    "\u2581", "x", "\u2581cat", "s", "<sos/eos>",
]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def toy_vocab() -> Vocabulary:
    return Vocabulary(TOY_TOKENS)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight 2-block model in the official layout (outputs are gibberish)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from modelkit import make_tiny_model_dir

    return make_tiny_model_dir(tmp_path_factory.mktemp("models") / "tiny")
