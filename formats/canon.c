/*
 * canon.c - the canonical model metadata (see canon.h): the rule table, the derived
 * keys left out, and the value encoding.
 */
#include "canon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "../common/banned.h"

/*
 * THE table (apr-hash(1) MODEL HASH KEYS lists it; t4000 checks the page against the
 * lines below, so keep one rule per line in this form).  First match wins.
 */
const struct canon_rule canon_rules[] = {
    { "general.architecture", 1, "the architecture" },
    { "general.*", 0, "descriptive and provenance fields: name, author, license, url, description, file_type, quantization_version, alignment, source.*, ..." },
    { "split.*", 0, "how a GGUF is split into files" },
    { "apr_tools.*", 0, "apr-convert's provenance" },
    { "source_sha256", 0, "apr-convert's record of its source file" },
    { "hf.config.*", 0, "config.json as written; the reader maps what it changes onto {arch}.* and tokenizer.*" },
    { "safetensors.metadata.*", 0, "SafeTensors __metadata__ strings" },
    { "tokenizer.huggingface.json", 0, "tokenizer.json's text; its content counts as tokenizer.ggml.*" },
    { "quantize.*", 0, "llama-quantize's importance-matrix provenance" },
    { "{arch}.*", 1, "hyperparameters" },
    { "tokenizer.*", 1, "tokenizer (tokens, scores, types, merges, model, pre, special token ids, add_bos/add_eos, ...) and chat templates" },
    { "*", 1, "any other key" },
};
const size_t canon_rules_n = sizeof canon_rules / sizeof canon_rules[0];

static int rule_match(const char *pat, struct slice key, const char *arch)
{
    size_t pn = strlen(pat);

    if (strcmp(pat, "*") == 0)
        return 1;
    if (strncmp(pat, "{arch}.", 7) == 0) {
        size_t an = strlen(arch);
        return an > 0 && key.n > an + 1 && memcmp(key.p, arch, an) == 0 && key.p[an] == '.';
    }
    if (pn > 0 && pat[pn - 1] == '*')
        return key.n >= pn - 1 && memcmp(key.p, pat, pn - 1) == 0;
    return key.n == pn && memcmp(key.p, pat, pn) == 0;
}

const struct canon_rule *canon_rule_for(struct slice key, const char *arch)
{
    for (size_t i = 0; i < canon_rules_n; i++)
        if (rule_match(canon_rules[i].pattern, key, arch ? arch : ""))
            return &canon_rules[i];
    return &canon_rules[canon_rules_n - 1];
}

/* ---- the value encoding */

static int is_int(enum model_vtype t)
{
    return t == MV_U8 || t == MV_I8 || t == MV_U16 || t == MV_I16 || t == MV_U32 ||
           t == MV_I32 || t == MV_U64 || t == MV_I64;
}

static int is_signed(enum model_vtype t)
{
    return t == MV_I8 || t == MV_I16 || t == MV_I32 || t == MV_I64;
}

static void put(struct sha256 *h, const char *s)
{
    sha256_update(h, s, strlen(s));
}

static void put_float(struct sha256 *h, double d)
{
    float f = (float)d;
    uint32_t u;
    char buf[16];

    if (isnan(f))
        u = 0x7fc00000u;
    else
        memcpy(&u, &f, 4);
    snprintf(buf, sizeof buf, "f%08x;", (unsigned)u);
    put(h, buf);
}

static void put_str(struct sha256 *h, const char *p, size_t n)
{
    char buf[32];
    snprintf(buf, sizeof buf, "s%zu:", n);
    put(h, buf);
    sha256_update(h, p, n);
    put(h, ";");
}

static int cmp_kvp(const void *a, const void *b)
{
    const struct model_kv *x = *(const struct model_kv *const *)a;
    const struct model_kv *y = *(const struct model_kv *const *)b;
    return slice_cmp(x->key, y->key);
}

static int hash_arr(struct sha256 *h, const struct model_val *v, int depth, struct err *e)
{
    enum model_vtype et = v->v.arr.elem;
    char buf[48];

    snprintf(buf, sizeof buf, "a%llu:", (unsigned long long)v->v.arr.n);
    put(h, buf);
    for (uint64_t i = 0; i < v->v.arr.n; i++) {
        if (v->v.arr.raw) {
            if (et == MV_F32 || et == MV_F64)
                put_float(h, model_arr_get_f64(v, i));
            else if (et == MV_BOOL)
                put(h, model_arr_get_u64(v, i) ? "b1;" : "b0;");
            else if (is_signed(et)) {
                snprintf(buf, sizeof buf, "i%lld;", (long long)model_arr_get_i64(v, i));
                put(h, buf);
            } else {
                snprintf(buf, sizeof buf, "i%llu;", (unsigned long long)model_arr_get_u64(v, i));
                put(h, buf);
            }
        } else if (v->v.arr.strs && et == MV_STR) {
            put_str(h, v->v.arr.strs[i].p, v->v.arr.strs[i].n);
        } else if (v->v.arr.items) {
            if (canon_hash_val(h, &v->v.arr.items[i], depth + 1, e))
                return -1;
        } else {
            return ERR(e, ERR_INTERNAL, "metadata array without elements");
        }
    }
    put(h, ";");
    return 0;
}

