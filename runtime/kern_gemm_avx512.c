/*
 * kern_gemm_avx512.c - AVX-512 (F, BW, VL, VNNI) matrix kernels (kern.h's gemm: several
 * weight rows x several tokens, the prompt path), compiled with the flags of
 * kern_avx512.c; rt_kern_avx512_table (kern_avx512.c, the dot kernels) calls
 * rt_kern_avx512_gemm_table to add them.
 *
 * F32/F16/BF16: one 16-lane FMA accumulator per output (a tolerance against the scalar
 * twin), run as a register-tiled matrix kernel (8 rows x 3 tokens over an
 * f32-converted weight block) for prompts and row by row for decode, with the same
 * operations per output (see FP_GEMM); their dot entries are here too.
 * Q4_0/Q5_0/Q8_0/IQ4_NL: exact integer block sums on RT_ACT_Q8_0X16 activations, then
 * the dot twin's f32 operations in its order: the SAME BITS as kern_avx512.c's dot
 * (the unpackers are shared through kern_avx512.h).
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
 *   direct (1 or 2 tokens: decode): 4 rows at a time (a quarter of the rows apart),
 *     weights converted from the file on the fly, 4 independent FMA chains per token;
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
#define GM_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = c##r##0, c##r##2 = c##r##0;
#define GM_LOAD(r) c##r##0 = _mm512_load_ps(p0 + (r) * 16); c##r##1 = _mm512_load_ps(p1 + (r) * 16); \
                   c##r##2 = _mm512_load_ps(p2 + (r) * 16);
#define GM_STEP(r) { __m512 wv = _mm512_load_ps(ws + (r) * 16); GM_REG(wv)                \
                     c##r##0 = _mm512_fmadd_ps(wv, x0v, c##r##0);                          \
                     c##r##1 = _mm512_fmadd_ps(wv, x1v, c##r##1);                          \
                     c##r##2 = _mm512_fmadd_ps(wv, x2v, c##r##2); }
#define GM_PARK(r) _mm512_store_ps(p0 + (r) * 16, c##r##0); _mm512_store_ps(p1 + (r) * 16, c##r##1); \
                   _mm512_store_ps(p2 + (r) * 16, c##r##2);

/* GM_MR x GM_NR tile over ks k-steps of the packed block wp; the accumulators of token
 * c live in pc[GM_MR][16] after, and before unless `first` (zeros then: the same
 * values as a zeroed park, without writing it) */
static inline void gm_tile(int64_t ks, const float *wp, const float *x0, const float *x1,
                           const float *x2, float *p0, float *p1, float *p2, int first)
{
    GM_R8(GM_DECL)
    if (!first) {
        GM_R8(GM_LOAD)
    }
    for (int64_t s = 0; s < ks; s++) {
        const float *ws = wp + s * GM_MR * 16;
        __m512 x0v = _mm512_loadu_ps(x0 + 16 * s), x1v = _mm512_loadu_ps(x1 + 16 * s),
               x2v = _mm512_loadu_ps(x2 + 16 * s);
        GM_R8(GM_STEP)
    }
    GM_R8(GM_PARK)
}

/* the same for one token (a token count of 3k + 1: no two thirds of a tile wasted) */
#define G1_DECL(r) __m512 c##r = first ? _mm512_setzero_ps() : _mm512_load_ps(p0 + (r) * 16);
#define G1_STEP(r) c##r = _mm512_fmadd_ps(_mm512_load_ps(ws + (r) * 16), x0v, c##r);
#define G1_PARK(r) _mm512_store_ps(p0 + (r) * 16, c##r);
static inline void gm_tile1(int64_t ks, const float *wp, const float *x0, float *p0, int first)
{
    GM_R8(G1_DECL)
    for (int64_t s = 0; s < ks; s++) {
        const float *ws = wp + s * GM_MR * 16;
        __m512 x0v = _mm512_loadu_ps(x0 + 16 * s);
        GM_R8(G1_STEP)
    }
    GM_R8(G1_PARK)
}

#define GD_DECL(r) __m512 d##r = _mm512_setzero_ps();
#define GD_STEP(LD16, ES, r) d##r = _mm512_fmadd_ps(LD16(wr + (size_t)(r) * qs + i * ES), xv, d##r);
/* decode streams the weights once, as 4 streams a quarter of the part apart (rows r0,
 * r0 + q, r0 + 2q, r0 + 3q): far-apart streams read faster than 4 adjacent rows (one
 * 2-thread, 512 MiB run in 64-row parts, load 3.2: 27.8-28.0 vs 24.9-25.3 GB/s; 256-row
 * parts 30.6-32.5 vs 25.6-26.5).  Each cache line of a stream's next row is prefetched
 * while this row runs (the hardware prefetchers restart at every 4 KiB page, and an F16
 * row of 2048 is one page); a prefetch past the matrix never faults */
