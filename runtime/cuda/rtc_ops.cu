/*
 * rtc_ops.cu - the CUDA backend's kernels (see rtc_ops.h).
 *
 * Matrix-vector: one warp per output row; lane l decodes groups of 8 weights l, l+32,
 * ... of the row straight from the stored blocks (dequant/cuda/dqc_blocks.cuh, the
 * decoders the dequant kernels use, bit-exact with dq_ref.c) and multiplies them with
 * the matching 8 activations; a shuffle reduction ends the row.  The weights are read
 * once, in their stored type: the decode step is bound by their bytes.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <stdlib.h>
#include <string.h>

#include "../../dequant/cuda/dqc_blocks.cuh"
#include "../../dequant/cuda/dqc.h"
#include "../../dequant/cuda/cu.h"
#include "rtc_ops.h"
#include "rtc_pdl.cuh"

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
       const float *__restrict__ x, float *__restrict__ y, int accumulate)
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
        y[r] = accumulate ? y[r] + acc : acc;
}

/* ---- wide kernels: one lane takes 32 consecutive weights at a time, read with 4- or
 * 16-byte loads, their block scales applied once per 32 (sum_i (d*q_i - m) x_i =
 * d * sum q_i x_i - m * sum x_i).  Used where cols % 32 == 0 (always, for K-quants). */

/* 32 bytes at any address through 4-byte aligned loads; reads up to 3 bytes past p+32
 * when p is not 4-aligned (weight buffers are padded for it) */
__device__ __forceinline__ void ld32u(const uint8_t *p, uint32_t *o)
{
    uintptr_t a = (uintptr_t)p;
    const uint32_t *b = (const uint32_t *)(a & ~(uintptr_t)3);
    unsigned sh = (unsigned)(a & 3) * 8;
    uint32_t w[9];
#pragma unroll
    for (int k = 0; k < 8; k++)
        w[k] = __ldg(b + k);
    w[8] = sh ? __ldg(b + 8) : 0;
#pragma unroll
    for (int k = 0; k < 8; k++)
        o[k] = __funnelshift_r(w[k], w[k + 1], sh);
}

__device__ __forceinline__ float h2f_fast(uint32_t h) { return __half2float(__ushort_as_half((unsigned short)h)); }

/*
 * Byte k (compile-time) of w as a float without an I2F (a conversion runs at a fraction
 * of the FMA rate): placed under the exponent of 2^23 by one PRMT, 2^23 subtracted
 * exactly.  Signed bytes are biased by 128 first (the caller XORs 0x80808080).
 */
template <int K>
__device__ __forceinline__ float ubyte_f(uint32_t w)
{
    return __int_as_float((int)__byte_perm(w, 0x4B000000u, 0x7440u | K)) - 8388608.0f;
}
template <int K>
__device__ __forceinline__ float sbyte_f(uint32_t wx)   /* wx = w ^ 0x80808080 */
{
    return __int_as_float((int)__byte_perm(wx, 0x4B000000u, 0x7440u | K)) - 8388736.0f;
}

/* sum over 32 of (byte k of q[k/4]) * x[k], bytes as unsigned (S = 0) or signed (S = 1) */
template <int S>
__device__ __forceinline__ float dot_bytes32(const uint32_t *q, const float *x)
{
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        uint32_t w = S ? q[k] ^ 0x80808080u : q[k];
        float b0 = S ? sbyte_f<0>(w) : ubyte_f<0>(w), b1 = S ? sbyte_f<1>(w) : ubyte_f<1>(w);
        float b2 = S ? sbyte_f<2>(w) : ubyte_f<2>(w), b3 = S ? sbyte_f<3>(w) : ubyte_f<3>(w);
        s = fmaf(b0, x[4 * k], s);
        s = fmaf(b1, x[4 * k + 1], s);
        s = fmaf(b2, x[4 * k + 2], s);
        s = fmaf(b3, x[4 * k + 3], s);
    }
    return s;
}

/* the same over 16 unsigned bytes */
__device__ __forceinline__ float dot_bytes16(const uint32_t *q, const float *x)
{
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        uint32_t w = q[k];
        s = fmaf(ubyte_f<0>(w), x[4 * k], s);
        s = fmaf(ubyte_f<1>(w), x[4 * k + 1], s);
        s = fmaf(ubyte_f<2>(w), x[4 * k + 2], s);
        s = fmaf(ubyte_f<3>(w), x[4 * k + 3], s);
    }
    return s;
}

/* dot of weights [32j, 32j+32) of a row with x[0..31] (held in registers); sx = sum of
 * the 32 x, sx0 / sx1 = sums of the first / second 16 */
template <int T>
__device__ __forceinline__ float dot32(const uint8_t *row, int64_t j, const float *x, float sx,
                                       float sx0, float sx1)
{
    if constexpr (T == DT_Q4_K) {
        const uint8_t *blk = row + (j >> 3) * 144;
        int sub = (int)(j & 7), c = sub >> 1, hi = sub & 1;
        uint32_t dm = *(const uint32_t *)blk;
        uint32_t s0 = *(const uint32_t *)(blk + 4), s1 = *(const uint32_t *)(blk + 8),
                 s2 = *(const uint32_t *)(blk + 12);
        /* get_scale_min_k4 on the three words (byte k of the 12 at a run-time k) */
#define SB(k) ((((k) < 4 ? s0 : (k) < 8 ? s1 : s2) >> (8 * ((k) & 3))) & 255u)
        int sc, mn;
        if (sub < 4) {
            sc = (int)(SB(sub) & 63);
            mn = (int)(SB(sub + 4) & 63);
        } else {
            sc = (int)((SB(sub + 4) & 15) | (SB(sub - 4) >> 6) << 4);
            mn = (int)((SB(sub + 4) >> 4) | (SB(sub) >> 6) << 4);
        }
#undef SB
        uint4 a = *(const uint4 *)(blk + 16 + 32 * c), b = *(const uint4 *)(blk + 32 + 32 * c);
        uint32_t q[8] = { a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w };
#pragma unroll
        for (int k = 0; k < 8; k++)
            q[k] = (q[k] >> (4 * hi)) & 0x0F0F0F0Fu;
        float d1 = h2f_fast(dm & 0xFFFF) * (float)sc, m1 = h2f_fast(dm >> 16) * (float)mn;
        return d1 * dot_bytes32<0>(q, x) - m1 * sx;
    } else if constexpr (T == DT_Q6_K) {
        const uint8_t *blk = row + (j >> 3) * 210;
        int sub = (int)(j & 7), h = sub >> 2, qtr = sub & 3;
        uint32_t ql[8], qh[8], q[8];
        ld32u(blk + 64 * h + 32 * (qtr & 1), ql);
        ld32u(blk + 128 + 32 * h, qh);
#pragma unroll
        for (int k = 0; k < 8; k++)
            q[k] = ((ql[k] >> (4 * (qtr >> 1))) & 0x0F0F0F0Fu) | (((qh[k] >> (2 * qtr)) & 0x03030303u) << 4);
        const int8_t *scs = (const int8_t *)(blk + 192);
        float d = h2f_fast(*(const uint16_t *)(blk + 208));
        /* the two halves of the 32 have their own scales */
        float lo = dot_bytes16(q, x), hi = dot_bytes16(q + 4, x + 16);
        return d * ((float)scs[8 * h + 2 * qtr] * (lo - 32.0f * sx0) +
                    (float)scs[8 * h + 2 * qtr + 1] * (hi - 32.0f * sx1));
    } else if constexpr (T == DT_Q8_0) {
        const uint8_t *blk = row + j * 34;
        uint32_t q[8];
        ld32u(blk + 2, q);
        return h2f_fast(*(const uint16_t *)blk) * dot_bytes32<1>(q, x);
    } else if constexpr (T == DT_F16 || T == DT_BF16) {
        const uint4 *p = (const uint4 *)(row + j * 64);
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            uint4 w = p[k];
            uint32_t u[4] = { w.x, w.y, w.z, w.w };
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float a, b;
                if constexpr (T == DT_F16) {
                    __half2 h2 = *(const __half2 *)&u[i];
                    float2 f2 = __half22float2(h2);
                    a = f2.x;
                    b = f2.y;
                } else {
                    a = __uint_as_float(u[i] << 16);
                    b = __uint_as_float(u[i] & 0xFFFF0000u);
                }
                s = fmaf(a, x[8 * k + 2 * i], s);
                s = fmaf(b, x[8 * k + 2 * i + 1], s);
            }
        }
        return s;
    } else {
        static_assert(T < 0, "dot32: no wide kernel for this type");
        return 0.0f;
    }
}

