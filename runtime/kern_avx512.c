/*
 * kern_avx512.c - AVX-512 (F, BW, VL, VNNI) kernels for the prompt path (compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c; matmul.c calls them
 * only on such CPUs).
 *
 * Only what the wider registers speed up is here (F32, F16, BF16, Q4_0, Q5_0, Q8_0,
 * IQ4_NL, Q4_K, Q6_K): tiles of several tokens, where a
 * weight block group is unpacked once into zmm registers (32 of them: no spills) and
 * multiplied by every token.  Quantized kernels give the SAME BITS as kern_ref.c
 * (exact integer block sums, then the twin's f32 operations in its order), so
 * matmul.c may use the AVX2 kernel for a single token (decode, memory-bound) and this
 * one for a batch.  F32/F16/BF16: one 16-lane FMA accumulator per output (a tolerance
 * against the scalar twin), run as a register-tiled matrix kernel (kern.h's gemm: 8
 * rows x 3 tokens over an f32-converted weight block) for prompts and row by row for
 * decode, with the same operations per output (see FP_GEMM).
 */
#include "kern.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VNNI__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../formats/dtype.h"
#include "../common/banned.h"

#define MAXT 8

static float red8(const float s[8])
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

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
 * F32 / F16 / BF16
 */

static inline __m512 ld16_f32(const uint8_t *p) { return _mm512_loadu_ps((const float *)p); }
static inline __m512 ld16_f16(const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
static inline __m512 ld16_bf16(const uint8_t *p)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
static inline float ld1_f32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }
static inline float ld1_f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }
static inline float ld1_bf16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float red16(__m512 v)
{
    float l[16], s[8];
    _mm512_storeu_ps(l, v);
    for (int i = 0; i < 8; i++)
        s[i] = l[i] + l[i + 8];
    return red8(s);
}

/*
 * The F32/F16/BF16 product, defined per output (every path below gives these bits):
 * ONE 16-lane f32 accumulator, acc = fma(w[i..i+16), x[i..i+16), acc) for i = 0, 16,
 * ... < n16 = n & ~15 in order, then red16(acc) + tail, tail = the remaining n - n16
 * products summed left to right in f32 (no contraction: -ffp-contract=off).
 *
 * Two ways to run it, chosen by the token count, with the same operations per output:
 *   direct (1 or 2 tokens: decode): GM_MR rows at a time, weights converted from the
 *     file on the fly, GM_MR independent FMA chains per token;
 *   packed (prompts): a block of GM_MR rows x GM_KC columns is converted once to f32
 *     into an L1-sized buffer (k-step major: 16 lanes of row 0, of row 1, ...), then a
 *     GM_MR x GM_NR register tile (24 zmm accumulators) runs over it for every GM_NR
 *     tokens, reading the activations from L2.  The accumulators of a tile are parked
 *     in a stack buffer between column blocks and reloaded unchanged, so blocking the
 *     columns never changes a bit.
 */
#define GM_MR 8
#define GM_NR 3
#define GM_KC 512

static inline float fp_tail(const uint8_t *wr, int es, int ty, const float *x, int64_t n16, int64_t n)
{
    float tail = 0;
    for (int64_t i = n16; i < n; i++) {
        const uint8_t *p = wr + i * es;
        float w = ty == 0 ? ld1_f32(p) : ty == 1 ? ld1_f16(p) : ld1_bf16(p);
        tail += w * x[i];
    }
    return tail;
}

/* a loaded weight vector stays in a register: otherwise compilers fold the load into each
 * of its GM_NR FMAs, and GM_NR x GM_MR loads per k-step (instead of GM_MR + GM_NR) make the
 * tile load-bound (Zen 4, one thread, F16 2048x2048 x 128 tokens: 92 -> 134-144 GFLOP/s,
 * same bits) */
#define GM_REG(v) __asm__("" : "+v"(v));
/* the register tile, written out (compilers do not keep arrays of zmm in registers) */
#define GM_R8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define GM_DECL(r) __m512 c##r##0 = _mm512_load_ps(p0 + (r) * 16), c##r##1 = _mm512_load_ps(p1 + (r) * 16), \
                          c##r##2 = _mm512_load_ps(p2 + (r) * 16);
