/*
 * kern_qgemm_avx2.c - AVX2 matrix kernels for the quantized types (kern.h's gemm: several
 * weight rows x several tokens, the prompt path), compiled with -mavx2 -mfma -mf16c (the
 * Makefile's *_avx2.c rule); rt_kern_avx2_table (kern_avx2.c, the dot kernels) calls
 * rt_kern_avx2_qgemm_table to add them.  Why: the dots unpack a weight block group once
 * and loop over up to 8 tokens, but redo per token what depends on the weights alone
 * (|w| and the sign source of mul_sum_i8, the scales' conversion) and reduce every
 * (row, token) output on its own; here a register tile of rows x tokens shares that
 * work and reduces 8 outputs at once.
 *
 * Every output has exactly the bits of the same type's AVX2 dot (and so of the scalar
 * twin in kern_ref.c): the same exact integer per block (or super-block), then the
 * dot's f32 operations in its order, vectorized ACROSS the 8 (row, token) outputs of a
 * tile instead of across blocks:
 *   legacy blocks of 32 (Q4_0, Q5_0, Q8_0, IQ4_NL on Q8_0 activations; Q4_1, Q5_1 on
 *     Q8_1): the dot keeps one 8-lane accumulator, lane b % 8 getting fma(dw * da,
 *     (float)isum, .) for block b (then fma(m, s, .) for Q4_1/Q5_1), then the tail
 *     blocks past the last group of 8 scalar into lane b % 8, then red8.
 *     Here accumulator j (j = b % 8) has one lane per output of the tile; the same fmas
 *     per lane, then the lanes are read back per output, the tail and red8 as the dot.
 *   super-blocks of 256 (Q2_K..Q6_K, IQ4_XS; Q8_K activations): per super-block the dot's pair
 *     fmaf(dw * dx, isum, acc), fmaf(-(dmin * dx), imin, acc) (or one fmaf on isum - imin
 *     for types whose s16 term is an offset), one lane per output.
 * The integer sums are those of mul_sum_i8 / sb_dot (kern_avx2.h), summed in another
 * order (exact integers: any order gives the same value).
 */
#include "kern.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../formats/dtype.h"
#include "kern_avx2.h"
#include "../common/banned.h"

/* the dots (set by the table function from kern_avx2.c's entries): a call of very few
 * tokens (under 6 for the legacy types, under 3 for the super-blocks) runs through
 * them, the tile's packing not paying there */
static rt_dot_fn dot_of[RT_NKERN];

static void rows_by_dot(rt_dot_fn dot, int64_t n, const uint8_t *w, size_t w_stride, int nr,
                        const void *a, size_t a_stride, int nt, float *out, size_t o_stride)
{
    for (int r = 0; r < nr; r++)
        dot(n, w + (size_t)r * w_stride, a, a_stride, nt, out + r, o_stride);
}

/* ---------------------------------------------------------------------------------
 * Legacy blocks of 32 on Q8_0 activations (Q4_0, Q5_0, Q8_0, IQ4_NL: signed weights) and on
 * Q8_1 activations (Q4_1, Q5_1: unsigned weights, mul_sum_u8, and the dot's second fma
 * per block, fma(m, s, acc): weight min times the activation block's d * sum).
 *
 * A tile is LG_R = 4 rows x LG_T = 2 tokens (lane r * LG_T + t).  For a column chunk of
 * LG_KC blocks the tile's rows are unpacked once into pk (signed bytes and their |q|,
 * the dw of each lane), then every token pair of the call runs over it: per block 8
 * sign + maddubs + madd (mul_sum_i8 with |w| shared) and one 8-vector reduction
 * (unpack + add, as red8v below) for the 8 outputs.
 * The activation scales are converted once per call into a table (block-major, the
 * tokens of a block side by side: a pair is one 8-byte broadcast).
 */
