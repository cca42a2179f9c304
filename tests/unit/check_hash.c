/*
 * check_hash.c - apr-hash: whole-file vectors, the model hash's invariances (tensor
 * order, metadata, container, file name), bit flips, manifests (ours in JSON and text,
 * llama-gguf-hash's, sha256sum's), --content across GGUF and SafeTensors layouts,
 * --verify-source, and the shared third-party fixtures when they are present.
 *
 * Models are written by the project's GGUF and APR writers from a hand-built struct
 * model, and SafeTensors files byte by byte here, into a fresh temporary directory.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/json.h"
#include "../../common/mfile.h"
#include "../../common/sha256.h"
#include "../../dequant/dq.h"
#include "../../formats/apr/apr.h"
#include "../../formats/gguf/gguf.h"
#include "../../formats/names.h"
#include "../../hash/hash.h"
#include "tu.h"
#include "../../common/banned.h"

/* ---- scaffolding (files go in tu.h's per-test directory: tu_setup, tu_tpath) ------------ */

struct tdef {
    const char *name;
    int         dtype;
    int         n_dims;
    int64_t     shape[2];
    uint8_t    *data;
    uint64_t    size;
};

static uint64_t rng_s = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return rng_s;
}

static float rnd(void)
{
    return (float)((double)(rng() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int64_t n_elems(const struct tdef *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->shape[d];
    return n;
}

/* Random data of t's dtype (F16 or F32). */
static void fill(struct tdef *t)
{
    int64_t n = n_elems(t);
    t->size = (uint64_t)n * (t->dtype == DT_F16 ? 2 : 4);
    t->data = malloc(t->size);
    ck_assert_ptr_nonnull(t->data);
    for (int64_t i = 0; i < n; i++) {
        float f = rnd();
        if (t->dtype == DT_F16) {
            uint16_t h = dq_f32_to_f16(f);
            memcpy(t->data + 2 * i, &h, 2);
        } else {
            memcpy(t->data + 4 * i, &f, 4);
        }
    }
}

struct kvdef {
    const char *key;
    int         is_str;
    const char *s;
    uint64_t    u;
};

static void write_gguf(const char *path, const struct tdef *t, int n, const struct kvdef *kv,
                       int n_kv)
{
    struct model m;
    struct err e = ERR_INIT;

    memset(&m, 0, sizeof m);
    m.format = MODEL_FMT_GGUF;
    m.kv = calloc((size_t)n_kv + 1, sizeof *m.kv);
    m.tensors = calloc((size_t)n + 1, sizeof *m.tensors);
    ck_assert_ptr_nonnull(m.kv);
    ck_assert_ptr_nonnull(m.tensors);
    for (int i = 0; i < n_kv; i++) {
        m.kv[i].key = slice_from_cstr(kv[i].key);
        if (kv[i].is_str) {
            m.kv[i].val.type = MV_STR;
            m.kv[i].val.v.s = slice_from_cstr(kv[i].s);
        } else {
            m.kv[i].val.type = MV_U32;
            m.kv[i].val.v.u = kv[i].u;
        }
    }
    m.n_kv = (uint64_t)n_kv;
    for (int i = 0; i < n; i++) {
        struct model_tensor *mt = &m.tensors[i];
        mt->name = slice_from_cstr(t[i].name);
        mt->dtype = t[i].dtype;
        mt->n_dims = t[i].n_dims;
        for (int d = 0; d < MODEL_MAX_DIMS; d++)
            mt->shape[d] = d < t[i].n_dims ? t[i].shape[d] : 1;
        mt->n_elems = n_elems(&t[i]);
        mt->size = t[i].size;
        mt->data = t[i].data;
    }
    m.n_tensors = (uint64_t)n;
    ck_assert_msg(gguf_write(&m, path, NULL, &e) == 0, "gguf_write: %s", e.msg);
    free(m.kv);
    free(m.tensors);
}

/* A SafeTensors file written by hand: header JSON, space padded to 8, data in order. */
static void write_st(const char *path, const struct tdef *t, int n, const char *meta)
{
    char hdr[16384];
    size_t k = 0;
    uint64_t off = 0, len;
    uint8_t lenb[8];
    FILE *f;

    k += (size_t)snprintf(hdr + k, sizeof hdr - k, "{");
    if (meta)
        k += (size_t)snprintf(hdr + k, sizeof hdr - k, "\"__metadata__\":{%s},", meta);
    for (int i = 0; i < n; i++) {
        k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                              i ? "," : "", t[i].name, dtype_get(t[i].dtype)->st_name);
        for (int d = 0; d < t[i].n_dims; d++)
            k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%s%lld", d ? "," : "",
                                  (long long)t[i].shape[d]);
        k += (size_t)snprintf(hdr + k, sizeof hdr - k, "],\"data_offsets\":[%llu,%llu]}",
                              (unsigned long long)off, (unsigned long long)(off + t[i].size));
        off += t[i].size;
    }
    k += (size_t)snprintf(hdr + k, sizeof hdr - k, "}");
    ck_assert_uint_lt(k + 8, sizeof hdr);
    while (k % 8)
        hdr[k++] = ' ';
    len = k;
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)(len >> (8 * i));
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(lenb, 1, 8, f);
    fwrite(hdr, 1, k, f);
    for (int i = 0; i < n; i++)
        fwrite(t[i].data, 1, t[i].size, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void hash_path(const char *path, unsigned what, struct hash_model *h)
{
    struct model m;
    struct err e = ERR_INIT;
    ck_assert_msg(model_open(&m, path, &e) == 0, "model_open: %s", e.msg);
    ck_assert_msg(hash_model_compute(&m, what, 2, h, &e) == 0, "hash: %s", e.msg);
    model_close(&m);
}

static const struct hash_tensor *find(const struct hash_model *h, const char *name)
{
    for (uint64_t i = 0; i < h->n_tensors; i++)
        if (strcmp(h->t[i].name, name) == 0 || strcmp(h->t[i].canon, name) == 0)
            return &h->t[i];
    return NULL;
}

/* Run hash_run with output captured; returns the exit status, *out the text (free it). */
static int run(struct hash_opts *o, int n, char **files, char **out)
{
    FILE *f = tmpfile(), *g = tmpfile();
    struct err e = ERR_INIT;
    long len;
    int rc;

    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(g);
    o->out = f;
    o->errs = g;
    o->no_progress = 1;
    rc = hash_run(o, n, files, &e);
    fflush(f);
    len = ftell(f);
    *out = calloc((size_t)len + 1, 1);
    ck_assert_ptr_nonnull(*out);
    rewind(f);
    ck_assert_uint_eq(fread(*out, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    fclose(g);
    return rc;
}

static void copy_file(const char *from, const char *to)
{
    struct mfile mf;
    struct err e = ERR_INIT;
    FILE *f;
    ck_assert_int_eq(mfile_open(&mf, from, &e), 0);
    f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    if (mf.size)
        fwrite(mf.data, 1, mf.size, f);
    ck_assert_int_eq(fclose(f), 0);
    mfile_close(&mf);
}

static void flip_bit(const char *path, uint64_t off)
{
    FILE *f = fopen(path, "r+b");
    int c;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, (long)off, SEEK_SET), 0);
    c = fgetc(f);
    ck_assert_int_eq(fseek(f, (long)off, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The small llama-like model of most tests: 2 heads of 4, 1 kv head, embedding 8. */
#define N_T 7
static struct tdef *llama_tensors(void)
{
    static struct tdef t[N_T] = {
        { "token_embd.weight",      DT_F16, 2, { 16, 8 }, NULL, 0 },
        { "blk.0.attn_norm.weight", DT_F32, 1, { 8, 1 },  NULL, 0 },
        { "blk.0.attn_q.weight",    DT_F16, 2, { 8, 8 },  NULL, 0 },
        { "blk.0.attn_k.weight",    DT_F16, 2, { 4, 8 },  NULL, 0 },
        { "blk.0.attn_v.weight",    DT_F16, 2, { 4, 8 },  NULL, 0 },
        { "output_norm.weight",     DT_F32, 1, { 8, 1 },  NULL, 0 },
        { "output.weight",          DT_F16, 2, { 16, 8 }, NULL, 0 },
    };
    rng_s = 88172645463325252ull;
    for (int i = 0; i < N_T; i++)
        if (!t[i].data)
            fill(&t[i]);
    return t;
}

static const struct kvdef llama_kv[] = {
    { "general.architecture", 1, "llama", 0 },
    { "general.name", 1, "tiny", 0 },
    { "llama.attention.head_count", 0, NULL, 2 },
    { "llama.attention.head_count_kv", 0, NULL, 1 },
};

/* ---- tests ---------------------------------------------------------------------------- */

START_TEST(file_known_vectors)
{
    static const struct { const char *in; const char *hex; } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    };
    char hex[SHA256_HEX_LEN + 1];
    uint8_t d[SHA256_LEN], ref[SHA256_LEN];
    uint64_t size;
    struct err e = ERR_INIT;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        FILE *f = fopen(tu_tpath("v"), "wb");
        fputs(v[i].in, f);
        fclose(f);
        ck_assert_int_eq(hash_file(tu_tpath("v"), d, &size, &e), 0);
        sha256_hex(d, hex);
        ck_assert_str_eq(hex, v[i].hex);
        ck_assert_uint_eq(size, strlen(v[i].in));
    }
    /* larger than one chunk (16 MiB) plus a tail, against a one-shot digest */
    {
        size_t n = (16u << 20) + 12345;
        uint8_t *buf = malloc(n);
        FILE *f = fopen(tu_tpath("big"), "wb");
        ck_assert_ptr_nonnull(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(rng() >> 3);
        fwrite(buf, 1, n, f);
        fclose(f);
        ck_assert_int_eq(sha256_buf(buf, n, ref, &e), 0);
        ck_assert_int_eq(hash_file(tu_tpath("big"), d, &size, &e), 0);
        ck_assert_mem_eq(d, ref, SHA256_LEN);
        free(buf);
    }
    ck_assert_int_eq(hash_file(tu_tpath("nonexistent"), d, &size, &e), -1);
    ck_assert_int_eq(e.code, ERR_IO);
}
END_TEST

START_TEST(model_hash_invariance)
{
    struct tdef *t = llama_tensors(), rev[N_T];
    struct kvdef kv2[5];
    struct hash_model a, b, c, d;

    for (int i = 0; i < N_T; i++)
        rev[i] = t[N_T - 1 - i];
    memcpy(kv2, llama_kv, sizeof llama_kv);
    kv2[1].s = "renamed by a metadata edit";
    kv2[4] = (struct kvdef){ "general.license", 1, "mit", 0 };
    write_gguf(tu_tpath("a.gguf"), t, N_T, llama_kv, 4);
    write_gguf(tu_tpath("b.gguf"), rev, N_T, kv2, 5);
    write_st(tu_tpath("c.safetensors"), rev, N_T, "\"format\":\"pt\"");
    hash_path(tu_tpath("a.gguf"), HASH_WANT_RAW | HASH_WANT_METADATA, &a);
    hash_path(tu_tpath("b.gguf"), HASH_WANT_RAW | HASH_WANT_METADATA, &b);
    hash_path(tu_tpath("c.safetensors"), HASH_WANT_RAW, &c);
    /* reordered + metadata edited: same model hash, other metadata hash */
    ck_assert_mem_eq(a.model_hash, b.model_hash, SHA256_LEN);
    ck_assert_int_ne(memcmp(a.metadata_hash, b.metadata_hash, SHA256_LEN), 0);
    /* another container with the same names and bytes: same tensor hash; the model
     * hash differs, as c has no architecture and no head counts */
    ck_assert_mem_eq(a.tensor_hash, c.tensor_hash, SHA256_LEN);
    ck_assert_int_ne(memcmp(a.model_hash, c.model_hash, SHA256_LEN), 0);
    /* renamed file */
    ck_assert_int_eq(rename(tu_tpath("a.gguf"), tu_tpath("renamed.bin")), 0);
    hash_path(tu_tpath("renamed.bin"), HASH_WANT_RAW, &d);
    ck_assert_mem_eq(a.model_hash, d.model_hash, SHA256_LEN);
    /* every tensor hash is the SHA-256 of its bytes */
    for (int i = 0; i < N_T; i++) {
        uint8_t ref[SHA256_LEN];
        struct err e = ERR_INIT;
        const struct hash_tensor *ht = find(&a, t[i].name);
        ck_assert_ptr_nonnull(ht);
        ck_assert_int_eq(sha256_buf(t[i].data, t[i].size, ref, &e), 0);
        ck_assert_mem_eq(ht->sha, ref, SHA256_LEN);
    }
    hash_model_release(&a);
    hash_model_release(&b);
    hash_model_release(&c);
    hash_model_release(&d);
}
END_TEST

START_TEST(model_hash_record_encoding)
{
    /* The documented record: canonical name \0 dtype \0 dims \0 hex \n, sorted by name. */
    struct hash_tensor t[2];
    char rec[1024];
    uint8_t want[SHA256_LEN], got[SHA256_LEN];
    char h0[SHA256_HEX_LEN + 1], h1[SHA256_HEX_LEN + 1];
    struct err e = ERR_INIT;
    int n;

    memset(t, 0, sizeof t);
    t[0].name = "output.weight";
    t[0].canon = "lm_head.weight";
    t[0].dtype = DT_Q4_K;
    t[0].n_dims = 2;
    t[0].shape[0] = 512;
    t[0].shape[1] = 256;
    memset(t[0].sha, 0xab, SHA256_LEN);
    t[1].name = "blk.0.attn_norm.weight";
    t[1].canon = "model.layers.0.input_layernorm.weight";
    t[1].dtype = DT_F32;
    t[1].n_dims = 1;
    t[1].shape[0] = 256;
    memset(t[1].sha, 0x01, SHA256_LEN);
    sha256_hex(t[0].sha, h0);
    sha256_hex(t[1].sha, h1);
    n = snprintf(rec, sizeof rec, "lm_head.weight%cQ4_K%c512,256%c%s\n"
                 "model.layers.0.input_layernorm.weight%cF32%c256%c%s\n",
                 0, 0, 0, h0, 0, 0, 0, h1);
    ck_assert_int_eq(sha256_buf(rec, (size_t)n, want, &e), 0);
    ck_assert_int_eq(hash_records(t, 2, 0, got, &e), 0);
    ck_assert_mem_eq(got, want, SHA256_LEN);
}
END_TEST

START_TEST(metadata_hash_encoding)
{
    /* netstring(key) TYPE=payload "\n", sorted by key */
    static const char want_text[] =
        "20:general.architectureSTRING=5:llama\n"
        "12:general.nameSTRING=4:tiny\n"
        "26:llama.attention.head_countUINT32=2\n"
        "29:llama.attention.head_count_kvUINT32=1\n";
    struct tdef t = { "x.weight", DT_F32, 1, { 4, 1 }, NULL, 0 };
    struct model m;
    struct err e = ERR_INIT;
    struct kvdef kv[4];
    uint8_t want[SHA256_LEN], got[SHA256_LEN];

    fill(&t);
    /* written in another key order: the hash sorts */
    kv[0] = llama_kv[3];
    kv[1] = llama_kv[1];
    kv[2] = llama_kv[0];
    kv[3] = llama_kv[2];
    write_gguf(tu_tpath("m.gguf"), &t, 1, kv, 4);
    ck_assert_int_eq(model_open(&m, tu_tpath("m.gguf"), &e), 0);
    ck_assert_int_eq(hash_metadata(&m, got, &e), 0);
    model_close(&m);
    ck_assert_int_eq(sha256_buf(want_text, strlen(want_text), want, &e), 0);
    ck_assert_mem_eq(got, want, SHA256_LEN);
    free(t.data);
}
END_TEST

START_TEST(bit_flip_detected)
{
    struct tdef *t = llama_tensors();
    struct model m;
    struct err e = ERR_INIT;
    struct hash_model a, b;
    uint64_t off;

    write_gguf(tu_tpath("a.gguf"), t, N_T, llama_kv, 4);
    copy_file(tu_tpath("a.gguf"), tu_tpath("flip.gguf"));
    ck_assert_int_eq(model_open(&m, tu_tpath("a.gguf"), &e), 0);
    off = model_tensor_find(&m, "blk.0.attn_v.weight")->off + 7;
    model_close(&m);
    flip_bit(tu_tpath("flip.gguf"), off);
    hash_path(tu_tpath("a.gguf"), HASH_WANT_RAW, &a);
    hash_path(tu_tpath("flip.gguf"), HASH_WANT_RAW, &b);
    ck_assert_int_ne(memcmp(a.model_hash, b.model_hash, SHA256_LEN), 0);
    for (uint64_t i = 0; i < a.n_tensors; i++) {
        const struct hash_tensor *x = &a.t[i], *y = find(&b, x->name);
        ck_assert_ptr_nonnull(y);
        ck_assert_int_eq(memcmp(x->sha, y->sha, SHA256_LEN) != 0,
                         strcmp(x->name, "blk.0.attn_v.weight") == 0);
    }
    hash_model_release(&a);
    hash_model_release(&b);
}
END_TEST

static void manifest_roundtrip(int format)
{
    struct tdef *t = llama_tensors(), rev[N_T];
    struct kvdef kv2[4];
    struct hash_opts o = HASH_OPTS_INIT;
    struct model m;
    struct err e = ERR_INIT;
    char *files[2], *out;
    uint64_t off;

    for (int i = 0; i < N_T; i++)
        rev[i] = t[N_T - 1 - i];
    memcpy(kv2, llama_kv, sizeof llama_kv);
    kv2[1].s = "edited";
    write_gguf(tu_tpath("a.gguf"), t, N_T, llama_kv, 4);
    write_gguf(tu_tpath("moved.gguf"), rev, N_T, kv2, 4);
    copy_file(tu_tpath("a.gguf"), tu_tpath("renamed.gguf"));
    copy_file(tu_tpath("a.gguf"), tu_tpath("flip.gguf"));
    ck_assert_int_eq(model_open(&m, tu_tpath("a.gguf"), &e), 0);
    off = model_tensor_find(&m, "blk.0.attn_q.weight")->off + 3;
    model_close(&m);
    flip_bit(tu_tpath("flip.gguf"), off);

    o.output = tu_tpath("man");
    o.format = format;
    files[0] = (char *)tu_tpath("a.gguf");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);

    o = (struct hash_opts)HASH_OPTS_INIT;
    o.check = tu_tpath("man");
    /* the file as named in the manifest */
    ck_assert_int_eq(run(&o, 0, files, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, ": OK"));
    free(out);
    /* renamed: matched by its sha256 */
    files[0] = (char *)tu_tpath("renamed.gguf");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
    /* reordered tensors and edited metadata: matched by the model hash */
    files[0] = (char *)tu_tpath("moved.gguf");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "OK (model hash"));
    free(out);
    /* one flipped bit: exit 1, the tensor is named */
    files[0] = (char *)tu_tpath("flip.gguf");
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    ck_assert_msg(strstr(out, "tensor 'blk.0.attn_q.weight': MISMATCH") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "attn_v"));
    free(out);
    /* quiet: nothing printed, same status */
    o.quiet = 1;
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    ck_assert_str_eq(out, "");
    free(out);
    o.quiet = 0;
    /* a model the manifest does not know: mismatch */
    files[0] = (char *)tu_tpath("nonexistent.gguf");
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    free(out);
}

