/*
 * gguf_write.c - the GGUF v3 writer (layout: see gguf_read.c and gguf.h).
 *
 * Two passes.  plan() checks the whole model against what GGUF and llama.cpp
 * accept and computes every tensor's byte size; nothing is written before it
 * succeeds.  emit() then streams the header, the KVs, the tensor infos and the
 * tensor data through a 64 KiB buffer (common/ofile.h); large tensor writes go
 * straight from the source mapping to write(2).  Offsets are the canonical running aligned sums, so
 * the output is byte-identical to what ggml and gguf-py write for the same content.
 */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_impl.h"
#include "../../common/ofile.h"
#include "../../common/rd.h"
#include "../../common/sz.h"
#include "../../common/banned.h"

#define OUT_BUF (64 * 1024)   /* the buffer, and the smallest piece gguf_out_copy copies */

/* What tensor_data producers write into (gguf.h); pos counts from the header. */
struct gguf_out {
    struct ofile f;
};

int gguf_out_write(struct gguf_out *o, const void *p, size_t n, struct err *e)
{
    return ofile_write(&o->f, p, n, e);
}

int gguf_out_copy(struct gguf_out *o, int fd, uint64_t off, const void *p, size_t n,
                  struct err *e)
{
    return ofile_copy(&o->f, fd, off, p, n, e);
}

static int out_u32(struct gguf_out *o, uint32_t v, struct err *e)
{
    uint8_t b[4];
    put_le32(b, v);
    return gguf_out_write(o, b, 4, e);
}

static int out_u64(struct gguf_out *o, uint64_t v, struct err *e)
{
    uint8_t b[8];
    put_le64(b, v);
    return gguf_out_write(o, b, 8, e);
}

static int out_str(struct gguf_out *o, struct slice s, struct err *e)
{
    return out_u64(o, s.n, e) || gguf_out_write(o, s.p, s.n, e);
}

static int out_pad(struct gguf_out *o, uint64_t align, struct err *e)
{
    static const uint8_t zero[256];
    uint64_t pad = (align - (o->f.pos & (align - 1))) & (align - 1);

    while (pad) {
        size_t k = pad < sizeof zero ? (size_t)pad : sizeof zero;
        if (gguf_out_write(o, zero, k, e))
            return -1;
        pad -= k;
    }
    return 0;
}

/* ---- pass 1: check and size everything */

struct plan {
    uint64_t  alignment;
    uint64_t *nbytes;     /* per tensor, owned */
};

/* 1 when a scalar integer fits its declared type (the model stores all of them wide). */
static int int_in_range(const struct model_val *v)
{
    switch (v->type) {
    case MV_U8:  return v->v.u <= UINT8_MAX;
    case MV_U16: return v->v.u <= UINT16_MAX;
    case MV_U32: return v->v.u <= UINT32_MAX;
    case MV_I8:  return v->v.i >= INT8_MIN && v->v.i <= INT8_MAX;
    case MV_I16: return v->v.i >= INT16_MIN && v->v.i <= INT16_MAX;
    case MV_I32: return v->v.i >= INT32_MIN && v->v.i <= INT32_MAX;
    default:     return 1;
    }
}

