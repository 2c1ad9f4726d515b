// CPBTWaveKernels: WaveNet's hot kernels in C, one variant per instruction set,
// chosen at run time from CPUID.
//
// Notation (every kernel in this module):
//   T        time steps (rows) of one sequence; a call computes rows [t0, t1)
//   C, Cin, Cout  channels (columns)
//   x        an activation, (T, C) row-major: row t starts at x + t*ldx
//            (ldx >= C), so one time step's channels are contiguous
//   K, d     taps and dilation of a causal convolution; tap k looks back
//            s_k = (K-1-k)*d rows, tap K-1 is the present
//   W        a convolution weight, (K, Cout, Cin) row-major: tap k is the
//            (Cout, Cin) matrix W_k (a 1x1 convolution, or dense layer, has K = 1)
//   D        gated channels: a gated convolution has Cout = 2D, outputs
//            [a | g] and the unit tanh(a)·sigmoid(g)
// Rows outside the sequence are zero (causal zero padding): row t - s_k < 0
// in the forward pass, row t + s_k >= T in the input gradient.
//
// The convolution kernels read their weights "packed" (see ck_pack_*): the
// packing copies each tap's matrix into the order the kernels stream it,
// padded to whole vectors, once per weight update. Every kernel works on a
// range of rows, so threads can split the time axis among them.
//
// The kernels are reached through a table (ck_kernels) of one variant:
// ck_kernels_for(CK_AVX512 | CK_AVX2 | CK_GENERIC). The inline wrappers at the
// end of this header take the table as their first argument, so a caller can
// run two variants side by side (tests do). None allocates.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction-set variants. Higher values need more of the CPU.
///
/// Mixed precision (bf16 operands, fp32 accumulation) is one more set of
/// entries in every table (the *_bf16 kernels below), written once in the
/// template: the weights packed as words of two bf16 along the reduction
/// dimension (ck_pack_*_bf16), the activations as bf16 rows, and each
/// multiply-add of two channel pairs done by vdpbf16ps where the CPU has
/// AVX512_BF16 (CK_AVX512_BF16), else by an emulation in fp32 that rounds the
/// same way (the portable twin, bit for bit equal; see vdot2 in the template).
/// Only the products' operands are bf16: outputs, epilogues (bias, add, ReLU,
/// the gated unit and its backward) and the weight gradient stay fp32. The
/// weight gradient reduces over time, so bf16 pairs would have to run along
/// time (two consecutive rows interleaved), a layout no other kernel reads;
/// it stays fp32 on the fp32 activations, which WaveNet keeps anyway.
/// Which tensors WaveNet stores in bf16 between layers: see PBTWaveTensor's
/// DocC ("Mixed precision").
typedef enum ck_isa {
    CK_GENERIC = 0,  // portable C (compiler vector extensions): any CPU
    CK_AVX2 = 1,     // x86-64 with AVX2 and FMA (8-lane vectors)
    CK_AVX512 = 2,   // x86-64 with AVX-512 F/BW/DQ/VL (16-lane vectors, masks)
    CK_AVX512_BF16 = 3,  // CK_AVX512 plus AVX512_BF16: the bf16 products run on vdpbf16ps
    CK_AVX512_256 = 4,   // x86-64 with AVX-512: CK_AVX2's kernels on 32 registers (8-lane vectors)
} ck_isa;

/// bf16 as stored: the upper 16 bits of an fp32.
typedef unsigned short ck_bf16;

/// x rounded to bf16 as vcvtneps2bf16 does: to nearest, ties to even; NaN
/// stays a (quiet) NaN; an fp32 subnormal becomes a zero of its sign.
static inline ck_bf16 ck_bf16_from_float(float x) {
    union { float f; unsigned u; } v = { x };
    unsigned b = v.u;
    if ((b & 0x7fffffffu) > 0x7f800000u) return (ck_bf16)((b >> 16) | 0x40u);
    if ((b & 0x7f800000u) == 0) b &= 0x80000000u;
    b += 0x7fffu + ((b >> 16) & 1u);
    return (ck_bf16)(b >> 16);
}

