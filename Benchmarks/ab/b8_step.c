// A prototype, not PBTWave's model: a third layout for the activations,
// blocks of 8 positions (a block holds all C channels of 8 consecutive
// positions, channel by channel: (c, t) at (t / 8)·bs + 8c + t % 8). A
// vector is 2 channels × 8 positions, so every even width fills every lane
// (an odd one leaves half of one vector a block), while each product keeps
// the time-major kernels' register tile: an input's 8 positions broadcast to
// both halves of a vector by one vbroadcastf32x8 (a load), times weight
// vectors holding two output channels' weights 8 times each (so the packed
// weights are 8 times the size: 131 KB a layer at compact). A tap's shift
// that is not a multiple of 8 costs one vpermt2ps per input and block.
//
//   b8_step R S H [T] [ROUNDS] [LAYERS] [BACKWARD_TILE]
// runs cm_step.c's whole fp32 training step (the same passes, weights,
// input and order; without the embedding, the input convolution and Adam)
// in this layout, and must print cm_step's loss and gradient digest (to
// rounding) for the same arguments; an odd gate width D keeps D + 1
// channels a half in the gate and dpre blocks (the phantom's weights 0).
//   b8_step f|g|w|b CIN COUT K T D [check]
// times one product alone with its operands in cache (channel_major.c's
// arguments: layout.sh runs it beside kernel.c and channel_major.c), or
// with `check` compares one call with plain loops in double.
// AVX-512 (F, DQ, VL); built by Benchmarks/ab/cmstep.sh and layout.sh
// against Sources/CPBTWaveKernels, whose AVX-512 file gives the vector helpers and
// the gated unit. What it measured: Benchmarks/HISTORY.md (the sixth
// session on the Intel host).
#include "kernels_avx512.c"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mock_step.h"

#define BB 8
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
// Floats a block of C channels: a multiple of 16 (blocks on 64-byte lines), an odd number of
// half lines beyond 8C so that blocks 4 KiB apart do not share L1 sets, and room for the
// phantom half of an odd width's last vector.
static long bstride(int C) { return ((long)C * BB + 31) / 32 * 32 + 16; }

typedef struct { int r; long q; __m512i idx; } shift;
// A shift by s positions: whole blocks q and r positions within (vpermt2ps's index for r != 0).
static shift shift_of(long s) {
    shift h;
    h.q = s >= 0 ? s / BB : -((-s + BB - 1) / BB);
    h.r = (int)(s - h.q * BB);
    int v[16];
    for (int l = 0; l < 16; l++) { int j = l % 8; v[l] = j < h.r ? j + 8 - h.r : 16 + j - h.r; }
    h.idx = _mm512_loadu_si512(v);
    return h;
}
// Channel c's 8 positions from block blk shifted by h, broadcast to both halves.
static ALWAYS_INLINE TARGET __m512 bx(const float *x, long bs, long blk, int c, shift h) {
    const float *p = x + (blk - h.q) * bs + c * BB;
    if (!h.r) return _mm512_broadcast_f32x8(_mm256_loadu_ps(p));
    return _mm512_permutex2var_ps(_mm512_broadcast_f32x8(_mm256_loadu_ps(p - bs)), h.idx, _mm512_broadcast_f32x8(_mm256_loadu_ps(p)));
}

// Packed weights of w[(o·K + k)·Cin + c'] (cm_step's layout): for tap k, input c, output vector v,
// 16 floats: output 2v's weight 8 times, then 2v + 1's. Inputs c of the packed product map to w's c'
// through imap (NULL: the same; -1: a phantom input, weight 0); outputs beyond Cout weigh 0.
static float *pack(const float *w, int Cin, const int *imap, int Cinw, int Cout, int K) {
    const int NVt = (Cout + 1) / 2;
    float *p = aligned_alloc(64, sizeof(float) * 16 * (long)K * Cin * NVt + 64);
    for (int k = 0; k < K; k++) for (int c = 0; c < Cin; c++) for (int v = 0; v < NVt; v++) for (int l = 0; l < 16; l++) {
        const int o = 2 * v + l / 8, cw = imap ? imap[c] : c;
        p[(((long)k * Cin + c) * NVt + v) * 16 + l] = o < Cout && cw >= 0 ? w[((long)o * K + k) * Cinw + cw] : 0.0f;
    }
    return p;
}
static float *pack_bias(const float *b, int Cout) {
    const int NVt = (Cout + 1) / 2;
    float *p = aligned_alloc(64, 64L * NVt);
    for (int v = 0; v < NVt; v++) for (int l = 0; l < 16; l++) { const int o = 2 * v + l / 8; p[v * 16 + l] = o < Cout ? b[o] : 0.0f; }
    return p;
}

// acc[i][j] += Σ_k Σ_c wp(k, c, SV(j)) · x(c, block b0 + i shifted by tap k's s_k = (K - 1 - k)·d).
#define MAC(NRB, NV, SV, x, bsx, wp, Cin, NVt, K, d)                                            \
    for (int k = 0; k < (K); k++) {                                                            \
        const shift h = shift_of((long)((K) - 1 - k) * (d));                                   \
        const float *wk = (wp) + (long)k * (Cin) * (NVt) * 16;                                 \
        for (int c = 0; c < (Cin); c++) {                                                      \
            __m512 xv[8];                                                                      \
            UNROLL for (int i = 0; i < NRB; i++) xv[i] = bx(x, bsx, b0 + i, c, h);             \
            const float *wc = wk + (long)c * (NVt) * 16;                                       \
            UNROLL for (int j = 0; j < NV; j++) {                                              \
                const __m512 w = _mm512_load_ps(wc + (SV(j)) * 16);                            \
                UNROLL for (int i = 0; i < NRB; i++) acc[i][j] = _mm512_fmadd_ps(xv[i], w, acc[i][j]); \
            }                                                                                  \
        }                                                                                      \
    }
