/*
 * bench_qdec.c - the decode kernels of the quantized types (runtime/kern.h's dec, the
 * one-token product) alone, in cache and from DRAM, beside a same-run read loop: is a
 * type's decode bound by its instructions or by the memory?  Issue 12's Q4_K_M decode
 * is the first (see kern_dec_avx2.c); this shows it for every type in one run.
 *
 *   bench_qdec [-t N] [-r R] [TYPE...]     TYPEs: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL
 *                                          Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_XS (default: all)
 *
 * Weights: 256 rows of 2048 columns quantized from random values by our quantizer
 * (dq_quantize), copied over 512 MiB (far past the caches).  Activations: one token,
 * converted to the kernel's format.  Per repetition (-r, default 5), GB/s of weights:
 *   cache  the kernel over the first 256 rows, 400 times (they stay in L2), one thread;
 *   dram1  the kernel over the 512 MiB in parts of 512 rows (rt_matmul's decode parts
 *          are 1 MiB at most), one thread; read1: a plain read of the same parts, four
 *          streams a quarter of the part apart as the kernels read them;
 *   dramN / readN  the same with N threads (default 2) taking the parts;
 *   N.cache  dramN / (N x cache): 1.0 would be N cores each running as fast as in cache.
 * Types with a kernel on rows repacked 8 at a time (kern.h's dec8: AVX2 Q4_K, Q6_K, Q8_0) get
 * a second line, x8: cache, dram1 and dramN of that kernel on the repacked copy, in
 * GB/s of the file's bytes (Q4_K's copy reads 2.8% more).
 * Decode of a type is bound by its instructions where dramN stays well under readN (the
 * memory could give more) and N.cache is near 1; by the memory where dramN ~ readN.
 * Each line is one repetition, so a busy machine shows as scatter, then the best of each
 * column ("best"; its N.cache from those bests).  This machine's memory reads at two
 * speeds minute by minute (issue 12's notes): compare within a line, not across runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/err.h"
#include "../../dequant/dq.h"
#include "../../formats/dtype.h"
#include "../../runtime/kern.h"
#include "../../runtime/pool.h"
#include "bench_util.h"
#include "../../common/banned.h"

#define COLS     2048
#define CHUNK    256                      /* rows quantized once, then copied */
#define BYTES    ((size_t)512 << 20)
#define PART     512                      /* rows per part */
#define IN_CACHE 400                      /* passes over the first CHUNK rows */

struct job {
    const struct rt_kern *k;
    const uint8_t        *w;
    size_t                rb;             /* weight row bytes */
    int64_t               rows;
    const uint8_t        *act;
    size_t                act_rb;
    float                *y;
    int                   read;           /* 1: the read loop, not the kernel */
    const uint8_t        *w8;             /* the rows repacked 8 at a time, or NULL */
    size_t                gs;             /* bytes a group of 8 rows in w8 */
    int                   x8;             /* 1: dec8 on w8 */
    uint64_t              sink[64];
};

static void part(void *ctx, int i, int n)
{
    struct job *j = ctx;
    int64_t r0 = (int64_t)i * PART % j->rows, nr = j->rows - r0 < PART ? j->rows - r0 : PART;
    const uint8_t *w = j->w + (size_t)r0 * j->rb;

    (void)n;
    if (j->x8) {
        j->k->dec8(COLS, j->w8 + (size_t)(r0 / 8) * j->gs, j->gs, (int)nr, j->act, j->act_rb, 1,
                   j->y + r0, (size_t)j->rows);
        return;
    }
    if (!j->read) {
        j->k->dec(COLS, w, j->rb, (int)nr, j->act, j->act_rb, 1, j->y + r0, (size_t)j->rows);
        return;
    }
    /* four streams a quarter of the part apart, 8 bytes a load each */
    size_t q = (size_t)nr * j->rb / 4 / 8;
    const uint64_t *p0 = (const uint64_t *)w, *p1 = p0 + q, *p2 = p1 + q, *p3 = p2 + q;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t o = 0; o < q; o++) {
        a0 ^= p0[o];
        a1 ^= p1[o];
        a2 ^= p2[o];
        a3 ^= p3[o];
    }
    j->sink[i & 63] ^= a0 ^ a1 ^ a2 ^ a3;
}

/* GB/s of weights (of their bytes in the file, repacked or not) over `passes` passes of
 * rows [0, rows): the kernel, the read loop (read 1) or dec8 (read 2) */
static double gbps(struct rt_pool *p, struct job *j, int64_t rows, int passes, int read)
{
    int nparts = (int)((rows + PART - 1) / PART);
    j->rows = rows;
    j->read = read == 1;
    j->x8 = read == 2;
    double t0 = bench_now();
    rt_pool_run(p, part, j, nparts * passes);
    return (double)rows * (double)j->rb * passes / (bench_now() - t0) / 1e9;
}