#define LG_R  4
#define LG_T  2
#define LG_KC 64      /* blocks per column chunk (a multiple of 8): 16 KiB of pk */
#define LG_DA 16384   /* floats in each activation scale table (64 KiB of stack) */

struct lg_blk {
    __m256i q, aq;    /* signed weights, |q| */
};

/* one block of the tile: the 8 exact sums, lane r * 2 + t (each row's two tokens
 * reduced as they come: fewer live registers) */
#define LG_ROW(r)                                                                           \
    __m256i h##r##_;                                                                        \
    {                                                                                       \
        __m256i q = wk[r].q, aq = wk[r].aq;                                                 \
        __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(y0, q)), one); \
        __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(y1, q)), one); \
        h##r##_ = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1)); \
    }

#define LG_ROWU(r)                                                                          \
    __m256i h##r##_;                                                                        \
    {                                                                                       \
        __m256i q = wk[r].q;                                                                \
        __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y0), one);                   \
        __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y1), one);                   \
        h##r##_ = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1)); \
    }

/* uns: unsigned weights (mul_sum_u8: no sign trick) */
static inline __m256i lg_pairs(const struct lg_blk *wk, const int8_t *y0p, const int8_t *y1p,
                               int uns)
{
    const __m256i one = _mm256_set1_epi16(1);
    __m256i y0 = _mm256_loadu_si256((const __m256i *)y0p);
    __m256i y1 = _mm256_loadu_si256((const __m256i *)y1p);
    __m256i h0, h1, h2, h3;
    if (uns) {
        LG_ROWU(0) LG_ROWU(1) LG_ROWU(2) LG_ROWU(3)
        h0 = h0_; h1 = h1_; h2 = h2_; h3 = h3_;
    } else {
        LG_ROW(0) LG_ROW(1) LG_ROW(2) LG_ROW(3)
        h0 = h0_; h1 = h1_; h2 = h2_; h3 = h3_;
    }
    __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi64(h0, h1), _mm256_unpackhi_epi64(h0, h1));
    __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi64(h2, h3), _mm256_unpackhi_epi64(h2, h3));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

/* one weight block b of a row: its 32 values, its f16 scale and (Q4_1/Q5_1) f16 min */
typedef void (*lg_unpack_fn)(const uint8_t *row, int64_t b, __m256i *q, uint16_t *d, uint16_t *m);

#define LG_UNPACK(name, BT, WF, M)                                                         \
static void name(const uint8_t *row, int64_t b, __m256i *q, uint16_t *d, uint16_t *m)      \
{                                                                                           \
    const struct BT *blk = (const struct BT *)row + b;                                      \
    *q = WF(blk);                                                                           \
    *d = blk->d;                                                                            \
    *m = M;                                                                                 \
}

LG_UNPACK(un_lg_q4_0, block_q4_0, w_q4_0, 0)
LG_UNPACK(un_lg_q5_0, block_q5_0, w_q5_0, 0)
LG_UNPACK(un_lg_q8_0, block_q8_0, w_q8_0, 0)
LG_UNPACK(un_lg_iq4_nl, block_iq4_nl, w_iq4_nl, 0)
LG_UNPACK(un_lg_q4_1, block_q4_1, w_q4_1, blk->m)
LG_UNPACK(un_lg_q5_1, block_q5_1, w_q5_1, blk->m)

/* activation block b of a row: Q8_0 (d, qs) or Q8_1 (d, s, qs) */
#define LG_AB(mn) ((mn) ? sizeof(struct block_q8_1) : sizeof(struct block_q8_0))
static inline const uint8_t *lg_ablk(const uint8_t *x, int64_t b, int mn)
{
    return x + (size_t)b * LG_AB(mn);
}
static inline uint16_t lg_h(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}
#define LG_AQ(blk, mn) ((const int8_t *)(blk) + ((mn) ? 4 : 2))

