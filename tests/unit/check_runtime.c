/*
 * check_runtime.c - the forward pass (runtime/rt.h, forward.c) and the sampler.
 *
 * Without ../shared: small llama, qwen2 and qwen3 models built here with the fixture
 * helpers (GQA, QKV biases, QK-norm with head_dim != n_embd / n_head, tied and untied
 * output, F32/F16/Q8_0/Q4_0 weights) against an independent double-precision reference
 * forward written below; batch/threads/rollback consistency; GGUF, Hugging Face and APR
 * layouts of the same model giving bit-identical logits; stage hooks; errors.
 * With ../shared: the transformers and llama.cpp reference outputs (fixtures/README.md).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/json.h"
#include "../../common/sbuf.h"
#include "../../convert/convert.h"
#include "../../dequant/dq.h"
#include "../../formats/config.h"
#include "../../runtime/rt.h"
#include "../../runtime/run.h"
#include "../../runtime/sample.h"
#include "../../runtime/tokenizer.h"
#include "../fixtures/gguf_fix.h"
#include "tu.h"
#include "../../common/banned.h"

/* ---- test models */

struct tm_spec {
    const char *arch;
    int         qkv_bias, qk_norm, tied;
    int         dtype;          /* of the matrices */
    int         head_dim;
    int         scaling;        /* 0 none, 1 linear x4, 2 yarn x4 (orig ctx 16), 3 rope_freqs */
};

#define TM_LAYERS 2
#define TM_EMBD   64
#define TM_HEADS  4
#define TM_KV     2
#define TM_FF     128
#define TM_VOCAB  96
#define TM_CTX    64

static void tm_fill(struct model *m, const char *name, int dt, int n_dims, const int64_t *sh,
                    uint32_t seed, float center, float scale, struct err *e)
{
    int64_t n = n_dims == 1 ? sh[0] : sh[0] * sh[1];
    float *v = malloc((size_t)n * sizeof *v);
    uint8_t *p;

    ck_assert_ptr_nonnull(v);
    fx_fill_f32((uint8_t *)v, (uint64_t)n, seed, center, scale);   /* LE host: same bits */
    p = fx_tensor(m, name, dt, n_dims, sh, e);
    if (p && dq_quantize(dt, v, p, n_dims == 1 ? 1 : sh[0], n_dims == 1 ? sh[0] : sh[1], e))
        p = NULL;
    free(v);
}

static void tm_build(struct model *m, const struct tm_spec *s, struct err *e)
{
    static const char *const names[] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                         "ffn_gate", "ffn_up", "ffn_down" };
    const int64_t hd = s->head_dim, qd = TM_HEADS * hd, kvd = TM_KV * hd;
    char key[96], name[96];
    uint32_t seed = 0x1234567u;

    ck_assert_int_eq(fx_init(m, "test.gguf", e), 0);
    fx_str(m, "general.architecture", s->arch, e);
#define K(k) (snprintf(key, sizeof key, "%s.%s", s->arch, k), key)
    fx_uint(m, K("block_count"), MV_U32, TM_LAYERS, e);
    fx_uint(m, K("context_length"), MV_U32, TM_CTX, e);
    fx_uint(m, K("embedding_length"), MV_U32, TM_EMBD, e);
    fx_uint(m, K("feed_forward_length"), MV_U32, TM_FF, e);
    fx_uint(m, K("attention.head_count"), MV_U32, TM_HEADS, e);
    fx_uint(m, K("attention.head_count_kv"), MV_U32, TM_KV, e);
    fx_uint(m, K("attention.key_length"), MV_U32, (uint64_t)hd, e);
    fx_uint(m, K("attention.value_length"), MV_U32, (uint64_t)hd, e);
    fx_uint(m, K("rope.dimension_count"), MV_U32, (uint64_t)hd, e);
    fx_uint(m, K("vocab_size"), MV_U32, TM_VOCAB, e);
    fx_float(m, K("rope.freq_base"), MV_F32, 10000.0, e);
    fx_float(m, K("attention.layer_norm_rms_epsilon"), MV_F32, 1e-6, e);
    if (s->scaling == 1 || s->scaling == 2) {
        fx_str(m, K("rope.scaling.type"), s->scaling == 1 ? "linear" : "yarn", e);
        fx_float(m, K("rope.scaling.factor"), MV_F32, 4.0, e);
        fx_uint(m, K("rope.scaling.original_context_length"), MV_U32, 16, e);
    }
#undef K
    if (s->scaling == 3) {
        int64_t n = hd / 2;
        tm_fill(m, "rope_freqs.weight", DT_F32, 1, &n, 77, 4.0f, 3.0f, e);
    }
    {
        int64_t sh[2] = { TM_VOCAB, TM_EMBD };
        tm_fill(m, "token_embd.weight", s->dtype, 2, sh, seed++, 0.0f, 0.5f, e);
        tm_fill(m, "output_norm.weight", DT_F32, 1, &sh[1], seed++, 1.0f, 0.1f, e);
        if (!s->tied)
            tm_fill(m, "output.weight", s->dtype, 2, sh, seed++, 0.0f, 0.125f, e);
    }
    for (int l = 0; l < TM_LAYERS; l++) {
        for (int k = 0; k < 7; k++) {
            int64_t sh[2];
            switch (k) {
            case 0: sh[0] = qd; sh[1] = TM_EMBD; break;
            case 1: case 2: sh[0] = kvd; sh[1] = TM_EMBD; break;
            case 3: sh[0] = TM_EMBD; sh[1] = qd; break;
            case 4: case 5: sh[0] = TM_FF; sh[1] = TM_EMBD; break;
            default: sh[0] = TM_EMBD; sh[1] = TM_FF; break;
            }
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[k]);
            tm_fill(m, name, s->dtype, 2, sh, seed++, 0.0f, 1.5f / sqrtf((float)sh[1]), e);
            if (s->qkv_bias && k < 3) {
                snprintf(name, sizeof name, "blk.%d.%s.bias", l, names[k]);
                tm_fill(m, name, DT_F32, 1, sh, seed++, 0.0f, 0.5f, e);
            }
        }
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        tm_fill(m, name, DT_F32, 1, (int64_t[]){ TM_EMBD }, seed++, 1.0f, 0.2f, e);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        tm_fill(m, name, DT_F32, 1, (int64_t[]){ TM_EMBD }, seed++, 1.0f, 0.2f, e);
        if (s->qk_norm) {
            snprintf(name, sizeof name, "blk.%d.attn_q_norm.weight", l);
            tm_fill(m, name, DT_F32, 1, &hd, seed++, 1.0f, 0.3f, e);
            snprintf(name, sizeof name, "blk.%d.attn_k_norm.weight", l);
            tm_fill(m, name, DT_F32, 1, &hd, seed++, 1.0f, 0.3f, e);
        }
    }
    ck_assert_msg(err_ok(e), "%s", e->msg);
}

/* ---- the reference: plain double-precision loops over dequantized weights */

static double *ref_w(const struct model *m, const struct model_config *c, enum tensor_role r,
                     int l)
{
    const struct model_tensor *t = model_config_tensor(m, c, r, l);
    struct err e = ERR_INIT;
    float *f;
    double *d;

    if (!t && r == TR_OUTPUT)
        t = model_config_tensor(m, c, TR_TOK_EMBD, l);
    if (!t)
        return NULL;
    f = dq_tensor_to_f32_new(t, 1, &e);
    ck_assert_msg(f != NULL, "%s", e.msg);
    d = malloc((size_t)t->n_elems * sizeof *d);
    ck_assert_ptr_nonnull(d);
    for (int64_t i = 0; i < t->n_elems; i++)
        d[i] = f[i];
    free(f);
    return d;
}

static void ref_matvec(const double *w, const double *x, int64_t rows, int64_t cols, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t k = 0; k < cols; k++)
            s += w[r * cols + k] * x[k];
        y[r] = s;
    }
}

static void ref_rms(double *x, const double *w, int64_t n, double eps)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = 1.0 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] * ss * w[i];
}

/* RoPE inverse frequency of pair i, after the config's scaling (transformers' formulas) or
 * the per-pair factors ff (GGUF rope_freqs.weight) */
static double ref_inv_freq(const struct model_config *c, const double *ff, int64_t i)
{
    const double d = c->n_rot, f = c->rope_scaling.factor;
    const double base = pow(c->rope_theta, -2.0 * (double)i / d);

    if (ff)
        return base / ff[i];
    if (c->rope_scaling.type == ROPE_SCALE_LINEAR)
        return base / f;
    if (c->rope_scaling.type == ROPE_SCALE_LLAMA3) {
        const double L = c->rope_scaling.orig_ctx, lo = c->rope_scaling.low_freq_factor;
        const double hi = c->rope_scaling.high_freq_factor, wl = 2 * M_PI / base;
        double s;
        if (wl < L / hi)
            return base;
        if (wl > L / lo)
            return base / f;
        s = (L / wl - lo) / (hi - lo);
        return (1 - s) * base / f + s * base;
    }
    if (c->rope_scaling.type == ROPE_SCALE_YARN) {
        const double L = c->rope_scaling.orig_ctx;
        double lo = floor(d * log(L / (c->rope_scaling.beta_fast * 2 * M_PI)) / (2 * log(c->rope_theta)));
        double hi = ceil(d * log(L / (c->rope_scaling.beta_slow * 2 * M_PI)) / (2 * log(c->rope_theta)));
        double ramp, keep;
        lo = lo < 0 ? 0 : lo;
        hi = hi > d - 1 ? d - 1 : hi;
        ramp = ((double)i - lo) / (hi == lo ? 0.001 : hi - lo);
        keep = 1 - (ramp < 0 ? 0 : ramp > 1 ? 1 : ramp);      /* extrapolation share */
        return base / f * (1 - keep) + base * keep;
    }
    return base;
}

