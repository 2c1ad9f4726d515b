// The portable variant: plain C on the compiler's 4-lane vector extension
// (SSE2 on any x86-64, NEON on arm64). Register tiles: 4 rows × 2 vectors
// and 6 × 1. Also the reference the other variants are compared with.
#include <string.h>
#include "CPBTWaveKernels.h"

#define FN(name) name##_generic
#define TARGET
#define ISA_ENUM CK_GENERIC
#define ISA_NAME "generic"
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define VL 4
#define NV_MAX 2
#define MR_MAX 6
#define MR_OF(nv) ((nv) == 2 ? 4 : 6)

typedef float vec __attribute__((vector_size(16)));
typedef int ivec __attribute__((vector_size(16)));
typedef int vmask;  // the number of leading lanes

static ALWAYS_INLINE vec vzero(void) { return (vec){0, 0, 0, 0}; }
static ALWAYS_INLINE vec vset1(float x) { return (vec){x, x, x, x}; }
static ALWAYS_INLINE vec vload(const float *p) { vec v; memcpy(&v, p, sizeof v); return v; }
static ALWAYS_INLINE void vstore(float *p, vec v) { memcpy(p, &v, sizeof v); }
static ALWAYS_INLINE vmask vmask_first(int n) { return n; }
static ALWAYS_INLINE vec vloadm(const float *p, vmask m, vec fill) {
    if (m >= VL) return vload(p);
    for (int i = 0; i < m; i++) fill[i] = p[i];
    return fill;
}
static ALWAYS_INLINE void vstorem(float *p, vec v, vmask m) {
    if (m >= VL) { vstore(p, v); return; }
    for (int i = 0; i < m; i++) p[i] = v[i];
}
static ALWAYS_INLINE vec vselect(ivec m, vec a, vec b) { return (vec)(((ivec)a & m) | ((ivec)b & ~m)); }
static ALWAYS_INLINE vec vmaskz(vec v, vmask m) {
    ivec lanes = {0, 1, 2, 3};
    return vselect(lanes < m, v, vzero());
}
static ALWAYS_INLINE vec vadd(vec a, vec b) { return a + b; }
static ALWAYS_INLINE vec vsub(vec a, vec b) { return a - b; }
static ALWAYS_INLINE vec vmul(vec a, vec b) { return a * b; }
static ALWAYS_INLINE vec vdiv(vec a, vec b) { return a / b; }
static ALWAYS_INLINE vec vmax(vec a, vec b) { return vselect(a > b, a, b); }
static ALWAYS_INLINE vec vfma(vec a, vec b, vec c) { return a * b + c; }
static ALWAYS_INLINE vec vfnmadd(vec a, vec b, vec c) { return c - a * b; }
static ALWAYS_INLINE vec vsqrt(vec a) { return __builtin_elementwise_sqrt(a); }
static ALWAYS_INLINE vec vrelu(vec x) { return vselect(x < vzero(), vzero(), x); }
static ALWAYS_INLINE vec vmax_nan(vec lo, vec x) { return vselect(x < lo, lo, x); }
static ALWAYS_INLINE vec vmin_nan(vec hi, vec x) { return vselect(x > hi, hi, x); }
static ALWAYS_INLINE vec vpositive(vec y, vec v) { return vselect(y <= vzero(), vzero(), v); }
static ALWAYS_INLINE float vhsum(vec v) { return (v[0] + v[1]) + (v[2] + v[3]); }
static ALWAYS_INLINE float vhmax(vec v) {
    float a = v[0] > v[1] ? v[0] : v[1], b = v[2] > v[3] ? v[2] : v[3];
    return a > b ? a : b;
}
static ALWAYS_INLINE vec vrecip(vec x) { return vset1(1.0f) / x; }

// Nearest integer (as a float) by adding and subtracting 1.5·2^23, and p·2^n
// built in the exponent bits (vexp keeps n within [-126, 127]).
static ALWAYS_INLINE vec vround(vec x) {
    const vec magic = vset1(12582912.0f);
    return (x + magic) - magic;
}
static ALWAYS_INLINE vec vscale2(vec p, vec n) {
    ivec e = (__builtin_convertvector(n, ivec) + 127) << 23;
    return p * (vec)e;
}

// bf16 words: the emulation of vdpbf16ps (see the template's vocabulary).
// The products of two bf16 are exact in fp32, so (acc + hi·hi) + lo·lo
// rounds exactly as the instruction does (subnormal results aside: the
// instruction flushes them to zero).
#define BF16_NATIVE 0
typedef unsigned uvec __attribute__((vector_size(16)));
typedef uvec pvec;
static ALWAYS_INLINE pvec pload(const float *p) { pvec v; memcpy(&v, p, sizeof v); return v; }
static ALWAYS_INLINE pvec pbroadcast(const unsigned short *q) {
    unsigned w; memcpy(&w, q, sizeof w);
    return (pvec){w, w, w, w};
}
static ALWAYS_INLINE vec vdot2(vec acc, pvec a, pvec b) {
    const uvec high = (uvec){0xffff0000u, 0xffff0000u, 0xffff0000u, 0xffff0000u};
    vec ah = (vec)(a & high), bh = (vec)(b & high), al = (vec)(a << 16), bl = (vec)(b << 16);
    vec t = acc + ah * bh;
    return t + al * bl;
}
static ALWAYS_INLINE void vstore_bf16(unsigned short *q, vec x, int n) {
    for (int i = 0; i < n; i++) q[i] = ck_bf16_from_float(x[i]);
}
static ALWAYS_INLINE void vstore_bf16_pairs(unsigned *q, vec lo, vec hi) {
    for (int i = 0; i < VL; i++) q[i] = (unsigned)ck_bf16_from_float(lo[i]) | (unsigned)ck_bf16_from_float(hi[i]) << 16;
}

// bf16 rows as they are stored (see kernels_avx512.c): n values (the rest
// zero; a NULL row is all zeros) widened to fp32, or two rows as time pairs.
static ALWAYS_INLINE vec vload_bf16(const unsigned short *q, int n) {
    vec v = vzero();
    for (int i = 0; q && i < n && i < VL; i++) v[i] = ck_float_from_bf16(q[i]);
    return v;
}
static ALWAYS_INLINE void vpair16(unsigned *q, const unsigned short *a, const unsigned short *b, int n) {
    for (int i = 0; i < VL; i++)
        q[i] = i < n ? (unsigned)(a ? a[i] : 0) | (unsigned)(b ? b[i] : 0) << 16 : 0;
}

// Dot tails (see the template): a width's last 1 or 2 channels of 4.
#define DOT_TAILS 1

#include "kernels_template.h"
