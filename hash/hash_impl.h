/*
 * hash_impl.h - apr-hash's internals shared by the files of hash/ (not library API).
 *
 *   util.c      whole-file hashing (stdin, mapped files), directories as file lists
 *   records.c   tensor records, the model hash, the canonical metadata encoding
 *   pool.c      the tensor worker pool (raw and --content hashes)
 *   output.c    sha256sum-style lines, --tensors lines, JSON output and manifests
 *   manifest.c  reading manifests: ours (JSON, text), llama-gguf-hash's, sha256sum's
 *   check.c     --check: files, models and directories against a manifest
 *   run.c       --verify-source, hashing the operands, hash_run
 */
#ifndef APR_TOOLS_HASH_IMPL_H
#define APR_TOOLS_HASH_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/dirwalk.h"
#include "../common/json.h"
#include "../common/progress.h"
#include "../common/sbuf.h"
#include "../common/sha256.h"
#include "../formats/model.h"
#include "hash.h"

#define HASH_CHUNK    (16u << 20)   /* bytes per SHA-256 update: progress and page-drop step */
#define HASH_DQ_CHUNK (1u << 20)    /* floats of --content scratch per worker (4 MiB) */
#define HASH_MAX_TEXT (1ull << 30)  /* cap on a manifest's size and on one metadata record */

/* ---- directories ------------------------------------------------------------------- */

/*
 * A directory's files, for whole-file mode, manifests and --check of a model directory:
 * every entry under it, recursively, by path relative to it, sorted bytewise
 * (common/dirwalk.h).  Symbolic links are never followed (a link may point out of the
 * directory); they and other non-regular files are listed with their kind so that
 * callers can say they were skipped.
 */
#define HASH_MAX_DEPTH 256

enum { EXIT_MATCH = 0, EXIT_MISMATCH = 1, EXIT_TROUBLE = 2 };

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

struct man_key {
    char    *key;                    /* owned, NUL-terminated (n bytes) */
    size_t   n;
    uint8_t  sha[SHA256_LEN];
    int      seen;
};

struct man_model {
    char              *path;         /* NULL when the manifest names none */
    /* the canonical keys of the model hash; keys_form 0: a manifest written before
     * they counted (its model hash is the tensor hash) */
    int                keys_form;
    struct man_key    *k;
    size_t             n_k, cap_k;
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

struct gg_line {
    char   *target;
    size_t  n;
    uint8_t sha[SHA256_LEN];
};

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

/* ---- hashing files ------------------------------------------------------------------ */

struct filejob {
    struct item *items;
    int          n;
    atomic_int   next;
    struct progress *prog;
    struct err  *errs;   /* one per item */
};



char *hash__xstrndup(const char *p, size_t n);
void hash__drop_pages(const uint8_t *p, uint64_t n);
void hash__sha_stream(struct sha256 *h, const uint8_t *p, uint64_t n, int mapped,
                       struct progress *prog);
int hash__hash_file_prog(const char *path, uint8_t out[SHA256_LEN], uint64_t *size,
                          struct progress *prog, struct err *e);
int hash__dent_hashable(const char *root, const struct dir_entry *d);
void hash__dent_note(FILE *errs, const char *root, const struct dir_entry *d);
const char *hash__rel_under(const char *path, const char *dir);
const struct hash_tensor **hash__sorted_tensors(const struct hash_tensor *t, uint64_t n,
                                                 int by_canon, struct err *e);
int hash__content_hash(struct pool *P, const struct model_tensor *t, struct hash_tensor *ht,
                        float **scratch, uint64_t *scratch_n, struct err *e);
int hash__compute(const struct model *m, unsigned what, int n_threads,
                   uint8_t (*file_sha)[SHA256_LEN], struct progress *prog, struct hash_model *h,
                   struct err *e);
int hash__hash_concat(const struct model *m, uint8_t out[SHA256_LEN], struct err *e);
/* SHA-256 of the whole of mf into h, streamed (common/stream.h); pool.c. */
struct mfile;
int hash__sha_mfile(struct sha256 *h, const struct mfile *mf, struct progress *prog,
                    struct err *e);
void hash__item_release(struct item *it);
int hash__item_add_file(struct item *it, const char *path, uint64_t size,
                         const uint8_t sha[SHA256_LEN], struct err *e);
int hash__item_add_dir(const struct hash_opts *o, struct item *it, FILE *errs, struct err *e);
int hash__write_text(FILE *f, struct item *items, int n, struct err *e);
int hash__write_json(struct sbuf *b, const struct hash_opts *o, struct item *items, int n,
                      struct err *e);
void hash__manifest_release(struct manifest *man);
struct man_model *hash__man_model(struct manifest *man, const char *path, size_t n,
                                   struct err *e);
int hash__manifest_load(struct manifest *man, const char *path, struct err *e);
struct man_file *hash__dir_entry(struct checker *c, const char *prefix, const char *rel,
                                  const uint8_t *sha, int any);
int hash__run_check(const struct hash_opts *o, int n_files, char **files, FILE *out, FILE *errs,
                     struct err *e);
void hash__put_err(FILE *f, const char *path, const char *msg);
void hash__errf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
