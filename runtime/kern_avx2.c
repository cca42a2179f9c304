/*
 * kern_avx2.c - AVX2 + FMA + F16C dot-product kernels and activation quantizers
 * (compiled with -mavx2 -mfma -mf16c; matmul.c calls them only on such CPUs).
 *
 * Every quantized kernel computes, per block, the same exact integer as its scalar
 * twin in kern_ref.c and then does the same f32 operations in the same order (legacy
 * blocks: eight blocks at a time, one f32 lane per block; super-blocks: the scalar
 * fmaf pair), so the results are bit-identical to kern_ref.c.  The F32/F16/BF16
 * kernels are in kern_fp_avx2.c.
 *
 * Weight tiles: a weight block group is unpacked ONCE and multiplied by every token
 * of the tile (nt <= 8), the matrix-matrix path of prompt processing.
 */
#include "kern.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../formats/dtype.h"
#include "kern_avx2.h"
#include "../common/banned.h"

#define MAXT 8   /* tokens per call (RT_TOK_TILE) */

/* ---------------------------------------------------------------------------------
 * Activation quantizers (same bytes as kern_ref.c: amax, d = amax / 127, id = 1 / d,
 * round half to even)
 */

static inline float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
static inline float hmin_ps(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 floats times id, rounded, packed to 32 int8 in element order */
static inline __m256i q8_pack(const float *x, __m256 id)
{
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    /* packs interleave the 128-bit lanes: restore element order */
    return _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static float amax32(const float *x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24)));
    return hmax_ps(m);
}

static void quant_q8_0_avx2(const float *x, void *dst, int64_t n)
{
    struct block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float d = amax32(x) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = (uint16_t)_cvtss_sh(d, 0);
        _mm256_storeu_si256((__m256i *)y[b].qs, q8_pack(x, _mm256_set1_ps(id)));
    }
}

static void quant_q8_1_avx2(const float *x, void *dst, int64_t n)
{
    struct block_q8_1 *y = dst;
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float d = amax32(x) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256i q = q8_pack(x, _mm256_set1_ps(id));
        y[b].d = (uint16_t)_cvtss_sh(d, 0);
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
        int sum = sum_i8(q);
        y[b].s = (uint16_t)_cvtss_sh(d * (float)sum, 0);
    }
}

static void quant_q8_k_avx2(const float *x, void *dst, int64_t n)
{
    struct block_q8_K *y = dst;
    for (int64_t b = 0; b < n / 256; b++, x += 256) {
        __m256 mx = _mm256_loadu_ps(x), mn = mx;
        for (int j = 8; j < 256; j += 8) {
            __m256 v = _mm256_loadu_ps(x + j);
            mx = _mm256_max_ps(mx, v);
            mn = _mm256_min_ps(mn, v);
        }
        float fmx = hmax_ps(mx), fmn = hmin_ps(mn);
        float max = fmx >= -fmn ? fmx : fmn;
        if (max == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float iscale = -127.0f / max;
        __m256 is = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi8(127);
        int8_t qs[256];
        for (int j = 0; j < 256; j += 32) {
            /* min(127, v): v can only exceed 127 by rounding, and packs saturates at
             * 127 anyway, but keep the scalar twin's clamp explicit */
            __m256i q = _mm256_min_epi8(q8_pack(x + j, is), lim);
            _mm256_storeu_si256((__m256i *)(qs + j), q);
            __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);   /* pairs */
            __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));    /* quads */
            /* sums of 16: lanes 0..3 (low 128) and 4..7 */
            __m128i lo = _mm256_castsi256_si128(s32), hi = _mm256_extracti128_si256(s32, 1);
            lo = _mm_hadd_epi32(lo, hi);          /* [l01, l23, h01, h23] */
            lo = _mm_hadd_epi32(lo, lo);          /* [l, h, l, h] */
            y[b].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(lo);
            y[b].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(lo, 1);
        }
        memcpy(y[b].qs, qs, 256);
        y[b].d = 1.0f / iscale;
    }
}

/* ---------------------------------------------------------------------------------
 * Legacy blocks of 32: unpack eight weight blocks to signed or unsigned bytes, then
 * for each token: eight exact block sums, one f32 lane per block.
 */

/* MUL: mul_sum_i8 for signed weights, mul_sum_u8 for unsigned (Q4_1, Q5_1);
 * AT: the activation block type; MIN: 1 for the + m * s term. */
