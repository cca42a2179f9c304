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
