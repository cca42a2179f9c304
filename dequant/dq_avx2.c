/*
 * dq_avx2.c - AVX2/FMA/F16C dequantization kernels (x86-64).
 *
 * Built with -mavx2 -mfma -mf16c (Makefile rule for *_avx2.c) and called only when
 * dq__cpu_avx2() says the CPU has all three (dq.c chooses at run time).  Each kernel
 * has a scalar twin in dq_ref.c, whose comment draws the block layout; check_dq.c
 * compares the two with memcmp on random blocks.  They give the same bits because
 * every product d * scale * quant is exact in f32 (reference/gguf-quant.md 3.7): an
 * FMA "q * d - m" rounds once, exactly like the scalar multiply then subtract.
 *
 * All loads are unaligned (loadu / memcpy), so any mmap offset is fine.  The f16
 * block scales go through F16C, which converts NaN and subnormals exactly as
 * dq__h2f() does.
 *
 * The common shape: unpack the quants of a block into bytes (nibble masks, bit
 * expansion, pshufb table lookups), widen 8 bytes at a time to i32, convert to f32,
 * multiply (or FMA) by the block scale, store.
 */
#include "dq.h"
#include "dq_impl.h"

#ifdef DQ_HAVE_AVX2_BUILD

#include <immintrin.h>
#include <string.h>

#include "../common/banned.h"

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline __m128i load16(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline __m256i load32(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 8 bytes (low half of v) -> 8 floats, signed or unsigned. */
static inline __m256 i8x8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
static inline __m256 u8x8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }

/* y[0..31] = q[0..31] * d for 32 signed bytes. */
static inline void store_i8_mul(float *y, __m256i q, __m256 d)
{
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y,      _mm256_mul_ps(i8x8(lo), d));
    _mm256_storeu_ps(y + 8,  _mm256_mul_ps(i8x8(_mm_srli_si128(lo, 8)), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(i8x8(hi), d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(i8x8(_mm_srli_si128(hi, 8)), d));
}

/* y[0..31] = q[0..31] * d + m for 32 unsigned bytes (one rounding: q * d is exact). */
static inline void store_u8_fmadd(float *y, __m256i q, __m256 d, __m256 m)
{
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y,      _mm256_fmadd_ps(u8x8(lo), d, m));
    _mm256_storeu_ps(y + 8,  _mm256_fmadd_ps(u8x8(_mm_srli_si128(lo, 8)), d, m));
    _mm256_storeu_ps(y + 16, _mm256_fmadd_ps(u8x8(hi), d, m));
    _mm256_storeu_ps(y + 24, _mm256_fmadd_ps(u8x8(_mm_srli_si128(hi, 8)), d, m));
}

/* y[0..31] = d * q - m for 32 unsigned bytes (K-quants). */
static inline void store_u8_fmsub(float *y, __m256i q, __m256 d, __m256 m)
{
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y,      _mm256_fmsub_ps(d, u8x8(lo), m));
    _mm256_storeu_ps(y + 8,  _mm256_fmsub_ps(d, u8x8(_mm_srli_si128(lo, 8)), m));
    _mm256_storeu_ps(y + 16, _mm256_fmsub_ps(d, u8x8(hi), m));
    _mm256_storeu_ps(y + 24, _mm256_fmsub_ps(d, u8x8(_mm_srli_si128(hi, 8)), m));
}

/* 16 bytes of nibble pairs -> 32 bytes: low nibbles first (elements j), then the high
 * nibbles (elements j+16): the legacy and IQ4 layouts. */
static inline __m256i nibbles32(const uint8_t *p)
{
    __m128i q = load16(p), m = _mm_set1_epi8(15);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

/* The 32 bits of qh as 32 bytes, 0x10 where the bit is set (bit 4 of Q5_0/Q5_1 quants). */
static inline __m256i qh_bits16(uint32_t qh)
{
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                           0x0101010101010101LL, 0x0000000000000000LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* ---------------------------------------------------------------------------------------
 * Plain types.
 */

void dq_f32_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    /* x86 is little-endian: the bytes are already the f32 values. */
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void dq_f16_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm256_storeu_ps(dst + i,      _mm256_cvtph_ps(load16(p + 2 * i)));
        _mm256_storeu_ps(dst + i + 8,  _mm256_cvtph_ps(load16(p + 2 * i + 16)));
        _mm256_storeu_ps(dst + i + 16, _mm256_cvtph_ps(load16(p + 2 * i + 32)));
        _mm256_storeu_ps(dst + i + 24, _mm256_cvtph_ps(load16(p + 2 * i + 48)));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(load16(p + 2 * i)));
    for (; i < n; i++)
        dst[i] = h2f(le16(p + 2 * i));
}