static double ref_mscale(const struct model_config *c)
{
    return c->rope_scaling.type == ROPE_SCALE_YARN ? 0.1 * log(c->rope_scaling.factor) + 1 : 1;
}

/* logits[n][n_vocab] of tok[0..n) from position 0 */
static void ref_forward(const struct model *m, const int32_t *tok, int n, double *logits)
{
    struct model_config c;
    struct err e = ERR_INIT;
    int64_t embd, hd, qd, kvd, ff, nv, half;
    double *x, *h, *q, *k, *v, *att, *tmp, *g, *u, rfs[512], *rf_v = rfs;

    ck_assert_msg(model_config_load(m, &c, &e) == 0, "%s", e.msg);
    embd = c.n_embd, hd = c.head_dim, qd = c.n_head * hd, kvd = c.n_head_kv * hd, ff = c.n_ff;
    nv = c.n_vocab, half = c.n_rot / 2;
    {
        const struct model_tensor *rf = model_tensor_find(m, "rope_freqs.weight");
        float *f = rf ? dq_tensor_to_f32_new(rf, 1, &e) : NULL;
        for (int64_t i = 0; f && i < half; i++)
            rf_v[i] = f[i];
        free(f);
        if (!rf)
            rf_v = NULL;
    }
    x = calloc((size_t)n * embd, sizeof *x);
    h = calloc((size_t)embd, sizeof *h);
    q = calloc((size_t)n * qd, sizeof *q);
    k = calloc((size_t)n * kvd, sizeof *k);
    v = calloc((size_t)n * kvd, sizeof *v);
    att = calloc((size_t)qd, sizeof *att);
    tmp = calloc((size_t)(embd > ff ? embd : ff) + qd, sizeof *tmp);
    g = calloc((size_t)ff, sizeof *g);
    u = calloc((size_t)ff, sizeof *u);
    {
        double *emb = ref_w(m, &c, TR_TOK_EMBD, 0);
        for (int t = 0; t < n; t++)
            memcpy(x + t * embd, emb + (int64_t)tok[t] * embd, (size_t)embd * sizeof *x);
        free(emb);
    }
    for (int l = 0; l < (int)c.n_layer; l++) {
        double *wq = ref_w(m, &c, TR_ATTN_Q, l), *wk = ref_w(m, &c, TR_ATTN_K, l);
        double *wv = ref_w(m, &c, TR_ATTN_V, l), *wo = ref_w(m, &c, TR_ATTN_OUT, l);
        double *bq = ref_w(m, &c, TR_ATTN_Q_BIAS, l), *bk = ref_w(m, &c, TR_ATTN_K_BIAS, l);
        double *bv = ref_w(m, &c, TR_ATTN_V_BIAS, l);
        double *qn = ref_w(m, &c, TR_ATTN_Q_NORM, l), *kn = ref_w(m, &c, TR_ATTN_K_NORM, l);
        double *an = ref_w(m, &c, TR_ATTN_NORM, l), *fn = ref_w(m, &c, TR_FFN_NORM, l);
        double *wg = ref_w(m, &c, TR_FFN_GATE, l), *wu = ref_w(m, &c, TR_FFN_UP, l);
        double *wd = ref_w(m, &c, TR_FFN_DOWN, l);

        for (int t = 0; t < n; t++) {
            memcpy(h, x + t * embd, (size_t)embd * sizeof *h);
            ref_rms(h, an, embd, c.norm_eps);
            ref_matvec(wq, h, qd, embd, q + t * qd);
            ref_matvec(wk, h, kvd, embd, k + t * kvd);
            ref_matvec(wv, h, kvd, embd, v + t * kvd);
            for (int64_t i = 0; bq && i < qd; i++)
                q[t * qd + i] += bq[i];
            for (int64_t i = 0; bk && i < kvd; i++) {
                k[t * kvd + i] += bk[i];
                v[t * kvd + i] += bv[i];
            }
            for (int64_t hh = 0; hh < c.n_head + c.n_head_kv; hh++) {
                double *p = hh < c.n_head ? q + t * qd + hh * hd : k + t * kvd + (hh - c.n_head) * hd;
                if (qn)
                    ref_rms(p, hh < c.n_head ? qn : kn, hd, c.norm_eps);
                for (int64_t i = 0; i < half; i++) {
                    double th = t * ref_inv_freq(&c, rf_v, i), ms = ref_mscale(&c);
                    int64_t a = c.rope_style == ROPE_NORM ? 2 * i : i;
                    int64_t b = c.rope_style == ROPE_NORM ? 2 * i + 1 : i + half;
                    double x0 = p[a], x1 = p[b];
                    p[a] = x0 * cos(th) * ms - x1 * sin(th) * ms;
                    p[b] = x1 * cos(th) * ms + x0 * sin(th) * ms;
                }
            }
        }
        for (int t = 0; t < n; t++) {
            for (int64_t hh = 0; hh < c.n_head; hh++) {
                const double *qh = q + t * qd + hh * hd;
                int64_t kh = hh / (c.n_head / c.n_head_kv);
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double s = 0;
                    for (int64_t i = 0; i < hd; i++)
                        s += qh[i] * k[j * kvd + kh * hd + i];
                    tmp[j] = s / sqrt((double)hd);
                    if (tmp[j] > mx)
                        mx = tmp[j];
                }
                for (int j = 0; j <= t; j++)
                    sum += (tmp[j] = exp(tmp[j] - mx));
                for (int64_t i = 0; i < hd; i++) {
                    double s = 0;
                    for (int j = 0; j <= t; j++)
                        s += tmp[j] / sum * v[j * kvd + kh * hd + i];
                    att[hh * hd + i] = s;
                }
            }
            ref_matvec(wo, att, embd, qd, tmp);
            for (int64_t i = 0; i < embd; i++)
                x[t * embd + i] += tmp[i];
            memcpy(h, x + t * embd, (size_t)embd * sizeof *h);
            ref_rms(h, fn, embd, c.norm_eps);
            ref_matvec(wg, h, ff, embd, g);
            ref_matvec(wu, h, ff, embd, u);
            for (int64_t i = 0; i < ff; i++)
                g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            ref_matvec(wd, g, embd, ff, tmp);
            for (int64_t i = 0; i < embd; i++)
                x[t * embd + i] += tmp[i];
        }
        free(wq), free(wk), free(wv), free(wo), free(bq), free(bk), free(bv), free(qn);
        free(kn), free(an), free(fn), free(wg), free(wu), free(wd);
    }
    {
        double *on = ref_w(m, &c, TR_OUTPUT_NORM, 0), *wout = ref_w(m, &c, TR_OUTPUT, 0);
        for (int t = 0; t < n; t++) {
            memcpy(h, x + t * embd, (size_t)embd * sizeof *h);
            ref_rms(h, on, embd, c.norm_eps);
            ref_matvec(wout, h, nv, embd, logits + (int64_t)t * nv);
        }
        free(on);
        free(wout);
    }
    free(x), free(h), free(q), free(k), free(v), free(att), free(tmp), free(g), free(u);
}

/* ---- helpers */

struct run {
    struct rt_model rm;
    struct rt_ctx  *ctx;
};

static void run_open(struct run *r, const struct model *m, int n_ctx, int threads, int batch)
{
    struct err e = ERR_INIT;
    struct rt_params p = { n_ctx, threads, batch, NULL, RT_ROPE_FREQ_EXACT, 0 };

    ck_assert_msg(rt_model_load(&r->rm, m, &e) == 0, "%s", e.msg);
    ck_assert_msg(rt_ctx_new(&r->ctx, &r->rm, &p, &e) == 0, "%s", e.msg);
}

static void run_close(struct run *r)
{
    rt_ctx_free(r->ctx);
    rt_model_free(&r->rm);
}

/* All-position logits of tok (malloc'd [n][n_vocab]). */
static float *eval_all(const struct model *m, const int32_t *tok, int n, int threads, int batch)
{
    struct run r;
    struct err e = ERR_INIT;
    float *lg;

    run_open(&r, m, TM_CTX, threads, batch);
    lg = malloc((size_t)n * r.rm.c.n_vocab * sizeof *lg);
    ck_assert_ptr_nonnull(lg);
    ck_assert_msg(rt_eval(r.ctx, tok, n, 0, lg, RT_EVAL_ALL_LOGITS, &e) == 0, "%s", e.msg);
    run_close(&r);
    return lg;
}

/* worst per-position 1 - cosine and max |a - b| / max |b| */
static void cmp_rows(const float *a, const double *b, int n, int64_t w, double *one_minus_cos,
                     double *rel)
{
    *one_minus_cos = 0;
    *rel = 0;
    for (int t = 0; t < n; t++) {
        double ab = 0, aa = 0, bb = 0, md = 0, mb = 0;
        for (int64_t i = 0; i < w; i++) {
            double x = a[t * w + i], y = b[t * w + i];
            ab += x * y, aa += x * x, bb += y * y;
            if (fabs(x - y) > md)
                md = fabs(x - y);
            if (fabs(y) > mb)
                mb = fabs(y);
        }
        if (1 - ab / sqrt(aa * bb) > *one_minus_cos)
            *one_minus_cos = 1 - ab / sqrt(aa * bb);
        if (md / mb > *rel)
            *rel = md / mb;
    }
}

