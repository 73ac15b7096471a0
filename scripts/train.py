#!/usr/bin/env python
"""Train the bundled English ChunkFormer-CTC model on CPU.

Two stages::

    # 1. fbank features, once: clean copy + augmented copy (speed, noise, gain, telephone,
    #    reverb, long-form concatenations) of the training set; clean dev/test copies
    python scripts/train.py prepare --corpus data/corpus --lang data/lang --out exp/feats

    # 2. training with a wall-clock budget (cosine LR over the budget), resumable
    python scripts/train.py train --feats exp/feats --exp exp/en-small --minutes 65 [--resume]

The checkpoint ``<exp>/last.pt`` holds model, EMA weights, optimizer, LR state, step,
RNG states and the sampler position; ``--resume`` continues exactly where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from chunkasr.decoding import ctc_greedy_search  # noqa: E402
from chunkasr.metrics import ErrorRate  # noqa: E402
from chunkasr.model import ChunkFormerCTC, ModelConfig  # noqa: E402
from chunkasr.training import (  # noqa: E402
    AugmentConfig,
    BucketBatchSampler,
    ContextSampler,
    FeatureStore,
    FeatureWriter,
    augment_waveform,
    cmvn_stats,
    concat_with_pauses,
    ctc_loss,
    load_checkpoint,
    save_checkpoint,
    spec_augment,
    waveform_features,
)
from chunkasr.vocab import Vocabulary  # noqa: E402

# ---------------------------------------------------------------------------- prepare


def read_manifest(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_wave(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_absolute():
        p = REPO / p
    x, sr = sf.read(str(p), dtype="float32", always_2d=False)
    assert sr == 16000, f"{path}: {sr} Hz"
    if x.ndim > 1:
        x = x.mean(axis=1)
    return x


def _prepare_shard(job: tuple[str, list[list[dict]], bool, int, str, dict]) -> tuple[str, int, float]:
    """Featurise groups of utterances (a group of several = one long-form example)."""
    prefix, groups, augment, seed, lang, aug_opts = job
    torch.set_num_threads(1)
    from chunkasr.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(lang)
    rng = np.random.default_rng(seed)
    w = FeatureWriter(prefix)
    cfg = AugmentConfig(**aug_opts)
    secs = 0.0
    for g in groups:
        waves = [load_wave(u["audio"]) for u in g]
        x = concat_with_pauses(waves, rng) if len(g) > 1 else waves[0]
        if augment and (len(g) == 1 or rng.random() < 0.7):
            x = augment_waveform(x, rng, cfg)
        text = " ".join(u["text"] for u in g)
        f = waveform_features(x)
        w.add("+".join(u["id"] for u in g), f, tok.encode(text), text)
        secs += len(x) / 16000
    w.close()
    return prefix, len(groups), secs


def cmd_prepare(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Path(args.corpus)
    jobs: list[tuple[str, list[list[dict]], bool, int, str, dict]] = []
    aug_opts = {"p_tempo": args.p_tempo, "p_eq": args.p_eq}
    n_shards = args.jobs * 4
    for split in ("dev", "test_voices"):
        rows = read_manifest(corpus / f"{split}.jsonl")
        groups = [[r] for r in rows]
        jobs.append((str(out / f"{split}.0"), groups, False, 0, args.lang, aug_opts))
    rows = read_manifest(corpus / "train.jsonl")
    print(f"train: {len(rows)} utterances, {sum(r['duration'] for r in rows) / 3600:.2f} h")
    clean = [[r] for r in rows]
    for k in range(n_shards):
        jobs.append((str(out / f"train_clean.{k}"), clean[k::n_shards], False, 0, args.lang, aug_opts))
    rng = random.Random(args.seed)
    for copy in range(args.aug_copies):
        order = list(rows)
        rng.shuffle(order)
        groups: list[list[dict]] = []
        i = 0
        while i < len(order):
            if rng.random() < args.p_concat:
                n = rng.randint(3, 8)
                groups.append(order[i : i + n])
                i += n
            else:
                groups.append([order[i]])
                i += 1
        for k in range(n_shards):
            jobs.append(
                (str(out / f"train_aug{copy}.{k}"), groups[k::n_shards], True, args.seed + 1000 * copy + k,
                 args.lang, aug_opts)
            )
    t0 = time.time()
    total = 0.0
    with Pool(args.jobs) as pool:
        for prefix, n, secs in pool.imap_unordered(_prepare_shard, jobs):
            total += secs
            print(f"{prefix}: {n} items {secs / 3600:.2f} h  [{time.time() - t0:.0f} s, "
                  f"{total / max(time.time() - t0, 1e-3):.0f}x]", flush=True)  # fmt: skip
    store = FeatureStore(sorted(str(p)[: -len(".json")] for p in out.glob("train_clean.*.json")))
    stats = cmvn_stats(store)
    (out / "global_cmvn").write_text(json.dumps(stats) + "\n")
    print(f"done in {time.time() - t0:.0f} s; {total / 3600:.2f} h featurised")


# ---------------------------------------------------------------------------- train


def store_prefixes(feats: Path, names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        out += sorted(str(p)[: -len(".json")] for p in feats.glob(f"{name}.*.json"))
    return out


def build_config(args: argparse.Namespace, vocab_size: int) -> ModelConfig:
    ctx = ContextSampler()
    return ModelConfig(
        vocab_size=vocab_size,
        d_model=args.d_model,
        attention_heads=args.heads,
        linear_units=args.ffn,
        num_blocks=args.blocks,
        cnn_module_kernel=args.kernel,
        cnn_module_norm="layer_norm",
        dropout_rate=args.dropout,
        positional_dropout_rate=args.dropout,
        attention_dropout_rate=0.0,
        dynamic_chunk_sizes=(-1, *sorted(set(ctx.chunks))),
        dynamic_left_context_sizes=tuple(sorted(set(ctx.lefts))),
        dynamic_right_context_sizes=tuple(sorted(set(ctx.rights))),
    )


@torch.no_grad()
def quick_eval(
    model: ChunkFormerCTC, store: FeatureStore, vocab: Vocabulary, n: int, context: tuple[int, int, int]
) -> dict:
    model.eval()
    er = ErrorRate()
    idx = list(range(min(n, len(store))))
    for s in range(0, len(idx), 32):
        part = idx[s : s + 32]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outs, _ = model.encoder([store.feats(i) for i in part], *context)
        for i, o in zip(part, outs, strict=True):
            hyp = vocab.decode([t.id for t in ctc_greedy_search(model.ctc(o.float()))])
            er.add(store.texts[i], hyp)
    model.train()
    return er.summary()


def reinit(model: ChunkFormerCTC) -> None:
    """Variance-preserving init. PyTorch's default conv init shrinks the signal through the
    8x subsampling stack so much that its output is nearly a constant (bias) vector and CTC
    training sits on the label-prior plateau; Kaiming (ReLU) convs and Xavier linears fix that.
    """
    with torch.no_grad():
        for m in model.encoder.embed.conv:
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                torch.nn.init.zeros_(m.bias)
        for name, m in model.named_modules():
            if name.startswith("encoder.embed.conv"):
                continue
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)):
                if isinstance(m, torch.nn.Conv1d) and m.groups > 1:
                    torch.nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
                else:
                    torch.nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    torch.nn.init.zeros_(m.bias)


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.float(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)


def cmd_train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    feats_dir = Path(args.feats)
    exp = Path(args.exp)
    exp.mkdir(parents=True, exist_ok=True)
    vocab = Vocabulary.from_file(Path(args.lang) / "vocab.txt")
    train = FeatureStore(store_prefixes(feats_dir, args.train_sets.split(",")))
    dev = FeatureStore(store_prefixes(feats_dir, ["dev"]))
    test = FeatureStore(store_prefixes(feats_dir, ["test_voices"]))
    # targets from the tokenizer of --lang (the stored ids may come from another vocabulary)
    from chunkasr.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(args.lang)
    for st in (train, dev, test):
        st.tokens = [tok.encode(t) for t in st.texts]
    cmvn = json.loads((feats_dir / "global_cmvn").read_text())
    mean = torch.tensor(cmvn["mean_stat"]) / cmvn["frame_num"]
    istd = 1.0 / torch.sqrt(torch.clamp(torch.tensor(cmvn["var_stat"]) / cmvn["frame_num"] - mean**2, 1e-20))

    cfg = build_config(args, len(vocab))
    torch.manual_seed(args.seed)
    model = ChunkFormerCTC(cfg)
    model.encoder.global_cmvn.mean.copy_(mean)
    model.encoder.global_cmvn.istd.copy_(istd)
    if args.init == "kaiming":
        reinit(model)
    if args.residual_init != 1.0:  # start close to identity: shallow-net dynamics early on
        with torch.no_grad():
            for layer in model.encoder.encoders:
                mods = [layer.self_attn.linear_out, layer.feed_forward.w_2, layer.feed_forward_macaron,
                        layer.conv_module]  # fmt: skip
                for m in mods:
                    if m is None:
                        continue
                    lin = m.w_2 if hasattr(m, "w_2") else getattr(m, "pointwise_conv2", m)
                    lin.weight.mul_(args.residual_init)
                    if lin.bias is not None:
                        lin.bias.mul_(args.residual_init)
    n_params = sum(p.numel() for p in model.parameters())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "pos_bias" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.98), eps=1e-9, fused=True,
    )  # fmt: skip
    sampler = BucketBatchSampler(train.lengths, args.max_frames, seed=args.seed)
    # curriculum (SortaGrad-like): short utterances, full context, no SpecAugment until
    # --short-until steps; helps CTC leave the all-blank plateau quickly
    short_idx = [i for i, n in enumerate(train.lengths) if n <= args.short_frames]
    if args.short_limit:  # a small subset first: memorising it forces the model to use its input
        short_idx = short_idx[: args.short_limit]
    short_sampler = BucketBatchSampler(
        [train.lengths[i] for i in short_idx], args.max_frames, seed=args.seed + 1
    )
    ema = EMA(model, args.ema)
    rng = random.Random(args.seed + 7)
    ctx_sampler = ContextSampler()
    step, elapsed = 0, 0.0
    budget = args.minutes * 60.0
    log = open(exp / "train.log", "a")  # noqa: SIM115

    def say(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    if args.resume and (exp / "last.pt").is_file():
        ck = load_checkpoint(exp / "last.pt")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        ema.shadow = ck["ema"]
        sampler.load_state(ck["sampler"])
        if "short_sampler" in ck:
            short_sampler.load_state(ck["short_sampler"])
        rng.setstate(ck["sample_rng"])
        step, elapsed = ck["step"], ck["elapsed"]
        budget = ck.get("budget", budget)
        say(f"resumed at step {step}, {elapsed / 60:.1f} min trained")
    say(f"model {n_params / 1e6:.2f} M params, {cfg.d_model}x{cfg.num_blocks}; train {len(train)} items "
        f"{train.total_seconds() / 3600:.1f} h; budget {budget / 60:.0f} min")  # fmt: skip

    def save(tag: str = "last") -> None:
        save_checkpoint(
            exp / f"{tag}.pt",
            model=model.state_dict(), ema=ema.shadow, optimizer=opt.state_dict(), sampler=sampler.state(),
            short_sampler=short_sampler.state(), sample_rng=rng.getstate(), step=step, elapsed=elapsed,
            budget=budget,
            config=cfg.to_official_dict(), cmvn=cmvn, args=vars(args),
        )  # fmt: skip

    fill = mean.clone()
    it = iter(sampler)
    short_it = iter(short_sampler)
    t_last_ckpt = time.time()
    win = {"t": 0.0, "utts": 0, "secs": 0.0, "loss": 0.0, "n": 0}
    model.train()
    while elapsed < budget:
        t0 = time.time()
        easy = step < args.short_until
        batch = [short_idx[j] for j in next(short_it)] if easy else next(it)
        feats = [train.feats(i) for i in batch]
        if not easy and rng.random() < args.p_specaug:
            feats = [spec_augment(f, fill, rng) for f in feats]
        targets = [train.tokens[i] for i in batch]
        context = (-1, 0, 0) if easy else ctx_sampler(rng)
        progress = min(1.0, elapsed / budget)
        cosine = 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * cosine
        for g in opt.param_groups:
            g["lr"] = lr
        loss, n_tok = ctc_loss(model, feats, targets, context, quantize=8)
        opt.zero_grad(set_to_none=True)
        (loss / max(n_tok, 1)).backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip))
        if math.isfinite(gnorm):
            opt.step()
            ema.update(model, step)
        step += 1
        dt = time.time() - t0
        elapsed += dt
        win["t"] += dt
        win["utts"] += len(batch)
        win["secs"] += sum(f.shape[0] for f in feats) / 100
        win["loss"] += float(loss.detach()) / max(n_tok, 1)
        win["n"] += 1
        if step % args.log_every == 0:
            say(f"step {step} loss {win['loss'] / win['n']:.3f} lr {lr:.2e} gnorm {gnorm:.2f} "
                f"{win['utts'] / win['t']:.1f} utt/s {win['secs'] / win['t']:.1f} audio-s/s "
                f"ep {sampler.epoch}:{sampler.pos} ctx {context} "
                f"[{elapsed / 60:.1f}/{budget / 60:.0f} min]")  # fmt: skip
            win = {"t": 0.0, "utts": 0, "secs": 0.0, "loss": 0.0, "n": 0}
        if time.time() - t_last_ckpt > args.ckpt_every or elapsed >= budget:
            save()
            t_last_ckpt = time.time()
            if args.eval_items:
                ev = quick_eval(model, dev, vocab, args.eval_items, (-1, 0, 0))
                et = quick_eval(model, test, vocab, args.eval_items, (-1, 0, 0))
                say(f"eval step {step}: dev WER {ev['wer']} CER {ev['cer']} | "
                    f"test_voices WER {et['wer']} CER {et['cer']}")  # fmt: skip
            if (exp / "STOP").exists():
                say("STOP file found")
                break
    save()
    say(f"finished: step {step}, {elapsed / 60:.1f} min")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--corpus", default="data/corpus")
    p.add_argument("--lang", default="data/lang")
    p.add_argument("--out", default="exp/feats")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--aug-copies", type=int, default=1)
    p.add_argument("--p-concat", type=float, default=0.04, help="chance an item starts a long-form group")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--p-tempo", type=float, default=0.0,
                   help="chance of a tempo change 0.8-1.25x that keeps pitch (needs sox)")  # fmt: skip
    p.add_argument("--p-eq", type=float, default=0.0, help="chance of a random peaking EQ (+-10 dB)")
    t = sub.add_parser("train")
    t.add_argument("--feats", default="exp/feats")
    t.add_argument("--lang", default="data/lang")
    t.add_argument("--exp", default="exp/en-small")
    t.add_argument("--train-sets", default="train_clean,train_aug0")
    t.add_argument("--d-model", type=int, default=144)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--ffn", type=int, default=576)
    t.add_argument("--blocks", type=int, default=8)
    t.add_argument("--kernel", type=int, default=15)
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--max-frames", type=int, default=16000, help="padded fbank frames per batch")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--weight-decay", type=float, default=1e-3)
    t.add_argument("--clip", type=float, default=5.0)
    t.add_argument("--ema", type=float, default=0.998)
    t.add_argument("--p-specaug", type=float, default=0.8)
    t.add_argument("--residual-init", type=float, default=1.0,
                   help="scale of residual branch outputs at init")  # fmt: skip
    t.add_argument("--init", default="kaiming", choices=["kaiming", "pytorch"])
    t.add_argument("--short-until", type=int, default=0, help="curriculum steps")
    t.add_argument("--short-frames", type=int, default=500)
    t.add_argument("--short-limit", type=int, default=0, help="curriculum on this many items only")
    t.add_argument("--minutes", type=float, default=65.0, help="training wall-clock budget")
    t.add_argument("--ckpt-every", type=float, default=300.0, help="seconds")
    t.add_argument("--eval-items", type=int, default=60)
    t.add_argument("--log-every", type=int, default=10)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    if args.cmd == "prepare":
        cmd_prepare(args)
    else:
        cmd_train(args)


if __name__ == "__main__":
    main()
