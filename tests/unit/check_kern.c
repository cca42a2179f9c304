/*
 * check_kern.c - the runtime's thread pool and matmul kernels (runtime/pool.h,
 * runtime/matmul.h, runtime/kern*.c).
 *
 *   pool       every part runs exactly once, for 1..5 threads and any part count; jobs
 *              back to back: no part runs after its job returned
 *   matmul     every dtype with an f32 value against a double-precision reference
 *              computed from the dequant library's scalar output (bounds below)
 *   threads    results are bit-identical for 1, 2 and 3 threads
 *   multi      rt_matmul_n gives each weight rt_matmul's bits (mixed types, 0 rows)
 *   epi        rt_matmul_epi: rt_matmul's bits, then the epilogue once on every row
 *   dec parts  one token's guided parts (large first, cut at each weight's end) cover
 *              every row once: the prompt path's bits for the same token
 *   rows       rt_mat_row equals dq_to_f32_ref row by row (APR_Q4/APR_Q8 odd rows too)
 *   errors     C64, rows that are not whole blocks
 *   twins      SIMD dot, matrix (gemm) and decode (dec) kernels give the scalar twin's bits
 */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../dequant/dq.h"
#include "../../formats/dtype.h"
#include "../../runtime/kern.h"
#include "../../runtime/matmul.h"
#include "../../runtime/pool.h"
#include "../../runtime/silu.h"
#include "tu.h"
#include "../../common/banned.h"

static uint32_t rng = 0x12345678u;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* uniform in [-1, 1) */
static float frnd(void)
{
    return (float)((double)rnd() / 2147483648.0 - 1.0);
}

/* ---------------------------------------------------------------------------------
 * pool
 */

struct count_ctx {
    atomic_int hits[257];
    atomic_int bad_n;
    int        n;
};

static void count_part(void *ctx, int i, int n)
{
    struct count_ctx *c = ctx;
    if (n != c->n || i < 0 || i >= n)
        atomic_fetch_add(&c->bad_n, 1);
    else
        atomic_fetch_add(&c->hits[i], 1);
}

START_TEST(test_pool_parts)
{
    for (int th = 1; th <= 5; th++) {
        struct rt_pool *p = NULL;
        struct err e = ERR_INIT;
        ck_assert_int_eq(rt_pool_create(&p, th, &e), 0);
        ck_assert_int_eq(rt_pool_threads(p), th);
        static const int ns[] = { 1, 2, 3, 7, 64, 257 };
        for (int round = 0; round < 50; round++) {
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                struct count_ctx c;
                memset(&c, 0, sizeof c);
                c.n = ns[k];
                rt_pool_run(p, count_part, &c, ns[k]);
                ck_assert_int_eq(atomic_load(&c.bad_n), 0);
                for (int i = 0; i < ns[k]; i++)
                    ck_assert_msg(atomic_load(&c.hits[i]) == 1, "threads %d n %d part %d ran %d times",
                                  th, ns[k], i, atomic_load(&c.hits[i]));
            }
        }
        /* n <= 0: one part per thread */
        struct count_ctx c;
        memset(&c, 0, sizeof c);
        c.n = th;
        rt_pool_run(p, count_part, &c, 0);
        for (int i = 0; i < th; i++)
            ck_assert_int_eq(atomic_load(&c.hits[i]), 1);
        rt_pool_free(p);
    }
    /* NULL pool runs inline */
    struct count_ctx c;
    memset(&c, 0, sizeof c);
    c.n = 3;
    rt_pool_run(NULL, count_part, &c, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(atomic_load(&c.hits[i]), 1);
    rt_pool_free(NULL);
}
END_TEST

/* Jobs back to back, parts of uneven length: every part runs once, while its job is
 * running (never after rt_pool_run returned: a late thread must find the job over) */
struct live_ctx {
    atomic_int hits[64];
    atomic_int bad;
    atomic_int live;
    int        n;
};

static void live_part(void *ctx, int i, int n)
{
    struct live_ctx *c = ctx;
    volatile unsigned x = 0;

    if (!atomic_load(&c->live) || n != c->n || i < 0 || i >= n) {
        atomic_fetch_add(&c->bad, 1);
        return;
    }
    for (unsigned k = 0; k < (unsigned)(i * 37 % 11) * 200; k++)
        x += k;
    atomic_fetch_add(&c->hits[i], 1);
}

START_TEST(test_pool_back_to_back)
{
    static const int ns[] = { 2, 3, 5, 17, 64 };
    struct live_ctx *c = calloc(2, sizeof *c);

    ck_assert_ptr_nonnull(c);
    for (int th = 2; th <= 4; th++) {
        struct rt_pool *p = NULL;
        struct err e = ERR_INIT;
        ck_assert_int_eq(rt_pool_create(&p, th, &e), 0);
        for (int r = 0; r < 3000; r++) {
            struct live_ctx *cur = &c[r & 1], *prev = &c[(r & 1) ^ 1];
            int n = ns[r % 5];
            memset(cur, 0, sizeof *cur);
            cur->n = n;
            atomic_store(&cur->live, 1);
            rt_pool_run(p, live_part, cur, n);
            atomic_store(&cur->live, 0);
            for (int i = 0; i < n; i++)
                ck_assert_msg(atomic_load(&cur->hits[i]) == 1, "threads %d job %d part %d ran %d times",
                              th, r, i, atomic_load(&cur->hits[i]));
            if (r)
                for (int i = 0; i < prev->n; i++)
                    ck_assert_msg(atomic_load(&prev->hits[i]) == 1 && !atomic_load(&prev->bad),
                                  "threads %d job %d: a part ran after its job returned", th, r - 1);
            ck_assert_int_eq(atomic_load(&cur->bad), 0);
        }
        rt_pool_free(p);
    }
    free(c);
}
END_TEST

START_TEST(test_pool_default_threads)
{
    struct rt_pool *p = NULL;
    struct err e = ERR_INIT;
    ck_assert_int_eq(rt_pool_create(&p, 0, &e), 0);
    ck_assert_int_ge(rt_pool_threads(p), 1);
    rt_pool_free(p);
}
END_TEST

