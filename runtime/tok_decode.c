/*
 * tok_decode.c - ids -> text, as llama.cpp's token_to_piece and llama_detokenize.
 *
 * Pieces (built once at load):
 *   CONTROL, UNKNOWN  the token text, only with TOK_DECODE_SPECIAL (else nothing)
 *   USER_DEFINED      the token text
 *   NORMAL            SentencePiece: "▁" -> " "; byte-level: each code point back to its
 *                     byte (a code point outside the byte alphabet is written as
 *                     llama.cpp does: "[UNK_BYTE_0x<hex>" + token text + "]")
 *   BYTE (SPM)        the byte of <0xNN>
 *   UNUSED, other     nothing
 * tok_decode drops one leading space of the first piece when the vocabulary adds a
 * space prefix, then (byte-level vocabularies whose pre-tokenizer asks for it) applies
 * llama.cpp's clean-up of tokenization spaces (" ," " ." " 's" ...); TOK_DECODE_RAW
 * skips both, so that decode(encode(x)) == x wherever the vocabulary covers x.
 */
#include "tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/sbuf.h"
#include "../common/banned.h"

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* byte-level code point -> byte, -1 outside the alphabet */
static int byte_of_cp(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 256 && cp < 256 + 68) {
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
                continue;
            if ((uint32_t)(256 + n) == cp)
                return b;
            n++;
        }
    }
    return -1;
}

/* llama.cpp's lax UTF-8 reading (unicode_cpts_from_utf8) */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t *i)
{
    unsigned c = s[*i];
    size_t k = c < 0x80 ? 1 : !(c & 0x40) ? 0 : !(c & 0x20) ? 2 : !(c & 0x10) ? 3 : !(c & 0x08) ? 4 : 0;
    uint32_t cp;

    if (k == 1) {
        (*i)++;
        return c;
    }
    if (k == 0 || *i + k > n) {
        (*i)++;
        return 0xFFFD;
    }
    for (size_t j = 1; j < k; j++)
        if ((s[*i + j] & 0xC0) != 0x80) {
            (*i)++;
            return 0xFFFD;
        }
    cp = c & (0x7Fu >> k);
    for (size_t j = 1; j < k; j++)
        cp = cp << 6 | (s[*i + j] & 0x3F);
    *i += k;
    return cp;
}

static void put_cp(struct sbuf *b, uint32_t cp)
{
    char u[4];
    int n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18 & 7));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sbuf_add(b, u, (size_t)n);
}

static void piece_of(const struct tokenizer *t, int32_t id, struct sbuf *b)
{
    size_t n;
    const char *s = tok_str(&t->st, id, &n);
    uint16_t at = t->attr[id];

    if (at & (TA_CONTROL | TA_UNKNOWN | TA_USER)) {
        sbuf_add(b, s, n);
        return;
    }
    if (t->kind == TOK_SPM) {
        if (at & TA_NORMAL) {
            for (size_t i = 0; i < n; i++) {
                if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                    sbuf_addc(b, ' ');
                    i += 2;
                } else {
                    sbuf_addc(b, s[i]);
                }
            }
        } else if ((at & TA_BYTE) && n >= 5) {
            int hi = hexval(s[3]), lo = hexval(s[4]);
            sbuf_addc(b, (char)((hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo)));
        }
        return;
    }
    if (at & TA_NORMAL) {
        size_t i = 0;
        while (i < n) {
            uint32_t cp = next_cp((const unsigned char *)s, n, &i);
            int byte = byte_of_cp(cp);
            if (byte >= 0) {
                sbuf_addc(b, (char)byte);
            } else {
                struct sbuf u = SBUF_INIT(16);
                put_cp(&u, cp);
                sbuf_adds(b, "[UNK_BYTE_0x");
                for (size_t k = 0; k < u.len; k++)
                    sbuf_addf(b, "%02x", (uint8_t)u.p[k]);
                sbuf_add(b, s, n);
                sbuf_addc(b, ']');
                sbuf_release(&u);
            }
        }
    }
}

