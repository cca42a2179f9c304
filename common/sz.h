/*
 * sz.h - checked size arithmetic.
 *
 * Every count, offset and size that comes from a file is combined through these
 * helpers, never with bare + and *.  Each returns 0 on success and -1 on overflow,
 * leaving *out untouched on failure.  (Not ckd_*: C23 reserves those names.)
 */
#ifndef SZ_H
#define SZ_H

#include <stdint.h>
#include <stddef.h>

static inline int sz_add(uint64_t a, uint64_t b, uint64_t *out)
{
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

static inline int sz_mul(uint64_t a, uint64_t b, uint64_t *out)
{
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

/* Round x up to a multiple of a (a must be a non-zero power of two). */
static inline int sz_align(uint64_t x, uint64_t a, uint64_t *out)
{
    uint64_t r;
    if (a == 0 || (a & (a - 1)) != 0)
        return -1;
    if (__builtin_add_overflow(x, a - 1, &r))
        return -1;
    *out = r & ~(a - 1);
    return 0;
}

/* 1 when [off, off+len) lies inside [0, size), with no overflow. */
static inline int sz_range_ok(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

/* Signed element-count product (shapes): 0 on success, -1 if any dim < 0 or overflow. */
static inline int sz_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

/* Size_t conversion for allocation: -1 when v does not fit. */
static inline int sz_to_size(uint64_t v, size_t *out)
{
    if (v > (uint64_t)SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

#endif
