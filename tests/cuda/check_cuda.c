/*
 * check_cuda.c - the CUDA backend against its CPU twins (make CUDA=1 check-cuda).
 *
 *   infra     --device parsing, memory-need and CUDA error messages
 *   dequant   every ggml type on random blocks: the device dequantizer gives the bits of
 *             dq_to_f32_ref (both NaN counts as equal: GPU arithmetic returns the
 *             canonical NaN where x86 keeps a payload, so a NaN scale field is NaN on
 *             both sides without the same bits; the count of such values is printed)
 *   fixtures  every tensor of every GGUF in FIXTURES/gguf: the same rule
 *   get_rows  rows by device index (the embedding lookup), NaN rows out of range
 *   gemv      every matrix-vector type against a double-precision dot of the CPU
 *             dequantized row; bound gamma_k * sum|w x| with k the longest f32 chain
 *   gemm      the prompt path (dequantized tiles + cuBLAS SGEMM), bound gamma_cols
 *   fault     APR_CUDA_FAULT's transposed read changes the result (the gate can fail)
 *   ops       rmsnorm, rope (NORM and NEOX), kv store + attention, swiglu vs double twins
 *   fused     the fused decode kernels = the calls they replace, bit for bit; the fast
 *             attention kernels vs a double twin
 *
 * Without a device (CI) every device test is reported as skipped, with CUDA's reason.
 * Usage: check_cuda [FIXTURES_DIR]   (default $APR_SHARED_FIXTURES, else ../shared/fixtures)
 */
#include <cuda_runtime_api.h>
#include <cublas_v2.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/err.h"
#include "../../dequant/cuda/cu.h"
#include "../../dequant/cuda/dqc.h"
#include "../../dequant/dq.h"
#include "../../formats/dtype.h"
#include "../../formats/model.h"
#include "../../runtime/cuda/rtc_ops.h"
#include "../../runtime/kern.h"
#include "../../common/banned.h"

static int n_pass, n_fail, n_skip;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", cond ? "ok" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (cond)
        n_pass++;
    else
        n_fail++;
}

static void skip(const char *what, const char *why)
{
    printf("skip - %s: %s\n", what, why);
    n_skip++;
}

static uint64_t rs = 0x243F6A8885A308D3ull;
static uint64_t rnd64(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static float rndf(void) { return (float)((double)(rnd64() >> 11) * 0x1p-53 * 2.0 - 1.0); }

static void *dmalloc(size_t n)
{
    void *p = NULL;
    if (cudaMalloc(&p, n + 16) != cudaSuccess) {     /* 16: rtc_gemv's wide-load padding */
        fprintf(stderr, "check_cuda: cudaMalloc(%zu) failed\n", n);
        exit(2);
    }
    return p;
}
static void up(void *d, const void *h, size_t n) { cudaMemcpy(d, h, n, cudaMemcpyHostToDevice); }
static void down(void *h, const void *d, size_t n) { cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost); }

static int sync_ok(struct err *e) { return CU_CHECK(e, cudaDeviceSynchronize(), "cudaDeviceSynchronize") == 0; }

/* bits equal, or both NaN (counted in *nan_pairs) */
static int64_t bit_diff(const float *a, const float *b, int64_t n, int64_t *nan_pairs, int64_t *first)
{
    int64_t bad = 0;
    *first = -1;
    for (int64_t i = 0; i < n; i++) {
        uint32_t x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        if (x == y)
            continue;
        if (isnan(a[i]) && isnan(b[i])) {
            (*nan_pairs)++;
            continue;
        }
        if (*first < 0)
            *first = i;
        bad++;
    }
    return bad;
}

/* device dequant of host bytes vs dq_to_f32_ref; returns mismatches */
static int64_t dq_compare(int t, const void *src, uint64_t bytes, int64_t n, int64_t *nan_pairs,
                          int64_t *first, struct err *e)
{
    float *ref = malloc((size_t)n * 4 + 4), *got = malloc((size_t)n * 4 + 4);
    void *ds = dmalloc(bytes);
    float *dd = dmalloc((size_t)n * 4);
    int64_t bad = -1;
    up(ds, src, bytes);
    cudaMemset(dd, 0xFF, (size_t)n * 4);   /* poison: unwritten outputs read as NaN bits 0xFFFFFFFF */
    if (dq_to_f32_ref(t, src, bytes, ref, n, 1, e) == 0 &&
        dqc_to_f32(t, ds, bytes, dd, n, NULL, e) == 0 && sync_ok(e)) {
        down(got, dd, (size_t)n * 4);
        bad = bit_diff(ref, got, n, nan_pairs, first);
    }
    cudaFree(ds);
    cudaFree(dd);
    free(ref);
    free(got);
    return bad;
}

static const int all_types[] = {
    DT_F32, DT_F16, DT_BF16, DT_F64, DT_I8, DT_I16, DT_I32, DT_I64,
    DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0, DT_Q8_1,
    DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_Q8_K,
    DT_IQ2_XXS, DT_IQ2_XS, DT_IQ3_XXS, DT_IQ1_S, DT_IQ4_NL, DT_IQ3_S, DT_IQ2_S, DT_IQ4_XS,
    DT_IQ1_M, DT_TQ1_0, DT_TQ2_0, DT_MXFP4, DT_NVFP4, DT_Q1_0, DT_Q2_0,
};
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

static void test_infra(void)
{
    struct err e = ERR_INIT;
    int o = -1;
    ok(cu_parse_device("cuda", &o, &e) == 0 && o == 0, "infra: 'cuda' is device 0");
    ok(cu_parse_device("cuda:3", &o, &e) == 0 && o == 3, "infra: 'cuda:3' is device 3");
    const char *bad[] = { "cuda:", "cuda:x", "cuda:-1", "gpu", "cuda:1x", "cuda:99999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        ok(cu_parse_device(bad[i], &o, &e) == -1 && e.code == ERR_USAGE && strstr(e.msg, bad[i]),
           "infra: '%s' refused: %s", bad[i], e.msg);
    }
    struct cu_info fake = { 0 };
    fake.ordinal = 1;
    snprintf(fake.name, sizeof fake.name, "Test GPU");
    fake.mem_total = 80ull << 30;
    fake.mem_free = 2ull << 30;
    err_clear(&e);
    ok(cu_need(&fake, 1ull << 30, "model", &e) == 0, "infra: 1 GiB fits in 2 GiB free");
    ok(cu_need(&fake, 13ull << 30, "model", &e) == -1 && e.code == ERR_LIMIT &&
       strstr(e.msg, "needs 13.00 GiB") && strstr(e.msg, "has 2.00 GiB free of 80.00 GiB") &&
       strstr(e.msg, "cuda:1 (Test GPU)"), "infra: memory need: %s", e.msg);
    err_clear(&e);
    ok(CU_CHECK(&e, cudaErrorMemoryAllocation, "cudaMalloc (weights)") == -1 && e.code == ERR_CUDA &&
       strstr(e.msg, "cudaMalloc (weights): out of memory"), "infra: CUDA error names the call: %s", e.msg);
}