/*
 * The decode kernel of the 32-wide types: a block of GEMV_THREADS threads computes GR
 * rows at once.  The threads split the columns, 32 at a time; each loads its slice of x
 * into registers once and applies it to the GR rows, so x is read from cache once per
 * GR rows instead of once per row (reading x for every row made the one-row-per-warp
 * kernel bound by L1 traffic, not by the weights).  The GR partial sums are reduced by
 * shuffles and then across the warps.  Up to three matrices of one type and width
 * sharing x run in one launch (decode: q, k, v; gate and up with the SwiGLU combined):
 * blocks 0..nb[0]-1 take GR rows of matrix 0, the next nb[1] of matrix 1, ...; MODE
 * RTC_MV_SWIGLU: block b takes GR/2 rows of gate and the same rows of up, y[0] =
 * silu(gate) * up (rtc_swiglu's formula).
 */
#define GR 8
#define GEMV_THREADS 128
struct gv_args {
    const uint8_t *w[3];
    int64_t rows[3];
    float *y[3];
    unsigned nb[3];
    int64_t row_bytes, cols;
};

/* the warps' partial sums of slot i: in pairs for 4 warps, else in order */
template <int NW, int RW>
__device__ __forceinline__ float wsum_red(const float (*red)[RW], int i)
{
    if constexpr (NW == 4)
        return (red[0][i] + red[1][i]) + (red[2][i] + red[3][i]);
    float v = red[0][i];
#pragma unroll
    for (int w = 1; w < NW; w++)
        v += red[w][i];
    return v;
}

template <int T, int MODE, int RW = GR, int NT = GEMV_THREADS>
__global__ void __launch_bounds__(NT)
k_gemv_multi(const gv_args A, const float *__restrict__ x)
{
    constexpr bool SW = MODE == RTC_MV_SWIGLU;
    constexpr int H = RW / 2, NW = NT / 32;
    __shared__ float red[NW][RW];
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    unsigned b = blockIdx.x;
    int m = 0;
    if (!SW && b >= A.nb[0]) {       /* branches, not A.nb[m]: no local-memory copy of A */
        b -= A.nb[0];
        m = 1;
        if (b >= A.nb[1]) {
            b -= A.nb[1];
            m = 2;
        }
    }
    const uint8_t *wm = m == 0 ? A.w[0] : m == 1 ? A.w[1] : A.w[2];
    const int64_t rows_m = m == 0 ? A.rows[0] : m == 1 ? A.rows[1] : A.rows[2];
    float *ym = m == 0 ? A.y[0] : m == 1 ? A.y[1] : A.y[2];
    const int per = SW ? H : RW;
    const int64_t r0 = (int64_t)b * per, rb = A.row_bytes;
    const int nr = rows_m - r0 < per ? (int)(rows_m - r0) : per;
    const uint8_t *base0 = wm + r0 * rb;
    const uint8_t *base1 = SW ? A.w[1] + (r0 - H) * rb : base0;   /* slot r >= H: up row r0 + r - H */
    float acc[RW];
#pragma unroll
    for (int r = 0; r < RW; r++)
        acc[r] = 0.0f;
    const int64_t nc = A.cols / 32;
    for (int64_t j = tid; j < nc; j += NT) {
        float xr[32];
        const float4 *xp = (const float4 *)(x + 32 * j);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float4 v = xp[k];
            xr[4 * k] = v.x; xr[4 * k + 1] = v.y; xr[4 * k + 2] = v.z; xr[4 * k + 3] = v.w;
        }
        float sx0 = 0.0f, sx1 = 0.0f;
#pragma unroll
        for (int k = 0; k < 16; k++) {
            sx0 += xr[k];
            sx1 += xr[16 + k];
        }
#pragma unroll
        for (int r = 0; r < RW; r++) {
            const bool up = SW && r >= H;
            if ((up ? r - H : r) < nr)
                acc[r] += dot32<T>((up ? base1 : base0) + r * rb, j, xr, sx0 + sx1, sx0, sx1);
        }
    }
#pragma unroll
    for (int r = 0; r < RW; r++)
        acc[r] = warp_sum(acc[r]);
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < RW; r++)
            red[wid][r] = acc[r];
    __syncthreads();
    if (tid < nr) {
        float v = wsum_red<NW, RW>(red, tid), *y = ym + r0 + tid;
        if (SW) {
            float u = wsum_red<NW, RW>(red, tid + H);
            *y = v / (1.0f + expf(-v)) * u;
        } else {
            *y = MODE == RTC_MV_ACC ? *y + v : v;
        }
    }
}

