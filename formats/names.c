/*
 * names.c - GGUF <-> HF <-> APR tensor names and the llama Q/K row permutation; see names.h.
 *
 * Two small tables drive everything: whole-model tensors (embedding, final norm, head)
 * and per-layer stems.  A name is split as <prefix><layer digits>.<stem>.<weight|bias>,
 * the stem is looked up in the column of the spelling it came in, and the name is
 * rebuilt with the other column.  Nothing allocates.
 */
#include "names.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/banned.h"

struct names_pair {
    const char *gguf;
    const char *hf;
};

/* Whole-model tensors: "<stem>.<weight|bias>". */
static const struct names_pair top_table[] = {
    { "token_embd",  "model.embed_tokens" },
    { "output_norm", "model.norm" },
    { "output",      "lm_head" },
};

/* Per-layer stems: "blk.N.<gguf>.<sfx>" <-> "model.layers.N.<hf>.<sfx>". */
static const struct names_pair layer_table[] = {
    { "attn_norm",   "input_layernorm" },
    { "attn_q",      "self_attn.q_proj" },
    { "attn_k",      "self_attn.k_proj" },
    { "attn_v",      "self_attn.v_proj" },
    { "attn_output", "self_attn.o_proj" },
    { "attn_q_norm", "self_attn.q_norm" },
    { "attn_k_norm", "self_attn.k_norm" },
    { "ffn_norm",    "post_attention_layernorm" },
    { "ffn_gate",    "mlp.gate_proj" },
    { "ffn_up",      "mlp.up_proj" },
    { "ffn_down",    "mlp.down_proj" },
};

#define N_TOP   (sizeof top_table / sizeof top_table[0])
#define N_LAYER (sizeof layer_table / sizeof layer_table[0])

#define GGUF_LAYER_PREFIX "blk."
#define HF_LAYER_PREFIX   "model.layers."

/* A parsed name: optional layer number (as digits), stem and suffix, all borrowed. */
struct parsed {
    struct slice layer;   /* digits; n == 0 for whole-model tensors */
    struct slice stem;
    struct slice sfx;     /* "weight" or "bias" */
};

