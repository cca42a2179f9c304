/*
 * rt_cuda.cu - the CUDA backend: runtime/forward.c's forward pass on a GPU.
 *
 * The structure, order of stages and numerics mirror forward.c's forward_chunk: f32
 * activations; RMSNorm sums in double; RoPE from cos/sin tables built on the host in
 * double exactly as forward.c builds them, pairs stored in NEOX order; softmax in f32
 * with the maximum subtracted, probabilities normalised before the weighted sum; KV
 * cache f32 [n_layer][n_ctx][kv_dim].  What differs is only the order of summation
 * inside matrix products and attention, which the parity gate measures.
 *
 * Decode (one token, no stage hook) runs as a CUDA graph captured at the first decode
 * step and replayed: tokens and positions are read from device memory by the kernels.
 */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_cuda.h"
#include "rtc_ops.h"
#include "../../dequant/cuda/cu.h"
#include "../../dequant/cuda/dqc.h"

extern "C" {
#include "../../dequant/dq.h"
#include "../../formats/dtype.h"
}

#define MAX_ALLOCS 4096

struct cu_layer {
    struct rtc_w wq, wk, wv, wo, wg, wu, wd;
    float *attn_norm, *ffn_norm, *bq, *bk, *bv, *q_norm, *k_norm;
};

struct cuda_be {
    struct cu_info info;
    int fault;
    cudaStream_t st;
    cublasHandle_t blas;
    void *allocs[MAX_ALLOCS];
    int n_allocs;
    struct cu_layer *L;
    struct rtc_w tok_embd, output;
    float *output_norm;
    int64_t kv_dim;
    float *kc, *vc, *rope_cos, *rope_sin;
    int cap;
    float *x, *xn, *q, *k, *v, *att, *o, *gate, *up, *logits;
    float *scratch;
    int64_t scratch_floats;
    float *probe_d;                    /* hooks: scores + probs on the device */
    size_t probe_d_n;
    float *probe_h;
    size_t probe_h_n;
    int32_t *d_tok, *d_pos;
    void *xq[4];                       /* quantized activation per RTC_ACT_* kind (decode) */
    const float *xq_src[4];            /* what each holds, valid while xq_gen[k] == gen */
    unsigned xq_gen[4], gen;
    cublasHandle_t blas_tc;            /* tensor-core prompt path (default math mode) */
    int exact;                         /* 1: prompts through exact f32 SGEMM (parity, dumps) */
    int int8_off;                      /* APR_CUDA_GEMV=f32: decode on the f32 kernels */
    cudaGraphExec_t graph;
    int graph_state;                   /* 0 none, 1 captured, -1 capture failed: run eagerly */
    uint64_t weight_bytes;
    char notes[1024];
};

static const char *backend_names[64] = {
    "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:4", "cuda:5", "cuda:6", "cuda:7",
    "cuda:8", "cuda:9", "cuda:10", "cuda:11", "cuda:12", "cuda:13", "cuda:14", "cuda:15",
    "cuda:16", "cuda:17", "cuda:18", "cuda:19", "cuda:20", "cuda:21", "cuda:22", "cuda:23",
    "cuda:24", "cuda:25", "cuda:26", "cuda:27", "cuda:28", "cuda:29", "cuda:30", "cuda:31",
    "cuda:32", "cuda:33", "cuda:34", "cuda:35", "cuda:36", "cuda:37", "cuda:38", "cuda:39",
    "cuda:40", "cuda:41", "cuda:42", "cuda:43", "cuda:44", "cuda:45", "cuda:46", "cuda:47",
    "cuda:48", "cuda:49", "cuda:50", "cuda:51", "cuda:52", "cuda:53", "cuda:54", "cuda:55",
    "cuda:56", "cuda:57", "cuda:58", "cuda:59", "cuda:60", "cuda:61", "cuda:62", "cuda:63",
};

static int cuda_init(struct rt_ctx *ctx, struct err *e);
static int cuda_eval(struct rt_ctx *ctx, const int32_t *tok, int n, int pos0, float *logits,
                     unsigned flags, struct err *e);
static void cuda_free(struct rt_ctx *ctx);

static struct rt_backend backends[64];
static int backends_ready;

extern "C" const struct rt_backend *rt_cuda_backend(int ordinal)
{
    if (ordinal < 0 || ordinal >= 64)
        return NULL;
    if (!backends_ready) {           /* idempotent: every call writes the same values */
        for (int i = 0; i < 64; i++) {
            backends[i].name = backend_names[i];
            backends[i].init = cuda_init;
            backends[i].eval = cuda_eval;
            backends[i].free = cuda_free;
        }
        backends_ready = 1;
    }
    return &backends[ordinal];
}

extern "C" const char *rt_cuda_notes(const struct rt_ctx *ctx)
{
    const struct cuda_be *s = (const struct cuda_be *)ctx->be;
    return s && ctx->backend && ctx->backend->init == cuda_init ? s->notes : "";
}

extern "C" void rt_cuda_set_exact(struct rt_ctx *ctx, int exact)
{
    struct cuda_be *s = (struct cuda_be *)ctx->be;
    if (s && ctx->backend && ctx->backend->init == cuda_init && s->exact != (exact != 0)) {
        s->exact = exact != 0;
        if (s->graph_state == 1) {          /* captured with the other kernels */
            cudaGraphExecDestroy(s->graph);
            s->graph_state = 0;
        }
    }
}

extern "C" uint64_t rt_cuda_weight_bytes(const struct rt_ctx *ctx)
{
    const struct cuda_be *s = (const struct cuda_be *)ctx->be;
    return s && ctx->backend && ctx->backend->init == cuda_init ? s->weight_bytes : 0;
}

static void note(struct cuda_be *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct cuda_be *s, const char *fmt, ...)
{
    size_t l = strlen(s->notes);
    va_list ap;
    if (l + 2 >= sizeof s->notes)
        return;
    va_start(ap, fmt);
    vsnprintf(s->notes + l, sizeof s->notes - l, fmt, ap);
    va_end(ap);
}

