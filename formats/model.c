/*
 * model.c - the format-independent half of the model view: lifecycle, the arena,
 * lookups and the tensor checks every reader shares.  It includes no reader: opening
 * by content (model_open) sits above the readers, in open.c.
 */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/rd.h"
#include "../common/sz.h"
#include "../common/banned.h"

struct model_arena_blk {
    struct model_arena_blk *next;
    size_t used, cap;
    max_align_t data[];
};

#define ARENA_BLK (64 * 1024)

int model__init(struct model *m, enum model_format f, const char *path, struct err *e)
{
    memset(m, 0, sizeof *m);
    m->format = f;
    m->apr_footer_crc_ok = -1;
    m->path = strdup(path ? path : "<memory>");
    if (!m->path)
        return ERR(e, ERR_NOMEM, "out of memory");
    return 0;
}

int model__init_file(struct model *m, enum model_format f, const char *path, const void *buf,
                     size_t n, struct err *e)
{
    if (model__init(m, f, path, e))
        goto fail;
    m->files = calloc(1, sizeof *m->files);
    if (!m->files) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    m->n_files = 1;
    if (buf ? mfile_wrap(&m->files[0], buf, n, path, e) : mfile_open(&m->files[0], path, e))
        goto fail;
    return 0;
fail:
    model_close(m);
    return -1;
}

