import math
import random
import shutil

import numpy as np
import pytest
import torch

from chunkasr.features import fbank
from chunkasr.model import ChunkFormerCTC, ModelConfig
from chunkasr.training import (
    AugmentConfig,
    BucketBatchSampler,
    ContextSampler,
    FeatureStore,
    FeatureWriter,
    augment_waveform,
    breath_noise,
    cepstral_smooth,
    change_tempo,
    concat_with_pauses,
    ctc_step,
    freq_warp,
    insert_blocks,
    load_checkpoint,
    noam_cosine_lr,
    save_checkpoint,
    shrink_block_outputs,
    spec_augment,
    time_smear,
)

CFG = ModelConfig(vocab_size=12, d_model=32, attention_heads=2, linear_units=64, num_blocks=2,
                  cnn_module_kernel=5)  # fmt: skip


def toy_batch():
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(n, 80, generator=g) * 3 + 10 for n in (160, 200, 120)]
    targets = [[3, 4, 5], [6, 7, 3, 9], [10, 2]]
    return feats, targets


def make(seed=0):
    torch.manual_seed(seed)
    model = ChunkFormerCTC(CFG)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    return model, opt


def test_training_steps_reduce_loss():
    torch.set_num_threads(1)
    model, opt = make()
    feats, targets = toy_batch()
    losses = [ctc_step(model, opt, None, feats, targets, (8, 8, 4), autocast=False)["loss"]
              for _ in range(25)]  # fmt: skip
    assert losses[-1] < 0.5 * losses[0], losses


def test_bf16_autocast_step_runs_and_is_finite():
    model, opt = make()
    feats, targets = toy_batch()
    out = ctc_step(model, opt, None, feats, targets, (-1, 0, 0), autocast=True)
    assert np.isfinite(out["loss"]) and out["tokens"] == 9


def test_checkpoint_resume_reproduces_next_step(tmp_path):
    feats, targets = toy_batch()
    model, opt = make()
    sampler = BucketBatchSampler([160, 200, 120, 90], max_frames=400, seed=3)
    it = iter(sampler)
    for _ in range(2):
        next(it)
        ctc_step(model, opt, None, feats, targets, (8, 8, 4), autocast=False)
    save_checkpoint(tmp_path / "c.pt", model=model.state_dict(), optimizer=opt.state_dict(),
                    sampler=sampler.state())  # fmt: skip
    # continue the original run: dropout draws from the global RNG
    batch_a = next(it)
    ctc_step(model, opt, None, feats, targets, (8, 8, 4), autocast=False)
    want = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(123)  # disturb the RNG: resume must restore it
    model2, opt2 = make(seed=99)
    ck = load_checkpoint(tmp_path / "c.pt")
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sampler2 = BucketBatchSampler([160, 200, 120, 90], max_frames=400, seed=3)
    sampler2.load_state(ck["sampler"])
    assert next(iter(sampler2)) == batch_a
    ctc_step(model2, opt2, None, feats, targets, (8, 8, 4), autocast=False)
    got = model2.state_dict()
    for k in want:
        assert torch.equal(want[k], got[k]), k


def test_sampler_covers_every_item_once_per_epoch_and_respects_budget():
    lengths = [random.Random(i).randint(100, 1500) for i in range(500)]
    s = BucketBatchSampler(lengths, max_frames=6000, seed=1, bucket_window=100)
    batches = s.epoch_batches(0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(500))
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 6000
    assert s.epoch_batches(1) != batches  # reshuffled per epoch
    assert s.epoch_batches(0) == batches  # deterministic


def test_feature_store_roundtrip(tmp_path):
    w = FeatureWriter(tmp_path / "x.0")
    a = torch.randn(50, 80)
    b = torch.randn(7, 80)
    w.add("u1", a, [1, 2], "hi")
    w.add("u2", b, [3], "yo")
    w.close()
    st = FeatureStore([tmp_path / "x.0"])
    assert len(st) == 2 and st.tokens == [[1, 2], [3]] and st.texts == ["hi", "yo"]
    assert torch.allclose(st.feats(1), b, atol=1e-2)
    assert st.feats(0).shape == (50, 80) and st.feats(0).dtype == torch.float32


