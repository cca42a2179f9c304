/*
 * meta.c - the canonical metadata layer (see meta.h): the list, its getters, the
 * apr_tools.kv codec and aprender's fields.  One table per direction for aprender's
 * typed hyperparameters (meta_apr_in, meta_apr_out).
 */
#include "meta.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/rd.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "model_json.h"
#include "../common/banned.h"

/* ---- aprender's typed fields (apr.md 2 and 3) */

const struct meta_apr_field meta_apr_in[] = {
    { "max_position_embeddings", "context_length",                   MAK_U32 },
    { "hidden_size",             "embedding_length",                 MAK_U32 },
    { "num_layers",              "block_count",                      MAK_U32 },
    { "intermediate_size",       "feed_forward_length",              MAK_U32 },
    { "num_heads",               "attention.head_count",             MAK_U32 },
    { "num_kv_heads",            "attention.head_count_kv",          MAK_U32 },
    { "rope_theta",              "rope.freq_base",                   MAK_F32 },
    { "rms_norm_eps",            "attention.layer_norm_rms_epsilon", MAK_F32 },
    { "vocab_size",              "vocab_size",                       MAK_U32 },
    { "head_dim",                "rope.dimension_count",             MAK_U32 },
};
const size_t meta_apr_in_n = sizeof meta_apr_in / sizeof meta_apr_in[0];

const struct meta_apr_field meta_apr_out[] = {
    { "hidden_size",             "embedding_length",                 MAK_U32 },
    { "num_layers",              "block_count",                      MAK_U32 },
    { "num_heads",               "attention.head_count",             MAK_U32 },
    { "num_kv_heads",            "attention.head_count_kv",          MAK_U32 },
    { "vocab_size",              "vocab_size",                       MAK_U32 },
    { "intermediate_size",       "feed_forward_length",              MAK_U32 },
    { "max_position_embeddings", "context_length",                   MAK_U32 },
    { "rope_theta",              "rope.freq_base",                   MAK_F32 },
    { "rope_type",               NULL,                               MAK_ROPE_TYPE },
    { "rms_norm_eps",            "attention.layer_norm_rms_epsilon", MAK_F32 },
    { "head_dim",                NULL,                               MAK_HEAD_DIM },
};
const size_t meta_apr_out_n = sizeof meta_apr_out / sizeof meta_apr_out[0];

/* ---- the list */

void meta_free(struct meta *mt)
{
    if (!mt)
        return;
    for (uint64_t i = 0; i < mt->n; i++)
        if (mt->own[i])
            model__val_free(&mt->kv[i].val);
    free(mt->kv);
    free(mt->own);
    model_close(&mt->store);
    memset(mt, 0, sizeof *mt);
}

