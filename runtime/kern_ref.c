/*
 * kern_ref.c - the scalar twins: the definition of every dot-product kernel and
 * activation quantizer of rt_matmul (kern.h).  The SIMD files must give the same
 * bits where the arithmetic is integer (see each kernel's comment for the float part).
 *
 * Floating-point dots (F32, F16, BF16): eight f32 partial sums, lane i % 8, reduced
 * as ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7)).  The SIMD kernels use wider and FMA
 * lanes, so they agree within a tolerance (tests/unit/check_kern.c states it).
 *
 * Quantized dots: the product of a weight block and an activation block is an EXACT
 * integer (isum); only the scaling is float, and it is defined here to the bit:
 *   legacy blocks of 32 (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL, activations Q8_0/Q8_1):
 *     block b goes to lane L = b % 8 of eight f32 accumulators,
 *       acc[L] = fmaf(dw * da, (float)isum, acc[L])
 *       acc[L] = fmaf(mw, sa, acc[L])              (Q4_1, Q5_1: m times d*sum(qa))
 *     and the result is red8(acc) as above.  SIMD kernels do eight blocks at a time
 *     with one f32 lane per block, so they give the same bits.
 *   super-blocks of 256 (Q2_K..Q6_K, IQ4_XS, activations Q8_K): the sub-block scales
 *     are integers too, so isum (and imin for the types with mins) are exact per
 *     super-block; one f32 accumulator, super-block after super-block:
 *       acc = fmaf(d * da, (float)isum, acc)
 *       acc = fmaf(-(dmin * da), (float)imin, acc)    (Q2_K, Q4_K, Q5_K)
 * fmaf is exact (one rounding) everywhere, so scalar and SIMD agree bit for bit.
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
    case RT_ACT_Q8_0: case RT_ACT_Q8_1: case RT_ACT_Q8_0X16: case RT_ACT_Q8_0S:
    case RT_ACT_Q8_0P: case RT_ACT_Q8_0X8: case RT_ACT_Q8_0X4: case RT_ACT_Q8_1X4: return 32;
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
    case RT_ACT_Q8_0X16:   /* see kern.h: 576-byte groups of 16 blocks, then plain blocks */
        return (size_t)(n / 512) * 576 + (size_t)(n / 32 % 16) * sizeof(struct block_q8_0);
    case RT_ACT_Q8_0X8:    /* see kern.h: 544-byte groups of 8 blocks, then plain blocks */
        return (size_t)(n / 256) * 544 + (size_t)(n / 32 % 8) * sizeof(struct block_q8_0);
    case RT_ACT_Q8_0X4:    /* see kern.h: 320-byte groups of 8 blocks, then plain blocks */
        return (size_t)(n / 256) * 320 + (size_t)(n / 32 % 8) * sizeof(struct block_q8_0);
    case RT_ACT_Q8_1X4:    /* see kern.h: 320-byte groups of 8 blocks, then plain blocks */
        return (size_t)(n / 256) * 320 + (size_t)(n / 32 % 8) * sizeof(struct block_q8_1);
    case RT_ACT_Q8_0S:     /* see kern.h: values, f32 scales, int32 sums */
    case RT_ACT_Q8_0P:     /* see kern.h: 320-byte groups of 8 blocks, then 40 a block */
        return (size_t)(n / 32) * (32 + sizeof(float) + sizeof(int32_t));
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

/* ---- activation quantizers */

/* Round to nearest, ties to even (rintf in the default rounding mode; the SIMD
 * quantizers use the same rounding). */
static inline int rne(float x)
{
    return (int)rintf(x);
}

static void quant_q8_0_ref(const float *x, void *dst, int64_t n)
{
    struct block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = rt_f2h(d);
        for (int j = 0; j < 32; j++)
            y[b].qs[j] = (int8_t)rne(x[j] * id);
    }
}

