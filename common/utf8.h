/*
 * utf8.h - one UTF-8 decoder for the places that validate or escape text from files
 * (JSON parsing, JSON escaping, terminal escaping).
 */
#ifndef UTF8_H
#define UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decode the multi-byte sequence starting at s[0] (a byte >= 0x80), n bytes available.
 * Returns its length (2..4) and the code point in *cp, or 0 when the bytes are not
 * well-formed UTF-8 (bad lead or continuation byte, truncated, overlong, surrogate,
 * above U+10FFFF).
 */
static inline int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    int len = c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
    uint32_t v;

    if (len == 0 || (size_t)len > n)
        return 0;
    v = c & (0xFFu >> (len + 1));
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[k] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* U+0080..U+009F: C1 controls, which some terminals obey (CSI is U+009B). */
static inline int utf8_is_c1(uint32_t cp) { return cp >= 0x80 && cp < 0xA0; }

#endif