int meta_push(struct meta *mt, struct slice key, const struct model_val *v, int own,
              struct err *e)
{
    if (mt->n == mt->cap) {
        uint64_t nc = mt->cap ? mt->cap * 2 : 64;
        struct model_kv *k = realloc(mt->kv, nc * sizeof *k);
        uint8_t *o = k ? realloc(mt->own, nc) : NULL;
        if (!k || !o) {
            if (k)
                mt->kv = k;
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        mt->kv = k;
        mt->own = o;
        mt->cap = nc;
    }
    memset(&mt->kv[mt->n], 0, sizeof mt->kv[mt->n]);
    mt->kv[mt->n].key = key;
    mt->kv[mt->n].val = *v;
    mt->own[mt->n] = (uint8_t)own;
    mt->n++;
    return 0;
}

const struct model_kv *meta_find(const struct meta *mt, const char *key)
{
    for (uint64_t i = 0; i < mt->n; i++)
        if (slice_eq_cstr(mt->kv[i].key, key))
            return &mt->kv[i];
    return NULL;
}

int meta_get_u64(const struct meta *mt, const char *key, uint64_t *v)
{
    const struct model_kv *kv = meta_find(mt, key);
    if (!kv)
        return -1;
    switch (kv->val.type) {
    case MV_U8: case MV_U16: case MV_U32: case MV_U64: case MV_BOOL:
        *v = kv->val.v.u;
        return 0;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64:
        if (kv->val.v.i < 0)
            return -1;
        *v = (uint64_t)kv->val.v.i;
        return 0;
    case MV_F64:
        if (kv->val.v.f >= 0 && kv->val.v.f < 1e18 && kv->val.v.f == floor(kv->val.v.f)) {
            *v = (uint64_t)kv->val.v.f;
            return 0;
        }
        return -1;
    default:
        return -1;
    }
}

int meta_get_f64(const struct meta *mt, const char *key, double *v)
{
    const struct model_kv *kv = meta_find(mt, key);
    uint64_t u;
    if (kv && (kv->val.type == MV_F32 || kv->val.type == MV_F64)) {
        *v = kv->val.v.f;
        return 0;
    }
    if (meta_get_u64(mt, key, &u) == 0) {
        *v = (double)u;
        return 0;
    }
    return -1;
}

int meta_get_str(const struct meta *mt, const char *key, struct slice *v)
{
    const struct model_kv *kv = meta_find(mt, key);
    if (!kv || kv->val.type != MV_STR)
        return -1;
    *v = kv->val.v.s;
    return 0;
}

const char *meta_akey(const struct meta *mt, const char *rest, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s", mt->arch, rest);
    return buf;
}

int meta_aget_u64(const struct meta *mt, const char *rest, uint64_t *v)
{
    char b[160];
    return meta_get_u64(mt, meta_akey(mt, rest, b, sizeof b), v);
}

int meta_aget_f64(const struct meta *mt, const char *rest, double *v)
{
    char b[160];
    return meta_get_f64(mt, meta_akey(mt, rest, b, sizeof b), v);
}

/* Arena copy of a C string as a slice. */
static int kstr(struct meta *mt, const char *s, struct slice *out, struct err *e)
{
    return model__strdup(&mt->store, s, strlen(s), out, e);
}

int meta_add_u(struct meta *mt, const char *key, enum model_vtype t, uint64_t u, struct err *e)
{
    struct model_val v = { .type = t };
    struct slice k;
    v.v.u = u;
    return kstr(mt, key, &k, e) || meta_push(mt, k, &v, 0, e);
}

int meta_add_f32(struct meta *mt, const char *key, double f, struct err *e)
{
    struct model_val v = { .type = MV_F32 };
    struct slice k;
    v.v.f = (double)(float)f;
    return kstr(mt, key, &k, e) || meta_push(mt, k, &v, 0, e);
}

int meta_add_str(struct meta *mt, const char *key, struct slice s, struct err *e)
{
    struct model_val v = { .type = MV_STR };
    struct slice k;
    v.v.s = s;
    return kstr(mt, key, &k, e) || meta_push(mt, k, &v, 0, e);
}


/* ---- the namespace: decoding (APR source) */

static enum model_vtype vtype_parse(struct slice s)
{
    for (int t = 0; t < MV_COUNT; t++)
        if (slice_eq_cstr(s, model_vtype_name((enum model_vtype)t)))
            return (enum model_vtype)t;
    return MV_COUNT;
}

static const struct model_val *obj_get(const struct model_val *o, const char *key)
{
    if (o->type != MV_OBJ)
        return NULL;
    for (uint64_t i = 0; i < o->v.obj.n; i++)
        if (slice_eq_cstr(o->v.obj.kv[i].key, key))
            return &o->v.obj.kv[i].val;
    return NULL;
}

/* A JSON number/string of the APR metadata as a double ("nan", "inf", "-inf" too). */
static int num_f64(const struct model_val *v, double *f)
{
    switch (v->type) {
    case MV_F32: case MV_F64: *f = v->v.f; return 0;
    case MV_U8: case MV_U16: case MV_U32: case MV_U64: *f = (double)v->v.u; return 0;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64: *f = (double)v->v.i; return 0;
    case MV_STR:
        if (slice_eq_cstr(v->v.s, "nan")) { *f = NAN; return 0; }
        if (slice_eq_cstr(v->v.s, "inf")) { *f = INFINITY; return 0; }
        if (slice_eq_cstr(v->v.s, "-inf")) { *f = -INFINITY; return 0; }
        return -1;
    default:
        return -1;
    }
}

static int num_int(const struct model_val *v, enum model_vtype t, uint64_t *u)
{
    static const uint64_t umax[] = { [MV_U8] = 0xff, [MV_U16] = 0xffff,
                                     [MV_U32] = 0xffffffffu, [MV_U64] = UINT64_MAX,
                                     [MV_BOOL] = 1 };
    static const int64_t imin[] = { [MV_I8] = INT8_MIN, [MV_I16] = INT16_MIN,
                                    [MV_I32] = INT32_MIN, [MV_I64] = INT64_MIN };
    static const int64_t imax[] = { [MV_I8] = INT8_MAX, [MV_I16] = INT16_MAX,
                                    [MV_I32] = INT32_MAX, [MV_I64] = INT64_MAX };
    int is_signed = t == MV_I8 || t == MV_I16 || t == MV_I32 || t == MV_I64;
    int64_t i;

    if (v->type == MV_BOOL && t == MV_BOOL) {
        *u = v->v.u;
        return 0;
    }
    if (v->type == MV_U8 || v->type == MV_U16 || v->type == MV_U32 || v->type == MV_U64) {
        if (is_signed ? v->v.u > (uint64_t)imax[t] : v->v.u > umax[t])
            return -1;
        *u = v->v.u;
        return 0;
    }
    if (v->type == MV_I8 || v->type == MV_I16 || v->type == MV_I32 || v->type == MV_I64) {
        i = v->v.i;
        if (!is_signed ? i < 0 || (uint64_t)i > umax[t] : i < imin[t] || i > imax[t])
            return -1;
        *u = (uint64_t)i;
        return 0;
    }
    return -1;
}

/* Pack element j of type t (from a JSON value) into p. */
static int pack_elem(uint8_t *p, enum model_vtype t, const struct model_val *v)
{
    uint64_t u;
    double f;

    if (t == MV_F32 || t == MV_F64) {
        if (num_f64(v, &f))
            return -1;
        if (t == MV_F32) {
            float x = (float)f;
            uint32_t b;
            memcpy(&b, &x, 4);
            put_le32(p, b);
        } else {
            uint64_t b;
            memcpy(&b, &f, 8);
            put_le64(p, b);
        }
        return 0;
    }
    if (num_int(v, t, &u))
        return -1;
    switch (model_vtype_size(t)) {
    case 1: p[0] = (uint8_t)u; break;
    case 2: put_le16(p, (uint16_t)u); break;
    case 4: put_le32(p, (uint32_t)u); break;
    default: put_le64(p, u); break;
    }
    return 0;
}

/* The i-th element of a JSON array value as a model_val (raw-packed or items). */
static void arr_elem(const struct model_val *a, uint64_t i, struct model_val *out)
{
    memset(out, 0, sizeof *out);
    if (a->v.arr.items) {
        *out = a->v.arr.items[i];
        return;
    }
    if (a->v.arr.strs) {
        out->type = MV_STR;
        out->v.s = a->v.arr.strs[i];
        return;
    }
    out->type = a->v.arr.elem;
    switch (a->v.arr.elem) {
    case MV_F32: case MV_F64: out->v.f = model_arr_get_f64(a, i); break;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64: out->v.i = model_arr_get_i64(a, i); break;
    default: out->v.u = model_arr_get_u64(a, i); break;
    }
}

static int ns_decode(struct meta *c, const struct model_val *ent, struct model_val *out, int depth,
                     struct err *e);

/* Decode a JSON array (src) into an array value of element type et. */
static int ns_decode_arr(struct meta *c, const struct model_val *src, enum model_vtype et,
                         struct model_val *out, int depth, struct err *e)
{
    uint64_t n = src->v.arr.n;

