#!/bin/bash
# Paired A/B runs of `pbtwave bench train` on a shared 2-core host.
#
#   Benchmarks/ab/pair.sh ROUNDS BINARY_A BINARY_B [bench train options…]
#
# Each round runs A on one core and B on the other at the same time (so a
# busy spell of the host slows both alike), swapping the cores every round,
# and prints both medians (samples/s) and B/A. At the end: how many rounds
# B won and the median of the ratios. A_ARGS and B_ARGS add options to one
# side only, e.g. to compare two windows with one binary:
#
#   A_ARGS="--time 8192" B_ARGS="--time 4096" Benchmarks/ab/pair.sh 8 pbtwave pbtwave --seconds 5
#
# How the README's "N of M pairs faster, median +x %" figures were made.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
rounds=$1; a=$2; b=$3; shift 3
[ "$(nproc)" -ge 2 ] || { echo "pair.sh: needs two CPUs (nproc says $(nproc))" >&2; exit 1; }
command -v taskset > /dev/null || { echo "pair.sh: needs taskset (util-linux)" >&2; exit 1; }
for bin in "$a" "$b"; do command -v "$bin" > /dev/null || { echo "pair.sh: no executable $bin" >&2; exit 1; }; done
median() { grep '^ours' | head -1 | sed -E 's/.*median ([0-9]+) samples.*/\1/'; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ratios=()
for ((r = 0; r < rounds; r++)); do
  ca=$((r % 2)); cb=$((1 - r % 2))
  # shellcheck disable=SC2086
  taskset -c $ca "$a" bench train --no-peak --rounds 1 "$@" ${A_ARGS:-} > "$tmp/a" 2>&1 &
  # shellcheck disable=SC2086
  taskset -c $cb "$b" bench train --no-peak --rounds 1 "$@" ${B_ARGS:-} > "$tmp/b" 2>&1 &
  wait
  ma=$(median < "$tmp/a"); mb=$(median < "$tmp/b")
  [ -n "$ma" ] && [ -n "$mb" ] || { echo "pair.sh: a run failed:"; cat "$tmp/a" "$tmp/b"; exit 1; } >&2
  ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", b / a }')
  ratios+=("$ratio")
  echo "round $((r + 1)): A (cpu $ca) $ma, B (cpu $cb) $mb samples/s, B/A $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1; if ($1 > 1) won++ }
  END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "B faster in %d of %d rounds; median B/A %.3f\n", won, NR, m }'
