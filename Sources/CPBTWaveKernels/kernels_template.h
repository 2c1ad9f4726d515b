// The kernels, written once against a small vector vocabulary and compiled
// once per instruction set: kernels_avx512.c, kernels_avx2.c and
// kernels_generic.c each define the vocabulary below and include this file.
// Notation as in include/CPBTWaveKernels.h.
//
// The vocabulary an including file defines:
//   FN(name)          name with the variant's suffix (conv_forward_avx512)
//   TARGET            the attribute enabling the instruction set, on every function
//   VL                floats per vector;  vec, vmask  its vector and lane-mask types
//   vzero() vset1(x) vload(p) vstore(p, v)             whole vectors (unaligned)
//   vmask_first(n)    a mask of the first n lanes (0 <= n <= VL)
//   vloadm(p, m, f)   lanes of m from p, others f;  vstorem(p, v, m)  lanes of m only
//   vadd vsub vmul vmax vfma(a, b, c) = a·b + c  vfnmadd(a, b, c) = c - a·b  vsqrt  vdiv
//   vrecip(x)         1/x to ~1 ulp;  vround(x)  nearest integer;  vscale2(p, n)  p·2^n
//   vpositive(y, v)   v where y > 0, else 0;  vhsum vhmax  horizontal sum and max
//   vmaskz(v, m)      v in the lanes of m, else 0;  vrelu(x)  max(x, 0), NaN kept
//   vmax_nan(lo, x) vmin_nan(hi, x)   clamps that return x when x is NaN
//   NV_MAX            most vectors a register tile spans;  MR_OF(nv)  its rows (<= MR_MAX)
//   MR_EMU_OF(nv)     (optional) the rows of a bf16 tile when vdot2 is emulated: each
//                     weight vector is then unpacked into two, and the tile must still
//                     fit the registers (default MR_OF)
// and for the bf16 products (see "bf16 operands" below):
//   pvec              VL 32-bit words, each a pair of bf16 (element 2i in the low half)
//   pload(p)          VL words of a packed bf16 weight;  pbroadcast(q)  the pair at q in every word
//   vdot2(acc, a, b)  acc + a.hi·b.hi + a.lo·b.lo per lane, rounded after each addition
//                     (vdpbf16ps; the emulations round the same way, so they agree bit for bit)
//   vstore_bf16(q, x, n)  the first n lanes of x rounded to bf16 (nearest-even), stored at q
//   vstore_bf16_pairs(q, lo, hi)  VL words at q, word i = (lo[i], hi[i]) each rounded as above
//   vload_bf16(q, n)  the first n bf16 values at q widened to fp32, other lanes 0 (q NULL: all 0)
//   vpair16(q, a, b, n)  VL words at q, word i = (a[i], b[i]) of two bf16 rows for i < n, else 0
//                     (a or b NULL: that half 0)
//   VPAIR16X2         (optional) defined with vpair16x2(q, a, b, n): the same for 2·VL words
//   BF16_NATIVE       1 when vdot2 is the instruction, 0 when it is emulated
// and, to have flat tiles for ragged widths (see "Flat tiles" below):
//   FLAT_TILES        (optional) 1, with vmask_lanes(l0, l1)  lanes l0 <= l < l1
//                     and vblend(m, a, b)  b in the lanes of m, a elsewhere; optionally
//                     FLAT_WIDTHS(X), FLAT_ACC, FLAT_NA_MAX, FLAT_GROUPS_INNER (see there)
//                     and, with VPART, vload_lanes_part(p, l0, l1) and vstore_lanes_part(p, v,
//                     l0, l1): lanes [l0, l1) from and to p + l0 .. p + l1 - 1 by plain
//                     loads and stores of pieces (the other lanes of the load zero)
// and, to compute a ragged width's last few channels as dot products (see "Dot tails"):
//   DOT_TAILS         (optional) 1; then optionally DOT_TAIL_MAX (the most channels, VL/2 and at most 4 by
//                     default) and VREDUCE_ROWS with vreduce_rows(acc): lane r = the sum of
//                     acc[r]'s lanes, for r < VL
// and for the weight gradient's swapped input tail:
//   FEW_NV            (optional) vectors of dout a tile of wg_few takes for one input
//                     channel (two sets of sums each, in the registers); for several
//                     channels together, as many as FEW_REGS leaves room for
// and, to compute a ragged width's last vector in vectors half as wide:
//   HALF_ROWS         (optional) the row tiles of a variant that includes this file with
//                     CK_TILES_ONLY defined (only the row driver and what it needs) and
//                     VL / 2 lanes; see "How an fp32 product is computed"
//
// How the products are blocked (the same scheme as oneDNN's AVX-512 1-D
// convolution and llm.c's matmul, for activations laid out (T, C)):
// a register tile holds MR time steps × NV vectors of output channels. For
// each input channel c it loads NV vectors of the packed weight row (all
// outputs of c) and broadcasts MR activations inp[t + i, c], one FMA per
// (row, vector) pair, so every loaded value is used NV or MR times. The taps
// of a convolution are more passes over c into the same accumulators, each
// from rows shifted by s_k: taps fused, no im2col copy. The weights of a
// layer are small and stay in L1; rows are walked in blocks of RB so that the
// broadcast rows are reused from L1 across column chunks. Bias, residual add,
// ReLU or the gated unit are applied while the tile is still in registers.

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif
#ifndef UNROLL
#define UNROLL _Pragma("clang loop unroll(full)")
#endif
#ifndef PIN
// A pointer advanced by additions kept so, in a register of its own: the
// empty asm hides its history from the compiler, which otherwise folds
// running pointers back into base + row·stride. An FMA whose memory operand
// is base + index is two micro-operations on Intel cores (base +
// displacement: one); in loops of 16 FMAs an accumulator that difference
// filled the core's rename width (see wg_sweep, rb_tile, plain_init).
#define PIN(p) __asm__("" : "+r"(p))
#endif
#ifndef CK_MIN
#define CK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CK_MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

// Rows per block: the broadcast rows of one block are reused from L1 by
// every column chunk (96 is a multiple of every MR used).
#ifndef RB
#define RB 96
#endif
#ifndef MR_EMU_OF
#define MR_EMU_OF(nv) MR_OF(nv)
#endif
// Rows per block of the weight-gradient reduction: the block's dout and inp
// rows stay in L1 while every weight tile of every tap sweeps them.
#ifndef TC
#define TC 64
#endif
// Floats of a weight panel (one inner block × the tile's vectors) kept in L1.
#ifndef KC_FLOATS
#define KC_FLOATS 4096
#endif
// Output channels per block of the weight-gradient reduction, so that the
// block's slice of dout stays in L1 next to the inputs.
#ifndef OB
#define OB 48
#endif

// ---- Vector math ---------------------------------------------------------------------------

// n floats at p (n ≤ VL), the other lanes `fill`; and the first n lanes of v
// stored to p. A whole vector takes a plain load or store: AVX2's masked ones
// (vmaskmovps, then a blend) cost far more than plain ones on AMD's Zen 1, and
// the tiles' epilogues and the bias sums had used them on every vector. With
// plain ones the kernels alone ran 1.12–1.21× as fast there (the 32-channel
// weight gradients, the residual forward, the gated backward product; T = 384,
// Benchmarks/ab/kernel.sh). AVX-512's masked loads cost what plain ones do.
// A variant may define vload_part and vstore_part (the first n < VL lanes
// from plain loads and stores of pieces; AVX2 does) to use instead of masks.
static ALWAYS_INLINE TARGET vec FN(vload_n)(const float *p, int n, vmask m, vec fill) {
    if (n >= VL) return vload(p);
#ifdef VPART
    return n > 0 ? vblend_mask(fill, vload_part(p, n), m) : fill;
#else
    return vloadm(p, m, fill);
#endif
}
static ALWAYS_INLINE TARGET void FN(vstore_n)(float *p, vec v, int n, vmask m) {
    if (n >= VL) vstore(p, v);
#ifdef VPART
    else if (n > 0) { (void)m; vstore_part(p, v, n); }
#else
    else if (n > 0) vstorem(p, v, m);
#endif
}

// e^x: x = n·ln2 + r with |r| <= ln2/2 (ln2 split in two so that n·ln2_hi is
// exact), e^r by Cephes' polynomial (<= 2 ulp on [-87.3, 88.4]), then 2^n.
// Inputs are clamped to that range, so results stay finite and normal; NaN
// stays NaN (max and min return their second operand on NaN, and the
// portable comparisons are false for it).
static ALWAYS_INLINE TARGET vec vexp(vec x) {
    x = vmin_nan(vset1(88.3762626647949f), vmax_nan(vset1(-87.3365447505531f), x));
    vec n = vround(vmul(x, vset1(1.44269504088896341f)));
    vec r = vfma(n, vset1(-0.693359375f), x);
    r = vfma(n, vset1(2.12194440e-4f), r);
    vec p = vset1(1.9875691500e-4f);
    p = vfma(p, r, vset1(1.3981999507e-3f));
    p = vfma(p, r, vset1(8.3334519073e-3f));
    p = vfma(p, r, vset1(4.1665795894e-2f));
    p = vfma(p, r, vset1(1.6666665459e-1f));
    p = vfma(p, r, vset1(5.0000001201e-1f));
    p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
    return vscale2(p, n);
}

// The gated unit's tanh and σ, by one rational function: tanh(x) =
// x·P(x²)/Q(x²) on [-c, c] (Eigen's float tanh: a minimax fit, odd degree 13
// over even degree 6), and beyond c tanh(x) is within 2.2e-7 of ±1, which the
// clamp returns. σ(x) = 1/2 + tanh(x/2)/2, with the halvings folded into the
// coefficients (powers of two, so exactly). 17 vector operations each, no
// exponential: the exp-based forms (1 - 2/(e^{2x} + 1) and 1/(1 + e^{-x}))
// took about 22, and tanh's lost relative accuracy near 0 (4e-5). Measured
// against libm in double over [-20, 20]: tanh within 3.2e-7 absolute and
// relative, σ within 1.8e-7 absolute. The gated forward kernel alone ran
// 19 % faster at 16 channels, 11 % at 32. A variant may divide instead of
// multiplying by the reciprocal (UNIT_DIVIDES): the divider is a unit of its
// own, so that the FMA pipes the products need do 4 fewer operations.
static ALWAYS_INLINE TARGET vec FN(scaled_tanh)(vec x, float a, float s, float add) {
    // s·tanh(a·x) + add
    const float c = 7.99881172180175781f / a, a2 = a * a, sa = s * a;
    x = vmin_nan(vset1(c), vmax_nan(vset1(-c), x));
    vec x2 = vmul(x, x);
    vec p = vset1(-2.76076847742355e-16f * sa * a2 * a2 * a2 * a2 * a2 * a2);
    p = vfma(p, x2, vset1(2.00018790482477e-13f * sa * a2 * a2 * a2 * a2 * a2));
    p = vfma(p, x2, vset1(-8.60467152213735e-11f * sa * a2 * a2 * a2 * a2));
    p = vfma(p, x2, vset1(5.12229709037114e-08f * sa * a2 * a2 * a2));
    p = vfma(p, x2, vset1(1.48572235717979e-05f * sa * a2 * a2));
    p = vfma(p, x2, vset1(6.37261928875436e-04f * sa * a2));
    p = vfma(p, x2, vset1(4.89352455891786e-03f * sa));
    vec q = vset1(1.19825839466702e-06f * a2 * a2 * a2);
    q = vfma(q, x2, vset1(1.18534705686654e-04f * a2 * a2));
    q = vfma(q, x2, vset1(2.26843463243900e-03f * a2));
    q = vfma(q, x2, vset1(4.89352518554385e-03f));
#ifdef UNIT_DIVIDES
    const vec y = vdiv(vmul(p, x), q);
    return add != 0.0f ? vadd(y, vset1(add)) : y;
#else
    return vfma(vmul(p, x), vrecip(q), vset1(add));
#endif
}

static ALWAYS_INLINE TARGET vec FN(v_tanh)(vec x) { return FN(scaled_tanh)(x, 1.0f, 1.0f, 0.0f); }
static ALWAYS_INLINE TARGET vec FN(v_sigmoid)(vec x) { return FN(scaled_tanh)(x, 0.5f, 0.5f, 0.5f); }

// f(x) over n floats for f = e^x (0), tanh (1), sigmoid (2); the tail is masked.
static ALWAYS_INLINE TARGET vec FN(v_apply)(int f, vec x) {
    return f == 0 ? vexp(x) : f == 1 ? FN(v_tanh)(x) : FN(v_sigmoid)(x);
}

static ALWAYS_INLINE TARGET void FN(map_array)(int f, float *out, const float *inp, long n) {
    long i = 0;
    for (; i + VL <= n; i += VL) vstore(out + i, FN(v_apply)(f, vload(inp + i)));
    if (i < n) {
        vmask m = vmask_first((int)(n - i));
        FN(vstore_n)(out + i, FN(v_apply)(f, FN(vload_n)(inp + i, (int)(n - i), m, vzero())), (int)(n - i), m);
    }
}

#ifndef CK_TILES_ONLY
static TARGET void FN(vexp_array)(float *out, const float *inp, long n) { FN(map_array)(0, out, inp, n); }
static TARGET void FN(vtanh_array)(float *out, const float *inp, long n) { FN(map_array)(1, out, inp, n); }
static TARGET void FN(vsigmoid_array)(float *out, const float *inp, long n) { FN(map_array)(2, out, inp, n); }
#endif

// ---- The row-broadcast product ---------------------------------------------------------------
//
// acc[t, j] = Σ_k Σ_c a[(t + shift_k)·lda + c] · b_k[c·ldb + j],  shift_k = (K-1-k)·step
// where rows of a outside [lo, hi) are zero. The forward convolution has
// step = -d, lo = 0 (the past before the sequence is zero); the input
// gradient has step = +d, hi = T (nothing after the sequence). A forward
// convolution with d < 0 reads later rows, all inside (hi unbounded): taps
// over blocks of rows stored one after another (see ck_conv_forward).

// (The jobs' struct tags are the same in every variant, not FN-named: a
// variant may hand a job to another variant's tiles, see HALF_ROWS.)
typedef struct ck_rb_problem {
    const float *a; long lda; long lo, hi;
    const float *b; long ldb; long tapstride;
    int kc; int K; long step;
    // The block of the inner index j = k·kc + c (tap-major) a pass covers;
    // 0 and K·kc, unless the driver splits a long inner dimension.
    int j0, j1;
    // bf16 operands: the activations (lda counts bf16 elements), b holds
    // weight words (pairs of bf16), and c counts pairs of input channels.
    const unsigned short *ah;
} FN(rb_problem);

// Whether some tap of the block, for rows [t, t + m), is partly inside
// [lo, hi): such tiles are computed one row at a time (at most one tile per
// tap and call).
static ALWAYS_INLINE TARGET int FN(rb_straddles)(const FN(rb_problem) *p, long t, int m) {
    for (int k = p->j0 / p->kc; k * p->kc < p->j1; k++) {
        long r0 = t + (long)(p->K - 1 - k) * p->step, r1 = r0 + m - 1;
        int none = r1 < p->lo || r0 >= p->hi, all = r0 >= p->lo && r1 < p->hi;
        if (!none && !all) return 1;
    }
    return 0;
}

// acc[i][v] += the product for rows t .. t+MR-1, the vectors at column
// offsets off[v] and the inner block [j0, j1). Taps whose rows all lie outside
// [lo, hi) are skipped.
static ALWAYS_INLINE TARGET void FN(rb_tile)(const FN(rb_problem) *p, int bf, long t, int MR, int NV,
                                             const long *off, vec acc[][NV_MAX]) {
    for (int k = p->j0 / p->kc; k * p->kc < p->j1; k++) {
        long r0 = t + (long)(p->K - 1 - k) * p->step;
        if (r0 + MR - 1 < p->lo || r0 >= p->hi) continue;
        const float *b = p->b + k * p->tapstride;
        const long lda = p->lda, ldb = p->ldb;
        const int cb = CK_MAX(p->j0 - k * p->kc, 0), ce = CK_MIN(p->j1 - k * p->kc, p->kc);
        if (bf) {
            // One vdot2 does two input channels: the pair at row t, channels
            // 2c and 2c+1, against the weight words of that pair.
            const unsigned short *a = p->ah + r0 * lda;
            for (int c = cb; c < ce; c++) {
                pvec bv[NV_MAX];
                UNROLL for (int v = 0; v < NV; v++) bv[v] = pload(b + c * ldb + off[v]);
                UNROLL for (int i = 0; i < MR; i++) {
                    pvec av = pbroadcast(a + i * lda + 2 * c);
                    UNROLL for (int v = 0; v < NV; v++) acc[i][v] = vdot2(acc[i][v], av, bv[v]);
                }
            }
            continue;
        }
        const float *a = p->a + r0 * p->lda;
        if (NV == 1 && MR % 8 == 0) {
            // One output vector: groups of eight rows, each row through its
            // own pointer (advanced by the loop), so that every FMA's
            // broadcast operand is base + displacement. The general loop below
            // addresses rows by index, which splits such an FMA into two
            // micro-ops on Intel cores and costs an address addition per row;
            // this way the gated backward product and the input gradient at 16
            // channels ran 11–13 % faster alone (Benchmarks/ab/kernel.sh).
            UNROLL for (int h = 0; h < MR; h += 8) {
                const float *x[8];
                UNROLL for (int g = 0; g < 8; g++) x[g] = a + (h + g) * lda + cb;
                const float *w = b + cb * ldb + off[0];
                int c = cb;
                // Four channels a step: the eight pointers' additions are
                // instructions the FMAs' issue shares.
                for (; c + 4 <= ce; c += 4) {
                    vec w0 = vload(w), w1 = vload(w + ldb), w2 = vload(w + 2 * ldb), w3 = vload(w + 3 * ldb);
                    UNROLL for (int g = 0; g < 8; g++) acc[h + g][0] = vfma(vset1(x[g][0]), w0, acc[h + g][0]);
                    UNROLL for (int g = 0; g < 8; g++) acc[h + g][0] = vfma(vset1(x[g][1]), w1, acc[h + g][0]);
                    UNROLL for (int g = 0; g < 8; g++) acc[h + g][0] = vfma(vset1(x[g][2]), w2, acc[h + g][0]);
                    UNROLL for (int g = 0; g < 8; g++) acc[h + g][0] = vfma(vset1(x[g][3]), w3, acc[h + g][0]);
                    UNROLL for (int g = 0; g < 8; g++) { x[g] += 4; PIN(x[g]); }
                    w += 4 * ldb;
                }
                // The last 0-3 channels at constant displacements.
                UNROLL for (int k = 0; k < 3; k++)
                    if (c + k < ce) {
                        vec wk = vload(w + k * ldb);
                        UNROLL for (int g = 0; g < 8; g++) acc[h + g][0] = vfma(vset1(x[g][k]), wk, acc[h + g][0]);
                    }
            }
            continue;
        }
        for (int c = cb; c < ce; c++) {
            vec bv[NV_MAX];
            UNROLL for (int v = 0; v < NV; v++) bv[v] = vload(b + c * ldb + off[v]);
            UNROLL for (int i = 0; i < MR; i++) {
                vec av = vset1(a[i * lda + c]);
                UNROLL for (int v = 0; v < NV; v++) acc[i][v] = vfma(av, bv[v], acc[i][v]);
            }
        }
    }
}