static int slice_is(struct slice s, const char *c)
{
    size_t n = strlen(c);
    return s.n == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

/* Split off ".weight" / ".bias" at the end.  0 on success. */
static int split_suffix(struct slice name, struct slice *rest, struct slice *sfx)
{
    static const char *const sfxs[] = { "weight", "bias" };
    for (size_t i = 0; i < 2; i++) {
        size_t k = strlen(sfxs[i]);
        if (name.n > k + 1 && name.p[name.n - k - 1] == '.' &&
            memcmp(name.p + name.n - k, sfxs[i], k) == 0) {
            rest->p = name.p;
            rest->n = name.n - k - 1;
            sfx->p = name.p + name.n - k;
            sfx->n = k;
            return 0;
        }
    }
    return -1;
}

/*
 * Parse "<layer_prefix>N.<stem>.<sfx>" or "<stem>.<sfx>" (when no layer prefix matches).
 * Layer numbers are ASCII digits, at most 9 of them.
 */
static int parse(struct slice name, const char *layer_prefix, struct parsed *p)
{
    struct slice rest;
    size_t lp = strlen(layer_prefix), i;

    memset(p, 0, sizeof *p);
    if (split_suffix(name, &rest, &p->sfx) != 0)
        return -1;
    if (rest.n > lp && memcmp(rest.p, layer_prefix, lp) == 0) {
        for (i = lp; i < rest.n && rest.p[i] >= '0' && rest.p[i] <= '9'; i++)
            ;
        if (i == lp || i - lp > 9 || i >= rest.n || rest.p[i] != '.' || i + 1 >= rest.n)
            return -1;
        p->layer.p = rest.p + lp;
        p->layer.n = i - lp;
        p->stem.p = rest.p + i + 1;
        p->stem.n = rest.n - i - 1;
        return 0;
    }
    p->stem = rest;
    return 0;
}

static int emit(char *out, size_t cap, const char *prefix, struct slice layer, const char *stem,
                struct slice sfx)
{
    int n;
    if (layer.n)
        n = snprintf(out, cap, "%s%.*s.%s.%.*s", prefix, (int)layer.n, layer.p, stem,
                     (int)sfx.n, sfx.p);
    else
        n = snprintf(out, cap, "%s.%.*s", stem, (int)sfx.n, sfx.p);
    return n < 0 || (size_t)n >= cap ? -2 : 0;
}

/* Look the stem up in one column (from_gguf: GGUF column) and emit the other spelling. */
static int map(struct slice name, int from_gguf, char *out, size_t cap)
{
    struct parsed p;
    const char *lp = from_gguf ? GGUF_LAYER_PREFIX : HF_LAYER_PREFIX;
    const char *olp = from_gguf ? HF_LAYER_PREFIX : GGUF_LAYER_PREFIX;

    if (parse(name, lp, &p) != 0)
        return -1;
    if (p.layer.n) {
        for (size_t i = 0; i < N_LAYER; i++)
            if (slice_is(p.stem, from_gguf ? layer_table[i].gguf : layer_table[i].hf))
                return emit(out, cap, olp, p.layer,
                            from_gguf ? layer_table[i].hf : layer_table[i].gguf, p.sfx);
        return -1;
    }
    for (size_t i = 0; i < N_TOP; i++)
        if (slice_is(p.stem, from_gguf ? top_table[i].gguf : top_table[i].hf))
            return emit(out, cap, "", p.layer, from_gguf ? top_table[i].hf : top_table[i].gguf,
                        p.sfx);
    return -1;
}

int names_to_hf(const char *arch, struct slice gguf_name, char *out, size_t cap)
{
    (void)arch;
    return map(gguf_name, 1, out, cap);
}

int names_to_gguf(const char *arch, struct slice hf_name, char *out, size_t cap)
{
    (void)arch;
    return map(hf_name, 0, out, cap);
}

static int copy_out(struct slice s, char *out, size_t cap)
{
    if (s.n >= cap)
        return -2;
    if (s.n)
        memcpy(out, s.p, s.n);
    out[s.n] = 0;
    return 0;
}

int names_canonical(const char *arch, struct slice any, char *out, size_t cap)
{
    struct parsed p;
    int rc;

    (void)arch;
    rc = map(any, 1, out, cap);             /* GGUF spelling */
    if (rc != -1)
        return rc;
    if (map(any, 0, out, cap) != -1)        /* already HF: keep it as written */
        return copy_out(any, out, cap);
    /* aprender's mixed spelling: "model.layers.N.<gguf stem>.<sfx>" */
    if (parse(any, HF_LAYER_PREFIX, &p) == 0 && p.layer.n) {
        for (size_t i = 0; i < N_LAYER; i++)
            if (slice_is(p.stem, layer_table[i].gguf))
                return emit(out, cap, HF_LAYER_PREFIX, p.layer, layer_table[i].hf, p.sfx);
    }
    rc = copy_out(any, out, cap);
    return rc ? rc : -1;
}

int names_is_gguf_style(struct slice name)
{
    struct parsed p;
    if (slice_starts_with(name, GGUF_LAYER_PREFIX))
        return 1;
    if (parse(name, GGUF_LAYER_PREFIX, &p) != 0)
        return 0;
    for (size_t i = 0; i < N_TOP; i++)
        if (slice_is(p.stem, top_table[i].gguf))
            return 1;
    return 0;
}

static int arch_in(const char *arch, const char *const *list)
{
    if (!arch)
        return 0;
    for (; *list; list++)
        if (strcasecmp(arch, *list) == 0)
            return 1;
    return 0;
}

const char *names_apr_style(const char *arch)
{
    static const char *const hf[] = { "qwen2", "qwen2.5", "qwen", "qwen3", "qwen3_5", "qwen3.5",
                                      NULL };
    return arch_in(arch, hf) ? "hf" : "gguf";
}

int names_arch_permutes(const char *arch)
{
    static const char *const perm[] = { "llama", "mistral", NULL };
    return arch_in(arch, perm);
}

enum names_perm names_qk_permute_kind(const char *arch, struct slice name)
{
    char buf[NAMES_MAX];
    struct parsed p;

    if (!names_arch_permutes(arch))
        return NAMES_PERM_NONE;
    if (names_canonical(arch, name, buf, sizeof buf) != 0)
        return NAMES_PERM_NONE;
    if (parse(slice_from_cstr(buf), HF_LAYER_PREFIX, &p) != 0 || !p.layer.n)
        return NAMES_PERM_NONE;
    if (slice_is(p.stem, "self_attn.q_proj"))
        return NAMES_PERM_Q;
    if (slice_is(p.stem, "self_attn.k_proj"))
        return NAMES_PERM_K;
    return NAMES_PERM_NONE;
}

int64_t names_perm_row(int64_t r, int64_t n_rows, int64_t n_head, int to_gguf)
{
    int64_t hd, half, h, j;

    if (n_head < 1 || n_rows < 1 || n_rows % n_head != 0 || r < 0 || r >= n_rows)
        return -1;
    hd = n_rows / n_head;
    if (hd % 2 != 0)
        return -1;
    half = hd / 2;
    h = r / hd;
    j = r % hd;
    if (to_gguf)    /* dst j = 2*i + s  <-  src s*half + i */
        return h * hd + (j % 2) * half + j / 2;
    /* dst j = s*half + i  <-  src 2*i + s */
    return h * hd + 2 * (j % half) + j / half;
}

int names_perm_check(int64_t n_rows, int64_t n_head, struct err *e)
{
    if (n_head < 1 || n_rows < 1 || n_rows % n_head != 0 || (n_rows / n_head) % 2 != 0)
        return ERR(e, ERR_FORMAT,
                   "cannot permute %lld rows with %lld heads: need an even head size",
                   (long long)n_rows, (long long)n_head);
    return 0;
}

int names_permute_rows(const void *src, void *dst, int64_t n_rows, size_t row_bytes,
                       int64_t n_head, int to_gguf, struct err *e)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t total;

    if (names_perm_check(n_rows, n_head, e))
        return -1;
    if (__builtin_mul_overflow((size_t)n_rows, row_bytes, &total))
        return ERR(e, ERR_LIMIT, "permute: %lld rows of %zu bytes overflow", (long long)n_rows,
                   row_bytes);
    if (total && s < d + total && d < s + total)
        return ERR(e, ERR_USAGE, "permute: source and destination overlap");
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t from = names_perm_row(r, n_rows, n_head, to_gguf);
        memcpy(d + (size_t)r * row_bytes, s + (size_t)from * row_bytes, row_bytes);
    }
    return 0;
}