def test_spec_augment_masks_with_fill_value():
    x = torch.randn(400, 80)
    fill = torch.full((80,), 42.0)
    y = spec_augment(x, fill, random.Random(0), max_freq=20)
    changed = y != x
    assert changed.any()
    assert torch.all(y[changed] == 42.0)
    assert torch.equal(x, x.clone())  # input untouched


def test_waveform_augmentation_and_concat():
    rng = np.random.default_rng(0)
    x = np.sin(np.arange(16000) * 0.05).astype(np.float32) * 0.5
    for _ in range(5):
        y = augment_waveform(x, rng)
        assert y.dtype == np.float32 and np.abs(y).max() <= 1.0
        assert abs(len(y) - 16000) <= 16000 * 0.12
    long = concat_with_pauses([x, x, x], rng, pause=(0.5, 0.5))
    assert len(long) == 3 * 16000 + 2 * 8000


def test_context_sampler_and_lr_schedule():
    ctx = ContextSampler()
    seen = {ctx(random.Random(i)) for i in range(200)}
    assert (-1, 0, 0) in seen and len(seen) > 20
    assert noam_cosine_lr(0, 1.0, 10, 100) == pytest.approx(0.1)
    assert noam_cosine_lr(10, 1.0, 10, 100) == pytest.approx(1.0)
    assert noam_cosine_lr(100, 1.0, 10, 100) == pytest.approx(0.02)


@pytest.mark.parametrize("context", [(-1, 0, 0), (8, 8, 4), (4, 16, 0)])
def test_shape_quantization_keeps_outputs(context):
    from chunkasr.training import _quantize_shapes

    model, _ = make()
    model.eval()
    feats, _ = toy_batch()
    q_feats, c, left, right = _quantize_shapes(model, list(feats), *context, q=8)
    with torch.no_grad():
        want, _ = model.encoder(feats, *context)
        got, plan = model.encoder(q_feats, c, left, right)
    if context[0] != -1:
        assert sum(plan.n_chunks) % 8 == 0
    for w, g in zip(want, got[: len(feats)], strict=True):
        assert torch.allclose(w, g, atol=1e-5)


def test_shrink_block_outputs_makes_blocks_near_identity():
    """After shrinking, the stack's output is what the embedding alone gives, up to each block's
    final layer norm; without it the blocks change the frames a lot."""
    feats, _ = toy_batch()

    def block_change(model):
        model.eval()
        enc = model.encoder
        with torch.no_grad():
            x = enc.embed(enc.global_cmvn(feats[0][None]))
            x = x[0] if isinstance(x, tuple) else x
            out, _ = enc(feats[:1], -1, 0, 0)
        norm = torch.nn.functional.layer_norm(x[0], x.shape[-1:])
        return float((out[0] - norm[: out[0].shape[0]]).abs().mean() / norm.abs().mean())

    model, _ = make()
    before = block_change(model)
    shrink_block_outputs(model, 0.01)
    after = block_change(model)
    assert after < 0.1 < before


def test_subsampling_under_cpu_autocast_matches_reference_layout_and_trains_depthwise():
    """The channels-last front end (float32 depthwise convs under CPU autocast) computes the
    official ``embed.conv`` stack, and its gradients reach every conv weight."""
    torch.manual_seed(0)
    embed = ChunkFormerCTC(CFG).encoder.embed
    x = torch.randn(2, 63, 80)
    with torch.no_grad():
        ref = embed.conv(x.unsqueeze(1))  # (B, D, T', F') official NCHW layout
        b, d, t, f = ref.shape
        ref = embed.out(ref.transpose(1, 2).reshape(b, t, d * f)) * embed.xscale
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = embed(x)
    assert out.shape == ref.shape
    err = float((out.float() - ref).abs().max())
    assert err <= 0.05 * float(ref.abs().max()), err
    out.float().square().mean().backward()
    for i in (0, 2, 3, 5, 6):
        g = embed.conv[i].weight.grad
        assert g is not None and float(g.abs().sum()) > 0, i


