/*
 * crc.h - CRC-32 (zlib's: reflected polynomial 0xEDB88320, init and final xor ~0).
 *
 *   uint32_t c = crc_update(0, p, n);  c = crc_update(c, q, m);   == crc32_z over p || q
 *   crc_combine(crc_a, crc_b, len_b) == the CRC of a || b       (zlib's crc32_combine)
 *
 * crc_update folds 64 bytes at a time with PCLMULQDQ where the CPU has it (Intel's
 * "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ", the same method as
 * Chromium's zlib and Linux's crc32-pclmul): several GB/s, where Debian's zlib 1.2.13
 * has only its table-driven CRC.  Elsewhere, and for the short tails, it calls zlib.
 * The result is always exactly zlib's (tests/unit/check_common.c compares them).
 */
#ifndef CRC_H
#define CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc_update(uint32_t crc, const void *p, size_t n);
uint32_t crc_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
/* 1 when crc_update uses the carry-less multiply path on this CPU (for tests). */
int crc_has_clmul(void);

#endif