START_TEST(manifest_roundtrip_json)
{
    manifest_roundtrip(HASH_FMT_JSON);
}
END_TEST

START_TEST(manifest_roundtrip_text)
{
    manifest_roundtrip(HASH_FMT_TEXT);
}
END_TEST

START_TEST(manifest_json_fields)
{
    struct tdef *t = llama_tensors();
    struct hash_opts o = HASH_OPTS_INIT;
    struct mfile mf;
    struct json_doc d;
    struct err e = ERR_INIT;
    char *files[1], *out;
    int f0, t0;

    write_gguf(tu_tpath("a.gguf"), t, N_T, llama_kv, 4);
    o.output = tu_tpath("man.json");
    files[0] = (char *)tu_tpath("a.gguf");
    unsetenv("SOURCE_DATE_EPOCH");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
    ck_assert_int_eq(mfile_open(&mf, tu_tpath("man.json"), &e), 0);
    ck_assert_int_eq(json_parse(&d, (const char *)mf.data, mf.size, 0, "man.json", &e), 0);
    ck_assert(json_str_eq(&d, json_get(&d, 0, "tool"), "apr-hash"));
    ck_assert_int_lt(json_get(&d, 0, "generated_at"), 0);   /* deterministic by default */
    ck_assert_int_ge(json_get(&d, 0, "model_hash"), 0);
    f0 = json_get(&d, 0, "files") + 1;
    ck_assert_int_ge(json_get(&d, f0, "size_bytes"), 0);
    ck_assert_int_ge(json_get(&d, f0, "sha256"), 0);
    ck_assert_int_ge(json_get(&d, f0, "path"), 0);
    t0 = json_get(&d, 0, "tensors");
    ck_assert_int_eq(d.tok[t0].size, N_T);
    t0++;
    ck_assert_int_ge(json_get(&d, t0, "name"), 0);
    ck_assert_int_ge(json_get(&d, t0, "dtype"), 0);
    ck_assert_int_ge(json_get(&d, t0, "shape"), 0);
    ck_assert_int_ge(json_get(&d, t0, "sha256"), 0);
    json_release(&d);
    mfile_close(&mf);
    /* SOURCE_DATE_EPOCH gives a fixed generated_at */
    setenv("SOURCE_DATE_EPOCH", "0", 1);
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
    unsetenv("SOURCE_DATE_EPOCH");
    ck_assert_int_eq(mfile_open(&mf, tu_tpath("man.json"), &e), 0);
    ck_assert_ptr_nonnull(memmem(mf.data, mf.size,
                                 "\"generated_at\": \"1970-01-01T00:00:00Z\"", 38));
    mfile_close(&mf);
}
END_TEST

