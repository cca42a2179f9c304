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

/* Gather outer rows [r0, r0+n) of p's source (permuted) into a contiguous buffer. */
const uint8_t * cv_gather(struct cv *c, const struct tplan *p, int64_t r0, int64_t n,
                             size_t row_bytes, struct err *e)
{
    const uint8_t *s = p->src->data;
    if (!p->perm)
        return s + (size_t)r0 * row_bytes;
    if (grow(&c->bbuf2, &c->bcap2, (size_t)n * row_bytes, e))
        return NULL;
    for (int64_t r = 0; r < n; r++)
        memcpy(c->bbuf2 + (size_t)r * row_bytes, s + (size_t)cv_src_row(p, r0 + r) * row_bytes,
               row_bytes);
    return c->bbuf2;
}

#define RD_CHUNK ((size_t)4 << 20)

/* A descriptor on the file holding t, or -1 (then the mapping is used). */
static int src_fd(struct cv *c, const struct model_tensor *t)
{
    const char *path;
    if (t->file >= c->src.n_files || !c->src.files[t->file].mapped)
        return -1;
    if (!c->fds) {
        c->fds = malloc(c->src.n_files * sizeof *c->fds);
        if (!c->fds)
            return -1;
        for (uint32_t i = 0; i < c->src.n_files; i++)
            c->fds[i] = -2;
    }
    if (c->fds[t->file] == -2) {
        path = c->src.files[t->file].path;
        c->fds[t->file] = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (c->fds[t->file] >= 0)
            posix_fadvise(c->fds[t->file], 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    return c->fds[t->file];
}

static int produce(struct cv *c, const struct tplan *p, sink_fn put, copy_fn cp, void *out,
                   struct err *e)
{
    const struct model_tensor *t = p->src;
    int64_t rows = t->n_dims >= 1 ? t->shape[0] : 1;
    size_t row_bytes;

    if (t->size == 0)
        return 0;
    if (t->n_dims <= 1 && !p->perm)
        rows = 1;                     /* 1-D: one "row"; chunked below */
    row_bytes = (size_t)(t->size / (uint64_t)rows);
    if (!p->converted && !p->perm) {
        /* Unchanged bytes: file to file where the writer can (cp), else pread() into
         * one reused buffer (faster than faulting the mapping in page by page inside
         * write(), and no RSS growth) */
        int fd = src_fd(c, t);
        if (fd >= 0 && cp) {
            /* The writer has the kernel copy the bytes (copy_file_range) and reads the
             * mapping at most for a CRC: drop those pages behind it */
            for (uint64_t off = 0; off < t->size; off += CHUNK) {
                size_t n = t->size - off > CHUNK ? CHUNK : (size_t)(t->size - off);
                if (cv_cancelled(c, e) || cp(out, fd, t->off + off, t->data + off, n, e))
                    return -1;
                cv_drop_pages(t->data + off, n);
                progress_add(&c->prog, n);
            }
            return 0;
        }
        if (fd >= 0 && grow(&c->bbuf, &c->bcap, RD_CHUNK, e) == 0) {
            for (uint64_t off = 0; off < t->size;) {
                size_t n = t->size - off > RD_CHUNK ? RD_CHUNK : (size_t)(t->size - off);
                ssize_t k = pread(fd, c->bbuf, n, (off_t)(t->off + off));
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0)
                    return ERR_SYS(e, "cannot read %s", c->src.files[t->file].path);
                if (cv_cancelled(c, e) || put(out, c->bbuf, (size_t)k, e))
                    return -1;
                off += (uint64_t)k;
                progress_add(&c->prog, (uint64_t)k);
            }
            return 0;
        }
        err_clear(e);
        for (uint64_t off = 0; off < t->size; off += CHUNK) {
            size_t n = t->size - off > CHUNK ? CHUNK : (size_t)(t->size - off);
            if (cv_cancelled(c, e) || put(out, t->data + off, n, e))
                return -1;
            cv_drop_pages(t->data + off, n);
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
        cv_drop_pages(t->data, t->size);
        return 0;
    }
    /* dtype change: dequantize a batch of rows to f32, quantize to the target */
    {
        const struct dtype_info *sd = dtype_get(t->dtype), *dd = dtype_get(p->dtype);
        int64_t row_elems = t->n_elems / rows, per_row, batch, lcm = 256;
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
                if (dq_to_f32(t->dtype, t->data + so, sn, c->fbuf, n, c->n_threads, e) ||
                    dq_quantize_mt(p->dtype, c->fbuf, c->bbuf, 1, n, c->n_threads, e) ||
                    cv_cancelled(c, e) || put(out, c->bbuf, (size_t)dn, e))
                    return -1;
                progress_add(&c->prog, sn);
            }
            cv_drop_pages(t->data, t->size);
            return 0;
        }
        (void)sd;
        (void)lcm;
        per_row = t->shape[t->n_dims - 1];
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
                dq_quantize_mt(p->dtype, c->fbuf, c->bbuf, ne / per_row, per_row, c->n_threads, e) ||
                cv_cancelled(c, e) || put(out, c->bbuf, (size_t)dn, e))
                return -1;
            progress_add(&c->prog, (uint64_t)n * row_bytes);
        }
        (void)dd;
        cv_drop_pages(t->data, t->size);
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

static int copy_gguf(void *o, int fd, uint64_t off, const void *p, size_t n, struct err *e)
{
    return gguf_out_copy(o, fd, off, p, n, e);
}

int cv_td_gguf(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                   struct err *e)
{
    struct cv *c = ctx;
    (void)m;
    if (produce(c, &c->tp[i], put_gguf, copy_gguf, out, e)) {
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
    if (produce(c, &c->tp[i], put_apr, copy_apr, out, e)) {
        err_prefix(e, "tensor '%s'", c->tp[i].name);
        return -1;
    }
    return 0;
}

int cv_td_st(void *ctx, const struct model *m, uint64_t i, struct st_out *out, struct err *e)
{
    struct cv *c = ctx;
    (void)m;
    if (produce(c, &c->tp[i], put_st, NULL, out, e)) {
        err_prefix(e, "tensor '%s'", c->tp[i].name);
        return -1;
    }
    return 0;
}
