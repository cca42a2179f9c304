/*
 * quant_mix.c - the --dtype table and llama-quantize's per-tensor type choices.
 * See quant_mix.h for what is reproduced; the rules below follow the order of
 * llama_tensor_get_type (src/llama-quant.cpp at c392e509) branch by branch, so that
 * a reader can hold the two side by side.  Facts only were taken from there.
 */
#include "quant_mix.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../formats/dtype.h"
#include "../common/banned.h"

/* llama_ftype values (include/llama.h) */
enum {
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14,
    FT_Q4_K_M = 15, FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ2_XXS = 19,
    FT_IQ2_XS = 20, FT_Q2_K_S = 21, FT_IQ3_XS = 22, FT_IQ3_XXS = 23, FT_IQ1_S = 24,
    FT_IQ4_NL = 25, FT_IQ3_S = 26, FT_IQ3_M = 27, FT_IQ2_S = 28, FT_IQ2_M = 29,
    FT_IQ4_XS = 30, FT_IQ1_M = 31, FT_BF16 = 32, FT_TQ1_0 = 36, FT_TQ2_0 = 37,
};

static const struct qmix table[] = {
    { "F32",    NULL,     FT_F32,    DT_F32,    0, "32-bit float", 0 },
    { "F16",    NULL,     FT_F16,    DT_F16,    0, "16-bit float", 0 },
    { "BF16",   NULL,     FT_BF16,   DT_BF16,   0, "bfloat16", 0 },
    { "Q8_0",   NULL,     FT_Q8_0,   DT_Q8_0,   1, "8.5 bpw", 0 },
    { "Q6_K",   NULL,     FT_Q6_K,   DT_Q6_K,   1, "6.56 bpw", 0 },
    { "Q5_K_M", NULL,     FT_Q5_K_M, DT_Q5_K,   1, "Q5_K, some Q6_K", 0 },
    { "Q5_K_S", NULL,     FT_Q5_K_S, DT_Q5_K,   1, "Q5_K", 0 },
    { "Q5_K",   "Q5_K_M", FT_Q5_K_M, DT_Q5_K,   1, "alias of Q5_K_M", 0 },
    { "Q5_1",   NULL,     FT_Q5_1,   DT_Q5_1,   1, "6 bpw", 0 },
    { "Q5_0",   NULL,     FT_Q5_0,   DT_Q5_0,   1, "5.5 bpw", 0 },
    { "Q4_K_M", NULL,     FT_Q4_K_M, DT_Q4_K,   1, "Q4_K, some Q6_K", 0 },
    { "Q4_K_S", NULL,     FT_Q4_K_S, DT_Q4_K,   1, "Q4_K, some Q5_K", 0 },
    { "Q4_K",   "Q4_K_M", FT_Q4_K_M, DT_Q4_K,   1, "alias of Q4_K_M", 0 },
    { "Q4_1",   NULL,     FT_Q4_1,   DT_Q4_1,   1, "5 bpw", 0 },
    { "Q4_0",   NULL,     FT_Q4_0,   DT_Q4_0,   1, "4.5 bpw", 0 },
    { "IQ4_NL", NULL,     FT_IQ4_NL, DT_IQ4_NL, 1, "4.5 bpw non-linear", 0 },
    { "IQ4_XS", NULL,     FT_IQ4_XS, DT_IQ4_XS, 1, "4.25 bpw non-linear", 0 },
    { "IQ3_M",  NULL,     FT_IQ3_M,  DT_IQ3_S,  1, "IQ3_S, some Q4_K", 0 },
    { "IQ3_S",  NULL,     FT_IQ3_S,  DT_IQ3_S,  1, "3.44 bpw", 0 },
    { "IQ3_XS", NULL,     FT_IQ3_XS, DT_IQ3_S,  1, "IQ3_S, some IQ3_XXS", 0 },
    { "IQ3_XXS", NULL,    FT_IQ3_XXS, DT_IQ3_XXS, 1, "3.06 bpw (--imatrix)", 1 },
    { "Q3_K_L", NULL,     FT_Q3_K_L, DT_Q3_K,   1, "Q3_K, some Q5_K", 0 },
    { "Q3_K_M", NULL,     FT_Q3_K_M, DT_Q3_K,   1, "Q3_K, some Q4_K/Q5_K", 0 },
    { "Q3_K_S", NULL,     FT_Q3_K_S, DT_Q3_K,   1, "Q3_K", 0 },
    { "Q3_K",   "Q3_K_M", FT_Q3_K_M, DT_Q3_K,   1, "alias of Q3_K_M", 0 },
    { "Q2_K",   NULL,     FT_Q2_K,   DT_Q2_K,   1, "Q2_K, some Q3_K/Q4_K", 0 },
    { "Q2_K_S", NULL,     FT_Q2_K_S, DT_Q2_K,   1, "Q2_K, some Q4_K (--imatrix)", 1 },
    { "IQ2_M",  NULL,     FT_IQ2_M,  DT_IQ2_S,  1, "2.7 bpw (--imatrix)", 1 },
    { "IQ2_S",  NULL,     FT_IQ2_S,  DT_IQ2_XS, 1, "2.5 bpw (--imatrix)", 1 },
    { "IQ2_XS", NULL,     FT_IQ2_XS, DT_IQ2_XS, 1, "2.31 bpw (--imatrix)", 1 },
    { "IQ2_XXS", NULL,    FT_IQ2_XXS, DT_IQ2_XXS, 1, "2.06 bpw (--imatrix)", 1 },
    { "IQ1_M",  NULL,     FT_IQ1_M,  DT_IQ1_M,  1, "1.75 bpw (--imatrix)", 1 },
    { "IQ1_S",  NULL,     FT_IQ1_S,  DT_IQ1_S,  1, "1.56 bpw (--imatrix)", 1 },
    { "TQ2_0",  NULL,     FT_TQ2_0,  DT_TQ2_0,  1, "2.06 bpw ternary", 0 },
    { "TQ1_0",  NULL,     FT_TQ1_0,  DT_TQ1_0,  1, "1.69 bpw ternary", 0 },
};
#define N_TABLE (sizeof table / sizeof table[0])