/// The fp32 value of a bf16 (exact).
static inline float ck_float_from_bf16(ck_bf16 h) {
    union { unsigned u; float f; } v = { (unsigned)h << 16 };
    return v.f;
}

/// The widest output padding any variant needs: packed weights pad their
/// vector dimension to a multiple of this many floats.
#define CK_PAD 16

/// The kernels of one variant. Call them through the ck_* wrappers below.
typedef struct ck_kernels {
    ck_isa isa;
    const char *name;
    int lanes;  // floats per vector register

    void (*conv_forward)(float *out, long ldo, const float *add, long lda,
                         const float *inp, long ldi, const float *wpacked,
                         long t0, long t1, int Cin, int Cout, int K, long d, int relu);
    void (*conv_gated_forward)(float *gate, long ldg, float *z, long ldz,
                               const float *inp, long ldi, const float *wpacked,
                               long t0, long t1, int Cin, int D, int K, long d);
    void (*conv_backward_input)(float *dinp, long lddi, int accumulate,
                                const float *dout, long lddo, const float *wpacked,
                                long t0, long t1, long T, int Cin, int Cout, int K, long d);
    void (*conv_backward_weight)(float *dweight, float *dbias,
                                 const float *dout, long lddo, const float *inp, long ldi,
                                 long t0, long t1, int Cin, int Cout, int K, long d);
    void (*conv_backward_weight_bf16)(float *dweight, float *dbias,
                                      const float *dout, const ck_bf16 *dout16, long lddo,
                                      const float *inp, const ck_bf16 *inp16, long ldi,
                                      long t0, long t1, int Cin, int Cout, int K, long d);
    void (*gated_backward_product)(float *dpre, long lddp, const float *gate, long ldg,
                                   const float *dskip, long ldds, const float *ws, long ldws, int S,
                                   const float *dres, long lddr, const float *wr, long ldwr, int R,
                                   long t0, long t1, int D);
    // The bf16 products: as their fp32 namesakes, with bf16 activations
    // (inp, dout, dskip, dres: rows of ck_bf16, strides in ck_bf16) and
    // bf16-packed weights. bf16_native: whether they run on vdpbf16ps.
    // Each also writes its fp32 output rounded to bf16 (as round_bf16 would)
    // into out16 / z16 / dpre16 (rows ld… apart) unless that is NULL, so that
    // the next product's bf16 operand needs no pass of its own.
    int bf16_native;
    void (*conv_forward_bf16)(float *out, long ldo, const float *add, long lda,
                              const ck_bf16 *inp, long ldi, const float *wpacked,
                              long t0, long t1, int Cin, int Cout, int K, long d, int relu,
                              ck_bf16 *out16, long ldo16);
    void (*conv_gated_forward_bf16)(float *gate, long ldg, float *z, long ldz,
                                    const ck_bf16 *inp, long ldi, const float *wpacked,
                                    long t0, long t1, int Cin, int D, int K, long d,
                                    ck_bf16 *z16, long ldz16, ck_bf16 *s16, long lds16);
    void (*conv_backward_input_bf16)(float *dinp, long lddi, int accumulate,
                                     const ck_bf16 *dout, long lddo, const float *wpacked,
                                     long t0, long t1, long T, int Cin, int Cout, int K, long d,
                                     ck_bf16 *dinp16, long lddi16, const ck_bf16 *relu_y, long ldy);
    void (*gated_backward_product_bf16)(float *dpre, long lddp, const float *gate, long ldg,
                                        const ck_bf16 *dskip, long ldds, const float *ws, long ldws, int S,
                                        const ck_bf16 *dres, long lddr, const float *wr, long ldwr, int R,
                                        long t0, long t1, int D, ck_bf16 *dpre16, long lddp16,
                                        const ck_bf16 *s16, long lds16);
    void (*round_bf16)(ck_bf16 *out, long ldo, const float *inp, long ldi, long rows, int C);
    void (*gated_pointwise_forward)(float *gate, long ldg, float *z, long ldz,
                                    const float *pre, long ldp, const float *bias,
                                    long rows, int D);
    void (*gated_backward)(float *dpre, long lddp, const float *dz, long lddz,
                           const float *gate, long ldg, long rows, int D);
    void (*column_sums)(float *sums, const float *x, long ldx, long rows, int C);
    void (*bias_relu)(float *out, long ldo, const float *inp, long ldi,
                      const float *bias, long rows, int C);
    void (*relu_backward)(float *dx, long lddx, const float *dy, long lddy,
                          const float *y, long ldy, long rows, int C);
    double (*softmax_xent)(float *dlogits, long lddl, const float *logits, long ldl,
                           const float *bias, const int *targets, long rows, int V, float scale,
                           unsigned short *dlogits16, long lddl16);
    void (*matvec)(float *y, const float *wt, long ldw, const float *x, const float *bias,
                   int rows, int cols, int accumulate);
    void (*adam)(float *params, float *m, float *v, const float *grads, long n,
                 float lr, float beta1, float beta2, float eps, float c1, float c2);
    void (*vexp)(float *out, const float *inp, long n);
    void (*vtanh)(float *out, const float *inp, long n);
    void (*vsigmoid)(float *out, const float *inp, long n);
    float (*fma_chains)(long iterations);
} ck_kernels;

