/*
 * rtc_mmvq.cu - decode matrix-vector products on int8 activations (rtc_ops.h,
 * rtc_gemv_q): the activation is quantized once per token, exactly as the CPU runtime
 * quantizes it (runtime/kern_ref.c: Q8_0, Q8_1 or Q8_K, the same roundings, so the
 * same int8 values and scales), and each block of weights is multiplied with it in
 * integers by __dp4a.  The integer sum of a block is the CPU's; only the float
 * scaling is summed in another order (by thread, then by a tree), so the result
 * equals the CPU's kernel up to that reordering.
 *
 * The quantized activation on the device is not the CPU's array of blocks but the same
 * numbers in a layout the kernels load with aligned vector reads:
 *     int8  qs[cols]            the quantized values
 *     float d[cols / 32]        the block scale as the f16 the CPU stores, widened
 *                               (Q8_K: d[cols / 256], the f32 scale)
 *     float s[cols / 32]        Q8_1: f16(d * sum(qs)), widened
 *     int   bs[cols / 16]       Q8_K: the sums of 16 (bsums)
 *
 * Kernel: a block of 128 threads computes mmvq_rows(type) rows; thread t takes the
 * groups of 32 weights t, t+128, ... of every row, so the threads of a warp read
 * consecutive blocks of a row (coalesced), the activation group is loaded once for all
 * the rows, and each thread holds that many independent loads in flight.
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../dequant/cuda/cu.h"
#include "rtc_ops.h"

extern "C" {
#include "../../dequant/blocks.h"
#include "../../formats/dtype.h"
}

/* the launch shape in use: rows a block by type, threads a block, minimum blocks an SM.
 * bench_kern's sweep (rtc_gemv_q_variant) on an H100, GB/s on [4096 x 4096], [11008 x
 * 4096], [4096 x 11008]: Q4_K 8 rows 1090 1625 1368, 4 rows 1298 1794 1794; Q6_K 8 rows
 * 1410 1696 1715, 2 rows 1446 1990 1843; Q8_0 8 rows 1712 2044 2091, 2 rows 1874 2487
 * 2344; 64 or 32 threads, 256 threads, 16 rows or a register cap for 12 blocks an SM
 * were no better.  With the threads fixed, a row's sum does not depend on the rows a
 * block: the results are the same for any choice. */
#define MMVQ_ROWS 8
#define MMVQ_THREADS 128
#define MMVQ_MINB 1
static __host__ __device__ constexpr int mmvq_rows(int t)
{
    return t == DT_Q6_K || t == DT_Q8_0 ? 2 : 4;
}

/* ---- the activation layout */

extern "C" int rtc_act_kind(int t)
{
    switch (t) {
    case DT_Q4_0: case DT_Q5_0: case DT_Q8_0: case DT_IQ4_NL: return RTC_ACT_Q8_0;
    case DT_Q4_1: case DT_Q5_1: return RTC_ACT_Q8_1;
    case DT_Q2_K: case DT_Q3_K: case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: case DT_IQ4_XS:
        return RTC_ACT_Q8_K;
    default: return RTC_ACT_NONE;
    }
}

extern "C" int64_t rtc_act_blck(int kind) { return kind == RTC_ACT_Q8_K ? 256 : kind ? 32 : 0; }

extern "C" uint64_t rtc_act_bytes(int64_t cols)
{
    /* qs, d, s, bs: 1 + 4/32 + 4/32 + 4/16 bytes an element, each part 16-aligned */
    return (uint64_t)cols + 2 * (uint64_t)(cols / 32) * 4 + (uint64_t)(cols / 16) * 4 + 64;
}

struct act_ptrs {
    const int8_t *qs;
    const float *d, *s;
    const int *bs;
};

static __host__ __device__ inline uint64_t al16(uint64_t x) { return (x + 15) & ~(uint64_t)15; }

__host__ __device__ static inline void act_layout(const void *base, int64_t cols, int8_t **qs,
                                                  float **d, float **s, int **bs)
{
    uint8_t *p = (uint8_t *)base;
    uint64_t o_d = al16((uint64_t)cols), o_s = al16(o_d + (uint64_t)(cols / 32) * 4),
             o_b = al16(o_s + (uint64_t)(cols / 32) * 4);
    *qs = (int8_t *)p;
    *d = (float *)(p + o_d);
    *s = (float *)(p + o_s);
    *bs = (int *)(p + o_b);
}

