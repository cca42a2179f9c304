/*
 * kern.h - private to runtime/matmul*.c and runtime/kern*.c: the dot-product kernels
 * behind rt_matmul.  Tools and the forward pass include matmul.h, never this file.
 *
 * A kernel multiplies ONE weight row (n elements, stored dtype) by nt activation rows
 * (already converted to the kernel's activation format, a_stride bytes apart) and
 * writes out[t * o_stride] for t < nt.  Every output is computed by the same sequence
 * of operations whatever nt is, so tiling tokens never changes a bit.
 *
 * Activation formats (one row = n elements):
 *   RT_ACT_F32   the f32 values themselves
 *   RT_ACT_Q8_0  n/32 struct block_q8_0 (f16 d, 32 x i8), ggml's quantize_row_q8_0
 *   RT_ACT_Q8_1  n/32 struct block_q8_1 (f16 d, f16 s = d * sum(q)), ggml's q8_1
 *   RT_ACT_Q8_K  n/256 struct block_q8_K (f32 d, 256 x i8, 16 x i16 sums)
 *   RT_ACT_Q8_0X16  the Q8_0 values laid out for the AVX-512 matrix kernel: per group
 *                of 16 blocks, 8 x 64 bytes (register i, lane j = bytes 4i..4i+3 of
 *                block j, each q + 128 as u8), then the 16 scales as f32; the last
 *                n/32 % 16 blocks as plain block_q8_0.  Same quantized values as
 *                RT_ACT_Q8_0 (kern_gemm_avx512.c; no scalar twin: only the gemm reads it).
 *   RT_ACT_Q8_0S the Q8_0 values split for the decode kernels: n/32 blocks of 32 x i8
 *                (block b at byte 32b), then n/32 f32 scales (each block's f16 d,
 *                widened), then n/32 int32 sums of each block's values: 40 bytes a block.
 *   RT_ACT_Q8_0P the Q8_0 values laid out in block pairs for the AVX2 decode kernels of
 *                Q4_0, Q5_0 and IQ4_NL: per group of 8 blocks, for each pair (2k, 2k+1)
 *                the first 16 values of block 2k, the first 16 of block 2k+1, the last
 *                16 of 2k, the last 16 of 2k+1 (64 bytes: one register against the
 *                pair's low nibbles, one against the high); then the 8 scales as f32
 *                (each block's f16 d, widened) and the 8 int32 sums of each block's
 *                values, both in block order 0 2 4 6 1 3 5 7 (the lanes of the kernels'
 *                sums): 320 bytes.  The last n/32 % 8 blocks as 40 bytes each (32
 *                values, f32 scale, int32 sum).  Same quantized values as RT_ACT_Q8_0
 *                (rt_q8_0p_quant).
 *   RT_ACT_Q8_0X8 the Q8_0 values laid out for the AVX2 block-lane matrix kernel: per
 *                group of 8 blocks, 16 x 32 bytes (register i, lane j = values 2i and
 *                2i+1 of block j as two int16), then the 8 scales as f32 (each block's
 *                f16 d, widened): 544 bytes; the last n/32 % 8 blocks as plain
 *                block_q8_0.  Same quantized values as RT_ACT_Q8_0
 *                (kern_qgemm_avx2.c; no scalar twin: only the gemm reads it).
 *   RT_ACT_Q8_0X4 the same for the AVX2 byte kernels (Q4_0, Q5_0): per group of 8
 *                blocks, 8 x 32 bytes (register i, lane j = bytes 4i..4i+3 of block
 *                j), the 8 scales as f32, then the 8 blocks' sums of values as int32:
 *                320 bytes; the last n/32 % 8 blocks as plain block_q8_0
 *                (kern_qgemm_avx2.c).
 *   RT_ACT_Q8_1X4 the Q8_1 values for the same kernels of Q4_1, Q5_1: as Q8_0X4 with
 *                the 8 blocks' s (d * sum, f16 widened) as f32 in place of the sums;
 *                the last n/32 % 8 blocks as plain block_q8_1.
 * The quantizers (kern_ref.c) have scalar and SIMD versions that give the same bytes.
 *
 * Files: kern_ref.c (scalar twins: the definition), kern_avx2.c (-mavx2 -mfma -mf16c),
 * kern_fp_avx2.c (its F32/F16/BF16 dot, matrix and decode kernels),
 * kern_dec_avx2.c (AVX2 decode kernels),
 * kern_avx512.c (AVX-512 F/BW/VL/VNNI dot kernels), kern_gemm_avx512.c (AVX-512 matrix
 * kernels), kern_qgemm_avx2.c (AVX2 quantized matrix kernels); matmul.c picks per type
 * at run time.
 */
