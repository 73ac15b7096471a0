#!/bin/bash
# Wheels that the lent GPU machine's image (Python 3.12, torch/torchaudio/sentencepiece/click/rich
# already there) lacks, for scripts/gpu_check.sh: chunkasr's own needs (soundfile + cffi; PyAV,
# 36 MB, is left out: the benchmark reads WAV and chunkasr imports av only for other formats) and
# the official package with the dependencies it imports. Written to .whl/ (ignored by git), ~7 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
# .whl/ is in .gitignore; the device tool takes it only when carry names it
mkdir -p .whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for p in soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 chunkformer==1.2.2 jiwer==4.0.0 \
         rapidfuzz==3.14.6 pydub==0.25.1; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${plat[@]}" -d .whl "$p"
done
# these two are published as source only; both are pure Python
python3 -m pip wheel -q --no-deps -w .whl textgrid==1.6.1 langid==1.1.6
ls -1 .whl && du -sh .whl
