/*
 * kern_ref.c - the scalar twins: the definition of every dot-product kernel and
 * activation quantizer of rt_matmul (kern.h).  The SIMD files must give the same
 * bits where the arithmetic is integer (see each kernel's comment for the float part).
 *
 * Floating-point dots (F32, F16, BF16): eight f32 partial sums, lane i % 8, reduced
 * as ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7)).  The SIMD kernels use wider and FMA
 * lanes, so they agree within a tolerance (tests/unit/check_kern.c states it).
 */
#include "kern.h"

#include <math.h>
#include <string.h>

#include "../dequant/dq.h"
#include "../formats/dtype.h"
#include "../common/banned.h"

float rt_h2f(uint16_t h) { return dq_f16_to_f32(h); }
uint16_t rt_f2h(float f) { return dq_f32_to_f16(f); }

int rt_act_blck(enum rt_act act)
{
    switch (act) {
    case RT_ACT_Q8_0: case RT_ACT_Q8_1: return 32;
    case RT_ACT_Q8_K: return 256;
    default: return 1;
    }
}

size_t rt_act_row_bytes(enum rt_act act, int64_t n)
{
    switch (act) {
    case RT_ACT_Q8_0: return (size_t)(n / 32) * sizeof(struct block_q8_0);
    case RT_ACT_Q8_1: return (size_t)(n / 32) * sizeof(struct block_q8_1);
    case RT_ACT_Q8_K: return (size_t)(n / 256) * sizeof(struct block_q8_K);
    default: return (size_t)n * sizeof(float);
    }
}

static float red8(const float s[8])
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* ---- floating-point rows, f32 activations */

#define FP_DOT(name, T, CONV)                                                              \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const uint8_t *wr = w;                                                                  \
    for (int t = 0; t < nt; t++) {                                                          \
        const float *x = (const float *)((const uint8_t *)a + (size_t)t * a_stride);        \
        float s[8] = { 0 };                                                                 \
        int64_t i = 0;                                                                      \
        for (; i + 8 <= n; i += 8)                                                          \
            for (int k = 0; k < 8; k++)                                                     \
                s[k] += CONV(wr, i + k) * x[i + k];                                         \
        for (; i < n; i++)                                                                  \
            s[i & 7] += CONV(wr, i) * x[i];                                                 \
        out[(size_t)t * o_stride] = red8(s);                                                \
    }                                                                                       \
}

/* weight rows may be unaligned (SafeTensors, APR): load through memcpy */
static inline float ld_f32(const uint8_t *p, int64_t i)
{
    float f;
    memcpy(&f, p + 4 * i, 4);
    return f;
}
static inline float ld_f16(const uint8_t *p, int64_t i)
{
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return dq_f16_to_f32(h);
}
static inline float ld_bf16(const uint8_t *p, int64_t i)
{
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
FP_DOT(dot_f32_ref, float, ld_f32)
FP_DOT(dot_f16_ref, uint16_t, ld_f16)
FP_DOT(dot_bf16_ref, uint16_t, ld_bf16)

void rt_kern_ref_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[4])
{
    memset(tab, 0, sizeof(struct rt_kern) * RT_NKERN);
    memset(q, 0, sizeof(rt_quant_fn) * 4);
#define K(dt, ac, fn) tab[dt] = (struct rt_kern){ dt, ac, fn, RT_ISA_SCALAR }
    K(DT_F32, RT_ACT_F32, dot_f32_ref);
    K(DT_F16, RT_ACT_F32, dot_f16_ref);
    K(DT_BF16, RT_ACT_F32, dot_bf16_ref);
#undef K
}