static int check_val(const char *path, const char *kq, const struct model_val *v, int depth,
                     struct err *e)
{
    if (v->type == MV_NULL || v->type == MV_OBJ)
        return ERR(e, ERR_UNSUPPORTED, "%s: key '%s': a %s value cannot be stored in GGUF",
                   path, kq, model_vtype_name(v->type));
    if ((unsigned)v->type >= MV_GGUF_COUNT)
        return ERR(e, ERR_INTERNAL, "%s: key '%s': invalid value type %d", path, kq, v->type);
    if (!int_in_range(v))
        return ERR(e, ERR_INTERNAL, "%s: key '%s': value out of range for %s", path, kq,
                   model_vtype_name(v->type));
    if (v->type == MV_STR && v->v.s.n > GGUF_STRING_MAX)
        return ERR(e, ERR_LIMIT, "%s: key '%s': string of %zu bytes over the GGUF limit", path,
                   kq, v->v.s.n);
    if (v->type != MV_ARR)
        return 0;
    if (depth >= GGUF_ARRAY_DEPTH_MAX)
        return ERR(e, ERR_LIMIT, "%s: key '%s': arrays nested deeper than %d", path, kq,
                   GGUF_ARRAY_DEPTH_MAX);
    switch (v->v.arr.elem) {
    case MV_NULL: case MV_OBJ:
        return ERR(e, ERR_UNSUPPORTED, "%s: key '%s': an array of %s cannot be stored in GGUF",
                   path, kq, v->v.arr.elem == MV_NULL ? "mixed or NULL values" : "OBJECT");
    case MV_STR:
        if (v->v.arr.n && !v->v.arr.strs)
            return ERR(e, ERR_INTERNAL, "%s: key '%s': string array without strings", path, kq);
        for (uint64_t i = 0; i < v->v.arr.n; i++)
            if (v->v.arr.strs[i].n > GGUF_STRING_MAX)
                return ERR(e, ERR_LIMIT, "%s: key '%s': string %llu over the GGUF limit", path,
                           kq, (unsigned long long)i);
        return 0;
    case MV_ARR:
        if (v->v.arr.n && !v->v.arr.items)
            return ERR(e, ERR_INTERNAL, "%s: key '%s': nested array without items", path, kq);
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            if (v->v.arr.items[i].type != MV_ARR)
                return ERR(e, ERR_INTERNAL, "%s: key '%s': item %llu of an array of arrays is "
                           "a %s", path, kq, (unsigned long long)i,
                           model_vtype_name(v->v.arr.items[i].type));
            if (check_val(path, kq, &v->v.arr.items[i], depth + 1, e))
                return -1;
        }
        return 0;
    default:
        if ((unsigned)v->v.arr.elem >= MV_GGUF_COUNT)
            return ERR(e, ERR_INTERNAL, "%s: key '%s': invalid element type %d", path, kq,
                       v->v.arr.elem);
        if (v->v.arr.n && !v->v.arr.raw)
            return ERR(e, ERR_INTERNAL, "%s: key '%s': array without data", path, kq);
        return 0;
    }
}

static int slice_idx_cmp(const void *a, const void *b)
{
    const struct slice *x = *(const struct slice *const *)a, *y = *(const struct slice *const *)b;
    int c = slice_cmp(*x, *y);
    return c ? c : (x > y) - (x < y);
}

/* The first name that occurs twice in n slices spaced stride bytes apart, or NULL. */
static const struct slice *dup_name(const void *first, uint64_t n, size_t stride, int *nomem)
{
    const struct slice **ord, *dup = NULL;

    *nomem = 0;
    if (n < 2)
        return NULL;
    ord = malloc(n * sizeof *ord);
    if (!ord) {
        *nomem = 1;
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++)
        ord[i] = (const struct slice *)(const void *)((const char *)first + i * stride);
    qsort(ord, n, sizeof *ord, slice_idx_cmp);
    for (uint64_t i = 1; i < n && !dup; i++)
        if (slice_eq(*ord[i], *ord[i - 1]))
            dup = ord[i];
    free(ord);
    return dup;
}

static int plan_kvs(const struct model *m, const char *path, struct plan *pl, struct err *e)
{
    char kq[GGUF_QUOTE_LEN];
    const struct slice *dup;
    int nomem;

    pl->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < m->n_kv; i++) {
        const struct model_kv *kv = &m->kv[i];
        gguf__quote(kv->key, kq, sizeof kq);
        if (kv->key.n == 0)
            return ERR(e, ERR_UNSUPPORTED, "%s: key %llu is empty", path, (unsigned long long)i);
        if (kv->key.n > GGUF_KEY_MAX)
            return ERR(e, ERR_LIMIT, "%s: key '%s' is %zu bytes, over the GGUF limit %u", path,
                       kq, kv->key.n, GGUF_KEY_MAX);
        if (check_val(path, kq, &kv->val, 1, e))
            return -1;
        if (slice_eq_cstr(kv->key, GGUF_KEY_ALIGNMENT)) {
            if (kv->val.type != MV_U32)
                return ERR(e, ERR_UNSUPPORTED, "%s: key '%s': type %s, expected UINT32", path, kq,
                           model_vtype_name(kv->val.type));
            if (kv->val.v.u == 0 || kv->val.v.u > UINT32_MAX ||
                (kv->val.v.u & (kv->val.v.u - 1)) != 0)
                return ERR(e, ERR_UNSUPPORTED, "%s: key '%s': %llu is not a power of two", path,
                           kq, (unsigned long long)kv->val.v.u);
            pl->alignment = kv->val.v.u;
        }
    }
    dup = dup_name(m->kv, m->n_kv, sizeof *m->kv, &nomem);
    if (nomem)
        return ERR(e, ERR_NOMEM, "%s: out of memory", path);
    if (dup)
        return ERR(e, ERR_UNSUPPORTED, "%s: duplicate key '%s'", path, gguf__quote(*dup, kq, sizeof kq));
    return 0;
}