START_TEST(test_pool_scratch)
{
    struct rt_pool *p = NULL;
    struct err e = ERR_INIT;
    ck_assert_ptr_null(rt_pool_scratch(NULL, 16));
    ck_assert_int_eq(rt_pool_create(&p, 2, &e), 0);
    uint8_t *a = rt_pool_scratch(p, 1000);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq((uintptr_t)a % 64, 0);
    memset(a, 1, 1000);
    ck_assert_ptr_eq(rt_pool_scratch(p, 500), a);     /* reused, not reallocated */
    ck_assert_ptr_eq(rt_pool_scratch(p, 1000), a);
    uint8_t *b = rt_pool_scratch(p, 100000);          /* grows */
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq((uintptr_t)b % 64, 0);
    memset(b, 2, 100000);
    ck_assert_ptr_eq(rt_pool_scratch(p, 100001), b);  /* with room to spare */
    rt_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------------------------
 * matmul against double precision
 */

struct mat {
    int      dt;
    int64_t  rows, cols;
    uint8_t *data;
    size_t   nbytes;
    float   *wf;   /* the dequant library's scalar values */
};

static int quantizable(int dt)
{
    const struct dq_traits *tr = dq_get(dt);
    return tr && tr->quantize;
}

/* A weight of dt: quantized from random floats when we can produce dt, else random
 * bytes (then some rows may decode to Inf/NaN: callers skip those rows). */
static void mat_make(struct mat *m, int dt, int64_t rows, int64_t cols)
{
    struct err e = ERR_INIT;
    uint64_t nb = 0;

    m->dt = dt;
    m->rows = rows;
    m->cols = cols;
    ck_assert_int_eq(dtype_nbytes(dt, rows * cols, &nb, &e), 0);
    m->nbytes = (size_t)nb;
    m->data = malloc(m->nbytes + 1);
    m->wf = malloc((size_t)(rows * cols) * sizeof(float));
    ck_assert(m->data && m->wf);
    if (quantizable(dt)) {
        float *src = malloc((size_t)(rows * cols) * sizeof(float));
        ck_assert_ptr_nonnull(src);
        for (int64_t i = 0; i < rows * cols; i++)
            src[i] = frnd() * (1.0f + (float)(i % 7));
        ck_assert_msg(dq_quantize(dt, src, m->data, rows, cols, &e) == 0, "%s: %s",
                      dtype_name(dt), e.msg);
        free(src);
    } else {
        /* random blocks; a block that decodes to Inf/NaN or beyond 1e30 is drawn again
         * (random f16 scales and f64 values often do), so the products stay finite */
        const struct dq_traits *tr = dq_get(dt);
        int64_t nblk = rows * cols / tr->blck;
        float *tmp = malloc(tr->blck * sizeof(float));
        ck_assert_ptr_nonnull(tmp);
        for (int64_t b = 0; b < nblk; b++) {
            uint8_t *blk = m->data + (size_t)b * tr->type_size;
            for (int tries = 0;; tries++) {
                int ok = 1;
                ck_assert_int_lt(tries, 1000);
                for (uint32_t i = 0; i < tr->type_size; i++)
                    blk[i] = (uint8_t)rnd();
                if (dt == DT_APR_Q8 || dt == DT_APR_Q4)
                    break;
                tr->to_f32_ref(blk, tmp, tr->blck);
                for (uint32_t i = 0; i < tr->blck; i++)
                    if (!isfinite(tmp[i]) || fabsf(tmp[i]) > 1e30f)
                        ok = 0;
                if (ok)
                    break;
            }
        }
        if (dt == DT_APR_Q8) {      /* one f32 scale for the tensor: make it sane */
            float s = 0.01f;
            memcpy(m->data, &s, 4);
        }
        free(tmp);
    }
    ck_assert_msg(dq_to_f32_ref(dt, m->data, m->nbytes, m->wf, rows * cols, 1, &e) == 0,
                  "%s: %s", dtype_name(dt), e.msg);
}

static void mat_free(struct mat *m)
{
    free(m->data);
    free(m->wf);
}

static int row_finite(const struct mat *m, int64_t r)
{
    for (int64_t c = 0; c < m->cols; c++)
        if (!isfinite(m->wf[r * m->cols + c]) || fabsf(m->wf[r * m->cols + c]) > 1e30f)
            return 0;
    return 1;
}

/*
 * The bound, relative to L1 = sum_c |W[r][c] * x[c]| (the scale a float dot's rounding
 * error follows):
 *   f32 activations (F32/F16/BF16 kernels, the generic path): 1e-5.  f32 sums of up
 *     to 8192 terms in 8..16 lanes: measured worst 2e-7 over this test's shapes.
 *   Q8_0 / Q8_1 / Q8_K activations: 1.5e-2.  An int8 activation is off by at most half
 *     a step, d/2 = amax/254 per element; with amax <= 2 mean|x| typical for these
 *     inputs the bound is amax/254 * sum|W| ~ 1/127 L1 worst case; measured worst 4e-3.
 */
static double bound_rel(int dt)
{
    const struct rt_kern *k = rt_kern_get(dt, RT_ISA_AVX512);
    return (k && k->act != RT_ACT_F32) ? 8e-3 : 2e-6;
}

static void check_matmul(int dt, int64_t rows, int64_t cols, int64_t n_tok, struct rt_pool *p)
{
    struct mat m;
    struct rt_mat w;
    struct err e = ERR_INIT;
    float *x = malloc((size_t)(n_tok * cols) * sizeof(float));
    float *y = malloc((size_t)(n_tok * rows) * sizeof(float));
    int64_t checked = 0;
    double worst = 0;

    ck_assert(x && y);
    mat_make(&m, dt, rows, cols);
    for (int64_t i = 0; i < n_tok * cols; i++)
        x[i] = frnd();
    ck_assert_msg(rt_mat_init(&w, dt, rows, cols, m.data, &e) == 0, "%s: %s", dtype_name(dt),
                  e.msg);
    ck_assert_msg(rt_matmul(p, &w, x, n_tok, y, &e) == 0, "%s: %s", dtype_name(dt), e.msg);
    for (int64_t r = 0; r < rows; r++) {
        if (!row_finite(&m, r))
            continue;
        for (int64_t t = 0; t < n_tok; t++) {
            double ref = 0, l1 = 0;
            for (int64_t c = 0; c < cols; c++) {
                double pr = (double)m.wf[r * cols + c] * (double)x[t * cols + c];
                ref += pr;
                l1 += fabs(pr);
            }
            double got = y[t * rows + r];
            double rel = l1 > 0 ? fabs(got - ref) / l1 : fabs(got - ref);
            if (rel > worst)
                worst = rel;
            ck_assert_msg(rel <= bound_rel(dt), "%s [%lld x %lld] row %lld tok %lld: %.9g vs %.9g (rel %.3g)",
                          dtype_name(dt), (long long)rows, (long long)cols, (long long)r,
                          (long long)t, got, ref, rel);
            checked++;
        }
    }
    ck_assert_msg(checked > 0, "%s: no finite row to check", dtype_name(dt));
    if (getenv("CHECK_KERN_VERBOSE"))   /* how the bounds below were measured */
        printf("kern: %-10s [%lld x %lld] x %lld: worst rel error %.3g (%s)\n", dtype_name(dt),
               (long long)rows, (long long)cols, (long long)n_tok, worst, rt_matmul_isa());
    mat_free(&m);
    free(x);
    free(y);
}

/* Every ggml / SafeTensors / APR type with an f32 value. */
static int has_value(int dt)
{
    const struct dq_traits *tr = dq_get(dt);
    return tr && tr->to_f32_ref && dt != DT_Q8_K;   /* Q8_K: an intermediate, no tensor */
}

START_TEST(test_matmul_all_types)
{
    struct rt_pool *p = NULL;
    struct err e = ERR_INIT;
    ck_assert_int_eq(rt_pool_create(&p, 2, &e), 0);
    for (int dt = 0; dt < DT_COUNT; dt++) {
        if (!has_value(dt))
            continue;
        const struct dq_traits *tr = dq_get(dt);
        int64_t blck = tr->blck < 256 ? 256 : tr->blck;
        check_matmul(dt, 37, blck * 2, 1, p);      /* decode */
        check_matmul(dt, 19, blck, 11, p);         /* prompt: tiles of tokens + a tail */
    }
    rt_pool_free(p);
}
END_TEST

START_TEST(test_matmul_long_rows)
{
    /* rows longer than RT_GENERIC_CHUNK: chunked generic path and long SIMD loops */
    static const int dts[] = { DT_F32, DT_F16, DT_Q4_0, DT_Q4_K, DT_Q6_K, DT_Q8_0, DT_IQ2_XS };
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++)
        check_matmul(dts[i], 5, RT_GENERIC_CHUNK * 2 + 512, 3, NULL);
}
END_TEST

