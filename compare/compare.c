/*
 * compare.c - the comparison engine (compare.h): block accumulation with a fixed
 * reduction order, the scalar twin of compare_avx2.c, the run-time kernel choice, and
 * logit comparison.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "compare_impl.h"
#include "../dequant/dq.h"
#include "../common/cpu.h"
#include "../common/banned.h"

/* ---- kernels ------------------------------------------------------------------------- */

/*
 * The scalar twin (compare_impl.h): eight lanes per sum in a fixed order, no branch on
 * the data.  compare_avx2.c computes the very same bits, eight at a time.
 */
void cmp__lanes_scalar(const float *x, const float *y, int64_t m, struct cmp_lanes *L)
{
    int64_t j = 0;

    for (; j + CMP_LANES <= m; j += CMP_LANES)
        for (int k = 0; k < CMP_LANES; k++) {
            double p = x[j + k], q = y[j + k], d = fabs(p - q);
            L->xy[k] += p * q;
            L->xx[k] += p * p;
            L->yy[k] += q * q;
            L->sd[k] += d;
            L->sd2[k] += d * d;
            L->mx[k] = d > L->mx[k] ? d : L->mx[k];
            L->c0[k] += d == 0;
            L->c1[k] += d < CMP_SMALL;
            L->c2[k] += d < CMP_MEDIUM;
        }
    for (; j < m; j++) {
        double p = x[j], q = y[j], d = fabs(p - q);
        L->xy[0] += p * q;
        L->xx[0] += p * p;
        L->yy[0] += q * q;
        L->sd[0] += d;
        L->sd2[0] += d * d;
        L->mx[0] = d > L->mx[0] ? d : L->mx[0];
        L->c0[0] += d == 0;
        L->c1[0] += d < CMP_SMALL;
        L->c2[0] += d < CMP_MEDIUM;
    }
}

/* half value i of p (little-endian), exactly as f32 */
static float half_at(const uint8_t *p, int64_t i)
{
    return dq_f16_to_f32((uint16_t)(p[2 * i] | (unsigned)p[2 * i + 1] << 8));
}

/* n half values at p to f32 */
static void halves_to_f32(const uint8_t *p, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = half_at(p, i);
}

/* The half-input scalar twin: converted in pieces of 64 elements (a multiple of the
 * eight lanes, so every element lands in the lane cmp__lanes_scalar gives it over the
 * whole run; only the last piece has a tail). */
void cmp__lanes_h_scalar(const uint8_t *x, const uint8_t *y, int64_t m, struct cmp_lanes *L)
{
    float bx[64], by[64];

    for (int64_t j = 0; j < m; j += 64) {
        int64_t k = m - j < 64 ? m - j : 64;
        halves_to_f32(x + 2 * j, bx, k);
        halves_to_f32(y + 2 * j, by, k);
        cmp__lanes_scalar(bx, by, k, L);
    }
}

int cmp__cpu_avx2(void)
{
#if defined(CMP_HAVE_AVX2_BUILD) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && cpu_has_f16c();
#else
    return 0;
#endif
}

int cmp__cpu_avx512(void)
{
#if defined(CMP_HAVE_AVX2_BUILD) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && cpu_has_f16c();
#else
    return 0;
#endif
}

static cmp_lanes_fn kernel;
static cmp_lanes_h_fn kernel_h;
static pthread_once_t kernel_once = PTHREAD_ONCE_INIT;

static void kernel_pick(void)
{
    const char *force = getenv("APR_DQ_SCALAR");

    kernel = cmp__lanes_scalar;
    kernel_h = cmp__lanes_h_scalar;
#ifdef CMP_HAVE_AVX2_BUILD
    if (force && *force && *force != '0')
        return;
    if (cmp__cpu_avx512()) {
        kernel = cmp__lanes_avx512;
        kernel_h = cmp__lanes_h_avx512;
    } else if (cmp__cpu_avx2()) {
        kernel = cmp__lanes_avx2;
        kernel_h = cmp__lanes_h_avx2;
    }
#else
    (void)force;
#endif
}

cmp_lanes_fn cmp__kernel(void)
{
    pthread_once(&kernel_once, kernel_pick);
    return kernel;
}

cmp_lanes_h_fn cmp__kernel_h(void)
{
    pthread_once(&kernel_once, kernel_pick);
    return kernel_h;
}

const char *cmp_isa(void)
{
#ifdef CMP_HAVE_AVX2_BUILD
    if (cmp__kernel() == cmp__lanes_avx512)
        return "avx512";
    if (cmp__kernel() == cmp__lanes_avx2)
        return "avx2";
#endif
    return "scalar";
}

/* ---- blocks -------------------------------------------------------------------------- */

