/*
 * json.h - JSON reading on jsmn (libjsmn-dev) and an escaping JSON writer.
 *
 * Reading: json_parse() tokenizes a whole document (jsmn strict mode) into a
 * token array it allocates (at most one token per byte: bounded by the input),
 * then checks what jsmn leaves unchecked: literals (true/false/null), number
 * syntax, string escapes and UTF-8, trailing garbage, and duplicate object keys.
 * After a successful parse the document is well-formed and tokens can be walked
 * freely.  Offsets in messages are byte offsets into the text plus d->origin.
 *
 * Writing: struct json_w appends compact (or pretty) JSON to an sbuf; strings are
 * escaped so that control bytes and invalid UTF-8 from a hostile file can never
 * reach a terminal or break the document (invalid bytes become \u00XX).
 */
#ifndef JSON_H
#define JSON_H

#include <stdint.h>
#include <stddef.h>

#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#define JSMN_HEADER
#include <jsmn.h>

#include "err.h"
#include "sbuf.h"
#include "slice.h"

struct json_doc {
    const char *text;    /* borrowed */
    size_t      len;
    jsmntok_t  *tok;     /* owned */
    int         n_tok;
    uint64_t    origin;  /* file offset of text[0], for messages */
    const char *name;    /* file name for messages */
};

int  json_parse(struct json_doc *d, const char *text, size_t len, uint64_t origin,
                const char *name, struct err *e);
void json_release(struct json_doc *d);

/* Index of the token after the subtree rooted at i. */
int  json_next(const struct json_doc *d, int i);
/* Value token of key in object obj, or -1. */
int  json_get(const struct json_doc *d, int obj, const char *key);
int  json_is(const struct json_doc *d, int i, jsmntype_t t);
/* Raw token text (for strings: without quotes, still escaped). */
struct slice json_raw(const struct json_doc *d, int i);
int  json_is_null(const struct json_doc *d, int i);
int  json_is_bool(const struct json_doc *d, int i, int *v);
/* 1 when the primitive is an integer literal (no '.', 'e'). */
int  json_is_int(const struct json_doc *d, int i);
/* Exact integer parses: -1 with e set on overflow / not an integer. */
int  json_u64(const struct json_doc *d, int i, uint64_t *v, const char *what, struct err *e);
int  json_i64(const struct json_doc *d, int i, int64_t *v, const char *what, struct err *e);
int  json_f64(const struct json_doc *d, int i, double *v, const char *what, struct err *e);
/* Unescape a string token into out (appended); -1 on error. */
int  json_str(const struct json_doc *d, int i, struct sbuf *out, struct err *e);
/* Compare a string token with a C string (after unescaping). */
int  json_str_eq(const struct json_doc *d, int i, const char *s);
/* File offset of token i (for messages). */
uint64_t json_off(const struct json_doc *d, int i);

/* ---- writer */

/* The writer nests as deep as the reader accepts (json_parse refuses deeper input). */
#define JSON_W_MAX_DEPTH 260

struct json_w {
    struct sbuf *out;
    int          pretty;    /* 2-space indentation, newline after each item */
    int          depth;
    uint8_t      first[JSON_W_MAX_DEPTH + 1]; /* per depth: no item written yet */
    int          after_key;
};

void json_w_init(struct json_w *w, struct sbuf *out, int pretty);
void json_w_obj(struct json_w *w);       /* { */
void json_w_obj_end(struct json_w *w);   /* } */
void json_w_arr(struct json_w *w);       /* [ */
void json_w_arr_end(struct json_w *w);   /* ] */
void json_w_key(struct json_w *w, const char *k);
void json_w_key_n(struct json_w *w, const char *k, size_t n);
void json_w_str(struct json_w *w, const char *s);
void json_w_str_n(struct json_w *w, const char *s, size_t n);
void json_w_u64(struct json_w *w, uint64_t v);
void json_w_i64(struct json_w *w, int64_t v);
/* Shortest decimal that round-trips the double (NaN/Inf written as null). */
void json_w_f64(struct json_w *w, double v);
/* Shortest decimal that round-trips as a float (for F32 values). */
void json_w_f32(struct json_w *w, float v);
void json_w_bool(struct json_w *w, int v);
/* The shortest decimal text that round-trips v (as a float when is_f32), written like
 * Python's repr: plain digits for 1e-4 <= |v| < 1e16, an exponent otherwise.
 * "nan"/"inf"/"-inf" (returning -1) for non-finite values; else 0. */
int  json_fmt_num(char *buf, size_t cap, double v, int is_f32);
void json_w_null(struct json_w *w);
/* Append raw, already valid JSON text as one value. */
void json_w_raw(struct json_w *w, const char *s, size_t n);

/* Escape s into out as a JSON string literal with quotes. */
void json_escape(struct sbuf *out, const char *s, size_t n);

#endif