static int wide_ok(int t, int64_t cols, int64_t row_bytes, const void *d)
{
    if (cols % 32)
        return 0;
    switch (t) {
    case DT_Q4_K: return row_bytes % 16 == 0 && ((uintptr_t)d & 15) == 0;
    case DT_Q6_K: case DT_Q8_0: return ((uintptr_t)d & 1) == 0;
    case DT_F16: case DT_BF16: return row_bytes % 16 == 0 && ((uintptr_t)d & 15) == 0;
    default: return 0;
    }
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
    const int ac = (fault & RTC_GEMV_ACC) != 0;
    if (!(fault & RTC_FAULT_GEMV_T)) {
        /* the 32-wide types: 8 rows a block; the others (and RTC_GEMV_NARROW): one warp a
         * row, which measured faster for them than 8 rows a block (bench_kern, H100) */
        int wide = !(fault & RTC_GEMV_NARROW) && wide_ok(w->dtype, w->cols, (int64_t)w->row_bytes, w->d);
        switch (w->dtype) {
#define W(T) case T: \
            if (wide) return rtc_gemv_multi(&w, &y, 1, ac ? RTC_MV_ACC : RTC_MV_PLAIN, x, stream, e) < 0 ? -1 : 0; \
            k_gemv<T, false><<<nb, 32 * GEMV_WARPS, 0, s>>>(p, w->rows, w->cols, (int64_t)w->row_bytes, x, y, ac); \
            break;
        W(DT_Q4_K) W(DT_Q6_K) W(DT_Q8_0) W(DT_F16) W(DT_BF16)
#undef W
#define N(T) case T: k_gemv<T, false><<<nb, 32 * GEMV_WARPS, 0, s>>>(p, w->rows, w->cols, (int64_t)w->row_bytes, x, y, ac); break;
        N(DT_F32) N(DT_Q4_0) N(DT_Q4_1) N(DT_Q5_0) N(DT_Q5_1) N(DT_Q2_K) N(DT_Q3_K) N(DT_Q5_K)
        N(DT_IQ4_NL) N(DT_IQ4_XS)
#undef N
        }
        return CU_CHECK(e, cudaGetLastError(), "gemv kernel launch");
    }
    switch (w->dtype) {
#define G(T) case T: \
        k_gemv<T, true><<<nb, 32 * GEMV_WARPS, 0, s>>>(p, w->rows, w->cols, (int64_t)w->row_bytes, x, y, ac); \
        break;
    GEMV_TYPES(G)
#undef G
    }
    return CU_CHECK(e, cudaGetLastError(), "gemv kernel launch");
}

extern "C" int rtc_gemv_multi(const struct rtc_w *const *w, float *const *y, int n, int mode,
                              const float *x, void *stream, struct err *e)
{
    gv_args A;
    unsigned total = 0;
    cudaStream_t st = (cudaStream_t)stream;
    memset(&A, 0, sizeof A);
    if (n < 1 || n > 3 || (mode == RTC_MV_SWIGLU && (n != 2 || w[1]->rows != w[0]->rows)))
        return 1;
    for (int i = 0; i < n; i++) {
        if (w[i]->dtype != w[0]->dtype || w[i]->cols != w[0]->cols || w[i]->row_bytes != w[0]->row_bytes ||
            !wide_ok(w[i]->dtype, w[i]->cols, (int64_t)w[i]->row_bytes, w[i]->d))
            return 1;
        if (check_w(w[i], e))
            return -1;
        A.w[i] = (const uint8_t *)w[i]->d;
        A.rows[i] = w[i]->rows;
        A.y[i] = y[i];
        A.nb[i] = (unsigned)((w[i]->rows + GR - 1) / GR);
        total += A.nb[i];
    }
    if (mode == RTC_MV_SWIGLU)
        total = (unsigned)((w[0]->rows + GR / 2 - 1) / (GR / 2));
    A.row_bytes = (int64_t)w[0]->row_bytes;
    A.cols = w[0]->cols;
    switch (w[0]->dtype) {
#define M(T) case T:                                                                              \
        if (mode == RTC_MV_SWIGLU) k_gemv_multi<T, RTC_MV_SWIGLU><<<total, GEMV_THREADS, 0, st>>>(A, x);   \
        else if (mode == RTC_MV_ACC) k_gemv_multi<T, RTC_MV_ACC><<<total, GEMV_THREADS, 0, st>>>(A, x);    \
        else k_gemv_multi<T, RTC_MV_PLAIN><<<total, GEMV_THREADS, 0, st>>>(A, x);                          \
        break;
    M(DT_Q4_K) M(DT_Q6_K) M(DT_Q8_0) M(DT_F16) M(DT_BF16)
#undef M
    default:
        return 1;
    }
    return CU_CHECK(e, cudaGetLastError(), "gemv kernel launch");
}

#define GEMV_VARIANTS(X) X(0, 8, 128) X(1, 4, 128) X(2, 2, 128) X(3, 1, 128) X(4, 4, 64) \
    X(5, 2, 64) X(6, 2, 32) X(7, 1, 32) X(8, 4, 256) X(9, 16, 128)

extern "C" const char *rtc_gemv_variant_name(int v)
{
    switch (v) {
#define X(I, R, NT) case I: return #R " rows x " #NT " thr";
    GEMV_VARIANTS(X)
#undef X
    default: return NULL;
    }
}

