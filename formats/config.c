/*
 * config.c - the validated model config (see config.h for every rule).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "names.h"
#include "../common/banned.h"

/* ---- roles */

struct role {
    const char *stem;    /* GGUF stem */
    const char *sfx;     /* "weight" or "bias" */
    int         layer;   /* per-layer tensor */
    int         required;
};

static const struct role roles[TR_COUNT] = {
    [TR_TOK_EMBD]    = { "token_embd",  "weight", 0, 1 },
    [TR_OUTPUT_NORM] = { "output_norm", "weight", 0, 1 },
    [TR_OUTPUT]      = { "output",      "weight", 0, 0 },
    [TR_ATTN_NORM]   = { "attn_norm",   "weight", 1, 1 },
    [TR_ATTN_Q]      = { "attn_q",      "weight", 1, 1 },
    [TR_ATTN_K]      = { "attn_k",      "weight", 1, 1 },
    [TR_ATTN_V]      = { "attn_v",      "weight", 1, 1 },
    [TR_ATTN_OUT]    = { "attn_output", "weight", 1, 1 },
    [TR_ATTN_Q_BIAS] = { "attn_q",      "bias",   1, 0 },
    [TR_ATTN_K_BIAS] = { "attn_k",      "bias",   1, 0 },
    [TR_ATTN_V_BIAS] = { "attn_v",      "bias",   1, 0 },
    [TR_ATTN_Q_NORM] = { "attn_q_norm", "weight", 1, 0 },
    [TR_ATTN_K_NORM] = { "attn_k_norm", "weight", 1, 0 },
    [TR_FFN_NORM]    = { "ffn_norm",    "weight", 1, 1 },
    [TR_FFN_GATE]    = { "ffn_gate",    "weight", 1, 1 },
    [TR_FFN_UP]      = { "ffn_up",      "weight", 1, 1 },
    [TR_FFN_DOWN]    = { "ffn_down",    "weight", 1, 1 },
};

const char *model_config_role_name(enum tensor_role r)
{
    return (unsigned)r < TR_COUNT ? roles[r].stem : "?";
}

/* The GGUF spelling of role r in layer l. */
static void gguf_name(enum tensor_role r, int l, char *buf, size_t cap)
{
    if (roles[r].layer)
        snprintf(buf, cap, "blk.%d.%s.%s", l, roles[r].stem, roles[r].sfx);
    else
        snprintf(buf, cap, "%s.%s", roles[r].stem, roles[r].sfx);
}

static const struct model_tensor *find_role(const struct model *m, enum tensor_role r, int l)
{
    const struct model_tensor *t;
    char g[NAMES_MAX], h[NAMES_MAX];

    gguf_name(r, l, g, sizeof g);
    if ((t = model_tensor_find(m, g)))
        return t;
    if (names_to_hf(NULL, slice_from_cstr(g), h, sizeof h) == 0 && (t = model_tensor_find(m, h)))
        return t;
    if (roles[r].layer) {   /* aprender's mixed spelling: HF layer prefix, GGUF stem */
        snprintf(h, sizeof h, "model.layers.%d.%s.%s", l, roles[r].stem, roles[r].sfx);
        return model_tensor_find(m, h);
    }
    return NULL;
}

const struct model_tensor *model_config_tensor(const struct model *m,
                                               const struct model_config *c,
                                               enum tensor_role r, int layer)
{
    if ((unsigned)r >= TR_COUNT)
        return NULL;
    if (roles[r].layer && (layer < 0 || (uint32_t)layer >= c->n_layer))
        return NULL;
    return find_role(m, r, roles[r].layer ? layer : 0);
}

/* ---- peek (apr-diff, apr-hash) */

static int64_t peek_heads(const struct model *m, const char *arch, int kv)
{
    char key[160];
    uint64_t v;

    snprintf(key, sizeof key, "%s.attention.head_count%s", arch, kv ? "_kv" : "");
    if (arch[0] && model_kv_get_u64(m, key, &v) == 0 && v > 0 && v < (1u << 20))
        return (int64_t)v;
    if (model_kv_get_u64(m, kv ? "num_kv_heads" : "num_heads", &v) == 0 && v > 0 && v < (1u << 20))
        return (int64_t)v;
    if (model_kv_get_u64(m, kv ? "model.num_kv_heads" : "model.num_heads", &v) == 0 && v > 0 &&
        v < (1u << 20))
        return (int64_t)v;
    return kv ? peek_heads(m, arch, 0) : 0;   /* no KV count: MHA, n_head_kv = n_head */
}