#ifndef RT_KERN_H
#define RT_KERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../dequant/blocks.h"

enum rt_isa { RT_ISA_SCALAR = 0, RT_ISA_AVX2 = 1, RT_ISA_AVX512 = 2 };
enum rt_act { RT_ACT_F32 = 0, RT_ACT_Q8_0, RT_ACT_Q8_1, RT_ACT_Q8_K, RT_ACT_Q8_0X16, RT_ACT_Q8_0S,
              RT_ACT_Q8_0X8, RT_ACT_Q8_0X4, RT_ACT_Q8_1X4, RT_ACT_Q8_0P, RT_ACT_COUNT };

typedef void (*rt_dot_fn)(int64_t n, const void *w, const void *a, size_t a_stride, int nt,
                          float *out, size_t o_stride);
typedef void (*rt_quant_fn)(const float *x, void *dst, int64_t n);

/*
 * A matrix kernel (optional): nr weight rows (w_stride bytes apart) times nt <=
 * RT_GEMM_MAXT activation rows, out[t * o_stride + r].  Each output has exactly the
 * bits dot gives for that row and token, so matmul.c may use either.
 */
#define RT_GEMM_MAXT 64
typedef void (*rt_gemm_fn)(int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                           size_t a_stride, int nt, float *out, size_t o_stride);

struct rt_kern {
    int         dtype;
    enum rt_act act;
    rt_dot_fn   dot;
    enum rt_isa isa;      /* of dot */
    rt_gemm_fn  gemm;     /* NULL: matmul.c tiles dot */
    enum rt_act gemm_act; /* activation format of gemm (may differ from act) */
    int         gemm_min; /* gemm_act != act: matmul.c runs gemm from this many tokens
                           * (fewer: dot, which needs no conversion); 0: 3 */
    /* decode kernel (optional): the gemm signature, for one or a few tokens, weights
     * streamed once (rows one after another, no tiles); dec_act activations.  Each
     * output has exactly the bits dot gives for that row and token. */
    rt_gemm_fn  dec;
    enum rt_act dec_act;
    /* decode on weights repacked 8 rows at a time (optional; the caller keeps the copy,
     * matmul.h's rt_mat x8): pack8 writes one group of rows, dec8 is dec on the packed
     * groups (w: the group of the first row, w_stride: bytes a group, nr rows from it),
     * pack8_sb bytes a group per pack8_n elements (the rows are whole such units).
     * dec_act activations; dec's bits. */
    rt_gemm_fn  dec8;
    void      (*pack8)(int64_t n, const void *w, size_t w_stride, int nr, void *dst);
    size_t      pack8_sb;
    int         pack8_n;
};

/* The kernel for dtype at most at instruction set `cap`, or NULL (generic path). */
const struct rt_kern *rt_kern_get(int dtype, enum rt_isa cap);
/* The activation quantizer for act at most at `cap` (NULL for RT_ACT_F32). */
rt_quant_fn rt_kern_quant(enum rt_act act, enum rt_isa cap);
/* Bytes of one activation row of n elements (n whole blocks of the format). */
size_t rt_act_row_bytes(enum rt_act act, int64_t n);
/* Elements per activation block (1, 32 or 256). */
int rt_act_blck(enum rt_act act);
/* The best ISA of this CPU, capped by $APR_RT_ISA. */
enum rt_isa rt_isa_best(void);

