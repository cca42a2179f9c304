/*
 * check_diff.c - apr-diff: metrics computed by hand, one model written as GGUF, APR and
 * SafeTensors (names and llama Q/K rows mapped with formats/names.h) diffing identical
 * tensor for tensor, each kind of damage (perturbed, transposed, reinterpreted,
 * Q/K-permuted, zeroed, missing) with its status and exit code, dumps (.bin and APRT)
 * against hand-computed numbers, a dump directory with a planted divergence, -t
 * independence, the picture, trouble, and the shared fixtures when present.
 *
 * Everything is written into a fresh mkdtemp directory with the project's writers.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/json.h"
#include "../../dequant/dq.h"
#include "../../formats/apr/apr.h"
#include "../../formats/apr/aprt.h"
#include "../../formats/names.h"
#include "../../formats/safetensors/st.h"
#include "../../diff/diff.h"
#include "../fixtures/gguf_fix.h"
#include "tu.h"
#include "../../common/banned.h"

/* ---- scaffolding ---------------------------------------------------------------------- */

/* Run diff_run into a string (freed by the caller); *rc gets its return value. */
static char *run(const struct diff_opts *o, const char *a, const char *b, int *rc)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    struct err e = ERR_INIT;

    ck_assert_ptr_nonnull(f);
    *rc = diff_run(o, a, b, f, &e);
    fclose(f);
    if (*rc < 0)
        fprintf(stderr, "diff_run: %s\n", e.msg);
    return buf;
}

/* The "status" of result NAME in a value-diff JSON document. */
static int has_result(const char *json, const char *name, const char *status)
{
    char key[256];
    const char *p, *q;

    snprintf(key, sizeof key, "\"name\": \"%s\"", name);
    p = strstr(json, key);
    if (!p)
        return 0;
    q = strstr(p, "\"status\": \"");
    if (!q)
        return 0;
    q += 11;
    return strncmp(q, status, strlen(status)) == 0 && q[strlen(status)] == '"';
}

/* ---- the test model ------------------------------------------------------------------- */

#define EMBD  32
#define NH    4
#define NKV   2
#define HD    8
#define FF    64
#define VOCAB 16

struct tdef {
    const char *gguf;
    int64_t     rows, cols;   /* cols 0: 1-D */
};

static const struct tdef tdefs[] = {
    { "token_embd.weight",        VOCAB,   EMBD },
    { "blk.0.attn_norm.weight",   EMBD,    0 },
    { "blk.0.attn_q.weight",      NH * HD, EMBD },
    { "blk.0.attn_k.weight",      NKV * HD, EMBD },
    { "blk.0.attn_v.weight",      NKV * HD, EMBD },
    { "blk.0.attn_output.weight", EMBD,    NH * HD },
    { "blk.0.ffn_norm.weight",    EMBD,    0 },
    { "blk.0.ffn_gate.weight",    FF,      EMBD },
    { "blk.0.ffn_up.weight",      FF,      EMBD },
    { "blk.0.ffn_down.weight",    EMBD,    FF },
    { "output_norm.weight",       EMBD,    0 },
    { "output.weight",            VOCAB,   EMBD },
};
#define N_TDEFS ((int)(sizeof tdefs / sizeof tdefs[0]))

enum style { S_GGUF, S_APR, S_ST };

/*
 * The same weights in each container: values are generated in Hugging Face row order;
 * GGUF and APR (llama: GGUF names) hold llama's q/k rows permuted as llama.cpp does.
 */
