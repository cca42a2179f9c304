/*
 * check_quant_imatrix.c - convert/imatrix.c (llama.cpp importance-matrix files) and the
 * quantizers with importance weights (dequant, dq_quantize_w_mt).
 *
 *   legacy      a built .dat: names, values divided by ncall (kept when ncall <= 0),
 *               the optional chunk-count / dataset trailer
 *   gguf        a built GGUF imatrix: in_sum2 / counts per expert row, a zero count
 *               gives 1, the metadata (datasets, chunk_count)
 *   malformed   a table of hostile files: each gives ERR_FORMAT with a message naming
 *               the file and the entry, and the offset of the bad field; truncation at
 *               every length never crashes and never succeeds
 *   mix         the imatrix rules: Q4_0's first ffn_down becomes Q4_1, IQ4_XS keeps
 *               IQ4_XS there, IQ3_XXS's attn_v; Q2_K_S refused without --imatrix
 *   weighted    every weighted quantizer: the bytes do not depend on the thread count;
 *               uniform weights give a round trip at least as good as the unweighted
 *               one; a heavy weight on some columns lowers their error; per-expert
 *               vectors are picked by row.  (Byte identity with ggml is checked against
 *               llama-quantize's output in tests/cli/t2510-imatrix.sh.)
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../convert/imatrix.h"
#include "../../convert/quant_mix.h"
#include "../../dequant/dq.h"
#include "../../formats/dtype.h"
#include "tu.h"
#include "../../common/banned.h"

/* ---- a little byte builder */
struct bb {
    uint8_t b[8192];
    size_t  n;
};

static void put(struct bb *b, const void *p, size_t n)
{
    ck_assert(b->n + n <= sizeof b->b);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void i32(struct bb *b, int32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put(b, x, 4);
}

static void u32(struct bb *b, uint32_t v) { i32(b, (int32_t)v); }

static void u64(struct bb *b, uint64_t v)
{
    u32(b, (uint32_t)v);
    u32(b, (uint32_t)(v >> 32));
}

static void f32(struct bb *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u32(b, u);
}

static void legacy_entry(struct bb *b, const char *name, int32_t ncall, int32_t nval,
                         float base)
{
    i32(b, (int32_t)strlen(name));
    put(b, name, strlen(name));
    i32(b, ncall);
    i32(b, nval);
    for (int32_t i = 0; i < nval; i++)
        f32(b, base + (float)i);
}

START_TEST(test_legacy)
{
    struct bb b = { .n = 0 };
    struct imatrix im;
    struct err e = ERR_INIT;

    i32(&b, 2);
    legacy_entry(&b, "blk.0.attn_q.weight", 4, 3, 8.0f);
    legacy_entry(&b, "output.weight", 0, 2, 5.0f);
    i32(&b, 10);                         /* trailer: chunks, dataset */
    i32(&b, 8);
    put(&b, "text.txt", 8);
    ck_assert_msg(imatrix_load_mem(&im, b.b, b.n, "t.dat", &e) == 0, "%s", e.msg);
    ck_assert_int_eq(im.form, IMATRIX_LEGACY);
    ck_assert_uint_eq(im.n, 2);
    ck_assert_int_eq(im.chunks, 10);
    ck_assert_str_eq(im.dataset, "text.txt");
    const struct imatrix_entry *q = imatrix_find(&im, "blk.0.attn_q.weight");
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(q->n, 3);
    ck_assert(q->v[0] == 2.0f && q->v[1] == 9.0f / 4 && q->v[2] == 2.5f);   /* / ncall */
    const struct imatrix_entry *o = imatrix_find(&im, "output.weight");
    ck_assert(o->v[0] == 5.0f && o->v[1] == 6.0f);                          /* ncall 0 */
    ck_assert_ptr_null(imatrix_find(&im, "output"));
    imatrix_free(&im);

    /* no trailer: chunks unknown */
    b.n = 0;
    i32(&b, 1);
    legacy_entry(&b, "a.weight", 1, 1, 1.0f);
    ck_assert_msg(imatrix_load_mem(&im, b.b, b.n, "t.dat", &e) == 0, "%s", e.msg);
    ck_assert_int_eq(im.chunks, -1);
    ck_assert_ptr_null(im.dataset);
    imatrix_free(&im);
}
END_TEST

/* ---- GGUF imatrix: a minimal v3 file */
struct gt { const char *name; uint64_t ne0, ne1; const float *v; };

static void gstr(struct bb *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}

static size_t build_gguf(struct bb *b, const struct gt *t, int nt, int meta)
{
    uint64_t off = 0, offs[8];
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, 3);
    u64(b, (uint64_t)nt);
    u64(b, meta ? 3 : 1);
    gstr(b, "general.type");
    u32(b, 8);
    gstr(b, "imatrix");
    if (meta) {
        gstr(b, "imatrix.datasets");
        u32(b, 9);
        u32(b, 8);
        u64(b, 1);
        gstr(b, "calib.txt");
        gstr(b, "imatrix.chunk_count");
        u32(b, 4);
        u32(b, 7);
    }
    for (int i = 0; i < nt; i++) {
        gstr(b, t[i].name);
        u32(b, 2);
        u64(b, t[i].ne0);
        u64(b, t[i].ne1);
        u32(b, 0);                          /* F32 */
        offs[i] = off;
        u64(b, off);
        off += (t[i].ne0 * t[i].ne1 * 4 + 31) / 32 * 32;
    }
    while (b->n % 32)
        put(b, "", 1);
    for (int i = 0; i < nt; i++) {
        ck_assert(b->n % 32 == 0);
        for (uint64_t k = 0; k < t[i].ne0 * t[i].ne1; k++)
            f32(b, t[i].v[k]);
        while (b->n % 32)
            put(b, "", 1);
        (void)offs;
    }
    return b->n;
}

