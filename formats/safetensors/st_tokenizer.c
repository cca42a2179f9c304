/*
 * st_tokenizer.c - Hugging Face tokenizer.json <-> GGUF tokenizer.ggml.* metadata.
 *
 * READING (st_tokenizer_read, called by st_open for the directory of the weights;
 * st_tokenizer_read_mem for the text alone, without side files: tests and fuzzers).
 * tokenizer.json (cap ST_MAX_TOKENIZER) is mapped the way llama.cpp's HF->GGUF
 * converter maps it (reference/gguf-quant.md 2.9 for the keys and their exact types;
 * landscape.md 1.2):
 *
 *   tokenizer.json / side files             GGUF key                           type
 *   --------------------------------------  ---------------------------------  -------------
 *   model.type BPE, style (below)           tokenizer.ggml.model               STRING
 *   config model_type (rule below)          tokenizer.ggml.pre                 STRING
 *   model.vocab + added_tokens, by id       tokenizer.ggml.tokens              ARRAY[STRING]
 *   merge ranks ("llama" style only)        tokenizer.ggml.scores              ARRAY[FLOAT32]
 *   kinds (below)                           tokenizer.ggml.token_type          ARRAY[INT32]
 *   model.merges ("gpt2" style only)        tokenizer.ggml.merges              ARRAY[STRING]
 *   {bos,eos,unk,sep,pad,mask} (below)      tokenizer.ggml.{bos,eos,unknown,   UINT32
 *                                             seperator,padding,mask}_token_id
 *   tokenizer_config.json add_bos_token,    tokenizer.ggml.add_bos_token,      BOOL
 *     add_eos_token (when booleans)           tokenizer.ggml.add_eos_token
 *   tokenizer_config.json chat_template     tokenizer.chat_template            STRING
 *     (a string; or a list of {name,        (+ tokenizer.chat_template.<name>  STRING
 *     template}: "default" is the main one,    tokenizer.chat_templates        ARRAY[STRING])
 *     names sanitized to [A-Za-z0-9_]); else
 *     the file chat_template.jinja
 *   the whole text of tokenizer.json        tokenizer.huggingface.json         STRING
 *
 * Style.  "llama" (SentencePiece-style BPE) when model.byte_fallback is true, or when a
 * Metaspace pre-tokenizer/decoder is used without ByteLevel; otherwise "gpt2"
 * (byte-level BPE; what llama.cpp writes for every tokenizer.json BPE vocabulary).
 * A model.type other than BPE (WordPiece, Unigram, WordLevel) derives no
 * tokenizer.ggml.* keys (a note says so); tokenizer.huggingface.json still keeps it.
 *
 * Tokens.  Index = id.  added_tokens override model.vocab at their id.  The length is
 * max(largest id + 1, config.json vocab_size) (llama.cpp pads to vocab_size; it refuses
 * a vocab_size below the largest id, we keep every token and add a note).  Ids that
 * nothing names are holes, filled as llama.cpp does with "[PAD<id>]" of type UNUSED.
 *
 * Token types (llama.cpp's TokenType): 1 NORMAL for vocab tokens; for added tokens
 * 3 CONTROL when "special" is true or (gpt2 style) the text looks special like
 * llama.cpp's check (<|...|>, <｜...｜>, <start_of_...>, <pad>, <mask>, <2mass>,
 * [@BOS@]), else 4 USER_DEFINED (gpt2 style: "▁" in the text pre-normalized to " ",
 * as llama.cpp does); "llama" style adds 6 BYTE for <0xNN> tokens (byte_fallback
 * only) and 2 UNKNOWN for model.unk_token (what llama.cpp's SentencePiece path
 * writes; its tokenizer.json-only path would say CONTROL); holes are 5 UNUSED.
 *
 * Merges.  "a b" strings are kept as they are; ["a", "b"] pairs (tokenizers >= 0.20)
 * become "a b" with every space inside a part written as U+0120, as llama.cpp does.
 * Only the gpt2 style writes tokenizer.ggml.merges (llama.cpp's SentencePiece-style
 * vocabularies carry scores instead).
 *
 * Scores ("llama" style).  tokenizer.json has none; llama.cpp writes a constant -1000
 * placeholder, which makes its SentencePiece tokenizer merge left to right.  We write
 * the merge priority instead: a token that merge rank r (0-based, first merge
 * producing it) produces gets -(r + 1); other NORMAL tokens -(n_merges + 1 + id); the
 * other kinds 0.  Higher scores merge first, so llama.cpp merges in BPE rank order.
 *
 * Pre-tokenizer id (llama.cpp hashes a test tokenization, which needs a tokenizer; we
 * decide by name): "llama" style -> "default"; gpt2 style by config.json model_type
 * (else general.architecture): qwen* -> "qwen2", llama/mistral -> "llama-bpe",
 * gpt2 -> "gpt-2", anything else -> "default".
 *
 * Special token ids, llama.cpp's SpecialVocab order (first found wins; ids past the
 * vocabulary are skipped with a note): tokenizer_config.json "<t>_token" (a string or
 * {"content": ...}) looked up among added_tokens; then config.json "<t>_token_id";
 * then generation_config.json "<t>_token_id" (integers only; lists are ignored).
 *
 * A missing tokenizer.json is fine; a malformed one (bad JSON, wrong kinds, duplicate
 * ids, ids far past the number of tokens given) is ERR_FORMAT/ERR_LIMIT naming the
 * file and the byte offset; so are malformed side files.  Allocation is bounded by
 * the text: at most 2 x (tokens given) + 65536 ids, one slice per merge.
 *
 * WRITING (st_write_tokenizer): tokenizer.huggingface.json verbatim as tokenizer.json
 * when the model has it; else, for a "gpt2" or "llama" GGUF vocabulary, a synthesized
 * tokenizer.json that transformers and tokenizers load:
 *   model       BPE; vocab = every token by id except "[PAD<id>]" UNUSED holes and
 *               repeated texts (those go to added_tokens); merges = tokenizer.ggml.merges
 *               as "a b" strings, or for "llama" without merges, generated from the
 *               vocabulary as transformers' SentencePiece converter does (each NORMAL
 *               token split in two vocabulary tokens; ordered by the token's score,
 *               then its id, then the halves' ids); llama: byte_fallback, fuse_unk,
 *               unk_token;
 *   added_tokens   CONTROL and UNKNOWN (special) and USER_DEFINED (not special);
 *   gpt2        ByteLevel pre-tokenizer (with the Llama 3 or Qwen2 split regex for
 *               pre "llama-bpe" / "qwen2") and decoder;
 *   llama       Prepend/Replace "▁" normalizer; Replace, ByteFallback, Fuse, Strip decoder;
 *   post_processor  TemplateProcessing adding BOS/EOS as add_bos/add_eos_token say.
 * and, whenever tokenizer.ggml.tokens exists, tokenizer_config.json with
 * add_bos_token, add_eos_token, bos/eos/unk/pad_token, chat_template,
 * clean_up_tokenization_spaces and tokenizer_class.  Files go through a temporary
 * file and rename.
 */
#include "st.h"
#include "st_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/json.h"
#include "../../common/mfile.h"
#include "../../common/sbuf.h"
#include "../../common/sz.h"
#include "../../common/banned.h"

#define TK_MAX_SIDE    (64ULL << 20)     /* tokenizer_config.json & co: chat templates */
#define TK_HOLE_SLACK  65536u            /* holes allowed beyond 2x the tokens given */
#define TK_MAX_ID      0x7fffffffu       /* llama.cpp token ids are int32 */
#define U_SPM_SPACE    "\xe2\x96\x81"    /* U+2581, SentencePiece's space */
#define U_BYTE_SPACE   "\xc4\xa0"        /* U+0120, byte-level BPE's space */

enum tk_type { TT_NORMAL = 1, TT_UNKNOWN, TT_CONTROL, TT_USER, TT_UNUSED, TT_BYTE };

/* Names in messages: at most 200 bytes. */
#define SL(s) (int)((s).n > 200 ? 200 : (s).n), (s).p

/* ---- a string -> id map (open addressing, FNV-1a); keeps the first id of a text */

struct tk_map {
    struct slice *key;
    uint32_t     *id;
    size_t        cap;   /* power of two, > 2 x entries */
};

static uint64_t fnv(struct slice s)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < s.n; i++)
        h = (h ^ (uint8_t)s.p[i]) * 1099511628211ULL;
    return h;
}