static int plan_tensors(const struct model *m, const char *path, const struct gguf_write_opts *o,
                        struct plan *pl, struct err *e)
{
    char tq[GGUF_QUOTE_LEN];
    const struct slice *dup;
    int nomem;

    if (m->n_tensors) {
        pl->nbytes = calloc(m->n_tensors, sizeof *pl->nbytes);
        if (!pl->nbytes)
            return ERR(e, ERR_NOMEM, "%s: out of memory", path);
    }
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[i];
        const struct dtype_info *d = dtype_get(t->dtype);
        int64_t n = 1;
        struct err scratch = ERR_INIT;

        gguf__quote(t->name, tq, sizeof tq);
        if (t->name.n == 0)
            return ERR(e, ERR_UNSUPPORTED, "%s: tensor %llu has an empty name", path,
                       (unsigned long long)i);
        if (t->name.n > GGUF_NAME_MAX_GGML)
            return ERR(e, ERR_UNSUPPORTED, "%s: tensor '%s': name is %zu bytes; llama.cpp "
                       "accepts at most %d", path, tq, t->name.n, GGUF_NAME_MAX_GGML);
        if (!d || d->ggml_id < 0)
            return ERR(e, ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s has no GGUF type", path, tq,
                       dtype_name(t->dtype));
        if (t->n_dims < 0 || t->n_dims > GGUF_MAX_DIMS)
            return ERR(e, ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions, GGUF allows at "
                       "most %d", path, tq, t->n_dims, GGUF_MAX_DIMS);
        for (int k = 0; k < t->n_dims; k++)
            if (sz_mul_i64(n, t->shape[k], &n))
                return ERR(e, ERR_UNSUPPORTED, "%s: tensor '%s': bad shape (dimension %d is "
                           "%lld)", path, tq, k, (long long)t->shape[k]);
        if (n != t->n_elems)
            return ERR(e, ERR_INTERNAL, "%s: tensor '%s': n_elems %lld differs from its shape "
                       "(%lld)", path, tq, (long long)t->n_elems, (long long)n);
        if (!dtype_row_ok(t->dtype, t->n_dims ? t->shape[t->n_dims - 1] : 1))
            return ERR(e, ERR_UNSUPPORTED, "%s: tensor '%s': rows of %lld elements are not "
                       "whole %s blocks", path, tq,
                       (long long)(t->n_dims ? t->shape[t->n_dims - 1] : 1), d->name);
        if (dtype_nbytes(t->dtype, n, &pl->nbytes[i], &scratch))
            return ERR(e, ERR_UNSUPPORTED, "%s: tensor '%s': %s", path, tq, scratch.msg);
        if (!(o && o->tensor_data)) {
            if (pl->nbytes[i] != t->size)
                return ERR(e, ERR_INTERNAL, "%s: tensor '%s': size %llu, expected %llu for %s "
                           "%lld elements", path, tq, (unsigned long long)t->size,
                           (unsigned long long)pl->nbytes[i], d->name, (long long)n);
            if (t->size && !t->data)
                return ERR(e, ERR_INTERNAL, "%s: tensor '%s': no data", path, tq);
        }
    }
    dup = dup_name(m->tensors, m->n_tensors, sizeof *m->tensors, &nomem);
    if (nomem)
        return ERR(e, ERR_NOMEM, "%s: out of memory", path);
    if (dup)
        return ERR(e, ERR_UNSUPPORTED, "%s: duplicate tensor name '%s'", path,
                   gguf__quote(*dup, tq, sizeof tq));
    return 0;
}

static int plan(const struct model *m, const char *path, const struct gguf_write_opts *o,
                struct plan *pl, struct err *e)
{
    memset(pl, 0, sizeof *pl);
    return plan_kvs(m, path, pl, e) || plan_tensors(m, path, o, pl, e) ? -1 : 0;
}

/* ---- pass 2: stream */

