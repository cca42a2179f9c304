/*
 * data.c - producing tensor data: bytes copied, permuted or converted, streamed to the writer.
 */
#include "convert_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "../common/json.h"
#include "../common/path.h"
#include "../common/rd.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../formats/model_json.h"
#include "../common/banned.h"

/* Drop the pages of a read-only file mapping behind the reader (RSS stays bounded).
 * Only ever called on model data, which is always a MAP_PRIVATE read-only file map. */
void cv_drop_pages(const void *p, size_t n)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p, b = a + n;
    a = (a + pg - 1) & ~(pg - 1);
    b &= ~(pg - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- producing tensor data */

typedef int (*sink_fn)(void *out, const void *p, size_t n, struct err *e);
/* n bytes at p that are also [off, off+n) of fd: the writer may copy file to file. */
typedef int (*copy_fn)(void *out, int fd, uint64_t off, const void *p, size_t n,
                       struct err *e);

static int grow(uint8_t **b, size_t *cap, size_t n, struct err *e)
{
    if (n <= *cap)
        return 0;
    free(*b);
    *b = malloc(n);
    *cap = *b ? n : 0;
    return *b ? 0 : ERR(e, ERR_NOMEM, "out of memory for a %zu-byte buffer", n);
}

/* Source row r of p (after the permutation, when there is one). */
int64_t  cv_src_row(const struct tplan *p, int64_t r)
{
    return p->perm ? names_perm_row(r, p->src->shape[0], p->n_head, p->perm == 1) : r;
}

/* The stream that reads the source's tensors (opened on first use, kept for the run). */
static struct stream *cv_stream(struct cv *c)
{
    struct err z = ERR_INIT;

    if (!c->st_open) {
        stream_open(&c->st, NULL, 0, STREAM_AHEAD, &z);
        c->st_open = 1;
    }
    return &c->st;
}

/* The mfile holding t's bytes, or NULL when they lie in none (then they are read in place). */
static const struct mfile *src_mfile(const struct cv *c, const struct model_tensor *t)
{
    const struct mfile *mf;

    if (t->file >= c->src.n_files)
        return NULL;
    mf = &c->src.files[t->file];
    if (!mf->data || t->data < mf->data || t->size > mf->size ||
        (uint64_t)(t->data - mf->data) > mf->size - t->size)
        return NULL;
    return mf;
}

/* [p, p+n) of the source tensor t (p inside t), read through the stream (stream_view). */
static const uint8_t *src_view(struct cv *c, const struct model_tensor *t, const uint8_t *p,
                               size_t n, struct err *e)
{
    const struct mfile *mf = src_mfile(c, t);
    return mf ? stream_view(cv_stream(c), mf, p, n, e) : p;
}

/* Gather outer rows [r0, r0+n) of p's source (permuted) into a contiguous buffer. */
const uint8_t * cv_gather(struct cv *c, const struct tplan *p, int64_t r0, int64_t n,
                             size_t row_bytes, struct err *e)
{
    const uint8_t *s = p->src->data;
    if (!p->perm)
        return src_view(c, p->src, s + (size_t)r0 * row_bytes, (size_t)n * row_bytes, e);
    if (grow(&c->bbuf2, &c->bcap2, (size_t)n * row_bytes, e))
        return NULL;
    for (int64_t r = 0; r < n; r++) {
        const uint8_t *row = src_view(c, p->src, s + (size_t)cv_src_row(p, r0 + r) * row_bytes,
                                      row_bytes, e);
        if (!row)
            return NULL;
        memcpy(c->bbuf2 + (size_t)r * row_bytes, row, row_bytes);
    }
    return c->bbuf2;
}

static int produce(struct cv *c, const struct tplan *p, sink_fn put, copy_fn cp, copy_fn later,
                   void *out, struct err *e)
{
    const struct model_tensor *t = p->src;
    int64_t rows = t->n_dims >= 1 ? t->shape[0] : 1;
    size_t row_bytes;

    if (t->size == 0)
        return 0;
    if (t->n_dims <= 1 && !p->perm)
        rows = 1;                     /* 1-D: one "row"; chunked below */
    row_bytes = (size_t)(t->size / (uint64_t)rows);
    if (!p->converted && !p->perm && later && cv_tcrc_planned(c, t)) {
        /* Unchanged bytes whose CRC the hash pass computes (provenance.c): the kernel
         * copies them file to file and nothing here reads them.  Where it cannot copy,
         * the writer writes from the mapping; its pages are dropped behind. */
        const struct mfile *mf = &c->src.files[t->file];
        uint64_t base = (uint64_t)(t->data - mf->data);
        size_t n;

        for (uint64_t off = 0; off < t->size; off += n) {
            n = t->size - off > CHUNK ? CHUNK : (size_t)(t->size - off);
            if (cv_cancelled(c, e) || later(out, mf->fd, base + off, t->data + off, n, e))
                return -1;
            cv_drop_pages(t->data + off, n);
            progress_add(&c->prog, n);
        }
        return 0;
    }
    if (!p->converted && !p->perm) {
        /* Unchanged bytes, streamed (pread into reused buffers, read-ahead on a second
         * thread: no page faults, no RSS growth).  Where the writer can, the kernel copies
         * them file to file (copy_file_range) and the chunk read here only feeds the
         * writer's CRC; else the chunk is written. */
        const struct mfile *mf = src_mfile(c, t);
        struct stream *st = cv_stream(c);
        uint64_t base = mf ? (uint64_t)(t->data - mf->data) : 0;
        const uint8_t *q;
        size_t n;
        int rc;

        if (mf) {
            if (st->src != mf)
                stream_retarget(st, mf);
            if (stream_begin(st, base, t->size, e))
                return -1;
        }
        for (uint64_t off = 0; off < t->size; off += n) {
            if (mf) {
                rc = stream_next(st, &q, &n, e);
                if (rc < 0)
                    return -1;
                if (rc == 0)
                    return ERR(e, ERR_INTERNAL, "stream ended early");
            } else {
                q = t->data + off;
                n = t->size - off > CHUNK ? CHUNK : (size_t)(t->size - off);
            }
            if (cv_cancelled(c, e))
                return -1;
            if (mf && mf->mapped && cp ? cp(out, mf->fd, base + off, q, n, e)
                                       : put(out, q, n, e))
                return -1;
            progress_add(&c->prog, n);
        }
        return 0;
    }
    if (!p->converted) {
        int64_t batch = (int64_t)(CHUNK / row_bytes);
        if (batch < 1)
            batch = 1;
        for (int64_t r = 0; r < rows; r += batch) {
            int64_t n = rows - r < batch ? rows - r : batch;
            const uint8_t *g = cv_gather(c, p, r, n, row_bytes, e);
            if (!g || cv_cancelled(c, e) || put(out, g, (size_t)n * row_bytes, e))
                return -1;
            progress_add(&c->prog, (uint64_t)n * row_bytes);
        }
        return 0;
    }
    /* dtype change: dequantize a batch of rows to f32, quantize to the target */
    {
        const struct dtype_info *sd = dtype_get(t->dtype), *dd = dtype_get(p->dtype);
        int64_t row_elems = t->n_elems / rows, per_row, batch, lcm = 256, qw_rows;
        const struct imatrix_entry *qw;
        if (t->n_dims <= 1 && !p->perm) {
            /* 1-D: chunks of whole blocks of both types */
            int64_t chunk = CONV_ELEMS;
            uint64_t so, sn, dn;
            for (int64_t i0 = 0; i0 < t->n_elems; i0 += chunk) {
                int64_t n = t->n_elems - i0 < chunk ? t->n_elems - i0 : chunk;
                if (dtype_nbytes(t->dtype, i0, &so, e) || dtype_nbytes(t->dtype, n, &sn, e) ||
                    dtype_nbytes(p->dtype, n, &dn, e) ||
                    grow(&c->bbuf, &c->bcap, (size_t)dn, e))
                    return -1;
                const uint8_t *g = src_view(c, t, t->data + so, (size_t)sn, e);
                if (!g || dq_to_f32(t->dtype, g, sn, c->fbuf, n, c->n_threads, e) ||
                    dq_quantize_mt(p->dtype, c->fbuf, c->bbuf, 1, n, c->n_threads, e) ||
                    cv_cancelled(c, e) || put(out, c->bbuf, (size_t)dn, e))
                    return -1;
                progress_add(&c->prog, sn);
            }
            return 0;
        }
        (void)sd;
        (void)lcm;
        per_row = t->shape[t->n_dims - 1];
        qw = c->mix_qw && p->src >= c->src.tensors &&
             p->src < c->src.tensors + c->src.n_tensors ? c->mix_qw[p->src - c->src.tensors]
                                                       : NULL;
        qw_rows = t->n_dims >= 2 ? t->shape[t->n_dims - 2] : 1;
        batch = CONV_ELEMS / (row_elems ? row_elems : 1);
        if (batch < 1)
            batch = 1;
        if (row_elems > CONV_ELEMS) {
            float *nb = realloc(c->fbuf, (size_t)row_elems * sizeof *nb);
            if (!nb)
                return ERR(e, ERR_NOMEM, "out of memory");
            c->fbuf = nb;
        }
        for (int64_t r = 0; r < rows; r += batch) {
            int64_t n = rows - r < batch ? rows - r : batch, ne = n * row_elems;
            uint64_t dn;
            const uint8_t *g = cv_gather(c, p, r, n, row_bytes, e);
            if (!g || dtype_nbytes(p->dtype, ne, &dn, e) || grow(&c->bbuf, &c->bcap, (size_t)dn, e))
                return -1;
            if (dq_to_f32(t->dtype, g, (uint64_t)n * row_bytes, c->fbuf, ne, c->n_threads, e) ||
                dq_quantize_w_mt(p->dtype, c->fbuf, c->bbuf, ne / per_row, per_row,
                                 qw ? qw->v : NULL, qw && qw->n_mat > 1 ? qw_rows : 0,
                                 r * (row_elems / per_row), c->n_threads, e) ||
                cv_cancelled(c, e) || put(out, c->bbuf, (size_t)dn, e))
                return -1;
            progress_add(&c->prog, (uint64_t)n * row_bytes);
        }
        (void)dd;
        return 0;
    }
}

static int put_gguf(void *o, const void *p, size_t n, struct err *e)
{
    return gguf_out_write(o, p, n, e);
}

static int put_apr(void *o, const void *p, size_t n, struct err *e)
{
    return apr_out_write(o, p, n, e);
}

static int put_st(void *o, const void *p, size_t n, struct err *e)
{
    return st_out_write(o, p, n, e);
}

static int copy_apr(void *o, int fd, uint64_t off, const void *p, size_t n, struct err *e)
{
    return apr_out_copy(o, fd, off, p, n, e);
}

static int copy_apr_later(void *o, int fd, uint64_t off, const void *p, size_t n,
                          struct err *e)
{
    return apr_out_copy_crc_later(o, fd, off, p, n, e);
}

static int copy_gguf(void *o, int fd, uint64_t off, const void *p, size_t n, struct err *e)
{
    return gguf_out_copy(o, fd, off, p, n, e);
}

int cv_td_gguf(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                   struct err *e)
{
    struct cv *c = ctx;
    (void)m;
    if (produce(c, &c->tp[i], put_gguf, copy_gguf, NULL, out, e)) {
        err_prefix(e, "tensor '%s'", c->tp[i].name);
        return -1;
    }
    return 0;
}

int cv_td_apr(void *ctx, const struct model *m, uint64_t i, struct apr_out *out,
                  struct err *e)
{
    struct cv *c = ctx;
    (void)m;
    if (produce(c, &c->tp[i], put_apr, copy_apr, copy_apr_later, out, e)) {
        err_prefix(e, "tensor '%s'", c->tp[i].name);
        return -1;
    }
    return 0;
}

int cv_td_st(void *ctx, const struct model *m, uint64_t i, struct st_out *out, struct err *e)
{
    struct cv *c = ctx;
    (void)m;
    if (produce(c, &c->tp[i], put_st, NULL, NULL, out, e)) {
        err_prefix(e, "tensor '%s'", c->tp[i].name);
        return -1;
    }
    return 0;
}
