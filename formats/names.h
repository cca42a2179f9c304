/*
 * names.h - the one GGUF <-> Hugging Face <-> APR tensor name map, and the
 * llama-family Q/K row permutation (reference/gguf-quant.md 2.10 and 2.11).
 *
 * Spellings of the same tensor (layer N):
 *
 *   GGUF (llama.cpp)          Hugging Face (*ForCausalLM)                 APR (aprender)
 *   token_embd.weight         model.embed_tokens.weight                   llama-family: GGUF
 *   output_norm.weight        model.norm.weight                           qwen2/qwen3:  HF
 *   output.weight             lm_head.weight
 *   blk.N.attn_norm.*         model.layers.N.input_layernorm.*
 *   blk.N.attn_q.*            model.layers.N.self_attn.q_proj.*    (llama: rows permuted)
 *   blk.N.attn_k.*            model.layers.N.self_attn.k_proj.*    (llama: rows permuted)
 *   blk.N.attn_v.*            model.layers.N.self_attn.v_proj.*
 *   blk.N.attn_output.*       model.layers.N.self_attn.o_proj.*
 *   blk.N.attn_q_norm.*       model.layers.N.self_attn.q_norm.*    (qwen3)
 *   blk.N.attn_k_norm.*       model.layers.N.self_attn.k_norm.*    (qwen3)
 *   blk.N.ffn_norm.*          model.layers.N.post_attention_layernorm.*
 *   blk.N.ffn_gate.*          model.layers.N.mlp.gate_proj.*
 *   blk.N.ffn_up.*            model.layers.N.mlp.up_proj.*
 *   blk.N.ffn_down.*          model.layers.N.mlp.down_proj.*
 *
 * where * is "weight" or "bias".  The table is the same for every architecture we know
 * (llama, mistral, qwen2, qwen3): what differs per architecture is whether q/k rows are
 * permuted (names_qk_permute_kind) and which spelling APR files use (names_apr_style).
 * aprender keeps unknown GGUF suffixes under HF layer names ("blk.3.foo.weight" becomes
 * "model.layers.3.foo.weight"); names_canonical understands that spelling too.
 *
 * Names are struct slice (not NUL-terminated: they borrow the mapping).  Output goes to
 * a caller buffer of cap bytes, always NUL-terminated on success; NAMES_MAX is enough
 * for any name this map produces from an input of up to 256 bytes.
 */
#ifndef NAMES_H
#define NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/slice.h"

#define NAMES_MAX 512

/*
 * GGUF name -> HF name.  0: mapped (out holds the HF name); -1: not a name of the table
 * (the caller keeps the name as is; out is untouched); -2: out too small.
 * arch may be NULL (the table does not depend on it).
 */
int names_to_hf(const char *arch, struct slice gguf_name, char *out, size_t cap);
/* HF name -> GGUF name; same contract. */
int names_to_gguf(const char *arch, struct slice hf_name, char *out, size_t cap);

/*
 * The canonical spelling (the HF name) of any GGUF, HF or APR spelling, so that files in
 * different formats pair by name.  Always writes out: the canonical name (return 0), or
 * the input unchanged when it is not in the table (return -1); -2 when out is too small.
 * Does not depend on arch (it may be NULL), so callers can canonicalise without metadata.
 */
int names_canonical(const char *arch, struct slice any_name, char *out, size_t cap);

/* 1 when name is spelled the GGUF way ("blk.N.*", "token_embd.*", "output*"). */
int names_is_gguf_style(struct slice name);

/* Which spelling aprender uses in APR files for arch: "gguf" (llama family, unknown
 * architectures) or "hf" (qwen2, qwen2.5, qwen, qwen3, qwen3.5). */
const char *names_apr_style(const char *arch);

/* 1 for the architectures whose q/k rows llama.cpp's converter permutes (llama, mistral). */
int names_arch_permutes(const char *arch);

enum names_perm {
    NAMES_PERM_NONE = 0,
    NAMES_PERM_Q    = 1,   /* permute with H = n_head */
    NAMES_PERM_K    = 2,   /* permute with H = n_head_kv (n_head when absent) */
};

/*
 * Whether this tensor is a llama-family q or k projection (weight or bias) whose rows
 * move between GGUF and HF layout.  name may be spelled any way.  Always NONE for
 * architectures that do not permute (qwen2, qwen3, unknown).
 */
enum names_perm names_qk_permute_kind(const char *arch, struct slice name);

/*
 * The row permutation of gguf-quant.md 2.11, as a source-row lookup: for destination
 * row r, names_perm_row returns the source row, so dst[r] = src[names_perm_row(r, ...)].
 *   to_gguf = 1 (HF -> GGUF): dst[h*hd + 2*i + s] = src[h*hd + s*half + i]
 *   to_gguf = 0 (GGUF -> HF): dst[h*hd + s*half + i] = src[h*hd + 2*i + s]
 * with hd = n_rows / n_head, half = hd / 2.  Returns -1 when r is out of range or the
 * geometry is invalid (n_head < 1, n_rows not a multiple of n_head, hd odd).
 */
int64_t names_perm_row(int64_t r, int64_t n_rows, int64_t n_head, int to_gguf);

/* 0 when (n_rows, n_head) can be permuted; -1 with ERR_FORMAT otherwise. */
int names_perm_check(int64_t n_rows, int64_t n_head, struct err *e);

/*
 * Move whole rows of row_bytes bytes from src to dst (distinct buffers of n_rows rows)
 * by the permutation above.  Rows are copied byte for byte, so quantized rows stay
 * lossless; a 1-D bias is n_rows rows of one element.  Applying to_gguf = 1 and then
 * to_gguf = 0 is the identity.  Returns 0, or -1 with ERR_FORMAT for bad geometry or
 * ERR_USAGE when src and dst overlap.
 */
int names_permute_rows(const void *src, void *dst, int64_t n_rows, size_t row_bytes,
                       int64_t n_head, int to_gguf, struct err *e);

#endif
