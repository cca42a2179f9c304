/*
 * check_convert_gguf.c - apr-convert's GGUF output for llama.cpp (convert/convert.c):
 * F16/BF16 norms and 1-D tensors widened to F32 and recorded in "apr_tools.narrowed",
 * narrowed back exactly (or kept F32) on the way to SafeTensors and APR;
 * tokenizer.ggml.model "none" for models without a tokenizer; the same derived keys
 * (general.file_type, rope.dimension_count) on HF -> GGUF and HF -> APR -> GGUF.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../convert/convert.h"
#include "../../dequant/dq.h"
#include "../../formats/model.h"
#include "../fixtures/gguf_fix.h"
#include "tu.h"
#include "../../common/banned.h"

/* Convert with --verify, quietly; json != NULL: the JSON report goes there. */
static int conv_to(const char *in, const char *out, const char *dtype, FILE *json,
                   struct err *e)
{
    struct convert_opts o = CONVERT_OPTS_INIT;
    o.dtype = dtype;
    o.verify = 1;
    o.quiet = 1;
    o.n_threads = 1;
    o.json = json != NULL;
    o.out = json;
    return convert_run(&o, in, out, e);
}

static int conv(const char *in, const char *out, struct err *e)
{
    return conv_to(in, out, NULL, NULL, e);
}

static int same_file(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *pa = tu_slurp(a, &na), *pb = tu_slurp(b, &nb);
    int same = na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return same;
}

static int is_norm(struct slice n)
{
    static const char suf[] = "_norm.weight";
    return n.n >= sizeof suf - 1 && memcmp(n.p + n.n - (sizeof suf - 1), suf, sizeof suf - 1) == 0;
}

/* The strings of the ARRAY[STRING] key, or NULL. */
static const struct model_val *str_arr(const struct model *m, const char *key)
{
    const struct model_kv *kv = model_kv_find(m, key);
    if (!kv || kv->val.type != MV_ARR || kv->val.v.arr.elem != MV_STR)
        return NULL;
    return &kv->val;
}

static int arr_has(const struct model_val *a, const char *s)
{
    for (uint64_t i = 0; a && i < a->v.arr.n; i++)
        if (slice_eq_cstr(a->v.arr.strs[i], s))
            return 1;
    return 0;
}

static uint64_t kv_u32(const struct model *m, const char *key)
{
    const struct model_kv *kv = model_kv_find(m, key);
    ck_assert_msg(kv != NULL, "%s missing", key);
    ck_assert_msg(kv->val.type == MV_U32, "%s is not UINT32", key);
    return kv->val.v.u;
}

static const char *const hfs[] = { "llama-bf16", "qwen2-f32" };

/* The HF fixture's directory, or NULL (skip). */
static const char *hf_dir(int i, char *buf, size_t cap)
{
    char rel[64];
    snprintf(rel, sizeof rel, "hf/%s", hfs[i]);
    if (!tu_need_shared(rel))
        return NULL;
    snprintf(buf, cap, "%s/%s", tu_shared_dir(), rel);
    return buf;
}

