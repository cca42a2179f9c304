/*
 * structural.c - apr-diff without --values: format, metadata, tensor, dtype and shape
 * differences, with aprender's categories.
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
static const char *const cat_names[CAT_COUNT] = { "format", "metadata", "tensor", "quantization",
                                                  "size" };
static const char *const cat_types[CAT_COUNT] = { "format", "data", "data", "dtype", "size" };

static void sdiffs_release(struct sdiffs *D)
{
    for (size_t i = 0; i < D->n; i++) {
        free(D->v[i].field);
        free(D->v[i].v1);
        free(D->v[i].v2);
    }
    free(D->v);
}

static int sdiff_add(struct sdiffs *D, enum cat c, const char *change, struct sbuf *field,
                     struct sbuf *v1, struct sbuf *v2, struct err *e)
{
    struct sdiff *d;

    if (sbuf_check(field, "diff", e) || (v1 && sbuf_check(v1, "diff", e)) ||
        (v2 && sbuf_check(v2, "diff", e)))
        return -1;
    if (vec_reserve((void **)&D->v, &D->cap, D->n + 1, sizeof *D->v, e))
        return -1;
    d = &D->v[D->n];
    memset(d, 0, sizeof *d);
    d->cat = c;
    d->change = change;
    d->field = diff_dup_n(field->p ? field->p : "", field->len, e);
    d->v1 = v1 ? diff_dup_n(v1->p ? v1->p : "", v1->len, e) : NULL;
    d->v2 = v2 ? diff_dup_n(v2->p ? v2->p : "", v2->len, e) : NULL;
    if (!d->field || (v1 && !d->v1) || (v2 && !d->v2)) {
        free(d->field);
        free(d->v1);
        free(d->v2);
        return -1;
    }
    D->n++;
    return 0;
}

/* "UINT32 8", "ARRAY[STRING] (512 items) [...]": type and value, cut to fit a line. */
static void val_text(struct sbuf *b, const struct model_val *v, int full)
{
    struct sbuf j = SBUF_INIT(OUT_MAX);
    struct json_w w;

    if (v->type == MV_ARR)
        sbuf_addf(b, "ARRAY[%s] (%llu items) ", v->v.arr.elem == MV_NULL ? "MIXED" :
                  model_vtype_name(v->v.arr.elem), (unsigned long long)v->v.arr.n);
    else
        sbuf_addf(b, "%s ", model_vtype_name(v->type));
    json_w_init(&w, &j, 0);
    model_val_to_json(&w, v, full ? UINT64_MAX : 6);
    if (!j.failed && j.p) {
        if (!full && j.len > 160) {
            sbuf_add(b, j.p, 150);
            sbuf_adds(b, "...");
        } else {
            sbuf_add(b, j.p, j.len);
        }
    }
    sbuf_release(&j);
}

static int val_equal(const struct model_val *a, const struct model_val *b)
{
    struct sbuf x = SBUF_INIT(OUT_MAX), y = SBUF_INIT(OUT_MAX);
    int eq;

    val_text(&x, a, 1);
    val_text(&y, b, 1);
    eq = !x.failed && !y.failed && x.len == y.len && (x.len == 0 || memcmp(x.p, y.p, x.len) == 0);
    sbuf_release(&x);
    sbuf_release(&y);
    return eq;
}

static const struct model_kv *kv_find_slice(const struct model *m, struct slice k)
{
    for (uint64_t i = 0; i < m->n_kv; i++)
        if (slice_eq(m->kv[i].key, k))
            return &m->kv[i];
    return NULL;
}

static void sb_tensor(struct sbuf *b, const struct model_tensor *t)
{
    char sh[SHAPE_STR_MAX];

    sbuf_addf(b, "%s %s", dtype_name(t->dtype), diff_shape_of(sh, sizeof sh, t));
}

/* [pa, pa+n) of A's tensor ta equals [pb, pb+n) of B's tb: both read through streams
 * (common/stream.h: pread into reused buffers, no page faults, RSS bounded whatever the
 * model size), a chunk at a time.  1 equal, 0 not, -1 error. */
