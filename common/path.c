/*
 * path.c - see path.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "path.h"
#include "banned.h"

const char *path_base(const char *p, size_t *len)
{
    size_t n = strlen(p), b;

    while (n > 1 && p[n - 1] == '/')
        n--;
    b = n;
    while (b > 0 && p[b - 1] != '/')
        b--;
    if (b == n && n > 0)   /* "/" */
        b = n - 1;
    if (len)
        *len = n - b;
    return p + b;
}

int path_same_base(const char *a, const char *b)
{
    size_t na, nb;
    const char *x = path_base(a, &na), *y = path_base(b, &nb);

    return na == nb && memcmp(x, y, na) == 0;
}

char *path_join(const char *dir, const char *rel)
{
    size_t dn = strlen(dir), rn = strlen(rel);
    int sep = dn > 0 && dir[dn - 1] != '/';
    char *p = malloc(dn + (size_t)sep + rn + 1);

    if (!p)
        return NULL;
    memcpy(p, dir, dn);
    if (sep)
        p[dn] = '/';
    memcpy(p + dn + (size_t)sep, rel, rn + 1);
    return p;
}

int str_ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

int str_ends_with_ci(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

char *shape_fmt(char *buf, size_t cap, const int64_t *dims, int n_dims, unsigned style)
{
    const char *sep = style & SHAPE_SPACED ? ", " : ",";
    size_t o = 0;

    buf[0] = 0;
    if (style & SHAPE_BRACKETS)
        o += (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < n_dims && o < cap; k++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", k ? sep : "", (long long)dims[k]);
    if ((style & SHAPE_BRACKETS) && o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}