static int map_init(struct tk_map *h, uint64_t n, struct err *e)
{
    size_t cap = 64;
    while (cap < n * 2 + 16) {
        if (cap > SIZE_MAX / 2 / sizeof *h->key)
            return ERR(e, ERR_NOMEM, "out of memory");
        cap *= 2;
    }
    h->cap = cap;
    h->key = calloc(cap, sizeof *h->key);
    h->id = malloc(cap * sizeof *h->id);
    if (!h->key || !h->id)
        return ERR(e, ERR_NOMEM, "out of memory");
    return 0;
}

static void map_release(struct tk_map *h)
{
    free(h->key);
    free(h->id);
    memset(h, 0, sizeof *h);
}

/* Slot of s: its entry, or the empty slot where it belongs (key.p == NULL). */
static size_t map_slot(const struct tk_map *h, struct slice s)
{
    size_t i;

    if (!s.p)
        s.p = "";   /* an empty slice may have no pointer; NULL marks free slots */
    i = (size_t)fnv(s) & (h->cap - 1);
    while (h->key[i].p && !slice_eq(h->key[i], s))
        i = (i + 1) & (h->cap - 1);
    return i;
}

/* 1 when s was already present (the first id stays), else 0. */
static int map_put(struct tk_map *h, struct slice s, uint32_t id)
{
    size_t i;

    if (!s.p)
        s.p = "";
    i = map_slot(h, s);
    if (h->key[i].p)
        return 1;
    h->key[i] = s;
    h->id[i] = id;
    return 0;
}

static int64_t map_get(const struct tk_map *h, struct slice s)
{
    size_t i = map_slot(h, s);
    return h->key[i].p ? (int64_t)h->id[i] : -1;
}

/* ---- shared small helpers */

static int is_byte_token(struct slice s)
{
    static const char hex[] = "0123456789abcdefABCDEF";
    return s.n == 6 && memcmp(s.p, "<0x", 3) == 0 && s.p[5] == '>' && s.p[3] && s.p[4] &&
           strchr(hex, s.p[3]) && strchr(hex, s.p[4]);
}

/* llama.cpp's "does this added token look special" test, for byte-level vocabularies. */
static int looks_special(struct slice s)
{
    static const char *const exact[] = { "<pad>", "<mask>", "<2mass>", "[@BOS@]" };
    static const char fw_open[] = "<\xef\xbd\x9c", fw_close[] = "\xef\xbd\x9c>"; /* <｜ ｜> */
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (slice_eq_cstr(s, exact[i]))
            return 1;
    if (s.n >= 4 && memcmp(s.p, "<|", 2) == 0 && memcmp(s.p + s.n - 2, "|>", 2) == 0)
        return 1;
    if (s.n >= 8 && memcmp(s.p, fw_open, 4) == 0 && memcmp(s.p + s.n - 4, fw_close, 4) == 0)
        return 1;
    return s.n >= 11 && memcmp(s.p, "<start_of_", 10) == 0 && s.p[s.n - 1] == '>';
}

/* ======================================================================== reading */

struct added {
    uint32_t     id;
    struct slice content;
    int          special;
};

struct tk {
    struct model    *m;
    char            *path;     /* owned: dir/tokenizer.json, for messages */
    struct json_doc  d;
    struct sbuf      sb;       /* scratch for unescaping */
    struct model_kv *kv;       /* the new keys, in order; owned until inserted */
    uint64_t         n_kv, cap_kv;
    struct added    *add;      /* added_tokens, in file order */
    uint64_t         n_add;
    struct slice    *tok;      /* [n] by id; owned until it becomes a kv's strs */
    uint8_t         *flag;     /* [n] TF_* */
    int32_t         *type;     /* [n] in the arena */
    uint64_t         n;
    int              llama;    /* style: 1 "llama", 0 "gpt2" */
    int              byte_fallback;
};

enum { TF_SET = 1, TF_ADDED = 2, TF_SPECIAL = 4 };

static void tk_release(struct tk *t)
{
    for (uint64_t i = 0; i < t->n_kv; i++)
        if (t->kv[i].val.type == MV_ARR)
            free(t->kv[i].val.v.arr.strs);
    free(t->kv);
    free(t->add);
    free(t->tok);
    free(t->flag);
    json_release(&t->d);
    sbuf_release(&t->sb);
    free(t->path);
}

/*
 * Copy src[0, n) (the text of file `name`, called path in messages) into m's arena
 * with a NUL after it, so slices into it live as long as m.  ERR_LIMIT when n > cap.
 */
static int copy_text(struct model *m, const char *path, const char *name, const void *src,
                     uint64_t n, uint64_t cap, const char **text, struct err *e)
{
    char *p;

    if (n > cap)
        return ERR(e, ERR_LIMIT, "%s: %llu bytes is larger than the %llu-byte limit for %s",
                   path, (unsigned long long)n, (unsigned long long)cap, name);
    p = model__alloc(m, (size_t)n + 1, e);
    if (!p)
        return -1;
    if (n)
        memcpy(p, src, (size_t)n);
    p[n] = 0;
    *text = p;
    return 0;
}

/*
 * Copy dir/name into m's arena (copy_text).  1 when the file does not exist (or dir
 * is NULL: st_tokenizer_read_mem has no directory), 0 when read (*text, *n), -1 on
 * error.  *path is set (owned by the caller; NULL when dir is) in every case but
 * allocation failure.
 */
static int load_text(struct model *m, const char *dir, const char *name, uint64_t cap,
                     char **path, const char **text, size_t *n, struct err *e)
{
    struct mfile mf;
    struct stat st;
    int rc;

    *path = NULL;
    if (!dir)
        return 1;
    *path = st__path_join(dir, slice_from_cstr(name), e);
    if (!*path)
        return -1;
    if (stat(*path, &st) != 0 && errno == ENOENT)
        return 1;
    if (mfile_open(&mf, *path, e))
        return -1;
    rc = copy_text(m, *path, name, mf.data, mf.size, cap, text, e);
    if (rc == 0)
        *n = (size_t)mf.size;
    mfile_close(&mf);
    return rc;
}

/* load_text + json_parse + "must be an object".  1 absent, 0 parsed, -1 error. */
static int load_json(struct model *m, const char *dir, const char *name, uint64_t cap,
                     char **path, struct json_doc *d, struct err *e)
{
    const char *text = NULL;
    size_t n = 0;
    int rc = load_text(m, dir, name, cap, path, &text, &n, e);

    if (rc)
        return rc;
    if (json_parse(d, text, n, 0, *path, e))
        return -1;
    if (!json_is(d, 0, JSMN_OBJECT))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, 0), "%s: not a JSON object", *path);
    return 0;
}

/* The unescaped text of string token i of d: borrows d's text (in m's arena) when it
 * has no escapes, else a copy in the arena. */
static int str_tok(struct model *m, struct sbuf *sb, const struct json_doc *d, int i,
                   struct slice *out, struct err *e)
{
    struct slice raw = json_raw(d, i);

    if (!memchr(raw.p, '\\', raw.n)) {
        *out = raw;
        return 0;
    }
    sb->len = 0;
    if (json_str(d, i, sb, e))
        return -1;
    return model__strdup(m, sb->p ? sb->p : "", sb->len, out, e);
}

static struct model_kv *kv_new(struct tk *t, const char *key, enum model_vtype type,
                               struct err *e)
{
    struct model_kv *kv;

    if (t->n_kv == t->cap_kv) {
        uint64_t cap = t->cap_kv ? t->cap_kv * 2 : 16;
        kv = realloc(t->kv, (size_t)cap * sizeof *kv);
        if (!kv) {
            ERR(e, ERR_NOMEM, "out of memory");
            return NULL;
        }
        t->kv = kv;
        t->cap_kv = cap;
    }
    kv = &t->kv[t->n_kv++];
    memset(kv, 0, sizeof *kv);
    kv->key = slice_from_cstr(key);   /* static storage, or the arena */
    kv->val.type = type;
    return kv;
}

static int kv_str(struct tk *t, const char *key, struct slice s, uint64_t off, struct err *e)
{
    struct model_kv *kv = kv_new(t, key, MV_STR, e);
    if (!kv)
        return -1;
    kv->val.v.s = s;
    kv->off = off;
    return 0;
}

static int kv_u(struct tk *t, const char *key, enum model_vtype type, uint64_t u, struct err *e)
{
    struct model_kv *kv = kv_new(t, key, type, e);
    if (!kv)
        return -1;
    kv->val.v.u = u;
    return 0;
}

