/*
 * meta_out.c - the output view: its tensors and the metadata of the target format from the canonical list.
 */
#include "convert_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "../common/json.h"
#include "../common/path.h"
#include "../common/rd.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../formats/model_json.h"
#include "../common/banned.h"

#define CFG_TEXT_MAX ((size_t)1 << 30)   /* config.json text (st_write_config's cap) */

/*
 * Whether the canonical list is a GGUF file's own keys: a GGUF source, or an APR file
 * whose apr_tools.kv came from one (it has no hf.config.* entries).  GGUF output then
 * reproduces those keys as they are; otherwise (SafeTensors, an APR file made from
 * one, an aprender APR file) it derives the keys llama.cpp wants the same way on
 * every route (meta_gguf), so HF -> GGUF and HF -> APR -> GGUF give the same file.
 */
static int gguf_origin(const struct cv *c)
{
    if (c->src.format == MODEL_FMT_GGUF)
        return 1;
    if (c->src.format != MODEL_FMT_APR || !model_kv_find(&c->src, META_NS_KEY))
        return 0;
    for (uint64_t i = 0; i < c->ck.n; i++)
        if (slice_starts_with(c->ck.kv[i].key, "hf.config."))
            return 0;
    return 1;
}

/* ---- the output view */

static int out_push(struct cv *c, struct slice key, const struct model_val *v, int own,
                    uint64_t *cap, struct err *e)
{
    struct model *m = &c->out_m;
    if (m->n_kv == *cap) {
        uint64_t nc = *cap ? *cap * 2 : 64;
        struct model_kv *k = realloc(m->kv, nc * sizeof *k);
        uint8_t *o = k ? realloc(c->kv_own, nc) : NULL;
        if (!k || !o) {
            if (k)
                m->kv = k;
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        m->kv = k;
        c->kv_own = o;
        *cap = nc;
    }
    memset(&m->kv[m->n_kv], 0, sizeof *m->kv);
    m->kv[m->n_kv].key = key;
    m->kv[m->n_kv].val = *v;
    c->kv_own[m->n_kv++] = (uint8_t)own;
    return 0;
}

/* Parse the JSON object in b and push its members onto the output view, keys
 * prefixed with prefix (NULL: as they are).  Consumes nothing of b. */
static int push_json(struct cv *c, const struct sbuf *b, const char *what, const char *prefix,
                     uint64_t *cap, struct err *e)
{
    struct json_doc d;
    struct model_kv *kv = NULL;
    uint64_t n = 0;
    int rc = -1;

    if (sbuf_check(b, what, e))
        return -1;
    if (json_parse(&d, b->p, b->len, 0, what, e))
        return -1;
    if (model__json_obj(&c->out_m, &d, 0, &kv, &n, 0, e) == 0) {
        rc = 0;
        for (uint64_t i = 0; i < n && rc == 0; i++) {
            if (prefix) {
                char key[200];
                struct slice k;
                snprintf(key, sizeof key, "%s%.*s", prefix, (int)kv[i].key.n, kv[i].key.p);
                rc = cv_kstr(c, key, &k, e) || out_push(c, k, &kv[i].val, 1, cap, e) ? -1 : 0;
            } else {
                rc = out_push(c, kv[i].key, &kv[i].val, 1, cap, e);
            }
            if (rc == 0)
                kv[i].val.type = MV_NULL;   /* moved */
        }
    }
    for (uint64_t i = 0; kv && i < n; i++)
        model__val_free(&kv[i].val);
    free(kv);
    json_release(&d);
    return rc;
}

static int out_find(const struct cv *c, const char *key)
{
    for (uint64_t i = 0; i < c->out_m.n_kv; i++)
        if (slice_eq_cstr(c->out_m.kv[i].key, key))
            return (int)i;
    return -1;
}

int cv_out_tensors(struct cv *c, struct err *e)
{
    struct model *m = &c->out_m;

    m->tensors = calloc(c->n_tp + 1, sizeof *m->tensors);
    if (!m->tensors)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < c->n_tp; i++) {
        const struct tplan *p = &c->tp[i];
        struct model_tensor *t = &m->tensors[i];
        *t = *p->src;
        t->name.p = p->name;
        t->name.n = strlen(p->name);
        t->dtype = p->dtype;
        if (dtype_nbytes(p->dtype, t->n_elems, &t->size, e))
            return -1;
        if (!t->data)
            t->data = (const uint8_t *)"";
    }
    m->n_tensors = c->n_tp;
    return 0;
}

/* llama_ftype of the dominant weight type (gguf-quant.md 2.9). */
uint32_t  cv_file_type(const struct cv *c)
{
    static const struct { int dt; uint32_t ft; } map[] = {
        { DT_F32, 0 }, { DT_F16, 1 }, { DT_Q4_0, 2 }, { DT_Q4_1, 3 }, { DT_Q8_0, 7 },
        { DT_Q5_0, 8 }, { DT_Q5_1, 9 }, { DT_Q2_K, 10 }, { DT_Q3_K, 12 }, { DT_Q4_K, 15 },
        { DT_Q5_K, 17 }, { DT_Q6_K, 18 }, { DT_IQ4_NL, 25 }, { DT_IQ4_XS, 30 }, { DT_BF16, 32 },
    };
    uint64_t best = 0, cnt[DT_COUNT] = { 0 };
    int dt = DT_F32;
    if (c->mix)
        return c->mix->ftype;              /* llama-quantize writes the mix's llama_ftype */
    for (uint64_t i = 0; i < c->n_tp; i++)
        if (c->tp[i].src->n_dims >= 2)
            cnt[c->tp[i].dtype] += (uint64_t)c->tp[i].src->n_elems;
    for (int t = 0; t < DT_COUNT; t++)
        if (cnt[t] > best) {
            best = cnt[t];
            dt = t;
        }
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (map[i].dt == dt)
            return map[i].ft;
    return 1024;   /* "guessed" */
}

