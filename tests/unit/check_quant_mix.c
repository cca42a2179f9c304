/*
 * check_quant_mix.c - convert/quant_mix.c: the --dtype table and llama-quantize's
 * per-tensor type choices.
 *
 *   fixtures   the F32 tiny-llama-small's tensors planned with F16, Q8_0, Q4_0, Q4_K_M,
 *              Q6_K and IQ4_XS get exactly the types llama-quantize gave them in the
 *              shared fixtures (skips visibly without ../shared)
 *   layers     a 32-layer GQA llama: Q4_K_M's attn_v / ffn_down layers in Q6_K are
 *              0-3, 6, 9, ..., 27, 28-31 (use_more_bits), Q3_K_M / Q3_K_L / Q2_K /
 *              Q4_K_S / Q5_K_M / IQ4_XS / TQ rules, order by layer number not by name
 *   shapes     rows that are not whole blocks fall back like llama-quantize; norms,
 *              1-D, [n, 1] tensors and non-"weight" names are left alone; tied
 *              embeddings take the output rule
 *   names      case-insensitive lookup, aliases, refused types say why
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../convert/quant_mix.h"
#include "../../formats/dtype.h"
#include "../../formats/model.h"
#include "tu.h"
#include "../../common/banned.h"

static const struct qmix *mix(const char *name)
{
    struct err e = ERR_INIT;
    const struct qmix *m = qmix_find(name, &e);
    ck_assert_msg(m != NULL, "%s: %s", name, e.msg);
    return m;
}

/* ---------------------------------------------------------------------------------------
 * The fixtures.
 */
START_TEST(test_fixtures)
{
    static const char *names[] = { "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K", "IQ4_XS" };
    char dir[1024], path[1200];
    struct model src;
    struct err e = ERR_INIT;

    if (!tu_need_shared("gguf/tiny-llama-small-F32.gguf"))
        return;
    snprintf(dir, sizeof dir, "%s/gguf", tu_shared_dir());
    snprintf(path, sizeof path, "%s/tiny-llama-small-F32.gguf", dir);
    ck_assert_msg(model_open(&src, path, &e) == 0, "%s: %s", path, e.msg);
    size_t n = src.n_tensors;
    struct qmix_tensor *t = calloc(n, sizeof *t);
    char (*nm)[128] = calloc(n, sizeof *nm);
    ck_assert(t && nm);
    for (size_t i = 0; i < n; i++) {
        const struct model_tensor *s = &src.tensors[i];
        snprintf(nm[i], sizeof nm[i], "%.*s", (int)s->name.n, s->name.p);
        t[i].name = nm[i];
        t[i].n_dims = s->n_dims;
        for (int d = 0; d < s->n_dims && d < 4; d++)
            t[i].shape[d] = s->shape[d];
    }
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        struct model m;
        struct qmix_model mm = { "llama", 0, 0, 0, 0 };
        int n_q = 0;
        snprintf(path, sizeof path, "%s/tiny-llama-small-%s.gguf", dir, names[f]);
        ck_assert_msg(model_open(&m, path, &e) == 0, "%s: %s", path, e.msg);
        ck_assert_int_eq(qmix_plan(mix(names[f]), 0, &mm, t, n, &e), 0);
        for (size_t i = 0; i < n; i++) {
            const struct model_tensor *q = model_tensor_find(&m, nm[i]);
            ck_assert_msg(q != NULL, "%s: '%s' missing", names[f], nm[i]);
            int want = q->dtype, got = t[i].out < 0 ? DT_F32 : t[i].out;
            ck_assert_msg(got == want, "%s: '%s': planned %s, llama-quantize made %s",
                          names[f], nm[i], dtype_name(got), dtype_name(want));
            n_q += t[i].out >= 0;
        }
        ck_assert_int_eq(n_q, 2 + 2 * 7);   /* token_embd, output, 7 matrices a layer */
        model_close(&m);
    }
    free(t);
    free(nm);
    model_close(&src);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * A synthetic model: n_layer layers of a GQA llama (n_head / n_head_kv = 4), in the
 * order a converter might list them (by name: blk.10 before blk.2).
 */
#define ML_MAX 400

struct synth {
    struct qmix_tensor t[ML_MAX];
    char name[ML_MAX][64];
    size_t n;
};

static void add(struct synth *s, const char *name, int64_t rows, int64_t cols)
{
    struct qmix_tensor *x = &s->t[s->n];
    ck_assert_uint_lt(s->n, ML_MAX);
    snprintf(s->name[s->n], sizeof s->name[0], "%s", name);
    memset(x, 0, sizeof *x);
    x->name = s->name[s->n];
    if (rows > 0) {
        x->n_dims = 2;
        x->shape[0] = rows;
        x->shape[1] = cols;
    } else {
        x->n_dims = 1;
        x->shape[0] = cols;
    }
    s->n++;
}

