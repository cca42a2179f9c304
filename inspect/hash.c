/*
 * hash.c - apr-hash: whole-file, per-tensor, model, content and metadata SHA-256,
 * manifests (write and --check) and --verify-source.  The hashes and the record
 * encodings are defined in hash.h and man/apr-hash.1.
 *
 * Design:
 *   - Everything streams from read-only maps.  Whole files and tensors are fed to
 *     SHA-256 in HASH_CHUNK pieces, and the pages of a piece are dropped from our
 *     mapping once hashed (MADV_DONTNEED on a private read-only map only forgets them:
 *     the page cache keeps them), so RSS stays bounded whatever the model size.
 *   - A SHA-256 is sequential: -j cannot speed up one big file.  Parallelism is across
 *     files (whole-file mode) and across tensors (--tensors, --content), with workers
 *     pulling jobs largest first from an atomic counter.
 *   - --content dequantizes through dequant/dq.h in chunks of at most HASH_DQ_CHUNK
 *     floats per worker; llama-family q/k rows stored in GGUF order are read in HF
 *     order (formats/names.h) so the same weights hash the same in every container.
 *   - --check keys everything by hash and tensor name, never by path: a file matches a
 *     manifest entry by whole-file SHA-256, then by model hash, then by path or by the
 *     tensor names it shares; tensors pair by stored name, then by canonical name.
 *   - A directory (a Hugging Face model directory) is every regular file under it,
 *     sorted bytewise by relative path; symbolic links are never followed (noted and
 *     skipped).  Whole-file mode expands it into those files; -o lists them after the
 *     model's mapped shards; --check compares them by path relative to the model's
 *     manifest entry (so a moved directory still checks), the shards by tensors only.
 */
#include "hash.h"

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

#define HASH_CHUNK    (16u << 20)   /* bytes per SHA-256 update: progress and page-drop step */
#define HASH_DQ_CHUNK (1u << 20)    /* floats of --content scratch per worker (4 MiB) */
#define HASH_MAX_TEXT (1ull << 30)  /* cap on a manifest's size and on one metadata record */

enum { EXIT_MATCH = 0, EXIT_MISMATCH = 1, EXIT_TROUBLE = 2 };

/* ---- small helpers ------------------------------------------------------------------ */

static char *xstrndup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* Forget the whole pages of [p, p+n) from a private read-only file mapping. */
static void drop_pages(const uint8_t *p, uint64_t n)
{
    long pg = sysconf(_SC_PAGESIZE);   /* from the auxiliary vector: no system call */
    uintptr_t a, b;

    if (pg <= 0 || n == 0)
        return;
    a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    b = ((uintptr_t)p + (uintptr_t)n) & ~((uintptr_t)pg - 1);
    if (b > a)
        madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
}

/* Feed [p, p+n) to h in HASH_CHUNK pieces; drop pages when mapped; report progress. */
static void sha_stream(struct sha256 *h, const uint8_t *p, uint64_t n, int mapped,
                       struct progress *prog)
{
    while (n) {
        uint64_t k = n > HASH_CHUNK ? HASH_CHUNK : n;
        sha256_update(h, p, (size_t)k);
        if (mapped)
            drop_pages(p, k);
        if (prog)
            progress_add(prog, k);
        p += k;
        n -= k;
    }
}

static int hash_stdin(uint8_t out[SHA256_LEN], uint64_t *size, struct err *e)
{
    enum { BUF = 1 << 16 };
    uint8_t *buf = malloc(BUF);
    struct sha256 h;
    uint64_t total = 0;

    if (!buf)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        free(buf);
        return -1;
    }
    for (;;) {
        ssize_t r = read(STDIN_FILENO, buf, BUF);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            sha256_release(&h);
            free(buf);
            return ERR_SYS(e, "cannot read standard input");
        }
        if (r == 0)
            break;
        sha256_update(&h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    if (size)
        *size = total;
    return sha256_final(&h, out, e);
}

static int hash_file_prog(const char *path, uint8_t out[SHA256_LEN], uint64_t *size,
                          struct progress *prog, struct err *e)
{
    struct mfile mf;
    struct sha256 h;

    if (strcmp(path, "-") == 0)
        return hash_stdin(out, size, e);
    if (mfile_open(&mf, path, e))
        return -1;
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        mfile_close(&mf);
        return -1;
    }
    mfile_advise_seq(&mf, 0, mf.size);
    sha_stream(&h, mf.data, mf.size, mf.mapped, prog);
    if (size)
        *size = mf.size;
    mfile_close(&mf);
    return sha256_final(&h, out, e);
}

int hash_file(const char *path, uint8_t out[SHA256_LEN], uint64_t *size, struct err *e)
{
    return hash_file_prog(path, out, size, NULL, e);
}

/* ---- directories ------------------------------------------------------------------- */

/*
 * A directory's files, for whole-file mode, manifests and --check of a model directory:
 * every entry under it, recursively, by path relative to it, sorted bytewise
 * (common/dirwalk.h).  Symbolic links are never followed (a link may point out of the
 * directory); they and other non-regular files are listed with their kind so that
 * callers can say they were skipped.
 */
#define HASH_MAX_DEPTH 256

/* The note for an entry that is not hashed. */
static void dent_note(FILE *errs, const char *root, const struct dir_entry *d)
{
    char *full = path_join(root, d->rel);
    fprintf(errs, "%s: note: '%s': %s, skipped\n", cli_progname, full ? full : d->rel,
            d->kind == DIRENT_LINK ? "symbolic link not followed" : "not a regular file");
    free(full);
}

/* path relative to directory dir ("dir/x/y" -> "x/y"), or NULL when not under it. */
static const char *rel_under(const char *path, const char *dir)
{
    size_t dn = strlen(dir);
    while (dn > 1 && dir[dn - 1] == '/')
        dn--;
    if (strncmp(path, dir, dn) != 0 || (path[dn] != '/' && !(dn == 1 && dir[0] == '/')))
        return NULL;
    path += dn;
    while (*path == '/')
        path++;
    return *path ? path : NULL;
}

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

static const struct hash_tensor **sorted_tensors(const struct hash_tensor *t, uint64_t n,
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
    const struct hash_tensor **v = sorted_tensors(t, n, 1, e);
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

/* ---- the tensor worker pool ---------------------------------------------------------- */

struct job {
    uint64_t bytes;
    uint64_t idx;     /* tensor index, or file index when is_file */
    int      is_file;
};

struct pool {
    const struct model *m;
    struct hash_model  *h;
    unsigned            what;
    struct job         *jobs;
    uint64_t            n_jobs;
    atomic_uint_fast64_t next;
    atomic_int          failed;
    char                arch[64];
    int64_t             n_head, n_head_kv;
    uint8_t           (*file_sha)[SHA256_LEN];  /* per model file, when asked */
    struct progress    *prog;
    pthread_mutex_t     mu;
    struct err          e;
};

static int tensor_mapped(const struct model *m, const struct model_tensor *t)
{
    return t->file < m->n_files && m->files[t->file].mapped;
}

static void to_le(float *buf, uint64_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &buf[i], 4);
        u = __builtin_bswap32(u);
        memcpy(&buf[i], &u, 4);
    }
#else
    (void)buf;
    (void)n;
#endif
}

