/*
 * dumps.c - apr-diff on activation dumps: APRT files, headerless f32 files and
 * directories of them (stages in aprender's order, the first divergent stage).
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
static int dump_load(const char *path, enum kind k, struct dump *d, struct err *e)
{
    memset(d, 0, sizeof *d);
    if (k == K_APRT) {
        struct aprt t;
        if (aprt_open(&t, path, e))
            return -1;
        d->aprt = 1;
        d->layer = t.layer;
        d->n = t.count;
        d->v = malloc((size_t)(t.count ? t.count : 1) * sizeof *d->v);
        if (!d->v) {
            aprt_close(&t);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        aprt_copy(&t, 0, t.count, d->v);
        aprt_close(&t);
        return 0;
    }
    {
        struct mfile mf;
        if (mfile_open(&mf, path, e))
            return -1;
        if (mf.size % 4) {
            unsigned long long sz = (unsigned long long)mf.size;
            mfile_close(&mf);
            return ERR(e, ERR_FORMAT, "'%s': %llu bytes is not a whole number of f32 values",
                       path, sz);
        }
        d->n = mf.size / 4;
        d->v = malloc((size_t)(d->n ? d->n : 1) * sizeof *d->v);
        if (!d->v) {
            mfile_close(&mf);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        for (uint64_t i = 0; i < d->n; i++) {
            const uint8_t *q = mf.data + 4 * i;
            uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                         (uint32_t)q[3] << 24;
            memcpy(&d->v[i], &u, 4);
        }
        mfile_close(&mf);
        return 0;
    }
}

static int top_worse(const struct top *x, const struct top *y)
{
    return x->d > y->d || (x->d == y->d && x->index < y->index);
}

/* The K largest |a-b| (ties: lower index first), sorted worst first. */
static int top_k(const float *a, const float *b, uint64_t n, size_t k, struct top **out,
                 size_t *n_out, struct err *e)
{
    struct top *t = calloc(k ? k : 1, sizeof *t);
    size_t m = 0;

    if (!t)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n && k; i++) {
        struct top c;
        float x = a[i], y = b[i];
        c.index = (int64_t)i;
        c.a = x;
        c.b = y;
        if (!isfinite(x) || !isfinite(y))
            c.d = (isnan(x) && isnan(y)) || x == y ? 0 : INFINITY;
        else
            c.d = fabs((double)x - (double)y);
        if (c.d == 0 || (m == k && !top_worse(&c, &t[m - 1])))
            continue;   /* equal elements are not differences */
        {
            size_t j = m < k ? m++ : m - 1;
            while (j > 0 && top_worse(&c, &t[j - 1])) {
                t[j] = t[j - 1];
                j--;
            }
            t[j] = c;
        }
    }
    *out = t;
    *n_out = m;
    return 0;
}

static int stage_compare(const struct diff_opts *o, struct stage *s, struct err *e)
{
    size_t k = o->limit >= 0 ? (size_t)o->limit : DIFF_TOPK;

    if (s->da.n != s->db.n) {
        s->comparable = 0;
        s->status = ST_CRITICAL;
        s->pass = 0;
        return 0;
    }
    s->comparable = 1;
    diff_f32(s->da.v, s->db.v, (int64_t)s->da.n, &s->m);
    s->status = diff_value_status(&s->m);
    if (diff_gates_given(o))
        s->pass = diff_within(o, &s->m);
    else
        s->pass = s->status == ST_IDENTICAL;
    if (s->da.aprt && s->db.aprt && s->da.layer != s->db.layer)
        s->pass = 0;
    return top_k(s->da.v, s->db.v, s->da.n, k, &s->top, &s->n_top, e);
}

static void stage_release(struct stage *s)
{
    free(s->rel);
    free(s->da.v);
    free(s->db.v);
    free(s->top);
}

static void json_layer(struct json_w *w, const struct dump *d)
{
    if (!d->aprt)
        json_w_null(w);
    else if (d->layer == APRT_LAYER_MODEL)
        json_w_str(w, "whole-model");
    else
        json_w_u64(w, d->layer);
}

