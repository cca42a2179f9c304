/*
 * dqc.cu - dequantization kernels for every ggml type (see dqc.h).
 *
 * One thread decodes one group of 8 outputs of a block (dqc_blocks.cuh) and writes
 * them as two 16-byte stores, so a warp writes 1 KiB contiguously and reads the
 * blocks in order.  Plain types take one thread per element and read bytes, so any
 * source alignment and any element count work.
 */
#include <cuda_runtime.h>
#include <pthread.h>
#include <string.h>

#define DQC_WITH_GRIDS 1
#include "dqc_blocks.cuh"
#include "dqc.h"
#include "cu.h"

extern "C" {
#include "../dq_grids.h"
#include "../../formats/dtype.h"
}

/* The grids are per device: copied from dequant/dq_grids.h the first time a device
 * needs them. */
#define DQC_MAX_DEV 64
static pthread_mutex_t grid_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char grid_ready[DQC_MAX_DEV];

static int grids_init(struct err *e)
{
    int dev = 0, rc = 0;
    if (CU_CHECK(e, cudaGetDevice(&dev), "cudaGetDevice"))
        return -1;
    if (dev < 0 || dev >= DQC_MAX_DEV)
        return ERR(e, ERR_LIMIT, "device cuda:%d: more than %d devices", dev, DQC_MAX_DEV);
    pthread_mutex_lock(&grid_lock);
    if (!grid_ready[dev]) {
        rc = CU_CHECK(e, cudaMemcpyToSymbol(dqc_iq2xxs_grid, dq_iq2xxs_grid, sizeof dq_iq2xxs_grid), "cudaMemcpyToSymbol (iq2xxs grid)")
          || CU_CHECK(e, cudaMemcpyToSymbol(dqc_iq2xs_grid, dq_iq2xs_grid, sizeof dq_iq2xs_grid), "cudaMemcpyToSymbol (iq2xs grid)")
          || CU_CHECK(e, cudaMemcpyToSymbol(dqc_iq2s_grid, dq_iq2s_grid, sizeof dq_iq2s_grid), "cudaMemcpyToSymbol (iq2s grid)")
          || CU_CHECK(e, cudaMemcpyToSymbol(dqc_iq3xxs_grid, dq_iq3xxs_grid, sizeof dq_iq3xxs_grid), "cudaMemcpyToSymbol (iq3xxs grid)")
          || CU_CHECK(e, cudaMemcpyToSymbol(dqc_iq3s_grid, dq_iq3s_grid, sizeof dq_iq3s_grid), "cudaMemcpyToSymbol (iq3s grid)")
          || CU_CHECK(e, cudaMemcpyToSymbol(dqc_iq1s_grid, dq_iq1s_grid, sizeof dq_iq1s_grid), "cudaMemcpyToSymbol (iq1s grid)")
             ? -1 : 0;
        if (rc == 0)
            grid_ready[dev] = 1;
    }
    pthread_mutex_unlock(&grid_lock);
    return rc;
}

static int needs_grid(int t)
{
    return t == DT_IQ2_XXS || t == DT_IQ2_XS || t == DT_IQ2_S || t == DT_IQ3_XXS ||
           t == DT_IQ3_S || t == DT_IQ1_S || t == DT_IQ1_M;
}

/* ---- plain types: one element per thread, byte reads (any alignment) */

template <int T> __device__ __forceinline__ float plain1(const uint8_t *p, int64_t i)
{
    constexpr int S = dqc_traits<T>::size / 8;
    const uint8_t *b = p + i * S;
    uint64_t u = 0;
#pragma unroll
    for (int k = 0; k < S; k++)
        u |= (uint64_t)b[k] << (8 * k);
    if constexpr (T == DT_F32) return __uint_as_float((uint32_t)u);
    else if constexpr (T == DT_F16) return dqc_h2f((uint16_t)u);
    else if constexpr (T == DT_BF16) return __uint_as_float((uint32_t)u << 16);
    else if constexpr (T == DT_F64) return (float)__longlong_as_double((long long)u);
    else if constexpr (T == DT_I8) return (float)(int8_t)u;
    else if constexpr (T == DT_I16) return (float)(int16_t)u;
    else if constexpr (T == DT_I32) return (float)(int32_t)u;
    else return (float)(int64_t)u;
}

template <int T> __global__ void k_plain(const uint8_t *src, float *dst, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = plain1<T>(src, i);
}

/* ---- blocked types: one group of 8 outputs per thread */

template <int T> __global__ void k_blocks(const uint8_t *src, float *dst, int64_t n_groups)
{
    constexpr int GPB = dqc_traits<T>::blck / 8;
    for (int64_t gi = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; gi < n_groups;
         gi += (int64_t)gridDim.x * blockDim.x) {
        float v[8];
        dqc_deq8<T>(src + (gi / GPB) * dqc_traits<T>::size, (int)(gi % GPB), v);
        float4 *o = (float4 *)(dst + 8 * gi);
        o[0] = make_float4(v[0], v[1], v[2], v[3]);
        o[1] = make_float4(v[4], v[5], v[6], v[7]);
    }
}

/* rows by device index; grid.y = row of out, threads over the row's groups */
template <int T>
__global__ void k_get_rows(const uint8_t *w, int64_t rows, int64_t row_bytes, int64_t groups,
                           const int32_t *idx, float *out, int64_t cols)
{
    constexpr int GPB = dqc_traits<T>::blck / 8;
    int64_t gi = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (gi >= groups)
        return;
    int32_t r = idx[blockIdx.y];
    float v[8];
    if (r < 0 || r >= rows) {
        for (int i = 0; i < 8; i++) v[i] = __uint_as_float(0x7FC00000u);
    } else {
        dqc_deq8<T>(w + r * row_bytes + (gi / GPB) * dqc_traits<T>::size, (int)(gi % GPB), v);
    }
    float4 *o = (float4 *)(out + blockIdx.y * cols + 8 * gi);
    o[0] = make_float4(v[0], v[1], v[2], v[3]);
    o[1] = make_float4(v[4], v[5], v[6], v[7]);
}

