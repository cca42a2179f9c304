/*
 * mkpair.c - writes the same generated llama-style model twice, as F16 and as Q8_0,
 * for the apr-diff bench (tests/bench/bench_diff.sh).
 *
 *   mkpair OUT-F16.gguf OUT-Q8_0.gguf [N_LAYERS]
 *
 * Shapes of a 7B-class llama (hidden 4096, 32 heads, 8 KV heads, FFN 11008, vocab
 * 32000); N_LAYERS (default 5) makes the Q8_0 file about 1.2 GB and the F16 one 2.3 GB.
 * Values are xorshift32 uniforms in [-0.05, 0.05) (norms around 1), seeded per tensor
 * and generated row block by row block, so both files hold the same weights before
 * rounding; norms stay F32 in both, as llama.cpp keeps them.  Streamed through
 * gguf_write's tensor_data callback: memory stays at one row block.  Deterministic.
 * Exit status: 0 ok, 1 failure, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cli.h"
#include "../../dequant/dq.h"
#include "../../formats/gguf/gguf.h"
#include "../fixtures/gguf_fix.h"
#include "../../common/banned.h"

#define EMBD   4096
#define FF     11008
#define VOCAB  32000
#define KV     1024      /* 8 KV heads x 128 */
#define BLOCK  64        /* rows generated at a time */

struct gen {
    int     q8;          /* 0: F16, 1: Q8_0 (2-D tensors) */
    float  *f;           /* BLOCK rows of floats */
    void   *q;           /* BLOCK rows quantized */
};

static int gen_tensor(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                      struct err *e)
{
    struct gen *g = ctx;
    const struct model_tensor *t = &m->tensors[i];
    int64_t rows = t->n_dims == 2 ? t->shape[0] : 1, cols = t->n_elems / rows;
    uint32_t s = 0x9E3779B9u ^ (uint32_t)(i * 2654435761u);
    int norm = t->n_dims == 1;

    for (int64_t r = 0; r < rows; r += BLOCK) {
        int64_t k = rows - r < BLOCK ? rows - r : BLOCK, n = k * cols;
        uint64_t nb;
        for (int64_t j = 0; j < n; j++) {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            g->f[j] = (norm ? 1.0f : 0.0f) + ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.1f;
        }
        if (t->dtype == DT_F32) {
            if (gguf_out_write(out, g->f, (size_t)n * 4, e))
                return -1;
            continue;
        }
        if (dq_quantize(t->dtype, g->f, g->q, k, cols, e) ||
            dtype_nbytes(t->dtype, n, &nb, e) || gguf_out_write(out, g->q, (size_t)nb, e))
            return -1;
    }
    return 0;
}

static void add(struct model *m, char (*names)[64], const char *name, int dtype, int64_t r,
                int64_t c)
{
    struct model_tensor *t = &m->tensors[m->n_tensors];
    uint64_t nb = 0;
    struct err e = ERR_INIT;

    snprintf(names[m->n_tensors], 64, "%s", name);
    memset(t, 0, sizeof *t);
    t->name = slice_from_cstr(names[m->n_tensors]);
    t->dtype = c ? dtype : DT_F32;
    t->n_dims = c ? 2 : 1;
    for (int d = 0; d < MODEL_MAX_DIMS; d++)
        t->shape[d] = 1;
    t->shape[0] = r;
    if (c)
        t->shape[1] = c;
    t->n_elems = r * (c ? c : 1);
    dtype_nbytes(t->dtype, t->n_elems, &nb, &e);
    t->size = nb;
    m->n_tensors++;
}

static int write_one(const char *path, int dtype, uint64_t layers, struct err *e)
{
    static const struct { const char *stem; int64_t r, c; } blk[] = {
        { "attn_norm", EMBD, 0 }, { "attn_q", EMBD, EMBD }, { "attn_k", KV, EMBD },
        { "attn_v", KV, EMBD }, { "attn_output", EMBD, EMBD }, { "ffn_norm", EMBD, 0 },
        { "ffn_gate", FF, EMBD }, { "ffn_up", FF, EMBD }, { "ffn_down", EMBD, FF },
    };
    size_t nt = 3 + layers * 9;
    struct model m;
    struct gguf_write_opts o = GGUF_WRITE_OPTS_INIT;
    struct gen g;
    char (*names)[64] = calloc(nt, sizeof *names);
    char name[64];
    int rc;

    if (fx_init(&m, path, e) == 0) {
        fx_str(&m, "general.architecture", "llama", e);
        fx_uint(&m, "llama.attention.head_count", MV_U32, 32, e);
        fx_uint(&m, "llama.attention.head_count_kv", MV_U32, 8, e);
        fx_uint(&m, "general.file_type", MV_U32, dtype == DT_Q8_0 ? 7 : 1, e);
    }
    if (!err_ok(e)) {
        free(names);
        model_close(&m);
        return -1;
    }
    m.tensors = calloc(nt, sizeof *m.tensors);
    g.q8 = dtype == DT_Q8_0;
    g.f = malloc((size_t)BLOCK * FF * sizeof *g.f);
    g.q = malloc((size_t)BLOCK * FF * 2);
    if (!names || !m.tensors || !g.f || !g.q) {
        free(names);
        model_close(&m);
        free(g.f);
        free(g.q);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    add(&m, names, "token_embd.weight", dtype, VOCAB, EMBD);
    for (uint64_t l = 0; l < layers; l++)
        for (size_t k = 0; k < sizeof blk / sizeof blk[0]; k++) {
            snprintf(name, sizeof name, "blk.%llu.%s.weight", (unsigned long long)l, blk[k].stem);
            add(&m, names, name, dtype, blk[k].r, blk[k].c);
        }
    add(&m, names, "output_norm.weight", dtype, EMBD, 0);
    add(&m, names, "output.weight", dtype, VOCAB, EMBD);
    o.tensor_data = gen_tensor;
    o.ctx = &g;
    rc = gguf_write(&m, path, &o, e);
    free(names);
    model_close(&m);   /* frees m.tensors too */
    free(g.f);
    free(g.q);
    return rc;
}

int main(int argc, char **argv)
{
    struct err e = ERR_INIT;
    uint64_t layers = 5;

    cli_init(argv[0]);
    if ((argc != 3 && argc != 4) || (argc == 4 && cli_parse_u64(argv[3], 1, 1000, &layers))) {
        fputs("usage: mkpair OUT-F16.gguf OUT-Q8_0.gguf [N_LAYERS]\n", stderr);
        return 2;
    }
    if (write_one(argv[1], DT_F16, layers, &e) || write_one(argv[2], DT_Q8_0, layers, &e)) {
        fprintf(stderr, "mkpair: %s\n", e.msg);
        return 1;
    }
    return 0;
}