#define GM_STEP(r) { __m512 wv = _mm512_load_ps(ws + (r) * 16); GM_REG(wv)                \
                     c##r##0 = _mm512_fmadd_ps(wv, x0v, c##r##0);                          \
                     c##r##1 = _mm512_fmadd_ps(wv, x1v, c##r##1);                          \
                     c##r##2 = _mm512_fmadd_ps(wv, x2v, c##r##2); }
#define GM_PARK(r) _mm512_store_ps(p0 + (r) * 16, c##r##0); _mm512_store_ps(p1 + (r) * 16, c##r##1); \
                   _mm512_store_ps(p2 + (r) * 16, c##r##2);

/* GM_MR x GM_NR tile over ks k-steps of the packed block wp; the accumulators of token
 * c live in pc[GM_MR][16] before and after */
static inline void gm_tile(int64_t ks, const float *wp, const float *x0, const float *x1,
                           const float *x2, float *p0, float *p1, float *p2)
{
    GM_R8(GM_DECL)
    for (int64_t s = 0; s < ks; s++) {
        const float *ws = wp + s * GM_MR * 16;
        __m512 x0v = _mm512_loadu_ps(x0 + 16 * s), x1v = _mm512_loadu_ps(x1 + 16 * s),
               x2v = _mm512_loadu_ps(x2 + 16 * s);
        GM_R8(GM_STEP)
    }
    GM_R8(GM_PARK)
}

#define GD_DECL(r) __m512 d##r = _mm512_setzero_ps();
#define GD_STEP(LD16, ES, r) d##r = _mm512_fmadd_ps(LD16(wr + (size_t)(r) * w_stride + i * ES), xv, d##r);
/* decode streams the weights once: each cache line of the next 4-row group is prefetched
 * while this group runs (the hardware prefetchers restart at every 4 KiB page, and an F16
 * row of 2048 is one page); a prefetch past the matrix never faults */
#define GD_PF(ES, r) _mm_prefetch((const char *)(wr + (size_t)(4 + (r)) * w_stride + i * ES), _MM_HINT_T0);
#define GD_OUT(TY, ES, r) out[r0 + (r)] = red16(d##r) + fp_tail(wr + (size_t)(r) * w_stride, ES, TY, x, n16, n);

#define FP_GEMM(name, ES, TY, LD16)                                                        \
static void name##_direct(int64_t n, const uint8_t *w, size_t w_stride, int nr,            \
                          const float *x, float *out)                                       \
{                                                                                           \
    int64_t n16 = n & ~(int64_t)15;                                                         \
    int r0 = 0;                                                                             \
    for (; r0 + 4 <= nr; r0 += 4) {                                                         \
        const uint8_t *wr = w + (size_t)r0 * w_stride;                                      \
        GD_DECL(0) GD_DECL(1) GD_DECL(2) GD_DECL(3)                                         \
        for (int64_t i = 0; i < n16; i += 16) {                                             \
            __m512 xv = _mm512_loadu_ps(x + i);                                             \
            GD_STEP(LD16, ES, 0) GD_STEP(LD16, ES, 1) GD_STEP(LD16, ES, 2) GD_STEP(LD16, ES, 3) \
            if (((i * ES) & 63) == 0) {                                                     \
                GD_PF(ES, 0) GD_PF(ES, 1) GD_PF(ES, 2) GD_PF(ES, 3)                                      \
            }                                                                               \
        }                                                                                   \
        GD_OUT(TY, ES, 0) GD_OUT(TY, ES, 1) GD_OUT(TY, ES, 2) GD_OUT(TY, ES, 3)             \
    }                                                                                       \
    for (; r0 < nr; r0++) {                                                                 \
        const uint8_t *wr = w + (size_t)r0 * w_stride;                                      \
        __m512 acc = _mm512_setzero_ps();                                                   \
        for (int64_t i = 0; i < n16; i += 16)                                               \
            acc = _mm512_fmadd_ps(LD16(wr + i * ES), _mm512_loadu_ps(x + i), acc);          \
        out[r0] = red16(acc) + fp_tail(wr, ES, TY, x, n16, n);                              \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static void name##_pack(const uint8_t *w, size_t w_stride, int mr, int64_t k0, int64_t kn, \
                        float *wp)                                                          \
{                                                                                           \
    for (int r = 0; r < GM_MR; r++)                                                         \
        for (int64_t s = 0; s < kn / 16; s++)                                               \
            _mm512_store_ps(wp + (s * GM_MR + r) * 16, r < mr ?                             \
                            LD16(w + (size_t)r * w_stride + (k0 + 16 * s) * ES) :           \
                            _mm512_setzero_ps());                                           \
}                                                                                           \
                                                                                            \
static void name##_gemm(int64_t n, const void *w, size_t w_stride, int nr, const void *a,  \
                        size_t a_stride, int nt, float *out, size_t o_stride)               \
{                                                                                           \
    const uint8_t *wb = w;                                                                  \
    int64_t n16 = n & ~(int64_t)15;                                                         \
    if (nt <= 2 || n16 == 0) {                                                              \
        for (int t = 0; t < nt; t++)                                                        \
            name##_direct(n, wb, w_stride, nr,                                              \
                          (const float *)((const uint8_t *)a + (size_t)t * a_stride),       \
                          out + (size_t)t * o_stride);                                      \
        return;                                                                             \
    }                                                                                       \
    _Alignas(64) float wp[GM_KC * GM_MR];                                                   \
    _Alignas(64) float park[(RT_GEMM_MAXT + GM_NR) * GM_MR * 16];                           \
    for (int r0 = 0; r0 < nr; r0 += GM_MR) {                                                \
        int mr = nr - r0 < GM_MR ? nr - r0 : GM_MR;                                         \
        const uint8_t *wr = wb + (size_t)r0 * w_stride;                                     \
        memset(park, 0, (size_t)(nt + GM_NR) * GM_MR * 16 * sizeof(float));                \
        for (int64_t k0 = 0; k0 < n16; k0 += GM_KC) {                                       \
            int64_t kn = n16 - k0 < GM_KC ? n16 - k0 : GM_KC;                               \
            name##_pack(wr, w_stride, mr, k0, kn, wp);                                      \
            for (int t0 = 0; t0 < nt; t0 += GM_NR) {                                        \
                /* a token past nt reads token t0 and parks past nt (never read) */         \
                const float *x[GM_NR];                                                      \
                for (int c = 0; c < GM_NR; c++)                                             \
                    x[c] = (const float *)((const uint8_t *)a +                             \
                           (size_t)(t0 + c < nt ? t0 + c : t0) * a_stride) + k0;            \
                gm_tile(kn / 16, wp, x[0], x[1], x[2], park + (size_t)t0 * GM_MR * 16,      \
                        park + (size_t)(t0 + 1) * GM_MR * 16,                               \
                        park + (size_t)(t0 + 2) * GM_MR * 16);                              \
            }                                                                               \
        }                                                                                   \
        for (int t = 0; t < nt; t++) {                                                      \
            const float *xt = (const float *)((const uint8_t *)a + (size_t)t * a_stride);   \
            for (int r = 0; r < mr; r++)                                                    \
                out[(size_t)t * o_stride + r0 + r] =                                        \
                    red16(_mm512_load_ps(park + ((size_t)t * GM_MR + r) * 16)) +            \
                    fp_tail(wr + (size_t)r * w_stride, ES, TY, xt, n16, n);                 \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
/* one row (kern.h's dot): the same operations */                                          \
static void name##_dot(int64_t n, const void *w, const void *a, size_t a_stride, int nt,   \
                       float *out, size_t o_stride)                                         \
{                                                                                           \
    for (int t = 0; t < nt; t++)                                                            \
        name##_direct(n, w, 0, 1, (const float *)((const uint8_t *)a + (size_t)t * a_stride), \
                      out + (size_t)t * o_stride);                                          \
}