#define DQC_PLAIN(X) X(DT_F32) X(DT_F16) X(DT_BF16) X(DT_F64) X(DT_I8) X(DT_I16) X(DT_I32) X(DT_I64)
#define DQC_BLOCKED(X) \
    X(DT_Q4_0) X(DT_Q4_1) X(DT_Q5_0) X(DT_Q5_1) X(DT_Q8_0) X(DT_Q8_1) \
    X(DT_Q2_K) X(DT_Q3_K) X(DT_Q4_K) X(DT_Q5_K) X(DT_Q6_K) X(DT_Q8_K) \
    X(DT_IQ2_XXS) X(DT_IQ2_XS) X(DT_IQ3_XXS) X(DT_IQ1_S) X(DT_IQ4_NL) X(DT_IQ3_S) \
    X(DT_IQ2_S) X(DT_IQ4_XS) X(DT_IQ1_M) X(DT_TQ1_0) X(DT_TQ2_0) X(DT_MXFP4) X(DT_NVFP4) \
    X(DT_Q1_0) X(DT_Q2_0)

extern "C" int dqc_supported(int t)
{
    switch (t) {
#define C(T) case T:
    DQC_PLAIN(C) DQC_BLOCKED(C)
#undef C
        return 1;
    default:
        return 0;
    }
}

static unsigned grid_for(int64_t work)
{
    int64_t b = (work + 255) / 256;
    return (unsigned)(b < 65535 * 16 ? (b < 1 ? 1 : b) : 65535 * 16);
}

extern "C" int dqc_to_f32(int t, const void *src, uint64_t src_bytes, float *dst, int64_t n,
                          void *stream, struct err *e)
{
    const struct dtype_info *ti = dtype_get(t);
    uint64_t need;
    cudaStream_t s = (cudaStream_t)stream;
    if (!ti || !dqc_supported(t))
        return ERR(e, ERR_UNSUPPORTED, "no CUDA dequantization kernel for type %s", dtype_name(t));
    if (n < 0 || dtype_nbytes(t, n, &need, e))
        return ERR(e, ERR_FORMAT, "%s: %lld elements are not whole blocks of %u", ti->name,
                   (long long)n, ti->blck);
    if (need > src_bytes)
        return ERR(e, ERR_FORMAT, "%s: %lld elements need %llu bytes, source has %llu", ti->name,
                   (long long)n, (unsigned long long)need, (unsigned long long)src_bytes);
    if (n == 0)
        return 0;
    if (needs_grid(t) && grids_init(e))
        return -1;
    /* F32, F16, BF16 from a 16-byte aligned source, whole groups of 8: 16-byte loads
     * through the blocked kernel (the same conversion, so the same bits) */
    if ((t == DT_F32 || t == DT_F16 || t == DT_BF16) && n % 8 == 0 && ((uintptr_t)src & 15) == 0) {
        if (t == DT_F32)
            k_blocks<DT_F32><<<grid_for(n / 8), 256, 0, s>>>((const uint8_t *)src, dst, n / 8);
        else if (t == DT_F16)
            k_blocks<DT_F16><<<grid_for(n / 8), 256, 0, s>>>((const uint8_t *)src, dst, n / 8);
        else
            k_blocks<DT_BF16><<<grid_for(n / 8), 256, 0, s>>>((const uint8_t *)src, dst, n / 8);
        return CU_CHECK(e, cudaGetLastError(), "dequant kernel launch");
    }
    switch (t) {
#define P(T) case T: k_plain<T><<<grid_for(n), 256, 0, s>>>((const uint8_t *)src, dst, n); break;
    DQC_PLAIN(P)
#undef P
#define B(T) case T: k_blocks<T><<<grid_for(n / 8), 256, 0, s>>>((const uint8_t *)src, dst, n / 8); break;
    DQC_BLOCKED(B)
#undef B
    }
    return CU_CHECK(e, cudaGetLastError(), "dequant kernel launch");
}

extern "C" int dqc_get_rows(int t, const void *w, int64_t rows, int64_t cols, const int32_t *idx,
                            int64_t n_idx, float *out, void *stream, struct err *e)
{
    const struct dtype_info *ti = dtype_get(t);
    uint64_t rb;
    cudaStream_t s = (cudaStream_t)stream;
    if (!ti || !dqc_supported(t))
        return ERR(e, ERR_UNSUPPORTED, "no CUDA dequantization kernel for type %s", dtype_name(t));
    if (cols <= 0 || cols % 8 || dtype_nbytes(t, cols, &rb, e))
        return ERR(e, ERR_FORMAT, "%s: rows of %lld elements are not whole blocks (and of 8)",
                   ti->name, (long long)cols);
    if (n_idx <= 0)
        return 0;
    if (n_idx > 65535)
        return ERR(e, ERR_LIMIT, "dqc_get_rows: %lld rows at once (at most 65535)", (long long)n_idx);
    if (needs_grid(t) && grids_init(e))
        return -1;
    int64_t groups = cols / 8;
    dim3 grid((unsigned)((groups + 127) / 128), (unsigned)n_idx);
    switch (t) {
#define R(T) case T: k_get_rows<T><<<grid, 128, 0, s>>>((const uint8_t *)w, rows, (int64_t)rb, groups, idx, out, cols); break;
    DQC_PLAIN(R) DQC_BLOCKED(R)
#undef R
    }
    return CU_CHECK(e, cudaGetLastError(), "get_rows kernel launch");
}
