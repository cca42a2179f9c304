/*
 * rtc_ops.cu - the CUDA backend's kernels (see rtc_ops.h).
 *
 * Matrix-vector: one warp per output row; lane l decodes groups of 8 weights l, l+32,
 * ... of the row straight from the stored blocks (dequant/cuda/dqc_blocks.cuh, the
 * decoders the dequant kernels use, bit-exact with dq_ref.c) and multiplies them with
 * the matching 8 activations; a shuffle reduction ends the row.  The weights are read
 * once, in their stored type: the decode step is bound by their bytes.
 */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <stdlib.h>
#include <string.h>

#include "../../dequant/cuda/dqc_blocks.cuh"
#include "../../dequant/cuda/dqc.h"
#include "../../dequant/cuda/cu.h"
#include "rtc_ops.h"

extern "C" {
#include "../../formats/dtype.h"
}

extern "C" int rtc_fault_from_env(void)
{
    const char *f = getenv("APR_CUDA_FAULT");
    if (f && strcmp(f, "gemv_transposed") == 0)
        return RTC_FAULT_GEMV_T;
    return RTC_FAULT_NONE;
}

#define GEMV_TYPES(X) \
    X(DT_F32) X(DT_F16) X(DT_BF16) X(DT_Q4_0) X(DT_Q4_1) X(DT_Q5_0) X(DT_Q5_1) X(DT_Q8_0) \
    X(DT_Q2_K) X(DT_Q3_K) X(DT_Q4_K) X(DT_Q5_K) X(DT_Q6_K) X(DT_IQ4_NL) X(DT_IQ4_XS)

extern "C" int rtc_gemv_supported(int t)
{
    switch (t) {
#define C(T) case T:
    GEMV_TYPES(C)
#undef C
        return 1;
    default:
        return 0;
    }
}

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

#define GEMV_WARPS 4

template <int T, bool FAULT>
__global__ void __launch_bounds__(32 * GEMV_WARPS)
k_gemv(const uint8_t *__restrict__ w, int64_t rows, int64_t cols, int64_t row_bytes,
       const float *__restrict__ x, float *__restrict__ y)
{
    constexpr int B = dqc_traits<T>::blck, GPB = B / 8, SZ = dqc_traits<T>::size;
    int64_t r = (int64_t)blockIdx.x * GEMV_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (r >= rows)
        return;
    float acc = 0.0f;
    if constexpr (!FAULT) {
        const uint8_t *row = w + r * row_bytes;
        int64_t ng = cols / 8;
#pragma unroll 4
        for (int64_t gi = lane; gi < ng; gi += 32) {
            float v[8];
            dqc_deq8<T>(row + (gi / GPB) * SZ, (int)(gi % GPB), v);
            const float4 *xp = (const float4 *)(x + 8 * gi);
            float4 a = xp[0], b = xp[1];
            acc += v[0] * a.x + v[1] * a.y + v[2] * a.z + v[3] * a.w +
                   v[4] * b.x + v[5] * b.y + v[6] * b.z + v[7] * b.w;
        }
    } else {
        /* the planted fault: the same bytes read as the transposed [cols][rows] matrix */
        for (int64_t c = lane; c < cols; c += 32) {
            int64_t i = c * rows + r, rr = i / cols, cc = i % cols;
            float v[8];
            dqc_deq8<T>(w + rr * row_bytes + (cc / B) * SZ, (int)((cc % B) / 8), v);
            acc += v[cc % 8] * x[c];
        }
    }
    acc = warp_sum(acc);
    if (lane == 0)
        y[r] = acc;
}

static int check_w(const struct rtc_w *w, struct err *e)
{
    const struct dtype_info *ti = dtype_get(w->dtype);
    uint64_t rb;
    if (!ti)
        return ERR(e, ERR_UNSUPPORTED, "weight of unknown type %d", w->dtype);
    if (w->cols <= 0 || w->rows <= 0 || w->cols % 8 || dtype_nbytes(w->dtype, w->cols, &rb, e) ||
        rb != w->row_bytes)
        return ERR(e, ERR_FORMAT, "weight [%lld, %lld] %s: rows are not whole blocks of 8",
                   (long long)w->rows, (long long)w->cols, ti->name);
    return 0;
}