/* Lanes reduced pairwise in one fixed order. */
static double lanes_sum(const double *v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* A block holding a NaN or an Inf, element by element: non-finite pairs are counted
 * and left out of the sums.  base is the flat index of x[0]. */
static void block_slow(struct cmp_sums *s, const float *x, const float *y, int64_t m,
                       int64_t base)
{
    for (int64_t i = 0; i < m; i++) {
        float a = x[i], b = y[i];
        double p, q, d;

        s->n++;
        if (!isfinite(a) || !isfinite(b)) {
            s->nan_x += isnan(a) != 0;
            s->nan_y += isnan(b) != 0;
            s->inf_x += isinf(a) != 0;
            s->inf_y += isinf(b) != 0;
            if ((isnan(a) && isnan(b)) || a == b)
                s->nf_same++;
            else
                s->nf_diff++;
            continue;
        }
        p = a;
        q = b;
        d = fabs(p - q);
        s->xy += p * q;
        s->xx += p * p;
        s->yy += q * q;
        s->sd += d;
        s->sd2 += d * d;
        if (s->max_i < 0 || d > s->max_d) {
            s->max_d = d;
            s->max_i = base + i;
        }
        s->n_zero += d == 0;
        s->n_small += d < CMP_SMALL;
        s->n_medium += d < CMP_MEDIUM;
    }
}

/* Fold a block's lanes (m elements) into s and set *bm to its max |x-y|: 1.  0 when its
 * sums of squares are not finite (a NaN or an Inf: a finite f32 squared cannot overflow
 * a double), s untouched: the caller redoes the block element by element. */
static int lanes_fold(struct cmp_sums *s, const struct cmp_lanes *L, int64_t m, double *bm)
{
    double txx = lanes_sum(L->xx), tyy = lanes_sum(L->yy), mx = L->mx[0];

    if (!isfinite(txx) || !isfinite(tyy))
        return 0;
    s->xy += lanes_sum(L->xy);
    s->xx += txx;
    s->yy += tyy;
    s->sd += lanes_sum(L->sd);
    s->sd2 += lanes_sum(L->sd2);
    for (int k = 0; k < CMP_LANES; k++) {
        s->n_zero += L->c0[k];
        s->n_small += L->c1[k];
        s->n_medium += L->c2[k];
        mx = L->mx[k] > mx ? L->mx[k] : mx;
    }
    s->n += (uint64_t)m;
    *bm = mx;
    return 1;
}

/* One block of m <= CMP_BLOCK elements into s. */
static void block(struct cmp_sums *s, const float *x, const float *y, int64_t m, int64_t base)
{
    struct cmp_lanes L;
    double bm;

    if (m <= 0)
        return;
    memset(&L, 0, sizeof L);
    cmp__kernel()(x, y, m, &L);
    if (!lanes_fold(s, &L, m, &bm)) {
        block_slow(s, x, y, m, base);
        return;
    }
    if (s->max_i < 0 || bm > s->max_d) {
        int64_t at = 0;
        for (int64_t q = 0; q < m; q++)
            if (fabs((double)x[q] - (double)y[q]) == bm) {
                at = q;
                break;
            }
        s->max_d = bm;
        s->max_i = base + at;
    }
}

/* block() over half values: the kernel reads them as they are; the rare block that
 * holds a NaN or an Inf is converted and done element by element as floats. */
static void block_h(struct cmp_sums *s, const uint8_t *x, const uint8_t *y, int64_t m,
                    int64_t base)
{
    struct cmp_lanes L;
    double bm;

    memset(&L, 0, sizeof L);
    cmp__kernel_h()(x, y, m, &L);
    if (!lanes_fold(s, &L, m, &bm)) {
        float fx[CMP_BLOCK], fy[CMP_BLOCK];
        halves_to_f32(x, fx, m);
        halves_to_f32(y, fy, m);
        block_slow(s, fx, fy, m, base);
        return;
    }
    if (s->max_i < 0 || bm > s->max_d) {
        int64_t at = 0;
        for (int64_t q = 0; q < m; q++)
            if (fabs((double)half_at(x, q) - (double)half_at(y, q)) == bm) {
                at = q;
                break;
            }
        s->max_d = bm;
        s->max_i = base + at;
    }
}

/* ---- the stream ---------------------------------------------------------------------- */

void cmp_init_at(struct cmp_acc *a, int64_t pos)
{
    memset(&a->s, 0, sizeof a->s);
    a->s.max_i = -1;
    a->pos = pos;
    a->nbuf = 0;
}

void cmp_init(struct cmp_acc *a)
{
    cmp_init_at(a, 0);
}

void cmp_add(struct cmp_acc *a, const float *x, const float *y, size_t n)
{
    if (a->nbuf) {   /* complete the split block first */
        size_t k = CMP_BLOCK - a->nbuf < n ? CMP_BLOCK - a->nbuf : n;
        memcpy(a->bx + a->nbuf, x, k * sizeof *x);
        memcpy(a->by + a->nbuf, y, k * sizeof *y);
        a->nbuf += (uint32_t)k;
        a->pos += (int64_t)k;
        x += k;
        y += k;
        n -= k;
        if (a->nbuf < CMP_BLOCK)
            return;
        block(&a->s, a->bx, a->by, CMP_BLOCK, a->pos - CMP_BLOCK);
        a->nbuf = 0;
    }
    for (; n >= CMP_BLOCK; n -= CMP_BLOCK, x += CMP_BLOCK, y += CMP_BLOCK) {
        block(&a->s, x, y, CMP_BLOCK, a->pos);
        a->pos += CMP_BLOCK;
    }
    if (n) {
        memcpy(a->bx, x, n * sizeof *x);
        memcpy(a->by, y, n * sizeof *y);
        a->nbuf = (uint32_t)n;
        a->pos += (int64_t)n;
    }
}

void cmp_add_f16(struct cmp_acc *a, const void *xv, const void *yv, size_t n)
{
    const uint8_t *x = xv, *y = yv;

    if (a->nbuf) {   /* complete the split block first (as floats, like cmp_add) */
        size_t k = CMP_BLOCK - a->nbuf < n ? CMP_BLOCK - a->nbuf : n;
        halves_to_f32(x, a->bx + a->nbuf, (int64_t)k);
        halves_to_f32(y, a->by + a->nbuf, (int64_t)k);
        a->nbuf += (uint32_t)k;
        a->pos += (int64_t)k;
        x += 2 * k;
        y += 2 * k;
        n -= k;
        if (a->nbuf < CMP_BLOCK)
            return;
        block(&a->s, a->bx, a->by, CMP_BLOCK, a->pos - CMP_BLOCK);
        a->nbuf = 0;
    }
    for (; n >= CMP_BLOCK; n -= CMP_BLOCK, x += 2 * CMP_BLOCK, y += 2 * CMP_BLOCK) {
        block_h(&a->s, x, y, CMP_BLOCK, a->pos);
        a->pos += CMP_BLOCK;
    }
    if (n) {
        halves_to_f32(x, a->bx, (int64_t)n);
        halves_to_f32(y, a->by, (int64_t)n);
        a->nbuf = (uint32_t)n;
        a->pos += (int64_t)n;
    }
}

void cmp_flush(struct cmp_acc *a)
{
    block(&a->s, a->bx, a->by, a->nbuf, a->pos - a->nbuf);
    a->nbuf = 0;
}

void cmp_merge(struct cmp_sums *s, const struct cmp_sums *t)
{
    s->xy += t->xy;
    s->xx += t->xx;
    s->yy += t->yy;
    s->sd += t->sd;
    s->sd2 += t->sd2;
    if (t->max_i >= 0 && (s->max_i < 0 || t->max_d > s->max_d)) {
        s->max_d = t->max_d;
        s->max_i = t->max_i;
    }
    s->n += t->n;
    s->n_zero += t->n_zero;
    s->n_small += t->n_small;
    s->n_medium += t->n_medium;
    s->nf_same += t->nf_same;
    s->nf_diff += t->nf_diff;
    s->nan_x += t->nan_x;
    s->nan_y += t->nan_y;
    s->inf_x += t->inf_x;
    s->inf_y += t->inf_y;
}

void cmp_stats_of(const struct cmp_sums *s, struct cmp_stats *m)
{
    uint64_t nfin = s->n - s->nf_same - s->nf_diff;

    memset(m, 0, sizeof *m);
    m->n = s->n;
    m->n_finite = nfin;
    m->max_abs = s->max_i >= 0 ? s->max_d : 0;
    m->max_idx = s->max_i;
    m->mean_abs = nfin ? s->sd / (double)nfin : 0;
    m->rmse = nfin ? sqrt(s->sd2 / (double)nfin) : 0;
    m->rms_x = nfin ? sqrt(s->xx / (double)nfin) : 0;
    m->nmse = s->xx > 0 ? s->sd2 / s->xx : (s->sd2 > 0 ? INFINITY : 0);
    if (s->xx == 0 && s->yy == 0)
        m->cosine = 1;
    else if (s->xx == 0 || s->yy == 0)
        m->cosine = 0;
    else {
        m->cosine = s->xy / (sqrt(s->xx) * sqrt(s->yy));
        if (m->cosine > 1)
            m->cosine = 1;
        if (m->cosine < -1)
            m->cosine = -1;
    }
    m->n_zero = s->n_zero;
    m->n_small = s->n_small;
    m->n_medium = s->n_medium;
    m->nf_same = s->nf_same;
    m->nf_diff = s->nf_diff;
    m->nan_x = s->nan_x;
    m->nan_y = s->nan_y;
    m->inf_x = s->inf_x;
    m->inf_y = s->inf_y;
}

void cmp_finish(const struct cmp_acc *a, struct cmp_stats *out)
{
    struct cmp_sums s = a->s;

    block(&s, a->bx, a->by, a->nbuf, a->pos - a->nbuf);
    cmp_stats_of(&s, out);
}

void cmp_f32(const float *x, const float *y, size_t n, struct cmp_stats *out)
{
    struct cmp_sums s;
    int64_t i = 0;

    /* cmp_add without the copy of the last, short block */
    memset(&s, 0, sizeof s);
    s.max_i = -1;
    for (; (size_t)i < n; i += CMP_BLOCK)
        block(&s, x + i, y + i, n - (size_t)i < CMP_BLOCK ? (int64_t)(n - (size_t)i) : CMP_BLOCK, i);
    cmp_stats_of(&s, out);
}

/* ---- logits -------------------------------------------------------------------------- */

/* log(sum exp(v - max)) + max over v[0..n), in double; the argmax (first) in *arg. */
static double log_sum_exp(const float *v, size_t n, size_t *arg)
{
    double mx = -INFINITY, s = 0;
    size_t am = 0;
    int nan = 0;

    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i]))
            nan = 1;
        else if (v[i] > mx) {
            mx = v[i];
            am = i;
        }
    }
    *arg = am;
    if (nan)
        return NAN;
    if (isinf(mx))
        return mx;
    for (size_t i = 0; i < n; i++)
        s += exp((double)v[i] - mx);
    return mx + log(s);
}