#define LEGACY_AVX2(name, BT, AT, WF, MUL, MIN)                                           \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const struct BT *wb = w;                                                                \
    int64_t nb = n / 32, b = 0;                                                             \
    __m256 acc[MAXT];                                                                       \
    const struct AT *ab[MAXT];                                                              \
    for (int t = 0; t < nt; t++) {                                                          \
        acc[t] = _mm256_setzero_ps();                                                       \
        ab[t] = (const struct AT *)((const uint8_t *)a + (size_t)t * a_stride);             \
    }                                                                                       \
    for (; b + 8 <= nb; b += 8) {                                                           \
        __m256i wq[8];                                                                      \
        for (int k = 0; k < 8; k++)                                                         \
            wq[k] = WF(&wb[b + k]);                                                         \
        __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(                                         \
            (short)wb[b].d, (short)wb[b + 1].d, (short)wb[b + 2].d, (short)wb[b + 3].d,     \
            (short)wb[b + 4].d, (short)wb[b + 5].d, (short)wb[b + 6].d, (short)wb[b + 7].d));\
        __m256 mw = _mm256_setzero_ps();                                                    \
        if (MIN)                                                                            \
            mw = _mm256_cvtph_ps(_mm_setr_epi16(LEG_M(wb, b)));                             \
        for (int t = 0; t < nt; t++) {                                                      \
            const struct AT *x = ab[t] + b;                                                 \
            __m256i p[8];                                                                   \
            for (int k = 0; k < 8; k++)                                                     \
                p[k] = MUL(wq[k], _mm256_loadu_si256((const __m256i *)x[k].qs));            \
            __m256 da = _mm256_cvtph_ps(_mm_setr_epi16(                                     \
                (short)x[0].d, (short)x[1].d, (short)x[2].d, (short)x[3].d,                 \
                (short)x[4].d, (short)x[5].d, (short)x[6].d, (short)x[7].d));               \
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da),                                 \
                                     _mm256_cvtepi32_ps(hsum8x8(p)), acc[t]);               \
            if (MIN)                                                                        \
                acc[t] = _mm256_fmadd_ps(mw, _mm256_cvtph_ps(_mm_setr_epi16(LEG_S(x))),     \
                                         acc[t]);                                           \
        }                                                                                   \
    }                                                                                       \
    for (int t = 0; t < nt; t++) {                                                          \
        float l[8];                                                                         \
        _mm256_storeu_ps(l, acc[t]);                                                        \
        for (int64_t c = b; c < nb; c++) {                                                  \
            int is = hsum_i32(MUL(WF(&wb[c]), _mm256_loadu_si256((const __m256i *)ab[t][c].qs))); \
            l[c & 7] = fmaf(_cvtsh_ss(wb[c].d) * _cvtsh_ss(ab[t][c].d), (float)is, l[c & 7]); \
            if (MIN)                                                                        \
                l[c & 7] = fmaf(LEG_M1(wb[c]), LEG_S1(ab[t][c]), l[c & 7]);                  \
        }                                                                                   \
        out[(size_t)t * o_stride] = red8(l);                                                \
    }                                                                                       \
}

/* the min/sum fields exist only in Q4_1/Q5_1 and Q8_1: these macros are expanded only
 * there (through MIN_FIELDS) */
#define LEG_M(wb, b) (short)wb[b].m, (short)wb[b + 1].m, (short)wb[b + 2].m, (short)wb[b + 3].m, \
    (short)wb[b + 4].m, (short)wb[b + 5].m, (short)wb[b + 6].m, (short)wb[b + 7].m
#define LEG_S(x) (short)x[0].s, (short)x[1].s, (short)x[2].s, (short)x[3].s, \
    (short)x[4].s, (short)x[5].s, (short)x[6].s, (short)x[7].s
#define LEG_M1(wbc) _cvtsh_ss((wbc).m)
#define LEG_S1(abc) _cvtsh_ss((abc).s)

LEGACY_AVX2(dot_q4_1_avx2, block_q4_1, block_q8_1, w_q4_1, mul_sum_u8, 1)
LEGACY_AVX2(dot_q5_1_avx2, block_q5_1, block_q8_1, w_q5_1, mul_sum_u8, 1)

#undef LEG_M
#undef LEG_S
#undef LEG_M1
#undef LEG_S1
#define LEG_M(wb, b) 0, 0, 0, 0, 0, 0, 0, 0
#define LEG_S(x) 0, 0, 0, 0, 0, 0, 0, 0
#define LEG_M1(wbc) 0.0f
#define LEG_S1(abc) 0.0f

LEGACY_AVX2(dot_q4_0_avx2, block_q4_0, block_q8_0, w_q4_0, mul_sum_i8, 0)
LEGACY_AVX2(dot_q5_0_avx2, block_q5_0, block_q8_0, w_q5_0, mul_sum_i8, 0)
LEGACY_AVX2(dot_q8_0_avx2, block_q8_0, block_q8_0, w_q8_0, mul_sum_i8, 0)
LEGACY_AVX2(dot_iq4_nl_avx2, block_iq4_nl, block_q8_0, w_iq4_nl, mul_sum_i8, 0)

