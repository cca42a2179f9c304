/*
 * report.c - apr-diff --values: the text table and aprender's JSON report.
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
/* ---- value diff output --------------------------------------------------------------- */

static const struct pairs *g_wp;

/* Worst first: not comparable, then lowest cosine, highest NMSE; then by name. */
static int pair_qsort_worst(const void *x, const void *y)
{
    const struct pair *a = &g_wp->v[*(const size_t *)x], *b = &g_wp->v[*(const size_t *)y];

    if (a->done != b->done)
        return a->done ? 1 : -1;
    if (a->done) {
        if (a->m.cosine != b->m.cosine)
            return a->m.cosine < b->m.cosine ? -1 : 1;
        if (a->m.nmse != b->m.nmse)
            return a->m.nmse > b->m.nmse ? -1 : 1;
        if (a->m.max_diff != b->m.max_diff)
            return a->m.max_diff > b->m.max_diff ? -1 : 1;
    }
    return diff_pair_cmp_name(diff_g_sort_a, diff_g_sort_b, a, b);
}

static void text_notes(FILE *f, const struct side *A, const struct side *B, const struct pair *p)
{
    const struct model_tensor *ta = diff_pa(A, p), *tb = diff_pb(B, p);
    const char *l = diff_layout_name(A, B, p);
    char sa[SHAPE_STR_MAX], sb[SHAPE_STR_MAX];
    int any = 0;

#define SEP() fputs(any++ ? "; " : "  (", f)
    if (!slice_eq(ta->name, tb->name)) {
        SEP();
        fputs("b: ", f);
        cli_put_escaped(f, tb->name.p, tb->name.n);
    }
    if (ta->dtype != tb->dtype) {
        SEP();
        fprintf(f, "%s vs %s", dtype_name(ta->dtype), dtype_name(tb->dtype));
    }
    if (!diff_same_shape(ta, tb)) {
        SEP();
        fprintf(f, "%s vs %s", diff_shape_of(sa, sizeof sa, ta), diff_shape_of(sb, sizeof sb, tb));
    }
    if (strcmp(l, "transposed") == 0) {
        SEP();
        fputs("compared as the transpose", f);
    } else if (strcmp(l, "reinterpreted") == 0) {
        SEP();
        fputs("compared in flat order", f);
    } else if (strcmp(l, "rope_unpermuted") == 0) {
        SEP();
        fputs("RoPE row permutation undone", f);
    } else if (strcmp(l, "rope_permuted") == 0) {
        SEP();
        fputs("rows match in the other RoPE order", f);
    } else if (strcmp(l, "rope_not_permuted") == 0) {
        SEP();
        fputs("rows match unpermuted though the layouts differ", f);
    }
    if (p->done && p->m.n_nonfinite) {
        SEP();
        fprintf(f, "%llu NaN/Inf mismatches", (unsigned long long)p->m.n_nonfinite);
    }
    if (p->zero_a || p->zero_b) {
        SEP();
        fprintf(f, "%s is all zeros", p->zero_a ? "a" : "b");
    }
    if (p->note[0]) {
        SEP();
        fputs(p->note, f);
    }
    if (any)
        fputc(')', f);
#undef SEP
}

