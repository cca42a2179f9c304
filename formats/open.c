/*
 * open.c - opening a model by content, above the three readers: the first bytes say
 * GGUF, APR or SafeTensors (never the extension), a directory or a JSON index is a
 * (sharded) SafeTensors checkpoint; the reader of that format does the rest.  The
 * declarations are in model.h (model_open, model_open_ex, model_open_mem), so tools
 * include the view only; the view (model.c) includes no reader.
 */
#include "model.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/rd.h"
#include "apr/apr.h"
#include "gguf/gguf.h"
#include "safetensors/st.h"
#include "../common/banned.h"

/*
 * Detection by content.  Returns a format, or 0 with *why set.
 * SafeTensors: u64 header length N, then (after optional JSON whitespace) '{'.
 * A JSON object at offset 0 is a sharded-checkpoint index.
 */
#define DETECT_ST_INDEX 100
static int detect(const uint8_t *p, uint64_t n, const char **why)
{
    *why = "unrecognised format (not GGUF, SafeTensors or APR)";
    if (n >= 4 && memcmp(p, "GGUF", 4) == 0)
        return MODEL_FMT_GGUF;
    if (n >= 4 && memcmp(p, "FUGG", 4) == 0) {
        *why = "byte-swapped GGUF magic 'FUGG': big-endian GGUF is not supported";
        return 0;
    }
    if (n >= 4 && memcmp(p, "APR", 3) == 0) {
        if (p[3] == 0 || p[3] == '2')
            return MODEL_FMT_APR;
        if (p[3] == 'N' || p[3] == '1') {
            *why = "APR v1 file: only APR v2 (magic 'APR\\0' or 'APR2') is supported";
            return 0;
        }
    }
    /* SafeTensors first: its u64 header length may well start with the byte '{' (0x7B),
     * while eight bytes of JSON text read as a length are far above the 100 MB cap. */
    if (n >= 9) {
        uint64_t hl = le64(p), i = 8;
        while (i < n && i < 16 && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
            i++;
        /* (an oversized length still goes to the SafeTensors reader, which says so,
         * unless the file reads as JSON text from its first byte) */
        if (hl >= 2 && i < n && p[i] == '{' && (hl <= ST_MAX_HEADER || p[0] != '{'))
            return MODEL_FMT_SAFETENSORS;
    }
    if (n >= 1) {
        uint64_t i = 0;
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
            i++;
        if (i < n && p[i] == '{')
            return DETECT_ST_INDEX;
    }
    if (n < 4)
        *why = "file too short to be a model";
    return 0;
}

int model_open(struct model *m, const char *path, struct err *e)
{
    return model_open_ex(m, path, 0, e);
}

int model_open_ex(struct model *m, const char *path, unsigned flags, struct err *e)
{
    struct apr_read_opts ao = { 0 };
    struct stat st;
    uint8_t head[16];
    ssize_t got;
    const char *why;
    int fd, f;

    memset(m, 0, sizeof *m);
    if (stat(path, &st) != 0)
        return ERR_SYS(e, "cannot open '%s'", path);
    if (S_ISDIR(st.st_mode))
        return st_open(m, path, e);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ERR_SYS(e, "cannot open '%s'", path);
    got = pread(fd, head, sizeof head, 0);
    if (got < 0) {
        ERR_SYS(e, "cannot read '%s'", path);
        close(fd);
        return -1;
    }
    close(fd);
    f = detect(head, (uint64_t)got, &why);
    switch (f) {
    case MODEL_FMT_GGUF:        return gguf_open(m, path, e);
    case MODEL_FMT_APR:
        ao.skip_footer_crc = (flags & MODEL_OPEN_HEADER_ONLY) != 0;
        return apr_open_opts(m, path, &ao, e);
    case MODEL_FMT_SAFETENSORS:
    case DETECT_ST_INDEX:       return st_open(m, path, e);
    }
    return ERR_OFF(e, ERR_FORMAT, 0, "%s: %s", path, why);
}

int model_open_mem(struct model *m, const void *buf, size_t n, const char *name, struct err *e)
{
    const char *why;
    int f = detect(buf, n, &why);

    memset(m, 0, sizeof *m);
    switch (f) {
    case MODEL_FMT_GGUF:        return gguf_open_mem(m, buf, n, name, e);
    case MODEL_FMT_APR:         return apr_open_mem(m, buf, n, name, e);
    case MODEL_FMT_SAFETENSORS: return st_open_mem(m, buf, n, name, e);
    }
    return ERR_OFF(e, ERR_FORMAT, 0, "%s: %s", name ? name : "<memory>", why);
}
