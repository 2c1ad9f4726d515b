// What both mock steps (cm_step.c, b8_step.c) share: their arbitrary weights and what they print.
#include <stdio.h>
#include <stdlib.h>

// n floats on 64-byte lines, filled with arbitrary values (the same in both mocks, so that they compute
// the same step).
static float *buf(long n) {
    float *p = aligned_alloc(64, (n * 4 + 63) / 64 * 64);
    for (long i = 0; i < n; i++) p[i] = (float)((i * 37) % 101) * 0.002f - 0.1f;
    return p;
}

// The parts of a step the mocks time.
enum { P_FWD, P_HEAD, P_SKIPW, P_GB, P_W, P_IN, P_SOFT, P_N };

// The best step's samples/s and GFLOP/s by the model's MAC count (as `pbtwave bench train --R R --S S
// --H H` counts them), the loss and a digest of the weight gradients (summed over the rounds, weighted
// by position, so that two layouts' backward passes can be compared: they must agree to rounding), then
// each part's time and GFLOP/s.
static void step_report(const char *layout, int R, int D, int S, int H, int V, int L, long T, int rounds, double best,
                        double loss, const float *dw, long ndw, const float *db, long ndb, const double *bestpart) {
    static const char *const names[P_N] = { "forward", "head", "skip weight gradient", "gated backward products",
                                            "layer weight gradients", "input gradients", "softmax" };
    const double macs = (double)L * (2 * R * 2 * D) + (double)(L - 1) * D * R + (double)L * D * S + (double)S * H + (double)H * V;
    double digest = 0;
    for (long i = 0; i < ndw; i++) digest += dw[i] * (double)(i % 7 + 1);
    for (long i = 0; i < ndb; i++) digest += db[i] * (double)(i % 5 + 1);
    printf("%s step R%d D%d S%d H%d, %d layers, T%ld: best of %d steps %.2f ms, %.0f samples/s, %.1f GFLOP/s (loss %.3f, gradient digest %.6g)\n",
           layout, R, D, S, H, L, T, rounds, best * 1e3, T / best, 6 * macs * T / best / 1e9, loss / T, digest);
    // Each part's MACs a sample (forward: layers and skip; head: its three products twice over, forward and
    // input gradient, plus its weight gradients; input gradients: the dilated convolutions').
    const double fl[P_N] = { L * (2.0 * R * 2 * D) + (L - 1.0) * D * R + (double)L * D * S, 3.0 * ((double)S * H + (double)H * V),
                             (double)L * D * S, (L - 1.0) * R * D + (double)L * S * D, L * (2.0 * R * 2 * D) + (L - 1.0) * D * R,
                             L * (2.0 * R * 2 * D), 0 };
    for (int i = 0; i < P_N; i++) {
        printf("  %-24s %6.2f ms  %5.1f %%", names[i], bestpart[i] * 1e3, 100 * bestpart[i] / best);
        if (fl[i] > 0) printf("  %6.1f GFLOP/s", 2 * fl[i] * T / bestpart[i] / 1e9);
        printf("\n");
    }
}
