"""The bundled English model recognises held-out speech (voice and text never seen in training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import chunkasr
from chunkasr.hub import bundled_model_dir
from chunkasr.metrics import cer, wer

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"

# Regression bars for the shipped model (models/en-small/README.md, `scripts/measure_examples.py`,
# session-11 weights: WER 0.625 / CER 0.25 on the 8-word held-out-voice clip, 0.14 / 0.028 on
# longform.wav). The clip is one sentence of the weakest held-out voice: across the last five
# models it moved between 0.25 and 0.625 WER (CER 0.19-0.31) while the full splits improved, so
# its WER bar is loose and its CER bar has margin; the 3-minute longform.wav carries the tight
# bar. A random or broken
# model scores ~1.0 on both.
CLIP_WER, CLIP_CER = 0.65, 0.40
LONG_WER, LONG_CER = 0.20, 0.06

pytestmark = pytest.mark.skipif(bundled_model_dir() is None, reason="no bundled model (models/en-small)")


@pytest.fixture(scope="module")
def model():
    return chunkasr.load_model(device="cpu", dtype="fp32")


def test_heldout_clip(model) -> None:
    ref = (DATA / "heldout_clip.txt").read_text().strip()
    (t,) = list(model.transcribe(DATA / "heldout_clip.wav"))
    assert wer(ref, t.text) <= CLIP_WER and cer(ref, t.text) <= CLIP_CER, t.text
    assert t.segments and all(w.start < w.end for s in t.segments for w in s.words)


def test_longform_example_words_and_timing(model) -> None:
    wav = ROOT / "examples" / "longform.wav"
    refs = json.loads(wav.with_suffix(".json").read_text())
    (t,) = list(model.transcribe(wav))
    ref_text = " ".join(r["text"] for r in refs)
    assert wer(ref_text, t.text) <= LONG_WER and cer(ref_text, t.text) <= LONG_CER, t.text
    # every reference utterance starts within 0.3 s of some recognised word
    starts = [w.start for s in t.segments for w in s.words]
    near = sum(1 for r in refs if min(abs(r["start"] - s) for s in starts) <= 0.3)
    assert near >= 0.8 * len(refs)


def test_silence_gives_no_words(model) -> None:
    import numpy as np

    (t,) = list(model.transcribe(np.zeros(16000 * 3, dtype=np.float32)))
    assert t.text == ""
