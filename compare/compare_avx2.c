/*
 * compare_avx2.c - the AVX2 twins of cmp__lanes_scalar and cmp__lanes_h_scalar
 * (compare.c); compiled with -mavx2 -mf16c (Makefile rule for *_avx2.c) and called only
 * when the CPU has both.  Two vectors of four doubles are the eight lanes of
 * compare_impl.h's sums; multiplies and adds are separate instructions (no FMA), so every
 * lane is bit-identical with the scalar kernel.  The half kernel converts eight halves to
 * f32 with one vcvtph2ps (exact, as the scalar conversion) and then does the f32 kernel's
 * very step.
 */
#include "compare_impl.h"

#ifdef CMP_HAVE_AVX2_BUILD
#include <immintrin.h>

#include "../common/banned.h"

/* The accumulators: the sums in two vectors each (lanes 0-3 and 4-7); the max and the
 * counts are exact, so one vector each holds both halves: 14 fit the 16 registers. */
struct acc {
    __m256d ab0, ab1, aa0, aa1, bb0, bb1, sd0, sd1, sq0, sq1, mx;
    __m256i c0, c1, c2;
};

static inline void acc_init(struct acc *A)
{
    A->ab0 = A->ab1 = A->aa0 = A->aa1 = A->bb0 = A->bb1 = _mm256_setzero_pd();
    A->sd0 = A->sd1 = A->sq0 = A->sq1 = A->mx = _mm256_setzero_pd();
    A->c0 = A->c1 = A->c2 = _mm256_setzero_si256();
}

/* Eight elements: p0/q0 lanes 0-3, p1/q1 lanes 4-7. */
static inline __attribute__((always_inline)) void acc_step(struct acc *A, __m256d p0,
                                                             __m256d p1, __m256d q0, __m256d q1)
{
    const __m256d sign = _mm256_set1_pd(-0.0), zero = _mm256_setzero_pd();
    const __m256d small = _mm256_set1_pd(CMP_SMALL), medium = _mm256_set1_pd(CMP_MEDIUM);
    __m256d d0 = _mm256_andnot_pd(sign, _mm256_sub_pd(p0, q0));
    __m256d d1 = _mm256_andnot_pd(sign, _mm256_sub_pd(p1, q1));

    A->ab0 = _mm256_add_pd(A->ab0, _mm256_mul_pd(p0, q0));
    A->ab1 = _mm256_add_pd(A->ab1, _mm256_mul_pd(p1, q1));
    A->aa0 = _mm256_add_pd(A->aa0, _mm256_mul_pd(p0, p0));
    A->aa1 = _mm256_add_pd(A->aa1, _mm256_mul_pd(p1, p1));
    A->bb0 = _mm256_add_pd(A->bb0, _mm256_mul_pd(q0, q0));
    A->bb1 = _mm256_add_pd(A->bb1, _mm256_mul_pd(q1, q1));
    A->sd0 = _mm256_add_pd(A->sd0, d0);
    A->sd1 = _mm256_add_pd(A->sd1, d1);
    A->sq0 = _mm256_add_pd(A->sq0, _mm256_mul_pd(d0, d0));
    A->sq1 = _mm256_add_pd(A->sq1, _mm256_mul_pd(d1, d1));
    /* d > mx ? d : mx, as the scalar kernel (max_pd returns its 2nd operand unless the
     * 1st is greater) */
    A->mx = _mm256_max_pd(d0, A->mx);
    A->mx = _mm256_max_pd(d1, A->mx);
    /* a true compare is all ones (-1): subtracting it counts one */
    A->c0 = _mm256_sub_epi64(A->c0, _mm256_castpd_si256(_mm256_cmp_pd(d0, zero, _CMP_EQ_OQ)));
    A->c0 = _mm256_sub_epi64(A->c0, _mm256_castpd_si256(_mm256_cmp_pd(d1, zero, _CMP_EQ_OQ)));
    A->c1 = _mm256_sub_epi64(A->c1, _mm256_castpd_si256(_mm256_cmp_pd(d0, small, _CMP_LT_OQ)));
    A->c1 = _mm256_sub_epi64(A->c1, _mm256_castpd_si256(_mm256_cmp_pd(d1, small, _CMP_LT_OQ)));
    A->c2 = _mm256_sub_epi64(A->c2, _mm256_castpd_si256(_mm256_cmp_pd(d0, medium, _CMP_LT_OQ)));
    A->c2 = _mm256_sub_epi64(A->c2, _mm256_castpd_si256(_mm256_cmp_pd(d1, medium, _CMP_LT_OQ)));
}

/* L is zeroed by the caller: lanes 4-7 of the max and the counts stay 0. */
static inline void acc_store(const struct acc *A, struct cmp_lanes *L)
{
    _mm256_storeu_pd(L->xy, A->ab0);
    _mm256_storeu_pd(L->xy + 4, A->ab1);
    _mm256_storeu_pd(L->xx, A->aa0);
    _mm256_storeu_pd(L->xx + 4, A->aa1);
    _mm256_storeu_pd(L->yy, A->bb0);
    _mm256_storeu_pd(L->yy + 4, A->bb1);
    _mm256_storeu_pd(L->sd, A->sd0);
    _mm256_storeu_pd(L->sd + 4, A->sd1);
    _mm256_storeu_pd(L->sd2, A->sq0);
    _mm256_storeu_pd(L->sd2 + 4, A->sq1);
    _mm256_storeu_pd(L->mx, A->mx);
    _mm256_storeu_si256((__m256i *)(void *)L->c0, A->c0);
    _mm256_storeu_si256((__m256i *)(void *)L->c1, A->c1);
    _mm256_storeu_si256((__m256i *)(void *)L->c2, A->c2);
}

void cmp__lanes_avx2(const float *x, const float *y, int64_t m, struct cmp_lanes *L)
{
    struct acc A;
    int64_t j = 0;

    acc_init(&A);
    for (; j + CMP_LANES <= m; j += CMP_LANES)
        acc_step(&A, _mm256_cvtps_pd(_mm_loadu_ps(x + j)), _mm256_cvtps_pd(_mm_loadu_ps(x + j + 4)),
                 _mm256_cvtps_pd(_mm_loadu_ps(y + j)), _mm256_cvtps_pd(_mm_loadu_ps(y + j + 4)));
    acc_store(&A, L);
    if (j < m)   /* the tail, in lane 0, exactly as the scalar kernel does it */
        cmp__lanes_scalar(x + j, y + j, m - j, L);
}

void cmp__lanes_h_avx2(const uint8_t *x, const uint8_t *y, int64_t m, struct cmp_lanes *L)
{
    struct acc A;
    int64_t j = 0;

    acc_init(&A);
    for (; j + CMP_LANES <= m; j += CMP_LANES) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(x + 2 * j)));
        __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(y + 2 * j)));
        acc_step(&A, _mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                 _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)),
                 _mm256_cvtps_pd(_mm256_castps256_ps128(b)),
                 _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
    }
    acc_store(&A, L);
    if (j < m)
        cmp__lanes_h_scalar(x + 2 * j, y + 2 * j, m - j, L);
}
#else
typedef int compare_avx2_empty;   /* ISO C: a translation unit is not empty */
#endif
