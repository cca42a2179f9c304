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
 *   legacy blocks of 32 (Q8_0, IQ4_NL on RT_ACT_Q8_0X8; Q4_0, Q5_0 on RT_ACT_Q8_0X4;
 *     Q4_1, Q5_1 on RT_ACT_Q8_1X4): the dot keeps one 8-lane accumulator, lane b % 8
 *     getting fma(dw * da, (float)isum, .) for block b (then fma(m, s, .) for
 *     Q4_1/Q5_1), then the tail blocks past the last group of 8 scalar into lane b % 8,
 *     then red8.  Here (vq_gemm) the 8 blocks of a group are the 8 lanes of one
 *     (row, token) output: the same fmas per lane with no reduction of partial sums at
 *     all, then the tail and red8 as the dot.
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
 * tokens (under 3 for the super-blocks) runs through them, the tile's packing not
 * paying there (vq_gemm has no such path: its activations are not the dot's; matmul.c
 * runs the dot below gemm_min tokens instead) */
static rt_dot_fn dot_of[RT_NKERN];

static void rows_by_dot(rt_dot_fn dot, int64_t n, const uint8_t *w, size_t w_stride, int nr,
                        const void *a, size_t a_stride, int nt, float *out, size_t o_stride)
{
    for (int r = 0; r < nr; r++)
        dot(n, w + (size_t)r * w_stride, a, a_stride, nt, out + r, o_stride);
}

/* ---------------------------------------------------------------------------------
 * Legacy blocks of 32: the weight unpackers of the block-lane kernels below
 */
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

/* ---------------------------------------------------------------------------------
 * Q8_0 / IQ4_NL on RT_ACT_Q8_0X8 activations: the block-lane kernel (and its byte
 * form for Q4_0 / Q5_0 below).
 *
 * lg_gemm (the kernel before this one: a 4 x 2 tile of whole blocks) spent as much on
 * reducing each (row, token) block's 8 int32 partial sums to one integer (unpack/add
 * trees) as on the products.  Here
 * groups of 8 blocks are laid out with the block as the lane (kern.h's RT_ACT_Q8_0X8;
 * the design of kern_gemm_avx512.c's RT_ACT_Q8_0X16 kernel): register i, lane j = values
 * 2i, 2i+1 of block 8g + j as two int16, for the activations by quant_q8_0x8 and for a
 * tile of VQ_R weight rows by vq_pack (once per column chunk, for every token of the
 * call).  Then per (row, token) 16 steps of madd(w_i, a_i), add give the 8 blocks' exact
 * sums in the 8 lanes with no horizontal reduction (each product at most 128 x 127:
 * exact for every weight, -128 included), and lane j is the dot's accumulator lane
 * b % 8: acc = fma(dw * da, (float)isum, acc), one 8-lane FMA per group and output,
 * groups in order; then the last nb % 8 blocks one by one into lane b % 8 and red8, as
 * the dot.  The same bits as the AVX2 dot (and kern_ref.c's twin).
 *
 * Why int16 and vpmaddwd rather than the bytes and mul_sum_i8's sign + maddubs + madd:
 * on this Zen 4 all three of those, and vpmaddwd, issue on the same 2 pipes (measured:
 * 2 a cycle each, 3 in a row 1.5 cycles), so 32 products cost 1.5 cycles the byte way
 * and 1 cycle as two vpmaddwd; the adds go to the other pipes.  The activations are
 * twice the bytes (544 a group of 8 blocks, in L2), the packed weights the same as |w|
 * and w would be.  One thread, 64 tokens, TinyLlama shapes: lg_gemm 67-73 GOP/s, the
 * byte layout (sign + maddubs + madd) 85-92, this 87-95 (gcc 12; clang 100-109).
 */
#define VQ_AB 544     /* bytes of an activation group: 16 x 32 interleaved, 8 f32 scales */
#define VQ_KG 8       /* groups per packed column chunk: VQ_KG x VQ_R x 544 B = 17 KiB */

struct vq_w {
    __m256i q[16];    /* int16 weights, interleaved */
    __m256  d;        /* the 8 blocks' scales */
};