#define GD_PF(ES, r) _mm_prefetch((const char *)(wr + (size_t)(r) * qs + w_stride + i * ES), _MM_HINT_T0);
#define GD_OUT(TY, ES, r) out[r0 + (r) * q] = red16(d##r) + fp_tail(wr + (size_t)(r) * qs, ES, TY, x, n16, n);

#define FP_GEMM(name, ES, TY, LD16)                                                        \
static void name##_direct(int64_t n, const uint8_t *w, size_t w_stride, int nr,            \
                          const float *x, float *out)                                       \
{                                                                                           \
    int64_t n16 = n & ~(int64_t)15;                                                         \
    int q = nr / 4, r0 = 0;                                                                 \
    size_t qs = (size_t)q * w_stride;                                                       \
    for (; r0 < q; r0++) {                                                                  \
        const uint8_t *wr = w + (size_t)r0 * w_stride;                                      \
        GD_DECL(0) GD_DECL(1) GD_DECL(2) GD_DECL(3)                                         \
        for (int64_t i = 0; i < n16; i += 16) {                                             \
            __m512 xv = _mm512_loadu_ps(x + i);                                             \
            GD_STEP(LD16, ES, 0) GD_STEP(LD16, ES, 1) GD_STEP(LD16, ES, 2) GD_STEP(LD16, ES, 3) \
            if (((i * ES) & 63) == 0) {                                                     \
                GD_PF(ES, 0) GD_PF(ES, 1) GD_PF(ES, 2) GD_PF(ES, 3)                         \
            }                                                                               \
        }                                                                                   \
        GD_OUT(TY, ES, 0) GD_OUT(TY, ES, 1) GD_OUT(TY, ES, 2) GD_OUT(TY, ES, 3)             \
    }                                                                                       \
    for (r0 = 4 * q; r0 < nr; r0++) {                                                       \
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
        for (int64_t k0 = 0; k0 < n16; k0 += GM_KC) {                                       \
            int64_t kn = n16 - k0 < GM_KC ? n16 - k0 : GM_KC;                               \
            name##_pack(wr, w_stride, mr, k0, kn, wp);                                      \
            for (int t0 = 0; t0 < nt; t0 += GM_NR) {                                        \
                /* a token past nt reads token t0 and parks past nt (never read) */         \
                const float *x[GM_NR];                                                      \
                for (int c = 0; c < GM_NR; c++)                                             \
                    x[c] = (const float *)((const uint8_t *)a +                             \
                           (size_t)(t0 + c < nt ? t0 + c : t0) * a_stride) + k0;            \
                if (t0 + 1 == nt) {                                                         \
                    gm_tile1(kn / 16, wp, x[0], park + (size_t)t0 * GM_MR * 16, k0 == 0);   \
                    continue;                                                               \
                }                                                                           \
                gm_tile(kn / 16, wp, x[0], x[1], x[2], park + (size_t)t0 * GM_MR * 16,      \
                        park + (size_t)(t0 + 1) * GM_MR * 16,                               \
                        park + (size_t)(t0 + 2) * GM_MR * 16, k0 == 0);                     \
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
 * Q4_K / Q6_K matrix kernel (prompts) on the dot's RT_ACT_Q8_K activations.
 *
 * A tile of KQ_MR = 4 rows x KQ_NR = 4 tokens: per super-block, the 16 (row, token)
 * vectors of int32 partial sums (maddubs + madd by the sub-block scales, as the dot)
 * and the 16 mins sums (Q8_K bsums by the mins, or by 32 x the scales for Q6_K) are
 * reduced to one vector of 16 exact integers each (kq_red16: integer adds, so any
 * order gives the dot's isum and imin), then the dot's f32 operations run in the 16
 * lanes at once: fma(dw * dx, isum, acc), fma(-(dmin * dx), imin, acc) for Q4_K,
 * fma(dw * dx, isum - imin, acc) for Q6_K, super-block after super-block: the SAME BITS
 * as dot_q4_k_avx512 / dot_q6_k_avx512 (and kern_ref.c's twins).  A row group's
 * super-block is unpacked once for all the tokens; its accumulators live in a stack
 * array between super-blocks.  Lane i of a tile is row i / 4, token i % 4.
 */
#define KQ_MR 4
#define KQ_NR 4

/* 16 vectors of 16 int32 -> their 16 sums (lane i: the sum of v[i]) */
static inline __m512i kq_red16(const __m512i v[16])
{
    __m512i t[8], u[4], w0, w1;
    for (int k = 0; k < 8; k++)
        t[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * k], v[2 * k + 1]),
                                _mm512_unpackhi_epi32(v[2 * k], v[2 * k + 1]));
    for (int m = 0; m < 4; m++)
        u[m] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * m], t[2 * m + 1]),
                                _mm512_unpackhi_epi64(t[2 * m], t[2 * m + 1]));
    w0 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], 0x88), _mm512_shuffle_i32x4(u[0], u[1], 0xDD));
    w1 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[2], u[3], 0x88), _mm512_shuffle_i32x4(u[2], u[3], 0xDD));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(w0, w1, 0x88), _mm512_shuffle_i32x4(w0, w1, 0xDD));
}