START_TEST(test_gguf)
{
    static const float sums[6] = { 2, 4, 6, 12, 15, 18 }, counts[2] = { 2, 3 };
    static const float sums1[3] = { 5, 6, 7 }, zero[1] = { 0 };
    struct gt t[4] = {
        { "blk.0.ffn_up_exps.weight.in_sum2", 3, 2, sums },
        { "blk.0.ffn_up_exps.weight.counts", 1, 2, counts },
        { "output.weight.counts", 1, 1, zero },
        { "output.weight.in_sum2", 3, 1, sums1 },
    };
    struct bb b;
    struct imatrix im;
    struct err e = ERR_INIT;

    /* chunk_size is required as well: add it by hand after the others */
    build_gguf(&b, t, 4, 1);
    /* without imatrix.chunk_size: refused as llama-quantize refuses it */
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "t.gguf", &e), -1);
    ck_assert_msg(strstr(e.msg, "imatrix.chunk_size") != NULL, "%s", e.msg);
}
END_TEST

/* A full GGUF imatrix with all three keys (the builder above writes two; this one the
 * layout dat2gguf.py writes). */
static size_t build_gguf_full(struct bb *b, const struct gt *t, int nt)
{
    uint64_t off = 0;
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, 3);
    u64(b, (uint64_t)nt);
    u64(b, 4);
    gstr(b, "general.type");
    u32(b, 8);
    gstr(b, "imatrix");
    gstr(b, "imatrix.datasets");
    u32(b, 9);
    u32(b, 8);
    u64(b, 1);
    gstr(b, "calib.txt");
    gstr(b, "imatrix.chunk_count");
    u32(b, 4);
    u32(b, 7);
    gstr(b, "imatrix.chunk_size");
    u32(b, 4);
    u32(b, 512);
    for (int i = 0; i < nt; i++) {
        gstr(b, t[i].name);
        u32(b, 2);
        u64(b, t[i].ne0);
        u64(b, t[i].ne1);
        u32(b, 0);
        u64(b, off);
        off += (t[i].ne0 * t[i].ne1 * 4 + 31) / 32 * 32;
    }
    while (b->n % 32)
        put(b, "", 1);
    for (int i = 0; i < nt; i++) {
        for (uint64_t k = 0; k < t[i].ne0 * t[i].ne1; k++)
            f32(b, t[i].v[k]);
        while (b->n % 32)
            put(b, "", 1);
    }
    return b->n;
}

