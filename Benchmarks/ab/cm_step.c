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
//   head over the window: u = ReLU(Wh s + b), logits = Wo u + b, softmax
//     cross-entropy and its gradient;
//   backward: the head's weight and input gradients, ds through the ReLU,
//     the skip weight gradient over the stacked z's, then layer by layer from
//     the top: dz and the unit's backward (one product over ds and dh_{l+1}),
//     the gated and residual weight gradients, dh_l = dh_{l+1} + Wg_lᵀ ∗ dpre_l.
// Left out (small against the products): the embedding and the input
// convolution, Adam, the bias sums of the layers' gated products; the
// weights are arbitrary (any values time alike), so it checks nothing: each
// kernel is checked against plain loops by `channel_major … check`.
// Prints samples/s and GFLOP/s by the model's MAC count (as `pbtwave bench
// train --R R --S S --H H` counts them), best of ROUNDS steps.
//
//   cc -O2 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -DCM_AVX512 -DCM_NO_MAIN \
//      -I Sources/CKernels/include -I Sources/CKernels Benchmarks/ab/cm_step.c (other CKernels objects) -lm
//   cm_step R S H [T] [ROUNDS] [LAYERS]
// (Benchmarks/ab/cmstep.sh builds and runs it beside `pbtwave bench train`.)
#include "channel_major.c"
#include <string.h>

// zalloc's n floats, filled with arbitrary values.
static float *buf(long n) {
    float *p = zalloc(n);
    for (long i = 0; i < n; i++) p[i] = (float)((i * 37) % 101) * 0.002f - 0.1f;
    return p;
}

// Softmax cross-entropy over V rows (classes) for each of T positions, lanes = time:
// dl = softmax − onehot(target), scaled; returns the summed loss.
static double cm_softmax(float *dl, long ldl, const float *lg, long ldg, const int *target, long T, int V, float scale) {
    double loss = 0;
    for (long t = 0; t < T; t += VL) {
        vec m = vload(lg + t);
        for (int v = 1; v < V; v++) m = vmax(m, vload(lg + v * ldg + t));
        vec s = vzero();
        for (int v = 0; v < V; v++) {
            vec e = vexp(vsub(vload(lg + v * ldg + t), m));
            vstore(dl + v * ldl + t, e);
            s = vadd(s, e);
        }
        const vec r = vmul(vrecip(s), vset1(scale));
        for (int v = 0; v < V; v++) vstore(dl + v * ldl + t, vmul(vload(dl + v * ldl + t), r));
        float ms[VL], ss[VL];
        vstore(ms, m); vstore(ss, s);
        for (int i = 0; i < VL; i++) {
            const int c = target[t + i];
            loss += log(ss[i]) + ms[i] - lg[c * ldg + t + i];
            dl[c * ldl + t + i] -= scale;
        }
    }
    return loss;
}