START_TEST(llama_gguf_hash_manifest)
{
    struct tdef *t = llama_tensors();
    struct hash_opts o = HASH_OPTS_INIT;
    struct hash_model a;
    char hex[SHA256_HEX_LEN + 1], *files[1], *out;
    FILE *f;
    uint8_t whole[SHA256_LEN];
    struct err e = ERR_INIT;
    struct sha256 h;

    write_gguf(tu_tpath("a.gguf"), t, N_T, llama_kv, 4);
    hash_path(tu_tpath("a.gguf"), HASH_WANT_RAW, &a);
    /* as llama-gguf-hash --all writes it, under a path that does not exist here */
    f = fopen(tu_tpath("a.gguf-hash.txt"), "w");
    sha256_init(&h, &e);
    for (int i = 0; i < N_T; i++) {
        const struct hash_tensor *ht = find(&a, t[i].name);
        sha256_hex(ht->sha, hex);
        fprintf(f, "xxh64     0123456789abcdef  somewhere/model.gguf:%s\n", t[i].name);
        fprintf(f, "sha256    %s  somewhere/model.gguf:%s\n", hex, t[i].name);
        sha256_update(&h, t[i].data, t[i].size);
    }
    sha256_final(&h, whole, &e);
    sha256_hex(whole, hex);
    fprintf(f, "sha256    %s  somewhere/model.gguf\n", hex);
    fclose(f);
    o.check = tu_tpath("a.gguf-hash.txt");
    files[0] = (char *)tu_tpath("a.gguf");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);

    /* one wrong entry: exit 1, named */
    f = fopen(tu_tpath("bad.txt"), "w");
    for (int i = 0; i < N_T; i++) {
        const struct hash_tensor *ht = find(&a, t[i].name);
        sha256_hex(ht->sha, hex);
        if (i == 3)
            hex[0] = hex[0] == '0' ? '1' : '0';
        fprintf(f, "sha256    %s  model.gguf:%s\n", hex, t[i].name);
    }
    fprintf(f, "sha256    %s  model.gguf:not.in.the.file\n", hex);
    fclose(f);
    o.check = tu_tpath("bad.txt");
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    ck_assert_msg(strstr(out, "tensor 'blk.0.attn_k.weight': MISMATCH") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "tensor 'not.in.the.file': MISSING") != NULL, "%s", out);
    free(out);

    /* only the whole-model line (--no-layer) */
    f = fopen(tu_tpath("whole.txt"), "w");
    sha256_hex(whole, hex);
    fprintf(f, "sha256    %s  model.gguf\n", hex);
    fclose(f);
    o.check = tu_tpath("whole.txt");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
    hash_model_release(&a);
}
END_TEST