START_TEST(test_matmul_threads_bitexact)
{
    static const int dts[] = { DT_F32, DT_F16, DT_BF16, DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1,
                               DT_Q8_0, DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K,
                               DT_IQ4_NL, DT_IQ4_XS, DT_IQ3_S, DT_F8_E4M3 };
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        struct mat m;
        struct rt_mat w;
        struct err e = ERR_INIT;
        int64_t rows = 203, cols = 512, nt = 13;
        float *x = malloc((size_t)(nt * cols) * sizeof(float));
        float *y[3];
        ck_assert_ptr_nonnull(x);
        mat_make(&m, dts[i], rows, cols);
        for (int64_t k = 0; k < nt * cols; k++)
            x[k] = frnd();
        ck_assert_int_eq(rt_mat_init(&w, dts[i], rows, cols, m.data, &e), 0);
        for (int th = 1; th <= 3; th++) {
            struct rt_pool *p = NULL;
            y[th - 1] = malloc((size_t)(nt * rows) * sizeof(float));
            ck_assert_ptr_nonnull(y[th - 1]);
            ck_assert_int_eq(rt_pool_create(&p, th, &e), 0);
            ck_assert_int_eq(rt_matmul(p, &w, x, nt, y[th - 1], &e), 0);
            rt_pool_free(p);
        }
        ck_assert_msg(!memcmp(y[0], y[1], (size_t)(nt * rows) * sizeof(float)) &&
                      !memcmp(y[0], y[2], (size_t)(nt * rows) * sizeof(float)),
                      "%s: results depend on the thread count", dtype_name(dts[i]));
        /* and on the token count: token t alone gives the same bits as in the batch */
        float *y1 = malloc((size_t)rows * sizeof(float));
        ck_assert_ptr_nonnull(y1);
        for (int64_t t = 0; t < nt; t += 5) {
            ck_assert_int_eq(rt_matmul(NULL, &w, x + t * cols, 1, y1, &e), 0);
            ck_assert_msg(!memcmp(y1, y[0] + t * rows, (size_t)rows * sizeof(float)),
                          "%s: token %lld alone differs from the batch", dtype_name(dts[i]),
                          (long long)t);
        }
        /* and with the rows repacked for decode (rt_mat_pack8: AVX2 Q4_K, Q6_K, Q8_0), in parts
         * of groups written by separate calls, on 1 to 3 threads */
        size_t pb = rt_mat_pack8_bytes(&w);
        if ((dts[i] == DT_Q4_K || dts[i] == DT_Q6_K || dts[i] == DT_Q8_0) &&
            !strcmp(rt_matmul_isa(), "avx2"))
            ck_assert_msg(pb > 0, "%s: no repacked decode kernel on AVX2", dtype_name(dts[i]));
        if (pb) {
            uint8_t *pk = malloc(pb);
            ck_assert_ptr_nonnull(pk);
            ck_assert_uint_eq(pb, rt_mat_pack8_stride(&w) * (size_t)((rows + 7) / 8));
            rt_mat_pack8(&w, pk, 0, 10);
            rt_mat_pack8(&w, pk, 10, (rows + 7) / 8);
            w.x8 = pk;
            w.x8_stride = rt_mat_pack8_stride(&w);
            for (int th = 1; th <= 3; th++) {
                struct rt_pool *p = NULL;
                ck_assert_int_eq(rt_pool_create(&p, th, &e), 0);
                for (int64_t t = 0; t < nt; t += 4) {
                    memset(y1, 0, (size_t)rows * sizeof(float));
                    ck_assert_int_eq(rt_matmul(p, &w, x + t * cols, 1, y1, &e), 0);
                    ck_assert_msg(!memcmp(y1, y[0] + t * rows, (size_t)rows * sizeof(float)),
                                  "%s: token %lld on the repacked rows (%d threads) differs",
                                  dtype_name(dts[i]), (long long)t, th);
                }
                rt_pool_free(p);
            }
            free(pk);
        }
        free(y1);
        for (int th = 0; th < 3; th++)
            free(y[th]);
        free(x);
        mat_free(&m);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------
 * SIMD kernels against their scalar twins
 */

/* F32/F16/BF16 kernels use wider FMA lanes than the scalar twin: bound relative to
 * sum |w * x|, measured worst 1.2e-7 (n up to 4096 + tail); quantized kernels and the
 * activation quantizers must match to the bit. */
#define FP_TWIN_REL 1e-6

static int is_fp(int dt) { return dt == DT_F32 || dt == DT_F16 || dt == DT_BF16; }

START_TEST(test_twins)
{
    static const int dts[] = { DT_F32, DT_F16, DT_BF16, DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1,
                               DT_Q8_0, DT_IQ4_NL, DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K,
                               DT_IQ4_XS };
    static const int64_t ns[] = { 256, 512, 2048, 4096 + 256, 11 * 256 };
    int nisa = 0;
    for (int isa = RT_ISA_AVX2; isa <= (int)rt_isa_best(); isa++) {
        for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
            const struct rt_kern *ks = rt_kern_get(dts[i], RT_ISA_SCALAR);
            const struct rt_kern *kv = rt_kern_get(dts[i], (enum rt_isa)isa);
            ck_assert_msg(ks && kv, "%s: no kernel", dtype_name(dts[i]));
            ck_assert_msg((int)kv->isa == isa || isa > RT_ISA_AVX2, "%s: isa %d has no kernel",
                          dtype_name(dts[i]), isa);
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                int64_t n = ns[k] + (is_fp(dts[i]) ? 7 : 0);   /* fp: a scalar tail too */
                int nt = 5;
                struct mat m;
                mat_make(&m, dts[i], 1, n);
                float *x = malloc((size_t)(n * nt) * sizeof(float));
                ck_assert_ptr_nonnull(x);
                for (int64_t j = 0; j < n * nt; j++)
                    x[j] = frnd() * ((j % 97) == 0 ? 30.0f : 1.0f);
                size_t arb = rt_act_row_bytes(ks->act, n);
                uint8_t *as = malloc(arb * nt), *av = malloc(arb * nt);
                ck_assert(as && av);
                if (ks->act == RT_ACT_F32) {
                    memcpy(as, x, arb * nt);
                    memcpy(av, x, arb * nt);
                } else {
                    for (int t = 0; t < nt; t++) {
                        rt_kern_quant(ks->act, RT_ISA_SCALAR)(x + t * n, as + t * arb, n);
                        rt_kern_quant(ks->act, (enum rt_isa)isa)(x + t * n, av + t * arb, n);
                    }
                    ck_assert_msg(!memcmp(as, av, arb * nt), "%s: quantizer %d differs at isa %d",
                                  dtype_name(dts[i]), ks->act, isa);
                }
                float ys[5], yv[5], y1;
                ks->dot(n, m.data, as, arb, nt, ys, 1);
                kv->dot(n, m.data, av, arb, nt, yv, 1);
                for (int t = 0; t < nt; t++) {
                    /* one token alone gives the same bits as in the tile */
                    kv->dot(n, m.data, av + t * arb, arb, 1, &y1, 1);
                    ck_assert_msg(!memcmp(&y1, &yv[t], 4), "%s: tile vs alone", dtype_name(dts[i]));
                    if (is_fp(dts[i])) {
                        double l1 = 0;
                        for (int64_t j = 0; j < n; j++)
                            l1 += fabs((double)m.wf[j] * x[t * n + j]);
                        ck_assert_msg(fabs((double)ys[t] - yv[t]) <= FP_TWIN_REL * l1,
                                      "%s n %lld: %.9g vs %.9g", dtype_name(dts[i]), (long long)n,
                                      ys[t], yv[t]);
                    } else {
                        ck_assert_msg(!memcmp(&ys[t], &yv[t], 4),
                                      "%s n %lld isa %d tok %d: simd %.9g scalar %.9g",
                                      dtype_name(dts[i]), (long long)n, isa, t, yv[t], ys[t]);
                    }
                }
                free(as);
                free(av);
                free(x);
                mat_free(&m);
            }
        }
        nisa++;
    }
    if (nisa == 0)
        printf("skip: check_kern: no SIMD instruction set on this CPU: twins not compared\n");
}
END_TEST

