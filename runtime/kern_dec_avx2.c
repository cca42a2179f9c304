/*
 * kern_dec_avx2.c - AVX2 decode kernels (kern.h's dec: one or a few tokens, the weight
 * rows streamed once) for the quantized types (compiled with -mavx2 -mfma -mf16c;
 * matmul.c calls them only on such CPUs, through rt_kern_avx2_table).
 *
 * Why: with only `dot`, decode multiplies one row at a time, each row one chain of
 * super-blocks ending in its own horizontal sums; on an AVX2-only CPU that left decode
 * compute-bound well below the memory's pace.  Here, as in kern_avx512.c's DEC4_ROWS
 * kernels, FOUR rows run together as four streams a quarter of the part apart (rows
 * g, g + q, g + 2q, g + 3q), their integer sums reduced together and their f32 steps
 * done as one 4-lane vector (lane = row).  8 streams (two 4-row sets per super-block)
 * measured slower for Q4_K, one thread: 14.3-14.5 vs 14.8-15.0 GB/s from DRAM, 17.9 vs
 * 19.7 in cache.
 *
 * No software prefetch: with the streams far apart (and
 * matmul.c's large decode parts) Zen 4's hardware prefetchers keep them fed, and each
 * stream fetching its next row ahead (kern_avx512.c's DEC4_PREFETCH) was slower.  One
 * thread, 512 MiB from DRAM in parts of 256 rows, best of 40, with -> without: Q8_0
 * 22.3-23.3 -> 23.6-25.4 GB/s, Q4_K 15.7 -> 17.0, Q5_K 15.3 -> 17.5, Q6_K 18.9 -> 21.0,
 * Q3_K 8.9 -> 9.4, Q2_K 10.4 -> 10.6, Q4_1 11.9 -> 12.2, Q5_1 10.9 -> 11.1, IQ4_XS 10.1
 * -> 10.0; Q4_0 13.6 -> 12.9, IQ4_NL 10.5 -> 10.0 and Q5_0 11.3 -> 11.4 kept it
 * until their pair kernels (PAIR_DEC), which run faster without (see there).
 * TinyLlama tg, 2 threads, old and new alternated token by token: Q8_0 26.7 -> 23.9 ms
 * a token (min), Q4_K_M 20.5 -> 18.3.
 *
 * The legacy kernels' f16 scales of 8 blocks are gathered in general registers (d4_gpr,
 * H8): vpinsrw a scale was a load and a shuffle each, in a loop bound by its vector
 * micro-ops (one thread, in cache, 256 rows x 2048, best of 40-80 alternated: Q8_0 32.2
 * -> 34.4 GB/s, Q4_0 15.1 -> 16.4, Q4_1 13.6 -> 16.3).
 *
 * Q4_K and Q5_K read their sub-block scales as (sc, sc) dwords by vpbroadcastd (a
 * load, no shuffle) instead of a vpshufb spread each, decoded and stored one
 * super-block ahead (KMIN_DEC): Q4_K 21.4 -> 22.3 GB/s in cache, 18.0-18.3 -> 18.2-18.8
 * from DRAM (one thread, 256 rows x 2048).  Tried for Q4_K and not kept (GB/s in cache
 * / from DRAM, against 20.8-21.5 / 17.3-18.4): those dwords decoded and stored in the
 * same super-block, 21.0 / 17.8 (the store and reload on the madds' path); the 4 rows
 * taken 64 elements at a time (the 2 activation vectors loaded once for the 4 rows)
 * 21.3 / 16.5-17.7; that with the scales, mins and d of 8 super-blocks decoded first
 * and the f32 steps after, 22.1 / 15.3-15.9 (with a prefetch of the next 8: 16.1-16.4),
 * or decoded one super-block ahead, 19.4 / 17.0; vbroadcasti128 + vpshufd spreads,
 * 21.2.  The loop is not bound by one pipe class: in a copy of its code run alone,
 * removing the vphaddds, the vpshufbs' loads, the madds or the maddubs each saved 1-6%
 * and 33 extra nops cost nothing.  For Q8_0, the two vpsignb (on the multiply pipes)
 * done as cmpgt/xor/sub in the simple pipes: 34.5 -> 32.0 (vpabsb kept) and 28.9;
 * there the count of vector micro-ops binds.
 *
 * Where Q4_K's decode time goes (one thread, 256 rows x 2048 in cache, best of 5, runs
 * alternated; 21.4-21.9 GB/s, about 75 cycles of this 2.8 GHz core per 4-row
 * super-block).  Copies of KMIN_DEC with parts taken out, in GB/s:
 *   - only the 16 steps of 32 weight bytes (load, vpsrlw, 2 vpand, 2 vpmaddubsw,
 *     2 vpbroadcastd, 2 vpmaddwd, 2 vpaddd): 26.8-28.4;
 *   - without the f32 step 21.6-23.6 (its d/dmin gather alone: 22.1);
 *   - without the mins 20.9-23.0;
 *   - without k4_scales2 22.1-22.8;
 *   - without k4_scw's stores 22.0-22.4.
 * Measured alone, this core issues per cycle 2 vpmadd*, 2 vpsrlw, 2 vpshufb (3 of the two
 * together), 2 vector loads (vpbroadcastd from memory is a load, no ALU op) and 4 vector
 * ALU ops in all.  The kernel runs about 4 instructions a cycle; no single class binds it.
 *
 * Tried, against the kernel as it is:
 *   - the activations loaded once per 64 elements for all 4 rows: 21.3-22.1;
 *   - that, with two super-blocks a pass (fixed scw buffers): 21.5-22.1; from DRAM with
 *     2 threads, 37.1-37.7 vs 37.2-37.9 in a fast-memory minute;
 *   - the sums, mins and f32 step of super-block b done during b + 1: 19.1-20.7;
 *   - the scales, d and dmin decoded in general registers and stored 2-3 super-blocks
 *     ahead: 16.0-16.6 (vector loads of what general-register stores wrote stall here);
 *   - the 4 rows' super-blocks interleaved into one stream: 22.2-22.7 in cache, but
 *     from DRAM with 2 threads 33.9 vs 37.3 (fast minute) and 28.0 vs 30.2 (slow).
 * From DRAM, 2 threads in a fast-memory minute (a 4-stream read: 52-56 GB/s), this kernel
 * reaches 35.4-37.9 GB/s, 82-88% of its in-cache pace: decode of a Q4_K model is bound
 * by these instructions, not by the memory.
 * Q6_K (25.2-25.6 GB/s the same way): its vpshufb spreads replaced by a vpblendd of two
 * vpbroadcastd of (sc, sc) dwords stored a super-block ahead, 22.7-22.9.
 *
 * Beyond those limits, dec8_q4_k, dec8_q6_k and dec8_q8_0 read rows that forward.c
 * repacked at load, 8 rows interleaved (kern.h's struct rt_q4k_x8, rt_q6k_x8,
 * rt_q8_0_x8): a lane per row, the int16 products of a K-quant sub-block added before
 * one madd by its scales, no horizontal sums (see there).  bench_qdec, one thread, in
 * cache: Q4_K 21.5 -> 34.8 GB/s, Q6_K 25.4 -> 38.8, Q8_0 33.4 -> 42.4; from DRAM 19.0
 * -> 27.0, 20.0 -> 27.3 and 23.9 -> 27.6 (a 4-stream read of the same bytes: 26.0-27.1).
 *
 * Kernels: KMIN_DEC (Q4_K, Q5_K), dec8_q4_k, dec_q6_k, dec8_q6_k, K23_DEC (Q2_K, Q3_K),
 * KSB_DEC (IQ4_XS) on RT_ACT_Q8_K; LEG_DEC (Q8_0) and dec8_q8_0 on RT_ACT_Q8_0S and
 * PAIR_DEC (Q4_0, Q5_0, IQ4_NL) on RT_ACT_Q8_0P, whose AVX2 quantizers are here; LEG1_DEC
 * (Q4_1, Q5_1) on RT_ACT_Q8_1.
 *
 * Bits: every row gets exactly its scalar twin's (kern_ref.c) result: per block or
 * super-block the same exact integer sums, then the twin's f32 operations in its order
 * (fmaf is one rounding, as _mm_fmadd_ps; lanes never mix).  tests/unit/check_kern.c
 * test_dec_vs_dot compares them.
 */
