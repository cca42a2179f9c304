/*
 * err.h - the one error type of apr-tools.
 *
 * Fallible functions return 0 / -1 (or a pointer / NULL) and take `struct err *e`
 * as their last parameter.  The first error wins: once e->code != ERR_OK, later
 * err_set calls are ignored, so a failure during cleanup cannot hide the cause.
 * Library code never prints or exits; the CLI prints "apr-x: <msg>" and maps the
 * code to an exit status.
 *
 * Messages follow git's rules: lowercase, no final period, what failed first,
 * subjects in single quotes, the file offset or tensor name when known:
 *   "model.gguf: tensor 'blk.0.attn_q.weight': data [4096, 9000) past end of file (8192 bytes)"
 */
#ifndef ERR_H
#define ERR_H

#include <stdint.h>
#include <stdarg.h>

enum err_code {
    ERR_OK = 0,
    ERR_USAGE,        /* bad arguments (exit 2) */
    ERR_IO,           /* open/read/write/mmap failed; sys_errno set */
    ERR_NOMEM,
    ERR_FORMAT,       /* malformed or malicious file; off set when known */
    ERR_UNSUPPORTED,  /* valid but not handled (e.g. big-endian GGUF) */
    ERR_LIMIT,        /* a count or size over one of our caps */
    ERR_CUDA,
    ERR_INTERNAL,
    ERR_MISMATCH,     /* a comparison failed (diff, hash --check, verify) */
};

#define ERR_NO_OFF UINT64_MAX

struct err {
    enum err_code code;      /* ERR_OK until the first failure */
    int           sys_errno; /* errno captured at the failure, else 0 */
    uint64_t      off;       /* file offset for ERR_FORMAT, else ERR_NO_OFF */
    const char   *src_file;  /* where it was raised (SQLite's _BKPT idea) */
    int           src_line;
    char          msg[512];
};

#define ERR_INIT { ERR_OK, 0, ERR_NO_OFF, 0, 0, { 0 } }

/* Record an error (unless one is already recorded).  Always returns -1. */
int err_set_at(struct err *e, enum err_code c, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int err_setv_at(struct err *e, enum err_code c, const char *file, int line, const char *fmt,
                va_list ap);
/* Like err_set_at, and records a file offset; the message gets " at offset N" appended. */
int err_set_off_at(struct err *e, enum err_code c, uint64_t off, const char *file, int line,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#define ERR(e, c, ...)          err_set_at((e), (c), __FILE__, __LINE__, __VA_ARGS__)
#define ERR_OFF(e, c, o, ...)   err_set_off_at((e), (c), (o), __FILE__, __LINE__, __VA_ARGS__)
/* ERR_IO with errno captured: ERR_SYS(e, "cannot open '%s'", path) -> "...: No such file" */
#define ERR_SYS(e, ...)         err_sys_at((e), __FILE__, __LINE__, __VA_ARGS__)
int err_sys_at(struct err *e, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefix the recorded message with "prefix: " (e.g. the file name); no-op when OK. */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline int err_ok(const struct err *e) { return e->code == ERR_OK; }
void err_clear(struct err *e);
const char *err_code_name(enum err_code c);

#endif
