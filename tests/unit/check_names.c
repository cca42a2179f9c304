/*
 * check_names.c - the GGUF <-> HF <-> APR name map and the llama Q/K row permutation.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../formats/names.h"
#include "../../common/banned.h"

struct name_row {
    const char *gguf, *hf;
};

/* Every mapping of the table, for layer 0, layer 17 and the whole-model tensors. */
static const struct name_row rows[] = {
    { "token_embd.weight",            "model.embed_tokens.weight" },
    { "output_norm.weight",           "model.norm.weight" },
    { "output.weight",                "lm_head.weight" },
    { "blk.0.attn_norm.weight",       "model.layers.0.input_layernorm.weight" },
    { "blk.0.attn_q.weight",          "model.layers.0.self_attn.q_proj.weight" },
    { "blk.0.attn_k.weight",          "model.layers.0.self_attn.k_proj.weight" },
    { "blk.0.attn_v.weight",          "model.layers.0.self_attn.v_proj.weight" },
    { "blk.0.attn_output.weight",     "model.layers.0.self_attn.o_proj.weight" },
    { "blk.0.attn_q_norm.weight",     "model.layers.0.self_attn.q_norm.weight" },
    { "blk.0.attn_k_norm.weight",     "model.layers.0.self_attn.k_norm.weight" },
    { "blk.0.ffn_norm.weight",        "model.layers.0.post_attention_layernorm.weight" },
    { "blk.0.ffn_gate.weight",        "model.layers.0.mlp.gate_proj.weight" },
    { "blk.0.ffn_up.weight",          "model.layers.0.mlp.up_proj.weight" },
    { "blk.0.ffn_down.weight",        "model.layers.0.mlp.down_proj.weight" },
    /* qwen2 biases */
    { "blk.17.attn_q.bias",           "model.layers.17.self_attn.q_proj.bias" },
    { "blk.17.attn_k.bias",           "model.layers.17.self_attn.k_proj.bias" },
    { "blk.17.attn_v.bias",           "model.layers.17.self_attn.v_proj.bias" },
    { "blk.17.attn_output.weight",    "model.layers.17.self_attn.o_proj.weight" },
    { "blk.123.ffn_down.weight",      "model.layers.123.mlp.down_proj.weight" },
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

static const char *const archs[] = { "llama", "mistral", "qwen2", "qwen3", NULL };

START_TEST(test_to_hf_and_back)
{
    char buf[NAMES_MAX];
    for (int a = 0; a < 5; a++) {
        const char *arch = archs[a];
        ck_assert_int_eq(names_to_hf(arch, slice_from_cstr(rows[_i].gguf), buf, sizeof buf), 0);
        ck_assert_str_eq(buf, rows[_i].hf);
        ck_assert_int_eq(names_to_gguf(arch, slice_from_cstr(rows[_i].hf), buf, sizeof buf), 0);
        ck_assert_str_eq(buf, rows[_i].gguf);
        ck_assert_int_eq(names_canonical(arch, slice_from_cstr(rows[_i].gguf), buf, sizeof buf), 0);
        ck_assert_str_eq(buf, rows[_i].hf);
        ck_assert_int_eq(names_canonical(arch, slice_from_cstr(rows[_i].hf), buf, sizeof buf), 0);
        ck_assert_str_eq(buf, rows[_i].hf);
    }
    ck_assert_int_eq(names_is_gguf_style(slice_from_cstr(rows[_i].gguf)), 1);
    ck_assert_int_eq(names_is_gguf_style(slice_from_cstr(rows[_i].hf)), 0);
}
END_TEST

START_TEST(test_slices_not_terminated)
{
    /* Names borrow the mapping: the byte after the slice must not be read as part of it. */
    const char mem[] = "blk.3.attn_q.weightXYZ";
    struct slice s = { mem, strlen("blk.3.attn_q.weight") };
    char buf[NAMES_MAX];
    ck_assert_int_eq(names_to_hf("llama", s, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "model.layers.3.self_attn.q_proj.weight");
}
END_TEST

START_TEST(test_unknown_untouched)
{
    static const char *const unknown[] = {
        "rope_freqs.weight", "blk.0.ffn_gate_exps.weight", "blk.x.attn_q.weight",
        "blk..attn_q.weight", "blk.0.attn_q", "blk.0.attn_q.scale", "model.layers.0.foo.weight",
        "weight", ".weight", "", "lm_head", "model.layers.0.self_attn.q_proj.weightx",
        "blk.0.attn_q.weight.bias2", "blk.1234567890.attn_q.weight",
    };
    char buf[NAMES_MAX];
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        struct slice s = slice_from_cstr(unknown[i]);
        memset(buf, 'Q', 8);
        buf[8] = 0;
        ck_assert_int_eq(names_to_hf("llama", s, buf, sizeof buf), -1);
        ck_assert_str_eq(buf, "QQQQQQQQ");              /* untouched */
        ck_assert_int_eq(names_to_gguf("qwen2", s, buf, sizeof buf), -1);
        ck_assert_int_eq(names_canonical("qwen2", s, buf, sizeof buf), -1);
        ck_assert_str_eq(buf, unknown[i]);              /* copied as is */
    }
}
END_TEST

START_TEST(test_apr_mixed_and_small_buffers)
{
    char buf[NAMES_MAX], tiny[8];
    /* aprender keeps unknown GGUF stems under HF layer names; known ones we still pair. */
    ck_assert_int_eq(names_canonical("qwen2", slice_from_cstr("model.layers.4.attn_q.bias"), buf,
                                     sizeof buf), 0);
    ck_assert_str_eq(buf, "model.layers.4.self_attn.q_proj.bias");
    ck_assert_int_eq(names_to_hf("llama", slice_from_cstr("output.weight"), tiny, sizeof tiny), -2);
    ck_assert_int_eq(names_canonical(NULL, slice_from_cstr("lm_head.weight"), tiny, sizeof tiny),
                     -2);
    ck_assert_str_eq(names_apr_style("llama"), "gguf");
    ck_assert_str_eq(names_apr_style("mistral"), "gguf");
    ck_assert_str_eq(names_apr_style("qwen2"), "hf");
    ck_assert_str_eq(names_apr_style("Qwen3"), "hf");
    ck_assert_str_eq(names_apr_style(NULL), "gguf");
}
END_TEST

START_TEST(test_permute_kind)
{
    ck_assert_int_eq(names_qk_permute_kind("llama", slice_from_cstr("blk.0.attn_q.weight")),
                     NAMES_PERM_Q);
    ck_assert_int_eq(names_qk_permute_kind("llama", slice_from_cstr("blk.0.attn_k.bias")),
                     NAMES_PERM_K);
    ck_assert_int_eq(names_qk_permute_kind(
                         "mistral", slice_from_cstr("model.layers.2.self_attn.q_proj.weight")),
                     NAMES_PERM_Q);
    ck_assert_int_eq(names_qk_permute_kind("llama", slice_from_cstr("blk.0.attn_v.weight")),
                     NAMES_PERM_NONE);
    ck_assert_int_eq(names_qk_permute_kind("llama", slice_from_cstr("blk.0.attn_q_norm.weight")),
                     NAMES_PERM_NONE);
    ck_assert_int_eq(names_qk_permute_kind("qwen2", slice_from_cstr("blk.0.attn_q.weight")),
                     NAMES_PERM_NONE);
    ck_assert_int_eq(names_qk_permute_kind("qwen3", slice_from_cstr("blk.0.attn_k.weight")),
                     NAMES_PERM_NONE);
    ck_assert_int_eq(names_qk_permute_kind(NULL, slice_from_cstr("blk.0.attn_k.weight")),
                     NAMES_PERM_NONE);
}
END_TEST

START_TEST(test_permute_hand_computed)
{
    /* H = 2, hd = 4, half = 2: HF rows 0..7 -> GGUF order per head: 0 2 1 3 | 4 6 5 7. */
    static const int64_t want_gguf[8] = { 0, 2, 1, 3, 4, 6, 5, 7 };
    uint8_t hf[8], gguf[8], back[8];
    struct err e = ERR_INIT;

    for (int i = 0; i < 8; i++)
        hf[i] = (uint8_t)(10 + i);
    ck_assert_int_eq(names_permute_rows(hf, gguf, 8, 1, 2, 1, &e), 0);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(gguf[i], 10 + want_gguf[i]);
        ck_assert_int_eq(names_perm_row(i, 8, 2, 1), want_gguf[i]);
    }
    ck_assert_int_eq(names_permute_rows(gguf, back, 8, 1, 2, 0, &e), 0);
    ck_assert_mem_eq(back, hf, 8);
    /* The python reshape(H, 2, hd/2).swapaxes(1, 2) of llama.cpp's converter, by hand. */
    for (int h = 0; h < 2; h++)
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < 2; i++)
                ck_assert_int_eq(gguf[h * 4 + 2 * i + s], hf[h * 4 + s * 2 + i]);
}
END_TEST

