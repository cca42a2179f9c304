/*
 * manifest.c - apr-hash -c: reading a manifest (ours in JSON or text, llama-gguf-hash's
 * output, sha256sum's) into files, models and tensors.
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
void hash__manifest_release(struct manifest *man)
{
    for (size_t i = 0; i < man->n_f; i++)
        free(man->f[i].path);
    for (size_t i = 0; i < man->n_m; i++) {
        for (size_t j = 0; j < man->m[i].n_t; j++) {
            free(man->m[i].t[j].name);
            free(man->m[i].t[j].dtype);
        }
        for (size_t j = 0; j < man->m[i].n_k; j++)
            free(man->m[i].k[j].key);
        free(man->m[i].k);
        free(man->m[i].t);
        free(man->m[i].path);
    }
    free(man->f);
    free(man->m);
    memset(man, 0, sizeof *man);
}

static struct man_file *man_add_file(struct manifest *man, const char *path, size_t n,
                                     struct err *e)
{
    struct man_file *f;
    if (vec_reserve((void **)&man->f, &man->cap_f, man->n_f + 1, sizeof *man->f, e))
        return NULL;
    f = &man->f[man->n_f];
    f->path = hash__xstrndup(path, n);
    if (!f->path) {
        ERR(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    man->n_f++;
    return f;
}

/* The model entry for path (NULL path: the anonymous one), created when absent. */
struct man_model *hash__man_model(struct manifest *man, const char *path, size_t n,
                                   struct err *e)
{
    struct man_model *m;
    for (size_t i = 0; i < man->n_m; i++) {
        const char *q = man->m[i].path;
        if ((!path && !q) || (path && q && strlen(q) == n && memcmp(q, path, n) == 0))
            return &man->m[i];
    }
    if (vec_reserve((void **)&man->m, &man->cap_m, man->n_m + 1, sizeof *man->m, e))
        return NULL;
    m = &man->m[man->n_m];
    if (path) {
        m->path = hash__xstrndup(path, n);
        if (!m->path) {
            ERR(e, ERR_NOMEM, "out of memory");
            return NULL;
        }
    }
    man->n_m++;
    return m;
}

static struct man_tensor *man_add_tensor(struct man_model *m, const char *name, size_t n,
                                         int content, struct err *e)
{
    struct man_tensor *t;
    if (vec_reserve((void **)&m->t, &m->cap_t, m->n_t + 1, sizeof *m->t, e))
        return NULL;
    t = &m->t[m->n_t];
    t->name = hash__xstrndup(name, n);
    if (!t->name) {
        ERR(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->n_dims = -1;
    t->content = content;
    m->n_t++;
    if (content)
        m->n_content++;
    else
        m->n_raw++;
    return t;
}

static int man_add_key(struct man_model *m, const char *key, size_t n,
                       const uint8_t sha[SHA256_LEN], struct err *e)
{
    struct man_key *k;
    if (vec_reserve((void **)&m->k, &m->cap_k, m->n_k + 1, sizeof *m->k, e))
        return -1;
    k = &m->k[m->n_k];
    memset(k, 0, sizeof *k);
    k->key = hash__xstrndup(key, n);
    if (!k->key)
        return ERR(e, ERR_NOMEM, "out of memory");
    k->n = n;
    memcpy(k->sha, sha, SHA256_LEN);
    m->n_k++;
    m->keys_form = 1;
    return 0;
}

static int is_hex64(const char *p, size_t n)
{
    uint8_t d[SHA256_LEN];
    return sha256_parse_hex(p, n, d) == 0;
}

/* Undo cli_put_escaped (\\ \n \t \r \xNN) in place; returns the new length. */
static size_t unescape(char *s, size_t n)
{
    size_t i = 0, k = 0;
    while (i < n) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[i + 1];
            if (c == '\\' || c == 'n' || c == 't' || c == 'r') {
                s[k++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : '\\';
                i += 2;
                continue;
            }
            if (c == 'x' && i + 3 < n) {
                char h[3] = { s[i + 2], s[i + 3], 0 };
                char *end;
                long v = strtol(h, &end, 16);
                if (end == h + 2) {
                    s[k++] = (char)v;
                    i += 4;
                    continue;
                }
            }
        }
        s[k++] = s[i++];
    }
    return k;
}

/* Next field of a line: skips spaces, returns [p, p+n) up to the next space. */
static int next_field(const char **cur, const char *end, const char **p, size_t *n)
{
    const char *s = *cur;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s >= end)
        return -1;
    *p = s;
    while (s < end && *s != ' ' && *s != '\t')
        s++;
    *n = (size_t)(s - *p);
    *cur = s;
    return 0;
}

