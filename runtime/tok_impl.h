/*
 * tok_impl.h - the tokenizer's internals, shared by runtime/tok_*.c only.
 *
 *   tok_load.c     metadata -> vocabulary, string table, merge table, special ids
 *   tok_pre.c      byte-level pre-tokenizers (regex lists through PCRE2)
 *   tok_encode.c   special-token partition, SentencePiece and BPE merges
 *   tok_decode.c   pieces, llama_detokenize's clean-up, the streaming decoder
 *   tok_chat.c     chat templates recognised by content
 */
#ifndef TOK_IMPL_H
#define TOK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* ---- a string table: id -> bytes, bytes -> id (open addressing) */

struct tok_strtab {
    char     *blob;       /* all strings, NUL after each */
    size_t    blob_len, blob_cap;
    uint64_t *off;        /* [n] start in blob */
    uint32_t *len;        /* [n] */
    uint32_t  n, cap;
    int32_t  *slot;       /* [mask + 1]: id or -1 */
    size_t    mask;
};

uint64_t tok_hash(const void *p, size_t n);
int      tok_strtab_add(struct tok_strtab *s, const char *p, size_t n, int last_wins,
                        int32_t *id, struct err *e);
int32_t  tok_strtab_find(const struct tok_strtab *s, const char *p, size_t n);
void     tok_strtab_free(struct tok_strtab *s);

static inline const char *tok_str(const struct tok_strtab *s, int32_t id, size_t *n)
{
    *n = s->len[id];
    return s->blob + s->off[id];
}

/* ---- BPE merges: (left symbol, right symbol) -> (rank, result symbol) */

struct tok_merge {
    uint64_t key;         /* left << 32 | right; UINT64_MAX = empty */
    int32_t  rank;
    int32_t  result;
};

/* ---- the pre-tokenizer: a list of regexes, each splitting every piece further
 * (Hugging Face's Split with behavior Isolated) */

#define TOK_MAX_REGEX 8

struct tok_pre {
    int   n;
    void *re[TOK_MAX_REGEX];   /* pcre2_code * */
};

enum { TOK_NFC = 1, TOK_NFKC, TOK_NFD, TOK_NFKD };

enum tok_attr {
    TA_NORMAL = 1, TA_UNKNOWN = 2, TA_CONTROL = 4, TA_USER = 8, TA_UNUSED = 16, TA_BYTE = 32,
    TA_UNDEFINED = 64, TA_LSTRIP = 128, TA_RSTRIP = 256,
};

struct tokenizer {
    enum tok_kind kind;
    char      pre_name[64];
    uint32_t  n_vocab;
    struct tok_strtab st;     /* ids < n_vocab: the tokens; then merge-only strings */
    float    *score;          /* [n_vocab] */
    uint16_t *attr;           /* [n_vocab] TA_* */
    uint8_t  *type;           /* [n_vocab] enum tok_type as stored */

    /* special tokens, longest text first (llama.cpp's cache_special_tokens) */
    int32_t  *special;
    uint32_t  n_special;

    int32_t   bos, eos, eot, eom, unk, pad;
    int32_t  *eog;
    uint32_t  n_eog;
    int       add_bos, add_eos, add_space_prefix, clean_spaces, ignore_merges;
    int       spm_split;      /* no token holds "▁" after another character */

    /* SPM: byte b -> token (<0xNN>, else the one-byte token), -1 when none */
    int32_t   byte_tok[256];

    /* BPE */
    struct tok_merge *merge;
    size_t    merge_mask;
    int32_t   byte_sym[256];  /* byte b -> symbol of its byte-level code point, -1 none */
    char      byte_enc[256][3];   /* UTF-8 of the code point byte b maps to */
    uint8_t   byte_enc_len[256];
    struct tok_pre pre;
    int       normalize;      /* TOK_NFC...: a tokenizer.json normalizer, else 0 */

    /* pieces for printing (special rendering), one blob */
    char     *piece_blob;
    uint64_t *piece_off;      /* [n_vocab + 1] */

    char     *chat_template;  /* owned copy or NULL */
};

int  tok__pre_init(struct tokenizer *t, const char *pre, const char *hf_json, size_t hf_len,
                   struct err *e);
void tok__pre_free(struct tok_pre *p);
/* Split text[0, n) (valid UTF-8) into pieces: ranges (start, end) pairs appended to
 * *r (grown with realloc; *nr pairs).  -1 with e on allocation failure. */
int  tok__pre_split(const struct tok_pre *p, const char *text, size_t n, size_t **r,
                    size_t *nr, size_t *cap, struct err *e);

int  tok__pieces_build(struct tokenizer *t, struct err *e);

static inline int32_t tok__merge_find(const struct tokenizer *t, int32_t l, int32_t r,
                                      int32_t *result)
{
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & t->merge_mask;

    if (!t->merge)
        return -1;
    for (;;) {
        const struct tok_merge *m = &t->merge[i];
        if (m->key == key) {
            *result = m->result;
            return m->rank;
        }
        if (m->key == UINT64_MAX)
            return -1;
        i = (i + 1) & t->merge_mask;
    }
}

#endif
