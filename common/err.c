/* err.c - the one error type; see err.h. */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

int err_setv_at(struct err *e, enum err_code c, const char *file, int line, const char *fmt,
                va_list ap)
{
    if (e == NULL || e->code != ERR_OK)
        return -1;
    e->code = c;
    e->src_file = file;
    e->src_line = line;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return -1;
}

int err_set_at(struct err *e, enum err_code c, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_setv_at(e, c, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

int err_set_off_at(struct err *e, enum err_code c, uint64_t off, const char *file, int line,
                   const char *fmt, ...)
{
    va_list ap;
    size_t n;

    if (e == NULL || e->code != ERR_OK)
        return -1;
    va_start(ap, fmt);
    err_setv_at(e, c, file, line, fmt, ap);
    va_end(ap);
    e->off = off;
    n = strlen(e->msg);
    if (n < sizeof e->msg)
        snprintf(e->msg + n, sizeof e->msg - n, " at offset %llu", (unsigned long long)off);
    return -1;
}

int err_sys_at(struct err *e, const char *file, int line, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    size_t n;

    if (e == NULL || e->code != ERR_OK)
        return -1;
    va_start(ap, fmt);
    err_setv_at(e, ERR_IO, file, line, fmt, ap);
    va_end(ap);
    e->sys_errno = saved;
    n = strlen(e->msg);
    if (saved && n < sizeof e->msg)
        snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(saved));
    return -1;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
    char pre[256], old[sizeof e->msg];
    va_list ap;

    if (e == NULL || e->code == ERR_OK)
        return;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    {
        /* Truncation is acceptable here: the message is for humans. */
        size_t np = strnlen(pre, sizeof pre);
        size_t room = sizeof e->msg;
        if (np + 2 >= room)
            np = room - 3;
        memcpy(e->msg, pre, np);
        e->msg[np] = ':';
        e->msg[np + 1] = ' ';
        size_t no = strnlen(old, sizeof old);
        if (no > room - np - 3)
            no = room - np - 3;
        memcpy(e->msg + np + 2, old, no);
        e->msg[np + 2 + no] = 0;
    }
}

void err_clear(struct err *e)
{
    struct err z = ERR_INIT;
    *e = z;
}

const char *err_code_name(enum err_code c)
{
    static const char *const names[] = {
        [ERR_OK] = "ok",           [ERR_USAGE] = "usage",     [ERR_IO] = "io",
        [ERR_NOMEM] = "nomem",     [ERR_FORMAT] = "format",   [ERR_UNSUPPORTED] = "unsupported",
        [ERR_LIMIT] = "limit",     [ERR_CUDA] = "cuda",       [ERR_INTERNAL] = "internal",
        [ERR_MISMATCH] = "mismatch",
    };
    if ((unsigned)c < sizeof names / sizeof names[0] && names[c])
        return names[c];
    return "unknown";
}