#define LG_STEP(j)                                                                          \
    {                                                                                       \
        __m256i v = lg_pairs(pk[k + (j)], LG_AQ(lg_ablk(x0, k + (j), mn), mn),              \
                             LG_AQ(lg_ablk(x1, k + (j), mn), mn), mn);                      \
        size_t di = (size_t)(k0 + k + (j)) * ntp + 2 * tp;                                  \
        __m256 dav = _mm256_castpd_ps(_mm256_broadcast_sd((const double *)&da[di]));        \
        c##j = _mm256_fmadd_ps(_mm256_mul_ps(dwp[k + (j)], dav), _mm256_cvtepi32_ps(v), c##j); \
        if (mn)                                                                             \
            c##j = _mm256_fmadd_ps(mwp[k + (j)],                                            \
                                   _mm256_castpd_ps(_mm256_broadcast_sd((const double *)&sa[di])), c##j); \
    }

/* mn: Q4_1/Q5_1 (unsigned weights, the min term, Q8_1 activations) */
static inline __attribute__((always_inline)) void
lg_gemm(int64_t n, const uint8_t *w, size_t w_stride, int nr, const uint8_t *a, size_t a_stride,
        int nt, float *out, size_t o_stride, lg_unpack_fn un, int mn)
{
    const int64_t nb = n / 32, nb8 = nb & ~(int64_t)7;
    int slab = nb8 ? (int)(LG_DA / nb8) & ~1 : RT_GEMM_MAXT;
    if (slab > RT_GEMM_MAXT)
        slab = RT_GEMM_MAXT;
    _Alignas(32) float da[LG_DA + 2 * RT_GEMM_MAXT], sa[LG_DA + 2 * RT_GEMM_MAXT];   /* sa: mn only */
    _Alignas(32) struct lg_blk pk[LG_KC][LG_R];
    _Alignas(32) __m256 dwp[LG_KC], mwp[LG_KC];
    _Alignas(32) __m256 park[RT_GEMM_MAXT / LG_T][8];

    for (int s0 = 0; s0 < nt; s0 += slab) {
        const int ns = nt - s0 < slab ? nt - s0 : slab, ntp = (ns + 1) & ~1;
        const uint8_t *as = a + (size_t)s0 * a_stride;
        /* da[b * ntp + t] (and sa: Q8_1's s): a token past ns repeats token 0 of the
         * slab (never stored) */
        for (int t = 0; t < ntp; t++) {
            const uint8_t *x = as + (size_t)(t < ns ? t : 0) * a_stride;
            for (int64_t b = 0; b < nb8; b++) {
                da[(size_t)b * ntp + t] = _cvtsh_ss(lg_h(lg_ablk(x, b, mn)));
                if (mn)
                    sa[(size_t)b * ntp + t] = _cvtsh_ss(lg_h(lg_ablk(x, b, mn) + 2));
            }
        }
        for (int r0 = 0; r0 < nr; r0 += LG_R) {
            const int mr = nr - r0 < LG_R ? nr - r0 : LG_R;
            const uint8_t *wr[LG_R];
            for (int r = 0; r < LG_R; r++)   /* a row past nr repeats row r0 (never stored) */
                wr[r] = w + (size_t)(r0 + (r < mr ? r : 0)) * w_stride;
            for (int64_t k0 = 0; k0 < nb8; k0 += LG_KC) {
                const int kc = nb8 - k0 < LG_KC ? (int)(nb8 - k0) : LG_KC;
                for (int k = 0; k < kc; k++) {
                    float dwf[8], mwf[8];
                    for (int r = 0; r < LG_R; r++) {
                        __m256i q;
                        uint16_t dh, mh;
                        un(wr[r], k0 + k, &q, &dh, &mh);
                        pk[k][r].q = q;
                        pk[k][r].aq = _mm256_sign_epi8(q, q);
                        dwf[LG_T * r] = dwf[LG_T * r + 1] = _cvtsh_ss(dh);
                        mwf[LG_T * r] = mwf[LG_T * r + 1] = _cvtsh_ss(mh);
                    }
                    dwp[k] = _mm256_loadu_ps(dwf);
                    if (mn)
                        mwp[k] = _mm256_loadu_ps(mwf);
                }
                for (int tp = 0; tp < ntp / 2; tp++) {
                    const uint8_t *x0 = lg_ablk(as + (size_t)(2 * tp) * a_stride, k0, mn);
                    const uint8_t *x1 = lg_ablk(as + (size_t)(2 * tp + 1 < ns ? 2 * tp + 1 : 0) * a_stride, k0, mn);
                    __m256 c0, c1, c2, c3, c4, c5, c6, c7;
                    if (k0 == 0) {
                        c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = _mm256_setzero_ps();
                    } else {
                        c0 = park[tp][0]; c1 = park[tp][1]; c2 = park[tp][2]; c3 = park[tp][3];
                        c4 = park[tp][4]; c5 = park[tp][5]; c6 = park[tp][6]; c7 = park[tp][7];
                    }
                    for (int k = 0; k < kc; k += 8) {
                        LG_STEP(0) LG_STEP(1) LG_STEP(2) LG_STEP(3)
                        LG_STEP(4) LG_STEP(5) LG_STEP(6) LG_STEP(7)
                    }
                    park[tp][0] = c0; park[tp][1] = c1; park[tp][2] = c2; park[tp][3] = c3;
                    park[tp][4] = c4; park[tp][5] = c5; park[tp][6] = c6; park[tp][7] = c7;
                }
            }
            /* per output: its lanes of the 8 accumulators, the tail blocks as the dot */
            for (int t = 0; t < ns; t++) {
                const uint8_t *x = as + (size_t)t * a_stride;
                for (int r = 0; r < mr; r++) {
                    float l[8];
                    for (int j = 0; j < 8; j++) {
                        float lane[8];
                        if (nb8 == 0) {
                            l[j] = 0.0f;
                            continue;
                        }
                        _mm256_storeu_ps(lane, park[t / 2][j]);
                        l[j] = lane[LG_T * r + t % 2];
                    }
                    for (int64_t c = nb8; c < nb; c++) {
                        __m256i q;
                        uint16_t dh, mh;
                        const uint8_t *xc = lg_ablk(x, c, mn);
                        __m256i y = _mm256_loadu_si256((const __m256i *)LG_AQ(xc, mn));
                        un(wr[r], c, &q, &dh, &mh);
                        int is = hsum_i32(mn ? mul_sum_u8(q, y) : mul_sum_i8(q, y));
                        l[c & 7] = fmaf(_cvtsh_ss(dh) * _cvtsh_ss(lg_h(xc)), (float)is, l[c & 7]);
                        if (mn)
                            l[c & 7] = fmaf(_cvtsh_ss(mh), _cvtsh_ss(lg_h(xc + 2)), l[c & 7]);
                    }
                    out[(size_t)(s0 + t) * o_stride + r0 + r] = red8(l);
                }
            }
        }
    }
}

