/*
 * bench_quant_mk.c - writes the F32 model of the quantization bench: a llama-shaped
 * GGUF that llama-quantize accepts (architecture, sizes, RMS eps, head counts), with
 * pseudo-random weights (about N(0, 0.02^2): a sum of four uniforms; norms 1.0).
 *
 *   bench_quant_mk OUT.gguf N_LAYER EMBD FF VOCAB
 *
 * (the bench uses 4 2048 5632 16384: 247 M parameters, 0.99 GB of F32).  Streamed
 * tensor by tensor through gguf_write's tensor_data callback, never the whole model
 * in memory.  Deterministic.  Exit status: 0 ok, 1 failure, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cli.h"
#include "../../formats/gguf/gguf.h"
#include "../fixtures/gguf_fix.h"
#include "../../common/banned.h"

static int gen(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out, struct err *e)
{
    static float buf[1 << 16];
    uint32_t *s = ctx;
    const struct model_tensor *t = &m->tensors[i];
    int64_t left = t->n_elems;
    int norm = t->n_dims == 1;

    while (left > 0) {
        int64_t k = left > (int64_t)(sizeof buf / sizeof buf[0]) ? (int64_t)(sizeof buf / 4) : left;
        for (int64_t j = 0; j < k; j++) {
            if (norm) {
                buf[j] = 1.0f;
                continue;
            }
            float v = 0;
            for (int r = 0; r < 4; r++)
                v += fx_uniform(s);
            buf[j] = v * 0.02f;
        }
        if (gguf_out_write(out, buf, (size_t)k * sizeof(float), e))
            return -1;
        left -= k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const mats[] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                        "ffn_gate", "ffn_up", "ffn_down" };
    struct model m;
    struct err e = ERR_INIT;
    struct gguf_write_opts o = GGUF_WRITE_OPTS_INIT;
    uint64_t nl, embd, ff, vocab, n, k = 0;
    uint32_t seed = 0x1234567u;
    char (*names)[64];
    int rc;

    cli_init(argv[0]);
    if (argc != 6 || cli_parse_u64(argv[2], 1, 1000, &nl) ||
        cli_parse_u64(argv[3], 256, 1 << 16, &embd) || cli_parse_u64(argv[4], 256, 1 << 18, &ff) ||
        cli_parse_u64(argv[5], 256, 1 << 20, &vocab) || embd % 256 || ff % 256) {
        fputs("usage: bench_quant_mk OUT.gguf N_LAYER EMBD FF VOCAB (EMBD, FF: multiples of 256)\n",
              stderr);
        return 2;
    }
    if (fx_init(&m, argv[1], &e) == 0) {
        fx_str(&m, "general.architecture", "llama", &e);
        fx_str(&m, "general.name", "apr-tools quantization bench", &e);
        fx_uint(&m, "llama.block_count", MV_U32, nl, &e);
        fx_uint(&m, "llama.context_length", MV_U32, 4096, &e);
        fx_uint(&m, "llama.embedding_length", MV_U32, embd, &e);
        fx_uint(&m, "llama.feed_forward_length", MV_U32, ff, &e);
        fx_uint(&m, "llama.attention.head_count", MV_U32, embd / 64, &e);
        fx_uint(&m, "llama.attention.head_count_kv", MV_U32, embd / 256, &e);
        fx_uint(&m, "llama.rope.dimension_count", MV_U32, 64, &e);
        fx_float(&m, "llama.attention.layer_norm_rms_epsilon", MV_F32, 1e-5, &e);
        fx_uint(&m, "llama.vocab_size", MV_U32, vocab, &e);
        fx_uint(&m, "general.file_type", MV_U32, 0, &e);
    }
    if (!err_ok(&e)) {
        fprintf(stderr, "bench_quant_mk: %s\n", e.msg);
        model_close(&m);
        return 1;
    }
    n = 3 + nl * 9;
    m.tensors = calloc(n, sizeof *m.tensors);
    names = calloc(n, sizeof *names);
    if (!m.tensors || !names) {
        fputs("bench_quant_mk: out of memory\n", stderr);
        return 1;
    }
#define T(nm_fmt, lay, rows, cols)                                                        \
    do {                                                                                  \
        struct model_tensor *t = &m.tensors[k];                                           \
        snprintf(names[k], sizeof names[k], nm_fmt, (unsigned long long)(lay));          \
        t->name = slice_from_cstr(names[k]);                                              \
        t->dtype = DT_F32;                                                                \
        for (int d = 0; d < MODEL_MAX_DIMS; d++)                                          \
            t->shape[d] = 1;                                                              \
        t->n_dims = (rows) ? 2 : 1;                                                       \
        t->shape[0] = (rows) ? (int64_t)(rows) : (int64_t)(cols);                         \
        t->shape[1] = (rows) ? (int64_t)(cols) : 1;                                       \
        t->n_elems = (int64_t)((rows) ? (rows) : 1) * (int64_t)(cols);                    \
        t->size = (uint64_t)t->n_elems * 4;                                               \
        k++;                                                                              \
    } while (0)
    T("token_embd.weight%.0llu", 0ull, vocab, embd);
    T("output_norm.weight%.0llu", 0ull, 0, embd);
    T("output.weight%.0llu", 0ull, vocab, embd);
    for (uint64_t l = 0; l < nl; l++) {
        char fmt[64];
        T("blk.%llu.attn_norm.weight", l, 0, embd);
        T("blk.%llu.ffn_norm.weight", l, 0, embd);
        for (int j = 0; j < 7; j++) {
            uint64_t rows = j == 1 || j == 2 ? embd / 4 : j == 4 || j == 5 ? ff : embd;
            uint64_t cols = j == 6 ? ff : embd;
            snprintf(fmt, sizeof fmt, "blk.%%llu.%s.weight", mats[j]);
            T(fmt, l, rows, cols);
        }
    }
#undef T
    m.n_tensors = k;
    o.tensor_data = gen;
    o.ctx = &seed;
    rc = gguf_write(&m, argv[1], &o, &e);
    if (rc)
        fprintf(stderr, "bench_quant_mk: %s\n", e.msg);
    model_close(&m);
    free(names);
    return rc ? 1 : 0;
}