START_TEST(sha256sum_manifest)
{
    struct hash_opts o = HASH_OPTS_INIT;
    char *files[2], *out, hex[SHA256_HEX_LEN + 1];
    FILE *f;

    f = fopen(tu_tpath("x.txt"), "w");
    fputs("abc", f);
    fclose(f);
    o.check = tu_tpath("sums");
    f = fopen(tu_tpath("sums"), "w");
    fprintf(f, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  %s\n",
            tu_tpath("x.txt"));
    fclose(f);
    ck_assert_int_eq(run(&o, 0, files, &out), 0);
    free(out);
    /* our whole-file output is a sha256sum manifest */
    o = (struct hash_opts)HASH_OPTS_INIT;
    files[0] = (char *)tu_tpath("x.txt");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    snprintf(hex, sizeof hex, "%s", out);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(out);
    /* changed content: mismatch; unreadable manifest: trouble */
    f = fopen(tu_tpath("x.txt"), "w");
    fputs("abd", f);
    fclose(f);
    o.check = tu_tpath("sums");
    ck_assert_int_eq(run(&o, 0, files, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "FAILED"));
    free(out);
    o.check = tu_tpath("no-such-manifest");
    ck_assert_int_eq(run(&o, 0, files, &out), 2);
    free(out);
    f = fopen(tu_tpath("garbage"), "w");
    fputs("hello\nworld\n", f);
    fclose(f);
    o.check = tu_tpath("garbage");
    ck_assert_int_eq(run(&o, 0, files, &out), 2);
    free(out);
}
END_TEST

START_TEST(content_across_layouts)
{
    /* The same F16 weights as GGUF (llama q/k rows permuted, GGUF names) and as
     * SafeTensors (HF names, HF rows), plus an F32 copy: one content hash. */
    struct tdef *t = llama_tensors(), hf[N_T], f32[N_T];
    char names[N_T][NAMES_MAX];
    struct hash_model g, s, w;
    struct err e = ERR_INIT;

    for (int i = 0; i < N_T; i++) {
        hf[i] = t[i];
        ck_assert_int_eq(names_to_hf("llama", slice_from_cstr(t[i].name), names[i], NAMES_MAX), 0);
        hf[i].name = names[i];
        if (strstr(t[i].name, "attn_q") || strstr(t[i].name, "attn_k")) {
            hf[i].data = malloc(t[i].size);
            ck_assert_int_eq(names_permute_rows(t[i].data, hf[i].data, t[i].shape[0],
                                                (size_t)t[i].shape[1] * 2,
                                                strstr(t[i].name, "attn_q") ? 2 : 1, 0, &e), 0);
        }
        f32[i] = hf[i];
        if (t[i].dtype == DT_F16) {
            int64_t n = n_elems(&t[i]);
            f32[i].dtype = DT_F32;
            f32[i].size = (uint64_t)n * 4;
            f32[i].data = malloc(f32[i].size);
            for (int64_t k = 0; k < n; k++) {
                uint16_t hbits;
                float v;
                memcpy(&hbits, hf[i].data + 2 * k, 2);
                v = dq_f16_to_f32(hbits);
                memcpy(f32[i].data + 4 * k, &v, 4);
            }
        }
    }
    write_gguf(tu_tpath("g.gguf"), t, N_T, llama_kv, 4);
    write_st(tu_tpath("s.safetensors"), hf, N_T, NULL);
    write_st(tu_tpath("w.safetensors"), f32, N_T, NULL);
    hash_path(tu_tpath("g.gguf"), HASH_WANT_RAW | HASH_WANT_CONTENT, &g);
    hash_path(tu_tpath("s.safetensors"), HASH_WANT_RAW | HASH_WANT_CONTENT, &s);
    hash_path(tu_tpath("w.safetensors"), HASH_WANT_CONTENT, &w);
    /* (the SafeTensors files carry no metadata: their tensors are compared) */
    ck_assert_mem_eq(g.content_tensor_hash, s.content_tensor_hash, SHA256_LEN);
    ck_assert_mem_eq(g.content_tensor_hash, w.content_tensor_hash, SHA256_LEN);
    /* stored bytes of q/k differ, so the tensor hash (stored bytes) does */
    ck_assert_int_ne(memcmp(g.tensor_hash, s.tensor_hash, SHA256_LEN), 0);
    ck_assert_int_eq(find(&g, "blk.0.attn_q.weight")->unpermuted, 1);
    ck_assert_int_eq(find(&s, "model.layers.0.self_attn.q_proj.weight")->unpermuted, 0);
    for (int i = 0; i < N_T; i++) {
        const struct hash_tensor *a = find(&g, t[i].name), *b = find(&s, names[i]);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_str_eq(a->canon, b->canon);
        ck_assert_mem_eq(a->content, b->content, SHA256_LEN);
    }
    hash_model_release(&g);
    hash_model_release(&s);
    hash_model_release(&w);
    for (int i = 0; i < N_T; i++) {
        if (f32[i].data != hf[i].data)
            free(f32[i].data);
        if (hf[i].data != t[i].data)
            free(hf[i].data);
    }
}
END_TEST

