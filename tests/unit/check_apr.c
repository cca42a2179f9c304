/*
 * check_apr.c - APR v2 reader/writer and APRT stage dumps (formats/apr).
 *
 * Files are written with apr_write into a mkdtemp directory under /tmp, read back into
 * exact-size heap buffers (so ASan sees any over-read) and parsed with apr_open_mem.
 * Malformed inputs are produced by patching a valid file and, where the point is to
 * reach a deeper check, recomputing the header and footer CRCs.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../common/json.h"
#include "../../common/rd.h"
#include "../../formats/apr/apr.h"
#include "../../formats/apr/aprt.h"
#include "../../formats/gguf/gguf.h"
#include "../../formats/model_json.h"
#include "../../common/crc.h"
#include "tu.h"
#include "../../common/banned.h"

/* ---- helpers */

struct buf {
    uint8_t *p;
    size_t   n;
};

/* Model building: kv and tensor arrays are realloc'ed (model_close frees them). */
static struct model_val *kv_add(struct model *m, const char *key)
{
    struct model_kv *kv = realloc(m->kv, (m->n_kv + 1) * sizeof *kv);
    ck_assert_ptr_nonnull(kv);
    m->kv = kv;
    memset(&kv[m->n_kv], 0, sizeof kv[0]);
    kv[m->n_kv].key = slice_from_cstr(key);
    return &kv[m->n_kv++].val;
}

static void kv_str(struct model *m, const char *k, const char *s)
{
    struct model_val *v = kv_add(m, k);
    v->type = MV_STR;
    v->v.s = slice_from_cstr(s);
}

static void kv_u64(struct model *m, const char *k, uint64_t x)
{
    struct model_val *v = kv_add(m, k);
    v->type = MV_U64;
    v->v.u = x;
}

static void kv_null(struct model *m, const char *k)
{
    kv_add(m, k)->type = MV_NULL;
}

