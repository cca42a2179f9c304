/*
 * dqc_blocks.cuh - device decoders of every ggml block, eight elements at a time.
 *
 * Shared by the dequant kernels (dequant/cuda/dqc.cu) and the runtime's matrix-vector
 * and row-gather kernels (runtime/cuda/).  Each decoder is the CPU scalar twin
 * (dequant/dq_ref.c) written for one group of 8 consecutive outputs of a block:
 *
 *     dqc_deq8<T>(blk, g, v)   v[0..7] = elements [8g, 8g+8) of the block at blk
 *
 * Blocks are read through the packed structs of dequant/blocks.h, never through bare
 * offsets.  The formulas and their evaluation order are those of dq_ref.c (and of
 * reference/gguf-quant.md 3.3-3.6), so the outputs are the same bits: every product
 * d * scale * quant is exact in f32 (3.7), the one rounding being the final "+ m" /
 * "- m", whatever FMA contraction the compiler chooses.  The only difference is NaN
 * payloads: GPU arithmetic returns the canonical NaN where x86 propagates a payload,
 * so a block whose scale field is NaN gives NaN on both sides, not the same NaN bits.
 *
 * Plain types (F32, F16, BF16, F64, I8..I64) have no blocks: DQC_TRAITS gives them a
 * pseudo-block of 8 elements so the same group loop covers them.
 *
 * The i-quant grids are device copies of dequant/dq_grids.h (filled at first use), defined only where
 * DQC_WITH_GRIDS is set (dqc.cu) because device tables need one home; other users
 * instantiate only grid-free types.
 */
#ifndef DQC_BLOCKS_CUH
#define DQC_BLOCKS_CUH

#include <stdint.h>

#include "../blocks.h"
extern "C" {
#include "../../formats/dtype.h"
}

/* elements per (pseudo-)block and bytes per (pseudo-)block of type T */
template <int T> struct dqc_traits;
#define DQC_TRAITS(T, B, S) \
    template <> struct dqc_traits<T> { static constexpr int blck = (B); static constexpr int size = (S); };
DQC_TRAITS(DT_F32, 8, 32)      DQC_TRAITS(DT_F16, 8, 16)      DQC_TRAITS(DT_BF16, 8, 16)
DQC_TRAITS(DT_F64, 8, 64)      DQC_TRAITS(DT_I8, 8, 8)        DQC_TRAITS(DT_I16, 8, 16)
DQC_TRAITS(DT_I32, 8, 32)      DQC_TRAITS(DT_I64, 8, 64)
DQC_TRAITS(DT_Q4_0, 32, 18)    DQC_TRAITS(DT_Q4_1, 32, 20)    DQC_TRAITS(DT_Q5_0, 32, 22)
DQC_TRAITS(DT_Q5_1, 32, 24)    DQC_TRAITS(DT_Q8_0, 32, 34)    DQC_TRAITS(DT_Q8_1, 32, 36)
DQC_TRAITS(DT_Q2_K, 256, 84)   DQC_TRAITS(DT_Q3_K, 256, 110)  DQC_TRAITS(DT_Q4_K, 256, 144)
DQC_TRAITS(DT_Q5_K, 256, 176)  DQC_TRAITS(DT_Q6_K, 256, 210)  DQC_TRAITS(DT_Q8_K, 256, 292)
DQC_TRAITS(DT_IQ2_XXS, 256, 66) DQC_TRAITS(DT_IQ2_XS, 256, 74) DQC_TRAITS(DT_IQ3_XXS, 256, 98)
DQC_TRAITS(DT_IQ1_S, 256, 50)  DQC_TRAITS(DT_IQ4_NL, 32, 18)  DQC_TRAITS(DT_IQ3_S, 256, 110)
DQC_TRAITS(DT_IQ2_S, 256, 82)  DQC_TRAITS(DT_IQ4_XS, 256, 136) DQC_TRAITS(DT_IQ1_M, 256, 56)
DQC_TRAITS(DT_TQ1_0, 256, 54)  DQC_TRAITS(DT_TQ2_0, 256, 66)  DQC_TRAITS(DT_MXFP4, 32, 17)
DQC_TRAITS(DT_NVFP4, 64, 36)   DQC_TRAITS(DT_Q1_0, 128, 18)   DQC_TRAITS(DT_Q2_0, 64, 18)
#undef DQC_TRAITS