static void build(struct model *m, enum style s, struct err *e)
{
    memset(m, 0, sizeof *m);
    ck_assert_int_eq(model__init(m, s == S_GGUF ? MODEL_FMT_GGUF : s == S_APR ? MODEL_FMT_APR :
                                 MODEL_FMT_SAFETENSORS, "test", e), 0);
    if (s == S_GGUF) {
        fx_str(m, "general.architecture", "llama", e);
        fx_uint(m, "llama.attention.head_count", MV_U32, NH, e);
        fx_uint(m, "llama.attention.head_count_kv", MV_U32, NKV, e);
        fx_uint(m, "llama.embedding_length", MV_U32, EMBD, e);
    } else if (s == S_APR) {
        fx_str(m, "architecture", "llama", e);
        fx_uint(m, "num_heads", MV_U32, NH, e);
        fx_uint(m, "num_kv_heads", MV_U32, NKV, e);
        fx_uint(m, "hidden_size", MV_U32, EMBD, e);
    } else {
        fx_str(m, "hf.config.model_type", "llama", e);
        fx_uint(m, "hf.config.num_attention_heads", MV_U32, NH, e);
        fx_uint(m, "hf.config.num_key_value_heads", MV_U32, NKV, e);
        fx_uint(m, "hf.config.hidden_size", MV_U32, EMBD, e);
    }
    for (int i = 0; i < N_TDEFS; i++) {
        const struct tdef *d = &tdefs[i];
        int64_t sh[2] = { d->rows, d->cols };
        int nd = d->cols ? 2 : 1;
        int64_t n = d->rows * (d->cols ? d->cols : 1);
        char name[NAMES_MAX];
        uint8_t *hf = malloc((size_t)n * 4), *p;
        enum names_perm k = names_qk_permute_kind("llama", slice_from_cstr(d->gguf));

        ck_assert_ptr_nonnull(hf);
        fx_fill_f32(hf, (uint64_t)n, 1000u + (uint32_t)i,
                    i == 1 || i == 6 || i == 10 ? 1.0f : 0.0f, 0.5f);
        if (s == S_ST)
            ck_assert_int_eq(names_to_hf("llama", slice_from_cstr(d->gguf), name, sizeof name), 0);
        else
            snprintf(name, sizeof name, "%s", d->gguf);
        p = fx_tensor(m, name, DT_F32, nd, sh, e);
        ck_assert_ptr_nonnull(p);
        if (s != S_ST && k != NAMES_PERM_NONE)
            ck_assert_int_eq(names_permute_rows(hf, p, d->rows,
                                                (size_t)(d->cols ? d->cols : 1) * 4,
                                                k == NAMES_PERM_Q ? NH : NKV, 1, e), 0);
        else
            memcpy(p, hf, (size_t)n * 4);
        free(hf);
    }
    ck_assert_msg(err_ok(e), "%s", e->msg);
}

static void write_as(struct model *m, enum style s, const char *path)
{
    struct err e = ERR_INIT;
    int rc;

    if (s == S_GGUF)
        rc = gguf_write(m, path, NULL, &e);
    else if (s == S_APR)
        rc = apr_write(m, path, NULL, &e);
    else {
        rc = st_write(m, path, NULL, &e);
        if (rc == 0)
            rc = st_write_config(m, tu_dir, &e);
    }
    ck_assert_msg(rc == 0, "%s", e.msg);
}

static void write_model(enum style s, const char *path)
{
    struct model m;
    struct err e = ERR_INIT;

    build(&m, s, &e);
    write_as(&m, s, path);
    model_close(&m);
}

static struct model_tensor *tensor(struct model *m, const char *name)
{
    return (struct model_tensor *)(uintptr_t)model_tensor_find(m, name);
}

static float *fdata(struct model_tensor *t)
{
    return (float *)(uintptr_t)t->data;   /* the arena of a model we built: writable, aligned */
}

/* ---- metrics by hand ------------------------------------------------------------------ */

START_TEST(metrics_by_hand)
{
    /* a = [1,2,3,4], b = [1,2,3,5]: a.b = 34, |a|^2 = 30, |b|^2 = 39, one diff of 1 */
    static const float a[] = { 1, 2, 3, 4 }, b[] = { 1, 2, 3, 5 };
    struct diff_metrics m;

    diff_f32(a, b, 4, &m);
    ck_assert_double_eq_tol(m.cosine, 34.0 / sqrt(30.0 * 39.0), 1e-15);
    ck_assert_double_eq(m.max_diff, 1.0);
    ck_assert_int_eq(m.max_index, 3);
    ck_assert_double_eq(m.mean_diff, 0.25);
    ck_assert_double_eq(m.rmse, 0.5);
    ck_assert_double_eq_tol(m.nmse, 1.0 / 30.0, 1e-15);
    ck_assert_int_eq(m.n_identical, 3);
    ck_assert_int_eq(m.n_large, 1);
    ck_assert_int_eq(m.n_small + m.n_medium + m.n_nonfinite, 0);
    ck_assert_str_eq(diff_status_name(&m), "Critical");   /* max |a-b| >= 1 */
}
END_TEST