/* RT_ACT_Q8_0S: the bytes of quant_q8_0_ref, split (kern.h) */
static void quant_q8_0s_ref(const float *x, void *dst, int64_t n)
{
    int64_t nb = n / 32;
    int8_t *q = dst;
    uint8_t *dp = (uint8_t *)dst + 32 * nb, *sp = dp + 4 * nb;
    for (int64_t b = 0; b < nb; b++) {
        struct block_q8_0 blk;
        quant_q8_0_ref(x + 32 * b, &blk, 32);
        float d = rt_h2f(blk.d);
        int32_t sum = 0;
        for (int j = 0; j < 32; j++)
            sum += blk.qs[j];
        memcpy(q + 32 * b, blk.qs, 32);
        memcpy(dp + 4 * b, &d, 4);
        memcpy(sp + 4 * b, &sum, 4);
    }
}

/* m = 8 Q8_0 blocks as one group (320 bytes at dst) or m = 1 block past the groups
 * (40 bytes) */
static void q8_0p_put(const struct block_q8_0 *blk, int m, uint8_t *dst)
{
    static const int lane[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };
    float d[8];
    int32_t sum[8];

    for (int j = 0; j < m; j++) {
        d[j] = rt_h2f(blk[j].d);
        sum[j] = 0;
        for (int k = 0; k < 32; k++)
            sum[j] += blk[j].qs[k];
    }
    if (m == 1) {
        memcpy(dst, blk->qs, 32);
        memcpy(dst + 32, &d[0], 4);
        memcpy(dst + 36, &sum[0], 4);
        return;
    }
    for (int p = 0; p < 4; p++) {
        uint8_t *o = dst + 64 * p;
        memcpy(o, blk[2 * p].qs, 16);
        memcpy(o + 16, blk[2 * p + 1].qs, 16);
        memcpy(o + 32, blk[2 * p].qs + 16, 16);
        memcpy(o + 48, blk[2 * p + 1].qs + 16, 16);
    }
    for (int k = 0; k < 8; k++) {
        memcpy(dst + 256 + 4 * k, &d[lane[k]], 4);
        memcpy(dst + 288 + 4 * k, &sum[lane[k]], 4);
    }
}

void rt_q8_0p_quant(rt_quant_fn q8_0, const float *x, void *dst, int64_t n)
{
    int64_t nb = n / 32, b = 0;
    uint8_t *o = dst;
    struct block_q8_0 blk[8];

    for (; b + 8 <= nb; b += 8, o += 320) {
        q8_0(x + 32 * b, blk, 256);
        q8_0p_put(blk, 8, o);
    }
    for (; b < nb; b++, o += 40) {
        q8_0(x + 32 * b, blk, 32);
        q8_0p_put(blk, 1, o);
    }
}

/* RT_ACT_Q8_0P: the blocks of quant_q8_0_ref, placed (kern.h) */
static void quant_q8_0p_ref(const float *x, void *dst, int64_t n)
{
    rt_q8_0p_quant(quant_q8_0_ref, x, dst, n);
}

static void quant_q8_1_ref(const float *x, void *dst, int64_t n)
{
    struct block_q8_1 *y = dst;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0;
        int sum = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = rt_f2h(d);
        for (int j = 0; j < 32; j++) {
            y[b].qs[j] = (int8_t)rne(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].s = rt_f2h(d * (float)sum);
    }
}

/* ggml's q8_K: the element of largest magnitude maps to -127 (ties: the positive one,
 * where ggml takes the first; the SIMD version needs an order-free rule). */
static void quant_q8_k_ref(const float *x, void *dst, int64_t n)
{
    struct block_q8_K *y = dst;
    for (int64_t b = 0; b < n / 256; b++, x += 256) {
        float mx = x[0], mn = x[0];
        for (int j = 1; j < 256; j++) {
            mx = fmaxf(mx, x[j]);
            mn = fminf(mn, x[j]);
        }
        float max = mx >= -mn ? mx : mn;
        if (max == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            int v = rne(iscale * x[j]);
            y[b].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++)
                sum += y[b].qs[16 * j + k];
            y[b].bsums[j] = (int16_t)sum;
        }
        y[b].d = 1.0f / iscale;
    }
}

/* ---- legacy blocks of 32: the weights' integer values, then the common scaling */

