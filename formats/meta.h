/*
 * meta.h - the canonical metadata of any model view, and the rules that map each
 * format's keys onto it and back.
 *
 * The canonical list is GGUF-typed keys ("general.architecture", "llama.block_count",
 * "tokenizer.ggml.tokens", ...) plus the keys GGUF has no spelling for, kept under
 * their own prefixes ("hf.config.<key>" for config.json, "safetensors.metadata.<key>").
 *
 *   GGUF          the file's own keys, as they are.
 *   SafeTensors   the reader's keys as they are: config.json is already mapped onto
 *                 GGUF keys by the reader (formats/safetensors/st_read.c has that table,
 *                 both rope styles, transformers 5's rope_parameters included) and
 *                 tokenizer.json onto tokenizer.ggml.* (st_tokenizer.c).
 *   APR           restored exactly from the typed namespace "apr_tools.kv" when the
 *                 file has one (apr-convert writes it; see below), else synthesized from
 *                 aprender's typed fields and custom keys (apr.md 3) by the table
 *                 meta_apr_in below (its reverse, for APR output, is meta_apr_out).
 *
 * THE NAMESPACE "apr_tools.kv" (APR metadata; decoded by meta_from_model, encoded by
 * meta_ns_encode): every key of the canonical list with its exact type, as an array
 * of entries
 *   {"k": key, "t": "UINT32"|...|"NULL"|"OBJECT"|"ARRAY", "e": element type (arrays),
 *    "v": value | "ref": another top-level key holding the same array}
 * OBJECT values and arrays of arrays/objects hold entries without "k"; non-finite
 * floats are the strings "nan", "inf", "-inf".  Reading it back restores every GGUF
 * key (and config.json entry) with its exact type.
 *
 * IN SAFETENSORS, whose __metadata__ holds only strings, the same array is stored as
 * its compact JSON text under the __metadata__ key "apr_tools.kv" (never with "ref"
 * entries).  apr-convert writes it into a single .safetensors output (meta_st_ns_text),
 * so that GGUF -> .safetensors -> GGUF gives every key back; the reader sees it as the
 * STRING key META_ST_NS_KEY, and meta_from_model decodes it, then adds the file's
 * other keys (config.json beside it, other __metadata__ entries) that it lacks.
 *
 * Ownership: a struct meta owns its arrays and an arena (keys it made, packed arrays it
 * decoded); string values and keys taken from the model borrow the model's memory, so
 * the model must outlive the meta.  meta_free accepts a zeroed meta.
 *
 * (CONTRACTS.md refinements: the getters take the meta, not the model; meta_get_u64
 * also accepts BOOL and integral FLOAT64 values, as config.json numbers may be written
 * "4096.0"; meta_a* are the "{arch}.<rest>" spellings.)
 */
#ifndef META_H
#define META_H

#include <stdint.h>

#include "../common/err.h"
#include "../common/json.h"
#include "../common/slice.h"
#include "model.h"

#define META_NS_KEY "apr_tools.kv"
/* The namespace in a SafeTensors file, as the reader names its __metadata__ entry. */
#define META_ST_NS_KEY "safetensors.metadata." META_NS_KEY

struct meta {
    struct model_kv *kv;      /* the canonical list, in order */
    uint64_t         n;
    char             arch[64];/* general.architecture ("" when none, or 64 bytes or more) */
    int              from_ns; /* 1: restored from apr_tools.kv */
    int              apr_tied;/* aprender APR: "tied_embeddings": true (lm_head is a copy) */
    /* private */
    uint8_t         *own;     /* per kv: 1 when the value's arrays are ours to free */
    uint64_t         cap;
    struct model     store;   /* arena only (model__alloc) */
    const struct model *src;  /* while decoding: the model whose "ref" keys are looked up */
};

/* The canonical list of m (rules above).  On failure out is freed and e says why
 * (APR namespace errors name the file and the key). */
int  meta_from_model(const struct model *m, struct meta *out, struct err *e);
void meta_free(struct meta *mt);

const struct model_kv *meta_find(const struct meta *mt, const char *key);
/* 0 and *v, or -1 when absent or of another type.  u64: unsigned ints, BOOL, non-negative
 * signed ints, integral FLOAT64 in [0, 1e18).  f64: F32, F64 and what u64 accepts. */
int  meta_get_u64(const struct meta *mt, const char *key, uint64_t *v);
int  meta_get_f64(const struct meta *mt, const char *key, double *v);
int  meta_get_str(const struct meta *mt, const char *key, struct slice *v);
/* The same for "{arch}.<rest>" (arch = mt->arch). */
int  meta_aget_u64(const struct meta *mt, const char *rest, uint64_t *v);
int  meta_aget_f64(const struct meta *mt, const char *rest, double *v);
/* "{arch}.<rest>" into buf; returns buf. */
const char *meta_akey(const struct meta *mt, const char *rest, char *buf, size_t cap);

/* Append a key/value (key borrowed; own: the value's arrays are freed by meta_free). */
int  meta_push(struct meta *mt, struct slice key, const struct model_val *v, int own,
               struct err *e);
/* Append with the key copied into the arena: an integer of type t, an F32 (rounded), a
 * string (borrowed). */
int  meta_add_u(struct meta *mt, const char *key, enum model_vtype t, uint64_t u, struct err *e);
int  meta_add_f32(struct meta *mt, const char *key, double f, struct err *e);
int  meta_add_str(struct meta *mt, const char *key, struct slice s, struct err *e);

/* ---- JSON encoding (APR output) */

/* One namespace entry for key (NULL inside objects and arrays) and v; ref names another
 * top-level key holding the same array (the value is then not repeated). */
void meta_ns_encode(struct json_w *w, const struct slice *key, const struct model_val *v,
                    const char *ref);
/* The SafeTensors form of the namespace: the compact JSON text of the array of every
 * key of mt except "safetensors.metadata.*" (those are __metadata__ entries of their
 * own) and skip (may be NULL), into *out (malloc()ed, NUL-terminated; *n bytes). */
int  meta_st_ns_text(const struct meta *mt, const char *skip, char **out, size_t *n,
                     struct err *e);
/* v as plain JSON (arrays as arrays of scalars; non-finite floats as "nan"/"inf"/"-inf"). */
void meta_json_val(struct json_w *w, const struct model_val *v);
/* 1 unless a is a float array holding a NaN or an infinity. */
int  meta_arr_all_finite(const struct model_val *a);

/* ---- aprender's typed hyperparameter fields <-> canonical keys (apr.md 2-3) */

enum meta_apr_kind { MAK_U32, MAK_F32, MAK_ROPE_TYPE, MAK_HEAD_DIM };

struct meta_apr_field {
    const char        *apr;    /* aprender's field */
    const char        *gguf;   /* "{arch}.<gguf>"; NULL for the derived fields */
    enum meta_apr_kind kind;
};

/* Reading aprender's fields (APR without the namespace), in canonical-list order. */
extern const struct meta_apr_field meta_apr_in[];
extern const size_t meta_apr_in_n;
/* Writing them (APR output), in AprV2Metadata order. */
extern const struct meta_apr_field meta_apr_out[];
extern const size_t meta_apr_out_n;

#endif
