/*
 * kern_fp_avx2.c - AVX2 + FMA + F16C kernels for F32/F16/BF16 weights on f32
 * activations (compiled with -mavx2 -mfma -mf16c by the Makefile's *_avx2.c rule):
 * the dot, the matrix kernel for prompts and the streaming path for decode, all three
 * giving each output the same bits.  rt_kern_avx2_table (kern_avx2.c) calls
 * rt_kern_avx2_fp_table to add them.  The AVX2 port of kern_gemm_avx512.c's FP_GEMM:
 * the same register tile, parked accumulators and decode streams, with 8-lane vectors
 * and 16 ymm registers.
 *
 * The product, defined per output (a tolerance against the scalar twin, kern_ref.c):
 * ONE 8-lane f32 accumulator, acc = fma(w[i..i+8), x[i..i+8), acc) for i = 0, 8, ...
 * < n8 = n & ~7 in order, then red8(acc) + tail, tail = the remaining n - n8 products
 * summed left to right in f32 (no contraction: -ffp-contract=off).
 *
 * Two ways to run it, chosen by the token count, with the same operations per output:
 *   direct (1 or 2 tokens: decode): FD_NS rows at a time, each 1/FD_NS of the part
 *     apart (FD_NS streams), weights converted from the file on the fly, FD_NS
 *     independent FMA chains;
 *   packed (prompts): a block of GM_MR rows x GM_KC columns is converted once to f32
 *     into an L1-sized buffer (k-step major: 8 lanes of row 0, of row 1, ...) by the
 *     first tile of the group, which reads the file while it computes, then a
 *     GM_MR x GM_NR register tile (12 ymm accumulators, 3 activation vectors, 1 weight
 *     vector: all 16 registers) runs over it for every GM_NR tokens, reading the
 *     activations from L2; the next group's block is prefetched meanwhile.  The
 *     accumulators of a tile are parked in a stack buffer between column blocks and
 *     reloaded unchanged, so blocking never changes a bit.
 *     Column blocks are the outer loop over GM_MB rows (16 row groups), so a block's
 *     activations (64 tokens x GM_KC f32 = 128 KiB) stay in L2 for all of them, even
 *     where all the columns do not (FFN down: 64 x 5632 f32 = 1.4 MiB).
 */
#include "kern.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "../formats/dtype.h"
#include "kern_avx2.h"
#include "../common/banned.h"

static inline __m256 ld8_f32(const uint8_t *p) { return _mm256_loadu_ps((const float *)p); }
static inline __m256 ld8_f16(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
static inline __m256 ld8_bf16(const uint8_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
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

#define GM_MR 4
#define GM_NR 3
/* packed block: 4 x 512 f32 = 8 KiB of the 32 KiB L1.  1024 (16 KiB; with the 3
 * activation streams and the next block's prefetch nearly all of L1) ran 0-2% slower on
 * a quiet core and ~9% slower on one shared with another process (one thread, F16, 64
 * tokens, thread CPU time: 2048 x 2048 80.3 vs 80.3, 5632 x 4096 82.0 vs 80.7 GFLOP/s;
 * shared: 59.4 vs 54.4); 256 was 2-4% slower than 1024 */
#define GM_KC 512
#define GM_MB 64     /* rows whose accumulators stay parked across column blocks (134 KiB) */

static inline float fp_tail(const uint8_t *wr, int es, int ty, const float *x, int64_t n8, int64_t n)
{
    float tail = 0;
    for (int64_t i = n8; i < n; i++) {
        const uint8_t *p = wr + i * es;
        float w = ty == 0 ? ld1_f32(p) : ty == 1 ? ld1_f16(p) : ld1_bf16(p);
        tail += w * x[i];
    }
    return tail;
}

/* red8 of 8 vectors at once: lane j of the result is red8 of p[j] (lanes 0-3 from
 * p[0..3], 4-7 from p[4..7]); the same adds in the same order, so the same bits */
static inline __m256 red8x8(const float *p0, const float *p1)
{
    __m256 q[4];
    for (int i = 0; i < 4; i++) {
        __m256 a = _mm256_load_ps(p0 + 8 * i), b = _mm256_load_ps(p1 + 8 * i);
        /* s_k + s_(k+4): lanes [a0 a1 a2 a3] of p0[i], then of p1[i] */
        q[i] = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    }
    __m256 t0 = _mm256_unpacklo_ps(q[0], q[1]), t1 = _mm256_unpackhi_ps(q[0], q[1]);
    __m256 t2 = _mm256_unpacklo_ps(q[2], q[3]), t3 = _mm256_unpackhi_ps(q[2], q[3]);
    __m256 a0 = _mm256_shuffle_ps(t0, t2, 0x44), a1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 a2 = _mm256_shuffle_ps(t1, t3, 0x44), a3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    return _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));
}