static const int32_t prompt[] = { 1, 17, 42, 5, 88, 3, 63, 9, 27, 70, 2, 51 };
#define NP ((int)(sizeof prompt / sizeof prompt[0]))

/* ---- the forward pass against the reference */

/*
 * Bounds per type, measured on every kernel path (APR_RT_ISA=scalar, avx2 and the
 * AVX-512 default give these worst figures over the cases of the type; Q4_1, Q5_0,
 * Q5_1 and IQ4_NL measured on scalar and avx2 only: 1-cos 1.17e-4, 1.35e-4, 9.57e-5,
 * 1.57e-4; rel 1.61e-2, 2.22e-2, 1.48e-2, 1.76e-2, inside the Q8_0/Q4_0 bounds below):
 *   F32/F16/BF16 (f32 arithmetic vs the double reference): 1-cos <= 7.04e-14,
 *     rel <= 4.66e-7; bounds 5e-13 (x7) and 2e-6 (x4.3).
 *   Q8_0 and Q4_0: rt_matmul quantizes the activations to Q8_0 blocks as ggml does and
 *     the reference does not: Q8_0 1-cos 1.42e-4, rel 1.68e-2; Q4_0 9.92e-5, 1.60e-2;
 *     bounds 3e-4 (x2.1, x3) and 3e-2 (x1.8, x1.9).
 * (They were 1e-9/1e-5 and 1e-3/5e-2 before these measurements.)
 */
#define TOL_FLOAT 5e-13, 2e-6
#define TOL_QUANT 3e-4, 3e-2
static const struct {
    struct tm_spec s;
    double cos_tol, rel_tol;   /* max 1 - cosine, max |delta| / max |ref| */
} cases[] = {
    { { "llama", 0, 0, 0, DT_F32, 16, 0 }, TOL_FLOAT },
    { { "llama", 0, 0, 1, DT_F16, 16, 0 }, TOL_FLOAT },
    { { "qwen2", 1, 0, 0, DT_F32, 16, 0 }, TOL_FLOAT },
    { { "qwen3", 0, 1, 1, DT_F32, 32, 0 }, TOL_FLOAT },
    { { "qwen3", 0, 1, 0, DT_BF16, 32, 0 }, TOL_FLOAT },
    { { "llama", 0, 0, 0, DT_Q8_0, 16, 0 }, TOL_QUANT },
    { { "qwen2", 1, 0, 1, DT_Q4_0, 16, 0 }, TOL_QUANT },
    { { "llama", 0, 0, 0, DT_Q4_1, 16, 0 }, TOL_QUANT },
    { { "qwen2", 1, 0, 0, DT_Q5_0, 16, 0 }, TOL_QUANT },
    { { "qwen3", 0, 1, 1, DT_Q5_1, 32, 0 }, TOL_QUANT },
    { { "llama", 0, 0, 1, DT_IQ4_NL, 16, 0 }, TOL_QUANT },
    { { "llama", 0, 0, 0, DT_F32, 16, 1 }, TOL_FLOAT },   /* linear RoPE scaling */
    { { "qwen2", 1, 0, 0, DT_F32, 16, 2 }, TOL_FLOAT },   /* YaRN */
    { { "llama", 0, 0, 0, DT_F32, 16, 3 }, TOL_FLOAT },   /* rope_freqs.weight */
};

START_TEST(test_reference)
{
    struct model m;
    struct err e = ERR_INIT;
    double *ref = malloc((size_t)NP * TM_VOCAB * sizeof *ref), omc, rel;
    float *lg;

    tm_build(&m, &cases[_i].s, &e);
    ref_forward(&m, prompt, NP, ref);
    lg = eval_all(&m, prompt, NP, 2, 0);
    cmp_rows(lg, ref, NP, TM_VOCAB, &omc, &rel);
    printf("check_runtime: %s %s scaling %d: 1-cos %.3g, max|delta|/max|ref| %.3g\n",
           cases[_i].s.arch, dtype_name(cases[_i].s.dtype), cases[_i].s.scaling, omc, rel);
    ck_assert_msg(omc <= cases[_i].cos_tol && rel <= cases[_i].rel_tol,
                  "%s %s: 1-cos %g (<= %g), rel %g (<= %g)", cases[_i].s.arch,
                  dtype_name(cases[_i].s.dtype), omc, cases[_i].cos_tol, rel, cases[_i].rel_tol);
    if (cases[_i].cos_tol > 1e-6) {
        /* quantized: the prompt's matrix kernels (12 tokens: past every gemm_min) and
         * decode's kernels, one token at a time, give the scalar twins' exact bits */
        float *one = eval_all(&m, prompt, NP, 2, 1);
        ck_assert_msg(memcmp(one, lg, (size_t)NP * TM_VOCAB * sizeof *lg) == 0,
                      "%s %s: token by token differs from the batch", cases[_i].s.arch,
                      dtype_name(cases[_i].s.dtype));
        free(one);
    }
    free(lg);
    free(ref);
    model_close(&m);
}
END_TEST

/* One batch, token by token, odd batch sizes, 1 or 3 threads: the same logits, bit for bit
 * (rt_matmul never splits a reduction; attention is per (position, head)). */
