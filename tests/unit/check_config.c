/*
 * check_config.c - formats/meta.h and formats/config.h: the canonical metadata and the
 * validated model config of every format (our demo model in GGUF, APR with either
 * naming, SafeTensors; the shared GGUF and Hugging Face fixtures and their conversions),
 * the same config from each, RoPE style by layout, rope scaling, role lookup, and
 * clear errors for shapes or tensors that disagree with the metadata.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../convert/convert.h"
#include "../../formats/apr/apr.h"
#include "../../formats/config.h"
#include "../../formats/meta.h"
#include "../../formats/model.h"
#include "../fixtures/gguf_fix.h"
#include "tu.h"
#include "../../common/banned.h"

static void conv(const char *in, const char *out, const char *names)
{
    struct convert_opts o = CONVERT_OPTS_INIT;
    struct err e = ERR_INIT;

    o.names = names;
    o.quiet = 1;
    o.n_threads = 1;
    ck_assert_msg(convert_run(&o, in, out, &e) == 0, "%s -> %s: %s", in, out, e.msg);
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

static void load(const char *path, struct model_config *c)
{
    struct model m;
    struct err e = ERR_INIT;

    ck_assert_msg(model_open(&m, path, &e) == 0, "%s", e.msg);
    ck_assert_msg(model_config_load(&m, c, &e) == 0, "%s: %s", path, e.msg);
    /* every required role resolves, whatever the naming */
    for (int l = 0; l < (int)c->n_layer; l++) {
        ck_assert_ptr_nonnull(model_config_tensor(&m, c, TR_ATTN_Q, l));
        ck_assert_ptr_nonnull(model_config_tensor(&m, c, TR_FFN_DOWN, l));
    }
    ck_assert_ptr_null(model_config_tensor(&m, c, TR_ATTN_Q, (int)c->n_layer));
    ck_assert_ptr_nonnull(model_config_tensor(&m, c, TR_TOK_EMBD, 0));
    ck_assert_int_eq(model_config_tensor(&m, c, TR_ATTN_Q_BIAS, 0) != NULL, c->has_qkv_bias);
    model_close(&m);
}

/* Everything but the layout-dependent RoPE fields must agree. */
static void assert_same_config_ids(const struct model_config *a, const struct model_config *b,
                                   const char *what, int ids)
{
    ck_assert_msg(strcmp(a->arch, b->arch) == 0, "%s: arch %s vs %s", what, a->arch, b->arch);
    ck_assert_msg(a->n_layer == b->n_layer && a->n_embd == b->n_embd && a->n_head == b->n_head &&
                  a->n_head_kv == b->n_head_kv && a->head_dim == b->head_dim &&
                  a->n_ff == b->n_ff && a->n_vocab == b->n_vocab && a->n_rot == b->n_rot,
                  "%s: sizes differ", what);
    ck_assert_msg(a->n_ctx_train == b->n_ctx_train, "%s: context %u vs %u", what,
                  a->n_ctx_train, b->n_ctx_train);
    ck_assert_msg(a->rope_theta == b->rope_theta, "%s: theta %g vs %g", what, a->rope_theta,
                  b->rope_theta);
    ck_assert_msg(a->norm_eps == b->norm_eps, "%s: eps %g vs %g", what, a->norm_eps,
                  b->norm_eps);
    ck_assert_msg(a->rope_scaling.type == b->rope_scaling.type, "%s: scaling", what);
    ck_assert_msg(a->tied_embeddings == b->tied_embeddings && a->has_qkv_bias == b->has_qkv_bias &&
                  a->has_qk_norm == b->has_qk_norm, "%s: flags differ", what);
    ck_assert_msg(!ids || (a->bos_id == b->bos_id && a->eos_id == b->eos_id), "%s: bos/eos %lld/%lld vs "
                  "%lld/%lld", what, (long long)a->bos_id, (long long)a->eos_id,
                  (long long)b->bos_id, (long long)b->eos_id);
}

static void assert_same_config(const struct model_config *a, const struct model_config *b,
                               const char *what)
{
    assert_same_config_ids(a, b, what, 1);
}