extern "C" int rtc_gemv_variant(const struct rtc_w *w, const float *x, float *y, int v, void *stream,
                                struct err *e)
{
    gv_args A;
    cudaStream_t st = (cudaStream_t)stream;
    memset(&A, 0, sizeof A);
    if (check_w(w, e))
        return -1;
    if (!wide_ok(w->dtype, w->cols, (int64_t)w->row_bytes, w->d))
        return 1;
    A.w[0] = (const uint8_t *)w->d;
    A.rows[0] = w->rows;
    A.y[0] = y;
    A.row_bytes = (int64_t)w->row_bytes;
    A.cols = w->cols;
    switch (v) {
#define X(I, R, NT) case I:                                                                        \
        A.nb[0] = (unsigned)((w->rows + R - 1) / R);                                              \
        switch (w->dtype) {                                                                       \
        case DT_F16: k_gemv_multi<DT_F16, RTC_MV_PLAIN, R, NT><<<A.nb[0], NT, 0, st>>>(A, x); break; \
        case DT_BF16: k_gemv_multi<DT_BF16, RTC_MV_PLAIN, R, NT><<<A.nb[0], NT, 0, st>>>(A, x); break; \
        default: return 1;                                                                        \
        }                                                                                         \
        break;
    GEMV_VARIANTS(X)
#undef X
    default:
        return 1;
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
    if (fault & RTC_FAULT_GEMV_T) {
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

/* ---- the tensor-core prompt path (rtc_gemm_tc) */

/* weights to F16, 8 per thread (dqc_deq8 then one rounding) */
template <int T> __global__ void k_deq_h(const uint8_t *src, __half *dst, int64_t n_groups)
{
    constexpr int GPB = dqc_traits<T>::blck / 8;
    for (int64_t gi = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; gi < n_groups;
         gi += (int64_t)gridDim.x * blockDim.x) {
        float v[8];
        dqc_deq8<T>(src + (gi / GPB) * dqc_traits<T>::size, (int)(gi % GPB), v);
        __half2 h[4];
#pragma unroll
        for (int i = 0; i < 4; i++)
            h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
        *(uint4 *)(dst + 8 * gi) = *(const uint4 *)h;
    }
}

template <bool BF> __global__ void k_f2h(const float *x, void *y, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        if (BF)
            ((__nv_bfloat16 *)y)[i] = __float2bfloat16_rn(x[i]);
        else
            ((__half *)y)[i] = __float2half_rn(x[i]);
    }
}

static unsigned grid_n(int64_t work)
{
    int64_t b = (work + 255) / 256;
    return (unsigned)(b < 65535 * 16 ? (b < 1 ? 1 : b) : 65535 * 16);
}

extern "C" int rtc_gemm_tc(void *cublas, const struct rtc_w *w, const float *x, int64_t n_tok, float *y,
                           float *scratch, int64_t scratch_floats, void *stream, struct err *e)
{
    cublasHandle_t h = (cublasHandle_t)cublas;
    cudaStream_t s = (cudaStream_t)stream;
    const float one = 1.0f, zero = 0.0f;
    if (check_w(w, e))
        return -1;
    if (n_tok <= 0)
        return 0;
    if (w->dtype == DT_F32)
        return CU_CHECK_BLAS(e, cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, (int)n_tok,
                                             (int)w->cols, &one, w->d, CUDA_R_32F, (int)w->cols, x,
                                             CUDA_R_32F, (int)w->cols, &zero, y, CUDA_R_32F,
                                             (int)w->rows, CUBLAS_COMPUTE_32F_FAST_TF32,
                                             CUBLAS_GEMM_DEFAULT), "cublasGemmEx (tf32)");
    uint64_t xb = ((uint64_t)(n_tok * w->cols) * 2 + 255) & ~(uint64_t)255;
    uint64_t sb = (uint64_t)scratch_floats * 4;
    int64_t tile = xb < sb ? (int64_t)((sb - xb) / ((uint64_t)w->cols * 2)) : 0;
    int bf = w->dtype == DT_BF16;
    int direct = w->dtype == DT_F16 || bf;
    if (!direct) {
        switch (w->dtype) {
        case DT_Q4_0: case DT_Q4_1: case DT_Q5_0: case DT_Q5_1: case DT_Q8_0: case DT_Q2_K:
        case DT_Q3_K: case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: case DT_IQ4_NL: case DT_IQ4_XS:
            break;
        default:
            tile = 0;
        }
    }
    if (tile < 1 && !(direct && xb <= sb))   /* no room or no F16 decoder: the exact path */
        return rtc_gemm(cublas, w, x, n_tok, y, scratch, scratch_floats, RTC_FAULT_NONE, stream, e);
    void *xh = scratch;
    __half *wt = (__half *)((uint8_t *)scratch + xb);
    cudaDataType_t ty = bf ? CUDA_R_16BF : CUDA_R_16F;
    if (bf)
        k_f2h<true><<<grid_n(n_tok * w->cols), 256, 0, s>>>(x, xh, n_tok * w->cols);
    else
        k_f2h<false><<<grid_n(n_tok * w->cols), 256, 0, s>>>(x, xh, n_tok * w->cols);
    if (CU_CHECK(e, cudaGetLastError(), "f16 conversion kernel launch"))
        return -1;
    if (direct)
        return CU_CHECK_BLAS(e, cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, (int)n_tok,
                                             (int)w->cols, &one, w->d, ty, (int)w->cols, xh, ty,
                                             (int)w->cols, &zero, y, CUDA_R_32F, (int)w->rows,
                                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                             "cublasGemmEx (f16)");
    for (int64_t r0 = 0; r0 < w->rows; r0 += tile) {
        int64_t nr = w->rows - r0 < tile ? w->rows - r0 : tile, ng = nr * w->cols / 8;
        const uint8_t *src = (const uint8_t *)w->d + r0 * w->row_bytes;
        switch (w->dtype) {
#define D(T) case T: k_deq_h<T><<<grid_n(ng), 256, 0, s>>>(src, wt, ng); break;
        D(DT_Q4_0) D(DT_Q4_1) D(DT_Q5_0) D(DT_Q5_1) D(DT_Q8_0) D(DT_Q2_K) D(DT_Q3_K)
        D(DT_Q4_K) D(DT_Q5_K) D(DT_Q6_K) D(DT_IQ4_NL) D(DT_IQ4_XS)
#undef D
        }
        if (CU_CHECK(e, cudaGetLastError(), "f16 dequant kernel launch") ||
            CU_CHECK_BLAS(e, cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, (int)n_tok, (int)w->cols,
                                          &one, wt, CUDA_R_16F, (int)w->cols, xh, CUDA_R_16F,
                                          (int)w->cols, &zero, y + r0, CUDA_R_32F, (int)w->rows,
                                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                          "cublasGemmEx (f16)"))
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

__device__ __forceinline__ double block_sum_d(double v, double *sh)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    __syncthreads();
    if (lane == 0)
        sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

__global__ void k_rmsnorm(const float *x, const float *g, float *out, int64_t n, float eps)
{
    __shared__ double sh[32];
    const float *xr = x + blockIdx.x * n;
    float *o = out + blockIdx.x * n;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        ss += (double)xr[i] * xr[i];
    ss = block_sum_d(ss, sh);
    float sc = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        o[i] = __fmul_rn(__fmul_rn(xr[i], sc), g[i]);
}

extern "C" int rtc_rmsnorm(const float *x, const float *g, float *out, int64_t n_tok, int64_t n,
                           float eps, void *stream, struct err *e)
{
    if (n_tok <= 0)
        return 0;
    unsigned th = n >= 256 ? 256 : (unsigned)((n + 31) / 32 * 32);
    k_rmsnorm<<<(unsigned)n_tok, th, 0, (cudaStream_t)stream>>>(x, g, out, n, eps);
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

/* block per (t, head): the head is staged in shared memory, then rotated out */
__global__ void k_rope_table(float *x, int n_head, int head_dim, int n_rot, const int32_t *pos0,
                             const float *cos_t, const float *sin_t, int norm_style)
{
    extern __shared__ float hs[];
    int half = n_rot / 2;
    int64_t t = blockIdx.y, h = blockIdx.x;
    float *p = x + (t * n_head + h) * head_dim;
    for (int i = threadIdx.x; i < n_rot; i += blockDim.x)
        hs[i] = p[i];
    __syncthreads();
    const float *cs = cos_t + (int64_t)(*pos0 + t) * half, *sn = sin_t + (int64_t)(*pos0 + t) * half;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float a = norm_style ? hs[2 * i] : hs[i];
        float b = norm_style ? hs[2 * i + 1] : hs[i + half];
        p[i] = __fsub_rn(__fmul_rn(a, cs[i]), __fmul_rn(b, sn[i]));
        p[i + half] = __fadd_rn(__fmul_rn(b, cs[i]), __fmul_rn(a, sn[i]));
    }
}

extern "C" int rtc_rope_table(float *x, int64_t n_tok, int n_head, int head_dim, int n_rot,
                              const int32_t *pos0, const float *cos_t, const float *sin_t,
                              int norm_style, void *stream, struct err *e)
{
    if (n_tok <= 0 || n_rot <= 0)
        return 0;
    if (n_rot > head_dim || n_rot % 2)
        return ERR(e, ERR_FORMAT, "rope: %d rotary dims in heads of %d", n_rot, head_dim);
    dim3 grid((unsigned)n_head, (unsigned)n_tok);
    k_rope_table<<<grid, 64, (size_t)n_rot * sizeof(float), (cudaStream_t)stream>>>(
        x, n_head, head_dim, n_rot, pos0, cos_t, sin_t, norm_style);
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

/* grid (n_head + n_head_kv, n_tok): blocks < n_head rotate a head of q (k_rope_table's
 * arithmetic), the others a head of k, then store that head of k and of v in the cache */
__global__ void k_rope_kv(float *q, float *k, const float *v, float *kc, float *vc, int n_head,
                          int n_head_kv, int head_dim, int n_rot, const int32_t *pos0,
                          const float *cos_t, const float *sin_t, int norm_style, int64_t n_ctx)
{
    extern __shared__ float hs[];
    pdl_trigger();
    pdl_wait();
    const int half = n_rot / 2;
    const int64_t t = blockIdx.y;
    const int isk = (int)blockIdx.x >= n_head, h = isk ? (int)blockIdx.x - n_head : (int)blockIdx.x;
    const int64_t kv_dim = (int64_t)n_head_kv * head_dim, p0 = (int64_t)*pos0 + t;
    float *p = isk ? k + t * kv_dim + (int64_t)h * head_dim : q + (t * n_head + h) * head_dim;
    for (int i = threadIdx.x; i < n_rot; i += blockDim.x)
        hs[i] = p[i];
    __syncthreads();
    const float *cs = cos_t + p0 * half, *sn = sin_t + p0 * half;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float a = norm_style ? hs[2 * i] : hs[i];
        float b = norm_style ? hs[2 * i + 1] : hs[i + half];
        p[i] = __fsub_rn(__fmul_rn(a, cs[i]), __fmul_rn(b, sn[i]));
        p[i + half] = __fadd_rn(__fmul_rn(b, cs[i]), __fmul_rn(a, sn[i]));
    }
    if (!isk || p0 < 0 || p0 >= n_ctx)
        return;
    __syncthreads();                 /* the rotated head, written by the whole block */
    const int64_t o = (int64_t)h * head_dim;
    for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
        kc[p0 * kv_dim + o + i] = p[i];
        vc[p0 * kv_dim + o + i] = v[t * kv_dim + o + i];
    }
}

extern "C" int rtc_rope_kv(float *q, float *k, const float *v, float *kc, float *vc, int64_t n_tok,
                           int n_head, int n_head_kv, int head_dim, int n_rot, const int32_t *pos0,
                           const float *cos_t, const float *sin_t, int norm_style, int64_t n_ctx,
                           void *stream, struct err *e)
{
    if (n_tok <= 0)
        return 0;
    if (n_rot <= 0 || n_rot > head_dim || n_rot % 2)
        return ERR(e, ERR_FORMAT, "rope: %d rotary dims in heads of %d", n_rot, head_dim);
    if (n_tok > 65535)
        return ERR(e, ERR_LIMIT, "rope: %lld tokens at once (at most 65535)", (long long)n_tok);
    dim3 grid((unsigned)(n_head + n_head_kv), (unsigned)n_tok);
    return CU_CHECK(e, launch_ex(rtc_pdl() >= 2, k_rope_kv, grid, dim3(64), (size_t)n_rot * sizeof(float),
                                 (cudaStream_t)stream, q, k, v, kc, vc, n_head, n_head_kv, head_dim, n_rot, pos0,
                                 cos_t, sin_t, norm_style, n_ctx),
                    "rope + kv store kernel launch");
}

/*
 * grid (n_head, n_tok), 128 threads; shared: q[head_dim] then scores[n_ctx].  The CPU
 * forward's steps (scores, max, exp, sum, probabilities normalised, weighted sum of v)
 * with the summations split for speed: a score is a warp's dot (lanes over the head's
 * dimensions, coalesced, then a shuffle tree), and each output dimension sums its keys
 * in four interleaved partial sums.  Only the order of those sums differs from the CPU.
 */
template <bool CPU_ORDER>
__global__ void __launch_bounds__(128)
k_attention(const float *q, const float *kc, const float *vc, float *out,
            int n_head, int n_head_kv, int head_dim, const int32_t *pos0,
            int64_t n_ctx, float scale, float *scores, float *probs, int64_t n_kv)
{
    extern __shared__ float smem[];
    __shared__ float red[32];
    float *qs = smem, *sc = smem + head_dim;
    const int h = blockIdx.x, t = blockIdx.y, kvh = h / (n_head / n_head_kv);
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int64_t kv_dim = (int64_t)n_head_kv * head_dim;
    int64_t n_keys = (int64_t)*pos0 + t + 1;
    if (n_keys > n_ctx)
        n_keys = n_ctx;
    const float *qp = q + ((int64_t)t * n_head + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
        qs[d] = qp[d];
    __syncthreads();
    float mx = -INFINITY;
    if (CPU_ORDER) {
        /* the CPU's order: products rounded, summed in order, one key a thread */
        for (int64_t j = threadIdx.x; j < n_keys; j += blockDim.x) {
            const float *kp = kc + j * kv_dim + (int64_t)kvh * head_dim;
            float s = 0.0f;
            for (int d = 0; d < head_dim; d++)
                s = __fadd_rn(s, __fmul_rn(qs[d], kp[d]));
            s = __fmul_rn(s, scale);
            sc[j] = s;
            mx = fmaxf(mx, s);
        }
    } else {
        for (int64_t j = wid; j < n_keys; j += nw) {
            const float *kp = kc + j * kv_dim + (int64_t)kvh * head_dim;
            float s = 0.0f;
            for (int d = lane; d < head_dim; d += 32)
                s = fmaf(qs[d], kp[d], s);
#pragma unroll
            for (int o = 16; o > 0; o >>= 1)
                s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
            s = __fmul_rn(s, scale);
            if (lane == 0)
                sc[j] = s;
            mx = fmaxf(mx, s);
        }
    }
    mx = block_max(mx, red);         /* its barriers also publish sc[] */
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < n_keys; j += blockDim.x) {
        float p = expf(sc[j] - mx);
        sum += p;
        if (scores)
            scores[((int64_t)t * n_head + h) * n_kv + j] = sc[j];
        sc[j] = p;
    }
    sum = block_sum(sum, red);
    for (int64_t j = threadIdx.x; j < n_keys; j += blockDim.x) {
        sc[j] = sc[j] / sum;
        if (probs)
            probs[((int64_t)t * n_head + h) * n_kv + j] = sc[j];
    }
    if (scores)
        for (int64_t j = n_keys + threadIdx.x; j < n_kv; j += blockDim.x) {
            scores[((int64_t)t * n_head + h) * n_kv + j] = 0.0f;
            probs[((int64_t)t * n_head + h) * n_kv + j] = 0.0f;
        }
    __syncthreads();
    float *op = out + ((int64_t)t * n_head + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        const float *vp = vc + (int64_t)kvh * head_dim + d;
        if (CPU_ORDER) {
            float acc = 0.0f;
            for (int64_t j = 0; j < n_keys; j++)
                acc = __fadd_rn(acc, __fmul_rn(sc[j], vp[j * kv_dim]));
            op[d] = acc;
            continue;
        }
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        int64_t j = 0;
        for (; j + 4 <= n_keys; j += 4) {
            a0 = fmaf(sc[j], vp[j * kv_dim], a0);
            a1 = fmaf(sc[j + 1], vp[(j + 1) * kv_dim], a1);
            a2 = fmaf(sc[j + 2], vp[(j + 2) * kv_dim], a2);
            a3 = fmaf(sc[j + 3], vp[(j + 3) * kv_dim], a3);
        }
        for (; j < n_keys; j++)
            a0 = fmaf(sc[j], vp[j * kv_dim], a0);
        op[d] = (a0 + a1) + (a2 + a3);
    }
}

/*
 * One token (decode), head_dim HD (64 or 128): a block of 8 warps per head.  Scores: 8
 * lanes a key, each with HD/8 dimensions of q in registers, so a warp takes 4 keys at a
 * time (independent loads in flight) and ends each with 3 shuffles.  Then the CPU's
 * softmax steps (max, exp, sum, probabilities normalised) and the weighted sum of v:
 * warp w sums keys w, w+8, ... over lanes of HD/32 dimensions, the 8 partial sums are
 * added in shared memory.  Shared: scores[n_ctx].
 */
template <int HD>
__global__ void __launch_bounds__(256)
k_attn_dec(const float *__restrict__ q, const float *__restrict__ kc, const float *__restrict__ vc,
           float *__restrict__ out, int n_head, int n_head_kv, const int32_t *pos0, int64_t n_ctx,
           float scale, int pf)
{
    constexpr int NW = 8, KL = HD / 8, VL = HD / 32;
    extern __shared__ float sc[];
    __shared__ float red[32];
    __shared__ float part[NW][HD];
    const int h = blockIdx.x, kvh = h / (n_head / n_head_kv);
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5, sub = lane >> 3, sl = lane & 7;
    const int64_t kv_dim = (int64_t)n_head_kv * HD;
    /* the position is copied in before the step's first kernel: readable before the wait */
    int64_t n_keys = (int64_t)*pos0 + 1;
    if (n_keys > n_ctx)
        n_keys = n_ctx;
    pdl_trigger();
    if (pf)
        /* the keys and values of the earlier positions, stored by earlier steps, into L2
         * while the q/k/v kernel ahead still runs (the last position is its output) */
        for (int64_t j = tid; j < n_keys - 1; j += blockDim.x) {
            l2_prefetch_row(kc + j * kv_dim + (int64_t)kvh * HD, HD * sizeof(float));
            l2_prefetch_row(vc + j * kv_dim + (int64_t)kvh * HD, HD * sizeof(float));
        }
    pdl_wait();
    float qr[KL];
    {
        const float4 *qp = (const float4 *)(q + (int64_t)h * HD + sl * KL);
#pragma unroll
        for (int i = 0; i < KL / 4; i++) {
            float4 v = qp[i];
            qr[4 * i] = v.x; qr[4 * i + 1] = v.y; qr[4 * i + 2] = v.z; qr[4 * i + 3] = v.w;
        }
    }
    const float *kb = kc + (int64_t)kvh * HD + sl * KL;
    float mx = -INFINITY;
    for (int64_t j0 = 4 * wid; j0 < n_keys; j0 += 4 * NW) {
        int64_t j = j0 + sub;
        float s = 0.0f;
        if (j < n_keys) {
            const float4 *kp = (const float4 *)(kb + j * kv_dim);
#pragma unroll
            for (int i = 0; i < KL / 4; i++) {
                float4 v = __ldg(kp + i);
                s = fmaf(qr[4 * i], v.x, s);
                s = fmaf(qr[4 * i + 1], v.y, s);
                s = fmaf(qr[4 * i + 2], v.z, s);
                s = fmaf(qr[4 * i + 3], v.w, s);
            }
        }
        s += __shfl_xor_sync(0xFFFFFFFFu, s, 1);
        s += __shfl_xor_sync(0xFFFFFFFFu, s, 2);
        s += __shfl_xor_sync(0xFFFFFFFFu, s, 4);
        s = __fmul_rn(s, scale);
        if (j < n_keys) {
            if (sl == 0)
                sc[j] = s;
            mx = fmaxf(mx, s);
        }
    }
    mx = block_max(mx, red);         /* its barriers also publish sc[] */
    float sum = 0.0f;
    for (int64_t j = tid; j < n_keys; j += blockDim.x) {
        float p = expf(sc[j] - mx);
        sum += p;
        sc[j] = p;
    }
    sum = block_sum(sum, red);
    for (int64_t j = tid; j < n_keys; j += blockDim.x)
        sc[j] = sc[j] / sum;
    __syncthreads();
    float acc[VL];
#pragma unroll
    for (int i = 0; i < VL; i++)
        acc[i] = 0.0f;
    const float *vb = vc + (int64_t)kvh * HD + lane * VL;
#pragma unroll 4
    for (int64_t j = wid; j < n_keys; j += NW) {
        const float p = sc[j];
        if constexpr (VL == 4) {
            float4 v = __ldg((const float4 *)(vb + j * kv_dim));
            acc[0] = fmaf(p, v.x, acc[0]); acc[1] = fmaf(p, v.y, acc[1]);
            acc[2] = fmaf(p, v.z, acc[2]); acc[3] = fmaf(p, v.w, acc[3]);
        } else {
            float2 v = __ldg((const float2 *)(vb + j * kv_dim));
            acc[0] = fmaf(p, v.x, acc[0]); acc[1] = fmaf(p, v.y, acc[1]);
        }
    }
#pragma unroll
    for (int i = 0; i < VL; i++)
        part[wid][lane * VL + i] = acc[i];
    __syncthreads();
    if (tid < HD) {
        float v = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; w++)
            v += part[w][tid];
        out[(int64_t)h * HD + tid] = v;
    }
}

/*
 * Several tokens, head_dim HD (64 or 128): grid (n_head, tiles of QT tokens), 128
 * threads.  Each tile of 32 keys (and then of 32 values) is staged in shared memory once
 * for the QT queries of the block (the one-block-per-query kernel read every key and
 * value from L2 once per query).  Scores: lane = key of the tile, warp w takes queries
 * w, w+4, ...; then per query (a warp each) the CPU's softmax steps; then thread d sums
 * dimension d of the weighted values for its queries, keys in order.  Shared: q tile
 * [QT][HD], the key tile [32][HD+4] (rows padded: the lanes' float4 reads of 32 rows
 * fall in distinct banks) reused for the value tile, scores [QT][n_ctx rounded up to 32].
 */
template <int HD, int QT>
__global__ void __launch_bounds__(128)
k_attn_tile(const float *__restrict__ q, const float *__restrict__ kc, const float *__restrict__ vc,
            float *__restrict__ out, int64_t n_tok, int n_head, int n_head_kv,
            const int32_t *pos0, int64_t n_ctx, float scale)
{
    constexpr int KP = HD + 4, QW = QT / 4, NQG = 128 / HD, QPT = QT / NQG;
    extern __shared__ float4 smem4[];
    float *qs = (float *)smem4, *ks = qs + QT * HD, *sc = ks + 32 * KP;
    const int h = blockIdx.x, kvh = h / (n_head / n_head_kv);
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    const int64_t t0 = (int64_t)blockIdx.y * QT, kv_dim = (int64_t)n_head_kv * HD;
    const int64_t p0 = *pos0, SC = (n_ctx + 31) & ~(int64_t)31;   /* score row stride */
    /* keys of query t0 + i: min(p0 + t0 + i + 1, n_ctx); 0 past the last token */
    auto nk_of = [&](int i) -> int64_t {
        if (t0 + i >= n_tok)
            return 0;
        int64_t n = p0 + t0 + i + 1;
        return n < n_ctx ? n : n_ctx;
    };
    int64_t nk_max = 0;
    for (int i = QT - 1; i >= 0 && nk_max == 0; i--)
        nk_max = nk_of(i);
    const int64_t nk_pad = (nk_max + 31) & ~(int64_t)31;
    for (int i = tid; i < QT * HD / 4; i += 128) {
        int qi = i / (HD / 4), c = i % (HD / 4);
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (t0 + qi < n_tok)
            v = *(const float4 *)(q + ((t0 + qi) * n_head + h) * HD + 4 * c);
        *(float4 *)(qs + qi * HD + 4 * c) = v;
    }
    const float *kb = kc + (int64_t)kvh * HD, *vb = vc + (int64_t)kvh * HD;
    for (int64_t k0 = 0; k0 < nk_max; k0 += 32) {
        __syncthreads();             /* the previous tile is read */
        for (int i = tid; i < 32 * HD / 4; i += 128) {
            int r = i / (HD / 4), c = i % (HD / 4);
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (k0 + r < nk_max)
                v = __ldg((const float4 *)(kb + (k0 + r) * kv_dim + 4 * c));
            *(float4 *)(ks + r * KP + 4 * c) = v;
        }
        __syncthreads();
        float acc[QW];
#pragma unroll
        for (int i = 0; i < QW; i++)
            acc[i] = 0.0f;
        const float *kr = ks + lane * KP;
#pragma unroll 4
        for (int d = 0; d < HD; d += 4) {
            float4 kv = *(const float4 *)(kr + d);
#pragma unroll
            for (int i = 0; i < QW; i++) {
                float4 qv = *(const float4 *)(qs + (wid + 4 * i) * HD + d);
                acc[i] = fmaf(qv.x, kv.x, acc[i]);
                acc[i] = fmaf(qv.y, kv.y, acc[i]);
                acc[i] = fmaf(qv.z, kv.z, acc[i]);
                acc[i] = fmaf(qv.w, kv.w, acc[i]);
            }
        }
#pragma unroll
        for (int i = 0; i < QW; i++)
            sc[(int64_t)(wid + 4 * i) * SC + k0 + lane] = __fmul_rn(acc[i], scale);
    }
    __syncthreads();
    /* softmax per query: masked keys (and the tile's padding) get probability 0 */
    for (int qi = wid; qi < QT; qi += 4) {
        float *row = sc + (int64_t)qi * SC;
        const int64_t nk = nk_of(qi);
        float mx = -INFINITY;
        for (int64_t j = lane; j < nk; j += 32)
            mx = fmaxf(mx, row[j]);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
            mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, o));
        float sum = 0.0f;
        for (int64_t j = lane; j < nk; j += 32) {
            float p = expf(row[j] - mx);
            sum += p;
            row[j] = p;
        }
        sum = warp_sum(sum);
        for (int64_t j = lane; j < nk_pad; j += 32)
            row[j] = j < nk ? row[j] / sum : 0.0f;
    }
    const int d = tid % HD, qg = tid / HD;
    float acc[QPT];