#include "kern.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../formats/dtype.h"
#include "kern_avx2.h"
#include "../common/banned.h"

/* s is needed here, in a register: without it gcc computes all of a super-block's
 * products first and parks them on the stack (a store and a load each) */
#define KEEP(s) __asm__("" : "+x"(s))

/* 4 vectors of 8 int32 (one per row) -> lane i: the sum of row i's 8 lanes, through
 * unpacks (integer adds, so any order gives the same sums): vphaddd is several
 * micro-ops a piece, 2 cycles each here (8 independent: 15.7 cycles) */
static inline __m128i rows4_i32(__m256i s0, __m256i s1, __m256i s2, __m256i s3)
{
    __m256i r = zip_add64(zip_add32(s0, s1), zip_add32(s2, s3));   /* per lane [r0 r1 r2 r3] */
    return _mm_add_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

/* vpshufb controls that spread one int16 word over each 128-bit lane: sc_spread[j]
 * word j in both lanes (Q4_K: sub-block j); sc_spread[8 + k] word 2k in the low lane,
 * 2k + 1 in the high one (Q6_K: the two sub-blocks of 16 of vector k).  Constants in
 * memory, read by vpshufb itself: built in registers, they crowd out the rows' sums. */
#define SPREAD2(lo, hi) \
    { 2 * (lo), 2 * (lo) + 1, 2 * (lo), 2 * (lo) + 1, 2 * (lo), 2 * (lo) + 1, 2 * (lo), 2 * (lo) + 1, \
      2 * (lo), 2 * (lo) + 1, 2 * (lo), 2 * (lo) + 1, 2 * (lo), 2 * (lo) + 1, 2 * (lo), 2 * (lo) + 1, \
      2 * (hi), 2 * (hi) + 1, 2 * (hi), 2 * (hi) + 1, 2 * (hi), 2 * (hi) + 1, 2 * (hi), 2 * (hi) + 1, \
      2 * (hi), 2 * (hi) + 1, 2 * (hi), 2 * (hi) + 1, 2 * (hi), 2 * (hi) + 1, 2 * (hi), 2 * (hi) + 1 }
static const uint8_t sc_spread[12][32] __attribute__((aligned(32))) = {
    SPREAD2(0, 0), SPREAD2(1, 1), SPREAD2(2, 2), SPREAD2(3, 3),
    SPREAD2(4, 4), SPREAD2(5, 5), SPREAD2(6, 6), SPREAD2(7, 7),
    SPREAD2(0, 1), SPREAD2(2, 3), SPREAD2(4, 5), SPREAD2(6, 7)
};
#undef SPREAD2

static inline __m256i spread(__m256i sc, int j)
{
    return _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)sc_spread[j]));
}

/* ---------------------------------------------------------------------------------
 * Q4_K (mins) and Q6_K on RT_ACT_Q8_K activations.  Per row and super-block: the
 * weights as unsigned bytes (Q4_K 0..15, Q6_K 0..63 = value + 32), maddubs against the
 * activations (int16 pairs, exact), madd by the int16 sub-block scale (each scale word
 * spread over its 128-bit lane by vpshufb), int32 lanes; Q4_K's imin = sum m_j * (the
 * activation's pair sums), Q6_K's -32 offset = 32 * sum sc_i * bsums_i taken off.
 */

/* Q4_K's 6-bit scales and mins of two rows at once: h holds the 16 opening bytes of a
 * super-block (d, dmin, the 12 scale bytes q0..q11) of one row in each 128-bit lane;
 * the result has, per lane, sc0..sc7 then m0..m7 as bytes (rt_scale_min_k4):
 *   sc0..3 = q0..3 & 63, m0..3 = q4..7 & 63,
 *   sc4..7 = (q8..11 & 15) | (q0..3 >> 6) << 4, m4..7 = (q8..11 >> 4) | (q4..7 >> 6) << 4 */
static inline __m256i k4_scales2(__m256i h)
{
    const __m256i cx = _mm256_broadcastsi128_si256(_mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m256i cy = _mm256_broadcastsi128_si256(_mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
    const __m256i ma = _mm256_broadcastsi128_si256(_mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
    const __m256i mb = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15));
    __m256i x = _mm256_shuffle_epi8(h, cx), y = _mm256_shuffle_epi8(h, cy);
    __m256i lo = _mm256_or_si256(_mm256_and_si256(x, ma), _mm256_and_si256(_mm256_srli_epi16(x, 4), mb));
    return _mm256_or_si256(lo, _mm256_and_si256(_mm256_srli_epi16(y, 2), _mm256_set1_epi8(0x30)));
}

/* Q4_K's sub-block scales of the 4 rows as dwords (sc, sc) (two int16 words), the
 * madd factors of the rows' sub-block sums, stored to scw for vpbroadcastd from memory
 * (a load, no shuffle): row i's scale j is scw[K4_SCW(i, j)].  From k4_scales2's two
 * vectors (rows 0|1, 2|3; bytes sc0..sc7 per lane), two vpshufb a vector. */
#define K4_SCW(i, j) ((i) / 2 * 16 + (j) / 4 * 8 + (i) % 2 * 4 + (j) % 4)
static inline void k4_scw(__m256i s01, __m256i s23, int32_t scw[32])
{
    const __m256i c0 = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1));
    const __m256i c1 = _mm256_broadcastsi128_si256(_mm_setr_epi8(4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1));
    _mm256_store_si256((__m256i *)scw, _mm256_shuffle_epi8(s01, c0));
    _mm256_store_si256((__m256i *)scw + 1, _mm256_shuffle_epi8(s01, c1));
    _mm256_store_si256((__m256i *)scw + 2, _mm256_shuffle_epi8(s23, c0));
    _mm256_store_si256((__m256i *)scw + 3, _mm256_shuffle_epi8(s23, c1));
    /* read back from memory: without this, gcc takes the dwords out of the vectors
     * (vpextrd, vpsrldq: shuffles again) */
    __asm__("" : "+m"(*(int32_t (*)[32])scw));
}


/* Q4_K and Q5_K: a row's isum lanes from its 128 nibble bytes qs and (Q5_K) its 32
 * bytes of fifth bits qh (NULL: none; bit j of qh[l] belongs to element l of
 * sub-block j); sb: its scale bytes (k4_scales2) in both lanes */
static inline __attribute__((always_inline)) __m256i kmin_row(const uint8_t *qs, const uint8_t *qh,
        const struct block_q8_K *x, const int32_t *scw, int i)
{
    const __m256i m4 = _mm256_set1_epi8(15), b4 = _mm256_set1_epi8(16);
    __m256i h = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
    __m256i s = _mm256_setzero_si256();
    _Pragma("GCC unroll 4")
    for (int p = 0; p < 4; p++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * p));
        KEEP(v);   /* one load: gcc would fold it into the vpand and load it again for the shift */
        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if (qh) {
            /* bits 2p and 2p + 1 of each byte to bit 4 (what a 16-bit shift moves across
             * a byte boundary lands outside bit 4) */
            __m256i h0 = p < 2 ? _mm256_slli_epi16(h, 4 - 2 * p) : _mm256_srli_epi16(h, 2 * p - 4);
            __m256i h1 = p < 2 ? _mm256_slli_epi16(h, 3 - 2 * p) : _mm256_srli_epi16(h, 2 * p - 3);
            lo = _mm256_or_si256(lo, _mm256_and_si256(h0, b4));
            hi = _mm256_or_si256(hi, _mm256_and_si256(h1, b4));
        }
        __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x->qs + 64 * p)));
        __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x->qs + 64 * p + 32)));
        p0 = _mm256_madd_epi16(p0, _mm256_set1_epi32(scw[K4_SCW(i, 2 * p)]));
        p1 = _mm256_madd_epi16(p1, _mm256_set1_epi32(scw[K4_SCW(i, 2 * p + 1)]));
        s = _mm256_add_epi32(s, _mm256_add_epi32(p0, p1));
        KEEP(s);
    }
    return s;
}

