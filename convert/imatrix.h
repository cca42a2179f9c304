/*
 * imatrix.h - llama.cpp importance-matrix files (apr-convert --imatrix), read the way
 * llama-quantize reads them, in both of llama.cpp's forms:
 *
 *   legacy .dat (llama-imatrix up to mid-2025; all little-endian):
 *       int32 n_entries (>= 1)
 *       n_entries x { int32 name_len, name bytes, int32 ncall, int32 nval (>= 1),
 *                     float32 values[nval] }
 *       optional: int32 chunks (llama-imatrix's last call), int32 dataset_len,
 *                 dataset bytes (the text file's name)
 *     values are (sum of x^2 / count) * ncall per column; the importance is
 *     value / ncall when ncall > 0, else value.
 *
 *   GGUF (general.type "imatrix"): per matrix NAME two F32 tensors, NAME.in_sum2
 *     (ne0 x n_mat: the sums of x^2 per column, one row per expert) and NAME.counts
 *     (1 x n_mat: how many activations each sum holds); metadata imatrix.datasets
 *     (array of strings), imatrix.chunk_count and imatrix.chunk_size (u32), all three
 *     required, as llama-quantize requires them.  The importance is in_sum2 / count of
 *     its row, or 1 for a row whose count is 0.  Other tensors are ignored.
 *
 * Values that are not finite after the division are refused (llama-quantize refuses
 * them too: "imatrix contains non-finite value").  Both readers are bounded: every
 * count and length is checked against the bytes that remain, errors name the file,
 * the entry and the byte offset.  Names are matched exactly against GGUF tensor
 * names (llama-quantize's lookup); an entry's length must be ne0 * n_expert of its
 * tensor.
 */
#ifndef IMATRIX_H
#define IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

#define IMATRIX_NAME_MAX 1024      /* longest entry name we accept (GGUF names: 64) */

enum imatrix_form { IMATRIX_LEGACY = 1, IMATRIX_GGUF = 2 };

struct imatrix_entry {
    char     *name;        /* NUL-terminated, owned */
    float    *v;           /* n importance values, owned */
    uint64_t  n;
    uint64_t  n_mat;       /* GGUF: rows of in_sum2 (experts); legacy: 1 */
    int64_t   ncall;       /* legacy: ncall; GGUF: the largest count */
};

struct imatrix {
    enum imatrix_form     form;
    struct imatrix_entry *e;
    size_t                n;
    int64_t               chunks;    /* legacy trailer / imatrix.chunk_count; -1: absent */
    char                 *dataset;   /* legacy trailer / first of imatrix.datasets, or NULL */
    char                 *path;      /* as given, owned */
};

/* Read path (detected by content: "GGUF" magic, else legacy).  On failure im is left
 * empty and e names the file, entry and offset. */
int  imatrix_load(struct imatrix *im, const char *path, struct err *e);
/* The same from memory (tests, fuzzing); name is used in messages. */
int  imatrix_load_mem(struct imatrix *im, const void *buf, size_t n, const char *name,
                      struct err *e);
void imatrix_free(struct imatrix *im);     /* accepts a zeroed imatrix */

/* The entry named name (exact), or NULL. */
const struct imatrix_entry *imatrix_find(const struct imatrix *im, const char *name);

#endif