/* test_gemm_vs_dot at one instruction set: the types with a matrix kernel there */
static int gemm_vs_dot_isa(enum rt_isa isa)
{
    /* a tail of blocks past the last group of 16, several column blocks (8 groups), a row
     * so long that kern_qgemm_avx2.c's legacy kernels take the tokens in slabs (over
     * 8192 columns); rows of fewer blocks than one group of 8 (5) and of one group and
     * a tail (13) for its block-lane kernel */
    static const int64_t ns[] = { 16, 32 * 5, 32 * 13, 256 + 7, 512, 1024 + 16 + 3, 2048,
                                  32 * (16 * 9 + 5), 32 * 347 };
    static const int nts[] = { 1, 2, 3, 4, 5, 6, 7, 8, 11, RT_GEMM_MAXT - 1, RT_GEMM_MAXT };
    int ngemm = 0;
    for (int dt = 0; dt < RT_NKERN; dt++) {
        const struct rt_kern *k = rt_kern_get(dt, isa);
        if (!k || !k->gemm)
            continue;
        ngemm++;
        for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++) {
            int64_t n = ns[in];
            int rows = 19;
            struct mat m;
            if (n % rt_act_blck(k->act) || !dtype_row_ok(dt, n))
                continue;
            mat_make(&m, dt, rows, n);
            if (dt == DT_Q8_0)   /* -128, which the quantizer never writes: |w| is 128 */
                for (size_t b = 0; b < m.nbytes / sizeof(struct block_q8_0); b += 3)
                    for (int i = (int)(b % 5); i < 32; i += 7)
                        ((struct block_q8_0 *)m.data)[b].qs[i] = INT8_MIN;
            /* the largest sums of the byte kernels (kern_qgemm_avx2.c adds Q4_0's and
             * Q5_0's int16 pair sums before widening): every 4th block all at the top
             * value (with tokens 1 and 2 below all +127 and -127) */
            if (dt == DT_Q4_0)
                for (size_t b = 0; b < m.nbytes / sizeof(struct block_q4_0); b += 4)
                    memset(((struct block_q4_0 *)m.data)[b].qs, 0xff, 16);
            if (dt == DT_Q5_0)
                for (size_t b = 0; b < m.nbytes / sizeof(struct block_q5_0); b += 4) {
                    memset(((struct block_q5_0 *)m.data)[b].qs, 0xff, 16);
                    memset(((struct block_q5_0 *)m.data)[b].qh, 0xff, 4);
                }
            if (dt == DT_Q4_1)
                for (size_t b = 0; b < m.nbytes / sizeof(struct block_q4_1); b += 4)
                    memset(((struct block_q4_1 *)m.data)[b].qs, 0xff, 16);
            if (dt == DT_Q5_1)
                for (size_t b = 0; b < m.nbytes / sizeof(struct block_q5_1); b += 4) {
                    memset(((struct block_q5_1 *)m.data)[b].qs, 0xff, 16);
                    memset(((struct block_q5_1 *)m.data)[b].qh, 0xff, 4);
                }
            /* dot reads k->act, gemm k->gemm_act (the same values in its own layout) */
            size_t rb = m.nbytes / (size_t)rows, arb = rt_act_row_bytes(k->act, n);
            size_t grb = rt_act_row_bytes(k->gemm_act, n);
            float *x = malloc((size_t)n * RT_GEMM_MAXT * sizeof(float));
            uint8_t *act = malloc(arb * RT_GEMM_MAXT), *gact = malloc(grb * RT_GEMM_MAXT);
            float *yg = malloc((size_t)rows * RT_GEMM_MAXT * sizeof(float));
            ck_assert(x && act && gact && yg);
            for (int64_t j = 0; j < n * RT_GEMM_MAXT; j++)
                x[j] = frnd() * ((j % 97) == 0 ? 30.0f : 1.0f);
            for (int64_t j = 0; j < n; j++) {
                x[n + j] = 1.0f;
                x[2 * n + j] = -1.0f;
            }
            for (int t = 0; t < RT_GEMM_MAXT; t++) {
                if (k->act == RT_ACT_F32)
                    memcpy(act + t * arb, x + t * n, arb);
                else
                    rt_kern_quant(k->act, isa)(x + t * n, act + t * arb, n);
                if (k->gemm_act == RT_ACT_F32)
                    memcpy(gact + t * grb, x + t * n, grb);
                else
                    rt_kern_quant(k->gemm_act, isa)(x + t * n, gact + t * grb, n);
            }
            for (size_t it = 0; it < sizeof nts / sizeof nts[0]; it++) {
                int nt = nts[it];
                for (int r0 = 0; r0 < rows; r0 += 13) {   /* 13 rows, then 6 */
                    int nr = rows - r0 < 13 ? rows - r0 : 13;
                    memset(yg, 0xff, (size_t)rows * RT_GEMM_MAXT * sizeof(float));
                    k->gemm(n, m.data + (size_t)r0 * rb, rb, nr, gact, grb, nt, yg, (size_t)rows);
                    for (int t = 0; t < nt; t++)
                        for (int r = 0; r < nr; r++) {
                            float y1;
                            k->dot(n, m.data + (size_t)(r0 + r) * rb, act + t * arb, arb, 1, &y1, 1);
                            ck_assert_msg(!memcmp(&y1, &yg[(size_t)t * rows + r], 4),
                                          "%s isa %d n %lld nt %d row %d tok %d: gemm %.9g dot %.9g",
                                          dtype_name(dt), (int)isa, (long long)n, nt, r0 + r, t,
                                          yg[(size_t)t * rows + r], y1);
                        }
                }
            }
            free(x);
            free(act);
            free(gact);
            free(yg);
            mat_free(&m);
        }
    }
    return ngemm;
}

/* Matrix kernels (kern.h's gemm: several rows x several tokens, the prompt path) give
 * every output the bits of the one-row dot of the same kernel, for row counts that are
 * not whole register tiles, 1..RT_GEMM_MAXT tokens, and rows of several column blocks
 * with a scalar tail. */
START_TEST(test_gemm_vs_dot)
{
    int ngemm = 0;
    if (rt_isa_best() == RT_ISA_AVX512) {   /* the types that have one there */
        static const int want[] = { DT_F32, DT_F16, DT_BF16, DT_Q4_0, DT_Q5_0, DT_Q8_0,
                                    DT_IQ4_NL, DT_Q4_K, DT_Q6_K };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            ck_assert_msg(rt_kern_get(want[i], RT_ISA_AVX512)->gemm, "%s: no matrix kernel",
                          dtype_name(want[i]));
    }
    if (rt_isa_best() >= RT_ISA_AVX2) {   /* the AVX2 ones: kern_fp_avx2.c, kern_qgemm_avx2.c */
        static const int want[] = { DT_F32, DT_F16, DT_BF16, DT_Q4_0, DT_Q5_0, DT_Q8_0,
                                    DT_IQ4_NL, DT_Q4_1, DT_Q5_1, DT_Q2_K, DT_Q3_K,
                                    DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_IQ4_XS };
        /* the block-lane kernels (kern_qgemm_avx2.c) on their own activations */
        static const int want_x8[] = { DT_Q4_0, DT_Q5_0, DT_Q8_0, DT_IQ4_NL, DT_Q4_1, DT_Q5_1 };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            ck_assert_msg(rt_kern_get(want[i], RT_ISA_AVX2)->gemm, "%s: no matrix kernel",
                          dtype_name(want[i]));
        for (size_t i = 0; i < sizeof want_x8 / sizeof want_x8[0]; i++)
            ck_assert_msg(rt_kern_get(want_x8[i], RT_ISA_AVX2)->gemm_act ==
                          (want_x8[i] == DT_Q4_1 || want_x8[i] == DT_Q5_1 ? RT_ACT_Q8_1X4 :
                           want_x8[i] == DT_Q4_0 || want_x8[i] == DT_Q5_0 ? RT_ACT_Q8_0X4 :
                           RT_ACT_Q8_0X8),
                          "%s: not the block-lane matrix kernel", dtype_name(want_x8[i]));
    }
    /* every instruction set the CPU has, so an AVX-512 machine also checks the AVX2 kernels */
    for (int isa = RT_ISA_AVX2; isa <= (int)rt_isa_best(); isa++)
        ngemm += gemm_vs_dot_isa((enum rt_isa)isa);
    if (ngemm == 0)
        printf("skip: check_kern: no matrix kernel on this CPU: gemm not compared\n");
}
END_TEST