/* The rest of the line after the two-space separator (or any run of blanks). */
static int rest_field(const char **cur, const char *end, char **out, size_t *n)
{
    const char *s = *cur;
    if (end - s >= 2 && s[0] == ' ' && s[1] == ' ')
        s += 2;
    else
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
    if (s >= end)
        return -1;
    *out = hash__xstrndup(s, (size_t)(end - s));
    if (!*out)
        return -1;
    *n = unescape(*out, (size_t)(end - s));
    (*out)[*n] = 0;
    return 0;
}

static int parse_shape(const char *p, size_t n, struct man_tensor *t)
{
    size_t i = 1;
    if (n < 2 || p[0] != '[' || p[n - 1] != ']')
        return -1;
    t->n_dims = 0;
    while (i < n - 1) {
        uint64_t v = 0;
        size_t s = i;
        while (i < n - 1 && p[i] >= '0' && p[i] <= '9') {
            if (v > (uint64_t)INT64_MAX / 10)
                return -1;
            v = v * 10 + (uint64_t)(p[i] - '0');
            i++;
        }
        if (i == s || t->n_dims >= MODEL_MAX_DIMS || v > (uint64_t)INT64_MAX)
            return -1;
        t->shape[t->n_dims++] = (int64_t)v;
        if (i < n - 1) {
            if (p[i] != ',')
                return -1;
            i++;
        }
    }
    return 0;
}

/* Resolve llama-gguf-hash "sha256  HEX  FILE[:TENSOR]" lines once all are read. */
static int resolve_gguf_hash(struct manifest *man, struct gg_line *gl, size_t n, struct err *e)
{
    char *is_whole = calloc(n ? n : 1, 1);
    int rc = 0;

    if (!is_whole)
        return ERR(e, ERR_NOMEM, "out of memory");
    /* T is a whole-model line when some other target starts with "T:". */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n && !is_whole[i]; j++)
            if (j != i && gl[j].n > gl[i].n + 1 && gl[j].target[gl[i].n] == ':' &&
                memcmp(gl[j].target, gl[i].target, gl[i].n) == 0)
                is_whole[i] = 1;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!is_whole[i] && !memchr(gl[i].target, ':', gl[i].n))
            is_whole[i] = 1;   /* --no-layer manifests: only the model line */
        if (is_whole[i]) {
            struct man_model *m = hash__man_model(man, gl[i].target, gl[i].n, e);
            if (!m) {
                rc = -1;
                break;
            }
            memcpy(m->whole, gl[i].sha, SHA256_LEN);
            m->has_whole = 1;
        }
    }
    for (size_t i = 0; i < n && !rc; i++) {
        size_t best = 0, cut;
        int found = 0;
        struct man_model *m;
        struct man_tensor *t;
        if (is_whole[i])
            continue;
        for (size_t j = 0; j < n; j++)
            if (is_whole[j] && gl[i].n > gl[j].n + 1 && gl[i].target[gl[j].n] == ':' &&
                memcmp(gl[i].target, gl[j].target, gl[j].n) == 0 && gl[j].n >= best) {
                best = gl[j].n;
                found = 1;
            }
        if (found) {
            cut = best;
        } else {
            const char *c = memrchr(gl[i].target, ':', gl[i].n);
            cut = (size_t)(c - gl[i].target);
        }
        m = hash__man_model(man, gl[i].target, cut, e);
        t = m ? man_add_tensor(m, gl[i].target + cut + 1, gl[i].n - cut - 1, 0, e) : NULL;
        if (!t) {
            rc = -1;
            break;
        }
        memcpy(t->sha, gl[i].sha, SHA256_LEN);
    }
    free(is_whole);
    return rc;
}

/* "model|metadata|content-model  HEX  PATH" (kind 0, 1, 2): PATH becomes the current
 * model.  Malformed lines are counted in man->n_bad. */
