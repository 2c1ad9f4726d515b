// A prototype, not a kernel of PBTWave: the layer products with time along
// the lanes (channel-major rows: row c holds channel c for every t, so a
// vector is 8 consecutive times of one channel and no width leaves a ragged
// vector). It measures what Sources/CPBTWaveKernels would gain from that layout
// before the model is rewritten for it; Benchmarks/ab/layout.sh runs it
// beside kernel.c (the same products on the model's rows, time-major).
// AVX2 + FMA (8 lanes), or AVX-512 with CM_AVX512 defined (16 lanes, then
// NT 4: 6 × 4 tiles of the 32 registers); T a multiple of VL·NT; rows
// padded with zeros before t = 0. Any operand may instead be blocked (its
// bs argument: each block of BLK = NT·VL positions holds all its channels
// in one run, so that a tile reads or writes one stream, not one per
// channel; a shifted read then takes a vector that straddles two blocks in
// two masked loads; cm_step.c measures the two layouts). Built by
// layout.sh against Sources/CPBTWaveKernels (whose AVX2 or AVX-512 file it
// includes).
//
//   channel_major OP CIN COUT K T D [check]
//   OP as kernel.c's: f forward (out = out + b + W∗x), g gated forward
//   (COUT = 2D; writes tanh a, σ g and z), w weight gradient (T split in
//   blocks of 512), b the gated backward product (CIN = S, COUT = D, K = R:
//   dz from S + R rows, then the unit's backward). The input gradient is a
//   forward with its dimensions swapped (f 2D R 2 for kernel.c's i R 2D 2).
//   With `check`, one call against plain loops in double: prints the largest
//   error and exits 1 above 1e-4.
// Tiles: 6 output rows × NT vectors (f, b), 2 gate pairs × NT vectors (g: 3
// pairs spill under clang on AVX2), WO × WC rows (w: 4 × 3 on AVX2, 6 × 4 on
// AVX-512; one vector of partial sums each, summed across the lanes at the
// end). Rows start on 64-byte lines.
// The variant's vector helpers and its gated unit (v_tanh_avx2 and
// v_sigmoid_avx2, or the _avx512 ones), compiled into this file, so that the
// prototype's unit is the kernels' own; layout.sh links the other CPBTWaveKernels
// objects.
#ifdef CM_AVX512
#include "kernels_avx512.c"
#define UNIT_TANH v_tanh_avx512
#define UNIT_SIGMOID v_sigmoid_avx512
#else
#include "kernels_avx2.c"
#define UNIT_TANH v_tanh_avx2
#define UNIT_SIGMOID v_sigmoid_avx2
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

// out[o][t] = add[o][t] + b[o] + Σ_k Σ_c w[(o·K + k)·Cin + c] · x[c][t − s_k], t in [0, T), T % (VL·NT) == 0
// (add laid out as out, or NULL for none; it may be out).
// Tile: MR output rows × NT time vectors.
#ifndef NT
#ifdef CM_AVX512
#define NT 4
#else
#define NT 2
#endif
#endif
#define MRF 6
// A tile's positions: NT vectors. A tensor's value (c, t) lives at
// p + c·cs + (t / BLK)·bs + t % BLK: channel-major rows have cs = the row's
// length and bs = BLK; a blocked tensor (each block of BLK positions holds all
// its channels, one stream) has cs = BLK and bs = BLK · (channels in the block).
#define BLK (NT * VL)
// The weight gradient's tile: WO rows of dout × WC rows of x (WC ≤ 5, WO ≤ 6),
// time swept in blocks of WTB positions.
#ifndef WO
#ifdef CM_AVX512
#define WO 6
#define WC 4
#define WTB 256
#else
#define WO 4
#define WC 3
#define WTB 512
#endif
#endif
#ifndef GP
#define GP 2
#endif
// A vector of VL positions from p of an operand (bs floats a block): in rows (bs = BLK) at p; blocked,
// where it straddles two blocks (off + VL > BLK), its first lanes from one and the rest from the next.
typedef struct { long at, next; vmask m1, m2; int two; } span;
static ALWAYS_INLINE span span_at(long p, long bs) {
    const long blk = p >= 0 ? p / BLK : -((-p + BLK - 1) / BLK), off = p - blk * BLK;
    span v = { blk * bs + off, 0, vmask_first(VL), vmask_first(VL), 0 };
    if (bs != BLK && off + VL > BLK) {
        const int a = (int)(BLK - off);
        v.next = (blk + 1) * bs + off - BLK; v.m1 = vmask_first(a); v.m2 = vmask_lanes(a, VL); v.two = 1;
    }
    return v;
}
static ALWAYS_INLINE vec span_load(const float *x, span v) {
    return v.two ? vloadm(x + v.next, v.m2, vloadm(x + v.at, v.m1, vzero())) : vload(x + v.at);
}

