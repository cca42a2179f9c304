/*
 * check_st.c - SafeTensors reader and writer (formats/safetensors).
 *
 * Real files: the transformers 5 fixtures in $APR_SHARED_FIXTURES/hf (default
 * ../shared/fixtures; the tests that need them skip with a message when absent) are
 * read as a file and as a directory, and every tensor is checked against the JSON
 * header parsed independently here.  Generated files (mkdtemp under /tmp) cover
 * shards, hostile indexes, config.json styles, unaligned data, zero-size tensors and
 * scalars.  A table of malformed headers checks each rejection's code and message;
 * every truncation and byte flips over every header byte must fail cleanly (run
 * under ASan by make check-asan).  The writer is checked by round trips, byte
 * identity with safetensors' own output, and sharding.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/json.h"
#include "../../common/rd.h"
#include "../../common/sha256.h"
#include "../../formats/model.h"
#include "../../formats/safetensors/st.h"
#include "tu.h"
#include "../../common/banned.h"

/* ---- helpers */

struct buf {
    uint8_t *p;
    size_t   n;
};

static void put_file(const char *dir, const char *name, const void *p, size_t n)
{
    char *path = tu_path(dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    free(path);
}

static void put_str(const char *dir, const char *name, const char *s)
{
    put_file(dir, name, s, strlen(s));
}

/*
 * A SafeTensors file: u64 N (declared_n, or the header length when UINT64_MAX), the
 * header text, then data_n data bytes (byte i = i * 7 + 1).
 */
static struct buf st_mk_n(uint64_t declared_n, const char *hdr, size_t hdr_n, size_t data_n)
{
    struct buf b;
    b.n = 8 + hdr_n + data_n;
    b.p = malloc(b.n);
    ck_assert_ptr_nonnull(b.p);
    put_le64(b.p, declared_n == UINT64_MAX ? hdr_n : declared_n);
    memcpy(b.p + 8, hdr, hdr_n);
    for (size_t i = 0; i < data_n; i++)
        b.p[8 + hdr_n + i] = (uint8_t)(i * 7 + 1);
    return b;
}

static struct buf st_mk(const char *hdr, size_t data_n)
{
    return st_mk_n(UINT64_MAX, hdr, strlen(hdr), data_n);
}

static void st_put(const char *dir, const char *name, const char *hdr, size_t data_n)
{
    struct buf b = st_mk(hdr, data_n);
    put_file(dir, name, b.p, b.n);
    free(b.p);
}

static int model_zeroed(const struct model *m)
{
    return m->n_tensors == 0 && m->tensors == NULL && m->n_kv == 0 && m->kv == NULL &&
           m->files == NULL && m->path == NULL && m->arena == NULL;
}

/* Path of hf/<name>/<file> in the shared fixtures, or NULL (skip) when missing. */
static char *fixture(const char *name, const char *file)
{
    char rel[1024];

    snprintf(rel, sizeof rel, "hf/%s%s%s", name, file ? "/" : "", file ? file : "");
    if (!tu_need_shared(rel))
        return NULL;
    return tu_path(tu_shared_dir(), rel);
}

static void kv_want_u(const struct model *m, const char *key, enum model_vtype t, uint64_t want)
{
    const struct model_kv *kv = model_kv_find(m, key);
    ck_assert_msg(kv != NULL, "key '%s' missing", key);
    ck_assert_msg(kv->val.type == t, "key '%s' has type %s", key, model_vtype_name(kv->val.type));
    ck_assert_uint_eq(kv->val.v.u, want);
}

static void kv_want_f32(const struct model *m, const char *key, float want)
{
    const struct model_kv *kv = model_kv_find(m, key);
    ck_assert_msg(kv != NULL, "key '%s' missing", key);
    ck_assert_msg(kv->val.type == MV_F32, "key '%s' has type %s", key,
                  model_vtype_name(kv->val.type));
    ck_assert_msg(kv->val.v.f == (double)want, "key '%s' = %g, want %g", key, kv->val.v.f,
                  (double)want);
}

static void kv_want_str(const struct model *m, const char *key, const char *want)
{
    struct slice s;
    ck_assert_msg(model_kv_get_str(m, key, &s) == 0, "string key '%s' missing", key);
    ck_assert_msg(slice_eq_cstr(s, want), "key '%s' = '%.*s', want '%s'", key, (int)s.n, s.p,
                  want);
}

/* ---- (1) the transformers fixtures, checked against their headers */

/*
 * Parse the header of the file at path with json.h (independently of st_read.c) and
 * check every tensor of m (whose file index is fi) against it.  Returns the number
 * of tensor entries.
 */
static uint64_t check_against_header(const struct model *m, uint32_t fi, const char *path)
{
    struct buf b;
    struct json_doc d;
    struct err e = ERR_INIT;
    uint64_t hlen, n = 0, prev_begin = 0;
    int k = 1;

    b.p = tu_slurp(path, &b.n);
    hlen = le64(b.p);
    ck_assert_int_eq(json_parse(&d, (const char *)b.p + 8, hlen, 8, path, &e), 0);
    for (int j = 0; j < d.tok[0].size; j++, k = json_next(&d, k + 1)) {
        struct slice name = json_raw(&d, k);
        const struct model_tensor *t;
        int v = k + 1, sh, of, dt;
        uint64_t begin, end;

        if (slice_eq_cstr(name, "__metadata__"))
            continue;
        n++;
        t = model_tensor_find_slice(m, name);
        ck_assert_msg(t != NULL, "tensor '%.*s' missing", (int)name.n, name.p);
        dt = json_get(&d, v, "dtype");
        sh = json_get(&d, v, "shape");
        of = json_get(&d, v, "data_offsets");
        ck_assert_int_eq(t->dtype, dtype_from_st(json_raw(&d, dt).p, json_raw(&d, dt).n));
        ck_assert_int_eq(t->n_dims, d.tok[sh].size);
        for (int i = 0; i < t->n_dims; i++) {
            uint64_t dim;
            ck_assert_int_eq(json_u64(&d, sh + 1 + i, &dim, "dim", &e), 0);
            ck_assert_int_eq(t->shape[i], (int64_t)dim);
        }
        ck_assert_int_eq(json_u64(&d, of + 1, &begin, "begin", &e), 0);
        ck_assert_int_eq(json_u64(&d, of + 2, &end, "end", &e), 0);
        ck_assert_uint_eq(t->rel_off, begin);
        ck_assert_uint_eq(t->size, end - begin);
        ck_assert_uint_eq(t->off, 8 + hlen + begin);
        ck_assert_uint_eq(t->file, fi);
        ck_assert_uint_eq(t->stored_dtype, (uint32_t)t->dtype);
        ck_assert_ptr_eq(t->data, m->files[fi].data + t->off);
        ck_assert(memcmp(t->data, b.p + 8 + hlen + begin, t->size) == 0);
    }
    /* model order = file order */
    for (uint64_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].file == fi) {
            ck_assert_uint_ge(m->tensors[i].rel_off, prev_begin);
            prev_begin = m->tensors[i].rel_off;
        }
    json_release(&d);
    free(b.p);
    return n;
}