int cv_any_quant(const struct cv *c)
{
    for (uint64_t i = 0; i < c->n_tp; i++)
        if (dtype_get(c->tp[i].dtype)->kind == DTK_QUANT)
            return 1;
    return 0;
}

/* After a dtype change the GGUF keys that describe the types follow (in the canonical
 * list, so APR's namespace and GGUF output agree). */
int cv_ck_fixup(struct cv *c, struct err *e)
{
    int any_conv = 0;
    /* (the exact F32 <-> F16/BF16 moves of apr_tools.narrowed tensors are not a change) */
    for (uint64_t k = 0; k < c->n_tp; k++)
        any_conv |= c->tp[k].converted && !c->tp[k].f32_norm && !c->tp[k].narrowed;
    if (!any_conv)
        return 0;
    for (uint64_t i = 0; i < c->ck.n; i++)
        if (slice_eq_cstr(c->ck.kv[i].key, "general.file_type") && c->ck.kv[i].val.type == MV_U32)
            c->ck.kv[i].val.v.u = cv_file_type(c);
    if (cv_any_quant(c) && !meta_find(&c->ck, "general.quantization_version") &&
        meta_find(&c->ck, "general.file_type") &&
        meta_add_u(&c->ck, "general.quantization_version", MV_U32, 2, e))
        return -1;
    return 0;
}

static int out_add_u(struct cv *c, const char *key, enum model_vtype t, uint64_t u,
                     uint64_t *cap, struct err *e)
{
    struct model_val v = { .type = t };
    struct slice k;
    v.v.u = u;
    return cv_kstr(c, key, &k, e) || out_push(c, k, &v, 0, cap, e);
}

static int out_add_str(struct cv *c, const char *key, const char *val, size_t n,
                       uint64_t *cap, struct err *e)
{
    struct model_val v = { .type = MV_STR };
    struct slice k;
    return cv_kstr(c, key, &k, e) || model__strdup(&c->out_m, val, n, &v.v.s, e) ||
           out_push(c, k, &v, 0, cap, e);
}

/* --imatrix: the keys llama-quantize adds (as KV overrides, after the source's keys):
 * the file name and dataset (at most 127 bytes each), the entry count and the chunk
 * count (I32; the last only when known). */
static int meta_imatrix(struct cv *c, uint64_t *cap, struct err *e)
{
    const struct imatrix *im = &c->im;
    size_t n;
    struct model_val v = { .type = MV_I32 };
    struct slice k;

    n = strlen(im->path);
    if (out_add_str(c, "quantize.imatrix.file", im->path, n < 127 ? n : 127, cap, e))
        return -1;
    if (im->dataset && im->dataset[0]) {
        n = strnlen(im->dataset, 127);
        if (out_add_str(c, "quantize.imatrix.dataset", im->dataset, n, cap, e))
            return -1;
    }
    v.v.i = (int64_t)im->n;
    if (cv_kstr(c, "quantize.imatrix.entries_count", &k, e) || out_push(c, k, &v, 0, cap, e))
        return -1;
    if (im->chunks > 0) {
        v.v.i = im->chunks;
        if (cv_kstr(c, "quantize.imatrix.chunks_count", &k, e) || out_push(c, k, &v, 0, cap, e))
            return -1;
    }
    return 0;
}

/* The attention head size: hf.config.head_dim, {arch}.attention.key_length, else
 * embedding_length / head_count.  0, or -1 when none is known. */
static int head_dim(const struct cv *c, uint64_t *u)
{
    uint64_t heads = 0, hidden = 0;

    if ((meta_get_u64(&c->ck, "hf.config.head_dim", u) == 0 || meta_aget_u64(&c->ck, "attention.key_length", u) == 0) &&
        *u > 0 && *u <= UINT32_MAX)
        return 0;
    if (meta_aget_u64(&c->ck, "attention.head_count", &heads) || meta_aget_u64(&c->ck, "embedding_length", &hidden) ||
        heads == 0 || hidden / heads == 0 || hidden / heads > UINT32_MAX)
        return -1;
    *u = hidden / heads;
    return 0;
}

/* apr_tools.narrowed: "<name>=<F16|BF16>" for every F32 output tensor that stands for
 * an F16/BF16 one (widened for llama.cpp here, or listed by the source).  Last key. */
static int meta_gguf_narrowed(struct cv *c, uint64_t *cap, struct err *e)
{
    struct model_val v = { .type = MV_ARR };
    struct slice k;
    uint64_t n = 0;

    for (uint64_t i = 0; i < c->n_tp; i++)
        n += c->tp[i].dtype == DT_F32 && c->tp[i].orig_dtype;
    if (!n)
        return 0;
    v.v.arr.elem = MV_STR;
    v.v.arr.strs = calloc(n, sizeof *v.v.arr.strs);
    if (!v.v.arr.strs)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < c->n_tp; i++) {
        const struct tplan *p = &c->tp[i];
        char ent[NAMES_MAX + 16];
        if (p->dtype != DT_F32 || !p->orig_dtype)
            continue;
        snprintf(ent, sizeof ent, "%s=%s", p->name, dtype_name(p->orig_dtype));
        if (cv_kstr(c, ent, &v.v.arr.strs[v.v.arr.n++], e)) {
            free(v.v.arr.strs);
            return -1;
        }
    }
    if (cv_kstr(c, NARROW_KEY, &k, e) || out_push(c, k, &v, 1, cap, e)) {
        free(v.v.arr.strs);
        return -1;
    }
    return 0;
}