START_TEST(test_gguf_full)
{
    static const float sums[6] = { 2, 4, 6, 12, 15, 18 }, counts[2] = { 2, 3 };
    static const float sums1[3] = { 5, 6, 7 }, zero[1] = { 0 };
    struct gt t[4] = {
        { "blk.0.ffn_up_exps.weight.in_sum2", 3, 2, sums },
        { "blk.0.ffn_up_exps.weight.counts", 1, 2, counts },
        { "output.weight.counts", 1, 1, zero },
        { "output.weight.in_sum2", 3, 1, sums1 },
    };
    struct bb b;
    struct imatrix im;
    struct err e = ERR_INIT;

    build_gguf_full(&b, t, 4);
    ck_assert_msg(imatrix_load_mem(&im, b.b, b.n, "t.gguf", &e) == 0, "%s", e.msg);
    ck_assert_int_eq(im.form, IMATRIX_GGUF);
    ck_assert_uint_eq(im.n, 2);
    ck_assert_int_eq(im.chunks, 7);
    ck_assert_str_eq(im.dataset, "calib.txt");
    const struct imatrix_entry *x = imatrix_find(&im, "blk.0.ffn_up_exps.weight");
    ck_assert_ptr_nonnull(x);
    ck_assert_uint_eq(x->n, 6);
    ck_assert_uint_eq(x->n_mat, 2);
    static const float want[6] = { 1, 2, 3, 4, 5, 6 };     /* each row / its count */
    for (int i = 0; i < 6; i++)
        ck_assert_msg(x->v[i] == want[i], "v[%d] = %g", i, (double)x->v[i]);
    const struct imatrix_entry *o = imatrix_find(&im, "output.weight");
    ck_assert(o->v[0] == 1.0f && o->v[1] == 1.0f && o->v[2] == 1.0f);   /* count 0 -> 1 */
    imatrix_free(&im);

    /* a sum without its counts */
    build_gguf_full(&b, t, 1);
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "t.gguf", &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "t.gguf: 'blk.0.ffn_up_exps.weight.in_sum2' has no "
                          "'blk.0.ffn_up_exps.weight.counts'") != NULL, "%s", e.msg);
    /* counts that do not divide the sums */
    struct gt bad[2] = { { "a.in_sum2", 3, 1, sums }, { "a.counts", 1, 2, counts } };
    err_clear(&e);
    build_gguf_full(&b, bad, 2);
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "t.gguf", &e), -1);
    ck_assert_msg(strstr(e.msg, "3 sums do not split into 2 matrices") != NULL, "%s", e.msg);
    /* a non-finite importance */
    static const float inf1[3] = { 1, INFINITY, 2 }, one[1] = { 1 };
    struct gt nf[2] = { { "a.in_sum2", 3, 1, inf1 }, { "a.counts", 1, 1, one } };
    err_clear(&e);
    build_gguf_full(&b, nf, 2);
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "t.gguf", &e), -1);
    ck_assert_msg(strstr(e.msg, "value 1 is not finite") != NULL, "%s", e.msg);
    /* a GGUF model is not an imatrix */
    err_clear(&e);
    build_gguf(&b, nf, 2, 0);
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "m.gguf", &e), -1);
    ck_assert_msg(strstr(e.msg, "not an imatrix file") != NULL, "%s", e.msg);
}
END_TEST

