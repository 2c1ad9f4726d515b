// The AVX-512 variant at 256 bits (avx512-256): the AVX2 variant's
// vocabulary and kernels (kernels_avx2.c, included with CK_AVX512_AT_256),
// compiled with AVX-512VL so that the tiles have 32 registers, as wide in
// vectors as the AVX-512 variant's (6 rows × 4 vectors of 8 lanes, 8 × 3,
// 12 × 2, 16 × 1). On cores whose FMA units are half as wide as AVX-512's
// vectors (AMD's Zen 4 runs each 512-bit FMA as two 256-bit halves) a
// 256-bit FMA costs half a 512-bit one, so a width that fills 8-lane vectors
// better than 16-lane ones runs faster here: 21 channels fill 21 of 24
// lanes rather than 21 of 32. On those cores the avx512 variant hands such
// products to these kernels (ck_narrow_tiles in dispatch.c);
// PBTWAVE_ISA=avx512-256 runs every kernel here.
#define CK_AVX512_AT_256 1
#include "kernels_avx2.c"