// y = ReLU(y) over rows × T, and dy *= (y > 0).
static void relu_rows(float *y, long ld, int rows, long T) {
    for (int c = 0; c < rows; c++) for (long t = 0; t < T; t += VL) vstore(y + c * ld + t, vrelu(vload(y + c * ld + t)));
}
static void relu_back(float *dy, const float *y, long ld, int rows, long T) {
    for (int c = 0; c < rows; c++)
        for (long t = 0; t < T; t += VL) vstore(dy + c * ld + t, vpositive(vload(y + c * ld + t), vload(dy + c * ld + t)));
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: cm_step R S H [T] [ROUNDS] [LAYERS]\n"); return 2; }
    const int R = atoi(argv[1]), S = atoi(argv[2]), H = atoi(argv[3]), D = R, V = 256;
    const long T = argc > 4 ? atol(argv[4]) : 8192;
    const int rounds = argc > 5 ? atoi(argv[5]) : 10, L = argc > 6 ? atoi(argv[6]) : 20, TT = 384;
    if (T % (NT * VL)) { fprintf(stderr, "cm_step: T must be a multiple of %d\n", NT * VL); return 2; }
    int dil[4096];
    for (int l = 0; l < L; l++) dil[l] = 1 << (l % 10);
    // Rows of ld floats: 512 zeros before t = 0 (the largest tap reach) and 512 after (the input gradient
    // reads ahead), and an odd number of 64-byte lines in all: rows a multiple of 4 KiB apart all fall in
    // the same L1 sets (the forward ran at 60 GFLOP/s with ld = 9216, every tile's rows evicting each other).
    const long pad = 512, ld = (pad + T + pad) / 32 * 32 + 16;
    // (h, dh and dpre start at zero: their pads are the causal edge's zeros, read by the taps.)
    float *h = zalloc((long)(L + 1) * R * ld), *gate = buf((long)L * 2 * D * ld), *z = buf((long)L * D * ld);
    float *s = buf((long)S * ld), *u = buf((long)H * ld), *lg = buf((long)V * ld), *dl = buf((long)V * ld);
    float *du = buf((long)H * ld), *ds = buf((long)S * ld), *dh = zalloc(2L * R * ld), *dpre = zalloc(2L * D * ld);
    float *wg = buf((long)L * 2 * D * 2 * R), *wgT = buf((long)L * R * 2 * 2 * D), *wr = buf((long)L * R * D), *wrT = buf((long)L * D * R);
    float *wsk = buf((long)S * L * D), *wsT = buf((long)L * D * S), *wh = buf((long)H * S), *whT = buf((long)S * H);
    float *wo = buf((long)V * H), *woT = buf((long)H * V), *b = buf(4096), *zero = calloc(4096, 4);
    float *dw = buf((long)2 * D * 2 * R + (long)S * L * D + (long)V * H + 64);
    int *target = malloc(sizeof(int) * T);
    for (long t = 0; t < T; t++) target[t] = (int)((t * 7919) % V);
    // The input: h_0 (a stand-in for the embedding and input convolution).
    for (int c = 0; c < R; c++) for (long t = 0; t < T; t++) h[c * ld + pad + t] = (float)((c * 31 + t) % 17) * 0.05f - 0.4f;
#define H_(l) (h + (long)(l) * R * ld + pad)
#define G_(l) (gate + (long)(l) * 2 * D * ld + pad)
#define Z_(l) (z + (long)(l) * D * ld + pad)
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
        for (int i = 0; i < P_N; i++) part[i] = 0;
#define LAP(P) do { const double x = now(); part[P] += x - tp; tp = x; } while (0)
        // Forward, tile by tile through all layers.
        for (long ta = 0; ta < T; ta += TT) {
            const long n = T - ta < TT ? T - ta : TT;  // the last tile may be shorter (8192 = 21 · 384 + 128)
            for (int l = 0; l < L; l++) {
                cm_gated(G_(l) + ta, ld, Z_(l) + ta, ld, H_(l) + ta, ld, wg + (long)l * 2 * D * 2 * R, b, n, R, D, 2, dil[l]);
                if (l < L - 1) {
                    for (int c = 0; c < R; c++) memcpy(H_(l + 1) + c * ld + ta, H_(l) + c * ld + ta, n * 4);
                    cm_forward(H_(l + 1) + ta, ld, Z_(l) + ta, ld, wr + (long)l * R * D, b, n, D, R, 1, 0);
                }
            }
            // s = ReLU(Σ_l Ws_l z_l + b): the z rows of all layers stacked (L·D rows, ld apart).
            for (int c = 0; c < S; c++) memset(s + pad + c * ld + ta, 0, n * 4);
            cm_forward(s + pad + ta, ld, Z_(0) + ta, ld, wsk, b, n, L * D, S, 1, 0);
            relu_rows(s + pad + ta, ld, S, n);
        }
        LAP(P_FWD);
        // The head, forward and backward, over the window.
        float *sp = s + pad, *up = u + pad, *lp = lg + pad, *dlp = dl + pad, *dup = du + pad, *dsp = ds + pad;
        for (int c = 0; c < H; c++) memset(up + c * ld, 0, T * 4);
        cm_forward(up, ld, sp, ld, wh, b, T, S, H, 1, 0);
        relu_rows(up, ld, H, T);
        for (int c = 0; c < V; c++) memset(lp + c * ld, 0, T * 4);
        cm_forward(lp, ld, up, ld, wo, b, T, H, V, 1, 0);
        loss = cm_softmax(dlp, ld, lp, ld, target, T, V, 1.0f / T);
        cm_wgrad(dw, b, dlp, ld, up, ld, T, H, V, 1, 0);
        for (int c = 0; c < H; c++) memset(dup + c * ld, 0, T * 4);
        cm_forward(dup, ld, dlp, ld, woT, zero, T, V, H, 1, 0);
        relu_back(dup, up, ld, H, T);
        cm_wgrad(dw, b, dup, ld, sp, ld, T, S, H, 1, 0);
        for (int c = 0; c < S; c++) memset(dsp + c * ld, 0, T * 4);
        cm_forward(dsp, ld, dup, ld, whT, zero, T, H, S, 1, 0);
        relu_back(dsp, sp, ld, S, T);
        LAP(P_HEAD);
        cm_wgrad(dw, b, dsp, ld, Z_(0), ld, T, L * D, S, 1, 0);  // the skip weights of every layer
        LAP(P_SKIPW);
        // The layers, from the top: dh_{l+1} in one slot, dh_l into the other.
        float *dhn = dh + pad, *dhl = dh + R * ld + pad, *dp = dpre + pad;
        for (int c = 0; c < R; c++) memset(dhn + c * ld, 0, T * 4);
        for (int l = L - 1; l >= 0; l--) {
            // dz = Ws_lᵀ ds + Wr_lᵀ dh_{l+1} (weights [D][S] and [D][R]; the top layer has no residual output).
            cm_gb(dp, ld, G_(l), ld, dsp, l < L - 1 ? dhn : 0, ld, wsT + (long)l * D * S, S, wrT + (long)l * D * R, R, T, D);
            LAP(P_GB);
            cm_wgrad(dw, b, dp, ld, H_(l), ld, T, R, 2 * D, 2, dil[l]);
            if (l < L - 1) cm_wgrad(dw, b, dhn, ld, Z_(l), ld, T, D, R, 1, 0);
            LAP(P_W);
            for (int c = 0; c < R; c++) memcpy(dhl + c * ld, dhn + c * ld, T * 4);
            cm_forward(dhl, ld, dp, ld, wgT + (long)l * R * 2 * 2 * D, zero, T, 2 * D, R, 2, -dil[l]);
            LAP(P_IN);
            float *x = dhn; dhn = dhl; dhl = x;
        }
        const double dt = now() - t0;
        if (dt < best) { best = dt; memcpy(bestpart, part, sizeof part); }
    }
    const double macs = (double)L * (2 * R * 2 * D) + (double)(L - 1) * D * R + (double)L * D * S + (double)S * H + (double)H * V;
    printf("channel-major step R%d D%d S%d H%d, %d layers, T%ld: best of %d steps %.2f ms, %.0f samples/s, %.1f GFLOP/s (loss %.3f)\n",
           R, D, S, H, L, T, rounds, best * 1e3, T / best, 6 * macs * T / best / 1e9, loss / T);
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
