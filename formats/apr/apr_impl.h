/*
 * apr_impl.h - private constants and helpers shared by apr_read.c, apr_write.c and aprt.c.
 */
#ifndef APR_IMPL_H
#define APR_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "../../common/crc.h"

#define APR_HEADER_SIZE    64u
#define APR_ALIGN          64u
#define APR_MAX_DIMS       8u     /* aprender's writer truncates past 8; we refuse */
#define APR_MAX_NAME       256u   /* aprender's MAX_TENSOR_NAME_LEN (writer side) */
#define APR_CRC_OFF        40u    /* header CRC field: covers [0,40) and [44,64) */
#define APR_FOOTER_SIZE    4u
/* Smallest index entry: u16 name_len, name, u8 dtype, u8 ndim, dims, u64 offset, u64 size. */
#define APR_ENTRY_MIN      (2u + 0u + 1u + 1u + 0u + 16u)

/* CRC-32 (zlib's) of any length; common/crc.c folds with PCLMULQDQ where it can. */
static inline uint32_t apr__crc(uint32_t crc, const uint8_t *p, uint64_t n)
{
    while (n) {
        size_t k = n > (1u << 30) ? (size_t)1 << 30 : (size_t)n;
        crc = crc_update(crc, p, k);
        p += k;
        n -= k;
    }
    return crc;
}

/* The header CRC: CRC-32 of bytes [0,40) || [44,64) (reference/apr.md 2.1). */
static inline uint32_t apr__header_crc(const uint8_t *h)
{
    uint32_t c = (uint32_t)crc32_z(0, h, APR_CRC_OFF);
    return (uint32_t)crc32_z(c, h + APR_CRC_OFF + 4, APR_HEADER_SIZE - APR_CRC_OFF - 4);
}

#endif
