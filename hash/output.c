/*
 * output.c - apr-hash: sha256sum-style lines, --tensors lines, --json, and manifests
 * (JSON or text) written through a temporary file.
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
void hash__item_release(struct item *it)
{
    hash_model_release(&it->hm);
    for (uint32_t i = 0; i < it->n_shards; i++)
        free(it->shard_path[i]);
    free(it->shard_path);
    free(it->shard_size);
    free(it->shard_sha);
}

/* Append an extra file (path copied) to its shard list. */
int hash__item_add_file(struct item *it, const char *path, uint64_t size,
                         const uint8_t sha[SHA256_LEN], struct err *e)
{
    if (it->n_shards == it->cap_shards) {
        uint32_t nc = it->cap_shards ? it->cap_shards * 2 : 8;
        char **p = realloc(it->shard_path, nc * sizeof *p);
        uint64_t *z = p ? realloc(it->shard_size, nc * sizeof *z) : NULL;
        uint8_t (*h)[SHA256_LEN] = NULL;
        if (p)
            it->shard_path = p;
        if (z)
            it->shard_size = z;
        h = z ? realloc(it->shard_sha, nc * sizeof *h) : NULL;
        if (!h)
            return ERR(e, ERR_NOMEM, "out of memory");
        it->shard_sha = h;
        it->cap_shards = nc;
    }
    it->shard_path[it->n_shards] = hash__xstrndup(path, strlen(path));
    if (!it->shard_path[it->n_shards])
        return ERR(e, ERR_NOMEM, "out of memory");
    it->shard_size[it->n_shards] = size;
    memcpy(it->shard_sha[it->n_shards], sha, SHA256_LEN);
    it->n_shards++;
    return 0;
}

/*
 * A directory's files that are not already listed (its mapped shards): every regular
 * file under it, sorted by relative path, added to its extra files; the rest noted.
 */
int hash__item_add_dir(const struct hash_opts *o, struct item *it, FILE *errs, struct err *e)
{
    struct dirlist dl;
    uint32_t n_mapped = it->n_shards;
    int rc = 0;

    if (dir_walk(&dl, it->path, 0, HASH_MAX_DEPTH, 0, NULL, e))
        return -1;
    for (size_t i = 0; i < dl.n && !rc; i++) {
        uint8_t sha[SHA256_LEN];
        uint64_t size;
        char *full;
        int listed = 0;
        for (uint32_t s = 0; s < n_mapped && !listed; s++) {
            const char *r = hash__rel_under(it->shard_path[s], it->path);
            listed = r && strcmp(r, dl.v[i].rel) == 0;
        }
        if (listed)
            continue;
        if (!hash__dent_hashable(it->path, &dl.v[i])) {
            if (!o->quiet)
                hash__dent_note(errs, it->path, &dl.v[i]);
            continue;
        }
        full = path_join(it->path, dl.v[i].rel);
        if (!full)
            rc = ERR(e, ERR_NOMEM, "out of memory");
        else if (hash_file(full, sha, &size, e) || hash__item_add_file(it, full, size, sha, e))
            rc = -1;
        free(full);
    }
    dirlist_release(&dl);
    return rc;
}

/* sha256sum's line, with its leading backslash when the name needed escaping. */
static void put_sum_line(FILE *f, const uint8_t sha[SHA256_LEN], const char *path)
{
    char hex[SHA256_HEX_LEN + 1];
    int esc = 0;
    for (const char *p = path; *p; p++)
        if (*p == '\\' || *p == '\n' || *p == '\r' || (unsigned char)*p < 0x20)
            esc = 1;
    sha256_hex(sha, hex);
    fprintf(f, "%s%s  ", esc ? "\\" : "", hex);
    cli_put_escaped(f, path, strlen(path));
    fputc('\n', f);
}

static void put_kv_line(FILE *f, const char *kind, const uint8_t sha[SHA256_LEN], const char *path)
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(sha, hex);
    fprintf(f, "%s  %s  ", kind, hex);
    cli_put_escaped(f, path, strlen(path));
    fputc('\n', f);
}

static void put_tensor_line(FILE *f, const char *kind, const struct hash_tensor *t, int content)
{
    char hex[SHA256_HEX_LEN + 1], shape[MODEL_MAX_DIMS * 24];
    const char *name = content ? t->canon : t->name;
    sha256_hex(content ? t->content : t->sha, hex);
    shape_fmt(shape, sizeof shape, t->shape, t->n_dims, 0);
    fprintf(f, "%s  %s  %s  [%s]  ", kind, hex, content ? "F32" : dtype_name(t->dtype), shape);
    cli_put_escaped(f, name, strlen(name));
    fputc('\n', f);
}