static void test_device_errors(int n_dev)
{
    struct err e = ERR_INIT;
    struct cu_info info;
    ok(cu_open(n_dev, &info, &e) == -1 && e.code == ERR_USAGE && strstr(e.msg, "does not exist"),
       "infra: cuda:%d refused: %s", n_dev, e.msg);
    err_clear(&e);
    int rc0 = cu_open(0, &info, &e);
    ok(rc0 == 0, "infra: cuda:0 is %s, cc %d.%d, %d SMs, %.1f GiB (driver %d, runtime %d)",
       info.name, info.cc_major, info.cc_minor, info.sm_count, (double)info.mem_total / (1 << 30),
       info.driver_version, info.runtime_version);
    void *p = NULL;
    err_clear(&e);
    int rc = CU_CHECK(&e, cudaMalloc(&p, (size_t)1 << 50), "cudaMalloc (1 PiB)");
    ok(rc == -1 && e.code == ERR_CUDA && strstr(e.msg, "cudaMalloc (1 PiB): "),
       "infra: a real CUDA failure: %s", e.msg);
    cudaGetLastError();
    err_clear(&e);
    ok(cu_need(&info, info.mem_total + 1, "model", &e) == -1 && strstr(e.msg, info.name),
       "infra: over the device: %s", e.msg);
}

static void test_dequant_random(void)
{
    for (int k = 0; k < N_TYPES; k++) {
        int t = all_types[k];
        const struct dtype_info *ti = dtype_get(t);
        struct err e = ERR_INIT;
        int64_t nblk = 4099, n = nblk * ti->blck, nan_pairs = 0, first;
        uint64_t bytes = nblk * ti->type_size;
        uint8_t *src = malloc(bytes);
        for (uint64_t i = 0; i < bytes; i++)
            src[i] = (uint8_t)rnd64();
        int64_t bad = dq_compare(t, src, bytes, n, &nan_pairs, &first, &e);
        ok(bad == 0 && err_ok(&e) && nan_pairs < n / 2,
           "dequant %-8s %lld random elements bit-identical (%lld both-NaN)%s%s", ti->name,
           (long long)n, (long long)nan_pairs, e.msg[0] ? ": " : "", e.msg);
        if (bad > 0)
            printf("  first mismatch at element %lld of %lld (%lld mismatches)\n", (long long)first,
                   (long long)n, (long long)bad);
        free(src);
    }
    /* odd count and an unaligned source for a plain type, whole-block check for a quant */
    struct err e = ERR_INIT;
    uint8_t raw[2 * 37 + 1];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)rnd64();
    int64_t np = 0, first;
    ok(dq_compare(DT_F16, raw + 1, 74, 37, &np, &first, &e) == 0, "dequant F16: 37 elements from an odd address");
    float *dd = dmalloc(64 * 4);
    err_clear(&e);
    ok(dqc_to_f32(DT_Q4_K, dd, 144, dd, 100, NULL, &e) == -1 && e.code == ERR_FORMAT,
       "dequant: 100 elements of Q4_K refused: %s", e.msg);
    err_clear(&e);
    ok(dqc_to_f32(DT_Q8_0, dd, 33, dd, 32, NULL, &e) == -1 && e.code == ERR_FORMAT,
       "dequant: short source refused: %s", e.msg);
    err_clear(&e);
    ok(dqc_to_f32(DT_C64, dd, 64, dd, 8, NULL, &e) == -1 && e.code == ERR_UNSUPPORTED,
       "dequant: C64 refused: %s", e.msg);
    cudaFree(dd);
}

static void test_fixtures(const char *dir)
{
    char gdir[1024];
    snprintf(gdir, sizeof gdir, "%s/gguf", dir);
    DIR *d = opendir(gdir);
    if (!d) {
        skip("fixtures", "no fixtures directory (give it as the first argument)");
        return;
    }
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".gguf"))
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", gdir, de->d_name);
        struct model m;
        struct err e = ERR_INIT;
        if (model_open(&m, path, &e)) {
            ok(0, "fixture %s opens: %s", de->d_name, e.msg);
            continue;
        }
        int64_t tensors = 0, bad_t = 0, elems = 0, nanp = 0;
        char types[256] = "";
        for (size_t i = 0; i < m.n_tensors; i++) {
            const struct model_tensor *t = &m.tensors[i];
            int64_t first;
            if (!dqc_supported(t->dtype) || t->n_elems == 0)
                continue;
            int64_t bad = dq_compare(t->dtype, t->data, t->size, t->n_elems, &nanp, &first, &e);
            tensors++;
            elems += t->n_elems;
            if (bad != 0) {
                bad_t++;
                printf("  %s: tensor '%.*s' (%s): %lld mismatches, first at %lld %s\n", de->d_name,
                       (int)t->name.n, t->name.p, dtype_name(t->dtype), (long long)bad, (long long)first, e.msg);
            }
            size_t tl = strlen(types);
            if (!strstr(types, dtype_name(t->dtype)) && tl < 200)
                snprintf(types + tl, sizeof types - tl, "%s%s", tl ? " " : "", dtype_name(t->dtype));
        }
        ok(bad_t == 0 && tensors > 0, "fixture %s: %lld tensors (%s), %lld values bit-identical",
           de->d_name, (long long)tensors, types, (long long)elems);
        files++;
        model_close(&m);
    }
    closedir(d);
    if (!files)
        skip("fixtures", "no .gguf files in the fixtures directory");
}

/* ---- matrices: random blocks with finite scale fields (an f16 of magnitude 2^-5..2^2) */

static uint16_t rnd_half(void)
{
    return (uint16_t)((rnd64() & 1) << 15 | (10 + rnd64() % 8) << 10 | (rnd64() & 0x3FF));
}

/* offsets of the f16 scale fields of one block of the matrix types */
static int half_fields(int t, int *off)
{
    switch (t) {
    case DT_Q4_0: case DT_Q5_0: case DT_Q8_0: case DT_IQ4_NL: case DT_IQ4_XS:
        off[0] = 0; return 1;
    case DT_Q4_1: case DT_Q5_1: case DT_Q4_K: case DT_Q5_K:
        off[0] = 0; off[1] = 2; return 2;
    case DT_Q2_K: off[0] = 80; off[1] = 82; return 2;
    case DT_Q3_K: off[0] = 108; return 1;
    case DT_Q6_K: off[0] = 208; return 1;
    default: return 0;
    }
}

/* a rows x cols matrix of type t, finite everywhere */
static uint8_t *rnd_matrix(int t, int64_t rows, int64_t cols, uint64_t *row_bytes)
{
    const struct dtype_info *ti = dtype_get(t);
    struct err e = ERR_INIT;
    dtype_nbytes(t, cols, row_bytes, &e);
    uint64_t bytes = *row_bytes * rows;
    uint8_t *m = malloc(bytes);
    if (t == DT_F32 || t == DT_F16 || t == DT_BF16) {
        float *f = malloc((size_t)(rows * cols) * 4);
        for (int64_t i = 0; i < rows * cols; i++)
            f[i] = rndf();
        dq_quantize(t, f, m, rows, cols, &e);
        free(f);
        return m;
    }
    for (uint64_t i = 0; i < bytes; i++)
        m[i] = (uint8_t)rnd64();
    int off[4], nf = half_fields(t, off);
    for (uint64_t b = 0; b < bytes / ti->type_size; b++)
        for (int k = 0; k < nf; k++) {
            uint16_t h = rnd_half();
            memcpy(m + b * ti->type_size + off[k], &h, 2);
        }
    return m;
}

static const int mat_types[] = {
    DT_F32, DT_F16, DT_BF16, DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0,
    DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_IQ4_NL, DT_IQ4_XS,
};
#define N_MAT (int)(sizeof mat_types / sizeof mat_types[0])