static struct model_tensor *tensor_add(struct model *m, const char *name, int dt, int n_dims,
                                       const int64_t *shape, const void *data)
{
    struct model_tensor *t = realloc(m->tensors, (m->n_tensors + 1) * sizeof *t);
    struct err e = ERR_INIT;
    ck_assert_ptr_nonnull(t);
    m->tensors = t;
    t = &t[m->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = slice_from_cstr(name);
    t->dtype = dt;
    t->n_dims = n_dims;
    t->n_elems = 1;
    for (int k = 0; k < MODEL_MAX_DIMS; k++)
        t->shape[k] = 1;
    for (int k = 0; k < n_dims; k++) {
        t->shape[k] = shape[k];
        t->n_elems *= shape[k];
    }
    ck_assert_int_eq(dtype_nbytes(dt, t->n_elems, &t->size, &e), 0);
    t->data = data;
    return t;
}

static void model_new(struct model *m)
{
    struct err e = ERR_INIT;
    ck_assert_int_eq(model__init(m, MODEL_FMT_APR, "test", &e), 0);
}

/* Deterministic bytes. */
static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = 2463534242u ^ seed;
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static void write_ok(const struct model *m, const char *path)
{
    struct err e = ERR_INIT;
    int rc = apr_write(m, path, NULL, &e);
    ck_assert_msg(rc == 0, "apr_write: %s", e.msg);
}

static void open_ok(struct model *m, const struct buf *b)
{
    struct err e = ERR_INIT;
    int rc = apr_open_mem(m, b->p, b->n, "mem.apr", &e);
    ck_assert_msg(rc == 0, "apr_open_mem: %s", e.msg);
}

static char *meta_json(const struct model *m)
{
    struct sbuf b = SBUF_INIT(1 << 24);
    struct json_w w;
    json_w_init(&w, &b, 0);
    json_w_obj(&w);
    for (uint64_t i = 0; i < m->n_kv; i++) {
        json_w_key_n(&w, m->kv[i].key.p, m->kv[i].key.n);
        model_val_to_json(&w, &m->kv[i].val, UINT64_MAX);
    }
    json_w_obj_end(&w);
    ck_assert_int_eq(b.failed, 0);
    return b.p;
}

/* Recompute the header CRC, and the footer CRC over all bytes but the last 4. */
static void fix_header_crc(struct buf *b)
{
    uint32_t c;
    if (b->n < 64)
        return;
    c = (uint32_t)crc32(0, b->p, 40);
    c = (uint32_t)crc32(c, b->p + 44, 20);
    put_le32(b->p + 40, c);
}

static void fix_crcs(struct buf *b)
{
    fix_header_crc(b);
    if (b->n >= 68)
        put_le32(b->p + b->n - 4, (uint32_t)crc32(0, b->p, (uInt)(b->n - 4)));
}

/* Offset of index entry i and of its fields. */
struct ent {
    size_t off, name, dtype, ndim, dims, rel, size;
};

static struct ent entry_at(const struct buf *b, unsigned i)
{
    struct ent t;
    size_t o = (size_t)le64(b->p + 24);
    for (unsigned k = 0;; k++) {
        t.off = o;
        t.name = o + 2;
        t.dtype = t.name + le16(b->p + o);
        t.ndim = t.dtype + 1;
        t.dims = t.ndim + 1;
        t.rel = t.dims + 8u * b->p[t.ndim];
        t.size = t.rel + 8;
        if (k == i)
            return t;
        o = t.size + 8;
    }
}

/* ---- the worked example of reference/apr.md 2.9, byte for byte */

static void example_model(struct model *m)
{
    static const uint8_t zeros[24];
    static const int64_t shape[2] = { 2, 3 };

    model_new(m);
    kv_str(m, "model_type", "test");
    kv_null(m, "license");
    kv_null(m, "data_source");
    kv_null(m, "data_license");
    kv_u64(m, "total_size", 0);
    kv_u64(m, "param_count", 0);
    tensor_add(m, "weight", DT_F32, 2, shape, zeros);
}

START_TEST(test_worked_example)
{
    static const char meta[] = "{\"model_type\":\"test\",\"license\":null,\"data_source\":null,"
                               "\"data_license\":null,\"total_size\":0,\"param_count\":0}";
    static const uint8_t header[44] = {
        0x41, 0x50, 0x52, 0x00, 0x02, 0x00, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x6a, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6c, 0x6a, 0x85, 0x61,
    };
    static const uint8_t entry[42] = {
        0x06, 0x00, 'w', 'e', 'i', 'g', 'h', 't', 0x00, 0x02,
        0x02, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0,
    };
    uint8_t want[324];
    struct model m, r;
    char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "example.apr");
    struct buf b;

    ck_assert_uint_eq(sizeof meta - 1, 106);
    memset(want, 0, sizeof want);
    memcpy(want, header, sizeof header);
    memcpy(want + 64, meta, sizeof meta - 1);
    memcpy(want + 192, entry, sizeof entry);
    /* 24 zero bytes of data at 256, padded to 320, then the footer. */
    put_le32(want + 320, 0x7333b1c1u);

    example_model(&m);
    write_ok(&m, path);
    b.p = tu_slurp(path, &b.n);
    ck_assert_uint_eq(b.n, 324);
    ck_assert_uint_eq(le32(b.p + 40), 0x61856a6cu);
    ck_assert_uint_eq(le32(b.p + 320), 0x7333b1c1u);
    ck_assert_uint_eq(le64(b.p + 24), 192);
    ck_assert_uint_eq(le64(b.p + 32), 256);
    ck_assert_mem_eq(b.p, want, sizeof want);
    ck_assert_int_eq(tu_dir_count(dir), 1);   /* no temporary file left */

    /* And it reads back as it was written. */
    open_ok(&r, &b);
    ck_assert_int_eq(r.version, 2);
    ck_assert_int_eq(r.version_minor, 0);
    ck_assert_uint_eq(r.apr_flags, 0x0400);
    ck_assert_int_eq(r.apr_header_crc_ok, 1);
    ck_assert_int_eq(r.apr_footer_crc_ok, 1);
    ck_assert_int_eq(r.apr_magic_legacy, 0);
    ck_assert_uint_eq(r.data_off, 256);
    ck_assert_uint_eq(r.header_size, 256);
    ck_assert_uint_eq(r.alignment, 64);
    ck_assert_uint_eq(r.n_notes, 0);
    ck_assert_uint_eq(r.n_kv, 6);
    ck_assert_uint_eq(r.n_tensors, 1);
    ck_assert(slice_eq_cstr(r.tensors[0].name, "weight"));
    ck_assert_int_eq(r.tensors[0].dtype, DT_F32);
    ck_assert_int_eq(r.tensors[0].n_dims, 2);
    ck_assert_int_eq(r.tensors[0].shape[0], 2);
    ck_assert_int_eq(r.tensors[0].shape[1], 3);
    ck_assert_uint_eq(r.tensors[0].off, 256);
    ck_assert_uint_eq(r.tensors[0].rel_off, 0);
    ck_assert_uint_eq(r.tensors[0].size, 24);
    char *js = meta_json(&r);
    ck_assert_str_eq(js, meta);
    free(js);
    model_close(&r);
    model_close(&m);
    free(b.p);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

/* ---- round trip: every APR dtype, rich metadata */

struct rt_spec {
    const char *name;
    int dt;
    int n_dims;
    int64_t shape[3];
    unsigned code;
};

static const struct rt_spec rt_specs[] = {
    { "layers.2.w",   DT_F32,    2, { 2, 3 },   0 },
    { "layers.10.w",  DT_F16,    1, { 5 },      1 },
    { "emb",          DT_BF16,   2, { 3, 2 },   30 },
    { "q4k",          DT_Q4_K,   2, { 2, 256 }, 12 },
    { "q6k",          DT_Q6_K,   1, { 256 },    14 },
    { "aprq4",        DT_APR_Q4, 2, { 5, 8 },   128 },   /* 40 elements: 2 padded blocks */
    { "aprq8",        DT_APR_Q8, 1, { 7 },      129 },
    { "i8",           DT_I8,     1, { 9 },      6 },
    { "u8",           DT_U8,     3, { 1, 2, 3 }, 7 },
    { "i32",          DT_I32,    1, { 2 },      4 },
    { "i64",          DT_I64,    1, { 2 },      5 },
    { "f64",          DT_F64,    1, { 2 },      3 },
    { "scalar",       DT_F32,    0, { 0 },      0 },
    { "empty",        DT_F32,    2, { 0, 4 },   0 },
    { "Z.upper",      DT_F32,    1, { 1 },      0 },
};
#define N_RT (sizeof rt_specs / sizeof rt_specs[0])

static void rich_metadata(struct model *m)
{
    static const char *vocab[] = { "a", "b c", "\xc3\xa9\n\"" };
    static const uint8_t tt_raw[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff };   /* i64 1, -2 */
    struct model_val *v;

    kv_str(m, "model_type", "llama");
    kv_null(m, "license");
    kv_u64(m, "num_layers", 2);
    v = kv_add(m, "rms_norm_eps");
    v->type = MV_F32;
    v->v.f = (double)1e-6f;
    v = kv_add(m, "rope_theta");
    v->type = MV_F32;
    v->v.f = 10000.0;
    v = kv_add(m, "neg");
    v->type = MV_I64;
    v->v.i = -42;
    v = kv_add(m, "tied_embeddings");
    v->type = MV_BOOL;
    v->v.u = 1;
    v = kv_add(m, "tokenizer.vocabulary");
    v->type = MV_ARR;
    v->v.arr.elem = MV_STR;
    v->v.arr.n = 3;
    v->v.arr.strs = calloc(3, sizeof *v->v.arr.strs);
    for (int i = 0; i < 3; i++)
        v->v.arr.strs[i] = slice_from_cstr(vocab[i]);
    v = kv_add(m, "tokenizer.token_type");
    v->type = MV_ARR;
    v->v.arr.elem = MV_I64;
    v->v.arr.n = 2;
    v->v.arr.raw = tt_raw;
    /* {"quant":{"bits":4,"mixed":[1,"x",null],"nested":[[],{}]}} */
    v = kv_add(m, "quantization");
    v->type = MV_OBJ;
    v->v.obj.n = 3;
    v->v.obj.kv = calloc(3, sizeof *v->v.obj.kv);
    v->v.obj.kv[0].key = slice_from_cstr("bits");
    v->v.obj.kv[0].val.type = MV_U64;
    v->v.obj.kv[0].val.v.u = 4;
    v->v.obj.kv[1].key = slice_from_cstr("mixed");
    {
        struct model_val *a = &v->v.obj.kv[1].val;
        a->type = MV_ARR;
        a->v.arr.elem = MV_NULL;
        a->v.arr.n = 3;
        a->v.arr.items = calloc(3, sizeof *a->v.arr.items);
        a->v.arr.items[0].type = MV_U64;
        a->v.arr.items[0].v.u = 1;
        a->v.arr.items[1].type = MV_STR;
        a->v.arr.items[1].v.s = slice_from_cstr("x");
        a->v.arr.items[2].type = MV_NULL;
    }
    v->v.obj.kv[2].key = slice_from_cstr("nested");
    {
        struct model_val *a = &v->v.obj.kv[2].val;
        a->type = MV_ARR;
        a->v.arr.elem = MV_NULL;
        a->v.arr.n = 2;
        a->v.arr.items = calloc(2, sizeof *a->v.arr.items);
        a->v.arr.items[0].type = MV_ARR;
        a->v.arr.items[0].v.arr.elem = MV_U64;
        a->v.arr.items[1].type = MV_OBJ;
    }
    v = kv_add(m, "empty_obj");
    v->type = MV_OBJ;
}

START_TEST(test_round_trip)
{
    static const char want_meta[] =
        "{\"model_type\":\"llama\",\"license\":null,\"num_layers\":2,\"rms_norm_eps\":1e-06,"
        "\"rope_theta\":10000.0,\"neg\":-42,\"tied_embeddings\":true,"
        "\"tokenizer.vocabulary\":[\"a\",\"b c\",\"\xc3\xa9\\n\\\"\"],"
        "\"tokenizer.token_type\":[1,-2],"
        "\"quantization\":{\"bits\":4,\"mixed\":[1,\"x\",null],\"nested\":[[],{}]},"
        "\"empty_obj\":{}}";
    struct model m, r, r2;
    uint8_t *data[N_RT];
    char *dir = tu_tmpdir_new("check_apr");
    char *p1 = tu_path(dir, "a.apr"), *p2 = tu_path(dir, "b.apr");
    struct buf b, b2;
    const struct model_kv *kv;
    char *js;

    model_new(&m);
    rich_metadata(&m);
    for (size_t i = 0; i < N_RT; i++) {
        uint64_t sz;
        struct err e = ERR_INIT;
        int64_t n = 1;
        for (int k = 0; k < rt_specs[i].n_dims; k++)
            n *= rt_specs[i].shape[k];
        ck_assert_int_eq(dtype_nbytes(rt_specs[i].dt, n, &sz, &e), 0);
        data[i] = pattern(sz, (unsigned)i);
        tensor_add(&m, rt_specs[i].name, rt_specs[i].dt, rt_specs[i].n_dims, rt_specs[i].shape,
                   data[i]);
    }
    write_ok(&m, p1);
    b.p = tu_slurp(p1, &b.n);
    open_ok(&r, &b);

    /* Metadata: keys, order, and values as JSON text. */
    js = meta_json(&r);
    ck_assert_str_eq(js, want_meta);
    free(js);
    ck_assert_uint_eq(r.n_kv, m.n_kv);
    kv = model_kv_find(&r, "tokenizer.vocabulary");
    ck_assert_ptr_nonnull(kv);
    ck_assert_int_eq(kv->val.type, MV_ARR);
    ck_assert_int_eq(kv->val.v.arr.elem, MV_STR);
    ck_assert(slice_eq_cstr(kv->val.v.arr.strs[2], "\xc3\xa9\n\""));
    kv = model_kv_find(&r, "rms_norm_eps");
    ck_assert_int_eq(kv->val.type, MV_F64);
    ck_assert((float)kv->val.v.f == 1e-6f);
    kv = model_kv_find(&r, "license");
    ck_assert_int_eq(kv->val.type, MV_NULL);
    kv = model_kv_find(&r, "quantization");
    ck_assert_int_eq(kv->val.type, MV_OBJ);
    ck_assert_uint_eq(kv->val.v.obj.n, 3);

    /* Tensors: sorted bytewise ("Z" < "a"; "layers.10" < "layers.2"), same bytes. */
    ck_assert_uint_eq(r.n_tensors, N_RT);
    for (uint64_t i = 1; i < r.n_tensors; i++)
        ck_assert_int_lt(slice_cmp(r.tensors[i - 1].name, r.tensors[i].name), 0);
    ck_assert(slice_eq_cstr(r.tensors[0].name, "Z.upper"));
    ck_assert_ptr_nonnull(model_tensor_find(&r, "layers.10.w"));
    ck_assert(model_tensor_find(&r, "layers.10.w") < model_tensor_find(&r, "layers.2.w"));
    for (size_t i = 0; i < N_RT; i++) {
        const struct model_tensor *t = model_tensor_find(&r, rt_specs[i].name);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->dtype, rt_specs[i].dt);
        ck_assert_uint_eq(t->stored_dtype, rt_specs[i].code);
        ck_assert_int_eq(t->n_dims, rt_specs[i].n_dims);
        for (int k = 0; k < t->n_dims; k++)
            ck_assert_int_eq(t->shape[k], rt_specs[i].shape[k]);
        ck_assert_uint_eq(t->size, m.tensors[i].size);
        ck_assert_uint_eq(t->off % 64, 0);
        ck_assert_uint_eq(t->off, r.data_off + t->rel_off);
        if (t->size)
            ck_assert_mem_eq(t->data, data[i], t->size);
    }
    ck_assert_uint_eq(model_tensor_find(&r, "aprq4")->size, 36);
    ck_assert_uint_eq(model_tensor_find(&r, "aprq8")->size, 11);
    ck_assert_int_eq(model_tensor_find(&r, "scalar")->n_elems, 1);
    ck_assert_int_eq(model_tensor_find(&r, "empty")->n_elems, 0);
    ck_assert_int_eq(r.apr_footer_crc_ok, 1);
    ck_assert_uint_eq(r.n_notes, 0);

    /* Writing what we read gives the same bytes (deterministic, lossless). */
    write_ok(&r, p2);
    b2.p = tu_slurp(p2, &b2.n);
    ck_assert_uint_eq(b2.n, b.n);
    ck_assert_mem_eq(b2.p, b.p, b.n);

    /* The path reader (mmap) agrees with the memory reader. */
    {
        struct err e = ERR_INIT;
        ck_assert_msg(apr_open(&r2, p2, &e) == 0, "%s", e.msg);
        ck_assert_uint_eq(r2.n_tensors, N_RT);
        ck_assert_int_eq(r2.apr_footer_crc_ok, 1);
        ck_assert_str_eq(r2.path, p2);
        model_close(&r2);
        ck_assert_msg(model_open(&r2, p2, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(r2.format, MODEL_FMT_APR);
        model_close(&r2);
    }
    model_close(&r);
    model_close(&m);
    for (size_t i = 0; i < N_RT; i++)
        free(data[i]);
    free(b.p);
    free(b2.p);
    free(p1);
    free(p2);
    tu_tmpdir_free(dir);
}
END_TEST

/* ---- a small valid file for mutations: "a" F32 [2], "b" F32 [2,2], "c" APR_Q4 [4].
 * Metadata 42 bytes at 64, index 95 bytes at 128, data at DATA: a, b, c each padded to 64. */
#define DATA      256u
#define DATA_END  (DATA + 128 + 18)   /* end of c's bytes */
#define SMALL_N   (DATA + 3 * 64 + 4)

static const uint8_t small_a[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t small_b[16] = { 9, 9, 9, 9, 8, 8, 8, 8, 7, 7, 7, 7, 6, 6, 6, 6 };
static const uint8_t small_c[18] = { 0x00, 0x3c, 0x12, 0x34 };

static struct buf small_file(void)
{
    static const int64_t sa[1] = { 2 }, sb[2] = { 2, 2 }, sc[1] = { 4 };
    struct model m;
    char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "small.apr");
    struct buf b;

    model_new(&m);
    kv_str(&m, "model_type", "t");
    kv_str(&m, "tokenizer.model", "gpt2");
    tensor_add(&m, "a", DT_F32, 1, sa, small_a);
    tensor_add(&m, "b", DT_F32, 2, sb, small_b);
    tensor_add(&m, "c", DT_APR_Q4, 1, sc, small_c);
    write_ok(&m, path);
    model_close(&m);
    b.p = tu_slurp(path, &b.n);
    free(path);
    tu_tmpdir_free(dir);
    return b;
}

/* Layout of small_file, checked once here so the mutations below can rely on it. */
START_TEST(test_small_layout)
{
    struct buf b = small_file();
    struct ent a = entry_at(&b, 0), c = entry_at(&b, 2);
    struct model m;

    ck_assert_uint_eq(le64(b.p + 12), 64);
    ck_assert_uint_eq(le64(b.p + 24), 128);
    ck_assert_uint_eq(le64(b.p + 32), DATA);
    ck_assert_uint_eq(a.off, 128);
    ck_assert_uint_eq(b.p[a.name], 'a');
    ck_assert_uint_eq(b.p[c.dtype], 128);
    ck_assert_uint_eq(le64(b.p + c.rel), 128);
    ck_assert_uint_eq(b.n, SMALL_N);
    open_ok(&m, &b);
    ck_assert_uint_eq(m.n_tensors, 3);
    ck_assert_mem_eq(m.tensors[1].data, small_b, 16);
    model_close(&m);
    free(b.p);
}
END_TEST

/* ---- malformed-input table */

typedef uint64_t (*mutate_fn)(struct buf *b);   /* returns the expected e.off */

static uint64_t m_unsorted(struct buf *b)
{
    struct ent a = entry_at(b, 0), c = entry_at(b, 1);
    b->p[a.name] = 'b';
    b->p[c.name] = 'a';
    fix_crcs(b);
    return c.off;
}

static uint64_t m_duplicate(struct buf *b)
{
    struct ent t = entry_at(b, 1);
    b->p[t.name] = 'a';
    fix_crcs(b);
    return t.off;
}

static uint64_t m_dtype(struct buf *b)
{
    struct ent t = entry_at(b, 0);
    b->p[t.dtype] = 77;
    fix_crcs(b);
    return t.dtype;
}

static uint64_t m_dtype_bf16_old(struct buf *b)
{
    struct ent t = entry_at(b, 0);
    b->p[t.dtype] = 2;
    fix_crcs(b);
    return t.dtype;
}

static uint64_t m_ndim9(struct buf *b)
{
    struct ent t = entry_at(b, 1);
    b->p[t.ndim] = 9;
    fix_crcs(b);
    return t.ndim;
}

static uint64_t m_dims_overflow(struct buf *b)
{
    struct ent t = entry_at(b, 1);
    put_le64(b->p + t.dims, (uint64_t)1 << 62);
    put_le64(b->p + t.dims + 8, 8);
    fix_crcs(b);
    return t.dims + 8;
}

static uint64_t m_dim_huge(struct buf *b)
{
    struct ent t = entry_at(b, 1);
    put_le64(b->p + t.dims, UINT64_MAX);
    fix_crcs(b);
    return t.dims;
}

static uint64_t m_size(struct buf *b)
{
    struct ent t = entry_at(b, 1);
    put_le64(b->p + t.size, 17);
    fix_crcs(b);
    return t.size;
}

static uint64_t m_q4_size(struct buf *b)
{
    struct ent t = entry_at(b, 2);
    put_le64(b->p + t.dims, 33);   /* 33 elements: 2 blocks = 36 bytes, not 18 */
    fix_crcs(b);
    return t.size;
}

static uint64_t m_off_past_end(struct buf *b)
{
    struct ent t = entry_at(b, 1);
    put_le64(b->p + t.rel, (uint64_t)1 << 40);
    fix_crcs(b);
    return t.rel;
}

static uint64_t m_off_overflow(struct buf *b)
{
    struct ent t = entry_at(b, 1);
    put_le64(b->p + t.rel, UINT64_MAX - 8);
    fix_crcs(b);
    return t.rel;
}

static uint64_t m_off_tail(struct buf *b)
{
    struct ent t = entry_at(b, 2);
    put_le64(b->p + t.rel, b->n - DATA - 10);   /* starts inside the file, ends past it */
    fix_crcs(b);
    return t.rel;
}

static uint64_t m_overlap(struct buf *b)
{
    struct ent t = entry_at(b, 1);
    put_le64(b->p + t.rel, 4);   /* [DATA+4, DATA+20) overlaps a at [DATA, DATA+8) */
    fix_crcs(b);
    return DATA + 4;
}

static uint64_t m_empty_name(struct buf *b)
{
    struct ent t = entry_at(b, 0);
    put_le16(b->p + t.off, 0);
    fix_crcs(b);
    return t.off;
}

static uint64_t m_meta_past_end(struct buf *b)
{
    put_le32(b->p + 20, 0xFFFFFFF0u);
    fix_crcs(b);
    return 12;
}

static uint64_t m_meta_overlaps_index(struct buf *b)
{
    put_le32(b->p + 20, 65);   /* metadata [64, 129) runs into the index at 128 */
    fix_crcs(b);
    return 24;
}

static uint64_t m_meta_in_header(struct buf *b)
{
    put_le64(b->p + 12, 32);
    fix_crcs(b);
    return 12;
}

static uint64_t m_meta_not_json(struct buf *b)
{
    b->p[64] = 'x';
    fix_crcs(b);
    return 64;
}

static uint64_t m_meta_bad_utf8(struct buf *b)
{
    b->p[64 + 2] = 0xff;   /* inside the first key */
    fix_crcs(b);
    return 66;
}

static uint64_t m_meta_not_object(struct buf *b)
{
    uint32_t n = le32(b->p + 20);
    memset(b->p + 64, ' ', n);
    memcpy(b->p + 64, "[0]", 3);
    fix_crcs(b);
    return 64;
}

static uint64_t m_index_past_data(struct buf *b)
{
    put_le64(b->p + 24, DATA + 64);   /* index after data_offset */
    fix_crcs(b);
    return 32;
}

static uint64_t m_index_past_end(struct buf *b)
{
    put_le64(b->p + 24, 1 << 20);
    fix_crcs(b);
    return 24;
}

static uint64_t m_data_past_end(struct buf *b)
{
    put_le64(b->p + 32, 1 << 20);
    fix_crcs(b);
    return 32;
}

static uint64_t m_count_huge(struct buf *b)
{
    put_le32(b->p + 8, 0xFFFFFFFFu);
    fix_crcs(b);
    return 8;
}

static uint64_t m_count_plus1(struct buf *b)
{
    put_le32(b->p + 8, 4);   /* the 4th entry is read from the zero padding */
    fix_crcs(b);
    return entry_at(b, 2).size + 8;
}

static uint64_t m_count_plus2(struct buf *b)
{
    struct ent t = entry_at(b, 2);
    put_le32(b->p + 8, 5);
    fix_crcs(b);
    return t.size + 8;   /* first of the made-up entries: its name is empty */
}

static uint64_t set_flags(struct buf *b, uint16_t f)
{
    put_le16(b->p + 6, (uint16_t)(0x0400 | f));
    fix_crcs(b);
    return 6;
}

static uint64_t m_lz4(struct buf *b) { return set_flags(b, 0x0001); }
static uint64_t m_zstd(struct buf *b) { return set_flags(b, 0x0002); }
static uint64_t m_encrypted(struct buf *b) { return set_flags(b, 0x0004); }
static uint64_t m_column_major(struct buf *b) { return set_flags(b, 0x0800); }

static uint64_t m_header_crc(struct buf *b)
{
    b->p[50] ^= 1;   /* a reserved byte: covered by the CRC */
    return 40;
}

static uint64_t m_magic_v1(struct buf *b)
{
    b->p[3] = 'N';
    return 0;
}

static uint64_t m_magic_bad(struct buf *b)
{
    b->p[2] = 'X';
    return 0;
}

static uint64_t m_magic_byte(struct buf *b)
{
    b->p[3] = 7;
    return 3;
}

static uint64_t m_short_header(struct buf *b)
{
    b->n = 40;
    return 40;
}

struct bad_row {
    const char   *name;
    mutate_fn     mutate;
    enum err_code code;
    const char   *msg;
};

static const struct bad_row bad_rows[] = {
    { "unsorted index",        m_unsorted,            ERR_FORMAT,      "not sorted: 'a' after 'b'" },
    { "duplicate names",       m_duplicate,           ERR_FORMAT,      "duplicate tensor name 'a'" },
    { "unknown dtype code",    m_dtype,               ERR_FORMAT,      "tensor 'a': unknown dtype code 77" },
    { "old BF16 code 2",       m_dtype_bf16_old,      ERR_FORMAT,      "2 was BF16" },
    { "ndim 9",                m_ndim9,               ERR_FORMAT,      "tensor 'b': 9 dimensions" },
    { "dims overflow",         m_dims_overflow,       ERR_FORMAT,      "overflows the element count" },
    { "dim over int64",        m_dim_huge,            ERR_FORMAT,      "overflows the element count" },
    { "size mismatch",         m_size,                ERR_FORMAT,      "size 17 does not match its shape" },
    { "APR_Q4 size mismatch",  m_q4_size,             ERR_FORMAT,      "tensor 'c': size 18 does not match" },
    { "offset past end",       m_off_past_end,        ERR_FORMAT,      "tensor 'b': data at data offset + 1099511627776" },
    { "offset overflow",       m_off_overflow,        ERR_FORMAT,      "past end of file" },
    { "data runs past end",    m_off_tail,            ERR_FORMAT,      "tensor 'c': data at" },
    { "overlapping tensors",   m_overlap,             ERR_FORMAT,      "tensor 'b' overlaps tensor 'a'" },
    { "empty tensor name",     m_empty_name,          ERR_FORMAT,      "tensor 0: empty name" },
    { "metadata past end",     m_meta_past_end,       ERR_FORMAT,      "metadata at 64 (4294967280 bytes) past end of file" },
    { "metadata into index",   m_meta_overlaps_index, ERR_FORMAT,      "overlaps the metadata [64, 129)" },
    { "metadata in header",    m_meta_in_header,      ERR_FORMAT,      "metadata offset 32 inside the header" },
    { "metadata not JSON",     m_meta_not_json,       ERR_FORMAT,      "invalid JSON" },
    { "metadata bad UTF-8",    m_meta_bad_utf8,       ERR_FORMAT,      "invalid UTF-8" },
    { "metadata not object",   m_meta_not_object,     ERR_FORMAT,      "metadata is not a JSON object" },
    { "index past data",       m_index_past_data,     ERR_FORMAT,      "data offset 256 before the tensor index offset 320" },
    { "index past end",        m_index_past_end,      ERR_FORMAT,      "tensor index offset 1048576 past end of file" },
    { "data offset past end",  m_data_past_end,       ERR_FORMAT,      "data offset 1048576 past end of file" },
    { "tensor count huge",     m_count_huge,          ERR_FORMAT,      "tensor count 4294967295 needs at least" },
    { "tensor count + 1",      m_count_plus1,         ERR_FORMAT,      "tensor 3: empty name" },
    { "tensor count + 2",      m_count_plus2,         ERR_FORMAT,      "tensor 3: empty name" },
    { "LZ4 flag",              m_lz4,                 ERR_UNSUPPORTED, "LZ4-compressed" },
    { "ZSTD flag",             m_zstd,                ERR_UNSUPPORTED, "zstd-compressed" },
    { "encrypted flag",        m_encrypted,           ERR_UNSUPPORTED, "encrypted" },
    { "column-major flag",     m_column_major,        ERR_UNSUPPORTED, "column-major" },
    { "header CRC",            m_header_crc,          ERR_FORMAT,      "header checksum mismatch: stored 0x" },
    { "APR v1 magic",          m_magic_v1,            ERR_UNSUPPORTED, "APR v1 file (magic 'APRN')" },
    { "bad magic",             m_magic_bad,           ERR_FORMAT,      "not an APR file" },
    { "unknown 4th magic byte", m_magic_byte,         ERR_FORMAT,      "unknown APR magic byte 0x07" },
    { "short header",          m_short_header,        ERR_FORMAT,      "truncated header" },
};

START_TEST(test_malformed)
{
    const struct bad_row *row = &bad_rows[_i];
    struct buf b = small_file(), c;
    struct model m;
    struct err e = ERR_INIT;
    uint64_t want_off = row->mutate(&b);
    int rc;

    c.n = b.n;   /* exact-size copy: ASan catches any read past the end */
    c.p = malloc(c.n);
    memcpy(c.p, b.p, c.n);
    rc = apr_open_mem(&m, c.p, c.n, "bad.apr", &e);
    ck_assert_msg(rc == -1, "%s: accepted", row->name);
    ck_assert_msg(e.code == row->code, "%s: code %s, want %s (%s)", row->name,
                  err_code_name(e.code), err_code_name(row->code), e.msg);
    ck_assert_msg(strstr(e.msg, row->msg) != NULL, "%s: message '%s' lacks '%s'", row->name,
                  e.msg, row->msg);
    ck_assert_msg(strncmp(e.msg, "bad.apr: ", 9) == 0, "%s: message '%s' lacks the file name",
                  row->name, e.msg);
    ck_assert_msg(e.off == want_off, "%s: offset %llu, want %llu (%s)", row->name,
                  (unsigned long long)e.off, (unsigned long long)want_off, e.msg);
    /* m is left zeroed */
    ck_assert_ptr_null(m.tensors);
    ck_assert_ptr_null(m.kv);
    ck_assert_ptr_null(m.path);
    free(b.p);
    free(c.p);
}
END_TEST

/* ---- truncation at every length, header byte flips */

START_TEST(test_truncate_everywhere)
{
    struct buf b = small_file();
    uint64_t data_end = DATA_END;
    int ok = 0;

    for (size_t n = 0; n < b.n; n++) {
        uint8_t *p = malloc(n ? n : 1);
        struct model m;
        struct err e = ERR_INIT;
        memcpy(p, b.p, n);
        if (apr_open_mem(&m, p, n, "cut.apr", &e) == 0) {
            /* Only the footer (or the padding before it) is cut: the index is intact. */
            ck_assert_msg(n >= data_end, "length %zu accepted", n);
            ck_assert_int_ne(m.apr_footer_crc_ok, 1);
            /* Cut anywhere after the last tensor's bytes: truncated, never "mismatch". */
            ck_assert_int_eq(m.apr_footer_crc_ok, APR_FOOTER_TRUNCATED);
            ck_assert(tu_has_note(&m, "truncated"));
            ck_assert_uint_eq(m.n_tensors, 3);
            ck_assert_mem_eq(m.tensors[2].data, small_c, 18);
            model_close(&m);
            ok++;
        } else {
            ck_assert_msg(e.code == ERR_FORMAT, "length %zu: %s", n, e.msg);
            ck_assert_msg(strncmp(e.msg, "cut.apr: ", 9) == 0, "length %zu: %s", n, e.msg);
            ck_assert_uint_ne(e.off, ERR_NO_OFF);
        }
        free(p);
    }
    ck_assert_int_eq(ok, (int)(b.n - data_end));
    free(b.p);
}
END_TEST

START_TEST(test_header_flips)
{
    static const uint8_t masks[] = { 0x01, 0x80, 0xff };
    struct buf b = small_file();
    struct apr_read_opts skip = { 0, 1, 0 };

    for (size_t i = 0; i < 64; i++)
        for (size_t k = 0; k < sizeof masks; k++) {
            struct buf c = { malloc(b.n), b.n };
            struct model m;
            struct err e = ERR_INIT;
            int rc;

            memcpy(c.p, b.p, b.n);
            c.p[i] ^= masks[k];
            /* As flipped: the header CRC (or the magic) catches every change. */
            rc = apr_open_mem(&m, c.p, c.n, "flip.apr", &e);
            ck_assert_msg(rc == -1, "byte %zu ^ 0x%02x accepted", i, masks[k]);
            ck_assert(e.code == ERR_FORMAT || e.code == ERR_UNSUPPORTED);
            if (i >= 4)
                ck_assert_msg(strstr(e.msg, "header checksum mismatch"), "%s", e.msg);
            /* With the CRCs fixed up (or skipped), deeper checks: success or a clean error. */
            for (int pass = 0; pass < 2; pass++) {
                struct err e2 = ERR_INIT;
                if (pass == 0 && i >= 40 && i < 44)
                    continue;
                if (pass == 0)
                    fix_crcs(&c);
                rc = apr_open_mem_opts(&m, c.p, c.n, "flip.apr", pass ? &skip : NULL, &e2);
                if (rc == 0) {
                    for (uint64_t t = 0; t < m.n_tensors; t++)
                        ck_assert(m.tensors[t].off + m.tensors[t].size <= c.n);
                    model_close(&m);
                } else {
                    ck_assert_msg(e2.code == ERR_FORMAT || e2.code == ERR_UNSUPPORTED,
                                  "byte %zu: %s", i, e2.msg);
                    ck_assert(e2.msg[0]);
                }
            }
            free(c.p);
        }
    free(b.p);
}
END_TEST

/* ---- legacy magic and dtype codes, footer, offsets out of order */

START_TEST(test_legacy)
{
    struct buf b = small_file();
    struct ent c = entry_at(&b, 2);
    struct model m;

    b.p[3] = '2';
    b.p[c.dtype] = 8;   /* legacy APR_Q4 */
    fix_crcs(&b);
    open_ok(&m, &b);
    ck_assert_int_eq(m.apr_magic_legacy, 1);
    ck_assert_int_eq(m.tensors[2].dtype, DT_APR_Q4);
    ck_assert_uint_eq(m.tensors[2].stored_dtype, 8);
    ck_assert_int_eq(m.apr_footer_crc_ok, 1);
    ck_assert(tu_has_note(&m, "legacy magic 'APR2'"));
    ck_assert(tu_has_note(&m, "legacy dtype codes"));
    model_close(&m);
    free(b.p);
}
END_TEST

START_TEST(test_legacy_q8)
{
    static const int64_t s[1] = { 3 };
    static const uint8_t q8[7] = { 0, 0, 0x80, 0x3f, 1, 2, 0xff };
    struct model w, m;
    char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "q8.apr");
    struct buf b;

    model_new(&w);
    tensor_add(&w, "q", DT_APR_Q8, 1, s, q8);
    write_ok(&w, path);
    model_close(&w);
    b.p = tu_slurp(path, &b.n);
    ck_assert_uint_eq(b.p[entry_at(&b, 0).dtype], 129);
    b.p[entry_at(&b, 0).dtype] = 9;
    fix_crcs(&b);
    open_ok(&m, &b);
    ck_assert_int_eq(m.tensors[0].dtype, DT_APR_Q8);
    ck_assert_uint_eq(m.tensors[0].stored_dtype, 9);
    ck_assert_uint_eq(m.tensors[0].size, 7);
    ck_assert_mem_eq(m.tensors[0].data, q8, 7);
    ck_assert_uint_eq(m.n_kv, 0);   /* "{}" */
    ck_assert_uint_eq(le32(b.p + 20), 2);
    model_close(&m);
    free(b.p);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(test_footer_mismatch)
{
    struct buf b = small_file();
    struct model m;

    b.p[DATA + 64] ^= 0x55;   /* a data byte of "b": only the footer CRC notices */
    open_ok(&m, &b);
    ck_assert_int_eq(m.apr_footer_crc_ok, 0);
    ck_assert(tu_has_note(&m, "footer checksum mismatch"));
    ck_assert_uint_eq(m.n_tensors, 3);
    ck_assert_uint_eq(m.tensors[1].data[0], 9 ^ 0x55);
    model_close(&m);

    /* The footer itself damaged. */
    b.p[DATA + 64] ^= 0x55;
    b.p[b.n - 1] ^= 1;
    open_ok(&m, &b);
    ck_assert_int_eq(m.apr_footer_crc_ok, 0);
    model_close(&m);
    b.p[b.n - 1] ^= 1;

    /* No footer at all: the file ends at the last tensor's bytes. */
    b.n = DATA_END;
    open_ok(&m, &b);
    ck_assert_int_eq(m.apr_footer_crc_ok, APR_FOOTER_TRUNCATED);
    ck_assert(tu_has_note(&m, "truncated"));
    model_close(&m);

    /* Skipping the footer check leaves it unchecked; apr_footer_verify does it later. */
    {
        struct apr_read_opts o = { 1, 0, 0 };
        struct err e = ERR_INIT;
        b.n = SMALL_N;
        ck_assert_int_eq(apr_open_mem_opts(&m, b.p, b.n, "x", &o, &e), 0);
        ck_assert_int_eq(m.apr_footer_crc_ok, APR_FOOTER_UNCHECKED);
        ck_assert_int_eq(apr_footer_verify(&m), 1);
        ck_assert_int_eq(m.apr_footer_crc_ok, 1);
        model_close(&m);
    }
    free(b.p);
}
END_TEST

/* apr_check_integrity: what a whole-file reader requires (header CRC, footer CRC, the
 * footer present after the padded data), and apr_read_opts.verify, which makes the open
 * itself fail. */
static void integrity_fails(struct model *m, const char *want)
{
    struct err e = ERR_INIT;
    ck_assert_int_eq(apr_check_integrity(m, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_msg(strncmp(e.msg, "mem.apr: ", 9) == 0, "%s", e.msg);
    ck_assert_msg(strstr(e.msg, want) != NULL, "want '%s' in: %s", want, e.msg);
}

START_TEST(test_integrity)
{
    struct buf b = small_file();
    struct apr_read_opts vo = { 0, 0, 1 }, ho = { 1, 0, 0 };
    struct err e = ERR_INIT;
    struct model m;

    /* A good file passes; so does a model of another format (nothing to check). */
    open_ok(&m, &b);
    ck_assert_int_eq(apr_check_integrity(&m, &e), 0);
    model_close(&m);
    ck_assert_int_eq(apr_open_mem_opts(&m, b.p, b.n, "mem.apr", &vo, &e), 0);
    model_close(&m);
    {
        static const uint8_t g[24] = { 'G', 'G', 'U', 'F', 3 };
        ck_assert_int_eq(gguf_open_mem(&m, g, sizeof g, "x.gguf", &e), 0);
        ck_assert_int_eq(apr_check_integrity(&m, &e), 0);
        model_close(&m);
    }

    /* One flipped data byte: the open notes it, the integrity check fails, and so does
     * an open with verify (naming the file and the footer). */
    b.p[DATA + 64] ^= 0x55;
    open_ok(&m, &b);
    ck_assert_int_eq(m.apr_footer_crc_ok, APR_FOOTER_MISMATCH);
    integrity_fails(&m, "corrupt APR file (its bytes changed after it was written): "
                        "footer checksum mismatch, stored 0x");
    model_close(&m);
    ck_assert_int_eq(apr_open_mem_opts(&m, b.p, b.n, "mem.apr", &vo, &e), -1);
    ck_assert_msg(strstr(e.msg, "mem.apr: corrupt APR file (its bytes changed after it was "
                                "written): footer checksum mismatch") != NULL,
                  "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 0);   /* closed */
    /* A header-only open checks the footer when asked. */
    ck_assert_int_eq(apr_open_mem_opts(&m, b.p, b.n, "mem.apr", &ho, &e), 0);
    ck_assert_int_eq(m.apr_footer_crc_ok, APR_FOOTER_UNCHECKED);
    integrity_fails(&m, "footer checksum mismatch");
    ck_assert_int_eq(m.apr_footer_crc_ok, APR_FOOTER_MISMATCH);
    model_close(&m);
    b.p[DATA + 64] ^= 0x55;

    /* Cut anywhere in the padding or the footer: truncated, an error for the check. */
    for (size_t n = DATA_END; n < SMALL_N; n++) {
        struct buf c = { b.p, n };
        open_ok(&m, &c);
        ck_assert_int_eq(m.apr_footer_crc_ok, APR_FOOTER_TRUNCATED);
        integrity_fails(&m, "truncated APR file");
        model_close(&m);
    }

    /* A writer that did not pad the last tensor but wrote a good footer is fine. */
    {
        struct buf c = { malloc(DATA_END + 4), DATA_END + 4 };
        memcpy(c.p, b.p, DATA_END);
        fix_crcs(&c);
        open_ok(&m, &c);
        ck_assert_int_eq(m.apr_footer_crc_ok, APR_FOOTER_OK);
        ck_assert(tu_has_note(&m, "not padded"));
        ck_assert_int_eq(apr_check_integrity(&m, &e), 0);
        model_close(&m);
        free(c.p);
    }

    /* Bytes appended after the footer: the footer moved, the checksum no longer matches. */
    {
        struct buf c = { malloc(SMALL_N + 8), SMALL_N + 8 };
        memcpy(c.p, b.p, SMALL_N);
        memset(c.p + SMALL_N, 0, 8);
        open_ok(&m, &c);
        ck_assert(tu_has_note(&m, "unexpected bytes"));
        integrity_fails(&m, "footer checksum mismatch");
        model_close(&m);
        free(c.p);
    }

    /* The header CRC (only reachable with the fuzzing option). */
    {
        struct apr_read_opts fo = { 0, 1, 0 };
        b.p[44] ^= 1;   /* a reserved byte: covered by the header CRC only */
        ck_assert_int_eq(apr_open_mem_opts(&m, b.p, b.n, "mem.apr", &fo, &e), 0);
        integrity_fails(&m, "header checksum mismatch");
        model_close(&m);
    }
    free(b.p);
}
END_TEST

START_TEST(test_offsets_unordered)
{
    /* aprender's streaming writer: data in insertion order, index sorted by name. */
    struct buf b = small_file();
    struct ent a = entry_at(&b, 0), bb = entry_at(&b, 1);
    struct model m;

    put_le64(b.p + a.rel, 64);
    put_le64(b.p + bb.rel, 0);
    fix_crcs(&b);
    open_ok(&m, &b);
    ck_assert_uint_eq(m.tensors[0].off, DATA + 64);
    ck_assert_uint_eq(m.tensors[1].off, DATA);
    ck_assert_mem_eq(m.tensors[0].data, b.p + DATA + 64, 8);
    model_close(&m);

    /* A misaligned tensor: accepted, with a note. */
    put_le64(b.p + a.rel, 100);
    fix_crcs(&b);
    open_ok(&m, &b);
    ck_assert(tu_has_note(&m, "not 64-byte aligned (first: 'a')"));
    model_close(&m);
    free(b.p);
}
END_TEST

START_TEST(test_open_errors)
{
    struct model m;
    struct err e = ERR_INIT;
    char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "missing.apr");

    ck_assert_int_eq(apr_open(&m, path, &e), -1);
    ck_assert_int_eq(e.code, ERR_IO);
    ck_assert_ptr_null(m.path);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

/* ---- apr_out_copy (copy_file_range) and meta_final (late metadata) */

struct copy_ctx {
    int         fd;          /* the source file, or a descriptor the kernel cannot copy */
    uint64_t    off[2];      /* each tensor's offset in it */
    char       *hex;         /* the late value's bytes */
    const char *late;        /* what meta_final puts there */
    int         shorten;     /* meta_final changes the length instead */
    int         later;       /* tensor 0 through apr_out_copy_crc_later (1), wrongly (2: a
                              * bad CRC given, 3: only its first piece) */
    const uint8_t *src;      /* the source's bytes, for tensor_crc */
    struct model *m;
};

static int crc_of_tensor(void *ctx, uint64_t i, uint32_t *crc, struct err *e)
{
    struct copy_ctx *c = ctx;

    (void)e;
    ck_assert_uint_eq(i, 0);   /* asked only for the tensor given that way */
    *crc = crc_update(0, c->src + c->off[0], (size_t)c->m->tensors[0].size) ^ (c->later == 2);
    return 0;
}

static int copy_data(void *ctx, const struct model *m, uint64_t i, struct apr_out *out,
                     struct err *e)
{
    struct copy_ctx *c = ctx;
    const struct model_tensor *t = &m->tensors[i];
    size_t half = (size_t)t->size / 2 + 3;   /* two pieces, the second unaligned */

    if (half > t->size)
        half = (size_t)t->size;
    if (c->later && i == 0)
        return apr_out_copy_crc_later(out, c->fd, c->off[i], t->data, half, e) ||
               (c->later == 3 ? apr_out_copy(out, c->fd, c->off[i] + half, t->data + half,
                                             (size_t)t->size - half, e)
                              : apr_out_copy_crc_later(out, c->fd, c->off[i] + half,
                                                       t->data + half,
                                                       (size_t)t->size - half, e));
    return apr_out_copy(out, c->fd, c->off[i], t->data, half, e) ||
           apr_out_copy(out, c->fd, c->off[i] + half, t->data + half, (size_t)t->size - half, e);
}

static int late_meta(void *ctx, struct err *e)
{
    struct copy_ctx *c = ctx;

    (void)e;
    if (c->shorten)
        c->m->kv[0].val.v.s.n--;
    else
        memcpy(c->hex, c->late, strlen(c->late));
    return 0;
}

START_TEST(test_write_copy_late_meta)
{
    /* a source file: 100 bytes of junk, a 3 MiB + 68 byte F32 tensor (the kernel copies
     * it), then a 100-byte one (buffered) */
    const size_t nb = ((size_t)3 << 20) + 68, ns = 100, fsz = 100 + nb + ns;
    const int64_t sb[1] = { (int64_t)(nb / 4) }, ss[1] = { (int64_t)(ns / 4) };
    const char *fin = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char *dir = tu_tmpdir_new("check_apr"), *src = tu_path(dir, "src.bin"),
         *ref = tu_path(dir, "ref.apr"), *out = tu_path(dir, "out.apr");
    char hex[65];
    uint8_t *bytes = pattern(fsz, 7), *a, *b;
    struct mfile mf;
    struct model m, mr, rd;
    struct apr_write_opts o;
    struct copy_ctx cc;
    struct err e = ERR_INIT;
    size_t na, nbytes;
    FILE *f = fopen(src, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, fsz, f), fsz);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(mfile_open(&mf, src, &e), 0);

    /* the reference: the final value from the start, data from memory */
    model_new(&mr);
    kv_str(&mr, "source_sha256", fin);
    kv_str(&mr, "model_type", "t");
    tensor_add(&mr, "w.big", DT_F32, 1, sb, bytes + 100);
    tensor_add(&mr, "a.small", DT_F32, 1, ss, bytes + 100 + nb);
    write_ok(&mr, ref);
    a = tu_slurp(ref, &na);

    /* 0: copy_file_range, 1: its fallback; 2, 3: the same with the big tensor's CRC given
     * by the caller (apr_out_copy_crc_later, tensor_crc) */
    for (int mode = 0; mode < 4; mode++) {
        memset(hex, '0', 64);
        hex[64] = 0;
        model_new(&m);
        kv_str(&m, "source_sha256", hex);
        kv_str(&m, "model_type", "t");
        tensor_add(&m, "w.big", DT_F32, 1, sb, mf.data + 100);
        tensor_add(&m, "a.small", DT_F32, 1, ss, mf.data + 100 + nb);
        memset(&cc, 0, sizeof cc);
        cc.fd = mode % 2 == 0 ? open(src, O_RDONLY) : open("/dev/null", O_RDONLY);
        ck_assert_int_ge(cc.fd, 0);
        cc.off[0] = 100;
        cc.off[1] = 100 + nb;
        cc.hex = hex;
        cc.late = fin;
        cc.m = &m;
        cc.later = mode >= 2;
        cc.src = bytes;
        memset(&o, 0, sizeof o);
        o.tensor_data = copy_data;
        o.tensor_data_ctx = &cc;
        o.tensor_crc = crc_of_tensor;
        o.tensor_crc_ctx = &cc;
        o.meta_final = late_meta;
        o.meta_final_ctx = &cc;
        ck_assert_msg(apr_write(&m, out, &o, &e) == 0, "apr_write: %s", e.msg);
        b = tu_slurp(out, &nbytes);
        ck_assert_uint_eq(nbytes, na);
        ck_assert_msg(memcmp(a, b, na) == 0, "mode %d: not the reference's bytes", mode);
        ck_assert_int_eq(apr_open(&rd, out, &e), 0);
        ck_assert_int_eq(rd.apr_footer_crc_ok, 1);
        model_close(&rd);
        free(b);
        ck_assert_int_eq(unlink(out), 0);

        /* a late value of another length: refused, nothing left behind */
        if (mode == 0) {
            memset(hex, '0', 64);
            cc.shorten = 1;
            ck_assert_int_eq(apr_write(&m, out, &o, &e), -1);
            ck_assert_int_eq(e.code, ERR_INTERNAL);
            ck_assert_ptr_nonnull(strstr(e.msg, "metadata changed"));
            err_clear(&e);
            ck_assert_int_eq(tu_dir_count(dir), 2);   /* src.bin, ref.apr */
        }
        if (mode == 2) {
            /* a wrong CRC from the caller: the file's footer says so */
            cc.later = 2;
            memset(hex, '0', 64);
            ck_assert_int_eq(apr_write(&m, out, &o, &e), 0);
            ck_assert_int_eq(apr_open(&rd, out, &e), 0);
            ck_assert_int_ne(rd.apr_footer_crc_ok, 1);
            model_close(&rd);
            ck_assert_int_eq(unlink(out), 0);
            /* part of a tensor given that way: refused (its CRC is per tensor) */
            cc.later = 3;
            memset(hex, '0', 64);
            ck_assert_int_eq(apr_write(&m, out, &o, &e), -1);
            ck_assert_int_eq(e.code, ERR_INTERNAL);
            ck_assert_ptr_nonnull(strstr(e.msg, "apr_out_copy_crc_later"));
            err_clear(&e);
            ck_assert_int_eq(tu_dir_count(dir), 2);
        }
        close(cc.fd);
        model_close(&m);
    }
    model_close(&mr);
    mfile_close(&mf);
    free(a);
    free(bytes);
    free(src);
    free(ref);
    free(out);
    tu_tmpdir_free(dir);
}
END_TEST

/* ---- writer refusals leave nothing behind */

START_TEST(test_write_refusals)
{
    static const int64_t s32[1] = { 32 }, s1[1] = { 1 };
    static uint8_t q8_0[34], f[4];
    char long_name[300];
    char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "out.apr");
    struct model m;
    struct err e = ERR_INIT;
    struct apr_write_opts o = { 0 };

    model_new(&m);
    tensor_add(&m, "w", DT_Q8_0, 1, s32, q8_0);
    ck_assert_int_eq(apr_write(&m, path, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
    ck_assert_msg(strstr(e.msg, "tensor 'w': dtype Q8_0 has no APR dtype code"), "%s", e.msg);
    ck_assert_int_eq(tu_dir_count(dir), 0);
    model_close(&m);

    err_clear(&e);
    model_new(&m);
    tensor_add(&m, "x", DT_F32, 1, s1, f);
    tensor_add(&m, "x", DT_F32, 1, s1, f);
    ck_assert_int_eq(apr_write(&m, path, NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "duplicate tensor name 'x'"), "%s", e.msg);
    ck_assert_int_eq(tu_dir_count(dir), 0);
    model_close(&m);

    err_clear(&e);
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    model_new(&m);
    tensor_add(&m, long_name, DT_F32, 1, s1, f);
    ck_assert_int_eq(apr_write(&m, path, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_LIMIT);
    model_close(&m);

    err_clear(&e);
    model_new(&m);
    tensor_add(&m, "x", DT_F32, 1, s1, f)->size = 8;
    ck_assert_int_eq(apr_write(&m, path, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_INTERNAL);
    model_close(&m);

    err_clear(&e);
    model_new(&m);
    o.extra_flags = APR_FLAG_ENCRYPTED;
    ck_assert_int_eq(apr_write(&m, path, &o, &e), -1);
    ck_assert_int_eq(e.code, ERR_USAGE);
    model_close(&m);

    /* Into a directory that does not exist: clean I/O error. */
    err_clear(&e);
    model_new(&m);
    {
        char *bad = tu_path(dir, "no/such/dir.apr");
        ck_assert_int_eq(apr_write(&m, bad, NULL, &e), -1);
        ck_assert_int_eq(e.code, ERR_IO);
        free(bad);
    }
    ck_assert_int_eq(tu_dir_count(dir), 0);

    /* Extra flags are OR-ed in and read back; an empty model is a valid file. */
    err_clear(&e);
    o.extra_flags = APR_FLAG_VOCAB;
    ck_assert_int_eq(apr_write(&m, path, &o, &e), 0);
    model_close(&m);
    {
        struct buf b;

        b.p = tu_slurp(path, &b.n);
        open_ok(&m, &b);
        ck_assert_uint_eq(m.apr_flags, 0x0600);
        ck_assert_uint_eq(m.n_tensors, 0);
        ck_assert_uint_eq(b.n, 64 + 64 + 4);
        model_close(&m);
        free(b.p);
    }
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

/* Deep metadata: kept up to 60 levels, refused (not written broken) beyond. */
static void nest(struct model_val *v, int levels)
{
    for (int i = 0; i < levels; i++) {
        v->type = MV_ARR;
        v->v.arr.elem = MV_NULL;
        v->v.arr.n = 1;
        v->v.arr.items = calloc(1, sizeof *v->v.arr.items);
        v = &v->v.arr.items[0];
    }
    v->type = MV_U64;
    v->v.u = 7;
}

START_TEST(test_write_deep_metadata)
{
    char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "deep.apr");
    struct model m, r;
    struct err e = ERR_INIT;
    struct buf b;

    model_new(&m);
    nest(kv_add(&m, "deep"), 59);
    kv_u64(&m, "after", 1);
    write_ok(&m, path);
    b.p = tu_slurp(path, &b.n);
    open_ok(&r, &b);
    ck_assert_uint_eq(r.n_kv, 2);
    ck_assert(slice_eq_cstr(r.kv[1].key, "after"));
    model_close(&r);
    free(b.p);
    model_close(&m);

    model_new(&m);
    nest(kv_add(&m, "deeper"), 70);
    kv_u64(&m, "after", 1);
    ck_assert_int_eq(apr_write(&m, path, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_LIMIT);
    ck_assert_msg(strstr(e.msg, "metadata key 'deeper': nested more than 60 levels"), "%s", e.msg);
    model_close(&m);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

/* ---- APRT */

START_TEST(test_aprt_round_trip)
{
    float v[5] = { 1.5f, -0.0f, INFINITY, 0, 3e-38f };
    uint32_t nan_bits = 0x7fc01234u;
    char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "layer-0.bin");
    struct err e = ERR_INIT;
    struct aprt d;
    struct buf b;
    float out[5];

    memcpy(&v[3], &nan_bits, 4);
    ck_assert_int_eq(aprt_write(path, 7, v, 5, &e), 0);
    b.p = tu_slurp(path, &b.n);
    ck_assert_uint_eq(b.n, 12 + 20);
    ck_assert_mem_eq(b.p, "APRT\x07\0\0\0\x05\0\0\0", 12);
    ck_assert_int_eq(aprt_open(&d, path, &e), 0);
    ck_assert_uint_eq(d.layer, 7);
    ck_assert_uint_eq(d.count, 5);
    ck_assert_uint_eq(d.trailing, 0);
    aprt_copy(&d, 0, 5, out);
    ck_assert_mem_eq(out, v, sizeof v);   /* bit for bit, NaN payload and -0 included */
    ck_assert(aprt_get(&d, 0) == 1.5f);
    aprt_close(&d);
    aprt_close(&d);   /* idempotent */

    /* Whole-model stage, no values; and trailing bytes are ignored but counted. */
    ck_assert_int_eq(aprt_write(path, APRT_LAYER_MODEL, NULL, 0, &e), 0);
    free(b.p);
    b.p = tu_slurp(path, &b.n);
    ck_assert_uint_eq(b.n, 12);
    ck_assert_int_eq(aprt_open_mem(&d, b.p, b.n, "x", &e), 0);
    ck_assert_uint_eq(d.layer, APRT_LAYER_MODEL);
    ck_assert_uint_eq(d.count, 0);
    aprt_close(&d);
    {
        uint8_t t[20] = { 'A', 'P', 'R', 'T', 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x80, 0x3f, 9, 9, 9, 9 };
        ck_assert_int_eq(aprt_open_mem(&d, t, sizeof t, "x", &e), 0);
        ck_assert_uint_eq(d.trailing, 4);
        ck_assert(aprt_get(&d, 0) == 1.0f);
        aprt_close(&d);
        ck_assert(aprt_is(t, sizeof t));
        ck_assert(!aprt_is(t, 3));
    }
    ck_assert_int_eq(tu_dir_count(dir), 1);

    /* A larger dump crosses the writer's buffer boundary. */
    {
        uint32_t n = 40000;
        float *big = malloc(n * sizeof *big);
        for (uint32_t i = 0; i < n; i++)
            big[i] = (float)i * 0.5f;
        ck_assert_int_eq(aprt_write(path, 3, big, n, &e), 0);
        ck_assert_int_eq(aprt_open(&d, path, &e), 0);
        ck_assert_uint_eq(d.count, n);
        for (uint32_t i = 0; i < n; i += 997)
            ck_assert(aprt_get(&d, i) == big[i]);
        ck_assert(aprt_get(&d, n - 1) == big[n - 1]);
        aprt_close(&d);
        free(big);
    }
    free(b.p);
    free(path);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(test_aprt_malformed)
{
    static const uint8_t good[16] = { 'A', 'P', 'R', 'T', 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 };
    struct aprt d;
    struct err e = ERR_INIT;

    for (size_t n = 0; n < sizeof good; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, good, n);
        err_clear(&e);
        ck_assert_int_eq(aprt_open_mem(&d, p, n, "cut.bin", &e), -1);
        ck_assert_int_eq(e.code, ERR_FORMAT);
        ck_assert_uint_ne(e.off, ERR_NO_OFF);
        ck_assert_ptr_null(d.values);
        free(p);
    }
    {
        uint8_t p[16];
        memcpy(p, good, 16);
        p[3] = 'X';
        err_clear(&e);
        ck_assert_int_eq(aprt_open_mem(&d, p, 16, "bad.bin", &e), -1);
        ck_assert_msg(strstr(e.msg, "bad.bin: not an APRT stage dump"), "%s", e.msg);
        memcpy(p, good, 16);
        put_le32(p + 8, 0xFFFFFFFFu);
        err_clear(&e);
        ck_assert_int_eq(aprt_open_mem(&d, p, 16, "big.bin", &e), -1);
        ck_assert_msg(strstr(e.msg, "value count 4294967295 needs 17179869180 bytes, 4 follow"),
                      "%s", e.msg);
        ck_assert_uint_eq(e.off, 8);
    }
    {
        char *dir = tu_tmpdir_new("check_apr"), *path = tu_path(dir, "x/y.bin");
        float v = 1;
        err_clear(&e);
        ck_assert_int_eq(aprt_write(path, 0, &v, 1, &e), -1);
        ck_assert_int_eq(e.code, ERR_IO);
        err_clear(&e);
        ck_assert_int_eq(aprt_open(&d, path, &e), -1);
        ck_assert_int_eq(e.code, ERR_IO);
        free(path);
        tu_tmpdir_free(dir);
    }
}
END_TEST

Suite *apr_suite(void)
{
    Suite *s = suite_create("apr");
    TCase *tc = tcase_create("apr");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_worked_example);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_small_layout);
    tcase_add_loop_test(tc, test_malformed, 0, (int)(sizeof bad_rows / sizeof bad_rows[0]));
    tcase_add_test(tc, test_truncate_everywhere);
    tcase_add_test(tc, test_header_flips);
    tcase_add_test(tc, test_legacy);
    tcase_add_test(tc, test_legacy_q8);
    tcase_add_test(tc, test_footer_mismatch);
    tcase_add_test(tc, test_integrity);
    tcase_add_test(tc, test_offsets_unordered);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_write_refusals);
    tcase_add_test(tc, test_write_copy_late_meta);
    tcase_add_test(tc, test_write_deep_metadata);
    tcase_add_test(tc, test_aprt_round_trip);
    tcase_add_test(tc, test_aprt_malformed);
    suite_add_tcase(s, tc);
    return s;
}
