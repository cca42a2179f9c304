/*
 * fuzz_tok.c - libFuzzer harness for the tokenizer.json reader (st_tokenizer_read_mem,
 * the code st_open runs on a directory's tokenizer.json, without the side files).
 *
 * Each input is the text of tokenizer.json, read into a fresh model.  A failure must
 * say why; after a success every key, every string value and every string of an
 * array is read, so a slice that points outside the model's arena or the input shows
 * up under ASan, and every token_type array must be as long as the token array.
 *
 *   seeds: tests/fuzz/corpus/tok/ (byte-level BPE with "a b" merges, with ["a", "b"]
 *   pair merges, with added special tokens, SentencePiece-style byte_fallback)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../formats/model.h"
#include "../../formats/safetensors/st.h"
#include "../../common/banned.h"

static volatile uint32_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t sum(struct slice s)
{
    uint32_t h = 0;

    for (size_t k = 0; k < s.n; k++)
        h += (uint8_t)s.p[k];
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct model m;
    struct err e = ERR_INIT;
    const struct model_kv *toks, *types;
    uint32_t h = 0;

    if (model__init(&m, MODEL_FMT_SAFETENSORS, "fuzz", &e) != 0)
        abort();
    if (st_tokenizer_read_mem(&m, (const char *)data, size, "tokenizer.json", &e) != 0) {
        if (e.code == ERR_OK || !e.msg[0])
            abort();   /* a failure must say why */
        model_close(&m);
        return 0;
    }
    for (uint64_t i = 0; i < m.n_kv; i++) {
        const struct model_kv *kv = &m.kv[i];
        h += sum(kv->key);
        if (kv->val.type == MV_STR)
            h += sum(kv->val.v.s);
        if (kv->val.type == MV_ARR && kv->val.v.arr.strs)
            for (uint64_t k = 0; k < kv->val.v.arr.n; k++)
                h += sum(kv->val.v.arr.strs[k]);
        if (kv->val.type == MV_ARR && kv->val.v.arr.raw && kv->val.v.arr.n)
            h += kv->val.v.arr.raw[kv->val.v.arr.n * model_vtype_size(kv->val.v.arr.elem) - 1];
    }
    toks = model_kv_find(&m, "tokenizer.ggml.tokens");
    types = model_kv_find(&m, "tokenizer.ggml.token_type");
    if ((toks == NULL) != (types == NULL) ||
        (toks && toks->val.v.arr.n != types->val.v.arr.n))
        abort();   /* one type per token */
    sink = h;
    model_close(&m);
    return 0;
}
