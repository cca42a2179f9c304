/*
 * apr_write.c - the APR v2 writer, byte-compatible with aprender's AprV2Writer
 * (reference/apr.md 2.1-2.7 and the C writer checklist at the end of section 7).
 *
 * Plan, computed before a byte is written:
 *   metadata  compact JSON of m->kv in kv order at offset 64; metadata_size excludes the
 *             zero padding to the next multiple of 64 (index_off)
 *   index     tensors sorted bytewise by name (Rust String order: slice_cmp); each entry
 *             packed (no per-entry padding); data offsets assigned cumulatively in sorted
 *             order, each tensor taking align64(size); padded to 64 (data_off)
 *   header    the 64 bytes of apr_read.c's diagram, CRC over [0,40) || [44,64)
 * Then the tensor data is streamed into a temporary file beside the target from offset
 * data_off (bytes a producer hands over with apr_out_copy move file to file through
 * copy_file_range, and only their CRC is computed here), then apr_write_opts.meta_final
 * may fill in late values of the same length, and header, metadata and index are
 * written at offset 0 (pwrite), then the footer: the CRC of the front joined to the
 * running CRC of the data with crc_combine, so every byte is read once.  Bytes handed
 * over with apr_out_copy_crc_later are not read at all: the caller computed their CRC in
 * a pass it makes anyway (apr-convert: beside the source's SHA-256) and gives it per
 * tensor at the end (tensor_crc); the data's CRC is then its parts joined in order.  The file is
 * renamed into place only when complete (unlinked on any failure).
 */
#include "apr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/json.h"
#include "../../common/ofile.h"
#include "../../common/rd.h"
#include "../../common/sbuf.h"
#include "../../common/sz.h"
#include "../model_json.h"
#include "apr_impl.h"
#include "../../common/banned.h"

/* ---- buffered output with a running CRC */

/* A run of the data whose CRC is one value: known (tensor < 0), or the CRC of tensor
 * `tensor`'s bytes, which the caller gives at the end (apr_out_copy_crc_later). */
struct wr_part {
    uint32_t crc;
    uint64_t len;
    int64_t  tensor;
};

struct wr {
    struct ofile    f;        /* f.pos: file offset of the next byte */
    uint32_t        crc;      /* CRC-32 of the bytes written since the last part */
    uint64_t        crc_len;
    struct wr_part *parts;    /* the data before those bytes, in order */
    size_t          n_parts, cap_parts;
};

#define WR_BUF ((size_t)4 << 20)

static int wr_put(struct wr *w, const void *p, uint64_t n, struct err *e)
{
    if (n == 0)
        return 0;
    w->crc = apr__crc(w->crc, p, n);
    w->crc_len += n;
    return ofile_write(&w->f, p, (size_t)n, e);
}

/* n bytes at p that are also [off, off+n) of src (see apr_out_copy); pieces under a
 * quarter of the buffer are written from p (ofile's copy_min). */
static int wr_copy(struct wr *w, int src, uint64_t off, const uint8_t *p, size_t n,
                   struct err *e)
{
    w->crc = apr__crc(w->crc, p, n);
    w->crc_len += n;
    return ofile_copy(&w->f, src, off, p, n, e);
}

/* n bytes of tensor i, copied without reading them: the running CRC is closed into a
 * part and the bytes join tensor i's part, whose CRC comes at the end. */
static int wr_copy_later(struct wr *w, uint64_t i, int src, uint64_t off, const uint8_t *p,
                         size_t n, struct err *e)
{
    struct wr_part *last = w->n_parts ? &w->parts[w->n_parts - 1] : NULL;

    if (w->crc_len || !last || last->tensor != (int64_t)i) {
        size_t need = w->n_parts + 2;
        if (need > w->cap_parts) {
            size_t cap = w->cap_parts ? 2 * w->cap_parts : 64;
            struct wr_part *q = realloc(w->parts, cap * sizeof *q);
            if (!q)
                return ERR(e, ERR_NOMEM, "out of memory");
            w->parts = q;
            w->cap_parts = cap;
        }
        if (w->crc_len) {
            w->parts[w->n_parts++] = (struct wr_part){ w->crc, w->crc_len, -1 };
            w->crc = 0;
            w->crc_len = 0;
        }
        w->parts[w->n_parts++] = (struct wr_part){ 0, 0, (int64_t)i };
        last = &w->parts[w->n_parts - 1];
    }
    last->len += n;
    return ofile_copy(&w->f, src, off, p, n, e);
}