void dq_bf16_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_cvtepu16_epi32(load16(p + 2 * i));
        __m256i b = _mm256_cvtepu16_epi32(load16(p + 2 * i + 16));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(a, 16)));
        _mm256_storeu_ps(dst + i + 8, _mm256_castsi256_ps(_mm256_slli_epi32(b, 16)));
    }
    for (; i < n; i++)
        dst[i] = dq__bits_f32((uint32_t)le16(p + 2 * i) << 16);
}

/* ---------------------------------------------------------------------------------------
 * Legacy blocks of 32.
 */

void dq_q8_0_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q8_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32)
        store_i8_mul(dst, load32((const uint8_t *)b->qs), _mm256_set1_ps(h2f(b->d)));
}

void dq_q4_0_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q4_0 *b = src;
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32)
        store_i8_mul(dst, _mm256_sub_epi8(nibbles32(b->qs), eight), _mm256_set1_ps(h2f(b->d)));
}

void dq_q4_1_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q4_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32)
        store_u8_fmadd(dst, nibbles32(b->qs), _mm256_set1_ps(h2f(b->d)), _mm256_set1_ps(h2f(b->m)));
}

void dq_q5_0_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q5_0 *b = src;
    const __m256i sixteen = _mm256_set1_epi8(16);
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        __m256i q = _mm256_or_si256(nibbles32(b->qs), qh_bits16(le32(b->qh)));
        store_i8_mul(dst, _mm256_sub_epi8(q, sixteen), _mm256_set1_ps(h2f(b->d)));
    }
}

void dq_q5_1_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q5_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        __m256i q = _mm256_or_si256(nibbles32(b->qs), qh_bits16(le32(b->qh)));
        store_u8_fmadd(dst, q, _mm256_set1_ps(h2f(b->d)), _mm256_set1_ps(h2f(b->m)));
    }
}

void dq_iq4_nl_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_iq4_nl *b = src;
    const __m256i kv = _mm256_broadcastsi128_si256(load16((const uint8_t *)dq__kvalues_iq4nl));
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32)
        store_i8_mul(dst, _mm256_shuffle_epi8(kv, nibbles32(b->qs)), _mm256_set1_ps(h2f(b->d)));
}

/* ---------------------------------------------------------------------------------------
 * K-quants and IQ4_XS.
 */

static void scale_min_k4(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m  = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m  = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

void dq_q4_k_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q4_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = h2f(b->d), dmin = h2f(b->dmin);
        for (int c = 0; c < 4; c++) {
            int s1, m1, s2, m2;
            scale_min_k4(2 * c, b->scales, &s1, &m1);
            scale_min_k4(2 * c + 1, b->scales, &s2, &m2);
            __m256i q = load32(b->qs + 32 * c);
            store_u8_fmsub(dst + 64 * c, _mm256_and_si256(q, m4),
                           _mm256_set1_ps(d * (float)s1), _mm256_set1_ps(dmin * (float)m1));
            store_u8_fmsub(dst + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                           _mm256_set1_ps(d * (float)s2), _mm256_set1_ps(dmin * (float)m2));
        }
    }
}

void dq_q5_k_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q5_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = h2f(b->d), dmin = h2f(b->dmin);
        __m256i qh = load32(b->qh);
        for (int c = 0; c < 4; c++) {
            int s1, m1, s2, m2;
            scale_min_k4(2 * c, b->scales, &s1, &m1);
            scale_min_k4(2 * c + 1, b->scales, &s2, &m2);
            __m256i q = load32(b->qs + 32 * c);
            /* bit 2c (2c+1) of each qh byte, moved to bit 4; 16-bit shifts are safe because
             * the mask keeps only bits that came from the same byte */
            __m256i h1 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), one);
            __m256i h2 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c + 1)), one);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(h1, 4));
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                         _mm256_slli_epi16(h2, 4));
            store_u8_fmsub(dst + 64 * c, lo, _mm256_set1_ps(d * (float)s1),
                           _mm256_set1_ps(dmin * (float)m1));
            store_u8_fmsub(dst + 64 * c + 32, hi, _mm256_set1_ps(d * (float)s2),
                           _mm256_set1_ps(dmin * (float)m2));
        }
    }
}

