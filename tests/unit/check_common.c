/*
 * check_common.c - the common/ layer: bounded reader, checked sizes, JSON reading
 * and escaping, SHA-256, strict number parsing, threads, the dtype table.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "../../common/cli.h"
#include "../../common/crc.h"
#include "../../common/dirwalk.h"
#include "../../common/json.h"
#include "../../common/path.h"
#include "../../common/rd.h"
#include "../../common/sha256.h"
#include "../../common/sz.h"
#include "../../common/threads.h"
#include "../../common/vec.h"
#include "../../formats/dtype.h"
#include "tu.h"

START_TEST(rd_reads_le_and_stops_at_end)
{
    static const uint8_t buf[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
    struct rd r;
    struct err e = ERR_INIT;
    uint32_t a;
    uint64_t b;
    uint16_t c;

    rd_init(&r, buf, sizeof buf, "t.bin");
    ck_assert_int_eq(rd_u32(&r, &a, "a", &e), 0);
    ck_assert_uint_eq(a, 0x04030201u);
    ck_assert_int_eq(rd_u64(&r, &b, "b", &e), -1);      /* 7 bytes left */
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_uint_eq(e.off, 4);
    ck_assert_uint_eq(rd_tell(&r), 4);                  /* cursor unmoved */
    ck_assert_ptr_nonnull(strstr(e.msg, "t.bin: truncated b"));
    err_clear(&e);
    ck_assert_int_eq(rd_u16(&r, &c, "c", &e), 0);
    ck_assert_uint_eq(c, 0x0605);
}
END_TEST

