/*
 * tok_cli.c - the tokenizer side of apr-run: --tokenize, --detokenize, -p TEXT with
 * --chat/--system, and printing generated text (see tokenizer.h, tok_cli_*).
 */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "../common/sbuf.h"
#include "../common/banned.h"

int tok_cli_open(const char *path, struct tokenizer **t, struct err *e)
{
    struct model m;
    int rc;

    *t = NULL;
    if (model_open_ex(&m, path, MODEL_OPEN_HEADER_ONLY, e))
        return -1;
    rc = tok_load(&m, t, e);
    model_close(&m);
    return rc;
}

int tok_cli_prompt(const struct tokenizer *t, const char *text, const char *system, int chat,
                   int32_t **ids, size_t *n, struct err *e)
{
    char *formatted = NULL;
    int rc;

    if (chat && tok_chat_format(t, system, text, &formatted, e))
        return -1;
    /* as llama.cpp's tools: BOS per the model, special tokens in the prompt parsed */
    rc = tok_encode(t, chat ? formatted : text, strlen(chat ? formatted : text),
                    TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, ids, n, e);
    free(formatted);
    return rc;
}

int tok_cli_print_ids(const struct tokenizer *t, const int32_t *ids, size_t n, int json,
                      FILE *out)
{
    if (!json) {
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%s%d", i ? " " : "", (int)ids[i]);
        fputc('\n', out);
    } else {
        struct sbuf b = SBUF_INIT((size_t)1 << 32);
        struct json_w w;
        json_w_init(&w, &b, 0);
        json_w_obj(&w);
        json_w_key(&w, "tokens");
        json_w_arr(&w);
        for (size_t i = 0; i < n; i++) {
            size_t pl;
            const char *p = tok_piece(t, ids[i], TOK_DECODE_SPECIAL, &pl);
            json_w_obj(&w);
            json_w_key(&w, "id");
            json_w_i64(&w, ids[i]);
            json_w_key(&w, "piece");
            json_w_str_n(&w, p, pl);   /* an incomplete UTF-8 piece is escaped as bytes */
            json_w_obj_end(&w);
        }
        json_w_arr_end(&w);
        json_w_obj_end(&w);
        sbuf_addc(&b, '\n');
        if (b.p)
            fwrite(b.p, 1, b.len, out);
        sbuf_release(&b);
    }
    return ferror(out) ? -1 : 0;
}

int tok_cli_print_text(const struct tokenizer *t, const int32_t *ids, size_t n, FILE *out,
                       struct err *e)
{
    char *s;
    size_t len;

    if (tok_decode(t, ids, n, 0, &s, &len, e))
        return -1;
    fwrite(s, 1, len, out);
    fputc('\n', out);
    free(s);
    return ferror(out) ? ERR(e, ERR_IO, "cannot write the text") : 0;
}
