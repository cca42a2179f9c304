/*
 * kern_avx512.c - AVX-512 (F, BW, VL, VNNI) dot kernels (compiled with -mavx512f
 * -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c; matmul.c calls them only on
 * such CPUs).  The matrix kernels (prompts) and the F32/F16/BF16 kernels are in
 * kern_gemm_avx512.c; the helpers both share are in kern_avx512.h.
 *
 * Only what the wider registers speed up is here (Q4_0, Q5_0, Q8_0, IQ4_NL, Q4_K,
 * Q6_K): tiles of several tokens, where a
 * weight block group is unpacked once into zmm registers (32 of them: no spills) and
 * multiplied by every token.  Quantized kernels give the SAME BITS as kern_ref.c
 * (exact integer block sums, then the twin's f32 operations in its order), so
 * matmul.c may use the AVX2 kernel for a single token (decode, memory-bound) and this
 * one for a batch.
 */
#include "kern.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VNNI__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../formats/dtype.h"
#include "kern_avx512.h"
#include "../common/banned.h"

#define MAXT 8

/* 8 vectors of 8 int32 -> their 8 sums (as in kern_avx2.c) */
static inline __m256i hsum8x8(const __m256i p[8])
{
    __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
    __m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
    __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

static inline int hsum_i32_512(__m512i v)
{
    return _mm512_reduce_add_epi32(v);
}
/* ---------------------------------------------------------------------------------
 * Legacy blocks of 32, eight at a time: two blocks per zmm, VNNI dot products.
 * Signed weights: |w| as the unsigned operand, the activation negated where w < 0.
 */

#define LEGACY_AVX512(name, BT, WF)                                                        \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const struct BT *wb = w;                                                                \
    int64_t nb = n / 32, b = 0;                                                             \
    __m256 acc[MAXT];                                                                       \
    const struct block_q8_0 *ab[MAXT];                                                      \
    for (int t = 0; t < nt; t++) {                                                          \
        acc[t] = _mm256_setzero_ps();                                                       \
        ab[t] = (const struct block_q8_0 *)((const uint8_t *)a + (size_t)t * a_stride);     \
    }                                                                                       \
    for (; b + 8 <= nb; b += 8) {                                                           \
        __m512i wa[4];                                                                      \
        __mmask64 neg[4];                                                                   \
        for (int k = 0; k < 4; k++) {                                                       \
            __m512i q = pair(WF(&wb[b + 2 * k]), WF(&wb[b + 2 * k + 1]));                   \
            neg[k] = _mm512_movepi8_mask(q);                                                \
            wa[k] = _mm512_abs_epi8(q);                                                     \
        }                                                                                   \
        __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(                                         \
            (short)wb[b].d, (short)wb[b + 1].d, (short)wb[b + 2].d, (short)wb[b + 3].d,     \
            (short)wb[b + 4].d, (short)wb[b + 5].d, (short)wb[b + 6].d, (short)wb[b + 7].d));\
        for (int t = 0; t < nt; t++) {                                                      \
            const struct block_q8_0 *x = ab[t] + b;                                         \
            __m256i p[8];                                                                   \
            for (int k = 0; k < 4; k++) {                                                   \
                __m512i y = pair(_mm256_loadu_si256((const __m256i *)x[2 * k].qs),          \
                                 _mm256_loadu_si256((const __m256i *)x[2 * k + 1].qs));     \
                y = _mm512_mask_sub_epi8(y, neg[k], _mm512_setzero_si512(), y);             \
                __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wa[k], y);          \
                p[2 * k] = _mm512_castsi512_si256(s);                                       \
                p[2 * k + 1] = _mm512_extracti64x4_epi64(s, 1);                             \
            }                                                                               \
            __m256 da = _mm256_cvtph_ps(_mm_setr_epi16(                                     \
                (short)x[0].d, (short)x[1].d, (short)x[2].d, (short)x[3].d,                 \
                (short)x[4].d, (short)x[5].d, (short)x[6].d, (short)x[7].d));               \
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da),                                 \
                                     _mm256_cvtepi32_ps(hsum8x8(p)), acc[t]);               \
        }                                                                                   \
    }                                                                                       \
    for (int t = 0; t < nt; t++) {                                                          \
        float l[8];                                                                         \
        _mm256_storeu_ps(l, acc[t]);                                                        \
        for (int64_t c = b; c < nb; c++) {                                                  \
            __m256i q = WF(&wb[c]);                                                         \
            __m256i y = _mm256_loadu_si256((const __m256i *)ab[t][c].qs);                   \
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q),      \
                                          _mm256_sign_epi8(y, q)), _mm256_set1_epi16(1));   \
            __m128i r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)); \
            r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));                                 \
            r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));                               \
            l[c & 7] = fmaf(_cvtsh_ss(wb[c].d) * _cvtsh_ss(ab[t][c].d),                     \
                            (float)_mm_cvtsi128_si32(r), l[c & 7]);                         \
        }                                                                                   \
        out[(size_t)t * o_stride] = red8(l);                                                \
    }                                                                                       \
}

LEGACY_AVX512(dot_q4_0_avx512, block_q4_0, w_q4_0)
LEGACY_AVX512(dot_q8_0_avx512, block_q8_0, w_q8_0)
LEGACY_AVX512(dot_iq4_nl_avx512, block_iq4_nl, w_iq4_nl)
LEGACY_AVX512(dot_q5_0_avx512, block_q5_0, w_q5_0)
/* ---------------------------------------------------------------------------------
 * Q4_K and Q6_K: a super-block as 4 zmm of unsigned bytes (two sub-blocks of 32 each)
 * with int16 scale vectors; maddubs + madd per token (AVX-512BW).
 */