int canon_hash_val(struct sha256 *h, const struct model_val *v, int depth, struct err *e)
{
    char buf[48];

    if (depth > 64)
        return ERR(e, ERR_LIMIT, "metadata nested deeper than 64 levels");
    if (is_int(v->type)) {
        if (is_signed(v->type))
            snprintf(buf, sizeof buf, "i%lld;", (long long)v->v.i);
        else
            snprintf(buf, sizeof buf, "i%llu;", (unsigned long long)v->v.u);
        put(h, buf);
        return 0;
    }
    switch (v->type) {
    case MV_BOOL:
        put(h, v->v.u ? "b1;" : "b0;");
        return 0;
    case MV_F32: case MV_F64:
        put_float(h, v->v.f);
        return 0;
    case MV_STR:
        put_str(h, v->v.s.p, v->v.s.n);
        return 0;
    case MV_ARR:
        return hash_arr(h, v, depth, e);
    case MV_OBJ: {
        const struct model_kv **s = malloc((v->v.obj.n ? v->v.obj.n : 1) * sizeof *s);
        int rc = 0;
        if (!s)
            return ERR(e, ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < v->v.obj.n; i++)
            s[i] = &v->v.obj.kv[i];
        qsort(s, v->v.obj.n, sizeof *s, cmp_kvp);
        snprintf(buf, sizeof buf, "o%llu:", (unsigned long long)v->v.obj.n);
        put(h, buf);
        for (uint64_t i = 0; i < v->v.obj.n && !rc; i++) {
            put_str(h, s[i]->key.p, s[i]->key.n);
            rc = canon_hash_val(h, &s[i]->val, depth + 1, e);
        }
        free(s);
        put(h, ";");
        return rc;
    }
    case MV_NULL:
    default:
        put(h, "n;");
        return 0;
    }
}

/* ---- the keys */

/* An integer value that is exactly want. */
static int int_is(const struct model_kv *kv, uint64_t want)
{
    if (!is_int(kv->val.type))
        return 0;
    if (is_signed(kv->val.type))
        return kv->val.v.i >= 0 && (uint64_t)kv->val.v.i == want;
    return kv->val.v.u == want;
}

/* Whether kv holds the value its format would derive anyway (canon.h). */
static int derived_default(const struct meta *mt, const struct model_kv *kv)
{
    uint64_t embd, heads, klen;
    const struct model_kv *tok;
    size_t an = strlen(mt->arch);
    struct slice rest;

    if (slice_eq_cstr(kv->key, "tokenizer.ggml.model"))   /* llama.cpp's "no vocabulary" */
        return kv->val.type == MV_STR && slice_eq_cstr(kv->val.v.s, "none");
    if (!an || kv->key.n <= an + 1 || memcmp(kv->key.p, mt->arch, an) != 0)
        return 0;
    rest.p = kv->key.p + an + 1;
    rest.n = kv->key.n - an - 1;
    klen = 0;
    if (meta_aget_u64(mt, "attention.key_length", &klen) != 0 &&
        meta_aget_u64(mt, "embedding_length", &embd) == 0 &&
        meta_aget_u64(mt, "attention.head_count", &heads) == 0 && heads > 0 &&
        embd % heads == 0)
        klen = embd / heads;
    if (slice_eq_cstr(rest, "attention.key_length") ||
        slice_eq_cstr(rest, "attention.value_length")) {
        if (meta_aget_u64(mt, "embedding_length", &embd) != 0 ||
            meta_aget_u64(mt, "attention.head_count", &heads) != 0 || heads == 0 ||
            embd % heads != 0)
            return 0;
        return int_is(kv, embd / heads);
    }
    if (slice_eq_cstr(rest, "rope.dimension_count"))
        return klen > 0 && int_is(kv, klen);
    if (slice_eq_cstr(rest, "vocab_size")) {
        tok = meta_find(mt, "tokenizer.ggml.tokens");
        return tok && tok->val.type == MV_ARR && int_is(kv, tok->val.v.arr.n);
    }
    return 0;
}

int canon_key_cmp(const void *a, const void *b)
{
    const struct canon_key *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

void canon_keys_free(struct canon_key *k, uint64_t n)
{
    for (uint64_t i = 0; k && i < n; i++)
        free(k[i].key);
    free(k);
}

int canon_keys(const struct model *m, struct canon_key **out, uint64_t *n_out, struct err *e)
{
    struct meta mt;
    struct canon_key *k;
    uint64_t n = 0;

    *out = NULL;
    *n_out = 0;
    memset(&mt, 0, sizeof mt);
    if (meta_from_model(m, &mt, e))
        return -1;
    k = calloc(mt.n ? mt.n : 1, sizeof *k);
    if (!k) {
        meta_free(&mt);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    for (uint64_t i = 0; i < mt.n; i++) {
        const struct model_kv *kv = &mt.kv[i];
        struct sha256 h;
        if (!canon_rule_for(kv->key, mt.arch)->counts || derived_default(&mt, kv))
            continue;
        k[n].key = malloc(kv->key.n + 1);
        if (!k[n].key) {
            ERR(e, ERR_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(k[n].key, kv->key.p, kv->key.n);
        k[n].key[kv->key.n] = 0;
        k[n].n = kv->key.n;
        n++;
        if (sha256_init(&h, e)) {
            sha256_release(&h);
            goto fail;
        }
        if (canon_hash_val(&h, &kv->val, 0, e)) {
            sha256_release(&h);
            goto fail;
        }
        if (sha256_final(&h, k[n - 1].sha, e))
            goto fail;
    }
    meta_free(&mt);
    qsort(k, n, sizeof *k, canon_key_cmp);
    *out = k;
    *n_out = n;
    return 0;
fail:
    meta_free(&mt);
    canon_keys_free(k, n);
    return -1;
}
