// A prototype, not PBTWave's model: one whole fp32 training step of a
// WaveNet (20 layers by default, dilations 1…512 twice, kernel 2, residual
// R, gate D = R, skip S, head H, 256 classes) with every activation
// channel-major (time along the lanes), built from channel_major.c's
// kernels, to time the layout at the step's level rather than product by
// product (Benchmarks/HISTORY.md, "On the Intel host, third session").
// It computes what the step computes, in the same order of passes:
//   forward, in time tiles of 384 through all layers (as the model does):
//     [a; g] = Wg_l ∗ h_l (2 taps) + b, z_l = tanh a · σ g, h_{l+1} = h_l + Wr_l z_l + b;
//     then s = ReLU(Σ_l Ws_l z_l + b) over the stacked z rows;
//   then in time tiles from the last: the head, u = ReLU(Wh s + b), logits =
//     Wo u + b, softmax cross-entropy and its gradient, the head's weight and
//     input gradients, ds through the ReLU; the skip weight gradient over the
//     stacked z's; then layer by layer from the top: dz and the unit's
//     backward (one product over ds and dh_{l+1}), the gated and residual
//     weight gradients, dh_l = dh_{l+1} + Wg_lᵀ ∗ dpre_l.
// Left out (small against the products): the embedding and the input
// convolution, and Adam (every bias sum is taken, with its weight
// gradient). The weights are arbitrary (any values time alike), so it
// checks nothing: each kernel is checked against plain loops by
// `channel_major … check`, and the two layouts must print the same loss
// and gradient digest.
// Layouts: `rows` (every activation a row of the whole window a channel), or
// `blocked`: every tensor in blocks of BLK positions, all of a block's
// channels in one run (each run padded by BLOCK_PAD floats, 16 by default);
// h and dpre, read at t ∓ d, with blocks of zeros before and after. The backward pass runs in time tiles of BACKWARD_TILE positions
// (1024), from the last, each through the head and all layers (as the
// model's does), the head's weight gradients' partial sums kept across
// tiles, each layer's reduced call by call. With AVX-512 the skip's weight
// gradient, and a layer's where its outputs fill more than 7/8 of the
// vectors (compact, R24's gate), are computed as our rows compute them
// instead: the output gradient transposed into rows, VL positions at a time
// in registers, then the inputs broadcast against it, the sums kept in
// vectors over the outputs to the step's end (cm_wgrad_t; Benchmarks/HISTORY.md,
// the sixth Intel session).
// Prints samples/s and GFLOP/s by the model's MAC count (as `pbtwave bench
// train --R R --S S --H H` counts them), best of ROUNDS steps.
//
//   cc -O2 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -DCM_AVX512 -DCM_NO_MAIN \
//      -I Sources/CPBTWaveKernels/include -I Sources/CPBTWaveKernels Benchmarks/ab/cm_step.c (other CPBTWaveKernels objects) -lm
//   cm_step R S H [T] [ROUNDS] [LAYERS] [rows|blocked] [BACKWARD_TILE] [BLOCK_PAD]
// (Benchmarks/ab/cmstep.sh builds and runs it beside `pbtwave bench train`.)
#include "channel_major.c"
#include <string.h>
#include "mock_step.h"