/* GGUF output from a source with config.json entries: their config.json text, as
 * st_write_config would write it, in ST_CONFIG_KEY. */
static int keep_config_text(struct cv *c, uint64_t *cap, struct err *e)
{
    struct sbuf b = SBUF_INIT(CFG_TEXT_MAX);
    struct model tm;
    struct model_val v = { .type = MV_STR };
    struct slice k;
    int rc = -1;

    memset(&tm, 0, sizeof tm);
    tm.kv = c->ck.kv;
    tm.n_kv = c->ck.n;
    if (st_config_text(&tm, &b, e) == 0 && b.len > 0 &&
        model__strdup(&c->out_m, b.p, b.len, &v.v.s, e) == 0 &&
        cv_kstr(c, ST_CONFIG_KEY, &k, e) == 0 && out_push(c, k, &v, 0, cap, e) == 0)
        rc = 0;
    sbuf_release(&b);
    return rc;
}

/*
 * Whether the config.json text kept in a GGUF (ST_CONFIG_KEY) still says what the
 * GGUF's hyperparameters say: every mapped value present on both sides equal (counts
 * exactly, floats as FLOAT32, which is how the GGUF holds them).  0 agrees; 1 differs,
 * with why (the first difference); -1 when the text is not a JSON object.
 */
static int config_agrees(const struct cv *c, struct slice text, char *why, size_t cap)
{
    static const struct { const char *hf, *gguf; int is_f; } map[] = {
        { "max_position_embeddings", "context_length",                   0 },
        { "hidden_size",             "embedding_length",                 0 },
        { "num_hidden_layers",       "block_count",                      0 },
        { "intermediate_size",       "feed_forward_length",              0 },
        { "num_attention_heads",     "attention.head_count",             0 },
        { "num_key_value_heads",     "attention.head_count_kv",          0 },
        { "rms_norm_eps",            "attention.layer_norm_rms_epsilon", 1 },
        { "head_dim",                "attention.key_length",             0 },
        { "vocab_size",              "vocab_size",                       0 },
        { "rope_theta",              "rope.freq_base",                   1 },
    };
    struct json_doc d;
    struct err ie = ERR_INIT;
    int rc = 0;

    if (json_parse(&d, text.p, text.n, 0, ST_CONFIG_KEY, &ie))
        return -1;
    if (!json_is(&d, 0, JSMN_OBJECT)) {
        json_release(&d);
        return -1;
    }
    for (size_t i = 0; rc == 0 && i < sizeof map / sizeof *map; i++) {
        int obj = 0, t = json_get(&d, 0, map[i].hf);
        char key[160];
        uint64_t gu, ju;
        double gf, jf;
        if (strcmp(map[i].hf, "rope_theta") == 0 &&
            (obj = json_get(&d, 0, "rope_parameters")) >= 0 && json_is(&d, obj, JSMN_OBJECT) &&
            json_get(&d, obj, "rope_theta") >= 0)
            t = json_get(&d, obj, "rope_theta");
        if (strcmp(map[i].hf, "num_key_value_heads") == 0 && (t < 0 || json_is_null(&d, t)))
            t = json_get(&d, 0, "num_attention_heads");
        if (t < 0 || json_is_null(&d, t))
            continue;
        meta_akey(&c->ck, map[i].gguf, key, sizeof key);
        if (map[i].is_f) {
            if (meta_aget_f64(&c->ck, map[i].gguf, &gf) != 0)
                continue;
            if (json_f64(&d, t, &jf, map[i].hf, &ie) || (float)jf != (float)gf) {
                snprintf(why, cap, "%s is %g, the kept config.json's %s %g", key, gf,
                         map[i].hf, jf);
                rc = 1;
            }
        } else {
            if (meta_aget_u64(&c->ck, map[i].gguf, &gu) != 0)
                continue;
            if (json_u64(&d, t, &ju, map[i].hf, &ie) || ju != gu) {
                snprintf(why, cap, "%s is %llu, the kept config.json's %s %llu", key,
                         (unsigned long long)gu, map[i].hf, (unsigned long long)ju);
                rc = 1;
            }
        }
    }
    json_release(&d);
    return rc;
}