/* test_dec_vs_dot at one instruction set: the types with a decode kernel there */
static int ndec8;   /* repacked decode kernels (dec8) compared */
static int dec_vs_dot_isa(enum rt_isa isa)
{
    static const int64_t ns[] = { 256, 512, 2048, 32 * (16 * 3 + 5), 32 * 7, 5632, 256 * 11 };
    int ndec = 0;
    for (int dt = 0; dt < RT_NKERN; dt++) {
        const struct rt_kern *k = rt_kern_get(dt, isa), *ks = rt_kern_get(dt, RT_ISA_SCALAR);
        if (!k || !k->dec)
            continue;
        ndec++;
        for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++) {
            int64_t n = ns[in];
            int rows = 11, nt = 2;
            struct mat m;
            if (n % rt_act_blck(k->dec_act) || n % rt_act_blck(ks->act) || !dtype_row_ok(dt, n))
                continue;
            mat_make(&m, dt, rows, n);
            size_t rb = m.nbytes / (size_t)rows, srb = rt_act_row_bytes(ks->act, n);
            size_t drb = rt_act_row_bytes(k->dec_act, n);
            float *x = malloc((size_t)(n * nt) * sizeof(float)), ys[11 * 2], yd[11 * 2];
            uint8_t *sact = malloc(srb * nt), *dact = malloc(drb * nt), *dref = malloc(drb * nt);
            ck_assert(x && sact && dact && dref);
            for (int64_t j = 0; j < n * nt; j++)
                x[j] = frnd() * ((j % 97) == 0 ? 30.0f : 1.0f);
            for (int t = 0; t < nt; t++) {
                rt_kern_quant(ks->act, RT_ISA_SCALAR)(x + t * n, sact + t * srb, n);
                rt_kern_quant(k->dec_act, isa)(x + t * n, dact + t * drb, n);
                rt_kern_quant(k->dec_act, RT_ISA_SCALAR)(x + t * n, dref + t * drb, n);
                for (int r = 0; r < rows; r++)
                    ks->dot(n, m.data + (size_t)r * rb, sact + t * srb, srb, 1, &ys[t * rows + r], 1);
            }
            ck_assert_msg(!memcmp(dact, dref, drb * nt), "%s n %lld: quantizer %d differs from its twin",
                          dtype_name(dt), (long long)n, k->dec_act);
            for (int r0 = 0; r0 < rows; r0 += 7) {   /* 7 rows, then 4 */
                int nr = rows - r0 < 7 ? rows - r0 : 7;
                memset(yd, 0xff, sizeof yd);
                k->dec(n, m.data + (size_t)r0 * rb, rb, nr, dact, drb, nt, yd + r0, (size_t)rows);
                for (int t = 0; t < nt; t++)
                    for (int r = r0; r < r0 + nr; r++)
                        ck_assert_msg(!memcmp(&yd[t * rows + r], &ys[t * rows + r], 4),
                                      "%s isa %d n %lld row %d tok %d: dec %.9g scalar twin %.9g",
                                      dtype_name(dt), (int)isa, (long long)n, r, t, yd[t * rows + r],
                                      ys[t * rows + r]);
            }
            if (k->dec8 && n % k->pack8_n == 0) {
                /* repacked: 11 rows = a group of 8 and one of 3 (rows 11..15 repeat row
                 * 10, computed, not stored: the 0xff fill past row 10 stays) */
                size_t gs = (size_t)(n / k->pack8_n) * k->pack8_sb;
                uint8_t *pk = malloc(2 * gs);
                float yp[2][16];
                ck_assert(pk);
                k->pack8(n, m.data, rb, 8, pk);
                k->pack8(n, m.data + 8 * rb, rb, rows - 8, pk + gs);
                memset(yp, 0xff, sizeof yp);
                k->dec8(n, pk, gs, rows, dact, drb, nt, yp[0], 16);
                for (int t = 0; t < nt; t++) {
                    for (int r = 0; r < rows; r++)
                        ck_assert_msg(!memcmp(&yp[t][r], &ys[t * rows + r], 4),
                                      "%s isa %d n %lld row %d tok %d: dec8 %.9g scalar twin %.9g",
                                      dtype_name(dt), (int)isa, (long long)n, r, t, yp[t][r],
                                      ys[t * rows + r]);
                    for (int r = rows; r < 16; r++)
                        ck_assert_msg(((uint32_t *)yp[t])[r] == 0xffffffffu, "dec8 wrote row %d", r);
                }
                /* a single group of 3 rows, the pointer at it */
                memset(yp, 0xff, sizeof yp);
                k->dec8(n, pk + gs, gs, rows - 8, dact, drb, 1, yp[0], 16);
                for (int r = 8; r < rows; r++)
                    ck_assert(!memcmp(&yp[0][r - 8], &ys[r], 4));
                free(pk);
                ndec8++;
            }
            free(x);
            free(sact);
            free(dact);
            free(dref);
            mat_free(&m);
        }
    }
    return ndec;
}

/* Decode kernels (kern.h's dec: rows streamed once, one or a few tokens) give every
 * output the bits of the SCALAR twin's dot (kern_ref.c, the definition), on their own
 * activation format, whose SIMD quantizer must give the scalar quantizer's bytes; row
 * counts that are not multiples of 4, rows with a tail of blocks past the last group
 * of 16 (legacy types), two tokens. */
START_TEST(test_dec_vs_dot)
{
    enum rt_isa best = rt_isa_best();
    int ndec = 0;
    if (best == RT_ISA_AVX512) {   /* the types that have one there */
        static const int want[] = { DT_Q4_0, DT_Q5_0, DT_Q8_0, DT_IQ4_NL, DT_Q4_K, DT_Q5_K,
                                    DT_Q6_K, DT_IQ4_XS };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            ck_assert_msg(rt_kern_get(want[i], best)->dec, "%s: no decode kernel",
                          dtype_name(want[i]));
    }
    if (best >= RT_ISA_AVX2) {   /* kern_dec_avx2.c */
        static const int want[] = { DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0, DT_IQ4_NL,
                                    DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_IQ4_XS };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            ck_assert_msg(rt_kern_get(want[i], RT_ISA_AVX2)->dec, "%s: no decode kernel",
                          dtype_name(want[i]));
    }
    /* every instruction set the CPU has, so an AVX-512 machine also checks the AVX2 kernels */
    ndec8 = 0;
    for (int isa = RT_ISA_AVX2; isa <= (int)best; isa++)
        ndec += dec_vs_dot_isa((enum rt_isa)isa);
    if (best >= RT_ISA_AVX2)   /* Q4_K, Q6_K: 4 row lengths each (whole super-blocks); Q8_0 7 */
        ck_assert_int_ge(ndec8, 15);
    if (ndec == 0)
        printf("skip: check_kern: no decode kernel on this CPU: dec not compared\n");
}
END_TEST

