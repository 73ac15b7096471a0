"""Time-budgeted CTC trainer: the trainer of the bundled model ``models/en-small`` since session 6
(docs/training.md has every measured run and the command of each session).

    THREADS=1 python scripts/train_fast.py --out exp/run --lang data/lang1k --minutes 100 \
        [--subset 48] [--aux-char 0.5] [--flat-start 800]

Reads the feature store of ``scripts/train.py prepare`` (exp/feats: clean and augmented copies),
re-tokenises its texts with ``--lang`` (``scripts/make_tokenizer.py``, 1k BPE) and trains until
``--minutes`` of step time have passed since the run first started. It resumes from
``OUT/last.pt`` (saved every 4 minutes); the learning-rate schedule (warm-up, flat, cosine over
the last 40%, or from ``--decay-start`` minutes) is a function of the training time spent, so a
resumed run continues it.

Options, each measured in docs/training.md:
- ``--embed-max-norm`` (default 3): each front-end tensor's norm is capped at 3x its starting
  norm after every step. Without it the front end's norm grows under Adam until the residual
  blocks' outputs are negligible beside the embedding, and CTC sits at the label prior for
  thousands of steps (session 5: 3,400 steps at 5.9 nats/token; with it, dev CER 84% at step 500);
- ``--block-init-scale`` (default 0.01): near-identity blocks at init
  (:func:`chunkasr.training.shrink_block_outputs`);
- ``--subset N``: curriculum that starts on N short utterances and doubles them each time the
  smoothed loss falls below ``--grow-at``;
- ``--aux-char W``: an auxiliary character CTC head at 4x the frame rate (training only, not
  exported);
- ``--grow K,K,...`` (with ``--init``): deepen a trained model by near-identity blocks
  inserted after the given block indices, so it keeps what it learned and gains capacity;
- ``--flat-start N``: for N steps, an extra frame-level loss on a character-proportional
  alignment of the tokens over the speech region.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from chunkasr.api import cpu_has_fast_bf16  # noqa: E402
from chunkasr.decoding import ctc_greedy_search  # noqa: E402
from chunkasr.metrics import cer, wer  # noqa: E402
from chunkasr.model import ChunkFormerCTC, ModelConfig, load_model_dir  # noqa: E402
from chunkasr.model.checkpoint import load_cmvn  # noqa: E402
from chunkasr.tokenizer import Tokenizer  # noqa: E402
from chunkasr.training import (  # noqa: E402
    breath_noise,
    freq_warp,
    insert_blocks,
    shrink_block_outputs,
    spec_augment,
    time_smear,
)
from chunkasr.vocab import Vocabulary  # noqa: E402

CHARS = " abcdefghijklmnopqrstuvwxyz'"
CONTEXTS = ([16, 32, 64, 128], [32, 64, 128, 256], [0, 16, 32, 64, 128])


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="exp/run")
    p.add_argument("--feats", default="exp/feats")
    p.add_argument("--lang", default="data/lang1k")
    p.add_argument("--minutes", type=float, default=100.0, help="total training time (all resumes)")
    p.add_argument("--shape", default="144,4,576,6", help="d_model,heads,ffn,blocks")
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument(
        "--decay-start",
        type=float,
        default=0.0,
        help="trained minutes at which the cosine decay starts (default 0.6 x --minutes)",
    )
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--batch-frames", type=int, default=5000, help="fbank frames per batch (100/s)")
    p.add_argument("--short-steps", type=int, default=600, help="steps on utterances <= 5 s, full context")
    p.add_argument(
        "--block-init-scale",
        type=float,
        default=0.01,
        help="scale of each block's output projections at init (near-identity blocks)",
    )
    p.add_argument(
        "--aux-char",
        type=float,
        default=0.0,
        help="weight of an auxiliary character CTC at 4x the frame rate (training only)",
    )
    p.add_argument(
        "--subset",
        type=int,
        default=0,
        help="curriculum: start on this many short utterances, double when the loss < --grow-at",
    )
    p.add_argument("--grow-at", type=float, default=1.5)
    p.add_argument("--subset-jump", action="store_true",
                   help="curriculum only to leave the CTC plateau: at the first growth, go straight "
                   "to all the data (a --subset given on resume restarts the curriculum)")  # fmt: skip
    p.add_argument(
        "--flat-start",
        type=int,
        default=0,
        help="steps with an extra frame-level loss on a uniform token alignment",
    )
    p.add_argument("--freq-warp", type=float, default=0.0,
                   help="on half the items (after --short-steps), warp the mel axis by a factor drawn "
                   "from 1 +- this (vocal-tract length; chunkasr.training.freq_warp); 0: off")  # fmt: skip
    p.add_argument("--p-smear", type=float, default=0.0,
                   help="chance (after --short-steps) that an item's features are blurred in time "
                   "over 3 or 5 frames (chunkasr.training.time_smear); 0: off")  # fmt: skip
    p.add_argument("--p-breath", type=float, default=0.0,
                   help="chance (after --short-steps) of aspiration-like noise 10-22 dB below each "
                   "frame's power (chunkasr.training.breath_noise); 0: off")  # fmt: skip
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-after", type=float, default=0.0, help="leave after this many minutes of this call")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bf16 autocast: auto = on CPUs with native bf16 (AMX/AVX512-BF16) only; "
                   "elsewhere it is emulated and ~10x slower than float32")  # fmt: skip
    p.add_argument("--embed-max-norm", type=float, default=3.0,
                   help="cap each front-end tensor's norm at this multiple of its starting norm "
                   "(0: off); without it the run sits on the CTC plateau (docs/training.md, "
                   "session 5)")  # fmt: skip
    p.add_argument("--init", metavar="MODEL_DIR",
                   help="start from the weights of an official-layout model (e.g. models/en-small) "
                   "instead of a fresh init; its vocab.txt must equal --lang's")  # fmt: skip
    p.add_argument("--grow", metavar="K,K,...",
                   help="with --init: insert a fresh near-identity block after each of these block "
                   "indices of the initial model (--shape gives the grown depth)")  # fmt: skip
    return p.parse_args()


def load_items(feats: str, tok: Tokenizer) -> tuple[list, list]:
    items = []
    for meta in sorted(glob.glob(f"{feats}/train_*.json")):
        d = json.loads(Path(meta).read_text())
        arr = np.memmap(meta[:-5] + ".f16", dtype=np.float16, mode="r").reshape(-1, 80)
        for o, n, text in zip(d["offsets"], d["lengths"], d["texts"], strict=True):
            t = tok.encode(text)
            if len(t) > 0 and len(t) * 1.15 <= (n - 7) // 8 and n <= 2400:
                items.append((arr, o, n, t, "train_clean" in meta))
    d = json.loads(Path(f"{feats}/dev.0.json").read_text())
    darr = np.memmap(f"{feats}/dev.0.f16", dtype=np.float16, mode="r").reshape(-1, 80)
    dev = [
        (torch.from_numpy(np.array(darr[o : o + n], dtype=np.float32)), txt)
        for o, n, txt in list(zip(d["offsets"], d["lengths"], d["texts"], strict=True))[:80]
    ]
    return items, dev


def flat_targets(f: torch.Tensor, tokens: list[int], weights: list[float], frames: int) -> torch.Tensor:
    """Frame labels for a flat start: the speech region (frames louder than the midpoint of the
    5th and 95th percentile of frame energy) divided among the tokens in proportion to
    ``weights`` (their spelled length: synthetic speech has a steady rate), blank (0) elsewhere.
    Consecutive frames of one token form a valid CTC path unless a token repeats."""
    e = f.mean(1)
    lo, hi = torch.quantile(e, 0.05), torch.quantile(e, 0.95)
    loud = (e > 0.5 * (lo + hi)).nonzero().flatten()
    lab = torch.zeros(frames, dtype=torch.long)
    if len(loud) == 0:
        return lab
    s, t = min(int(loud[0]) // 8, frames - 1), min(-(-int(loud[-1]) // 8), frames)
    cum = torch.tensor([0.0, *weights]).cumsum(0)
    edges = (s + (t - s) * cum / cum[-1]).round().long()
    for k, tok in enumerate(tokens):
        lab[edges[k] : max(int(edges[k + 1]), int(edges[k]) + 1)] = tok
    return lab


def main() -> None:
    a = parse()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    # Data parallel over processes (torchrun --nproc_per_node N, THREADS=1): each rank draws its
    # own batches, gradients are averaged, rank 0 logs, evaluates and saves. On the 2-core
    # machine two 1-thread ranks see more audio per second than one 2-thread process, because
    # much of a step (Python, small ops, CTC) runs on one core (docs/training.md).
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        torch.distributed.init_process_group("gloo")
        if a.subset:
            raise SystemExit("--subset is not supported with several processes")
    use_bf16 = a.bf16 == "on" or (a.bf16 == "auto" and cpu_has_fast_bf16())
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train.log", "a", buffering=1) if rank == 0 else None  # noqa: SIM115

    def say(*msg: object) -> None:
        if log is None:
            return
        line = " ".join(str(m) for m in msg)
        print(line, flush=True)
        log.write(line + "\n")

    vocab = Vocabulary.from_file(f"{a.lang}/vocab.txt")
    tok = Tokenizer.from_dir(a.lang)
    items, dev = load_items(a.feats, tok)
    d, h, ffn, blocks = (int(x) for x in a.shape.split(","))
    cfg = ModelConfig(
        vocab_size=len(vocab), d_model=d, attention_heads=h, linear_units=ffn, num_blocks=blocks,
        dropout_rate=0.1, positional_dropout_rate=0.1, attention_dropout_rate=0.0,
        dynamic_chunk_sizes=(-1, *CONTEXTS[0]), dynamic_left_context_sizes=tuple(CONTEXTS[1]),
        dynamic_right_context_sizes=tuple(CONTEXTS[2]),
    )  # fmt: skip
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    model = ChunkFormerCTC(cfg)
    mean, istd = load_cmvn(f"{a.feats}/global_cmvn")
    model.encoder.global_cmvn.mean.copy_(mean)
    model.encoder.global_cmvn.istd.copy_(istd)
    if a.init:
        # Continue training a shipped model: the weights (and their CMVN) come from its directory,
        # so a new session picks up where the last one stopped instead of starting from scratch.
        if Path(a.init, "vocab.txt").read_text() != Path(a.lang, "vocab.txt").read_text():
            raise SystemExit(f"{a.init}/vocab.txt differs from {a.lang}/vocab.txt")
        start, start_cfg, _ = load_model_dir(a.init)
        if a.grow:
            # New near-identity blocks after the given block indices (chunkasr.training.insert_blocks):
            # the deeper model starts out computing what the shipped one did.
            start = insert_blocks(start, [int(k) for k in a.grow.split(",")], a.block_init_scale)
            start_cfg = start.cfg
        if start_cfg.to_official_dict()["encoder_conf"] != cfg.to_official_dict()["encoder_conf"]:
            raise SystemExit(f"{a.init}: encoder shape differs from --shape {a.shape}")
        model.load_state_dict(start.state_dict())
    else:
        shrink_block_outputs(model, a.block_init_scale)
    # Everything after the front end is normalised (pre-LN blocks, final LN), so under Adam its
    # weights random-walk to ever larger norms; the embedding then grows until the residual
    # blocks' outputs are negligible beside it and the model is stuck at the label prior.
    front = [(t, float(t.norm())) for n, t in model.named_parameters() if n.startswith("encoder.embed.")]
    aux = torch.nn.Linear(d, 4 * len(CHARS) + 4)  # blank + chars, 4 sub-frames per 80 ms frame
    params = list(model.parameters()) + (list(aux.parameters()) if a.aux_char else [])
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01, betas=(0.9, 0.98))
    short = [it for it in items if it[2] <= 500]
    random.Random(a.seed).shuffle(short)
    subset = {"n": a.subset}
    step, trained_s = 0, 0.0
    if (out / "last.pt").exists():
        ck = torch.load(out / "last.pt", weights_only=False)
        model.load_state_dict(ck["model"])
        if "aux" in ck:
            aux.load_state_dict(ck["aux"])
        opt.load_state_dict(ck["opt"])
        step, trained_s = ck["step"], ck["trained_s"]
        rng.setstate(ck["rng"])
        subset["n"] = ck.get("subset", 0) or a.subset
        torch.set_rng_state(ck["torch_rng"])
        say(f"resumed at step {step}, {trained_s / 60:.1f} min trained")
    if rank > 0:  # the same weights, other batches, masks and dropout
        rng = random.Random(a.seed * 7919 + rank * 100003 + step)
        torch.manual_seed(a.seed * 7919 + rank * 100003 + step)
    say(f"bf16 autocast: {use_bf16}; {world} process(es) x {torch.get_num_threads()} thread(s)")
    say(f"{len(items)} items, {sum(i[2] for i in items) / 360000:.1f} h; model {a.shape}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, vocab {len(vocab)}")  # fmt: skip
    budget = a.minutes * 60

    def lr_at() -> float:
        warm = min(1.0, (step + 1) / a.warmup)
        start = a.decay_start * 60 if a.decay_start else 0.6 * budget
        frac = min(1.0, max(0.0, (trained_s - start) / max(budget - start, 1.0)))
        decay = 0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * frac))
        return a.lr * warm * decay

    clean_long = [it for it in items if it[4] and it[2] <= 1000]

    def batch() -> list:
        pool = short if step < a.short_steps else items
        if subset["n"]:
            pool = short[: subset["n"]] if subset["n"] < len(short) else items
        if step < a.flat_start:
            pool = clean_long
        anchor = rng.choice(pool)
        cand = [it for it in rng.sample(pool, min(300, len(pool))) if abs(it[2] - anchor[2]) < 150]
        chosen, tot = [], 0
        for it in [anchor, *cand]:
            if tot + it[2] > a.batch_frames and chosen:
                break
            chosen.append(it)
            tot += it[2]
        return chosen

    def evaluate() -> str:
        model.eval()
        res = []
        with torch.no_grad():
            for ctx in [(-1, 0, 0), (64, 128, 128)]:
                outs, _ = model.encoder([f for f, _ in dev], *ctx)
                hyps = [vocab.decode([t.id for t in ctc_greedy_search(model.ctc(o))]) for o in outs]
                nw = sum(len(r.split()) for _, r in dev)
                nc = sum(len(r) for _, r in dev)
                w = sum(wer(r, x) * len(r.split()) for (_, r), x in zip(dev, hyps, strict=True)) / nw
                c = sum(cer(r, x) * len(r) for (_, r), x in zip(dev, hyps, strict=True)) / nc
                res.append(f"{ctx}: WER {100 * w:.1f} CER {100 * c:.1f}")
            res.append(repr(hyps[1][:80]))
        model.train()
        return " | ".join(res)

    def sync_grads() -> None:
        """Average the gradients of all ranks (one all-reduce of the flattened vector)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= world
        off = 0
        for p, g in zip(params, grads, strict=True):
            g.copy_(flat[off : off + g.numel()].view_as(g))
            p.grad = g
            off += g.numel()

    def save() -> None:
        if world > 1:  # weights stay equal by construction; re-broadcast so no drift can build up
            for t in [*params, *model.buffers()]:
                torch.distributed.broadcast(t.data, 0)
        if rank > 0:
            return
        ck = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "trained_s": trained_s,
              "rng": rng.getstate(), "torch_rng": torch.get_rng_state(), "config": cfg.to_official_dict(),
              "lang": a.lang, "shape": a.shape, "aux": aux.state_dict(), "subset": subset["n"]}  # fmt: skip
        torch.save(ck, out / "last.pt.tmp")
        os.replace(out / "last.pt.tmp", out / "last.pt")

    call_start = time.time()
    last_save = time.time()
    ema = None
    model.train()
    stop = want_save = False
    while trained_s < budget and not stop:
        if want_save:
            save()
            last_save = time.time()
        t0 = time.time()
        b = batch()
        feats = [torch.from_numpy(np.array(arr[o : o + n], dtype=np.float32)) for arr, o, n, *_ in b]
        if step >= a.short_steps:
            fill = model.encoder.global_cmvn.mean
            if a.freq_warp:
                feats = [
                    freq_warp(f, rng.uniform(1 - a.freq_warp, 1 + a.freq_warp)) if rng.random() < 0.5 else f
                    for f in feats
                ]
            if a.p_smear:
                feats = [time_smear(f, rng.choice((3, 5))) if rng.random() < a.p_smear else f for f in feats]
            if a.p_breath:
                feats = [
                    breath_noise(f, rng.uniform(-22.0, -10.0), rng.getrandbits(62))
                    if rng.random() < a.p_breath
                    else f
                    for f in feats
                ]
            feats = [spec_augment(f, fill, rng, time_ratio=0.01, max_time=20) for f in feats]
        targets = [it[3] for it in b]
        if step < a.short_steps or rng.random() < 0.4:
            ctx = (-1, 0, 0)
        else:
            ctx = tuple(rng.choice(c) for c in CONTEXTS)
        for g in opt.param_groups:
            g["lr"] = lr_at()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            outs, _ = model.encoder(feats, *ctx)
            lens = [o.shape[0] for o in outs]
            lp = model.ctc(torch.nn.utils.rnn.pad_sequence(outs))
        ntok = sum(len(t) for t in targets)
        loss = torch.nn.functional.ctc_loss(
            lp.float(), torch.tensor([x for t in targets for x in t]), torch.tensor(lens),
            torch.tensor([len(t) for t in targets]), zero_infinity=True, reduction="sum",
        ) / ntok  # fmt: skip
        bpe_loss = float(loss.detach())
        logs = ""
        if a.aux_char:
            h = torch.nn.utils.rnn.pad_sequence([o.float() for o in outs])  # (T, B, D)
            T, B = h.shape[:2]
            z = aux(h).view(T, B, 4, -1).permute(0, 2, 1, 3).reshape(4 * T, B, -1).log_softmax(-1)
            spelled = [" ".join(tok.decode(t).split()) for t in targets]
            ctext = [[CHARS.index(c) + 1 for c in text if c in CHARS] for text in spelled]
            closs = torch.nn.functional.ctc_loss(
                z, torch.tensor([x for t in ctext for x in t]), torch.tensor([4 * n for n in lens]),
                torch.tensor([len(t) for t in ctext]), zero_infinity=True, reduction="sum",
            ) / max(1, sum(len(t) for t in ctext))  # fmt: skip
            loss = loss + a.aux_char * closs
            logs += f" char {float(closs):.3f}"
        if step < a.flat_start:
            labels = [
                flat_targets(f, t, [len(vocab.piece(x)) for x in t], n)
                for f, t, n in zip(feats, targets, lens, strict=True)
            ]
            lab = torch.nn.utils.rnn.pad_sequence(labels, padding_value=-100)
            ce = torch.nn.functional.cross_entropy(lp.float().flatten(0, 1), lab.flatten(), ignore_index=-100)
            loss = loss + (1.0 - step / a.flat_start) * ce
            acc = float((lp.argmax(-1) == lab).float().sum() / (lab >= 0).sum())
            logs += f" ce {float(ce):.3f} acc {acc:.2f}"
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            sync_grads()
        gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0))
        if math.isfinite(gn):
            opt.step()
            if a.embed_max_norm:
                with torch.no_grad():
                    for t, n0 in front:
                        n = float(t.norm())
                        if n > a.embed_max_norm * n0:
                            t.mul_(a.embed_max_norm * n0 / n)
        step += 1
        trained_s += time.time() - t0
        stop = bool(a.stop_after and time.time() - call_start > a.stop_after * 60)
        want_save = time.time() - last_save > 240
        if world > 1:  # rank 0's clock decides the schedule, the stop and the saves for everyone
            sync = torch.tensor([trained_s, float(stop), float(want_save)], dtype=torch.float64)
            torch.distributed.broadcast(sync, 0)
            trained_s, stop, want_save = float(sync[0]), bool(sync[1]), bool(sync[2])
        ema = bpe_loss if ema is None else 0.95 * ema + 0.05 * bpe_loss
        if subset["n"] and subset["n"] < len(short) and ema < a.grow_at:
            subset["n"] = 1 << 40 if a.subset_jump else 2 * subset["n"]
            ema = 3.0
            say(f"step {step}: curriculum subset -> {subset['n']} utterances")
        if step % 25 == 0:
            emb = math.sqrt(sum(float(t.norm()) ** 2 for t, _ in front))
            say(f"{time.strftime('%H:%M:%S')} step {step} loss {ema:.3f} gn {gn:.2f} lr {lr_at():.2e} "
                f"emb {emb:.1f} "
                f"ctx {ctx} {sum(it[2] for it in b) / 100:.0f}s {trained_s / 60:.1f} min{logs}")  # fmt: skip
        if step % a.eval_every == 0 and rank == 0:
            say("EVAL", step, evaluate())
    save()
    if rank == 0:
        say("EVAL final", step, evaluate())
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