int cv_meta_gguf(struct cv *c, struct err *e)
{
    uint64_t cap = 0, u;
    int exact = gguf_origin(c);
    int any_conv = 0, i;

    for (uint64_t k = 0; k < c->n_tp; k++)
        any_conv |= c->tp[k].converted;
    uint64_t n_hf = 0, n_st = 0, n_val = 0;
    char other[200] = "";

    for (uint64_t k = 0; k < c->ck.n; k++) {
        const struct model_kv *kv = &c->ck.kv[k];
        if (slice_eq_cstr(kv->key, NARROW_KEY))
            continue;
        if (slice_starts_with(kv->key, "hf.config.")) {
            n_hf++;
            continue;
        }
        if (slice_starts_with(kv->key, "safetensors.")) {
            /* "format": "pt" is the usual marker, written again on the way back */
            n_st += !(slice_eq_cstr(kv->key, "safetensors.metadata.format") &&
                      kv->val.type == MV_STR && slice_eq_cstr(kv->val.v.s, "pt"));
            continue;
        }
        if (kv->val.type >= MV_GGUF_COUNT ||
            (kv->val.type == MV_ARR && (kv->val.v.arr.items || kv->val.v.arr.elem >= MV_GGUF_COUNT))) {
            size_t l = strlen(other);
            if (n_val++ < 3 && l + kv->key.n + 4 < sizeof other)
                snprintf(other + l, sizeof other - l, "%s'%.*s'", l ? ", " : "", (int)kv->key.n,
                         kv->key.p);
            continue;
        }
        if (out_push(c, kv->key, &kv->val, 0, &cap, e))
            return -1;
    }
    /* config.json is kept whole as ST_CONFIG_KEY (its hyperparameters are GGUF keys too),
     * so that GGUF -> SafeTensors writes it back; say what the target cannot hold. */
    if (n_hf && keep_config_text(c, &cap, e))
        return -1;
    if (n_st)
        cv_note(c, "GGUF has no __metadata__: %llu SafeTensors metadata entr%s not written",
                (unsigned long long)n_st, n_st == 1 ? "y" : "ies");
    if (n_val)
        cv_note(c, "GGUF cannot hold null, object or mixed-array values: %llu keys not written "
                   "(%s%s)", (unsigned long long)n_val, other, n_val > 3 ? ", ..." : "");
    if (out_find(c, "general.architecture") < 0)
        return ERR(e, ERR_UNSUPPORTED, "%s: no architecture known (general.architecture): "
                   "GGUF needs one", c->in);
    if (!exact) {
        const struct model_kv *hf;
        char key[160];
        if (out_find(c, "general.name") < 0 &&
            (hf = meta_find(&c->ck, "hf.config._name_or_path")) && hf->val.type == MV_STR) {
            struct model_val v = hf->val;
            struct slice k;
            if (cv_kstr(c, "general.name", &k, e) || out_push(c, k, &v, 0, &cap, e))
                return -1;
        }
        /* llama family: the rotary dimensions are the head size */
        if (names_arch_permutes(c->ck.arch) &&
            out_find(c, meta_akey(&c->ck, "rope.dimension_count", key, sizeof key)) < 0 &&
            head_dim(c, &u) == 0 && out_add_u(c, key, MV_U32, u, &cap, e))
            return -1;
        if (out_find(c, "tokenizer.ggml.tokens") >= 0) {
            if (meta_get_u64(&c->ck, "hf.config.bos_token_id", &u) == 0 && u <= UINT32_MAX &&
                out_find(c, "tokenizer.ggml.bos_token_id") < 0 &&
                out_add_u(c, "tokenizer.ggml.bos_token_id", MV_U32, u, &cap, e))
                return -1;
            if (meta_get_u64(&c->ck, "hf.config.eos_token_id", &u) == 0 && u <= UINT32_MAX &&
                out_find(c, "tokenizer.ggml.eos_token_id") < 0 &&
                out_add_u(c, "tokenizer.ggml.eos_token_id", MV_U32, u, &cap, e))
                return -1;
        }
    }
    i = out_find(c, "general.file_type");
    if (i < 0 && !exact && out_add_u(c, "general.file_type", MV_U32, cv_file_type(c), &cap, e))
        return -1;
    if (cv_any_quant(c) && out_find(c, "general.quantization_version") < 0 &&
        out_add_u(c, "general.quantization_version", MV_U32, 2, &cap, e))
        return -1;
    if (c->im.n && meta_imatrix(c, &cap, e))
        return -1;
    if (!exact && out_find(c, "tokenizer.ggml.model") < 0) {
        /* no tokenizer: llama.cpp loads "none" (LLAMA_VOCAB_TYPE_NONE) with
         * {arch}.vocab_size placeholder tokens, and refuses a file without the key */
        struct model_val v = { .type = MV_STR };
        struct slice k;
        char key[160];
        v.v.s = slice_from_cstr("none");
        if (cv_kstr(c, "tokenizer.ggml.model", &k, e) || out_push(c, k, &v, 0, &cap, e))
            return -1;
        if (out_find(c, meta_akey(&c->ck, "vocab_size", key, sizeof key)) < 0) {
            for (uint64_t t = 0; t < c->n_tp; t++) {
                const struct model_tensor *emb = c->tp[t].src;
                if (!cv_is_embedding(emb->name) || emb->n_dims != 2 ||
                    (uint64_t)emb->shape[0] > UINT32_MAX)
                    continue;
                if (out_add_u(c, key, MV_U32, (uint64_t)emb->shape[0], &cap, e))
                    return -1;
                break;
            }
        }
    }
    (void)any_conv;
    return meta_gguf_narrowed(c, &cap, e);
}

