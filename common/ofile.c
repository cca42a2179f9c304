/* ofile.c - output files through a temporary file and rename; see ofile.h. */
#include "ofile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

#define OFILE_PIECE ((size_t)1 << 30)   /* write(2) caps one call near 2 GiB */

/* The process umask without changing it: Linux reports it in /proc/self/status (since
 * 4.7).  Without that line, the umask(2) round trip, serialized by a mutex. */
static mode_t umask_get(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    FILE *f = fopen("/proc/self/status", "re");
    char line[128];
    mode_t u;

    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "Umask:", 6) == 0) {
                char *end;
                unsigned long v = strtoul(line + 6, &end, 8);
                if (end != line + 6 && v <= 0777) {
                    fclose(f);
                    return (mode_t)v;
                }
                break;
            }
        }
        fclose(f);
    }
    pthread_mutex_lock(&mu);
    u = umask(0);
    umask(u);
    pthread_mutex_unlock(&mu);
    return u;
}

int ofile_open(struct ofile *o, const char *final_path, unsigned flags, struct err *e)
{
    const char *slash = strrchr(final_path, '/');
    size_t dlen = slash ? (size_t)(slash - final_path) + 1 : 0, n = strlen(final_path) + 9;
    mode_t mode;

    *o = (struct ofile)OFILE_INIT;
    o->flags = flags & OFILE_NO_FSYNC;
    o->copy_min = (size_t)1 << 20;
    o->tmp = malloc(n);
    o->final = strdup(final_path);
    if (!o->tmp || !o->final) {
        ofile_abort(o);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    snprintf(o->tmp, n, "%.*s.%s.XXXXXX", (int)dlen, final_path, final_path + dlen);
    o->fd = mkostemp(o->tmp, O_CLOEXEC);
    if (o->fd < 0) {
        ERR_SYS(e, "cannot create a temporary file beside '%s'", final_path);
        free(o->tmp);
        o->tmp = NULL;          /* nothing to unlink */
        ofile_abort(o);
        return -1;
    }
    /* mkostemp makes 0600; give the file the mode open(2) would. */
    mode = 0666 & ~umask_get();
    if (fchmod(o->fd, mode) != 0) {
        ERR_SYS(e, "cannot set the mode of '%s'", o->tmp);
        ofile_abort(o);
        return -1;
    }
    return 0;
}

int ofile_attach(struct ofile *o, int fd, const char *name, struct err *e)
{
    *o = (struct ofile)OFILE_INIT;
    o->final = strdup(name);
    if (!o->final)
        return ERR(e, ERR_NOMEM, "out of memory");
    o->fd = fd;
    o->flags = OFILE_BORROWED | OFILE_NO_FSYNC;
    o->copy_min = (size_t)1 << 20;
    return 0;
}

int ofile_buffer(struct ofile *o, size_t cap, struct err *e)
{
    uint8_t *b = malloc(cap ? cap : 1);

    if (!b)
        return ERR(e, ERR_NOMEM, "out of memory");
    free(o->buf);
    o->buf = b;
    o->cap = cap;
    o->used = 0;
    return 0;
}

/* All n bytes at the file offset (off < 0: at the fd's own offset, with write). */
static int write_all(struct ofile *o, const uint8_t *p, size_t n, int64_t off, struct err *e)
{
    while (n) {
        size_t k = n > OFILE_PIECE ? OFILE_PIECE : n;
        ssize_t w = off < 0 ? write(o->fd, p, k) : pwrite(o->fd, p, k, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ERR_SYS(e, "cannot write '%s'", o->final);
        }
        if (w == 0)
            return ERR(e, ERR_IO, "cannot write '%s': no progress", o->final);
        p += w;
        n -= (size_t)w;
        if (off >= 0)
            off += w;
    }
    return 0;
}

int ofile_flush(struct ofile *o, struct err *e)
{
    if (o->used && write_all(o, o->buf, o->used, -1, e))
        return -1;
    o->used = 0;
    return 0;
}

int ofile_write(struct ofile *o, const void *p, size_t n, struct err *e)
{
    if (!o->buf || n >= o->cap) {
        /* large pieces go straight from the caller's memory (a mapping) to the file */
        if (ofile_flush(o, e) || write_all(o, p, n, -1, e))
            return -1;
    } else {
        if (o->cap - o->used < n && ofile_flush(o, e))
            return -1;
        if (n)
            memcpy(o->buf + o->used, p, n);
        o->used += n;
    }
    o->pos += n;
    return 0;
}

int ofile_pwrite(struct ofile *o, const void *p, size_t n, uint64_t off, struct err *e)
{
    if (off > (uint64_t)INT64_MAX - n)
        return ERR(e, ERR_LIMIT, "cannot write '%s': offset %llu out of range", o->final,
                   (unsigned long long)off);
    return write_all(o, p, n, (int64_t)off, e);
}

int ofile_seek(struct ofile *o, uint64_t off, struct err *e)
{
    if (ofile_flush(o, e))
        return -1;
    if (off > (uint64_t)INT64_MAX || lseek(o->fd, (off_t)off, SEEK_SET) < 0)
        return ERR_SYS(e, "cannot seek in '%s'", o->final);
    o->pos = off;
    o->kicked = off;
    return 0;
}

int ofile_copy(struct ofile *o, int src_fd, uint64_t src_off, const void *src_map, size_t n,
               struct err *e)
{
    size_t done = 0;

    if (o->no_cfr || n < o->copy_min || src_off > (uint64_t)INT64_MAX - n)
        return ofile_write(o, src_map, n, e);
    if (ofile_flush(o, e))
        return -1;
    while (done < n) {
        loff_t in = (loff_t)(src_off + done);
        ssize_t k = copy_file_range(src_fd, &in, o->fd, NULL, n - done, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                      errno == EOPNOTSUPP || errno == EBADF)) {
            o->no_cfr = 1;   /* the file offset did not move: write() the rest */
            break;
        }
        if (k < 0)
            return ERR_SYS(e, "cannot copy into '%s'", o->final);
        if (k == 0)
            return ERR(e, ERR_IO, "cannot copy into '%s': the source ends at offset %llu",
                       o->final, (unsigned long long)(src_off + done));
        done += (size_t)k;
    }
    o->pos += done;
    return ofile_write(o, (const uint8_t *)src_map + done, n - done, e);
}