/* llama-bf16 -> GGUF: F32 norms, recorded; back to HF and APR: BF16 again, same bytes */
START_TEST(test_bf16_norms)
{
    char src[512], f[600];
    struct err e = ERR_INIT;
    struct model m, s;
    const struct model_val *rec;
    uint64_t n_f32 = 0;

    if (!hf_dir(0, src, sizeof src))
        return;
    ck_assert_msg(conv(src, tu_tpath("l.gguf"), &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("l.gguf"), &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&s, src, &e) == 0, "%s", e.msg);
    rec = str_arr(&m, "apr_tools.narrowed");
    ck_assert_ptr_nonnull(rec);
    ck_assert(slice_eq_cstr(m.kv[m.n_kv - 1].key, "apr_tools.narrowed"));   /* last */
    for (uint64_t i = 0; i < m.n_tensors; i++) {
        const struct model_tensor *t = &m.tensors[i];
        char ent[300];
        snprintf(ent, sizeof ent, "%.*s=BF16", (int)t->name.n, t->name.p);
        if (t->n_dims <= 1 || is_norm(t->name)) {
            ck_assert_msg(t->dtype == DT_F32, "%.*s is not F32", (int)t->name.n, t->name.p);
            ck_assert_msg(arr_has(rec, ent), "%s not recorded", ent);
            n_f32++;
        } else {
            ck_assert_int_eq(t->dtype, DT_BF16);
            ck_assert(!arr_has(rec, ent));
        }
    }
    ck_assert_uint_eq(n_f32, 7);   /* 2 per layer x 3, output_norm */
    ck_assert_uint_eq(rec->v.arr.n, n_f32);
    {
        /* the widening is exact: output_norm == model.norm widened */
        const struct model_tensor *a = model_tensor_find(&m, "output_norm.weight");
        const struct model_tensor *b = model_tensor_find(&s, "model.norm.weight");
        float *fb;
        ck_assert(a && b && b->dtype == DT_BF16);
        fb = dq_tensor_to_f32_new(b, 1, &e);
        ck_assert_ptr_nonnull(fb);
        ck_assert(memcmp(a->data, fb, (size_t)b->n_elems * 4) == 0);
        free(fb);
    }
    model_close(&s);
    model_close(&m);

    /* GGUF -> HF: the norms narrowed back, byte-identical weights */
    ck_assert_msg(conv(tu_tpath("l.gguf"), tu_tpath("hf/"), &e) == 0, "%s", e.msg);
    snprintf(f, sizeof f, "%s/model.safetensors", src);
    ck_assert(same_file(f, tu_tpath("hf/model.safetensors")));
    /* GGUF -> APR: BF16 norms, no record kept; -> GGUF: the same file again */
    ck_assert_msg(conv(tu_tpath("l.gguf"), tu_tpath("l.apr"), &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("l.apr"), &e) == 0, "%s", e.msg);
    for (uint64_t i = 0; i < m.n_tensors; i++)
        ck_assert_int_eq(m.tensors[i].dtype, DT_BF16);
    ck_assert_ptr_null(model_kv_find(&m, "apr_tools.narrowed"));
    model_close(&m);
    ck_assert_msg(conv(tu_tpath("l.apr"), tu_tpath("l2.gguf"), &e) == 0, "%s", e.msg);
    ck_assert(same_file(tu_tpath("l.gguf"), tu_tpath("l2.gguf")));
    ck_assert_msg(conv(tu_tpath("l.apr"), tu_tpath("hf2/"), &e) == 0, "%s", e.msg);
    ck_assert(same_file(f, tu_tpath("hf2/model.safetensors")));
}
END_TEST

/* The report: widen on the way to GGUF, narrow on the way back */
START_TEST(test_report)
{
    char src[512];
    struct err e = ERR_INIT;
    char *buf = NULL;
    size_t n = 0;
    FILE *js;

    if (!hf_dir(0, src, sizeof src))
        return;
    js = open_memstream(&buf, &n);
    ck_assert_ptr_nonnull(js);
    ck_assert_msg(conv_to(src, tu_tpath("l.gguf"), NULL, js, &e) == 0, "%s", e.msg);
    fflush(js);
    ck_assert_ptr_nonnull(strstr(buf, "\"widened\": 7"));
    ck_assert_ptr_nonnull(strstr(buf, "\"action\": \"widen\""));
    ck_assert_ptr_nonnull(strstr(buf, "llama.cpp needs norms"));
    fclose(js);
    free(buf);
    buf = NULL;
    js = open_memstream(&buf, &n);
    ck_assert_ptr_nonnull(js);
    ck_assert_msg(conv_to(tu_tpath("l.gguf"), tu_tpath("hf/"), NULL, js, &e) == 0, "%s", e.msg);
    fflush(js);
    ck_assert_ptr_nonnull(strstr(buf, "\"widened\": 0"));
    ck_assert_ptr_nonnull(strstr(buf, "\"narrowed\": 7"));
    ck_assert_ptr_nonnull(strstr(buf, "\"action\": \"narrow\""));
    fclose(js);
    free(buf);
}
END_TEST

