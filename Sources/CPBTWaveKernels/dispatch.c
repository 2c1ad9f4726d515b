// Run-time choice of the kernel variant, from CPUID (never from OpenBLAS's
// core name), and the weight packing shared by all variants.
#include "CPBTWaveKernels.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

extern const ck_kernels ck_table_generic;
#if defined(__x86_64__)
extern const ck_kernels ck_table_avx2;
extern const ck_kernels ck_table_avx512;
extern const ck_kernels ck_table_avx512bf16;
extern const ck_kernels ck_table_avx512_256;
#endif

unsigned ck_supported_isas(void) {
    unsigned isas = 1u << CK_GENERIC;
#if defined(__x86_64__)
    // __builtin_cpu_supports also checks that the operating system saves the
    // wider registers (XCR0), so a hypervisor that hides AVX-512 state is seen.
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isas |= 1u << CK_AVX2;
    if ((isas & (1u << CK_AVX2)) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        isas |= 1u << CK_AVX512 | 1u << CK_AVX512_256;
    // AVX512_BF16 is CPUID leaf 7, subleaf 1, EAX bit 5 (its state is the
    // AVX-512 state checked above).
    unsigned eax, ebx, ecx, edx;
    if ((isas & (1u << CK_AVX512)) && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5)))
        isas |= 1u << CK_AVX512_BF16;
#endif
    return isas;
}

ck_isa ck_best_isa(void) {
    unsigned isas = ck_supported_isas();
    if (isas & (1u << CK_AVX512_BF16)) return CK_AVX512_BF16;
    if (isas & (1u << CK_AVX512)) return CK_AVX512;
    if (isas & (1u << CK_AVX2)) return CK_AVX2;
    return CK_GENERIC;
}

#if defined(__x86_64__)
// The best of three short runs of timer(20000, 1) and of timer(20000, 0), in
// turn (about a millisecond in all).
static void best_of_three(double (*timer)(long, int), double *with1, double *with0) {
    *with1 = *with0 = 1e9;
    for (int r = 0; r < 3; r++) {
        double t = timer(20000, 1);
        if (t < *with1) *with1 = t;
        t = timer(20000, 0);
        if (t < *with0) *with0 = t;
    }
}

// Cycles of `rounds` rounds of 12 independent vdpbf16ps chains, against as
// many FMA pairs (the emulation's work for the same multiply-adds).
__attribute__((target("avx512f,avx512bf16"))) static double time_bf16_dot(long rounds, int native) {
    __m512 c[12];
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-7f);
    const __m512bh ah = (__m512bh)_mm512_set1_epi32(0x3f803f80), bh = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (int i = 0; i < 12; i++) c[i] = _mm512_set1_ps((float)i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long n = 0; n < rounds; n++) {
        if (native) {
            for (int i = 0; i < 12; i++) c[i] = _mm512_dpbf16_ps(c[i], ah, bh);
        } else {
            for (int i = 0; i < 12; i++) c[i] = _mm512_fmadd_ps(c[i], a, _mm512_fmadd_ps(c[i], a, b));
        }
        __asm__ volatile("" : "+v"(c[0]), "+v"(c[6]), "+v"(c[11]));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    float s = 0;
    for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(c[i]);
    __asm__ volatile("" : : "x"(s));
    return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
}
#endif

int ck_bf16_dot_forced(void) {
    const char *forced = getenv("PBTWAVE_BF16_DOT");
    if (forced && !strcmp(forced, "native")) return 1;
    if (forced && !strcmp(forced, "fma")) return 0;
    return -1;
}

int ck_bf16_native_is_faster(void) {
#if defined(__x86_64__)
    static _Atomic int answer = -1;  // -1: not measured yet
    int known = answer;
    if (known >= 0) return known;
    if (!(ck_supported_isas() & (1u << CK_AVX512_BF16))) return answer = 0;
    const int forced = ck_bf16_dot_forced();
    if (forced >= 0) return answer = forced;
    double native, fma;
    best_of_three(time_bf16_dot, &native, &fma);
    return answer = native < fma;
#else
    return 0;
#endif
}