static inline const uint8_t *qh_q4_k(const struct block_q4_K *w) { (void)w; return NULL; }
static inline const uint8_t *qh_q5_k(const struct block_q5_K *w) { return w->qh; }

/* Q4_K and Q5_K (QH: the row's fifth bits or NULL).  Per super-block: the 4 rows'
 * opening 16 bytes as two ymm (rows 0|1, 2|3), their scales and mins decoded together
 * (k4_scales2) one super-block ahead, the scales stored as madd dwords (k4_scw, two
 * buffers) so that the madds read them back from a store made a super-block earlier;
 * imin of the 4 rows = their mins as int16 (vpshufb) times the activation's pair sums,
 * one madd per two rows; d and dmin of the 4 rows gathered from the same loads. */
#define KMIN_DEC(name, BT, QH)                                                              \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,          \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    const __m256i cm = _mm256_broadcastsi128_si256(_mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1)); \
    const __m128i cd = _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15); \
    int32_t scw[2][32] __attribute__((aligned(32)));                                        \
    int64_t nsb = n / 256;                                                                  \
    for (int t = 0; t < nt; t++) {                                                          \
        const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride); \
        for (int g = 0, q = (nr + 3) / 4; g < q; g++) {                                     \
            DEC4_ROWS(BT);                                                                  \
            __m128 acc = _mm_setzero_ps();                                                  \
            __m256i h01n = _mm256_loadu2_m128i((const __m128i *)&wr[1][0], (const __m128i *)&wr[0][0]); \
            __m256i h23n = _mm256_loadu2_m128i((const __m128i *)&wr[3][0], (const __m128i *)&wr[2][0]); \
            __m256i s01n = k4_scales2(h01n), s23n = k4_scales2(h23n);                       \
            k4_scw(s01n, s23n, scw[0]);                                                     \
            for (int64_t b = 0; b < nsb; b++) {                                             \
                __m256i h01 = h01n, h23 = h23n, s01 = s01n, s23 = s23n;                     \
                const int32_t *sw = scw[b & 1];                                             \
                if (b + 1 < nsb) {   /* the next super-block's scales, off this one's path */ \
                    h01n = _mm256_loadu2_m128i((const __m128i *)&wr[1][b + 1], (const __m128i *)&wr[0][b + 1]); \
                    h23n = _mm256_loadu2_m128i((const __m128i *)&wr[3][b + 1], (const __m128i *)&wr[2][b + 1]); \
                    s01n = k4_scales2(h01n);                                                \
                    s23n = k4_scales2(h23n);                                                \
                    k4_scw(s01n, s23n, scw[(b + 1) & 1]);                                   \
                }                                                                           \
                __m256i s0 = kmin_row(wr[0][b].qs, QH(&wr[0][b]), &x[b], sw, 0);            \
                __m256i s1 = kmin_row(wr[1][b].qs, QH(&wr[1][b]), &x[b], sw, 1);            \
                __m256i s2 = kmin_row(wr[2][b].qs, QH(&wr[2][b]), &x[b], sw, 2);            \
                __m256i s3 = kmin_row(wr[3][b].qs, QH(&wr[3][b]), &x[b], sw, 3);            \
                __m128i is = rows4_i32(s0, s1, s2, s3);                                     \
                /* imin: lanes of the madds are rows 0|1 and 2|3 (4 partial sums each);   \
                 * zip_add32 -> [r0 r2 r0 r2 | r1 r3 r1 r3], then the pairs added */        \
                __m256i bs = bsums16(&x[b]);                                                \
                __m256i pr = _mm256_broadcastsi128_si256(                                   \
                    _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1))); \
                __m256i mh = zip_add32(_mm256_madd_epi16(_mm256_shuffle_epi8(s01, cm), pr), \
                                       _mm256_madd_epi16(_mm256_shuffle_epi8(s23, cm), pr)); \
                mh = _mm256_add_epi32(mh, _mm256_shuffle_epi32(mh, 0x4E));                  \
                __m128i im = _mm_unpacklo_epi32(_mm256_castsi256_si128(mh), _mm256_extracti128_si256(mh, 1)); \
                /* d, dmin: dword 0 of each row's opening bytes */                          \
                __m256i dd = _mm256_unpacklo_epi32(h01, h23);   /* [r0 r2 . . | r1 r3 . .] */ \
                __m128i d4 = _mm_unpacklo_epi32(_mm256_castsi256_si128(dd), _mm256_extracti128_si256(dd, 1)); \
                __m256 ddm = _mm256_cvtph_ps(_mm_shuffle_epi8(d4, cd));                     \
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

KMIN_DEC(dec_q4_k, block_q4_K, qh_q4_k)
KMIN_DEC(dec_q5_k, block_q5_K, qh_q5_k)

/* 4 bytes at p in every dword (vpbroadcastd from memory: a load, no shuffle) */
static inline __m256i bcast4(const void *p)
{
    return _mm256_set1_epi32((int)ld32(p));
}

/* the dec8 kernels' results of group g (lane r: row 8g + r) to out[], rows < nr only */
static inline void x8_store(float *out, int g, int nr, __m256 v)
{
    float l[8];

    _mm256_storeu_ps(l, v);
    for (int r = 0; r < 8 && 8 * g + r < nr; r++)
        out[8 * g + r] = l[r];
}

/* Q4_K on rows repacked 8 at a time (kern.h's struct rt_q4k_x8): lane r of every
 * vector is row r.  Per 32 weight bytes of the 8 rows (4 of each): one load, the two
 * nibble masks, two maddubs against 4 activation bytes broadcast (vpbroadcastd from
 * memory: a load, no shuffle), and the int16 products ADDED IN INT16 over a sub-block's
 * 8 vectors (|sum| <= 8 * 2 * 15 * 128 = 30720: exact), then one madd by the 8 rows'
 * scales, spread from one 16-byte load.  No horizontal sums: the 8 rows' isum, imin, d
 * and dmin are lanes of one vector each, and the f32 step is the twin's, lane by lane.
 * Against KMIN_DEC, which pays a madd and a scale load per 32 weight bytes of each row
 * and reduces every row's lanes (one thread, 256 rows x 2048, best of 5): in cache 21.5
 * -> 35.3 GB/s of Q4_K bytes; from DRAM, one thread 18.8 -> 30.0, and with two it reads
 * as fast as a plain read of the same bytes (33-34 GB/s in a slow-memory minute). */
static void dec8_q4_k(int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                      size_t a_stride, int nt, float *out, size_t o_stride)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    /* dword r of the 16 bytes sc[2c] | sc[2c + 1] (rows 0-7 each): (sc, sc) as int16 */
    const __m256i ce = _mm256_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1,
                                        4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1);
    const __m256i co = _mm256_add_epi8(ce, _mm256_set1_epi16(8));
    int64_t nsb = n / 256;

    for (int t = 0; t < nt; t++) {
        const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride);
        for (int g = 0; 8 * g < nr; g++) {
            const struct rt_q4k_x8 *p = (const struct rt_q4k_x8 *)((const uint8_t *)w + (size_t)g * w_stride);
            __m256 acc = _mm256_setzero_ps();
            for (int64_t b = 0; b < nsb; b++, p++) {
                const int8_t *q8 = x[b].qs;
                __m256i s = _mm256_setzero_si256();
                _Pragma("GCC unroll 4")
                for (int c = 0; c < 4; c++) {
                    __m256i scb = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p->sc[2 * c]));
                    __m256i l16 = _mm256_setzero_si256(), h16 = _mm256_setzero_si256();
                    _Pragma("GCC unroll 8")
                    for (int k = 0; k < 8; k++) {
                        __m256i v = _mm256_loadu_si256((const __m256i *)p->qs[c][k]);
                        KEEP(v);
                        __m256i lo = _mm256_and_si256(v, m4);
                        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                        l16 = _mm256_add_epi16(l16, _mm256_maddubs_epi16(lo, bcast4(q8 + 64 * c + 4 * k)));
                        h16 = _mm256_add_epi16(h16, _mm256_maddubs_epi16(hi, bcast4(q8 + 64 * c + 32 + 4 * k)));
                    }
                    s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_madd_epi16(l16, _mm256_shuffle_epi8(scb, ce)),
                                                             _mm256_madd_epi16(h16, _mm256_shuffle_epi8(scb, co))));
                }
                /* imin: the mins of sub-blocks 2i, 2i + 1 (an int16 pair a row) times
                 * the activation's sums of those sub-blocks */
                __m256i bs = bsums16(&x[b]);
                __m256i pr = _mm256_broadcastsi128_si256(
                    _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1)));
