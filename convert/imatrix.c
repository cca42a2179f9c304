/*
 * imatrix.c - llama.cpp importance-matrix files; see imatrix.h for both layouts.
 * Facts (layouts, the division by ncall or counts, the checks) come from llama.cpp's
 * examples/imatrix and examples/quantize at c392e509 (legacy) and tools/quantize of
 * later versions (GGUF form); the code is ours.
 */
#include "imatrix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/mfile.h"
#include "../common/rd.h"
#include "../formats/dtype.h"
#include "../formats/gguf/gguf.h"
#include "../formats/model.h"
#include "../common/banned.h"

void imatrix_free(struct imatrix *im)
{
    for (size_t i = 0; i < im->n; i++) {
        free(im->e[i].name);
        free(im->e[i].v);
    }
    free(im->e);
    free(im->dataset);
    free(im->path);
    memset(im, 0, sizeof *im);
}

const struct imatrix_entry *imatrix_find(const struct imatrix *im, const char *name)
{
    for (size_t i = 0; i < im->n; i++)
        if (strcmp(im->e[i].name, name) == 0)
            return &im->e[i];
    return NULL;
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* A printable copy of an entry name for messages (control bytes and quotes escaped). */
static const char *shown(const char *p, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7F || c == '\'' || c == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o < cap ? o : cap - 1] = 0;
    return buf;
}

/* Refuse a second entry of the same name, and non-finite importance values. */
static int check_entry(const struct imatrix *im, const char *file, size_t idx, uint64_t off,
                       struct err *e)
{
    const struct imatrix_entry *en = &im->e[idx];
    char nb[160];

    for (size_t i = 0; i < idx; i++)
        if (strcmp(im->e[i].name, en->name) == 0)
            return ERR_OFF(e, ERR_FORMAT, off, "%s: entry %zu ('%s'): the name appears twice",
                           file, idx + 1, shown(en->name, strlen(en->name), nb, sizeof nb));
    for (uint64_t j = 0; j < en->n; j++)
        if (!isfinite(en->v[j]))
            return ERR_OFF(e, ERR_FORMAT, off, "%s: entry %zu ('%s'): value %llu is not finite "
                           "(%g)", file, idx + 1, shown(en->name, strlen(en->name), nb, sizeof nb),
                           (unsigned long long)j, (double)en->v[j]);
    return 0;
}