// ---- Plain epilogue: out = add + bias + acc, optional ReLU -------------------------------------

typedef struct ck_plain_out {
    float *out; long ldo; const float *add; long lda;
    const float *bias;  // padded: whole vectors may be read (NULL: zero)
    int C; int relu;
    unsigned short *out16; long ldo16;  // also the final rows rounded to bf16 (NULL: not)
    // Final values kept only where pos16 > 0 (a ReLU's backward, from the
    // bf16 rows of its output; NULL: all kept).
    const unsigned short *pos16; long ldpos16;
} FN(plain_out);

// Whether every vector of the tile lies whole inside the C channels (off
// ascends). Such tiles' epilogues take the rows through one pointer, with no
// test a row: at 16 inner channels a tile does only 16 FMAs an accumulator,
// and the tests and address arithmetic of the general epilogue (a width test
// and a multiplication each row) issued as many instructions as the FMAs.
static ALWAYS_INLINE int FN(plain_whole)(const FN(plain_out) *o, int NV, const long *off) { return o->C >= off[NV - 1] + VL; }

static ALWAYS_INLINE TARGET void FN(plain_init)(const FN(plain_out) *o, long t, int MR, int NV,
                                                const long *off, vec acc[][NV_MAX]) {
    vec b[NV_MAX];
    UNROLL for (int v = 0; v < NV; v++) b[v] = o->bias ? vload(o->bias + off[v]) : vzero();
    if (o->add && FN(plain_whole)(o, NV, off)) {
        const float *row[NV_MAX];
        UNROLL for (int v = 0; v < NV; v++) row[v] = o->add + t * o->lda + off[v];
        UNROLL for (int i = 0; i < MR; i++)
            UNROLL for (int v = 0; v < NV; v++) {
                acc[i][v] = vadd(b[v], vload(row[v]));
                row[v] += o->lda;
                PIN(row[v]);
            }
        return;
    }
    UNROLL for (int v = 0; v < NV; v++) {
        const vec b0 = b[v];
        if (o->add) {
            const int n = CK_MAX(0, CK_MIN(VL, o->C - (int)off[v]));
            vmask m = vmask_first(n);
            UNROLL for (int i = 0; i < MR; i++) acc[i][v] = vadd(b0, FN(vload_n)(o->add + (t + i) * o->lda + off[v], n, m, vzero()));
        } else {
            UNROLL for (int i = 0; i < MR; i++) acc[i][v] = b0;
        }
    }
}

// Stores the tile; `final`: the whole sum (ReLU applies), else a partial one
// that the next inner block loads back.
static ALWAYS_INLINE TARGET void FN(plain_store)(const FN(plain_out) *o, long t, int MR, int NV,
                                                 const long *off, vec acc[][NV_MAX], int final) {
    if (FN(plain_whole)(o, NV, off) && !(final && (o->relu || o->pos16 || o->out16))) {
        float *row[NV_MAX];
        UNROLL for (int v = 0; v < NV; v++) row[v] = o->out + t * o->ldo + off[v];
        UNROLL for (int i = 0; i < MR; i++)
            UNROLL for (int v = 0; v < NV; v++) {
                vstore(row[v], acc[i][v]);
                row[v] += o->ldo;
                PIN(row[v]);
            }
        return;
    }
    UNROLL for (int v = 0; v < NV; v++) {
        int n = CK_MIN(VL, o->C - (int)off[v]);
        vmask m = vmask_first(CK_MAX(n, 0));
        UNROLL for (int i = 0; i < MR; i++) {
            vec y = final && o->relu ? vrelu(acc[i][v]) : acc[i][v];
            if (final && o->pos16 && n > 0) y = vpositive(vload_bf16(o->pos16 + (t + i) * o->ldpos16 + off[v], n), y);
            float *dst = o->out + (t + i) * o->ldo + off[v];
            FN(vstore_n)(dst, y, n, m);
            if (final && o->out16 && n > 0) vstore_bf16(o->out16 + (t + i) * o->ldo16 + off[v], y, n);
        }
    }
}

static ALWAYS_INLINE TARGET void FN(plain_load)(const FN(plain_out) *o, long t, int MR, int NV,
                                                const long *off, vec acc[][NV_MAX]) {
    UNROLL for (int v = 0; v < NV; v++) {
        const int n = CK_MAX(0, CK_MIN(VL, o->C - (int)off[v]));
        vmask m = vmask_first(n);
        UNROLL for (int i = 0; i < MR; i++) acc[i][v] = FN(vload_n)(o->out + (t + i) * o->ldo + off[v], n, m, vzero());
    }
}

// One tile for one inner block: the first block starts from add + bias, later
// ones from the partial sums in `out`; the last one finishes.
static ALWAYS_INLINE TARGET void FN(plain_tile)(const FN(rb_problem) *p, int bf, const FN(plain_out) *o,
                                                long t, int MR, int NV, const long *off, int first, int last) {
    vec acc[MR_MAX][NV_MAX];
    if (first) FN(plain_init)(o, t, MR, NV, off, acc); else FN(plain_load)(o, t, MR, NV, off, acc);
    FN(rb_tile)(p, bf, t, MR, NV, off, acc);
    FN(plain_store)(o, t, MR, NV, off, acc, last);
}

#ifndef CK_TILES_ONLY
static long FN(round_pad)(int n) { return ((long)n + CK_PAD - 1) / CK_PAD * CK_PAD; }
#endif

// ---- Gated epilogue -------------------------------------------------------------------------
//
// The tile's NV vectors are NV/2 vectors of a (columns j0 ..) and the NV/2
// vectors of g for the same channels (packed P columns later), so the unit
// is computed from registers.

typedef struct ck_gated_out {
    float *gate; long ldg; float *z; long ldz;
    const float *bias;  // packed, padded: a at [0, P), g at [P, 2P)
    int D; long P;
    unsigned short *z16; long ldz16;  // also z rounded to bf16 (NULL: not)
    // The unit's slopes rounded to bf16, [∂z/∂a | ∂z/∂g] = [sg·(1 - th²) | z·(1 - sg)],
    // instead of the gate values (NULL: the gate values).
    unsigned short *s16; long lds16;
    // Whether the slopes go past the caches (vstream_bf16): see conv_gated_forward_bf16.
    int stream;
} FN(gated_out);

static ALWAYS_INLINE TARGET void FN(gate_store)(const FN(gated_out) *o, float *gate_row, float *z_row,
                                                unsigned short *z16_row, unsigned short *s16_row, int j, vec a, vec g) {
    vec th = FN(v_tanh)(a), sg = FN(v_sigmoid)(g), z = vmul(th, sg);
    int n = CK_MIN(VL, o->D - j);
    if (z16_row && n > 0) vstore_bf16(z16_row + j, z, n);
    if (s16_row && n > 0) {
        // sg - (sg·th)·th and z - z·sg: three operations rather than five.
        vec sa = vfnmadd(vmul(sg, th), th, sg), sb = vfnmadd(z, sg, z);
#ifdef VSTREAM_BF16
        if (o->stream && n == VL) {
            vstream_bf16(s16_row + j, sa);
            vstream_bf16(s16_row + o->D + j, sb);
        } else
#endif
        {
            vstore_bf16(s16_row + j, sa, n);
            vstore_bf16(s16_row + o->D + j, sb, n);
        }
    }
    vmask m = vmask_first(CK_MAX(n, 0));
    if (gate_row) { FN(vstore_n)(gate_row + j, th, n, m); FN(vstore_n)(gate_row + o->D + j, sg, n, m); }
    if (z_row) FN(vstore_n)(z_row + j, z, n, m);
}

// One tile for one inner block. Partial sums of [a | g] wait in the gate
// rows (a at column j, g at D + j) until the last block applies the unit.
static ALWAYS_INLINE TARGET void FN(gated_tile)(const FN(rb_problem) *p, int bf, const FN(gated_out) *o,
                                                long t, int MR, int NV, const long *off, int first, int last) {
    vec acc[MR_MAX][NV_MAX];
    const int H = NV / 2;
    if (first) {
        UNROLL for (int v = 0; v < NV; v++) {
            vec b0 = vload(o->bias + off[v]);
            UNROLL for (int i = 0; i < MR; i++) acc[i][v] = b0;
        }
    } else {
        UNROLL for (int v = 0; v < H; v++) {
            int j = (int)off[v], n = CK_MAX(0, CK_MIN(VL, o->D - j));
            vmask m = vmask_first(n);
            UNROLL for (int i = 0; i < MR; i++) {
                const float *row = o->gate + (t + i) * o->ldg;
                acc[i][v] = FN(vload_n)(row + j, n, m, vzero());
                acc[i][v + H] = FN(vload_n)(row + o->D + j, n, m, vzero());
            }
        }
    }
    FN(rb_tile)(p, bf, t, MR, NV, off, acc);
    if (!last) {
        UNROLL for (int v = 0; v < H; v++) {
            int j = (int)off[v], n = CK_MAX(0, CK_MIN(VL, o->D - j));
            vmask m = vmask_first(n);
            UNROLL for (int i = 0; i < MR; i++) {
                float *row = o->gate + (t + i) * o->ldg;
                FN(vstore_n)(row + j, acc[i][v], n, m);
                FN(vstore_n)(row + o->D + j, acc[i][v + H], n, m);
            }
        }
        return;
    }
    UNROLL for (int i = 0; i < MR; i++) {
        float *gate_row = o->gate && !o->s16 ? o->gate + (t + i) * o->ldg : 0;  // the slopes replace the gate values
        float *z_row = o->z ? o->z + (t + i) * o->ldz : 0;
        unsigned short *z16_row = o->z16 ? o->z16 + (t + i) * o->ldz16 : 0;
        unsigned short *s16_row = o->s16 ? o->s16 + (t + i) * o->lds16 : 0;
        UNROLL for (int v = 0; v < H; v++)
            FN(gate_store)(o, gate_row, z_row, z16_row, s16_row, (int)off[v], acc[i][v], acc[i][v + H]);
    }
}

// ---- WaveNet's layer backward up to the gated unit ------------------------------------------
//
// z feeds two 1x1 products (the skip sum and the residual path), so
//   dz[t] = dskip[t] · Ws[:, layer's columns] + dres[t] · Wr
// and dpre = the gated unit's backward of dz. One pass: each tile of dz
// (MR rows × NV vectors of the D channels) goes from the accumulators through
// the unit's backward to dpre, never to memory.

// Rows of the gate values asked for ahead of the tile that reads them (see gb_tile).
#ifndef GATE_AHEAD
#define GATE_AHEAD 64
#endif

static ALWAYS_INLINE TARGET void FN(gb_tile)(const FN(rb_problem) *skip, const FN(rb_problem) *res, int bf,
                                             float *dpre, long lddp, const float *gate, long ldg, int D, long end,
                                             unsigned short *dpre16, long lddp16, const unsigned short *s16, long lds16,
                                             long t, int MR, int NV, const long *off) {
    vec acc[MR_MAX][NV_MAX];
    UNROLL for (int i = 0; i < MR; i++) UNROLL for (int v = 0; v < NV; v++) acc[i][v] = vzero();
    // The gate values (or the slopes) were saved by the forward pass long
    // before and are often out of cache: the rows GATE_AHEAD on are asked for
    // into L2 now, one tile's worth at a time, so that the epilogue below
    // finds its own.
    if (t + GATE_AHEAD + MR <= end) {
        const int size = s16 ? (int)sizeof *s16 : (int)sizeof *gate;
        const char *base = s16 ? (const char *)s16 : (const char *)gate;
        const long stride = (s16 ? lds16 : ldg) * size;
        const char *row = base + (t + GATE_AHEAD) * stride;
        UNROLL for (int i = 0; i < MR; i++) {
            // Each vector's first and last value: a row that does not start
            // on a cache line has vectors spanning two.
            UNROLL for (int v = 0; v < NV; v++) {
                const int last = (int)off[v] + CK_MAX(1, CK_MIN(VL, D - (int)off[v])) - 1;
                __builtin_prefetch(row + off[v] * size, 0, 2);
                __builtin_prefetch(row + last * size, 0, 2);
                __builtin_prefetch(row + (D + off[v]) * size, 0, 2);
                __builtin_prefetch(row + (D + last) * size, 0, 2);
            }
            row += stride;
            PIN(row);
        }
    }
    FN(rb_tile)(skip, bf, t, MR, NV, off, acc);
    if (res) FN(rb_tile)(res, bf, t, MR, NV, off, acc);
    const vec one = vset1(1.0f);
    UNROLL for (int i = 0; i < MR; i++) {
        float *da = dpre ? dpre + (t + i) * lddp : 0;
        UNROLL for (int v = 0; v < NV; v++) {
            int j = (int)off[v], n = CK_MIN(VL, D - j);
            vmask m = vmask_first(CK_MAX(n, 0));
            vec va, vg;
            if (s16) {
                // The slopes the forward pass stored: dpre = dz · [∂z/∂a | ∂z/∂g].
                const unsigned short *sl = s16 + (t + i) * lds16;
                va = vmul(acc[i][v], vload_bf16(sl + j, n));
                vg = vmul(acc[i][v], vload_bf16(sl + D + j, n));
            } else {
                const float *th = gate + (t + i) * ldg, *sg = th + D;
                vec th_v = FN(vload_n)(th + j, n, m, vzero()), sg_v = FN(vload_n)(sg + j, n, m, vzero());
                vec gs = vmul(acc[i][v], sg_v);
                va = vmul(gs, vsub(one, vmul(th_v, th_v)));
                vg = vmul(vmul(gs, th_v), vsub(one, sg_v));
            }
            if (da) { FN(vstore_n)(da + j, va, n, m); FN(vstore_n)(da + D + j, vg, n, m); }
            if (dpre16 && n > 0) {
                unsigned short *da16 = dpre16 + (t + i) * lddp16;
                vstore_bf16(da16 + j, va, n);
                vstore_bf16(da16 + D + j, vg, n);
            }
        }
    }
}

// What a row-broadcast kernel computes: its problem(s) and where its tiles go.
typedef struct ck_tile_job {
    const FN(rb_problem) *p, *p2;       // p2: a second product into the same tiles (or NULL)
    const FN(plain_out) *plain;
    const FN(gated_out) *gated;
    float *dpre; long lddp; const float *gate; long ldg; int D;  // the gated unit's backward
    int first, last;  // whether this pass is the first / last inner block
    long end;  // the end of the rows (the gated backward reads no gate row from here on)
    unsigned short *dpre16; long lddp16;  // also dpre rounded to bf16 (NULL: not)
    const unsigned short *s16; long lds16;  // the unit's slopes instead of the gate values (NULL: not)
} FN(tile_job);

// ---- The row driver ---------------------------------------------------------------------------
//
// Every row-broadcast kernel walks its rows the same way: blocks of RB rows,
// within a block the output vectors in chunks of at most NV_MAX (for the
// gated unit, matching halves of a and g), and within a chunk register tiles
// of MR_OF(NV) rows, then of 4, then single rows. A tile with a tap that
// reaches partly before the sequence (or after it) is computed row by row.
// `kind` is a constant at each entry point, so each compiles to its own loops.

// TILE_BF16 added to a kind: the products take bf16 operands.
enum { TILE_PLAIN, TILE_GATED, TILE_GATED_BACKWARD, TILE_KIND = 3, TILE_BF16 = 4 };

// Output vectors a chunk of the row tiles takes (the gated kind: of a, and
// as many of g).
static ALWAYS_INLINE int FN(chunk_vectors)(int kind) { return (kind & TILE_KIND) == TILE_GATED ? CK_MAX(NV_MAX / 2, 1) : NV_MAX; }

// Whether a job also writes bf16 copies of its outputs (only the row tiles do).
static ALWAYS_INLINE int FN(writes_bf16)(int kind, const FN(tile_job) *j) {
    switch (kind & TILE_KIND) {
    case TILE_PLAIN: return j->plain->out16 || j->plain->pos16;
    case TILE_GATED: return j->gated->z16 || j->gated->s16;
    default: return j->dpre16 || j->s16;
    }
}

static ALWAYS_INLINE TARGET void FN(tile)(int kind, const FN(tile_job) *j, long t, int MR, int NV, const long *off) {
    const int bf = (kind & TILE_BF16) != 0;
    switch (kind & TILE_KIND) {
    case TILE_PLAIN: FN(plain_tile)(j->p, bf, j->plain, t, MR, NV, off, j->first, j->last); break;
    case TILE_GATED: FN(gated_tile)(j->p, bf, j->gated, t, MR, NV, off, j->first, j->last); break;
    default: FN(gb_tile)(j->p, j->p2, bf, j->dpre, j->lddp, j->gate, j->ldg, j->D, j->end, j->dpre16, j->lddp16, j->s16, j->lds16,
                         t, MR, NV, off); break;
    }
}

static ALWAYS_INLINE TARGET void FN(rows)(int kind, const FN(tile_job) *j, long t0, long t1, int NV, const long *off) {
    const int MR = (kind & TILE_BF16) && !BF16_NATIVE ? MR_EMU_OF(NV) : MR_OF(NV);
    long t = t0;
    for (; t + MR <= t1; t += MR) {
        if (FN(rb_straddles)(j->p, t, MR)) {
            for (int i = 0; i < MR; i++) FN(tile)(kind, j, t + i, 1, NV, off);
        } else {
            FN(tile)(kind, j, t, MR, NV, off);
        }
    }
    for (; t + 4 <= t1 && MR > 4; t += 4) {
        if (FN(rb_straddles)(j->p, t, 4)) {
            for (int i = 0; i < 4; i++) FN(tile)(kind, j, t + i, 1, NV, off);
        } else {
            FN(tile)(kind, j, t, 4, NV, off);
        }
    }
    for (; t < t1; t++) FN(tile)(kind, j, t, 1, NV, off);
}

