/*
 * tok_load.c - a tokenizer from canonical metadata (tokenizer.ggml.* keys, through
 * formats/meta.h: a GGUF file's own keys, tokenizer.json mapped by the SafeTensors
 * reader, APR's apr_tools.kv namespace or aprender's tokenizer.* fields).
 *
 * The rules are llama.cpp's (src/llama-vocab.cpp, llama_vocab::impl::load), so that
 * the same file tokenizes the same way in both:
 *   - "llama": SentencePiece; defaults bos 1, eos 2, unk 0, add_bos on, add_eos off,
 *     add_space_prefix on (tokenizer.ggml.add_space_prefix overrides); tokenizer.ggml.pre
 *     is ignored.
 *   - "gpt2": byte-level BPE; defaults bos = eos = 11, add_bos off, clean-up of
 *     tokenization spaces on; tokenizer.ggml.pre picks the pre-tokenizer and some flags
 *     (llama-bpe: ignore_merges and add_bos; qwen2, deepseek-*, smollm: no clean-up);
 *     a missing pre is "default", an unknown one an error.
 *   - an empty token text becomes "[EMPTY_<id>]"; token_type absent: all NORMAL.
 *   - special ids from tokenizer.ggml.{bos,eos,eot,eom,unknown,padding}_token_id when
 *     inside the vocabulary; add_bos_token / add_eos_token override the defaults.
 *   - end of generation: EOS, EOT, EOM and every token whose text is one of
 *     <|eot_id|> <|im_end|> <|end|> <end_of_turn> <|endoftext|> <|eom_id|> <EOT>,
 *     plus the FIM pad/repo/file-separator tokens; those texts (and the FIM ones) are
 *     forced to CONTROL type as llama.cpp does.
 *   - phi-3 (general.name contains "phi-3"/"phi3"): special tokens strip the spaces on
 *     their right, except <unk>, <s>, <|endoftext|>; </s> too.
 */
#include "tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/slice.h"
#include "../formats/meta.h"
#include "../common/banned.h"

#define TOK_MAX_VOCAB  (1u << 24)      /* 16M tokens: far past any real vocabulary */
#define TOK_MAX_MERGES (1u << 24)

/* ---- hashing and the string table */

uint64_t tok_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);

    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = 0;
        memcpy(&v, s, n);
        h = (h ^ v) * 0x94d049bb133111ebULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static int strtab_rehash(struct tok_strtab *s, size_t cap, struct err *e)
{
    int32_t *slot = malloc(cap * sizeof *slot);

    if (!slot)
        return ERR(e, ERR_NOMEM, "out of memory");
    memset(slot, 0xff, cap * sizeof *slot);
    for (uint32_t id = 0; id < s->n; id++) {
        size_t i = (size_t)tok_hash(s->blob + s->off[id], s->len[id]) & (cap - 1);
        int dup = 0;
        while (slot[i] >= 0) {
            int32_t o = slot[i];
            if (s->len[o] == s->len[id] &&
                memcmp(s->blob + s->off[o], s->blob + s->off[id], s->len[id]) == 0) {
                dup = 1;
                break;
            }
            i = (i + 1) & (cap - 1);
        }
        if (!dup)
            slot[i] = (int32_t)id;
    }
    free(s->slot);
    s->slot = slot;
    s->mask = cap - 1;
    return 0;
}

int32_t tok_strtab_find(const struct tok_strtab *s, const char *p, size_t n)
{
    size_t i;

    if (!s->slot)
        return -1;
    i = (size_t)tok_hash(p, n) & s->mask;
    for (;;) {
        int32_t id = s->slot[i];
        if (id < 0)
            return -1;
        if (s->len[id] == n && memcmp(s->blob + s->off[id], p, n) == 0)
            return id;
        i = (i + 1) & s->mask;
    }
}

/* Append string p[0, n) as the next id.  When the text is already present, the
 * lookup answers the new id if last_wins (llama.cpp's token_to_id[word] = i), else
 * the first; *id is the new id either way. */
int tok_strtab_add(struct tok_strtab *s, const char *p, size_t n, int last_wins, int32_t *id,
                   struct err *e)
{
    size_t i;

