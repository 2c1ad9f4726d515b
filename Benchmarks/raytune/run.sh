#!/usr/bin/env bash
# Times the toy PBT (population 5, 100 intervals of 5 iterations) in Ray Tune.
# Extra arguments go to toy_pbt.py, e.g. --cpus-per-trial 0.4.
#   bash Benchmarks/raytune/run.sh
# Prints toy_pbt.py's JSON line (wall_seconds: from before `import ray` to the
# end; fit_seconds: Tuner.fit alone) and busycheck's line. Ray's own daemons
# are not children that busycheck can see, so their CPU counts as "foreign".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${RAYENV:-/work/scratch/rayenv}"
[ -x "$venv/bin/python" ] || { echo "no Ray venv at $venv: run bash $here/setup.sh first" >&2; exit 1; }
storage="$(mktemp -d "${TMPDIR:-/tmp}/raytune-toy-pbt.XXXXXX")"
trap 'rm -rf "$storage"' EXIT
log="$storage.log"
command=("$venv/bin/python" "$here/toy_pbt.py" --storage "$storage" "$@")
busycheck="${BUSYCHECK:-/work/shared/peer/busycheck.py}"
[ -f "$busycheck" ] && command=(python3 "$busycheck" "${command[@]}")
"${command[@]}" 2> "$log" || { tail -30 "$log" >&2; echo "failed; Ray's log: $log" >&2; exit 1; }
grep '^# busycheck' "$log" || true
echo "Ray's log: $log"
