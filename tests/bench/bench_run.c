/*
 * bench_run.c - CPU runtime speed on a TinyLlama-1.1B-shaped llama (`make bench-run`).
 *
 *   bench_run gen DIR              write DIR/tinyllama-{F16,Q8_0,Q4_K_M}.gguf if missing
 *   bench_run run [-t N] [-r R] [-w pp|tg|all] FILE...   (-w: prompt, decode or both)
 *
 * gen: hidden 2048, 22 layers, 32 heads / 4 KV heads (head 64), FFN 5632, vocab 32000,
 * context 2048, random weights (xorshift uniforms, +-0.05; norms ~1) written with our
 * GGUF writer and quantized with our quantizers (dequant/).  Q4_K_M follows
 * llama-quantize's mix: Q4_K everywhere, Q6_K for output.weight and for attn_v and
 * ffn_down of the "more bits" layers (i < n/8, i >= 7n/8, (i - n/8) % 3 == 2: 10 of
 * 22).  The vocab is a SentencePiece-style one (<unk> <s> </s>, 256 byte tokens,
 * pieces) so llama.cpp loads the files too.  To keep generation cheap on 2 cores,
 * each distinct (shape, type) is generated and quantized once and its bytes are
 * reused by every layer (speed does not depend on the values).
 *
 * run: for each file, R repetitions (default 3), each with the real forward pass
 * (runtime/rt.h: embedding, RMSNorm, RoPE, GQA attention with the KV cache, SwiGLU,
 * output; the CPU backend at -t N), as llama-bench does it:
 *   pp: one rt_eval of 128 prompt tokens from an empty cache (the batched path);
 *   tg: 64 rt_eval calls of one token each, positions 0..63, from an empty cache;
 * and the decode roofline = read bandwidth / bytes of weights read per token (every
 * matrix of every layer plus the output matrix; the embedding row is negligible).
 *
 * The bandwidth is an upper bound, so that the roofline does not flatter the decode: the
 * best sustainable rate at which N threads (a pool of its own, -t N) read a 1 GiB buffer
 * (far beyond the L3; passes over 256 MiB or less were measured faster than DRAM here),
 * each thread its 1/N, in either of two patterns, passes alternated: 4 interleaved
 * sequential streams, or one, of 64-byte loads (zmm where the CPU has AVX-512, two ymm
 * where it has AVX2).  One measurement times 1 GiB passes one at a time, at least 10 of
 * each pattern and for at least 0.3 s, and keeps the best pass; it is taken at start and
 * again right before each decode run (the machine is shared: the neighbours of the
 * moment count); a decode run's roofline uses the best of its own measurements (below;
 * all are printed).  Why:
 * - the old measurement (one stream of 8-byte loads per thread, best of 3 passes, once
 *   at start) read 36-67 GB/s on an AVX-512 Zen 4 machine while decode itself could go
 *   faster (Q8_0 at 107% of it): there a single stream per thread left DRAM bandwidth
 *   unused (55-57 GB/s against 65-76 for 4 streams, same process, passes alternated),
 *   and 3 passes of ~15 ms taken at one moment of a shared 2-core machine are often all
 *   disturbed.  Software prefetch and 8 streams were no better than 4 streams there.
 * - on an AVX2-only Zen 4 VM the 4 streams read 25-29 GB/s and one stream 29-38 (a
 *   standalone loop, 2 threads, best of 6 passes): 4 streams alone made F16 decode run
 *   at 114% of its "roofline".  Neither pattern is best everywhere, so both are timed.
 * - on that VM even the better pattern read 30-34 GB/s from the buffer while the model
 *   file's own pages read at 50-55 (F16, Q8_0) or 35 (Q4_K_M): the memory behind a
 *   mapping matters there.  So before each decode run one token's weights are also read
 *   back through the model's mapping (wr_measure), and the roofline uses the better of
 *   the two bandwidths: the bytes decode reads, read as fast as a plain loop can.
 * - a run's roofline is the best of the bandwidths measured right before its decode
 *   (buffer and mapping) and right after it (mapping), and its decode is judged against
 *   that: on that VM a mapping read at 55-59 GB/s one minute and 35 the next (a copy of
 *   the same file too), so a decode timed in a 35 GB/s minute against another run's 59
 *   compared two machines (F16, make bench-run: best tg 17.03 t/s against 26.81 from
 *   another run's 59 GB/s reading, "63.5%"; three runs minutes later, each against the
 *   reading before it: 91.9, 78.5 and 95.1%).  The best tg against the best roofline of
 *   all is printed too.
 *
 * Prints one line per file: type, weight bytes per token, pp t/s, tg t/s (mean +- sd and best
 * of R), the best decode run's bandwidth and roofline, its tg as % of that roofline; a line
 * with each run's tg, roofline and %; a line with the bandwidth measurements; then a RESULT
 * line (best pp, best tg, the best tg run's roofline, the best roofline of all) for
 * tests/bench/bench_run.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/cli.h"
#include "../../common/threads.h"
#include "../../dequant/dq.h"
#include "../../formats/gguf/gguf.h"
#include "../../formats/model.h"
#include "../../runtime/matmul.h"
#include "../../runtime/pool.h"
#include "../../runtime/rt.h"
#include "../fixtures/gguf_fix.h"
#include "bench_util.h"
#include "../../common/banned.h"

#define EMBD   2048
#define LAYERS 22
#define HEADS  32
#define KVH    4
#define HD     64
#define FF     5632
#define VOCAB  32000
#define CTX    2048
#define PP     128
#define TG     64

enum mix { MIX_F16, MIX_Q8_0, MIX_Q4_K_M };
static const char *const mix_name[] = { "F16", "Q8_0", "Q4_K_M" };

/* ---------------------------------------------------------------------------------
 * gen
 */

