/*
 * check_tok.c - tokenizer.json <-> tokenizer.ggml.* (formats/safetensors/st_tokenizer.c).
 *
 * Hand-written tokenizer.json files beside a one-tensor model.safetensors check the
 * reader (string and pair merges, added special tokens, byte fallback, holes, side
 * files, malformed input); llama.cpp's vocab GGUFs from ../shared/fixtures (skipped
 * when absent) go GGUF -> tokenizer.json -> read back, element by element; and
 * apr-convert carries a tokenizer.json from SafeTensors to GGUF and back verbatim.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tu.h"
#include "../../convert/convert.h"
#include "../../formats/gguf/gguf.h"
#include "../../formats/model.h"
#include "../../formats/safetensors/st.h"
#include "../../common/banned.h"

static void put_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void put(const char *name, const char *text)
{
    put_file(tu_tpath(name), text, strlen(text));
}

/* A valid one-tensor model.safetensors in the test's directory. */
static void put_weights(void)
{
    static const char hdr[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    char buf[128];
    size_t n = sizeof hdr - 1, padded = (n + 7) & ~(size_t)7;

    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (char)((padded >> (8 * i)) & 0xff);
    memcpy(buf + 8, hdr, n);
    memset(buf + 8 + n, ' ', padded - n);
    put_file(tu_tpath("model.safetensors"), buf, 8 + padded + 4);
}

static const struct model_kv *need(const struct model *m, const char *key, enum model_vtype t)
{
    const struct model_kv *kv = model_kv_find(m, key);
    ck_assert_msg(kv != NULL, "key '%s' missing", key);
    ck_assert_msg(kv->val.type == t, "key '%s': type %s", key, model_vtype_name(kv->val.type));
    return kv;
}

static void want_str(const struct model *m, const char *key, const char *v)
{
    const struct model_kv *kv = need(m, key, MV_STR);
    ck_assert_msg(slice_eq_cstr(kv->val.v.s, v), "key '%s': '%.*s', want '%s'", key,
                  (int)kv->val.v.s.n, kv->val.v.s.p, v);
}

static void want_u(const struct model *m, const char *key, enum model_vtype t, uint64_t v)
{
    const struct model_kv *kv = need(m, key, t);
    ck_assert_uint_eq(kv->val.v.u, v);
}

static const struct model_val *want_arr(const struct model *m, const char *key,
                                        enum model_vtype elem, uint64_t n)
{
    const struct model_kv *kv = need(m, key, MV_ARR);
    ck_assert_msg(kv->val.v.arr.elem == elem, "key '%s': elements %s", key,
                  model_vtype_name(kv->val.v.arr.elem));
    ck_assert_uint_eq(kv->val.v.arr.n, n);
    return &kv->val;
}

static void want_strs(const struct model *m, const char *key, const char *const *v, uint64_t n)
{
    const struct model_val *a = want_arr(m, key, MV_STR, n);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_msg(slice_eq_cstr(a->v.arr.strs[i], v[i]), "%s[%llu]: '%.*s', want '%s'", key,
                      (unsigned long long)i, (int)a->v.arr.strs[i].n, a->v.arr.strs[i].p, v[i]);
}

static void want_i32s(const struct model *m, const char *key, const int *v, uint64_t n)
{
    const struct model_val *a = want_arr(m, key, MV_I32, n);
    for (uint64_t i = 0; i < n; i++)
        ck_assert_msg(model_arr_get_i64(a, i) == v[i], "%s[%llu]: %lld, want %d", key,
                      (unsigned long long)i, (long long)model_arr_get_i64(a, i), v[i]);
}

static int key_pos(const struct model *m, const char *key)
{
    for (uint64_t i = 0; i < m->n_kv; i++)
        if (slice_eq_cstr(m->kv[i].key, key))
            return (int)i;
    return -1;
}

/* ---- byte-level BPE with "a b" merges */

static const char gpt2_json[] =
    "{\"version\":\"1.0\",\"added_tokens\":["
    "{\"id\":4,\"content\":\"<|endoftext|>\",\"special\":true},"
    "{\"id\":5,\"content\":\"hello\\u2581x\",\"special\":false},"
    "{\"id\":6,\"content\":\"<|im_start|>\",\"special\":false}],"
    "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"
    "\"decoder\":{\"type\":\"ByteLevel\"},"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\\u0120\":3},"
    "\"merges\":[\"a b\",\"\\u0120 a\"]}}";

START_TEST(tok_string_merges)
{
    static const char *const toks[] = { "a", "b", "ab", "\xc4\xa0", "<|endoftext|>",
                                        "hello x", "<|im_start|>", "[PAD7]", "[PAD8]" };
    static const int types[] = { 1, 1, 1, 1, 3, 4, 3, 5, 5 };
    static const char *const merges[] = { "a b", "\xc4\xa0 a" };
    struct model m;
    struct err e = ERR_INIT;
    const struct model_kv *hf;

    put_weights();
    put("tokenizer.json", gpt2_json);
    put("config.json", "{\"model_type\":\"qwen2\",\"vocab_size\":9,\"bos_token_id\":4}");
    put("tokenizer_config.json", "{\"add_bos_token\":false,\"bos_token\":null,"
        "\"eos_token\":{\"content\":\"<|endoftext|>\"},\"chat_template\":\"{{ x }}\"}");
    ck_assert_msg(st_open(&m, tu_dir, &e) == 0, "%s", e.msg);
    want_str(&m, "tokenizer.ggml.model", "gpt2");
    want_str(&m, "tokenizer.ggml.pre", "qwen2");
    want_strs(&m, "tokenizer.ggml.tokens", toks, 9);
    want_i32s(&m, "tokenizer.ggml.token_type", types, 9);
    want_strs(&m, "tokenizer.ggml.merges", merges, 2);
    ck_assert_ptr_null(model_kv_find(&m, "tokenizer.ggml.scores"));
    want_u(&m, "tokenizer.ggml.bos_token_id", MV_U32, 4);   /* from config.json */
    want_u(&m, "tokenizer.ggml.eos_token_id", MV_U32, 4);   /* from tokenizer_config.json */
    want_u(&m, "tokenizer.ggml.add_bos_token", MV_BOOL, 0);
    ck_assert_ptr_null(model_kv_find(&m, "tokenizer.ggml.add_eos_token"));
    want_str(&m, "tokenizer.chat_template", "{{ x }}");
    hf = need(&m, "tokenizer.huggingface.json", MV_STR);
    ck_assert(slice_eq_cstr(hf->val.v.s, gpt2_json));
    /* after the GGUF keys, before hf.config.*; chat template after the ids */
    ck_assert_int_lt(key_pos(&m, "general.architecture"), key_pos(&m, "tokenizer.ggml.model"));
    ck_assert_int_lt(key_pos(&m, "tokenizer.huggingface.json"),
                     key_pos(&m, "hf.config.model_type"));
    ck_assert_int_lt(key_pos(&m, "tokenizer.ggml.add_bos_token"),
                     key_pos(&m, "tokenizer.chat_template"));
    model_close(&m);
}
END_TEST

/* ---- ["a", "b"] pair merges (tokenizers >= 0.20), spaces inside parts */

START_TEST(tok_pair_merges)
{
    static const char *const merges[] = { "a b", "a\xc4\xa0\x62 c" };
    struct model m;
    struct err e = ERR_INIT;

    put_weights();
    put("tokenizer.json",
        "{\"added_tokens\":[],\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
        "{\"type\":\"Split\"},{\"type\":\"ByteLevel\"}]},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"a bc\":4},"
        "\"merges\":[[\"a\",\"b\"],[\"a b\",\"c\"]]}}");
    ck_assert_msg(st_open(&m, tu_dir, &e) == 0, "%s", e.msg);
    want_str(&m, "tokenizer.ggml.model", "gpt2");
    want_str(&m, "tokenizer.ggml.pre", "default");
    want_strs(&m, "tokenizer.ggml.merges", merges, 2);
    model_close(&m);
}
END_TEST

/* ---- SentencePiece-style BPE with byte fallback */

START_TEST(tok_byte_fallback)
{
    static const char *const toks[] = { "<unk>", "<s>", "</s>", "<0x41>", "\xe2\x96\x81", "a",
                                        "\xe2\x96\x81\x61", "<tool>" };
    static const int types[] = { 2, 3, 3, 6, 1, 1, 1, 4 };
    static const float scores[] = { 0, 0, 0, 0, -6, -7, -1, 0 };
    struct model m;
    struct err e = ERR_INIT;
    const struct model_val *sc;

    put_weights();
    put("tokenizer.json",
        "{\"added_tokens\":["
        "{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
        "{\"id\":1,\"content\":\"<s>\",\"special\":true},"
        "{\"id\":2,\"content\":\"</s>\",\"special\":true},"
        "{\"id\":7,\"content\":\"<tool>\",\"special\":false}],"
        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\"}]},"
        "\"pre_tokenizer\":null,"
        "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"}]},"
        "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true,"
        "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"<0x41>\":3,\"\\u2581\":4,\"a\":5,"
        "\"\\u2581a\":6},\"merges\":[\"\\u2581 a\"]}}");
    put("config.json", "{\"model_type\":\"llama\",\"eos_token_id\":2}");
    put("tokenizer_config.json", "{\"add_bos_token\":true,\"add_eos_token\":false,"
        "\"bos_token\":\"<s>\",\"unk_token\":\"<unk>\"}");
    put("generation_config.json", "{\"pad_token_id\":0,\"eos_token_id\":[2,7]}");
    put("chat_template.jinja", "{% for m in messages %}{{ m }}{% endfor %}");
    ck_assert_msg(st_open(&m, tu_dir, &e) == 0, "%s", e.msg);
    want_str(&m, "tokenizer.ggml.model", "llama");
    want_str(&m, "tokenizer.ggml.pre", "default");
    want_strs(&m, "tokenizer.ggml.tokens", toks, 8);
    want_i32s(&m, "tokenizer.ggml.token_type", types, 8);
    ck_assert_ptr_null(model_kv_find(&m, "tokenizer.ggml.merges"));
    sc = want_arr(&m, "tokenizer.ggml.scores", MV_F32, 8);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(model_arr_get_f64(sc, (uint64_t)i) == scores[i], "score %d: %g", i,
                      model_arr_get_f64(sc, (uint64_t)i));
    want_u(&m, "tokenizer.ggml.bos_token_id", MV_U32, 1);
    want_u(&m, "tokenizer.ggml.eos_token_id", MV_U32, 2);
    want_u(&m, "tokenizer.ggml.unknown_token_id", MV_U32, 0);
    want_u(&m, "tokenizer.ggml.padding_token_id", MV_U32, 0);
    want_u(&m, "tokenizer.ggml.add_bos_token", MV_BOOL, 1);
    want_u(&m, "tokenizer.ggml.add_eos_token", MV_BOOL, 0);
    want_str(&m, "tokenizer.chat_template", "{% for m in messages %}{{ m }}{% endfor %}");
    model_close(&m);
}
END_TEST