FP_GEMM(f32_avx512, 4, 0, ld16_f32)
FP_GEMM(f16_avx512, 2, 1, ld16_f16)
FP_GEMM(bf16_avx512, 2, 2, ld16_bf16)

/* ---------------------------------------------------------------------------------
 * Legacy blocks of 32, eight at a time: two blocks per zmm, VNNI dot products.
 * Signed weights: |w| as the unsigned operand, the activation negated where w < 0.
 */

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
 * Q4_0 / Q5_0 / Q8_0 / IQ4_NL matrix kernel (prompts) on RT_ACT_Q8_0X16 activations.
 *
 * Groups of 16 blocks are laid out "4 bytes of 16 blocks per register" (kern.h), for
 * the activations by the quantizer below and for a tile of QG_MR weight rows by
 * qg_pack; then 8 vpdpbusd per (row, token) give the 16 block sums in the 16 lanes
 * with no horizontal reduction.  vpdpbusd multiplies u8 by s8, so the activations are
 * stored as q + 128 and the weights' 128 * sum(w) (from the same instruction) is taken
 * off: the block sums are exact integers, as in the scalar twin.  The scaling is the
 * twin's to the bit: lane j of the group (block 16g + j) goes to accumulator lane
 * j % 8, blocks 16g..16g+7 first (one 8-lane FMA), then 16g+8..16g+15, each
 * fma(dw * da, (float)isum, acc); then the last nb % 16 blocks one by one and red8.
 */
