/*
 * json.c - JSON reading on jsmn plus the checks jsmn does not make, and an
 * escaping writer; see json.h.
 */
/* The one translation unit that instantiates jsmn; everyone else includes it through
 * json.h with JSMN_HEADER (declarations only).  Same configuration macros as json.h. */
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "banned.h"

#define JSON_MAX_DEPTH 256

uint64_t json_off(const struct json_doc *d, int i)
{
    if (i < 0 || i >= d->n_tok)
        return d->origin + d->len;
    return d->origin + (uint64_t)d->tok[i].start;
}

static int bad(const struct json_doc *d, int pos, struct err *e, const char *what)
{
    return ERR_OFF(e, ERR_FORMAT, d->origin + (uint64_t)pos, "%s%sinvalid JSON: %s",
                   d->name ? d->name : "", d->name ? ": " : "", what);
}

/* Validate UTF-8 and escapes of the string body [s, s+n). */
static int check_string(const struct json_doc *d, int start, int end, struct err *e)
{
    const unsigned char *p = (const unsigned char *)d->text;
    for (int i = start; i < end;) {
        unsigned c = p[i];
        if (c < 0x20)
            return bad(d, i, e, "control character in string");
        if (c == '\\') {
            if (i + 1 >= end)
                return bad(d, i, e, "bad escape");
            switch (p[i + 1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                i += 2;
                continue;
            case 'u':
                if (i + 6 > end)
                    return bad(d, i, e, "short \\u escape");
                for (int k = 2; k < 6; k++) {
                    unsigned h = p[i + k];
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                        return bad(d, i, e, "bad \\u escape");
                }
                i += 6;
                continue;
            default:
                return bad(d, i, e, "bad escape");
            }
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int n = utf8_decode(p + i, (size_t)(end - i), &cp);
        if (n == 0)
            return bad(d, i, e, "invalid UTF-8 in string");
        i += n;
    }
    return 0;
}

static int check_primitive(const struct json_doc *d, int i, struct err *e)
{
    const char *s = d->text + d->tok[i].start;
    int n = d->tok[i].end - d->tok[i].start, k = 0;

    if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)) ||
        (n == 4 && !memcmp(s, "null", 4)))
        return 0;
    /* number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (k < n && s[k] == '-')
        k++;
    if (k < n && s[k] == '0')
        k++;
    else if (k < n && s[k] >= '1' && s[k] <= '9')
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    else
        return bad(d, d->tok[i].start, e, "bad literal");
    if (k < n && s[k] == '.') {
        k++;
        if (!(k < n && s[k] >= '0' && s[k] <= '9'))
            return bad(d, d->tok[i].start, e, "bad number");
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (!(k < n && s[k] >= '0' && s[k] <= '9'))
            return bad(d, d->tok[i].start, e, "bad number");
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    }
    if (k != n)
        return bad(d, d->tok[i].start, e, "bad number");
    return 0;
}

struct keyref { const char *p; int n; int tok; };

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    int m = x->n < y->n ? x->n : y->n, c = memcmp(x->p, y->p, (size_t)m);
    if (c)
        return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* Duplicate keys compare raw (escaped) text: two spellings of one key are rare enough
 * that we also unescape-compare when raw texts differ only by escapes (not done: a
 * document that spells one key twice with different escapes is accepted). */
static int check_dups(const struct json_doc *d, int obj, struct err *e)
{
    int n = d->tok[obj].size, i = obj + 1, rc = 0;
    struct keyref *k;

    if (n < 2)
        return 0;
    k = malloc((size_t)n * sizeof *k);
    if (!k)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (int j = 0; j < n; j++) {
        k[j].p = d->text + d->tok[i].start;
        k[j].n = d->tok[i].end - d->tok[i].start;
        k[j].tok = i;
        i = json_next(d, i + 1);
    }
    qsort(k, (size_t)n, sizeof *k, keyref_cmp);
    for (int j = 1; j < n; j++)
        if (keyref_cmp(&k[j - 1], &k[j]) == 0) {
            int t = k[j].tok > k[j - 1].tok ? k[j].tok : k[j - 1].tok;
            rc = ERR_OFF(e, ERR_FORMAT, json_off(d, t), "%s%sduplicate JSON key '%.*s'",
                         d->name ? d->name : "", d->name ? ": " : "", k[j].n > 200 ? 200 : k[j].n,
                         k[j].p);
            break;
        }
    free(k);
    return rc;
}

int json_next(const struct json_doc *d, int i)
{
    /* Walk forward until the token starts after i's end (tokens are in document order). */
    int end = d->tok[i].end, j = i + 1;
    while (j < d->n_tok && d->tok[j].start < end)
        j++;
    return j;
}

