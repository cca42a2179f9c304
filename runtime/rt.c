/*
 * rt.c - stage names, binding a model's weights (rt_model_load), contexts and rt_eval's
 * argument checks; the CPU forward pass itself is in forward.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rt.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../common/banned.h"

/* ---- stages */

static const char *const stage_names[RT_ST_COUNT] = {
    "embedding", "attn_norm", "qkv_matmul", "qkv_bias", "q_post_rope", "k_post_rope",
    "attn_scores", "attn_softmax", "attention", "attn_out", "post_attn_residual", "ffn_norm",
    "ffn_gate", "ffn_up", "ffn_silu", "ffn_swigl", "ffn_out", "post_ffn_residual",
    "moe_router", "moe_ffn_out", "final_norm", "lm_head",
};

const char *rt_stage_name(enum rt_stage s)
{
    return (unsigned)s < RT_ST_COUNT ? stage_names[s] : "?";
}

int rt_stage_is_model(enum rt_stage s)
{
    return s == RT_ST_EMBEDDING || s == RT_ST_FINAL_NORM || s == RT_ST_LM_HEAD;
}

static int stage_lookup(const char *s, size_t n)
{
    if (n == 12 && !strncasecmp(s, "layer_output", n))
        return RT_ST_POST_FFN_RESIDUAL;
    for (int i = 0; i < RT_ST_COUNT; i++)
        if (strlen(stage_names[i]) == n && !strncasecmp(s, stage_names[i], n))
            return i;
    return -1;
}

int rt_stages_parse(const char *list, uint32_t *mask, struct err *e)
{
    const char *p = list;

    *mask = 0;
    for (;;) {
        size_t n = strcspn(p, ",");
        int st;

        if (n == 3 && !strncasecmp(p, "all", 3))
            *mask |= RT_STAGES_ALL;
        else if ((st = stage_lookup(p, n)) >= 0)
            *mask |= 1u << st;
        else
            return ERR(e, ERR_USAGE, "unknown stage '%.*s' (stages: embedding, attn_norm, "
                       "qkv_matmul, ..., final_norm, lm_head; see apr-run(1))", (int)n, p);
        if (!p[n])
            break;
        p += n + 1;
    }
    return 0;
}

/* ---- binding the weights */

static const char *role_names[TR_COUNT] = {
    "token embedding", "output norm", "output", "attention norm", "q projection",
    "k projection", "v projection", "attention output", "q bias", "k bias", "v bias",
    "q norm", "k norm", "ffn norm", "ffn gate", "ffn up", "ffn down",
};

static int tensor_desc(const struct model_tensor *t, char *buf, size_t cap)
{
    return snprintf(buf, cap, "%.*s", (int)t->name.n, t->name.p);
}

static const struct model_tensor *need(const struct rt_model *rm, enum tensor_role r, int layer,
                                       struct err *e)
{
    const struct model_tensor *t = model_config_tensor(rm->m, &rm->c, r, layer);

    if (!t) {
        if (layer >= 0 && r >= TR_ATTN_NORM)
            ERR(e, ERR_FORMAT, "%s: layer %d has no %s tensor", rm->m->path, layer, role_names[r]);
        else
            ERR(e, ERR_FORMAT, "%s: no %s tensor", rm->m->path, role_names[r]);
    }
    return t;
}

static int bind_mat(const struct rt_model *rm, enum tensor_role r, int layer, int64_t rows,
                    int64_t cols, struct rt_mat *out, struct err *e)
{
    const struct model_tensor *t = need(rm, r, layer, e);
    char nm[300];

    if (!t)
        return -1;
    tensor_desc(t, nm, sizeof nm);
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return ERR(e, ERR_FORMAT, "%s: tensor '%s': shape [%lld, %lld] expected, the config "
                   "(%s) says so", rm->m->path, nm, (long long)rows, (long long)cols,
                   rm->c.arch);
    if (rt_mat_init(out, t->dtype, rows, cols, t->data, e)) {
        err_prefix(e, "%s: tensor '%s'", rm->m->path, nm);
        return -1;
    }
    return 0;
}