static void json_result(struct json_w *w, const struct side *A, const struct side *B,
                        const struct pair *p, int gates)
{
    const struct model_tensor *ta = diff_pa(A, p), *tb = diff_pb(B, p);
    const struct diff_metrics *m = &p->m;

    json_w_obj(w);
    json_w_key(w, "name");
    json_w_str_n(w, ta->name.p, ta->name.n);
    json_w_key(w, "shape_a");
    diff_json_shape(w, ta);
    json_w_key(w, "shape_b");
    diff_json_shape(w, tb);
    json_w_key(w, "element_count");
    json_w_i64(w, ta->n_elems);
#define F(k, v) \
    do { json_w_key(w, k); if (p->done) json_w_f64(w, v); else json_w_null(w); } while (0)
#define U(k, v) \
    do { json_w_key(w, k); if (p->done) json_w_u64(w, v); else json_w_null(w); } while (0)
    F("mean_diff", m->mean_diff);
    F("max_diff", m->max_diff);
    F("rmse", m->rmse);
    F("cosine_similarity", m->cosine);
    U("identical_count", m->n_identical);
    U("small_diff_count", m->n_small);
    U("medium_diff_count", m->n_medium);
    U("large_diff_count", m->n_large);
    json_w_key(w, "status");
    json_w_str(w, p->done ? diff_st_names[p->status] : diff_st_names[ST_CRITICAL]);
    json_w_key(w, "name_b");
    json_w_str_n(w, tb->name.p, tb->name.n);
    json_w_key(w, "canonical_name");
    json_w_str(w, p->key);
    json_w_key(w, "dtype_a");
    json_w_str(w, dtype_name(ta->dtype));
    json_w_key(w, "dtype_b");
    json_w_str(w, dtype_name(tb->dtype));
    F("nmse", m->nmse);
    F("relative_error", m->rms_a > 0 ? m->rmse / m->rms_a : (m->rmse > 0 ? INFINITY : 0));
    json_w_key(w, "max_index");
    if (p->done)
        diff_json_coords(w, ta->n_dims, ta->shape, m->max_index);
    else
        json_w_null(w);
    U("nonfinite_mismatch_count", m->n_nonfinite);
    json_w_key(w, "value_status");
    json_w_str(w, p->done ? diff_st_names[p->vstatus] : diff_st_names[ST_CRITICAL]);
    json_w_key(w, "layout");
    json_w_str(w, diff_layout_name(A, B, p));
    json_w_key(w, "zero_side");
    if (p->zero_a || p->zero_b)
        json_w_str(w, p->zero_a ? "a" : "b");
    else
        json_w_null(w);
    json_w_key(w, "note");
    if (p->note[0])
        json_w_str(w, p->note);
    else
        json_w_null(w);
    json_w_key(w, gates ? "within_thresholds" : "same");
    json_w_bool(w, p->pass);
    json_w_obj_end(w);
#undef F
#undef U
}

static void json_names(struct json_w *w, const struct side *S, const struct pairs *P, int want_a)
{
    json_w_arr(w);
    for (size_t i = 0; i < P->n; i++) {
        const struct pair *p = &P->v[i];
        if (want_a && p->ia >= 0 && p->ib < 0)
            json_w_str_n(w, S->m.tensors[p->ia].name.p, S->m.tensors[p->ia].name.n);
        if (!want_a && p->ib >= 0 && p->ia < 0)
            json_w_str_n(w, S->m.tensors[p->ib].name.p, S->m.tensors[p->ib].name.n);
    }
    json_w_arr_end(w);
}

static void json_opt_f64(struct json_w *w, const char *k, double v)
{
    json_w_key(w, k);
    if (isnan(v))
        json_w_null(w);
    else
        json_w_f64(w, v);
}

/* What the report says: the compared pairs in display order and their tallies. */
struct vreport {
    size_t *ord, n_res, shown;
    uint64_t cnt[ST_COUNT], n_fail;
    int gates, different;
};

static int vr_json(const struct diff_opts *o, const struct side *A, const struct side *B,
                   const struct pairs *P, const struct vreport *R, FILE *out, struct err *e)
{
    static const struct { const char *key; int st; } counts[] = {
        { "transposed_count", ST_TRANSPOSED }, { "critical_count", ST_CRITICAL },
        { "large_count", ST_LARGE }, { "medium_count", ST_MEDIUM },
        { "small_count", ST_SMALL }, { "reinterpreted_count", ST_REINTERPRETED },
        { "permuted_count", ST_PERMUTED },
    };
    struct sbuf b = SBUF_INIT(OUT_MAX);
    struct json_w w;

    json_w_init(&w, &b, 1);
    json_w_obj(&w);
    json_w_key(&w, "model_a");
    json_w_str(&w, A->path);
    json_w_key(&w, "model_b");
    json_w_str(&w, B->path);
    json_w_key(&w, "tensors_compared");
    json_w_u64(&w, R->n_res);
    json_w_key(&w, "identical_count");
    json_w_u64(&w, R->cnt[ST_IDENTICAL] + R->cnt[ST_NEARLY]);
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        json_w_key(&w, counts[i].key);
        json_w_u64(&w, R->cnt[counts[i].st]);
    }
    json_w_key(&w, "format_a");
    json_w_str(&w, model_format_name(A->m.format));
    json_w_key(&w, "format_b");
    json_w_str(&w, model_format_name(B->m.format));
    json_w_key(&w, "only_in_a");
    json_names(&w, A, P, 1);
    json_w_key(&w, "only_in_b");
    json_names(&w, B, P, 0);
    json_w_key(&w, "thresholds");
    json_w_obj(&w);
    json_opt_f64(&w, "fail_cos", o->fail_cos);
    json_opt_f64(&w, "fail_max", o->fail_max);
    json_opt_f64(&w, "fail_nmse", o->fail_nmse);
    json_w_obj_end(&w);
    json_w_key(&w, "failing_count");
    json_w_u64(&w, R->n_fail);
    json_w_key(&w, "same");
    json_w_bool(&w, !R->different);
    json_w_key(&w, "sort");
    json_w_str(&w, o->sort == DIFF_SORT_WORST ? "worst" : "name");
    json_w_key(&w, "results_omitted");
    json_w_u64(&w, R->n_res - R->shown);
    json_w_key(&w, "results");
    json_w_arr(&w);
    for (size_t k = 0; k < R->shown; k++)
        json_result(&w, A, B, &P->v[R->ord[k]], R->gates);
    json_w_arr_end(&w);
    json_w_obj_end(&w);
    return diff_write_json(out, &b, e);
}

