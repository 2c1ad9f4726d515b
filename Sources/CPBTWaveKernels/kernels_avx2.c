// The AVX2 + FMA variant: 8-lane vectors, 16 registers. Register tiles:
// 6 rows × 2 vectors (12 accumulators, 2 weight vectors, 1 broadcast) and
// 8 × 1. A ragged width's last vector is loaded and stored in pieces (VPART),
// and computed in 128-bit vectors where it holds at most 4 channels (HALF_ROWS,
// on cores whose FMA units are 128 bits wide), else as dot products where it
// holds 1-4 (DOT_TAILS; at 12 and 20 channels, where flat tiles apply, only
// products with a long inner dimension).
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "CPBTWaveKernels.h"

// kernels_avx512_256.c includes this file with CK_AVX512_AT_256 set: the
// same vocabulary on 32 registers (AVX-512VL), with tiles as wide in vectors
// as the AVX-512 variant's.
#ifdef CK_AVX512_AT_256
#define FN(name) name##_avx512_256
#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define ISA_ENUM CK_AVX512_256
#define ISA_NAME "avx512-256"
#define NV_MAX 4
#define MR_MAX 16
#define MR_OF(nv) ((nv) == 4 ? 6 : (nv) == 3 ? 8 : (nv) == 2 ? 12 : 16)
// Emulated bf16 in 32 registers, as kernels_avx512.c's.
#define MR_EMU_OF(nv) ((nv) == 4 ? 4 : (nv) == 3 ? 6 : (nv) == 2 ? 10 : 16)
#else
#define FN(name) name##_avx2
#define TARGET __attribute__((target("avx2,fma")))
#define ISA_ENUM CK_AVX2
#define ISA_NAME "avx2"
#define NV_MAX 2
#define MR_MAX 8
#define MR_OF(nv) ((nv) == 2 ? 6 : 8)
// Emulated bf16 (see kernels_avx512.c), in 16 registers: 2 × 3 + 4 + 3, 1 × 8 + 2 + 3.
#define MR_EMU_OF(nv) ((nv) == 2 ? 3 : 8)
#endif
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define VL 8
// The gated unit divides (see scaled_tanh): on Zen 2 (C harness, best of 3,
// alternating) the gated forward ran 1.03–1.05× as fast at 16, 24 and 32
// channels, and the quotient is rounded once, not approximated.
#define UNIT_DIVIDES 1
// Ragged last vectors of 5-7 input channels too go the weight gradient's
// swapped way (wg_few): on Zen 2 (T 8192, best of 20, against the tiles
// with the inputs along the lanes) 21 -> 42 K 2 1.16×, 22 -> 44 1.15×,
// 23 -> 46 1.22×, 21 -> 21 K 1 1.15×, 37 -> 74 1.15×, 39 -> 78 1.15×.
#define WG_TAIL_SWAP_MAX 7

typedef __m256 vec;
typedef __m256i vmask;

