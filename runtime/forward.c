/*
 * forward.c - the CPU backend: the forward pass of rt.h over rt_matmul, with an f32 KV
 * cache.  Prompts run in chunks of n_batch tokens through rt_matmul (matrix-matrix);
 * decoding is the same code with n = 1.  Attention is split over (position, head)
 * pairs across the thread pool.  Stage hooks cost one mask test each when off.
 * Without every position's logits (and without hooks), the last layer past its K and V
 * runs only the last row, as llama.cpp does: a TinyLlama-shaped prompt of 128 tokens
 * skips 3.7% of its multiply-adds (the last layer's Wo, FFN and 127 attention rows).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "pool.h"
#include "silu.h"
#include "../common/sz.h"
#include "../dequant/dq.h"
#include "../common/banned.h"

/* prefill attention: parts per thread (balance), positions per block of scores */
#define ATT_PARTS 4
#define ATT_JB    32
static inline int64_t att_ld(int64_t n) { return (n + ATT_JB - 1) & ~(int64_t)(ATT_JB - 1); }

struct cpu {
    struct rt_pool *pool;
    int64_t  kv_dim;                 /* n_head_kv * head_dim */
    /* K transposed in tiles of tb positions, [n_layer][n_head_kv][n_tiles][head_dim][tb]
     * (position fastest: the attention's lanes are positions), written where K is
     * appended; never-written positions read as zeros.  A tile (a block of positions of
     * one kv head, 16 KiB at head_dim 64) is contiguous: the hardware prefetchers stream
     * it from memory, and a block sits in L1 without set conflicts (rows of a whole
     * context, a multiple of 4 KiB apart, shared one set group). */
    float   *kt_cache;
    void    *kt_mem;                 /* kt_cache's allocation (calloc: lazily zeroed) */
    int      tb;                     /* 64 positions a tile, 32 where head_dim > 64 */
    int64_t  n_tiles;                /* n_ctx / tb, rounded up */
    float   *v_cache;                /* [n_layer][n_head_kv][n_ctx][head_dim] */
    float   *rope_cos, *rope_sin;    /* [n_ctx][n_rot / 2] */
    int      cap;                    /* tokens the scratch below holds */
    float   *x, *xn, *q, *k, *v, *att, *o, *gate, *up;   /* [cap][width] */
    float   *scores;                 /* [ATT_PARTS * n_threads][group][att_ld(n_ctx)] */
    float   *probe;                  /* hooks only: attention matrices, qkv rows, lm_head */
    size_t   probe_n;
    int      att_wide;               /* the attention's 8-lane loops (x86-64 with AVX2) */
    struct rt_layer *layers;         /* rm's layers, x8 set where repacked (repack_weights) */
    struct rt_mat    output;
    void    *x8_mem;                 /* the repacked copies (mmap), x8_len bytes */
    size_t   x8_len;
};

/* ---- RoPE frequencies (Hugging Face's rope_type semantics) */

/* inv_freq[i] for i < n_rot/2, after scaling; *mscale multiplies cos and sin (YaRN). */
void rt_rope_freqs(const struct model_config *c, double *inv_freq, double *mscale)
{
    const int half = (int)c->n_rot / 2;
    const double dim = c->n_rot, base = c->rope_theta;
    const double f = c->rope_scaling.factor > 0 ? c->rope_scaling.factor : 1.0;

    *mscale = 1.0;
    for (int i = 0; i < half; i++)
        inv_freq[i] = 1.0 / pow(base, (2.0 * i) / dim);
    switch (c->rope_scaling.type) {
    case ROPE_SCALE_NONE:
        break;
    case ROPE_SCALE_LINEAR:
        for (int i = 0; i < half; i++)
            inv_freq[i] /= f;
        break;
    case ROPE_SCALE_LLAMA3: {
        const double orig = c->rope_scaling.orig_ctx ? c->rope_scaling.orig_ctx : 8192;
        const double lo = c->rope_scaling.low_freq_factor > 0 ? c->rope_scaling.low_freq_factor : 1;
        const double hi = c->rope_scaling.high_freq_factor > 0 ? c->rope_scaling.high_freq_factor : 4;
        const double lo_wl = orig / lo, hi_wl = orig / hi;

        for (int i = 0; i < half; i++) {
            double wl = 2.0 * M_PI / inv_freq[i];
            if (wl > lo_wl) {
                inv_freq[i] /= f;
            } else if (wl >= hi_wl && hi != lo) {
                double s = (orig / wl - lo) / (hi - lo);
                inv_freq[i] = (1.0 - s) * inv_freq[i] / f + s * inv_freq[i];
            }
        }
        break;
    }
    case ROPE_SCALE_YARN: {
        const double orig = c->rope_scaling.orig_ctx ? c->rope_scaling.orig_ctx : c->n_ctx_train;
        const double bf = c->rope_scaling.beta_fast > 0 ? c->rope_scaling.beta_fast : 32;
        const double bs = c->rope_scaling.beta_slow > 0 ? c->rope_scaling.beta_slow : 1;
        double lo = floor(dim * log(orig / (bf * 2 * M_PI)) / (2 * log(base)));
        double hi = ceil(dim * log(orig / (bs * 2 * M_PI)) / (2 * log(base)));

        if (lo < 0)
            lo = 0;
        if (hi > dim - 1)
            hi = dim - 1;
        if (lo == hi)
            hi += 0.001;
        for (int i = 0; i < half; i++) {
            double ramp = (i - lo) / (hi - lo);
            double extrap = 1.0 - (ramp < 0 ? 0 : ramp > 1 ? 1 : ramp);
            inv_freq[i] = inv_freq[i] / f * (1.0 - extrap) + inv_freq[i] * extrap;
        }
        /* llama.cpp's: attn_factor (default 1) times YaRN's own 0.1 ln(factor) + 1 */
        *mscale = (c->rope_scaling.attn_factor > 0 ? c->rope_scaling.attn_factor : 1.0) *
                  (f > 1 ? 0.1 * log(f) + 1.0 : 1.0);
        break;
    }
    }
}

/* ---- init / free */

static void cpu_free(struct rt_ctx *ctx)
{
    struct cpu *s = ctx->be;

    if (!s)
        return;
    rt_pool_free(s->pool);
    if (s->x8_mem)
        munmap(s->x8_mem, s->x8_len);
    free(s->layers);
    free(s->kt_mem);
    free(s->v_cache);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->x);
    free(s->xn);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->att);
    free(s->o);
    free(s->gate);
    free(s->up);
    free(s->scores);
    free(s->probe);
    free(s);
    ctx->be = NULL;
}

/* bytes of a x b x c3 floats, rounded up to 64 (an error past size_t) */
static int fbytes(int64_t a, int64_t b, int64_t c3, size_t *bytes, struct err *e)
{
    int64_t n;

    if (sz_mul_i64(a, b, &n) || sz_mul_i64(n, c3, &n) || sz_mul_i64(n, 4, &n) ||
        sz_to_size((uint64_t)n, bytes) || *bytes > SIZE_MAX - 64) {
        ERR(e, ERR_LIMIT, "buffer of %lld x %lld x %lld floats is too large", (long long)a,
            (long long)b, (long long)c3);
        return -1;
    }
    *bytes = (*bytes + 63) & ~(size_t)63;
    return 0;
}