START_TEST(metrics_buckets_and_nonfinite)
{
    /* d: 0, 0.0005 (small), 0.005 (medium), 0.05 (large), NaN=NaN (identical), Inf vs -Inf */
    float a[6] = { 1, 1, 1, 1, NAN, INFINITY }, b[6] = { 1, 1.0005f, 1.005f, 1.05f, NAN, -INFINITY };
    struct diff_metrics m;

    diff_f32(a, b, 6, &m);
    ck_assert_int_eq(m.n, 6);
    ck_assert_int_eq(m.n_identical, 2);
    ck_assert_int_eq(m.n_small, 1);
    ck_assert_int_eq(m.n_medium, 1);
    ck_assert_int_eq(m.n_large, 1);
    ck_assert_int_eq(m.n_nonfinite, 1);
    ck_assert_int_eq(m.max_index, 3);
    ck_assert_str_eq(diff_status_name(&m), "Critical");
    /* without the infinity: the max decides (0.05 -> MediumDiff) */
    diff_f32(a, b, 4, &m);
    ck_assert_str_eq(diff_status_name(&m), "MediumDiff");
    /* all zeros on both sides: identical, cosine 1 (not aprender's 0) */
    {
        float z[3] = { 0, 0, 0 };
        diff_f32(z, z, 3, &m);
        ck_assert_double_eq(m.cosine, 1.0);
        ck_assert_str_eq(diff_status_name(&m), "Identical");
    }
}
END_TEST

/* Long arrays: blocks of 1024 with a NaN in one of them; first max index wins. */
START_TEST(metrics_long)
{
    int64_t n = 5000;
    float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
    struct diff_metrics m;

    for (int64_t i = 0; i < n; i++) {
        a[i] = (float)(i % 7) - 3.0f;
        b[i] = a[i];
    }
    b[1500] += 0.25f;
    b[4000] += 0.25f;
    a[3000] = NAN;
    b[3000] = NAN;
    diff_f32(a, b, n, &m);
    ck_assert_int_eq(m.max_index, 1500);
    ck_assert_double_eq(m.max_diff, 0.25);
    ck_assert_int_eq(m.n_identical, n - 2);
    ck_assert_int_eq(m.n_large, 2);
    ck_assert_int_eq(m.n_nonfinite, 0);
    free(a);
    free(b);
}
END_TEST

/* ---- across formats ------------------------------------------------------------------- */

START_TEST(formats_identical)
{
    struct diff_opts o = DIFF_OPTS_INIT;
    const char *g = tu_tpath("m.gguf"), *a = tu_tpath("m.apr"), *s = tu_tpath("model.safetensors");
    const char *pairs[3][2] = { { g, a }, { g, s }, { a, s } };
    char *out;
    int rc;

    write_model(S_GGUF, g);
    write_model(S_APR, a);
    write_model(S_ST, s);
    o.values = 1;
    o.json = 1;
    for (int i = 0; i < 3; i++) {
        out = run(&o, pairs[i][0], pairs[i][1], &rc);
        ck_assert_msg(rc == 0, "%s vs %s: rc %d\n%s", pairs[i][0], pairs[i][1], rc, out);
        ck_assert_ptr_nonnull(strstr(out, "\"tensors_compared\": 12"));
        ck_assert_ptr_nonnull(strstr(out, "\"identical_count\": 12"));
        ck_assert_ptr_nonnull(strstr(out, "\"only_in_a\": []"));
        if (i > 0)   /* GGUF/APR (llama.cpp row order) vs SafeTensors (HF order) */
            ck_assert_ptr_nonnull(strstr(out, "\"layout\": \"rope_unpermuted\""));
        free(out);
    }
    /* the structural diff pairs the tensors too: only metadata differs */
    o.values = 0;
    out = run(&o, g, s, &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(out, "\"tensor\": 0"));
    ck_assert_ptr_nonnull(strstr(out, "\"tensors_paired\": 12"));
    free(out);
    out = run(&o, g, g, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, "\"identical\": true"));
    free(out);
}
END_TEST

/* ---- damage, one kind at a time ------------------------------------------------------- */

enum damage { D_PERTURB, D_TRANSPOSE, D_REINTERPRET, D_QKPERM, D_ZERO, D_DROP, D_SQUARE };

