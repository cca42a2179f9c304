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

static int sha_file(struct cv *c, struct sha256 *h, const char *path, uint8_t *buf, size_t cap,
                    struct err *e)
{
    struct mfile mf;
    struct err me = ERR_INIT;
    int fd;

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
                rc = sha_file(c, &h, idx, buf, cap, e);
            else
                for (uint32_t i = 0; rc == 0 && i < c->src.n_files; i++)
                    rc = sha_file(c, &h, c->src.files[i].path, buf, cap, e);
            free(idx);
        }
    } else {
        rc = sha_file(c, &h, c->in, buf, cap, e);
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