static void synth_llama(struct synth *s, int n_layer, int64_t embd, int tied)
{
    char nm[64];
    s->n = 0;
    add(s, "token_embd.weight", 1000, embd);
    add(s, "output_norm.weight", 0, embd);
    if (!tied)
        add(s, "output.weight", 1000, embd);
    /* blk.0, blk.1, blk.10, blk.11, ..., blk.2: string order, not layer order */
    char lay[64][12];
    for (int l = 0; l < n_layer; l++)
        snprintf(lay[l], sizeof lay[l], "%d", l);
    qsort(lay, (size_t)n_layer, sizeof lay[0], (int (*)(const void *, const void *))strcmp);
    for (int k = 0; k < n_layer; k++) {
        static const char *const mats[] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                            "ffn_gate", "ffn_up", "ffn_down" };
        for (int j = 0; j < 7; j++) {
            int64_t rows = j == 1 || j == 2 ? embd / 4 : j == 4 || j == 5 ? 2 * embd : embd;
            int64_t cols = j == 6 ? 2 * embd : embd;
            snprintf(nm, sizeof nm, "blk.%.7s.%s.weight", lay[k], mats[j]);
            add(s, nm, rows, cols);
        }
        snprintf(nm, sizeof nm, "blk.%.7s.attn_norm.weight", lay[k]);
        add(s, nm, 0, embd);
        snprintf(nm, sizeof nm, "blk.%.7s.ffn_norm.weight", lay[k]);
        add(s, nm, 0, embd);
    }
}

static int type_of(const struct synth *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0)
            return s->t[i].out;
    ck_abort_msg("no tensor '%s'", name);
    return -2;
}

static int blk_type(const struct synth *s, int l, const char *what)
{
    char nm[64];
    snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, what);
    return type_of(s, nm);
}

static struct synth sy;

