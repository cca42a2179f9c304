/*
 * diff.c - apr-diff: structural and value diff of models across formats and layouts,
 * and of activation dumps.  The contract, buckets and statuses are in diff.h.
 *
 * Value diff, step by step:
 *   1. open both models (any format) and pair their tensors by canonical name
 *      (names_canonical: GGUF, HF and APR spellings meet); unpaired ones are listed;
 *   2. plan one comparison per pair: how B's elements map onto A's order
 *        FLAT       B[i] vs A[i]: same shape, or a reinterpretation (other dims)
 *        ROWPERM    llama Q/K: A row r vs B row names_perm_row(r) (GGUF vs HF layout)
 *        TRANSPOSE  A [r,c] vs B [c,r]: A(i,j) vs B(j,i)
 *   3. cut comparisons into jobs of at most DIFF_JOB elements (TRANSPOSE, and types
 *      that cannot be cut, are one job: the whole pair in memory).  Workers pull jobs
 *      from an atomic counter, dequantize DIFF_CHUNK elements at a time into their own
 *      buffers and accumulate into the job's partial sums: memory stays bounded
 *      (two chunks per worker) whatever the model size;
 *   4. partial sums are merged per comparison in job order, so every number is the
 *      same whatever -j is;
 *   5. with --transpose-aware, pairs whose values do not match (LargeDiff or worse) get
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
#include "diff.h"
#include "../compare/compare.h"
#include "../common/banned.h"

#define DIFF_COS_CRIT 0.9       /* below this cosine the direction is wrong: Critical */
#define DIFF_CHUNK    65536     /* floats dequantized at a time per side (256 KiB) */
#define DIFF_JOB      (16 * DIFF_CHUNK)   /* elements per job: multiple of every block */
#define DIFF_TOPK     10        /* default top-K of dump diffs */
#define DIFF_MAX_FILES 1000000  /* files per dump directory */
#define OUT_MAX       ((size_t)1 << 31)

/* ---- statuses ---------------------------------------------------------------------- */

enum st {
    ST_IDENTICAL, ST_NEARLY, ST_SMALL, ST_MEDIUM, ST_LARGE, ST_CRITICAL,
    ST_TRANSPOSED, ST_REINTERPRETED, ST_PERMUTED, ST_COUNT
};

static const char *const st_names[ST_COUNT] = {
    "Identical", "NearlyIdentical", "SmallDiff", "MediumDiff", "LargeDiff", "Critical",
    "Transposed", "Reinterpreted", "Permuted",
};

static enum st value_status(const struct diff_metrics *m)
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
    return st_names[value_status(m)];
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

static void metrics_of(const struct cmp_sums *s, struct diff_metrics *m)
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
static int natcmp(const char *a, size_t na, const char *b, size_t nb)
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

static char *dup_n(const char *p, size_t n, struct err *e)
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
static const char *shape_of(char *buf, size_t cap, const struct model_tensor *t)
{
    return shape_fmt(buf, cap, t->shape, t->n_dims, SHAPE_BRACKETS);
}

static void json_shape(struct json_w *w, const struct model_tensor *t)
{
    json_w_arr(w);
    for (int k = 0; k < t->n_dims; k++)
        json_w_i64(w, t->shape[k]);
    json_w_arr_end(w);
}

static int same_shape(const struct model_tensor *a, const struct model_tensor *b)
{
    if (a->n_dims != b->n_dims)
        return 0;
    for (int k = 0; k < a->n_dims; k++)
        if (a->shape[k] != b->shape[k])
            return 0;
    return 1;
}

static int swapped_2d(const struct model_tensor *a, const struct model_tensor *b)
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
static void fmt_coords(char *buf, size_t cap, int n_dims, const int64_t *shape, int64_t idx)
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
static void json_coords(struct json_w *w, int n_dims, const int64_t *shape, int64_t idx)
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
static const char *num(char *buf, size_t cap, double v)
{
    if (json_fmt_num(buf, cap, v, 0) != 0)
        return buf;    /* "nan", "inf", "-inf" */
    if (strlen(buf) > 11)
        snprintf(buf, cap, "%.6g", v);
    return buf;
}

/* End the JSON document in b with a newline and write it to out; b is released either way. */
static int write_json(FILE *out, struct sbuf *b, struct err *e)
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

static int gates_given(const struct diff_opts *o)
{
    return !isnan(o->fail_cos) || !isnan(o->fail_max) || !isnan(o->fail_nmse);
}

/* Within every threshold given (metrics must exist). */
static int within(const struct diff_opts *o, const struct diff_metrics *m)
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

/* ---- what a path is ------------------------------------------------------------------ */

enum kind { K_MODEL, K_APRT, K_RAW, K_DUMPDIR };

static const char *const kind_names[] = { "model", "APRT dump", "f32 dump", "dump directory" };
/* "cannot compare model 'a' with APRT dump 'b'" */

/* A directory is a model when it holds SafeTensors (shards or an index), else dumps. */
static int dir_is_model(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int model = 0;

    if (!d)
        return 1;   /* let model_open report the error */
    while (!model && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if ((n > 12 && strcmp(de->d_name + n - 12, ".safetensors") == 0) ||
            (n > 11 && strcmp(de->d_name + n - 11, ".index.json") == 0))
            model = 1;
    }
    closedir(d);
    return model;
}

/*
 * By content: GGUF and APR magic, a SafeTensors header (u64 length, then '{'), a JSON
 * index ('{'), APRT; anything else is taken as headerless little-endian f32.
 */
static int detect(const char *path, enum kind *k, struct err *e)
{
    struct stat st;
    unsigned char h[16];
    ssize_t n;
    int fd;

    if (stat(path, &st) != 0)
        return ERR_SYS(e, "cannot open '%s'", path);
    if (S_ISDIR(st.st_mode)) {
        *k = dir_is_model(path) ? K_MODEL : K_DUMPDIR;
        return 0;
    }
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return ERR_SYS(e, "cannot open '%s'", path);
    n = read(fd, h, sizeof h);
    close(fd);
    if (n < 0)
        return ERR_SYS(e, "cannot read '%s'", path);
    *k = K_RAW;
    if (n >= 4 && (memcmp(h, "GGUF", 4) == 0 || memcmp(h, "APR", 3) == 0) &&
        memcmp(h, "APRT", 4) != 0)
        *k = K_MODEL;
    else if (aprt_is(h, (size_t)n))
        *k = K_APRT;
    else if (n >= 1 && h[0] == '{')
        *k = K_MODEL;
    else if (n >= 9 && h[8] == '{') {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--)
            hl = hl << 8 | h[i];
        if (hl >= 2 && hl <= (uint64_t)st.st_size - 8)
            *k = K_MODEL;
    }
    return 0;
}

/* ---- one side of a model diff -------------------------------------------------------- */

struct side {
    struct model m;
    const char  *path;
    char         arch[64];
    int64_t      n_head, n_head_kv;   /* 0 when unknown */
};

static void side_meta(struct side *s)
{
    struct model_config c;

    model_config_peek(&s->m, &c);
    snprintf(s->arch, sizeof s->arch, "%s", c.arch);
    s->n_head = c.n_head;
    s->n_head_kv = c.n_head_kv;
}

/* 1 when tensor t of s is stored in GGUF's Q/K row order, 0 for HF's. */
static int side_gguf_layout(const struct side *s, const struct model_tensor *t)
{
    if (s->m.format == MODEL_FMT_GGUF)
        return 1;
    if (s->m.format == MODEL_FMT_SAFETENSORS)
        return 0;
    return names_is_gguf_style(t->name);
}