void model_config_peek(const struct model *m, struct model_config *c)
{
    static const char *const keys[] = { "general.architecture", "architecture",
                                         "model.architecture", "model_type",
                                         "hf_model_type", NULL };
    struct slice v;

    memset(c, 0, sizeof *c);
    c->bos_id = c->eos_id = -1;
    for (int i = 0; keys[i]; i++)
        if (model_kv_get_str(m, keys[i], &v) == 0 && v.n > 0 && v.n < sizeof c->arch) {
            memcpy(c->arch, v.p, v.n);
            c->arch[v.n] = 0;
            break;
        }
    c->n_head = (uint32_t)peek_heads(m, c->arch, 0);
    c->n_head_kv = (uint32_t)peek_heads(m, c->arch, 1);
}

/* ---- load */

struct ld {
    const struct model *m;
    struct meta         mt;
    struct model_config *c;
};

/* A count key into *out: 0 found, 1 absent, -1 error (0 or over 2^31 is an error). */
static int get_count(struct ld *L, const char *key, uint32_t *out, struct err *e)
{
    const struct model_kv *kv = meta_find(&L->mt, key);
    uint64_t u;

    if (!kv)
        return 1;
    if (meta_get_u64(&L->mt, key, &u) || u == 0 || u > INT32_MAX)
        return ERR(e, ERR_FORMAT, "%s: '%s' is not a count from 1 to 2^31-1", L->m->path, key);
    *out = (uint32_t)u;
    return 0;
}

static int get_acount(struct ld *L, const char *rest, uint32_t *out, struct err *e)
{
    char key[160];
    return get_count(L, meta_akey(&L->mt, rest, key, sizeof key), out, e);
}

/* A positive finite float key: 0 found, 1 absent, -1 error. */
static int get_pos(struct ld *L, const char *key, double *out, struct err *e)
{
    double f;

    if (!meta_find(&L->mt, key))
        return 1;
    if (meta_get_f64(&L->mt, key, &f) || !isfinite(f) || f <= 0)
        return ERR(e, ERR_FORMAT, "%s: '%s' is not a positive number", L->m->path, key);
    *out = f;
    return 0;
}

static int get_apos(struct ld *L, const char *rest, double *out, struct err *e)
{
    char key[160];
    return get_pos(L, meta_akey(&L->mt, rest, key, sizeof key), out, e);
}

/* A member of an OBJECT value as a double; 0 found. */
static int obj_f64(const struct model_val *o, const char *key, double *f)
{
    for (uint64_t i = 0; i < o->v.obj.n; i++) {
        const struct model_val *v = &o->v.obj.kv[i].val;
        if (!slice_eq_cstr(o->v.obj.kv[i].key, key))
            continue;
        switch (v->type) {
        case MV_F32: case MV_F64: *f = v->v.f; return isfinite(*f) ? 0 : -1;
        case MV_U8: case MV_U16: case MV_U32: case MV_U64: *f = (double)v->v.u; return 0;
        case MV_I8: case MV_I16: case MV_I32: case MV_I64: *f = (double)v->v.i; return 0;
        default: return -1;
        }
    }
    return -1;
}

static const struct model_val *obj_str(const struct model_val *o, const char *key)
{
    for (uint64_t i = 0; i < o->v.obj.n; i++)
        if (slice_eq_cstr(o->v.obj.kv[i].key, key) && o->v.obj.kv[i].val.type == MV_STR)
            return &o->v.obj.kv[i].val;
    return NULL;
}

/* Short printable ASCII (safe to quote in a message as is). */
static int printable(struct slice s)
{
    if (s.n > 32)
        return 0;
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] < 0x20 || s.p[i] > 0x7e || s.p[i] == '\'')
            return 0;
    return 1;
}

static int scale_type(struct ld *L, struct slice t, const char *where, struct err *e)
{
    struct model_config *c = L->c;

    if (slice_eq_cstr(t, "none") || slice_eq_cstr(t, "default"))
        c->rope_scaling.type = ROPE_SCALE_NONE;
    else if (slice_eq_cstr(t, "linear"))
        c->rope_scaling.type = ROPE_SCALE_LINEAR;
    else if (slice_eq_cstr(t, "yarn"))
        c->rope_scaling.type = ROPE_SCALE_YARN;
    else if (slice_eq_cstr(t, "llama3"))
        c->rope_scaling.type = ROPE_SCALE_LLAMA3;
    else
        return ERR(e, ERR_UNSUPPORTED, "%s: %s: rope scaling '%.*s' is not supported "
                   "(linear, yarn, llama3)", L->m->path, where,
                   (int)(printable(t) ? t.n : 1), printable(t) ? t.p : "?");
    return 0;
}

