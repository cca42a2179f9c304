/*
 * vec.c - see vec.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"
#include "banned.h"

int vec_reserve(void **p, size_t *cap, size_t need, size_t elem, struct err *e)
{
    size_t nc = *cap ? *cap : 16;
    void *q;

    if (need <= *cap)
        return 0;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return ERR(e, ERR_LIMIT, "list too long (%zu elements)", need);
        nc *= 2;
    }
    if (elem && nc > SIZE_MAX / elem)
        return ERR(e, ERR_LIMIT, "list too long (%zu elements)", need);
    q = realloc(*p, nc * elem);
    if (!q)
        return ERR(e, ERR_NOMEM, "out of memory");
    memset((char *)q + *cap * elem, 0, (nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return 0;
}