static void *dalloc(struct cuda_be *s, size_t n, const char *what, struct err *e)
{
    void *p = NULL;
    char b[32], msg[128];
    if (s->n_allocs >= MAX_ALLOCS) {
        ERR(e, ERR_LIMIT, "more than %d device allocations", MAX_ALLOCS);
        return NULL;
    }
    snprintf(msg, sizeof msg, "cudaMalloc (%s, %s)", what, cu_fmt_bytes(n, b, sizeof b));
    if (CU_CHECK(e, cudaMalloc(&p, n ? n : 1), msg))
        return NULL;
    s->allocs[s->n_allocs++] = p;
    return p;
}

static float *up_f32(struct cuda_be *s, const float *h, int64_t n, const char *what, struct err *e)
{
    if (!h)
        return NULL;
    float *d = (float *)dalloc(s, (size_t)n * 4, what, e);
    if (d && CU_CHECK(e, cudaMemcpy(d, h, (size_t)n * 4, cudaMemcpyHostToDevice), "cudaMemcpy (upload)"))
        return NULL;
    return d;
}

static int gemv_ok(const struct rt_mat *m)
{
    return rtc_gemv_supported(m->dtype) && m->cols % 8 == 0 && dqc_supported(m->dtype);
}

static uint64_t mat_dev_bytes(const struct rt_mat *m)
{
    return gemv_ok(m) ? (uint64_t)m->row_bytes * (uint64_t)m->rows
                      : (uint64_t)m->rows * (uint64_t)m->cols * 4;
}

/* Upload a weight in its stored type, or widened to F32 (host rows, any type) when the
 * GPU has no matrix-vector kernel for it. */