static void damaged(enum damage d, const char *path)
{
    struct model m;
    struct err e = ERR_INIT;
    struct model_tensor *t;

    build(&m, S_GGUF, &e);
    if (d == D_PERTURB) {
        t = tensor(&m, "blk.0.ffn_up.weight");
        fdata(t)[5 * EMBD + 7] += 0.05f;                     /* element [5,7] */
    } else if (d == D_TRANSPOSE || d == D_REINTERPRET) {
        t = tensor(&m, "blk.0.ffn_gate.weight");             /* [FF, EMBD] -> [EMBD, FF] */
        if (d == D_TRANSPOSE) {
            float *v = fdata(t), *c = malloc(FF * EMBD * 4);
            ck_assert_ptr_nonnull(c);
            for (int i = 0; i < FF; i++)
                for (int j = 0; j < EMBD; j++)
                    c[j * FF + i] = v[i * EMBD + j];
            memcpy(v, c, FF * EMBD * 4);
            free(c);
        }
        t->shape[0] = EMBD;
        t->shape[1] = FF;
    } else if (d == D_SQUARE) {
        float *v, tmp;
        t = tensor(&m, "blk.0.attn_output.weight");          /* [EMBD, EMBD] in place */
        v = fdata(t);
        for (int i = 0; i < EMBD; i++)
            for (int j = i + 1; j < EMBD; j++) {
                tmp = v[i * EMBD + j];
                v[i * EMBD + j] = v[j * EMBD + i];
                v[j * EMBD + i] = tmp;
            }
    } else if (d == D_QKPERM) {
        float *c = malloc(NH * HD * EMBD * 4);
        t = tensor(&m, "blk.0.attn_q.weight");               /* permuted once more */
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(names_permute_rows(t->data, c, NH * HD, EMBD * 4, NH, 1, &e), 0);
        memcpy(fdata(t), c, NH * HD * EMBD * 4);
        free(c);
    } else if (d == D_ZERO) {
        t = tensor(&m, "blk.0.attn_v.weight");
        memset(fdata(t), 0, (size_t)t->size);
    } else {
        m.n_tensors--;                                       /* output.weight is last */
    }
    write_as(&m, S_GGUF, path);
    model_close(&m);
}

static const struct {
    enum damage d;
    int         transpose_aware;
    const char *name, *status;
    int         rc;
} damage_rows[] = {
    { D_PERTURB,     0, "blk.0.ffn_up.weight",   "MediumDiff",    1 },
    { D_TRANSPOSE,   1, "blk.0.ffn_gate.weight", "Transposed",    1 },
    { D_TRANSPOSE,   0, "blk.0.ffn_gate.weight", "Critical",      1 },
    { D_REINTERPRET, 1, "blk.0.ffn_gate.weight", "Reinterpreted", 1 },
    { D_REINTERPRET, 0, "blk.0.ffn_gate.weight", "Reinterpreted", 1 },
    { D_QKPERM,      1, "blk.0.attn_q.weight",   "Permuted",      1 },
    { D_QKPERM,      0, "blk.0.attn_q.weight",   "Critical",      1 },
    { D_ZERO,        0, "blk.0.attn_v.weight",   "Critical",      1 },
    { D_DROP,        0, "output_norm.weight",    "Identical",     1 },
    { D_SQUARE,      1, "blk.0.attn_output.weight", "Transposed", 1 },
    { D_SQUARE,      0, "blk.0.attn_output.weight", "Critical",   1 },
};

START_TEST(damage_status)
{
    struct diff_opts o = DIFF_OPTS_INIT;
    const char *a = tu_tpath("a.gguf"), *b = tu_tpath("b.gguf");
    char *out;
    int rc;

    write_model(S_GGUF, a);
    damaged(damage_rows[_i].d, b);
    o.values = 1;
    o.json = 1;
    o.transpose_aware = damage_rows[_i].transpose_aware;
    out = run(&o, a, b, &rc);
    ck_assert_msg(rc == damage_rows[_i].rc, "row %d: rc %d\n%s", _i, rc, out);
    ck_assert_msg(has_result(out, damage_rows[_i].name, damage_rows[_i].status),
                  "row %d: want %s %s\n%s", _i, damage_rows[_i].name, damage_rows[_i].status, out);
    /* every other tensor stays identical */
    ck_assert_ptr_nonnull(strstr(out, "\"identical_count\": 11"));
    switch (damage_rows[_i].d) {
    case D_PERTURB:
        ck_assert_ptr_nonnull(strstr(out, "\"max_index\": [\n"));
        ck_assert_ptr_nonnull(strstr(out, "\"max_diff\": 0.05"));
        break;
    case D_ZERO:
        ck_assert_ptr_nonnull(strstr(out, "\"zero_side\": \"b\""));
        ck_assert_ptr_nonnull(strstr(out, "\"cosine_similarity\": 0.0,"));
        break;
    case D_DROP:
        ck_assert_ptr_nonnull(strstr(out, "\"only_in_a\": [\n    \"output.weight\"\n  ]"));
        break;
    default:
        break;
    }
    free(out);
}
END_TEST

