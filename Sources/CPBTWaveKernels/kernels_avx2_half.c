// The AVX2 variant's row tiles again, on 128-bit vectors (4 lanes, VEX
// encoded, with FMA): only the row driver and its epilogues (CK_TILES_ONLY),
// for the last vector of a ragged width when it holds at most 4 channels
// (kernels_avx2.c's HALF_ROWS; see "How an fp32 product is computed" in
// kernels_template.h). On AMD's Zen 1, whose FMA units are 128 bits wide, a
// 256-bit vector with 4 idle lanes costs what a full one does. On cores with
// 256-bit units a 128-bit FMA costs what a 256-bit one does, so the tail
// should cost about what it did there (not measured).
//
// The same operations, lane by lane, as kernels_avx2.c's: the results are
// bit for bit those of the 256-bit tiles (a test compares them).
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "CPBTWaveKernels.h"

#define CK_TILES_ONLY 1
#define FN(name) name##_avx2h
#define TARGET __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define VL 4
#define NV_MAX 2
#define MR_MAX 8
#define MR_OF(nv) ((nv) == 2 ? 6 : 8)
#define MR_EMU_OF(nv) ((nv) == 2 ? 3 : 8)
#define UNIT_DIVIDES 1  // as kernels_avx2.c, so that a channel's unit is the same in both

// The vocabulary of kernels_template.h, as far as the row tiles use it.
typedef __m128 vec;
typedef __m128i vmask;

static ALWAYS_INLINE TARGET vec vzero(void) { return _mm_setzero_ps(); }
static ALWAYS_INLINE TARGET vec vset1(float x) { return _mm_set1_ps(x); }
static ALWAYS_INLINE TARGET vec vload(const float *p) { return _mm_loadu_ps(p); }
static ALWAYS_INLINE TARGET void vstore(float *p, vec v) { _mm_storeu_ps(p, v); }
static ALWAYS_INLINE TARGET vmask vmask_first(int n) { return _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3)); }
// The first n (0 < n < 4) lanes by plain loads and stores, as kernels_avx2.c does.
#define VPART 1
#include "kernels_avx2_parts.h"
static ALWAYS_INLINE TARGET vec vload_part(const float *p, int n) { return load_part4(p, n); }
static ALWAYS_INLINE TARGET void vstore_part(float *p, vec x, int n) { store_part4(p, x, n); }
static ALWAYS_INLINE TARGET vec vblend_mask(vec fill, vec v, vmask m) { return _mm_blendv_ps(fill, v, _mm_castsi128_ps(m)); }
static ALWAYS_INLINE TARGET vec vadd(vec a, vec b) { return _mm_add_ps(a, b); }
static ALWAYS_INLINE TARGET vec vsub(vec a, vec b) { return _mm_sub_ps(a, b); }
static ALWAYS_INLINE TARGET vec vmul(vec a, vec b) { return _mm_mul_ps(a, b); }
static ALWAYS_INLINE TARGET vec vdiv(vec a, vec b) { return _mm_div_ps(a, b); }
static ALWAYS_INLINE TARGET vec vfma(vec a, vec b, vec c) { return _mm_fmadd_ps(a, b, c); }
static ALWAYS_INLINE TARGET vec vfnmadd(vec a, vec b, vec c) { return _mm_fnmadd_ps(a, b, c); }
static ALWAYS_INLINE TARGET vec vrelu(vec x) { return _mm_max_ps(_mm_setzero_ps(), x); }
static ALWAYS_INLINE TARGET vec vmax_nan(vec lo, vec x) { return _mm_max_ps(lo, x); }
static ALWAYS_INLINE TARGET vec vmin_nan(vec hi, vec x) { return _mm_min_ps(hi, x); }
static ALWAYS_INLINE TARGET vec vpositive(vec y, vec v) { return _mm_and_ps(v, _mm_cmp_ps(y, _mm_setzero_ps(), _CMP_NLE_UQ)); }
static ALWAYS_INLINE TARGET vec vrecip(vec x) {
    vec r = _mm_rcp_ps(x);
    return _mm_mul_ps(r, _mm_fnmadd_ps(x, r, _mm_set1_ps(2.0f)));
}
static ALWAYS_INLINE TARGET vec vround(vec x) { return _mm_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static ALWAYS_INLINE TARGET vec vscale2(vec p, vec n) {
    __m128i e = _mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23);
    return _mm_mul_ps(p, _mm_castsi128_ps(e));
}