static int emit_arr(struct gguf_out *out, const struct model_val *v, struct err *e)
{
    enum model_vtype et = v->v.arr.elem;
    uint64_t n = v->v.arr.n;

    if (out_u32(out, (uint32_t)et, e) || out_u64(out, n, e))
        return -1;
    if (et == MV_STR) {
        for (uint64_t i = 0; i < n; i++)
            if (out_str(out, v->v.arr.strs[i], e))
                return -1;
        return 0;
    }
    if (et == MV_ARR) {
        for (uint64_t i = 0; i < n; i++)
            if (emit_arr(out, &v->v.arr.items[i], e))
                return -1;
        return 0;
    }
    if (et == MV_BOOL) {              /* strict write: 0/1 only */
        for (uint64_t i = 0; i < n; i++) {
            uint8_t b = v->v.arr.raw[i] != 0;
            if (gguf_out_write(out, &b, 1, e))
                return -1;
        }
        return 0;
    }
    /* Fixed-size elements are stored packed little-endian already (model.h). */
    return n ? gguf_out_write(out, v->v.arr.raw, (size_t)(n * model_vtype_size(et)), e) : 0;
}

static int emit_val(struct gguf_out *out, const struct model_val *v, struct err *e)
{
    uint8_t b[2];
    uint64_t bits;
    float f;
    uint32_t u;

    switch (v->type) {
    case MV_U8: case MV_I8:   b[0] = (uint8_t)v->v.u; return gguf_out_write(out, b, 1, e);
    case MV_BOOL:             b[0] = v->v.u != 0;     return gguf_out_write(out, b, 1, e);
    case MV_U16: case MV_I16: put_le16(b, (uint16_t)v->v.u); return gguf_out_write(out, b, 2, e);
    case MV_U32: case MV_I32: return out_u32(out, (uint32_t)v->v.u, e);
    case MV_U64: case MV_I64: return out_u64(out, v->v.u, e);
    case MV_F32:
        f = (float)v->v.f;    /* exact: F32 values are stored widened */
        memcpy(&u, &f, 4);
        return out_u32(out, u, e);
    case MV_F64:
        memcpy(&bits, &v->v.f, 8);
        return out_u64(out, bits, e);
    case MV_STR:              return out_str(out, v->v.s, e);
    case MV_ARR:              return emit_arr(out, v, e);
    default:                  return ERR(e, ERR_INTERNAL, "unchecked value type %d", v->type);
    }
}

static int emit(const struct model *m, struct gguf_out *out, const struct plan *pl,
                const struct gguf_write_opts *o, struct err *e)
{
    uint64_t rel = 0;

    /* header */
    if (gguf_out_write(out, GGUF_MAGIC, 4, e) || out_u32(out, 3, e) ||
        out_u64(out, m->n_tensors, e) || out_u64(out, m->n_kv, e))
        return -1;
    /* metadata */
    for (uint64_t i = 0; i < m->n_kv; i++) {
        const struct model_kv *kv = &m->kv[i];
        if (out_str(out, kv->key, e) || out_u32(out, (uint32_t)kv->val.type, e) ||
            emit_val(out, &kv->val, e))
            return -1;
    }
    /* tensor infos: ne[] is the shape reversed (fastest first) */
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[i];
        uint64_t padded;
        if (out_str(out, t->name, e) || out_u32(out, (uint32_t)t->n_dims, e))
            return -1;
        for (int k = t->n_dims - 1; k >= 0; k--)
            if (out_u64(out, (uint64_t)t->shape[k], e))
                return -1;
        if (out_u32(out, (uint32_t)dtype_get(t->dtype)->ggml_id, e) || out_u64(out, rel, e))
            return -1;
        if (sz_align(pl->nbytes[i], pl->alignment, &padded) || sz_add(rel, padded, &rel))
            return ERR(e, ERR_LIMIT, "%s: data section size overflows", out->f.final);
    }
    if ((m->n_tensors || (o && o->pad_empty)) && out_pad(out, pl->alignment, e))
        return -1;
    /* data, each tensor padded (the last one too) */
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[i];
        uint64_t start = out->f.pos;
        if (o && o->tensor_data) {
            if (o->tensor_data(o->ctx, m, i, out, e))
                return -1;
            if (out->f.pos - start != pl->nbytes[i]) {
                char tq[GGUF_QUOTE_LEN];
                return ERR(e, ERR_INTERNAL, "%s: tensor '%s': producer wrote %llu bytes, "
                           "expected %llu", out->f.final, gguf__quote(t->name, tq, sizeof tq),
                           (unsigned long long)(out->f.pos - start),
                           (unsigned long long)pl->nbytes[i]);
            }
        } else {
            /* Feed big tensors in 1 GiB pieces (write(2) caps one call near 2 GiB). */
            const uint8_t *p = t->data;
            uint64_t left = pl->nbytes[i];
            while (left) {
                size_t k = left > (1u << 30) ? (size_t)1 << 30 : (size_t)left;
                if (gguf_out_write(out, p, k, e))
                    return -1;
                p += k;
                left -= k;
            }
        }
        if (out_pad(out, pl->alignment, e))
            return -1;
        ofile_kick(&out->f);   /* start writeback as we go: the final fsync is then short */
    }
    return ofile_flush(&out->f, e);
}