START_TEST(test_permute_bad_geometry)
{
    uint8_t a[12] = { 0 }, b[12] = { 0 };
    struct err e = ERR_INIT;
    ck_assert_int_eq(names_permute_rows(a, b, 12, 1, 4, 1, &e), -1);   /* hd = 3: odd */
    ck_assert_int_eq(e.code, ERR_FORMAT);
    err_clear(&e);
    ck_assert_int_eq(names_permute_rows(a, b, 12, 1, 5, 1, &e), -1);   /* 12 % 5 */
    err_clear(&e);
    ck_assert_int_eq(names_permute_rows(a, b, 12, 1, 0, 1, &e), -1);
    err_clear(&e);
    ck_assert_int_eq(names_permute_rows(a, a + 2, 8, 1, 2, 1, &e), -1); /* overlap */
    ck_assert_int_eq(e.code, ERR_USAGE);
    ck_assert_int_eq(names_perm_row(8, 8, 2, 1), -1);
    ck_assert_int_eq(names_perm_row(-1, 8, 2, 0), -1);
}
END_TEST

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

START_TEST(test_permute_roundtrip_random)
{
    /* row sizes: a bias element, an f16 row, a Q4_K row (144 B), a Q8_0 row of 4 blocks */
    static const size_t row_bytes[] = { 4, 2 * 256, 144, 4 * 34, 1 };
    static const int64_t geo[][2] = { { 8, 2 }, { 256, 8 }, { 64, 2 }, { 96, 3 }, { 2, 1 } };
    struct err e = ERR_INIT;

    for (size_t g = 0; g < sizeof geo / sizeof geo[0]; g++) {
        for (size_t k = 0; k < sizeof row_bytes / sizeof row_bytes[0]; k++) {
            size_t n = (size_t)geo[g][0] * row_bytes[k];
            uint8_t *src = malloc(n), *mid = malloc(n), *back = malloc(n);
            ck_assert_ptr_nonnull(src);
            ck_assert_ptr_nonnull(mid);
            ck_assert_ptr_nonnull(back);
            for (size_t i = 0; i < n; i++)
                src[i] = (uint8_t)rng();
            int64_t nr = geo[g][0], nh = geo[g][1];
            ck_assert_int_eq(names_permute_rows(src, mid, nr, row_bytes[k], nh, 1, &e), 0);
            ck_assert_int_eq(names_permute_rows(mid, back, nr, row_bytes[k], nh, 0, &e), 0);
            ck_assert_mem_eq(back, src, n);
            /* and the other way round */
            ck_assert_int_eq(names_permute_rows(src, mid, nr, row_bytes[k], nh, 0, &e), 0);
            ck_assert_int_eq(names_permute_rows(mid, back, nr, row_bytes[k], nh, 1, &e), 0);
            ck_assert_mem_eq(back, src, n);
            /* the index form agrees with the copying form and is a bijection */
            for (int64_t r = 0; r < geo[g][0]; r++) {
                int64_t f = names_perm_row(r, geo[g][0], geo[g][1], 0);
                ck_assert_int_eq(names_perm_row(f, geo[g][0], geo[g][1], 1), r);
            }
            free(src);
            free(mid);
            free(back);
        }
    }
}
END_TEST

Suite *names_suite(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_to_hf_and_back, 0, N_ROWS);
    tcase_add_test(tc, test_slices_not_terminated);
    tcase_add_test(tc, test_unknown_untouched);
    tcase_add_test(tc, test_apr_mixed_and_small_buffers);
    tcase_add_test(tc, test_permute_kind);
    tcase_add_test(tc, test_permute_hand_computed);
    tcase_add_test(tc, test_permute_bad_geometry);
    tcase_add_test(tc, test_permute_roundtrip_random);
    suite_add_tcase(s, tc);
    return s;
}