/* ---- chat templates as a list */

START_TEST(tok_chat_template_list)
{
    static const char *const names[] = { "tool_use" };
    struct model m;
    struct err e = ERR_INIT;

    put_weights();
    put("tokenizer.json", gpt2_json);
    put("tokenizer_config.json", "{\"chat_template\":[{\"name\":\"default\",\"template\":\"D\"},"
        "{\"name\":\"tool-use\",\"template\":\"T\"}]}");
    ck_assert_msg(st_open(&m, tu_dir, &e) == 0, "%s", e.msg);
    want_str(&m, "tokenizer.chat_template", "D");
    want_str(&m, "tokenizer.chat_template.tool_use", "T");
    want_strs(&m, "tokenizer.chat_templates", names, 1);
    model_close(&m);
}
END_TEST

/* ---- other model types keep only the text */

START_TEST(tok_wordpiece_kept)
{
    static const char text[] = "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[UNK]\":0}}}";
    struct model m;
    struct err e = ERR_INIT;

    put_weights();
    put("tokenizer.json", text);
    ck_assert_msg(st_open(&m, tu_dir, &e) == 0, "%s", e.msg);
    ck_assert_ptr_null(model_kv_find(&m, "tokenizer.ggml.tokens"));
    ck_assert(slice_eq_cstr(need(&m, "tokenizer.huggingface.json", MV_STR)->val.v.s, text));
    ck_assert(tu_has_note(&m, "WordPiece"));
    model_close(&m);
}
END_TEST