START_TEST(content_qwen2_names_only)
{
    /* qwen2 is never permuted: GGUF and HF spellings of the same bytes share the raw
     * model hash too (canonical names), biases included. */
    static const struct kvdef kv[] = {
        { "general.architecture", 1, "qwen2", 0 },
        { "qwen2.attention.head_count", 0, NULL, 2 },
        { "qwen2.attention.head_count_kv", 0, NULL, 1 },
    };
    struct tdef t[4] = {
        { "blk.0.attn_q.weight", DT_F16, 2, { 8, 8 }, NULL, 0 },
        { "blk.0.attn_q.bias",   DT_F32, 1, { 8, 1 }, NULL, 0 },
        { "blk.0.attn_k.bias",   DT_F32, 1, { 4, 1 }, NULL, 0 },
        { "token_embd.weight",   DT_F16, 2, { 16, 8 }, NULL, 0 },
    }, hf[4];
    char names[4][NAMES_MAX];
    struct hash_model g, s;

    for (int i = 0; i < 4; i++) {
        fill(&t[i]);
        hf[i] = t[i];
        ck_assert_int_eq(names_to_hf("qwen2", slice_from_cstr(t[i].name), names[i], NAMES_MAX), 0);
        hf[i].name = names[i];
    }
    write_gguf(tu_tpath("q.gguf"), t, 4, kv, 3);
    write_st(tu_tpath("q.safetensors"), hf, 4, NULL);
    hash_path(tu_tpath("q.gguf"), HASH_WANT_RAW | HASH_WANT_CONTENT, &g);
    hash_path(tu_tpath("q.safetensors"), HASH_WANT_RAW | HASH_WANT_CONTENT, &s);
    ck_assert_mem_eq(g.tensor_hash, s.tensor_hash, SHA256_LEN);
    ck_assert_mem_eq(g.content_tensor_hash, s.content_tensor_hash, SHA256_LEN);
    ck_assert_int_eq(find(&g, "blk.0.attn_q.weight")->unpermuted, 0);
    hash_model_release(&g);
    hash_model_release(&s);
    for (int i = 0; i < 4; i++)
        free(t[i].data);
}
END_TEST

START_TEST(gguf_and_apr_conversion_agree)
{
    /* The same model re-written as APR with types kept (names, shapes, bytes unchanged,
     * as aprender keeps llama's GGUF names): same model hash and content hash. */
    struct tdef *t = llama_tensors();
    struct model m;
    struct err e = ERR_INIT;
    struct hash_model g, a;

    write_gguf(tu_tpath("a.gguf"), t, N_T, llama_kv, 4);
    ck_assert_int_eq(model_open(&m, tu_tpath("a.gguf"), &e), 0);
    ck_assert_msg(apr_write(&m, tu_tpath("a.apr"), NULL, &e) == 0, "apr_write: %s", e.msg);
    model_close(&m);
    hash_path(tu_tpath("a.gguf"), HASH_WANT_RAW | HASH_WANT_CONTENT, &g);
    hash_path(tu_tpath("a.apr"), HASH_WANT_RAW | HASH_WANT_CONTENT, &a);
    ck_assert_int_eq(a.format, MODEL_FMT_APR);
    /* apr_write without apr-convert's namespace keeps only the architecture of the
     * metadata: the tensors agree (t4000 checks apr-convert's APR keeps the model hash) */
    ck_assert_mem_eq(g.tensor_hash, a.tensor_hash, SHA256_LEN);
    ck_assert_mem_eq(g.content_tensor_hash, a.content_tensor_hash, SHA256_LEN);
    hash_model_release(&g);
    hash_model_release(&a);
}
END_TEST

static void write_apr_with(const char *path, const char *src_hex)
{
    struct model m;
    struct err e = ERR_INIT;
    struct model_kv kv[2];
    struct model_tensor mt;
    static float data[4] = { 1, 2, 3, 4 };

    memset(&m, 0, sizeof m);
    memset(kv, 0, sizeof kv);
    memset(&mt, 0, sizeof mt);
    m.format = MODEL_FMT_APR;
    kv[0].key = slice_from_cstr("model_type");
    kv[0].val.type = MV_STR;
    kv[0].val.v.s = slice_from_cstr("llama");
    kv[1].key = slice_from_cstr(HASH_SOURCE_KEY);
    kv[1].val.type = MV_STR;
    kv[1].val.v.s = slice_from_cstr(src_hex ? src_hex : "");
    m.kv = kv;
    m.n_kv = src_hex ? 2 : 1;
    mt.name = slice_from_cstr("w");
    mt.dtype = DT_F32;
    mt.n_dims = 1;
    for (int d = 0; d < MODEL_MAX_DIMS; d++)
        mt.shape[d] = d ? 1 : 4;
    mt.n_elems = 4;
    mt.size = 16;
    mt.data = (const uint8_t *)data;
    m.tensors = &mt;
    m.n_tensors = 1;
    ck_assert_msg(apr_write(&m, path, NULL, &e) == 0, "apr_write: %s", e.msg);
}

START_TEST(verify_source)
{
    struct hash_opts o = HASH_OPTS_INIT;
    char *files[1], *out;
    FILE *f = fopen(tu_tpath("src.gguf"), "w");

    fputs("abc", f);
    fclose(f);
    f = fopen(tu_tpath("other"), "w");
    fputs("abd", f);
    fclose(f);
    write_apr_with(tu_tpath("m.apr"),
                   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    write_apr_with(tu_tpath("nokey.apr"), NULL);
    files[0] = (char *)tu_tpath("m.apr");
    o.verify_source = tu_tpath("src.gguf");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "source OK"));
    free(out);
    o.verify_source = tu_tpath("other");
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "MISMATCH"));
    free(out);
    files[0] = (char *)tu_tpath("nokey.apr");
    ck_assert_int_eq(run(&o, 1, files, &out), 2);
    free(out);
    o.verify_source = tu_tpath("missing-source");
    files[0] = (char *)tu_tpath("m.apr");
    ck_assert_int_eq(run(&o, 1, files, &out), 2);
    free(out);
}
END_TEST