/* No tokenizer: tokenizer.ggml.model "none" and {arch}.vocab_size; none back in HF */
START_TEST(test_no_tokenizer)
{
    char src[512];
    struct err e = ERR_INIT;
    struct model m;
    struct slice s;
    char key[64];
    size_t n;
    char *cfg;

    if (!hf_dir(_i, src, sizeof src))
        return;
    ck_assert_msg(conv(src, tu_tpath("m.gguf"), &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("m.gguf"), &e) == 0, "%s", e.msg);
    ck_assert_int_eq(model_kv_get_str(&m, "tokenizer.ggml.model", &s), 0);
    ck_assert(slice_eq_cstr(s, "none"));
    ck_assert_ptr_null(model_kv_find(&m, "tokenizer.ggml.tokens"));
    ck_assert_int_eq(model_kv_get_str(&m, "general.architecture", &s), 0);
    snprintf(key, sizeof key, "%.*s.vocab_size", (int)s.n, s.p);
    ck_assert_uint_eq(kv_u32(&m, key), 1024);
    model_close(&m);
    ck_assert_msg(conv(tu_tpath("m.gguf"), tu_tpath("hf/"), &e) == 0, "%s", e.msg);
    ck_assert_int_ne(access(tu_tpath("hf/tokenizer.json"), F_OK), 0);
    ck_assert_int_ne(access(tu_tpath("hf/tokenizer_config.json"), F_OK), 0);
    cfg = tu_slurp_str(tu_tpath("hf/config.json"), &n);
    ck_assert_ptr_null(strstr(cfg, "none"));
    ck_assert_ptr_null(strstr(cfg, "tokenizer"));
    free(cfg);
    /* through APR too */
    ck_assert_msg(conv(tu_tpath("m.gguf"), tu_tpath("m.apr"), &e) == 0, "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("m.apr"), tu_tpath("hf2/"), &e) == 0, "%s", e.msg);
    ck_assert_int_ne(access(tu_tpath("hf2/tokenizer.json"), F_OK), 0);
}
END_TEST

/* HF -> GGUF and HF -> APR -> GGUF: byte-identical, with file_type and rope dims */
START_TEST(test_via_apr_same)
{
    char src[512];
    struct err e = ERR_INIT;
    struct model m;

    if (!hf_dir(_i, src, sizeof src))
        return;
    ck_assert_msg(conv(src, tu_tpath("d.gguf"), &e) == 0, "%s", e.msg);
    ck_assert_msg(conv(src, tu_tpath("m.apr"), &e) == 0, "%s", e.msg);
    ck_assert_msg(conv(tu_tpath("m.apr"), tu_tpath("v.gguf"), &e) == 0, "%s", e.msg);
    ck_assert_msg(same_file(tu_tpath("d.gguf"), tu_tpath("v.gguf")), "%s: routes differ", hfs[_i]);
    ck_assert_msg(model_open(&m, tu_tpath("v.gguf"), &e) == 0, "%s", e.msg);
    if (_i == 0) {
        ck_assert_uint_eq(kv_u32(&m, "general.file_type"), 32);   /* MOSTLY_BF16 */
        ck_assert_uint_eq(kv_u32(&m, "llama.rope.dimension_count"), 32);
    } else {
        ck_assert_uint_eq(kv_u32(&m, "general.file_type"), 0);    /* ALL_F32 */
        ck_assert_ptr_null(model_kv_find(&m, "qwen2.rope.dimension_count"));
        ck_assert_ptr_null(model_kv_find(&m, "apr_tools.narrowed"));
    }
    model_close(&m);
}
END_TEST

/* The demo model with tensor name stored as F16 (its values rounded); written to path. */
static void write_demo_f16(const char *path, const char *name)
{
    struct model m;
    struct err e = ERR_INIT;
    struct model_tensor *t;
    uint8_t *p;

    memset(&m, 0, sizeof m);
    ck_assert_msg(fx_demo(&m, &e) == 0, "%s", e.msg);
    t = (struct model_tensor *)model_tensor_find(&m, name);
    ck_assert_ptr_nonnull(t);
    p = model__alloc(&m, (size_t)t->n_elems * 2, &e);
    ck_assert_ptr_nonnull(p);
    for (int64_t i = 0; i < t->n_elems; i++) {
        float f;
        uint16_t h;
        memcpy(&f, t->data + 4 * i, 4);
        h = dq_f32_to_f16(f);
        memcpy(p + 2 * i, &h, 2);
    }
    t->dtype = DT_F16;
    t->stored_dtype = DT_F16;
    t->size = (uint64_t)t->n_elems * 2;
    t->data = p;
    ck_assert_msg(gguf_write(&m, path, NULL, &e) == 0, "%s", e.msg);
    model_close(&m);
}

/* F16 too; GGUF output of a GGUF keeps what it lists; an inexact entry stays F32 */
START_TEST(test_f16_and_inexact)
{
    struct err e = ERR_INIT;
    struct model m, a;
    const struct model_tensor *t, *u;
    const struct model_val *rec;
    char *buf = NULL;
    size_t n = 0;
    FILE *js;

    write_demo_f16(tu_tpath("d16.gguf"), "blk.0.attn_norm.weight");
    ck_assert_msg(conv(tu_tpath("d16.gguf"), tu_tpath("w.gguf"), &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("w.gguf"), &e) == 0, "%s", e.msg);
    t = model_tensor_find(&m, "blk.0.attn_norm.weight");
    ck_assert(t && t->dtype == DT_F32);
    rec = str_arr(&m, "apr_tools.narrowed");
    ck_assert(rec && rec->v.arr.n == 1 && arr_has(rec, "blk.0.attn_norm.weight=F16"));
    ck_assert_uint_eq(kv_u32(&m, "general.file_type"), 0);   /* kept: a GGUF's own key */
    model_close(&m);
    /* to HF: F16 again, the original bytes */
    ck_assert_msg(conv(tu_tpath("w.gguf"), tu_tpath("hf/"), &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("hf"), &e) == 0, "%s", e.msg);
    ck_assert_msg(model_open(&a, tu_tpath("d16.gguf"), &e) == 0, "%s", e.msg);
    t = model_tensor_find(&m, "model.layers.0.input_layernorm.weight");
    u = model_tensor_find(&a, "blk.0.attn_norm.weight");
    ck_assert(t && u && t->dtype == DT_F16 && t->size == u->size);
    ck_assert(memcmp(t->data, u->data, t->size) == 0);
    model_close(&a);
    model_close(&m);
    /* GGUF -> GGUF keeps the record of an F32 tensor it still holds */
    ck_assert_msg(conv(tu_tpath("w.gguf"), tu_tpath("w2.gguf"), &e) == 0, "%s", e.msg);
    ck_assert(same_file(tu_tpath("w.gguf"), tu_tpath("w2.gguf")));

    /* a record naming a tensor whose values are not all F16/BF16: F32 kept, and said */
    {
        static const char *const ents[] = { "output_norm.weight=BF16", "nope.weight=BF16",
                                            "token_embd.weight=Q8_0" };
        struct model d;
        memset(&d, 0, sizeof d);
        ck_assert_msg(fx_demo(&d, &e) == 0, "%s", e.msg);
        fx_arr_strs(&d, "apr_tools.narrowed", 3, ents, &e);
        ck_assert_msg(gguf_write(&d, tu_tpath("r.gguf"), NULL, &e) == 0, "%s", e.msg);
        model_close(&d);
    }
    js = open_memstream(&buf, &n);
    ck_assert_ptr_nonnull(js);
    ck_assert_msg(conv_to(tu_tpath("r.gguf"), tu_tpath("r/"), NULL, js, &e) == 0, "%s", e.msg);
    fflush(js);
    ck_assert_ptr_nonnull(strstr(buf, "kept F32: not every value survives F32 -> BF16"));
    ck_assert_ptr_nonnull(strstr(buf, "\"narrowed\": 0"));
    fclose(js);
    free(buf);
    ck_assert_msg(model_open(&m, tu_tpath("r"), &e) == 0, "%s", e.msg);
    for (uint64_t i = 0; i < m.n_tensors; i++)
        ck_assert_int_eq(m.tensors[i].dtype, DT_F32);
    model_close(&m);
    /* --dtype: no narrowing back */
    ck_assert_msg(conv_to(tu_tpath("w.gguf"), tu_tpath("f32/"), "f32", NULL, &e) == 0, "%s",
                  e.msg);
    ck_assert_msg(model_open(&m, tu_tpath("f32"), &e) == 0, "%s", e.msg);
    t = model_tensor_find(&m, "model.layers.0.input_layernorm.weight");
    ck_assert(t && t->dtype == DT_F32);
    model_close(&m);
}
END_TEST

Suite *convert_gguf_suite(void)
{
    Suite *s = suite_create("convert");   /* CK_RUN_SUITE=convert runs it too */
    TCase *tc = tcase_create("convert_gguf");

    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bf16_norms);
    tcase_add_test(tc, test_report);
    tcase_add_loop_test(tc, test_no_tokenizer, 0, (int)(sizeof hfs / sizeof *hfs));
    tcase_add_loop_test(tc, test_via_apr_same, 0, (int)(sizeof hfs / sizeof *hfs));
    tcase_add_test(tc, test_f16_and_inexact);
    suite_add_tcase(s, tc);
    return s;
}