static float *falloc(int64_t a, int64_t b, int64_t c3, struct err *e)
{
    size_t bytes;
    float *p;

    if (fbytes(a, b, c3, &bytes, e))
        return NULL;
    /* 64-byte aligned: the matrix kernels read activation rows (rows of a multiple of 16
     * floats in every model we know) with 32-byte loads, and malloc's large blocks start
     * 16 bytes into a page, so every other load split a cache line (F16 prompt tile, one
     * thread, 64 x 2048 x 64 tokens: 82.7 GFLOP/s aligned vs 78.2 at +16 bytes) */
    p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p)
        ERR(e, ERR_NOMEM, "out of memory (%zu bytes)", bytes);
    return p;
}

/* falloc's buffer zeroed, from calloc (fresh pages of a large block are zero already, not
 * written); *mem is the block to free */
static float *zfalloc(int64_t a, int64_t b, int64_t c3, void **mem, struct err *e)
{
    size_t bytes;

    *mem = NULL;
    if (fbytes(a, b, c3, &bytes, e))
        return NULL;
    *mem = calloc(1, bytes + 64);
    if (!*mem) {
        ERR(e, ERR_NOMEM, "out of memory (%zu bytes)", bytes + 64);
        return NULL;
    }
    return (float *)(((uintptr_t)*mem + 63) & ~(uintptr_t)63);
}

/* Scratch for n tokens at once. */
static int scratch(struct rt_ctx *ctx, int n, struct err *e)
{
    struct cpu *s = ctx->be;
    const struct model_config *c = &ctx->rm->c;
    int64_t qd = (int64_t)c->n_head * c->head_dim;
    float **bufs[] = { &s->x, &s->xn, &s->q, &s->k, &s->v, &s->att, &s->o, &s->gate, &s->up };
    int64_t w[] = { c->n_embd, c->n_embd, qd, s->kv_dim, s->kv_dim, qd, c->n_embd, c->n_ff,
                    c->n_ff };

    if (n <= s->cap)
        return 0;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = falloc(n, w[i], 1, e);
        if (!*bufs[i]) {
            s->cap = 0;
            return -1;
        }
    }
    s->cap = n;
    return 0;
}

/* ---- decode's repacked weights
 *
 * Where the kernels have a decode kernel on rows repacked 8 at a time (matmul.h's
 * rt_mat_pack8: AVX2 Q4_K, Q6_K, Q8_0), the matrices are copied so at load, in parallel,
 * into one anonymous mapping, read-only once written.
 * Decode then reads the copy and prompts the file mapping, with the same bits.  The
 * copy is bounded: made only when it fits in half of MemAvailable (so a model larger
 * than memory still runs from its mapping, and so does one whose copy would crowd out
 * its own page cache), and said by apr-run -v; APR_RT_REPACK=0 turns it off.
 * Only for runs that make one-token steps (rt_params.no_repack).
 *
 * TinyLlama Q4_K_M, 2 threads: 155 matrices (Q4_K and Q6_K), 613.3 MiB; apr-run -n 1
 * takes 0.63-0.91 s instead of 0.12 (most of it the kernel faulting in fresh pages; with
 * the Q4_K ones alone, 467.7 MiB, 0.48-0.62 s); Q8_0: 155, 1048.2 MiB, 0.63-1.06 s
 * instead of 0.14.  Huge pages (MADV_HUGEPAGE) made the Q4_K copy's 0.48-0.62 s
 * 0.33-1.10 s (compaction) for no decode gain this machine could measure (+-3%, within
 * a minute's noise).
 */

#define PACK_GROUPS 64   /* groups of 8 rows a pool task */

struct pack_task {
    struct rt_mat *w;
    uint8_t       *dst;      /* w's copy */
    int64_t        g0, g1;   /* the groups of 8 rows this task writes */
};

static void pack_part(void *ctx, int i, int n)
{
    const struct pack_task *t = (const struct pack_task *)ctx + i;

    (void)n;
    rt_mat_pack8(t->w, t->dst, t->g0, t->g1);
}

/* bytes w's copy takes in the mapping: each starts 64-byte aligned */
static size_t pack_span(const struct rt_mat *w)
{
    return (rt_mat_pack8_bytes(w) + 63) & ~(size_t)63;
}

/* one unsigned number from the file at path (the first), or 0 */
static unsigned long long file_u64(const char *path, const char *fmt)
{
    FILE *f = fopen(path, "r");
    char line[256];
    unsigned long long v = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &v) == 1)
            break;
    fclose(f);
    return v;
}

/* bytes of memory available to new allocations: MemAvailable, less where this process's
 * memory cgroup has a limit closer to its use (/proc/self/cgroup: v1's "N:memory:PATH",
 * v2's "0::PATH"); 0 when unknown */
static uint64_t mem_available(void)
{
    uint64_t avail = (uint64_t)file_u64("/proc/meminfo", "MemAvailable: %llu kB") * 1024;
    char line[512], path[640];
    FILE *f = fopen("/proc/self/cgroup", "r");

    while (f && fgets(line, sizeof line, f)) {
        const char *p = strchr(line, ':'), *v1 = NULL, *v2 = NULL;
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "0::", 3))
            v2 = line + 3;
        else if (p && !strncmp(p, ":memory:", 8))
            v1 = p + 8;
        if (!v1 && !v2)
            continue;
        snprintf(path, sizeof path, v2 ? "/sys/fs/cgroup%s/memory.max"
                                        : "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", v2 ? v2 : v1);
        uint64_t max = file_u64(path, "%llu");   /* v2's "max" (no limit) reads as 0 */
        snprintf(path, sizeof path, v2 ? "/sys/fs/cgroup%s/memory.current"
                                        : "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", v2 ? v2 : v1);
        uint64_t cur = file_u64(path, "%llu");
        if (max && cur <= max && max - cur < avail)
            avail = max - cur;
    }
    if (f)
        fclose(f);
    return avail;
}