START_TEST(multi_file_worst_status)
{
    struct hash_opts o = HASH_OPTS_INIT;
    char *files[3], *out;
    FILE *f = fopen(tu_tpath("x"), "w");
    fputs("abc", f);
    fclose(f);
    files[0] = (char *)tu_tpath("x");
    files[1] = (char *)tu_tpath("nonexistent");
    files[2] = (char *)tu_tpath("x");
    o.n_threads = 2;
    ck_assert_int_eq(run(&o, 3, files, &out), 1);
    /* both good files are printed, in argument order */
    ck_assert_ptr_nonnull(strstr(out, "ba7816bf"));
    ck_assert_ptr_nonnull(strstr(strstr(out, "ba7816bf") + 1, "ba7816bf"));
    free(out);
}
END_TEST

/* ---- model directories (Hugging Face layout) ------------------------------------------ */

static void put_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static const char dir_tok_json[] =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}}";

/* tu_tpath("hf"): model.safetensors, config.json, tokenizer.json, sub/notes.txt, and a
 * symbolic link "outside" to a file beside the directory. */
static void write_model_dir(void)
{
    struct tdef *t = llama_tensors();
    ck_assert_int_eq(mkdir(tu_tpath("hf"), 0777), 0);
    ck_assert_int_eq(mkdir(tu_tpath("hf/sub"), 0777), 0);
    write_st(tu_tpath("hf/model.safetensors"), t, N_T, NULL);
    put_text(tu_tpath("hf/config.json"), "{\"model_type\":\"llama\"}");
    put_text(tu_tpath("hf/tokenizer.json"), dir_tok_json);
    put_text(tu_tpath("hf/sub/notes.txt"), "notes");
    put_text(tu_tpath("secret"), "not part of the model");
    ck_assert_int_eq(symlink(tu_tpath("secret"), tu_tpath("hf/outside")), 0);
}

START_TEST(directory_whole_files)
{
    struct hash_opts o = HASH_OPTS_INIT;
    char *files[1], *out, line[1024], hex[SHA256_HEX_LEN + 1], dir[TU_TPATH_MAX];
    const char *names[] = { "config.json", "model.safetensors", "sub/notes.txt",
                            "tokenizer.json" };
    const char *prev;
    uint8_t *data;
    size_t n;

    write_model_dir();
    snprintf(dir, sizeof dir, "%s", tu_tpath("hf"));   /* tu_tpath's slots are reused */
    files[0] = dir;
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    /* one sha256sum line per regular file, sorted by relative path; the link is skipped */
    prev = out;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char rel[64];
        const char *at;
        snprintf(rel, sizeof rel, "hf/%s", names[i]);
        data = tu_slurp(tu_tpath(rel), &n);
        tu_sha_hex(data, n, hex);
        free(data);
        snprintf(line, sizeof line, "%s  %s\n", hex, tu_tpath(rel));
        at = strstr(out, line);
        ck_assert_msg(at != NULL, "no line '%s' in:\n%s", line, out);
        ck_assert_msg(at >= prev, "'%s' out of order in:\n%s", rel, out);
        prev = at;
    }
    ck_assert_ptr_null(strstr(out, "outside"));
    ck_assert_ptr_null(strstr(out, "secret"));
    free(out);
    /* and our own --check reads it back */
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    put_text(tu_tpath("sums"), out);
    free(out);
    o.check = tu_tpath("sums");   /* used before 8 more tu_tpath calls */
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
    ck_assert_int_eq(run(&o, 0, files, &out), 0);
    free(out);
}
END_TEST

static void directory_manifest(int format)
{
    struct hash_opts o = HASH_OPTS_INIT;
    char *files[1], *out, *man, dir[TU_TPATH_MAX], mpath[TU_TPATH_MAX];
    struct model m;
    struct err e = ERR_INIT;
    uint64_t off;
    size_t n;

    write_model_dir();
    snprintf(dir, sizeof dir, "%s", tu_tpath("hf"));   /* tu_tpath's slots are reused */
    files[0] = dir;
    snprintf(mpath, sizeof mpath, "%s", tu_tpath("man"));
    o.output = mpath;
    o.format = format;
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
    man = tu_slurp_str(tu_tpath("man"), &n);
    ck_assert_ptr_nonnull(strstr(man, "hf/tokenizer.json"));
    ck_assert_ptr_nonnull(strstr(man, "hf/config.json"));
    ck_assert_ptr_nonnull(strstr(man, "hf/sub/notes.txt"));
    ck_assert_ptr_nonnull(strstr(man, "hf/model.safetensors"));
    ck_assert_ptr_null(strstr(man, "outside"));
    free(man);

    o = (struct hash_opts)HASH_OPTS_INIT;
    o.check = mpath;
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
    ck_assert_int_eq(run(&o, 0, files, &out), 0);   /* the manifest's own paths */
    free(out);

    /* a changed tokenizer is a mismatched file, named relative to the directory */
    put_text(tu_tpath("hf/tokenizer.json"),
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ba\":2},"
             "\"merges\":[\"b a\"]}}");
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    ck_assert_msg(strstr(out, "file 'tokenizer.json': MISMATCH") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "EXTRA"));
    ck_assert_ptr_null(strstr(out, "MISSING"));
    free(out);
    put_text(tu_tpath("hf/tokenizer.json"), dir_tok_json);

    /* an added file is extra, a removed one missing */
    put_text(tu_tpath("hf/sub/added.txt"), "new");
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    ck_assert_msg(strstr(out, "file 'sub/added.txt': EXTRA") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(unlink(tu_tpath("hf/sub/added.txt")), 0);
    ck_assert_int_eq(unlink(tu_tpath("hf/config.json")), 0);
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    ck_assert_msg(strstr(out, "file 'config.json': MISSING") != NULL, "%s", out);
    free(out);
    put_text(tu_tpath("hf/config.json"), "{\"model_type\":\"llama\"}");

    /* a renamed directory still checks (paths are relative to the model's entry) */
    ck_assert_int_eq(rename(tu_tpath("hf"), tu_tpath("hf2")), 0);
    snprintf(dir, sizeof dir, "%s", tu_tpath("hf2"));
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);

    /* the weights are judged by their tensors, not by the file's bytes */
    ck_assert_int_eq(model_open(&m, tu_tpath("hf2/model.safetensors"), &e), 0);
    off = model_tensor_find(&m, "blk.0.attn_v.weight")->off + 3;
    model_close(&m);
    flip_bit(tu_tpath("hf2/model.safetensors"), off);
    ck_assert_int_eq(run(&o, 1, files, &out), 1);
    ck_assert_msg(strstr(out, "tensor 'blk.0.attn_v.weight': MISMATCH") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "file 'model.safetensors'"));
    free(out);
}

START_TEST(directory_manifest_json)
{
    directory_manifest(HASH_FMT_JSON);
}
END_TEST

START_TEST(directory_manifest_text)
{
    directory_manifest(HASH_FMT_TEXT);
}
END_TEST

/* ---- the shared third-party fixtures -------------------------------------------------- */

static const char *const quants[] = { "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K", "IQ4_XS" };