#define LG_GEMM(name, DT, UN, MN)                                                            \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    if (nt < 6 || (n / 32) * 2 > LG_DA) {   /* a few tokens: the dot; a huge row: too */  \
        rows_by_dot(dot_of[DT], n, w, w_stride, nr, a, a_stride, nt, out, o_stride);        \
        return;                                                                             \
    }                                                                                       \
    lg_gemm(n, w, w_stride, nr, a, a_stride, nt, out, o_stride, UN, MN);                    \
}

LG_GEMM(gemm_q4_0_avx2, DT_Q4_0, un_lg_q4_0, 0)
LG_GEMM(gemm_q5_0_avx2, DT_Q5_0, un_lg_q5_0, 0)
LG_GEMM(gemm_q8_0_avx2, DT_Q8_0, un_lg_q8_0, 0)
LG_GEMM(gemm_iq4_nl_avx2, DT_IQ4_NL, un_lg_iq4_nl, 0)
LG_GEMM(gemm_q4_1_avx2, DT_Q4_1, un_lg_q4_1, 1)
LG_GEMM(gemm_q5_1_avx2, DT_Q5_1, un_lg_q5_1, 1)

/* ---------------------------------------------------------------------------------
 * Super-blocks of 256 on Q8_K activations (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; IQ4_XS below).
 *
 * A tile is KG_R = 4 rows x KG_T = 2 tokens (lane r * KG_T + t).  Per super-block the
 * tile's rows are unpacked once (kern_avx2.h's struct sb_w, as the dot), then every
 * token pair of the call runs over them: 8 maddubs + madd by the scales per output, as
 * sb_dot, the 8 outputs' sums (and their s16 terms) reduced at once, and the dot's
 * fmaf pair per super-block in the 8 lanes; the accumulators of the token pairs live in
 * a stack array between super-blocks.
 */
