/*
 * rtc_ops.h - the CUDA backend's kernels, callable from C: quantized matrix-vector
 * products (decode), dequantized-tile cuBLAS products (prompt), RMSNorm, RoPE,
 * attention over a device KV cache, SwiGLU, residual adds.  All pointers are device
 * pointers; every call is asynchronous on `stream` (a cudaStream_t, NULL = default)
 * and reports launch errors as ERR_CUDA.  Positions are read from DEVICE memory, so
 * a decode step captured in a CUDA graph replays for any position.
 *
 * A weight is [rows = out][cols = in] in its stored type, row-major, rows of
 * row_bytes; y[r] = sum_c W[r][c] * x[c] (the runtime's rt_mat convention).
 */
#ifndef RTC_OPS_H
#define RTC_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../../common/err.h"

struct rtc_w {
    int         dtype;       /* enum dtype */
    int64_t     rows, cols;
    uint64_t    row_bytes;
    const void *d;           /* device */
};

/* Planted faults, for the parity gate's own test (env APR_CUDA_FAULT; never in use
 * otherwise).  RTC_FAULT_GEMV_T: the matrix kernels read [rows][cols] weights as
 * [cols][rows], the bug of the story in DESIGN.md. */
enum { RTC_FAULT_NONE = 0, RTC_FAULT_GEMV_T = 1 };
/* also in the fault argument of rtc_gemv: use the 8-wide kernels for every type instead
 * of the 32-wide ones of Q4_K, Q6_K, Q8_0, F16 and BF16 (tests and benchmarks) */
enum { RTC_GEMV_NARROW = 0x100 };
/* also in the fault argument of rtc_gemv: y += W x (the residual add fused) */
enum { RTC_GEMV_ACC = 0x200 };
int rtc_fault_from_env(void);

/* 1 when dtype has a quantized matrix-vector kernel: F32, F16, BF16, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS. */
int rtc_gemv_supported(int dtype);

/* y[rows] = W x[cols], f32 accumulation, one warp per row.  cols % 8 == 0.  Q4_K, Q6_K,
 * Q8_0, F16 and BF16 with cols % 32 == 0 take 32 weights a lane with wide loads, which
 * read up to 3 bytes past the end of a Q6_K/Q8_0 matrix: give those buffers 16 bytes of
 * padding. */
int rtc_gemv(const struct rtc_w *w, const float *x, float *y, int fault, void *stream,
             struct err *e);

/*
 * Decode on int8 activations (rtc_mmvq.cu): the activation x[cols] is quantized once
 * per token into the format the CPU runtime uses for the weight type (runtime/kern.h:
 * Q8_0 for Q4_0 Q5_0 Q8_0 IQ4_NL, Q8_1 for Q4_1 Q5_1, Q8_K for Q2_K..Q6_K IQ4_XS; the
 * same int8 values and scales as kern_ref.c's quantizers), then each block of weights
 * is multiplied with it in integers (__dp4a).  The result is the CPU kernel's up to the
 * order in which the per-block float terms are summed.
 */
enum { RTC_ACT_NONE = 0, RTC_ACT_Q8_0 = 1, RTC_ACT_Q8_1 = 2, RTC_ACT_Q8_K = 3 };
/* the activation format of dtype's int8 kernel, or RTC_ACT_NONE */
int rtc_act_kind(int dtype);
/* elements per activation block of kind (32 or 256; 0 for NONE) */
int64_t rtc_act_blck(int kind);
/* device bytes of a quantized activation of cols elements (any kind) */
uint64_t rtc_act_bytes(int64_t cols);
/* quantize x[cols] (device) into dst (rtc_act_bytes(cols), 16-byte aligned) */
int rtc_quantize_act(int kind, const float *x, int64_t cols, void *dst, void *stream,
                     struct err *e);
/* 1 when w has an int8 kernel at its shape and alignment (cols whole activation blocks) */
int rtc_gemv_q_ok(const struct rtc_w *w);
/* y[rows] = W x (accumulate: y[rows] += W x, one rounding of the product then the add,
 * as a separate residual add) with xq = rtc_quantize_act(rtc_act_kind(w->dtype), x); the
 * weight buffer needs the 16 bytes of padding of rtc_gemv */