/// The variants this CPU (and its operating system) can run, from CPUID:
/// a bit per ck_isa (bit CK_GENERIC is always set).
unsigned ck_supported_isas(void);

/// The widest variant this CPU supports.
ck_isa ck_best_isa(void);

/// Whether vdpbf16ps beats its emulation by two FMAs on this CPU (measured
/// once, in about a millisecond; PBTWAVE_BF16_DOT=native or fma decides
/// instead). Not everywhere: on Sapphire Rapids a 512-bit vdpbf16ps retires
/// every other cycle, half the multiply-adds of two FMA ports. Both give the
/// same bits, so the choice changes speed only. 0 without AVX512_BF16.
int ck_bf16_native_is_faster(void);

/// PBTWAVE_BF16_DOT's choice: 1 (native), 0 (fma), or -1 when it is unset
/// or names neither (then ck_bf16_native_is_faster measures).
int ck_bf16_dot_forced(void);

/// The kernels of `isa`, or NULL if this CPU cannot run that variant (or it
/// was not compiled for this architecture).
const ck_kernels *ck_kernels_for(ck_isa isa);

/// Whether the variants that have them use flat tiles for ragged widths
/// (channel counts that are not a multiple of the vector width; see
/// kernels_template.h). On by default; off gives the row tiles, whose results
/// are bit for bit the same (tests compare the two; benchmarks time both).
void ck_set_flat_tiles(int on);
int ck_flat_tiles(void);

/// Whether the variants that have them (avx2) compute a ragged width's last
/// vector, when it holds at most half a vector of channels (20 = 8 + 8 + 4),
/// in vectors half as wide (see HALF_ROWS in kernels_template.h). By default
/// on where ck_fma_half_width() says so (PBTWAVE_HALF_TAILS=0: off, =1: on);
/// the results are bit for bit the same.
void ck_set_half_tails(int on);
int ck_half_tails(void);

/// Whether the variants that have them (avx2, generic) compute a ragged
/// width's last few channels (1–4 of 8 on avx2, 1–2 of 4 on generic:
/// 17 = 16 + 1) as dot products along the inner dimension (see "Dot tails"
/// in kernels_template.h; on avx2 at 12 and 20 channels only products with
/// an inner dimension of 40 or more, the others take flat tiles). On by
/// default (PBTWAVE_DOT_TAILS=0: off); the results agree with the row
/// tiles' to within rounding.
void ck_set_dot_tails(int on);
int ck_dot_tails(void);

