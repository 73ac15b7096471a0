#!/bin/bash
# The one device run for issue 3 on a lent H100/H200, about 6 minutes: CUDA tests, the benchmark
# against the official package (1 h, 4 h, 24 files; bf16), and GPU memory on a 24 h file.
#
#   here:   bash scripts/gpu_wheels.sh          # once: .whl/ with what the device image lacks
#   device: run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=540)
#
# Everything lands in $OUT (the device tool brings it back): gpu.txt, pytest_gpu.txt,
# bench.jsonl, bench_24h.jsonl. Each step has its own time limit so one slow step cannot eat
# the others.
set -u
OUT=${OUT:-/tmp/chunkasr-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
  nproc; } 2>&1 | tee "$OUT/gpu.txt"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider --continue-on-collection-errors tests 2>&1 | tail -20 | tee "$OUT/pytest_gpu.txt"
timeout 300 python3 scripts/benchmark.py --repeat 1 2>&1 | grep -v Warning | tee "$OUT/bench.jsonl"
timeout 150 python3 scripts/benchmark.py --case 24h --only chunkasr 2>&1 | grep -v Warning | tee "$OUT/bench_24h.jsonl"
