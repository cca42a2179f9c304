/*
 * check_compare.c - the comparison engine (compare/compare.h): every metric against a
 * straightforward double-precision computation, NaN/Inf accounting, results independent
 * of chunk sizes, segments merged in order, the AVX2 and AVX-512 kernels (f32 and half
 * inputs) against their scalar twins bit for bit, cmp_add_f16 against cmp_add, the best
 * kernel really chosen on a CPU that has it, and cmp_logits (KL,
 * top-1, top-k) against hand and naive computations.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../compare/compare.h"
#include "../../compare/compare_impl.h"
#include "../../dequant/dq.h"
#include "tu.h"
#include "../../common/banned.h"

static uint32_t rng = 2463534242u;

static uint32_t xs32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* uniform in [-1, 1) */
static float unif(void)
{
    return (float)(xs32() >> 8) / 8388608.0f - 1.0f;
}

/* x random, y = x plus noise of several sizes (some exact matches) */
static void fill(float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = xs32();
        x[i] = unif() * 4.0f;
        y[i] = r % 7 == 0 ? x[i] : x[i] + unif() * (r % 3 == 0 ? 1e-4f : r % 3 == 1 ? 5e-3f : 0.2f);
    }
}

/* The naive reference: one sequential pass in double. */
struct naive { double cos, max, mean, rmse, nmse; int64_t at; uint64_t z, s, m; };

static void naive(const float *x, const float *y, size_t n, struct naive *r)
{
    double xy = 0, xx = 0, yy = 0, sd = 0, sd2 = 0;

    memset(r, 0, sizeof *r);
    r->at = -1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        xy += (double)x[i] * y[i];
        xx += (double)x[i] * x[i];
        yy += (double)y[i] * y[i];
        sd += d;
        sd2 += d * d;
        if (r->at < 0 || d > r->max) {
            r->max = d;
            r->at = (int64_t)i;
        }
        r->z += d == 0;
        r->s += d < CMP_SMALL;
        r->m += d < CMP_MEDIUM;
    }
    r->cos = xy / (sqrt(xx) * sqrt(yy));
    r->mean = sd / (double)n;
    r->rmse = sqrt(sd2 / (double)n);
    r->nmse = sd2 / xx;
}

/* Summation order differs from the naive pass (8 lanes, blocks): for n <= 1e6 values
 * of this size the relative difference of double sums is below n * 2^-52 ~ 2e-10;
 * measured here: under 1e-14.  1e-12 leaves room and still catches any wrong term. */
#define REL 1e-12

static void near(double got, double want, const char *what)
{
    double tol = REL * fmax(1.0, fabs(want));
    ck_assert_msg(fabs(got - want) <= tol, "%s: %.17g, naive %.17g", what, got, want);
}

START_TEST(metrics_vs_naive)
{
    static const size_t sizes[] = { 1, 7, 8, 9, 1023, 1024, 1025, 4096 + 13, 300000 };
    size_t n = sizes[_i];
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    struct cmp_stats s;
    struct naive r;

    ck_assert(x && y);
    fill(x, y, n);
    if (n == 1)
        y[0] = x[0] + 0.5f;   /* one element: make it differ */
    cmp_f32(x, y, n, &s);
    naive(x, y, n, &r);
    ck_assert_uint_eq(s.n, n);
    ck_assert_uint_eq(s.n_finite, n);
    near(s.cosine, r.cos > 1 ? 1 : r.cos, "cosine");
    ck_assert(s.max_abs == r.max);        /* exact: a max is not rounded */
    ck_assert_int_eq(s.max_idx, r.at);    /* the first occurrence */
    near(s.mean_abs, r.mean, "mean");
    near(s.rmse, r.rmse, "rmse");
    near(s.nmse, r.nmse, "nmse");
    ck_assert_uint_eq(s.n_zero, r.z);
    ck_assert_uint_eq(s.n_small, r.s);
    ck_assert_uint_eq(s.n_medium, r.m);
    ck_assert_uint_eq(s.nan_x + s.nan_y + s.inf_x + s.inf_y + s.nf_same + s.nf_diff, 0);
    free(x);
    free(y);
}
END_TEST