static ALWAYS_INLINE TARGET vec vzero(void) { return _mm256_setzero_ps(); }
static ALWAYS_INLINE TARGET vec vset1(float x) { return _mm256_set1_ps(x); }
static ALWAYS_INLINE TARGET vec vload(const float *p) { return _mm256_loadu_ps(p); }
static ALWAYS_INLINE TARGET void vstore(float *p, vec v) { _mm256_storeu_ps(p, v); }
static ALWAYS_INLINE TARGET vmask vmask_first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static ALWAYS_INLINE TARGET vec vloadm(const float *p, vmask m, vec fill) {
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static ALWAYS_INLINE TARGET void vstorem(float *p, vec v, vmask m) { _mm256_maskstore_ps(p, m, v); }
// The first n (0 < n < 8) lanes from plain loads and stores of 4, 2 and 1
// floats, the rest zero (see kernels_avx2_parts.h).
#define VPART 1
#include "kernels_avx2_parts.h"
static ALWAYS_INLINE TARGET vec vload_part(const float *p, int n) {
    if (n >= 4) return _mm256_set_m128(load_part4(p + 4, n - 4), _mm_loadu_ps(p));
    return _mm256_zextps128_ps256(load_part4(p, n));
}
static ALWAYS_INLINE TARGET void vstore_part(float *p, vec v, int n) {
    __m128 lo = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(p, lo);
        store_part4(p + 4, _mm256_extractf128_ps(v, 1), n - 4);
    } else {
        store_part4(p, lo, n);
    }
}
static ALWAYS_INLINE TARGET vec vblend_mask(vec fill, vec v, vmask m) { return _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(m)); }
static ALWAYS_INLINE TARGET vec vmaskz(vec v, vmask m) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }
static ALWAYS_INLINE TARGET vec vadd(vec a, vec b) { return _mm256_add_ps(a, b); }
static ALWAYS_INLINE TARGET vec vsub(vec a, vec b) { return _mm256_sub_ps(a, b); }
static ALWAYS_INLINE TARGET vec vmul(vec a, vec b) { return _mm256_mul_ps(a, b); }
static ALWAYS_INLINE TARGET vec vdiv(vec a, vec b) { return _mm256_div_ps(a, b); }
static ALWAYS_INLINE TARGET vec vmax(vec a, vec b) { return _mm256_max_ps(a, b); }
static ALWAYS_INLINE TARGET vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
static ALWAYS_INLINE TARGET vec vfnmadd(vec a, vec b, vec c) { return _mm256_fnmadd_ps(a, b, c); }
static ALWAYS_INLINE TARGET vec vsqrt(vec a) { return _mm256_sqrt_ps(a); }
static ALWAYS_INLINE TARGET vec vrelu(vec x) { return _mm256_max_ps(_mm256_setzero_ps(), x); }
static ALWAYS_INLINE TARGET vec vmax_nan(vec lo, vec x) { return _mm256_max_ps(lo, x); }
static ALWAYS_INLINE TARGET vec vmin_nan(vec hi, vec x) { return _mm256_min_ps(hi, x); }
static ALWAYS_INLINE TARGET vec vpositive(vec y, vec v) {
    return _mm256_and_ps(v, _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_NLE_UQ));
}
static ALWAYS_INLINE TARGET float vhsum(vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
static ALWAYS_INLINE TARGET float vhmax(vec v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

// 1/x: the 12-bit estimate and one Newton step (~23 bits).
static ALWAYS_INLINE TARGET vec vrecip(vec x) {
    vec r = _mm256_rcp_ps(x);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(x, r, _mm256_set1_ps(2.0f)));
}

// Nearest integer (as a float), and p·2^n built in the exponent bits (vexp
// keeps n within [-126, 127], so the power is normal).
static ALWAYS_INLINE TARGET vec vround(vec x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static ALWAYS_INLINE TARGET vec vscale2(vec p, vec n) {
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// bf16 words: vdpbf16ps emulated with two FMAs on the halves widened to
// fp32 (exact products, so the same two roundings; see kernels_generic.c).
#define BF16_NATIVE 0
typedef __m256i pvec;
static ALWAYS_INLINE TARGET pvec pload(const float *p) { return _mm256_loadu_si256((const __m256i *)p); }
static ALWAYS_INLINE TARGET pvec pbroadcast(const unsigned short *q) {
    int w; memcpy(&w, q, sizeof w);
    return _mm256_set1_epi32(w);
}
static ALWAYS_INLINE TARGET vec vdot2(vec acc, pvec a, pvec b) {
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    vec ah = _mm256_castsi256_ps(_mm256_and_si256(a, high)), bh = _mm256_castsi256_ps(_mm256_and_si256(b, high));
    vec al = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16)), bl = _mm256_castsi256_ps(_mm256_slli_epi32(b, 16));
    return _mm256_fmadd_ps(al, bl, _mm256_fmadd_ps(ah, bh, acc));  // exact products: one rounding each, as above
}
// ck_bf16_from_float on 8 lanes, in the upper 16 bits of each (the lower
// ones are not cleared): subnormals to signed zero, NaN quieted, else round
// to nearest even on the upper 16 bits.
static ALWAYS_INLINE TARGET __m256i round_bf16_high(vec x) {
    __m256i b = _mm256_castps_si256(x);
    __m256i sub = _mm256_cmpeq_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
    b = _mm256_blendv_epi8(b, _mm256_and_si256(b, _mm256_set1_epi32((int)0x80000000u)), sub);
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    __m256i r = _mm256_add_epi32(b, _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                                                     _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1))));
    return _mm256_blendv_epi8(r, _mm256_or_si256(b, _mm256_set1_epi32(0x400000)), nan);
}
static ALWAYS_INLINE TARGET void vstore_bf16_pairs(unsigned *q, vec lo, vec hi) {
    __m256i w = _mm256_or_si256(_mm256_and_si256(round_bf16_high(hi), _mm256_set1_epi32((int)0xffff0000u)),
                                _mm256_srli_epi32(round_bf16_high(lo), 16));
    _mm256_storeu_si256((__m256i *)q, w);
}
static ALWAYS_INLINE TARGET void vstore_bf16(unsigned short *q, vec x, int n) {
    __m256i r = _mm256_srli_epi32(round_bf16_high(x), 16);
    // Pack to 16 bits (per 128-bit half), then the two halves' low quadwords together.
    __m128i h = _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08));
    if (n >= VL) { _mm_storeu_si128((__m128i *)q, h); return; }
    unsigned short t[VL];
    _mm_storeu_si128((__m128i *)t, h);
    for (int i = 0; i < n; i++) q[i] = t[i];
}