#define SV_PLAIN(j) (v0 + (j))
#define NRB 4
// Lanes of an odd width's last vector that hold a channel.
static ALWAYS_INLINE __mmask16 vmask_of(int v, int NVt, int C) { return v == NVt - 1 && (C & 1) ? 0x00FF : 0xFFFF; }

// out = [add +] b + W ∗ x [then ReLU], NRB blocks × NV vectors from vector v0.
static ALWAYS_INLINE TARGET void f_tile(int NV, float *out, long bso, const float *add, long bsa, const float *x, long bsx,
                                        const float *wp, const float *bp, int Cin, int Cout, int K, long d, int relu, long b0, int v0) {
    const int NVt = (Cout + 1) / 2;
    __m512 acc[NRB][6];
    UNROLL for (int i = 0; i < NRB; i++) UNROLL for (int j = 0; j < NV; j++) {
        acc[i][j] = _mm512_load_ps(bp + (v0 + j) * 16);
        if (add) acc[i][j] = _mm512_add_ps(acc[i][j], _mm512_loadu_ps(add + (b0 + i) * bsa + (v0 + j) * 16));
    }
    MAC(NRB, NV, SV_PLAIN, x, bsx, wp, Cin, NVt, K, d)
    UNROLL for (int i = 0; i < NRB; i++) UNROLL for (int j = 0; j < NV; j++) {
        __m512 y = relu ? _mm512_max_ps(acc[i][j], _mm512_setzero_ps()) : acc[i][j];
        _mm512_mask_storeu_ps(out + (b0 + i) * bso + (v0 + j) * 16, vmask_of(v0 + j, NVt, Cout), y);
    }
}
#define F_CASE(NV) static TARGET __attribute__((noinline)) void f_##NV(float *out, long bso, const float *add, long bsa, const float *x, \
    long bsx, const float *wp, const float *bp, int Cin, int Cout, int K, long d, int relu, long b0, int v0) { \
    f_tile(NV, out, bso, add, bsa, x, bsx, wp, bp, Cin, Cout, K, d, relu, b0, v0); }
F_CASE(1) F_CASE(2) F_CASE(3) F_CASE(4) F_CASE(5) F_CASE(6)
typedef void (*f_fn)(float *, long, const float *, long, const float *, long, const float *, const float *, int, int, int, long, int, long, int);
static const f_fn f_fns[7] = { 0, f_1, f_2, f_3, f_4, f_5, f_6 };

// Splits n vectors into chunks of at most maxc, as even as may be.
static int chunks(int n, int maxc, int *sz) {
    const int m = (n + maxc - 1) / maxc;
    for (int i = 0; i < m; i++) sz[i] = n / m + (i < n % m);
    return m;
}
// Positions [0, T) (T a multiple of 32), each weight chunk over all of them (its weights stay in L1).
static void b8_forward(float *out, long bso, const float *add, long bsa, const float *x, long bsx, const float *wp, const float *bp,
                       long T, int Cin, int Cout, int K, long d, int relu) {
    int sz[512];
    const int n = chunks((Cout + 1) / 2, 6, sz);
    for (int ci = 0, v0 = 0; ci < n; v0 += sz[ci++])
        for (long b0 = 0; b0 < T / BB; b0 += NRB) f_fns[sz[ci]](out, bso, add, bsa, x, bsx, wp, bp, Cin, Cout, K, d, relu, b0, v0);
}

// Gated: a = outputs [0, D), g = [D, 2D), packed as two products of NVa = ceil(D/2) vectors each, side by
// side (a's NVa vectors, then g's, for each tap and input); gate blocks hold tanh a's NVa vectors, then σ g's;
// z (D channels) may start inside a block (a layer's channels in the stacked z).
#define SV_GATED(j) ((j) < P ? v0 + (j) : NVa + v0 + (j) - P)
static ALWAYS_INLINE TARGET void g_tile(int P, float *gate, long bsg, float *z, long bsz, const float *x, long bsx,
                                        const float *wp, const float *bp, int Cin, int D, int K, long d, long b0, int v0) {
    const int NVa = (D + 1) / 2;
    __m512 acc[NRB][6];
    UNROLL for (int i = 0; i < NRB; i++) UNROLL for (int j = 0; j < 2 * P; j++) acc[i][j] = _mm512_load_ps(bp + SV_GATED(j) * 16);
    MAC(NRB, 2 * P, SV_GATED, x, bsx, wp, Cin, 2 * NVa, K, d)
    UNROLL for (int i = 0; i < NRB; i++) UNROLL for (int j = 0; j < P; j++) {
        const __m512 ta = v_tanh_avx512(acc[i][j]), sg = v_sigmoid_avx512(acc[i][P + j]);
        // Past the caches: the backward pass reads them long after (regular stores ran the step's
        // gated forward at 62–74 GFLOP/s at compact, these at 84–86).
        _mm512_stream_ps(gate + (b0 + i) * bsg + (v0 + j) * 16, ta);
        _mm512_stream_ps(gate + (b0 + i) * bsg + (NVa + v0 + j) * 16, sg);
        _mm512_mask_storeu_ps(z + (b0 + i) * bsz + (v0 + j) * 16, vmask_of(v0 + j, NVa, D), _mm512_mul_ps(ta, sg));
    }
}
#define G_CASE(P) static TARGET __attribute__((noinline)) void g_##P(float *gate, long bsg, float *z, long bsz, const float *x, long bsx, \
    const float *wp, const float *bp, int Cin, int D, int K, long d, long b0, int v0) { g_tile(P, gate, bsg, z, bsz, x, bsx, wp, bp, Cin, D, K, d, b0, v0); }
