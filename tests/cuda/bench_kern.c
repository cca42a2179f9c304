/*
 * bench_kern.c - CUDA kernel bandwidth against the device's own copy bandwidth, all
 * in one run: device-to-device copy (bytes read + written / time), the dequant kernels
 * (bytes read + f32 bytes written / time) and the matrix-vector kernels (weight bytes
 * read / time) on Llama-2-7B shapes.  Buffers rotate over more than the L2 cache.
 * Times are medians of 20 runs of CUDA events after a warm-up.
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/err.h"
#include "../../dequant/cuda/cu.h"
#include "../../dequant/cuda/dqc.h"
#include "../../formats/dtype.h"
#include "../../runtime/cuda/rtc_ops.h"
#include "../../common/banned.h"

#define REPS 20
static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rs = 88172645463325252ull;
static uint8_t rb8(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (uint8_t)rs; }

static void fill_blocks(int t, uint8_t *h, uint64_t n)
{
    /* random bytes with a small finite f16 in the first two bytes of every 2-byte word
     * would change nothing for timing; plain random bytes suffice but NaN scales could
     * take slow paths, so write random bytes and let the kernels run on them */
    (void)t;
    for (uint64_t i = 0; i < n; i++)
        h[i] = rb8() & 0x3F;   /* clears the top bits: no NaN/Inf f16 anywhere */
}