/* a loaded weight vector stays in a register (kern_gemm_avx512.c's GM_REG): otherwise
 * compilers fold the load into each of its GM_NR FMAs and the tile becomes load-bound */
#define GM_REG(v) __asm__("" : "+x"(v));
/* the register tile, written out (compilers do not keep arrays of ymm in registers) */
#define GM_R4(M) M(0) M(1) M(2) M(3)
#define GM_DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = c##r##0, c##r##2 = c##r##0;
#define GM_LOAD(r) c##r##0 = _mm256_load_ps(p0 + (r) * 8); c##r##1 = _mm256_load_ps(p1 + (r) * 8); \
                   c##r##2 = _mm256_load_ps(p2 + (r) * 8);
#define GM_STEP(r) { __m256 wv = _mm256_load_ps(ws + (r) * 8); GM_REG(wv)                  \
                     c##r##0 = _mm256_fmadd_ps(wv, x0v, c##r##0);                          \
                     c##r##1 = _mm256_fmadd_ps(wv, x1v, c##r##1);                          \
                     c##r##2 = _mm256_fmadd_ps(wv, x2v, c##r##2); }
#define GM_PARK(r) _mm256_store_ps(p0 + (r) * 8, c##r##0); _mm256_store_ps(p1 + (r) * 8, c##r##1); \
                   _mm256_store_ps(p2 + (r) * 8, c##r##2);

/* GM_MR x GM_NR tile over ks k-steps of the packed block wp; the accumulators of token
 * c live in pc[GM_MR][8] after, and before unless `first` (zeros then: the same values
 * as a zeroed park, without writing it) */
static inline void gm_tile(int64_t ks, const float *wp, const float *x0, const float *x1,
                           const float *x2, float *p0, float *p1, float *p2, int first)
{
    GM_R4(GM_DECL)
    if (!first) {
        GM_R4(GM_LOAD)
    }
    for (int64_t s = 0; s < ks; s++) {
        const float *ws = wp + s * GM_MR * 8;
        __m256 x0v = _mm256_loadu_ps(x0 + 8 * s), x1v = _mm256_loadu_ps(x1 + 8 * s),
               x2v = _mm256_loadu_ps(x2 + 8 * s);
        GM_R4(GM_STEP)
    }
    GM_R4(GM_PARK)
}

/* the same for one token (a token count of 3k + 1: no two thirds of a tile wasted) */
#define G1_DECL(r) __m256 c##r = first ? _mm256_setzero_ps() : _mm256_load_ps(p0 + (r) * 8);
#define G1_STEP(r) c##r = _mm256_fmadd_ps(_mm256_load_ps(ws + (r) * 8), x0v, c##r);
#define G1_PARK(r) _mm256_store_ps(p0 + (r) * 8, c##r);
static inline void gm_tile1(int64_t ks, const float *wp, const float *x0, float *p0, int first)
{
    GM_R4(G1_DECL)
    for (int64_t s = 0; s < ks; s++) {
        const float *ws = wp + s * GM_MR * 8;
        __m256 x0v = _mm256_loadu_ps(x0 + 8 * s);
        GM_R4(G1_STEP)
    }
    GM_R4(G1_PARK)
}

/* the same for two tokens (a token count of 3k + 2, or the last 4 of 3k + 1: 8 FMAs a
 * step on 6 loads, as busy as the 3-token tile, where one token alone is 4 FMA chains
 * that wait on their latency) */
#define G2_DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = c##r##0;
#define G2_LOAD(r) c##r##0 = _mm256_load_ps(p0 + (r) * 8); c##r##1 = _mm256_load_ps(p1 + (r) * 8);
#define G2_STEP(r) { __m256 wv = _mm256_load_ps(ws + (r) * 8); GM_REG(wv)                  \
                     c##r##0 = _mm256_fmadd_ps(wv, x0v, c##r##0);                          \
                     c##r##1 = _mm256_fmadd_ps(wv, x1v, c##r##1); }
#define G2_PARK(r) _mm256_store_ps(p0 + (r) * 8, c##r##0); _mm256_store_ps(p1 + (r) * 8, c##r##1);
static inline void gm_tile2(int64_t ks, const float *wp, const float *x0, const float *x1,
                            float *p0, float *p1, int first)
{
    GM_R4(G2_DECL)
    if (!first) {
        GM_R4(G2_LOAD)
    }
    for (int64_t s = 0; s < ks; s++) {
        const float *ws = wp + s * GM_MR * 8;
        __m256 x0v = _mm256_loadu_ps(x0 + 8 * s), x1v = _mm256_loadu_ps(x1 + 8 * s);
        GM_R4(G2_STEP)
    }
    GM_R4(G2_PARK)
}

/* The first tile of a row group converts the weights as it goes: it reads the 4 rows
 * from the file (LD8), keeps each vector for its 3 FMAs and stores it into the packed
 * block for the group's other tiles (the same values the tile reads back, so the same
 * bits).  A separate packing pass cost ~6% of the kernel's time (one thread, F16 2048
 * columns, 64 tokens: 77.5 GFLOP/s packing from L1-hot rows vs 82.5 without packing);
 * here the conversions and stores ride beside the FMAs and the loads from the file
 * overlap with them. */
#define GP_STEP(LD8, ES, r) { __m256 wv = LD8(wr##r + 8 * s * ES); GM_REG(wv)                \
                              _mm256_store_ps(ws + (r) * 8, wv);                            \
                              c##r##0 = _mm256_fmadd_ps(wv, x0v, c##r##0);                  \
                              c##r##1 = _mm256_fmadd_ps(wv, x1v, c##r##1);                  \
                              c##r##2 = _mm256_fmadd_ps(wv, x2v, c##r##2); }
#define GP_TILE(name, ES, LD8)                                                              \
static inline void name##_tile_pack(int64_t ks, const uint8_t *wr0, const uint8_t *wr1,    \
                                    const uint8_t *wr2, const uint8_t *wr3, float *wp,      \
                                    const float *x0, const float *x1, const float *x2,      \
                                    float *p0, float *p1, float *p2, int first)            \
{                                                                                           \
    GM_R4(GM_DECL)                                                                          \
    if (!first) {                                                                           \
        GM_R4(GM_LOAD)                                                                      \
    }                                                                                       \
    for (int64_t s = 0; s < ks; s++) {                                                      \
        float *ws = wp + s * GM_MR * 8;                                                     \
        __m256 x0v = _mm256_loadu_ps(x0 + 8 * s), x1v = _mm256_loadu_ps(x1 + 8 * s),       \
               x2v = _mm256_loadu_ps(x2 + 8 * s);                                           \
        GP_STEP(LD8, ES, 0) GP_STEP(LD8, ES, 1) GP_STEP(LD8, ES, 2) GP_STEP(LD8, ES, 3)     \
    }                                                                                       \
    GM_R4(GM_PARK)                                                                          \
}

