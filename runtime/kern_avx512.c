/*
 * kern_avx512.c - AVX-512 (F, BW, VL, VNNI) dot kernels (compiled with -mavx512f
 * -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c; matmul.c calls them only on
 * such CPUs).  The matrix kernels (prompts) and the F32/F16/BF16 kernels are in
 * kern_gemm_avx512.c; the helpers both share are in kern_avx512.h.
 *
 * Two kinds, both giving the SAME BITS as kern_ref.c (exact integer block sums, then
 * the twin's f32 operations in its order), so matmul.c may pick either:
 *   dot (Q4_0, Q5_0, Q8_0, IQ4_NL, Q4_K, Q6_K): tiles of several tokens, where a weight
 *     block group is unpacked once into zmm registers and multiplied by every token;
 *   dec (Q4_0, Q5_0, Q8_0, IQ4_NL, Q4_K, Q5_K, Q6_K; kern.h): one token (decode), the
 *     weights streamed once with the next rows prefetched, as few instructions per
 *     weight byte as possible so that the memory, not the core, sets the pace.
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

/* ---------------------------------------------------------------------------------
 * Decode kernels (kern.h's dec): one token, the weights streamed once, row after row.
 *
 * Legacy blocks on RT_ACT_Q8_0S activations.  The weights go to vpdpbusd as UNSIGNED
 * bytes u = w + off (Q8_0, IQ4_NL: off 128, by an xor or a shifted table; Q4_0: the
 * nibbles themselves, off 8; Q5_0: off 16) against the signed activations, and the
 * exact block sum is sum(u * q) - off * sum(q), sum(q) stored by the quantizer: no
 * sign juggling per weight.  Sixteen blocks (8 zmm of two blocks, 8 int32 lanes per
 * block) are reduced together into one zmm of the 16 block sums, lane j = block j
 * (dec_tree), then scaled as the twin does: block b into f32 lane b % 8,
 * acc = fma(dw * da, (float)isum, acc), blocks 16g..16g+7 before 16g+8..16g+15; the
 * last n/32 % 16 blocks one by one into the same lanes; red8.  Same bits as kern_ref.c.
 */

/* 8 vectors of two blocks' int32 lanes (block 2k in lanes 0-7 of p[k], 2k+1 in 8-15)
 * -> the 16 block sums, lane j = block j */
static inline __m512i dec_tree(const __m512i p[8])
{
    __m512i u[4];
    _Pragma("GCC unroll 4")
    for (int m = 0; m < 4; m++)   /* 128-bit chunk c of u[m]: block 4m + c, 4 lanes */
        u[m] = _mm512_add_epi32(_mm512_shuffle_i32x4(p[2 * m], p[2 * m + 1], 0x88),
                                _mm512_shuffle_i32x4(p[2 * m], p[2 * m + 1], 0xDD));
    __m512i w01 = _mm512_add_epi32(_mm512_unpacklo_epi32(u[0], u[1]), _mm512_unpackhi_epi32(u[0], u[1]));
    __m512i w23 = _mm512_add_epi32(_mm512_unpacklo_epi32(u[2], u[3]), _mm512_unpackhi_epi32(u[2], u[3]));
    __m512i x = _mm512_add_epi32(_mm512_unpacklo_epi64(w01, w23), _mm512_unpackhi_epi64(w01, w23));
    /* lane 4c + i of x is block 4i + c */
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(perm, x);
}

/* one block as unsigned bytes w + off */
static inline __m256i u_q8_0(const struct block_q8_0 *b)
{
    return _mm256_xor_si256(w_q8_0(b), _mm256_set1_epi8(-128));
}
/* two blocks: one xor for both */
static inline __m512i u2_q8_0(const struct block_q8_0 *b)
{
    return _mm512_xor_si512(pair(w_q8_0(&b[0]), w_q8_0(&b[1])), _mm512_set1_epi8(-128));
}
static inline __m256i u_q4_0(const struct block_q4_0 *b)
{
    return nibbles(b->qs);
}
static inline __m256i u_q5_0(const struct block_q5_0 *b)
{
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    return _mm256_or_si256(nibbles(b->qs), _mm256_and_si256(_mm256_movm_epi8((__mmask32)qh),
                                                            _mm256_set1_epi8(16)));
}
static inline __m256i u_iq4_nl(const struct block_iq4_nl *b)
{
    const __m256i tab = _mm256_xor_si256(
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rt_kvalues_iq4nl)),
        _mm256_set1_epi8(-128));
    return _mm256_shuffle_epi8(tab, nibbles(b->qs));
}


