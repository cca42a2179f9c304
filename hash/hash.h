/*
 * hash.h - apr-hash's work, callable from tests without a process.
 *
 * Four hashes, all SHA-256 (lowercase hex in every output):
 *
 *   file      the whole file's bytes, exactly as sha256sum(1) computes it.
 *   tensor    the stored bytes of one tensor (as llama-gguf-hash's sha256 lines).
 *   model     SHA-256 over the tensor records, sorted bytewise by (name, stored name):
 *                 name "\0" dtype "\0" shape "\0" hex "\n"
 *             name   = the canonical (Hugging Face) spelling from formats/names.h, or
 *                      the stored name when the map does not know it;
 *             dtype  = dtype_name() ("F16", "Q4_K", ...);
 *             shape  = decimal dims, outermost first, joined by "," ("" for a scalar);
 *             hex    = the tensor hash;
 *             then one record per canonical metadata key (formats/canon.h: the
 *             architecture, its hyperparameters, the tokenizer, the chat templates),
 *             sorted bytewise by key:
 *                 "\0\0" netstring(key) hex "\n"      hex = the key's value hash
 *             It does not depend on tensor order, sharding, container, key order,
 *             alignment, provenance or descriptive metadata (general.name, ...).
 *   tensor hash  the same without the key records: the model hash of manifests
 *             written before the keys counted (they still check, tensors only).
 *   content   per tensor: SHA-256 of the dequantized values as little-endian f32 in
 *             row-major order, llama-family q/k rows in Hugging Face order; the model
 *             content hash uses the same record as the model hash with dtype "F32" and
 *             the content hex.
 *   metadata  SHA-256 over one record per key, sorted bytewise by key:
 *                 netstring(key) enc(value) "\n"
 *             netstring(s) = decimal byte length ":" bytes;
 *             enc(v) = TYPE "=" payload, TYPE = model_vtype_name() ("UINT32", "STRING",
 *             "ARRAY", ...); payload: integers in decimal, BOOL 0/1, FLOAT32 as 8 and
 *             FLOAT64 as 16 lowercase hex digits of the IEEE bits, STRING a netstring,
 *             NULL empty, ARRAY "[" n ";" enc(item) ";" ... "]", OBJECT
 *             "{" n ";" netstring(key) enc(value) ";" ... "}" with keys sorted bytewise.
 *
 * Text output (also the --format text manifest), one line per item, fields separated
 * by two spaces, names and paths escaped as cli_put_escaped does:
 *     HEX  PATH                           whole file (sha256sum's format); a directory
 *                                         gives one line per regular file under it
 *     model  HEX  PATH                    then, for that model:
 *     metadata  HEX  PATH                   (--with-metadata)
 *     content-model  HEX  PATH              (--content)
 *     tensor  HEX  DTYPE  [D0,D1]  NAME     (--tensors), sorted by name
 *     content  HEX  F32  [D0,D1]  NAME      (--content), canonical names, sorted
 */
#ifndef HASH_H
#define HASH_H

#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"
#include "../common/sha256.h"
#include "../formats/canon.h"
#include "../formats/model.h"

enum hash_fmt { HASH_FMT_JSON = 0, HASH_FMT_TEXT = 1 };

struct hash_opts {
    int         tensors;        /* --tensors */
    int         content;        /* --content */
    int         with_metadata;  /* --with-metadata */
    int         json;           /* --json: JSON on stdout */
    int         quiet;          /* -q: nothing on stdout or stderr, exit status only */
    int         n_threads;      /* -j; 0 = threads_ncpu() */
    const char *output;         /* -o MANIFEST, or NULL */
    int         format;         /* --format of -o: enum hash_fmt */
    int         timestamp;      /* --timestamp: generated_at = now (SOURCE_DATE_EPOCH wins) */
    const char *check;          /* --check MANIFEST, or NULL */
    const char *verify_source;  /* --verify-source SOURCE, or NULL */
    int         no_progress;    /* never draw a progress bar */
    FILE       *out;            /* NULL: stdout */
    FILE       *errs;           /* NULL: stderr */
    int         ignore_missing; /* --ignore-missing: -c skips entries whose files do not exist */
};