G_CASE(1) G_CASE(2) G_CASE(3)
typedef void (*g_fn)(float *, long, float *, long, const float *, long, const float *, const float *, int, int, int, long, long, int);
static const g_fn g_fns[4] = { 0, g_1, g_2, g_3 };
static void b8_gated(float *gate, long bsg, float *z, long bsz, const float *x, long bsx, const float *wp, const float *bp,
                     long T, int Cin, int D, int K, long d) {
    int sz[512];
    const int n = chunks((D + 1) / 2, 3, sz);
    for (int ci = 0, v0 = 0; ci < n; v0 += sz[ci++])
        for (long b0 = 0; b0 < T / BB; b0 += NRB) g_fns[sz[ci]](gate, bsg, z, bsz, x, bsx, wp, bp, Cin, D, K, d, b0, v0);
}

// The gated backward product: dz = Ws·ds (+ Wr·dh), D outputs from S (+ R) inputs, then the unit's
// backward into dpre (blocks of NVa vectors of da, then NVa of dg) from the gate blocks.
static ALWAYS_INLINE TARGET void b_tile(int NV, float *dpre, long bsp, const float *gate, long bsg, const float *ds, long bss, int S,
                                        const float *dh, long bsh, int R, const float *wps, const float *wpr, int D, long b0, int v0) {
    const int NVa = (D + 1) / 2;
    __m512 acc[NRB][6];
    UNROLL for (int i = 0; i < NRB; i++) UNROLL for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
    MAC(NRB, NV, SV_PLAIN, ds, bss, wps, S, NVa, 1, 0)
    if (dh) { MAC(NRB, NV, SV_PLAIN, dh, bsh, wpr, R, NVa, 1, 0) }
    const __m512 one = _mm512_set1_ps(1.0f);
    UNROLL for (int i = 0; i < NRB; i++) UNROLL for (int j = 0; j < NV; j++) {
        const float *gr = gate + (b0 + i) * bsg + (v0 + j) * 16;
        const __m512 ta = _mm512_load_ps(gr), sg = _mm512_load_ps(gr + NVa * 16), dz = acc[i][j];
        float *pr = dpre + (b0 + i) * bsp + (v0 + j) * 16;
        _mm512_store_ps(pr, _mm512_mul_ps(_mm512_mul_ps(dz, sg), _mm512_fnmadd_ps(ta, ta, one)));
        _mm512_store_ps(pr + NVa * 16, _mm512_mul_ps(_mm512_mul_ps(dz, ta), _mm512_mul_ps(sg, _mm512_sub_ps(one, sg))));
    }
}
#define B_CASE(NV) static TARGET __attribute__((noinline)) void b_##NV(float *dpre, long bsp, const float *gate, long bsg, const float *ds, \
    long bss, int S, const float *dh, long bsh, int R, const float *wps, const float *wpr, int D, long b0, int v0) { \
    b_tile(NV, dpre, bsp, gate, bsg, ds, bss, S, dh, bsh, R, wps, wpr, D, b0, v0); }
B_CASE(1) B_CASE(2) B_CASE(3) B_CASE(4) B_CASE(5) B_CASE(6)
typedef void (*b_fn)(float *, long, const float *, long, const float *, long, int, const float *, long, int, const float *, const float *, int, long, int);
static const b_fn b_fns[7] = { 0, b_1, b_2, b_3, b_4, b_5, b_6 };
static void b8_gb(float *dpre, long bsp, const float *gate, long bsg, const float *ds, long bss, int S, const float *dh, long bsh, int R,
                  const float *wps, const float *wpr, long T, int D) {
    int sz[512];
    const int n = chunks((D + 1) / 2, 6, sz);
    for (int ci = 0, v0 = 0; ci < n; v0 += sz[ci++])
        for (long b0 = 0; b0 < T / BB; b0 += NRB) b_fns[sz[ci]](dpre, bsp, gate, bsg, ds, bss, S, dh, bsh, R, wps, wpr, D, b0, v0);
}

