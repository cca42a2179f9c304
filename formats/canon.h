/*
 * canon.h - the canonical model metadata: which keys change what a model does, and an
 * encoding of their values that is the same whatever the container (GGUF, APR, a
 * Hugging Face directory) wrote them in.  apr-hash's model hash covers these keys.
 *
 * THE KEYS.  formats/meta.h maps every format's metadata onto GGUF-typed keys
 * (meta_from_model).  Each key is then judged by the first rule of canon_rules (below,
 * and in apr-hash(1), MODEL HASH KEYS; t4000 checks that the two lists are equal):
 * "{arch}" stands for the value of general.architecture, a trailing "*" for any rest.
 * A counted key is still left out when it holds the value its format would derive
 * anyway, so that one converter writing it and another leaving it out agree:
 *     {arch}.attention.key_length, {arch}.attention.value_length
 *                                     = {arch}.embedding_length / {arch}.attention.head_count
 *     {arch}.rope.dimension_count      = the key length (as above when absent)
 *     {arch}.vocab_size                = the number of tokenizer.ggml.tokens
 *     tokenizer.ggml.model             = "none" (llama.cpp's "no vocabulary": the same
 *                                       as a model without tokenizer keys)
 *
 * THE VALUE ENCODING (SHA-256 of it is the key's hash), self-delimiting:
 *     any integer (U8..I64)   "i" decimal ";"         (width and signedness dropped)
 *     BOOL                    "b0;" or "b1;"
 *     FLOAT32, FLOAT64        "f" 8 lowercase hex digits of the value rounded to
 *                             binary32 (GGUF's precision; every NaN as 7fc00000) ";"
 *     STRING                  "s" byte length ":" bytes ";"
 *     ARRAY                   "a" n ":" each element encoded ";"
 *     OBJECT                  "o" n ":" (key as a string, value) sorted by key ";"
 *     NULL                    "n;"
 */
#ifndef CANON_H
#define CANON_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/sha256.h"
#include "../common/slice.h"
#include "model.h"

struct canon_rule {
    const char *pattern;   /* "general.architecture", "general.*", "{arch}.*", "*" */
    int         counts;    /* 1: the key is in the model hash */
    const char *what;      /* why, for the man page and messages */
};

extern const struct canon_rule canon_rules[];
extern const size_t canon_rules_n;

/* The rule that decides key (arch: general.architecture's value, "" when none). */
const struct canon_rule *canon_rule_for(struct slice key, const char *arch);

struct canon_key {
    char    *key;              /* owned copy, NUL-terminated (n bytes, may hold NUL) */
    size_t   n;
    uint8_t  sha[SHA256_LEN];  /* SHA-256 of the value's encoding */
};

/* The counted keys of m with their value hashes, sorted bytewise by key.  *out is
 * malloc()ed (free with canon_keys_free); e names the file when the metadata cannot
 * be read. */
int  canon_keys(const struct model *m, struct canon_key **out, uint64_t *n, struct err *e);
void canon_keys_free(struct canon_key *k, uint64_t n);
/* Bytewise order of keys (for qsort and bsearch over struct canon_key). */
int  canon_key_cmp(const void *a, const void *b);

/* The encoding above of v fed to h (tests use it with any sink). */
int  canon_hash_val(struct sha256 *h, const struct model_val *v, int depth, struct err *e);

#endif