// A switch read once into *cell (-1 until then): off if the variable `name`
// is "0", on if it holds anything else (for A/B benchmarks); unset or empty,
// what `otherwise` says (NULL: on).
static int env_switch(int *cell, const char *name, int (*otherwise)(void)) {
    int on = __atomic_load_n(cell, __ATOMIC_RELAXED);
    if (on < 0) {
        const char *e = getenv(name);
        on = e && *e ? strcmp(e, "0") != 0 : otherwise ? otherwise() != 0 : 1;
        __atomic_store_n(cell, on, __ATOMIC_RELAXED);
    }
    return on;
}

static int ck_flat_tiles_on = -1;
void ck_set_flat_tiles(int on) { __atomic_store_n(&ck_flat_tiles_on, on != 0, __ATOMIC_RELAXED); }
int ck_flat_tiles(void) { return env_switch(&ck_flat_tiles_on, "PBTWAVE_FLAT_TILES", NULL); }

#if defined(__x86_64__)
// time_fma_chains (256-bit wide, 128-bit narrow) and time_fma512_chains (512
// and 256): seconds of `rounds` rounds of 12 independent FMA chains on the
// wide or the narrow vectors.
#define FMA_CHAINS(name, isa, reg, W, N, w_, n_, narrow_of)                                                    \
    __attribute__((target(isa))) static double name(long rounds, int wide) {                                   \
        W c[12];                                                                                               \
        N h[12];                                                                                               \
        const W a = w_##set1_ps(0.999f), b = w_##set1_ps(1e-7f);                                              \
        for (int i = 0; i < 12; i++) { c[i] = w_##set1_ps((float)i); h[i] = narrow_of(c[i]); }                 \
        struct timespec t0, t1;                                                                                \
        clock_gettime(CLOCK_MONOTONIC, &t0);                                                                   \
        for (long n = 0; n < rounds; n++) {                                                                    \
            if (wide) {                                                                                        \
                for (int i = 0; i < 12; i++) c[i] = w_##fmadd_ps(c[i], a, b);                                 \
                __asm__ volatile("" : reg(c[0]), reg(c[6]), reg(c[11]));                                   \
            } else {                                                                                           \
                for (int i = 0; i < 12; i++) h[i] = n_##fmadd_ps(h[i], narrow_of(a), narrow_of(b));           \
                __asm__ volatile("" : reg(h[0]), reg(h[6]), reg(h[11]));                                   \
            }                                                                                                  \
        }                                                                                                      \
        clock_gettime(CLOCK_MONOTONIC, &t1);                                                                   \
        float s = 0;                                                                                           \
        for (int i = 0; i < 12; i++) s += w_##cvtss_f32(c[i]) + n_##cvtss_f32(h[i]);                          \
        __asm__ volatile("" : : "x"(s));                                                                       \
        return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);                    \
    }
FMA_CHAINS(time_fma_chains, "avx2,fma", "+x", __m256, __m128, _mm256_, _mm_, _mm256_castps256_ps128)
FMA_CHAINS(time_fma512_chains, "avx512f,avx512vl", "+v", __m512, __m256, _mm512_, _mm256_, _mm512_castps512_ps256)
#undef FMA_CHAINS
#endif

int ck_fma_half_width_of(const char *vendor, int family, int model) {
    // AMD's Zen and Zen+ (family 0x17, models below 0x30), Hygon's Dhyana
    // (family 0x18, a Zen) and AMD's Excavator (0x15) split a 256-bit FMA
    // into two 128-bit halves; Zen 2 (family 0x17 from model 0x30), Zen 3
    // and 4 (0x19) and Zen 5 (0x1A) do not. Other cores are left to the
    // timing (Intel's E-cores have 128-bit units, and a hybrid chip runs a
    // thread on either kind).
    if (!strcmp(vendor, "AuthenticAMD")) {
        if (family == 0x15) return 1;  // Excavator, the Bulldozer family's one with AVX2: two 128-bit FMA units
        if (family == 0x17) return model < 0x30;
        if (family == 0x19 || family == 0x1a) return 0;
    }
    if (!strcmp(vendor, "HygonGenuine") && family == 0x18) return 1;
    return -1;
}