// acc[i][·] += Σ_k Σ_c w[o_i·ldw + k·Cin + c] · x[c][t − s_k ..], s_k = (K − 1 − k)·d, for the
// output rows o_i = o0 + i, and o0 + gap + i from i = half on (the gated tile's rows of g).
// x in rows (bsx = BLK) or blocked (blocks before and after [0, T) as the shifts need).
static ALWAYS_INLINE void acc_rows(vec acc[][NT], const float *x, long ldx, long bsx, const float *w, long ldw, int Cin, int K,
                        long d, int o0, int MR, long t, int half, int gap) {
    for (int k = 0; k < K; k++) {
        const long s = (long)(K - 1 - k) * d;
        span sp[NT];
        int two = 0;
        UNROLL for (int j = 0; j < NT; j++) {
            sp[j] = span_at(t + j * VL - s, bsx);
            two |= sp[j].two;
        }
        for (int c = 0; c < Cin; c++) {
            const float *xr = x + c * ldx;
            vec xv[NT];
            if (two) { UNROLL for (int j = 0; j < NT; j++) xv[j] = span_load(xr, sp[j]); }
            else UNROLL for (int j = 0; j < NT; j++) xv[j] = vload(xr + sp[j].at);
            UNROLL for (int i = 0; i < MR; i++) {
                vec wv = vset1(w[(long)(o0 + i + (i >= half ? gap : 0)) * ldw + (long)k * Cin + c]);
                UNROLL for (int j = 0; j < NT; j++) acc[i][j] = vfma(wv, xv[j], acc[i][j]);
            }
        }
    }
}

static ALWAYS_INLINE void f_tile(float *out, long ldo, long bso, const float *add, const float *x, long ldx, long bsx,
                      const float *w, const float *b, int Cin, int K, long d, int o0, int MR, long t) {
    vec acc[MRF][NT];
    out += t / BLK * bso;
    if (add) {
        add += t / BLK * bso;
        UNROLL for (int i = 0; i < MR; i++) UNROLL for (int j = 0; j < NT; j++) acc[i][j] = vadd(vload(add + (o0 + i) * ldo + j * VL), vset1(b[o0 + i]));
    } else UNROLL for (int i = 0; i < MR; i++) UNROLL for (int j = 0; j < NT; j++) acc[i][j] = vset1(b[o0 + i]);
    acc_rows(acc, x, ldx, bsx, w, (long)K * Cin, Cin, K, d, o0, MR, t, MR, 0);
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int j = 0; j < NT; j++) vstore(out + (o0 + i) * ldo + j * VL, acc[i][j]);
}

// Every output row [0, C) of positions [0, T): tiles of 6 rows, then one of the rest (TILE is f_tile or b_tile).
#define ROW_TILES(TILE, C, ...) \
    for (long t = 0; t < T; t += NT * VL) { \
        int o = 0; \
        for (; o + 6 <= (C); o += 6) TILE(__VA_ARGS__, o, 6, t); \
        switch ((C) - o) { \
        case 5: TILE(__VA_ARGS__, o, 5, t); break; \
        case 4: TILE(__VA_ARGS__, o, 4, t); break; \
        case 3: TILE(__VA_ARGS__, o, 3, t); break; \
        case 2: TILE(__VA_ARGS__, o, 2, t); break; \
        case 1: TILE(__VA_ARGS__, o, 1, t); break; \
        } \
    }
static void cm_forward(float *out, long ldo, long bso, const float *add, const float *x, long ldx, long bsx, const float *w,
                       const float *b, long T, int Cin, int Cout, int K, long d) {
    ROW_TILES(f_tile, Cout, out, ldo, bso, add, x, ldx, bsx, w, b, Cin, K, d)
}