/*
 * Decode streams the weights once, as FD_NS streams 1/FD_NS of the part apart (rows r0,
 * r0 + q, r0 + 2q, ...): far-apart streams read faster than adjacent rows, and 4
 * streams faster than 8 or 2 (this Zen 4 VM, one thread, F16 2048 columns, 256 MiB in
 * parts of 64 rows, best of 6 interleaved runs under load 3.4: 4 apart 28.9 GB/s, 4
 * adjacent 17.6, 8 adjacent 20.0; 8 apart 22.0 and 2 apart 20.5 in another run where
 * 4 apart gave 25.9).  No software prefetch: fetching each stream's next row ahead, as
 * kern_gemm_avx512.c does, was slower here (best 20.6-21.5 vs 25.1-27.2 GB/s in three
 * interleaved runs); Zen 4's hardware prefetchers keep 4 streams going on their own.
 */
#define FD_NS 4
#define FD_R(M, A, B) M(A, B, 0) M(A, B, 1) M(A, B, 2) M(A, B, 3)
#define FD_DECL(A, B, r) __m256 d##r = _mm256_setzero_ps();
#define FD_STEP(LD8, ES, r) d##r = _mm256_fmadd_ps(LD8(wr + (size_t)(r) * qs + i * ES), xv, d##r);
#define FD_OUT(TY, ES, r) out[r0 + (r) * q] = hsum_ps_red8(d##r) + fp_tail(wr + (size_t)(r) * qs, ES, TY, x, n8, n);

