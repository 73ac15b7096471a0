"""End-to-end speed of two versions of chunkasr on the same files, side by side.

Each version is a git revision (``HEAD``, a commit, a tag) or ``.`` for the working tree. Its
``src/`` is unpacked to a temporary folder and imported in a fresh child process, which loads
the model and runs ``Model.transcribe`` (read, fbank, streaming encoder at 64/128/128, CTC,
words and segments: what ``chunkasr transcribe`` does short of writing files) over the files,
after a warm-up on the first few. Versions alternate within every round (A B A B ...), so slow
drifts of a shared machine hit both alike; the report gives each version's median realtime
factor and the ratio of the last version to the first.

    python scripts/bench_engine.py --revs f65c713 . --split dev --dtypes fp32,bf16 --rounds 2

With ``--models BASE NEW`` the two versions are two model folders (under one revision, or a
revision each): the speed cost of a deeper or wider model, measured the same way.

    python scripts/bench_engine.py --revs . . --models models/en-small exp/cand --split dev
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time, torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
from chunkasr.api import load_model
from chunkasr.model import ChunkConfig
m = load_model(args["model"], device="cpu", dtype=args["dtype"])
chunk = ChunkConfig(64, 128, 128)
list(m.transcribe(args["files"][:4], chunk=chunk))  # warm-up: kernels for the batch shapes
t0 = time.perf_counter()
out = list(m.transcribe(args["files"], chunk=chunk))
wall = time.perf_counter() - t0
audio = sum(t.duration for t in out)
import chunkasr
words = sum(len(t.text.split()) for t in out)
print(json.dumps({"audio_s": audio, "wall_s": wall, "words": words, "module": chunkasr.__file__}))
"""


def unpack(rev: str, into: Path) -> Path:
    """``src/`` of a revision ('.' = the working tree) -> a folder to put on PYTHONPATH."""
    if rev == ".":
        return ROOT / "src"
    dest = into / rev.replace("/", "_")
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--revs", nargs=2, required=True, metavar=("BASE", "NEW"))
    ap.add_argument("--model", default=str(ROOT / "models" / "en-small"), help="the model both versions run")
    ap.add_argument("--models", nargs=2, metavar=("BASE", "NEW"), help="a model folder per version instead")
    ap.add_argument("--split", default="dev", help="data/corpus/<split>.jsonl (make_corpus.py)")
    ap.add_argument("--files", nargs="*", help="audio files instead of a corpus split")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.files:
        files = [str(Path(f).resolve()) for f in a.files]
    else:
        split = ROOT / "data" / "corpus" / f"{a.split}.jsonl"
        files = [str((ROOT / json.loads(line)["audio"]).resolve()) for line in split.open()]
    models = a.models or [a.model, a.model]
    # a version is a (revision, model folder) pair, labelled "rev" (or "rev:model" with --models)
    version = {(f"{rev}:{m}" if a.models else rev): (rev, m) for rev, m in zip(a.revs, models, strict=True)}
    if len(version) < 2:
        raise SystemExit(f"both versions are {next(iter(version))}: nothing to compare")
    with tempfile.TemporaryDirectory() as tmp:
        srcs = {rev: unpack(rev, Path(tmp)) for rev in dict.fromkeys(a.revs)}
        for dtype in a.dtypes.split(","):
            runs: dict[str, list[dict]] = {label: [] for label in version}
            for _ in range(a.rounds):
                for label, (rev, model) in version.items():
                    payload = {"model": model, "dtype": dtype, "files": files, "threads": a.threads}
                    proc = subprocess.run(
                        [sys.executable, "-c", CHILD, json.dumps(payload)],
                        env={"PYTHONPATH": str(srcs[rev]), "PATH": "/usr/bin:/bin"},
                        capture_output=True,
                        text=True,
                    )
                    if proc.returncode != 0:
                        raise SystemExit(f"{label} ({dtype}) failed:\n{proc.stderr[-2000:]}")
                    res = json.loads(proc.stdout.strip().splitlines()[-1])
                    if not res["module"].startswith(str(srcs[rev])):
                        raise SystemExit(f"{label}: imported {res['module']}, not {srcs[rev]}")
                    runs[label].append(res)
            rtf = {
                label: statistics.median(r["audio_s"] / r["wall_s"] for r in rs) for label, rs in runs.items()
            }
            base, new = version
            row = {
                "dtype": dtype,
                "files": len(files),
                "audio_s": round(runs[base][0]["audio_s"], 1),
                **{f"realtime_x[{label}]": round(x, 1) for label, x in rtf.items()},
                "all_runs_x": {
                    label: [round(r["audio_s"] / r["wall_s"], 1) for r in rs] for label, rs in runs.items()
                },
                "words": {label: rs[0]["words"] for label, rs in runs.items()},
                "ratio": round(rtf[new] / rtf[base], 3),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
