# Sourced by kernel.sh and layout.sh: ckernels_objects SRC DIR PREFIX compiles
# each C file of the CKernels source folder SRC with clang -O2 into
# DIR/PREFIX<name>.o and sets the array `objects` to their paths.
ckernels_objects() {
  objects=()
  local f o
  for f in "$1"/*.c; do
    o="$2/$3$(basename "$f" .c).o"
    clang -O2 -Wno-pass-failed -c -I"$1/include" -I"$1" "$f" -o "$o"
    objects+=("$o")
  done
}
