/*
 * tu.h - scaffolding shared by the unit tests (tests/unit/check_*.c): the shared
 * fixtures directory, temporary directories, whole-file reads, SHA-256 hex, model
 * notes.  Header-only on purpose: every check_*.c is its own translation unit and the
 * Makefile links them as single objects, so each function is static and marked
 * TU_UNUSED (a file that does not call one gets no warning).  Include it before
 * common/banned.h, like every other header.
 *
 * The helpers are for tests only: a failure that means "the test environment is
 * broken" (no /tmp, an unreadable file the test wrote itself, no memory) fails the
 * running test with ck_assert, so callers need no error paths of their own.
 *
 *   shared fixtures   tu_shared_dir, tu_need_shared; tu_skip
 *   temporary dirs    tu_tmpdir_new, tu_tmpdir_free, tu_path, tu_dir_count
 *   per-test dir      tu_setup, tu_teardown (a checked fixture), tu_dir, tu_tpath
 *   file contents     tu_slurp, tu_slurp_str, tu_sha_hex
 *   models            tu_has_note
 *
 * Typical use, one fresh directory per test:
 *
 *   tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
 *   ...
 *   write_gguf(tu_tpath("a.gguf"), ...);        // /tmp/check_hash.XXXXXX/a.gguf
 *
 * or one directory owned by the test itself:
 *
 *   char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "x.apr");
 *   ...
 *   free(path);
 *   tu_tmpdir_free(dir);
 */
#ifndef TU_H
#define TU_H

#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/sha256.h"
#include "../../formats/model.h"

#define TU_UNUSED __attribute__((unused))

/* The slots of tu_tpath's ring: a call's result stays valid for the next 7 calls. */
#define TU_TPATH_RING 8
#define TU_TPATH_MAX  512

/* ---- naming */

/*
 * The name of the test file being compiled, without directory and extension
 * ("check_hash" for tests/unit/check_hash.c).  __BASE_FILE__ (GCC and clang) names the
 * .c file even inside this header, where __FILE__ would say "tu.h".  Used for the
 * temporary directories' names and the "skip:" lines.
 */
static TU_UNUSED const char *tu_tag(void)
{
    static char tag[64];
    const char *b = strrchr(__BASE_FILE__, '/');

    b = b ? b + 1 : __BASE_FILE__;
    snprintf(tag, sizeof tag, "%.*s", (int)strcspn(b, "."), b);
    return tag;
}

/* ---- shared fixtures */

/* $APR_SHARED_FIXTURES when set and not empty, else "../shared/fixtures". */
static TU_UNUSED const char *tu__shared_root(void)
{
    const char *d = getenv("APR_SHARED_FIXTURES");

    return d && *d ? d : "../shared/fixtures";
}

/*
 * The shared third-party fixtures directory: $APR_SHARED_FIXTURES when set and not
 * empty, else "../shared/fixtures" (relative to the directory the runner starts in,
 * the repository root under make check).  Returns NULL when that is not a directory,
 * so tests that need it can skip.  The string is the environment's or a literal:
 * never freed.
 */
static TU_UNUSED const char *tu_shared_dir(void)
{
    const char *d = tu__shared_root();
    struct stat st;

    return stat(d, &st) == 0 && S_ISDIR(st.st_mode) ? d : NULL;
}

/*
 * Whether the shared fixture `what` (a path relative to tu_shared_dir(), such as
 * "gguf" or "gguf/tiny-llama-small-F16.gguf"; NULL for the directory itself) can be
 * read.  Returns 1 when it can; otherwise prints one line,
 *
 *   skip: check_gguf: '../shared/fixtures/gguf/x.gguf' not found (set APR_SHARED_FIXTURES)
 *
 * and returns 0, and the caller returns from the test (which then passes):
 *
 *   if (!tu_need_shared("gguf"))
 *       return;
 */
/*
 * Record that the running test skips (a missing fixture, a CPU without the feature
 * under test): prints "skip: <tag>: <why>" and appends it to $APR_TEST_SKIPS, which
 * check_main.c counts into "unit: N passed, N failed, N skipped"; the caller then
 * returns from the test.
 */
static TU_UNUSED void tu_skip(const char *why)
{
    const char *log = getenv("APR_TEST_SKIPS");   /* set by check_main.c: one line a skip */

    printf("skip: %s: %s\n", tu_tag(), why);
    fflush(stdout);   /* the test runs in a forked child */
    if (log && *log) {
        FILE *f = fopen(log, "a");
        if (f) {
            fprintf(f, "%s: %s\n", tu_tag(), why);
            fclose(f);
        }
    }
}

static TU_UNUSED int tu_need_shared(const char *what)
{
    char path[4096], why[4200];

    snprintf(path, sizeof path, "%s%s%s", tu__shared_root(), what ? "/" : "", what ? what : "");
    if (tu_shared_dir() && access(path, R_OK) == 0)
        return 1;
    snprintf(why, sizeof why, "'%s' not found (set APR_SHARED_FIXTURES)", path);
    tu_skip(why);
    return 0;
}