// Gated: a = rows [0, D), g = rows [D, 2D) of the product; gate stores tanh a and σ g, z = tanh a · σ g.
static ALWAYS_INLINE void g_tile(float *gate, long ldg, long bsg, float *z, long ldz, long bsz, const float *x, long ldx, long bsx,
                      const float *w, const float *b, int Cin, int K, long d, int D, int o0, int P, long t) {
    vec acc[6][NT];  // a's rows, then g's
    UNROLL for (int i = 0; i < P; i++) UNROLL for (int j = 0; j < NT; j++) { acc[i][j] = vset1(b[o0 + i]); acc[P + i][j] = vset1(b[D + o0 + i]); }
    acc_rows(acc, x, ldx, bsx, w, (long)K * Cin, Cin, K, d, o0, 2 * P, t, P, D - P);
    UNROLL for (int i = 0; i < P; i++) UNROLL for (int j = 0; j < NT; j++) {
        vec ta = UNIT_TANH(acc[i][j]), sg = UNIT_SIGMOID(acc[P + i][j]);
        vstore(gate + t / BLK * bsg + (o0 + i) * ldg + j * VL, ta);
        vstore(gate + t / BLK * bsg + (D + o0 + i) * ldg + j * VL, sg);
        vstore(z + t / BLK * bsz + (o0 + i) * ldz + j * VL, vmul(ta, sg));
    }
}
static void cm_gated(float *gate, long ldg, long bsg, float *z, long ldz, long bsz, const float *x, long ldx, long bsx,
                     const float *w, const float *b, long T, int Cin, int D, int K, long d) {
    for (long t = 0; t < T; t += NT * VL) {
        int o = 0;
        for (; o + GP <= D; o += GP) g_tile(gate, ldg, bsg, z, ldz, bsz, x, ldx, bsx, w, b, Cin, K, d, D, o, GP, t);
        if (GP == 3 && D - o == 2) g_tile(gate, ldg, bsg, z, ldz, bsz, x, ldx, bsx, w, b, Cin, K, d, D, o, 2, t);
        if (D - o == 1) g_tile(gate, ldg, bsg, z, ldz, bsz, x, ldx, bsx, w, b, Cin, K, d, D, o, 1, t);
    }
}

// dW[(o·K + k)·Cin + c] += Σ_t dout[o][t] · x[c][t − s_k]: tile MO rows of dout × MC rows of x, lanes = time,
// into part's vectors of partial sums.
static ALWAYS_INLINE void w_tile(vec *part, const float *g, long ldg, long bsg, const float *x, long ldx, long bsx, long ta, long tb,
                      int Cin, int K, int k, long s, int o0, int MO, int c0, int MC, int first) {
    vec acc[WO][WC];
    UNROLL for (int i = 0; i < MO; i++) UNROLL for (int j = 0; j < MC; j++)
        acc[i][j] = first ? vzero() : part[((long)(o0 + i) * K + k) * Cin + c0 + j];
    const float *xr[WC], *gr[WO];  // each row through a pointer of its own (no address arithmetic a step)
    UNROLL for (int j = 0; j < MC; j++) xr[j] = x + (c0 + j) * ldx;
    UNROLL for (int i = 0; i < MO; i++) gr[i] = g + (o0 + i) * ldg;
    // x's vectors a block, the same offsets in every block (rows: t − s on; blocked: spans).
    span sp[NT];
    int two = 0;
    UNROLL for (int n = 0; n < NT; n++) {
        sp[n] = span_at(n * VL - s, bsx);
        two |= sp[n].two;
    }
    // Block by block (ta and tb on blocks), the block's NT vectors at constant offsets.
    for (long t = ta; t < tb; t += BLK) {
        const long ox = t / BLK * bsx, og = t / BLK * bsg;
        UNROLL for (int n = 0; n < NT; n++) {
            vec xv[WC];
            if (two) { UNROLL for (int j = 0; j < MC; j++) xv[j] = span_load(xr[j] + ox, sp[n]); }
            else UNROLL for (int j = 0; j < MC; j++) xv[j] = vload(xr[j] + ox + sp[n].at);
            UNROLL for (int i = 0; i < MO; i++) {
                vec gv = vload(gr[i] + og + n * VL);
                UNROLL for (int j = 0; j < MC; j++) acc[i][j] = vfma(gv, xv[j], acc[i][j]);
            }
        }
    }
    UNROLL for (int i = 0; i < MO; i++) UNROLL for (int j = 0; j < MC; j++) part[((long)(o0 + i) * K + k) * Cin + c0 + j] = acc[i][j];
}
#define W_ROWS(MO) \
    { int c = 0; \
      for (; c + WC <= Cin; c += WC) w_tile(part, g, ldg, bsg, x, ldx, bsx, ta, tb, Cin, K, k, s, o, MO, c, WC, first); \
      switch (Cin - c) { \
      case 4: if (WC > 4) w_tile(part, g, ldg, bsg, x, ldx, bsx, ta, tb, Cin, K, k, s, o, MO, c, 4, first); break; \
      case 3: if (WC > 3) w_tile(part, g, ldg, bsg, x, ldx, bsx, ta, tb, Cin, K, k, s, o, MO, c, 3, first); break; \
      case 2: w_tile(part, g, ldg, bsg, x, ldx, bsx, ta, tb, Cin, K, k, s, o, MO, c, 2, first); break; \
      case 1: w_tile(part, g, ldg, bsg, x, ldx, bsx, ta, tb, Cin, K, k, s, o, MO, c, 1, first); break; \
      } }
