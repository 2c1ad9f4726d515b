// What a "flat" tile would cost at a ragged width, on this CPU, against the
// row tiles the kernels use (the README's "Ragged widths"). At 20 output
// channels a row tile spends two 16-lane vectors a row (8 FMAs for 4 rows,
// 62.5 % of their lanes used); a flat tile lays 4 rows end to end in 5 full
// vectors (5 FMAs), but three of those vectors hold two rows each, so their
// broadcast operand must be put together from two broadcasts first: a blend,
// or a masked broadcast. Whether that pays depends on where the blends run.
//
// Each loop does 4 groups of 4 rows × 20 outputs for one input channel, with
// 20 accumulators, the weights in registers and the activations from L1:
//   rows     32 FMAs and 16 broadcasts (the row tiles)
//   blend    20 FMAs, 16 broadcasts and 12 vblendmps (register blends)
//   masked   20 FMAs, 8 broadcasts and 12 merge-masked vbroadcastss
//   fma-only 20 FMAs and 8 broadcasts (the flat tile's FMAs alone: its floor)
// and prints the best time of each loop (of 3 rounds, taken in turn) and the
// row tiles' time over it: every loop does the same outputs' work (16 rows ×
// 20 outputs × one input channel), so that is the flat tile's speed-up
// (fma-only: its ceiling).
//
//   clang -O2 -mavx512f -mfma Benchmarks/micro/flat-lanes.c -o /tmp/flat-lanes && /tmp/flat-lanes
//
// Zen 5 (family 26), 2026-12-03, three runs: rows 4.32–4.38 ns, blend
// 3.61–3.77 ns (1.15–1.20×), masked 5.09–5.30 ns (0.82–0.86×), fma-only
// 3.32–3.41 ns (1.27–1.31×): register blends run mostly beside the FMAs;
// masked broadcasts from memory cost more than the FMAs they save. (So the
// kernels' flat tiles blend registers, written as asm so that the compiler
// keeps them.)
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline __m512 blend(__m512 a, __mmask16 m, __m512 b) {
    __asm__("vblendmps %2, %0, %0 %{%1%}" : "+v"(a) : "Yk"(m), "v"(b));
    return a;
}
static inline __m512 masked_broadcast(__m512 a, __mmask16 m, const float *q) {
    __asm__("vbroadcastss %2, %0 %{%1%}" : "+v"(a) : "Yk"(m), "m"(*q));
    return a;
}

enum { ROWS, BLEND, MASKED, FMA_ONLY, MODES };
static const char *names[MODES] = { "rows", "blend", "masked", "fma-only" };

static inline __attribute__((always_inline)) float loop(long n, int mode, const float *x, const float *w) {
    __m512 acc[20];
    for (int i = 0; i < 20; i++) acc[i] = _mm512_set1_ps(i * 1e-3f);
    const __mmask16 k1 = 0xfff0, k2 = 0xff00, k3 = 0xf000;
    const float *a = x;
    for (long it = 0; it < n; it++) {
        __m512 W[5];
        for (int v = 0; v < 5; v++) W[v] = _mm512_loadu_ps(w + (it & 7) * 80 + v * 16);
#pragma clang loop unroll(full)
        for (int g = 0; g < 4; g++) {
            const float *r = a + g * 4;
            __m512 *c = acc + g * 5;
            if (mode == ROWS) {
                // Row tiles: each row two vectors (the second one 4 lanes of 16 in use).
                for (int i = 0; i < 4; i++) {
                    __m512 b = _mm512_set1_ps(r[i]);
                    c[i] = _mm512_fmadd_ps(b, W[i], c[i]);
                    acc[(g * 5 + i + 10) % 20] = _mm512_fmadd_ps(b, W[(i + 1) % 5], acc[(g * 5 + i + 10) % 20]);
                }
                continue;
            }
            __m512 x0, x1, x2, x3, x4;
            if (mode == BLEND) {
                __m512 b0 = _mm512_set1_ps(r[0]), b1 = _mm512_set1_ps(r[1]), b2 = _mm512_set1_ps(r[2]), b3 = _mm512_set1_ps(r[3]);
                x0 = b0; x1 = blend(b0, k1, b1); x2 = blend(b1, k2, b2); x3 = blend(b2, k3, b3); x4 = b3;
            } else if (mode == MASKED) {
                x0 = _mm512_set1_ps(r[0]);
                x1 = masked_broadcast(_mm512_set1_ps(r[0]), k1, r + 1);
                x2 = masked_broadcast(_mm512_set1_ps(r[1]), k2, r + 2);
                x3 = masked_broadcast(_mm512_set1_ps(r[2]), k3, r + 3);
                x4 = _mm512_set1_ps(r[3]);
            } else {
                x0 = _mm512_set1_ps(r[0]); x1 = _mm512_set1_ps(r[1]); x2 = x1;
                x3 = _mm512_set1_ps(r[2]); x4 = _mm512_set1_ps(r[3]);
            }
            c[0] = _mm512_fmadd_ps(x0, W[0], c[0]);
            c[1] = _mm512_fmadd_ps(x1, W[1], c[1]);
            c[2] = _mm512_fmadd_ps(x2, W[2], c[2]);
            c[3] = _mm512_fmadd_ps(x3, W[3], c[3]);
            c[4] = _mm512_fmadd_ps(x4, W[4], c[4]);
        }
        a += 16;
        if (a >= x + 2048) a = x;
    }
    __m512 s = acc[0];
    for (int i = 1; i < 20; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

// One function per mode, so that each loop compiles to its own code.
__attribute__((noinline)) static float run_rows(long n, const float *x, const float *w) { return loop(n, ROWS, x, w); }
__attribute__((noinline)) static float run_blend(long n, const float *x, const float *w) { return loop(n, BLEND, x, w); }
__attribute__((noinline)) static float run_masked(long n, const float *x, const float *w) { return loop(n, MASKED, x, w); }
__attribute__((noinline)) static float run_fma(long n, const float *x, const float *w) { return loop(n, FMA_ONLY, x, w); }
static float (*const runs[MODES])(long, const float *, const float *) = { run_rows, run_blend, run_masked, run_fma };

int main(void) {
    static float x[4096], w[1024];
    for (int i = 0; i < 4096; i++) x[i] = 1e-4f * (float)(i % 7);
    for (int i = 0; i < 1024; i++) w[i] = 0.9999f;
    const long n = 20000000;
    double best[MODES];
    float sink = 0;
    for (int m = 0; m < MODES; m++) best[m] = 1e30;
    for (int round = 0; round < 3; round++)
        for (int m = 0; m < MODES; m++) {
            double t = now();
            sink += runs[m](n, x, w);
            t = now() - t;
            if (t < best[m]) best[m] = t;
        }
    for (int m = 0; m < MODES; m++)
        printf("%-9s %5.2f ns a loop, rows / this = %.2f\n", names[m], best[m] / n * 1e9, best[ROWS] / best[m]);
    printf("(checksum %g)\n", sink);
    return 0;
}