#define MIN2(i, sh) _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p->m[i])), \
                                      _mm256_shuffle_epi32(pr, sh))
                __m256i im = _mm256_add_epi32(_mm256_add_epi32(MIN2(0, 0x00), MIN2(1, 0x55)),
                                              _mm256_add_epi32(MIN2(2, 0xAA), MIN2(3, 0xFF)));
#undef MIN2
                __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p->d));
                __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p->dmin));
                __m256 da = _mm256_set1_ps(x[b].d);
                acc = _mm256_fmadd_ps(_mm256_mul_ps(d, da), _mm256_cvtepi32_ps(s), acc);
                acc = _mm256_fmadd_ps(_mm256_xor_ps(_mm256_mul_ps(dm, da), _mm256_set1_ps(-0.0f)),
                                      _mm256_cvtepi32_ps(im), acc);
            }
            x8_store(out + (size_t)t * o_stride, g, nr, acc);
        }
    }
}

/* Q6_K on rows repacked 8 at a time (kern.h's struct rt_q6k_x8), as dec8_q4_k: per
 * sub-block of 16 (3 registers of the 8 rows), the quads a, b, d one vpand each, c
 * gathered from the three top bit pairs; the maddubs products of two quads added in
 * int16 (|sum| <= 2 * 2 * 63 * 128 = 32256: exact), each pair's sum one madd by the
 * rows' (sc, sc); the -32 offset, 32 * sum sc_j * bsums_j, one madd per two sub-blocks
 * against the activation's sums (a broadcast load).  dec_q6_k's bits. */
static void dec8_q6_k(int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                      size_t a_stride, int nt, float *out, size_t o_stride)
{
    const __m256i m6 = _mm256_set1_epi8(63), m3 = _mm256_set1_epi8(3);
    const __m256i mc = _mm256_set1_epi8(12), m30 = _mm256_set1_epi8(0x30);
    int64_t nsb = n / 256;

    for (int t = 0; t < nt; t++) {
        const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride);
        for (int g = 0; 8 * g < nr; g++) {
            const struct rt_q6k_x8 *p = (const struct rt_q6k_x8 *)((const uint8_t *)w + (size_t)g * w_stride);
            __m256 acc = _mm256_setzero_ps();
            for (int64_t b = 0; b < nsb; b++, p++) {
                const int8_t *q8 = x[b].qs;
                __m256i s = _mm256_setzero_si256(), off = _mm256_setzero_si256();
                _Pragma("GCC unroll 8")
                for (int k = 0; k < 8; k++) {
                    /* int16 per lane: sub-block 2k rows 0-3 | 2k + 1 rows 0-3 (low lane),
                     * the same for rows 4-7 (high lane) */
                    __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p->sc[k]));
                    __m256i scj[2] = { _mm256_unpacklo_epi16(sc, sc), _mm256_unpackhi_epi16(sc, sc) };
                    off = _mm256_add_epi32(off, _mm256_madd_epi16(
                        _mm256_unpacklo_epi16(sc, _mm256_srli_si256(sc, 8)),
                        bcast4((const uint8_t *)&x[b].bsums[2 * k])));
                    _Pragma("GCC unroll 2")
                    for (int h = 0; h < 2; h++) {
                        int j = 2 * k + h;
                        __m256i r1 = _mm256_loadu_si256((const __m256i *)p->q[j][0]);
                        __m256i r2 = _mm256_loadu_si256((const __m256i *)p->q[j][1]);
                        __m256i r3 = _mm256_loadu_si256((const __m256i *)p->q[j][2]);
                        KEEP(r1);
                        KEEP(r2);
                        KEEP(r3);
                        __m256i qc = _mm256_or_si256(
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(r1, 6), m3),
                                            _mm256_and_si256(_mm256_srli_epi16(r2, 4), mc)),
                            _mm256_and_si256(_mm256_srli_epi16(r3, 2), m30));
                        const int8_t *a16 = q8 + 16 * j;
                        __m256i x0 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(_mm256_and_si256(r1, m6), bcast4(a16)),
                            _mm256_maddubs_epi16(_mm256_and_si256(r2, m6), bcast4(a16 + 4)));
                        __m256i x1 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(qc, bcast4(a16 + 8)),
                            _mm256_maddubs_epi16(_mm256_and_si256(r3, m6), bcast4(a16 + 12)));
                        s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_madd_epi16(x0, scj[h]),
                                                                 _mm256_madd_epi16(x1, scj[h])));
                    }
                }
                s = _mm256_sub_epi32(s, _mm256_slli_epi32(off, 5));
                __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p->d));
                acc = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(x[b].d)), _mm256_cvtepi32_ps(s), acc);
            }
            x8_store(out + (size_t)t * o_stride, g, nr, acc);
        }
    }
}

/* Q8_0 on rows repacked 8 at a time (kern.h's struct rt_q8_0_x8; RT_ACT_Q8_0S
 * activations): per block, 8 registers of the 8 rows' values against 4 activation bytes
 * broadcast, each mul_sum_i8 (two maddubs could overflow int16 here), the block's isum
 * of the 8 rows in one vector; then, as the twin, the
 * block's f32 step into accumulator b & 7 of each row, and red8 across the 8 registers
 * (vertical adds: a lane is a row). */
static void dec8_q8_0(int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                      size_t a_stride, int nt, float *out, size_t o_stride)
{
    int64_t nb = n / 32;

    for (int t = 0; t < nt; t++) {
        const int8_t *q8 = (const int8_t *)a + (size_t)t * a_stride;
        const float *sa = (const float *)(q8 + 32 * nb);
        for (int g = 0; 8 * g < nr; g++) {
            const struct rt_q8_0_x8 *p = (const struct rt_q8_0_x8 *)((const uint8_t *)w + (size_t)g * w_stride);
            __m256 acc[8];
            for (int i = 0; i < 8; i++)
                acc[i] = _mm256_setzero_ps();
            for (int64_t b = 0; b < nb; b++, p++) {
                __m256i s = _mm256_setzero_si256();
                _Pragma("GCC unroll 8")
                for (int k = 0; k < 8; k++) {
                    __m256i v = _mm256_loadu_si256((const __m256i *)p->qs[k]);
                    s = _mm256_add_epi32(s, mul_sum_i8(bcast4(q8 + 32 * b + 4 * k), v));
                }
                __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p->d)),
                                         _mm256_set1_ps(sa[b]));
                acc[b & 7] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc[b & 7]);
            }
            __m256 r = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])),
                                     _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7])));
            x8_store(out + (size_t)t * o_stride, g, nr, r);
        }
    }
}

/* Q6_K: row w's isum lanes, the -32 offset taken off */
static inline __attribute__((always_inline)) __m256i q6k_row(const struct block_q6_K *w,
        const struct block_q8_K *x)
{
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
    __m256i s = _mm256_sub_epi32(_mm256_setzero_si256(),
                                 _mm256_madd_epi16(bsums16(x), _mm256_slli_epi16(sc16, 5)));
    /* both lanes: the scales of half h, sc[8h..8h+7] */
    const __m256i sch[2] = { _mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE) };
    _Pragma("GCC unroll 2")
    for (int h = 0; h < 2; h++) {
        __m256i sc = sch[h];
        const uint8_t *ql = w->ql + 64 * h;
        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(w->qh + 32 * h));
        KEEP(l0);   /* one load each: gcc would fold them into the vpands and load */
        KEEP(l1);   /* them again for the shifts */
        KEEP(qh);
        /* the 2-bit pairs of qh straight to bits 4-5 (what a 16-bit shift moves across
         * a byte boundary lands outside them) */
        __m256i v[4];
        v[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
        v[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
        v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) {
            /* elements 32k..32k+15: sub-block 8h + 2k, then 8h + 2k + 1 */
            __m256i p = _mm256_maddubs_epi16(v[k], _mm256_loadu_si256((const __m256i *)(x->qs + 128 * h + 32 * k)));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(p, spread(sc, 8 + k)));
            KEEP(s);
        }
    }
    return s;
}