/* config.json for a model that has none (GGUF or aprender APR source). */
static int synth_config(struct cv *c, uint64_t *cap, struct err *e)
{
    static const struct { const char *hf, *gguf; int is_f; } hyper[] = {
        { "hidden_size",             "embedding_length",                 0 },
        { "intermediate_size",       "feed_forward_length",              0 },
        { "max_position_embeddings", "context_length",                   0 },
        { "num_attention_heads",     "attention.head_count",             0 },
        { "num_hidden_layers",       "block_count",                      0 },
        { "num_key_value_heads",     "attention.head_count_kv",          0 },
        { "rms_norm_eps",            "attention.layer_norm_rms_epsilon", 1 },
        { "rope_theta",              "rope.freq_base",                   1 },
        { "vocab_size",              "vocab_size",                       0 },
    };
    struct sbuf b = SBUF_INIT(1 << 20);
    struct json_w w;
    uint64_t u = 0, heads = 0, hidden = 0, tok_n = 0;   /* u = 0: vocab_size 0 when nothing tells it */
    double f;
    int rc = -1, tied = 1, bf16 = 0, f16 = 0;
    const char *cls;
    const struct model_kv *toks = meta_find(&c->ck, "tokenizer.ggml.tokens");

    /* Only the architectures whose config.json this table writes correctly; for any
     * other a llama config would be wrong, so none is written, and that is said where a
     * config.json would have been written (a directory, or a file model.safetensors). */
    if (strcmp(c->ck.arch, "llama") != 0 && strcmp(c->ck.arch, "mistral") != 0 &&
        strcmp(c->ck.arch, "qwen2") != 0 && strcmp(c->ck.arch, "qwen3") != 0) {
        if (c->dir_out || strcmp(path_base(c->out, NULL), "model.safetensors") == 0)
            cv_note(c, "no config.json written: no Hugging Face config mapping for "
                       "architecture '%s' (llama, mistral, qwen2 and qwen3 have one)",
                    c->ck.arch[0] ? c->ck.arch : "(none)");
        return 0;
    }
    if (toks && toks->val.type == MV_ARR)
        tok_n = toks->val.v.arr.n;
    for (uint64_t i = 0; i < c->n_tp; i++) {
        if (cv_is_head(c->tp[i].name))
            tied = 0;
        bf16 |= c->tp[i].dtype == DT_BF16;
        f16 |= c->tp[i].dtype == DT_F16;
    }
    cls = strcmp(c->ck.arch, "qwen2") == 0 ? "Qwen2ForCausalLM"
        : strcmp(c->ck.arch, "qwen3") == 0 ? "Qwen3ForCausalLM"
        : strcmp(c->ck.arch, "mistral") == 0 ? "MistralForCausalLM" : "LlamaForCausalLM";
    json_w_init(&w, &b, 0);
    json_w_obj(&w);
    json_w_key(&w, "architectures");
    json_w_arr(&w);
    json_w_str(&w, cls);
    json_w_arr_end(&w);
    if (strcmp(c->ck.arch, "qwen2") == 0) {
        json_w_key(&w, "attention_bias");
        json_w_bool(&w, 1);
    }
    if (meta_get_u64(&c->ck, "tokenizer.ggml.bos_token_id", &u) == 0) {
        json_w_key(&w, "bos_token_id");
        json_w_u64(&w, u);
    }
    if (meta_get_u64(&c->ck, "tokenizer.ggml.eos_token_id", &u) == 0) {
        json_w_key(&w, "eos_token_id");
        json_w_u64(&w, u);
    }
    meta_aget_u64(&c->ck, "attention.head_count", &heads);
    meta_aget_u64(&c->ck, "embedding_length", &hidden);
    if (meta_aget_u64(&c->ck, "attention.key_length", &u) == 0 || meta_aget_u64(&c->ck, "rope.dimension_count", &u) == 0 ||
        (heads && (u = hidden / heads, 1))) {
        json_w_key(&w, "head_dim");
        json_w_u64(&w, u);
    }
    json_w_key(&w, "hidden_act");
    json_w_str(&w, "silu");
    for (size_t i = 0; i < sizeof hyper / sizeof *hyper; i++) {
        if (hyper[i].is_f ? meta_aget_f64(&c->ck, hyper[i].gguf, &f) : meta_aget_u64(&c->ck, hyper[i].gguf, &u)) {
            if (strcmp(hyper[i].hf, "vocab_size") == 0 && tok_n)
                u = tok_n;
            else if (strcmp(hyper[i].hf, "num_key_value_heads") == 0 && heads)
                u = heads;
            else if (strcmp(hyper[i].hf, "vocab_size") == 0) {
                for (uint64_t k = 0; k < c->n_tp; k++)
                    if (cv_is_embedding(c->tp[k].src->name))
                        u = (uint64_t)c->tp[k].src->shape[0];
            } else
                continue;
        }
        if (strcmp(hyper[i].hf, "model_type") == 0)
            continue;
        if (strcmp(hyper[i].hf, "num_hidden_layers") == 0) {
            json_w_key(&w, "model_type");
            json_w_str(&w, c->ck.arch);
        }
        json_w_key(&w, hyper[i].hf);
        if (hyper[i].is_f)
            json_w_f32(&w, (float)f);
        else
            json_w_u64(&w, u);
    }
    json_w_key(&w, "tie_word_embeddings");
    json_w_bool(&w, tied);
    json_w_key(&w, "torch_dtype");
    json_w_str(&w, bf16 ? "bfloat16" : f16 ? "float16" : "float32");
    json_w_obj_end(&w);
    rc = push_json(c, &b, "config.json", "hf.config.", cap, e);
    sbuf_release(&b);
    return rc;
}

/* SafeTensors output: __metadata__ (safetensors.metadata.* keys) and config.json
 * (hf.config.*).  A single file keeps every other key too, as the namespace text in
 * __metadata__["apr_tools.kv"] (formats/meta.h), so that .safetensors -> GGUF gives
 * them back; a directory carries them in config.json and tokenizer.json. */
