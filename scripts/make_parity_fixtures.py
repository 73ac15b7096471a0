"""Golden parity fixtures made with the official ``chunkformer`` package.

For two seeded random-weight models (different sizes; layer-norm and batch-norm conv modules)
this writes, under ``tests/data/parity/<model>/``, the model directory exactly as the official
code saves it (decoder weights included) and ``golden.pt``: the official CTC log-probs for
deterministic pseudo-random fbank inputs of several lengths, per (chunk, left, right) setting,
from its masked-batch forward (all lengths in one batch) and, for chunk -1, its full-context
``forward_encoder`` run file by file. The default test suite compares against these files
without the official package; ``tests/test_parity.py`` also has a live comparison.

    pip install chunkformer --no-deps   # plus its runtime deps, see docs/parity.md
    python scripts/make_parity_fixtures.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "parity"

MODELS = {
    "ln64x2": dict(
        output_size=64,
        attention_heads=4,
        linear_units=128,
        num_blocks=2,
        cnn_module_norm="layer_norm",
    ),
    "bn48x3": dict(
        output_size=48,
        attention_heads=4,
        linear_units=96,
        num_blocks=3,
        cnn_module_norm="batch_norm",
    ),
}
VOCAB = 32
# fbank frames: 0 outputs, 1 output, < 1 chunk, exactly 1 chunk of 64, 2.5 chunks of 64
SHORT = [10, 15, 300, 64 * 8 + 7, 160 * 8 + 7]
LONG = 12000  # two minutes
CONTEXTS = [(64, 128, 128), (32, 64, 32), (128, 256, 128), (-1, -1, -1)]
LONG_CONTEXTS = {(64, 128, 128), (-1, -1, -1)}  # keeps the fixtures under 3 MB


def features(n_frames: int, seed: int) -> torch.Tensor:
    """Deterministic fbank-like input (numpy's PCG64 stream is stable across versions)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(9.0, 3.0, size=(n_frames, 80))
    return torch.from_numpy(base.astype(np.float32))


def official_config(enc: dict, cmvn_path: str) -> dict:
    return {
        "cmvn": "global_cmvn",
        "cmvn_conf": {"cmvn_file": cmvn_path, "is_json_cmvn": True},
        "input_dim": 80,
        "output_dim": VOCAB,
        "encoder": "chunkformer",
        "encoder_conf": {
            **enc,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "dw_striding",
            "pos_enc_layer_type": "chunk_rel_pos",
            "selfattention_layer_type": "chunk_rel_seflattn",
            "normalize_before": True,
            "cnn_module_kernel": 15,
            "use_cnn_module": True,
            "activation_type": "swish",
            "dynamic_conv": True,
            "macaron_style": True,
        },
        "decoder": "bitransformer",
        "decoder_conf": {
            "attention_heads": 2,
            "linear_units": 32,
            "num_blocks": 1,
            "r_num_blocks": 1,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
        },
        "ctc_conf": {"ctc_blank_id": 0},
        "model_conf": {
            "ctc_weight": 0.3,
            "lsm_weight": 0.1,
            "length_normalized_loss": False,
            "reverse_weight": 0.3,
        },
    }


def build_official(name: str, enc: dict, seed: int):
    import yaml
    from chunkformer.utils.init_model import init_speech_model

    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frames = 1000
    mean = rng.normal(9.0, 2.0, 80)
    std = rng.uniform(2.0, 4.0, 80)
    cmvn = {
        "mean_stat": (mean * frames).tolist(),
        "var_stat": ((std**2 + mean**2) * frames).tolist(),
        "frame_num": frames,
    }
    (out / "global_cmvn").write_text(json.dumps(cmvn))
    cfg = official_config(enc, str(out / "global_cmvn"))
    torch.manual_seed(seed)
    model, _ = init_speech_model(None, cfg)
    with torch.no_grad():  # random norms, biases and batch-norm stats so that every tensor matters
        for pname, p in model.named_parameters():
            if p.dim() == 1 and "global_cmvn" not in pname:
                p.normal_(0.0, 0.3)
                if "norm" in pname and pname.endswith("weight"):
                    p.add_(1.0)
        for bname, b in model.named_buffers():
            if bname.endswith("running_mean"):
                b.normal_(0.0, 0.5)
            elif bname.endswith("running_var"):
                b.uniform_(0.5, 2.0)
    model.eval()
    saved = dict(cfg)
    saved["cmvn_conf"] = {"cmvn_file": "global_cmvn", "is_json_cmvn": True}
    (out / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    # The decoder's sinusoid tables (decoder.*.pe, 5000 x D each) are deterministic buffers that
    # would triple the fixture size; every learned decoder tensor is kept.
    state = {
        k: v
        for k, v in model.state_dict().items()
        if not (k.startswith("decoder.") and k.endswith(".pe"))
    }
    torch.save(state, out / "pytorch_model.bin")
    tokens = (
        ["<blank>", "<unk>"]
        + [f"\u2581w{i}" if i % 3 == 0 else f"p{i}" for i in range(VOCAB - 3)]
        + ["<sos/eos>"]
    )
    (out / "vocab.txt").write_text("".join(f"{t} {i}\n" for i, t in enumerate(tokens)))
    return model


@torch.no_grad()
def official_outputs(
    model, feats: list[torch.Tensor], ctx: tuple[int, int, int]
) -> list[torch.Tensor]:
    enc = model.encoder
    if ctx[0] == -1:
        outs = []
        for f in feats:
            if (f.shape[0] - 7) // 8 <= 0:
                outs.append(torch.zeros(0, VOCAB))
                continue
            x, _ = enc.forward_encoder(f[None], torch.tensor([f.shape[0]]), 0, 0, 0)
            outs.append(model.ctc.log_softmax(x)[0])
        return outs
    C, L, R = ctx
    lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.int)
    x, xlens, n_chunks, *_ = enc.forward_parallel_chunk(
        xs=list(feats),
        xs_origin_lens=lens,
        chunk_size=C,
        left_context_size=L,
        right_context_size=R,
        offset=torch.zeros(len(feats), dtype=torch.int),
    )
    logp = model.ctc.log_softmax(x)
    return [o.reshape(-1, VOCAB)[: int(n)] for o, n in zip(logp.split(n_chunks), xlens, strict=False)]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.parse_args()
    for seed, (name, enc) in enumerate(MODELS.items()):
        model = build_official(name, enc, seed + 1)
        golden: dict[str, object] = {"short": SHORT, "long": LONG, "cases": {}}
        for ctx in CONTEXTS:
            lengths = SHORT + ([LONG] if ctx in LONG_CONTEXTS else [])
            feats = [features(n, 100 + i) for i, n in enumerate(lengths)]
            outs = official_outputs(model, feats, ctx)
            golden["cases"][",".join(map(str, ctx))] = {  # type: ignore[index]
                "lengths": lengths,
                "seeds": [100 + i for i in range(len(lengths))],
                "logp": [o.clone() for o in outs],
            }
            print(name, ctx, [tuple(o.shape) for o in outs])
        torch.save(golden, OUT / name / "golden.pt")


if __name__ == "__main__":
    main()