__device__ __forceinline__ float wmax(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}
__device__ __forceinline__ float wmin(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fminf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}
__device__ __forceinline__ int wsum_i(int v, int width)
{
    for (int o = width / 2; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

#include "rtc_pdl.cuh"

static int pdl_mode = -1;       /* -1 not read yet */
extern "C" void rtc_set_pdl(int level) { pdl_mode = level < 0 ? 0 : level > 3 ? 3 : level; }
extern "C" int rtc_pdl(void)
{
    if (pdl_mode < 0) {
        const char *v = getenv("APR_CUDA_PDL");
        pdl_mode = v && v[0] >= '0' && v[0] <= '3' && !v[1] ? v[0] - '0' : 3;
    }
    return pdl_mode;
}

/* the int8 kernels' launches: programmatic at level 1 and up */
template <typename... K, typename... A>
static cudaError_t launch(void (*k)(K...), unsigned grid, unsigned threads, size_t shm, cudaStream_t st,
                          A &&...args)
{
    return launch_ex(rtc_pdl() >= 1, k, dim3(grid), dim3(threads), shm, st, static_cast<A &&>(args)...);
}

/* [p, p + n) into L2, by threads 0.. of the block in chunks of 16 KiB; the range is
 * narrowed to 16-byte bounds (the instruction's), so nothing outside it is touched */
__device__ __forceinline__ void l2_prefetch(const uint8_t *p, uint64_t n, int tid)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uintptr_t a = ((uintptr_t)p + 15) & ~(uintptr_t)15, b = ((uintptr_t)p + n) & ~(uintptr_t)15;
    uintptr_t c = a + (uintptr_t)tid * 16384;
    if (c < b)
        l2_prefetch_row((const void *)c, (uint32_t)(b - c < 16384 ? b - c : 16384));
#else
    (void)p; (void)n; (void)tid;
#endif
}

/* Q8_0 / Q8_1 block b of 32 values, one a lane of a full warp (v: element 32 b + lane),
 * kern_ref.c quant_q8_0_ref's arithmetic; S: also the Q8_1 sum */
template <bool S>
__device__ __forceinline__ void q8_block(float v, int64_t b, int lane, int8_t *qs, float *dd, float *ss)
{
    float amax = wmax(fabsf(v));
    float d = __fdiv_rn(amax, 127.0f), id = d != 0.0f ? __fdiv_rn(1.0f, d) : 0.0f;
    int q = __float2int_rn(__fmul_rn(v, id));
    qs[32 * b + lane] = (int8_t)q;
    if (S) {
        int sum = wsum_i(q, 32);
        if (lane == 0)
            ss[b] = __half2float(__float2half_rn(__fmul_rn(d, (float)sum)));
    }
    if (lane == 0)
        dd[b] = __half2float(__float2half_rn(d));
}

/* Q8_0 / Q8_1: one warp per block of 32, lane = element */
template <bool S>
__global__ void k_quant_q8(const float *__restrict__ x, int64_t nb, int8_t *qs, float *dd, float *ss)
{
    pdl_trigger();
    pdl_wait();
    int64_t b = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (b >= nb)
        return;
    q8_block<S>(x[32 * b + lane], b, lane, qs, dd, ss);
}

/* Q8_K super-block b of 256 values, one a thread of a 256-thread block (v: thread t's,
 * element 256 b + t), quant_q8_k_ref's arithmetic; smx, smn: 8 floats of shared memory */
__device__ __forceinline__ void q8k_block(float v, int64_t b, int t, float *smx, float *smn, int8_t *qs,
                                          float *dd, int *bs)
{
    const int lane = t & 31, w = t >> 5;
    float mx = wmax(v), mn = wmin(v);
    if (lane == 0) {
        smx[w] = mx;
        smn[w] = mn;
    }
    __syncthreads();
    mx = smx[0];
    mn = smn[0];
#pragma unroll
    for (int i = 1; i < 8; i++) {
        mx = fmaxf(mx, smx[i]);
        mn = fminf(mn, smn[i]);
    }
    float max = mx >= -mn ? mx : mn;
    int q = 0;
    float iscale = 0.0f;
    if (max != 0.0f) {
        iscale = __fdiv_rn(-127.0f, max);
        q = __float2int_rn(__fmul_rn(iscale, v));
        q = q > 127 ? 127 : q;
    }
    qs[256 * b + t] = (int8_t)q;
    int s16 = wsum_i(q, 16);           /* xor within 16 lanes: the two halves of a warp */
    if ((lane & 15) == 0)
        bs[16 * b + t / 16] = s16;
    if (t == 0)
        dd[b] = max != 0.0f ? __fdiv_rn(1.0f, iscale) : 0.0f;
}

/* Q8_K: one block of 256 threads per super-block (quant_q8_k_ref) */
__global__ void __launch_bounds__(256) k_quant_q8k(const float *__restrict__ x, int8_t *qs, float *dd, int *bs)
{
    pdl_trigger();
    pdl_wait();
    __shared__ float smx[8], smn[8];
    int64_t b = blockIdx.x;
    int t = threadIdx.x;
    q8k_block(x[256 * b + t], b, t, smx, smn, qs, dd, bs);
}

/*
 * RMSNorm of one token then its quantization, one block (rtc_rmsnorm's 256 threads, or n
 * when n < 256): the sum of
 * squares and the scale exactly as rtc_ops.cu's k_rmsnorm (same threads, same order, so
 * the same double sum), the normalised row kept in shared memory and written out, then
 * quantized from there with k_quant_q8's (a warp per block of 32) or k_quant_q8k's
 * arithmetic (a warp per super-block, 8 values a lane; max, min and the integer sums
 * do not depend on the order).
 */
template <int KIND>
__global__ void __launch_bounds__(256)
k_rmsnorm_q(const float *__restrict__ x, const float *__restrict__ g, float *__restrict__ out, int64_t n,
            float eps, int8_t *qs, float *dd, float *ss, int *bs)
{
    extern __shared__ float row[];
    __shared__ double sh[32];
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5, nw = blockDim.x >> 5;
    pdl_trigger();
    pdl_wait();
    double acc = 0.0;
    for (int64_t i = tid; i < n; i += blockDim.x)
        acc += (double)x[i] * x[i];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
    if (lane == 0)
        sh[wid] = acc;
    __syncthreads();
    acc = lane < nw ? sh[lane] : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
    const float sc = (float)(1.0 / sqrt(acc / (double)n + (double)eps));
    for (int64_t i = tid; i < n; i += blockDim.x) {
        float v = __fmul_rn(__fmul_rn(x[i], sc), g[i]);
        row[i] = v;
        out[i] = v;
    }
    __syncthreads();
    if constexpr (KIND == RTC_ACT_Q8_K) {
        for (int64_t b = wid; b < n / 256; b += nw) {
            const float *r = row + 256 * b + 8 * lane;
            float v[8], mx = -INFINITY, mn = INFINITY;
#pragma unroll
            for (int k = 0; k < 8; k++) {
                v[k] = r[k];
                mx = fmaxf(mx, v[k]);
                mn = fminf(mn, v[k]);
            }
            mx = wmax(mx);
            mn = wmin(mn);
            const float max = mx >= -mn ? mx : mn;
            float iscale = 0.0f;
            int sum = 0;
            uint32_t pk[2] = { 0, 0 };
            if (max != 0.0f)
                iscale = __fdiv_rn(-127.0f, max);
#pragma unroll
            for (int k = 0; k < 8; k++) {
                int q = 0;
                if (max != 0.0f) {
                    q = __float2int_rn(__fmul_rn(iscale, v[k]));
                    q = q > 127 ? 127 : q;
                }
                sum += q;
                pk[k >> 2] |= (uint32_t)(q & 255) << (8 * (k & 3));
            }
            *(uint2 *)(qs + 256 * b + 8 * lane) = make_uint2(pk[0], pk[1]);
            sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 1);   /* lanes 2i, 2i+1: the 16 of bsum i */
            if ((lane & 1) == 0)
                bs[16 * b + lane / 2] = sum;
            if (lane == 0)
                dd[b] = max != 0.0f ? __fdiv_rn(1.0f, iscale) : 0.0f;
        }
    } else {
        for (int64_t b = wid; b < n / 32; b += nw)
            q8_block<KIND == RTC_ACT_Q8_1>(row[32 * b + lane], b, lane, qs, dd, ss);
    }
}

/*
 * The same, spread over n / 256 blocks of 256 threads (n a multiple of 256): every block
 * sums the squares of the whole row exactly as k_rmsnorm_q does (the same threads, the
 * same order: the same double sum and scale), then normalises and quantizes only its
 * 256 values: one Q8_K super-block with k_quant_q8k's arithmetic, or 8 blocks of 32 a
 * warp each with k_quant_q8's.  The bytes are k_rmsnorm_q's; the one-block kernel's 16
 * rounds of normalising and 2 of quantizing become one.
 */
template <int KIND>
__global__ void __launch_bounds__(256)
k_rmsnorm_qm(const float *__restrict__ x, const float *__restrict__ g, float *__restrict__ out, int64_t n,
             float eps, int8_t *qs, float *dd, float *ss, int *bs)
{
    __shared__ double sh[8];
    __shared__ float smx[8], smn[8];
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    const int64_t i = (int64_t)blockIdx.x * 256 + tid;
    /* the weight is no output of the kernel ahead: its load (from memory, a token
     * later) runs under that kernel's end and the sum below */
    const float gi = g[i];
    pdl_trigger();
    pdl_wait();
    double acc = 0.0;
#pragma unroll 8
    for (int64_t i = tid; i < n; i += 256)
        acc += (double)x[i] * x[i];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
    if (lane == 0)
        sh[wid] = acc;
    __syncthreads();
    acc = lane < 8 ? sh[lane] : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
    const float sc = (float)(1.0 / sqrt(acc / (double)n + (double)eps));
    const float v = __fmul_rn(__fmul_rn(x[i], sc), gi);
    out[i] = v;
    if constexpr (KIND == RTC_ACT_Q8_K) {
        q8k_block(v, blockIdx.x, tid, smx, smn, qs, dd, bs);
    } else {
        q8_block<KIND == RTC_ACT_Q8_1>(v, i / 32, lane, qs, dd, ss);
    }
}