/*
 * jsmn does not check separators: "[1 2]", "[1,,2]", "{,}", "{\"a\"}" and "{\"a\":}" all
 * tokenize (the last two leave a key without a value, which walkers that step over
 * key/value pairs would read past).  Require, inside every container, exactly
 *   '{' ws (key ws ':' ws value ws (',' ws key ws ':' ws value ws)*)? '}'   and
 *   '[' ws (value ws (',' ws value ws)*)? ']'.
 * (Added by the SafeTensors work; see its report.)
 */
static int text_start(const struct json_doc *d, int i)   /* strings: include the quote */
{
    return d->tok[i].start - (d->tok[i].type == JSMN_STRING);
}

static int text_end(const struct json_doc *d, int i)
{
    return d->tok[i].end + (d->tok[i].type == JSMN_STRING);
}

static int skip_ws(const struct json_doc *d, int pos, int end)
{
    while (pos < end && (d->text[pos] == ' ' || d->text[pos] == '\t' || d->text[pos] == '\n' ||
                         d->text[pos] == '\r'))
        pos++;
    return pos;
}

static int check_container(const struct json_doc *d, int c, struct err *e)
{
    int obj = d->tok[c].type == JSMN_OBJECT;
    int pos = d->tok[c].start + 1, close = d->tok[c].end - 1, child = c + 1;

    for (int j = 0; j < d->tok[c].size; j++) {
        pos = skip_ws(d, pos, close);
        if (j > 0) {
            if (pos >= close || d->text[pos] != ',')
                return bad(d, pos, e, "expected ','");
            pos = skip_ws(d, pos + 1, close);
        }
        if (child >= d->n_tok || text_start(d, child) != pos)
            return bad(d, pos, e, obj ? "expected a key" : "expected a value");
        pos = text_end(d, child);
        if (obj) {
            if (d->tok[child].type != JSMN_STRING || d->tok[child].size != 1)
                return bad(d, text_start(d, child), e, "object key without a value");
            pos = skip_ws(d, pos, close);
            if (pos >= close || d->text[pos] != ':')
                return bad(d, pos, e, "expected ':'");
            pos = skip_ws(d, pos + 1, close);
            child++;
            if (child >= d->n_tok || text_start(d, child) != pos)
                return bad(d, pos, e, "expected a value");
            pos = text_end(d, child);
        }
        child = json_next(d, child);
    }
    pos = skip_ws(d, pos, close);
    if (pos != close)
        return bad(d, pos, e, "unexpected character");
    return 0;
}