const struct qmix *qmix_table(size_t *n)
{
    *n = N_TABLE;
    return table;
}

const struct qmix *qmix_find(const char *name, struct err *e)
{
    return qmix_find_im(name, 0, e);
}

const struct qmix *qmix_find_im(const char *name, int have_imatrix, struct err *e)
{
    for (size_t i = 0; i < N_TABLE; i++)
        if (strcasecmp(name, table[i].name) == 0) {
            if (table[i].alias_of)
                return qmix_find_im(table[i].alias_of, have_imatrix, e);
            if (table[i].needs_imatrix && !have_imatrix) {
                ERR(e, ERR_USAGE, "--dtype %s: needs an importance matrix (--imatrix FILE, "
                    "from llama-imatrix)", table[i].name);
                return NULL;
            }
            return &table[i];
        }
    ERR(e, ERR_USAGE, "--dtype: unknown type (see apr-convert --help)");
    return NULL;
}

int qmix_tensor_needs_imatrix(const struct qmix *mix, const char *name, int dtype)
{
    int emb = strcmp(name, "token_embd.weight") == 0;
    if (dtype == DT_IQ2_XXS || dtype == DT_IQ2_XS || dtype == DT_IQ2_S || dtype == DT_IQ1_S)
        return 1;
    if (dtype == DT_IQ1_M)
        return !emb && strcmp(name, "output.weight") != 0;
    return dtype == DT_Q2_K && mix->ftype == FT_Q2_K_S && !emb;
}

