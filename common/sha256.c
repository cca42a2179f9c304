/* sha256.c - SHA-256 over OpenSSL EVP; see sha256.h. */
#include "sha256.h"

#include <openssl/evp.h>

#include "banned.h"

int sha256_init(struct sha256 *h, struct err *e)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    h->ctx = c;
    h->bad = 0;
    if (!c)
        return ERR(e, ERR_NOMEM, "sha256: out of memory");
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        h->bad = 1;
        return ERR(e, ERR_INTERNAL, "sha256: EVP_DigestInit_ex failed");
    }
    return 0;
}

void sha256_update(struct sha256 *h, const void *p, size_t n)
{
    /* EVP_DigestUpdate takes any size; chunk anyway so a huge n never hits an int somewhere. */
    const uint8_t *b = p;
    while (!h->bad && n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        if (EVP_DigestUpdate(h->ctx, b, k) != 1)
            h->bad = 1;
        b += k;
        n -= k;
    }
}

int sha256_final(struct sha256 *h, uint8_t out[SHA256_LEN], struct err *e)
{
    unsigned len = 0;
    int bad = h->bad || EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != SHA256_LEN;

    sha256_release(h);
    if (bad)
        return ERR(e, ERR_INTERNAL, "sha256: digest failed");
    return 0;
}

void sha256_release(struct sha256 *h)
{
    if (h && h->ctx) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
    }
}

int sha256_buf(const void *p, size_t n, uint8_t out[SHA256_LEN], struct err *e)
{
    struct sha256 h;
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        return -1;
    }
    sha256_update(&h, p, n);
    return sha256_final(&h, out, e);
}

void sha256_hex(const uint8_t d[SHA256_LEN], char hex[SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_LEN; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[SHA256_HEX_LEN] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sha256_parse_hex(const char *s, size_t n, uint8_t out[SHA256_LEN])
{
    if (n != SHA256_HEX_LEN)
        return -1;
    for (int i = 0; i < SHA256_LEN; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