/* y_ref[t][r] in double, and sum |w x| per output */
static void ref_matmul(int t, const uint8_t *w, int64_t rows, int64_t cols, uint64_t rb,
                       const float *x, int64_t n_tok, double *y, double *mag)
{
    struct err e = ERR_INIT;
    float *row = malloc((size_t)cols * 4);
    for (int64_t r = 0; r < rows; r++) {
        dq_to_f32_ref(t, w + r * rb, rb, row, cols, 1, &e);
        for (int64_t k = 0; k < n_tok; k++) {
            double s = 0, a = 0;
            for (int64_t c = 0; c < cols; c++) {
                s += (double)row[c] * x[k * cols + c];
                a += fabs((double)row[c] * x[k * cols + c]);
            }
            y[k * rows + r] = s;
            mag[k * rows + r] = a;
        }
    }
    free(row);
}

/* worst |y - ref| / (u * sum|w x|): the error in units of the f32 rounding of the sum */
static double err_units(const float *y, const double *ref, const double *mag, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - ref[i]) / (0x1p-24 * (mag[i] > 0 ? mag[i] : 1e-300));
        if (isnan(y[i]))
            return INFINITY;
        if (d > worst)
            worst = d;
    }
    return worst;
}

static void test_matmul(void *cublas)
{
    for (int k = 0; k < N_MAT; k++) {
        int t = mat_types[k];
        int64_t rows = 203, cols = dtype_get(t)->blck == 256 ? 2048 + 512 : 1024 + 96, n_tok = 5;
        uint64_t rb;
        uint8_t *w = rnd_matrix(t, rows, cols, &rb);
        float *x = malloc((size_t)(n_tok * cols) * 4), *y = malloc((size_t)(n_tok * rows) * 4);
        double *yr = malloc((size_t)(n_tok * rows) * 8), *mag = malloc((size_t)(n_tok * rows) * 8);
        for (int64_t i = 0; i < n_tok * cols; i++)
            x[i] = rndf();
        ref_matmul(t, w, rows, cols, rb, x, n_tok, yr, mag);
        void *dw = dmalloc(rb * rows);
        float *dx = dmalloc((size_t)(n_tok * cols) * 4), *dy = dmalloc((size_t)(n_tok * rows) * 4);
        float *scr = dmalloc((size_t)(64 * cols) * 4);
        up(dw, w, rb * rows);
        up(dx, x, (size_t)(n_tok * cols) * 4);
        struct rtc_w W = { t, rows, cols, rb, dw };
        struct err e = ERR_INIT;
        /* gemv: the longest f32 chain is cols/32 products per lane, plus 5 shuffle adds
         * (the wide kernels' scale factoring adds two roundings per 32) */
        double bound = (double)cols / 32 + 6;
        int rc = 0;
        for (int narrow = 0; narrow < 2; narrow++) {
            cudaMemset(dy, 0xFF, (size_t)rows * 4);
            err_clear(&e);
            rc = rtc_gemv(&W, dx, dy, narrow ? RTC_GEMV_NARROW : RTC_FAULT_NONE, NULL, &e);
            rc = rc || !sync_ok(&e);
            down(y, dy, (size_t)rows * 4);
            double u = rc ? INFINITY : err_units(y, yr, mag, rows);
            ok(!rc && u <= bound, "gemv %-7s %s [%lld x %lld]: error %.2f u*sum|wx| (bound %.0f) %s",
               dtype_name(t), narrow ? "8-wide " : "default", (long long)rows, (long long)cols, u, bound, e.msg);
        }
        double u;
        /* the planted fault must move the result far outside that bound */
        err_clear(&e);
        rc = rtc_gemv(&W, dx, dy, RTC_FAULT_GEMV_T, NULL, &e) || !sync_ok(&e);
        down(y, dy, (size_t)rows * 4);
        u = rc ? 0 : err_units(y, yr, mag, rows);
        ok(!rc && u > 1e3 * bound, "gemv %-7s planted transposed read is caught (error %.3g u)",
           dtype_name(t), u);
        /* gemm (prompt path), tiles of 64 rows so that several tiles run; cuBLAS's
         * summation order is unknown: bound gamma_cols */
        err_clear(&e);
        cudaMemset(dy, 0xFF, (size_t)(n_tok * rows) * 4);
        rc = rtc_gemm(cublas, &W, dx, n_tok, dy, scr, 64 * cols, RTC_FAULT_NONE, NULL, &e) || !sync_ok(&e);
        down(y, dy, (size_t)(n_tok * rows) * 4);
        u = rc ? INFINITY : err_units(y, yr, mag, n_tok * rows);
        ok(!rc && u <= (double)cols, "gemm %-7s [%lld x %lld] x %lld tokens: error %.2f u*sum|wx| (bound %lld) %s",
           dtype_name(t), (long long)rows, (long long)cols, (long long)n_tok, u, (long long)cols, e.msg);
        /* the tensor-core path: weights and activations rounded once to F16 (BF16 for
         * BF16 weights; TF32 for F32), f32 accumulation: each product within 2^-10
         * (BF16: 2^-7) of |w x|, so 2^14 u (2^17 u) * sum|wx| plus the sum's rounding */
        {
            double tb = (t == DT_BF16 ? 131072.0 : 16384.0) + (double)cols;
            err_clear(&e);
            cudaMemset(dy, 0xFF, (size_t)(n_tok * rows) * 4);
            rc = rtc_gemm_tc(cublas, &W, dx, n_tok, dy, scr, 64 * cols, NULL, &e) || !sync_ok(&e);
            down(y, dy, (size_t)(n_tok * rows) * 4);
            u = rc ? INFINITY : err_units(y, yr, mag, n_tok * rows);
            ok(!rc && u <= tb, "gemm %-7s tensor cores [%lld x %lld] x %lld tokens: error %.0f u*sum|wx| (bound %.0f) %s",
               dtype_name(t), (long long)rows, (long long)cols, (long long)n_tok, u, tb, e.msg);
        }
        cudaFree(dw);
        cudaFree(dx);
        cudaFree(dy);
        cudaFree(scr);
        free(w);
        free(x);
        free(y);
        free(yr);
        free(mag);
    }
}

static void test_get_rows(void)
{
    for (int k = 0; k < N_TYPES; k++) {
        int t = all_types[k];
        const struct dtype_info *ti = dtype_get(t);
        int64_t rows = 37, cols = ti->blck < 8 ? 64 : (int64_t)ti->blck * 2;
        uint64_t rb;
        struct err e = ERR_INIT;
        dtype_nbytes(t, cols, &rb, &e);
        uint8_t *w = malloc(rb * rows);
        for (uint64_t i = 0; i < rb * rows; i++)
            w[i] = (uint8_t)rnd64();
        int32_t idx[6] = { 5, 0, 36, 5, -1, 37 };
        float *got = malloc(6 * cols * 4), *ref = malloc(cols * 4);
        void *dw = dmalloc(rb * rows);
        int32_t *di = dmalloc(sizeof idx);
        float *dout = dmalloc(6 * cols * 4);
        up(dw, w, rb * rows);
        up(di, idx, sizeof idx);
        int rc = dqc_get_rows(t, dw, rows, cols, di, 6, dout, NULL, &e) || !sync_ok(&e);
        int64_t bad = rc ? 1 : 0, np = 0, first;
        if (!rc) {
            down(got, dout, 6 * cols * 4);
            for (int i = 0; i < 4; i++) {
                dq_to_f32_ref(t, w + idx[i] * rb, rb, ref, cols, 1, &e);
                bad += bit_diff(ref, got + i * cols, cols, &np, &first);
            }
            for (int64_t c = 0; c < 2 * cols; c++)
                bad += !isnan(got[4 * cols + c]);
        }
        ok(bad == 0, "get_rows %-8s rows 5,0,36,5 bit-identical, -1 and 37 NaN %s", ti->name, e.msg);
        cudaFree(dw);
        cudaFree(di);
        cudaFree(dout);
        free(w);
        free(got);
        free(ref);
    }
}