START_TEST(test_quantizer_edges)
{
    /* zeros, a single spike, ties, large values: SIMD quantizers == scalar, byte for byte */
    float x[512];
    for (int c = 0; c < 6; c++) {
        for (int j = 0; j < 512; j++) {
            switch (c) {
            case 0: x[j] = 0; break;
            case 1: x[j] = j == 77 ? -5.0f : 0.0f; break;
            case 2: x[j] = (j & 1) ? 2.0f : -2.0f; break;
            case 3: x[j] = frnd() * 1e30f; break;
            case 4: x[j] = (float)(j % 33) - 16.0f; break;
            default: x[j] = frnd() * 1e-30f; break;
            }
        }
        for (int act = RT_ACT_Q8_0; act <= RT_ACT_Q8_K; act++) {
            uint8_t s[1024], v[1024];
            size_t nb = rt_act_row_bytes((enum rt_act)act, 512);
            ck_assert_uint_le(nb, sizeof s);
            rt_kern_quant((enum rt_act)act, RT_ISA_SCALAR)(x, s, 512);
            for (int isa = RT_ISA_AVX2; isa <= (int)rt_isa_best(); isa++) {
                rt_kern_quant((enum rt_act)act, (enum rt_isa)isa)(x, v, 512);
                ck_assert_msg(!memcmp(s, v, nb), "case %d act %d isa %d", c, act, isa);
            }
        }
    }
}
END_TEST

/* ---------------------------------------------------------------------------------
 * rows and errors
 */

START_TEST(test_mat_row)
{
    static const int dts[] = { DT_F32, DT_F16, DT_BF16, DT_Q4_K, DT_Q8_0, DT_IQ4_XS, DT_U8,
                               DT_APR_Q4, DT_APR_Q8 };
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        /* APR_Q4 / APR_Q8 with 45 columns: rows start inside blocks */
        int64_t cols = (dts[i] == DT_APR_Q4 || dts[i] == DT_APR_Q8) ? 45 : 512;
        int64_t rows = 9;
        struct mat m;
        struct rt_mat w;
        struct err e = ERR_INIT;
        float out[512];
        mat_make(&m, dts[i], rows, cols);
        ck_assert_msg(rt_mat_init(&w, dts[i], rows, cols, m.data, &e) == 0, "%s", e.msg);
        for (int64_t r = 0; r < rows; r++) {
            rt_mat_row(&w, r, out);
            ck_assert_msg(!memcmp(out, m.wf + r * cols, (size_t)cols * sizeof(float)),
                          "%s row %lld", dtype_name(dts[i]), (long long)r);
        }
        /* and the product of such odd rows */
        float x[45 * 2], y[9 * 2];
        if (cols == 45) {
            for (int k = 0; k < 90; k++)
                x[k] = frnd();
            ck_assert_int_eq(rt_matmul(NULL, &w, x, 2, y, &e), 0);
            for (int t = 0; t < 2; t++)
                for (int64_t r = 0; r < rows; r++) {
                    double ref = 0, l1 = 0;
                    for (int c = 0; c < 45; c++) {
                        ref += (double)m.wf[r * 45 + c] * x[t * 45 + c];
                        l1 += fabs((double)m.wf[r * 45 + c] * x[t * 45 + c]);
                    }
                    ck_assert(fabs(y[t * rows + r] - ref) <= 1e-5 * l1);
                }
        }
        mat_free(&m);
    }
}
END_TEST

/* rt_matmul_n: each product has the bits of rt_matmul alone, whatever the mix of types
 * (shared and separate activation formats, a weight of no rows), token count and pool */
START_TEST(test_matmul_n)
{
    static const int mix[][4] = {
        { DT_Q4_K, DT_Q4_K, DT_Q6_K, -1 },      /* Q4_K_M's q, k, v: one Q8_K conversion */
        { DT_F16, DT_Q8_0, DT_Q4_1, DT_IQ3_S }, /* F32, Q8_0, Q8_1 and the generic path */
        { DT_Q8_0, DT_Q4_0, -1, -1 },
    };
    static const int64_t rows[4] = { 203, 40, 24, 77 };
    const int64_t cols = 512;
    struct err e = ERR_INIT;

    for (size_t c = 0; c < sizeof mix / sizeof mix[0]; c++) {
        struct mat m[4];
        struct rt_mat w[4];
        const struct rt_mat *wp[4];
        float *y[4], *y1;
        int nw = 0;
        for (; nw < 4 && mix[c][nw] >= 0; nw++) {
            int64_t r = c == 2 && nw == 1 ? 0 : rows[nw] + (int64_t)c;   /* mix 2: 0 rows */
            mat_make(&m[nw], mix[c][nw], r ? r : 1, cols);
            ck_assert_int_eq(rt_mat_init(&w[nw], mix[c][nw], r, cols, m[nw].data, &e), 0);
            wp[nw] = &w[nw];
        }
        for (int nt = 1; nt <= 9; nt += 4) {
            float *x = malloc((size_t)(nt * cols) * sizeof(float));
            ck_assert_ptr_nonnull(x);
            for (int64_t k = 0; k < nt * cols; k++)
                x[k] = frnd();
            for (int th = 0; th <= 2; th += 2) {
                struct rt_pool *p = NULL;
                if (th)
                    ck_assert_int_eq(rt_pool_create(&p, th, &e), 0);
                for (int k = 0; k < nw; k++) {
                    y[k] = malloc((size_t)(nt * w[k].rows + 1) * sizeof(float));
                    ck_assert_ptr_nonnull(y[k]);
                }
                ck_assert_msg(rt_matmul_n(p, wp, nw, x, nt, y, &e) == 0, "%s", e.msg);
                for (int k = 0; k < nw; k++) {
                    y1 = malloc((size_t)(nt * w[k].rows + 1) * sizeof(float));
                    ck_assert_ptr_nonnull(y1);
                    ck_assert_int_eq(rt_matmul(NULL, &w[k], x, nt, y1, &e), 0);
                    ck_assert_msg(!memcmp(y1, y[k], (size_t)(nt * w[k].rows) * sizeof(float)),
                                  "mix %zu weight %d (%s) %d tokens %d threads: not rt_matmul's bits",
                                  c, k, dtype_name(w[k].dtype), nt, th);
                    free(y1);
                    free(y[k]);
                }
                rt_pool_free(p);
            }
            free(x);
        }
        for (int k = 0; k < nw; k++)
            mat_free(&m[k]);
    }
    /* errors: no weights, too many, different columns */
    {
        struct mat a, b;
        struct rt_mat wa, wb;
        float x[1024] = { 0 }, ya[64], yb[64];
        float *y2[2] = { ya, yb }, *y5[5] = { ya, ya, ya, ya, ya };
        mat_make(&a, DT_F32, 2, 512);
        mat_make(&b, DT_F32, 2, 256);
        ck_assert_int_eq(rt_mat_init(&wa, DT_F32, 2, 512, a.data, &e), 0);
        ck_assert_int_eq(rt_mat_init(&wb, DT_F32, 2, 256, b.data, &e), 0);
        const struct rt_mat *w2[2] = { &wa, &wb }, *w5[5] = { &wa, &wa, &wa, &wa, &wa };
        e = (struct err)ERR_INIT;
        ck_assert_int_eq(rt_matmul_n(NULL, w2, 2, x, 1, y2, &e), -1);
        ck_assert_int_eq(e.code, ERR_INTERNAL);
        e = (struct err)ERR_INIT;
        ck_assert_int_eq(rt_matmul_n(NULL, w2, 0, x, 1, y2, &e), -1);
        ck_assert_int_eq(e.code, ERR_INTERNAL);
        e = (struct err)ERR_INIT;
        ck_assert_int_eq(rt_matmul_n(NULL, w5, 5, x, 1, y5, &e), -1);
        ck_assert_int_eq(e.code, ERR_INTERNAL);
        mat_free(&a);
        mat_free(&b);
    }
}
END_TEST