/* The next row group's weight block (the loop order m0, k0, g), fetched while this
 * group's tiles run, a few cache lines before each tile: the first tile of the next group
 * then finds them in L1 instead of waiting on DRAM.  One thread, F16, 64 tokens, parts of
 * 64 rows, best of 9 interleaved: 5632 columns x 4096 rows 77.5 vs 73.2 GFLOP/s without;
 * 2048 x 16384 the same (77.9 vs 77.6). */
struct gm_pf {
    const uint8_t *p;                /* the row being fetched */
    int64_t        lines, line, per; /* cache lines a row, the next one, lines a tile */
    int            rows;             /* rows left to fetch (0: none) */
};

static inline struct gm_pf gm_pf_next(const uint8_t *wb, size_t w_stride, int nr, int m0, int ng,
                                      int g, int64_t k0, int64_t n8, int es, int ntl)
{
    struct gm_pf pf = { NULL, 0, 0, 0, 0 };
    int64_t nk0 = k0;
    int nm0 = m0, ng0 = g + 1;
    if (ng0 == ng) {
        ng0 = 0;
        nk0 += GM_KC;
        if (nk0 >= n8) {
            nk0 = 0;
            nm0 += GM_MB;
        }
    }
    int r0 = nm0 + ng0 * GM_MR;
    if (r0 >= nr)
        return pf;
    int64_t kn = n8 - nk0 < GM_KC ? n8 - nk0 : GM_KC;
    pf.p = wb + (size_t)r0 * w_stride + nk0 * es;
    pf.lines = (kn * es + 63) / 64;
    pf.rows = nr - r0 < GM_MR ? nr - r0 : GM_MR;   /* rows inside the part */
    pf.per = (pf.rows * pf.lines + ntl - 1) / ntl;
    return pf;
}

/* the next pf->per lines, row after row (no division: this runs before every tile) */
static inline void gm_pf_some(struct gm_pf *pf, size_t w_stride)
{
    for (int64_t q = 0; q < pf->per && pf->rows; q++) {
        _mm_prefetch((const char *)pf->p + pf->line * 64, _MM_HINT_T0);
        if (++pf->line == pf->lines) {
            pf->line = 0;
            pf->p += w_stride;
            pf->rows--;
        }
    }
}