static void assert_layout(const struct model_config *c, int permuted, const char *what)
{
    ck_assert_msg(c->qk_rows_permuted == permuted, "%s: permuted %d", what, c->qk_rows_permuted);
    ck_assert_msg(c->rope_style == (permuted ? ROPE_NORM : ROPE_NEOX), "%s: rope style", what);
}

START_TEST(test_demo_every_format)
{
    struct model_config g, c;

    write_demo(tu_tpath("demo.gguf"));
    load(tu_tpath("demo.gguf"), &g);
    ck_assert_str_eq(g.arch, "llama");
    ck_assert_uint_eq(g.n_layer, FX_DEMO_LAYERS);
    ck_assert_uint_eq(g.n_embd, FX_DEMO_EMBD);
    ck_assert_uint_eq(g.n_head, FX_DEMO_HEADS);
    ck_assert_uint_eq(g.n_head_kv, FX_DEMO_KV);
    ck_assert_uint_eq(g.head_dim, FX_DEMO_HD);
    ck_assert_uint_eq(g.n_rot, FX_DEMO_HD);
    ck_assert_uint_eq(g.n_ff, FX_DEMO_FF);
    ck_assert_uint_eq(g.n_vocab, FX_DEMO_VOCAB);
    ck_assert_uint_eq(g.n_ctx_train, FX_DEMO_CTX);
    ck_assert(g.rope_theta == 10000.0);
    ck_assert(g.norm_eps == (double)1e-5f);
    ck_assert_int_eq(g.rope_scaling.type, ROPE_SCALE_NONE);
    ck_assert_int_eq(g.tied_embeddings, 0);
    ck_assert_int_eq(g.has_qkv_bias, 0);
    ck_assert_int_eq(g.has_qk_norm, 0);
    ck_assert_int_eq(g.bos_id, 1);
    ck_assert_int_eq(g.eos_id, 2);
    assert_layout(&g, 1, "demo.gguf");

    conv(tu_tpath("demo.gguf"), tu_tpath("demo.apr"), NULL);       /* GGUF names: permuted */
    load(tu_tpath("demo.apr"), &c);
    assert_same_config(&g, &c, "demo.apr");
    assert_layout(&c, 1, "demo.apr");
    conv(tu_tpath("demo.gguf"), tu_tpath("hf.apr"), "hf");         /* HF names: HF rows */
    load(tu_tpath("hf.apr"), &c);
    assert_same_config(&g, &c, "hf.apr");
    assert_layout(&c, 0, "hf.apr");
    conv(tu_tpath("demo.gguf"), tu_tpath("st/"), NULL);            /* config.json */
    load(tu_tpath("st"), &c);
    assert_same_config(&g, &c, "st/");
    assert_layout(&c, 0, "st/");
    conv(tu_tpath("st"), tu_tpath("back.gguf"), NULL);
    load(tu_tpath("back.gguf"), &c);
    assert_same_config(&g, &c, "back.gguf");
    assert_layout(&c, 1, "back.gguf");
}
END_TEST

/* An APR file the way aprender writes it: typed fields and custom keys, no namespace. */
START_TEST(test_aprender_fields)
{
    struct model m;
    struct model_config g, c;
    struct err e = ERR_INIT;
    uint64_t k;

    write_demo(tu_tpath("demo.gguf"));
    load(tu_tpath("demo.gguf"), &g);
    conv(tu_tpath("demo.gguf"), tu_tpath("demo.apr"), NULL);
    ck_assert_msg(model_open(&m, tu_tpath("demo.apr"), &e) == 0, "%s", e.msg);
    for (k = 0; k < m.n_kv && !slice_eq_cstr(m.kv[k].key, META_NS_KEY); k++)
        ;
    ck_assert_uint_lt(k, m.n_kv);
    model__val_free(&m.kv[k].val);
    memmove(&m.kv[k], &m.kv[k + 1], (size_t)(m.n_kv - k - 1) * sizeof *m.kv);
    m.n_kv--;
    ck_assert_msg(apr_write(&m, tu_tpath("aprender.apr"), NULL, &e) == 0, "%s", e.msg);
    model_close(&m);
    load(tu_tpath("aprender.apr"), &c);
    assert_same_config(&g, &c, "aprender.apr");
    assert_layout(&c, 1, "aprender.apr");   /* llama with GGUF names: aprender's rule */
}
END_TEST