static int parse_hash_line(struct manifest *man, struct man_model **cur, int kind,
                           const char *c, const char *le, struct err *e)
{
    const char *h;
    size_t hn, pn;
    char *path = NULL;
    uint8_t d[SHA256_LEN];

    if (next_field(&c, le, &h, &hn) || sha256_parse_hex(h, hn, d) ||
        rest_field(&c, le, &path, &pn)) {
        free(path);
        man->n_bad++;
        return 0;
    }
    *cur = hash__man_model(man, path, pn, e);
    free(path);
    if (!*cur)
        return -1;
    memcpy(kind == 0 ? (*cur)->model_hash : kind == 1 ? (*cur)->metadata_hash :
           (*cur)->content_hash, d, SHA256_LEN);
    if (kind == 0)
        (*cur)->has_model = 1;
    else if (kind == 1)
        (*cur)->has_metadata = 1;
    else
        (*cur)->has_content = 1;
    return 0;
}

/*
 * Text manifests: "keys  N  PATH" (the model hash of PATH covers canonical keys; it
 * becomes the current model) or "key  HEX  NAME" (one of them, for the current model).
 * Malformed lines are counted in man->n_bad.
 */
static int parse_key_line(struct manifest *man, struct man_model **cur, int is_keys,
                          const char *c, const char *le, struct err *e)
{
    const char *h;
    size_t hn, nn;
    char *rest = NULL;
    uint8_t d[SHA256_LEN];
    int rc;

    if (next_field(&c, le, &h, &hn) || (!is_keys && sha256_parse_hex(h, hn, d)) ||
        rest_field(&c, le, &rest, &nn)) {
        free(rest);
        man->n_bad++;
        return 0;
    }
    if (is_keys) {
        *cur = hash__man_model(man, rest, nn, e);
        free(rest);
        if (!*cur)
            return -1;
        (*cur)->keys_form = 1;
        return 0;
    }
    if (!*cur)
        *cur = hash__man_model(man, NULL, 0, e);
    rc = *cur ? man_add_key(*cur, rest, nn, d, e) : -1;
    free(rest);
    return rc;
}

static int parse_text(struct manifest *man, const char *text, size_t len, const char *name,
                      struct err *e)
{
    struct gg_line *gl = NULL;
    size_t n_gl = 0, cap_gl = 0;
    struct man_model *cur = NULL;
    const char *p = text, *end = text + len;
    int rc = 0;