int cv_meta_st(struct cv *c, struct err *e)
{
    uint64_t cap = 0;
    int have_cfg = 0, have_meta = 0;

    if (!c->dir_out) {
        struct model_val v = { .type = MV_STR };
        struct slice k;
        char *text;
        size_t n;
        if (meta_st_ns_text(&c->ck, NARROW_KEY, &text, &n, e))
            return -1;
        if (model__strdup(&c->out_m, text, n, &v.v.s, e) || cv_kstr(c, META_ST_NS_KEY, &k, e) ||
            out_push(c, k, &v, 0, &cap, e)) {
            free(text);
            return -1;
        }
        free(text);
    }
    for (uint64_t k = 0; k < c->ck.n; k++) {
        const struct model_kv *kv = &c->ck.kv[k];
        if (slice_eq_cstr(kv->key, META_ST_NS_KEY))
            continue;   /* the source's: written afresh above */
        if (slice_starts_with(kv->key, "safetensors.metadata.") && kv->val.type == MV_STR) {
            have_meta = 1;
            if (out_push(c, kv->key, &kv->val, 0, &cap, e))
                return -1;
        }
    }
    if (!have_meta) {
        struct model_val v = { .type = MV_STR };
        struct slice k;
        v.v.s = slice_from_cstr("pt");
        if (cv_kstr(c, "safetensors.metadata.format", &k, e) || out_push(c, k, &v, 0, &cap, e))
            return -1;
    }
    for (uint64_t k = 0; k < c->ck.n; k++) {
        const struct model_kv *kv = &c->ck.kv[k];
        if (slice_starts_with(kv->key, "hf.config.")) {
            have_cfg = 1;
            if (out_push(c, kv->key, &kv->val, 0, &cap, e))
                return -1;
        }
    }
    if (!have_cfg) {
        /* a GGUF made from a Hugging Face model keeps its config.json text (ST_CONFIG_KEY):
         * written back while it agrees with the GGUF's hyperparameters */
        const struct model_kv *t = meta_find(&c->ck, ST_CONFIG_KEY);
        char why[256] = "";
        int a = t && t->val.type == MV_STR ? config_agrees(c, t->val.v.s, why, sizeof why) : -1;
        if (a == 0) {
            struct sbuf b = SBUF_INIT(CFG_TEXT_MAX);
            int rc = sbuf_add(&b, t->val.v.s.p, t->val.v.s.n) ? -1
                     : push_json(c, &b, ST_CONFIG_KEY, "hf.config.", &cap, e);
            sbuf_release(&b);
            if (rc)
                return -1;
        } else {
            if (a == 1)
                cv_note(c, "config.json regenerated from the GGUF's hyperparameters: %s", why);
            else if (t)
                cv_note(c, "config.json regenerated: the kept text (%s) is not a JSON object",
                        ST_CONFIG_KEY);
            if (synth_config(c, &cap, e))
                return -1;
        }
    }
    {   /* generation_config.json, kept whole (ST_GENCFG_KEY): st_write_config writes it */
        const struct model_kv *g = meta_find(&c->ck, ST_GENCFG_KEY);
        if (g && g->val.type == MV_STR && out_push(c, g->key, &g->val, 0, &cap, e))
            return -1;
    }
    return 0;
}

static const char *hf_class(const char *arch)
{
    static const struct { const char *a, *cls; } map[] = {
        { "qwen2", "Qwen2ForCausalLM" }, { "qwen2.5", "Qwen2ForCausalLM" },
        { "qwen", "Qwen2ForCausalLM" }, { "qwen3", "Qwen3ForCausalLM" },
        { "llama", "LlamaForCausalLM" }, { "mistral", "MistralForCausalLM" },
        { "phi", "PhiForCausalLM" }, { "phi3", "Phi3ForCausalLM" },
        { "gemma", "GemmaForCausalLM" }, { "gemma2", "Gemma2ForCausalLM" },
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i].a, arch) == 0)
            return map[i].cls;
    return NULL;
}

static void w_kv_str(struct json_w *w, const char *key, const struct cv *c, const char *ck_key,
                     int null_if_absent)
{
    struct slice s;
    if (meta_get_str(&c->ck, ck_key, &s) == 0) {
        json_w_key(w, key);
        json_w_str_n(w, s.p, s.n);
    } else if (null_if_absent) {
        json_w_key(w, key);
        json_w_null(w);
    }
}

static void w_kv_ck(struct json_w *w, const char *key, const struct cv *c, const char *ck_key)
{
    const struct model_kv *kv = meta_find(&c->ck, ck_key);
    if (!kv)
        return;
    json_w_key(w, key);
    meta_json_val(w, &kv->val);
}

static int tensor_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tplan *const *)a)[0]->name, ((const struct tplan *const *)b)[0]->name);
}

/* The Hugging Face class name for APR's hf_architecture into buf. */
static const char *apr_hf_class(const struct cv *c, char *buf, size_t cap)
{
    const char *cls = hf_class(c->ck.arch);
    const struct model_kv *arr;

    if (cls)
        return cls;
    arr = meta_find(&c->ck, "hf.config.architectures");
    if (arr && arr->val.type == MV_ARR && arr->val.v.arr.strs && arr->val.v.arr.n) {
        struct slice hc = arr->val.v.arr.strs[0];
        snprintf(buf, cap, "%.*s", (int)(hc.n < 70 ? hc.n : 70), hc.p);
    } else {
        snprintf(buf, cap, "%sForCausalLM", c->ck.arch[0] ? c->ck.arch : "Unknown");
        if (buf[0] >= 'a' && buf[0] <= 'z')
            buf[0] = (char)(buf[0] - 'a' + 'A');
    }
    return buf;
}