START_TEST(test_shared_gguf)
{
    static const char *const files[] = { "tiny-llama-small-F32.gguf", "tiny-llama-small-Q4_K_M.gguf",
                                         "tiny-llama-small-IQ4_XS.gguf" };
    char rel[128], src[600];
    struct model_config c, a;

    snprintf(rel, sizeof rel, "gguf/%s", files[_i]);
    if (!tu_need_shared(rel))
        return;
    snprintf(src, sizeof src, "%s/%s", tu_shared_dir(), rel);
    load(src, &c);
    ck_assert_str_eq(c.arch, "llama");
    ck_assert_uint_eq(c.n_layer, 2);
    ck_assert_uint_eq(c.n_embd, 256);
    ck_assert_uint_eq(c.n_head, 8);
    ck_assert_uint_eq(c.n_head_kv, 2);
    ck_assert_uint_eq(c.head_dim, 32);
    ck_assert_uint_eq(c.n_ff, 512);
    ck_assert_uint_eq(c.n_vocab, 512);
    ck_assert(c.rope_theta == 10000.0);
    ck_assert(c.norm_eps == (double)1e-5f);
    ck_assert_int_eq(c.tied_embeddings, 0);
    assert_layout(&c, 1, src);
    conv(src, tu_tpath("m.apr"), NULL);
    load(tu_tpath("m.apr"), &a);
    assert_same_config(&c, &a, "m.apr");
    assert_layout(&a, 1, "m.apr");
}
END_TEST

START_TEST(test_shared_hf)
{
    static const struct { const char *dir, *arch; double theta, eps; int bias; } hf[] = {
        { "llama-bf16", "llama", 5e5, 1e-5, 0 },
        { "qwen2-f32", "qwen2", 1e6, 1e-6, 1 },
    };
    char rel[128], src[600];
    struct model_config c, a;

    snprintf(rel, sizeof rel, "hf/%s", hf[_i].dir);
    if (!tu_need_shared(rel))
        return;
    snprintf(src, sizeof src, "%s/%s", tu_shared_dir(), rel);
    load(src, &c);
    ck_assert_str_eq(c.arch, hf[_i].arch);
    ck_assert_uint_eq(c.n_layer, 3);
    ck_assert_uint_eq(c.n_embd, 256);
    ck_assert_uint_eq(c.n_head, 8);
    ck_assert_uint_eq(c.n_head_kv, 2);
    ck_assert_uint_eq(c.head_dim, 32);
    ck_assert_uint_eq(c.n_ff, 512);
    ck_assert_uint_eq(c.n_vocab, 1024);
    /* transformers 5 writes rope_parameters.rope_theta, not rope_theta */
    ck_assert_msg(c.rope_theta == (double)(float)hf[_i].theta, "theta %g", c.rope_theta);
    ck_assert_msg(c.norm_eps == (double)(float)hf[_i].eps, "eps %g", c.norm_eps);
    ck_assert_int_eq(c.has_qkv_bias, hf[_i].bias);
    ck_assert_int_eq(c.tied_embeddings, 0);
    assert_layout(&c, 0, src);
    conv(src, tu_tpath("m.gguf"), NULL);
    load(tu_tpath("m.gguf"), &a);
    /* these folders hold no tokenizer: apr-convert writes tokenizer.ggml.model "none" and no
     * bos/eos ids (llama.cpp's keys only mean something with a vocabulary) */
    assert_same_config_ids(&c, &a, "m.gguf", 0);
    ck_assert_int_eq(a.bos_id, -1);
    assert_layout(&a, _i == 0, "m.gguf");   /* llama rows permuted in GGUF, qwen2 never */
    conv(src, tu_tpath("m.apr"), NULL);
    load(tu_tpath("m.apr"), &a);
    assert_same_config(&c, &a, "m.apr");
    assert_layout(&a, _i == 0, "m.apr");    /* aprender: llama GGUF names, qwen2 HF names */
}
END_TEST

