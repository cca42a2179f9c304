/*
 * apr_read.c - the APR v2 reader (aprender's container; reference/apr.md section 2).
 *
 * Byte layout, all integers little-endian (u64 fields are not naturally aligned):
 *
 *    0 +--------------------------------------------------------------+
 *      | magic "APR\0" (legacy "APR2")      4 | major u8 | minor u8   |
 *      | flags u16 (0x0400 = row major)       | tensor_count u32      |
 *   12 | metadata_offset u64 (64)             | metadata_size u32     |
 *   24 | tensor_index_offset u64              | data_offset u64       |
 *   40 | header CRC-32 u32 over [0,40) || [44,64)                     |
 *   44 | reserved, 20 zero bytes                                      |
 *   64 +--------------------------------------------------------------+
 *      | metadata: compact JSON object, metadata_size bytes,          |
 *      | zero-padded to 64                                            |
 *      +--------------------------------------------------------------+ tensor_index_offset
 *      | index entry, packed, sorted bytewise by name, tensor_count:  |
 *      |   name_len u16 | name | dtype u8 | ndim u8 | dims u64[ndim]  |
 *      |   (outermost first) | offset u64 (from data_offset) | size u64|
 *      | ... zero-padded to 64                                        |
 *      +--------------------------------------------------------------+ data_offset
 *      | tensor data, each zero-padded to 64                          |
 *      +--------------------------------------------------------------+
 *      | footer: CRC-32 u32 of every byte before it                   |
 *      +--------------------------------------------------------------+
 *
 * What we check, in order (validate, then trust): magic (APR v1 refused); the 64-byte
 * header; the header CRC; the flags (compression, encryption and column-major refused);
 * the sections inside the file and in order (header < metadata <= index <= data);
 * the metadata, a JSON object (json_parse checks syntax, UTF-8, duplicate keys); the
 * tensor count against the index bytes before allocating; per entry: non-empty name,
 * known dtype code, ndim <= 8, dims < 2^63 with a checked product, size equal to the
 * dtype's byte count for the shape, data inside the file; names strictly increasing
 * (sorted, hence unique); no overlapping data (model__check_tensors).  Misaligned
 * sections or tensors are accepted with a note, since data is located by offsets.
 * The footer CRC is checked last; a mismatch or a truncated footer is a note, not an
 * error (aprender and realizar never check it and the index stays usable), unless the
 * caller asks for it (apr_read_opts.verify, apr_check_integrity).
 */
#include "apr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../common/stream.h"
#include "../../common/json.h"
#include "../../common/rd.h"
#include "../../common/sz.h"
#include "../model_json.h"
#include "apr_impl.h"
#include "../../common/banned.h"

struct apr_hdr {
    uint8_t  major, minor;
    uint16_t flags;
    uint32_t n_tensors;
    uint64_t meta_off;
    uint32_t meta_size;
    uint64_t index_off;
    uint64_t data_off;
    uint32_t crc;
    int      ext_codes;   /* ENCRYPTED + the apr_tools.dtype_ext marker: extension codes */
};

/* A printable copy of a name from the file, for messages: control and non-ASCII
 * bytes become \xNN and long names are cut, so a hostile name cannot reach a
 * terminal raw.  buf must hold 96 bytes. */
static const char *pname(char *buf, struct slice s)
{
    size_t o = 0;

    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (o + 8 >= 96) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, 96 - o, "\\x%02x", c);
    }
    buf[o] = 0;
    return buf;
}

static int read_magic(struct model *m, struct rd *r, struct err *e)
{
    const uint8_t *mg;

    if (rd_left(r) < 4)
        return ERR_OFF(e, ERR_FORMAT, 0, "%s: file too short for an APR header (%llu bytes)",
                       m->path, (unsigned long long)rd_left(r));
    if (rd_bytes(r, 4, &mg, "magic", e))
        return -1;
    if (memcmp(mg, "APR", 3) != 0)
        return ERR_OFF(e, ERR_FORMAT, 0, "%s: not an APR file (bad magic)", m->path);
    if (mg[3] == 'N' || mg[3] == '1')
        return ERR_OFF(e, ERR_UNSUPPORTED, 0,
                       "%s: APR v1 file (magic 'APR%c'): only APR v2 (magic 'APR\\0' or 'APR2') "
                       "is supported", m->path, mg[3]);
    if (mg[3] == '2') {
        m->apr_magic_legacy = 1;
        model__note(m, "legacy magic 'APR2' (current aprender writes and reads only 'APR\\0')");
    } else if (mg[3] != 0) {
        return ERR_OFF(e, ERR_FORMAT, 3, "%s: unknown APR magic byte 0x%02x", m->path, mg[3]);
    }
    return 0;
}

