/*
 * quant_mix.h - what apr-convert --dtype can make, and llama-quantize's per-tensor
 * type choices ("mixes" such as Q4_K_M) for GGUF tensor names.
 *
 * THE TABLE (qmix_table) is the one list of --dtype names: --help, README.md and
 * man/apr-convert.1 print or quote it (tests/cli checks that they agree).  Each row is
 * a name as llama-quantize spells it (matched case-insensitively), the llama_ftype it
 * writes as general.file_type, the default type of the quantized weights, and whether
 * llama-quantize's per-tensor rules apply (every quantized type) or not (F32, F16,
 * BF16: every weight matrix gets the type, norms stay F32).
 *
 * THE PLAN (qmix_plan) reproduces llama.cpp's llama_tensor_get_type and the loop
 * around it (src/llama-quant.cpp at c392e509, default params, with or without an
 * importance matrix: qmix_model.has_imatrix):
 *   - which tensors are quantized at all: names ending in "weight", 2-D or more
 *     (ggml_n_dims: trailing 1s do not count), not *_norm.weight, ffn_gate_inp,
 *     position/token-type embeddings, ssm_conv1d, RWKV time_mix_*, attn_rel_b;
 *   - the order: tensors sorted by layer number, then by name (llama's weights_map),
 *     which the attn_v / ffn_down / ffn_gate / ffn_up counters depend on;
 *   - the rules by role (output, token_embd, attn_v, attn_k, attn_q, ffn_down,
 *     attn_output, attn_qkv, ffn_gate, ffn_up), layer (use_more_bits: the first and
 *     last eighth and every third layer between), n_gqa, n_expert, arch (falcon) and
 *     model size (llama 70B);
 *   - tied embeddings: without output.weight, token_embd.weight gets the output rule;
 *   - fallbacks when a row (ne0) is not whole blocks: Q4_K -> Q5_0, Q5_K -> Q5_1,
 *     Q6_K -> Q8_0, Q2_K/Q3_K/IQ4_XS/IQ* -> IQ4_NL, TQ* -> Q4_0, then F16 when even
 *     that does not divide.  Where llama-quantize gives up ("Unsupported tensor
 *     size": Q4_0 .. Q8_0 with rows not a multiple of 32), we use F16 and say so.
 * With pure (llama-quantize --pure) every quantized tensor gets the default type,
 * rows permitting (same fallbacks).
 */
#ifndef QUANT_MIX_H
#define QUANT_MIX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"

struct qmix {
    const char *name;      /* as llama-quantize spells it */
    const char *alias_of;  /* "Q4_K" is llama-quantize's alias of "Q4_K_M"; else NULL */
    uint32_t    ftype;     /* llama_ftype: general.file_type */
    int         dtype;     /* enum dtype of the quantized weights by default */
    int         rules;     /* 1: llama_tensor_get_type applies (quantized types) */
    const char *what;      /* one line for --help */
    int         needs_imatrix; /* 1: made only with --imatrix (llama-quantize refuses
                                  these types without one) */
};

/* The table, n rows (aliases included). */
const struct qmix *qmix_table(size_t *n);

/*
 * The row for name (case-insensitive; aliases resolve to their target's row).  NULL
 * with e set (ERR_USAGE) when the name is unknown, or is a llama-quantize type that
 * apr-convert cannot make (the message says why: the IQ1, IQ2 and IQ3_XXS mixes and Q2_K_S
 * need an importance matrix).
 */
const struct qmix *qmix_find(const char *name, struct err *e);
/* The same, when an importance matrix is (have_imatrix = 1) or is not given: the rows
 * with needs_imatrix are refused without one, with a message saying so. */
const struct qmix *qmix_find_im(const char *name, int have_imatrix, struct err *e);

/* 1 when llama-quantize refuses to make this tensor's type without importance data
 * for it ("Missing importance matrix for tensor ..."): IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
 * IQ1_M except token_embd/output, and Q2_K of the Q2_K_S mix except token_embd. */
int qmix_tensor_needs_imatrix(const struct qmix *mix, const char *gguf_name, int dtype);

/* The --dtype names, comma separated, wrapped at width columns after indent spaces
 * (the one text --help, the README and the man page show). */
void qmix_print_names(FILE *f, int indent, int width);

struct qmix_tensor {
    const char *name;      /* GGUF name (NUL-terminated) */
    int         n_dims;
    int64_t     shape[4];  /* outermost first, like struct model_tensor */
    int         out;       /* result: the dtype, or -1 when llama-quantize keeps it */
    int         fallback;  /* result: 1 when out is a fallback for rows not whole blocks */
    int         refused;   /* result: 1 when llama-quantize would refuse ("Unsupported
                              tensor size"); out is then F16 */
};

struct qmix_model {
    const char *arch;      /* general.architecture ("llama", "falcon", ...), or NULL */
    uint32_t    n_layer;   /* 0: one more than the largest blk.N of the names */
    uint32_t    n_head, n_head_kv;  /* 0: n_gqa from the attn_q / attn_k row counts */
    uint32_t    n_expert;  /* 0: from a 3-D ffn_*_exps tensor, else 1 */
};

/*
 * Choose every tensor's type for mix (pure: no per-tensor rules).  t[] is in any
 * order; the choices are made in llama's order.  Returns 0, or -1 with e set when the
 * model is one llama-quantize refuses (a layer number out of range for an expert
 * tensor).  Never allocates more than one index array.
 */
int qmix_plan(const struct qmix *mix, int pure, const struct qmix_model *mm,
              struct qmix_tensor *t, size_t n, struct err *e);
/* The same with an importance matrix (has_imatrix = 1): llama-quantize's has_imatrix
 * rules (IQ3_XXS attn_v in IQ3_XXS, no Q3_K/Q4_K ffn_down for IQ3_XXS nor Q5_K for
 * IQ4_NL/IQ4_XS, Q4_0/Q5_0's first eighth of ffn_down in Q4_1/Q5_1). */
int qmix_plan_im(const struct qmix *mix, int pure, int has_imatrix,
                 const struct qmix_model *mm, struct qmix_tensor *t, size_t n, struct err *e);

#endif