/* ---- malformed tokenizer.json: an error naming the file, with an offset */

static const struct bad {
    const char *name, *text;
    enum err_code code;
    const char *frag;
} bads[] = {
    { "truncated",   "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}",       ERR_FORMAT, "invalid JSON" },
    { "not object",  "[1,2]",                                                ERR_FORMAT, "not a JSON object" },
    { "no model",    "{\"version\":\"1.0\"}",                                ERR_FORMAT, "'model'" },
    { "type number", "{\"model\":{\"type\":3}}",                             ERR_FORMAT, "'model.type'" },
    { "no vocab",    "{\"model\":{\"type\":\"BPE\",\"merges\":[]}}",          ERR_FORMAT, "'model.vocab'" },
    { "id string",   "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"0\"}}}", ERR_FORMAT, "'model.vocab' id" },
    { "id negative", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}",    ERR_FORMAT, "'model.vocab' id" },
    { "id too big",  "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":4294967296}}}", ERR_FORMAT, "largest token id" },
    { "id far",      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":9000000}}}", ERR_LIMIT, "far past" },
    { "dup id",      "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0}}}", ERR_FORMAT, "appears twice" },
    { "merge num",   "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[1]}}", ERR_FORMAT, "merge 0" },
    { "merge triple","{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\",\"a\",\"a\"]]}}", ERR_FORMAT, "merge 0" },
    { "added str",   "{\"added_tokens\":[\"x\"],\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", ERR_FORMAT, "'added_tokens' entry" },
    { "added no id", "{\"added_tokens\":[{\"content\":\"x\"}],\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", ERR_FORMAT, "'added_tokens' id" },
    { "special str", "{\"added_tokens\":[{\"id\":0,\"content\":\"x\",\"special\":\"y\"}],\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", ERR_FORMAT, "special" },
    { "bad utf8",    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\xff\":0}}}",  ERR_FORMAT, "invalid JSON" },
};