#ifdef CM_AVX512
// A 16 × 16 block transposed in registers (r[i] lane j becomes r[j] lane i).
static ALWAYS_INLINE void tr16(vec r[16]) {
    vec t[16];
    for (int i = 0; i < 8; i++) { t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]); t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]); }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 3])));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 3])));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88); t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xDD);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88); t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88); r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88); r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
    }
}
// The weight gradient as our rows compute it: g transposed first, VL positions and VL channels at a time,
// into rows of Gp floats (a position's Cout values, zeros to a whole vector), then dW(k, c, o-vector) +=
// x(c, t − s_k) broadcast × the row's vectors, the sums in registers: no partial sums to reduce. Tiles of up
// to 24 sums (16 inputs × 1 vector of outputs, 12 × 2, 8 × 3, 6 × 4 = WTN), each over chunks of WTC
// positions (the chunk's rows stay in L1), the sums kept in vectors between chunks and calls.
#ifndef WTM
#define WTM 16
#endif
#ifndef WTN
#define WTN 4
#endif
#ifndef WTC
#define WTC 128
#endif
static float *gt_rows;
static long gt_n;
// acc_out[(c0 + i)·NVo + j0 + j] += Σ_{t in [ta, tb)} x(c0 + i, t − s) · gt[t][j0 + j], for MC inputs × NV vectors.
static ALWAYS_INLINE void wt_tile(int MC, int NV, vec *acc_out, const float *gt, long Gp, const float *x, long ldx, long bsx,
                                  long ta, long tb, long s, int c0, int j0, int NVo) {
    vec acc[WTM][WTN];
    UNROLL for (int i = 0; i < MC; i++) UNROLL for (int j = 0; j < NV; j++) acc[i][j] = acc_out[(long)(c0 + i) * NVo + j0 + j];
    for (long t = ta; t < tb;) {
        const long u = t - s, blk = u >= 0 ? u / BLK : -((-u + BLK - 1) / BLK), off = u - blk * BLK;
        const long len = BLK - off < tb - t ? BLK - off : tb - t;
        const float *xp[WTM];
        UNROLL for (int i = 0; i < MC; i++) xp[i] = x + (c0 + i) * ldx + blk * bsx + off;
        // The inputs' next block asked for ahead (h was written long before): the layer weight gradients
        // ran at 100–102 GFLOP/s in the step without, 111–113 with (two blocks ahead 108–109).
        UNROLL for (int i = 0; i < MC; i++) UNROLL for (int f = 0; f < BLK; f += 16) __builtin_prefetch(x + (c0 + i) * ldx + (blk + 1) * bsx + f, 0, 2);
        const float *gp = gt + t * Gp + j0 * VL;
        for (long e = 0; e < len; e++, gp += Gp) {
            vec gv[WTN];
            UNROLL for (int j = 0; j < NV; j++) gv[j] = vload(gp + j * VL);
            UNROLL for (int i = 0; i < MC; i++) {
                const vec b = vset1(xp[i][e]);
                UNROLL for (int j = 0; j < NV; j++) acc[i][j] = vfma(b, gv[j], acc[i][j]);
            }
        }
        t += len;
    }
    UNROLL for (int i = 0; i < MC; i++) UNROLL for (int j = 0; j < NV; j++) acc_out[(long)(c0 + i) * NVo + j0 + j] = acc[i][j];
}
#define WT_CASE(MC, NV) static __attribute__((noinline)) void wt_##MC##_##NV(vec *acc, const float *gt, long Gp, const float *x, long ldx, \
    long bsx, long ta, long tb, long s, int c0, int j0, int NVo) { wt_tile(MC, NV, acc, gt, Gp, x, ldx, bsx, ta, tb, s, c0, j0, NVo); }
// Up to 24 sums a tile: 16 inputs × 1 vector, 12 × 2, 8 × 3, 6 × 4.
#define WT_ROW(MC) WT_CASE(MC, 1) WT_CASE(MC, 2) WT_CASE(MC, 3) WT_CASE(MC, 4)
#define WT_ROW3(MC) WT_CASE(MC, 1) WT_CASE(MC, 2) WT_CASE(MC, 3)
#define WT_ROW2(MC) WT_CASE(MC, 1) WT_CASE(MC, 2)
WT_ROW(1) WT_ROW(2) WT_ROW(3) WT_ROW(4) WT_ROW(5) WT_ROW(6) WT_ROW3(7) WT_ROW3(8) WT_ROW2(9) WT_ROW2(10) WT_ROW2(11) WT_ROW2(12)
WT_CASE(13, 1) WT_CASE(14, 1) WT_CASE(15, 1) WT_CASE(16, 1)
typedef void (*wt_fn)(vec *, const float *, long, const float *, long, long, long, long, long, int, int, int);
#define WT_FNS(MC) { 0, wt_##MC##_1, wt_##MC##_2, wt_##MC##_3, wt_##MC##_4 }
#define WT_FNS3(MC) { 0, wt_##MC##_1, wt_##MC##_2, wt_##MC##_3, 0 }
#define WT_FNS2(MC) { 0, wt_##MC##_1, wt_##MC##_2, 0, 0 }
#define WT_FNS1(MC) { 0, wt_##MC##_1, 0, 0, 0 }
static const wt_fn wt_fns[17][5] = { { 0 }, WT_FNS(1), WT_FNS(2), WT_FNS(3), WT_FNS(4), WT_FNS(5), WT_FNS(6), WT_FNS3(7), WT_FNS3(8),
                                     WT_FNS2(9), WT_FNS2(10), WT_FNS2(11), WT_FNS2(12), WT_FNS1(13), WT_FNS1(14), WT_FNS1(15), WT_FNS1(16) };
