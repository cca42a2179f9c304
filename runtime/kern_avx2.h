/*
 * kern_avx2.h - private to the AVX2 kernel files (kern_avx2.c, the dot kernels and the
 * quantizers, and the matrix and decode kernels beside it): the helpers they share so
 * that every path gives the bits of its dot twin (the reductions, the weight
 * unpackers).  Include only in files compiled with the AVX2 flags (the Makefile's
 * *_avx2.c rule), after the feature test of those files.
 */
#ifndef RT_KERN_AVX2_H
#define RT_KERN_AVX2_H

#include <immintrin.h>
#include <string.h>

#include "kern.h"

static inline float red8(const float s[8])
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static inline int hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* f32 lanes -> one float in the order of red8 */
static inline float hsum_ps_red8(__m256 v)
{
    float l[8];
    _mm256_storeu_ps(l, v);
    return red8(l);
}

/* the sum of 32 signed bytes (a Q8_0 / Q8_1 block's values), exact */
static inline int sum_i8(__m256i q)
{
    return hsum_i32(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q),
                                      _mm256_set1_epi16(1)));
}

/* signed x signed bytes -> 8 int32 lanes, each the sum of 4 products (exact) */
static inline __m256i mul_sum_i8(__m256i x, __m256i y)
{
    __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

/* unsigned (<= 63) x signed bytes -> 8 int32 lanes (exact: no int16 saturation) */
static inline __m256i mul_sum_u8(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* two vectors of 8 int32 -> per 128-bit lane [a0+a2, b0+b2, a1+a3, b1+b3] */
static inline __m256i zip_add32(__m256i a, __m256i b)
{
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}

/* two zip_add32 results -> per 128-bit lane [a, b, c, d] (each one lane's partial sum) */
static inline __m256i zip_add64(__m256i ab, __m256i cd)
{
    return _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
}

/* 8 vectors of 8 int32 -> one vector of their 8 sums (lane k: the sum of p[k]).
 * Integer adds, so any order gives the same sums; unpacks (one simple shuffle each)
 * rather than vphaddd (several micro-ops a piece): the AVX2 decode kernels in cache (one
 * thread, 256 rows x 2048, best of 200, 3 alternated runs) Q8_0 30.8-31.6 -> 31.9-32.0
 * GB/s, Q4_0 14.8-15.0 -> 15.1, IQ4_NL 11.4 -> 11.7, Q4_1 13.3 -> 13.6. */
static inline __m256i hsum8x8(const __m256i p[8])
{
    __m256i a = zip_add64(zip_add32(p[0], p[1]), zip_add32(p[2], p[3]));
    __m256i b = zip_add64(zip_add32(p[4], p[5]), zip_add32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

/* 16 packed bytes of nibbles -> 32 bytes: low nibbles first, then high nibbles */
static inline __m256i nibbles(const uint8_t *p)
{
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

/* bit j of x -> byte j = 0xFF or 0 */
static inline __m256i bits_to_bytes(uint32_t x)
{
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                           0x0101010101010101LL, 0x0000000000000000LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

static inline uint32_t ld32(const uint8_t *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    return u;
}

/* ---------------------------------------------------------------------------------
 * Legacy blocks of 32 as 32 bytes in element order
 */

static inline __m256i w_q4_0(const struct block_q4_0 *b)
{
    return _mm256_sub_epi8(nibbles(b->qs), _mm256_set1_epi8(8));
}
static inline __m256i w_q4_1(const struct block_q4_1 *b) { return nibbles(b->qs); }
static inline __m256i w_q5_0(const struct block_q5_0 *b)
{
    __m256i hb = _mm256_and_si256(bits_to_bytes(ld32(b->qh)), _mm256_set1_epi8(16));
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(b->qs), hb), _mm256_set1_epi8(16));
}
static inline __m256i w_q5_1(const struct block_q5_1 *b)
{
    __m256i hb = _mm256_and_si256(bits_to_bytes(ld32(b->qh)), _mm256_set1_epi8(16));
    return _mm256_or_si256(nibbles(b->qs), hb);
}
static inline __m256i w_q8_0(const struct block_q8_0 *b)
{
    return _mm256_loadu_si256((const __m256i *)b->qs);
}
static inline __m256i w_iq4_nl(const struct block_iq4_nl *b)
{
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rt_kvalues_iq4nl));
    return _mm256_shuffle_epi8(tab, nibbles(b->qs));
}

/* ---------------------------------------------------------------------------------
 * Super-blocks of 256 (Q8_K activations): unpacked weights and scales
 */

static inline __m256i bsums16(const struct block_q8_K *x)
{
    return _mm256_loadu_si256((const __m256i *)x->bsums);
}

/* scales of sub-blocks of 32: vector k (elements 32k..32k+31) gets set1(sc[k]) */
struct sb_w {
    __m256i q[8];      /* element bytes, 8 x 32 */
    __m256i sc[8];     /* int16 scales for madd, per vector */
    __m256i s16;       /* int16 x 16: the coefficient of each bsum (mins or offsets) */
    float   d, dmin;   /* dmin: 0 for types without mins */
};

/* isum = sum_k madd(maddubs(q[k], a[k]), sc[k]) - ... ; imin = sum bsums * s16 */
static inline void sb_dot(const struct sb_w *w, const struct block_q8_K *x, int *isum, int *imin)
{
    __m256i s = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) {
        __m256i p = _mm256_maddubs_epi16(w->q[k], _mm256_loadu_si256((const __m256i *)(x->qs + 32 * k)));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, w->sc[k]));
    }
    __m256i m = _mm256_madd_epi16(bsums16(x), w->s16);
    __m256i h = _mm256_hadd_epi32(s, m);   /* [s01 s23 m01 m23 | s45 s67 m45 m67] */
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    r = _mm_hadd_epi32(r, r);              /* [s, m, s, m] */
    *isum = _mm_cvtsi128_si32(r);
    *imin = _mm_extract_epi32(r, 1);
}

