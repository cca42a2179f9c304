/*
 * provenance.c - the SHA-256 of the source (APR provenance), on a second thread.
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

#include "../common/crc.h"
#include "../common/json.h"
#include "../common/path.h"
#include "../common/rd.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../formats/model_json.h"
#include "../common/banned.h"

/* ---- provenance: SHA-256 of the source, on a second thread (sha_start, sha_join) */

/* A tensor's byte range in its file, for the CRCs of the hash pass. */
struct trange {
    uint64_t off, end, i;
};

static int trange_cmp(const void *a, const void *b)
{
    const struct trange *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

int cv_tcrc_planned(const struct cv *c, const struct model_tensor *t)
{
    const struct mfile *mf;

    if (!c->tcrc || t < c->src.tensors || t >= c->src.tensors + c->src.n_tensors ||
        t->file >= c->src.n_files || !c->tcrc_file[t->file])
        return 0;
    mf = &c->src.files[t->file];
    return mf->data && t->data >= mf->data && t->size <= mf->size &&
           (uint64_t)(t->data - mf->data) <= mf->size - t->size;
}

int cv_tensor_crc(void *ctx, uint64_t i, uint32_t *crc, struct err *e)
{
    struct cv *c = ctx;

    if (i >= c->n_tp || !cv_tcrc_planned(c, c->tp[i].src))
        return ERR(e, ERR_INTERNAL, "no CRC computed for tensor %llu", (unsigned long long)i);
    *crc = c->tcrc[c->tp[i].src - c->src.tensors];
    return 0;
}

/* The tensors of one file by offset, and how far the CRCs have got (crc_hook). */
struct crc_walk {
    struct cv     *c;
    struct trange *R;
    uint64_t       n, lo;
};

/* One chunk [pos, pos+len) of the file into the CRC of every tensor it overlaps: chunks
 * come in file order, so each tensor's CRC grows piece by piece (a chunk may hold the end
 * of one tensor and the start of the next; ranges that overlap each get their bytes). */
static void crc_hook(void *ctx, uint64_t pos, const uint8_t *p, size_t len)
{
    struct crc_walk *w = ctx;

    while (w->lo < w->n && w->R[w->lo].end <= pos)
        w->lo++;
    for (uint64_t j = w->lo; j < w->n && w->R[j].off < pos + len; j++) {
        uint64_t a = w->R[j].off > pos ? w->R[j].off : pos;
        uint64_t b = w->R[j].end < pos + len ? w->R[j].end : pos + len;
        uint32_t *crc = &w->c->tcrc[w->R[j].i];
        if (b > a)
            *crc = crc_update(*crc, p + (a - pos), (size_t)(b - a));
    }
}

/* The SHA-256 of source file k into h, read through its open mfile (the very bytes that
 * were validated and that copy_file_range copies), and in the same pass the CRC-32 of
 * each of its tensors into c->tcrc, computed by the stream's read-ahead thread as it
 * reads each chunk (stream_set_hook) while this thread hashes the previous one: the
 * CRCs stay off the hash's critical path and nothing is read twice. */
static int sha_crc_file(struct cv *c, struct sha256 *h, uint32_t k, struct err *e)
{
    const struct mfile *mf = &c->src.files[k];
    struct crc_walk w = { c, malloc((c->src.n_tensors + 1) * sizeof *w.R), 0, 0 };
    struct stream st;
    const uint8_t *p;
    size_t len;
    int rc;

    if (!w.R)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < c->src.n_tensors; i++) {
        const struct model_tensor *t = &c->src.tensors[i];
        if (t->file != k)
            continue;
        c->tcrc[i] = 0;
        if (cv_tcrc_planned(c, t) && t->size) {
            w.R[w.n].off = (uint64_t)(t->data - mf->data);
            w.R[w.n].end = w.R[w.n].off + t->size;
            w.R[w.n++].i = i;
        }
    }
    qsort(w.R, (size_t)w.n, sizeof *w.R, trange_cmp);
    rc = stream_open(&st, mf, 0, STREAM_AHEAD, e);
    stream_set_hook(&st, crc_hook, &w);
    if (rc == 0)
        rc = stream_begin(&st, 0, mf->size, e);
    while (rc == 0 && (rc = stream_next(&st, &p, &len, e)) == 1) {
        rc = 0;
        if (atomic_load(&c->sha_stop)) {
            rc = ERR(e, ERR_IO, "%s: interrupted", mf->path);
            break;
        }
        sha256_update(h, p, len);
    }
    stream_close(&st);   /* joins the read-ahead thread: its CRCs are all in */
    free(w.R);
    return rc < 0 ? -1 : 0;
}

static int sha_file(struct cv *c, struct sha256 *h, const char *path, int64_t file,
                    uint8_t *buf, size_t cap, struct err *e)
{
    struct mfile mf;
    struct err me = ERR_INIT;
    int fd;

    if (file >= 0 && c->tcrc)   /* a source file: its tensors' CRCs in the same pass */
        return sha_crc_file(c, h, (uint32_t)file, e);
    /* Streamed (common/stream.h): pread into a reused buffer, no page faults, no RSS */
    if (mfile_open(&mf, path, &me) == 0) {
        struct stream st;
        int rc = stream_open(&st, &mf, 0, 0, e);
        if (rc == 0)
            rc = stream_sha256(&st, 0, mf.size, h, NULL, &c->sha_stop, e);
        stream_close(&st);
        mfile_close(&mf);
        return rc;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ERR_SYS(e, "cannot open '%s'", path);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (;;) {
        ssize_t k = read(fd, buf, cap);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            ERR_SYS(e, "cannot read '%s'", path);
            close(fd);
            return -1;
        }
        if (k == 0)
            break;
        sha256_update(h, buf, (size_t)k);
    }
    close(fd);
    return 0;
}