// The CPUID vendor, family and model of this core (0 where CPUID has none).
static int cpuid_core(char vendor[13], int *family, int *model) {
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return 0;
    memcpy(vendor, &ebx, 4);
    memcpy(vendor + 4, &edx, 4);
    memcpy(vendor + 8, &ecx, 4);
    vendor[12] = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int base = (eax >> 8) & 0xf;
    *family = base == 0xf ? base + ((eax >> 20) & 0xff) : base;
    *model = base == 0xf || base == 0x6 ? (int)(((eax >> 16) & 0xf) << 4 | ((eax >> 4) & 0xf)) : (int)((eax >> 4) & 0xf);
    return 1;
#else
    (void)vendor; (void)family; (void)model;
    return 0;
#endif
}

int ck_fma_half_width_from_cpuid(void) {
    char vendor[13];
    int family, model;
    if (!(ck_supported_isas() & (1u << CK_AVX2)) || !cpuid_core(vendor, &family, &model)) return -1;
    return ck_fma_half_width_of(vendor, family, model);
}

static _Atomic int ck_fma_half_width_answer = -1;  // -1: not known yet
void ck_set_fma_half_width(int half) { ck_fma_half_width_answer = half < 0 ? -1 : half != 0; }

#if defined(__x86_64__)
// Whether `isa`'s vectors are twice as wide as this core's FMA units, once:
// 0 without `isa`, else what CPUID knows, else timed (`timer`'s wide loop
// against its narrow one: the same time on units as wide as the vectors,
// twice as long on units half as wide; 1.5 lies far from both).
static int half_width_answer(_Atomic int *answer, ck_isa isa, int (*from_cpuid)(void), double (*timer)(long, int)) {
    int known = *answer;
    if (known >= 0) return known;
    if (!(ck_supported_isas() & (1u << isa))) return *answer = 0;
    known = from_cpuid();
    if (known >= 0) return *answer = known;
    double wide, half;
    best_of_three(timer, &wide, &half);
    return *answer = wide > 1.5 * half;
}
#endif

int ck_fma_half_width(void) {
#if defined(__x86_64__)
    // A known core from CPUID first: the timing alone answered "half" in
    // about 2 % of processes on a Zen 2 VM (its 256-bit loop ran 2-2.7×
    // slower than usual for the whole process, the 128-bit one as usual),
    // which then took the half-width paths for ragged widths.
    return half_width_answer(&ck_fma_half_width_answer, CK_AVX2, ck_fma_half_width_from_cpuid, time_fma_chains);
#else
    return ck_fma_half_width_answer > 0;
#endif
}

// Unset: on where the FMA units are half as wide as AVX2's vectors (measured).
static int ck_half_tails_on = -1;
void ck_set_half_tails(int on) { __atomic_store_n(&ck_half_tails_on, on != 0, __ATOMIC_RELAXED); }
int ck_half_tails(void) { return env_switch(&ck_half_tails_on, "PBTWAVE_HALF_TAILS", ck_fma_half_width); }

static int ck_dot_tails_on = -1;
void ck_set_dot_tails(int on) { __atomic_store_n(&ck_dot_tails_on, on != 0, __ATOMIC_RELAXED); }
int ck_dot_tails(void) { return env_switch(&ck_dot_tails_on, "PBTWAVE_DOT_TAILS", NULL); }

// A thread may override PBTWAVE_WG_SWAP for its own calls (tests compare
// both ways that way, without changing what other threads compute).
static int ck_wg_swap_on = -1;
static _Thread_local int ck_wg_swap_here = -1;
void ck_set_wg_swap_on_this_thread(int on) { ck_wg_swap_here = on < 0 ? -1 : on != 0; }
int ck_wg_swap(void) { return ck_wg_swap_here >= 0 ? ck_wg_swap_here : env_switch(&ck_wg_swap_on, "PBTWAVE_WG_SWAP", NULL); }


