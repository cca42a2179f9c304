/* stream.c - the streaming reader of whole-tensor and whole-file passes; see stream.h. */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "sha256.h"
#include "banned.h"

#define STREAM_ALIGN 4096
#define DROP_STEP    ((uint64_t)8 << 20)   /* STREAM_DROP: one fadvise per 8 MiB read */

int stream_pread_full(stream_pread_fn fn, int fd, const char *path, void *buf, size_t n,
                      uint64_t off, struct err *e)
{
    uint8_t *p = buf;

    if (!fn)
        fn = pread;
    while (n) {
        ssize_t k;
        if (off > (uint64_t)INT64_MAX)
            return ERR(e, ERR_IO, "%s: offset %llu out of range", path,
                       (unsigned long long)off);
        k = fn(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return ERR_SYS(e, "%s: cannot read at offset %llu", path, (unsigned long long)off);
        if (k == 0)
            return ERR(e, ERR_IO, "%s: file ends at offset %llu, %zu bytes short (truncated "
                       "while being read?)", path, (unsigned long long)off, n);
        if ((size_t)k > n)
            return ERR(e, ERR_INTERNAL, "%s: read returned more than asked", path);
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static void *thread_main(void *arg)
{
    struct stream *s = arg;

    pthread_mutex_lock(&s->mu);
    while (!s->quit) {
        int slot = -1;
        for (int i = 0; i < 2 && s->r_next < s->r_end; i++)
            if (!s->full[i] && i != s->cur) {
                slot = i;
                break;
            }
        if (slot < 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        {
            uint64_t off = s->r_next, g = s->gen;
            size_t len = s->r_end - off > s->chunk ? s->chunk : (size_t)(s->r_end - off);
            struct err le = ERR_INIT;
            stream_pread_fn fn = s->pread_fn;
            stream_hook_fn hook = s->hook;
            void *hctx = s->hook_ctx;
            int fd = s->fd, rc;
            const char *path = s->path;
            uint8_t *dst = s->buf[slot];

            s->r_next += len;
            s->busy = 1;
            pthread_mutex_unlock(&s->mu);
            rc = stream_pread_full(fn, fd, path, dst, len, off, &le);
            if (rc == 0 && hook)
                hook(hctx, off, dst, len);
            pthread_mutex_lock(&s->mu);
            s->busy = 0;
            if (g == s->gen) {
                if (rc) {
                    s->r_err = le;
                    s->r_err_gen = g;
                    s->r_next = s->r_end;
                } else {
                    s->full[slot] = 1;
                    s->full_gen[slot] = g;
                    s->full_off[slot] = off;
                    s->full_len[slot] = len;
                }
            }
            pthread_cond_broadcast(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void drop_behind(struct stream *s, int all)
{
    uint64_t pg = STREAM_ALIGN, a, b;

    if (!(s->flags & STREAM_DROP) || s->fd < 0)
        return;
    if (!all && s->pos - s->dropped < DROP_STEP)
        return;
    a = s->dropped & ~(pg - 1);
    b = all ? s->pos : s->pos & ~(pg - 1);
    if (b > a)
        posix_fadvise(s->fd, (off_t)a, (off_t)(b - a), POSIX_FADV_DONTNEED);
    s->dropped = b;
}

static int ensure_bufs(struct stream *s, struct err *e)
{
    int want = (s->flags & STREAM_AHEAD) ? 2 : 1;

    for (int i = 0; i < want; i++)
        if (!s->buf[i]) {
            s->buf[i] = aligned_alloc(STREAM_ALIGN, s->chunk);
            if (!s->buf[i])
                return ERR(e, ERR_NOMEM, "%s: out of memory for a %zu-byte read buffer",
                           s->path, s->chunk);
        }
    if ((s->flags & STREAM_AHEAD) && !s->thread_up) {
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        if (pthread_create(&s->th, NULL, thread_main, s) == 0) {
            s->thread_up = 1;
        } else {
            /* no second thread: read on the caller's (same bytes, less overlap) */
            pthread_mutex_destroy(&s->mu);
            pthread_cond_destroy(&s->cv);
            s->flags &= ~(unsigned)STREAM_AHEAD;
        }
    }
    return 0;
}

int stream_open(struct stream *s, const struct mfile *mf, size_t chunk, unsigned flags,
                struct err *e)
{
    (void)e;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->cur = -1;
    s->chunk = chunk ? chunk : STREAM_CHUNK;
    s->chunk = (s->chunk + STREAM_ALIGN - 1) / STREAM_ALIGN * STREAM_ALIGN;
    s->flags = flags;
    s->pread_fn = pread;
    s->r_err = (struct err)ERR_INIT;
    stream_retarget(s, mf);
    return 0;
}

void stream_retarget(struct stream *s, const struct mfile *mf)
{
    if (s->end > s->pos)
        drop_behind(s, 1);
    if (s->thread_up) {
        /* abandon the pass: the thread must not read the old descriptor any more */
        pthread_mutex_lock(&s->mu);
        s->gen++;
        s->full[0] = s->full[1] = 0;
        s->cur = -1;
        s->r_next = s->r_end = 0;
        while (s->busy)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
    }
    s->ahead_pass = 0;
    s->pos = s->end = s->dropped = 0;
    s->src = mf;
    s->path = mf && mf->path ? mf->path : "<memory>";
    s->size = mf ? mf->size : 0;
    s->fd = mf && mf->mapped ? mf->fd : -1;
    s->mem = mf && !mf->mapped ? mf->data : NULL;
}

void stream_set_hook(struct stream *s, stream_hook_fn fn, void *ctx)
{
    if (s->thread_up)
        pthread_mutex_lock(&s->mu);
    s->hook = fn;
    s->hook_ctx = ctx;
    if (s->thread_up)
        pthread_mutex_unlock(&s->mu);
}

void stream_set_pread(struct stream *s, stream_pread_fn fn)
{
    if (s->thread_up)
        pthread_mutex_lock(&s->mu);
    s->pread_fn = fn ? fn : pread;
    if (s->thread_up)
        pthread_mutex_unlock(&s->mu);
}

void stream_close(struct stream *s)
{
    if (!s)
        return;
    if (s->thread_up) {
        pthread_mutex_lock(&s->mu);
        s->quit = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
    free(s->buf[0]);
    free(s->buf[1]);
    free(s->abuf);
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->cur = -1;
}

static int range_check(const struct stream *s, uint64_t off, uint64_t len, struct err *e)
{
    if (off > s->size || len > s->size - off)
        return ERR_OFF(e, ERR_FORMAT, off, "%s: range of %llu bytes past the end of the file "
                       "(%llu bytes)", s->path, (unsigned long long)len,
                       (unsigned long long)s->size);
    return 0;
}

int stream_begin(struct stream *s, uint64_t off, uint64_t len, struct err *e)
{
    if (range_check(s, off, len, e))
        return -1;
    if (s->end > s->pos)
        drop_behind(s, 1);
    if (s->fd >= 0 && ensure_bufs(s, e))
        return -1;
    s->pos = off;
    s->end = off + len;
    s->dropped = off;
    if (s->fd >= 0 && len)
        posix_fadvise(s->fd, (off_t)off, (off_t)len, POSIX_FADV_SEQUENTIAL);
    s->ahead_pass = 0;
    if (s->thread_up) {
        pthread_mutex_lock(&s->mu);
        s->gen++;
        s->full[0] = s->full[1] = 0;
        s->cur = -1;
        /* one chunk: the caller reads it itself (a hand-over would only add latency) */
        s->ahead_pass = s->fd >= 0 && len > s->chunk;
        s->r_next = s->ahead_pass ? off : s->end;
        s->r_end = s->end;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

int stream_next(struct stream *s, const uint8_t **p, size_t *n, struct err *e)
{
    size_t len;

    if (s->pos >= s->end) {
        if (s->ahead_pass && s->cur >= 0) {
            pthread_mutex_lock(&s->mu);
            s->cur = -1;
            pthread_mutex_unlock(&s->mu);
        }
        drop_behind(s, 1);
        return 0;
    }
    len = s->end - s->pos > s->chunk ? s->chunk : (size_t)(s->end - s->pos);
    if (s->fd < 0) {
        *p = s->mem + s->pos;
        *n = len;
        if (s->hook)
            s->hook(s->hook_ctx, s->pos, *p, len);
        s->pos += len;
        return 1;
    }
    drop_behind(s, 0);
    if (s->ahead_pass) {
        /* the read-ahead thread reads this pass: give back the chunk held, take the next */
        pthread_mutex_lock(&s->mu);
        s->cur = -1;
        pthread_cond_broadcast(&s->cv);
        for (;;) {
            for (int i = 0; i < 2; i++)
                if (s->full[i] && s->full_gen[i] == s->gen && s->full_off[i] == s->pos) {
                    s->full[i] = 0;
                    s->cur = i;
                    *p = s->buf[i];
                    *n = s->full_len[i];
                    s->pos += s->full_len[i];
                    pthread_cond_broadcast(&s->cv);
                    pthread_mutex_unlock(&s->mu);
                    return 1;
                }
            if (s->r_err_gen == s->gen && !err_ok(&s->r_err)) {
                *e = s->r_err;
                pthread_mutex_unlock(&s->mu);
                return -1;
            }
            pthread_cond_wait(&s->cv, &s->mu);
        }
    }
    if (stream_pread_full(s->pread_fn, s->fd, s->path, s->buf[0], len, s->pos, e))
        return -1;
    *p = s->buf[0];
    *n = len;
    if (s->hook)
        s->hook(s->hook_ctx, s->pos, *p, len);
    s->pos += len;
    return 1;
}

const uint8_t *stream_at(struct stream *s, uint64_t off, size_t n, struct err *e)
{
    if (range_check(s, off, n, e))
        return NULL;
    if (s->fd < 0)
        return s->mem ? s->mem + off : (const uint8_t *)"";
    if (n == 0)
        return (const uint8_t *)"";
    if (n > s->acap) {
        size_t cap = (n + STREAM_ALIGN - 1) / STREAM_ALIGN * STREAM_ALIGN;
        uint8_t *b = aligned_alloc(STREAM_ALIGN, cap ? cap : STREAM_ALIGN);
        if (!b) {
            ERR(e, ERR_NOMEM, "%s: out of memory for a %zu-byte read buffer", s->path, n);
            return NULL;
        }
        free(s->abuf);
        s->abuf = b;
        s->acap = cap;
    }
    if (stream_pread_full(s->pread_fn, s->fd, s->path, s->abuf, n, off, e))
        return NULL;
    return s->abuf;
}

int stream_sha256(struct stream *s, uint64_t off, uint64_t len, struct sha256 *h,
                  struct progress *prog, const atomic_int *stop, struct err *e)
{
    const uint8_t *p;
    size_t n;
    int rc;

    if (stream_begin(s, off, len, e))
        return -1;
    while ((rc = stream_next(s, &p, &n, e)) == 1) {
        if (stop && atomic_load(stop))
            return ERR(e, ERR_IO, "%s: interrupted", s->path);
        sha256_update(h, p, n);
        if (prog)
            progress_add(prog, n);
    }
    return rc;
}

const uint8_t *stream_view(struct stream *s, const struct mfile *mf, const uint8_t *p, size_t n,
                           struct err *e)
{
    if (!mf->mapped || !mf->data || p < mf->data || n > mf->size ||
        (uint64_t)(p - mf->data) > mf->size - n)
        return p;
    if (s->src != mf)
        stream_retarget(s, mf);
    return stream_at(s, (uint64_t)(p - mf->data), n, e);
}