static int grow_entries(struct imatrix *im, size_t *cap, struct err *e)
{
    if (im->n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    struct imatrix_entry *ne = realloc(im->e, nc * sizeof *ne);
    if (!ne)
        return ERR(e, ERR_NOMEM, "out of memory");
    im->e = ne;
    *cap = nc;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Legacy .dat
 */
static int load_legacy(struct imatrix *im, const uint8_t *buf, size_t size, const char *file,
                       struct err *e)
{
    struct rd r;
    int32_t n_entries;
    size_t cap = 0;
    char what[64];

    rd_init(&r, buf, size, file);
    if (rd_i32(&r, &n_entries, "entry count", e))
        return -1;
    if (n_entries < 1)
        return ERR_OFF(e, ERR_FORMAT, 0, "%s: no entries (entry count %d): not an importance "
                       "matrix", file, (int)n_entries);
    /* every entry takes at least 16 bytes: refuse a count the file cannot hold */
    if ((uint64_t)n_entries > rd_left(&r) / 16)
        return ERR_OFF(e, ERR_FORMAT, 0, "%s: entry count %d does not fit in %llu bytes", file,
                       (int)n_entries, (unsigned long long)size);
    for (int32_t i = 0; i < n_entries; i++) {
        uint64_t at = rd_tell(&r);
        int32_t len, ncall, nval;
        const uint8_t *p;
        char nb[160];

        snprintf(what, sizeof what, "entry %d name length", (int)i + 1);
        if (rd_i32(&r, &len, what, e))
            return -1;
        if (len < 0 || len > IMATRIX_NAME_MAX)
            return ERR_OFF(e, ERR_FORMAT, at, "%s: entry %d: name length %d is not in [0, %d]",
                           file, (int)i + 1, (int)len, IMATRIX_NAME_MAX);
        snprintf(what, sizeof what, "entry %d name", (int)i + 1);
        if (rd_bytes(&r, (uint64_t)len, &p, what, e))
            return -1;
        if (memchr(p, 0, (size_t)len))
            return ERR_OFF(e, ERR_FORMAT, at + 4, "%s: entry %d: the name holds a NUL byte",
                           file, (int)i + 1);
        shown((const char *)p, (size_t)len, nb, sizeof nb);
        snprintf(what, sizeof what, "entry %d ncall", (int)i + 1);
        if (rd_i32(&r, &ncall, what, e))
            return -1;
        snprintf(what, sizeof what, "entry %d value count", (int)i + 1);
        if (rd_i32(&r, &nval, what, e))
            return -1;
        if (nval < 1)
            return ERR_OFF(e, ERR_FORMAT, rd_tell(&r) - 4, "%s: entry %d ('%s'): value count %d "
                           "(must be at least 1)", file, (int)i + 1, nb, (int)nval);
        if ((uint64_t)nval > rd_left(&r) / 4)
            return ERR_OFF(e, ERR_FORMAT, rd_tell(&r) - 4, "%s: entry %d ('%s'): %d values "
                           "need %llu bytes, %llu left", file, (int)i + 1, nb, (int)nval,
                           (unsigned long long)nval * 4, (unsigned long long)rd_left(&r));
        if (grow_entries(im, &cap, e))
            return -1;
        struct imatrix_entry *en = &im->e[im->n];
        memset(en, 0, sizeof *en);
        en->name = dup_n((const char *)p, (size_t)len);
        en->v = malloc((size_t)nval * sizeof *en->v);
        if (!en->name || !en->v) {
            free(en->name);
            free(en->v);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        im->n++;
        en->n = (uint64_t)nval;
        en->n_mat = 1;
        en->ncall = ncall;
        if (rd_bytes(&r, (uint64_t)nval * 4, &p, "values", e))
            return -1;
        for (int32_t j = 0; j < nval; j++) {
            float v = lef32(p + 4 * (size_t)j);
            en->v[j] = ncall > 0 ? v / (float)ncall : v;      /* llama-quantize: v /= ncall */
        }
        if (check_entry(im, file, im->n - 1, at, e))
            return -1;
    }
    im->chunks = -1;
    if (rd_left(&r) > 0) {                 /* the trailer of newer llama-imatrix versions */
        int32_t chunks, dlen;
        const uint8_t *p;
        uint64_t at = rd_tell(&r);
        if (rd_i32(&r, &chunks, "chunk count (trailer)", e) ||
            rd_i32(&r, &dlen, "dataset name length (trailer)", e))
            return -1;
        if (dlen < 0 || dlen > 65536)
            return ERR_OFF(e, ERR_FORMAT, at + 4, "%s: dataset name length %d is not in "
                           "[0, 65536]", file, (int)dlen);
        if (rd_bytes(&r, (uint64_t)dlen, &p, "dataset name (trailer)", e))
            return -1;
        if (rd_left(&r) > 0)
            return ERR_OFF(e, ERR_FORMAT, rd_tell(&r), "%s: %llu bytes after the dataset name",
                           file, (unsigned long long)rd_left(&r));
        im->chunks = chunks;
        if (dlen > 0 && !(im->dataset = dup_n((const char *)p, (size_t)dlen)))
            return ERR(e, ERR_NOMEM, "out of memory");
    }
    im->form = IMATRIX_LEGACY;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * GGUF
 */
static int ends_with(struct slice s, const char *suf, size_t *stem)
{
    size_t b = strlen(suf);
    if (s.n < b || memcmp(s.p + s.n - b, suf, b) != 0)
        return 0;
    *stem = s.n - b;
    return 1;
}

static int load_gguf(struct imatrix *im, const uint8_t *buf, size_t size, const char *file,
                     struct err *e)
{
    struct model m;
    const struct model_kv *ds;
    uint64_t v;
    size_t cap = 0;
    int rc = -1;

    if (gguf_open_mem(&m, buf, size, file, e))
        return -1;
    ds = model_kv_find(&m, "imatrix.datasets");
    if (!ds || ds->val.type != MV_ARR || ds->val.v.arr.elem != MV_STR ||
        model_kv_get_u64(&m, "imatrix.chunk_count", &v) ||
        !model_kv_find(&m, "imatrix.chunk_size")) {
        ERR(e, ERR_FORMAT, "%s: GGUF without the importance-matrix metadata "
            "(imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size): not an imatrix file",
            file);
        goto out;
    }
    im->chunks = v <= INT32_MAX ? (int64_t)v : -1;
    if (ds->val.v.arr.n > 0) {
        struct slice s = ds->val.v.arr.strs[0];
        if (!(im->dataset = dup_n(s.p, s.n))) {
            ERR(e, ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    for (uint64_t i = 0; i < m.n_tensors; i++) {
        const struct model_tensor *s = &m.tensors[i], *c = NULL;
        size_t stem, cstem;
        char nb[160];

        if (!ends_with(s->name, ".in_sum2", &stem))
            continue;
        shown(s->name.p, stem, nb, sizeof nb);
        for (uint64_t k = 0; k < m.n_tensors; k++)
            if (ends_with(m.tensors[k].name, ".counts", &cstem) && cstem == stem &&
                memcmp(m.tensors[k].name.p, s->name.p, stem) == 0)
                c = &m.tensors[k];
        if (!c) {
            ERR_OFF(e, ERR_FORMAT, s->off, "%s: '%s.in_sum2' has no '%s.counts'", file, nb, nb);
            goto out;
        }
        if (s->dtype != DT_F32 || c->dtype != DT_F32) {
            ERR_OFF(e, ERR_FORMAT, s->off, "%s: '%s': in_sum2 and counts must be F32 (%s, %s)",
                    file, nb, dtype_name(s->dtype), dtype_name(c->dtype));
            goto out;
        }
        if (c->n_elems < 1 || s->n_elems < 1 || s->n_elems % c->n_elems != 0 || stem == 0 ||
            stem > IMATRIX_NAME_MAX) {
            ERR_OFF(e, ERR_FORMAT, s->off, "%s: '%s': %lld sums do not split into %lld "
                    "matrices", file, nb, (long long)s->n_elems, (long long)c->n_elems);
            goto out;
        }
        if (memchr(s->name.p, 0, stem)) {
            ERR_OFF(e, ERR_FORMAT, s->off, "%s: '%s': the name holds a NUL byte", file, nb);
            goto out;
        }
        if (grow_entries(im, &cap, e))
            goto out;
        struct imatrix_entry *en = &im->e[im->n];
        memset(en, 0, sizeof *en);
        en->name = dup_n(s->name.p, stem);
        en->v = malloc((size_t)s->n_elems * sizeof *en->v);
        if (!en->name || !en->v) {
            free(en->name);
            free(en->v);
            ERR(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        im->n++;
        en->n = (uint64_t)s->n_elems;
        en->n_mat = (uint64_t)c->n_elems;
        uint64_t ne0 = en->n / en->n_mat;
        for (uint64_t j = 0; j < en->n_mat; j++) {
            float cnt = lef32(c->data + 4 * j);
            if (cnt > (float)en->ncall)        /* a hostile count may not fit int64 */
                en->ncall = cnt < 9.0e18f ? (int64_t)cnt : INT64_MAX;
            for (uint64_t k = 0; k < ne0; k++) {
                float sum = lef32(s->data + 4 * (j * ne0 + k));
                en->v[j * ne0 + k] = cnt > 0.0f ? sum / cnt : 1.0f;
            }
        }
        if (check_entry(im, file, im->n - 1, s->off, e))
            goto out;
    }
    for (uint64_t k = 0; k < m.n_tensors; k++) {
        size_t cstem;
        if (ends_with(m.tensors[k].name, ".counts", &cstem)) {
            int found = 0;
            for (size_t i = 0; i < im->n && !found; i++)
                found = strlen(im->e[i].name) == cstem &&
                        memcmp(im->e[i].name, m.tensors[k].name.p, cstem) == 0;
            if (!found) {
                char nb[160];
                ERR_OFF(e, ERR_FORMAT, m.tensors[k].off, "%s: '%s.counts' has no '%s.in_sum2'",
                        file, shown(m.tensors[k].name.p, cstem, nb, sizeof nb), nb);
                goto out;
            }
        }
    }
    if (im->n == 0) {
        ERR(e, ERR_FORMAT, "%s: no importance data (no NAME.in_sum2 tensors)", file);
        goto out;
    }
    im->form = IMATRIX_GGUF;
    rc = 0;
out:
    model_close(&m);
    return rc;
}

int imatrix_load_mem(struct imatrix *im, const void *buf, size_t n, const char *name,
                     struct err *e)
{
    int rc;

    memset(im, 0, sizeof *im);
    im->chunks = -1;
    if (!(im->path = dup_n(name, strlen(name))))
        return ERR(e, ERR_NOMEM, "out of memory");
    if (n >= 4 && memcmp(buf, "GGUF", 4) == 0)
        rc = load_gguf(im, buf, n, name, e);
    else
        rc = load_legacy(im, buf, n, name, e);
    if (rc)
        imatrix_free(im);
    return rc;
}

int imatrix_load(struct imatrix *im, const char *path, struct err *e)
{
    struct mfile mf;
    int rc;

    memset(im, 0, sizeof *im);
    if (mfile_open(&mf, path, e))
        return -1;
    rc = imatrix_load_mem(im, mf.data, (size_t)mf.size, path, e);
    mfile_close(&mf);
    return rc;
}
