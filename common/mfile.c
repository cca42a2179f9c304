/* mfile.c - read-only whole-file memory maps; see mfile.h. */
#include "mfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

int mfile_open(struct mfile *mf, const char *path, struct err *e)
{
    struct stat st;
    int fd;
    void *p = NULL;

    memset(mf, 0, sizeof *mf);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ERR_SYS(e, "cannot open '%s'", path);
    if (fstat(fd, &st) != 0) {
        ERR_SYS(e, "cannot stat '%s'", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ERR(e, ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size > 0) {
        if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
            close(fd);
            return ERR(e, ERR_LIMIT, "'%s' is too large to map", path);
        }
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            ERR_SYS(e, "cannot map '%s'", path);
            close(fd);
            return -1;
        }
        mf->mapped = 1;
        mf->fd = fd;
    } else {
        close(fd);
    }
    mf->data = p;
    mf->size = (uint64_t)st.st_size;
    mf->path = strdup(path);
    if (!mf->path) {
        mfile_close(mf);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

int mfile_wrap(struct mfile *mf, const void *data, size_t size, const char *name, struct err *e)
{
    memset(mf, 0, sizeof *mf);
    mf->data = size ? data : NULL;
    mf->size = size;
    mf->path = strdup(name ? name : "<memory>");
    if (!mf->path)
        return ERR(e, ERR_NOMEM, "out of memory");
    return 0;
}

void mfile_close(struct mfile *mf)
{
    if (!mf)
        return;
    if (mf->mapped && mf->data)
        munmap((void *)mf->data, (size_t)mf->size);
    if (mf->mapped && mf->fd >= 0)
        close(mf->fd);
    free(mf->path);
    memset(mf, 0, sizeof *mf);
}

void mfile_advise_seq(const struct mfile *mf, uint64_t off, uint64_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t start;

    if (!mf->mapped || !mf->data || pg <= 0 || off >= mf->size)
        return;
    start = off & ~((uint64_t)pg - 1);
    if (len > mf->size - off)
        len = mf->size - off;
    /* SEQUENTIAL only: WILLNEED over a whole 100 GB range would fight the page cache. */
    madvise((void *)(mf->data + start), (size_t)(len + (off - start)), MADV_SEQUENTIAL);
}