    while (p < end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *c = p, *f;
        size_t fn;
        int esc = 0;

        if (le > p && le[-1] == '\r')
            le--;
        p = nl ? nl + 1 : end;
        if (c == le || *c == '#')
            continue;
        if (*c == '\\') {
            esc = 1;
            c++;
        }
        if (next_field(&c, le, &f, &fn)) {
            continue;
        }
        if (fn == SHA256_HEX_LEN && is_hex64(f, fn)) {
            /* sha256sum: "HEX  PATH" or "HEX *PATH" */
            struct man_file *mf;
            const char *s = c;
            if (le - s >= 2 && s[0] == ' ' && (s[1] == ' ' || s[1] == '*'))
                s += 2;
            else {
                man->n_bad++;
                continue;
            }
            if (s >= le) {
                man->n_bad++;
                continue;
            }
            mf = man_add_file(man, s, (size_t)(le - s), e);
            if (!mf) {
                rc = -1;
                break;
            }
            if (esc) {
                size_t k = unescape(mf->path, strlen(mf->path));
                mf->path[k] = 0;
            }
            sha256_parse_hex(f, fn, mf->sha);
            mf->has_sha = 1;
            continue;
        }
#define IS(lit) (fn == sizeof(lit) - 1 && memcmp(f, lit, fn) == 0)
        if (IS("model") || IS("metadata") || IS("content-model")) {
            if (parse_hash_line(man, &cur, IS("model") ? 0 : IS("metadata") ? 1 : 2, c, le, e)) {
                rc = -1;
                break;
            }
            continue;
        }
        if (IS("keys") || IS("key")) {
            if (parse_key_line(man, &cur, IS("keys"), c, le, e)) {
                rc = -1;
                break;
            }
            continue;
        }
        if (IS("tensor") || IS("content")) {
            const char *h, *dt, *sh;
            size_t hn, dtn, shn, nn;
            char *nm = NULL;
            uint8_t d[SHA256_LEN];
            int content = IS("content");
            struct man_tensor *t, tmp;
            if (next_field(&c, le, &h, &hn) || sha256_parse_hex(h, hn, d) ||
                next_field(&c, le, &dt, &dtn) || next_field(&c, le, &sh, &shn) ||
                parse_shape(sh, shn, &tmp) || rest_field(&c, le, &nm, &nn)) {
                free(nm);
                man->n_bad++;
                continue;
            }
            if (!cur)
                cur = hash__man_model(man, NULL, 0, e);
            t = cur ? man_add_tensor(cur, nm, nn, content, e) : NULL;
            free(nm);
            if (!t) {
                rc = -1;
                break;
            }
            memcpy(t->sha, d, SHA256_LEN);
            t->n_dims = tmp.n_dims;
            memcpy(t->shape, tmp.shape, sizeof t->shape);
            t->dtype = hash__xstrndup(dt, dtn);
            if (!t->dtype) {
                rc = ERR(e, ERR_NOMEM, "out of memory");
                break;
            }
            continue;
        }
        if (IS("sha256") || IS("xxh64") || IS("sha1") || IS("xxh3") || IS("uuid")) {
            const char *h;
            size_t hn;
            char *target = NULL;
            if (!IS("sha256")) {
                man->n_ignored++;
                continue;
            }
            if (next_field(&c, le, &h, &hn) || !is_hex64(h, hn)) {
                man->n_bad++;
                continue;
            }
            /* llama-gguf-hash pads with blanks: the target is what follows them */
            while (c < le && (*c == ' ' || *c == '\t'))
                c++;
            if (c >= le || vec_reserve((void **)&gl, &cap_gl, n_gl + 1, sizeof *gl, e)) {
                if (c >= le) {
                    man->n_bad++;
                    continue;
                }
                rc = -1;
                break;
            }
            target = hash__xstrndup(c, (size_t)(le - c));
            if (!target) {
                rc = ERR(e, ERR_NOMEM, "out of memory");
                break;
            }
            gl[n_gl].target = target;
            gl[n_gl].n = (size_t)(le - c);
            sha256_parse_hex(h, hn, gl[n_gl].sha);
            n_gl++;
            continue;
        }
#undef IS
        man->n_bad++;
    }
    if (!rc)
        rc = resolve_gguf_hash(man, gl, n_gl, e);
    for (size_t i = 0; i < n_gl; i++)
        free(gl[i].target);
    free(gl);
    if (!rc && man->n_f == 0 && man->n_m == 0)
        rc = ERR(e, ERR_FORMAT, "'%s': no sha256 entries found%s", name,
                 man->n_ignored ? " (only xxh64/sha1/xxh3/uuid lines)" : "");
    return rc;
}

/* JSON string member key of object obj into a fresh C string (NULL when absent). */
static int jstr(const struct json_doc *d, int obj, const char *key, char **out, size_t *n,
                struct err *e)
{
    struct sbuf b = SBUF_INIT(1u << 20);
    int i = json_get(d, obj, key);

    *out = NULL;
    if (i < 0)
        return 0;
    if (!json_is(d, i, JSMN_STRING))
        return ERR(e, ERR_FORMAT, "manifest: '%s' is not a string", key);
    if (json_str(d, i, &b, e)) {
        sbuf_release(&b);
        return -1;
    }
    *out = hash__xstrndup(b.p ? b.p : "", b.len);
    if (n)
        *n = b.len;
    sbuf_release(&b);
    return *out ? 0 : ERR(e, ERR_NOMEM, "out of memory");
}

static int jhex(const struct json_doc *d, int obj, const char *key, uint8_t out[SHA256_LEN],
                int *has, struct err *e)
{
    char *s;
    size_t n = 0;
    if (jstr(d, obj, key, &s, &n, e))
        return -1;
    if (!s)
        return 0;
    if (sha256_parse_hex(s, n, out)) {
        free(s);
        return ERR(e, ERR_FORMAT, "manifest: '%s' is not 64 hex digits", key);
    }
    free(s);
    *has = 1;
    return 0;
}

