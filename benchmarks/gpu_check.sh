#!/usr/bin/env bash
# GPU check of issue 14 (see benchmarks/gpu_check.py): a short `a3cs train` and a tiny `a3cs search`
# with --device cuda against --device cpu; prints frames/s and the GPU/CPU ratios.
#   bash benchmarks/gpu_check.sh [--json] [--device cuda:1] [--gpu-frames 1M]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" benchmarks/gpu_check.py "$@"
