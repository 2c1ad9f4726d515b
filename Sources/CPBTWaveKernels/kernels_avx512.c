// The AVX-512 variant (F, BW, DQ, VL): 16-lane vectors, 32 registers, lane
// masks for ragged channel counts. Register tiles: 6 rows × 4 vectors,
// 8 × 3, 12 × 2, 16 × 1 (24–26 accumulators, plus the loaded weights and one
// broadcast: at most 30 of the 32 registers).
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "CPBTWaveKernels.h"

// kernels_avx512bf16.c includes this file with CK_WITH_BF16 set: the same
// kernels, whose bf16 products then run on vdpbf16ps.
#ifdef CK_WITH_BF16
#define FN(name) name##_avx512bf16
#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")))
#define ISA_ENUM CK_AVX512_BF16
#define ISA_NAME "avx512bf16"
#define BF16_NATIVE 1
#else
#define FN(name) name##_avx512
#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define ISA_ENUM CK_AVX512
#define ISA_NAME "avx512"
#define BF16_NATIVE 0
#endif
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define VL 16
#define NV_MAX 4
#define MR_MAX 16
#define MR_OF(nv) ((nv) == 4 ? 6 : (nv) == 3 ? 8 : (nv) == 2 ? 12 : 16)
// Emulated bf16: NV accumulators a row, 2·NV unpacked weight vectors, the row's
// two halves and the mask: 4 × 4 + 8 + 3, 3 × 6 + 6 + 3, 2 × 10 + 4 + 3 of 32.
#define MR_EMU_OF(nv) ((nv) == 4 ? 4 : (nv) == 3 ? 6 : (nv) == 2 ? 10 : 16)

typedef __m512 vec;
typedef __mmask16 vmask;

static ALWAYS_INLINE TARGET vec vzero(void) { return _mm512_setzero_ps(); }
static ALWAYS_INLINE TARGET vec vset1(float x) { return _mm512_set1_ps(x); }
static ALWAYS_INLINE TARGET vec vload(const float *p) { return _mm512_loadu_ps(p); }
static ALWAYS_INLINE TARGET void vstore(float *p, vec v) { _mm512_storeu_ps(p, v); }
static ALWAYS_INLINE TARGET vmask vmask_first(int n) { return (vmask)((1u << n) - 1u); }
static ALWAYS_INLINE TARGET vec vloadm(const float *p, vmask m, vec fill) { return _mm512_mask_loadu_ps(fill, m, p); }
static ALWAYS_INLINE TARGET void vstorem(float *p, vec v, vmask m) { _mm512_mask_storeu_ps(p, m, v); }
static ALWAYS_INLINE TARGET vec vmaskz(vec v, vmask m) { return _mm512_maskz_mov_ps(m, v); }
static ALWAYS_INLINE TARGET vec vadd(vec a, vec b) { return _mm512_add_ps(a, b); }
static ALWAYS_INLINE TARGET vec vsub(vec a, vec b) { return _mm512_sub_ps(a, b); }
static ALWAYS_INLINE TARGET vec vmul(vec a, vec b) { return _mm512_mul_ps(a, b); }
static ALWAYS_INLINE TARGET vec vdiv(vec a, vec b) { return _mm512_div_ps(a, b); }
static ALWAYS_INLINE TARGET vec vmax(vec a, vec b) { return _mm512_max_ps(a, b); }
static ALWAYS_INLINE TARGET vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
static ALWAYS_INLINE TARGET vec vfnmadd(vec a, vec b, vec c) { return _mm512_fnmadd_ps(a, b, c); }
static ALWAYS_INLINE TARGET vec vsqrt(vec a) { return _mm512_sqrt_ps(a); }
// max(0, x) returns x when x is NaN (the second operand), so NaN survives.
static ALWAYS_INLINE TARGET vec vrelu(vec x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }
static ALWAYS_INLINE TARGET vec vmax_nan(vec lo, vec x) { return _mm512_max_ps(lo, x); }
static ALWAYS_INLINE TARGET vec vmin_nan(vec hi, vec x) { return _mm512_min_ps(hi, x); }
static ALWAYS_INLINE TARGET vec vpositive(vec y, vec v) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
}
static ALWAYS_INLINE TARGET float vhsum(vec v) { return _mm512_reduce_add_ps(v); }
static ALWAYS_INLINE TARGET float vhmax(vec v) { return _mm512_reduce_max_ps(v); }

// 1/x: the 14-bit estimate and one Newton step (~1 ulp), far cheaper than a division.
static ALWAYS_INLINE TARGET vec vrecip(vec x) {
    vec r = _mm512_rcp14_ps(x);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
}

