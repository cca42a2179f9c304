/*
 * check_gguf.c - the GGUF reader and writer.
 *
 *   fixtures   every ../shared/fixtures/gguf file read and compared with the
 *              reference listings (refs/NAME.tensors.json, vocab/NAME.listing.json), then
 *              written back byte for byte (SHA-256); skipped when the folder is absent
 *   malformed  a table of hand-built broken files: error code, message, offset
 *   notes      accepted oddities (BOOL byte 2, non-canonical layout, short padding...)
 *   robust     truncation at every length, every header byte set to other values
 *   writer     the 192-byte example of reference 2.8, round trips, refusals
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSMN_STATIC
#include <jsmn.h>

#include "../../common/sha256.h"
#include "../fixtures/gguf_fix.h"
#include "../../formats/gguf/gguf_impl.h"
#include "tu.h"
#include "../../common/banned.h"

/* ------------------------------------------------------------------ helpers */

/* Write m with gguf_write_fd into a temporary file and return the bytes (malloc). */
static uint8_t *write_mem(const struct model *m, const struct gguf_write_opts *o, size_t *n,
                          struct err *e)
{
    FILE *f = tmpfile();
    uint8_t *p = NULL;
    off_t len;

    ck_assert_ptr_nonnull(f);
    if (gguf_write_fd(m, fileno(f), "mem.gguf", o, e) == 0) {
        len = lseek(fileno(f), 0, SEEK_END);
        ck_assert_int_ge(len, 0);
        p = malloc((size_t)len + 1);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(pread(fileno(f), p, (size_t)len, 0), len);
        *n = (size_t)len;
    }
    fclose(f);
    return p;
}

static uint8_t *build_mem(int (*fn)(struct model *, struct err *), size_t *n)
{
    struct model m;
    struct err e = ERR_INIT;
    uint8_t *p;

    ck_assert_msg(fn(&m, &e) == 0, "build: %s", e.msg);
    p = write_mem(&m, NULL, n, &e);
    ck_assert_msg(p != NULL, "write: %s", e.msg);
    model_close(&m);
    return p;
}

/* Deep equality of two values (types, elements, nested items). */
static int val_eq(const struct model_val *a, const struct model_val *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case MV_STR:
        return slice_eq(a->v.s, b->v.s);
    case MV_F32: case MV_F64:
        return memcmp(&a->v.f, &b->v.f, sizeof a->v.f) == 0;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64:
        return a->v.i == b->v.i;
    case MV_ARR:
        if (a->v.arr.elem != b->v.arr.elem || a->v.arr.n != b->v.arr.n)
            return 0;
        for (uint64_t i = 0; i < a->v.arr.n; i++) {
            if (a->v.arr.elem == MV_STR && !slice_eq(a->v.arr.strs[i], b->v.arr.strs[i]))
                return 0;
            if (a->v.arr.elem == MV_ARR && !val_eq(&a->v.arr.items[i], &b->v.arr.items[i]))
                return 0;
        }
        if (a->v.arr.elem != MV_STR && a->v.arr.elem != MV_ARR && a->v.arr.n &&
            memcmp(a->v.arr.raw, b->v.arr.raw, a->v.arr.n * model_vtype_size(a->v.arr.elem)))
            return 0;
        return 1;
    default:
        return a->v.u == b->v.u;
    }
}

static void assert_models_equal(const struct model *a, const struct model *b)
{
    ck_assert_uint_eq(a->n_kv, b->n_kv);
    for (uint64_t i = 0; i < a->n_kv; i++) {
        ck_assert_msg(slice_eq(a->kv[i].key, b->kv[i].key), "key %llu differs",
                      (unsigned long long)i);
        ck_assert_msg(val_eq(&a->kv[i].val, &b->kv[i].val), "value of '%.*s' differs",
                      (int)a->kv[i].key.n, a->kv[i].key.p);
    }
    ck_assert_uint_eq(a->n_tensors, b->n_tensors);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const struct model_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        ck_assert(slice_eq(x->name, y->name));
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_int_eq(x->n_dims, y->n_dims);
        for (int k = 0; k < x->n_dims; k++)
            ck_assert_int_eq(x->shape[k], y->shape[k]);
        ck_assert_int_eq(x->n_elems, y->n_elems);
        ck_assert_uint_eq(x->size, y->size);
        ck_assert(x->size == 0 || memcmp(x->data, y->data, x->size) == 0);
    }
}

/* ------------------------------------------------------------------ JSON refs (jsmn) */

struct js {
    const char *s;
    jsmntok_t  *t;
    int         n;
};

static int js_load(struct js *j, const char *text, size_t len)
{
    jsmn_parser p;
    int n;

    jsmn_init(&p);
    n = jsmn_parse(&p, text, len, NULL, 0);
    if (n <= 0)
        return -1;
    j->t = calloc((size_t)n, sizeof *j->t);
    ck_assert_ptr_nonnull(j->t);
    jsmn_init(&p);
    j->n = jsmn_parse(&p, text, len, j->t, (unsigned)n);
    j->s = text;
    return j->n > 0 ? 0 : -1;
}

/* Index just past the value at i. */
static int js_skip(const struct js *j, int i)
{
    int n = 1;
    while (n > 0 && i < j->n) {
        n += j->t[i].size;   /* objects: size = keys (each key's size is 1) */
        n--;
        i++;
    }
    return i;
}

static int js_is(const struct js *j, int i, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(j->t[i].end - j->t[i].start) == n && memcmp(j->s + j->t[i].start, s, n) == 0;
}

/* Value index of key in the object at obj, or -1. */
static int js_get(const struct js *j, int obj, const char *key)
{
    int i = obj + 1;
    for (int k = 0; k < j->t[obj].size; k++) {
        if (js_is(j, i, key))
            return i + 1;
        i = js_skip(j, i + 1);
    }
    return -1;
}

static struct slice js_str(const struct js *j, int i)
{
    struct slice s = { j->s + j->t[i].start, (size_t)(j->t[i].end - j->t[i].start) };
    return s;
}

static long long js_int(const struct js *j, int i)
{
    char buf[64];
    struct slice s = js_str(j, i);
    ck_assert_uint_lt(s.n, sizeof buf);
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    return strtoll(buf, NULL, 10);
}

static double js_num(const struct js *j, int i)
{
    char buf[64];
    struct slice s = js_str(j, i);
    ck_assert_uint_lt(s.n, sizeof buf);
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    return strtod(buf, NULL);
}

/* SHA-256 of an array as the listings serialise it: raw elements, or u64 length + bytes. */
static void arr_sha(const struct model_val *v, char hex[65])
{
    if (v->v.arr.elem == MV_STR) {
        struct sha256 h;
        struct err e = ERR_INIT;
        uint8_t d[SHA256_LEN], len[8];
        ck_assert(sha256_init(&h, &e) == 0);
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            put_le64(len, v->v.arr.strs[i].n);
            sha256_update(&h, len, 8);
            sha256_update(&h, v->v.arr.strs[i].p, v->v.arr.strs[i].n);
        }
        ck_assert(sha256_final(&h, d, &e) == 0);
        sha256_hex(d, hex);
    } else {
        tu_sha_hex(v->v.arr.raw, v->v.arr.n * model_vtype_size(v->v.arr.elem), hex);
    }
}

static const uint8_t example192[192];

/* ------------------------------------------------------------------ shared fixtures */

static const char *const fixture_files[] = {
    "gguf/tiny-llama-small-F16",     "gguf/tiny-llama-small-IQ4_XS",
    "gguf/tiny-llama-small-Q4_0",    "gguf/tiny-llama-small-Q4_K_M",
    "gguf/tiny-llama-small-Q6_K",    "gguf/tiny-llama-small-Q8_0",
    "gguf/vocab/ggml-vocab-deepseek-coder", "gguf/vocab/ggml-vocab-gpt-2",
    "gguf/vocab/ggml-vocab-llama-spm",      "gguf/vocab/ggml-vocab-phi-3",
};
#define N_FIXTURES ((int)(sizeof fixture_files / sizeof fixture_files[0]))

static void check_metadata(const struct model *m, const struct js *j, int meta)
{
    int i = meta + 1;

    ck_assert_int_eq(j->t[meta].size, (int)m->n_kv);
    for (int k = 0; k < j->t[meta].size; k++) {
        const struct model_kv *kv = &m->kv[k];
        struct slice key = js_str(j, i);
        int obj = i + 1, ty = js_get(j, obj, "type"), val = js_get(j, obj, "value");
        char want[65], got[65];

        ck_assert_msg(slice_eq(kv->key, key), "key %d: '%.*s', listing has '%.*s'", k,
                      (int)kv->key.n, kv->key.p, (int)key.n, key.p);
        ck_assert_msg(js_is(j, ty, model_vtype_name(kv->val.type)), "key '%.*s': type %s",
                      (int)key.n, key.p, model_vtype_name(kv->val.type));
        if (kv->val.type == MV_ARR) {
            int et = js_get(j, obj, "elem_type"), n = js_get(j, obj, "n"),
                sh = js_get(j, obj, "sha256");
            ck_assert(et > 0 && js_is(j, et, model_vtype_name(kv->val.v.arr.elem)));
            ck_assert(n > 0 && js_int(j, n) == (long long)kv->val.v.arr.n);
            if (sh > 0) {
                struct slice s = js_str(j, sh);
                arr_sha(&kv->val, got);
                ck_assert_uint_eq(s.n, 64);
                memcpy(want, s.p, 64);
                want[64] = 0;
                ck_assert_msg(strcmp(want, got) == 0, "key '%.*s': array hash differs",
                              (int)key.n, key.p);
            }
        } else if (val > 0) {
            switch (kv->val.type) {
            case MV_STR:
                if (!memchr(j->s + j->t[val].start, '\\', (size_t)(j->t[val].end - j->t[val].start)))
                    ck_assert_msg(slice_eq(kv->val.v.s, js_str(j, val)), "key '%.*s': value",
                                  (int)key.n, key.p);
                break;
            case MV_BOOL:
                ck_assert(js_is(j, val, kv->val.v.u ? "true" : "false"));
                break;
            case MV_F32: case MV_F64:
                ck_assert(js_num(j, val) == kv->val.v.f);
                break;
            case MV_I8: case MV_I16: case MV_I32: case MV_I64:
                ck_assert(js_int(j, val) == kv->val.v.i);
                break;
            default:
                ck_assert(js_int(j, val) == (long long)kv->val.v.u);
                break;
            }
        }
        i = js_skip(j, obj);
    }
}

