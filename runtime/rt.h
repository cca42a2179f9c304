/*
 * rt.h - the transformer runtime: a model bound to its mapped weights, an evaluation
 * context (KV cache, scratch), the forward pass, and the stage hooks behind apr-run's
 * --trace and --save-tensor.
 *
 * Architectures: llama (Llama 2/3/3.x, Mistral, TinyLlama, SmolLM), qwen2 (Q/K/V
 * biases), qwen3 (QK-norm).  One decoder block, pre-norm:
 *
 *   x = embedding[tok]
 *   per layer:  h = rmsnorm(x) * attn_norm
 *               q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)     [qwen3: rmsnorm per head]
 *               q, k = rope(q), rope(k)                          (NORM or NEOX, see below)
 *               a = softmax(q k^T / sqrt(head_dim) + causal mask) v   (GQA: k/v head h*n_kv/n_head)
 *               x = x + Wo a
 *               h = rmsnorm(x) * ffn_norm
 *               x = x + Wdown (silu(Wgate h) * Wup h)
 *   logits = Woutput (rmsnorm(x) * output_norm)        (Woutput = embedding when tied)
 *
 * Weights (struct rt_mat) point into the model's mapping in their stored dtype; only
 * the 1-D vectors (norm weights, biases: a few KiB per layer) are widened to f32 at
 * load.  Matrix products go through rt_matmul (runtime/matmul.h), which handles every
 * dtype; the runtime never dequantizes a matrix wholesale.  The CPU backend may keep one
 * bounded copy of some matrices in their stored values, repacked 8 rows at a time for
 * its decode kernels (forward.c, rt_ctx's n_repacked; the same bits).
 *
 * RoPE and the llama Q/K row permutation.  A GGUF llama stores q/k rows permuted so that
 * rotary pairs are adjacent (ROPE_NORM: pairs (2i, 2i+1)); a Hugging Face llama, qwen2
 * and qwen3 rotate halves (ROPE_NEOX: pairs (i, i + n_rot/2)).  The config's rope_style
 * says which one THIS file needs.  After rotation both styles store each head in the
 * NEOX order (pair i at i and i + n_rot/2), so the KV cache, the attention dot products
 * and the q_post_rope/k_post_rope dumps are the same numbers in the same order for both
 * layouts: a GGUF file and its HF-layout conversion give bit-identical logits.
 *
 * Numerics (CPU): f32 activations; RMSNorm sums in double; softmax in f32 with the
 * maximum subtracted; RoPE angles in double (cos/sin rounded to f32); KV cache f32.
 *
 * Backends.  struct rt_backend is the seam for a second implementation (runtime/cuda/,
 * built with APR_CUDA): it receives the same struct rt_model (config + weights as
 * rt_mat views of the mapping) and implements eval with the same contract.  rt_eval
 * validates tokens, positions and the context size before dispatching, so a backend
 * only computes.  A backend reports the same stages (below) through ctx->hook with the
 * same names, layer numbers and layouts (host f32 copies), so two backends' dumps
 * compare stage by stage (apr-diff DIR_A DIR_B, apr-run --compare).
 */
#ifndef RT_H
#define RT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "../formats/config.h"
#include "../formats/model.h"
#include "matmul.h"

/* ---- stages (aprender's names, reference/apr.md 5) */

/*
 * The stages of the forward pass, in the order they happen.  Layouts are position-major
 * ([n_tok][width], the positions of one eval call concatenated, as aprender does):
 *
 *   embedding           [n][n_embd]      token embedding rows: a whole-model stage
 *                                        (transformers' hidden_states[0], the input of layer 0)
 *   attn_norm           [n][n_embd]      rmsnorm(x) * attn_norm
 *   qkv_matmul          [n][q+k+v]       per position q | k | v before bias (q = n_head *
 *                                        head_dim, k = v = n_head_kv * head_dim); q and k rows
 *                                        in Hugging Face order (a GGUF llama's are un-permuted)
 *   qkv_bias            [n][q+k+v]       the same after the biases (qwen2; only when present)
 *   q_post_rope         [n][q]           after QK-norm (qwen3) and RoPE, NEOX order (see above)
 *   k_post_rope         [n][k]
 *   attn_scores         [n][n_head][n_kv] q.k / sqrt(head_dim), n_kv = pos0 + n; masked
 *                                        (future) entries are written as 0
 *   attn_softmax        [n][n_head][n_kv] probabilities (masked entries 0)
 *   attention           [n][q]           softmax(...) v, heads concatenated (input of Wo)
 *   attn_out            [n][n_embd]      Wo attention
 *   post_attn_residual  [n][n_embd]      x + attn_out
 *   ffn_norm            [n][n_embd]
 *   ffn_gate, ffn_up    [n][n_ff]
 *   ffn_silu            [n][n_ff]        silu(gate)
 *   ffn_swigl           [n][n_ff]        silu(gate) * up
 *   ffn_out             [n][n_embd]      Wdown ffn_swigl
 *   post_ffn_residual   [n][n_embd]      the layer output (alias layer_output)
 *   final_norm          [n][n_embd]      whole-model stage (layer RT_LAYER_MODEL)
 *   lm_head             [n][n_vocab]     whole-model stage: the logits of every position
 *
 * moe_router and moe_ffn_out are aprender's names for MoE models; they are listed so the
 * names parse but no architecture here reports them.
 */