/* The perturbed element: coordinates and the gates. */
START_TEST(perturb_text_and_gates)
{
    struct diff_opts o = DIFF_OPTS_INIT;
    const char *a = tu_tpath("a.gguf"), *b = tu_tpath("b.gguf");
    char *out;
    int rc;

    write_model(S_GGUF, a);
    damaged(D_PERTURB, b);
    o.values = 1;
    out = run(&o, a, b, &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(out, "[5,7]") != NULL, "%s", out);
    free(out);
    o.fail_max = 0.1;
    out = run(&o, a, b, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "within thresholds"));
    free(out);
    o.fail_max = 0.01;
    out = run(&o, a, b, &rc);
    ck_assert_int_eq(rc, 1);
    free(out);
    o.fail_max = NAN;
    o.fail_cos = 0.99;
    out = run(&o, a, b, &rc);
    ck_assert_int_eq(rc, 0);
    free(out);
    /* gates imply --values */
    o.values = 0;
    o.fail_cos = 0.999999999;
    out = run(&o, a, b, &rc);
    ck_assert_int_eq(rc, 1);
    free(out);
    /* --filter leaves the perturbed tensor out */
    o.fail_cos = NAN;
    o.values = 1;
    o.filter = "attn_(q|k)";
    out = run(&o, a, b, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, "2 tensors compared"));
    free(out);
}
END_TEST

/* Results do not depend on the thread count: a model big enough for many jobs per tensor,
 * F32 vs Q8_0. */
START_TEST(threads_deterministic)
{
    struct diff_opts o = DIFF_OPTS_INIT;
    const char *a = tu_tpath("big-f32.gguf"), *b = tu_tpath("big-q8.gguf");
    struct model m;
    struct err e = ERR_INIT;
    char *o1, *o2;
    int rc;

    for (int q = 0; q < 2; q++) {
        int64_t sh[2] = { 1024, 1536 };   /* 1.5M elements: two jobs */
        float *v = malloc(1024 * 1536 * 4);
        uint8_t *p;
        memset(&m, 0, sizeof m);
        ck_assert_int_eq(fx_init(&m, "big", &e), 0);
        fx_fill_f32((uint8_t *)v, 1024 * 1536, 7, 0, 1);
        p = fx_tensor(&m, "blk.3.ffn_up.weight", q ? DT_Q8_0 : DT_F32, 2, sh, &e);
        ck_assert_ptr_nonnull(p);
        if (q)
            ck_assert_int_eq(dq_quantize(DT_Q8_0, v, p, 1024, 1536, &e), 0);
        else
            memcpy(p, v, 1024 * 1536 * 4);
        p = fx_tensor(&m, "blk.3.ffn_down.weight", DT_F32, 2, sh, &e);
        ck_assert_ptr_nonnull(p);
        memcpy(p, v, 1024 * 1536 * 4);
        free(v);
        write_as(&m, S_GGUF, q ? b : a);
        model_close(&m);
    }
    o.values = 1;
    o.json = 1;
    o.n_threads = 1;
    o1 = run(&o, a, b, &rc);
    ck_assert_int_eq(rc, 1);
    o.n_threads = 3;
    o2 = run(&o, a, b, &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(o1, o2);
    ck_assert(has_result(o1, "blk.3.ffn_up.weight", "SmallDiff") ||
              has_result(o1, "blk.3.ffn_up.weight", "NearlyIdentical"));
    ck_assert(has_result(o1, "blk.3.ffn_down.weight", "Identical"));
    free(o1);
    free(o2);
}
END_TEST

/* ---- dumps ---------------------------------------------------------------------------- */

static void write_bin(const char *path, const float *v, size_t n)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        uint8_t b[4];
        memcpy(&u, &v[i], 4);
        b[0] = (uint8_t)u;
        b[1] = (uint8_t)(u >> 8);
        b[2] = (uint8_t)(u >> 16);
        b[3] = (uint8_t)(u >> 24);
        ck_assert_int_eq(fwrite(b, 1, 4, f), 4);
    }
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(dump_bin_by_hand)
{
    static const float a[] = { 1, 2, 3, 4 }, b[] = { 1, 2, 3, 5 };
    struct diff_opts o = DIFF_OPTS_INIT;
    char *out, want[128];
    int rc;

    write_bin(tu_tpath("a.bin"), a, 4);
    write_bin(tu_tpath("b.bin"), b, 4);
    o.json = 1;
    out = run(&o, tu_tpath("a.bin"), tu_tpath("b.bin"), &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(out, "\"schema\": \"apr-stage-diff-v1\""));
    ck_assert_ptr_nonnull(strstr(out, "\"max_abs_diff\": 1.0,"));
    ck_assert_ptr_nonnull(strstr(out, "\"max_abs_diff_index\": 3,"));
    ck_assert_ptr_nonnull(strstr(out, "\"rms_diff\": 0.5,"));
    json_fmt_num(want + 14, sizeof want - 14, 34.0 / (sqrt(30.0) * sqrt(39.0)), 0);
    memcpy(want, "\"cosine_sim\": ", 14);
    ck_assert_msg(strstr(out, want) != NULL, "%s in\n%s", want, out);
    ck_assert_ptr_nonnull(strstr(out, "\"index\": 3,\n      \"a\": 4.0,\n      \"b\": 5.0,"));
    ck_assert_ptr_nonnull(strstr(out, "\"layer\": null"));
    free(out);
    /* a file that is not whole f32 values is trouble */
    {
        FILE *f = fopen(tu_tpath("odd.bin"), "wb");
        ck_assert_ptr_nonnull(f);
        fputs("12345", f);
        fclose(f);
    }
    out = run(&o, tu_tpath("a.bin"), tu_tpath("odd.bin"), &rc);
    ck_assert_int_eq(rc, -1);
    free(out);
    /* the same file: 0 */
    out = run(&o, tu_tpath("a.bin"), tu_tpath("a.bin"), &rc);
    ck_assert_int_eq(rc, 0);
    free(out);
}
END_TEST