extern "C" int rtc_gemv(const struct rtc_w *w, const float *x, float *y, int fault, void *stream,
                        struct err *e)
{
    cudaStream_t s = (cudaStream_t)stream;
    if (!rtc_gemv_supported(w->dtype))
        return ERR(e, ERR_UNSUPPORTED, "no CUDA matrix-vector kernel for type %s",
                   dtype_name(w->dtype));
    if (check_w(w, e))
        return -1;
    unsigned nb = (unsigned)((w->rows + GEMV_WARPS - 1) / GEMV_WARPS);
    const uint8_t *p = (const uint8_t *)w->d;
    switch (w->dtype) {
#define G(T) case T: \
        if (fault == RTC_FAULT_GEMV_T) \
            k_gemv<T, true><<<nb, 32 * GEMV_WARPS, 0, s>>>(p, w->rows, w->cols, (int64_t)w->row_bytes, x, y); \
        else \
            k_gemv<T, false><<<nb, 32 * GEMV_WARPS, 0, s>>>(p, w->rows, w->cols, (int64_t)w->row_bytes, x, y); \
        break;
    GEMV_TYPES(G)
#undef G
    }
    return CU_CHECK(e, cudaGetLastError(), "gemv kernel launch");
}

extern "C" int rtc_gemm(void *cublas, const struct rtc_w *w, const float *x, int64_t n_tok, float *y,
                        float *scratch, int64_t scratch_floats, int fault, void *stream,
                        struct err *e)
{
    cublasHandle_t h = (cublasHandle_t)cublas;
    const float one = 1.0f, zero = 0.0f;
    if (check_w(w, e))
        return -1;
    if (n_tok <= 0)
        return 0;
    if (n_tok > INT32_MAX || w->rows > INT32_MAX || w->cols > INT32_MAX)
        return ERR(e, ERR_LIMIT, "matrix product too large for cuBLAS (int dimensions)");
    if (fault == RTC_FAULT_GEMV_T) {
        /* the planted fault: the dequantized weight read as [cols][rows] */
        if ((int64_t)w->rows * w->cols > scratch_floats)
            return ERR(e, ERR_LIMIT, "planted fault needs the whole weight in scratch");
        if (dqc_to_f32(w->dtype, w->d, w->row_bytes * w->rows, scratch, w->rows * w->cols, stream, e))
            return -1;
        return CU_CHECK_BLAS(e, cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)w->rows, (int)n_tok,
                                            (int)w->cols, &one, scratch, (int)w->rows, x, (int)w->cols,
                                            &zero, y, (int)w->rows), "cublasSgemm");
    }
    if (w->dtype == DT_F32)
        return CU_CHECK_BLAS(e, cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, (int)n_tok,
                                            (int)w->cols, &one, (const float *)w->d, (int)w->cols, x,
                                            (int)w->cols, &zero, y, (int)w->rows), "cublasSgemm");
    int64_t tile = scratch_floats / w->cols;
    if (tile < 1)
        return ERR(e, ERR_LIMIT, "scratch of %lld floats below one row of %lld",
                   (long long)scratch_floats, (long long)w->cols);
    for (int64_t r0 = 0; r0 < w->rows; r0 += tile) {
        int64_t nr = w->rows - r0 < tile ? w->rows - r0 : tile;
        if (dqc_to_f32(w->dtype, (const uint8_t *)w->d + r0 * w->row_bytes, nr * w->row_bytes,
                       scratch, nr * w->cols, stream, e))
            return -1;
        if (CU_CHECK_BLAS(e, cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, (int)n_tok, (int)w->cols,
                                         &one, scratch, (int)w->cols, x, (int)w->cols, &zero, y + r0,
                                         (int)w->rows), "cublasSgemm"))
            return -1;
    }
    return 0;
}

/* ---- reductions */