#define U2(ty) static inline __m512i u2_##ty(const struct block_##ty *b) { return pair(u_##ty(&b[0]), u_##ty(&b[1])); }
U2(q4_0)
U2(q5_0)
U2(iq4_nl)
#undef U2

/* SH: log2(off).  name##_grp: one row's group of 16 blocks from b into acc; name##_tail:
 * its last nb % 16 blocks and the reduction; one row is acc = 0, the groups in order,
 * the tail.  name runs 4 rows at a time as 4 streams a quarter of the part apart (rows
 * g, g + q, g + 2q, g + 3q, as DEC4_ROWS; past nr: row nr - 1 again, not stored), group
 * by group, each stream prefetching its row LEG_PF ahead: the same steps per row as one
 * row alone, so the same bits (test_dec_vs_dot).  Q8_0 tg64 -t 2 against one row at a
 * time with the row 4 ahead prefetched, alternated, 7 rounds: 36.8-41.5 vs 31.7-36.9
 * t/s; LEG_PF 2 measured between them, 4 below the old kernel. */
#define LEG_PF 1
/* one stream's group: prefetch, then its row's steps */
#define LEG_STEP(name, BT, i)                                                              \
    {                                                                                       \
        const char *pf = (const char *)&wr[i][b] + LEG_PF * w_stride;                       \
        for (size_t o = 0; o < 16 * sizeof(struct BT); o += 64)                              \
            _mm_prefetch(pf + o, _MM_HINT_T0);                                              \
        acc##i = name##_grp(wr[i], b, xq, da, qsum, acc##i);                                \
    }
#define LEG_DEC(name, BT, UW, UW2, SH)                                                     \
static inline __attribute__((always_inline)) __m256 name##_grp(const struct BT *wb, int64_t b, \
        const int8_t *q, const float *da, const int32_t *qsum, __m256 acc)                  \
{                                                                                           \
    __m512i p[8];                                                                           \
    _Pragma("GCC unroll 8")                                                                 \
    for (int k = 0; k < 8; k++)                                                             \
        p[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(),                                   \
                                   UW2(&wb[b + 2 * k]),                                    \
                                   _mm512_loadu_si512((const void *)(q + 32 * (b + 2 * k)))); \
    __m512i is = _mm512_sub_epi32(dec_tree(p),                                              \
                                  _mm512_slli_epi32(_mm512_loadu_si512((const void *)(qsum + b)), SH)); \
    /* the 16 f16 scales (16 inserts beat a gather: Zen 5, Q8_0 in L2, 34 vs 31 GB/s) */     \
    __m512 dw = _mm512_cvtph_ps(_mm256_setr_epi16(                                          \
        (short)wb[b].d, (short)wb[b + 1].d, (short)wb[b + 2].d, (short)wb[b + 3].d,         \
        (short)wb[b + 4].d, (short)wb[b + 5].d, (short)wb[b + 6].d, (short)wb[b + 7].d,     \
        (short)wb[b + 8].d, (short)wb[b + 9].d, (short)wb[b + 10].d, (short)wb[b + 11].d,   \
        (short)wb[b + 12].d, (short)wb[b + 13].d, (short)wb[b + 14].d, (short)wb[b + 15].d)); \
    __m512 sc = _mm512_mul_ps(dw, _mm512_loadu_ps(da + b));                                 \
    __m512 f = _mm512_cvtepi32_ps(is);                                                      \
    acc = _mm256_fmadd_ps(_mm512_castps512_ps256(sc), _mm512_castps512_ps256(f), acc);      \
    return _mm256_fmadd_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sc), 1)), \
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)), acc); \
}                                                                                           \
                                                                                            \