void *model__alloc(struct model *m, size_t n, struct err *e)
{
    struct model_arena_blk *b = m->arena;
    size_t need = (n + 15) & ~(size_t)15;

    if (n > SIZE_MAX / 2) {
        ERR(e, ERR_NOMEM, "allocation of %zu bytes refused", n);
        return NULL;
    }
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLK ? need : ARENA_BLK;
        b = malloc(sizeof *b + cap);
        if (!b) {
            ERR(e, ERR_NOMEM, "out of memory (%zu bytes)", n);
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        b->next = m->arena;
        m->arena = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    return p;
}

int model__strdup(struct model *m, const char *p, size_t n, struct slice *out, struct err *e)
{
    char *q = model__alloc(m, n + 1, e);
    if (!q)
        return -1;
    if (n)
        memcpy(q, p, n);
    q[n] = 0;
    out->p = q;
    out->n = n;
    return 0;
}

void model__note(struct model *m, const char *fmt, ...)
{
    struct model_note *nn;
    va_list ap;

    if (m->n_notes >= 64)
        return;
    nn = realloc(m->notes, (m->n_notes + 1) * sizeof *nn);
    if (!nn)
        return;
    m->notes = nn;
    va_start(ap, fmt);
    vsnprintf(nn[m->n_notes].msg, sizeof nn[m->n_notes].msg, fmt, ap);
    va_end(ap);
    m->n_notes++;
}

static void free_kvs(struct model_kv *kv, uint64_t n);

void model__val_free(struct model_val *v)
{
    if (v->type == MV_ARR) {
        free(v->v.arr.strs);
        if (v->v.arr.items) {
            for (uint64_t i = 0; i < v->v.arr.n; i++)
                model__val_free(&v->v.arr.items[i]);
            free(v->v.arr.items);
        }
    } else if (v->type == MV_OBJ) {
        free_kvs(v->v.obj.kv, v->v.obj.n);
    }
}

static void free_kvs(struct model_kv *kv, uint64_t n)
{
    for (uint64_t i = 0; kv && i < n; i++)
        model__val_free(&kv[i].val);
    free(kv);
}

void model_close(struct model *m)
{
    struct model_arena_blk *b, *next;

    if (!m)
        return;
    free_kvs(m->kv, m->n_kv);
    free(m->tensors);
    for (uint32_t i = 0; m->files && i < m->n_files; i++)
        mfile_close(&m->files[i]);
    free(m->files);
    free(m->notes);
    for (b = m->arena; b; b = next) {
        next = b->next;
        free(b);
    }
    free(m->path);
    memset(m, 0, sizeof *m);
}

const char *model_format_name(enum model_format f)
{
    switch (f) {
    case MODEL_FMT_GGUF:        return "GGUF";
    case MODEL_FMT_SAFETENSORS: return "SafeTensors";
    case MODEL_FMT_APR:         return "APR";
    }
    return "?";
}

const char *model_format_label(const struct model *m, char *buf, size_t n)
{
    if (m->format == MODEL_FMT_SAFETENSORS)
        snprintf(buf, n, "%s", model_format_name(m->format));
    else
        snprintf(buf, n, "%s v%d", model_format_name(m->format), m->version);
    return buf;
}

const struct model_kv *model_kv_find(const struct model *m, const char *key)
{
    struct slice k = slice_from_cstr(key);
    for (uint64_t i = 0; i < m->n_kv; i++)
        if (slice_eq(m->kv[i].key, k))
            return &m->kv[i];
    return NULL;
}

const struct model_tensor *model_tensor_find_slice(const struct model *m, struct slice name)
{
    for (uint64_t i = 0; i < m->n_tensors; i++)
        if (slice_eq(m->tensors[i].name, name))
            return &m->tensors[i];
    return NULL;
}

const struct model_tensor *model_tensor_find(const struct model *m, const char *name)
{
    return model_tensor_find_slice(m, slice_from_cstr(name));
}

int model_kv_get_u64(const struct model *m, const char *key, uint64_t *v)
{
    const struct model_kv *kv = model_kv_find(m, key);
    if (!kv)
        return -1;
    switch (kv->val.type) {
    case MV_U8: case MV_U16: case MV_U32: case MV_U64:
        *v = kv->val.v.u;
        return 0;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64:
        if (kv->val.v.i < 0)
            return -1;
        *v = (uint64_t)kv->val.v.i;
        return 0;
    default:
        return -1;
    }
}

int model_kv_get_f64(const struct model *m, const char *key, double *v)
{
    const struct model_kv *kv = model_kv_find(m, key);
    if (!kv)
        return -1;
    switch (kv->val.type) {
    case MV_F32: case MV_F64: *v = kv->val.v.f; return 0;
    case MV_U8: case MV_U16: case MV_U32: case MV_U64: *v = (double)kv->val.v.u; return 0;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64: *v = (double)kv->val.v.i; return 0;
    default: return -1;
    }
}

int model_kv_get_str(const struct model *m, const char *key, struct slice *v)
{
    const struct model_kv *kv = model_kv_find(m, key);
    if (!kv || kv->val.type != MV_STR)
        return -1;
    *v = kv->val.v.s;
    return 0;
}

size_t model_vtype_size(enum model_vtype t)
{
    switch (t) {
    case MV_U8: case MV_I8: case MV_BOOL: return 1;
    case MV_U16: case MV_I16: return 2;
    case MV_U32: case MV_I32: case MV_F32: return 4;
    case MV_U64: case MV_I64: case MV_F64: return 8;
    default: return 0;
    }
}

const char *model_vtype_name(enum model_vtype t)
{
    static const char *const names[MV_COUNT] = {
        "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING",
        "ARRAY", "UINT64", "INT64", "FLOAT64", "NULL", "OBJECT",
    };
    return (unsigned)t < MV_COUNT ? names[t] : "?";
}

uint64_t model_arr_get_u64(const struct model_val *a, uint64_t i)
{
    const uint8_t *p = a->v.arr.raw + i * model_vtype_size(a->v.arr.elem);
    switch (a->v.arr.elem) {
    case MV_U8: case MV_BOOL: return p[0];
    case MV_U16: return le16(p);
    case MV_U32: return le32(p);
    case MV_U64: return le64(p);
    default: return (uint64_t)model_arr_get_i64(a, i);
    }
}

int64_t model_arr_get_i64(const struct model_val *a, uint64_t i)
{
    const uint8_t *p = a->v.arr.raw + i * model_vtype_size(a->v.arr.elem);
    switch (a->v.arr.elem) {
    case MV_I8: return (int8_t)p[0];
    case MV_I16: return (int16_t)le16(p);
    case MV_I32: return (int32_t)le32(p);
    case MV_I64: return (int64_t)le64(p);
    case MV_U8: case MV_BOOL: return p[0];
    case MV_U16: return le16(p);
    case MV_U32: return le32(p);
    case MV_U64: return (int64_t)le64(p);
    case MV_F32: return (int64_t)lef32(p);
    case MV_F64: return (int64_t)lef64(p);
    default: return 0;
    }
}

double model_arr_get_f64(const struct model_val *a, uint64_t i)
{
    const uint8_t *p = a->v.arr.raw + i * model_vtype_size(a->v.arr.elem);
    switch (a->v.arr.elem) {
    case MV_F32: return lef32(p);
    case MV_F64: return lef64(p);
    case MV_U8: case MV_BOOL: case MV_U16: case MV_U32: case MV_U64:
        return (double)model_arr_get_u64(a, i);
    default: return (double)model_arr_get_i64(a, i);
    }
}

/* ---- tensor checks shared by all readers */

struct span { uint64_t off, end; uint32_t file; uint64_t idx; };

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int name_cmp(const void *a, const void *b, void *ctx)
{
    const struct model *m = ctx;
    uint64_t i = *(const uint64_t *)a, j = *(const uint64_t *)b;
    return slice_cmp(m->tensors[i].name, m->tensors[j].name);
}

int model__check_tensors(struct model *m, struct err *e)
{
    uint64_t n = m->n_tensors;
    struct span *sp = NULL;
    uint64_t *ord = NULL;
    int rc = -1;

    if (n == 0)
        return 0;
    sp = calloc(n, sizeof *sp);
    ord = calloc(n, sizeof *ord);
    if (!sp || !ord) {
        ERR(e, ERR_NOMEM, "%s: out of memory for %llu tensors", m->path, (unsigned long long)n);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        const struct model_tensor *t = &m->tensors[i];
        const struct mfile *f = &m->files[t->file];
        if (!sz_range_ok(t->off, t->size, f->size)) {
            ERR_OFF(e, ERR_FORMAT, t->off, "%s: tensor '%.*s': data [%llu, %llu) past end of file (%llu bytes)",
                    f->path, (int)t->name.n, t->name.p, (unsigned long long)t->off,
                    (unsigned long long)t->off + t->size, (unsigned long long)f->size);
            goto done;
        }
        sp[i] = (struct span){ t->off, t->off + t->size, t->file, i };
        ord[i] = i;
    }
    qsort_r(ord, n, sizeof *ord, name_cmp, m);
    for (uint64_t i = 1; i < n; i++)
        if (slice_eq(m->tensors[ord[i]].name, m->tensors[ord[i - 1]].name)) {
            const struct model_tensor *t = &m->tensors[ord[i]];
            ERR(e, ERR_FORMAT, "%s: duplicate tensor name '%.*s'", m->path, (int)t->name.n, t->name.p);
            goto done;
        }
    qsort(sp, n, sizeof *sp, span_cmp);
    /* Sorted by start: a tensor overlaps an earlier one iff it starts before the furthest
     * end seen so far in its file (zero-size tensors overlap nothing). */
    for (uint64_t i = 1, far = 0; i < n; i++) {
        if (sp[i].file != sp[i - 1].file)
            far = 0;
        if (sp[i - 1].end > sp[far].end || sp[far].file != sp[i].file)
            far = i - 1;
        if (sp[i].file == sp[far].file && sp[i].off < sp[far].end && sp[i].off < sp[i].end) {
            const struct model_tensor *a = &m->tensors[sp[far].idx], *b = &m->tensors[sp[i].idx];
            ERR_OFF(e, ERR_FORMAT, b->off, "%s: tensor '%.*s' overlaps tensor '%.*s'",
                    m->files[b->file].path, (int)b->name.n, b->name.p, (int)a->name.n, a->name.p);
            goto done;
        }
    }
    rc = 0;
done:
    free(sp);
    free(ord);
    return rc;
}
