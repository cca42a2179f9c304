/*
 * values.c - apr-diff --values: the value engine and the layout decisions.
 *
 *   1. plan one comparison per pair: how B's elements map onto A's order
 *        FLAT       B[i] vs A[i]: same shape, or a reinterpretation (other dims)
 *        ROWPERM    llama Q/K: A row r vs B row names_perm_row(r) (GGUF vs HF layout)
 *        TRANSPOSE  A [r,c] vs B [c,r]: A(i,j) vs B(j,i)
 *   2. cut comparisons into jobs of at most DIFF_JOB elements (TRANSPOSE, and types
 *      that cannot be cut, are one job: the whole pair in memory).  Workers pull jobs
 *      from an atomic counter, dequantize DIFF_CHUNK elements at a time into their own
 *      buffers and accumulate a segment of the comparison's stream (compare.h): memory
 *      stays bounded (two chunks per worker) whatever the model size;
 *   3. segment sums are merged per comparison in job order, so every number is the
 *      same whatever -j is;
 *   4. with --transpose-aware, pairs whose values do not match (LargeDiff or worse) get
 *      a second round with the other plausible layouts (transpose of a square matrix,
 *      the flat reading of a swapped shape, the other Q/K row order); a layout wins
 *      only if its values match.
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
static int ensure(float **p, size_t *cap, size_t n, struct err *e)
{
    float *q;

    if (n <= *cap)
        return 0;
    q = realloc(*p, n * sizeof *q);
    if (!q)
        return ERR(e, ERR_NOMEM, "out of memory (%zu floats)", n);
    *p = q;
    *cap = n;
    return 0;
}

/* Dequantize elements [e0, e0+n) of t (e0 on a block boundary) into dst, its bytes read
 * through st (pread into a reused buffer: no page faults, no RSS growth; see stream.h). */
static int dq_range(const struct side *S, const struct model_tensor *t, struct stream *st,
                    int64_t e0, int64_t n, float *dst, struct err *e)
{
    const struct dtype_info *di = dtype_get(t->dtype);
    uint64_t off = (uint64_t)(e0 / (int64_t)di->blck) * di->type_size, len;
    const uint8_t *p;

    if (off > t->size)
        return ERR(e, ERR_INTERNAL, "range past tensor '%.*s'", (int)t->name.n, t->name.p);
    /* whole blocks covering n elements, within the tensor */
    len = (uint64_t)((n + (int64_t)di->blck - 1) / (int64_t)di->blck) * di->type_size;
    if (len > t->size - off)
        len = t->size - off;
    p = t->file < S->m.n_files ? stream_view(st, &S->m.files[t->file], t->data + off,
                                             (size_t)len, e)
                               : t->data + off;
    if (!p)
        return -1;
    return dq_to_f32(t->dtype, p, len, dst, n, 1, e);
}

/* The bytes of elements [e0, e0+n) of an F16 tensor, read through st (as dq_range). */
static const uint8_t *f16_range(const struct side *S, const struct model_tensor *t,
                                struct stream *st, int64_t e0, int64_t n, struct err *e)
{
    uint64_t off = (uint64_t)e0 * 2, len = (uint64_t)n * 2;

    if (off > t->size || len > t->size - off) {
        ERR(e, ERR_INTERNAL, "range past tensor '%.*s'", (int)t->name.n, t->name.p);
        return NULL;
    }
    return t->file < S->m.n_files ? stream_view(st, &S->m.files[t->file], t->data + off,
                                                (size_t)len, e)
                                  : t->data + off;
}

static uint64_t bytes_of(const struct model_tensor *t, int64_t n)
{
    return t->n_elems ? (uint64_t)((double)t->size * (double)n / (double)t->n_elems) : 0;
}

int64_t diff_rows_of(const struct model_tensor *t)
{
    return t->n_dims >= 1 ? t->shape[0] : 1;
}

/* Can this type be dequantized piecewise at block boundaries? */
static int cuttable(const struct model_tensor *t)
{
    const struct dtype_info *di = dtype_get(t->dtype);
    return t->dtype != DT_APR_Q8 && di && di->blck && DIFF_CHUNK % di->blck == 0;
}