static void w_q4_0(const struct block_q4_0 *b, int v[32])
{
    for (int j = 0; j < 16; j++) {
        v[j] = (b->qs[j] & 15) - 8;
        v[j + 16] = (b->qs[j] >> 4) - 8;
    }
}
static void w_q4_1(const struct block_q4_1 *b, int v[32])
{
    for (int j = 0; j < 16; j++) {
        v[j] = b->qs[j] & 15;
        v[j + 16] = b->qs[j] >> 4;
    }
}
static uint32_t qh32(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}
static void w_q5_0(const struct block_q5_0 *b, int v[32])
{
    uint32_t h = qh32(b->qh);
    for (int j = 0; j < 16; j++) {
        v[j] = ((b->qs[j] & 15) | (int)((h >> j) & 1) << 4) - 16;
        v[j + 16] = ((b->qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4) - 16;
    }
}
static void w_q5_1(const struct block_q5_1 *b, int v[32])
{
    uint32_t h = qh32(b->qh);
    for (int j = 0; j < 16; j++) {
        v[j] = (b->qs[j] & 15) | (int)((h >> j) & 1) << 4;
        v[j + 16] = (b->qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
    }
}
static void w_q8_0(const struct block_q8_0 *b, int v[32])
{
    for (int j = 0; j < 32; j++)
        v[j] = b->qs[j];
}
static void w_iq4_nl(const struct block_iq4_nl *b, int v[32])
{
    for (int j = 0; j < 16; j++) {
        v[j] = rt_kvalues_iq4nl[b->qs[j] & 15];
        v[j + 16] = rt_kvalues_iq4nl[b->qs[j] >> 4];
    }
}

static int isum32(const int v[32], const int8_t *q)
{
    int s = 0;
    for (int j = 0; j < 32; j++)
        s += v[j] * q[j];
    return s;
}

/* legacy with Q8_0 activations: no min term */
#define LEGACY0(name, BT, WF)                                                              \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const struct BT *wb = w;                                                                \
    for (int t = 0; t < nt; t++) {                                                          \
        const struct block_q8_0 *ab =                                                       \
            (const struct block_q8_0 *)((const uint8_t *)a + (size_t)t * a_stride);         \
        float acc[8] = { 0 };                                                               \
        int v[32];                                                                          \
        for (int64_t b = 0; b < n / 32; b++) {                                              \
            WF(&wb[b], v);                                                                  \
            acc[b & 7] = fmaf(rt_h2f(wb[b].d) * rt_h2f(ab[b].d), (float)isum32(v, ab[b].qs),\
                              acc[b & 7]);                                                  \
        }                                                                                   \
        out[(size_t)t * o_stride] = red8(acc);                                              \
    }                                                                                       \
}

/* legacy with Q8_1 activations: + m * s */
#define LEGACY1(name, BT, WF)                                                              \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const struct BT *wb = w;                                                                \
    for (int t = 0; t < nt; t++) {                                                          \
        const struct block_q8_1 *ab =                                                       \
            (const struct block_q8_1 *)((const uint8_t *)a + (size_t)t * a_stride);         \
        float acc[8] = { 0 };                                                               \
        int v[32];                                                                          \
        for (int64_t b = 0; b < n / 32; b++) {                                              \
            WF(&wb[b], v);                                                                  \
            acc[b & 7] = fmaf(rt_h2f(wb[b].d) * rt_h2f(ab[b].d), (float)isum32(v, ab[b].qs),\
                              acc[b & 7]);                                                  \
            acc[b & 7] = fmaf(rt_h2f(wb[b].m), rt_h2f(ab[b].s), acc[b & 7]);                \
        }                                                                                   \
        out[(size_t)t * o_stride] = red8(acc);                                              \
    }                                                                                       \
}

LEGACY0(dot_q4_0_ref, block_q4_0, w_q4_0)
LEGACY0(dot_q5_0_ref, block_q5_0, w_q5_0)
LEGACY0(dot_q8_0_ref, block_q8_0, w_q8_0)
LEGACY0(dot_iq4_nl_ref, block_iq4_nl, w_iq4_nl)
LEGACY1(dot_q4_1_ref, block_q4_1, w_q4_1)
LEGACY1(dot_q5_1_ref, block_q5_1, w_q5_1)

/* ---- super-blocks of 256 with Q8_K activations.  Each sb_* gives the exact integer
 * sums of one super-block; the float part is common (see the file comment). */