// bf16, emulated as in kernels_avx2.c. (The half tails take fp32 operands
// only; these keep the template's bf16 paths compiling.)
#define BF16_NATIVE 0
typedef __m128i pvec;
static ALWAYS_INLINE TARGET pvec pload(const float *p) { return _mm_loadu_si128((const __m128i *)p); }
static ALWAYS_INLINE TARGET pvec pbroadcast(const unsigned short *q) {
    int w; memcpy(&w, q, sizeof w);
    return _mm_set1_epi32(w);
}
static ALWAYS_INLINE TARGET vec vdot2(vec acc, pvec a, pvec b) {
    const __m128i high = _mm_set1_epi32((int)0xffff0000u);
    vec ah = _mm_castsi128_ps(_mm_and_si128(a, high)), bh = _mm_castsi128_ps(_mm_and_si128(b, high));
    vec al = _mm_castsi128_ps(_mm_slli_epi32(a, 16)), bl = _mm_castsi128_ps(_mm_slli_epi32(b, 16));
    return _mm_fmadd_ps(al, bl, _mm_fmadd_ps(ah, bh, acc));
}
static ALWAYS_INLINE TARGET __m128i round_bf16_high(vec x) {
    __m128i b = _mm_castps_si128(x);
    __m128i sub = _mm_cmpeq_epi32(_mm_and_si128(b, _mm_set1_epi32(0x7f800000)), _mm_setzero_si128());
    b = _mm_blendv_epi8(b, _mm_and_si128(b, _mm_set1_epi32((int)0x80000000u)), sub);
    __m128i nan = _mm_castps_si128(_mm_cmp_ps(x, x, _CMP_UNORD_Q));
    __m128i r = _mm_add_epi32(b, _mm_add_epi32(_mm_set1_epi32(0x7fff), _mm_and_si128(_mm_srli_epi32(b, 16), _mm_set1_epi32(1))));
    return _mm_blendv_epi8(r, _mm_or_si128(b, _mm_set1_epi32(0x400000)), nan);
}
static ALWAYS_INLINE TARGET void vstore_bf16(unsigned short *q, vec x, int n) {
    __m128i r = _mm_srli_epi32(round_bf16_high(x), 16);
    __m128i h = _mm_packus_epi32(r, r);
    if (n >= VL) { _mm_storel_epi64((__m128i *)q, h); return; }
    unsigned short t[2 * VL];
    _mm_storeu_si128((__m128i *)t, h);
    for (int i = 0; i < n; i++) q[i] = t[i];
}
static ALWAYS_INLINE TARGET __m128i load_bf16_row(const unsigned short *q, int n) {
    if (!q || n <= 0) return _mm_setzero_si128();
    if (n >= VL) return _mm_loadl_epi64((const __m128i *)q);
    unsigned short t[VL] = { 0 };
    memcpy(t, q, (size_t)n * sizeof *q);
    return _mm_loadl_epi64((const __m128i *)t);
}
static ALWAYS_INLINE TARGET vec vload_bf16(const unsigned short *q, int n) {
    return _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(load_bf16_row(q, n)), 16));
}

#include "kernels_template.h"

// The last vector of C channels (4 lanes here) of the fp32 products: the
// job as the 256-bit tiles' product_rows would have it (kind is a constant in
// each case, so each compiles to its own loops).
TARGET void ck_avx2_half_tail(int kind, const struct ck_tile_job *j, long t0, long t1, int C) {
    const int v = (C + VL - 1) / VL - 1;
    switch (kind) {
    case TILE_PLAIN: FN(product_vectors)(TILE_PLAIN, j, t0, t1, v, v + 1); break;
    case TILE_GATED: FN(product_vectors)(TILE_GATED, j, t0, t1, v, v + 1); break;
    case TILE_GATED_BACKWARD: FN(product_vectors)(TILE_GATED_BACKWARD, j, t0, t1, v, v + 1); break;
    default: __builtin_trap();
    }
}
#endif