/* The CRC of all the data: the parts joined in order (tensor parts asked of o). */
static int wr_data_crc(const struct wr *w, const struct apr_write_opts *o, uint32_t *crc,
                       struct err *e)
{
    uint32_t c = 0;

    for (size_t k = 0; k < w->n_parts; k++) {
        uint32_t pc = w->parts[k].crc;
        if (w->parts[k].tensor >= 0) {
            if (!o->tensor_crc)
                return ERR(e, ERR_INTERNAL, "apr_out_copy_crc_later without tensor_crc");
            if (o->tensor_crc(o->tensor_crc_ctx, (uint64_t)w->parts[k].tensor, &pc, e))
                return -1;
        }
        c = crc_combine(c, pc, w->parts[k].len);
    }
    *crc = crc_combine(c, w->crc, w->crc_len);
    return 0;
}

static int wr_zeros(struct wr *w, uint64_t n, struct err *e)
{
    static const uint8_t zero[APR_ALIGN];

    if (n > sizeof zero)
        return ERR(e, ERR_INTERNAL, "padding of %llu bytes", (unsigned long long)n);
    return wr_put(w, zero, n, e);
}

/* ---- tensor data from the caller's producer (apr_write_opts.tensor_data) */

struct apr_out {
    struct wr *w;
    uint64_t   i;      /* the tensor */
    uint64_t   left;   /* bytes the producer still owes for this tensor */
    uint64_t   later;  /* of them, bytes given with apr_out_copy_crc_later */
};

int apr_out_write(struct apr_out *out, const void *p, size_t n, struct err *e)
{
    if (n > out->left)
        return ERR(e, ERR_INTERNAL, "tensor_data wrote %zu bytes past the tensor's end", n);
    out->left -= n;
    return wr_put(out->w, p, n, e);
}

int apr_out_copy(struct apr_out *out, int fd, uint64_t off, const void *p, size_t n,
                 struct err *e)
{
    if (n > out->left)
        return ERR(e, ERR_INTERNAL, "tensor_data wrote %zu bytes past the tensor's end", n);
    out->left -= n;
    return wr_copy(out->w, fd, off, p, n, e);
}

int apr_out_copy_crc_later(struct apr_out *out, int fd, uint64_t off, const void *p, size_t n,
                           struct err *e)
{
    if (n > out->left)
        return ERR(e, ERR_INTERNAL, "tensor_data wrote %zu bytes past the tensor's end", n);
    out->left -= n;
    out->later += n;
    return wr_copy_later(out->w, out->i, fd, off, p, n, e);
}

static int put_tensor(struct wr *w, const struct model *m, uint64_t i,
                      const struct apr_write_opts *o, struct err *e)
{
    const struct model_tensor *t = &m->tensors[i];
    struct apr_out out = { w, i, t->size, 0 };

    if (!o->tensor_data)
        return wr_put(w, t->data, t->size, e);
    if (o->tensor_data(o->tensor_data_ctx, m, i, &out, e))
        return -1;
    if (out.left)
        return ERR(e, ERR_INTERNAL, "tensor_data left %llu bytes unwritten",
                   (unsigned long long)out.left);
    if (out.later && out.later != t->size)   /* tensor_crc covers whole tensors */
        return ERR(e, ERR_INTERNAL, "tensor_data gave %llu of %llu bytes with "
                   "apr_out_copy_crc_later", (unsigned long long)out.later,
                   (unsigned long long)t->size);
    return 0;
}

/* ---- planning */

static int name_cmp(const void *a, const void *b, void *ctx)
{
    const struct model *m = ctx;
    return slice_cmp(m->tensors[*(const uint64_t *)a].name, m->tensors[*(const uint64_t *)b].name);
}

