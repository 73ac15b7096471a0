"""CTC greedy and prefix beam search on hand-built log-probs with known answers."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from chunkasr.decoding import (
    CTCDecoder,
    DecodeOptions,
    ctc_greedy_search,
    ctc_prefix_beam_search,
    decode,
)
from chunkasr.lm import EOS, UNK, ArpaLM, estimate_kneser_ney
from chunkasr.types import TokenSpan
from chunkasr.vocab import Vocabulary

EXACT = {"token_top_k": 100, "token_min_prob": 0.0, "blank_skip_prob": 1.0}
WIDE = {"beam_size": 1000, **EXACT}


def frames(*rows: dict[int, float], vocab_size: int = 4) -> torch.Tensor:
    """(T, V) log-probs from per-frame {token: prob}; the rest of each frame's mass is spread."""
    out = torch.empty(len(rows), vocab_size, dtype=torch.float64)
    for t, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (vocab_size - len(row))
        for v in range(vocab_size):
            out[t, v] = row.get(v, rest)
    return out.clamp_min(1e-30).log().float()


def brute_force(log_probs: torch.Tensor, blank: int = 0) -> dict[tuple[int, ...], float]:
    """P(sequence | x) for every token sequence, by summing all V**T paths."""
    T, V = log_probs.shape
    lp = log_probs.double()
    total: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        logp = sum(float(lp[t, c]) for t, c in enumerate(path))
        seq = tuple(c for i, c in enumerate(path) if c != blank and (i == 0 or path[i - 1] != c))
        total[seq] = total.get(seq, 0.0) + math.exp(logp)
    return total


def spans(tokens: list[TokenSpan]) -> list[tuple[int, int]]:
    return [(t.id, t.frame) for t in tokens]


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_repeat_across_blank_is_two_tokens(method: str) -> None:
    lp = frames({1: 0.9}, {0: 0.9}, {1: 0.9}, {1: 0.9}, {2: 0.9})
    got = decode(lp, DecodeOptions(method=method, beam_size=4))
    assert spans(got) == [(1, 0), (1, 2), (2, 4)]
    assert got[0].probability == pytest.approx(0.9, rel=1e-5)


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_all_blank_single_frame_and_empty(method: str) -> None:
    opts = DecodeOptions(method=method)
    assert decode(frames({0: 0.99}, {0: 0.9999}, {0: 0.6}), opts) == []
    assert spans(decode(frames({3: 0.8}), opts)) == [(3, 0)]
    assert decode(torch.zeros(0, 5), opts) == []
    with pytest.raises(ValueError):
        decode(torch.zeros(3), opts)


def test_beam_beats_greedy_where_paths_add_up() -> None:
    # Best path is blank-blank (0.36) but "1" sums 0.6*0.4 + 0.4*0.6 + 0.4*0.4 = 0.64.
    lp = frames({0: 0.6, 1: 0.4}, {0: 0.6, 1: 0.4}, vocab_size=3)
    assert ctc_greedy_search(lp) == []
    hyp = ctc_prefix_beam_search(lp, 4, **EXACT)[0]
    assert hyp.ids == [1]
    assert hyp.acoustic == pytest.approx(math.log(0.64), abs=1e-5)
    assert spans(hyp.tokens) == [(1, 0)]


