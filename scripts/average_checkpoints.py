#!/usr/bin/env python
"""Average the weights of several training checkpoints (``train_fast.py`` / ``train.py`` ``.pt``).

Snapshots taken during the learning-rate decay sit around one minimum; their mean is usually a
little better than the last one alone. The output keeps every other entry of the last checkpoint
given (config, lang, step), so ``scripts/export_model.py OUT --raw`` exports it as usual::

    python scripts/average_checkpoints.py exp/snaps/*.pt --last 5 --out exp/avg.pt

Every checkpoint must hold the same tensors with the same shapes; a mismatch is an error naming
the tensor and the file. Integer buffers (counters) are taken from the last checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from chunkasr.training import load_checkpoint


def average_states(states: list[dict[str, torch.Tensor]], names: list[str]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating tensors over ``states``; other tensors from the last one."""
    if not states:
        raise ValueError("no checkpoints to average")
    keys = list(states[-1])
    for state, name in zip(states, names, strict=True):
        missing = [k for k in keys if k not in state]
        extra = [k for k in state if k not in states[-1]]
        if missing or extra:
            raise ValueError(
                f"{name}: tensors differ from {names[-1]}: missing {missing[:3]}, unexpected {extra[:3]}"
            )
        for k in keys:
            if state[k].shape != states[-1][k].shape:
                raise ValueError(f"{name}: {k} has shape {tuple(state[k].shape)}, "
                                 f"{names[-1]} has {tuple(states[-1][k].shape)}")  # fmt: skip
    out: dict[str, torch.Tensor] = {}
    for k in keys:
        last = states[-1][k]
        if last.is_floating_point():
            acc = torch.zeros_like(last, dtype=torch.float64)
            for state in states:
                acc += state[k].to(torch.float64)
            out[k] = (acc / len(states)).to(last.dtype)
        else:
            out[k] = last.clone()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path, help="in training order (oldest first)")
    ap.add_argument("--last", type=int, default=0, help="only the last N of them (0: all)")
    ap.add_argument("--key", default="model", help="entry holding the weights")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    paths = a.checkpoints[-a.last :] if a.last else a.checkpoints
    cks = [load_checkpoint(p, restore_rng=False) for p in paths]
    for ck, p in zip(cks, paths, strict=True):
        if a.key not in ck:
            raise SystemExit(f"{p}: no '{a.key}' entry (has {sorted(ck)})")
    try:
        avg = average_states([ck[a.key] for ck in cks], [str(p) for p in paths])
    except ValueError as e:
        raise SystemExit(str(e)) from None
    out = {k: v for k, v in cks[-1].items() if k not in ("opt", "ema")}
    out[a.key] = avg
    out["averaged_from"] = [f"{p.name} (step {ck.get('step')})" for p, ck in zip(paths, cks, strict=True)]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(a.out.suffix + ".tmp")
    torch.save(out, tmp)
    tmp.replace(a.out)
    print(f"{a.out}: mean of {len(paths)} checkpoints, steps {[ck.get('step') for ck in cks]}")


if __name__ == "__main__":
    main()
