#!/bin/bash
# A whole training step with the activations channel-major (cm_step.c, a
# prototype built from channel_major.c's kernels) against PBTWave's own step,
# one width at a time, the two in turn: samples/s of each and their ratio.
#
#   Benchmarks/ab/cmstep.sh PBTWAVE ROUNDS R...
#
# For each R: `PBTWAVE bench train --no-peak --rounds 1 --seconds 2 --R R
# --S 2R --H 2R` (median samples/s) and `cm_step R 2R 2R 8192 8 20 rows`
# and `… blocked` (best of 8 steps each), ROUNDS times in turn; then
# cm_step's own breakdown of a blocked step. cm_step leaves out the
# embedding, the input convolution and Adam, so its figure flatters it a
# little. AVX-512 where the CPU has it (F, BW, DQ, VL), else AVX2
# (LAYOUT_ISA=avx2 forces AVX2). With AVX-512 also `b8_step R 2R 2R 8192 8
# 20`, the same step in blocks of 8 positions (two channels × 8 positions a
# vector), and its breakdown. Needs clang.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
bin=$1; rounds=$2; shift 2
command -v clang > /dev/null || { echo "cmstep.sh: needs clang" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd); src="$here/../../Sources/CPBTWaveKernels"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# shellcheck source=ckernels.sh
. "$here/ckernels.sh"
ckernels_objects "$src" "$tmp" ""
prototype_build "$src" "$here/cm_step.c" "$tmp/cm_step" -DCM_NO_MAIN
echo "cmstep.sh: the channel-major step in $isa"
b8=""
if [ "$isa" = avx512 ]; then prototype_build "$src" "$here/b8_step.c" "$tmp/b8_step"; b8="$tmp/b8_step"; fi
samples() { "$@" | sed -n '1s/.* ms, \([0-9]*\) samples.*/\1/p'; }  # a mock step's samples/s
for R in "$@"; do
  S=$((2 * R))
  for ((r = 0; r < rounds; r++)); do
    ours=$("$bin" bench train --no-peak --rounds 1 --seconds 2 --R "$R" --S "$S" --H "$S" | sed -n 's/^ours:.*median \([0-9]*\) samples.*/\1/p')
    cm=$(samples "$tmp/cm_step" "$R" "$S" "$S" 8192 8 20 rows)
    bk=$(samples "$tmp/cm_step" "$R" "$S" "$S" 8192 8 20 blocked)
    line="R$R/S$S/H$S: ours $ours, channel-major rows $cm, blocked $bk samples/s: $(awk -v a="$ours" -v c="$cm" -v b="$bk" 'BEGIN { printf "%.2f× and %.2f×", c / a, b / a }')"
    if [ -n "$b8" ]; then
      e=$(samples "$b8" "$R" "$S" "$S" 8192 8 20)
      line="$line; blocks of 8 $e: $(awk -v a="$ours" -v b="$e" 'BEGIN { printf "%.2f×", b / a }')"
    fi
    echo "$line"
  done
  "$tmp/cm_step" "$R" "$S" "$S" 8192 8 20 blocked | sed 1d
  [ -z "$b8" ] || { echo "  blocks of 8:"; "$b8" "$R" "$S" "$S" 8192 8 20 | sed 1d; }
done