int rtc_gemv_q(const struct rtc_w *w, const void *xq, float *y, int accumulate, void *stream,
               struct err *e);
/*
 * Several products of one activation in one launch (decode): n (1..3) matrices of one
 * type and width.  mode RTC_MV_PLAIN: y[i] = W[i] x; RTC_MV_ACC: y[i] += W[i] x;
 * RTC_MV_SWIGLU (n = 2, gate and up of equal rows): y[0] = silu(W[0] x) * (W[1] x),
 * rtc_swiglu's formula on the two products.
 */
enum { RTC_MV_PLAIN = 0, RTC_MV_ACC = 1, RTC_MV_SWIGLU = 2, RTC_MV_QKV = 3 };
int rtc_gemv_q_multi(const struct rtc_w *const *w, float *const *y, int n, int mode,
                     const void *xq, void *stream, struct err *e);
/*
 * A decode step's q, k and v with rtc_rope_kv's work done in the same launch (mode
 * RTC_MV_QKV): y[i] = W[i] x as rtc_gemv_q_multi computes them, then q (y[0]) and k
 * (y[1]) rotated in place and k and v stored in the cache at position *pos, exactly as
 * rtc_rope_kv does for one token in the interleaved (norm) style: the same bytes in y,
 * kc and vc as the two calls.  q and k of one type, v of that type or another with the
 * same activation; rows of q and k whole heads.  For the interleaved style only (the
 * pairs of a NEOX rotation lie in other blocks).  Returns 1 (nothing launched) where it
 * does not apply: a type pair without a kernel, shapes as above, or below APR_CUDA_PDL 3.
 */
struct rtc_qkv {
    float *kc, *vc;               /* the layer's cache, [n_ctx][kv_dim] */
    const float *cos_t, *sin_t;   /* rtc_rope_kv's tables, [n_ctx][n_rot / 2] */
    const int32_t *pos;           /* device: the token's position */
    int64_t n_ctx, kv_dim;
    int head_dim, n_rot;
};
int rtc_gemv_q_qkv(const struct rtc_w *const *w, float *const *y, const struct rtc_qkv *r,
                   const void *xq, void *stream, struct err *e);
/*
 * rtc_rmsnorm of one token (out[n]) with out quantized into xq as rtc_quantize_act(kind)
 * would, in one launch; the same bytes as the two calls.  n % 32 == 0 (Q8_K: % 256).
 * Returns 1 (nothing launched) when n is too wide for the kernel's shared memory.
 */
int rtc_rmsnorm_q(const float *x, const float *g, float *out, int64_t n, float eps, int kind,
                  void *xq, void *stream, struct err *e);
/*
 * rtc_gemv_q_multi's twin on f32 activations for the 32-wide kernels of rtc_gemv (F16,
 * BF16, Q4_K, Q6_K, Q8_0 with cols % 32 == 0 and 16-byte aligned rows): the same sums as
 * rtc_gemv on each matrix.  Returns 1 (nothing launched) where it does not apply.
 */
int rtc_gemv_multi(const struct rtc_w *const *w, float *const *y, int n, int mode, const float *x,
                   void *stream, struct err *e);