START_TEST(test_consistency)
{
    static const struct tm_spec s = { "qwen2", 1, 0, 0, DT_F16, 16, 0 };
    struct model m;
    struct err e = ERR_INIT;
    struct run r;
    float *all, *one, *b3, *t1, last[TM_VOCAB];

    tm_build(&m, &s, &e);
    all = eval_all(&m, prompt, NP, 2, 0);
    b3 = eval_all(&m, prompt, NP, 2, 3);
    t1 = eval_all(&m, prompt, NP, 1, 5);
    one = malloc((size_t)NP * TM_VOCAB * sizeof *one);
    run_open(&r, &m, TM_CTX, 3, 0);
    for (int i = 0; i < NP; i++)
        ck_assert_msg(rt_eval(r.ctx, &prompt[i], 1, i, one + i * TM_VOCAB, 0, &e) == 0, "%s", e.msg);
    /* rollback: re-evaluate from position 4 with the last-only output */
    ck_assert_msg(rt_eval(r.ctx, prompt + 4, NP - 4, 4, last, 0, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(r.ctx->n_past, NP);
    run_close(&r);
    ck_assert(memcmp(all, b3, sizeof(float) * NP * TM_VOCAB) == 0);
    ck_assert(memcmp(all, t1, sizeof(float) * NP * TM_VOCAB) == 0);
    for (int i = 0; i < NP; i++) {
        double omc, rel, d[TM_VOCAB];
        for (int k = 0; k < TM_VOCAB; k++)
            d[k] = all[i * TM_VOCAB + k];
        cmp_rows(one + i * TM_VOCAB, d, 1, TM_VOCAB, &omc, &rel);
        /* n_tok = 1 may take another matmul path than n_tok > 1: f32 rounding only */
        ck_assert_msg(omc < 1e-12 && rel < 1e-5, "position %d: 1-cos %g rel %g", i, omc, rel);
    }
    ck_assert(memcmp(last, one + (NP - 1) * TM_VOCAB, sizeof last) == 0 ||
              memcmp(last, all + (NP - 1) * TM_VOCAB, sizeof last) == 0);
    free(all), free(one), free(b3), free(t1);
    model_close(&m);
}
END_TEST

/* Without every logit, the last layer runs past its K and V only for the last row (none
 * for a chunk without logits): the last-only logits, chunked or not, after a rollback or
 * after a logit-less call, keep the bits of the all-logits evaluation's last row. */
START_TEST(test_last_rows)
{
    const struct tm_spec *sp = &cases[_i].s;
    struct model m;
    struct err e = ERR_INIT;
    float *all, last[TM_VOCAB];

    tm_build(&m, sp, &e);
    all = eval_all(&m, prompt, NP, 2, 0);
    const float *want = all + (NP - 1) * TM_VOCAB;
    for (int batch = 0; batch <= 5; batch += 5) {   /* one chunk; chunks of 5, 5, 2 */
        struct run r;
        run_open(&r, &m, TM_CTX, 2, batch);
        memset(last, 0, sizeof last);
        ck_assert_msg(rt_eval(r.ctx, prompt, NP, 0, last, 0, &e) == 0, "%s", e.msg);
        ck_assert_msg(memcmp(last, want, sizeof last) == 0, "%s %s batch %d: last-only logits differ",
                      sp->arch, dtype_name(sp->dtype), batch);
        /* rollback to position 4, last-only */
        memset(last, 0, sizeof last);
        ck_assert_msg(rt_eval(r.ctx, prompt + 4, NP - 4, 4, last, 0, &e) == 0, "%s", e.msg);
        ck_assert_msg(memcmp(last, want, sizeof last) == 0, "%s %s batch %d: after a rollback",
                      sp->arch, dtype_name(sp->dtype), batch);
        /* no logits for the first NP - 1 tokens: the last layer's cache is still written */
        ck_assert_msg(rt_eval(r.ctx, prompt, NP - 1, 0, NULL, 0, &e) == 0, "%s", e.msg);
        memset(last, 0, sizeof last);
        ck_assert_msg(rt_eval(r.ctx, prompt + NP - 1, 1, NP - 1, last, 0, &e) == 0, "%s", e.msg);
        run_close(&r);
        double omc, rel, d[TM_VOCAB];
        for (int k = 0; k < TM_VOCAB; k++)
            d[k] = want[k];
        cmp_rows(last, d, 1, TM_VOCAB, &omc, &rel);
        /* one token may take another matmul path than many (test_consistency): f32 rounding */
        ck_assert_msg(omc < 1e-12 && rel < 1e-5, "%s %s batch %d: after a logit-less call: 1-cos %g rel %g",
                      sp->arch, dtype_name(sp->dtype), batch, omc, rel);
    }
    free(all);
    model_close(&m);
}
END_TEST

/* A rollback leaves the longer context's K past n_kv in the cache, inside the attention's
 * blocks of positions (their scores are computed, never read): the next chunk and the
 * tokens decoded after it keep the bits of a fresh context that never held them.  One
 * thread and two (a part per kv head), three (parts of the (token, head) pairs). */
START_TEST(test_stale_kv)
{
    static const struct tm_spec s = { "qwen2", 1, 0, 0, DT_F32, 16, 0 };
    static const int32_t alt[3] = { 90, 7, 33 }, next[2] = { 12, 81 };
    struct model m;
    struct err e = ERR_INIT;

    tm_build(&m, &s, &e);
    for (int th = 1; th <= 3; th++) {
        float got[5][TM_VOCAB], want[5][TM_VOCAB];
        for (int fresh = 0; fresh < 2; fresh++) {
            float (*lg)[TM_VOCAB] = fresh ? want : got;
            struct run r;
            run_open(&r, &m, TM_CTX, th, 0);
            /* stale: all of the prompt, then back to position 4; fresh: its first 4 */
            ck_assert_msg(rt_eval(r.ctx, prompt, fresh ? 4 : NP, 0, NULL, 0, &e) == 0, "%s",
                          e.msg);
            ck_assert_msg(rt_eval(r.ctx, alt, 3, 4, lg[0], RT_EVAL_ALL_LOGITS, &e) == 0, "%s",
                          e.msg);
            for (int i = 0; i < 2; i++)
                ck_assert_msg(rt_eval(r.ctx, &next[i], 1, 7 + i, lg[3 + i], 0, &e) == 0, "%s",
                              e.msg);
            run_close(&r);
        }
        for (int i = 0; i < 5; i++)
            ck_assert_msg(memcmp(got[i], want[i], sizeof got[i]) == 0,
                          "%d threads: row %d after a rollback differs from a fresh context",
                          th, i);
    }
    model_close(&m);
}
END_TEST

/* ---- layouts: GGUF, Hugging Face and APR files of one model give the same bits */

static float *file_logits(const char *path, struct err *e)
{
    struct model m;
    float *lg;

    ck_assert_msg(model_open(&m, path, e) == 0, "%s", e->msg);
    lg = eval_all(&m, prompt, NP, 2, 0);
    model_close(&m);
    return lg;
}

static void convert(const char *in, const char *out, const char *dtype, int lossless)
{
    struct convert_opts o = CONVERT_OPTS_INIT;
    struct err e = ERR_INIT;

    o.dtype = dtype;
    o.lossless = lossless;
    o.quiet = 1;
    o.n_threads = 1;
    ck_assert_msg(convert_run(&o, in, out, &e) == 0, "%s -> %s: %s", in, out, e.msg);
}

START_TEST(test_layouts)
{
    static const struct tm_spec specs[] = {
        { "llama", 0, 0, 0, DT_F32, 16, 0 },     /* q/k rows permuted in GGUF */
        { "qwen2", 1, 0, 0, DT_F16, 16, 0 },     /* SafeTensors has no Q8_0 */
    };
    struct model m;
    struct err e = ERR_INIT;
    const char *g = tu_tpath("m.gguf");
    float *a, *b;

    tm_build(&m, &specs[_i], &e);
    ck_assert_msg(gguf_write(&m, g, NULL, &e) == 0, "%s", e.msg);
    model_close(&m);
    convert(g, tu_tpath("m-hf/"), NULL, 0);
    convert(g, tu_tpath("m.apr"), NULL, 1);
    convert(g, tu_tpath("m-f16.gguf"), "f16", 0);
    convert(tu_tpath("m-f16.gguf"), tu_tpath("m-f16-hf/"), NULL, 0);
    a = file_logits(g, &e);
    b = file_logits(tu_tpath("m-hf"), &e);
    ck_assert_msg(memcmp(a, b, sizeof(float) * NP * TM_VOCAB) == 0, "GGUF vs HF layout");
    free(b);
    b = file_logits(tu_tpath("m.apr"), &e);
    ck_assert_msg(memcmp(a, b, sizeof(float) * NP * TM_VOCAB) == 0, "GGUF vs APR");
    free(a), free(b);
    a = file_logits(tu_tpath("m-f16.gguf"), &e);
    b = file_logits(tu_tpath("m-f16-hf"), &e);
    ck_assert_msg(memcmp(a, b, sizeof(float) * NP * TM_VOCAB) == 0, "F16 GGUF vs HF layout");
    free(a), free(b);
}
END_TEST

/* Llama 3.x RoPE scaling from a Hugging Face config.json (rope_scaling, rope_type llama3) */
START_TEST(test_llama3_scaling)
{
    static const struct tm_spec s = { "llama", 0, 0, 0, DT_F32, 16, 0 };
    static const char ins[] = "{\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
        "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
        "\"original_max_position_embeddings\": 16},";
    struct model m;
    struct model_config mc;
    struct err e = ERR_INIT;
    double *ref = malloc((size_t)NP * TM_VOCAB * sizeof *ref), omc, rel;
    float *lg, *plain;
    char *cfg;
    size_t n;
    FILE *f;

    tm_build(&m, &s, &e);
    ck_assert_msg(gguf_write(&m, tu_tpath("m.gguf"), NULL, &e) == 0, "%s", e.msg);
    model_close(&m);
    convert(tu_tpath("m.gguf"), tu_tpath("hf/"), NULL, 0);
    plain = file_logits(tu_tpath("hf"), &e);
    cfg = tu_slurp_str(tu_tpath("hf/config.json"), &n);
    ck_assert(cfg[0] == '{');
    f = fopen(tu_tpath("hf/config.json"), "wb");
    ck_assert_ptr_nonnull(f);
    fputs(ins, f);
    fputs(cfg + 1, f);
    fclose(f);
    free(cfg);
    ck_assert_msg(model_open(&m, tu_tpath("hf"), &e) == 0, "%s", e.msg);
    ck_assert_msg(model_config_load(&m, &mc, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(mc.rope_scaling.type, ROPE_SCALE_LLAMA3);
    ref_forward(&m, prompt, NP, ref);
    lg = eval_all(&m, prompt, NP, 2, 0);
    cmp_rows(lg, ref, NP, TM_VOCAB, &omc, &rel);
    printf("check_runtime: llama3 scaling (config.json): 1-cos %.3g, max|delta|/max|ref| %.3g\n",
           omc, rel);
    /* measured 1-cos 3.16e-14, rel 3.47e-7 (scalar path; 2.82e-14, 2.99e-7 AVX2/AVX-512):
     * the float bounds of the cases above */
    ck_assert_msg(omc <= 5e-13 && rel <= 2e-6, "1-cos %g rel %g", omc, rel);
    ck_assert(memcmp(lg, plain, sizeof(float) * NP * TM_VOCAB) != 0);   /* it did scale */
    free(lg), free(plain), free(ref);
    model_close(&m);
}
END_TEST

/* ---- stage hooks */

struct rec {
    int      n;
    int      stage[256], layer[256];
    int64_t  rows[256], cols[256];
    float    embd0, fnorm_last, lm_last;
};

static int rec_fn(void *ud, enum rt_stage st, int layer, const float *x, int64_t rows,
                  int64_t cols, struct err *e)
{
    struct rec *r = ud;
    (void)e;
    if (r->n < 256) {
        r->stage[r->n] = st;
        r->layer[r->n] = layer;
        r->rows[r->n] = rows;
        r->cols[r->n] = cols;
        r->n++;
    }
    if (st == RT_ST_EMBEDDING)
        r->embd0 = x[0];
    if (st == RT_ST_LM_HEAD)
        r->lm_last = x[rows * cols - 1];
    return 0;
}

static int fail_fn(void *ud, enum rt_stage st, int layer, const float *x, int64_t rows,
                   int64_t cols, struct err *e)
{
    (void)ud, (void)x, (void)rows, (void)cols;
    if (st == RT_ST_FFN_UP && layer == 1)
        return ERR(e, ERR_IO, "planted hook failure");
    return 0;
}

START_TEST(test_hooks)
{
    static const struct tm_spec s = { "qwen2", 1, 0, 0, DT_F32, 16, 0 };
    struct model m;
    struct err e = ERR_INIT;
    struct run r;
    struct rec rc = { 0 };
    struct rt_hook h = { rec_fn, &rc, RT_STAGES_ALL, 1, 2 };
    float *lg = malloc(sizeof(float) * 3 * TM_VOCAB), *plain;
    uint32_t mask;
    int k = 0;

    tm_build(&m, &s, &e);
    plain = eval_all(&m, prompt, 3, 1, 0);
    run_open(&r, &m, TM_CTX, 1, 2);   /* a hook makes one pass, whatever the batch */
    rt_ctx_set_hook(r.ctx, &h);
    ck_assert_msg(rt_eval(r.ctx, prompt, 3, 0, lg, RT_EVAL_ALL_LOGITS, &e) == 0, "%s", e.msg);
    /* hooks observe, never change: same logits as without */
    ck_assert(memcmp(lg, plain, sizeof(float) * 3 * TM_VOCAB) == 0);
    /* embedding; layer 1 only: 18 stages (no MoE), qkv_bias present; final_norm, lm_head */
    ck_assert_int_eq(rc.stage[k], RT_ST_EMBEDDING);
    ck_assert_int_eq(rc.layer[k++], RT_LAYER_MODEL);
    for (int st = RT_ST_ATTN_NORM; st <= RT_ST_POST_FFN_RESIDUAL; st++, k++) {
        ck_assert_int_eq(rc.stage[k], st);
        ck_assert_int_eq(rc.layer[k], 1);
        ck_assert_int_eq(rc.rows[k], 3);
    }
    ck_assert_int_eq(rc.stage[k++], RT_ST_FINAL_NORM);
    ck_assert_int_eq(rc.stage[k], RT_ST_LM_HEAD);
    ck_assert_int_eq(rc.cols[k++], TM_VOCAB);
    ck_assert_int_eq(rc.n, k);
    ck_assert(rc.lm_last == lg[3 * TM_VOCAB - 1]);
    ck_assert_int_eq(rc.cols[1 + RT_ST_ATTN_SCORES - 1], TM_HEADS * 3);
    ck_assert_int_eq(rc.cols[1 + RT_ST_QKV_MATMUL - 1], (TM_HEADS + 2 * TM_KV) * 16);
    /* a failing hook stops the evaluation with its error */
    h.fn = fail_fn;
    h.layer_lo = 0;
    rt_ctx_set_hook(r.ctx, &h);
    ck_assert_int_eq(rt_eval(r.ctx, prompt, 3, 0, lg, 0, &e), -1);
    ck_assert_str_eq(e.msg, "planted hook failure");
    ck_assert_int_eq(r.ctx->n_past, 0);
    run_close(&r);

    err_clear(&e);
    ck_assert_int_eq(rt_stages_parse("Embedding,layer_output,lm_head", &mask, &e), 0);
    ck_assert_uint_eq(mask, (1u << RT_ST_EMBEDDING) | (1u << RT_ST_POST_FFN_RESIDUAL) |
                      (1u << RT_ST_LM_HEAD));
    ck_assert_int_eq(rt_stages_parse("all", &mask, &e), 0);
    ck_assert_uint_eq(mask, RT_STAGES_ALL);
    ck_assert_int_eq(rt_stages_parse("attn_norm,bogus", &mask, &e), -1);
    ck_assert_int_eq(e.code, ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(e.msg, "'bogus'"));
    ck_assert_str_eq(rt_stage_name(RT_ST_FFN_SWIGL), "ffn_swigl");
    ck_assert(rt_stage_is_model(RT_ST_FINAL_NORM) && !rt_stage_is_model(RT_ST_ATTN_OUT));
    free(lg), free(plain);
    model_close(&m);
}
END_TEST

/* ---- errors */

START_TEST(test_errors)
{
    static const struct tm_spec s = { "llama", 0, 0, 0, DT_F32, 16, 0 };
    struct model m;
    struct err e = ERR_INIT;
    struct rt_model rm;
    struct run r;
    float lg[TM_VOCAB];
    int32_t bad = TM_VOCAB;

    /* unsupported architecture */
    tm_build(&m, &(struct tm_spec){ "gpt2", 0, 0, 0, DT_F32, 16, 0 }, &e);
    ck_assert_int_eq(rt_model_load(&rm, &m, &e), -1);
    ck_assert_msg(strstr(e.msg, "gpt2") != NULL, "%s", e.msg);
    model_close(&m);

    /* a tensor that disagrees with the config: ffn_up with the wrong row count */
    err_clear(&e);
    tm_build(&m, &s, &e);
    for (uint64_t i = 0; i < m.n_tensors; i++)
        if (m.tensors[i].name.n == strlen("blk.1.ffn_up.weight") &&
            !memcmp(m.tensors[i].name.p, "blk.1.ffn_up.weight", m.tensors[i].name.n)) {
            m.tensors[i].shape[0] /= 2;
            m.tensors[i].shape[1] *= 2;
        }
    ck_assert_int_eq(rt_model_load(&rm, &m, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "blk.1.ffn_up.weight") != NULL, "%s", e.msg);
    model_close(&m);

    /* context overflow, a token outside the vocabulary, a position past the cache */
    err_clear(&e);
    tm_build(&m, &s, &e);
    run_open(&r, &m, 8, 1, 0);
    ck_assert_int_eq(rt_eval(r.ctx, prompt, 9, 0, lg, 0, &e), -1);
    ck_assert_int_eq(e.code, ERR_USAGE);
    ck_assert_msg(strstr(e.msg, "context overflow") != NULL, "%s", e.msg);
    err_clear(&e);
    ck_assert_int_eq(rt_eval(r.ctx, &bad, 1, 0, lg, 0, &e), -1);
    ck_assert_msg(strstr(e.msg, "outside the vocabulary") != NULL, "%s", e.msg);
    err_clear(&e);
    ck_assert_int_eq(rt_eval(r.ctx, prompt, 1, 3, lg, 0, &e), -1);
    err_clear(&e);
    ck_assert_int_eq(rt_eval(r.ctx, prompt, 8, 0, lg, 0, &e), 0);
    ck_assert_int_eq(rt_eval(r.ctx, prompt, 1, 8, lg, 0, &e), -1);
    run_close(&r);
    model_close(&m);
}
END_TEST

/* ---- sampler */

START_TEST(test_sampler)
{
    struct rt_sampler_params p = RT_SAMPLER_DEFAULTS;
    struct rt_sampler a, b;
    struct err e = ERR_INIT;
    float lg[8] = { 0.5f, 2.0f, 2.0f, -1.0f, 1.9f, NAN, 0.0f, 1.0f }, x[8];
    int32_t hist[2] = { 1, 2 }, s1[50], s2[50];
    int seen[8] = { 0 };

    ck_assert_int_eq(rt_argmax(lg, 8), 1);                  /* ties: lowest id; NaN never */
    ck_assert_int_eq(rt_sampler_init(&a, &p, 8, &e), 0);
    memcpy(x, lg, sizeof x);
    ck_assert_int_eq(rt_sample(&a, x, NULL, 0), 1);         /* temp 0: greedy */
    rt_sampler_free(&a);
    p.repeat_penalty = 2.0;                                  /* 1 and 2 fall to 1.0 */
    ck_assert_int_eq(rt_sampler_init(&a, &p, 8, &e), 0);
    memcpy(x, lg, sizeof x);
    ck_assert_int_eq(rt_sample(&a, x, hist, 2), 4);
    ck_assert(x[1] == 1.0f && x[2] == 1.0f && x[3] == -1.0f);
    rt_sampler_free(&a);

    p.repeat_penalty = 1.0;
    p.temp = 1.0;
    p.top_k = 3;
    p.top_p = 1.0;
    p.min_p = 0;
    p.seed = 42;
    ck_assert_int_eq(rt_sampler_init(&a, &p, 8, &e), 0);
    ck_assert_int_eq(rt_sampler_init(&b, &p, 8, &e), 0);
    for (int i = 0; i < 50; i++) {
        memcpy(x, lg, sizeof x);
        s1[i] = rt_sample(&a, x, NULL, 0);
        memcpy(x, lg, sizeof x);
        s2[i] = rt_sample(&b, x, NULL, 0);
        seen[s1[i]]++;
    }
    ck_assert(memcmp(s1, s2, sizeof s1) == 0);               /* same seed, same draws */
    ck_assert(seen[1] && seen[2] && seen[4]);                /* top-3 only, all drawn */
    ck_assert_int_eq(seen[1] + seen[2] + seen[4], 50);
    rt_sampler_free(&a);
    rt_sampler_free(&b);

    p.top_k = 0;
    p.min_p = 0.99;                                          /* only the two equal best */
    ck_assert_int_eq(rt_sampler_init(&a, &p, 8, &e), 0);
    for (int i = 0; i < 20; i++) {
        memcpy(x, lg, sizeof x);
        int32_t id = rt_sample(&a, x, NULL, 0);
        ck_assert(id == 1 || id == 2);
    }
    rt_sampler_free(&a);
}
END_TEST

/* ---- planted faults: --compare catches them and names the layer and stage */

static int write_fx(int (*fn)(struct model *, struct err *), const char *path)
{
    struct model m;
    struct err e = ERR_INIT;
    int rc;

    memset(&m, 0, sizeof m);
    rc = fn(&m, &e) || gguf_write(&m, path, NULL, &e);
    ck_assert_msg(rc == 0, "%s", e.msg);
    model_close(&m);
    return rc;
}

static int compare_out(const char *other, const char *model, uint32_t stages, char *out,
                       size_t cap)
{
    static const int32_t ids[] = { 1, 100, 200, 150, 3, 7, 9, 20 };
    struct run_opts o = RUN_OPTS_INIT;
    struct err e = ERR_INIT;
    FILE *f = tmpfile();
    size_t n;
    int rc;

    ck_assert_ptr_nonnull(f);
    o.model = model;
    o.other = other;
    o.tokens = ids;
    o.n_tokens = 8;
    o.save_stages = stages;
    o.save_lo = 0;
    o.save_hi = 2;
    o.save_dir = tu_tpath("stages");
    o.n_threads = 2;
    o.out = f;
    rc = run_exec(&o, &e);
    ck_assert_msg(rc >= 0, "%s", e.msg);
    rewind(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return rc;
}

START_TEST(test_planted_faults)
{
    char out[8192];

    write_fx(fx_demo, tu_tpath("demo.gguf"));
    write_fx(fx_demo_swap, tu_tpath("swap.gguf"));
    write_fx(fx_demo_transposed, tu_tpath("tr.gguf"));
    convert(tu_tpath("demo.gguf"), tu_tpath("demo-hf/"), NULL, 0);
    ck_assert_int_eq(compare_out(tu_tpath("demo.gguf"), tu_tpath("demo-hf"), RT_STAGES_ALL,
                                 out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\nsame\n") && strstr(out, "no stage below cosine"), "%s", out);
    ck_assert_int_eq(compare_out(tu_tpath("demo.gguf"), tu_tpath("swap.gguf"), 0, out,
                                 sizeof out), 1);
    ck_assert_msg(strstr(out, "different: cosine") != NULL, "%s", out);
    ck_assert_int_eq(compare_out(tu_tpath("demo.gguf"), tu_tpath("swap.gguf"), RT_STAGES_ALL,
                                 out, sizeof out), 1);
    ck_assert_msg(strstr(out, "first divergent stage: layer 0 ffn_out ") != NULL, "%s", out);
    ck_assert_int_eq(compare_out(tu_tpath("demo.gguf"), tu_tpath("tr.gguf"), RT_STAGES_ALL,
                                 out, sizeof out), 1);
    ck_assert_msg(strstr(out, "first divergent stage: layer 1 attn_out ") != NULL, "%s", out);
}
END_TEST

/* ---- --perplexity over a text, against the score worked out here from the logits */

/* run_exec's --json output for --perplexity[-ids] path (text or ids) with --ctx ctx */
static void ppl_json(const char *model, const char *path, int ids, int ctx, struct json_doc *d,
                     char **js)
{
    struct run_opts o = RUN_OPTS_INIT;
    struct err e = ERR_INIT;
    FILE *f = tmpfile();
    long len;

    ck_assert_ptr_nonnull(f);
    o.model = model;
    o.perplexity = path;
    o.perplexity_ids = ids;
    o.n_ctx = ctx;
    o.n_threads = 2;
    o.json = 1;
    o.out = f;
    ck_assert_msg(run_exec(&o, &e) == 0, "%s", e.msg);
    len = ftell(f);
    rewind(f);
    *js = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(*js, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    ck_assert_msg(json_parse(d, *js, (size_t)len, 0, "ppl", &e) == 0, "%s", e.msg);
}

static double jf(struct json_doc *d, int at, const char *key)
{
    struct err e = ERR_INIT;
    double v;
    ck_assert_msg(json_f64(d, json_get(d, at, key), &v, key, &e) == 0, "%s: %s", key, e.msg);
    return v;
}

START_TEST(test_perplexity_text)
{
    /* 5 chunks of 48 and a tail; llama-perplexity's rules written out independently:
     * the text with BOS, each chunk's first token BOS, positions 24..46 predict 25..47 */
    enum { CTX = 48, FIRST = CTX / 2 };
    const char *text = "The quick brown fox jumps over the lazy dog; a stitch in time saves "
                       "nine. Pack my box with five dozen liquor jugs! Sphinx of black quartz, "
                       "judge my vow. How vexingly quick daft zebras jump. The five boxing "
                       "wizards jump quickly, and 0123456789 are digits.";
    const char *model = tu_tpath("demo.gguf");
    struct tokenizer *tk;
    struct err e = ERR_INIT;
    struct model m;
    struct run r;
    struct json_doc d;
    int32_t *ids, chunk[CTX];
    size_t n, n_chunks, cnt = 0;
    double sum = 0, sum2 = 0, chunk_nll[8], mean, var, ppl, err, got;
    float *lg;
    char *js;
    FILE *f;
    int pc;

    write_fx(fx_demo, model);
    f = fopen(tu_tpath("t.txt"), "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_msg(tok_cli_open(model, &tk, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(tok_encode(tk, text, strlen(text), TOK_ADD_SPECIAL, &ids, &n, &e), 0);
    ck_assert_int_eq(ids[0], tok_bos(tk));
    n_chunks = n / CTX;
    ck_assert_msg(n_chunks >= 3 && n_chunks <= 8 && n % CTX, "%zu tokens", n);
    ck_assert_int_eq(model_open(&m, model, &e), 0);
    run_open(&r, &m, CTX, 2, 0);
    lg = malloc(sizeof *lg * CTX * r.rm.c.n_vocab);
    for (size_t c = 0; c < n_chunks; c++) {
        memcpy(chunk, ids + c * CTX, sizeof chunk);
        chunk[0] = tok_bos(tk);
        ck_assert_int_eq(rt_eval(r.ctx, chunk, CTX, 0, lg, RT_EVAL_ALL_LOGITS, &e), 0);
        chunk_nll[c] = 0;
        for (int j = FIRST; j < CTX - 1; j++) {
            const float *x = lg + (size_t)j * r.rm.c.n_vocab;
            double z = 0, v;
            for (uint32_t k = 0; k < r.rm.c.n_vocab; k++)
                z += exp((double)x[k]);
            v = log(z) - x[chunk[j + 1]];
            sum += v;
            sum2 += v * v;
            chunk_nll[c] += v;
            cnt++;
        }
    }
    mean = sum / (double)cnt;
    var = sum2 / (double)cnt - mean * mean;
    ppl = exp(mean);
    err = ppl * sqrt(var / (double)(cnt - 1));

    ppl_json(model, tu_tpath("t.txt"), 0, CTX, &d, &js);
    ck_assert_uint_eq((uint64_t)jf(&d, 0, "tokens"), n);
    ck_assert_uint_eq((uint64_t)jf(&d, 0, "chunks"), n_chunks);
    ck_assert_uint_eq((uint64_t)jf(&d, 0, "scored"), cnt);
    got = jf(&d, 0, "ppl");
    printf("check_runtime: --perplexity: %zu tokens, %zu chunks: PPL %.6f +/- %.6f, here %.6f "
           "+/- %.6f\n", n, n_chunks, got, jf(&d, 0, "ppl_error"), ppl, err);
    /* same logits (same threads and batch), sums in another order: 1e-9 relative */
    ck_assert_msg(fabs(got - ppl) <= 1e-9 * ppl, "ppl %.12g, here %.12g", got, ppl);
    ck_assert_msg(fabs(jf(&d, 0, "ppl_error") - err) <= 1e-6 * err, "error %.12g, here %.12g",
                  jf(&d, 0, "ppl_error"), err);
    pc = json_get(&d, 0, "per_chunk");
    ck_assert_int_eq(d.tok[pc].size, (int)n_chunks);
    for (int c = 0, t = pc + 1; c < (int)n_chunks; c++, t = json_next(&d, t)) {
        double want = exp(chunk_nll[c] / (CTX - 1 - FIRST));
        ck_assert_msg(fabs(jf(&d, t, "ppl") - want) <= 1e-9 * want, "chunk %d", c);
    }
    json_release(&d);
    free(js);

    /* the same ids as a token file (BOS first, so BOS starts every chunk): the same figure */
    f = fopen(tu_tpath("t.ids"), "w");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%d\n", (int)ids[i]);
    fclose(f);
    ppl_json(model, tu_tpath("t.ids"), 1, CTX, &d, &js);
    ck_assert_msg(jf(&d, 0, "ppl") == got, "ids %.12g, text %.12g", jf(&d, 0, "ppl"), got);
    json_release(&d);
    free(js);
    /* without BOS first, a token file is scored as given: chunks 2.. change */
    f = fopen(tu_tpath("t.ids"), "w");
    for (size_t i = 1; i < n; i++)
        fprintf(f, "%d\n", (int)ids[i]);
    fclose(f);
    ppl_json(model, tu_tpath("t.ids"), 1, CTX, &d, &js);
    ck_assert_msg(jf(&d, 0, "ppl") != got, "a shifted file scores the same");
    json_release(&d);
    free(js);

    free(lg);
    free(ids);
    run_close(&r);
    model_close(&m);
    tok_free(tk);
}
END_TEST

START_TEST(test_parse_tokens)
{
    struct err e = ERR_INIT;
    int32_t *ids;
    size_t n;

    ck_assert_int_eq(run_parse_tokens("1,5, 42\n7 ", 10, &ids, &n, &e), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert(ids[0] == 1 && ids[1] == 5 && ids[2] == 42 && ids[3] == 7);
    free(ids);
    ck_assert_int_eq(run_parse_tokens("", 0, &ids, &n, &e), 0);
    ck_assert_uint_eq(n, 0);
    free(ids);
    ck_assert_int_eq(run_parse_tokens("1,-2", 4, &ids, &n, &e), -1);
    ck_assert_int_eq(e.code, ERR_USAGE);
    err_clear(&e);
    ck_assert_int_eq(run_parse_tokens("1,2147483648", 12, &ids, &n, &e), -1);
    err_clear(&e);
    ck_assert_int_eq(run_parse_tokens("12x", 3, &ids, &n, &e), -1);
}
END_TEST

/* ---- shared fixtures: transformers (hf/) */

static float *slurp_f32(const char *path, size_t *n)
{
    size_t bytes;
    uint8_t *p = tu_slurp(path, &bytes);
    float *f = malloc(bytes ? bytes : 4);
    ck_assert_ptr_nonnull(f);
    memcpy(f, p, bytes);
    free(p);
    *n = bytes / 4;
    return f;
}

struct cap {
    float *v[4];              /* embedding, layer 0 and 1 outputs, final norm */
};

static int cap_fn(void *ud, enum rt_stage st, int layer, const float *x, int64_t rows,
                  int64_t cols, struct err *e)
{
    struct cap *c = ud;
    int slot = st == RT_ST_EMBEDDING ? 0 : st == RT_ST_FINAL_NORM ? 3
             : st == RT_ST_POST_FFN_RESIDUAL && layer < 2 ? 1 + layer : -1;
    (void)e;
    if (slot >= 0) {
        c->v[slot] = malloc((size_t)(rows * cols) * sizeof(float));
        memcpy(c->v[slot], x, (size_t)(rows * cols) * sizeof(float));
    }
    return 0;
}

/* Transformers' reference: logits, the 16 greedy tokens, the hidden states. */
static const struct {
    const char *dir;
    enum rt_rope_freq rope;
} hfs[] = {
    /* transformers ran the bf16 model with bf16-rounded RoPE frequencies (rt.h) */
    { "hf/llama-bf16", RT_ROPE_FREQ_BF16 },
    { "hf/qwen2-f32", RT_ROPE_FREQ_EXACT },
};

START_TEST(test_hf_fixtures)
{
    static const int32_t ids[10] = { 1, 5, 42, 999, 7, 300, 12, 77, 500, 3 };
    char path[4096];
    struct model m;
    struct err e = ERR_INIT;
    struct rt_model rm;
    struct rt_ctx *ctx;
    struct rt_params p = { 64, 2, 0, NULL, hfs[_i].rope, 0 };
    struct cap cap = { { NULL } };
    struct rt_hook h = { cap_fn, &cap, (1u << RT_ST_EMBEDDING) | (1u << RT_ST_POST_FFN_RESIDUAL) |
                         (1u << RT_ST_FINAL_NORM), 0, 2 };
    struct json_doc d;
    float *lg, *ref;
    int32_t seq[26];
    size_t n;
    char *js;
    int ig;

    if (!tu_need_shared(hfs[_i].dir))
        return;
    snprintf(path, sizeof path, "%s/%s", tu_shared_dir(), hfs[_i].dir);
    ck_assert_msg(model_open(&m, path, &e) == 0, "%s", e.msg);
    ck_assert_msg(rt_model_load(&rm, &m, &e) == 0, "%s", e.msg);
    ck_assert_msg(rt_ctx_new(&ctx, &rm, &p, &e) == 0, "%s", e.msg);
    lg = malloc(sizeof(float) * 26 * 1024);
    rt_ctx_set_hook(ctx, &h);
    ck_assert_msg(rt_eval(ctx, ids, 10, 0, lg, RT_EVAL_ALL_LOGITS, &e) == 0, "%s", e.msg);
    rt_ctx_set_hook(ctx, NULL);

    /* logits and hidden states: the issue asks for cosine >= 0.999999 per position and
     * max |delta| <= 1e-4 x max |logit|.  Measured worst over both models, the logits and
     * the four hidden states, on every kernel path (APR_RT_ISA=scalar is the worst):
     * 1-cos 6.85e-13, rel 1.40e-6 (AVX2/AVX-512: 4.5e-13, 1.13e-6).  Bounds 5e-12 (x7)
     * and 5e-6 (x3.6): f32 summation order, not a kernel or RoPE difference. */
    for (int k = -1; k < 4; k++) {
        const float *got = k < 0 ? lg : cap.v[k];
        int64_t w = k < 0 ? 1024 : 256;
        double omc, rel, *rd;
        if (k < 0)
            snprintf(path, sizeof path, "%s/%s/ref-logits.f32", tu_shared_dir(), hfs[_i].dir);
        else
            snprintf(path, sizeof path, "%s/%s/ref-hidden-%d.f32", tu_shared_dir(), hfs[_i].dir,
                     k);
        ref = slurp_f32(path, &n);
        ck_assert_uint_eq(n, 10 * (size_t)w);
        rd = malloc(n * sizeof *rd);
        for (size_t i = 0; i < n; i++)
            rd[i] = ref[i];
        cmp_rows(got, rd, 10, w, &omc, &rel);
        printf("check_runtime: %s %s: 1-cos %.3g, max|delta|/max|ref| %.3g\n", hfs[_i].dir,
               path + strlen(path) - 16, omc, rel);
        ck_assert_msg(omc <= 5e-12 && rel <= 5e-6, "%s: 1-cos %g rel %g", path, omc, rel);
        free(rd);
        free(ref);
    }
    /* the 16 greedy tokens, continuing the cache */
    snprintf(path, sizeof path, "%s/%s/ref.json", tu_shared_dir(), hfs[_i].dir);
    js = (char *)tu_slurp(path, &n);
    ck_assert_int_eq(json_parse(&d, js, n, 0, path, &e), 0);
    ig = json_get(&d, 0, "greedy");
    ck_assert_int_ge(ig, 0);
    memcpy(seq, ids, sizeof ids);
    for (int i = 0, t = ig + 1; i < 16; i++, t = json_next(&d, t)) {
        int64_t want;
        const float *last = lg + (i ? 0 : 9 * 1024);
        seq[10 + i] = rt_argmax(last, 1024);
        ck_assert_int_eq(json_i64(&d, t, &want, "greedy", &e), 0);
        ck_assert_msg(seq[10 + i] == want, "greedy token %d: %d, transformers %lld", i,
                      (int)seq[10 + i], (long long)want);
        ck_assert_int_eq(rt_eval(ctx, &seq[10 + i], 1, 10 + i, lg, 0, &e), 0);
    }
    json_release(&d);
    free(js);
    for (int k = 0; k < 4; k++)
        free(cap.v[k]);
    free(lg);
    rt_ctx_free(ctx);
    rt_model_free(&rm);
    model_close(&m);
}
END_TEST

/* ---- shared fixtures: llama.cpp (gguf/) */

/*
 * llama.cpp's prompt logits (refs/NAME.prompt{0,1}.logits.f32, c392e50 CPU, 2 threads)
 * teacher-forced: the worst per-position 1 - cosine of either prompt, measured the
 * same on the scalar, AVX2 and AVX-512 paths (the quantized kernels are bit-identical to
 * their scalar twins), and position 0's:
 *   F16      3.48e-7  llama.cpp rounds the activations to f16 for an F16 matrix, we keep
 *                     f32; bound 1e-6 (x2.9), position 0 too
 *   Q8_0     5.33e-15 the same activation quantization and integer sums: the logits
 *   Q6_K     2.89e-15 agree but for f32 rounding; bound 1e-10, far above any summation
 *   IQ4_XS   3.00e-15 order change (f32 vs f32 elsewhere here: <= 7e-13) and far below
 *                     a real kernel difference (>= 1e-6)
 *   Q4_K_M   6.63e-5  f32 rounding at every position but one per prompt (prompt 1
 *                     position 16: 6.63e-5; prompt 0 position 17: 1.07e-6); bound 1.5e-4
 *   Q4_0     1.12e-4  position 0 1.6e-15, positions 1.. 4.3e-5 .. 1.12e-4; bound 2e-4
 * Why Q4_0 and Q4_K_M miss 1e-10 (and Q4_0 the 1e-4): not their kernels and not
 * llama.cpp's repacked Q4_0x8 path.  Measured with llama.cpp c392e50 built here
 * (AVX-512, llamafile on) with its Q4_0 repack on (GGML_CPU_AARCH64=ON, which reproduces
 * the fixture bit for bit) and off (=OFF, every other byte the same):
 *   Q4_0 ours vs repack (the fixture) 1.12e-4, ours vs no-repack 1.12e-4 (same
 *   positions), repack vs no-repack 1.82e-5 on prompt 0 (position 19 only), 3e-15 on
 *   prompt 1; llama.cpp with -mavx2 only vs the fixture: 0.
 * Both sides compute RMSNorm, the attention and SiLU in f32 in a different order (and
 * exp), so most activations differ in their last bits (layer 0, Q8_0 and Q4_0: 70-90%
 * of the elements of attn_norm and attention, 1-cos up to 5e-14).
 * That is harmless except where a value sits on a rounding boundary of the per-block
 * Q8_0/Q8_K activation quantization: Q4_0 layer 0 position 1, attention element 180 is
 * -1.84163666 here and -1.84163690 in llama.cpp (2 ulps; in double from our q, k, v
 * -1.84163677, from llama.cpp's -1.84163699), x * 127 / amax = -103.49999, so one int8
 * is -103 here and -104 there.  From that flip on, the two runs carry different
 * activation-quantization noise: Wo's output at position 1 moves by 7.5e-7 (1-cos), the
 * FFN amplifies it (4.5e-5), and layer 1's attention carries it to every later position:
 * 1e-4 at the logits, the size of the Q8 activation-quantization noise on this model.
 * Moving that one element by 2 ulps (a scratch build, not this code) brings ours vs
 * no-repack to <= 2.7e-15 on every position of both prompts, and vs the fixture too
 * except prompt 0 position 19, llama.cpp's own repack flip.  Q4_K_M: one Q8_K int8 flip
 * at layer 1 ffn_norm (prompt 1 position 16, element 63: 0.56880003 here, 0.56879967
 * there).  Neither side is the more exact (max relative error of the attention vs double
 * at positions 1-5: here 1.0e-5 .. 1.5e-4, llama.cpp 5.2e-6 .. 2.8e-4).
 * Where flips happen depends on the model, the prompt and both sides' f32 order: Q4_1,
 * Q5_0 and Q5_1 quantized by c392e50 from the F32 source reach 6.6e-5, 1.4e-4 and
 * 1.6e-4 on prompt 0, Q5_0 and Q5_1 already at position 0 (the f16 rounding of one
 * activation block scale of ffn_down).  So the bounds of Q4_0 and Q4_K_M are their
 * measured flips with margin, and position 0, where attention spreads nothing and all six
 * types here agree to f32 rounding, is held to 1e-10: a kernel difference shows there (a
 * planted 1% error in one attention value at position 0 fails it, while Q4_0's 2e-4
 * bound would pass it).  A change of f32 order in the attention, RMSNorm or SiLU may
 * move a type to about 1e-4: apr-run --save-tensor all beside a llama.cpp eval-callback
 * dump then shows one Q8 rounding flip at the first divergent stage.
 * (They were cosine >= 0.99999 .. 0.9994, i.e. 1-cos 1e-5 .. 6e-4, before.)
 */
static const struct {
    const char *type;
    double      omc_max;   /* max 1 - cosine per position */
    double      omc_pos0;  /* max 1 - cosine at position 0 (see above) */
} ggufs[] = {
    { "F16", 1e-6, 1e-6 },
    { "Q8_0", 1e-10, 1e-10 },
    { "Q4_0", 2e-4, 1e-10 },
    { "Q4_K_M", 1.5e-4, 1e-10 },
    { "Q6_K", 1e-10, 1e-10 },
    { "IQ4_XS", 1e-10, 1e-10 },
};

START_TEST(test_gguf_fixtures)
{
    char path[4096], rel[256];
    struct model m;
    struct err e = ERR_INIT;
    struct json_doc d;
    char *js;
    size_t n;
    int runs;

    snprintf(rel, sizeof rel, "gguf/tiny-llama-small-%s.gguf", ggufs[_i].type);
    if (!tu_need_shared(rel))
        return;
    snprintf(path, sizeof path, "%s/%s", tu_shared_dir(), rel);
    ck_assert_msg(model_open(&m, path, &e) == 0, "%s", e.msg);
    snprintf(path, sizeof path, "%s/gguf/refs/tiny-llama-small-%s.greedy.json", tu_shared_dir(),
             ggufs[_i].type);
    js = (char *)tu_slurp(path, &n);
    ck_assert_int_eq(json_parse(&d, js, n, 0, path, &e), 0);
    runs = json_get(&d, 0, "runs");
    for (int r = 0, ir = runs + 1; r < 2; r++, ir = json_next(&d, ir)) {
        int ip = json_get(&d, ir, "prompt_ids"), ig = json_get(&d, ir, "gen");
        int np = d.tok[ip].size, ng = d.tok[ig].size, flips = 0;
        int32_t *seq = malloc(sizeof(int32_t) * (size_t)(np + ng));
        double margins[64], *rd, omc_worst = 0, omc0 = 0, rl;
        float *lg, *ref;
        size_t nr;

        ck_assert_int_le(ng, 64);
        for (int i = 0, t = ip + 1; i < np; i++, t = json_next(&d, t)) {
            int64_t v;
            ck_assert_int_eq(json_i64(&d, t, &v, "id", &e), 0);
            seq[i] = (int32_t)v;
        }
        for (int i = 0, t = ig + 1; i < ng; i++, t = json_next(&d, t)) {
            int64_t v;
            ck_assert_int_eq(json_i64(&d, json_get(&d, t, "id"), &v, "id", &e), 0);
            ck_assert_int_eq(json_f64(&d, json_get(&d, t, "margin"), &margins[i], "m", &e), 0);
            seq[np + i] = (int32_t)v;
        }
        /* teacher-forced on llama.cpp's own continuation */
        lg = eval_all(&m, seq, np + ng - 1, 2, 0);
        if (strcmp(ggufs[_i].type, "F16") && strcmp(ggufs[_i].type, "F32")) {
            /* quantized: decode's kernels, a token at a time, give the batch's bits */
            float *one = eval_all(&m, seq, np + ng - 1, 2, 1);
            ck_assert_msg(memcmp(one, lg, sizeof(float) * 512 * (size_t)(np + ng - 1)) == 0,
                          "%s prompt %d: token by token differs from the batch",
                          ggufs[_i].type, r);
            free(one);
        }
        snprintf(path, sizeof path, "%s/gguf/refs/tiny-llama-small-%s.prompt%d.logits.f32",
                 tu_shared_dir(), ggufs[_i].type, r);
        ref = slurp_f32(path, &nr);
        ck_assert_uint_eq(nr, (size_t)np * 512);
        rd = malloc(nr * sizeof *rd);
        for (size_t i = 0; i < nr; i++)
            rd[i] = ref[i];
        for (int t = 0; t < np; t++) {
            double omc;
            cmp_rows(lg + t * 512, rd + t * 512, 1, 512, &omc, &rl);
            if (t == 0)
                omc0 = omc;
            if (omc > omc_worst)
                omc_worst = omc;
        }
        for (int i = 0; i < ng; i++) {
            int32_t got = rt_argmax(lg + (size_t)(np - 1 + i) * 512, 512);
            if (got != seq[np + i]) {
                flips++;
                ck_assert_msg(margins[i] <= 0.05, "%s prompt %d step %d: %d, llama.cpp %d "
                              "(margin %g)", ggufs[_i].type, r, i, (int)got, (int)seq[np + i],
                              margins[i]);
            }
        }
        printf("check_runtime: %s prompt %d: worst cosine %.7f (1-cos %.3g, bound %g; "
               "position 0 %.3g, bound %g), %d low-margin flips\n", ggufs[_i].type, r,
               1 - omc_worst, omc_worst, ggufs[_i].omc_max, omc0, ggufs[_i].omc_pos0, flips);
        ck_assert_msg(omc_worst <= ggufs[_i].omc_max, "%s prompt %d: 1-cos %.3g > %g",
                      ggufs[_i].type, r, omc_worst, ggufs[_i].omc_max);
        ck_assert_msg(omc0 <= ggufs[_i].omc_pos0, "%s prompt %d position 0: 1-cos %.3g > %g",
                      ggufs[_i].type, r, omc0, ggufs[_i].omc_pos0);
        free(rd), free(ref), free(lg), free(seq);
    }
    json_release(&d);
    free(js);
    model_close(&m);
}
END_TEST

/* Decode on the weights repacked at load (forward.c; AVX2: Q4_K, Q6_K and Q8_0, so every
 * matrix of these fixtures) gives the bits of decode on the file mapping
 * (APR_RT_REPACK=0). */
static const char *const repack_types[] = { "Q4_K_M", "Q6_K", "Q8_0" };
START_TEST(test_repack)
{
    char path[4096], rel[256];
    struct model m;
    struct err e = ERR_INIT;
    float *lg[2];

    snprintf(rel, sizeof rel, "gguf/tiny-llama-small-%s.gguf", repack_types[_i]);
    if (!tu_need_shared(rel))
        return;
    snprintf(path, sizeof path, "%s/%s", tu_shared_dir(), rel);
    ck_assert_msg(model_open(&m, path, &e) == 0, "%s", e.msg);
    for (int off = 0; off < 2; off++) {
        struct run r;
        if (off)
            setenv("APR_RT_REPACK", "0", 1);
        run_open(&r, &m, TM_CTX, 2, 1);
        unsetenv("APR_RT_REPACK");
        if (off || strcmp(rt_matmul_isa(), "avx2"))
            ck_assert_int_eq(r.ctx->n_repacked, 0);
        else
            ck_assert_msg(r.ctx->n_repacked == 7 * (int)r.rm.c.n_layer + 1 && r.ctx->repacked_bytes > 0,
                          "%s: %d matrices repacked on AVX2, not all", repack_types[_i],
                          r.ctx->n_repacked);
        if (!off)
            printf("check_runtime: %s: %d matrices repacked (%zu bytes)%s\n", repack_types[_i],
                   r.ctx->n_repacked, r.ctx->repacked_bytes,
                   r.ctx->n_repacked ? "" : ": none on this instruction set, compared anyway");
        lg[off] = malloc(sizeof(float) * 512 * NP);
        ck_assert_ptr_nonnull(lg[off]);
        for (int i = 0; i < NP; i++)
            ck_assert_msg(rt_eval(r.ctx, &prompt[i], 1, i, lg[off] + i * 512, 0, &e) == 0, "%s", e.msg);
        run_close(&r);
    }
    ck_assert_msg(!memcmp(lg[0], lg[1], sizeof(float) * 512 * NP),
                  "%s: decode on the repacked weights differs from the mapping's", repack_types[_i]);
    {   /* a caller that makes no one-token steps asks for no copy */
        struct rt_model rm;
        struct rt_ctx *ctx;
        struct rt_params p = { TM_CTX, 2, 0, NULL, RT_ROPE_FREQ_EXACT, 1 };
        ck_assert_msg(rt_model_load(&rm, &m, &e) == 0, "%s", e.msg);
        ck_assert_msg(rt_ctx_new(&ctx, &rm, &p, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(ctx->n_repacked, 0);
        rt_ctx_free(ctx);
        rt_model_free(&rm);
    }
    free(lg[0]), free(lg[1]);
    model_close(&m);
}
END_TEST

Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("forward");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_loop_test(tc, test_reference, 0, (int)(sizeof cases / sizeof *cases));
    tcase_add_test(tc, test_consistency);
    tcase_add_loop_test(tc, test_last_rows, 0, (int)(sizeof cases / sizeof *cases));
    tcase_add_test(tc, test_stale_kv);
    tcase_add_loop_test(tc, test_layouts, 0, 2);
    tcase_add_test(tc, test_llama3_scaling);
    tcase_add_test(tc, test_hooks);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_sampler);
    tcase_add_test(tc, test_planted_faults);
    tcase_add_test(tc, test_parse_tokens);
    tcase_add_test(tc, test_perplexity_text);
    tcase_add_loop_test(tc, test_hf_fixtures, 0, (int)(sizeof hfs / sizeof *hfs));
    tcase_add_loop_test(tc, test_gguf_fixtures, 0, (int)(sizeof ggufs / sizeof *ggufs));
    tcase_add_loop_test(tc, test_repack, 0, (int)(sizeof repack_types / sizeof *repack_types));
    suite_add_tcase(s, tc);
    return s;
}