enum rt_stage {
    RT_ST_EMBEDDING, RT_ST_ATTN_NORM, RT_ST_QKV_MATMUL, RT_ST_QKV_BIAS, RT_ST_Q_POST_ROPE,
    RT_ST_K_POST_ROPE, RT_ST_ATTN_SCORES, RT_ST_ATTN_SOFTMAX, RT_ST_ATTENTION, RT_ST_ATTN_OUT,
    RT_ST_POST_ATTN_RESIDUAL, RT_ST_FFN_NORM, RT_ST_FFN_GATE, RT_ST_FFN_UP, RT_ST_FFN_SILU,
    RT_ST_FFN_SWIGL, RT_ST_FFN_OUT, RT_ST_POST_FFN_RESIDUAL, RT_ST_MOE_ROUTER,
    RT_ST_MOE_FFN_OUT, RT_ST_FINAL_NORM, RT_ST_LM_HEAD,
    RT_ST_COUNT
};

#define RT_LAYER_MODEL (-1)            /* layer of the whole-model stages */
#define RT_STAGES_ALL  ((1u << RT_ST_COUNT) - 1)

const char *rt_stage_name(enum rt_stage s);          /* "attn_norm"; "?" when out of range */
/* 1 for embedding, final_norm and lm_head (dumped as <dir>/<stage>.bin, layer 0xFFFFFFFF). */
int         rt_stage_is_model(enum rt_stage s);
/*
 * Parse a comma list of stage names (case-insensitive; "all"; "layer_output" is
 * post_ffn_residual) into a bit mask.  -1 with ERR_USAGE naming the unknown stage.
 */
int         rt_stages_parse(const char *list, uint32_t *mask, struct err *e);

/*
 * Called with the values of one stage.  x holds rows * cols floats (position-major) and
 * is only valid during the call.  layer is 0..n_layer-1 or RT_LAYER_MODEL.  Return 0, or
 * -1 with e set to stop the evaluation (rt_eval then fails with that error).
 */
typedef int (*rt_stage_fn)(void *ud, enum rt_stage st, int layer, const float *x,
                           int64_t rows, int64_t cols, struct err *e);

struct rt_hook {
    rt_stage_fn fn;        /* NULL: no hook (the forward pass does no extra work) */
    void       *ud;
    uint32_t    stages;    /* bit (1u << stage) for each stage wanted */
    int         layer_lo;  /* per-layer stages are reported for layer_lo <= layer < layer_hi */
    int         layer_hi;
};

/* ---- the model */

struct rt_layer {
    struct rt_mat wq, wk, wv, wo, w_gate, w_up, w_down;
    float *attn_norm, *ffn_norm;           /* [n_embd], owned */
    float *bq, *bk, *bv;                   /* [q] [k] [v] or NULL (owned) */
    float *q_norm, *k_norm;                /* [head_dim] or NULL (owned; qwen3) */
};

struct rt_model {
    const struct model  *m;                /* borrowed: must outlive the rt_model */
    struct model_config  c;
    struct rt_mat        tok_embd;         /* [n_vocab][n_embd] */
    struct rt_mat        output;           /* [n_vocab][n_embd]; == tok_embd when tied */
    float               *output_norm;      /* [n_embd], owned */
    float               *rope_freqs;       /* [n_rot / 2] or NULL, owned: GGUF
                                              rope_freqs.weight (Llama 3.x scaling as
                                              llama.cpp's converter bakes it): each pair's
                                              frequency is divided by its factor */
    struct rt_layer     *layers;           /* [n_layer], owned */
};