__device__ __forceinline__ float block_sum(float v, float *sh)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();                 /* sh may still be read by a previous reduction */
    if (lane == 0)
        sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float *sh)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    __syncthreads();
    if (lane == 0)
        sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}

__global__ void k_rmsnorm(const float *x, const float *g, float *out, int64_t n, float eps)
{
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * n;
    float *o = out + blockIdx.x * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        ss += xr[i] * xr[i];
    ss = block_sum(ss, sh);
    float sc = 1.0f / sqrtf(ss / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        o[i] = xr[i] * sc * g[i];
}

extern "C" int rtc_rmsnorm(const float *x, const float *g, float *out, int64_t n_tok, int64_t n,
                           float eps, void *stream, struct err *e)
{
    if (n_tok <= 0)
        return 0;
    k_rmsnorm<<<(unsigned)n_tok, 256, 0, (cudaStream_t)stream>>>(x, g, out, n, eps);
    return CU_CHECK(e, cudaGetLastError(), "rmsnorm kernel launch");
}

__global__ void k_rope(float *x, int64_t n_tok, int n_head, int head_dim, int n_rot,
                       const int32_t *pos0, double theta, double fscale, int neox)
{
    int64_t half = n_rot / 2, id = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    int64_t total = n_tok * n_head * half;
    if (id >= total)
        return;
    int64_t i = id % half, th = id / half, t = th / n_head, h = th % n_head;
    double pos = (double)(*pos0 + t) * fscale;
    double ang = pos * pow(theta, -2.0 * (double)i / (double)n_rot);
    double sn, cs;
    sincos(ang, &sn, &cs);
    float *p = x + (t * n_head + h) * head_dim;
    int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = p[a], x1 = p[b];
    p[a] = (float)(x0 * cs - x1 * sn);
    p[b] = (float)(x0 * sn + x1 * cs);
}

extern "C" int rtc_rope(float *x, int64_t n_tok, int n_head, int head_dim, int n_rot,
                        const int32_t *pos0, double theta, double freq_scale, int neox, void *stream,
                        struct err *e)
{
    int64_t total = n_tok * n_head * (n_rot / 2);
    if (total <= 0)
        return 0;
    k_rope<<<(unsigned)((total + 255) / 256), 256, 0, (cudaStream_t)stream>>>(
        x, n_tok, n_head, head_dim, n_rot, pos0, theta, freq_scale, neox);
    return CU_CHECK(e, cudaGetLastError(), "rope kernel launch");
}

__global__ void k_kv_store(const float *k, const float *v, float *kc, float *vc, int64_t n_tok,
                           int64_t kv_dim, const int32_t *pos0, int64_t n_ctx)
{
    int64_t id = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (id >= n_tok * kv_dim)
        return;
    int64_t t = id / kv_dim, c = id % kv_dim, p = *pos0 + t;
    if (p < 0 || p >= n_ctx)
        return;
    kc[p * kv_dim + c] = k[id];
    vc[p * kv_dim + c] = v[id];
}

extern "C" int rtc_kv_store(const float *k, const float *v, float *kc, float *vc, int64_t n_tok,
                            int64_t kv_dim, const int32_t *pos0, int64_t n_ctx, void *stream,
                            struct err *e)
{
    int64_t total = n_tok * kv_dim;
    if (total <= 0)
        return 0;
    k_kv_store<<<(unsigned)((total + 255) / 256), 256, 0, (cudaStream_t)stream>>>(
        k, v, kc, vc, n_tok, kv_dim, pos0, n_ctx);
    return CU_CHECK(e, cudaGetLastError(), "kv_store kernel launch");
}

/* grid (n_head, n_tok); shared: q[head_dim] then scores[n_ctx] */
__global__ void k_attention(const float *q, const float *kc, const float *vc, float *out,
                            int n_head, int n_head_kv, int head_dim, const int32_t *pos0,
                            int64_t n_ctx, float scale)
{
    extern __shared__ float smem[];
    __shared__ float red[32];
    float *qs = smem, *sc = smem + head_dim;
    int h = blockIdx.x, t = blockIdx.y, kvh = h / (n_head / n_head_kv);
    int64_t kv_dim = (int64_t)n_head_kv * head_dim;
    int64_t n_keys = (int64_t)*pos0 + t + 1;
    if (n_keys > n_ctx)
        n_keys = n_ctx;
    const float *qp = q + ((int64_t)t * n_head + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
        qs[d] = qp[d];
    __syncthreads();
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < n_keys; j += blockDim.x) {
        const float *kp = kc + j * kv_dim + (int64_t)kvh * head_dim;
        float s = 0.0f;
        for (int d = 0; d < head_dim; d++)
            s += qs[d] * kp[d];
        s *= scale;
        sc[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < n_keys; j += blockDim.x) {
        float p = expf(sc[j] - mx);
        sc[j] = p;
        sum += p;
    }
    sum = block_sum(sum, red);     /* its barriers also publish sc[] */
    float inv = 1.0f / sum;
    float *op = out + ((int64_t)t * n_head + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        const float *vp = vc + (int64_t)kvh * head_dim + d;
        float acc = 0.0f;
        for (int64_t j = 0; j < n_keys; j++)
            acc += sc[j] * vp[j * kv_dim];
        op[d] = acc * inv;
    }
}

extern "C" int rtc_attention(const float *q, const float *kc, const float *vc, float *out,
                             int64_t n_tok, int n_head, int n_head_kv, int head_dim,
                             const int32_t *pos0, int64_t n_ctx, float scale, void *stream,
                             struct err *e)
{
    size_t shm = ((size_t)head_dim + (size_t)n_ctx) * sizeof(float);
    if (n_tok <= 0)
        return 0;
    if (n_head_kv <= 0 || n_head % n_head_kv)
        return ERR(e, ERR_FORMAT, "attention: %d heads not a multiple of %d kv heads", n_head, n_head_kv);
    if (n_tok > 65535)
        return ERR(e, ERR_LIMIT, "attention: %lld tokens at once (at most 65535)", (long long)n_tok);
    if (shm > 48 * 1024) {
        if (shm > 227 * 1024)
            return ERR(e, ERR_LIMIT, "attention: context %lld too long for the shared-memory kernel",
                       (long long)n_ctx);
        if (CU_CHECK(e, cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)shm), "cudaFuncSetAttribute"))
            return -1;
    }
    dim3 grid((unsigned)n_head, (unsigned)n_tok);
    k_attention<<<grid, 128, shm, (cudaStream_t)stream>>>(q, kc, vc, out, n_head, n_head_kv, head_dim,
                                                          pos0, n_ctx, scale);
    return CU_CHECK(e, cudaGetLastError(), "attention kernel launch");
}