static int repack_weights(struct rt_ctx *ctx, struct err *e)
{
    struct cpu *s = ctx->be;
    const struct rt_model *rm = ctx->rm;
    const int nl = (int)rm->c.n_layer, per = 7;
    const char *env = getenv("APR_RT_REPACK");
    struct rt_mat **mats;
    struct pack_task *t;
    size_t off = 0;
    int nm = 0, nt = 0;

    s->layers = malloc((size_t)(nl ? nl : 1) * sizeof *s->layers);
    mats = malloc((size_t)(nl * per + 1) * sizeof *mats);
    if (!s->layers || !mats) {
        free(mats);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    memcpy(s->layers, rm->layers, (size_t)nl * sizeof *s->layers);
    s->output = rm->output;
    if (ctx->no_repack || (env && !strcmp(env, "0"))) {
        free(mats);
        return 0;
    }
    /* every matrix, then those with a repacked kernel */
    for (int l = 0; l < nl; l++) {
        struct rt_layer *L = &s->layers[l];
        struct rt_mat *lw[7] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up,
                                 &L->w_down };
        memcpy(mats + (size_t)l * per, lw, sizeof lw);
    }
    mats[nl * per] = &s->output;
    for (int i = 0; i <= nl * per; i++)
        if (rt_mat_pack8_bytes(mats[i])) {
            off += pack_span(mats[i]);
            nt += (int)(((mats[i]->rows + 7) / 8 + PACK_GROUPS - 1) / PACK_GROUPS);
            mats[nm++] = mats[i];
        }
    if (!nm) {
        free(mats);
        return 0;
    }
    uint64_t avail = mem_available();
    if (!avail || off > avail / 2) {
        ctx->repack_skipped = off;
        free(mats);
        return 0;
    }
    void *mem = mmap(NULL, off, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {   /* an optimization only: decode reads the mapping */
        ctx->repack_skipped = off;
        free(mats);
        return 0;
    }
    t = calloc((size_t)nt, sizeof *t);
    if (!t) {
        munmap(mem, off);
        free(mats);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    s->x8_mem = mem;
    s->x8_len = off;
    off = 0;
    nt = 0;
    for (int i = 0; i < nm; i++) {
        struct rt_mat *w = mats[i];
        int64_t ng = (w->rows + 7) / 8;
        for (int64_t g = 0; g < ng; g += PACK_GROUPS)
            t[nt++] = (struct pack_task){ w, (uint8_t *)mem + off, g,
                                          g + PACK_GROUPS < ng ? g + PACK_GROUPS : ng };
        off += pack_span(w);
    }
    rt_pool_run(s->pool, pack_part, t, nt);
    mprotect(mem, s->x8_len, PROT_READ);
    for (int i = 0; i < nt; i++)   /* once every group is written */
        if (t[i].g0 == 0) {
            t[i].w->x8 = t[i].dst;
            t[i].w->x8_stride = rt_mat_pack8_stride(t[i].w);
        }
    ctx->n_repacked = nm;
    ctx->repacked_bytes = s->x8_len;
    free(t);
    free(mats);
    return 0;
}

static int cpu_init(struct rt_ctx *ctx, struct err *e)
{
    const struct model_config *c = &ctx->rm->c;
    const int half = (int)c->n_rot / 2;
    struct cpu *s = calloc(1, sizeof *s);
    double *inv = NULL, mscale;

    if (!s)
        return ERR(e, ERR_NOMEM, "out of memory");
    ctx->be = s;
    s->kv_dim = (int64_t)c->n_head_kv * c->head_dim;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    s->att_wide = strcmp(rt_matmul_isa(), "scalar") != 0;   /* the kernels have AVX2 */
#endif
    if (rt_pool_create(&s->pool, ctx->n_threads, e))
        goto fail;
    s->tb = c->head_dim <= 64 ? 2 * ATT_JB : ATT_JB;
    s->n_tiles = (ctx->n_ctx + s->tb - 1) / s->tb;
    s->kt_cache = zfalloc(c->n_layer, s->kv_dim, s->n_tiles * s->tb, &s->kt_mem, e);
    s->v_cache = s->kt_cache ? falloc(c->n_layer, ctx->n_ctx, s->kv_dim, e) : NULL;
    s->rope_cos = s->v_cache ? falloc(ctx->n_ctx, half, 1, e) : NULL;
    s->rope_sin = s->rope_cos ? falloc(ctx->n_ctx, half, 1, e) : NULL;
    s->scores = s->rope_sin ? falloc((int64_t)ATT_PARTS * ctx->n_threads,
                                     (int64_t)(c->n_head / c->n_head_kv), att_ld(ctx->n_ctx), e)
                            : NULL;
    inv = s->scores ? calloc((size_t)half + 1, sizeof *inv) : NULL;
    if (!inv) {
        ERR(e, ERR_NOMEM, "out of memory for a context of %d positions", ctx->n_ctx);
        goto fail;
    }
    rt_rope_freqs(c, inv, &mscale);
    if (ctx->rm->rope_freqs)    /* GGUF Llama 3.x: the converter's per-pair factors */
        for (int i = 0; i < half; i++)
            inv[i] /= ctx->rm->rope_freqs[i];
    for (int i = 0; i < half; i++) {
        switch (ctx->rope_freq) {
        case RT_ROPE_FREQ_EXACT: break;
        case RT_ROPE_FREQ_F32:   inv[i] = (float)inv[i]; break;
        case RT_ROPE_FREQ_F16:   inv[i] = dq_f16_to_f32(dq_f32_to_f16((float)inv[i])); break;
        case RT_ROPE_FREQ_BF16:  inv[i] = dq_bf16_to_f32(dq_f32_to_bf16((float)inv[i])); break;
        }
    }
    for (int p = 0; p < ctx->n_ctx; p++)
        for (int i = 0; i < half; i++) {
            double a = p * inv[i];
            s->rope_cos[(size_t)p * half + i] = (float)(cos(a) * mscale);
            s->rope_sin[(size_t)p * half + i] = (float)(sin(a) * mscale);
        }
    free(inv);
    if (scratch(ctx, ctx->n_batch < ctx->n_ctx ? ctx->n_batch : ctx->n_ctx, e) ||
        repack_weights(ctx, e))
        goto fail;
    return 0;
fail:
    free(inv);
    cpu_free(ctx);
    return -1;
}

/* ---- elementwise ops */

/* out = x scaled by its RMS (ss: the sum of its squares) times w */
static void rms_apply(float *out, const float *x, const float *w, int64_t n, double ss, double eps)
{
    const float scale = (float)(1.0 / sqrt(ss / (double)n + eps));

    for (int64_t i = 0; i < n; i++)
        out[i] = (x[i] * scale) * w[i];
}

static void rmsnorm(float *out, const float *x, const float *w, int64_t n, double eps)
{
    double ss = 0;

    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    rms_apply(out, x, w, n, ss, eps);
}

/* rmsnorm of n_tok rows of n (x and out [n_tok][n]), four rows at a time: each row's
 * sum of squares is still one chain of double adds in order (so the same bits), but four
 * independent chains overlap where one waits on the add's latency (a prompt's 45 norms
 * of 128 rows of 2048 on one thread: 17.0 ms one row at a time, 6.2 four at a time) */
static void rmsnorm_rows(float *out, const float *x, const float *w, int64_t n_tok, int64_t n,
                         double eps)
{
    int64_t t = 0;

    for (; t + 4 <= n_tok; t += 4) {
        const float *x0 = x + t * n, *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int64_t i = 0; i < n; i++) {
            s0 += (double)x0[i] * x0[i];
            s1 += (double)x1[i] * x1[i];
            s2 += (double)x2[i] * x2[i];
            s3 += (double)x3[i] * x3[i];
        }
        const double ss[4] = { s0, s1, s2, s3 };
        for (int k = 0; k < 4; k++)
            rms_apply(out + (t + k) * n, x + (t + k) * n, w, n, ss[k], eps);
    }
    for (; t < n_tok; t++)
        rmsnorm(out + t * n, x + t * n, w, n, eps);
}

/*
 * Rotate one head of n_rot rotary dims (the rest of the head is left alone) and store it
 * in NEOX order.  NORM: pair i is (2i, 2i+1); NEOX: pair i is (i, i + half).
 */
static void rope_head(float *h, int n_rot, int norm_style, const float *cs, const float *sn,
                      float *tmp)
{
    const int half = n_rot / 2;

    for (int i = 0; i < half; i++) {
        float a = norm_style ? h[2 * i] : h[i];
        float b = norm_style ? h[2 * i + 1] : h[i + half];
        tmp[i] = a * cs[i] - b * sn[i];
        tmp[i + half] = b * cs[i] + a * sn[i];
    }
    memcpy(h, tmp, (size_t)n_rot * sizeof *h);
}

/* q or k rows of one position into Hugging Face order (pair i at i and i + n_rot/2), so
 * that dumps of a GGUF llama (rows permuted for NORM RoPE) and of its HF form compare. */
static void qk_canon(float *dst, const float *src, int64_t n_heads, int64_t hd, uint32_t n_rot,
                     int norm_style)
{
    const int64_t half = n_rot / 2;

    memcpy(dst, src, (size_t)(n_heads * hd) * sizeof *dst);
    if (!norm_style)
        return;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < half; i++) {
            dst[h * hd + i] = src[h * hd + 2 * i];
            dst[h * hd + half + i] = src[h * hd + 2 * i + 1];
        }
}