@pytest.mark.parametrize("seed", range(25))
def test_large_beam_is_exact_best_sequence(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    T = int(torch.randint(1, 7, (), generator=g))
    V = int(torch.randint(3, 5, (), generator=g))
    lp = (2 * torch.randn(T, V, generator=g)).log_softmax(-1)
    truth = brute_force(lp)
    hyps = ctc_prefix_beam_search(lp, 10_000, nbest=10_000, **EXACT)
    best = max(truth.values())
    assert truth[tuple(hyps[0].ids)] == pytest.approx(best, rel=1e-6)
    for h in hyps:
        assert h.acoustic == pytest.approx(math.log(truth[tuple(h.ids)]), abs=1e-5)
    assert sum(math.exp(h.acoustic) for h in hyps) == pytest.approx(1.0, abs=1e-5)


def synthetic(T: int, V: int, seed: int = 0) -> torch.Tensor:
    """Peaky CTC-like log-probs: a token spike on ~30% of frames, blank elsewhere."""
    g = torch.Generator().manual_seed(seed)
    spike = torch.rand(T, generator=g) < 0.3
    top = torch.where(spike, torch.randint(1, V, (T,), generator=g), 0)
    resid = 10 ** (-1 - 5 * torch.rand(T, generator=g))
    probs = torch.rand(T, V, generator=g).softmax(-1) * resid[:, None]
    probs[torch.arange(T), top] = 1 - resid
    return probs.log()


def test_pruned_beam_agrees_with_greedy_on_peaky_input() -> None:
    lp = synthetic(600, 50)
    greedy = ctc_greedy_search(lp)
    beam = decode(lp, DecodeOptions(method="beam", beam_size=8))
    assert spans(beam) == spans(greedy)
    assert [t.probability for t in beam] == pytest.approx([t.probability for t in greedy])


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_compact_top_k_input_matches_dense(method: str) -> None:
    lp = synthetic(300, 40, seed=3)
    vals, ids = lp.topk(6, dim=1)
    opts = DecodeOptions(method=method, beam_size=4)
    assert decode(vals, opts, ids=ids) == decode(lp, opts)
    assert ctc_prefix_beam_search(vals[:, 1:], 4, ids=ids[:, 1:])[0].ids  # blank-less frames
    with pytest.raises(ValueError):
        decode(vals, opts, ids=ids[:, :2])


def test_spike_moves_to_the_emission_that_carries_the_mass() -> None:
    # "1" is first possible at frame 0 (0.3) but nearly all its mass comes from frame 2
    lp = frames({0: 0.7, 1: 0.3}, {0: 0.98}, {1: 0.98}, {0: 0.98}, vocab_size=3)
    hyp = ctc_prefix_beam_search(lp, 4, **EXACT)[0]
    assert spans(hyp.tokens) == spans(ctc_greedy_search(lp)) == [(1, 2)]
    assert hyp.tokens[0].probability == pytest.approx(0.98, rel=1e-5)
    # a later, weaker emission leaves the spike where it was
    lp = frames({1: 0.98}, {0: 0.9, 1: 0.05}, {1: 0.3, 0: 0.65}, vocab_size=3)
    assert spans(ctc_prefix_beam_search(lp, 4, **EXACT)[0].tokens) == [(1, 0)]


def test_blank_skip_keeps_repeat_semantics() -> None:
    # the middle frame is skipped (blank 0.9999): "1 _ 1" must still be two tokens
    lp = frames({1: 0.99}, {0: 0.9999}, {1: 0.99}, vocab_size=3)
    hyp = ctc_prefix_beam_search(lp, 4)[0]
    assert spans(hyp.tokens) == [(1, 0), (1, 2)]


def test_options_are_validated() -> None:
    for bad in (
        {"method": "viterbi"},
        {"beam_size": 0},
        {"token_min_prob": 1.0},
        {"blank_skip_prob": 0.0},
        {"lm_weight": math.nan},
        {"method": "beam", "lm_weight": -1.0},
        {"method": "beam", "hotwords": {"x": -1.0}},
        {"hotwords": {"x": 1.0}},  # greedy cannot use hotwords
        {"method": "beam", "hotwords": {" ": 1.0}},
    ):
        with pytest.raises(ValueError):
            DecodeOptions(**bad)  # type: ignore[arg-type]
    words = {"abc": 1.0}
    opts = DecodeOptions(method="beam", hotwords=words)
    words["abc"] = 5.0
    assert opts.hotwords == {"abc": 1.0}
    same = DecodeOptions(method="beam", hotwords={"abc": 1.0})
    assert same == opts and hash(same) == hash(opts)
    with pytest.raises(ValueError, match="vocabulary"):
        CTCDecoder(opts)


VOCAB = Vocabulary(["<blank>", "\u2581the", "\u2581bear", "\u2581bare", "\u2581wall"])


def near_miss() -> torch.Tensor:
    """"the bare" by a small margin over "the bear"."""
    return frames({1: 0.95}, {0: 0.95}, {3: 0.5, 2: 0.45}, {0: 0.95}, vocab_size=5)


def test_lm_changes_the_result(tmp_path) -> None:
    text = [["the", "bear"]] * 20 + [["a", "bare", "wall"]]
    arpa = tmp_path / "lm.arpa"
    arpa.write_text(estimate_kneser_ney(text, order=3))
    plain = decode(near_miss(), DecodeOptions(method="beam"), VOCAB)
    with_lm = decode(near_miss(), DecodeOptions(method="beam", lm_path=arpa, lm_weight=0.5), VOCAB)
    assert VOCAB.decode([t.id for t in plain]) == "the bare"
    assert VOCAB.decode([t.id for t in with_lm]) == "the bear"
    assert spans(with_lm) == [(1, 0), (2, 2)]  # spike frames survive the LM


def test_unknown_word_is_charged_once(tmp_path) -> None:
    vocab = Vocabulary(["<blank>", "\u2581the", "\u2581bear", "bear", "s"])
    arpa = tmp_path / "lm.arpa"
    arpa.write_text(estimate_kneser_ney([["the", "bear"]] * 5, order=2))
    lm = ArpaLM.from_file(arpa)
    glued = frames({1: 0.999}, {0: 0.999}, {3: 0.999}, {4: 0.999}, vocab_size=5)  # "thebears"
    opts = DecodeOptions(method="beam", lm_path=arpa, lm_weight=0.5, unk_score=-7.0, **WIDE)
    hyp = CTCDecoder(opts, vocab).search(glued)[0]
    assert hyp.ids == [1, 3, 4]
    unk, state = lm.score(lm.begin(), UNK)
    expected = 0.5 * unk - 7.0 + 0.5 * lm.score(state, EOS)[0]
    assert hyp.score - hyp.acoustic == pytest.approx(expected, abs=1e-6)


def test_lazy_scoring_changes_nothing(tmp_path) -> None:
    """New prefixes are LM-scored only when their bound reaches the top; scoring all agrees."""
    vocab = Vocabulary(["<blank>", "\u2581the", "\u2581bear", "\u2581bare", "s", "\u2581a"])
    arpa = tmp_path / "lm.arpa"
    arpa.write_text(estimate_kneser_ney([["the", "bear"], ["a", "bare"], ["the", "bears"]], 3))
    opts = DecodeOptions(method="beam", beam_size=3, lm_path=arpa, word_score=0.5,
                         hotwords={"bare": 1.0}, token_min_prob=0.0)
    lazy = CTCDecoder(opts, vocab)
    eager = CTCDecoder(opts, vocab)
    assert eager._scorer is not None
    eager._scorer.max_bonus = 1e9  # every new prefix is scored before ranking
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        lp = (3 * torch.randn(12, 6, generator=g)).log_softmax(-1)
        a, b = lazy.search(lp, nbest=3), eager.search(lp, nbest=3)
        assert [h.ids for h in a] == [h.ids for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b])