/* ---------------------------------------------------------------------------------
 * Super-blocks of 256 (Q8_K activations).  Per super-block: the weights are unpacked
 * into 8 vectors of 32 bytes (unsigned, offsets folded into the bsums term) and the
 * per-16 or per-32 scales into int16 vectors; per token, exact isum/imin.
 */

/* IQ4_XS: values = kvalues + 128 (unsigned 1..241: too large for maddubs pairs with
 * |a| = 127? 241 * 127 * 2 = 61214 > 32767): so sum signed products instead, through
 * the sign trick per vector, and fold the scale in madd. */
static inline void sb_dot_iq4_xs(const struct block_iq4_xs *b, const __m256i q[8], const int ls[8],
                                 const struct block_q8_K *x, int *isum)
{
    __m256i s = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) {
        __m256i y = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * k));
        __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q[k], q[k]), _mm256_sign_epi8(y, q[k]));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, _mm256_set1_epi16((short)ls[k])));
    }
    (void)b;
    *isum = hsum_i32(s);
}

static void dot_iq4_xs_avx2(int64_t n, const void *w, const void *a, size_t a_stride, int nt,
                            float *out, size_t o_stride)
{
    const struct block_iq4_xs *wb = w;
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rt_kvalues_iq4nl));
    float acc[MAXT] = { 0 };
    for (int64_t b = 0; b < n / 256; b++) {
        __m256i q[8];
        int ls[8];
        for (int k = 0; k < 8; k++) {
            q[k] = _mm256_shuffle_epi8(tab, nibbles(wb[b].qs + 16 * k));
            ls[k] = (((wb[b].scales_l[k / 2] >> (4 * (k % 2))) & 0xF) |
                     (((wb[b].scales_h >> (2 * k)) & 3) << 4)) - 32;
        }
        float d = _cvtsh_ss(wb[b].d);
        for (int t = 0; t < nt; t++) {
            const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride) + b;
            int is;
            sb_dot_iq4_xs(&wb[b], q, ls, x, &is);
            acc[t] = fmaf(d * x->d, (float)is, acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[(size_t)t * o_stride] = acc[t];
}


/* one token, weights straight from memory to registers (decode) */
static void dot_q4_k_1(int64_t n, const struct block_q4_K *wb, const struct block_q8_K *x,
                       float *out)
{
    float acc = 0;
    for (int64_t b = 0; b < n / 256; b++, x++) {
        uint32_t u[4];
        rt_q4k_scales(wb[b].scales, u);
        const uint8_t *sc = (const uint8_t *)u;
        __m256i s = _mm256_setzero_si256();
        for (int p = 0; p < 4; p++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(wb[b].qs + 32 * p));
            __m256i lo = _mm256_and_si256(q, _mm256_set1_epi8(15));
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(15));
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x->qs + 64 * p)));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x->qs + 64 * p + 32)));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * p])));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * p + 1])));
        }
        __m256i bs = bsums16(x);
        __m128i pr = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
        __m128i mn = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sc + 8))), pr);
        __m256i h = _mm256_hadd_epi32(s, _mm256_set_m128i(_mm_setzero_si128(), mn));
        __m128i r = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        r = _mm_hadd_epi32(r, r);
        int is = _mm_cvtsi128_si32(r), im = _mm_extract_epi32(r, 1);
        float d = _cvtsh_ss(wb[b].d) * x->d, dm = _cvtsh_ss(wb[b].dmin) * x->d;
        acc = fmaf(d, (float)is, acc);
        acc = fmaf(-dm, (float)im, acc);
    }
    *out = acc;
}

static void dot_q6_k_1(int64_t n, const struct block_q6_K *wb, const struct block_q8_K *x,
                       float *out)
{
    const __m128i base = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    float acc = 0;
    for (int64_t b = 0; b < n / 256; b++, x++) {
        __m128i sc8 = _mm_loadu_si128((const __m128i *)wb[b].scales);
        __m256i s = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = wb[b].ql + 64 * h;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(wb[b].qh + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
            for (int k = 0; k < 4; k++) {
                __m128i idx = _mm_add_epi8(base, _mm_set1_epi8((char)(8 * h + 2 * k)));
                __m256i scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, idx));
                __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(x->qs + 128 * h + 32 * k)));
                s = _mm256_add_epi32(s, _mm256_madd_epi16(p, scv));
            }
        }
        __m256i off = _mm256_madd_epi16(bsums16(x), _mm256_slli_epi16(_mm256_cvtepi8_epi16(sc8), 5));
        int is = hsum_i32(_mm256_sub_epi32(s, off));
        acc = fmaf(_cvtsh_ss(wb[b].d) * x->d, (float)is, acc);
    }
    *out = acc;
}