/* Scalar twins (kern_ref.c) and the SIMD sets (kern_avx2.c, kern_avx512.c): each
 * fills tab[dtype] for the types it implements; quantizers by activation format. */
#define RT_NKERN 43   /* ggml ids */
void rt_kern_ref_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT]);
void rt_kern_avx2_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT]);
void rt_kern_avx512_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT]);
/* the AVX-512 matrix kernels (kern_gemm_avx512.c), called by rt_kern_avx512_table */
void rt_kern_avx512_gemm_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT]);
/* the AVX2 F32/F16/BF16 kernels (kern_fp_avx2.c), called by rt_kern_avx2_table */
void rt_kern_avx2_fp_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT]);
/* the AVX2 matrix kernels of the quantized types (kern_qgemm_avx2.c), called by
 * rt_kern_avx2_table */
void rt_kern_avx2_qgemm_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT]);
/* the AVX2 decode kernels (kern_dec_avx2.c), called by rt_kern_avx2_table */
void rt_kern_avx2_dec_table(struct rt_kern tab[RT_NKERN], rt_quant_fn q[RT_ACT_COUNT]);

/* RT_ACT_Q8_0P of x[0..n): the Q8_0 blocks of the quantizer q8_0 (kern_ref.c's or the
 * AVX2 one: the same bytes), placed */
void rt_q8_0p_quant(rt_quant_fn q8_0, const float *x, void *dst, int64_t n);

/*
 * Q4_K repacked for dec8 (rt_pack_q4k_x8): 8 rows' super-block b, each 32-bit lane of a
 * register one row, so that a sub-block's products of the 8 rows add in int16 lanes
 * before one madd by its scales (kern_dec_avx2.c says why).  A group of rows is n / 256
 * of these, in super-block order; rows past the matrix's end repeat its last row.
 */
struct rt_q4k_x8 {
    uint16_t d[8], dmin[8];     /* row r's f16 d and dmin */
    uint8_t  sc[8][8];          /* [j][r]: sub-block j's 6-bit scale (rt_scale_min_k4) */
    uint8_t  m[4][8][2];        /* [j / 2][r][j % 2]: its 6-bit min */
    uint8_t  qs[4][8][32];      /* [c][k][4r + i]: row r's qs[32c + 4k + i] */
};
_Static_assert(sizeof(struct rt_q4k_x8) == 1184, "struct rt_q4k_x8 has padding");
void rt_pack_q4k_x8(int64_t n, const void *w, size_t w_stride, int nr, void *dst);

/*
 * Q6_K the same way (rt_pack_q6k_x8), 1680 bytes like 8 of its blocks: per sub-block j
 * of 16 elements, its 4 quads of 4 (a, b, c, d: elements 16j + 4i..) as 6-bit values
 * u = q + 32 in three registers, byte 4r + e of row r:
 *     q[j][0] = a | c << 6 (c's bits 0-1),  q[j][1] = b | (c >> 2) << 6,
 *     q[j][2] = d | (c >> 4) << 6;
 * a, b and d are one mask away, c three shifts (kern_dec_avx2.c's dec8_q6_k).
 * The scales of sub-blocks 2p and 2p + 1 as sc[p]: 2p rows 0-3, 2p + 1 rows 0-3, then
 * the same for rows 4-7 (vpmovsxbw gives each 128-bit lane its 4 rows).
 */
struct rt_q6k_x8 {
    uint16_t d[8];
    int8_t   sc[8][16];
    uint8_t  q[16][3][32];
};
_Static_assert(sizeof(struct rt_q6k_x8) == 1680, "struct rt_q6k_x8 has padding");
void rt_pack_q6k_x8(int64_t n, const void *w, size_t w_stride, int nr, void *dst);

