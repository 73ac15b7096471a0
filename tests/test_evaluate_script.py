"""scripts/evaluate.py: WER/CER per split, context and voice family on a corpus manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scriptkit import load_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "evaluate.py"


def _script():
    return load_script("evaluate")


def test_voice_family_groups_variants_but_keeps_the_held_out_one() -> None:
    fam = _script().voice_family
    assert fam("espeak:en-us+m3") == fam("espeak:en-us+f1") == "espeak:en-us"
    assert fam("espeak:en-gb-x-rp+f3") == "espeak:en-gb-x-rp+f3"
    assert fam("flite:rms") == "flite:rms"
    assert fam("festival:kal_diphone") == "festival:kal_diphone"


def test_per_voice_counts_add_up_to_the_split(tiny_model_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    voices = ["flite:rms", "espeak:en-us+m1", "espeak:en-us+m2"]
    texts = ["a b", "c d e", "f"]
    with (corpus / "dev.jsonl").open("w") as f:
        for i, (voice, text) in enumerate(zip(voices, texts, strict=True)):
            wav = corpus / "wav" / f"u{i}.wav"
            sf.write(wav, (0.1 * rng.standard_normal(16000 + 4000 * i)).astype(np.float32), 16000)
            f.write(json.dumps({"id": f"u{i}", "audio": str(wav), "text": text, "voice": voice}) + "\n")
    out = tmp_path / "eval.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(tiny_model_dir), "--corpus", str(corpus),
         "--splits", "dev", "--contexts", "full,4/8/4", "--threads", "1", "--json", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    res = json.loads(out.read_text())["splits"]["dev"]
    for ctx in ("full", "4/8/4"):
        s = res[ctx]
        assert set(s["voices"]) == {"flite:rms", "espeak:en-us"}
        assert s["voices"]["espeak:en-us"]["utterances"] == 2
        assert sum(v["words"] for v in s["voices"].values()) == s["words"] == 6
        assert sum(v["sub"] + v["del"] for v in s["voices"].values()) == s["sub"] + s["del"]


def test_everyday_sentences_are_speakable_as_written() -> None:
    mod = load_script("make_everyday_eval")
    sentences = mod.read_sentences(mod.TEXT)
    assert len(sentences) == len(set(sentences)) >= 80
    assert all(s == " ".join(s.split()) and s.islower() for s in sentences)