static inline float name##_tail(int64_t nb, int64_t b, const struct BT *wb, const int8_t *q, \
                                const float *da, const int32_t *qsum, __m256 acc)           \
{                                                                                           \
    float l[8];                                                                             \
    _mm256_storeu_ps(l, acc);                                                               \
    for (; b < nb; b++) {                                                                   \
        __m256i u = UW(&wb[b]);                                                             \
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u,                          \
                                        _mm256_loadu_si256((const __m256i *)(q + 32 * b))); \
        __m128i r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)); \
        r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));                                     \
        r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));                                   \
        int is = _mm_cvtsi128_si32(r) - qsum[b] * (1 << SH);                                  \
        l[b & 7] = fmaf(_cvtsh_ss(wb[b].d) * da[b], (float)is, l[b & 7]);                   \
    }                                                                                       \
    return red8(l);                                                                         \
}                                                                                           \
                                                                                            \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    int64_t nb = n / 32;                                                                    \
    for (int g = 0, q = (nr + 3) / 4; g < q; g++) {                                         \
        DEC4_ROWS(BT);                                                                      \
        for (int t = 0; t < nt; t++) {                                                      \
            const uint8_t *at = (const uint8_t *)a + (size_t)t * a_stride;                  \
            const int8_t *xq = (const int8_t *)at;                                          \
            const float *da = (const float *)(at + 32 * nb);                                \
            const int32_t *qsum = (const int32_t *)(at + 36 * nb);                          \
            __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;      \
            int64_t b = 0;                                                                  \
            for (; b + 16 <= nb; b += 16) {                                                 \
                LEG_STEP(name, BT, 0) LEG_STEP(name, BT, 1)                                 \
                LEG_STEP(name, BT, 2) LEG_STEP(name, BT, 3)                                 \
            }                                                                               \
            const __m256 acc[4] = { acc0, acc1, acc2, acc3 };                               \
            for (int i = 0; i < 4; i++)                                                     \
                if (ri[i] < nr)                                                             \
                    out[(size_t)t * o_stride + ri[i]] = name##_tail(nb, b, wr[i], xq, da, qsum, acc[i]); \
        }                                                                                   \
    }                                                                                       \
}

LEG_DEC(dec_q8_0, block_q8_0, u_q8_0, u2_q8_0, 7)
LEG_DEC(dec_q4_0, block_q4_0, u_q4_0, u2_q4_0, 3)
LEG_DEC(dec_q5_0, block_q5_0, u_q5_0, u2_q5_0, 4)
LEG_DEC(dec_iq4_nl, block_iq4_nl, u_iq4_nl, u2_iq4_nl, 7)

/*
 * Q4_K, Q5_K and Q6_K on plain RT_ACT_Q8_K activations, FOUR rows at a time (the activation
 * block is loaded once for them).  Per row and super-block the weights are unpacked
 * into 4 zmm of unsigned bytes (Q4_K: 0..15; Q5_K: 0..31; Q6_K: 0..63, the -32 taken off through the
 * bsums), maddubs against the activations gives int16 pairs, and vpdpwssd multiplies
 * them by the int16 sub-block scales and accumulates int32 lanes: exact (Q4_K: vpdpbusd
 * sums of 4 products packed to int16 for vpdpwssd instead, q4k_sb).  The four rows'
 * lanes are then reduced together (dec_rows4) into one int32 per row (and, for Q4/5_K,
 * the mins term imin), and the twin's f32 steps run as 4-lane vectors, lane = row:
 * acc = fma(d * da, (float)isum, acc) (Q4/5_K: then fma(-(dmin * da), (float)imin, acc)).
 */

/* 4 vectors of 16 int32 lanes (one per row) -> per 128-bit chunk c, lane i: row i's sum
 * of its chunk c */
static inline __m512i dec_rows4(__m512i v0, __m512i v1, __m512i v2, __m512i v3)
{
    __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(v0, v1), _mm512_unpackhi_epi32(v0, v1));
    __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi32(v2, v3), _mm512_unpackhi_epi32(v2, v3));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}

/* int16 lanes of a vector: the 256-bit halves set to lo and hi (as 0x80 | byte index for
 * vpshufb: the scale byte, high byte zero) */
static inline __m512i sc_idx(int lo, int hi)
{
    return pair(_mm256_set1_epi16((short)(0x8000 | lo)), _mm256_set1_epi16((short)(0x8000 | hi)));
}

/* Q4_K / Q5_K: the 16 bytes that open a super-block (f16 d, f16 dmin, the 12 scale
 * bytes) of four rows, row i in 128-bit lane i -> lane i: bytes 0..7 the 8 six-bit
 * scales, 8..15 the 8 mins (rt_q4k_scales' u[0..3], four rows at once, no scalar work):
 * with b = the scale bytes (lane bytes 4..15), j < 4: sc = b[j] & 63, m = b[j + 4] & 63;
 * j >= 4: sc = b[j + 4] & 15 | b[j - 4] >> 6 << 4, m = b[j + 4] >> 4 | b[j] >> 6 << 4 */