/// 1 if this core runs a 256-bit FMA at half the rate of a 128-bit one
/// (its FMA units are 128 bits wide, as AMD's Zen 1's); 0 otherwise, and
/// without AVX2. Known cores from CPUID (ck_fma_half_width_from_cpuid),
/// others measured once by timing both (about a millisecond). The avx2
/// kernels tune ragged widths by it (the half tails' default, the flat
/// tiles' kinds). ck_set_fma_half_width overrides the answer (-1: ask
/// again), for tests of the other kind of core's paths.
int ck_fma_half_width(void);
void ck_set_fma_half_width(int half);
/// What CPUID's vendor, family and model say of the FMA units' width: 1
/// (128 bits: AMD's Zen, Zen+ and Excavator, Hygon's Dhyana), 0 (256 bits or more:
/// AMD's Zen 2 to Zen 5), -1 (not known: timed instead). The _of form
/// takes them as given (family and model with their extended fields added,
/// as the manuals count them), for tests.
int ck_fma_half_width_from_cpuid(void);
int ck_fma_half_width_of(const char *vendor, int family, int model);

/// 1 if this core runs a 512-bit FMA at half the rate of a 256-bit one (its
/// FMA units are 256 bits wide, as AMD's Zen 4's); 0 otherwise, and without
/// AVX-512. Known cores from CPUID (ck_fma512_half_width_of: AMD's family
/// 0x19, Zen 4), others measured once by timing both (about a millisecond).
/// ck_set_fma512_half_width overrides the answer (-1: ask again).
int ck_fma512_half_width(void);
void ck_set_fma512_half_width(int half);
int ck_fma512_half_width_from_cpuid(void);
int ck_fma512_half_width_of(const char *vendor, int family, int model);

/// Whether the avx512 tables hand the fp32 products whose output width fills
/// 8-lane vectors better than 16-lane ones (C mod 16 from 5 to 12: 21 fills
/// 21 of 24 lanes rather than 21 of 32, 25 fills 24 and a dot tail takes
/// the last) to the avx512-256 kernels (ck_narrow_width says which). By default on
/// where ck_fma512_half_width() says so (PBTWAVE_NARROW_TILES=0: off, =1:
/// on); read at each call. ck_set_narrow_tiles_on_this_thread overrides it
/// for the calling thread only (-1: back to the process's), so that a test
/// can compare both while other threads run.
void ck_set_narrow_tiles(int on);
void ck_set_narrow_tiles_on_this_thread(int on);
int ck_narrow_tiles(void);
int ck_narrow_width(int C);
/// The same for the fp32 weight gradient, by its input channels (Cin mod 16
/// from 8 to 12).
int ck_narrow_weight_gradient(int Cin);

/// Whether the fp32 weight gradients may put the output channels along the
/// vector lanes when those fill them better than the input channels (20
/// inputs and 40 outputs; see conv_backward_weight in kernels_template.h).
/// On by default (PBTWAVE_WG_SWAP=0: off), where off keeps the input
/// channels along the lanes; the sums are the same up to rounding. The
/// setter overrides that for the calling thread only (-1: back to the
/// process's default), so that a test can compare both ways.
void ck_set_wg_swap_on_this_thread(int on);
int ck_wg_swap(void);

// ---- Weight packing ---------------------------------------------------------

/// Floats in a forward-packed weight: K taps × Cin rows × Np columns, then Np
/// bias values, where the Cout outputs form `groups` equal groups, each
/// padded to a multiple of CK_PAD (Np = groups · roundup(Cout/groups)).
long ck_packed_forward_count(int K, int Cin, int Cout, int groups);

/// Packs W (K, Cout, Cin) and bias (Cout, or NULL for zero) for
/// conv_forward (groups = 1) or conv_gated_forward (groups = 2: the outputs
/// [a | g]): tap k's row c holds W[k, :, c], so a kernel reads all outputs of
/// one input channel as consecutive vectors. Padding is zero.
void ck_pack_forward(float *packed, const float *weight, const float *bias,
                     int K, int Cin, int Cout, int groups);

/// Floats in a backward-packed weight: K taps × Cout rows × roundup(Cin),
/// plus CK_PAD so that a vector may start at any column of the last row.
long ck_packed_backward_count(int K, int Cin, int Cout);

/// Packs W (K, Cout, Cin) for conv_backward_input: tap k's row o holds
/// W[k, o, :], zero-padded to a multiple of CK_PAD.
void ck_pack_backward(float *packed, const float *weight, int K, int Cin, int Cout);

