/*
 * sbuf.h - a growable byte buffer with a hard cap (curl's dynbuf idea: every
 * buffer is told its maximum).  Appends fail with ERR_LIMIT past the cap and with
 * ERR_NOMEM when malloc fails; after a failure the buffer refuses further appends
 * (so callers may append freely and check once at the end with sbuf_failed()).
 */
#ifndef SBUF_H
#define SBUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sbuf {
    char  *p;      /* owned; always NUL-terminated when len < cap */
    size_t len, cap, max;
    int    failed; /* 0, or the err_code of the first failure */
};

#define SBUF_INIT(maxbytes) { NULL, 0, 0, (maxbytes), 0 }

int  sbuf_add(struct sbuf *b, const void *p, size_t n);
int  sbuf_addc(struct sbuf *b, char c);
int  sbuf_adds(struct sbuf *b, const char *s);
int  sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_release(struct sbuf *b);
/* 0, or -1 with e set when an append failed. */
int  sbuf_check(const struct sbuf *b, const char *what, struct err *e);

#endif