static inline __m256i sc_pair(int lo, int hi)   /* int16: 8 x lo, then 8 x hi */
{
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

static inline void un_q4_k(const struct block_q4_K *b, struct sb_w *w)
{
    uint32_t u[4];
    rt_q4k_scales(b->scales, u);
    const uint8_t *sc = (const uint8_t *)u, *m = sc + 8;
    for (int p = 0; p < 4; p++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * p));
        w->q[2 * p] = _mm256_and_si256(q, _mm256_set1_epi8(15));
        w->q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(15));
        w->sc[2 * p] = _mm256_set1_epi16((short)sc[2 * p]);
        w->sc[2 * p + 1] = _mm256_set1_epi16((short)sc[2 * p + 1]);
    }
    /* mins: bsums 2j and 2j+1 get m[j] */
    w->s16 = _mm256_setr_epi16((short)m[0], (short)m[0], (short)m[1], (short)m[1],
                               (short)m[2], (short)m[2], (short)m[3], (short)m[3],
                               (short)m[4], (short)m[4], (short)m[5], (short)m[5],
                               (short)m[6], (short)m[6], (short)m[7], (short)m[7]);
    w->d = _cvtsh_ss(b->d);
    w->dmin = _cvtsh_ss(b->dmin);
}

static inline void un_q5_k(const struct block_q5_K *b, struct sb_w *w)
{
    int sc[8], m[8];
    __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
    for (int j = 0; j < 8; j++)
        rt_scale_min_k4(j, b->scales, &sc[j], &m[j]);
    for (int p = 0; p < 4; p++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * p));
        __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * p), _mm256_set1_epi8(1));
        __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * p + 1), _mm256_set1_epi8(1));
        w->q[2 * p] = _mm256_or_si256(_mm256_and_si256(q, _mm256_set1_epi8(15)),
                                      _mm256_slli_epi16(h0, 4));
        w->q[2 * p + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(15)),
                                          _mm256_slli_epi16(h1, 4));
        w->sc[2 * p] = _mm256_set1_epi16((short)sc[2 * p]);
        w->sc[2 * p + 1] = _mm256_set1_epi16((short)sc[2 * p + 1]);
    }
    w->s16 = _mm256_setr_epi16((short)m[0], (short)m[0], (short)m[1], (short)m[1],
                               (short)m[2], (short)m[2], (short)m[3], (short)m[3],
                               (short)m[4], (short)m[4], (short)m[5], (short)m[5],
                               (short)m[6], (short)m[6], (short)m[7], (short)m[7]);
    w->d = _cvtsh_ss(b->d);
    w->dmin = _cvtsh_ss(b->dmin);
}

