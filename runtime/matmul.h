/*
 * matmul.h - the runtime's weight x activation products (issue 12, CONTRACTS.md).
 *
 * A weight is [rows = out][cols = in] in its STORED dtype, borrowed from the file
 * mapping (never widened wholesale).  rt_matmul computes, for every token t < n_tok
 * and output row r < rows,
 *
 *     y[t * rows + r] = sum_c W[r][c] * x[t * cols + c]
 *
 * Every dtype with an f32 value runs.  How:
 *   - F32, F16, BF16: f32 activations, SIMD dot products (AVX-512 / AVX2+F16C /
 *     scalar, chosen at run time), accumulated in f32 lanes.
 *     Prompts on AVX-512 run register-tiled matrix kernels (rows x tokens) for F32,
 *     F16, BF16, Q4_0, Q5_0, Q8_0 and IQ4_NL; each output has the bits of the one-row kernel
 *     that decode uses (runtime/kern.h).
 *     One token (decode) on AVX-512 runs streaming decode kernels for Q4_0, Q5_0,
 *     Q8_0, IQ4_NL (on a split Q8_0 activation, RT_ACT_Q8_0S), Q4_K, Q5_K and Q6_K,
 *     again with the one-row kernel's bits; on AVX2 every quantized type of the next
 *     item has one (kern_dec_avx2.c; Q4_0, Q5_0 and IQ4_NL on block pairs, RT_ACT_Q8_0P;
 *     Q4_K, Q6_K and Q8_0 also on rows repacked 8 at a time, rt_mat_pack8 below).
 *   - Q4_0, Q5_0, Q8_0, IQ4_NL: activations quantized per block of 32 to Q8_0 (as
 *     ggml does); Q4_1, Q5_1: to Q8_1 (scale and d*sum); Q2_K..Q6_K, IQ4_XS: to Q8_K
 *     (blocks of 256, f32 scale, 16-element sums).  Integer dot products per block,
 *     scaled and summed in f32.
 *   - everything else (the other ggml types, SafeTensors' integer/FP8/FP4/FP6
 *     types, APR_Q4, APR_Q8): rows dequantized through the dequant library in
 *     chunks of at most RT_GENERIC_CHUNK elements into per-call stack scratch, then
 *     dotted with the f32 activations.
 * Quantized activations go to the pool's scratch (rt_pool_scratch), reused from
 * call to call: no allocation per call when a pool is given.
 * Output rows are split across the pool's threads in chunks (fixed for prompts,
 * largest first for one token); no reduction is ever split, so y does not depend on the
 * thread count (bit for bit).
 *
 * Setting APR_RT_ISA=scalar|avx2|avx512 in the environment caps the instruction set
 * the kernels may use (tests and benchmarks); the default is the best the CPU has.
 */
#ifndef RT_MATMUL_H
#define RT_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "pool.h"

struct rt_mat {
    int            dtype;      /* enum dtype (formats/dtype.h) */
    int64_t        rows, cols; /* [out][in] */
    const uint8_t *data;       /* row r starts at data + r * row_bytes (see below) */
    size_t         row_bytes;  /* bytes of one row: dtype_nbytes(dtype, cols) */
    const uint8_t *x8;         /* NULL, or the rows repacked 8 at a time (rt_mat_pack8) */
    size_t         x8_stride;  /* bytes of one group of 8 rows in x8 */
};
/* APR_Q8 (one scale for the whole tensor) and APR_Q4 whose cols is not a multiple of
 * 32 have no self-contained rows: for them data is the whole tensor and row_bytes is
 * ignored.  rt_mat_init fills row_bytes for any type. */
int rt_mat_init(struct rt_mat *w, int dtype, int64_t rows, int64_t cols, const void *data,
                struct err *e);

#define RT_GENERIC_CHUNK 4096   /* elements dequantized at a time on the generic path */

/*
 * y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tok; any dtype with an f32 value.
 * x is [n_tok][cols] f32, y is [n_tok][rows] f32 and must not overlap x.
 * Returns 0, or -1 with e set: ERR_UNSUPPORTED (C64, no f32 value), ERR_FORMAT
 * (cols not whole blocks of a block type), ERR_NOMEM.
 */
int  rt_matmul(struct rt_pool *p, const struct rt_mat *w, const float *x, int64_t n_tok,
               float *y, struct err *e);

/*
 * Several weights with the same cols times the same x, y[k][t][r] = sum_c W_k[r][c] x[t][c]
 * for k < nw <= RT_MATMUL_MAXW (e.g. a layer's q, k and v): the activations are converted
 * once per format they need and every product runs in ONE pool job, so each y[k] has the
 * bits rt_matmul gives for W_k alone.  Errors as rt_matmul's; ERR_INTERNAL when nw is out
 * of range or the cols differ.
 */
#define RT_MATMUL_MAXW 4
int  rt_matmul_n(struct rt_pool *p, const struct rt_mat *const *w, int nw, const float *x,
                 int64_t n_tok, float *const *y, struct err *e);

/*
 * rt_matmul_n and then an elementwise epilogue, in the same pool job: the nw weights have
 * the same rows (ERR_INTERNAL otherwise), each part computes rows [r0, r1) of every
 * product for all n_tok tokens and then calls epi(ud, r0, r1) on its thread, which may
 * read and write y[k][t * rows + r] for r0 <= r < r1 and every t and k.  So an op on the
 * outputs (SwiGLU's silu(gate) * up) is split over the threads with the products instead
 * of running after them on one thread while the others wait.  The parts are disjoint and
 * each y[k] has rt_matmul's bits before epi runs.
 */
typedef void (*rt_mm_epi_fn)(void *ud, int64_t r0, int64_t r1);
int  rt_matmul_epi(struct rt_pool *p, const struct rt_mat *const *w, int nw, const float *x,
                   int64_t n_tok, float *const *y, rt_mm_epi_fn epi, void *ud, struct err *e);

/*
 * Repacking for decode (a copy the caller owns): where the kernel of w's type has a
 * decode kernel on rows repacked 8 at a time (AVX2 Q4_K, Q6_K, Q8_0), rt_mat_pack8_bytes
 * gives the copy's size (0: none), rt_mat_pack8 writes the groups [g0, g1) of 8 rows of
 * it to dst (the whole copy; so threads may split the groups), and once all are written,
 * setting w->x8 = dst and w->x8_stride = rt_mat_pack8_stride(w) makes rt_matmul's
 * one-token products read the copy instead of data.  Same bits either way.
 */
size_t rt_mat_pack8_bytes(const struct rt_mat *w);
size_t rt_mat_pack8_stride(const struct rt_mat *w);
void   rt_mat_pack8(const struct rt_mat *w, void *dst, int64_t g0, int64_t g1);

/* Row r of w as f32 into out[cols] (the embedding lookup).  r < rows, and the type
 * has an f32 value (checked by rt_mat_init). */
void rt_mat_row(const struct rt_mat *w, int64_t r, float *out);

/* The instruction set the kernels use now: "avx512", "avx2" or "scalar". */
const char *rt_matmul_isa(void);

#endif
