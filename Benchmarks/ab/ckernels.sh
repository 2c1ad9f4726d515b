# Sourced by kernel.sh, layout.sh and cmstep.sh: ckernels_objects SRC DIR
# PREFIX compiles each C file of the CPBTWaveKernels source folder SRC with clang -O2
# into DIR/PREFIX<name>.o and sets the array `objects` to their paths.
ckernels_objects() {
  objects=()
  local f o
  for f in "$1"/*.c; do
    o="$2/$3$(basename "$f" .c).o"
    clang -O2 -Wno-pass-failed -c -I"$1/include" -I"$1" "$f" -o "$o"
    objects+=("$o")
  done
}

# prototype_build SRC FILE OUT [FLAGS...]: builds a channel-major prototype
# (channel_major.c, or cm_step.c which includes it) against the objects of
# the last ckernels_objects call. The prototype compiles the variant's own
# file into itself (its unit and vector helpers), so that object is left out.
# AVX-512 (F, BW, DQ, VL) where the CPU has it, else AVX2; LAYOUT_ISA=avx2
# forces AVX2. Sets `isa` to the variant built.
prototype_build() {
  local src=$1 file=$2 out=$3; shift 3
  local flags=(-mavx2 -mfma) others=() o
  isa=avx2
  if [ "${LAYOUT_ISA:-}" != avx2 ] && grep -q avx512f /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo \
     && grep -q avx512dq /proc/cpuinfo && grep -q avx512vl /proc/cpuinfo; then
    isa=avx512; flags=(-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -DCM_AVX512)
  fi
  for o in "${objects[@]}"; do [ "$(basename "$o")" = "kernels_$isa.o" ] || others+=("$o"); done
  clang -O2 -Wno-pass-failed "${flags[@]}" "$@" -I"$src/include" -I"$src" -I"$(dirname "$file")" "$file" "${others[@]}" -o "$out" -lm
}