/* ---- temporary directories */

/*
 * A new empty directory "/tmp/<tag>.XXXXXX" (mkdtemp: mode 0700, a unique name);
 * tag NULL means tu_tag(), the test file's name.  Returns the malloc()ed path; the
 * caller removes the directory and frees the string with tu_tmpdir_free.
 */
static TU_UNUSED char *tu_tmpdir_new(const char *tag)
{
    size_t n;
    char *d;

    if (!tag)
        tag = tu_tag();
    n = strlen("/tmp/") + strlen(tag) + strlen(".XXXXXX") + 1;
    d = malloc(n);
    ck_assert_ptr_nonnull(d);
    snprintf(d, n, "/tmp/%s.XXXXXX", tag);
    ck_assert_msg(mkdtemp(d) != NULL, "mkdtemp '%s' failed", d);
    return d;
}

static TU_UNUSED int tu__rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

/*
 * Remove dir and everything below it (nftw depth first, FTW_PHYS: symbolic links are
 * removed, never followed), then free(dir).  Accepts NULL.  Errors are ignored: a
 * test that cares whether the directory was empty says so with tu_dir_count or rmdir.
 */
static TU_UNUSED void tu_tmpdir_free(char *dir)
{
    if (!dir)
        return;
    nftw(dir, tu__rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* "dir/name", malloc()ed; the caller frees it. */
static TU_UNUSED char *tu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* How many entries dir holds, "." and ".." not counted; fails the test if it cannot be read. */
static TU_UNUSED int tu_dir_count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    ck_assert_msg(d != NULL, "cannot open directory '%s'", dir);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- one fresh directory per test (a checked fixture) */

/* The directory of the running test between tu_setup and tu_teardown, else NULL. */
static TU_UNUSED char *tu_dir;

/* tcase_add_checked_fixture(tc, tu_setup, tu_teardown): tu_dir = /tmp/<tag>.XXXXXX. */
static TU_UNUSED void tu_setup(void)
{
    tu_dir = tu_tmpdir_new(NULL);
}

static TU_UNUSED void tu_teardown(void)
{
    tu_tmpdir_free(tu_dir);
    tu_dir = NULL;
}

/*
 * "tu_dir/name" in a static ring of TU_TPATH_RING buffers: no free, and the result
 * stays valid for the next TU_TPATH_RING - 1 calls, enough for the arguments of one
 * call.  Copy it to keep it longer.  Fails the test if the path would not fit.
 */
static TU_UNUSED const char *tu_tpath(const char *name)
{
    static char ring[TU_TPATH_RING][TU_TPATH_MAX];
    static unsigned k;
    char *p = ring[k++ % TU_TPATH_RING];
    int n;

    ck_assert_msg(tu_dir != NULL, "tu_tpath('%s') outside tu_setup/tu_teardown", name);
    n = snprintf(p, TU_TPATH_MAX, "%s/%s", tu_dir, name);
    ck_assert_msg(n > 0 && n < TU_TPATH_MAX, "path too long: '%s/%s'", tu_dir, name);
    return p;
}

/* ---- file contents */

static TU_UNUSED uint8_t *tu__slurp(const char *path, size_t *n, size_t extra)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p;
    long len;

    ck_assert_msg(f != NULL, "cannot read '%s'", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    ck_assert_msg(len >= 0, "cannot size '%s'", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    p = malloc((size_t)len + extra > 0 ? (size_t)len + extra : 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(fread(p, 1, (size_t)len, f) == (size_t)len, "short read of '%s'", path);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/*
 * The whole file at path in a malloc()ed buffer of exactly *n bytes (1 byte when the
 * file is empty), so that ASan reports any read past the end.  Not NUL-terminated:
 * use tu_slurp_str for text.  Fails the test when the file cannot be read.  The caller
 * frees the buffer.
 */
static TU_UNUSED uint8_t *tu_slurp(const char *path, size_t *n)
{
    return tu__slurp(path, n, 0);
}

/* tu_slurp plus a terminating NUL at (*n), for strstr and friends on text files. */
static TU_UNUSED char *tu_slurp_str(const char *path, size_t *n)
{
    char *p = (char *)tu__slurp(path, n, 1);

    p[*n] = 0;
    return p;
}

/* SHA-256 of p[0, n) as 64 lowercase hex digits and a NUL; fails the test if OpenSSL does. */
static TU_UNUSED void tu_sha_hex(const void *p, size_t n, char hex[SHA256_HEX_LEN + 1])
{
    uint8_t d[SHA256_LEN];
    struct err e = ERR_INIT;

    ck_assert_msg(sha256_buf(p, n, d, &e) == 0, "sha256: %s", e.msg);
    sha256_hex(d, hex);
}

/* ---- models */

/* Whether one of m's reader notes contains frag. */
static TU_UNUSED int tu_has_note(const struct model *m, const char *frag)
{
    for (uint32_t i = 0; i < m->n_notes; i++)
        if (strstr(m->notes[i].msg, frag))
            return 1;
    return 0;
}

#endif