#pragma unroll
    for (int i = 0; i < QPT; i++)
        acc[i] = 0.0f;
    float *vs = ks;                  /* [32][HD], unpadded */
    for (int64_t k0 = 0; k0 < nk_max; k0 += 32) {
        __syncthreads();             /* scores written, the previous tile read */
        for (int i = tid; i < 32 * HD / 4; i += 128) {
            int r = i / (HD / 4), c = i % (HD / 4);
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (k0 + r < nk_max)
                v = __ldg((const float4 *)(vb + (k0 + r) * kv_dim + 4 * c));
            *(float4 *)(vs + r * HD + 4 * c) = v;
        }
        __syncthreads();
#pragma unroll 4
        for (int jj = 0; jj < 32; jj++) {
            const float v = vs[jj * HD + d];
#pragma unroll
            for (int i = 0; i < QPT; i++)
                acc[i] = fmaf(sc[(int64_t)(qg + NQG * i) * SC + k0 + jj], v, acc[i]);
        }
    }
#pragma unroll
    for (int i = 0; i < QPT; i++) {
        int qi = qg + NQG * i;
        if (t0 + qi < n_tok)
            out[((t0 + qi) * n_head + h) * HD + d] = acc[i];
    }
}

/* the fast kernels' shared memory, 0 when they do not apply */
static size_t attn_dec_shm(int head_dim, int64_t n_ctx)
{
    return head_dim == 64 || head_dim == 128 ? (size_t)n_ctx * sizeof(float) : 0;
}
static size_t attn_tile_shm(int head_dim, int qt, int64_t n_ctx)
{
    if (head_dim != 64 && head_dim != 128)
        return 0;
    size_t sc = ((size_t)n_ctx + 31) & ~(size_t)31;
    return ((size_t)qt * head_dim + 32 * ((size_t)head_dim + 4) + (size_t)qt * sc) * sizeof(float);
}