#define QG_MR 4
#define QG_NR 4
#define QG_KG 8     /* groups per packed column block: 8 x 4 x 640 B = 20 KB */
#define QG_AB 576   /* bytes of an activation group */

struct qg_w {
    __m512i q[8];    /* interleaved s8 weights */
    __m512i corr;    /* 128 * sum(w) per block */
    __m512  d;       /* the 16 scales */
};

static rt_quant_fn q8_0_plain;   /* the Q8_0 quantizer this table sits on (AVX2) */

static inline __m512i qg_idx(int i, int stride)
{
    return _mm512_add_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                                 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(stride)),
                            _mm512_set1_epi32(4 * i));
}

static void quant_q8_0x16(const float *x, void *dst, int64_t n)
{
    uint8_t *o = dst;
    int64_t nb = n / 32, b = 0;
    struct block_q8_0 tmp[16];

    for (; b + 16 <= nb; b += 16, o += QG_AB) {
        q8_0_plain(x + b * 32, tmp, 512);
        for (int i = 0; i < 8; i++) {
            __m512i v = _mm512_i32gather_epi32(qg_idx(i, (int)sizeof tmp[0]),
                                               (const void *)tmp[0].qs, 1);
            _mm512_storeu_si512((void *)(o + 64 * i), _mm512_xor_si512(v, _mm512_set1_epi8(-128)));
        }
        float d[16];
        for (int j = 0; j < 16; j++)
            d[j] = _cvtsh_ss(tmp[j].d);
        memcpy(o + 512, d, sizeof d);
    }
    if (b < nb)
        q8_0_plain(x + b * 32, o, (nb - b) * 32);
}

/* exact sum of a signed weight block by an activation block */
static inline int blk_isum(__m256i q, const int8_t *ya)
{
    __m256i y = _mm256_loadu_si256((const __m256i *)ya);
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q)),
                                  _mm256_set1_epi16(1));
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
    return _mm_cvtsi128_si32(r);
}