/// Floats (32-bit words) in a bf16 forward-packed weight: K taps ×
/// ceil(Cin/2) channel pairs × Np words (Np as ck_packed_forward_count),
/// then Np fp32 bias values.
long ck_packed_forward_count_bf16(int K, int Cin, int Cout, int groups);

/// Packs W (K, Cout, Cin) and bias for the bf16 forward kernels: tap k's
/// pair row q holds, for every output column, the word
/// bf16(W[k, o, 2q]) | bf16(W[k, o, 2q+1]) << 16 (a missing odd channel is
/// zero); the bias stays fp32. Rounding: ck_bf16_from_float.
void ck_pack_forward_bf16(float *packed, const float *weight, const float *bias,
                          int K, int Cin, int Cout, int groups);

/// Words in a bf16 backward-packed weight: K taps × ceil(Cout/2) pair rows
/// × roundup(Cin), plus CK_PAD.
long ck_packed_backward_count_bf16(int K, int Cin, int Cout);

/// Packs W (K, Cout, Cin) for conv_backward_input_bf16 (and the layer
/// backward): tap k's pair row q holds, for each input column c, the word
/// bf16(W[k, 2q, c]) | bf16(W[k, 2q+1, c]) << 16.
void ck_pack_backward_bf16(float *packed, const float *weight, int K, int Cin, int Cout);

// ---- Kernels (wrappers over a variant's table) -------------------------------

/// Causal convolution, forward: for t in [t0, t1),
///   out[t, o] = add[t, o] + bias[o] + Σ_k Σ_c inp[t - s_k, c] · W[k, o, c]
/// then max(·, 0) if `relu`. `add` (row stride lda) may be NULL (zero) or
/// `out` itself (accumulate). `wpacked` is ck_pack_forward(groups 1).
/// inp is (T, Cin), out and add are (T, Cout). Cost: 2·K·Cin·Cout flops a row.
/// s_k = (K - 1 - k)·d. A negative d makes the taps read later rows, |d|
/// rows apart, all of which must exist (no zero padding): K blocks of rows
/// stored one after another, summed as K taps (WaveNet's skip product over
/// the layers' z, each layer's rows a block; block K - 1 - k is tap k's).
/// The same holds for the weight gradients and the bf16 forward.
static inline void ck_conv_forward(const ck_kernels *k, float *out, long ldo, const float *add, long lda,
                                   const float *inp, long ldi, const float *wpacked,
                                   long t0, long t1, int Cin, int Cout, int K, long d, int relu) {
    k->conv_forward(out, ldo, add, lda, inp, ldi, wpacked, t0, t1, Cin, Cout, K, d, relu);
}

/// Gated causal convolution, forward (the convolution and WaveNet's gated
/// unit in one pass, while each output tile is in registers): for t in [t0, t1),
///   [a | g] = bias + Σ_k inp[t - s_k, :] · W_kᵀ     (2D outputs)
///   gate[t] = [tanh(a) | sigmoid(g)]   (2D floats)    z[t] = tanh(a)·sigmoid(g)  (D floats)
/// `wpacked` is ck_pack_forward(groups 2). gate is what gated_backward needs.
static inline void ck_conv_gated_forward(const ck_kernels *k, float *gate, long ldg, float *z, long ldz,
                                         const float *inp, long ldi, const float *wpacked,
                                         long t0, long t1, int Cin, int D, int K, long d) {
    k->conv_gated_forward(gate, ldg, z, ldz, inp, ldi, wpacked, t0, t1, Cin, D, K, d);
}

/// Causal convolution, input gradient: for t in [t0, t1),
///   dinp[t, c] (+)= Σ_k Σ_o dout[t + s_k, o] · W[k, o, c]     (rows >= T are zero)
/// It gathers (each output row is written by one call only), so threads may
/// split [0, T) once `dout` is complete. `wpacked` is ck_pack_backward.
/// With `accumulate`, adds to dinp; else overwrites.
static inline void ck_conv_backward_input(const ck_kernels *k, float *dinp, long lddi, int accumulate,
                                          const float *dout, long lddo, const float *wpacked,
                                          long t0, long t1, long T, int Cin, int Cout, int K, long d) {
    k->conv_backward_input(dinp, lddi, accumulate, dout, lddo, wpacked, t0, t1, T, Cin, Cout, K, d);
}