/* y[0..31] = q * (d*sc[0]) for the first 16 elements and q * (d*sc[1]) for the next 16. */
static inline void store_i8_2scales(float *y, __m256i q, float d, int sc0, int sc1)
{
    __m256 da = _mm256_set1_ps(d * (float)sc0), db = _mm256_set1_ps(d * (float)sc1);
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y,      _mm256_mul_ps(da, i8x8(lo)));
    _mm256_storeu_ps(y + 8,  _mm256_mul_ps(da, i8x8(_mm_srli_si128(lo, 8))));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(db, i8x8(hi)));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(db, i8x8(_mm_srli_si128(hi, 8))));
}

void dq_q6_k_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q6_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    const __m256i off = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = h2f(b->d);
        const int8_t *sc = b->scales;
        for (int h = 0; h < 2; h++) {
            __m256i a = load32(b->ql + 64 * h), c = load32(b->ql + 64 * h + 32);
            __m256i e = load32(b->qh + 32 * h);
            __m256i q1 = _mm256_or_si256(_mm256_and_si256(a, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(e, m2), 4));
            __m256i q2 = _mm256_or_si256(_mm256_and_si256(c, m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(e, 2), m2), 4));
            __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(e, 4), m2), 4));
            __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(e, 6), m2), 4));
            float *y = dst + 128 * h;
            const int8_t *s = sc + 8 * h;
            store_i8_2scales(y,      _mm256_sub_epi8(q1, off), d, s[0], s[1]);
            store_i8_2scales(y + 32, _mm256_sub_epi8(q2, off), d, s[2], s[3]);
            store_i8_2scales(y + 64, _mm256_sub_epi8(q3, off), d, s[4], s[5]);
            store_i8_2scales(y + 96, _mm256_sub_epi8(q4, off), d, s[6], s[7]);
        }
    }
}

/* y[0..31] = d0 * q - m0 for the first 16 bytes of q, d1 * q - m1 for the next 16. */
static inline void store_u8_fmsub2(float *y, __m256i q, float d0, float m0, float d1, float m1)
{
    __m256 vd0 = _mm256_set1_ps(d0), vm0 = _mm256_set1_ps(m0);
    __m256 vd1 = _mm256_set1_ps(d1), vm1 = _mm256_set1_ps(m1);
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y,      _mm256_fmsub_ps(vd0, u8x8(lo), vm0));
    _mm256_storeu_ps(y + 8,  _mm256_fmsub_ps(vd0, u8x8(_mm_srli_si128(lo, 8)), vm0));
    _mm256_storeu_ps(y + 16, _mm256_fmsub_ps(vd1, u8x8(hi), vm1));
    _mm256_storeu_ps(y + 24, _mm256_fmsub_ps(vd1, u8x8(_mm_srli_si128(hi, 8)), vm1));
}

void dq_q2_k_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q2_K *b = src;
    const __m256i m2 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = h2f(b->d), dmin = h2f(b->dmin);
        for (int h = 0; h < 2; h++) {
            __m256i q = load32(b->qs + 32 * h);
            for (int g = 0; g < 4; g++) {
                const uint8_t *sc = b->scales + 8 * h + 2 * g;   /* sub-blocks sb = 0, 1 */
                __m256i v = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * g)), m2);
                store_u8_fmsub2(dst + 128 * h + 32 * g, v,
                                d * (float)(sc[0] & 15), dmin * (float)(sc[0] >> 4),
                                d * (float)(sc[1] & 15), dmin * (float)(sc[1] >> 4));
            }
        }
    }
}