static double max_rel(const float *y, const double *r, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            return INFINITY;
        num = fmax(num, fabs(y[i] - r[i]));
        den = fmax(den, fabs(r[i]));
    }
    return num / (den > 0 ? den : 1);
}

static void test_ops(void)
{
    struct err e = ERR_INIT;
    int n_tok = 7, n_head = 8, n_kv = 2, hd = 64, n = n_head * hd, kvd = n_kv * hd, n_ctx = 32;
    int32_t pos0 = 11;
    float *x = malloc(n_tok * n * 4), *g = malloc(n * 4), *y = malloc(n_tok * n * 4);
    double *r = malloc(n_tok * n * 8);
    for (int i = 0; i < n_tok * n; i++)
        x[i] = rndf() * 3;
    for (int i = 0; i < n; i++)
        g[i] = 1 + rndf() * 0.5f;
    float *dx = dmalloc(n_tok * n * 4), *dg = dmalloc(n * 4), *dy = dmalloc(n_tok * n * 4);
    int32_t *dp = dmalloc(4);
    up(dx, x, n_tok * n * 4);
    up(dg, g, n * 4);
    up(dp, &pos0, 4);

    /* rmsnorm */
    for (int t = 0; t < n_tok; t++) {
        double ss = 0;
        for (int i = 0; i < n; i++)
            ss += (double)x[t * n + i] * x[t * n + i];
        double sc = 1 / sqrt(ss / n + 1e-5);
        for (int i = 0; i < n; i++)
            r[t * n + i] = x[t * n + i] * sc * g[i];
    }
    int rc = rtc_rmsnorm(dx, dg, dy, n_tok, n, 1e-5f, NULL, &e) || !sync_ok(&e);
    down(y, dy, n_tok * n * 4);
    double m = rc ? INFINITY : max_rel(y, r, n_tok * n);
    ok(m < 1e-6, "rmsnorm: max error %.2e of max |y| %s", m, e.msg);

    /* rope NORM and NEOX, n_rot < head_dim to cover the pass-through dims */
    for (int neox = 0; neox < 2; neox++) {
        int n_rot = 48;
        for (int t = 0; t < n_tok; t++)
            for (int h = 0; h < n_head; h++) {
                const float *p = x + (t * n_head + h) * hd;
                double *o = r + (t * n_head + h) * hd;
                for (int i = 0; i < hd; i++)
                    o[i] = p[i];
                for (int i = 0; i < n_rot / 2; i++) {
                    double ang = (pos0 + t) * pow(10000.0, -2.0 * i / n_rot);
                    int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
                    o[a] = p[a] * cos(ang) - p[b] * sin(ang);
                    o[b] = p[a] * sin(ang) + p[b] * cos(ang);
                }
            }
        up(dy, x, n_tok * n * 4);
        err_clear(&e);
        rc = rtc_rope(dy, n_tok, n_head, hd, n_rot, dp, 10000.0, 1.0, neox, NULL, &e) || !sync_ok(&e);
        down(y, dy, n_tok * n * 4);
        m = rc ? INFINITY : max_rel(y, r, n_tok * n);
        ok(m < 1e-6, "rope %s: max error %.2e %s", neox ? "NEOX" : "NORM", m, e.msg);
    }

    /* kv store + attention: cache rows 0..pos0-1 pre-filled, n_tok new ones stored */
    float *kc = malloc(n_ctx * kvd * 4), *vc = malloc(n_ctx * kvd * 4);
    for (int i = 0; i < n_ctx * kvd; i++) {
        kc[i] = rndf();
        vc[i] = rndf();
    }
    float *dkc = dmalloc(n_ctx * kvd * 4), *dvc = dmalloc(n_ctx * kvd * 4);
    float *dk = dmalloc(n_tok * kvd * 4), *dv = dmalloc(n_tok * kvd * 4);
    up(dkc, kc, pos0 * kvd * 4);
    up(dvc, vc, pos0 * kvd * 4);
    up(dk, kc + pos0 * kvd, n_tok * kvd * 4);
    up(dv, vc + pos0 * kvd, n_tok * kvd * 4);
    float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < n_tok; t++)
        for (int h = 0; h < n_head; h++) {
            int kh = h / (n_head / n_kv), nk = pos0 + t + 1;
            double s[64], mx = -INFINITY, sum = 0;
            for (int j = 0; j < nk; j++) {
                double d = 0;
                for (int i = 0; i < hd; i++)
                    d += (double)x[(t * n_head + h) * hd + i] * kc[j * kvd + kh * hd + i];
                s[j] = d * scale;
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < nk; j++)
                sum += s[j] = exp(s[j] - mx);
            for (int i = 0; i < hd; i++) {
                double a = 0;
                for (int j = 0; j < nk; j++)
                    a += s[j] * vc[j * kvd + kh * hd + i];
                r[(t * n_head + h) * hd + i] = a / sum;
            }
        }
    for (int order = 0; order < 2; order++) {
        err_clear(&e);
        rc = rtc_kv_store(dk, dv, dkc, dvc, n_tok, kvd, dp, n_ctx, NULL, &e) ||
             rtc_attention(dx, dkc, dvc, dy, n_tok, n_head, n_kv, hd, dp, n_ctx, scale, order, NULL, &e) ||
             !sync_ok(&e);
        down(y, dy, n_tok * n * 4);
        m = rc ? INFINITY : max_rel(y, r, n_tok * n);
        ok(m < 1e-5, "kv store + attention (GQA 8/2, pos %d..%d, %s order): max error %.2e %s", pos0,
           pos0 + n_tok - 1, order ? "CPU" : "split", m, e.msg);
    }

    /* swiglu */
    for (int i = 0; i < n; i++)
        r[i] = (double)x[i] / (1 + exp(-(double)x[i])) * x[n + i];
    err_clear(&e);
    rc = rtc_swiglu(dx, dx + n, dy, n, NULL, &e) || !sync_ok(&e);
    down(y, dy, n * 4);
    m = rc ? INFINITY : max_rel(y, r, n);
    ok(m < 1e-6, "swiglu: max error %.2e %s", m, e.msg);

    cudaFree(dx); cudaFree(dg); cudaFree(dy); cudaFree(dp);
    cudaFree(dkc); cudaFree(dvc); cudaFree(dk); cudaFree(dv);
    free(x); free(g); free(y); free(r); free(kc); free(vc);
}

/*
 * The int8 decode kernels (rtc_gemv_q) against the CPU runtime's scalar kernels
 * (runtime/kern_ref.c) on random blocks:
 *   - the device activation quantizer gives the CPU quantizer's blocks, bit for bit;
 *   - the product equals the CPU kernel's on those blocks up to the order in which the
 *     per-block float terms are summed: bound (2 * blocks + 16) u * sum|w x|, where a
 *     decoding error (a wrong nibble, scale or sign) is thousands of times larger.
 * 203 rows (not a multiple of the 8 rows a block computes), and 35 legacy blocks or
 * 10 super-blocks a row (not a multiple of the 128 threads that share a row).
 */