/* ---- the malformed-input table (legacy form) */
START_TEST(test_malformed)
{
    static const struct {
        const char *what;
        int32_t     ints[8];    /* header ints written before name/values; see below */
        int         kind;
        const char *msg;
        uint64_t    off;
    } rows[] = {
        { "no entries",         { 0 },          0, "t.dat: no entries (entry count 0)", 0 },
        { "negative count",     { -5 },         0, "no entries (entry count -5)", 0 },
        { "count too large",    { 1000000 },    0, "entry count 1000000 does not fit", 0 },
        { "negative name len",  { 1, -1 },      1, "entry 1: name length -1 is not in", 4 },
        { "huge name len",      { 1, 5000 },    1, "entry 1: name length 5000", 4 },
        { "zero values",        { 1, 1, 1, 0 }, 2, "entry 1 ('a'): value count 0", 13 },
        { "too many values",    { 1, 1, 1, 9 }, 2, "entry 1 ('a'): 9 values need 36 bytes", 13 },
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        struct bb b = { .n = 0 };
        struct imatrix im;
        struct err e = ERR_INIT;
        i32(&b, rows[r].ints[0]);
        if (rows[r].kind >= 1)
            i32(&b, rows[r].ints[1]);
        if (rows[r].kind == 2) {
            put(&b, "a", 1);
            i32(&b, rows[r].ints[2]);
            i32(&b, rows[r].ints[3]);
        }
        for (int pad = 0; pad < 4; pad++)
            f32(&b, 1.0f);                  /* some bytes, fewer than needed */
        ck_assert_msg(imatrix_load_mem(&im, b.b, b.n, "t.dat", &e) == -1, "%s", rows[r].what);
        ck_assert_int_eq(e.code, ERR_FORMAT);
        ck_assert_msg(strstr(e.msg, rows[r].msg) != NULL, "%s: %s", rows[r].what, e.msg);
        ck_assert_msg(e.off == rows[r].off, "%s: offset %llu", rows[r].what,
                      (unsigned long long)e.off);
        ck_assert_uint_eq(im.n, 0);
    }

    /* duplicate names, NUL in a name, NaN, trailing garbage */
    struct bb b = { .n = 0 };
    struct imatrix im;
    struct err e = ERR_INIT;
    i32(&b, 2);
    legacy_entry(&b, "x.weight", 1, 2, 1.0f);
    legacy_entry(&b, "x.weight", 1, 2, 1.0f);
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "t.dat", &e), -1);
    ck_assert_msg(strstr(e.msg, "entry 2 ('x.weight'): the name appears twice") != NULL, "%s",
                  e.msg);
    ck_assert_uint_eq(e.off, 32);

    b.n = 0;
    err_clear(&e);
    i32(&b, 1);
    legacy_entry(&b, "n\x1b", 1, 1, NAN);
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "t.dat", &e), -1);
    ck_assert_msg(strstr(e.msg, "entry 1 ('n\\x1b'): value 0 is not finite") != NULL, "%s",
                  e.msg);

    b.n = 0;
    err_clear(&e);
    i32(&b, 1);
    i32(&b, 3);
    put(&b, "a\0b", 3);
    i32(&b, 1);
    i32(&b, 1);
    f32(&b, 1);
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "t.dat", &e), -1);
    ck_assert_msg(strstr(e.msg, "the name holds a NUL byte") != NULL, "%s", e.msg);

    b.n = 0;
    err_clear(&e);
    i32(&b, 1);
    legacy_entry(&b, "a", 1, 1, 1.0f);
    i32(&b, 3);
    i32(&b, 2);
    put(&b, "abXYZ", 5);
    ck_assert_int_eq(imatrix_load_mem(&im, b.b, b.n, "t.dat", &e), -1);
    ck_assert_msg(strstr(e.msg, "3 bytes after the dataset name") != NULL, "%s", e.msg);
    ck_assert_uint_eq(e.off, 31);

    /* every truncation of a valid file fails cleanly (none is a shorter valid file
     * except the one without its trailer) */
    b.n = 0;
    i32(&b, 2);
    legacy_entry(&b, "blk.0.attn_q.weight", 4, 3, 8.0f);
    legacy_entry(&b, "output.weight", 2, 2, 5.0f);
    size_t body = b.n;
    i32(&b, 10);
    i32(&b, 4);
    put(&b, "calb", 4);
    for (size_t n = 0; n < b.n; n++) {
        err_clear(&e);
        int rc = imatrix_load_mem(&im, b.b, n, "t.dat", &e);
        ck_assert_msg(rc == (n == body ? 0 : -1), "length %zu: rc %d", n, rc);
        if (rc == 0)
            imatrix_free(&im);
        else
            ck_assert_int_eq(e.code, ERR_FORMAT);
    }
}
END_TEST

/* ---- the mix rules that depend on an importance matrix */
static int plan_one(const char *mixname, int has_im, const char *tname)
{
    static char names[6][40] = { "blk.0.ffn_down.weight", "blk.0.attn_v.weight",
                                 "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                 "output.weight", "token_embd.weight" };
    struct qmix_tensor t[6];
    struct qmix_model mm = { "llama", 16, 8, 8, 1 };
    struct err e = ERR_INIT;
    const struct qmix *m = qmix_find_im(mixname, 1, &e);

    ck_assert_msg(m != NULL, "%s", e.msg);
    for (int i = 0; i < 6; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].name = names[i];
        t[i].n_dims = 2;
        t[i].shape[0] = 256;
        t[i].shape[1] = 256;
    }
    ck_assert_int_eq(qmix_plan_im(m, 0, has_im, &mm, t, 6, &e), 0);
    for (int i = 0; i < 6; i++)
        if (strcmp(names[i], tname) == 0)
            return t[i].out;
    ck_abort();
    return -1;
}

