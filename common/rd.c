/* rd.c - the bounded little-endian reader; see rd.h. */
#include "rd.h"

#include <string.h>

#include "banned.h"

void rd_init(struct rd *r, const void *base, uint64_t size, const char *name)
{
    r->base = base;
    r->size = size;
    r->off = 0;
    r->origin = 0;
    r->name = name;
}

static int rd_short(struct rd *r, uint64_t need, const char *what, struct err *e)
{
    return ERR_OFF(e, ERR_FORMAT, r->origin + r->off,
                   "%s%struncated %s: need %llu bytes, %llu left", r->name ? r->name : "",
                   r->name ? ": " : "", what, (unsigned long long)need,
                   (unsigned long long)rd_left(r));
}

int rd_bytes(struct rd *r, uint64_t n, const uint8_t **p, const char *what, struct err *e)
{
    if (n > rd_left(r))
        return rd_short(r, n, what, e);
    if (p)
        *p = r->base + r->off;
    r->off += n;
    return 0;
}

#define RD_FIXED(fn, type, n, dec)                                                  \
    int fn(struct rd *r, type *v, const char *what, struct err *e)                  \
    {                                                                               \
        const uint8_t *p = NULL;                                                    \
        if (rd_bytes(r, n, &p, what, e))                                            \
            return -1;                                                              \
        *v = (type)(dec);                                                           \
        return 0;                                                                   \
    }

RD_FIXED(rd_u8, uint8_t, 1, p[0])
RD_FIXED(rd_u16, uint16_t, 2, le16(p))
RD_FIXED(rd_u32, uint32_t, 4, le32(p))
RD_FIXED(rd_u64, uint64_t, 8, le64(p))
RD_FIXED(rd_i8, int8_t, 1, (int8_t)p[0])
RD_FIXED(rd_i16, int16_t, 2, (int16_t)le16(p))
RD_FIXED(rd_i32, int32_t, 4, (int32_t)le32(p))
RD_FIXED(rd_i64, int64_t, 8, (int64_t)le64(p))
RD_FIXED(rd_f32, float, 4, lef32(p))
RD_FIXED(rd_f64, double, 8, lef64(p))

int rd_str(struct rd *r, int len_bytes, uint64_t max, struct slice *s, const char *what,
           struct err *e)
{
    uint64_t start = r->off, n;
    const uint8_t *p;

    if (len_bytes == 4) {
        uint32_t n32;
        if (rd_u32(r, &n32, what, e))
            return -1;
        n = n32;
    } else if (rd_u64(r, &n, what, e)) {
        return -1;
    }
    if (n > max) {
        r->off = start;
        return ERR_OFF(e, ERR_FORMAT, r->origin + start, "%s%s%s length %llu over the limit %llu",
                       r->name ? r->name : "", r->name ? ": " : "", what,
                       (unsigned long long)n, (unsigned long long)max);
    }
    if (rd_bytes(r, n, &p, what, e)) {
        r->off = start;
        return -1;
    }
    s->p = (const char *)p;
    s->n = (size_t)n;
    return 0;
}

int rd_skip(struct rd *r, uint64_t n, const char *what, struct err *e)
{
    return rd_bytes(r, n, NULL, what, e);
}

int rd_seek(struct rd *r, uint64_t off, const char *what, struct err *e)
{
    if (off > r->size)
        return ERR_OFF(e, ERR_FORMAT, r->origin + off, "%s%s%s past end of data (%llu bytes)",
                       r->name ? r->name : "", r->name ? ": " : "", what,
                       (unsigned long long)r->size);
    r->off = off;
    return 0;
}

int rd_align(struct rd *r, uint64_t a, const char *what, struct err *e)
{
    uint64_t pad;
    if (a == 0 || (a & (a - 1)))
        return ERR(e, ERR_INTERNAL, "rd_align: %llu is not a power of two", (unsigned long long)a);
    pad = (a - (r->off & (a - 1))) & (a - 1);
    return rd_skip(r, pad, what, e);
}
