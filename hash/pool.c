/*
 * pool.c - apr-hash: the tensor worker pool: raw tensor bytes and --content values
 * (dequantized, little-endian f32, llama Q/K rows normalised) hashed on -j workers.
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
#include "../common/stream.h"
#include "../common/threads.h"
#include "../common/vec.h"
#include "../dequant/dq.h"
#include "../formats/config.h"
#include "../formats/names.h"
#include "../common/banned.h"
/* A worker's reading state: one stream (retargeted across the files of a model) and the
 * --content scratch. */
struct worker {
    struct stream st;
    int           st_open;
    uint32_t      st_file;
    float        *scratch;
    uint64_t      scratch_n;
};

/* The worker's stream on the file holding t, and t's offset in it; NULL when t's bytes
 * do not lie in one of the model's files (then they are read in place). */
static struct stream *tensor_stream(struct worker *w, const struct model *m,
                                    const struct model_tensor *t, uint64_t *off,
                                    struct err *e)
{
    const struct mfile *mf;

    if (t->file >= m->n_files)
        return NULL;
    mf = &m->files[t->file];
    if (!mf->data || t->data < mf->data || t->size > mf->size ||
        (uint64_t)(t->data - mf->data) > mf->size - t->size)
        return NULL;
    *off = (uint64_t)(t->data - mf->data);
    if (!w->st_open) {
        if (stream_open(&w->st, mf, 0, STREAM_AHEAD, e))
            return NULL;
        w->st_open = 1;
    } else if (w->st_file != t->file) {
        stream_retarget(&w->st, mf);
    }
    w->st_file = t->file;
    return &w->st;
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
static int hash__content_hash_st(struct pool *P, const struct model_tensor *t,
                                 struct hash_tensor *ht, struct worker *w, float **scratch,
                                 uint64_t *scratch_n, struct err *e);

int hash__content_hash(struct pool *P, const struct model_tensor *t, struct hash_tensor *ht,
                        float **scratch, uint64_t *scratch_n, struct err *e)
{
    return hash__content_hash_st(P, t, ht, NULL, scratch, scratch_n, e);
}

/* The same, reading t's bytes through w's stream when w is not NULL. */
static int hash__content_hash_st(struct pool *P, const struct model_tensor *t,
                                 struct hash_tensor *ht, struct worker *w, float **scratch,
                                 uint64_t *scratch_n, struct err *e)
{
    const struct dq_traits *tr = dq_get(t->dtype);
    struct sha256 h;
    int64_t heads = 0;
    enum names_perm perm = NAMES_PERM_NONE;
    uint64_t need, n = (uint64_t)t->n_elems, base = 0;
    struct stream *st = NULL;

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
    if (w) {
        st = tensor_stream(w, P->m, t, &base, e);
        if (!st && !err_ok(e))
            return -1;
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
                const uint8_t *row = st ? stream_at(st, base + (uint64_t)src * row_bytes,
                                                    (size_t)row_bytes, e)
                                        : t->data + (uint64_t)src * row_bytes;
                if (!row || dq_to_f32(t->dtype, row, row_bytes,
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
            const uint8_t *src = st ? stream_at(st, base + b0 * tr->type_size,
                                                (size_t)(nb * tr->type_size), e)
                                    : t->data + b0 * tr->type_size;
            if (!src || dq_to_f32(t->dtype, src, nb * tr->type_size, *scratch, (int64_t)(nb * tr->blck),
                          1, e)) {
                sha256_release(&h);
                return -1;
            }
            to_le(*scratch, nb * tr->blck);
            sha256_update(&h, *scratch, (size_t)(nb * tr->blck * 4));
            if (P->prog)
                progress_add(P->prog, nb * tr->type_size);
        }
    }
    return sha256_final(&h, ht->content, e);
}

/* SHA-256 of t's stored bytes into h: streamed from its file, else read in place. */
static int sha_tensor(struct worker *w, const struct model *m, const struct model_tensor *t,
                      struct sha256 *h, struct progress *prog, struct err *e)
{
    uint64_t off;
    struct stream *st = w ? tensor_stream(w, m, t, &off, e) : NULL;

    if (st)
        return stream_sha256(st, off, t->size, h, prog, NULL, e);
    if (!err_ok(e))
        return -1;
    hash__sha_stream(h, t->data, t->size, 0, prog);
    return 0;
}

static int run_job(struct pool *P, const struct job *j, struct worker *w, struct err *e)
{
    struct sha256 h;

    if (j->is_file) {
        const struct mfile *mf = &P->m->files[j->idx];
        if (sha256_init(&h, e)) {
            sha256_release(&h);
            return -1;
        }
        if (!w->st_open) {
            if (stream_open(&w->st, mf, 0, STREAM_AHEAD, e)) {
                sha256_release(&h);
                return -1;
            }
            w->st_open = 1;
        } else {
            stream_retarget(&w->st, mf);
        }
        w->st_file = (uint32_t)j->idx;
        if (stream_sha256(&w->st, 0, mf->size, &h, P->prog, NULL, e)) {
            sha256_release(&h);
            return -1;
        }
        return sha256_final(&h, P->file_sha[j->idx], e);
    }
    const struct model_tensor *t = &P->m->tensors[j->idx];
    struct hash_tensor *ht = &P->h->t[j->idx];
    if (P->what & HASH_WANT_RAW) {
        if (sha256_init(&h, e)) {
            sha256_release(&h);
            return -1;
        }
        if (sha_tensor(w, P->m, t, &h, P->prog, e)) {
            sha256_release(&h);
            return -1;
        }
        if (sha256_final(&h, ht->sha, e))
            return -1;
    }
    if (P->what & HASH_WANT_CONTENT)
        return hash__content_hash_st(P, t, ht, w, &w->scratch, &w->scratch_n, e);
    return 0;
}

static int pool_worker(void *arg, int64_t begin, int64_t end, int worker)
{
    struct pool *P = arg;
    struct worker w;
    int rc = 0;

    (void)begin;
    (void)end;
    (void)worker;
    memset(&w, 0, sizeof w);
    while (!atomic_load(&P->failed)) {
        uint64_t i = atomic_fetch_add(&P->next, 1);
        struct err e = ERR_INIT;
        if (i >= P->n_jobs)
            break;
        if (run_job(P, &P->jobs[i], &w, &e)) {
            pthread_mutex_lock(&P->mu);
            if (err_ok(&P->e))
                P->e = e;
            pthread_mutex_unlock(&P->mu);
            atomic_store(&P->failed, 1);
            rc = -1;
        }
    }
    free(w.scratch);
    if (w.st_open)
        stream_close(&w.st);
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
    canon_keys_free(h->keys, h->n_keys);
    memset(h, 0, sizeof *h);
}

/* Fill names and shapes of h from m. */
static int hm_init(struct hash_model *h, const struct model *m, struct err *e)
{
    char buf[NAMES_MAX];

    memset(h, 0, sizeof *h);
    h->path = hash__xstrndup(m->path, strlen(m->path));
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
        ht->name = hash__xstrndup(t->name.p, t->name.n);
        ht->canon = rc == -2 ? hash__xstrndup(t->name.p, t->name.n) : hash__xstrndup(buf, strlen(buf));
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

int hash__compute(const struct model *m, unsigned what, int n_threads,
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
    if ((h->has_raw || h->has_content) && canon_keys(m, &h->keys, &h->n_keys, e))
        goto fail;
    if (h->has_raw && (hash_records(h->t, h->n_tensors, 0, h->tensor_hash, e) ||
                       hash_model_records(h->t, h->n_tensors, h->keys, h->n_keys, 0,
                                          h->model_hash, e)))
        goto fail;
    if (h->has_content && (hash_records(h->t, h->n_tensors, 1, h->content_tensor_hash, e) ||
                           hash_model_records(h->t, h->n_tensors, h->keys, h->n_keys, 1,
                                              h->content_hash, e)))
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
    return hash__compute(m, what, n_threads, NULL, NULL, h, e);
}

/* SHA-256 of the tensor payloads concatenated in file order (llama-gguf-hash's model line). */
int hash__hash_concat(const struct model *m, uint8_t out[SHA256_LEN], struct err *e)
{
    struct sha256 h;
    struct worker w;
    int rc = 0;

    if (sha256_init(&h, e)) {
        sha256_release(&h);
        return -1;
    }
    memset(&w, 0, sizeof w);
    for (uint64_t i = 0; i < m->n_tensors && !rc; i++)
        rc = sha_tensor(&w, m, &m->tensors[i], &h, NULL, e);
    if (w.st_open)
        stream_close(&w.st);
    if (rc) {
        sha256_release(&h);
        return -1;
    }
    return sha256_final(&h, out, e);
}

/* SHA-256 of the whole of mf (whole-file mode), streamed. */
int hash__sha_mfile(struct sha256 *h, const struct mfile *mf, struct progress *prog,
                    struct err *e)
{
    struct stream st;
    int rc;

    if (stream_open(&st, mf, 0, STREAM_AHEAD, e))
        return -1;
    rc = stream_sha256(&st, 0, mf->size, h, prog, NULL, e);
    stream_close(&st);
    return rc;
}