template <typename K> static int shm_allow(K kern, size_t shm, struct err *e)
{
    if (shm <= 48 * 1024)
        return 0;
    return CU_CHECK(e, cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm),
                    "cudaFuncSetAttribute");
}

/* 0 launched, 1 not applicable (the general kernel runs), -1 error */
static int attention_fast(const float *q, const float *kc, const float *vc, float *out, int64_t n_tok,
                          int n_head, int n_head_kv, int head_dim, const int32_t *pos0, int64_t n_ctx,
                          float scale, cudaStream_t st, struct err *e)
{
    const size_t lim = 200 * 1024;
    if (n_tok == 1) {
        size_t shm = attn_dec_shm(head_dim, n_ctx);
        if (!shm || shm > lim)
            return 1;
        const int pdl = rtc_pdl() >= 2, pf = rtc_pdl() >= 3;
#define DEC(HD) (shm_allow(k_attn_dec<HD>, shm, e) ? -1 :                                        \
                 CU_CHECK(e, launch_ex(pdl, k_attn_dec<HD>, dim3((unsigned)n_head), dim3(256), shm, st, q, kc, vc, \
                                       out, n_head, n_head_kv, pos0, n_ctx, scale, pf), "attention kernel launch"))
        if ((head_dim == 128 ? DEC(128) : DEC(64)) < 0)
            return -1;
#undef DEC
        return 0;
    }
    int qt = 16;
    size_t shm = attn_tile_shm(head_dim, 16, n_ctx);
    if (shm > lim) {
        qt = 4;
        shm = attn_tile_shm(head_dim, 4, n_ctx);
    }
    if (!shm || shm > lim)
        return 1;
    dim3 grid((unsigned)n_head, (unsigned)((n_tok + qt - 1) / qt));