/* A printable copy of a tensor name for messages (names may come from a hostile file). */
static const char *pname(char *buf, size_t cap, struct slice s)
{
    size_t o = 0;

    for (size_t i = 0; i < s.n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = 0;
    return buf;
}

/* The dtype byte for t: aprender's code, or with ext the extension code 0xC0 + ggml id. */
static int apr_code_of(int dtype, int ext)
{
    const struct dtype_info *d = dtype_get(dtype);
    if (!d)
        return -1;
    if (d->apr_code >= 0)
        return d->apr_code;
    if (ext && d->ggml_id >= 0 && d->ggml_id + APR_EXT_CODE_BASE <= 255)
        return APR_EXT_CODE_BASE + d->ggml_id;
    return -1;
}

static int check_tensor(const struct model_tensor *t, int ext, struct err *e)
{
    const struct dtype_info *d = dtype_get(t->dtype);
    struct err de = ERR_INIT;
    uint64_t want;
    int64_t n = 1;
    char nb[96];

    pname(nb, sizeof nb, t->name);
    if (t->name.n == 0)
        return ERR(e, ERR_USAGE, "cannot write a tensor with an empty name to APR");
    if (t->name.n > APR_MAX_NAME)
        return ERR(e, ERR_LIMIT, "tensor '%s': name of %zu bytes is over APR's limit of %u",
                   nb, t->name.n, APR_MAX_NAME);
    if (!d)
        return ERR(e, ERR_INTERNAL, "tensor '%s': invalid dtype id %d", nb, t->dtype);
    if (apr_code_of(t->dtype, ext) < 0)
        return ERR(e, ERR_UNSUPPORTED, "tensor '%s': dtype %s has no APR dtype code", nb,
                   d->name);
    if (t->n_dims < 0 || (unsigned)t->n_dims > APR_MAX_DIMS)
        return ERR(e, ERR_LIMIT, "tensor '%s': %d dimensions (APR holds at most %u)", nb,
                   t->n_dims, APR_MAX_DIMS);
    for (int k = 0; k < t->n_dims; k++)
        if (sz_mul_i64(n, t->shape[k], &n))
            return ERR(e, ERR_INTERNAL, "tensor '%s': bad shape (dim %d = %lld)", nb, k,
                       (long long)t->shape[k]);
    if (dtype_nbytes(t->dtype, n, &want, &de))
        return ERR(e, ERR_INTERNAL, "tensor '%s': %s", nb, de.msg);
    if (want != t->size || n != t->n_elems)
        return ERR(e, ERR_INTERNAL,
                   "tensor '%s': %llu bytes do not match its shape (%lld %s elements take %llu)",
                   nb, (unsigned long long)t->size, (long long)n, d->name,
                   (unsigned long long)want);
    if (t->size && !t->data)
        return ERR(e, ERR_INTERNAL, "tensor '%s': no data", nb);
    return 0;
}

/* Nesting depth of v (1 for a scalar), stopping once over max. */
static int val_depth(const struct model_val *v, int max)
{
    int d = 0;

    if (max <= 0)
        return 1;
    if (v->type == MV_OBJ)
        for (uint64_t i = 0; i < v->v.obj.n && d <= max; i++) {
            int k = val_depth(&v->v.obj.kv[i].val, max - 1);
            d = k > d ? k : d;
        }
    else if (v->type == MV_ARR && v->v.arr.items)
        for (uint64_t i = 0; i < v->v.arr.n && d <= max; i++) {
            int k = val_depth(&v->v.arr.items[i], max - 1);
            d = k > d ? k : d;
        }
    else if (v->type == MV_ARR)
        d = 1;
    return d + 1;
}

/* json_w tracks commas for at most 63 levels (common/json.h first[64]). */
#define APR_META_MAX_DEPTH 60

static int build_metadata(const struct model *m, struct sbuf *b, struct err *e)
{
    struct json_w w;

    for (uint64_t i = 0; i < m->n_kv; i++)
        if (val_depth(&m->kv[i].val, APR_META_MAX_DEPTH) > APR_META_MAX_DEPTH)
            return ERR(e, ERR_LIMIT, "metadata key '%.*s': nested more than %d levels deep",
                       (int)(m->kv[i].key.n > 100 ? 100 : m->kv[i].key.n), m->kv[i].key.p,
                       APR_META_MAX_DEPTH);
    json_w_init(&w, b, 0);
    json_w_obj(&w);
    for (uint64_t i = 0; i < m->n_kv; i++) {
        json_w_key_n(&w, m->kv[i].key.p, m->kv[i].key.n);
        model_val_to_json(&w, &m->kv[i].val, UINT64_MAX);
    }
    json_w_obj_end(&w);
    if (sbuf_check(b, "APR metadata", e))
        return -1;
    /* Never write what a reader would refuse: re-parse the text we produced. */
    struct json_doc d;
    struct err je = ERR_INIT;
    if (json_parse(&d, b->p, b->len, APR_HEADER_SIZE, NULL, &je))
        return ERR(e, ERR_INTERNAL, "generated metadata is not valid JSON: %s", je.msg);
    if (d.tok[0].type != JSMN_OBJECT || (uint64_t)d.tok[0].size != m->n_kv) {
        json_release(&d);
        return ERR(e, ERR_INTERNAL, "generated metadata does not hold the %llu keys given",
                   (unsigned long long)m->n_kv);
    }
    json_release(&d);
    return 0;
}

/* The file's plan: tensors sorted by name, each one's offset in the data section. */
struct aw_layout {
    uint64_t *ord, *rel;
    uint64_t index_size, index_off, data_off, total, data_bytes;
};

static void aw_layout_release(struct aw_layout *L)
{
    free(L->ord);
    free(L->rel);
}

/* Validate every tensor, then sort by name and lay out the index and the data. */
static int aw_plan(const struct model *m, const char *path, const struct apr_write_opts *o,
                   struct aw_layout *L, struct err *e)
{
    L->ord = calloc(m->n_tensors + 1, sizeof *L->ord);
    L->rel = calloc(m->n_tensors + 1, sizeof *L->rel);
    if (!L->ord || !L->rel)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[i];
        if (check_tensor(t, o->ggml_ext_codes, e)) {
            err_prefix(e, "%s", path);
            return -1;
        }
        L->ord[i] = i;
        if (sz_add(L->index_size, 2 + t->name.n + 2 + 8 * (uint64_t)t->n_dims + 16,
                   &L->index_size))
            goto too_big;
    }
    qsort_r(L->ord, m->n_tensors, sizeof *L->ord, name_cmp, (void *)m);
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[L->ord[i]];
        uint64_t padded;
        if (i > 0 && slice_eq(m->tensors[L->ord[i - 1]].name, t->name)) {
            char nb[96];
            return ERR(e, ERR_USAGE, "%s: duplicate tensor name '%s'", path,
                       pname(nb, sizeof nb, t->name));
        }
        L->rel[i] = L->total;
        L->data_bytes += t->size;   /* <= total: no overflow once total's sum succeeded */
        if (sz_align(t->size, APR_ALIGN, &padded) || sz_add(L->total, padded, &L->total))
            goto too_big;
    }
    return 0;