#define FP_GEMM(name, ES, TY, LD8)                                                         \
static void name##_direct(int64_t n, const uint8_t *w, size_t w_stride, int nr,            \
                          const float *x, float *out)                                       \
{                                                                                           \
    int64_t n8 = n & ~(int64_t)7;                                                           \
    int q = nr / FD_NS, r0 = 0;                                                             \
    size_t qs = (size_t)q * w_stride;                                                       \
    for (; r0 < q; r0++) {                                                                  \
        const uint8_t *wr = w + (size_t)r0 * w_stride;                                      \
        FD_R(FD_DECL, 0, 0)                                                                 \
        for (int64_t i = 0; i < n8; i += 8) {                                               \
            __m256 xv = _mm256_loadu_ps(x + i);                                             \
            FD_R(FD_STEP, LD8, ES)                                                          \
        }                                                                                   \
        FD_R(FD_OUT, TY, ES)                                                                \
    }                                                                                       \
    for (r0 = FD_NS * q; r0 < nr; r0++) {                                                   \
        const uint8_t *wr = w + (size_t)r0 * w_stride;                                      \
        __m256 acc = _mm256_setzero_ps();                                                   \
        for (int64_t i = 0; i < n8; i += 8)                                                 \
            acc = _mm256_fmadd_ps(LD8(wr + i * ES), _mm256_loadu_ps(x + i), acc);           \
        out[r0] = hsum_ps_red8(acc) + fp_tail(wr, ES, TY, x, n8, n);                        \
    }                                                                                       \
}                                                                                           \
                                                                                            \
GP_TILE(name, ES, LD8)                                                                      \
                                                                                            \
