#!/usr/bin/env bash
# Benchmark 6 on a lent GPU machine, in ONE device call (torch/torchvision preinstalled there, no network):
#     run(command="bash bench/gpu.sh", timeout_s=600)              # nothing to carry
# Then, here: cp <files_at>/gpu.json bench/results/gpu.json && .venv/bin/python bench/run_all.py --render-only
# Installs the project without its pins (--no-deps: keeps the machine's torch; --no-build-isolation: no
# network for a build backend), falls back to PYTHONPATH if that fails. Needs no ray, optuna or mlflow.
# Extra arguments go to bench/gpu_throughput.py (e.g. --no-compile, --seconds 5, --budget-s 300).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$PY" -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/pip.log" 2>&1; then
  echo "pip install failed (see pip.log): using PYTHONPATH=$PWD"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$OUT/nvidia-smi.csv"
"$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
"$PY" bench/gpu_throughput.py --out-dir "$OUT" --budget-s "${BUDGET_S:-420}" --packing "$@" 2>&1 | tee "$OUT/gpu.log"