START_TEST(dump_aprt)
{
    float a[8], b[8];
    struct diff_opts o = DIFF_OPTS_INIT;
    struct err e = ERR_INIT;
    char *out;
    int rc;

    for (int i = 0; i < 8; i++)
        a[i] = b[i] = (float)i * 0.5f;
    b[6] = 2.5f;   /* 3 -> 2.5 */
    b[2] = 1.25f;  /* 1 -> 1.25 */
    ck_assert_int_eq(aprt_write(tu_tpath("a.bin"), 3, a, 8, &e), 0);
    ck_assert_int_eq(aprt_write(tu_tpath("b.bin"), 3, b, 8, &e), 0);
    o.json = 1;
    o.limit = 2;
    out = run(&o, tu_tpath("a.bin"), tu_tpath("b.bin"), &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(out, "\"layer\": 3,"));
    ck_assert_ptr_nonnull(strstr(out, "\"dim_product\": 8,"));
    ck_assert_ptr_nonnull(strstr(out, "\"max_abs_diff\": 0.5,"));
    ck_assert_ptr_nonnull(strstr(out, "\"max_abs_diff_index\": 6,"));
    /* rms = sqrt((0.25 + 0.0625) / 8) = 0.19764235376052372 */
    ck_assert_ptr_nonnull(strstr(out, "\"rms_diff\": 0.19764235376052372,"));
    ck_assert_ptr_nonnull(strstr(out, "\"index\": 6,"));
    ck_assert_ptr_nonnull(strstr(out, "\"index\": 2,"));
    free(out);
    /* with a gate wide enough: within thresholds */
    o.fail_max = 0.5;
    out = run(&o, tu_tpath("a.bin"), tu_tpath("b.bin"), &rc);
    ck_assert_int_eq(rc, 0);
    free(out);
    /* a model against a dump is trouble */
    write_model(S_GGUF, tu_tpath("m.gguf"));
    out = run(&o, tu_tpath("m.gguf"), tu_tpath("b.bin"), &rc);
    ck_assert_int_eq(rc, -1);
    free(out);
}
END_TEST