static inline __m512i k4_scales4(__m512i h)
{
    const __m512i ia = _mm512_broadcast_i32x4(_mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15,
                                                            8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i ib = _mm512_broadcast_i32x4(_mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7,
                                                            -1, -1, -1, -1, 8, 9, 10, 11));
    const __m512i ma = _mm512_broadcast_i32x4(_mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15,
                                                            63, 63, 63, 63, 0, 0, 0, 0));
    const __m512i mh = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0,
                                                            0, 0, 0, 0, 15, 15, 15, 15));
    __m512i x = _mm512_shuffle_epi8(h, ia), y = _mm512_shuffle_epi8(h, ib);
    /* low parts | the high nibbles of the last 4 mins | the 2 high bits (bits 6-7 -> 4-5;
     * what a 16-bit shift brings in from the next byte is masked off) */
    __m512i r = _mm512_ternarylogic_epi32(_mm512_and_si512(x, ma), _mm512_srli_epi16(x, 4), mh, 0xF8);
    return _mm512_ternarylogic_epi32(r, _mm512_srli_epi16(y, 2), _mm512_set1_epi8(0x30), 0xF8);
}

/* Q4_K / Q5_K super-block of one row: isum as 16 int32 partial sums (dec_rows4 reduces
 * them); sb: the row's 8 scale bytes in bytes 0..7 of every 128-bit lane; qh: Q5_K's
 * fifth bits, NULL for Q4_K */
/* always inlined: qh is a constant per caller (GCC 12 left the Q5_K one out of line) */
static inline __attribute__((always_inline)) __m512i kmin_sb(__m512i sb, const uint8_t *qs,
                                                             const uint8_t *qh, const __m512i al[4])
{
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i v0 = _mm512_loadu_si512((const void *)qs), v1 = _mm512_loadu_si512((const void *)(qs + 64));
    /* v0: low nibbles = sub-blocks 0 | 2, high = 1 | 3; v1: 4 | 6 and 5 | 7 */
    __m512i q[4] = { _mm512_and_si512(v0, m4), _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4),
                     _mm512_and_si512(v1, m4), _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4) };
    if (qh) {
        /* bit j of qh[l] is the fifth bit of element l of sub-block j: moved to bit 4 by
         * 16-bit shifts (what crosses a byte boundary lands outside bit 4) */
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
        const __m512i b4 = _mm512_set1_epi8(0x10);
        q[0] = _mm512_or_si512(q[0], _mm512_and_si512(_mm512_sllv_epi16(h, pair(_mm256_set1_epi16(4), _mm256_set1_epi16(2))), b4));
        q[1] = _mm512_or_si512(q[1], _mm512_and_si512(_mm512_sllv_epi16(h, pair(_mm256_set1_epi16(3), _mm256_set1_epi16(1))), b4));
        q[2] = _mm512_or_si512(q[2], _mm512_and_si512(_mm512_srlv_epi16(h, pair(_mm256_set1_epi16(0), _mm256_set1_epi16(2))), b4));
        q[3] = _mm512_or_si512(q[3], _mm512_and_si512(_mm512_srlv_epi16(h, pair(_mm256_set1_epi16(1), _mm256_set1_epi16(3))), b4));
    }
    __m512i s = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(q[0], al[0]),
                                    _mm512_shuffle_epi8(sb, sc_idx(0, 2)));
    s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(q[1], al[1]), _mm512_shuffle_epi8(sb, sc_idx(1, 3)));
    s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(q[2], al[2]), _mm512_shuffle_epi8(sb, sc_idx(4, 6)));
    return _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(q[3], al[3]), _mm512_shuffle_epi8(sb, sc_idx(5, 7)));
}

/* int16 lanes for vpshufb on the scale bytes (0x80 | index: the high byte zero), per
 * 128-bit chunk 4 words of one scale, 4 of another: chunks 0 and 1 scales a, b; chunks 2
 * and 3 scales c, d */
static inline __m512i sc_idx4(int a, int b, int c, int d)
{
    __m128i ab = _mm_unpacklo_epi64(_mm_set1_epi16((short)(0x8000 | a)), _mm_set1_epi16((short)(0x8000 | b)));
    __m128i cd = _mm_unpacklo_epi64(_mm_set1_epi16((short)(0x8000 | c)), _mm_set1_epi16((short)(0x8000 | d)));
    return pair(_mm256_broadcastsi128_si256(ab), _mm256_broadcastsi128_si256(cd));
}