#define KG_R 4
#define KG_T 2

/* 8 vectors of 8 int32 -> one vector of their 8 sums (lane i: the sum of p_i) */
static inline __m256i red8v(__m256i p0, __m256i p1, __m256i p2, __m256i p3, __m256i p4,
                            __m256i p5, __m256i p6, __m256i p7)
{
    __m256i h0 = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
    __m256i h1 = _mm256_add_epi32(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
    __m256i h2 = _mm256_add_epi32(_mm256_unpacklo_epi32(p4, p5), _mm256_unpackhi_epi32(p4, p5));
    __m256i h3 = _mm256_add_epi32(_mm256_unpacklo_epi32(p6, p7), _mm256_unpackhi_epi32(p6, p7));
    __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi64(h0, h1), _mm256_unpackhi_epi64(h0, h1));
    __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi64(h2, h3), _mm256_unpackhi_epi64(h2, h3));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

#define KG_ROW(r)                                                                           \
    {                                                                                       \
        __m256i q = sw[r].q[k], sc = sw[r].sc[k];                                           \
        s##r##0 = _mm256_add_epi32(s##r##0, _mm256_madd_epi16(_mm256_maddubs_epi16(q, y0), sc)); \
        s##r##1 = _mm256_add_epi32(s##r##1, _mm256_madd_epi16(_mm256_maddubs_epi16(q, y1), sc)); \
    }

/* the 8 outputs of a tile on one super-block: isum per lane */
static inline __attribute__((always_inline)) __m256i kg_is(const struct sb_w *sw, const struct block_q8_K *x0,
                                                           const struct block_q8_K *x1)
{
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00,
            s21 = s00, s30 = s00, s31 = s00;
    for (int k = 0; k < 8; k++) {
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(x0->qs + 32 * k));
        __m256i y1 = _mm256_loadu_si256((const __m256i *)(x1->qs + 32 * k));
        KG_ROW(0) KG_ROW(1) KG_ROW(2) KG_ROW(3)
    }
    return red8v(s00, s01, s10, s11, s20, s21, s30, s31);
}

/* isum and imin (the s16 term: 16 coefficients of the 16 bsums) per lane */
static inline __attribute__((always_inline)) void kg_pairs(const struct sb_w *sw, const struct block_q8_K *x0,
                                                           const struct block_q8_K *x1, __m256i *is, __m256i *im)
{
    *is = kg_is(sw, x0, x1);
    __m256i b0 = bsums16(x0), b1 = bsums16(x1);
    *im = red8v(_mm256_madd_epi16(b0, sw[0].s16), _mm256_madd_epi16(b1, sw[0].s16),
                _mm256_madd_epi16(b0, sw[1].s16), _mm256_madd_epi16(b1, sw[1].s16),
                _mm256_madd_epi16(b0, sw[2].s16), _mm256_madd_epi16(b1, sw[2].s16),
                _mm256_madd_epi16(b0, sw[3].s16), _mm256_madd_epi16(b1, sw[3].s16));
}