extern "C" int rtc_rmsnorm_q(const float *x, const float *g, float *out, int64_t n, float eps, int kind,
                             void *xq, void *stream, struct err *e)
{
    int8_t *qs;
    float *d, *s;
    int *bs;
    cudaStream_t st = (cudaStream_t)stream;
    const size_t shm = (size_t)n * sizeof(float);
    if (n <= 0 || n % rtc_act_blck(kind) || !kind)
        return ERR(e, ERR_INTERNAL, "rtc_rmsnorm_q: %lld values for activation kind %d", (long long)n, kind);
    if (shm > 48 * 1024)
        return 1;
    act_layout(xq, n, &qs, &d, &s, &bs);
    const unsigned th = n >= 256 ? 256 : (unsigned)n;      /* rtc_rmsnorm's threads: its sum */
    cudaError_t ce;
    /* from level 1, rows of whole 256s on n / 256 blocks (the same bytes; H100 bench_cuda
     * tg128 with the other level-2 kernels: Q4_K_M 390.9 -> 420.3 t/s, Q8_0 295.1 -> 324.9) */
    if (n % 256 == 0 && rtc_pdl() >= 1) {
        const unsigned nb = (unsigned)(n / 256);
        if (kind == RTC_ACT_Q8_K)
            ce = launch(k_rmsnorm_qm<RTC_ACT_Q8_K>, nb, 256, 0, st, x, g, out, n, eps, qs, d, s, bs);
        else if (kind == RTC_ACT_Q8_1)
            ce = launch(k_rmsnorm_qm<RTC_ACT_Q8_1>, nb, 256, 0, st, x, g, out, n, eps, qs, d, s, bs);
        else
            ce = launch(k_rmsnorm_qm<RTC_ACT_Q8_0>, nb, 256, 0, st, x, g, out, n, eps, qs, d, s, bs);
        return CU_CHECK(e, ce, "rmsnorm + quantize kernel launch");
    }
    if (kind == RTC_ACT_Q8_K)
        ce = launch(k_rmsnorm_q<RTC_ACT_Q8_K>, 1, th, shm, st, x, g, out, n, eps, qs, d, s, bs);
    else if (kind == RTC_ACT_Q8_1)
        ce = launch(k_rmsnorm_q<RTC_ACT_Q8_1>, 1, th, shm, st, x, g, out, n, eps, qs, d, s, bs);
    else
        ce = launch(k_rmsnorm_q<RTC_ACT_Q8_0>, 1, th, shm, st, x, g, out, n, eps, qs, d, s, bs);
    return CU_CHECK(e, ce, "rmsnorm + quantize kernel launch");
}

extern "C" int rtc_quantize_act(int kind, const float *x, int64_t cols, void *dst, void *stream,
                                struct err *e)
{
    int8_t *qs;
    float *d, *s;
    int *bs;
    cudaStream_t st = (cudaStream_t)stream;
    int64_t bl = rtc_act_blck(kind);
    if (!bl || cols <= 0 || cols % bl)
        return ERR(e, ERR_FORMAT, "activation quantization: %lld columns, blocks of %lld",
                   (long long)cols, (long long)bl);
    act_layout(dst, cols, &qs, &d, &s, &bs);
    int64_t nb = cols / bl;
    cudaError_t ce;
    if (kind == RTC_ACT_Q8_K)
        ce = launch(k_quant_q8k, (unsigned)nb, 256, 0, st, x, qs, d, bs);
    else if (kind == RTC_ACT_Q8_1)
        ce = launch(k_quant_q8<true>, (unsigned)((nb + 7) / 8), 256, 0, st, x, nb, qs, d, s);
    else
        ce = launch(k_quant_q8<false>, (unsigned)((nb + 7) / 8), 256, 0, st, x, nb, qs, d, s);
    return CU_CHECK(e, ce, "activation quantization kernel launch");
}

/* ---- weight decoding helpers */

__device__ __forceinline__ float h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ uint16_t ld16(const uint8_t *p) { return *(const uint16_t *)p; }
/* 4 bytes at a 2-aligned address */
__device__ __forceinline__ uint32_t ld4_2(const uint8_t *p)
{
    const uint16_t *q = (const uint16_t *)p;
    return (uint32_t)q[0] | (uint32_t)q[1] << 16;
}
__device__ __forceinline__ uint32_t ld4_4(const uint8_t *p) { return *(const uint32_t *)p; }

/* 32 bytes at a 2-aligned address through 4-byte aligned loads and funnel shifts;
 * may read up to 2 bytes past p+32 (device weight buffers carry 16 bytes of padding) */
__device__ __forceinline__ void ld32_2(const uint8_t *p, uint32_t *o)
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

/* 4 bits of x (x < 16) to bit 0 of each of the 4 bytes */
__device__ __forceinline__ uint32_t spread4(uint32_t x) { return (x * 0x00204081u) & 0x01010101u; }

/* kvalues_iq4nl as 4 little-endian words */
#define KV4(a, b, c, d) ((uint32_t)(uint8_t)(a) | (uint32_t)(uint8_t)(b) << 8 | \
                         (uint32_t)(uint8_t)(c) << 16 | (uint32_t)(uint8_t)(d) << 24)
/* 4 bytes of indices 0..15 to 4 bytes of kvalues_iq4nl */
__device__ __forceinline__ int lut_iq4(uint32_t idx)
{
    const uint32_t t0 = KV4(-127, -104, -83, -65), t1 = KV4(-49, -35, -22, -10);
    const uint32_t t2 = KV4(1, 13, 25, 38), t3 = KV4(53, 69, 89, 113);
    uint32_t x = idx & 0x07070707u, y = x | x >> 4;
    uint32_t sel = (y & 0xFFu) | ((y >> 8) & 0xFF00u);
    uint32_t lo = __byte_perm(t0, t1, sel), hi = __byte_perm(t2, t3, sel);
    uint32_t mask = ((idx & 0x08080808u) >> 3) * 0xFFu;
    return (int)((lo & ~mask) | (hi & mask));
}
#undef KV4

/* the activation group j: 32 int8 in a[8]; sums of its halves; scales */
struct actg {
    int a[8];
    int sum_lo, sum_hi;     /* Q8_K: bsums of the two 16s; else computed here */
    float d, s;
};

/*
 * The contribution of weights [32j, 32j+32) of a row: the block's exact integer sum
 * times the scales (kern_ref.c's formulas per block; for the super-block types the
 * sub-block's share of the super-block's integer sums).
 */