/// Causal convolution, weight and bias gradients, accumulated over rows [t0, t1):
///   dweight[k, o, c] += Σ_t dout[t, o] · inp[t - s_k, c]      dbias[o] += Σ_t dout[t, o]
/// dweight is (K, Cout, Cin) like W; dbias may be NULL. The reduction runs
/// over time (the long dimension), in blocks of rows kept in L1.
static inline void ck_conv_backward_weight(const ck_kernels *k, float *dweight, float *dbias,
                                           const float *dout, long lddo, const float *inp, long ldi,
                                           long t0, long t1, int Cin, int Cout, int K, long d) {
    k->conv_backward_weight(dweight, dbias, dout, lddo, inp, ldi, t0, t1, Cin, Cout, K, d);
}

/// ck_conv_backward_weight with bf16 operands: dout and inp rounded to bf16
/// (ck_bf16_from_float) and the products accumulated in fp32 two rows at a
/// time, vdpbf16ps's way: per block of rows,
///   acc = (acc + dout[t+1, o]·inp[t+1-s_k, c]) + dout[t, o]·inp[t-s_k, c]
/// for t = t0, t0 + 2, … (a row past the block or an input row before 0 is
/// zero). Each operand is fp32 rows (dout, inp; the kernel rounds them) or
/// bf16 rows (dout16, inp16, with the fp32 pointer NULL; the stride then
/// counts bf16 values, any channel offset). dbias sums dout's rows as given
/// (fp32, or the bf16 values). Uses 64 KiB of stack; allocates nothing.
static inline void ck_conv_backward_weight_bf16(const ck_kernels *k, float *dweight, float *dbias,
                                                const float *dout, const ck_bf16 *dout16, long lddo,
                                                const float *inp, const ck_bf16 *inp16, long ldi,
                                                long t0, long t1, int Cin, int Cout, int K, long d) {
    k->conv_backward_weight_bf16(dweight, dbias, dout, dout16, lddo, inp, inp16, ldi, t0, t1, Cin, Cout, K, d);
}

/// WaveNet's layer backward up to its gated unit, for rows [t0, t1): z fed
/// a skip and a residual 1x1 product, so
///   dz[t] = Σ_o dskip[t, o]·Ws[o, c] + Σ_o dres[t, o]·Wr[o, c]      (c < D)
///   dpre[t] = [dz·sg·(1 - th²) | dz·th·sg·(1 - sg)]   from gate[t] = [th | sg]
/// in one pass (dz never goes to memory). `ws` points at this layer's first
/// column in a backward-packed skip weight with rows of `ldws` floats; `wr`
/// is a backward-packed (R, D) residual weight (rows of ldwr floats). dres and
/// wr may be NULL (the last layer has no residual output). dpre may be gate.
static inline void ck_gated_backward_product(const ck_kernels *k, float *dpre, long lddp, const float *gate, long ldg,
                                             const float *dskip, long ldds, const float *ws, long ldws, int S,
                                             const float *dres, long lddr, const float *wr, long ldwr, int R,
                                             long t0, long t1, int D) {
    k->gated_backward_product(dpre, lddp, gate, ldg, dskip, ldds, ws, ldws, S, dres, lddr, wr, ldwr, R, t0, t1, D);
}

/// The gated unit alone, for `rows` rows of pre = [a | g] (2D floats, before
/// the bias): gate = [tanh(a + ba) | sigmoid(g + bg)], z = product. bias (2D)
/// may be NULL; gate may be NULL (generation needs only z).
static inline void ck_gated_pointwise_forward(const ck_kernels *k, float *gate, long ldg, float *z, long ldz,
                                              const float *pre, long ldp, const float *bias, long rows, int D) {
    k->gated_pointwise_forward(gate, ldg, z, ldz, pre, ldp, bias, rows, D);
}