/* Does v[i] rank before v[j]?  Larger first; NaN after every number. */
static int ranks_before(const float *v, size_t i, size_t j)
{
    if (isnan(v[i]))
        return 0;
    return isnan(v[j]) || v[i] > v[j];
}

/* The indices of v's k largest values (ties: lower index first), sorted by index. */
static void top_k(const float *v, size_t n, size_t k, size_t *top)
{
    size_t have = 0;

    /* top[0..have) ranked best first while scanning: a later equal value ranks after */
    for (size_t i = 0; i < n; i++) {
        size_t at;
        if (have == k && !ranks_before(v, i, top[k - 1]))
            continue;
        at = have < k ? have++ : k - 1;
        while (at > 0 && ranks_before(v, i, top[at - 1])) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = i;
    }
    for (size_t i = 1; i < k; i++)   /* by index, for the intersection */
        for (size_t j = i; j > 0 && top[j - 1] > top[j]; j--) {
            size_t t = top[j];
            top[j] = top[j - 1];
            top[j - 1] = t;
        }
}

void cmp_logits(const float *ref, const float *test, size_t n, int k, struct cmp_logits *out)
{
    size_t ar = 0, at = 0, kk, common = 0;
    size_t stack_a[64], stack_b[64], *ta = stack_a, *tb = stack_b;
    double lr, lt, kl = 0;

    memset(out, 0, sizeof *out);
    if (n == 0) {
        out->kl = NAN;
        out->top1_ref = out->top1_test = -1;
        return;
    }
    lr = log_sum_exp(ref, n, &ar);
    lt = log_sum_exp(test, n, &at);
    if (isnan(lr) || isnan(lt) || isinf(lr) || isinf(lt))
        kl = NAN;
    else
        for (size_t i = 0; i < n; i++) {
            double lp = (double)ref[i] - lr, lq = (double)test[i] - lt;
            double p = exp(lp);
            if (p > 0)
                kl += p * (lp - lq);
        }
    out->kl = kl;
    out->top1_ref = (int32_t)ar;
    out->top1_test = (int32_t)at;
    out->top1_agree = ar == at;

    kk = k < 1 ? 1 : (size_t)k > n ? n : (size_t)k;
    out->k = (int)kk;
    if (kk > 64) {
        ta = malloc(kk * sizeof *ta);
        tb = malloc(kk * sizeof *tb);
        if (!ta || !tb) {   /* cannot fail in practice; report "unknown" */
            free(ta);
            free(tb);
            out->topk_overlap = NAN;
            return;
        }
    }
    top_k(ref, n, kk, ta);
    top_k(test, n, kk, tb);
    for (size_t i = 0, j = 0; i < kk && j < kk;) {
        if (ta[i] == tb[j]) {
            common++;
            i++;
            j++;
        } else if (ta[i] < tb[j])
            i++;
        else
            j++;
    }
    out->topk_overlap = (double)common / (double)kk;
    if (ta != stack_a) {
        free(ta);
        free(tb);
    }
}