// Nearest integer (as a float), and p·2^n exactly (vscalefps handles any n).
static ALWAYS_INLINE TARGET vec vround(vec x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static ALWAYS_INLINE TARGET vec vscale2(vec p, vec n) { return _mm512_scalef_ps(p, n); }

// bf16 words: vdpbf16ps itself, or its emulation in fp32 (exact products,
// the same two roundings in the same order; see kernels_generic.c).
typedef __m512i pvec;
static ALWAYS_INLINE TARGET pvec pload(const float *p) { return _mm512_loadu_si512(p); }
static ALWAYS_INLINE TARGET pvec pbroadcast(const unsigned short *q) {
    int w; memcpy(&w, q, sizeof w);
    return _mm512_set1_epi32(w);
}
#if BF16_NATIVE
static ALWAYS_INLINE TARGET vec vdot2(vec acc, pvec a, pvec b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}
static ALWAYS_INLINE TARGET void vstore_bf16(unsigned short *q, vec x, int n) {
    __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
    if (n >= VL) _mm256_storeu_si256((__m256i *)q, h); else _mm256_mask_storeu_epi16(q, (__mmask16)((1u << n) - 1u), h);
}
// The same for all VL lanes at a 32-byte boundary, past the caches (a
// non-temporal store): for rows read back only much later. vstream_fence()
// orders such stores before the ones after it (at the end of a kernel).
#define VSTREAM_BF16 1
static ALWAYS_INLINE TARGET void vstream_bf16(unsigned short *q, vec x) {
    _mm256_stream_si256((__m256i *)q, (__m256i)_mm512_cvtneps_pbh(x));
}
static ALWAYS_INLINE TARGET void vstream_fence(void) { _mm_sfence(); }
// Both vectors rounded in one instruction (lo's 16 values, then hi's), then
// interleaved: word i = (lo[i], hi[i]).
static ALWAYS_INLINE TARGET void vstore_bf16_pairs(unsigned *q, vec lo, vec hi) {
    static const unsigned short interleave[32] = { 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                   8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31 };
    __m512i w = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    _mm512_storeu_si512(q, _mm512_permutexvar_epi16(_mm512_loadu_si512(interleave), w));
}
#else
// Two FMAs on the halves widened to fp32: each product of two bf16 is exact,
// so an FMA rounds once, as the instruction's addition does.
static ALWAYS_INLINE TARGET vec vdot2(vec acc, pvec a, pvec b) {
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    vec ah = _mm512_castsi512_ps(_mm512_and_si512(a, high)), bh = _mm512_castsi512_ps(_mm512_and_si512(b, high));
    vec al = _mm512_castsi512_ps(_mm512_slli_epi32(a, 16)), bl = _mm512_castsi512_ps(_mm512_slli_epi32(b, 16));
    return _mm512_fmadd_ps(al, bl, _mm512_fmadd_ps(ah, bh, acc));
}
// ck_bf16_from_float on 16 lanes, in the upper 16 bits of each (the lower
// ones are not cleared): subnormals to signed zero, NaN quieted, else round
// to nearest even on the upper 16 bits.
static ALWAYS_INLINE TARGET __m512i round_bf16_high(vec x) {
    __m512i b = _mm512_castps_si512(x);
    __mmask16 sub = _mm512_testn_epi32_mask(b, _mm512_set1_epi32(0x7f800000));
    b = _mm512_mask_and_epi32(b, sub, b, _mm512_set1_epi32((int)0x80000000u));
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                     _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1))));
    return _mm512_mask_or_epi32(r, nan, b, _mm512_set1_epi32(0x400000));
}
static ALWAYS_INLINE TARGET void vstore_bf16(unsigned short *q, vec x, int n) {
    __m256i h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(round_bf16_high(x), 16));
    if (n >= VL) _mm256_storeu_si256((__m256i *)q, h); else _mm256_mask_storeu_epi16(q, (__mmask16)((1u << n) - 1u), h);
}
static ALWAYS_INLINE TARGET void vstore_bf16_pairs(unsigned *q, vec lo, vec hi) {
    __m512i w = _mm512_or_si512(_mm512_and_si512(round_bf16_high(hi), _mm512_set1_epi32((int)0xffff0000u)),
                                _mm512_srli_epi32(round_bf16_high(lo), 16));
    _mm512_storeu_si512(q, w);
}
#endif