too_big:
    return ERR(e, ERR_LIMIT, "%s: model too large for APR offsets", path);
}

/* The index, packed, in name order. */
static uint8_t *aw_index(const struct model *m, const struct apr_write_opts *o,
                         const struct aw_layout *L, struct err *e)
{
    uint8_t *index = malloc(L->index_size ? (size_t)L->index_size : 1), *p = index;

    if (!index) {
        ERR(e, ERR_NOMEM, "out of memory for a %llu-byte tensor index",
            (unsigned long long)L->index_size);
        return NULL;
    }
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[L->ord[i]];
        put_le16(p, (uint16_t)t->name.n);           /* <= 256: check_tensor */
        memcpy(p + 2, t->name.p, t->name.n);
        p += 2 + t->name.n;
        *p++ = (uint8_t)apr_code_of(t->dtype, o->ggml_ext_codes);
        *p++ = (uint8_t)t->n_dims;
        for (int k = 0; k < t->n_dims; k++, p += 8)
            put_le64(p, (uint64_t)t->shape[k]);
        put_le64(p, L->rel[i]);
        put_le64(p + 8, t->size);
        p += 16;
    }
    return index;
}

static int aw_header(const struct model *m, const char *path, const struct apr_write_opts *o,
                     const struct aw_layout *L, size_t meta_len, uint8_t *hdr, struct err *e)
{
    /* Extension codes (apr_write_opts.ggml_ext_codes): ENCRYPTED makes realizar refuse
     * the file instead of reading unknown codes as F32; the metadata marker tells
     * apr_read what the flag means. */
    uint16_t flags = (uint16_t)(APR_FLAG_ROW_MAJOR | o->extra_flags);

    for (uint64_t i = 0; o->ggml_ext_codes && i < m->n_tensors; i++)
        if (dtype_get(m->tensors[i].dtype)->apr_code < 0)
            flags |= APR_FLAG_ENCRYPTED;
    if (flags & APR_FLAG_ENCRYPTED) {
        const struct model_kv *mk = model_kv_find(m, APR_EXT_KEY);
        if (!mk || mk->val.type != MV_STR || !slice_eq_cstr(mk->val.v.s, APR_EXT_VALUE))
            return ERR(e, ERR_USAGE, "%s: extension dtype codes need the metadata key '%s'",
                       path, APR_EXT_KEY);
    }
    memset(hdr, 0, APR_HEADER_SIZE);
    memcpy(hdr, "APR\0", 4);
    hdr[4] = 2;                                       /* version 2.0 */
    hdr[5] = 0;
    put_le16(hdr + 6, flags);
    put_le32(hdr + 8, (uint32_t)m->n_tensors);
    put_le64(hdr + 12, APR_HEADER_SIZE);              /* metadata_offset */
    put_le32(hdr + 20, (uint32_t)meta_len);           /* <= UINT32_MAX: sbuf cap */
    put_le64(hdr + 24, L->index_off);
    put_le64(hdr + 32, L->data_off);
    put_le32(hdr + APR_CRC_OFF, apr__header_crc(hdr));
    return 0;
}