/* Expect token i to be kind k; else an error naming what. */
static int want(const struct tk *t, const struct json_doc *d, int i, jsmntype_t k,
                const char *what, struct err *e)
{
    static const char *const kind[] = { "undefined", "an object", "an array", "a string",
                                        "a primitive" };
    int ki = k == JSMN_OBJECT ? 1 : k == JSMN_ARRAY ? 2 : k == JSMN_STRING ? 3 : 4;

    if (json_is(d, i, k))
        return 0;
    return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s: %s is not %s",
                   d->name ? d->name : t->path, what, kind[ki]);
}

static int tok_id(const struct json_doc *d, int i, const char *what, uint64_t *id,
                  struct err *e)
{
    if (json_u64(d, i, id, what, e))
        return -1;
    if (*id > TK_MAX_ID)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, i), "%s: %s %llu is past the largest token "
                       "id (%u)", d->name, what, (unsigned long long)*id, TK_MAX_ID);
    return 0;
}

/* 1 when the object at i (or a "Sequence" of them, one level) has "type" == name. */
static int has_type(const struct json_doc *d, int i, const char *name)
{
    static const char *const lists[] = { "pretokenizers", "decoders", "normalizers" };
    int ty = json_get(d, i, "type");

    if (ty < 0)
        return 0;
    if (json_str_eq(d, ty, name))
        return 1;
    if (!json_str_eq(d, ty, "Sequence"))
        return 0;
    for (size_t l = 0; l < sizeof lists / sizeof *lists; l++) {
        int a = json_get(d, i, lists[l]), k;
        if (!json_is(d, a, JSMN_ARRAY))
            continue;
        k = a + 1;
        for (int j = 0; j < d->tok[a].size; j++, k = json_next(d, k))
            if (json_str_eq(d, json_get(d, k, "type"), name))
                return 1;
    }
    return 0;
}

/* Put the text of an id, checking it is in range and named once per source. */
static int set_tok(struct tk *t, uint64_t id, struct slice s, int added, int special, int at,
                   struct err *e)
{
    if (id >= t->n)
        return ERR(e, ERR_INTERNAL, "token id out of range");   /* sized from the max id */
    if (!added && (t->flag[id] & TF_SET))
        return ERR_OFF(e, ERR_FORMAT, json_off(&t->d, at), "%s: token id %llu appears twice "
                       "in 'model.vocab'", t->path, (unsigned long long)id);
    t->tok[id] = s;
    t->flag[id] = (uint8_t)(TF_SET | (added ? TF_ADDED : 0) | (special ? TF_SPECIAL : 0));
    return 0;
}

/* model.vocab and added_tokens: t->tok, t->flag, t->add, t->n. */
static int read_vocab(struct tk *t, int model, struct err *e)
{
    struct json_doc *d = &t->d;
    int v = json_get(d, model, "vocab"), at = json_get(d, 0, "added_tokens"), k;
    uint64_t n_ent, max_id = 0, id, cfg = 0, limit;
    int any = 0, max_at = v;

    if (want(t, d, v, JSMN_OBJECT, "'model.vocab'", e))
        return -1;
    if (at >= 0 && !json_is_null(d, at) && want(t, d, at, JSMN_ARRAY, "'added_tokens'", e))
        return -1;
    n_ent = (uint64_t)d->tok[v].size;
    k = v + 1;
    for (uint64_t j = 0; j < n_ent; j++, k = json_next(d, k + 1)) {
        if (tok_id(d, k + 1, "'model.vocab' id", &id, e))
            return -1;
        if (id >= max_id) {
            max_id = id;
            max_at = k + 1;
        }
        any = 1;
    }
    if (json_is(d, at, JSMN_ARRAY) && d->tok[at].size > 0) {
        t->add = calloc((size_t)d->tok[at].size, sizeof *t->add);
        if (!t->add)
            return ERR(e, ERR_NOMEM, "out of memory");
        k = at + 1;
        for (int j = 0; j < d->tok[at].size; j++, k = json_next(d, k)) {
            struct added *a = &t->add[t->n_add];
            int c = json_get(d, k, "content"), idt = json_get(d, k, "id");
            int sp = json_get(d, k, "special"), b = 0;
            if (want(t, d, k, JSMN_OBJECT, "an 'added_tokens' entry", e) ||
                want(t, d, c, JSMN_STRING, "'added_tokens' content", e) ||
                tok_id(d, idt, "'added_tokens' id", &id, e) ||
                str_tok(t->m, &t->sb, d, c, &a->content, e))
                return -1;
            if (sp >= 0 && !json_is_null(d, sp) && !json_is_bool(d, sp, &b))
                return ERR_OFF(e, ERR_FORMAT, json_off(d, sp), "%s: 'added_tokens' special is "
                               "not a boolean", t->path);
            a->id = (uint32_t)id;
            a->special = b;
            t->n_add++;
            if (id >= max_id) {
                max_id = id;
                max_at = idt;
            }
            any = 1;
        }
    }
    /* Bound the id space by what the text gives (holes cost memory, not text). */
    limit = 2 * (n_ent + t->n_add) + TK_HOLE_SLACK;
    if (any && max_id + 1 > limit)
        return ERR_OFF(e, ERR_LIMIT, json_off(d, max_at), "%s: token id %llu is far past the "
                       "%llu tokens given", t->path, (unsigned long long)max_id,
                       (unsigned long long)(n_ent + t->n_add));
    t->n = any ? max_id + 1 : 0;
    if (model_kv_get_u64(t->m, "hf.config.vocab_size", &cfg) == 0 && cfg != t->n) {
        if (cfg < t->n)
            model__note(t->m, "%s: config.json vocab_size %llu is below the %llu tokens of "
                        "tokenizer.json (kept them all)", t->path, (unsigned long long)cfg,
                        (unsigned long long)t->n);
        else if (cfg > limit)
            model__note(t->m, "%s: config.json vocab_size %llu is far past the tokens given "
                        "(not padded)", t->path, (unsigned long long)cfg);
        else
            t->n = cfg;
    }
    if (t->n) {
        t->tok = calloc((size_t)t->n, sizeof *t->tok);
        t->flag = calloc((size_t)t->n, 1);
        t->type = model__alloc(t->m, (size_t)t->n * sizeof *t->type, e);
        if (!t->tok || !t->flag)
            return ERR(e, ERR_NOMEM, "out of memory");
        if (!t->type)
            return -1;
    }
    k = v + 1;
    for (uint64_t j = 0; j < n_ent; j++, k = json_next(d, k + 1)) {
        struct slice s;
        if (tok_id(d, k + 1, "'model.vocab' id", &id, e) || str_tok(t->m, &t->sb, d, k, &s, e) ||
            set_tok(t, id, s, 0, 0, k, e))
            return -1;
    }
    for (uint64_t j = 0; j < t->n_add; j++)
        if (set_tok(t, t->add[j].id, t->add[j].content, 1, t->add[j].special, 0, e))
            return -1;
    return 0;
}

/* Copy of s with every `from` replaced by `to` (in the arena), or s when none. */
static int replace(struct model *m, struct slice s, const char *from, const char *to,
                   struct slice *out, struct err *e)
{
    size_t fn = strlen(from), tn = strlen(to), cnt = 0, j = 0;
    char *p;

    for (size_t i = 0; i + fn <= s.n; i++)
        if (memcmp(s.p + i, from, fn) == 0) {
            cnt++;
            i += fn - 1;
        }
    if (!cnt) {
        *out = s;
        return 0;
    }
    p = model__alloc(m, s.n + cnt * tn + 1, e);   /* tn <= 3: no overflow for arena sizes */
    if (!p)
        return -1;
    for (size_t i = 0; i < s.n;) {
        if (i + fn <= s.n && memcmp(s.p + i, from, fn) == 0) {
            memcpy(p + j, to, tn);
            j += tn;
            i += fn;
        } else {
            p[j++] = s.p[i++];
        }
    }
    p[j] = 0;
    out->p = p;
    out->n = j;
    return 0;
}

