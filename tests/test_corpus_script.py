"""scripts/make_corpus.py: the F0 target of the flite and festival voices (session 13)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scriptkit import load_script


@pytest.fixture(scope="module")
def mc():  # type: ignore[no-untyped-def]
    return load_script("make_corpus")


def test_f0_target_spans_low_to_high_speakers_monotonically(mc) -> None:  # type: ignore[no-untyped-def]
    values = [mc.f0_target(p) for p in range(25, 76)]
    assert values[0] == pytest.approx(mc.F0_LOW) and values[-1] == pytest.approx(mc.F0_HIGH)
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert mc.f0_target(0) == pytest.approx(mc.F0_LOW) and mc.f0_target(99) == pytest.approx(mc.F0_HIGH)
    # log-uniform: the middle pitch gives the geometric mean of the range
    assert mc.f0_target(50) == pytest.approx((mc.F0_LOW * mc.F0_HIGH) ** 0.5)


@pytest.mark.parametrize("voice", ["flite:awb", "festival:kal_diphone", "espeak:en-us+m1"])
def test_tts_passes_the_pitch_draw_to_every_engine(mc, monkeypatch, voice: str) -> None:  # type: ignore[no-untyped-def]
    calls: list[list[str]] = []

    def fake_run(cmd: list[str]) -> None:
        calls.append(cmd)
        out = cmd[cmd.index("-w" if cmd[0] == "espeak-ng" else "-o") + 1]
        sf.write(out, np.zeros(1600, np.float32), 16000)

    monkeypatch.setattr(mc, "_run", fake_run)
    for pitch in (30, 70):
        x = mc.tts("hello there", voice, rate=1.0, pitch=pitch)
        assert x.dtype == np.float32 and len(x) == 1600
    low, high = (" ".join(c) for c in calls)
    if voice.startswith("espeak"):
        assert "-p 30" in low and "-p 70" in high
    else:
        for cmd, pitch in ((low, 30), (high, 70)):
            f0 = f"{mc.f0_target(pitch):.1f}"
            key = "int_f0_target_mean=" if voice.startswith("flite") else "target_f0_mean "
            assert key + f0 in cmd, cmd
        assert low != high
