"""Side-by-side speed and memory: chunkasr vs the official ``chunkformer`` package.

Builds a random-weight model in the official layout (17 blocks x 512, vocab 5000 by default),
synthesises the audio, then runs both implementations in this one process on the same files
and prints one JSON line per (case, implementation, dtype): wall seconds, realtime factor,
peak GPU memory, peak host RSS during the run, and chunkasr's speed ratio over the official
run of the same case and dtype. Both read the WAV from disk and produce text (end to end).

    python scripts/benchmark.py                 # GPU: 1 h, 4 h files; 24 files of 2.5-7.5 min
    python scripts/benchmark.py --cpu           # CPU: 5 min of audio, fp32 and bf16
    python scripts/benchmark.py --cpu-small     # CI smoke test: tiny model, 20 s of audio
    python scripts/benchmark.py --only chunkasr --case 24h   # memory check on a 24 h file
    python scripts/benchmark.py --cpu --repeat 3            # also warm calls (median of 3)

``wall_s`` is the first call in the process (cold: kernel JIT, allocator growth included), as a
one-file CLI run sees it; with ``--repeat N`` the same call is made N more times and
``warm_wall_s`` is their median, as in a long-lived process (a server, a directory of files).

The official package is optional (``pip install chunkformer --no-deps`` plus its runtime deps):
without it only chunkasr rows are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from chunkasr import load_model  # noqa: E402
from chunkasr.model import ChunkConfig, ChunkFormerCTC, ModelConfig  # noqa: E402
from chunkasr.model.checkpoint import save_model_dir  # noqa: E402
from chunkasr.runtime import tune_allocator  # noqa: E402

SR = 16000


# ----------------------------------------------------------------------------- inputs


def make_model_dir(path: Path, d_model: int, blocks: int, heads: int, vocab: int) -> Path:
    cfg = ModelConfig(
        vocab_size=vocab, d_model=d_model, attention_heads=heads, linear_units=4 * d_model, num_blocks=blocks
    )
    torch.manual_seed(0)
    model = ChunkFormerCTC(cfg)
    with torch.no_grad():
        model.encoder.global_cmvn.mean.fill_(9.0)
        model.encoder.global_cmvn.istd.fill_(0.3)
    tokens = ["<blank>", "<unk>"] + [f"\u2581t{i}" for i in range(vocab - 3)] + ["<sos/eos>"]
    return save_model_dir(model, tokens, path)


def make_wav(path: Path, seconds: float, seed: int) -> Path:
    """Speech-like noise: band-limited noise with a syllable-rate envelope, written in 60 s blocks."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        left = int(seconds * SR)
        t0 = 0
        while left > 0:
            n = min(left, 60 * SR)
            t = (np.arange(n) + t0) / SR
            env = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + seed)
            x = rng.standard_normal(n) * 0.1 * env + 0.05 * np.sin(2 * np.pi * 180 * t)
            f.write(x.astype(np.float32))
            left -= n
            t0 += n
    return path


# ----------------------------------------------------------------------------- measuring


