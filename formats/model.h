/*
 * model.h - the one in-memory view of a model file, whatever its format.
 *
 * Every reader produces a struct model and every writer consumes one:
 *
 *   metadata  an ordered list of typed key/value pairs.  The value types are GGUF's
 *             thirteen (ids equal GGUF's, so a GGUF key keeps its exact type), plus
 *             NULL and OBJECT for JSON metadata (APR, config.json), which GGUF lacks.
 *   tensors   name, dtype (formats/dtype.h), shape, and a borrowed byte range of
 *             the mapped file.
 *
 * THE SHAPE RULE: shape[] is outermost dimension first (row-major, like PyTorch,
 * SafeTensors and APR: a linear weight is [out, in]).  GGUF lists ne[] fastest
 * first; the GGUF reader and writer reverse it at the boundary and nowhere else.
 * The bytes of GGUF ne=[in,out] and SafeTensors [out,in] are identical.
 *
 * Ownership: a struct model owns its mappings (one per file; sharded SafeTensors
 * have several), its arrays, and an arena for strings decoded from JSON.  Every
 * struct slice and data pointer inside borrows from the model: they die with
 * model_close().  model_open validates the whole structure before returning, so
 * code downstream may trust shapes, sizes and ranges (house rule "validate, then trust").
 */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>
#include <stddef.h>

#include "../common/err.h"
#include "../common/mfile.h"
#include "../common/slice.h"
#include "dtype.h"

#define MODEL_MAX_DIMS 8

enum model_format {
    MODEL_FMT_GGUF = 1,
    MODEL_FMT_SAFETENSORS,
    MODEL_FMT_APR,
};

/* Value types: 0..12 are GGUF's ids. */
enum model_vtype {
    MV_U8 = 0, MV_I8 = 1, MV_U16 = 2, MV_I16 = 3, MV_U32 = 4, MV_I32 = 5, MV_F32 = 6,
    MV_BOOL = 7, MV_STR = 8, MV_ARR = 9, MV_U64 = 10, MV_I64 = 11, MV_F64 = 12,
    MV_GGUF_COUNT = 13,
    MV_NULL = 13,   /* JSON null (APR metadata) */
    MV_OBJ = 14,    /* JSON object: an ordered list of key/values */
    MV_COUNT
};

struct model_kv;

struct model_val {
    enum model_vtype type;
    union {
        uint64_t     u;   /* U8..U64, BOOL (0/1) */
        int64_t      i;   /* I8..I64 */
        double       f;   /* F32 (exactly widened), F64 */
        struct slice s;   /* STR */
        struct {
            enum model_vtype elem;  /* element type; MV_NULL for mixed JSON arrays */
            uint64_t         n;
            /* Fixed-size element types (ints, floats, bool): n little-endian elements,
             * packed (borrowed from the file or the arena).  Read them with
             * model_arr_get_*.  NULL for the other element types. */
            const uint8_t   *raw;
            /* STR elements: n slices.  ARR/OBJ/NULL/mixed: n values.  Owned by the model. */
            struct slice           *strs;
            struct model_val       *items;
        } arr;
        struct {
            uint64_t          n;
            struct model_kv  *kv;   /* owned by the model */
        } obj;
    } v;
};

struct model_kv {
    struct slice     key;
    struct model_val val;
    uint64_t         off;   /* file offset of the key (GGUF) or JSON byte offset; for messages */
};

struct model_tensor {
    struct slice    name;
    int             dtype;                   /* enum dtype */
    int             n_dims;                  /* 0 = scalar (SafeTensors "shape": []) */
    int64_t         shape[MODEL_MAX_DIMS];   /* outermost first; unused dims are 1 */
    int64_t         n_elems;
    uint64_t        size;                    /* bytes */
    uint64_t        off;                     /* offset of the data in its file */
    uint64_t        rel_off;                 /* offset as the index stores it (GGUF/APR: from
                                                the data section; ST: data_offsets[0]) */
    const uint8_t  *data;                    /* borrowed: points into the mapping */
    uint32_t        file;                    /* index into model.files (shards) */
    uint32_t        stored_dtype;            /* the raw type id/code as the file stores it */
};

struct model_note {
    char msg[256];
};

struct model_arena_blk;

struct model {
    enum model_format  format;
    int                version;      /* GGUF 1..3; APR major (2); SafeTensors 0 */
    int                version_minor;
    char              *path;         /* owned: as given to model_open */
    struct mfile      *files;        /* owned mappings (the file itself, or the shards) */
    uint32_t           n_files;
    uint64_t           total_size;   /* sum of file sizes */
    uint64_t           data_off;     /* start of the data section (file 0) */
    uint64_t           alignment;    /* GGUF: general.alignment or 32; APR 64; ST 1 */
    uint64_t           header_size;  /* bytes before the data (sum over shards for ST) */