static int read_header(struct model *m, struct rd *r, const struct apr_read_opts *o,
                       struct apr_hdr *h, struct err *e)
{
    const uint8_t *hb = r->base;
    uint64_t n = r->size, meta_end;
    uint32_t want;

    if (read_magic(m, r, e))
        return -1;
    if (n < APR_HEADER_SIZE)
        return ERR_OFF(e, ERR_FORMAT, n, "%s: truncated header: need %u bytes, file has %llu",
                       m->path, APR_HEADER_SIZE, (unsigned long long)n);
    if (rd_u8(r, &h->major, "version", e) || rd_u8(r, &h->minor, "version", e) ||
        rd_u16(r, &h->flags, "flags", e) || rd_u32(r, &h->n_tensors, "tensor count", e) ||
        rd_u64(r, &h->meta_off, "metadata offset", e) ||
        rd_u32(r, &h->meta_size, "metadata size", e) ||
        rd_u64(r, &h->index_off, "tensor index offset", e) ||
        rd_u64(r, &h->data_off, "data offset", e) || rd_u32(r, &h->crc, "header checksum", e))
        return -1;

    /* hb[0..64) is in bounds: n >= APR_HEADER_SIZE was checked above. */
    want = apr__header_crc(hb);
    m->apr_header_crc_ok = want == h->crc;
    if (want != h->crc && !(o && o->skip_header_crc))
        return ERR_OFF(e, ERR_FORMAT, APR_CRC_OFF,
                       "%s: header checksum mismatch: stored 0x%08x, computed 0x%08x", m->path,
                       h->crc, want);

    if (h->flags & APR_FLAG_COLUMN_MAJOR)
        return ERR_OFF(e, ERR_UNSUPPORTED, 6,
                       "%s: column-major layout (flag 0x0800) is not supported (aprender "
                       "forbids it)", m->path);
    if (h->flags & (APR_FLAG_LZ4 | APR_FLAG_ZSTD))
        return ERR_OFF(e, ERR_UNSUPPORTED, 6, "%s: %s-compressed APR files are not supported",
                       m->path, h->flags & APR_FLAG_LZ4 ? "LZ4" : "zstd");
    /* ENCRYPTED is refused after the metadata is read (read_metadata): apr-convert
     * --lossless sets it, with a metadata marker, so that realizar refuses extension
     * dtype codes instead of misreading them (apr.h APR_EXT_KEY). */
    if (h->flags & APR_FLAG_SIGNED)
        model__note(m, "flag SIGNED is set: the signature is not checked");
    if (h->flags & 0xF000)
        model__note(m, "unknown header flag bits 0x%04x", h->flags & 0xF000);
    if (h->major != 2)
        model__note(m, "unexpected version %u.%u (aprender does not check it)", h->major,
                    h->minor);

    /* Sections inside the file and in order: header < metadata <= index <= data <= EOF. */
    if (h->meta_off < APR_HEADER_SIZE)
        return ERR_OFF(e, ERR_FORMAT, 12, "%s: metadata offset %llu inside the header", m->path,
                       (unsigned long long)h->meta_off);
    if (!sz_range_ok(h->meta_off, h->meta_size, n))
        return ERR_OFF(e, ERR_FORMAT, 12,
                       "%s: metadata at %llu (%u bytes) past end of file (%llu bytes)", m->path,
                       (unsigned long long)h->meta_off, h->meta_size, (unsigned long long)n);
    meta_end = h->meta_off + h->meta_size;   /* no overflow: sz_range_ok above */
    if (h->index_off < meta_end)
        return ERR_OFF(e, ERR_FORMAT, 24,
                       "%s: tensor index offset %llu overlaps the metadata [%llu, %llu)", m->path,
                       (unsigned long long)h->index_off, (unsigned long long)h->meta_off,
                       (unsigned long long)meta_end);
    if (h->index_off > n)
        return ERR_OFF(e, ERR_FORMAT, 24,
                       "%s: tensor index offset %llu past end of file (%llu bytes)", m->path,
                       (unsigned long long)h->index_off, (unsigned long long)n);
    if (h->data_off < h->index_off)
        return ERR_OFF(e, ERR_FORMAT, 32,
                       "%s: data offset %llu before the tensor index offset %llu", m->path,
                       (unsigned long long)h->data_off, (unsigned long long)h->index_off);
    if (h->data_off > n)
        return ERR_OFF(e, ERR_FORMAT, 32, "%s: data offset %llu past end of file (%llu bytes)",
                       m->path, (unsigned long long)h->data_off, (unsigned long long)n);
    if (h->meta_off % APR_ALIGN || h->index_off % APR_ALIGN || h->data_off % APR_ALIGN)
        model__note(m, "sections not 64-byte aligned (metadata %llu, index %llu, data %llu)",
                    (unsigned long long)h->meta_off, (unsigned long long)h->index_off,
                    (unsigned long long)h->data_off);
    return 0;
}

