#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): bf16 base phase-1 on one GPU, cuDNN attention on
# and off, ≤ 8 minutes. Installs the CUDA jaxlib first (make install-gpu). Extra arguments
# go to the script: --dry-run (no GPU needed), --cpu (the whole path on a CPU), --steps N.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " != *" --dry-run "* && " $* " != *" --cpu "* ]]; then
  make install-gpu >/dev/null
  .venv/bin/python -c "import jax; jax.devices('gpu')" >/dev/null 2>&1 || {
    echo "gpu_check: JAX sees no CUDA GPU here (use --dry-run or --cpu elsewhere)" >&2; exit 1; }
fi
PY=.venv/bin/python
[[ -x $PY ]] || PY=python3
exec timeout 480 "$PY" benchmarks/gpu_check.py "$@"