    out->type = MV_ARR;
    out->v.arr.elem = et;
    out->v.arr.n = n;
    if (et == MV_STR) {
        out->v.arr.strs = calloc(n ? n : 1, sizeof *out->v.arr.strs);
        if (!out->v.arr.strs)
            return ERR(e, ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < n; i++) {
            struct model_val x;
            arr_elem(src, i, &x);
            if (x.type != MV_STR)
                return ERR(e, ERR_FORMAT, "%s: element %" PRIu64 " is not a string", META_NS_KEY, i);
            out->v.arr.strs[i] = x.v.s;
        }
        return 0;
    }
    if (model_vtype_size(et)) {
        size_t es = model_vtype_size(et);
        uint64_t bytes;
        uint8_t *raw;
        if (sz_mul(n, es, &bytes))
            return ERR(e, ERR_LIMIT, "%s: array too large", META_NS_KEY);
        raw = model__alloc(&c->store, bytes ? (size_t)bytes : 1, e);
        if (!raw)
            return -1;
        for (uint64_t i = 0; i < n; i++) {
            struct model_val x;
            arr_elem(src, i, &x);
            if (pack_elem(raw + i * es, et, &x))
                return ERR(e, ERR_FORMAT, "%s: element %" PRIu64 " is not a %s", META_NS_KEY, i,
                           model_vtype_name(et));
        }
        out->v.arr.raw = raw;
        return 0;
    }
    /* arrays of arrays / objects / mixed: entries without "k" */
    out->v.arr.items = calloc(n ? n : 1, sizeof *out->v.arr.items);
    if (!out->v.arr.items)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        struct model_val x;
        arr_elem(src, i, &x);
        out->v.arr.items[i].type = MV_NULL;
        if (ns_decode(c, &x, &out->v.arr.items[i], depth + 1, e))
            return -1;
    }
    return 0;
}