struct cached {
    int      dtype;
    int64_t  rows, cols;
    int      norm;
    uint8_t *bytes;
    size_t   n;
};

struct gen {
    struct cached c[32];
    int           nc;
    int           threads;
};

static int more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int gen_tensor(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                      struct err *e)
{
    struct gen *g = ctx;
    const struct model_tensor *t = &m->tensors[i];
    int64_t rows = t->n_dims == 2 ? t->shape[0] : 1, cols = t->n_elems / rows;
    int norm = t->n_dims == 1;
    struct cached *c = NULL;

    for (int k = 0; k < g->nc; k++)
        if (g->c[k].dtype == t->dtype && g->c[k].rows == rows && g->c[k].cols == cols &&
            g->c[k].norm == norm)
            c = &g->c[k];
    if (!c) {
        uint32_t s = 0x9E3779B9u ^ (uint32_t)(rows * 2654435761u) ^ (uint32_t)(cols * 40503u);
        float *f = malloc((size_t)(rows * cols) * sizeof *f);
        uint64_t nb = 0;
        if (!f || g->nc == 32)
            return ERR(e, ERR_NOMEM, "out of memory");
        for (int64_t j = 0; j < rows * cols; j++)
            f[j] = (norm ? 1.0f : 0.0f) + 0.1f * (fx_uniform(&s) * 0.5f);
        c = &g->c[g->nc];
        if (dtype_nbytes(t->dtype, rows * cols, &nb, e)) {
            free(f);
            return -1;
        }
        c->bytes = malloc((size_t)nb);
        if (!c->bytes) {
            free(f);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        if (dq_quantize_mt(t->dtype, f, c->bytes, rows, cols, g->threads, e)) {
            free(f);
            free(c->bytes);
            return -1;
        }
        free(f);
        c->dtype = t->dtype;
        c->rows = rows;
        c->cols = cols;
        c->norm = norm;
        c->n = (size_t)nb;
        g->nc++;
    }
    return gguf_out_write(out, c->bytes, c->n, e);
}

static void add(struct model *m, char (*names)[64], const char *name, int dtype, int64_t r,
                int64_t cols)
{
    struct model_tensor *t = &m->tensors[m->n_tensors];
    uint64_t nb = 0;
    struct err e = ERR_INIT;

    snprintf(names[m->n_tensors], 64, "%s", name);
    memset(t, 0, sizeof *t);
    t->name = slice_from_cstr(names[m->n_tensors]);
    t->dtype = cols ? dtype : DT_F32;
    t->n_dims = cols ? 2 : 1;
    for (int d = 0; d < MODEL_MAX_DIMS; d++)
        t->shape[d] = 1;
    t->shape[0] = r;
    if (cols)
        t->shape[1] = cols;
    t->n_elems = r * (cols ? cols : 1);
    dtype_nbytes(t->dtype, t->n_elems, &nb, &e);
    t->size = nb;
    m->n_tensors++;
}

static int gen_vocab(struct model *m, struct err *e)
{
    const char **toks = calloc(VOCAB, sizeof *toks);
    char (*buf)[16] = calloc(VOCAB, sizeof *buf);
    uint8_t *scores = malloc(VOCAB * 4), *types = malloc(VOCAB * 4);

    if (!toks || !buf || !scores || !types) {
        free(toks);
        free(buf);
        free(scores);
        free(types);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < VOCAB; i++) {
        float sc = i < 259 ? 0.0f : (float)-(i - 258);
        int32_t ty = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        uint32_t u;
        if (i < 3)
            snprintf(buf[i], sizeof buf[i], "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259)
            snprintf(buf[i], sizeof buf[i], "<0x%02X>", i - 3);
        else
            snprintf(buf[i], sizeof buf[i], "\xe2\x96\x81t%d", i);
        toks[i] = buf[i];
        memcpy(&u, &sc, 4);
        put_le32(scores + 4 * i, u);
        put_le32(types + 4 * i, (uint32_t)ty);
    }
    fx_str(m, "tokenizer.ggml.model", "llama", e);
    fx_str(m, "tokenizer.ggml.pre", "default", e);
    fx_arr_strs(m, "tokenizer.ggml.tokens", VOCAB, toks, e);
    fx_arr_raw(m, "tokenizer.ggml.scores", MV_F32, VOCAB, scores, e);
    fx_arr_raw(m, "tokenizer.ggml.token_type", MV_I32, VOCAB, types, e);
    fx_uint(m, "tokenizer.ggml.bos_token_id", MV_U32, 1, e);
    fx_uint(m, "tokenizer.ggml.eos_token_id", MV_U32, 2, e);
    fx_uint(m, "tokenizer.ggml.unknown_token_id", MV_U32, 0, e);
    free(toks);
    free(buf);
    free(scores);
    free(types);
    return err_ok(e) ? 0 : -1;
}

static int gen_one(const char *path, enum mix mx, int threads, struct err *e)
{
    static const struct { const char *stem; int64_t r, c; } blk[] = {
        { "attn_norm", EMBD, 0 }, { "attn_q", EMBD, EMBD }, { "attn_k", KVH * HD, EMBD },
        { "attn_v", KVH * HD, EMBD }, { "attn_output", EMBD, EMBD }, { "ffn_norm", EMBD, 0 },
        { "ffn_gate", FF, EMBD }, { "ffn_up", FF, EMBD }, { "ffn_down", EMBD, FF },
    };
    size_t nt = 3 + LAYERS * 9;
    struct model m;
    struct gguf_write_opts o = GGUF_WRITE_OPTS_INIT;
    struct gen *g = calloc(1, sizeof *g);
    char (*names)[64] = calloc(nt, sizeof *names);
    int base = mx == MIX_F16 ? DT_F16 : mx == MIX_Q8_0 ? DT_Q8_0 : DT_Q4_K;
    int rc = -1;

    memset(&m, 0, sizeof m);
    if (!g || !names) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    g->threads = threads;
    if (fx_init(&m, path, e) == 0) {
        fx_str(&m, "general.architecture", "llama", e);
        fx_str(&m, "general.name", "apr-tools bench tinyllama-shaped", e);
        fx_uint(&m, "general.file_type", MV_U32, mx == MIX_F16 ? 1 : mx == MIX_Q8_0 ? 7 : 15, e);
        fx_uint(&m, "llama.vocab_size", MV_U32, VOCAB, e);
        fx_uint(&m, "llama.context_length", MV_U32, CTX, e);
        fx_uint(&m, "llama.embedding_length", MV_U32, EMBD, e);
        fx_uint(&m, "llama.block_count", MV_U32, LAYERS, e);
        fx_uint(&m, "llama.feed_forward_length", MV_U32, FF, e);
        fx_uint(&m, "llama.attention.head_count", MV_U32, HEADS, e);
        fx_uint(&m, "llama.attention.head_count_kv", MV_U32, KVH, e);
        fx_uint(&m, "llama.rope.dimension_count", MV_U32, HD, e);
        fx_float(&m, "llama.rope.freq_base", MV_F32, 10000.0, e);
        fx_float(&m, "llama.attention.layer_norm_rms_epsilon", MV_F32, 1e-5, e);
        gen_vocab(&m, e);
    }
    if (!err_ok(e))
        goto out;
    m.tensors = calloc(nt, sizeof *m.tensors);
    if (!m.tensors) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    add(&m, names, "token_embd.weight", base, VOCAB, EMBD);
    for (int l = 0; l < LAYERS; l++)
        for (size_t k = 0; k < sizeof blk / sizeof blk[0]; k++) {
            char name[64];
            int dt = base;
            if (mx == MIX_Q4_K_M && more_bits(l, LAYERS) &&
                (!strcmp(blk[k].stem, "attn_v") || !strcmp(blk[k].stem, "ffn_down")))
                dt = DT_Q6_K;
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, blk[k].stem);
            add(&m, names, name, dt, blk[k].r, blk[k].c);
        }
    add(&m, names, "output_norm.weight", base, EMBD, 0);
    add(&m, names, "output.weight", mx == MIX_Q4_K_M ? DT_Q6_K : base, VOCAB, EMBD);
    o.tensor_data = gen_tensor;
    o.ctx = g;
    rc = gguf_write(&m, path, &o, e);
out:
    if (g)
        for (int k = 0; k < g->nc; k++)
            free(g->c[k].bytes);
    free(g);
    free(names);
    model_close(&m);
    return rc;
}

/* ---------------------------------------------------------------------------------
 * run
 */

/* The read bandwidth behind the roofline (how and why: the header).  Measured on this
 * machine (2 threads, 1 GiB, the variants' passes alternated in one process so that all
 * see the same neighbours, best of 15 each, three runs): per thread one stream of
 * 8-byte loads (the old loop) 51-57 GB/s; one stream of zmm loads 47-52; two streams
 * 58-67; four 65-76; eight 64-70; four with software prefetch 8-32 vectors ahead 73-77. */
#define BW_BYTES      ((size_t)1 << 30)
#define BW_MIN_PASSES 10
#define BW_MIN_S      0.3

typedef uint64_t bw_vec __attribute__((vector_size(64), aligned(64)));

struct bw_job {
    bw_vec  *p;
    size_t   n;           /* vectors per part */
    int      init;        /* first touch (write) instead of read */
    int      isa;         /* bw_isa(): 2 AVX-512, 1 AVX2, 0 plain C */
    int      one;         /* 1: one stream a thread, 0: four */
    uint64_t sink[64];
};

/* four streams of n / 4 vectors from p, xored together */
#define BW_READ(name, attr)                                                                \
    attr static uint64_t name(const bw_vec *p, size_t n)                                   \
    {                                                                                      \
        size_t q = n / 4;                                                                  \
        bw_vec a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 };                             \
        uint64_t r = 0;                                                                    \
        for (size_t k = 0; k + 1 < q; k += 2) {                                            \
            a0 ^= p[k] ^ p[k + 1];                                                         \
            a1 ^= p[q + k] ^ p[q + k + 1];                                                 \
            a2 ^= p[2 * q + k] ^ p[2 * q + k + 1];                                         \
            a3 ^= p[3 * q + k] ^ p[3 * q + k + 1];                                         \
        }                                                                                  \
        a0 ^= a1 ^ a2 ^ a3;                                                                \
        for (int i = 0; i < 8; i++)                                                        \
            r ^= a0[i];                                                                    \
        return r;                                                                          \
    }
