/*
 * vec.h - growable arrays: one checked "make room" for every tool's lists.
 *
 *   struct thing *v = NULL; size_t n = 0, cap = 0;
 *   if (vec_reserve((void **)&v, &cap, n + 1, sizeof *v, e)) return -1;
 *   v[n++] = x;
 */
#ifndef APR_TOOLS_VEC_H
#define APR_TOOLS_VEC_H

#include <stddef.h>

#include "err.h"

/* Make *p hold at least need elements of elem bytes (doubling from 16; the new room is
 * zeroed).  0, or -1 with ERR_NOMEM / ERR_LIMIT (size overflow) in e; *p is kept on
 * failure. */
int vec_reserve(void **p, size_t *cap, size_t need, size_t elem, struct err *e);

#endif