START_TEST(tok_malformed)
{
    const struct bad *b = &bads[_i];
    struct model m;
    struct err e = ERR_INIT;

    put_weights();
    put("tokenizer.json", b->text);
    ck_assert_int_eq(st_open(&m, tu_dir, &e), -1);
    ck_assert_msg(e.code == b->code, "%s: code %s (%s)", b->name, err_code_name(e.code), e.msg);
    ck_assert_msg(strstr(e.msg, "tokenizer.json") && strstr(e.msg, b->frag), "%s: '%s'", b->name,
                  e.msg);
    ck_assert_msg(e.off != ERR_NO_OFF && strstr(e.msg, "offset"), "%s: no offset: '%s'", b->name,
                  e.msg);
    ck_assert_uint_eq(m.n_kv, 0);   /* left closed */
}
END_TEST

START_TEST(tok_malformed_side)
{
    struct model m;
    struct err e = ERR_INIT;

    put_weights();
    put("tokenizer.json", gpt2_json);
    put("tokenizer_config.json", "{\"bos_token\":");
    ck_assert_int_eq(st_open(&m, tu_dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "tokenizer_config.json") && e.off != ERR_NO_OFF, "%s", e.msg);
}
END_TEST

/* ---- st_tokenizer_read_mem: the same reader without a directory */

/* A fresh model, as st_open would start it, for st_tokenizer_read_mem. */
static void mem_init(struct model *m)
{
    struct err e = ERR_INIT;
    ck_assert_msg(model__init(m, MODEL_FMT_SAFETENSORS, "mem", &e) == 0, "%s", e.msg);
}