/* One stage in aprender's apr-stage-diff-v1 field names, then ours. */
static void json_stage(struct json_w *w, const struct diff_opts *o, const struct stage *s,
                       int schema)
{
    json_w_obj(w);
    if (schema) {
        json_w_key(w, "schema");
        json_w_str(w, "apr-stage-diff-v1");
    }
    if (s->rel) {
        json_w_key(w, "path");
        json_w_str(w, s->rel);
        json_w_key(w, "stage");
        json_w_str(w, s->stage_name);
    }
    json_w_key(w, "path_a");
    if (s->have_a)
        json_w_str(w, s->path_a);
    else
        json_w_null(w);
    json_w_key(w, "path_b");
    if (s->have_b)
        json_w_str(w, s->path_b);
    else
        json_w_null(w);
    json_w_key(w, "layer");
    json_layer(w, s->have_a ? &s->da : &s->db);
    json_w_key(w, "dim_product");
    json_w_u64(w, s->have_a ? s->da.n : s->db.n);
    if (!s->comparable) {
        json_w_key(w, "dim_product_b");
        json_w_u64(w, s->db.n);
        json_w_key(w, "status");
        json_w_str(w, s->err[0] ? "error" : diff_st_names[ST_CRITICAL]);
        json_w_key(w, "note");
        json_w_str(w, s->err[0] ? s->err : !s->have_a || !s->have_b ? "only on one side"
                                         : "lengths differ");
        json_w_key(w, diff_gates_given(o) ? "within_thresholds" : "same");
        json_w_bool(w, 0);
        json_w_obj_end(w);
        return;
    }
    json_w_key(w, "max_abs_diff");
    json_w_f32(w, (float)s->m.max_diff);
    json_w_key(w, "max_abs_diff_index");
    if (s->m.max_index >= 0)
        json_w_i64(w, s->m.max_index);
    else
        json_w_null(w);
    json_w_key(w, "rms_diff");
    json_w_f64(w, s->m.rmse);
    json_w_key(w, "cosine_sim");
    json_w_f64(w, s->m.cosine);
    json_w_key(w, "top_diffs");
    json_w_arr(w);
    for (size_t i = 0; i < s->n_top; i++) {
        json_w_obj(w);
        json_w_key(w, "index");
        json_w_i64(w, s->top[i].index);
        json_w_key(w, "a");
        json_w_f32(w, s->top[i].a);
        json_w_key(w, "b");
        json_w_f32(w, s->top[i].b);
        json_w_key(w, "abs_diff");
        json_w_f64(w, s->top[i].d);
        json_w_obj_end(w);
    }
    json_w_arr_end(w);
    json_w_key(w, "layer_b");
    json_layer(w, &s->db);
    json_w_key(w, "mean_abs_diff");
    json_w_f64(w, s->m.mean_diff);
    json_w_key(w, "nmse");
    json_w_f64(w, s->m.nmse);
    json_w_key(w, "identical_count");
    json_w_u64(w, s->m.n_identical);
    json_w_key(w, "small_diff_count");
    json_w_u64(w, s->m.n_small);
    json_w_key(w, "medium_diff_count");
    json_w_u64(w, s->m.n_medium);
    json_w_key(w, "large_diff_count");
    json_w_u64(w, s->m.n_large);
    json_w_key(w, "nonfinite_mismatch_count");
    json_w_u64(w, s->m.n_nonfinite);
    json_w_key(w, "status");
    json_w_str(w, diff_st_names[s->status]);
    json_w_key(w, diff_gates_given(o) ? "within_thresholds" : "same");
    json_w_bool(w, s->pass);
    json_w_obj_end(w);
}

