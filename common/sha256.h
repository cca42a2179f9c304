/*
 * sha256.h - SHA-256 through OpenSSL's EVP interface (SHA-NI where the CPU has it).
 *
 *   struct sha256 h; sha256_init(&h); sha256_update(&h, p, n); sha256_final(&h, out32);
 *
 * sha256_init allocates an EVP context; sha256_final and sha256_release free it.
 * Errors from OpenSSL are reported through struct err where a function takes one;
 * update/final on a failed context are no-ops that keep the failure.
 */
#ifndef SHA256_H
#define SHA256_H

#include <stdint.h>
#include <stddef.h>

#include "err.h"

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64

struct sha256 {
    void *ctx;  /* EVP_MD_CTX *, owned */
    int   bad;
};

int  sha256_init(struct sha256 *h, struct err *e);
void sha256_update(struct sha256 *h, const void *p, size_t n);
int  sha256_final(struct sha256 *h, uint8_t out[SHA256_LEN], struct err *e);
void sha256_release(struct sha256 *h);
/* One shot over a buffer. */
int  sha256_buf(const void *p, size_t n, uint8_t out[SHA256_LEN], struct err *e);
/* Lowercase hex, NUL-terminated (hex must hold 65 bytes). */
void sha256_hex(const uint8_t d[SHA256_LEN], char hex[SHA256_HEX_LEN + 1]);
/* Parse 64 hex digits (either case); -1 when malformed. */
int  sha256_parse_hex(const char *s, size_t n, uint8_t out[SHA256_LEN]);

#endif