/* aprender's typed hyperparameters (formats/meta.h meta_apr_out), in AprV2Metadata order. */
static void apr_hyper(const struct cv *c, struct json_w *w, uint64_t tok_n)
{
    uint64_t u, heads = 0, hidden = 0;
    int qwen = strncmp(c->ck.arch, "qwen", 4) == 0;
    double f;

    meta_aget_u64(&c->ck, "attention.head_count", &heads);
    meta_aget_u64(&c->ck, "embedding_length", &hidden);
    for (size_t i = 0; i < meta_apr_out_n; i++) {
        const struct meta_apr_field *hf = &meta_apr_out[i];
        if (hf->kind == MAK_ROPE_TYPE) {
            json_w_key(w, "rope_type");
            json_w_u64(w, qwen ? 2 : 0);
            continue;
        }
        if (hf->kind == MAK_HEAD_DIM) {
            if (meta_aget_u64(&c->ck, "attention.key_length", &u) &&
                meta_aget_u64(&c->ck, "rope.dimension_count", &u) &&
                meta_get_u64(&c->ck, "hf.config.head_dim", &u)) {
                if (!heads || !hidden)
                    continue;
                u = hidden / heads;
            }
            json_w_key(w, "head_dim");
            json_w_u64(w, u);
            continue;
        }
        if (hf->kind == MAK_F32) {
            if (meta_aget_f64(&c->ck, hf->gguf, &f))
                continue;
            json_w_key(w, hf->apr);
            json_w_f32(w, (float)f);
            continue;
        }
        if (meta_aget_u64(&c->ck, hf->gguf, &u)) {
            if (strcmp(hf->apr, "vocab_size") == 0 && tok_n)
                u = tok_n;
            else if (strcmp(hf->apr, "num_kv_heads") == 0 && heads)
                u = heads;
            else
                continue;
        }
        json_w_key(w, hf->apr);
        json_w_u64(w, u);
    }
}

/* aprender's typed fields, in AprV2Metadata order. */
static void apr_typed(const struct cv *c, struct json_w *w, uint64_t tok_n)
{
    const char *fmt = c->src.format == MODEL_FMT_GGUF ? "gguf"
                    : c->src.format == MODEL_FMT_APR ? "apr" : "safetensors";
    uint64_t params = 0, bytes = 0;
    char capcls[80];
    struct slice gname;

    for (uint64_t i = 0; i < c->n_tp; i++) {
        params += (uint64_t)c->out_m.tensors[i].n_elems;
        bytes += c->out_m.tensors[i].size;
    }
    json_w_key(w, "model_type");
    json_w_str(w, c->ck.arch);
    /* the model's own name and version (general.*), never invented: the architecture
     * names the model only when it has no name */
    if (meta_get_str(&c->ck, "general.name", &gname) == 0) {
        json_w_key(w, "name");
        json_w_str_n(w, gname.p, gname.n);
    } else {
        json_w_key(w, "name");
        json_w_str(w, c->ck.arch);
    }
    w_kv_str(w, "description", c, "general.description", 0);
    w_kv_str(w, "author", c, "general.author", 0);
    w_kv_str(w, "license", c, "general.license", 1);
    json_w_key(w, "data_source");
    json_w_null(w);
    json_w_key(w, "data_license");
    json_w_null(w);
    w_kv_str(w, "version", c, "general.version", 0);
    json_w_key(w, "source");
    json_w_str(w, path_base(c->in, NULL));
    json_w_key(w, "original_format");
    json_w_str(w, fmt);
    if (c->o->timestamp || getenv("SOURCE_DATE_EPOCH")) {
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        time_t t = sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
        struct tm tm;
        char ts[40];
        gmtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_w_key(w, "created_at");
        json_w_str(w, ts);
    }
    json_w_key(w, "total_size");
    json_w_u64(w, bytes);
    json_w_key(w, "param_count");
    json_w_u64(w, params);
    w_kv_str(w, "chat_template", c, "tokenizer.chat_template", 0);
    json_w_key(w, "architecture");
    json_w_str(w, c->ck.arch);
    json_w_key(w, "hf_architecture");
    json_w_str(w, apr_hf_class(c, capcls, sizeof capcls));
    json_w_key(w, "hf_model_type");
    json_w_str(w, c->ck.arch);
    apr_hyper(c, w, tok_n);
}

/* Custom keys: our tensor order, aprender's tensor_shapes (sorted by name). */
static int apr_tensors(const struct cv *c, struct json_w *w, struct err *e)
{
    const struct tplan **ord = calloc(c->n_tp + 1, sizeof *ord);

    if (!ord)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < c->n_tp; i++)
        ord[i] = &c->tp[i];
    qsort(ord, c->n_tp, sizeof *ord, tensor_cmp);
    json_w_key(w, "apr_tools.tensor_order");
    json_w_arr(w);
    for (uint64_t i = 0; i < c->n_tp; i++)
        if (!c->tp[i].tied_copy)
            json_w_str(w, c->tp[i].name);
    json_w_arr_end(w);
    json_w_key(w, "tensor_shapes");
    json_w_obj(w);
    for (uint64_t i = 0; i < c->n_tp; i++) {
        json_w_key(w, ord[i]->name);
        json_w_arr(w);
        for (int k = 0; k < ord[i]->src->n_dims; k++)
            json_w_u64(w, (uint64_t)ord[i]->src->shape[k]);
        json_w_arr_end(w);
    }
    json_w_obj_end(w);
    free(ord);
    return 0;
}

