/*
 * check_convert.c - apr-convert (convert/convert.c): round trips that keep every tensor's
 * bytes and every metadata key and type, the Q/K permutation, the shared fixtures in
 * every direction, determinism, -f, and hostile input leaving no file behind.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/sha256.h"
#include "../../convert/convert.h"
#include "../../formats/model.h"
#include "../../formats/names.h"
#include "../../dequant/dq.h"
#include "../fixtures/gguf_fix.h"
#include "tu.h"
#include "../../common/banned.h"

static int sl_ends(struct slice s, const char *suf)
{
    size_t n = strlen(suf);
    return s.n >= n && memcmp(s.p + s.n - n, suf, n) == 0;
}

static int conv(const char *in, const char *out, const char *dtype, int lossless, int force,
                struct err *e)
{
    struct convert_opts o = CONVERT_OPTS_INIT;
    o.dtype = dtype;
    o.lossless = lossless;
    o.force = force;
    o.verify = 1;
    o.quiet = 1;
    o.n_threads = 1;
    return convert_run(&o, in, out, e);
}

static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int ca, cb, same = fa && fb;
    while (same) {
        ca = getc(fa);
        cb = getc(fb);
        if (ca != cb)
            same = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* Every tensor (SHA-256 of its bytes) and every kv (key, type, value bytes) of a equals b's. */