/* String member key of object obj as a C string into buf. */
static void jget(const struct json_doc *d, int obj, const char *key, char *buf, size_t cap)
{
    struct sbuf b = SBUF_INIT(4096);
    struct err e = ERR_INIT;
    int i = json_get(d, obj, key);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(json_str(d, i, &b, &e), 0);
    snprintf(buf, cap, "%.*s", (int)b.len, b.p ? b.p : "");
    sbuf_release(&b);
}

START_TEST(shared_fixture_hashes)
{
    char dir[512], path[1024], ref[1024], want[128], name[256], hex[SHA256_HEX_LEN + 1];
    struct mfile mf;
    struct json_doc d;
    struct err e = ERR_INIT;
    struct hash_model h;
    uint8_t sha[SHA256_LEN];
    int tens, j;

    if (!tu_need_shared("gguf"))
        return;
    snprintf(dir, sizeof dir, "%s/gguf", tu_shared_dir());
    snprintf(path, sizeof path, "%s/tiny-llama-small-%s.gguf", dir, quants[_i]);
    snprintf(ref, sizeof ref, "%s/refs/tiny-llama-small-%s.tensors.json", dir, quants[_i]);
    ck_assert_int_eq(mfile_open(&mf, ref, &e), 0);
    ck_assert_int_eq(json_parse(&d, (const char *)mf.data, mf.size, 0, ref, &e), 0);
    /* whole file == file_sha256 */
    ck_assert_int_eq(hash_file(path, sha, NULL, &e), 0);
    sha256_hex(sha, hex);
    jget(&d, 0, "file_sha256", want, sizeof want);
    ck_assert_str_eq(hex, want);
    /* per tensor == sha256_raw; content == sha256_f32 except llama q/k (un-permuted here) */
    hash_path(path, HASH_WANT_RAW | HASH_WANT_CONTENT, &h);
    tens = json_get(&d, 0, "tensors");
    ck_assert_uint_eq((uint64_t)d.tok[tens].size, h.n_tensors);
    j = tens + 1;
    for (int k = 0; k < d.tok[tens].size; k++, j = json_next(&d, j)) {
        const struct hash_tensor *t;
        jget(&d, j, "name", name, sizeof name);
        t = find(&h, name);
        ck_assert_ptr_nonnull(t);
        jget(&d, j, "sha256_raw", want, sizeof want);
        sha256_hex(t->sha, hex);
        ck_assert_str_eq(hex, want);
        jget(&d, j, "sha256_f32", want, sizeof want);
        sha256_hex(t->content, hex);
        if (strstr(name, "attn_q.") || strstr(name, "attn_k.")) {
            ck_assert_int_eq(t->unpermuted, 1);
            ck_assert_str_ne(hex, want);
        } else {
            ck_assert_msg(strcmp(hex, want) == 0, "%s %s: content %s, ggml %s", quants[_i], name,
                          hex, want);
        }
    }
    hash_model_release(&h);
    json_release(&d);
    mfile_close(&mf);
}
END_TEST

START_TEST(shared_fixture_check_gguf_hash)
{
    char dir[512], path[1024], man[1024], *files[1], *out;
    struct hash_opts o = HASH_OPTS_INIT;
    struct model m;
    struct err e = ERR_INIT;
    struct slice saved;
    uint64_t k;

    if (!tu_need_shared("gguf"))
        return;
    snprintf(dir, sizeof dir, "%s/gguf", tu_shared_dir());
    snprintf(path, sizeof path, "%s/tiny-llama-small-%s.gguf", dir, quants[_i]);
    snprintf(man, sizeof man, "%s/refs/tiny-llama-small-%s.gguf-hash.txt", dir, quants[_i]);
    o.check = man;
    files[0] = path;
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
    /* one bit flipped in any tensor: that tensor, and only it, is named; exit 1 */
    ck_assert_int_eq(model_open(&m, path, &e), 0);
    for (uint64_t i = 0; i < m.n_tensors; i++) {
        char want[300];
        copy_file(path, tu_tpath("flip.gguf"));
        flip_bit(tu_tpath("flip.gguf"), m.tensors[i].off + (m.tensors[i].size * 7 / 13));
        files[0] = (char *)tu_tpath("flip.gguf");
        ck_assert_int_eq(run(&o, 1, files, &out), 1);
        snprintf(want, sizeof want, "tensor '%.*s': MISMATCH", (int)m.tensors[i].name.n,
                 m.tensors[i].name.p);
        ck_assert_msg(strstr(out, want) != NULL, "%s", out);
        ck_assert_ptr_null(strstr(strstr(out, "MISMATCH") + 1, "MISMATCH"));
        free(out);
    }
    /* metadata edited and tensors reordered (rewritten by our GGUF writer): still green */
    for (k = 0; k < m.n_kv && !slice_eq_cstr(m.kv[k].key, "general.name"); k++)
        ;
    ck_assert_uint_lt(k, m.n_kv);
    saved = m.kv[k].val.v.s;
    m.kv[k].val.v.s = slice_from_cstr("an edited name");
    for (uint64_t i = 0; i < m.n_tensors / 2; i++) {
        struct model_tensor tmp = m.tensors[i];
        m.tensors[i] = m.tensors[m.n_tensors - 1 - i];
        m.tensors[m.n_tensors - 1 - i] = tmp;
    }
    ck_assert_msg(gguf_write(&m, tu_tpath("edited.gguf"), NULL, &e) == 0, "%s", e.msg);
    m.kv[k].val.v.s = saved;
    model_close(&m);
    files[0] = (char *)tu_tpath("edited.gguf");
    ck_assert_int_eq(run(&o, 1, files, &out), 0);
    free(out);
}
END_TEST


/* ---- the canonical keys of the model hash (formats/canon.h) ----------------------- */

static const struct canon_key *key_of(const struct hash_model *h, const char *k)
{
    for (uint64_t i = 0; i < h->n_keys; i++)
        if (strcmp(h->keys[i].key, k) == 0)
            return &h->keys[i];
    return NULL;
}

