/*
 * silu.c - rt_silu_mul (silu.h): the scalar expression, or silu_avx2.c's eight-wide
 * version of it where the CPU has AVX2 + FMA, the kernels are not capped to scalar
 * (APR_RT_ISA) and a check at first use finds it gives the scalar bits for a sweep of
 * values: it reproduces glibc's expf, so on a C library that computes expf otherwise the
 * scalar path stays.
 */
#include "silu.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "matmul.h"
#include "../common/banned.h"

static void silu_mul_ref(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void expf_ref(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = expf(x[i]);
}

static void (*silu_fn)(float *g, const float *u, int64_t n) = silu_mul_ref;
static void (*expf_fn)(float *x, int64_t n) = expf_ref;

/* 1 when rt_silu_mul_avx2 and rt_expf_avx2 give the scalar bits for x in [-128, 128) by 1/64 (both
 * sides of glibc's |x| >= 88 slow path, zeros, tiny values), pseudo-random finite floats
 * of every exponent, and random multipliers */
static int avx2_agrees(void)
{
    enum { N = 4096 };
    static float a[N], b[N], c[N], u[N];   /* under pthread_once: one caller */
    uint32_t s = 12345;
    for (int pass = 0; pass < 5; pass++) {
        for (int i = 0; i < N; i++) {
            s = s * 1664525u + 1013904223u;
            if (pass < 4) {
                a[i] = (float)((pass * N + i) - 2 * N) / 64.0f;
            } else {
                uint32_t v = s & 0xff7fffffu;   /* finite: exponent below 255 */
                memcpy(&a[i], &v, 4);
            }
            u[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
        }
        memcpy(b, a, sizeof a);
        expf_ref(b, N);
        memcpy(c, a, sizeof a);
        rt_expf_avx2(c, N);
        if (memcmp(b, c, sizeof b))
            return 0;
        memcpy(b, a, sizeof a);
        silu_mul_ref(a, u, N);
        rt_silu_mul_avx2(b, u, N);
        if (memcmp(a, b, sizeof a))
            return 0;
    }
    return 1;
}

static void init_once(void)
{
    if (strcmp(rt_matmul_isa(), "scalar") != 0 && avx2_agrees()) {
        silu_fn = rt_silu_mul_avx2;
        expf_fn = rt_expf_avx2;
    }
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

void rt_silu_mul(float *g, const float *u, int64_t n)
{
    pthread_once(&once, init_once);
    silu_fn(g, u, n);
}

void rt_expf_n(float *x, int64_t n)
{
    pthread_once(&once, init_once);
    expf_fn(x, n);
}