static void name##_gemm(int64_t n, const void *w, size_t w_stride, int nr, const void *a,  \
                        size_t a_stride, int nt, float *out, size_t o_stride)               \
{                                                                                           \
    const uint8_t *wb = w;                                                                  \
    int64_t n8 = n & ~(int64_t)7;                                                           \
    if (nt <= 2 || n8 == 0) {                                                               \
        for (int t = 0; t < nt; t++)                                                        \
            name##_direct(n, wb, w_stride, nr,                                              \
                          (const float *)((const uint8_t *)a + (size_t)t * a_stride),       \
                          out + (size_t)t * o_stride);                                      \
        return;                                                                             \
    }                                                                                       \
    _Alignas(32) float wp[GM_KC * GM_MR];                                                   \
    _Alignas(32) float park[GM_MB / GM_MR][(RT_GEMM_MAXT + GM_NR) * GM_MR * 8];             \
    int ntl = (nt + GM_NR - 1) / GM_NR;                                                     \
    for (int m0 = 0; m0 < nr; m0 += GM_MB) {                                                \
        int ng = ((nr - m0 < GM_MB ? nr - m0 : GM_MB) + GM_MR - 1) / GM_MR;                 \
        /* column block outer: its activations (nt x GM_KC f32) stay in L2 for all the      \
         * row groups */                                                                    \
        for (int64_t k0 = 0; k0 < n8; k0 += GM_KC) {                                        \
            int64_t kn = n8 - k0 < GM_KC ? n8 - k0 : GM_KC;                                 \
            for (int g = 0; g < ng; g++) {                                                  \
                int r0 = m0 + g * GM_MR, mr = nr - r0 < GM_MR ? nr - r0 : GM_MR;            \
                /* rows past nr read row nr - 1 again (computed, never stored) */           \
                const uint8_t *wr[GM_MR];                                                   \
                for (int r = 0; r < GM_MR; r++)                                             \
                    wr[r] = wb + (size_t)(r0 + (r < mr ? r : mr - 1)) * w_stride + k0 * ES; \
                struct gm_pf pf = gm_pf_next(wb, w_stride, nr, m0, ng, g, k0, n8, ES, ntl); \
                /* tiles of 3 tokens, the first one converting the block (nt >= 3          \
                 * here); the last 2 or 4 tokens in tiles of 2, a last one alone only at    \
                 * nt = 4 */                                                                \
                for (int t0 = 0, tw; t0 < nt; t0 += tw) {                                   \
                    int rem = nt - t0;                                                      \
                    tw = t0 == 0 ? GM_NR : rem == 4 || rem == 2 ? 2 : rem == 1 ? 1 : GM_NR; \
                    const float *x[GM_NR];                                                  \
                    float *pk = park[g] + (size_t)t0 * GM_MR * 8;                           \
                    for (int c = 0; c < tw; c++)                                            \
                        x[c] = (const float *)((const uint8_t *)a + (size_t)(t0 + c) * a_stride) + k0;\
                    gm_pf_some(&pf, w_stride);                                              \
                    if (t0 == 0)                                                            \
                        name##_tile_pack(kn / 8, wr[0], wr[1], wr[2], wr[3], wp, x[0], x[1],\
                                         x[2], pk, pk + GM_MR * 8, pk + 2 * GM_MR * 8,      \
                                         k0 == 0);                                          \
                    else if (tw == 2)                                                       \
                        gm_tile2(kn / 8, wp, x[0], x[1], pk, pk + GM_MR * 8, k0 == 0);      \
                    else if (tw == 1)                                                       \
                        gm_tile1(kn / 8, wp, x[0], pk, k0 == 0);                            \
                    else                                                                    \
                        gm_tile(kn / 8, wp, x[0], x[1], x[2], pk, pk + GM_MR * 8,           \
                                pk + 2 * GM_MR * 8, k0 == 0);                               \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
        for (int g = 0; g < ng; g++) {                                                      \
            int r0 = m0 + g * GM_MR, mr = nr - r0 < GM_MR ? nr - r0 : GM_MR, t = 0;         \
            const uint8_t *wr = wb + (size_t)r0 * w_stride;                                 \
            const float *pg = park[g];                                                      \
            /* two tokens of 4 rows: red8 of 8 parked vectors at once, then the tails */    \
            for (; mr == GM_MR && t + 2 <= nt; t += 2) {                                    \
                _Alignas(32) float tl[8] = { 0 };                                           \
                for (int c = 0; n8 < n && c < 8; c++)                                       \
                    tl[c] = fp_tail(wr + (size_t)(c & 3) * w_stride, ES, TY,                \
                                    (const float *)((const uint8_t *)a +                    \
                                                    (size_t)(t + c / 4) * a_stride), n8, n);\
                __m256 v = _mm256_add_ps(red8x8(pg + (size_t)t * GM_MR * 8,                 \
                                                pg + (size_t)(t + 1) * GM_MR * 8),          \
                                         _mm256_load_ps(tl));                               \
                _mm_storeu_ps(out + (size_t)t * o_stride + r0, _mm256_castps256_ps128(v));  \
                _mm_storeu_ps(out + (size_t)(t + 1) * o_stride + r0, _mm256_extractf128_ps(v, 1));\
            }                                                                               \
            for (; t < nt; t++) {                                                           \
                const float *xt = (const float *)((const uint8_t *)a + (size_t)t * a_stride);\
                for (int r = 0; r < mr; r++)                                                \
                    out[(size_t)t * o_stride + r0 + r] =                                    \
                        hsum_ps_red8(_mm256_load_ps(pg + ((size_t)t * GM_MR + r) * 8)) +    \
                        fp_tail(wr + (size_t)r * w_stride, ES, TY, xt, n8, n);              \
            }                                                                               \
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

FP_GEMM(f32_avx2, 4, 0, ld8_f32)
FP_GEMM(f16_avx2, 2, 1, ld8_f16)
FP_GEMM(bf16_avx2, 2, 2, ld8_bf16)

void rt_kern_avx2_fp_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
#define K(dt, fn) tab[dt] = (struct rt_kern){ .dtype = dt, .act = RT_ACT_F32, .dot = fn##_dot,  \
                                              .isa = RT_ISA_AVX2, .gemm = fn##_gemm,           \
                                              .gemm_act = RT_ACT_F32 }
    K(DT_F32, f32_avx2);
    K(DT_F16, f16_avx2);
    K(DT_BF16, bf16_avx2);
#undef K
    (void)q;
}

#else
/* not an x86-64 build with AVX2: matmul.c never calls this */
void rt_kern_avx2_fp_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT])
{
    (void)tab;
    (void)q;
}
#endif