int ck_fma512_half_width_of(const char *vendor, int family, int model) {
    // AMD's Zen 4 (family 0x19 with AVX-512: models 0x10 and up) runs a
    // 512-bit FMA as two 256-bit halves; Zen 5 (0x1A) has full-width units
    // in its desktop and server parts but not in every mobile one, so it is
    // timed, as are Intel's cores (some Xeons have one 512-bit FMA port).
    (void)model;
    if (!strcmp(vendor, "AuthenticAMD") && family == 0x19) return 1;
    return -1;
}

int ck_fma512_half_width_from_cpuid(void) {
    char vendor[13];
    int family, model;
    if (!(ck_supported_isas() & (1u << CK_AVX512)) || !cpuid_core(vendor, &family, &model)) return -1;
    return ck_fma512_half_width_of(vendor, family, model);
}

static _Atomic int ck_fma512_half_width_answer = -1;  // -1: not known yet
void ck_set_fma512_half_width(int half) { ck_fma512_half_width_answer = half < 0 ? -1 : half != 0; }

int ck_fma512_half_width(void) {
#if defined(__x86_64__)
    return half_width_answer(&ck_fma512_half_width_answer, CK_AVX512, ck_fma512_half_width_from_cpuid, time_fma512_chains);
#else
    return ck_fma512_half_width_answer > 0;
#endif
}

// As the weight gradient's swap, a thread may override the switch for its
// own calls (a test compares both ways without changing other threads' sums).
static int ck_narrow_tiles_on = -1;
static _Thread_local int ck_narrow_tiles_here = -1;
void ck_set_narrow_tiles(int on) { __atomic_store_n(&ck_narrow_tiles_on, on != 0, __ATOMIC_RELAXED); }
void ck_set_narrow_tiles_on_this_thread(int on) { ck_narrow_tiles_here = on < 0 ? -1 : on != 0; }
int ck_narrow_tiles(void) {
    return ck_narrow_tiles_here >= 0 ? ck_narrow_tiles_here : env_switch(&ck_narrow_tiles_on, "PBTWAVE_NARROW_TILES", ck_fma512_half_width);
}

// Where C mod 16 lies from 5 to 8, 8-lane vectors hold C channels in fewer
// lanes than 16-lane ones (21: 24 against 32); from 9 to 12 they hold all
// but the last 1–4, which their dot tails take (25 = 24 + 1, against 32);
// from 1 to 4 the avx512 kernels' own dot tails do as well, and from 13 to
// 15 both need as many lanes. Zen 4 (2026-12-07, `bench train --R N --S 2N
// --H 2N`, points of the AVX-512 peak with and without): R21 +8.4, R22
// +8.8, R23 +7.6, R24 +3.8, R40 +5.4, R25 +5.3, R26 +4.0, R27 +2.5; R17
// -2.2 and R20 +0.9 when all of 1 to 8 went (the first pass).
int ck_narrow_width(int C) { return C % 16 >= 5 && C % 16 <= 12; }

// The fp32 weight gradient, by its input channels (the lanes it fills first;
// it may swap them to the outputs): from 8 to 12 past a multiple of 16 (Zen 4,
// the same command: R24 +2.0, R25 +3.5, R26 +2.6, R27 +3.9, R28 +2.7 points);
// at 5 to 7 it gained nothing (R21 +0.5, R22 -0.2, R23 -1.4) and at R37 lost.
int ck_narrow_weight_gradient(int Cin) { return Cin % 16 >= 8 && Cin % 16 <= 12; }

