/*
 * records.c - apr-hash: per-tensor records, the model hash over them (order, sharding
 * and container independent) and the canonical encoding of metadata.
 */
#include "hash_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/cli.h"
#include "../common/dirwalk.h"
#include "../common/json.h"
#include "../common/mfile.h"
#include "../common/path.h"
#include "../common/ofile.h"
#include "../common/progress.h"
#include "../common/sbuf.h"
#include "../common/slice.h"
#include "../common/threads.h"
#include "../common/vec.h"
#include "../dequant/dq.h"
#include "../formats/config.h"
#include "../formats/names.h"
#include "../common/banned.h"
/* ---- records ------------------------------------------------------------------------ */

static int cmp_canon(const void *a, const void *b)
{
    const struct hash_tensor *x = *(const struct hash_tensor *const *)a;
    const struct hash_tensor *y = *(const struct hash_tensor *const *)b;
    int c = strcmp(x->canon, y->canon);
    return c ? c : strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b)
{
    const struct hash_tensor *x = *(const struct hash_tensor *const *)a;
    const struct hash_tensor *y = *(const struct hash_tensor *const *)b;
    return strcmp(x->name, y->name);
}

const struct hash_tensor **hash__sorted_tensors(const struct hash_tensor *t, uint64_t n,
                                                 int by_canon, struct err *e)
{
    const struct hash_tensor **v = malloc((n ? n : 1) * sizeof *v);
    if (!v) {
        ERR(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++)
        v[i] = &t[i];
    qsort(v, n, sizeof *v, by_canon ? cmp_canon : cmp_name);
    return v;
}

int hash_records(const struct hash_tensor *t, uint64_t n, int content, uint8_t out[SHA256_LEN],
                 struct err *e)
{
    return hash_model_records(t, n, NULL, 0, content, out, e);
}

int hash_model_records(const struct hash_tensor *t, uint64_t n, const struct canon_key *k,
                       uint64_t nk, int content, uint8_t out[SHA256_LEN], struct err *e)
{
    const struct hash_tensor **v = hash__sorted_tensors(t, n, 1, e);
    struct sha256 h;
    char shape[MODEL_MAX_DIMS * 24], hex[SHA256_HEX_LEN + 1];

    if (!v)
        return -1;
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        free(v);
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        const char *dt = content ? "F32" : dtype_name(v[i]->dtype);
        shape_fmt(shape, sizeof shape, v[i]->shape, v[i]->n_dims, 0);
        sha256_hex(content ? v[i]->content : v[i]->sha, hex);
        sha256_update(&h, v[i]->canon, strlen(v[i]->canon) + 1);
        sha256_update(&h, dt, strlen(dt) + 1);
        sha256_update(&h, shape, strlen(shape) + 1);
        sha256_update(&h, hex, SHA256_HEX_LEN);
        sha256_update(&h, "\n", 1);
    }
    free(v);
    if (nk) {
        /* key records: "\0\0" netstring(key) hex "\n" (no tensor record starts so:
         * a dtype name is never empty) */
        struct canon_key *ks = malloc(nk * sizeof *ks);
        if (!ks) {
            sha256_release(&h);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        memcpy(ks, k, nk * sizeof *ks);
        qsort(ks, nk, sizeof *ks, canon_key_cmp);
        for (uint64_t i = 0; i < nk; i++) {
            char len[32];
            int ln = snprintf(len, sizeof len, "%zu:", ks[i].n);
            sha256_hex(ks[i].sha, hex);
            sha256_update(&h, "\0\0", 2);
            sha256_update(&h, len, (size_t)ln);
            sha256_update(&h, ks[i].key, ks[i].n);
            sha256_update(&h, hex, SHA256_HEX_LEN);
            sha256_update(&h, "\n", 1);
        }
        free(ks);
    }
    return sha256_final(&h, out, e);
}

/* ---- canonical metadata encoding ----------------------------------------------------- */

static void enc_netstring(struct sbuf *b, const char *p, size_t n)
{
    sbuf_addf(b, "%zu:", n);
    sbuf_add(b, p, n);
}

static int cmp_kv(const void *a, const void *b)
{
    const struct model_kv *x = *(const struct model_kv *const *)a;
    const struct model_kv *y = *(const struct model_kv *const *)b;
    return slice_cmp(x->key, y->key);
}

static int enc_val(struct sbuf *b, const struct model_val *v, int depth, struct err *e);

static int enc_obj(struct sbuf *b, const struct model_kv *kv, uint64_t n, int depth,
                   struct err *e)
{
    const struct model_kv **s = malloc((n ? n : 1) * sizeof *s);
    int rc = 0;
    if (!s)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        s[i] = &kv[i];
    qsort(s, n, sizeof *s, cmp_kv);
    for (uint64_t i = 0; i < n && !rc; i++) {
        enc_netstring(b, s[i]->key.p, s[i]->key.n);
        rc = enc_val(b, &s[i]->val, depth + 1, e);
        sbuf_addc(b, ';');
    }
    free(s);
    return rc;
}

static int enc_val(struct sbuf *b, const struct model_val *v, int depth, struct err *e)
{
    if (depth > 64)
        return ERR(e, ERR_LIMIT, "metadata nested deeper than 64 levels");
    sbuf_adds(b, model_vtype_name(v->type));
    sbuf_addc(b, '=');
    switch (v->type) {
    case MV_U8: case MV_U16: case MV_U32: case MV_U64:
        sbuf_addf(b, "%llu", (unsigned long long)v->v.u);
        break;
    case MV_BOOL:
        sbuf_addc(b, v->v.u ? '1' : '0');
        break;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64:
        sbuf_addf(b, "%lld", (long long)v->v.i);
        break;
    case MV_F32: {
        float f = (float)v->v.f;
        uint32_t u;
        memcpy(&u, &f, 4);
        sbuf_addf(b, "%08x", u);
        break;
    }
    case MV_F64: {
        uint64_t u;
        memcpy(&u, &v->v.f, 8);
        sbuf_addf(b, "%016llx", (unsigned long long)u);
        break;
    }
    case MV_STR:
        enc_netstring(b, v->v.s.p, v->v.s.n);
        break;
    case MV_ARR: {
        enum model_vtype et = v->v.arr.elem;
        sbuf_addf(b, "[%llu;", (unsigned long long)v->v.arr.n);
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            struct model_val it;
            memset(&it, 0, sizeof it);
            it.type = et;
            if (v->v.arr.raw) {
                if (et == MV_F32 || et == MV_F64)
                    it.v.f = model_arr_get_f64(v, i);
                else if (et == MV_I8 || et == MV_I16 || et == MV_I32 || et == MV_I64)
                    it.v.i = model_arr_get_i64(v, i);
                else
                    it.v.u = model_arr_get_u64(v, i);
            } else if (v->v.arr.strs && et == MV_STR) {
                it.v.s = v->v.arr.strs[i];
            } else if (v->v.arr.items) {
                it = v->v.arr.items[i];
            } else {
                return ERR(e, ERR_INTERNAL, "metadata array without elements");
            }
            if (enc_val(b, &it, depth + 1, e))
                return -1;
            sbuf_addc(b, ';');
        }
        sbuf_addc(b, ']');
        break;
    }
    case MV_OBJ:
        sbuf_addf(b, "{%llu;", (unsigned long long)v->v.obj.n);
        if (enc_obj(b, v->v.obj.kv, v->v.obj.n, depth, e))
            return -1;
        sbuf_addc(b, '}');
        break;
    case MV_NULL:
    default:
        break;
    }
    return 0;
}

int hash_metadata(const struct model *m, uint8_t out[SHA256_LEN], struct err *e)
{
    const struct model_kv **s = malloc((m->n_kv ? m->n_kv : 1) * sizeof *s);
    struct sha256 h;
    struct sbuf b = SBUF_INIT(HASH_MAX_TEXT);
    int rc = 0;

    if (!s)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < m->n_kv; i++)
        s[i] = &m->kv[i];
    qsort(s, m->n_kv, sizeof *s, cmp_kv);
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        free(s);
        return -1;
    }
    for (uint64_t i = 0; i < m->n_kv && !rc; i++) {
        b.len = 0;
        enc_netstring(&b, s[i]->key.p, s[i]->key.n);
        rc = enc_val(&b, &s[i]->val, 0, e);
        sbuf_addc(&b, '\n');
        if (!rc)
            rc = sbuf_check(&b, "metadata record", e);
        if (!rc)
            sha256_update(&h, b.p, b.len);
    }
    sbuf_release(&b);
    free(s);
    if (rc) {
        sha256_release(&h);
        return -1;
    }
    return sha256_final(&h, out, e);
}