START_TEST(test_mix)
{
    struct err e = ERR_INIT;

    /* first eighth of ffn_down: Q4_0 -> Q4_1, Q5_0 -> Q5_1 only with an imatrix */
    ck_assert_int_eq(plan_one("Q4_0", 1, "blk.0.ffn_down.weight"), DT_Q4_1);
    ck_assert_int_eq(plan_one("Q4_0", 0, "blk.0.ffn_down.weight"), DT_Q4_0);
    ck_assert_int_eq(plan_one("Q5_0", 1, "blk.0.ffn_down.weight"), DT_Q5_1);
    /* IQ4_XS: Q5_K there only without one */
    ck_assert_int_eq(plan_one("IQ4_XS", 1, "blk.0.ffn_down.weight"), DT_IQ4_XS);
    ck_assert_int_eq(plan_one("IQ4_XS", 0, "blk.0.ffn_down.weight"), DT_Q5_K);
    /* Q2_K_S: refused without an imatrix; its Q2_K tensors need data, token_embd not */
    ck_assert_ptr_null(qmix_find("Q2_K_S", &e));
    ck_assert_int_eq(e.code, ERR_USAGE);
    ck_assert_msg(strstr(e.msg, "--dtype Q2_K_S: needs an importance matrix (--imatrix") != NULL,
                  "%s", e.msg);
    const struct qmix *q2s = qmix_find_im("q2_k_s", 1, &e);
    ck_assert_ptr_nonnull(q2s);
    ck_assert_int_eq(qmix_tensor_needs_imatrix(q2s, "blk.0.attn_q.weight", DT_Q2_K), 1);
    ck_assert_int_eq(qmix_tensor_needs_imatrix(q2s, "token_embd.weight", DT_Q2_K), 0);
    ck_assert_int_eq(qmix_tensor_needs_imatrix(q2s, "blk.0.attn_q.weight", DT_Q4_K), 0);
    const struct qmix *q2 = qmix_find("Q2_K", &e);
    ck_assert_int_eq(qmix_tensor_needs_imatrix(q2, "blk.0.attn_q.weight", DT_Q2_K), 0);
    ck_assert_int_eq(qmix_tensor_needs_imatrix(q2, "x.weight", DT_IQ2_XXS), 1);
    ck_assert_int_eq(qmix_tensor_needs_imatrix(q2, "output.weight", DT_IQ1_M), 0);
}
END_TEST

