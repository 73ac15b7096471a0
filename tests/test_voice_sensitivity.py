"""scripts/voice_sensitivity.py: distortion names, scoring, and a run on the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from scriptkit import load_script

from chunkasr.training import breath_noise, cepstral_smooth, freq_warp, time_smear

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def vs():  # type: ignore[no-untyped-def]
    return load_script("voice_sensitivity")


def test_distortion_names_map_to_the_training_augmentations(vs) -> None:  # type: ignore[no-untyped-def]
    f = torch.randn(40, 80) + 5
    assert torch.equal(vs.distortion("none")(f, 0), f)
    assert torch.equal(vs.distortion("smear5")(f, 0), time_smear(f, 5))
    assert torch.equal(vs.distortion("warp1.1")(f, 0), freq_warp(f, 1.1))
    b = vs.distortion("breath-15")
    assert torch.equal(b(f, 3), breath_noise(f, -15.0, seed=3)) and not torch.equal(b(f, 3), b(f, 4))
    assert torch.equal(vs.distortion("lift20")(f, 0), cepstral_smooth(f, 20))
    mean = torch.linspace(-2, 3, 80)
    c = vs.distortion("cmn", mean)(f, 0)
    assert torch.allclose(c.mean(0), mean, atol=1e-5)  # every clip gets the same mean vector
    assert torch.allclose(c - c.mean(0), f - f.mean(0), atol=1e-5)  # and keeps its own variation
    for bad in ("smear4", "breath5", "warp9", "reverb", "smearx", "lift0", "lift81", "liftx"):
        with pytest.raises(SystemExit):
            vs.distortion(bad)


def test_score_counts_words_stops_and_inserted_h(vs) -> None:  # type: ignore[no-untyped-def]
    w, stops, ins_h = vs.score(["pat pit kat", "go"], ["bat bit hkat", "go"])
    assert w == pytest.approx(3 / 4)  # bat, bit and hkat: three words of four
    assert stops == pytest.approx(2 / 7)  # p t p t k t g: both p became b
    assert ins_h == 1


def test_runs_on_the_bundled_model(vs, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    row = {"audio": str(DATA / "heldout_clip.wav"), "text": (DATA / "heldout_clip.txt").read_text().strip(),
           "voice": "flite:rms"}  # fmt: skip
    man = tmp_path / "m.jsonl"
    man.write_text(json.dumps(row) + "\n")
    assert vs.main(["--set", f"clip={man}:rms", "--distortions", "none,breath-3"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [ln.split()[:2] for ln in lines] == [["clip", "none"], ["clip", "breath-3"]]
    wers = [float(ln.split()[2]) for ln in lines]
    assert wers[0] <= 50.0 and wers[1] > wers[0]  # noise 3 dB under the speech must cost words
    with pytest.raises(SystemExit):
        vs.main(["--set", f"clip={man}:espeak"])