    if (n > UINT32_MAX || s->n >= INT32_MAX - 1)
        return ERR(e, ERR_LIMIT, "tokenizer: string table too large");
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 1024;
        uint64_t *off = realloc(s->off, (size_t)cap * sizeof *off);
        uint32_t *len;
        if (!off)
            return ERR(e, ERR_NOMEM, "out of memory");
        s->off = off;
        len = realloc(s->len, (size_t)cap * sizeof *len);
        if (!len)
            return ERR(e, ERR_NOMEM, "out of memory");
        s->len = len;
        s->cap = cap;
    }
    if (s->blob_len + n + 1 > s->blob_cap) {
        size_t cap = s->blob_cap ? s->blob_cap : 65536;
        char *b;
        while (cap < s->blob_len + n + 1)
            cap *= 2;
        b = realloc(s->blob, cap);
        if (!b)
            return ERR(e, ERR_NOMEM, "out of memory");
        s->blob = b;
        s->blob_cap = cap;
    }
    if (n)
        memcpy(s->blob + s->blob_len, p, n);
    s->blob[s->blob_len + n] = 0;
    s->off[s->n] = s->blob_len;
    s->len[s->n] = (uint32_t)n;
    s->blob_len += n + 1;
    *id = (int32_t)s->n++;
    if (!s->slot || (size_t)s->n * 2 > s->mask + 1) {
        size_t cap = s->slot ? (s->mask + 1) * 2 : 4096;
        while ((size_t)s->n * 2 > cap)
            cap *= 2;
        if (strtab_rehash(s, cap, e))
            return -1;
        if (!last_wins)
            return 0;
    }
    i = (size_t)tok_hash(p, n) & s->mask;
    for (;;) {
        int32_t o = s->slot[i];
        if (o < 0 || o == *id) {
            s->slot[i] = *id;
            return 0;
        }
        if (s->len[o] == n && memcmp(s->blob + s->off[o], p, n) == 0) {
            if (last_wins)
                s->slot[i] = *id;
            return 0;
        }
        i = (i + 1) & s->mask;
    }
}

