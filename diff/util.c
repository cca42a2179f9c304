/*
 * util.c - apr-diff: statuses, metrics from the comparison engine (compare/compare.h),
 * and the small helpers the other files share (diff_impl.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cli.h"
#include "../common/json.h"
#include "../common/dirwalk.h"
#include "../common/mfile.h"
#include "../common/path.h"
#include "../common/ofile.h"
#include "../common/utf8.h"
#include "../common/progress.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../common/vec.h"
#include "../dequant/dq.h"
#include "../formats/apr/aprt.h"
#include "../formats/config.h"
#include "../formats/model.h"
#include "../formats/model_json.h"
#include "../formats/names.h"
#include "diff_impl.h"
#include "../compare/compare.h"
#include "../common/banned.h"
const char *const diff_st_names[ST_COUNT] = {
    "Identical", "NearlyIdentical", "SmallDiff", "MediumDiff", "LargeDiff", "Critical",
    "Transposed", "Reinterpreted", "Permuted",
};

enum st diff_value_status(const struct diff_metrics *m)
{
    if (m->n_nonfinite || m->cosine < DIFF_COS_CRIT || m->max_diff >= 1.0)
        return ST_CRITICAL;
    if (m->max_diff == 0)
        return ST_IDENTICAL;
    if (m->max_diff < 1e-3)
        return ST_NEARLY;
    if (m->max_diff < 1e-2)
        return ST_SMALL;
    if (m->max_diff < 0.1)
        return ST_MEDIUM;
    return ST_LARGE;
}

const char *diff_status_name(const struct diff_metrics *m)
{
    return diff_st_names[diff_value_status(m)];
}

/* ---- metrics (the comparison engine, compare/compare.h) ------------------------------- */

static void metrics_of_stats(const struct cmp_stats *c, struct diff_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->n = c->n;
    m->n_identical = c->n_zero + c->nf_same;
    m->n_small = c->n_small - c->n_zero;
    m->n_medium = c->n_medium - c->n_small;
    m->n_large = c->n_finite - c->n_medium;
    m->n_nonfinite = c->nf_diff;
    m->max_diff = c->max_abs;
    m->max_index = c->max_idx;
    m->mean_diff = c->mean_abs;
    m->rmse = c->rmse;
    m->rms_a = c->rms_x;
    m->nmse = c->nmse;
    m->cosine = c->cosine;
}

void diff_metrics_of(const struct cmp_sums *s, struct diff_metrics *m)
{
    struct cmp_stats c;

    cmp_stats_of(s, &c);
    metrics_of_stats(&c, m);
}

void diff_f32(const float *a, const float *b, int64_t n, struct diff_metrics *out)
{
    struct cmp_stats c;

    cmp_f32(a, b, n > 0 ? (size_t)n : 0, &c);
    metrics_of_stats(&c, out);
}

/* ---- small helpers ------------------------------------------------------------------- */

/* Natural order: digit runs compare as numbers, so blk.2 sorts before blk.10. */
int diff_natcmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i = 0, j = 0;

    while (i < na && j < nb) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[j];
        if (x >= '0' && x <= '9' && y >= '0' && y <= '9') {
            size_t i1 = i, j1 = j, li, lj;
            while (i1 < na && a[i1] == '0')
                i1++;
            while (j1 < nb && b[j1] == '0')
                j1++;
            li = i1;
            lj = j1;
            while (li < na && a[li] >= '0' && a[li] <= '9')
                li++;
            while (lj < nb && b[lj] >= '0' && b[lj] <= '9')
                lj++;
            if (li - i1 != lj - j1)
                return li - i1 < lj - j1 ? -1 : 1;
            for (; i1 < li; i1++, j1++)
                if (a[i1] != b[j1])
                    return (unsigned char)a[i1] < (unsigned char)b[j1] ? -1 : 1;
            i = li;
            j = lj;
            continue;
        }
        if (x != y)
            return x < y ? -1 : 1;
        i++;
        j++;
    }
    if (i < na || j < nb)
        return i < na ? 1 : -1;
    /* equal under natural order ("01" vs "1"): fall back to bytes for a total order */
    {
        size_t n = na < nb ? na : nb;
        int c = n ? memcmp(a, b, n) : 0;
        return c ? c : (na > nb) - (na < nb);
    }
}