static int ns_decode(struct meta *c, const struct model_val *ent, struct model_val *out, int depth,
                     struct err *e)
{
    const struct model_val *t = obj_get(ent, "t"), *v = obj_get(ent, "v"), *r = obj_get(ent, "ref");
    enum model_vtype ty;
    uint64_t u;

    memset(out, 0, sizeof *out);
    out->type = MV_NULL;
    if (depth > 50)
        return ERR(e, ERR_LIMIT, "%s: nested too deep", META_NS_KEY);
    if (!t || t->type != MV_STR || (ty = vtype_parse(t->v.s)) == MV_COUNT)
        return ERR(e, ERR_FORMAT, "%s: entry without a valid type", META_NS_KEY);
    if (r && r->type == MV_STR) {
        char key[256];
        const struct model_kv *kv;
        snprintf(key, sizeof key, "%.*s", (int)(r->v.s.n > 200 ? 200 : r->v.s.n), r->v.s.p);
        kv = model_kv_find(c->src, key);
        if (!kv)
            return ERR(e, ERR_FORMAT, "%s: ref '%s' is missing", META_NS_KEY, key);
        v = &kv->val;
    }
    if (!v && ty != MV_NULL)
        return ERR(e, ERR_FORMAT, "%s: entry without a value", META_NS_KEY);
    switch (ty) {
    case MV_NULL:
        return 0;
    case MV_STR:
        if (v->type != MV_STR)
            return ERR(e, ERR_FORMAT, "%s: value is not a string", META_NS_KEY);
        out->type = MV_STR;
        out->v.s = v->v.s;
        return 0;
    case MV_F32: case MV_F64: {
        double f;
        if (num_f64(v, &f))
            return ERR(e, ERR_FORMAT, "%s: value is not a number", META_NS_KEY);
        out->type = ty;
        out->v.f = ty == MV_F32 ? (double)(float)f : f;
        return 0;
    }
    case MV_OBJ:
        if (v->type != MV_ARR)
            return ERR(e, ERR_FORMAT, "%s: object value is not an entry list", META_NS_KEY);
        out->type = MV_OBJ;
        out->v.obj.kv = calloc(v->v.arr.n ? v->v.arr.n : 1, sizeof *out->v.obj.kv);
        if (!out->v.obj.kv)
            return ERR(e, ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            struct model_val x;
            const struct model_val *k;
            arr_elem(v, i, &x);
            k = obj_get(&x, "k");
            if (!k || k->type != MV_STR)
                return ERR(e, ERR_FORMAT, "%s: object member without a key", META_NS_KEY);
            out->v.obj.kv[i].key = k->v.s;
            out->v.obj.n = i + 1;
            if (ns_decode(c, &x, &out->v.obj.kv[i].val, depth + 1, e))
                return -1;
        }
        return 0;
    case MV_ARR: {
        const struct model_val *el = obj_get(ent, "e");
        enum model_vtype et;
        if (!el || el->type != MV_STR || (et = vtype_parse(el->v.s)) == MV_COUNT)
            return ERR(e, ERR_FORMAT, "%s: array entry without an element type", META_NS_KEY);
        if (v->type != MV_ARR)
            return ERR(e, ERR_FORMAT, "%s: array value is not an array", META_NS_KEY);
        return ns_decode_arr(c, v, et, out, depth, e);
    }
    default:
        if (num_int(v, ty, &u))
            return ERR(e, ERR_FORMAT, "%s: value does not fit %s", META_NS_KEY, model_vtype_name(ty));
        out->type = ty;
        if (ty == MV_I8 || ty == MV_I16 || ty == MV_I32 || ty == MV_I64)
            out->v.i = (int64_t)u;
        else
            out->v.u = u;
        return 0;
    }
}

