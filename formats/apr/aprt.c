/*
 * aprt.c - APRT stage-dump files: reader and writer (layout in aprt.h).
 */
#include "aprt.h"

#include <stdlib.h>
#include <string.h>

#include "../../common/ofile.h"
#include "../../common/rd.h"
#include "apr_impl.h"
#include "../../common/banned.h"

int aprt_is(const void *p, size_t n)
{
    return n >= 4 && memcmp(p, "APRT", 4) == 0;
}

static int parse(struct aprt *d, struct err *e)
{
    const char *name = d->mf.path;
    const uint8_t *mg;
    uint64_t body;
    struct rd r;

    rd_init(&r, d->mf.data, d->mf.size, name);
    if (d->mf.size < 4 || memcmp(d->mf.data, "APRT", 4) != 0)
        return ERR_OFF(e, ERR_FORMAT, 0, "%s: not an APRT stage dump (bad magic)", name);
    if (d->mf.size < APRT_HEADER_SIZE)
        return ERR_OFF(e, ERR_FORMAT, d->mf.size,
                       "%s: truncated APRT header: need %u bytes, file has %llu", name,
                       APRT_HEADER_SIZE, (unsigned long long)d->mf.size);
    if (rd_bytes(&r, 4, &mg, "magic", e) || rd_u32(&r, &d->layer, "layer", e) ||
        rd_u32(&r, &d->count, "value count", e))
        return -1;
    body = (uint64_t)d->count * 4;   /* < 2^34: no overflow */
    if (body > rd_left(&r))
        return ERR_OFF(e, ERR_FORMAT, 8,
                       "%s: APRT value count %u needs %llu bytes, %llu follow the header", name,
                       d->count, (unsigned long long)body, (unsigned long long)rd_left(&r));
    if (rd_bytes(&r, body, &d->values, "values", e))
        return -1;
    d->trailing = rd_left(&r);
    return 0;
}

int aprt_open(struct aprt *d, const char *path, struct err *e)
{
    memset(d, 0, sizeof *d);
    if (mfile_open(&d->mf, path, e) || parse(d, e)) {
        aprt_close(d);
        return -1;
    }
    return 0;
}

int aprt_open_mem(struct aprt *d, const void *buf, size_t n, const char *name, struct err *e)
{
    memset(d, 0, sizeof *d);
    if (mfile_wrap(&d->mf, buf, n, name, e) || parse(d, e)) {
        aprt_close(d);
        return -1;
    }
    return 0;
}

void aprt_close(struct aprt *d)
{
    if (!d)
        return;
    mfile_close(&d->mf);
    memset(d, 0, sizeof *d);
}

float aprt_get(const struct aprt *d, uint32_t i)
{
    return lef32(d->values + (size_t)i * 4);   /* i < count: caller; aprt_open bounds count */
}

void aprt_copy(const struct aprt *d, uint32_t first, uint32_t n, float *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = aprt_get(d, first + i);
}

int aprt_write(const char *path, uint32_t layer, const float *v, uint32_t n, struct err *e)
{
    struct ofile o = OFILE_INIT;
    uint8_t buf[64 * 1024];
    size_t len;
    int rc = -1;

    if (n && !v)
        return ERR(e, ERR_INTERNAL, "%s: no values to write", path);
    if (ofile_open(&o, path, 0, e))
        return -1;
    memcpy(buf, "APRT", 4);
    put_le32(buf + 4, layer);
    put_le32(buf + 8, n);
    len = APRT_HEADER_SIZE;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_le32(buf + len, u);
        len += 4;
        if (len == sizeof buf || i + 1 == n) {
            if (ofile_write(&o, buf, len, e))
                goto done;
            len = 0;
        }
    }
    if (len && ofile_write(&o, buf, len, e))
        goto done;
    rc = ofile_commit(&o, e);
done:
    ofile_abort(&o);
    return rc;
}