/* RoPE scaling from the GGUF keys, else from config.json's object. */
static int load_scaling(struct ld *L, struct err *e)
{
    struct model_config *c = L->c;
    const struct model_kv *obj = NULL;
    struct slice t;
    char key[160];
    double f;
    uint32_t u;
    int r;

    c->rope_scaling.type = ROPE_SCALE_NONE;
    c->rope_scaling.factor = 1;
    c->rope_scaling.low_freq_factor = 1;
    c->rope_scaling.high_freq_factor = 4;
    c->rope_scaling.attn_factor = 1;
    c->rope_scaling.beta_fast = 32;
    c->rope_scaling.beta_slow = 1;
    if (meta_get_str(&L->mt, meta_akey(&L->mt, "rope.scaling.type", key, sizeof key), &t) == 0) {
        if (scale_type(L, t, key, e))
            return -1;
        if ((r = get_apos(L, "rope.scaling.factor", &c->rope_scaling.factor, e)) < 0 ||
            (r = get_apos(L, "rope.scaling.attn_factor", &c->rope_scaling.attn_factor, e)) < 0 ||
            (r = get_apos(L, "rope.scaling.yarn_beta_fast", &c->rope_scaling.beta_fast, e)) < 0 ||
            (r = get_apos(L, "rope.scaling.yarn_beta_slow", &c->rope_scaling.beta_slow, e)) < 0)
            return -1;
        if ((r = get_acount(L, "rope.scaling.original_context_length", &u, e)) < 0)
            return -1;
        if (r == 0)
            c->rope_scaling.orig_ctx = u;
        return 0;
    }
    obj = meta_find(&L->mt, "hf.config.rope_parameters");
    if (!obj || obj->val.type != MV_OBJ || !obj_str(&obj->val, "rope_type"))
        obj = meta_find(&L->mt, "hf.config.rope_scaling");
    if (!obj || obj->val.type != MV_OBJ)
        return 0;
    {
        const struct model_val *tv = obj_str(&obj->val, "rope_type");
        if (!tv)
            tv = obj_str(&obj->val, "type");
        if (!tv)
            return 0;
        if (scale_type(L, tv->v.s, "config.json", e))
            return -1;
    }
    if (obj_f64(&obj->val, "factor", &f) == 0 && f > 0)
        c->rope_scaling.factor = f;
    if (obj_f64(&obj->val, "low_freq_factor", &f) == 0 && f > 0)
        c->rope_scaling.low_freq_factor = f;
    if (obj_f64(&obj->val, "high_freq_factor", &f) == 0 && f > 0)
        c->rope_scaling.high_freq_factor = f;
    if (obj_f64(&obj->val, "attention_factor", &f) == 0 && f > 0)
        c->rope_scaling.attn_factor = f;
    if (obj_f64(&obj->val, "beta_fast", &f) == 0 && f > 0)
        c->rope_scaling.beta_fast = f;
    if (obj_f64(&obj->val, "beta_slow", &f) == 0 && f > 0)
        c->rope_scaling.beta_slow = f;
    if (obj_f64(&obj->val, "original_max_position_embeddings", &f) == 0 && f >= 1 &&
        f <= INT32_MAX)
        c->rope_scaling.orig_ctx = (uint32_t)f;
    return 0;
}

/* The highest layer index of any tensor + 1 (names in any spelling). */
static uint32_t count_layers(const struct model *m)
{
    uint32_t n = 0;
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        char b[NAMES_MAX];
        unsigned long l;
        char *end;
        if (names_canonical(NULL, m->tensors[i].name, b, sizeof b) < 0 ||
            strncmp(b, "model.layers.", 13) != 0)
            continue;
        l = strtoul(b + 13, &end, 10);
        if (end != b + 13 && *end == '.' && l < INT32_MAX && l + 1 > n)
            n = (uint32_t)l + 1;
    }
    return n;
}

static void tok_id(struct ld *L, const char *gguf, const char *hf, int64_t *out)
{
    uint64_t u;
    int found = meta_get_u64(&L->mt, gguf, &u) == 0 || meta_get_u64(&L->mt, hf, &u) == 0;

    *out = found && u <= INT32_MAX ? (int64_t)u : -1;
}

