/*
 * pair.c - apr-diff: what a path is (model, APRT dump, f32 dump, dump directory), the two
 * sides of a model diff, and their tensors paired by canonical name (names_canonical:
 * GGUF, HF and APR spellings meet; unpaired ones are listed).
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
#include "../formats/apr/apr.h"
#include "../compare/compare.h"
#include "../common/banned.h"
const char *const diff_kind_names[] = { "model", "APRT dump", "f32 dump", "dump directory" };
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
int diff_detect(const char *path, enum kind *k, struct err *e)
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

static void side_meta(struct side *s)
{
    struct model_config c;

    model_config_peek(&s->m, &c);
    snprintf(s->arch, sizeof s->arch, "%s", c.arch);
    s->n_head = c.n_head;
    s->n_head_kv = c.n_head_kv;
}

/* 1 when tensor t of s is stored in GGUF's Q/K row order, 0 for HF's. */
int diff_side_gguf_layout(const struct side *s, const struct model_tensor *t)
{
    if (s->m.format == MODEL_FMT_GGUF)
        return 1;
    if (s->m.format == MODEL_FMT_SAFETENSORS)
        return 0;
    return names_is_gguf_style(t->name);
}

int diff_side_open(struct side *s, const char *path, struct err *e)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    if (model_open(&s->m, path, e))
        return -1;
    {   /* APR checksums must hold: a corrupt file is not the one that was written, which
         * is a difference (exit 1), not trouble */
        struct err ie = ERR_INIT;
        if (apr_check_integrity(&s->m, &ie)) {
            model_close(&s->m);
            return ERR(e, ERR_MISMATCH, "%s", ie.msg);
        }
    }
    side_meta(s);
    return 0;
}

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
        v[i].key = rc == -2 ? diff_dup_n(t->name.p, t->name.n, e) : diff_dup_n(buf, strlen(buf), e);
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
                char *r = diff_dup_n(v[k].name.p, v[k].name.n, e);
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

void diff_pairs_release(struct pairs *P)
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

const struct model_tensor *diff_pa(const struct side *A, const struct pair *p)
{
    return p->ia >= 0 ? &A->m.tensors[p->ia] : NULL;
}

const struct model_tensor *diff_pb(const struct side *B, const struct pair *p)
{
    return p->ib >= 0 ? &B->m.tensors[p->ib] : NULL;
}

/* Display name of a pair: A's spelling, else B's. */
struct slice diff_pname(const struct side *A, const struct side *B, const struct pair *p)
{
    return p->ia >= 0 ? A->m.tensors[p->ia].name : B->m.tensors[p->ib].name;
}

int diff_pair_cmp_name(const struct side *A, const struct side *B, const struct pair *x,
                         const struct pair *y)
{
    struct slice a = diff_pname(A, B, x), b = diff_pname(A, B, y);
    int c = diff_natcmp(a.p, a.n, b.p, b.n);
    return c ? c : strcmp(x->key, y->key);
}

const struct side *diff_g_sort_a, *diff_g_sort_b;   /* qsort has no context argument */

static int pair_qsort_name(const void *x, const void *y)
{
    return diff_pair_cmp_name(diff_g_sort_a, diff_g_sort_b, x, y);
}

/* Pair A's and B's tensors by key, keep those matching the filter, natural name order. */
int diff_pairs_build(const struct side *A, const struct side *B, const regex_t *re,
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
    diff_g_sort_a = A;
    diff_g_sort_b = B;
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
        diff_pairs_release(P);
    return rc;
}
