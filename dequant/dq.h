/*
 * dq.h - dequantization to f32, quantization from f32, and tensor statistics (CPU).
 *
 * Every type of formats/dtype.h has a row in one table (dq.c): its block size and
 * bytes per block (read from dtype_get(), never duplicated), a plain scalar
 * reference kernel (dq_ref.c, bit-exact with ggml's to_float, with the block layout
 * drawn next to it), a fast kernel (dq_avx2.c, AVX2/FMA/F16C, chosen at run time
 * when the CPU has them; otherwise the scalar kernel), and a quantizer when we can
 * produce the type (dq_quant.c, byte-identical with ggml's reference quantizers).
 *
 * Kernel shape (the table's function pointers, after ggml's dequantize_row_*):
 *     void k(const void *src, float *dst, int64_t n);
 * n % blck == 0 is a precondition (APR_Q4 and APR_Q8 accept any n, see below);
 * src may be unaligned (kernels read bytes, never cast); kernels never allocate.
 * Fast kernels produce the same bits as their scalar twin (reference/gguf-quant.md
 * 3.7: every dequant product is exact, so FMA contraction cannot change a result),
 * NaN payloads in scale fields excepted.
 *
 * Types that can be PRODUCED (dq_quantize): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S, TQ1_0, TQ2_0 (the bytes of
 * llama-quantize without an importance matrix).  With importance weights
 * (dq_quantize_w_mt: ggml's quant_weights branches, the bytes of llama-quantize
 * --imatrix): Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S, and the
 * types that exist only with weights, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M (dq_iq2.c).
 * Every other type is read-only.  C64
 * has no real f32 value and is refused with ERR_UNSUPPORTED.
 *
 * Special layouts:
 *   APR_Q8  one f32 scale for the whole tensor, then one i8 per element: the kernel's
 *           src is the whole tensor (scale first), and n may be any count.
 *   APR_Q4  blocks of 32 with the last block zero-padded: n may be any count.
 *   F4      two E2M1 values per byte, the FIRST element in the LOW nibble.
 *   F6_*    four 6-bit values per 3 bytes, read as a little-endian 24-bit word whose
 *           low 6 bits hold the first element (OCP MX / PyTorch convention: first
 *           element in the low bits; SafeTensors leaves the order unspecified).
 */
#ifndef DQ_H
#define DQ_H

#include <stdint.h>
#include <stddef.h>

#include "../common/err.h"
#include "../formats/dtype.h"

/* The whole-tensor helpers below take a tensor of the model view (formats/model.h);
 * the kernels and this header depend on the dtype table only. */
struct model_tensor;

typedef void (*dq_to_f32_fn)(const void *src, float *dst, int64_t n);
/* Quantize n floats (n % blck == 0) into whole blocks at dst.  Never allocates. */
typedef void (*dq_quantize_fn)(const float *src, void *dst, int64_t n);
/* Quantize ONE row of n floats with importance weights qw[n] (llama.cpp's imatrix
 * values for the row's columns).  Never allocates. */
typedef void (*dq_quantize_w_fn)(const float *src, void *dst, int64_t n, const float *qw);

struct dq_traits {
    int                      dtype;     /* enum dtype */
    const struct dtype_info *info;      /* dtype_get(dtype): name, blck, type_size */
    uint32_t                 blck;      /* elements per block (info->blck) */
    uint32_t                 type_size; /* bytes per block (info->type_size) */
    dq_to_f32_fn             to_f32_ref;/* plain scalar reference; NULL for C64 */
    dq_to_f32_fn             to_f32;    /* fastest kernel on this CPU (may equal the ref) */
    const char              *fast_isa;  /* "avx2" (SIMD), "lut" (table-driven) or "scalar" */
    dq_quantize_fn           quantize;  /* fastest quantizer on this CPU; NULL when the
                                           type cannot be produced */
    dq_quantize_fn           quantize_ref; /* its scalar reference (same bytes) */
    dq_quantize_w_fn         quantize_w;   /* with importance weights (ggml's quant_weights
                                              branch); NULL when the type ignores them */
    int                      needs_imatrix;/* 1: only quantize_w (IQ2_*, IQ1_*) */
    dq_quantize_w_fn         quantize_w_ref; /* quantize_w's scalar reference (same bytes) */
};

/* The row for dtype, or NULL when dtype is not a valid type.  Thread-safe. */
const struct dq_traits *dq_get(int dtype);

/*
 * Dequantize n elements of dtype from src (src_bytes long) into dst (n floats),
 * splitting whole blocks across n_threads threads (<= 1: inline).  Checks that n is
 * whole blocks and that src_bytes covers them (ERR_FORMAT), that the type has an f32
 * value (ERR_UNSUPPORTED for C64).  n == 0 is a no-op.  Returns 0 or -1.
 * dq_to_f32_ref is the same through the scalar kernels only (tests, bench).
 */