static void text_metrics(FILE *out, const struct stage *s)
{
    char b1[64], b2[64], b3[64], b4[64], b5[64];

    fprintf(out, "status %s\n", diff_st_names[s->status]);
    fprintf(out, "cosine %s  max|a-b| %s", diff_num(b1, sizeof b1, s->m.cosine),
            s->m.n_nonfinite ? "nan" : diff_num(b2, sizeof b2, s->m.max_diff));
    if (s->m.max_index >= 0 && !s->m.n_nonfinite)   /* none for two empty dumps */
        fprintf(out, " at [%lld]", (long long)s->m.max_index);
    fprintf(out, "  mean|a-b| %s  rmse %s  nmse %s\n", diff_num(b3, sizeof b3, s->m.mean_diff),
            diff_num(b4, sizeof b4, s->m.rmse), diff_num(b5, sizeof b5, s->m.nmse));
    fprintf(out, "identical %llu, small %llu, medium %llu, large %llu, NaN/Inf mismatches %llu\n",
            (unsigned long long)s->m.n_identical, (unsigned long long)s->m.n_small,
            (unsigned long long)s->m.n_medium, (unsigned long long)s->m.n_large,
            (unsigned long long)s->m.n_nonfinite);
    if (s->n_top) {
        fprintf(out, "top %zu |a-b|:\n  %-12s %-14s %-14s %s\n", s->n_top, "index", "a", "b",
                "|a-b|");
        for (size_t i = 0; i < s->n_top; i++)
            fprintf(out, "  %-12lld %-14s %-14s %s\n", (long long)s->top[i].index,
                    diff_num(b1, sizeof b1, s->top[i].a), diff_num(b2, sizeof b2, s->top[i].b),
                    diff_num(b3, sizeof b3, s->top[i].d));
    }
}

static void text_dump_head(FILE *out, const char *tag, const char *path, const struct dump *d)
{
    fprintf(out, "%s: %s (", tag, path);
    if (d->aprt && d->layer == APRT_LAYER_MODEL)
        fprintf(out, "APRT, whole-model, ");
    else if (d->aprt)
        fprintf(out, "APRT, layer %u, ", d->layer);
    else
        fprintf(out, "f32, ");
    fprintf(out, "%llu values)\n", (unsigned long long)d->n);
}

static int dump_pair(const struct diff_opts *o, const char *a, enum kind ka, const char *b,
                     enum kind kb, FILE *out, int *different, struct err *e)
{
    struct stage s;
    int rc = -1;

    memset(&s, 0, sizeof s);
    s.path_a = a;
    s.path_b = b;
    s.have_a = s.have_b = 1;
    if (dump_load(a, ka, &s.da, e) || dump_load(b, kb, &s.db, e))
        goto out;
    if (stage_compare(o, &s, e))
        goto out;
    *different = !s.pass;
    if (o->json) {
        struct sbuf sb = SBUF_INIT(OUT_MAX);
        struct json_w w;
        json_w_init(&w, &sb, 1);
        json_stage(&w, o, &s, 1);
        rc = diff_write_json(out, &sb, e);
        goto out;
    }
    text_dump_head(out, "a", a, &s.da);
    text_dump_head(out, "b", b, &s.db);
    if (!s.comparable)
        fprintf(out, "status Critical\nlengths differ: %llu vs %llu values\n",
                (unsigned long long)s.da.n, (unsigned long long)s.db.n);
    else
        text_metrics(out, &s);
    if (s.da.aprt && s.db.aprt && s.da.layer != s.db.layer)
        fprintf(out, "layers differ: %u vs %u\n", s.da.layer, s.db.layer);
    fprintf(out, "%s\n", *different ? "different" : diff_gates_given(o) ? "within thresholds" :
            "identical");
    rc = 0;
out:
    stage_release(&s);
    return rc;
}

/* ---- dump directories ---------------------------------------------------------------- */

/* aprender's stage order (reference/apr.md 5) */
static const char *const stage_order[] = {
    "embedding", "attn_norm", "qkv_matmul", "qkv_bias", "q_post_rope", "k_post_rope",
    "attn_scores", "attn_softmax", "attention", "attn_out", "post_attn_residual", "ffn_norm",
    "ffn_gate", "ffn_up", "ffn_silu", "ffn_swigl", "ffn_out", "post_ffn_residual",
    "moe_router", "moe_ffn_out", "final_norm", "lm_head",
};

static int has_dump_ext(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && (str_ends_with(name, ".bin") || str_ends_with(name, ".f32"));
}

/* Order key: embedding (top level) first, then layer by layer in stage order, then
 * whole-model stages, then anything unknown, sorted. */
