/*
 * path.h - small string helpers for paths and names, one copy for every tool:
 * the last component of a path, joining, suffix tests, and a shape's text.
 */
#ifndef APR_TOOLS_PATH_H
#define APR_TOOLS_PATH_H

#include <stddef.h>
#include <stdint.h>

/* The last component of p, trailing slashes ignored: a pointer into p and, in *len
 * (may be NULL), its length without them ("a/b/" -> "b/" with *len 1; "/" -> "/", 1;
 * "" -> "", 0). */
const char *path_base(const char *p, size_t *len);

/* Do a and b have the same last component (path_base)? */
int path_same_base(const char *a, const char *b);

/* dir "/" rel (no doubled slash when dir ends with one; rel alone when dir is "");
 * malloc'd, NULL when out of memory. */
char *path_join(const char *dir, const char *rel);

/* Does s end with suffix?  (_ci: ASCII case-insensitive) */
int str_ends_with(const char *s, const char *suffix);
int str_ends_with_ci(const char *s, const char *suffix);

/* A shape as text, outermost dimension first: "[4096, 32000]" (SHAPE_BRACKETS |
 * SHAPE_SPACED), "[4096,32000]" (SHAPE_BRACKETS) or "4096,32000" (0).  Truncated to
 * fit cap (cap > 0); returns buf. */
enum { SHAPE_BRACKETS = 1, SHAPE_SPACED = 2 };
char *shape_fmt(char *buf, size_t cap, const int64_t *dims, int n_dims, unsigned style);
#define SHAPE_STR_MAX 160   /* enough for 8 dims of 19 digits */

#endif
