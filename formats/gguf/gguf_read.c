/*
 * gguf_read.c - the GGUF reader (versions 1, 2 and 3, little-endian).
 *
 * Spec: reference/gguf-quant.md sections 2 (layout) and 6 (what to reject).
 * Every byte is read through the bounded reader (common/rd.h); nothing is cast
 * out of the mapping.  gguf_open validates the whole structure before it returns
 * (house rule "validate, then trust"), so code downstream may rely on every
 * shape, size and range in the model.
 *
 *   offset 0   u8[4]  magic "GGUF"
 *          4   u32    version                 1, 2 or 3
 *          8   u64    n_tensors               (v1: u32)
 *         16   u64    n_kv                    (v1: u32; header is 16 bytes in v1, 24 after)
 *         24   KV[n_kv]                        back to back, no padding:
 *                 +--------------------------------------------------------------+
 *                 | u64 len (v1: u32) | key bytes | u32 value_type | value ...    |
 *                 +--------------------------------------------------------------+
 *                 value: fixed 1/2/4/8 bytes | string = u64 len + bytes |
 *                        array = u32 elem_type, u64 count (v1: u32), elements
 *                        (nested arrays: each element is again elem_type, count, ...)
 *              TensorInfo[n_tensors]           back to back:
 *                 +--------------------------------------------------------------+
 *                 | name (string) | u32 n_dims | ne[n_dims] (u64; v1: u32) |      |
 *                 | u32 ggml type | u64 offset (from data_start, all versions)      |
 *                 +--------------------------------------------------------------+
 *              0x00 padding to a multiple of ALIGNMENT (absolute file offset)
 * data_start   tensor data; tensor i at data_start + offset_i, each offset a multiple
 *              of ALIGNMENT (general.alignment, a UINT32 power of two; default 32)
 *
 * ne[] lists the fastest dimension first; the model view stores shapes outermost
 * first, so ne[] is reversed here (model.h, THE SHAPE RULE).
 *
 * Policies (each documented where the spec leaves a choice):
 *   - big-endian files (version & 0xFFFF == 0) are rejected, not byte-swapped;
 *   - a BOOL byte other than 0/1 is read as true and noted;
 *   - nested arrays are parsed (gguf-py writes them; ggml rejects them);
 *   - tensor names longer than 63 bytes are accepted up to 65535 and noted
 *     (llama.cpp rejects them); empty names and keys are rejected;
 *   - any aligned, in-bounds, non-overlapping layout is accepted; one that differs
 *     from llama.cpp's canonical running offsets is noted (gguf_canonical = 0);
 *   - a file whose final padding is cut short is accepted when every tensor fits (noted);
 *   - with no tensors there is no data section: files that end before the aligned
 *     data_start (gguf-py writes vocab-only files so) are fine, and data_off is
 *     then the end of the header.
 */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_impl.h"
#include "../../common/rd.h"
#include "../../common/sz.h"
#include "../../common/banned.h"

/* Smallest encodings, used to bound counts by the bytes left before allocating. */
#define KV_MIN_V1   9    /* u32 len + empty key + u32 type + 1-byte value */
#define KV_MIN      13   /* u64 len + empty key + u32 type + 1-byte value */
#define TI_MIN_V1   20   /* u32 len + empty name + u32 n_dims + u32 type + u64 offset */
#define TI_MIN      24   /* u64 len + ... */

struct gp {                     /* parser state */
    struct rd      r;
    struct model  *m;
    const char    *path;        /* for messages */
    int            v1;          /* 1: counts, lengths and dims are u32 */
    const struct slice *key;    /* the key being parsed, for messages */
    char           what[GGUF_QUOTE_LEN + 32];  /* "value of key '...'" for rd_* messages */
};