/* A 1-D vector (norm weight, bias) widened to f32; optional roles give NULL quietly. */
static int bind_vec(const struct rt_model *rm, enum tensor_role r, int layer, int64_t n,
                    int optional, float **out, struct err *e)
{
    const struct model_tensor *t = optional ? model_config_tensor(rm->m, &rm->c, r, layer)
                                            : need(rm, r, layer, e);
    char nm[300];

    *out = NULL;
    if (!t)
        return optional ? 0 : -1;
    tensor_desc(t, nm, sizeof nm);
    if (t->n_elems != n || (t->n_dims != 1 && !(t->n_dims == 2 && t->shape[0] == 1)))
        return ERR(e, ERR_FORMAT, "%s: tensor '%s': %lld elements expected (a vector), the "
                   "config (%s) says so", rm->m->path, nm, (long long)n, rm->c.arch);
    *out = dq_tensor_to_f32_new(t, 1, e);
    if (!*out)
        err_prefix(e, "%s: tensor '%s'", rm->m->path, nm);
    return *out ? 0 : -1;
}

static int arch_supported(const char *a)
{
    static const char *const ok[] = { "llama", "mistral", "qwen2", "qwen3" };

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(a, ok[i]))
            return 1;
    return 0;
}

int rt_model_load(struct rt_model *rm, const struct model *m, struct err *e)
{
    struct model_config *c = &rm->c;
    int64_t embd, qd, kvd, ff, hd;

    memset(rm, 0, sizeof *rm);
    rm->m = m;
    if (model_config_load(m, c, e))
        return -1;
    if (!arch_supported(c->arch))
        return ERR(e, ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (apr-run runs "
                   "llama, mistral, qwen2 and qwen3)", m->path, c->arch[0] ? c->arch : "unknown");
    if (!c->n_layer || !c->n_embd || !c->n_head || !c->n_head_kv || !c->head_dim || !c->n_ff ||
        !c->n_vocab || c->n_head % c->n_head_kv || c->n_rot > c->head_dim || c->n_rot % 2 ||
        c->n_vocab > INT32_MAX)
        return ERR(e, ERR_FORMAT, "%s: inconsistent config (layers %u, embd %u, heads %u/%u, "
                   "head_dim %u, rope dims %u, ffn %u, vocab %u)", m->path, c->n_layer, c->n_embd,
                   c->n_head, c->n_head_kv, c->head_dim, c->n_rot, c->n_ff, c->n_vocab);
    if (!(c->rope_theta > 0) || !(c->norm_eps >= 0))
        return ERR(e, ERR_FORMAT, "%s: bad rope theta %g or norm eps %g", m->path,
                   c->rope_theta, c->norm_eps);
    embd = c->n_embd;
    hd = c->head_dim;
    qd = (int64_t)c->n_head * hd;
    kvd = (int64_t)c->n_head_kv * hd;
    ff = c->n_ff;

    if (bind_mat(rm, TR_TOK_EMBD, -1, c->n_vocab, embd, &rm->tok_embd, e))
        goto fail;
    if (model_config_tensor(m, c, TR_OUTPUT, -1)) {
        if (bind_mat(rm, TR_OUTPUT, -1, c->n_vocab, embd, &rm->output, e))
            goto fail;
    } else if (c->tied_embeddings) {
        rm->output = rm->tok_embd;
    } else {
        ERR(e, ERR_FORMAT, "%s: no output tensor and the embeddings are not tied", m->path);
        goto fail;
    }
    if (bind_vec(rm, TR_OUTPUT_NORM, -1, embd, 0, &rm->output_norm, e))
        goto fail;
    {
        const struct model_tensor *t = model_tensor_find(m, "rope_freqs.weight");
        if (t) {
            if (t->n_elems != (int64_t)(c->n_rot / 2)) {
                ERR(e, ERR_FORMAT, "%s: tensor 'rope_freqs.weight': %lld elements, the config "
                    "(%u rotary dimensions) wants %u", m->path, (long long)t->n_elems,
                    c->n_rot, c->n_rot / 2);
                goto fail;
            }
            rm->rope_freqs = dq_tensor_to_f32_new(t, 1, e);
            if (!rm->rope_freqs)
                goto fail;
            for (uint32_t i = 0; i < c->n_rot / 2; i++)
                if (!(rm->rope_freqs[i] > 0) || isinf(rm->rope_freqs[i])) {
                    ERR(e, ERR_FORMAT, "%s: tensor 'rope_freqs.weight': factor %u is %g",
                        m->path, i, (double)rm->rope_freqs[i]);
                    goto fail;
                }
        }
    }
    rm->layers = calloc(c->n_layer, sizeof *rm->layers);
    if (!rm->layers) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int l = 0; l < (int)c->n_layer; l++) {
        struct rt_layer *L = &rm->layers[l];

        if (bind_mat(rm, TR_ATTN_Q, l, qd, embd, &L->wq, e) ||
            bind_mat(rm, TR_ATTN_K, l, kvd, embd, &L->wk, e) ||
            bind_mat(rm, TR_ATTN_V, l, kvd, embd, &L->wv, e) ||
            bind_mat(rm, TR_ATTN_OUT, l, embd, qd, &L->wo, e) ||
            bind_mat(rm, TR_FFN_GATE, l, ff, embd, &L->w_gate, e) ||
            bind_mat(rm, TR_FFN_UP, l, ff, embd, &L->w_up, e) ||
            bind_mat(rm, TR_FFN_DOWN, l, embd, ff, &L->w_down, e) ||
            bind_vec(rm, TR_ATTN_NORM, l, embd, 0, &L->attn_norm, e) ||
            bind_vec(rm, TR_FFN_NORM, l, embd, 0, &L->ffn_norm, e) ||
            bind_vec(rm, TR_ATTN_Q_BIAS, l, qd, !c->has_qkv_bias, &L->bq, e) ||
            bind_vec(rm, TR_ATTN_K_BIAS, l, kvd, !c->has_qkv_bias, &L->bk, e) ||
            bind_vec(rm, TR_ATTN_V_BIAS, l, kvd, !c->has_qkv_bias, &L->bv, e) ||
            bind_vec(rm, TR_ATTN_Q_NORM, l, hd, !c->has_qk_norm, &L->q_norm, e) ||
            bind_vec(rm, TR_ATTN_K_NORM, l, hd, !c->has_qk_norm, &L->k_norm, e))
            goto fail;
    }
    return 0;
fail:
    rt_model_free(rm);
    return -1;
}

