/*
 * tokenizer.h - text <-> token ids, exactly as llama.cpp does it, for any model view.
 *
 * Built from canonical metadata (tokenizer.ggml.* keys; an APR file's tokenizer.* and a
 * Hugging Face tokenizer.json reach the same keys through the format readers):
 *
 *   tokenizer.ggml.model "llama"  SentencePiece: scores, byte fallback (<0xNN>), "▁" for
 *                                 spaces, a space prefix (tokenizer.ggml.add_space_prefix,
 *                                 default on); merges by a priority queue over a linked
 *                                 list of symbols, highest score first
 *   tokenizer.ggml.model "gpt2"   byte-level BPE: pre-tokenizer regexes chosen by
 *                                 tokenizer.ggml.pre (or the tokenizer.json Split
 *                                 regexes), bytes mapped to printable code points,
 *                                 merges by rank (tokenizer.ggml.merges) from a hash table
 *
 * Special tokens (CONTROL, USER_DEFINED, UNKNOWN types) are cut out of the text first:
 * USER_DEFINED always, CONTROL/UNKNOWN only with TOK_PARSE_SPECIAL, longest first, as
 * llama.cpp does.  TOK_ADD_SPECIAL adds BOS/EOS as tokenizer.ggml.add_bos_token /
 * add_eos_token say (llama.cpp's defaults per model when absent).
 *
 * Regexes go through PCRE2 with Unicode properties (tok_pre.c says why not Oniguruma);
 * text that is not valid UTF-8 is read as llama.cpp reads it (each bad byte becomes U+FFFD before the
 * byte-level pre-tokenizer; SentencePiece sees the raw bytes and falls back to byte
 * tokens).  A tokenizer is immutable after tok_load and may be shared between threads.
 */
#ifndef TOKENIZER_H
#define TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"
#include "../formats/model.h"

struct tokenizer;

enum tok_kind { TOK_SPM = 1, TOK_BPE = 2 };

/* GGUF token types (tokenizer.ggml.token_type). */
enum tok_type {
    TOK_T_UNDEFINED = 0, TOK_T_NORMAL = 1, TOK_T_UNKNOWN = 2, TOK_T_CONTROL = 3,
    TOK_T_USER_DEFINED = 4, TOK_T_UNUSED = 5, TOK_T_BYTE = 6,
};

/*
 * Build the tokenizer of model m (any format).  ERR_FORMAT names the key that is
 * missing or malformed; ERR_UNSUPPORTED names an unknown tokenizer.ggml.model or
 * tokenizer.ggml.pre ("unknown pre-tokenizer 'x'"), never a silent fallback.
 */
int  tok_load(const struct model *m, struct tokenizer **t, struct err *e);
void tok_free(struct tokenizer *t);

enum {
    TOK_ADD_SPECIAL   = 1,   /* BOS/EOS per the model's flags */
    TOK_PARSE_SPECIAL = 2,   /* "<|im_start|>" in the text is the control token */
};

/* text[0, len) -> *ids (malloc'd, *n of them; free() it). */
int  tok_encode(const struct tokenizer *t, const char *text, size_t len, unsigned flags,
                int32_t **ids, size_t *n, struct err *e);

enum {
    TOK_DECODE_SPECIAL = 1,  /* render CONTROL/UNKNOWN tokens ("<s>"); else they are empty */
    TOK_DECODE_RAW     = 2,  /* keep the SentencePiece leading space and skip llama.cpp's
                                clean-up of " ," " 's" (byte-level vocabularies) */
};

/* The text of one token as it is printed (byte token <0x0A> -> "\n", "▁" -> " ",
 * byte-level code points -> bytes); may be an incomplete UTF-8 sequence.  Empty for
 * ids out of range, and for CONTROL/UNKNOWN without TOK_DECODE_SPECIAL. */