// bf16 rows as they are stored (16-bit values, channel after channel): n
// of them (the rest zero; a NULL row is all zeros) widened to fp32, or two
// rows interleaved into words of a time pair: word i = (a[i], b[i]).
static ALWAYS_INLINE TARGET __m256i load_bf16_row(const unsigned short *q, int n) {
    if (!q || n <= 0) return _mm256_setzero_si256();
    return n >= VL ? _mm256_loadu_si256((const __m256i *)q) : _mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1u), q);
}
static ALWAYS_INLINE TARGET vec vload_bf16(const unsigned short *q, int n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load_bf16_row(q, n)), 16));
}
static ALWAYS_INLINE TARGET void vpair16(unsigned *q, const unsigned short *a, const unsigned short *b, int n) {
    static const unsigned short interleave[32] = { 0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                                   8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47 };
    _mm512_storeu_si512(q, _mm512_permutex2var_epi16(_mm512_zextsi256_si512(load_bf16_row(a, n)), _mm512_loadu_si512(interleave),
                                                     _mm512_zextsi256_si512(load_bf16_row(b, n))));
}

// Two vectors of words at once (n ≤ 2·VL values of each row): two 512-bit
// loads instead of four 256-bit ones; the small weight gradients on bf16
// rows ran 7 % faster alone (Benchmarks/ab/kernel.sh V 32 64 2, V 32 32 1).
#define VPAIR16X2 1
static ALWAYS_INLINE TARGET void vpair16x2(unsigned *q, const unsigned short *a, const unsigned short *b, int n) {
    static const unsigned short lo[32] = { 0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                           8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47 };
    static const unsigned short hi[32] = { 16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
                                           24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63 };
    const __mmask32 m = n >= 2 * VL ? 0xffffffffu : (__mmask32)((1u << n) - 1u);
    __m512i x = a ? _mm512_maskz_loadu_epi16(m, a) : _mm512_setzero_si512(), y = b ? _mm512_maskz_loadu_epi16(m, b) : _mm512_setzero_si512();
    _mm512_storeu_si512(q, _mm512_permutex2var_epi16(x, _mm512_loadu_si512(lo), y));
    _mm512_storeu_si512(q + VL, _mm512_permutex2var_epi16(x, _mm512_loadu_si512(hi), y));
}

// Flat tiles for ragged widths (see the template): lanes l0 <= l < l1.
#define FLAT_TILES 1
static ALWAYS_INLINE TARGET vmask vmask_lanes(int l0, int l1) { return (vmask)(((1u << l1) - 1u) & ~((1u << l0) - 1u)); }
// b in the lanes of m, a elsewhere: one vblendmps (as asm: the compiler
// otherwise turns a blend of broadcasts into masked broadcasts from memory or
// permutes of scalar loads, each slower on Zen 5 than the FMAs it saves;
// Benchmarks/micro/flat-lanes.c).
static ALWAYS_INLINE TARGET vec vblend(vmask m, vec a, vec b) {
    __asm__("vblendmps %2, %0, %0 %{%1%}" : "+v"(a) : "Yk"(m), "v"(b));
    return a;
}

// Dot tails (see the template): a ragged width's last 1-4 channels as dot
// products, wherever the whole vectors before them lie (TAILS_ANY_CHUNK; at
// 17 = 16 + 1 the row tiles' second vector had one busy lane of 16), and the
// weight gradient's ragged input tail the swapped way likewise. The 16 rows'
// accumulators reduce in a tree of 30 shuffles and 15 additions.
#define DOT_TAILS 1
#define DOT_TAIL_MAX 4
#define DOT_REGS 30
#define TAILS_ANY_CHUNK 1
// Products with an inner dimension of at least 40 take the dot tail rather
// than the flat tiles (as on AVX2): the step at R20 +1.8 %, R36 +2.9 %, R52
// +0.8 % (two pairs each, the previous binary in turn; R24, no dot tail, +0.7 %).
#define DOT_BEFORE_FLAT 40
#define VREDUCE_ROWS 1
static ALWAYS_INLINE TARGET vec vreduce_rows(const vec *a) {
    // b[i]: lanes 0-7 partial sums of row i, lanes 8-15 of row i + 8.
    vec b[8], c[4], d[2];
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[i], a[i + 8], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(a[i], a[i + 8], _MM_SHUFFLE(3, 2, 3, 2)));
    // c[i] (i < 4): quarter k holds 4 partial sums of row i + 4k.
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int i = 0; i < 4; i++)
        c[i] = _mm512_add_ps(_mm512_permutex2var_ps(b[i], lo, b[i + 4]), _mm512_permutex2var_ps(b[i], hi, b[i + 4]));
    // d[0]: quarter k lanes 0-1 row 4k, 2-3 row 4k + 1; d[1] rows 4k + 2, 4k + 3.
    for (int i = 0; i < 2; i++)
        d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

#include "kernels_template.h"
#endif