/* ---- the namespace: encoding (APR output) */

static void w_float(struct json_w *w, double f, int is_f32)
{
    if (isnan(f))
        json_w_str(w, "nan");
    else if (isinf(f))
        json_w_str(w, f < 0 ? "-inf" : "inf");
    else if (is_f32)
        json_w_f32(w, (float)f);
    else
        json_w_f64(w, f);
}

static void w_scalar(struct json_w *w, const struct model_val *v)
{
    switch (v->type) {
    case MV_F32: w_float(w, v->v.f, 1); break;
    case MV_F64: w_float(w, v->v.f, 0); break;
    case MV_BOOL: json_w_bool(w, v->v.u != 0); break;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64: json_w_i64(w, v->v.i); break;
    case MV_STR: json_w_str_n(w, v->v.s.p, v->v.s.n); break;
    case MV_NULL: json_w_null(w); break;
    default: json_w_u64(w, v->v.u); break;
    }
}

/* Write array a's elements as a plain JSON array. */
static void w_arr_plain(struct json_w *w, const struct model_val *a)
{
    json_w_arr(w);
    for (uint64_t i = 0; i < a->v.arr.n; i++) {
        struct model_val x;
        arr_elem(a, i, &x);
        w_scalar(w, &x);
    }
    json_w_arr_end(w);
}

int meta_arr_all_finite(const struct model_val *a)
{
    if (a->v.arr.elem != MV_F32 && a->v.arr.elem != MV_F64)
        return 1;
    if (!a->v.arr.raw)
        return 0;
    for (uint64_t i = 0; i < a->v.arr.n; i++)
        if (!isfinite(model_arr_get_f64(a, i)))
            return 0;
    return 1;
}