def test_lm_matches_words_across_case(tmp_path) -> None:
    upper = Vocabulary([t.upper() for t in VOCAB.tokens])  # LibriSpeech-style pieces
    arpa = tmp_path / "lm.arpa"
    arpa.write_text(estimate_kneser_ney([["the", "bear"]] * 20 + [["a", "bare", "wall"]], 3))
    got = decode(near_miss(), DecodeOptions(method="beam", lm_path=arpa), upper)
    assert upper.decode([t.id for t in got]) == "THE BEAR"


def test_hotword_fixes_near_miss() -> None:
    opts = DecodeOptions(method="beam", hotwords={"bear": 1.0})
    got = decode(near_miss(), opts, VOCAB)
    assert VOCAB.decode([t.id for t in got]) == "the bear"


def test_failed_partial_hotword_gets_no_net_boost() -> None:
    # no pruning, so both searches sum the same paths and scores differ by the bonus only
    vocab = Vocabulary(["<blank>", "\u2581new", "\u2581york", "\u2581jersey", "\u2581city"])
    lp = frames({1: 0.9}, {0: 0.9}, {3: 0.9}, {0: 0.9}, vocab_size=5)  # "new jersey"
    plain = CTCDecoder(DecodeOptions(method="beam", word_score=0.1, **WIDE), vocab).search(lp)[0]
    biased = CTCDecoder(
        DecodeOptions(method="beam", word_score=0.1, hotwords={"new york": 1.0}, **WIDE), vocab
    ).search(lp)[0]
    assert biased.ids == plain.ids == [1, 3]
    assert biased.score == pytest.approx(plain.score, abs=1e-6)
    full = frames({1: 0.9}, {0: 0.9}, {2: 0.9}, {0: 0.9}, vocab_size=5)  # "new york"
    plain = CTCDecoder(DecodeOptions(method="beam", word_score=0.1, **WIDE), vocab).search(full)[0]
    biased = CTCDecoder(
        DecodeOptions(method="beam", word_score=0.1, hotwords={"new york": 1.0}, **WIDE), vocab
    ).search(full)[0]
    assert biased.score == pytest.approx(plain.score + 2.0, abs=1e-6)


def test_cli_decoder_flags(tiny_model_dir, tmp_path) -> None:
    import numpy as np
    import soundfile as sf
    from click.testing import CliRunner

    from chunkasr.cli import main

    wav = tmp_path / "noise.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 16000).astype("float32"), 16000)
    arpa = tmp_path / "lm.arpa"
    arpa.write_text(estimate_kneser_ney([["the", "cat"], ["a", "cat"]], 2))
    base = ["transcribe", str(wav), "-m", str(tiny_model_dir), "-q"]
    runner = CliRunner()
    ok = runner.invoke(main, [*base, "--lm", str(arpa), "--hotwords", "the cat:1.5,a"])
    assert ok.exit_code == 0, ok.output
    assert runner.invoke(main, [*base, "--decoder", "beam", "--beam-size", "2"]).exit_code == 0
    for bad in (
        ["--decoder", "greedy", "--lm", str(arpa)],  # greedy cannot use an LM
        ["--hotwords", "zebra"],  # 'z' is no piece of the tiny vocabulary
        ["--beam-size", "0"],
    ):
        result = runner.invoke(main, [*base, *bad])
        assert result.exit_code == 2, (bad, result.output)