/* f16 bits -> f32, exact, NaN payload kept and quieted: dq__h2f of dq_impl.h */
__device__ __forceinline__ float dqc_h2f(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 0x3FF;
    if (e == 0) {
        float v = (float)m * 0x1p-24f;
        return s ? -v : v;
    }
    if (e == 31)
        return __uint_as_float(s | 0x7F800000u | m << 13 | (m ? 0x00400000u : 0));
    return __uint_as_float(s | (e + 112) << 23 | m << 13);
}

/*
 * kvalues_iq4nl and kvalues_fp4 (reference/gguf-quant.md 3.3) as 16 bytes in four
 * words, looked up by PRMT: a table in constant memory serializes a warp whose lanes
 * read different entries, which made the IQ4 kernels several times slower.
 *   iq4nl: -127 -104 -83 -65 | -49 -35 -22 -10 | 1 13 25 38 | 53 69 89 113
 *   fp4:      0    1   2   3 |   4   6   8  12 | 0 -1 -2 -3 | -4 -6 -8 -12
 */
__device__ __forceinline__ int dqc_tab16(uint32_t q, uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3)
{
    return (int)(int8_t)(__byte_perm(q < 8 ? w0 : w2, q < 8 ? w1 : w3, q & 7) & 255);
}
__device__ __forceinline__ int dqc_kv_iq4nl(uint32_t q)
{
    return dqc_tab16(q, 0xBFAD9881u, 0xF6EADDCFu, 0x26190D01u, 0x71594535u);
}
__device__ __forceinline__ int dqc_kv_fp4(uint32_t q)
{
    return dqc_tab16(q, 0x03020100u, 0x0C080604u, 0xFDFEFF00u, 0xF4F8FAFCu);
}

__device__ __forceinline__ uint32_t dqc_ks(uint32_t i) { return i | (uint32_t)(__popc(i) & 1) << 7; }

__device__ __forceinline__ void dqc_scale_min_k4(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m  = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m  = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

__device__ __forceinline__ float dqc_e8m0_half(uint32_t e)
{
    if (e == 0)
        return __uint_as_float(0x00200000u);
    if (e == 1)
        return __uint_as_float(0x00400000u);
    return __uint_as_float((e - 1) << 23);
}

__device__ __forceinline__ float dqc_ue4m3_half(uint32_t x)
{
    uint32_t e = (x >> 3) & 15, m = x & 7;
    if (x == 0 || x == 0x7F)
        return 0.0f;
    float v = e == 0 ? ldexpf((float)m, -9) : ldexpf(1.0f + (float)m / 8.0f, (int)e - 7);
    return v * 0.5f;
}

__device__ __forceinline__ int dqc_trit(uint32_t q, int nth)
{
    const uint32_t pow3[5] = { 1, 3, 9, 27, 81 };
    uint32_t x = (q * pow3[nth]) & 255;
    return (int)((x * 3) >> 8);
}

#ifdef DQC_WITH_GRIDS
static __device__ uint64_t dqc_iq2xxs_grid[256];
static __device__ uint64_t dqc_iq2xs_grid[512];
static __device__ uint64_t dqc_iq2s_grid[1024];
static __device__ uint32_t dqc_iq3xxs_grid[256];
static __device__ uint32_t dqc_iq3s_grid[512];
static __device__ uint64_t dqc_iq1s_grid[2048];

__device__ __forceinline__ void dqc_grid8(float *v, uint64_t g, float db, uint32_t s)
{
#pragma unroll
    for (int j = 0; j < 8; j++) {
        float x = db * (float)((g >> (8 * j)) & 255);
        v[j] = (s >> j) & 1 ? -x : x;
    }
}

__device__ __forceinline__ void dqc_grid4(float *v, uint32_t g, float db, uint32_t s)
{
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float x = db * (float)((g >> (8 * j)) & 255);
        v[j] = (s >> j) & 1 ? -x : x;
    }
}