static void assert_same_model(const char *pa, const char *pb, int check_kv)
{
    struct model a, b;
    struct err e = ERR_INIT;

    ck_assert_msg(model_open(&a, pa, &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&b, pb, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(a.n_tensors, b.n_tensors);
    for (uint64_t i = 0; i < a.n_tensors; i++) {
        const struct model_tensor *x = &a.tensors[i];
        const struct model_tensor *y = model_tensor_find_slice(&b, x->name);
        uint8_t hx[32], hy[32];
        ck_assert_msg(y != NULL, "tensor %.*s missing", (int)x->name.n, x->name.p);
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_uint_eq(x->size, y->size);
        ck_assert_int_eq(sha256_buf(x->data, x->size, hx, &e), 0);
        ck_assert_int_eq(sha256_buf(y->data, y->size, hy, &e), 0);
        ck_assert_msg(memcmp(hx, hy, 32) == 0, "tensor %.*s bytes differ", (int)x->name.n,
                      x->name.p);
    }
    if (check_kv) {
        ck_assert_uint_eq(a.n_kv, b.n_kv);
        for (uint64_t i = 0; i < a.n_kv; i++) {
            const struct model_kv *x = &a.kv[i], *y = &b.kv[i];
            ck_assert_msg(slice_eq(x->key, y->key), "key %.*s", (int)x->key.n, x->key.p);
            ck_assert_int_eq(x->val.type, y->val.type);
            if (x->val.type == MV_STR)
                ck_assert(slice_eq(x->val.v.s, y->val.v.s));
            else if (x->val.type == MV_ARR) {
                ck_assert_int_eq(x->val.v.arr.elem, y->val.v.arr.elem);
                ck_assert_uint_eq(x->val.v.arr.n, y->val.v.arr.n);
                if (x->val.v.arr.raw)
                    ck_assert(memcmp(x->val.v.arr.raw, y->val.v.arr.raw,
                                     x->val.v.arr.n * model_vtype_size(x->val.v.arr.elem)) == 0);
                if (x->val.v.arr.strs)
                    for (uint64_t k = 0; k < x->val.v.arr.n; k++)
                        ck_assert(slice_eq(x->val.v.arr.strs[k], y->val.v.arr.strs[k]));
            } else if (x->val.type == MV_F32 || x->val.type == MV_F64)
                ck_assert(x->val.v.f == y->val.v.f);
            else
                ck_assert(x->val.v.u == y->val.v.u);
        }
    }
    model_close(&a);
    model_close(&b);
}

static void write_demo(const char *path)
{
    struct model m;
    struct err e = ERR_INIT;
    memset(&m, 0, sizeof m);
    ck_assert_msg(fx_demo(&m, &e) == 0, "%s", e.msg);
    ck_assert_msg(gguf_write(&m, path, NULL, &e) == 0, "%s", e.msg);
    model_close(&m);
}

START_TEST(test_demo_gguf_apr_gguf)
{
    struct err e = ERR_INIT;
    write_demo(tu_tpath("demo.gguf"));
    ck_assert_msg(conv(tu_tpath("demo.gguf"), tu_tpath("demo.apr"), NULL, 0, 0, &e) == 0,
                  "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("demo.apr"), tu_tpath("back.gguf"), NULL, 0, 0, &e) == 0,
                  "%s", e.msg);
    assert_same_model(tu_tpath("demo.gguf"), tu_tpath("back.gguf"), 1);
    ck_assert(files_equal(tu_tpath("demo.gguf"), tu_tpath("back.gguf")));
    ck_assert_int_eq(tu_dir_count(tu_dir), 3);
}
END_TEST

START_TEST(test_demo_hf_round_trip)
{
    struct err e = ERR_INIT;
    write_demo(tu_tpath("demo.gguf"));
    /* GGUF -> HF (permutation undone) -> APR (HF names kept) -> HF -> GGUF */
    ck_assert_msg(conv(tu_tpath("demo.gguf"), tu_tpath("hf/"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("hf"), tu_tpath("hf.apr"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("hf.apr"), tu_tpath("hf2/"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    assert_same_model(tu_tpath("hf"), tu_tpath("hf2"), 1);
    ck_assert(files_equal(tu_tpath("hf/model.safetensors"), tu_tpath("hf2/model.safetensors")));
    ck_assert(files_equal(tu_tpath("hf/config.json"), tu_tpath("hf2/config.json")));
    ck_assert_msg(conv(tu_tpath("hf2"), tu_tpath("again.gguf"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    assert_same_model(tu_tpath("demo.gguf"), tu_tpath("again.gguf"), 0);
}
END_TEST

START_TEST(test_permute_identity)
{
    struct err e = ERR_INIT;
    uint8_t src[64 * 3], mid[64 * 3], back[64 * 3];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    /* 64 rows of 3 bytes, 4 heads (hd 16) */
    ck_assert_int_eq(names_permute_rows(src, mid, 64, 3, 4, 1, &e), 0);
    ck_assert(memcmp(src, mid, sizeof src) != 0);
    ck_assert_int_eq(names_permute_rows(mid, back, 64, 3, 4, 0, &e), 0);
    ck_assert(memcmp(src, back, sizeof src) == 0);
}
END_TEST

START_TEST(test_determinism_and_force)
{
    struct err e = ERR_INIT;
    write_demo(tu_tpath("demo.gguf"));
    ck_assert_int_eq(conv(tu_tpath("demo.gguf"), tu_tpath("a.apr"), NULL, 0, 0, &e), 0);
    ck_assert_int_eq(conv(tu_tpath("demo.gguf"), tu_tpath("b.apr"), NULL, 0, 0, &e), 0);
    ck_assert(files_equal(tu_tpath("a.apr"), tu_tpath("b.apr")));
    /* refuses to overwrite, then -f replaces */
    ck_assert_int_eq(conv(tu_tpath("demo.gguf"), tu_tpath("a.apr"), "f16", 0, 0, &e), -1);
    ck_assert(files_equal(tu_tpath("a.apr"), tu_tpath("b.apr")));
    err_clear(&e);
    ck_assert_msg(conv(tu_tpath("demo.gguf"), tu_tpath("a.apr"), "f16", 0, 1, &e) == 0,
                  "%s", e.msg);
    ck_assert(!files_equal(tu_tpath("a.apr"), tu_tpath("b.apr")));
    ck_assert_int_eq(tu_dir_count(tu_dir), 3);
}
END_TEST

START_TEST(test_truncated_leaves_nothing)
{
    struct err e = ERR_INIT;
    FILE *f;
    struct stat st;
    write_demo(tu_tpath("demo.gguf"));
    ck_assert_int_eq(stat(tu_tpath("demo.gguf"), &st), 0);
    ck_assert_int_eq(truncate(tu_tpath("demo.gguf"), st.st_size - 100), 0);
    ck_assert_int_eq(conv(tu_tpath("demo.gguf"), tu_tpath("x.apr"), NULL, 0, 0, &e), -1);
    ck_assert_int_eq(tu_dir_count(tu_dir), 1);
    f = fopen(tu_tpath("junk.gguf"), "wb");
    ck_assert_ptr_nonnull(f);
    fputs("GGUF\3\0\0\0garbage", f);
    fclose(f);
    err_clear(&e);
    ck_assert_int_eq(conv(tu_tpath("junk.gguf"), tu_tpath("y.safetensors"), NULL, 0, 0, &e), -1);
    ck_assert_int_eq(tu_dir_count(tu_dir), 2);
}
END_TEST

START_TEST(test_usage_errors)
{
    struct err e = ERR_INIT;
    write_demo(tu_tpath("demo.gguf"));
    ck_assert_int_eq(conv(tu_tpath("demo.gguf"), tu_tpath("x.bin"), NULL, 0, 0, &e), -1);
    ck_assert_int_eq(e.code, ERR_USAGE);
    err_clear(&e);
    ck_assert_int_eq(conv(tu_tpath("demo.gguf"), tu_tpath("x.apr"), "q8_0", 0, 0, &e), -1);
    ck_assert_int_eq(e.code, ERR_USAGE);
    err_clear(&e);
    ck_assert_int_eq(conv(tu_tpath("demo.gguf"), tu_tpath("x.apr"), "q9", 0, 0, &e), -1);
    ck_assert_int_eq(e.code, ERR_USAGE);
    ck_assert_int_eq(tu_dir_count(tu_dir), 1);
}
END_TEST

static const char *const quants[] = { "Q4_K_M", "Q6_K", "IQ4_XS", "Q8_0", "Q4_0", "F16" };

START_TEST(test_fixtures_gguf)
{
    char rel[128], src[512];
    const char *q = quants[_i];
    struct err e = ERR_INIT;
    struct model m;

    snprintf(rel, sizeof rel, "gguf/tiny-llama-small-%s.gguf", q);
    if (!tu_need_shared(rel))
        return;
    snprintf(src, sizeof src, "%s/%s", tu_shared_dir(), rel);
    /* lossless APR and back: byte-identical GGUF */
    ck_assert_msg(conv(src, tu_tpath("l.apr"), NULL, 1, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("l.apr"), tu_tpath("l.gguf"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(files_equal(src, tu_tpath("l.gguf")), "%s lossless round trip differs", q);
    /* default APR (aprender-loadable): widened where needed, verified */
    ck_assert_msg(conv(src, tu_tpath("d.apr"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("d.apr"), &e) == 0, "%s", e.msg);
    for (uint64_t i = 0; i < m.n_tensors; i++)
        ck_assert_int_ge(dtype_get(m.tensors[i].dtype)->apr_code, 0);
    ck_assert_uint_eq(m.apr_flags, 0x0400);
    {
        struct slice s;
        ck_assert_int_eq(model_kv_get_str(&m, "source_sha256", &s), 0);
        ck_assert_uint_eq(s.n, 64);
        ck_assert_int_eq(model_kv_get_str(&m, "converter", &s), 0);
        ck_assert(slice_eq_cstr(s, "apr-convert 0.1.0"));
    }
    model_close(&m);
    ck_assert_msg(conv(tu_tpath("d.apr"), tu_tpath("d.gguf"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    /* SafeTensors: HF names and the config keys of the HF fixtures */
    ck_assert_msg(conv(src, tu_tpath("st/"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("st"), &e) == 0, "%s", e.msg);
    ck_assert_ptr_nonnull(model_tensor_find(&m, "model.layers.0.self_attn.q_proj.weight"));
    ck_assert_ptr_nonnull(model_tensor_find(&m, "lm_head.weight"));
    ck_assert_ptr_nonnull(model_tensor_find(&m, "model.embed_tokens.weight"));
    {
        static const char *const keys[] = { "hf.config.architectures", "hf.config.hidden_size",
            "hf.config.intermediate_size", "hf.config.num_attention_heads",
            "hf.config.num_hidden_layers", "hf.config.num_key_value_heads",
            "hf.config.rms_norm_eps", "hf.config.vocab_size", "hf.config.model_type",
            "hf.config.max_position_embeddings", "hf.config.tie_word_embeddings",
            "hf.config.head_dim", "llama.rope.freq_base" };
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            ck_assert_msg(model_kv_find(&m, keys[k]) != NULL, "%s missing", keys[k]);
    }
    model_close(&m);
    /* and back to GGUF: same names and shapes, same bytes where the type survived
     * (permutation undone and redone), the same values where it was widened */
    ck_assert_msg(conv(tu_tpath("st"), tu_tpath("st.gguf"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    {
        struct model a, b;
        ck_assert_int_eq(model_open(&a, src, &e), 0);
        ck_assert_int_eq(model_open(&b, tu_tpath("st.gguf"), &e), 0);
        ck_assert_uint_eq(a.n_tensors, b.n_tensors);
        for (uint64_t i = 0; i < a.n_tensors; i++) {
            const struct model_tensor *x = &a.tensors[i];
            const struct model_tensor *y = model_tensor_find_slice(&b, x->name);
            ck_assert_ptr_nonnull(y);
            ck_assert(memcmp(x->shape, y->shape, sizeof x->shape) == 0);
            if (x->dtype == y->dtype)
                ck_assert(x->size == y->size && memcmp(x->data, y->data, x->size) == 0);
            else {
                float *fa = dq_tensor_to_f32_new(x, 1, &e), *fb = dq_tensor_to_f32_new(y, 1, &e);
                ck_assert(fa && fb);
                ck_assert(memcmp(fa, fb, (size_t)x->n_elems * 4) == 0);
                free(fa);
                free(fb);
            }
        }
        model_close(&a);
        model_close(&b);
    }
}
END_TEST

static const char *const hfs[] = { "qwen2-f32", "llama-bf16" };

START_TEST(test_fixtures_hf)
{
    char rel[128], src[512], f[600];
    struct err e = ERR_INIT;
    struct model m;

    snprintf(rel, sizeof rel, "hf/%s", hfs[_i]);
    if (!tu_need_shared(rel))
        return;
    snprintf(src, sizeof src, "%s/%s", tu_shared_dir(), rel);
    ck_assert_msg(conv(src, tu_tpath("m.apr"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("m.apr"), tu_tpath("hf/"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    snprintf(f, sizeof f, "%s/model.safetensors", src);
    ck_assert(files_equal(f, tu_tpath("hf/model.safetensors")));
    snprintf(f, sizeof f, "%s/config.json", src);
    ck_assert(files_equal(f, tu_tpath("hf/config.json")));
    assert_same_model(src, tu_tpath("hf"), 1);
    /* GGUF with llama.cpp's names, key types and (llama) permuted q/k */
    ck_assert_msg(conv(src, tu_tpath("m.gguf"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("m.gguf"), &e) == 0, "%s", e.msg);
    ck_assert_ptr_nonnull(model_tensor_find(&m, "token_embd.weight"));
    ck_assert_ptr_nonnull(model_tensor_find(&m, "output.weight"));
    ck_assert_ptr_nonnull(model_tensor_find(&m, "blk.2.attn_q.weight"));
    ck_assert_ptr_nonnull(model_tensor_find(&m, "output_norm.weight"));
    {
        const struct model_kv *kv = model_kv_find(&m, "general.architecture");
        ck_assert_ptr_nonnull(kv);
        ck_assert_int_eq(kv->val.type, MV_STR);
        for (uint64_t i = 0; i < m.n_kv; i++) {
            const struct model_kv *k = &m.kv[i];
            if (sl_ends(k->key, "_length") || sl_ends(k->key, "count") ||
                sl_ends(k->key, "head_count_kv"))
                ck_assert_msg(k->val.type == MV_U32, "%.*s not UINT32", (int)k->key.n, k->key.p);
            if (sl_ends(k->key, "epsilon") || sl_ends(k->key, "freq_base"))
                ck_assert_int_eq(k->val.type, MV_F32);
        }
    }
    model_close(&m);
    ck_assert_msg(conv(tu_tpath("m.gguf"), tu_tpath("g/"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    snprintf(f, sizeof f, "%s/model.safetensors", src);
    ck_assert(files_equal(f, tu_tpath("g/model.safetensors")));
}
END_TEST

START_TEST(test_dtype_convert)
{
    static const char *const dts[] = { "f32", "f16", "bf16", "q4_k", "q6_k" };
    struct err e = ERR_INIT;
    write_demo(tu_tpath("demo.gguf"));
    for (size_t i = 0; i < sizeof dts / sizeof *dts; i++) {
        char out[64];
        snprintf(out, sizeof out, "d-%s.apr", dts[i]);
        ck_assert_msg(conv(tu_tpath("demo.gguf"), tu_tpath(out), dts[i], 0, 0, &e) == 0,
                      "%s: %s", dts[i], e.msg);
        snprintf(out, sizeof out, "d-%s.gguf", dts[i]);
        ck_assert_msg(conv(tu_tpath("demo.gguf"), tu_tpath(out), dts[i], 0, 0, &e) == 0,
                      "%s: %s", dts[i], e.msg);
    }
    ck_assert_msg(conv(tu_tpath("demo.gguf"), tu_tpath("q8.gguf"), "q8_0", 0, 0, &e) == 0,
                  "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("demo.gguf"), tu_tpath("q8.apr"), "q8_0", 1, 0, &e) == 0,
                  "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("q8.apr"), tu_tpath("q8b.gguf"), NULL, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert(files_equal(tu_tpath("q8.gguf"), tu_tpath("q8b.gguf")));
}
END_TEST

Suite *convert_suite(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("convert");

    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_demo_gguf_apr_gguf);
    tcase_add_test(tc, test_demo_hf_round_trip);
    tcase_add_test(tc, test_permute_identity);
    tcase_add_test(tc, test_determinism_and_force);
    tcase_add_test(tc, test_truncated_leaves_nothing);
    tcase_add_test(tc, test_usage_errors);
    tcase_add_test(tc, test_dtype_convert);
    tcase_add_loop_test(tc, test_fixtures_gguf, 0, (int)(sizeof quants / sizeof *quants));
    tcase_add_loop_test(tc, test_fixtures_hf, 0, (int)(sizeof hfs / sizeof *hfs));
    suite_add_tcase(s, tc);
    return s;
}