int json_parse(struct json_doc *d, const char *text, size_t len, uint64_t origin,
               const char *name, struct err *e)
{
    jsmn_parser p;
    int n;

    memset(d, 0, sizeof *d);
    d->text = text;
    d->len = len;
    d->origin = origin;
    d->name = name;
    if (len > (size_t)0x7FFFFFFF)
        return ERR(e, ERR_LIMIT, "%s%sJSON text of %zu bytes is too large", name ? name : "",
                   name ? ": " : "", len);
    for (size_t i = 0; i < len; i++)
        if (text[i] == 0)
            return bad(d, (int)i, e, "NUL byte");
    jsmn_init(&p);
    n = jsmn_parse(&p, text, len, NULL, 0);
    if (n < 0)
        return bad(d, (int)p.pos, e, n == JSMN_ERROR_PART ? "truncated document" : "syntax error");
    if (n == 0)
        return bad(d, 0, e, "empty document");
    d->tok = calloc((size_t)n, sizeof *d->tok);
    if (!d->tok)
        return ERR(e, ERR_NOMEM, "out of memory for %d JSON tokens", n);
    jsmn_init(&p);
    d->n_tok = jsmn_parse(&p, text, len, d->tok, (unsigned)n);
    if (d->n_tok != n) {
        json_release(d);
        return bad(d, 0, e, "syntax error");
    }
    /* One value, then only whitespace. */
    for (size_t i = (size_t)d->tok[0].end + (d->tok[0].type == JSMN_STRING); i < len; i++)
        if (!(text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
            int pos = (int)i;
            json_release(d);
            d->text = text;
            return bad(d, pos, e, "trailing characters after the document");
        }
    if (json_next(d, 0) != d->n_tok) {
        json_release(d);
        return bad(d, 0, e, "more than one value");
    }
    for (int i = 0; i < d->n_tok; i++) {
        int rc = 0;
        if (d->tok[i].type == JSMN_STRING)
            rc = check_string(d, d->tok[i].start, d->tok[i].end, e);
        else if (d->tok[i].type == JSMN_PRIMITIVE)
            rc = check_primitive(d, i, e);
        else if (d->tok[i].type == JSMN_OBJECT)
            rc = check_container(d, i, e) ? -1 : check_dups(d, i, e);
        else if (d->tok[i].type == JSMN_ARRAY)
            rc = check_container(d, i, e);
        /* depth via parent links */
        if (!rc && (d->tok[i].type == JSMN_OBJECT || d->tok[i].type == JSMN_ARRAY)) {
            int depth = 0;
            for (int q = d->tok[i].parent; q >= 0; q = d->tok[q].parent)
                if (++depth > JSON_MAX_DEPTH) {
                    rc = bad(d, d->tok[i].start, e, "nesting too deep");
                    break;
                }
        }
        if (rc) {
            jsmntok_t *t = d->tok;
            d->tok = NULL;
            free(t);
            d->n_tok = 0;
            return -1;
        }
    }
    return 0;
}

void json_release(struct json_doc *d)
{
    free(d->tok);
    d->tok = NULL;
    d->n_tok = 0;
}

int json_is(const struct json_doc *d, int i, jsmntype_t t)
{
    return i >= 0 && i < d->n_tok && d->tok[i].type == t;
}

struct slice json_raw(const struct json_doc *d, int i)
{
    struct slice s = { d->text + d->tok[i].start, (size_t)(d->tok[i].end - d->tok[i].start) };
    return s;
}

int json_get(const struct json_doc *d, int obj, const char *key)
{
    int n, i;
    if (!json_is(d, obj, JSMN_OBJECT))
        return -1;
    n = d->tok[obj].size;
    i = obj + 1;
    for (int j = 0; j < n; j++) {
        if (json_str_eq(d, i, key))
            return i + 1;
        i = json_next(d, i + 1);
    }
    return -1;
}

int json_is_null(const struct json_doc *d, int i)
{
    return json_is(d, i, JSMN_PRIMITIVE) && d->text[d->tok[i].start] == 'n';
}

int json_is_bool(const struct json_doc *d, int i, int *v)
{
    if (!json_is(d, i, JSMN_PRIMITIVE))
        return 0;
    char c = d->text[d->tok[i].start];
    if (c != 't' && c != 'f')
        return 0;
    if (v)
        *v = c == 't';
    return 1;
}

int json_is_int(const struct json_doc *d, int i)
{
    struct slice s;
    if (!json_is(d, i, JSMN_PRIMITIVE))
        return 0;
    s = json_raw(d, i);
    if (!s.n || !(s.p[0] == '-' || (s.p[0] >= '0' && s.p[0] <= '9')))
        return 0;
    for (size_t k = 0; k < s.n; k++)
        if (s.p[k] == '.' || s.p[k] == 'e' || s.p[k] == 'E')
            return 0;
    return 1;
}

static int copy_num(const struct json_doc *d, int i, char *buf, size_t cap, const char *what,
                    struct err *e)
{
    struct slice s;
    if (!json_is(d, i, JSMN_PRIMITIVE) || json_is_null(d, i) || json_is_bool(d, i, NULL))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s%s%s: expected a number",
                       d->name ? d->name : "", d->name ? ": " : "", what);
    s = json_raw(d, i);
    if (s.n >= cap)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s%s%s: number too long",
                       d->name ? d->name : "", d->name ? ": " : "", what);
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    return 0;
}

int json_u64(const struct json_doc *d, int i, uint64_t *v, const char *what, struct err *e)
{
    char buf[64], *end;
    unsigned long long x;
    if (copy_num(d, i, buf, sizeof buf, what, e))
        return -1;
    if (!json_is_int(d, i) || buf[0] == '-')
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s%s%s: expected a non-negative integer, got '%s'",
                       d->name ? d->name : "", d->name ? ": " : "", what, buf);
    errno = 0;
    x = strtoull(buf, &end, 10);
    if (errno || *end)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s%s%s: integer '%s' out of range",
                       d->name ? d->name : "", d->name ? ": " : "", what, buf);
    *v = x;
    return 0;
}

int json_i64(const struct json_doc *d, int i, int64_t *v, const char *what, struct err *e)
{
    char buf[64], *end;
    long long x;
    if (copy_num(d, i, buf, sizeof buf, what, e))
        return -1;
    if (!json_is_int(d, i))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s%s%s: expected an integer, got '%s'",
                       d->name ? d->name : "", d->name ? ": " : "", what, buf);
    errno = 0;
    x = strtoll(buf, &end, 10);
    if (errno || *end)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s%s%s: integer '%s' out of range",
                       d->name ? d->name : "", d->name ? ": " : "", what, buf);
    *v = x;
    return 0;
}