/* Holes and token types. */
static int fill_types(struct tk *t, int model, struct err *e)
{
    struct slice unk = { NULL, 0 };
    int u = json_get(&t->d, model, "unk_token");

    if (json_is(&t->d, u, JSMN_STRING) && str_tok(t->m, &t->sb, &t->d, u, &unk, e))
        return -1;
    for (uint64_t i = 0; i < t->n; i++) {
        uint8_t f = t->flag[i];
        int32_t ty;
        if (!(f & TF_SET)) {
            char buf[32];
            int n = snprintf(buf, sizeof buf, "[PAD%llu]", (unsigned long long)i);
            if (model__strdup(t->m, buf, (size_t)n, &t->tok[i], e))
                return -1;
            ty = TT_UNUSED;
        } else if (t->llama && t->byte_fallback && is_byte_token(t->tok[i])) {
            ty = TT_BYTE;
        } else if (t->llama && unk.p && slice_eq(t->tok[i], unk)) {
            ty = TT_UNKNOWN;
        } else if (f & TF_ADDED) {
            if ((f & TF_SPECIAL) || (!t->llama && looks_special(t->tok[i]))) {
                ty = TT_CONTROL;
            } else {
                ty = TT_USER;
                if (!t->llama && replace(t->m, t->tok[i], U_SPM_SPACE, " ", &t->tok[i], e))
                    return -1;
            }
        } else {
            ty = TT_NORMAL;
        }
        t->type[i] = ty;
    }
    return 0;
}

/* model.merges as "a b" strings (NULL/0 when absent). */
static int read_merges(struct tk *t, int model, struct slice **out, uint64_t *n_out,
                       struct err *e)
{
    struct json_doc *d = &t->d;
    int mg = json_get(d, model, "merges"), k;
    struct slice *ms;
    uint64_t n;

    *out = NULL;
    *n_out = 0;
    if (mg < 0 || json_is_null(d, mg))
        return 0;
    if (want(t, d, mg, JSMN_ARRAY, "'model.merges'", e))
        return -1;
    n = (uint64_t)d->tok[mg].size;
    if (!n)
        return 0;
    ms = calloc((size_t)n, sizeof *ms);
    if (!ms)
        return ERR(e, ERR_NOMEM, "out of memory");
    k = mg + 1;
    for (uint64_t j = 0; j < n; j++, k = json_next(d, k)) {
        if (json_is(d, k, JSMN_STRING)) {
            if (str_tok(t->m, &t->sb, d, k, &ms[j], e))
                goto fail;
        } else if (json_is(d, k, JSMN_ARRAY) && d->tok[k].size == 2 &&
                   json_is(d, k + 1, JSMN_STRING) && json_is(d, k + 2, JSMN_STRING)) {
            struct slice a, b, a2, b2;
            char *p;
            if (str_tok(t->m, &t->sb, d, k + 1, &a, e) || str_tok(t->m, &t->sb, d, k + 2, &b, e) ||
                replace(t->m, a, " ", U_BYTE_SPACE, &a2, e) ||
                replace(t->m, b, " ", U_BYTE_SPACE, &b2, e))
                goto fail;
            p = model__alloc(t->m, a2.n + b2.n + 2, e);
            if (!p)
                goto fail;
            memcpy(p, a2.p, a2.n);
            p[a2.n] = ' ';
            memcpy(p + a2.n + 1, b2.p, b2.n);
            p[a2.n + 1 + b2.n] = 0;
            ms[j].p = p;
            ms[j].n = a2.n + 1 + b2.n;
        } else {
            ERR_OFF(e, ERR_FORMAT, json_off(d, k), "%s: merge %llu is neither \"a b\" nor "
                    "[\"a\", \"b\"]", t->path, (unsigned long long)j);
            goto fail;
        }
    }
    *out = ms;
    *n_out = n;
    return 0;
fail:
    free(ms);
    return -1;
}

/* Scores from merge ranks ("llama" style; see the top comment). */
static int make_scores(struct tk *t, const struct slice *ms, uint64_t n_m, struct err *e)
{
    struct tk_map h = { NULL, NULL, 0 };
    struct model_kv *kv;
    uint8_t *got = NULL;
    float *sc;
    int rc = -1;

    sc = model__alloc(t->m, (size_t)(t->n ? t->n : 1) * sizeof *sc, e);
    if (!sc)
        return -1;
    got = calloc((size_t)(t->n ? t->n : 1), 1);
    if (!got || map_init(&h, t->n, e)) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < t->n; i++)
        map_put(&h, t->tok[i], (uint32_t)i);
    for (uint64_t r = 0; r < n_m; r++) {
        const char *sp = memchr(ms[r].p, ' ', ms[r].n);
        int64_t id;
        if (!sp)
            continue;
        t->sb.len = 0;
        sbuf_add(&t->sb, ms[r].p, (size_t)(sp - ms[r].p));
        sbuf_add(&t->sb, sp + 1, ms[r].n - (size_t)(sp - ms[r].p) - 1);
        if (sbuf_check(&t->sb, "merge", e))
            goto done;
        id = map_get(&h, (struct slice){ t->sb.p ? t->sb.p : "", t->sb.len });
        if (id >= 0 && !got[id]) {
            got[id] = 1;
            sc[id] = -(float)(r + 1);
        }
    }
    for (uint64_t i = 0; i < t->n; i++)
        if (!got[i])
            sc[i] = t->type[i] == TT_NORMAL ? -(float)(n_m + 1 + i) : 0.0f;
    kv = kv_new(t, "tokenizer.ggml.scores", MV_ARR, e);
    if (!kv)
        goto done;
    kv->val.v.arr.elem = MV_F32;
    kv->val.v.arr.n = t->n;
    kv->val.v.arr.raw = (const uint8_t *)sc;   /* little-endian hosts only (as the writers) */
    rc = 0;
done:
    map_release(&h);
    free(got);
    return rc;
}

/* tokenizer.ggml.pre by name (see the top comment). */
static const char *pre_name(const struct tk *t)
{
    struct slice s;

    if (t->llama)
        return "default";
    if (model_kv_get_str(t->m, "hf.config.model_type", &s) &&
        model_kv_get_str(t->m, "general.architecture", &s))
        return "default";
    if (slice_starts_with(s, "qwen"))
        return "qwen2";
    if (slice_eq_cstr(s, "llama") || slice_eq_cstr(s, "mistral"))
        return "llama-bpe";
    if (slice_eq_cstr(s, "gpt2"))
        return "gpt-2";
    return "default";
}

static const struct {
    const char *hf;    /* "<hf>_token" / "<hf>_token_id" */
    const char *key;
} specials[] = {
    { "bos",  "tokenizer.ggml.bos_token_id" },
    { "eos",  "tokenizer.ggml.eos_token_id" },
    { "unk",  "tokenizer.ggml.unknown_token_id" },
    { "sep",  "tokenizer.ggml.seperator_token_id" },   /* llama.cpp's spelling */
    { "pad",  "tokenizer.ggml.padding_token_id" },
    { "mask", "tokenizer.ggml.mask_token_id" },
};
#define N_SPECIALS (sizeof specials / sizeof *specials)

static void set_special(struct tk *t, int64_t *ids, size_t i, uint64_t id, const char *src)
{
    if (ids[i] >= 0)
        return;
    if (id >= t->n) {
        model__note(t->m, "%s: %s_token id %llu is past the vocabulary (%llu tokens): ignored",
                    src, specials[i].hf, (unsigned long long)id, (unsigned long long)t->n);
        return;
    }
    ids[i] = (int64_t)id;
}