/* Every top-level key of the metadata object becomes a kv, in file order. */
static int read_metadata(struct model *m, struct rd *r, struct apr_hdr *h, struct err *e)
{
    struct json_doc d;
    const uint8_t *p;
    int rc;

    if (h->meta_size == 0 && (h->flags & APR_FLAG_ENCRYPTED))
        return ERR_OFF(e, ERR_UNSUPPORTED, 6, "%s: encrypted APR files are not supported",
                       m->path);
    if (h->meta_size == 0)
        return 0;
    if (rd_seek(r, h->meta_off, "metadata", e) || rd_bytes(r, h->meta_size, &p, "metadata", e))
        return -1;
    if (json_parse(&d, (const char *)p, h->meta_size, h->meta_off, m->path, e))
        return -1;
    if (d.tok[0].type != JSMN_OBJECT) {
        json_release(&d);
        return ERR_OFF(e, ERR_FORMAT, h->meta_off, "%s: metadata is not a JSON object",
                       m->path);
    }
    rc = model__json_obj(m, &d, 0, &m->kv, &m->n_kv, 0, e);
    json_release(&d);
    if (rc == 0 && (h->flags & APR_FLAG_ENCRYPTED)) {
        struct slice v;
        if (model_kv_get_str(m, APR_EXT_KEY, &v) != 0 || !slice_eq_cstr(v, APR_EXT_VALUE))
            return ERR_OFF(e, ERR_UNSUPPORTED, 6, "%s: encrypted APR files are not supported",
                           m->path);
        h->ext_codes = 1;
    }
    return rc;
}

/* One index entry at the cursor of r (origin = file offset of the index). */
static int read_entry(struct model *m, struct rd *r, const struct apr_hdr *h, uint64_t i,
                      struct model_tensor *t, struct err *e)
{
    const uint64_t eoff = r->origin + r->off, fsize = m->files[0].size;
    const uint8_t *np;
    uint16_t name_len;
    uint8_t code, ndim;
    uint64_t rel, size, want, abs;
    int64_t n_elems = 1;
    struct err de = ERR_INIT;
    char nb[96];
    int dt;

