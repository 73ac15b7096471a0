"""A model directory's own decoding.yaml: read strictly, used by default, overridable."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import chunkasr
import chunkasr.api
from chunkasr.api import model_decode_options
from chunkasr.cli import main, merge_decode_options
from chunkasr.decoding import DecodeOptions
from chunkasr.errors import ModelError
from chunkasr.lm import estimate_kneser_ney


@pytest.fixture()
def lm_model_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "with-lm"
    shutil.copytree(tiny_model_dir, d)
    arpa = estimate_kneser_ney([["the", "cat"], ["a", "cat"], ["the", "a"]], order=2)
    (d / "lm.arpa").write_text(arpa)
    (d / "decoding.yaml").write_text("method: beam\nbeam_size: 5\nlm: lm.arpa\nlm_weight: 0.3\n")
    return d


def test_no_file_means_greedy(tiny_model_dir: Path) -> None:
    assert model_decode_options(tiny_model_dir) == DecodeOptions()


def test_file_is_read_with_lm_relative_to_the_model(lm_model_dir: Path) -> None:
    opts = model_decode_options(lm_model_dir)
    assert (opts.method, opts.beam_size, opts.lm_weight) == ("beam", 5, 0.3)
    assert Path(opts.lm_path).resolve() == (lm_model_dir / "lm.arpa").resolve()
    model = chunkasr.load_model(lm_model_dir, device="cpu")
    assert model.decode_options == opts


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("method: beam\nbeam_wdth: 4\n", "unknown decoding option 'beam_wdth'"),
        ("method: beam\nlm: missing.arpa\n", "missing.arpa does not exist"),
        ("method: greedy\nword_score: 1.0\n", "need method='beam'"),
        ("[1, 2]\n", "expected a mapping"),
        ("method: [\n", "cannot read"),
    ],
)
def test_bad_files_are_model_errors(lm_model_dir: Path, text: str, message: str) -> None:
    (lm_model_dir / "decoding.yaml").write_text(text)
    with pytest.raises(ModelError, match="decoding.yaml") as err:
        model_decode_options(lm_model_dir)
    assert message in str(err.value)


def test_merge_keeps_the_model_lm_unless_greedy() -> None:
    base = DecodeOptions(method="beam", beam_size=5, lm_path="x.arpa", lm_weight=0.3)
    assert merge_decode_options(base, {}) == base
    assert merge_decode_options(base, {"beam_size": 3}).lm_path == "x.arpa"
    greedy = merge_decode_options(base, {"method": "greedy"})
    assert greedy.method == "greedy" and greedy.lm_path is None and not greedy.uses_words
    assert merge_decode_options(base, {"lm_path": "y.arpa"}).lm_path == "y.arpa"


def test_cli_uses_the_model_decoding_by_default(lm_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    wav = tmp_path / "noise.wav"
    sig = (np.random.default_rng(3).standard_normal(16000 * 2) * 0.1).astype(np.float32)
    sf.write(wav, sig, 16000, subtype="PCM_16")
    seen: list[DecodeOptions] = []
    real = chunkasr.api.decode

    def spy(logp, options, vocab, ids=None):
        seen.append(options)
        return real(logp, options, vocab, ids=ids)

    monkeypatch.setattr(chunkasr.api, "decode", spy)

    def run(*extra: str) -> DecodeOptions:
        seen.clear()
        r = CliRunner().invoke(main, ["transcribe", str(wav), "--model", str(lm_model_dir), "-q", *extra])
        assert r.exit_code == 0, r.output
        (opts,) = seen
        return opts

    default = run()
    assert default.method == "beam" and default.beam_size == 5 and default.lm_path is not None
    assert run("--beam-size", "3").beam_size == 3 and run("--beam-size", "3").lm_path is not None
    greedy = run("--decoder", "greedy")
    assert greedy.method == "greedy" and greedy.lm_path is None