// bf16 rows as they are stored (see kernels_avx512.c): n values (the rest
// zero; a NULL row is all zeros) widened to fp32, or two rows as time pairs.
static ALWAYS_INLINE TARGET __m128i load_bf16_row(const unsigned short *q, int n) {
    if (!q || n <= 0) return _mm_setzero_si128();
    if (n >= VL) return _mm_loadu_si128((const __m128i *)q);
    unsigned short t[VL] = { 0 };
    memcpy(t, q, (size_t)n * sizeof *q);
    return _mm_loadu_si128((const __m128i *)t);
}
static ALWAYS_INLINE TARGET vec vload_bf16(const unsigned short *q, int n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load_bf16_row(q, n)), 16));
}
static ALWAYS_INLINE TARGET void vpair16(unsigned *q, const unsigned short *a, const unsigned short *b, int n) {
    __m128i x = load_bf16_row(a, n), y = load_bf16_row(b, n);
    _mm256_storeu_si256((__m256i *)q, _mm256_set_m128i(_mm_unpackhi_epi16(x, y), _mm_unpacklo_epi16(x, y)));
}

// Flat tiles for ragged widths (see the template), in 16 registers: at most
// 10 accumulators, and the groups innermost. The gated forward takes them at
// 12 and 20 channels (2 rows in 3 or 5 vectors of a and of g instead of 4 or
// 6: fewer FMAs and fewer tanh and σ), where the kernel alone ran 1.17× and
// 1.10× as fast on Zen 1 (Benchmarks/ab/kernel.sh g 12 24 2 384 4,
// g 20 40 2 384 4). The plain products and the gated backward did not gain
// there (0.92–1.02× at 20 and 36 channels): one group of 2 rows holds too
// few rows to reuse each weight vector, and Zen 1 loads one 256-bit vector
// a cycle, as many as it does FMAs. On cores with 256-bit FMA units and two
// loads a cycle (Zen 2: ck_fma_half_width() is 0) they do, at 12 and 20
// channels (Zen 2, best of 2: the forward products f 12 12 1 1.20×,
// f 20 20 1 1.13×, f 40 20 1 1.06×, f 18 18 1 1.12×, the gated backward
// b 40 20 20 1.13×, b 36 18 18 1.09×), but not at 28 and 36 (0.81–0.96×).
// At 18 the dot tails (below) do better still (the input gradient i 18 36 2
// 1.29× the flat tiles, f 36 18 1 1.14×, the others 0.99–1.03×), so 18 is
// left to them.
// The pieces of a vector that straddles two rows are loaded and stored by
// halves (vmaskmovps is slow on Zen 1, see VPART).
#define FLAT_TILES 1
#define FLAT_ACC 10
#define FLAT_NA_MAX 11
#define FLAT_GROUPS_INNER 1
#define FLAT_WIDTHS(X) X(12) X(20)
#define FLAT_KIND_OK(kind) ((kind) == TILE_GATED || !ck_fma_half_width())
static ALWAYS_INLINE TARGET vmask vmask_lanes(int l0, int l1) {
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(l0), i), _mm256_cmpgt_epi32(_mm256_set1_epi32(l1), i));
}
static ALWAYS_INLINE TARGET vec vblend(vmask m, vec a, vec b) { return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(m)); }
// Lanes [a, b) of a half (0 <= a < b <= 4): from p + a into those lanes
// (others zero), and from those lanes to p + a.
static ALWAYS_INLINE TARGET __m128 load_half_lanes(const float *p, int a, int b) {
    __m128i y = _mm_castps_si128(b - a == 4 ? _mm_loadu_ps(p) : load_part4(p + a, b - a));
    switch (a) {
    case 1: return _mm_castsi128_ps(_mm_slli_si128(y, 4));
    case 2: return _mm_castsi128_ps(_mm_slli_si128(y, 8));
    case 3: return _mm_castsi128_ps(_mm_slli_si128(y, 12));
    default: return _mm_castsi128_ps(y);
    }
}
static ALWAYS_INLINE TARGET void store_half_lanes(float *p, __m128 x, int a, int b) {
    __m128i y = _mm_castps_si128(x);
    switch (a) {
    case 1: y = _mm_srli_si128(y, 4); break;
    case 2: y = _mm_srli_si128(y, 8); break;
    case 3: y = _mm_srli_si128(y, 12); break;
    default: break;
    }
    if (b - a == 4) _mm_storeu_ps(p, _mm_castsi128_ps(y)); else store_part4(p + a, _mm_castsi128_ps(y), b - a);
}
static ALWAYS_INLINE TARGET vec vload_lanes_part(const float *p, int l0, int l1) {
    __m128 lo = l0 < 4 ? load_half_lanes(p, l0, (l1 < 4 ? l1 : 4)) : _mm_setzero_ps();
    __m128 hi = l1 > 4 ? load_half_lanes(p + 4, (l0 > 4 ? l0 - 4 : 0), l1 - 4) : _mm_setzero_ps();
    return _mm256_set_m128(hi, lo);
}
static ALWAYS_INLINE TARGET void vstore_lanes_part(float *p, vec x, int l0, int l1) {
    if (l0 < 4) store_half_lanes(p, _mm256_castps256_ps128(x), l0, (l1 < 4 ? l1 : 4));
    if (l1 > 4) store_half_lanes(p + 4, _mm256_extractf128_ps(x, 1), (l0 > 4 ? l0 - 4 : 0), l1 - 4);
}