#define HASH_OPTS_INIT { 0, 0, 0, 0, 0, 0, NULL, HASH_FMT_JSON, 0, NULL, NULL, 0, NULL, NULL, 0 }

/*
 * Run apr-hash on files (n_files of them; "-" is standard input in whole-file mode; a
 * directory stands for the regular files under it in whole-file mode, -o and --check).
 * Prints results to o->out and per-file problems to o->errs ("apr-hash: msg"), goes on
 * after a per-file error, and returns the exit status: hashing 0 ok / 1 some file
 * failed; --check and --verify-source 0 all match / 1 mismatch / 2 trouble.
 * e receives the first error that made the run fail (for callers that want it).
 */
int hash_run(const struct hash_opts *o, int n_files, char **files, struct err *e);

/* ---- building blocks (public for tests) ---------------------------------------------- */

/* SHA-256 of a whole file, streamed from a read-only map in bounded memory. */
int hash_file(const char *path, uint8_t out[SHA256_LEN], uint64_t *size, struct err *e);

struct hash_tensor {
    char    *name;                   /* stored name (owned, NUL-terminated) */
    char    *canon;                  /* canonical name (owned) */
    int      dtype;
    int      n_dims;
    int64_t  shape[MODEL_MAX_DIMS];  /* outermost first */
    uint64_t size;                   /* stored bytes */
    uint8_t  sha[SHA256_LEN];        /* of the stored bytes (when raw was asked) */
    uint8_t  content[SHA256_LEN];    /* of the values (when content was asked) */
    int      unpermuted;             /* content: q/k rows were put back in HF order */
};

struct hash_model {
    char               *path;        /* owned */
    enum model_format   format;
    struct hash_tensor *t;           /* in file order */
    uint64_t            n_tensors;
    int                 has_raw, has_content, has_metadata;
    uint8_t             model_hash[SHA256_LEN];      /* tensors and canonical keys */
    uint8_t             content_hash[SHA256_LEN];    /* the same over content hashes */
    uint8_t             metadata_hash[SHA256_LEN];
    uint8_t             tensor_hash[SHA256_LEN];     /* tensors only (old model hash) */
    uint8_t             content_tensor_hash[SHA256_LEN];
    struct canon_key   *keys;        /* canonical keys, sorted (with raw or content) */
    uint64_t            n_keys;
};

enum hash_want { HASH_WANT_RAW = 1, HASH_WANT_CONTENT = 2, HASH_WANT_METADATA = 4 };

/*
 * Hash the tensors of an open model (what: enum hash_want bits) with n_threads workers
 * pulling tensors largest first.  Fills *h (released with hash_model_release).
 */
int  hash_model_compute(const struct model *m, unsigned what, int n_threads,
                        struct hash_model *h, struct err *e);
void hash_model_release(struct hash_model *h);

/* The tensor hash (content = 0) or its content form (content = 1) of n records. */
int  hash_records(const struct hash_tensor *t, uint64_t n, int content, uint8_t out[SHA256_LEN],
                  struct err *e);
/* The model hash (or model content hash): the records of n tensors, then of nk keys
 * (any order; sorted here).  With nk = 0 it equals hash_records. */
int  hash_model_records(const struct hash_tensor *t, uint64_t n, const struct canon_key *k,
                        uint64_t nk, int content, uint8_t out[SHA256_LEN], struct err *e);
/* The canonical metadata hash of m. */
int  hash_metadata(const struct model *m, uint8_t out[SHA256_LEN], struct err *e);

/* The key an APR file's converter records its source's whole-file SHA-256 under. */
#define HASH_SOURCE_KEY "source_sha256"

#endif