/* A file entry's "keys": [{"key": K, "sha256": HEX}, ...] (absent: the older form). */
static int json_keys(const struct json_doc *d, int obj, struct man_model *m, struct err *e)
{
    int arr = json_get(d, obj, "keys"), j;

    if (arr < 0)
        return 0;
    if (!json_is(d, arr, JSMN_ARRAY))
        return ERR(e, ERR_FORMAT, "manifest: 'keys' is not an array");
    m->keys_form = 1;
    j = arr + 1;
    for (int k = 0; k < d->tok[arr].size; k++, j = json_next(d, j)) {
        char *key = NULL;
        size_t kn = 0;
        uint8_t sha[SHA256_LEN];
        int has = 0, rc;
        if (!json_is(d, j, JSMN_OBJECT))
            return ERR(e, ERR_FORMAT, "manifest: keys[%d] is not an object", k);
        if (jstr(d, j, "key", &key, &kn, e) || jhex(d, j, "sha256", sha, &has, e)) {
            free(key);
            return -1;
        }
        if (!key || !has) {
            free(key);
            return ERR(e, ERR_FORMAT, "manifest: keys[%d] lacks 'key' or 'sha256'", k);
        }
        rc = man_add_key(m, key, kn, sha, e);
        free(key);
        if (rc)
            return -1;
    }
    return 0;
}

static int parse_json(struct manifest *man, const char *text, size_t len, const char *name,
                      struct err *e)
{
    struct json_doc d;
    int files, tensors, rc = 0;

    if (json_parse(&d, text, len, 0, name, e))
        return -1;
    if (!json_is(&d, 0, JSMN_OBJECT)) {
        json_release(&d);
        return ERR(e, ERR_FORMAT, "'%s': not a JSON object", name);
    }
    files = json_get(&d, 0, "files");
    tensors = json_get(&d, 0, "tensors");
    if (files >= 0 && json_is(&d, files, JSMN_ARRAY)) {
        int j = files + 1;
        for (int k = 0; k < d.tok[files].size && !rc; k++, j = json_next(&d, j)) {
            char *path = NULL;
            size_t pn = 0;
            struct man_file tmp;
            struct man_model mm;
            int sz;
            memset(&tmp, 0, sizeof tmp);
            memset(&mm, 0, sizeof mm);
            if (!json_is(&d, j, JSMN_OBJECT))
                continue;
            if (jstr(&d, j, "path", &path, &pn, e) ||
                jhex(&d, j, "sha256", tmp.sha, &tmp.has_sha, e) ||
                jhex(&d, j, "model_hash", mm.model_hash, &mm.has_model, e) ||
                jhex(&d, j, "metadata_hash", mm.metadata_hash, &mm.has_metadata, e) ||
                jhex(&d, j, "content_hash", mm.content_hash, &mm.has_content, e)) {
                free(path);
                rc = -1;
                break;
            }
            sz = json_get(&d, j, "size_bytes");
            if (sz >= 0 && json_u64(&d, sz, &tmp.size, "size_bytes", e) == 0)
                tmp.has_size = 1;
            err_clear(e);
            if (!path)
                path = hash__xstrndup("", 0);
            if (!path) {
                rc = ERR(e, ERR_NOMEM, "out of memory");
                break;
            }
            if (tmp.has_sha) {
                struct man_file *f = man_add_file(man, path, pn, e);
                if (!f) {
                    free(path);
                    rc = -1;
                    break;
                }
                memcpy(f->sha, tmp.sha, SHA256_LEN);
                f->has_sha = 1;
                f->size = tmp.size;
                f->has_size = tmp.has_size;
            }
            if (mm.has_model || mm.has_content || mm.has_metadata) {
                struct man_model *m = hash__man_model(man, path, pn, e);
                if (!m) {
                    free(path);
                    rc = -1;
                    break;
                }
                if (mm.has_model) {
                    memcpy(m->model_hash, mm.model_hash, SHA256_LEN);
                    m->has_model = 1;
                }
                if (mm.has_content) {
                    memcpy(m->content_hash, mm.content_hash, SHA256_LEN);
                    m->has_content = 1;
                }
                if (mm.has_metadata) {
                    memcpy(m->metadata_hash, mm.metadata_hash, SHA256_LEN);
                    m->has_metadata = 1;
                }
                if (json_keys(&d, j, m, e)) {
                    free(path);
                    rc = -1;
                    break;
                }
            }
            free(path);
        }
    }
    if (!rc && tensors >= 0 && json_is(&d, tensors, JSMN_ARRAY)) {
        int j = tensors + 1;
        for (int k = 0; k < d.tok[tensors].size && !rc; k++, j = json_next(&d, j)) {
            char *file = NULL, *nm = NULL, *dt = NULL;
            size_t fn = 0, nn = 0;
            uint8_t sha[SHA256_LEN], csha[SHA256_LEN];
            int has_sha = 0, has_csha = 0, sh;
            struct man_model *m;
            if (!json_is(&d, j, JSMN_OBJECT))
                continue;
            if (jstr(&d, j, "file", &file, &fn, e) || jstr(&d, j, "name", &nm, &nn, e) ||
                jstr(&d, j, "dtype", &dt, NULL, e) || jhex(&d, j, "sha256", sha, &has_sha, e) ||
                jhex(&d, j, "content_sha256", csha, &has_csha, e) || !nm) {
                if (!nm && err_ok(e))
                    ERR(e, ERR_FORMAT, "'%s': tensor %d has no name", name, k);
                free(file);
                free(nm);
                free(dt);
                rc = -1;
                break;
            }
            m = hash__man_model(man, file, fn, e);
            for (int pass = 0; m && pass < 2; pass++) {
                struct man_tensor *t;
                if (!(pass ? has_csha : has_sha))
                    continue;
                t = man_add_tensor(m, nm, nn, pass, e);
                if (!t) {
                    m = NULL;
                    break;
                }
                memcpy(t->sha, pass ? csha : sha, SHA256_LEN);
                if (dt && !pass)
                    t->dtype = hash__xstrndup(dt, strlen(dt));
                sh = json_get(&d, j, "shape");
                if (sh >= 0 && json_is(&d, sh, JSMN_ARRAY) && d.tok[sh].size <= MODEL_MAX_DIMS) {
                    int q = sh + 1;
                    t->n_dims = 0;
                    for (int s = 0; s < d.tok[sh].size; s++, q = json_next(&d, q)) {
                        int64_t v;
                        if (json_i64(&d, q, &v, "shape", e) || v < 0) {
                            t->n_dims = -1;
                            err_clear(e);
                            break;
                        }
                        t->shape[t->n_dims++] = v;
                    }
                }
            }
            free(file);
            free(nm);
            free(dt);
            if (!m)
                rc = -1;
        }
    }
    json_release(&d);
    if (!rc && man->n_f == 0 && man->n_m == 0)
        rc = ERR(e, ERR_FORMAT, "'%s': no files or tensors with a sha256", name);
    return rc;
}