/* one stream of n vectors (n a multiple of 8, bw_init), four accumulators */
#define BW_READ1(name, attr)                                                               \
    attr static uint64_t name(const bw_vec *p, size_t n)                                   \
    {                                                                                      \
        bw_vec a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 };                             \
        uint64_t r = 0;                                                                    \
        for (size_t k = 0; k + 3 < n; k += 4) {                                            \
            a0 ^= p[k];                                                                    \
            a1 ^= p[k + 1];                                                                \
            a2 ^= p[k + 2];                                                                \
            a3 ^= p[k + 3];                                                                \
        }                                                                                  \
        a0 ^= a1 ^ a2 ^ a3;                                                                \
        for (int i = 0; i < 8; i++)                                                        \
            r ^= a0[i];                                                                    \
        return r;                                                                          \
    }
BW_READ(bw_read, )
BW_READ1(bw_read1, )
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
BW_READ(bw_read512, __attribute__((target("avx512f"))))
BW_READ(bw_read256, __attribute__((target("avx2"))))
BW_READ1(bw_read1_512, __attribute__((target("avx512f"))))
BW_READ1(bw_read1_256, __attribute__((target("avx2"))))
static int bw_isa(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
}
#else
static int bw_isa(void)
{
    return 0;
}
#endif

static void bw_part(void *ctx, int i, int n)
{
    struct bw_job *j = ctx;
    bw_vec *p = j->p + (size_t)i * j->n;
    (void)n;
    if (j->init) {
        for (size_t k = 0; k < j->n; k++)
            for (int l = 0; l < 8; l++)
                p[k][l] = k * 8 + (size_t)l;
        return;
    }
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    if (j->isa == 2) {
        j->sink[i & 63] = j->one ? bw_read1_512(p, j->n) : bw_read512(p, j->n);
        return;
    }
    if (j->isa == 1) {
        j->sink[i & 63] = j->one ? bw_read1_256(p, j->n) : bw_read256(p, j->n);
        return;
    }
#endif
    j->sink[i & 63] = j->one ? bw_read1(p, j->n) : bw_read(p, j->n);
}

