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
// convolution, Adam, the bias sums of the layers' gated products; the
// weights are arbitrary (any values time alike), so it checks nothing: each
// kernel is checked against plain loops by `channel_major … check`, and the
// two layouts must print the same loss and gradient digest.
// Layouts: `rows` (every activation a row of the whole window a channel), or
// `blocked`: every tensor in blocks of BLK positions, all of a block's
// channels in one run (each run padded by BLOCK_PAD floats, 16 by default);
// h and dpre, read at t ∓ d, with blocks of zeros before and after. The backward pass runs in time tiles of BACKWARD_TILE positions
// (1024), from the last, each through the head and all layers (as the
// model's does), the weight gradients' partial sums kept across tiles.
// Prints samples/s and GFLOP/s by the model's MAC count (as `pbtwave bench
// train --R R --S S --H H` counts them), best of ROUNDS steps.
//
//   cc -O2 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -DCM_AVX512 -DCM_NO_MAIN \
//      -I Sources/CKernels/include -I Sources/CKernels Benchmarks/ab/cm_step.c (other CKernels objects) -lm
//   cm_step R S H [T] [ROUNDS] [LAYERS] [rows|blocked] [BACKWARD_TILE] [BLOCK_PAD]
// (Benchmarks/ab/cmstep.sh builds and runs it beside `pbtwave bench train`.)
#include "channel_major.c"
#include <string.h>

// zalloc's n floats, filled with arbitrary values.
static float *buf(long n) {
    float *p = zalloc(n);
    for (long i = 0; i < n; i++) p[i] = (float)((i * 37) % 101) * 0.002f - 0.1f;
    return p;
}

// A tensor of C channels over the window: (c, t) at p + c·cs + (t / BLK)·bs + t % BLK
// (channel_major.c's layouts: rows, cs = their length and bs = BLK; or blocked, cs = BLK, bs = C·BLK).
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

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: cm_step R S H [T] [ROUNDS] [LAYERS] [rows|blocked] [BACKWARD_TILE] [BLOCK_PAD]\n"); return 2; }
    const int R = atoi(argv[1]), S = atoi(argv[2]), H = atoi(argv[3]), D = R, V = 256;
    const long T = argc > 4 ? atol(argv[4]) : 8192;
    const int rounds = argc > 5 ? atoi(argv[5]) : 10, L = argc > 6 ? atoi(argv[6]) : 20, TT = 384;
    const int blocked = argc > 7 && !strcmp(argv[7], "blocked");
    const long BPAD = argc > 9 ? atol(argv[9]) : 16;
    if (T % (NT * VL)) { fprintf(stderr, "cm_step: T must be a multiple of %d\n", NT * VL); return 2; }
    int dil[4096];
    for (int l = 0; l < L; l++) dil[l] = 1 << (l % 10);
    // Rows of ld floats: 512 zeros before t = 0 (the largest tap reach) and 512 after (the input gradient
    // reads ahead), and an odd number of 64-byte lines in all: rows a multiple of 4 KiB apart all fall in
    // the same L1 sets (the forward ran at 60 GFLOP/s with ld = 9216, every tile's rows evicting each other).
    const long pad = 512, ld = (pad + T + pad) / 32 * 32 + 16;
    // (h, dh and dpre start at zero: their pads are the causal edge's zeros, read by the taps.)
    // h and dpre (read at t ∓ d): rows, or blocks with pad blocks of zeros before and after.
    const long PB = pad / BLK;
    const long hcs = blocked ? BLK : ld, hbs = blocked ? (long)R * BLK + BPAD : BLK, HS = blocked ? (T / BLK + 2 * PB) * hbs : R * ld;
    const long pcs = blocked ? BLK : ld, pbs = blocked ? 2L * D * BLK + BPAD : BLK, PS = blocked ? (T / BLK + 2 * PB) * pbs : 2 * D * ld;
    float *h = zalloc((long)(L + 1) * HS), *gate = buf((long)L * 2 * D * ld), *z = buf((long)L * D * ld);
    float *s = buf((long)S * ld), *u = buf((long)H * ld), *lg = buf((long)V * ld), *dl = buf((long)V * ld);
    float *du = buf((long)H * ld), *ds = buf((long)S * ld), *dh = zalloc(2L * R * ld), *dpre = zalloc((long)L * PS);
    float *wg = buf((long)L * 2 * D * 2 * R), *wgT = buf((long)L * R * 2 * 2 * D), *wr = buf((long)L * R * D), *wrT = buf((long)L * D * R);
    float *wsk = buf((long)S * L * D), *wsT = buf((long)L * D * S), *wh = buf((long)H * S), *whT = buf((long)S * H);
    float *wo = buf((long)V * H), *woT = buf((long)H * V), *b = buf(4096), *zero = calloc(4096, 4);
    const long ndw = (long)2 * D * 2 * R + (long)S * L * D + (long)V * H + 64;
    float *dw = buf(ndw), *db = buf(4096);  // the bias sums' own sink: b stays the forward's
    int *target = malloc(sizeof(int) * T);
    for (long t = 0; t < T; t++) target[t] = (int)((t * 7919) % V);
    // The gate rows and z (read without a shift) channel-major, or blocked: each block of BLK
    // positions holds a layer's 2D gate channels (all layers' D z channels, stacked) in one run.
    // A block's run is padded by BPAD floats: at a multiple of 16 channels, runs 4 KiB apart
    // fall in the same L1 sets (as rows did, above).
    const long gcs = blocked ? BLK : ld, gbs = blocked ? 2L * D * BLK + BPAD : BLK;
    const long zcs = blocked ? BLK : ld, zbs = blocked ? (long)L * D * BLK + BPAD : BLK;