static void vr_text_row(FILE *out, const struct side *A, const struct side *B,
                        const struct pair *p)
{
    const struct model_tensor *ta = diff_pa(A, p);
    char b1[64], b2[64], b3[64], b4[64], at[256];

    if (p->done) {
        if (p->m.max_diff > 0)
            diff_fmt_coords(at, sizeof at, ta->n_dims, ta->shape, p->m.max_index);
        else
            snprintf(at, sizeof at, "-");
        fprintf(out, "%-15s %-12s %-11s %-13s %-11s %-11s ", diff_st_names[p->status],
                diff_num(b1, sizeof b1, p->m.cosine), diff_num(b2, sizeof b2, p->m.max_diff), at,
                diff_num(b3, sizeof b3, p->m.rmse), diff_num(b4, sizeof b4, p->m.nmse));
    } else {
        fprintf(out, "%-15s %-12s %-11s %-13s %-11s %-11s ", diff_st_names[ST_CRITICAL], "-", "-",
                "-", "-", "-");
    }
    cli_put_escaped(out, ta->name.p, ta->name.n);
    text_notes(out, A, B, p);
    fputc('\n', out);
}

/* the tally, the thresholds and the verdict */
static void vr_text_summary(const struct diff_opts *o, const struct pairs *P,
                            const struct vreport *R, FILE *out)
{
    char b5[64];

    fprintf(out, "%zu tensors compared:", R->n_res);
    for (int s = 0, first = 1; s < ST_COUNT; s++)
        if (R->cnt[s]) {
            fprintf(out, "%s %llu %s", first ? "" : ",", (unsigned long long)R->cnt[s],
                    diff_st_names[s]);
            first = 0;
        }
    fprintf(out, "; %llu only in a, %llu only in b\n", (unsigned long long)P->n_only_a,
            (unsigned long long)P->n_only_b);
    if (R->gates) {
        fprintf(out, "thresholds:");
        if (!isnan(o->fail_cos))
            fprintf(out, " cosine >= %s", diff_num(b5, sizeof b5, o->fail_cos));
        if (!isnan(o->fail_max))
            fprintf(out, " max|a-b| <= %s", diff_num(b5, sizeof b5, o->fail_max));
        if (!isnan(o->fail_nmse))
            fprintf(out, " nmse <= %s", diff_num(b5, sizeof b5, o->fail_nmse));
        fprintf(out, ": %llu outside\n", (unsigned long long)R->n_fail);
    }
    if (R->different && (R->cnt[ST_TRANSPOSED] || R->cnt[ST_REINTERPRETED]))
        fprintf(out, "different (%llu Transposed, %llu Reinterpreted: same values, another "
                "layout)\n", (unsigned long long)R->cnt[ST_TRANSPOSED],
                (unsigned long long)R->cnt[ST_REINTERPRETED]);
    else
        fprintf(out, "%s\n", R->different ? "different" : R->gates ? "within thresholds" :
                "identical");
}