/* The same tokenizer.ggml.* keys, types and values as st_open on a directory. */
START_TEST(tok_read_mem)
{
    static const char *const keys[] = { "tokenizer.ggml.model", "tokenizer.ggml.pre",
        "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
        "tokenizer.huggingface.json" };
    struct model a, b;
    struct err e = ERR_INIT;

    put_weights();
    put("tokenizer.json", gpt2_json);
    ck_assert_msg(st_open(&a, tu_dir, &e) == 0, "%s", e.msg);
    mem_init(&b);
    ck_assert_msg(st_tokenizer_read_mem(&b, gpt2_json, strlen(gpt2_json), NULL, &e) == 0, "%s",
                  e.msg);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const struct model_kv *x = model_kv_find(&a, keys[i]), *y = model_kv_find(&b, keys[i]);
        ck_assert_msg(x && y, "%s missing", keys[i]);
        ck_assert_int_eq(x->val.type, y->val.type);
        if (x->val.type == MV_STR)
            ck_assert(slice_eq(x->val.v.s, y->val.v.s));
        if (x->val.type != MV_ARR)
            continue;
        ck_assert_int_eq(x->val.v.arr.elem, y->val.v.arr.elem);
        ck_assert_uint_eq(x->val.v.arr.n, y->val.v.arr.n);
        for (uint64_t k = 0; k < x->val.v.arr.n; k++)
            if (x->val.v.arr.elem == MV_STR)
                ck_assert(slice_eq(x->val.v.arr.strs[k], y->val.v.arr.strs[k]));
            else
                ck_assert(model_arr_get_i64(&x->val, k) == model_arr_get_i64(&y->val, k));
    }
    /* the text is copied: the model does not borrow the caller's buffer */
    ck_assert_ptr_ne(model_kv_find(&b, "tokenizer.huggingface.json")->val.v.s.p, gpt2_json);
    model_close(&a);
    model_close(&b);
}
END_TEST

/* The malformed table again: same code, the name in the message, an offset. */
START_TEST(tok_malformed_mem)
{
    const struct bad *b = &bads[_i];
    struct model m;
    struct err e = ERR_INIT;

    mem_init(&m);
    ck_assert_int_eq(st_tokenizer_read_mem(&m, b->text, strlen(b->text), "t/tokenizer.json", &e),
                     -1);
    ck_assert_msg(e.code == b->code, "%s: code %s (%s)", b->name, err_code_name(e.code), e.msg);
    ck_assert_msg(strstr(e.msg, "t/tokenizer.json") && strstr(e.msg, b->frag), "%s: '%s'",
                  b->name, e.msg);
    ck_assert_msg(e.off != ERR_NO_OFF && strstr(e.msg, "offset"), "%s: no offset: '%s'", b->name,
                  e.msg);
    ck_assert_uint_eq(m.n_kv, 0);   /* nothing added */
    model_close(&m);
}
END_TEST

/* The fuzz seeds (tests/fuzz/corpus/tok) stay valid tokenizers with a vocabulary. */
static const char *const tok_seeds[] = { "bpe-string-merges.json", "bpe-pair-merges.json",
                                         "bpe-added-special.json", "spm-byte-fallback.json" };

START_TEST(tok_fuzz_seeds)
{
    char path[256];
    struct model m;
    struct err e = ERR_INIT;
    char *text;
    size_t n;

    snprintf(path, sizeof path, "tests/fuzz/corpus/tok/%s", tok_seeds[_i]);
    if (access(path, R_OK) != 0) {
        tu_skip(path);   /* not found: run from the repository root */
        return;
    }
    text = tu_slurp_str(path, &n);
    mem_init(&m);
    ck_assert_msg(st_tokenizer_read_mem(&m, text, n, path, &e) == 0, "%s", e.msg);
    ck_assert_ptr_nonnull(model_kv_find(&m, "tokenizer.ggml.tokens"));
    ck_assert_ptr_nonnull(model_kv_find(&m, "tokenizer.ggml.token_type"));
    model_close(&m);
    free(text);
}
END_TEST

/* Every proper prefix of a valid tokenizer.json is a clean ERR_FORMAT naming the file. */
START_TEST(tok_truncated)
{
    size_t n = strlen(gpt2_json);

    put_weights();
    for (size_t k = 0; k < n; k++) {
        struct model m;
        struct err e = ERR_INIT;
        put_file(tu_tpath("tokenizer.json"), gpt2_json, k);
        ck_assert_msg(st_open(&m, tu_dir, &e) == -1, "prefix %zu accepted", k);
        ck_assert_msg(e.code == ERR_FORMAT && strstr(e.msg, "tokenizer.json") &&
                      e.off != ERR_NO_OFF, "prefix %zu: %s", k, e.msg);
    }
}
END_TEST

/* ---- verbatim reproduction */

