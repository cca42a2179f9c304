/*
 * rd.h - the bounded little-endian reader.  Every byte of a model file is read
 * through a struct rd: a cursor over [base, base+size) that refuses to move past
 * the end.  Values are decoded with memcpy/shifts, never pointer casts, so
 * unaligned data is safe.  On failure a function returns -1, records ERR_FORMAT
 * in e (with e->off = the cursor offset plus r->origin) and leaves the cursor where it was.
 *
 *   if (rd_u32(r, &ver, e) || rd_u64(r, &n_tensors, e)) return -1;
 *
 * `what` arguments name the field for the error message ("tensor count").
 */
#ifndef RD_H
#define RD_H

#include <stdint.h>
#include <stddef.h>

#include "err.h"
#include "slice.h"

struct rd {
    const uint8_t *base;   /* borrowed */
    uint64_t       size;
    uint64_t       off;    /* cursor, relative to base */
    uint64_t       origin; /* file offset of base, added to offsets in messages */
    const char    *name;   /* file name for messages, or NULL */
};

void rd_init(struct rd *r, const void *base, uint64_t size, const char *name);

static inline uint64_t rd_left(const struct rd *r) { return r->size - r->off; }
static inline uint64_t rd_tell(const struct rd *r) { return r->off; }

int rd_u8(struct rd *r, uint8_t *v, const char *what, struct err *e);
int rd_u16(struct rd *r, uint16_t *v, const char *what, struct err *e);
int rd_u32(struct rd *r, uint32_t *v, const char *what, struct err *e);
int rd_u64(struct rd *r, uint64_t *v, const char *what, struct err *e);
int rd_i8(struct rd *r, int8_t *v, const char *what, struct err *e);
int rd_i16(struct rd *r, int16_t *v, const char *what, struct err *e);
int rd_i32(struct rd *r, int32_t *v, const char *what, struct err *e);
int rd_i64(struct rd *r, int64_t *v, const char *what, struct err *e);
int rd_f32(struct rd *r, float *v, const char *what, struct err *e);
int rd_f64(struct rd *r, double *v, const char *what, struct err *e);

/* Borrow n bytes at the cursor (pointer into base) and advance. */
int rd_bytes(struct rd *r, uint64_t n, const uint8_t **p, const char *what, struct err *e);
/* Length-prefixed string: u32 (len_bytes = 4) or u64 (8) length, capped at max. */
int rd_str(struct rd *r, int len_bytes, uint64_t max, struct slice *s, const char *what,
           struct err *e);
int rd_skip(struct rd *r, uint64_t n, const char *what, struct err *e);
int rd_seek(struct rd *r, uint64_t off, const char *what, struct err *e);
/* Advance to the next multiple of a (a power of two), relative to base. */
int rd_align(struct rd *r, uint64_t a, const char *what, struct err *e);

/* Plain LE decoders for already-bounds-checked bytes (e.g. from rd_bytes). */
static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static inline float lef32(const uint8_t *p)
{
    uint32_t u = le32(p);
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}
static inline double lef64(const uint8_t *p)
{
    uint64_t u = le64(p);
    double d;
    __builtin_memcpy(&d, &u, 8);
    return d;
}
static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void put_le64(uint8_t *p, uint64_t v) { put_le32(p, (uint32_t)v); put_le32(p + 4, (uint32_t)(v >> 32)); }

#endif