#define TILE(HD, QT) (shm_allow(k_attn_tile<HD, QT>, shm, e) ? -1 :                               \
                      (k_attn_tile<HD, QT><<<grid, 128, shm, st>>>(q, kc, vc, out, n_tok, n_head,    \
                                                                   n_head_kv, pos0, n_ctx, scale), 0))
    int rc = head_dim == 128 ? (qt == 16 ? TILE(128, 16) : TILE(128, 4))
                             : (qt == 16 ? TILE(64, 16) : TILE(64, 4));
#undef TILE
    if (rc < 0)
        return -1;
    return CU_CHECK(e, cudaGetLastError(), "attention kernel launch");
}

static int attention(const float *q, const float *kc, const float *vc, float *out, int64_t n_tok,
                     int n_head, int n_head_kv, int head_dim, const int32_t *pos0, int64_t n_ctx,
                     float scale, float *scores, float *probs, int64_t n_kv, int cpu_order,
                     void *stream, struct err *e)
{
    size_t shm = ((size_t)head_dim + (size_t)n_ctx) * sizeof(float);
    if (n_tok <= 0)
        return 0;
    if (n_head_kv <= 0 || n_head % n_head_kv)
        return ERR(e, ERR_FORMAT, "attention: %d heads not a multiple of %d kv heads", n_head, n_head_kv);
    if (n_tok > 65535)
        return ERR(e, ERR_LIMIT, "attention: %lld tokens at once (at most 65535)", (long long)n_tok);
    if (!cpu_order && !scores) {
        int r = attention_fast(q, kc, vc, out, n_tok, n_head, n_head_kv, head_dim, pos0, n_ctx, scale,
                               (cudaStream_t)stream, e);
        if (r <= 0)
            return r;
    }
    if (shm > 48 * 1024) {
        if (shm > 227 * 1024)
            return ERR(e, ERR_LIMIT, "attention: context %lld too long for the shared-memory kernel",
                       (long long)n_ctx);
        if (CU_CHECK(e, cudaFuncSetAttribute(k_attention<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)shm), "cudaFuncSetAttribute") ||
            CU_CHECK(e, cudaFuncSetAttribute(k_attention<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)shm), "cudaFuncSetAttribute"))
            return -1;
    }
    dim3 grid((unsigned)n_head, (unsigned)n_tok);
    if (cpu_order)
        k_attention<true><<<grid, 128, shm, (cudaStream_t)stream>>>(q, kc, vc, out, n_head, n_head_kv, head_dim,
                                                                    pos0, n_ctx, scale, scores, probs, n_kv);
    else
        k_attention<false><<<grid, 128, shm, (cudaStream_t)stream>>>(q, kc, vc, out, n_head, n_head_kv, head_dim,
                                                                     pos0, n_ctx, scale, scores, probs, n_kv);
    return CU_CHECK(e, cudaGetLastError(), "attention kernel launch");
}