// The sums of positions [0, T) into part's K·Cin·Cout vectors of partial sums (zeroed first if
// first), and db's into db.
static void cm_wgrad_into(vec *part, int first0, float *db, const float *g, long ldg, long bsg, const float *x, long ldx, long bsx,
                          long T, int Cin, int Cout, int K, long d) {
    const long TB = WTB;
    for (long ta = 0; ta < T; ta += TB) {
        const long tb = ta + TB < T ? ta + TB : T;
        const int first = first0 && ta == 0;
        for (int k = 0; k < K; k++) {
            const long s = (long)(K - 1 - k) * d;
            int o = 0;
            for (; o + WO <= Cout; o += WO) W_ROWS(WO)
            switch (Cout - o) {
            case 5: if (WO > 5) W_ROWS(5) break;
            case 4: if (WO > 4) W_ROWS(4) break;
            case 3: W_ROWS(3) break;
            case 2: W_ROWS(2) break;
            case 1: W_ROWS(1) break;
            }
        }
    }
    if (db) for (int o = 0; o < Cout; o++) {
        vec a[4] = { vzero(), vzero(), vzero(), vzero() };  // four chains: the adds' latency, not one chain's
        long t = 0;
        for (; t + 4 * VL <= T; t += 4 * VL) UNROLL for (int j = 0; j < 4; j++) a[j] = vadd(a[j], vload(g + o * ldg + (t + j * VL) / BLK * bsg + (t + j * VL) % BLK));
        for (; t < T; t += VL) a[0] = vadd(a[0], vload(g + o * ldg + t / BLK * bsg + t % BLK));
        db[o] += vhsum(vadd(vadd(a[0], a[1]), vadd(a[2], a[3])));
    }
}
// dw[i] += the sum of part[i]'s lanes: VL vectors at a time in the variant's reduction tree (the dot
// tails' vreduce_rows), the last n mod VL one by one.
static void cm_wgrad_reduce(float *dw, const vec *part, long n) {
    long i = 0;
    for (; i + VL <= n; i += VL) vstore(dw + i, vadd(vload(dw + i), vreduce_rows(part + i)));
    for (; i < n; i++) dw[i] += vhsum(part[i]);
}

static vec *part;  // cm_wgrad's partial sums, grown once
static long part_n;
// dW[(o·K + k)·Cin + c] += Σ_t dout[o][t] · x[c][t − s_k] over positions [0, T), in one call: the partial
// sums in one buffer, reused call after call (it stays in L2 where the call's weights are few).
static void cm_wgrad(float *dw, float *db, const float *g, long ldg, long bsg, const float *x, long ldx, long bsx,
                     long T, int Cin, int Cout, int K, long d) {
    const long n = (long)K * Cin * Cout;
    if (n > part_n) { free(part); part = aligned_alloc(64, sizeof(vec) * n); part_n = n; }
    cm_wgrad_into(part, 1, db, g, ldg, bsg, x, ldx, bsx, T, Cin, Cout, K, d);
    cm_wgrad_reduce(dw, part, n);
}