/*
 * Programmatic dependent launch (rtc_pdl.cuh) of the decode kernels, by level: 0 none,
 * and the decode kernels in their earlier shape (int8 matrix kernels of 8 rows a block,
 * no prefetch; RMSNorm + quantize on one block; q, k and v of different types launched
 * one by one); 1 the int8 matrix kernels in mmvq_rows' shape with their L2 prefetch and
 * unconditional loads, RMSNorm + quantize on a block per 256 values, q and k in one
 * launch when v's type differs, and programmatic launches of those and of the
 * activation quantizers; 2 also rope + kv store and decode attention; 3 (the default)
 * also q, k and v with RoPE and the cache store in one launch (rtc_gemv_q_qkv, the
 * interleaved style, v of another type too), the widest Q4_K, Q6_K and Q8_0
 * matrices without the whole L2 prefetch (rtc_mmvq.cu, MV_WIDE), and decode attention
 * prefetching the earlier positions' keys and values before its wait.  At every level
 * from 1 the kernels read before pdl_wait only what no kernel of the step writes (weights,
 * tables, the position, cache rows of earlier positions).
 * APR_CUDA_PDL=0/1/2/3 or rtc_set_pdl; read at each launch, so a captured graph keeps the
 * level it was captured at.  The results do not depend on it
 * (check_rt_cuda: the same logits bits at every level).  bench_cuda, 7B decode tg128,
 * levels 0 / 1 / 2, tokens/s, H100 (2026-12-06): Q4_K_M 327 / 424 / 428, Q8_0 255 / 317 /
 * 321, F16 165 / 165 / 166; with level 3, one run: levels 0 / 1 / 2 / 3 Q4_K_M 326 /
 * 424 / 431 / 441, Q8_0 260 / 319 / 322 / 331, F16 164 / 164 / 165 / 165.  Before the one-block-per-256 RMSNorm, the unconditional
 * loads and the q/k launch (6dd5f4a..ea600f0): H100 Q4_K_M 325 / 370 / 375, Q8_0 250 /
 * 276 / 278; H200 Q4_K_M 341 / 381 / 385, Q8_0 290 / 275 / 277, F16 200 / 200 / 201.
 */
int rtc_pdl(void);
void rtc_set_pdl(int level);
/* bench_kern: rtc_gemv_q (one Q4_K, Q6_K or Q8_0 matrix) in launch shape v; 1 when
 * there is no such v or type; the shape's name */
int rtc_gemv_q_variant(const struct rtc_w *w, const void *xq, float *y, int v, void *stream,
                       struct err *e);
const char *rtc_gemv_q_variant_name(int v);
/* the same for rtc_gemv's 32-wide kernel on F16 and BF16 (v = 0: the shape in use) */
int rtc_gemv_variant(const struct rtc_w *w, const float *x, float *y, int v, void *stream,
                     struct err *e);
const char *rtc_gemv_variant_name(int v);
/* a device activation back to the CPU's blocks (struct block_q8_0 / q8_1 / q8_K), for tests */
int rtc_act_to_blocks(int kind, const void *dev, int64_t cols, void *blocks, struct err *e);

/*
 * Y[n_tok][rows] = X[n_tok][cols] W^T: the weight is dequantized (dequant/cuda, exact)
 * tile by tile into scratch (scratch_floats floats, at least cols) and multiplied by
 * cuBLAS SGEMM in full f32 (no TF32).  F32 weights are used in place.  `cublas` is a
 * cublasHandle_t bound to `stream`.
 */
int rtc_gemm(void *cublas, const struct rtc_w *w, const float *x, int64_t n_tok, float *y,
             float *scratch, int64_t scratch_floats, int fault, void *stream, struct err *e);

/*
 * The same product on tensor cores: quantized weights dequantized tile by tile to F16
 * (one rounding of each dequantized value), activations rounded to F16, cublasGemmEx
 * with f32 accumulation; F16 weights used in place; BF16 weights in place with BF16
 * activations; F32 weights in TF32.  `cublas` must allow tensor cores (default math
 * mode).  Scratch holds the F16 activations and the tiles; types without an F16
 * decoder, or a scratch too small, take rtc_gemm.  Not exact: the parity gate and the
 * stage dumps use rtc_gemm (runtime/cuda/rt_cuda.h, rt_cuda_set_exact).
 */
int rtc_gemm_tc(void *cublas, const struct rtc_w *w, const float *x, int64_t n_tok, float *y,
                float *scratch, int64_t scratch_floats, void *stream, struct err *e);

/* out[t][:] = (x[t][:] * s) * g[:], s = 1 / sqrt(mean(x[t]^2) + eps) for t < n_tok (g f32);
 * the sum of squares in double, s rounded to f32 once (the CPU forward's numerics).
 * out may equal x. */
int rtc_rmsnorm(const float *x, const float *g, float *out, int64_t n_tok, int64_t n, float eps,
                void *stream, struct err *e);

/*
 * Rotate x[n_tok][n_head * head_dim] in place for positions *pos0 + t: the first n_rot
 * dims of each head, NORM (adjacent pairs 2i, 2i+1) or NEOX (pairs i, i + n_rot/2),
 * angle (pos * freq_scale) * theta^(-2i/n_rot), computed in double.
 */
