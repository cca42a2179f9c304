/*
 * fuzz_tokenize.c - libFuzzer harness for the tokenizer (runtime/tokenizer.h): random
 * bytes, invalid UTF-8 included, through encode, decode, the streaming decoder and the
 * chat formatter.
 *
 * The first input byte picks the vocabulary and the flags: the demo SentencePiece
 * vocabulary (tests/fixtures/gguf_fix.h) or a byte-level BPE vocabulary built here with
 * one of several pre-tokenizers (gpt-2, llama-bpe, qwen2, deepseek-coder, default,
 * starcoder); the rest is the text.  Checked on every input: ids are inside the
 * vocabulary; with no special parsing, valid UTF-8 comes back from decode byte for byte
 * (byte-level: a bad byte is read as U+FFFD; SentencePiece: a bad byte next to a space
 * takes bytes of its "▁", and a literal "▁" decodes as a space, both as in llama.cpp);
 * the streaming decoder emits the same bytes as tok_decode.
 * Nothing is kept between inputs but the tokenizers, so memory cannot grow.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../fixtures/gguf_fix.h"
#include "../../common/utf8.h"
#include "../../runtime/tokenizer.h"
#include "../../common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const pres[] = { "gpt-2", "llama-bpe", "qwen2", "deepseek-coder", "default",
                                    "starcoder" };
#define N_TOK 7
static struct tokenizer *toks[N_TOK];

static void byte_tok(int b, char *o)
{
    int cp = b, n = 0;
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
        for (int c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)))
                n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        o[0] = (char)cp;
        o[1] = 0;
    } else {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        o[2] = 0;
    }
}

static struct tokenizer *bpe(const char *pre)
{
    static char bytes[256][4];
    static const char *const extra[] = { "he", "ll", "hell", "hello", "\xc4\xa0t", "\xc4\xa0th",
        "\xc4\xa0the", "in", "ing", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>" };
    static const char *const merges[] = { "h e", "l l", "he ll", "hell o", "\xc4\xa0 t",
        "\xc4\xa0t h", "\xc4\xa0th e", "i n", "in g" };
    const char *names[256 + 13];
    int32_t types[256 + 13];
    struct model m;
    struct err e = ERR_INIT;
    struct tokenizer *t = NULL;

    for (int b = 0; b < 256; b++) {
        byte_tok(b, bytes[b]);
        names[b] = bytes[b];
        types[b] = 1;
    }
    for (int i = 0; i < 13; i++) {
        names[256 + i] = extra[i];
        types[256 + i] = i >= 9 ? (i == 12 ? 4 : 3) : 1;
    }
    fx_init(&m, "fuzz.gguf", &e);
    fx_str(&m, "tokenizer.ggml.model", "gpt2", &e);
    fx_str(&m, "tokenizer.ggml.pre", pre, &e);
    fx_arr_strs(&m, "tokenizer.ggml.tokens", 269, names, &e);
    fx_arr_raw(&m, "tokenizer.ggml.token_type", MV_I32, 269, types, &e);
    fx_arr_strs(&m, "tokenizer.ggml.merges", 9, merges, &e);
    fx_uint(&m, "tokenizer.ggml.bos_token_id", MV_U32, 265, &e);
    fx_uint(&m, "tokenizer.ggml.eos_token_id", MV_U32, 267, &e);
    fx_str(&m, "tokenizer.chat_template", "<|im_start|>", &e);
    if (!err_ok(&e) || tok_load(&m, &t, &e))
        abort();
    model_close(&m);
    return t;
}

static void init(void)
{
    struct model m;
    struct err e = ERR_INIT;

    if (toks[0])
        return;
    if (fx_demo(&m, &e) == 0)
        fx_str(&m, "tokenizer.chat_template", "<|start_header_id|><|end_header_id|>", &e);
    if (!err_ok(&e) || tok_load(&m, &toks[0], &e))
        abort();
    model_close(&m);
    for (int i = 1; i < N_TOK; i++)
        toks[i] = bpe(pres[i - 1]);
}

static int valid_utf8(const uint8_t *p, size_t n)
{
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        int k;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        k = utf8_decode(p + i, n - i, &cp);
        if (!k)
            return 0;
        i += (size_t)k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e = ERR_INIT;
    const struct tokenizer *t;
    const char *text = (const char *)data + 1;
    size_t len, n = 0, dl = 0;
    unsigned flags;
    int32_t *ids = NULL;
    char *out = NULL, *chat = NULL;
    struct tok_stream st;

    if (size == 0)
        return 0;
    init();
    t = toks[data[0] % N_TOK];
    flags = (data[0] / N_TOK) & 3;   /* TOK_ADD_SPECIAL, TOK_PARSE_SPECIAL */
    len = size - 1;
    if (tok_encode(t, text, len, flags, &ids, &n, &e))
        abort();   /* every vocabulary here can spell every byte */
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= tok_n_vocab(t))
            abort();
    if (tok_decode(t, ids, n, TOK_DECODE_RAW, &out, &dl, &e))
        abort();
    if (flags == 0 && tok_kind(t) == TOK_BPE && valid_utf8(data + 1, len) &&
        (dl != len || memcmp(out, text, len) != 0))
        abort();
    free(out);
    if (tok_decode(t, ids, n, 0, &out, &dl, &e))
        abort();
    if (flags == 0 && tok_kind(t) == TOK_SPM && valid_utf8(data + 1, len) &&
        !memmem(text, len, "\xe2\x96\x81", 3) && (dl != len || memcmp(out, text, len) != 0))
        abort();
    /* the stream gives the same bytes as tok_decode (no clean-up pass: SentencePiece,
     * or byte-level with TOK_DECODE_RAW) */
    {
        unsigned sf = tok_kind(t) == TOK_SPM ? 0 : TOK_DECODE_RAW;
        size_t got = 0;
        char *ref;
        size_t rl;
        if (tok_decode(t, ids, n, sf, &ref, &rl, &e))
            abort();
        tok_stream_init(&st, t, sf);
        for (size_t i = 0; i < n; i++) {
            const char *p;
            size_t pl;
            if (tok_stream_push(&st, ids[i], &p, &pl, &e) || got + pl > rl ||
                memcmp(ref + got, p, pl) != 0)
                abort();
            got += pl;
        }
        {
            const char *p;
            size_t pl;
            tok_stream_flush(&st, &p, &pl);
            if (got + pl != rl || memcmp(ref + got, p, pl) != 0)
                abort();
        }
        tok_stream_release(&st);
        free(ref);
    }
    free(out);
    free(ids);
    /* the input as a chat message: the prompt must encode too */
    {
        char *msg = malloc(len + 1);
        if (!msg)
            return 0;
        memcpy(msg, text, len);
        msg[len] = 0;
        if (tok_chat_format(t, (data[0] & 1) ? msg : NULL, msg, &chat, &e) == 0) {
            if (tok_encode(t, chat, strlen(chat), TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, &ids, &n, &e))
                abort();
            free(ids);
            free(chat);
        }
        free(msg);
    }
    return 0;
}
