#!/bin/bash
# One kernel alone, two versions of Sources/CPBTWaveKernels against each other.
#
#   Benchmarks/ab/kernel.sh ROUNDS SRC_A SRC_B OP CIN COUT K [T [D [NODB]]]
#
# SRC_A and SRC_B are CPBTWaveKernels source folders (e.g. of a `git worktree` at
# the old commit, and Sources/CPBTWaveKernels). Each is built with clang -O2 next to
# kernel.c, and the two binaries run in turn ROUNDS times; each prints the
# best GFLOP/s of its 30 repetitions (operands warm in cache), and the end
# line the best of all rounds for each. OP: f forward, g gated forward
# (COUT = 2D; z and Z: as a step calls it, 20 layers' rows larger than the
# caches, z into the stacked rows or, Z, each layer's own), i input
# gradient, w weight gradient, b the gated backward product (CIN = S,
# COUT = D, K = R); in capitals the same with bf16 operands as a bf16
# step has them (F, G, I, B; V the weight gradient on bf16 rows,
# W on fp32 rows it rounds itself); s the softmax cross-entropy with its
# gradient (COUT classes) and c the bias sums (COUT columns), in G
# elements/s (T rows × COUT). T defaults to 384 (the
# training step's time tile), D (dilation) to 64. Example, the residual
# weight gradient at R16:
#
#   Benchmarks/ab/kernel.sh 6 old/Sources/CPBTWaveKernels Sources/CPBTWaveKernels w 16 16 1
#
# How the README's "a C harness calling the kernel alone" figures were made.
set -euo pipefail
if [ $# -lt 7 ]; then sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
rounds=$1; a=$2; b=$3; shift 3
op=$1; cin=$2; cout=$3; k=$4; t=${5:-384}; d=${6:-64}; nodb=${7:-}
command -v clang > /dev/null || { echo "kernel.sh: needs clang" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# shellcheck source=ckernels.sh
. "$here/ckernels.sh"
build() {  # $1 source folder, $2 output binary
  ckernels_objects "$1" "$tmp" "$2_"
  clang -O2 -I"$1/include" "$here/kernel.c" "${objects[@]}" -o "$tmp/$2" -lm
}
build "$a" A; build "$b" B
best_a=0; best_b=0
for ((r = 0; r < rounds; r++)); do
  la=$("$tmp/A" "$op" "$cin" "$cout" "$k" "$t" "$d" $nodb); lb=$("$tmp/B" "$op" "$cin" "$cout" "$k" "$t" "$d" $nodb)
  echo "round $((r + 1)): A $la | B $lb"
  best_a=$(awk -v x="$best_a" -v l="$la" 'BEGIN { split(l, f, ": "); v = f[2] + 0; print (v > x ? v : x) }')
  best_b=$(awk -v x="$best_b" -v l="$lb" 'BEGIN { split(l, f, ": "); v = f[2] + 0; print (v > x ? v : x) }')
done
unit=GFLOP/s; case $op in s|c) unit="G elements/s";; esac
echo "best: A $best_a, B $best_b $unit; B/A $(awk -v a="$best_a" -v b="$best_b" 'BEGIN { printf "%.3f", b / a }')"