START_TEST(tok_verbatim)
{
    struct model m;
    struct err e = ERR_INIT;
    char *out = tu_path(tu_dir, "out"), *tj;
    size_t n;

    put_weights();
    put("tokenizer.json", gpt2_json);
    ck_assert_int_eq(mkdir(out, 0700), 0);
    ck_assert_msg(st_open(&m, tu_dir, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_write_tokenizer(&m, out, &e) == 0, "%s", e.msg);
    model_close(&m);
    tj = tu_slurp_str(tu_tpath("out/tokenizer.json"), &n);
    ck_assert_uint_eq(n, strlen(gpt2_json));
    ck_assert(memcmp(tj, gpt2_json, n) == 0);
    free(tj);
    ck_assert_int_eq(access(tu_tpath("out/tokenizer_config.json"), F_OK), 0);
    ck_assert_int_eq(tu_dir_count(out), 2);   /* no temporary files left */
    free(out);
}
END_TEST

/* A model without a tokenizer writes nothing. */
START_TEST(tok_write_none)
{
    struct model m;
    struct err e = ERR_INIT;

    memset(&m, 0, sizeof m);
    ck_assert_int_eq(st_write_tokenizer(&m, tu_dir, &e), 0);
    ck_assert_int_eq(tu_dir_count(tu_dir), 0);
}
END_TEST

/* ---- GGUF vocab -> tokenizer.json -> read back */

static void same_arr(const struct model *a, const struct model *b, const char *key)
{
    const struct model_kv *x = model_kv_find(a, key), *y = model_kv_find(b, key);

    if (!x) {
        ck_assert_msg(!y, "'%s' appeared", key);
        return;
    }
    ck_assert_msg(y != NULL, "'%s' lost", key);
    ck_assert_int_eq(y->val.type, MV_ARR);
    ck_assert_uint_eq(x->val.v.arr.n, y->val.v.arr.n);
    for (uint64_t i = 0; i < x->val.v.arr.n; i++) {
        if (x->val.v.arr.elem == MV_STR) {
            struct slice s = x->val.v.arr.strs[i], t = y->val.v.arr.strs[i];
            ck_assert_msg(slice_eq(s, t), "%s[%llu]: '%.*s' became '%.*s'", key,
                          (unsigned long long)i, (int)s.n, s.p, (int)t.n, t.p);
        } else {
            ck_assert_msg(model_arr_get_i64(&x->val, i) == model_arr_get_i64(&y->val, i),
                          "%s[%llu] differs", key, (unsigned long long)i);
        }
    }
}

static void roundtrip(const char *name)
{
    static const char *const ids[] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
        "tokenizer.ggml.add_eos_token",
    };
    char rel[128], *path;
    struct model g, s;
    struct err e = ERR_INIT;

    snprintf(rel, sizeof rel, "gguf/vocab/ggml-vocab-%s.gguf", name);
    if (!tu_need_shared(rel))
        return;
    path = tu_path(tu_shared_dir(), rel);
    ck_assert_msg(gguf_open(&g, path, &e) == 0, "%s", e.msg);
    ck_assert_msg(st_write_tokenizer(&g, tu_dir, &e) == 0, "%s", e.msg);
    put_weights();
    ck_assert_msg(st_open(&s, tu_dir, &e) == 0, "%s", e.msg);
    same_arr(&g, &s, "tokenizer.ggml.tokens");
    same_arr(&g, &s, "tokenizer.ggml.token_type");
    same_arr(&g, &s, "tokenizer.ggml.merges");
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        const struct model_kv *x = model_kv_find(&g, ids[i]), *y = model_kv_find(&s, ids[i]);
        ck_assert_msg((x == NULL) == (y == NULL), "'%s' lost or added", ids[i]);
        ck_assert_msg(!x || (x->val.type == y->val.type && x->val.v.u == y->val.v.u),
                      "'%s' differs", ids[i]);
    }
    {
        struct slice a, b;
        ck_assert(model_kv_get_str(&g, "tokenizer.ggml.model", &a) == 0);
        ck_assert(model_kv_get_str(&s, "tokenizer.ggml.model", &b) == 0);
        ck_assert(slice_eq(a, b));
    }
    /* and the written text is reproduced verbatim from there on */
    {
        char *out = tu_path(tu_dir, "again"), *t1, *t2;
        size_t n1, n2;
        ck_assert_int_eq(mkdir(out, 0700), 0);
        ck_assert_msg(st_write_tokenizer(&s, out, &e) == 0, "%s", e.msg);
        t1 = tu_slurp_str(tu_tpath("tokenizer.json"), &n1);
        t2 = tu_slurp_str(tu_tpath("again/tokenizer.json"), &n2);
        ck_assert(n1 == n2 && memcmp(t1, t2, n1) == 0);
        free(t1);
        free(t2);
        free(out);
    }
    model_close(&s);
    model_close(&g);
    free(path);
}

