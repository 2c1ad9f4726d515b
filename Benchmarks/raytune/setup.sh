#!/usr/bin/env bash
# Installs Ray Tune into a virtual environment outside the repository (not in CI).
#   bash Benchmarks/raytune/setup.sh [VENV]      default VENV: /work/scratch/rayenv
set -euo pipefail
venv="${1:-${RAYENV:-/work/scratch/rayenv}}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "ray[tune]"
"$venv/bin/python" -c 'import ray; print("ray", ray.__version__, "in", "'"$venv"'")'