static float silu(float x)
{
    return x / (1.0f + expf(-x));
}

/* ---- hooks */

static int want(const struct rt_ctx *ctx, enum rt_stage st, int layer)
{
    const struct rt_hook *h = &ctx->hook;

    if (!h->fn || !(h->stages & (1u << st)))
        return 0;
    if (layer == RT_LAYER_MODEL)
        return 1;
    return layer >= h->layer_lo && layer < h->layer_hi;
}

#define STAGE(st, layer, x, rows, cols)                                                      \
    do {                                                                                     \
        if (want(ctx, (st), (layer)) &&                                                      \
            ctx->hook.fn(ctx->hook.ud, (st), (layer), (x), (rows), (cols), e))               \
            return -1;                                                                       \
    } while (0)

static float *probe(struct cpu *s, size_t n, struct err *e)
{
    if (n > s->probe_n) {
        free(s->probe);
        s->probe_n = 0;
        s->probe = malloc(n * sizeof *s->probe);
        if (!s->probe) {
            ERR(e, ERR_NOMEM, "out of memory for a stage dump (%zu floats)", n);
            return NULL;
        }
        s->probe_n = n;
    }
    return s->probe;
}

/* ---- attention */

struct att_job {
    struct rt_ctx *ctx;
    int layer, n, pos0;
    float *scores_out, *probs_out;   /* hooks: [n][n_head][pos0 + n] or NULL */
};

/* 4 f32 lanes (GNU vector extension: SSE2 on x86-64, NEON on arm64) */
typedef float att_v4 __attribute__((vector_size(16)));

static inline att_v4 ld4(const float *p)
{
    att_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/*
 * out[i] += sum over positions j (in order) of w[j] * v_j[i] (v_j = v + j * kvd), the
 * accumulator loaded from out and stored back (so positions in blocks, out zeroed first,
 * are the one chain 0 + w[0] v_0[i] + ...: the same bits).  Eight
 * dims at a time in two 4-lane vectors (GNU vector extension: SSE2 on x86-64, NEON on
 * arm64; wider ones spill without -mavx), each lane the same left-to-right sum as the
 * scalar loop, so the same bits.
 */

static void att_values(const float *w, const float *v, size_t kvd, int64_t hd, int n,
                       float *out)
{
    int64_t i0 = 0;

    for (; i0 + 8 <= hd; i0 += 8) {
        att_v4 a0, a1, v0, v1;
        memcpy(&a0, out + i0, sizeof a0);
        memcpy(&a1, out + i0 + 4, sizeof a1);
        for (int j = 0; j < n; j++) {
            const float *vj = v + (size_t)j * kvd + (size_t)i0;
            memcpy(&v0, vj, sizeof v0);
            memcpy(&v1, vj + 4, sizeof v1);
            a0 += w[j] * v0;
            a1 += w[j] * v1;
        }
        memcpy(out + i0, &a0, sizeof a0);
        memcpy(out + i0 + 4, &a1, sizeof a1);
    }
    for (; i0 < hd; i0++) {
        float acc = out[i0];
        for (int j = 0; j < n; j++)
            acc += w[j] * v[(size_t)j * kvd + (size_t)i0];
        out[i0] = acc;
    }
}

/*
 * Scores sc[0..p] (p = pos0 + t) of the queries (t, h0 .. h0 + nq - 1), rows lds apart
 * -> softmax probabilities, in place; the hooks' copies of both.  Each row's max and sum
 * are one chain in position order (so the same bits for any nq): eight rows at a time,
 * a row a lane of two 4-lane vectors (lanes past nq repeat a row, unused), where one row
 * at a time waited on the add's (and the compare's) latency at every position.
 * Subtraction and division are elementwise, four at a time.
 */
typedef int32_t att_i4 __attribute__((vector_size(16)));

/* a hook's copy of row x[0..p] into dst, zeros up to n_kv */
static void att_hook_row(float *dst, const float *x, int p, int64_t n_kv)
{
    memcpy(dst, x, (size_t)(p + 1) * sizeof *dst);
    memset(dst + p + 1, 0, (size_t)(n_kv - p - 1) * sizeof *dst);
}

/* position jj of the rows r[0..7], row u in lane u % 4 of *x0 (u < 4) or *x1 */
static inline void att_col8(const float *const r[8], int jj, att_v4 *x0, att_v4 *x1)
{
    *x0 = (att_v4){ r[0][jj], r[1][jj], r[2][jj], r[3][jj] };
    *x1 = (att_v4){ r[4][jj], r[5][jj], r[6][jj], r[7][jj] };
}

static void att_softmax(const struct att_job *j, int t, int h0, int nq, int64_t nh, float *sc,
                        size_t lds)
{
    const int p = j->pos0 + t;
    const int64_t n_kv = (int64_t)j->pos0 + j->n;

    for (int u0 = 0; u0 < nq; u0 += 8) {
        const int m = nq - u0 < 8 ? nq - u0 : 8;
        const float *r[8];
        float mx[8], sum[8];
        att_v4 m0 = { -INFINITY, -INFINITY, -INFINITY, -INFINITY }, m1 = m0;
        att_v4 s0 = { 0 }, s1 = s0;

        for (int u = 0; u < 8; u++)
            r[u] = sc + (size_t)(u0 + (u < m ? u : 0)) * lds;
        for (int jj = 0; jj <= p; jj++) {   /* mx = x > mx ? x : mx, lane by lane */
            att_v4 x0, x1;
            att_col8(r, jj, &x0, &x1);
            const att_i4 g0 = x0 > m0, g1 = x1 > m1;
            m0 = (att_v4)(((att_i4)x0 & g0) | ((att_i4)m0 & ~g0));
            m1 = (att_v4)(((att_i4)x1 & g1) | ((att_i4)m1 & ~g1));
        }
        memcpy(mx, &m0, sizeof m0);
        memcpy(mx + 4, &m1, sizeof m1);
        for (int u = 0; u < m; u++) {
            float *x = sc + (size_t)(u0 + u) * lds;
            const att_v4 mv = { mx[u], mx[u], mx[u], mx[u] };
            int jj = 0;
            if (j->scores_out)
                att_hook_row(j->scores_out + ((size_t)t * nh + (size_t)(h0 + u0 + u)) * n_kv,
                             x, p, n_kv);
            for (; jj + 4 <= p + 1; jj += 4) {
                const att_v4 d = ld4(x + jj) - mv;
                memcpy(x + jj, &d, sizeof d);
            }
            for (; jj <= p; jj++)
                x[jj] -= mx[u];
            rt_expf_n(x, p + 1);   /* expf's bits, 8 at a time */
        }
        for (int jj = 0; jj <= p; jj++) {
            att_v4 x0, x1;
            att_col8(r, jj, &x0, &x1);
            s0 += x0;
            s1 += x1;
        }
        memcpy(sum, &s0, sizeof s0);
        memcpy(sum + 4, &s1, sizeof s1);
        for (int u = 0; u < m; u++) {
            float *x = sc + (size_t)(u0 + u) * lds;
            const att_v4 sv = { sum[u], sum[u], sum[u], sum[u] };
            int jj = 0;
            for (; jj + 4 <= p + 1; jj += 4) {
                const att_v4 d = ld4(x + jj) / sv;
                memcpy(x + jj, &d, sizeof d);
            }
            for (; jj <= p; jj++)
                x[jj] /= sum[u];
            if (j->probs_out)
                att_hook_row(j->probs_out + ((size_t)t * nh + (size_t)(h0 + u0 + u)) * n_kv,
                             x, p, n_kv);
        }
    }
}

/*
 * Every path (prefill, decode, few kv heads) runs these kernels, the same operations per
 * score and per output, so a prompt has the bits of decoding its tokens one by one.
 * Scores: the K cache is transposed (a tile: [dim][position]), so ATT_JB positions of
 * one query are ATT_JB lanes of vertical vector operations (acc += q[i] * kt[i][j..],
 * each lane a left-to-right sum over i, then times scale), up to att_ld(p + 1), inside
 * the tile of position p.  Lanes past p read zeros, K of later tokens of the chunk or
 * stale K of a rolled-back context: their scores are computed and never read
 * (att_softmax and the hooks read sc[0..p], the values w[0..p]).  Values: 32 dims per
 * pass over the positions (8 accumulators), each lane att_values' sum over j.
 */

static void att_scores_t4(const float *q, const float *kt, size_t ld, int64_t hd, int n,
                          float scale, float *sc)
{
    /* eight named accumulators: compilers keep an array of vectors in memory */
    for (int j0 = 0; j0 < n; j0 += ATT_JB) {
        att_v4 a0 = { 0 }, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int64_t i = 0; i < hd; i++) {
            const float *kr = kt + (size_t)i * ld + j0;
            const float qi = q[i];
            a0 += qi * ld4(kr), a1 += qi * ld4(kr + 4), a2 += qi * ld4(kr + 8);
            a3 += qi * ld4(kr + 12), a4 += qi * ld4(kr + 16), a5 += qi * ld4(kr + 20);
            a6 += qi * ld4(kr + 24), a7 += qi * ld4(kr + 28);
        }
        const att_v4 r[8] = { a0 * scale, a1 * scale, a2 * scale, a3 * scale,
                              a4 * scale, a5 * scale, a6 * scale, a7 * scale };
        memcpy(sc + j0, r, sizeof r);
    }
}