/* Q4_K / Q5_K: one min per pair of bsums (s16 = m0 m0 m1 m1 ... m7 m7), so imin is a
 * sum of 8 products m_j * (bsums 2j + 2j+1): the pair sums of both tokens in one hadd
 * (each at most 2 x 16 x 128: int16), one madd per row by the mins rearranged by pm_s16,
 * two hadd and a 128-bit transpose to the tile's lanes.  The same integers as
 * kg_pairs's imin (exact), in 10 instructions instead of 29. */
static inline void pm_s16(struct sb_w *w)
{
    /* m0..m3 twice in the low 128 bits, m4..m7 twice in the high */
    const __m256i idx = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 0, 1, 4, 5, 8, 9, 12, 13,
                                         0, 1, 4, 5, 8, 9, 12, 13, 0, 1, 4, 5, 8, 9, 12, 13);
    w->s16 = _mm256_shuffle_epi8(w->s16, idx);
}
static inline void un_q4_k_pm(const struct block_q4_K *b, struct sb_w *w)
{
    un_q4_k(b, w);
    pm_s16(w);
}
static inline void un_q5_k_pm(const struct block_q5_K *b, struct sb_w *w)
{
    un_q5_k(b, w);
    pm_s16(w);
}

static inline __attribute__((always_inline)) void kg_pairs_pm(const struct sb_w *sw, const struct block_q8_K *x0,
                                                              const struct block_q8_K *x1, __m256i *is, __m256i *im)
{
    *is = kg_is(sw, x0, x1);
    /* lanes: t0 pairs 0..3, t1 pairs 0..3 | t0 pairs 4..7, t1 pairs 4..7 */
    __m256i bp = _mm256_hadd_epi16(bsums16(x0), bsums16(x1));
    /* per row: [t0 01, t0 23, t1 01, t1 23 | the same for pairs 4..7] */
    __m256i h01 = _mm256_hadd_epi32(_mm256_madd_epi16(bp, sw[0].s16), _mm256_madd_epi16(bp, sw[1].s16));
    __m256i h23 = _mm256_hadd_epi32(_mm256_madd_epi16(bp, sw[2].s16), _mm256_madd_epi16(bp, sw[3].s16));
    *im = _mm256_add_epi32(_mm256_permute2x128_si256(h01, h23, 0x20),
                           _mm256_permute2x128_si256(h01, h23, 0x31));
}

/* IQ4_XS: signed values (kvalues), so the dot's sign trick with the sub-block scale in
 * the madd, and one fmaf(d * dx, (float)isum, acc) per super-block (the offset path of
 * KG_GEMM with a zero s16 term) */
struct sbs_w {
    __m256i q[8], aq[8];   /* signed values, |q| */
    __m256i sc[8];         /* int16 sub-block scale, per vector */
    float   d, dmin;       /* dmin: 0 */
};

static inline void un_iq4_xs_g(const struct block_iq4_xs *b, struct sbs_w *w)
{
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rt_kvalues_iq4nl));
    for (int k = 0; k < 8; k++) {
        int ls = (((b->scales_l[k / 2] >> (4 * (k % 2))) & 0xF) |
                  (((b->scales_h >> (2 * k)) & 3) << 4)) - 32;
        w->q[k] = _mm256_shuffle_epi8(tab, nibbles(b->qs + 16 * k));
        w->aq[k] = _mm256_sign_epi8(w->q[k], w->q[k]);
        w->sc[k] = _mm256_set1_epi16((short)ls);
    }
    w->d = _cvtsh_ss(b->d);
    w->dmin = 0;
}