void rt_scale_min_k4(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* the rt_pack_*_x8 functions' row r of a group of nr rows: rows past nr repeat the last */
static const uint8_t *pack_row(const void *w, size_t w_stride, int r, int nr)
{
    return (const uint8_t *)w + (size_t)(r < nr ? r : nr - 1) * w_stride;
}

/* kern.h's struct rt_q4k_x8: rows [0, nr) of w (nr <= 8; the rest repeat row nr - 1),
 * n / 256 super-blocks into dst */
void rt_pack_q4k_x8(int64_t n, const void *w, size_t w_stride, int nr, void *dst)
{
    struct rt_q4k_x8 *o = dst;

    for (int64_t b = 0; b < n / 256; b++, o++)
        for (int r = 0; r < 8; r++) {
            const struct block_q4_K *s = (const struct block_q4_K *)pack_row(w, w_stride, r, nr) + b;
            o->d[r] = s->d;
            o->dmin[r] = s->dmin;
            for (int j = 0; j < 8; j++) {
                int sc, m;
                rt_scale_min_k4(j, s->scales, &sc, &m);
                o->sc[j][r] = (uint8_t)sc;
                o->m[j / 2][r][j % 2] = (uint8_t)m;
            }
            for (int c = 0; c < 4; c++)
                for (int k = 0; k < 8; k++)
                    memcpy(&o->qs[c][k][4 * r], s->qs + 32 * c + 4 * k, 4);
        }
}

/* kern.h's struct rt_q8_0_x8, as rt_pack_q4k_x8 */
void rt_pack_q8_0_x8(int64_t n, const void *w, size_t w_stride, int nr, void *dst)
{
    struct rt_q8_0_x8 *o = dst;

    for (int64_t b = 0; b < n / 32; b++, o++)
        for (int r = 0; r < 8; r++) {
            const struct block_q8_0 *s = (const struct block_q8_0 *)pack_row(w, w_stride, r, nr) + b;
            o->d[r] = s->d;
            for (int k = 0; k < 8; k++)
                memcpy(&o->qs[k][4 * r], s->qs + 4 * k, 4);
        }
}

/* kern.h's struct rt_q6k_x8, as rt_pack_q4k_x8 */
void rt_pack_q6k_x8(int64_t n, const void *w, size_t w_stride, int nr, void *dst)
{
    struct rt_q6k_x8 *o = dst;

    for (int64_t b = 0; b < n / 256; b++, o++)
        for (int r = 0; r < 8; r++) {
            const struct block_q6_K *s = (const struct block_q6_K *)pack_row(w, w_stride, r, nr) + b;
            uint8_t u[256];
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++) {
                    const uint8_t *ql = s->ql + 64 * h, *qh = s->qh + 32 * h;
                    u[128 * h + l] = (uint8_t)((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4);
                    u[128 * h + l + 32] = (uint8_t)((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4);
                    u[128 * h + l + 64] = (uint8_t)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
                    u[128 * h + l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
                }
            o->d[r] = s->d;
            for (int j = 0; j < 16; j++) {
                o->sc[j / 2][(r / 4) * 8 + (j % 2) * 4 + r % 4] = s->scales[j];
                for (int e = 0; e < 4; e++) {
                    const uint8_t *v = u + 16 * j + e;
                    o->q[j][0][4 * r + e] = (uint8_t)(v[0] | (v[8] & 3) << 6);
                    o->q[j][1][4 * r + e] = (uint8_t)(v[4] | ((v[8] >> 2) & 3) << 6);
                    o->q[j][2][4 * r + e] = (uint8_t)(v[12] | ((v[8] >> 4) & 3) << 6);
                }
            }
        }
}

static void sb_q4_k(const struct block_q4_K *w, const struct block_q8_K *a, int *isum, int *imin)
{
    int s = 0, mn = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m, d = 0;
        rt_scale_min_k4(j, w->scales, &sc, &m);
        for (int l = 0; l < 32; l++) {
            uint8_t q = w->qs[32 * (j / 2) + l];
            d += ((j & 1) ? q >> 4 : q & 15) * a->qs[32 * j + l];
        }
        s += sc * d;
        mn += m * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    }
    *isum = s;
    *imin = mn;
}

static void sb_q5_k(const struct block_q5_K *w, const struct block_q8_K *a, int *isum, int *imin)
{
    int s = 0, mn = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m, d = 0;
        rt_scale_min_k4(j, w->scales, &sc, &m);
        for (int l = 0; l < 32; l++) {
            uint8_t q = w->qs[32 * (j / 2) + l];
            int v = ((j & 1) ? q >> 4 : q & 15) | ((w->qh[l] >> j) & 1) << 4;
            d += v * a->qs[32 * j + l];
        }
        s += sc * d;
        mn += m * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    }
    *isum = s;
    *imin = mn;
}

static void sb_q6_k(const struct block_q6_K *w, const struct block_q8_K *a, int *isum)
{
    int s = 0;
    for (int h = 0; h < 2; h++) {               /* halves of 128 */
        const uint8_t *ql = w->ql + 64 * h, *qh = w->qh + 32 * h;
        const int8_t *q8 = a->qs + 128 * h;
        int d[8] = { 0 };                       /* sub-blocks of 16 of this half */
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
            int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
            int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            d[is + 0] += q1 * q8[l];
            d[is + 2] += q2 * q8[l + 32];
            d[is + 4] += q3 * q8[l + 64];
            d[is + 6] += q4 * q8[l + 96];
        }
        for (int i = 0; i < 8; i++)
            s += w->scales[8 * h + i] * d[i];
    }
    *isum = s;
}