void meta_ns_encode(struct json_w *w, const struct slice *key, const struct model_val *v,
                      const char *ref)
{
    json_w_obj(w);
    if (key) {
        json_w_key(w, "k");
        json_w_str_n(w, key->p, key->n);
    }
    json_w_key(w, "t");
    json_w_str(w, model_vtype_name(v->type));
    if (v->type == MV_ARR) {
        json_w_key(w, "e");
        json_w_str(w, model_vtype_name(v->v.arr.elem));
    }
    if (ref) {
        json_w_key(w, "ref");
        json_w_str(w, ref);
    } else if (v->type == MV_OBJ) {
        json_w_key(w, "v");
        json_w_arr(w);
        for (uint64_t i = 0; i < v->v.obj.n; i++)
            meta_ns_encode(w, &v->v.obj.kv[i].key, &v->v.obj.kv[i].val, NULL);
        json_w_arr_end(w);
    } else if (v->type == MV_ARR && v->v.arr.items) {
        json_w_key(w, "v");
        json_w_arr(w);
        for (uint64_t i = 0; i < v->v.arr.n; i++)
            meta_ns_encode(w, NULL, &v->v.arr.items[i], NULL);
        json_w_arr_end(w);
    } else if (v->type == MV_ARR) {
        json_w_key(w, "v");
        w_arr_plain(w, v);
    } else if (v->type != MV_NULL) {
        json_w_key(w, "v");
        w_scalar(w, v);
    }
    json_w_obj_end(w);
}

void meta_json_val(struct json_w *w, const struct model_val *v)
{
    if (v->type == MV_ARR)
        w_arr_plain(w, v);
    else
        w_scalar(w, v);
}

/* ---- canonical metadata from each source */

/* Decode an aprender array field into a canonical key (skipped when absent). */
static int apr_arr(struct meta *c, const struct model_kv *src, enum model_vtype et,
                   const char *key, struct err *e)
{
    struct model_val v;
    struct slice k;

    if (!src || src->val.type != MV_ARR)
        return 0;
    memset(&v, 0, sizeof v);
    if (ns_decode_arr(c, &src->val, et, &v, 0, e) || kstr(c, key, &k, e) ||
        meta_push(c, k, &v, 1, e)) {
        model__val_free(&v);
        return -1;
    }
    return 0;
}

/* aprender's tokenizer keys (apr.md 3) as tokenizer.ggml.* */
static int canon_apr_tokenizer(struct meta *c, const struct model *s, struct err *e)
{
    static const struct { const char *apr, *gguf; enum model_vtype t; } tok[] = {
        { "tokenizer.bos_token_id",     "tokenizer.ggml.bos_token_id",     MV_U32 },
        { "tokenizer.eos_token_id",     "tokenizer.ggml.eos_token_id",     MV_U32 },
        { "tokenizer.padding_token_id", "tokenizer.ggml.padding_token_id", MV_U32 },
        { "tokenizer.unknown_token_id", "tokenizer.ggml.unknown_token_id", MV_U32 },
        { "tokenizer.add_bos_token",    "tokenizer.ggml.add_bos_token",    MV_BOOL },
        { "tokenizer.add_eos_token",    "tokenizer.ggml.add_eos_token",    MV_BOOL },
    };
    const struct model_kv *voc = model_kv_find(s, "tokenizer.vocabulary");
    const struct model_kv *mer = model_kv_find(s, "tokenizer.merges");
    struct slice sv;
    uint64_t u;

    if (voc && voc->val.type == MV_ARR) {
        if (model_kv_get_str(s, "tokenizer.model", &sv) &&
            model_kv_get_str(s, "tokenizer.model_type", &sv))
            sv = slice_from_cstr(mer ? "gpt2" : "llama");
        if (slice_eq_cstr(sv, "bpe") || slice_eq_cstr(sv, "BPE"))
            sv = slice_from_cstr("gpt2");
        if (meta_add_str(c, "tokenizer.ggml.model", sv, e))
            return -1;
        if (model_kv_get_str(s, "tokenizer.pre_type", &sv) == 0 &&
            meta_add_str(c, "tokenizer.ggml.pre", sv, e))
            return -1;
        if (apr_arr(c, voc, MV_STR, "tokenizer.ggml.tokens", e) ||
            apr_arr(c, model_kv_find(s, "tokenizer.scores"), MV_F32, "tokenizer.ggml.scores", e) ||
            apr_arr(c, model_kv_find(s, "tokenizer.token_type"), MV_I32,
                    "tokenizer.ggml.token_type", e) ||
            apr_arr(c, mer, MV_STR, "tokenizer.ggml.merges", e))
            return -1;
    }
    for (size_t i = 0; i < sizeof tok / sizeof *tok; i++) {
        const struct model_kv *kv = model_kv_find(s, tok[i].apr);
        if (kv && kv->val.type == MV_BOOL && tok[i].t == MV_BOOL) {
            if (meta_add_u(c, tok[i].gguf, MV_BOOL, kv->val.v.u, e))
                return -1;
        } else if (tok[i].t == MV_U32 && model_kv_get_u64(s, tok[i].apr, &u) == 0 &&
                   u <= UINT32_MAX && meta_add_u(c, tok[i].gguf, MV_U32, u, e)) {
            return -1;
        }
    }
    if ((model_kv_get_str(s, "chat_template", &sv) == 0 ||
         model_kv_get_str(s, "tokenizer.chat_template", &sv) == 0) &&
        meta_add_str(c, "tokenizer.chat_template", sv, e))
        return -1;
    return 0;
}