START_TEST(test_fixture_qwen2_file)
{
    char *p = fixture("qwen2-f32", "model.safetensors");
    struct model m;
    struct err e = ERR_INIT;
    const struct model_tensor *t;
    const struct model_kv *kv;

    if (!p)
        return;
    ck_assert_msg(st_open(&m, p, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.format, MODEL_FMT_SAFETENSORS);
    ck_assert_int_eq(m.version, 0);
    ck_assert_uint_eq(m.alignment, 1);
    ck_assert_uint_eq(m.n_files, 1);
    ck_assert_uint_eq(m.data_off, 8 + 4080);
    ck_assert_uint_eq(m.header_size, 8 + 4080);
    ck_assert_uint_eq(m.total_size, 8797688);
    /* 3 layers x (q,k,v,o + q,k,v biases + gate,up,down + 2 norms) + embed, norm, head */
    ck_assert_uint_eq(m.n_tensors, 39);
    ck_assert_uint_eq(check_against_header(&m, 0, p), 39);
    t = &m.tensors[0];
    ck_assert(slice_eq_cstr(t->name, "lm_head.weight"));
    ck_assert_int_eq(t->dtype, DT_F32);
    ck_assert_int_eq(t->n_dims, 2);
    ck_assert_int_eq(t->shape[0], 1024);
    ck_assert_int_eq(t->shape[1], 256);
    ck_assert_int_eq(t->shape[2], 1);
    ck_assert_int_eq(t->n_elems, 1024 * 256);
    ck_assert_uint_eq(t->off, 8 + 4080);
    t = model_tensor_find(&m, "model.layers.2.self_attn.k_proj.bias");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->n_dims, 1);
    ck_assert_int_eq(t->shape[0], 64);
    ck_assert_ptr_nonnull(model_tensor_find(&m, "model.layers.0.self_attn.q_proj.bias"));
    ck_assert_ptr_nonnull(model_tensor_find(&m, "model.layers.1.self_attn.v_proj.bias"));

    /* config.json: transformers 5 rope_parameters */
    kv_want_str(&m, "general.architecture", "qwen2");
    ck_assert(slice_eq_cstr(m.kv[0].key, "general.architecture"));
    kv_want_u(&m, "qwen2.context_length", MV_U32, 512);
    kv_want_u(&m, "qwen2.embedding_length", MV_U32, 256);
    kv_want_u(&m, "qwen2.block_count", MV_U32, 3);
    kv_want_u(&m, "qwen2.feed_forward_length", MV_U32, 512);
    kv_want_u(&m, "qwen2.attention.head_count", MV_U32, 8);
    kv_want_u(&m, "qwen2.attention.head_count_kv", MV_U32, 2);
    kv_want_u(&m, "qwen2.vocab_size", MV_U32, 1024);
    kv_want_f32(&m, "qwen2.rope.freq_base", 1e6f);
    kv_want_f32(&m, "qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
    ck_assert_ptr_null(model_kv_find(&m, "qwen2.attention.key_length"));
    ck_assert_ptr_null(model_kv_find(&m, "qwen2.rope.scaling.type"));
    kv_want_str(&m, "safetensors.metadata.format", "pt");
    /* hf.config.*: every key, JSON-typed, in file order */
    kv = model_kv_find(&m, "hf.config.rope_parameters");
    ck_assert_ptr_nonnull(kv);
    ck_assert_int_eq(kv->val.type, MV_OBJ);
    ck_assert_uint_eq(kv->val.v.obj.n, 2);
    kv = model_kv_find(&m, "hf.config.architectures");
    ck_assert_ptr_nonnull(kv);
    ck_assert_int_eq(kv->val.type, MV_ARR);
    ck_assert_int_eq(kv->val.v.arr.elem, MV_STR);
    ck_assert(slice_eq_cstr(kv->val.v.arr.strs[0], "Qwen2ForCausalLM"));
    kv_want_u(&m, "hf.config.hidden_size", MV_U64, 256);
    kv = model_kv_find(&m, "hf.config.bos_token_id");
    ck_assert_ptr_nonnull(kv);
    ck_assert_int_eq(kv->val.type, MV_NULL);
    kv = model_kv_find(&m, "hf.config.tie_word_embeddings");
    ck_assert_ptr_nonnull(kv);
    ck_assert_int_eq(kv->val.type, MV_BOOL);
    ck_assert_uint_eq(kv->val.v.u, 0);
    ck_assert(slice_eq_cstr(m.kv[m.n_kv - 2].key, "hf.config.vocab_size"));
    /* then generation_config.json's text, whole */
    kv = &m.kv[m.n_kv - 1];
    ck_assert(slice_eq_cstr(kv->key, ST_GENCFG_KEY));
    ck_assert_int_eq(kv->val.type, MV_STR);
    ck_assert(slice_starts_with(kv->val.v.s, "{\n  \"_from_model_config\": true,"));
    ck_assert_uint_eq(kv->val.v.s.n, 153);   /* the file's size */
    model_close(&m);
    ck_assert(model_zeroed(&m));
    free(p);
}
END_TEST

START_TEST(test_fixture_llama_dir)
{
    char *dir = fixture("llama-bf16", NULL), *p;
    struct model m;
    struct err e = ERR_INIT;

    if (!dir)
        return;
    p = tu_path(dir, "model.safetensors");
    ck_assert_msg(st_open(&m, dir, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_files, 1);
    /* 3 layers x (q,k,v,o + gate,up,down + 2 norms) + embed, norm, head */
    ck_assert_uint_eq(m.n_tensors, 30);
    ck_assert_uint_eq(check_against_header(&m, 0, p), 30);
    for (uint64_t i = 0; i < m.n_tensors; i++)
        ck_assert_int_eq(m.tensors[i].dtype, DT_BF16);
    ck_assert_ptr_null(model_tensor_find(&m, "model.layers.0.self_attn.q_proj.bias"));
    kv_want_str(&m, "general.architecture", "llama");
    kv_want_f32(&m, "llama.rope.freq_base", 5e5f);
    kv_want_f32(&m, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_want_u(&m, "llama.attention.head_count", MV_U32, 8);
    kv_want_u(&m, "llama.attention.head_count_kv", MV_U32, 2);
    kv_want_u(&m, "llama.embedding_length", MV_U32, 256);
    kv_want_u(&m, "llama.feed_forward_length", MV_U32, 512);
    kv_want_u(&m, "llama.vocab_size", MV_U32, 1024);
    kv_want_u(&m, "llama.attention.key_length", MV_U32, 32);
    kv_want_u(&m, "llama.attention.value_length", MV_U32, 32);
    model_close(&m);

    /* the same through model_open, as a file and as a directory */
    ck_assert_msg(model_open(&m, p, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.format, MODEL_FMT_SAFETENSORS);
    ck_assert_uint_eq(m.n_tensors, 30);
    kv_want_str(&m, "general.architecture", "llama");
    model_close(&m);
    ck_assert_msg(model_open(&m, dir, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 30);
    model_close(&m);
    free(p);
    free(dir);
}
END_TEST

/* ---- (2) generated files */

/* Two shards + index; shard 1: a [2,2] F32, b [3] F16; shard 2: c [] F32 (scalar),
 * z [0,4] F32 (empty), d [1] I64. */
static const char *const shard1 =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
static const char *const shard2 =
    "{\"__metadata__\":{\"format\":\"pt\",\"extra\":\"2\"},"
    "\"c\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
    "\"z\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[4,4]},"
    "\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[4,12]}}";
static const char *const index_ok =
    "{\n  \"metadata\": {\"total_size\": 34},\n  \"weight_map\": {\n"
    "    \"a\": \"model-00001-of-00002.safetensors\",\n"
    "    \"b\": \"model-00001-of-00002.safetensors\",\n"
    "    \"c\": \"model-00002-of-00002.safetensors\",\n"
    "    \"d\": \"model-00002-of-00002.safetensors\",\n"
    "    \"z\": \"model-00002-of-00002.safetensors\"\n  }\n}\n";

static void put_shards(const char *dir, const char *index)
{
    st_put(dir, "model-00001-of-00002.safetensors", shard1, 22);
    st_put(dir, "model-00002-of-00002.safetensors", shard2, 12);
    if (index)
        put_str(dir, "model.safetensors.index.json", index);
}

static void check_sharded(const struct model *m)
{
    static const char *const order[] = { "a", "b", "c", "z", "d" };
    ck_assert_uint_eq(m->n_files, 2);
    ck_assert_uint_eq(m->n_tensors, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(slice_eq_cstr(m->tensors[i].name, order[i]), "tensor %d is '%.*s'", i,
                      (int)m->tensors[i].name.n, m->tensors[i].name.p);
    ck_assert_uint_eq(m->tensors[0].file, 0);
    ck_assert_uint_eq(m->tensors[1].file, 0);
    ck_assert_uint_eq(m->tensors[2].file, 1);
    ck_assert_uint_eq(m->tensors[4].file, 1);
    /* b: F16 [3], data bytes 16..22 of shard 1 */
    ck_assert_int_eq(m->tensors[1].dtype, DT_F16);
    ck_assert_uint_eq(m->tensors[1].size, 6);
    ck_assert_uint_eq(m->tensors[1].data[0], (uint8_t)(16 * 7 + 1));
    /* c: scalar */
    ck_assert_int_eq(m->tensors[2].n_dims, 0);
    ck_assert_int_eq(m->tensors[2].n_elems, 1);
    ck_assert_uint_eq(m->tensors[2].size, 4);
    /* z: empty */
    ck_assert_int_eq(m->tensors[3].n_dims, 2);
    ck_assert_int_eq(m->tensors[3].n_elems, 0);
    ck_assert_uint_eq(m->tensors[3].size, 0);
    ck_assert_int_eq(m->tensors[4].dtype, DT_I64);
    ck_assert_uint_eq(m->tensors[4].data[0], (uint8_t)(4 * 7 + 1));
    kv_want_str(m, "safetensors.metadata.format", "pt");
    kv_want_str(m, "safetensors.metadata.extra", "2");
}

START_TEST(test_sharded_index)
{
    char *dir = tu_tmpdir_new("check_st"), *ip = tu_path(dir, "model.safetensors.index.json");
    struct model m;
    struct err e = ERR_INIT;
    uint64_t ts;

    put_shards(dir, index_ok);
    put_str(dir, "config.json",
            "{\"model_type\": \"mistral\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
            " \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-05,"
            " \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0},"
            " \"max_position_embeddings\": 4096}");
    ck_assert_msg(st_open(&m, dir, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    ck_assert_int_eq(model_kv_get_u64(&m, "safetensors.index.metadata.total_size", &ts), 0);
    ck_assert_uint_eq(ts, 34);
    /* classic config: top-level rope_theta, rope_scaling; mistral maps to llama */
    kv_want_str(&m, "general.architecture", "llama");
    kv_want_f32(&m, "llama.rope.freq_base", 10000.0f);
    kv_want_u(&m, "llama.attention.head_count_kv", MV_U32, 4);
    kv_want_u(&m, "llama.context_length", MV_U32, 4096);
    kv_want_str(&m, "llama.rope.scaling.type", "linear");
    kv_want_f32(&m, "llama.rope.scaling.factor", 2.0f);
    kv_want_str(&m, "hf.config.model_type", "mistral");
    ck_assert_ptr_null(model_kv_find(&m, "llama.vocab_size"));
    /* group order: GGUF-style keys, then __metadata__, index metadata, hf.config */
    ck_assert(slice_eq_cstr(m.kv[0].key, "general.architecture"));
    ck_assert(slice_starts_with(m.kv[m.n_kv - 1].key, "hf.config."));
    model_close(&m);

    /* through the index file itself, and through model_open */
    ck_assert_msg(st_open(&m, ip, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    model_close(&m);
    ck_assert_msg(model_open(&m, ip, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    model_close(&m);
    ck_assert_msg(model_open(&m, dir, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    model_close(&m);
    free(ip);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(test_dir_shards_without_index)
{
    char *dir = tu_tmpdir_new("check_st");
    struct model m;
    struct err e = ERR_INIT;

    put_shards(dir, NULL);
    ck_assert_msg(st_open(&m, dir, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    model_close(&m);
    tu_tmpdir_free(dir);
}
END_TEST

/* A Hugging Face hub cache: every snapshot file a symlink into ../../blobs/.  The
 * snapshot reads as the model, so does the repository directory (through refs/main or
 * its only snapshot), and st_hf_* say where the snapshot came from and which links
 * stay inside the cache. */
static void hf_link(const char *snap, const char *name)
{
    char target[300], *lp = tu_path(snap, name);
    snprintf(target, sizeof target, "../../blobs/%s", name);
    ck_assert_int_eq(symlink(target, lp), 0);
    free(lp);
}

START_TEST(test_hf_cache)
{
    static const char rev[] = "0123456789abcdef0123456789abcdef01234567";
    char *dir = tu_tmpdir_new("check_st"), *repo = tu_path(dir, "models--Org--tiny-Model-1.5"),
         *blobs = tu_path(repo, "blobs"), *snaps = tu_path(repo, "snapshots"),
         *refs = tu_path(repo, "refs"), *snap = tu_path(snaps, rev), *out, *x;
    char rname[128], rrev[64];
    struct model m;
    struct err e = ERR_INIT;

    ck_assert_int_eq(mkdir(repo, 0755), 0);
    ck_assert_int_eq(mkdir(blobs, 0755), 0);
    ck_assert_int_eq(mkdir(snaps, 0755), 0);
    ck_assert_int_eq(mkdir(snap, 0755), 0);
    put_shards(blobs, index_ok);
    put_str(blobs, "config.json", "{\"model_type\":\"llama\",\"hidden_size\":64}");
    hf_link(snap, "model-00001-of-00002.safetensors");
    hf_link(snap, "model-00002-of-00002.safetensors");
    hf_link(snap, "model.safetensors.index.json");
    hf_link(snap, "config.json");

    /* The snapshot directory, its index and the repository directory (only snapshot). */
    ck_assert_msg(st_open(&m, snap, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    kv_want_str(&m, "general.architecture", "llama");
    model_close(&m);
    x = tu_path(snap, "model.safetensors.index.json");
    ck_assert_msg(model_open(&m, x, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    kv_want_u(&m, "llama.embedding_length", MV_U32, 64);
    model_close(&m);
    free(x);
    ck_assert_msg(model_open(&m, repo, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    kv_want_str(&m, "general.architecture", "llama");
    ck_assert(tu_has_note(&m, "Hugging Face cache repository: read its snapshot "
                              "0123456789abcdef0123456789abcdef01234567"));
    model_close(&m);

    /* Two snapshots: refs/main picks one; without it the choice is the user's. */
    x = tu_path(snaps, "fedcba");
    ck_assert_int_eq(mkdir(x, 0755), 0);
    free(x);
    ck_assert_int_ne(model_open(&m, repo, &e), 0);
    ck_assert_msg(strstr(e.msg, "2 snapshots and no refs/main") != NULL, "%s", e.msg);
    err_clear(&e);
    ck_assert_int_eq(mkdir(refs, 0755), 0);
    put_str(refs, "main", "0123456789abcdef0123456789abcdef01234567\n");
    ck_assert_msg(model_open(&m, repo, &e) == 0, "%s", e.msg);
    check_sharded(&m);
    model_close(&m);
    put_str(refs, "main", "../../../etc");
    ck_assert_int_ne(model_open(&m, repo, &e), 0);
    ck_assert_msg(strstr(e.msg, "refs/main: not a commit name") != NULL, "%s", e.msg);
    err_clear(&e);
    put_str(refs, "main", "fedcba0");
    ck_assert_int_ne(model_open(&m, repo, &e), 0);
    ck_assert_msg(strstr(e.msg, "is not a directory") != NULL, "%s", e.msg);
    err_clear(&e);

    /* Where a snapshot comes from; which links stay inside the cache. */
    ck_assert_int_eq(st_hf_snapshot_repo(snap, rname, sizeof rname, rrev, sizeof rrev), 1);
    ck_assert_str_eq(rname, "Org/tiny-Model-1.5");
    ck_assert_str_eq(rrev, rev);
    ck_assert_int_eq(st_hf_snapshot_repo(repo, rname, sizeof rname, NULL, 0), 0);
    ck_assert_int_eq(st_hf_snapshot_repo(blobs, NULL, 0, NULL, 0), 0);
    x = tu_path(snap, "config.json");
    ck_assert_int_eq(st_hf_link_in_cache(snap, x), 1);
    free(x);
    out = tu_path(dir, "outside.json");
    put_str(dir, "outside.json", "{}");
    x = tu_path(snap, "escape.json");
    ck_assert_int_eq(symlink(out, x), 0);
    ck_assert_int_eq(st_hf_link_in_cache(snap, x), 0);
    ck_assert_int_eq(unlink(x), 0);
    ck_assert_int_eq(symlink("../../blobs/missing", x), 0);   /* dangling */
    ck_assert_int_eq(st_hf_link_in_cache(snap, x), 0);
    ck_assert_int_eq(st_hf_link_in_cache(blobs, x), 0);        /* not a snapshot */
    free(x);
    free(out);

    free(repo);
    free(blobs);
    free(snaps);
    free(refs);
    free(snap);
    tu_tmpdir_free(dir);
}
END_TEST

struct bad_index {
    const char *name;
    const char *index;
    const char *want;
};

static const struct bad_index bad_indexes[] = {
    { "traversal", "{\"weight_map\":{\"a\":\"../model-00001-of-00002.safetensors\"}}",
      "not a plain file name" },
    { "subdir", "{\"weight_map\":{\"a\":\"x/model-00001-of-00002.safetensors\"}}",
      "not a plain file name" },
    { "absolute", "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", "not a plain file name" },
    { "missing tensor",
      "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
      "\"b\":\"model-00001-of-00002.safetensors\",\"q\":\"model-00001-of-00002.safetensors\","
      "\"c\":\"model-00002-of-00002.safetensors\",\"d\":\"model-00002-of-00002.safetensors\","
      "\"z\":\"model-00002-of-00002.safetensors\"}}",
      "tensor 'q' is missing from shard 'model-00001-of-00002.safetensors'" },
    { "wrong shard",
      "{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\","
      "\"b\":\"model-00001-of-00002.safetensors\","
      "\"c\":\"model-00002-of-00002.safetensors\",\"d\":\"model-00002-of-00002.safetensors\","
      "\"z\":\"model-00002-of-00002.safetensors\"}}",
      "tensor 'a' is in shard 'model-00001-of-00002.safetensors', not in" },
    { "unlisted",
      "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
      "\"b\":\"model-00001-of-00002.safetensors\","
      "\"c\":\"model-00002-of-00002.safetensors\",\"d\":\"model-00002-of-00002.safetensors\"}}",
      "tensor 'z' is not listed in the weight_map" },
    { "no weight_map", "{\"metadata\":{}}", "no 'weight_map' object" },
    { "empty weight_map", "{\"weight_map\":{}}", "weight_map is empty" },
    { "shard not string", "{\"weight_map\":{\"a\":1}}", "is not a string" },
    { "missing shard file", "{\"weight_map\":{\"a\":\"nothere.safetensors\"}}", "cannot open" },
    { "bad json", "{\"weight_map\":{\"a\":}", "invalid JSON" },
    { "twice escaped",
      "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
      "\"\\u0061\":\"model-00001-of-00002.safetensors\"}}", "lists tensor 'a' twice" },
};

START_TEST(test_bad_index)
{
    const struct bad_index *b = &bad_indexes[_i];
    char *dir = tu_tmpdir_new("check_st");
    struct model m;
    struct err e = ERR_INIT;

    put_shards(dir, b->index);
    ck_assert_msg(st_open(&m, dir, &e) != 0, "%s: accepted", b->name);
    ck_assert(model_zeroed(&m));
    ck_assert_msg(strstr(e.msg, b->want) != NULL, "%s: message '%s' lacks '%s'", b->name, e.msg,
                  b->want);
    ck_assert(strstr(e.msg, "model.safetensors.index.json") || strstr(e.msg, ".safetensors"));
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(test_two_shards_same_name)
{
    char *dir = tu_tmpdir_new("check_st");
    struct model m;
    struct err e = ERR_INIT;

    st_put(dir, "s1.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    st_put(dir, "s2.safetensors",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
           "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2);
    put_str(dir, "model.safetensors.index.json",
            "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}");
    ck_assert(st_open(&m, dir, &e) != 0);
    ck_assert_msg(strstr(e.msg, "tensor 'a' appears in two shards"), "%s", e.msg);
    ck_assert(model_zeroed(&m));
    /* without an index: still a duplicate */
    {
        char *ip = tu_path(dir, "model.safetensors.index.json");
        unlink(ip);
        free(ip);
    }
    e = (struct err)ERR_INIT;
    ck_assert(st_open(&m, dir, &e) != 0);
    ck_assert_msg(strstr(e.msg, "duplicate tensor name 'a'"), "%s", e.msg);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(test_unaligned)
{
    /* header of 101 bytes: data starts at 109, tensors at odd offsets */
    const char *hdr = "{\"x\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                      "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]}}";
    size_t hn = strlen(hdr);
    struct buf b = st_mk(hdr, 11);
    struct model m;
    struct err e = ERR_INIT;
    float want[2] = { 1.5f, -2.25f }, got[2];

    ck_assert_uint_ne(hn % 8, 0);
    memcpy(b.p + 8 + hn + 3, want, 8);
    ck_assert_msg(st_open_mem(&m, b.p, b.n, "u.safetensors", &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 2);
    ck_assert(slice_eq_cstr(m.tensors[1].name, "f"));
    ck_assert_uint_eq(m.tensors[1].off, 8 + hn + 3);
    ck_assert_uint_eq(m.tensors[1].off % 4, (8 + hn + 3) % 4);
    memcpy(got, m.tensors[1].data, 8);
    ck_assert(got[0] == want[0] && got[1] == want[1]);
    ck_assert_uint_eq(m.data_off, 8 + hn);
    model_close(&m);
    free(b.p);
}
END_TEST

START_TEST(test_zero_size_and_scalar)
{
    /* zero-size tensors may share an offset with each other and with a real one;
     * leading whitespace and space padding are tolerated; extra fields ignored */
    const char *hdr = " \t\n{\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                      "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8],\"x\":[1,{}]},"
                      "\"e2\":{\"dtype\":\"BF16\",\"shape\":[4,0,2],\"data_offsets\":[8,8]},"
                      "\"e3\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                      "\"f4\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[8,11]}}      ";
    struct buf b = st_mk(hdr, 11);
    struct model m;
    struct err e = ERR_INIT;

    ck_assert_msg(st_open_mem(&m, b.p, b.n, "z.safetensors", &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 5);
    ck_assert(slice_eq_cstr(m.tensors[0].name, "e1"));
    ck_assert(slice_eq_cstr(m.tensors[1].name, "e3"));
    ck_assert(slice_eq_cstr(m.tensors[2].name, "s"));
    ck_assert(slice_eq_cstr(m.tensors[3].name, "e2"));
    ck_assert(slice_eq_cstr(m.tensors[4].name, "f4"));
    ck_assert_int_eq(m.tensors[2].n_dims, 0);
    ck_assert_int_eq(m.tensors[2].n_elems, 1);
    ck_assert_int_eq(m.tensors[3].n_elems, 0);
    ck_assert_int_eq(m.tensors[4].dtype, DT_F4);
    ck_assert_uint_eq(m.tensors[4].size, 3);
    ck_assert_uint_eq(m.n_kv, 0);
    model_close(&m);
    free(b.p);

    /* no tensors at all: legal, and then there may be no data */
    b = st_mk("{}", 0);
    ck_assert_msg(st_open_mem(&m, b.p, b.n, "empty", &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 0);
    model_close(&m);
    free(b.p);
}
END_TEST

START_TEST(test_config_variants)
{
    char *dir = tu_tmpdir_new("check_st"), *f = tu_path(dir, "w.safetensors");
    struct model m;
    struct err e = ERR_INIT;

    st_put(dir, "w.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);

    /* no config: no derived keys */
    ck_assert_msg(st_open(&m, f, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_kv, 0);
    model_close(&m);

    /* architectures fallback, qwen3, yarn in rope_parameters, head_dim */
    put_str(dir, "config.json",
            "{\"architectures\": [\"Qwen3ForCausalLM\"], \"num_attention_heads\": 16,"
            " \"num_key_value_heads\": null, \"head_dim\": 128,"
            " \"rope_parameters\": {\"rope_theta\": 1000000, \"rope_type\": \"yarn\","
            " \"factor\": 4.0, \"original_max_position_embeddings\": 32768}}");
    ck_assert_msg(st_open(&m, f, &e) == 0, "%s", e.msg);
    kv_want_str(&m, "general.architecture", "qwen3");
    kv_want_u(&m, "qwen3.attention.head_count_kv", MV_U32, 16);
    kv_want_u(&m, "qwen3.attention.key_length", MV_U32, 128);
    kv_want_f32(&m, "qwen3.rope.freq_base", 1e6f);
    kv_want_str(&m, "qwen3.rope.scaling.type", "yarn");
    kv_want_f32(&m, "qwen3.rope.scaling.factor", 4.0f);
    kv_want_u(&m, "qwen3.rope.scaling.original_context_length", MV_U32, 32768);
    model_close(&m);

    /* unknown model_type kept as-is; llama3 rope type: no scaling keys, a note;
     * no rope_theta at all: no freq_base */
    put_str(dir, "config.json",
            "{\"model_type\": \"gpt_neox\", \"rope_scaling\": {\"rope_type\": \"llama3\","
            " \"factor\": 8.0}}");
    ck_assert_msg(st_open(&m, f, &e) == 0, "%s", e.msg);
    kv_want_str(&m, "general.architecture", "gpt_neox");
    ck_assert_ptr_null(model_kv_find(&m, "gpt_neox.rope.scaling.type"));
    ck_assert_ptr_null(model_kv_find(&m, "gpt_neox.rope.freq_base"));
    ck_assert_uint_ge(m.n_notes, 1);
    model_close(&m);

    /* a model_type that is no identifier derives nothing */
    put_str(dir, "config.json", "{\"model_type\": \"a.b\\n\", \"hidden_size\": 3}");
    ck_assert_msg(st_open(&m, f, &e) == 0, "%s", e.msg);
    ck_assert_ptr_null(model_kv_find(&m, "general.architecture"));
    kv_want_u(&m, "hf.config.hidden_size", MV_U64, 3);
    model_close(&m);

    /* malformed JSON: an error naming config.json and the offset */
    put_str(dir, "config.json", "{\"model_type\": \"llama\",, }");
    ck_assert(st_open(&m, f, &e) != 0);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "config.json") && strstr(e.msg, "at offset"), "%s", e.msg);
    ck_assert(model_zeroed(&m));

    /* a mapped key of the wrong kind */
    put_str(dir, "config.json", "{\"model_type\": \"llama\", \"hidden_size\": \"big\"}");
    e = (struct err)ERR_INIT;
    ck_assert(st_open(&m, f, &e) != 0);
    ck_assert_msg(strstr(e.msg, "config.json") && strstr(e.msg, "'hidden_size'"), "%s", e.msg);
    put_str(dir, "config.json", "{\"model_type\": \"llama\", \"num_hidden_layers\": 4294967296}");
    e = (struct err)ERR_INIT;
    ck_assert(st_open(&m, f, &e) != 0);
    ck_assert_msg(strstr(e.msg, "does not fit UINT32"), "%s", e.msg);
    put_str(dir, "config.json", "[1]");
    e = (struct err)ERR_INIT;
    ck_assert(st_open(&m, f, &e) != 0);
    ck_assert_msg(strstr(e.msg, "not a JSON object"), "%s", e.msg);
    free(f);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(test_sparse_70b)
{
    /* a 70B-parameter-sized file (sparse): opening it reads the header only */
    char hdr[4096], *dir = tu_tmpdir_new("check_st"), *f = tu_path(dir, "big.safetensors");
    uint64_t off = 0, per = 35000000000ULL;   /* 2 x 35e9 BF16 elements = 140 GB */
    struct rusage r0, r1;
    struct model m;
    struct err e = ERR_INIT;
    FILE *fp;
    int n;

    n = snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < 2; i++) {
        n += snprintf(hdr + n, sizeof hdr - (size_t)n,
                      ",\"w%d\":{\"dtype\":\"BF16\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
                      i, (unsigned long long)per, (unsigned long long)off,
                      (unsigned long long)(off + 2 * per));
        off += 2 * per;
    }
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "}");
    fp = fopen(f, "wb");
    ck_assert_ptr_nonnull(fp);
    {
        uint8_t len8[8];
        put_le64(len8, (uint64_t)n);
        ck_assert_uint_eq(fwrite(len8, 1, 8, fp), 8);
    }
    ck_assert_uint_eq(fwrite(hdr, 1, (size_t)n, fp), (size_t)n);
    ck_assert_int_eq(fclose(fp), 0);
    if (truncate(f, (off_t)(8 + (uint64_t)n + off)) != 0) {
        printf("check_st: SKIP sparse 70B file: cannot size it\n");
        free(f);
        tu_tmpdir_free(dir);
        return;
    }
    getrusage(RUSAGE_SELF, &r0);
    ck_assert_msg(st_open(&m, f, &e) == 0, "%s", e.msg);
    getrusage(RUSAGE_SELF, &r1);
    ck_assert_uint_eq(m.n_tensors, 2);
    ck_assert_uint_eq(m.total_size, 8 + (uint64_t)n + off);
    ck_assert_int_eq(m.tensors[1].n_elems, (int64_t)per);
    ck_assert_msg(r1.ru_maxrss - r0.ru_maxrss < 16 * 1024, "RSS grew by %ld KiB",
                  r1.ru_maxrss - r0.ru_maxrss);
    model_close(&m);
    free(f);
    tu_tmpdir_free(dir);
}
END_TEST

/* ---- (3) malformed input table */

struct bad {
    const char *name;
    const char *hdr;        /* header text (length from strlen unless hdr_n) */
    size_t      hdr_n;
    uint64_t    declared;   /* N as written; UINT64_MAX = the header length */
    size_t      data_n;
    size_t      total;      /* 0, or cut the file to this many bytes */
    enum err_code code;
    const char *want;
};

#define T(dt, sh, b, e) "{\"dtype\":\"" dt "\",\"shape\":" sh ",\"data_offsets\":[" #b "," #e "]}"

static const struct bad bads[] = {
    { "header over 100 MB", "{}", 0, 100000001, 0, 0, ERR_LIMIT, "exceeds the limit" },
    { "N past EOF", "{}", 0, 3, 0, 0, ERR_FORMAT, "bytes that follow it" },
    { "short file", "{}", 0, UINT64_MAX, 0, 5, ERR_FORMAT, "too short" },
    { "empty header", "", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "(empty)" },
    { "blank header", "   ", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "(empty)" },
    { "not JSON", "{\"a\":", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "invalid JSON" },
    { "not JSON 2", "{nope}", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "invalid JSON" },
    { "first byte not {", "[\"a\"]", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "does not start with '{'" },
    { "first byte x", "x{}", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "does not start with '{'" },
    /* bytes after the header's object: named as such, at the offset of the first one */
    { "trailing garbage", "{} x", 0, UINT64_MAX, 0, 0, ERR_FORMAT,
      "1 trailing byte after the header's JSON object (it ends at offset 10; the header, 4 "
      "bytes, may only be padded with spaces): first byte 0x78 at offset 11" },
    { "trailing string", "{} \"x\"", 0, UINT64_MAX, 0, 0, ERR_FORMAT,
      "3 trailing bytes after the header's JSON object (it ends at offset 10; the header, 6 "
      "bytes, may only be padded with spaces): first byte 0x22 at offset 11" },
    { "NUL padding", "{\"a\":" T("U8", "[1]", 0, 1) "}\0\0\0", 56, UINT64_MAX, 1, 0, ERR_FORMAT,
      "3 trailing bytes after the header's JSON object (it ends at offset 61; the header, 56 "
      "bytes, may only be padded with spaces): first byte 0x00 at offset 61" },
    { "stray brace", "{\"a\":" T("U8", "[1]", 0, 1) "}  }", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "1 trailing byte after the header's JSON object (it ends at offset 61; the header, 56 "
      "bytes, may only be padded with spaces): first byte 0x7d at offset 63" },
    { "stray bracket", "{\"a\":\"}\"}]", 0, UINT64_MAX, 0, 0, ERR_FORMAT,
      "first byte 0x5d at offset 17" },
    { "unclosed, then brace", "{\"a\":{}", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "invalid JSON" },
    { "invalid before brace", "{\"a\" 1}}", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "invalid JSON" },
    { "key without value", "{\"a\":" T("U8", "[1]", 0, 1) ",\"b\"}", 0, UINT64_MAX, 1, 0,
      ERR_FORMAT, "object key without a value" },
    { "missing comma", "{\"a\":{\"dtype\":\"U8\" \"shape\":[1],\"data_offsets\":[0,1]}}", 0,
      UINT64_MAX, 1, 0, ERR_FORMAT, "invalid JSON" },
    { "double comma", "{\"a\":" T("U8", "[1,,1]", 0, 1) "}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "invalid JSON: expected a value" },
    { "trailing comma", "{\"a\":" T("U8", "[1]", 0, 1) ",}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "invalid JSON" },
    { "two objects", "{}{}", 0, UINT64_MAX, 0, 0, ERR_FORMAT,
      "2 trailing bytes after the header's JSON object (it ends at offset 10; the header, 4 "
      "bytes, may only be padded with spaces): first byte 0x7b at offset 10" },
    { "NUL in header", "{\"\0\":1}", 7, UINT64_MAX, 0, 0, ERR_FORMAT, "NUL byte" },
    { "NUL after header", "{}\0 ", 4, UINT64_MAX, 0, 0, ERR_FORMAT,
      "first byte 0x00 at offset 10" },
    { "bad UTF-8 in name", "{\"\xff\":" T("U8", "[1]", 0, 1) "}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "invalid UTF-8" },
    { "unknown dtype", "{\"a\":" T("F31", "[1]", 0, 4) "}", 0, UINT64_MAX, 4, 0, ERR_FORMAT,
      "tensor 'a': unknown dtype 'F31'" },
    { "lowercase dtype", "{\"a\":" T("f32", "[1]", 0, 4) "}", 0, UINT64_MAX, 4, 0, ERR_FORMAT,
      "unknown dtype 'f32'" },
    { "dtype not string", "{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,1]}}", 0,
      UINT64_MAX, 1, 0, ERR_FORMAT, "'dtype' is not a string" },
    { "missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 0, UINT64_MAX, 1, 0,
      ERR_FORMAT, "missing 'dtype'" },
    { "missing offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 0, UINT64_MAX, 1, 0,
      ERR_FORMAT, "missing 'data_offsets'" },
    { "entry not object", "{\"a\":[1]}", 0, UINT64_MAX, 0, 0, ERR_FORMAT, "not a JSON object" },
    { "shape not array", "{\"a\":" T("U8", "1", 0, 1) "}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "'shape' is not an array" },
    { "negative shape", "{\"a\":" T("U8", "[-1]", 0, 1) "}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "shape: expected a non-negative integer, got '-1'" },
    { "float shape", "{\"a\":" T("U8", "[1.0]", 0, 1) "}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "expected a non-negative integer, got '1.0'" },
    { "exponent shape", "{\"a\":" T("U8", "[1e0]", 0, 1) "}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "expected a non-negative integer" },
    { "string shape", "{\"a\":" T("U8", "[\"1\"]", 0, 1) "}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "expected a number" },
    { "shape 2^63", "{\"a\":" T("U8", "[9223372036854775808]", 0, 1) "}", 0, UINT64_MAX, 1, 0,
      ERR_FORMAT, "too large" },
    { "shape 2^64", "{\"a\":" T("U8", "[18446744073709551616]", 0, 1) "}", 0, UINT64_MAX, 1, 0,
      ERR_FORMAT, "out of range" },
    { "element overflow", "{\"a\":" T("U8", "[4294967296,4294967296]", 0, 1) "}", 0, UINT64_MAX,
      1, 0, ERR_FORMAT, "element count overflows" },
    { "byte size overflow", "{\"a\":" T("F64", "[4611686018427387904]", 0, 1) "}", 0, UINT64_MAX,
      1, 0, ERR_FORMAT, "overflows" },
    { "too many dims", "{\"a\":" T("U8", "[1,1,1,1,1,1,1,1,1]", 0, 1) "}", 0, UINT64_MAX, 1, 0,
      ERR_LIMIT, "9 dimensions (at most 8 supported)" },
    { "offsets not pair", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 0,
      UINT64_MAX, 1, 0, ERR_FORMAT, "not an array of two integers" },
    { "negative offset", "{\"a\":" T("U8", "[1]", -1, 0) "}", 0, UINT64_MAX, 1, 0, ERR_FORMAT,
      "data_offsets: expected a non-negative integer" },
    { "float offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.0]}}", 0,
      UINT64_MAX, 1, 0, ERR_FORMAT, "data_offsets: expected a non-negative integer" },
    { "END < BEGIN", "{\"a\":" T("U8", "[0]", 4, 0) "}", 0, UINT64_MAX, 4, 0, ERR_FORMAT,
      "ends before it begins" },
    { "size mismatch", "{\"a\":" T("F32", "[2]", 0, 4) "}", 0, UINT64_MAX, 4, 0, ERR_FORMAT,
      "holds 4 bytes, but F32 x 2 elements need 8" },
    { "sub-byte misaligned", "{\"a\":" T("F4", "[3]", 0, 2) "}", 0, UINT64_MAX, 2, 0, ERR_FORMAT,
      "tensor 'a': 3 F4 elements of 4 bits do not fill whole bytes" },
    { "F6 misaligned", "{\"a\":" T("F6_E2M3", "[2]", 0, 2) "}", 0, UINT64_MAX, 2, 0, ERR_FORMAT,
      "2 F6_E2M3 elements of 6 bits" },
    { "out of order with hole",
      "{\"b\":" T("U8", "[4]", 8, 12) ",\"a\":" T("U8", "[4]", 0, 4) "}", 0, UINT64_MAX, 12, 0,
      ERR_FORMAT, "tensor 'b': data_offsets [8, 12) leave a hole: bytes [4, 8)" },
    { "first not at 0", "{\"a\":" T("U8", "[4]", 4, 8) "}", 0, UINT64_MAX, 8, 0, ERR_FORMAT,
      "leave a hole: bytes [0, 4)" },
    { "overlap", "{\"a\":" T("U8", "[8]", 0, 8) ",\"b\":" T("U8", "[4]", 4, 8) "}", 0, UINT64_MAX,
      8, 0, ERR_FORMAT, "tensor 'b': data_offsets [4, 8) overlap tensor 'a' [0, 8)" },
    { "same range twice", "{\"a\":" T("U8", "[4]", 0, 4) ",\"b\":" T("U8", "[4]", 0, 4) "}", 0,
      UINT64_MAX, 4, 0, ERR_FORMAT, "overlap" },
    { "past the data", "{\"a\":" T("U8", "[8]", 0, 8) "}", 0, UINT64_MAX, 4, 0, ERR_FORMAT,
      "past the end of the data (4 bytes)" },
    { "trailing bytes", "{\"a\":" T("U8", "[4]", 0, 4) "}", 0, UINT64_MAX, 6, 0, ERR_FORMAT,
      "2 trailing bytes after the last tensor" },
    { "data but no tensors", "{}", 0, UINT64_MAX, 3, 0, ERR_FORMAT, "3 trailing bytes" },
    { "metadata non-string", "{\"__metadata__\":{\"a\":1}}", 0, UINT64_MAX, 0, 0, ERR_FORMAT,
      "'__metadata__' value of 'a' is not a string" },
    { "metadata nested", "{\"__metadata__\":{\"a\":{}}}", 0, UINT64_MAX, 0, 0, ERR_FORMAT,
      "is not a string" },
    { "metadata not object", "{\"__metadata__\":\"x\"}", 0, UINT64_MAX, 0, 0, ERR_FORMAT,
      "'__metadata__' is not an object of strings" },
    { "metadata null", "{\"__metadata__\":null}", 0, UINT64_MAX, 0, 0, ERR_FORMAT,
      "'__metadata__' is not an object of strings" },
    { "metadata key twice (escaped)", "{\"__metadata__\":{\"a\":\"x\",\"\\u0061\":\"y\"}}", 0,
      UINT64_MAX, 0, 0, ERR_FORMAT, "has key 'a' twice" },
    { "two __metadata__ (escaped)", "{\"__metadata__\":{},\"\\u005f_metadata__\":{}}", 0,
      UINT64_MAX, 0, 0, ERR_FORMAT, "duplicate '__metadata__'" },
    { "duplicate key", "{\"a\":" T("U8", "[1]", 0, 1) ",\"a\":" T("U8", "[1]", 1, 2) "}", 0,
      UINT64_MAX, 2, 0, ERR_FORMAT, "duplicate JSON key 'a'" },
    { "duplicate name (escaped)",
      "{\"a\":" T("U8", "[1]", 0, 1) ",\"\\u0061\":" T("U8", "[1]", 1, 2) "}", 0, UINT64_MAX, 2,
      0, ERR_FORMAT, "duplicate tensor name 'a'" },
    { "bad literal", "{\"a\":" T("U8", "[1]", 0, 1) ",\"b\":tru}", 0, UINT64_MAX, 1, 0,
      ERR_FORMAT, "invalid JSON" },
};

START_TEST(test_malformed)
{
    const struct bad *b = &bads[_i];
    size_t hn = b->hdr_n ? b->hdr_n : strlen(b->hdr);
    struct buf f = st_mk_n(b->declared, b->hdr, hn, b->data_n);
    struct model m;
    struct err e = ERR_INIT;
    uint8_t *exact;
    size_t n = b->total ? b->total : f.n;

    /* an exact-size heap copy, so that ASan catches any over-read */
    exact = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(exact);
    memcpy(exact, f.p, n);
    memset(&m, 0x5A, sizeof m);
    ck_assert_msg(st_open_mem(&m, exact, n, "bad.safetensors", &e) != 0, "%s: accepted", b->name);
    ck_assert(model_zeroed(&m));
    ck_assert_msg(e.code == b->code, "%s: code %s, want %s (%s)", b->name, err_code_name(e.code),
                  err_code_name(b->code), e.msg);
    ck_assert_msg(strstr(e.msg, b->want) != NULL, "%s: message '%s' lacks '%s'", b->name, e.msg,
                  b->want);
    ck_assert_msg(strncmp(e.msg, "bad.safetensors: ", 17) == 0, "%s: '%s' does not name the file",
                  b->name, e.msg);
    if (!strstr(b->name, "duplicate name"))
        ck_assert_msg(e.off != ERR_NO_OFF && strstr(e.msg, " at offset "),
                      "%s: no offset in '%s'", b->name, e.msg);
    free(exact);
    free(f.p);
}
END_TEST

/* ---- (4)(5) truncation and byte flips */

static const char *const small_hdr =
    "{\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\\u00e9\"},"
    "\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
    "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]},"
    "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]},"
    "\"e\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[32,32]}}  ";

START_TEST(test_truncation)
{
    struct buf f = st_mk(small_hdr, 32);
    struct model m;
    struct err e = ERR_INIT;

    ck_assert_msg(st_open_mem(&m, f.p, f.n, "t", &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n_tensors, 4);
    kv_want_str(&m, "safetensors.metadata.k", "v\xc3\xa9");
    model_close(&m);
    for (size_t n = 0; n < f.n; n++) {
        uint8_t *p = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(p);
        memcpy(p, f.p, n);
        e = (struct err)ERR_INIT;
        ck_assert_msg(st_open_mem(&m, p, n, "t", &e) != 0, "length %zu accepted", n);
        ck_assert_msg(e.code == ERR_FORMAT, "length %zu: %s", n, e.msg);
        ck_assert(e.off != ERR_NO_OFF);
        ck_assert(model_zeroed(&m));
        free(p);
    }
    free(f.p);
}
END_TEST

START_TEST(test_byte_flips)
{
    static const uint8_t masks[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF, 0x7F };
    struct buf f = st_mk(small_hdr, 32);
    size_t hend = 8 + strlen(small_hdr);
    int ok = 0, bad = 0;

    for (size_t i = 0; i < hend; i++)
        for (size_t k = 0; k < sizeof masks; k++) {
            struct model m;
            struct err e = ERR_INIT;
            uint8_t *p = malloc(f.n);
            ck_assert_ptr_nonnull(p);
            memcpy(p, f.p, f.n);
            p[i] ^= masks[k];
            if (st_open_mem(&m, p, f.n, "flip", &e) == 0) {
                /* whatever was accepted is consistent */
                for (uint64_t t = 0; t < m.n_tensors; t++)
                    ck_assert(m.tensors[t].off + m.tensors[t].size <= f.n);
                model_close(&m);
                ok++;
            } else {
                ck_assert(e.code != ERR_OK && e.msg[0]);
                ck_assert(model_zeroed(&m));
                bad++;
            }
            free(p);
        }
    ck_assert_int_gt(bad, 0);
    ck_assert_int_gt(ok, 0);   /* e.g. flips inside names or metadata values */
    free(f.p);
}
END_TEST

/* ---- (6) the writer */

static void hash_tensors(const struct model *m, uint8_t (*h)[SHA256_LEN])
{
    struct err e = ERR_INIT;
    for (uint64_t i = 0; i < m->n_tensors; i++)
        ck_assert_int_eq(sha256_buf(m->tensors[i].data, (size_t)m->tensors[i].size, h[i], &e), 0);
}

/* Same tensors (names, dtypes, shapes, bytes) in the same order. */
static void same_tensors(const struct model *a, const struct model *b)
{
    uint8_t (*ha)[SHA256_LEN] = calloc(a->n_tensors + 1, SHA256_LEN);
    uint8_t (*hb)[SHA256_LEN] = calloc(b->n_tensors + 1, SHA256_LEN);

    ck_assert_uint_eq(a->n_tensors, b->n_tensors);
    hash_tensors(a, ha);
    hash_tensors(b, hb);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const struct model_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        ck_assert(slice_eq(x->name, y->name));
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_int_eq(x->n_dims, y->n_dims);
        ck_assert(memcmp(x->shape, y->shape, sizeof x->shape) == 0);
        ck_assert_uint_eq(x->size, y->size);
        ck_assert(memcmp(ha[i], hb[i], SHA256_LEN) == 0);
    }
    free(ha);
    free(hb);
}

static void write_roundtrip(const char *name)
{
    char *src = fixture(name, "model.safetensors"), *dir, *out;
    struct model a, b;
    struct err e = ERR_INIT;
    struct buf x, y;
    struct st_write_opts o = ST_WRITE_OPTS_INIT;

    if (!src)
        return;
    dir = tu_tmpdir_new("check_st");
    out = tu_path(dir, "out.safetensors");
    ck_assert_msg(st_open(&a, src, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_write(&a, out, NULL, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(tu_dir_count(dir), 1);   /* no temporary file left */
    ck_assert_msg(st_open(&b, out, &e) == 0, "%s", e.msg);
    same_tensors(&a, &b);
    kv_want_str(&b, "safetensors.metadata.format", "pt");
    ck_assert_uint_eq((b.data_off - 8) % 8, 0);
    /* safetensors' own output, byte for byte */
    x.p = tu_slurp(src, &x.n);
    y.p = tu_slurp(out, &y.n);
    ck_assert_uint_eq(x.n, y.n);
    ck_assert(memcmp(x.p, y.p, x.n) == 0);
    free(x.p);
    free(y.p);
    model_close(&b);

    /* Rust order: same file here (one dtype, names already sorted) */
    o.flags = ST_WRITE_RUST_ORDER;
    ck_assert_msg(st_write(&a, out, &o, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_open(&b, out, &e) == 0, "%s", e.msg);
    same_tensors(&a, &b);
    model_close(&b);
    unlink(out);

    /* sharded: at most 3 MB of data per shard */
    o.flags = 0;
    o.max_shard_bytes = 3u << 20;
    free(out);
    out = tu_path(dir, "sharded");
    ck_assert_msg(st_write(&a, out, &o, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_open(&b, out, &e) == 0, "%s", e.msg);
    ck_assert_uint_gt(b.n_files, 1);
    ck_assert_int_eq(tu_dir_count(out), (int)b.n_files + 1);
    same_tensors(&a, &b);
    for (uint32_t i = 0; i < b.n_files; i++) {
        uint64_t sz = 0;
        for (uint64_t t = 0; t < b.n_tensors; t++)
            if (b.tensors[t].file == i)
                sz += b.tensors[t].size;
        ck_assert(sz <= o.max_shard_bytes || sz == b.tensors[0].size);
        ck_assert_uint_eq(le64(b.files[i].data) % 8, 0);
    }
    {
        uint64_t ts, sum = 0;
        for (uint64_t t = 0; t < a.n_tensors; t++)
            sum += a.tensors[t].size;
        ck_assert_int_eq(model_kv_get_u64(&b, "safetensors.index.metadata.total_size", &ts), 0);
        ck_assert_uint_eq(ts, sum);
    }
    model_close(&b);

    /* config.json regenerated byte for byte from hf.config.* */
    ck_assert_msg(st_write_config(&a, out, &e) == 0, "%s", e.msg);
    {
        char *c1 = fixture(name, "config.json"), *c2 = tu_path(out, "config.json");
        x.p = tu_slurp(c1, &x.n);
        y.p = tu_slurp(c2, &y.n);
        ck_assert_msg(x.n == y.n && memcmp(x.p, y.p, x.n) == 0, "config.json differs:\n%.*s",
                      (int)y.n, (const char *)y.p);
        free(x.p);
        free(y.p);
        free(c1);
        free(c2);
    }
    /* and reading the written directory maps it again */
    ck_assert_msg(st_open(&b, out, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(b.n_kv, a.n_kv + 1);   /* + safetensors.index.metadata.total_size */
    model_close(&b);
    model_close(&a);
    free(out);
    free(src);
    tu_tmpdir_free(dir);
}

START_TEST(test_write_roundtrip_qwen2) { write_roundtrip("qwen2-f32"); }
END_TEST

START_TEST(test_write_roundtrip_llama) { write_roundtrip("llama-bf16"); }
END_TEST

START_TEST(test_write_generated)
{
    /* mixed dtypes, zero-size, scalar, unaligned source */
    const char *hdr = "{\"__metadata__\":{\"x\":\"\\\"q\\\"\\n\"},"
                      "\"m\":" T("F16", "[3]", 0, 6) ",\"a\":" T("F32", "[1]", 6, 10) ","
                      "\"z\":" T("I64", "[0,2]", 10, 10) ",\"s\":" T("I64", "[]", 10, 18) ","
                      "\"k\":" T("U8", "[2]", 18, 20) "}";
    static const char *const rust[] = { "s", "z", "a", "m", "k" };
    struct buf f = st_mk(hdr, 20);
    char *dir = tu_tmpdir_new("check_st"), *out = tu_path(dir, "g.safetensors");
    struct model a, b;
    struct err e = ERR_INIT;
    struct st_write_opts o = ST_WRITE_OPTS_INIT;

    ck_assert_msg(st_open_mem(&a, f.p, f.n, "g", &e) == 0, "%s", e.msg);
    ck_assert_msg(st_write(&a, out, NULL, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_open(&b, out, &e) == 0, "%s", e.msg);
    same_tensors(&a, &b);
    kv_want_str(&b, "safetensors.metadata.x", "\"q\"\n");
    ck_assert_uint_eq(b.header_size % 8, 0);
    model_close(&b);

    o.flags = ST_WRITE_RUST_ORDER;
    ck_assert_msg(st_write(&a, out, &o, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_open(&b, out, &e) == 0, "%s", e.msg);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(slice_eq_cstr(b.tensors[i].name, rust[i]), "%d: '%.*s'", i,
                      (int)b.tensors[i].name.n, b.tensors[i].name.p);
    model_close(&b);

    /* tiny shards: every tensor on its own except the zero-size ones */
    o.flags = 0;
    o.max_shard_bytes = 4;
    free(out);
    out = tu_path(dir, "sh");
    ck_assert_msg(st_write(&a, out, &o, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_open(&b, out, &e) == 0, "%s", e.msg);
    same_tensors(&a, &b);
    ck_assert_uint_eq(b.n_files, 4);   /* m | a z | s | k */
    model_close(&b);

    /* one shard's worth: model.safetensors, no index */
    o.max_shard_bytes = 1000;
    free(out);
    out = tu_path(dir, "one");
    ck_assert_msg(st_write(&a, out, &o, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(tu_dir_count(out), 1);
    {
        char *p = tu_path(out, "model.safetensors");
        ck_assert_msg(st_open(&b, p, &e) == 0, "%s", e.msg);
        same_tensors(&a, &b);
        model_close(&b);
        free(p);
    }
    model_close(&a);
    free(out);
    free(f.p);
    tu_tmpdir_free(dir);
}
END_TEST

/* A producer: tensor i is filled with bytes (i + k) & 0xFF, in pieces of 3 bytes;
 * ctx (when set) makes it write one byte too few or too many. */
static int produce(void *ctx, const struct model *m, uint64_t i, struct st_out *out,
                   struct err *e)
{
    int skew = ctx ? *(const int *)ctx : 0;
    uint64_t n = m->tensors[i].size + (uint64_t)(int64_t)skew;
    for (uint64_t k = 0; k < n; k += 3) {
        uint8_t b[3];
        size_t c = n - k < 3 ? (size_t)(n - k) : 3;
        for (size_t j = 0; j < c; j++)
            b[j] = (uint8_t)(i + k + j);
        if (st_out_write(out, b, c, e))
            return -1;
    }
    return 0;
}

START_TEST(test_write_producer)
{
    const char *hdr = "{\"m\":" T("F16", "[3]", 0, 6) ",\"z\":" T("F32", "[0]", 6, 6) ","
                      "\"a\":" T("F32", "[2]", 6, 14) "}";
    struct buf f = st_mk(hdr, 14);
    char *dir = tu_tmpdir_new("check_st"), *out = tu_path(dir, "p.safetensors");
    struct st_write_opts o = ST_WRITE_OPTS_INIT;
    struct model a, b;
    struct err e = ERR_INIT;
    int skew;

    ck_assert_msg(st_open_mem(&a, f.p, f.n, "p", &e) == 0, "%s", e.msg);
    a.tensors[0].data = NULL;   /* a producer needs no source bytes */
    o.tensor_data = produce;
    o.flags = ST_WRITE_RUST_ORDER;   /* a (F32), z (F32), m (F16): i is still the model index */
    ck_assert_msg(st_write(&a, out, &o, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_open(&b, out, &e) == 0, "%s", e.msg);
    ck_assert(slice_eq_cstr(b.tensors[0].name, "a"));
    ck_assert(slice_eq_cstr(b.tensors[2].name, "m"));
    for (uint64_t k = 0; k < 8; k++)
        ck_assert_uint_eq(b.tensors[0].data[k], (uint8_t)(2 + k));
    for (uint64_t k = 0; k < 6; k++)
        ck_assert_uint_eq(b.tensors[2].data[k], (uint8_t)k);
    model_close(&b);
    ck_assert_int_eq(unlink(out), 0);

    /* too few and too many bytes: refused, nothing left behind */
    for (skew = -1; skew <= 1; skew += 2) {
        o.ctx = &skew;
        e = (struct err)ERR_INIT;
        ck_assert(st_write(&a, out, &o, &e) != 0);
        ck_assert_int_eq(e.code, ERR_INTERNAL);
        ck_assert_msg(strstr(e.msg, skew < 0 ? "unwritten" : "past the tensor's end"), "%s", e.msg);
        ck_assert_int_eq(tu_dir_count(dir), 0);
    }
    /* without a producer, NULL data is an error */
    e = (struct err)ERR_INIT;
    ck_assert(st_write(&a, out, NULL, &e) != 0);
    ck_assert_msg(strstr(e.msg, "(no data)"), "%s", e.msg);
    model_close(&a);
    free(out);
    free(f.p);
    tu_tmpdir_free(dir);
}
END_TEST

START_TEST(test_write_refuses)
{
    uint8_t data[18] = { 0 };
    struct model_tensor t;
    struct model_kv kv;
    struct model m;
    struct err e = ERR_INIT;
    char *dir = tu_tmpdir_new("check_st"), *out = tu_path(dir, "q.safetensors");

    memset(&m, 0, sizeof m);
    memset(&t, 0, sizeof t);
    t.name = SLICE_LIT("blk.0.attn_q.weight");
    t.dtype = DT_Q4_0;
    t.n_dims = 1;
    t.shape[0] = 32;
    t.n_elems = 32;
    t.size = 18;
    t.data = data;
    m.tensors = &t;
    m.n_tensors = 1;
    ck_assert(st_write(&m, out, NULL, &e) != 0);
    ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
    ck_assert_msg(strstr(e.msg, "tensor 'blk.0.attn_q.weight': dtype Q4_0"), "%s", e.msg);
    ck_assert_int_eq(tu_dir_count(dir), 0);

    /* inconsistent size */
    t.dtype = DT_F32;
    t.n_elems = 32;
    e = (struct err)ERR_INIT;
    ck_assert(st_write(&m, out, NULL, &e) != 0);
    ck_assert_int_eq(e.code, ERR_INTERNAL);

    /* non-string __metadata__ value */
    t.dtype = DT_U8;
    t.n_elems = 18;
    t.shape[0] = 18;
    memset(&kv, 0, sizeof kv);
    kv.key = SLICE_LIT("safetensors.metadata.n");
    kv.val.type = MV_U32;
    m.kv = &kv;
    m.n_kv = 1;
    e = (struct err)ERR_INIT;
    ck_assert(st_write(&m, out, NULL, &e) != 0);
    ck_assert_msg(strstr(e.msg, "holds only strings"), "%s", e.msg);

    /* invalid UTF-8 name */
    m.n_kv = 0;
    t.name = SLICE_LIT("bad\xff");
    e = (struct err)ERR_INIT;
    ck_assert(st_write(&m, out, NULL, &e) != 0);
    ck_assert_msg(strstr(e.msg, "not valid UTF-8"), "%s", e.msg);

    /* a missing directory: nothing created, clean error */
    t.name = SLICE_LIT("ok");
    e = (struct err)ERR_INIT;
    ck_assert(st_write(&m, "/nonexistent-dir-apr/x.safetensors", NULL, &e) != 0);
    ck_assert_int_eq(e.code, ERR_IO);

    /* the good case, and no config to write */
    e = (struct err)ERR_INIT;
    ck_assert_msg(st_write(&m, out, NULL, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(st_write_config(&m, dir, &e), 0);
    ck_assert_int_eq(tu_dir_count(dir), 1);
    free(out);
    tu_tmpdir_free(dir);
}
END_TEST

Suite *st_suite(void)
{
    Suite *s = suite_create("st");
    TCase *tc;

    tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fixture_qwen2_file);
    tcase_add_test(tc, test_fixture_llama_dir);
    suite_add_tcase(s, tc);

    tc = tcase_create("generated");
    tcase_add_test(tc, test_sharded_index);
    tcase_add_test(tc, test_dir_shards_without_index);
    tcase_add_test(tc, test_hf_cache);
    tcase_add_loop_test(tc, test_bad_index, 0, (int)(sizeof bad_indexes / sizeof *bad_indexes));
    tcase_add_test(tc, test_two_shards_same_name);
    tcase_add_test(tc, test_unaligned);
    tcase_add_test(tc, test_zero_size_and_scalar);
    tcase_add_test(tc, test_config_variants);
    tcase_add_test(tc, test_sparse_70b);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_malformed, 0, (int)(sizeof bads / sizeof *bads));
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_byte_flips);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_write_roundtrip_qwen2);
    tcase_add_test(tc, test_write_roundtrip_llama);
    tcase_add_test(tc, test_write_generated);
    tcase_add_test(tc, test_write_producer);
    tcase_add_test(tc, test_write_refuses);
    suite_add_tcase(s, tc);
    return s;
}