/* Q4_K: vpdpbusd gives the sums of 4 products (|sum| <= 4 * 15 * 128, an int16), two
 * sub-blocks' of them are packed to int16 (vpackssdw: exact) and one vpdpwssd multiplies
 * them by their scales: 6 multiplies a row and super-block instead of 8 (maddubs +
 * vpdpwssd per vector); the integer sum is the same, so are the bits */
static inline __m512i q4k_sb(const struct block_q4_K *w, __m512i sb, const __m512i al[4])
{
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i v0 = _mm512_loadu_si512((const void *)w->qs), v1 = _mm512_loadu_si512((const void *)(w->qs + 64));
    /* sub-blocks 0 | 2, 1 | 3, 4 | 6, 5 | 7 */
    __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v0, m4), al[0]);
    __m512i p1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4), al[1]);
    __m512i p2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v1, m4), al[2]);
    __m512i p3 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4), al[3]);
    /* per chunk: 4 words of p0 (or p2), 4 of p1 (p3) */
    __m512i s = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_packs_epi32(p0, p1),
                                    _mm512_shuffle_epi8(sb, sc_idx4(0, 1, 2, 3)));
    return _mm512_dpwssd_epi32(s, _mm512_packs_epi32(p2, p3), _mm512_shuffle_epi8(sb, sc_idx4(4, 5, 6, 7)));
}
static inline __m512i q5k_sb(const struct block_q5_K *w, __m512i sb, const __m512i al[4])
{
    return kmin_sb(sb, w->qs, w->qh, al);
}