/* Keys from tokenizer_config.json, config.json, generation_config.json, chat_template.jinja. */
static int read_side(struct tk *t, const char *dir, struct err *e)
{
    struct json_doc d;
    char *path = NULL, key[80];
    int64_t ids[N_SPECIALS];
    int add[2] = { -1, -1 }, rc = -1, r, ct = -1;
    uint64_t u;

    memset(&d, 0, sizeof d);
    for (size_t i = 0; i < N_SPECIALS; i++)
        ids[i] = -1;
    r = load_json(t->m, dir, "tokenizer_config.json", TK_MAX_SIDE, &path, &d, e);
    if (r < 0)
        goto done;
    if (r == 0) {
        for (size_t i = 0; i < N_SPECIALS; i++) {
            struct slice c;
            int v;
            snprintf(key, sizeof key, "%s_token", specials[i].hf);
            v = json_get(&d, 0, key);
            if (json_is(&d, v, JSMN_OBJECT))
                v = json_get(&d, v, "content");
            if (!json_is(&d, v, JSMN_STRING))
                continue;
            if (str_tok(t->m, &t->sb, &d, v, &c, e))
                goto done;
            for (uint64_t j = 0; j < t->n_add; j++)
                if (slice_eq(t->add[j].content, c)) {
                    set_special(t, ids, i, t->add[j].id, path);
                    break;
                }
        }
        for (int i = 0; i < 2; i++) {
            int b, v = json_get(&d, 0, i ? "add_eos_token" : "add_bos_token");
            if (json_is_bool(&d, v, &b))
                add[i] = b;
        }
        ct = json_get(&d, 0, "chat_template");
        if (json_is(&d, ct, JSMN_STRING)) {
            struct slice s;
            if (str_tok(t->m, &t->sb, &d, ct, &s, e) ||
                kv_str(t, "tokenizer.chat_template", s, json_off(&d, ct), e))
                goto done;
        } else if (json_is(&d, ct, JSMN_ARRAY)) {
            /* [{"name": ..., "template": ...}]: "default" is the main template. */
            struct slice *names = NULL, dflt = { NULL, 0 };
            uint64_t n_names = 0;
            int k = ct + 1;
            names = calloc((size_t)d.tok[ct].size + 1, sizeof *names);
            if (!names) {
                ERR(e, ERR_NOMEM, "out of memory");
                goto done;
            }
            for (int j = 0; j < d.tok[ct].size; j++, k = json_next(&d, k)) {
                int nm = json_get(&d, k, "name"), tp = json_get(&d, k, "template");
                struct slice sn, st;
                char *kp;
                if (!json_is(&d, nm, JSMN_STRING) || !json_is(&d, tp, JSMN_STRING))
                    continue;
                if (str_tok(t->m, &t->sb, &d, nm, &sn, e) ||
                    str_tok(t->m, &t->sb, &d, tp, &st, e)) {
                    free(names);
                    goto done;
                }
                kp = model__alloc(t->m, sn.n + 1, e);
                if (!kp) {
                    free(names);
                    goto done;
                }
                for (size_t c = 0; c < sn.n; c++) {
                    char ch = sn.p[c];
                    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                             (ch >= '0' && ch <= '9');
                    kp[c] = ok ? ch : '_';
                }
                kp[sn.n] = 0;
                sn.p = kp;
                if (slice_eq_cstr(sn, "default")) {
                    dflt = st;
                    continue;
                }
                {
                    size_t kn = sizeof "tokenizer.chat_template." + sn.n;
                    char *full = model__alloc(t->m, kn, e);
                    if (!full) {
                        free(names);
                        goto done;
                    }
                    snprintf(full, kn, "tokenizer.chat_template.%s", kp);
                    names[n_names++] = sn;
                    if (kv_str(t, full, st, json_off(&d, tp), e)) {
                        free(names);
                        goto done;
                    }
                }
            }
            if (n_names) {
                struct model_kv *kv = kv_new(t, "tokenizer.chat_templates", MV_ARR, e);
                if (!kv) {
                    free(names);
                    goto done;
                }
                kv->val.v.arr.elem = MV_STR;
                kv->val.v.arr.n = n_names;
                kv->val.v.arr.strs = names;
            } else {
                free(names);
            }
            if (dflt.p && kv_str(t, "tokenizer.chat_template", dflt, json_off(&d, ct), e))
                goto done;
        }
    }
    json_release(&d);
    memset(&d, 0, sizeof d);
    free(path);
    path = NULL;
    {
        int have = 0;
        for (uint64_t i = 0; i < t->n_kv; i++)
            have |= slice_eq_cstr(t->kv[i].key, "tokenizer.chat_template");
        if (!have) {
            const char *text;
            size_t n;
            r = load_text(t->m, dir, "chat_template.jinja", TK_MAX_SIDE, &path, &text, &n, e);
            if (r < 0)
                goto done;
            if (r == 0 && kv_str(t, "tokenizer.chat_template", (struct slice){ text, n }, 0, e))
                goto done;
            free(path);
            path = NULL;
        }
    }
    /* config.json (already mapped to hf.config.*), then generation_config.json */
    for (size_t i = 0; i < N_SPECIALS; i++) {
        snprintf(key, sizeof key, "hf.config.%s_token_id", specials[i].hf);
        if (ids[i] < 0 && model_kv_get_u64(t->m, key, &u) == 0)
            set_special(t, ids, i, u, "config.json");
    }
    r = load_json(t->m, dir, "generation_config.json", TK_MAX_SIDE, &path, &d, e);
    if (r < 0)
        goto done;
    if (r == 0) {
        for (size_t i = 0; i < N_SPECIALS; i++) {
            int v;
            snprintf(key, sizeof key, "%s_token_id", specials[i].hf);
            v = json_get(&d, 0, key);
            if (ids[i] >= 0 || !json_is(&d, v, JSMN_PRIMITIVE) || !json_is_int(&d, v) ||
                d.text[d.tok[v].start] == '-')
                continue;
            if (json_u64(&d, v, &u, key, e))
                goto done;
            set_special(t, ids, i, u, path);
        }
    }
    for (size_t i = 0; i < N_SPECIALS; i++)
        if (ids[i] >= 0 && kv_u(t, specials[i].key, MV_U32, (uint64_t)ids[i], e))
            goto done;
    if (add[0] >= 0 && kv_u(t, "tokenizer.ggml.add_bos_token", MV_BOOL, (uint64_t)add[0], e))
        goto done;
    if (add[1] >= 0 && kv_u(t, "tokenizer.ggml.add_eos_token", MV_BOOL, (uint64_t)add[1], e))
        goto done;
    rc = 0;
done:
    json_release(&d);
    free(path);
    return rc;
}

/* Move chat_template keys (read before the id keys) behind them: llama.cpp's order. */
static void order_chat_last(struct tk *t)
{
    uint64_t j = 0;
    struct model_kv tmp;

    for (uint64_t pass = 0; pass < 2; pass++)
        for (uint64_t i = j; i < t->n_kv; i++) {
            int chat = slice_starts_with(t->kv[i].key, "tokenizer.chat_template");
            if ((pass == 0) != chat) {
                tmp = t->kv[i];
                memmove(&t->kv[j + 1], &t->kv[j], (size_t)(i - j) * sizeof tmp);
                t->kv[j++] = tmp;
            }
        }
}

/* Insert the new keys before the first safetensors.* / hf.* key (after the GGUF ones). */
static int insert(struct tk *t, struct err *e)
{
    struct model *m = t->m;
    struct model_kv *kv;
    uint64_t p = 0;

    if (!t->n_kv)
        return 0;
    while (p < m->n_kv && !slice_starts_with(m->kv[p].key, "safetensors.") &&
           !slice_starts_with(m->kv[p].key, "hf."))
        p++;
    kv = realloc(m->kv, (size_t)(m->n_kv + t->n_kv) * sizeof *kv);
    if (!kv)
        return ERR(e, ERR_NOMEM, "out of memory");
    m->kv = kv;
    memmove(&kv[p + t->n_kv], &kv[p], (size_t)(m->n_kv - p) * sizeof *kv);
    memcpy(&kv[p], t->kv, (size_t)t->n_kv * sizeof *kv);
    m->n_kv += t->n_kv;
    t->n_kv = 0;   /* the model owns them now */
    return 0;
}

/*
 * The work of st_tokenizer_read and st_tokenizer_read_mem: text[0, n) (NUL after it,
 * in m's arena) is tokenizer.json, named t->path in messages; dir holds the side
 * files (NULL: none).  The caller releases t.
 */
static int read_tokenizer(struct tk *t, const char *text, size_t n, const char *dir,
                          struct err *e)
{
    struct model *m = t->m;
    struct slice *ms = NULL, whole;
    uint64_t n_m = 0;
    int r, model, ty, rc = -1, bpe;
    struct model_kv *kv;