static void cm_wgrad_t(vec *wacc, float *db, const float *g, long ldg, long bsg, const float *x, long ldx, long bsx,
                       long T, int Cin, int Cout, int K, long d) {
    const int NVo = (Cout + VL - 1) / VL;
    const long Gp = (long)NVo * VL + VL;  // a vector more: rows 4 KiB apart would share L1 sets
    if (T * Gp > gt_n) { free(gt_rows); gt_rows = aligned_alloc(64, sizeof(float) * T * Gp); gt_n = T * Gp; }
    vec bsum[64];  // the bias sums, a vector of outputs each (Cout ≤ 1024)
    for (int v = 0; v < NVo; v++) bsum[v] = vzero();
    for (long t0 = 0; t0 < T; t0 += VL) {
        const long og = t0 / BLK * bsg + t0 % BLK;
        for (int v = 0; v < NVo; v++) {
            vec r[16];
            UNROLL for (int i = 0; i < 16; i++) r[i] = v * VL + i < Cout ? vload(g + (v * VL + i) * ldg + og) : vzero();
            tr16(r);
            UNROLL for (int i = 0; i < 16; i++) { vstore(gt_rows + (t0 + i) * Gp + v * VL, r[i]); bsum[v] = vadd(bsum[v], r[i]); }
        }
    }
    if (db) for (int v = 0; v < NVo; v++) {
        float a[VL];
        vstore(a, bsum[v]);
        for (int l = 0; l < VL && v * VL + l < Cout; l++) db[v * VL + l] += a[l];
    }
    int sz[64];
    const int m = (NVo + WTN - 1) / WTN;
    for (int i = 0; i < m; i++) sz[i] = NVo / m + (i < NVo % m);
    for (long ta = 0; ta < T; ta += WTC) {
        const long tb = ta + WTC < T ? ta + WTC : T;
        for (int k = 0; k < K; k++) {
            const long s = (long)(K - 1 - k) * d;
            for (int ci = 0, j0 = 0; ci < m; j0 += sz[ci++])
                for (int c0 = 0, mm = sz[ci] == 1 ? 16 : 24 / sz[ci]; c0 < Cin; c0 += mm) {
                    const int mc = Cin - c0 < mm ? Cin - c0 : mm;
                    wt_fns[mc][sz[ci]](wacc + (long)k * Cin * NVo, gt_rows, Gp, x, ldx, bsx, ta, tb, s, c0, j0, NVo);
                }
        }
    }
}
// wacc's sums (cm_wgrad_t's, input c and output vector j of tap k at (k·Cin + c)·NVo + j) into
// dW[(o·K + k)·Cin + c], and wacc zeroed.
static void cm_wgrad_t_out(float *dw, vec *wacc, int Cin, int Cout, int K) {
    const int NVo = (Cout + VL - 1) / VL;
    for (int k = 0; k < K; k++) for (int c = 0; c < Cin; c++) for (int j = 0; j < NVo; j++) {
        vec *v = wacc + ((long)k * Cin + c) * NVo + j;
        float a[VL];
        vstore(a, *v);
        *v = vzero();
        for (int l = 0; l < VL && j * VL + l < Cout; l++) dw[((long)(j * VL + l) * K + k) * Cin + c] += a[l];
    }
}
// Whether cm_wgrad_t pays for a product of Cout outputs: where they fill more than 7/8 of its vectors'
// lanes (R17, gate 34 of 48: the layer weight gradients 62–66 GFLOP/s in the step against 80–82 with
// the partial sums; R21, 42 of 48: 85–87 against 88–90; compact 111–113 against 92–93). The skip's always
// does: its partial sums (2.6 MB at compact) went through L2 tile after tile.
static int wt_pays(int Cout) { return 8L * Cout > 7L * ((Cout + VL - 1) / VL * VL); }
static vec *wt_new(int Cin, int Cout, int K) {  // a zeroed buffer of sums for cm_wgrad_t
    const long n = (long)K * Cin * ((Cout + VL - 1) / VL);
    vec *p = aligned_alloc(64, sizeof(vec) * n);
    for (long i = 0; i < n; i++) p[i] = vzero();
    return p;
}
#endif
// A layer's buffer of sums for cm_wgrad_t where that pays, else NULL (its partial sums, cm_wgrad).
static vec *layer_sums(int Cin, int Cout, int K) {
#ifdef CM_AVX512
    if (wt_pays(Cout)) return wt_new(Cin, Cout, K);
#endif
    (void)Cin; (void)Cout; (void)K;
    return NULL;
}
// A layer's weight gradient: into wt's vectors (cm_wgrad_t, written into dw at the step's end), or with
// no wt each call's partial sums reduced into dw at once (kept per layer to the step's end, 5 MB of
// vectors at compact, the layer weight gradients ran 0.90–0.95× as fast: HISTORY.md, fifth session).
static void layer_wgrad(vec *wt, float *dw, float *db, const float *g, long ldg, long bsg, const float *x, long ldx, long bsx,
                        long T, int Cin, int Cout, int K, long d) {
#ifdef CM_AVX512
    if (wt) { cm_wgrad_t(wt, db, g, ldg, bsg, x, ldx, bsx, T, Cin, Cout, K, d); return; }
#endif
    (void)wt;
    cm_wgrad(dw, db, g, ldg, bsg, x, ldx, bsx, T, Cin, Cout, K, d);
}