static void check_tensors(const struct model *m, const struct js *j, int arr)
{
    int i = arr + 1;

    ck_assert_int_eq(j->t[arr].size, (int)m->n_tensors);
    for (int k = 0; k < j->t[arr].size; k++) {
        const struct model_tensor *t = &m->tensors[k];
        int name = js_get(j, i, "name"), type = js_get(j, i, "type"), shape = js_get(j, i, "shape");
        char want[65], got[65];
        struct slice h = js_str(j, js_get(j, i, "sha256_raw"));

        ck_assert_msg(slice_eq(t->name, js_str(j, name)), "tensor %d name", k);
        ck_assert_msg(js_is(j, type, dtype_name(t->dtype)), "tensor '%.*s': type %s",
                      (int)t->name.n, t->name.p, dtype_name(t->dtype));
        ck_assert_uint_eq(t->stored_dtype, (unsigned)t->dtype);
        /* the listing's shape is GGUF ne order: our shape reversed */
        ck_assert_int_eq(j->t[shape].size, t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            ck_assert_int_eq(js_int(j, shape + 1 + d), t->shape[t->n_dims - 1 - d]);
        ck_assert_int_eq(js_int(j, js_get(j, i, "n_elements")), t->n_elems);
        ck_assert_int_eq(js_int(j, js_get(j, i, "n_bytes")), (long long)t->size);
        ck_assert_int_eq(js_int(j, js_get(j, i, "offset")), (long long)t->rel_off);
        ck_assert_uint_eq(t->off, m->data_off + t->rel_off);
        ck_assert_ptr_eq(t->data, m->files[0].data + t->off);
        tu_sha_hex(t->data, t->size, got);
        ck_assert_uint_eq(h.n, 64);
        memcpy(want, h.p, 64);
        want[64] = 0;
        ck_assert_msg(strcmp(want, got) == 0, "tensor '%.*s': data hash differs",
                      (int)t->name.n, t->name.p);
        i = js_skip(j, i);
    }
}

START_TEST(test_shared_fixture)
{
    char rel[1024], path[4096], ref[4096], tmpdir[] = "/tmp/check_gguf.XXXXXX", out[4200];
    const char *base = fixture_files[_i];
    struct model m;
    struct err e = ERR_INIT;
    struct js j;
    char *text;
    size_t n, on;
    int root, v;
    uint8_t *obytes;
    char want[65], got[65];
    struct slice fh;

    snprintf(rel, sizeof rel, "%s.gguf", base);
    if (!tu_need_shared(rel))
        return;
    snprintf(path, sizeof path, "%s/%s", tu_shared_dir(), rel);
    if (strstr(base, "/vocab/"))
        snprintf(ref, sizeof ref, "%s/%s.listing.json", tu_shared_dir(), base);
    else
        snprintf(ref, sizeof ref, "%s/gguf/refs/%s.tensors.json", tu_shared_dir(), base + 5);
    text = (char *)tu_slurp(ref, &n);   /* fails the test when unreadable */
    ck_assert_int_eq(js_load(&j, text, n), 0);
    root = 0;

    ck_assert_msg(gguf_open(&m, path, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.format, MODEL_FMT_GGUF);
    ck_assert_int_eq(js_int(&j, js_get(&j, root, "file_size")), (long long)m.total_size);
    ck_assert_int_eq(js_int(&j, js_get(&j, root, "gguf_version")), m.version);
    ck_assert_int_eq(js_int(&j, js_get(&j, root, "alignment")), (long long)m.alignment);
    v = js_get(&j, root, "data_offset");
    if (!js_is(&j, v, "null"))
        ck_assert_int_eq(js_int(&j, v), (long long)m.data_off);
    ck_assert_int_eq(js_int(&j, js_get(&j, root, "n_kv")), (long long)m.n_kv);
    ck_assert_int_eq(js_int(&j, js_get(&j, root, "n_tensors")), (long long)m.n_tensors);
    ck_assert_int_eq(m.gguf_canonical, 1);
    ck_assert_uint_eq(m.n_notes, 0);
    check_metadata(&m, &j, js_get(&j, root, "metadata"));
    check_tensors(&m, &j, js_get(&j, root, "tensors"));

    /* canonical llama.cpp files: writing them back gives the same bytes */
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(out, sizeof out, "%s/out.gguf", tmpdir);
    ck_assert_msg(gguf_write(&m, out, NULL, &e) == 0, "%s", e.msg);
    obytes = tu_slurp(out, &on);
    tu_sha_hex(obytes, on, got);
    fh = js_str(&j, js_get(&j, root, "file_sha256"));
    memcpy(want, fh.p, 64);
    want[64] = 0;
    ck_assert_msg(strcmp(want, got) == 0, "%s: written copy differs", base);
    free(obytes);
    unlink(out);
    ck_assert_int_eq(rmdir(tmpdir), 0);   /* no temporary file left behind */

    model_close(&m);
    free(j.t);
    free(text);
}
END_TEST

START_TEST(test_open_errors)
{
    struct model m;
    struct err e = ERR_INIT;

    ck_assert_int_eq(gguf_open(&m, "/nonexistent/x.gguf", &e), -1);
    ck_assert_int_eq(e.code, ERR_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "'/nonexistent/x.gguf'"));
    ck_assert_ptr_null(m.files);
    err_clear(&e);
    ck_assert_int_eq(gguf_open_mem(&m, NULL, 0, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "<memory>: truncated magic"));
    err_clear(&e);
    ck_assert_int_eq(model_open_mem(&m, example192, 100, "short.gguf", &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
}
END_TEST

/* model_open detects GGUF by content and reaches the same reader. */
START_TEST(test_model_open_detects)
{
    char path[4096];
    struct model m;
    struct err e = ERR_INIT;

    if (!tu_need_shared("gguf/tiny-llama-small-Q4_K_M.gguf"))
        return;
    snprintf(path, sizeof path, "%s/gguf/tiny-llama-small-Q4_K_M.gguf", tu_shared_dir());
    ck_assert_msg(model_open(&m, path, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.format, MODEL_FMT_GGUF);
    ck_assert_uint_eq(m.n_tensors, 21);
    model_close(&m);
}
END_TEST

/* ------------------------------------------------------------------ hand-built files */

enum {
    P_MAGIC, P_VERSION, P_NT, P_NKV,
    P_KV0, P_KV0_TYPE, P_KV0_VAL, P_KV1, P_KV1_TYPE, P_KV1_VAL,
    P_KV2, P_KV2_TYPE, P_KV2_ELEM, P_KV2_COUNT,
    P_T0, P_T0_NDIMS, P_T0_NE, P_T0_TYPE, P_T0_OFF,
    P_T1, P_T1_NDIMS, P_T1_NE, P_T1_TYPE, P_T1_OFF,
    P_HDR_END, P_DATA, P_COUNT
};

struct tspec {
    const char *name;
    uint32_t    n_dims;
    uint64_t    ne[5];
    uint32_t    type;
    uint64_t    off;
};

struct spec {
    char         magic[5];
    uint32_t     version;
    uint64_t     n_tensors, n_kv;
    const char  *key0, *key2;
    uint32_t     type0;           /* value type of key0 (a STRING) */
    uint64_t     str0_len;        /* length field of its value */
    uint32_t     align_type;      /* general.alignment */
    uint64_t     align_val;
    uint32_t     arr_elem;        /* key2: an array */
    uint64_t     arr_n;
    int          nest;            /* wrap key2's array in this many arrays */
    struct tspec t[2];
    uint64_t     data_len;
};

/*
 * The base file: 3 KVs (general.architecture = "llama", general.alignment = 32,
 * test.arr = [1, 2, 3, 4] UINT32), tensors t0 F32 ne [8, 4] at 0 (128 bytes) and
 * t1 F32 ne [16] at 128 (64 bytes); the data ends exactly at the end of t1.
 */
static void spec_base(struct spec *s)
{
    memset(s, 0, sizeof *s);
    memcpy(s->magic, "GGUF", 5);
    s->version = 3;
    s->n_tensors = 2;
    s->n_kv = 3;
    s->key0 = "general.architecture";
    s->key2 = "test.arr";
    s->type0 = MV_STR;
    s->str0_len = 5;
    s->align_type = MV_U32;
    s->align_val = 32;
    s->arr_elem = MV_U32;
    s->arr_n = 4;
    s->t[0] = (struct tspec){ "t0", 2, { 8, 4 }, DT_F32, 0 };
    s->t[1] = (struct tspec){ "t1", 1, { 16 }, DT_F32, 128 };
    s->data_len = 192;
}

static void spec_build(const struct spec *s, struct fx_buf *b, uint64_t *pos)
{
    size_t pad = s->align_val && !(s->align_val & (s->align_val - 1)) && s->align_val <= 4096
                 ? (size_t)s->align_val : 32;

    memset(b, 0, sizeof *b);
    b->v1 = s->version == 1;
    pos[P_MAGIC] = b->n;   fxb_put(b, s->magic, 4);
    pos[P_VERSION] = b->n; fxb_u32(b, s->version);
    pos[P_NT] = b->n;      fxb_cnt(b, s->n_tensors);
    pos[P_NKV] = b->n;     fxb_cnt(b, s->n_kv);

    pos[P_KV0] = b->n;      fxb_str(b, s->key0);
    pos[P_KV0_TYPE] = b->n; fxb_u32(b, s->type0);
    pos[P_KV0_VAL] = b->n;  fxb_cnt(b, s->str0_len); fxb_put(b, "llama", 5);

    pos[P_KV1] = b->n;      fxb_str(b, "general.alignment");
    pos[P_KV1_TYPE] = b->n; fxb_u32(b, s->align_type);
    pos[P_KV1_VAL] = b->n;
    if (model_vtype_size(s->align_type) == 8)
        fxb_u64(b, s->align_val);
    else
        fxb_u32(b, (uint32_t)s->align_val);

    pos[P_KV2] = b->n;      fxb_str(b, s->key2);
    pos[P_KV2_TYPE] = b->n; fxb_u32(b, MV_ARR);
    pos[P_KV2_ELEM] = b->n;
    for (int d = 0; d < s->nest; d++) {
        fxb_u32(b, MV_ARR);
        fxb_cnt(b, 1);
    }
    fxb_u32(b, s->arr_elem);
    pos[P_KV2_COUNT] = b->n;
    fxb_cnt(b, s->arr_n);
    for (uint32_t i = 1; i <= 4; i++)
        fxb_u32(b, i);

    for (int k = 0; k < 2; k++) {
        const struct tspec *t = &s->t[k];
        int base = k ? P_T1 : P_T0;
        pos[base] = b->n;     fxb_str(b, t->name);
        pos[base + 1] = b->n; fxb_u32(b, t->n_dims);
        pos[base + 2] = b->n;
        for (uint32_t d = 0; d < t->n_dims && d < 5; d++)
            fxb_cnt(b, t->ne[d]);
        pos[base + 3] = b->n; fxb_u32(b, t->type);
        pos[base + 4] = b->n; fxb_u64(b, t->off);
    }
    pos[P_HDR_END] = b->n;
    fxb_pad(b, pad);
    pos[P_DATA] = b->n;
    for (uint64_t i = 0; i < s->data_len; i++)
        fxb_u8(b, (uint8_t)(i * 7 + 1));
    ck_assert(!b->oom);
}

/* Open a private, exact-size copy (so ASan sees any read past the end).  On success
 * the model is closed again and left zeroed: callers only need the verdict. */
static int open_copy(struct model *m, const uint8_t *p, size_t n, struct err *e)
{
    uint8_t *q = malloc(n ? n : 1);
    int rc;

    ck_assert_ptr_nonnull(q);
    if (n)
        memcpy(q, p, n);
    rc = gguf_open_mem(m, q, n, "x.gguf", e);
    if (rc == 0)
        model_close(m);
    free(q);
    return rc;
}

/* ------------------------------------------------------------------ malformed-input table */

#define MUT(fn, body) static void fn(struct spec *s) { body; }
MUT(m_magic,       memcpy(s->magic, "GGUX", 5))
MUT(m_version0,    s->version = 0)
MUT(m_version4,    s->version = 4)
MUT(m_bigendian,   s->version = 0x03000000)
MUT(m_kv_huge,     s->n_kv = 1ull << 60)
MUT(m_kv_max,      s->n_kv = UINT64_MAX)
MUT(m_nt_huge,     s->n_tensors = 1ull << 60)
MUT(m_nt_max,      s->n_tensors = UINT64_MAX)
MUT(m_kv_more,     s->n_kv = 9)
MUT(m_key_empty,   s->key0 = "")
MUT(m_key_dup,     s->key2 = "general.architecture")
MUT(m_align0,      s->align_val = 0)
MUT(m_align3,      s->align_val = 3)
MUT(m_align_i32,   s->align_type = MV_I32)
MUT(m_align_u64,   s->align_type = MV_U64)
MUT(m_vtype13,     s->type0 = 13)
MUT(m_vtype_max,   s->type0 = UINT32_MAX)
MUT(m_elem99,      s->arr_elem = 99)
MUT(m_arr_huge,    s->arr_n = 1ull << 62)
MUT(m_arr_ovf,     s->arr_n = UINT64_MAX / 2)
MUT(m_str_past,    s->str0_len = 1000000)
MUT(m_str_cap,     s->str0_len = (1ull << 30) + 1)
MUT(m_nest_deep,   s->nest = 40)
MUT(m_type99,      s->t[0].type = 99)
MUT(m_type4,       s->t[0].type = 4)
MUT(m_type36,      s->t[0].type = 36)
MUT(m_ndims5,      s->t[0].n_dims = 5; s->t[0].ne[2] = s->t[0].ne[3] = s->t[0].ne[4] = 1)
MUT(m_ndims_max,   s->t[0].n_dims = UINT32_MAX)
MUT(m_neg_dim,     s->t[0].ne[1] = 1ull << 63)
MUT(m_dims_ovf,    s->t[0].n_dims = 3; s->t[0].ne[0] = s->t[0].ne[1] = s->t[0].ne[2] = 1ull << 32)
MUT(m_dims_absurd, s->t[0].ne[0] = s->t[0].ne[1] = 1ull << 20)
MUT(m_row_blocks,  s->t[0].type = DT_Q4_0; s->t[0].ne[0] = 33)
MUT(m_misaligned,  s->t[1].off = 130)
MUT(m_misal16,     s->t[1].off = 144)
MUT(m_off_past,    s->t[1].off = 1ull << 40)
MUT(m_off_ovf,     s->t[1].off = UINT64_MAX - 31)
MUT(m_overlap,     s->t[1].off = 64)
MUT(m_overlap0,    s->t[1].off = 0)
MUT(m_tdup,        s->t[1].name = "t0")
MUT(m_tname_empty, s->t[1].name = "")
MUT(m_data_short,  s->data_len = 100)
MUT(m_data_none,   s->data_len = 0)
MUT(m_v1_u64,      s->version = 1; s->type0 = MV_U64)
MUT(m_v1_kv_huge,  s->version = 1; s->n_kv = UINT32_MAX)
MUT(m_v1_dup,      s->version = 1; s->t[1].name = "t0")
MUT(m_v1_past,     s->version = 1; s->t[1].off = 4096)

/* byte patches applied after building */
static void p_key_len(struct fx_buf *b, const uint64_t *pos) { put_le64(b->p + pos[P_KV0], 70000); }
static void p_tname_len(struct fx_buf *b, const uint64_t *pos) { put_le64(b->p + pos[P_T0], 1ull << 40); }

struct bad_row {
    const char    *name;
    void         (*mut)(struct spec *);
    void         (*patch)(struct fx_buf *, const uint64_t *);
    enum err_code  code;
    const char    *msg;
    int            pos;       /* expected e.off = pos[this] + delta */
    int64_t        delta;
};

static const struct bad_row bad_rows[] = {
    { "bad magic",           m_magic,       NULL, ERR_FORMAT, "not a GGUF file", P_MAGIC, 0 },
    { "version 0",           m_version0,    NULL, ERR_FORMAT, "invalid GGUF version 0", P_VERSION, 0 },
    { "version 4",           m_version4,    NULL, ERR_UNSUPPORTED, "GGUF version 4 is not supported", P_VERSION, 0 },
    { "big-endian",          m_bigendian,   NULL, ERR_UNSUPPORTED, "big-endian GGUF is not supported", P_VERSION, 0 },
    { "kv count huge",       m_kv_huge,     NULL, ERR_FORMAT, "metadata key count 1152921504606846976 too large", P_NKV, 0 },
    { "kv count overflow",   m_kv_max,      NULL, ERR_FORMAT, "metadata key count", P_NKV, 0 },
    { "tensor count huge",   m_nt_huge,     NULL, ERR_FORMAT, "tensor count 1152921504606846976 too large", P_NT, 0 },
    { "tensor count ovf",    m_nt_max,      NULL, ERR_FORMAT, "tensor count", P_NT, 0 },
    { "kv count too many",   m_kv_more,     NULL, ERR_FORMAT, "key 4 length", P_T0, 16 },
    { "empty key",           m_key_empty,   NULL, ERR_FORMAT, "key 0 is empty", P_KV0, 0 },
    { "duplicate key",       m_key_dup,     NULL, ERR_FORMAT, "duplicate key 'general.architecture'", P_KV2, 0 },
    { "alignment 0",         m_align0,      NULL, ERR_FORMAT, "'general.alignment': 0 is not a power of two", P_KV1, 0 },
    { "alignment 3",         m_align3,      NULL, ERR_FORMAT, "'general.alignment': 3 is not a power of two", P_KV1, 0 },
    { "alignment INT32",     m_align_i32,   NULL, ERR_FORMAT, "'general.alignment': type INT32, expected UINT32", P_KV1, 0 },
    { "alignment UINT64",    m_align_u64,   NULL, ERR_FORMAT, "type UINT64, expected UINT32", P_KV1, 0 },
    { "value type 13",       m_vtype13,     NULL, ERR_FORMAT, "key 'general.architecture': unknown value type 13", P_KV0_TYPE, 0 },
    { "value type max",      m_vtype_max,   NULL, ERR_FORMAT, "unknown value type 4294967295", P_KV0_TYPE, 0 },
    { "array elem type 99",  m_elem99,      NULL, ERR_FORMAT, "key 'test.arr': unknown array element type 99", P_KV2_ELEM, 0 },
    { "array count huge",    m_arr_huge,    NULL, ERR_FORMAT, "array of 4611686018427387904 UINT32 does not fit", P_KV2_COUNT, 0 },
    { "array count ovf",     m_arr_ovf,     NULL, ERR_FORMAT, "does not fit", P_KV2_COUNT, 0 },
    { "string past end",     m_str_past,    NULL, ERR_FORMAT, "truncated value of key 'general.architecture'", P_KV0_VAL, 8 },
    { "string over cap",     m_str_cap,     NULL, ERR_FORMAT, "length 1073741825 over the limit", P_KV0_VAL, 0 },
    { "key over cap",        NULL,          p_key_len, ERR_FORMAT, "key 0 length 70000 over the limit 65535", P_KV0, 0 },
    { "nesting too deep",    m_nest_deep,   NULL, ERR_LIMIT, "nested deeper than 16", P_KV2_ELEM, 15 * 12 },
    { "tensor type 99",      m_type99,      NULL, ERR_UNSUPPORTED, "tensor 't0': unknown ggml type 99", P_T0_TYPE, 0 },
    { "tensor type 4",       m_type4,       NULL, ERR_FORMAT, "tensor 't0': removed ggml type 4", P_T0_TYPE, 0 },
    { "tensor type 36",      m_type36,      NULL, ERR_FORMAT, "removed ggml type 36", P_T0_TYPE, 0 },
    { "n_dims 5",            m_ndims5,      NULL, ERR_FORMAT, "tensor 't0': n_dims 5 over the maximum 4", P_T0_NDIMS, 0 },
    { "n_dims max",          m_ndims_max,   NULL, ERR_FORMAT, "n_dims 4294967295 over the maximum 4", P_T0_NDIMS, 0 },
    { "negative dim",        m_neg_dim,     NULL, ERR_FORMAT, "ne[1] = -9223372036854775808 is negative", P_T0_NE, 8 },
    { "dims overflow",       m_dims_ovf,    NULL, ERR_FORMAT, "element count overflows at ne[1]", P_T0_NE, 8 },
    { "absurd dims",         m_dims_absurd, NULL, ERR_FORMAT, "tensor 't0': data [", P_T0_OFF, 0 },
    { "row not blocks",      m_row_blocks,  NULL, ERR_FORMAT, "row of 33 elements is not whole Q4_0 blocks of 32", P_T0_TYPE, 0 },
    { "name past end",       NULL,          p_tname_len, ERR_FORMAT, "name of tensor 0 length 1099511627776 over the limit", P_T0, 0 },
    { "misaligned offset",   m_misaligned,  NULL, ERR_FORMAT, "data offset 130 is not a multiple of the alignment 32", P_T1_OFF, 0 },
    { "misaligned 16",       m_misal16,     NULL, ERR_FORMAT, "not a multiple of the alignment", P_T1_OFF, 0 },
    { "offset past end",     m_off_past,    NULL, ERR_FORMAT, "tensor 't1': data [", P_T1_OFF, 0 },
    { "offset overflow",     m_off_ovf,     NULL, ERR_FORMAT, "overflows", P_T1_OFF, 0 },
    { "overlap",             m_overlap,     NULL, ERR_FORMAT, "tensor 't1' overlaps tensor 't0'", P_DATA, 64 },
    { "overlap same start",  m_overlap0,    NULL, ERR_FORMAT, "overlaps tensor", P_DATA, 0 },
    { "duplicate tensor",    m_tdup,        NULL, ERR_FORMAT, "duplicate tensor name 't0'", P_T1, 0 },
    { "empty tensor name",   m_tname_empty, NULL, ERR_FORMAT, "tensor 1 has an empty name", P_T1, 0 },
    { "data truncated",      m_data_short,  NULL, ERR_FORMAT, "past end of file", P_T0_OFF, 0 },
    { "no data at all",      m_data_none,   NULL, ERR_FORMAT, "past end of file", P_T0_OFF, 0 },
    { "v1 UINT64 value",     m_v1_u64,      NULL, ERR_FORMAT, "unknown value type 10 (GGUF v1 has types 0-9 only)", P_KV0_TYPE, 0 },
    { "v1 kv count huge",    m_v1_kv_huge,  NULL, ERR_FORMAT, "metadata key count 4294967295", P_NKV, 0 },
    { "v1 duplicate tensor", m_v1_dup,      NULL, ERR_FORMAT, "duplicate tensor name 't0'", P_T1, 0 },
    { "v1 offset past end",  m_v1_past,     NULL, ERR_FORMAT, "past end of file", P_T1_OFF, 0 },
};
#define N_BAD ((int)(sizeof bad_rows / sizeof bad_rows[0]))

START_TEST(test_malformed)
{
    const struct bad_row *r = &bad_rows[_i];
    struct spec s;
    struct fx_buf b;
    uint64_t pos[P_COUNT];
    struct model m;
    struct err e = ERR_INIT;

    spec_base(&s);
    if (r->mut)
        r->mut(&s);
    spec_build(&s, &b, pos);
    if (r->patch)
        r->patch(&b, pos);
    memset(&m, 0x5a, sizeof m);
    ck_assert_msg(open_copy(&m, b.p, b.n, &e) == -1, "%s: accepted", r->name);
    ck_assert_msg(e.code == r->code, "%s: code %s, want %s (%s)", r->name, err_code_name(e.code),
                  err_code_name(r->code), e.msg);
    ck_assert_msg(strstr(e.msg, r->msg) != NULL, "%s: message '%s' lacks '%s'", r->name, e.msg,
                  r->msg);
    ck_assert_msg(strncmp(e.msg, "x.gguf: ", 8) == 0, "%s: message '%s' lacks the file name",
                  r->name, e.msg);
    ck_assert_msg(e.off == pos[r->pos] + (uint64_t)r->delta, "%s: offset %llu, want %llu (%s)",
                  r->name, (unsigned long long)e.off,
                  (unsigned long long)(pos[r->pos] + (uint64_t)r->delta), e.msg);
    /* a failed open leaves the model zeroed */
    ck_assert_ptr_null(m.kv);
    ck_assert_ptr_null(m.tensors);
    ck_assert_ptr_null(m.files);
    ck_assert_uint_eq(m.n_kv, 0);
    fxb_release(&b);
}
END_TEST

/* ------------------------------------------------------------------ accepted inputs */

START_TEST(test_base_file)
{
    struct spec s;
    struct fx_buf b;
    uint64_t pos[P_COUNT];
    struct model m;
    struct err e = ERR_INIT;
    const struct model_tensor *t0, *t1;
    const struct model_kv *kv;

    for (int v = 1; v <= 3; v++) {
        spec_base(&s);
        s.version = (uint32_t)v;
        spec_build(&s, &b, pos);
        ck_assert_msg(gguf_open_mem(&m, b.p, b.n, "x.gguf", &e) == 0, "v%d: %s", v, e.msg);
        ck_assert_int_eq(m.version, v);
        ck_assert_uint_eq(m.alignment, 32);
        ck_assert_uint_eq(m.header_size, pos[P_HDR_END]);
        ck_assert_uint_eq(m.data_off, pos[P_DATA]);
        ck_assert_int_eq(m.gguf_canonical, 1);
        ck_assert_uint_eq(m.n_notes, 0);
        ck_assert_uint_eq(m.n_kv, 3);
        ck_assert_uint_eq(m.kv[0].off, pos[P_KV0]);
        ck_assert_uint_eq(m.kv[2].off, pos[P_KV2]);
        kv = model_kv_find(&m, "test.arr");
        ck_assert_ptr_nonnull(kv);
        ck_assert_int_eq(kv->val.type, MV_ARR);
        ck_assert_int_eq(kv->val.v.arr.elem, MV_U32);
        ck_assert_uint_eq(kv->val.v.arr.n, 4);
        ck_assert_uint_eq(model_arr_get_u64(&kv->val, 3), 4);
        ck_assert_ptr_eq(kv->val.v.arr.raw, b.p + pos[P_KV2_COUNT] + (v == 1 ? 4 : 8));
        t0 = model_tensor_find(&m, "t0");
        t1 = model_tensor_find(&m, "t1");
        ck_assert_ptr_nonnull(t0);
        ck_assert_ptr_nonnull(t1);
        /* ne [8, 4] becomes shape [4, 8] */
        ck_assert_int_eq(t0->n_dims, 2);
        ck_assert_int_eq(t0->shape[0], 4);
        ck_assert_int_eq(t0->shape[1], 8);
        ck_assert_int_eq(t0->shape[2], 1);
        ck_assert_int_eq(t0->n_elems, 32);
        ck_assert_uint_eq(t0->size, 128);
        ck_assert_uint_eq(t1->rel_off, 128);
        ck_assert_uint_eq(t1->off, pos[P_DATA] + 128);
        ck_assert_ptr_eq(t1->data, b.p + pos[P_DATA] + 128);
        ck_assert_uint_eq(t1->stored_dtype, 0);
        model_close(&m);
        fxb_release(&b);
    }
}
END_TEST

static void open_spec_ok(struct spec *s, struct model *m, struct fx_buf *b)
{
    uint64_t pos[P_COUNT];
    struct err e = ERR_INIT;

    spec_build(s, b, pos);
    ck_assert_msg(gguf_open_mem(m, b->p, b->n, "x.gguf", &e) == 0, "%s", e.msg);
}

START_TEST(test_non_canonical)
{
    struct spec s;
    struct fx_buf b;
    struct model m;

    spec_base(&s);
    s.t[0].off = 64;      /* t1 [0, 64) first, then t0 [64, 192): valid, not llama.cpp's order */
    s.t[1].off = 0;
    open_spec_ok(&s, &m, &b);
    ck_assert_int_eq(m.gguf_canonical, 0);
    ck_assert(tu_has_note(&m, "non-canonical layout"));
    model_close(&m);
    fxb_release(&b);

    spec_base(&s);
    s.t[1].off = 192;     /* a gap */
    s.data_len = 256;
    open_spec_ok(&s, &m, &b);
    ck_assert_int_eq(m.gguf_canonical, 0);
    model_close(&m);
    fxb_release(&b);
}
END_TEST

START_TEST(test_short_final_padding)
{
    struct spec s;
    struct fx_buf b;
    struct model m;

    spec_base(&s);
    s.t[1].ne[0] = 12;    /* 48 bytes: canonical file has 16 padding bytes after it */
    s.data_len = 176;
    open_spec_ok(&s, &m, &b);
    ck_assert_int_eq(m.gguf_canonical, 1);
    ck_assert(tu_has_note(&m, "final padding truncated"));
    model_close(&m);
    fxb_release(&b);

    spec_base(&s);
    s.data_len = 200;     /* trailing bytes */
    open_spec_ok(&s, &m, &b);
    ck_assert(tu_has_note(&m, "8 trailing bytes"));
    model_close(&m);
    fxb_release(&b);
}
END_TEST

START_TEST(test_odd_accepted)
{
    struct spec s;
    struct fx_buf b;
    struct model m;
    static const char long_name[] =
        "a.very.long.tensor.name.that.is.longer.than.the.sixty.three.bytes.ggml.allows.weight";
    const struct model_kv *kv;

    spec_base(&s);
    s.t[1].name = long_name;
    open_spec_ok(&s, &m, &b);
    ck_assert(tu_has_note(&m, "llama.cpp accepts at most 63"));
    ck_assert_ptr_nonnull(model_tensor_find(&m, long_name));
    model_close(&m);
    fxb_release(&b);

    spec_base(&s);        /* n_dims 0: a scalar of one element */
    s.t[1].n_dims = 0;
    open_spec_ok(&s, &m, &b);
    ck_assert_int_eq(m.tensors[1].n_dims, 0);
    ck_assert_int_eq(m.tensors[1].n_elems, 1);
    ck_assert_uint_eq(m.tensors[1].size, 4);
    model_close(&m);
    fxb_release(&b);

    spec_base(&s);        /* nested arrays: [[[1, 2, 3, 4]]] */
    s.nest = 2;
    open_spec_ok(&s, &m, &b);
    kv = model_kv_find(&m, "test.arr");
    ck_assert_int_eq(kv->val.v.arr.elem, MV_ARR);
    ck_assert_uint_eq(kv->val.v.arr.n, 1);
    ck_assert_int_eq(kv->val.v.arr.items[0].v.arr.elem, MV_ARR);
    ck_assert_int_eq(kv->val.v.arr.items[0].v.arr.items[0].v.arr.elem, MV_U32);
    ck_assert_uint_eq(model_arr_get_u64(&kv->val.v.arr.items[0].v.arr.items[0], 2), 3);
    model_close(&m);
    fxb_release(&b);

    spec_base(&s);        /* alignment 64 (data padded to 64) */
    s.align_val = 64;
    s.t[1].off = 128;
    open_spec_ok(&s, &m, &b);
    ck_assert_uint_eq(m.alignment, 64);
    ck_assert_uint_eq(m.data_off % 64, 0);
    model_close(&m);
    fxb_release(&b);
}
END_TEST

START_TEST(test_bool_byte)
{
    struct fx_buf b;
    struct model m;
    struct err e = ERR_INIT;
    const struct model_kv *kv;

    memset(&b, 0, sizeof b);
    fxb_put(&b, "GGUF", 4);
    fxb_u32(&b, 3);
    fxb_u64(&b, 0);
    fxb_u64(&b, 2);
    fxb_str(&b, "test.bool");
    fxb_u32(&b, MV_BOOL);
    fxb_u8(&b, 2);
    fxb_str(&b, "test.bools");
    fxb_u32(&b, MV_ARR);
    fxb_u32(&b, MV_BOOL);
    fxb_u64(&b, 3);
    fxb_u8(&b, 0);
    fxb_u8(&b, 1);
    fxb_u8(&b, 0xff);
    ck_assert_msg(gguf_open_mem(&m, b.p, b.n, "x.gguf", &e) == 0, "%s", e.msg);
    kv = model_kv_find(&m, "test.bool");
    ck_assert_uint_eq(kv->val.v.u, 1);
    ck_assert(tu_has_note(&m, "key 'test.bool': BOOL byte 0x02 read as true at offset 45"));
    ck_assert(tu_has_note(&m, "key 'test.bools': BOOL element 2 is 0xff"));
    ck_assert_uint_eq(m.n_tensors, 0);
    ck_assert_uint_eq(m.data_off, m.header_size);   /* no data section */
    model_close(&m);
    fxb_release(&b);
}
END_TEST

/* Control bytes in names are escaped in messages. */
START_TEST(test_message_escapes)
{
    struct spec s;
    struct fx_buf b;
    uint64_t pos[P_COUNT];
    struct model m;
    struct err e = ERR_INIT;

    spec_base(&s);
    s.t[0].name = "\x1b[31mred";
    s.t[0].type = 99;
    spec_build(&s, &b, pos);
    ck_assert_int_eq(gguf_open_mem(&m, b.p, b.n, "x.gguf", &e), -1);
    ck_assert_ptr_null(strchr(e.msg, 0x1b));
    ck_assert_ptr_nonnull(strstr(e.msg, "tensor '\\x1b[31mred'"));
    fxb_release(&b);
}
END_TEST

START_TEST(test_quote)
{
    char buf[GGUF_QUOTE_LEN], name[300];

    ck_assert_str_eq(gguf__quote(SLICE_LIT("blk.0.attn_q.weight"), buf, sizeof buf),
                     "blk.0.attn_q.weight");
    ck_assert_str_eq(gguf__quote(SLICE_LIT("a'b\\c\n"), buf, sizeof buf), "a\\x27b\\x5cc\\x0a");
    memset(name, 'x', sizeof name);
    gguf__quote((struct slice){ name, GGUF_QUOTE_LEN - 1 }, buf, sizeof buf);
    ck_assert_uint_eq(strlen(buf), GGUF_QUOTE_LEN - 1);     /* fits exactly: not cut */
    gguf__quote((struct slice){ name, sizeof name }, buf, sizeof buf);
    ck_assert_uint_eq(strlen(buf), GGUF_QUOTE_LEN - 1);
    ck_assert_str_eq(buf + strlen(buf) - 3, "...");
    name[200] = 1;
    gguf__quote((struct slice){ name + 150, 51 }, buf, sizeof buf);
    ck_assert_str_eq(buf + 50, "\\x01");
}
END_TEST

START_TEST(test_small_files)
{
    static int (*const fns[])(struct model *, struct err *) = {
        fx_small_types, fx_small_values, fx_small_notensors, fx_example192, fx_small_v2, fx_demo,
    };
    for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++) {
        struct model a, r;
        struct err e = ERR_INIT;
        size_t n;
        uint8_t *p;

        ck_assert_msg(fns[k](&a, &e) == 0, "%s", e.msg);
        p = write_mem(&a, NULL, &n, &e);
        ck_assert_msg(p != NULL, "%s", e.msg);
        ck_assert_msg(gguf_open_mem(&r, p, n, a.path, &e) == 0, "%s: %s", a.path, e.msg);
        ck_assert_int_eq(r.gguf_canonical, 1);
        ck_assert_uint_eq(r.n_notes, 0);
        assert_models_equal(&a, &r);
        model_close(&r);
        model_close(&a);
        free(p);
    }
}
END_TEST

START_TEST(test_small_v1)
{
    struct fx_buf b;
    struct model m, r;
    struct err e = ERR_INIT;
    const struct model_kv *kv;
    const struct model_tensor *t;
    size_t n;
    uint8_t *p;

    ck_assert_int_eq(fx_small_v1(&b), 0);
    ck_assert_msg(gguf_open_mem(&m, b.p, b.n, "small-v1.gguf", &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.version, 1);
    ck_assert_uint_eq(m.n_kv, 6);
    ck_assert_uint_eq(m.n_tensors, 2);
    ck_assert_int_eq(m.gguf_canonical, 1);
    kv = model_kv_find(&m, "test.strs");
    ck_assert_uint_eq(kv->val.v.arr.n, 2);
    ck_assert(slice_eq_cstr(kv->val.v.arr.strs[1], "two"));
    kv = model_kv_find(&m, "test.i32s");
    ck_assert_int_eq(model_arr_get_i64(&kv->val, 0), -1);
    ck_assert(model_kv_find(&m, "test.f32")->val.v.f == 0.5);
    t = model_tensor_find(&m, "w");
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 8);
    t = model_tensor_find(&m, "h");
    ck_assert_int_eq(t->dtype, DT_F16);
    ck_assert_uint_eq(t->rel_off, 64);

    /* v1 in, v3 out: same content */
    p = write_mem(&m, NULL, &n, &e);
    ck_assert_msg(p != NULL, "%s", e.msg);
    ck_assert_msg(gguf_open_mem(&r, p, n, "v3.gguf", &e) == 0, "%s", e.msg);
    ck_assert_int_eq(r.version, 3);
    assert_models_equal(&m, &r);
    model_close(&r);
    model_close(&m);
    free(p);
    fxb_release(&b);
}
END_TEST

START_TEST(test_demo_model)
{
    struct model a;
    struct err e = ERR_INIT;
    uint64_t v;
    double f;
    const struct model_tensor *t;
    const struct model_kv *kv;

    ck_assert_msg(fx_demo(&a, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(a.n_tensors, 3 + 9 * FX_DEMO_LAYERS);
    ck_assert(model_kv_get_u64(&a, "llama.block_count", &v) == 0 && v == 2);
    ck_assert_int_eq(model_kv_find(&a, "llama.embedding_length")->val.type, MV_U32);
    ck_assert_int_eq(model_kv_find(&a, "llama.rope.freq_base")->val.type, MV_F32);
    ck_assert(model_kv_get_f64(&a, "llama.attention.layer_norm_rms_epsilon", &f) == 0 &&
              f == (double)1e-5f);
    kv = model_kv_find(&a, "tokenizer.ggml.tokens");
    ck_assert_uint_eq(kv->val.v.arr.n, FX_DEMO_VOCAB);
    ck_assert(slice_eq_cstr(kv->val.v.arr.strs[3 + 0x41], "<0x41>"));
    ck_assert_int_eq(model_kv_find(&a, "tokenizer.ggml.add_bos_token")->val.type, MV_BOOL);
    t = model_tensor_find(&a, "blk.1.attn_k.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->shape[0], FX_DEMO_KV * FX_DEMO_HD);
    ck_assert_int_eq(t->shape[1], FX_DEMO_EMBD);
    t = model_tensor_find(&a, "output_norm.weight");
    for (int i = 0; i < FX_DEMO_EMBD; i++) {
        float x = lef32(t->data + 4 * i);
        ck_assert(x > 0.89f && x < 1.11f);
    }
    model_close(&a);
}
END_TEST

/* ------------------------------------------------------------------ robustness loops */

static uint8_t *robust_input(int k, size_t *n, size_t *need, size_t *hdr)
{
    struct model m;
    struct err e = ERR_INIT;
    uint8_t *p;

    if (k == 0) {
        struct spec s;
        struct fx_buf b;
        uint64_t pos[P_COUNT];
        spec_base(&s);
        spec_build(&s, &b, pos);
        p = b.p;
        *n = b.n;
    } else if (k == 1) {
        struct fx_buf b;
        ck_assert_int_eq(fx_small_v1(&b), 0);
        p = b.p;
        *n = b.n;
    } else {
        static int (*const fns[])(struct model *, struct err *) = {
            fx_small_values, fx_small_notensors, fx_small_types, fx_demo,
        };
        p = build_mem(fns[k - 2], n);
    }
    /* the shortest accepted length: the end of the furthest tensor, or the header */
    ck_assert_msg(gguf_open_mem(&m, p, *n, "x.gguf", &e) == 0, "%s", e.msg);
    *need = (size_t)m.header_size;
    *hdr = (size_t)m.data_off;
    for (uint64_t i = 0; i < m.n_tensors; i++)
        if (m.tensors[i].off + m.tensors[i].size > *need)
            *need = (size_t)(m.tensors[i].off + m.tensors[i].size);
    model_close(&m);
    return p;
}
#define N_ROBUST 6

START_TEST(test_truncate_everywhere)
{
    size_t n, need, hdr;
    uint8_t *p = robust_input(_i, &n, &need, &hdr);

    for (size_t len = 0; len < n; len++) {
        struct model m;
        struct err e = ERR_INIT;
        int rc;

        if (len > hdr + 4096 && len + 64 < need && len % 2999)
            continue;     /* big files: every length through the header, then sampled */
        rc = open_copy(&m, p, len, &e);
        if (len < need) {
            ck_assert_msg(rc == -1, "input %d: prefix of %zu bytes accepted", _i, len);
            ck_assert_msg(e.code == ERR_FORMAT, "input %d, %zu bytes: %s (%s)", _i, len,
                          err_code_name(e.code), e.msg);
            ck_assert_msg(e.off <= len, "input %d, %zu bytes: offset %llu (%s)", _i, len,
                          (unsigned long long)e.off, e.msg);
        } else {
            ck_assert_msg(rc == 0, "input %d, %zu bytes (padding cut): %s", _i, len, e.msg);
            model_close(&m);
        }
    }
    free(p);
}
END_TEST

START_TEST(test_flip_header_bytes)
{
    size_t n, need, hdr;
    uint8_t *p = robust_input(_i, &n, &need, &hdr);
    uint8_t *q = malloc(n);
    size_t limit = hdr < 4096 ? hdr : 4096;
    int all = n < 1024;     /* small files: all 256 values per byte; else a few */

    ck_assert_ptr_nonnull(q);
    memcpy(q, p, n);
    for (size_t at = 0; at < limit; at++) {
        uint8_t orig = p[at];
        uint8_t few[] = { 0, 0xff, 0x7f, 0x80, (uint8_t)(orig ^ 1), (uint8_t)(orig ^ 0x80),
                          (uint8_t)(orig + 1), (uint8_t)(orig - 1), 0x20, 3 };
        int nv = all ? 256 : (int)sizeof few;
        for (int v = 0; v < nv; v++) {
            struct model m;
            struct err e = ERR_INIT;
            q[at] = all ? (uint8_t)v : few[v];
            if (gguf_open_mem(&m, q, n, "x.gguf", &e) == 0) {
                ck_assert_int_eq(e.code, ERR_OK);
                /* whatever was accepted is consistent */
                for (uint64_t i = 0; i < m.n_tensors; i++)
                    ck_assert(m.tensors[i].off + m.tensors[i].size <= n);
                model_close(&m);
            } else {
                ck_assert(e.code != ERR_OK && e.msg[0] != 0);
                ck_assert_ptr_null(m.kv);
            }
        }
        q[at] = orig;
    }
    free(q);
    free(p);
}
END_TEST

/* ------------------------------------------------------------------ writer */

/* reference/gguf-quant.md 2.8, transcribed byte by byte */
static const uint8_t example192[192] = {
    0x47, 0x47, 0x55, 0x46, 0x03, 0, 0, 0,  1, 0, 0, 0, 0, 0, 0, 0,  2, 0, 0, 0, 0, 0, 0, 0,
    0x14, 0, 0, 0, 0, 0, 0, 0, 'g', 'e', 'n', 'e', 'r', 'a', 'l', '.', 'a', 'r', 'c', 'h', 'i',
    't', 'e', 'c', 't', 'u', 'r', 'e', 8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 'l', 'l', 'a', 'm',
    'a', 0x11, 0, 0, 0, 0, 0, 0, 0, 'g', 'e', 'n', 'e', 'r', 'a', 'l', '.', 'a', 'l', 'i', 'g',
    'n', 'm', 'e', 'n', 't', 4, 0, 0, 0, 0x20, 0, 0, 0,
    1, 0, 0, 0, 0, 0, 0, 0, 'a', 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                      /* 17 pad bytes */
    0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40,
    0, 0, 0xc0, 0x40,
    0, 0, 0, 0, 0, 0, 0, 0,
};

START_TEST(test_write_example192)
{
    struct model m, r;
    struct err e = ERR_INIT;
    size_t n;
    uint8_t *p;

    ck_assert_msg(fx_example192(&m, &e) == 0, "%s", e.msg);
    p = write_mem(&m, NULL, &n, &e);
    ck_assert_msg(p != NULL, "%s", e.msg);
    ck_assert_uint_eq(n, 192);
    ck_assert_mem_eq(p, example192, 192);
    /* and the reader sees what the spec says */
    ck_assert_msg(gguf_open_mem(&r, example192, 192, "ex.gguf", &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(r.header_size, 0x8f);
    ck_assert_uint_eq(r.data_off, 0xa0);
    ck_assert_int_eq(r.tensors[0].shape[0], 2);
    ck_assert_int_eq(r.tensors[0].shape[1], 3);
    ck_assert(lef32(r.tensors[0].data + 20) == 6.0f);
    model_close(&r);
    model_close(&m);
    free(p);
}
END_TEST

/* Alignment comes from general.alignment (64 in small-values), else 32. */
START_TEST(test_write_alignment)
{
    struct model m, r;
    struct err e = ERR_INIT;
    size_t n;
    uint8_t *p;

    ck_assert(fx_small_values(&m, &e) == 0);
    p = write_mem(&m, NULL, &n, &e);
    ck_assert_msg(p != NULL, "%s", e.msg);
    ck_assert(gguf_open_mem(&r, p, n, "v.gguf", &e) == 0);
    ck_assert_uint_eq(r.alignment, 64);
    ck_assert_uint_eq(r.data_off % 64, 0);
    ck_assert_uint_eq(r.tensors[1].rel_off, 64);
    ck_assert_uint_eq(n % 64, 0);       /* the last tensor is padded too */
    ck_assert_int_eq(p[n - 1], 0);
    model_close(&r);
    free(p);
    model_close(&m);

    /* no tensors: no padding unless asked */
    ck_assert(fx_small_notensors(&m, &e) == 0);
    p = write_mem(&m, NULL, &n, &e);
    ck_assert(gguf_open_mem(&r, p, n, "n.gguf", &e) == 0);
    ck_assert_uint_eq(r.header_size, n);
    model_close(&r);
    free(p);
    {
        struct gguf_write_opts o = GGUF_WRITE_OPTS_INIT;
        size_t n2;
        o.pad_empty = 1;
        p = write_mem(&m, &o, &n2, &e);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(n2 % 32, 0);
        ck_assert_uint_ge(n2, n);
        free(p);
    }
    model_close(&m);
}
END_TEST

static int copy_reversed_twice(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                               struct err *e)
{
    const struct model_tensor *t = &m->tensors[i];
    (void)ctx;
    /* write in two pieces to exercise the buffering */
    return gguf_out_write(out, t->data, (size_t)t->size / 2, e) ||
           gguf_out_write(out, t->data + t->size / 2, (size_t)(t->size - t->size / 2), e);
}

static int short_producer(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                          struct err *e)
{
    (void)ctx;
    return gguf_out_write(out, m->tensors[i].data, 3, e);
}

START_TEST(test_write_producer)
{
    struct model m;
    struct err e = ERR_INIT;
    struct gguf_write_opts o = GGUF_WRITE_OPTS_INIT;
    size_t n1, n2;
    uint8_t *a, *b;

    ck_assert(fx_demo(&m, &e) == 0);
    a = write_mem(&m, NULL, &n1, &e);
    o.tensor_data = copy_reversed_twice;
    b = write_mem(&m, &o, &n2, &e);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(a, b, n1);
    free(a);
    free(b);

    o.tensor_data = short_producer;
    ck_assert_ptr_null(write_mem(&m, &o, &n2, &e));
    ck_assert_int_eq(e.code, ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "producer wrote 3 bytes"));
    model_close(&m);
}
END_TEST

/* Refusals name the key/tensor; gguf_write leaves neither the file nor a temp file. */
struct refusal {
    const char *name;
    void (*mut)(struct model *m, struct err *e);
    enum err_code code;
    const char *msg;
};

static void r_null(struct model *m, struct err *e) { fx_kv(m, "test.null", MV_NULL, e); }
static void r_obj(struct model *m, struct err *e) { fx_kv(m, "test.obj", MV_OBJ, e); }
static void r_mixed(struct model *m, struct err *e)
{
    struct model_val *v = fx_kv(m, "test.mixed", MV_ARR, e);
    v->v.arr.elem = MV_NULL;
}
static void r_align_type(struct model *m, struct err *e)
{
    fx_uint(m, "general.alignment", MV_U64, 32, e);
}
static void r_align_val(struct model *m, struct err *e)
{
    fx_uint(m, "general.alignment", MV_U32, 48, e);
}
static void r_range(struct model *m, struct err *e) { fx_uint(m, "test.big", MV_U8, 300, e); }
static void r_dup_key(struct model *m, struct err *e) { fx_str(m, "general.architecture", "x", e); }
static void r_empty_key(struct model *m, struct err *e) { fx_str(m, "", "x", e); }
static void r_dtype(struct model *m, struct err *e)
{
    (void)e;
    m->tensors[0].dtype = DT_BOOL;
}
static void r_dims(struct model *m, struct err *e)
{
    (void)e;
    m->tensors[0].n_dims = 5;
}
static void r_long_name(struct model *m, struct err *e)
{
    model__strdup(m, "0123456789012345678901234567890123456789012345678901234567890123", 64,
                  &m->tensors[0].name, e);
}
static void r_size(struct model *m, struct err *e)
{
    (void)e;
    m->tensors[0].size += 1;
}
static void r_dup_tensor(struct model *m, struct err *e)
{
    (void)e;
    m->tensors[1].name = m->tensors[0].name;
}

static const struct refusal refusals[] = {
    { "NULL value",        r_null,       ERR_UNSUPPORTED, "key 'test.null': a NULL value cannot be stored in GGUF" },
    { "OBJECT value",      r_obj,        ERR_UNSUPPORTED, "key 'test.obj': a OBJECT value cannot be stored" },
    { "mixed array",       r_mixed,      ERR_UNSUPPORTED, "key 'test.mixed': an array of mixed" },
    { "alignment type",    r_align_type, ERR_UNSUPPORTED, "'general.alignment': type UINT64, expected UINT32" },
    { "alignment value",   r_align_val,  ERR_UNSUPPORTED, "48 is not a power of two" },
    { "int out of range",  r_range,      ERR_INTERNAL,    "key 'test.big': value out of range for UINT8" },
    { "duplicate key",     r_dup_key,    ERR_UNSUPPORTED, "duplicate key 'general.architecture'" },
    { "empty key",         r_empty_key,  ERR_UNSUPPORTED, "is empty" },
    { "dtype without id",  r_dtype,      ERR_UNSUPPORTED, "tensor 'a': dtype BOOL has no GGUF type" },
    { "5 dims",            r_dims,       ERR_UNSUPPORTED, "tensor 'a': 5 dimensions" },
    { "long name",         r_long_name,  ERR_UNSUPPORTED, "name is 64 bytes" },
    { "size mismatch",     r_size,       ERR_INTERNAL,    "tensor 'a': size 61" },
    { "duplicate tensor",  r_dup_tensor, ERR_UNSUPPORTED, "duplicate tensor name 'a'" },
};
#define N_REFUSALS ((int)(sizeof refusals / sizeof refusals[0]))

START_TEST(test_write_refuses)
{
    const struct refusal *r = &refusals[_i];
    char dir[] = "/tmp/check_gguf.XXXXXX", path[256];
    struct model m;
    struct err e = ERR_INIT;

    ck_assert(fx_small_values(&m, &e) == 0);
    r->mut(&m, &e);
    ck_assert_msg(err_ok(&e), "%s", e.msg);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    ck_assert_int_eq(gguf_write(&m, path, NULL, &e), -1);
    ck_assert_msg(e.code == r->code, "%s: %s (%s)", r->name, err_code_name(e.code), e.msg);
    ck_assert_msg(strstr(e.msg, r->msg) != NULL, "%s: '%s' lacks '%s'", r->name, e.msg, r->msg);
    ck_assert_msg(strncmp(e.msg, path, strlen(path)) == 0, "%s: no file name in '%s'", r->name,
                  e.msg);
    ck_assert_int_eq(tu_dir_count(dir), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    model_close(&m);
}
END_TEST

/* A failure in the middle of streaming removes the temporary file. */
static int failing_producer(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                            struct err *e)
{
    (void)ctx;
    (void)m;
    (void)out;
    if (i == 1)
        return ERR(e, ERR_IO, "producer failed on purpose");
    return gguf_out_write(out, m->tensors[i].data, (size_t)m->tensors[i].size, e);
}

START_TEST(test_write_cleanup)
{
    char dir[] = "/tmp/check_gguf.XXXXXX", path[256];
    struct model m, r;
    struct err e = ERR_INIT;
    struct gguf_write_opts o = GGUF_WRITE_OPTS_INIT;

    ck_assert(fx_small_values(&m, &e) == 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    o.tensor_data = failing_producer;
    ck_assert_int_eq(gguf_write(&m, path, &o, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "on purpose"));
    ck_assert_int_eq(rmdir(dir), 0);            /* empty: temp file removed */

    /* success: replaces an existing file atomically */
    memcpy(dir, "/tmp/check_gguf.XXXXXX", sizeof dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("old", f);
        fclose(f);
    }
    err_clear(&e);
    ck_assert_msg(gguf_write(&m, path, NULL, &e) == 0, "%s", e.msg);
    ck_assert_msg(gguf_open(&r, path, &e) == 0, "%s", e.msg);
    assert_models_equal(&m, &r);
    model_close(&r);
    unlink(path);
    ck_assert_int_eq(rmdir(dir), 0);

    /* unwritable destination directory: clean error naming the path */
    err_clear(&e);
    ck_assert_int_eq(gguf_write(&m, "/nonexistent-dir/x.gguf", NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_IO);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent-dir/x.gguf"));
    model_close(&m);
}
END_TEST

/* Reading a file and writing it back reproduces it (for files we wrote canonically). */
START_TEST(test_write_back_identical)
{
    static int (*const fns[])(struct model *, struct err *) = {
        fx_small_types, fx_small_values, fx_small_notensors, fx_demo,
    };
    for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++) {
        size_t n, n2;
        uint8_t *p = build_mem(fns[k], &n), *q;
        struct model m;
        struct err e = ERR_INIT;

        ck_assert(gguf_open_mem(&m, p, n, "x.gguf", &e) == 0);
        q = write_mem(&m, NULL, &n2, &e);
        ck_assert_ptr_nonnull(q);
        ck_assert_uint_eq(n, n2);
        ck_assert_mem_eq(p, q, n);
        model_close(&m);
        free(p);
        free(q);
    }
}
END_TEST

/* ------------------------------------------------------------------ split sets */

/* Part `no` (from 0) of a split set, as llama-gguf-split writes it: the model's keys in
 * the first part only, then split.no (UINT16), split.count (UINT16), split.tensors.count
 * (INT32); its tensors are F32 [4], each filled from a seed drawn from its name.  A
 * count < 0 writes no split keys (the unsplit reference).  extra: a key of its own. */
static void write_part(const char *path, int no, int count, int total, const char *names,
                       const char *extra)
{
    static const int64_t shape[1] = { 4 };
    struct model m;
    struct err e = ERR_INIT;

    ck_assert_int_eq(fx_init(&m, path, &e), 0);
    if (no == 0) {
        fx_str(&m, "general.architecture", "llama", &e);
        fx_str(&m, "general.name", "split test", &e);
        fx_uint(&m, "llama.block_count", MV_U32, 1, &e);
    }
    if (count >= 0) {
        fx_uint(&m, "split.no", MV_U16, (uint64_t)no, &e);
        fx_uint(&m, "split.count", MV_U16, (uint64_t)count, &e);
        fx_int(&m, "split.tensors.count", MV_I32, total, &e);
    }
    if (extra)
        fx_str(&m, extra, "x", &e);
    for (const char *c = names; *c; c++) {
        char nm[2] = { *c, 0 };
        uint8_t *d = fx_tensor(&m, nm, DT_F32, 1, shape, &e);
        if (d)
            fx_fill_f32(d, 4, (uint32_t)*c, 0.0f, 1.0f);
    }
    ck_assert_msg(err_ok(&e), "build %s: %s", path, e.msg);
    ck_assert_msg(gguf_write(&m, path, NULL, &e) == 0, "write %s: %s", path, e.msg);
    model_close(&m);
}

/* "dir/m-0000N-of-0000C.gguf" in a static buffer ring (3 slots). */
static const char *part_path(const char *dir, int n, int c)
{
    static char buf[3][512];
    static int k;
    char *b = buf[k++ % 3];
    snprintf(b, sizeof buf[0], "%s/m-%05d-of-%05d.gguf", dir, n, c);
    return b;
}

static void open_fails(const char *path, const char *want)
{
    struct model m;
    struct err e = ERR_INIT;
    memset(&m, 0x5A, sizeof m);
    ck_assert_msg(model_open(&m, path, &e) != 0, "%s opened", path);
    ck_assert_int_eq(m.n_tensors, 0);
    ck_assert_msg(strstr(e.msg, want) != NULL, "want '%s' in: %s", want, e.msg);
}

START_TEST(test_split_set)
{
    char *dir = tu_tmpdir_new("check_gguf"), *whole = tu_path(dir, "whole.gguf");
    struct model m, w;
    struct err e = ERR_INIT;
    static const uint32_t want_file[4] = { 0, 1, 1, 2 };
    uint64_t sizes = 0;

    write_part(whole, 0, -1, 0, "abcd", NULL);
    write_part(part_path(dir, 1, 3), 0, 3, 4, "a", NULL);
    write_part(part_path(dir, 2, 3), 1, 3, 4, "bc", "general.extra");
    write_part(part_path(dir, 3, 3), 2, 3, 4, "d", NULL);
    ck_assert_msg(model_open(&w, whole, &e) == 0, "%s", e.msg);

    /* The first part reads the whole set as one model, equal to the unsplit file. */
    ck_assert_msg(model_open(&m, part_path(dir, 1, 3), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_files, 3);
    ck_assert_uint_eq(m.n_tensors, 4);
    for (uint64_t i = 0; i < 4; i++) {
        ck_assert(slice_eq(m.tensors[i].name, w.tensors[i].name));
        ck_assert_uint_eq(m.tensors[i].file, want_file[i]);
        ck_assert_uint_eq(m.tensors[i].size, 16);
        ck_assert_mem_eq(m.tensors[i].data, w.tensors[i].data, 16);
        ck_assert_mem_eq(m.tensors[i].data, m.files[m.tensors[i].file].data + m.tensors[i].off,
                         16);
    }
    ck_assert_uint_eq(m.n_kv, w.n_kv);   /* no split.* keys: the container is not the model */
    for (uint64_t i = 0; i < m.n_kv; i++) {
        ck_assert(slice_eq(m.kv[i].key, w.kv[i].key));
        ck_assert(val_eq(&m.kv[i].val, &w.kv[i].val));
    }
    ck_assert_ptr_null(model_kv_find(&m, "split.count"));
    for (uint32_t i = 0; i < 3; i++)
        sizes += m.files[i].size;
    ck_assert_uint_eq(m.total_size, sizes);
    ck_assert(tu_has_note(&m, "part 2 ("));   /* its extra key is ignored, said so */
    model_close(&m);

    /* A later part alone: read as it is, with a note naming the first part. */
    ck_assert_msg(model_open(&m, part_path(dir, 2, 3), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_files, 1);
    ck_assert_uint_eq(m.n_tensors, 2);
    ck_assert(tu_has_note(&m, "part 2 of 3 of a split GGUF set"));
    ck_assert(tu_has_note(&m, "-00001-of-00003.gguf"));
    ck_assert_ptr_nonnull(model_kv_find(&m, "split.no"));
    model_close(&m);
    /* gguf_open_single reads one file whatever it says. */
    ck_assert_msg(gguf_open_single(&m, part_path(dir, 1, 3), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 1);
    ck_assert_ptr_nonnull(model_kv_find(&m, "split.count"));
    model_close(&m);

    /* Broken sets fail, naming the part and what is wrong. */
    write_part(part_path(dir, 3, 3), 1, 3, 4, "d", NULL);
    open_fails(part_path(dir, 1, 3), "m-00003-of-00003.gguf: split.no is 1, but this is part 3");
    write_part(part_path(dir, 3, 3), 2, 4, 4, "d", NULL);
    open_fails(part_path(dir, 1, 3), "split.count is 4, the first part");
    write_part(part_path(dir, 3, 3), 2, 3, 5, "d", NULL);
    open_fails(part_path(dir, 1, 3), "split.tensors.count is 5, the first part");
    write_part(part_path(dir, 3, 3), 2, 3, 4, "a", NULL);
    open_fails(part_path(dir, 1, 3), "duplicate tensor name 'a'");
    write_part(part_path(dir, 2, 3), 1, 3, 5, "bc", NULL);
    write_part(part_path(dir, 1, 3), 0, 3, 5, "a", NULL);
    write_part(part_path(dir, 3, 3), 2, 3, 5, "d", NULL);
    open_fails(part_path(dir, 1, 3), "split.tensors.count is 5, but the 3 parts hold 4 tensors");
    ck_assert_int_eq(unlink(part_path(dir, 3, 3)), 0);
    open_fails(part_path(dir, 1, 3), "part 3 of 3 of the split set: cannot open");
    open_fails(part_path(dir, 1, 3), "m-00003-of-00003.gguf");
    write_part(part_path(dir, 3, 3), 2, -1, 0, "d", NULL);   /* no split keys at all */
    open_fails(part_path(dir, 1, 3), "has no 'split.no' key");
    {   /* the first part renamed: the others cannot be found */
        char *x = tu_path(dir, "renamed.gguf");
        write_part(x, 0, 3, 5, "a", NULL);
        open_fails(x, "does not end in -00001-of-00003.gguf");
        write_part(part_path(dir, 1, 2), 0, 3, 5, "a", NULL);
        open_fails(part_path(dir, 1, 2), "does not end in -00001-of-00003.gguf");
        free(x);
    }
    {   /* split keys of the wrong type or range */
        struct model b;
        char *x = tu_path(dir, "bad-00001-of-00002.gguf");
        ck_assert_int_eq(fx_init(&b, x, &e), 0);
        fx_str(&b, "split.count", "2", &e);
        fx_uint(&b, "split.no", MV_U16, 0, &e);
        ck_assert_int_eq(gguf_write(&b, x, NULL, &e), 0);
        model_close(&b);
        open_fails(x, "key 'split.count' is STRING, not a non-negative integer");
        ck_assert_int_eq(fx_init(&b, x, &e), 0);
        fx_uint(&b, "split.count", MV_U16, 2, &e);
        fx_uint(&b, "split.no", MV_U16, 2, &e);
        ck_assert_int_eq(gguf_write(&b, x, NULL, &e), 0);
        model_close(&b);
        open_fails(x, "split.no 2 and split.count 2 do not describe a part");
        /* llama-gguf-split --merge writes split.count 0, split.no 0: one ordinary file */
        ck_assert_int_eq(fx_init(&b, x, &e), 0);
        fx_uint(&b, "split.count", MV_U16, 0, &e);
        fx_uint(&b, "split.no", MV_U16, 0, &e);
        ck_assert_int_eq(gguf_write(&b, x, NULL, &e), 0);
        model_close(&b);
        ck_assert_msg(model_open(&b, x, &e) == 0, "%s", e.msg);
        ck_assert_ptr_null(model_kv_find(&b, "split.count"));
        model_close(&b);
        ck_assert_int_eq(fx_init(&b, x, &e), 0);
        fx_uint(&b, "split.count", MV_U16, 0, &e);
        fx_uint(&b, "split.no", MV_U16, 1, &e);
        ck_assert_int_eq(gguf_write(&b, x, NULL, &e), 0);
        model_close(&b);
        open_fails(x, "split.no 1 and split.count 0 do not describe a part");
        free(x);
    }

    /* A first part without tensors (gguf-split --no-tensor-first-split), and a set of one. */
    write_part(part_path(dir, 1, 2), 0, 2, 2, "", NULL);
    {
        char *p2 = strdup(part_path(dir, 2, 2));
        write_part(p2, 1, 2, 2, "xy", NULL);
        free(p2);
    }
    ck_assert_msg(model_open(&m, part_path(dir, 1, 2), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 2);
    ck_assert_uint_eq(m.tensors[0].file, 1);
    ck_assert_uint_eq(m.n_kv, 3);
    model_close(&m);
    write_part(part_path(dir, 1, 1), 0, 1, 1, "a", NULL);
    ck_assert_msg(model_open(&m, part_path(dir, 1, 1), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_files, 1);
    ck_assert_ptr_null(model_kv_find(&m, "split.no"));
    model_close(&m);

    model_close(&w);
    free(whole);
    tu_tmpdir_free(dir);
}
END_TEST

/* gguf_write_split: the parts llama-gguf-split --split-max-size would write, read back
 * as the same model; the producer sees the whole model's indexes. */
static int split_producer(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                          struct err *e)
{
    uint8_t b[16];
    ck_assert_ptr_eq(ctx, m);   /* the whole model, not a part */
    for (int k = 0; k < 16; k++)
        b[k] = (uint8_t)(m->tensors[i].data[15 - k] ^ (uint8_t)i);
    return gguf_out_write(out, b, 16, e);
}

START_TEST(test_write_split)
{
    char *dir = tu_tmpdir_new("check_gguf"), *whole = tu_path(dir, "whole.gguf"),
         *out = tu_path(dir, "out.gguf");
    struct model w, m, p;
    struct err e = ERR_INIT;
    uint32_t n = 0;

    write_part(whole, 0, -1, 0, "abcd", NULL);
    ck_assert_msg(model_open(&w, whole, &e) == 0, "%s", e.msg);

    /* 16-byte tensors padded to 32: two per 64-byte part. */
    ck_assert_msg(gguf_write_split(&w, out, 64, NULL, &n, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(n, 2);
    {
        char *o1 = tu_path(dir, "out-00001-of-00002.gguf");
        ck_assert_msg(model_open(&m, o1, &e) == 0, "%s", e.msg);
        ck_assert_uint_eq(m.n_tensors, 4);
        model_close(&m);
        free(o1);
    }
    free(out);
    out = tu_path(dir, "m.gguf");
    ck_assert_msg(gguf_write_split(&w, out, 64, NULL, &n, &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, part_path(dir, 1, 2), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_files, 2);
    ck_assert_uint_eq(m.n_tensors, 4);
    ck_assert_uint_eq(m.n_kv, w.n_kv);
    for (uint64_t i = 0; i < 4; i++) {
        ck_assert(slice_eq(m.tensors[i].name, w.tensors[i].name));
        ck_assert_uint_eq(m.tensors[i].file, i / 2);
        ck_assert_mem_eq(m.tensors[i].data, w.tensors[i].data, 16);
    }
    ck_assert_int_eq(m.gguf_canonical, 1);
    ck_assert_uint_eq(m.n_notes, 0);
    model_close(&m);
    /* A later part holds only the split keys, with llama-gguf-split's types. */
    ck_assert_msg(gguf_open_single(&p, part_path(dir, 2, 2), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(p.n_kv, 3);
    ck_assert(slice_eq_cstr(p.kv[0].key, "split.no") && p.kv[0].val.type == MV_U16 &&
              p.kv[0].val.v.u == 1);
    ck_assert(slice_eq_cstr(p.kv[1].key, "split.count") && p.kv[1].val.type == MV_U16 &&
              p.kv[1].val.v.u == 2);
    ck_assert(slice_eq_cstr(p.kv[2].key, "split.tensors.count") && p.kv[2].val.type == MV_I32 &&
              p.kv[2].val.v.i == 4);
    ck_assert_uint_eq(p.n_tensors, 2);
    model_close(&p);

    /* Writing the set read back (its split keys already dropped, or a part's present)
     * with a size under one tensor: a part per tensor, named from "m-00001-of-00002". */
    ck_assert_msg(model_open(&m, part_path(dir, 1, 2), &e) == 0, "%s", e.msg);
    {
        struct gguf_write_opts o = GGUF_WRITE_OPTS_INIT;
        o.tensor_data = split_producer;
        o.ctx = &m;
        ck_assert_msg(gguf_write_split(&m, part_path(dir, 1, 2), 1, &o, &n, &e) == 0, "%s",
                      e.msg);
    }
    ck_assert_uint_eq(n, 4);
    ck_assert_msg(model_open(&p, part_path(dir, 1, 4), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(p.n_files, 4);
    for (uint64_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(p.tensors[i].file, i);
        for (int k = 0; k < 16; k++)
            ck_assert_uint_eq(p.tensors[i].data[k],
                              (uint8_t)(w.tensors[i].data[15 - k] ^ (uint8_t)i));
    }
    model_close(&p);
    model_close(&m);

    /* One part when everything fits; refusals leave no file behind. */
    ck_assert_msg(gguf_write_split(&w, out, 1 << 20, NULL, &n, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(n, 1);
    ck_assert_msg(model_open(&m, part_path(dir, 1, 1), &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 4);
    ck_assert_ptr_null(model_kv_find(&m, "split.count"));
    model_close(&m);
    {
        int before = tu_dir_count(dir);
        ck_assert_int_eq(gguf_write_split(&w, out, 0, NULL, &n, &e), -1);
        ck_assert_int_eq(e.code, ERR_USAGE);
        err_clear(&e);
        ck_assert_int_eq(tu_dir_count(dir), before);
    }
    model_close(&w);
    free(out);
    free(whole);
    tu_tmpdir_free(dir);
}
END_TEST

/* ------------------------------------------------------------------ suite */

Suite *gguf_suite(void)
{
    Suite *s = suite_create("gguf");
    TCase *tc;

    tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_shared_fixture, 0, N_FIXTURES);
    tcase_add_test(tc, test_model_open_detects);
    tcase_add_test(tc, test_open_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_loop_test(tc, test_malformed, 0, N_BAD);
    tcase_add_test(tc, test_message_escapes);
    tcase_add_test(tc, test_quote);
    suite_add_tcase(s, tc);

    tc = tcase_create("accepted");
    tcase_add_test(tc, test_base_file);
    tcase_add_test(tc, test_non_canonical);
    tcase_add_test(tc, test_short_final_padding);
    tcase_add_test(tc, test_odd_accepted);
    tcase_add_test(tc, test_bool_byte);
    tcase_add_test(tc, test_small_files);
    tcase_add_test(tc, test_small_v1);
    tcase_add_test(tc, test_demo_model);
    tcase_add_test(tc, test_split_set);
    suite_add_tcase(s, tc);

    tc = tcase_create("robust");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_truncate_everywhere, 0, N_ROBUST);
    tcase_add_loop_test(tc, test_flip_header_bytes, 0, N_ROBUST);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_write_example192);
    tcase_add_test(tc, test_write_alignment);
    tcase_add_test(tc, test_write_producer);
    tcase_add_loop_test(tc, test_write_refuses, 0, N_REFUSALS);
    tcase_add_test(tc, test_write_cleanup);
    tcase_add_test(tc, test_write_back_identical);
    tcase_add_test(tc, test_write_split);
    suite_add_tcase(s, tc);
    return s;
}