__device__ __forceinline__ void dqc_grid1(float *v, uint64_t g, float dl, float delta)
{
#pragma unroll
    for (int j = 0; j < 8; j++)
        v[j] = dl * ((float)(int8_t)((g >> (8 * j)) & 255) + delta);
}
#endif

/* v[0..7] = elements [8g, 8g+8) of the (pseudo-)block at p. */
template <int T>
__device__ __forceinline__ void dqc_deq8(const uint8_t *p, int g, float *v)
{
    if constexpr (T == DT_F32) {
        const float4 *q = (const float4 *)p;     /* callers keep rows 16-byte aligned */
        float4 a = q[0], b = q[1];
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
        v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else if constexpr (T == DT_F16 || T == DT_BF16) {
        uint4 w = *(const uint4 *)p;
        uint32_t u[4] = { w.x, w.y, w.z, w.w };
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if constexpr (T == DT_F16) {
                v[2 * i]     = dqc_h2f((uint16_t)(u[i] & 0xFFFF));
                v[2 * i + 1] = dqc_h2f((uint16_t)(u[i] >> 16));
            } else {
                v[2 * i]     = __uint_as_float(u[i] << 16);
                v[2 * i + 1] = __uint_as_float(u[i] & 0xFFFF0000u);
            }
        }
    } else if constexpr (T == DT_F64) {
        const double *q = (const double *)p;
        for (int i = 0; i < 8; i++) v[i] = (float)q[i];
    } else if constexpr (T == DT_I8) {
        for (int i = 0; i < 8; i++) v[i] = (float)(int8_t)p[i];
    } else if constexpr (T == DT_I16) {
        const int16_t *q = (const int16_t *)p;
        for (int i = 0; i < 8; i++) v[i] = (float)q[i];
    } else if constexpr (T == DT_I32) {
        const int32_t *q = (const int32_t *)p;
        for (int i = 0; i < 8; i++) v[i] = (float)q[i];
    } else if constexpr (T == DT_I64) {
        const int64_t *q = (const int64_t *)p;
        for (int i = 0; i < 8; i++) v[i] = (float)q[i];
    } else if constexpr (T == DT_Q4_0 || T == DT_IQ4_NL) {
        const block_q4_0 *x = (const block_q4_0 *)p;     /* IQ4_NL has the same layout */
        float d = dqc_h2f(x->d);
        int j0 = 8 * (g & 1), sh = g >= 2 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int q = (x->qs[j0 + i] >> sh) & 15;
            if constexpr (T == DT_Q4_0)
                v[i] = (float)(q - 8) * d;
            else
                v[i] = d * (float)dqc_kv_iq4nl(q);
        }
    } else if constexpr (T == DT_Q4_1) {
        const block_q4_1 *x = (const block_q4_1 *)p;
        float d = dqc_h2f(x->d), m = dqc_h2f(x->m);
        int j0 = 8 * (g & 1), sh = g >= 2 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; i++)
            v[i] = (float)((x->qs[j0 + i] >> sh) & 15) * d + m;
    } else if constexpr (T == DT_Q5_0 || T == DT_Q5_1) {
        const uint8_t *qs, *qhb;
        float d, m = 0.0f;
        if constexpr (T == DT_Q5_0) {
            const block_q5_0 *x = (const block_q5_0 *)p;
            d = dqc_h2f(x->d); qs = x->qs; qhb = x->qh;
        } else {
            const block_q5_1 *x = (const block_q5_1 *)p;
            d = dqc_h2f(x->d); m = dqc_h2f(x->m); qs = x->qs; qhb = x->qh;
        }
        uint32_t qh = qhb[0] | (uint32_t)qhb[1] << 8 | (uint32_t)qhb[2] << 16 | (uint32_t)qhb[3] << 24;
        int j0 = 8 * (g & 1), sh = g >= 2 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int e = 8 * g + i;
            int q = ((qs[j0 + i] >> sh) & 15) | (int)((qh >> e) & 1) << 4;
            if constexpr (T == DT_Q5_0)
                v[i] = (float)(q - 16) * d;
            else
                v[i] = (float)q * d + m;
        }
    } else if constexpr (T == DT_Q8_0) {
        const block_q8_0 *x = (const block_q8_0 *)p;
        float d = dqc_h2f(x->d);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = (float)x->qs[8 * g + i] * d;
    } else if constexpr (T == DT_Q8_1) {
        const block_q8_1 *x = (const block_q8_1 *)p;
        float d = dqc_h2f(x->d);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = (float)x->qs[8 * g + i] * d;
    } else if constexpr (T == DT_MXFP4) {
        const block_mxfp4 *x = (const block_mxfp4 *)p;
        float d = dqc_e8m0_half(x->e);
        int j0 = 8 * (g & 1), sh = g >= 2 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = (float)dqc_kv_fp4((x->qs[j0 + i] >> sh) & 15) * d;
    } else if constexpr (T == DT_NVFP4) {
        const block_nvfp4 *x = (const block_nvfp4 *)p;
        int s = g >> 1, sh = 4 * (g & 1);
        float ds = dqc_ue4m3_half(x->d[s]);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = (float)dqc_kv_fp4((x->qs[8 * s + i] >> sh) & 15) * ds;
    } else if constexpr (T == DT_Q1_0) {
        const block_q1_0 *x = (const block_q1_0 *)p;
        float d = dqc_h2f(x->d);
        uint32_t b = x->qs[g];
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = (b >> i) & 1 ? d : -d;
    } else if constexpr (T == DT_Q2_0) {
        const block_q2_0 *x = (const block_q2_0 *)p;
        float d = dqc_h2f(x->d);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int e = 8 * g + i;
            v[i] = (float)(((x->qs[e / 4] >> (2 * (e % 4))) & 3) - 1) * d;
        }
    } else if constexpr (T == DT_Q2_K) {
        const block_q2_K *x = (const block_q2_K *)p;
        float d = dqc_h2f(x->d), dmin = dqc_h2f(x->dmin);
        int e0 = 8 * g, h = e0 >> 7, gg = (e0 >> 5) & 3, sb = (e0 >> 4) & 1, l0 = e0 & 15;
        uint8_t sc = x->scales[8 * h + 2 * gg + sb];
        float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
        const uint8_t *q = x->qs + 32 * h + 16 * sb + l0;
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = dl * (float)((q[i] >> (2 * gg)) & 3) - ml;
    } else if constexpr (T == DT_Q3_K) {
        const block_q3_K *x = (const block_q3_K *)p;
        float d = dqc_h2f(x->d);
        int e0 = 8 * g, h = e0 >> 7, gg = (e0 >> 5) & 3, sb = (e0 >> 4) & 1, l0 = e0 & 15;
        int j = 8 * h + 2 * gg + sb;
        int low4 = j < 8 ? x->scales[j] & 15 : x->scales[j - 8] >> 4;
        int hi2 = (x->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
        float dl = d * (float)((low4 | hi2 << 4) - 32);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int ii = 16 * sb + l0 + i;
            int q = (x->qs[32 * h + ii] >> (2 * gg)) & 3;
            int hb = (x->hmask[ii] >> (4 * h + gg)) & 1;
            v[i] = dl * (float)(q - (hb ? 0 : 4));
        }
    } else if constexpr (T == DT_Q4_K || T == DT_Q5_K) {
        const uint8_t *scales, *qs, *qh = nullptr;
        float d, dmin;
        if constexpr (T == DT_Q4_K) {
            const block_q4_K *x = (const block_q4_K *)p;
            d = dqc_h2f(x->d); dmin = dqc_h2f(x->dmin); scales = x->scales; qs = x->qs;
        } else {
            const block_q5_K *x = (const block_q5_K *)p;
            d = dqc_h2f(x->d); dmin = dqc_h2f(x->dmin); scales = x->scales; qs = x->qs; qh = x->qh;
        }
        int e0 = 8 * g, c = e0 >> 6, hi = (e0 >> 5) & 1, l0 = e0 & 31;
        int sc, mn;
        dqc_scale_min_k4(2 * c + hi, scales, &sc, &mn);
        float d1 = d * (float)sc, mf = dmin * (float)mn;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int q = (qs[32 * c + l0 + i] >> (4 * hi)) & 15;
            if constexpr (T == DT_Q5_K)
                q += 16 * ((qh[l0 + i] >> (2 * c + hi)) & 1);
            v[i] = d1 * (float)q - mf;
        }
    } else if constexpr (T == DT_Q6_K) {
        const block_q6_K *x = (const block_q6_K *)p;
        float d = dqc_h2f(x->d);
        int e0 = 8 * g, h = e0 >> 7, qtr = (e0 >> 5) & 3, l0 = e0 & 31;
        float ds = d * (float)x->scales[8 * h + l0 / 16 + 2 * qtr];
        const uint8_t *ql = x->ql + 64 * h + 32 * (qtr & 1) + l0, *qh = x->qh + 32 * h + l0;
        int shl = 4 * (qtr >> 1), shh = 2 * qtr;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int q = (((ql[i] >> shl) & 15) | ((qh[i] >> shh) & 3) << 4) - 32;
            v[i] = ds * (float)q;
        }
    } else if constexpr (T == DT_Q8_K) {
        const block_q8_K *x = (const block_q8_K *)p;
        float d = x->d;
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = d * (float)x->qs[8 * g + i];
    } else if constexpr (T == DT_TQ2_0) {
        const block_tq2_0 *x = (const block_tq2_0 *)p;
        float d = dqc_h2f(x->d);
        int e0 = 8 * g, h = e0 >> 7, l = (e0 >> 5) & 3, m0 = e0 & 31;
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = (float)(((x->qs[32 * h + m0 + i] >> (2 * l)) & 3) - 1) * d;
    } else if constexpr (T == DT_TQ1_0) {
        const block_tq1_0 *x = (const block_tq1_0 *)p;
        float d = dqc_h2f(x->d);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int e = 8 * g + i, t;
            if (e < 160)
                t = dqc_trit(x->qs[e & 31], e >> 5);
            else if (e < 240)
                t = dqc_trit(x->qs[32 + ((e - 160) & 15)], (e - 160) >> 4);
            else
                t = dqc_trit(x->qh[(e - 240) & 3], (e - 240) >> 2);
            v[i] = (float)(t - 1) * d;
        }
    } else if constexpr (T == DT_IQ4_XS) {
        const block_iq4_xs *x = (const block_iq4_xs *)p;
        float d = dqc_h2f(x->d);
        int e0 = 8 * g, ib = e0 >> 5, j0 = e0 & 31;
        int ls = ((x->scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (int)((x->scales_h >> (2 * ib)) & 3) << 4;
        float dl = d * (float)(ls - 32);
        const uint8_t *q = x->qs + 16 * ib + (j0 & 15);
        int sh = 4 * (j0 >> 4);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = dl * (float)dqc_kv_iq4nl((q[i] >> sh) & 15);
    }
#ifdef DQC_WITH_GRIDS
    else if constexpr (T == DT_IQ2_XXS) {
        const block_iq2_xxs *x = (const block_iq2_xxs *)p;
        float d = dqc_h2f(x->d);
        int ib = g >> 2, l = g & 3;
        uint32_t a0 = x->qs[4 * ib] | (uint32_t)x->qs[4 * ib + 1] << 16;
        uint32_t a1 = x->qs[4 * ib + 2] | (uint32_t)x->qs[4 * ib + 3] << 16;
        float db = d * (0.5f + (float)(a1 >> 28)) * 0.25f;
        dqc_grid8(v, dqc_iq2xxs_grid[(a0 >> (8 * l)) & 255], db, dqc_ks((a1 >> (7 * l)) & 127));
    } else if constexpr (T == DT_IQ2_XS) {
        const block_iq2_xs *x = (const block_iq2_xs *)p;
        float d = dqc_h2f(x->d);
        int ib = g >> 2, l = g & 3;
        uint32_t s = l < 2 ? x->scales[ib] & 15 : x->scales[ib] >> 4;
        float db = d * (0.5f + (float)s) * 0.25f;
        uint32_t w = x->qs[4 * ib + l];
        dqc_grid8(v, dqc_iq2xs_grid[w & 511], db, dqc_ks(w >> 9));
    } else if constexpr (T == DT_IQ2_S) {
        const block_iq2_s *x = (const block_iq2_s *)p;
        float d = dqc_h2f(x->d);
        int ib = g >> 2, l = g & 3;
        uint32_t s = l < 2 ? x->scales[ib] & 15 : x->scales[ib] >> 4;
        float db = d * (0.5f + (float)s) * 0.25f;
        uint32_t idx = x->qs[4 * ib + l] | ((x->qh[ib] >> (2 * l)) & 3u) << 8;
        dqc_grid8(v, dqc_iq2s_grid[idx], db, x->signs[4 * ib + l]);
    } else if constexpr (T == DT_IQ3_XXS) {
        const block_iq3_xxs *x = (const block_iq3_xxs *)p;
        float d = dqc_h2f(x->d);
        int ib = g >> 2, l = g & 3;
        const uint8_t *sa = x->qs + 64 + 4 * ib;
        uint32_t a = sa[0] | (uint32_t)sa[1] << 8 | (uint32_t)sa[2] << 16 | (uint32_t)sa[3] << 24;
        float db = d * (0.5f + (float)(a >> 28)) * 0.5f;
        uint32_t s = dqc_ks((a >> (7 * l)) & 127);
        dqc_grid4(v, dqc_iq3xxs_grid[x->qs[8 * ib + 2 * l]], db, s);
        dqc_grid4(v + 4, dqc_iq3xxs_grid[x->qs[8 * ib + 2 * l + 1]], db, s >> 4);
    } else if constexpr (T == DT_IQ3_S) {
        const block_iq3_s *x = (const block_iq3_s *)p;
        float d = dqc_h2f(x->d);
        int ib = g >> 2, l = g & 3;
        int nib = (x->scales[ib / 2] >> (4 * (ib % 2))) & 15;
        float db = d * (float)(1 + 2 * nib);
        uint32_t qh = x->qh[ib];
        uint32_t i1 = x->qs[8 * ib + 2 * l] | ((qh >> (2 * l)) & 1) << 8;
        uint32_t i2 = x->qs[8 * ib + 2 * l + 1] | ((qh >> (2 * l + 1)) & 1) << 8;
        uint32_t s = x->signs[4 * ib + l];
        dqc_grid4(v, dqc_iq3s_grid[i1], db, s);
        dqc_grid4(v + 4, dqc_iq3s_grid[i2], db, s >> 4);
    } else if constexpr (T == DT_IQ1_S) {
        const block_iq1_s *x = (const block_iq1_s *)p;
        float d = dqc_h2f(x->d);
        int ib = g >> 2, l = g & 3;
        uint32_t h = x->qh[ib];
        float dl = d * (float)(2 * ((h >> 12) & 7) + 1);
        float delta = h & 0x8000 ? -0.125f : 0.125f;
        uint32_t idx = x->qs[4 * ib + l] | ((h >> (3 * l)) & 7) << 8;
        dqc_grid1(v, dqc_iq1s_grid[idx], dl, delta);
    } else if constexpr (T == DT_IQ1_M) {
        const block_iq1_m *x = (const block_iq1_m *)p;
        uint32_t sc0 = x->scales[0], sc1 = x->scales[1], sc2 = x->scales[2], sc3 = x->scales[3];
        float d = dqc_h2f((uint16_t)((sc0 >> 12) | ((sc1 >> 8) & 0x00F0) | ((sc2 >> 4) & 0x0F00) |
                                     (sc3 & 0xF000)));
        int ib = g >> 2, l = g & 3, sh = 6 * (ib % 2);
        uint32_t sc = x->scales[ib / 2];
        float dl = l < 2 ? d * (float)(2 * ((sc >> sh) & 7) + 1)
                         : d * (float)(2 * ((sc >> (sh + 3)) & 7) + 1);
        uint32_t qh = x->qh[2 * ib + l / 2];
        uint32_t hn = l % 2 == 0 ? qh & 15 : qh >> 4;
        uint32_t idx = x->qs[4 * ib + l] | (hn & 7) << 8;
        dqc_grid1(v, dqc_iq1s_grid[idx], dl, hn & 8 ? -0.125f : 0.125f);
    }
#endif
    else {
        static_assert(T < 0, "dqc_deq8: type without a device decoder");
    }
}

#endif
