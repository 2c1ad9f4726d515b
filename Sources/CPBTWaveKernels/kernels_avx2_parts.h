// load_part4 and store_part4: the first n (0 <= n < 4) floats of a 128-bit
// vector from and to p by plain loads and stores of 2 and 1 floats (loads:
// the rest zero). vmaskmovps is slow on AMD's Zen 1 (a loop of masked loads
// ran about 10×, of masked stores 4× the time of plain ones), so the AVX2
// kernels build a ragged width's last vector from these (see vload_n in
// kernels_template.h). Included by kernels_avx2.c and kernels_avx2_half.c,
// after TARGET and ALWAYS_INLINE.
static ALWAYS_INLINE TARGET __m128 load_part4(const float *p, int n) {
    switch (n) {
    case 1: return _mm_load_ss(p);
    case 2: return _mm_castpd_ps(_mm_load_sd((const double *)p));
    case 3: return _mm_movelh_ps(_mm_castpd_ps(_mm_load_sd((const double *)p)), _mm_load_ss(p + 2));
    default: return _mm_setzero_ps();
    }
}
static ALWAYS_INLINE TARGET void store_part4(float *p, __m128 x, int n) {
    if (n >= 2) _mm_store_sd((double *)p, _mm_castps_pd(x));
    if (n == 1) _mm_store_ss(p, x);
    if (n == 3) _mm_store_ss(p + 2, _mm_movehl_ps(x, x));
}