// All output vectors of rows [t0, t1); C is the outputs' width (for the
// gated kinds, D: each chunk then takes the same vectors of a and of g).
// A long inner dimension (K·Cin floats of weights per output vector) is cut
// into blocks whose weight panel, NV vectors wide, stays in L1 (KC_FLOATS)
// while every tile of the row block passes over it; partial sums go through
// the output rows. (The layer backward's inner dimension, S + R, is short.)
//
// Only the output vectors [va, vb) (of VL channels each; the gated kinds: of a
// and the same of g); product_rows does them all.
static ALWAYS_INLINE TARGET void FN(product_vectors)(int kind, const FN(tile_job) *j, long t0, long t1, int va, int vb) {
    const int gated = (kind & TILE_KIND) == TILE_GATED, step = FN(chunk_vectors)(kind);
    FN(rb_problem) p = *j->p;
    FN(tile_job) job = *j;
    job.p = &p;
    job.end = t1;
    const int inner = p.K * p.kc;
    for (long tb = t0; tb < t1; tb += RB) {
        long te = CK_MIN(t1, tb + RB);
        for (int v0 = va, n = 0; v0 < vb; v0 += n) {
            n = CK_MIN(step, vb - v0);
            const int nv = gated ? 2 * n : n;
            long off[NV_MAX];
            for (int v = 0; v < NV_MAX; v++) off[v] = 0;
            for (int v = 0; v < n; v++) {
                off[v] = (long)(v0 + v) * VL;
                if (gated) off[v + n] = j->gated->P + (long)(v0 + v) * VL;
            }
            const int block = KC_FLOATS / (nv * VL);
            const int blocks = (kind & TILE_KIND) == TILE_GATED_BACKWARD || inner <= 2 * block ? 1 : (inner + block - 1) / block;
            for (int b = 0; b < blocks; b++) {
                p.j0 = (int)((long)inner * b / blocks);
                p.j1 = (int)((long)inner * (b + 1) / blocks);
                job.first = b == 0;
                job.last = b == blocks - 1;
                switch (nv) {
#if NV_MAX >= 4
                case 4: FN(rows)(kind, &job, tb, te, 4, off); break;
#endif
#if NV_MAX >= 3
                case 3: FN(rows)(kind, &job, tb, te, 3, off); break;
#endif
                case 2: FN(rows)(kind, &job, tb, te, 2, off); break;
                default: FN(rows)(kind, &job, tb, te, 1, off); break;
                }
            }
        }
    }
}

static ALWAYS_INLINE TARGET void FN(product_rows)(int kind, const FN(tile_job) *j, long t0, long t1, int C) {
    FN(product_vectors)(kind, j, t0, t1, 0, (C + VL - 1) / VL);
}

// CK_TILES_ONLY (a variant that only lends its row tiles, see HALF_ROWS): nothing further.
#ifndef CK_TILES_ONLY

// base + n floats, formed as an integer: the address may lie before the
// array (a flat vector's piece addressed from where its lane 0 would be, a
// tap's rows from where row 0 would be), and only elements inside it are read.
static ALWAYS_INLINE float *FN(address_at)(const float *base, long n) {
    return (float *)((__INTPTR_TYPE__)base + n * (__INTPTR_TYPE__)sizeof(float));
}

// The share of a tile's lanes that hold channels, at C channels (‰).
static ALWAYS_INLINE int FN(lanes_used_permille)(int C) { return (int)(1000L * C / (((C + VL - 1) / VL) * VL)); }

// ---- How an fp32 product is computed --------------------------------------------------------
//
// PRODUCT_WIDE: in the row tiles, all but a ragged last vector that the
// half-width tiles take (see below), which PRODUCT_HALF then computes.
// PRODUCT_FLAT: in flat tiles, if they apply. (Each in a function of its
// own, see FLAT_FIRST.)
//
// HALF_ROWS(kind, job, t0, t1, C) (optional): the last vector of the fp32
// kinds' outputs in the row tiles of a variant compiled from this file with
// vectors half as wide (CK_TILES_ONLY). On a core whose FMA units are half as
// wide as its vectors (AMD's Zen 1 runs each 256-bit FMA as two 128-bit
// halves) idle lanes cost as much as busy ones: at 20 channels (8 + 8 + 4)
// the third vector took a third of the tiles' FMAs for a fifth of the
// channels. Each output is the same sum in the same order, so the results are
// bit for bit those of the full-width tiles (ck_half_tails switches them off,
// for tests and benchmarks).
enum { PRODUCT_WIDE, PRODUCT_FLAT, PRODUCT_HALF, PRODUCT_DOT };
#ifdef HALF_ROWS
#define HALF_TAILS 1
#else
#define HALF_TAILS 0
#endif

// TAILS_ANY_CHUNK (optional) 1: the tails below (half, dot, and the weight
// gradient's swapped input tail) take a ragged last vector whatever chunks
// the whole vectors before it leave (on AVX-512 a chunk is 64 channels, so at
// 17–23 the one whole vector is never a chunk, and the tail vector's idle
// lanes cost as much as busy ones on full-width FMA units).
#ifndef TAILS_ANY_CHUNK
#define TAILS_ANY_CHUNK 0
#endif

// Whether a tail may take C's ragged last vector as far as chunks go: where
// C's whole vectors fill chunks of `chunk` vectors (otherwise, on AVX2, the
// chunk of one vector left over cost more than the tail saved; see
// half_tail and dot_tail), or wherever they lie (TAILS_ANY_CHUNK).
static ALWAYS_INLINE int FN(whole_chunks)(int C, int chunk) { return TAILS_ANY_CHUNK || (C / VL) % chunk == 0; }

// Whether the half-width tiles take C's last vector: only where the other
// vectors still fill chunks of NV_MAX (at 12 and 28 channels on AVX2, a chunk
// of one vector left over cost more than the half tail saved: 0.8× and 0.95×
// the input gradient alone, against 1.1× at 20 and 36).
static ALWAYS_INLINE int FN(half_tail)(int kind, int C) {
    return HALF_TAILS && !(kind & TILE_BF16) && C % VL != 0 && C % VL <= VL / 2 && FN(whole_chunks)(C, FN(chunk_vectors)(kind));
}

// ---- Dot tails: a ragged width's last few channels as dot products -----------------------------
//
// In the row tiles a ragged width's last vector holds C mod VL channels: at
// 17 = 16 + 1 on AVX2 one busy lane of eight, and that vector, a chunk of its
// own, took a third of the tiles' FMAs for a seventeenth of the outputs (the
// forward product alone ran at 0.58× its rate at 16 channels on Zen 2). A
// dot tail computes those n columns as dot products along the inner
// dimension instead: the input rows are loaded whole (input channels along
// the lanes, as they lie in memory), each column's weights are laid out
// along the inner dimension once per call (zeros past each tap's channels),
// and a tile of VL rows × the n columns keeps one accumulator a row and
// column (a group of rows at a time, see dot_group). Each column's VL
// accumulators reduce to one vector with time along the lanes, in which the
// epilogue (bias, residual and ReLU; the gated unit; its backward) runs for
// VL rows at once; a row's n values are read and stored together where the
// variant can (VCOLUMNS), else one at a time. A column costs
// about 1/VL of the FMAs the row tiles spent on the vector (at 1 channel;
// n/VL at n), plus the reduction. The sums run in another order than the
// row tiles' (along the lanes, then across them), so the results agree with
// theirs to within rounding, not bit for bit; ck_dot_tails switches them off
// (tests compare the two, and the flat and half tiles with the row tiles
// without them).
//
// A variant opts in with DOT_TAILS 1 and may set DOT_TAIL_MAX (the most
// channels a dot tail takes, 1 to 4; VL / 2 by default), DOT_REGS (its vector
// registers) and define vreduce_rows(acc) (lane r = the sum of acc[r]'s
// lanes), vreduce_group/vreduce_parts (VREDUCE_GROUPS) and
// vstore_columns/vload_columns (VCOLUMNS). Only fp32 products without bf16
// copies of their outputs take them. Every row of the tail goes through
// them (a tile at the end of the rows, or whose taps straddle the
// sequence's start or end, tests each row), so that a row's value does not
// depend on where a call's rows begin and end.
#ifndef DOT_TAILS
#define DOT_TAILS 0
#endif
#if DOT_TAILS
#ifndef DOT_TAIL_MAX
#define DOT_TAIL_MAX (VL / 2 < 4 ? VL / 2 : 4)
#endif
#if DOT_TAIL_MAX > 4
#error "dot tiles are compiled for 1 to 4 channels (more lost on AVX2 and AVX-512 alike: Benchmarks/HISTORY.md)"
#endif
// Floats of laid-out weights (on the stack: 16 KiB); a longer product keeps its row tiles.
#define DOT_WT 4096

#ifndef VREDUCE_ROWS
static ALWAYS_INLINE TARGET vec vreduce_rows(const vec *acc) {
    float s[VL];
    UNROLL for (int r = 0; r < VL; r++) s[r] = vhsum(acc[r]);
    return vload(s);
}
#endif

// Vectors along the inner dimension of one tap, and floats of a column's weights.
static ALWAYS_INLINE int FN(dot_nc)(const FN(rb_problem) *p) { return (p->kc + VL - 1) / VL; }
static ALWAYS_INLINE long FN(dot_floats)(const FN(rb_problem) *p) { return p ? (long)p->K * FN(dot_nc)(p) * VL : 0; }

// Whether a dot tail takes the last C mod VL channels of this fp32 product.
static ALWAYS_INLINE int FN(dot_tail)(int kind, const FN(tile_job) *j, int C) {
    const int n = C % VL, gated = (kind & TILE_KIND) == TILE_GATED;
    // Only where the other vectors fill whole chunks (as for the half tails):
    // at 25 and 26 channels on AVX2 (3 vectors and a tail) the forward and
    // gated backward products, left with a chunk of one vector, ran 0.92–0.98×
    // the row tiles (the gated forward's chunks are one vector of a and of g).
    if ((kind & TILE_BF16) || n == 0 || n > DOT_TAIL_MAX || !FN(whole_chunks)(C, FN(chunk_vectors)(kind))) return 0;
    if (!ck_dot_tails() || FN(writes_bf16)(kind, j)) return 0;
    return (gated ? 2 : 1) * n * (FN(dot_floats)(j->p) + FN(dot_floats)(j->p2)) <= DOT_WT;
}

// Where a tap's last vector along the inner dimension starts: it ends at the
// tap's last channel and overlaps the vector before it (the overlapped lanes'
// weights are zero), so that it is one plain load; only a tap narrower than
// a vector is loaded in part.
static ALWAYS_INLINE int FN(dot_last)(const FN(rb_problem) *p) { return p->kc >= VL ? p->kc - VL : 0; }

// The tail's n columns go together (the gated forward: a's n, then g's n):
// each input vector is loaded once for them all and multiplied by n weight
// vectors, a group of G rows at a time, so that the n·G sums, the n weight
// vectors and the input vector stay in DOT_REGS registers and each sum has
// several FMAs in flight. (One column at a time over VL rows, as before,
// waited on each column's chain of FMAs and its reduction: at 19 input
// channels 3 columns took as long as the 16 of the row tiles.)
#ifndef DOT_REGS
#define DOT_REGS 16
#endif
static ALWAYS_INLINE int FN(dot_group)(int NQ) {
    int g = VL;
    while (g > 1 && NQ * (g + 1) + 1 > DOT_REGS) g /= 2;
    return g;
}

// The columns cols[0 .. NQ) of a problem's packed weights along its inner
// dimension, tap by tap and vector by vector, the NQ columns' vectors side by
// side (zero where a lane holds no channel or one an earlier vector took);
// returns where the next problem's go.
static ALWAYS_INLINE TARGET float *FN(dot_lay_out)(float *wt, const FN(rb_problem) *p, const long *cols, int NQ) {
    const int nc = FN(dot_nc)(p), last = FN(dot_last)(p);
    for (int k = 0; k < p->K; k++)
        for (int v = 0; v < nc; v++)
            for (int q = 0; q < NQ; q++) {
                const float *b = p->b + k * p->tapstride + cols[q];
                for (int l = 0; l < VL; l++, wt++) {
                    const int c = v + 1 < nc ? v * VL + l : last + l;
                    *wt = c < p->kc && c >= v * VL ? b[c * p->ldb] : 0.0f;
                }
            }
    return wt;
}

// acc[q][r] += row t + r's inputs times column q's weights, lane by lane, for
// the rows r < CK_MIN(m, G). `inside`: every tap's rows lie inside [lo, hi);
// else each row of each tap is tested (a tile at the end of the rows, or one
// whose taps straddle the sequence's start or end), so that every row is the
// same sum in the same order wherever a call's rows begin and end (threads
// split the rows).
static ALWAYS_INLINE TARGET const float *FN(dot_mac)(const FN(rb_problem) *p, const float *wt, int NQ, int G, long t, int m,
                                                     int inside, vec acc[][VL]) {
    const int nc = FN(dot_nc)(p), last = FN(dot_last)(p), narrow = p->kc < VL;
    const long lda = p->lda;
    const vmask mk = vmask_first(p->kc);
    for (int k = 0; k < p->K; k++, wt += nc * NQ * VL) {
        const long r0 = t + (long)(p->K - 1 - k) * p->step;
        const float *a = p->a + r0 * lda;
        if (!inside && (r0 + CK_MIN(m, G) - 1 < p->lo || r0 >= p->hi)) continue;
        for (int v = 0; v + 1 < nc; v++) {
            const float *w = wt + v * NQ * VL;
            UNROLL for (int r = 0; r < G; r++) {
                if (!inside && (r >= m || r0 + r < p->lo || r0 + r >= p->hi)) continue;
                const vec x = vload(a + r * lda + v * VL);
                UNROLL for (int q = 0; q < NQ; q++) acc[q][r] = vfma(x, vload(w + q * VL), acc[q][r]);
            }
        }
        const float *w = wt + (nc - 1) * NQ * VL;
        UNROLL for (int r = 0; r < G; r++) {
            if (!inside && (r >= m || r0 + r < p->lo || r0 + r >= p->hi)) continue;
            const vec x = narrow ? FN(vload_n)(a + r * lda, p->kc, mk, vzero()) : vload(a + r * lda + last);
            UNROLL for (int q = 0; q < NQ; q++) acc[q][r] = vfma(x, vload(w + q * VL), acc[q][r]);
        }
    }
    return wt;
}

#ifndef VREDUCE_GROUPS
// A group of G rows' sums as vreduce_rows wants them: one vector a row (a
// variant may reduce a group to one vector and finish the VL rows from
// VL / G of them, the same sums; see kernels_avx2.c).
#define DOT_GROUP_PARTS(G) (G)
static ALWAYS_INLINE TARGET void FN(dot_group_parts)(vec *part, const vec *acc, int G) {
    UNROLL for (int r = 0; r < G; r++) part[r] = acc[r];
}
static ALWAYS_INLINE TARGET vec vreduce_parts(const vec *part, int G) { (void)G; return vreduce_rows(part); }
#else
#define DOT_GROUP_PARTS(G) 1
static ALWAYS_INLINE TARGET void FN(dot_group_parts)(vec *part, const vec *acc, int G) { part[0] = vreduce_group(acc, G); }
#endif

// The NQ columns over the m rows from t: lane r of col[q] is row t + r's sum
// of column q. Groups of G rows leave their sums, partly reduced, in `part`
// until the VL rows are done; each row's sum is reduced alike wherever it
// lies.
static ALWAYS_INLINE TARGET void FN(dot_columns)(const FN(tile_job) *j, const float *wt, int NQ, long t, int m, int inside,
                                                 vec *col) {
    const int G = FN(dot_group)(NQ), NP = DOT_GROUP_PARTS(G);
    vec part[DOT_TAIL_MAX][VL];
    for (int g0 = 0, pi = 0; g0 < VL; g0 += G, pi += NP) {
        vec acc[DOT_TAIL_MAX][VL];
        UNROLL for (int q = 0; q < NQ; q++) UNROLL for (int r = 0; r < G; r++) acc[q][r] = vzero();
        if (inside || g0 < m) {
            const float *w2 = FN(dot_mac)(j->p, wt, NQ, G, t + g0, m - g0, inside, acc);
            if (j->p2) FN(dot_mac)(j->p2, w2, NQ, G, t + g0, m - g0, inside, acc);
        }
        if (G == VL) {
            UNROLL for (int q = 0; q < NQ; q++) col[q] = vreduce_rows(acc[q]);
            return;
        }
        UNROLL for (int q = 0; q < NQ; q++) FN(dot_group_parts)(part[q] + pi, acc[q], G);
    }
    UNROLL for (int q = 0; q < NQ; q++) col[q] = vreduce_parts(part[q], G);
}

// A column of m <= VL rows from base (row stride ld), and back, a lane at a
// time (the other lanes 0). (The pointer steps row by row: indices r·ld
// would each need a register.)
static ALWAYS_INLINE TARGET vec FN(column_load)(const float *base, long ld, int m) {
    vec v = vzero();
    UNROLL for (int r = 0; r < VL; r++, base += ld)
        if (r < m) v[r] = *base;
    return v;
}
static ALWAYS_INLINE TARGET void FN(column_store)(float *base, long ld, vec v, int m) {
    UNROLL for (int r = 0; r < VL; r++, base += ld)
        if (r < m) *base = v[r];
}

// n columns from the first n floats of the m rows from base, and back (a
// variant may move a row's n floats at once, VCOLUMNS).
#ifndef VCOLUMNS
static ALWAYS_INLINE TARGET void vstore_columns(float *base, long ld, const vec *c, int n, int m) {
    for (int q = 0; q < n; q++) FN(column_store)(base + q, ld, c[q], m);
}
static ALWAYS_INLINE TARGET void vload_columns(vec *c, const float *base, long ld, int n, int m) {
    for (int q = 0; q < n; q++) c[q] = FN(column_load)(base + q, ld, m);
}
#endif

// Columns c0 .. c0 + n's epilogue for the m rows from t, from their sums x
// (the gated forward: x of a, y of g).
static ALWAYS_INLINE TARGET void FN(dot_epilogue)(int kind, const FN(tile_job) *j, int c0, int n, long t, int m,
                                                  const vec *x, const vec *y) {
    vec u[DOT_TAIL_MAX], w[DOT_TAIL_MAX];
    switch (kind & TILE_KIND) {
    case TILE_PLAIN: {
        const FN(plain_out) *o = j->plain;
        if (o->add) vload_columns(w, o->add + t * o->lda + c0, o->lda, n, m);
        UNROLL for (int q = 0; q < n; q++) {
            u[q] = x[q];
            if (o->bias) u[q] = vadd(u[q], vset1(o->bias[c0 + q]));
            if (o->add) u[q] = vadd(u[q], w[q]);
            if (o->relu) u[q] = vrelu(u[q]);
        }
        vstore_columns(o->out + t * o->ldo + c0, o->ldo, u, n, m);
        break;
    }
    case TILE_GATED: {
        const FN(gated_out) *o = j->gated;
        vec z[DOT_TAIL_MAX];
        UNROLL for (int q = 0; q < n; q++) {
            u[q] = FN(v_tanh)(vadd(x[q], vset1(o->bias[c0 + q])));
            w[q] = FN(v_sigmoid)(vadd(y[q], vset1(o->bias[o->P + c0 + q])));
            z[q] = vmul(u[q], w[q]);
        }
        if (o->gate) {
            vstore_columns(o->gate + t * o->ldg + c0, o->ldg, u, n, m);
            vstore_columns(o->gate + t * o->ldg + o->D + c0, o->ldg, w, n, m);
        }
        if (o->z) vstore_columns(o->z + t * o->ldz + c0, o->ldz, z, n, m);
        break;
    }
    default: {
        const float *gr = j->gate + t * j->ldg;
        const vec one = vset1(1.0f);
        vec da[DOT_TAIL_MAX];
        vload_columns(u, gr + c0, j->ldg, n, m);
        vload_columns(w, gr + j->D + c0, j->ldg, n, m);
        UNROLL for (int q = 0; q < n; q++) {
            vec gs = vmul(x[q], w[q]);
            da[q] = vmul(gs, vsub(one, vmul(u[q], u[q])));
            u[q] = vmul(vmul(gs, u[q]), vsub(one, w[q]));
        }
        vstore_columns(j->dpre + t * j->lddp + c0, j->lddp, da, n, m);
        vstore_columns(j->dpre + t * j->lddp + j->D + c0, j->lddp, u, n, m);
        break;
    }
    }
}