/* The data, from data_off, in name order; w->crc covers it alone. */
static int aw_data(struct wr *w, const struct model *m, const struct apr_write_opts *o,
                   const struct aw_layout *L, struct err *e)
{
    uint64_t done = 0;

    if (ofile_seek(&w->f, L->data_off, e))
        return -1;
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[L->ord[i]];
        /* w->f.pos == data_off + rel[i] here: offsets were assigned in this order. */
        if (put_tensor(w, m, L->ord[i], o, e) ||
            wr_zeros(w, (APR_ALIGN - t->size % APR_ALIGN) % APR_ALIGN, e))
            return -1;
        done += t->size;
        ofile_kick(&w->f);
        if (o->progress)
            o->progress(o->progress_ctx, done, L->data_bytes);
    }
    return ofile_flush(&w->f, e);
}

/* Before meta_final (which may wait: apr-convert joins its source-hash thread there), the
 * data goes to disk, so the final fsync has only the front and the footer left and the
 * wait and the writeback overlap (1 GiB: the fsync took 0.4-0.56 s after the wait). */
static int aw_sync_data(struct wr *w, struct err *e)
{
    if (w->f.flags & (OFILE_NO_FSYNC | OFILE_BORROWED))
        return 0;
    if (ofile_flush(&w->f, e))
        return -1;
    if (fdatasync(w->f.fd) != 0)
        return ERR_SYS(e, "cannot sync '%s'", w->f.final);
    return 0;
}

/* Late values (meta_final) must keep the metadata's size: the index follows it. */
static int aw_meta_final(const struct model *m, const char *path,
                         const struct apr_write_opts *o, struct sbuf *meta, struct err *e)
{
    struct sbuf late = SBUF_INIT(UINT32_MAX);

    if (o->meta_final(o->meta_final_ctx, e) || build_metadata(m, &late, e)) {
        sbuf_release(&late);
        err_prefix(e, "%s", path);
        return -1;
    }
    if (late.len != meta->len) {
        ERR(e, ERR_INTERNAL, "%s: the metadata changed from %zu to %zu bytes after the "
            "data was written", path, meta->len, late.len);
        sbuf_release(&late);
        return -1;
    }
    sbuf_release(meta);
    *meta = late;
    return 0;
}

