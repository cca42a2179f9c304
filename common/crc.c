/* crc.c - CRC-32 with a PCLMULQDQ fast path; see crc.h. */
#include "crc.h"

#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CRC_CLMUL 1
#endif

#include "banned.h"

#define CRC_POLY 0xEDB88320u

/* zlib's crc32_z over any length (its length type may be narrower than size_t). */
static uint32_t crc_zlib(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n) {
        size_t k = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        crc = (uint32_t)crc32_z(crc, p, (z_size_t)k);
        p += k;
        n -= k;
    }
    return crc;
}

#ifdef CRC_CLMUL
/*
 * The folding loop over n bytes (n >= 64, a multiple of 16), on the raw (pre-inverted)
 * CRC state.  Constants for the bit-reflected polynomial, from the Intel paper:
 * k1 = x^(4*128+32) mod P, k2 = x^(4*128-32) mod P (fold by 4), k3/k4 the same for
 * one 128-bit lane, k5 = x^64 mod P, and the Barrett pair P' and mu.
 */
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc_fold(uint32_t crc, const uint8_t *buf, size_t len)
{
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
    const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124);
    const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
    const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
    __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8;

    x1 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x00));
    x2 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x10));
    x3 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x20));
    x4 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x30));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    buf += 64;
    len -= 64;

    /* four lanes of 128 bits, each folded 512 bits forward */
    while (len >= 64) {
        x5 = _mm_clmulepi64_si128(x1, k1k2, 0x00);
        x6 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
        x7 = _mm_clmulepi64_si128(x3, k1k2, 0x00);
        x8 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
        x1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
        x2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
        x3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
        x4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x5),
                           _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x00)));
        x2 = _mm_xor_si128(_mm_xor_si128(x2, x6),
                           _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x10)));
        x3 = _mm_xor_si128(_mm_xor_si128(x3, x7),
                           _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x20)));
        x4 = _mm_xor_si128(_mm_xor_si128(x4, x8),
                           _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x30)));
        buf += 64;
        len -= 64;
    }

    /* fold the four lanes into one */
    x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
    x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
    x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);

    /* then 16 bytes at a time */
    while (len >= 16) {
        x2 = _mm_loadu_si128((const __m128i *)(const void *)buf);
        x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
        buf += 16;
        len -= 16;
    }

    /* 128 -> 64 bits */
    x2 = _mm_clmulepi64_si128(x1, k3k4, 0x10);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
    /* 64 -> 32 bits */
    x2 = _mm_srli_si128(x1, 4);
    x1 = _mm_and_si128(x1, mask32);
    x1 = _mm_clmulepi64_si128(x1, k5k0, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    /* Barrett reduction */
    x0 = _mm_and_si128(x1, mask32);
    x0 = _mm_clmulepi64_si128(x0, poly, 0x10);
    x0 = _mm_and_si128(x0, mask32);
    x0 = _mm_clmulepi64_si128(x0, poly, 0x00);
    x1 = _mm_xor_si128(x1, x0);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int clmul_state;   /* 0 unknown, 1 yes, -1 no; a benign race: every thread agrees */

int crc_has_clmul(void)
{
    if (clmul_state == 0) {
        __builtin_cpu_init();
        clmul_state = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1")
                          ? 1 : -1;
    }
    return clmul_state > 0;
}
#else
int crc_has_clmul(void)
{
    return 0;
}
#endif

uint32_t crc_update(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;

#ifdef CRC_CLMUL
    if (n >= 64 && crc_has_clmul()) {
        size_t k = n & ~(size_t)15;
        crc = ~crc_fold(~crc, b, k);
        b += k;
        n -= k;
    }
#endif
    return crc_zlib(crc, b, n);
}

/* a * b modulo the polynomial, both bit-reflected (zlib 1.2.13's multmodp). */
static uint32_t crc_mulmod(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, r = 0;

    for (;;) {
        if (a & m) {
            r ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ CRC_POLY : b >> 1;
    }
    return r;
}

uint32_t crc_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    /* x^(8 * len_b) mod P by squaring: sq = x^(2^k), starting at x^8 (k = 3) */
    uint32_t op = 1u << 31, sq = 1u << 30;   /* x^0, x^1 */

    for (int k = 0; k < 3; k++)
        sq = crc_mulmod(sq, sq);
    while (len_b) {
        if (len_b & 1)
            op = crc_mulmod(sq, op);
        len_b >>= 1;
        sq = crc_mulmod(sq, sq);
    }
    return crc_mulmod(op, crc_a) ^ crc_b;
}