// The tail's n columns from c0 for the m rows from t, each through its
// kind's epilogue. wt: the laid-out weights (the gated forward: a's n
// columns, then g's).
static ALWAYS_INLINE TARGET void FN(dot_tile)(int kind, const FN(tile_job) *j, const float *wt, int c0, int n,
                                              long t, int m, int inside) {
    const int gated = (kind & TILE_KIND) == TILE_GATED;
    if ((kind & TILE_KIND) == TILE_GATED_BACKWARD && !j->dpre) return;
    vec x[DOT_TAIL_MAX], y[DOT_TAIL_MAX];
    FN(dot_columns)(j, wt, n, t, m, inside, x);
    if (gated) FN(dot_columns)(j, wt + n * (FN(dot_floats)(j->p) + FN(dot_floats)(j->p2)), n, t, m, inside, y);
    FN(dot_epilogue)(kind, j, c0, n, t, m, x, gated ? y : x);
}

// Whole dot tiles from ta to tb whose every tap lies inside [lo, hi), in a
// function of their own per kind, so that what a tile needs of the job is
// worked out once for them all (in one loop with the other tiles it was
// worked out again each tile: half a tile's time at 17 channels). n: a
// constant from 1 to DOT_TAIL_MAX.
static ALWAYS_INLINE TARGET void FN(dot_run)(int kind, const FN(tile_job) *job, const float *wt, int c0, int n,
                                             long ta, long tb) {
    // Copies the tiles read instead of the job's own: the stores of vector
    // types may alias anything, so the job's fields were read again each
    // tile (a fifth of the tail's instructions at 19 channels).
    FN(tile_job) jc = *job;
    FN(rb_problem) p1 = *job->p, p2 = job->p2 ? *job->p2 : p1;
    FN(plain_out) po;
    FN(gated_out) go;
    jc.p = &p1;
    if (job->p2) jc.p2 = &p2;
    if ((kind & TILE_KIND) == TILE_PLAIN) { po = *job->plain; jc.plain = &po; }
    if ((kind & TILE_KIND) == TILE_GATED) { go = *job->gated; jc.gated = &go; }
    const FN(tile_job) *j = &jc;
    switch (n) {
    case 1: for (long t = ta; t < tb; t += VL) FN(dot_tile)(kind, j, wt, c0, 1, t, VL, 1); break;
    case 2: for (long t = ta; t < tb; t += VL) FN(dot_tile)(kind, j, wt, c0, 2, t, VL, 1); break;
#if DOT_TAIL_MAX >= 3
    case 3: for (long t = ta; t < tb; t += VL) FN(dot_tile)(kind, j, wt, c0, 3, t, VL, 1); break;
#endif
#if DOT_TAIL_MAX >= 4
    case 4: for (long t = ta; t < tb; t += VL) FN(dot_tile)(kind, j, wt, c0, 4, t, VL, 1); break;
#endif
    default: break;  // n <= DOT_TAIL_MAX (dot_tail)
    }
}
static TARGET __attribute__((noinline)) void FN(dot_run_plain)(const FN(tile_job) *j, const float *wt, int c0, int n,
                                                              long ta, long tb) {
    FN(dot_run)(TILE_PLAIN, j, wt, c0, n, ta, tb);
}
static TARGET __attribute__((noinline)) void FN(dot_run_gated)(const FN(tile_job) *j, const float *wt, int c0, int n,
                                                              long ta, long tb) {
    FN(dot_run)(TILE_GATED, j, wt, c0, n, ta, tb);
}
static TARGET __attribute__((noinline)) void FN(dot_run_gb)(const FN(tile_job) *j, const float *wt, int c0, int n,
                                                           long ta, long tb) {
    FN(dot_run)(TILE_GATED_BACKWARD, j, wt, c0, n, ta, tb);
}

// Rows [t0, t1) of the last C mod VL channels in dot tiles (see dot_tail).
static ALWAYS_INLINE TARGET void FN(dot_rows)(int kind, const FN(tile_job) *j, long t0, long t1, int C) {
    const int n = C % VL, c0 = C - n, NW = (kind & TILE_KIND) == TILE_GATED ? 2 : 1;
    float wt[DOT_WT], *w = wt;
    for (int b = 0; b < NW; b++) {  // the gated forward: a's columns, then g's
        long cols[DOT_TAIL_MAX];
        for (int q = 0; q < n; q++) cols[q] = b ? j->gated->P + c0 + q : c0 + q;
        w = FN(dot_lay_out)(w, j->p, cols, n);
        if (j->p2) w = FN(dot_lay_out)(w, j->p2, cols, n);
    }
    // Tiles from t0 whose every tap lies inside [lo, hi): those from `in0`
    // up to and including `in1`.
    long in0 = t0, in1 = t1 - VL;
    UNROLL for (int i = 0; i < 2; i++) {
        const FN(rb_problem) *p = i ? j->p2 : j->p;
        if (!p) continue;
        const long reach = (long)(p->K - 1) * p->step;  // the taps' rows lie from t + min(0, reach) to t + max(0, reach)
        in0 = CK_MAX(in0, p->lo - CK_MIN(0, reach));
        in1 = CK_MIN(in1, p->hi - VL - CK_MAX(0, reach));
    }
    for (long t = t0; t < t1;) {
        if (t >= in0 && t <= in1) {
            const long tb = t + ((in1 - t) / VL + 1) * VL;  // all of them in one run
            switch (kind & TILE_KIND) {
            case TILE_PLAIN: FN(dot_run_plain)(j, wt, c0, n, t, tb); break;
            case TILE_GATED: FN(dot_run_gated)(j, wt, c0, n, t, tb); break;
            default: FN(dot_run_gb)(j, wt, c0, n, t, tb); break;
            }
            t = tb;
        } else {
            const int m = (int)CK_MIN(VL, t1 - t);
            switch (n) {  // n a constant, as in dot_run, so that the sums stay in registers
            case 1: FN(dot_tile)(kind, j, wt, c0, 1, t, m, 0); break;
            case 2: FN(dot_tile)(kind, j, wt, c0, 2, t, m, 0); break;
#if DOT_TAIL_MAX >= 3
            case 3: FN(dot_tile)(kind, j, wt, c0, 3, t, m, 0); break;
#endif
#if DOT_TAIL_MAX >= 4
            case 4: FN(dot_tile)(kind, j, wt, c0, 4, t, m, 0); break;
#endif
            default: break;  // n <= DOT_TAIL_MAX (dot_tail)
            }
            t += m;
        }
    }
}
#else
static ALWAYS_INLINE int FN(dot_tail)(int kind, const FN(tile_job) *j, int C) { (void)kind; (void)j; (void)C; return 0; }
#endif

// The row tiles in modes PRODUCT_WIDE, PRODUCT_HALF and PRODUCT_DOT; returns
// PRODUCT_HALF or PRODUCT_DOT when PRODUCT_WIDE left the last vector for that
// mode, else 1.
static ALWAYS_INLINE TARGET int FN(product_row_tiles)(int mode, int kind, const FN(tile_job) *j, long t0, long t1, int C) {
    const int nvec = (C + VL - 1) / VL;
#ifdef HALF_ROWS
    if (mode == PRODUCT_HALF) { HALF_ROWS(kind, j, t0, t1, C); return 1; }
#endif
#if DOT_TAILS
    if (mode == PRODUCT_DOT) { FN(dot_rows)(kind, j, t0, t1, C); return 1; }
#endif
    const int half = mode == PRODUCT_WIDE && FN(half_tail)(kind, C) && ck_half_tails();
    const int dot = mode == PRODUCT_WIDE && !half && FN(dot_tail)(kind, j, C);
    FN(product_vectors)(kind, j, t0, t1, 0, nvec - half - dot);
    return half ? PRODUCT_HALF : dot ? PRODUCT_DOT : 1;
}

// ---- Flat tiles for ragged widths ------------------------------------------------------------
//
// A width C that is not a multiple of VL leaves lanes idle in the tiles
// above: at C = 20 the second vector of each row holds 4 channels of 16, so
// 62.5 % of the FMA lanes do work. A flat tile instead lays a group of P rows
// end to end, P·C values = NPV whole vectors (P = VL / gcd(C, VL); C = 20:
// four rows in five vectors). Lane l of vector v of a group holds the value at
// f = v·VL + l of the group: row f / C, channel f mod C. The weights are
// spread the same way once per call (lane l of a spread weight vector is the
// weight of channel f mod C), and each input channel's P broadcast
// activations are blended into the lanes of their rows, so a vector that
// straddles two rows still costs one FMA (at C = 20, 5 FMAs and 3 blends per
// group and input channel instead of 8 FMAs; the blends run mostly beside
// the FMAs: a loop of these alone ran 1.15–1.20× as fast as the row tiles'
// on Zen 5, Benchmarks/micro/flat-lanes.c, where masked broadcasts instead
// of blends ran slower than the row tiles). Kernels alone, T = 384: the
// forward products 1.2–1.5× at 20 and 40 outputs, the input gradient to 20
// channels 1.0–1.35×, the gated forward at D = 20 and 24 1.05–1.3×.
// Every output is the same sum in the same order as in the row tiles, so the
// results are bit for bit those of the row tiles (a test compares the two;
// others compare both with the naive twins). The weight gradients keep
// their row tiles: spreading each block's input rows cost more than the
// lanes saved (0.6–0.7× at 20 input channels).
//
// A variant opts in with FLAT_TILES (avx512 does; avx2 for the gated forward). Only fp32 operands
// without bf16 copies of the outputs use them; everything else, and tiles
// whose taps straddle the sequence's start or end, go through the row tiles.
#ifndef FLAT_TILES
#define FLAT_TILES 0
#endif
#if FLAT_TILES

// Accumulators a flat tile may use, vectors per group (NW·NPV) at most, and
// floats of spread weights (on the stack: 32 KiB). A variant with fewer
// registers sets smaller ones.
#ifndef FLAT_ACC
#define FLAT_ACC 20
#endif
#ifndef FLAT_NA_MAX
#define FLAT_NA_MAX 14
#endif
#define FLAT_WX 8192
// FLAT_GROUPS_INNER 1: the product loops over a tile's groups inside its
// vectors, so that each spread weight vector is loaded once for all groups
// (with 16 registers the compiler otherwise loads it once per group, and
// the loads, not the FMAs, set the pace on AMD's Zen 1).
#ifndef FLAT_GROUPS_INNER
#define FLAT_GROUPS_INNER 0
#endif
// FLAT_KIND_OK(kind): the kinds of product that take flat tiles (all by default).
#ifndef FLAT_KIND_OK
#define FLAT_KIND_OK(kind) 1
#endif
// Rows a vector of a group spans at most (widths of at least 8 on 16 lanes),
// and rows per group at most.
#define FLAT_SPAN 3
#define FLAT_PMAX 4

// P = VL / gcd(C, VL), VL being a power of two (no loop, so that it folds to a constant).
static ALWAYS_INLINE int FN(flat_period)(int C) { return VL / CK_MIN(C & -C, VL); }
static ALWAYS_INLINE int FN(flat_vectors)(int C) { return FN(flat_period)(C) * C / VL; }
// Groups per tile: as many as FLAT_ACC accumulators hold, at most 16 rows.
static ALWAYS_INLINE int FN(flat_groups)(int C, int NW) {
    const int P = FN(flat_period)(C), G = FLAT_ACC / (NW * FN(flat_vectors)(C));
    return CK_MAX(1, CK_MIN(G, 16 / P));
}

// The pieces of vector v of a group: piece i (i < FLAT_SPAN, while r0 + i ≤
// r1) is row r = r0 + i, lanes [l0, l1), addressed from `at`, the offset from
// the group's first row where its lane 0 would be (this may lie before the
// row: only the piece's own lanes are read or written, so the address is
// formed as an integer).
typedef struct { int ok, l0, l1; long at; } FN(flat_piece_t);
static ALWAYS_INLINE FN(flat_piece_t) FN(flat_piece)(int C, long ld, int v, int i) {
    const int r0 = v * VL / C, r1 = (v * VL + VL - 1) / C, r = r0 + i;
    FN(flat_piece_t) q = { r <= r1, CK_MAX(0, r * C - v * VL), CK_MIN(VL, (r + 1) * C - v * VL), r * ld + v * VL - r * C };
    return q;
}

// Lanes [l0, l1) of x from at + l0 .. at + l1 - 1 (others kept), and to there.
static ALWAYS_INLINE TARGET vec FN(vload_lanes)(const float *at, int l0, int l1, vec x) {
#ifdef VPART
    return vblend(vmask_lanes(l0, l1), x, vload_lanes_part(at, l0, l1));
#else
    return vloadm(at, vmask_lanes(l0, l1), x);
#endif
}
static ALWAYS_INLINE TARGET void FN(vstore_lanes)(float *at, vec x, int l0, int l1) {
#ifdef VPART
    vstore_lanes_part(at, x, l0, l1);
#else
    vstorem(at, x, vmask_lanes(l0, l1));
#endif
}

// Vector v of a group whose rows start at row, row + ld, ...: lane l is
// row[(f / C)·ld + f mod C]. With ld = 0, one row spread (weights, biases).
// (Constant trip counts, so that the loops unroll before v is known.)
static ALWAYS_INLINE TARGET vec FN(flat_load)(int C, const float *row, long ld, int v) {
    vec x = vzero();
    UNROLL for (int i = 0; i < FLAT_SPAN; i++) {
        const FN(flat_piece_t) q = FN(flat_piece)(C, ld, v, i);
        if (!q.ok) continue;
        const float *at = FN(address_at)(row, q.at);
        x = q.l0 == 0 && q.l1 == VL ? vload(at) : FN(vload_lanes)(at, q.l0, q.l1, x);
    }
    return x;
}

static ALWAYS_INLINE TARGET void FN(flat_store)(int C, float *row, long ld, int v, vec x) {
    UNROLL for (int i = 0; i < FLAT_SPAN; i++) {
        const FN(flat_piece_t) q = FN(flat_piece)(C, ld, v, i);
        if (!q.ok) continue;
        float *at = FN(address_at)(row, q.at);
        if (q.l0 == 0 && q.l1 == VL) vstore(at, x); else FN(vstore_lanes)(at, x, q.l0, q.l1);
    }
}

// Vector v of a group from the rows' broadcasts bc[r]: each lane gets its row's.
static ALWAYS_INLINE TARGET vec FN(flat_spread)(int C, const vec *bc, int v) {
    const int r0 = v * VL / C, r1 = (v * VL + VL - 1) / C;
    vec y = bc[r0];
    UNROLL for (int i = 1; i < FLAT_SPAN; i++)
        if (r0 + i <= r1) y = vblend(vmask_lanes((r0 + i) * C - v * VL, VL), y, bc[r0 + i]);
    return y;
}

// The spread weights of a problem's inner block [j0, j1): for each inner
// index j = k·kc + c, NW sets of NPV vectors (set q from column woff[q] of the
// packed weight row).
static ALWAYS_INLINE TARGET void FN(flat_spread_weights)(float *wx, const FN(rb_problem) *p, int C, int NW, long woff1) {
    const int NPV = FN(flat_vectors)(C);
    for (int k = p->j0 / p->kc; k * p->kc < p->j1; k++)
        for (int c = CK_MAX(p->j0 - k * p->kc, 0); c < CK_MIN(p->j1 - k * p->kc, p->kc); c++) {
            const float *row = p->b + k * p->tapstride + c * p->ldb;
            UNROLL for (int q = 0; q < NW; q++)
                UNROLL for (int v = 0; v < NPV; v++) vstore(wx + (q * NPV + v) * VL, FN(flat_load)(C, row + (q ? woff1 : 0), 0, v));
            wx += NW * NPV * VL;
        }
}

// acc[g·NA + q·NPV + v] += the product for the G groups of P rows from t,
// over the problem's inner block [j0, j1) (wx: that block's spread weights).
static ALWAYS_INLINE TARGET void FN(flat_mac)(const FN(rb_problem) *p, const float *wx, int C, int NW, int G, long t,
                                              vec *acc) {
    const int P = FN(flat_period)(C), NPV = FN(flat_vectors)(C), NA = NW * NPV;
    const long lda = p->lda;
    for (int k = p->j0 / p->kc; k * p->kc < p->j1; k++) {
        long r0 = t + (long)(p->K - 1 - k) * p->step;
        if (r0 + G * P - 1 < p->lo || r0 >= p->hi) continue;
        const float *a = p->a + r0 * lda;
        const int cb = CK_MAX(p->j0 - k * p->kc, 0), ce = CK_MIN(p->j1 - k * p->kc, p->kc);
        const float *w = wx + (long)(k * p->kc + cb - p->j0) * NA * VL;
        for (int c = cb; c < ce; c++, w += NA * VL) {
            if (FLAT_GROUPS_INNER) {
                vec bc[16];  // G·P ≤ 16 rows
                UNROLL for (int r = 0; r < G * P; r++) bc[r] = vset1(a[r * lda + c]);
                UNROLL for (int v = 0; v < NPV; v++)
                    UNROLL for (int q = 0; q < NW; q++) {
                        const vec wv = vload(w + (q * NPV + v) * VL);
                        UNROLL for (int g = 0; g < G; g++)
                            acc[g * NA + q * NPV + v] = vfma(FN(flat_spread)(C, bc + g * P, v), wv, acc[g * NA + q * NPV + v]);
                    }
                continue;
            }
            UNROLL for (int g = 0; g < G; g++) {
                vec bc[FLAT_PMAX];
                UNROLL for (int r = 0; r < P; r++) bc[r] = vset1(a[(g * P + r) * lda + c]);
                UNROLL for (int v = 0; v < NPV; v++) {
                    vec x = FN(flat_spread)(C, bc, v);
                    UNROLL for (int q = 0; q < NW; q++)
                        acc[g * NA + q * NPV + v] = vfma(x, vload(w + (q * NPV + v) * VL), acc[g * NA + q * NPV + v]);
                }
            }
        }
    }
}