/* Read a manifest that is not a regular file (a pipe, "-" for standard input). */
static int slurp_fd(const char *path, struct sbuf *b, struct err *e)
{
    char buf[65536];
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return ERR_SYS(e, "cannot open '%s'", path);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ERR_SYS(e, "cannot read '%s'", path);
            break;
        }
        if (r == 0 || sbuf_add(b, buf, (size_t)r))
            break;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    if (!err_ok(e))
        return -1;
    return sbuf_check(b, "manifest", e);
}

int hash__manifest_load(struct manifest *man, const char *path, struct err *e)
{
    struct mfile mf;
    struct sbuf sb = SBUF_INIT(HASH_MAX_TEXT);
    struct stat st;
    const char *p;
    size_t n, i = 0;
    int rc;

    memset(man, 0, sizeof *man);
    memset(&mf, 0, sizeof mf);
    if (strcmp(path, "-") == 0 || (stat(path, &st) == 0 && !S_ISREG(st.st_mode) &&
                                   !S_ISDIR(st.st_mode))) {
        if (slurp_fd(path, &sb, e)) {
            sbuf_release(&sb);
            return -1;
        }
        p = sb.p;
        n = sb.len;
    } else {
        if (mfile_open(&mf, path, e))
            return -1;
        if (mf.size > HASH_MAX_TEXT) {
            mfile_close(&mf);
            return ERR(e, ERR_LIMIT, "manifest '%s' is larger than 1 GiB", path);
        }
        p = (const char *)mf.data;
        n = (size_t)mf.size;
    }
    while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
        i++;
    if (i < n && p[i] == '{')
        rc = parse_json(man, p, n, path, e);
    else
        rc = parse_text(man, p ? p : "", n, path, e);
    mfile_close(&mf);
    sbuf_release(&sb);
    if (rc)
        hash__manifest_release(man);
    return rc;
}