/* ---- the weighted quantizers */
static uint64_t rs = 0x9E3779B97F4A7C15ull;
static float gauss(void)
{
    double u1, u2;
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    u1 = (double)(rs >> 11) / 9007199254740992.0 + 1e-12;
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    u2 = (double)(rs >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

static double rms_err(const float *a, const float *b, int64_t n, int64_t first, int64_t every,
                      int64_t per_row)
{
    double s = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if ((i % per_row) % every == first) {
            s += (double)(a[i] - b[i]) * (a[i] - b[i]);
            k++;
        }
    return sqrt(s / (double)k);
}

START_TEST(test_weighted)
{
    static const int types[] = { DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q2_K, DT_Q3_K, DT_Q4_K,
                                  DT_Q5_K, DT_Q6_K, DT_IQ4_NL, DT_IQ4_XS, DT_IQ3_XXS, DT_IQ3_S,
                                  DT_IQ2_XXS, DT_IQ2_XS, DT_IQ2_S, DT_IQ1_S, DT_IQ1_M };
    enum { ROWS = 12, PER = 512, N = ROWS * PER };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *z = malloc(N * sizeof *z);
    float *w1 = malloc(PER * sizeof *w1), *wh = malloc(3 * PER * sizeof *wh);
    uint8_t *a = malloc(N * 4), *b = malloc(N * 4), *c = malloc(N * 4);
    struct err e = ERR_INIT;

    for (int i = 0; i < N; i++)
        x[i] = gauss() * 0.02f;
    for (int i = 0; i < PER; i++)
        w1[i] = 1.0f;
    for (int i = 0; i < 3 * PER; i++)            /* 3 "experts": heavy weight on i%8==k */
        wh[i] = (i % PER) % 8 == i / PER ? 1000.0f : 0.01f;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int dt = types[t];
        const char *nm = dtype_name(dt);
        uint64_t nb;
        ck_assert_int_eq(dtype_nbytes(dt, N, &nb, &e), 0);
        /* thread count does not change the bytes */
        ck_assert_msg(dq_quantize_w_mt(dt, x, a, ROWS, PER, wh, 4, 0, 1, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(dq_quantize_w_mt(dt, x, b, ROWS, PER, wh, 4, 0, 3, &e), 0);
        ck_assert_msg(memcmp(a, b, nb) == 0, "%s: -t 1 != -t 3", nm);
        /* per-expert vectors: rows 0-3 use wh[0..], 4-7 wh[PER..], 8-11 wh[2 PER..]; the
         * same rows quantized alone with their own vector give the same bytes */
        uint64_t row_b = nb / ROWS;
        ck_assert_int_eq(dq_quantize_w_mt(dt, x + 4 * PER, c, 4, PER, wh + PER, 0, 0, 1, &e), 0);
        ck_assert_msg(memcmp(a + 4 * row_b, c, 4 * row_b) == 0, "%s: expert 1 rows", nm);
        ck_assert_int_eq(dq_quantize_w_mt(dt, x + 9 * PER, c, 1, PER, wh, 4, 9, 1, &e), 0);
        ck_assert_msg(memcmp(a + 9 * row_b, c, row_b) == 0, "%s: row0 offset", nm);
        if (dq_get(dt)->needs_imatrix) {
            /* no unweighted twin: refused without weights; the round trip's rms error,
             * relative to the data's rms (0.02), measured 0.25 (IQ2_S) .. 0.49 (IQ1_S) */
            ck_assert_int_eq(dq_quantize_w_mt(dt, x, a, ROWS, PER, NULL, 0, 0, 1, &e), -1);
            ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
            err_clear(&e);
            ck_assert_int_eq(dq_quantize_w_mt(dt, x, a, ROWS, PER, w1, 0, 0, 2, &e), 0);
            ck_assert_int_eq(dq_to_f32(dt, a, nb, y, N, 1, &e), 0);
            double rel = rms_err(x, y, N, 0, 1, PER) / 0.02;
            ck_assert_msg(rel < 0.6, "%s: rms error %.3f of the data's", nm, rel);
            continue;
        }
        /* uniform weights: as good as the unweighted quantizer (rms ratio measured
         * 0.81 (IQ3_S) .. 0.99 (Q4_K) on this data; the bound leaves 5%) */
        ck_assert_int_eq(dq_quantize_w_mt(dt, x, a, ROWS, PER, w1, 0, 0, 2, &e), 0);
        ck_assert_int_eq(dq_quantize_mt(dt, x, b, ROWS, PER, 2, &e), 0);
        ck_assert_int_eq(dq_to_f32(dt, a, nb, y, N, 1, &e), 0);
        ck_assert_int_eq(dq_to_f32(dt, b, nb, z, N, 1, &e), 0);
        double ew = rms_err(x, y, N, 0, 1, PER), eu = rms_err(x, z, N, 0, 1, PER);
        ck_assert_msg(ew < 1.05 * eu, "%s: uniform-weight rms %g vs unweighted %g", nm, ew, eu);
        /* heavy weights on column k of every 8 (expert 0: k = 0) lower those columns'
         * error: measured 0.28 (Q2_K) .. 0.72 (Q4_0) of the unweighted error; bound 0.85 */
        ck_assert_int_eq(dq_quantize_w_mt(dt, x, a, ROWS, PER, wh, 0, 0, 2, &e), 0);
        ck_assert_int_eq(dq_to_f32(dt, a, nb, y, N, 1, &e), 0);
        double eh = rms_err(x, y, N, 0, 8, PER), eh0 = rms_err(x, z, N, 0, 8, PER);
        ck_assert_msg(eh < 0.85 * eh0, "%s: weighted columns rms %g, unweighted %g", nm, eh, eh0);
    }
    /* a type that ignores weights (Q8_0) gives its unweighted bytes */
    ck_assert_int_eq(dq_quantize_w_mt(DT_Q8_0, x, a, ROWS, PER, w1, 0, 0, 1, &e), 0);
    ck_assert_int_eq(dq_quantize_mt(DT_Q8_0, x, b, ROWS, PER, 1, &e), 0);
    ck_assert(memcmp(a, b, (size_t)N / 32 * 34) == 0);
    free(x);
    free(y);
    free(z);
    free(w1);
    free(wh);
    free(a);
    free(b);
    free(c);
}
END_TEST

Suite *quant_imatrix_suite(void)
{
    Suite *s = suite_create("quant_imatrix");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_legacy);
    tcase_add_test(tc, test_gguf);
    tcase_add_test(tc, test_gguf_full);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_mix);
    tcase_add_test(tc, test_weighted);
    suite_add_tcase(s, tc);
    return s;
}