static void dec_q6_k(int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                     size_t a_stride, int nt, float *out, size_t o_stride)
{
    int64_t nsb = n / 256;
    for (int t = 0; t < nt; t++) {
        const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride);
        for (int g = 0, q = (nr + 3) / 4; g < q; g++) {
            DEC4_ROWS(block_q6_K);
            __m128 acc = _mm_setzero_ps();
            for (int64_t b = 0; b < nsb; b++) {
                __m128i is = rows4_i32(q6k_row(&wr[0][b], &x[b]), q6k_row(&wr[1][b], &x[b]),
                                       q6k_row(&wr[2][b], &x[b]), q6k_row(&wr[3][b], &x[b]));
                __m128 d = _mm_cvtph_ps(_mm_setr_epi16((short)wr[0][b].d, (short)wr[1][b].d,
                                                       (short)wr[2][b].d, (short)wr[3][b].d, 0, 0, 0, 0));
                acc = _mm_fmadd_ps(_mm_mul_ps(d, _mm_set1_ps(x[b].d)), _mm_cvtepi32_ps(is), acc);
            }
            float l[4];
            _mm_storeu_ps(l, acc);
            DEC4_STORE(t);
        }
    }
}


/* Q2_K and Q3_K: per row and super-block, vector (h, j) of 32 elements 128h + 32j.. is
 * qs[32h..32h+31] >> 2j & 3 (Q3_K: | hmask bit 4h + j << 2, 0..7 = value + 4), its low
 * 16 bytes sub-block 8h + 2j, its high 16 the next: maddubs, madd by the two sub-blocks'
 * scales spread over the lanes (sc_spread[8 + j] on scales 8h..8h+7).  Q2_K's mins
 * term and Q3_K's -4 offset: the 16 bsums times 16 int16 coefficients, *mn. */
static inline __attribute__((always_inline)) __m256i k23_row(const uint8_t *qs, const uint8_t *hm,
        __m256i sc16, const struct block_q8_K *x)
{
    const __m256i m3 = _mm256_set1_epi8(3), b2 = _mm256_set1_epi8(4);
    const __m256i sch[2] = { _mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE) };
    __m256i hv = hm ? _mm256_loadu_si256((const __m256i *)hm) : _mm256_setzero_si256();
    __m256i s = _mm256_setzero_si256();
    _Pragma("GCC unroll 2")
    for (int h = 0; h < 2; h++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++) {
            __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
            if (hm) {
                int bit = 4 * h + j;   /* to bit 2 (16-bit shifts: what crosses a byte lands elsewhere) */
                __m256i hb = bit >= 2 ? _mm256_srli_epi16(hv, bit - 2) : _mm256_slli_epi16(hv, 2 - bit);
                v = _mm256_or_si256(v, _mm256_and_si256(hb, b2));
            }
            __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)(x->qs + 128 * h + 32 * j)));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(p, spread(sch[h], 8 + j)));
            KEEP(s);
        }
    }
    return s;
}

/* Q2_K: scales low nibbles, mins high nibbles */
static inline __attribute__((always_inline)) void q2k_one(const struct block_q2_K *w,
        const struct block_q8_K *x, __m256i *s, __m256i *mn)
{
    __m128i sc8 = _mm_loadu_si128((const __m128i *)w->scales);
    __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, _mm_set1_epi8(15)));
    __m256i m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(15)));
    *mn = _mm256_madd_epi16(bsums16(x), m16);
    *s = k23_row(w->qs, NULL, sc16, x);
}

/* Q3_K: the 16 six-bit scales - 32 (q3_k_scales of kern_ref.c, as un_q3_k); offset
 * 4 * sc_i * bsums_i */
static inline __attribute__((always_inline)) void q3k_one(const struct block_q3_K *w,
        const struct block_q8_K *x, __m256i *s, __m256i *mn)
{
    uint32_t aux[3], tmp;
    memcpy(aux, w->scales, 12);
    tmp = aux[2];
    __m128i u = _mm_setr_epi32((int)((aux[0] & 0x0f0f0f0fu) | (((tmp >> 0) & 0x03030303u) << 4)),
                               (int)((aux[1] & 0x0f0f0f0fu) | (((tmp >> 2) & 0x03030303u) << 4)),
                               (int)(((aux[0] >> 4) & 0x0f0f0f0fu) | (((tmp >> 4) & 0x03030303u) << 4)),
                               (int)(((aux[1] >> 4) & 0x0f0f0f0fu) | (((tmp >> 6) & 0x03030303u) << 4)));
    __m256i sc16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(u), _mm256_set1_epi16(32));
    *mn = _mm256_madd_epi16(bsums16(x), _mm256_slli_epi16(sc16, 2));
    *s = k23_row(w->qs, w->hmask, sc16, x);
}

/* MIN: 1 (Q2_K) acc = fma(d * da, isum, acc), fma(-(dmin * da), imin, acc); 0 (Q3_K)
 * acc = fma(d * da, isum - imin, acc); DM: the row's dmin (Q3_K: its d again, unused) */
#define K23_DEC(name, BT, ONE, MIN, DM)                                                    \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    int64_t nsb = n / 256;                                                                  \
    for (int t = 0; t < nt; t++) {                                                          \
        const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride); \
        for (int g = 0, q = (nr + 3) / 4; g < q; g++) {                                     \
            DEC4_ROWS(BT);                                                                  \
            __m128 acc = _mm_setzero_ps();                                                  \
            for (int64_t b = 0; b < nsb; b++) {                                             \
                __m256i s[4], mn[4];                                                        \
                _Pragma("GCC unroll 4")                                                     \
                for (int i = 0; i < 4; i++)                                                 \
                    ONE(&wr[i][b], &x[b], &s[i], &mn[i]);                                   \
                __m128i is = rows4_i32(s[0], s[1], s[2], s[3]);                             \
                __m128i im = rows4_i32(mn[0], mn[1], mn[2], mn[3]);                         \
                __m256 ddm = _mm256_cvtph_ps(_mm_setr_epi16(                                \
                    (short)wr[0][b].d, (short)wr[1][b].d, (short)wr[2][b].d, (short)wr[3][b].d, \
                    (short)wr[0][b].DM, (short)wr[1][b].DM, (short)wr[2][b].DM, (short)wr[3][b].DM)); \
                __m128 da = _mm_set1_ps(x[b].d);                                            \
                __m128 d = _mm_mul_ps(_mm256_castps256_ps128(ddm), da);                     \
                if (MIN) {                                                                  \
                    __m128 dm = _mm_mul_ps(_mm256_extractf128_ps(ddm, 1), da);              \
                    acc = _mm_fmadd_ps(d, _mm_cvtepi32_ps(is), acc);                        \
                    acc = _mm_fmadd_ps(_mm_xor_ps(dm, _mm_set1_ps(-0.0f)), _mm_cvtepi32_ps(im), acc); \
                } else {                                                                    \
                    acc = _mm_fmadd_ps(d, _mm_cvtepi32_ps(_mm_sub_epi32(is, im)), acc);     \
                }                                                                           \
            }                                                                               \
            float l[4];                                                                     \
            _mm_storeu_ps(l, acc);                                                          \
            DEC4_STORE(t);                                                                  \
        }                                                                                   \
    }                                                                                       \
}

K23_DEC(dec_q2_k, block_q2_K, q2k_one, 1, dmin)
K23_DEC(dec_q3_k, block_q3_K, q3k_one, 0, d)