/* 16 vectors of 8 int32 -> their 16 sums */
static inline __m512i kq_red16h(const __m256i v[16])
{
    __m256i t[8], u[4], y0, y1;
    for (int k = 0; k < 8; k++)
        t[k] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * k], v[2 * k + 1]),
                                _mm256_unpackhi_epi32(v[2 * k], v[2 * k + 1]));
    for (int m = 0; m < 4; m++)
        u[m] = _mm256_add_epi32(_mm256_unpacklo_epi64(t[2 * m], t[2 * m + 1]),
                                _mm256_unpackhi_epi64(t[2 * m], t[2 * m + 1]));
    y0 = _mm256_add_epi32(_mm256_permute2x128_si256(u[0], u[1], 0x20),
                          _mm256_permute2x128_si256(u[0], u[1], 0x31));
    y1 = _mm256_add_epi32(_mm256_permute2x128_si256(u[2], u[3], 0x20),
                          _mm256_permute2x128_si256(u[2], u[3], 0x31));
    return _mm512_inserti64x4(_mm512_castsi256_si512(y0), y1, 1);
}

/* one super-block of a tile: sw[KQ_MR] unpacked rows, x[KQ_NR] token blocks */
static inline void kq_tile(const struct sbz sw[KQ_MR], const struct block_q8_K *const x[KQ_NR],
                           __m512 dwv, __m512 dmv, int min, __m512 *acc)
{
    __m512i sv[16];
    __m256i mv[16];
    float dx[KQ_NR];
    for (int c = 0; c < KQ_NR; c++) {
        __m512i x0 = _mm512_loadu_si512((const void *)x[c]->qs);
        __m512i x1 = _mm512_loadu_si512((const void *)(x[c]->qs + 64));
        __m512i x2 = _mm512_loadu_si512((const void *)(x[c]->qs + 128));
        __m512i x3 = _mm512_loadu_si512((const void *)(x[c]->qs + 192));
        __m256i bs = _mm256_loadu_si256((const __m256i *)x[c]->bsums);
        for (int r = 0; r < KQ_MR; r++) {
            const struct sbz *w = &sw[r];
            __m512i p0 = _mm512_madd_epi16(_mm512_maddubs_epi16(w->q[0], x0), w->sc[0]);
            __m512i p1 = _mm512_madd_epi16(_mm512_maddubs_epi16(w->q[1], x1), w->sc[1]);
            __m512i p2 = _mm512_madd_epi16(_mm512_maddubs_epi16(w->q[2], x2), w->sc[2]);
            __m512i p3 = _mm512_madd_epi16(_mm512_maddubs_epi16(w->q[3], x3), w->sc[3]);
            sv[r * KQ_NR + c] = _mm512_add_epi32(_mm512_add_epi32(p0, p1), _mm512_add_epi32(p2, p3));
            mv[r * KQ_NR + c] = _mm256_madd_epi16(bs, w->s16);
        }
        dx[c] = x[c]->d;
    }
    __m512i is = kq_red16(sv), im = kq_red16h(mv);
    __m512 dxv = _mm512_broadcast_f32x4(_mm_loadu_ps(dx));   /* lane i: token i % 4 */
    if (min) {
        *acc = _mm512_fmadd_ps(_mm512_mul_ps(dwv, dxv), _mm512_cvtepi32_ps(is), *acc);
        /* -(dmin * dx): the product, then its sign flipped (exact) */
        __m512 nm = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(dmv, dxv)),
                                                         _mm512_set1_epi32((int)0x80000000u)));
        *acc = _mm512_fmadd_ps(nm, _mm512_cvtepi32_ps(im), *acc);
    } else {
        *acc = _mm512_fmadd_ps(_mm512_mul_ps(dwv, dxv), _mm512_cvtepi32_ps(_mm512_sub_epi32(is, im)), *acc);
    }
}