/* Emit into out, opened or attached: the 64 KiB buffer, copies of 64 KiB and up. */
static int write_out(const struct model *m, struct gguf_out *out, const struct gguf_write_opts *o,
                     const struct plan *pl, struct err *e)
{
    out->f.copy_min = OUT_BUF;
    return ofile_buffer(&out->f, OUT_BUF, e) || emit(m, out, pl, o, e) ? -1 : 0;
}

int gguf_write_fd(const struct model *m, int fd, const char *name,
                  const struct gguf_write_opts *o, struct err *e)
{
    struct gguf_out out = { OFILE_INIT };
    struct plan pl;
    int rc;

    if (!name)
        name = "<fd>";
    rc = plan(m, name, o, &pl, e);
    if (rc == 0)
        rc = ofile_attach(&out.f, fd, name, e) || write_out(m, &out, o, &pl, e) ? -1 : 0;
    ofile_abort(&out.f);
    free(pl.nbytes);
    return rc;
}

/* Synced before the rename, like apr_write and st_write: a crash leaves the old file or
 * the whole new one, never a renamed file whose blocks never reached the disk. */
int gguf_write(const struct model *m, const char *path, const struct gguf_write_opts *o,
               struct err *e)
{
    struct gguf_out out = { OFILE_INIT };
    struct plan pl;
    int rc = -1;

    if (plan(m, path, o, &pl, e) == 0 && ofile_open(&out.f, path, 0, e) == 0 &&
        write_out(m, &out, o, &pl, e) == 0 && ofile_commit(&out.f, e) == 0)
        rc = 0;
    ofile_abort(&out.f);
    free(pl.nbytes);
    return rc;
}

/* ---- split sets (llama-gguf-split --split-max-size) */

struct split_shim {
    const struct gguf_write_opts *o;
    const struct model           *m;
    uint64_t                      base;   /* index in m of the part's first tensor */
};

/* The caller's producer sees the whole model and its own tensor index. */
static int split_data(void *ctx, const struct model *part, uint64_t i, struct gguf_out *out,
                      struct err *e)
{
    const struct split_shim *s = ctx;
    (void)part;
    return s->o->tensor_data(s->o->ctx, s->m, s->base + i, out, e);
}

static int is_split_key(struct slice k)
{
    return slice_eq_cstr(k, "split.no") || slice_eq_cstr(k, "split.count") ||
           slice_eq_cstr(k, "split.tensors.count");
}

/* The name of the set: path without ".gguf" and without a "-00001-of-NNNNN" part. */
static size_t split_prefix_len(const char *path)
{
    size_t n = strlen(path);
    static const char suf[] = "-00001-of-00000";

    if (n > 5 && strcmp(path + n - 5, ".gguf") == 0)
        n -= 5;
    if (n > sizeof suf - 1) {
        const char *s = path + n - (sizeof suf - 1);
        int ok = memcmp(s, "-00001-of-", 10) == 0;
        for (int i = 10; ok && i < 15; i++)
            ok = s[i] >= '0' && s[i] <= '9';
        if (ok)
            n -= sizeof suf - 1;
    }
    return n;
}

int gguf_split_path(const char *path, uint32_t no, uint32_t count, char *buf, size_t cap)
{
    size_t plen = split_prefix_len(path);
    int k = snprintf(buf, cap, "%.*s-%05u-of-%05u.gguf", (int)plen, path, (unsigned)no,
                     (unsigned)count);
    return k < 0 || (size_t)k >= cap ? -1 : 0;
}