    whole.p = text;
    whole.n = n;
    if (json_parse(&t->d, text, n, 0, t->path, e))
        goto done;
    if (!json_is(&t->d, 0, JSMN_OBJECT)) {
        ERR_OFF(e, ERR_FORMAT, json_off(&t->d, 0), "%s: not a JSON object", t->path);
        goto done;
    }
    model = json_get(&t->d, 0, "model");
    if (want(t, &t->d, model, JSMN_OBJECT, "'model'", e))
        goto done;
    ty = json_get(&t->d, model, "type");
    if (ty >= 0 && want(t, &t->d, ty, JSMN_STRING, "'model.type'", e))
        goto done;
    bpe = ty >= 0 ? json_str_eq(&t->d, ty, "BPE") : json_get(&t->d, model, "merges") >= 0;
    if (!bpe) {
        struct slice s = ty >= 0 ? json_raw(&t->d, ty) : slice_from_cstr("?");
        model__note(m, "%s: model type '%.*s' has no tokenizer.ggml.* mapping (kept as "
                    "tokenizer.huggingface.json)", t->path, SL(s));
    } else {
        int bf = json_get(&t->d, model, "byte_fallback"), b = 0;
        int pt = json_get(&t->d, 0, "pre_tokenizer"), dc = json_get(&t->d, 0, "decoder");
        int bytelevel = has_type(&t->d, pt, "ByteLevel") || has_type(&t->d, dc, "ByteLevel");
        int meta = has_type(&t->d, pt, "Metaspace") || has_type(&t->d, dc, "Metaspace");
        struct model_kv *tk;

        t->byte_fallback = json_is_bool(&t->d, bf, &b) && b;
        t->llama = t->byte_fallback || (meta && !bytelevel);
        if (read_vocab(t, model, e) || fill_types(t, model, e) ||
            read_merges(t, model, &ms, &n_m, e))
            goto done;
        if (kv_str(t, "tokenizer.ggml.model", slice_from_cstr(t->llama ? "llama" : "gpt2"),
                   json_off(&t->d, model), e) ||
            kv_str(t, "tokenizer.ggml.pre", slice_from_cstr(pre_name(t)), 0, e))
            goto done;
        tk = kv_new(t, "tokenizer.ggml.tokens", MV_ARR, e);
        if (!tk)
            goto done;
        tk->val.v.arr.elem = MV_STR;
        tk->val.v.arr.n = t->n;
        tk->val.v.arr.strs = t->tok;
        r = t->llama ? make_scores(t, ms, n_m, e) : 0;
        t->tok = NULL;   /* owned by the kv */
        if (r)
            goto done;
        kv = kv_new(t, "tokenizer.ggml.token_type", MV_ARR, e);
        if (!kv)
            goto done;
        kv->val.v.arr.elem = MV_I32;
        kv->val.v.arr.n = t->n;
        kv->val.v.arr.raw = (const uint8_t *)t->type;
        if (!t->llama && n_m) {
            kv = kv_new(t, "tokenizer.ggml.merges", MV_ARR, e);
            if (!kv)
                goto done;
            kv->val.v.arr.elem = MV_STR;
            kv->val.v.arr.n = n_m;
            kv->val.v.arr.strs = ms;
            ms = NULL;
        }
        if (read_side(t, dir, e))
            goto done;
        order_chat_last(t);
    }
    if (kv_str(t, "tokenizer.huggingface.json", whole, 0, e) || insert(t, e))
        goto done;
    rc = 0;
done:
    free(ms);
    return rc;
}

static void tk_init(struct tk *t, struct model *m)
{
    memset(t, 0, sizeof *t);
    t->m = m;
    t->sb = (struct sbuf)SBUF_INIT(ST_MAX_TOKENIZER);
}

int st_tokenizer_read(struct model *m, const char *dir, struct err *e)
{
    struct tk t;
    const char *text = NULL;
    size_t n = 0;
    int r;

    tk_init(&t, m);
    r = load_text(m, dir, "tokenizer.json", ST_MAX_TOKENIZER, &t.path, &text, &n, e);
    if (r == 0)
        r = read_tokenizer(&t, text, n, dir, e);
    tk_release(&t);
    return r > 0 ? 0 : r;   /* 1: no tokenizer.json */
}

int st_tokenizer_read_mem(struct model *m, const char *json, size_t n, const char *name,
                          struct err *e)
{
    struct tk t;
    const char *text = NULL;
    int rc = -1;

    tk_init(&t, m);
    t.path = strdup(name ? name : "tokenizer.json");
    if (!t.path)
        ERR(e, ERR_NOMEM, "out of memory");
    else if (copy_text(m, t.path, "tokenizer.json", json, n, ST_MAX_TOKENIZER, &text, e) == 0)
        rc = read_tokenizer(&t, text, n, NULL, e);
    tk_release(&t);
    return rc;
}

/* ======================================================================== writing */

/* The Llama 3 and Qwen2 pre-tokenizer split patterns (public tokenizer.json data). */
static const char re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char re_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The Split regexes (Isolated, in order, then ByteLevel without its own regex) of the
 * other pre-tokenizers whose split is not GPT-2's, as llama.cpp lists them
 * (src/llama-vocab.cpp); "gpt-2" and unknown names keep ByteLevel's own regex. */