/* MIN: 1 when the s16 term is a min (acc gets the second fmaf with -(dmin * da));
 * 0 when it is an offset folded into isum (isum - imin) */
#define KQ_AVX2(name, BT, UN, MIN, ONE, ONE_FN)                                                         \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const struct BT *wb = w;                                                                \
    float acc[MAXT] = { 0 };                                                                \
    struct sb_w sw;                                                                         \
    if (nt == 1 && ONE) {                                                                   \
        ONE_FN(n, wb, a, out);                                                              \
        return;                                                                             \
    }                                                                                       \
    for (int64_t b = 0; b < n / 256; b++) {                                                 \
        UN(&wb[b], &sw);                                                                    \
        for (int t = 0; t < nt; t++) {                                                      \
            const struct block_q8_K *x =                                                    \
                (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride) + b; \
            int is, im;                                                                     \
            sb_dot(&sw, x, &is, &im);                                                       \
            if (MIN) {                                                                      \
                acc[t] = fmaf(sw.d * x->d, (float)is, acc[t]);                              \
                acc[t] = fmaf(-(sw.dmin * x->d), (float)im, acc[t]);                        \
            } else {                                                                        \
                acc[t] = fmaf(sw.d * x->d, (float)(is - im), acc[t]);                       \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    for (int t = 0; t < nt; t++)                                                            \
        out[(size_t)t * o_stride] = acc[t];                                                 \
}

static inline void no_one(int64_t n, const void *w, const void *a, float *out)
{
    (void)n; (void)w; (void)a; (void)out;
}

KQ_AVX2(dot_q2_k_avx2, block_q2_K, un_q2_k, 1, 0, no_one)
KQ_AVX2(dot_q3_k_avx2, block_q3_K, un_q3_k, 0, 0, no_one)
KQ_AVX2(dot_q4_k_avx2, block_q4_K, un_q4_k, 1, 1, dot_q4_k_1)
KQ_AVX2(dot_q5_k_avx2, block_q5_K, un_q5_k, 1, 0, no_one)
KQ_AVX2(dot_q6_k_avx2, block_q6_K, un_q6_k, 0, 1, dot_q6_k_1)

void rt_kern_avx2_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
#define K(dt, ac, fn) tab[dt] = (struct rt_kern){ .dtype = dt, .act = ac, .dot = fn, .isa = RT_ISA_AVX2, .gemm_act = ac }
    K(DT_Q4_0, RT_ACT_Q8_0, dot_q4_0_avx2);
    K(DT_Q5_0, RT_ACT_Q8_0, dot_q5_0_avx2);
    K(DT_Q8_0, RT_ACT_Q8_0, dot_q8_0_avx2);
    K(DT_IQ4_NL, RT_ACT_Q8_0, dot_iq4_nl_avx2);
    K(DT_Q4_1, RT_ACT_Q8_1, dot_q4_1_avx2);
    K(DT_Q5_1, RT_ACT_Q8_1, dot_q5_1_avx2);
    K(DT_Q2_K, RT_ACT_Q8_K, dot_q2_k_avx2);
    K(DT_Q3_K, RT_ACT_Q8_K, dot_q3_k_avx2);
    K(DT_Q4_K, RT_ACT_Q8_K, dot_q4_k_avx2);
    K(DT_Q5_K, RT_ACT_Q8_K, dot_q5_k_avx2);
    K(DT_Q6_K, RT_ACT_Q8_K, dot_q6_k_avx2);
    K(DT_IQ4_XS, RT_ACT_Q8_K, dot_iq4_xs_avx2);
#undef K
    q[RT_ACT_Q8_0] = quant_q8_0_avx2;
    q[RT_ACT_Q8_1] = quant_q8_1_avx2;
    q[RT_ACT_Q8_K] = quant_q8_k_avx2;
    rt_kern_avx2_fp_table(tab, q);   /* F32/F16/BF16: kern_fp_avx2.c */
    rt_kern_avx2_qgemm_table(tab, q);   /* quantized matrix kernels: kern_qgemm_avx2.c */
    rt_kern_avx2_dec_table(tab, q);   /* after the quantizers: it may build on them */
}

#else
/* not an x86-64 build with AVX2: matmul.c never calls this */
void rt_kern_avx2_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    (void)tab;
    (void)q;
}
#endif