int json_f64(const struct json_doc *d, int i, double *v, const char *what, struct err *e)
{
    char buf[512], *end;
    if (copy_num(d, i, buf, sizeof buf, what, e))
        return -1;
    errno = 0;
    *v = strtod(buf, &end);
    if (*end)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s%s%s: bad number '%s'",
                       d->name ? d->name : "", d->name ? ": " : "", what, buf);
    return 0;   /* overflow gives +-HUGE_VAL, underflow 0: both are what the text means */
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static void put_utf8(struct sbuf *out, uint32_t cp)
{
    char b[4];
    if (cp < 0x80) {
        sbuf_addc(out, (char)cp);
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6); b[1] = (char)(0x80 | (cp & 63));
        sbuf_add(out, b, 2);
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 63));
        b[2] = (char)(0x80 | (cp & 63));
        sbuf_add(out, b, 3);
    } else {
        b[0] = (char)(0xF0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 63));
        b[2] = (char)(0x80 | ((cp >> 6) & 63)); b[3] = (char)(0x80 | (cp & 63));
        sbuf_add(out, b, 4);
    }
}

int json_str(const struct json_doc *d, int i, struct sbuf *out, struct err *e)
{
    const char *s;
    int n;

    if (!json_is(d, i, JSMN_STRING))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s%sexpected a JSON string",
                       d->name ? d->name : "", d->name ? ": " : "");
    s = d->text + d->tok[i].start;
    n = d->tok[i].end - d->tok[i].start;
    for (int k = 0; k < n;) {
        if (s[k] != '\\') {
            int j = k;
            while (j < n && s[j] != '\\')
                j++;
            sbuf_add(out, s + k, (size_t)(j - k));
            k = j;
            continue;
        }
        char c = s[k + 1];
        k += 2;
        switch (c) {
        case 'b': sbuf_addc(out, '\b'); break;
        case 'f': sbuf_addc(out, '\f'); break;
        case 'n': sbuf_addc(out, '\n'); break;
        case 'r': sbuf_addc(out, '\r'); break;
        case 't': sbuf_addc(out, '\t'); break;
        case 'u': {
            uint32_t cp = hex4(s + k);
            k += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && k + 6 <= n && s[k] == '\\' && s[k + 1] == 'u') {
                uint32_t lo = hex4(s + k + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    k += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000)
                cp = 0xFFFD;   /* lone surrogate */
            put_utf8(out, cp);
            break;
        }
        default: sbuf_addc(out, c); break;   /* " \ / */
        }
    }
    return sbuf_check(out, "JSON string", e);
}

int json_str_eq(const struct json_doc *d, int i, const char *str)
{
    struct slice s;
    size_t n = strlen(str);
    if (!json_is(d, i, JSMN_STRING))
        return 0;
    s = json_raw(d, i);
    if (!memchr(s.p, '\\', s.n))
        return s.n == n && memcmp(s.p, str, n) == 0;
    {
        struct sbuf b = SBUF_INIT(s.n + 1);
        struct err e = ERR_INIT;
        int eq = json_str(d, i, &b, &e) == 0 && b.len == n && memcmp(b.p, str, n) == 0;
        sbuf_release(&b);
        return eq;
    }
}

/* ---- writer */

void json_escape(struct sbuf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    sbuf_addc(out, '"');
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            char b[2] = { '\\', (char)c };
            sbuf_add(out, b, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            switch (c) {
            case '\n': sbuf_add(out, "\\n", 2); break;
            case '\t': sbuf_add(out, "\\t", 2); break;
            case '\r': sbuf_add(out, "\\r", 2); break;
            default: sbuf_addf(out, "\\u%04x", c); break;
            }
            i++;
        } else if (c < 0x80) {
            size_t j = i;
            while (j < n && s[j] >= 0x20 && s[j] < 0x7F && s[j] != '"' && s[j] != '\\')
                j++;
            sbuf_add(out, s + i, j - i);
            i = j;
        } else {
            /* Copy a valid UTF-8 sequence; escape C1 controls (terminals may obey them)
             * as their code point, and an invalid byte as the code point of its value. */
            uint32_t cp;
            int len = utf8_decode(s + i, n - i, &cp);
            if (len && !utf8_is_c1(cp)) {
                sbuf_add(out, s + i, (size_t)len);
                i += (size_t)len;
            } else if (len) {
                sbuf_addf(out, "\\u%04x", cp);
                i += (size_t)len;
            } else {
                sbuf_addf(out, "\\u%04x", c);
                i++;
            }
        }
    }
    sbuf_addc(out, '"');
}