static int job_whole(struct engine *E, const struct cmp *c, struct cmp_acc *acc, struct err *e)
{
    const struct pair *p = &E->pairs[c->pair];
    const struct model_tensor *ta = diff_pa(E->A, p), *tb = diff_pb(E->B, p);
    float *fa = NULL, *fb = NULL, *g = NULL;
    int64_t n = ta->n_elems;
    int rc = -1;

    fa = dq_tensor_to_f32_new(ta, 1, e);
    if (!fa)
        goto out;
    fb = dq_tensor_to_f32_new(tb, 1, e);
    if (!fb)
        goto out;
    if (c->map == MAP_FLAT) {
        cmp_add(acc, fa, fb, (size_t)n);
    } else {
        g = malloc((size_t)(n ? n : 1) * sizeof *g);
        if (!g) {
            ERR(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        if (c->map == MAP_ROWPERM) {
            int64_t rows = diff_rows_of(ta), len = rows ? n / rows : 0;
            for (int64_t r = 0; r < rows; r++) {
                int64_t s = names_perm_row(r, rows, p->heads, c->perm_dir);
                memcpy(g + r * len, fb + s * len, (size_t)len * sizeof *g);
            }
        } else {
            /* A [R,C] vs B [C,R]: g(i,j) = B(j,i), in 32x32 tiles for the cache */
            int64_t R = ta->shape[0], C = ta->shape[1];
            for (int64_t i0 = 0; i0 < R; i0 += 32)
                for (int64_t j0 = 0; j0 < C; j0 += 32)
                    for (int64_t i = i0; i < R && i < i0 + 32; i++)
                        for (int64_t jj = j0; jj < C && jj < j0 + 32; jj++)
                            g[i * C + jj] = fb[jj * R + i];
        }
        cmp_add(acc, fa, g, (size_t)n);
    }
    progress_add(E->prog, ta->size + tb->size);
    rc = 0;
out:
    free(fa);
    free(fb);
    free(g);
    return rc;
}

static int job_part(struct engine *E, const struct cmp *c, const struct job *j, int w,
                    struct cmp_acc *acc, float **ba, float **bb, size_t *ca, size_t *cb,
                    struct err *e);

/* Job j on worker w: its elements are one segment of the comparison's stream. */
static int job_run(struct engine *E, struct job *j, int w, struct err *e)
{
    const struct cmp *c = &E->cmps[j->cmp];
    const struct model_tensor *ta = diff_pa(E->A, &E->pairs[c->pair]);
    int64_t rows = diff_rows_of(ta);
    float **ba = &E->buf[2 * w], **bb = &E->buf[2 * w + 1];
    size_t *ca = &E->cap[2 * w], *cb = &E->cap[2 * w + 1];
    struct cmp_acc *acc = &E->accs[w];
    int rc;

    cmp_init_at(acc, c->whole ? 0 : c->map == MAP_FLAT ? j->begin
                                  : j->begin * (rows ? ta->n_elems / rows : 0));
    rc = c->whole ? job_whole(E, c, acc, e) : job_part(E, c, j, w, acc, ba, bb, ca, cb, e);
    cmp_flush(acc);
    j->acc = acc->s;
    return rc;
}

/* A FLAT or ROWPERM job: its range dequantized DIFF_CHUNK elements at a time. */
static int job_part(struct engine *E, const struct cmp *c, const struct job *j, int w,
                    struct cmp_acc *acc, float **ba, float **bb, size_t *ca, size_t *cb,
                    struct err *e)
{
    const struct pair *p = &E->pairs[c->pair];
    const struct model_tensor *ta = diff_pa(E->A, p), *tb = diff_pb(E->B, p);
    struct stream *sa = &E->st[2 * w], *sb = &E->st[2 * w + 1];

    if (c->map == MAP_FLAT && ta->dtype == DT_F16 && tb->dtype == DT_F16) {
        /* F16 vs F16 (checking a conversion): the engine reads the halves where the
         * stream put them, no dequantization pass (the same bits: compare.h) */
        for (int64_t e0 = j->begin; e0 < j->end; e0 += DIFF_CHUNK) {
            int64_t m = j->end - e0 < DIFF_CHUNK ? j->end - e0 : DIFF_CHUNK;
            const uint8_t *ha = f16_range(E->A, ta, sa, e0, m, e), *hb;
            if (!ha)
                return -1;
            hb = f16_range(E->B, tb, sb, e0, m, e);
            if (!hb)
                return -1;
            cmp_add_f16(acc, ha, hb, (size_t)m);
            progress_add(E->prog, bytes_of(ta, m) + bytes_of(tb, m));
        }
        return 0;
    }
    if (c->map == MAP_FLAT) {
        if (ensure(ba, ca, DIFF_CHUNK, e) || ensure(bb, cb, DIFF_CHUNK, e))
            return -1;
        for (int64_t e0 = j->begin; e0 < j->end; e0 += DIFF_CHUNK) {
            int64_t m = j->end - e0 < DIFF_CHUNK ? j->end - e0 : DIFF_CHUNK;
            if (dq_range(E->A, ta, sa, e0, m, *ba, e) || dq_range(E->B, tb, sb, e0, m, *bb, e))
                return -1;
            cmp_add(acc, *ba, *bb, (size_t)m);
            progress_add(E->prog, bytes_of(ta, m) + bytes_of(tb, m));
        }
        return 0;
    }
    /* ROWPERM: rows of A in order, B's rows gathered through the permutation */
    {
        int64_t rows = diff_rows_of(ta), len = ta->n_elems / rows;
        int64_t step = len >= DIFF_CHUNK ? 1 : DIFF_CHUNK / len;
        if (ensure(ba, ca, (size_t)(step * len), e) || ensure(bb, cb, (size_t)(step * len), e))
            return -1;
        for (int64_t r = j->begin; r < j->end; r += step) {
            int64_t k = j->end - r < step ? j->end - r : step;
            if (dq_range(E->A, ta, sa, r * len, k * len, *ba, e))
                return -1;
            for (int64_t q = 0; q < k; q++) {
                int64_t s = names_perm_row(r + q, rows, p->heads, c->perm_dir);
                if (s < 0)
                    return ERR(e, ERR_INTERNAL, "bad row permutation");
                if (dq_range(E->B, tb, sb, s * len, len, *bb + q * len, e))
                    return -1;
            }
            cmp_add(acc, *ba, *bb, (size_t)(k * len));
            progress_add(E->prog, bytes_of(ta, k * len) + bytes_of(tb, k * len));
        }
        return 0;
    }
}

static int engine_worker(void *arg, int64_t begin, int64_t end, int w)
{
    struct engine *E = arg;

    (void)begin;
    (void)end;
    while (!atomic_load(&E->failed)) {
        size_t i = atomic_fetch_add(&E->next, 1);
        if (i >= E->n_jobs)
            break;
        if (job_run(E, &E->jobs[i], w, &E->errs[w]) != 0) {
            atomic_store(&E->failed, 1);
            return -1;
        }
    }
    return 0;
}

/* Plan the jobs of comparison c (appended to *jobs). */
static int plan_jobs(struct engine *E, size_t ci, struct job **jobs, size_t *n, size_t *cap,
                     struct err *e)
{
    struct cmp *c = &E->cmps[ci];
    const struct pair *p = &E->pairs[c->pair];
    const struct model_tensor *ta = diff_pa(E->A, p), *tb = diff_pb(E->B, p);
    int64_t total, unit;

    if (c->map == MAP_TRANSPOSE || !cuttable(ta) || !cuttable(tb))
        c->whole = 1;
    if (c->map == MAP_ROWPERM) {
        int64_t rows = diff_rows_of(ta), len = rows ? ta->n_elems / rows : 0;
        if (!dtype_row_ok(ta->dtype, len) || !dtype_row_ok(tb->dtype, len))
            c->whole = 1;
        total = rows;
        unit = len >= DIFF_JOB ? 1 : DIFF_JOB / (len ? len : 1);
    } else {
        total = ta->n_elems;
        unit = DIFF_JOB;
    }
    if (c->whole) {
        total = 1;
        unit = 1;
    }
    for (int64_t b0 = 0; b0 < total || (b0 == 0 && total == 0); b0 += unit) {
        struct job *jb;
        if (vec_reserve((void **)jobs, cap, *n + 1, sizeof **jobs, e))
            return -1;
        jb = &(*jobs)[(*n)++];
        jb->cmp = ci;
        jb->begin = b0;
        jb->end = total - b0 < unit ? total : b0 + unit;
        memset(&jb->acc, 0, sizeof jb->acc);
        jb->acc.max_i = -1;
        if (total == 0)
            break;
    }
    return 0;
}

/* Run comparisons [c0, n_cmps) of E on n_threads workers; merge each into cmp->acc. */
static int engine_run(struct engine *E, size_t c0, int n_threads, struct err *e)
{
    struct job *jobs = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    int rc = -1;

    /* whole-tensor jobs first: they are the largest units of work */
    for (int pass = 0; pass < 2; pass++)
        for (size_t ci = c0; ci < E->n_cmps; ci++) {
            const struct pair *p = &E->pairs[E->cmps[ci].pair];
            const struct model_tensor *ta = diff_pa(E->A, p), *tb = diff_pb(E->B, p);
            int whole = E->cmps[ci].map == MAP_TRANSPOSE || !cuttable(ta) || !cuttable(tb);
            if (whole != (pass == 0))
                continue;
            if (plan_jobs(E, ci, &jobs, &n, &cap, e))
                goto out;
            total += ta->size + tb->size;
        }
    E->jobs = jobs;
    E->n_jobs = n;
    atomic_init(&E->next, 0);
    atomic_init(&E->failed, 0);
    for (int w = 0; w < n_threads; w++)
        err_clear(&E->errs[w]);
    if (E->prog)
        progress_start(E->prog, "diff", total);
    if (threads_run(n_threads, n_threads, engine_worker, E) != 0) {
        for (int w = 0; w < n_threads; w++)
            if (!err_ok(&E->errs[w])) {
                *e = E->errs[w];
                break;
            }
        if (err_ok(e))
            ERR(e, ERR_INTERNAL, "a worker failed");
        if (E->prog)
            progress_done(E->prog);
        goto out;
    }
    if (E->prog)
        progress_done(E->prog);
    for (size_t i = 0; i < n; i++)
        cmp_merge(&E->cmps[jobs[i].cmp].acc, &jobs[i].acc);
    rc = 0;
out:
    free(jobs);
    E->jobs = NULL;
    E->n_jobs = 0;
    return rc;
}

static int cmps_add(struct engine *E, size_t *cap, size_t pair, int map, int dir, struct err *e)
{
    struct cmp *c;

    if (vec_reserve((void **)&E->cmps, cap, E->n_cmps + 1, sizeof *E->cmps, e))
        return -1;
    c = &E->cmps[E->n_cmps++];
    memset(c, 0, sizeof *c);
    c->pair = pair;
    c->map = map;
    c->perm_dir = dir;
    c->acc.max_i = -1;
    return 0;
}

/* ---- value diff: plan, decide, report ------------------------------------------------ */

static void note_add(struct pair *p, const char *s)
{
    size_t n = strlen(p->note);

    if (n)
        snprintf(p->note + n, sizeof p->note - n, "; %s", s);
    else
        snprintf(p->note, sizeof p->note, "%s", s);
}

/* Decide Q/K permutation facts for a pair (both tensors present). */
void diff_plan_perm(const struct side *A, const struct side *B, struct pair *p)
{
    const struct model_tensor *ta = diff_pa(A, p), *tb = diff_pb(B, p);
    const char *arch = A->arch[0] ? A->arch : B->arch;
    int64_t h;
    struct err e = ERR_INIT;

    p->perm_kind = names_qk_permute_kind(arch, ta->name);
    if (p->perm_kind == NAMES_PERM_NONE)
        p->perm_kind = names_qk_permute_kind(arch, tb->name);
    if (p->perm_kind == NAMES_PERM_NONE)
        return;
    p->layouts_differ = diff_side_gguf_layout(A, ta) != diff_side_gguf_layout(B, tb);
    h = p->perm_kind == NAMES_PERM_Q ? (A->n_head ? A->n_head : B->n_head)
                                     : (A->n_head_kv ? A->n_head_kv : B->n_head_kv);
    if (h > 0 && diff_same_shape(ta, tb) && ta->n_elems > 0 &&
        names_perm_check(diff_rows_of(ta), h, &e) == 0)
        p->heads = h;
    else if (p->layouts_differ)
        note_add(p, "cannot undo the RoPE row permutation (head count unknown or rows do not fit)");
}

/* names_perm_row's to_gguf for "A row r is B row perm(r)", A in GGUF layout or not. */
int diff_perm_dir_for(const struct side *A, const struct pair *p)
{
    return diff_side_gguf_layout(A, diff_pa(A, p)) ? 1 : 0;
}

static int layout_status(const struct pair *p, const struct model_tensor *ta,
                         const struct model_tensor *tb, int map, enum st vs, enum st *out,
                         const char **layout)
{
    int match = vs <= ST_MEDIUM;

    *out = vs;
    *layout = "same";
    if (map == MAP_TRANSPOSE) {
        *layout = "transposed";
        if (match)
            *out = ST_TRANSPOSED;
    } else if (map == MAP_ROWPERM) {
        *layout = p->layouts_differ ? "rope_unpermuted" : "rope_permuted";
        if (!p->layouts_differ && match)
            *out = ST_PERMUTED;
    } else if (!diff_same_shape(ta, tb)) {
        *layout = "reinterpreted";
        if (match)
            *out = ST_REINTERPRETED;
    } else if (p->perm_kind != NAMES_PERM_NONE && p->layouts_differ && p->heads) {
        *layout = "rope_not_permuted";
        if (match)
            *out = ST_PERMUTED;
    }
    return 0;
}

const char *diff_layout_name(const struct side *A, const struct side *B, const struct pair *p)
{
    enum st s;
    const char *l;

    if (!p->done)
        return "none";
    layout_status(p, diff_pa(A, p), diff_pb(B, p), p->map, p->vstatus, &s, &l);
    return l;
}

static void pair_set(const struct diff_opts *o, const struct side *A, const struct side *B,
                     struct pair *p, const struct cmp *c)
{
    const char *l;

    diff_metrics_of(&c->acc, &p->m);
    p->zero_a = c->acc.xx == 0 && c->acc.yy > 0;
    p->zero_b = c->acc.yy == 0 && c->acc.xx > 0;
    p->map = c->map;
    p->perm_dir = c->perm_dir;
    p->vstatus = diff_value_status(&p->m);
    layout_status(p, diff_pa(A, p), diff_pb(B, p), c->map, p->vstatus, &p->status, &l);
    p->done = 1;
    /* A transposed or reinterpreted tensor holds the same numbers in another layout: the
     * files differ (a runtime reading one as the other computes garbage), so neither
     * passes; an undone RoPE permutation between GGUF and HF layouts is the same tensor. */
    if (diff_gates_given(o))
        p->pass = p->status != ST_REINTERPRETED && p->status != ST_PERMUTED &&
                  p->status != ST_TRANSPOSED && diff_within(o, &p->m);
    else
        p->pass = p->vstatus == ST_IDENTICAL && p->status == ST_IDENTICAL;
}

/* The alternative beats the current result when its values match and it is closer. */
static int better(const struct diff_metrics *alt, const struct diff_metrics *cur)
{
    if (diff_value_status(alt) > ST_MEDIUM)
        return 0;
    if (diff_value_status(cur) <= ST_MEDIUM && diff_value_status(alt) >= diff_value_status(cur))
        return 0;
    return alt->cosine > cur->cosine || diff_value_status(alt) < diff_value_status(cur);
}

int diff_values_compute(const struct diff_opts *o, const struct side *A, const struct side *B,
                          struct pairs *P, struct err *e)
{
    struct engine E;
    size_t cap = 0, first_alt;
    int nt = o->n_threads > 0 ? o->n_threads : threads_ncpu();
    struct progress prog;
    int rc = -1;

    memset(&E, 0, sizeof E);
    E.A = A;
    E.B = B;
    E.pairs = P->v;
    E.prog = &prog;
    if (nt > 256)
        nt = 256;
    E.errs = calloc((size_t)nt, sizeof *E.errs);
    E.buf = calloc((size_t)nt * 2, sizeof *E.buf);
    E.cap = calloc((size_t)nt * 2, sizeof *E.cap);
    E.accs = malloc((size_t)nt * sizeof *E.accs);
    E.st = calloc((size_t)nt * 2, sizeof *E.st);
    if (!E.errs || !E.buf || !E.cap || !E.accs || !E.st) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k < 2 * nt; k++)
        stream_open(&E.st[k], NULL, 0, 0, e);
    /* round 1: the primary comparison of every pair */
    for (size_t i = 0; i < P->n; i++) {
        struct pair *p = &P->v[i];
        const struct model_tensor *ta = diff_pa(A, p), *tb = diff_pb(B, p);
        int map = MAP_FLAT;
        if (!ta || !tb)
            continue;
        if (!dtype_get(ta->dtype) || !dtype_get(tb->dtype) || ta->dtype == DT_C64 ||
            tb->dtype == DT_C64) {
            note_add(p, "type has no real value");
            continue;
        }
        if (ta->n_elems != tb->n_elems) {
            note_add(p, "element counts differ");
            continue;
        }
        p->comparable = 1;
        diff_plan_perm(A, B, p);
        if (diff_swapped_2d(ta, tb) && o->transpose_aware)
            map = MAP_TRANSPOSE;
        else if (!diff_same_shape(ta, tb) && !o->transpose_aware && diff_swapped_2d(ta, tb))
            note_add(p, "shapes swapped: compared in flat order (see --transpose-aware)");
        else if (p->layouts_differ && p->heads)
            map = MAP_ROWPERM;
        if (cmps_add(&E, &cap, i, map, map == MAP_ROWPERM ? diff_perm_dir_for(A, p) : 0, e))
            goto out;
    }
    if (engine_run(&E, 0, nt, e))
        goto out;
    for (size_t c = 0; c < E.n_cmps; c++)
        pair_set(o, A, B, &P->v[E.cmps[c].pair], &E.cmps[c]);

    /* round 2 (--transpose-aware): other layouts for pairs that are not identical */
    if (!o->transpose_aware)
        goto done;
    first_alt = E.n_cmps;
    for (size_t i = 0; i < P->n; i++) {
        struct pair *p = &P->v[i];
        const struct model_tensor *ta = diff_pa(A, p), *tb = diff_pb(B, p);
        if (!p->done || p->vstatus <= ST_MEDIUM)
            continue;   /* the values match as planned: no other layout to look for */
        if (p->map == MAP_TRANSPOSE) {
            if (cmps_add(&E, &cap, i, MAP_FLAT, 0, e))
                goto out;
        } else if (ta->n_dims == 2 && diff_same_shape(ta, tb) && ta->shape[0] == ta->shape[1] &&
                   ta->shape[0] > 1) {
            if (cmps_add(&E, &cap, i, MAP_TRANSPOSE, 0, e))
                goto out;
        }
        if (p->heads) {
            if (p->map == MAP_ROWPERM) {
                if (cmps_add(&E, &cap, i, MAP_FLAT, 0, e))
                    goto out;
            } else if (p->map == MAP_FLAT && diff_same_shape(ta, tb)) {
                if (cmps_add(&E, &cap, i, MAP_ROWPERM, 1, e) ||
                    cmps_add(&E, &cap, i, MAP_ROWPERM, 0, e))
                    goto out;
            }
        }
    }
    if (E.n_cmps > first_alt) {
        if (engine_run(&E, first_alt, nt, e))
            goto out;
        for (size_t c = first_alt; c < E.n_cmps; c++) {
            struct pair *p = &P->v[E.cmps[c].pair];
            struct diff_metrics m;
            diff_metrics_of(&E.cmps[c].acc, &m);
            if (better(&m, &p->m))
                pair_set(o, A, B, p, &E.cmps[c]);
        }
    }
done:
    rc = 0;
out:
    for (int k = 0; E.buf && k < 2 * nt; k++)
        free(E.buf[k]);
    for (int k = 0; E.st && k < 2 * nt; k++)
        stream_close(&E.st[k]);
    free(E.st);
    free(E.buf);
    free(E.cap);
    free(E.accs);
    free(E.errs);
    free(E.cmps);
    return rc;
}