int hash__write_text(FILE *f, struct item *items, int n, struct err *e)
{
    for (int i = 0; i < n; i++) {
        struct item *it = &items[i];
        const struct hash_model *h = &it->hm;
        if (!it->ok)
            continue;
        if (it->has_sha)
            put_sum_line(f, it->sha, it->path);
        for (uint32_t s = 0; s < it->n_shards; s++)
            put_sum_line(f, it->shard_sha[s], it->shard_path[s]);
        if (!it->is_model)
            continue;
        if (h->has_raw)
            put_kv_line(f, "model", h->model_hash, it->path);
        if (h->has_metadata)
            put_kv_line(f, "metadata", h->metadata_hash, it->path);
        if (h->has_content)
            put_kv_line(f, "content-model", h->content_hash, it->path);
        if (h->has_raw || h->has_content) {
            /* the canonical keys in the model hash ("keys" marks this form of it) */
            fprintf(f, "keys  %llu  ", (unsigned long long)h->n_keys);
            cli_put_escaped(f, it->path, strlen(it->path));
            fputc('\n', f);
            for (uint64_t k = 0; k < h->n_keys; k++) {
                char hex[SHA256_HEX_LEN + 1];
                sha256_hex(h->keys[k].sha, hex);
                fprintf(f, "key  %s  ", hex);
                cli_put_escaped(f, h->keys[k].key, h->keys[k].n);
                fputc('\n', f);
            }
        }
        for (int pass = 0; pass < 2; pass++) {
            const struct hash_tensor **v;
            if ((pass == 0 && !h->has_raw) || (pass == 1 && !h->has_content))
                continue;
            v = hash__sorted_tensors(h->t, h->n_tensors, pass, e);
            if (!v)
                return -1;
            for (uint64_t k = 0; k < h->n_tensors; k++)
                put_tensor_line(f, pass ? "content" : "tensor", v[k], pass);
            free(v);
        }
    }
    return 0;
}

static void jw_hex(struct json_w *w, const char *key, const uint8_t d[SHA256_LEN])
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(d, hex);
    json_w_key(w, key);
    json_w_str(w, hex);
}

static void jw_file(struct json_w *w, const char *path, uint64_t size, const uint8_t *sha,
                    const struct hash_model *h)
{
    json_w_obj(w);
    json_w_key(w, "path");
    json_w_str(w, path);
    if (sha) {
        json_w_key(w, "size_bytes");
        json_w_u64(w, size);
        jw_hex(w, "sha256", sha);
    }
    if (h) {
        json_w_key(w, "format");
        json_w_str(w, model_format_name(h->format));
        json_w_key(w, "n_tensors");
        json_w_u64(w, h->n_tensors);
        if (h->has_raw)
            jw_hex(w, "model_hash", h->model_hash);
        if (h->has_metadata)
            jw_hex(w, "metadata_hash", h->metadata_hash);
        if (h->has_content)
            jw_hex(w, "content_hash", h->content_hash);
        if (h->has_raw || h->has_content) {
            /* the canonical keys in the model hash (their presence marks this form) */
            json_w_key(w, "keys");
            json_w_arr(w);
            for (uint64_t k = 0; k < h->n_keys; k++) {
                json_w_obj(w);
                json_w_key(w, "key");
                json_w_str_n(w, h->keys[k].key, h->keys[k].n);
                jw_hex(w, "sha256", h->keys[k].sha);
                json_w_obj_end(w);
            }
            json_w_arr_end(w);
        }
    }
    json_w_obj_end(w);
}

static int generated_at(const struct hash_opts *o, char *buf, size_t cap, struct err *e)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    uint64_t t;
    time_t tt;
    struct tm tm;

    buf[0] = 0;
    if (sde && *sde) {
        if (cli_parse_u64(sde, 0, (uint64_t)INT64_MAX / 2, &t))
            return ERR(e, ERR_USAGE, "SOURCE_DATE_EPOCH '%s' is not a number of seconds", sde);
    } else if (o->timestamp) {
        t = (uint64_t)time(NULL);
    } else {
        return 0;
    }
    tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return ERR(e, ERR_INTERNAL, "cannot format time %llu", (unsigned long long)t);
    return 0;
}