static void stage_key(struct stage *s)
{
    const char *r = s->rel, *slash = strrchr(r, '/'), *base = slash ? slash + 1 : r;
    size_t bn = strlen(base);
    long layer = -1;
    int known = -1;

    if (bn > 4)
        bn -= 4;
    snprintf(s->stage_name, sizeof s->stage_name, "%.*s", (int)bn, base);
    for (int i = 0; i < N_STAGES; i++)
        if (strcmp(s->stage_name, stage_order[i]) == 0)
            known = i;
    if (strcmp(s->stage_name, "layer_output") == 0)
        known = 17;
    if (slash && strncmp(r, "layer-", 6) == 0 && (size_t)(slash - r) > 6 &&
        strchr(r, '/') == slash) {
        const char *q = r + 6;
        layer = 0;
        for (; q < slash && *q >= '0' && *q <= '9' && layer < 100000000; q++)
            layer = layer * 10 + (*q - '0');
        if (q != slash)
            layer = -1;
    }
    s->layer = (int)layer;
    s->rank = known;
    if (known < 0 || (slash && layer < 0))
        s->group = INT64_MAX;                      /* unknown */
    else if (layer >= 0)
        s->group = layer;
    else if (known == 0)
        s->group = -1;                             /* embedding at the top level */
    else
        s->group = INT64_MAX - 1;                  /* whole-model stages */
}