void qmix_print_names(FILE *f, int indent, int width)
{
    int col = indent;
    fprintf(f, "%*s", indent, "");
    fputs("keep", f);
    col += 4;
    for (size_t i = 0; i < N_TABLE; i++) {
        int len = (int)strlen(table[i].name);
        if (col + 2 + len > width) {
            fprintf(f, ",\n%*s%s", indent, "", table[i].name);
            col = indent + len;
        } else {
            fprintf(f, ", %s", table[i].name);
            col += 2 + len;
        }
    }
    fputc('\n', f);
}

/* ---------------------------------------------------------------------------------------
 * The plan.
 */

struct mstate {
    uint32_t ftype;
    int      falcon, is70b, has_imatrix;
    int64_t  n_gqa, n_expert, n_layer;
    int      has_output;
    int      n_attention_wv, i_attention_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
};

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* ggml's ne[i], i = 0 fastest */
static int64_t ne(const struct qmix_tensor *t, int i)
{
    return i < t->n_dims ? t->shape[t->n_dims - 1 - i] : 1;
}

/* ggml_n_dims: trailing (outermost) 1s do not count */
static int ggml_dims(const struct qmix_tensor *t)
{
    for (int i = t->n_dims - 1; i >= 1; i--)
        if (ne(t, i) > 1)
            return i + 1;
    return 1;
}

/* "blk.N." -> N, else -1 (sscanf("blk.%d.") in llama's weight_name_comparer) */
static long layer_of(const char *name)
{
    char *end;
    long v;
    if (strncmp(name, "blk.", 4) != 0 || !((name[4] >= '0' && name[4] <= '9') || name[4] == '-'))
        return -1;
    v = strtol(name + 4, &end, 10);
    return v;
}

static int quantized_at_all(const struct qmix_tensor *t)
{
    static const char *const never[] = {
        "_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight", "time_mix_first.weight",
        "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
    };
    if (!ends_with(t->name, "weight") || ggml_dims(t) < 2)
        return 0;
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (has(t->name, never[i]))
            return 0;
    return strcmp(t->name, "position_embd.weight") != 0 &&
           strcmp(t->name, "token_types.weight") != 0;
}