int dq_to_f32(int dtype, const void *src, uint64_t src_bytes, float *dst, int64_t n,
              int n_threads, struct err *e);
int dq_to_f32_ref(int dtype, const void *src, uint64_t src_bytes, float *dst, int64_t n,
                  int n_threads, struct err *e);

/*
 * Dequantize a whole tensor into a fresh array of t->n_elems floats.  The caller
 * frees the result with free().  A zero-element tensor gives a valid pointer to a
 * 1-float allocation.  NULL (with e set) on failure.
 */
float *dq_tensor_to_f32_new(const struct model_tensor *t, int n_threads, struct err *e);

/*
 * Quantize n_rows x n_per_row floats (row-major) into dst, which must hold
 * dtype_nbytes(dtype, n_rows * n_per_row) bytes.  n_per_row must be whole blocks.
 * ERR_UNSUPPORTED when the type cannot be produced.  dq_quantize_mt splits rows
 * across threads; the bytes do not depend on n_threads.
 */
int dq_quantize(int dtype, const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                struct err *e);
int dq_quantize_mt(int dtype, const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                   int n_threads, struct err *e);

/*
 * dq_quantize_mt with importance weights: row r (0-based in this call) uses
 * qw + ((row0 + r) / qw_rows) * n_per_row when qw_rows > 0 (a 3-D tensor: one
 * vector per expert of qw_rows rows), else qw for every row.  qw == NULL is
 * dq_quantize_mt (ERR_UNSUPPORTED for a type that needs weights); a type whose
 * quantizer takes no weights (F16, Q8_0, TQ*) ignores them, as ggml does.
 */
int dq_quantize_w_mt(int dtype, const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                     const float *qw, int64_t qw_rows, int64_t row0, int n_threads,
                     struct err *e);

/* Scalar conversions with ggml's rounding (reference/gguf-quant.md 3.2): RNE, overflow
 * to Inf, subnormals kept, NaN -> sign|0x7E00 (f16) or (u>>16)|0x0040 (bf16). */
uint16_t dq_f32_to_f16(float f);
float    dq_f16_to_f32(uint16_t h);
uint16_t dq_f32_to_bf16(float f);
float    dq_bf16_to_f32(uint16_t h);

/*
 * Statistics of one tensor (apr-inspect --stats).  n counts every element; n_nan and
 * n_inf the non-finite ones; n_zero the exact zeros (+0 and -0).  min, max, mean,
 * std (population, divisor = number of finite values) and l2 (sqrt of the sum of
 * squares) cover the FINITE values only; with no finite value they are all 0.
 * Accumulation is in double, per chunk, and the chunks are merged in order, so the
 * result does not depend on n_threads.
 */
struct dq_stats {
    double   min, max, mean, std, l2;
    uint64_t n, n_nan, n_inf, n_zero;
};

/*
 * Stream t in chunks of rows (at most DQ_STATS_CHUNK floats of scratch per thread;
 * the tensor is never held whole as f32) and fill *out.  Returns 0 or -1.
 */
#define DQ_STATS_CHUNK 65536
int dq_tensor_stats(const struct model_tensor *t, int n_threads, struct dq_stats *out,
                    struct err *e);

/*
 * The same statistics over a tensor fed piece by piece (apr-inspect --stats streams the
 * bytes with pread, common/stream.h, instead of faulting the mapping in): dq_stats_add
 * takes the next n elements, whose bytes are src[0, src_bytes).  Every piece but the
 * last must hold a multiple of DQ_STATS_CHUNK elements, so the chunks and their merge
 * order are those of dq_tensor_stats: the result is bit for bit the same.  Not for the
 * whole-tensor layouts APR_Q8/APR_Q4 (one piece only).  dq_tensor_check: the checks
 * dq_tensor_stats makes before reading (type known and real, size enough).
 */
struct dq_stats_acc {
    uint64_t n, n_fin, n_nan, n_inf, n_zero;
    double   min, max, mean, m2, sumsq;
};
void dq_stats_begin(struct dq_stats_acc *a);
int  dq_stats_add(struct dq_stats_acc *a, int dtype, const void *src, uint64_t src_bytes,
                  int64_t n, int n_threads, struct err *e);
void dq_stats_end(const struct dq_stats_acc *a, struct dq_stats *out);
int  dq_tensor_check(const struct model_tensor *t, struct err *e);

/*
 * The first min(first_n, t->n_elems) values of t into out, dequantizing only the
 * blocks that hold them.  out must hold that many floats.  Returns 0 or -1.
 */
int dq_tensor_values(const struct model_tensor *t, int64_t first_n, float *out, struct err *e);

#endif
