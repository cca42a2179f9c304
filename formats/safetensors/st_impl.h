/*
 * st_impl.h - helpers shared inside formats/safetensors (never included by tools).
 */
#ifndef ST_IMPL_H
#define ST_IMPL_H

#include <stddef.h>

#include "../../common/err.h"
#include "../../common/slice.h"

/* Write dir/name with n bytes of p through a temporary file beside it (fsync, then
 * rename); nothing is left behind on failure.  st_write.c. */
int st__write_file(const char *dir, const char *name, const void *p, size_t n, struct err *e);

/* "dir/name", malloc()ed (the caller frees it); NULL with ERR_NOMEM.  st_read.c. */
char *st__path_join(const char *dir, struct slice name, struct err *e);

#endif