char *diff_dup_n(const char *p, size_t n, struct err *e)
{
    char *s = malloc(n + 1);

    if (!s) {
        ERR(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* "[4096,32000]" */
const char *diff_shape_of(char *buf, size_t cap, const struct model_tensor *t)
{
    return shape_fmt(buf, cap, t->shape, t->n_dims, SHAPE_BRACKETS);
}

void diff_json_shape(struct json_w *w, const struct model_tensor *t)
{
    json_w_arr(w);
    for (int k = 0; k < t->n_dims; k++)
        json_w_i64(w, t->shape[k]);
    json_w_arr_end(w);
}

int diff_same_shape(const struct model_tensor *a, const struct model_tensor *b)
{
    if (a->n_dims != b->n_dims)
        return 0;
    for (int k = 0; k < a->n_dims; k++)
        if (a->shape[k] != b->shape[k])
            return 0;
    return 1;
}

int diff_swapped_2d(const struct model_tensor *a, const struct model_tensor *b)
{
    return a->n_dims == 2 && b->n_dims == 2 && a->shape[0] == b->shape[1] &&
           a->shape[1] == b->shape[0] && a->shape[0] != a->shape[1];
}

/* Flat index idx >= 0 -> its coordinates c[0, n_dims) in shape, outermost first. */
static void unravel(int n_dims, const int64_t *shape, int64_t idx, int64_t *c)
{
    for (int k = n_dims - 1; k >= 0; k--) {
        int64_t d = shape[k] > 0 ? shape[k] : 1;
        c[k] = idx % d;
        idx /= d;
    }
}

/* Flat index -> coordinates in t's shape, outermost first ("[3,17]"). */
void diff_fmt_coords(char *buf, size_t cap, int n_dims, const int64_t *shape, int64_t idx)
{
    int64_t c[MODEL_MAX_DIMS];
    size_t o = 0;

    if (idx < 0) {
        snprintf(buf, cap, "-");
        return;
    }
    if (n_dims <= 0) {
        snprintf(buf, cap, "[%lld]", (long long)idx);
        return;
    }
    unravel(n_dims, shape, idx, c);
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int k = 0; k < n_dims && o < cap; k++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", k ? "," : "", (long long)c[k]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

/* fmt_coords for JSON: an array of coordinates, null when idx < 0. */
void diff_json_coords(struct json_w *w, int n_dims, const int64_t *shape, int64_t idx)
{
    int64_t c[MODEL_MAX_DIMS];

    if (idx < 0) {
        json_w_null(w);
        return;
    }
    if (n_dims <= 0) {
        json_w_arr(w);
        json_w_i64(w, idx);
        json_w_arr_end(w);
        return;
    }
    unravel(n_dims, shape, idx, c);
    json_w_arr(w);
    for (int k = 0; k < n_dims; k++)
        json_w_i64(w, c[k]);
    json_w_arr_end(w);
}

/* A number for text output: shortest round-trip form ("1", "0.0039062", "2.4e-05"). */
const char *diff_num(char *buf, size_t cap, double v)
{
    if (json_fmt_num(buf, cap, v, 0) != 0)
        return buf;    /* "nan", "inf", "-inf" */
    if (strlen(buf) > 11)
        snprintf(buf, cap, "%.6g", v);
    return buf;
}

/* End the JSON document in b with a newline and write it to out; b is released either way. */
int diff_write_json(FILE *out, struct sbuf *b, struct err *e)
{
    int rc = 0;

    sbuf_addc(b, '\n');
    if (sbuf_check(b, "output", e))
        rc = -1;
    else if (b->len && fwrite(b->p, 1, b->len, out) != b->len)
        rc = ERR_SYS(e, "cannot write output");
    sbuf_release(b);
    return rc;
}

int diff_gates_given(const struct diff_opts *o)
{
    return !isnan(o->fail_cos) || !isnan(o->fail_max) || !isnan(o->fail_nmse);
}

/* Within every threshold given (metrics must exist). */
int diff_within(const struct diff_opts *o, const struct diff_metrics *m)
{
    if (m->n_nonfinite)
        return 0;
    if (!isnan(o->fail_cos) && !(m->cosine >= o->fail_cos))
        return 0;
    if (!isnan(o->fail_max) && !(m->max_diff <= o->fail_max))
        return 0;
    if (!isnan(o->fail_nmse) && !(m->nmse <= o->fail_nmse))
        return 0;
    return 1;
}