static int use_more_bits(int64_t i_layer, int64_t n_layers)
{
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

/* layer_info: the counter, or for MoE models the layer from the name */
static int layer_info(const struct mstate *s, int counter, const char *name, int64_t *i_layer,
                      struct err *e)
{
    *i_layer = counter;
    if (s->n_expert > 1) {
        long l = layer_of(name);
        if (l < 0 && strncmp(name, "blk.", 4) != 0)
            return ERR(e, ERR_FORMAT, "tensor '%s': cannot tell its layer", name);
        if (l < 0 || l >= s->n_layer)
            return ERR(e, ERR_FORMAT, "tensor '%s': layer %ld is not in [0, %lld)", name, l,
                       (long long)s->n_layer);
        *i_layer = l;
    }
    return 0;
}

static int is_iq2_family(uint32_t f)
{
    return f == FT_IQ2_XXS || f == FT_IQ2_XS || f == FT_IQ1_S || f == FT_IQ2_S ||
           f == FT_IQ2_M || f == FT_IQ1_M;
}

/* llama_tensor_get_type with default params */
static int get_type(struct mstate *s, int nt, const struct qmix_tensor *t, struct err *e)
{
    const char *name = t->name;
    const uint32_t ft = s->ftype;
    const int64_t nx = ne(t, 0);
    int64_t i_layer, n_layer = s->n_layer;

    if (strcmp(name, "output.weight") == 0 ||
        (!s->has_output && strcmp(name, "token_embd.weight") == 0)) {
        if (s->falcon || nx % dtype_get(nt)->blck != 0)
            nt = DT_Q8_0;
        else if (ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ3_XXS || ft == FT_IQ1_S ||
                 ft == FT_IQ2_S || ft == FT_IQ2_M || ft == FT_IQ1_M)
            nt = DT_Q5_K;
        else if (nt != DT_Q8_0)
            nt = DT_Q6_K;
    } else if (strcmp(name, "token_embd.weight") == 0) {
        if (ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ1_S || ft == FT_IQ1_M)
            nt = DT_Q2_K;
        else if (ft == FT_IQ2_S || ft == FT_IQ2_M || ft == FT_IQ3_XXS)
            nt = DT_IQ3_S;
        else if (ft == FT_TQ1_0 || ft == FT_TQ2_0)
            nt = DT_Q4_K;
    } else if (is_iq2_family(ft)) {
        int iq3 = ft == FT_IQ2_S || ft == FT_IQ2_M;
        if (has(name, "attn_v.weight")) {
            if (s->n_gqa >= 4 || s->n_expert >= 4)
                nt = DT_Q4_K;
            else
                nt = iq3 ? DT_IQ3_S : DT_Q2_K;
            s->i_attention_wv++;
        } else if (s->n_expert == 8 && has(name, "attn_k.weight")) {
            nt = DT_Q4_K;
        } else if (has(name, "ffn_down")) {
            if (s->i_ffn_down < n_layer / 8)
                nt = iq3 ? DT_IQ3_S : DT_Q2_K;
            s->i_ffn_down++;
        } else if (has(name, "attn_output.weight")) {
            if (s->n_expert == 8)
                nt = DT_Q5_K;
            else if (ft == FT_IQ1_S || ft == FT_IQ1_M)
                nt = DT_IQ2_XXS;
            else if (iq3)
                nt = DT_IQ3_S;
        }
    } else if (has(name, "attn_v.weight")) {
        if (ft == FT_Q2_K)
            nt = s->n_gqa >= 4 ? DT_Q4_K : DT_Q3_K;
        else if (ft == FT_Q2_K_S && s->n_gqa >= 4)
            nt = DT_Q4_K;
        else if (ft == FT_IQ3_XXS)
            nt = s->n_gqa >= 4 ? DT_Q4_K : !s->has_imatrix ? DT_IQ3_S : DT_IQ3_XXS;
        else if ((ft == FT_IQ3_XS || ft == FT_IQ3_S) && s->n_gqa >= 4)
            nt = DT_Q4_K;
        else if (ft == FT_IQ3_M)
            nt = DT_Q4_K;
        else if (ft == FT_Q3_K_M)
            nt = s->i_attention_wv < 2 ? DT_Q5_K : DT_Q4_K;
        else if (ft == FT_Q3_K_L)
            nt = DT_Q5_K;
        else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && s->n_gqa >= 4)
            nt = DT_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) &&
                 use_more_bits(s->i_attention_wv, s->n_attention_wv))
            nt = DT_Q6_K;
        else if (ft == FT_Q4_K_S && s->i_attention_wv < 4)
            nt = DT_Q5_K;
        if (s->is70b && (nt == DT_Q3_K || nt == DT_Q4_K))
            nt = DT_Q5_K;
        if (s->n_expert == 8)
            nt = DT_Q8_0;
        s->i_attention_wv++;
    } else if (has(name, "attn_k.weight")) {
        if (s->n_expert == 8)
            nt = DT_Q8_0;
        else if (ft == FT_IQ3_XS)
            nt = DT_IQ3_XXS;
        else if (ft == FT_IQ3_XXS)
            nt = DT_IQ2_S;
    } else if (has(name, "attn_q.weight")) {
        if (ft == FT_IQ3_XS)
            nt = DT_IQ3_XXS;
        else if (ft == FT_IQ3_XXS)
            nt = DT_IQ2_S;
    } else if (has(name, "ffn_down")) {
        if (layer_info(s, s->i_ffn_down, name, &i_layer, e))
            return -1;
        if (ft == FT_Q2_K)
            nt = DT_Q3_K;
        else if (ft == FT_Q2_K_S) {
            if (i_layer < n_layer / 8)
                nt = DT_Q4_K;
        } else if (ft == FT_IQ3_XXS && !s->has_imatrix)
            nt = i_layer < n_layer / 8 ? DT_Q4_K : DT_Q3_K;
        else if (ft == FT_Q3_K_M)
            nt = i_layer < n_layer / 16 ? DT_Q5_K
                 : !s->falcon || use_more_bits(i_layer, n_layer) ? DT_Q4_K : DT_Q3_K;
        else if (ft == FT_IQ3_M && (i_layer < n_layer / 8 ||
                                    (s->n_expert == 8 && use_more_bits(i_layer, n_layer))))
            nt = DT_Q4_K;
        else if (ft == FT_Q3_K_L)
            nt = s->falcon ? DT_Q4_K : DT_Q5_K;
        else if (ft == FT_Q4_K_M) {
            if (s->falcon)
                nt = i_layer < n_layer / 16 ? DT_Q6_K
                     : use_more_bits(i_layer, n_layer) ? DT_Q5_K : DT_Q4_K;
            else if (use_more_bits(i_layer, n_layer))
                nt = DT_Q6_K;
        } else if (i_layer < n_layer / 8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS) &&
                   !s->has_imatrix)
            nt = DT_Q5_K;
        else if (ft == FT_Q5_K_M && use_more_bits(i_layer, n_layer))
            nt = DT_Q6_K;
        else if (ft == FT_Q4_K_S && !s->falcon && i_layer < n_layer / 8)
            nt = DT_Q5_K;
        else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && s->has_imatrix && i_layer < n_layer / 8)
            nt = ft == FT_Q4_0 ? DT_Q4_1 : DT_Q5_1;
        s->i_ffn_down++;
    } else if (has(name, "attn_output.weight")) {
        if (!s->falcon) {
            if (s->n_expert == 8) {
                if (ft == FT_Q2_K || ft == FT_IQ3_XS || ft == FT_IQ3_XXS || ft == FT_Q3_K_S ||
                    ft == FT_Q3_K_M || ft == FT_IQ4_NL || ft == FT_Q4_K_S || ft == FT_Q4_K_M ||
                    ft == FT_IQ3_S || ft == FT_IQ3_M || ft == FT_IQ4_XS)
                    nt = DT_Q5_K;
            } else {
                if (ft == FT_Q2_K)
                    nt = DT_Q3_K;
                else if (ft == FT_IQ3_XXS)
                    nt = DT_IQ3_S;
                else if (ft == FT_Q3_K_M)
                    nt = DT_Q4_K;
                else if (ft == FT_Q3_K_L)
                    nt = DT_Q5_K;
                else if (ft == FT_IQ3_M)
                    nt = DT_Q4_K;
            }
        } else if (ft == FT_Q3_K_L) {
            nt = DT_Q4_K;
        }
    } else if (has(name, "attn_qkv.weight")) {
        if (ft == FT_Q3_K_M || ft == FT_Q3_K_L || ft == FT_IQ3_M)
            nt = DT_Q4_K;
        else if (ft == FT_Q4_K_M)
            nt = DT_Q5_K;
        else if (ft == FT_Q5_K_M)
            nt = DT_Q6_K;
    } else if (has(name, "ffn_gate")) {
        if (layer_info(s, s->i_ffn_gate, name, &i_layer, e))
            return -1;
        if (ft == FT_IQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8)
            nt = DT_IQ3_XXS;
        s->i_ffn_gate++;
    } else if (has(name, "ffn_up")) {
        if (layer_info(s, s->i_ffn_up, name, &i_layer, e))
            return -1;
        if (ft == FT_IQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8)
            nt = DT_IQ3_XXS;
        s->i_ffn_up++;
    }
    return nt;
}