void rt_model_free(struct rt_model *rm)
{
    if (rm->layers) {
        for (uint32_t l = 0; l < rm->c.n_layer; l++) {
            struct rt_layer *L = &rm->layers[l];
            free(L->attn_norm);
            free(L->ffn_norm);
            free(L->bq);
            free(L->bk);
            free(L->bv);
            free(L->q_norm);
            free(L->k_norm);
        }
        free(rm->layers);
    }
    free(rm->output_norm);
    free(rm->rope_freqs);
    memset(rm, 0, sizeof *rm);
}

/* ---- contexts */

int rt_ctx_new(struct rt_ctx **out, const struct rt_model *rm, const struct rt_params *p,
               struct err *e)
{
    struct rt_ctx *ctx;

    *out = NULL;
    if (p->n_ctx <= 0)
        return ERR(e, ERR_USAGE, "context size %d: must be at least 1", p->n_ctx);
    ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ERR(e, ERR_NOMEM, "out of memory");
    ctx->rm = rm;
    ctx->backend = p->backend ? p->backend : &rt_backend_cpu;
    ctx->n_ctx = p->n_ctx;
    ctx->n_threads = p->n_threads > 0 ? p->n_threads : threads_ncpu();
    ctx->n_batch = p->n_batch > 0 ? p->n_batch : 512;
    ctx->rope_freq = p->rope_freq;
    ctx->no_repack = p->no_repack;
    if (ctx->backend->init(ctx, e)) {
        free(ctx);
        return -1;
    }
    *out = ctx;
    return 0;
}

void rt_ctx_free(struct rt_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->backend->free(ctx);
    free(ctx);
}

void rt_ctx_set_hook(struct rt_ctx *ctx, const struct rt_hook *h)
{
    if (h && h->fn && h->stages)
        ctx->hook = *h;
    else
        memset(&ctx->hook, 0, sizeof ctx->hook);
}

int rt_eval(struct rt_ctx *ctx, const int32_t *tok, int n, int pos0, float *logits,
            unsigned flags, struct err *e)
{
    const struct model_config *c = &ctx->rm->c;

    if (n < 1)
        return ERR(e, ERR_USAGE, "no tokens to evaluate");
    if (pos0 < 0 || pos0 > ctx->n_past)
        return ERR(e, ERR_USAGE, "position %d: the cache holds %d positions", pos0, ctx->n_past);
    if (n > ctx->n_ctx - pos0)
        return ERR(e, ERR_USAGE, "context overflow: %lld positions needed, the context holds "
                   "%d (--ctx)", (long long)pos0 + n, ctx->n_ctx);
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || (uint32_t)tok[i] >= c->n_vocab)
            return ERR(e, ERR_USAGE, "token %d (position %d) is outside the vocabulary [0, %u)",
                       (int)tok[i], pos0 + i, c->n_vocab);
    if (ctx->backend->eval(ctx, tok, n, pos0, logits, flags, e)) {
        ctx->n_past = pos0;    /* the cache beyond pos0 may be half written */
        return -1;
    }
    ctx->n_past = pos0 + n;
    return 0;
}