// Dot tails (see the template): a ragged width's last 1-4 channels as dot
// products, the 8 rows' accumulators reduced by a tree of horizontal adds.
// At 3 (19) 1.02–1.2× the row tiles on Zen 2, and with the columns together
// (Zen 2, T = 384, best of 3) `f 19 19 1` 38.8 → 45.4 GFLOP/s, `b 38 19 19`
// 49.5 → 60.4, `g 19 38 2` 40.9 → 43.3 against one column at a time. At 4
// (Zen 2, C harness, T 384, best of 3, against the row tiles): `i 36 72 2`
// 81.6 → 93.2, `i 36 256 1` 79.3 → 90.4, `b 72 36 36` 62.6 → 70.8, `f 360
// 36 1` 69.4 → 76.6, `f 36 36 1` 59.4 → 63.3, `f 52 52 1` 68.8 → 72.3, `g
// 36 72 2` 62.2 → 63.2; at 12 and 20, where flat tiles apply, see
// DOT_BEFORE_FLAT.
#define DOT_TAILS 1
#define DOT_TAIL_MAX 4
// A product with a dot tail and an inner dimension of at least this many
// channels takes it rather than the flat tiles (see flat_rows): against
// flat tiles at 20 outputs, `i 20 40 2` 68.5 → 80.1, `i 20 256 1` 64.2 →
// 86.8, `f 400 20 1` 66.0 → 84.0, `f 60 20 1` 61.3 → 70.2, `b 40 20 20`
// 57.9 → 60.9, `f 40 20 1` 57.8 → 61.5, `i 12 24 2` 58.4 → 66.5; `i 20 20
// 2` (40) 64.4 and 64.2; `f 20 20 1` 48.4 → 43.5 and `f 12 12 1` 36.3 →
// 31.2 (the flat tiles' gain) stay flat, as does the gated forward (`g 20
// 40 2` 47.9 → 44.3).
#define DOT_BEFORE_FLAT 40
#define VREDUCE_ROWS 1
static ALWAYS_INLINE TARGET vec vreduce_rows(const vec *a) {
    __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    // u0: rows 0-3's sums of lanes 0-3, then of lanes 4-7; u1 the same for rows 4-7.
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}
// The same tree a group of G rows at a time (G = 1, 2, 4): each group leaves
// one vector, and vreduce_parts finishes the 8 rows from the 8 / G of them,
// so that every row's sum is the one vreduce_rows gives.
#define VREDUCE_GROUPS 1
static ALWAYS_INLINE TARGET vec vreduce_group(const vec *a, int G) {
    if (G == 4) return _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    if (G == 2) return _mm256_hadd_ps(a[0], a[1]);
    return a[0];
}
static ALWAYS_INLINE TARGET vec vreduce_parts(const vec *p, int G) {
    if (G == 1) return vreduce_rows(p);
    __m256 u0 = G == 4 ? p[0] : _mm256_hadd_ps(p[0], p[1]), u1 = G == 4 ? p[1] : _mm256_hadd_ps(p[2], p[3]);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// n <= 4 columns of 8 rows (lane r: row r) to and from the first n floats of
// the rows at base + r·ld, r < m: a 4 × 4 transpose in each 128-bit half, then
// a row's floats in at most two stores (or loads) rather than one a value.
#define VCOLUMNS 1
static ALWAYS_INLINE TARGET void vstore_columns(float *base, long ld, const vec *c, int n, int m) {
    const __m256 z = _mm256_setzero_ps(), c1 = n > 1 ? c[1] : z, c2 = n > 2 ? c[2] : z, c3 = n > 3 ? c[3] : z;
    const __m256 t0 = _mm256_unpacklo_ps(c[0], c1), t1 = _mm256_unpackhi_ps(c[0], c1);
    const __m256 t2 = _mm256_unpacklo_ps(c2, c3), t3 = _mm256_unpackhi_ps(c2, c3);
    const __m256 r[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xee),
                         _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xee)};
    for (int i = 0; i < 8; i++) {
        if (i >= m) break;
        const __m128 x = i < 4 ? _mm256_castps256_ps128(r[i]) : _mm256_extractf128_ps(r[i - 4], 1);
        if (n == 4) _mm_storeu_ps(base + i * ld, x); else store_part4(base + i * ld, x, n);
    }
}
static ALWAYS_INLINE TARGET void vload_columns(vec *c, const float *base, long ld, int n, int m) {
    __m256 r[4];
    for (int i = 0; i < 4; i++) {
        const __m128 lo = i < m ? (n == 4 ? _mm_loadu_ps(base + i * ld) : load_part4(base + i * ld, n)) : _mm_setzero_ps();
        const __m128 hi = i + 4 < m ? (n == 4 ? _mm_loadu_ps(base + (i + 4) * ld) : load_part4(base + (i + 4) * ld, n))
                                    : _mm_setzero_ps();
        r[i] = _mm256_set_m128(hi, lo);
    }
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    c[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    if (n > 1) c[1] = _mm256_shuffle_ps(t0, t2, 0xee);
    if (n > 2) c[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    if (n > 3) c[3] = _mm256_shuffle_ps(t1, t3, 0xee);
}

#ifdef CK_AVX512_AT_256
// Dot tails wherever the whole vectors before them lie, as on AVX-512 (a
// chunk of 4 vectors is 32 channels, so at 17–23 the two whole vectors are
// never one).
#define TAILS_ANY_CHUNK 1
#else
// A last vector of at most 4 channels in 128-bit vectors (kernels_avx2_half.c).
struct ck_tile_job;
void ck_avx2_half_tail(int kind, const struct ck_tile_job *j, long t0, long t1, int C);
#define HALF_ROWS ck_avx2_half_tail
#endif

#include "kernels_template.h"
#endif