// dW[(o·K + k)·Cin + c] += Σ_t g(o, t) · x(c, t − s_k) over positions [0, T) (T a multiple of 8): lanes
// along g's vectors (2 outputs × 8 positions), x broadcast; tile RC inputs × NV vectors of g, swept over
// every block in registers, then a tree of shuffles sums each accumulator's two halves. g's channel ch maps
// to output omap(ch) (NULL: ch; -1: a phantom, skipped).
static ALWAYS_INLINE TARGET void w_tile(int RC, int NV, float *dw, const float *g, long bsg, const float *x, long bsx, long nb,
                                        int Cin, int Cg, const int *omap, int K, int k, shift h, int c0, int v0) {
    __m512 acc[4][6];
    UNROLL for (int i = 0; i < RC; i++) UNROLL for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
    for (long b = 0; b < nb; b++) {
        __m512 xv[4];
        UNROLL for (int i = 0; i < RC; i++) xv[i] = bx(x, bsx, b, c0 + i, h);
        UNROLL for (int j = 0; j < NV; j++) {
            const __m512 gv = _mm512_loadu_ps(g + b * bsg + (v0 + j) * 16);
            UNROLL for (int i = 0; i < RC; i++) acc[i][j] = _mm512_fmadd_ps(xv[i], gv, acc[i][j]);
        }
    }
    __m512 fl[24];
    UNROLL for (int i = 0; i < RC; i++) UNROLL for (int j = 0; j < NV; j++) fl[i * NV + j] = acc[i][j];
    const int n = RC * NV;
    UNROLL for (int g0 = 0; g0 < n; g0 += 8) {
        __m512 a[8], p[4], q[2];
        UNROLL for (int e = 0; e < 8; e++) a[e] = g0 + e < n ? fl[g0 + e] : _mm512_setzero_ps();
        UNROLL for (int e = 0; e < 4; e++) p[e] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * e], a[2 * e + 1]), _mm512_unpackhi_ps(a[2 * e], a[2 * e + 1]));
        UNROLL for (int e = 0; e < 2; e++) q[e] = _mm512_add_ps(_mm512_shuffle_ps(p[2 * e], p[2 * e + 1], 0x44), _mm512_shuffle_ps(p[2 * e], p[2 * e + 1], 0xEE));
        float s[16];
        _mm512_storeu_ps(s, _mm512_add_ps(_mm512_shuffle_f32x4(q[0], q[1], 0x88), _mm512_shuffle_f32x4(q[0], q[1], 0xDD)));
        UNROLL for (int e = 0; e < 8; e++) if (g0 + e < n) {
            const int i = (g0 + e) / NV, j = (g0 + e) % NV;
            UNROLL for (int half = 0; half < 2; half++) {
                const int ch = 2 * (v0 + j) + half, o = ch >= Cg ? -1 : omap ? omap[ch] : ch;
                if (o >= 0) dw[((long)o * K + k) * Cin + c0 + i] += s[(e / 4) * 8 + half * 4 + e % 4];
            }
        }
    }
}
#define W_CASE(RC, NV) static TARGET __attribute__((noinline)) void w_##RC##_##NV(float *dw, const float *g, long bsg, const float *x, \
    long bsx, long nb, int Cin, int Cg, const int *omap, int K, int k, shift h, int c0, int v0) { \
    w_tile(RC, NV, dw, g, bsg, x, bsx, nb, Cin, Cg, omap, K, k, h, c0, v0); }
#define W_CASES(RC) W_CASE(RC, 1) W_CASE(RC, 2) W_CASE(RC, 3) W_CASE(RC, 4) W_CASE(RC, 5) W_CASE(RC, 6)
W_CASES(1) W_CASES(2) W_CASES(3) W_CASES(4)
typedef void (*w_fn)(float *, const float *, long, const float *, long, long, int, int, const int *, int, int, shift, int, int);
#define W_ROW(RC) { 0, w_##RC##_1, w_##RC##_2, w_##RC##_3, w_##RC##_4, w_##RC##_5, w_##RC##_6 }
static const w_fn w_fns[5][7] = { { 0 }, W_ROW(1), W_ROW(2), W_ROW(3), W_ROW(4) };
// The weight gradient of a product with Cg output channels in g (omap as w_tile's) and its bias sums into db.
static void b8_wgrad(float *dw, float *db, const float *g, long bsg, const float *x, long bsx, long T, int Cin, int Cg, const int *omap,
                     int K, long d) {
    int sz[512];
    const int NVt = (Cg + 1) / 2, n = chunks(NVt, 6, sz);
    for (int k = 0; k < K; k++) {
        const shift h = shift_of((long)(K - 1 - k) * d);
        for (int c0 = 0; c0 < Cin; c0 += 4) {
            const int rc = Cin - c0 < 4 ? Cin - c0 : 4;
            for (int ci = 0, v0 = 0; ci < n; v0 += sz[ci++]) w_fns[rc][sz[ci]](dw, g, bsg, x, bsx, T / BB, Cin, Cg, omap, K, k, h, c0, v0);
        }
    }
    if (!db) return;
    for (int v = 0; v < NVt; v++) {
        __m512 a[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
        long b = 0;
        for (; b + 4 <= T / BB; b += 4) UNROLL for (int j = 0; j < 4; j++) a[j] = _mm512_add_ps(a[j], _mm512_loadu_ps(g + (b + j) * bsg + v * 16));
        for (; b < T / BB; b++) a[0] = _mm512_add_ps(a[0], _mm512_loadu_ps(g + b * bsg + v * 16));
        float s[16];
        _mm512_storeu_ps(s, _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
        for (int half = 0; half < 2; half++) {
            const int ch = 2 * v + half, o = ch >= Cg ? -1 : omap ? omap[ch] : ch;
            float t = 0;
            for (int l = 0; l < 8; l++) t += s[half * 8 + l];
            if (o >= 0) db[o] += t;
        }
    }
}

// Softmax cross-entropy over V classes (V even) for the T positions from block 0: dl = (softmax − onehot)·scale;
// returns the summed loss. A block's max and sum run down its vectors (two classes each), then across the halves.
static double b8_softmax(float *dl, long bsd, const float *lg, long bsl, const int *target, long T, int V, float scale) {
    double loss = 0;
    const int NV = V / 2;
    for (long b = 0; b < T / BB; b++) {
        const float *g = lg + b * bsl;
        float *d = dl + b * bsd;
        __m512 m = _mm512_load_ps(g);
        for (int v = 1; v < NV; v++) m = _mm512_max_ps(m, _mm512_load_ps(g + v * 16));
        m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0x4E));
        __m512 s = _mm512_setzero_ps();
        for (int v = 0; v < NV; v++) {
            const __m512 e = vexp(_mm512_sub_ps(_mm512_load_ps(g + v * 16), m));
            _mm512_store_ps(d + v * 16, e);
            s = _mm512_add_ps(s, e);
        }
        s = _mm512_add_ps(s, _mm512_shuffle_f32x4(s, s, 0x4E));
        const __m512 r = _mm512_mul_ps(vrecip(s), _mm512_set1_ps(scale));
        for (int v = 0; v < NV; v++) _mm512_store_ps(d + v * 16, _mm512_mul_ps(_mm512_load_ps(d + v * 16), r));
        float ms[16], ss[16];
        _mm512_storeu_ps(ms, m); _mm512_storeu_ps(ss, s);
        for (int j = 0; j < BB; j++) {
            const int c = target[b * BB + j];
            loss += log(ss[j]) + ms[j] - g[c * BB + j];
            d[c * BB + j] -= scale;
        }
    }
    return loss;
}
// Whole blocks [0, nb) zeroed; dy *= (y > 0) over n floats.
static void blkzero(float *x, long bs, long nb) { memset(x, 0, sizeof(float) * bs * nb); }
static void brelu_back(float *dy, const float *y, long n) {
    for (long i = 0; i < n; i += 16)
        _mm512_store_ps(dy + i, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_load_ps(y + i), _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_load_ps(dy + i)));
}

