#!/usr/bin/env bash
# Installs PyTorch (CPU) into a virtual environment outside the repository. Not in CI.
#   bash Benchmarks/pytorch-wavenet/setup.sh [VENV]     default VENV: $TORCHENV or /work/scratch/torchenv
# From PyPI the wheel pulls about 5 GB of CUDA libraries this code never uses;
# where download.pytorch.org is reachable, TORCH_INDEX=https://download.pytorch.org/whl/cpu
# gets the small CPU-only wheel.
set -euo pipefail
venv="${1:-${TORCHENV:-/work/scratch/torchenv}}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
case "$(realpath -m "$venv")/" in "$repo"/*) echo "put the venv outside the repository (got $venv)" >&2; exit 1;; esac
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    echo "torch is already in $venv: $("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet torch ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "in '"$venv"'")' 2>/dev/null
