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

#endif