START_TEST(metrics_by_hand)
{
    /* x = [3, 4], y = [4, 3]: cos = 24/25, d = [1, 1] */
    const float x[2] = { 3, 4 }, y[2] = { 4, 3 }, z[3] = { 0, 0, 0 }, o[3] = { 1, 0, 0 };
    struct cmp_stats s;

    cmp_f32(x, y, 2, &s);
    ck_assert(s.cosine == 24.0 / 25.0);
    ck_assert(s.max_abs == 1 && s.max_idx == 0);
    ck_assert(s.mean_abs == 1 && s.rmse == 1);
    ck_assert(s.nmse == 2.0 / 25.0);
    ck_assert(s.rms_x == sqrt(12.5));
    cmp_f32(z, z, 3, &s);                  /* both zero: same direction by convention */
    ck_assert(s.cosine == 1 && s.nmse == 0 && s.max_idx == 0);
    cmp_f32(z, o, 3, &s);                  /* x zero, y not */
    ck_assert(s.cosine == 0 && isinf(s.nmse));
    cmp_f32(x, x, 0, &s);                  /* empty */
    ck_assert(s.n == 0 && s.cosine == 1 && s.max_idx == -1);
}
END_TEST

START_TEST(nonfinite_counted)
{
    enum { N = 3000 };
    static float x[N], y[N];
    struct cmp_stats s;
    struct naive r;

    fill(x, y, N);
    x[10] = NAN;                 /* NaN vs number */
    x[20] = NAN; y[20] = NAN;    /* same */
    y[2047] = INFINITY;          /* number vs Inf, in the second block */
    x[2999] = -INFINITY; y[2999] = -INFINITY;   /* same, in the short last block */
    x[1500] = INFINITY; y[1500] = -INFINITY;    /* different */
    cmp_f32(x, y, N, &s);
    ck_assert_uint_eq(s.nan_x, 2);
    ck_assert_uint_eq(s.nan_y, 1);
    ck_assert_uint_eq(s.inf_x, 2);
    ck_assert_uint_eq(s.inf_y, 3);
    ck_assert_uint_eq(s.nf_same, 2);
    ck_assert_uint_eq(s.nf_diff, 3);
    ck_assert_uint_eq(s.n_finite, N - 5);
    /* the metrics cover the finite pairs: zero the others for the naive pass */
    x[10] = y[10] = x[20] = y[20] = x[2047] = y[2047] = 0;
    x[2999] = y[2999] = x[1500] = y[1500] = 0;
    naive(x, y, N, &r);
    near(s.cosine, r.cos, "cosine");
    ck_assert(s.max_abs == r.max && s.max_idx == r.at);
    near(s.rmse, r.rmse * sqrt((double)N / (N - 5)), "rmse over finite pairs");
}
END_TEST