/* the sum of a vector's four 128-bit chunks */
static inline __m128i chunks4(__m512i r)
{
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(r), _mm512_extracti64x4_epi64(r, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* The per-row scalar work is gone: the 16 opening bytes of the 4 rows' super-blocks
 * (d, dmin, scales; Q4_K and Q5_K alike) are loaded as one zmm, the scales and mins of
 * all 4 decoded at once (k4_scales4), d and dmin taken out with one word permute, and
 * imin = sum_j m_j * bsp_j of the 4 rows is one vpdpwssd on the mins transposed (chunk
 * c, dword i: row i's m_2c, m_2c+1) against the pair sums (bsp_2c, bsp_2c+1; each
 * |bsp| <= 32 * 128 fits int16).  Integer sums are exact, so the bits are the twin's. */
#define KMIN_DEC(name, BT, SB)                                                             \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    int64_t nsb = n / 256;                                                                  \
    /* row i's m_2c, m_2c+1 (words 8i + 2c, + 1 of the zero-extended mins) to chunk c,     \
     * dword i; d and dmin of the 4 rows (words 0 and 1 of each chunk) to words 0..7 */     \
    const __m512i mz = _mm512_broadcast_i32x4(_mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1,   \
                                                            12, -1, 13, -1, 14, -1, 15, -1)); \
    const __m512i mt = _mm512_setr_epi32(0x00010000, 0x00090008, 0x00110010, 0x00190018,   \
                                         0x00030002, 0x000b000a, 0x00130012, 0x001b001a,   \
                                         0x00050004, 0x000d000c, 0x00150014, 0x001d001c,   \
                                         0x00070006, 0x000f000e, 0x00170016, 0x001f001e);  \
    const __m512i dt = _mm512_castsi128_si512(_mm_setr_epi16(0, 8, 16, 24, 1, 9, 17, 25)); \
    const __m512i bt = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);   \
    for (int t = 0; t < nt; t++) {                                                          \
        const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride); \
        for (int g = 0, q = (nr + 3) / 4; g < q; g++) {                                     \
            DEC4_ROWS(BT);                                                                  \
            __m128 acc = _mm_setzero_ps();                                                  \
            for (int64_t b = 0; b < nsb; b++) {                                             \
                DEC4_PREFETCH(BT, b);                                                       \
                __m512i al[4];                                                              \
                __m512i x0 = _mm512_loadu_si512((const void *)x[b].qs);                     \
                __m512i x1 = _mm512_loadu_si512((const void *)(x[b].qs + 64));              \
                __m512i x2 = _mm512_loadu_si512((const void *)(x[b].qs + 128));             \
                __m512i x3 = _mm512_loadu_si512((const void *)(x[b].qs + 192));             \
                al[0] = _mm512_shuffle_i64x2(x0, x1, 0x44);   /* elements 0..31 | 64..95 */ \
                al[1] = _mm512_shuffle_i64x2(x0, x1, 0xEE);   /* 32..63 | 96..127 */        \
                al[2] = _mm512_shuffle_i64x2(x2, x3, 0x44);                                 \
                al[3] = _mm512_shuffle_i64x2(x2, x3, 0xEE);                                 \
                /* the activation's 8 sub-block sums (pairs of bsums) as int16, chunk c:   \
                 * every dword = bsp_2c, bsp_2c+1 */                                        \
                __m256i bsp = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x[b].bsums), \
                                                _mm256_set1_epi16(1));                      \
                __m512i bsq = _mm512_permutexvar_epi32(bt, _mm512_castsi128_si512(_mm256_cvtepi32_epi16(bsp))); \
                __m512i hd = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)&wr[0][b])); \
                hd = _mm512_inserti32x4(hd, _mm_loadu_si128((const __m128i *)&wr[1][b]), 1); \
                hd = _mm512_inserti32x4(hd, _mm_loadu_si128((const __m128i *)&wr[2][b]), 2); \
                hd = _mm512_inserti32x4(hd, _mm_loadu_si128((const __m128i *)&wr[3][b]), 3); \
                __m512i sm = k4_scales4(hd);                                                \
                __m512i r = dec_rows4(SB(&wr[0][b], _mm512_shuffle_i64x2(sm, sm, 0x00), al), \
                                      SB(&wr[1][b], _mm512_shuffle_i64x2(sm, sm, 0x55), al), \
                                      SB(&wr[2][b], _mm512_shuffle_i64x2(sm, sm, 0xAA), al), \
                                      SB(&wr[3][b], _mm512_shuffle_i64x2(sm, sm, 0xFF), al)); \
                __m128i is = chunks4(r);                                                    \
                __m512i mn = _mm512_permutexvar_epi16(mt, _mm512_shuffle_epi8(sm, mz));     \
                __m128i im = chunks4(_mm512_dpwssd_epi32(_mm512_setzero_si512(), mn, bsq)); \
                __m256 ddm = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(dt, hd))); \
                __m128 da = _mm_set1_ps(x[b].d);                                            \
                __m128 d = _mm256_castps256_ps128(ddm), dm = _mm256_extractf128_ps(ddm, 1); \
                acc = _mm_fmadd_ps(_mm_mul_ps(d, da), _mm_cvtepi32_ps(is), acc);            \
                acc = _mm_fmadd_ps(_mm_xor_ps(_mm_mul_ps(dm, da), _mm_set1_ps(-0.0f)),      \
                                   _mm_cvtepi32_ps(im), acc);                               \
            }                                                                               \
            float l[4];                                                                     \
            _mm_storeu_ps(l, acc);                                                          \
            DEC4_STORE(t);                                                                  \
        }                                                                                   \
    }                                                                                       \
}

KMIN_DEC(dec_q4_k, block_q4_K, q4k_sb)
KMIN_DEC(dec_q5_k, block_q5_K, q5k_sb)

/* Q6_K: q = low 4 bits | 2 high bits << 4 in 0..63 (value + 32); isum = sum sc * q * a -
 * 32 * sum sc_i * bsum_i, one int32 per row */