static void vr_text(const struct diff_opts *o, const struct side *A, const struct side *B,
                    const struct pairs *P, const struct vreport *R, FILE *out)
{
    char la[48], lb[48];

    fprintf(out, "a: %s (%s, %llu tensors)\nb: %s (%s, %llu tensors)\n", A->path,
            model_format_label(&A->m, la, sizeof la), (unsigned long long)A->m.n_tensors,
            B->path, model_format_label(&B->m, lb, sizeof lb), (unsigned long long)B->m.n_tensors);
    fprintf(out, "%-15s %-12s %-11s %-13s %-11s %-11s %s\n", "status", "cosine", "max|a-b|",
            "at", "rmse", "nmse", "name");
    for (size_t k = 0; k < R->shown; k++)
        vr_text_row(out, A, B, &P->v[R->ord[k]]);
    if (R->shown < R->n_res)
        fprintf(out, "... %zu more not shown (--limit %lld)\n", R->n_res - R->shown,
                (long long)o->limit);
    for (size_t i = 0; i < P->n; i++) {
        const struct pair *p = &P->v[i];
        const struct model_tensor *t = p->ia >= 0 ? diff_pa(A, p) : diff_pb(B, p);
        char sh[SHAPE_STR_MAX];
        if (p->ia >= 0 && p->ib >= 0)
            continue;
        fputs(p->ia >= 0 ? "< only in a: " : "> only in b: ", out);
        cli_put_escaped(out, t->name.p, t->name.n);
        fprintf(out, " %s %s\n", dtype_name(t->dtype), diff_shape_of(sh, sizeof sh, t));
    }
    vr_text_summary(o, P, R, out);
}

int diff_values_report(const struct diff_opts *o, const struct side *A, const struct side *B,
                         const struct pairs *P, FILE *out, int *different, struct err *e)
{
    struct vreport R;
    int rc = 0;

    memset(&R, 0, sizeof R);
    R.gates = diff_gates_given(o);
    R.ord = malloc((P->n + 1) * sizeof *R.ord);
    if (!R.ord)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < P->n; i++) {
        const struct pair *p = &P->v[i];
        if (p->ia < 0 || p->ib < 0)
            continue;
        R.ord[R.n_res++] = i;
        R.cnt[p->done ? p->status : ST_CRITICAL]++;
        if (!p->done || !p->pass)
            R.n_fail++;
    }
    if (o->sort == DIFF_SORT_WORST) {
        g_wp = P;
        diff_g_sort_a = A;
        diff_g_sort_b = B;
        qsort(R.ord, R.n_res, sizeof *R.ord, pair_qsort_worst);
    }
    R.shown = o->limit >= 0 && (uint64_t)o->limit < R.n_res ? (size_t)o->limit : R.n_res;
    R.different = *different = R.n_fail > 0 || P->n_only_a > 0 || P->n_only_b > 0;
    if (o->json)
        rc = vr_json(o, A, B, P, &R, out, e);
    else
        vr_text(o, A, B, P, &R, out);
    free(R.ord);
    return rc;
}

int diff_values_plot(const struct diff_opts *o, const struct side *A, const struct side *B,
                       const struct pairs *P, struct err *e)
{
    struct plot_pt *pt = calloc(P->n + 1, sizeof *pt);
    size_t n = 0;
    int rc;

    if (!pt)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < P->n; i++) {
        const struct pair *p = &P->v[i];
        struct plot_pt *q;
        if (p->ia < 0 || p->ib < 0)
            continue;
        q = &pt[n++];
        q->label = A->m.tensors[p->ia].name.p;
        q->label_n = A->m.tensors[p->ia].name.n;
        q->group = p->layer >= 0 ? p->layer : strstr(p->key, "embed") ? -1 : INT32_MAX;
        q->valid = p->done;
        q->cos_dist = 1 - p->m.cosine;
        q->rel_err = p->m.rms_a > 0 ? p->m.rmse / p->m.rms_a : p->m.rmse > 0 ? 10 : 0;
        q->bad = diff_plot_bad(p->done ? p->status : ST_CRITICAL);
    }
    /* stable order by group (pairs are in name order inside a group) */
    for (size_t i = 1; i < n; i++) {
        struct plot_pt t = pt[i];
        size_t j = i;
        while (j > 0 && pt[j - 1].group > t.group) {
            pt[j] = pt[j - 1];
            j--;
        }
        pt[j] = t;
    }
    rc = diff_plot_write(o->plot, A->path, B->path, pt, n, e);
    free(pt);
    return rc;
}
