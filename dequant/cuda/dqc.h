/*
 * dqc.h - dequantization to f32 on a CUDA device: every ggml type the CPU library
 * knows (F32, F16, BF16, F64, I8..I64, Q4_0 .. Q8_1, Q2_K .. Q8_K, every IQ type,
 * TQ1_0, TQ2_0, MXFP4, NVFP4, Q1_0, Q2_0), bit-identical with the CPU scalar twin
 * (dequant/dq_ref.c), NaN payloads in scale fields excepted (dqc_blocks.cuh says why).
 * SafeTensors-only and APR-only types are not handled here (dqc_supported is 0).
 */
#ifndef DQC_H
#define DQC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../../common/err.h"

/* 1 when dtype has a device dequant kernel. */
int dqc_supported(int dtype);

/*
 * Dequantize n elements of dtype at device address src (src_bytes long) into device
 * memory dst (n floats, 16-byte aligned) on `stream` (a cudaStream_t, NULL = default).
 * Same preconditions and errors as dq_to_f32 (ERR_FORMAT for n not whole blocks or
 * src_bytes too short, ERR_UNSUPPORTED for a type without a kernel), plus ERR_CUDA.
 * Asynchronous: launch errors are reported, execution errors at the next sync.
 */
int dqc_to_f32(int dtype, const void *src, uint64_t src_bytes, float *dst, int64_t n,
               void *stream, struct err *e);

/*
 * Rows of a matrix by index: out[i][:] = row idx[i] of the [rows][cols] matrix w
 * (device), for i < n_idx; idx is a DEVICE array (so a captured graph can replay it).
 * Indices outside [0, rows) give rows of NaN.  cols must be whole blocks (and, for the
 * plain types, a multiple of 8).  The embedding lookup of the runtime.
 */
int dqc_get_rows(int dtype, const void *w, int64_t rows, int64_t cols, const int32_t *idx,
                 int64_t n_idx, float *out, void *stream, struct err *e);

#ifdef __cplusplus
}
#endif

#endif