/* The demo model in memory, with one key changed. */
static void demo_with(struct model *m, const char *key, uint64_t u)
{
    struct err e = ERR_INIT;
    struct model_kv *kv;

    memset(m, 0, sizeof *m);
    ck_assert_msg(fx_demo(m, &e) == 0, "%s", e.msg);
    kv = (struct model_kv *)model_kv_find(m, key);
    ck_assert_ptr_nonnull(kv);
    kv->val.v.u = u;
}

START_TEST(test_shape_mismatch)
{
    struct model m;
    struct model_config c;
    struct err e = ERR_INIT;

    demo_with(&m, "llama.attention.head_count_kv", 4);
    ck_assert_int_eq(model_config_load(&m, &c, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "tensor 'blk.0.attn_k.weight': shape [32, 64] does not match the "
                         "config: expected [64, 64] (n_head_kv 4 x head_dim 16, n_embd 64)"),
                  "%s", e.msg);
    ck_assert_uint_eq(c.n_layer, 0);   /* nothing half-filled */
    model_close(&m);

    e = (struct err)ERR_INIT;
    demo_with(&m, "llama.feed_forward_length", 96);
    ck_assert_int_eq(model_config_load(&m, &c, &e), -1);
    ck_assert_msg(strstr(e.msg, "'blk.0.ffn_gate.weight': shape [128, 64]") &&
                  strstr(e.msg, "expected [96, 64]"), "%s", e.msg);
    model_close(&m);

    e = (struct err)ERR_INIT;
    demo_with(&m, "llama.block_count", 3);
    ck_assert_int_eq(model_config_load(&m, &c, &e), -1);
    ck_assert_msg(strstr(e.msg, "tensor 'blk.2.attn_norm.weight' is missing"), "%s", e.msg);
    model_close(&m);

    e = (struct err)ERR_INIT;
    demo_with(&m, "llama.block_count", 1);
    ck_assert_int_eq(model_config_load(&m, &c, &e), -1);
    ck_assert_msg(strstr(e.msg, "'blk.1.attn_norm.weight' is beyond the 1 layers"), "%s", e.msg);
    model_close(&m);

    e = (struct err)ERR_INIT;
    demo_with(&m, "llama.attention.head_count", 0);
    ck_assert_int_eq(model_config_load(&m, &c, &e), -1);
    ck_assert_msg(strstr(e.msg, "'llama.attention.head_count' is not a count"), "%s", e.msg);
    model_close(&m);
}
END_TEST