int main(void)
{
    struct err e = ERR_INIT;
    struct cu_info info;
    int n_dev = 0;
    char why[256];
    cu_device_count(&n_dev, why, sizeof why);
    if (n_dev == 0) {
        printf("bench_kern: skipped: %s\n", why);
        return 0;
    }
    if (cu_open(0, &info, &e)) {
        fprintf(stderr, "bench_kern: %s\n", e.msg);
        return 2;
    }
    printf("device: %s (cc %d.%d, %d SMs, %.1f GiB)\n", info.name, info.cc_major, info.cc_minor,
           info.sm_count, (double)info.mem_total / (1 << 30));
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    float t[REPS];

    /* copy bandwidth: 1 GiB buffer */
    size_t cb = (size_t)1 << 30;
    void *s1, *s2;
    cudaMalloc(&s1, cb);
    cudaMalloc(&s2, cb);
    cudaMemset(s1, 1, cb);
    cudaMemcpy(s2, s1, cb, cudaMemcpyDeviceToDevice);
    for (int i = 0; i < REPS; i++) {
        cudaEventRecord(a, 0);
        cudaMemcpy(s2, s1, cb, cudaMemcpyDeviceToDevice);
        cudaEventRecord(b, 0);
        cudaEventSynchronize(b);
        cudaEventElapsedTime(&t[i], a, b);
    }
    qsort(t, REPS, sizeof t[0], cmpf);
    double bw = 2.0 * cb / (t[REPS / 2] * 1e-3) / 1e9;
    printf("d2d copy: %.0f GB/s (read + write, 1 GiB, median of %d)\n", bw, REPS);
    cudaFree(s2);

    /* dequant: 64M elements of each type into f32 (rotating 2 halves of s1 for sources) */
    int dq_types[] = { DT_Q4_0, DT_Q8_0, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_Q2_K, DT_Q3_K, DT_IQ4_XS,
                       DT_IQ2_XXS, DT_IQ1_S, DT_F16, DT_BF16 };
    int64_t n = (int64_t)64 << 20;
    float *dst;
    cudaMalloc((void **)&dst, (size_t)n * 4);
    uint8_t *hb = malloc(cb / 2);
    for (size_t k = 0; k < sizeof dq_types / sizeof dq_types[0]; k++) {
        int ty = dq_types[k];
        uint64_t nb;
        dtype_nbytes(ty, n, &nb, &e);
        fill_blocks(ty, hb, nb);
        cudaMemcpy(s1, hb, nb, cudaMemcpyHostToDevice);
        dqc_to_f32(ty, s1, nb, dst, n, NULL, &e);
        for (int i = 0; i < REPS; i++) {
            cudaEventRecord(a, 0);
            dqc_to_f32(ty, s1, nb, dst, n, NULL, &e);
            cudaEventRecord(b, 0);
            cudaEventSynchronize(b);
            cudaEventElapsedTime(&t[i], a, b);
        }
        qsort(t, REPS, sizeof t[0], cmpf);
        double g = (double)(nb + (uint64_t)n * 4) / (t[REPS / 2] * 1e-3) / 1e9;
        printf("dequant %-8s %6.0f GB/s  %5.1f%% of copy  (%.3f ms for %lld elements) %s\n",
               dtype_name(ty), g, 100 * g / bw, t[REPS / 2], (long long)n, e.msg);
    }
    cudaFree(dst);

    /* gemv: rotate over 8 matrices of the shape (more than the 50 MB L2) */
    int gv_types[] = { DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0, DT_Q2_K, DT_Q3_K, DT_Q4_K,
                       DT_Q5_K, DT_Q6_K, DT_IQ4_NL, DT_IQ4_XS, DT_F16, DT_BF16, DT_F32 };
    int64_t shapes[3][2] = { { 4096, 4096 }, { 11008, 4096 }, { 4096, 11008 } };
    float *x, *y;
    cudaMalloc((void **)&x, 11008 * 4);
    cudaMalloc((void **)&y, 11008 * 4);
    {
        float hx[11008];
        for (int i = 0; i < 11008; i++)
            hx[i] = (float)(rb8() & 63) / 32.0f - 1.0f;
        cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice);
    }
    void *xq;
    cudaMalloc(&xq, rtc_act_bytes(11008));
    const size_t ngv = sizeof gv_types / sizeof gv_types[0];
    for (size_t k = 0; k < 3 * ngv; k++) {
        int ty = gv_types[k % ngv];
        int narrow = k >= ngv && k < 2 * ngv, int8 = k >= 2 * ngv;
        if (narrow && ty != DT_Q4_K && ty != DT_Q6_K && ty != DT_Q8_0 && ty != DT_F16 && ty != DT_BF16)
            continue;
        if (int8 && !rtc_act_kind(ty))
            continue;
        printf("gemv %-7s%s", dtype_name(ty), narrow ? " 8-wide" : int8 ? " int8  " : "       ");
        for (int sh = 0; sh < 3; sh++) {
            int64_t rows = shapes[sh][0], cols = shapes[sh][1];
            uint64_t rb;
            dtype_nbytes(ty, cols, &rb, &e);
            uint64_t mb = rb * rows;
            int nm = (int)((cb / 2) / mb);
            if (nm > 8) nm = 8;
            if (nm < 1) nm = 1;
            fill_blocks(ty, hb, mb * nm);
            cudaMemcpy(s1, hb, mb * nm, cudaMemcpyHostToDevice);
            if (int8)
                rtc_quantize_act(rtc_act_kind(ty), x, cols, xq, NULL, &e);
            for (int i = 0; i < REPS; i++) {
                cudaEventRecord(a, 0);
                for (int m = 0; m < nm; m++) {
                    struct rtc_w w = { ty, rows, cols, rb, (uint8_t *)s1 + m * mb };
                    if (int8)
                        rtc_gemv_q(&w, xq, y, 0, NULL, &e);
                    else
                        rtc_gemv(&w, x, y, narrow ? RTC_GEMV_NARROW : 0, NULL, &e);
                }
                cudaEventRecord(b, 0);
                cudaEventSynchronize(b);
                cudaEventElapsedTime(&t[i], a, b);
            }
            qsort(t, REPS, sizeof t[0], cmpf);
            double g = (double)mb * nm / (t[REPS / 2] * 1e-3) / 1e9;
            printf("  [%5lld x %5lld] %5.0f GB/s %3.0f%%", (long long)rows, (long long)cols, g, 100 * g / bw);
        }
        printf(" %s\n", e.msg);
    }
    /* launch shapes of the decode kernels (variant 0 is the one in use) */
    const int sw_types[4] = { DT_Q4_K, DT_Q6_K, DT_Q8_0, DT_F16 };
    for (int k = 0; k < 4; k++) {
        int ty = sw_types[k], f16 = ty == DT_F16;
        for (int v = 0; (f16 ? rtc_gemv_variant_name(v) : rtc_gemv_q_variant_name(v)) != NULL; v++) {
            printf("shape %-5s %-28s", dtype_name(ty), f16 ? rtc_gemv_variant_name(v) : rtc_gemv_q_variant_name(v));
            for (int sh = 0; sh < 3; sh++) {
                int64_t rows = shapes[sh][0], cols = shapes[sh][1];
                uint64_t rb;
                dtype_nbytes(ty, cols, &rb, &e);
                uint64_t mb = rb * rows;
                int nm = (int)((cb / 2) / mb);
                if (nm > 8) nm = 8;
                if (nm < 1) nm = 1;
                if (v == 0) {
                    fill_blocks(ty, hb, mb * nm);
                    cudaMemcpy(s1, hb, mb * nm, cudaMemcpyHostToDevice);
                }
                if (!f16)
                    rtc_quantize_act(rtc_act_kind(ty), x, cols, xq, NULL, &e);
                for (int i = 0; i < REPS; i++) {
                    cudaEventRecord(a, 0);
                    for (int m = 0; m < nm; m++) {
                        struct rtc_w w = { ty, rows, cols, rb, (uint8_t *)s1 + m * mb };
                        if (f16)
                            rtc_gemv_variant(&w, x, y, v, NULL, &e);
                        else
                            rtc_gemv_q_variant(&w, xq, y, v, NULL, &e);
                    }
                    cudaEventRecord(b, 0);
                    cudaEventSynchronize(b);
                    cudaEventElapsedTime(&t[i], a, b);
                }
                qsort(t, REPS, sizeof t[0], cmpf);
                double g = (double)mb * nm / (t[REPS / 2] * 1e-3) / 1e9;
                printf("  [%5lld x %5lld] %5.0f GB/s %3.0f%%", (long long)rows, (long long)cols, g, 100 * g / bw);
            }
            printf(" %s\n", e.msg);
        }
    }
    free(hb);
    cudaFree(s1);
    cudaFree(x);
    cudaFree(y);
    cudaFree(xq);
    return err_ok(&e) ? 0 : 1;
}
