#!/usr/bin/env bash
# Packs ray[tune], optuna and mlflow (the pins of constraints.txt) with their dependencies for the lent GPU
# machine's Python (3.12, x86-64) into .whl/site312.tar.xz, for bench/gpu_sweeps.sh. The ray wheel alone
# is larger than the 64 MiB a device call carries, so this is a site-packages tree recompressed with xz,
# without what that machine already has (torch, numpy, pandas, pyarrow, scipy, matplotlib, pillow,
# scikit-learn) and without what a sweep never loads (Ray's Java jars, RLlib, Ray LLM, the web UIs'
# bundles, bytecode caches). Needs a python3.12 here (PYTHON312=...) and the package registry; ~3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
PY312="${PYTHON312:-$(command -v python3.12 || true)}"
[ -n "$PY312" ] || { echo "no python3.12: set PYTHON312=/path/to/python3.12"; exit 2; }
VENV="${VENV:-/tmp/stack312}"
rm -rf "$VENV"
"$PY312" -m venv "$VENV"
"$VENV/bin/pip" install -q -c constraints.txt "ray[tune]" optuna mlflow
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
THERE='^(torch|numpy|pandas|pyarrow|scipy|matplotlib|mpl_toolkits|pylab\.py|PIL|pillow|sklearn|scikit_learn|fontTools|fonttools|kiwisolver|contourpy|joblib|threadpoolctl|pip|_distutils_hack|distutils-precedence\.pth|setuptools)([-.].*)?$'
(cd "$SITE" && ls | grep -v -E "$THERE" | grep -v -E '^(numpy|scipy|pillow)\.libs$') > "$VENV/keep.txt"
mkdir -p .whl
tar -C "$SITE" -cJf .whl/site312.tar.xz --exclude=__pycache__ --exclude=ray/jars --exclude=ray/rllib \
    --exclude=ray/llm --exclude=ray/dashboard/client --exclude=mlflow/server/js -T "$VENV/keep.txt"
ls -l .whl/site312.tar.xz