int hash__write_json(struct sbuf *b, const struct hash_opts *o, struct item *items, int n,
                      struct err *e)
{
    struct json_w w;
    char ts[64];
    uint64_t n_all = 0, n_keys = 0;
    int any_raw = 0, any_content = 0, rc = 0;

    if (generated_at(o, ts, sizeof ts, e))
        return -1;
    json_w_init(&w, b, 1);
    json_w_obj(&w);
    json_w_key(&w, "tool");
    json_w_str(&w, "apr-hash");
    json_w_key(&w, "version");
    json_w_str(&w, APR_TOOLS_VERSION);
    if (ts[0]) {
        json_w_key(&w, "generated_at");
        json_w_str(&w, ts);
    }
    json_w_key(&w, "files");
    json_w_arr(&w);
    for (int i = 0; i < n; i++) {
        struct item *it = &items[i];
        if (!it->ok)
            continue;
        if (it->has_sha || it->is_model)   /* a directory that holds no model: its files */
            jw_file(&w, it->path, it->size, it->has_sha ? it->sha : NULL,
                    it->is_model ? &it->hm : NULL);
        for (uint32_t s = 0; s < it->n_shards; s++)
            jw_file(&w, it->shard_path[s], it->shard_size[s], it->shard_sha[s], NULL);
        if (it->is_model) {
            n_all += it->hm.n_tensors;
            n_keys += it->hm.n_keys;
            any_raw |= it->hm.has_raw;
            any_content |= it->hm.has_content;
        }
    }
    json_w_arr_end(&w);
    if (any_raw || any_content) {
        /* every tensor of every file, for the set's model hash */
        struct hash_tensor *all = calloc(n_all ? n_all : 1, sizeof *all);
        struct canon_key *keys = calloc(n_keys ? n_keys : 1, sizeof *keys);
        uint64_t k = 0, nk = 0;
        if (!all || !keys) {
            free(all);
            free(keys);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        json_w_key(&w, "tensors");
        json_w_arr(&w);
        for (int i = 0; i < n; i++) {
            const struct hash_model *h = &items[i].hm;
            const struct hash_tensor **v;
            if (!items[i].ok || !items[i].is_model)
                continue;
            v = hash__sorted_tensors(h->t, h->n_tensors, 0, e);
            if (!v) {
                free(all);
                free(keys);
                return -1;
            }
            for (uint64_t j = 0; j < h->n_tensors; j++) {
                const struct hash_tensor *t = v[j];
                json_w_obj(&w);
                json_w_key(&w, "file");
                json_w_str(&w, items[i].path);
                json_w_key(&w, "name");
                json_w_str(&w, t->name);
                if (strcmp(t->canon, t->name) != 0) {
                    json_w_key(&w, "canonical_name");
                    json_w_str(&w, t->canon);
                }
                json_w_key(&w, "dtype");
                json_w_str(&w, dtype_name(t->dtype));
                json_w_key(&w, "shape");
                json_w_arr(&w);
                for (int d = 0; d < t->n_dims; d++)
                    json_w_i64(&w, t->shape[d]);
                json_w_arr_end(&w);
                json_w_key(&w, "size_bytes");
                json_w_u64(&w, t->size);
                if (h->has_raw)
                    jw_hex(&w, "sha256", t->sha);
                if (h->has_content)
                    jw_hex(&w, "content_sha256", t->content);
                json_w_obj_end(&w);
            }
            free(v);
            for (uint64_t j = 0; j < h->n_tensors; j++)
                all[k++] = h->t[j];     /* shallow: names stay owned by h */
            for (uint64_t j = 0; j < h->n_keys; j++)
                keys[nk++] = h->keys[j];   /* shallow too */
        }
        json_w_arr_end(&w);
        if (any_raw) {
            uint8_t d[SHA256_LEN];
            rc = hash_model_records(all, k, keys, nk, 0, d, e);
            if (!rc)
                jw_hex(&w, "model_hash", d);
        }
        if (!rc && any_content) {
            uint8_t d[SHA256_LEN];
            rc = hash_model_records(all, k, keys, nk, 1, d, e);
            if (!rc)
                jw_hex(&w, "content_hash", d);
        }
        free(all);
        free(keys);
        if (rc)
            return -1;
    }
    json_w_obj_end(&w);
    sbuf_addc(b, '\n');
    return sbuf_check(b, "JSON output", e);
}
