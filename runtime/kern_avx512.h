/*
 * kern_avx512.h - private to runtime/kern_avx512.c (the dot kernels) and
 * runtime/kern_gemm_avx512.c (the matrix kernels): the helpers both must share so that
 * a matrix kernel gives its dot twin's bits (the weight unpackers, the 8-lane
 * reduction).  Include only in files compiled with the AVX-512 flags, after the
 * feature test of those files.
 */
#ifndef RT_KERN_AVX512_H
#define RT_KERN_AVX512_H

#include <immintrin.h>
#include <string.h>

#include "kern.h"

/* the sum of 8 floats in kern_ref.c's red8 order */
static inline float red8(const float s[8])
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* Legacy blocks of 32 as 32 signed bytes (the element order of the block) */
static inline __m256i nibbles(const uint8_t *p)
{
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

static inline __m512i pair(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __m256i w_q4_0(const struct block_q4_0 *b)
{
    return _mm256_sub_epi8(nibbles(b->qs), _mm256_set1_epi8(8));
}
static inline __m256i w_q8_0(const struct block_q8_0 *b)
{
    return _mm256_loadu_si256((const __m256i *)b->qs);
}
static inline __m256i w_q5_0(const struct block_q5_0 *b)
{
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    /* bit j of qh is the fifth bit of element j: a byte mask, 16 where set */
    __m256i hi = _mm256_and_si256(_mm256_movm_epi8((__mmask32)qh), _mm256_set1_epi8(16));
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(b->qs), hi), _mm256_set1_epi8(16));
}
static inline __m256i w_iq4_nl(const struct block_iq4_nl *b)
{
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rt_kvalues_iq4nl));
    return _mm256_shuffle_epi8(tab, nibbles(b->qs));
}


/* Q4_K and Q6_K: a super-block as 4 zmm of unsigned bytes (two sub-blocks of 32 each)
 * with int16 scale vectors (maddubs + madd per token), the mins (Q4_K) or 32 x the
 * scales (Q6_K, whose values are q - 32) as int16 for the Q8_K bsums */
struct sbz {
    __m512i q[4], sc[4];
    __m256i s16;
    float   d, dmin;
};

static inline __m512i sc2(int lo, int hi)
{
    return pair(_mm256_set1_epi16((short)lo), _mm256_set1_epi16((short)hi));
}

static inline void unz_q4_k(const struct block_q4_K *b, struct sbz *w)
{
    uint32_t u[4];
    rt_q4k_scales(b->scales, u);
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

#endif
