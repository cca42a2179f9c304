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
 * cuBLAS SGEMM, one-token decode through the quantized GEMV kernels, captured once in a
 * CUDA graph and replayed (positions and tokens live in device memory).  Before any
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

/* Bytes of weights the decode step reads (every matrix once, embedding row aside). */
uint64_t rt_cuda_weight_bytes(const struct rt_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