#define EQ_CHUNK ((size_t)1 << 20)
static int bytes_equal(const struct side *A, const struct model_tensor *ta, const uint8_t *pa,
                       const struct side *B, const struct model_tensor *tb, const uint8_t *pb,
                       uint64_t n, struct stream *sa, struct stream *sb, struct err *e)
{
    const struct mfile *fa = ta->file < A->m.n_files ? &A->m.files[ta->file] : NULL;
    const struct mfile *fb = tb->file < B->m.n_files ? &B->m.files[tb->file] : NULL;

    for (uint64_t off = 0; off < n;) {
        size_t k = n - off > EQ_CHUNK ? EQ_CHUNK : (size_t)(n - off);
        const uint8_t *x = fa ? stream_view(sa, fa, pa + off, k, e) : pa + off;
        const uint8_t *y = x && fb ? stream_view(sb, fb, pb + off, k, e) : pb + off;
        if (!x || !y)
            return -1;
        if (memcmp(x, y, k) != 0)
            return 0;
        off += k;
    }
    return 1;
}

/* Bytes equal, after undoing the Q/K row permutation when the layouts differ: 1 equal,
 * 0 not, -1 error (a file that cannot be read). */
static int data_equal(const struct side *A, const struct side *B, struct pair *p,
                      struct stream *sa, struct stream *sb, struct err *e)
{
    const struct model_tensor *ta = diff_pa(A, p), *tb = diff_pb(B, p);
    int64_t rows;
    uint64_t rb;

    if (ta->size != tb->size)
        return 0;
    diff_plan_perm(A, B, p);
    if (!(p->layouts_differ && p->heads))
        return bytes_equal(A, ta, ta->data, B, tb, tb->data, ta->size, sa, sb, e);
    rows = diff_rows_of(ta);
    if (rows <= 0 || ta->size % (uint64_t)rows)
        return 0;
    rb = ta->size / (uint64_t)rows;
    for (int64_t r = 0; r < rows; r++) {
        int64_t s = names_perm_row(r, rows, p->heads, diff_perm_dir_for(A, p));
        int eq = s < 0 ? 0 : bytes_equal(A, ta, ta->data + (uint64_t)r * rb, B, tb,
                                         tb->data + (uint64_t)s * rb, rb, sa, sb, e);
        if (eq != 1)
            return eq;
    }
    return 1;
}

#define SB(x) struct sbuf x = SBUF_INIT(OUT_MAX)
#define REL() do { sbuf_release(&f); sbuf_release(&v1); sbuf_release(&v2); } while (0)

/* format and metadata: A's keys in order, then B's new keys */
static int sd_meta(const struct side *A, const struct side *B, struct sdiffs *D, struct err *e)
{
    char la[48], lb[48];
    int rc;

    if (A->m.format != B->m.format || A->m.version != B->m.version) {
        SB(f); SB(v1); SB(v2);
        sbuf_adds(&f, "format");
        sbuf_adds(&v1, model_format_label(&A->m, la, sizeof la));
        sbuf_adds(&v2, model_format_label(&B->m, lb, sizeof lb));
        rc = sdiff_add(D, CAT_FORMAT, "changed", &f, &v1, &v2, e);
        REL();
        if (rc)
            return -1;
    }
    for (uint64_t i = 0; i < A->m.n_kv; i++) {
        const struct model_kv *ka = &A->m.kv[i], *kb = kv_find_slice(&B->m, ka->key);
        SB(f); SB(v1); SB(v2);
        if (kb && val_equal(&ka->val, &kb->val)) {
            REL();
            continue;
        }
        sbuf_add(&f, ka->key.p, ka->key.n);
        val_text(&v1, &ka->val, 0);
        if (kb)
            val_text(&v2, &kb->val, 0);
        rc = sdiff_add(D, CAT_METADATA, kb ? "changed" : "removed", &f, &v1, kb ? &v2 : NULL, e);
        REL();
        if (rc)
            return -1;
    }
    for (uint64_t i = 0; i < B->m.n_kv; i++) {
        const struct model_kv *kb = &B->m.kv[i];
        SB(f); SB(v2);
        struct sbuf v1 = SBUF_INIT(1);
        if (kv_find_slice(&A->m, kb->key)) {
            REL();
            continue;
        }
        sbuf_add(&f, kb->key.p, kb->key.n);
        val_text(&v2, &kb->val, 0);
        rc = sdiff_add(D, CAT_METADATA, "added", &f, NULL, &v2, e);
        REL();
        if (rc)
            return -1;
    }
    return 0;
}

