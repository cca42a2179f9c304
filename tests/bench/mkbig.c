/*
 * mkbig.c - writes a large GGUF of pseudo-random F16 tensors for the apr-hash bench.
 *
 *   mkbig OUT.gguf SIZE_MIB N_TENSORS
 *
 * Real bytes (xorshift64, streamed tensor by tensor through gguf_write's tensor_data
 * callback; never sparse, never the whole file in memory): a file of SIZE_MIB MiB of
 * tensor data in N_TENSORS llama-style F16 tensors of 4096 columns.  Deterministic.
 * Exit status: 0 ok, 1 failure, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cli.h"
#include "../../formats/gguf/gguf.h"
#include "../fixtures/gguf_fix.h"
#include "../../common/banned.h"

#define COLS 4096

static int gen(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out, struct err *e)
{
    static uint64_t buf[1 << 17];   /* 1 MiB */
    uint64_t *s = ctx, left = m->tensors[i].size;

    while (left) {
        size_t k = left > sizeof buf ? sizeof buf : (size_t)left;
        for (size_t j = 0; j < (k + 7) / 8; j++) {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            /* keep every f16 finite: clear the top exponent bit of each half */
            buf[j] = *s & 0xBFFFBFFFBFFFBFFFull;
        }
        if (gguf_out_write(out, buf, k, e))
            return -1;
        left -= k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const stems[] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                         "ffn_gate", "ffn_up", "ffn_down", "ffn_norm" };
    struct model m;
    struct err e = ERR_INIT;
    struct gguf_write_opts o = GGUF_WRITE_OPTS_INIT;
    uint64_t mib, n, rows, seed = 0x9E3779B97F4A7C15ull;
    int rc;
    char (*names)[64];

    cli_init(argv[0]);
    if (argc != 4 || cli_parse_u64(argv[2], 1, 1 << 20, &mib) ||
        cli_parse_u64(argv[3], 1, 1 << 20, &n)) {
        fputs("usage: mkbig OUT.gguf SIZE_MIB N_TENSORS\n", stderr);
        return 2;
    }
    rows = (mib << 20) / n / (COLS * 2) / 64 * 64;   /* whole heads: 64 | rows */
    if (rows == 0)
        rows = 64;
    /* head counts for --content's q/k un-permutation: 32 heads, 8 kv heads */
    if (fx_init(&m, argv[1], &e) == 0) {
        fx_str(&m, "general.architecture", "llama", &e);
        fx_uint(&m, "llama.attention.head_count", MV_U32, 32, &e);
        fx_uint(&m, "llama.attention.head_count_kv", MV_U32, 8, &e);
    }
    if (!err_ok(&e)) {
        fprintf(stderr, "mkbig: %s\n", e.msg);
        model_close(&m);
        return 1;
    }
    m.tensors = calloc(n, sizeof *m.tensors);
    names = calloc(n, sizeof *names);
    if (!m.tensors || !names) {
        fputs("mkbig: out of memory\n", stderr);
        return 1;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct model_tensor *t = &m.tensors[i];
        snprintf(names[i], sizeof names[i], "blk.%llu.%s.weight", (unsigned long long)(i / 8),
                 stems[i % 8]);
        t->name = slice_from_cstr(names[i]);
        t->dtype = DT_F16;
        t->n_dims = 2;
        for (int d = 0; d < MODEL_MAX_DIMS; d++)
            t->shape[d] = 1;
        t->shape[0] = (int64_t)rows;
        t->shape[1] = COLS;
        t->n_elems = (int64_t)rows * COLS;
        t->size = rows * COLS * 2;
    }
    m.n_tensors = n;
    o.tensor_data = gen;
    o.ctx = &seed;
    rc = gguf_write(&m, argv[1], &o, &e);
    if (rc)
        fprintf(stderr, "mkbig: %s\n", e.msg);
    model_close(&m);   /* frees m.tensors too */
    free(names);
    return rc ? 1 : 0;
}