/* The fallback of llama_tensor_get_type for rows that are not whole blocks of nt. */
static int fit_rows(int nt, int64_t nx, int *fallback, int *refuse)
{
    if (nx % dtype_get(nt)->blck == 0)
        return nt;
    *fallback = 1;
    switch (nt) {
    case DT_TQ1_0: case DT_TQ2_0:
        nt = DT_Q4_0;
        break;
    case DT_IQ2_XXS: case DT_IQ2_XS: case DT_IQ2_S: case DT_IQ3_XXS: case DT_IQ3_S:
    case DT_IQ1_S: case DT_IQ1_M: case DT_Q2_K: case DT_Q3_K: case DT_IQ4_XS:
        nt = DT_IQ4_NL;
        break;
    case DT_Q4_K: nt = DT_Q5_0; break;
    case DT_Q5_K: nt = DT_Q5_1; break;
    case DT_Q6_K: nt = DT_Q8_0; break;
    default:
        *refuse = 1;           /* llama-quantize: "Unsupported tensor size encountered" */
        return DT_F16;
    }
    if (nx % dtype_get(nt)->blck != 0)
        nt = DT_F16;
    return nt;
}

struct order { long layer; const struct qmix_tensor *t; size_t i; };

static int order_cmp(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return strcmp(x->t->name, y->t->name);
}