class PeakRSS:
    """Samples this process's resident memory every 20 ms while active."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.02)

    def __enter__(self) -> PeakRSS:
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def measure(fn: Callable[[], object], device: torch.device) -> dict[str, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with PeakRSS() as rss:
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t
    out = {"wall_s": round(wall, 3), "peak_rss_gib": round(rss.peak / 2**30, 3)}
    if device.type == "cuda":
        out["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return out


_MATMUL = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "mkldnn::_linear_pointwise",
           "aten::mkldnn_linear", "aten::_addmm_activation")  # fmt: skip


def profile_call(fn: Callable[[], object]) -> dict[str, float]:
    """One call under torch.profiler: wall seconds and the operators' own time by kind.

    ``matmul_s`` is the time spent in matrix products, which both implementations need in the
    same amount (same model, same chunks): wall / matmul_s bounds how much faster any exact
    implementation can get with these kernels. ``untracked_s`` is time outside torch
    operators (Python, file reading outside torch, waiting).
    """
    from torch.profiler import ProfilerActivity, profile

    kinds = {"matmul_s": 0.0, "attention_s": 0.0, "conv_s": 0.0, "other_ops_s": 0.0}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        fn()
        wall = time.perf_counter() - t
    for e in prof.key_averages():
        sec = e.self_cpu_time_total / 1e6
        if e.key in _MATMUL:
            kinds["matmul_s"] += sec
        elif "scaled_dot_product" in e.key or "softmax" in e.key:
            kinds["attention_s"] += sec
        elif "conv" in e.key:
            kinds["conv_s"] += sec
        else:
            kinds["other_ops_s"] += sec
    out = {"profile_wall_s": round(wall, 3), **{k: round(v, 3) for k, v in kinds.items()}}
    out["untracked_s"] = round(max(wall - sum(kinds.values()), 0.0), 3)
    return out


# ----------------------------------------------------------------------------- runners


def run_chunkasr(
    model_dir: Path, files: list[Path], device: torch.device, dtype: str, batch_duration: float
) -> Callable[[], object]:
    model = load_model(model_dir, device=device, dtype=dtype)

    def go() -> object:
        texts = [
            r.transcript.text
            for r in model.results(
                [str(f) for f in files], chunk=ChunkConfig(64, 128, 128), batch_duration=batch_duration
            )
            if r.transcript is not None
        ]
        assert len(texts) == len(files)
        return texts

    return go


def run_official(
    model_dir: Path, files: list[Path], device: torch.device, dtype: str, batch_duration: float
) -> Callable[[], object]:
    import logging

    logging.disable(logging.WARNING)
    from chunkformer import ChunkFormerModel

    model = ChunkFormerModel.from_pretrained(str(model_dir)).to(device).eval()
    cast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)

    def go() -> object:
        ctx = torch.autocast(device.type, cast) if cast else contextlib.nullcontext()
        with ctx, open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            if len(files) == 1:
                return model.endless_decode(
                    str(files[0]), 64, 128, 128, int(batch_duration), return_timestamps=False
                )
            return model.batch_decode([str(f) for f in files], 64, 128, 128, int(batch_duration))

    return go


# ----------------------------------------------------------------------------- main


def cases(args: argparse.Namespace) -> Iterator[tuple[str, list[float]]]:
    if args.case:
        table = {
            "1h": [3600.0],
            "4h": [4 * 3600.0],
            "10h": [10 * 3600.0],
            "24h": [24 * 3600.0],
            "5min": [300.0],
            "dir24": list(np.linspace(150, 450, 24)),
            "20s": [20.0],
        }
        yield args.case, table[args.case]
    elif args.cpu_small:
        yield "20s", [20.0]
    elif args.cpu:
        yield "5min", [300.0]
    else:
        yield "1h", [3600.0]
        yield "4h", [4 * 3600.0]
        yield "dir24", list(np.linspace(150, 450, 24))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="CPU benchmark (5 min of audio)")
    ap.add_argument("--cpu-small", action="store_true", help="smoke test: tiny model, 20 s")
    ap.add_argument("--case", choices=["1h", "4h", "10h", "24h", "5min", "dir24", "20s"])
    ap.add_argument("--tiny", action="store_true", help="2x64 model (memory checks on long audio)")
    ap.add_argument("--only", choices=["chunkasr", "official"])
    ap.add_argument("--dtypes", default=None, help="comma list, default bf16 (GPU) or fp32,bf16 (CPU)")
    ap.add_argument("--batch-duration", type=float, default=None)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=0, help="warm calls after the first (median)")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="one more call of each under torch.profiler: time in matrix products and the rest",
    )
    ap.add_argument(
        "--tune-allocator",
        action="store_true",
        help="apply chunkasr.runtime.tune_allocator (as the CLI does) to this process: both runs",
    )
    args = ap.parse_args()
    if args.tune_allocator:
        tune_allocator()

    cpu = args.cpu or args.cpu_small or not torch.cuda.is_available()
    device = torch.device("cpu" if cpu else "cuda")
    dtypes = (args.dtypes or ("fp32,bf16" if cpu else "bf16")).split(",")
    batch = args.batch_duration or (300.0 if cpu else 1800.0)
    if cpu:
        torch.set_num_threads(os.cpu_count() or 1)
    size = (64, 2, 4, 500) if args.cpu_small or args.tiny else (512, 17, 8, 5000)
    have_official = importlib.util.find_spec("chunkformer") is not None and args.only != "chunkasr"
    work = Path(args.workdir or tempfile.mkdtemp(prefix="chunkasr-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = make_model_dir(work / f"model{size[0]}x{size[1]}", size[0], size[1], size[2], size[3])
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if not cpu else None,
        "torch": torch.__version__,
    }
    print(
        json.dumps(
            {
                "machine": machine,
                "model": f"{size[1]}x{size[0]} vocab {size[3]}",
                "tune_allocator": args.tune_allocator,
            }
        ),
        flush=True,
    )
    for name, seconds in cases(args):
        files = [make_wav(work / f"{name}_{i}.wav", s, i) for i, s in enumerate(seconds)]
        audio = float(sum(seconds))
        for dtype in dtypes:
            rows = {}
            impls = ["official", "chunkasr"] if have_official else ["chunkasr"]
            if args.only:
                impls = [args.only]
            for impl in impls:
                runner = run_official if impl == "official" else run_chunkasr
                go = runner(model_dir, files, device, dtype, batch)
                stats = measure(go, device)
                stats["realtime_x"] = round(audio / stats["wall_s"], 1)
                if args.repeat:
                    warm = sorted(measure(go, device)["wall_s"] for _ in range(args.repeat))
                    stats["warm_wall_s"] = warm[len(warm) // 2]
                    stats["warm_realtime_x"] = round(audio / stats["warm_wall_s"], 1)
                if args.profile:
                    stats["profile"] = profile_call(go)
                rows[impl] = stats
                row = {
                    "case": name,
                    "audio_s": round(audio, 1),
                    "impl": impl,
                    "dtype": dtype,
                    "device": device.type,
                    **stats,
                }
                if impl == "chunkasr" and "official" in rows:
                    row["speedup_vs_official"] = round(rows["official"]["wall_s"] / stats["wall_s"], 2)
                    if args.repeat:
                        ratio = rows["official"]["warm_wall_s"] / stats["warm_wall_s"]
                        row["warm_speedup_vs_official"] = round(ratio, 2)
                print(json.dumps(row), flush=True)
                del go
                if device.type == "cuda":
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