/* Q6_K: q unsigned 0..63 = value + 32; isum = sum sc*q*a - 32 * sum sc_i * bsums_i.
 * The -32 term rides in s16 (= 32 * sc_i) and is subtracted like a min. */
static inline void un_q6_k(const struct block_q6_K *b, struct sb_w *w)
{
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h;
        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
        __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4);
        __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4);
        __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4);
        __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4);
        w->q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), h0);
        w->q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), h1);
        w->q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2);
        w->q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3);
        const int8_t *s = b->scales + 8 * h;
        for (int k = 0; k < 4; k++)
            w->sc[4 * h + k] = sc_pair(s[2 * k], s[2 * k + 1]);
    }
    __m128i s8 = _mm_loadu_si128((const __m128i *)b->scales);
    w->s16 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 5);   /* 32 * sc_i */
    w->d = _cvtsh_ss(b->d);
    w->dmin = 0;
}

/* Q2_K: q 0..3, per-16 scales (low nibble) and mins (high nibble) */
static inline void un_q2_k(const struct block_q2_K *b, struct sb_w *w)
{
    for (int h = 0; h < 2; h++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
        for (int j = 0; j < 4; j++) {
            w->q[4 * h + j] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), _mm256_set1_epi8(3));
            int i = 8 * h + 2 * j;
            w->sc[4 * h + j] = sc_pair(b->scales[i] & 15, b->scales[i + 1] & 15);
        }
    }
    __m128i s8 = _mm_loadu_si128((const __m128i *)b->scales);
    w->s16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(15)));
    w->d = _cvtsh_ss(b->d);
    w->dmin = _cvtsh_ss(b->dmin);
}

/* Q3_K: q' = low 2 bits | hbit << 2 in 0..7 = value + 4; the -4 rides in s16 */
static inline void un_q3_k(const struct block_q3_K *b, struct sb_w *w)
{
    uint32_t aux[4], tmp;
    int sc[16];
    memcpy(aux, b->scales, 12);
    tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & 0x0f0f0f0fu) | (((tmp >> 4) & 0x03030303u) << 4);
    aux[3] = ((aux[1] >> 4) & 0x0f0f0f0fu) | (((tmp >> 6) & 0x03030303u) << 4);
    aux[0] = (aux[0] & 0x0f0f0f0fu) | (((tmp >> 0) & 0x03030303u) << 4);
    aux[1] = (aux[1] & 0x0f0f0f0fu) | (((tmp >> 2) & 0x03030303u) << 4);
    for (int i = 0; i < 16; i++)
        sc[i] = (int)((aux[i / 4] >> (8 * (i % 4))) & 0xFF) - 32;
    __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
    for (int h = 0; h < 2; h++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
        for (int j = 0; j < 4; j++) {
            __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), _mm256_set1_epi8(3));
            __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), _mm256_set1_epi8(1));
            w->q[4 * h + j] = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
            w->sc[4 * h + j] = sc_pair(sc[8 * h + 2 * j], sc[8 * h + 2 * j + 1]);
        }
    }
    w->s16 = _mm256_setr_epi16((short)(4 * sc[0]), (short)(4 * sc[1]), (short)(4 * sc[2]),
                               (short)(4 * sc[3]), (short)(4 * sc[4]), (short)(4 * sc[5]),
                               (short)(4 * sc[6]), (short)(4 * sc[7]), (short)(4 * sc[8]),
                               (short)(4 * sc[9]), (short)(4 * sc[10]), (short)(4 * sc[11]),
                               (short)(4 * sc[12]), (short)(4 * sc[13]), (short)(4 * sc[14]),
                               (short)(4 * sc[15]));
    w->d = _cvtsh_ss(b->d);
    w->dmin = 0;
}

#endif