START_TEST(test_layers)
{
    struct qmix_model mm = { "llama", 0, 0, 0, 0 };
    struct err e = ERR_INIT;

    synth_llama(&sy, 32, 256, 0);
    ck_assert_int_eq(qmix_plan(mix("Q4_K_M"), 0, &mm, sy.t, sy.n, &e), 0);
    for (int l = 0; l < 32; l++) {
        /* use_more_bits(l, 32): l < 4 || l >= 28 || (l - 4) % 3 == 2 */
        int more = l < 4 || l >= 28 || (l - 4) % 3 == 2;
        int want = more ? DT_Q6_K : DT_Q4_K;
        ck_assert_msg(blk_type(&sy, l, "attn_v") == want, "Q4_K_M attn_v %d", l);
        ck_assert_msg(blk_type(&sy, l, "ffn_down") == want, "Q4_K_M ffn_down %d", l);
        ck_assert_int_eq(blk_type(&sy, l, "attn_q"), DT_Q4_K);
        ck_assert_int_eq(blk_type(&sy, l, "ffn_up"), DT_Q4_K);
        ck_assert_int_eq(blk_type(&sy, l, "attn_norm"), -1);
    }
    ck_assert_int_eq(type_of(&sy, "output.weight"), DT_Q6_K);
    ck_assert_int_eq(type_of(&sy, "token_embd.weight"), DT_Q4_K);
    ck_assert_int_eq(type_of(&sy, "output_norm.weight"), -1);

    /* Q3_K_M: attn_v Q5_K for the first two, Q4_K after; ffn_down Q5_K below n/16,
     * else Q4_K (not falcon); attn_output Q4_K */
    ck_assert_int_eq(qmix_plan(mix("Q3_K_M"), 0, &mm, sy.t, sy.n, &e), 0);
    for (int l = 0; l < 32; l++) {
        ck_assert_int_eq(blk_type(&sy, l, "attn_v"), l < 2 ? DT_Q5_K : DT_Q4_K);
        ck_assert_int_eq(blk_type(&sy, l, "ffn_down"), l < 2 ? DT_Q5_K : DT_Q4_K);
        ck_assert_int_eq(blk_type(&sy, l, "attn_output"), DT_Q4_K);
        ck_assert_int_eq(blk_type(&sy, l, "attn_q"), DT_Q3_K);
    }
    /* Q2_K with n_gqa 4: attn_v Q4_K, ffn_down and attn_output Q3_K */
    ck_assert_int_eq(qmix_plan(mix("Q2_K"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 7, "attn_v"), DT_Q4_K);
    ck_assert_int_eq(blk_type(&sy, 7, "ffn_down"), DT_Q3_K);
    ck_assert_int_eq(blk_type(&sy, 7, "attn_output"), DT_Q3_K);
    ck_assert_int_eq(blk_type(&sy, 7, "ffn_gate"), DT_Q2_K);
    /* Q4_K_S: attn_v Q5_K in the first 4, ffn_down Q5_K in the first n/8 */
    ck_assert_int_eq(qmix_plan(mix("Q4_K_S"), 0, &mm, sy.t, sy.n, &e), 0);
    for (int l = 0; l < 32; l++) {
        ck_assert_int_eq(blk_type(&sy, l, "attn_v"), l < 4 ? DT_Q5_K : DT_Q4_K);
        ck_assert_int_eq(blk_type(&sy, l, "ffn_down"), l < 4 ? DT_Q5_K : DT_Q4_K);
    }
    /* IQ4_XS without imatrix: attn_v Q5_K (n_gqa >= 4), ffn_down Q5_K below n/8 */
    ck_assert_int_eq(qmix_plan(mix("IQ4_XS"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 9, "attn_v"), DT_Q5_K);
    ck_assert_int_eq(blk_type(&sy, 3, "ffn_down"), DT_Q5_K);
    ck_assert_int_eq(blk_type(&sy, 4, "ffn_down"), DT_IQ4_XS);
    /* TQ1_0: token_embd Q4_K, output Q6_K, the rest TQ1_0 */
    ck_assert_int_eq(qmix_plan(mix("TQ1_0"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(type_of(&sy, "token_embd.weight"), DT_Q4_K);
    ck_assert_int_eq(type_of(&sy, "output.weight"), DT_Q6_K);
    ck_assert_int_eq(blk_type(&sy, 0, "ffn_down"), DT_TQ1_0);
    /* Q3_K_L: attn_v, ffn_down, attn_output Q5_K */
    ck_assert_int_eq(qmix_plan(mix("Q3_K_L"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 20, "attn_v"), DT_Q5_K);
    ck_assert_int_eq(blk_type(&sy, 20, "ffn_down"), DT_Q5_K);
    ck_assert_int_eq(blk_type(&sy, 20, "attn_output"), DT_Q5_K);
    /* IQ3_XS (n_gqa 4): attn_v Q4_K; attn_q, attn_k IQ3_XXS; ffn_gate / ffn_up
     * IQ3_XXS in the middle three quarters; the rest IQ3_S */
    ck_assert_int_eq(qmix_plan(mix("IQ3_XS"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_v"), DT_Q4_K);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_q"), DT_IQ3_XXS);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_k"), DT_IQ3_XXS);
    ck_assert_int_eq(blk_type(&sy, 3, "ffn_up"), DT_IQ3_S);
    ck_assert_int_eq(blk_type(&sy, 4, "ffn_up"), DT_IQ3_XXS);
    ck_assert_int_eq(blk_type(&sy, 27, "ffn_gate"), DT_IQ3_XXS);
    ck_assert_int_eq(blk_type(&sy, 28, "ffn_gate"), DT_IQ3_S);
    ck_assert_int_eq(blk_type(&sy, 5, "ffn_down"), DT_IQ3_S);
    /* IQ3_M: attn_v Q4_K, ffn_down Q4_K in the first eighth, attn_output Q4_K */
    ck_assert_int_eq(qmix_plan(mix("IQ3_M"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 9, "attn_v"), DT_Q4_K);
    ck_assert_int_eq(blk_type(&sy, 3, "ffn_down"), DT_Q4_K);
    ck_assert_int_eq(blk_type(&sy, 4, "ffn_down"), DT_IQ3_S);
    ck_assert_int_eq(blk_type(&sy, 4, "attn_output"), DT_Q4_K);
    /* --pure: the default type everywhere it fits */
    ck_assert_int_eq(qmix_plan(mix("Q4_K_M"), 1, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(type_of(&sy, "output.weight"), DT_Q4_K);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_v"), DT_Q4_K);
    /* n_head / n_head_kv from the metadata override the shapes: n_gqa 1 */
    mm.n_head = mm.n_head_kv = 8;
    ck_assert_int_eq(qmix_plan(mix("Q2_K"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 7, "attn_v"), DT_Q3_K);
}
END_TEST

START_TEST(test_shapes)
{
    struct qmix_model mm = { "llama", 0, 0, 0, 0 };
    struct err e = ERR_INIT;

    /* rows of 96: not whole K blocks (256), whole legacy blocks (32) */
    synth_llama(&sy, 2, 96, 1);
    ck_assert_int_eq(qmix_plan(mix("Q4_K_M"), 0, &mm, sy.t, sy.n, &e), 0);
    /* tied: token_embd takes the output rule: Q6_K does not fit, so Q8_0 */
    ck_assert_int_eq(type_of(&sy, "token_embd.weight"), DT_Q8_0);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_q"), DT_Q5_0);        /* Q4_K -> Q5_0 */
    ck_assert_int_eq(blk_type(&sy, 1, "attn_v"), DT_Q8_0);        /* Q6_K -> Q8_0 */
    ck_assert_int_eq(qmix_plan(mix("Q5_K_S"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_q"), DT_Q5_1);        /* Q5_K -> Q5_1 */
    ck_assert_int_eq(qmix_plan(mix("Q3_K_S"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_q"), DT_IQ4_NL);      /* Q3_K -> IQ4_NL */
    ck_assert_int_eq(qmix_plan(mix("TQ2_0"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_q"), DT_Q4_0);        /* TQ -> Q4_0 */
    ck_assert(sy.t[3].fallback || sy.t[4].fallback);

    /* rows of 48: Q4_0 does not fit; llama-quantize gives up, we use F16 and say so */
    synth_llama(&sy, 1, 48, 0);
    ck_assert_int_eq(qmix_plan(mix("Q4_0"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_q"), DT_F16);
    int refused = 0;
    for (size_t i = 0; i < sy.n; i++)
        refused += sy.t[i].refused;
    ck_assert_int_gt(refused, 0);
    /* Q4_K with rows of 48: Q5_0 does not fit either: F16 */
    ck_assert_int_eq(qmix_plan(mix("Q4_K_S"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(blk_type(&sy, 0, "attn_q"), DT_F16);

    /* [256, 1] is 1-D for ggml; a name not ending in "weight" is never quantized */
    synth_llama(&sy, 1, 256, 0);
    add(&sy, "blk.0.odd.weight", 1, 256);
    add(&sy, "blk.0.attn_q.bias", 256, 256);
    add(&sy, "blk.0.ffn_gate_inp.weight", 8, 256);
    ck_assert_int_eq(qmix_plan(mix("Q8_0"), 0, &mm, sy.t, sy.n, &e), 0);
    ck_assert_int_eq(type_of(&sy, "blk.0.odd.weight"), -1);
    ck_assert_int_eq(type_of(&sy, "blk.0.attn_q.bias"), -1);
    ck_assert_int_eq(type_of(&sy, "blk.0.ffn_gate_inp.weight"), -1);
    ck_assert_int_eq(type_of(&sy, "output.weight"), DT_Q8_0);      /* Q8_0 stays */
}
END_TEST

START_TEST(test_names)
{
    struct err e = ERR_INIT;
    size_t n;
    const struct qmix *t = qmix_table(&n);

    ck_assert_uint_gt(n, 20);
    ck_assert_str_eq(mix("q4_k_m")->name, "Q4_K_M");
    ck_assert_str_eq(mix("Q4_K")->name, "Q4_K_M");          /* llama-quantize's aliases */
    ck_assert_str_eq(mix("q5_k")->name, "Q5_K_M");
    ck_assert_str_eq(mix("Q3_K")->name, "Q3_K_M");
    ck_assert_uint_eq(mix("Q4_K_M")->ftype, 15);
    ck_assert_uint_eq(mix("IQ4_XS")->ftype, 30);
    ck_assert_uint_eq(mix("bf16")->ftype, 32);
    ck_assert_ptr_null(qmix_find("IQ2_XXS", &e));
    ck_assert_msg(strstr(e.msg, "importance matrix") != NULL, "%s", e.msg);
    struct err e2 = ERR_INIT, e3 = ERR_INIT;
    ck_assert_ptr_null(qmix_find("iq3_xxs", &e2));
    ck_assert_msg(strstr(e2.msg, "IQ3_XXS: needs an importance matrix") != NULL, "%s", e2.msg);
    ck_assert_str_eq(qmix_find_im("iq3_xxs", 1, &e2)->name, "IQ3_XXS");  /* with --imatrix */
    ck_assert_str_eq(qmix_find_im("IQ1_M", 1, &e2)->name, "IQ1_M");
    ck_assert_str_eq(mix("iq3_m")->name, "IQ3_M");
    ck_assert_ptr_null(qmix_find("Q9_K", &e3));
    ck_assert_int_eq(e3.code, ERR_USAGE);
    /* every row's default type can be produced */
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(dtype_get(t[i].dtype) != NULL, "%s", t[i].name);
}
END_TEST

Suite *quant_mix_suite(void)
{
    Suite *s = suite_create("quant_mix");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fixtures);
    tcase_add_test(tc, test_layers);
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
