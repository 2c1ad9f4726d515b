// The AVX-512 variant with AVX512_BF16: kernels_avx512.c compiled again,
// its bf16 products on vdpbf16ps and its rounding on vcvtneps2bf16.
#define CK_WITH_BF16 1
#include "kernels_avx512.c"
