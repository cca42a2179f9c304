/*
 * config.h - the validated model config: a transformer's hyperparameters from the
 * canonical metadata (formats/meta.h) of any format, checked against its tensors, and
 * the tensor of each role whatever the naming (GGUF, Hugging Face, aprender).
 *
 * Where each field comes from (canonical keys; {arch} = general.architecture):
 *
 *   arch          general.architecture; else aprender's architecture, model.architecture,
 *                 model_type, hf_model_type
 *   n_layer       {arch}.block_count; else the highest layer index of the tensors + 1
 *   n_embd        {arch}.embedding_length; else the embedding's columns
 *   n_head        {arch}.attention.head_count; else aprender's num_heads, model.num_heads
 *                 (required: shapes cannot tell it)
 *   n_head_kv     {arch}.attention.head_count_kv; else num_kv_heads, model.num_kv_heads;
 *                 else n_head
 *   head_dim      {arch}.attention.key_length; else hf.config.head_dim; else n_embd / n_head
 *   n_ff          {arch}.feed_forward_length; else the rows of layer 0's ffn_up
 *   n_vocab       {arch}.vocab_size; else hf.config.vocab_size; else the embedding's rows
 *   n_ctx_train   {arch}.context_length; 0 when unknown
 *   n_rot         {arch}.rope.dimension_count; else head_dim
 *   rope_theta    {arch}.rope.freq_base; else 10000 (llama.cpp's default when absent)
 *   rope_scaling  {arch}.rope.scaling.type ("linear", "yarn"; "none") with .factor,
 *                 .original_context_length, .attn_factor, .yarn_beta_fast/_slow; else
 *                 hf.config.rope_parameters (transformers 5) or hf.config.rope_scaling
 *                 ("linear", "yarn", "llama3", "default") with factor, low_freq_factor,
 *                 high_freq_factor, original_max_position_embeddings, attention_factor,
 *                 beta_fast, beta_slow.  Other types (longrope, dynamic) are refused
 *                 (ERR_UNSUPPORTED): a runtime would compute them wrong.  Defaults (the
 *                 transformers ones): factor 1, low 1, high 4, attn 1, beta 32 / 1.
 *   norm_eps      {arch}.attention.layer_norm_rms_epsilon (required)
 *   tied          no output tensor, or hf.config.tie_word_embeddings, or aprender's
 *                 tied_embeddings (its lm_head.weight is a copy of the embedding)
 *   has_qkv_bias  layer 0 has attn_q.bias;  has_qk_norm: layer 0 has attn_q_norm.weight
 *   bos_id/eos_id tokenizer.ggml.bos_token_id / eos_token_id; else hf.config.*; else -1
 *
 * RoPE style (how THIS file's Q/K rows must be rotated).  llama.cpp's converter permutes
 * the q/k rows of the llama family (llama, mistral) so that RoPE rotates adjacent pairs
 * (NORM); Hugging Face keeps the halves layout (NEOX); qwen2/qwen3 are never permuted
 * (NEOX everywhere).  So: GGUF llama = rows permuted = NORM; SafeTensors = NEOX; APR
 * follows its tensor names, because apr-convert (and aprender's importer) move the rows
 * with the names: a llama q_proj spelled the GGUF way ("blk.0.attn_q.weight") holds the
 * permuted rows, one spelled the HF way holds the HF rows.  aprender's "rope_type" field
 * is not trusted for this (apr-convert --names hf writes 0 for llama while the rows are
 * in HF order).  Other architectures are refused (ERR_UNSUPPORTED).
 *
 * Validation: every role's tensor, per layer where it is a layer tensor, must have the
 * shape the config implies (outermost first, a weight is [out, in]):
 *
 *   token_embd [n_vocab, n_embd]     output [n_vocab, n_embd]     *_norm [n_embd]
 *   attn_q [n_head*head_dim, n_embd]   attn_k, attn_v [n_head_kv*head_dim, n_embd]
 *   attn_output [n_embd, n_head*head_dim]   biases [rows of their weight]
 *   attn_q_norm, attn_k_norm [head_dim]   ffn_gate, ffn_up [n_ff, n_embd]   ffn_down [n_embd, n_ff]
 *
 * A required tensor that is missing, a shape that disagrees ("tensor 'blk.0.attn_k.weight':
 * shape [256, 256] does not match the config: expected [64, 256] (n_head_kv 2 x head_dim
 * 32, n_embd 256)") or a layer tensor beyond n_layer is ERR_FORMAT naming the tensor.
 *
 * (CONTRACTS.md refinements: arch is 64 bytes, as model_arch's buffer was; model_config_peek
 * replaces model_arch/model_heads for tools that only need names and head counts.)
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdint.h>

#include "../common/err.h"
#include "model.h"

enum rope_style {
    ROPE_NORM = 0,   /* adjacent pairs: GGUF llama (rows permuted) */
    ROPE_NEOX = 1,   /* halves: HF layout, qwen2/qwen3 */
};