/* SHA-256 of the dequantized values of t (q/k rows in HF order when perm != NONE). */
static int content_hash(struct pool *P, const struct model_tensor *t, struct hash_tensor *ht,
                        float **scratch, uint64_t *scratch_n, struct err *e)
{
    const struct dq_traits *tr = dq_get(t->dtype);
    struct sha256 h;
    int64_t heads = 0;
    enum names_perm perm = NAMES_PERM_NONE;
    uint64_t need, n = (uint64_t)t->n_elems;
    int mapped = tensor_mapped(P->m, t);

    if (!tr || !tr->to_f32 || !tr->blck)
        return ERR(e, ERR_UNSUPPORTED, "tensor '%s': type %s has no f32 value", ht->name,
                   dtype_name(t->dtype));
    if (names_is_gguf_style(t->name))
        perm = names_qk_permute_kind(P->arch, t->name);
    if (perm != NAMES_PERM_NONE && t->n_dims >= 1) {
        heads = perm == NAMES_PERM_Q ? P->n_head : P->n_head_kv;
        if (heads <= 0)
            return ERR(e, ERR_FORMAT,
                       "tensor '%s': cannot put q/k rows in Hugging Face order: no head count "
                       "in the metadata", ht->name);
    }
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        return -1;
    }
    if (t->dtype == DT_APR_Q8 || t->dtype == DT_APR_Q4 || (heads > 0 && t->shape[0] == 0)) {
        /* Whole-tensor layouts (one scale for the whole tensor, padded last block). */
        float *all = dq_tensor_to_f32_new(t, 1, e);
        if (!all) {
            sha256_release(&h);
            return -1;
        }
        to_le(all, n);
        sha256_update(&h, all, (size_t)(n * 4));
        free(all);
    } else if (heads > 0) {
        int64_t rows = t->shape[0], row_elems = t->n_elems / (rows ? rows : 1);
        uint64_t row_bytes, chunk_rows;
        if (row_elems % tr->blck != 0 || names_perm_check(rows, heads, e)) {
            sha256_release(&h);
            return ERR(e, ERR_FORMAT, "tensor '%s': rows cannot be permuted", ht->name);
        }
        row_bytes = (uint64_t)row_elems / tr->blck * tr->type_size;
        chunk_rows = HASH_DQ_CHUNK / (uint64_t)(row_elems ? row_elems : 1);
        if (chunk_rows == 0)
            chunk_rows = 1;
        need = chunk_rows * (uint64_t)row_elems;
        if (need > *scratch_n) {
            float *p = realloc(*scratch, need * sizeof(float));
            if (!p) {
                sha256_release(&h);
                return ERR(e, ERR_NOMEM, "out of memory");
            }
            *scratch = p;
            *scratch_n = need;
        }
        for (int64_t r0 = 0; r0 < rows; r0 += (int64_t)chunk_rows) {
            int64_t r1 = r0 + (int64_t)chunk_rows < rows ? r0 + (int64_t)chunk_rows : rows;
            for (int64_t r = r0; r < r1; r++) {
                int64_t src = names_perm_row(r, rows, heads, 0);
                if (dq_to_f32(t->dtype, t->data + (uint64_t)src * row_bytes, row_bytes,
                              *scratch + (uint64_t)(r - r0) * (uint64_t)row_elems, row_elems, 1,
                              e)) {
                    sha256_release(&h);
                    return -1;
                }
            }
            to_le(*scratch, (uint64_t)(r1 - r0) * (uint64_t)row_elems);
            sha256_update(&h, *scratch, (size_t)((uint64_t)(r1 - r0) * (uint64_t)row_elems * 4));
            if (P->prog)
                progress_add(P->prog, (uint64_t)(r1 - r0) * row_bytes);
        }
        if (mapped)
            drop_pages(t->data, t->size);
        ht->unpermuted = 1;
    } else {
        uint64_t blocks = n / tr->blck, chunk_blocks = HASH_DQ_CHUNK / tr->blck;
        if (n % tr->blck != 0) {
            sha256_release(&h);
            return ERR(e, ERR_FORMAT, "tensor '%s': %llu elements are not whole blocks of %u",
                       ht->name, (unsigned long long)n, tr->blck);
        }
        if (chunk_blocks == 0)
            chunk_blocks = 1;
        need = chunk_blocks * tr->blck;
        if (need > *scratch_n) {
            float *p = realloc(*scratch, need * sizeof(float));
            if (!p) {
                sha256_release(&h);
                return ERR(e, ERR_NOMEM, "out of memory");
            }
            *scratch = p;
            *scratch_n = need;
        }
        for (uint64_t b0 = 0; b0 < blocks; b0 += chunk_blocks) {
            uint64_t nb = blocks - b0 < chunk_blocks ? blocks - b0 : chunk_blocks;
            const uint8_t *src = t->data + b0 * tr->type_size;
            if (dq_to_f32(t->dtype, src, nb * tr->type_size, *scratch, (int64_t)(nb * tr->blck),
                          1, e)) {
                sha256_release(&h);
                return -1;
            }
            to_le(*scratch, nb * tr->blck);
            sha256_update(&h, *scratch, (size_t)(nb * tr->blck * 4));
            if (mapped)
                drop_pages(src, nb * tr->type_size);
            if (P->prog)
                progress_add(P->prog, nb * tr->type_size);
        }
    }
    return sha256_final(&h, ht->content, e);
}

static int run_job(struct pool *P, const struct job *j, float **scratch, uint64_t *scratch_n,
                   struct err *e)
{
    struct sha256 h;

    if (j->is_file) {
        const struct mfile *mf = &P->m->files[j->idx];
        if (sha256_init(&h, e)) {
            sha256_release(&h);
            return -1;
        }
        sha_stream(&h, mf->data, mf->size, mf->mapped, P->prog);
        return sha256_final(&h, P->file_sha[j->idx], e);
    }
    const struct model_tensor *t = &P->m->tensors[j->idx];
    struct hash_tensor *ht = &P->h->t[j->idx];
    if (P->what & HASH_WANT_RAW) {
        if (sha256_init(&h, e)) {
            sha256_release(&h);
            return -1;
        }
        sha_stream(&h, t->data, t->size, tensor_mapped(P->m, t), P->prog);
        if (sha256_final(&h, ht->sha, e))
            return -1;
    }
    if (P->what & HASH_WANT_CONTENT)
        return content_hash(P, t, ht, scratch, scratch_n, e);
    return 0;
}

static int pool_worker(void *arg, int64_t begin, int64_t end, int worker)
{
    struct pool *P = arg;
    float *scratch = NULL;
    uint64_t scratch_n = 0;
    int rc = 0;

    (void)begin;
    (void)end;
    (void)worker;
    while (!atomic_load(&P->failed)) {
        uint64_t i = atomic_fetch_add(&P->next, 1);
        struct err e = ERR_INIT;
        if (i >= P->n_jobs)
            break;
        if (run_job(P, &P->jobs[i], &scratch, &scratch_n, &e)) {
            pthread_mutex_lock(&P->mu);
            if (err_ok(&P->e))
                P->e = e;
            pthread_mutex_unlock(&P->mu);
            atomic_store(&P->failed, 1);
            rc = -1;
        }
    }
    free(scratch);
    return rc;
}