int tok__pieces_build(struct tokenizer *t, struct err *e)
{
    struct sbuf b = SBUF_INIT((size_t)1 << 34);

    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    if (!t->piece_off)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        t->piece_off[id] = b.len;
        piece_of(t, (int32_t)id, &b);
    }
    t->piece_off[t->n_vocab] = b.len;
    sbuf_addc(&b, 0);
    if (sbuf_check(&b, "token pieces", e)) {
        sbuf_release(&b);
        return -1;
    }
    t->piece_blob = b.p;   /* owned now */
    return 0;
}

const char *tok_piece(const struct tokenizer *t, int32_t id, unsigned flags, size_t *len)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab ||
        (!(flags & TOK_DECODE_SPECIAL) && (t->attr[id] & (TA_CONTROL | TA_UNKNOWN)))) {
        *len = 0;
        return "";
    }
    *len = (size_t)(t->piece_off[id + 1] - t->piece_off[id]);
    return t->piece_blob + t->piece_off[id];
}

/* llama.cpp's three clean-up passes, in place; returns the new length */
static size_t clean_spaces(char *text, size_t total)
{
    size_t total1 = total, total2, total3;

    total = total ? 1 : 0;
    for (size_t i = 1; i < total1; ++i) {
        const char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
        text[total++] = x;
    }
    total2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total2; ++i) {
        const char x = text[i];
        if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }
    total3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total3; ++i) {
        const char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            const char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm')
                total--;
            else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                const char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e'))
                    total--;
            }
        }
        text[total++] = x;
    }
    return total;
}

int tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
               char **out, size_t *len, struct err *e)
{
    struct sbuf b = SBUF_INIT((size_t)1 << 34);
    int strip = t->add_space_prefix && !(flags & TOK_DECODE_RAW);

    *out = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pn;
        const char *p = tok_piece(t, ids[i], flags, &pn);
        if (strip && pn && p[0] == ' ') {
            p++;
            pn--;
        }
        strip = 0;
        sbuf_add(&b, p, pn);
    }
    sbuf_addc(&b, 0);
    if (sbuf_check(&b, "detokenized text", e)) {
        sbuf_release(&b);
        return -1;
    }
    b.len--;
    if (t->clean_spaces && !(flags & TOK_DECODE_RAW)) {
        b.len = clean_spaces(b.p, b.len);
        b.p[b.len] = 0;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* ---- streaming */

void tok_stream_init(struct tok_stream *s, const struct tokenizer *t, unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->t = t;
    s->flags = flags;
    s->first = 1;
}

/* Bytes at the end of p[0, n) that start a UTF-8 sequence not yet complete. */
static size_t incomplete_tail(const unsigned char *p, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned c = p[n - back];
        size_t need;
        if ((c & 0xC0) == 0x80)
            continue;   /* a continuation byte: look further back */
        need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (c >= 0xF8)
            return 0;
        return need > back ? back : 0;
    }
    return 0;
}

int tok_stream_push(struct tok_stream *s, int32_t id, const char **out, size_t *len,
                    struct err *e)
{
    size_t pn, total, keep;
    const char *p = tok_piece(s->t, id, s->flags, &pn);
    char *dst;

    free(s->big);
    s->big = NULL;
    if (s->first && pn && s->t->add_space_prefix && !(s->flags & TOK_DECODE_RAW) && p[0] == ' ') {
        p++;
        pn--;
    }
    s->first = 0;
    total = s->n_held + pn;
    if (total <= sizeof s->buf) {
        dst = s->buf;
    } else {
        dst = s->big = malloc(total);
        if (!dst)
            return ERR(e, ERR_NOMEM, "out of memory");
    }
    memmove(dst, s->held, s->n_held);
    memcpy(dst + s->n_held, p, pn);
    keep = incomplete_tail((const unsigned char *)dst, total);
    memcpy(s->held, dst + total - keep, keep);
    s->n_held = keep;
    *out = dst;
    *len = total - keep;
    return 0;
}

void tok_stream_flush(struct tok_stream *s, const char **out, size_t *len)
{
    free(s->big);
    s->big = NULL;
    memcpy(s->buf, s->held, s->n_held);
    *out = s->buf;
    *len = s->n_held;
    s->n_held = 0;
}

void tok_stream_release(struct tok_stream *s)
{
    free(s->big);
    s->big = NULL;
}