__global__ void k_swiglu(const float *g, const float *u, float *o, int64_t n)
{
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) {
        float x = g[i];
        o[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

extern "C" int rtc_swiglu(const float *gate, const float *up, float *out, int64_t n, void *stream,
                          struct err *e)
{
    if (n <= 0)
        return 0;
    k_swiglu<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)stream>>>(gate, up, out, n);
    return CU_CHECK(e, cudaGetLastError(), "swiglu kernel launch");
}

__global__ void k_add(float *x, const float *y, int64_t n, int64_t period)
{
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n)
        x[i] += y[period ? i % period : i];
}

extern "C" int rtc_add(float *x, const float *y, int64_t n, void *stream, struct err *e)
{
    if (n <= 0)
        return 0;
    k_add<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)stream>>>(x, y, n, 0);
    return CU_CHECK(e, cudaGetLastError(), "add kernel launch");
}

extern "C" int rtc_add_bias(float *x, const float *b, int64_t n_tok, int64_t n, void *stream,
                            struct err *e)
{
    if (n_tok * n <= 0)
        return 0;
    k_add<<<(unsigned)((n_tok * n + 255) / 256), 256, 0, (cudaStream_t)stream>>>(x, b, n_tok * n, n);
    return CU_CHECK(e, cudaGetLastError(), "add kernel launch");
}