    if (rd_u16(r, &name_len, "tensor name length", e))
        return -1;
    if (name_len == 0)
        return ERR_OFF(e, ERR_FORMAT, eoff, "%s: tensor %llu: empty name", m->path,
                       (unsigned long long)i);
    if (rd_bytes(r, name_len, &np, "tensor name", e))
        return -1;
    t->name.p = (const char *)np;   /* borrowed from the mapping m owns */
    t->name.n = name_len;
    pname(nb, t->name);
    if (rd_u8(r, &code, "tensor dtype", e) || rd_u8(r, &ndim, "tensor ndim", e))
        return -1;
    dt = dtype_from_apr(code);
    if (dt < 0 && h->ext_codes && code >= APR_EXT_CODE_BASE) {
        dt = dtype_from_ggml((uint32_t)(code - APR_EXT_CODE_BASE));
        if (dt >= 0 && dtype_get(dt)->apr_code >= 0)
            dt = -1;   /* a type with a real code never uses an extension code */
    }
    if (dt < 0)
        return ERR_OFF(e, ERR_FORMAT, eoff + 2 + name_len,
                       "%s: tensor '%s': unknown dtype code %u%s", m->path, nb, code,
                       code == 2 ? " (2 was BF16 in early-2026 aprender; ambiguous, refused)" : "");
    if (ndim > APR_MAX_DIMS)
        return ERR_OFF(e, ERR_FORMAT, eoff + 3 + name_len,
                       "%s: tensor '%s': %u dimensions (at most %u)", m->path, nb, ndim,
                       APR_MAX_DIMS);
    for (int k = 0; k < MODEL_MAX_DIMS; k++)
        t->shape[k] = 1;
    for (unsigned k = 0; k < ndim; k++) {
        uint64_t dim;
        uint64_t doff = r->origin + r->off;
        if (rd_u64(r, &dim, "tensor dim", e))
            return -1;
        if (dim > (uint64_t)INT64_MAX || sz_mul_i64(n_elems, (int64_t)dim, &n_elems))
            return ERR_OFF(e, ERR_FORMAT, doff,
                           "%s: tensor '%s': dim %u = %llu overflows the element count", m->path,
                           nb, k, (unsigned long long)dim);
        t->shape[k] = (int64_t)dim;
    }
    if (rd_u64(r, &rel, "tensor offset", e) || rd_u64(r, &size, "tensor size", e))
        return -1;
    if (dtype_nbytes(dt, n_elems, &want, &de))
        return ERR_OFF(e, ERR_FORMAT, eoff, "%s: tensor '%s': %s", m->path, nb, de.msg);
    if (size != want)
        return ERR_OFF(e, ERR_FORMAT, r->origin + r->off - 8,
                       "%s: tensor '%s': size %llu does not match its shape (%lld %s elements "
                       "take %llu bytes)", m->path, nb, (unsigned long long)size,
                       (long long)n_elems, dtype_name(dt), (unsigned long long)want);
    if (sz_add(h->data_off, rel, &abs) || !sz_range_ok(abs, size, fsize))
        return ERR_OFF(e, ERR_FORMAT, r->origin + r->off - 16,
                       "%s: tensor '%s': data at data offset + %llu (%llu bytes) past end of "
                       "file (%llu bytes)", m->path, nb, (unsigned long long)rel,
                       (unsigned long long)size, (unsigned long long)fsize);
    t->dtype = dt;
    t->stored_dtype = code;
    t->n_dims = ndim;
    t->n_elems = n_elems;
    t->size = size;
    t->rel_off = rel;
    t->off = abs;
    t->data = m->files[0].data + abs;   /* in bounds: sz_range_ok above */
    t->file = 0;
    return 0;
}

static int read_index(struct model *m, struct rd *fr, const struct apr_hdr *h, struct err *e)
{
    uint64_t index_size = h->data_off - h->index_off;   /* >= 0: read_header checked order */
    uint64_t min_bytes = (uint64_t)h->n_tensors * APR_ENTRY_MIN, misaligned = 0, legacy = 0;
    const struct model_tensor *first_mis = NULL;
    const uint8_t *ip;
    struct rd r;
    char na[96], nb[96];

    if (min_bytes > index_size)
        return ERR_OFF(e, ERR_FORMAT, 8,
                       "%s: tensor count %u needs at least %llu index bytes, the index has %llu",
                       m->path, h->n_tensors, (unsigned long long)min_bytes,
                       (unsigned long long)index_size);
    if (h->n_tensors == 0)
        return 0;
    m->tensors = calloc(h->n_tensors, sizeof *m->tensors);
    if (!m->tensors)
        return ERR(e, ERR_NOMEM, "%s: out of memory for %u tensors", m->path, h->n_tensors);
    if (rd_seek(fr, h->index_off, "tensor index", e) ||
        rd_bytes(fr, index_size, &ip, "tensor index", e))
        return -1;
    rd_init(&r, ip, index_size, m->path);
    r.origin = h->index_off;
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        struct model_tensor *t = &m->tensors[i];
        uint64_t eoff = r.origin + r.off;
        if (read_entry(m, &r, h, i, t, e))
            return -1;
        m->n_tensors = i + 1;
        if (i > 0) {
            int c = slice_cmp(t[-1].name, t->name);
            if (c == 0)
                return ERR_OFF(e, ERR_FORMAT, eoff, "%s: duplicate tensor name '%s'", m->path,
                               pname(na, t->name));
            if (c > 0)
                return ERR_OFF(e, ERR_FORMAT, eoff,
                               "%s: tensor index not sorted: '%s' after '%s'", m->path,
                               pname(nb, t->name), pname(na, t[-1].name));
        }
        if (t->off % APR_ALIGN && !misaligned++)
            first_mis = t;
        legacy += t->stored_dtype == 8 || t->stored_dtype == 9;
    }
    if (misaligned)
        model__note(m, "%llu tensors are not 64-byte aligned (first: '%s')",
                    (unsigned long long)misaligned, pname(na, first_mis->name));
    if (legacy)
        model__note(m, "%llu tensors use legacy dtype codes 8/9 (now 128/129: APR_Q4/APR_Q8)",
                    (unsigned long long)legacy);
    return model__check_tensors(m, e);
}