// A tensor of C channels over the window: (c, t) at p + c·cs + (t / BLK)·bs + t % BLK
// (channel_major.c's layouts: rows, cs = their length and bs = BLK; or blocked, cs = BLK, bs = C·BLK and a pad).
typedef struct { float *p; long cs, bs; int C; } tensor;
static float *at(tensor x, int c, long t) { return x.p + c * x.cs + t / BLK * x.bs + t % BLK; }
static int whole(tensor x) { return x.cs == BLK; }  // blocked: whole blocks (and their pads) are one run

// Softmax cross-entropy over V channels (classes) for each of T positions, lanes = time:
// dl = softmax − onehot(target), scaled; returns the summed loss.
static double cm_softmax(tensor dl, tensor lg, const int *target, long t0, long T, float scale) {
    double loss = 0;
    const int V = lg.C;
    for (long t = t0; t < t0 + T; t += VL) {
        const float *g = at(lg, 0, t);
        float *d = at(dl, 0, t);
        vec m = vload(g);
        for (int v = 1; v < V; v++) m = vmax(m, vload(g + v * lg.cs));
        vec s = vzero();
        for (int v = 0; v < V; v++) {
            vec e = vexp(vsub(vload(g + v * lg.cs), m));
            vstore(d + v * dl.cs, e);
            s = vadd(s, e);
        }
        const vec r = vmul(vrecip(s), vset1(scale));
        for (int v = 0; v < V; v++) vstore(d + v * dl.cs, vmul(vload(d + v * dl.cs), r));
        float ms[VL], ss[VL];
        vstore(ms, m); vstore(ss, s);
        for (int i = 0; i < VL; i++) {
            const int c = target[t + i];
            loss += log(ss[i]) + ms[i] - g[c * lg.cs + i];
            d[c * dl.cs + i] -= scale;
        }
    }
    return loss;
}