extern "C" int rtc_attention(const float *q, const float *kc, const float *vc, float *out,
                             int64_t n_tok, int n_head, int n_head_kv, int head_dim,
                             const int32_t *pos0, int64_t n_ctx, float scale, int cpu_order,
                             void *stream, struct err *e)
{
    return attention(q, kc, vc, out, n_tok, n_head, n_head_kv, head_dim, pos0, n_ctx, scale, NULL,
                     NULL, 0, cpu_order, stream, e);
}

extern "C" int rtc_attention_probe(const float *q, const float *kc, const float *vc, float *out,
                                   int64_t n_tok, int n_head, int n_head_kv, int head_dim,
                                   const int32_t *pos0, int64_t n_ctx, float scale, float *scores,
                                   float *probs, int64_t n_kv, void *stream, struct err *e)
{
    return attention(q, kc, vc, out, n_tok, n_head, n_head_kv, head_dim, pos0, n_ctx, scale, scores,
                     probs, n_kv, 1, stream, e);
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

__global__ void k_silu(float *x, int64_t n)
{
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        x[i] = v / (1.0f + expf(-v));
    }
}

__global__ void k_mul(float *x, const float *y, int64_t n)
{
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n)
        x[i] *= y[i];
}

extern "C" int rtc_silu(float *x, int64_t n, void *stream, struct err *e)
{
    if (n <= 0)
        return 0;
    k_silu<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)stream>>>(x, n);
    return CU_CHECK(e, cudaGetLastError(), "silu kernel launch");
}

extern "C" int rtc_mul(float *x, const float *y, int64_t n, void *stream, struct err *e)
{
    if (n <= 0)
        return 0;
    k_mul<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)stream>>>(x, y, n);
    return CU_CHECK(e, cudaGetLastError(), "mul kernel launch");
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