#define KS_ROW(r)                                                                           \
    {                                                                                       \
        __m256i q = sw[r].q[k], aq = sw[r].aq[k], sc = sw[r].sc[k];                         \
        s##r##0 = _mm256_add_epi32(s##r##0, _mm256_madd_epi16(                              \
            _mm256_maddubs_epi16(aq, _mm256_sign_epi8(y0, q)), sc));                        \
        s##r##1 = _mm256_add_epi32(s##r##1, _mm256_madd_epi16(                              \
            _mm256_maddubs_epi16(aq, _mm256_sign_epi8(y1, q)), sc));                        \
    }

static inline __attribute__((always_inline)) void ks_pairs(const struct sbs_w *sw, const struct block_q8_K *x0,
                            const struct block_q8_K *x1, __m256i *is, __m256i *im)
{
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00,
            s21 = s00, s30 = s00, s31 = s00;
    for (int k = 0; k < 8; k++) {
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(x0->qs + 32 * k));
        __m256i y1 = _mm256_loadu_si256((const __m256i *)(x1->qs + 32 * k));
        KS_ROW(0) KS_ROW(1) KS_ROW(2) KS_ROW(3)
    }
    *is = red8v(s00, s01, s10, s11, s20, s21, s30, s31);
    *im = _mm256_setzero_si256();
}

/* MIN as KQ_AVX2's: 1, the s16 term is a min (second fmaf with -(dmin * dx)); 0, an
 * offset taken off the integer sum */