enum rope_scaling_type { ROPE_SCALE_NONE, ROPE_SCALE_LINEAR, ROPE_SCALE_YARN, ROPE_SCALE_LLAMA3 };

struct model_config {
    char     arch[64];           /* "llama", "qwen2", "qwen3", ... */
    uint32_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train;
    uint32_t n_rot;              /* rotary dimensions (usually head_dim) */
    enum rope_style rope_style;  /* how THIS file's Q/K rows must be rotated */
    double   rope_theta;
    struct {
        enum rope_scaling_type type;
        double   factor, low_freq_factor, high_freq_factor, attn_factor, beta_fast, beta_slow;
        uint32_t orig_ctx;       /* original context length; 0 when unknown */
    } rope_scaling;
    double   norm_eps;
    int      tied_embeddings, has_qkv_bias, has_qk_norm;
    int      qk_rows_permuted;   /* 1: llama Q/K rows in llama.cpp's permuted order */
    int64_t  bos_id, eos_id;     /* -1 when none */
};

enum tensor_role {
    TR_TOK_EMBD, TR_OUTPUT_NORM, TR_OUTPUT,
    TR_ATTN_NORM, TR_ATTN_Q, TR_ATTN_K, TR_ATTN_V, TR_ATTN_OUT,
    TR_ATTN_Q_BIAS, TR_ATTN_K_BIAS, TR_ATTN_V_BIAS, TR_ATTN_Q_NORM, TR_ATTN_K_NORM,
    TR_FFN_NORM, TR_FFN_GATE, TR_FFN_UP, TR_FFN_DOWN,
    TR_COUNT
};

/* Derive c from m's metadata and check every tensor's shape against it (rules above).
 * 0, or -1 with e naming the file and the key or tensor. */
int model_config_load(const struct model *m, struct model_config *c, struct err *e);

/* The tensor of role r (layer ignored for the global roles), found under its GGUF, HF or
 * aprender spelling; NULL when absent (optional roles: biases, QK-norm, output when
 * tied).  Use TR_TOK_EMBD for TR_OUTPUT when that is NULL and c->tied_embeddings. */
const struct model_tensor *model_config_tensor(const struct model *m,
                                               const struct model_config *c,
                                               enum tensor_role r, int layer);

/* The GGUF stem of a role ("attn_q", "token_embd"); "?" when out of range. */
const char *model_config_role_name(enum tensor_role r);

/*
 * What apr-diff and apr-hash need, never failing and never validating: arch (the first
 * of general.architecture, architecture, model.architecture, model_type, hf_model_type;
 * "" when none) and n_head / n_head_kv ({arch}.attention.head_count[_kv], else
 * num_heads / num_kv_heads, else model.num_heads / model.num_kv_heads; values outside
 * 1..2^20 ignored; a missing KV count is the head count; 0 when unknown).  The other
 * fields are zero.  Reads the model's own keys (no namespace decoding): cheap.
 */
void model_config_peek(const struct model *m, struct model_config *c);

#endif
