/* sbuf.c - growable byte buffer with a cap; see sbuf.h. */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static int grow(struct sbuf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->failed)
        return -1;
    if (extra > b->max || b->len > b->max - extra) {
        b->failed = ERR_LIMIT;
        return -1;
    }
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->failed = ERR_NOMEM;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int sbuf_add(struct sbuf *b, const void *p, size_t n)
{
    if (grow(b, n))
        return -1;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int sbuf_addc(struct sbuf *b, char c) { return sbuf_add(b, &c, 1); }
int sbuf_adds(struct sbuf *b, const char *s) { return sbuf_add(b, s, strlen(s)); }

int sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = ERR_INTERNAL;
        return -1;
    }
    if ((size_t)n < sizeof tmp)
        return sbuf_add(b, tmp, (size_t)n);
    if (grow(b, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void sbuf_release(struct sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

int sbuf_check(const struct sbuf *b, const char *what, struct err *e)
{
    if (!b->failed)
        return 0;
    if (b->failed == ERR_LIMIT)
        return ERR(e, ERR_LIMIT, "%s: over the limit of %zu bytes", what, b->max);
    return ERR(e, (enum err_code)b->failed, "%s: out of memory", what);
}