int qmix_plan(const struct qmix *mix, int pure, const struct qmix_model *mm,
              struct qmix_tensor *t, size_t n, struct err *e)
{
    return qmix_plan_im(mix, pure, 0, mm, t, n, e);
}

int qmix_plan_im(const struct qmix *mix, int pure, int has_imatrix,
                 const struct qmix_model *mm, struct qmix_tensor *t, size_t n, struct err *e)
{
    struct mstate s;
    struct order *ord;
    int64_t q_rows = 0, k_rows = 0, max_layer = -1;

    memset(&s, 0, sizeof s);
    s.ftype = mix->ftype;
    s.falcon = mm->arch && strcmp(mm->arch, "falcon") == 0;
    s.has_imatrix = has_imatrix;
    s.n_expert = mm->n_expert ? mm->n_expert : 1;
    for (size_t i = 0; i < n; i++) {
        const char *nm = t[i].name;
        long l = layer_of(nm);
        if (l > max_layer)
            max_layer = l;
        if (has(nm, "attn_v.weight") || has(nm, "attn_qkv.weight") || has(nm, "attn_kv_b.weight"))
            s.n_attention_wv++;
        else if (strcmp(nm, "output.weight") == 0)
            s.has_output = 1;
        if (!q_rows && has(nm, "attn_q.weight") && t[i].n_dims >= 2)
            q_rows = ne(&t[i], 1);
        if (!k_rows && has(nm, "attn_k.weight") && t[i].n_dims >= 2)
            k_rows = ne(&t[i], 1);
        if (!mm->n_expert && t[i].n_dims == 3 && has(nm, "_exps.weight"))
            s.n_expert = ne(&t[i], 2);
    }
    s.n_layer = mm->n_layer ? mm->n_layer : max_layer + 1;
    if (mm->n_head && mm->n_head_kv)
        s.n_gqa = mm->n_head / mm->n_head_kv;
    else
        s.n_gqa = q_rows && k_rows ? q_rows / k_rows : 1;
    if (s.n_layer == 80 && mm->arch) {
        if (strcmp(mm->arch, "llama") == 0)
            s.is70b = s.n_expert != 8 && s.n_gqa != 1;
        else
            s.is70b = strcmp(mm->arch, "deci") == 0 || strcmp(mm->arch, "qwen2") == 0 ||
                      strcmp(mm->arch, "olmo") == 0;
    }

    ord = calloc(n ? n : 1, sizeof *ord);
    if (!ord)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        ord[i].layer = layer_of(t[i].name);
        ord[i].t = &t[i];
        ord[i].i = i;
    }
    qsort(ord, n, sizeof *ord, order_cmp);
    for (size_t k = 0; k < n; k++) {
        struct qmix_tensor *x = &t[ord[k].i];
        int nt = mix->dtype;
        x->out = -1;
        x->fallback = x->refused = 0;
        if (!quantized_at_all(x))
            continue;
        if (mix->rules && !pure) {
            nt = get_type(&s, nt, x, e);
            if (nt < 0) {
                free(ord);
                return -1;
            }
        }
        if (mix->rules)
            nt = fit_rows(nt, ne(x, 0), &x->fallback, &x->refused);
        x->out = nt;
    }
    free(ord);
    return 0;
}