// Positions [t0, t0 + n) of every channel: zeroed; y = ReLU(y); dy *= (y > 0) (dy and y alike laid out).
static void tzero(tensor x, long t0, long n) {
    if (whole(x)) memset(at(x, 0, t0), 0, sizeof(float) * (n / BLK) * x.bs);
    else for (int c = 0; c < x.C; c++) memset(at(x, c, t0), 0, sizeof(float) * n);
}
static void trelu(tensor y, long t0, long T) {
    const long rows = whole(y) ? 1 : y.C, n = whole(y) ? (T / BLK) * y.bs : T;
    for (long c = 0; c < rows; c++) { float *r = at(y, (int)c, t0); for (long t = 0; t < n; t += VL) vstore(r + t, vrelu(vload(r + t))); }
}
static void trelu_back(tensor dy, tensor y, long t0, long T) {
    const long rows = whole(y) ? 1 : y.C, n = whole(y) ? (T / BLK) * y.bs : T;
    for (long c = 0; c < rows; c++) {
        float *d = at(dy, (int)c, t0);
        const float *r = at(y, (int)c, t0);
        for (long t = 0; t < n; t += VL) vstore(d + t, vpositive(vload(r + t), vload(d + t)));
    }
}

// The step's layout: rows of ld floats (pad zeros before t = 0 and after T), or blocks of BLK
// positions, each block's run padded by bpad floats, with pb blocks of zeros before and after
// (the zeros are the causal edge's, read by the taps).
typedef struct { int blocked; long T, ld, pad, bpad, pb; } layout;
static long extent(layout y, int C) { return y.blocked ? (y.T / BLK + 2 * y.pb) * ((long)C * BLK + y.bpad) : (long)C * y.ld; }
// A tensor of C channels over the window, zeros.
static tensor tnew(layout y, int C) {
    float *p = zalloc(extent(y, C));
    const long bs = (long)C * BLK + y.bpad;
    return y.blocked ? (tensor){ p + y.pb * bs, BLK, bs, C } : (tensor){ p + y.pad, y.ld, BLK, C };
}
// Channels [c0, c0 + C) of x.
static tensor channels(tensor x, int c0, int C) { return (tensor){ x.p + c0 * x.cs, x.cs, x.bs, C }; }
// A tensor from position t as a kernel's operand: pointer, channel stride, block stride.
#define OPERAND(x, t) at(x, 0, t), (x).cs, (x).bs

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: cm_step R S H [T] [ROUNDS] [LAYERS] [rows|blocked] [BACKWARD_TILE] [BLOCK_PAD]\n"); return 2; }
    const int R = atoi(argv[1]), S = atoi(argv[2]), H = atoi(argv[3]), D = R, V = 256;
    const long T = argc > 4 ? atol(argv[4]) : 8192;
    const int rounds = argc > 5 ? atoi(argv[5]) : 10, L = argc > 6 ? atoi(argv[6]) : 20, TT = 384;
    if (T % (NT * VL)) { fprintf(stderr, "cm_step: T must be a multiple of %d\n", NT * VL); return 2; }
    int dil[4096];
    for (int l = 0; l < L; l++) dil[l] = 1 << (l % 10);
    // Rows of ld floats: 512 zeros before t = 0 (the largest tap reach) and 512 after (the input gradient
    // reads ahead), and an odd number of 64-byte lines in all: rows a multiple of 4 KiB apart all fall in
    // the same L1 sets (the forward ran at 60 GFLOP/s with ld = 9216, every tile's rows evicting each other).
    // Blocks likewise: a block's run padded by BLOCK_PAD floats (16), since at a multiple of 16 channels
    // runs 4 KiB apart fall in the same L1 sets.
    const long pad = 512;
    const layout y = { argc > 7 && !strcmp(argv[7], "blocked"), T, (pad + T + pad) / 32 * 32 + 16, pad,
                       argc > 9 ? atol(argv[9]) : 16, pad / BLK };
    // Every activation: h_l, the gate rows (tanh a; σ g) and dpre a layer, all layers' z stacked
    // (L·D channels), the skip and head tensors, and dh in two slots (dh_{l+1}, dh_l).
    tensor *h = malloc(sizeof(tensor) * (L + 1)), *gate = malloc(sizeof(tensor) * L), *dpre = malloc(sizeof(tensor) * L);
    for (int l = 0; l <= L; l++) h[l] = tnew(y, R);
    for (int l = 0; l < L; l++) { gate[l] = tnew(y, 2 * D); dpre[l] = tnew(y, 2 * D); }
    const tensor z = tnew(y, L * D), ts = tnew(y, S), tu = tnew(y, H), tlg = tnew(y, V), tdl = tnew(y, V), tdu = tnew(y, H),
                 tds = tnew(y, S), tdh0 = tnew(y, R), tdh1 = tnew(y, R);
    float *wg = buf((long)L * 2 * D * 2 * R), *wgT = buf((long)L * R * 2 * 2 * D), *wr = buf((long)L * R * D), *wrT = buf((long)L * D * R);
    float *wsk = buf((long)S * L * D), *wsT = buf((long)L * D * S), *wh = buf((long)H * S), *whT = buf((long)S * H);
    float *wo = buf((long)V * H), *woT = buf((long)H * V), *b = buf(4096), *zero = calloc(4096, 4);
    const long ndw = (long)2 * D * 2 * R + (long)S * L * D + (long)V * H + 64;
    float *dw = buf(ndw), *db = buf(4096);  // the bias sums' own sink: b stays the forward's
    int *target = malloc(sizeof(int) * T);
    for (long t = 0; t < T; t++) target[t] = (int)((t * 7919) % V);
    // The input: h_0 (a stand-in for the embedding and input convolution).
    for (int c = 0; c < R; c++) for (long t = 0; t < T; t++) *at(h[0], c, t) = (float)((c * 31 + t) % 17) * 0.05f - 0.4f;
    // The backward pass's tiles (TB positions) and the weight gradients' partial sums.
    const long TB = argc > 8 ? atol(argv[8]) : 1024;
    if (TB % (NT * VL)) { fprintf(stderr, "cm_step: the backward tile must be a multiple of %d\n", NT * VL); return 2; }
    vec *part_o = aligned_alloc(64, sizeof(vec) * H * V), *part_h = aligned_alloc(64, sizeof(vec) * S * H);