static int stage_qsort(const void *x, const void *y)
{
    const struct stage *a = x, *b = y;

    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    if (a->group != INT64_MAX && a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return diff_natcmp(a->rel, strlen(a->rel), b->rel, strlen(b->rel));
}

/* One directory comparison: the merged stage list and its tallies. */
struct dirdiff {
    const char *a, *b;
    struct dirlist La, Lb;
    struct stage *S;
    size_t n, first, n_only, n_cmp, n_err, n_diff;
    double thr;
};

/* every *.bin / *.f32 file under a and b (links followed, dot files left out), merged
 * by relative path and sorted in stage order */
static int dd_list(struct dirdiff *D, struct err *e)
{
    size_t i = 0, j = 0;

    if (dir_walk(&D->La, D->a, DW_FOLLOW | DW_SKIP_DOT | DW_DEPTH_STOP, 8, DIFF_MAX_FILES,
                 has_dump_ext, e) ||
        dir_walk(&D->Lb, D->b, DW_FOLLOW | DW_SKIP_DOT | DW_DEPTH_STOP, 8, DIFF_MAX_FILES,
                 has_dump_ext, e))
        return -1;
    D->S = calloc(D->La.n + D->Lb.n + 1, sizeof *D->S);
    if (!D->S)
        return ERR(e, ERR_NOMEM, "out of memory");
    while (i < D->La.n || j < D->Lb.n) {
        struct stage *s = &D->S[D->n++];
        int c = i >= D->La.n ? 1 : j >= D->Lb.n ? -1 : strcmp(D->La.v[i].rel, D->Lb.v[j].rel);
        const char *rel = c <= 0 ? D->La.v[i].rel : D->Lb.v[j].rel;
        s->rel = diff_dup_n(rel, strlen(rel), e);
        if (!s->rel)
            return -1;
        s->have_a = c <= 0;
        s->have_b = c >= 0;
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
        stage_key(s);
    }
    qsort(D->S, D->n, sizeof *D->S, stage_qsort);
    return 0;
}

/* Load both dumps of a stage.  A dump that cannot be read is a row of its own (status
 * error, the reason), not the end of the whole comparison: returns 1 for such a row,
 * -1 only when memory runs out. */
static int dd_load(const char *pa, const char *pb, struct stage *s, struct err *e)
{
    struct err le = ERR_INIT;
    enum kind ka, kb;

    if (diff_detect(pa, &ka, &le) == 0 && diff_detect(pb, &kb, &le) == 0) {
        if ((ka != K_APRT && ka != K_RAW) || (kb != K_APRT && kb != K_RAW))
            ERR(&le, ERR_FORMAT, "'%s': not an activation dump",
                ka == K_APRT || ka == K_RAW ? pb : pa);
        else if (dump_load(pa, ka, &s->da, &le) == 0)
            dump_load(pb, kb, &s->db, &le);
    }
    if (err_ok(&le))
        return 0;
    if (le.code == ERR_NOMEM) {
        *e = le;
        return -1;
    }
    memcpy(s->err, le.msg, sizeof s->err - 1);
    s->err[sizeof s->err - 1] = 0;
    s->comparable = 0;
    s->status = ST_CRITICAL;
    s->pass = 0;
    return 1;
}

static int dd_compare(const struct diff_opts *o, struct dirdiff *D, struct err *e)
{
    char pa[8192], pb[8192];

    for (size_t k = 0; k < D->n; k++) {
        struct stage *s = &D->S[k];
        int r;
        snprintf(pa, sizeof pa, "%s/%s", D->a, s->rel);
        snprintf(pb, sizeof pb, "%s/%s", D->b, s->rel);
        if (!s->have_a || !s->have_b) {
            D->n_only++;
            s->status = ST_CRITICAL;
            continue;
        }
        D->n_cmp++;
        r = dd_load(pa, pb, s, e);
        if (r < 0)
            return -1;
        if (r > 0) {
            D->n_err++;
            if (D->first == SIZE_MAX)
                D->first = k;
            continue;
        }
        if (stage_compare(o, s, e))
            return -1;
        /* the divergence the stage list is read for: below the cosine threshold */
        if (D->first == SIZE_MAX &&
            (!s->comparable || s->m.cosine < D->thr || s->m.n_nonfinite))
            D->first = k;
        /* the values are not needed any more: keep memory to one pair */
        free(s->da.v);
        free(s->db.v);
        s->da.v = s->db.v = NULL;
    }
    for (size_t k = 0; k < D->n; k++)
        D->n_diff += D->S[k].have_a && D->S[k].have_b && !D->S[k].pass && !D->S[k].err[0];
    return 0;
}

static void dd_json_only(struct json_w *w, const struct dirdiff *D, const char *key, int in_a)
{
    json_w_key(w, key);
    json_w_arr(w);
    for (size_t k = 0; k < D->n; k++)
        if ((in_a ? D->S[k].have_a : D->S[k].have_b) && !(in_a ? D->S[k].have_b : D->S[k].have_a))
            json_w_str(w, D->S[k].rel);
    json_w_arr_end(w);
}

static int dd_json(const struct diff_opts *o, struct dirdiff *D, int different, FILE *out,
                   struct err *e)
{
    struct sbuf sb = SBUF_INIT(OUT_MAX);
    const struct stage *f = D->first != SIZE_MAX ? &D->S[D->first] : NULL;
    char pa[8192], pb[8192];
    struct json_w w;

    json_w_init(&w, &sb, 1);
    json_w_obj(&w);
    json_w_key(&w, "schema");
    json_w_str(&w, "apr-stage-dir-diff-v1");
    json_w_key(&w, "path_a");
    json_w_str(&w, D->a);
    json_w_key(&w, "path_b");
    json_w_str(&w, D->b);
    json_w_key(&w, "threshold_cos");
    json_w_f64(&w, D->thr);
    json_w_key(&w, "stages_compared");
    json_w_u64(&w, D->n_cmp);
    json_w_key(&w, "first_divergent");
    if (f)
        json_w_str(&w, f->rel);
    else
        json_w_null(&w);
    json_w_key(&w, "first_divergent_layer");
    if (f && f->layer >= 0)
        json_w_i64(&w, f->layer);
    else
        json_w_null(&w);
    json_w_key(&w, "first_divergent_stage");
    if (f)
        json_w_str(&w, f->stage_name);
    else
        json_w_null(&w);
    json_w_key(&w, "same");
    json_w_bool(&w, !different);
    dd_json_only(&w, D, "only_in_a", 1);
    dd_json_only(&w, D, "only_in_b", 0);
    json_w_key(&w, "stages");
    json_w_arr(&w);
    for (size_t k = 0; k < D->n; k++) {
        snprintf(pa, sizeof pa, "%s/%s", D->a, D->S[k].rel);
        snprintf(pb, sizeof pb, "%s/%s", D->b, D->S[k].rel);
        D->S[k].path_a = pa;
        D->S[k].path_b = pb;
        if (D->S[k].have_a && D->S[k].have_b)
            json_stage(&w, o, &D->S[k], 0);
        D->S[k].path_a = D->S[k].path_b = NULL;    /* they pointed into this frame */
    }
    json_w_arr_end(&w);
    json_w_obj_end(&w);
    return diff_write_json(out, &sb, e);
}

/* one row of the text table: status and metrics, the stage, and why when it is not plain */
static void dd_text_row(FILE *out, const struct stage *s)
{
    char b1[64], b2[64], b3[64], b4[64];

    if (!s->have_a || !s->have_b) {
        fprintf(out, "%s only in %s: ", s->have_a ? "<" : ">", s->have_a ? "a" : "b");
    } else if (!s->comparable) {
        fprintf(out, "%-15s %-12s %-11s %-11s %-11s ",
                s->err[0] ? "error" : diff_st_names[ST_CRITICAL], "-", "-", "-", "-");
    } else {
        /* a NaN/Inf facing a finite value: the largest |a-b| is not a number */
        fprintf(out, "%-15s %-12s %-11s %-11s %-11s ", diff_st_names[s->status],
                diff_num(b1, sizeof b1, s->m.cosine),
                s->m.n_nonfinite ? "nan" : diff_num(b2, sizeof b2, s->m.max_diff),
                diff_num(b3, sizeof b3, s->m.rmse), diff_num(b4, sizeof b4, s->m.nmse));
    }
    cli_put_escaped(out, s->rel, strlen(s->rel));
    if (s->err[0]) {
        fputs("  (", out);
        cli_put_escaped(out, s->err, strlen(s->err));
        fputc(')', out);
    } else if (s->have_a && s->have_b && !s->comparable) {
        fprintf(out, "  (lengths differ: %llu vs %llu)", (unsigned long long)s->da.n,
                (unsigned long long)s->db.n);
    } else if (s->have_a && s->have_b && s->da.aprt && s->db.aprt &&
               s->da.layer != s->db.layer) {
        fprintf(out, "  (layers differ: %lld vs %lld)",
                s->da.layer == APRT_LAYER_MODEL ? -1LL : (long long)s->da.layer,
                s->db.layer == APRT_LAYER_MODEL ? -1LL : (long long)s->db.layer);
    } else if (s->have_a && s->have_b && s->m.n_nonfinite) {
        fprintf(out, "  (%llu NaN/Inf mismatches)", (unsigned long long)s->m.n_nonfinite);
    }
    fputc('\n', out);
}

static void dd_text(const struct diff_opts *o, const struct dirdiff *D, int different, FILE *out)
{
    const struct stage *f = D->first != SIZE_MAX ? &D->S[D->first] : NULL;
    char b1[64], b2[64];

    fprintf(out, "a: %s (%zu dump files)\nb: %s (%zu dump files)\n", D->a, D->La.n, D->b,
            D->Lb.n);
    fprintf(out, "%-15s %-12s %-11s %-11s %-11s %s\n", "status", "cosine", "max|a-b|", "rmse",
            "nmse", "stage");
    for (size_t k = 0; k < D->n; k++)
        dd_text_row(out, &D->S[k]);
    if (f) {
        fputs("first divergent stage: ", out);
        cli_put_escaped(out, f->rel, strlen(f->rel));
        if (f->err[0])
            fputs(" (unreadable)\n", out);
        else if (f->comparable && f->m.n_nonfinite)
            fprintf(out, " (%llu NaN/Inf where the other side is finite)\n",
                    (unsigned long long)f->m.n_nonfinite);
        else if (f->comparable)
            fprintf(out, " (cosine %s < %s)\n", diff_num(b1, sizeof b1, f->m.cosine),
                    diff_num(b2, sizeof b2, D->thr));
        else
            fprintf(out, " (lengths differ)\n");
    } else {
        fprintf(out, "no stage below cosine %s\n", diff_num(b1, sizeof b1, D->thr));
    }
    fprintf(out, "%zu stages compared, %zu only on one side, %zu unreadable\n", D->n_cmp,
            D->n_only, D->n_err);
    if (different)   /* say why */
        fprintf(out, "different: %zu stage%s differ%s, %zu only on one side, %zu "
                "unreadable\n", D->n_diff, D->n_diff == 1 ? "" : "s", D->n_diff == 1 ? "s" : "",
                D->n_only, D->n_err);
    else
        fprintf(out, "%s\n", diff_gates_given(o) ? "within thresholds" : "identical");
}

static int dd_plot(const struct diff_opts *o, const struct dirdiff *D, struct err *e)
{
    struct plot_pt *pt = calloc(D->n + 1, sizeof *pt);
    size_t m = 0;
    int rc;

    if (!pt)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < D->n; k++) {
        const struct stage *s = &D->S[k];
        struct plot_pt *q;
        if (!s->have_a || !s->have_b)
            continue;
        q = &pt[m++];
        q->label = s->rel;
        q->label_n = strlen(s->rel);
        q->group = s->group < 0 ? -1 : s->group > INT32_MAX - 1 ? INT32_MAX : (int)s->group;
        q->valid = s->comparable;
        q->cos_dist = 1 - s->m.cosine;
        q->rel_err = s->m.rms_a > 0 ? s->m.rmse / s->m.rms_a : s->m.rmse > 0 ? 10 : 0;
        q->bad = diff_plot_bad(s->status);
    }
    rc = diff_plot_write(o->plot, D->a, D->b, pt, m, e);
    free(pt);
    return rc;
}

