/*
 * compare_avx2.c - the AVX2 twin of cmp__lanes_scalar (compare.c); compiled with -mavx2
 * (Makefile rule for *_avx2.c) and called only when the CPU has AVX2.  Two vectors of
 * four doubles are the eight lanes of compare_impl.h's sums; multiplies and adds are separate
 * instructions (no FMA), so every lane is bit-identical with the scalar kernel.
 */
#include "compare_impl.h"

#ifdef CMP_HAVE_AVX2_BUILD
#include <immintrin.h>

#include "../common/banned.h"

void cmp__lanes_avx2(const float *x, const float *y, int64_t m, struct cmp_lanes *L)
{
    const __m256d sign = _mm256_set1_pd(-0.0), zero = _mm256_setzero_pd();
    const __m256d small = _mm256_set1_pd(CMP_SMALL), medium = _mm256_set1_pd(CMP_MEDIUM);
    /* the sums: two vectors each (lanes 0-3 and 4-7); the max and the counts are exact,
     * so one vector each holds both halves: 14 accumulators fit the 16 registers */
    __m256d ab0 = zero, ab1 = zero, aa0 = zero, aa1 = zero, bb0 = zero, bb1 = zero;
    __m256d sd0 = zero, sd1 = zero, sq0 = zero, sq1 = zero, mx = zero;
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0;
    int64_t j = 0;

    for (; j + CMP_LANES <= m; j += CMP_LANES) {
        __m256d p0 = _mm256_cvtps_pd(_mm_loadu_ps(x + j));
        __m256d q0 = _mm256_cvtps_pd(_mm_loadu_ps(y + j));
        __m256d p1 = _mm256_cvtps_pd(_mm_loadu_ps(x + j + 4));
        __m256d q1 = _mm256_cvtps_pd(_mm_loadu_ps(y + j + 4));
        __m256d d0 = _mm256_andnot_pd(sign, _mm256_sub_pd(p0, q0));
        __m256d d1 = _mm256_andnot_pd(sign, _mm256_sub_pd(p1, q1));

        ab0 = _mm256_add_pd(ab0, _mm256_mul_pd(p0, q0));
        ab1 = _mm256_add_pd(ab1, _mm256_mul_pd(p1, q1));
        aa0 = _mm256_add_pd(aa0, _mm256_mul_pd(p0, p0));
        aa1 = _mm256_add_pd(aa1, _mm256_mul_pd(p1, p1));
        bb0 = _mm256_add_pd(bb0, _mm256_mul_pd(q0, q0));
        bb1 = _mm256_add_pd(bb1, _mm256_mul_pd(q1, q1));
        sd0 = _mm256_add_pd(sd0, d0);
        sd1 = _mm256_add_pd(sd1, d1);
        sq0 = _mm256_add_pd(sq0, _mm256_mul_pd(d0, d0));
        sq1 = _mm256_add_pd(sq1, _mm256_mul_pd(d1, d1));
        /* d > mx ? d : mx, as the scalar kernel (max_pd returns its 2nd operand unless
         * the 1st is greater) */
        mx = _mm256_max_pd(d0, mx);
        mx = _mm256_max_pd(d1, mx);
        /* a true compare is all ones (-1): subtracting it counts one */
        c0 = _mm256_sub_epi64(c0, _mm256_castpd_si256(_mm256_cmp_pd(d0, zero, _CMP_EQ_OQ)));
        c0 = _mm256_sub_epi64(c0, _mm256_castpd_si256(_mm256_cmp_pd(d1, zero, _CMP_EQ_OQ)));
        c1 = _mm256_sub_epi64(c1, _mm256_castpd_si256(_mm256_cmp_pd(d0, small, _CMP_LT_OQ)));
        c1 = _mm256_sub_epi64(c1, _mm256_castpd_si256(_mm256_cmp_pd(d1, small, _CMP_LT_OQ)));
        c2 = _mm256_sub_epi64(c2, _mm256_castpd_si256(_mm256_cmp_pd(d0, medium, _CMP_LT_OQ)));
        c2 = _mm256_sub_epi64(c2, _mm256_castpd_si256(_mm256_cmp_pd(d1, medium, _CMP_LT_OQ)));
    }
    /* L is zeroed by the caller: lanes 4-7 of the max and the counts stay 0 */
    _mm256_storeu_pd(L->xy, ab0);
    _mm256_storeu_pd(L->xy + 4, ab1);
    _mm256_storeu_pd(L->xx, aa0);
    _mm256_storeu_pd(L->xx + 4, aa1);
    _mm256_storeu_pd(L->yy, bb0);
    _mm256_storeu_pd(L->yy + 4, bb1);
    _mm256_storeu_pd(L->sd, sd0);
    _mm256_storeu_pd(L->sd + 4, sd1);
    _mm256_storeu_pd(L->sd2, sq0);
    _mm256_storeu_pd(L->sd2 + 4, sq1);
    _mm256_storeu_pd(L->mx, mx);
    _mm256_storeu_si256((__m256i *)(void *)L->c0, c0);
    _mm256_storeu_si256((__m256i *)(void *)L->c1, c1);
    _mm256_storeu_si256((__m256i *)(void *)L->c2, c2);
    if (j < m)   /* the tail, in lane 0, exactly as the scalar kernel does it */
        cmp__lanes_scalar(x + j, y + j, m - j, L);
}
#else
typedef int compare_avx2_empty;   /* ISO C: a translation unit is not empty */
#endif