/* rt_matmul_epi: the epilogue runs exactly once on each row, after every product of the
 * row is done (it sees rt_matmul's bits), for any token count and pool */
struct epi_chk {
    float         *y0, *y1;
    int64_t        rows, nt;
    unsigned char *seen;
};

static void epi_chk_rows(void *ud, int64_t r0, int64_t r1)
{
    const struct epi_chk *c = ud;

    for (int64_t r = r0; r < r1; r++) {
        c->seen[r]++;
        for (int64_t t = 0; t < c->nt; t++)
            c->y0[t * c->rows + r] = c->y0[t * c->rows + r] * 0.5f - c->y1[t * c->rows + r];
    }
}

START_TEST(test_matmul_epi)
{
    /* F16 + F32: a prompt's guided parts (matmul.c MM_PP_DIV) with the epilogue */
    static const int mix[][2] = { { DT_Q4_K, DT_Q6_K }, { DT_F16, DT_Q8_0 }, { DT_IQ3_S, DT_Q4_0 },
                                  { DT_F16, DT_F32 } };
    const int64_t cols = 512;
    struct err e = ERR_INIT;

    for (size_t c = 0; c < sizeof mix / sizeof mix[0]; c++) {
        const int64_t rows = 333 + 40 * (int64_t)c;
        struct mat m[2];
        struct rt_mat w[2];
        const struct rt_mat *wp[2] = { &w[0], &w[1] };
        for (int k = 0; k < 2; k++) {
            mat_make(&m[k], mix[c][k], rows, cols);
            ck_assert_int_eq(rt_mat_init(&w[k], mix[c][k], rows, cols, m[k].data, &e), 0);
        }
        for (int nt = 1; nt <= 9; nt += 4) {
            float *x = malloc((size_t)(nt * cols) * sizeof(float));
            float *y[2], *r0 = malloc((size_t)(nt * rows) * sizeof(float));
            float *r1 = malloc((size_t)(nt * rows) * sizeof(float));
            unsigned char *seen = malloc((size_t)rows);
            ck_assert(x && r0 && r1 && seen);
            for (int64_t k = 0; k < nt * cols; k++)
                x[k] = frnd();
            ck_assert_int_eq(rt_matmul(NULL, &w[0], x, nt, r0, &e), 0);
            ck_assert_int_eq(rt_matmul(NULL, &w[1], x, nt, r1, &e), 0);
            for (int64_t i = 0; i < nt * rows; i++)
                r0[i] = r0[i] * 0.5f - r1[i];
            for (int th = 0; th <= 3; th++) {
                struct rt_pool *p = NULL;
                if (th)
                    ck_assert_int_eq(rt_pool_create(&p, th, &e), 0);
                for (int k = 0; k < 2; k++) {
                    y[k] = malloc((size_t)(nt * rows) * sizeof(float));
                    ck_assert_ptr_nonnull(y[k]);
                }
                memset(seen, 0, (size_t)rows);
                struct epi_chk ck = { y[0], y[1], rows, nt, seen };
                ck_assert_msg(rt_matmul_epi(p, wp, 2, x, nt, y, epi_chk_rows, &ck, &e) == 0,
                              "%s", e.msg);
                for (int64_t r = 0; r < rows; r++)
                    ck_assert_msg(seen[r] == 1, "mix %zu %d tokens %d threads: row %lld seen %d times",
                                  c, nt, th, (long long)r, seen[r]);
                ck_assert_msg(!memcmp(r1, y[1], (size_t)(nt * rows) * sizeof(float)) &&
                              !memcmp(r0, y[0], (size_t)(nt * rows) * sizeof(float)),
                              "mix %zu %d tokens %d threads: not rt_matmul's bits", c, nt, th);
                free(y[0]);
                free(y[1]);
                rt_pool_free(p);
            }
            free(x);
            free(r0);
            free(r1);
            free(seen);
        }
        for (int k = 0; k < 2; k++)
            mat_free(&m[k]);
    }
    /* weights of different rows */
    {
        struct mat a, b;
        struct rt_mat wa, wb;
        float x[512] = { 0 }, ya[8], yb[8];
        float *y2[2] = { ya, yb };
        unsigned char seen[8];
        struct epi_chk ck = { ya, yb, 2, 1, seen };
        mat_make(&a, DT_F32, 2, 512);
        mat_make(&b, DT_F32, 3, 512);
        ck_assert_int_eq(rt_mat_init(&wa, DT_F32, 2, 512, a.data, &e), 0);
        ck_assert_int_eq(rt_mat_init(&wb, DT_F32, 3, 512, b.data, &e), 0);
        const struct rt_mat *w2[2] = { &wa, &wb };
        e = (struct err)ERR_INIT;
        ck_assert_int_eq(rt_matmul_epi(NULL, w2, 2, x, 1, y2, epi_chk_rows, &ck, &e), -1);
        ck_assert_int_eq(e.code, ERR_INTERNAL);
        mat_free(&a);
        mat_free(&b);
    }
}
END_TEST

/* One token runs guided parts (matmul.c dec_pieces: large first, each 1/threads of
 * the rows left, cut at each weight's end), a prompt fixed ones: every row of every
 * weight of a one-token rt_matmul_n / rt_matmul_epi gets exactly the bits of the same
 * token in a two-token batch (y starts as NaN, so a row no part covers shows), and the
 * epilogue sees each row once, for row counts with tails, weights of 0 rows, and 1..4
 * threads (more parts than MM_DEC_MIN-row tails alone would give: 4099 rows) */
START_TEST(test_matmul_dec_parts)
{
    static const int dts[] = { DT_Q8_0, DT_F16, DT_Q4_K, DT_IQ3_S };
    static const int64_t rows[4] = { 4099, 264, 0, 777 };
    const int64_t cols = 256;
    struct err e = ERR_INIT;

    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        struct mat m[4];
        struct rt_mat w[4];
        const struct rt_mat *wp[4];
        float *x2 = malloc((size_t)(2 * cols) * sizeof(float)), *ref[4], *y[4];
        ck_assert_ptr_nonnull(x2);
        for (int64_t k = 0; k < cols; k++)
            x2[k] = x2[cols + k] = frnd();
        for (int k = 0; k < 4; k++) {
            mat_make(&m[k], dts[d], rows[k] ? rows[k] : 1, cols);
            ck_assert_int_eq(rt_mat_init(&w[k], dts[d], rows[k], cols, m[k].data, &e), 0);
            wp[k] = &w[k];
            ref[k] = malloc((size_t)(2 * rows[k] + 1) * sizeof(float));
            y[k] = malloc((size_t)(rows[k] + 1) * sizeof(float));
            ck_assert(ref[k] && y[k]);
            ck_assert_int_eq(rt_matmul(NULL, &w[k], x2, 2, ref[k], &e), 0);
        }
        for (int th = 0; th <= 4; th++) {
            struct rt_pool *p = NULL;
            if (th)
                ck_assert_int_eq(rt_pool_create(&p, th, &e), 0);
            for (int k = 0; k < 4; k++)
                for (int64_t r = 0; r < rows[k]; r++)
                    y[k][r] = NAN;
            ck_assert_msg(rt_matmul_n(p, wp, 4, x2, 1, y, &e) == 0, "%s", e.msg);
            for (int k = 0; k < 4; k++)
                ck_assert_msg(!memcmp(y[k], ref[k], (size_t)rows[k] * sizeof(float)),
                              "%s weight %d of %lld rows, %d threads: not the batch's bits",
                              dtype_name(dts[d]), k, (long long)rows[k], th);
            /* with an epilogue: weights 0 and 0 again (the same rows) */
            unsigned char *seen = calloc((size_t)rows[0], 1);
            float *e0 = malloc((size_t)rows[0] * sizeof(float));
            float *e1 = malloc((size_t)rows[0] * sizeof(float));
            ck_assert(seen && e0 && e1);
            for (int64_t r = 0; r < rows[0]; r++)
                e0[r] = e1[r] = NAN;
            const struct rt_mat *w2[2] = { &w[0], &w[0] };
            float *y2[2] = { e0, e1 };
            struct epi_chk ck = { e0, e1, rows[0], 1, seen };
            ck_assert_msg(rt_matmul_epi(p, w2, 2, x2, 1, y2, epi_chk_rows, &ck, &e) == 0, "%s",
                          e.msg);
            for (int64_t r = 0; r < rows[0]; r++) {
                float want = ref[0][r] * 0.5f - ref[0][r];
                ck_assert_msg(seen[r] == 1 && !memcmp(&e1[r], &ref[0][r], sizeof(float)) &&
                              !memcmp(&e0[r], &want, sizeof(float)),
                              "%s epilogue, %d threads: row %lld seen %d times, %g %g",
                              dtype_name(dts[d]), th, (long long)r, seen[r], e0[r], e1[r]);
            }
            free(seen);
            free(e0);
            free(e1);
            rt_pool_free(p);
        }
        for (int k = 0; k < 4; k++) {
            mat_free(&m[k]);
            free(ref[k]);
            free(y[k]);
        }
        free(x2);
    }
}
END_TEST