static int bench_type(int dt, struct rt_pool *p1, struct rt_pool *pn, int threads, int reps,
                      uint8_t *w, uint8_t *w8, const float *src, const float *x)
{
    const struct rt_kern *k = rt_kern_get(dt, RT_ISA_AVX512);
    struct err e = ERR_INIT;
    struct job j;

    if (!k || !k->dec) {
        printf("%-7s no decode kernel on this CPU\n", dtype_name(dt));
        return 0;
    }
    memset(&j, 0, sizeof j);
    j.k = k;
    uint64_t nb = 0;
    if (dtype_nbytes(dt, COLS, &nb, &e) || dq_quantize(dt, src, w, CHUNK, COLS, &e)) {
        fprintf(stderr, "bench_qdec: %s: %s\n", dtype_name(dt), e.msg);
        return -1;
    }
    j.rb = (size_t)nb;
    size_t chunk = j.rb * CHUNK;
    int64_t rows = (int64_t)(BYTES / chunk) * CHUNK;
    for (size_t o = chunk; o + chunk <= BYTES; o += chunk)
        memcpy(w + o, w, chunk);
    j.w = w;
    if (k->dec8) {   /* the same rows repacked, copied as far (Q4_K's copy is 2.8% larger) */
        j.gs = (size_t)(COLS / k->pack8_n) * k->pack8_sb;
        size_t chunk8 = j.gs * (CHUNK / 8);
        for (int g = 0; g < CHUNK / 8; g++)
            k->pack8(COLS, w + (size_t)(8 * g) * j.rb, j.rb, 8, w8 + (size_t)g * j.gs);
        for (size_t o = chunk8; o < (size_t)(rows / 8) * j.gs; o += chunk8)
            memcpy(w8 + o, w8, chunk8);
        j.w8 = w8;
    }
    j.act_rb = rt_act_row_bytes(k->dec_act, COLS);
    uint8_t *act = malloc(j.act_rb);
    j.y = malloc((size_t)rows * sizeof(float));
    if (!act || !j.y) {
        fputs("bench_qdec: out of memory\n", stderr);
        return -1;
    }
    rt_kern_quant(k->dec_act, RT_ISA_AVX512)(x, act, COLS);
    j.act = act;
    printf("%-7s (%s, %zu bytes a row)\n", dtype_name(dt),
           k->isa == RT_ISA_AVX512 ? "avx512" : k->isa == RT_ISA_AVX2 ? "avx2" : "scalar", j.rb);
    gbps(pn, &j, rows, 1, 1);   /* warm: start the workers */
    double best[8] = { 0 };
    for (int r = 0; r <= reps; r++) {
        double v[8];
        if (r < reps) {
            v[0] = gbps(p1, &j, CHUNK, IN_CACHE, 0);
            v[1] = gbps(p1, &j, rows, 1, 0);
            v[2] = gbps(p1, &j, rows, 1, 1);
            v[3] = gbps(pn, &j, rows, 1, 0);
            v[4] = gbps(pn, &j, rows, 1, 1);
            if (j.w8) {
                v[5] = gbps(p1, &j, CHUNK, IN_CACHE, 2);
                v[6] = gbps(p1, &j, rows, 1, 2);
                v[7] = gbps(pn, &j, rows, 1, 2);
            }
            for (int c = 0; c < (j.w8 ? 8 : 5); c++)
                best[c] = v[c] > best[c] ? v[c] : best[c];
        } else {
            memcpy(v, best, sizeof v);
        }
        printf("  %s cache %6.2f  dram1 %6.2f  read1 %6.2f  dram%d %6.2f  read%d %6.2f  %d.cache %.2f\n",
               r < reps ? "    " : "best", v[0], v[1], v[2], threads, v[3], threads, v[4],
               threads, v[3] / (threads * v[0]));
        if (j.w8)
            printf("  %s cache %6.2f  dram1 %6.2f                dram%d %6.2f                 %d.cache %.2f\n",
                   r < reps ? "  x8" : "bx8 ", v[5], v[6], threads, v[7], threads,
                   v[7] / (threads * v[5]));
    }
    fflush(stdout);
    free(act);
    free(j.y);
    return 0;
}

int main(int argc, char **argv)
{
    static const int all[] = { DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0, DT_IQ4_NL,
                               DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_IQ4_XS };
    int types[sizeof all / sizeof all[0]], nt = 0, threads = 2, reps = 5;
    struct err e = ERR_INIT;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            threads = bench_int("bench_qdec", argv[++i]);
            continue;
        }
        if (!strcmp(argv[i], "-r") && i + 1 < argc) {
            reps = bench_int("bench_qdec", argv[++i]);
            continue;
        }
        int dt = dtype_from_name(argv[i]), ok = 0;
        for (size_t a = 0; a < sizeof all / sizeof all[0]; a++)
            ok |= all[a] == dt;
        if (!ok || nt == (int)(sizeof types / sizeof types[0])) {
            fputs("usage: bench_qdec [-t N] [-r R] [TYPE...]\n"
                  "  TYPE: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_XS\n",
                  stderr);
            return 2;
        }
        types[nt++] = dt;
    }
    if (!nt)
        for (size_t a = 0; a < sizeof all / sizeof all[0]; a++)
            types[nt++] = all[a];

    struct rt_pool *p1 = NULL, *pn = NULL;
    uint8_t *w = malloc(BYTES), *w8 = malloc(BYTES + BYTES / 32);
    float *src = malloc((size_t)CHUNK * COLS * sizeof(float)), *x = malloc(COLS * sizeof(float));
    if (!w || !w8 || !src || !x) {
        fputs("bench_qdec: out of memory\n", stderr);
        return 1;
    }
    if (rt_pool_create(&p1, 1, &e) || rt_pool_create(&pn, threads, &e)) {
        fprintf(stderr, "bench_qdec: %s\n", e.msg);
        return 1;
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)CHUNK * COLS; i++) {
        s = s * 1664525u + 1013904223u;
        src[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * (1.0f + (float)(i % 7));
    }
    for (int i = 0; i < COLS; i++)
        x[i] = src[i * 3] * 0.7f;
    printf("decode kernels, %d columns, GB/s of weights; %d thread%s beside one\n", COLS,
           threads, threads > 1 ? "s" : "");
    for (int i = 0; i < nt; i++)
        if (bench_type(types[i], p1, pn, threads, reps, w, w8, src, x))
            return 1;
    rt_pool_free(p1);
    rt_pool_free(pn);
    free(w);
    free(w8);
    free(src);
    free(x);
    return 0;
}