static int dump_dirs(const struct diff_opts *o, const char *a, const char *b, FILE *out,
                     int *different, struct err *e)
{
    struct dirdiff D;
    int rc = -1;

    memset(&D, 0, sizeof D);
    D.a = a;
    D.b = b;
    D.first = SIZE_MAX;
    D.thr = isnan(o->fail_cos) ? DIFF_STAGE_COS : o->fail_cos;
    if (dd_list(&D, e) || dd_compare(o, &D, e))
        goto out;
    *different = D.n_only > 0 || D.n_err > 0 || D.n_diff > 0;
    if (o->json ? dd_json(o, &D, *different, out, e) : (dd_text(o, &D, *different, out), 0))
        goto out;
    if (o->plot && dd_plot(o, &D, e))
        goto out;
    rc = 0;
out:
    for (size_t k = 0; D.S && k < D.n; k++)
        stage_release(&D.S[k]);
    free(D.S);
    dirlist_release(&D.La);
    dirlist_release(&D.Lb);
    return rc;
}

/* ---- entry ------------------------------------------------------------------------- */

int diff_run(const struct diff_opts *opts, const char *a, const char *b, FILE *out,
             struct err *e)
{
    struct diff_opts oo = *opts, *o = &oo;
    enum kind ka, kb;
    struct side A, B;
    struct pairs P;
    regex_t re;
    int have_re = 0, different = 0, rc = -1;