void dq_q3_k_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_q3_K *b = src;
    const __m256i m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    const __m256i four = _mm256_set1_epi8(4);
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        const uint8_t *sc = b->scales;
        float d = h2f(b->d);
        int S[16];
        for (int j = 0; j < 16; j++) {
            int low4 = j < 8 ? sc[j] & 15 : sc[j - 8] >> 4;
            int hi2 = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
            S[j] = (low4 | hi2 << 4) - 32;
        }
        __m256i hm = load32(b->hmask);
        for (int h = 0; h < 2; h++) {
            __m256i q = load32(b->qs + 32 * h);
            for (int g = 0; g < 4; g++) {
                /* quant = ((q >> 2g) & 3) - 4 + 4 * (hmask bit 4h+g) */
                __m256i v = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * g)), m2);
                __m256i hb = _mm256_and_si256(
                    _mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * h + g)), one);
                v = _mm256_add_epi8(_mm256_sub_epi8(v, four), _mm256_slli_epi16(hb, 2));
                store_i8_2scales(dst + 128 * h + 32 * g, v, d, S[8 * h + 2 * g],
                                 S[8 * h + 2 * g + 1]);
            }
        }
    }
}

void dq_iq4_xs_to_f32_avx2(const void *src, float *dst, int64_t n)
{
    const struct block_iq4_xs *b = src;
    const __m256i kv = _mm256_broadcastsi128_si256(load16((const uint8_t *)dq__kvalues_iq4nl));
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = h2f(b->d);
        uint32_t sh = b->scales_h;
        for (int ib = 0; ib < 8; ib++) {
            int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 15) |
                     (int)((sh >> (2 * ib)) & 3) << 4;
            __m256 dl = _mm256_set1_ps(d * (float)(ls - 32));
            store_i8_mul(dst + 32 * ib, _mm256_shuffle_epi8(kv, nibbles32(b->qs + 16 * ib)), dl);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Quantizers (twins of dq_quant.c's, same bytes: check_quant compares them).
 */

/*
 * Q8_0: amax by max_ps (exact, order-free; a block holding a NaN takes the scalar
 * path, whose MAX() chain depends on where the NaN is), d = amax / 127 and id = 1/d
 * in scalar f32 as the reference, then x * id rounded half away from zero like
 * dq__round_away: truncate, step by one where |x*id - trunc| >= 0.5.
 */
void dq_q8_0_quantize_avx2(const float *x, void *dst, int64_t n)
{
    struct block_q8_0 *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f);
    const __m256 mhalf = _mm256_set1_ps(-0.5f);
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        __m256 v[4], m, nan = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
        }
        if (_mm256_movemask_ps(nan)) {
            dq_q8_0_quantize(x, y, 32);
            continue;
        }
        m = _mm256_max_ps(
            _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
            _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        float amax = _mm_cvtss_f32(h);
        float d = amax / 127;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id), lim = _mm256_set1_ps(2147483648.0f);
        __m256i q[4], low = _mm256_set1_epi32(255);
        y->d = dq_f32_to_f16(d);
        for (int k = 0; k < 4; k++) {
            __m256 p = _mm256_mul_ps(v[k], vid);
            __m256i t = _mm256_cvttps_epi32(p);          /* out of range, NaN: INT32_MIN */
            __m256 r = _mm256_sub_ps(p, _mm256_cvtepi32_ps(t));
            __m256 in = _mm256_cmp_ps(_mm256_andnot_ps(sign, p), lim, _CMP_LT_OQ);
            __m256 up = _mm256_and_ps(in, _mm256_cmp_ps(r, half, _CMP_GE_OQ));
            __m256 dn = _mm256_and_ps(in, _mm256_cmp_ps(r, mhalf, _CMP_LE_OQ));
            /* masks are all ones (-1): subtract "up", add "down" */
            t = _mm256_add_epi32(_mm256_sub_epi32(t, _mm256_castps_si256(up)),
                                 _mm256_castps_si256(dn));
            q[k] = _mm256_and_si256(t, low);             /* (int8_t) keeps the low byte */
        }
        /* 0..255 in each i32: unsigned packs cannot saturate; they work per 128-bit
         * lane, so the dwords are put back in order afterwards */
        __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]),
                                        _mm256_packus_epi32(q[2], q[3]));
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y->qs, b);
    }
}

#else
/* Not x86: nothing to compile here (ISO C forbids an empty translation unit). */
typedef int dq_avx2_unused;
#endif