    struct model_kv     *kv;
    uint64_t             n_kv;
    struct model_tensor *tensors;    /* in file (index) order */
    uint64_t             n_tensors;

    /* format details */
    uint32_t           apr_flags;         /* APR header flags */
    int                apr_magic_legacy;  /* 1 when the magic was "APR2" */
    int                apr_header_crc_ok; /* always 1 after a successful open */
    int                apr_footer_crc_ok; /* 1 ok, 0 mismatch (a note says so), -1 absent, -2 not checked */
    int                gguf_canonical;    /* 1 when offsets are exactly llama.cpp's layout */

    /* Non-fatal findings (footer CRC mismatch, non-canonical layout, odd BOOL bytes). */
    struct model_note *notes;
    uint32_t           n_notes;

    struct model_arena_blk *arena;
};

/*
 * (open.c, above the readers; declared here so that tools include the view only.)
 * Open path and detect its format by content (never by extension): GGUF and APR by
 * magic; SafeTensors by its header; a directory or a *.index.json holding a
 * "weight_map" as sharded SafeTensors.  A config.json beside a SafeTensors file is
 * mapped into metadata (see st.h).  On failure m is left closed and e names the
 * file and the offset.
 */
int  model_open(struct model *m, const char *path, struct err *e);
/* model_open with flags: MODEL_OPEN_HEADER_ONLY skips the checks that read tensor data
 * (the APR footer CRC-32 over the whole file), so a 70B file opens in milliseconds;
 * apr_footer_crc_ok is then APR_FOOTER_UNCHECKED (-2). */
enum model_open_flags { MODEL_OPEN_HEADER_ONLY = 1 << 0 };
int  model_open_ex(struct model *m, const char *path, unsigned flags, struct err *e);
/* Parse a buffer the caller owns (tests, fuzzers); it must outlive m. */
int  model_open_mem(struct model *m, const void *buf, size_t n, const char *name, struct err *e);
void model_close(struct model *m);   /* accepts a zeroed model */

const char *model_format_name(enum model_format f);   /* "GGUF", "SafeTensors", "APR" */
/* "GGUF v3", "APR v2", "SafeTensors" (which has no version) into buf; returns buf. */
const char *model_format_label(const struct model *m, char *buf, size_t n);

/* Lookups (linear; names are unique after open). */
const struct model_kv     *model_kv_find(const struct model *m, const char *key);
const struct model_tensor *model_tensor_find(const struct model *m, const char *name);
const struct model_tensor *model_tensor_find_slice(const struct model *m, struct slice name);

/* Typed getters that accept any integer type with a range check / F32 or F64; -1 if absent or wrong. */
int model_kv_get_u64(const struct model *m, const char *key, uint64_t *v);
int model_kv_get_f64(const struct model *m, const char *key, double *v);
int model_kv_get_str(const struct model *m, const char *key, struct slice *v);

/* Element access for arrays of fixed-size types (caller checks i < n). */
uint64_t model_arr_get_u64(const struct model_val *a, uint64_t i);   /* unsigned types, BOOL */
int64_t  model_arr_get_i64(const struct model_val *a, uint64_t i);   /* any int type */
double   model_arr_get_f64(const struct model_val *a, uint64_t i);   /* any numeric type */
/* Bytes per element of a fixed-size value type, 0 for STR/ARR/NULL/OBJ. */
size_t   model_vtype_size(enum model_vtype t);
const char *model_vtype_name(enum model_vtype t);  /* GGUF spelling: "UINT32", "STRING", ... */

/* ---- for readers and writers (model_impl-like helpers, public because three modules use them) */

/* Zero the model and set path/format. */
int   model__init(struct model *m, enum model_format f, const char *path, struct err *e);
/*
 * model__init plus the model's one file: buf == NULL maps the file at path
 * (mfile_open); otherwise buf[0, n) is wrapped under the name path (mfile_wrap; NULL
 * means "<memory>").  A *_open_mem reader passes buf ? buf : "" so that an empty NULL
 * buffer is wrapped, not opened.  On failure the model is closed (zeroed) and -1
 * returned, so the caller just returns.
 */
int   model__init_file(struct model *m, enum model_format f, const char *path, const void *buf,
                       size_t n, struct err *e);
/* Arena allocation, freed by model_close.  NULL (with ERR_NOMEM) on failure. */
void *model__alloc(struct model *m, size_t n, struct err *e);
/* Copy n bytes into the arena and return a slice over the copy. */
int   model__strdup(struct model *m, const char *p, size_t n, struct slice *out, struct err *e);
/* Free what a value owns (array string/item lists, object members), not the value itself;
 * strings and packed arrays live in an arena and are not freed. */
void  model__val_free(struct model_val *v);
/* Append a note (printf-style); silently dropped after 64 notes. */
void  model__note(struct model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Validation shared by every reader: unique tensor names, in-bounds data, no overlaps. */
int   model__check_tensors(struct model *m, struct err *e);

#endif