/* The SHA-256 of the source as hex into hex (see the comment at the top). */
static int source_sha(struct cv *c, char hex[SHA256_HEX_LEN + 1], struct err *e)
{
    struct sha256 h;
    struct stat st;
    uint8_t d[SHA256_LEN];
    size_t cap = (size_t)4 << 20;
    uint8_t *buf = malloc(cap);
    int rc = 0;

    if (!buf)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (sha256_init(&h, e)) {
        free(buf);
        return -1;
    }
    if (stat(c->in, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(c->in) + 40;
        char *idx = malloc(n);
        if (!idx)
            rc = ERR(e, ERR_NOMEM, "out of memory");
        else {
            snprintf(idx, n, "%s/model.safetensors.index.json", c->in);
            if (access(idx, R_OK) == 0)
                rc = sha_file(c, &h, idx, -1, buf, cap, e);
            else
                for (uint32_t i = 0; rc == 0 && i < c->src.n_files; i++)
                    rc = sha_file(c, &h, c->src.files[i].path, c->tcrc_file[i] ? (int64_t)i : -1, buf,
                                  cap, e);
            free(idx);
        }
    } else {
        rc = sha_file(c, &h, c->in, c->src.n_files == 1 && c->tcrc_file[0] ? 0 : -1, buf, cap,
                      e);
    }
    free(buf);
    if (rc) {
        sha256_release(&h);
        return -1;
    }
    if (sha256_final(&h, d, e))
        return -1;
    sha256_hex(d, hex);
    return 0;
}

static void *sha_main(void *arg)
{
    struct cv *c = arg;
    c->sha_rc = source_sha(c, c->sha_new, &c->sha_err);
    return NULL;
}

/*
 * Start hashing the source.  With a second thread, c->sha_hex is a placeholder of the
 * same length until sha_join, so the metadata can be laid out before the hash is known
 * (apr_write writes it last); with one thread (or none to be had), hash here.
 */
int cv_sha_start(struct cv *c, struct err *e)
{
    struct err z = ERR_INIT;
    struct stat sb;
    int dir = stat(c->in, &sb) == 0 && S_ISDIR(sb.st_mode);

    /* which source files the hash pass reads whole through their mfile (source_sha):
     * the shards of a directory without an index, or the one file given */
    c->tcrc = calloc(c->src.n_tensors + 1, sizeof *c->tcrc);
    c->tcrc_file = calloc(c->src.n_files + 1, 1);
    if (!c->tcrc || !c->tcrc_file)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (dir) {
        size_t n = strlen(c->in) + 40;
        char *idx = malloc(n);
        if (!idx)
            return ERR(e, ERR_NOMEM, "out of memory");
        snprintf(idx, n, "%s/model.safetensors.index.json", c->in);
        if (access(idx, R_OK) != 0)
            for (uint32_t i = 0; i < c->src.n_files; i++)
                c->tcrc_file[i] = c->src.files[i].mapped;
        free(idx);
    } else if (c->src.n_files == 1 && c->src.files[0].path &&
               strcmp(c->src.files[0].path, c->in) == 0) {
        c->tcrc_file[0] = c->src.files[0].mapped;
    }
    c->sha_err = z;
    atomic_store(&c->sha_stop, 0);
    if (c->n_threads > 1 && pthread_create(&c->sha_tid, NULL, sha_main, c) == 0) {
        c->sha_state = 1;
        memset(c->sha_hex, '0', SHA256_HEX_LEN);
        c->sha_hex[SHA256_HEX_LEN] = 0;
        return 0;
    }
    c->sha_state = 2;
    return source_sha(c, c->sha_hex, e);
}

/* Wait for the hash and put it in c->sha_hex (apr_write_opts.meta_final). */
int cv_sha_join(void *ctx, struct err *e)
{
    struct cv *c = ctx;

    if (c->sha_state != 1)
        return 0;
    pthread_join(c->sha_tid, NULL);
    c->sha_state = 2;
    if (c->sha_rc) {
        if (err_ok(e))
            *e = c->sha_err;
        return -1;
    }
    memcpy(c->sha_hex, c->sha_new, sizeof c->sha_hex);
    return 0;
}

/* Point the output's source_sha256 value at c->sha_hex, which sha_join fills in. */
int cv_sha_bind(struct cv *c, struct err *e)
{
    for (uint64_t i = 0; i < c->out_m.n_kv; i++) {
        struct model_val *v = &c->out_m.kv[i].val;
        if (slice_eq_cstr(c->out_m.kv[i].key, "source_sha256") && v->type == MV_STR &&
            slice_eq_cstr(v->v.s, c->sha_hex)) {
            v->v.s.p = c->sha_hex;   /* strings are never freed (val_free) */
            return 0;
        }
    }
    return ERR(e, ERR_INTERNAL, "no source_sha256 in the APR metadata");
}