/* CRC-32 of the first n bytes of f: a mapped file is streamed (pread, read-ahead); wrapped
 * memory, or a file that shrank under us, is read in place in chunks, a mapping's pages
 * dropped once done so that the resident set stays small for multi-GB files (the mapping
 * is private and never written, so the pages simply fault in again from the page cache
 * if needed). */
static uint32_t crc_prefix(const struct mfile *f, uint64_t n)
{
    const uint64_t chunk = (uint64_t)64 << 20;
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t done = 0;
    uint32_t crc = 0;

    if (f->mapped) {
        /* streamed (common/stream.h): pread into reused buffers beats faulting the mapping
         * in (page-table work) and keeps the resident set at two buffers */
        struct stream st;
        struct err e = ERR_INIT;
        const uint8_t *p;
        size_t k;
        int rc = -1;
        stream_open(&st, f, 0, STREAM_AHEAD, &e);
        if (stream_begin(&st, 0, n, &e) == 0)
            while ((rc = stream_next(&st, &p, &k, &e)) == 1)
                crc = apr__crc(crc, p, k);
        stream_close(&st);
        if (rc == 0)
            return crc;
        crc = 0;   /* the file shrank under us: its bytes as mapped decide (a mismatch) */
        madvise((void *)f->data, (size_t)f->size, MADV_SEQUENTIAL);
    }
    while (done < n) {
        uint64_t k = n - done;
        if (k > chunk)
            k = chunk;
        if (f->mapped && pg > 0)
            madvise((void *)(f->data + done), (size_t)k, MADV_WILLNEED);
        crc = apr__crc(crc, f->data + done, k);
        if (f->mapped && pg > 0 && k == chunk)
            madvise((void *)(f->data + done), (size_t)k, MADV_DONTNEED);
        done += k;
    }
    return crc;
}

/* The offset where the footer belongs (see below); *rel_end = the furthest tensor end
 * relative to data_off. */
static uint64_t footer_at(const struct model *m, uint64_t *rel_end)
{
    uint64_t end = 0;

    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[i];
        /* no overflow: read_entry checked data_off + rel_off + size <= file size */
        if (t->off + t->size - m->data_off > end)
            end = t->off + t->size - m->data_off;
    }
    *rel_end = end;
    return m->data_off + ((end + APR_ALIGN - 1) & ~(uint64_t)(APR_ALIGN - 1));
}

/*
 * Where the footer must be: the data section holds every tensor padded to 64 bytes
 * (offsets relative to data_off), so the footer starts at data_off + align64(the
 * furthest tensor end) and the file is 4 bytes longer than that.  A file shorter than
 * that lost its footer or part of the padding before it: it is truncated, unless its
 * last 4 bytes still checksum everything before them (a writer that did not pad the
 * last tensor), which is accepted with a note.
 */
int apr_footer_verify(struct model *m)
{
    const struct mfile *f = &m->files[0];
    uint64_t rel_end = 0, padded, n = f->size;
    uint32_t stored = 0, crc;
    struct rd r;

    padded = footer_at(m, &rel_end);
    if (n - (m->data_off + rel_end) >= APR_FOOTER_SIZE) {
        rd_init(&r, f->data, n, f->path);
        if (rd_seek(&r, n - APR_FOOTER_SIZE, "footer", NULL) ||
            rd_u32(&r, &stored, "footer", NULL))
            return m->apr_footer_crc_ok = APR_FOOTER_TRUNCATED;   /* unreachable */
        crc = crc_prefix(f, n - APR_FOOTER_SIZE);
        if (crc == stored && n < padded + APR_FOOTER_SIZE) {
            model__note(m, "the last tensor is not padded to 64 bytes before the footer");
            return m->apr_footer_crc_ok = APR_FOOTER_OK;
        }
        if (n >= padded + APR_FOOTER_SIZE) {
            if (n > padded + APR_FOOTER_SIZE)
                model__note(m, "%llu unexpected bytes between the padded tensor data (ends at "
                               "%llu) and the footer", (unsigned long long)(n - padded - 4),
                            (unsigned long long)padded);
            m->apr_footer_crc_ok = crc == stored;
            if (crc != stored)
                model__note(m, "footer checksum mismatch: stored 0x%08x, computed 0x%08x (the "
                               "tensor index is still usable)", stored, crc);
            return m->apr_footer_crc_ok;
        }
    }
    model__note(m, "truncated: the file is %llu bytes, the padded tensor data and the footer "
                   "checksum need %llu (the tensor data itself is complete)",
                (unsigned long long)n, (unsigned long long)(padded + APR_FOOTER_SIZE));
    return m->apr_footer_crc_ok = APR_FOOTER_TRUNCATED;
}