#if defined(__x86_64__)
// The avx512 tables with their fp32 row-broadcast products and weight
// gradients routed: each call whose width ck_narrow_width (the products'
// outputs) or ck_narrow_weight_gradient (the gradient's inputs) takes runs
// the avx512-256 kernel while ck_narrow_tiles() is on, else the table's own. (The bf16 products keep
// the table's: vdpbf16ps is 512 bits wide.)
#define ROUTED(base)                                                                                                   \
    static const ck_kernels *narrow_##base(int takes) {                                                                 \
        return takes && ck_narrow_tiles() ? &ck_table_avx512_256 : &ck_table_##base;                                  \
    }                                                                                                                  \
    static void routed_conv_forward_##base(float *out, long ldo, const float *add, long lda, const float *inp, long ldi,      \
                                    const float *w, long t0, long t1, int Cin, int Cout, int K, long d, int relu) {    \
        narrow_##base(ck_narrow_width(Cout))->conv_forward(out, ldo, add, lda, inp, ldi, w, t0, t1, Cin, Cout, K, d, relu);             \
    }                                                                                                                  \
    static void routed_conv_gated_forward_##base(float *gate, long ldg, float *z, long ldz, const float *inp, long ldi,       \
                                          const float *w, long t0, long t1, int Cin, int D, int K, long d) {           \
        narrow_##base(ck_narrow_width(D))->conv_gated_forward(gate, ldg, z, ldz, inp, ldi, w, t0, t1, Cin, D, K, d);                    \
    }                                                                                                                  \
    static void routed_conv_backward_input_##base(float *dinp, long lddi, int accumulate, const float *dout, long lddo,      \
                                           const float *w, long t0, long t1, long T, int Cin, int Cout, int K, long d) { \
        narrow_##base(ck_narrow_width(Cin))->conv_backward_input(dinp, lddi, accumulate, dout, lddo, w, t0, t1, T, Cin, Cout, K, d);    \
    }                                                                                                                  \
    static void routed_gated_backward_product_##base(float *dpre, long lddp, const float *gate, long ldg, const float *dskip, \
                                              long ldds, const float *ws, long ldws, int S, const float *dres,         \
                                              long lddr, const float *wr, long ldwr, int R, long t0, long t1, int D) { \
        narrow_##base(ck_narrow_width(D))->gated_backward_product(dpre, lddp, gate, ldg, dskip, ldds, ws, ldws, S, dres, lddr, wr, ldwr, \
                                                 R, t0, t1, D);                                                        \
    }                                                                                                                  \
    static void routed_conv_backward_weight_##base(float *dw, float *db, const float *dout, long lddo, const float *inp,  \
                                                   long ldi, long t0, long t1, int Cin, int Cout, int K, long d) {      \
        narrow_##base(ck_narrow_weight_gradient(Cin))->conv_backward_weight(dw, db, dout, lddo, inp, ldi, t0, t1, Cin, Cout, K, d); \
    }                                                                                                                  \
    static ck_kernels ck_routed_##base;                                                                                \
    static void route_##base(void) {                                                                                   \
        ck_routed_##base = ck_table_##base;                                                                            \
        ck_routed_##base.conv_forward = routed_conv_forward_##base;                                                           \
        ck_routed_##base.conv_gated_forward = routed_conv_gated_forward_##base;                                               \
        ck_routed_##base.conv_backward_input = routed_conv_backward_input_##base;                                             \
        ck_routed_##base.gated_backward_product = routed_gated_backward_product_##base;                                       \
        ck_routed_##base.conv_backward_weight = routed_conv_backward_weight_##base;                                    \
    }
ROUTED(avx512)
ROUTED(avx512bf16)
#undef ROUTED

static pthread_once_t routed_once = PTHREAD_ONCE_INIT;
static void route_both(void) {
    route_avx512();
    route_avx512bf16();
}

// A routed copy of an avx512 table, made on first use.
static const ck_kernels *routed_table(const ck_kernels *routed) {
    pthread_once(&routed_once, route_both);
    return routed;
}
#endif

const ck_kernels *ck_kernels_for(ck_isa isa) {
    if (!(ck_supported_isas() & (1u << isa))) return 0;
    switch (isa) {
#if defined(__x86_64__)
    case CK_AVX512_BF16: return routed_table(&ck_routed_avx512bf16);
    case CK_AVX512: return routed_table(&ck_routed_avx512);
    case CK_AVX512_256: return &ck_table_avx512_256;
    case CK_AVX2: return &ck_table_avx2;
#endif
    case CK_GENERIC: return &ck_table_generic;
    default: return 0;
    }
}

static long round_pad(int n) { return ((long)n + CK_PAD - 1) / CK_PAD * CK_PAD; }