/* Super-blocks whose rows are summed one by one (ONE: a row's exact isum, imin, d and
 * dmin), then the twin's f32 steps as 4-lane vectors, the same 4 streams.  MIN: 1 when
 * imin is a mins term (acc = fma(d * da, isum, acc); acc = fma(-(dmin * da), imin,
 * acc)), 0 when it is taken off isum (acc = fma(d * da, isum - imin, acc)).  (Q2_K and
 * Q3_K through the dot's unpacking, un_q2_k / un_q3_k + sb_dot, in this frame measured
 * no faster than the dot row by row: 4.6 -> 4.8, 3.2 -> 3.0 GB/s; K23_DEC above.) */
/* IQ4_XS: the table values (signed, |v| <= 127: the sign trick keeps maddubs exact),
 * sub-block k's 32 elements = the low then the high nibbles of qs[16k..16k+15], each
 * times its scale ls - 32 (word k of lsb, spread) */
static inline __attribute__((always_inline)) void iq4xs_one(const struct block_iq4_xs *w,
        const struct block_q8_K *x, int *is, int *im, float *d, float *dm)
{
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rt_kvalues_iq4nl));
    __m256i ls = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)ld32(w->scales_l)),
                                                    _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                  _mm256_set1_epi32(15));
    __m256i lh = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w->scales_h),
                                                    _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                  _mm256_set1_epi32(3));
    ls = _mm256_sub_epi32(_mm256_or_si256(ls, _mm256_slli_epi32(lh, 4)), _mm256_set1_epi32(32));
    __m256i lsb = _mm256_broadcastsi128_si256(_mm_packs_epi32(_mm256_castsi256_si128(ls),
                                                              _mm256_extracti128_si256(ls, 1)));
    __m256i s = _mm256_setzero_si256();
    _Pragma("GCC unroll 8")
    for (int k = 0; k < 8; k++) {
        __m256i q = _mm256_shuffle_epi8(tab, nibbles(w->qs + 16 * k));
        __m256i y = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * k));
        __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, spread(lsb, k)));
        KEEP(s);
    }
    *is = hsum_i32(s);
    *im = 0;
    *d = _cvtsh_ss(w->d);
    *dm = 0;
}

#define KSB_DEC(name, BT, ONE, MIN)                                                        \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    int64_t nsb = n / 256;                                                                  \
    for (int t = 0; t < nt; t++) {                                                          \
        const struct block_q8_K *x = (const struct block_q8_K *)((const uint8_t *)a + (size_t)t * a_stride); \
        for (int g = 0, q = (nr + 3) / 4; g < q; g++) {                                     \
            DEC4_ROWS(BT);                                                                  \
            __m128 acc = _mm_setzero_ps();                                                  \
            for (int64_t b = 0; b < nsb; b++) {                                             \
                int is[4], im[4];                                                           \
                float d[4], dm[4];                                                          \
                _Pragma("GCC unroll 4")                                                     \
                for (int i = 0; i < 4; i++)                                                 \
                    ONE(&wr[i][b], &x[b], &is[i], &im[i], &d[i], &dm[i]);                   \
                __m128i vi = _mm_setr_epi32(is[0], is[1], is[2], is[3]);                    \
                __m128i vm = _mm_setr_epi32(im[0], im[1], im[2], im[3]);                    \
                __m128 da = _mm_set1_ps(x[b].d);                                            \
                __m128 vd = _mm_mul_ps(_mm_setr_ps(d[0], d[1], d[2], d[3]), da);            \
                if (MIN) {                                                                  \
                    __m128 vdm = _mm_mul_ps(_mm_setr_ps(dm[0], dm[1], dm[2], dm[3]), da);   \
                    acc = _mm_fmadd_ps(vd, _mm_cvtepi32_ps(vi), acc);                       \
                    acc = _mm_fmadd_ps(_mm_xor_ps(vdm, _mm_set1_ps(-0.0f)), _mm_cvtepi32_ps(vm), acc); \
                } else {                                                                    \
                    acc = _mm_fmadd_ps(vd, _mm_cvtepi32_ps(_mm_sub_epi32(vi, vm)), acc);    \
                }                                                                           \
            }                                                                               \
            float l[4];                                                                     \
            _mm_storeu_ps(l, acc);                                                          \
            DEC4_STORE(t);                                                                  \
        }                                                                                   \
    }                                                                                       \
}

KSB_DEC(dec_iq4_xs, block_iq4_xs, iq4xs_one, 0)

/* ---------------------------------------------------------------------------------
 * Legacy blocks of 32 on RT_ACT_Q8_0S activations (kern.h: the values, then the f32
 * scales, then the int32 sums of each block).  Per row, groups of 8 blocks: the 8
 * exact block sums (signed weights: the sign trick, mul_sum_i8; unsigned u = w + off:
 * maddubs of u against the signed activations, exact as u <= 31, minus off * sum(q)),
 * reduced together (hsum8x8, lane k = block k of the group), then block b into f32 lane
 * b % 8: acc = fma(dw * da, (float)isum, acc); the last nb % 8 blocks one by one into
 * the same lanes; red8.  The twin's steps, so its bits.  4 rows run as 4 streams a
 * quarter of the part apart, group by group.  Q8_0 only: Q4_0, Q5_0 and IQ4_NL run
 * PAIR_DEC on RT_ACT_Q8_0P (below).
 */

static inline __m256i uq4_0(const struct block_q4_0 *b) { return nibbles(b->qs); }
static inline __m256i uq5_0(const struct block_q5_0 *b)
{
    return _mm256_or_si256(nibbles(b->qs), _mm256_and_si256(bits_to_bytes(ld32(b->qh)),
                                                            _mm256_set1_epi8(16)));
}

/* the f16 scales of 4 blocks (the first at d, the next stride bytes apart) as one
 * 64-bit word, built in general registers: vpinsrw a scale is a load and a shuffle each */
static inline uint64_t d4_gpr(const void *d, size_t stride)
{
    const uint8_t *p = d;
    uint16_t h[4];
    for (int k = 0; k < 4; k++)
        memcpy(&h[k], p + k * stride, 2);
    return (uint64_t)h[0] | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 32 | (uint64_t)h[3] << 48;
}

/* the f16 values of 8 blocks, the first at d, as a vector of 8 words */
#define H8(d, stride) _mm_set_epi64x((long long)d4_gpr((const uint8_t *)(d) + 4 * (stride), stride), \
                                     (long long)d4_gpr(d, stride))

/* UW: the weight block as bytes; MUL: mul_sum_i8 (signed, SH < 0: no offset) or
 * mul_sum_u8 (unsigned w + 2^SH) */
#define LEG_DEC(name, BT, UW, MUL, SH)                                                       \
static inline __attribute__((always_inline)) __m256 name##_grp(const struct BT *wb,        \
        const int8_t *q, const float *da, const int32_t *qsum, __m256 acc)                  \
{                                                                                           \
    __m256i p[8];                                                                           \
    _Pragma("GCC unroll 8")                                                                 \
    for (int k = 0; k < 8; k++)                                                             \
        p[k] = MUL(UW(&wb[k]), _mm256_loadu_si256((const __m256i *)(q + 32 * k)));          \
    __m256i is = hsum8x8(p);                                                                \
    if (SH >= 0)                                                                            \
        is = _mm256_sub_epi32(is, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)qsum), \
                                                    SH >= 0 ? SH : 0));                     \
    __m256 dw = _mm256_cvtph_ps(H8(&wb[0].d, sizeof(struct BT)));                           \
    return _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_loadu_ps(da)), _mm256_cvtepi32_ps(is), acc); \
}                                                                                           \
                                                                                            \
static inline float name##_tail(int64_t nb, int64_t b, const struct BT *wb, const int8_t *q, \
                                const float *da, const int32_t *qsum, __m256 acc)           \
{                                                                                           \
    float l[8];                                                                             \
    _mm256_storeu_ps(l, acc);                                                               \
    for (; b < nb; b++) {                                                                   \
        int is = hsum_i32(MUL(UW(&wb[b]), _mm256_loadu_si256((const __m256i *)(q + 32 * b)))); \
        if (SH >= 0)                                                                        \
            is -= qsum[b] * (1 << (SH >= 0 ? SH : 0));                                      \
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
            __m256 acc[4];                                                                  \
            int64_t b = 0;                                                                  \
            for (int i = 0; i < 4; i++)                                                     \
                acc[i] = _mm256_setzero_ps();                                               \
            for (; b + 8 <= nb; b += 8) {                                                   \
                _Pragma("GCC unroll 4")                                                     \
                for (int i = 0; i < 4; i++)                                                 \
                    acc[i] = name##_grp(wr[i] + b, xq + 32 * b, da + b, qsum + b, acc[i]);  \
            }                                                                               \
            for (int i = 0; i < 4; i++)                                                     \
                if (ri[i] < nr)                                                             \
                    out[(size_t)t * o_stride + ri[i]] = name##_tail(nb, b, wr[i], xq, da, qsum, acc[i]); \
        }                                                                                   \
    }                                                                                       \
}