static int up_mat(struct cuda_be *s, const struct rt_mat *m, const char *what, struct rtc_w *out,
                  struct err *e)
{
    out->rows = m->rows;
    out->cols = m->cols;
    if (gemv_ok(m)) {
        uint64_t bytes = (uint64_t)m->row_bytes * m->rows;
        void *d = dalloc(s, bytes + 16, what, e);      /* 16: the GEMV's wide-load padding */
        if (!d || CU_CHECK(e, cudaMemcpy(d, m->data, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (weights)"))
            return -1;
        out->dtype = m->dtype;
        out->row_bytes = m->row_bytes;
        out->d = d;
        return 0;
    }
    if (m->cols % 8)
        return ERR(e, ERR_UNSUPPORTED, "%s: %lld columns (the CUDA kernels need a multiple of 8)",
                   what, (long long)m->cols);
    float *d = (float *)dalloc(s, (size_t)(m->rows * m->cols) * 4, what, e);
    int64_t chunk = 256;
    float *h = (float *)malloc((size_t)(chunk * m->cols) * 4);
    if (!d || !h) {
        free(h);
        return d ? ERR(e, ERR_NOMEM, "out of memory") : -1;
    }
    for (int64_t r0 = 0; r0 < m->rows; r0 += chunk) {
        int64_t nr = m->rows - r0 < chunk ? m->rows - r0 : chunk;
        for (int64_t r = 0; r < nr; r++)
            rt_mat_row(m, r0 + r, h + r * m->cols);
        if (CU_CHECK(e, cudaMemcpy(d + r0 * m->cols, h, (size_t)(nr * m->cols) * 4,
                                   cudaMemcpyHostToDevice), "cudaMemcpy (weights)")) {
            free(h);
            return -1;
        }
    }
    free(h);
    if (!strstr(s->notes, dtype_name(m->dtype)))
        note(s, "%stensors of type %s widened to F32 on upload (no CUDA matrix kernel for it)",
             s->notes[0] ? "; " : "", dtype_name(m->dtype));
    out->dtype = DT_F32;
    out->row_bytes = (uint64_t)m->cols * 4;
    out->d = d;
    return 0;
}

static void cuda_free(struct rt_ctx *ctx)
{
    struct cuda_be *s = (struct cuda_be *)ctx->be;
    if (!s)
        return;
    cudaSetDevice(s->info.ordinal);
    if (s->graph_state == 1)
        cudaGraphExecDestroy(s->graph);
    for (int i = 0; i < s->n_allocs; i++)
        cudaFree(s->allocs[i]);
    if (s->blas)
        cublasDestroy(s->blas);
    if (s->blas_tc)
        cublasDestroy(s->blas_tc);
    if (s->st)
        cudaStreamDestroy(s->st);
    free(s->L);
    free(s->probe_h);
    free(s);
    ctx->be = NULL;
}

static int rope_tables(struct rt_ctx *ctx, struct cuda_be *s, struct err *e)
{
    const struct model_config *c = &ctx->rm->c;
    const int half = (int)c->n_rot / 2;
    double *inv = (double *)calloc((size_t)half + 1, sizeof *inv), mscale;
    float *cs = (float *)malloc((size_t)ctx->n_ctx * half * 4 + 4);
    float *sn = (float *)malloc((size_t)ctx->n_ctx * half * 4 + 4);
    int rc = -1;
    if (!inv || !cs || !sn) {
        ERR(e, ERR_NOMEM, "out of memory for RoPE tables");
        goto out;
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
            cs[(size_t)p * half + i] = (float)(cos(a) * mscale);
            sn[(size_t)p * half + i] = (float)(sin(a) * mscale);
        }
    s->rope_cos = up_f32(s, cs, (int64_t)ctx->n_ctx * half, "rope tables", e);
    s->rope_sin = s->rope_cos ? up_f32(s, sn, (int64_t)ctx->n_ctx * half, "rope tables", e) : NULL;
    rc = s->rope_sin ? 0 : -1;
out:
    free(inv);
    free(cs);
    free(sn);
    return rc;
}

static int64_t widths_sum(const struct model_config *c, int64_t kvd)
{
    int64_t qd = (int64_t)c->n_head * c->head_dim;
    return 2 * (int64_t)c->n_embd + qd + 2 * kvd + qd + c->n_embd + 2 * (int64_t)c->n_ff + c->n_vocab;
}

static int scratch(struct rt_ctx *ctx, struct cuda_be *s, int n, struct err *e)
{
    const struct model_config *c = &ctx->rm->c;
    int64_t qd = (int64_t)c->n_head * c->head_dim;
    if (n <= s->cap)
        return 0;
    /* buffers are never freed before the context is: a bigger cap takes new ones and
     * the decode graph (which holds the old addresses) is dropped */
    float **bufs[] = { &s->x, &s->xn, &s->q, &s->k, &s->v, &s->att, &s->o, &s->gate, &s->up, &s->logits };
    int64_t w[] = { c->n_embd, c->n_embd, qd, s->kv_dim, s->kv_dim, qd, c->n_embd, c->n_ff, c->n_ff, c->n_vocab };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (!(*bufs[i] = (float *)dalloc(s, (size_t)n * w[i] * 4, "activations", e)))
            return -1;
    if (s->graph_state == 1) {
        cudaGraphExecDestroy(s->graph);
        s->graph_state = 0;
    }
    s->cap = n;
    return 0;
}

static int cuda_init(struct rt_ctx *ctx, struct err *e)
{
    const struct rt_model *rm = ctx->rm;
    const struct model_config *c = &rm->c;
    struct cuda_be *s = (struct cuda_be *)calloc(1, sizeof *s);
    int ordinal = 0;
    char b1[32];

    if (!s)
        return ERR(e, ERR_NOMEM, "out of memory");
    ctx->be = s;
    if (cu_parse_device(ctx->backend->name, &ordinal, e) || cu_open(ordinal, &s->info, e))
        goto fail;
    s->fault = rtc_fault_from_env();
    s->kv_dim = (int64_t)c->n_head_kv * c->head_dim;
    {
        /* what it will take, before any upload */
        uint64_t wb = mat_dev_bytes(&rm->tok_embd), need;
        int tied = rm->output.data == rm->tok_embd.data && rm->output.dtype == rm->tok_embd.dtype;
        if (!tied)
            wb += mat_dev_bytes(&rm->output);
        for (uint32_t l = 0; l < c->n_layer; l++) {
            const struct rt_layer *L = &rm->layers[l];
            const struct rt_mat *ms[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
            for (size_t i = 0; i < 7; i++)
                wb += mat_dev_bytes(ms[i]);
        }
        int cap = ctx->n_batch < ctx->n_ctx ? ctx->n_batch : ctx->n_ctx;
        s->scratch_floats = (int64_t)c->n_ff * c->n_embd;
        if ((int64_t)c->n_vocab * c->n_embd > s->scratch_floats)
            s->scratch_floats = (int64_t)c->n_vocab * c->n_embd;
        if (s->scratch_floats > (32 << 20))
            s->scratch_floats = 32 << 20;
        need = wb + 2ull * c->n_layer * ctx->n_ctx * s->kv_dim * 4 +
               (uint64_t)cap * widths_sum(c, s->kv_dim) * 4 + (uint64_t)s->scratch_floats * 4 +
               (uint64_t)ctx->n_ctx * c->n_rot * 4 + (64ull << 20);
        if (cu_need(&s->info, need, "model", e))
            goto fail;
        note(s, "%s (%s of weights)", s->info.name, cu_fmt_bytes(wb, b1, sizeof b1));
    }
    if (CU_CHECK(e, cudaStreamCreateWithFlags(&s->st, cudaStreamNonBlocking), "cudaStreamCreate") ||
        CU_CHECK_BLAS(e, cublasCreate(&s->blas), "cublasCreate") ||
        CU_CHECK_BLAS(e, cublasSetStream(s->blas, s->st), "cublasSetStream") ||
        CU_CHECK_BLAS(e, cublasSetMathMode(s->blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode") ||
        CU_CHECK_BLAS(e, cublasCreate(&s->blas_tc), "cublasCreate") ||
        CU_CHECK_BLAS(e, cublasSetStream(s->blas_tc, s->st), "cublasSetStream"))
        goto fail;
    {
        const char *g = getenv("APR_CUDA_GEMM"), *v = getenv("APR_CUDA_GEMV");
        s->exact = g && strcmp(g, "exact") == 0;
        s->int8_off = v && strcmp(v, "f32") == 0;
    }
    s->L = (struct cu_layer *)calloc(c->n_layer, sizeof *s->L);
    if (!s->L) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (up_mat(s, &rm->tok_embd, "token_embd", &s->tok_embd, e))
        goto fail;
    if (rm->output.data == rm->tok_embd.data && rm->output.dtype == rm->tok_embd.dtype)
        s->output = s->tok_embd;
    else if (up_mat(s, &rm->output, "output", &s->output, e))
        goto fail;
    s->weight_bytes = (uint64_t)s->output.row_bytes * s->output.rows;
    if (!(s->output_norm = up_f32(s, rm->output_norm, c->n_embd, "norms", e)))
        goto fail;
    for (uint32_t l = 0; l < c->n_layer; l++) {
        const struct rt_layer *L = &rm->layers[l];
        struct cu_layer *D = &s->L[l];
        int64_t qd = (int64_t)c->n_head * c->head_dim;
        if (up_mat(s, &L->wq, "attn_q", &D->wq, e) || up_mat(s, &L->wk, "attn_k", &D->wk, e) ||
            up_mat(s, &L->wv, "attn_v", &D->wv, e) || up_mat(s, &L->wo, "attn_output", &D->wo, e) ||
            up_mat(s, &L->w_gate, "ffn_gate", &D->wg, e) || up_mat(s, &L->w_up, "ffn_up", &D->wu, e) ||
            up_mat(s, &L->w_down, "ffn_down", &D->wd, e))
            goto fail;
        const struct rtc_w *ws[] = { &D->wq, &D->wk, &D->wv, &D->wo, &D->wg, &D->wu, &D->wd };
        for (size_t i = 0; i < 7; i++)
            s->weight_bytes += ws[i]->row_bytes * ws[i]->rows;
        if (!(D->attn_norm = up_f32(s, L->attn_norm, c->n_embd, "norms", e)) ||
            !(D->ffn_norm = up_f32(s, L->ffn_norm, c->n_embd, "norms", e)))
            goto fail;
        if ((L->bq && !(D->bq = up_f32(s, L->bq, qd, "biases", e))) ||
            (L->bk && !(D->bk = up_f32(s, L->bk, s->kv_dim, "biases", e))) ||
            (L->bv && !(D->bv = up_f32(s, L->bv, s->kv_dim, "biases", e))) ||
            (L->q_norm && !(D->q_norm = up_f32(s, L->q_norm, c->head_dim, "norms", e))) ||
            (L->k_norm && !(D->k_norm = up_f32(s, L->k_norm, c->head_dim, "norms", e))))
            goto fail;
    }
    {
        size_t kvb = (size_t)c->n_layer * ctx->n_ctx * s->kv_dim * 4;
        if (!(s->kc = (float *)dalloc(s, kvb, "KV cache", e)) ||
            !(s->vc = (float *)dalloc(s, kvb, "KV cache", e)) ||
            !(s->scratch = (float *)dalloc(s, (size_t)s->scratch_floats * 4, "dequant tiles", e)) ||
            !(s->d_tok = (int32_t *)dalloc(s, 4 * 65536, "tokens", e)) ||
            !(s->d_pos = (int32_t *)dalloc(s, 4, "position", e)))
            goto fail;
        int64_t wmax = c->n_embd > c->n_ff ? c->n_embd : c->n_ff;
        if ((int64_t)c->n_head * c->head_dim > wmax)
            wmax = (int64_t)c->n_head * c->head_dim;
        for (int k = 1; k < 4; k++)
            if (!(s->xq[k] = dalloc(s, rtc_act_bytes(wmax), "quantized activations", e)))
                goto fail;
    }
    if (rope_tables(ctx, s, e) ||
        scratch(ctx, s, ctx->n_batch < ctx->n_ctx ? ctx->n_batch : ctx->n_ctx, e))
        goto fail;
    if (s->fault)
        note(s, "; PLANTED FAULT %s active (APR_CUDA_FAULT)", getenv("APR_CUDA_FAULT"));
    return 0;
fail:
    cuda_free(ctx);
    return -1;
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

static float *probe_h(struct cuda_be *s, size_t n, struct err *e)
{
    if (n > s->probe_h_n) {
        free(s->probe_h);
        s->probe_h_n = 0;
        s->probe_h = (float *)malloc(n * sizeof(float));
        if (!s->probe_h) {
            ERR(e, ERR_NOMEM, "out of memory for a stage dump (%zu floats)", n);
            return NULL;
        }
        s->probe_h_n = n;
    }
    return s->probe_h;
}

/* copy a device stage to the host and hand it to the hook */
static int report(struct rt_ctx *ctx, enum rt_stage st, int layer, const float *d, int64_t rows,
                  int64_t cols, struct err *e)
{
    struct cuda_be *s = (struct cuda_be *)ctx->be;
    float *h = probe_h(s, (size_t)(rows * cols), e);
    if (!h || CU_CHECK(e, cudaMemcpyAsync(h, d, (size_t)(rows * cols) * 4, cudaMemcpyDeviceToHost, s->st),
                       "cudaMemcpyAsync (stage)") ||
        CU_CHECK(e, cudaStreamSynchronize(s->st), "cudaStreamSynchronize"))
        return -1;
    return ctx->hook.fn(ctx->hook.ud, st, layer, h, rows, cols, e);
}

#define STAGE(st, layer, d, rows, cols)                                                      \
    do {                                                                                     \
        if (want(ctx, (st), (layer)) && report(ctx, (st), (layer), (d), (rows), (cols), e))  \
            return -1;                                                                       \
    } while (0)

/* q | k | v per position, q and k un-permuted to Hugging Face order (forward.c qk_canon) */
static int report_qkv(struct rt_ctx *ctx, enum rt_stage st, int layer, int n, struct err *e)
{
    struct cuda_be *s = (struct cuda_be *)ctx->be;
    const struct model_config *c = &ctx->rm->c;
    const int64_t hd = c->head_dim, qd = (int64_t)c->n_head * hd, kvd = s->kv_dim, w = qd + 2 * kvd;
    const int64_t half = c->n_rot / 2;
    const int norm = c->rope_style == ROPE_NORM;
    float *h = (float *)malloc((size_t)(n * w) * 8);
    if (!h)
        return ERR(e, ERR_NOMEM, "out of memory for a stage dump");
    float *raw = h + n * w;
    if (CU_CHECK(e, cudaMemcpyAsync(raw, s->q, (size_t)(n * qd) * 4, cudaMemcpyDeviceToHost, s->st), "cudaMemcpyAsync (stage)") ||
        CU_CHECK(e, cudaMemcpyAsync(raw + n * qd, s->k, (size_t)(n * kvd) * 4, cudaMemcpyDeviceToHost, s->st), "cudaMemcpyAsync (stage)") ||
        CU_CHECK(e, cudaMemcpyAsync(raw + n * (qd + kvd), s->v, (size_t)(n * kvd) * 4, cudaMemcpyDeviceToHost, s->st), "cudaMemcpyAsync (stage)") ||
        CU_CHECK(e, cudaStreamSynchronize(s->st), "cudaStreamSynchronize")) {
        free(h);
        return -1;
    }
    for (int t = 0; t < n; t++) {
        const float *src[2] = { raw + t * qd, raw + n * qd + t * kvd };
        float *dst[2] = { h + t * w, h + t * w + qd };
        int64_t nh[2] = { c->n_head, c->n_head_kv };
        for (int k = 0; k < 2; k++) {
            memcpy(dst[k], src[k], (size_t)(nh[k] * hd) * 4);
            if (norm)
                for (int64_t hh = 0; hh < nh[k]; hh++)
                    for (int64_t i = 0; i < half; i++) {
                        dst[k][hh * hd + i] = src[k][hh * hd + 2 * i];
                        dst[k][hh * hd + half + i] = src[k][hh * hd + 2 * i + 1];
                    }
        }
        memcpy(h + t * w + qd + kvd, raw + n * (qd + kvd) + t * kvd, (size_t)kvd * 4);
    }
    int rc = ctx->hook.fn(ctx->hook.ud, st, layer, h, n, w, e);
    free(h);
    return rc;
}

/* ---- the forward pass */

/*
 * One token: quantized weights on the int8 kernels, the activation quantized once for
 * all the matrices that read it (s->gen moves whenever an input is rewritten); the
 * planted fault and APR_CUDA_GEMV=f32 keep the f32 kernels.  accumulate: y += W x (the
 * residual add fused; one token only).
 * Several tokens: the tensor-core path; or, when s->exact (parity, stage dumps), the
 * CPU's numerics: quantized weights token by token on the int8 kernels (the CPU runtime
 * quantizes each token's activation the same way), the others exact f32 SGEMM.
 */
/* x (cols wide) quantized as kind k into s->xq[k] unless it holds x already (the same
 * source since s->gen last moved) */
static int act_q(struct cuda_be *s, int k, const float *x, int64_t cols, struct err *e)
{
    if ((s->xq_src[k] != x || s->xq_gen[k] != s->gen) && rtc_quantize_act(k, x, cols, s->xq[k], s->st, e))
        return -1;
    s->xq_src[k] = x;
    s->xq_gen[k] = s->gen;
    return 0;
}

static int mm_acc(struct cuda_be *s, const struct rtc_w *w, const float *x, int n, float *y,
                  int accumulate, struct err *e)
{
    int k = rtc_act_kind(w->dtype);
    int int8 = k && !s->fault && !s->int8_off && rtc_gemv_q_ok(w);
    if (n == 1) {
        if (int8)
            return act_q(s, k, x, w->cols, e) ? -1 : rtc_gemv_q(w, s->xq[k], y, accumulate, s->st, e);
        return rtc_gemv(w, x, y, s->fault | (accumulate ? RTC_GEMV_ACC : 0), s->st, e);
    }
    if (!s->exact && !s->fault)
        return rtc_gemm_tc(s->blas_tc, w, x, n, y, s->scratch, s->scratch_floats, s->st, e);
    if (int8) {
        s->xq_src[k] = NULL;
        for (int t = 0; t < n; t++)
            if (rtc_quantize_act(k, x + (size_t)t * w->cols, w->cols, s->xq[k], s->st, e) ||
                rtc_gemv_q(w, s->xq[k], y + (size_t)t * w->rows, 0, s->st, e))
                return -1;
        return 0;
    }
    return rtc_gemm(s->blas, w, x, n, y, s->scratch, s->scratch_floats, s->fault, s->st, e);
}

static int mm(struct cuda_be *s, const struct rtc_w *w, const float *x, int n, float *y, struct err *e)
{
    return mm_acc(s, w, x, n, y, 0, e);
}

/* One token: n matrices of one type and width on one activation in one launch, on the
 * int8 kernels or else the 32-wide f32 ones (q, k, v; or gate and up with the SwiGLU
 * combined, mode RTC_MV_SWIGLU).  0 done, 1 not
 * applicable (the caller runs them one by one), -1 error. */
static int mm_multi(struct cuda_be *s, const struct rtc_w *const *w, float *const *y, int n,
                    int mode, const float *x, struct err *e)
{
    int k = rtc_act_kind(w[0]->dtype);
    if (s->fault)
        return 1;
    int ok = k && !s->int8_off;
    for (int i = 0; i < n && ok; i++)
        if (!rtc_gemv_q_ok(w[i]) || w[i]->dtype != w[0]->dtype || w[i]->cols != w[0]->cols)
            ok = 0;
    if (mode == RTC_MV_SWIGLU && w[1]->rows != w[0]->rows)
        return 1;
    if (!ok)        /* the f32-activation kernels (F16, BF16; or APR_CUDA_GEMV=f32) */
        return rtc_gemv_multi(w, y, n, mode, x, s->st, e);
    if (act_q(s, k, x, w[0]->cols, e))
        return -1;
    return rtc_gemv_q_multi(w, y, n, mode, s->xq[k], s->st, e) ? -1 : 0;
}

/* One token's q, k and v with RoPE and the cache store in the same launch
 * (rtc_gemv_q_qkv): 0 done, 1 not applicable (nothing launched but perhaps the
 * activation's quantization, which the caller's kernels then reuse), -1 error. */
static int mm_qkv(struct cuda_be *s, const struct rtc_w *const *w, float *const *y, const struct rtc_qkv *qa,
                  const float *x, struct err *e)
{
    int k = rtc_act_kind(w[0]->dtype);
    if (s->fault || !k || s->int8_off || !rtc_gemv_q_ok(w[0]))
        return 1;
    if (act_q(s, k, x, w[0]->cols, e))
        return -1;
    return rtc_gemv_q_qkv(w, y, qa, s->xq[k], s->st, e);
}

/* RMSNorm of x into s->xn, then s->gen moves on.  One token that w (the next matrix to
 * read s->xn) takes on the int8 kernels: its activation quantized in the same launch. */
static int norm(struct cuda_be *s, const float *x, const float *g, int n, int64_t width, float eps,
                const struct rtc_w *w, struct err *e)
{
    int k = w && n == 1 && !s->fault && !s->int8_off && rtc_gemv_q_ok(w) ? rtc_act_kind(w->dtype) : 0;
    int r = 1;
    if (k && (r = rtc_rmsnorm_q(x, g, s->xn, width, eps, k, s->xq[k], s->st, e)) < 0)
        return -1;
    if (r == 1 && rtc_rmsnorm(x, g, s->xn, n, width, eps, s->st, e))
        return -1;
    s->gen++;
    if (r == 0) {
        s->xq_src[k] = s->xn;
        s->xq_gen[k] = s->gen;
    }
    return 0;
}

/* n tokens already in d_tok, position in d_pos; pos0 is the host copy */
static int forward_chunk(struct rt_ctx *ctx, int n, int pos0, int all_logits, struct err *e)
{
    struct cuda_be *s = (struct cuda_be *)ctx->be;
    const struct rt_model *rm = ctx->rm;
    const struct model_config *c = &rm->c;
    const int64_t embd = c->n_embd, hd = c->head_dim, nh = c->n_head, nkv = c->n_head_kv;
    const int64_t qd = nh * hd, kvd = s->kv_dim, ff = c->n_ff;
    const int norm_style = c->rope_style == ROPE_NORM;
    const float scale = 1.0f / sqrtf((float)hd);
    const float eps = (float)c->norm_eps;
    void *st = s->st;
    const int fuse = n == 1 && !ctx->hook.fn;   /* no stage wants the products alone */

    if (dqc_get_rows(s->tok_embd.dtype, s->tok_embd.d, s->tok_embd.rows, s->tok_embd.cols, s->d_tok, n,
                     s->x, st, e))
        return -1;
    STAGE(RT_ST_EMBEDDING, RT_LAYER_MODEL, s->x, n, embd);

    for (int l = 0; l < (int)c->n_layer; l++) {
        const struct cu_layer *L = &s->L[l];
        float *kc = s->kc + (size_t)l * ctx->n_ctx * kvd, *vc = s->vc + (size_t)l * ctx->n_ctx * kvd;

        if (norm(s, s->x, L->attn_norm, n, embd, eps, fuse ? &L->wq : NULL, e))
            return -1;
        STAGE(RT_ST_ATTN_NORM, l, s->xn, n, embd);
        int roped = 0;       /* q, k rotated and k, v in the cache already */
        {
            const struct rtc_w *w3[3] = { &L->wq, &L->wk, &L->wv };
            float *y3[3] = { s->q, s->k, s->v };
            int r = 1;
            /* one token, llama's interleaved RoPE, no biases or QK-norm between: the
             * rotation and the cache store in the matrix kernel's epilogue, from
             * APR_CUDA_PDL level 3 (the same bytes as rtc_rope_kv after the products) */
            if (fuse && norm_style && c->n_rot > 0 && !L->bq && !L->q_norm) {
                const struct rtc_qkv qa = { kc, vc, s->rope_cos, s->rope_sin, s->d_pos, ctx->n_ctx, kvd, (int)hd,
                                            (int)c->n_rot };
                if ((r = mm_qkv(s, w3, y3, &qa, s->xn, e)) < 0)
                    return -1;
                roped = r == 0;
            }
            if (r == 1 && fuse)
                r = mm_multi(s, w3, y3, 3, RTC_MV_PLAIN, s->xn, e);
            /* v of another type (Q4_K_M's Q6_K v in half the layers): q and k in one launch,
             * from APR_CUDA_PDL level 1 (the same bits: a row's sum does not depend on its
             * launch; Q4_K_M tg128 384.9 vs 376.4 t/s split, H100) */
            if (r == 1 && fuse && rtc_pdl() >= 1 &&
                (r = mm_multi(s, w3, y3, 2, RTC_MV_PLAIN, s->xn, e)) == 0 && mm(s, &L->wv, s->xn, n, s->v, e))
                return -1;
            if (r < 0 || (r == 1 && (mm(s, &L->wq, s->xn, n, s->q, e) || mm(s, &L->wk, s->xn, n, s->k, e) ||
                                     mm(s, &L->wv, s->xn, n, s->v, e))))
                return -1;
        }
        if (want(ctx, RT_ST_QKV_MATMUL, l) && report_qkv(ctx, RT_ST_QKV_MATMUL, l, n, e))
            return -1;
        if (L->bq) {
            if (rtc_add_bias(s->q, L->bq, n, qd, st, e) || rtc_add_bias(s->k, L->bk, n, kvd, st, e) ||
                rtc_add_bias(s->v, L->bv, n, kvd, st, e))
                return -1;
            if (want(ctx, RT_ST_QKV_BIAS, l) && report_qkv(ctx, RT_ST_QKV_BIAS, l, n, e))
                return -1;
        }
        if (L->q_norm && (rtc_rmsnorm(s->q, L->q_norm, s->q, n * nh, hd, eps, st, e) ||
                          rtc_rmsnorm(s->k, L->k_norm, s->k, n * nkv, hd, eps, st, e)))
            return -1;
        /* q and k rotated in place, k and v stored in the cache: one launch */
        if (!roped && (c->n_rot > 0 ? rtc_rope_kv(s->q, s->k, s->v, kc, vc, n, (int)nh, (int)nkv, (int)hd,
                                                  (int)c->n_rot, s->d_pos, s->rope_cos, s->rope_sin, norm_style,
                                                  ctx->n_ctx, st, e)
                                    : rtc_kv_store(s->k, s->v, kc, vc, n, kvd, s->d_pos, ctx->n_ctx, st, e)))
            return -1;
        STAGE(RT_ST_Q_POST_ROPE, l, s->q, n, qd);
        STAGE(RT_ST_K_POST_ROPE, l, s->k, n, kvd);
        if (want(ctx, RT_ST_ATTN_SCORES, l) || want(ctx, RT_ST_ATTN_SOFTMAX, l)) {
            int64_t n_kv = (int64_t)pos0 + n;
            size_t m = (size_t)n * nh * n_kv;
            if (2 * m > s->probe_d_n) {
                if (!(s->probe_d = (float *)dalloc(s, 2 * m * 4, "stage probe", e)))
                    return -1;
                s->probe_d_n = 2 * m;
            }
            if (rtc_attention_probe(s->q, kc, vc, s->att, n, (int)nh, (int)nkv, (int)hd, s->d_pos,
                                    ctx->n_ctx, scale, s->probe_d, s->probe_d + m, n_kv, st, e))
                return -1;
            STAGE(RT_ST_ATTN_SCORES, l, s->probe_d, n, nh * n_kv);
            STAGE(RT_ST_ATTN_SOFTMAX, l, s->probe_d + m, n, nh * n_kv);
        } else if (rtc_attention(s->q, kc, vc, s->att, n, (int)nh, (int)nkv, (int)hd, s->d_pos,
                                 ctx->n_ctx, scale, s->exact, st, e)) {
            return -1;
        }
        STAGE(RT_ST_ATTENTION, l, s->att, n, qd);
        s->gen++;
        if (fuse) {             /* x += Wo att in one kernel */
            if (mm_acc(s, &L->wo, s->att, n, s->x, 1, e))
                return -1;
        } else {
            if (mm(s, &L->wo, s->att, n, s->o, e))
                return -1;
            STAGE(RT_ST_ATTN_OUT, l, s->o, n, embd);
            if (rtc_add(s->x, s->o, n * embd, st, e))
                return -1;
        }
        STAGE(RT_ST_POST_ATTN_RESIDUAL, l, s->x, n, embd);

        if (norm(s, s->x, L->ffn_norm, n, embd, eps, fuse ? &L->wg : NULL, e))
            return -1;
        STAGE(RT_ST_FFN_NORM, l, s->xn, n, embd);
        const struct rtc_w *w2[2] = { &L->wg, &L->wu };
        float *y2[2] = { s->gate, s->up };
        int gu = fuse ? mm_multi(s, w2, y2, 2, RTC_MV_SWIGLU, s->xn, e) : 1;   /* gate = swiglu */
        if (gu < 0)
            return -1;
        if (gu == 1) {
            if (mm(s, &L->wg, s->xn, n, s->gate, e) || mm(s, &L->wu, s->xn, n, s->up, e))
                return -1;
            STAGE(RT_ST_FFN_GATE, l, s->gate, n, ff);
            STAGE(RT_ST_FFN_UP, l, s->up, n, ff);
            if (want(ctx, RT_ST_FFN_SILU, l)) {
                if (rtc_silu(s->gate, n * ff, st, e))
                    return -1;
                STAGE(RT_ST_FFN_SILU, l, s->gate, n, ff);
                if (rtc_mul(s->gate, s->up, n * ff, st, e))
                    return -1;
            } else if (rtc_swiglu(s->gate, s->up, s->gate, n * ff, st, e)) {
                return -1;
            }
        }
        STAGE(RT_ST_FFN_SWIGL, l, s->gate, n, ff);
        s->gen++;
        if (fuse) {
            if (mm_acc(s, &L->wd, s->gate, n, s->x, 1, e))
                return -1;
        } else {
            if (mm(s, &L->wd, s->gate, n, s->o, e))
                return -1;
            STAGE(RT_ST_FFN_OUT, l, s->o, n, embd);
            if (rtc_add(s->x, s->o, n * embd, st, e))
                return -1;
        }
        STAGE(RT_ST_POST_FFN_RESIDUAL, l, s->x, n, embd);
    }
    if (norm(s, s->x, s->output_norm, n, embd, eps, fuse ? &s->output : NULL, e))
        return -1;
    STAGE(RT_ST_FINAL_NORM, RT_LAYER_MODEL, s->xn, n, embd);
    if (all_logits || want(ctx, RT_ST_LM_HEAD, RT_LAYER_MODEL)) {
        if (mm(s, &s->output, s->xn, n, s->logits, e))
            return -1;
        STAGE(RT_ST_LM_HEAD, RT_LAYER_MODEL, s->logits, n, c->n_vocab);
        return 0;
    }
    return mm(s, &s->output, s->xn + (size_t)(n - 1) * embd, 1, s->logits, e);
}

static int decode_graph(struct rt_ctx *ctx, struct cuda_be *s, int pos0, struct err *e)
{
    if (s->graph_state == 0) {
        cudaGraph_t g;
        if (CU_CHECK(e, cudaStreamBeginCapture(s->st, cudaStreamCaptureModeThreadLocal),
                     "cudaStreamBeginCapture"))
            return -1;
        int rc = forward_chunk(ctx, 1, pos0, 0, e);
        cudaError_t ce = cudaStreamEndCapture(s->st, &g);
        if (rc)
            return -1;
        if (CU_CHECK(e, ce, "cudaStreamEndCapture"))
            return -1;
        ce = cudaGraphInstantiate(&s->graph, g, 0);
        cudaGraphDestroy(g);
        if (CU_CHECK(e, ce, "cudaGraphInstantiate"))
            return -1;
        s->graph_state = 1;
    }
    return CU_CHECK(e, cudaGraphLaunch(s->graph, s->st), "cudaGraphLaunch");
}

/* a busy wait of ns nanoseconds on the device (rt_cuda_decode_profile) */
__global__ void k_busy(uint64_t ns)
{
    uint64_t t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do {
        __nanosleep(1000);
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    } while (t - t0 < ns);
}

extern "C" int rt_cuda_decode_profile(struct rt_ctx *ctx, int reps, struct rt_cuda_kprof *out, int max, int *n,
                                      double *step_us, struct err *e)
{
    struct cuda_be *s = (struct cuda_be *)ctx->be;
    cudaGraph_t g = NULL;
    cudaGraphExec_t gx = NULL;
    cudaGraphNode_t *nodes = NULL;
    cudaEvent_t *ev = NULL;
    size_t nn = 0;
    int nk = 0, rc = -1;
    *n = 0;
    *step_us = 0;
    if (!s || ctx->backend->init != cuda_init || ctx->hook.fn)
        return ERR(e, ERR_INTERNAL, "rt_cuda_decode_profile: not a CUDA context, or stage hooks set");
    if (CU_CHECK(e, cudaStreamBeginCapture(s->st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture"))
        return -1;
    int frc = forward_chunk(ctx, 1, 0, 0, e);
    cudaError_t ce = cudaStreamEndCapture(s->st, &g);
    if (frc || CU_CHECK(e, ce, "cudaStreamEndCapture") ||
        CU_CHECK(e, cudaGraphInstantiate(&gx, g, 0), "cudaGraphInstantiate") ||
        CU_CHECK(e, cudaGraphGetNodes(g, NULL, &nn), "cudaGraphGetNodes"))
        goto out;
    nodes = (cudaGraphNode_t *)calloc(nn ? nn : 1, sizeof *nodes);
    ev = (cudaEvent_t *)calloc(nn + 1, sizeof *ev);
    if (!nodes || !ev) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (CU_CHECK(e, cudaGraphGetNodes(g, nodes, &nn), "cudaGraphGetNodes"))
        goto out;
    for (size_t i = 0; i < nn; i++) {       /* the kernel nodes, in capture order */
        cudaGraphNodeType ty;
        if (CU_CHECK(e, cudaGraphNodeGetType(nodes[i], &ty), "cudaGraphNodeGetType"))
            goto out;
        if (ty == cudaGraphNodeTypeKernel)
            nodes[nk++] = nodes[i];
    }
    for (int i = 0; i <= nk; i++)
        if (CU_CHECK(e, cudaEventCreate(&ev[i]), "cudaEventCreate"))
            goto out;
    for (int i = 0; i < nk && i < max; i++) {
        cudaKernelNodeParams p;
        const char *nm = NULL;
        if (CU_CHECK(e, cudaGraphKernelNodeGetParams(nodes[i], &p), "cudaGraphKernelNodeGetParams"))
            goto out;
        if (cudaFuncGetName(&nm, p.func) != cudaSuccess || !nm)
            nm = "?";
        snprintf(out[i].name, sizeof out[i].name, "%s", nm);
        out[i].us = 1e30;
        out[i].grid = p.gridDim.x * p.gridDim.y * p.gridDim.z;
        out[i].block = p.blockDim.x * p.blockDim.y * p.blockDim.z;
    }
    for (int r = 0; r < reps; r++) {
        k_busy<<<1, 1, 0, s->st>>>(20000000ull);       /* 20 ms: the host queues the rest meanwhile */
        for (int i = 0; i < nk; i++) {
            cudaKernelNodeParams p;
            if (CU_CHECK(e, cudaGraphKernelNodeGetParams(nodes[i], &p), "cudaGraphKernelNodeGetParams") ||
                CU_CHECK(e, cudaEventRecord(ev[i], s->st), "cudaEventRecord") ||
                CU_CHECK(e, cudaLaunchKernel(p.func, p.gridDim, p.blockDim, p.kernelParams, p.sharedMemBytes, s->st),
                         "cudaLaunchKernel"))
                goto out;
        }
        if (CU_CHECK(e, cudaEventRecord(ev[nk], s->st), "cudaEventRecord") ||
            CU_CHECK(e, cudaEventSynchronize(ev[nk]), "cudaEventSynchronize"))
            goto out;
        for (int i = 0; i < nk && i < max; i++) {
            float ms = 0;
            if (CU_CHECK(e, cudaEventElapsedTime(&ms, ev[i], ev[i + 1]), "cudaEventElapsedTime"))
                goto out;
            if (ms * 1e3 < out[i].us)
                out[i].us = ms * 1e3;
        }
        /* the step as a graph (with its programmatic edges) */
        k_busy<<<1, 1, 0, s->st>>>(1000000ull);
        float ms = 0;
        if (CU_CHECK(e, cudaEventRecord(ev[0], s->st), "cudaEventRecord") ||
            CU_CHECK(e, cudaGraphLaunch(gx, s->st), "cudaGraphLaunch") ||
            CU_CHECK(e, cudaEventRecord(ev[1], s->st), "cudaEventRecord") ||
            CU_CHECK(e, cudaEventSynchronize(ev[1]), "cudaEventSynchronize") ||
            CU_CHECK(e, cudaEventElapsedTime(&ms, ev[0], ev[1]), "cudaEventElapsedTime"))
            goto out;
        if (r == 0 || ms * 1e3 < *step_us)
            *step_us = ms * 1e3;
    }
    *n = nk < max ? nk : max;
    rc = 0;
out:
    if (ev)
        for (int i = 0; i <= nk; i++)
            if (ev[i])
                cudaEventDestroy(ev[i]);
    free(ev);
    free(nodes);
    if (gx)
        cudaGraphExecDestroy(gx);
    if (g)
        cudaGraphDestroy(g);
    return rc;
}

static int eval_chunks(struct rt_ctx *ctx, const int32_t *tok, int n, int pos0, float *logits,
                       unsigned flags, struct err *e)
{
    struct cuda_be *s = (struct cuda_be *)ctx->be;
    const int64_t nv = ctx->rm->c.n_vocab;
    const int chunk = ctx->hook.fn ? n : ctx->n_batch;
    const int all = (flags & RT_EVAL_ALL_LOGITS) != 0;

    if (CU_CHECK(e, cudaSetDevice(s->info.ordinal), "cudaSetDevice") ||
        scratch(ctx, s, n < chunk ? n : chunk, e))
        return -1;
    for (int done = 0; done < n;) {
        int m = n - done < chunk ? n - done : chunk, p = pos0 + done;
        int last = done + m == n;
        if (m > 65536)
            m = 65536;
        if (CU_CHECK(e, cudaMemcpyAsync(s->d_tok, tok + done, (size_t)m * 4, cudaMemcpyHostToDevice, s->st),
                     "cudaMemcpyAsync (tokens)") ||
            CU_CHECK(e, cudaMemcpyAsync(s->d_pos, &p, 4, cudaMemcpyHostToDevice, s->st),
                     "cudaMemcpyAsync (position)"))
            return -1;
        int rc;
        if (m == 1 && !ctx->hook.fn && s->graph_state >= 0)
            rc = decode_graph(ctx, s, p, e);
        else
            rc = forward_chunk(ctx, m, p, logits && all, e);
        if (rc)
            return -1;
        if (logits && (all || last)) {
            float *dst = all ? logits + (size_t)done * nv : logits;
            const float *src = all ? s->logits : s->logits + (m == 1 || !all ? 0 : 0);
            size_t cnt = all ? (size_t)m * nv : (size_t)nv;
            if (CU_CHECK(e, cudaMemcpyAsync(dst, src, cnt * 4, cudaMemcpyDeviceToHost, s->st),
                         "cudaMemcpyAsync (logits)"))
                return -1;
        }
        /* the host copies of tok and p must outlive the async copies */
        if (CU_CHECK(e, cudaStreamSynchronize(s->st), "cudaStreamSynchronize"))
            return -1;
        done += m;
    }
    return 0;
}

static int cuda_eval(struct rt_ctx *ctx, const int32_t *tok, int n, int pos0, float *logits,
                     unsigned flags, struct err *e)
{
    struct cuda_be *s = (struct cuda_be *)ctx->be;
    const int exact0 = s->exact;
    if (ctx->hook.fn)
        s->exact = 1;     /* stage dumps: the exact path, stage for stage */
    int rc = eval_chunks(ctx, tok, n, pos0, logits, flags, e);
    s->exact = exact0;
    return rc;
}