static void sb_q2_k(const struct block_q2_K *w, const struct block_q8_K *a, int *isum, int *imin)
{
    int s = 0, mn = 0;
    for (int i = 0; i < 16; i++) {              /* sub-block i = elements 16i..16i+15 */
        int h = i / 8, j = (i % 8) / 2, part = i % 2, d = 0;
        const uint8_t *q = w->qs + 32 * h + 16 * part;
        for (int l = 0; l < 16; l++)
            d += ((q[l] >> (2 * j)) & 3) * a->qs[16 * i + l];
        s += (w->scales[i] & 15) * d;
        mn += (w->scales[i] >> 4) * a->bsums[i];
    }
    *isum = s;
    *imin = mn;
}

static void q3_k_scales(const uint8_t in[12], int sc[16])
{
    uint32_t aux[4], tmp;
    memcpy(aux, in, 12);
    tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & 0x0f0f0f0fu) | (((tmp >> 4) & 0x03030303u) << 4);
    aux[3] = ((aux[1] >> 4) & 0x0f0f0f0fu) | (((tmp >> 6) & 0x03030303u) << 4);
    aux[0] = (aux[0] & 0x0f0f0f0fu) | (((tmp >> 0) & 0x03030303u) << 4);
    aux[1] = (aux[1] & 0x0f0f0f0fu) | (((tmp >> 2) & 0x03030303u) << 4);
    for (int i = 0; i < 16; i++)
        sc[i] = (int)((aux[i / 4] >> (8 * (i % 4))) & 0xFF) - 32;
}

static void sb_q3_k(const struct block_q3_K *w, const struct block_q8_K *a, int *isum)
{
    int sc[16], s = 0;
    q3_k_scales(w->scales, sc);
    for (int i = 0; i < 16; i++) {
        int h = i / 8, j = (i % 8) / 2, part = i % 2, d = 0;
        const uint8_t *q = w->qs + 32 * h + 16 * part;
        const uint8_t *hm = w->hmask + 16 * part;
        int bit = 4 * h + j;
        for (int l = 0; l < 16; l++) {
            int v = ((q[l] >> (2 * j)) & 3) - (((hm[l] >> bit) & 1) ? 0 : 4);
            d += v * a->qs[16 * i + l];
        }
        s += sc[i] * d;
    }
    *isum = s;
}

static void sb_iq4_xs(const struct block_iq4_xs *w, const struct block_q8_K *a, int *isum)
{
    int s = 0;
    for (int ib = 0; ib < 8; ib++) {
        int ls = ((w->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) |
                 (((w->scales_h >> (2 * ib)) & 3) << 4);
        int d = 0;
        for (int j = 0; j < 16; j++) {
            d += rt_kvalues_iq4nl[w->qs[16 * ib + j] & 15] * a->qs[32 * ib + j];
            d += rt_kvalues_iq4nl[w->qs[16 * ib + j] >> 4] * a->qs[32 * ib + j + 16];
        }
        s += (ls - 32) * d;
    }
    *isum = s;
}

#define KQ_MIN(name, BT, SB)                                                               \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const struct BT *wb = w;                                                                \
    for (int t = 0; t < nt; t++) {                                                          \
        const struct block_q8_K *ab =                                                       \
            (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride);         \
        float acc = 0;                                                                      \
        for (int64_t b = 0; b < n / 256; b++) {                                             \
            int is, im;                                                                     \
            SB(&wb[b], &ab[b], &is, &im);                                                   \
            acc = fmaf(rt_h2f(wb[b].d) * ab[b].d, (float)is, acc);                          \
            acc = fmaf(-(rt_h2f(wb[b].dmin) * ab[b].d), (float)im, acc);                    \
        }                                                                                   \
        out[(size_t)t * o_stride] = acc;                                                    \
    }                                                                                       \
}