// The gated backward product: dz[o][t] = Σ_j W[o·J + j] · dy[j][t] (J = S + R rows of dskip and dres,
// stacked), plus Σ_j W2[o·J2 + j] · dy2[j][t] when dy2 is given (the two in rows of their own, as a
// step keeps them: cm_step.c), then dpre_a = dz·σ·(1 − tanh²), dpre_g = dz·tanh·σ·(1 − σ) from the
// gate rows (tanh a; σ g).
static ALWAYS_INLINE void b_tile(float *dpre, long ldp, long bsp, const float *gate, long ldg, long bsg, const float *dy, long bsy,
                                 const float *dy2, long bsy2, long ldy,
                                 const float *w, int J, const float *w2, int J2, int D, int o0, int MR, long t) {
    vec acc[MRF][NT];
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int j = 0; j < NT; j++) acc[i][j] = vzero();
    acc_rows(acc, dy, ldy, bsy, w, J, J, 1, 0, o0, MR, t, MR, 0);
    if (dy2) acc_rows(acc, dy2, ldy, bsy2, w2, J2, J2, 1, 0, o0, MR, t, MR, 0);
    const vec one = vset1(1.0f);
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int j = 0; j < NT; j++) {
        vec ta = vload(gate + t / BLK * bsg + (o0 + i) * ldg + j * VL), sg = vload(gate + t / BLK * bsg + (D + o0 + i) * ldg + j * VL);
        vec dz = acc[i][j];
        vec da = vmul(vmul(dz, sg), vfnmadd(ta, ta, one));
        vec dg = vmul(vmul(dz, ta), vmul(sg, vsub(one, sg)));
        vstore(dpre + t / BLK * bsp + (o0 + i) * ldp + j * VL, da);
        vstore(dpre + t / BLK * bsp + (D + o0 + i) * ldp + j * VL, dg);
    }
}
static void cm_gb(float *dpre, long ldp, long bsp, const float *gate, long ldg, long bsg, const float *dy, long bsy, const float *dy2,
                  long bsy2, long ldy, const float *w, int J, const float *w2, int J2, long T, int D) {
    ROW_TILES(b_tile, D, dpre, ldp, bsp, gate, ldg, bsg, dy, bsy, dy2, bsy2, ldy, w, J, w2, J2, D)
}