void json_w_init(struct json_w *w, struct sbuf *out, int pretty)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = pretty;
    w->first[0] = 1;
}

static void indent(struct json_w *w)
{
    sbuf_addc(w->out, '\n');
    for (int i = 0; i < w->depth; i++)
        sbuf_add(w->out, "  ", 2);
}

/* Before a value (or a key): comma and indentation as needed. */
static void pre(struct json_w *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > 0) {
        if (!w->first[w->depth])
            sbuf_addc(w->out, ',');
        if (w->pretty)
            indent(w);
    }
    w->first[w->depth] = 0;
}

static void open_(struct json_w *w, char c)
{
    pre(w);
    sbuf_addc(w->out, c);
    if (w->depth < (int)sizeof w->first - 1)
        w->depth++;
    w->first[w->depth] = 1;
}

static void close_(struct json_w *w, char c)
{
    int empty = w->first[w->depth];
    if (w->depth > 0)
        w->depth--;
    if (w->pretty && !empty)
        indent(w);
    sbuf_addc(w->out, c);
    if (w->depth == 0 && w->pretty)
        sbuf_addc(w->out, '\n');
}

void json_w_obj(struct json_w *w)     { open_(w, '{'); }
void json_w_obj_end(struct json_w *w) { close_(w, '}'); }
void json_w_arr(struct json_w *w)     { open_(w, '['); }
void json_w_arr_end(struct json_w *w) { close_(w, ']'); }

void json_w_key_n(struct json_w *w, const char *k, size_t n)
{
    pre(w);
    json_escape(w->out, k, n);
    sbuf_add(w->out, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
    w->after_key = 1;
}

void json_w_key(struct json_w *w, const char *k) { json_w_key_n(w, k, strlen(k)); }

void json_w_str_n(struct json_w *w, const char *s, size_t n)
{
    pre(w);
    json_escape(w->out, s, n);
}

void json_w_str(struct json_w *w, const char *s) { json_w_str_n(w, s, strlen(s)); }
void json_w_u64(struct json_w *w, uint64_t v) { pre(w); sbuf_addf(w->out, "%llu", (unsigned long long)v); }
void json_w_i64(struct json_w *w, int64_t v)  { pre(w); sbuf_addf(w->out, "%lld", (long long)v); }
void json_w_bool(struct json_w *w, int v)     { pre(w); sbuf_adds(w->out, v ? "true" : "false"); }
void json_w_null(struct json_w *w)            { pre(w); sbuf_adds(w->out, "null"); }

void json_w_raw(struct json_w *w, const char *s, size_t n)
{
    pre(w);
    sbuf_add(w->out, s, n);
}

/* Shortest round-trip text at precision prec, written like Python's repr: plain digits for
 * 1e-4 <= |v| < 1e16 ("10000.0", "0.001"), exponent otherwise ("1e-05"). */
static void fix_notation(char *buf, size_t cap, int prec, double v)
{
    if (strchr(buf, 'e') && v != 0) {
        int ex = (int)floor(log10(fabs(v)));
        if (ex >= -4 && ex < 16) {
            int dec = prec - 1 - ex;
            snprintf(buf, cap, "%.*f", dec > 0 ? dec : 0, v);
        }
    }
}

/* Make the text recognisably a float: "1" becomes "1.0". */
static void put_num(struct json_w *w, const char *buf)
{
    pre(w);
    sbuf_adds(w->out, buf);
    if (!strpbrk(buf, ".eEn"))
        sbuf_adds(w->out, ".0");
}

int json_fmt_num(char *buf, size_t cap, double v, int is_f32)
{
    if (isnan(v)) {
        snprintf(buf, cap, "nan");
        return -1;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v < 0 ? "-inf" : "inf");
        return -1;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (is_f32 ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) {
            fix_notation(buf, cap, prec, v);
            break;
        }
    }
    return 0;
}

void json_w_f64(struct json_w *w, double v)
{
    char buf[48];
    if (json_fmt_num(buf, sizeof buf, v, 0)) {
        json_w_null(w);
        return;
    }
    put_num(w, buf);
}

void json_w_f32(struct json_w *w, float v)
{
    char buf[48];
    if (json_fmt_num(buf, sizeof buf, (double)v, 1)) {
        json_w_null(w);
        return;
    }
    put_num(w, buf);
}