long ck_packed_forward_count(int K, int Cin, int Cout, int groups) {
    long np = groups * round_pad(Cout / groups);
    return (long)K * Cin * np + np;
}

void ck_pack_forward(float *packed, const float *weight, const float *bias, int K, int Cin, int Cout, int groups) {
    const int G = Cout / groups;
    const long P = round_pad(G), np = groups * P;
    memset(packed, 0, sizeof(float) * (size_t)ck_packed_forward_count(K, Cin, Cout, groups));
    for (int k = 0; k < K; k++)
        for (int o = 0; o < Cout; o++) {
            const float *w = weight + ((long)k * Cout + o) * Cin;
            long col = (o / G) * P + o % G;
            for (int c = 0; c < Cin; c++) packed[((long)k * Cin + c) * np + col] = w[c];
        }
    if (bias) {
        float *b = packed + (long)K * Cin * np;
        for (int o = 0; o < Cout; o++) b[(o / G) * P + o % G] = bias[o];
    }
}

long ck_packed_backward_count(int K, int Cin, int Cout) { return (long)K * Cout * round_pad(Cin) + CK_PAD; }

void ck_pack_backward(float *packed, const float *weight, int K, int Cin, int Cout) {
    const long np = round_pad(Cin);
    for (long r = 0; r < (long)K * Cout; r++) {
        memcpy(packed + r * np, weight + r * Cin, sizeof(float) * (size_t)Cin);
        memset(packed + r * np + Cin, 0, sizeof(float) * (size_t)(np - Cin));
    }
    memset(packed + (long)K * Cout * np, 0, sizeof(float) * CK_PAD);
}

long ck_packed_forward_count_bf16(int K, int Cin, int Cout, int groups) {
    long np = groups * round_pad(Cout / groups);
    return (long)K * ((Cin + 1) / 2) * np + np;
}

static unsigned bf16_pair(const float *lo, const float *hi) {
    return (unsigned)ck_bf16_from_float(*lo) | (hi ? (unsigned)ck_bf16_from_float(*hi) << 16 : 0u);
}

static void put_word(float *packed, long i, unsigned word) { memcpy(packed + i, &word, sizeof word); }

void ck_pack_forward_bf16(float *packed, const float *weight, const float *bias, int K, int Cin, int Cout, int groups) {
    const int G = Cout / groups, pairs = (Cin + 1) / 2;
    const long P = round_pad(G), np = groups * P;
    memset(packed, 0, sizeof(float) * (size_t)ck_packed_forward_count_bf16(K, Cin, Cout, groups));
    for (int k = 0; k < K; k++)
        for (int o = 0; o < Cout; o++) {
            const float *w = weight + ((long)k * Cout + o) * Cin;
            long col = (o / G) * P + o % G;
            for (int q = 0; q < pairs; q++)
                put_word(packed, ((long)k * pairs + q) * np + col, bf16_pair(w + 2 * q, 2 * q + 1 < Cin ? w + 2 * q + 1 : 0));
        }
    if (bias) {
        float *b = packed + (long)K * pairs * np;
        for (int o = 0; o < Cout; o++) b[(o / G) * P + o % G] = bias[o];
    }
}

long ck_packed_backward_count_bf16(int K, int Cin, int Cout) { return (long)K * ((Cout + 1) / 2) * round_pad(Cin) + CK_PAD; }

void ck_pack_backward_bf16(float *packed, const float *weight, int K, int Cin, int Cout) {
    const long np = round_pad(Cin);
    const int pairs = (Cout + 1) / 2;
    memset(packed, 0, sizeof(float) * (size_t)ck_packed_backward_count_bf16(K, Cin, Cout));
    for (int k = 0; k < K; k++)
        for (int q = 0; q < pairs; q++) {
            const float *w0 = weight + ((long)k * Cout + 2 * q) * Cin;
            const float *w1 = 2 * q + 1 < Cout ? w0 + Cin : 0;
            for (int c = 0; c < Cin; c++)
                put_word(packed, ((long)k * pairs + q) * np + c, bf16_pair(w0 + c, w1 ? w1 + c : 0));
        }
}