static int need(struct ld *L, int r, const char *what, struct err *e)
{
    if (r == 1)
        return ERR(e, ERR_FORMAT, "%s: no %s in the metadata", L->m->path, what);
    return r;
}

/* The sizes: metadata first, tensors where the metadata is silent. */
static int load_sizes(struct ld *L, struct err *e)
{
    struct model_config *c = L->c;
    const struct model_tensor *emb = find_role(L->m, TR_TOK_EMBD, 0);
    const struct model_tensor *up = find_role(L->m, TR_FFN_UP, 0);
    struct model_config pk;
    char key[160];
    int r;

    if ((r = get_acount(L, "block_count", &c->n_layer, e)) < 0)
        return -1;
    if (r == 1 && (c->n_layer = count_layers(L->m)) == 0)
        return ERR(e, ERR_FORMAT, "%s: no %s and no layer tensors", L->m->path,
                   meta_akey(&L->mt, "block_count", key, sizeof key));
    if ((r = get_acount(L, "embedding_length", &c->n_embd, e)) < 0)
        return -1;
    if (r == 1) {
        if (!emb || emb->n_dims != 2 || emb->shape[1] < 1 || emb->shape[1] > INT32_MAX)
            return need(L, 1, meta_akey(&L->mt, "embedding_length", key, sizeof key), e);
        c->n_embd = (uint32_t)emb->shape[1];
    }
    model_config_peek(L->m, &pk);
    if ((r = get_acount(L, "attention.head_count", &c->n_head, e)) < 0)
        return -1;
    if (r == 1 && (c->n_head = pk.n_head) == 0)
        return need(L, 1, meta_akey(&L->mt, "attention.head_count", key, sizeof key), e);
    if ((r = get_acount(L, "attention.head_count_kv", &c->n_head_kv, e)) < 0)
        return -1;
    if (r == 1)   /* aprender's num_kv_heads / model.num_kv_heads, else multi-head */
        c->n_head_kv = pk.n_head_kv ? pk.n_head_kv : c->n_head;
    if ((r = get_acount(L, "attention.key_length", &c->head_dim, e)) < 0 ||
        (r == 1 && (r = get_count(L, "hf.config.head_dim", &c->head_dim, e)) < 0))
        return -1;
    if (r == 1) {
        if (c->n_embd % c->n_head)
            return ERR(e, ERR_FORMAT, "%s: embedding length %u is not a multiple of the %u heads "
                       "and no head size is given", L->m->path, c->n_embd, c->n_head);
        c->head_dim = c->n_embd / c->n_head;
    }
    if ((r = get_acount(L, "feed_forward_length", &c->n_ff, e)) < 0)
        return -1;
    if (r == 1) {
        if (!up || up->n_dims != 2 || up->shape[0] < 1 || up->shape[0] > INT32_MAX)
            return need(L, 1, meta_akey(&L->mt, "feed_forward_length", key, sizeof key), e);
        c->n_ff = (uint32_t)up->shape[0];
    }
    if ((r = get_acount(L, "vocab_size", &c->n_vocab, e)) < 0 ||
        (r == 1 && (r = get_count(L, "hf.config.vocab_size", &c->n_vocab, e)) < 0))
        return -1;
    if (r == 1) {
        if (!emb || emb->n_dims != 2 || emb->shape[0] < 1 || emb->shape[0] > INT32_MAX)
            return need(L, 1, meta_akey(&L->mt, "vocab_size", key, sizeof key), e);
        c->n_vocab = (uint32_t)emb->shape[0];
    }
    if (get_acount(L, "context_length", &c->n_ctx_train, e) < 0)
        return -1;
    if ((r = get_acount(L, "rope.dimension_count", &c->n_rot, e)) < 0)
        return -1;
    if (r == 1)
        c->n_rot = c->head_dim;
    if (c->n_rot > c->head_dim || c->n_rot % 2)
        return ERR(e, ERR_FORMAT, "%s: %u rotary dimensions do not fit a head of %u (even, at "
                   "most the head size)", L->m->path, c->n_rot, c->head_dim);
    if (c->n_head % c->n_head_kv)
        return ERR(e, ERR_FORMAT, "%s: %u heads are not a multiple of the %u KV heads",
                   L->m->path, c->n_head, c->n_head_kv);
    return 0;
}