template <int T>
__device__ __forceinline__ float dotq(const uint8_t *row, int64_t j, const actg &g)
{
    const int *a = g.a;
    if constexpr (T == DT_Q4_0 || T == DT_IQ4_NL) {
        const uint8_t *blk = row + j * 18;
        int s = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            uint32_t w = ld4_2(blk + 2 + 4 * k);
            if constexpr (T == DT_Q4_0) {
                s = __dp4a((int)(w & 0x0F0F0F0Fu), a[k], s);
                s = __dp4a((int)((w >> 4) & 0x0F0F0F0Fu), a[k + 4], s);
            } else {
                s = __dp4a(lut_iq4(w & 0x0F0F0F0Fu), a[k], s);
                s = __dp4a(lut_iq4((w >> 4) & 0x0F0F0F0Fu), a[k + 4], s);
            }
        }
        if constexpr (T == DT_Q4_0)
            s -= 8 * (g.sum_lo + g.sum_hi);
        return (h2f(ld16(blk)) * g.d) * (float)s;
    } else if constexpr (T == DT_Q4_1) {
        const uint8_t *blk = row + j * 20;
        int s = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            uint32_t w = ld4_4(blk + 4 + 4 * k);
            s = __dp4a((int)(w & 0x0F0F0F0Fu), a[k], s);
            s = __dp4a((int)((w >> 4) & 0x0F0F0F0Fu), a[k + 4], s);
        }
        uint32_t dm = ld4_4(blk);
        return fmaf(h2f((uint16_t)dm) * g.d, (float)s, h2f((uint16_t)(dm >> 16)) * g.s);
    } else if constexpr (T == DT_Q5_0) {
        const uint8_t *blk = row + j * 22;
        uint32_t qh = ld4_2(blk + 2);
        int s = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            uint32_t w = ld4_2(blk + 6 + 4 * k);
            uint32_t lo = (w & 0x0F0F0F0Fu) | spread4((qh >> (4 * k)) & 15u) << 4;
            uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | spread4((qh >> (16 + 4 * k)) & 15u) << 4;
            s = __dp4a((int)lo, a[k], s);
            s = __dp4a((int)hi, a[k + 4], s);
        }
        s -= 16 * (g.sum_lo + g.sum_hi);
        return (h2f(ld16(blk)) * g.d) * (float)s;
    } else if constexpr (T == DT_Q5_1) {
        const uint8_t *blk = row + j * 24;
        uint32_t qh = ld4_4(blk + 4);
        int s = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            uint32_t w = ld4_4(blk + 8 + 4 * k);
            uint32_t lo = (w & 0x0F0F0F0Fu) | spread4((qh >> (4 * k)) & 15u) << 4;
            uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | spread4((qh >> (16 + 4 * k)) & 15u) << 4;
            s = __dp4a((int)lo, a[k], s);
            s = __dp4a((int)hi, a[k + 4], s);
        }
        uint32_t dm = ld4_4(blk);
        return fmaf(h2f((uint16_t)dm) * g.d, (float)s, h2f((uint16_t)(dm >> 16)) * g.s);
    } else if constexpr (T == DT_Q8_0) {
        const uint8_t *blk = row + j * 34;
        uint32_t w[8];
        ld32_2(blk + 2, w);
        int s = 0;
#pragma unroll
        for (int k = 0; k < 8; k++)
            s = __dp4a((int)w[k], a[k], s);
        return (h2f(ld16(blk)) * g.d) * (float)s;
    } else if constexpr (T == DT_Q4_K || T == DT_Q5_K) {
        constexpr int SZ = T == DT_Q4_K ? 144 : 176, QS = T == DT_Q4_K ? 16 : 48;
        const uint8_t *blk = row + (j >> 3) * SZ;
        const int sub = (int)(j & 7), sh = 4 * (sub & 1);
        const uint4 *qp = (const uint4 *)(blk + QS + 32 * (sub >> 1));
        uint4 u0 = qp[0], u1 = qp[1];
        uint32_t q[8] = { u0.x, u0.y, u0.z, u0.w, u1.x, u1.y, u1.z, u1.w };
        uint32_t h[8];
        if constexpr (T == DT_Q5_K) {
            const uint4 *hp = (const uint4 *)(blk + 16);
            uint4 h0 = hp[0], h1 = hp[1];
            h[0] = h0.x; h[1] = h0.y; h[2] = h0.z; h[3] = h0.w;
            h[4] = h1.x; h[5] = h1.y; h[6] = h1.z; h[7] = h1.w;
        }
        int s = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t v = (q[k] >> sh) & 0x0F0F0F0Fu;
            if constexpr (T == DT_Q5_K)
                v |= ((h[k] >> sub) & 0x01010101u) << 4;
            s = __dp4a((int)v, a[k], s);
        }
        /* rt_scale_min_k4 on the 12 scale bytes at blk + 4 */
        uint32_t s0 = ld4_4(blk + 4), s1 = ld4_4(blk + 8), s2 = ld4_4(blk + 12);
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
        uint32_t dm = ld4_4(blk);
        float d = h2f((uint16_t)dm) * g.d, dmin = h2f((uint16_t)(dm >> 16)) * g.d;
        return fmaf(d, (float)(sc * s), -(dmin * (float)(mn * (g.sum_lo + g.sum_hi))));
    } else if constexpr (T == DT_Q6_K) {
        const uint8_t *blk = row + (j >> 3) * 210;
        const int sub = (int)(j & 7), hf = sub >> 2, qtr = sub & 3;
        uint32_t ql[8], qh[8];
        ld32_2(blk + 64 * hf + 32 * (qtr & 1), ql);
        ld32_2(blk + 128 + 32 * hf, qh);
        int lo = 0, hi = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t v = ((ql[k] >> (4 * (qtr >> 1))) & 0x0F0F0F0Fu) |
                         (((qh[k] >> (2 * qtr)) & 0x03030303u) << 4);
            if (k < 4)
                lo = __dp4a((int)v, a[k], lo);
            else
                hi = __dp4a((int)v, a[k], hi);
        }
        lo -= 32 * g.sum_lo;
        hi -= 32 * g.sum_hi;
        const int8_t *scs = (const int8_t *)(blk + 192 + 8 * hf + 2 * qtr);
        uint16_t sp = ld16((const uint8_t *)scs);
        int sa = (int)(int8_t)(sp & 255), sb = (int)(int8_t)(sp >> 8);
        return (h2f(ld16(blk + 208)) * g.d) * (float)(sa * lo + sb * hi);
    } else if constexpr (T == DT_Q3_K) {
        const uint8_t *blk = row + (j >> 3) * 110;
        const int sub = (int)(j & 7), hf = sub >> 2, jj = sub & 3, bit = 4 * hf + jj;
        uint32_t q[8], hm[8];
        ld32_2(blk + 32 + 32 * hf, q);
        ld32_2(blk, hm);
        int lo = 0, hi = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t v = ((q[k] >> (2 * jj)) & 0x03030303u) | (((hm[k] >> bit) & 0x01010101u) << 2);
            if (k < 4)
                lo = __dp4a((int)v, a[k], lo);
            else
                hi = __dp4a((int)v, a[k], hi);
        }
        lo -= 4 * g.sum_lo;
        hi -= 4 * g.sum_hi;
        /* scales 2 sub and 2 sub + 1 of the 16 six-bit ones (kern_ref.c q3_k_scales) */
        uint32_t aux0 = ld4_2(blk + 96), aux1 = ld4_2(blk + 100), tmp = ld4_2(blk + 104);
        int wi = sub >> 1;
        uint32_t base = (wi & 1) ? aux1 : aux0;
        uint32_t word = ((base >> (4 * (wi >> 1))) & 0x0F0F0F0Fu) | (((tmp >> (2 * wi)) & 0x03030303u) << 4);
        int by = 2 * (sub & 1);
        int sa = (int)((word >> (8 * by)) & 255u) - 32, sb = (int)((word >> (8 * by + 8)) & 255u) - 32;
        return (h2f(ld16(blk + 108)) * g.d) * (float)(sa * lo + sb * hi);
    } else if constexpr (T == DT_Q2_K) {
        const uint8_t *blk = row + (j >> 3) * 84;
        const int sub = (int)(j & 7), hf = sub >> 2, jj = sub & 3;
        int lo = 0, hi = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t v = (ld4_4(blk + 16 + 32 * hf + 4 * k) >> (2 * jj)) & 0x03030303u;
            if (k < 4)
                lo = __dp4a((int)v, a[k], lo);
            else
                hi = __dp4a((int)v, a[k], hi);
        }
        uint16_t sp = ld16(blk + 2 * sub);
        int sa = sp & 15, ma = (sp >> 4) & 15, sb = (sp >> 8) & 15, mb = sp >> 12;
        uint32_t dm = ld4_4(blk + 80);
        float d = h2f((uint16_t)dm) * g.d, dmin = h2f((uint16_t)(dm >> 16)) * g.d;
        return fmaf(d, (float)(sa * lo + sb * hi), -(dmin * (float)(ma * g.sum_lo + mb * g.sum_hi)));
    } else if constexpr (T == DT_IQ4_XS) {
        const uint8_t *blk = row + (j >> 3) * 136;
        const int ib = (int)(j & 7);
        const uint2 *qp = (const uint2 *)(blk + 8 + 16 * ib);
        uint2 u0 = qp[0], u1 = qp[1];
        uint32_t w[4] = { u0.x, u0.y, u1.x, u1.y };
        int s = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            s = __dp4a(lut_iq4(w[k] & 0x0F0F0F0Fu), a[k], s);
            s = __dp4a(lut_iq4((w[k] >> 4) & 0x0F0F0F0Fu), a[k + 4], s);
        }
        uint32_t hdr = ld4_4(blk);
        uint32_t sl = ld4_4(blk + 4);
        int ls = (int)((sl >> (8 * (ib >> 1) + 4 * (ib & 1))) & 15u) | (int)(((hdr >> 16) >> (2 * ib)) & 3u) << 4;
        return (h2f((uint16_t)hdr) * g.d) * (float)((ls - 32) * s);
    } else {
        static_assert(T < 0, "dotq: no int8 kernel for this type");
        return 0.0f;
    }
}