/* Q8_0 the same way (rt_pack_q8_0_x8): per block of 32, the 8 rows' d, then register k
 * holding values 4k..4k + 3 of each row (bytes 4r..4r + 3); 8 x 34 bytes like the file */
struct rt_q8_0_x8 {
    uint16_t d[8];
    int8_t   qs[8][32];
};
_Static_assert(sizeof(struct rt_q8_0_x8) == 272, "struct rt_q8_0_x8 has padding");
void rt_pack_q8_0_x8(int64_t n, const void *w, size_t w_stride, int nr, void *dst);

/* ggml's kvalues_iq4nl; Q4_K/Q5_K 6-bit scale and min j of a 12-byte scales field */
extern const int8_t rt_kvalues_iq4nl[16];
void rt_scale_min_k4(int j, const uint8_t *q, int *sc, int *m);
/* All 8 at once for the SIMD kernels: u as bytes, 0..7 the scales, 8..15 the mins
 * (the same values as rt_scale_min_k4 j = 0..7) */
static inline void rt_q4k_scales(const uint8_t *in, uint32_t u[4])
{
    memcpy(u, in, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    uint32_t aux = u[1] & 0x3f3f3f3fu;
    u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    u[2] = aux;
    u[0] &= 0x3f3f3f3fu;
}

/* f16 <-> f32 used by the kernels (exact; the same as dequant's). */
float    rt_h2f(uint16_t h);
uint16_t rt_f2h(float f);

/*
 * The 4-stream frame of the decode kernels (kern_avx512.c and kern_dec_avx2.c), expanded
 * only in those SIMD files (DEC4_PREFETCH uses _mm_prefetch).
 *
 * DEC4_ROWS opens the 4-row decode loops, inside the loop over the q = ceil(nr / 4)
 * groups g: wr[0..3] are rows g, g + q, g + 2q, g + 3q (ri[]; past nr:
 * row nr - 1 again, computed, not stored), four streams a quarter of the part apart
 * rather than 4 adjacent rows (far-apart streams read DRAM faster: d9f17fa for F16,
 * 2b5cec8 for plain reads); each row's sum is its own lane, so the bits do not depend on
 * the grouping. */
#define DEC4_ROWS(BT)                                                                      \
    const struct BT *wr[4];                                                                 \
    int ri[4];                                                                              \
    for (int i = 0; i < 4; i++) {                                                           \
        ri[i] = g + i * q;                                                                  \
        wr[i] = (const struct BT *)((const uint8_t *)w + (size_t)(ri[i] < nr ? ri[i] : nr - 1) * w_stride); \
    }

/* DEC4_PREFETCH(BT, b) prefetches super-block b of each stream's row 2 ahead while these
 * run, in step: the hardware prefetchers lose interleaved streams (Q4_K rows of 2048 from
 * DRAM, one core: 4.7 -> 17.9 GB/s with a prefetch).  In the adjacent grouping before,
 * 8 rows ahead beat 4 (Q4_K_M tg64 -t 2 +2 to +6%); here 1 row ahead measured no better
 * than 2 (62.3, 53.2, 57.1 vs 62.9, 63.0, 53.8 t/s, alternated).  kern_dec_avx2.c no
 * longer uses it: on the AVX2 Zen 4, with the streams far apart, every K-quant kernel ran
 * as fast or faster without (Q4_K 15.7 -> 17.0 GB/s from DRAM, one thread; see there). */
#define DEC_PF 2
#define DEC4_PREFETCH(BT, b)                                                               \
    for (int i = 0; i < 4; i++)                                                             \
        for (size_t o = 0; o < sizeof(struct BT); o += 64)                                 \
            _mm_prefetch((const char *)&wr[i][b] + DEC_PF * w_stride + o, _MM_HINT_T0)
/* the 4 rows' sums, lanes of l, to their outputs */
#define DEC4_STORE(t)                                                                      \
    for (int i = 0; i < 4; i++)                                                             \
        if (ri[i] < nr)                                                                     \
            out[(size_t)(t) * o_stride + ri[i]] = l[i]

#endif
