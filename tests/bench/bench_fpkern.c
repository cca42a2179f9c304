/*
 * bench_fpkern.c - the F16/BF16/F32 matrix kernels (runtime/kern.h) alone, against a
 * same-run read loop: where issue 12's F16 decode and prompt lose time, without the
 * rest of the forward pass.
 *
 *   bench_fpkern [-t N] [-r R] [TYPE]      TYPE: F16 (default), BF16 or F32
 *
 * decode: the kernel's one-token product (kern.h's gemm, nt = 1) over a matrix of
 *   2048 columns and 512 MiB (far past the caches: every weight from DRAM), the rows in
 *   parts of 64 taken by the pool's threads as rt_matmul does, then a plain read loop
 *   over the same bytes and parts (one stream of u64 loads per part, xor'ed): GB/s of
 *   weights and kernel / read (1.0: the kernel streams its parts as fast as they can
 *   be read one after another; bench_run's roofline reads 4 interleaved zmm streams
 *   per thread, which is faster still).
 * prompt: the same kernel on 64 tokens over the first 16384 rows, parts of 64 rows:
 *   GFLOP/s (2 flops a weight a token).
 * Each line is one repetition (-r, default 5), the two measurements side by side, so a
 * busy machine shows as scatter; first with 1 thread, then with N (default 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../formats/dtype.h"
#include "../../runtime/kern.h"
#include "../../runtime/pool.h"
#include "bench_util.h"
#include "../../common/banned.h"

#define COLS    2048
#define BYTES   ((size_t)512 << 20)
#define PART    64          /* rows per part */
#define PP_TOK  64
#define PP_ROWS 16384

struct job {
    const struct rt_kern *k;
    const uint8_t        *w;
    size_t                rb;      /* weight row bytes */
    int64_t               rows;
    int                   nt;      /* tokens (read loop: 0) */
    const float          *x;
    float                *y;
    uint64_t              sink[64];
};

static void part(void *ctx, int i, int n)
{
    struct job *j = ctx;
    int64_t r0 = (int64_t)i * PART, nr = j->rows - r0 < PART ? j->rows - r0 : PART;

    (void)n;
    if (j->nt) {
        j->k->gemm(COLS, j->w + (size_t)r0 * j->rb, j->rb, (int)nr, j->x,
                   COLS * sizeof(float), j->nt, j->y + r0, (size_t)j->rows);
        return;
    }
    const uint64_t *p = (const uint64_t *)(j->w + (size_t)r0 * j->rb);
    size_t nw = (size_t)nr * j->rb / 8;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t q = 0; q + 4 <= nw; q += 4) {
        a0 ^= p[q];
        a1 ^= p[q + 1];
        a2 ^= p[q + 2];
        a3 ^= p[q + 3];
    }
    j->sink[i & 63] ^= a0 ^ a1 ^ a2 ^ a3;
}

static double timed(struct rt_pool *p, struct job *j, int64_t rows, int nt)
{
    j->rows = rows;
    j->nt = nt;
    double t0 = bench_now();
    rt_pool_run(p, part, j, (int)((rows + PART - 1) / PART));
    return bench_now() - t0;
}

static int run(int dt, int threads, int reps, const uint8_t *w, size_t rb, int64_t rows,
               const float *x, float *y)
{
    struct rt_pool *p = NULL;
    struct err e = ERR_INIT;
    struct job j;

    if (rt_pool_create(&p, threads, &e)) {
        fprintf(stderr, "bench_fpkern: %s\n", e.msg);
        return -1;
    }
    memset(&j, 0, sizeof j);
    j.k = rt_kern_get(dt, RT_ISA_AVX512);
    j.w = w;
    j.rb = rb;
    j.x = x;
    j.y = y;
    printf("%s, %d thread%s, kernels %s:\n", dtype_name(dt), threads, threads > 1 ? "s" : "",
           j.k->isa == RT_ISA_AVX512 ? "avx512" : j.k->isa == RT_ISA_AVX2 ? "avx2" : "scalar");
    timed(p, &j, rows, 0);   /* warm: page the buffer in, start the workers */
    for (int r = 0; r < reps; r++) {
        double tk = timed(p, &j, rows, 1), tr = timed(p, &j, rows, 0);
        double tp = timed(p, &j, PP_ROWS, PP_TOK);
        printf("  decode %6.2f GB/s  read %6.2f GB/s  kernel/read %.3f   prompt %6.1f GFLOP/s\n",
               (double)rows * (double)rb / tk / 1e9, (double)rows * (double)rb / tr / 1e9,
               tr / tk, 2.0 * PP_ROWS * COLS * PP_TOK / tp / 1e9);
    }
    fflush(stdout);
    rt_pool_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 5, dt = DT_F16, argi = 1;

    while (argi < argc) {
        if (!strcmp(argv[argi], "-t") && argi + 1 < argc)
            threads = bench_int("bench_fpkern", argv[++argi]);
        else if (!strcmp(argv[argi], "-r") && argi + 1 < argc)
            reps = bench_int("bench_fpkern", argv[++argi]);
        else if (!strcmp(argv[argi], "F16") || !strcmp(argv[argi], "BF16") ||
                 !strcmp(argv[argi], "F32"))
            dt = dtype_from_name(argv[argi]);
        else {
            fputs("usage: bench_fpkern [-t N] [-r R] [F16|BF16|F32]\n", stderr);
            return 2;
        }
        argi++;
    }
    if (!rt_kern_get(dt, RT_ISA_AVX512) || !rt_kern_get(dt, RT_ISA_AVX512)->gemm) {
        fputs("bench_fpkern: no matrix kernel for the type on this CPU\n", stderr);
        return 2;
    }
    size_t es = dt == DT_F32 ? 4 : 2, rb = COLS * es;
    int64_t rows = (int64_t)(BYTES / rb);
    uint8_t *w = malloc(BYTES);
    float *x = malloc((size_t)PP_TOK * COLS * sizeof(float));
    size_t ny = (size_t)rows > (size_t)PP_TOK * PP_ROWS ? (size_t)rows : (size_t)PP_TOK * PP_ROWS;
    float *y = malloc(ny * sizeof(float));
    if (!w || !x || !y) {
        fputs("bench_fpkern: out of memory\n", stderr);
        return 1;
    }
    /* small finite values in every format (the speed does not depend on them) */
    for (size_t i = 0; i < BYTES / 2; i++) {
        uint16_t h = (uint16_t)(0x3000 + (i * 2654435761u >> 20) % 0x800);   /* f16 */
        if (dt == DT_BF16)
            h = (uint16_t)(0x3c00 + (i * 2654435761u >> 20) % 0x100);
        else if (dt == DT_F32)
            h = (i & 1) ? 0x3c00 : (uint16_t)(i * 2654435761u >> 16);
        memcpy(w + 2 * i, &h, 2);
    }
    for (int64_t i = 0; i < (int64_t)PP_TOK * COLS; i++)
        x[i] = (float)(i % 7) * 0.1f - 0.3f;
    if (run(dt, 1, reps, w, rb, rows, x, y) ||
        (threads > 1 && run(dt, threads, reps, w, rb, rows, x, y)))
        return 1;
    free(w);
    free(x);
    free(y);
    return 0;
}