#ifndef CM_AVX512
    vec *part_s = aligned_alloc(64, sizeof(vec) * L * D * S);
#else
    vec *wt_s = wt_new(L * D, S, 1);
#endif
    vec *wt_g = layer_sums(R, 2 * D, 2), *wt_r = layer_sums(D, R, 1);
    double best = 1e9, loss = 0;
    // Seconds of each part in the best step: forward, head, skip weight gradient, gated backward
    // products, weight gradients, input gradients (ReLUs with the product they serve), and
    // the softmax with its gradient (apart from the head, as instep.py counts our step's).
    double part[P_N], bestpart[P_N];
    for (int round = 0; round < rounds; round++) {
        const double t0 = now();
        double tp = t0;
        loss = 0;
        for (int i = 0; i < P_N; i++) part[i] = 0;
#define LAP(P) do { const double x = now(); part[P] += x - tp; tp = x; } while (0)
        // Forward, tile by tile through all layers.
        for (long ta = 0; ta < T; ta += TT) {
            const long n = T - ta < TT ? T - ta : TT;  // the last tile may be shorter (8192 = 21 · 384 + 128)
            for (int l = 0; l < L; l++) {
                const tensor zl = channels(z, l * D, D);
                cm_gated(OPERAND(gate[l], ta), OPERAND(zl, ta), OPERAND(h[l], ta), wg + (long)l * 2 * D * 2 * R, b, n, R, D, 2, dil[l]);
                if (l < L - 1) cm_forward(OPERAND(h[l + 1], ta), at(h[l], 0, ta), OPERAND(zl, ta), wr + (long)l * R * D, b, n, D, R, 1, 0);
            }
            // s = ReLU(Σ_l Ws_l z_l + b): the z rows of all layers stacked (L·D channels).
            cm_forward(OPERAND(ts, ta), 0, OPERAND(z, ta), wsk, b, n, L * D, S, 1, 0);
            trelu(ts, ta, n);
        }
        LAP(P_FWD);
        // The backward pass in time tiles of TB positions, from the last tile to the first (as the
        // model's wavefront runs it), each tile through the head and every layer from the top, so that
        // a tile's rows stay in L2; the head's (and off AVX-512 the skip's) weight gradients' partial sums kept from
        // tile to tile. A
        // layer's input gradient reads dpre_l at t + d, rows of this tile or of later ones, which
        // came before: dpre is kept for every layer.
        for (long ta = (T - 1) / TB * TB; ta >= 0; ta -= TB) {
            const long n = T - ta < TB ? T - ta : TB;
            const int first = ta + TB >= T;
            cm_forward(OPERAND(tu, ta), 0, OPERAND(ts, ta), wh, b, n, S, H, 1, 0);
            trelu(tu, ta, n);
            cm_forward(OPERAND(tlg, ta), 0, OPERAND(tu, ta), wo, b, n, H, V, 1, 0);
            LAP(P_HEAD);
            loss += cm_softmax(tdl, tlg, target, ta, n, 1.0f / T);
            LAP(P_SOFT);
            cm_wgrad_into(part_o, first, db, OPERAND(tdl, ta), OPERAND(tu, ta), n, H, V, 1, 0);
            cm_forward(OPERAND(tdu, ta), 0, OPERAND(tdl, ta), woT, zero, n, V, H, 1, 0);
            trelu_back(tdu, tu, ta, n);
            cm_wgrad_into(part_h, first, db, OPERAND(tdu, ta), OPERAND(ts, ta), n, S, H, 1, 0);
            cm_forward(OPERAND(tds, ta), 0, OPERAND(tdu, ta), whT, zero, n, H, S, 1, 0);
            trelu_back(tds, ts, ta, n);
            LAP(P_HEAD);
            // The skip weights of every layer, over the stacked z.
#ifdef CM_AVX512
            cm_wgrad_t(wt_s, db, OPERAND(tds, ta), OPERAND(z, ta), n, L * D, S, 1, 0);
#else
            cm_wgrad_into(part_s, first, db, OPERAND(tds, ta), OPERAND(z, ta), n, L * D, S, 1, 0);
#endif
            LAP(P_SKIPW);
            // The layers, from the top: dh_{l+1} in one slot, dh_l into the other.
            tensor dhn = tdh0, dhl = tdh1;
            tzero(dhn, ta, n);
            for (int l = L - 1; l >= 0; l--) {
                // dz = Ws_lᵀ ds + Wr_lᵀ dh_{l+1} (weights [D][S] and [D][R]; the top layer has no residual output).
                cm_gb(OPERAND(dpre[l], ta), OPERAND(gate[l], ta), at(tds, 0, ta), tds.bs, l < L - 1 ? at(dhn, 0, ta) : 0, dhn.bs,
                      tds.cs, wsT + (long)l * D * S, S, wrT + (long)l * D * R, R, n, D);
                LAP(P_GB);
                // Every layer's into the same dw (and wt_g, wt_r): the mock keeps no per-layer weights.
                layer_wgrad(wt_g, dw, db, OPERAND(dpre[l], ta), OPERAND(h[l], ta), n, R, 2 * D, 2, dil[l]);
                if (l < L - 1) layer_wgrad(wt_r, dw, db, OPERAND(dhn, ta), OPERAND(channels(z, l * D, D), ta), n, D, R, 1, 0);
                LAP(P_W);
                cm_forward(OPERAND(dhl, ta), at(dhn, 0, ta), OPERAND(dpre[l], ta), wgT + (long)l * R * 2 * 2 * D, zero, n, 2 * D, R, 2, -dil[l]);
                LAP(P_IN);
                const tensor x = dhn; dhn = dhl; dhl = x;
            }
        }
        cm_wgrad_reduce(dw, part_o, (long)H * V);
        cm_wgrad_reduce(dw, part_h, (long)S * H);
        LAP(P_HEAD);
#ifdef CM_AVX512
        cm_wgrad_t_out(dw, wt_s, L * D, S, 1);
        LAP(P_SKIPW);
        if (wt_g) cm_wgrad_t_out(dw, wt_g, R, 2 * D, 2);
        if (wt_r) cm_wgrad_t_out(dw, wt_r, D, R, 1);
        LAP(P_W);
#else
        cm_wgrad_reduce(dw, part_s, (long)L * D * S);
#endif
        LAP(P_SKIPW);
        const double dt = now() - t0;
        if (dt < best) { best = dt; memcpy(bestpart, part, sizeof part); }
    }
    step_report("channel-major", R, D, S, H, V, L, T, rounds, best, loss, dw, ndw, db, 4096, bestpart);
    return 0;
}