int gguf_write_split(const struct model *m, const char *path, uint64_t max_bytes,
                     const struct gguf_write_opts *o, uint32_t *n_parts, struct err *e)
{
    struct plan pl = { 0, NULL };
    struct gguf_out *outs = NULL;
    struct model_kv *kv = NULL;
    uint64_t *first = NULL;   /* first tensor of each part; first[n] = m->n_tensors */
    uint64_t cur = 0, n = 0;
    size_t plen = split_prefix_len(path), cap = plen + 32;
    char *pp = malloc(cap);
    int rc = -1;

    if (!pp)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (max_bytes == 0) {
        ERR(e, ERR_USAGE, "%s: a split size of 0 bytes", path);
        goto done;
    }
    if (plan(m, path, o, &pl, e))
        goto done;
    first = malloc((size_t)(m->n_tensors + 2) * sizeof *first);
    kv = malloc((size_t)(m->n_kv + 3) * sizeof *kv);
    if (!first || !kv) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    /* Parts: tensors in order, a new part when the next one would pass max_bytes (and the
     * part already holds one: a tensor larger than max_bytes gets a part of its own). */
    first[n++] = 0;
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        uint64_t padded;
        if (sz_align(pl.nbytes[i], pl.alignment, &padded))
            padded = UINT64_MAX;
        if (cur > 0 && (padded > max_bytes || cur > max_bytes - padded)) {
            first[n++] = i;
            cur = 0;
        }
        cur = padded > UINT64_MAX - cur ? UINT64_MAX : cur + padded;
    }
    first[n] = m->n_tensors;
    if (n > 65535) {
        ERR(e, ERR_LIMIT, "%s: %llu parts (split.count is a UINT16: at most 65535)", path,
            (unsigned long long)n);
        goto done;
    }
    outs = calloc((size_t)n, sizeof *outs);
    if (!outs) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t p = 0; p < n; p++)
        outs[p].f = (struct ofile)OFILE_INIT;
    for (uint64_t p = 0; p < n; p++) {
        struct model part = *m;   /* a shallow view: never closed */
        struct split_shim shim = { o, m, first[p] };
        struct gguf_write_opts po = GGUF_WRITE_OPTS_INIT;
        struct plan ppl = { 0, NULL };
        uint64_t nk = 0;
        int bad;

        /* The model's keys in the first part only, then the three split keys, with
         * llama-gguf-split's types (UINT16, UINT16, INT32). */
        for (uint64_t i = 0; p == 0 && i < m->n_kv; i++)
            if (!is_split_key(m->kv[i].key))
                kv[nk++] = m->kv[i];
        memset(kv + nk, 0, 3 * sizeof *kv);
        kv[nk].key = slice_from_cstr("split.no");
        kv[nk].val.type = MV_U16;
        kv[nk++].val.v.u = p;
        kv[nk].key = slice_from_cstr("split.count");
        kv[nk].val.type = MV_U16;
        kv[nk++].val.v.u = n;
        kv[nk].key = slice_from_cstr("split.tensors.count");
        kv[nk].val.type = MV_I32;
        kv[nk++].val.v.i = (int64_t)m->n_tensors;
        if (m->n_tensors > INT32_MAX) {
            ERR(e, ERR_LIMIT, "%s: %llu tensors (split.tensors.count is an INT32)", path,
                (unsigned long long)m->n_tensors);
            goto done;
        }
        part.kv = kv;
        part.n_kv = nk;
        part.tensors = m->tensors + first[p];
        part.n_tensors = first[p + 1] - first[p];
        if (o) {
            po = *o;
            if (o->tensor_data) {
                po.tensor_data = split_data;
                po.ctx = &shim;
            }
        }
        gguf_split_path(path, (uint32_t)(p + 1), (uint32_t)n, pp, cap);
        bad = plan(&part, pp, &po, &ppl, e) || ofile_open(&outs[p].f, pp, 0, e) ||
              write_out(&part, &outs[p], &po, &ppl, e) || ofile_finish(&outs[p].f, e);
        free(ppl.nbytes);
        if (bad)
            goto done;
    }
    /* Every part is complete: only now do they take their names. */
    for (uint64_t p = 0; p < n; p++)
        if (ofile_commit(&outs[p].f, e))
            goto done;
    if (n_parts)
        *n_parts = (uint32_t)n;
    rc = 0;
done:
    for (uint64_t p = 0; outs && p < n; p++)
        ofile_abort(&outs[p].f);
    free(outs);
    free(first);
    free(kv);
    free(pl.nbytes);
    free(pp);
    return rc;
}