const char *tok_piece(const struct tokenizer *t, int32_t id, unsigned flags, size_t *len);
/* The token's text as the vocabulary stores it ("▁Hello", "Ġworld", "<0x0A>"). */
const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len);

/* ids -> text as llama.cpp's llama_detokenize (*out malloc'd, NUL-terminated). */
int  tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                char **out, size_t *len, struct err *e);

/*
 * Streaming detokenizer for generated text: pieces are appended and only complete
 * UTF-8 sequences come out; an incomplete one is held until the next token completes
 * it (or tok_stream_flush gives it out as is).  The first piece loses the
 * SentencePiece space prefix unless TOK_DECODE_RAW.
 */
struct tok_stream {
    const struct tokenizer *t;
    unsigned flags;
    int      first;
    size_t   n_held;
    char     held[8];
    char     buf[256];   /* tok_stream_push's output when it fits; else heap (freed next call) */
    char    *big;
};
void tok_stream_init(struct tok_stream *s, const struct tokenizer *t, unsigned flags);
/* The text ready after token id: *out valid until the next call. */
int  tok_stream_push(struct tok_stream *s, int32_t id, const char **out, size_t *len,
                     struct err *e);
void tok_stream_flush(struct tok_stream *s, const char **out, size_t *len);
void tok_stream_release(struct tok_stream *s);

/*
 * One chat turn (optional system message, one user message, and the opening of the
 * assistant's reply) in the model's template, recognised by the content of
 * tokenizer.chat_template as llama.cpp's built-in detection does, and formatted as its
 * llama_chat_apply_template does, for each of its 33 built-in templates (ChatML/Qwen,
 * Llama 2 [INST], Llama 3, Mistral v1/v3/v7, Phi-3/4, Gemma, DeepSeek, ChatGLM, ...).
 * No Jinja engine: an unrecognised template is ERR_UNSUPPORTED saying so; a model
 * without a template is ERR_FORMAT.  *out is malloc'd text to be encoded with
 * TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL.
 */
int  tok_chat_format(const struct tokenizer *t, const char *system, const char *user,
                     char **out, struct err *e);
/* The name of the recognised template ("chatml", "llama3", ...) or NULL with e set. */
const char *tok_chat_template_name(const struct tokenizer *t, struct err *e);

enum tok_kind tok_kind(const struct tokenizer *t);
const char *tok_pre_name(const struct tokenizer *t);   /* "gpt-2", "llama-bpe", "" (SPM) */
size_t  tok_n_vocab(const struct tokenizer *t);
int     tok_type(const struct tokenizer *t, int32_t id);   /* enum tok_type, -1 out of range */
int32_t tok_bos(const struct tokenizer *t);   /* -1 when none */
int32_t tok_eos(const struct tokenizer *t);
int     tok_add_bos(const struct tokenizer *t);
int     tok_add_eos(const struct tokenizer *t);
/* End of generation: EOS, EOT, EOM and the "<|im_end|>"-like tokens llama.cpp lists. */
int     tok_is_eog(const struct tokenizer *t, int32_t id);

/* ---- for apr-run (tok_cli.c) */

/* The tokenizer of the model at path (opened header-only). */
int  tok_cli_open(const char *path, struct tokenizer **t, struct err *e);
/* -p TEXT (with chat: in the chat template, with system) -> ids with BOS per the model
 * and special tokens parsed, as llama.cpp's tools do. */
int  tok_cli_prompt(const struct tokenizer *t, const char *text, const char *system, int chat,
                    int32_t **ids, size_t *n, struct err *e);
/* ids on one line ("1 15043 3186"), or with json {"tokens":[{"id":1,"piece":"<s>"},...]} */
int  tok_cli_print_ids(const struct tokenizer *t, const int32_t *ids, size_t n, int json,
                       FILE *out);
/* tok_decode(ids) and a newline */
int  tok_cli_print_text(const struct tokenizer *t, const int32_t *ids, size_t n, FILE *out,
                        struct err *e);

#endif