template <int T> struct mmvq_cfg {
    static constexpr bool KQ = T == DT_Q2_K || T == DT_Q3_K || T == DT_Q4_K || T == DT_Q5_K ||
                               T == DT_Q6_K || T == DT_IQ4_XS;
    /* G groups a thread: 2 (one pass over the bytes two adjacent groups of a super-block
     * share) measured no faster over a 7B decode step than 1 (bench_kern, H100) */
    static constexpr int G = 1;
};

template <int T>
__device__ __forceinline__ void load_act(const int8_t *__restrict__ aq, const float *__restrict__ ad,
                                         const float *__restrict__ as, const int *__restrict__ abs,
                                         int64_t j, actg &g)
{
    const int4 *ap = (const int4 *)(aq + 32 * j);
    int4 a0 = __ldg(ap), a1 = __ldg(ap + 1);
    g.a[0] = a0.x; g.a[1] = a0.y; g.a[2] = a0.z; g.a[3] = a0.w;
    g.a[4] = a1.x; g.a[5] = a1.y; g.a[6] = a1.z; g.a[7] = a1.w;
    if constexpr (mmvq_cfg<T>::KQ) {
        g.d = __ldg(ad + (j >> 3));
        g.s = 0.0f;
        g.sum_lo = __ldg(abs + 2 * j);
        g.sum_hi = __ldg(abs + 2 * j + 1);
    } else {
        g.d = __ldg(ad + j);
        g.s = (T == DT_Q4_1 || T == DT_Q5_1) ? __ldg(as + j) : 0.0f;
        int lo = 0, hi = 0;
        if constexpr (T == DT_Q4_0 || T == DT_Q5_0) {
#pragma unroll
            for (int k = 0; k < 4; k++) {
                lo = __dp4a(g.a[k], 0x01010101, lo);
                hi = __dp4a(g.a[k + 4], 0x01010101, hi);
            }
        }
        g.sum_lo = lo;
        g.sum_hi = hi;
    }
}

/* up to three matrices of one type and width sharing one activation; in swiglu mode two
 * (gate, up) whose rows are computed side by side and combined */
struct mv_args {
    const uint8_t *w[3];
    int64_t rows[3];
    float *y[3];
    unsigned nb[3];          /* blocks of each matrix */
    int64_t row_bytes, ngroups;
    int accumulate, swiglu;
    int64_t row_bytes2;      /* matrix 2's, when its type is the kernel's second (T2) */
    struct rtc_qkv qkv;      /* RTC_MV_QKV */
};

/* one block's rows: block b (counted from matrix m's first) of matrix m; T, R and G
 * are the matrix's type, rows a block and groups a thread; PF the L2 prefetch before
 * pdl_wait: 0 none, 1 the block's rows, 2 the part of each row its first step reads;
 * SECOND: matrix 2 of the kernel's second type (its rows are row_bytes2 long) */