/// The gated unit's backward for `rows` rows: from gate = [th | sg] and dz,
///   dpre = [dz·sg·(1 - th²) | dz·th·sg·(1 - sg)]
/// dpre may be gate itself (in place).
static inline void ck_gated_backward(const ck_kernels *k, float *dpre, long lddp, const float *dz, long lddz,
                                     const float *gate, long ldg, long rows, int D) {
    k->gated_backward(dpre, lddp, dz, lddz, gate, ldg, rows, D);
}

/// The bf16 products: the same sums as ck_conv_forward, ck_conv_gated_forward,
/// ck_conv_backward_input and ck_gated_backward_product, over bf16 operands
/// (the activations given as bf16 rows of an even width, from
/// ck_round_bf16; the weights from ck_pack_*_bf16), accumulated in fp32 two
/// channels at a time: acc = (acc + a[2c+1]·w[2c+1]) + a[2c]·w[2c], each
/// product exact, each addition rounded (vdpbf16ps's order). fp32 outputs;
/// an out16 (dinp16, z16, dpre16) also gets them rounded to bf16. Where the
/// bf16 copy is all a caller needs, the gated forward's z and the gated
/// backward's dpre may be NULL (then only z16, dpre16 are written).
/// With s16, the gated forward writes the unit's slopes there rounded to
/// bf16, [∂z/∂a | ∂z/∂g] = [sg·(1 - th²) | z·(1 - sg)] (2D a row), instead of
/// the gate values (gate then only holds partial sums of a long inner
/// dimension), and the gated backward reads them instead of the gate values
/// (gate may be NULL): dpre = dz·[∂z/∂a | ∂z/∂g].
static inline void ck_conv_forward_bf16(const ck_kernels *k, float *out, long ldo, const float *add, long lda,
                                        const ck_bf16 *inp, long ldi, const float *wpacked,
                                        long t0, long t1, int Cin, int Cout, int K, long d, int relu,
                                        ck_bf16 *out16, long ldo16) {
    k->conv_forward_bf16(out, ldo, add, lda, inp, ldi, wpacked, t0, t1, Cin, Cout, K, d, relu, out16, ldo16);
}
static inline void ck_conv_gated_forward_bf16(const ck_kernels *k, float *gate, long ldg, float *z, long ldz,
                                              const ck_bf16 *inp, long ldi, const float *wpacked,
                                              long t0, long t1, int Cin, int D, int K, long d,
                                              ck_bf16 *z16, long ldz16, ck_bf16 *s16, long lds16) {
    k->conv_gated_forward_bf16(gate, ldg, z, ldz, inp, ldi, wpacked, t0, t1, Cin, D, K, d, z16, ldz16, s16, lds16);
}
/// The input gradient's relu_y (NULL: none) is the output y of a ReLU whose
/// input dinp is, as the bf16 rows the next products read (ldy in bf16
/// values): the sums are then passed through its backward, kept where
/// y[t, c] > 0 and 0 elsewhere (as ck_relu_backward on those values), before
/// they are stored (and rounded into dinp16), so that no pass of its own
/// reads them again.
static inline void ck_conv_backward_input_bf16(const ck_kernels *k, float *dinp, long lddi, int accumulate,
                                               const ck_bf16 *dout, long lddo, const float *wpacked,
                                               long t0, long t1, long T, int Cin, int Cout, int K, long d,
                                               ck_bf16 *dinp16, long lddi16, const ck_bf16 *relu_y, long ldy) {
    k->conv_backward_input_bf16(dinp, lddi, accumulate, dout, lddo, wpacked, t0, t1, T, Cin, Cout, K, d, dinp16, lddi16, relu_y, ldy);
}
static inline void ck_gated_backward_product_bf16(const ck_kernels *k, float *dpre, long lddp, const float *gate, long ldg,
                                                  const ck_bf16 *dskip, long ldds, const float *ws, long ldws, int S,
                                                  const ck_bf16 *dres, long lddr, const float *wr, long ldwr, int R,
                                                  long t0, long t1, int D, ck_bf16 *dpre16, long lddp16,
                                                  const ck_bf16 *s16, long lds16) {
    k->gated_backward_product_bf16(dpre, lddp, gate, ldg, dskip, ldds, ws, ldws, S, dres, lddr, wr, ldwr, R, t0, t1, D, dpre16, lddp16,
                                   s16, lds16);
}