#define KQ_GEMM(name, BT, UN, MIN)                                                         \
static void name##_gemm(int64_t n, const void *w, size_t w_stride, int nr, const void *a,  \
                        size_t a_stride, int nt, float *out, size_t o_stride)               \
{                                                                                           \
    const uint8_t *wbase = w, *abase = a;                                                   \
    const int64_t nb = n / 256;                                                             \
    const int ntg = (nt + KQ_NR - 1) / KQ_NR;                                               \
    _Alignas(64) struct sbz sw[KQ_MR];                                                      \
    _Alignas(64) __m512 acc[RT_GEMM_MAXT / KQ_NR + 1];                                      \
    for (int r0 = 0; r0 < nr; r0 += KQ_MR) {                                                \
        int mr = nr - r0 < KQ_MR ? nr - r0 : KQ_MR;                                         \
        const struct BT *wr[KQ_MR];                                                         \
        for (int r = 0; r < KQ_MR; r++)   /* a row past nr repeats row r0 (never stored) */ \
            wr[r] = (const struct BT *)(wbase + (size_t)(r0 + (r < mr ? r : 0)) * w_stride); \
        for (int g = 0; g < ntg; g++)                                                       \
            acc[g] = _mm512_setzero_ps();                                                   \
        for (int64_t b = 0; b < nb; b++) {                                                  \
            float dw[16], dm[16];                                                           \
            for (int r = 0; r < KQ_MR; r++) {                                               \
                UN(&wr[r][b], &sw[r]);                                                      \
                for (int c = 0; c < KQ_NR; c++) {                                           \
                    dw[r * KQ_NR + c] = sw[r].d;                                            \
                    dm[r * KQ_NR + c] = sw[r].dmin;                                         \
                }                                                                           \
            }                                                                               \
            __m512 dwv = _mm512_loadu_ps(dw), dmv = _mm512_loadu_ps(dm);                    \
            for (int g = 0; g < ntg; g++) {                                                 \
                const struct block_q8_K *x[KQ_NR];                                          \
                for (int c = 0; c < KQ_NR; c++) {                                           \
                    /* a token past nt repeats token 4g (never stored) */                  \
                    int t = g * KQ_NR + c < nt ? g * KQ_NR + c : g * KQ_NR;                 \
                    x[c] = (const struct block_q8_K *)(abase + (size_t)t * a_stride) + b;   \
                }                                                                           \
                kq_tile(sw, x, dwv, dmv, MIN, &acc[g]);                                     \
            }                                                                               \
        }                                                                                   \
        for (int g = 0; g < ntg; g++) {                                                     \
            float l[16];                                                                    \
            _mm512_storeu_ps(l, acc[g]);                                                    \
            for (int r = 0; r < mr; r++)                                                    \
                for (int c = 0; c < KQ_NR && g * KQ_NR + c < nt; c++)                       \
                    out[(size_t)(g * KQ_NR + c) * o_stride + r0 + r] = l[r * KQ_NR + c];    \
        }                                                                                   \
    }                                                                                       \
}

KQ_GEMM(q4_k_avx512, block_q4_K, unz_q4_k, 1)
KQ_GEMM(q6_k_avx512, block_q6_K, unz_q6_k, 0)

void rt_kern_avx512_gemm_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
#define K(dt, ac, fn) tab[dt] = (struct rt_kern){ .dtype = dt, .act = ac, .dot = fn, .isa = RT_ISA_AVX512, .gemm_act = ac }
    K(DT_F32, RT_ACT_F32, f32_avx512_dot);
    K(DT_F16, RT_ACT_F32, f16_avx512_dot);
    K(DT_BF16, RT_ACT_F32, bf16_avx512_dot);
#undef K
    tab[DT_F32].gemm = f32_avx512_gemm;
    tab[DT_F16].gemm = f16_avx512_gemm;
    tab[DT_BF16].gemm = bf16_avx512_gemm;
    tab[DT_Q4_0].gemm = q4_0_avx512_gemm;
    tab[DT_Q8_0].gemm = q8_0_avx512_gemm;
    tab[DT_IQ4_NL].gemm = iq4_nl_avx512_gemm;
    tab[DT_Q5_0].gemm = q5_0_avx512_gemm;
    tab[DT_Q4_K].gemm = q4_k_avx512_gemm;   /* on the dot's Q8_K (set by the caller) */
    tab[DT_Q6_K].gemm = q6_k_avx512_gemm;
    tab[DT_Q4_0].gemm_act = tab[DT_Q8_0].gemm_act = RT_ACT_Q8_0X16;
    tab[DT_IQ4_NL].gemm_act = tab[DT_Q5_0].gemm_act = RT_ACT_Q8_0X16;
    q8_0_plain = q[RT_ACT_Q8_0];
    q[RT_ACT_Q8_0X16] = quant_q8_0x16;
}

#else
void rt_kern_avx512_gemm_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    (void)tab;
    (void)q;
}
#endif