/* QG_MR x QG_NR tile over one group: park[t][r] are 8-lane accumulators */
static inline void qg_tile(const struct qg_w *w, const uint8_t *const a[QG_NR], __m256 *pk[QG_NR])
{
    __m512i s00 = _mm512_setzero_si512(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00,
            s12 = s00, s13 = s00, s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00,
            s31 = s00, s32 = s00, s33 = s00;
    for (int i = 0; i < 8; i++) {
        __m512i a0 = _mm512_loadu_si512((const void *)(a[0] + 64 * i));
        __m512i a1 = _mm512_loadu_si512((const void *)(a[1] + 64 * i));
        __m512i a2 = _mm512_loadu_si512((const void *)(a[2] + 64 * i));
        __m512i a3 = _mm512_loadu_si512((const void *)(a[3] + 64 * i));
        __m512i w0 = w[0].q[i], w1 = w[1].q[i], w2 = w[2].q[i], w3 = w[3].q[i];
        s00 = _mm512_dpbusd_epi32(s00, a0, w0); s01 = _mm512_dpbusd_epi32(s01, a1, w0);
        s02 = _mm512_dpbusd_epi32(s02, a2, w0); s03 = _mm512_dpbusd_epi32(s03, a3, w0);
        s10 = _mm512_dpbusd_epi32(s10, a0, w1); s11 = _mm512_dpbusd_epi32(s11, a1, w1);
        s12 = _mm512_dpbusd_epi32(s12, a2, w1); s13 = _mm512_dpbusd_epi32(s13, a3, w1);
        s20 = _mm512_dpbusd_epi32(s20, a0, w2); s21 = _mm512_dpbusd_epi32(s21, a1, w2);
        s22 = _mm512_dpbusd_epi32(s22, a2, w2); s23 = _mm512_dpbusd_epi32(s23, a3, w2);
        s30 = _mm512_dpbusd_epi32(s30, a0, w3); s31 = _mm512_dpbusd_epi32(s31, a1, w3);
        s32 = _mm512_dpbusd_epi32(s32, a2, w3); s33 = _mm512_dpbusd_epi32(s33, a3, w3);
    }
    __m512i sv[QG_MR][QG_NR] = { { s00, s01, s02, s03 }, { s10, s11, s12, s13 },
                                 { s20, s21, s22, s23 }, { s30, s31, s32, s33 } };
    for (int c = 0; c < QG_NR; c++) {
        __m512 da = _mm512_loadu_ps((const float *)(a[c] + 512));
        for (int r = 0; r < QG_MR; r++) {
            __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(sv[r][c], w[r].corr));
            __m512 sc = _mm512_mul_ps(w[r].d, da);
            __m256 acc = _mm256_fmadd_ps(_mm512_castps512_ps256(sc), _mm512_castps512_ps256(f), pk[c][r]);
            pk[c][r] = _mm256_fmadd_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sc), 1)),
                                       _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)), acc);
        }
    }
}

#define QG_GEMM(name, BT, WF)                                                              \
static void name##_pack(const struct BT *wb, int64_t g, struct qg_w *o)                    \
{                                                                                           \
    _Alignas(32) int8_t tmp[16][32];                                                        \
    uint16_t dh[16];                                                                        \
    for (int j = 0; j < 16; j++) {                                                          \
        _mm256_store_si256((__m256i *)tmp[j], WF(&wb[16 * g + j]));                         \
        dh[j] = wb[16 * g + j].d;                                                           \
    }                                                                                       \
    __m512i corr = _mm512_setzero_si512();                                                  \
    for (int i = 0; i < 8; i++) {                                                           \
        o->q[i] = _mm512_i32gather_epi32(qg_idx(i, 32), (const void *)tmp, 1);              \
        corr = _mm512_dpbusd_epi32(corr, _mm512_set1_epi8(-128), o->q[i]);                  \
    }                                                                                       \
    o->corr = corr;                                                                         \
    o->d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dh));                        \
}                                                                                           \
                                                                                            \