static void att_values_w4(const float *w, const float *v, size_t kvd, int64_t hd, int n,
                          float *out)
{
    int64_t i0 = 0;

    for (; i0 + 32 <= hd; i0 += 32) {
        att_v4 a0 = ld4(out + i0), a1 = ld4(out + i0 + 4), a2 = ld4(out + i0 + 8);
        att_v4 a3 = ld4(out + i0 + 12), a4 = ld4(out + i0 + 16), a5 = ld4(out + i0 + 20);
        att_v4 a6 = ld4(out + i0 + 24), a7 = ld4(out + i0 + 28);
        for (int j = 0; j < n; j++) {
            const float *vj = v + (size_t)j * kvd + (size_t)i0;
            const float wj = w[j];
            a0 += wj * ld4(vj), a1 += wj * ld4(vj + 4), a2 += wj * ld4(vj + 8);
            a3 += wj * ld4(vj + 12), a4 += wj * ld4(vj + 16), a5 += wj * ld4(vj + 20);
            a6 += wj * ld4(vj + 24), a7 += wj * ld4(vj + 28);
        }
        const att_v4 r[8] = { a0, a1, a2, a3, a4, a5, a6, a7 };
        memcpy(out + i0, r, sizeof r);
    }
    if (i0 < hd)
        att_values(w, v + i0, kvd, hd - i0, n, out + i0);
}

/* The same two loops with 8-lane vectors where the CPU has AVX2 (the 4-lane ones are
 * SSE: half the work per instruction): a lane is still one position's (or one dim's) sum
 * in the same order, mul then add, so the same bits. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
typedef float att_v8 __attribute__((vector_size(32)));

/* eight accumulators (64 positions, or 64 dims) where there are that many: four 8-lane
 * chains wait on the add's latency */
#define AV8_LD(d, p) memcpy(&(d), (p), sizeof(d))
#define AV8_STEP4(s, p, a0, a1, a2, a3)                                                    \
    do {                                                                                    \
        att_v8 t0_, t1_, t2_, t3_;                                                          \
        AV8_LD(t0_, (p)), AV8_LD(t1_, (p) + 8), AV8_LD(t2_, (p) + 16), AV8_LD(t3_, (p) + 24); \
        a0 += (s) * t0_, a1 += (s) * t1_, a2 += (s) * t2_, a3 += (s) * t3_;                 \
    } while (0)

__attribute__((target("avx2")))
static void att_scores_t8(const float *q, const float *kt, size_t ld, int64_t hd, int n,
                          float scale, float *sc)
{
    int j0 = 0;

    for (; j0 + ATT_JB < n; j0 += 2 * ATT_JB) {   /* two blocks, both inside att_ld(n) */
        att_v8 a0 = { 0 }, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int64_t i = 0; i < hd; i++) {
            const float *kr = kt + (size_t)i * ld + j0;
            const float qi = q[i];
            AV8_STEP4(qi, kr, a0, a1, a2, a3);
            AV8_STEP4(qi, kr + 32, a4, a5, a6, a7);
        }
        const att_v8 r[8] = { a0 * scale, a1 * scale, a2 * scale, a3 * scale,
                              a4 * scale, a5 * scale, a6 * scale, a7 * scale };
        memcpy(sc + j0, r, sizeof r);
    }
    for (; j0 < n; j0 += ATT_JB) {
        att_v8 a0 = { 0 }, a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < hd; i++)
            AV8_STEP4(q[i], kt + (size_t)i * ld + j0, a0, a1, a2, a3);
        const att_v8 r[4] = { a0 * scale, a1 * scale, a2 * scale, a3 * scale };
        memcpy(sc + j0, r, sizeof r);
    }
}