static int side_open(struct side *s, const char *path, struct err *e)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    if (model_open(&s->m, path, e))
        return -1;
    side_meta(s);
    return 0;
}

/* ---- pairing ------------------------------------------------------------------------- */

enum map { MAP_FLAT, MAP_ROWPERM, MAP_TRANSPOSE };

struct pair {
    int64_t   ia, ib;          /* tensor indices; -1 when absent on that side */
    char     *key;             /* the pairing key: canonical name (owned) */
    int       layer;           /* from the canonical name; -1 when not a layer tensor */
    /* plan */
    int       comparable;      /* element counts agree (and the types have values) */
    int       perm_kind;       /* enum names_perm for llama Q/K */
    int64_t   heads;           /* H of the Q/K permutation, 0 when unknown */
    int       layouts_differ;  /* one side GGUF row order, the other HF */
    /* result */
    int       done;
    int       map, perm_dir;   /* the comparison reported */
    struct diff_metrics m;
    enum st   status, vstatus;
    int       pass;            /* same (no gates) or within thresholds (gates) */
    int       zero_a, zero_b;  /* that side is all zeros (and the other is not) */
    char      note[160];
};

struct ent {
    char    *key;
    int64_t  idx;
    struct slice name;
};

static int ent_cmp(const void *x, const void *y)
{
    const struct ent *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* Keys for every tensor of s: canonical names; names whose canonical form repeats
 * inside the file (two spellings of one tensor) keep their own name. */
static struct ent *ents_build(const struct side *s, struct err *e)
{
    uint64_t n = s->m.n_tensors;
    struct ent *v = calloc(n ? n : 1, sizeof *v);
    char buf[NAMES_MAX];
    int dup = 0;

    if (!v) {
        ERR(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        const struct model_tensor *t = &s->m.tensors[i];
        int rc = names_canonical(s->arch[0] ? s->arch : NULL, t->name, buf, sizeof buf);
        v[i].idx = (int64_t)i;
        v[i].name = t->name;
        v[i].key = rc == -2 ? dup_n(t->name.p, t->name.n, e) : dup_n(buf, strlen(buf), e);
        if (!v[i].key)
            goto fail;
    }
    qsort(v, n, sizeof *v, ent_cmp);
    for (uint64_t i = 0; i + 1 < n; i++)
        if (strcmp(v[i].key, v[i + 1].key) == 0) {
            uint64_t j = i;
            while (j < n && strcmp(v[j].key, v[i].key) == 0)
                j++;
            for (uint64_t k = i; k < j; k++) {
                char *r = dup_n(v[k].name.p, v[k].name.n, e);
                if (!r)
                    goto fail;
                free(v[k].key);
                v[k].key = r;
            }
            dup = 1;
            i = j - 1;
        }
    if (dup)
        qsort(v, n, sizeof *v, ent_cmp);
    return v;
fail:
    for (uint64_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
    return NULL;
}

static int key_layer(const char *k)
{
    long v = 0;
    int any = 0;

    if (strncmp(k, "model.layers.", 13) != 0)
        return -1;
    for (k += 13; *k >= '0' && *k <= '9'; k++) {
        v = v * 10 + (*k - '0');
        any = 1;
        if (v > 1000000)
            return -1;
    }
    return any && *k == '.' ? (int)v : -1;
}

struct pairs {
    struct pair *v;
    size_t       n;
    uint64_t     n_only_a, n_only_b, n_paired;
};

static void pairs_release(struct pairs *P)
{
    for (size_t i = 0; i < P->n; i++)
        free(P->v[i].key);
    free(P->v);
    memset(P, 0, sizeof *P);
}

static int filter_match(const regex_t *re, const struct side *A, const struct side *B,
                        const struct pair *p)
{
    char buf[NAMES_MAX + 1];

    if (!re)
        return 1;
    if (regexec(re, p->key, 0, NULL, 0) == 0)
        return 1;
    for (int s = 0; s < 2; s++) {
        int64_t i = s ? p->ib : p->ia;
        const struct side *S = s ? B : A;
        struct slice nm;
        if (i < 0)
            continue;
        nm = S->m.tensors[i].name;
        if (nm.n >= sizeof buf)
            continue;
        memcpy(buf, nm.p, nm.n);
        buf[nm.n] = 0;
        if (regexec(re, buf, 0, NULL, 0) == 0)
            return 1;
    }
    return 0;
}

static const struct model_tensor *pa(const struct side *A, const struct pair *p)
{
    return p->ia >= 0 ? &A->m.tensors[p->ia] : NULL;
}

static const struct model_tensor *pb(const struct side *B, const struct pair *p)
{
    return p->ib >= 0 ? &B->m.tensors[p->ib] : NULL;
}

/* Display name of a pair: A's spelling, else B's. */
static struct slice pname(const struct side *A, const struct side *B, const struct pair *p)
{
    return p->ia >= 0 ? A->m.tensors[p->ia].name : B->m.tensors[p->ib].name;
}

static int pair_cmp_name(const struct side *A, const struct side *B, const struct pair *x,
                         const struct pair *y)
{
    struct slice a = pname(A, B, x), b = pname(A, B, y);
    int c = natcmp(a.p, a.n, b.p, b.n);
    return c ? c : strcmp(x->key, y->key);
}

static const struct side *g_sort_a, *g_sort_b;   /* qsort has no context argument */

static int pair_qsort_name(const void *x, const void *y)
{
    return pair_cmp_name(g_sort_a, g_sort_b, x, y);
}

/* Pair A's and B's tensors by key, keep those matching the filter, natural name order. */
static int pairs_build(const struct side *A, const struct side *B, const regex_t *re,
                       struct pairs *P, struct err *e)
{
    struct ent *ea = ents_build(A, e), *eb = NULL;
    uint64_t na = A->m.n_tensors, nb = B->m.n_tensors, i = 0, j = 0;
    int rc = -1;

    memset(P, 0, sizeof *P);
    if (!ea)
        return -1;
    eb = ents_build(B, e);
    if (!eb)
        goto out;
    P->v = calloc(na + nb + 1, sizeof *P->v);
    if (!P->v) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    while (i < na || j < nb) {
        struct pair *p = &P->v[P->n];
        int c = i >= na ? 1 : j >= nb ? -1 : strcmp(ea[i].key, eb[j].key);
        memset(p, 0, sizeof *p);
        p->ia = c <= 0 ? ea[i].idx : -1;
        p->ib = c >= 0 ? eb[j].idx : -1;
        p->key = c <= 0 ? ea[i].key : eb[j].key;
        if (c <= 0)
            ea[i].key = NULL;
        else
            eb[j].key = NULL;
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
        p->layer = key_layer(p->key);
        if (!filter_match(re, A, B, p)) {
            free(p->key);
            continue;
        }
        if (p->ia >= 0 && p->ib >= 0)
            P->n_paired++;
        else if (p->ia >= 0)
            P->n_only_a++;
        else
            P->n_only_b++;
        P->n++;
    }
    g_sort_a = A;
    g_sort_b = B;
    qsort(P->v, P->n, sizeof *P->v, pair_qsort_name);
    rc = 0;
out:
    for (uint64_t k = 0; ea && k < na; k++)
        free(ea[k].key);
    for (uint64_t k = 0; eb && k < nb; k++)
        free(eb[k].key);
    free(ea);
    free(eb);
    if (rc)
        pairs_release(P);
    return rc;
}

/* ---- value comparison engine --------------------------------------------------------- */

struct cmp {
    size_t      pair;
    int         map;          /* enum map */
    int         perm_dir;     /* ROWPERM: names_perm_row's to_gguf for A's row -> B's row */
    int         whole;        /* one job: both tensors dequantized whole */
    struct cmp_sums acc;      /* merged result */
};

struct job {
    size_t      cmp;
    int64_t     begin, end;   /* FLAT: elements; ROWPERM: rows of A; whole: unused */
    struct cmp_sums acc;      /* the sums of its elements (a segment of the stream) */
};

struct engine {
    const struct side *A, *B;
    struct pair      *pairs;
    struct cmp       *cmps;
    size_t            n_cmps;
    struct job       *jobs;
    size_t            n_jobs;
    atomic_size_t     next;
    atomic_int        failed;
    struct err       *errs;       /* per worker */
    float           **buf;        /* per worker: 2 buffers each */
    struct cmp_acc   *accs;       /* per worker */
    size_t           *cap;
    struct progress  *prog;
};

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

/* Dequantize elements [e0, e0+n) of t (e0 on a block boundary) into dst. */
static int dq_range(const struct model_tensor *t, int64_t e0, int64_t n, float *dst, struct err *e)
{
    const struct dtype_info *di = dtype_get(t->dtype);
    uint64_t off = (uint64_t)(e0 / (int64_t)di->blck) * di->type_size;

    if (off > t->size)
        return ERR(e, ERR_INTERNAL, "range past tensor '%.*s'", (int)t->name.n, t->name.p);
    return dq_to_f32(t->dtype, t->data + off, t->size - off, dst, n, 1, e);
}

static uint64_t bytes_of(const struct model_tensor *t, int64_t n)
{
    return t->n_elems ? (uint64_t)((double)t->size * (double)n / (double)t->n_elems) : 0;
}

static int64_t rows_of(const struct model_tensor *t)
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
    const struct model_tensor *ta = pa(E->A, p), *tb = pb(E->B, p);
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
            int64_t rows = rows_of(ta), len = rows ? n / rows : 0;
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

static int job_part(struct engine *E, const struct cmp *c, const struct job *j,
                    struct cmp_acc *acc, float **ba, float **bb, size_t *ca, size_t *cb,
                    struct err *e);

/* Job j on worker w: its elements are one segment of the comparison's stream. */
static int job_run(struct engine *E, struct job *j, int w, struct err *e)
{
    const struct cmp *c = &E->cmps[j->cmp];
    const struct model_tensor *ta = pa(E->A, &E->pairs[c->pair]);
    int64_t rows = rows_of(ta);
    float **ba = &E->buf[2 * w], **bb = &E->buf[2 * w + 1];
    size_t *ca = &E->cap[2 * w], *cb = &E->cap[2 * w + 1];
    struct cmp_acc *acc = &E->accs[w];
    int rc;

    cmp_init_at(acc, c->whole ? 0 : c->map == MAP_FLAT ? j->begin
                                  : j->begin * (rows ? ta->n_elems / rows : 0));
    rc = c->whole ? job_whole(E, c, acc, e) : job_part(E, c, j, acc, ba, bb, ca, cb, e);
    cmp_flush(acc);
    j->acc = acc->s;
    return rc;
}

/* A FLAT or ROWPERM job: its range dequantized DIFF_CHUNK elements at a time. */
static int job_part(struct engine *E, const struct cmp *c, const struct job *j,
                    struct cmp_acc *acc, float **ba, float **bb, size_t *ca, size_t *cb,
                    struct err *e)
{
    const struct pair *p = &E->pairs[c->pair];
    const struct model_tensor *ta = pa(E->A, p), *tb = pb(E->B, p);

    if (c->map == MAP_FLAT) {
        if (ensure(ba, ca, DIFF_CHUNK, e) || ensure(bb, cb, DIFF_CHUNK, e))
            return -1;
        for (int64_t e0 = j->begin; e0 < j->end; e0 += DIFF_CHUNK) {
            int64_t m = j->end - e0 < DIFF_CHUNK ? j->end - e0 : DIFF_CHUNK;
            if (dq_range(ta, e0, m, *ba, e) || dq_range(tb, e0, m, *bb, e))
                return -1;
            cmp_add(acc, *ba, *bb, (size_t)m);
            progress_add(E->prog, bytes_of(ta, m) + bytes_of(tb, m));
        }
        return 0;
    }
    /* ROWPERM: rows of A in order, B's rows gathered through the permutation */
    {
        int64_t rows = rows_of(ta), len = ta->n_elems / rows;
        int64_t step = len >= DIFF_CHUNK ? 1 : DIFF_CHUNK / len;
        if (ensure(ba, ca, (size_t)(step * len), e) || ensure(bb, cb, (size_t)(step * len), e))
            return -1;
        for (int64_t r = j->begin; r < j->end; r += step) {
            int64_t k = j->end - r < step ? j->end - r : step;
            if (dq_range(ta, r * len, k * len, *ba, e))
                return -1;
            for (int64_t q = 0; q < k; q++) {
                int64_t s = names_perm_row(r + q, rows, p->heads, c->perm_dir);
                if (s < 0)
                    return ERR(e, ERR_INTERNAL, "bad row permutation");
                if (dq_range(tb, s * len, len, *bb + q * len, e))
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
    const struct model_tensor *ta = pa(E->A, p), *tb = pb(E->B, p);
    int64_t total, unit;

    if (c->map == MAP_TRANSPOSE || !cuttable(ta) || !cuttable(tb))
        c->whole = 1;
    if (c->map == MAP_ROWPERM) {
        int64_t rows = rows_of(ta), len = rows ? ta->n_elems / rows : 0;
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
            const struct model_tensor *ta = pa(E->A, p), *tb = pb(E->B, p);
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
static void plan_perm(const struct side *A, const struct side *B, struct pair *p)
{
    const struct model_tensor *ta = pa(A, p), *tb = pb(B, p);
    const char *arch = A->arch[0] ? A->arch : B->arch;
    int64_t h;
    struct err e = ERR_INIT;

    p->perm_kind = names_qk_permute_kind(arch, ta->name);
    if (p->perm_kind == NAMES_PERM_NONE)
        p->perm_kind = names_qk_permute_kind(arch, tb->name);
    if (p->perm_kind == NAMES_PERM_NONE)
        return;
    p->layouts_differ = side_gguf_layout(A, ta) != side_gguf_layout(B, tb);
    h = p->perm_kind == NAMES_PERM_Q ? (A->n_head ? A->n_head : B->n_head)
                                     : (A->n_head_kv ? A->n_head_kv : B->n_head_kv);
    if (h > 0 && same_shape(ta, tb) && ta->n_elems > 0 &&
        names_perm_check(rows_of(ta), h, &e) == 0)
        p->heads = h;
    else if (p->layouts_differ)
        note_add(p, "cannot undo the RoPE row permutation (head count unknown or rows do not fit)");
}

/* names_perm_row's to_gguf for "A row r is B row perm(r)", A in GGUF layout or not. */
static int perm_dir_for(const struct side *A, const struct pair *p)
{
    return side_gguf_layout(A, pa(A, p)) ? 1 : 0;
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
    } else if (!same_shape(ta, tb)) {
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

static const char *layout_name(const struct side *A, const struct side *B, const struct pair *p)
{
    enum st s;
    const char *l;

    if (!p->done)
        return "none";
    layout_status(p, pa(A, p), pb(B, p), p->map, p->vstatus, &s, &l);
    return l;
}

static void pair_set(const struct diff_opts *o, const struct side *A, const struct side *B,
                     struct pair *p, const struct cmp *c)
{
    const char *l;

    metrics_of(&c->acc, &p->m);
    p->zero_a = c->acc.xx == 0 && c->acc.yy > 0;
    p->zero_b = c->acc.yy == 0 && c->acc.xx > 0;
    p->map = c->map;
    p->perm_dir = c->perm_dir;
    p->vstatus = value_status(&p->m);
    layout_status(p, pa(A, p), pb(B, p), c->map, p->vstatus, &p->status, &l);
    p->done = 1;
    if (gates_given(o))
        p->pass = p->status != ST_REINTERPRETED && p->status != ST_PERMUTED && within(o, &p->m);
    else
        p->pass = p->vstatus == ST_IDENTICAL &&
                  (p->status == ST_IDENTICAL || p->status == ST_TRANSPOSED);
}

/* The alternative beats the current result when its values match and it is closer. */
static int better(const struct diff_metrics *alt, const struct diff_metrics *cur)
{
    if (value_status(alt) > ST_MEDIUM)
        return 0;
    if (value_status(cur) <= ST_MEDIUM && value_status(alt) >= value_status(cur))
        return 0;
    return alt->cosine > cur->cosine || value_status(alt) < value_status(cur);
}

static int values_compute(const struct diff_opts *o, const struct side *A, const struct side *B,
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
    if (!E.errs || !E.buf || !E.cap || !E.accs) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    /* round 1: the primary comparison of every pair */
    for (size_t i = 0; i < P->n; i++) {
        struct pair *p = &P->v[i];
        const struct model_tensor *ta = pa(A, p), *tb = pb(B, p);
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
        plan_perm(A, B, p);
        if (swapped_2d(ta, tb) && o->transpose_aware)
            map = MAP_TRANSPOSE;
        else if (!same_shape(ta, tb) && !o->transpose_aware && swapped_2d(ta, tb))
            note_add(p, "shapes swapped: compared in flat order (see --transpose-aware)");
        else if (p->layouts_differ && p->heads)
            map = MAP_ROWPERM;
        if (cmps_add(&E, &cap, i, map, map == MAP_ROWPERM ? perm_dir_for(A, p) : 0, e))
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
        const struct model_tensor *ta = pa(A, p), *tb = pb(B, p);
        if (!p->done || p->vstatus <= ST_MEDIUM)
            continue;   /* the values match as planned: no other layout to look for */
        if (p->map == MAP_TRANSPOSE) {
            if (cmps_add(&E, &cap, i, MAP_FLAT, 0, e))
                goto out;
        } else if (ta->n_dims == 2 && same_shape(ta, tb) && ta->shape[0] == ta->shape[1] &&
                   ta->shape[0] > 1) {
            if (cmps_add(&E, &cap, i, MAP_TRANSPOSE, 0, e))
                goto out;
        }
        if (p->heads) {
            if (p->map == MAP_ROWPERM) {
                if (cmps_add(&E, &cap, i, MAP_FLAT, 0, e))
                    goto out;
            } else if (p->map == MAP_FLAT && same_shape(ta, tb)) {
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
            metrics_of(&E.cmps[c].acc, &m);
            if (better(&m, &p->m))
                pair_set(o, A, B, p, &E.cmps[c]);
        }
    }
done:
    rc = 0;
out:
    for (int k = 0; E.buf && k < 2 * nt; k++)
        free(E.buf[k]);
    free(E.buf);
    free(E.cap);
    free(E.accs);
    free(E.errs);
    free(E.cmps);
    return rc;
}

/* ---- the picture (--plot) ------------------------------------------------------------ */

struct plot_pt {
    const char *label;    /* borrowed; escaped on output */
    size_t      label_n;
    int         group;    /* layer number, -1 before the layers, INT32_MAX after */
    double      cos_dist; /* 1 - cosine */
    double      rel_err;  /* RMSE / RMS(a) */
    int         bad;      /* 0 identical, 1 close, 2 far: the colour */
    int         valid;
};

/* Text as XML character data: markup escaped, control bytes and bad UTF-8 as '?'. */
static void xml_text(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t len = c < 0x80 ? 1 : (size_t)utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (len == 0 || (len == 1 && c < 0x20 && c != '\t')) {
            sbuf_addc(b, '?');
            i++;
            continue;
        }
        if (c == '&')
            sbuf_adds(b, "&amp;");
        else if (c == '<')
            sbuf_adds(b, "&lt;");
        else if (c == '>')
            sbuf_adds(b, "&gt;");
        else if (c == '"')
            sbuf_adds(b, "&quot;");
        else if (c == '\'')
            sbuf_adds(b, "&apos;");
        else
            sbuf_add(b, s + i, len);
        i += len;
    }
}

#define PLOT_LO  (-12)     /* decades shown: 1e-12 (and anything smaller, zero too) .. 10 */
#define PLOT_HI  1

static double plot_y(double v, double top, double h)
{
    double l = v > 0 ? log10(v) : PLOT_LO;

    if (l < PLOT_LO)
        l = PLOT_LO;
    if (l > PLOT_HI)
        l = PLOT_HI;
    return top + h * (PLOT_HI - l) / (PLOT_HI - PLOT_LO);
}

static int plot_write(const char *path, const char *title_a, const char *title_b,
                      const struct plot_pt *pt, size_t n, struct err *e)
{
    static const char *const colour[3] = { "#2a9d8f", "#e9a23b", "#d62828" };
    static const char *const panel_name[2] = { "1 - cosine (log)", "RMSE / RMS(a) (log)" };
    struct sbuf b = SBUF_INIT(OUT_MAX);
    const double left = 80, right = 20, top = 50, ph = 240, gap = 70, ggap = 12;
    double width, height, x, step;
    size_t n_groups = 0, bn;
    const char *base;
    char tmp[64];
    int rc;

    for (size_t i = 0; i < n; i++)
        if (i == 0 || pt[i].group != pt[i - 1].group)
            n_groups++;
    width = left + right + (double)n * 9 + (double)n_groups * ggap;
    if (width < 720)
        width = 720;
    /* spread the points over the panel: at least 9 px apart, at most 40 */
    step = n ? (width - left - right - (double)n_groups * ggap) / (double)n : 9;
    if (step > 40)
        step = 40;
    height = top + 2 * ph + gap + 60;
    sbuf_addf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
              width, height, width, height);
    sbuf_addf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    sbuf_adds(&b, "<text x=\"10\" y=\"20\" font-size=\"14\">apr-diff: ");
    base = path_base(title_a, &bn);   /* the last component ("dir/" gives "dir") */
    xml_text(&b, base, bn);
    sbuf_adds(&b, " vs ");
    base = path_base(title_b, &bn);
    xml_text(&b, base, bn);
    sbuf_addf(&b, "</text>\n<text x=\"10\" y=\"38\" fill=\"#555\">%zu entries:</text>\n", n);
    {
        static const char *const what[3] = { "identical", "close (max |a-b| &lt; 0.1)", "far" };
        double lx = 90;
        for (int c = 0; c < 3; c++) {
            sbuf_addf(&b, "<circle cx=\"%.1f\" cy=\"34\" r=\"4\" fill=\"%s\"/>"
                          "<text x=\"%.1f\" y=\"38\" fill=\"#555\">%s</text>\n",
                      lx, colour[c], lx + 8, what[c]);
            lx += c == 1 ? 200 : 90;
        }
    }
    for (int panel = 0; panel < 2; panel++) {
        double ptop = top + panel * (ph + gap);
        sbuf_addf(&b, "<g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                      "fill=\"none\" stroke=\"#999\"/>\n",
                  left, ptop, width - left - right, ph);
        for (int d = PLOT_LO; d <= PLOT_HI; d++) {
            double y = plot_y(pow(10, d), ptop, ph);
            sbuf_addf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n",
                      left, y, width - right, y, left - 4, y + 4, d);
        }
        sbuf_addf(&b, "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">"
                      "%s</text>\n", ptop + ph / 2, panel_name[panel]);
        x = left;
        for (size_t i = 0; i < n; i++) {
            double v = panel ? pt[i].rel_err : pt[i].cos_dist, y;
            if (i == 0 || pt[i].group != pt[i - 1].group) {
                x += ggap;
                sbuf_addf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                              "stroke=\"#ccc\"/>\n", x - ggap / 2, ptop, x - ggap / 2, ptop + ph);
                if (panel == 1) {
                    if (pt[i].group == -1)
                        snprintf(tmp, sizeof tmp, "pre");
                    else if (pt[i].group == INT32_MAX)
                        snprintf(tmp, sizeof tmp, "post");
                    else
                        snprintf(tmp, sizeof tmp, "L%d", pt[i].group);
                    sbuf_addf(&b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x,
                              ptop + ph + 16, tmp);
                }
            }
            x += step;
            if (!pt[i].valid)
                continue;
            y = plot_y(v, ptop, ph);
            sbuf_addf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>",
                      x - step / 2, y, colour[pt[i].bad]);
            xml_text(&b, pt[i].label, pt[i].label_n);
            json_fmt_num(tmp, sizeof tmp, v, 0);
            sbuf_addf(&b, ": %s</title></circle>\n", tmp);
        }
        sbuf_adds(&b, "</g>\n");
    }
    sbuf_addf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">tensor or stage, grouped "
                  "by layer (pre: before the layers, post: after)</text>\n</svg>\n",
              width / 2, height - 12);
    if (sbuf_check(&b, "plot", e)) {
        sbuf_release(&b);
        return -1;
    }
    /* written beside the target, then renamed: no partial picture */
    rc = ofile_put(path, b.p, b.len, e);
    sbuf_release(&b);
    return rc;
}

static int plot_bad(enum st s)
{
    return s == ST_IDENTICAL ? 0 : s <= ST_MEDIUM || s == ST_TRANSPOSED ? 1 : 2;
}

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
    return pair_cmp_name(g_sort_a, g_sort_b, a, b);
}

static void text_notes(FILE *f, const struct side *A, const struct side *B, const struct pair *p)
{
    const struct model_tensor *ta = pa(A, p), *tb = pb(B, p);
    const char *l = layout_name(A, B, p);
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
    if (!same_shape(ta, tb)) {
        SEP();
        fprintf(f, "%s vs %s", shape_of(sa, sizeof sa, ta), shape_of(sb, sizeof sb, tb));
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
    const struct model_tensor *ta = pa(A, p), *tb = pb(B, p);
    const struct diff_metrics *m = &p->m;

    json_w_obj(w);
    json_w_key(w, "name");
    json_w_str_n(w, ta->name.p, ta->name.n);
    json_w_key(w, "shape_a");
    json_shape(w, ta);
    json_w_key(w, "shape_b");
    json_shape(w, tb);
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
    json_w_str(w, p->done ? st_names[p->status] : st_names[ST_CRITICAL]);
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
        json_coords(w, ta->n_dims, ta->shape, m->max_index);
    else
        json_w_null(w);
    U("nonfinite_mismatch_count", m->n_nonfinite);
    json_w_key(w, "value_status");
    json_w_str(w, p->done ? st_names[p->vstatus] : st_names[ST_CRITICAL]);
    json_w_key(w, "layout");
    json_w_str(w, layout_name(A, B, p));
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

static int values_report(const struct diff_opts *o, const struct side *A, const struct side *B,
                         const struct pairs *P, FILE *out, int *different, struct err *e)
{
    char la[48], lb[48];
    size_t *ord = NULL, n_res = 0, shown;
    uint64_t cnt[ST_COUNT] = { 0 }, n_fail = 0;
    int gates = gates_given(o);
    char b1[64], b2[64], b3[64], b4[64], b5[64], at[256];
    int rc = -1;

    ord = malloc((P->n + 1) * sizeof *ord);
    if (!ord)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < P->n; i++) {
        const struct pair *p = &P->v[i];
        if (p->ia < 0 || p->ib < 0)
            continue;
        ord[n_res++] = i;
        cnt[p->done ? p->status : ST_CRITICAL]++;
        if (!p->done || !p->pass)
            n_fail++;
    }
    if (o->sort == DIFF_SORT_WORST) {
        g_wp = P;
        g_sort_a = A;
        g_sort_b = B;
        qsort(ord, n_res, sizeof *ord, pair_qsort_worst);
    }
    shown = o->limit >= 0 && (uint64_t)o->limit < n_res ? (size_t)o->limit : n_res;
    *different = n_fail > 0 || P->n_only_a > 0 || P->n_only_b > 0;

    if (o->json) {
        struct sbuf b = SBUF_INIT(OUT_MAX);
        struct json_w w;
        json_w_init(&w, &b, 1);
        json_w_obj(&w);
        json_w_key(&w, "model_a");
        json_w_str(&w, A->path);
        json_w_key(&w, "model_b");
        json_w_str(&w, B->path);
        json_w_key(&w, "tensors_compared");
        json_w_u64(&w, n_res);
        json_w_key(&w, "identical_count");
        json_w_u64(&w, cnt[ST_IDENTICAL] + cnt[ST_NEARLY]);
        json_w_key(&w, "transposed_count");
        json_w_u64(&w, cnt[ST_TRANSPOSED]);
        json_w_key(&w, "critical_count");
        json_w_u64(&w, cnt[ST_CRITICAL]);
        json_w_key(&w, "large_count");
        json_w_u64(&w, cnt[ST_LARGE]);
        json_w_key(&w, "medium_count");
        json_w_u64(&w, cnt[ST_MEDIUM]);
        json_w_key(&w, "small_count");
        json_w_u64(&w, cnt[ST_SMALL]);
        json_w_key(&w, "reinterpreted_count");
        json_w_u64(&w, cnt[ST_REINTERPRETED]);
        json_w_key(&w, "permuted_count");
        json_w_u64(&w, cnt[ST_PERMUTED]);
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
        json_w_u64(&w, n_fail);
        json_w_key(&w, "same");
        json_w_bool(&w, !*different);
        json_w_key(&w, "sort");
        json_w_str(&w, o->sort == DIFF_SORT_WORST ? "worst" : "name");
        json_w_key(&w, "results_omitted");
        json_w_u64(&w, n_res - shown);
        json_w_key(&w, "results");
        json_w_arr(&w);
        for (size_t k = 0; k < shown; k++)
            json_result(&w, A, B, &P->v[ord[k]], gates);
        json_w_arr_end(&w);
        json_w_obj_end(&w);
        rc = write_json(out, &b, e);
        goto out;
    }

    fprintf(out, "a: %s (%s, %llu tensors)\nb: %s (%s, %llu tensors)\n", A->path,
            model_format_label(&A->m, la, sizeof la), (unsigned long long)A->m.n_tensors,
            B->path, model_format_label(&B->m, lb, sizeof lb), (unsigned long long)B->m.n_tensors);
    fprintf(out, "%-15s %-12s %-11s %-13s %-11s %-11s %s\n", "status", "cosine", "max|a-b|",
            "at", "rmse", "nmse", "name");
    for (size_t k = 0; k < shown; k++) {
        const struct pair *p = &P->v[ord[k]];
        const struct model_tensor *ta = pa(A, p);
        if (p->done) {
            if (p->m.max_diff > 0)
                fmt_coords(at, sizeof at, ta->n_dims, ta->shape, p->m.max_index);
            else
                snprintf(at, sizeof at, "-");
            fprintf(out, "%-15s %-12s %-11s %-13s %-11s %-11s ", st_names[p->status],
                    num(b1, sizeof b1, p->m.cosine), num(b2, sizeof b2, p->m.max_diff), at,
                    num(b3, sizeof b3, p->m.rmse), num(b4, sizeof b4, p->m.nmse));
        } else {
            fprintf(out, "%-15s %-12s %-11s %-13s %-11s %-11s ", st_names[ST_CRITICAL], "-", "-",
                    "-", "-", "-");
        }
        cli_put_escaped(out, ta->name.p, ta->name.n);
        text_notes(out, A, B, p);
        fputc('\n', out);
    }
    if (shown < n_res)
        fprintf(out, "... %zu more not shown (--limit %lld)\n", n_res - shown,
                (long long)o->limit);
    for (size_t i = 0; i < P->n; i++) {
        const struct pair *p = &P->v[i];
        const struct model_tensor *t = p->ia >= 0 ? pa(A, p) : pb(B, p);
        char sh[SHAPE_STR_MAX];
        if (p->ia >= 0 && p->ib >= 0)
            continue;
        fputs(p->ia >= 0 ? "< only in a: " : "> only in b: ", out);
        cli_put_escaped(out, t->name.p, t->name.n);
        fprintf(out, " %s %s\n", dtype_name(t->dtype), shape_of(sh, sizeof sh, t));
    }
    fprintf(out, "%zu tensors compared:", n_res);
    for (int s = 0, first = 1; s < ST_COUNT; s++)
        if (cnt[s]) {
            fprintf(out, "%s %llu %s", first ? "" : ",", (unsigned long long)cnt[s], st_names[s]);
            first = 0;
        }
    fprintf(out, "; %llu only in a, %llu only in b\n", (unsigned long long)P->n_only_a,
            (unsigned long long)P->n_only_b);
    if (gates) {
        fprintf(out, "thresholds:");
        if (!isnan(o->fail_cos))
            fprintf(out, " cosine >= %s", num(b5, sizeof b5, o->fail_cos));
        if (!isnan(o->fail_max))
            fprintf(out, " max|a-b| <= %s", num(b5, sizeof b5, o->fail_max));
        if (!isnan(o->fail_nmse))
            fprintf(out, " nmse <= %s", num(b5, sizeof b5, o->fail_nmse));
        fprintf(out, ": %llu outside\n", (unsigned long long)n_fail);
    }
    fprintf(out, "%s\n", *different ? "different" : gates ? "within thresholds" : "identical");
    rc = 0;
out:
    free(ord);
    return rc;
}

static int values_plot(const struct diff_opts *o, const struct side *A, const struct side *B,
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
        q->bad = plot_bad(p->done ? p->status : ST_CRITICAL);
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
    rc = plot_write(o->plot, A->path, B->path, pt, n, e);
    free(pt);
    return rc;
}

/* ---- structural diff ----------------------------------------------------------------- */

enum cat { CAT_FORMAT, CAT_METADATA, CAT_TENSOR, CAT_QUANT, CAT_SIZE, CAT_COUNT };
static const char *const cat_names[CAT_COUNT] = { "format", "metadata", "tensor", "quantization",
                                                  "size" };
static const char *const cat_types[CAT_COUNT] = { "format", "data", "data", "dtype", "size" };

struct sdiff {
    enum cat    cat;
    const char *change;      /* "added", "removed", "changed" */
    char       *field;       /* owned */
    char       *v1, *v2;     /* owned; NULL when absent */
};

struct sdiffs {
    struct sdiff *v;
    size_t        n, cap;
};

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
    d->field = dup_n(field->p ? field->p : "", field->len, e);
    d->v1 = v1 ? dup_n(v1->p ? v1->p : "", v1->len, e) : NULL;
    d->v2 = v2 ? dup_n(v2->p ? v2->p : "", v2->len, e) : NULL;
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

    sbuf_addf(b, "%s %s", dtype_name(t->dtype), shape_of(sh, sizeof sh, t));
}

/* Bytes equal, after undoing the Q/K row permutation when the layouts differ. */
static int data_equal(const struct side *A, const struct side *B, struct pair *p)
{
    const struct model_tensor *ta = pa(A, p), *tb = pb(B, p);
    int64_t rows;
    uint64_t rb;

    if (ta->size != tb->size)
        return 0;
    plan_perm(A, B, p);
    if (!(p->layouts_differ && p->heads))
        return ta->size == 0 || memcmp(ta->data, tb->data, ta->size) == 0;
    rows = rows_of(ta);
    if (rows <= 0 || ta->size % (uint64_t)rows)
        return 0;
    rb = ta->size / (uint64_t)rows;
    for (int64_t r = 0; r < rows; r++) {
        int64_t s = names_perm_row(r, rows, p->heads, perm_dir_for(A, p));
        if (s < 0 || memcmp(ta->data + (uint64_t)r * rb, tb->data + (uint64_t)s * rb, rb) != 0)
            return 0;
    }
    return 1;
}

static int structural(const struct diff_opts *o, const struct side *A, const struct side *B,
                      struct pairs *P, FILE *out, int *different, struct err *e)
{
    char la[48], lb[48];
    struct sdiffs D = { NULL, 0, 0 };
    uint64_t cc[CAT_COUNT] = { 0 };
    int rc = -1;

#define SB(x) struct sbuf x = SBUF_INIT(OUT_MAX)
#define REL() do { sbuf_release(&f); sbuf_release(&v1); sbuf_release(&v2); } while (0)
    /* format */
    if (A->m.format != B->m.format || A->m.version != B->m.version) {
        SB(f); SB(v1); SB(v2);
        sbuf_adds(&f, "format");
        sbuf_adds(&v1, model_format_label(&A->m, la, sizeof la));
        sbuf_adds(&v2, model_format_label(&B->m, lb, sizeof lb));
        rc = sdiff_add(&D, CAT_FORMAT, "changed", &f, &v1, &v2, e);
        REL();
        if (rc)
            goto out;
        rc = -1;
    }
    /* metadata: A's keys in order, then B's new keys */
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
        rc = sdiff_add(&D, CAT_METADATA, kb ? "changed" : "removed", &f, &v1, kb ? &v2 : NULL, e);
        REL();
        if (rc)
            goto out;
        rc = -1;
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
        rc = sdiff_add(&D, CAT_METADATA, "added", &f, NULL, &v2, e);
        REL();
        if (rc)
            goto out;
        rc = -1;
    }
    /* tensors */
    for (size_t i = 0; i < P->n; i++) {
        struct pair *p = &P->v[i];
        const struct model_tensor *ta = pa(A, p), *tb = pb(B, p);
        struct slice nm = pname(A, B, p);
        enum cat c;
        const char *change = "changed";
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
        } else if (!same_shape(ta, tb)) {
            sb_tensor(&v1, ta);
            sb_tensor(&v2, tb);
            c = CAT_SIZE;
        } else if (!data_equal(A, B, p)) {
            sbuf_adds(&v1, "data");
            sbuf_adds(&v2, "data differs");
            c = CAT_TENSOR;
        } else {
            REL();
            continue;
        }
        rc = sdiff_add(&D, c, change, &f, ta ? &v1 : NULL, tb ? &v2 : NULL, e);
        REL();
        if (rc)
            goto out;
        rc = -1;
    }
#undef SB
#undef REL
    for (size_t i = 0; i < D.n; i++)
        cc[D.v[i].cat]++;
    *different = D.n > 0;

    if (o->json) {
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
        json_w_bool(&w, D.n == 0);
        json_w_key(&w, "difference_count");
        json_w_u64(&w, D.n);
        json_w_key(&w, "structural_diffs");
        json_w_u64(&w, D.n);
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
        for (size_t i = 0; i < D.n; i++) {
            const struct sdiff *d = &D.v[i];
            json_w_obj(&w);
            json_w_key(&w, "field");
            json_w_str(&w, d->field);
            json_w_key(&w, "file1_value");
            if (d->v1)
                json_w_str(&w, d->v1);
            else
                json_w_null(&w);
            json_w_key(&w, "file2_value");
            if (d->v2)
                json_w_str(&w, d->v2);
            else
                json_w_null(&w);
            json_w_key(&w, "category");
            json_w_str(&w, cat_names[d->cat]);
            json_w_key(&w, "type");
            json_w_str(&w, cat_types[d->cat]);
            json_w_key(&w, "change");
            json_w_str(&w, d->change);
            json_w_obj_end(&w);
        }
        json_w_arr_end(&w);
        json_w_obj_end(&w);
        rc = write_json(out, &b, e);
        goto out;
    }
    fprintf(out, "a: %s (%s, %llu keys, %llu tensors)\n", A->path,
            model_format_label(&A->m, la, sizeof la), (unsigned long long)A->m.n_kv,
            (unsigned long long)A->m.n_tensors);
    fprintf(out, "b: %s (%s, %llu keys, %llu tensors)\n", B->path,
            model_format_label(&B->m, lb, sizeof lb), (unsigned long long)B->m.n_kv,
            (unsigned long long)B->m.n_tensors);
    for (size_t i = 0; i < D.n; i++) {
        const struct sdiff *d = &D.v[i];
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
                 "shape %llu)\n", D.n, (unsigned long long)cc[CAT_FORMAT],
            (unsigned long long)cc[CAT_METADATA], (unsigned long long)cc[CAT_TENSOR],
            (unsigned long long)cc[CAT_QUANT], (unsigned long long)cc[CAT_SIZE]);
    rc = 0;
out:
    sdiffs_release(&D);
    return rc;
}

/* ---- activation dumps ---------------------------------------------------------------- */

struct dump {
    float    *v;          /* owned */
    uint64_t  n;
    int       aprt;       /* 1: APRT, 0: headerless f32 */
    uint32_t  layer;      /* APRT only */
};

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

struct top {
    int64_t index;
    float   a, b;
    double  d;            /* Inf for a non-finite mismatch */
};

struct stage {
    char         *rel;     /* relative path (directories) or NULL; owned */
    const char   *path_a, *path_b;
    struct dump   da, db;
    int           have_a, have_b;
    int           comparable;
    struct diff_metrics m;
    enum st       status;
    int           pass;
    struct top   *top;     /* owned */
    size_t        n_top;
    /* order key */
    int64_t       group;
    int           rank;
    char          stage_name[64];
    int           layer;   /* from the path, -1 */
};

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
    s->status = value_status(&s->m);
    if (gates_given(o))
        s->pass = within(o, &s->m);
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
        json_w_str(w, st_names[ST_CRITICAL]);
        json_w_key(w, "note");
        json_w_str(w, !s->have_a || !s->have_b ? "only on one side" : "lengths differ");
        json_w_key(w, gates_given(o) ? "within_thresholds" : "same");
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
    json_w_str(w, st_names[s->status]);
    json_w_key(w, gates_given(o) ? "within_thresholds" : "same");
    json_w_bool(w, s->pass);
    json_w_obj_end(w);
}