// One flat tile of G groups from row t, its products and its epilogue.
static ALWAYS_INLINE TARGET void FN(flat_tile)(int kind, const FN(tile_job) *j, const float *wx, const float *wx2,
                                               const vec *bias, int C, int G, long t) {
    const int P = FN(flat_period)(C), NPV = FN(flat_vectors)(C);
    const int NW = (kind & TILE_KIND) == TILE_GATED ? 2 : 1, NA = NW * NPV;
    vec acc[CK_MAX(FLAT_ACC, FLAT_NA_MAX)];  // G·NA: at most FLAT_ACC, or NA alone (G = 1)
    switch (kind & TILE_KIND) {
    case TILE_PLAIN: {
        // The first inner block starts from add + bias, later ones from the
        // partial sums in out; the last one finishes (as plain_tile).
        const FN(plain_out) *o = j->plain;
        UNROLL for (int g = 0; g < G; g++)
            UNROLL for (int v = 0; v < NPV; v++)
                acc[g * NA + v] = !j->first ? FN(flat_load)(C, o->out + (t + g * P) * o->ldo, o->ldo, v)
                                : o->add ? vadd(bias[v], FN(flat_load)(C, o->add + (t + g * P) * o->lda, o->lda, v)) : bias[v];
        FN(flat_mac)(j->p, wx, C, 1, G, t, acc);
        UNROLL for (int g = 0; g < G; g++)
            UNROLL for (int v = 0; v < NPV; v++)
                FN(flat_store)(C, o->out + (t + g * P) * o->ldo, o->ldo, v,
                               j->last && o->relu ? vrelu(acc[g * NA + v]) : acc[g * NA + v]);
        break;
    }
    case TILE_GATED: {
        const FN(gated_out) *o = j->gated;
        UNROLL for (int g = 0; g < G; g++)
            UNROLL for (int v = 0; v < NA; v++) acc[g * NA + v] = bias[v];
        FN(flat_mac)(j->p, wx, C, 2, G, t, acc);
        UNROLL for (int g = 0; g < G; g++)
            UNROLL for (int v = 0; v < NPV; v++) {
                vec th = FN(v_tanh)(acc[g * NA + v]), sg = FN(v_sigmoid)(acc[g * NA + NPV + v]);
                const long row = t + g * P;
                if (o->gate) {
                    FN(flat_store)(C, o->gate + row * o->ldg, o->ldg, v, th);
                    FN(flat_store)(C, o->gate + row * o->ldg + o->D, o->ldg, v, sg);
                }
                if (o->z) FN(flat_store)(C, o->z + row * o->ldz, o->ldz, v, vmul(th, sg));
            }
        break;
    }
    default: {
        UNROLL for (int v = 0; v < G * NPV; v++) acc[v] = vzero();
        if (t + GATE_AHEAD + G * P <= j->end)
            UNROLL for (int i = 0; i < G * P; i++) {
                // Every cache line of the row (2C floats, seldom starting on a line).
                const float *row = j->gate + (t + GATE_AHEAD + i) * j->ldg;
                UNROLL for (int f = 0; f < 2 * C; f += 16) __builtin_prefetch(row + f, 0, 2);
                __builtin_prefetch(row + 2 * C - 1, 0, 2);
            }
        FN(flat_mac)(j->p, wx, C, 1, G, t, acc);
        if (j->p2) FN(flat_mac)(j->p2, wx2, C, 1, G, t, acc);
        const vec one = vset1(1.0f);
        UNROLL for (int g = 0; g < G; g++) {
            const long row = t + g * P;
            const float *gr = j->gate + row * j->ldg;
            UNROLL for (int v = 0; v < NPV; v++) {
                vec th_v = FN(flat_load)(C, gr, j->ldg, v), sg_v = FN(flat_load)(C, gr + C, j->ldg, v);
                vec gs = vmul(acc[g * NPV + v], sg_v);
                vec va = vmul(gs, vsub(one, vmul(th_v, th_v)));
                vec vg = vmul(vmul(gs, th_v), vsub(one, sg_v));
                if (j->dpre) {
                    FN(flat_store)(C, j->dpre + row * j->lddp, j->lddp, v, va);
                    FN(flat_store)(C, j->dpre + row * j->lddp + C, j->lddp, v, vg);
                }
            }
        }
        break;
    }
    }
}

// Whether a tile of `rows` rows from t has a tap partly inside its problem's rows.
static ALWAYS_INLINE TARGET int FN(flat_straddles)(const FN(tile_job) *j, long t, int rows) {
    return FN(rb_straddles)(j->p, t, rows) || (j->p2 && FN(rb_straddles)(j->p2, t, rows));
}

// The row tiles for the rows flat tiles leave (those whose taps straddle the
// sequence's ends, and the last few): one function per kind, not inlined into
// every width's flat driver.
static TARGET __attribute__((noinline)) void FN(row_tiles_plain)(const FN(tile_job) *j, long t0, long t1, int C) {
    FN(product_rows)(TILE_PLAIN, j, t0, t1, C);
}
static TARGET __attribute__((noinline)) void FN(row_tiles_gated)(const FN(tile_job) *j, long t0, long t1, int C) {
    FN(product_rows)(TILE_GATED, j, t0, t1, C);
}
static TARGET __attribute__((noinline)) void FN(row_tiles_gb)(const FN(tile_job) *j, long t0, long t1, int C) {
    FN(product_rows)(TILE_GATED_BACKWARD, j, t0, t1, C);
}
static ALWAYS_INLINE TARGET void FN(row_tiles)(int kind, const FN(tile_job) *j, long t0, long t1, int C) {
    switch (kind & TILE_KIND) {
    case TILE_PLAIN: FN(row_tiles_plain)(j, t0, t1, C); break;
    case TILE_GATED: FN(row_tiles_gated)(j, t0, t1, C); break;
    default: FN(row_tiles_gb)(j, t0, t1, C); break;
    }
}

// Rows [t0, t1) of an fp32 row-broadcast kernel in flat tiles of the constant
// width C; returns 0 (and does nothing) when they do not apply. A plain
// product whose spread weights would outgrow FLAT_WX (the stacked skip
// product, the head's input gradient, a long input gradient) goes in blocks
// of its inner dimension, partial sums through the output rows as the row
// tiles do it: every output is still one sum in the row tiles' order.
static ALWAYS_INLINE TARGET int FN(flat_rows)(int kind, const FN(tile_job) *j, long t0, long t1, int C) {
    const int gated = (kind & TILE_KIND) == TILE_GATED;
    const int NW = gated ? 2 : 1, P = FN(flat_period)(C), NPV = FN(flat_vectors)(C), NA = NW * NPV;
    if (C % VL == 0 || NA > FLAT_NA_MAX || P > FLAT_PMAX || (VL - 1) / C + 2 > FLAT_SPAN || !FLAT_KIND_OK(kind & TILE_KIND)) return 0;
    const FN(rb_problem) *p = j->p, *p2 = j->p2;
    const long inner = (long)(p->j1 - p->j0) + (p2 ? (long)(p2->j1 - p2->j0) : 0);
    int blocks = 1;
    if (inner * NA * VL > FLAT_WX) {
        // Blocks only for plain products, and only where the row tiles leave
        // at least a sixth of their lanes idle or a group is two rows (one
        // blend a group): at 28 channels (87.5 % of the lanes used, three
        // blends a group) the input gradient in blocks ran 0.8–0.88× the row
        // tiles; at 36 (75 %) 1.18×, 40 and 56 (two-row groups) 1.2–1.3×.
        if ((kind & TILE_KIND) != TILE_PLAIN || p2 || (P > 2 && 6 * FN(lanes_used_permille)(C) > 5000)) return 0;
        const long per = FLAT_WX / (NA * VL);
        blocks = (int)((inner + per - 1) / per);
    }
    if (FN(writes_bf16)(kind, j)) return 0;
#ifdef DOT_BEFORE_FLAT
    // A long inner dimension pays for a dot tail's reductions better than
    // for the flat tiles' blends (see the variant's DOT_BEFORE_FLAT).
    if (!gated && inner >= DOT_BEFORE_FLAT && FN(dot_tail)(kind, j, C)) return 0;
#endif
    float wx[FLAT_WX] __attribute__((aligned(64)));  // whole cache lines: each spread weight vector one line
    vec bias[FLAT_NA_MAX];
    const float *b = gated ? j->gated->bias : j->plain ? j->plain->bias : 0;
    UNROLL for (int q = 0; q < NW; q++)
        UNROLL for (int v = 0; v < NPV; v++)
            bias[q * NPV + v] = b ? FN(flat_load)(C, b + (q ? j->gated->P : 0), 0, v) : vzero();
    // `whole`: the problem as given (the straddle test, and the row tiles,
    // which compute their rows whole in the first block); `job`: one block.
    FN(tile_job) whole = *j, job = *j;
    whole.end = job.end = t1;
    whole.first = whole.last = 1;
    FN(rb_problem) pb = *p;
    job.p = &pb;
    const int G = FN(flat_groups)(C, NW);
    for (int blk = 0; blk < blocks; blk++) {
        pb.j0 = p->j0 + (int)((long)(p->j1 - p->j0) * blk / blocks);
        pb.j1 = p->j0 + (int)((long)(p->j1 - p->j0) * (blk + 1) / blocks);
        job.first = blk == 0;
        job.last = blk == blocks - 1;
        FN(flat_spread_weights)(wx, &pb, C, NW, gated ? j->gated->P : 0);
        const float *wx2 = wx + (long)(pb.j1 - pb.j0) * NA * VL;
        if (p2) FN(flat_spread_weights)((float *)wx2, p2, C, 1, 0);
        long t = t0;
        // Tiles of G groups; where one straddles, or near the end, single
        // groups; a group that straddles, and the last rows, in row tiles.
        while (t + P <= t1) {
            if (t + G * P <= t1 && !FN(flat_straddles)(&whole, t, G * P)) {
                FN(flat_tile)(kind, &job, wx, wx2, bias, C, G, t);
                t += G * P;
            } else if (!FN(flat_straddles)(&whole, t, P)) {
                FN(flat_tile)(kind, &job, wx, wx2, bias, C, 1, t);
                t += P;
            } else {
                if (blk == 0) FN(row_tiles)(kind, &whole, t, t + P, C);
                t += P;
            }
        }
        if (t < t1 && blk == 0) FN(row_tiles)(kind, &whole, t, t1, C);
    }
    return 1;
}