static int sd_tensor(const struct side *A, const struct side *B, struct pair *p,
                     struct sdiffs *D, struct stream *sa, struct stream *sb, struct err *e);

/* tensors, in pairing order: added/removed, dtype, shape, then data */
static int sd_tensors(const struct side *A, const struct side *B, struct pairs *P,
                      struct sdiffs *D, struct err *e)
{
    struct stream sa, sb;
    int rc = 0;

    stream_open(&sa, NULL, 0, 0, e);
    stream_open(&sb, NULL, 0, 0, e);
    for (size_t i = 0; i < P->n && rc == 0; i++)
        rc = sd_tensor(A, B, &P->v[i], D, &sa, &sb, e);
    stream_close(&sa);
    stream_close(&sb);
    return rc;
}

static int sd_tensor(const struct side *A, const struct side *B, struct pair *p,
                     struct sdiffs *D, struct stream *sa, struct stream *sb, struct err *e)
{
    const struct model_tensor *ta = diff_pa(A, p), *tb = diff_pb(B, p);
    struct slice nm = diff_pname(A, B, p);
    enum cat c;
    const char *change = "changed";
    int rc, eq = 1;
    SB(f); SB(v1); SB(v2);
    sbuf_add(&f, nm.p, nm.n);
    if (!ta || !tb) {
        sb_tensor(ta ? &v1 : &v2, ta ? ta : tb);
        c = CAT_TENSOR;
        change = ta ? "removed" : "added";
    } else if (ta->dtype != tb->dtype) {
        sb_tensor(&v1, ta);
        sb_tensor(&v2, tb);
        c = CAT_QUANT;
    } else if (!diff_same_shape(ta, tb)) {
        sb_tensor(&v1, ta);
        sb_tensor(&v2, tb);
        c = CAT_SIZE;
    } else if ((eq = data_equal(A, B, p, sa, sb, e)) == 0) {
        sbuf_adds(&v1, "data");
        sbuf_adds(&v2, "data differs");
        c = CAT_TENSOR;
    } else {
        REL();
        return eq < 0 ? -1 : 0;
    }
    rc = sdiff_add(D, c, change, &f, ta ? &v1 : NULL, tb ? &v2 : NULL, e);
    REL();
    return rc ? -1 : 0;
}
#undef SB
#undef REL

static void sd_json_diff(struct json_w *w, const struct sdiff *d)
{
    json_w_obj(w);
    json_w_key(w, "field");
    json_w_str(w, d->field);
    json_w_key(w, "file1_value");
    if (d->v1)
        json_w_str(w, d->v1);
    else
        json_w_null(w);
    json_w_key(w, "file2_value");
    if (d->v2)
        json_w_str(w, d->v2);
    else
        json_w_null(w);
    json_w_key(w, "category");
    json_w_str(w, cat_names[d->cat]);
    json_w_key(w, "type");
    json_w_str(w, cat_types[d->cat]);
    json_w_key(w, "change");
    json_w_str(w, d->change);
    json_w_obj_end(w);
}