static void test_mmvq(void)
{
    static const int types[] = { DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0, DT_IQ4_NL,
                                 DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_IQ4_XS };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int t = types[k], kind = rtc_act_kind(t);
        int64_t rows = 203, cols = kind == RTC_ACT_Q8_K ? 2560 : 1120;
        const struct rt_kern *ck = rt_kern_get(t, RT_ISA_SCALAR);
        rt_quant_fn cq = ck ? rt_kern_quant(ck->act, RT_ISA_SCALAR) : NULL;
        if (!ck || !cq) {
            ok(0, "int8 gemv %s: no CPU scalar kernel to compare with", dtype_name(t));
            continue;
        }
        uint64_t rb;
        uint8_t *w = rnd_matrix(t, rows, cols, &rb);
        float *x = malloc((size_t)cols * 4), *y = malloc((size_t)rows * 4);
        double *yr = malloc((size_t)rows * 8), *mag = malloc((size_t)rows * 8);
        size_t ab = rt_act_row_bytes(ck->act, cols);
        uint8_t *qa = malloc(ab), *qg = malloc(ab);
        for (int64_t i = 0; i < cols; i++)
            x[i] = rndf() * (i % 7 == 3 ? 4.0f : 1.0f);
        cq(x, qa, cols);
        float *yc = malloc((size_t)rows * 4);
        for (int64_t r = 0; r < rows; r++)
            ck->dot(cols, w + r * rb, qa, 0, 1, &yc[r], 1);
        ref_matmul(t, w, rows, cols, rb, x, 1, yr, mag);
        void *dw = dmalloc(rb * rows), *dq = dmalloc(rtc_act_bytes(cols));
        float *dx = dmalloc((size_t)cols * 4), *dy = dmalloc((size_t)rows * 4);
        up(dw, w, rb * rows);
        up(dx, x, (size_t)cols * 4);
        struct rtc_w W = { t, rows, cols, rb, dw };
        struct err e = ERR_INIT;
        cudaMemset(dy, 0xFF, (size_t)rows * 4);
        int rc = rtc_quantize_act(kind, dx, cols, dq, NULL, &e) || !sync_ok(&e) ||
                 rtc_act_to_blocks(kind, dq, cols, qg, &e);
        ok(!rc && memcmp(qa, qg, ab) == 0, "int8 gemv %-7s activation quantized on the device = "
           "the CPU's %s blocks (%zu bytes) %s", dtype_name(t),
           ck->act == RT_ACT_Q8_K ? "Q8_K" : ck->act == RT_ACT_Q8_1 ? "Q8_1" : "Q8_0", ab, e.msg);
        rc = rc || rtc_gemv_q(&W, dq, dy, 0, NULL, &e) || !sync_ok(&e);
        down(y, dy, (size_t)rows * 4);
        double worst = 0, bound = 2.0 * (double)cols / 32 + 16;
        for (int64_t r = 0; r < rows && !rc; r++) {
            double d = fabs((double)y[r] - yc[r]) / (0x1p-24 * (mag[r] > 0 ? mag[r] : 1e-300));
            if (!(d <= worst))
                worst = isnan(d) ? INFINITY : d;
        }
        ok(!rc && worst <= bound, "int8 gemv %-7s [%lld x %lld] = CPU scalar kernel: error %.2f "
           "u*sum|wx| (bound %.0f) %s", dtype_name(t), (long long)rows, (long long)cols, worst,
           bound, e.msg);
        /* one launch for three matrices (q, k, v) gives each one's bits; SwiGLU mode gives
         * silu(Wx) * Wx within 1e-5 relative of the double formula (measured 3.1e-6 worst,
         * Q4_0, where expf(-g) is near its overflow; a wrong row pairing is off by O(1)) */
        {
            float *ym = malloc((size_t)rows * 12), *dm = dmalloc((size_t)rows * 12);
            const struct rtc_w *w3[3] = { &W, &W, &W };
            float *y3[3] = { dm, dm + rows, dm + 2 * rows };
            int same = 1;
            double sw = 0;
            cudaMemset(dm, 0xFF, (size_t)rows * 12);
            int r2 = rc || rtc_gemv_q_multi(w3, y3, 3, RTC_MV_PLAIN, dq, NULL, &e) || !sync_ok(&e);
            down(ym, dm, (size_t)rows * 12);
            for (int64_t i = 0; i < 3 * rows && !r2; i++)
                same &= ym[i] == y[i % rows];
            ok(!r2 && same, "int8 gemv %-7s three matrices in one launch = one by one %s", dtype_name(t), e.msg);
            r2 = r2 || rtc_gemv_q_multi(w3, y3, 2, RTC_MV_SWIGLU, dq, NULL, &e) || !sync_ok(&e);
            down(ym, dm, (size_t)rows * 4);
            for (int64_t i = 0; i < rows && !r2; i++) {
                double g = y[i], want = g / (1.0 + exp(-g)) * g;
                double d = fabs(ym[i] - want) / (fabs(want) + 1e-30);
                if (!(d <= sw))
                    sw = isnan(d) ? INFINITY : d;
            }
            ok(!r2 && sw <= 1e-5, "int8 gemv %-7s gate+up with SwiGLU in one launch: max rel error %.2g %s",
               dtype_name(t), sw, e.msg);
            free(ym);
            cudaFree(dm);
        }
        /* accumulate: y += W x on top of the first result gives 2y exactly */
        {
            float *y2 = malloc((size_t)rows * 4);
            int same = 1;
            rc = rc || rtc_gemv_q(&W, dq, dy, 1, NULL, &e) || !sync_ok(&e);
            down(y2, dy, (size_t)rows * 4);
            for (int64_t r = 0; r < rows && !rc; r++)
                same &= y2[r] == 2.0f * y[r];
            ok(!rc && same, "int8 gemv %-7s accumulate (y += W x) %s", dtype_name(t), e.msg);
            free(y2);
        }
        cudaFree(dw); cudaFree(dq); cudaFree(dx); cudaFree(dy);
        free(w); free(x); free(y); free(yr); free(mag); free(qa); free(qg); free(yc);
    }
}

/*
 * A matrix wider than 8192 columns (a 7B's FFN down) after the activation quantizer, as
 * the decode step runs them: one stream, the quantizer launched programmatically, then
 * the product.  From level 3 these types' widest matrices run without the L2 prefetch;
 * the kernel must still wait (pdl_wait) for the quantizer before reading its blocks.
 * Each round quantizes a new activation, so a product that started reading early sees
 * the round before's blocks: its result differs from the level-0 result (plain
 * launches) of the same round.  The fixture models are too small for this path, so
 * this is also the only test of its arithmetic (a planted bug there, accumulating into
 * y, failed all 24 rounds of each type).  The kernel had no wait until this test came;
 * the race did not show in it on an H100 (24 rounds passed), so it guards the path
 * rather than proves the race.
 */
