/*
 * bench_dq.c - dequantization throughput per type, against same-run baselines.
 *
 *   bench_dq [-n ELEMENTS] [-r REPEATS] [TYPE...]
 *
 * For every type (or the ones named), decodes ELEMENTS values (default 4M, i.e. 16 MiB
 * of f32, well past the caches) on one thread through the scalar reference and through
 * the fast path, and times memcpy of the same number of output bytes in the same run.
 * Throughput is GB/s of f32 WRITTEN (10^9 bytes/s), the best of REPEATS runs.  Ratios:
 * fast/memcpy (1.0 = as fast as copying the output) and fast/scalar.  Aims (issue 3):
 * fast within 2x of memcpy (ratio >= 0.5) on the K-quants and Q8_0; fast >= scalar.
 *
 * Source data: the quantizable types get real blocks (quantized from a smooth random
 * signal), the others random bytes.  Output is for people: timings vary run to run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "../../dequant/dq.h"
#include "bench_util.h"
#include "../../common/banned.h"

static unsigned long long parse_ull(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == 0 || *end != 0) {
        fprintf(stderr, "bench_dq: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

static volatile float sink;

int main(int argc, char **argv)
{
    int64_t n = 4 << 20;
    int reps = 5, argi = 1;
    uint32_t s = 0x2545F491u;

    while (argi < argc && argv[argi][0] == '-') {
        if (strcmp(argv[argi], "-n") == 0 && argi + 1 < argc)
            n = (int64_t)parse_ull(argv[++argi]);
        else if (strcmp(argv[argi], "-r") == 0 && argi + 1 < argc)
            reps = (int)parse_ull(argv[++argi]);
        else {
            fprintf(stderr, "usage: bench_dq [-n ELEMENTS] [-r REPEATS] [TYPE...]\n");
            return 2;
        }
        argi++;
    }
    n = (n + 255) / 256 * 256;
    if (reps < 1)
        reps = 1;

    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4), *z = malloc((size_t)n * 4);
    uint8_t *src = malloc((size_t)n * 8 + 8);
    if (!x || !y || !z || !src) {
        fprintf(stderr, "bench_dq: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = sinf((float)i * 0.01f) + (float)((int)(i * 2654435761u >> 20) % 100) * 0.01f;
    memset(y, 1, (size_t)n * 4);
    memset(z, 2, (size_t)n * 4);

    printf("dequantization, %lld elements, 1 thread, best of %d; GB/s of f32 written\n",
           (long long)n, reps);
    printf("%-12s %6s %9s %9s %9s %8s %8s\n", "type", "isa", "scalar", "fast", "memcpy",
           "f/memcpy", "f/scalar");
    for (int dt = 0; dt < DT_COUNT; dt++) {
        const struct dq_traits *tr = dq_get(dt);
        struct err e = ERR_INIT;
        uint64_t nb;
        if (!tr || !tr->to_f32_ref)
            continue;
        if (argi < argc) {
            int want = 0;
            for (int k = argi; k < argc; k++)
                want |= dtype_from_name(argv[k]) == dt;
            if (!want)
                continue;
        }
        if (dtype_nbytes(dt, n, &nb, &e))
            continue;
        if (tr->quantize && dt != DT_F32) {
            dq_quantize(dt, x, src, n / 256, 256, &e);
        } else {
            for (uint64_t i = 0; i < nb; i++) {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                src[i] = (uint8_t)s;
            }
            if (dt == DT_F32)
                memcpy(src, x, (size_t)n * 4);
        }
        double best[3] = { 1e30, 1e30, 1e30 };
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
            dq_to_f32_ref(dt, src, nb, y, n, 1, &e);
            double t1 = bench_now();
            dq_to_f32(dt, src, nb, y, n, 1, &e);
            double t2 = bench_now();
            memcpy(z, y, (size_t)n * 4);
            double t3 = bench_now();
            sink = y[n / 2] + z[n / 3];
            if (t1 - t0 < best[0]) best[0] = t1 - t0;
            if (t2 - t1 < best[1]) best[1] = t2 - t1;
            if (t3 - t2 < best[2]) best[2] = t3 - t2;
        }
        if (!err_ok(&e)) {
            fprintf(stderr, "bench_dq: %s: %s\n", tr->info->name, e.msg);
            return 1;
        }
        double bytes = (double)n * 4, g[3];
        for (int k = 0; k < 3; k++)
            g[k] = bytes / best[k] * 1e-9;
        printf("%-12s %6s %9.2f %9.2f %9.2f %8.2f %8.2f\n", tr->info->name, tr->fast_isa, g[0],
               g[1], g[2], g[1] / g[2], g[1] / g[0]);
    }
    free(x);
    free(y);
    free(z);
    free(src);
    return 0;
}