    memset(&A, 0, sizeof A);
    memset(&B, 0, sizeof B);
    memset(&P, 0, sizeof P);
    if (diff_detect(a, &ka, e) || diff_detect(b, &kb, e))
        return -1;
    if (ka == K_DUMPDIR || kb == K_DUMPDIR) {
        if (ka != kb)
            return ERR(e, ERR_USAGE, "cannot compare %s '%s' with %s '%s'", diff_kind_names[ka], a,
                       diff_kind_names[kb], b);
        rc = dump_dirs(o, a, b, out, &different, e);
        return rc ? -1 : different;
    }
    if (ka != K_MODEL && kb != K_MODEL) {
        rc = dump_pair(o, a, ka, b, kb, out, &different, e);
        return rc ? -1 : different;
    }
    if (ka != kb)
        return ERR(e, ERR_USAGE, "cannot compare %s '%s' with %s '%s'", diff_kind_names[ka], a,
                   diff_kind_names[kb], b);
    /* thresholds and the picture are about values: they imply --values */
    if (diff_gates_given(o) || o->plot)
        oo.values = 1;
    if (o->filter) {
        int c = regcomp(&re, o->filter, REG_EXTENDED | REG_NOSUB);
        if (c != 0) {
            char msg[128];
            regerror(c, &re, msg, sizeof msg);
            return ERR(e, ERR_USAGE, "--filter: '%s': %s", o->filter, msg);
        }
        have_re = 1;
    }
    if (diff_side_open(&A, a, e) || diff_side_open(&B, b, e))
        goto out;
    if (diff_pairs_build(&A, &B, have_re ? &re : NULL, &P, e))
        goto out;
    if (!o->values) {
        if (diff_structural(o, &A, &B, &P, out, &different, e))
            goto out;
    } else {
        if (diff_values_compute(o, &A, &B, &P, e))
            goto out;
        if (diff_values_report(o, &A, &B, &P, out, &different, e))
            goto out;
        if (o->plot && diff_values_plot(o, &A, &B, &P, e))
            goto out;
    }
    rc = different;
out:
    diff_pairs_release(&P);
    model_close(&A.m);
    model_close(&B.m);
    if (have_re)
        regfree(&re);
    return rc;
}
