#!/usr/bin/env bash
# Benchmark 6, the tool on a lent GPU machine (bench/gpu_sweeps.py): `sweeps run` through Ray at 1, 0.5 and
# 0.25 GPU per trial. Needs ray, optuna and mlflow, which that machine lacks: first, here,
#     bash bench/pack_stack.sh                      # -> .whl/site312.tar.xz (~50 MB, git-ignored)
# then one device call:
#     run(command="bash bench/gpu_sweeps.sh", carry=[".whl"], timeout_s=480)
# and here: cp <files_at>/gpu_sweeps.json bench/results/ && .venv/bin/python bench/run_all.py --render-only
# The stack is unpacked to /tmp/site and put first on PYTHONPATH (the machine's torch, numpy, pandas,
# pyarrow, scipy and matplotlib are used); the Ray workers inherit it. Extra arguments go to gpu_sweeps.py.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
PY="${PYTHON:-python3}"
STACK="${STACK:-.whl/site312.tar.xz}"
mkdir -p "$OUT" /tmp/site
export PYTHONUNBUFFERED=1
t0=$(date +%s)
tar -C /tmp/site -xJf "$STACK" || { echo "cannot unpack $STACK: make it with bench/pack_stack.sh and carry .whl"; exit 3; }
export PYTHONPATH="/tmp/site:$PWD"
echo "stack unpacked in $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia-smi.csv"
"$PY" -c "import sys, torch, ray, ray.tune, optuna, mlflow, sweeps.cli; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ray', ray.__version__, 'optuna', optuna.__version__, 'mlflow', mlflow.__version__)" \
  || { echo "the stack does not import (see above)"; exit 4; }
"$PY" bench/gpu_sweeps.py --out-dir "$OUT" --budget-s "${BUDGET_S:-330}" "$@" 2>&1 | tee "$OUT/gpu_sweeps.log"