__attribute__((target("avx2")))
static void att_values_w8(const float *w, const float *v, size_t kvd, int64_t hd, int n,
                          float *out)
{
    int64_t i0 = 0;

    for (; i0 + 64 <= hd; i0 += 64) {
        att_v8 a0, a1, a2, a3, a4, a5, a6, a7;
        AV8_LD(a0, out + i0), AV8_LD(a1, out + i0 + 8), AV8_LD(a2, out + i0 + 16);
        AV8_LD(a3, out + i0 + 24), AV8_LD(a4, out + i0 + 32), AV8_LD(a5, out + i0 + 40);
        AV8_LD(a6, out + i0 + 48), AV8_LD(a7, out + i0 + 56);
        for (int j = 0; j < n; j++) {
            const float *vj = v + (size_t)j * kvd + (size_t)i0;
            const float wj = w[j];
            AV8_STEP4(wj, vj, a0, a1, a2, a3);
            AV8_STEP4(wj, vj + 32, a4, a5, a6, a7);
        }
        const att_v8 r[8] = { a0, a1, a2, a3, a4, a5, a6, a7 };
        memcpy(out + i0, r, sizeof r);
    }
    for (; i0 + 32 <= hd; i0 += 32) {
        att_v8 a0, a1, a2, a3;
        AV8_LD(a0, out + i0), AV8_LD(a1, out + i0 + 8), AV8_LD(a2, out + i0 + 16);
        AV8_LD(a3, out + i0 + 24);
        for (int j = 0; j < n; j++)
            AV8_STEP4(w[j], v + (size_t)j * kvd + (size_t)i0, a0, a1, a2, a3);
        const att_v8 r[4] = { a0, a1, a2, a3 };
        memcpy(out + i0, r, sizeof r);
    }
    if (i0 < hd)
        att_values(w, v + i0, kvd, hd - i0, n, out + i0);
}
#endif

static void att_scores_t(int wide, const float *q, const float *kt, size_t ld, int64_t hd,
                         int n, float scale, float *sc)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (wide) {
        att_scores_t8(q, kt, ld, hd, n, scale, sc);
        return;
    }
#endif
    (void)wide;
    att_scores_t4(q, kt, ld, hd, n, scale, sc);
}

static void att_values_w(int wide, const float *w, const float *v, size_t kvd, int64_t hd,
                         int n, float *out)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (wide) {
        att_values_w8(w, v, kvd, hd, n, out);
        return;
    }
#endif
    (void)wide;
    att_values_w4(w, v, kvd, hd, n, out);
}

/*
 * Query heads h0 .. h0 + nq - 1 (one kv head's) of token t: positions in blocks of a K
 * tile (the tile, hd x tb, or the V of its positions, tb x hd, stays in L1) with every
 * head on a block before the next, so the group reads its K and V from memory once, not
 * once per head.  Per score and per output the same operations in the same
 * order (scores are per lane, values accumulate across blocks through out), so the same
 * bits as one head over all positions.  sc: nq rows of att_ld(n_ctx).
 */
static void att_heads(const struct att_job *j, int t, int64_t h0, int nq, float *sc)
{
    struct rt_ctx *ctx = j->ctx;
    struct cpu *s = ctx->be;
    const struct model_config *c = &ctx->rm->c;
    const int64_t hd = c->head_dim, nh = c->n_head, nkv = c->n_head_kv;
    const int64_t g = h0 / (nh / nkv), lds = att_ld(ctx->n_ctx);
    const int n = j->pos0 + t + 1, blk = s->tb;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t tsz = (size_t)(hd * blk);   /* floats a tile */
    const float *kt = s->kt_cache + ((size_t)j->layer * nkv + (size_t)g) * s->n_tiles * tsz;
    const float *vc = s->v_cache + ((size_t)j->layer * nkv + (size_t)g) * ctx->n_ctx * hd;
    const float *q = s->q + ((size_t)t * nh + (size_t)h0) * hd;
    float *out = s->att + ((size_t)t * nh + (size_t)h0) * hd;

    for (int j0 = 0; j0 < n; j0 += blk) {
        for (int u = 0; u < nq; u++)
            att_scores_t(s->att_wide, q + u * hd, kt + (size_t)(j0 / blk) * tsz, (size_t)blk,
                         hd, n - j0 < blk ? n - j0 : blk, scale, sc + u * lds + j0);
    }
    att_softmax(j, t, (int)h0, nq, nh, sc, (size_t)lds);
    memset(out, 0, (size_t)(nq * hd) * sizeof *out);
    for (int j0 = 0; j0 < n; j0 += blk) {
        for (int u = 0; u < nq; u++)
            att_values_w(s->att_wide, sc + u * lds + j0, vc + (size_t)j0 * hd, (size_t)hd, hd,
                         n - j0 < blk ? n - j0 : blk, out + u * hd);
    }
}

/* part's rows of s->scores: a GQA group's, att_ld(n_ctx) each */
static float *att_part_scores(const struct att_job *j, int part)
{
    const struct model_config *c = &j->ctx->rm->c;
    const struct cpu *s = j->ctx->be;

    return s->scores + (size_t)part * (c->n_head / c->n_head_kv) * att_ld(j->ctx->n_ctx);
}

/* Few kv heads (fewer than threads): parts of the (token, head) pairs, one at a time. */
static void att_task(void *arg, int part, int n_parts)
{
    struct att_job *j = arg;
    const int64_t nh = j->ctx->rm->c.n_head, total = (int64_t)j->n * nh;
    const int64_t lo = total * part / n_parts, hi = total * (part + 1) / n_parts;
    float *sc = att_part_scores(j, part);

    for (int64_t it = lo; it < hi; it++)
        att_heads(j, (int)(it / nh), it % nh, 1, sc);
}

/* Prefill (n > 1 tokens): parts take tokens t = part, part + n_parts, ... (the causal
 * work grows with t, so interleaving balances it), ATT_PARTS per thread, dynamically;
 * a token's query heads a kv head's group at a time. */
static void att_prefill_task(void *arg, int part, int n_parts)
{
    struct att_job *j = arg;
    const struct model_config *c = &j->ctx->rm->c;
    const int group = (int)(c->n_head / c->n_head_kv);
    float *sc = att_part_scores(j, part);

    for (int t = part; t < j->n; t += n_parts)
        for (int64_t h = 0; h < (int64_t)c->n_head; h += group)
            att_heads(j, t, h, group, sc);
}

/* Decode (one query): one kv head per part, every query head of its group. */
static void att_dec_task(void *arg, int part, int n_parts)
{
    struct att_job *j = arg;
    const struct model_config *c = &j->ctx->rm->c;
    const int group = (int)(c->n_head / c->n_head_kv);
    float *sc = att_part_scores(j, part);

    for (int64_t g = part; g < (int64_t)c->n_head_kv; g += n_parts)
        att_heads(j, 0, g * group, group, sc);
}

