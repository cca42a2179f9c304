/*
 * check_ofile.c - common/ofile: output files through a temporary file and rename.
 * Every way in (write, buffered write, pwrite after a seek, copy_file_range and its
 * write() fallback) gives the same bytes; abort and every failure leave nothing;
 * commit replaces the target by rename; the mode follows the umask.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/ofile.h"
#include "tu.h"
#include "../../common/banned.h"

#define DATA_N ((size_t)3 << 20)   /* 3 MiB: above the default copy_min of 1 MiB */

/* DATA_N pseudo-random bytes (xorshift), the same every call; the caller frees them. */
static uint8_t *data_new(void)
{
    uint8_t *p = malloc(DATA_N);
    uint64_t x = 0x9E3779B97F4A7C15ull;

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < DATA_N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
    return p;
}

/* path holds exactly the n bytes at want. */
static void assert_file(const char *path, const uint8_t *want, size_t n)
{
    size_t got_n;
    uint8_t *got = tu_slurp(path, &got_n);

    ck_assert_uint_eq(got_n, n);
    ck_assert_msg(memcmp(got, want, n) == 0, "'%s' differs from the expected bytes", path);
    free(got);
}

static void write_plain(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Odd piece sizes around the buffer's: below, equal, above, and tiny ones between. */
static void write_pieces(struct ofile *o, const uint8_t *p, size_t n)
{
    static const size_t piece[] = { 1, 7, 4096, 65535, 65536, 65537, 3, 1 << 20, 100 };
    struct err e = ERR_INIT;
    uint64_t start = o->pos;
    size_t off = 0;

    for (size_t i = 0; off < n; i++) {
        size_t k = piece[i % (sizeof piece / sizeof *piece)];
        if (k > n - off)
            k = n - off;
        ck_assert_int_eq(ofile_write(o, p + off, k, &e), 0);
        off += k;
    }
    ck_assert_uint_eq(o->pos - start, n);
}

START_TEST(ofile_ways_in_give_the_same_bytes)
{
    uint8_t *d = data_new();
    struct err e = ERR_INIT;
    struct ofile o = OFILE_INIT;
    int src;

    write_plain(tu_tpath("src.bin"), d, DATA_N);
    src = open(tu_tpath("src.bin"), O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(src, 0);

    /* unbuffered, then buffered (64 KiB), in odd pieces */
    for (int buffered = 0; buffered < 2; buffered++) {
        const char *out = tu_tpath(buffered ? "buffered.bin" : "plain.bin");
        ck_assert_int_eq(ofile_open(&o, out, 0, &e), 0);
        if (buffered)
            ck_assert_int_eq(ofile_buffer(&o, 65536, &e), 0);
        write_pieces(&o, d, DATA_N);
        ck_assert_int_eq(ofile_commit(&o, &e), 0);
        ofile_abort(&o);
        assert_file(out, d, DATA_N);
    }

    /* the data after a seek, then the front with pwrite (apr_write's order) */
    ck_assert_int_eq(ofile_open(&o, tu_tpath("pwrite.bin"), 0, &e), 0);
    ck_assert_int_eq(ofile_buffer(&o, 1 << 20, &e), 0);
    ck_assert_int_eq(ofile_seek(&o, 4096, &e), 0);
    write_pieces(&o, d + 4096, DATA_N - 4096);   /* pos counts from the seek */
    ck_assert_int_eq(ofile_flush(&o, &e), 0);
    ck_assert_int_eq(ofile_pwrite(&o, d, 4096, 0, &e), 0);
    ck_assert_int_eq(ofile_commit(&o, &e), 0);
    ofile_abort(&o);
    assert_file(tu_tpath("pwrite.bin"), d, DATA_N);

    /* copy: the kernel path, the forced fallback, and a refusal (EBADF) found on the way */
    for (int mode = 0; mode < 3; mode++) {
        static const char *const name[] = { "cfr.bin", "no_cfr.bin", "ebadf.bin" };
        const char *out = tu_tpath(name[mode]);
        ck_assert_int_eq(ofile_open(&o, out, 0, &e), 0);
        ck_assert_int_eq(ofile_buffer(&o, 65536, &e), 0);
        o.no_cfr = mode == 1;
        ck_assert_int_eq(ofile_write(&o, d, 10, &e), 0);           /* buffered first */
        ck_assert_int_eq(ofile_copy(&o, mode == 2 ? -1 : src, 10, d + 10, DATA_N - 20, &e), 0);
        ck_assert_int_eq(ofile_copy(&o, src, DATA_N - 10, d + DATA_N - 10, 10, &e), 0);
        ck_assert_uint_eq(o.pos, DATA_N);
        if (mode > 0)
            ck_assert_int_eq(o.no_cfr, 1);
        ck_assert_int_eq(ofile_commit(&o, &e), 0);
        ofile_abort(&o);
        assert_file(out, d, DATA_N);
    }
    ck_assert_msg(err_ok(&e), "%s", e.msg);
    close(src);
    free(d);
}
END_TEST

START_TEST(ofile_abort_leaves_nothing)
{
    struct err e = ERR_INIT;
    struct ofile o = OFILE_INIT;

    ofile_abort(NULL);
    ofile_abort(&o);                          /* OFILE_INIT */
    ck_assert_int_eq(ofile_open(&o, tu_tpath("a.bin"), 0, &e), 0);
    ck_assert_int_eq(ofile_buffer(&o, 4096, &e), 0);
    ck_assert_int_eq(ofile_write(&o, "abc", 3, &e), 0);
    ck_assert_int_eq(ofile_write(&o, "def", 3, &e), 0);
    ck_assert_int_eq(tu_dir_count(tu_dir), 1);  /* the temporary file */
    ofile_abort(&o);
    ck_assert_int_eq(tu_dir_count(tu_dir), 0);
    ck_assert_int_eq(o.fd, -1);
    ofile_abort(&o);                          /* twice */

    /* finished but not committed: still only a temporary file, removed by abort */
    ck_assert_int_eq(ofile_open(&o, tu_tpath("b.bin"), 0, &e), 0);
    ck_assert_int_eq(ofile_write(&o, "x", 1, &e), 0);
    ck_assert_int_eq(ofile_finish(&o, &e), 0);
    ck_assert_int_eq(access(tu_tpath("b.bin"), F_OK), -1);
    ofile_abort(&o);
    ck_assert_int_eq(tu_dir_count(tu_dir), 0);
    ck_assert_msg(err_ok(&e), "%s", e.msg);
}
END_TEST

START_TEST(ofile_commit_replaces_by_rename)
{
    struct err e = ERR_INIT;
    struct ofile a = OFILE_INIT, b = OFILE_INIT;
    struct stat before, after;
    char buf[8] = { 0 };
    int old;

    write_plain(tu_tpath("m.bin"), "old", 3);
    ck_assert_int_eq(stat(tu_tpath("m.bin"), &before), 0);
    old = open(tu_tpath("m.bin"), O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(old, 0);

    ck_assert_int_eq(ofile_open(&a, tu_tpath("m.bin"), 0, &e), 0);
    ck_assert_int_eq(ofile_write(&a, "new!", 4, &e), 0);
    ck_assert_int_eq(ofile_finish(&a, &e), 0);
    /* the temporary file is hidden, beside the target: ".m.bin.XXXXXX" */
    ck_assert_ptr_nonnull(strstr(a.tmp, "/.m.bin."));
    ck_assert_uint_eq(strlen(strrchr(a.tmp, '/')), strlen("/.m.bin.XXXXXX"));
    /* a second file finished too (the shards' pattern): nothing is in place yet */
    ck_assert_int_eq(ofile_open(&b, tu_tpath("n.bin"), 0, &e), 0);
    ck_assert_int_eq(ofile_write(&b, "nn", 2, &e), 0);
    ck_assert_int_eq(ofile_finish(&b, &e), 0);
    assert_file(tu_tpath("m.bin"), (const uint8_t *)"old", 3);
    ck_assert_int_eq(access(tu_tpath("n.bin"), F_OK), -1);
    ck_assert_int_eq(tu_dir_count(tu_dir), 3);

    ck_assert_int_eq(ofile_commit(&a, &e), 0);
    ck_assert_int_eq(ofile_commit(&b, &e), 0);
    ck_assert_ptr_null(a.tmp);
    ofile_abort(&a);                          /* after a commit: frees, removes nothing */
    ofile_abort(&b);
    assert_file(tu_tpath("m.bin"), (const uint8_t *)"new!", 4);
    assert_file(tu_tpath("n.bin"), (const uint8_t *)"nn", 2);
    ck_assert_int_eq(tu_dir_count(tu_dir), 2);
    /* a new inode took the name; a reader of the old file still sees all of it */
    ck_assert_int_eq(stat(tu_tpath("m.bin"), &after), 0);
    ck_assert(after.st_ino != before.st_ino);
    ck_assert_int_eq(pread(old, buf, sizeof buf, 0), 3);
    ck_assert_str_eq(buf, "old");
    close(old);
    ck_assert_msg(err_ok(&e), "%s", e.msg);
}
END_TEST

static mode_t mode_of(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 07777;
}

START_TEST(ofile_mode_follows_umask)
{
    static const mode_t masks[] = { 022, 027, 077, 002, 0 };
    mode_t saved = umask(022);
    struct err e = ERR_INIT;
    struct ofile o = OFILE_INIT;

    for (size_t i = 0; i < sizeof masks / sizeof *masks; i++) {
        umask(masks[i]);
        ck_assert_int_eq(ofile_open(&o, tu_tpath("m.bin"), 0, &e), 0);
        ck_assert_int_eq(fcntl(o.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ck_assert_int_eq(ofile_commit(&o, &e), 0);
        ofile_abort(&o);
        ck_assert_uint_eq(mode_of(tu_tpath("m.bin")), 0666 & ~masks[i]);
    }
    umask(saved);
    ck_assert_msg(err_ok(&e), "%s", e.msg);
}
END_TEST

/* A write that fails half way (the file size limit: EFBIG, as ENOSPC would) names the
 * target and leaves nothing behind. */
START_TEST(ofile_write_error_names_the_file)
{
    uint8_t *d = data_new();
    struct rlimit saved, lim;
    void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
    struct err e = ERR_INIT;
    struct ofile o = OFILE_INIT;

    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;                      /* the soft limit only: it can be raised back */
    if (lim.rlim_max == RLIM_INFINITY || lim.rlim_max > 65536)
        lim.rlim_cur = 65536;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ck_assert_int_eq(ofile_open(&o, tu_tpath("big.bin"), 0, &e), 0);
    ck_assert_int_eq(ofile_write(&o, d, DATA_N, &e), -1);
    ofile_abort(&o);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_xfsz);
    ck_assert_int_eq(e.code, ERR_IO);
    ck_assert_int_eq(e.sys_errno, EFBIG);
    ck_assert_msg(strstr(e.msg, "cannot write '") && strstr(e.msg, "/big.bin'"), "%s", e.msg);
    ck_assert_int_eq(tu_dir_count(tu_dir), 0);
    free(d);
}
END_TEST

/* /dev/full through ofile_attach: ENOSPC at the flush, naming the descriptor's name. */
START_TEST(ofile_enospc_names_the_file)
{
    struct err e = ERR_INIT;
    struct ofile o = OFILE_INIT;
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);

    if (fd < 0) {
        tu_skip("ofile_enospc_names_the_file (no /dev/full)");
        return;
    }
    ck_assert_int_eq(ofile_attach(&o, fd, "full.gguf", &e), 0);
    ck_assert_int_eq(ofile_buffer(&o, 4096, &e), 0);
    ck_assert_int_eq(ofile_write(&o, "abc", 3, &e), 0);       /* buffered */
    ck_assert_int_eq(ofile_commit(&o, &e), -1);
    ofile_abort(&o);
    ck_assert_int_eq(e.sys_errno, ENOSPC);
    ck_assert_str_eq(e.msg, "cannot write 'full.gguf': No space left on device");
    ck_assert_int_ne(fcntl(fd, F_GETFD), -1);                   /* still the caller's */
    close(fd);
}
END_TEST

START_TEST(ofile_open_and_rename_failures_leave_nothing)
{
    struct err e = ERR_INIT;
    struct ofile o = OFILE_INIT;

    /* no such directory */
    ck_assert_int_eq(ofile_open(&o, tu_tpath("nodir/x.bin"), 0, &e), -1);
    ck_assert_int_eq(e.sys_errno, ENOENT);
    ck_assert_msg(strstr(e.msg, "cannot create a temporary file beside '") &&
                  strstr(e.msg, "/nodir/x.bin'"), "%s", e.msg);
    ofile_abort(&o);
    ck_assert_int_eq(tu_dir_count(tu_dir), 0);

    /* the target is a non-empty directory: the rename fails, the temporary file goes */
    err_clear(&e);
    ck_assert_int_eq(mkdir(tu_tpath("d"), 0777), 0);
    write_plain(tu_tpath("d/keep"), "k", 1);
    ck_assert_int_eq(ofile_open(&o, tu_tpath("d"), 0, &e), 0);
    ck_assert_int_eq(ofile_write(&o, "abc", 3, &e), 0);
    ck_assert_int_eq(ofile_commit(&o, &e), -1);
    ck_assert_msg(strstr(e.msg, "cannot rename '") != NULL, "%s", e.msg);
    ofile_abort(&o);
    ck_assert_int_eq(tu_dir_count(tu_dir), 1);
    ck_assert_int_eq(tu_dir_count(tu_tpath("d")), 1);
}
END_TEST

/* ofile_kick starts writeback every OFILE_KICK bytes of what reached the file. */
START_TEST(ofile_kick_every_32_mib)
{
    size_t chunk = (size_t)1 << 20;
    uint8_t *z = calloc(1, chunk);
    struct err e = ERR_INIT;
    struct ofile o = OFILE_INIT;
    struct stat st;

    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(ofile_open(&o, tu_tpath("k.bin"), 0, &e), 0);
    ck_assert_int_eq(ofile_buffer(&o, 4096, &e), 0);
    ck_assert_int_eq(ofile_seek(&o, 64, &e), 0);
    ck_assert_uint_eq(o.kicked, 64);
    for (uint64_t i = 0; i + 1 < OFILE_KICK / chunk; i++) {
        ck_assert_int_eq(ofile_write(&o, z, chunk, &e), 0);
        ofile_kick(&o);
        ck_assert_uint_eq(o.kicked, 64);              /* not 32 MiB yet */
    }
    ck_assert_int_eq(ofile_write(&o, z, 100, &e), 0);   /* buffered: not in the file */
    ofile_kick(&o);
    ck_assert_uint_eq(o.kicked, 64);
    ck_assert_int_eq(ofile_write(&o, z, chunk, &e), 0); /* flushes the 100, then 1 MiB */
    ck_assert_int_eq(ofile_write(&o, z, 10, &e), 0);    /* buffered again */
    ofile_kick(&o);
#ifdef SYNC_FILE_RANGE_WRITE
    ck_assert_uint_eq(o.kicked, 64 + OFILE_KICK + 100);  /* what reached the file */
#endif
    ck_assert_int_eq(ofile_flush(&o, &e), 0);
    ofile_kick(&o);                                      /* 10 bytes more: no kick */
#ifdef SYNC_FILE_RANGE_WRITE
    ck_assert_uint_eq(o.kicked, 64 + OFILE_KICK + 100);
#endif
    ck_assert_int_eq(ofile_commit(&o, &e), 0);
    ofile_abort(&o);
    ck_assert_int_eq(stat(tu_tpath("k.bin"), &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)(64 + OFILE_KICK + 110));
    ck_assert_msg(err_ok(&e), "%s", e.msg);
    free(z);
}
END_TEST

Suite *ofile_suite(void)
{
    Suite *s = suite_create("ofile");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ofile_ways_in_give_the_same_bytes);
    tcase_add_test(tc, ofile_abort_leaves_nothing);
    tcase_add_test(tc, ofile_commit_replaces_by_rename);
    tcase_add_test(tc, ofile_mode_follows_umask);
    tcase_add_test(tc, ofile_write_error_names_the_file);
    tcase_add_test(tc, ofile_enospc_names_the_file);
    tcase_add_test(tc, ofile_open_and_rename_failures_leave_nothing);
    tcase_add_test(tc, ofile_kick_every_32_mib);
    suite_add_tcase(s, tc);
    return s;
}