/*
 * Load the config of m (model_config_load), check that the architecture is one we run
 * (ERR_UNSUPPORTED names it) and that every tensor has the shape the config implies and a
 * dtype rt_matmul can read (ERR_FORMAT names the tensor), and bind the weights.
 */
int  rt_model_load(struct rt_model *rm, const struct model *m, struct err *e);
void rt_model_free(struct rt_model *rm);             /* accepts a zeroed rt_model */

/* ---- evaluation */

struct rt_ctx;

struct rt_backend {
    const char *name;                                 /* "cpu", "cuda" */
    /* Allocate the backend's state (ctx->be) for ctx->n_ctx positions. */
    int  (*init)(struct rt_ctx *ctx, struct err *e);
    /* rt_eval's contract, arguments already validated. */
    int  (*eval)(struct rt_ctx *ctx, const int32_t *tok, int n, int pos0, float *logits,
                 unsigned flags, struct err *e);
    void (*free)(struct rt_ctx *ctx);
};

extern const struct rt_backend rt_backend_cpu;

/* RoPE inverse frequencies inv_freq[i], i < n_rot/2, after the config's scaling (linear,
 * llama3, yarn), and the cos/sin multiplier (*mscale, YaRN).  forward.c builds its tables
 * from it; the CUDA backend uploads the same tables. */
void rt_rope_freqs(const struct model_config *c, double *inv_freq, double *mscale);

/*
 * RoPE inverse frequencies are computed in double.  transformers casts its inv_freq
 * buffer to the dtype a model is loaded in, so a bf16 or f16 model run by transformers
 * (even when later cast to float32) rotates with frequencies rounded to that type: on the
 * bf16 fixture this moves logits by ~2e-3 relative at position 9.  RT_ROPE_FREQ_BF16 and
 * _F16 reproduce that, for checking against such references; the default is exact.
 */
enum rt_rope_freq { RT_ROPE_FREQ_EXACT = 0, RT_ROPE_FREQ_F32, RT_ROPE_FREQ_F16, RT_ROPE_FREQ_BF16 };

struct rt_params {
    int n_ctx;                          /* positions in the KV cache (> 0) */
    int n_threads;                      /* <= 0: threads_ncpu() */
    int n_batch;                        /* prompt tokens per pass; <= 0: 512 */
    const struct rt_backend *backend;   /* NULL: rt_backend_cpu */
    enum rt_rope_freq rope_freq;        /* rounding of the RoPE frequencies (default exact) */
    int no_repack;                      /* 1: no copy of the weights for one-token steps
                                         * (a caller that never makes any: n_repacked) */
};

struct rt_ctx {
    const struct rt_model   *rm;        /* borrowed */
    const struct rt_backend *backend;
    int                      n_ctx, n_threads, n_batch;
    enum rt_rope_freq        rope_freq;
    int                      no_repack; /* rt_params' */
    int                      n_past;    /* positions [0, n_past) hold valid K/V */
    struct rt_hook           hook;      /* set with rt_ctx_set_hook */
    void                    *be;        /* the backend's state */
    /* CPU: the weights repacked for decode (forward.c; APR_RT_REPACK=0 turns it off):
     * n_repacked matrices in repacked_bytes, or, when half the available memory could
     * not hold them (or they could not be mapped), none, and repack_skipped the bytes
     * they would have taken */
    int                      n_repacked;
    size_t                   repacked_bytes, repack_skipped;
};

int  rt_ctx_new(struct rt_ctx **ctx, const struct rt_model *rm, const struct rt_params *p,
                struct err *e);
void rt_ctx_free(struct rt_ctx *ctx);                 /* accepts NULL */
void rt_ctx_set_hook(struct rt_ctx *ctx, const struct rt_hook *h);   /* NULL: none */

enum rt_eval_flags {
    RT_EVAL_ALL_LOGITS = 1,   /* logits for every position [n][n_vocab], else the last [n_vocab] */
};

/*
 * Run n tokens at positions pos0 .. pos0+n-1 (n >= 1), writing their K/V into the cache,
 * and fill logits (may be NULL: no output projection).  pos0 <= ctx->n_past: evaluating
 * from an earlier position overwrites the cache from there (rollback); afterwards
 * n_past = pos0 + n.  Errors: a token outside [0, n_vocab) or pos0 + n > n_ctx
 * ("context overflow") with ERR_USAGE; allocation and hook failures.
 */
int  rt_eval(struct rt_ctx *ctx, const int32_t *tok, int n, int pos0, float *logits,
             unsigned flags, struct err *e);

#endif