/* RoPE style and row order (see config.h). */
static int load_rope(struct ld *L, struct err *e)
{
    struct model_config *c = L->c;
    const struct model_tensor *q;
    int r;

    if (names_arch_permutes(c->arch)) {
        q = find_role(L->m, TR_ATTN_Q, 0);
        c->qk_rows_permuted = L->m->format == MODEL_FMT_GGUF ||
                              (L->m->format == MODEL_FMT_APR && q && names_is_gguf_style(q->name));
    } else if (strcmp(c->arch, "qwen2") != 0 && strcmp(c->arch, "qwen3") != 0) {
        return ERR(e, ERR_UNSUPPORTED, "%s: architecture '%s': RoPE layout unknown (llama, "
                   "mistral, qwen2, qwen3)", L->m->path, c->arch);
    }
    c->rope_style = c->qk_rows_permuted ? ROPE_NORM : ROPE_NEOX;
    c->rope_theta = 10000.0;
    if ((r = get_apos(L, "rope.freq_base", &c->rope_theta, e)) < 0)
        return -1;
    return load_scaling(L, e);
}

static int load_misc(struct ld *L, struct err *e)
{
    struct model_config *c = L->c;
    const struct model_kv *kv;
    char key[160];
    int r;

    if ((r = get_apos(L, "attention.layer_norm_rms_epsilon", &c->norm_eps, e)) != 0)
        return need(L, r, meta_akey(&L->mt, "attention.layer_norm_rms_epsilon", key, sizeof key),
                    e);
    kv = meta_find(&L->mt, "hf.config.tie_word_embeddings");
    c->tied_embeddings = !find_role(L->m, TR_OUTPUT, 0) || L->mt.apr_tied ||
                         (kv && kv->val.type == MV_BOOL && kv->val.v.u);
    c->has_qkv_bias = find_role(L->m, TR_ATTN_Q_BIAS, 0) != NULL;
    c->has_qk_norm = find_role(L->m, TR_ATTN_Q_NORM, 0) != NULL;
    tok_id(L, "tokenizer.ggml.bos_token_id", "hf.config.bos_token_id", &c->bos_id);
    tok_id(L, "tokenizer.ggml.eos_token_id", "hf.config.eos_token_id", &c->eos_id);
    return 0;
}

/* ---- validation */

static void shape_str(const int64_t *s, int n, char *b, size_t cap)
{
    size_t o = (size_t)snprintf(b, cap, "[");
    for (int k = 0; k < n && o < cap; k++)
        o += (size_t)snprintf(b + o, cap - o, "%s%lld", k ? ", " : "", (long long)s[k]);
    if (o < cap)
        snprintf(b + o, cap - o, "]");
}

/* The expected shape of role r and how it follows from the config. */
static int expect(const struct model_config *c, enum tensor_role r, int64_t *s, char *why,
                  size_t cap)
{
    int64_t q = (int64_t)c->n_head * c->head_dim, kv = (int64_t)c->n_head_kv * c->head_dim;

    switch (r) {
    case TR_TOK_EMBD: case TR_OUTPUT:
        s[0] = c->n_vocab; s[1] = c->n_embd;
        snprintf(why, cap, "n_vocab %u, n_embd %u", c->n_vocab, c->n_embd);
        return 2;
    case TR_OUTPUT_NORM: case TR_ATTN_NORM: case TR_FFN_NORM:
        s[0] = c->n_embd;
        snprintf(why, cap, "n_embd %u", c->n_embd);
        return 1;
    case TR_ATTN_Q:
        s[0] = q; s[1] = c->n_embd;
        snprintf(why, cap, "n_head %u x head_dim %u, n_embd %u", c->n_head, c->head_dim, c->n_embd);
        return 2;
    case TR_ATTN_K: case TR_ATTN_V:
        s[0] = kv; s[1] = c->n_embd;
        snprintf(why, cap, "n_head_kv %u x head_dim %u, n_embd %u", c->n_head_kv, c->head_dim,
                 c->n_embd);
        return 2;
    case TR_ATTN_OUT:
        s[0] = c->n_embd; s[1] = q;
        snprintf(why, cap, "n_embd %u, n_head %u x head_dim %u", c->n_embd, c->n_head, c->head_dim);
        return 2;
    case TR_ATTN_Q_BIAS:
        s[0] = q;
        snprintf(why, cap, "n_head %u x head_dim %u", c->n_head, c->head_dim);
        return 1;
    case TR_ATTN_K_BIAS: case TR_ATTN_V_BIAS:
        s[0] = kv;
        snprintf(why, cap, "n_head_kv %u x head_dim %u", c->n_head_kv, c->head_dim);
        return 1;
    case TR_ATTN_Q_NORM: case TR_ATTN_K_NORM:
        s[0] = c->head_dim;
        snprintf(why, cap, "head_dim %u", c->head_dim);
        return 1;
    case TR_FFN_GATE: case TR_FFN_UP:
        s[0] = c->n_ff; s[1] = c->n_embd;
        snprintf(why, cap, "n_ff %u, n_embd %u", c->n_ff, c->n_embd);
        return 2;
    case TR_FFN_DOWN:
        s[0] = c->n_embd; s[1] = c->n_ff;
        snprintf(why, cap, "n_embd %u, n_ff %u", c->n_embd, c->n_ff);
        return 2;
    default:
        return 0;
    }
}