static void stage(const char *root, const char *rel, float bias)
{
    char p[512], d[512];
    float v[64];
    char *slash;
    struct err e = ERR_INIT;

    snprintf(p, sizeof p, "%s/%s/%s", tu_dir, root, rel);
    snprintf(d, sizeof d, "%s", p);
    slash = strrchr(d, '/');
    *slash = 0;
    mkdir(d, 0777);
    for (int i = 0; i < 64; i++)
        v[i] = (float)((i * 37) % 64) / 64.0f - 0.5f + (i % 2 ? bias : -bias);
    ck_assert_int_eq(aprt_write(p, 0, v, 64, &e), 0);
}

START_TEST(dump_dir_first_divergence)
{
    static const char *const rels[] = {
        "layer-0/embedding.bin", "layer-0/attn_norm.bin", "layer-0/qkv_matmul.bin",
        "layer-0/ffn_up.bin", "layer-1/attn_norm.bin", "layer-1/qkv_matmul.bin",
        "layer-1/ffn_up.bin", "layer-2/attn_norm.bin", "layer-10/attn_norm.bin",
        "final_norm.bin", "lm_head.bin",
    };
    struct diff_opts o = DIFF_OPTS_INIT;
    char *out;
    int rc;

    mkdir(tu_tpath("A"), 0777);
    mkdir(tu_tpath("B"), 0777);
    for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
        /* planted at layer-1/qkv_matmul; later stages (and layer-1/ffn_up, which sorts
         * before it by name) diverge too, as they would downstream */
        int bad = i == 5 || i == 6 || i >= 8;
        stage("A", rels[i], 0);
        stage("B", rels[i], bad ? 0.4f : 0);
    }
    out = run(&o, tu_tpath("A"), tu_tpath("B"), &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(out, "first divergent stage: layer-1/qkv_matmul.bin") != NULL, "%s", out);
    /* forward order: layer-2 before layer-10, whole-model stages last */
    ck_assert_ptr_nonnull(strstr(out, "layer-2/attn_norm.bin"));
    ck_assert(strstr(out, "layer-2/attn_norm.bin") < strstr(out, "layer-10/attn_norm.bin"));
    ck_assert(strstr(out, "layer-10/attn_norm.bin") < strstr(out, "final_norm.bin"));
    ck_assert(strstr(out, "layer-1/qkv_matmul.bin") < strstr(out, "layer-1/ffn_up.bin"));
    free(out);
    o.json = 1;
    out = run(&o, tu_tpath("A"), tu_tpath("B"), &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(out, "\"first_divergent\": \"layer-1/qkv_matmul.bin\""));
    ck_assert_ptr_nonnull(strstr(out, "\"first_divergent_layer\": 1,"));
    ck_assert_ptr_nonnull(strstr(out, "\"first_divergent_stage\": \"qkv_matmul\""));
    ck_assert_ptr_nonnull(strstr(out, "\"stages_compared\": 11"));
    free(out);
    /* a stage only on one side is listed and makes them differ */
    o.json = 0;
    stage("A", "layer-3/attn_out.bin", 0);
    out = run(&o, tu_tpath("A"), tu_tpath("A"), &rc);
    ck_assert_int_eq(rc, 0);
    free(out);
    out = run(&o, tu_tpath("A"), tu_tpath("B"), &rc);
    ck_assert_ptr_nonnull(strstr(out, "< only in a: layer-3/attn_out.bin"));
    free(out);
    /* the picture */
    o.plot = tu_tpath("stages.svg");
    out = run(&o, tu_tpath("A"), tu_tpath("B"), &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_int_eq(access(o.plot, R_OK), 0);
    free(out);
}
END_TEST