static int cmp_job(const void *a, const void *b)
{
    const struct job *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    if (x->is_file != y->is_file)
        return y->is_file - x->is_file;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void hash_model_release(struct hash_model *h)
{
    if (!h)
        return;
    for (uint64_t i = 0; h->t && i < h->n_tensors; i++) {
        free(h->t[i].name);
        free(h->t[i].canon);
    }
    free(h->t);
    free(h->path);
    memset(h, 0, sizeof *h);
}

/* Fill names and shapes of h from m. */
static int hm_init(struct hash_model *h, const struct model *m, struct err *e)
{
    char buf[NAMES_MAX];

    memset(h, 0, sizeof *h);
    h->path = xstrndup(m->path, strlen(m->path));
    h->format = m->format;
    h->t = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *h->t);
    if (!h->path || !h->t) {
        hash_model_release(h);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    h->n_tensors = m->n_tensors;
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[i];
        struct hash_tensor *ht = &h->t[i];
        int rc = names_canonical(NULL, t->name, buf, sizeof buf);
        ht->name = xstrndup(t->name.p, t->name.n);
        ht->canon = rc == -2 ? xstrndup(t->name.p, t->name.n) : xstrndup(buf, strlen(buf));
        if (!ht->name || !ht->canon) {
            hash_model_release(h);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        ht->dtype = t->dtype;
        ht->n_dims = t->n_dims;
        memcpy(ht->shape, t->shape, sizeof ht->shape);
        ht->size = t->size;
    }
    return 0;
}

static int compute(const struct model *m, unsigned what, int n_threads,
                   uint8_t (*file_sha)[SHA256_LEN], struct progress *prog, struct hash_model *h,
                   struct err *e)
{
    struct pool P;
    uint64_t total = 0, nj = 0;
    int rc;

    if (hm_init(h, m, e))
        return -1;
    memset(&P, 0, sizeof P);
    P.m = m;
    P.h = h;
    P.what = what;
    P.file_sha = file_sha;
    P.e = (struct err)ERR_INIT;
    {
        struct model_config mc;
        model_config_peek(m, &mc);
        snprintf(P.arch, sizeof P.arch, "%s", mc.arch);
        P.n_head = mc.n_head;
        P.n_head_kv = mc.n_head_kv;
    }
    P.jobs = malloc((m->n_tensors + m->n_files + 1) * sizeof *P.jobs);
    if (!P.jobs) {
        hash_model_release(h);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    if (what & (HASH_WANT_RAW | HASH_WANT_CONTENT))
        for (uint64_t i = 0; i < m->n_tensors; i++) {
            P.jobs[nj].bytes = m->tensors[i].size;
            P.jobs[nj].idx = i;
            P.jobs[nj++].is_file = 0;
            total += m->tensors[i].size * (((what & HASH_WANT_RAW) != 0) +
                                           ((what & HASH_WANT_CONTENT) != 0));
        }
    for (uint64_t f = 0; file_sha && f < m->n_files; f++) {
        P.jobs[nj].bytes = m->files[f].size;
        P.jobs[nj].idx = f;
        P.jobs[nj++].is_file = 1;
        total += m->files[f].size;
    }
    qsort(P.jobs, nj, sizeof *P.jobs, cmp_job);
    P.n_jobs = nj;
    atomic_init(&P.next, 0);
    atomic_init(&P.failed, 0);
    pthread_mutex_init(&P.mu, NULL);
    if (prog)
        progress_start(prog, "hashing", total);
    P.prog = prog;
    if (n_threads < 1)
        n_threads = 1;
    rc = threads_run(n_threads, n_threads, pool_worker, &P);
    if (prog)
        progress_done(prog);
    pthread_mutex_destroy(&P.mu);
    free(P.jobs);
    if (rc || !err_ok(&P.e)) {
        if (!err_ok(&P.e))
            *e = err_ok(e) ? P.e : *e;
        else
            ERR(e, ERR_INTERNAL, "hashing failed");
        hash_model_release(h);
        return -1;
    }
    h->has_raw = (what & HASH_WANT_RAW) != 0;
    h->has_content = (what & HASH_WANT_CONTENT) != 0;
    if (h->has_raw && hash_records(h->t, h->n_tensors, 0, h->model_hash, e))
        goto fail;
    if (h->has_content && hash_records(h->t, h->n_tensors, 1, h->content_hash, e))
        goto fail;
    if (what & HASH_WANT_METADATA) {
        if (hash_metadata(m, h->metadata_hash, e))
            goto fail;
        h->has_metadata = 1;
    }
    return 0;
fail:
    hash_model_release(h);
    return -1;
}

int hash_model_compute(const struct model *m, unsigned what, int n_threads, struct hash_model *h,
                       struct err *e)
{
    return compute(m, what, n_threads, NULL, NULL, h, e);
}

/* SHA-256 of the tensor payloads concatenated in file order (llama-gguf-hash's model line). */
static int hash_concat(const struct model *m, uint8_t out[SHA256_LEN], struct err *e)
{
    struct sha256 h;
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        return -1;
    }
    for (uint64_t i = 0; i < m->n_tensors; i++)
        sha_stream(&h, m->tensors[i].data, m->tensors[i].size,
                   tensor_mapped(m, &m->tensors[i]), NULL);
    return sha256_final(&h, out, e);
}

/* ---- output ------------------------------------------------------------------------- */

/* One processed command-line file. */
struct item {
    const char        *path;        /* as given */
    int                ok;          /* 0 when hashing failed */
    int                is_reg;      /* a regular file: has a whole-file hash */
    int                has_sha;
    uint8_t            sha[SHA256_LEN];
    uint64_t           size;
    int                is_model;
    struct hash_model  hm;
    /* extra files of the model (shards; for a directory, then its other files), hashed */
    uint32_t           n_shards, cap_shards;
    char             **shard_path;
    uint64_t          *shard_size;
    uint8_t          (*shard_sha)[SHA256_LEN];
};

static void item_release(struct item *it)
{
    hash_model_release(&it->hm);
    for (uint32_t i = 0; i < it->n_shards; i++)
        free(it->shard_path[i]);
    free(it->shard_path);
    free(it->shard_size);
    free(it->shard_sha);
}

/* Append an extra file (path copied) to its shard list. */
static int item_add_file(struct item *it, const char *path, uint64_t size,
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
    it->shard_path[it->n_shards] = xstrndup(path, strlen(path));
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
static int item_add_dir(const struct hash_opts *o, struct item *it, FILE *errs, struct err *e)
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
            const char *r = rel_under(it->shard_path[s], it->path);
            listed = r && strcmp(r, dl.v[i].rel) == 0;
        }
        if (listed)
            continue;
        if (dl.v[i].kind != DIRENT_REG) {
            if (!o->quiet)
                dent_note(errs, it->path, &dl.v[i]);
            continue;
        }
        full = path_join(it->path, dl.v[i].rel);
        if (!full)
            rc = ERR(e, ERR_NOMEM, "out of memory");
        else if (hash_file(full, sha, &size, e) || item_add_file(it, full, size, sha, e))
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

static int write_text(FILE *f, struct item *items, int n, struct err *e)
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
        for (int pass = 0; pass < 2; pass++) {
            const struct hash_tensor **v;
            if ((pass == 0 && !h->has_raw) || (pass == 1 && !h->has_content))
                continue;
            v = sorted_tensors(h->t, h->n_tensors, pass, e);
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

static int write_json(struct sbuf *b, const struct hash_opts *o, struct item *items, int n,
                      struct err *e)
{
    struct json_w w;
    char ts[64];
    uint64_t n_all = 0;
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
            any_raw |= it->hm.has_raw;
            any_content |= it->hm.has_content;
        }
    }
    json_w_arr_end(&w);
    if (any_raw || any_content) {
        /* every tensor of every file, for the set's model hash */
        struct hash_tensor *all = calloc(n_all ? n_all : 1, sizeof *all);
        uint64_t k = 0;
        if (!all)
            return ERR(e, ERR_NOMEM, "out of memory");
        json_w_key(&w, "tensors");
        json_w_arr(&w);
        for (int i = 0; i < n; i++) {
            const struct hash_model *h = &items[i].hm;
            const struct hash_tensor **v;
            if (!items[i].ok || !items[i].is_model)
                continue;
            v = sorted_tensors(h->t, h->n_tensors, 0, e);
            if (!v) {
                free(all);
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
        }
        json_w_arr_end(&w);
        if (any_raw) {
            uint8_t d[SHA256_LEN];
            rc = hash_records(all, k, 0, d, e);
            if (!rc)
                jw_hex(&w, "model_hash", d);
        }
        if (!rc && any_content) {
            uint8_t d[SHA256_LEN];
            rc = hash_records(all, k, 1, d, e);
            if (!rc)
                jw_hex(&w, "content_hash", d);
        }
        free(all);
        if (rc)
            return -1;
    }
    json_w_obj_end(&w);
    sbuf_addc(b, '\n');
    return sbuf_check(b, "JSON output", e);
}

/* ---- manifests ---------------------------------------------------------------------- */

struct man_tensor {
    char    *name;
    char    *dtype;                  /* NULL when the manifest does not say */
    int      n_dims;                 /* -1 when the manifest does not say */
    int64_t  shape[MODEL_MAX_DIMS];
    uint8_t  sha[SHA256_LEN];
    int      content;                /* a content hash (F32 values), else stored bytes */
    int      seen;
};

struct man_model {
    char              *path;         /* NULL when the manifest names none */
    int                has_model, has_content, has_metadata, has_whole;
    uint8_t            model_hash[SHA256_LEN], content_hash[SHA256_LEN];
    uint8_t            metadata_hash[SHA256_LEN], whole[SHA256_LEN];
    struct man_tensor *t;
    size_t             n_t, cap_t;
    int                n_raw, n_content;
    int                matched;
};

struct man_file {
    char    *path;
    int      has_sha;
    uint8_t  sha[SHA256_LEN];
    uint64_t size;
    int      has_size;
    int      matched;
};

struct manifest {
    struct man_file  *f;
    size_t            n_f, cap_f;
    struct man_model *m;
    size_t            n_m, cap_m;
    size_t            n_ignored;     /* xxh64/sha1/xxh3/uuid lines */
    size_t            n_bad;         /* unparseable lines */
};

static void manifest_release(struct manifest *man)
{
    for (size_t i = 0; i < man->n_f; i++)
        free(man->f[i].path);
    for (size_t i = 0; i < man->n_m; i++) {
        for (size_t j = 0; j < man->m[i].n_t; j++) {
            free(man->m[i].t[j].name);
            free(man->m[i].t[j].dtype);
        }
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
    f->path = xstrndup(path, n);
    if (!f->path) {
        ERR(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    man->n_f++;
    return f;
}

/* The model entry for path (NULL path: the anonymous one), created when absent. */
static struct man_model *man_model(struct manifest *man, const char *path, size_t n,
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
        m->path = xstrndup(path, n);
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
    t->name = xstrndup(name, n);
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
    *out = xstrndup(s, (size_t)(end - s));
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

struct gg_line {
    char   *target;
    size_t  n;
    uint8_t sha[SHA256_LEN];
};

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
            struct man_model *m = man_model(man, gl[i].target, gl[i].n, e);
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
        m = man_model(man, gl[i].target, cut, e);
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
            const char *h;
            size_t hn, pn;
            char *path = NULL;
            uint8_t d[SHA256_LEN];
            int kind = IS("model") ? 0 : IS("metadata") ? 1 : 2;
            if (next_field(&c, le, &h, &hn) || sha256_parse_hex(h, hn, d) ||
                rest_field(&c, le, &path, &pn)) {
                free(path);
                man->n_bad++;
                continue;
            }
            cur = man_model(man, path, pn, e);
            free(path);
            if (!cur) {
                rc = -1;
                break;
            }
            memcpy(kind == 0 ? cur->model_hash : kind == 1 ? cur->metadata_hash : cur->content_hash,
                   d, SHA256_LEN);
            if (kind == 0)
                cur->has_model = 1;
            else if (kind == 1)
                cur->has_metadata = 1;
            else
                cur->has_content = 1;
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
                cur = man_model(man, NULL, 0, e);
            t = cur ? man_add_tensor(cur, nm, nn, content, e) : NULL;
            free(nm);
            if (!t) {
                rc = -1;
                break;
            }
            memcpy(t->sha, d, SHA256_LEN);
            t->n_dims = tmp.n_dims;
            memcpy(t->shape, tmp.shape, sizeof t->shape);
            t->dtype = xstrndup(dt, dtn);
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
            target = xstrndup(c, (size_t)(le - c));
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
    *out = xstrndup(b.p ? b.p : "", b.len);
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
                path = xstrndup("", 0);
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
                struct man_model *m = man_model(man, path, pn, e);
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
            m = man_model(man, file, fn, e);
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
                    t->dtype = xstrndup(dt, strlen(dt));
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

static int manifest_load(struct manifest *man, const char *path, struct err *e)
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
        manifest_release(man);
    return rc;
}

/* ---- --check -------------------------------------------------------------------------- */

struct checker {
    const struct hash_opts *o;
    FILE                   *out, *errs;
    struct manifest         man;
    int                     n_threads;
    unsigned                need;       /* what to compute for models */
    uint64_t                n_ok, n_mismatch, n_missing, n_extra, n_failed, n_trouble;
    /* checking a directory: the model entry it matched, its mapped files (relative) */
    int                     in_dir;
    struct man_model       *hit;
    char                  **shard_rel;
    uint32_t                n_shard_rel;
};

static void say(struct checker *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct checker *c, const char *path, const char *fmt, ...)
{
    va_list ap;
    if (c->o->quiet)
        return;
    cli_put_escaped(c->out, path, strlen(path));
    fputs(": ", c->out);
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fputc('\n', c->out);
}

static void say_tensor(struct checker *c, const char *path, const char *name, const char *what)
{
    if (c->o->quiet)
        return;
    cli_put_escaped(c->out, path, strlen(path));
    fputs(": tensor '", c->out);
    cli_put_escaped(c->out, name, strlen(name));
    fprintf(c->out, "': %s\n", what);
}

static void link_models(struct checker *c, const char *path)
{
    for (size_t i = 0; i < c->man.n_m; i++)
        if (c->man.m[i].path && strcmp(c->man.m[i].path, path) == 0)
            c->man.m[i].matched = 1;
    for (size_t i = 0; i < c->man.n_f; i++)
        if (strcmp(c->man.f[i].path, path) == 0)
            c->man.f[i].matched = 1;
}

static const struct hash_tensor *find_tensor(const struct hash_tensor **by_name,
                                             const struct hash_tensor **by_canon, uint64_t n,
                                             const char *name, int content)
{
    char canon[NAMES_MAX];
    uint64_t lo = 0, hi = n;
    /* stored bytes pair by the stored name first; content hashes by canonical name */
    if (!content) {
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            int r = strcmp(by_name[mid]->name, name);
            if (r == 0)
                return by_name[mid];
            if (r < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    if (names_canonical(NULL, slice_from_cstr(name), canon, sizeof canon) == -2)
        return NULL;
    lo = 0;
    hi = n;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        int r = strcmp(by_canon[mid]->canon, canon);
        if (r == 0) {
            while (mid > 0 && strcmp(by_canon[mid - 1]->canon, canon) == 0)
                mid--;
            return by_canon[mid];
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static uint64_t shared_names(const struct man_model *mm, const struct hash_tensor **bn,
                             const struct hash_tensor **bc, uint64_t n)
{
    uint64_t k = 0;
    for (size_t i = 0; i < mm->n_t; i++)
        if (find_tensor(bn, bc, n, mm->t[i].name, mm->t[i].content))
            k++;
    return k;
}

/* Compare model h (from path) with manifest model mm, tensor by tensor.  0 or 1 problems. */
static int compare_model(struct checker *c, const char *path, const struct model *m,
                         const struct hash_model *h, struct man_model *mm, struct err *e)
{
    const struct hash_tensor **bn = sorted_tensors(h->t, h->n_tensors, 0, e);
    const struct hash_tensor **bc = sorted_tensors(h->t, h->n_tensors, 1, e);
    char *seen_raw = calloc(h->n_tensors + 1, 1), *seen_content = calloc(h->n_tensors + 1, 1);
    uint64_t bad = 0;
    int rc = 0;

    if (!bn || !bc || !seen_raw || !seen_content) {
        rc = err_ok(e) ? ERR(e, ERR_NOMEM, "out of memory") : -1;
        goto out;
    }
    for (size_t i = 0; i < mm->n_t; i++) {
        struct man_tensor *mt = &mm->t[i];
        const struct hash_tensor *t = find_tensor(bn, bc, h->n_tensors, mt->name, mt->content);
        char what[256];
        if (!t) {
            say_tensor(c, path, mt->name, "MISSING (in the manifest, not in the file)");
            c->n_missing++;
            bad++;
            continue;
        }
        (mt->content ? seen_content : seen_raw)[t - h->t] = 1;
        what[0] = 0;
        if (!mt->content && mt->dtype && strcmp(mt->dtype, dtype_name(t->dtype)) != 0)
            snprintf(what, sizeof what, "MISMATCH (dtype %s, manifest %s)", dtype_name(t->dtype),
                     mt->dtype);
        else if (mt->n_dims >= 0 &&
                 (mt->n_dims != t->n_dims ||
                  memcmp(mt->shape, t->shape, (size_t)t->n_dims * sizeof t->shape[0]) != 0))
            snprintf(what, sizeof what, "MISMATCH (shape differs from the manifest)");
        else if (memcmp(mt->sha, mt->content ? t->content : t->sha, SHA256_LEN) != 0)
            snprintf(what, sizeof what, "MISMATCH (%s differs)",
                     mt->content ? "content sha256" : "sha256");
        if (what[0]) {
            say_tensor(c, path, t->name, what);
            c->n_mismatch++;
            bad++;
        }
    }
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        if ((mm->n_raw && !seen_raw[i]) || (!mm->n_raw && mm->n_content && !seen_content[i])) {
            say_tensor(c, path, h->t[i].name, "EXTRA (in the file, not in the manifest)");
            c->n_extra++;
            bad++;
        }
    }
    if (mm->n_t == 0 && mm->has_model && h->has_raw &&
        memcmp(mm->model_hash, h->model_hash, SHA256_LEN) != 0) {
        say(c, path, "FAILED (model hash differs; the manifest lists no tensors)");
        bad++;
    }
    if (mm->n_t == 0 && !mm->has_model && mm->has_whole) {
        uint8_t d[SHA256_LEN];
        if (hash_concat(m, d, e)) {
            rc = -1;
            goto out;
        }
        if (memcmp(d, mm->whole, SHA256_LEN) != 0) {
            say(c, path, "FAILED (sha256 of the tensor data differs from the manifest's "
                "model line)");
            bad++;
        }
    }
    if (mm->has_metadata && h->has_metadata &&
        memcmp(mm->metadata_hash, h->metadata_hash, SHA256_LEN) != 0) {
        say(c, path, "metadata: MISMATCH (metadata hash differs)");
        c->n_mismatch++;
        bad++;
    }
    rc = bad ? 1 : 0;
out:
    free(bn);
    free(bc);
    free(seen_raw);
    free(seen_content);
    return rc;
}

static int check_dir(struct checker *c, const char *dir);

/* Check one file against the manifest: 0 match, 1 mismatch, 2 trouble. */
static int check_one(struct checker *c, const char *path)
{
    struct err e = ERR_INIT;
    struct stat st;
    uint8_t sha[SHA256_LEN];
    int have_sha = 0, rc;
    struct model m;
    struct hash_model h;
    struct man_model *best = NULL;

    if (stat(path, &st) != 0) {
        if (!c->o->quiet)
            fprintf(c->errs, "%s: %s: %s\n", cli_progname, path, strerror(errno));
        say(c, path, "FAILED (cannot open)");
        c->n_failed++;
        return EXIT_MISMATCH;
    }
    if (S_ISDIR(st.st_mode) && !c->in_dir)
        return check_dir(c, path);
    if (S_ISREG(st.st_mode) && c->man.n_f > 0) {
        if (hash_file(path, sha, NULL, &e)) {
            if (!c->o->quiet)
                fprintf(c->errs, "%s: %s\n", cli_progname, e.msg);
            c->n_trouble++;
            return EXIT_TROUBLE;
        }
        have_sha = 1;
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < c->man.n_f; i++) {
                struct man_file *f = &c->man.f[i];
                if (!f->has_sha || memcmp(f->sha, sha, SHA256_LEN) != 0 || (!pass && f->matched))
                    continue;
                f->matched = 1;
                link_models(c, f->path);
                say(c, path, "OK");
                c->n_ok++;
                return EXIT_MATCH;
            }
    }
    if (c->man.n_m == 0) {
        struct man_file *same = NULL;
        for (size_t i = 0; i < c->man.n_f && !same; i++)
            if (strcmp(c->man.f[i].path, path) == 0)
                same = &c->man.f[i];
        for (size_t i = 0; i < c->man.n_f && !same; i++)
            if (!c->man.f[i].matched && path_same_base(c->man.f[i].path, path))
                same = &c->man.f[i];
        if (same) {
            same->matched = 1;
            say(c, path, "FAILED (sha256 differs from the manifest entry '%s')", same->path);
        } else {
            say(c, path, "FAILED (no manifest entry has its sha256)");
        }
        c->n_failed++;
        return EXIT_MISMATCH;
    }
    if (model_open(&m, path, &e)) {
        say(c, path, "FAILED (%s; cannot compare tensors: %s)",
            have_sha ? "file sha256 not in the manifest" : "not a readable model", e.msg);
        c->n_failed++;
        return EXIT_MISMATCH;
    }
    if (c->in_dir && m.n_files > 0) {
        c->shard_rel = calloc(m.n_files, sizeof *c->shard_rel);
        for (uint32_t f = 0; c->shard_rel && f < m.n_files; f++) {
            const char *r = rel_under(m.files[f].path, path);
            c->shard_rel[c->n_shard_rel] = r ? xstrndup(r, strlen(r)) : NULL;
            if (c->shard_rel[c->n_shard_rel])
                c->n_shard_rel++;
        }
    }
    if (compute(&m, c->need, c->n_threads, NULL, NULL, &h, &e)) {
        if (!c->o->quiet)
            fprintf(c->errs, "%s: %s: %s\n", cli_progname, path, e.msg);
        model_close(&m);
        c->n_trouble++;
        return EXIT_TROUBLE;
    }
    /* 1. the model hash (or content hash) names the entry */
    for (int pass = 0; pass < 2 && !best; pass++)
        for (size_t i = 0; i < c->man.n_m && !best; i++) {
            struct man_model *mm = &c->man.m[i];
            if (!pass && mm->matched)
                continue;
            if ((mm->has_model && h.has_raw && !memcmp(mm->model_hash, h.model_hash, SHA256_LEN)) ||
                (mm->has_content && h.has_content &&
                 !memcmp(mm->content_hash, h.content_hash, SHA256_LEN)))
                best = mm;
        }
    if (best && !(best->has_metadata && h.has_metadata &&
                  memcmp(best->metadata_hash, h.metadata_hash, SHA256_LEN) != 0)) {
        best->matched = 1;
        c->hit = best;
        if (best->path)
            link_models(c, best->path);
        say(c, path, "OK (model hash%s)", have_sha ? "; the file's bytes differ" : "");
        c->n_ok++;
        rc = EXIT_MATCH;
        goto out;
    }
    /* 2. by path, then by file name, then by the most shared tensor names */
    for (size_t i = 0; i < c->man.n_m && !best; i++)
        if (c->man.m[i].path && strcmp(c->man.m[i].path, path) == 0)
            best = &c->man.m[i];
    for (size_t i = 0; i < c->man.n_m && !best; i++)
        if (!c->man.m[i].matched && c->man.m[i].path &&
            path_same_base(c->man.m[i].path, path))
            best = &c->man.m[i];
    if (!best) {
        const struct hash_tensor **bn = sorted_tensors(h.t, h.n_tensors, 0, &e);
        const struct hash_tensor **bc = sorted_tensors(h.t, h.n_tensors, 1, &e);
        uint64_t top = 0;
        for (size_t i = 0; bn && bc && i < c->man.n_m; i++) {
            uint64_t k;
            if (c->man.m[i].matched)
                continue;
            k = shared_names(&c->man.m[i], bn, bc, h.n_tensors);
            if (k > top) {
                top = k;
                best = &c->man.m[i];
            }
        }
        free(bn);
        free(bc);
    }
    if (!best) {
        /* the only model the manifest describes (e.g. a model line and nothing else) */
        struct man_model *only = NULL;
        size_t n_unmatched = 0;
        for (size_t i = 0; i < c->man.n_m; i++)
            if (!c->man.m[i].matched) {
                only = &c->man.m[i];
                n_unmatched++;
            }
        if (n_unmatched == 1 && c->man.n_m == 1)
            best = only;
    }
    if (!best) {
        say(c, path, "FAILED (no manifest entry matches its hashes, path or tensor names)");
        c->n_failed++;
        rc = EXIT_MISMATCH;
        goto out;
    }
    best->matched = 1;
    c->hit = best;
    if (best->path)
        link_models(c, best->path);
    rc = compare_model(c, path, &m, &h, best, &e);
    if (rc < 0) {
        if (!c->o->quiet)
            fprintf(c->errs, "%s: %s: %s\n", cli_progname, path, e.msg);
        c->n_trouble++;
        rc = EXIT_TROUBLE;
    } else if (rc == 0) {
        say(c, path, "OK (tensors)");
        c->n_ok++;
        rc = EXIT_MATCH;
    } else {
        say(c, path, "FAILED");
        c->n_failed++;
        rc = EXIT_MISMATCH;
    }
out:
    hash_model_release(&h);
    model_close(&m);
    return rc;
}

static int worst(int a, int b)
{
    return a > b ? a : b;
}

/* The manifest's unmatched (or, any: matched too) file entry rel under prefix, or NULL. */
static struct man_file *dir_entry(struct checker *c, const char *prefix, const char *rel,
                                  const uint8_t *sha, int any)
{
    for (size_t i = 0; i < c->man.n_f; i++) {
        struct man_file *f = &c->man.f[i];
        const char *r = rel_under(f->path, prefix);
        if (!r || (f->matched && !any) || (rel && strcmp(r, rel) != 0))
            continue;
        if (sha && (!f->has_sha || memcmp(f->sha, sha, SHA256_LEN) != 0))
            continue;
        return f;
    }
    return NULL;
}

static int dlist_has(const struct dirlist *dl, const char *rel)
{
    size_t lo = 0, hi = dl->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(dl->v[mid].rel, rel);
        if (r == 0)
            return 1;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/*
 * Check a directory: its model (when the manifest describes models) by tensors as
 * check_one does, then every other regular file under it against the manifest's file
 * entries under the model's manifest path (or under dir), paired by relative path and
 * sha256, then by sha256 alone (moved), then by path (MISMATCH), then by file name;
 * unpaired files are EXTRA, unpaired entries MISSING.  Mapped model files are judged
 * by their tensors only, so metadata edits keep the check green.
 */
static int check_dir(struct checker *c, const char *dir)
{
    struct dirlist dl;
    struct err e = ERR_INIT;
    const char *prefix = dir;
    int status = EXIT_MATCH;

    c->in_dir = 1;
    c->hit = NULL;
    if (c->man.n_m > 0)
        status = check_one(c, dir);
    if (c->hit && c->hit->path)
        prefix = c->hit->path;
    if (dir_walk(&dl, dir, 0, HASH_MAX_DEPTH, 0, NULL, &e)) {
        if (!c->o->quiet)
            fprintf(c->errs, "%s: %s\n", cli_progname, e.msg);
        c->n_trouble++;
        status = EXIT_TROUBLE;
        goto out;
    }
    for (size_t i = 0; i < dl.n; i++) {
        const char *rel = dl.v[i].rel;
        struct man_file *f;
        uint8_t sha[SHA256_LEN];
        char *full;
        int shard = 0;
        for (uint32_t k = 0; k < c->n_shard_rel && !shard; k++)
            shard = strcmp(c->shard_rel[k], rel) == 0;
        if (shard) {
            for (f = dir_entry(c, prefix, rel, NULL, 0); f; f = dir_entry(c, prefix, rel, NULL, 0))
                f->matched = 1;   /* judged by its tensors above */
            continue;
        }
        if (dl.v[i].kind != DIRENT_REG) {
            if (!c->o->quiet)
                dent_note(c->errs, dir, &dl.v[i]);
            continue;
        }
        full = path_join(dir, rel);
        if (!full || hash_file(full, sha, NULL, &e)) {
            if (!full)
                ERR(&e, ERR_NOMEM, "out of memory");
            if (!c->o->quiet)
                fprintf(c->errs, "%s: %s\n", cli_progname, e.msg);
            err_clear(&e);
            free(full);
            c->n_trouble++;
            status = worst(status, EXIT_TROUBLE);
            continue;
        }
        f = dir_entry(c, prefix, rel, sha, 0);
        if (!f)
            f = dir_entry(c, prefix, NULL, sha, 0);
        if (f) {
            f->matched = 1;
            say(c, full, "OK");
            c->n_ok++;
        } else if (dir_entry(c, prefix, rel, NULL, 1) && !dir_entry(c, prefix, rel, NULL, 0)) {
            /* its entry was checked already (the manifest's own paths, no files given) */
        } else {
            f = dir_entry(c, prefix, rel, NULL, 0);
            for (size_t k = 0; !f && k < c->man.n_f; k++) {
                const char *r = rel_under(c->man.f[k].path, prefix);
                if (r && !c->man.f[k].matched && !dlist_has(&dl, r) &&
                    path_same_base(r, rel))
                    f = &c->man.f[k];
            }
            if (f) {
                const char *r = rel_under(f->path, prefix);
                f->matched = 1;
                if (strcmp(r, rel) == 0)
                    say(c, dir, "file '%s': MISMATCH (sha256 differs from the manifest)", rel);
                else
                    say(c, dir, "file '%s': MISMATCH (sha256 differs from the manifest entry "
                        "'%s')", rel, r);
                c->n_mismatch++;
                c->n_failed++;
            } else {
                say(c, dir, "file '%s': EXTRA (in the directory, not in the manifest)", rel);
                c->n_extra++;
            }
            status = worst(status, EXIT_MISMATCH);
        }
        free(full);
    }
    for (size_t i = 0; i < c->man.n_f; i++) {
        struct man_file *f = &c->man.f[i];
        const char *r = rel_under(f->path, prefix);
        if (!r || f->matched)
            continue;
        f->matched = 1;
        say(c, dir, "file '%s': MISSING (in the manifest, not in the directory)", r);
        c->n_missing++;
        status = worst(status, EXIT_MISMATCH);
    }
    dirlist_release(&dl);
out:
    for (uint32_t k = 0; k < c->n_shard_rel; k++)
        free(c->shard_rel[k]);
    free(c->shard_rel);
    c->shard_rel = NULL;
    c->n_shard_rel = 0;
    c->hit = NULL;
    c->in_dir = 0;
    return status;
}

static int run_check(const struct hash_opts *o, int n_files, char **files, FILE *out, FILE *errs,
                     struct err *e)
{
    struct checker c;
    int status = EXIT_MATCH;

    memset(&c, 0, sizeof c);
    c.o = o;
    c.out = out;
    c.errs = errs;
    c.n_threads = o->n_threads > 0 ? o->n_threads : threads_ncpu();
    if (manifest_load(&c.man, o->check, e)) {
        if (!o->quiet)
            fprintf(errs, "%s: %s\n", cli_progname, e->msg);
        return EXIT_TROUBLE;
    }
    for (size_t i = 0; i < c.man.n_m; i++) {
        const struct man_model *mm = &c.man.m[i];
        if (mm->n_raw || mm->has_model || mm->has_whole)
            c.need |= HASH_WANT_RAW;
        if (mm->n_content || mm->has_content)
            c.need |= HASH_WANT_CONTENT;
        if (mm->has_metadata)
            c.need |= HASH_WANT_METADATA;
    }
    if (!o->quiet && c.man.n_ignored)
        fprintf(errs, "%s: %s: note: %zu xxh64/sha1/xxh3/uuid lines ignored (only sha256 is "
                "checked)\n", cli_progname, o->check, c.man.n_ignored);
    if (!o->quiet && c.man.n_bad)
        fprintf(errs, "%s: %s: WARNING: %zu lines are improperly formatted\n", cli_progname,
                o->check, c.man.n_bad);
    if (n_files > 0) {
        for (int i = 0; i < n_files; i++)
            status = worst(status, check_one(&c, files[i]));
    } else {
        /* the paths the manifest names (relative to the working directory, as sha256sum -c) */
        for (size_t i = 0; i < c.man.n_f; i++)
            if (!c.man.f[i].matched)
                status = worst(status, check_one(&c, c.man.f[i].path));
        for (size_t i = 0; i < c.man.n_m; i++)
            if (!c.man.m[i].matched && c.man.m[i].path)
                status = worst(status, check_one(&c, c.man.m[i].path));
    }
    for (size_t i = 0; i < c.man.n_f; i++)
        if (!c.man.f[i].matched) {
            say(&c, o->check, "file '%s': MISSING (no file checked matches it)", c.man.f[i].path);
            c.n_missing++;
            status = worst(status, EXIT_MISMATCH);
        }
    for (size_t i = 0; i < c.man.n_m; i++)
        if (!c.man.m[i].matched) {
            say(&c, o->check, "model '%s': MISSING (no file checked matches it)",
                c.man.m[i].path ? c.man.m[i].path : "(unnamed)");
            c.n_missing++;
            status = worst(status, EXIT_MISMATCH);
        }
    if (!o->quiet && status != EXIT_MATCH)
        fprintf(errs, "%s: WARNING: %llu mismatched, %llu missing, %llu extra; %llu of %llu files "
                "failed\n", cli_progname, (unsigned long long)c.n_mismatch,
                (unsigned long long)c.n_missing, (unsigned long long)c.n_extra,
                (unsigned long long)(c.n_failed + c.n_trouble),
                (unsigned long long)(c.n_ok + c.n_failed + c.n_trouble));
    manifest_release(&c.man);
    return status;
}

/* ---- --verify-source ---------------------------------------------------------------- */

static int run_verify_source(const struct hash_opts *o, const char *apr, FILE *out, FILE *errs,
                             struct err *e)
{
    struct model m;
    struct slice rec;
    uint8_t want[SHA256_LEN], got[SHA256_LEN];
    char hex[SHA256_HEX_LEN + 1], whex[SHA256_HEX_LEN + 1];
    int rc;

    if (model_open(&m, apr, e)) {
        if (!o->quiet)
            fprintf(errs, "%s: %s\n", cli_progname, e->msg);
        return EXIT_TROUBLE;
    }
    if (model_kv_get_str(&m, HASH_SOURCE_KEY, &rec) != 0) {
        ERR(e, ERR_FORMAT, "'%s' records no source: metadata key '%s' (a string of 64 hex "
            "digits written by apr-convert) is missing", apr, HASH_SOURCE_KEY);
        model_close(&m);
        if (!o->quiet)
            fprintf(errs, "%s: %s\n", cli_progname, e->msg);
        return EXIT_TROUBLE;
    }
    rc = sha256_parse_hex(rec.p, rec.n, want);
    model_close(&m);
    if (rc) {
        ERR(e, ERR_FORMAT, "'%s': metadata key '%s' is not 64 hex digits", apr, HASH_SOURCE_KEY);
        if (!o->quiet)
            fprintf(errs, "%s: %s\n", cli_progname, e->msg);
        return EXIT_TROUBLE;
    }
    if (hash_file(o->verify_source, got, NULL, e)) {
        if (!o->quiet)
            fprintf(errs, "%s: %s\n", cli_progname, e->msg);
        return EXIT_TROUBLE;
    }
    sha256_hex(got, hex);
    sha256_hex(want, whex);
    if (memcmp(want, got, SHA256_LEN) != 0) {
        if (!o->quiet) {
            cli_put_escaped(out, apr, strlen(apr));
            fprintf(out, ": source MISMATCH: recorded %s, '", whex);
            cli_put_escaped(out, o->verify_source, strlen(o->verify_source));
            fprintf(out, "' has %s\n", hex);
        }
        ERR(e, ERR_MISMATCH, "'%s' was not converted from '%s'", apr, o->verify_source);
        return EXIT_MISMATCH;
    }
    if (!o->quiet) {
        cli_put_escaped(out, apr, strlen(apr));
        fprintf(out, ": source OK (sha256 %s)\n", hex);
    }
    return EXIT_MATCH;
}

/* ---- hashing files ------------------------------------------------------------------ */

struct filejob {
    struct item *items;
    int          n;
    atomic_int   next;
    struct progress *prog;
    struct err  *errs;   /* one per item */
};

static int file_worker(void *arg, int64_t b, int64_t end, int w)
{
    struct filejob *J = arg;
    (void)b;
    (void)end;
    (void)w;
    for (;;) {
        int i = atomic_fetch_add(&J->next, 1);
        if (i >= J->n)
            break;
        struct item *it = &J->items[i];
        if (strcmp(it->path, "-") == 0)
            continue;   /* standard input: hashed in order by the caller */
        if (hash_file_prog(it->path, it->sha, &it->size, J->prog, &J->errs[i]) == 0) {
            it->ok = 1;
            it->has_sha = 1;
        }
    }
    return 0;
}

/* Hash one model file (tensors, content, and its files' bytes when with_files). */
static int hash_model_item(const struct hash_opts *o, struct item *it, unsigned what,
                           int with_files, int n_threads, struct progress *prog, struct err *e)
{
    struct model m;
    uint8_t (*fsha)[SHA256_LEN] = NULL;
    struct stat st;

    if (model_open(&m, it->path, e))
        return -1;
    if (with_files) {
        fsha = calloc(m.n_files ? m.n_files : 1, sizeof *fsha);
        if (!fsha) {
            model_close(&m);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
    }
    if (compute(&m, what, n_threads, fsha, o->quiet || o->no_progress ? NULL : prog, &it->hm, e)) {
        free(fsha);
        model_close(&m);
        return -1;
    }
    it->is_model = 1;
    it->is_reg = stat(it->path, &st) == 0 && S_ISREG(st.st_mode);
    for (uint32_t f = 0; with_files && f < m.n_files; f++) {
        if (it->is_reg && strcmp(m.files[f].path, it->path) == 0) {
            memcpy(it->sha, fsha[f], SHA256_LEN);
            it->size = m.files[f].size;
            it->has_sha = 1;
            continue;
        }
        if (item_add_file(it, m.files[f].path, m.files[f].size, fsha[f], e)) {
            free(fsha);
            model_close(&m);
            return -1;
        }
    }
    /* an index.json or a file outside the mapped set: hash it too */
    if (with_files && it->is_reg && !it->has_sha) {
        if (hash_file(it->path, it->sha, &it->size, e)) {
            free(fsha);
            model_close(&m);
            return -1;
        }
        it->has_sha = 1;
    }
    free(fsha);
    model_close(&m);
    return 0;
}

/*
 * Whole-file mode: each directory argument becomes the regular files under it (sorted
 * by relative path, symbolic links and other entries noted and skipped).  *out (the new
 * argument list) and *owned (the strings to free) are allocated; returns the count, or
 * -1 when out of memory.  A directory that cannot be read is reported and sets *status.
 */
static int expand_dirs(const struct hash_opts *o, int n_files, char **files, char ***out,
                       char ***owned, FILE *errs, int *status, struct err *e)
{
    char **list = NULL, **own = NULL;
    size_t n = 0, cap = 0, n_own = 0, cap_own = 0;

    for (int i = 0; i < n_files; i++) {
        struct stat st;
        struct dirlist dl;
        struct err de = ERR_INIT;
        if (strcmp(files[i], "-") == 0 || stat(files[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            if (vec_reserve((void **)&list, &cap, n + 1, sizeof *list, e))
                goto fail;
            list[n++] = files[i];
            continue;
        }
        if (dir_walk(&dl, files[i], 0, HASH_MAX_DEPTH, 0, NULL, &de)) {
            if (!o->quiet)
                fprintf(errs, "%s: %s\n", cli_progname, de.msg);
            if (err_ok(e))
                *e = de;
            *status = 1;
            continue;
        }
        for (size_t k = 0; k < dl.n; k++) {
            char *full;
            if (dl.v[k].kind != DIRENT_REG) {
                if (!o->quiet)
                    dent_note(errs, files[i], &dl.v[k]);
                continue;
            }
            full = path_join(files[i], dl.v[k].rel);
            if (!full || vec_reserve((void **)&list, &cap, n + 1, sizeof *list, e) ||
                vec_reserve((void **)&own, &cap_own, n_own + 1, sizeof *own, e)) {
                free(full);
                dirlist_release(&dl);
                goto fail;
            }
            list[n++] = full;
            own[n_own++] = full;
        }
        dirlist_release(&dl);
    }
    if (n > (size_t)INT32_MAX / 2)
        goto fail;
    if (vec_reserve((void **)&own, &cap_own, n_own + 1, sizeof *own, e))
        goto fail;
    own[n_own] = NULL;
    *out = list;
    *owned = own;
    return (int)n;
fail:
    for (size_t k = 0; k < n_own; k++)
        free(own[k]);
    free(own);
    free(list);
    if (err_ok(e))
        ERR(e, ERR_NOMEM, "out of memory");
    return -1;
}

static int run_hash(const struct hash_opts *o, int n_files, char **files, FILE *out, FILE *errs,
                    struct err *e)
{
    struct item *items;
    struct progress prog;
    int n_threads = o->n_threads > 0 ? o->n_threads : threads_ncpu();
    int per_tensor = o->tensors || o->content || o->output || o->with_metadata;
    unsigned what = 0;
    int status = 0;
    char **expanded = NULL, **owned = NULL;

    if (!per_tensor) {
        n_files = expand_dirs(o, n_files, files, &expanded, &owned, errs, &status, e);
        if (n_files < 0) {
            if (!o->quiet)
                fprintf(errs, "%s: %s\n", cli_progname, e->msg);
            return 1;
        }
        files = expanded;
    }
    items = calloc((size_t)(n_files ? n_files : 1), sizeof *items);
    if (!items) {
        for (size_t k = 0; owned && owned[k]; k++)
            free(owned[k]);
        free(owned);
        free(expanded);
        return ERR(e, ERR_NOMEM, "out of memory"), 1;
    }
    if (o->tensors || o->output || (!o->content && o->with_metadata))
        what |= HASH_WANT_RAW;
    if (o->content)
        what |= HASH_WANT_CONTENT;
    if (o->with_metadata)
        what |= HASH_WANT_METADATA;
    for (int i = 0; i < n_files; i++)
        items[i].path = files[i];

    if (!per_tensor) {
        /* whole files, in parallel across files */
        struct filejob J;
        struct err *errv = calloc((size_t)(n_files ? n_files : 1), sizeof *errv);
        uint64_t total = 0;
        if (!errv) {
            free(items);
            return ERR(e, ERR_NOMEM, "out of memory"), 1;
        }
        for (int i = 0; i < n_files; i++) {
            struct stat st;
            errv[i] = (struct err)ERR_INIT;
            if (stat(files[i], &st) == 0)
                total += (uint64_t)st.st_size;
        }
        for (int i = 0; i < n_files; i++)     /* "-": read once, in argument order */
            if (strcmp(files[i], "-") == 0 &&
                hash_file_prog(files[i], items[i].sha, &items[i].size, NULL, &errv[i]) == 0)
                items[i].ok = items[i].has_sha = 1;
        J.items = items;
        J.n = n_files;
        atomic_init(&J.next, 0);
        J.errs = errv;
        J.prog = o->quiet || o->no_progress ? NULL : &prog;
        if (J.prog)
            progress_start(J.prog, "hashing", total);
        n_threads = n_threads < n_files ? n_threads : n_files;
        if (n_threads > 0)
            threads_run(n_threads, n_threads, file_worker, &J);
        if (J.prog)
            progress_done(J.prog);
        for (int i = 0; i < n_files; i++) {
            if (!items[i].ok) {
                if (!o->quiet)
                    fprintf(errs, "%s: %s\n", cli_progname, errv[i].msg);
                if (err_ok(e))
                    *e = errv[i];
                status = 1;
            }
        }
        free(errv);
    } else {
        for (int i = 0; i < n_files; i++) {
            struct err fe = ERR_INIT;
            struct stat st;
            int is_dir = stat(files[i], &st) == 0 && S_ISDIR(st.st_mode);
            if (hash_model_item(o, &items[i], what, o->output != NULL, n_threads, &prog,
                                &fe) == 0) {
                /* a model directory's manifest also lists config, tokenizer, ... files */
                if (!o->output || !is_dir || item_add_dir(o, &items[i], errs, &fe) == 0) {
                    items[i].ok = 1;
                    continue;
                }
            } else if (o->output) {
                /* not a model: the manifest still records its bytes (a directory's files) */
                if (is_dir && !o->quiet)
                    fprintf(errs, "%s: note: %s; listing the files of '%s' without tensors\n",
                            cli_progname, fe.msg, files[i]);
                err_clear(&fe);
                if (is_dir && item_add_dir(o, &items[i], errs, &fe) == 0) {
                    items[i].ok = 1;
                    continue;
                }
                if (!is_dir && stat(files[i], &st) == 0 && S_ISREG(st.st_mode) &&
                    hash_file(files[i], items[i].sha, &items[i].size, &fe) == 0) {
                    items[i].ok = items[i].has_sha = 1;
                    continue;
                }
            }
            if (!o->quiet)
                fprintf(errs, "%s: %s\n", cli_progname, fe.msg);
            if (err_ok(e))
                *e = fe;
            status = 1;
        }
    }

    if (o->output) {
        struct sbuf b = SBUF_INIT(HASH_MAX_TEXT);
        int rc;
        if (o->format == HASH_FMT_TEXT) {
            char *p = NULL;
            size_t n = 0;
            FILE *mf = open_memstream(&p, &n);
            rc = mf ? write_text(mf, items, n_files, e) : ERR_SYS(e, "open_memstream");
            if (mf && fclose(mf) != 0 && !rc)
                rc = ERR_SYS(e, "cannot buffer the manifest");
            if (!rc)
                rc = ofile_put(o->output, p ? p : "", n, e);
            free(p);
        } else {
            rc = write_json(&b, o, items, n_files, e);
            if (!rc)
                rc = ofile_put(o->output, b.p ? b.p : "", b.len, e);
        }
        sbuf_release(&b);
        if (rc) {
            if (!o->quiet)
                fprintf(errs, "%s: %s\n", cli_progname, e->msg);
            status = 1;
        }
    } else if (o->json) {
        struct sbuf b = SBUF_INIT(HASH_MAX_TEXT);
        if (write_json(&b, o, items, n_files, e) == 0) {
            if (!o->quiet)
                fwrite(b.p, 1, b.len, out);
        } else {
            if (!o->quiet)
                fprintf(errs, "%s: %s\n", cli_progname, e->msg);
            status = 1;
        }
        sbuf_release(&b);
    } else if (!o->quiet) {
        if (write_text(out, items, n_files, e)) {
            fprintf(errs, "%s: %s\n", cli_progname, e->msg);
            status = 1;
        }
    }
    for (int i = 0; i < n_files; i++)
        item_release(&items[i]);
    free(items);
    for (size_t k = 0; owned && owned[k]; k++)
        free(owned[k]);
    free(owned);
    free(expanded);
    return status;
}

int hash_run(const struct hash_opts *o, int n_files, char **files, struct err *e)
{
    FILE *out = o->out ? o->out : stdout, *errs = o->errs ? o->errs : stderr;

    if (o->verify_source) {
        if (n_files != 1)
            return ERR(e, ERR_USAGE, "--verify-source takes one APR file"), EXIT_TROUBLE;
        return run_verify_source(o, files[0], out, errs, e);
    }
    if (o->check)
        return run_check(o, n_files, files, out, errs, e);
    return run_hash(o, n_files, files, out, errs, e);
}
