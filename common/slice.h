/*
 * slice.h - a borrowed (pointer, length) string.
 *
 * Names and strings read from model files are slices into the mapping (or into a
 * model's arena); they are NOT NUL-terminated.  Print with "%.*s", (int)s.n, s.p,
 * or better with cli_put_escaped()/json_put_str(), which escape control bytes.
 */
#ifndef SLICE_H
#define SLICE_H

#include <stddef.h>
#include <string.h>

struct slice {
    const char *p;  /* borrowed; may be NULL when n == 0 */
    size_t      n;
};

#define SLICE_LIT(s) ((struct slice){ (s), sizeof(s) - 1 })

static inline struct slice slice_from_cstr(const char *s)
{
    struct slice r = { s, s ? strlen(s) : 0 };
    return r;
}

static inline int slice_eq(struct slice a, struct slice b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static inline int slice_eq_cstr(struct slice a, const char *s)
{
    return slice_eq(a, slice_from_cstr(s));
}

/* Bytewise comparison, shorter first on a common prefix (Rust String / memcmp order). */
static inline int slice_cmp(struct slice a, struct slice b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c)
        return c;
    return (a.n > b.n) - (a.n < b.n);
}

static inline int slice_starts_with(struct slice a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.n >= n && memcmp(a.p, prefix, n) == 0;
}

#endif
