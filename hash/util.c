/*
 * util.c - apr-hash: whole-file SHA-256 (stdin, mapped files with pages dropped behind
 * the reader) and directories as sorted file lists.
 */
#include "hash_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/cli.h"
#include "../common/dirwalk.h"
#include "../common/json.h"
#include "../common/mfile.h"
#include "../common/path.h"
#include "../common/ofile.h"
#include "../common/progress.h"
#include "../common/sbuf.h"
#include "../common/slice.h"
#include "../common/threads.h"
#include "../common/vec.h"
#include "../dequant/dq.h"
#include "../formats/config.h"
#include "../formats/names.h"
#include "../formats/safetensors/st.h"
#include "../common/banned.h"
/* ---- small helpers ------------------------------------------------------------------ */

char *hash__xstrndup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* Forget the whole pages of [p, p+n) from a private read-only file mapping. */
void hash__drop_pages(const uint8_t *p, uint64_t n)
{
    long pg = sysconf(_SC_PAGESIZE);   /* from the auxiliary vector: no system call */
    uintptr_t a, b;

    if (pg <= 0 || n == 0)
        return;
    a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    b = ((uintptr_t)p + (uintptr_t)n) & ~((uintptr_t)pg - 1);
    if (b > a)
        madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
}

/* Feed [p, p+n) to h in HASH_CHUNK pieces; drop pages when mapped; report progress. */
void hash__sha_stream(struct sha256 *h, const uint8_t *p, uint64_t n, int mapped,
                       struct progress *prog)
{
    while (n) {
        uint64_t k = n > HASH_CHUNK ? HASH_CHUNK : n;
        sha256_update(h, p, (size_t)k);
        if (mapped)
            hash__drop_pages(p, k);
        if (prog)
            progress_add(prog, k);
        p += k;
        n -= k;
    }
}

/* The bytes of an open descriptor (standard input, a pipe, a character device such as
 * /dev/null), read to the end; what names it in messages. */
static int hash_fd(int fd, const char *what, uint8_t out[SHA256_LEN], uint64_t *size,
                   struct err *e)
{
    enum { BUF = 1 << 16 };
    uint8_t *buf = malloc(BUF);
    struct sha256 h;
    uint64_t total = 0;

    if (!buf)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        free(buf);
        return -1;
    }
    for (;;) {
        ssize_t r = read(fd, buf, BUF);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            sha256_release(&h);
            free(buf);
            return ERR_SYS(e, "cannot read %s", what);
        }
        if (r == 0)
            break;
        sha256_update(&h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    if (size)
        *size = total;
    return sha256_final(&h, out, e);
}

int hash__hash_file_prog(const char *path, uint8_t out[SHA256_LEN], uint64_t *size,
                          struct progress *prog, struct err *e)
{
    struct mfile mf;
    struct sha256 h;
    struct stat st;

    if (strcmp(path, "-") == 0)
        return hash_fd(STDIN_FILENO, "standard input", out, size, e);
    /* As sha256sum: a pipe, a FIFO or a device (/dev/null, /dev/stdin) is read to its end. */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        char what[300];
        int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
        if (fd < 0)
            return ERR_SYS(e, "cannot open '%s'", path);
        snprintf(what, sizeof what, "'%s'", path);
        rc = hash_fd(fd, what, out, size, e);
        close(fd);
        return rc;
    }
    if (mfile_open(&mf, path, e))
        return -1;
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        mfile_close(&mf);
        return -1;
    }
    if (hash__sha_mfile(&h, &mf, prog, e)) {
        sha256_release(&h);
        mfile_close(&mf);
        return -1;
    }
    if (size)
        *size = mf.size;
    mfile_close(&mf);
    return sha256_final(&h, out, e);
}

int hash_file(const char *path, uint8_t out[SHA256_LEN], uint64_t *size, struct err *e)
{
    return hash__hash_file_prog(path, out, size, NULL, e);
}

/* The note for an entry that is not hashed. */
void hash__dent_note(FILE *errs, const char *root, const struct dir_entry *d)
{
    char *full = path_join(root, d->rel);
    hash__errf(errs, "note: '%s': %s, skipped", full ? full : d->rel,
               d->kind == DIRENT_LINK ? "symbolic link not followed" : "not a regular file");
    free(full);
}

/*
 * Whether a directory entry is hashed: a regular file; or, in a Hugging Face cache
 * snapshot (<cache>/models--org--name/snapshots/<commit>, every file a symlink into
 * ../../blobs/), a symbolic link whose target is a regular file inside the cache
 * (formats/safetensors/st.h: st_hf_link_in_cache).  Other links stay unfollowed.
 */
int hash__dent_hashable(const char *root, const struct dir_entry *d)
{
    struct stat st;
    char *full;
    int ok;

    if (d->kind == DIRENT_REG)
        return 1;
    if (d->kind != DIRENT_LINK || !st_hf_snapshot_repo(root, NULL, 0, NULL, 0))
        return 0;
    full = path_join(root, d->rel);
    ok = full && st_hf_link_in_cache(root, full) && stat(full, &st) == 0 && S_ISREG(st.st_mode);
    free(full);
    return ok;
}

/* path relative to directory dir ("dir/x/y" -> "x/y"), or NULL when not under it. */
const char *hash__rel_under(const char *path, const char *dir)
{
    size_t dn = strlen(dir);
    while (dn > 1 && dir[dn - 1] == '/')
        dn--;
    if (strncmp(path, dir, dn) != 0 || (path[dn] != '/' && !(dn == 1 && dir[0] == '/')))
        return NULL;
    path += dn;
    while (*path == '/')
        path++;
    return *path ? path : NULL;
}

/* "apr-hash: " and the formatted text with control bytes and invalid UTF-8 escaped
 * (cli_put_text: paths and names from files cannot reach the terminal raw), "\n". */
void hash__errf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);
    fprintf(f, "%s: ", cli_progname);
    if (n >= 0 && p)
        cli_put_text(f, p, (size_t)n);
    else
        fputs("(out of memory)", f);
    fputc('\n', f);
    free(p);
}

/* "apr-hash: [path: ]msg" with the control bytes of names from files escaped. */
void hash__put_err(FILE *f, const char *path, const char *msg)
{
    fprintf(f, "%s: ", cli_progname);
    if (path) {
        cli_put_text(f, path, strlen(path));
        fputs(": ", f);
    }
    cli_put_text(f, msg, strlen(msg));
    fputc('\n', f);
}