START_TEST(plot_escapes_names)
{
    struct diff_opts o = DIFF_OPTS_INIT;
    struct model m;
    struct err e = ERR_INIT;
    int64_t sh[1] = { 4 };
    char *out, *buf;
    size_t n;
    int rc;

    for (int q = 0; q < 2; q++) {
        uint8_t *p;
        memset(&m, 0, sizeof m);
        ck_assert_int_eq(fx_init(&m, "x", &e), 0);
        p = fx_tensor(&m, "blk.0.x<y&\"z\x01.weight", DT_F32, 1, sh, &e);
        ck_assert_ptr_nonnull(p);
        fx_fill_f32(p, 4, 1, 0, 1);
        p[0] ^= (uint8_t)q;
        write_as(&m, S_GGUF, tu_tpath(q ? "y.gguf" : "x.gguf"));
        model_close(&m);
    }
    o.plot = tu_tpath("p.svg");
    out = run(&o, tu_tpath("x.gguf"), tu_tpath("y.gguf"), &rc);
    ck_assert_int_eq(rc, 1);
    free(out);
    buf = tu_slurp_str(o.plot, &n);
    ck_assert_ptr_nonnull(strstr(buf, "<svg"));
    ck_assert_ptr_nonnull(strstr(buf, "x&lt;y&amp;&quot;z?.weight"));
    ck_assert_ptr_nonnull(strstr(buf, "1 - cosine"));
    ck_assert_ptr_nonnull(strstr(buf, "</svg>"));
    free(buf);
}
END_TEST

START_TEST(trouble)
{
    struct diff_opts o = DIFF_OPTS_INIT;
    char *out;
    int rc;

    write_model(S_GGUF, tu_tpath("m.gguf"));
    out = run(&o, tu_tpath("m.gguf"), tu_tpath("missing.gguf"), &rc);
    ck_assert_int_eq(rc, -1);
    free(out);
    o.filter = "(";
    out = run(&o, tu_tpath("m.gguf"), tu_tpath("m.gguf"), &rc);
    ck_assert_int_eq(rc, -1);
    free(out);
}
END_TEST

/* ---- shared fixtures ------------------------------------------------------------------ */

START_TEST(shared_f16_vs_q8_0)
{
    struct diff_opts o = DIFF_OPTS_INIT;
    char a[512], b[512], *out;
    int rc;

    if (!tu_need_shared("gguf/tiny-llama-small-F16.gguf") ||
        !tu_need_shared("gguf/tiny-llama-small-Q8_0.gguf"))
        return;
    snprintf(a, sizeof a, "%s/gguf/tiny-llama-small-F16.gguf", tu_shared_dir());
    snprintf(b, sizeof b, "%s/gguf/tiny-llama-small-Q8_0.gguf", tu_shared_dir());
    o.fail_cos = 0.9999;
    o.json = 1;
    out = run(&o, a, b, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\"tensors_compared\": 21"));
    ck_assert_ptr_nonnull(strstr(out, "\"failing_count\": 0"));
    free(out);
    /* their logits as headerless f32 dumps */
    if (!tu_need_shared("gguf/refs/tiny-llama-small-F16.prompt0.logits.f32") ||
        !tu_need_shared("gguf/refs/tiny-llama-small-Q8_0.prompt0.logits.f32"))
        return;
    snprintf(a, sizeof a, "%s/gguf/refs/tiny-llama-small-F16.prompt0.logits.f32", tu_shared_dir());
    snprintf(b, sizeof b, "%s/gguf/refs/tiny-llama-small-Q8_0.prompt0.logits.f32", tu_shared_dir());
    o.fail_cos = 0.99;
    out = run(&o, a, b, &rc);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\"cosine_sim\": 0.99"));
    free(out);
    o.fail_cos = NAN;
    out = run(&o, a, a, &rc);
    ck_assert_int_eq(rc, 0);
    free(out);
}
END_TEST

Suite *diff_suite(void)
{
    Suite *s = suite_create("diff");
    TCase *tc = tcase_create("metrics");
    TCase *fx = tcase_create("files");

    tcase_add_test(tc, metrics_by_hand);
    tcase_add_test(tc, metrics_buckets_and_nonfinite);
    tcase_add_test(tc, metrics_long);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(fx, tu_setup, tu_teardown);
    tcase_set_timeout(fx, 60);
    tcase_add_test(fx, formats_identical);
    tcase_add_loop_test(fx, damage_status, 0, (int)(sizeof damage_rows / sizeof damage_rows[0]));
    tcase_add_test(fx, perturb_text_and_gates);
    tcase_add_test(fx, threads_deterministic);
    tcase_add_test(fx, dump_bin_by_hand);
    tcase_add_test(fx, dump_aprt);
    tcase_add_test(fx, dump_dir_first_divergence);
    tcase_add_test(fx, plot_escapes_names);
    tcase_add_test(fx, trouble);
    tcase_add_test(fx, shared_f16_vs_q8_0);
    suite_add_tcase(s, fx);
    return s;
}