#define KG_GEMM(name, DT, BT, WT, UN, PF, MIN)                                                   \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    const uint8_t *wbase = w, *abase = a;                                                   \
    const int64_t nb = n / 256;                                                             \
    const int ntp = (nt + 1) & ~1;                                                          \
    _Alignas(32) struct WT sw[KG_R];                                                        \
    _Alignas(32) __m256 acc[RT_GEMM_MAXT / KG_T];                                           \
    if (nt < KG_MINT) {                                                                     \
        rows_by_dot(dot_of[DT], n, w, w_stride, nr, a, a_stride, nt, out, o_stride);        \
        return;                                                                             \
    }                                                                                       \
    for (int r0 = 0; r0 < nr; r0 += KG_R) {                                                 \
        const int mr = nr - r0 < KG_R ? nr - r0 : KG_R;                                     \
        const struct BT *wr[KG_R];                                                          \
        for (int r = 0; r < KG_R; r++)   /* a row past nr repeats row r0 (never stored) */ \
            wr[r] = (const struct BT *)(wbase + (size_t)(r0 + (r < mr ? r : 0)) * w_stride); \
        for (int tp = 0; tp < ntp / 2; tp++)                                                \
            acc[tp] = _mm256_setzero_ps();                                                  \
        for (int64_t b = 0; b < nb; b++) {                                                  \
            float dw[8], dm[8];                                                             \
            for (int r = 0; r < KG_R; r++) {                                                \
                UN(&wr[r][b], &sw[r]);                                                      \
                dw[KG_T * r] = dw[KG_T * r + 1] = sw[r].d;                                  \
                dm[KG_T * r] = dm[KG_T * r + 1] = sw[r].dmin;                               \
            }                                                                               \
            const __m256 dwv = _mm256_loadu_ps(dw), dmv = _mm256_loadu_ps(dm);              \
            for (int tp = 0; tp < ntp / 2; tp++) {                                          \
                /* a token past nt repeats token 2 tp (never stored) */                     \
                const struct block_q8_K *x0 = (const struct block_q8_K *)(abase + (size_t)(2 * tp) * a_stride) + b; \
                const struct block_q8_K *x1 = (const struct block_q8_K *)(abase + (size_t)(2 * tp + 1 < nt ? 2 * tp + 1 : 2 * tp) * a_stride) + b; \
                __m256i is, im;                                                             \
                PF(sw, x0, x1, &is, &im);                                                   \
                __m128 d2 = _mm_unpacklo_ps(_mm_set_ss(x0->d), _mm_set_ss(x1->d));       \
                __m256 dxv = _mm256_castpd_ps(_mm256_broadcastsd_pd(_mm_castps_pd(d2)));    \
                if (MIN) {                                                                  \
                    acc[tp] = _mm256_fmadd_ps(_mm256_mul_ps(dwv, dxv), _mm256_cvtepi32_ps(is), acc[tp]); \
                    /* -(dmin * dx): the product, then its sign flipped (exact) */          \
                    __m256 nm = _mm256_xor_ps(_mm256_mul_ps(dmv, dxv), _mm256_set1_ps(-0.0f)); \
                    acc[tp] = _mm256_fmadd_ps(nm, _mm256_cvtepi32_ps(im), acc[tp]);         \
                } else {                                                                    \
                    acc[tp] = _mm256_fmadd_ps(_mm256_mul_ps(dwv, dxv),                      \
                                              _mm256_cvtepi32_ps(_mm256_sub_epi32(is, im)), acc[tp]); \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
        for (int t = 0; t < nt; t++) {                                                      \
            float l[8];                                                                     \
            _mm256_storeu_ps(l, acc[t / 2]);                                                \
            for (int r = 0; r < mr; r++)                                                    \
                out[(size_t)t * o_stride + r0 + r] = l[KG_T * r + t % 2];                   \
        }                                                                                   \
    }                                                                                       \
}

#define KG_MINT 3   /* fewer tokens: the dot */
KG_GEMM(gemm_q2_k_avx2, DT_Q2_K, block_q2_K, sb_w, un_q2_k, kg_pairs, 1)
KG_GEMM(gemm_q3_k_avx2, DT_Q3_K, block_q3_K, sb_w, un_q3_k, kg_pairs, 0)
KG_GEMM(gemm_q4_k_avx2, DT_Q4_K, block_q4_K, sb_w, un_q4_k_pm, kg_pairs_pm, 1)
KG_GEMM(gemm_q5_k_avx2, DT_Q5_K, block_q5_K, sb_w, un_q5_k_pm, kg_pairs_pm, 1)
KG_GEMM(gemm_q6_k_avx2, DT_Q6_K, block_q6_K, sb_w, un_q6_k, kg_pairs, 0)
KG_GEMM(gemm_iq4_xs_avx2, DT_IQ4_XS, block_iq4_xs, sbs_w, un_iq4_xs_g, ks_pairs, 0)

void rt_kern_avx2_qgemm_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    static const struct { int dt; rt_gemm_fn fn; } g[] = {
        { DT_Q4_0, gemm_q4_0_avx2 }, { DT_Q5_0, gemm_q5_0_avx2 },
        { DT_Q8_0, gemm_q8_0_avx2 }, { DT_IQ4_NL, gemm_iq4_nl_avx2 },
        { DT_Q4_1, gemm_q4_1_avx2 }, { DT_Q5_1, gemm_q5_1_avx2 },
        { DT_Q2_K, gemm_q2_k_avx2 }, { DT_Q3_K, gemm_q3_k_avx2 },
        { DT_Q4_K, gemm_q4_k_avx2 }, { DT_Q5_K, gemm_q5_k_avx2 },
        { DT_Q6_K, gemm_q6_k_avx2 }, { DT_IQ4_XS, gemm_iq4_xs_avx2 },
    };
    (void)q;
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        /* only on the AVX2 dot whose bits the kernel gives, on that dot's activations */
        if (tab[g[i].dt].isa != RT_ISA_AVX2 || !tab[g[i].dt].dot)
            continue;
        dot_of[g[i].dt] = tab[g[i].dt].dot;
        tab[g[i].dt].gemm = g[i].fn;
        tab[g[i].dt].gemm_act = tab[g[i].dt].act;
    }
}

#else
/* not an x86-64 build with AVX2: matmul.c never calls this */
void rt_kern_avx2_qgemm_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    (void)tab;
    (void)q;
}
#endif