static void test_wide_after_quant(void)
{
    static const int types[] = { DT_Q4_K, DT_Q6_K, DT_Q8_0 };
    const int64_t rows = 1024, cols = 11008;
    const int rounds = 24, lv0 = rtc_pdl();
    cudaStream_t st;
    if (cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) != cudaSuccess) {
        ok(0, "wide matrix after the quantizer: cudaStreamCreate failed");
        return;
    }
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int t = types[k], kind = rtc_act_kind(t);
        uint64_t rb;
        uint8_t *w = rnd_matrix(t, rows, cols, &rb);
        float *x = malloc((size_t)rounds * cols * 4), *y[2];
        void *dw = dmalloc(rb * rows), *dq = dmalloc(rtc_act_bytes(cols));
        float *dx = dmalloc((size_t)rounds * cols * 4), *dy[2];
        for (int64_t i = 0; i < (int64_t)rounds * cols; i++)
            x[i] = rndf();
        up(dw, w, rb * rows);
        up(dx, x, (size_t)rounds * cols * 4);
        struct rtc_w W = { t, rows, cols, rb, dw };
        struct err e = ERR_INIT;
        int rc = 0;
        for (int s = 0; s < 2; s++) {
            y[s] = malloc((size_t)rounds * rows * 4);
            dy[s] = dmalloc((size_t)rounds * rows * 4);
            cudaMemset(dy[s], 0xFF, (size_t)rounds * rows * 4);
            rtc_set_pdl(s ? 3 : 0);
            for (int r = 0; r < rounds && !rc; r++)
                rc = rtc_quantize_act(kind, dx + (int64_t)r * cols, cols, dq, st, &e) ||
                     rtc_gemv_q(&W, dq, dy[s] + (int64_t)r * rows, 0, st, &e);
            rc = rc || !sync_ok(&e);
            down(y[s], dy[s], (size_t)rounds * rows * 4);
        }
        rtc_set_pdl(lv0);
        int bad = 0;
        for (int r = 0; r < rounds && !rc; r++)
            bad += memcmp(y[0] + (int64_t)r * rows, y[1] + (int64_t)r * rows, (size_t)rows * 4) != 0;
        ok(!rc && bad == 0, "int8 gemv %-5s [%lld x %lld] after the quantizer, level 3 = level 0, %d rounds "
           "(%d differ) %s", dtype_name(t), (long long)rows, (long long)cols, rounds, bad, e.msg);
        for (int s = 0; s < 2; s++) {
            cudaFree(dy[s]);
            free(y[s]);
        }
        cudaFree(dw); cudaFree(dq); cudaFree(dx);
        free(w); free(x);
    }
    cudaStreamDestroy(st);
}

/*
 * The fused decode kernels against the calls they replace, bit for bit:
 *   rtc_rope_kv     = rtc_rope_table on q and k + rtc_kv_store (NORM and NEOX, n_rot < head_dim)
 *   rtc_rmsnorm_q   = rtc_rmsnorm + rtc_quantize_act (each kind; a row under 256 wide too)
 *   rtc_gemv_multi  = rtc_gemv on each matrix (+ rtc_swiglu), 32-wide types, 3 shapes
 * and the fast attention kernels (one token; tiles of tokens) against a double twin for
 * head sizes 64 and 128, contexts crossing their key tiles of 32 and query tiles of 16.
 */
static void test_attn_case(int hd, int n_tok, int pos0, int n_ctx)
{
    struct err e = ERR_INIT;
    const int n_head = 8, n_kv = 2, n = n_head * hd, kvd = n_kv * hd, nk_all = pos0 + n_tok;
    float *x = malloc((size_t)n_tok * n * 4), *y = malloc((size_t)n_tok * n * 4);
    float *kc = malloc((size_t)n_ctx * kvd * 4), *vc = malloc((size_t)n_ctx * kvd * 4);
    double *r = malloc((size_t)n_tok * n * 8), *sc = malloc((size_t)nk_all * 8);
    for (int i = 0; i < n_tok * n; i++)
        x[i] = rndf() * 2;
    for (int i = 0; i < n_ctx * kvd; i++) {
        kc[i] = rndf();
        vc[i] = rndf();
    }
    float *dx = dmalloc((size_t)n_tok * n * 4), *dy = dmalloc((size_t)n_tok * n * 4);
    float *dkc = dmalloc((size_t)n_ctx * kvd * 4), *dvc = dmalloc((size_t)n_ctx * kvd * 4);
    int32_t *dp = dmalloc(4);
    /* rows past the context written so far hold NaN: the kernels must not read them */
    cudaMemset(dkc, 0xFF, (size_t)n_ctx * kvd * 4);
    cudaMemset(dvc, 0xFF, (size_t)n_ctx * kvd * 4);
    up(dx, x, (size_t)n_tok * n * 4);
    up(dkc, kc, (size_t)nk_all * kvd * 4);
    up(dvc, vc, (size_t)nk_all * kvd * 4);
    up(dp, &pos0, 4);
    float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < n_tok; t++)
        for (int h = 0; h < n_head; h++) {
            int kh = h / (n_head / n_kv), nk = pos0 + t + 1;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < nk; j++) {
                double d = 0;
                for (int i = 0; i < hd; i++)
                    d += (double)x[(t * n_head + h) * hd + i] * kc[j * kvd + kh * hd + i];
                sc[j] = d * scale;
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j < nk; j++)
                sum += sc[j] = exp(sc[j] - mx);
            for (int i = 0; i < hd; i++) {
                double a = 0;
                for (int j = 0; j < nk; j++)
                    a += sc[j] * vc[j * kvd + kh * hd + i];
                r[(t * n_head + h) * hd + i] = a / sum;
            }
        }
    int rc = rtc_attention(dx, dkc, dvc, dy, n_tok, n_head, n_kv, hd, dp, n_ctx, scale, 0, NULL, &e) ||
             !sync_ok(&e);
    down(y, dy, (size_t)n_tok * n * 4);
    double m = rc ? INFINITY : max_rel(y, r, (int64_t)n_tok * n);
    /* f32 sums of up to nk_all terms in another order than the double twin: measured
     * errors are ~1e-7; a wrong key, mask or tile offset gives errors near 1 */
    ok(m < 1e-5, "fast attention head_dim %d, %d token(s) at pos %d..%d, n_ctx %d: max error %.2e %s",
       hd, n_tok, pos0, pos0 + n_tok - 1, n_ctx, m, e.msg);
    cudaFree(dx); cudaFree(dy); cudaFree(dkc); cudaFree(dvc); cudaFree(dp);
    free(x); free(y); free(kc); free(vc); free(r); free(sc);
}