// The widths that have flat tiles (others, and those that do not gain on this
// variant's vectors, take the row tiles), and one flat driver for each kind
// and width.
#ifndef FLAT_WIDTHS
#define FLAT_WIDTHS(X) X(8) X(12) X(20) X(24) X(28) X(36) X(40) X(44) X(56)
#endif
#define FLAT_DRIVERS(W) \
    static TARGET __attribute__((noinline)) int FN(flat_plain_##W)(const FN(tile_job) *j, long t0, long t1) { return FN(flat_rows)(TILE_PLAIN, j, t0, t1, W); } \
    static TARGET __attribute__((noinline)) int FN(flat_gated_##W)(const FN(tile_job) *j, long t0, long t1) { return FN(flat_rows)(TILE_GATED, j, t0, t1, W); } \
    static TARGET __attribute__((noinline)) int FN(flat_gb_##W)(const FN(tile_job) *j, long t0, long t1) { return FN(flat_rows)(TILE_GATED_BACKWARD, j, t0, t1, W); }
FLAT_WIDTHS(FLAT_DRIVERS)
#undef FLAT_DRIVERS

// The fp32 products: PRODUCT_FLAT in flat tiles if they apply (returns
// whether they did), the other modes as product_row_tiles.
static ALWAYS_INLINE TARGET int FN(product_fp32)(int mode, int kind, const FN(tile_job) *j, long t0, long t1, int C) {
    if (mode == PRODUCT_FLAT) {
        switch (C) {
#define FLAT_CASE(W) \
        case W: \
            return kind == TILE_PLAIN ? FN(flat_plain_##W)(j, t0, t1) \
                 : kind == TILE_GATED ? FN(flat_gated_##W)(j, t0, t1) : FN(flat_gb_##W)(j, t0, t1);
        FLAT_WIDTHS(FLAT_CASE)
#undef FLAT_CASE
        default: return 0;
        }
    }
    return FN(product_row_tiles)(mode, kind, j, t0, t1, C);
}
#else
static ALWAYS_INLINE TARGET int FN(product_fp32)(int mode, int kind, const FN(tile_job) *j, long t0, long t1, int C) {
    if (mode == PRODUCT_FLAT) return 0;
    return FN(product_row_tiles)(mode, kind, j, t0, t1, C);
}
#endif

// Each fp32 entry point is a body (`mode`: flat tiles only, or row tiles)
// compiled twice: the flat tiles in a function of their own, tried first,
// and the row tiles in the entry point. Together in one function, the flat
// drivers' calls (with the job's address) cost the row tiles their register
// allocation and the constants the compiler knew of the job: on AVX2 the
// 20 -> 40 forward product and the gated forward at 20 ran at 0.7× and 0.64×.
// The half-width tiles' call (a job's address passed to another file) would
// cost the same, so it too has a function of its own, after the row tiles
// (PRODUCT_WIDE: those of the other vectors, or of all where no half tail applies).
#define FLAT_FIRST(name, params, args) \
    static TARGET __attribute__((noinline)) int FN(name##_flat) params { return FN(name##_body)(PRODUCT_FLAT, UNPAREN args); } \
    static TARGET __attribute__((noinline)) void FN(name##_half) params { FN(name##_body)(PRODUCT_HALF, UNPAREN args); } \
    static TARGET __attribute__((noinline)) void FN(name##_dot) params { FN(name##_body)(PRODUCT_DOT, UNPAREN args); } \
    static TARGET void FN(name) params { \
        if (FLAT_TILES && ck_flat_tiles() && FN(name##_flat) args) return; \
        const int tail = FN(name##_body)(PRODUCT_WIDE, UNPAREN args); \
        if (tail == PRODUCT_HALF) FN(name##_half) args; \
        else if (tail == PRODUCT_DOT) FN(name##_dot) args; \
    }
#define UNPAREN(...) __VA_ARGS__

// ---- The row-broadcast kernels ----------------------------------------------------------------

// The end of the rows a forward product may read: its own rows' end (a causal
// tap reads only earlier rows), or, with d < 0 (taps over later blocks of
// rows, all present), none.
static ALWAYS_INLINE long FN(forward_hi)(long t1, long d) { return d < 0 ? (long)1 << 62 : t1; }

static ALWAYS_INLINE TARGET int FN(conv_forward_body)(int mode, float *out, long ldo, const float *add, long lda,
                                                      const float *inp, long ldi, const float *wpacked,
                                                      long t0, long t1, int Cin, int Cout, int K, long d, int relu) {
    const long np = FN(round_pad)(Cout);
    FN(rb_problem) p = { inp, ldi, 0, FN(forward_hi)(t1, d), wpacked, np, (long)Cin * np, Cin, K, -d, 0, K * Cin, 0 };
    FN(plain_out) o = { out, ldo, add, lda, wpacked + (long)K * Cin * np, Cout, relu };
    FN(tile_job) job = { &p, 0, &o, 0, 0, 0, 0, 0, 0, 1, 1 };
    return FN(product_fp32)(mode, TILE_PLAIN, &job, t0, t1, Cout);
}
FLAT_FIRST(conv_forward, (float *out, long ldo, const float *add, long lda, const float *inp, long ldi, const float *wpacked,
                          long t0, long t1, int Cin, int Cout, int K, long d, int relu),
           (out, ldo, add, lda, inp, ldi, wpacked, t0, t1, Cin, Cout, K, d, relu))

static ALWAYS_INLINE TARGET int FN(conv_backward_input_body)(int mode, float *dinp, long lddi, int accumulate,
                                                             const float *dout, long lddo, const float *wpacked,
                                                             long t0, long t1, long T, int Cin, int Cout, int K, long d) {
    const long np = FN(round_pad)(Cin);
    FN(rb_problem) p = { dout, lddo, 0, T, wpacked, np, (long)Cout * np, Cout, K, d, 0, K * Cout, 0 };
    FN(plain_out) o = { dinp, lddi, accumulate ? dinp : 0, lddi, 0, Cin, 0 };
    FN(tile_job) job = { &p, 0, &o, 0, 0, 0, 0, 0, 0, 1, 1 };
    return FN(product_fp32)(mode, TILE_PLAIN, &job, t0, t1, Cin);
}
FLAT_FIRST(conv_backward_input, (float *dinp, long lddi, int accumulate, const float *dout, long lddo, const float *wpacked,
                                 long t0, long t1, long T, int Cin, int Cout, int K, long d),
           (dinp, lddi, accumulate, dout, lddo, wpacked, t0, t1, T, Cin, Cout, K, d))

static ALWAYS_INLINE TARGET int FN(conv_gated_forward_body)(int mode, float *gate, long ldg, float *z, long ldz,
                                                            const float *inp, long ldi, const float *wpacked,
                                                            long t0, long t1, int Cin, int D, int K, long d) {
    const long P = FN(round_pad)(D), np = 2 * P;
    FN(rb_problem) p = { inp, ldi, 0, t1, wpacked, np, (long)Cin * np, Cin, K, -d, 0, K * Cin, 0 };
    FN(gated_out) o = { gate, ldg, z, ldz, wpacked + (long)K * Cin * np, D, P };
    FN(tile_job) job = { &p, 0, 0, &o, 0, 0, 0, 0, 0, 1, 1 };
    return FN(product_fp32)(mode, TILE_GATED, &job, t0, t1, D);
}
FLAT_FIRST(conv_gated_forward, (float *gate, long ldg, float *z, long ldz, const float *inp, long ldi, const float *wpacked,
                                long t0, long t1, int Cin, int D, int K, long d),
           (gate, ldg, z, ldz, inp, ldi, wpacked, t0, t1, Cin, D, K, d))

static ALWAYS_INLINE TARGET int FN(gated_backward_product_body)(int mode, float *dpre, long lddp, const float *gate, long ldg,
                                                                const float *dskip, long ldds, const float *ws, long ldws, int S,
                                                                const float *dres, long lddr, const float *wr, long ldwr, int R,
                                                                long t0, long t1, int D) {
    const long never = (long)1 << 62;
    FN(rb_problem) skip = { dskip, ldds, 0, never, ws, ldws, 0, S, 1, 0, 0, S, 0 };
    FN(rb_problem) res = { dres, lddr, 0, never, wr, ldwr, 0, R, 1, 0, 0, R, 0 };
    FN(tile_job) job = { &skip, dres ? &res : 0, 0, 0, dpre, lddp, gate, ldg, D, 1, 1 };
    return FN(product_fp32)(mode, TILE_GATED_BACKWARD, &job, t0, t1, D);
}
FLAT_FIRST(gated_backward_product, (float *dpre, long lddp, const float *gate, long ldg, const float *dskip, long ldds,
                                    const float *ws, long ldws, int S, const float *dres, long lddr, const float *wr, long ldwr,
                                    int R, long t0, long t1, int D),
           (dpre, lddp, gate, ldg, dskip, ldds, ws, ldws, S, dres, lddr, wr, ldwr, R, t0, t1, D))

// ---- bf16 operands ----------------------------------------------------------------------------
//
// The same products with both operands in bf16 and fp32 accumulation: the
// activations as bf16 rows (pairs along the channels, an odd count padded
// with a zero), the weights packed as words of two bf16 (ck_pack_*_bf16),
// so that each vdot2 does two channels. Epilogues (bias, residual add, ReLU,
// the gated unit and its backward) stay in fp32, as do the outputs.

static TARGET void FN(conv_forward_bf16)(float *out, long ldo, const float *add, long lda,
                                         const unsigned short *inp, long ldi, const float *wpacked,
                                         long t0, long t1, int Cin, int Cout, int K, long d, int relu,
                                         unsigned short *out16, long ldo16) {
    const long np = FN(round_pad)(Cout);
    const int pairs = (Cin + 1) / 2;
    FN(rb_problem) p = { 0, ldi, 0, FN(forward_hi)(t1, d), wpacked, np, (long)pairs * np, pairs, K, -d, 0, K * pairs, inp };
    FN(plain_out) o = { out, ldo, add, lda, wpacked + (long)K * pairs * np, Cout, relu, out16, ldo16 };
    FN(tile_job) job = { &p, 0, &o, 0, 0, 0, 0, 0, 0, 1, 1 };
    FN(product_rows)(TILE_PLAIN | TILE_BF16, &job, t0, t1, Cout);
}

static TARGET void FN(conv_backward_input_bf16)(float *dinp, long lddi, int accumulate,
                                                const unsigned short *dout, long lddo, const float *wpacked,
                                                long t0, long t1, long T, int Cin, int Cout, int K, long d,
                                                unsigned short *dinp16, long lddi16, const unsigned short *relu_y, long ldy) {
    const long np = FN(round_pad)(Cin);
    const int pairs = (Cout + 1) / 2;
    FN(rb_problem) p = { 0, lddo, 0, T, wpacked, np, (long)pairs * np, pairs, K, d, 0, K * pairs, dout };
    FN(plain_out) o = { dinp, lddi, accumulate ? dinp : 0, lddi, 0, Cin, 0, dinp16, lddi16, relu_y, ldy };
    FN(tile_job) job = { &p, 0, &o, 0, 0, 0, 0, 0, 0, 1, 1 };
    FN(product_rows)(TILE_PLAIN | TILE_BF16, &job, t0, t1, Cin);
}

static TARGET void FN(conv_gated_forward_bf16)(float *gate, long ldg, float *z, long ldz,
                                               const unsigned short *inp, long ldi, const float *wpacked,
                                               long t0, long t1, int Cin, int D, int K, long d,
                                               unsigned short *z16, long ldz16, unsigned short *s16, long lds16) {
    const long P = FN(round_pad)(D), np = 2 * P;
    const int pairs = (Cin + 1) / 2;
    FN(rb_problem) p = { 0, ldi, 0, t1, wpacked, np, (long)pairs * np, pairs, K, -d, 0, K * pairs, inp };
    FN(gated_out) o = { gate, ldg, z, ldz, wpacked + (long)K * pairs * np, D, P, z16, ldz16, s16, lds16 };
#ifdef VSTREAM_BF16
    // The slopes are read back only by the backward pass, long after, so
    // they are stored past the caches: no read of the lines first, no
    // eviction of the rows the next layers read (a bf16 training run's
    // kernels took 0.9 % less time). Only where every 64-byte line of a slope
    // row is written whole within one column chunk (2 vectors of a and of g):
    // D a multiple of 32, or 16; rows on 64-byte boundaries.
    o.stream = s16 && (D % 32 == 0 || D == 16) && !((uintptr_t)s16 & 63) && !((lds16 * 2) & 63) && NV_MAX / 2 * VL == 32;
#endif
    FN(tile_job) job = { &p, 0, 0, &o, 0, 0, 0, 0, 0, 1, 1 };
    FN(product_rows)(TILE_GATED | TILE_BF16, &job, t0, t1, D);
#ifdef VSTREAM_BF16
    if (o.stream) vstream_fence();
#endif
}

static TARGET void FN(gated_backward_product_bf16)(float *dpre, long lddp, const float *gate, long ldg,
                                                   const unsigned short *dskip, long ldds, const float *ws, long ldws, int S,
                                                   const unsigned short *dres, long lddr, const float *wr, long ldwr, int R,
                                                   long t0, long t1, int D, unsigned short *dpre16, long lddp16,
                                                   const unsigned short *s16, long lds16) {
    const long never = (long)1 << 62;
    const int sp = (S + 1) / 2, rp = (R + 1) / 2;
    FN(rb_problem) skip = { 0, ldds, 0, never, ws, ldws, 0, sp, 1, 0, 0, sp, dskip };
    FN(rb_problem) res = { 0, lddr, 0, never, wr, ldwr, 0, rp, 1, 0, 0, rp, dres };
    FN(tile_job) job = { &skip, dres ? &res : 0, 0, 0, dpre, lddp, gate, ldg, D, 1, 1, 0, dpre16, lddp16, s16, lds16 };
    FN(product_rows)(TILE_GATED_BACKWARD | TILE_BF16, &job, t0, t1, D);
}

// out[r] = inp[r] rounded to bf16, for `rows` rows of C floats; an odd C
// gets a zero in column C, so that every row is whole pairs.
static TARGET void FN(round_bf16)(unsigned short *out, long ldo, const float *inp, long ldi, long rows, int C) {
    for (long r = 0; r < rows; r++) {
        const float *x = inp + r * ldi;
        unsigned short *y = out + r * ldo;
        int j = 0;
        for (; j + VL <= C; j += VL) vstore_bf16(y + j, vload(x + j), VL);
        if (j < C) {
            vmask m = vmask_first(C - j);
            vstore_bf16(y + j, FN(vload_n)(x + j, C - j, m, vzero()), C - j);
        }
        if (C & 1) y[C] = 0;
    }
}

// ---- Weight gradient: a reduction over time ---------------------------------------------------
//
// dW_k[o, c] += Σ_t dout[t, o] · inp[t - s_k, c]: the register tile holds MR
// output channels o × NV vectors of input channels c and sweeps a block of
// TC rows, broadcasting dout[t, o..o+MR) and loading inp[t - s_k, c-vectors].
// The block's rows stay in L1 while all taps and tiles sweep them.
//
// While a tile sweeps the block it can also ask for its own columns of the
// next block's rows (pf rows ahead) to be brought into L2: those are the
// activations the forward pass saved (4 MiB a layer at T = 8192, often out
// of the shared L3 by now), and a layer's z is a column block of the stacked
// rows, whose stride the hardware prefetchers do not follow (measured: a step
// about 3 % faster). `pfg` asks for dout's columns, `pfx` for the inputs';
// the driver sets them on one tile per column each. Rows past the last one
// may be asked for near the end: harmless, a prefetch never faults. (A
// separate pass over the next block's rows before the tiles, as this was
// first written, cost a 16-wide weight gradient 40 % of its time in loop
// overhead, measured with its operands in cache.)
//
// With bf16 operands (bf = 1, see conv_backward_weight_bf16) the same tile
// reads words of two bf16 instead of floats: each "row" t is a pair of rows,
// and one vdot2 adds both rows' products. The operands are then rounded
// copies, zero-padded to whole vectors, in L1: no masked loads, no prefetches.
// The sweep of rows [ta, tb) into the tile's accumulators.
static ALWAYS_INLINE TARGET void FN(wg_sweep)(int bf, vec acc[][NV_MAX], const float *dout, long lddo,
                                              const float *inp, long ldi, long ta, long tb, long s,
                                              int o0, int c0, int MR, int NV, int tail, vmask mt, long pf, int pfg, int pfx) {
    if (!bf) {
        // The rows through one pointer each (PIN): every broadcast operand
        // base + displacement (16 -> 16 alone: 1.28× as fast as indexed by
        // the row).
        const float *x = inp + (ta - s) * ldi + c0, *g = dout + ta * lddo + o0;
        for (long t = ta; t < tb; t++) {
            if (pfg) { __builtin_prefetch(g + pf * lddo, 0, 2); __builtin_prefetch(g + pf * lddo + MR - 1, 0, 2); }
            if (pfx) UNROLL for (int v = 0; v < NV; v++) __builtin_prefetch(x + pf * ldi + v * VL, 0, 2);
            vec bv[NV_MAX];
            UNROLL for (int v = 0; v < NV; v++) bv[v] = FN(vload_n)(x + v * VL, v == NV - 1 ? tail : VL, mt, vzero());
            UNROLL for (int i = 0; i < MR; i++) {
                vec av = vset1(g[i]);
                UNROLL for (int v = 0; v < NV; v++) acc[i][v] = vfma(av, bv[v], acc[i][v]);
            }
            x += ldi;
            g += lddo;
            PIN(x);
            PIN(g);
        }
        return;
    }
    // bf16 operands: words of two rows each (see conv_backward_weight_bf16).
    for (long t = ta; t < tb; t++) {
        const float *x = inp + (t - s) * ldi + c0;
        const float *g = dout + t * lddo + o0;
        pvec bp[NV_MAX];
        UNROLL for (int v = 0; v < NV; v++) bp[v] = pload(x + v * VL);
        UNROLL for (int i = 0; i < MR; i++) {
            pvec av = pbroadcast((const unsigned short *)(g + i));
            UNROLL for (int v = 0; v < NV; v++) acc[i][v] = vdot2(acc[i][v], av, bp[v]);
        }
    }
}

static ALWAYS_INLINE TARGET void FN(wg_tile)(int bf, float *dw, int Cin, const float *dout, long lddo,
                                             const float *inp, long ldi, long ta, long tb, long s,
                                             int o0, int c0, int MR, int NV, int tail, long pf, int pfg, int pfx) {
    vec acc[MR_MAX][NV_MAX];
    vmask mt = vmask_first(tail);
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) {
            float *p = dw + (long)(o0 + i) * Cin + c0 + v * VL;
            acc[i][v] = FN(vload_n)(p, v == NV - 1 ? tail : VL, mt, vzero());
        }
    // The sweep is compiled apart for the prefetch flags' common cases (none;
    // dout's only), so that its loop tests neither: a tile of one vector (8
    // FMAs a row on AVX2) otherwise spent as much on those tests and the
    // spilled registers they cost as on its FMAs (Zen 1: 8 -> 16 channels
    // 1.3× as fast, 20 -> 20 1.15×; Benchmarks/ab/kernel.sh).
    if (bf) FN(wg_sweep)(1, acc, dout, lddo, inp, ldi, ta, tb, s, o0, c0, MR, NV, tail, mt, pf, 0, 0);
    else if (!pfg && !pfx) FN(wg_sweep)(0, acc, dout, lddo, inp, ldi, ta, tb, s, o0, c0, MR, NV, tail, mt, pf, 0, 0);
    else if (!pfx) FN(wg_sweep)(0, acc, dout, lddo, inp, ldi, ta, tb, s, o0, c0, MR, NV, tail, mt, pf, 1, 0);
    else FN(wg_sweep)(0, acc, dout, lddo, inp, ldi, ta, tb, s, o0, c0, MR, NV, tail, mt, pf, pfg, 1);
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) {
            float *p = dw + (long)(o0 + i) * Cin + c0 + v * VL;
            FN(vstore_n)(p, acc[i][v], v == NV - 1 ? tail : VL, mt);
        }
}

// Output channels [o0, o1) of one column chunk (NV vectors from c0) over rows
// [ta, tb). With pf > 0, the tiles ask for the next block's rows: dout's if
// pfg, the inputs' in the first tile if pfx.
static ALWAYS_INLINE TARGET void FN(wg_chunk)(int bf, float *dw, int Cin, int o0, int o1, const float *dout, long lddo,
                                              const float *inp, long ldi, long ta, long tb, long s,
                                              int c0, int NV, int tail, long pf, int pfg, int pfx) {
    const int MR = bf && !BF16_NATIVE ? MR_EMU_OF(NV) : MR_OF(NV);
    int o = o0;
    // Tiles of MR rows, then of 4 and of 2 (rather than single rows, each of
    // which loads its input vectors for only NV FMAs: 32 outputs in tiles of
    // 6 ran 11 % slower than 30), then single rows.
#define WG_ROWS(H, USE) \
    for (; o + (H) <= o1 && (USE); o += (H)) \
        FN(wg_tile)(bf, dw, Cin, dout, lddo, inp, ldi, ta, tb, s, o, c0, (H), NV, tail, pf, pf && pfg, pf && pfx && o == o0)
    WG_ROWS(MR, 1);
    WG_ROWS(4, MR > 4);
    WG_ROWS(2, MR > 2);
    WG_ROWS(1, 1);
#undef WG_ROWS
}

#ifdef VPART
// wg_chunk for each vector count and last vector's lane count, as a function
// of its own (see wg_chunk_tail): inlined at each of conv_backward_weight's
// call sites, the 8 lane counts × NV_MAX vector counts × 4 tile heights × 4
// sweeps made one function that clang took minutes to optimise (9.5 of the
// avx512-256 variant's 13 minutes, its weight gradient alone; a call per
// chunk costs nothing the tiles would notice).
#define WG_FIXED(nv, n)                                                                                                       \
    static TARGET __attribute__((noinline)) void FN(wg_chunk_##nv##_##n)(float *dw, int Cin, int o0, int o1, const float *dout, \
                                                                        long lddo, const float *inp, long ldi, long ta,     \
                                                                        long tb, long s, int c0, long pf, int pfg, int pfx) { \
        FN(wg_chunk)(0, dw, Cin, o0, o1, dout, lddo, inp, ldi, ta, tb, s, c0, nv, n, pf, pfg, pfx);                          \
    }
#define WG_FIXED_TAILS(nv) WG_FIXED(nv, 1) WG_FIXED(nv, 2) WG_FIXED(nv, 3) WG_FIXED(nv, 4) \
                           WG_FIXED(nv, 5) WG_FIXED(nv, 6) WG_FIXED(nv, 7) WG_FIXED(nv, 8)
WG_FIXED_TAILS(1)
WG_FIXED_TAILS(2)
#if NV_MAX >= 3
WG_FIXED_TAILS(3)
#endif
#if NV_MAX >= 4
WG_FIXED_TAILS(4)
#endif
#undef WG_FIXED_TAILS
#undef WG_FIXED
#endif

// wg_chunk with the chunk's last vector's lane count (tail) a constant, on a
// variant that loads a ragged vector in pieces (VPART): with tail a variable,
// each row's load chose its pieces by branches (20 -> 20 on Zen 1: 1.14× as
// fast with constants). The bf16 operands are padded to whole vectors.
static ALWAYS_INLINE TARGET void FN(wg_chunk_tail)(int bf, float *dw, int Cin, int o0, int o1, const float *dout, long lddo,
                                                   const float *inp, long ldi, long ta, long tb, long s,
                                                   int c0, int NV, int tail, long pf, int pfg, int pfx) {
#ifdef VPART
    _Static_assert(VL == 8, "the cases below are AVX2's lane counts");
    if (!bf) {
#define WG_TAIL(nv, n) case n: FN(wg_chunk_##nv##_##n)(dw, Cin, o0, o1, dout, lddo, inp, ldi, ta, tb, s, c0, pf, pfg, pfx); return;
#define WG_TAILS(nv) switch (tail) { WG_TAIL(nv, 1) WG_TAIL(nv, 2) WG_TAIL(nv, 3) WG_TAIL(nv, 4) \
                                     WG_TAIL(nv, 5) WG_TAIL(nv, 6) WG_TAIL(nv, 7) WG_TAIL(nv, 8) default: break; }
        switch (NV) {
        case 1: WG_TAILS(1) break;
        case 2: WG_TAILS(2) break;
#if NV_MAX >= 3
        case 3: WG_TAILS(3) break;
#endif
#if NV_MAX >= 4
        case 4: WG_TAILS(4) break;
#endif
        default: break;
        }
#undef WG_TAILS
#undef WG_TAIL
    }
#endif
    FN(wg_chunk)(bf, dw, Cin, o0, o1, dout, lddo, inp, ldi, ta, tb, s, c0, NV, tail, pf, pfg, pfx);
}

// Every tile of output channels [oa, ob) × input channels [ca, cb) over rows
// [ta, tb): blocks of OB output channels (a block's columns of dout stay in
// L1 while every chunk of input channels sweeps them), chunks of up to
// NV_MAX vectors. dout's columns are asked for by the first chunk's tiles
// (if pfg), the inputs' by each chunk's first tiles.
static ALWAYS_INLINE TARGET void FN(wg_tiles)(int bf, float *dw, int Cin, int oa, int ob, int ca, int cb,
                                              const float *dout, long lddo, const float *inp, long ldi,
                                              long ta, long tb, long s, long pf, int pfg) {
    const int nvec = (cb - ca + VL - 1) / VL;
    for (int o0 = oa; o0 < ob; o0 += OB) {
        const int o1 = CK_MIN(ob, o0 + OB);
        for (int v0 = 0; v0 < nvec; v0 += NV_MAX) {
            int nv = CK_MIN(NV_MAX, nvec - v0);
            int c0 = ca + v0 * VL;
            int tail = CK_MIN(VL, cb - (c0 + (nv - 1) * VL));
            switch (nv) {
#if NV_MAX >= 4
            case 4: FN(wg_chunk_tail)(bf, dw, Cin, o0, o1, dout, lddo, inp, ldi, ta, tb, s, c0, 4, tail, pf, pfg && v0 == 0, o0 == oa); break;
#endif
#if NV_MAX >= 3
            case 3: FN(wg_chunk_tail)(bf, dw, Cin, o0, o1, dout, lddo, inp, ldi, ta, tb, s, c0, 3, tail, pf, pfg && v0 == 0, o0 == oa); break;
#endif
            case 2: FN(wg_chunk_tail)(bf, dw, Cin, o0, o1, dout, lddo, inp, ldi, ta, tb, s, c0, 2, tail, pf, pfg && v0 == 0, o0 == oa); break;
            default: FN(wg_chunk_tail)(bf, dw, Cin, o0, o1, dout, lddo, inp, ldi, ta, tb, s, c0, 1, tail, pf, pfg && v0 == 0, o0 == oa); break;
            }
        }
    }
}

// Sums of rows [t0, t1) over NV vectors from column c0, added to sums. U
// rows at a time into U sets of accumulators: an addition waits 4 cycles for
// the one before it in its set, so one or two sets (as this was written
// first) left the adders idle most of the time and cost a 16-wide weight
// gradient a quarter of its time in the bias sum. With `whole`, all NV
// are whole vectors and their widths constants: plain loads with no test of
// the width per load (which made the sums take about 2 cycles per vector
// addition on Zen 1, against 1.2 so); else they may be ragged.
static ALWAYS_INLINE TARGET void FN(colsum_vectors)(float *sums, const float *x, long ldx, long t0, long t1,
                                                    int c0, int C, int NV, int U, int whole) {
    vec acc[8][NV_MAX];
    vmask m[NV_MAX];
    int n[NV_MAX];
    UNROLL for (int v = 0; v < NV; v++) {
        n[v] = whole ? VL : CK_MAX(0, CK_MIN(VL, C - c0 - v * VL));
        m[v] = vmask_first(n[v]);
        UNROLL for (int u = 0; u < U; u++) acc[u][v] = vzero();
    }
    long t = t0;
    for (; t + U <= t1; t += U)
        UNROLL for (int u = 0; u < U; u++)
            UNROLL for (int v = 0; v < NV; v++)
                acc[u][v] = vadd(acc[u][v], FN(vload_n)(x + (t + u) * ldx + c0 + v * VL, n[v], m[v], vzero()));
    for (; t < t1; t++)
        UNROLL for (int v = 0; v < NV; v++)
            acc[0][v] = vadd(acc[0][v], FN(vload_n)(x + t * ldx + c0 + v * VL, n[v], m[v], vzero()));
    UNROLL for (int v = 0; v < NV; v++) {
        UNROLL for (int h = U / 2; h >= 1; h /= 2)
            UNROLL for (int u = 0; u < h; u++) acc[u][v] = vadd(acc[u][v], acc[u + h][v]);
        float *p = sums + c0 + v * VL;
        FN(vstore_n)(p, vadd(FN(vload_n)(p, n[v], m[v], vzero()), acc[0][v]), n[v], m[v]);
    }
}

// A ragged vector of columns (n < VL lanes from c0), in U chains.
static TARGET __attribute__((noinline)) void FN(colsum_ragged)(float *sums, const float *x, long ldx, long t0, long t1,
                                                               int c0, int C, int U) {
    if (U == 8) FN(colsum_vectors)(sums, x, ldx, t0, t1, c0, C, 1, 8, 0);
    else if (U == 4) FN(colsum_vectors)(sums, x, ldx, t0, t1, c0, C, 1, 4, 0);
    else FN(colsum_vectors)(sums, x, ldx, t0, t1, c0, C, 1, 2, 0);
}

// A chunk of NV vectors of columns: the whole ones together, a ragged last
// one in a pass of its own (each column's sum in the same U chains, so the
// same results as one pass).
static ALWAYS_INLINE TARGET void FN(colsum_chunk)(float *sums, const float *x, long ldx, long t0, long t1,
                                                  int c0, int C, int NV) {
    const int U = NV == 1 ? 8 : NV == 2 ? 4 : 2;
    if (C - c0 >= NV * VL) { FN(colsum_vectors)(sums, x, ldx, t0, t1, c0, C, NV, U, 1); return; }
    if (NV > 1) FN(colsum_vectors)(sums, x, ldx, t0, t1, c0, C, NV - 1, U, 1);
    FN(colsum_ragged)(sums, x, ldx, t0, t1, c0 + (NV - 1) * VL, C, U);
}

// sums[c] += Σ_{t0 ≤ t < t1} x[t·ldx + c] for c < C (fp32 rows; the bf16
// weight gradient sums bf16 rows with pair_sums, below).
static TARGET void FN(column_sums_range)(float *sums, const float *x, long ldx, long t0, long t1, int C) {
    for (int c0 = 0; c0 < C; c0 += NV_MAX * VL) {
        int nv = CK_MIN(NV_MAX, (C - c0 + VL - 1) / VL);
        switch (nv) {
#if NV_MAX >= 4
        case 4: FN(colsum_chunk)(sums, x, ldx, t0, t1, c0, C, 4); break;
#endif
#if NV_MAX >= 3
        case 3: FN(colsum_chunk)(sums, x, ldx, t0, t1, c0, C, 3); break;
#endif
        case 2: FN(colsum_chunk)(sums, x, ldx, t0, t1, c0, C, 2); break;
        default: FN(colsum_chunk)(sums, x, ldx, t0, t1, c0, C, 1); break;
        }
    }
}

// ---- The weight gradient's swapped input tail ---------------------------------------------------
//
// dwt[c][o] += Σ_{ta <= t < tb} x[t·ldx + c] · dout[t·lddo + o] for the n <= VL/2
// input channels c of a ragged last vector (x: their rows, already shifted
// by the tap) and every output o: each channel's value broadcast against
// dout's rows along the lanes. In the general tiles these were tiles of one
// row and NV_MAX vectors, whose two FMAs a row each waited for the one
// before (at 17 -> 34 on Zen 2 the weight gradient, tail included, ran at
// 0.6× its rate at 16 -> 34). Up to FEW_G channels go together, so that
// each row's vectors of dout are loaded once for all of them (one channel
// at a time, as this was first written, loaded them once per channel: at
// 19 -> 19 on Zen 2 the 3-channel tail ran at a third of the kernel's rate);
// a single channel keeps two sets of sums, over even and odd rows, so that
// its FMAs do not wait for each other.
#ifndef FEW_NV
#define FEW_NV (NV_MAX >= 4 ? 8 : 5)
#endif
#define FEW_G 4
// Vector registers the tile's sums, broadcasts and one loaded vector may take.
#define FEW_REGS (NV_MAX >= 4 ? 31 : 15)
// Vectors of dout a tile of G channels takes.
#define FEW_VECTORS(G) ((G) == 1 ? FEW_NV : CK_MIN(FEW_NV, (FEW_REGS - 1 - (G)) / (G)))

// One row's products into one set of sums: x its input channels, row its dout values.
static ALWAYS_INLINE TARGET void FN(wg_few_row)(vec acc[][FEW_NV], const float *x, const float *row,
                                                int G, int NV, int tail, vmask mt) {
    vec a[FEW_G];
    UNROLL for (int g = 0; g < G; g++) a[g] = vset1(x[g]);
    UNROLL for (int v = 0; v < NV; v++) {
        const vec b = FN(vload_n)(row + v * VL, v == NV - 1 ? tail : VL, mt, vzero());
        UNROLL for (int g = 0; g < G; g++) acc[g][v] = vfma(a[g], b, acc[g][v]);
    }
}

// Channels [0, G) of x into dw's rows (ldw apart), NV vectors of outputs.
static ALWAYS_INLINE TARGET void FN(wg_few_chunk)(float *dw, long ldw, const float *x, long ldx, const float *dout, long lddo,
                                                  long ta, long tb, int G, int NV, int tail) {
    const int S = G == 1 ? 2 : 1;
    vec acc[2][FEW_G][FEW_NV];
    const vmask mt = vmask_first(tail);
    UNROLL for (int g = 0; g < G; g++)
        UNROLL for (int v = 0; v < NV; v++) {
            acc[0][g][v] = FN(vload_n)(dw + g * ldw + v * VL, v == NV - 1 ? tail : VL, mt, vzero());
            if (S == 2) acc[1][g][v] = vzero();
        }
    // The rows through one pointer each (PIN; with one channel, each dout
    // vector feeds one FMA, which took it as an operand indexed by the row).
    const float *xr = x + ta * ldx, *dr = dout + ta * lddo;
    long t = ta;
    for (; t + S <= tb; t += S) {
        UNROLL for (int u = 0; u < S; u++) {
            FN(wg_few_row)(acc[u], xr, dr, G, NV, tail, mt);
            xr += ldx;
            dr += lddo;
            PIN(xr);
            PIN(dr);
        }
    }
    if (t < tb) FN(wg_few_row)(acc[0], xr, dr, G, NV, tail, mt);
    UNROLL for (int g = 0; g < G; g++)
        UNROLL for (int v = 0; v < NV; v++)
            FN(vstore_n)(dw + g * ldw + v * VL, S == 2 ? vadd(acc[0][g][v], acc[1][g][v]) : acc[0][g][v],
                         v == NV - 1 ? tail : VL, mt);
}

static ALWAYS_INLINE TARGET void FN(wg_few_group)(float *dw, int Cout, const float *x, long ldx, const float *dout, long lddo,
                                                  long ta, long tb, int G) {
    const int step = FEW_VECTORS(G);
    for (int o0 = 0; o0 < Cout; o0 += step * VL) {
        const int nv = CK_MIN(step, (Cout - o0 + VL - 1) / VL), tail = CK_MIN(VL, Cout - o0 - (nv - 1) * VL);
        switch (nv) {
#define FEW_CASE(k) case k: if (k <= FEW_VECTORS(G)) FN(wg_few_chunk)(dw + o0, Cout, x, ldx, dout + o0, lddo, ta, tb, G, k, tail); break;
        FEW_CASE(1) FEW_CASE(2) FEW_CASE(3) FEW_CASE(4) FEW_CASE(5)
#if FEW_NV >= 8
        FEW_CASE(6) FEW_CASE(7) FEW_CASE(8)
#endif
#undef FEW_CASE
        default: break;
        }
    }
}

static TARGET __attribute__((noinline)) void FN(wg_few)(float *dwt, int n, int Cout, const float *x, long ldx,
                                                        const float *dout, long lddo, long ta, long tb) {
    for (int c = 0; c < n; c += FEW_G) {
        float *dw = dwt + (long)c * Cout;
        switch (CK_MIN(FEW_G, n - c)) {
        case 1: FN(wg_few_group)(dw, Cout, x + c, ldx, dout, lddo, ta, tb, 1); break;
        case 2: FN(wg_few_group)(dw, Cout, x + c, ldx, dout, lddo, ta, tb, 2); break;
        case 3: FN(wg_few_group)(dw, Cout, x + c, ldx, dout, lddo, ta, tb, 3); break;
        default: FN(wg_few_group)(dw, Cout, x + c, ldx, dout, lddo, ta, tb, 4); break;
        }
    }
}

// Floats of the transposed gradient a call may keep on the stack (64 KiB).
#define WG_SWAP_MAX 16384
// The most input channels a ragged last vector may have to go the swapped
// way (see conv_backward_weight); a variant may allow more.
#ifndef WG_TAIL_SWAP_MAX
#define WG_TAIL_SWAP_MAX (VL / 2)
#endif

static TARGET void FN(conv_backward_weight)(float *dweight, float *dbias,
                                            const float *dout, long lddo, const float *inp, long ldi,
                                            long t0, long t1, int Cin, int Cout, int K, long d) {
    // The tiles put the input channels along the lanes, broadcasting dout;
    // where the output channels fill the vectors more than 1.2 times as well
    // (20 inputs and 40 outputs: 83 % of the lanes instead of 62.5 %; at 50
    // and 100, 89 % against 78 %, the kernel alone ran 0.96× as fast, so
    // those keep the inputs' lanes), they swap: broadcast the inputs, load
    // dout's rows, into the gradient transposed, dwT[k][c][o], added to
    // dweight at the end.
    const int cfull = Cin / VL * VL, ntail = Cin - cfull;
    const int tail_swap = ck_wg_swap() && ntail > 0 && ntail <= WG_TAIL_SWAP_MAX && cfull > 0
                          && FN(whole_chunks)(Cin, NV_MAX) && (long)K * ntail * Cout <= WG_SWAP_MAX;
    const int swap = !tail_swap && ck_wg_swap() && (long)K * Cin * Cout <= WG_SWAP_MAX
                     && 5 * FN(lanes_used_permille)(Cout) > 6 * FN(lanes_used_permille)(Cin);
    // A ragged last vector of at most WG_TAIL_SWAP_MAX input channels (VL/2
    // unless the variant says otherwise) that would be a
    // chunk of its own (the whole vectors before it fill chunks of NV_MAX:
    // Cin = 17 on AVX2, 16 + 1) would have tiles that load one vector, mostly
    // idle lanes, and broadcast a dout value per FMA. Its few channels go the
    // swapped way instead (broadcast, dout's rows along the lanes, in
    // wg_few's tiles, added at the end like the swapped gradient); the kernel
    // alone on Zen 2 (AVX2, best of 2): 17 -> 17 1.13–1.16×, 18 -> 18 1.14×,
    // 33 -> 33 1.13× the inputs' lanes. This is preferred to swapping all
    // inputs: at 17 -> 34 (34 outputs fill 85 % of the lanes, 17 inputs 71 %)
    // the full swap's last chunk was one vector of 2 lanes (46 GFLOP/s on
    // Zen 2, T 8192; the tail in wg_few 67).
    // Input channels [0, sw) along the lanes, into dweight; [sw, Cin) the
    // swapped way, into dwt[k][c - sw][o] (all of them, the tail, or none).
    const int sw = swap ? 0 : tail_swap ? cfull : Cin, nsw = Cin - sw;
    float dwt[WG_SWAP_MAX] __attribute__((aligned(64)));
    if (nsw) memset(dwt, 0, sizeof(float) * (size_t)K * nsw * Cout);
    for (long ta = t0; ta < t1; ta += TC) {
        long tb = CK_MIN(t1, ta + TC);
        // Rows of the next block, asked for while this one computes (see wg_tile).
        const long pf = tb < t1 ? TC : 0;
        int first_tap = 1;
        if (dbias) FN(column_sums_range)(dbias, dout, lddo, ta, tb, Cout);
        for (int k = 0; k < K; k++) {
            long s = (long)(K - 1 - k) * d;
            long ts = CK_MAX(ta, s);
            if (ts >= tb) continue;
            // dout's columns once (the first tap's tiles), each tap's input rows once.
            if (sw)
                FN(wg_tiles)(0, dweight + (long)k * Cout * Cin, Cin, 0, Cout, 0, sw, dout, lddo, inp, ldi, ts, tb, s, pf, first_tap);
            // Row t of the broadcast operand is inp's row t − s (each tap's rows
            // asked for when all go this way); dwt's row c at (k·nsw + c − sw)·Cout.
            if (swap)
                FN(wg_tiles)(0, FN(address_at)(dwt, ((long)k * nsw - sw) * Cout), Cout, sw, Cin, 0, Cout,
                             FN(address_at)(inp, -s * ldi), ldi, dout, lddo, ts, tb, 0, pf, 1);
            else if (nsw)
                FN(wg_few)(dwt + (long)k * nsw * Cout, nsw, Cout, FN(address_at)(inp, -s * ldi + sw), ldi, dout, lddo, ts, tb);
            first_tap = 0;
        }
    }
    for (int k = 0; k < K && nsw; k++)
        for (int o = 0; o < Cout; o++) {
            float *w = dweight + ((long)k * Cout + o) * Cin;
            const float *wt = dwt + (long)k * nsw * Cout + o;
            for (int c = sw; c < Cin; c++) w[c] += wt[(long)(c - sw) * Cout];
        }
}

// ---- Weight gradient with bf16 operands ---------------------------------------------------------
//
// The same reduction with dout and inp rounded to bf16 and fp32 accumulation.
// vdot2 pairs along the reduction, i.e. along time: a word holds rows t and
// t + 1 of one channel (t in the low half), the lanes are input channels and
// the broadcast word is dout's rows t, t + 1 of one output channel, so one
// vdot2 adds acc + dout[t+1]·inp[t+1-s] + dout[t]·inp[t-s] (rounded after
// each addition, as every bf16 product). The caller's rows are fp32 or
// already bf16 (then channel after channel, as the other bf16 products read
// them): each block of rows (TCB) is rounded (or only interleaved) into that
// layout on the stack, SLAB channels at a time (dout's once per block, each
// tap's inputs once per tap), where all the block's tiles read it from L1; no
// copy outlives the call. A row missing from a pair (an input row before 0, a
// row past the block) is zero. The bias gradient sums dout's rows as given.
//
// Reading the bf16 rows the forward and backward products already wrote,
// rather than fp32 rows, halves the bytes this kernel reads and spares the
// rounding (a quarter of its time with fp32 operands), and lets a bf16 step
// skip writing the fp32 copies only the weight gradients read (z, dpre).

// Rows per block of the bf16 weight gradient (TCB for one tap, half as many
// for several), and channels per slab of its paired copies (each copy
// 32 KiB of stack, as before). Blocks of 128 rows rather than 64 halve the loads and
// stores of the weight tiles' accumulators, a block's overhead: with one
// tap, the 32-channel residual weight gradient ran 7.7 % faster and the
// 640 → 64 skip one 2.8 % (kernel.sh V 32 32 1, V 640 64 1), but the
// two-tap dilated one (V 32 64 2) 1.7–4.5 % slower (96 rows: 7.5 %), so
// blocks of several taps stay at 64 rows.
#ifndef TCB
#define TCB 128
#endif
#ifndef WG_SLAB
#define WG_SLAB 128
#endif

// Words out[q·ldw + j], j < ldw (a multiple of VL): rows r0 + 2q and r0 + 2q + 1
// (q < n) of x's channels [c0, c0 + C) as pairs of bf16; rows outside [lo, hi)
// and channels past C are zero. x is fp32 rows (rounded here), or, with x16
// (x NULL), rows already in bf16, ldx then counting bf16 values (only
// interleaved: the same words). It also asks for the rows pf further on
// (the next block's; pf = 0 on the last block), as the fp32 tiles do: the
// rows come from the forward pass, often from memory, and without it the
// loads stalled this loop for a third of the kernel's time.
static ALWAYS_INLINE TARGET void FN(pair_rows)(unsigned *out, long ldw, const float *x, const unsigned short *x16, long ldx,
                                               long r0, long n, long lo, long hi, int c0, int C, long pf) {
    // Pairs q in [qa, qb) have both rows inside [lo, hi): one loop over them
    // per vector of channels, then the pairs at the edges.
    const long qa = CK_MIN(n, lo > r0 ? (lo - r0 + 1) / 2 : 0), qb = CK_MAX(qa, CK_MIN(n, (hi - r0) / 2));
    const int full = C / VL * VL;
    const vmask m = vmask_first(C - full);
    for (int j = 0; j < ldw; j += VL) {
        unsigned *y = out + qa * ldw + j;
        if (x16) {
            const unsigned short *xa = x16 + (r0 + 2 * qa) * ldx + c0 + j;
#ifdef VPAIR16X2
            // (A variant with a two-vector word pairs 2·VL channels at a time.)
            if (j + VL < ldw) {
                const int nj = CK_MAX(0, CK_MIN(2 * VL, C - j));
                for (long q = qa; q < qb; q++, xa += 2 * ldx, y += ldw) {
                    __builtin_prefetch(xa + pf * ldx, 0, 2);
                    __builtin_prefetch(xa + (pf + 1) * ldx, 0, 2);
                    vpair16x2(y, xa, xa + ldx, nj);
                }
                j += VL;
                continue;
            }
#endif
            const int nj = CK_MAX(0, CK_MIN(VL, C - j));
            for (long q = qa; q < qb; q++, xa += 2 * ldx, y += ldw) {
                __builtin_prefetch(xa + pf * ldx, 0, 2);
                __builtin_prefetch(xa + (pf + 1) * ldx, 0, 2);
                vpair16(y, xa, xa + ldx, nj);
            }
            continue;
        }
        const float *xa = x + (r0 + 2 * qa) * ldx + c0 + j;
        if (j < full) {
            for (long q = qa; q < qb; q++, xa += 2 * ldx, y += ldw) {
                __builtin_prefetch(xa + pf * ldx, 0, 2);
                __builtin_prefetch(xa + (pf + 1) * ldx, 0, 2);
                vstore_bf16_pairs(y, vload(xa), vload(xa + ldx));
            }
        } else if (j < C) {
            for (long q = qa; q < qb; q++, xa += 2 * ldx, y += ldw)
                vstore_bf16_pairs(y, FN(vload_n)(xa, C - full, m, vzero()), FN(vload_n)(xa + ldx, C - full, m, vzero()));
        } else {
            for (long q = qa; q < qb; q++, y += ldw) vstore_bf16_pairs(y, vzero(), vzero());
        }
    }
    // The pairs at the edges: one row (or both) outside [lo, hi), a zero.
    for (long q = 0; q < n; q++) {
        if (q == qa) q = qb;
        if (q >= n) break;
        const long ra = r0 + 2 * q, rb = ra + 1;
        const int ina = ra >= lo && ra < hi, inb = rb >= lo && rb < hi;
        for (int j = 0; j < ldw; j += VL) {
            const int nj = CK_MAX(0, CK_MIN(VL, C - j));
            if (x16) {
                vpair16(out + q * ldw + j, ina ? x16 + ra * ldx + c0 + j : 0, inb ? x16 + rb * ldx + c0 + j : 0, nj);
                continue;
            }
            const vmask mj = vmask_first(nj);
            vec a = ina ? FN(vload_n)(x + ra * ldx + c0 + j, nj, mj, vzero()) : vzero();
            vec b = inb ? FN(vload_n)(x + rb * ldx + c0 + j, nj, mj, vzero()) : vzero();
            vstore_bf16_pairs(out + q * ldw + j, a, b);
        }
    }
}

// sums[c] += both halves of words w[q·ldw + c] summed over q < n, for c < C
// (≤ ldw, a multiple of VL): the column sums of the rows the words pair, by
// one vdot2 with a word of two bf16 ones per pair (each product exact; the
// additions rounded as every vdot2's). Four chains a vector, so that an
// addition does not wait for the one before it. The bias gradient of the
// bf16 weight gradient on bf16 rows, in place of widening the rows to fp32
// again and adding them: that had cost the 32-channel residual weight
// gradient 11 % of its time (kernel.sh V 32 32 1 with and without a bias:
// 282 against 316 GFLOP/s), this 2 % (309 against 315); the residual and
// the two-tap dilated one (V 32 64 2) ran 3.8 % and 2.8 % faster.
static ALWAYS_INLINE TARGET void FN(pair_sums)(float *sums, const unsigned *w, long ldw, long n, int C) {
    static const unsigned short ones[2] = { 0x3f80, 0x3f80 };
    const pvec one = pbroadcast(ones);
    for (int j = 0; j < C; j += VL) {
        vec acc[4] = { vzero(), vzero(), vzero(), vzero() };
        long q = 0;
        for (; q + 4 <= n; q += 4)
            UNROLL for (int u = 0; u < 4; u++) acc[u] = vdot2(acc[u], pload((const float *)(w + (q + u) * ldw + j)), one);
        for (; q < n; q++) acc[0] = vdot2(acc[0], pload((const float *)(w + q * ldw + j)), one);
        vec total = vadd(vadd(acc[0], acc[1]), vadd(acc[2], acc[3]));
        const int nj = CK_MIN(VL, C - j);
        vmask m = vmask_first(nj);
        FN(vstore_n)(sums + j, vadd(FN(vload_n)(sums + j, nj, m, vzero()), total), nj, m);
    }
}

// dout and inp each as fp32 rows (dout, inp; rounded here) or as bf16 rows
// (dout16, inp16, the fp32 pointer NULL; strides then count bf16 values, and
// any channel offset is fine: the rows are only interleaved). dbias sums
// the rows given, fp32 or bf16.
static TARGET void FN(conv_backward_weight_bf16)(float *dweight, float *dbias,
                                                 const float *dout, const unsigned short *dout16, long lddo,
                                                 const float *inp, const unsigned short *inp16, long ldi,
                                                 long t0, long t1, int Cin, int Cout, int K, long d) {
    unsigned gp[TCB / 2 * WG_SLAB] __attribute__((aligned(64)));
    unsigned xp[TCB / 2 * WG_SLAB] __attribute__((aligned(64)));
    const long tcb = K == 1 || d < 0 ? TCB : TCB / 2;  // d < 0: taps over blocks (see ck_conv_forward), as one
    for (long ta = t0; ta < t1; ta += tcb) {
        const long tb = CK_MIN(t1, ta + tcb), n = (tb - ta + 1) / 2;
        const long pf = tb < t1 ? tcb : 0;  // the next block's rows, asked for while pairing these
        if (dbias && !dout16) FN(column_sums_range)(dbias, dout, lddo, ta, tb, Cout);
        for (int os = 0; os < Cout; os += WG_SLAB) {
            const int ow = CK_MIN(WG_SLAB, Cout - os);
            const long ldg = (ow + VL - 1) / VL * VL;
            FN(pair_rows)(gp, ldg, dout, dout16, lddo, ta, n, ta, tb, os, ow, pf);
            if (dbias && dout16) FN(pair_sums)(dbias + os, gp, ldg, n, ow);
            for (int k = 0; k < K; k++) {
                const long s = (long)(K - 1 - k) * d;
                if (s >= tb) continue;  // every input row of this tap is before row 0
                for (int cs = 0; cs < Cin; cs += WG_SLAB) {
                    const int cw = CK_MIN(WG_SLAB, Cin - cs);
                    const long ldx = (cw + VL - 1) / VL * VL;
                    FN(pair_rows)(xp, ldx, inp, inp16, ldi, ta - s, n, 0, tb - s, cs, cw, pf);
                    // The copies indexed as the tiles index dout and inp: pair q
                    // is "row" q, output o at word o − os, input c at word c − cs.
                    // (Offset as integers: the pointers lie before the arrays.)
                    const float *g = (const float *)((uintptr_t)gp - (uintptr_t)os * sizeof *gp);
                    const float *x = (const float *)((uintptr_t)xp - (uintptr_t)cs * sizeof *xp);
                    FN(wg_tiles)(1, dweight + (long)k * Cout * Cin, Cin, os, os + ow, cs, cs + cw, g, ldg, x, ldx, 0, n, 0, 0, 0);
                }
            }
        }
    }
}

// ---- Pointwise kernels ------------------------------------------------------------------------

static TARGET void FN(column_sums)(float *sums, const float *x, long ldx, long rows, int C) {
    FN(column_sums_range)(sums, x, ldx, 0, rows, C);
}

static TARGET void FN(gated_pointwise_forward)(float *gate, long ldg, float *z, long ldz,
                                               const float *pre, long ldp, const float *bias, long rows, int D) {
    FN(gated_out) o = { gate, ldg, z, ldz, 0, D, 0 };
    for (long r = 0; r < rows; r++) {
        const float *a = pre + r * ldp, *g = a + D;
        float *gate_row = gate ? gate + r * ldg : 0, *z_row = z ? z + r * ldz : 0;
        for (int j = 0; j < D; j += VL) {
            const int n = CK_MIN(VL, D - j);
            vmask m = vmask_first(n);
            vec va = FN(vload_n)(a + j, n, m, vzero()), vg = FN(vload_n)(g + j, n, m, vzero());
            if (bias) { va = vadd(va, FN(vload_n)(bias + j, n, m, vzero())); vg = vadd(vg, FN(vload_n)(bias + D + j, n, m, vzero())); }
            FN(gate_store)(&o, gate_row, z_row, 0, 0, j, va, vg);
        }
    }
}

static TARGET void FN(gated_backward)(float *dpre, long lddp, const float *dz, long lddz,
                                      const float *gate, long ldg, long rows, int D) {
    const vec one = vset1(1.0f);
    for (long r = 0; r < rows; r++) {
        const float *th = gate + r * ldg, *sg = th + D, *g = dz + r * lddz;
        float *da = dpre + r * lddp, *dg = da + D;
        for (int j = 0; j < D; j += VL) {
            int n = CK_MIN(VL, D - j);
            vmask m = vmask_first(n);
            vec t = FN(vload_n)(th + j, n, m, vzero()), s = FN(vload_n)(sg + j, n, m, vzero()), gz = FN(vload_n)(g + j, n, m, vzero());
            vec gs = vmul(gz, s);
            vec va = vmul(gs, vsub(one, vmul(t, t)));
            vec vg = vmul(vmul(gs, t), vsub(one, s));
            FN(vstore_n)(da + j, va, n, m);
            FN(vstore_n)(dg + j, vg, n, m);
        }
    }
}

static TARGET void FN(bias_relu)(float *out, long ldo, const float *inp, long ldi,
                                 const float *bias, long rows, int C) {
    for (long r = 0; r < rows; r++)
        for (int j = 0; j < C; j += VL) {
            const int n = CK_MIN(VL, C - j);
            vmask m = vmask_first(n);
            vec x = FN(vload_n)(inp + r * ldi + j, n, m, vzero());
            if (bias) x = vadd(x, FN(vload_n)(bias + j, n, m, vzero()));
            FN(vstore_n)(out + r * ldo + j, vrelu(x), n, m);
        }
}

static TARGET void FN(relu_backward)(float *dx, long lddx, const float *dy, long lddy,
                                     const float *y, long ldy, long rows, int C) {
    for (long r = 0; r < rows; r++)
        for (int j = 0; j < C; j += VL) {
            const int n = CK_MIN(VL, C - j);
            vmask m = vmask_first(n);
            vec g = FN(vload_n)(dy + r * lddy + j, n, m, vzero()), out = FN(vload_n)(y + r * ldy + j, n, m, vzero());
            FN(vstore_n)(dx + r * lddx + j, vpositive(out, g), n, m);
        }
}

// ---- Softmax cross-entropy -------------------------------------------------------------------

// One vector of a row's logits (plus the bias): the first n lanes, the
// others `fill`. The rows' whole-vector loops call it with n = VL, so that
// they compile to plain loads with no width test or mask per vector (which
// cost the softmax 13 % of its time on Zen 1); a ragged row's last vector
// comes masked.
static ALWAYS_INLINE TARGET vec FN(logits_n)(const float *x, const float *bias, int j, int n, vmask m, vec fill) {
    vec v = FN(vload_n)(x + j, n, m, fill);
    if (bias) v = vadd(v, FN(vload_n)(bias + j, n, m, vzero()));
    return v;
}

// e^(logit − max) of one vector into dx (if any), added to acc.
static ALWAYS_INLINE TARGET vec FN(softmax_exp_n)(float *dx, const float *x, const float *bias, int j, int n, vmask m,
                                               vec mb, vec acc) {
    vec e = vexp(vsub(FN(logits_n)(x, bias, j, n, m, vset1(-__builtin_inff())), mb));
    if (n < VL) e = vmaskz(e, m);  // e^-inf is not quite 0 after clamping
    if (dx) FN(vstore_n)(dx + j, e, n, m);
    return vadd(acc, e);
}

// dx = k·dx for one vector, also rounded to bf16 into dx16 (if any).
static ALWAYS_INLINE TARGET void FN(softmax_scale_n)(float *dx, unsigned short *dx16, int j, int n, vmask m, vec k) {
    vec g = vmul(FN(vload_n)(dx + j, n, m, vzero()), k);
    FN(vstore_n)(dx + j, g, n, m);
    if (dx16) vstore_bf16(dx16 + j, g, n);
}

#define SOFTMAX_LOG_ROWS 32
static TARGET double FN(softmax_xent)(float *dlogits, long lddl, const float *logits, long ldl,
                                      const float *bias, const int *targets, long rows, int V, float scale,
                                      unsigned short *dlogits16, long lddl16) {
    double total = 0, product = 1;
    int pending = 0;
    const vec ninf = vset1(-__builtin_inff());
    // Whole vectors first, then the ragged tail: the maximum and the sum in
    // the same order as one loop over the row, so the same results.
    const int whole = V / VL * VL, tail = V - whole;
    const vmask all = vmask_first(VL), mt = vmask_first(tail);
    for (long r = 0; r < rows; r++) {
        const float *x = logits + r * ldl;
        float *dx = dlogits ? dlogits + r * lddl : 0;
        const int y = targets[r];
        // Read before dlogits (which may be the logits) is written.
        const float target = x[y] + (bias ? bias[y] : 0.0f);
        vec mv = ninf;
        for (int j = 0; j < whole; j += VL) mv = vmax(FN(logits_n)(x, bias, j, VL, all, ninf), mv);
        if (tail) mv = vmax(FN(logits_n)(x, bias, whole, tail, mt, ninf), mv);
        const float mx = vhmax(mv);
        const vec mb = vset1(mx);
        vec acc = vzero();
        for (int j = 0; j < whole; j += VL) acc = FN(softmax_exp_n)(dx, x, bias, j, VL, all, mb, acc);
        if (tail) acc = FN(softmax_exp_n)(dx, x, bias, whole, tail, mt, mb, acc);
        const float sum = vhsum(acc);
        // In double: a row's loss is a small difference of larger numbers.
        // The rows' log(sum) as one log of their product, every
        // SOFTMAX_LOG_ROWS rows: 1 ≤ sum ≤ V < 2^31 (the largest logit's
        // term is 1), so the product stays below 2^(31·32) < DBL_MAX; a NaN
        // or infinite sum carries through it. (One libm call a row took an
        // eighth of the kernel's time at 256 classes.)
        total += (double)mx - (double)target;
        product *= (double)sum;
        if (++pending == SOFTMAX_LOG_ROWS) { total += __builtin_log(product); product = 1; pending = 0; }
        if (dx) {
            const vec k = vset1(scale / sum);
            unsigned short *dx16 = dlogits16 ? dlogits16 + r * lddl16 : 0;
            for (int j = 0; j < whole; j += VL) FN(softmax_scale_n)(dx, dx16, j, VL, all, k);
            if (tail) FN(softmax_scale_n)(dx, dx16, whole, tail, mt, k);
            dx[y] -= scale;
            if (dx16) {
                dx16[y] = ck_bf16_from_float(dx[y]);
                if (V & 1) dx16[V] = 0;
            }
        }
    }
    return pending ? total + __builtin_log(product) : total;
}

// ---- Generation: y = bias + W·x with W given transposed ----------------------------------------

static TARGET void FN(matvec)(float *y, const float *wt, long ldw, const float *x, const float *bias,
                              int rows, int cols, int accumulate) {
    // Blocks of four whole vectors of outputs, in two chains per vector (even
    // and odd columns) so that the FMAs' latency is hidden; then the last
    // outputs one masked vector at a time.
    int r0 = 0;
    for (; r0 + 4 * VL <= rows; r0 += 4 * VL) {
        vec a0[4], a1[4];
        UNROLL for (int v = 0; v < 4; v++) { a0[v] = vzero(); a1[v] = vzero(); }
        const float *w = wt + r0;
        int c = 0;
        for (; c + 2 <= cols; c += 2) {
            vec x0 = vset1(x[c]), x1 = vset1(x[c + 1]);
            const float *w0 = w + (long)c * ldw, *w1 = w0 + ldw;
            UNROLL for (int v = 0; v < 4; v++) {
                a0[v] = vfma(x0, vload(w0 + v * VL), a0[v]);
                a1[v] = vfma(x1, vload(w1 + v * VL), a1[v]);
            }
        }
        if (c < cols) {
            vec xc = vset1(x[c]);
            UNROLL for (int v = 0; v < 4; v++) a0[v] = vfma(xc, vload(w + (long)c * ldw + v * VL), a0[v]);
        }
        UNROLL for (int v = 0; v < 4; v++) {
            vec s = vadd(a0[v], a1[v]);
            if (bias) s = vadd(s, vload(bias + r0 + v * VL));
            if (accumulate) s = vadd(s, vload(y + r0 + v * VL));
            vstore(y + r0 + v * VL, s);
        }
    }
    // The last outputs in the same two chains, so that every output is
    // summed in one order whatever the vector width: with bf16 values (exact
    // products) every variant then gives the same bits.
    for (; r0 < rows; r0 += VL) {
        const int n = CK_MIN(VL, rows - r0);
        vmask m = vmask_first(n);
        vec a0 = vzero(), a1 = vzero();
        int c = 0;
        for (; c + 2 <= cols; c += 2) {
            a0 = vfma(vset1(x[c]), FN(vload_n)(wt + (long)c * ldw + r0, n, m, vzero()), a0);
            a1 = vfma(vset1(x[c + 1]), FN(vload_n)(wt + (long)(c + 1) * ldw + r0, n, m, vzero()), a1);
        }
        if (c < cols) a0 = vfma(vset1(x[c]), FN(vload_n)(wt + (long)c * ldw + r0, n, m, vzero()), a0);
        vec a = vadd(a0, a1);
        if (bias) a = vadd(a, FN(vload_n)(bias + r0, n, m, vzero()));
        if (accumulate) a = vadd(a, FN(vload_n)(y + r0, n, m, vzero()));
        FN(vstore_n)(y + r0, a, n, m);
    }
}

// ---- Adam ------------------------------------------------------------------------------------

static TARGET void FN(adam)(float *params, float *m, float *v, const float *grads, long n,
                            float lr, float beta1, float beta2, float eps, float c1, float c2) {
    // p -= (lr / c1) · m / (sqrt(v) / sqrt(c2) + eps)
    const vec b1 = vset1(beta1), b2 = vset1(beta2), a1 = vset1(1 - beta1), a2 = vset1(1 - beta2);
    const vec step = vset1(lr / c1), inv = vset1(1 / __builtin_sqrtf(c2)), ve = vset1(eps);
    for (long i = 0; i < n; i += VL) {
        const int w = (int)CK_MIN((long)VL, n - i);
        vmask k = vmask_first(w);
        vec g = FN(vload_n)(grads + i, w, k, vzero());
        vec mi = vfma(a1, g, vmul(b1, FN(vload_n)(m + i, w, k, vzero())));
        vec vi = vfma(vmul(a2, g), g, vmul(b2, FN(vload_n)(v + i, w, k, vzero())));
        FN(vstore_n)(m + i, mi, w, k);
        FN(vstore_n)(v + i, vi, w, k);
        vec denom = vfma(vsqrt(vi), inv, ve);
        FN(vstore_n)(params + i, vsub(FN(vload_n)(params + i, w, k, vzero()), vdiv(vmul(step, mi), denom)), w, k);
    }
}

// ---- The FMA ceiling -------------------------------------------------------------------------
//
// Twelve independent chains (more than FMA latency × FMA ports on any of
// these cores), as the peer's fma_peak.c probe does at 256 bits.

static TARGET float FN(fma_chains)(long iterations) {
    const vec a = vset1(0.999999f), b = vset1(1e-7f);
    vec c[12];
    UNROLL for (int i = 0; i < 12; i++) c[i] = vset1((float)i);
    for (long n = 0; n < iterations; n++) {
        UNROLL for (int i = 0; i < 12; i++) c[i] = vfma(c[i], a, b);
    }
    vec s = vzero();
    UNROLL for (int i = 0; i < 12; i++) s = vadd(s, c[i]);
    return vhsum(s);
}

// ---- The table -------------------------------------------------------------------------------

const ck_kernels FN(ck_table) = {
    .isa = ISA_ENUM,
    .name = ISA_NAME,
    .lanes = VL,
    .conv_forward = FN(conv_forward),
    .conv_gated_forward = FN(conv_gated_forward),
    .conv_backward_input = FN(conv_backward_input),
    .conv_backward_weight = FN(conv_backward_weight),
    .conv_backward_weight_bf16 = FN(conv_backward_weight_bf16),
    .gated_backward_product = FN(gated_backward_product),
    .bf16_native = BF16_NATIVE,
    .conv_forward_bf16 = FN(conv_forward_bf16),
    .conv_gated_forward_bf16 = FN(conv_gated_forward_bf16),
    .conv_backward_input_bf16 = FN(conv_backward_input_bf16),
    .gated_backward_product_bf16 = FN(gated_backward_product_bf16),
    .round_bf16 = FN(round_bf16),
    .gated_pointwise_forward = FN(gated_pointwise_forward),
    .gated_backward = FN(gated_backward),
    .column_sums = FN(column_sums),
    .bias_relu = FN(bias_relu),
    .relu_backward = FN(relu_backward),
    .softmax_xent = FN(softmax_xent),
    .matvec = FN(matvec),
    .adam = FN(adam),
    .vexp = FN(vexp_array),
    .vtanh = FN(vtanh_array),
    .vsigmoid = FN(vsigmoid_array),
    .fma_chains = FN(fma_chains),
};

#endif  // CK_TILES_ONLY