/* Custom keys: aprender's tokenizer.* from tokenizer.ggml.* (toks: the token list). */
static void apr_tokenizer(const struct cv *c, struct json_w *w, const struct model_kv *toks)
{
    const struct model_kv *sc = meta_find(&c->ck, "tokenizer.ggml.scores");
    struct slice tm;

    json_w_key(w, "tokenizer.vocabulary");
    meta_json_val(w, &toks->val);
    json_w_key(w, "tokenizer.vocab_size");
    json_w_u64(w, toks->val.v.arr.n);
    if (meta_get_str(&c->ck, "tokenizer.ggml.model", &tm) == 0) {
        json_w_key(w, "tokenizer.model");
        json_w_str_n(w, tm.p, tm.n);
        json_w_key(w, "tokenizer.model_type");
        json_w_str(w, slice_eq_cstr(tm, "gpt2") ? "bpe" : slice_eq_cstr(tm, "llama") ? "spm"
                                                       : "unknown");
    }
    w_kv_ck(w, "tokenizer.bos_token_id", c, "tokenizer.ggml.bos_token_id");
    w_kv_ck(w, "tokenizer.eos_token_id", c, "tokenizer.ggml.eos_token_id");
    w_kv_ck(w, "tokenizer.unknown_token_id", c, "tokenizer.ggml.unknown_token_id");
    w_kv_ck(w, "tokenizer.padding_token_id", c, "tokenizer.ggml.padding_token_id");
    w_kv_str(w, "tokenizer.pre_type", c, "tokenizer.ggml.pre", 0);
    w_kv_ck(w, "tokenizer.merges", c, "tokenizer.ggml.merges");
    w_kv_ck(w, "tokenizer.token_type", c, "tokenizer.ggml.token_type");
    if (sc && sc->val.type == MV_ARR && meta_arr_all_finite(&sc->val))
        w_kv_ck(w, "tokenizer.scores", c, "tokenizer.ggml.scores");
    w_kv_ck(w, "tokenizer.add_bos_token", c, "tokenizer.ggml.add_bos_token");
    w_kv_ck(w, "tokenizer.add_eos_token", c, "tokenizer.ggml.add_eos_token");
    w_kv_str(w, "tokenizer.chat_template", c, "tokenizer.chat_template", 0);
}

/* Provenance keys, then the typed namespace (formats/meta.h) of the canonical list;
 * token arrays that aprender's keys already hold are written as references. */
static void apr_provenance_ns(const struct cv *c, struct json_w *w, int have_toks)
{
    json_w_key(w, "source_file");
    json_w_str(w, path_base(c->in, NULL));
    json_w_key(w, "source_sha256");
    json_w_str(w, c->sha_hex);
    json_w_key(w, "converter");
    json_w_str(w, CONVERT_NAME " " APR_TOOLS_VERSION);
    if (c->use_ext) {
        json_w_key(w, EXT_KEY);
        json_w_str(w, EXT_VALUE);
    }
    json_w_key(w, META_NS_KEY);
    json_w_arr(w);
    for (uint64_t i = 0; i < c->ck.n; i++) {
        const struct model_kv *k = &c->ck.kv[i];
        const char *ref = NULL;
        if (slice_eq_cstr(k->key, NARROW_KEY))
            continue;   /* about the source's tensors; GGUF output writes its own */
        if (have_toks && k->val.type == MV_ARR) {
            if (slice_eq_cstr(k->key, "tokenizer.ggml.tokens"))
                ref = "tokenizer.vocabulary";
            else if (slice_eq_cstr(k->key, "tokenizer.ggml.merges") && k->val.v.arr.strs)
                ref = "tokenizer.merges";
            else if (slice_eq_cstr(k->key, "tokenizer.ggml.token_type") && k->val.v.arr.raw)
                ref = "tokenizer.token_type";
            else if (slice_eq_cstr(k->key, "tokenizer.ggml.scores") && meta_arr_all_finite(&k->val))
                ref = "tokenizer.scores";
        }
        meta_ns_encode(w, &k->key, &k->val, ref);
    }
    json_w_arr_end(w);
}

int cv_meta_apr(struct cv *c, struct err *e)
{
    struct sbuf b = SBUF_INIT(UINT32_MAX);
    struct json_w w;
    uint64_t cap = 0;
    int rc = -1;
    const struct model_kv *toks = meta_find(&c->ck, "tokenizer.ggml.tokens");

    if (!toks || toks->val.type != MV_ARR || !toks->val.v.arr.strs)
        toks = NULL;
    json_w_init(&w, &b, 0);
    json_w_obj(&w);
    apr_typed(c, &w, toks ? toks->val.v.arr.n : 0);
    if (apr_tensors(c, &w, e) == 0) {
        if (toks)
            apr_tokenizer(c, &w, toks);
        if (c->tied_apr) {
            json_w_key(&w, "tied_embeddings");
            json_w_bool(&w, 1);
        }
        apr_provenance_ns(c, &w, toks != NULL);
        json_w_obj_end(&w);
        rc = push_json(c, &b, "APR metadata", NULL, &cap, e);
    }
    sbuf_release(&b);
    return rc;
}
