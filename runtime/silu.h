/*
 * silu.h - SwiGLU's elementwise step for the forward pass: g[i] = silu(g[i]) * u[i],
 * silu(x) = x / (1 + expf(-x)), with exactly the bits of that scalar expression and the
 * C library's expf, eight values at a time where the CPU allows (silu_avx2.c).
 */
#ifndef RT_SILU_H
#define RT_SILU_H

#include <stdint.h>

/* g[i] = g[i] / (1.0f + expf(-g[i])) * u[i] for i < n */
void rt_silu_mul(float *g, const float *u, int64_t n);

/* the AVX2 + FMA path (silu_avx2.c); only rt_silu_mul calls it, after checking it */
void rt_silu_mul_avx2(float *g, const float *u, int64_t n);

#endif