struct bw {
    struct rt_pool *p;
    struct bw_job   j;
    double          best;     /* GB/s, best of every measurement so far */
    double          last[8];  /* the measurements, GB/s */
    int             n_last;
};

/* a BW_BYTES buffer, first touched by the threads that will read it */
static int bw_init(struct bw *b, struct rt_pool *p)
{
    size_t nth = (size_t)rt_pool_threads(p);

    memset(b, 0, sizeof *b);
    b->p = p;
    b->j.p = aligned_alloc(4096, BW_BYTES);
    if (!b->j.p)
        return -1;
    b->j.n = BW_BYTES / sizeof(bw_vec) / nth / 8 * 8;
    b->j.isa = bw_isa();
    b->j.init = 1;
    rt_pool_run(p, bw_part, &b->j, (int)nth);
    b->j.init = 0;
    return 0;
}

/* one measurement: GB/s (1e9 bytes) of the best timed pass (BW_MIN_PASSES passes of each
 * pattern and BW_MIN_S seconds at least, after a warm-up pass); it also raises b->best */
static double bw_measure(struct bw *b)
{
    int nth = rt_pool_threads(b->p);
    double best = 0, t_end = bench_now() + BW_MIN_S;

    rt_pool_run(b->p, bw_part, &b->j, nth);
    for (int r = 0; r < 2 * BW_MIN_PASSES || bench_now() < t_end; r++) {
        b->j.one = r & 1;   /* the two patterns alternated: the same neighbours for both */
        double t0 = bench_now();
        rt_pool_run(b->p, bw_part, &b->j, nth);
        double gbs = (double)(b->j.n * sizeof(bw_vec) * (size_t)nth) / (bench_now() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    if (b->n_last < 8)
        b->last[b->n_last++] = best;
    if (best > b->best)
        b->best = best;
    return best;
}

static void bw_free(struct bw *b)
{
    free(b->j.p);
    b->j.p = NULL;
}

struct layer { struct rt_mat w[7]; };   /* q k v o gate up down */

struct net {
    struct model  m;
    struct rt_mat embd, out;
    struct layer  l[LAYERS];
    uint64_t      bytes_tok;            /* weight bytes read per decoded token */
};

static int bind(struct net *n, const char *name, struct rt_mat *w, struct err *e)
{
    const struct model_tensor *t = model_tensor_find(&n->m, name);
    if (!t || t->n_dims != 2)
        return ERR(e, ERR_FORMAT, "%s: no 2-D tensor '%s'", n->m.path, name);
    return rt_mat_init(w, t->dtype, t->shape[0], t->shape[1], t->data, e);
}

static int net_open(struct net *n, const char *path, struct err *e)
{
    static const char *const st[7] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                       "ffn_gate", "ffn_up", "ffn_down" };
    memset(n, 0, sizeof *n);
    if (model_open(&n->m, path, e))
        return -1;
    if (bind(n, "token_embd.weight", &n->embd, e) || bind(n, "output.weight", &n->out, e))
        return -1;
    n->bytes_tok = (uint64_t)n->out.row_bytes * (uint64_t)n->out.rows;
    for (int l = 0; l < LAYERS; l++)
        for (int k = 0; k < 7; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, st[k]);
            if (bind(n, name, &n->l[l].w[k], e))
                return -1;
            n->bytes_tok += (uint64_t)n->l[l].w[k].row_bytes * (uint64_t)n->l[l].w[k].rows;
        }
    return 0;
}