LEG_DEC(dec_q8_0, block_q8_0, w_q8_0, mul_sum_i8, -1)

/* ---------------------------------------------------------------------------------
 * Q4_0, Q5_0 and IQ4_NL on RT_ACT_Q8_0P (kern.h): two blocks a register.  The 16 nibble
 * bytes of blocks 2k and 2k+1 side by side (one load each): their low nibbles (the
 * first 16 values of each block) meet the pair's first activation register, their high
 * nibbles the second, and per 128-bit lane the result is 4 partial sums of one block.
 * Q4_0 and Q5_0 (unsigned u = w + 8 or + 16): the two maddubs add exactly in int16
 * (|pair sum| <= 2 * 31 * 128, two of them <= 15872), one madd by ones; IQ4_NL (signed
 * table values): the sign trick and a madd each, added in int32.  Per group of 8 blocks,
 * zip_add32 / zip_add64 leave the 8 block sums in lane order 0 2 4 6 1 3 5 7, the order
 * of the activation's scales and sums and of the d words gathered (d4_gpr, stride 2
 * blocks).  Lane k accumulates blocks 8m + L[k] exactly as the twin's l[b & 7]; after
 * the groups the lanes go back to block order and the last nb % 8 blocks follow one
 * by one.
 * Against LEG_DEC on RT_ACT_Q8_0S (one block a register, then hsum8x8's 21 operations a
 * group, and a prefetch of the next row), tests/bench/bench_qdec.c, best of 3, runs
 * alternated:
 *   - Q4_0: in cache 16.1-16.4 -> 19.5-19.6 GB/s; from DRAM one thread 14.9 -> 17.7-17.8,
 *     two threads 28.7-29.0 -> 33.4; TinyLlama Q4_0 (llama-quantize's), tg -n 128 -t 2,
 *     alternated 4 times: 42.0-44.6 -> 46.9-49.8 t/s, and the logits of 16 tokens
 *     decoded one by one (-b 1, 2 and 3 threads) the same bytes;
 *   - IQ4_NL: in cache 11.8-11.9 -> 13.2-13.4, two threads from DRAM 20.4-20.5 ->
 *     21.7-24.3;
 *   - Q5_0: in cache 12.9-13.1 -> 12.9-13.0 (its fifth bits cost as much as before; it
 *     runs here so that LEG_DEC keeps only Q8_0).
 * With LEG_DEC's prefetch of the next row, Q4_0 from DRAM on two threads ran 27.1-30.6
 * GB/s against 33.5-35.8 without.
 */
static inline __m256i pair_nibbles(const uint8_t *q0, const uint8_t *q1, __m256i *hi)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i v = _mm256_loadu2_m128i((const __m128i *)q1, (const __m128i *)q0);
    *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    return _mm256_and_si256(v, m4);
}

/* unsigned pair (Q4_0, Q5_0): the int16 sums added, one madd */
static inline __m256i pair_u8(__m256i lo, __m256i hi, const int8_t *q)
{
    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q)),
                                 _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q + 32))));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline __attribute__((always_inline)) __m256i pair_q4_0(const struct block_q4_0 *w,
                                                               const int8_t *q)
{
    __m256i hi, lo = pair_nibbles(w[0].qs, w[1].qs, &hi);
    return pair_u8(lo, hi, q);
}

/* Q5_0: fifth bits j of both blocks' low halves (j < 16) and high halves (j >= 16) as
 * two 32-bit words, block 2k's bits in the low 16 */
static inline __attribute__((always_inline)) __m256i pair_q5_0(const struct block_q5_0 *w,
                                                               const int8_t *q)
{
    const __m256i b4 = _mm256_set1_epi8(16);
    uint32_t h0 = ld32(w[0].qh), h1 = ld32(w[1].qh);
    __m256i hi, lo = pair_nibbles(w[0].qs, w[1].qs, &hi);
    lo = _mm256_or_si256(lo, _mm256_and_si256(bits_to_bytes((h0 & 0xffffu) | h1 << 16), b4));
    hi = _mm256_or_si256(hi, _mm256_and_si256(bits_to_bytes(h0 >> 16 | (h1 & 0xffff0000u)), b4));
    return pair_u8(lo, hi, q);
}

static inline __attribute__((always_inline)) __m256i pair_iq4_nl(const struct block_iq4_nl *w,
                                                                 const int8_t *q)
{
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rt_kvalues_iq4nl));
    __m256i hi, lo = pair_nibbles(w[0].qs, w[1].qs, &hi);
    return _mm256_add_epi32(mul_sum_i8(_mm256_shuffle_epi8(tab, lo), _mm256_loadu_si256((const __m256i *)q)),
                            mul_sum_i8(_mm256_shuffle_epi8(tab, hi), _mm256_loadu_si256((const __m256i *)(q + 32))));
}

/* PAIR: a pair's lanes (above); UW, MUL, SH: the one-block path of LEG_DEC for the
 * last nb % 8 blocks */
