/*
 * model_json.c - JSON <-> model metadata values, for the formats whose metadata is
 * JSON (APR, SafeTensors __metadata__, config.json).
 *
 * Mapping rules (documented in apr.5):
 *   string -> STRING          true/false -> BOOL         null -> NULL
 *   integer literal -> UINT64 (or INT64 when negative)   other numbers -> FLOAT64
 *   object -> OBJECT (ordered, keys kept as written)
 *   array  -> ARRAY whose element type is the common type of its elements: all strings
 *             -> STRING; all integers -> UINT64 (INT64 if any is negative); numbers
 *             mixing integers and floats -> FLOAT64; all bools -> BOOL; all arrays ->
 *             ARRAY; all objects -> OBJECT; anything else (mixed, nulls) -> NULL,
 *             meaning "mixed": each item keeps its own type.
 * Fixed-size arrays are stored packed little-endian in the model's arena.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "../common/rd.h"
#include "model_json.h"
#include "../common/banned.h"

static int conv(struct model *m, const struct json_doc *d, int i, struct model_val *v, int depth,
                struct err *e);

/* 1 when the integer literal at i fits INT64 (negative) or UINT64. */
static int int_fits(const struct json_doc *d, int i)
{
    struct err e = ERR_INIT;
    int64_t x;
    uint64_t u;
    if (d->text[d->tok[i].start] == '-')
        return json_i64(d, i, &x, "", &e) == 0;
    return json_u64(d, i, &u, "", &e) == 0;
}

static int str_to_slice(struct model *m, const struct json_doc *d, int i, struct slice *out,
                        struct err *e)
{
    struct slice raw = json_raw(d, i);
    if (!memchr(raw.p, '\\', raw.n)) {
        /* No escapes: copy as is (the JSON text may be transient, so always copy). */
        return model__strdup(m, raw.p, raw.n, out, e);
    }
    struct sbuf b = SBUF_INIT(raw.n + 1);
    int rc = json_str(d, i, &b, e);
    if (!rc)
        rc = model__strdup(m, b.p ? b.p : "", b.len, out, e);
    sbuf_release(&b);
    return rc;
}

int model__json_obj(struct model *m, const struct json_doc *d, int obj, struct model_kv **kv_out,
                    uint64_t *n_out, int depth, struct err *e)
{
    int n = d->tok[obj].size, i = obj + 1;
    struct model_kv *kv;

    *kv_out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    kv = calloc((size_t)n, sizeof *kv);
    if (!kv)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (int j = 0; j < n; j++) {
        kv[j].off = json_off(d, i);
        if (str_to_slice(m, d, i, &kv[j].key, e) || conv(m, d, i + 1, &kv[j].val, depth + 1, e)) {
            *kv_out = kv;
            *n_out = (uint64_t)j + 1;   /* free what was converted, the failed entry too */
            return -1;
        }
        i = json_next(d, i + 1);
    }
    *kv_out = kv;
    *n_out = (uint64_t)n;
    return 0;
}

static int conv_arr(struct model *m, const struct json_doc *d, int a, struct model_val *v,
                    int depth, struct err *e)
{
    int n = d->tok[a].size, i, all_str = 1, all_int = 1, all_num = 1, all_bool = 1, all_arr = 1,
        all_obj = 1, neg = 0;

    v->type = MV_ARR;
    v->v.arr.n = (uint64_t)n;
    v->v.arr.elem = MV_NULL;
    i = a + 1;
    for (int j = 0; j < n; j++, i = json_next(d, i)) {
        int b;
        jsmntype_t t = d->tok[i].type;
        all_str &= t == JSMN_STRING;
        all_arr &= t == JSMN_ARRAY;
        all_obj &= t == JSMN_OBJECT;
        all_bool &= json_is_bool(d, i, &b);
        int num = t == JSMN_PRIMITIVE && !json_is_null(d, i) && !json_is_bool(d, i, NULL);
        all_num &= num;
        all_int &= num && json_is_int(d, i) && int_fits(d, i);
        if (num && d->text[d->tok[i].start] == '-')
            neg = 1;
    }
    if (n == 0) {
        v->v.arr.elem = MV_U64;   /* an empty array: any fixed type; UINT64 by convention */
        return 0;
    }
    if (all_str) {
        v->v.arr.elem = MV_STR;
        v->v.arr.strs = calloc((size_t)n, sizeof *v->v.arr.strs);
        if (!v->v.arr.strs)
            return ERR(e, ERR_NOMEM, "out of memory");
        i = a + 1;
        for (int j = 0; j < n; j++, i = json_next(d, i))
            if (str_to_slice(m, d, i, &v->v.arr.strs[j], e))
                return -1;
        return 0;
    }
    if (all_num || all_bool) {
        enum model_vtype et = all_bool ? MV_BOOL : all_int ? (neg ? MV_I64 : MV_U64) : MV_F64;
        size_t es = model_vtype_size(et);
        uint8_t *raw = model__alloc(m, (size_t)n * es, e);
        if (!raw)
            return -1;
        i = a + 1;
        for (int j = 0; j < n; j++, i = json_next(d, i)) {
            uint8_t *p = raw + (size_t)j * es;
            if (et == MV_BOOL) {
                int b = 0;
                json_is_bool(d, i, &b);
                p[0] = (uint8_t)b;
            } else if (et == MV_U64) {
                uint64_t x;
                if (json_u64(d, i, &x, "array element", e))
                    return -1;
                put_le64(p, x);
            } else if (et == MV_I64) {
                int64_t x;
                if (json_i64(d, i, &x, "array element", e))
                    return -1;
                put_le64(p, (uint64_t)x);
            } else {
                double x;
                uint64_t u;
                if (json_f64(d, i, &x, "array element", e))
                    return -1;
                memcpy(&u, &x, 8);
                put_le64(p, u);
            }
        }
        v->v.arr.elem = et;
        v->v.arr.raw = raw;
        return 0;
    }
    v->v.arr.elem = all_arr ? MV_ARR : all_obj ? MV_OBJ : MV_NULL;
    v->v.arr.items = calloc((size_t)n, sizeof *v->v.arr.items);
    if (!v->v.arr.items)
        return ERR(e, ERR_NOMEM, "out of memory");
    i = a + 1;
    for (int j = 0; j < n; j++, i = json_next(d, i)) {
        v->v.arr.items[j].type = MV_NULL;
        if (conv(m, d, i, &v->v.arr.items[j], depth + 1, e))
            return -1;
    }
    return 0;
}