START_TEST(test_rope_scaling_and_meta)
{
    struct model m;
    struct model_config c;
    struct meta mt;
    struct err e = ERR_INIT;
    uint64_t u;
    double f;

    memset(&m, 0, sizeof m);
    ck_assert_msg(fx_demo(&m, &e) == 0, "%s", e.msg);
    fx_str(&m, "llama.rope.scaling.type", "yarn", &e);
    fx_float(&m, "llama.rope.scaling.factor", MV_F32, 4.0, &e);
    fx_uint(&m, "llama.rope.scaling.original_context_length", MV_U32, 64, &e);
    ck_assert_msg(err_ok(&e), "%s", e.msg);
    ck_assert_msg(model_config_load(&m, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c.rope_scaling.type, ROPE_SCALE_YARN);
    ck_assert(c.rope_scaling.factor == 4.0);
    ck_assert_uint_eq(c.rope_scaling.orig_ctx, 64);
    ck_assert(c.rope_scaling.beta_fast == 32 && c.rope_scaling.beta_slow == 1);

    /* the canonical list of a GGUF file is its keys */
    ck_assert_msg(meta_from_model(&m, &mt, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(mt.n, m.n_kv);
    ck_assert_str_eq(mt.arch, "llama");
    ck_assert_int_eq(meta_aget_u64(&mt, "block_count", &u), 0);
    ck_assert_uint_eq(u, FX_DEMO_LAYERS);
    ck_assert_int_eq(meta_aget_f64(&mt, "rope.scaling.factor", &f), 0);
    ck_assert(f == 4.0);
    ck_assert_int_eq(meta_get_u64(&mt, "general.name", &u), -1);   /* a string */
    meta_free(&mt);
    meta_free(&mt);   /* a freed meta is zeroed: freeing again is harmless */
    model_close(&m);

    memset(&m, 0, sizeof m);
    ck_assert_msg(fx_demo(&m, &e) == 0, "%s", e.msg);
    fx_str(&m, "llama.rope.scaling.type", "longrope", &e);
    ck_assert_int_eq(model_config_load(&m, &c, &e), -1);
    ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
    ck_assert_msg(strstr(e.msg, "rope scaling 'longrope' is not supported"), "%s", e.msg);
    model_close(&m);
}
END_TEST

/* llama3 scaling only exists in config.json (GGUF encodes it as a tensor): rope_scaling */
START_TEST(test_llama3_from_config_json)
{
    static const char add[] = "{\n  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                              "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                              "\"original_max_position_embeddings\": 8192},";
    struct model_config c;
    char *cfg;
    size_t n;
    FILE *f;

    write_demo(tu_tpath("demo.gguf"));
    conv(tu_tpath("demo.gguf"), tu_tpath("st/"), NULL);
    cfg = tu_slurp_str(tu_tpath("st/config.json"), &n);
    ck_assert(n > 2 && cfg[0] == '{');
    f = fopen(tu_tpath("st/config.json"), "wb");
    ck_assert_ptr_nonnull(f);
    fputs(add, f);
    fputs(cfg + 1, f);
    fclose(f);
    free(cfg);
    load(tu_tpath("st"), &c);
    ck_assert_int_eq(c.rope_scaling.type, ROPE_SCALE_LLAMA3);
    ck_assert(c.rope_scaling.factor == 8.0);
    ck_assert(c.rope_scaling.low_freq_factor == 1.0 && c.rope_scaling.high_freq_factor == 4.0);
    ck_assert_uint_eq(c.rope_scaling.orig_ctx, 8192);
    /* and it survives APR (the namespace keeps hf.config.*) */
    conv(tu_tpath("st"), tu_tpath("m.apr"), NULL);
    load(tu_tpath("m.apr"), &c);
    ck_assert_int_eq(c.rope_scaling.type, ROPE_SCALE_LLAMA3);
    ck_assert(c.rope_scaling.factor == 8.0);
}
END_TEST

START_TEST(test_peek)
{
    struct model m;
    struct model_config c;
    struct err e = ERR_INIT;

    memset(&m, 0, sizeof m);
    ck_assert_msg(fx_demo(&m, &e) == 0, "%s", e.msg);
    model_config_peek(&m, &c);
    ck_assert_str_eq(c.arch, "llama");
    ck_assert_uint_eq(c.n_head, FX_DEMO_HEADS);
    ck_assert_uint_eq(c.n_head_kv, FX_DEMO_KV);
    model_close(&m);
    /* no metadata at all: empty, never failing */
    ck_assert_int_eq(fx_init(&m, "empty", &e), 0);
    model_config_peek(&m, &c);
    ck_assert_str_eq(c.arch, "");
    ck_assert_uint_eq(c.n_head, 0);
    ck_assert_uint_eq(c.n_head_kv, 0);
    fx_uint(&m, "num_heads", MV_U64, 6, &e);   /* aprender's field; KV defaults to it */
    model_config_peek(&m, &c);
    ck_assert_uint_eq(c.n_head, 6);
    ck_assert_uint_eq(c.n_head_kv, 6);
    model_close(&m);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_demo_every_format);
    tcase_add_test(tc, test_aprender_fields);
    tcase_add_loop_test(tc, test_shared_gguf, 0, 3);
    tcase_add_loop_test(tc, test_shared_hf, 0, 2);
    tcase_add_test(tc, test_shape_mismatch);
    tcase_add_test(tc, test_rope_scaling_and_meta);
    tcase_add_test(tc, test_llama3_from_config_json);
    tcase_add_test(tc, test_peek);
    suite_add_tcase(s, tc);
    return s;
}