START_TEST(tok_roundtrip_gpt2)
{
    roundtrip("gpt-2");
}
END_TEST

START_TEST(tok_roundtrip_llama_spm)
{
    roundtrip("llama-spm");
}
END_TEST

/* ---- apr-convert: SafeTensors dir + tokenizer.json -> GGUF -> SafeTensors dir */

START_TEST(tok_convert)
{
    struct convert_opts o = CONVERT_OPTS_INIT;
    struct err e = ERR_INIT;
    struct model g;
    char src[PATH_MAX + 64], root[PATH_MAX], *gg, *back, *a, *b;
    size_t na, nb;
    FILE *dn = fopen("/dev/null", "w");

    if (!tu_need_shared("hf/llama-bf16/model.safetensors"))
        return;
    ck_assert_ptr_nonnull(realpath(tu_shared_dir(), root));
    snprintf(src, sizeof src, "%s/hf/llama-bf16/model.safetensors", root);
    ck_assert_int_eq(mkdir(tu_tpath("src"), 0700), 0);
    ck_assert_int_eq(symlink(src, tu_tpath("src/model.safetensors")), 0);
    snprintf(src, sizeof src, "%s/hf/llama-bf16/config.json", root);
    ck_assert_int_eq(symlink(src, tu_tpath("src/config.json")), 0);
    put("src/tokenizer.json", gpt2_json);
    put("src/tokenizer_config.json", "{\"eos_token\":\"<|endoftext|>\"}");
    o.out = dn;
    o.diag = dn;
    o.quiet = 1;
    gg = tu_path(tu_dir, "m.gguf");
    back = tu_path(tu_dir, "back");
    ck_assert_msg(convert_run(&o, tu_tpath("src"), gg, &e) == 0, "%s", e.msg);
    ck_assert_msg(gguf_open(&g, gg, &e) == 0, "%s", e.msg);
    need(&g, "tokenizer.ggml.tokens", MV_ARR);
    want_u(&g, "tokenizer.ggml.eos_token_id", MV_U32, 4);
    want_str(&g, "tokenizer.ggml.pre", "llama-bpe");
    model_close(&g);
    o.to = "safetensors";
    ck_assert_msg(convert_run(&o, gg, back, &e) == 0, "%s", e.msg);
    a = tu_slurp_str(tu_tpath("src/tokenizer.json"), &na);
    b = tu_slurp_str(tu_tpath("back/tokenizer.json"), &nb);
    ck_assert(na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
    ck_assert_int_eq(access(tu_tpath("back/tokenizer_config.json"), F_OK), 0);
    free(gg);
    free(back);
    fclose(dn);
}
END_TEST

Suite *tok_suite(void)
{
    Suite *s = suite_create("tok");
    TCase *tc = tcase_create("tok");

    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tok_string_merges);
    tcase_add_test(tc, tok_pair_merges);
    tcase_add_test(tc, tok_byte_fallback);
    tcase_add_test(tc, tok_chat_template_list);
    tcase_add_test(tc, tok_wordpiece_kept);
    tcase_add_loop_test(tc, tok_malformed, 0, (int)(sizeof bads / sizeof *bads));
    tcase_add_test(tc, tok_malformed_side);
    tcase_add_test(tc, tok_read_mem);
    tcase_add_loop_test(tc, tok_malformed_mem, 0, (int)(sizeof bads / sizeof *bads));
    tcase_add_loop_test(tc, tok_fuzz_seeds, 0, (int)(sizeof tok_seeds / sizeof *tok_seeds));
    tcase_add_test(tc, tok_truncated);
    tcase_add_test(tc, tok_verbatim);
    tcase_add_test(tc, tok_write_none);
    tcase_add_test(tc, tok_roundtrip_gpt2);
    tcase_add_test(tc, tok_roundtrip_llama_spm);
    tcase_add_test(tc, tok_convert);
    suite_add_tcase(s, tc);
    return s;
}
