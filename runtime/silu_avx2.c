/*
 * silu_avx2.c - SwiGLU's g = silu(g) * u, silu(x) = x / (1 + expf(-x)), eight values at
 * a time (compiled with -mavx2 -mfma -mf16c by the Makefile's *_avx2.c rule; silu.c
 * chooses it at run time).  A prompt runs n_ff values per token per layer through it
 * (TinyLlama pp128: 15.9M), and the C library's expf, one call per value, took ~4 ns
 * each here: ~2% of an F16 prompt.
 *
 * The values must keep the bits of the scalar expression, so expf is computed the way
 * glibc 2.27+ computes it in its FMA variant (sysdeps/ieee754/flt-32/e_expf.c, the code
 * libm's ifunc picks on an AVX2 + FMA CPU): in double, k = round(x * 32 / ln 2) by the
 * shift trick, r = x * 32 / ln 2 - k fused, 2^(k/32) from a 32-entry table plus k's high
 * bits in the exponent, a degree-3 polynomial in r by three FMAs, the product rounded
 * once to float.  The constants and the table are glibc's __exp2f_data.  |x| >= 88, inf
 * and NaN (glibc's slow path: overflow, underflow, errno) go to expf itself, 8 at a
 * time.  silu.c checks this path against the library's expf at start and keeps the
 * scalar one if any bit differs (another C library, or glibc without FMA).  The same
 * expf serves the attention's softmax (rt_expf_avx2).
 */
#include "silu.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "../common/banned.h"

/* __exp2f_data: tab[i] = asuint64(2^(i/32)) - (i << 47) */
static const uint64_t exp2f_tab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};

/* expf of 4 floats (none in the slow path), widened to double */
static inline __m128 expf4(__m128 x)
{
    const __m256d invln2n = _mm256_set1_pd(0x1.71547652b82fep+5);   /* 32 / ln 2 */
    const __m256d shift = _mm256_set1_pd(0x1.8p+52);
    const __m256d c0 = _mm256_set1_pd(0x1.c6af84b912394p-20), c1 = _mm256_set1_pd(0x1.ebfce50fac4f3p-13);
    const __m256d c2 = _mm256_set1_pd(0x1.62e42ff0c52d6p-6), one = _mm256_set1_pd(1.0);
    __m256d xd = _mm256_cvtps_pd(x);
    __m256d kd = _mm256_fmadd_pd(invln2n, xd, shift);
    __m256i ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, shift);
    __m256d r = _mm256_fmsub_pd(invln2n, xd, kd);
    __m256i t = _mm256_i64gather_epi64((const long long *)exp2f_tab,
                                       _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8);
    __m256d s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64(ki, 47)));
    __m256d z = _mm256_fmadd_pd(c0, r, c1), r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_fmadd_pd(c2, r, one);
    y = _mm256_fmadd_pd(z, r2, y);
    return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

void rt_silu_mul_avx2(float *g, const float *u, int64_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    const __m256i big = _mm256_set1_epi32(0x42a);   /* top 12 bits of 88.0f: glibc's test */
    int64_t i = 0;

    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i), m = _mm256_xor_ps(x, sign), e;
        __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(m), 20),
                                       _mm256_set1_epi32(0x7ff));
        if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top,
                               _mm256_sub_epi32(big, _mm256_set1_epi32(1)))))) {
            float a[8];
            _mm256_storeu_ps(a, m);
            for (int k = 0; k < 8; k++)
                a[k] = expf(a[k]);
            e = _mm256_loadu_ps(a);
        } else {
            e = _mm256_set_m128(expf4(_mm256_extractf128_ps(m, 1)),
                                expf4(_mm256_castps256_ps128(m)));
        }
        __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, e));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* x[i] = expf(x[i]): the softmax's exponentials, the same path */
void rt_expf_avx2(float *x, int64_t n)
{
    const __m256i big = _mm256_set1_epi32(0x42a - 1);
    int64_t i = 0;

    for (; i + 8 <= n; i += 8) {
        __m256 m = _mm256_loadu_ps(x + i);
        __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(m), 20),
                                       _mm256_set1_epi32(0x7ff));
        if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, big)))) {
            for (int k = 0; k < 8; k++)
                x[i + k] = expf(x[i + k]);
            continue;
        }
        _mm256_storeu_ps(x + i, _mm256_set_m128(expf4(_mm256_extractf128_ps(m, 1)),
                                                expf4(_mm256_castps256_ps128(m))));
    }
    for (; i < n; i++)
        x[i] = expf(x[i]);
}

#else
/* not an x86-64 build with AVX2 and FMA: silu.c never calls these */
void rt_silu_mul_avx2(float *g, const float *u, int64_t n)
{
    (void)g;
    (void)u;
    (void)n;
}

void rt_expf_avx2(float *x, int64_t n)
{
    (void)x;
    (void)n;
}
#endif