START_TEST(rd_str_caps_and_bounds)
{
    uint8_t buf[16] = { 5, 0, 0, 0, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o' };
    struct rd r;
    struct err e = ERR_INIT;
    struct slice s;

    rd_init(&r, buf, 13, NULL);
    ck_assert_int_eq(rd_str(&r, 8, 4, &s, "name", &e), -1);   /* over the cap */
    ck_assert_uint_eq(rd_tell(&r), 0);
    err_clear(&e);
    ck_assert_int_eq(rd_str(&r, 8, 100, &s, "name", &e), 0);
    ck_assert(slice_eq_cstr(s, "hello"));
    buf[0] = 6;                                                /* one past the end */
    rd_init(&r, buf, 13, NULL);
    err_clear(&e);
    ck_assert_int_eq(rd_str(&r, 8, 100, &s, "name", &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
}
END_TEST

START_TEST(sz_checks_overflow)
{
    uint64_t v;
    int64_t i;
    ck_assert_int_eq(sz_add(UINT64_MAX, 1, &v), -1);
    ck_assert_int_eq(sz_mul(1ull << 33, 1ull << 31, &v), -1);
    ck_assert_int_eq(sz_mul(1ull << 31, 1ull << 31, &v), 0);
    ck_assert_int_eq(sz_align(33, 32, &v), 0);
    ck_assert_uint_eq(v, 64);
    ck_assert_int_eq(sz_align(UINT64_MAX - 3, 32, &v), -1);
    ck_assert_int_eq(sz_align(5, 3, &v), -1);
    ck_assert(sz_range_ok(10, 5, 15));
    ck_assert(!sz_range_ok(10, 6, 15));
    ck_assert(!sz_range_ok(UINT64_MAX, 2, 15));
    ck_assert_int_eq(sz_mul_i64(-1, 2, &i), -1);
    ck_assert_int_eq(sz_mul_i64(INT64_MAX, 2, &i), -1);
}
END_TEST

static int parse(const char *s, struct json_doc *d, struct err *e)
{
    return json_parse(d, s, strlen(s), 100, "x.json", e);
}

START_TEST(json_accepts_and_reads)
{
    struct json_doc d;
    struct err e = ERR_INIT;
    uint64_t u;
    int64_t i;
    double f;
    struct sbuf b = SBUF_INIT(1024);

    ck_assert_int_eq(parse(" {\"a\": 18446744073709551615, \"b\": -9223372036854775808, "
                           "\"c\": 1.5e-3, \"d\": \"x\\u00e9\\ud83d\\ude00\\n\", \"e\": [true, null]} ",
                           &d, &e), 0);
    ck_assert_int_eq(json_u64(&d, json_get(&d, 0, "a"), &u, "a", &e), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(json_i64(&d, json_get(&d, 0, "b"), &i, "b", &e), 0);
    ck_assert(i == INT64_MIN);
    ck_assert_int_eq(json_f64(&d, json_get(&d, 0, "c"), &f, "c", &e), 0);
    ck_assert(f == 1.5e-3);
    ck_assert_int_eq(json_str(&d, json_get(&d, 0, "d"), &b, &e), 0);
    ck_assert_str_eq(b.p, "x\xc3\xa9\xf0\x9f\x98\x80\n");
    ck_assert_int_eq(json_get(&d, 0, "zz"), -1);
    ck_assert_int_eq(json_u64(&d, json_get(&d, 0, "c"), &u, "c", &e), -1);   /* not an integer */
    sbuf_release(&b);
    json_release(&d);
}
END_TEST

static const struct { const char *text, *msg; } bad_json[] = {
    { "{\"a\":1,\"a\":2}", "duplicate JSON key 'a'" },
    { "{\"a\":tru}", "bad literal" },
    { "{\"a\":01}", "bad number" },
    { "{\"a\":1.}", "bad number" },
    { "{\"a\":\"\\x\"}", "syntax error" },
    { "{\"a\":\"\\u12\"}", "syntax error" },
    { "{\"a\":\"\xff\"}", "invalid UTF-8" },
    { "{\"a\":\"\xc0\x80\"}", "invalid UTF-8" },
    { "{\"a\":1} x", "syntax error" },
    { "{\"a\":1} ", NULL },
    { "{\"a\":1", "truncated document" },
    { "", "empty document" },
    { "{\"a\":\"\t\"}", "control character" },
};

START_TEST(json_rejects)
{
    struct json_doc d;
    struct err e = ERR_INIT;
    if (!bad_json[_i].msg) {   /* trailing whitespace is fine */
        ck_assert_int_eq(parse(bad_json[_i].text, &d, &e), 0);
        json_release(&d);
        return;
    }
    ck_assert_int_eq(parse(bad_json[_i].text, &d, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, bad_json[_i].msg) != NULL, "'%s': %s", bad_json[_i].text, e.msg);
    ck_assert_msg(strstr(e.msg, "x.json: ") == e.msg, "%s", e.msg);
    ck_assert(e.off >= 100);
}
END_TEST

START_TEST(json_nesting_is_bounded)
{
    char buf[1200];
    struct json_doc d;
    struct err e = ERR_INIT;
    for (int k = 0; k < 600; k++) {
        buf[k] = '[';
        buf[1199 - k] = ']';
    }
    ck_assert_int_eq(json_parse(&d, buf, sizeof buf, 0, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "nesting too deep"));
}
END_TEST

START_TEST(json_writer_escapes)
{
    struct sbuf b = SBUF_INIT(4096);
    struct json_w w;
    json_w_init(&w, &b, 0);
    json_w_obj(&w);
    json_w_key(&w, "k\"");
    json_w_str_n(&w, "a\x1b[31m\xff\xc2\x9b\xc3\xa9\\", 12);
    json_w_key(&w, "f");
    json_w_f32(&w, 1e-5f);
    json_w_key(&w, "g");
    json_w_f64(&w, 10000.0);
    json_w_key(&w, "n");
    json_w_f64(&w, NAN);
    json_w_key(&w, "a");
    json_w_arr(&w);
    json_w_u64(&w, 1);
    json_w_i64(&w, -2);
    json_w_arr_end(&w);
    json_w_obj_end(&w);
    ck_assert_str_eq(b.p, "{\"k\\\"\":\"a\\u001b[31m\\u00ff\\u009b\xc3\xa9\\\\\",\"f\":1e-05,"
                          "\"g\":10000.0,\"n\":null,\"a\":[1,-2]}");
    sbuf_release(&b);
}
END_TEST

START_TEST(sha256_known_vectors)
{
    uint8_t d[32];
    char hex[65];
    struct err e = ERR_INIT;
    ck_assert_int_eq(sha256_buf("abc", 3, d, &e), 0);
    sha256_hex(d, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(sha256_buf("", 0, d, &e), 0);
    sha256_hex(d, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    uint8_t back[32];
    ck_assert_int_eq(sha256_parse_hex(hex, 64, back), 0);
    ck_assert_mem_eq(back, d, 32);
    ck_assert_int_eq(sha256_parse_hex("zz", 2, back), -1);
}
END_TEST

START_TEST(cli_numbers_are_strict)
{
    uint64_t u;
    double f;
    ck_assert_int_eq(cli_parse_u64("42", 0, 100, &u), 0);
    ck_assert_uint_eq(u, 42);
    ck_assert_int_eq(cli_parse_u64("-1", 0, 100, &u), -1);
    ck_assert_int_eq(cli_parse_u64("4x", 0, 100, &u), -1);
    ck_assert_int_eq(cli_parse_u64("", 0, 100, &u), -1);
    ck_assert_int_eq(cli_parse_u64("101", 0, 100, &u), -1);
    ck_assert_int_eq(cli_parse_u64("99999999999999999999999", 0, UINT64_MAX, &u), -1);
    ck_assert_int_eq(cli_parse_f64("0.999", 0, 1, &f), 0);
    ck_assert_int_eq(cli_parse_f64("nan", 0, 1, &f), -1);
    ck_assert_int_eq(cli_parse_f64("1e400", 0, 1e308, &f), -1);
}
END_TEST

static int sum_fn(void *arg, int64_t b, int64_t e, int w)
{
    int64_t *out = arg;
    (void)w;
    for (int64_t i = b; i < e; i++)
        __atomic_add_fetch(out, i, __ATOMIC_RELAXED);
    return 0;
}

START_TEST(threads_cover_every_item_once)
{
    for (int nt = 1; nt <= 5; nt++) {
        int64_t s = 0;
        ck_assert_int_eq(threads_run(nt, 1001, sum_fn, &s), 0);
        ck_assert(s == 1000 * 1001 / 2);
    }
}
END_TEST

START_TEST(dtype_table_facts)
{
    uint64_t n;
    struct err e = ERR_INIT;
    /* every ggml id 0..42: valid except the removed ones */
    static const int removed[] = { 4, 5, 31, 32, 33, 36, 37, 38 };
    for (uint32_t id = 0; id < 43; id++) {
        int r = 0;
        for (size_t k = 0; k < sizeof removed / sizeof removed[0]; k++)
            r |= removed[k] == (int)id;
        ck_assert_int_eq(dtype_from_ggml(id) >= 0, !r);
    }
    ck_assert_int_eq(dtype_from_ggml(43), -1);
    ck_assert_int_eq(dtype_get(DT_Q4_K)->type_size, 144);
    ck_assert_int_eq(dtype_get(DT_NVFP4)->blck, 64);
    ck_assert_int_eq(dtype_from_st("BF16", 4), DT_BF16);
    ck_assert_int_eq(dtype_from_st("F8_E4M3", 7), DT_F8_E4M3);
    ck_assert_int_eq(dtype_from_st("F8", 2), -1);
    ck_assert_int_eq(dtype_from_apr(30), DT_BF16);
    ck_assert_int_eq(dtype_from_apr(8), DT_APR_Q4);
    ck_assert_int_eq(dtype_from_apr(9), DT_APR_Q8);
    ck_assert_int_eq(dtype_from_apr(128), DT_APR_Q4);
    ck_assert_int_eq(dtype_from_apr(2), -1);
    ck_assert_int_eq(dtype_nbytes(DT_Q8_0, 64, &n, &e), 0);
    ck_assert_uint_eq(n, 68);
    ck_assert_int_eq(dtype_nbytes(DT_Q8_0, 65, &n, &e), -1);
    err_clear(&e);
    ck_assert_int_eq(dtype_nbytes(DT_APR_Q4, 33, &n, &e), 0);
    ck_assert_uint_eq(n, 36);
    ck_assert_int_eq(dtype_nbytes(DT_F4, 3, &n, &e), -1);
    err_clear(&e);
    ck_assert_int_eq(dtype_nbytes(DT_F6_E2M3, 8, &n, &e), 0);
    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(dtype_nbytes(DT_F64, INT64_MAX, &n, &e), -1);
    ck_assert_int_eq(dtype_from_name("q4_k"), DT_Q4_K);
}
END_TEST

/* crc_update and crc_combine give zlib's CRC-32 for every length 0..300 (the folding
 * path, its 16-byte steps and the zlib tail), at every alignment 0..15, in pieces, and
 * over a 5 MiB buffer. */
START_TEST(crc_matches_zlib)
{
    size_t n = (size_t)5 << 20;
    uint8_t *b = malloc(n + 16);
    uint32_t x = 0x12345678u, whole, a, c;

    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n + 16; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (uint8_t)(x >> 7);
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len <= 300; len++)
            ck_assert_msg(crc_update(0, b + off, len) == (uint32_t)crc32_z(0, b + off, len),
                          "off %zu len %zu (clmul %d)", off, len, crc_has_clmul());
    ck_assert_uint_eq(crc_update(0x9abcdef0u, b + 3, 1000),
                      (uint32_t)crc32_z(0x9abcdef0u, b + 3, 1000));
    whole = (uint32_t)crc32_z(0, b + 1, n);
    ck_assert_uint_eq(crc_update(0, b + 1, n), whole);
    /* pieces chained, and pieces combined */
    a = crc_update(0, b + 1, 777);
    ck_assert_uint_eq(crc_update(a, b + 1 + 777, n - 777), whole);
    c = crc_update(0, b + 1 + 777, n - 777);
    ck_assert_uint_eq(crc_combine(a, c, n - 777), whole);
    ck_assert_uint_eq(crc_combine(a, 0, 0), a);
    ck_assert_uint_eq(crc_combine(0, whole, n), whole);   /* an empty first part */
    for (uint64_t k = 0; k < 200; k += 7) {
        a = crc_update(0, b, (size_t)k);
        c = crc_update(0, b + k, 4096);
        ck_assert_uint_eq(crc_combine(a, c, 4096), (uint32_t)crc32_z(0, b, (size_t)k + 4096));
        ck_assert_uint_eq(crc_combine(a, c, 4096),
                          (uint32_t)crc32_combine(a, c, (z_off_t)4096));
    }
    free(b);
}
END_TEST

START_TEST(path_helpers)
{
    static const struct { const char *p, *base; size_t n; } b[] = {
        { "a/b/c.gguf", "c.gguf", 6 }, { "c.gguf", "c.gguf", 6 }, { "dir/", "dir/", 3 },
        { "a//dir//", "dir//", 3 }, { "/", "/", 1 }, { "", "", 0 }, { "/x", "x", 1 },
    };
    char buf[SHAPE_STR_MAX], *j;
    const int64_t sh[3] = { 4096, 32000, 7 };

    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        size_t n;
        const char *r = path_base(b[i].p, &n);
        ck_assert_str_eq(r, b[i].base);
        ck_assert_uint_eq(n, b[i].n);
    }
    ck_assert(path_same_base("x/model.apr", "y/z/model.apr/"));
    ck_assert(!path_same_base("x/model.apr", "model.gguf"));
    ck_assert_str_eq((j = path_join("a", "b")), "a/b");
    free(j);
    ck_assert_str_eq((j = path_join("a/", "b/c")), "a/b/c");
    free(j);
    ck_assert_str_eq((j = path_join("", "b")), "b");
    free(j);
    ck_assert(str_ends_with("model.gguf", ".gguf") && !str_ends_with("model.GGUF", ".gguf"));
    ck_assert(str_ends_with_ci("model.GGUF", ".gguf") && !str_ends_with_ci("f", ".gguf"));
    ck_assert(str_ends_with(".gguf", ".gguf") && str_ends_with("x", ""));
    ck_assert_str_eq(shape_fmt(buf, sizeof buf, sh, 2, SHAPE_BRACKETS | SHAPE_SPACED), "[4096, 32000]");
    ck_assert_str_eq(shape_fmt(buf, sizeof buf, sh, 3, SHAPE_BRACKETS), "[4096,32000,7]");
    ck_assert_str_eq(shape_fmt(buf, sizeof buf, sh, 3, 0), "4096,32000,7");
    ck_assert_str_eq(shape_fmt(buf, sizeof buf, sh, 0, SHAPE_BRACKETS), "[]");
    ck_assert_str_eq(shape_fmt(buf, 6, sh, 3, 0), "4096,");   /* truncated, terminated */
}
END_TEST

START_TEST(vec_grows_and_zeroes)
{
    struct err e = ERR_INIT;
    uint64_t *v = NULL;
    size_t cap = 0;

    for (size_t n = 0; n < 1000; n++) {
        ck_assert_int_eq(vec_reserve((void **)&v, &cap, n + 1, sizeof *v, &e), 0);
        ck_assert(cap >= n + 1);
        ck_assert_uint_eq(v[n], 0);        /* new room is zeroed */
        v[n] = n + 1;
    }
    for (size_t n = 0; n < 1000; n++)
        ck_assert_uint_eq(v[n], n + 1);
    ck_assert_int_eq(vec_reserve((void **)&v, &cap, SIZE_MAX / 4, sizeof *v, &e), -1);
    ck_assert(e.code == ERR_LIMIT || e.code == ERR_NOMEM);
    free(v);
}
END_TEST

static int keep_bin(const char *name)
{
    return str_ends_with(name, ".bin");
}

static void touch(const char *dir, const char *rel)
{
    char *p = tu_path(dir, rel);
    FILE *f = fopen(p, "w");
    ck_assert(f);
    fclose(f);
    free(p);
}

START_TEST(dirwalk_lists_sorted)
{
    char *d = tu_tmpdir_new(NULL), *p;
    struct err e = ERR_INIT;
    struct dirlist L;

    p = tu_path(d, "sub");
    ck_assert_int_eq(mkdir(p, 0700), 0);
    free(p);
    p = tu_path(d, "sub/deeper");
    ck_assert_int_eq(mkdir(p, 0700), 0);
    free(p);
    touch(d, "b.bin");
    touch(d, "a.txt");
    touch(d, ".hidden.bin");
    touch(d, "sub/x.bin");
    touch(d, "sub/deeper/y.bin");
    p = tu_path(d, "link.bin");
    ck_assert_int_eq(symlink("b.bin", p), 0);
    free(p);

    ck_assert_int_eq(dir_walk(&L, d, 0, 256, 0, NULL, &e), 0);
    ck_assert_uint_eq(L.n, 6);
    ck_assert_str_eq(L.v[0].rel, ".hidden.bin");
    ck_assert_str_eq(L.v[1].rel, "a.txt");
    ck_assert_str_eq(L.v[2].rel, "b.bin");
    ck_assert_str_eq(L.v[3].rel, "link.bin");
    ck_assert_int_eq(L.v[3].kind, DIRENT_LINK);
    ck_assert_str_eq(L.v[4].rel, "sub/deeper/y.bin");
    ck_assert_str_eq(L.v[5].rel, "sub/x.bin");
    ck_assert_int_eq(L.v[5].kind, DIRENT_REG);
    dirlist_release(&L);

    /* dumps: links followed, dot files and other names left out, depth 1 only */
    ck_assert_int_eq(dir_walk(&L, d, DW_FOLLOW | DW_SKIP_DOT | DW_DEPTH_STOP, 1, 0, keep_bin, &e), 0);
    ck_assert_uint_eq(L.n, 3);
    ck_assert_str_eq(L.v[0].rel, "b.bin");
    ck_assert_str_eq(L.v[1].rel, "link.bin");
    ck_assert_int_eq(L.v[1].kind, DIRENT_REG);
    ck_assert_str_eq(L.v[2].rel, "sub/x.bin");
    dirlist_release(&L);

    /* limits are errors unless asked otherwise */
    ck_assert_int_eq(dir_walk(&L, d, 0, 1, 0, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_LIMIT);
    err_clear(&e);
    ck_assert_int_eq(dir_walk(&L, d, 0, 256, 2, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_LIMIT);
    err_clear(&e);
    p = tu_path(d, "nope");
    ck_assert_int_eq(dir_walk(&L, p, 0, 256, 0, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_IO);
    free(p);
    tu_tmpdir_free(d);
}
END_TEST

Suite *common_suite(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, rd_reads_le_and_stops_at_end);
    tcase_add_test(tc, rd_str_caps_and_bounds);
    tcase_add_test(tc, sz_checks_overflow);
    tcase_add_test(tc, json_accepts_and_reads);
    tcase_add_loop_test(tc, json_rejects, 0, sizeof bad_json / sizeof bad_json[0]);
    tcase_add_test(tc, json_nesting_is_bounded);
    tcase_add_test(tc, json_writer_escapes);
    tcase_add_test(tc, sha256_known_vectors);
    tcase_add_test(tc, crc_matches_zlib);
    tcase_add_test(tc, cli_numbers_are_strict);
    tcase_add_test(tc, threads_cover_every_item_once);
    tcase_add_test(tc, dtype_table_facts);
    tcase_add_test(tc, path_helpers);
    tcase_add_test(tc, vec_grows_and_zeroes);
    tcase_add_test(tc, dirwalk_lists_sorted);
    suite_add_tcase(s, tc);
    return s;
}
