#!/bin/bash
# The layer products on the model's rows (time-major, Sources/CPBTWaveKernels through
# kernel.c) against the channel-major prototype (channel_major.c: time along
# the lanes), one residual width R at a time, the two binaries in turn.
#
#   Benchmarks/ab/layout.sh ROUNDS R...
#
# For each R (gate D = R, skip S = 2R, 20 layers), each product of a layer:
# f R R 1 (the residual 1×1), g R 2R 2 (the gated forward), i R 2R 2 (the
# input gradient; the prototype runs it as f 2R R 2), b 2R R R (the gated
# backward product), w R 2R 2 and w R R 1 (their weight gradients), f 20R 2R
# 1 and w 20R 2R 1 (the skip product over the stacked z's; on the rows side as
# the step runs it since 198ff2f, 20 taps of R channels, each layer's z
# rows T apart: f R 2R 20 and w R 2R 20 at T 96, the longest the harness
# holds). Prints, per
# product, the best GFLOP/s of ROUNDS runs of each (rows/channel-major) and
# their ratio; T 384 (the step's time tile), 8192 for the weight gradients
# (which sweep the whole window); dilation 1. Each result of the prototype is
# first checked against plain loops (`channel_major … check`). On a host with
# AVX-512 (F, BW, DQ, VL) both sides run AVX-512 (the prototype with
# CM_AVX512: 16 lanes, 6 × 4 tiles), elsewhere AVX2; LAYOUT_ISA=avx2 forces
# AVX2 for the prototype (the rows kernels then still take the CPU's best:
# set PBTWAVE_ISA=avx2 too). With AVX-512, a third figure: b8_step.c's
# kernels (blocks of 8 positions, two channels × 8 positions a vector), with
# the prototype's arguments, also checked first. Needs clang. The
# channel-major and blocks-of-8 figures in Benchmarks/HISTORY.md.
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
rounds=$1; shift
command -v clang > /dev/null || { echo "layout.sh: needs clang" >&2; exit 1; }
grep -q avx2 /proc/cpuinfo && grep -q fma /proc/cpuinfo || { echo "layout.sh: needs AVX2 and FMA" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd); src="$here/../../Sources/CPBTWaveKernels"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# shellcheck source=ckernels.sh
. "$here/ckernels.sh"
ckernels_objects "$src" "$tmp" ""
clang -O2 -I"$src/include" "$here/kernel.c" "${objects[@]}" -o "$tmp/rows" -lm
prototype_build "$src" "$here/channel_major.c" "$tmp/cm"
echo "layout.sh: the prototype in $isa"
b8=""
if [ "$isa" = avx512 ]; then prototype_build "$src" "$here/b8_step.c" "$tmp/b8"; b8="$tmp/b8"; fi
gflops() { "$@" | sed 's/.*: //; s/ GFLOP\/s//'; }
for R in "$@"; do
  D=$((2 * R)); L=$((20 * R))
  line="R$R"
  for spec in "f $R $R 1|f $R $R 1 384 1|f $R $R 1 384 1" "g $R $D 2|g $R $D 2 384 1|g $R $D 2 384 1" \
              "i $R $D 2|i $R $D 2 384 1|f $D $R 2 384 1" "b $D $R $R|b $D $R $R 384 1|b $D $R $R 384 1" \
              "w $R $D 2|w $R $D 2 8192 1|w $R $D 2 8192 1" "w $R $R 1|w $R $R 1 8192 1|w $R $R 1 8192 1" \
              "f skip|f $R $D 20 96 -96|f $L $D 1 384 1" "w skip|w $R $D 20 96 -96|w $L $D 1 8192 1"; do
    IFS='|' read -r label rows_args cm_args <<< "$spec"
    read -ra cm <<< "$cm_args"
    "$tmp/cm" "${cm[@]:0:4}" 1024 1 check > /dev/null || { echo "layout.sh: the prototype's $cm_args is wrong" >&2; exit 1; }
    [ -z "$b8" ] || "$b8" "${cm[@]:0:4}" 1024 1 check > /dev/null || { echo "layout.sh: b8_step's $cm_args is wrong" >&2; exit 1; }
    best_r=0; best_c=0; best_b=0
    for ((r = 0; r < rounds; r++)); do
      # shellcheck disable=SC2086
      a=$(gflops "$tmp/rows" $rows_args); b=$(gflops "$tmp/cm" $cm_args)
      best_r=$(awk -v x="$best_r" -v v="$a" 'BEGIN { print (v > x ? v : x) }')
      best_c=$(awk -v x="$best_c" -v v="$b" 'BEGIN { print (v > x ? v : x) }')
      if [ -n "$b8" ]; then
        # shellcheck disable=SC2086
        e=$(gflops "$b8" $cm_args); best_b=$(awk -v x="$best_b" -v v="$e" 'BEGIN { print (v > x ? v : x) }')
      fi
    done
    line="$line | $label: $best_r/$best_c $(awk -v a="$best_r" -v b="$best_c" 'BEGIN { printf "%.2f×", b / a }')"
    [ -z "$b8" ] || line="$line, b8 $best_b $(awk -v a="$best_r" -v b="$best_b" 'BEGIN { printf "%.2f×", b / a }')"
  done
  echo "$line"
done