#define H_(l) (h + (long)(l) * HS + (blocked ? PB * hbs : pad))
#define DP_(l) (dpre + (long)(l) * PS + (blocked ? PB * pbs : pad))
#define G_(l) (gate + (long)(l) * 2 * D * ld + (blocked ? 0 : pad))
#define Z_(l) (z + (blocked ? (long)(l) * D * BLK : (long)(l) * D * ld + pad))
#define AT(p, bs, t) ((p) + (t) / BLK * (bs) + (t) % BLK)
    // The head's tensors and dh (no shifted reads either): rows, or blocks.
#define TENSOR(p, C) (blocked ? (tensor){ (p), BLK, (long)(C) * BLK + BPAD, (C) } : (tensor){ (p) + pad, ld, BLK, (C) })
    const tensor ts = TENSOR(s, S), tu = TENSOR(u, H), tlg = TENSOR(lg, V), tdl = TENSOR(dl, V), tdu = TENSOR(du, H), tds = TENSOR(ds, S);
    const tensor tdh0 = TENSOR(dh, R), tdh1 = TENSOR(dh + R * ld, R);
    // The input: h_0 (a stand-in for the embedding and input convolution).
    const tensor th0 = { H_(0), hcs, hbs, R };
    for (int c = 0; c < R; c++) for (long t = 0; t < T; t++) *at(th0, c, t) = (float)((c * 31 + t) % 17) * 0.05f - 0.4f;
    // The backward pass's tiles (TB positions) and the weight gradients' partial sums.
    const long TB = argc > 8 ? atol(argv[8]) : 1024;
    if (TB % (NT * VL)) { fprintf(stderr, "cm_step: the backward tile must be a multiple of %d\n", NT * VL); return 2; }
    vec *part_o = aligned_alloc(64, sizeof(vec) * H * V), *part_h = aligned_alloc(64, sizeof(vec) * S * H);
    vec *part_s = aligned_alloc(64, sizeof(vec) * L * D * S), *part_g = aligned_alloc(64, sizeof(vec) * L * 2 * R * 2 * D);
    vec *part_r = aligned_alloc(64, sizeof(vec) * L * D * R);
    double best = 1e9, loss = 0;
    // Seconds of each part in the best step: forward, head, skip weight gradient, gated backward
    // products, weight gradients, input gradients (copies and ReLUs with the product they serve).
    enum { P_FWD, P_HEAD, P_SKIPW, P_GB, P_W, P_IN, P_N };
    static const char *names[P_N] = { "forward", "head", "skip weight gradient", "gated backward products",
                                      "layer weight gradients", "input gradients" };
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
                cm_gated(AT(G_(l), gbs, ta), gcs, gbs, AT(Z_(l), zbs, ta), zcs, zbs, AT(H_(l), hbs, ta), hcs, hbs, wg + (long)l * 2 * D * 2 * R, b, n, R, D, 2, dil[l]);
                if (l < L - 1) {
                    cm_forward(AT(H_(l + 1), hbs, ta), hcs, hbs, AT(H_(l), hbs, ta), AT(Z_(l), zbs, ta), zcs, zbs, wr + (long)l * R * D, b, n, D, R, 1, 0);
                }
            }
            // s = ReLU(Σ_l Ws_l z_l + b): the z rows of all layers stacked (L·D channels).
            cm_forward(at(ts, 0, ta), ts.cs, ts.bs, 0, AT(Z_(0), zbs, ta), zcs, zbs, wsk, b, n, L * D, S, 1, 0);
            trelu(ts, ta, n);
        }
        LAP(P_FWD);
        // The backward pass in time tiles of TB positions, from the last tile to the first (as the
        // model's wavefront runs it), each tile through the head and every layer from the top, so that
        // a tile's rows stay in L2; the weight gradients' partial sums kept from tile to tile. A
        // layer's input gradient reads dpre_l at t + d, rows of this tile or of later ones, which
        // came before: dpre is kept for every layer.
        for (long ta = (T - 1) / TB * TB; ta >= 0; ta -= TB) {
            const long n = T - ta < TB ? T - ta : TB;
            const int first = ta + TB >= T;
            cm_forward(at(tu, 0, ta), tu.cs, tu.bs, 0, at(ts, 0, ta), ts.cs, ts.bs, wh, b, n, S, H, 1, 0);
            trelu(tu, ta, n);
            cm_forward(at(tlg, 0, ta), tlg.cs, tlg.bs, 0, at(tu, 0, ta), tu.cs, tu.bs, wo, b, n, H, V, 1, 0);
            loss += cm_softmax(tdl, tlg, target, ta, n, 1.0f / T);
            cm_wgrad_into(part_o, first, db, at(tdl, 0, ta), tdl.cs, tdl.bs, at(tu, 0, ta), tu.cs, tu.bs, n, H, V, 1, 0);
            cm_forward(at(tdu, 0, ta), tdu.cs, tdu.bs, 0, at(tdl, 0, ta), tdl.cs, tdl.bs, woT, zero, n, V, H, 1, 0);
            trelu_back(tdu, tu, ta, n);
            cm_wgrad_into(part_h, first, db, at(tdu, 0, ta), tdu.cs, tdu.bs, at(ts, 0, ta), ts.cs, ts.bs, n, S, H, 1, 0);
            cm_forward(at(tds, 0, ta), tds.cs, tds.bs, 0, at(tdu, 0, ta), tdu.cs, tdu.bs, whT, zero, n, H, S, 1, 0);
            trelu_back(tds, ts, ta, n);
            LAP(P_HEAD);
            // The skip weights of every layer, over the stacked z.
            cm_wgrad_into(part_s, first, db, at(tds, 0, ta), tds.cs, tds.bs, AT(Z_(0), zbs, ta), zcs, zbs, n, L * D, S, 1, 0);
            LAP(P_SKIPW);
            // The layers, from the top: dh_{l+1} in one slot, dh_l into the other.
            tensor dhn = tdh0, dhl = tdh1;
            tzero(dhn, ta, n);
            for (int l = L - 1; l >= 0; l--) {
                // dz = Ws_lᵀ ds + Wr_lᵀ dh_{l+1} (weights [D][S] and [D][R]; the top layer has no residual output).
                cm_gb(AT(DP_(l), pbs, ta), pcs, pbs, AT(G_(l), gbs, ta), gcs, gbs, at(tds, 0, ta), tds.bs, l < L - 1 ? at(dhn, 0, ta) : 0, dhn.bs,
                      tds.cs, wsT + (long)l * D * S, S, wrT + (long)l * D * R, R, n, D);
                LAP(P_GB);
                cm_wgrad_into(part_g + (long)l * 2 * R * 2 * D, first, db, AT(DP_(l), pbs, ta), pcs, pbs, AT(H_(l), hbs, ta), hcs, hbs, n, R, 2 * D, 2, dil[l]);
                if (l < L - 1)
                    cm_wgrad_into(part_r + (long)l * D * R, first, db, at(dhn, 0, ta), dhn.cs, dhn.bs, AT(Z_(l), zbs, ta), zcs, zbs, n, D, R, 1, 0);
                LAP(P_W);
                cm_forward(at(dhl, 0, ta), dhl.cs, dhl.bs, at(dhn, 0, ta), AT(DP_(l), pbs, ta), pcs, pbs, wgT + (long)l * R * 2 * 2 * D, zero,
                           n, 2 * D, R, 2, -dil[l]);
                LAP(P_IN);
                const tensor x = dhn; dhn = dhl; dhl = x;
            }
        }
        cm_wgrad_reduce(dw, part_o, (long)H * V);
        cm_wgrad_reduce(dw, part_h, (long)S * H);
        LAP(P_HEAD);
        cm_wgrad_reduce(dw, part_s, (long)L * D * S);
        LAP(P_SKIPW);
        for (int l = 0; l < L; l++) {  // (every layer's into the same dw: the mock keeps no per-layer weights)
            cm_wgrad_reduce(dw, part_g + (long)l * 2 * R * 2 * D, 2L * R * 2 * D);
            if (l < L - 1) cm_wgrad_reduce(dw, part_r + (long)l * D * R, (long)D * R);
        }
        LAP(P_W);
        const double dt = now() - t0;
        if (dt < best) { best = dt; memcpy(bestpart, part, sizeof part); }
    }
    const double macs = (double)L * (2 * R * 2 * D) + (double)(L - 1) * D * R + (double)L * D * S + (double)S * H + (double)H * V;
    // A digest of the weight gradients (summed over the rounds, weighted by position), so that two
    // layouts' backward passes can be compared: they must agree to rounding.
    double digest = 0;
    for (long i = 0; i < ndw; i++) digest += dw[i] * (double)(i % 7 + 1);
    for (long i = 0; i < 4096; i++) digest += db[i] * (double)(i % 5 + 1);
    printf("channel-major step R%d D%d S%d H%d, %d layers, T%ld: best of %d steps %.2f ms, %.0f samples/s, %.1f GFLOP/s (loss %.3f, gradient digest %.6g)\n",
           R, D, S, H, L, T, rounds, best * 1e3, T / best, 6 * macs * T / best / 1e9, loss / T, digest);
    // Each part's MACs a sample (forward: layers and skip; head: its three products twice over, forward and
    // input gradient, plus its weight gradients; input gradients: the dilated convolutions').
    const double fl[P_N] = { L * (2.0 * R * 2 * D) + (L - 1.0) * D * R + (double)L * D * S, 3.0 * ((double)S * H + (double)H * V),
                             (double)L * D * S, (L - 1.0) * R * D + (double)L * S * D, L * (2.0 * R * 2 * D) + (L - 1.0) * D * R,
                             L * (2.0 * R * 2 * D) };
    for (int i = 0; i < P_N; i++)
        printf("  %-24s %6.2f ms  %5.1f %%  %6.1f GFLOP/s\n", names[i], bestpart[i] * 1e3, 100 * bestpart[i] / best,
               2 * fl[i] * T / bestpart[i] / 1e9);
    return 0;
}