struct sbz {
    __m512i q[4], sc[4];
    __m256i s16;
    float   d, dmin;
};

static inline __m512i sc2(int lo, int hi)
{
    return pair(_mm256_set1_epi16((short)lo), _mm256_set1_epi16((short)hi));
}

static inline void q4k_scales(const uint8_t *in, uint32_t u[4])
{
    memcpy(u, in, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    uint32_t aux = u[1] & 0x3f3f3f3fu;
    u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    u[2] = aux;
    u[0] &= 0x3f3f3f3fu;
}

static inline void unz_q4_k(const struct block_q4_K *b, struct sbz *w)
{
    uint32_t u[4];
    q4k_scales(b->scales, u);
    const uint8_t *sc = (const uint8_t *)u;
    for (int p = 0; p < 4; p++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * p));
        w->q[p] = pair(_mm256_and_si256(q, _mm256_set1_epi8(15)),
                       _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(15)));
        w->sc[p] = sc2(sc[2 * p], sc[2 * p + 1]);
    }
    /* mins duplicated for the bsum pairs */
    __m128i mn = _mm_loadl_epi64((const __m128i *)(sc + 8));
    mn = _mm_unpacklo_epi8(mn, mn);
    w->s16 = _mm256_cvtepu8_epi16(mn);
    w->d = _cvtsh_ss(b->d);
    w->dmin = _cvtsh_ss(b->dmin);
}

static inline void unz_q6_k(const struct block_q6_K *b, struct sbz *w)
{
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h;
        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
        __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
        __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
        __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
        const int8_t *s = b->scales + 8 * h;
        w->q[2 * h] = pair(q0, q1);
        w->q[2 * h + 1] = pair(q2, q3);
        /* q0: sub-blocks 8h+0,1; q1: 8h+2,3 -> int16 lanes: 8 x s0, 8 x s1, 8 x s2, 8 x s3 */
        w->sc[2 * h] = pair(_mm256_set_m128i(_mm_set1_epi16(s[1]), _mm_set1_epi16(s[0])),
                            _mm256_set_m128i(_mm_set1_epi16(s[3]), _mm_set1_epi16(s[2])));
        w->sc[2 * h + 1] = pair(_mm256_set_m128i(_mm_set1_epi16(s[5]), _mm_set1_epi16(s[4])),
                                _mm256_set_m128i(_mm_set1_epi16(s[7]), _mm_set1_epi16(s[6])));
    }
    w->s16 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales)), 5);
    w->d = _cvtsh_ss(b->d);
    w->dmin = 0;
}

static inline void sbz_dot(const struct sbz *w, const struct block_q8_K *x, int *isum, int *imin)
{
    __m512i s = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) {
        __m512i p = _mm512_maddubs_epi16(w->q[k], _mm512_loadu_si512((const void *)(x->qs + 64 * k)));
        s = _mm512_add_epi32(s, _mm512_madd_epi16(p, w->sc[k]));
    }
    __m256i m = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x->bsums), w->s16);
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
    *isum = hsum_i32_512(s);
    *imin = _mm_cvtsi128_si32(r);
}

#define KQ_AVX512(name, BT, UN, MIN)                                                       \
static void name(int64_t n, const void *w, const void *a, size_t a_stride, int nt,         \
                 float *out, size_t o_stride)                                               \
{                                                                                           \
    const struct BT *wb = w;                                                                \
    float acc[MAXT] = { 0 };                                                                \
    struct sbz sw;                                                                          \
    for (int64_t b = 0; b < n / 256; b++) {                                                 \
        UN(&wb[b], &sw);                                                                    \
        for (int t = 0; t < nt; t++) {                                                      \
            const struct block_q8_K *x =                                                    \
                (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride) + b; \
            int is, im;                                                                     \
            sbz_dot(&sw, x, &is, &im);                                                      \
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

KQ_AVX512(dot_q4_k_avx512, block_q4_K, unz_q4_k, 1)
KQ_AVX512(dot_q6_k_avx512, block_q6_K, unz_q6_k, 0)

void rt_kern_avx512_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
#define K(dt, ac, fn) tab[dt] = (struct rt_kern){ dt, ac, fn, RT_ISA_AVX512, NULL, ac }
    K(DT_Q4_0, RT_ACT_Q8_0, dot_q4_0_avx512);
    K(DT_Q8_0, RT_ACT_Q8_0, dot_q8_0_avx512);
    K(DT_IQ4_NL, RT_ACT_Q8_0, dot_iq4_nl_avx512);
    K(DT_Q5_0, RT_ACT_Q8_0, dot_q5_0_avx512);
    K(DT_Q4_K, RT_ACT_Q8_K, dot_q4_k_avx512);
    K(DT_Q6_K, RT_ACT_Q8_K, dot_q6_k_avx512);
#undef K
    /* F32/F16/BF16 (dot and matrix) and the matrix kernels of the types above */
    rt_kern_avx512_gemm_table(tab, q);
    /* the AVX2 activation quantizers stay (memory-bound, same bytes) */
}

#else
void rt_kern_avx512_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    (void)tab;
    (void)q;
}
#endif