static void text_metrics(FILE *out, const struct stage *s)
{
    char b1[64], b2[64], b3[64], b4[64], b5[64];

    fprintf(out, "status %s\n", st_names[s->status]);
    fprintf(out, "cosine %s  max|a-b| %s at [%lld]  mean|a-b| %s  rmse %s  nmse %s\n",
            num(b1, sizeof b1, s->m.cosine), num(b2, sizeof b2, s->m.max_diff),
            (long long)s->m.max_index, num(b3, sizeof b3, s->m.mean_diff),
            num(b4, sizeof b4, s->m.rmse), num(b5, sizeof b5, s->m.nmse));
    fprintf(out, "identical %llu, small %llu, medium %llu, large %llu, NaN/Inf mismatches %llu\n",
            (unsigned long long)s->m.n_identical, (unsigned long long)s->m.n_small,
            (unsigned long long)s->m.n_medium, (unsigned long long)s->m.n_large,
            (unsigned long long)s->m.n_nonfinite);
    if (s->n_top) {
        fprintf(out, "top %zu |a-b|:\n  %-12s %-14s %-14s %s\n", s->n_top, "index", "a", "b",
                "|a-b|");
        for (size_t i = 0; i < s->n_top; i++)
            fprintf(out, "  %-12lld %-14s %-14s %s\n", (long long)s->top[i].index,
                    num(b1, sizeof b1, s->top[i].a), num(b2, sizeof b2, s->top[i].b),
                    num(b3, sizeof b3, s->top[i].d));
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
        rc = write_json(out, &sb, e);
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
    fprintf(out, "%s\n", *different ? "different" : gates_given(o) ? "within thresholds" :
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
#define N_STAGES ((int)(sizeof stage_order / sizeof stage_order[0]))

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
    return natcmp(a->rel, strlen(a->rel), b->rel, strlen(b->rel));
}

static int dump_dirs(const struct diff_opts *o, const char *a, const char *b, FILE *out,
                     int *different, struct err *e)
{
    struct dirlist La = { NULL, 0, 0 }, Lb = { NULL, 0, 0 };
    struct stage *S = NULL;
    size_t n = 0, i = 0, j = 0, first = SIZE_MAX, n_only = 0, n_cmp = 0;
    double thr = isnan(o->fail_cos) ? DIFF_STAGE_COS : o->fail_cos;
    char pa_[8192], pb_[8192];
    int rc = -1;

    /* every *.bin / *.f32 file under a and b (links followed, dot files left out) */
    if (dir_walk(&La, a, DW_FOLLOW | DW_SKIP_DOT | DW_DEPTH_STOP, 8, DIFF_MAX_FILES,
                 has_dump_ext, e) ||
        dir_walk(&Lb, b, DW_FOLLOW | DW_SKIP_DOT | DW_DEPTH_STOP, 8, DIFF_MAX_FILES,
                 has_dump_ext, e))
        goto out;
    S = calloc(La.n + Lb.n + 1, sizeof *S);
    if (!S) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    while (i < La.n || j < Lb.n) {
        struct stage *s = &S[n++];
        int c = i >= La.n ? 1 : j >= Lb.n ? -1 : strcmp(La.v[i].rel, Lb.v[j].rel);
        const char *rel = c <= 0 ? La.v[i].rel : Lb.v[j].rel;
        s->rel = dup_n(rel, strlen(rel), e);
        if (!s->rel)
            goto out;
        s->have_a = c <= 0;
        s->have_b = c >= 0;
        if (c <= 0)
            i++;
        if (c >= 0)
            j++;
        stage_key(s);
    }
    qsort(S, n, sizeof *S, stage_qsort);
    for (size_t k = 0; k < n; k++) {
        struct stage *s = &S[k];
        enum kind ka, kb;
        snprintf(pa_, sizeof pa_, "%s/%s", a, s->rel);
        snprintf(pb_, sizeof pb_, "%s/%s", b, s->rel);
        if (!s->have_a || !s->have_b) {
            n_only++;
            s->status = ST_CRITICAL;
            continue;
        }
        n_cmp++;
        if (detect(pa_, &ka, e) || detect(pb_, &kb, e))
            goto out;
        if ((ka != K_APRT && ka != K_RAW) || (kb != K_APRT && kb != K_RAW)) {
            ERR(e, ERR_FORMAT, "'%s': not an activation dump", ka == K_APRT || ka == K_RAW ?
                pb_ : pa_);
            goto out;
        }
        if (dump_load(pa_, ka, &s->da, e) || dump_load(pb_, kb, &s->db, e) ||
            stage_compare(o, s, e))
            goto out;
        /* the divergence the stage list is read for: below the cosine threshold */
        if (first == SIZE_MAX && (!s->comparable || s->m.cosine < thr || s->m.n_nonfinite))
            first = k;
        /* the values are not needed any more: keep memory to one pair */
        free(s->da.v);
        free(s->db.v);
        s->da.v = s->db.v = NULL;
    }
    *different = n_only > 0;
    for (size_t k = 0; k < n; k++)
        if (S[k].have_a && S[k].have_b && !S[k].pass)
            *different = 1;

    if (o->json) {
        struct sbuf sb = SBUF_INIT(OUT_MAX);
        struct json_w w;
        json_w_init(&w, &sb, 1);
        json_w_obj(&w);
        json_w_key(&w, "schema");
        json_w_str(&w, "apr-stage-dir-diff-v1");
        json_w_key(&w, "path_a");
        json_w_str(&w, a);
        json_w_key(&w, "path_b");
        json_w_str(&w, b);
        json_w_key(&w, "threshold_cos");
        json_w_f64(&w, thr);
        json_w_key(&w, "stages_compared");
        json_w_u64(&w, n_cmp);
        json_w_key(&w, "first_divergent");
        if (first != SIZE_MAX)
            json_w_str(&w, S[first].rel);
        else
            json_w_null(&w);
        json_w_key(&w, "first_divergent_layer");
        if (first != SIZE_MAX && S[first].layer >= 0)
            json_w_i64(&w, S[first].layer);
        else
            json_w_null(&w);
        json_w_key(&w, "first_divergent_stage");
        if (first != SIZE_MAX)
            json_w_str(&w, S[first].stage_name);
        else
            json_w_null(&w);
        json_w_key(&w, "same");
        json_w_bool(&w, !*different);
        json_w_key(&w, "only_in_a");
        json_w_arr(&w);
        for (size_t k = 0; k < n; k++)
            if (S[k].have_a && !S[k].have_b)
                json_w_str(&w, S[k].rel);
        json_w_arr_end(&w);
        json_w_key(&w, "only_in_b");
        json_w_arr(&w);
        for (size_t k = 0; k < n; k++)
            if (S[k].have_b && !S[k].have_a)
                json_w_str(&w, S[k].rel);
        json_w_arr_end(&w);
        json_w_key(&w, "stages");
        json_w_arr(&w);
        for (size_t k = 0; k < n; k++) {
            snprintf(pa_, sizeof pa_, "%s/%s", a, S[k].rel);
            snprintf(pb_, sizeof pb_, "%s/%s", b, S[k].rel);
            S[k].path_a = pa_;
            S[k].path_b = pb_;
            if (S[k].have_a && S[k].have_b)
                json_stage(&w, o, &S[k], 0);
        }
        json_w_arr_end(&w);
        json_w_obj_end(&w);
        rc = write_json(out, &sb, e);
        if (rc)
            goto out;
    } else {
        char b1[64], b2[64], b3[64], b4[64];
        fprintf(out, "a: %s (%zu dump files)\nb: %s (%zu dump files)\n", a, La.n, b, Lb.n);
        fprintf(out, "%-15s %-12s %-11s %-11s %-11s %s\n", "status", "cosine", "max|a-b|", "rmse",
                "nmse", "stage");
        for (size_t k = 0; k < n; k++) {
            const struct stage *s = &S[k];
            if (!s->have_a || !s->have_b) {
                fprintf(out, "%s only in %s: ", s->have_a ? "<" : ">", s->have_a ? "a" : "b");
            } else if (!s->comparable) {
                fprintf(out, "%-15s %-12s %-11s %-11s %-11s ", st_names[ST_CRITICAL], "-", "-",
                        "-", "-");
            } else {
                fprintf(out, "%-15s %-12s %-11s %-11s %-11s ", st_names[s->status],
                        num(b1, sizeof b1, s->m.cosine), num(b2, sizeof b2, s->m.max_diff),
                        num(b3, sizeof b3, s->m.rmse), num(b4, sizeof b4, s->m.nmse));
            }
            cli_put_escaped(out, s->rel, strlen(s->rel));
            if (s->have_a && s->have_b && !s->comparable)
                fprintf(out, "  (lengths differ: %llu vs %llu)", (unsigned long long)s->da.n,
                        (unsigned long long)s->db.n);
            fputc('\n', out);
        }
        if (first != SIZE_MAX) {
            fputs("first divergent stage: ", out);
            cli_put_escaped(out, S[first].rel, strlen(S[first].rel));
            if (S[first].comparable)
                fprintf(out, " (cosine %s < %s)\n", num(b1, sizeof b1, S[first].m.cosine),
                        num(b2, sizeof b2, thr));
            else
                fputc('\n', out);
        } else {
            fprintf(out, "no stage below cosine %s\n", num(b1, sizeof b1, thr));
        }
        fprintf(out, "%zu stages compared, %zu only on one side\n%s\n", n_cmp, n_only,
                *different ? "different" : gates_given(o) ? "within thresholds" : "identical");
    }
    if (o->plot) {
        struct plot_pt *pt = calloc(n + 1, sizeof *pt);
        size_t m = 0;
        if (!pt) {
            ERR(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t k = 0; k < n; k++) {
            const struct stage *s = &S[k];
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
            q->bad = plot_bad(s->status);
        }
        rc = plot_write(o->plot, a, b, pt, m, e);
        free(pt);
        if (rc)
            goto out;
    }
    rc = 0;
out:
    for (size_t k = 0; S && k < n; k++)
        stage_release(&S[k]);
    free(S);
    dirlist_release(&La);
    dirlist_release(&Lb);
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
    if (detect(a, &ka, e) || detect(b, &kb, e))
        return -1;
    if (ka == K_DUMPDIR || kb == K_DUMPDIR) {
        if (ka != kb)
            return ERR(e, ERR_USAGE, "cannot compare %s '%s' with %s '%s'", kind_names[ka], a,
                       kind_names[kb], b);
        rc = dump_dirs(o, a, b, out, &different, e);
        return rc ? -1 : different;
    }
    if (ka != K_MODEL && kb != K_MODEL) {
        rc = dump_pair(o, a, ka, b, kb, out, &different, e);
        return rc ? -1 : different;
    }
    if (ka != kb)
        return ERR(e, ERR_USAGE, "cannot compare %s '%s' with %s '%s'", kind_names[ka], a,
                   kind_names[kb], b);
    /* thresholds and the picture are about values: they imply --values */
    if (gates_given(o) || o->plot)
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
    if (side_open(&A, a, e) || side_open(&B, b, e))
        goto out;
    if (pairs_build(&A, &B, have_re ? &re : NULL, &P, e))
        goto out;
    if (!o->values) {
        if (structural(o, &A, &B, &P, out, &different, e))
            goto out;
    } else {
        if (values_compute(o, &A, &B, &P, e))
            goto out;
        if (values_report(o, &A, &B, &P, out, &different, e))
            goto out;
        if (o->plot && values_plot(o, &A, &B, &P, e))
            goto out;
    }
    rc = different;
out:
    pairs_release(&P);
    model_close(&A.m);
    model_close(&B.m);
    if (have_re)
        regfree(&re);
    return rc;
}