/* The front (header, metadata, index at offset 0), then the footer: the CRC of every
 * byte before it, the front joined to the data. */
static int aw_front(struct wr *w, const uint8_t *hdr, const struct sbuf *meta,
                    const uint8_t *index, const struct aw_layout *L,
                    const struct apr_write_opts *o, struct err *e)
{
    uint8_t foot[APR_FOOTER_SIZE], *head;
    uint32_t dcrc = 0;
    int rc = -1;

    if (wr_data_crc(w, o, &dcrc, e))
        return -1;
    head = calloc(1, (size_t)L->data_off); /* >= 64 */
    if (!head)
        return ERR(e, ERR_NOMEM, "out of memory for %llu bytes of metadata and index",
                   (unsigned long long)L->data_off);
    memcpy(head, hdr, APR_HEADER_SIZE);
    memcpy(head + APR_HEADER_SIZE, meta->p, meta->len);
    if (L->index_size)
        memcpy(head + L->index_off, index, (size_t)L->index_size);
    if (ofile_pwrite(&w->f, head, (size_t)L->data_off, 0, e) == 0) {
        put_le32(foot, crc_combine(apr__crc(0, head, L->data_off), dcrc,
                                   w->f.pos - L->data_off));
        rc = wr_put(w, foot, sizeof foot, e) || ofile_flush(&w->f, e) ? -1 : 0;
    }
    free(head);
    return rc;
}

int apr_write(const struct model *m, const char *path, const struct apr_write_opts *o,
              struct err *e)
{
    static const struct apr_write_opts defaults;
    const uint16_t refused = APR_FLAG_LZ4 | APR_FLAG_ZSTD | APR_FLAG_ENCRYPTED |
                             APR_FLAG_COLUMN_MAJOR;
    struct sbuf meta = SBUF_INIT(UINT32_MAX);
    struct aw_layout L;
    uint8_t *index = NULL, hdr[APR_HEADER_SIZE];
    struct wr w = { OFILE_INIT, 0, 0, NULL, 0, 0 };
    int rc = -1;

    memset(&L, 0, sizeof L);
    if (!o)
        o = &defaults;
    if (o->extra_flags & refused)
        return ERR(e, ERR_USAGE, "%s: APR flags 0x%04x would make the file unreadable", path,
                   o->extra_flags & refused);
    if (m->n_tensors > UINT32_MAX)
        return ERR(e, ERR_LIMIT, "%s: %llu tensors do not fit APR's u32 count", path,
                   (unsigned long long)m->n_tensors);
    if (aw_plan(m, path, o, &L, e))
        goto out;
    if (build_metadata(m, &meta, e)) {
        err_prefix(e, "%s", path);
        goto out;
    }
    if (sz_align(APR_HEADER_SIZE + (uint64_t)meta.len, APR_ALIGN, &L.index_off) ||
        sz_align(L.index_off + L.index_size, APR_ALIGN, &L.data_off)) {
        ERR(e, ERR_LIMIT, "%s: model too large for APR offsets", path);
        goto out;
    }
    if (!(index = aw_index(m, o, &L, e)) || aw_header(m, path, o, &L, meta.len, hdr, e))
        goto out;
    if (ofile_open(&w.f, path, 0, e) || ofile_buffer(&w.f, WR_BUF, e))
        goto out;
    w.f.copy_min = WR_BUF / 4;
    if (aw_data(&w, m, o, &L, e) ||
        (o->meta_final && (aw_sync_data(&w, e) || aw_meta_final(m, path, o, &meta, e))) ||
        aw_front(&w, hdr, &meta, index, &L, o, e) || ofile_commit(&w.f, e))
        goto out;
    rc = 0;
out:
    ofile_abort(&w.f);
    free(w.parts);
    sbuf_release(&meta);
    free(index);
    aw_layout_release(&L);
    return rc;
}