START_TEST(canon_rules_decide)
{
    static const struct { const char *key; int counts; } cases[] = {
        { "general.architecture", 1 }, { "general.name", 0 }, { "general.license", 0 },
        { "general.alignment", 0 }, { "general.source.url", 0 }, { "split.count", 0 },
        { "apr_tools.kv", 0 }, { "hf.config.hidden_act", 0 },
        { "safetensors.metadata.format", 0 }, { "tokenizer.huggingface.json", 0 },
        { "quantize.imatrix.file", 0 }, { "llama.block_count", 1 },
        { "llama.rope.freq_base", 1 }, { "tokenizer.ggml.tokens", 1 },
        { "tokenizer.chat_template", 1 }, { "tokenizer.ggml.add_bos_token", 1 },
        { "qwen2.block_count", 1 }, { "custom.key", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(canon_rule_for(slice_from_cstr(cases[i].key), "llama")->counts ==
                      cases[i].counts, "%s", cases[i].key);
}
END_TEST

/* The hash of one value's canonical encoding. */
static void val_hash(const struct model_val *v, uint8_t out[SHA256_LEN])
{
    struct sha256 h;
    struct err e = ERR_INIT;
    ck_assert_int_eq(sha256_init(&h, &e), 0);
    ck_assert_int_eq(canon_hash_val(&h, v, 0, &e), 0);
    ck_assert_int_eq(sha256_final(&h, out, &e), 0);
}

START_TEST(canon_value_types)
{
    /* integer widths and signedness, f32 vs f64 agree; bool and int, 1e-5 and 1e-6 do not */
    struct model_val a, b;
    uint8_t x[SHA256_LEN], y[SHA256_LEN];

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.type = MV_U32; a.v.u = 4096;
    b.type = MV_I64; b.v.i = 4096;
    val_hash(&a, x);
    val_hash(&b, y);
    ck_assert_mem_eq(x, y, SHA256_LEN);
    b.type = MV_U64; b.v.u = 4096;
    val_hash(&b, y);
    ck_assert_mem_eq(x, y, SHA256_LEN);
    a.type = MV_F32; a.v.f = (double)1e-5f;    /* GGUF's float32 */
    b.type = MV_F64; b.v.f = 1e-5;             /* config.json's number */
    val_hash(&a, x);
    val_hash(&b, y);
    ck_assert_mem_eq(x, y, SHA256_LEN);
    b.v.f = 1e-6;
    val_hash(&b, y);
    ck_assert_int_ne(memcmp(x, y, SHA256_LEN), 0);
    a.type = MV_BOOL; a.v.u = 1;
    b.type = MV_U8; b.v.u = 1;
    val_hash(&a, x);
    val_hash(&b, y);
    ck_assert_int_ne(memcmp(x, y, SHA256_LEN), 0);
    a.type = MV_STR; a.v.s = slice_from_cstr("ab");
    b.type = MV_STR; b.v.s = slice_from_cstr("ac");
    val_hash(&a, x);
    val_hash(&b, y);
    ck_assert_int_ne(memcmp(x, y, SHA256_LEN), 0);
}
END_TEST

START_TEST(model_hash_covers_keys)
{
    /* blind to key order, descriptive and provenance keys, split keys, alignment and
     * derived keys; not to a chat template, a tokenizer string or a hyperparameter */
    static const struct kvdef base[] = {
        { "general.architecture", 1, "llama", 0 },
        { "general.name", 1, "tiny", 0 },
        { "llama.attention.head_count", 0, NULL, 2 },
        { "llama.attention.head_count_kv", 0, NULL, 1 },
        { "llama.embedding_length", 0, NULL, 8 },
        { "tokenizer.ggml.model", 1, "gpt2", 0 },
        { "tokenizer.chat_template", 1, "{{ messages }}", 0 },
    };
    static const struct kvdef other[] = {
        { "tokenizer.chat_template", 1, "{{ messages }}", 0 },
        { "apr_tools.source", 1, "somewhere", 0 },
        { "llama.attention.key_length", 0, NULL, 4 },   /* = 8 / 2: derived */
        { "general.alignment", 0, NULL, 64 },
        { "split.count", 0, NULL, 1 },
        { "split.no", 0, NULL, 0 },
        { "tokenizer.ggml.model", 1, "gpt2", 0 },
        { "llama.embedding_length", 0, NULL, 8 },
        { "llama.attention.head_count_kv", 0, NULL, 1 },
        { "general.license", 1, "mit", 0 },
        { "llama.attention.head_count", 0, NULL, 2 },
        { "general.name", 1, "renamed", 0 },
        { "general.architecture", 1, "llama", 0 },
    };
    struct tdef *t = llama_tensors();
    struct kvdef kv[7];
    struct hash_model a, b, c, d;

    write_gguf(tu_tpath("a.gguf"), t, N_T, base, 7);
    write_gguf(tu_tpath("b.gguf"), t, N_T, other, 13);
    memcpy(kv, base, sizeof kv);
    kv[6].s = "{{ messages | reverse }}";
    write_gguf(tu_tpath("c.gguf"), t, N_T, kv, 7);
    memcpy(kv, base, sizeof kv);
    kv[2].u = 4;
    write_gguf(tu_tpath("d.gguf"), t, N_T, kv, 7);
    hash_path(tu_tpath("a.gguf"), HASH_WANT_RAW, &a);
    hash_path(tu_tpath("b.gguf"), HASH_WANT_RAW, &b);
    hash_path(tu_tpath("c.gguf"), HASH_WANT_RAW, &c);
    hash_path(tu_tpath("d.gguf"), HASH_WANT_RAW, &d);
    ck_assert_uint_eq(a.n_keys, 6);
    ck_assert_ptr_null(key_of(&a, "general.name"));
    ck_assert_ptr_null(key_of(&b, "llama.attention.key_length"));
    ck_assert_mem_eq(a.model_hash, b.model_hash, SHA256_LEN);
    ck_assert_int_ne(memcmp(a.model_hash, c.model_hash, SHA256_LEN), 0);
    ck_assert_int_ne(memcmp(a.model_hash, d.model_hash, SHA256_LEN), 0);
    /* the tensors are the same: the tensor hash (older manifests) does not see it */
    ck_assert_mem_eq(a.tensor_hash, c.tensor_hash, SHA256_LEN);
    /* exactly the edited key differs */
    for (uint64_t i = 0; i < a.n_keys; i++) {
        const struct canon_key *k = &a.keys[i];
        ck_assert_int_eq(memcmp(k->sha, key_of(&c, k->key)->sha, SHA256_LEN) != 0,
                         strcmp(k->key, "tokenizer.chat_template") == 0);
        ck_assert_int_eq(memcmp(k->sha, key_of(&d, k->key)->sha, SHA256_LEN) != 0,
                         strcmp(k->key, "llama.attention.head_count") == 0);
    }
    hash_model_release(&a);
    hash_model_release(&b);
    hash_model_release(&c);
    hash_model_release(&d);
}
END_TEST

Suite *hash_suite(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("core");
    TCase *fx = tcase_create("shared");

    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, file_known_vectors);
    tcase_add_test(tc, model_hash_invariance);
    tcase_add_test(tc, model_hash_record_encoding);
    tcase_add_test(tc, canon_rules_decide);
    tcase_add_test(tc, canon_value_types);
    tcase_add_test(tc, model_hash_covers_keys);
    tcase_add_test(tc, metadata_hash_encoding);
    tcase_add_test(tc, bit_flip_detected);
    tcase_add_test(tc, manifest_roundtrip_json);
    tcase_add_test(tc, manifest_roundtrip_text);
    tcase_add_test(tc, manifest_json_fields);
    tcase_add_test(tc, llama_gguf_hash_manifest);
    tcase_add_test(tc, sha256sum_manifest);
    tcase_add_test(tc, content_across_layouts);
    tcase_add_test(tc, content_qwen2_names_only);
    tcase_add_test(tc, gguf_and_apr_conversion_agree);
    tcase_add_test(tc, verify_source);
    tcase_add_test(tc, multi_file_worst_status);
    tcase_add_test(tc, directory_whole_files);
    tcase_add_test(tc, directory_manifest_json);
    tcase_add_test(tc, directory_manifest_text);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(fx, tu_setup, tu_teardown);
    tcase_set_timeout(fx, 60);
    tcase_add_loop_test(fx, shared_fixture_hashes, 0, 6);
    tcase_add_loop_test(fx, shared_fixture_check_gguf_hash, 0, 6);
    suite_add_tcase(s, fx);
    return s;
}