const char *gguf__quote(struct slice s, char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (n == 0)
        return buf;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        int plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '\'';
        size_t need = plain ? 1 : 4, more = i + 1 < s.n ? 3 : 0;   /* 3: room for "..." */
        if (o + need + more + 1 > n) {
            if (o + 4 <= n) {
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (plain) {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = 0;
    return buf;
}

/* A count or length: u32 in v1, u64 after. */
static int rd_count(struct gp *p, uint64_t *v, const char *what, struct err *e)
{
    if (p->v1) {
        uint32_t x;
        if (rd_u32(&p->r, &x, what, e))
            return -1;
        *v = x;
        return 0;
    }
    return rd_u64(&p->r, v, what, e);
}

static int vtype_ok(const struct gp *p, uint32_t t)
{
    return t < (p->v1 ? (uint32_t)MV_U64 : (uint32_t)MV_GGUF_COUNT);
}

static int bad_vtype(struct gp *p, uint64_t off, uint32_t t, const char *role, struct err *e)
{
    char kq[GGUF_QUOTE_LEN];
    return ERR_OFF(e, ERR_FORMAT, off, "%s: key '%s': unknown %s %u%s", p->path,
                   gguf__quote(*p->key, kq, sizeof kq), role, t,
                   p->v1 && t < MV_GGUF_COUNT ? " (GGUF v1 has types 0-9 only)" : "");
}

static int parse_arr(struct gp *p, struct model_val *v, int depth, struct err *e);

/* One value of type t (already checked by vtype_ok) at the cursor. */
static int parse_val(struct gp *p, uint32_t t, struct model_val *v, struct err *e)
{
    const uint8_t *b;
    size_t sz;

    v->type = (enum model_vtype)t;
    switch (t) {
    case MV_STR:
        return rd_str(&p->r, p->v1 ? 4 : 8, GGUF_STRING_MAX, &v->v.s, p->what, e);
    case MV_ARR:
        return parse_arr(p, v, 1, e);
    default:
        break;
    }
    sz = model_vtype_size(t);
    if (rd_bytes(&p->r, sz, &b, p->what, e))
        return -1;
    switch (t) {
    case MV_U8:   v->v.u = b[0]; break;
    case MV_I8:   v->v.i = (int8_t)b[0]; break;
    case MV_U16:  v->v.u = le16(b); break;
    case MV_I16:  v->v.i = (int16_t)le16(b); break;
    case MV_U32:  v->v.u = le32(b); break;
    case MV_I32:  v->v.i = (int32_t)le32(b); break;
    case MV_U64:  v->v.u = le64(b); break;
    case MV_I64:  v->v.i = (int64_t)le64(b); break;
    case MV_F32:  v->v.f = lef32(b); break;
    case MV_F64:  v->v.f = lef64(b); break;
    case MV_BOOL:
        v->v.u = b[0] != 0;
        if (b[0] > 1) {
            char kq[GGUF_QUOTE_LEN];
            model__note(p->m, "key '%s': BOOL byte 0x%02x read as true at offset %llu",
                        gguf__quote(*p->key, kq, sizeof kq), b[0],
                        (unsigned long long)(rd_tell(&p->r) - 1));
        }
        break;
    }
    return 0;
}

/*
 * An array body: u32 elem_type, count, elements.  Fixed-size elements are borrowed
 * raw; strings become slices; nested arrays become items (each again an array).
 * Every count is bounded by the bytes left before anything is allocated.
 */
static int parse_arr(struct gp *p, struct model_val *v, int depth, struct err *e)
{
    uint64_t type_off = rd_tell(&p->r), count_off, n, need, per;
    uint32_t et;
    char kq[GGUF_QUOTE_LEN];

    v->type = MV_ARR;
    if (rd_u32(&p->r, &et, p->what, e))
        return -1;
    if (!vtype_ok(p, et))
        return bad_vtype(p, type_off, et, "array element type", e);
    count_off = rd_tell(&p->r);
    if (rd_count(p, &n, p->what, e))
        return -1;
    v->v.arr.elem = (enum model_vtype)et;

    switch (et) {
    case MV_STR: per = p->v1 ? 4 : 8; break;              /* an empty string */
    case MV_ARR: per = p->v1 ? 8 : 12; break;             /* an empty nested array */
    default:     per = model_vtype_size(et); break;
    }
    if (sz_mul(n, per, &need) || need > rd_left(&p->r))
        return ERR_OFF(e, ERR_FORMAT, count_off,
                       "%s: key '%s': array of %llu %s does not fit in the %llu bytes left",
                       p->path, gguf__quote(*p->key, kq, sizeof kq), (unsigned long long)n,
                       model_vtype_name(et), (unsigned long long)rd_left(&p->r));
    v->v.arr.n = n;

    if (et == MV_STR) {
        if (n == 0)
            return 0;
        v->v.arr.strs = calloc(n, sizeof *v->v.arr.strs);
        if (!v->v.arr.strs)
            return ERR(e, ERR_NOMEM, "%s: out of memory for %llu strings", p->path,
                       (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if (rd_str(&p->r, p->v1 ? 4 : 8, GGUF_STRING_MAX, &v->v.arr.strs[i], p->what, e))
                return -1;
        return 0;
    }
    if (et == MV_ARR) {
        if (depth >= GGUF_ARRAY_DEPTH_MAX)
            return ERR_OFF(e, ERR_LIMIT, type_off, "%s: key '%s': arrays nested deeper than %d",
                           p->path, gguf__quote(*p->key, kq, sizeof kq), GGUF_ARRAY_DEPTH_MAX);
        if (n == 0)
            return 0;
        v->v.arr.items = calloc(n, sizeof *v->v.arr.items);
        if (!v->v.arr.items)
            return ERR(e, ERR_NOMEM, "%s: out of memory for %llu arrays", p->path,
                       (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if (parse_arr(p, &v->v.arr.items[i], depth + 1, e))
                return -1;
        return 0;
    }
    if (rd_bytes(&p->r, need, &v->v.arr.raw, p->what, e))
        return -1;
    if (n == 0)
        v->v.arr.raw = NULL;
    if (et == MV_BOOL) {
        for (uint64_t i = 0; i < n; i++)
            if (v->v.arr.raw[i] > 1) {
                model__note(p->m, "key '%s': BOOL element %llu is 0x%02x, read as true at offset %llu",
                            gguf__quote(*p->key, kq, sizeof kq), (unsigned long long)i,
                            v->v.arr.raw[i], (unsigned long long)(count_off + (p->v1 ? 4 : 8) + i));
                break;
            }
    }
    return 0;
}

/* qsort_r comparators over index arrays: by name, then by position (so the later
 * duplicate is reported). */
static int kv_idx_cmp(const void *a, const void *b, void *ctx)
{
    const struct model *m = ctx;
    uint64_t i = *(const uint64_t *)a, j = *(const uint64_t *)b;
    int c = slice_cmp(m->kv[i].key, m->kv[j].key);
    return c ? c : (i > j) - (i < j);
}

static int tensor_idx_cmp(const void *a, const void *b, void *ctx)
{
    const struct model *m = ctx;
    uint64_t i = *(const uint64_t *)a, j = *(const uint64_t *)b;
    int c = slice_cmp(m->tensors[i].name, m->tensors[j].name);
    return c ? c : (i > j) - (i < j);
}

/* Index of a duplicated entry (the later of the first pair found), or UINT64_MAX. */
static uint64_t find_dup(struct model *m, uint64_t n, int tensors, struct err *e)
{
    uint64_t *ord, dup = UINT64_MAX;

    if (n < 2)
        return UINT64_MAX;
    ord = malloc(n * sizeof *ord);
    if (!ord) {
        ERR(e, ERR_NOMEM, "%s: out of memory", m->path);
        return UINT64_MAX - 1;
    }
    for (uint64_t i = 0; i < n; i++)
        ord[i] = i;
    qsort_r(ord, n, sizeof *ord, tensors ? tensor_idx_cmp : kv_idx_cmp, m);
    for (uint64_t i = 1; i < n; i++) {
        struct slice a = tensors ? m->tensors[ord[i - 1]].name : m->kv[ord[i - 1]].key;
        struct slice b = tensors ? m->tensors[ord[i]].name : m->kv[ord[i]].key;
        if (slice_eq(a, b) && (dup == UINT64_MAX || ord[i] < dup))
            dup = ord[i];
    }
    free(ord);
    return dup;
}

static int parse_kvs(struct gp *p, struct err *e)
{
    struct model *m = p->m;
    char kq[GGUF_QUOTE_LEN];

    for (uint64_t i = 0; i < m->n_kv; i++) {
        struct model_kv *kv = &m->kv[i];
        uint64_t type_off;
        uint32_t t;

        kv->off = rd_tell(&p->r);
        snprintf(p->what, sizeof p->what, "key %llu", (unsigned long long)i);
        if (rd_str(&p->r, p->v1 ? 4 : 8, GGUF_KEY_MAX, &kv->key, p->what, e))
            return -1;
        if (kv->key.n == 0)
            return ERR_OFF(e, ERR_FORMAT, kv->off, "%s: key %llu is empty", p->path,
                           (unsigned long long)i);
        p->key = &kv->key;
        snprintf(p->what, sizeof p->what, "value of key '%s'",
                 gguf__quote(kv->key, kq, sizeof kq));
        type_off = rd_tell(&p->r);
        if (rd_u32(&p->r, &t, p->what, e))
            return -1;
        if (!vtype_ok(p, t))
            return bad_vtype(p, type_off, t, "value type", e);
        if (parse_val(p, t, &kv->val, e))
            return -1;
    }
    {
        uint64_t d = find_dup(m, m->n_kv, 0, e);
        if (d == UINT64_MAX - 1)
            return -1;
        if (d != UINT64_MAX)
            return ERR_OFF(e, ERR_FORMAT, m->kv[d].off, "%s: duplicate key '%s'", p->path,
                           gguf__quote(m->kv[d].key, kq, sizeof kq));
    }
    return 0;
}

/* general.alignment: must be a UINT32 non-zero power of two (ggml's rule). */
static int read_alignment(struct gp *p, struct err *e)
{
    const struct model_kv *kv = model_kv_find(p->m, GGUF_KEY_ALIGNMENT);

    p->m->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!kv)
        return 0;
    if (kv->val.type != MV_U32)
        return ERR_OFF(e, ERR_FORMAT, kv->off, "%s: key '%s': type %s, expected UINT32", p->path,
                       GGUF_KEY_ALIGNMENT, model_vtype_name(kv->val.type));
    if (kv->val.v.u == 0 || (kv->val.v.u & (kv->val.v.u - 1)) != 0)
        return ERR_OFF(e, ERR_FORMAT, kv->off, "%s: key '%s': %llu is not a power of two",
                       p->path, GGUF_KEY_ALIGNMENT, (unsigned long long)kv->val.v.u);
    p->m->alignment = kv->val.v.u;
    return 0;
}

/* Where a tensor info and its offset field start, for messages. */
struct ti_pos {
    uint64_t start;
    uint64_t off_field;
};

/* One tensor info at the cursor into t (data range resolved later). */
static int parse_tensor(struct gp *p, uint64_t idx, struct model_tensor *t, uint64_t *off_field,
                        struct err *e)
{
    uint64_t start = rd_tell(&p->r), field, ne[GGUF_MAX_DIMS], nbytes;
    uint32_t n_dims, type;
    int64_t n_elems = 1;
    int dt;
    char tq[GGUF_QUOTE_LEN];
    struct err scratch = ERR_INIT;

    snprintf(p->what, sizeof p->what, "name of tensor %llu", (unsigned long long)idx);
    if (rd_str(&p->r, p->v1 ? 4 : 8, GGUF_NAME_MAX, &t->name, p->what, e))
        return -1;
    if (t->name.n == 0)
        return ERR_OFF(e, ERR_FORMAT, start, "%s: tensor %llu has an empty name", p->path,
                       (unsigned long long)idx);
    gguf__quote(t->name, tq, sizeof tq);
    if (t->name.n > GGUF_NAME_MAX_GGML)
        model__note(p->m, "tensor '%s': name is %zu bytes; llama.cpp accepts at most %d",
                    tq, t->name.n, GGUF_NAME_MAX_GGML);
    snprintf(p->what, sizeof p->what, "info of tensor '%s'", tq);

    field = rd_tell(&p->r);
    if (rd_u32(&p->r, &n_dims, p->what, e))
        return -1;
    if (n_dims > GGUF_MAX_DIMS)
        return ERR_OFF(e, ERR_FORMAT, field, "%s: tensor '%s': n_dims %u over the maximum %d",
                       p->path, tq, n_dims, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < n_dims; d++) {
        field = rd_tell(&p->r);
        if (rd_count(p, &ne[d], p->what, e))
            return -1;
        if (ne[d] > (uint64_t)INT64_MAX)
            return ERR_OFF(e, ERR_FORMAT, field, "%s: tensor '%s': ne[%u] = %lld is negative",
                           p->path, tq, d, (long long)ne[d]);
        if (sz_mul_i64(n_elems, (int64_t)ne[d], &n_elems))
            return ERR_OFF(e, ERR_FORMAT, field,
                           "%s: tensor '%s': element count overflows at ne[%u] = %llu", p->path,
                           tq, d, (unsigned long long)ne[d]);
    }
    field = rd_tell(&p->r);
    if (rd_u32(&p->r, &type, p->what, e))
        return -1;
    dt = dtype_from_ggml(type);
    if (dt < 0)
        return ERR_OFF(e, type < DT_GGML_COUNT ? ERR_FORMAT : ERR_UNSUPPORTED, field,
                       "%s: tensor '%s': %s ggml type %u", p->path, tq,
                       type < DT_GGML_COUNT ? "removed" : "unknown", type);
    if (!dtype_row_ok(dt, n_dims ? (int64_t)ne[0] : 1))
        return ERR_OFF(e, ERR_FORMAT, field,
                       "%s: tensor '%s': row of %lld elements is not whole %s blocks of %u",
                       p->path, tq, (long long)(n_dims ? (int64_t)ne[0] : 1), dtype_name(dt),
                       dtype_get(dt)->blck);
    if (dtype_nbytes(dt, n_elems, &nbytes, &scratch))
        return ERR_OFF(e, ERR_FORMAT, field, "%s: tensor '%s': byte size of %lld %s elements "
                       "overflows", p->path, tq, (long long)n_elems, dtype_name(dt));
    field = rd_tell(&p->r);
    *off_field = field;
    if (rd_u64(&p->r, &t->rel_off, p->what, e))
        return -1;
    if (t->rel_off & (p->m->alignment - 1))
        return ERR_OFF(e, ERR_FORMAT, field,
                       "%s: tensor '%s': data offset %llu is not a multiple of the alignment %llu",
                       p->path, tq, (unsigned long long)t->rel_off,
                       (unsigned long long)p->m->alignment);

    t->dtype = dt;
    t->stored_dtype = type;
    t->n_dims = (int)n_dims;
    for (int k = 0; k < MODEL_MAX_DIMS; k++)          /* reverse: outermost first */
        t->shape[k] = k < (int)n_dims ? (int64_t)ne[n_dims - 1 - (uint32_t)k] : 1;
    t->n_elems = n_elems;
    t->size = nbytes;
    t->file = 0;
    return 0;
}

/*
 * Place every tensor: absolute offsets, ranges inside the file, no overlaps, and the
 * canonical-layout check (offset_i == sum of aligned sizes before it).
 */
static int place_tensors(struct gp *p, const struct ti_pos *pos, struct err *e)
{
    struct model *m = p->m;
    uint64_t fsize = m->files[0].size, expect = 0, end = m->data_off;
    int canonical = 1;
    char tq[GGUF_QUOTE_LEN];

    for (uint64_t i = 0; i < m->n_tensors; i++) {
        struct model_tensor *t = &m->tensors[i];
        uint64_t stop;

        if (sz_add(m->data_off, t->rel_off, &t->off) || sz_add(t->off, t->size, &stop))
            return ERR_OFF(e, ERR_FORMAT, pos[i].off_field,
                           "%s: tensor '%s': data offset %llu + %llu bytes overflows", p->path,
                           gguf__quote(t->name, tq, sizeof tq), (unsigned long long)t->rel_off,
                           (unsigned long long)t->size);
        if (stop > fsize)
            return ERR_OFF(e, ERR_FORMAT, pos[i].off_field,
                           "%s: tensor '%s': data [%llu, %llu) past end of file (%llu bytes)",
                           p->path, gguf__quote(t->name, tq, sizeof tq),
                           (unsigned long long)t->off, (unsigned long long)stop,
                           (unsigned long long)fsize);
        t->data = m->files[0].data + t->off;
        if (stop > end)
            end = stop;
        if (t->rel_off != expect)
            canonical = 0;
        if (sz_align(t->size, m->alignment, &stop) || sz_add(expect, stop, &expect))
            canonical = 0;
    }
    if (model__check_tensors(m, e))
        return -1;
    m->gguf_canonical = canonical;
    if (!canonical)
        model__note(m, "non-canonical layout: tensor offsets are not the running aligned "
                       "sizes that llama.cpp requires");
    if (m->n_tensors == 0)
        return 0;
    if (canonical) {
        uint64_t full = UINT64_MAX;
        sz_add(m->data_off, expect, &full);
        if (full > fsize)
            model__note(m, "final padding truncated: file is %llu bytes, llama.cpp expects %llu",
                        (unsigned long long)fsize, (unsigned long long)full);
        else if (full < fsize)
            model__note(m, "%llu trailing bytes after the tensor data",
                        (unsigned long long)(fsize - full));
    }
    return 0;
}

static int parse(struct gp *p, struct err *e)
{
    struct model *m = p->m;
    const uint8_t *magic;
    uint32_t version;
    uint64_t n_tensors, n_kv, need, need_ti, kv_count_off;
    struct ti_pos *pos = NULL;
    int rc = -1;

    if (rd_bytes(&p->r, 4, &magic, "magic", e))
        return -1;
    if (memcmp(magic, GGUF_MAGIC, 4) != 0)
        return ERR_OFF(e, ERR_FORMAT, 0, "%s: not a GGUF file (bad magic)", p->path);
    if (rd_u32(&p->r, &version, "version", e))
        return -1;
    if (version == 0)
        return ERR_OFF(e, ERR_FORMAT, 4, "%s: invalid GGUF version 0", p->path);
    /* A byte-swapped version (0x03000000): the file was written big-endian.  We choose
     * to reject such files rather than swap every field (reference 2.6). */
    if ((version & 0xFFFF) == 0)
        return ERR_OFF(e, ERR_UNSUPPORTED, 4,
                       "%s: big-endian GGUF is not supported (version field 0x%08x)", p->path,
                       version);
    if (version > GGUF_VERSION_MAX)
        return ERR_OFF(e, ERR_UNSUPPORTED, 4, "%s: GGUF version %u is not supported (max %d)",
                       p->path, version, GGUF_VERSION_MAX);
    m->version = (int)version;
    p->v1 = version == 1;
    if (rd_count(p, &n_tensors, "tensor count", e))
        return -1;
    kv_count_off = rd_tell(&p->r);
    if (rd_count(p, &n_kv, "metadata key count", e))
        return -1;

    /* Bound both counts by the bytes left before allocating anything. */
    if (sz_mul(n_kv, p->v1 ? KV_MIN_V1 : KV_MIN, &need) || need > rd_left(&p->r))
        return ERR_OFF(e, ERR_FORMAT, kv_count_off,
                       "%s: metadata key count %llu too large for the %llu bytes left", p->path,
                       (unsigned long long)n_kv, (unsigned long long)rd_left(&p->r));
    if (sz_mul(n_tensors, p->v1 ? TI_MIN_V1 : TI_MIN, &need_ti) || sz_add(need, need_ti, &need) ||
        need > rd_left(&p->r))
        return ERR_OFF(e, ERR_FORMAT, 8,
                       "%s: tensor count %llu too large for the %llu bytes left", p->path,
                       (unsigned long long)n_tensors, (unsigned long long)rd_left(&p->r));

    if (n_kv) {
        m->kv = calloc(n_kv, sizeof *m->kv);
        if (!m->kv)
            return ERR(e, ERR_NOMEM, "%s: out of memory for %llu keys", p->path,
                       (unsigned long long)n_kv);
        m->n_kv = n_kv;   /* zeroed entries are safe to free */
    }
    if (parse_kvs(p, e) || read_alignment(p, e))
        return -1;

    if (n_tensors) {
        m->tensors = calloc(n_tensors, sizeof *m->tensors);
        pos = malloc(n_tensors * sizeof *pos);
        if (!m->tensors || !pos) {
            ERR(e, ERR_NOMEM, "%s: out of memory for %llu tensors", p->path,
                (unsigned long long)n_tensors);
            goto done;
        }
        m->n_tensors = n_tensors;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        pos[i].start = rd_tell(&p->r);
        if (parse_tensor(p, i, &m->tensors[i], &pos[i].off_field, e))
            goto done;
    }
    {
        char tq[GGUF_QUOTE_LEN];
        uint64_t d = find_dup(m, n_tensors, 1, e);
        if (d == UINT64_MAX - 1)
            goto done;
        if (d != UINT64_MAX) {
            ERR_OFF(e, ERR_FORMAT, pos[d].start, "%s: duplicate tensor name '%s'", p->path,
                    gguf__quote(m->tensors[d].name, tq, sizeof tq));
            goto done;
        }
    }

    m->header_size = rd_tell(&p->r);
    if (sz_align(m->header_size, m->alignment, &m->data_off)) {
        ERR_OFF(e, ERR_FORMAT, m->header_size, "%s: data section offset overflows", p->path);
        goto done;
    }
    if (n_tensors == 0 && m->data_off > m->files[0].size)
        m->data_off = m->header_size;
    rc = place_tensors(p, pos, e);
done:
    free(pos);
    return rc;
}

/* Shared by both entry points: m->files[0] is set up; parse it or close m. */
static int open_common(struct model *m, struct err *e)
{
    struct gp p;

    memset(&p, 0, sizeof p);
    p.m = m;
    p.path = m->path;
    rd_init(&p.r, m->files[0].data, m->files[0].size, m->path);
    m->total_size = m->files[0].size;
    if (parse(&p, e)) {
        model_close(m);
        return -1;
    }
    return 0;
}

int gguf_open_single(struct model *m, const char *path, struct err *e)
{
    if (model__init_file(m, MODEL_FMT_GGUF, path, NULL, 0, e))
        return -1;
    return open_common(m, e);
}

int gguf_open_mem(struct model *m, const void *buf, size_t n, const char *name, struct err *e)
{
    if (model__init_file(m, MODEL_FMT_GGUF, name, buf ? buf : "", n, e))
        return -1;
    return open_common(m, e);
}