static inline __m512i q6k_sb(const struct block_q6_K *w, const __m512i *xa, __m256i bs)
{
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i cl = pair(_mm256_set1_epi16(4), _mm256_set1_epi16(2));
    const __m512i ch = pair(_mm256_set1_epi16(0), _mm256_set1_epi16(2));
    __m256i sc8 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
    __m512i sc = _mm512_castsi256_si512(sc8);
    __m512i s = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
        __m512i l = _mm512_loadu_si512((const void *)(w->ql + 64 * h));
        __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w->qh + 32 * h)));
        /* elements 128h + 0..63: qh bits 0-1 | 2-3; 64..127: bits 4-5 | 6-7 (to bits 4-5) */
        __m512i qlo = _mm512_ternarylogic_epi32(l, m4, _mm512_and_si512(_mm512_sllv_epi16(hb, cl), m30), 0xEA);
        __m512i qhi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), m4,
                                                _mm512_and_si512(_mm512_srlv_epi16(hb, ch), m30), 0xEA);
        /* scale of element e: e / 16; chunk c of vector v: scale 4v + c */
        const __m512i i0 = _mm512_set_epi64(0x0003000300030003LL + 0x0008000800080008LL * h, 0x0003000300030003LL + 0x0008000800080008LL * h,
                                            0x0002000200020002LL + 0x0008000800080008LL * h, 0x0002000200020002LL + 0x0008000800080008LL * h,
                                            0x0001000100010001LL + 0x0008000800080008LL * h, 0x0001000100010001LL + 0x0008000800080008LL * h,
                                            0x0000000000000000LL + 0x0008000800080008LL * h, 0x0000000000000000LL + 0x0008000800080008LL * h);
        const __m512i i1 = _mm512_add_epi16(i0, _mm512_set1_epi16(4));
        s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(qlo, xa[2 * h]), _mm512_permutexvar_epi16(i0, sc));
        s = _mm512_dpwssd_epi32(s, _mm512_maddubs_epi16(qhi, xa[2 * h + 1]), _mm512_permutexvar_epi16(i1, sc));
    }
    __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc8), 5);
    return _mm512_sub_epi32(s, _mm512_castsi256_si512(off));
}

#define KONE_DEC(name, BT, SB)                                                             \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                     \
{                                                                                          \
    int64_t nsb = n / 256;                                                                 \
    for (int t = 0; t < nt; t++) {                                                         \
        const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride); \
        for (int g = 0, q = (nr + 3) / 4; g < q; g++) {                                    \
            DEC4_ROWS(BT);                                                                  \
            __m128 acc = _mm_setzero_ps();                                                 \
            for (int64_t b = 0; b < nsb; b++) {                                            \
                DEC4_PREFETCH(BT, b);                                                       \
                __m512i xa[4];                                                             \
                for (int k = 0; k < 4; k++)                                                \
                    xa[k] = _mm512_loadu_si512((const void *)(x[b].qs + 64 * k));          \
                __m256i bs = _mm256_loadu_si256((const __m256i *)x[b].bsums);              \
                __m512i r = dec_rows4(SB(&wr[0][b], xa, bs), SB(&wr[1][b], xa, bs),        \
                                      SB(&wr[2][b], xa, bs), SB(&wr[3][b], xa, bs));       \
                __m128i is = chunks4(r);                                                   \
                __m128 d = _mm_cvtph_ps(_mm_setr_epi16((short)wr[0][b].d, (short)wr[1][b].d, \
                                                       (short)wr[2][b].d, (short)wr[3][b].d, 0, 0, 0, 0)); \
                acc = _mm_fmadd_ps(_mm_mul_ps(d, _mm_set1_ps(x[b].d)), _mm_cvtepi32_ps(is), acc); \
            }                                                                              \
            float l[4];                                                                    \
            _mm_storeu_ps(l, acc);                                                         \
            DEC4_STORE(t);                                                                 \
        }                                                                                  \
    }                                                                                      \
}

/* IQ4_XS: the table values + 128 as unsigned bytes; vpdpbusd (maddubs pairs could
 * saturate: 241 * 127 * 2 > 32767); the nibbles of 16 bytes are elements 0..15 and
 * 16..31 of one sub-block, so the activation's 16-element halves are regrouped to
 * match; the int32 lanes times the scales ls - 32, minus 128 * (ls - 32) * the
 * activation's sub-block sums: one int32 per row as for Q6_K */
static inline __m512i iq4xs_sb(const struct block_iq4_xs *w, const __m512i *xa, __m256i bs)
{
    const __m512i tab = _mm512_broadcast_i32x4(_mm_xor_si128(
        _mm_loadu_si128((const __m128i *)rt_kvalues_iq4nl), _mm_set1_epi8(-128)));
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i d[2];
    for (int h = 0; h < 2; h++) {
        __m512i v = _mm512_loadu_si512((const void *)(w->qs + 64 * h));
        __m512i lo = _mm512_shuffle_epi8(tab, _mm512_and_si512(v, m4));
        __m512i hi = _mm512_shuffle_epi8(tab, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
        /* chunk c: elements 0..15 (lo) and 16..31 (hi) of sub-block 4h + c */
        __m512i al = _mm512_shuffle_i64x2(xa[2 * h], xa[2 * h + 1], 0x88);
        __m512i ah = _mm512_shuffle_i64x2(xa[2 * h], xa[2 * h + 1], 0xDD);
        d[h] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, al), hi, ah);
    }
    uint32_t sl;
    memcpy(&sl, w->scales_l, 4);
    __m256i ls = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)sl),
                                                    _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                  _mm256_set1_epi32(15));
    __m256i lh = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w->scales_h),
                                                    _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                  _mm256_set1_epi32(3));
    ls = _mm256_sub_epi32(_mm256_or_si256(ls, _mm256_slli_epi32(lh, 4)), _mm256_set1_epi32(32));
    __m512i lz = _mm512_castsi256_si512(ls);
    __m512i s = _mm512_add_epi32(
        _mm512_mullo_epi32(d[0], _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), lz)),
        _mm512_mullo_epi32(d[1], _mm512_permutexvar_epi32(_mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7), lz)));
    __m256i off = _mm256_slli_epi32(_mm256_mullo_epi32(ls, _mm256_madd_epi16(bs, _mm256_set1_epi16(1))), 7);
    return _mm512_sub_epi32(s, _mm512_castsi256_si512(off));
}