static void name##_gemm(int64_t n, const void *w, size_t w_stride, int nr, const void *a,  \
                        size_t a_stride, int nt, float *out, size_t o_stride)               \
{                                                                                           \
    const uint8_t *wbase = w, *abase = a;                                                   \
    int64_t nb = n / 32, ng = nb / 16;                                                      \
    _Alignas(64) struct qg_w wp[QG_KG * QG_MR];                                             \
    _Alignas(64) __m256 park[(RT_GEMM_MAXT + QG_NR) * QG_MR];                              \
    for (int r0 = 0; r0 < nr; r0 += QG_MR) {                                                \
        int mr = nr - r0 < QG_MR ? nr - r0 : QG_MR;                                         \
        for (int k = 0; k < (nt + QG_NR) * QG_MR; k++)                                      \
            park[k] = _mm256_setzero_ps();                                                  \
        for (int64_t g0 = 0; g0 < ng; g0 += QG_KG) {                                        \
            int kg = ng - g0 < QG_KG ? (int)(ng - g0) : QG_KG;                              \
            for (int g = 0; g < kg; g++)                                                    \
                for (int r = 0; r < QG_MR; r++) {                                           \
                    if (r < mr)                                                             \
                        name##_pack((const struct BT *)(wbase + (size_t)(r0 + r) * w_stride), \
                                    g0 + g, &wp[g * QG_MR + r]);                            \
                    else                                                                    \
                        memset(&wp[g * QG_MR + r], 0, sizeof wp[0]);                        \
                }                                                                           \
            for (int t0 = 0; t0 < nt; t0 += QG_NR) {                                        \
                const uint8_t *ac[QG_NR];                                                   \
                __m256 *pk[QG_NR];                                                          \
                for (int c = 0; c < QG_NR; c++) {                                           \
                    /* a token past nt reads token t0 and parks past nt (never read) */     \
                    ac[c] = abase + (size_t)(t0 + c < nt ? t0 + c : t0) * a_stride;         \
                    pk[c] = park + (size_t)(t0 + c) * QG_MR;                                \
                }                                                                           \
                for (int g = 0; g < kg; g++) {                                              \
                    const uint8_t *ag[QG_NR];                                               \
                    for (int c = 0; c < QG_NR; c++)                                         \
                        ag[c] = ac[c] + (size_t)(g0 + g) * QG_AB;                           \
                    qg_tile(&wp[g * QG_MR], ag, pk);                                        \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
        for (int t = 0; t < nt; t++) {                                                      \
            const struct block_q8_0 *at =                                                   \
                (const struct block_q8_0 *)(abase + (size_t)t * a_stride + (size_t)ng * QG_AB); \
            for (int r = 0; r < mr; r++) {                                                  \
                const struct BT *wr = (const struct BT *)(wbase + (size_t)(r0 + r) * w_stride); \
                float l[8];                                                                 \
                _mm256_storeu_ps(l, park[(size_t)t * QG_MR + r]);                           \
                for (int64_t b = ng * 16; b < nb; b++)                                      \
                    l[b & 7] = fmaf(_cvtsh_ss(wr[b].d) * _cvtsh_ss(at[b - ng * 16].d),      \
                                    (float)blk_isum(WF(&wr[b]), at[b - ng * 16].qs), l[b & 7]); \
                out[(size_t)t * o_stride + r0 + r] = red8(l);                               \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

QG_GEMM(q4_0_avx512, block_q4_0, w_q4_0)
QG_GEMM(q8_0_avx512, block_q8_0, w_q8_0)
QG_GEMM(iq4_nl_avx512, block_iq4_nl, w_iq4_nl)
QG_GEMM(q5_0_avx512, block_q5_0, w_q5_0)

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
    K(DT_F32, RT_ACT_F32, f32_avx512_dot);
    K(DT_F16, RT_ACT_F32, f16_avx512_dot);
    K(DT_BF16, RT_ACT_F32, bf16_avx512_dot);
    tab[DT_F32].gemm = f32_avx512_gemm;
    tab[DT_F16].gemm = f16_avx512_gemm;
    tab[DT_BF16].gemm = bf16_avx512_gemm;
    K(DT_Q4_0, RT_ACT_Q8_0, dot_q4_0_avx512);
    K(DT_Q8_0, RT_ACT_Q8_0, dot_q8_0_avx512);
    K(DT_IQ4_NL, RT_ACT_Q8_0, dot_iq4_nl_avx512);
    K(DT_Q5_0, RT_ACT_Q8_0, dot_q5_0_avx512);
    K(DT_Q4_K, RT_ACT_Q8_K, dot_q4_k_avx512);
    K(DT_Q6_K, RT_ACT_Q8_K, dot_q6_k_avx512);
    tab[DT_Q4_0].gemm = q4_0_avx512_gemm;
    tab[DT_Q8_0].gemm = q8_0_avx512_gemm;
    tab[DT_IQ4_NL].gemm = iq4_nl_avx512_gemm;
    tab[DT_Q5_0].gemm = q5_0_avx512_gemm;
    tab[DT_Q4_0].gemm_act = tab[DT_Q8_0].gemm_act = RT_ACT_Q8_0X16;
    tab[DT_IQ4_NL].gemm_act = tab[DT_Q5_0].gemm_act = RT_ACT_Q8_0X16;
    q8_0_plain = q[RT_ACT_Q8_0];
    q[RT_ACT_Q8_0X16] = quant_q8_0x16;
#undef K
    /* the AVX2 activation quantizers stay (memory-bound, same bytes) */
}

#else
void rt_kern_avx512_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    (void)tab;
    (void)q;
}
#endif