int apr_check_integrity(struct model *m, struct err *e)
{
    const char *p = m->files && m->n_files ? m->files[0].path : m->path;

    if (m->format != MODEL_FMT_APR)
        return 0;
    if (!m->apr_header_crc_ok)
        return ERR_OFF(e, ERR_FORMAT, APR_CRC_OFF,
                       "%s: corrupt APR file: header checksum mismatch", p);
    if (m->apr_footer_crc_ok == APR_FOOTER_UNCHECKED)
        apr_footer_verify(m);
    switch (m->apr_footer_crc_ok) {
    case APR_FOOTER_OK:
        return 0;
    case APR_FOOTER_MISMATCH:
        return ERR_OFF(e, ERR_FORMAT, m->files[0].size - APR_FOOTER_SIZE,
                       "%s: corrupt APR file (its bytes changed after it was written): footer "
                       "checksum mismatch, stored 0x%08x", p,
                       le32(m->files[0].data + m->files[0].size - APR_FOOTER_SIZE));
    default: {
        uint64_t rel_end, padded = footer_at(m, &rel_end);
        return ERR_OFF(e, ERR_FORMAT, m->files[0].size,
                       "%s: truncated APR file: it ends at byte %llu, but the tensor data padded "
                       "to 64 bytes ends at %llu and a 4-byte footer checksum follows it",
                       p, (unsigned long long)m->files[0].size, (unsigned long long)padded);
    }
    }
}

static int parse(struct model *m, const struct apr_read_opts *o, struct err *e)
{
    const struct mfile *f = &m->files[0];
    struct apr_hdr h;
    struct rd r;

    memset(&h, 0, sizeof h);
    rd_init(&r, f->data, f->size, f->path);
    if (read_header(m, &r, o, &h, e) || read_metadata(m, &r, &h, e) || read_index(m, &r, &h, e))
        return -1;
    m->version = h.major;
    m->version_minor = h.minor;
    m->apr_flags = h.flags;
    m->alignment = APR_ALIGN;
    m->data_off = h.data_off;
    m->header_size = h.data_off;
    m->total_size = f->size;
    if (o && o->skip_footer_crc && !o->verify)
        m->apr_footer_crc_ok = APR_FOOTER_UNCHECKED;
    else
        apr_footer_verify(m);
    if (o && o->verify)
        return apr_check_integrity(m, e);
    return 0;
}

/* apr_open_opts (buf NULL: map path) and apr_open_mem_opts (wrap buf); see model__init_file. */
static int open_file(struct model *m, const char *path, const void *buf, size_t n,
                     const struct apr_read_opts *o, struct err *e)
{
    if (model__init_file(m, MODEL_FMT_APR, path, buf, n, e))
        return -1;
    if (parse(m, o, e)) {
        model_close(m);
        return -1;
    }
    return 0;
}

int apr_open_opts(struct model *m, const char *path, const struct apr_read_opts *o,
                  struct err *e)
{
    return open_file(m, path, NULL, 0, o, e);
}

int apr_open_mem_opts(struct model *m, const void *buf, size_t n, const char *name,
                      const struct apr_read_opts *o, struct err *e)
{
    return open_file(m, name, buf ? buf : "", n, o, e);
}

int apr_open(struct model *m, const char *path, struct err *e)
{
    return apr_open_opts(m, path, NULL, e);
}

int apr_open_mem(struct model *m, const void *buf, size_t n, const char *name, struct err *e)
{
    return apr_open_mem_opts(m, buf, n, name, NULL, e);
}