/// out[r, c] = ck_bf16_from_float(inp[r, c]) for `rows` rows of C floats;
/// an odd C also writes a zero at column C (rows are whole pairs).
static inline void ck_round_bf16(const ck_kernels *k, ck_bf16 *out, long ldo, const float *inp, long ldi, long rows, int C) {
    k->round_bf16(out, ldo, inp, ldi, rows, C);
}

/// sums[c] += Σ_r x[r, c] over `rows` rows (a bias gradient).
static inline void ck_column_sums(const ck_kernels *k, float *sums, const float *x, long ldx, long rows, int C) {
    k->column_sums(sums, x, ldx, rows, C);
}

/// out[r, c] = max(inp[r, c] + bias[c], 0); bias may be NULL; out may be inp.
static inline void ck_bias_relu(const ck_kernels *k, float *out, long ldo, const float *inp, long ldi,
                                const float *bias, long rows, int C) {
    k->bias_relu(out, ldo, inp, ldi, bias, rows, C);
}

/// dx[r, c] = dy[r, c] where the ReLU's output y[r, c] > 0, else 0. dx may be dy.
static inline void ck_relu_backward(const ck_kernels *k, float *dx, long lddx, const float *dy, long lddy,
                                    const float *y, long ldy, long rows, int C) {
    k->relu_backward(dx, lddx, dy, lddy, y, ldy, rows, C);
}

/// Softmax cross-entropy over `rows` rows of V logits (plus bias (V), which
/// may be NULL). Returns Σ_r (logsumexp(row) - row[targets[r]]) in nats.
/// If dlogits is not NULL, writes dlogits[r] = scale·(softmax(row) - onehot);
/// dlogits may be logits (in place). If dlogits16 is not NULL too, also
/// those values rounded to bf16 (ck_bf16_from_float) in rows of stride
/// lddl16 (an odd V: a zero in column V), for the bf16 products that read them.
static inline double ck_softmax_xent(const ck_kernels *k, float *dlogits, long lddl, const float *logits, long ldl,
                                     const float *bias, const int *targets, long rows, int V, float scale,
                                     unsigned short *dlogits16, long lddl16) {
    return k->softmax_xent(dlogits, lddl, logits, ldl, bias, targets, rows, V, scale, dlogits16, lddl16);
}

/// y (+)= bias + W·x for W (rows, cols) given transposed: wt is (cols, rows)
/// with row stride ldw >= rows. bias may be NULL. For generation, where one
/// sample costs one such product per layer.
static inline void ck_matvec(const ck_kernels *k, float *y, const float *wt, long ldw, const float *x,
                             const float *bias, int rows, int cols, int accumulate) {
    k->matvec(y, wt, ldw, x, bias, rows, cols, accumulate);
}

/// One Adam step over n floats with bias corrections c1 = 1 - beta1^t and
/// c2 = 1 - beta2^t: m, v updated, params -= lr·(m/c1)/(sqrt(v/c2) + eps).
static inline void ck_adam(const ck_kernels *k, float *params, float *m, float *v, const float *grads, long n,
                           float lr, float beta1, float beta2, float eps, float c1, float c2) {
    k->adam(params, m, v, grads, n, lr, beta1, beta2, eps, c1, c2);
}

/// e^x, tanh(x), sigmoid(x) over n floats (the kernels' own approximations).
static inline void ck_vexp(const ck_kernels *k, float *out, const float *inp, long n) { k->vexp(out, inp, n); }
static inline void ck_vtanh(const ck_kernels *k, float *out, const float *inp, long n) { k->vtanh(out, inp, n); }
static inline void ck_vsigmoid(const ck_kernels *k, float *out, const float *inp, long n) { k->vsigmoid(out, inp, n); }

/// Runs `iterations` rounds of 12 independent chains of vector FMAs at this
/// variant's width (2·12·lanes flops a round), for measuring the core's peak;
/// returns a value that depends on every chain.
static inline float ck_fma_chains(const ck_kernels *k, long iterations) { return k->fma_chains(iterations); }

#ifdef __cplusplus
}
#endif

#endif