START_TEST(test_matmul_errors)
{
    struct rt_mat w;
    struct err e = ERR_INIT;
    uint8_t buf[64] = { 0 };
    float x[64] = { 0 }, y[4];

    ck_assert_int_eq(rt_mat_init(&w, DT_C64, 1, 2, buf, &e), -1);
    ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
    e = (struct err)ERR_INIT;
    ck_assert_int_eq(rt_mat_init(&w, DT_Q4_0, 1, 33, buf, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    e = (struct err)ERR_INIT;
    w = (struct rt_mat){ .dtype = DT_Q4_K, .rows = 1, .cols = 128, .data = buf, .row_bytes = 0 };
    ck_assert_int_eq(rt_matmul(NULL, &w, x, 1, y, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    e = (struct err)ERR_INIT;
    w = (struct rt_mat){ .dtype = DT_C64, .rows = 1, .cols = 2, .data = buf, .row_bytes = 16 };
    ck_assert_int_eq(rt_matmul(NULL, &w, x, 1, y, &e), -1);
    ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
    /* zero tokens / rows: nothing to do */
    e = (struct err)ERR_INIT;
    w = (struct rt_mat){ .dtype = DT_F32, .rows = 0, .cols = 4, .data = buf, .row_bytes = 16 };
    ck_assert_int_eq(rt_matmul(NULL, &w, x, 1, y, &e), 0);
}
END_TEST

/* SwiGLU's silu(g) * u and the softmax's expf (runtime/silu.h): the AVX2 paths (called
 * directly: rt_silu_mul and rt_expf_n would fall back to the scalar ones if they
 * disagreed) and rt_silu_mul and rt_expf_n give the bits of the scalar expressions with
 * the C library's expf, over a sweep across glibc's |x| >= 88
 * slow path, specials, subnormals, random floats, and every length 0..19 (the 8-wide
 * body and its tail).  All 2^32 inputs of both were compared once when they were written. */
static void silu_ref(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

START_TEST(test_silu_vs_scalar)
{
    enum { N = 9000 };
    static float x[N], u[N], a[N], b[N];
    static const float sp[] = { 0.0f, -0.0f, 88.0f, -88.0f, 88.7f, -88.8f, 103.9f, -104.0f,
                                1e-40f, -1e-40f, 1e30f, -1e30f, INFINITY, -INFINITY };
    int avx2 = rt_isa_best() >= RT_ISA_AVX2;
    for (int i = 0; i < N; i++) {
        if (i < (int)(sizeof sp / sizeof sp[0]))
            x[i] = sp[i];
        else if (i >= 16 && i < 24)   /* a whole vector of the one input where r = x*32/ln2 - k
                                       * rounded before its subtraction changes the bits */
            x[i] = -0x1.04845ep+5f;
        else if (i < 6000)
            x[i] = (float)(i - 3000) / 25.0f;   /* -120 .. 120 */
        else
            x[i] = frnd() * powf(2.0f, (float)(i % 40) - 20.0f);
        u[i] = i % 3 && i >= 24 ? frnd() : 1.0f;
    }
    for (int n = 0; n < 20; n++)
        for (int off = 0; off < 3; off++) {
            memcpy(a, x + 100 * n + off, (size_t)n * 4);
            memcpy(b, a, (size_t)n * 4);
            silu_ref(a, u, n);
            rt_silu_mul(b, u, n);
            ck_assert_msg(!memcmp(a, b, (size_t)n * 4), "rt_silu_mul n %d off %d", n, off);
        }
    memcpy(a, x, sizeof x);
    memcpy(b, x, sizeof x);
    silu_ref(a, u, N);
    rt_silu_mul(b, u, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(!memcmp(&a[i], &b[i], 4), "rt_silu_mul x %a: %a, scalar %a", (double)x[i],
                      (double)b[i], (double)a[i]);
    /* expf alone (the softmax's), at -x too: the negative side's underflow */
    for (int sg = 0; sg < 2; sg++) {
        for (int i = 0; i < N; i++)
            a[i] = expf(sg ? -x[i] : x[i]);
        for (int i = 0; i < N; i++)
            b[i] = sg ? -x[i] : x[i];
        rt_expf_n(b, N);
        for (int i = 0; i < N; i++)
            ck_assert_msg(!memcmp(&a[i], &b[i], 4), "rt_expf_n x %a: %a, expf %a",
                          (double)(sg ? -x[i] : x[i]), (double)b[i], (double)a[i]);
        if (!avx2)
            continue;
        for (int i = 0; i < N; i++)
            b[i] = sg ? -x[i] : x[i];
        rt_expf_avx2(b, N);
        for (int i = 0; i < N; i++)
            ck_assert_msg(!memcmp(&a[i], &b[i], 4), "rt_expf_avx2 x %a: %a, expf %a",
                          (double)(sg ? -x[i] : x[i]), (double)b[i], (double)a[i]);
    }
    if (!avx2)
        return;
    memcpy(a, x, sizeof x);
    silu_ref(a, u, N);
    memcpy(b, x, sizeof x);
    rt_silu_mul_avx2(b, u, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(!memcmp(&a[i], &b[i], 4), "rt_silu_mul_avx2 x %a: %a, scalar %a",
                      (double)x[i], (double)b[i], (double)a[i]);
}
END_TEST

Suite *kern_suite(void)
{
    Suite *s = suite_create("kern");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pool_parts);
    tcase_add_test(tc, test_pool_back_to_back);
    tcase_add_test(tc, test_pool_default_threads);
    tcase_add_test(tc, test_pool_scratch);
    tcase_add_test(tc, test_matmul_all_types);
    tcase_add_test(tc, test_matmul_long_rows);
    tcase_add_test(tc, test_matmul_threads_bitexact);
    tcase_add_test(tc, test_twins);
    tcase_add_test(tc, test_gemm_vs_dot);
    tcase_add_test(tc, test_dec_vs_dot);
    tcase_add_test(tc, test_quantizer_edges);
    tcase_add_test(tc, test_mat_row);
    tcase_add_test(tc, test_matmul_errors);
    tcase_add_test(tc, test_matmul_n);
    tcase_add_test(tc, test_matmul_epi);
    tcase_add_test(tc, test_matmul_dec_parts);
    tcase_add_test(tc, test_silu_vs_scalar);
    suite_add_tcase(s, tc);
    return s;
}