/* Check role r of layer l; messages name the tensor by its GGUF spelling (ours: printable). */
static int check_role(struct ld *L, enum tensor_role r, int l, int present_l0, struct err *e)
{
    const struct model_tensor *t = find_role(L->m, r, l);
    int64_t s[2];
    char want[64], got[128], why[96], gn[NAMES_MAX];
    int n;

    gguf_name(r, l, gn, sizeof gn);
    if (!t) {
        if (roles[r].required)
            return ERR(e, ERR_FORMAT, "%s: tensor '%s' is missing", L->m->path, gn);
        if (present_l0)
            return ERR(e, ERR_FORMAT, "%s: tensor '%s' is missing (layer 0 has one)",
                       L->m->path, gn);
        return 0;
    }
    if (!present_l0 && roles[r].layer && !roles[r].required)
        return ERR(e, ERR_FORMAT, "%s: tensor '%s' is present but layer 0 has none", L->m->path,
                   gn);
    n = expect(L->c, r, s, why, sizeof why);
    if (t->n_dims == n && t->shape[0] == s[0] && (n < 2 || t->shape[1] == s[1]))
        return 0;
    shape_str(s, n, want, sizeof want);
    shape_str(t->shape, t->n_dims, got, sizeof got);
    return ERR(e, ERR_FORMAT, "%s: tensor '%s': shape %s does not match the config: expected %s "
               "(%s)", L->m->path, gn, got, want, why);
}

static int validate(struct ld *L, struct err *e)
{
    const struct model_config *c = L->c;
    int l0[TR_COUNT];

    for (int r = 0; r < TR_COUNT; r++)
        l0[r] = find_role(L->m, (enum tensor_role)r, 0) != NULL;
    for (int r = 0; r < TR_COUNT; r++)
        if (!roles[r].layer && check_role(L, (enum tensor_role)r, 0, 0, e))
            return -1;
    for (uint32_t l = 0; l < c->n_layer; l++)
        for (int r = 0; r < TR_COUNT; r++)
            if (roles[r].layer && check_role(L, (enum tensor_role)r, (int)l, l0[r], e))
                return -1;
    for (int r = 0; r < TR_COUNT; r++) {
        char gn[NAMES_MAX];
        if (!roles[r].layer || !find_role(L->m, (enum tensor_role)r, (int)c->n_layer))
            continue;
        gguf_name((enum tensor_role)r, (int)c->n_layer, gn, sizeof gn);
        return ERR(e, ERR_FORMAT, "%s: tensor '%s' is beyond the %u layers of the config",
                   L->m->path, gn, c->n_layer);
    }
    return 0;
}

int model_config_load(const struct model *m, struct model_config *c, struct err *e)
{
    struct ld L;
    struct model_config pk;
    int rc;

    memset(c, 0, sizeof *c);
    c->bos_id = c->eos_id = -1;
    memset(&L, 0, sizeof L);
    L.m = m;
    L.c = c;
    if (meta_from_model(m, &L.mt, e))
        return -1;
    if (L.mt.arch[0]) {
        snprintf(c->arch, sizeof c->arch, "%s", L.mt.arch);
    } else {
        model_config_peek(m, &pk);
        memcpy(c->arch, pk.arch, sizeof c->arch);
    }
    memcpy(L.mt.arch, c->arch, sizeof L.mt.arch);   /* for the "{arch}.<key>" lookups */
    if (!c->arch[0])
        rc = ERR(e, ERR_FORMAT, "%s: no architecture (general.architecture) in the metadata",
                 m->path);
    else
        rc = load_rope(&L, e) || load_sizes(&L, e) || load_misc(&L, e) || validate(&L, e) ? -1 : 0;
    meta_free(&L.mt);
    if (rc) {
        memset(c, 0, sizeof *c);
        c->bos_id = c->eos_id = -1;
    }
    return rc;
}