/*
 * The second bandwidth: one token's weights themselves read back as decode reads them,
 * through the model's own mapping: every bound matrix in chunks of WR_CHUNK bytes,
 * taken in order by the pool's threads (as rt_matmul's row parts are), each chunk one
 * stream of 32-byte loads.  On the AVX2 Zen 4 VM the file's pages read at 50-52 GB/s
 * where a fresh 1 GiB anonymous buffer gave 30-34 (a standalone 2-thread loop, both in
 * one process): F16 decode ran at 158% of the buffer's roofline.  The roofline takes the
 * better of the two.
 */
#define WR_CHUNK ((size_t)256 << 10)
#define WR_SEG   (LAYERS * 7 + 1)

typedef uint64_t wr_vec __attribute__((vector_size(32), aligned(1)));

struct wr_job {
    const uint8_t *p[WR_SEG];
    size_t         n[WR_SEG];
    int            first[WR_SEG + 1];   /* segment k owns chunks [first[k], first[k + 1]) */
    int            isa;
    uint64_t       sink[64];
};

#define WR_READ(name, attr)                                                                \
    attr static uint64_t name(const uint8_t *p, size_t n)                                  \
    {                                                                                      \
        const wr_vec *v = (const wr_vec *)p;                                               \
        wr_vec a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 };                             \
        size_t k = 0, m = n / sizeof(wr_vec);                                              \
        uint64_t r = 0;                                                                    \
        for (; k + 3 < m; k += 4) {                                                        \
            a0 ^= v[k];                                                                    \
            a1 ^= v[k + 1];                                                                \
            a2 ^= v[k + 2];                                                                \
            a3 ^= v[k + 3];                                                                \
        }                                                                                  \
        for (; k < m; k++)                                                                 \
            a0 ^= v[k];                                                                    \
        a0 ^= a1 ^ a2 ^ a3;                                                                \
        for (int i = 0; i < 4; i++)                                                        \
            r ^= a0[i];                                                                    \
        for (size_t b = m * sizeof(wr_vec); b < n; b++)                                    \
            r ^= p[b];                                                                     \
        return r;                                                                          \
    }
