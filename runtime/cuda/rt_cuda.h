/*
 * rt_cuda.h - the CUDA backend of the runtime (rt.h's struct rt_backend).
 *
 *   struct rt_params p = { .backend = rt_cuda_backend(0), ... };   // apr-run --device cuda:0
 *
 * The same forward pass as the CPU backend (runtime/forward.c), stage for stage and
 * with the same stage names, layers and layouts, so the two are compared position by
 * position and stage by stage (apr-run --parity).  Weights are uploaded once, in their
 * stored types; a type without a matrix-vector kernel (rtc_gemv_supported) is widened
 * to F32 on upload and said in rt_cuda_notes().  Prompts run through dequantized-tile
 * cuBLAS products (tensor cores, or exact SGEMM: rt_cuda_set_exact), one-token decode
 * through the int8 matrix-vector kernels on activations quantized as the CPU quantizes
 * them (F16/BF16/F32 weights: f32 kernels), captured once in a CUDA graph and replayed (positions and tokens live in device memory).  Before any
 * upload the memory need is checked against the device ("needs X GiB, has Y").
 */
#ifndef RT_CUDA_H
#define RT_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

#include "../rt.h"

/* The backend for device cuda:ordinal (0 <= ordinal < 64), or NULL. */
const struct rt_backend *rt_cuda_backend(int ordinal);

/* What the backend wants said (types widened on upload, the device), or "". */
const char *rt_cuda_notes(const struct rt_ctx *ctx);

/*
 * Prompt path: 1 = exact (dequantized f32 tiles, cuBLAS SGEMM without TF32, the parity
 * gate's default and the path of stage dumps); 0 = tensor cores (tiles dequantized to
 * F16, activations rounded to F16 (BF16 weights: both BF16), F32 weights in TF32, f32
 * accumulation), the default for generation.  $APR_CUDA_GEMM=exact forces 1 at init.
 */
void rt_cuda_set_exact(struct rt_ctx *ctx, int exact);

/* Bytes of weights the decode step reads (every matrix once, embedding row aside). */
uint64_t rt_cuda_weight_bytes(const struct rt_ctx *ctx);

/*
 * Benchmarks: the kernels of one decode step (the graph rt_eval replays, at the
 * position of the last rt_eval), each timed on its own by CUDA events in the step's
 * order, the launches queued behind a busy kernel so that the host is never what the
 * device waits for; the best of reps passes per kernel.  Fills up to max entries in
 * step order, *n the count; *step_us the same step replayed as the graph (best of
 * reps).  0, or -1 with e set.
 */
struct rt_cuda_kprof {
    char name[96];             /* the kernel's mangled name, cut */
    double us;                 /* microseconds from its start event to the next */
    unsigned grid, block;
};
int rt_cuda_decode_profile(struct rt_ctx *ctx, int reps, struct rt_cuda_kprof *out, int max, int *n,
                           double *step_us, struct err *e);

#ifdef __cplusplus
}
#endif

#endif
