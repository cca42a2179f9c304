/*
 * aprt.h - APRT stage-dump files (aprender's `apr trace --save-tensor`; reference/apr.md 5).
 *
 *    0  magic "APRT"
 *    4  u32 layer: 0..n_layers-1, or APRT_LAYER_MODEL (0xFFFFFFFF) for whole-model stages
 *    8  u32 count: number of f32 values that follow
 *   12  count x f32 little-endian, verbatim (NaN/Inf bits preserved)
 *
 * No dtype, shape or stage id: the stage is named only by the file name
 * (<dir>/layer-<N>/<stage>.bin, <dir>/<stage>.bin).  A short body is an error; bytes
 * after the values are ignored, as aprender's reader does, and counted in `trailing`.
 */
#ifndef APRT_H
#define APRT_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../../common/mfile.h"

#define APRT_LAYER_MODEL  UINT32_MAX   /* whole-model stage (final_norm, lm_head) */
#define APRT_HEADER_SIZE  12u

struct aprt {
    struct mfile   mf;        /* owned: the mapping (or wrapped caller memory) */
    uint32_t       layer;     /* APRT_LAYER_MODEL for whole-model stages */
    uint32_t       count;     /* number of values */
    const uint8_t *values;    /* borrowed from mf: count f32 LE, NOT aligned: use aprt_get */
    uint64_t       trailing;  /* bytes after the values (ignored) */
};

/* 1 when the n bytes at p start with the APRT magic (content detection). */
int aprt_is(const void *p, size_t n);

/*
 * Open path read-only (mapped) and validate the header and the body length.  On failure
 * d is left zeroed and e names the file and the offset.  Close with aprt_close.
 */
int  aprt_open(struct aprt *d, const char *path, struct err *e);
/* The same over a caller-owned buffer, which must outlive d; name is for messages. */
int  aprt_open_mem(struct aprt *d, const void *buf, size_t n, const char *name, struct err *e);
void aprt_close(struct aprt *d);   /* accepts a zeroed or closed d */

/* Value i (caller checks i < d->count); decoded from little-endian, alignment-safe. */
float aprt_get(const struct aprt *d, uint32_t i);
/* Copy values [first, first+n) into out (caller checks the range). */
void  aprt_copy(const struct aprt *d, uint32_t first, uint32_t n, float *out);

/*
 * Write an APRT file: header then n values of v as f32 LE.  Streams into a temporary
 * file beside path and renames it into place when complete; replaces an existing path.
 */
int aprt_write(const char *path, uint32_t layer, const float *v, uint32_t n, struct err *e);

#endif