KONE_DEC(dec_q6_k, block_q6_K, q6k_sb)
KONE_DEC(dec_iq4_xs, block_iq4_xs, iq4xs_sb)

static rt_quant_fn q8_0_base;   /* the Q8_0 quantizer under this table (same bytes) */

/* RT_ACT_Q8_0S: Q8_0 blocks from q8_0_base, split (kern.h); sum(q) = sum(q ^ 0x80) -
 * 128 * 32 through vpsadbw */
static void quant_q8_0s(const float *x, void *dst, int64_t n)
{
    int64_t nb = n / 32;
    int8_t *q = dst;
    float *dp = (float *)((uint8_t *)dst + 32 * nb);
    int32_t *sp = (int32_t *)((uint8_t *)dst + 36 * nb);
    struct block_q8_0 tmp[16];
    for (int64_t b0 = 0; b0 < nb; b0 += 16) {
        int m = nb - b0 < 16 ? (int)(nb - b0) : 16;
        q8_0_base(x + 32 * b0, tmp, 32 * m);
        for (int j = 0; j < m; j++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)tmp[j].qs);
            _mm256_storeu_si256((__m256i *)(q + 32 * (b0 + j)), v);
            __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8(-128)),
                                          _mm256_setzero_si256());
            __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            s2 = _mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2));
            int32_t sum = (int32_t)_mm_cvtsi128_si64(s2) - 128 * 32;
            float d = _cvtsh_ss(tmp[j].d);
            memcpy(&dp[b0 + j], &d, 4);
            memcpy(&sp[b0 + j], &sum, 4);
        }
    }
}

void rt_kern_avx512_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
#define K(dt, ac, fn) tab[dt] = (struct rt_kern){ .dtype = dt, .act = ac, .dot = fn, .isa = RT_ISA_AVX512, .gemm_act = ac }
    K(DT_Q4_0, RT_ACT_Q8_0, dot_q4_0_avx512);
    K(DT_Q8_0, RT_ACT_Q8_0, dot_q8_0_avx512);
    K(DT_IQ4_NL, RT_ACT_Q8_0, dot_iq4_nl_avx512);
    K(DT_Q5_0, RT_ACT_Q8_0, dot_q5_0_avx512);
    K(DT_Q4_K, RT_ACT_Q8_K, dot_q4_k_avx512);
    K(DT_Q6_K, RT_ACT_Q8_K, dot_q6_k_avx512);
#undef K
#define D(dt, fn) (tab[dt].dec = fn, tab[dt].dec_act = RT_ACT_Q8_0S)
    D(DT_Q8_0, dec_q8_0);
    D(DT_Q4_0, dec_q4_0);
    D(DT_Q5_0, dec_q5_0);
    D(DT_IQ4_NL, dec_iq4_nl);
#undef D
    tab[DT_Q4_K].dec = dec_q4_k;
    tab[DT_Q5_K].dec = dec_q5_k;
    tab[DT_Q6_K].dec = dec_q6_k;
    tab[DT_IQ4_XS].dec = dec_iq4_xs;
    tab[DT_Q4_K].dec_act = tab[DT_Q5_K].dec_act = tab[DT_Q6_K].dec_act = RT_ACT_Q8_K;
    tab[DT_IQ4_XS].dec_act = RT_ACT_Q8_K;
    q8_0_base = q[RT_ACT_Q8_0];
    q[RT_ACT_Q8_0S] = quant_q8_0s;
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