void tok_strtab_free(struct tok_strtab *s)
{
    free(s->blob);
    free(s->off);
    free(s->len);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

/* ---- metadata access: the canonical keys of any format */

struct src {
    const struct meta *mt;   /* canonical keys: GGUF's own, tokenizer.json's, APR's */
    const char *path;
    enum model_format format;
};

static const struct model_kv *find(const struct src *s, const char *key)
{
    return meta_find(s->mt, key);
}

static int get_u64(const struct src *s, const char *key, uint64_t *v)
{
    const struct model_kv *kv = find(s, key);

    if (!kv)
        return -1;
    switch (kv->val.type) {
    case MV_U8: case MV_U16: case MV_U32: case MV_U64: case MV_BOOL:
        *v = kv->val.v.u;
        return 0;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64:
        if (kv->val.v.i < 0)
            return -1;
        *v = (uint64_t)kv->val.v.i;
        return 0;
    default:
        return -1;
    }
}

static int get_str(const struct src *s, const char *key, struct slice *v)
{
    const struct model_kv *kv = find(s, key);

    if (!kv || kv->val.type != MV_STR)
        return -1;
    *v = kv->val.v.s;
    return 0;
}

static const struct model_kv *kv_arr(const struct src *s, const char *key,
                                     enum model_vtype elem, int need, struct err *e)
{
    const struct model_kv *kv = find(s, key);

    if (!kv) {
        if (need)
            ERR(e, ERR_FORMAT, "%s: no '%s' key: not a tokenizer", s->path, key);
        return NULL;
    }
    if (kv->val.type != MV_ARR ||
        (elem == MV_STR ? kv->val.v.arr.elem != MV_STR
                        : model_vtype_size(kv->val.v.arr.elem) == 0 || !kv->val.v.arr.raw)) {
        ERR(e, ERR_FORMAT, "%s: key '%s' is not an array of %s", s->path, key,
            elem == MV_STR ? "strings" : "numbers");
        return NULL;
    }
    return kv;
}

static int kv_bool(const struct src *s, const char *key, int *v)
{
    uint64_t u;

    if (get_u64(s, key, &u))
        return 0;
    *v = u != 0;
    return 1;
}

/* An id key inside the vocabulary: sets *id, else leaves it (llama.cpp warns and keeps
 * its default for an id past the vocabulary). */
static void kv_id(const struct src *s, const char *key, uint32_t n, int32_t *id)
{
    uint64_t u;

    if (get_u64(s, key, &u) == 0 && u < n)
        *id = (int32_t)u;
}

/* ---- pre-tokenizer flags (llama.cpp's table; the regexes are in tok_pre.c) */

static int bpe_flags(struct tokenizer *t, const char *pre, struct err *e)
{
    static const char *const no_clean[] = {
        "deepseek-llm", "deepseek-coder", "deepseek-v3", "command-r", "qwen2",
        "deepseek-r1-qwen", "poro-chat", "viking", "tekken", "smollm", "chameleon",
    };
    static const char *const known[] = {
        "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "deepseek-llm",
        "deepseek-coder", "deepseek-v3", "falcon", "mpt", "starcoder", "gpt-2", "phi-2",
        "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
        "jina-v2-code", "roberta-bpe", "refact", "command-r", "qwen2", "deepseek-r1-qwen",
        "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "chatglm-bpe", "viking",
        "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone",
        "chameleon", "minerva-7b", "megrez",
    };
    int ok = 0;

    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        ok |= strcmp(pre, known[i]) == 0;
    if (!ok)
        return ERR(e, ERR_UNSUPPORTED, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", pre);
    t->clean_spaces = 1;
    for (size_t i = 0; i < sizeof no_clean / sizeof *no_clean; i++)
        if (strcmp(pre, no_clean[i]) == 0)
            t->clean_spaces = 0;
    if (!strcmp(pre, "llama3") || !strcmp(pre, "llama-v3") || !strcmp(pre, "llama-bpe") ||
        !strcmp(pre, "falcon3") || !strcmp(pre, "tekken")) {
        t->ignore_merges = 1;
        t->add_bos = 1;
    }
    if (!strcmp(pre, "chameleon"))
        t->add_bos = 1;
    if (!strcmp(pre, "chatglm-bpe"))
        t->bos = -1;
    return 0;
}

/* ---- BPE: the byte-level alphabet and the merge table */

static void byte_alphabet(struct tokenizer *t)
{
    int n = 0;

    for (int b = 0; b < 256; b++) {
        unsigned cp;
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
            cp = (unsigned)b;
        else
            cp = 256u + (unsigned)n++;
        if (cp < 0x80) {
            t->byte_enc[b][0] = (char)cp;
            t->byte_enc_len[b] = 1;
        } else {
            t->byte_enc[b][0] = (char)(0xC0 | (cp >> 6));
            t->byte_enc[b][1] = (char)(0x80 | (cp & 0x3F));
            t->byte_enc_len[b] = 2;
        }
    }
}

static int merge_put(struct tokenizer *t, int32_t l, int32_t r, int32_t rank, int32_t res)
{
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & t->merge_mask;

    for (;;) {
        struct tok_merge *m = &t->merge[i];
        if (m->key == UINT64_MAX) {
            m->key = key;
            m->rank = rank;
            m->result = res;
            return 0;
        }
        if (m->key == key) {   /* a repeated pair: llama.cpp's map keeps the first rank */
            return 0;
        }
        i = (i + 1) & t->merge_mask;
    }
}

static int load_merges(struct tokenizer *t, const struct model_kv *mk, struct err *e)
{
    uint64_t n = mk->val.v.arr.n;
    size_t cap = 16;
    char *buf = NULL;
    size_t buf_cap = 0;
    int rc = -1;

    if (n > TOK_MAX_MERGES)
        return ERR(e, ERR_LIMIT, "tokenizer.ggml.merges: %llu merges is over the limit",
                   (unsigned long long)n);
    while (cap < n * 2 + 16)
        cap *= 2;
    t->merge = malloc(cap * sizeof *t->merge);
    if (!t->merge)
        return ERR(e, ERR_NOMEM, "out of memory");
    memset(t->merge, 0xff, cap * sizeof *t->merge);
    t->merge_mask = cap - 1;
    for (uint64_t i = 0; i < n; i++) {
        struct slice s = mk->val.v.arr.strs[i];
        const char *sp = s.n > 1 ? memchr(s.p + 1, ' ', s.n - 1) : NULL;
        size_t nl, nr;
        int32_t l, r, res;
        /* llama.cpp: split at the first space after the first byte; none -> ("", "") */
        if (!sp)
            continue;
        nl = (size_t)(sp - s.p);
        nr = s.n - nl - 1;
        l = tok_strtab_find(&t->st, s.p, nl);
        if (l < 0 && tok_strtab_add(&t->st, s.p, nl, 0, &l, e))
            goto done;
        r = tok_strtab_find(&t->st, sp + 1, nr);
        if (r < 0 && tok_strtab_add(&t->st, sp + 1, nr, 0, &r, e))
            goto done;
        if (nl + nr > buf_cap) {
            char *nb = realloc(buf, nl + nr + 64);
            if (!nb) {
                ERR(e, ERR_NOMEM, "out of memory");
                goto done;
            }
            buf = nb;
            buf_cap = nl + nr + 64;
        }
        memcpy(buf, s.p, nl);
        memcpy(buf + nl, sp + 1, nr);
        res = tok_strtab_find(&t->st, buf, nl + nr);
        if (res < 0 && tok_strtab_add(&t->st, buf, nl + nr, 0, &res, e))
            goto done;
        merge_put(t, l, r, (int32_t)i, res);
    }
    for (int b = 0; b < 256; b++)
        t->byte_sym[b] = tok_strtab_find(&t->st, t->byte_enc[b], t->byte_enc_len[b]);
    rc = 0;
done:
    free(buf);
    return rc;
}

/* ---- special tokens */

static int32_t find_text_n(const struct tokenizer *t, const char *s, size_t n)
{
    int32_t id = tok_strtab_find(&t->st, s, n);
    return id >= 0 && (uint32_t)id < t->n_vocab ? id : -1;
}

static int32_t find_text(const struct tokenizer *t, const char *s)
{
    return find_text_n(t, s, strlen(s));
}

static void force_control(struct tokenizer *t, int32_t id)
{
    if (id >= 0 && !(t->attr[id] & TA_CONTROL))
        t->attr[id] = TA_CONTROL;
}

static int add_eog(struct tokenizer *t, int32_t id, struct err *e)
{
    int32_t *p;

    if (id < 0)
        return 0;
    for (uint32_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return 0;
    p = realloc(t->eog, (t->n_eog + 1) * sizeof *p);
    if (!p)
        return ERR(e, ERR_NOMEM, "out of memory");
    t->eog = p;
    t->eog[t->n_eog++] = id;
    return 0;
}

static const struct tokenizer *g_sort_tok;   /* qsort has no context argument */

static int special_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = g_sort_tok->st.len[x], ly = g_sort_tok->st.len[y];

    if (lx != ly)
        return lx > ly ? -1 : 1;
    return (x > y) - (x < y);
}

#define FW_L "<\xef\xbd\x9c"     /* "<｜" (DeepSeek's full-width bar) */
#define FW_R "\xef\xbd\x9c>"
#define SPM_SP "\xe2\x96\x81"      /* "▁" */

static int specials(struct tokenizer *t, const struct src *m, struct err *e)
{
    static const char *const eot_text[] = { "<|eot_id|>", "<|im_end|>", "<|end|>",
        "<end_of_turn>", "<|endoftext|>", "<EOT>",
        (FW_L "end" SPM_SP "of" SPM_SP "sentence" FW_R) };
    static const char *const eog_text[] = { "<|eot_id|>", "<|im_end|>", "<|end|>",
        "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>" };
    static const char *const fim_text[][4] = {
        { "<|fim_prefix|>", "<fim-prefix>", (FW_L "fim" SPM_SP "begin" FW_R), "<PRE>" },
        { "<|fim_suffix|>", "<fim-suffix>", (FW_L "fim" SPM_SP "hole" FW_R), "<SUF>" },
        { "<|fim_middle|>", "<fim-middle>", (FW_L "fim" SPM_SP "end" FW_R), "<MID>" },
        { "<|fim_pad|>", "<fim-pad>", "<PAD>", NULL },
        { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>" },
        { "<|file_sep|>", NULL, NULL, NULL },
    };
    static const char *const fim_key[] = {
        "tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id",
        "tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.fim_pad_token_id",
        "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id",
    };
    int32_t fim[6] = { -1, -1, -1, -1, -1, -1 };
    uint32_t n = t->n_vocab;
    int v;

    kv_id(m, "tokenizer.ggml.bos_token_id", n, &t->bos);
    kv_id(m, "tokenizer.ggml.eos_token_id", n, &t->eos);
    kv_id(m, "tokenizer.ggml.eot_token_id", n, &t->eot);
    kv_id(m, "tokenizer.ggml.eom_token_id", n, &t->eom);
    kv_id(m, "tokenizer.ggml.unknown_token_id", n, &t->unk);
    kv_id(m, "tokenizer.ggml.padding_token_id", n, &t->pad);
    for (int k = 0; k < 6; k++)
        kv_id(m, fim_key[k], n, &fim[k]);
    kv_id(m, "tokenizer.ggml.prefix_token_id", n, &fim[0]);
    kv_id(m, "tokenizer.ggml.suffix_token_id", n, &fim[1]);
    kv_id(m, "tokenizer.ggml.middle_token_id", n, &fim[2]);
    if (kv_bool(m, "tokenizer.ggml.add_bos_token", &v))
        t->add_bos = v;
    if (kv_bool(m, "tokenizer.ggml.add_eos_token", &v))
        t->add_eos = v;

    if (t->eot < 0)
        for (size_t i = 0; i < sizeof eot_text / sizeof *eot_text && t->eot < 0; i++)
            t->eot = find_text(t, eot_text[i]);
    force_control(t, t->eot);
    if (t->eom < 0)
        t->eom = find_text(t, "<|eom_id|>");
    force_control(t, t->eom);
    for (int k = 0; k < 6; k++) {
        for (int j = 0; j < 4 && fim[k] < 0; j++)
            if (fim_text[k][j])
                fim[k] = find_text(t, fim_text[k][j]);
        force_control(t, fim[k]);
    }
    if (add_eog(t, fim[3], e) || add_eog(t, fim[4], e) || add_eog(t, fim[5], e))
        return -1;
    for (size_t i = 0; i < sizeof eog_text / sizeof *eog_text; i++) {
        int32_t id = find_text(t, eog_text[i]);
        force_control(t, id);
        if (add_eog(t, id, e))
            return -1;
    }
    if (add_eog(t, t->eos, e) || add_eog(t, t->eot, e) || add_eog(t, t->eom, e))
        return -1;

    /* the special-token cache, longest first */
    for (uint32_t id = 0; id < n; id++)
        if (t->attr[id] & (TA_CONTROL | TA_USER | TA_UNKNOWN))
            t->n_special++;
    t->special = malloc((t->n_special ? t->n_special : 1) * sizeof *t->special);
    if (!t->special)
        return ERR(e, ERR_NOMEM, "out of memory");
    t->n_special = 0;
    for (uint32_t id = 0; id < n; id++)
        if (t->attr[id] & (TA_CONTROL | TA_USER | TA_UNKNOWN))
            t->special[t->n_special++] = (int32_t)id;
    g_sort_tok = t;
    qsort(t->special, t->n_special, sizeof *t->special, special_cmp);

    /* phi-3: special tokens strip the spaces on their right */
    {
        struct slice name;
        char low[256];
        if (get_str(m, "general.name", &name) == 0) {
            size_t k = name.n < sizeof low - 1 ? name.n : sizeof low - 1;
            for (size_t i = 0; i < k; i++)
                low[i] = (char)((name.p[i] >= 'A' && name.p[i] <= 'Z') ? name.p[i] + 32 : name.p[i]);
            low[k] = 0;
            if (strstr(low, "phi-3") || strstr(low, "phi3")) {
                static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>" };
                int32_t id;
                for (uint32_t i = 0; i < t->n_special; i++)
                    t->attr[t->special[i]] |= TA_RSTRIP;
                if ((id = find_text(t, "</s>")) >= 0)
                    t->attr[id] |= TA_RSTRIP;
                for (size_t i = 0; i < 3; i++)
                    if ((id = find_text(t, keep[i])) >= 0)
                        t->attr[id] &= (uint16_t)~TA_RSTRIP;
            }
        }
    }
    return 0;
}

/* ---- tok_load */

static uint16_t attr_of(int64_t type)
{
    switch (type) {
    case TOK_T_NORMAL:       return TA_NORMAL;
    case TOK_T_UNKNOWN:      return TA_UNKNOWN;
    case TOK_T_CONTROL:      return TA_CONTROL;
    case TOK_T_USER_DEFINED: return TA_USER;
    case TOK_T_UNUSED:       return TA_UNUSED;
    case TOK_T_BYTE:         return TA_BYTE;
    default:                 return TA_UNDEFINED;
    }
}

static int load(struct tokenizer *t, const struct src *m, struct err *e)
{
    const char *path = m->path;
    const struct model_kv *tk, *sc, *ty, *mk;
    struct slice model_name, pre = { NULL, 0 }, hf = { NULL, 0 }, tmpl;
    char pre_buf[64];
    uint64_t n;
    int v;

    if (get_str(m, "tokenizer.ggml.model", &model_name))
        return ERR(e, ERR_FORMAT, "%s: no 'tokenizer.ggml.model' key: the model has no tokenizer",
                   path);
    if (slice_eq_cstr(model_name, "llama")) {
        t->kind = TOK_SPM;
    } else if (slice_eq_cstr(model_name, "gpt2")) {
        t->kind = TOK_BPE;
    } else {
        return ERR(e, ERR_UNSUPPORTED, "%s: tokenizer model '%.*s' is not supported "
                   "(tokenizer.ggml.model: 'llama' and 'gpt2' are)", path,
                   (int)(model_name.n > 64 ? 64 : model_name.n), model_name.p);
    }
    tk = kv_arr(m, "tokenizer.ggml.tokens", MV_STR, 1, e);
    if (!tk)
        return -1;
    n = tk->val.v.arr.n;
    if (n == 0 || n > TOK_MAX_VOCAB)
        return ERR(e, ERR_FORMAT, "%s: tokenizer.ggml.tokens: %llu tokens", path,
                   (unsigned long long)n);
    sc = kv_arr(m, "tokenizer.ggml.scores", MV_F32, 0, e);
    ty = kv_arr(m, "tokenizer.ggml.token_type", MV_I32, 0, e);
    if (!err_ok(e))
        return -1;
    if ((sc && sc->val.v.arr.n != n) || (ty && ty->val.v.arr.n != n))
        return ERR(e, ERR_FORMAT, "%s: tokenizer.ggml.%s has %llu entries for %llu tokens", path,
                   sc && sc->val.v.arr.n != n ? "scores" : "token_type",
                   (unsigned long long)(sc && sc->val.v.arr.n != n ? sc->val.v.arr.n
                                                                   : ty->val.v.arr.n),
                   (unsigned long long)n);
    t->n_vocab = (uint32_t)n;
    t->score = calloc(n, sizeof *t->score);
    t->attr = calloc(n, sizeof *t->attr);
    t->type = calloc(n, sizeof *t->type);
    if (!t->score || !t->attr || !t->type)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        struct slice s = tk->val.v.arr.strs[i];
        char empty[32];
        int32_t id;
        if (s.n == 0) {
            int k = snprintf(empty, sizeof empty, "[EMPTY_%llu]", (unsigned long long)i);
            s.p = empty;
            s.n = (size_t)k;
        }
        if (tok_strtab_add(&t->st, s.p, s.n, 1, &id, e))
            return -1;
        t->score[i] = sc ? (float)model_arr_get_f64(&sc->val, i) : 0.0f;
        t->type[i] = (uint8_t)(ty ? (int)model_arr_get_i64(&ty->val, i) & 0xff : TOK_T_NORMAL);
        t->attr[i] = ty ? attr_of(model_arr_get_i64(&ty->val, i)) : TA_NORMAL;
    }

    t->bos = t->eos = t->eot = t->eom = t->unk = t->pad = -1;
    if (t->kind == TOK_SPM) {
        t->bos = n > 1 ? 1 : -1;
        t->eos = n > 2 ? 2 : -1;
        t->unk = 0;
        t->add_space_prefix = 1;
        t->add_bos = 1;
        snprintf(t->pre_name, sizeof t->pre_name, "%s", "");
    } else {
        t->bos = t->eos = n > 11 ? 11 : -1;
        if (get_str(m, "tokenizer.ggml.pre", &pre) || pre.n == 0)
            pre = SLICE_LIT("default");
        if (pre.n >= sizeof pre_buf)
            return ERR(e, ERR_UNSUPPORTED, "%s: unknown pre-tokenizer '%.*s' (tokenizer.ggml.pre)",
                       path, 64, pre.p);
        memcpy(pre_buf, pre.p, pre.n);
        pre_buf[pre.n] = 0;
        if (memchr(pre_buf, 0, pre.n))
            return ERR(e, ERR_UNSUPPORTED, "%s: unknown pre-tokenizer (tokenizer.ggml.pre has a NUL)",
                       path);
        if (bpe_flags(t, pre_buf, e)) {
            err_prefix(e, "%s", path);
            return -1;
        }
        snprintf(t->pre_name, sizeof t->pre_name, "%s", pre_buf);
    }
    if (kv_bool(m, "tokenizer.ggml.add_space_prefix", &v))
        t->add_space_prefix = v;

    if (t->kind == TOK_SPM) {
        static const char hex[] = "0123456789ABCDEF";
        t->spm_split = 1;
        for (uint32_t id = 0; id < t->n_vocab && t->spm_split; id++) {
            size_t tl;
            const char *tx = tok_str(&t->st, (int32_t)id, &tl);
            for (size_t k = 1; k + 3 <= tl; k++)
                if (memcmp(tx + k, "\xe2\x96\x81", 3) == 0 &&
                    !(k >= 3 && memcmp(tx + k - 3, "\xe2\x96\x81", 3) == 0)) {
                    t->spm_split = 0;
                    break;
                }
        }
        for (int b = 0; b < 256; b++) {
            char buf[7] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0 };
            char one = (char)b;
            t->byte_tok[b] = find_text(t, buf);
            if (t->byte_tok[b] < 0)
                t->byte_tok[b] = find_text_n(t, &one, 1);
        }
    } else {
        mk = kv_arr(m, "tokenizer.ggml.merges", MV_STR, 1, e);
        if (!mk)
            return -1;
        byte_alphabet(t);
        if (load_merges(t, mk, e))
            return -1;
        /* a GGUF file is read as llama.cpp reads it (by tokenizer.ggml.pre); a Hugging
         * Face directory or an APR file by its tokenizer.json, whose pre_tokenizer and
         * normalizer are the truth (the reader derives tokenizer.ggml.pre by name) */
        if (m->format == MODEL_FMT_GGUF || get_str(m, "tokenizer.huggingface.json", &hf))
            hf.p = NULL, hf.n = 0;
        if (tok__pre_init(t, t->pre_name, hf.p, hf.n, e)) {
            err_prefix(e, "%s", path);
            return -1;
        }
    }
    if (specials(t, m, e))
        return -1;
    if (get_str(m, "tokenizer.chat_template", &tmpl) == 0) {
        t->chat_template = malloc(tmpl.n + 1);
        if (!t->chat_template)
            return ERR(e, ERR_NOMEM, "out of memory");
        memcpy(t->chat_template, tmpl.p, tmpl.n);
        t->chat_template[tmpl.n] = 0;
    }
    return tok__pieces_build(t, e);
}

int tok_load(const struct model *m, struct tokenizer **out, struct err *e)
{
    struct tokenizer *t = calloc(1, sizeof *t);
    struct src src;
    struct meta mt;
    int rc;

    *out = NULL;
    if (!t)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = t->byte_sym[b] = -1;
    src.path = m->path ? m->path : "model";
    src.format = m->format;
    if (meta_from_model(m, &mt, e)) {
        tok_free(t);
        return -1;
    }
    src.mt = &mt;
    rc = load(t, &src, e);
    meta_free(&mt);   /* the tokenizer keeps copies of what it needs */
    if (rc) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void tok_free(struct tokenizer *t)
{
    if (!t)
        return;
    tok_strtab_free(&t->st);
    free(t->score);
    free(t->attr);
    free(t->type);
    free(t->special);
    free(t->eog);
    free(t->merge);
    tok__pre_free(&t->pre);
    free(t->piece_blob);
    free(t->piece_off);
    free(t->chat_template);
    free(t);
}

/* ---- accessors */

enum tok_kind tok_kind(const struct tokenizer *t) { return t->kind; }
const char *tok_pre_name(const struct tokenizer *t) { return t->pre_name; }
size_t  tok_n_vocab(const struct tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const struct tokenizer *t) { return t->bos; }
int32_t tok_eos(const struct tokenizer *t) { return t->eos; }
int     tok_add_bos(const struct tokenizer *t) { return t->add_bos; }
int     tok_add_eos(const struct tokenizer *t) { return t->add_eos; }

int tok_type(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab ? t->type[id] : -1;
}

int tok_is_eog(const struct tokenizer *t, int32_t id)
{
    for (uint32_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return 1;
    return 0;
}

const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab) {
        *len = 0;
        return "";
    }
    return tok_str(&t->st, id, len);
}