template <int T, int MODE, int R, int NT, int G, int PF, bool UC, bool SECOND = false>
__device__ __forceinline__ void mmvq_rows_of(const mv_args &A, unsigned b, int m, const int8_t *__restrict__ aq,
                                             const float *__restrict__ ad, const float *__restrict__ as,
                                             const int *__restrict__ abs)
{
    constexpr int NW = NT / 32, H = R / 2;
    constexpr bool SW = MODE == RTC_MV_SWIGLU;
    __shared__ float red[NW][R];
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    /* rows r0.. of matrix m; in swiglu mode slots 0..H-1 are gate rows r0.., H.. up rows r0.. */
    const int per = SW ? H : R;
    /* selected by branches: indexing the parameter arrays with m, a run-time value,
     * copied them to local memory (112 bytes of stack frame) */
    const uint8_t *wm = m == 0 ? A.w[0] : m == 1 ? A.w[1] : A.w[2];
    const int64_t rows_m = m == 0 ? A.rows[0] : m == 1 ? A.rows[1] : A.rows[2];
    float *ym = m == 0 ? A.y[0] : m == 1 ? A.y[1] : A.y[2];
    const int64_t r0 = (int64_t)b * per, rb = SECOND ? A.row_bytes2 : A.row_bytes;
    const int64_t left = rows_m - r0;
    const int nr = left < per ? (int)left : per;
    const uint8_t *base0 = wm + r0 * rb;
    /* slot r >= H in swiglu mode: row r0 + r - H of up */
    const uint8_t *base1 = SW ? A.w[1] + (r0 - H) * rb : base0;
    /* RTC_MV_QKV: this thread's row's rotation (the position is copied in before the
     * step's first kernel, the tables at start-up: nothing of the kernel ahead), loaded
     * before the wait so that the epilogue does not wait for memory */
    float rcs = 1.0f, rsn = 0.0f;
    if constexpr (MODE == RTC_MV_QKV) {
        const struct rtc_qkv &Q = A.qkv;
        const int64_t p0 = (int64_t)*Q.pos;
        const int i = (int)((r0 + tid) % Q.head_dim);
        if (m < 2 && tid < nr && i < Q.n_rot && p0 >= 0 && p0 < Q.n_ctx) {
            rcs = Q.cos_t[p0 * (Q.n_rot / 2) + (i >> 1)];
            rsn = Q.sin_t[p0 * (Q.n_rot / 2) + (i >> 1)];
        }
    }
    /* this block's weight rows into L2 before the kernel ahead is done (no data of
     * it is read before pdl_wait) */
    if (PF == 1) {
        l2_prefetch(base0, (uint64_t)nr * rb, tid);
        if (SW)
            l2_prefetch(A.w[1] + r0 * rb, (uint64_t)nr * rb, tid);
    } else if (PF == 2 && tid < nr) {
        /* the first step's part of each row: its first NT * G groups */
        const uint64_t hb = (uint64_t)NT * G * (rb / A.ngroups);
        l2_prefetch(base0 + tid * rb, hb < (uint64_t)rb ? hb : (uint64_t)rb, 0);
    }
    /* launched programmatically from level 1, with or without the prefetch: the
     * activation is the kernel ahead's output */
    pdl_trigger();
    pdl_wait();
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        acc[r] = 0.0f;
    for (int64_t jp = tid; jp < A.ngroups / G; jp += NT) {
        actg g[G];
#pragma unroll
        for (int i = 0; i < G; i++)
            load_act<T>(aq, ad, as, abs, G * jp + i, g[i]);
#pragma unroll
        for (int r = 0; r < R; r++) {
            const bool up = SW && r >= H;
            const int rr = up ? r - H : r;     /* the slot's row of its matrix, from r0 */
            /* UC: every slot computes, a slot past the matrix on its last row (never
             * stored): no load under a branch, so all the slots' loads issue at once */
            if (UC || rr < nr) {
                const int rc = UC && rr >= nr ? nr - 1 : rr;
                const uint8_t *rp = UC ? (up ? base1 + (int64_t)H * rb : base0) + rc * rb
                                       : (up ? base1 : base0) + r * rb;
                float v = dotq<T>(rp, G * jp, g[0]);
#pragma unroll
                for (int i = 1; i < G; i++)
                    v += dotq<T>(rp, G * jp + i, g[i]);
                acc[r] += v;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
            acc[r] += __shfl_xor_sync(0xFFFFFFFFu, acc[r], o);
    }
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < R; r++)
            red[wid][r] = acc[r];
    __syncthreads();
    if (tid < nr) {
        float v = red[0][tid];
#pragma unroll
        for (int k = 1; k < NW; k++)
            v += red[k][tid];
        float *y = ym + r0 + tid;
        if (SW) {
            /* the CPU forward's silu(gate) * up (rtc_swiglu's formula) */
            float u = red[0][tid + H];
#pragma unroll
            for (int k = 1; k < NW; k++)
                u += red[k][tid + H];
            *y = v / (1.0f + expf(-v)) * u;
        } else if (MODE == RTC_MV_QKV) {
            /* k_rope_kv's work on this row: q and k rotated (norm style: the pair of dims
             * 2i, 2i + 1 are rows tid & ~1 and tid | 1 of this block; the rotated pair
             * goes to dims i and i + n_rot / 2), k and v also stored in the cache */
            const struct rtc_qkv &Q = A.qkv;
            const int64_t r = r0 + tid, p0 = (int64_t)*Q.pos;
            const bool in = p0 >= 0 && p0 < Q.n_ctx;
            if (m == 2) {
                *y = v;
                if (in)
                    Q.vc[p0 * Q.kv_dim + r] = v;
            } else {
                const int i = (int)(r % Q.head_dim);
                const int64_t hb = r - i;
                float o = v;
                int oi = i;
                if (i < Q.n_rot && in) {
                    float u = red[0][tid ^ 1];
#pragma unroll
                    for (int k = 1; k < NW; k++)
                        u += red[k][tid ^ 1];
                    const int half = Q.n_rot / 2, pi = i >> 1;
                    if (i & 1) {        /* b = v, a = u: b cos + a sin */
                        o = __fadd_rn(__fmul_rn(v, rcs), __fmul_rn(u, rsn));
                        oi = pi + half;
                    } else {            /* a = v, b = u: a cos - b sin */
                        o = __fsub_rn(__fmul_rn(v, rcs), __fmul_rn(u, rsn));
                        oi = pi;
                    }
                }
                ym[hb + oi] = o;
                if (m == 1 && in)
                    Q.kc[p0 * Q.kv_dim + hb + oi] = o;
            }
        } else {
            *y = MODE == RTC_MV_ACC ? *y + v : v;
        }
    }
}

/* MODE: RTC_MV_PLAIN, RTC_MV_ACC, RTC_MV_SWIGLU or RTC_MV_QKV, compile-time (a run-time
 * mode cost 15-20% in bench_kern: the row selection stayed in the inner loop).  T2, R2:
 * matrix 2's type and rows a block when it differs from the others' (RTC_MV_QKV: a v of
 * another type, Q4_K_M's Q6_K v in half the layers); the block's branch is uniform */
template <int T, int MODE, int R = MMVQ_ROWS, int NT = 128, int MINB = 1, int G = mmvq_cfg<T>::G,
          int PF = 1, bool UC = false, int T2 = T, int R2 = R>
__global__ void __launch_bounds__(NT, MINB)
k_mmvq(const mv_args A, const int8_t *__restrict__ aq, const float *__restrict__ ad,
       const float *__restrict__ as, const int *__restrict__ abs)
{
    unsigned b = blockIdx.x;
    int m = 0;
    if (MODE != RTC_MV_SWIGLU) {
        if (b >= A.nb[0]) {
            b -= A.nb[0];
            m = 1;
            if (b >= A.nb[1]) {
                b -= A.nb[1];
                m = 2;
            }
        }
    }
    if constexpr (T2 != T) {
        if (m == 2) {
            mmvq_rows_of<T2, MODE, R2, NT, mmvq_cfg<T2>::G, PF, UC, true>(A, b, m, aq, ad, as, abs);
            return;
        }
    }
    mmvq_rows_of<T, MODE, R, NT, G, PF, UC>(A, b, m, aq, ad, as, abs);
}

extern "C" int rtc_gemv_q_ok(const struct rtc_w *w)
{
    int k = rtc_act_kind(w->dtype);
    const struct dtype_info *ti = dtype_get(w->dtype);
    uint64_t rb;
    struct err e2 = ERR_INIT;
    if (!k || !ti || w->rows <= 0 || w->cols <= 0 || w->cols % rtc_act_blck(k))
        return 0;
    if (dtype_nbytes(w->dtype, w->cols, &rb, &e2) || rb != w->row_bytes)
        return 0;
    /* the kernels' widest aligned loads: 16 bytes (Q4_K, Q5_K), 8 (IQ4_XS), 4 (Q4_1,
     * Q5_1, Q2_K); the others read 2-byte units */
    unsigned al = w->dtype == DT_Q4_K || w->dtype == DT_Q5_K ? 16 : w->dtype == DT_IQ4_XS ? 8 :
                  w->dtype == DT_Q4_1 || w->dtype == DT_Q5_1 || w->dtype == DT_Q2_K ? 4 : 2;
    return ((uintptr_t)w->d % al) == 0 && w->row_bytes % al == 0;
}

/* k_mmvq for type T in mode MODE at programmatic-launch level lv: level 0 the earlier
 * shape (MMVQ_ROWS rows a block, no prefetch, a plain launch, loads under the row test),
 * 1 and 2 mmvq_rows(T) rows with the L2 prefetch, launched programmatically, every slot's
 * loads unconditional (UC: bench_kern, H100, Q4_K [4096 x 4096] 1371 -> 1550 GB/s,
 * [11008 x 4096] 2122 -> 2258, [4096 x 11008] 1582 -> 1720; bench_cuda tg128 Q4_K_M
 * 384.9 / 384.5 -> 401.2 / 400.1 t/s, Q8_0 285.8 / 282.8 -> 292.5 / 287.5) */
/* From level 3, a matrix wider than MV_WIDE columns (a 7B's FFN down, 11008) of these
 * types runs without the L2 prefetch of its rows: each thread then takes 3 steps, and
 * prefetching the whole matrix at once measured slower than letting the steps stream
 * (bench_cuda tg128, H100, one run: with the prefetch Q4_K_M 427.7 t/s, Q8_0 326.6;
 * without it or the unconditional loads 440.7, 331.1.  A later run: without the
 * prefetch only 440.5, 334.6, without both 437.0, 329.6).  The other types keep the
 * prefetch (not measured).  Those runs were of a kernel that, without the prefetch,
 * also left out pdl_wait although launched programmatically: it could read the
 * activation before the quantizer ahead had written it (check_cuda's
 * test_wide_after_quant now runs this path; the race did not show there).  With the
 * wait: Q4_K_M 458.9 / 460.8 t/s, against 464.9 / 464.7 without it (same session). */
#define MV_WIDE 8192
/* the prefetch of those matrices (k_mmvq's PF): 0 none, 2 only the part of each row the
 * first step reads.  bench_cuda tg128, H100, three alternated runs each, after the wait
 * was added: Q8_0 343.9 / 344.0 / 344.6 t/s with 0, 347.8 / 347.9 / 348.8 with 2; Q4_K_M
 * (Q4_K and Q6_K) 458.9 / 457.4 / 458.8 with 0, 455.9 / 455.9 / 455.7 with 2 */
static __host__ __device__ constexpr int mv_wide_pf(int t)
{
    return t == DT_Q8_0 ? 2 : 0;
}
/* the types whose matrices wider than MV_WIDE take that shape */
static __host__ __device__ constexpr bool mv_wide(int t)
{
    return t == DT_Q4_K || t == DT_Q6_K || t == DT_Q8_0;
}

template <int T, int MODE>
static cudaError_t launch_mmvq(int lv, unsigned total, cudaStream_t st, const mv_args &A, const int8_t *qs,
                               const float *d, const float *s, const int *bs)
{
    if (lv == 0)
        return launch_ex(0, k_mmvq<T, MODE, MMVQ_ROWS, MMVQ_THREADS, MMVQ_MINB, mmvq_cfg<T>::G, false>,
                         dim3(total), dim3(MMVQ_THREADS), 0, st, A, qs, d, s, bs);
    if constexpr (mv_wide(T))
        if (lv >= 3 && A.ngroups * 32 > MV_WIDE && MODE != RTC_MV_SWIGLU)
            return launch(k_mmvq<T, MODE, mmvq_rows(T), MMVQ_THREADS, MMVQ_MINB, mmvq_cfg<T>::G, mv_wide_pf(T), true>,
                          total, MMVQ_THREADS, 0, st, A, qs, d, s, bs);
    return launch(k_mmvq<T, MODE, mmvq_rows(T), MMVQ_THREADS, MMVQ_MINB, mmvq_cfg<T>::G, true, true>, total,
                  MMVQ_THREADS, 0, st, A, qs, d, s, bs);
}

extern "C" int rtc_gemv_q_multi(const struct rtc_w *const *w, float *const *y, int n, int mode,
                                const void *xq, void *stream, struct err *e)
{
    int8_t *qs;
    float *d, *s;
    int *bs;
    cudaStream_t st = (cudaStream_t)stream;
    mv_args A;
    unsigned total = 0;
    /* level 0: the earlier launch shape (8 rows, no prefetch, plain launches); 1 and 2
     * (the default): mmvq_rows, prefetch, programmatic launches */
    const int lv = rtc_pdl();
    const int rows_b = n < 1 ? 1 : lv >= 1 ? mmvq_rows(w[0]->dtype) : MMVQ_ROWS;
    memset(&A, 0, sizeof A);
    if (n < 1 || n > 3 || (mode == RTC_MV_SWIGLU && n != 2))
        return ERR(e, ERR_INTERNAL, "rtc_gemv_q_multi: %d matrices in mode %d", n, mode);
    for (int i = 0; i < n; i++) {
        if (!rtc_gemv_q_ok(w[i]) || w[i]->dtype != w[0]->dtype || w[i]->cols != w[0]->cols)
            return ERR(e, ERR_UNSUPPORTED, "no int8 matrix-vector kernel for %s [%lld, %lld] "
                       "with %s [%lld, %lld]", dtype_name(w[i]->dtype), (long long)w[i]->rows,
                       (long long)w[i]->cols, dtype_name(w[0]->dtype), (long long)w[0]->rows,
                       (long long)w[0]->cols);
        A.w[i] = (const uint8_t *)w[i]->d;
        A.rows[i] = w[i]->rows;
        A.y[i] = y[i];
        A.nb[i] = (unsigned)((w[i]->rows + rows_b - 1) / rows_b);
        total += A.nb[i];
    }
    if (mode == RTC_MV_SWIGLU) {
        if (w[1]->rows != w[0]->rows)
            return ERR(e, ERR_FORMAT, "gate and up of %lld and %lld rows", (long long)w[0]->rows,
                       (long long)w[1]->rows);
        total = (unsigned)((w[0]->rows + rows_b / 2 - 1) / (rows_b / 2));
    }
    A.row_bytes = (int64_t)w[0]->row_bytes;
    A.ngroups = w[0]->cols / 32;
    A.accumulate = mode == RTC_MV_ACC;
    A.swiglu = mode == RTC_MV_SWIGLU;
    act_layout(xq, w[0]->cols, &qs, &d, &s, &bs);
    cudaError_t ce = cudaSuccess;
    switch (w[0]->dtype) {
#define Q(T) case T:                                                                           \
        ce = mode == RTC_MV_SWIGLU ? launch_mmvq<T, RTC_MV_SWIGLU>(lv, total, st, A, qs, d, s, bs) :  \
             mode == RTC_MV_ACC ? launch_mmvq<T, RTC_MV_ACC>(lv, total, st, A, qs, d, s, bs) :        \
                                  launch_mmvq<T, RTC_MV_PLAIN>(lv, total, st, A, qs, d, s, bs);       \
        break;
    Q(DT_Q4_0) Q(DT_Q4_1) Q(DT_Q5_0) Q(DT_Q5_1) Q(DT_Q8_0) Q(DT_IQ4_NL)
    Q(DT_Q2_K) Q(DT_Q3_K) Q(DT_Q4_K) Q(DT_Q5_K) Q(DT_Q6_K) Q(DT_IQ4_XS)
#undef Q
    default:
        return ERR(e, ERR_UNSUPPORTED, "no int8 matrix-vector kernel for %s", dtype_name(w[0]->dtype));
    }
    return CU_CHECK(e, ce, "int8 gemv kernel launch");
}

/* k_mmvq in mode RTC_MV_QKV, q and k of type T, v of T2 (level 1 and up's shape) */
template <int T, int T2>
static cudaError_t launch_qkv(unsigned total, cudaStream_t st, const mv_args &A, const int8_t *qs, const float *d,
                              const float *s, const int *bs)
{
    return launch(k_mmvq<T, RTC_MV_QKV, mmvq_rows(T), MMVQ_THREADS, MMVQ_MINB, mmvq_cfg<T>::G, true, true, T2,
                         mmvq_rows(T2)>,
                  total, MMVQ_THREADS, 0, st, A, qs, d, s, bs);
}

extern "C" int rtc_gemv_q_qkv(const struct rtc_w *const *w, float *const *y, const struct rtc_qkv *r,
                              const void *xq, void *stream, struct err *e)
{
    int8_t *qs;
    float *d, *s;
    int *bs;
    mv_args A;
    const int t0 = w[0]->dtype, t2 = w[2]->dtype;
    const int k = rtc_act_kind(t0);
    if (rtc_pdl() < 3 || r->n_rot <= 0 || r->n_rot % 2 || r->n_rot > r->head_dim || r->head_dim <= 0)
        return 1;
    for (int i = 0; i < 3; i++)
        if (!rtc_gemv_q_ok(w[i]) || w[i]->cols != w[0]->cols || rtc_act_kind(w[i]->dtype) != k)
            return 1;
    /* the rotated pairs (rows 2i, 2i + 1) within one block, heads whole */
    if (w[1]->dtype != t0 || w[0]->rows % r->head_dim || w[1]->rows % r->head_dim ||
        w[0]->rows % mmvq_rows(t0) || w[1]->rows % mmvq_rows(t0) || w[1]->rows != r->kv_dim ||
        w[2]->rows != r->kv_dim)
        return 1;
    memset(&A, 0, sizeof A);
    unsigned total = 0;
    for (int i = 0; i < 3; i++) {
        int rb = mmvq_rows(w[i]->dtype);
        A.w[i] = (const uint8_t *)w[i]->d;
        A.rows[i] = w[i]->rows;
        A.y[i] = y[i];
        A.nb[i] = (unsigned)((w[i]->rows + rb - 1) / rb);
        total += A.nb[i];
    }
    A.row_bytes = (int64_t)w[0]->row_bytes;
    A.row_bytes2 = (int64_t)w[2]->row_bytes;
    A.ngroups = w[0]->cols / 32;
    A.qkv = *r;
    act_layout(xq, w[0]->cols, &qs, &d, &s, &bs);
    cudaStream_t st = (cudaStream_t)stream;
    cudaError_t ce;
#define Q(T) else if (t0 == T && t2 == T) ce = launch_qkv<T, T>(total, st, A, qs, d, s, bs);
#define Q2(T, U) else if (t0 == T && t2 == U) ce = launch_qkv<T, U>(total, st, A, qs, d, s, bs);
    if (0)
        return 1;
    Q(DT_Q4_0) Q(DT_Q4_1) Q(DT_Q5_0) Q(DT_Q5_1) Q(DT_Q8_0) Q(DT_IQ4_NL)
    Q(DT_Q2_K) Q(DT_Q3_K) Q(DT_Q4_K) Q(DT_Q5_K) Q(DT_Q6_K) Q(DT_IQ4_XS)
    /* the k-quant mixes' v: Q4_K_M and Q5_K_M (Q6_K), Q3_K_M (Q5_K), Q2_K (Q4_K) */
    Q2(DT_Q4_K, DT_Q6_K) Q2(DT_Q5_K, DT_Q6_K) Q2(DT_Q3_K, DT_Q5_K) Q2(DT_Q3_K, DT_Q4_K)
    Q2(DT_Q2_K, DT_Q4_K) Q2(DT_Q2_K, DT_Q3_K)
    else
        return 1;
#undef Q
#undef Q2
    return CU_CHECK(e, ce, "int8 q, k, v kernel launch") ? -1 : 0;
}

/* launch shapes for bench_kern to compare (rows a block, 0: mmvq_rows(type), named "0
 * rows"; threads a
 * block; minimum blocks an SM for the register budget; groups a thread; L2 prefetch of
 * the block's rows; programmatic launch); variant 0 is rtc_gemv_q's at APR_CUDA_PDL=1 and 2 */
#define MMVQ_VARIANTS(X) X(0, 0, 128, 1, 1, 1, 1, 0) X(1, 0, 128, 1, 1, 0, 0, 0) X(2, 0, 128, 1, 1, 1, 0, 0) \
    X(3, 0, 128, 1, 1, 0, 1, 0) X(4, 4, 128, 1, 2, 1, 1, 0) X(5, 2, 128, 1, 2, 1, 1, 0) X(6, 8, 128, 1, 1, 1, 1, 0) \
    X(7, 2, 256, 1, 1, 1, 1, 0) X(8, 1, 128, 1, 1, 1, 1, 0) X(9, 4, 128, 1, 1, 1, 1, 0) \
    X(10, 0, 128, 1, 1, 1, 1, 1) X(11, 8, 128, 1, 1, 1, 1, 1) X(12, 0, 64, 1, 1, 1, 1, 1) X(13, 8, 64, 1, 1, 1, 1, 1)

extern "C" const char *rtc_gemv_q_variant_name(int v)
{
    switch (v) {
#define X(I, R, NT, MB, G, PF, PDL, UC) case I: return #R " rows x " #NT " thr, " #G " grp, pf " #PF ", pdl " #PDL ", uc " #UC;
    MMVQ_VARIANTS(X)
#undef X
    default: return NULL;
    }
}

extern "C" int rtc_gemv_q_variant(const struct rtc_w *w, const void *xq, float *y, int v, void *stream,
                                  struct err *e)
{
    int8_t *qs;
    float *d, *s;
    int *bs;
    mv_args A;
    memset(&A, 0, sizeof A);
    if (!rtc_gemv_q_ok(w))
        return ERR(e, ERR_UNSUPPORTED, "no int8 kernel for %s", dtype_name(w->dtype));
    A.w[0] = (const uint8_t *)w->d;
    A.rows[0] = w->rows;
    A.y[0] = y;
    A.row_bytes = (int64_t)w->row_bytes;
    A.ngroups = w->cols / 32;
    act_layout(xq, w->cols, &qs, &d, &s, &bs);
    cudaStream_t st = (cudaStream_t)stream;
    cudaError_t ce;
    const int rt = mmvq_rows(w->dtype);
    switch (v) {
#define X(I, R, NT, MB, G, PF, PDL, UC) case I:                                                 \
        A.nb[0] = (unsigned)((w->rows + (R ? R : rt) - 1) / (R ? R : rt));                     \
        if (A.ngroups % G)                                                                      \
            return 1;                                                                           \
        if (w->dtype == DT_Q4_K)                                                                \
            ce = launch_ex(PDL, k_mmvq<DT_Q4_K, RTC_MV_PLAIN, R ? R : mmvq_rows(DT_Q4_K), NT, MB, G, PF, UC>, \
                           A.nb[0], NT, 0, st, A, qs, d, s, bs);                                \
        else if (w->dtype == DT_Q6_K)                                                           \
            ce = launch_ex(PDL, k_mmvq<DT_Q6_K, RTC_MV_PLAIN, R ? R : mmvq_rows(DT_Q6_K), NT, MB, G, PF, UC>, \
                           A.nb[0], NT, 0, st, A, qs, d, s, bs);                                \
        else if (w->dtype == DT_Q8_0)                                                           \
            ce = launch_ex(PDL, k_mmvq<DT_Q8_0, RTC_MV_PLAIN, R ? R : mmvq_rows(DT_Q8_0), NT, MB, G, PF, UC>, \
                           A.nb[0], NT, 0, st, A, qs, d, s, bs);                                \
        else                                                                                    \
            return 1;                                                                           \
        break;
    MMVQ_VARIANTS(X)
#undef X
    default:
        return 1;
    }
    return CU_CHECK(e, ce, "int8 gemv kernel launch");
}

extern "C" int rtc_gemv_q(const struct rtc_w *w, const void *xq, float *y, int accumulate,
                          void *stream, struct err *e)
{
    return rtc_gemv_q_multi(&w, &y, 1, accumulate ? RTC_MV_ACC : RTC_MV_PLAIN, xq, stream, e);
}

/* the device layout of a quantized activation back to the CPU's blocks (tests) */
extern "C" int rtc_act_to_blocks(int kind, const void *dev, int64_t cols, void *blocks,
                                 struct err *e)
{
    uint64_t n = rtc_act_bytes(cols);
    uint8_t *h = (uint8_t *)malloc(n);
    int8_t *qs;
    float *d, *s;
    int *bs;
    if (!h)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (CU_CHECK(e, cudaMemcpy(h, dev, n, cudaMemcpyDeviceToHost), "cudaMemcpy (activation)")) {
        free(h);
        return -1;
    }
    act_layout(h, cols, &qs, &d, &s, &bs);
    if (kind == RTC_ACT_Q8_K) {
        struct block_q8_K *b = (struct block_q8_K *)blocks;
        for (int64_t i = 0; i < cols / 256; i++) {
            b[i].d = d[i];
            memcpy(b[i].qs, qs + 256 * i, 256);
            for (int k = 0; k < 16; k++)
                b[i].bsums[k] = (int16_t)bs[16 * i + k];
        }
    } else {
        for (int64_t i = 0; i < cols / 32; i++) {
            __half hd = __float2half_rn(d[i]), hs = __float2half_rn(s[i]);
            uint16_t ud = __half_as_ushort(hd), us = __half_as_ushort(hs);
            if (kind == RTC_ACT_Q8_1) {
                struct block_q8_1 *b = (struct block_q8_1 *)blocks + i;
                b->d = ud;
                b->s = us;
                memcpy(b->qs, qs + 32 * i, 32);
            } else {
                struct block_q8_0 *b = (struct block_q8_0 *)blocks + i;
                b->d = ud;
                memcpy(b->qs, qs + 32 * i, 32);
            }
        }
    }
    free(h);
    return 0;
}