/* the attention of job's n queries of its layer, s->q -> s->att */
static void att_run(struct att_job *job)
{
    struct rt_ctx *ctx = job->ctx;
    struct cpu *s = ctx->be;
    const struct model_config *c = &ctx->rm->c;
    const int n = job->n, pos0 = job->pos0;
    /* a small attention (decoding a short context) runs inline: waking the pool costs
     * more than the work */
    const int64_t work = (int64_t)n * c->n_head * (pos0 + n) * c->head_dim;
    const int parts = work < 65536 ? 1 : ctx->n_threads;

    if (n > 1) {
        int np = parts * ATT_PARTS < n ? parts * ATT_PARTS : n;
        rt_pool_run(parts > 1 ? s->pool : NULL, att_prefill_task, job, np);
    } else if ((int)c->n_head_kv >= ctx->n_threads) {
        /* kv heads as parts (4 in TinyLlama): at most the rows of s->scores */
        int np = (int)c->n_head_kv < ATT_PARTS * ctx->n_threads ? (int)c->n_head_kv
                                                                 : ATT_PARTS * ctx->n_threads;
        rt_pool_run(work < 8192 ? NULL : s->pool, att_dec_task, job, np);
    } else {
        rt_pool_run(parts > 1 ? s->pool : NULL, att_task, job, parts);
    }
}

/* SwiGLU, gate = silu(gate) * up over m values (with `split`, silu only: a hook reads
 * silu(gate) before the product).  A prompt's m is large: the pool's threads take parts
 * of it (elementwise, so the same bits). */
struct swiglu_job {
    float       *g;
    const float *u;
    int64_t      m;
    int          split;
};

static void swiglu_part(void *arg, int part, int n_parts)
{
    const struct swiglu_job *j = arg;
    const int64_t lo = j->m * part / n_parts, hi = j->m * (part + 1) / n_parts;

    if (!j->split) {
        rt_silu_mul(j->g + lo, j->u + lo, hi - lo);
        return;
    }
    for (int64_t i = lo; i < hi; i++)
        j->g[i] = silu(j->g[i]);
}

static void swiglu(struct rt_ctx *ctx, int64_t m, int split)
{
    struct cpu *s = ctx->be;
    struct swiglu_job job = { s->gate, s->up, m, split };
    const int parts = m < 65536 ? 1 : 4 * ctx->n_threads;

    rt_pool_run(parts > 1 ? s->pool : NULL, swiglu_part, &job, parts);
}

/* rt_matmul_epi's epilogue for gate and up: SwiGLU on rows [r0, r1) of every token, the
 * same operation per value as swiglu_part */
struct glu_epi {
    float       *g;
    const float *u;
    int64_t      ff, n;
};

static void glu_rows(void *ud, int64_t r0, int64_t r1)
{
    const struct glu_epi *j = ud;

    for (int64_t t = 0; t < j->n; t++)
        rt_silu_mul(j->g + t * j->ff + r0, j->u + t * j->ff + r0, r1 - r0);
}

/* ---- one chunk of tokens through the whole model */

/* wa, wb (and wc unless NULL) times the same x: one activation conversion, one pool job */
static int matmul3(struct cpu *s, const struct rt_mat *wa, const struct rt_mat *wb,
                   const struct rt_mat *wc, const float *x, int n, float *ya, float *yb,
                   float *yc, struct err *e)
{
    const struct rt_mat *w[3] = { wa, wb, wc };
    float *y[3] = { ya, yb, yc };

    return rt_matmul_n(s->pool, w, wc ? 3 : 2, x, n, y, e);
}

/* the feed-forward half of layer l (L) on `rows` rows of s->x, in place */
static int ffn_block(struct rt_ctx *ctx, const struct rt_layer *L, int l, int rows,
                     struct err *e)
{
    struct cpu *s = ctx->be;
    const struct model_config *c = &ctx->rm->c;
    const int64_t embd = c->n_embd, ff = c->n_ff;

    rmsnorm_rows(s->xn, s->x, L->ffn_norm, rows, embd, c->norm_eps);
    STAGE(RT_ST_FFN_NORM, l, s->xn, rows, embd);
    if (want(ctx, RT_ST_FFN_GATE, l) || want(ctx, RT_ST_FFN_UP, l) ||
        want(ctx, RT_ST_FFN_SILU, l) || L->w_gate.rows != L->w_up.rows) {
        if (matmul3(s, &L->w_gate, &L->w_up, NULL, s->xn, rows, s->gate, s->up, NULL, e))
            return -1;
        STAGE(RT_ST_FFN_GATE, l, s->gate, rows, ff);
        STAGE(RT_ST_FFN_UP, l, s->up, rows, ff);
        swiglu(ctx, rows * ff, want(ctx, RT_ST_FFN_SILU, l));
    } else {
        /* SwiGLU inside the gate and up job, by rows: no pass on one thread after it */
        const struct rt_mat *w[2] = { &L->w_gate, &L->w_up };
        float *y[2] = { s->gate, s->up };
        struct glu_epi ge = { s->gate, s->up, ff, rows };
        if (rt_matmul_epi(s->pool, w, 2, s->xn, rows, y, glu_rows, &ge, e))
            return -1;
    }
    STAGE(RT_ST_FFN_SILU, l, s->gate, rows, ff);
    if (want(ctx, RT_ST_FFN_SILU, l))
        for (int64_t i = 0; i < rows * ff; i++)
            s->gate[i] *= s->up[i];
    STAGE(RT_ST_FFN_SWIGL, l, s->gate, rows, ff);
    if (rt_matmul(s->pool, &L->w_down, s->gate, rows, s->o, e))
        return -1;
    STAGE(RT_ST_FFN_OUT, l, s->o, rows, embd);
    for (int64_t i = 0; i < rows * embd; i++)
        s->x[i] += s->o[i];
    STAGE(RT_ST_POST_FFN_RESIDUAL, l, s->x, rows, embd);
    return 0;
}