/* An aprender-written APR (no namespace): GGUF keys from its fields (meta_apr_in). */
static int canon_from_apr_fields(struct meta *c, const struct model *s, struct err *e)
{
    static const struct { const char *apr, *gguf; } gen[] = {
        { "name", "general.name" }, { "author", "general.author" },
        { "license", "general.license" }, { "description", "general.description" },
    };
    const struct model_kv *tied;
    struct slice a, sv;
    char key[160];
    uint64_t u;
    double f;

    if (model_kv_get_str(s, "architecture", &a) && model_kv_get_str(s, "model_type", &a))
        a = slice_from_cstr("llama");
    snprintf(c->arch, sizeof c->arch, "%.*s", (int)(a.n < 60 ? a.n : 60), a.p);
    if (meta_add_str(c, "general.architecture", a, e))
        return -1;
    for (size_t i = 0; i < sizeof gen / sizeof *gen; i++)
        if (model_kv_get_str(s, gen[i].apr, &sv) == 0 && meta_add_str(c, gen[i].gguf, sv, e))
            return -1;
    for (size_t i = 0; i < meta_apr_in_n; i++) {
        meta_akey(c, meta_apr_in[i].gguf, key, sizeof key);
        if (meta_apr_in[i].kind == MAK_F32) {
            if (model_kv_get_f64(s, meta_apr_in[i].apr, &f) == 0 && meta_add_f32(c, key, f, e))
                return -1;
        } else if (model_kv_get_u64(s, meta_apr_in[i].apr, &u) == 0 && u <= UINT32_MAX &&
                   meta_add_u(c, key, MV_U32, u, e)) {
            return -1;
        }
    }
    if (canon_apr_tokenizer(c, s, e))
        return -1;
    tied = model_kv_find(s, "tied_embeddings");
    if (tied && tied->val.type == MV_BOOL && tied->val.v.u)
        c->apr_tied = 1;
    return 0;
}

/* The namespace: every entry back with its exact type. */
static int canon_from_ns(struct meta *c, const struct model *m, const struct model_kv *ns,
                         struct err *e)
{
    if (ns->val.type != MV_ARR)
        return ERR(e, ERR_FORMAT, "%s: '%s' is not an array", m->path, META_NS_KEY);
    for (uint64_t i = 0; i < ns->val.v.arr.n; i++) {
        struct model_val x, v;
        const struct model_val *k;
        arr_elem(&ns->val, i, &x);
        k = obj_get(&x, "k");
        if (!k || k->type != MV_STR)
            return ERR(e, ERR_FORMAT, "%s: '%s' entry %" PRIu64 " has no key", m->path,
                       META_NS_KEY, i);
        if (ns_decode(c, &x, &v, 0, e)) {
            model__val_free(&v);
            err_prefix(e, "%s: key '%.*s'", m->path, (int)(k->v.s.n > 100 ? 100 : k->v.s.n),
                       k->v.s.p);
            return -1;
        }
        if (meta_push(c, k->v.s, &v, 1, e)) {
            model__val_free(&v);
            return -1;
        }
    }
    c->from_ns = 1;
    return 0;
}