#define RE_GPT2_HF "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_CJK_HF "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"
static const struct { const char *pre; const char *re[6]; } split_tab[] = {
    { "llama-bpe", { re_llama3 } },
    { "qwen2", { re_qwen2 } },
    { "deepseek-coder", { "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK_HF, "\\p{N}" } },
    { "starcoder", { "\\p{N}", RE_GPT2_HF } },
    { "smollm", { "\\p{N}", RE_GPT2_HF } },
    { "default", { "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2_HF, "\\p{N}+", "[0-9][0-9][0-9]" } },
};

static const char *const *split_res(struct slice pre)
{
    for (size_t i = 0; i < sizeof split_tab / sizeof *split_tab; i++)
        if (slice_eq_cstr(pre, split_tab[i].pre))
            return split_tab[i].re;
    return NULL;
}

struct syn {
    const struct model *m;
    const struct slice *tok;     /* [n] */
    uint64_t            n;
    const struct model_val *type;   /* NULL: all NORMAL */
    const struct model_val *score;  /* NULL: -id */
    int                 llama;
    int64_t             bos, eos, unk, pad;   /* -1 when absent */
    int                 add_bos, add_eos;
};

static int syn_type(const struct syn *s, uint64_t i)
{
    return s->type ? (int)model_arr_get_i64(s->type, i) : TT_NORMAL;
}

static double syn_score(const struct syn *s, uint64_t i)
{
    return s->score ? model_arr_get_f64(s->score, i) : -(double)i;
}

/* A "[PAD<id>]" hole that the reader would regenerate. */
static int is_hole(const struct syn *s, uint64_t i)
{
    char buf[32];
    int n;
    if (syn_type(s, i) != TT_UNUSED)
        return 0;
    n = snprintf(buf, sizeof buf, "[PAD%llu]", (unsigned long long)i);
    return slice_eq(s->tok[i], (struct slice){ buf, (size_t)n });
}

/* An array key of n elements of a fixed-size numeric type, or NULL. */
static const struct model_val *num_arr(const struct model *m, const char *key, uint64_t n)
{
    const struct model_kv *kv = model_kv_find(m, key);
    if (!kv || kv->val.type != MV_ARR || kv->val.v.arr.n != n || !kv->val.v.arr.raw ||
        kv->val.v.arr.elem == MV_BOOL || model_vtype_size(kv->val.v.arr.elem) == 0)
        return NULL;
    return &kv->val;
}

/* 1 when key is a BOOL (or integer) holding true. */
static int kv_true(const struct model *m, const char *key)
{
    const struct model_kv *kv = model_kv_find(m, key);
    uint64_t u;
    if (kv && kv->val.type == MV_BOOL)
        return kv->val.v.u != 0;
    return model_kv_get_u64(m, key, &u) == 0 && u != 0;
}

static int64_t id_key(const struct model *m, const char *key, uint64_t n)
{
    uint64_t u;
    return model_kv_get_u64(m, key, &u) == 0 && u < n ? (int64_t)u : -1;
}

struct cand {
    double   score;
    uint32_t id, l, r;
};

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    if (x->l != y->l)
        return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

/* Merges for a SentencePiece-style vocabulary, as transformers derives them. */
static int spm_merges(const struct syn *s, const struct tk_map *h, struct json_w *w,
                      struct err *e)
{
    struct cand *c = NULL;
    struct sbuf sb = SBUF_INIT(1 << 20);
    uint64_t n_c = 0, cap = 0;

    for (uint64_t i = 0; i < s->n; i++) {
        struct slice t = s->tok[i];
        if (syn_type(s, i) != TT_NORMAL || t.n < 2)
            continue;
        for (size_t k = 1; k < t.n; k++) {
            int64_t l, r;
            if (((uint8_t)t.p[k] & 0xC0) == 0x80)
                continue;   /* split between characters only */
            l = map_get(h, (struct slice){ t.p, k });
            r = l < 0 ? -1 : map_get(h, (struct slice){ t.p + k, t.n - k });
            if (r < 0)
                continue;
            if (n_c == cap) {
                uint64_t nc = cap ? cap * 2 : 4096;
                struct cand *p = realloc(c, (size_t)nc * sizeof *c);
                if (!p) {
                    free(c);
                    return ERR(e, ERR_NOMEM, "out of memory");
                }
                c = p;
                cap = nc;
            }
            c[n_c].score = syn_score(s, i);
            c[n_c].id = (uint32_t)i;
            c[n_c].l = (uint32_t)l;
            c[n_c].r = (uint32_t)r;
            n_c++;
        }
    }
    if (n_c)
        qsort(c, (size_t)n_c, sizeof *c, cand_cmp);
    for (uint64_t j = 0; j < n_c; j++) {
        struct slice a = s->tok[c[j].l], b = s->tok[c[j].r];
        sb.len = 0;
        sbuf_add(&sb, a.p, a.n);
        sbuf_addc(&sb, ' ');
        sbuf_add(&sb, b.p, b.n);
        if (sbuf_check(&sb, "merge", e))
            break;
        json_w_str_n(w, sb.p, sb.len);
    }
    free(c);
    sbuf_release(&sb);
    return err_ok(e) ? 0 : -1;
}

static void w_special_tok(struct json_w *w, const struct syn *s, int64_t id, int type_id)
{
    json_w_obj(w);
    json_w_key(w, "SpecialToken");
    json_w_obj(w);
    json_w_key(w, "id");
    json_w_str_n(w, s->tok[id].p, s->tok[id].n);
    json_w_key(w, "type_id");
    json_w_u64(w, (uint64_t)type_id);
    json_w_obj_end(w);
    json_w_obj_end(w);
}

static void w_seq(struct json_w *w, const char *id, int type_id)
{
    json_w_obj(w);
    json_w_key(w, "Sequence");
    json_w_obj(w);
    json_w_key(w, "id");
    json_w_str(w, id);
    json_w_key(w, "type_id");
    json_w_u64(w, (uint64_t)type_id);
    json_w_obj_end(w);
    json_w_obj_end(w);
}

static void w_bytelevel(struct json_w *w, int prefix, int trim, int regex)
{
    json_w_obj(w);
    json_w_key(w, "type");
    json_w_str(w, "ByteLevel");
    json_w_key(w, "add_prefix_space");
    json_w_bool(w, prefix);
    json_w_key(w, "trim_offsets");
    json_w_bool(w, trim);
    json_w_key(w, "use_regex");
    json_w_bool(w, regex);
    json_w_obj_end(w);
}

/* One sequence of a template: [BOS] $id [EOS], each piece with type_id; bos/eos -1: none. */
static void w_bos_seq_eos(struct json_w *w, const struct syn *s, int64_t bos, int64_t eos,
                          const char *id, int type_id)
{
    if (bos >= 0)
        w_special_tok(w, s, bos, type_id);
    w_seq(w, id, type_id);
    if (eos >= 0)
        w_special_tok(w, s, eos, type_id);
}

static void w_template(struct json_w *w, const struct syn *s)
{
    int64_t bos = s->add_bos ? s->bos : -1, eos = s->add_eos ? s->eos : -1;

    json_w_obj(w);
    json_w_key(w, "type");
    json_w_str(w, "TemplateProcessing");
    json_w_key(w, "single");
    json_w_arr(w);
    w_bos_seq_eos(w, s, bos, eos, "A", 0);
    json_w_arr_end(w);
    json_w_key(w, "pair");
    json_w_arr(w);
    w_bos_seq_eos(w, s, bos, eos, "A", 0);
    w_bos_seq_eos(w, s, bos, eos, "B", 1);
    json_w_arr_end(w);
    json_w_key(w, "special_tokens");
    json_w_obj(w);
    for (int k = 0; k < 2; k++) {
        int64_t id = k ? eos : bos;
        if (id < 0 || (k && id == bos))
            continue;
        json_w_key_n(w, s->tok[id].p, s->tok[id].n);
        json_w_obj(w);
        json_w_key(w, "id");
        json_w_str_n(w, s->tok[id].p, s->tok[id].n);
        json_w_key(w, "ids");
        json_w_arr(w);
        json_w_u64(w, (uint64_t)id);
        json_w_arr_end(w);
        json_w_key(w, "tokens");
        json_w_arr(w);
        json_w_str_n(w, s->tok[id].p, s->tok[id].n);
        json_w_arr_end(w);
        json_w_obj_end(w);
    }
    json_w_obj_end(w);
    json_w_obj_end(w);
}

static void w_replace(struct json_w *w, const char *from, const char *to)
{
    json_w_obj(w);
    json_w_key(w, "type");
    json_w_str(w, "Replace");
    json_w_key(w, "pattern");
    json_w_obj(w);
    json_w_key(w, "String");
    json_w_str(w, from);
    json_w_obj_end(w);
    json_w_key(w, "content");
    json_w_str(w, to);
    json_w_obj_end(w);
}

static void w_type_only(struct json_w *w, const char *type)
{
    json_w_obj(w);
    json_w_key(w, "type");
    json_w_str(w, type);
    json_w_obj_end(w);
}

/* tokenizer.json for a GGUF vocabulary (see the top comment). */
static int synth_tokenizer(const struct syn *s, struct sbuf *b, struct err *e)
{
    const struct model_kv *mk = model_kv_find(s->m, "tokenizer.ggml.merges");
    struct tk_map h = { NULL, NULL, 0 };
    struct slice pre = { NULL, 0 };
    uint8_t *dup = NULL;
    struct json_w w;
    int rc = -1;

    if (mk && (mk->val.type != MV_ARR || mk->val.v.arr.elem != MV_STR))
        mk = NULL;
    model_kv_get_str(s->m, "tokenizer.ggml.pre", &pre);
    dup = calloc((size_t)(s->n ? s->n : 1), 1);
    if (!dup || map_init(&h, s->n, e)) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < s->n; i++)
        if (!is_hole(s, i) && map_put(&h, s->tok[i], (uint32_t)i))
            dup[i] = 1;
    json_w_init(&w, b, 1);
    json_w_obj(&w);
    json_w_key(&w, "version");
    json_w_str(&w, "1.0");
    json_w_key(&w, "truncation");
    json_w_null(&w);
    json_w_key(&w, "padding");
    json_w_null(&w);
    json_w_key(&w, "added_tokens");
    json_w_arr(&w);
    for (uint64_t i = 0; i < s->n; i++) {
        int ty = syn_type(s, i);
        int special = ty == TT_CONTROL || ty == TT_UNKNOWN;
        if (!special && ty != TT_USER && !dup[i])
            continue;
        json_w_obj(&w);
        json_w_key(&w, "id");
        json_w_u64(&w, i);
        json_w_key(&w, "content");
        json_w_str_n(&w, s->tok[i].p, s->tok[i].n);
        json_w_key(&w, "single_word");
        json_w_bool(&w, 0);
        json_w_key(&w, "lstrip");
        json_w_bool(&w, 0);
        json_w_key(&w, "rstrip");
        json_w_bool(&w, 0);
        json_w_key(&w, "normalized");
        json_w_bool(&w, !special);
        json_w_key(&w, "special");
        json_w_bool(&w, special);
        json_w_obj_end(&w);
    }
    json_w_arr_end(&w);
    json_w_key(&w, "normalizer");
    if (s->llama) {
        json_w_obj(&w);
        json_w_key(&w, "type");
        json_w_str(&w, "Sequence");
        json_w_key(&w, "normalizers");
        json_w_arr(&w);
        json_w_obj(&w);
        json_w_key(&w, "type");
        json_w_str(&w, "Prepend");
        json_w_key(&w, "prepend");
        json_w_str(&w, U_SPM_SPACE);
        json_w_obj_end(&w);
        w_replace(&w, " ", U_SPM_SPACE);
        json_w_arr_end(&w);
        json_w_obj_end(&w);
    } else {
        json_w_null(&w);
    }
    json_w_key(&w, "pre_tokenizer");
    if (s->llama) {
        json_w_null(&w);
    } else if (split_res(pre)) {
        const char *const *res = split_res(pre);
        json_w_obj(&w);
        json_w_key(&w, "type");
        json_w_str(&w, "Sequence");
        json_w_key(&w, "pretokenizers");
        json_w_arr(&w);
        for (int k = 0; k < 6 && res[k]; k++) {
            json_w_obj(&w);
            json_w_key(&w, "type");
            json_w_str(&w, "Split");
            json_w_key(&w, "pattern");
            json_w_obj(&w);
            json_w_key(&w, "Regex");
            json_w_str(&w, res[k]);
            json_w_obj_end(&w);
            json_w_key(&w, "behavior");
            json_w_str(&w, "Isolated");
            json_w_key(&w, "invert");
            json_w_bool(&w, 0);
            json_w_obj_end(&w);
        }
        w_bytelevel(&w, 0, 1, 0);
        json_w_arr_end(&w);
        json_w_obj_end(&w);
    } else {
        w_bytelevel(&w, 0, 1, 1);
    }
    json_w_key(&w, "post_processor");
    if ((s->add_bos && s->bos >= 0) || (s->add_eos && s->eos >= 0)) {
        if (!s->llama) {
            json_w_obj(&w);
            json_w_key(&w, "type");
            json_w_str(&w, "Sequence");
            json_w_key(&w, "processors");
            json_w_arr(&w);
            w_bytelevel(&w, 1, 0, 1);
            w_template(&w, s);
            json_w_arr_end(&w);
            json_w_obj_end(&w);
        } else {
            w_template(&w, s);
        }
    } else if (!s->llama) {
        w_bytelevel(&w, 1, 0, 1);
    } else {
        json_w_null(&w);
    }
    json_w_key(&w, "decoder");
    if (s->llama) {
        json_w_obj(&w);
        json_w_key(&w, "type");
        json_w_str(&w, "Sequence");
        json_w_key(&w, "decoders");
        json_w_arr(&w);
        w_replace(&w, U_SPM_SPACE, " ");
        w_type_only(&w, "ByteFallback");
        w_type_only(&w, "Fuse");
        json_w_obj(&w);
        json_w_key(&w, "type");
        json_w_str(&w, "Strip");
        json_w_key(&w, "content");
        json_w_str(&w, " ");
        json_w_key(&w, "start");
        json_w_u64(&w, 1);
        json_w_key(&w, "stop");
        json_w_u64(&w, 0);
        json_w_obj_end(&w);
        json_w_arr_end(&w);
        json_w_obj_end(&w);
    } else {
        w_bytelevel(&w, 1, 1, 1);
    }
    json_w_key(&w, "model");
    json_w_obj(&w);
    json_w_key(&w, "type");
    json_w_str(&w, "BPE");
    json_w_key(&w, "dropout");
    json_w_null(&w);
    json_w_key(&w, "unk_token");
    if (s->llama && s->unk >= 0)
        json_w_str_n(&w, s->tok[s->unk].p, s->tok[s->unk].n);
    else
        json_w_null(&w);
    json_w_key(&w, "continuing_subword_prefix");
    json_w_null(&w);
    json_w_key(&w, "end_of_word_suffix");
    json_w_null(&w);
    json_w_key(&w, "fuse_unk");
    json_w_bool(&w, s->llama);
    json_w_key(&w, "byte_fallback");
    json_w_bool(&w, s->llama);
    json_w_key(&w, "ignore_merges");
    json_w_bool(&w, 0);
    json_w_key(&w, "vocab");
    json_w_obj(&w);
    for (uint64_t i = 0; i < s->n; i++) {
        if (dup[i] || is_hole(s, i))
            continue;
        json_w_key_n(&w, s->tok[i].p, s->tok[i].n);
        json_w_u64(&w, i);
    }
    json_w_obj_end(&w);
    json_w_key(&w, "merges");
    json_w_arr(&w);
    if (mk) {
        for (uint64_t j = 0; j < mk->val.v.arr.n; j++)
            json_w_str_n(&w, mk->val.v.arr.strs[j].p, mk->val.v.arr.strs[j].n);
    } else if (s->llama && spm_merges(s, &h, &w, e)) {
        goto done;
    }
    json_w_arr_end(&w);
    json_w_obj_end(&w);
    json_w_obj_end(&w);
    sbuf_addc(b, '\n');
    rc = sbuf_check(b, "tokenizer.json", e);
done:
    map_release(&h);
    free(dup);
    return rc;
}

static void w_tok_field(struct json_w *w, const struct syn *s, const char *key, int64_t id)
{
    if (id < 0)
        return;
    json_w_key(w, key);
    json_w_str_n(w, s->tok[id].p, s->tok[id].n);
}

static int synth_config(const struct syn *s, struct sbuf *b, struct err *e)
{
    struct slice ct;
    struct json_w w;

    json_w_init(&w, b, 1);
    json_w_obj(&w);
    if (model_kv_find(s->m, "tokenizer.ggml.add_bos_token")) {
        json_w_key(&w, "add_bos_token");
        json_w_bool(&w, s->add_bos);
    }
    if (model_kv_find(s->m, "tokenizer.ggml.add_eos_token")) {
        json_w_key(&w, "add_eos_token");
        json_w_bool(&w, s->add_eos);
    }
    w_tok_field(&w, s, "bos_token", s->bos);
    if (model_kv_get_str(s->m, "tokenizer.chat_template", &ct) == 0) {
        json_w_key(&w, "chat_template");
        json_w_str_n(&w, ct.p, ct.n);
    }
    json_w_key(&w, "clean_up_tokenization_spaces");
    json_w_bool(&w, 0);
    w_tok_field(&w, s, "eos_token", s->eos);
    w_tok_field(&w, s, "pad_token", s->pad);
    json_w_key(&w, "tokenizer_class");
    json_w_str(&w, "PreTrainedTokenizerFast");
    w_tok_field(&w, s, "unk_token", s->unk);
    json_w_obj_end(&w);
    sbuf_addc(b, '\n');
    return sbuf_check(b, "tokenizer_config.json", e);
}

int st_write_tokenizer(const struct model *m, const char *dir, struct err *e)
{
    const struct model_kv *hf = model_kv_find(m, "tokenizer.huggingface.json");
    const struct model_kv *toks = model_kv_find(m, "tokenizer.ggml.tokens");
    struct sbuf b = SBUF_INIT((size_t)1 << 31);
    struct slice tm = { NULL, 0 };
    struct syn s;
    int rc = -1;

    if (hf && hf->val.type != MV_STR)
        hf = NULL;
    if (toks && (toks->val.type != MV_ARR || toks->val.v.arr.elem != MV_STR))
        toks = NULL;
    if (!hf && !toks)
        return 0;
    memset(&s, 0, sizeof s);
    s.m = m;
    s.bos = s.eos = s.unk = s.pad = -1;
    if (toks) {
        s.tok = toks->val.v.arr.strs;
        s.n = toks->val.v.arr.n;
        s.type = num_arr(m, "tokenizer.ggml.token_type", s.n);
        s.score = num_arr(m, "tokenizer.ggml.scores", s.n);
        model_kv_get_str(m, "tokenizer.ggml.model", &tm);
        s.llama = slice_eq_cstr(tm, "llama");
        s.bos = id_key(m, "tokenizer.ggml.bos_token_id", s.n);
        s.eos = id_key(m, "tokenizer.ggml.eos_token_id", s.n);
        s.unk = id_key(m, "tokenizer.ggml.unknown_token_id", s.n);
        s.pad = id_key(m, "tokenizer.ggml.padding_token_id", s.n);
        s.add_bos = kv_true(m, "tokenizer.ggml.add_bos_token");
        s.add_eos = kv_true(m, "tokenizer.ggml.add_eos_token");
        if (s.llama && s.unk < 0 && s.type)
            for (uint64_t i = 0; i < s.n && s.unk < 0; i++)
                if (syn_type(&s, i) == TT_UNKNOWN)
                    s.unk = (int64_t)i;
    }
    if (hf) {
        if (st__write_file(dir, "tokenizer.json", hf->val.v.s.p, hf->val.v.s.n, e))
            goto done;
    } else if (s.llama || slice_eq_cstr(tm, "gpt2")) {
        if (synth_tokenizer(&s, &b, e) || st__write_file(dir, "tokenizer.json", b.p, b.len, e))
            goto done;
    } else {
        rc = 0;   /* another tokenizer family: nothing tokenizers could load */
        goto done;
    }
    if (toks) {
        sbuf_release(&b);
        b = (struct sbuf)SBUF_INIT((size_t)1 << 31);
        if (synth_config(&s, &b, e) || st__write_file(dir, "tokenizer_config.json", b.p, b.len, e))
            goto done;
    }
    rc = 0;
done:
    sbuf_release(&b);
    return rc;
}