static int forward_chunk(struct rt_ctx *ctx, const int32_t *tok, int n, int pos0,
                         float *logits, unsigned flags, struct err *e)
{
    struct cpu *s = ctx->be;
    const struct rt_model *rm = ctx->rm;
    const struct model_config *c = &rm->c;
    const int64_t embd = c->n_embd, hd = c->head_dim, nh = c->n_head, nkv = c->n_head_kv;
    const int64_t qd = nh * hd, kvd = s->kv_dim;
    const int half = (int)c->n_rot / 2, norm_style = c->rope_style == ROPE_NORM;
    float tmp[1024];   /* a rotated head; n_rot <= head_dim is checked below */
    /* Rows past the last layer's K and V: all n with every logit or a hook (stage dumps
     * read every row), else only what the caller reads: the last row, none without
     * logits.  A row's values never depend on the other rows of its chunk (attention
     * and every kernel give a row the same bits at any count), so the same bits. */
    const int m = ctx->hook.fn || c->n_layer == 0 || (logits && (flags & RT_EVAL_ALL_LOGITS)) ? n
                  : logits ? 1 : 0;

    if (c->n_rot > sizeof tmp / sizeof tmp[0])
        return ERR(e, ERR_UNSUPPORTED, "rope dimensions %u: at most %zu", c->n_rot,
                   sizeof tmp / sizeof tmp[0]);

    for (int t = 0; t < n; t++)
        rt_mat_row(&rm->tok_embd, tok[t], s->x + (size_t)t * embd);
    STAGE(RT_ST_EMBEDDING, RT_LAYER_MODEL, s->x, n, embd);

    for (int l = 0; l < (int)c->n_layer; l++) {
        const struct rt_layer *L = &s->layers[l];
        float *kt = s->kt_cache + (size_t)l * kvd * s->n_tiles * s->tb;
        float *vc = s->v_cache + ((size_t)l * nkv * ctx->n_ctx + pos0) * hd;
        struct att_job job = { ctx, l, n, pos0, NULL, NULL };

        /* attention */
        rmsnorm_rows(s->xn, s->x, L->attn_norm, n, embd, c->norm_eps);
        STAGE(RT_ST_ATTN_NORM, l, s->xn, n, embd);
        if (matmul3(s, &L->wq, &L->wk, &L->wv, s->xn, n, s->q, s->k, s->v, e))
            return -1;
        for (int pass = 0; pass < 2; pass++) {
            enum rt_stage st = pass ? RT_ST_QKV_BIAS : RT_ST_QKV_MATMUL;
            if (pass) {
                if (!L->bq)
                    break;
                for (int t = 0; t < n; t++) {
                    for (int64_t i = 0; i < qd; i++)
                        s->q[t * qd + i] += L->bq[i];
                    for (int64_t i = 0; i < kvd; i++) {
                        s->k[t * kvd + i] += L->bk[i];
                        s->v[t * kvd + i] += L->bv[i];
                    }
                }
            }
            if (want(ctx, st, l)) {
                const int64_t w = qd + 2 * kvd;
                float *pr = probe(s, (size_t)n * w, e);
                if (!pr)
                    return -1;
                for (int t = 0; t < n; t++) {
                    qk_canon(pr + t * w, s->q + t * qd, nh, hd, c->n_rot, norm_style);
                    qk_canon(pr + t * w + qd, s->k + t * kvd, nkv, hd, c->n_rot, norm_style);
                    memcpy(pr + t * w + qd + kvd, s->v + t * kvd, (size_t)kvd * 4);
                }
                STAGE(st, l, pr, n, w);
            }
        }
        for (int t = 0; t < n; t++) {
            const float *cs = s->rope_cos + (size_t)(pos0 + t) * half;
            const float *sn = s->rope_sin + (size_t)(pos0 + t) * half;
            for (int64_t h = 0; h < nh; h++) {
                float *qh = s->q + t * qd + h * hd;
                if (L->q_norm)
                    rmsnorm(qh, qh, L->q_norm, hd, c->norm_eps);
                rope_head(qh, (int)c->n_rot, norm_style, cs, sn, tmp);
            }
            for (int64_t h = 0; h < nkv; h++) {
                float *kh = s->k + t * kvd + h * hd;
                if (L->k_norm)
                    rmsnorm(kh, kh, L->k_norm, hd, c->norm_eps);
                rope_head(kh, (int)c->n_rot, norm_style, cs, sn, tmp);
            }
        }
        STAGE(RT_ST_Q_POST_ROPE, l, s->q, n, qd);
        STAGE(RT_ST_K_POST_ROPE, l, s->k, n, kvd);
        for (int t = 0; t < n; t++) {   /* K transposed: column (pos0 + t) % tb of a tile */
            const int64_t p = pos0 + t, tb = s->tb;
            float *col = kt + (size_t)(p / tb) * hd * tb + (size_t)(p % tb);
            for (int64_t g = 0; g < nkv; g++)
                for (int64_t i = 0; i < hd; i++)
                    col[((size_t)g * s->n_tiles * hd + (size_t)i) * tb] = s->k[t * kvd + g * hd + i];
        }
        for (int64_t g = 0; g < nkv; g++)   /* V by kv head: rows of hd, positions pos0.. */
            for (int t = 0; t < n; t++)
                memcpy(vc + ((size_t)g * ctx->n_ctx + t) * hd, s->v + t * kvd + g * hd,
                       (size_t)hd * sizeof *vc);
        if (l == (int)c->n_layer - 1 && m < n) {
            /* the last layer past its K and V: only the rows the caller reads */
            if (m == 0)
                return 0;
            memmove(s->q, s->q + (size_t)(n - 1) * qd, (size_t)qd * sizeof *s->q);
            memmove(s->x, s->x + (size_t)(n - 1) * embd, (size_t)embd * sizeof *s->x);
            job.n = 1;
            job.pos0 = pos0 + n - 1;
        }

        if (want(ctx, RT_ST_ATTN_SCORES, l) || want(ctx, RT_ST_ATTN_SOFTMAX, l)) {
            size_t ns = (size_t)n * nh * (size_t)(pos0 + n);
            float *pr = probe(s, 2 * ns, e);
            if (!pr)
                return -1;
            job.scores_out = pr;
            job.probs_out = pr + ns;
        }
        att_run(&job);
        const int rows = job.n;   /* n, or 1 past the last layer's K and V */
        if (job.scores_out) {
            STAGE(RT_ST_ATTN_SCORES, l, job.scores_out, n, nh * (int64_t)(pos0 + n));
            STAGE(RT_ST_ATTN_SOFTMAX, l, job.probs_out, n, nh * (int64_t)(pos0 + n));
        }
        STAGE(RT_ST_ATTENTION, l, s->att, rows, qd);
        if (rt_matmul(s->pool, &L->wo, s->att, rows, s->o, e))
            return -1;
        STAGE(RT_ST_ATTN_OUT, l, s->o, rows, embd);
        for (int64_t i = 0; i < rows * embd; i++)
            s->x[i] += s->o[i];
        STAGE(RT_ST_POST_ATTN_RESIDUAL, l, s->x, rows, embd);

        if (ffn_block(ctx, L, l, rows, e))
            return -1;
    }

    rmsnorm_rows(s->xn, s->x, rm->output_norm, m, embd, c->norm_eps);
    STAGE(RT_ST_FINAL_NORM, RT_LAYER_MODEL, s->xn, m, embd);
    if (want(ctx, RT_ST_LM_HEAD, RT_LAYER_MODEL)) {
        float *pr = probe(s, (size_t)m * c->n_vocab, e);
        if (!pr || rt_matmul(s->pool, &s->output, s->xn, m, pr, e))
            return -1;
        STAGE(RT_ST_LM_HEAD, RT_LAYER_MODEL, pr, m, c->n_vocab);
    }
    if (!logits)
        return 0;
    if (flags & RT_EVAL_ALL_LOGITS)
        return rt_matmul(s->pool, &s->output, s->xn, n, logits, e);
    return rt_matmul(s->pool, &s->output, s->xn + (size_t)(m - 1) * embd, 1, logits, e);
}

static int cpu_eval(struct rt_ctx *ctx, const int32_t *tok, int n, int pos0, float *logits,
                    unsigned flags, struct err *e)
{
    const int64_t nv = ctx->rm->c.n_vocab;
    /* with a hook, one pass, so that every stage is reported once for all positions */
    const int chunk = ctx->hook.fn ? n : ctx->n_batch;

    if (scratch(ctx, n < chunk ? n : chunk, e))
        return -1;
    for (int done = 0; done < n;) {
        int m = n - done < chunk ? n - done : chunk;
        int last = done + m == n;
        float *lo = NULL;

        if (logits && (flags & RT_EVAL_ALL_LOGITS))
            lo = logits + (size_t)done * nv;
        else if (logits && last)
            lo = logits;
        if (forward_chunk(ctx, tok + done, m, pos0 + done, lo, flags, e))
            return -1;
        done += m;
    }
    return 0;
}

const struct rt_backend rt_backend_cpu = { "cpu", cpu_init, cpu_eval, cpu_free };