// n floats on 64-byte lines (as a model's rows would start), zeros.
static float *zalloc(long n) {
    const long bytes = (n * 4 + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    memset(p, 0, bytes);
    return p;
}

#ifndef CM_NO_MAIN  // cm_step.c includes the kernels above without the driver
static int check(char op, int Cin, int Cout, int K, long T, long d, const float *x, long ld, const float *w, const float *b,
                 float *ob, float *zb, const float *xb) {
    double maxerr = 0;
    if (op == 'f') {
        float *ref = malloc(sizeof(float) * Cout * T);
        for (int o = 0; o < Cout; o++) for (long t = 0; t < T; t++) {
            double s = ob[o * ld + t] + b[o];
            for (int k = 0; k < K; k++) for (int c = 0; c < Cin; c++) s += (double)w[((long)o * K + k) * Cin + c] * x[c * ld + t - (long)(K - 1 - k) * d];
            ref[o * T + t] = (float)s;
        }
        cm_forward(ob, ld, BLK, ob, x, ld, BLK, w, b, T, Cin, Cout, K, d);
        for (int o = 0; o < Cout; o++) for (long t = 0; t < T; t++) maxerr = fmax(maxerr, fabs(ref[o * T + t] - ob[o * ld + t]));
    } else if (op == 'g') {
        int D = Cout / 2;
        float *ref = malloc(sizeof(float) * D * T);
        for (int o = 0; o < D; o++) for (long t = 0; t < T; t++) {
            double a = b[o], g = b[D + o];
            for (int k = 0; k < K; k++) for (int c = 0; c < Cin; c++) {
                double xv = x[c * ld + t - (long)(K - 1 - k) * d];
                a += (double)w[((long)o * K + k) * Cin + c] * xv; g += (double)w[((long)(D + o) * K + k) * Cin + c] * xv;
            }
            ref[o * T + t] = (float)(tanh(a) / (1 + exp(-g)));
        }
        cm_gated(ob, ld, BLK, zb, ld, BLK, x, ld, BLK, w, b, T, Cin, D, K, d);
        for (int o = 0; o < D; o++) for (long t = 0; t < T; t++) maxerr = fmax(maxerr, fabs(ref[o * T + t] - zb[o * ld + t]));
    } else if (op == 'w') {
        double *ref = calloc((long)K * Cin * Cout, sizeof(double));
        for (int o = 0; o < Cout; o++) for (int k = 0; k < K; k++) for (int c = 0; c < Cin; c++)
            for (long t = 0; t < T; t++) ref[((long)o * K + k) * Cin + c] += (double)ob[o * ld + t] * x[c * ld + t - (long)(K - 1 - k) * d];
        float *dw = calloc((long)K * Cin * Cout, 4);
        cm_wgrad(dw, NULL, ob, ld, BLK, x, ld, BLK, T, Cin, Cout, K, d);
        for (long i = 0; i < (long)K * Cin * Cout; i++) maxerr = fmax(maxerr, fabs(ref[i] - dw[i]) / (1 + fabs(ref[i])));
    } else if (op == 'b') {
        const int J = Cin + K, D = Cout;
        for (long i = 0; i < 2L * D * ld; i++) zb[i] = 0.1f + 0.8f * ((i * 37) % 101) / 101.0f;  // gate values in (0, 1)
        float *ref = malloc(sizeof(float) * 2 * D * T);
        for (int o = 0; o < D; o++) for (long t = 0; t < T; t++) {
            double dz = 0;
            for (int c = 0; c < J; c++) dz += (double)w[(long)o * J + c] * xb[c * ld + t];
            double ta = zb[o * ld + t], sg = zb[(D + o) * ld + t];
            ref[o * T + t] = (float)(dz * sg * (1 - ta * ta)); ref[(D + o) * T + t] = (float)(dz * ta * sg * (1 - sg));
        }
        cm_gb(ob, ld, BLK, zb, ld, BLK, xb, BLK, 0, BLK, ld, w, J, 0, 0, T, D);
        for (int o = 0; o < 2 * D; o++) for (long t = 0; t < T; t++) maxerr = fmax(maxerr, fabs(ref[o * T + t] - ob[o * ld + t]));
    }
    printf("check %c %d->%d K%d T%ld d%ld: max error %.3g\n", op, Cin, Cout, K, T, d, maxerr);
    return maxerr < 1e-4 ? 0 : 1;
}
int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: channel_major f|g|w|b CIN COUT K T D [check]\n"); return 2; }
    const char op = argv[1][0];
    const int Cin = atoi(argv[2]), Cout = atoi(argv[3]), K = atoi(argv[4]);
    const long T = atol(argv[5]), d = atol(argv[6]);
    const long pad = ((K - 1) * d + 15) / 16 * 16, ld = pad + T + 16;
    // ld is a multiple of 16 floats: every row starts on a line.
    float *xb = zalloc((long)(Cin + Cout + (op == 'b' ? K : 0)) * ld + 64), *ob = zalloc((long)2 * Cout * ld + 64), *zb = zalloc((long)2 * Cout * ld + 64);
    for (long i = 0; i < (long)(Cin + Cout) * ld; i++) xb[i] = (i % 97) * 0.01f - 0.3f;
    for (long i = 0; i < (long)Cout * ld; i++) ob[i] = (i % 89) * 0.01f - 0.4f;
    float *w = calloc((long)(K + 1) * (Cin + K) * Cout + 64, 4), *b = calloc(Cout + 64, 4), *dw = calloc((long)K * Cin * Cout + 64, 4);
    for (long i = 0; i < (long)(K + 1) * (Cin + K) * Cout; i++) w[i] = (i % 13) * 0.01f;
    const float *x = xb + pad;
    if (argc > 7) return check(op, Cin, Cout, K, T, d, x, ld, w, b, ob, zb, xb);
    const double flops = op == 'b' ? 2.0 * (Cin + K) * Cout * T : 2.0 * K * Cin * Cout * T;
    const long reps = (long)(2e8 / flops) + 1;
    double best = 1e9;
    for (int r = 0; r < 30; r++) {
        double t0 = now();
        for (long i = 0; i < reps; i++) switch (op) {
            case 'f': cm_forward(ob, ld, BLK, ob, x, ld, BLK, w, b, T, Cin, Cout, K, d); break;
            case 'g': cm_gated(ob, ld, BLK, zb, ld, BLK, x, ld, BLK, w, b, T, Cin, Cout / 2, K, d); break;
            case 'w': cm_wgrad(dw, b, ob, ld, BLK, x, ld, BLK, T, Cin, Cout, K, d); break;
            case 'b': cm_gb(ob, ld, BLK, zb, ld, BLK, xb, BLK, 0, BLK, ld, w, Cin + K, 0, 0, T, Cout); break;
            default: return 2;
        }
        double s = (now() - t0) / reps;
        if (s < best) best = s;
    }
    printf("channel-major %c %d->%d K%d T%ld d%ld: %.2f GFLOP/s\n", op, Cin, Cout, K, T, d, flops / best / 1e9);
    return 0;
}
#endif
