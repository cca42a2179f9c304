/*
 * check_stream.c - common/stream: the streaming reader of whole-tensor and whole-file
 * passes.  Every pass is checked byte for byte against the file, with and without the
 * read-ahead thread, at odd offsets, lengths and chunk sizes; reads are made short,
 * interrupted (EINTR) and cut off through the injectable pread; a file truncated after
 * it was opened must give an error naming the file and the offset, never a crash.
 */
#include <check.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tu.h"
#include "../../common/mfile.h"
#include "../../common/stream.h"
#include "../../dequant/dq.h"
#include "../../common/banned.h"

#define FSIZE ((size_t)(3u << 20) + 12345)

static uint8_t *g_data;

static uint8_t byte_at(uint64_t i)
{
    uint64_t x = i * 0x9E3779B97F4A7C15ull;
    return (uint8_t)(x >> 56 ^ i);
}

/* A file of FSIZE pseudo-random bytes in a fresh directory; *dir to free. */
static char *make_file(char **dir, size_t n)
{
    char *p;
    FILE *f;

    *dir = tu_tmpdir_new(NULL);
    p = tu_path(*dir, "data.bin");
    g_data = realloc(g_data, n ? n : 1);
    ck_assert_ptr_nonnull(g_data);
    for (size_t i = 0; i < n; i++)
        g_data[i] = byte_at(i);
    f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(g_data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    return p;
}

/* Read [off, off+len) as one pass; every chunk must follow on and match the file. */
static void pass_ok(struct stream *s, uint64_t off, uint64_t len, size_t chunk)
{
    struct err e = ERR_INIT;
    const uint8_t *p;
    size_t n;
    uint64_t at = off;
    int rc;

    ck_assert_int_eq(stream_begin(s, off, len, &e), 0);
    while ((rc = stream_next(s, &p, &n, &e)) == 1) {
        ck_assert_uint_gt(n, 0);
        ck_assert_uint_le(n, chunk);
        ck_assert_uint_le(at + n, off + len);
        ck_assert_msg(memcmp(p, g_data + at, n) == 0, "bytes differ in [%llu, +%zu)",
                      (unsigned long long)at, n);
        at += n;
    }
    ck_assert_msg(rc == 0, "%s", e.msg);
    ck_assert_uint_eq(at, off + len);
    ck_assert_int_eq(stream_next(s, &p, &n, &e), 0);   /* stays at the end */
}

static const uint64_t odd_ranges[][2] = {
    { 0, FSIZE }, { 1, FSIZE - 1 }, { 4095, 4097 }, { 12345, 65536 * 3 + 7 },
    { FSIZE - 1, 1 }, { FSIZE, 0 }, { 0, 0 }, { 777, 65536 }, { 65536, 65535 },
    { 100, 1 << 20 }, { FSIZE - 200000, 200000 },
};

START_TEST(stream_passes_match_the_file)
{
    static const unsigned flags[] = { 0, STREAM_AHEAD, STREAM_AHEAD | STREAM_DROP, STREAM_DROP };
    static const size_t chunks[] = { 4096, 65536, 100000, STREAM_CHUNK };
    char *dir, *path = make_file(&dir, FSIZE);
    struct mfile mf;
    struct err e = ERR_INIT;

    ck_assert_int_eq(mfile_open(&mf, path, &e), 0);
    ck_assert_int_ge(mf.fd, 0);
    for (size_t f = 0; f < sizeof flags / sizeof *flags; f++)
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
            struct stream s;
            size_t chunk = (chunks[c] + 4095) / 4096 * 4096;   /* rounded to pages */
            ck_assert_int_eq(stream_open(&s, &mf, chunks[c], flags[f], &e), 0);
            for (size_t r = 0; r < sizeof odd_ranges / sizeof *odd_ranges; r++)
                pass_ok(&s, odd_ranges[r][0], odd_ranges[r][1], chunk);
            stream_close(&s);
        }
    mfile_close(&mf);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(stream_abandoned_pass_then_another)
{
    char *dir, *path = make_file(&dir, FSIZE);
    struct mfile mf;
    struct stream s;
    struct err e = ERR_INIT;
    const uint8_t *p;
    size_t n;

    ck_assert_int_eq(mfile_open(&mf, path, &e), 0);
    ck_assert_int_eq(stream_open(&s, &mf, 65536, STREAM_AHEAD, &e), 0);
    for (int k = 0; k < 50; k++) {
        /* take one chunk of a long pass, then start another elsewhere */
        ck_assert_int_eq(stream_begin(&s, (uint64_t)k * 1000, FSIZE - (uint64_t)k * 1000, &e), 0);
        ck_assert_int_eq(stream_next(&s, &p, &n, &e), 1);
        ck_assert(memcmp(p, g_data + k * 1000, n) == 0);
        pass_ok(&s, (uint64_t)k * 4099, 300000, 65536);
    }
    stream_close(&s);
    mfile_close(&mf);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

/* ---- injected reads */

static atomic_int g_calls;
static atomic_llong g_cut;   /* reads at or past this offset return 0 (EOF) */

static ssize_t pread_short_eintr(int fd, void *buf, size_t n, off_t off)
{
    int k = atomic_fetch_add(&g_calls, 1);
    if (k % 3 == 1) {
        errno = EINTR;
        return -1;
    }
    if (off >= (off_t)atomic_load(&g_cut))
        return 0;
    if ((long long)n > atomic_load(&g_cut) - (long long)off)
        n = (size_t)(atomic_load(&g_cut) - (long long)off);
    return pread(fd, buf, n > 1000 + (size_t)(k % 7) ? 1000 + (size_t)(k % 7) : n, off);
}

static ssize_t pread_eio(int fd, void *buf, size_t n, off_t off)
{
    (void)fd;
    (void)buf;
    (void)n;
    (void)off;
    errno = EIO;
    return -1;
}

START_TEST(stream_short_reads_and_eintr)
{
    char *dir, *path = make_file(&dir, 400000);
    struct mfile mf;
    struct err e = ERR_INIT;

    atomic_store(&g_cut, (long long)1 << 62);
    ck_assert_int_eq(mfile_open(&mf, path, &e), 0);
    for (unsigned f = 0; f < 2; f++) {
        struct stream s;
        const uint8_t *p;
        ck_assert_int_eq(stream_open(&s, &mf, 16384, f ? STREAM_AHEAD : 0, &e), 0);
        stream_set_pread(&s, pread_short_eintr);
        pass_ok(&s, 0, 400000, 16384);
        pass_ok(&s, 3, 123456, 16384);
        p = stream_at(&s, 99999, 50001, &e);
        ck_assert_msg(p != NULL, "%s", e.msg);
        ck_assert(memcmp(p, g_data + 99999, 50001) == 0);
        stream_close(&s);
    }
    mfile_close(&mf);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(stream_eof_inside_a_range)
{
    char *dir, *path = make_file(&dir, 400000);
    struct mfile mf;

    ck_assert_int_eq(mfile_open(&mf, path, &(struct err)ERR_INIT), 0);
    atomic_store(&g_cut, 200000);
    for (unsigned f = 0; f < 2; f++) {
        struct stream s;
        struct err e = ERR_INIT;
        const uint8_t *p;
        size_t n;
        int rc;
        ck_assert_int_eq(stream_open(&s, &mf, 16384, f ? STREAM_AHEAD : 0, &e), 0);
        stream_set_pread(&s, pread_short_eintr);
        ck_assert_int_eq(stream_begin(&s, 5, 399000, &e), 0);
        while ((rc = stream_next(&s, &p, &n, &e)) == 1)
            ;
        ck_assert_int_eq(rc, -1);
        ck_assert_int_eq(e.code, ERR_IO);
        ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, "offset 200000"), "%s", e.msg);
        err_clear(&e);
        ck_assert_ptr_null(stream_at(&s, 199000, 2000, &e));
        ck_assert_msg(strstr(e.msg, "offset 200000"), "%s", e.msg);
        /* a plain read error: the errno's text and the offset */
        err_clear(&e);
        stream_set_pread(&s, pread_eio);
        ck_assert_ptr_null(stream_at(&s, 4096, 10, &e));
        ck_assert_int_eq(e.sys_errno, EIO);
        ck_assert_msg(strstr(e.msg, "offset 4096"), "%s", e.msg);
        stream_close(&s);
    }
    atomic_store(&g_cut, (long long)1 << 62);
    mfile_close(&mf);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(stream_truncated_file_is_an_error)
{
    char *dir, *path = make_file(&dir, FSIZE);
    struct mfile mf;

    ck_assert_int_eq(mfile_open(&mf, path, &(struct err)ERR_INIT), 0);
    ck_assert_int_eq(truncate(path, 300000), 0);   /* shrinks after it was validated */
    for (unsigned f = 0; f < 2; f++) {
        struct stream s;
        struct err e = ERR_INIT;
        const uint8_t *p;
        size_t n;
        int rc;
        ck_assert_int_eq(stream_open(&s, &mf, 65536, f ? STREAM_AHEAD : 0, &e), 0);
        ck_assert_int_eq(stream_begin(&s, 1000, 2000000, &e), 0);
        while ((rc = stream_next(&s, &p, &n, &e)) == 1)
            ;
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, "file ends at offset 300000"),
                      "%s", e.msg);
        /* the bytes before the cut are still read */
        err_clear(&e);
        pass_ok(&s, 0, 300000, 65536);
        stream_close(&s);
    }
    mfile_close(&mf);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(stream_refuses_ranges_past_the_size)
{
    char *dir, *path = make_file(&dir, 5000);
    struct mfile mf;
    struct stream s;
    struct err e = ERR_INIT;

    ck_assert_int_eq(mfile_open(&mf, path, &e), 0);
    ck_assert_int_eq(stream_open(&s, &mf, 0, STREAM_AHEAD, &e), 0);
    ck_assert_int_eq(stream_begin(&s, 4000, 1001, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_uint_eq(e.off, 4000);
    ck_assert_msg(strstr(e.msg, path) != NULL, "%s", e.msg);
    err_clear(&e);
    ck_assert_int_eq(stream_begin(&s, UINT64_MAX, 2, &e), -1);
    err_clear(&e);
    ck_assert_ptr_null(stream_at(&s, 5001, 0, &e));
    err_clear(&e);
    ck_assert_ptr_nonnull(stream_at(&s, 5000, 0, &e));
    pass_ok(&s, 0, 5000, STREAM_CHUNK);
    stream_close(&s);
    stream_close(&s);   /* twice is harmless */
    mfile_close(&mf);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(stream_memory_and_empty_sources)
{
    struct mfile mf;
    struct stream s;
    struct err e = ERR_INIT;
    const uint8_t *p;
    size_t n;
    char *dir, *path = make_file(&dir, 0);

    /* a wrapped buffer: chunks point into it, no copy */
    g_data = realloc(g_data, 300000);
    ck_assert_ptr_nonnull(g_data);
    for (size_t i = 0; i < 300000; i++)
        g_data[i] = byte_at(i);
    ck_assert_int_eq(mfile_wrap(&mf, g_data, 300000, "mem", &e), 0);
    ck_assert_int_eq(stream_open(&s, &mf, 65536, STREAM_AHEAD, &e), 0);
    ck_assert_int_eq(stream_begin(&s, 10, 100000, &e), 0);
    ck_assert_int_eq(stream_next(&s, &p, &n, &e), 1);
    ck_assert_ptr_eq(p, g_data + 10);
    pass_ok(&s, 1, 299999, 65536);
    ck_assert_ptr_eq(stream_at(&s, 7, 9, &e), g_data + 7);
    stream_close(&s);
    mfile_close(&mf);
    /* an empty file: no descriptor, only the empty range */
    ck_assert_int_eq(mfile_open(&mf, path, &e), 0);
    ck_assert_int_eq(stream_open(&s, &mf, 0, STREAM_AHEAD, &e), 0);
    ck_assert_int_eq(stream_begin(&s, 0, 0, &e), 0);
    ck_assert_int_eq(stream_next(&s, &p, &n, &e), 0);
    ck_assert_int_eq(stream_begin(&s, 0, 1, &e), -1);
    stream_close(&s);
    mfile_close(&mf);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

/* dq_stats_add over pieces of whole DQ_STATS_CHUNKs (what apr-inspect --stats streams)
 * gives dq_tensor_stats's numbers bit for bit, non-finite values and every thread count
 * included. */
START_TEST(stream_stats_pieces_equal_whole)
{
    static const int types[] = { DT_F32, DT_F16, DT_Q8_0, DT_Q4_K };
    const int64_t n = (int64_t)DQ_STATS_CHUNK * 7 + 256 * 3;   /* a short last chunk */
    float *x = malloc((size_t)n * sizeof *x);
    uint8_t *q = malloc((size_t)n * 4);
    struct err e = ERR_INIT;

    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(q);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((int)(byte_at((uint64_t)i) ^ byte_at((uint64_t)i * 7)) - 128) / 37.0f;
    x[5] = 0.0f;
    x[n / 2] = 1.0f / 0.0f;
    x[n - 3] = 0.0f / 0.0f;
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        const struct dtype_info *di = dtype_get(types[k]);
        struct model_tensor t;
        struct dq_stats whole, part;
        struct dq_stats_acc a;
        uint64_t bytes;
        ck_assert_int_eq(dtype_nbytes(types[k], n, &bytes, &e), 0);
        ck_assert_int_eq(dq_quantize(types[k], x, q, 1, n, &e), 0);
        memset(&t, 0, sizeof t);
        t.name.p = "t";
        t.name.n = 1;
        t.dtype = types[k];
        t.n_dims = 1;
        t.shape[0] = n;
        t.n_elems = n;
        t.size = bytes;
        t.data = q;
        ck_assert_int_eq(dq_tensor_stats(&t, 2, &whole, &e), 0);
        for (int threads = 1; threads <= 3; threads++) {
            dq_stats_begin(&a);
            for (int64_t e0 = 0; e0 < n; e0 += 2 * DQ_STATS_CHUNK) {
                int64_t m = n - e0 < 2 * DQ_STATS_CHUNK ? n - e0 : 2 * DQ_STATS_CHUNK;
                uint64_t off = (uint64_t)(e0 / di->blck) * di->type_size, len;
                ck_assert_int_eq(dtype_nbytes(types[k], m, &len, &e), 0);
                ck_assert_int_eq(dq_stats_add(&a, types[k], q + off, len, m, threads, &e), 0);
            }
            dq_stats_end(&a, &part);
            ck_assert_msg(memcmp(&whole, &part, sizeof whole) == 0, "%s, %d threads: mean %.17g vs %.17g",
                          di->name, threads, whole.mean, part.mean);
        }
        ck_assert_uint_eq(whole.n_inf, types[k] == DT_F32 || types[k] == DT_F16 ? 1 : whole.n_inf);
    }
    /* a short piece's bytes are checked */
    {
        struct dq_stats_acc a;
        dq_stats_begin(&a);
        ck_assert_int_eq(dq_stats_add(&a, DT_F16, q, 10, 6, 1, &e), -1);
        ck_assert_int_eq(e.code, ERR_FORMAT);
    }
    free(x);
    free(q);
}
END_TEST

/* stream_set_hook: what the hook saw, and on which thread. */
struct hook_seen {
    uint64_t  next;          /* the offset the next chunk must start at */
    uint64_t  chunks;
    int       off_thread;    /* a chunk fed on a thread other than the caller's */
    pthread_t caller;
};

static void hook_check(void *ctx, uint64_t off, const uint8_t *p, size_t n)
{
    struct hook_seen *h = ctx;

    /* ck_assert is not for other threads: failures are recorded and checked after */
    if (off != h->next || memcmp(p, g_data + off, n) != 0)
        h->next = UINT64_MAX;
    else
        h->next = off + n;
    h->chunks++;
    if (!pthread_equal(pthread_self(), h->caller))
        h->off_thread = 1;
}

/* Every chunk of a pass reaches the hook once, in order, with the file's bytes, before
 * the caller gets it; with STREAM_AHEAD on the read-ahead thread (a pass longer than a
 * chunk), without it on the caller's; memory sources too. */
START_TEST(stream_hook_sees_every_chunk)
{
    static const unsigned flags[] = { 0, STREAM_AHEAD };
    char *dir, *path = make_file(&dir, FSIZE);
    struct mfile mf, mm;
    struct err e = ERR_INIT;

    ck_assert_int_eq(mfile_open(&mf, path, &e), 0);
    ck_assert_int_eq(mfile_wrap(&mm, g_data, FSIZE, "mem", &e), 0);
    for (int src = 0; src < 2; src++)
        for (size_t f = 0; f < 2; f++)
            for (size_t r = 0; r < sizeof odd_ranges / sizeof *odd_ranges; r++) {
                struct stream s;
                struct hook_seen h = { odd_ranges[r][0], 0, 0, pthread_self() };
                uint64_t len = odd_ranges[r][1];
                ck_assert_int_eq(stream_open(&s, src ? &mm : &mf, 65536, flags[f], &e), 0);
                stream_set_hook(&s, hook_check, &h);
                pass_ok(&s, odd_ranges[r][0], len, 65536);
                stream_close(&s);
                ck_assert_uint_eq(h.next, odd_ranges[r][0] + len);
                ck_assert_uint_eq(h.chunks, (len + 65535) / 65536);
                ck_assert_int_eq(h.off_thread, src == 0 && flags[f] && len > 65536);
            }
    mfile_close(&mm);
    mfile_close(&mf);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

static void teardown(void)
{
    free(g_data);
    g_data = NULL;
}

Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("stream");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stream_passes_match_the_file);
    tcase_add_test(tc, stream_abandoned_pass_then_another);
    tcase_add_test(tc, stream_short_reads_and_eintr);
    tcase_add_test(tc, stream_eof_inside_a_range);
    tcase_add_test(tc, stream_truncated_file_is_an_error);
    tcase_add_test(tc, stream_refuses_ranges_past_the_size);
    tcase_add_test(tc, stream_memory_and_empty_sources);
    tcase_add_test(tc, stream_stats_pieces_equal_whole);
    tcase_add_test(tc, stream_hook_sees_every_chunk);
    suite_add_tcase(s, tc);
    return s;
}