/* Any chunking gives the same bits as one call. */
START_TEST(chunking_invariant)
{
    enum { N = 70001 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    struct cmp_acc *a = malloc(sizeof *a);
    struct cmp_stats one, s;

    ck_assert(x && y && a);
    fill(x, y, N);
    x[5000] = NAN;               /* a slow block too */
    cmp_f32(x, y, N, &one);
    for (int round = 0; round < 20; round++) {
        size_t i = 0;
        cmp_init(a);
        while (i < N) {
            size_t k = round == 0 ? 1 : round == 1 ? 1024 : xs32() % (round < 10 ? 100 : 5000);
            if (k > N - i)
                k = N - i;
            cmp_add(a, x + i, y + i, k);
            i += k;
        }
        cmp_finish(a, &s);
        ck_assert_msg(memcmp(&s, &one, sizeof s) == 0, "round %d differs", round);
        cmp_flush(a);            /* flush then finish: the same */
        cmp_finish(a, &s);
        ck_assert(memcmp(&s, &one, sizeof s) == 0);
    }
    free(x);
    free(y);
    free(a);
}
END_TEST

/* Segments at fixed cuts, accumulated out of order and merged in order: the same bits
 * whatever order they ran in; the max index is global. */
START_TEST(segments_merge)
{
    enum { N = 3 * CMP_BLOCK * 5 + 77, SEG = CMP_BLOCK * 5 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    struct cmp_acc *a = malloc(sizeof *a);
    struct cmp_sums seg[4], tot;
    struct cmp_stats s1, s2, whole;

    ck_assert(x && y && a);
    fill(x, y, N);
    y[2 * SEG + 3] = x[2 * SEG + 3] + 3.0f;   /* the max, in segment 2 */
    for (int k = 3; k >= 0; k--) {            /* run backwards */
        size_t b = (size_t)k * SEG, e = b + SEG < N ? b + SEG : N;
        cmp_init_at(a, (int64_t)b);
        cmp_add(a, x + b, y + b, e - b);
        cmp_flush(a);
        seg[k] = a->s;
    }
    tot = seg[0];
    for (int k = 1; k < 4; k++)
        cmp_merge(&tot, &seg[k]);
    cmp_stats_of(&tot, &s1);
    ck_assert_int_eq(s1.max_idx, 2 * SEG + 3);
    ck_assert(s1.max_abs == fabs((double)x[2 * SEG + 3] - (double)y[2 * SEG + 3]));
    ck_assert_uint_eq(s1.n, N);
    tot = seg[0];
    for (int k = 1; k < 4; k++)
        cmp_merge(&tot, &seg[k]);
    cmp_stats_of(&tot, &s2);
    ck_assert(memcmp(&s1, &s2, sizeof s1) == 0);
    cmp_f32(x, y, N, &whole);                 /* close to the one-stream result */
    near(s1.cosine, whole.cosine, "cosine");
    near(s1.rmse, whole.rmse, "rmse");
    ck_assert_uint_eq(s1.n_small, whole.n_small);
    free(x);
    free(y);
    free(a);
}
END_TEST

/* Sums bit for bit, counts and max as wholes: two kernels' lanes agree. */
static void lanes_same(const struct cmp_lanes *a, const struct cmp_lanes *b, const char *what,
                       int64_t m)
{
    uint64_t ca[3] = { 0 }, cb[3] = { 0 };
    double ma = 0, mb = 0;

    ck_assert_msg(memcmp(a->xy, b->xy, sizeof a->xy) == 0, "%s m=%lld: xy", what, (long long)m);
    ck_assert_msg(memcmp(a->xx, b->xx, sizeof a->xx) == 0, "%s m=%lld: xx", what, (long long)m);
    ck_assert_msg(memcmp(a->yy, b->yy, sizeof a->yy) == 0, "%s m=%lld: yy", what, (long long)m);
    ck_assert_msg(memcmp(a->sd, b->sd, sizeof a->sd) == 0, "%s m=%lld: sd", what, (long long)m);
    ck_assert_msg(memcmp(a->sd2, b->sd2, sizeof a->sd2) == 0, "%s m=%lld: sd2", what,
                  (long long)m);
    for (int k = 0; k < CMP_LANES; k++) {
        ca[0] += a->c0[k];
        ca[1] += a->c1[k];
        ca[2] += a->c2[k];
        cb[0] += b->c0[k];
        cb[1] += b->c1[k];
        cb[2] += b->c2[k];
        ma = a->mx[k] > ma ? a->mx[k] : ma;
        mb = b->mx[k] > mb ? b->mx[k] : mb;
    }
    ck_assert_msg(memcmp(ca, cb, sizeof ca) == 0, "%s m=%lld: counts", what, (long long)m);
    ck_assert_msg(ma == mb, "%s m=%lld: max", what, (long long)m);
}

/* x and y as little-endian halves (every value of fill() rounded to f16; up to 6e4,
 * some tiny, some subnormal) and their exact f32 values */
static void fill_halves(uint8_t *hx, uint8_t *hy, float *x, float *y, size_t n)
{
    fill(x, y, n);
    for (size_t i = 0; i < n; i++) {
        float sx = i % 11 == 3 ? 1.5e4f : i % 11 == 5 ? 1e-6f : 1.0f;
        uint16_t a = dq_f32_to_f16(x[i] * sx), b = dq_f32_to_f16(y[i] * sx);
        hx[2 * i] = (uint8_t)a;
        hx[2 * i + 1] = (uint8_t)(a >> 8);
        hy[2 * i] = (uint8_t)b;
        hy[2 * i + 1] = (uint8_t)(b >> 8);
        x[i] = dq_f16_to_f32(a);
        y[i] = dq_f16_to_f32(b);
    }
}

/* The SIMD kernels are the scalar ones' twins: the same sums bit for bit, the same
 * counts and max, for every length (tails) and with values of every size; the half
 * kernels equal the f32 ones on the converted values. */
START_TEST(kernel_twins)
{
    enum { N = 1031 };
    float x[N], y[N], fx[N], fy[N];
    uint8_t hx[2 * N], hy[2 * N];
    struct { const char *name; cmp_lanes_fn f; cmp_lanes_h_fn h; int ok; } k[] = {
        { "scalar", cmp__lanes_scalar, cmp__lanes_h_scalar, 1 },
#ifdef CMP_HAVE_AVX2_BUILD
        { "avx2", cmp__lanes_avx2, cmp__lanes_h_avx2, cmp__cpu_avx2() },
        { "avx512", cmp__lanes_avx512, cmp__lanes_h_avx512, cmp__cpu_avx512() },
#endif
    };
    int nk = (int)(sizeof k / sizeof k[0]), ran = 0;

    fill(x, y, N);
    x[3] = 1e30f;                /* large values: squares far above float range */
    y[3] = -1e30f;
    fill_halves(hx, hy, fx, fy, N);
    for (int i = 0; i < nk; i++) {
        if (!k[i].ok) {
            char why[80];
            snprintf(why, sizeof why, "kernel_twins: this CPU cannot run the %s kernels",
                     k[i].name);
            tu_skip(why);
            continue;
        }
        ran++;
        for (int64_t m = 0; m <= N; m += m < 40 ? 1 : 97) {
            struct cmp_lanes a, b;
            memset(&a, 0, sizeof a);
            memset(&b, 0, sizeof b);
            cmp__lanes_scalar(x, y, m, &a);
            k[i].f(x, y, m, &b);
            lanes_same(&a, &b, k[i].name, m);
            memset(&a, 0, sizeof a);
            memset(&b, 0, sizeof b);
            cmp__lanes_scalar(fx, fy, m, &a);
            k[i].h(hx, hy, m, &b);
            lanes_same(&a, &b, k[i].name, m);
        }
    }
    ck_assert_int_ge(ran, 1);
}
END_TEST

/* cmp_add_f16 gives cmp_add's bits on the converted values, whatever the chunking (split
 * blocks, odd offsets: the halves need no alignment), NaN and Inf blocks included. */
START_TEST(f16_same_bits)
{
    enum { N = 5000 };
    uint8_t *hx = malloc(2 * N + 1), *hy = malloc(2 * N + 1);
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    struct cmp_acc *a = malloc(sizeof *a);
    struct cmp_stats one, s;

    ck_assert(hx && hy && x && y && a);
    fill_halves(hx + 1, hy + 1, x, y, N);
    hx[1 + 2 * 700 + 1] = 0x7E;  /* x[700] NaN */
    hx[1 + 2 * 700] = 0x00;
    hy[1 + 2 * 3100 + 1] = 0x7C; /* y[3100] +Inf */
    hy[1 + 2 * 3100] = 0x00;
    x[700] = NAN;
    y[3100] = INFINITY;
    cmp_f32(x, y, N, &one);
    ck_assert_uint_eq(one.nan_x, 1);
    ck_assert_uint_eq(one.inf_y, 1);
    for (int round = 0; round < 12; round++) {
        size_t i = 0;
        cmp_init(a);
        while (i < N) {
            size_t k = round == 0 ? N : round == 1 ? 1024 : round == 2 ? 1 : xs32() % 3000;
            if (k > N - i)
                k = N - i;
            cmp_add_f16(a, hx + 1 + 2 * i, hy + 1 + 2 * i, k);
            i += k;
        }
        cmp_finish(a, &s);
        ck_assert_msg(memcmp(&s, &one, sizeof s) == 0, "round %d differs", round);
    }
    free(hx);
    free(hy);
    free(x);
    free(y);
    free(a);
}
END_TEST

/* On a CPU with AVX-512 (or AVX2) the engine really runs that kernel (unless
 * APR_DQ_SCALAR asks for the scalar one); elsewhere the scalar one. */
START_TEST(best_kernel_taken)
{
    const char *force = getenv("APR_DQ_SCALAR");
    int forced = force && *force && *force != '0';

    if (cmp__cpu_avx512() && !forced) {
        ck_assert_str_eq(cmp_isa(), "avx512");
#ifdef CMP_HAVE_AVX2_BUILD
        ck_assert(cmp__kernel() == cmp__lanes_avx512);
        ck_assert(cmp__kernel_h() == cmp__lanes_h_avx512);
#endif
    } else if (cmp__cpu_avx2() && !forced) {
        ck_assert_str_eq(cmp_isa(), "avx2");
#ifdef CMP_HAVE_AVX2_BUILD
        ck_assert(cmp__kernel() == cmp__lanes_avx2);
        ck_assert(cmp__kernel_h() == cmp__lanes_h_avx2);
#endif
    } else {
        ck_assert_str_eq(cmp_isa(), "scalar");
        ck_assert(cmp__kernel() == cmp__lanes_scalar);
        ck_assert(cmp__kernel_h() == cmp__lanes_h_scalar);
    }
}
END_TEST

/* ---- logits --------------------------------------------------------------------------- */

static double naive_kl(const float *r, const float *t, size_t n)
{
    double zr = 0, zt = 0, kl = 0;

    for (size_t i = 0; i < n; i++) {
        zr += exp((double)r[i]);
        zt += exp((double)t[i]);
    }
    for (size_t i = 0; i < n; i++) {
        double p = exp((double)r[i]) / zr, q = exp((double)t[i]) / zt;
        kl += p * log(p / q);
    }
    return kl;
}

START_TEST(logits_kl_and_topk)
{
    enum { V = 5000 };
    static float r[V], t[V];
    struct cmp_logits L;

    for (int i = 0; i < V; i++) {
        r[i] = unif() * 8;
        t[i] = r[i] + unif() * 0.3f;
    }
    r[4321] = 20;                /* a clear top-1 in both */
    t[4321] = 19.5f;
    cmp_logits(r, t, V, 10, &L);
    /* naive sums of exp (no max shift) are fine at |logit| <= 20; relative 1e-9 covers
     * the different summation order and the log-sum-exp shift */
    ck_assert_msg(fabs(L.kl - naive_kl(r, t, V)) <= 1e-9 * fabs(naive_kl(r, t, V)) + 1e-15,
                  "kl %.17g naive %.17g", L.kl, naive_kl(r, t, V));
    ck_assert(L.kl > 0);
    ck_assert_int_eq(L.top1_ref, 4321);
    ck_assert_int_eq(L.top1_test, 4321);
    ck_assert(L.top1_agree);
    ck_assert_int_eq(L.k, 10);
    ck_assert(L.topk_overlap > 0 && L.topk_overlap <= 1);
    cmp_logits(r, r, V, 10, &L);
    ck_assert(L.kl == 0 && L.topk_overlap == 1 && L.top1_agree);
}
END_TEST

START_TEST(logits_by_hand)
{
    /* ref top-3 = {2, 0, 4}; test top-3 = {1, 2, 3}: overlap {2} = 1/3 */
    const float r[5] = { 5, 1, 9, 0, 4 }, t[5] = { 1, 8, 7, 6, 0 };
    /* ties: the lower index wins, for top-1 and top-k */
    const float tie[4] = { 1, 3, 3, 3 }, tie2[4] = { 3, 3, 1, 3 };
    const float two[2] = { 0, 0 }, shift[2] = { (float)M_LN2, 0 };
    struct cmp_logits L;

    cmp_logits(r, t, 5, 3, &L);
    ck_assert_int_eq(L.top1_ref, 2);
    ck_assert_int_eq(L.top1_test, 1);
    ck_assert(!L.top1_agree);
    ck_assert(L.topk_overlap == 1.0 / 3.0);
    cmp_logits(tie, tie2, 4, 2, &L);          /* {1, 2} vs {0, 1} */
    ck_assert_int_eq(L.top1_ref, 1);
    ck_assert_int_eq(L.top1_test, 0);
    ck_assert(L.topk_overlap == 0.5);
    cmp_logits(r, t, 5, 99, &L);              /* k clamped: every index is in both */
    ck_assert_int_eq(L.k, 5);
    ck_assert(L.topk_overlap == 1);
    /* p = (1/2, 1/2), q = (2/3, 1/3): KL = 1/2 ln(3/4) + 1/2 ln(3/2) = 1/2 ln(9/8) */
    cmp_logits(two, shift, 2, 1, &L);
    ck_assert_msg(fabs(L.kl - 0.5 * log(9.0 / 8.0)) < 1e-7, "kl %.17g", L.kl);  /* ln 2 in f32 */
}
END_TEST

START_TEST(logits_nan)
{
    const float r[3] = { 1, NAN, 2 }, t[3] = { 1, 2, 3 };
    struct cmp_logits L;

    cmp_logits(r, t, 3, 2, &L);
    ck_assert(isnan(L.kl));
    ck_assert_int_eq(L.top1_ref, 2);          /* NaN is never the top */
    ck_assert(L.topk_overlap == 0.5);         /* {0, 2} vs {1, 2} */
}
END_TEST

Suite *compare_suite(void)
{
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("metrics");
    TCase *lg = tcase_create("logits");

    tcase_add_loop_test(tc, metrics_vs_naive, 0, 9);
    tcase_add_test(tc, metrics_by_hand);
    tcase_add_test(tc, nonfinite_counted);
    tcase_add_test(tc, chunking_invariant);
    tcase_add_test(tc, segments_merge);
    tcase_add_test(tc, kernel_twins);
    tcase_add_test(tc, f16_same_bits);
    tcase_add_test(tc, best_kernel_taken);
    suite_add_tcase(s, tc);
    tcase_add_test(lg, logits_kl_and_topk);
    tcase_add_test(lg, logits_by_hand);
    tcase_add_test(lg, logits_nan);
    suite_add_tcase(s, lg);
    return s;
}