// A tensor of C channels over the window in blocks of bs floats, with pb blocks of zeros before and after.
typedef struct { float *p; long bs; int C; } tensor;
static tensor tnew(long nb, long pb, int C) {
    const long bs = bstride(C);
    float *p = aligned_alloc(64, sizeof(float) * bs * (nb + 2 * pb));
    memset(p, 0, sizeof(float) * bs * (nb + 2 * pb));
    return (tensor){ p + pb * bs, bs, C };
}
static float *blk(tensor x, long t) { return x.p + t / BB * x.bs; }  // t a multiple of 8


// The value at (c, t) of a blocked tensor.
static float *val(float *p, long bs, int c, long t) { return p + (t >= 0 ? t / BB : -((-t + BB - 1) / BB)) * bs + c * BB + ((t % BB) + BB) % BB; }
static float *tblocks(long nb, long pb, int C, long *bs) {  // nb blocks of C channels, pb of zeros before and after; filled
    *bs = bstride(C);
    float *p = aligned_alloc(64, sizeof(float) * *bs * (nb + 2 * pb));
    memset(p, 0, sizeof(float) * *bs * (nb + 2 * pb));
    p += pb * *bs;
    for (int c = 0; c < C; c++) for (long t = 0; t < nb * BB; t++) *val(p, *bs, c, t) = (float)((c * 131 + t * 7) % 97) * 0.01f - 0.3f;
    return p;
}
// One product alone, operands warm in cache (layout.sh runs it beside kernel.c and channel_major.c, with
// their arguments): f CIN COUT K (out = out + b + W ∗ x), g CIN 2D K (the gated forward), w CIN COUT K
// (the weight gradient, with its bias sums), b S D R (the gated backward product: dz from S + R inputs,
// then the unit's backward). With `check`, one call against plain loops in double: prints the largest
// error and exits 1 above 1e-4. Else the best GFLOP/s of 30 repetitions of about 0.2 GFLOP.
static int kernel(char op, int Cin, int Cout, int K, long T, long d, int check) {
    if (T % 32) { fprintf(stderr, "b8_step: T must be a multiple of 32\n"); return 2; }
    const long nb = T / BB, pb = ((K - 1) * labs(d) + BB - 1) / BB + 1;
    const int D = op == 'g' ? Cout / 2 : Cout, NVa = (D + 1) / 2, Dp = 2 * NVa, Cx = op == 'b' ? Cin + K : Cin;
    long bsx, bso, bsz, bsg;
    float *x = tblocks(nb, pb, Cx, &bsx), *out = tblocks(nb, pb, op == 'b' ? 2 * Dp : Cout, &bso), *z = tblocks(nb, pb, D, &bsz);
    float *gate = tblocks(nb, pb, 2 * Dp, &bsg);
    for (long i = -pb * bsg; i < (nb + pb) * bsg; i++) gate[i] = 0.1f + 0.8f * (float)(((i % 101) + 101) % 101) / 101.0f;
    const int Cw = op == 'b' ? D : Cout, Kw = op == 'b' ? 1 : K, Iw = op == 'b' ? Cin + K : Cin;
    float *w = malloc(sizeof(float) * (long)Cw * Kw * Iw), *bias = malloc(sizeof(float) * (Cw + 64));
    for (long i = 0; i < (long)Cw * Kw * Iw; i++) w[i] = (float)((i * 7) % 13) * 0.01f - 0.06f;
    for (int o = 0; o < Cw + 64; o++) bias[o] = (float)(o % 5) * 0.1f - 0.2f;
    float *wp = 0, *wp2 = 0, *bp;
    if (op == 'g') {
        float *pa = pack(w, Cin, 0, Cin, D, K), *pgg = pack(w + (long)D * K * Cin, Cin, 0, Cin, D, K);
        wp = aligned_alloc(64, sizeof(float) * 16 * (long)K * Cin * 2 * NVa);
        for (long kc = 0; kc < (long)K * Cin; kc++) {
            memcpy(wp + kc * 2 * NVa * 16, pa + kc * NVa * 16, 64L * NVa);
            memcpy(wp + (kc * 2 * NVa + NVa) * 16, pgg + kc * NVa * 16, 64L * NVa);
        }
        bp = aligned_alloc(64, 64L * 2 * NVa);
        float *ba = pack_bias(bias, D), *bg = pack_bias(bias + D, D);
        memcpy(bp, ba, 64L * NVa); memcpy(bp + NVa * 16, bg, 64L * NVa);
    } else if (op == 'b') {
        // w: D rows of the S skip inputs then the R residual ones: two packed products.
        float *ws = malloc(sizeof(float) * D * Cin), *wr = malloc(sizeof(float) * D * K);
        for (int o = 0; o < D; o++) { memcpy(ws + (long)o * Cin, w + (long)o * (Cin + K), 4L * Cin); memcpy(wr + (long)o * K, w + (long)o * (Cin + K) + Cin, 4L * K); }
        wp = pack(ws, Cin, 0, Cin, D, 1); wp2 = pack(wr, K, 0, K, D, 1);
        bp = 0;
    } else {
        wp = pack(w, Cin, 0, Cin, Cout, K); bp = pack_bias(bias, Cout);
    }
    float *dw = calloc((long)Cw * Kw * Iw + 64, 4), *db = calloc(Cw + 64, 4);
    const float *dh = op == 'b' ? x + Cin * BB : 0;  // the residual inputs: the same blocks' last K channels
    if (check) {
        double maxerr = 0;
        if (op == 'f') {
            double *ref = malloc(sizeof(double) * Cout * T);
            for (int o = 0; o < Cout; o++) for (long t = 0; t < T; t++) {
                double s = *val(out, bso, o, t) + bias[o];
                for (int k = 0; k < K; k++) for (int c = 0; c < Cin; c++) s += (double)w[((long)o * K + k) * Cin + c] * *val(x, bsx, c, t - (long)(K - 1 - k) * d);
                ref[o * T + t] = s;
            }
            b8_forward(out, bso, out, bso, x, bsx, wp, bp, T, Cin, Cout, K, d, 0);
            for (int o = 0; o < Cout; o++) for (long t = 0; t < T; t++) maxerr = fmax(maxerr, fabs(ref[o * T + t] - *val(out, bso, o, t)));
        } else if (op == 'g') {
            double *ref = malloc(sizeof(double) * D * T);
            for (int o = 0; o < D; o++) for (long t = 0; t < T; t++) {
                double a = bias[o], g = bias[D + o];
                for (int k = 0; k < K; k++) for (int c = 0; c < Cin; c++) {
                    const double xv = *val(x, bsx, c, t - (long)(K - 1 - k) * d);
                    a += (double)w[((long)o * K + k) * Cin + c] * xv; g += (double)w[((long)(D + o) * K + k) * Cin + c] * xv;
                }
                ref[o * T + t] = tanh(a) / (1 + exp(-g));
            }
            b8_gated(gate, bsg, z, bsz, x, bsx, wp, bp, T, Cin, D, K, d);
            for (int o = 0; o < D; o++) for (long t = 0; t < T; t++) maxerr = fmax(maxerr, fabs(ref[o * T + t] - *val(z, bsz, o, t)));
        } else if (op == 'w') {
            double *ref = calloc((long)Cout * K * Cin, sizeof(double)), *rb = calloc(Cout, sizeof(double));
            for (int o = 0; o < Cout; o++) for (long t = 0; t < T; t++) {
                rb[o] += *val(out, bso, o, t);
                for (int k = 0; k < K; k++) for (int c = 0; c < Cin; c++)
                    ref[((long)o * K + k) * Cin + c] += (double)*val(out, bso, o, t) * *val(x, bsx, c, t - (long)(K - 1 - k) * d);
            }
            b8_wgrad(dw, db, out, bso, x, bsx, T, Cin, Cout, 0, K, d);
            for (long i = 0; i < (long)Cout * K * Cin; i++) maxerr = fmax(maxerr, fabs(ref[i] - dw[i]) / (1 + fabs(ref[i])));
            for (int o = 0; o < Cout; o++) maxerr = fmax(maxerr, fabs(rb[o] - db[o]) / (1 + fabs(rb[o])));
        } else {
            double *ref = malloc(sizeof(double) * 2 * D * T);
            for (int o = 0; o < D; o++) for (long t = 0; t < T; t++) {
                double dz = 0;
                for (int c = 0; c < Cin + K; c++) dz += (double)w[(long)o * (Cin + K) + c] * *val(x, bsx, c, t);
                const double ta = gate[t / BB * bsg + (o / 2) * 16 + (o % 2) * 8 + t % BB], sg = gate[t / BB * bsg + (NVa + o / 2) * 16 + (o % 2) * 8 + t % BB];
                ref[o * T + t] = dz * sg * (1 - ta * ta); ref[(D + o) * T + t] = dz * ta * sg * (1 - sg);
            }
            b8_gb(out, bso, gate, bsg, x, bsx, Cin, dh, bsx, K, wp, wp2, T, D);
            for (int o = 0; o < D; o++) for (long t = 0; t < T; t++) {
                maxerr = fmax(maxerr, fabs(ref[o * T + t] - *val(out, bso, o, t)));
                maxerr = fmax(maxerr, fabs(ref[(D + o) * T + t] - *val(out, bso, Dp + o, t)));
            }
        }
        printf("check %c %d->%d K%d T%ld d%ld: max error %.3g\n", op, Cin, Cout, K, T, d, maxerr);
        return maxerr < 1e-4 ? 0 : 1;
    }
    const double flops = op == 'b' ? 2.0 * (Cin + K) * Cout * T : 2.0 * K * Cin * Cout * T;
    const long reps = (long)(2e8 / flops) + 1;
    double best = 1e9;
    for (int r = 0; r < 30; r++) {
        const double t0 = now();
        for (long i = 0; i < reps; i++) switch (op) {
            case 'f': b8_forward(out, bso, out, bso, x, bsx, wp, bp, T, Cin, Cout, K, d, 0); break;
            case 'g': b8_gated(gate, bsg, z, bsz, x, bsx, wp, bp, T, Cin, D, K, d); break;
            case 'w': b8_wgrad(dw, db, out, bso, x, bsx, T, Cin, Cout, 0, K, d); break;
            default: b8_gb(out, bso, gate, bsg, x, bsx, Cin, dh, bsx, K, wp, wp2, T, D); break;
        }
        const double s = (now() - t0) / reps;
        if (s < best) best = s;
    }
    printf("blocks-of-8 %c %d->%d K%d T%ld d%ld: %.2f GFLOP/s\n", op, Cin, Cout, K, T, d, flops / best / 1e9);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 7 && strlen(argv[1]) == 1 && strchr("fgwb", argv[1][0]))
        return kernel(argv[1][0], atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atol(argv[5]), atol(argv[6]), argc > 7);
    if (argc < 4) {
        fprintf(stderr, "usage: b8_step R S H [T] [ROUNDS] [LAYERS] [BACKWARD_TILE]\n"
                        "       b8_step f|g|w|b CIN COUT K T D [check]\n");
        return 2;
    }
    const int R = atoi(argv[1]), S = atoi(argv[2]), H = atoi(argv[3]), D = R, V = 256;
    const long T = argc > 4 ? atol(argv[4]) : 8192;
    const int rounds = argc > 5 ? atoi(argv[5]) : 10, L = argc > 6 ? atoi(argv[6]) : 20, TT = 384;
    const long TB = argc > 7 ? atol(argv[7]) : 1024;
    if (T % 32 || TB % 32) { fprintf(stderr, "b8_step: T and the backward tile must be multiples of 32\n"); return 2; }
    int dil[4096];
    for (int l = 0; l < L; l++) dil[l] = 1 << (l % 10);
    const long nb = T / BB, pb = 512 / BB + 1;
    // Odd D: the gate and dpre blocks hold Dp = D + 1 channels a half (the phantom's lanes zero).
    const int NVa = (D + 1) / 2, Dp = 2 * NVa;
    int *gmap = malloc(sizeof(int) * 2 * Dp);  // dpre's channel → the gated product's output (-1: phantom)
    for (int c = 0; c < 2 * Dp; c++) gmap[c] = c < Dp ? (c < D ? c : -1) : (c - Dp < D ? D + c - Dp : -1);
    tensor *h = malloc(sizeof(tensor) * (L + 1)), *gate = malloc(sizeof(tensor) * L), *dpre = malloc(sizeof(tensor) * L);
    for (int l = 0; l <= L; l++) h[l] = tnew(nb, pb, R);
    for (int l = 0; l < L; l++) { gate[l] = tnew(nb, pb, 2 * Dp); dpre[l] = tnew(nb, pb, 2 * Dp); }
    const tensor z = tnew(nb, pb, L * D), ts = tnew(nb, pb, S), tu = tnew(nb, pb, H), tlg = tnew(nb, pb, V), tdl = tnew(nb, pb, V),
                 tdu = tnew(nb, pb, H), tds = tnew(nb, pb, S), tdh0 = tnew(nb, pb, R), tdh1 = tnew(nb, pb, R);
    float *wg = buf((long)L * 2 * D * 2 * R), *wgT = buf((long)L * R * 2 * 2 * D), *wr = buf((long)L * R * D), *wrT = buf((long)L * D * R);
    float *wsk = buf((long)S * L * D), *wsT = buf((long)L * D * S), *wh = buf((long)H * S), *whT = buf((long)S * H);
    float *wo = buf((long)V * H), *woT = buf((long)H * V), *b = buf(4096), *zero = calloc(4096, 4);
    const long ndw = (long)2 * D * 2 * R + (long)S * L * D + (long)V * H + 64;
    float *dw = buf(ndw), *db = buf(4096);
    int *target = malloc(sizeof(int) * T);
    for (long t = 0; t < T; t++) target[t] = (int)((t * 7919) % V);
    for (int c = 0; c < R; c++) for (long t = 0; t < T; t++) h[0].p[t / BB * h[0].bs + c * BB + t % BB] = (float)((c * 31 + t) % 17) * 0.05f - 0.4f;
    // Packed weights (cm_step's arrays, the same index conventions). The gated: a's and g's side by side.
    float **pg = malloc(sizeof(float *) * L), **pgT = malloc(sizeof(float *) * L), **pr = malloc(sizeof(float *) * L),
          **prT = malloc(sizeof(float *) * L), **psT = malloc(sizeof(float *) * L);
    int *dmap = malloc(sizeof(int) * 2 * Dp);  // the input gradient's inputs (dpre's channels) → wgT's columns
    for (int c = 0; c < 2 * Dp; c++) dmap[c] = gmap[c];
    for (int l = 0; l < L; l++) {
        const float *w = wg + (long)l * 2 * D * 2 * R;
        float *pa = pack(w, R, 0, R, D, 2), *pgg = pack(w + (long)D * 2 * R, R, 0, R, D, 2);
        pg[l] = aligned_alloc(64, sizeof(float) * 16 * 2L * R * 2 * NVa);
        for (long kc = 0; kc < 2L * R; kc++) {
            memcpy(pg[l] + kc * 2 * NVa * 16, pa + kc * NVa * 16, 64L * NVa);
            memcpy(pg[l] + (kc * 2 * NVa + NVa) * 16, pgg + kc * NVa * 16, 64L * NVa);
        }
        free(pa); free(pgg);
        pgT[l] = pack(wgT + (long)l * R * 2 * 2 * D, 2 * Dp, dmap, 2 * D, R, 2);
        pr[l] = pack(wr + (long)l * R * D, D, 0, D, R, 1);
        prT[l] = pack(wrT + (long)l * D * R, R, 0, R, D, 1);
        psT[l] = pack(wsT + (long)l * D * S, S, 0, S, D, 1);
    }
    float *psk = pack(wsk, L * D, 0, L * D, S, 1), *ph = pack(wh, S, 0, S, H, 1), *phT = pack(whT, H, 0, H, S, 1);
    float *po = pack(wo, H, 0, H, V, 1), *poT = pack(woT, V, 0, V, H, 1);
    float *bg = aligned_alloc(64, 64L * 2 * NVa);  // the gated bias: a's vectors, then g's
    { float *ba = pack_bias(b, D), *bgg = pack_bias(b + D, D); memcpy(bg, ba, 64L * NVa); memcpy(bg + NVa * 16, bgg, 64L * NVa); }
    float *bR = pack_bias(b, R), *bS = pack_bias(b, S), *bH = pack_bias(b, H), *bV = pack_bias(b, V), *b0 = pack_bias(zero, 4096);
    double best = 1e9, loss = 0;
    double part[P_N], bestpart[P_N], fk[3], bestfk[3];
    for (int round = 0; round < rounds; round++) {
        const double t0 = now();
        double tp = t0;
        loss = 0;
        for (int i = 0; i < P_N; i++) part[i] = 0;
        fk[0] = fk[1] = fk[2] = 0;
#define LAP(P) do { const double x_ = now(); part[P] += x_ - tp; tp = x_; } while (0)
        for (long ta = 0; ta < T; ta += TT) {
            const long n = T - ta < TT ? T - ta : TT;
            for (int l = 0; l < L; l++) {
                float *zl = blk(z, ta) + (long)l * D * BB;
                double q0 = now();
                b8_gated(blk(gate[l], ta), gate[l].bs, zl, z.bs, blk(h[l], ta), h[l].bs, pg[l], bg, n, R, D, 2, dil[l]);
                double q1 = now(); fk[0] += q1 - q0;
                if (l < L - 1) b8_forward(blk(h[l + 1], ta), h[l + 1].bs, blk(h[l], ta), h[l].bs, zl, z.bs, pr[l], bR, n, D, R, 1, 0, 0);
                fk[1] += now() - q1;
            }
            double q2 = now();
            b8_forward(blk(ts, ta), ts.bs, 0, 0, blk(z, ta), z.bs, psk, bS, n, L * D, S, 1, 0, 1);
            fk[2] += now() - q2;
        }
        LAP(P_FWD);
        for (long ta = (T - 1) / TB * TB; ta >= 0; ta -= TB) {
            const long n = T - ta < TB ? T - ta : TB;
            b8_forward(blk(tu, ta), tu.bs, 0, 0, blk(ts, ta), ts.bs, ph, bH, n, S, H, 1, 0, 1);
            b8_forward(blk(tlg, ta), tlg.bs, 0, 0, blk(tu, ta), tu.bs, po, bV, n, H, V, 1, 0, 0);
            LAP(P_HEAD);
            loss += b8_softmax(blk(tdl, ta), tdl.bs, blk(tlg, ta), tlg.bs, target + ta, n, V, 1.0f / T);
            LAP(P_SOFT);
            b8_wgrad(dw, db, blk(tdl, ta), tdl.bs, blk(tu, ta), tu.bs, n, H, V, 0, 1, 0);
            b8_forward(blk(tdu, ta), tdu.bs, 0, 0, blk(tdl, ta), tdl.bs, poT, b0, n, V, H, 1, 0, 0);
            brelu_back(blk(tdu, ta), blk(tu, ta), n / BB * tu.bs);
            b8_wgrad(dw, db, blk(tdu, ta), tdu.bs, blk(ts, ta), ts.bs, n, S, H, 0, 1, 0);
            b8_forward(blk(tds, ta), tds.bs, 0, 0, blk(tdu, ta), tdu.bs, phT, b0, n, H, S, 1, 0, 0);
            brelu_back(blk(tds, ta), blk(ts, ta), n / BB * ts.bs);
            LAP(P_HEAD);
            b8_wgrad(dw, db, blk(tds, ta), tds.bs, blk(z, ta), z.bs, n, L * D, S, 0, 1, 0);
            LAP(P_SKIPW);
            tensor dhn = tdh0, dhl = tdh1;
            blkzero(blk(dhn, ta), dhn.bs, n / BB);
            for (int l = L - 1; l >= 0; l--) {
                b8_gb(blk(dpre[l], ta), dpre[l].bs, blk(gate[l], ta), gate[l].bs, blk(tds, ta), tds.bs, S,
                      l < L - 1 ? blk(dhn, ta) : 0, dhn.bs, R, psT[l], prT[l], n, D);
                LAP(P_GB);
                b8_wgrad(dw, db, blk(dpre[l], ta), dpre[l].bs, blk(h[l], ta), h[l].bs, n, R, 2 * Dp, gmap, 2, dil[l]);
                if (l < L - 1) b8_wgrad(dw, db, blk(dhn, ta), dhn.bs, blk(z, ta) + (long)l * D * BB, z.bs, n, D, R, 0, 1, 0);
                LAP(P_W);
                b8_forward(blk(dhl, ta), dhl.bs, blk(dhn, ta), dhn.bs, blk(dpre[l], ta), dpre[l].bs, pgT[l], b0, n, 2 * Dp, R, 2, -dil[l], 0);
                LAP(P_IN);
                const tensor x = dhn; dhn = dhl; dhl = x;
            }
        }
        const double dt = now() - t0;
        if (dt < best) { best = dt; memcpy(bestpart, part, sizeof part); memcpy(bestfk, fk, sizeof fk); }
    }
    step_report("blocks-of-8", R, D, S, H, V, L, T, rounds, best, loss, dw, ndw, db, 4096, bestpart);
    printf("  forward: gated %.2f ms %.1f GFLOP/s, residual %.2f ms %.1f, skip %.2f ms %.1f\n", bestfk[0] * 1e3, 2.0 * L * 4 * R * D * T / bestfk[0] / 1e9,
           bestfk[1] * 1e3, 2.0 * (L - 1) * R * D * T / bestfk[1] / 1e9, bestfk[2] * 1e3, 2.0 * L * D * S * T / bestfk[2] / 1e9);
    return 0;
}