static int sd_json(const struct side *A, const struct side *B, const struct pairs *P,
                   const struct sdiffs *D, const uint64_t *cc, FILE *out, struct err *e)
{
    struct sbuf b = SBUF_INIT(OUT_MAX);
    struct json_w w;

    json_w_init(&w, &b, 1);
    json_w_obj(&w);
    json_w_key(&w, "file1");
    json_w_str(&w, A->path);
    json_w_key(&w, "file2");
    json_w_str(&w, B->path);
    json_w_key(&w, "format1");
    json_w_str(&w, model_format_name(A->m.format));
    json_w_key(&w, "format2");
    json_w_str(&w, model_format_name(B->m.format));
    json_w_key(&w, "identical");
    json_w_bool(&w, D->n == 0);
    json_w_key(&w, "difference_count");
    json_w_u64(&w, D->n);
    json_w_key(&w, "structural_diffs");
    json_w_u64(&w, D->n);
    json_w_key(&w, "category_counts");
    json_w_obj(&w);
    for (int c = 0; c < CAT_COUNT; c++) {
        json_w_key(&w, cat_names[c]);
        json_w_u64(&w, cc[c]);
    }
    json_w_obj_end(&w);
    json_w_key(&w, "tensors_paired");
    json_w_u64(&w, P->n_paired);
    json_w_key(&w, "only_in_a");
    json_w_u64(&w, P->n_only_a);
    json_w_key(&w, "only_in_b");
    json_w_u64(&w, P->n_only_b);
    json_w_key(&w, "differences");
    json_w_arr(&w);
    for (size_t i = 0; i < D->n; i++)
        sd_json_diff(&w, &D->v[i]);
    json_w_arr_end(&w);
    json_w_obj_end(&w);
    return diff_write_json(out, &b, e);
}

static void sd_text(const struct side *A, const struct side *B, const struct pairs *P,
                    const struct sdiffs *D, const uint64_t *cc, FILE *out)
{
    char la[48], lb[48];

    fprintf(out, "a: %s (%s, %llu keys, %llu tensors)\n", A->path,
            model_format_label(&A->m, la, sizeof la), (unsigned long long)A->m.n_kv,
            (unsigned long long)A->m.n_tensors);
    fprintf(out, "b: %s (%s, %llu keys, %llu tensors)\n", B->path,
            model_format_label(&B->m, lb, sizeof lb), (unsigned long long)B->m.n_kv,
            (unsigned long long)B->m.n_tensors);
    for (size_t i = 0; i < D->n; i++) {
        const struct sdiff *d = &D->v[i];
        const char *mark = d->v1 && d->v2 ? "~" : d->v1 ? "<" : ">";
        fprintf(out, "%s %-8s ", mark, d->cat == CAT_QUANT ? "dtype" :
                d->cat == CAT_SIZE ? "shape" : d->cat == CAT_TENSOR ? "tensor" : cat_names[d->cat]);
        cli_put_escaped(out, d->field, strlen(d->field));
        fputs(": ", out);
        if (d->v1)
            cli_put_escaped(out, d->v1, strlen(d->v1));
        if (d->v1 && d->v2)
            fputs(" -> ", out);
        if (d->v2)
            cli_put_escaped(out, d->v2, strlen(d->v2));
        fputc('\n', out);
    }
    fprintf(out, "tensors: %llu paired, %llu only in a, %llu only in b\n",
            (unsigned long long)P->n_paired, (unsigned long long)P->n_only_a,
            (unsigned long long)P->n_only_b);
    fprintf(out, "%zu differences (format %llu, metadata %llu, tensor %llu, dtype %llu, "
                 "shape %llu)\n", D->n, (unsigned long long)cc[CAT_FORMAT],
            (unsigned long long)cc[CAT_METADATA], (unsigned long long)cc[CAT_TENSOR],
            (unsigned long long)cc[CAT_QUANT], (unsigned long long)cc[CAT_SIZE]);
}

int diff_structural(const struct diff_opts *o, const struct side *A, const struct side *B,
                      struct pairs *P, FILE *out, int *different, struct err *e)
{
    struct sdiffs D = { NULL, 0, 0 };
    uint64_t cc[CAT_COUNT] = { 0 };
    int rc = -1;

    if (sd_meta(A, B, &D, e) || sd_tensors(A, B, P, &D, e))
        goto out;
    for (size_t i = 0; i < D.n; i++)
        cc[D.v[i].cat]++;
    *different = D.n > 0;
    if (o->json) {
        rc = sd_json(A, B, P, &D, cc, out, e);
    } else {
        sd_text(A, B, P, &D, cc, out);
        rc = 0;
    }
out:
    sdiffs_release(&D);
    return rc;
}