def test_freq_warp_moves_a_formant_by_the_factor() -> None:
    t = torch.arange(16000) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 1000.0 * t)  # energy at 1 kHz
    feats = fbank(tone)
    assert torch.equal(freq_warp(feats, 1.0), feats)

    def peak_hz(f: torch.Tensor) -> float:
        m_lo, m_hi = 1127 * np.log1p(20 / 700), 1127 * np.log1p(8000 / 700)
        j = int(f.mean(0).argmax())
        return float(700 * np.expm1((m_lo + (m_hi - m_lo) / 81 * (j + 1)) / 1127))

    assert abs(peak_hz(feats) - 1000) < 40
    up, down = freq_warp(feats, 1.15), freq_warp(feats, 0.87)
    assert up.shape == down.shape == feats.shape
    assert abs(peak_hz(up) - 1150) < 45 and abs(peak_hz(down) - 870) < 35
    # a warp and its inverse give back the input away from the clamped top bins
    back = freq_warp(freq_warp(feats, 1.1), 1 / 1.1)
    assert (back[:, :60] - feats[:, :60]).abs().max() < 0.5 * feats.std()


def test_time_smear_spreads_an_impulse_over_its_width() -> None:
    feats = torch.zeros(50, 80)
    feats[20, 10] = 8.0
    for width in (3, 5):
        out = time_smear(feats, width)
        assert out.shape == feats.shape
        touched = out[:, 10].nonzero().squeeze(1).tolist()
        assert touched == list(range(20 - width // 2, 20 + width // 2 + 1))
        assert float(out[:, 10].sum()) == pytest.approx(8.0)  # energy moved, not made or lost
        assert float(out[20, 10]) < 8.0 and float(out[:, :10].abs().sum() + out[:, 11:].abs().sum()) == 0
    ramp = torch.arange(30.0).unsqueeze(1).repeat(1, 4)
    assert torch.allclose(time_smear(ramp, 5)[2:-2], ramp[2:-2])  # linear trajectories are kept
    assert torch.equal(time_smear(ramp, 1), ramp)
    with pytest.raises(ValueError):
        time_smear(ramp, 4)


def test_breath_noise_is_high_pass_follows_speech_and_is_reproducible() -> None:
    T, F = 400, 80
    feats = torch.full((T, F), 2.0)
    feats[200:] = -20.0  # a quiet half: ~22 nats (95 dB) lower
    out = breath_noise(feats, -10.0, seed=3)
    added = (out.double().exp() - feats.double().exp())[:200]  # per-band added power, loud half
    frame_power = float(np.exp(2.0))
    top, bottom = float(added[:, -1].mean()), float(added[:, 0].mean())
    assert top == pytest.approx(0.1 * frame_power, rel=0.15)  # -10 dB of the frame power
    assert bottom == pytest.approx(0.2 * top, rel=0.2)  # a fifth at the lowest band
    assert float(added.min()) >= 0 and float(added.std(0).mean()) > 0.2 * top  # it fluctuates
    quiet_added = out[200:].double().exp() - feats[200:].double().exp()
    assert float(quiet_added.max()) < 1e-8 * float(added.mean())  # it follows the frame: silence stays quiet
    assert torch.equal(out, breath_noise(feats, -10.0, seed=3))
    assert not torch.equal(out, breath_noise(feats, -10.0, seed=4))
    quieter = breath_noise(feats, -20.0, seed=3)
    assert float((quieter - feats)[:200].mean()) < float((out - feats)[:200].mean())


@pytest.mark.skipif(shutil.which("sox") is None, reason="tempo augmentation needs the sox program")
def test_tempo_change_keeps_pitch():
    sr = 16000
    x = np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr) * 0.5
    y = change_tempo(x, 1.25)
    assert abs(len(y) - len(x) / 1.25) < 0.02 * len(x)
    spec = np.abs(np.fft.rfft(y[2000:-2000]))
    peak_hz = np.argmax(spec) * sr / len(y[2000:-2000])
    assert abs(peak_hz - 440) < 5  # tempo, not speed: the tone stays at 440 Hz


def test_random_eq_changes_the_spectrum_only_where_asked():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(16000) * 0.1
    cfg = AugmentConfig(speeds=(1.0,), p_noise=0, p_telephone=0, p_reverb=0, p_eq=1.0, gain_db=(0, 0),
                        eq_gain_db=(10.0, 10.0), eq_hz=(1000.0, 1000.0))  # fmt: skip
    y = augment_waveform(x, np.random.default_rng(0), cfg)
    sx, sy = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
    band = lambda s, lo, hi: float(np.mean(s[lo:hi] ** 2))  # noqa: E731  (bins are 1 Hz)
    boost = band(sy, 950, 1050) / band(sx, 950, 1050)
    far = band(sy, 6000, 7000) / band(sx, 6000, 7000)
    assert boost > 4 * far  # ~+10 dB at 1 kHz relative to the far band (gain is renormalised)


def test_insert_blocks_keeps_the_function_and_adds_depth():
    torch.manual_seed(0)
    model = ChunkFormerCTC(CFG).eval()
    with torch.no_grad():  # a trained-looking final norm, so handing it over matters
        for layer in model.encoder.encoders:
            layer.norm_final.weight.uniform_(0.5, 1.5)
            layer.norm_final.bias.uniform_(-0.3, 0.3)
    feats = [torch.randn(230, 80), torch.randn(170, 80)]
    grown = insert_blocks(model, [0, 1, 1], scale=0.0).eval()
    assert grown.cfg.num_blocks == 5 and len(grown.encoder.encoders) == 5
    for ctx in [(-1, 0, 0), (4, 8, 4)]:
        with torch.no_grad():
            a, _ = model.encoder(feats, *ctx)
            b, _ = grown.encoder(feats, *ctx)
        for x, y in zip(a, b, strict=True):
            assert torch.allclose(x, y, atol=1e-4), float((x - y).abs().max())
    # the new blocks are real blocks: with their branches at init scale the output moves
    moved = insert_blocks(model, [1], scale=1.0).eval()
    with torch.no_grad():
        ref, _ = model.encoder(feats, -1, 0, 0)
        c, _ = moved.encoder(feats, -1, 0, 0)
    assert float((c[0] - ref[0]).abs().max()) > 1e-2
    with pytest.raises(ValueError, match="out of range"):
        insert_blocks(model, [2])


def test_cepstral_smooth_keeps_the_envelope_and_drops_the_ripple() -> None:
    F = 80
    bands = torch.arange(F, dtype=torch.float64)
    envelope = 3.0 * torch.cos(math.pi * (bands + 0.5) / F)  # the first cosine of the DCT basis
    ripple = 0.5 * torch.cos(math.pi * 40 * (bands + 0.5) / F)  # a fast harmonic-like ripple
    feats = (envelope + ripple + 2.0).repeat(6, 1).float()
    out = cepstral_smooth(feats, 10)
    assert out.shape == feats.shape and out.dtype == feats.dtype
    assert torch.allclose(out, (envelope + 2.0).float().expand(6, -1), atol=1e-4)
    assert torch.allclose(cepstral_smooth(feats, F), feats, atol=1e-4)  # all coefficients: the input
    flat = cepstral_smooth(feats, 1)
    assert torch.allclose(flat, feats.mean(1, keepdim=True).expand(-1, F), atol=1e-4)  # mean level only
    for bad in (0, F + 1):
        with pytest.raises(ValueError):
            cepstral_smooth(feats, bad)