#define PAIR_DEC(name, BT, PAIR, UW, MUL, SH)                                              \
static inline __attribute__((always_inline)) __m256 name##_grp(const struct BT *wb,        \
                                                               const uint8_t *ag, __m256 acc) \
{                                                                                           \
    const int8_t *q = (const int8_t *)ag;                                                   \
    __m256i is = zip_add64(zip_add32(PAIR(wb, q), PAIR(wb + 2, q + 64)),                    \
                           zip_add32(PAIR(wb + 4, q + 128), PAIR(wb + 6, q + 192)));        \
    if (SH >= 0)                                                                            \
        is = _mm256_sub_epi32(is, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(ag + 288)), \
                                                    SH >= 0 ? SH : 0));                     \
    __m256 dw = _mm256_cvtph_ps(_mm_set_epi64x((long long)d4_gpr(&wb[1].d, 2 * sizeof *wb), \
                                               (long long)d4_gpr(&wb[0].d, 2 * sizeof *wb))); \
    return _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_loadu_ps((const float *)(ag + 256))),   \
                           _mm256_cvtepi32_ps(is), acc);                                    \
}                                                                                           \
                                                                                            \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    static const int lane[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };                                  \
    int64_t nb = n / 32, ng = nb / 8;                                                       \
    for (int g = 0, q = (nr + 3) / 4; g < q; g++) {                                         \
        DEC4_ROWS(BT);                                                                      \
        for (int t = 0; t < nt; t++) {                                                      \
            const uint8_t *at = (const uint8_t *)a + (size_t)t * a_stride;                  \
            __m256 acc[4];                                                                  \
            for (int i = 0; i < 4; i++)                                                     \
                acc[i] = _mm256_setzero_ps();                                               \
            for (int64_t k = 0; k < ng; k++) {                                              \
                _Pragma("GCC unroll 4")                                                     \
                for (int i = 0; i < 4; i++)                                                 \
                    acc[i] = name##_grp(wr[i] + 8 * k, at + 320 * k, acc[i]);               \
            }                                                                               \
            for (int i = 0; i < 4; i++) {                                                   \
                float v[8], l[8];                                                           \
                _mm256_storeu_ps(v, acc[i]);                                                \
                for (int k = 0; k < 8; k++)                                                 \
                    l[lane[k]] = v[k];                                                      \
                for (int64_t b = 8 * ng; b < nb; b++) {                                     \
                    const uint8_t *e = at + 320 * ng + 40 * (b - 8 * ng);                   \
                    float da;                                                               \
                    int32_t qs;                                                             \
                    memcpy(&da, e + 32, 4);                                                 \
                    memcpy(&qs, e + 36, 4);                                                 \
                    int is = hsum_i32(MUL(UW(&wr[i][b]), _mm256_loadu_si256((const __m256i *)e))); \
                    if (SH >= 0)                                                            \
                        is -= qs * (1 << (SH >= 0 ? SH : 0));                               \
                    l[b & 7] = fmaf(_cvtsh_ss(wr[i][b].d) * da, (float)is, l[b & 7]);       \
                }                                                                           \
                if (ri[i] < nr)                                                             \
                    out[(size_t)t * o_stride + ri[i]] = red8(l);                            \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

PAIR_DEC(dec_q4_0, block_q4_0, pair_q4_0, uq4_0, mul_sum_u8, 3)
PAIR_DEC(dec_q5_0, block_q5_0, pair_q5_0, uq5_0, mul_sum_u8, 4)
PAIR_DEC(dec_iq4_nl, block_iq4_nl, pair_iq4_nl, w_iq4_nl, mul_sum_i8, -1)

/* Q4_1 and Q5_1 on RT_ACT_Q8_1 (the twin's activations: their f16 s = d * sum(q) is
 * rounded from the unrounded d, so it cannot come from RT_ACT_Q8_0S): unsigned weights,
 * maddubs exact; per block acc = fma(dw * da, (float)isum, acc) then fma(mw, sa, acc) */
#define LEG1_DEC(name, BT, UW)                                                             \
static inline __attribute__((always_inline)) __m256 name##_grp(const struct BT *wb,        \
        const struct block_q8_1 *x, __m256 acc)                                             \
{                                                                                           \
    __m256i p[8];                                                                           \
    _Pragma("GCC unroll 8")                                                                 \
    for (int k = 0; k < 8; k++)                                                             \
        p[k] = mul_sum_u8(UW(&wb[k]), _mm256_loadu_si256((const __m256i *)x[k].qs));        \
    __m256 dw = _mm256_cvtph_ps(H8(&wb[0].d, sizeof(struct BT)));                           \
    __m256 mw = _mm256_cvtph_ps(H8(&wb[0].m, sizeof(struct BT)));                           \
    __m256 da = _mm256_cvtph_ps(H8(&x[0].d, sizeof(struct block_q8_1)));                    \
    __m256 sa = _mm256_cvtph_ps(H8(&x[0].s, sizeof(struct block_q8_1)));                    \
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(hsum8x8(p)), acc);     \
    return _mm256_fmadd_ps(mw, sa, acc);                                                    \
}                                                                                           \
                                                                                            \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    int64_t nb = n / 32;                                                                    \
    for (int g = 0, q = (nr + 3) / 4; g < q; g++) {                                         \
        DEC4_ROWS(BT);                                                                      \
        for (int t = 0; t < nt; t++) {                                                      \
            const struct block_q8_1 *x = (const struct block_q8_1 *)((const uint8_t *)a + (size_t)t * a_stride); \
            __m256 acc[4];                                                                  \
            int64_t b = 0;                                                                  \
            for (int i = 0; i < 4; i++)                                                     \
                acc[i] = _mm256_setzero_ps();                                               \
            for (; b + 8 <= nb; b += 8) {                                                   \
                _Pragma("GCC unroll 4")                                                     \
                for (int i = 0; i < 4; i++) {                                               \
                    acc[i] = name##_grp(wr[i] + b, x + b, acc[i]);                          \
                }                                                                           \
            }                                                                               \
            for (int i = 0; i < 4; i++) {                                                   \
                float l[8];                                                                 \
                if (ri[i] >= nr)                                                            \
                    continue;                                                               \
                _mm256_storeu_ps(l, acc[i]);                                                \
                for (int64_t c = b; c < nb; c++) {                                          \
                    int is = hsum_i32(mul_sum_u8(UW(&wr[i][c]), _mm256_loadu_si256((const __m256i *)x[c].qs))); \
                    l[c & 7] = fmaf(_cvtsh_ss(wr[i][c].d) * _cvtsh_ss(x[c].d), (float)is, l[c & 7]); \
                    l[c & 7] = fmaf(_cvtsh_ss(wr[i][c].m), _cvtsh_ss(x[c].s), l[c & 7]);    \
                }                                                                           \
                out[(size_t)t * o_stride + ri[i]] = red8(l);                                \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

LEG1_DEC(dec_q4_1, block_q4_1, w_q4_1)
LEG1_DEC(dec_q5_1, block_q5_1, w_q5_1)

/* RT_ACT_Q8_0S: the Q8_0 blocks of the AVX2 quantizer under this table (the same bytes
 * as the scalar one), split; sum(q) = sum(q ^ 0x80) - 128 * 32 through vpsadbw */
static rt_quant_fn q8_0_base;

/* RT_ACT_Q8_0P: the same blocks, placed (one token's row: small) */
static void quant_q8_0p_avx2(const float *x, void *dst, int64_t n)
{
    rt_q8_0p_quant(q8_0_base, x, dst, n);
}

static void quant_q8_0s_avx2(const float *x, void *dst, int64_t n)
{
    int64_t nb = n / 32;
    int8_t *q = dst;
    uint8_t *dp = (uint8_t *)dst + 32 * nb, *sp = dp + 4 * nb;
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
            memcpy(dp + 4 * (b0 + j), &d, 4);
            memcpy(sp + 4 * (b0 + j), &sum, 4);
        }
    }
}

void rt_kern_avx2_dec_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
#define D(dt, fn) (tab[dt].dec = fn, tab[dt].dec_act = RT_ACT_Q8_0S)
    D(DT_Q8_0, dec_q8_0);
#undef D
    tab[DT_Q8_0].dec8 = dec8_q8_0;
    tab[DT_Q8_0].pack8 = rt_pack_q8_0_x8;
    tab[DT_Q8_0].pack8_sb = sizeof(struct rt_q8_0_x8);
    tab[DT_Q8_0].pack8_n = 32;
#define D(dt, fn) (tab[dt].dec = fn, tab[dt].dec_act = RT_ACT_Q8_0P)
    D(DT_Q4_0, dec_q4_0);
    D(DT_Q5_0, dec_q5_0);
    D(DT_IQ4_NL, dec_iq4_nl);
#undef D
    tab[DT_Q4_1].dec = dec_q4_1;
    tab[DT_Q5_1].dec = dec_q5_1;
    tab[DT_Q4_1].dec_act = tab[DT_Q5_1].dec_act = RT_ACT_Q8_1;
    q8_0_base = q[RT_ACT_Q8_0];
    q[RT_ACT_Q8_0S] = quant_q8_0s_avx2;
    q[RT_ACT_Q8_0P] = quant_q8_0p_avx2;
    tab[DT_Q4_K].dec = dec_q4_k;
    tab[DT_Q4_K].dec8 = dec8_q4_k;
    tab[DT_Q4_K].pack8 = rt_pack_q4k_x8;
    tab[DT_Q4_K].pack8_sb = sizeof(struct rt_q4k_x8);
    tab[DT_Q4_K].pack8_n = 256;
    tab[DT_Q5_K].dec = dec_q5_k;
    tab[DT_Q5_K].dec_act = RT_ACT_Q8_K;
    tab[DT_IQ4_XS].dec = dec_iq4_xs;
    tab[DT_Q2_K].dec = dec_q2_k;
    tab[DT_Q3_K].dec = dec_q3_k;
    tab[DT_Q2_K].dec_act = tab[DT_Q3_K].dec_act = tab[DT_IQ4_XS].dec_act = RT_ACT_Q8_K;
    tab[DT_Q6_K].dec = dec_q6_k;
    tab[DT_Q6_K].dec8 = dec8_q6_k;
    tab[DT_Q6_K].pack8 = rt_pack_q6k_x8;
    tab[DT_Q6_K].pack8_sb = sizeof(struct rt_q6k_x8);
    tab[DT_Q6_K].pack8_n = 256;
    tab[DT_Q4_K].dec_act = tab[DT_Q6_K].dec_act = RT_ACT_Q8_K;
}

#else
/* not an x86-64 build with AVX2: never called */
void rt_kern_avx2_dec_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    (void)tab;
    (void)q;
}
#endif