#define KQ(name, BT, SB)                                                                   \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const struct BT *wb = w;                                                                \
    for (int t = 0; t < nt; t++) {                                                          \
        const struct block_q8_K *ab =                                                       \
            (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride);         \
        float acc = 0;                                                                      \
        for (int64_t b = 0; b < n / 256; b++) {                                             \
            int is;                                                                         \
            SB(&wb[b], &ab[b], &is);                                                        \
            acc = fmaf(rt_h2f(wb[b].d) * ab[b].d, (float)is, acc);                          \
        }                                                                                   \
        out[(size_t)t * o_stride] = acc;                                                    \
    }                                                                                       \
}

KQ_MIN(dot_q2_k_ref, block_q2_K, sb_q2_k)
KQ_MIN(dot_q4_k_ref, block_q4_K, sb_q4_k)
KQ_MIN(dot_q5_k_ref, block_q5_K, sb_q5_k)
KQ(dot_q3_k_ref, block_q3_K, sb_q3_k)
KQ(dot_q6_k_ref, block_q6_K, sb_q6_k)
KQ(dot_iq4_xs_ref, block_iq4_xs, sb_iq4_xs)

const int8_t rt_kvalues_iq4nl[16] = { -127, -104, -83, -65, -49, -35, -22, -10,
                                      1, 13, 25, 38, 53, 69, 89, 113 };

void rt_kern_ref_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    memset(tab, 0, sizeof(struct rt_kern) * RT_NKERN);
    memset(q, 0, sizeof(rt_quant_fn) * RT_ACT_COUNT);
#define K(dt, ac, fn) tab[dt] = (struct rt_kern){ .dtype = dt, .act = ac, .dot = fn, .isa = RT_ISA_SCALAR, .gemm_act = ac }
    K(DT_F32, RT_ACT_F32, dot_f32_ref);
    K(DT_F16, RT_ACT_F32, dot_f16_ref);
    K(DT_BF16, RT_ACT_F32, dot_bf16_ref);
    K(DT_Q4_0, RT_ACT_Q8_0, dot_q4_0_ref);
    K(DT_Q5_0, RT_ACT_Q8_0, dot_q5_0_ref);
    K(DT_Q8_0, RT_ACT_Q8_0, dot_q8_0_ref);
    K(DT_IQ4_NL, RT_ACT_Q8_0, dot_iq4_nl_ref);
    K(DT_Q4_1, RT_ACT_Q8_1, dot_q4_1_ref);
    K(DT_Q5_1, RT_ACT_Q8_1, dot_q5_1_ref);
    K(DT_Q2_K, RT_ACT_Q8_K, dot_q2_k_ref);
    K(DT_Q3_K, RT_ACT_Q8_K, dot_q3_k_ref);
    K(DT_Q4_K, RT_ACT_Q8_K, dot_q4_k_ref);
    K(DT_Q5_K, RT_ACT_Q8_K, dot_q5_k_ref);
    K(DT_Q6_K, RT_ACT_Q8_K, dot_q6_k_ref);
    K(DT_IQ4_XS, RT_ACT_Q8_K, dot_iq4_xs_ref);
    q[RT_ACT_Q8_0] = quant_q8_0_ref;
    q[RT_ACT_Q8_1] = quant_q8_1_ref;
    q[RT_ACT_Q8_K] = quant_q8_k_ref;
    q[RT_ACT_Q8_0S] = quant_q8_0s_ref;
    q[RT_ACT_Q8_0P] = quant_q8_0p_ref;
#undef K
}