WR_READ(wr_read, )
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
WR_READ(wr_read256, __attribute__((target("avx2"))))
#endif

static void wr_part(void *ctx, int i, int n)
{
    struct wr_job *j = ctx;
    int lo = 0, hi = WR_SEG - 1;
    (void)n;
    while (lo < hi) {                        /* the last segment whose first chunk <= i */
        int mid = (lo + hi + 1) / 2;
        if (j->first[mid] <= i)
            lo = mid;
        else
            hi = mid - 1;
    }
    size_t off = (size_t)(i - j->first[lo]) * WR_CHUNK, len = j->n[lo] - off;
    if (len > WR_CHUNK)
        len = WR_CHUNK;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    if (j->isa) {
        j->sink[i & 63] ^= wr_read256(j->p[lo] + off, len);
        return;
    }
#endif
    j->sink[i & 63] ^= wr_read(j->p[lo] + off, len);
}

/* GB/s of the best timed pass over one token's weights (BW_MIN_PASSES passes and BW_MIN_S
 * seconds at least, after a warm-up pass) */
static double wr_measure(const struct net *n, struct rt_pool *p)
{
    struct wr_job *j = calloc(1, sizeof *j);
    double best = 0, t_end;
    int k = 0;
    if (!j)
        return 0;
    for (int l = 0; l < LAYERS; l++)
        for (int w = 0; w < 7; w++, k++) {
            j->p[k] = n->l[l].w[w].data;
            j->n[k] = n->l[l].w[w].row_bytes * (size_t)n->l[l].w[w].rows;
        }
    j->p[k] = n->out.data;
    j->n[k] = n->out.row_bytes * (size_t)n->out.rows;
    for (k = 0; k < WR_SEG; k++)
        j->first[k + 1] = j->first[k] + (int)((j->n[k] + WR_CHUNK - 1) / WR_CHUNK);
    j->isa = bw_isa() >= 1;
    rt_pool_run(p, wr_part, j, j->first[WR_SEG]);
    t_end = bench_now() + BW_MIN_S;
    for (int r = 0; r < BW_MIN_PASSES || bench_now() < t_end; r++) {
        double t0 = bench_now();
        rt_pool_run(p, wr_part, j, j->first[WR_SEG]);
        double gbs = (double)n->bytes_tok / (bench_now() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    free(j);
    return best;
}

static void stats(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static double best_of(const double *v, int n)
{
    double b = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > b)
            b = v[i];
    return b;
}

/* what: 1 prompt, 2 decode, 3 both */
static int run_one(const char *path, int threads, int reps, int what, struct bw *bw, struct err *e)
{
    struct net *n = calloc(1, sizeof *n);
    struct rt_model rm;
    struct rt_ctx *ctx = NULL;
    struct rt_params prm;
    float *logits = malloc((size_t)VOCAB * sizeof(float));
    int32_t tok[PP];
    double pp[16] = { 0 }, tg[16] = { 0 }, wr[16] = { 0 }, rbw[16] = { 0 }, mpp, spp, mtg, stg;
    int n_wr = 0, rb = 0;
    const char *type = "?";
    int rc = -1;

    memset(&rm, 0, sizeof rm);
    memset(&prm, 0, sizeof prm);
    if (!n || !logits) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (net_open(n, path, e) || rt_model_load(&rm, &n->m, e))
        goto out;
    prm.n_ctx = PP + TG;
    prm.n_threads = threads;
    if (rt_ctx_new(&ctx, &rm, &prm, e))
        goto out;
    for (int i = 0; i < PP; i++)
        tok[i] = 3 + (int32_t)((i * 7919) % (VOCAB - 3));
    /* warm: fault every page of the mapping in once */
    if (rt_eval(ctx, tok, 1, 0, logits, 0, e))
        goto out;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        if ((what & 1) && rt_eval(ctx, tok, PP, 0, logits, 0, e))
            goto out;
        pp[r] = (what & 1) ? PP / (bench_now() - t0) : 0;
        if (what & 2) {       /* right before each decode run, in the same conditions */
            double g = bw_measure(bw);
            rbw[r] = g;
            g = wr_measure(n, bw->p);
            if (n_wr < 16)
                wr[n_wr++] = g;
            rbw[r] = g > rbw[r] ? g : rbw[r];
        }
        t0 = bench_now();
        for (int k = 0; (what & 2) && k < TG; k++)
            if (rt_eval(ctx, &tok[k], 1, k, logits, 0, e))
                goto out;
        tg[r] = (what & 2) ? TG / (bench_now() - t0) : 0;
        if (what & 2) {       /* and right after it: the run's roofline brackets it */
            double g = wr_measure(n, bw->p);
            if (n_wr < 16)
                wr[n_wr++] = g;
            rbw[r] = g > rbw[r] ? g : rbw[r];
            if (tg[r] > tg[rb])
                rb = r;
        }
    }
    stats(pp, reps, &mpp, &spp);
    stats(tg, reps, &mtg, &stg);
    {
        const struct model_tensor *t = model_tensor_find(&n->m, "blk.0.attn_q.weight");
        /* gen's three files by their attn_q; any other file by its attn_q's type */
        type = t->dtype == DT_Q4_K ? "Q4_K_M" : dtype_name(t->dtype);
    }
    double bwb = bw->best > best_of(wr, n_wr) ? bw->best : best_of(wr, n_wr);
    double roof = bwb * 1e9 / (double)n->bytes_tok;
    /* the best decode run's own roofline: the bandwidths measured right before and after
     * it (the header says why) */
    double roof_r = rbw[rb] * 1e9 / (double)n->bytes_tok;
    printf("%-7s %8.1f MB/tok  pp%d %8.2f +- %5.2f (best %8.2f) t/s  tg%d %7.2f +- %4.2f "
           "(best %7.2f) t/s  bw %6.2f GB/s  roofline %7.2f t/s  tg best %5.1f%% of its run's "
           "roofline\n",
           type, (double)n->bytes_tok / 1e6, PP, mpp, spp, best_of(pp, reps), TG, mtg, stg,
           best_of(tg, reps), rbw[rb], roof_r, (what & 2) ? 100.0 * tg[rb] / roof_r : 0.0);
    if (what & 2) {
        printf("        each run: tg t/s / roofline t/s =");
        for (int r = 0; r < reps; r++)
            printf(" %.2f/%.2f (%.1f%%)", tg[r], rbw[r] * 1e9 / (double)n->bytes_tok,
                   100.0 * tg[r] * (double)n->bytes_tok / (rbw[r] * 1e9));
        printf("; best tg is %.1f%% of the best roofline of all (%.2f t/s at %.2f GB/s)\n",
               100.0 * best_of(tg, reps) / roof, roof, bwb);
    }
    printf("        bw: best %.2f GB/s of", bw->best);
    for (int k = 0; k < bw->n_last; k++)
        printf(" %.2f", bw->last[k]);
    printf(" (1 GiB buffer: at start%s)\n", (what & 2) ? ", then before each tg run" : "");
    if (n_wr) {
        printf("        weights read: best %.2f GB/s of", best_of(wr, n_wr));
        for (int k = 0; k < n_wr; k++)
            printf(" %.2f", wr[k]);
        printf(" (one token's weights through the model's mapping, before and after each tg "
               "run)\n");
    }
    /* best of the repetitions: on a shared machine the best run is the least disturbed;
     * then the roofline of that run and the best roofline of all */
    printf("RESULT %s %.3f %.3f %.3f %.3f\n", type, best_of(pp, reps), best_of(tg, reps),
           (what & 2) ? roof_r : 0.0, roof);
    fflush(stdout);
    rc = 0;
out:
    rt_ctx_free(ctx);
    rt_model_free(&rm);
    if (n)
        model_close(&n->m);
    free(n);
    free(logits);
    return rc;
}

int main(int argc, char **argv)
{
    struct err e = ERR_INIT;

    cli_init(argv[0]);
    if (argc == 3 && !strcmp(argv[1], "gen")) {
        for (int k = 0; k < 3; k++) {
            char path[4096];
            struct stat st;
            snprintf(path, sizeof path, "%s/tinyllama-%s.gguf", argv[2], mix_name[k]);
            if (stat(path, &st) == 0)
                continue;
            double t0 = bench_now();
            if (gen_one(path, (enum mix)k, threads_ncpu(), &e)) {
                fprintf(stderr, "bench_run: %s\n", e.msg);
                return 1;
            }
            fprintf(stderr, "bench_run: wrote %s in %.1f s\n", path, bench_now() - t0);
        }
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "run")) {
        uint64_t th = 2, reps = 3;
        int i = 2, what = 3;
        struct rt_pool *p = NULL;
        for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
            if (!strcmp(argv[i], "-t") && !cli_parse_u64(argv[i + 1], 1, 256, &th))
                continue;
            if (!strcmp(argv[i], "-r") && !cli_parse_u64(argv[i + 1], 1, 16, &reps))
                continue;
            if (!strcmp(argv[i], "-w") && (!strcmp(argv[i + 1], "pp") || !strcmp(argv[i + 1], "tg") ||
                                           !strcmp(argv[i + 1], "all"))) {
                what = argv[i + 1][0] == 'p' ? 1 : argv[i + 1][0] == 't' ? 2 : 3;
                continue;
            }
            fputs("usage: bench_run run [-t N] [-r R] [-w pp|tg|all] FILE...\n", stderr);
            return 2;
        }
        if (rt_pool_create(&p, (int)th, &e)) {
            fprintf(stderr, "bench_run: %s\n", e.msg);
            return 1;
        }
        struct bw bw;
        if (bw_init(&bw, p)) {
            fputs("bench_run: out of memory\n", stderr);
            rt_pool_free(p);
            return 1;
        }
        bw_measure(&bw);
        printf("apr-run CPU forward (runtime/rt.h): kernels %s, %d threads\n", rt_matmul_isa(),
               (int)th);
        for (; i < argc; i++)
            if (run_one(argv[i], (int)th, (int)reps, what, &bw, &e)) {
                fprintf(stderr, "bench_run: %s\n", e.msg);
                bw_free(&bw);
                rt_pool_free(p);
                return 1;
            }
        bw_free(&bw);
        rt_pool_free(p);
        return 0;
    }
    fputs("usage: bench_run gen DIR | bench_run run [-t N] [-r R] [-w pp|tg|all] FILE...\n", stderr);
    return 2;
}