/* SafeTensors: the namespace as JSON text in __metadata__ (meta.h, META_ST_NS_KEY), then
 * the file's other keys that it does not define (config.json beside it, other
 * __metadata__ entries). */
static int canon_from_st_ns(struct meta *c, const struct model *m, const struct model_kv *s,
                            struct err *e)
{
    struct model_kv tmp;
    struct json_doc d;
    int rc;

    if (s->val.type != MV_STR)
        return ERR(e, ERR_FORMAT, "%s: '%s' is not a string", m->path, META_ST_NS_KEY);
    if (json_parse(&d, s->val.v.s.p, (size_t)s->val.v.s.n, 0, NULL, e)) {
        err_prefix(e, "%s: __metadata__ '%s'", m->path, META_NS_KEY);
        return -1;
    }
    memset(&tmp, 0, sizeof tmp);
    tmp.key = s->key;
    rc = model__json_val(&c->store, &d, 0, &tmp.val, e);
    json_release(&d);
    if (rc == 0)
        rc = canon_from_ns(c, m, &tmp, e);
    model__val_free(&tmp.val);
    for (uint64_t i = 0; rc == 0 && i < m->n_kv; i++) {
        const struct model_kv *kv = &m->kv[i];
        uint64_t j = 0;
        if (kv == s)
            continue;
        while (j < c->n && !slice_eq(c->kv[j].key, kv->key))
            j++;
        if (j == c->n)
            rc = meta_push(c, kv->key, &kv->val, 0, e);
    }
    return rc;
}

int meta_from_model(const struct model *m, struct meta *c, struct err *e)
{
    const struct model_kv *st_ns = NULL;
    const struct model_kv *ns = NULL;
    struct slice a;
    int rc;

    memset(c, 0, sizeof *c);
    c->src = m;
    if (m->format == MODEL_FMT_APR)
        ns = model_kv_find(m, META_NS_KEY);
    else if (m->format == MODEL_FMT_SAFETENSORS)
        st_ns = model_kv_find(m, META_ST_NS_KEY);
    if (ns) {
        rc = canon_from_ns(c, m, ns, e);
    } else if (st_ns) {
        rc = canon_from_st_ns(c, m, st_ns, e);
    } else if (m->format == MODEL_FMT_APR) {
        rc = canon_from_apr_fields(c, m, e);
    } else {
        rc = 0;
        for (uint64_t i = 0; rc == 0 && i < m->n_kv; i++)
            rc = meta_push(c, m->kv[i].key, &m->kv[i].val, 0, e);
    }
    c->src = NULL;
    if (rc) {
        meta_free(c);
        return -1;
    }
    if (meta_get_str(c, "general.architecture", &a) == 0 && a.n > 0 && a.n < sizeof c->arch)
        snprintf(c->arch, sizeof c->arch, "%.*s", (int)a.n, a.p);
    return 0;
}

/* ---- the namespace in SafeTensors __metadata__ (meta.h) */

int meta_st_ns_text(const struct meta *mt, const char *skip, char **out, size_t *n,
                    struct err *e)
{
    /* The SafeTensors header is capped at 100 MB (st.h ST_MAX_HEADER); the text is
     * escaped once more inside it, so stay well under. */
    struct sbuf b = SBUF_INIT((size_t)64 << 20);
    struct json_w w;

    *out = NULL;
    *n = 0;
    json_w_init(&w, &b, 0);
    json_w_arr(&w);
    for (uint64_t i = 0; i < mt->n; i++) {
        const struct model_kv *k = &mt->kv[i];
        if (slice_starts_with(k->key, "safetensors.metadata.") ||
            (skip && slice_eq_cstr(k->key, skip)))
            continue;
        meta_ns_encode(&w, &k->key, &k->val, NULL);
    }
    json_w_arr_end(&w);
    if (sbuf_check(&b, "the metadata for __metadata__", e)) {
        sbuf_release(&b);
        return -1;
    }
    *out = b.p;
    *n = b.len;
    return 0;
}