static void test_fused(void)
{
    struct err e = ERR_INIT;
    /* rope + kv store */
    for (int style = 0; style < 2; style++) {
        const int n_tok = 5, nh = 8, nkv = 2, hd = 64, n_rot = 48, half = n_rot / 2, n_ctx = 24;
        int32_t pos0 = 9;
        const int qd = nh * hd, kvd = nkv * hd;
        float *q = malloc(n_tok * qd * 4), *k = malloc(n_tok * kvd * 4), *v = malloc(n_tok * kvd * 4);
        float *cs = malloc(n_ctx * half * 4), *sn = malloc(n_ctx * half * 4);
        for (int i = 0; i < n_tok * qd; i++)
            q[i] = rndf();
        for (int i = 0; i < n_tok * kvd; i++) {
            k[i] = rndf();
            v[i] = rndf();
        }
        for (int p = 0; p < n_ctx; p++)
            for (int i = 0; i < half; i++) {
                double a = p * pow(10000.0, -2.0 * i / n_rot);
                cs[p * half + i] = (float)cos(a);
                sn[p * half + i] = (float)sin(a);
            }
        float *dq[2], *dk[2], *dkc[2], *dvc[2];
        float *dv = dmalloc(n_tok * kvd * 4), *dcs = dmalloc(n_ctx * half * 4), *dsn = dmalloc(n_ctx * half * 4);
        int32_t *dp = dmalloc(4);
        up(dv, v, n_tok * kvd * 4);
        up(dcs, cs, n_ctx * half * 4);
        up(dsn, sn, n_ctx * half * 4);
        up(dp, &pos0, 4);
        for (int i = 0; i < 2; i++) {
            dq[i] = dmalloc(n_tok * qd * 4);
            dk[i] = dmalloc(n_tok * kvd * 4);
            dkc[i] = dmalloc(n_ctx * kvd * 4);
            dvc[i] = dmalloc(n_ctx * kvd * 4);
            up(dq[i], q, n_tok * qd * 4);
            up(dk[i], k, n_tok * kvd * 4);
            cudaMemset(dkc[i], 0, n_ctx * kvd * 4);
            cudaMemset(dvc[i], 0, n_ctx * kvd * 4);
        }
        err_clear(&e);
        int rc = rtc_rope_table(dq[0], n_tok, nh, hd, n_rot, dp, dcs, dsn, style, NULL, &e) ||
                 rtc_rope_table(dk[0], n_tok, nkv, hd, n_rot, dp, dcs, dsn, style, NULL, &e) ||
                 rtc_kv_store(dk[0], dv, dkc[0], dvc[0], n_tok, kvd, dp, n_ctx, NULL, &e) ||
                 rtc_rope_kv(dq[1], dk[1], dv, dkc[1], dvc[1], n_tok, nh, nkv, hd, n_rot, dp, dcs, dsn,
                             style, n_ctx, NULL, &e) || !sync_ok(&e);
        int same = !rc;
        size_t sz[4] = { (size_t)n_tok * qd, (size_t)n_tok * kvd, (size_t)n_ctx * kvd, (size_t)n_ctx * kvd };
        float **bufs[4] = { dq, dk, dkc, dvc };
        for (int b = 0; b < 4 && same; b++) {
            float *h0 = malloc(sz[b] * 4), *h1 = malloc(sz[b] * 4);
            down(h0, bufs[b][0], sz[b] * 4);
            down(h1, bufs[b][1], sz[b] * 4);
            same = memcmp(h0, h1, sz[b] * 4) == 0;
            free(h0);
            free(h1);
        }
        ok(same, "rope + kv store in one launch (%s) = rope, rope, kv store: q, k and the cache bit for bit %s",
           style ? "NORM" : "NEOX", e.msg);
        for (int i = 0; i < 2; i++) {
            cudaFree(dq[i]); cudaFree(dk[i]); cudaFree(dkc[i]); cudaFree(dvc[i]);
        }
        cudaFree(dv); cudaFree(dcs); cudaFree(dsn); cudaFree(dp);
        free(q); free(k); free(v); free(cs); free(sn);
    }

    /* q, k, v with rope and the cache store in the matrix kernel (interleaved style):
     * the bytes of rtc_gemv_q_multi (q, k) + rtc_gemv_q (v) + rtc_rope_kv, for one type
     * and for the k-quant mixes' v of another type; partial rotation and full */
    {
        static const int pairs[][2] = { { DT_Q4_K, DT_Q4_K }, { DT_Q4_K, DT_Q6_K }, { DT_Q5_K, DT_Q6_K },
                                        { DT_Q8_0, DT_Q8_0 }, { DT_Q4_0, DT_Q4_0 }, { DT_Q3_K, DT_Q5_K } };
        const int nh = 4, nkv = 2, hd = 64, n_ctx = 24, qd = nh * hd, kvd = nkv * hd;
        const int64_t cols = 512;
        const int lv = rtc_pdl();
        rtc_set_pdl(3);
        for (size_t pi = 0; pi < sizeof pairs / sizeof pairs[0]; pi++)
            for (int n_rot = 48; n_rot <= 64; n_rot += 16) {
                const int half = n_rot / 2, kind = rtc_act_kind(pairs[pi][0]);
                int32_t pos0 = 9;
                float *x = malloc(cols * 4), *cs = malloc(n_ctx * half * 4), *sn = malloc(n_ctx * half * 4);
                for (int i = 0; i < cols; i++)
                    x[i] = rndf();
                for (int p = 0; p < n_ctx; p++)
                    for (int i = 0; i < half; i++) {
                        double a = p * pow(10000.0, -2.0 * i / n_rot);
                        cs[p * half + i] = (float)cos(a);
                        sn[p * half + i] = (float)sin(a);
                    }
                const int64_t rows[3] = { qd, kvd, kvd };
                struct rtc_w W[3];
                uint8_t *hw[3];
                for (int i = 0; i < 3; i++) {
                    uint64_t rb;
                    int t = pairs[pi][i == 2];
                    hw[i] = rnd_matrix(t, rows[i], cols, &rb);
                    void *dw = dmalloc(rb * rows[i]);
                    up(dw, hw[i], rb * rows[i]);
                    W[i] = (struct rtc_w){ t, rows[i], cols, rb, dw };
                }
                float *dx = dmalloc(cols * 4), *dcs = dmalloc(n_ctx * half * 4), *dsn = dmalloc(n_ctx * half * 4);
                void *dq8 = dmalloc(rtc_act_bytes(cols));
                int32_t *dp = dmalloc(4);
                up(dx, x, cols * 4);
                up(dcs, cs, n_ctx * half * 4);
                up(dsn, sn, n_ctx * half * 4);
                up(dp, &pos0, 4);
                float *dy[2][3], *dkc[2], *dvc[2];
                for (int s = 0; s < 2; s++) {
                    for (int i = 0; i < 3; i++) {
                        dy[s][i] = dmalloc(rows[i] * 4);
                        cudaMemset(dy[s][i], 0, rows[i] * 4);
                    }
                    dkc[s] = dmalloc(n_ctx * kvd * 4);
                    dvc[s] = dmalloc(n_ctx * kvd * 4);
                    cudaMemset(dkc[s], 0, n_ctx * kvd * 4);
                    cudaMemset(dvc[s], 0, n_ctx * kvd * 4);
                }
                const struct rtc_w *wp[3] = { &W[0], &W[1], &W[2] };
                const struct rtc_qkv qa = { dkc[1], dvc[1], dcs, dsn, dp, n_ctx, kvd, hd, n_rot };
                err_clear(&e);
                int rc = rtc_quantize_act(kind, dx, cols, dq8, NULL, &e) ||
                         rtc_gemv_q_multi(wp, dy[0], 2, RTC_MV_PLAIN, dq8, NULL, &e) ||
                         rtc_gemv_q(&W[2], dq8, dy[0][2], 0, NULL, &e) ||
                         rtc_rope_kv(dy[0][0], dy[0][1], dy[0][2], dkc[0], dvc[0], 1, nh, nkv, hd, n_rot, dp, dcs,
                                     dsn, 1, n_ctx, NULL, &e);
                int fr = rc ? -1 : rtc_gemv_q_qkv(wp, dy[1], &qa, dq8, NULL, &e);
                rc = rc || fr != 0 || !sync_ok(&e);
                int same = !rc;
                for (int b = 0; b < 5 && same; b++) {
                    size_t n = b < 3 ? (size_t)rows[b] : (size_t)n_ctx * kvd;
                    float *h0 = malloc(n * 4), *h1 = malloc(n * 4);
                    down(h0, b < 3 ? dy[0][b] : b == 3 ? dkc[0] : dvc[0], n * 4);
                    down(h1, b < 3 ? dy[1][b] : b == 3 ? dkc[1] : dvc[1], n * 4);
                    same = memcmp(h0, h1, n * 4) == 0;
                    free(h0);
                    free(h1);
                }
                ok(same, "q, k, v (%s, v %s) with rope (%d of %d dims) and the cache store in one launch = "
                   "the products, then rope + kv store: q, k, v and the cache bit for bit %s%s",
                   dtype_name(pairs[pi][0]), dtype_name(pairs[pi][1]), n_rot, hd,
                   fr == 1 ? "(not applied) " : "", e.msg);
                for (int s = 0; s < 2; s++) {
                    for (int i = 0; i < 3; i++)
                        cudaFree(dy[s][i]);
                    cudaFree(dkc[s]);
                    cudaFree(dvc[s]);
                }
                for (int i = 0; i < 3; i++) {
                    cudaFree((void *)W[i].d);
                    free(hw[i]);
                }
                cudaFree(dx); cudaFree(dcs); cudaFree(dsn); cudaFree(dq8); cudaFree(dp);
                free(x); free(cs); free(sn);
            }
        rtc_set_pdl(lv);
    }

    /* rmsnorm + activation quantization */
    const int kinds[3] = { RTC_ACT_Q8_0, RTC_ACT_Q8_1, RTC_ACT_Q8_K };
    const int widths[2] = { 96, 4096 };
    for (int ki = 0; ki < 3; ki++)
        for (int wi = 0; wi < 2; wi++) {
            int kind = kinds[ki], n = widths[wi];
            if (n % rtc_act_blck(kind))
                continue;
            float *x = malloc(n * 4), *g = malloc(n * 4);
            for (int i = 0; i < n; i++) {
                x[i] = rndf() * 4;
                g[i] = 1 + rndf() * 0.5f;
            }
            x[3] = 0;
            uint64_t qb = rtc_act_bytes(n);
            float *dx = dmalloc(n * 4), *dg = dmalloc(n * 4), *o0 = dmalloc(n * 4), *o1 = dmalloc(n * 4);
            void *q0 = dmalloc(qb), *q1 = dmalloc(qb);
            cudaMemset(q0, 0, qb);
            cudaMemset(q1, 0, qb);
            up(dx, x, n * 4);
            up(dg, g, n * 4);
            err_clear(&e);
            int rc = rtc_rmsnorm(dx, dg, o0, 1, n, 1e-5f, NULL, &e) ||
                     rtc_quantize_act(kind, o0, n, q0, NULL, &e) ||
                     rtc_rmsnorm_q(dx, dg, o1, n, 1e-5f, kind, q1, NULL, &e) || !sync_ok(&e);
            uint8_t *h0 = malloc(qb), *h1 = malloc(qb);
            float *f0 = malloc(n * 4), *f1 = malloc(n * 4);
            down(h0, q0, qb);
            down(h1, q1, qb);
            down(f0, o0, n * 4);
            down(f1, o1, n * 4);
            int same = !rc && memcmp(h0, h1, qb) == 0 && memcmp(f0, f1, n * 4) == 0;
            ok(same, "rmsnorm + quantize (%s, %d wide) in one launch = rmsnorm, quantize: bit for bit %s",
               kind == RTC_ACT_Q8_K ? "Q8_K" : kind == RTC_ACT_Q8_1 ? "Q8_1" : "Q8_0", n, e.msg);
            cudaFree(dx); cudaFree(dg); cudaFree(o0); cudaFree(o1); cudaFree(q0); cudaFree(q1);
            free(x); free(g); free(h0); free(h1); free(f0); free(f1);
        }

    /* several matrices in one launch, f32 activations */
    const int mtypes[5] = { DT_F16, DT_BF16, DT_Q8_0, DT_Q4_K, DT_Q6_K };
    for (int ti = 0; ti < 5; ti++) {
        int t = mtypes[ti];
        const int64_t cols = 512, rows[3] = { 203, 64, 64 };
        uint64_t rb = 0;
        uint8_t *hw[3];
        struct rtc_w W[3];
        float *dy[3], *dy2[3];
        float *x = malloc(cols * 4);
        for (int i = 0; i < cols; i++)
            x[i] = rndf();
        float *dx = dmalloc(cols * 4);
        up(dx, x, cols * 4);
        for (int i = 0; i < 3; i++) {
            int64_t rr = rows[i];
            hw[i] = rnd_matrix(t, rr, cols, &rb);
            void *dw = dmalloc(rb * rr);
            up(dw, hw[i], rb * rr);
            W[i] = (struct rtc_w){ t, rr, cols, rb, dw };
            dy[i] = dmalloc(203 * 4);
            dy2[i] = dmalloc(203 * 4);
        }
        const struct rtc_w *wp[3] = { &W[0], &W[1], &W[2] };
        err_clear(&e);
        int rc = 0, same = 1;
        for (int mode = 0; mode < 3 && !rc; mode++) {
            int nm = mode == RTC_MV_SWIGLU ? 2 : 3;
            const struct rtc_w *sw[2] = { &W[1], &W[2] };   /* gate and up: equal rows */
            for (int i = 0; i < 3; i++) {
                float init[203];
                for (int r = 0; r < 203; r++)
                    init[r] = (float)r;
                up(dy[i], init, sizeof init);
                up(dy2[i], init, sizeof init);
            }
            if (mode == RTC_MV_SWIGLU) {
                rc = rtc_gemv(sw[0], dx, dy[0], 0, NULL, &e) || rtc_gemv(sw[1], dx, dy[1], 0, NULL, &e) ||
                     rtc_swiglu(dy[0], dy[1], dy[0], 203, NULL, &e);
                rc = rc || rtc_gemv_multi(sw, dy2, 2, mode, dx, NULL, &e) != 0;
            } else {
                for (int i = 0; i < nm && !rc; i++)
                    rc = rtc_gemv(wp[i], dx, dy[i], mode == RTC_MV_ACC ? RTC_GEMV_ACC : 0, NULL, &e);
                rc = rc || rtc_gemv_multi(wp, dy2, nm, mode, dx, NULL, &e) != 0;
            }
            rc = rc || !sync_ok(&e);
            for (int i = 0; i < (mode == RTC_MV_SWIGLU ? 1 : nm) && !rc; i++) {
                float a[203], b[203];
                down(a, dy[i], 203 * 4);
                down(b, dy2[i], 203 * 4);
                same &= memcmp(a, b, (size_t)(mode == RTC_MV_SWIGLU ? W[1].rows : W[i].rows) * 4) == 0;
            }
        }
        ok(!rc && same, "gemv %-5s of 3 matrices in one launch (plain, y +=, swiglu) = one by one, bit for bit %s",
           dtype_name(t), e.msg);
        for (int i = 0; i < 3; i++) {
            cudaFree((void *)W[i].d); cudaFree(dy[i]); cudaFree(dy2[i]);
            free(hw[i]);
        }
        cudaFree(dx);
        free(x);
    }

    /* fast attention */
    test_attn_case(128, 1, 0, 8);
    test_attn_case(128, 1, 70, 80);
    test_attn_case(64, 1, 37, 40);
    test_attn_case(128, 7, 11, 30);
    test_attn_case(128, 40, 5, 45);
    test_attn_case(64, 40, 23, 70);
    test_attn_case(128, 3, 200, 203);
}

int main(int argc, char **argv)
{
    const char *fx = argc > 1 ? argv[1] : getenv("APR_SHARED_FIXTURES");
    char why[256] = "";
    int n_dev = 0;
    if (!fx || !*fx)
        fx = "../shared/fixtures";
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_infra();
    cu_device_count(&n_dev, why, sizeof why);
    if (n_dev == 0) {
        const char *dev_tests[] = { "device errors", "dequant", "fixtures", "get_rows", "gemv+gemm",
                                    "int8 gemv", "ops", "fused" };
        for (size_t i = 0; i < sizeof dev_tests / sizeof dev_tests[0]; i++)
            skip(dev_tests[i], why);
    } else {
        cublasHandle_t cublas = NULL;
        test_device_errors(n_dev);
        test_dequant_random();
        test_fixtures(fx);
        test_get_rows();
        if (cublasCreate(&cublas) == CUBLAS_STATUS_SUCCESS) {
            test_matmul(cublas);
            cublasDestroy(cublas);
            test_mmvq();
            test_wide_after_quant();
        } else {
            ok(0, "cublasCreate");
        }
        test_ops();
        test_fused();
    }
    printf("cuda: %d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}