void ofile_kick(struct ofile *o)
{
#ifdef SYNC_FILE_RANGE_WRITE
    uint64_t end = o->pos - o->used;   /* what has reached the file */

    if (end - o->kicked >= OFILE_KICK) {
        /* advisory: a failure here shows up at fsync */
        sync_file_range(o->fd, (off_t)o->kicked, (off_t)(end - o->kicked),
                        SYNC_FILE_RANGE_WRITE);
        o->kicked = end;
    }
#else
    (void)o;
#endif
}

int ofile_finish(struct ofile *o, struct err *e)
{
    int fd = o->fd, rc = 0;

    if (fd < 0)
        return 0;
    if (ofile_flush(o, e))
        return -1;
    free(o->buf);
    o->buf = NULL;
    o->cap = 0;
    if (o->flags & OFILE_BORROWED)
        return 0;
    if (!(o->flags & OFILE_NO_FSYNC) && fsync(fd) != 0)
        rc = ERR_SYS(e, "cannot sync '%s'", o->final);
    o->fd = -1;
    if (close(fd) != 0 && rc == 0)
        rc = ERR_SYS(e, "cannot write '%s'", o->final);
    return rc;
}

int ofile_commit(struct ofile *o, struct err *e)
{
    if (ofile_finish(o, e))
        return -1;
    if (!o->tmp)
        return 0;
    if (rename(o->tmp, o->final) != 0)
        return ERR_SYS(e, "cannot rename '%s' to '%s'", o->tmp, o->final);
    free(o->tmp);
    o->tmp = NULL;
    return 0;
}

void ofile_abort(struct ofile *o)
{
    int saved = errno;

    if (!o)
        return;
    if (o->fd >= 0 && !(o->flags & OFILE_BORROWED))
        close(o->fd);
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp);
    free(o->final);
    free(o->buf);
    *o = (struct ofile)OFILE_INIT;
    errno = saved;
}

int ofile_put(const char *final_path, const void *p, size_t n, struct err *e)
{
    struct ofile o = OFILE_INIT;
    int rc = ofile_open(&o, final_path, 0, e) || ofile_write(&o, p, n, e) ||
             ofile_commit(&o, e) ? -1 : 0;

    ofile_abort(&o);
    return rc;
}