/* v[j] dword i -> v[i] dword j (an 8 x 8 transpose of 32-bit lanes) */
static inline void tr8x8(__m256i v[8])
{
    __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
    __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
    __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]), t5 = _mm256_unpackhi_epi32(v[4], v[5]);
    __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]), t7 = _mm256_unpackhi_epi32(v[6], v[7]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    v[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    v[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    v[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    v[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    v[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    v[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    v[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    v[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* 8 blocks of 32 signed bytes (b[j]: block j) -> the 16 interleaved int16 registers */
static inline void vq_lay(const __m256i b[8], __m256i *o)
{
    __m256i lo[8], hi[8];
    for (int j = 0; j < 8; j++) {
        lo[j] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b[j]));
        hi[j] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b[j], 1));
    }
    tr8x8(lo);
    tr8x8(hi);
    for (int i = 0; i < 8; i++) {
        _mm256_store_si256(o + i, lo[i]);
        _mm256_store_si256(o + 8 + i, hi[i]);
    }
}

static rt_quant_fn q8_0_plain;   /* the AVX2 Q8_0 quantizer (kern_avx2.c) */

/* RT_ACT_Q8_0X8: the values of q8_0_plain, widened and rearranged (kern.h) */
static void quant_q8_0x8(const float *x, void *dst, int64_t n)
{
    uint8_t *o = dst;
    int64_t nb = n / 32, b = 0;
    struct block_q8_0 tmp[8];
    _Alignas(32) __m256i lay[16];

    for (; b + 8 <= nb; b += 8, o += VQ_AB) {
        __m256i v[8];
        float d[8];
        q8_0_plain(x + b * 32, tmp, 256);
        for (int j = 0; j < 8; j++) {
            v[j] = _mm256_loadu_si256((const __m256i *)tmp[j].qs);
            d[j] = _cvtsh_ss(tmp[j].d);
        }
        vq_lay(v, lay);
        memcpy(o, lay, sizeof lay);
        memcpy(o + 512, d, sizeof d);
    }
    if (b < nb)
        q8_0_plain(x + b * 32, o, (nb - b) * 32);
}

/* group g of a weight row, through the type's unpacker, into the kernel's layout */
static inline __attribute__((always_inline)) void vq_pack(lg_unpack_fn un, const uint8_t *row,
                                                          int64_t g, struct vq_w *o)
{
    __m256i v[8];
    float d[8];
    for (int j = 0; j < 8; j++) {
        uint16_t dh, mh;
        un(row, 8 * g + j, &v[j], &dh, &mh);
        d[j] = _cvtsh_ss(dh);
    }
    vq_lay(v, o->q);
    o->d = _mm256_loadu_ps(d);
}

/* a tile: VQ_R rows x VQ_T tokens (8 int32 accumulators; measured against 2 x 4, 3 x 3
 * and 4 x 3, which were slower or no faster with gcc 12 and clang) */
#define VQ_R 4
#define VQ_T 2

/* a loaded weight register stays one (else compilers fold its load into each token's
 * madd); the 16 steps of a group written out (the accumulators then need no copies
 * from one step to the next) */
#define VQ_REG(v) __asm__("" : "+x"(v));
#define VQ_KEEP(a, b, c, d, e, f, g, h) \
    __asm__("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d), "+x"(e), "+x"(f), "+x"(g), "+x"(h));
#define VQ_UNROLL _Pragma("GCC unroll 16")
/* M(r, t) for the tile's 8 outputs, in the kernels' order */
#define VQ_ALL(M) M(0, 0) M(0, 1) M(1, 0) M(1, 1) M(2, 0) M(2, 1) M(3, 0) M(3, 1)
/* step i of a group: both tokens' register i, then each row's register i into its two
 * outputs through ST(r, t) */
#define VQ_STEP(ST)                                                                         \
    VQ_Y(0) VQ_Y(1)                                                                         \
    __m256i q0 = w[0].q[i]; VQ_REG(q0)                                                      \
    ST(0, 0) ST(0, 1)                                                                       \
    __m256i q1 = w[1].q[i]; VQ_REG(q1)                                                      \
    ST(1, 0) ST(1, 1)                                                                       \
    __m256i q2 = w[2].q[i]; VQ_REG(q2)                                                      \
    ST(2, 0) ST(2, 1)                                                                       \
    __m256i q3 = w[3].q[i]; VQ_REG(q3)                                                      \
    ST(3, 0) ST(3, 1)                                                                       \
    VQ_KEEP(s00, s01, s10, s11, s20, s21, s30, s31)
/* one step (register i) of output (row r, token t) */
#define VQ_ST(r, t) s##r##t = _mm256_add_epi32(s##r##t, _mm256_madd_epi16(q##r, y##t));
#define VQ_FIN(r, t) pk[t][r] = _mm256_fmadd_ps(_mm256_mul_ps(w[r].d, da##t),              \
                                                _mm256_cvtepi32_ps(s##r##t), pk[t][r]);
#define VQ_Y(t) __m256i y##t = _mm256_loadu_si256((const __m256i *)(a[t] + 32 * i));
#define VQ_DA(t) __m256 da##t = _mm256_loadu_ps((const float *)(a[t] + 512));

/* the tile over one group: w[VQ_R] the packed rows, a[VQ_T] the tokens' groups, pk[t][r]
 * the parked 8-lane accumulators */
static inline __attribute__((always_inline)) void
vq_tile(const struct vq_w *w, const uint8_t *const a[VQ_T], __m256 *const pk[VQ_T])
{
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00,
            s21 = s00, s30 = s00, s31 = s00;
    VQ_UNROLL
    for (int i = 0; i < 16; i++) {
        VQ_STEP(VQ_ST)
    }
    VQ_DA(0) VQ_DA(1)
    VQ_ALL(VQ_FIN)
}

/*
 * Q4_0 on RT_ACT_Q8_0X4: the same lanes on bytes.  Q4_0's values -8..7 are packed as
 * u = w + 8 (0..15), so maddubs(u, a) needs no sign trick and cannot saturate, and 8 of
 * its int16 pair sums add in int16 (at most 8 x 2 x 15 x 128 = 30720): per group and
 * (row, token) 8 maddubs + 7 adds and one madd(., 1) give the 8 blocks' sums of u * a in
 * the 8 lanes; less 8 x the activation block's sum (in the format) that is the dot's
 * exact isum.  9 multiplies a group against the int16 kernel's 16 (both issue on the
 * same 2 pipes here).
 * Q5_0 the same with u = w + 16 (0..31): only 4 pair sums fit int16 (4 x 2 x 31 x 128 =
 * 31744), so after 4 steps the sums are widened (madd) and parked in memory, then the
 * last 4: 10 multiplies a group.  One thread, 64 tokens, Q5_0 TinyLlama shapes
 * (2048x2048, 5632x2048, 2048x5632, 2048x2048 x 128), GOP/s, best of 9: int16 kernel
 * 92.5 88.6 96.5 93.9, this 141.6 139.1 153.5 144.3; 3 tokens 39.2 (the dot 34.5).
 */
#define VU_AB 320     /* bytes of a Q8_0X4 group: 8 x 32 interleaved, 8 f32 scales, 8 sums */

struct vu_w {
    __m256i q[8];     /* u = w + 8 (Q5_0: + 16; Q4_1, Q5_1: w), interleaved bytes */
    __m256  d, m;     /* m: Q4_1/Q5_1's mins */
};

/* one group of an X4 activation row (kern.h): the 8 blocks' bytes v rearranged (4 bytes
 * of each block per register), their 8 f32 scales d, then 8 more 32-bit words e (Q8_0X4:
 * the int32 sums; Q8_1X4: the f32 s) */
static void vu_store(uint8_t *o, __m256i v[8], const float d[8], const void *e)
{
    tr8x8(v);
    for (int i = 0; i < 8; i++)
        _mm256_storeu_si256((__m256i *)(o + 32 * i), v[i]);
    memcpy(o + 256, d, 32);
    memcpy(o + 288, e, 32);
}

/* RT_ACT_Q8_0X4: the bytes of q8_0_plain rearranged, the scales, the block sums (kern.h) */
static void quant_q8_0x4(const float *x, void *dst, int64_t n)
{
    uint8_t *o = dst;
    int64_t nb = n / 32, b = 0;
    struct block_q8_0 tmp[8];

    for (; b + 8 <= nb; b += 8, o += VU_AB) {
        __m256i v[8];
        float d[8];
        int32_t sum[8];
        q8_0_plain(x + b * 32, tmp, 256);
        for (int j = 0; j < 8; j++) {
            v[j] = _mm256_loadu_si256((const __m256i *)tmp[j].qs);
            d[j] = _cvtsh_ss(tmp[j].d);
            sum[j] = sum_i8(v[j]);
        }
        vu_store(o, v, d, sum);
    }
    if (b < nb)
        q8_0_plain(x + b * 32, o, (nb - b) * 32);
}

static rt_quant_fn q8_1_plain;   /* the AVX2 Q8_1 quantizer (kern_avx2.c) */

/* RT_ACT_Q8_1X4: the bytes of q8_1_plain rearranged, the scales d, the d * sum s (kern.h) */
static void quant_q8_1x4(const float *x, void *dst, int64_t n)
{
    uint8_t *o = dst;
    int64_t nb = n / 32, b = 0;
    struct block_q8_1 tmp[8];

    for (; b + 8 <= nb; b += 8, o += VU_AB) {
        __m256i v[8];
        float d[8], sm[8];
        q8_1_plain(x + b * 32, tmp, 256);
        for (int j = 0; j < 8; j++) {
            v[j] = _mm256_loadu_si256((const __m256i *)tmp[j].qs);
            d[j] = _cvtsh_ss(tmp[j].d);
            sm[j] = _cvtsh_ss(tmp[j].s);
        }
        vu_store(o, v, d, sm);
    }
    if (b < nb)
        q8_1_plain(x + b * 32, o, (nb - b) * 32);
}

static inline __attribute__((always_inline)) void vu_pack(lg_unpack_fn un, const uint8_t *row,
                                                          int64_t g, struct vu_w *o, int off)
{
    __m256i v[8];
    float d[8], m[8];
    for (int j = 0; j < 8; j++) {
        uint16_t dh, mh;
        un(row, 8 * g + j, &v[j], &dh, &mh);
        v[j] = _mm256_add_epi8(v[j], _mm256_set1_epi8((char)off));
        d[j] = _cvtsh_ss(dh);
        m[j] = _cvtsh_ss(mh);
    }
    tr8x8(v);
    for (int i = 0; i < 8; i++)
        o->q[i] = v[i];
    o->d = _mm256_loadu_ps(d);
    o->m = _mm256_loadu_ps(m);
}

#define VU_ST(r, t) s##r##t = _mm256_add_epi16(s##r##t, _mm256_maddubs_epi16(q##r, y##t));
#define VU_SUM(r, t) s##r##t = _mm256_sub_epi32(_mm256_madd_epi16(s##r##t, one), c##t);
#define VU_C(t) __m256i c##t = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(a[t] + 288)), \
                                                 q5 ? 4 : 3);
/* Q5_0: the first 4 steps' int16 sums to int32 (h, in memory), the int16 ones restarted */
#define VU_HALF(r, t) h[2 * (r) + (t)] = _mm256_madd_epi16(s##r##t, one); s##r##t = _mm256_setzero_si256();
#define VU_ADDH(r, t) s##r##t = _mm256_add_epi32(s##r##t, h[2 * (r) + (t)]);
#define VU_DA(t) __m256 da##t = _mm256_loadu_ps((const float *)(a[t] + 256));
/* Q4_1/Q5_1: no offset to take off; the dot's second fma, the min times d * sum */
#define VU_SUMN(r, t) s##r##t = _mm256_madd_epi16(s##r##t, one);
#define VU_SA(t) __m256 sa##t = _mm256_loadu_ps((const float *)(a[t] + 288));
#define VU_MIN(r, t) pk[t][r] = _mm256_fmadd_ps(w[r].m, sa##t, pk[t][r]);

static inline __attribute__((always_inline)) void
vu_tile(const struct vu_w *w, const uint8_t *const a[VQ_T], __m256 *const pk[VQ_T], int q5,
        int mn)
{
    const __m256i one = _mm256_set1_epi16(1);
    __m256i h[2 * VQ_R] = { 0 };   /* set at i == 3 for Q5_0 only: initialized for gcc -O1 (ASan) */
    __m256i s00 = _mm256_setzero_si256(), s01 = s00, s10 = s00, s11 = s00, s20 = s00,
            s21 = s00, s30 = s00, s31 = s00;
    VQ_UNROLL
    for (int i = 0; i < 8; i++) {
        VQ_STEP(VU_ST)
        if (q5 && i == 3) {
            VQ_ALL(VU_HALF)
        }
    }
    if (mn) {
        VQ_ALL(VU_SUMN)
    } else {
        VU_C(0) VU_C(1)
        VQ_ALL(VU_SUM)
    }
    if (q5) {
        VQ_ALL(VU_ADDH)
    }
    VU_DA(0) VU_DA(1)
    VQ_ALL(VQ_FIN)
    if (mn) {
        VU_SA(0) VU_SA(1)
        VQ_ALL(VU_MIN)
    }
}

enum { VQ_I16, VQ_Q4, VQ_Q5, VQ_Q41, VQ_Q51 };

static inline __attribute__((always_inline)) void
vq_gemm(int64_t n, const uint8_t *w, size_t w_stride, int nr, const uint8_t *a, size_t a_stride,
        int nt, float *out, size_t o_stride, lg_unpack_fn un, int mode)
{
    const int64_t nb = n / 32, ng = nb / 8;
    const int u4 = mode != VQ_I16, q5 = mode == VQ_Q5 || mode == VQ_Q51;
    const int mn = mode == VQ_Q41 || mode == VQ_Q51;   /* Q8_1X4 activations, the min term */
    const size_t ab = u4 ? VU_AB : VQ_AB;   /* bytes of an activation group */
    _Alignas(32) union {
        struct vq_w q[VQ_KG * VQ_R];
        struct vu_w u[VQ_KG * VQ_R];
    } pk;
    _Alignas(32) __m256 park[(RT_GEMM_MAXT + VQ_T) * VQ_R];

    for (int r0 = 0; r0 < nr; r0 += VQ_R) {
        const int mr = nr - r0 < VQ_R ? nr - r0 : VQ_R;
        const uint8_t *wr[VQ_R];
        for (int r = 0; r < VQ_R; r++)   /* a row past nr repeats row r0 (never stored) */
            wr[r] = w + (size_t)(r0 + (r < mr ? r : 0)) * w_stride;
        for (int k = 0; k < (nt + VQ_T) * VQ_R; k++)
            park[k] = _mm256_setzero_ps();
        for (int64_t g0 = 0; g0 < ng; g0 += VQ_KG) {
            const int kg = ng - g0 < VQ_KG ? (int)(ng - g0) : VQ_KG;
            for (int g = 0; g < kg; g++)
                for (int r = 0; r < VQ_R; r++) {
                    if (u4)
                        vu_pack(un, wr[r], g0 + g, &pk.u[g * VQ_R + r], mn ? 0 : q5 ? 16 : 8);
                    else
                        vq_pack(un, wr[r], g0 + g, &pk.q[g * VQ_R + r]);
                }
            for (int t0 = 0; t0 < nt; t0 += VQ_T) {
                const uint8_t *ac[VQ_T];
                __m256 *pc[VQ_T];
                for (int c = 0; c < VQ_T; c++) {
                    /* a token past nt reads token t0 and parks past nt (never read) */
                    ac[c] = a + (size_t)(t0 + c < nt ? t0 + c : t0) * a_stride + (size_t)g0 * ab;
                    pc[c] = park + (size_t)(t0 + c) * VQ_R;
                }
                for (int g = 0; g < kg; g++) {
                    const uint8_t *ag[VQ_T];
                    for (int c = 0; c < VQ_T; c++)
                        ag[c] = ac[c] + (size_t)g * ab;
                    if (u4)
                        vu_tile(&pk.u[g * VQ_R], ag, pc, q5, mn);
                    else
                        vq_tile(&pk.q[g * VQ_R], ag, pc);
                }
            }
        }
        /* per output: its accumulator lanes, the tail blocks as the dot, red8 */
        for (int t = 0; t < nt; t++) {
            /* the tail: plain block_q8_0 (block_q8_1 with mn) */
            const uint8_t *at = a + (size_t)t * a_stride + (size_t)ng * ab;
            const size_t tb = mn ? sizeof(struct block_q8_1) : sizeof(struct block_q8_0);
            for (int r = 0; r < mr; r++) {
                float l[8];
                _mm256_storeu_ps(l, park[(size_t)t * VQ_R + r]);
                for (int64_t c = ng * 8; c < nb; c++) {
                    __m256i q;
                    uint16_t dh, mh, xd, xs;
                    const uint8_t *x = at + (size_t)(c - ng * 8) * tb;
                    __m256i y = _mm256_loadu_si256((const __m256i *)(x + (mn ? 4 : 2)));
                    memcpy(&xd, x, 2);
                    memcpy(&xs, x + 2, 2);
                    un(wr[r], c, &q, &dh, &mh);
                    int is = hsum_i32(mn ? mul_sum_u8(q, y) : mul_sum_i8(q, y));
                    l[c & 7] = fmaf(_cvtsh_ss(dh) * _cvtsh_ss(xd), (float)is, l[c & 7]);
                    if (mn)
                        l[c & 7] = fmaf(_cvtsh_ss(mh), _cvtsh_ss(xs), l[c & 7]);
                }
                out[(size_t)t * o_stride + r0 + r] = red8(l);
            }
        }
    }
}

/* MODE: the int16 kernel on RT_ACT_Q8_0X8 (VQ_I16), or the byte one on RT_ACT_Q8_0X4
 * for Q4_0 (VQ_Q4) or Q5_0 (VQ_Q5), on RT_ACT_Q8_1X4 for Q4_1 (VQ_Q41) or Q5_1 (VQ_Q51) */
#define VQ_GEMM(name, UN, MODE)                                                            \
static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a,         \
                 size_t a_stride, int nt, float *out, size_t o_stride)                      \
{                                                                                           \
    vq_gemm(n, w, w_stride, nr, a, a_stride, nt, out, o_stride, UN, MODE);                  \
}

VQ_GEMM(vq_gemm_q4_0, un_lg_q4_0, VQ_Q4)
VQ_GEMM(vq_gemm_q5_0, un_lg_q5_0, VQ_Q5)
VQ_GEMM(vq_gemm_q8_0, un_lg_q8_0, VQ_I16)
VQ_GEMM(vq_gemm_iq4_nl, un_lg_iq4_nl, VQ_I16)
VQ_GEMM(vq_gemm_q4_1, un_lg_q4_1, VQ_Q41)
VQ_GEMM(vq_gemm_q5_1, un_lg_q5_1, VQ_Q51)

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
        { DT_Q2_K, gemm_q2_k_avx2 }, { DT_Q3_K, gemm_q3_k_avx2 },
        { DT_Q4_K, gemm_q4_k_avx2 }, { DT_Q5_K, gemm_q5_k_avx2 },
        { DT_Q6_K, gemm_q6_k_avx2 }, { DT_IQ4_XS, gemm_iq4_xs_avx2 },
    };
    /* the block-lane kernels, on RT_ACT_Q8_0X8 / Q8_0X4 / Q8_1X4 (built on the AVX2 Q8_0
     * and Q8_1 quantizers) */
    /* min: the int16 kernel's packing (a transpose per weight group) costs more than
     * the dot saves under 6 tokens (one thread, Q8_0 TinyLlama shapes, GOP/s: 3 tokens
     * dot 38-39, gemm 15-19; 5: 28-29 / 21-25; 8: 28-40 / 30-34; 16: 22-39 / 57-64,
     * load 1.8-2.5); the byte kernels beat the dot from 3 tokens (Q4_0 43 vs 38, Q5_0
     * 39 vs 35) */
    static const struct { int dt; rt_gemm_fn fn; enum rt_act act; int min; } v[] = {
        { DT_Q4_0, vq_gemm_q4_0, RT_ACT_Q8_0X4, 0 }, { DT_Q5_0, vq_gemm_q5_0, RT_ACT_Q8_0X4, 0 },
        { DT_Q8_0, vq_gemm_q8_0, RT_ACT_Q8_0X8, 6 }, { DT_IQ4_NL, vq_gemm_iq4_nl, RT_ACT_Q8_0X8, 6 },
        { DT_Q4_1, vq_gemm_q4_1, RT_ACT_Q8_1X4, 0 }, { DT_Q5_1, vq_gemm_q5_1, RT_ACT_Q8_1X4, 0 },
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        /* only on the AVX2 dot whose bits the kernel gives, on that dot's activations */
        if (tab[g[i].dt].isa != RT_ISA_AVX2 || !tab[g[i].dt].dot)
            continue;
        dot_of[g[i].dt] = tab[g[i].dt].dot;
        tab[g[i].dt].gemm = g[i].fn;
        tab[g[i].dt].gemm_act = tab[g[i].dt].act;
    }
    q8_0_plain = q[RT_ACT_Q8_0];
    q8_1_plain = q[RT_ACT_Q8_1];
    if (!q8_0_plain || !q8_1_plain)
        return;
    q[RT_ACT_Q8_0X8] = quant_q8_0x8;
    q[RT_ACT_Q8_0X4] = quant_q8_0x4;
    q[RT_ACT_Q8_1X4] = quant_q8_1x4;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        enum rt_act dot_act = v[i].act == RT_ACT_Q8_1X4 ? RT_ACT_Q8_1 : RT_ACT_Q8_0;
        if (tab[v[i].dt].isa != RT_ISA_AVX2 || tab[v[i].dt].act != dot_act || !tab[v[i].dt].dot)
            continue;
        tab[v[i].dt].gemm = v[i].fn;
        tab[v[i].dt].gemm_act = v[i].act;
        tab[v[i].dt].gemm_min = v[i].min;
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
