/*
 * silu.h - SwiGLU's elementwise step for the forward pass: g[i] = silu(g[i]) * u[i],
 * silu(x) = x / (1 + expf(-x)), with exactly the bits of that scalar expression and the
 * C library's expf, eight values at a time where the CPU allows (silu_avx2.c); and expf
 * itself over an array, for the attention's softmax.
 */
#ifndef RT_SILU_H
#define RT_SILU_H

#include <stdint.h>

/* g[i] = g[i] / (1.0f + expf(-g[i])) * u[i] for i < n */
void rt_silu_mul(float *g, const float *u, int64_t n);

/* x[i] = expf(x[i]) for i < n, the same bits (the softmax's exponentials) */
void rt_expf_n(float *x, int64_t n);

/* the AVX2 + FMA paths (silu_avx2.c); only the two above call them, after checking them */
void rt_silu_mul_avx2(float *g, const float *u, int64_t n);
void rt_expf_avx2(float *x, int64_t n);

#endif
