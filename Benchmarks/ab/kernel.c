// One kernel of CPBTWaveKernels alone, its operands warm in cache: the driver of
// Benchmarks/ab/kernel.sh. Prints the best GFLOP/s of 30 repetitions of
// about 0.2 GFLOP each, so that a busy spell of the host costs only rounds.
//
//   kernel OP CIN COUT K T D [NODB]
//   OP: f forward, g gated forward (COUT = 2D), i input gradient,
//       z the gated forward as a training step calls it: 20 layers' gate
//         rows in turn (T × 2D each) and z into the stacked rows (20·D
//         floats apart, the model's layout before 198ff2f), all larger
//         than the caches; Z the same with each layer's z in rows of its
//         own (D apart, as the model keeps them since),
//       w weight gradient (NODB: without the bias sums),
//       b the gated backward product (CIN = S, COUT = D, K = R; the skip
//         weight's rows 20·D wide, as in a 20-layer model);
//       the same with bf16 operands, as a bf16 training step calls them:
//       F, G (writing z and the slopes in bf16 only), I, B (reading the
//       slopes, writing dpre in bf16 only), and V (the weight gradient on
//       bf16 rows; W: on fp32 rows, rounding them itself);
//       s the softmax cross-entropy with its gradient (COUT classes, T rows),
//       c the column sums of the weight gradients' bias (COUT columns, T
//       rows): these two print G elements/s (rows × columns) instead
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "CPBTWaveKernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: kernel f|g|z|Z|i|w|b|F|G|I|B|V|W|s|c CIN COUT K T D [NODB]\n"); return 2; }
    const char op = argv[1][0];
    const int Cin = atoi(argv[2]), Cout = atoi(argv[3]), K = atoi(argv[4]);
    const long T = atol(argv[5]), d = atol(argv[6]);
    const int nodb = argc > 7;
    const ck_kernels *k = ck_kernels_for(ck_best_isa());
    const long N = T + 2048;
    // inp: the input rows and the gated z; for op b: dskip, dres, gate and dpre.
    const long width = op == 'b' ? Cin + K + 4L * Cout : Cin + Cout;
    float *inp = calloc(N * (width + 64), 4), *out = calloc(N * (Cout + 64), 4);
    float *dw = calloc((long)K * Cin * Cout + 64, 4), *db = calloc(Cout + 64, 4);
    for (long i = 0; i < N * Cin; i++) inp[i] = (i % 97) * 0.01f - 0.3f;
    for (long i = 0; i < N * Cout; i++) out[i] = (i % 89) * 0.01f - 0.4f;
    const long np = ck_packed_forward_count(K, Cin, Cout, op == 'g' || op == 'z' || op == 'Z' ? 2 : 1);
    float *wp = calloc(np + ck_packed_backward_count(K, Cin, Cout) + 64, 4);
    for (long i = 0; i < np; i++) wp[i] = (i % 13) * 0.01f;
    // Op b: the skip weight (rows 20·D wide) and the residual weight, packed for the backward.
    const long ldws = (20L * Cout + 15) / 16 * 16, ldwr = (Cout + 15) / 16 * 16;
    float *wb = 0;
    if (op == 'b') {
        wb = calloc((long)Cin * ldws + (long)K * ldwr + 64, 4);
        for (long i = 0; i < (long)Cin * ldws + (long)K * ldwr; i++) wb[i] = (i % 11) * 0.01f;
        for (long i = 0; i < N * (Cin + K + 2L * Cout); i++) inp[i] = (i % 97) * 0.01f - 0.3f;
    }
    // bf16 operands: rows of 2·(the widest) bf16 values, all 0.01 (any values time alike).
    const long W16 = 4L * (Cin + K + 2L * Cout + 2) + 64;
    unsigned short *a16 = malloc(N * W16 * 2), *b16 = malloc(N * W16 * 2), *c16 = malloc(N * W16 * 2);
    for (long i = 0; i < N * W16; i++) a16[i] = b16[i] = c16[i] = ck_bf16_from_float(0.01f);
    unsigned *w16 = malloc(((long)np + (long)(Cin + K + 1) * ldws + 4096) * 8);
    for (long i = 0; i < (long)np + (long)(Cin + K + 1) * ldws + 4096; i++) w16[i] = 0x3c233c23u;
    const long e = (Cin + 1) / 2 * 2, f = (Cout + 1) / 2 * 2;  // even strides of the bf16 rows
    const int elementwise = op == 's' || op == 'c';
    const double flops = elementwise ? (double)Cout * T : 2.0 * (op == 'b' || op == 'B' ? Cin + K : (double)K * Cin) * Cout * T;
    // Ops z and Z: 20 layers' gate rows and z (stacked, or a block of rows per layer).
    const int layered = op == 'z' || op == 'Z';
    float *lgate = layered ? calloc(20L * N * Cout, 4) : 0, *lz = layered ? calloc(10L * N * Cout + 64, 4) : 0;
    int layer = 0;
    int *targets = malloc(N * sizeof(int));
    for (long i = 0; i < N; i++) targets[i] = (int)((i * 7919) % Cout);
    const long reps = (long)((elementwise ? 2e7 : 2e8) / flops) + 1;
    double best = 1e9;
    for (int r = 0; r < 30; r++) {
        double t0 = now();
        for (long i = 0; i < reps; i++) switch (op) {
            case 'w': k->conv_backward_weight(dw, nodb ? NULL : db, out, Cout, inp, Cin, 0, T, Cin, Cout, K, d); break;
            case 'W': k->conv_backward_weight_bf16(dw, nodb ? NULL : db, out, NULL, Cout, inp, NULL, Cin, 0, T, Cin, Cout, K, d); break;
            case 'f': k->conv_forward(out, Cout, out, Cout, inp, Cin, wp, 0, T, Cin, Cout, K, d, 0); break;
            case 'g': k->conv_gated_forward(out, Cout, inp + N * Cin, Cout / 2, inp, Cin, wp, 0, T, Cin, Cout / 2, K, d); break;
            case 'z': case 'Z': {
                const long D = Cout / 2;
                float *z = op == 'z' ? lz + layer * D : lz + layer * N * D;
                k->conv_gated_forward(lgate + layer * N * Cout, Cout, z, op == 'z' ? 20 * D : D, inp, Cin, wp, 0, T, Cin, (int)D, K, d);
                layer = (layer + 1) % 20;
                break;
            }
            case 'b': {
                float *dres = inp + N * Cin, *gate = dres + N * K, *dpre = gate + N * 2 * Cout;
                k->gated_backward_product(dpre, 2 * Cout, gate, 2 * Cout, inp, Cin, wb, ldws, Cin,
                                          dres, K, wb + (long)Cin * ldws, ldwr, K, 0, T, Cout);
                break;
            }
            case 'i': k->conv_backward_input(inp, Cin, 0, out, Cout, wp, 0, T, T, Cin, Cout, K, d); break;
            case 'F': k->conv_forward_bf16(out, Cout, out, Cout, a16, e, (const float *)w16, 0, T, Cin, Cout, K, d, 0, b16, f); break;
            case 'G': k->conv_gated_forward_bf16(out, Cout, NULL, 0, a16, e, (const float *)w16, 0, T, Cin, Cout / 2, K, d,
                                                 b16, f, c16, f); break;
            case 'I': k->conv_backward_input_bf16(inp, Cin, 0, a16, f, (const float *)w16, 0, T, T, Cin, Cout, K, d, b16, e, 0, 0); break;
            case 'B': k->gated_backward_product_bf16(NULL, 0, NULL, 0, a16, e, (const float *)w16, ldws, Cin,
                                                     b16, (K + 1) / 2 * 2, (const float *)w16 + (long)Cin * ldws, ldwr, K,
                                                     0, T, Cout, c16, 2 * Cout, c16 + N * 2 * Cout, 2 * Cout); break;
            case 's': k->softmax_xent(inp, Cout, out, Cout, NULL, targets, T, Cout, 1e-4f, NULL, 0); break;
            case 'c': k->column_sums(db, out, Cout, T, Cout); break;
            case 'V': k->conv_backward_weight_bf16(dw, nodb ? NULL : db, NULL, a16, f, NULL, b16, e, 0, T, Cin, Cout, K, d); break;
            default: fprintf(stderr, "kernel: unknown operation %c\n", op); return 2;
        }
        double s = (now() - t0) / reps;
        if (s < best) best = s;
    }
    printf("%s %c %d->%d K%d T%ld d%ld: %.2f %s\n", k->name, op, Cin, Cout, K, T, d, flops / best / 1e9,
           elementwise ? "G elements/s" : "GFLOP/s");
    return 0;
}