static int conv(struct model *m, const struct json_doc *d, int i, struct model_val *v, int depth,
                struct err *e)
{
    int b;

    memset(v, 0, sizeof *v);
    v->type = MV_NULL;
    switch (d->tok[i].type) {
    case JSMN_STRING:
        v->type = MV_STR;
        return str_to_slice(m, d, i, &v->v.s, e);
    case JSMN_OBJECT:
        v->type = MV_OBJ;
        return model__json_obj(m, d, i, &v->v.obj.kv, &v->v.obj.n, depth, e);
    case JSMN_ARRAY:
        return conv_arr(m, d, i, v, depth, e);
    default:
        break;
    }
    if (json_is_null(d, i))
        return 0;
    if (json_is_bool(d, i, &b)) {
        v->type = MV_BOOL;
        v->v.u = (uint64_t)b;
        return 0;
    }
    if (json_is_int(d, i) && int_fits(d, i)) {
        if (d->text[d->tok[i].start] == '-') {
            v->type = MV_I64;
            return json_i64(d, i, &v->v.i, "number", e);
        }
        v->type = MV_U64;
        return json_u64(d, i, &v->v.u, "number", e);
    }
    /* Non-integers, and integers beyond 64 bits (read as a float, as serde_json does). */
    v->type = MV_F64;
    return json_f64(d, i, &v->v.f, "number", e);
}

int model__json_val(struct model *m, const struct json_doc *d, int tok, struct model_val *v,
                    struct err *e)
{
    return conv(m, d, tok, v, 0, e);
}

/* ---- model values to JSON */

void model_val_to_json(struct json_w *w, const struct model_val *v, uint64_t max_items)
{
    switch (v->type) {
    case MV_U8: case MV_U16: case MV_U32: case MV_U64: json_w_u64(w, v->v.u); return;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64: json_w_i64(w, v->v.i); return;
    case MV_F32: json_w_f32(w, (float)v->v.f); return;
    case MV_F64: json_w_f64(w, v->v.f); return;
    case MV_BOOL: json_w_bool(w, v->v.u != 0); return;
    case MV_STR: json_w_str_n(w, v->v.s.p, v->v.s.n); return;
    case MV_NULL: json_w_null(w); return;
    case MV_OBJ:
        json_w_obj(w);
        for (uint64_t i = 0; i < v->v.obj.n; i++) {
            json_w_key_n(w, v->v.obj.kv[i].key.p, v->v.obj.kv[i].key.n);
            model_val_to_json(w, &v->v.obj.kv[i].val, max_items);
        }
        json_w_obj_end(w);
        return;
    case MV_ARR: {
        uint64_t n = v->v.arr.n < max_items ? v->v.arr.n : max_items;
        json_w_arr(w);
        for (uint64_t i = 0; i < n; i++) {
            enum model_vtype et = v->v.arr.elem;
            if (et == MV_STR)
                json_w_str_n(w, v->v.arr.strs[i].p, v->v.arr.strs[i].n);
            else if (v->v.arr.items)
                model_val_to_json(w, &v->v.arr.items[i], max_items);
            else if (et == MV_BOOL)
                json_w_bool(w, model_arr_get_u64(v, i) != 0);
            else if (et == MV_F32)
                json_w_f32(w, (float)model_arr_get_f64(v, i));
            else if (et == MV_F64)
                json_w_f64(w, model_arr_get_f64(v, i));
            else if (et == MV_U8 || et == MV_U16 || et == MV_U32 || et == MV_U64)
                json_w_u64(w, model_arr_get_u64(v, i));
            else
                json_w_i64(w, model_arr_get_i64(v, i));
        }
        json_w_arr_end(w);
        return;
    }
    default:
        json_w_null(w);
    }
}