int rtc_rope(float *x, int64_t n_tok, int n_head, int head_dim, int n_rot, const int32_t *pos0,
             double theta, double freq_scale, int neox, void *stream, struct err *e);

/* k, v [n_tok][kv_dim] -> cache rows *pos0 + t of kc, vc [n_ctx][kv_dim]; positions
 * at or past n_ctx are not written (the host checks the context before the call). */
int rtc_kv_store(const float *k, const float *v, float *kc, float *vc, int64_t n_tok,
                 int64_t kv_dim, const int32_t *pos0, int64_t n_ctx, void *stream, struct err *e);

/*
 * RoPE from tables, the CPU forward's way (runtime/forward.c rope_head): for position
 * p = *pos0 + t, pair i of each head is (2i, 2i+1) when norm_style, else (i, i + half),
 * and the rotated pair is stored at (i, i + half) (NEOX order) as a*cos - b*sin and
 * b*cos + a*sin, each product rounded (no FMA), cos/sin = tables[p][i] ([n_ctx][half]).
 * x is [n_tok][n_head * head_dim]; dims past n_rot are left alone.
 */
int rtc_rope_table(float *x, int64_t n_tok, int n_head, int head_dim, int n_rot,
                   const int32_t *pos0, const float *cos_t, const float *sin_t, int norm_style,
                   void *stream, struct err *e);

/*
 * rtc_rope_table on q (n_head heads) and k (n_head_kv heads), then rtc_kv_store of the
 * rotated k and of v, in one launch: the same numbers as the three calls.
 */
int rtc_rope_kv(float *q, float *k, const float *v, float *kc, float *vc, int64_t n_tok,
                int n_head, int n_head_kv, int head_dim, int n_rot, const int32_t *pos0,
                const float *cos_t, const float *sin_t, int norm_style, int64_t n_ctx,
                void *stream, struct err *e);

/*
 * Causal attention: for query t (position *pos0 + t) and head h, softmax over cache
 * rows 0..pos of q.k / sqrt(head_dim) (scaled by `scale`), times v.  GQA: head h reads
 * kv head h / (n_head / n_head_kv).  q and out are [n_tok][n_head * head_dim].
 * n_ctx bounds the scores kept in shared memory.  cpu_order: the dot products and the
 * weighted sums in the CPU forward's order (products rounded, summed in order), else
 * split for speed (only the summation order differs): for head_dim 64 or 128, one token
 * on a block of 8 warps per head (4 keys a warp at a time), several tokens in tiles of
 * queries that share each tile of keys and values in shared memory; other head sizes
 * split across a warp / four partial sums.
 */
int rtc_attention(const float *q, const float *kc, const float *vc, float *out, int64_t n_tok,
                  int n_head, int n_head_kv, int head_dim, const int32_t *pos0, int64_t n_ctx,
                  float scale, int cpu_order, void *stream, struct err *e);
/* The same in the CPU's order, also writing the scores and probabilities
 * [n_tok][n_head][n_kv] (masked entries 0) for the stage dumps; n_kv = *pos0 + n_tok, passed from the host. */
int rtc_attention_probe(const float *q, const float *kc, const float *vc, float *out,
                        int64_t n_tok, int n_head, int n_head_kv, int head_dim,
                        const int32_t *pos0, int64_t n_ctx, float scale, float *scores,
                        float *probs, int64_t n_kv, void *stream, struct err *e);

/* out[i] = silu(gate[i]) * up[i] (silu(x) = x / (1 + exp(-x))) */
int rtc_swiglu(const float *gate, const float *up, float *out, int64_t n, void *stream,
               struct err *e);
/* x[i] = silu(x[i]);  x[i] *= y[i] (the two halves of rtc_swiglu, for the stage dumps) */
int rtc_silu(float *x, int64_t n, void *stream, struct err *e);
int rtc_mul(float *x, const float *y, int64_t n, void *stream, struct err *e);
/* x[i] += y[i] */
int rtc_add(float *x, const float *y, int64_t n, void *stream, struct err *e);
/* x[t][i] += b[i] for t < n_tok */
int rtc_add_bias(float *x, const float *b, int64_t n_tok, int64_t n, void *stream, struct err *e);

#ifdef __cplusplus
}
#endif

#endif
