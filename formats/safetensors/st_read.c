/*
 * st_read.c - the SafeTensors reader: one file, a directory, or a sharded checkpoint
 * (model.safetensors.index.json), plus the config.json beside the weights.
 *
 * BYTE LAYOUT (reference/gguf-quant.md 5.1)
 *
 *   offset 0     u64 N (little-endian)    header length in bytes
 *   offset 8     u8  header[N]            UTF-8 JSON object, may be padded with spaces
 *   offset 8+N   u8  data[]               the byte buffer; data_offsets count from HERE
 *
 *   header = { "__metadata__": { "<key>": "<string>", ... },         optional
 *              "<tensor>": { "dtype": "F32", "shape": [d0, d1, ...],   outermost first
 *                            "data_offsets": [BEGIN, END] }, ... }     END exclusive
 *
 * VALIDATION (everything is checked before st_open returns; 5.3 and 6):
 *   - file >= 8 bytes; N <= 100,000,000 (ERR_LIMIT); 8 + N <= file size;
 *   - the header, after optional JSON whitespace, starts with '{' and is one complete,
 *     valid JSON object (json_parse: UTF-8, escapes, literals, numbers, no duplicate
 *     keys), followed by nothing but whitespace: other bytes after it (NUL padding, a
 *     stray '}') are reported with the offset of the first one (check_trailing);
 *   - "__metadata__" (at most once) is an object of strings with unique keys;
 *   - every other key is a tensor: an object with a known "dtype" string, a "shape"
 *     array of exact non-negative integers < 2^63 (at most MODEL_MAX_DIMS of them,
 *     else ERR_LIMIT), and "data_offsets" = two exact integers with BEGIN <= END;
 *     extra fields are ignored;
 *   - the element count does not overflow, sub-byte types fill whole bytes, and
 *     END - BEGIN equals the byte size of dtype x shape;
 *   - sorted by (BEGIN, END), the ranges tile the data buffer exactly: the first starts
 *     at 0, each starts where the previous ended (no hole, no overlap), and the last
 *     ends at the end of the file (no trailing bytes: MetadataIncompleteBuffer);
 *   - tensor names are unique (also across shards and across JSON escape spellings).
 * Tensors may be unaligned: data is only ever reached through t->data with memcpy-
 * style access by the consumers, never cast.  Zero-size tensors and scalars
 * ("shape": []) are legal.  Tensors are listed in file order (by data offset, ties
 * in header order), shard after shard.
 *
 * SHARDED CHECKPOINTS (5.5): model.safetensors.index.json is
 *   { "metadata": { "total_size": N, ... }, "weight_map": { "<tensor>": "<shard>" } }.
 * Shard names must be plain file names in the index's directory: empty names and
 * names containing '/', '\', ".." or NUL are refused (a hostile index must not reach
 * other files).  Each distinct shard is loaded once, in name order.  Every weight_map
 * entry must exist in its named shard, no tensor may appear in two shards, and every
 * tensor of every shard must be listed.  "metadata" entries are kept as
 * "safetensors.index.metadata.<key>" (total_size is informational, not checked).
 * A directory without an index holding several *.safetensors files loads them all
 * as shards in name order (dot files are skipped).  Files may be symlinks (a Hugging
 * Face cache snapshot links every file into ../../blobs/); a cache repository
 * directory (models--org--name, with snapshots/ and refs/main) is read through the
 * snapshot refs/main names (st_hfcache.c).
 *
 * METADATA KEYS produced, in this order:
 *   1. GGUF-style keys derived from config.json (table below);
 *   1b. tokenizer.ggml.*, tokenizer.chat_template and tokenizer.huggingface.json from
 *      tokenizer.json and its side files (st_tokenizer.c), added after the checks;
 *   2. "safetensors.metadata.<key>" (STRING) from __metadata__, in header order; for
 *      shards, the first shard's entries, then keys only later shards add (a later
 *      shard with a different value for a known key adds a note);
 *   3. "safetensors.index.metadata.<key>" from the index, JSON-typed;
 *   4. "hf.config.<key>" for every top-level config.json key, in file order, with its
 *      JSON type (model_json.c rules: integers UINT64/INT64, other numbers FLOAT64,
 *      objects OBJECT, null NULL), so a writer can regenerate config.json;
 *   5. ST_GENCFG_KEY (st.h, STRING): the text of generation_config.json beside the
 *      weights, as it is (a JSON object, at most 16 MiB; malformed is an error naming
 *      the file and offset), so that a writer puts it back byte for byte.
 *
 * CONFIG.JSON MAPPING (gguf-quant.md 2.9; types are exactly llama.cpp's):
 *
 *   config.json                              GGUF key                                  type
 *   ---------------------------------------  ----------------------------------------  -------
 *   model_type (else architectures[0]:       general.architecture                      STRING
 *     LlamaForCausalLM, MistralForCausalLM,
 *     Qwen2ForCausalLM, Qwen3ForCausalLM)
 *     llama->llama, mistral->llama, qwen2->qwen2, qwen3->qwen3, others as-is
 *   max_position_embeddings                  {arch}.context_length                     UINT32
 *   hidden_size                              {arch}.embedding_length                   UINT32
 *   num_hidden_layers                        {arch}.block_count                        UINT32
 *   intermediate_size                        {arch}.feed_forward_length                UINT32
 *   num_attention_heads                      {arch}.attention.head_count               UINT32
 *   num_key_value_heads (absent/null: =      {arch}.attention.head_count_kv            UINT32
 *     num_attention_heads)
 *   rope_parameters.rope_theta (transformers {arch}.rope.freq_base                     FLOAT32
 *     5), else top-level rope_theta;
 *     omitted when neither exists (llama.cpp then uses its own default, 10000)
 *   rms_norm_eps                             {arch}.attention.layer_norm_rms_epsilon   FLOAT32
 *   head_dim (only when stated)              {arch}.attention.key_length               UINT32
 *   head_dim (only when stated)              {arch}.attention.value_length             UINT32
 *   vocab_size                               {arch}.vocab_size                         UINT32
 *   rope type, from rope_parameters.rope_type {arch}.rope.scaling.type                 STRING
 *     else rope_scaling.rope_type/.type,
 *     only linear, yarn, longrope
 *   factor (same object)                     {arch}.rope.scaling.factor                FLOAT32
 *   original_max_position_embeddings         {arch}.rope.scaling.original_context_length UINT32
 *     (same object)
 *
 * A key whose value is absent or null is skipped.  A present value of the wrong kind
 * (a string for hidden_size, a negative count, a count over UINT32_MAX, a
 * non-finite or out-of-range float) is an error naming config.json, the key and the
 * offset, as is malformed JSON.  A model_type that is not a plain identifier
 * ([a-z0-9_-], at most 64 bytes) derives no keys (a note says so).  Other rope types
 * ("llama3", "dynamic", ...) have no GGUF scaling keys: llama.cpp's converter encodes
 * llama3 scaling as a rope_freqs.weight tensor, which is the converter's business;
 * they are kept in hf.config.* only, and non-"default" ones add a note.
 * tie_word_embeddings, architectures, torch dtype etc. have no GGUF key: hf.config.*
 * keeps them.  A missing config.json is fine.  st_open_mem reads no config.json.
 */
#include "st.h"
#include "st_impl.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/json.h"
#include "../../common/rd.h"
#include "../../common/sz.h"
#include "../model_json.h"
#include "../../common/banned.h"

#define ST_MAX_INDEX   100000000ULL   /* index.json cap */
#define ST_MAX_CONFIG  (16ULL << 20)  /* config.json cap */
#define ST_MAX_SHARDS  65536u
#define ST_MAX_ARCH    64
#define META_PREFIX    "safetensors.metadata."
#define META_N         (sizeof META_PREFIX - 1)

/* Metadata groups, in the order they appear in the model (see the top comment). */
enum kv_group { KG_GGUF, KG_ST, KG_INDEX, KG_HF, KG_COUNT };

struct st_ctx {
    struct model *m;
    uint64_t      kv_cap;
    uint8_t      *kv_group;   /* parallel to m->kv: enum kv_group */
    uint64_t      t_cap;
};

/* A tensor entry while its file is being checked. */
struct ent {
    struct model_tensor t;
    uint64_t begin, end;      /* data_offsets */
    uint64_t hidx;            /* position in the header (stable tie-break) */
    uint64_t joff;            /* file offset of the entry's key, for messages */
};

/* Names in messages: at most 200 bytes. */
#define SL(s) (int)((s).n > 200 ? 200 : (s).n), (s).p

static int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* ---- small helpers */

char *st__path_join(const char *dir, struct slice name, struct err *e)
{
    size_t dn = strlen(dir);
    char *p = malloc(dn + 1 + name.n + 1);
    if (!p) {
        ERR(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(p, dir, dn);
    p[dn] = '/';
    memcpy(p + dn + 1, name.p, name.n);
    p[dn + 1 + name.n] = 0;
    return p;
}

/* The directory part of path ("." when none). */
static char *path_dir(const char *path, struct err *e)
{
    const char *sl = strrchr(path, '/');
    size_t n = sl ? (size_t)(sl - path) : 1;
    char *p;

    if (sl && n == 0)
        n = 1;   /* "/file" -> "/" */
    p = malloc(n + 1);
    if (!p) {
        ERR(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(p, sl ? path : ".", n);
    p[n] = 0;
    return p;
}

/*
 * The text of string token i, unescaped.  Without escapes the slice borrows the JSON
 * text (callers only do that for text that outlives the use); otherwise the unescaped
 * copy lives in m's arena.
 */
static int tok_slice(struct model *m, const struct json_doc *d, int i, struct slice *out,
                     struct err *e)
{
    struct slice raw = json_raw(d, i);
    struct sbuf b;
    int rc;

    if (!memchr(raw.p, '\\', raw.n)) {
        *out = raw;
        return 0;
    }
    b = (struct sbuf)SBUF_INIT(raw.n + 1);
    rc = json_str(d, i, &b, e);
    if (!rc)
        rc = model__strdup(m, b.p ? b.p : "", b.len, out, e);
    sbuf_release(&b);
    return rc;
}

static struct model_kv *kv_push(struct st_ctx *c, enum kv_group g, struct err *e)
{
    struct model *m = c->m;
    struct model_kv *kv;

    if (m->n_kv == c->kv_cap) {
        uint64_t cap = c->kv_cap ? c->kv_cap * 2 : 16;
        size_t bytes;
        uint8_t *gp;
        if (sz_to_size(cap * sizeof *kv, &bytes) || cap > SIZE_MAX / sizeof *kv) {
            ERR(e, ERR_NOMEM, "%s: too many metadata keys", m->path);
            return NULL;
        }
        kv = realloc(m->kv, bytes);
        if (!kv) {
            ERR(e, ERR_NOMEM, "out of memory");
            return NULL;
        }
        m->kv = kv;
        gp = realloc(c->kv_group, (size_t)cap);
        if (!gp) {
            ERR(e, ERR_NOMEM, "out of memory");
            return NULL;
        }
        c->kv_group = gp;
        c->kv_cap = cap;
    }
    kv = &m->kv[m->n_kv];
    memset(kv, 0, sizeof *kv);
    kv->val.type = MV_NULL;
    c->kv_group[m->n_kv] = (uint8_t)g;
    m->n_kv++;
    return kv;
}

/* kv->key = prefix + name (a copy in the arena). */
static int kv_key(struct model *m, struct model_kv *kv, const char *prefix, const char *name,
                  size_t n, struct err *e)
{
    size_t pn = strlen(prefix);
    char *p;

    if (n > SIZE_MAX - pn - 1)
        return ERR(e, ERR_NOMEM, "out of memory");
    p = model__alloc(m, pn + n + 1, e);
    if (!p)
        return -1;
    memcpy(p, prefix, pn);
    if (n)
        memcpy(p + pn, name, n);
    p[pn + n] = 0;
    kv->key.p = p;
    kv->key.n = pn + n;
    return 0;
}

/* Stable reorder of m->kv by group. */
static int kv_order(struct st_ctx *c, struct err *e)
{
    struct model *m = c->m;
    struct model_kv *kv;
    uint64_t j = 0;

    if (m->n_kv < 2)
        return 0;
    kv = malloc((size_t)m->n_kv * sizeof *kv);
    if (!kv)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (int g = 0; g < KG_COUNT; g++)
        for (uint64_t i = 0; i < m->n_kv; i++)
            if (c->kv_group[i] == g)
                kv[j++] = m->kv[i];
    free(m->kv);
    m->kv = kv;
    c->kv_cap = m->n_kv;
    return 0;
}

static int tensor_push(struct st_ctx *c, const struct model_tensor *t, struct err *e)
{
    struct model *m = c->m;

    if (m->n_tensors == c->t_cap) {
        uint64_t cap = c->t_cap ? c->t_cap * 2 : 64;
        struct model_tensor *nt;
        if (cap > SIZE_MAX / sizeof *nt)
            return ERR(e, ERR_NOMEM, "%s: too many tensors", m->path);
        nt = realloc(m->tensors, (size_t)cap * sizeof *nt);
        if (!nt)
            return ERR(e, ERR_NOMEM, "out of memory");
        m->tensors = nt;
        c->t_cap = cap;
    }
    m->tensors[m->n_tensors++] = *t;
    return 0;
}

static int slice_cmp_v(const void *a, const void *b)
{
    return slice_cmp(*(const struct slice *)a, *(const struct slice *)b);
}

/* ---- one SafeTensors file */

/* __metadata__: an object of strings with unique keys (also after unescaping). */
static int parse_meta(struct st_ctx *c, uint32_t fi, const struct json_doc *d, int v,
                      struct err *e)
{
    struct model *m = c->m;
    const char *fn = d->name;
    struct slice *keys = NULL, *vals = NULL, *sorted = NULL;
    int n, k, rc = -1;

    if (!json_is(d, v, JSMN_OBJECT))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, v),
                       "%s: '__metadata__' is not an object of strings", fn);
    n = d->tok[v].size;
    if (n == 0)
        return 0;
    keys = calloc((size_t)n, sizeof *keys);
    vals = calloc((size_t)n, sizeof *vals);
    sorted = calloc((size_t)n, sizeof *sorted);
    if (!keys || !vals || !sorted) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    k = v + 1;
    for (int j = 0; j < n; j++, k = json_next(d, k + 1)) {
        if (tok_slice(m, d, k, &keys[j], e))
            goto done;
        if (!json_is(d, k + 1, JSMN_STRING)) {
            ERR_OFF(e, ERR_FORMAT, json_off(d, k + 1),
                    "%s: '__metadata__' value of '%.*s' is not a string", fn, SL(keys[j]));
            goto done;
        }
        if (tok_slice(m, d, k + 1, &vals[j], e))
            goto done;
        sorted[j] = keys[j];
    }
    qsort(sorted, (size_t)n, sizeof *sorted, slice_cmp_v);
    for (int j = 1; j < n; j++)
        if (slice_eq(sorted[j], sorted[j - 1])) {
            ERR_OFF(e, ERR_FORMAT, json_off(d, v), "%s: '__metadata__' has key '%.*s' twice",
                    fn, SL(sorted[j]));
            goto done;
        }
    for (int j = 0; j < n; j++) {
        struct model_kv *kv;
        if (fi > 0) {
            /* A later shard: only keys the first shards did not have. */
            const struct model_kv *old = NULL;
            for (uint64_t i = 0; i < m->n_kv && !old; i++)
                if (c->kv_group[i] == KG_ST && m->kv[i].key.n == META_N + keys[j].n &&
                    memcmp(m->kv[i].key.p + META_N, keys[j].p, keys[j].n) == 0)
                    old = &m->kv[i];
            if (old) {
                if (!slice_eq(old->val.v.s, vals[j]))
                    model__note(m, "%s: __metadata__ '%.*s' differs from the first shard's; "
                                "the first is kept", fn, SL(keys[j]));
                continue;
            }
        }
        kv = kv_push(c, KG_ST, e);
        if (!kv || kv_key(m, kv, META_PREFIX, keys[j].p, keys[j].n, e))
            goto done;
        kv->off = json_off(d, v);
        kv->val.type = MV_STR;
        kv->val.v.s = vals[j];
    }
    rc = 0;
done:
    free(keys);
    free(vals);
    free(sorted);
    return rc;
}

/* One tensor entry: key token k.  hlen: header length; dsize: data buffer size. */
static int parse_entry(struct st_ctx *c, uint32_t fi, const struct json_doc *d, int k,
                       uint64_t hlen, uint64_t dsize, struct ent *x, struct err *e)
{
    struct model *m = c->m;
    const struct mfile *mf = &m->files[fi];
    const char *fn = d->name;
    struct model_tensor *t = &x->t;
    const struct dtype_info *di;
    int v = k + 1, dt, sh, of, type;
    struct slice ds;
    char what[320];
    uint64_t nb;
    int64_t ne = 1;
    struct err tmp = ERR_INIT;

    memset(x, 0, sizeof *x);
    if (tok_slice(m, d, k, &t->name, e))
        return -1;
    x->joff = json_off(d, k);
    if (!json_is(d, v, JSMN_OBJECT))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, v), "%s: tensor '%.*s': entry is not a JSON object",
                       fn, SL(t->name));
    dt = json_get(d, v, "dtype");
    sh = json_get(d, v, "shape");
    of = json_get(d, v, "data_offsets");
    if (dt < 0 || sh < 0 || of < 0)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, v), "%s: tensor '%.*s': missing '%s'", fn,
                       SL(t->name), dt < 0 ? "dtype" : sh < 0 ? "shape" : "data_offsets");

    /* dtype */
    if (!json_is(d, dt, JSMN_STRING))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, dt), "%s: tensor '%.*s': 'dtype' is not a string",
                       fn, SL(t->name));
    if (tok_slice(m, d, dt, &ds, e))
        return -1;
    type = dtype_from_st(ds.p, ds.n);
    if (type < 0)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, dt), "%s: tensor '%.*s': unknown dtype '%.*s'",
                       fn, SL(t->name), (int)(ds.n > 32 ? 32 : ds.n), ds.p);

    /* shape: exact non-negative integers below 2^63 */
    if (!json_is(d, sh, JSMN_ARRAY))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, sh), "%s: tensor '%.*s': 'shape' is not an array",
                       fn, SL(t->name));
    if (d->tok[sh].size > MODEL_MAX_DIMS)
        return ERR_OFF(e, ERR_LIMIT, json_off(d, sh),
                       "%s: tensor '%.*s': %d dimensions (at most %d supported)", fn, SL(t->name),
                       d->tok[sh].size, MODEL_MAX_DIMS);
    snprintf(what, sizeof what, "tensor '%.*s': shape", SL(t->name));
    t->n_dims = d->tok[sh].size;
    for (int i = 0, j = sh + 1; i < MODEL_MAX_DIMS; i++) {
        uint64_t dim;
        t->shape[i] = 1;
        if (i >= t->n_dims)
            continue;
        if (json_u64(d, j, &dim, what, e))
            return -1;
        if (dim > (uint64_t)INT64_MAX)
            return ERR_OFF(e, ERR_FORMAT, json_off(d, j), "%s: %s: dimension %llu too large", fn,
                           what, (unsigned long long)dim);
        t->shape[i] = (int64_t)dim;
        if (sz_mul_i64(ne, (int64_t)dim, &ne))
            return ERR_OFF(e, ERR_FORMAT, json_off(d, j), "%s: %s: element count overflows", fn,
                           what);
        j = json_next(d, j);
    }
    t->n_elems = ne;

    /* data_offsets: [BEGIN, END], exact, BEGIN <= END */
    snprintf(what, sizeof what, "tensor '%.*s': data_offsets", SL(t->name));
    if (!json_is(d, of, JSMN_ARRAY) || d->tok[of].size != 2)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, of), "%s: %s: not an array of two integers", fn,
                       what);
    if (json_u64(d, of + 1, &x->begin, what, e) || json_u64(d, of + 2, &x->end, what, e))
        return -1;
    if (x->end < x->begin)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, of), "%s: %s: [%llu, %llu) ends before it begins",
                       fn, what, (unsigned long long)x->begin, (unsigned long long)x->end);

    /* byte size from dtype x shape (sub-byte types must fill whole bytes) */
    di = dtype_get(type);
    if (di->blck > 1 && ne % di->blck)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, sh),
                       "%s: tensor '%.*s': %lld %s elements of %u bits do not fill whole bytes", fn,
                       SL(t->name), (long long)ne, di->name, di->type_size * 8 / di->blck);
    if (dtype_nbytes(type, ne, &nb, &tmp))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, sh), "%s: tensor '%.*s': %s", fn, SL(t->name),
                       tmp.msg);
    if (x->end - x->begin != nb)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, of),
                       "%s: %s: [%llu, %llu) holds %llu bytes, but %s x %lld elements need %llu",
                       fn, what, (unsigned long long)x->begin, (unsigned long long)x->end,
                       (unsigned long long)(x->end - x->begin), dtype_name(type),
                       (long long)ne, (unsigned long long)nb);
    if (x->end > dsize)
        return ERR_OFF(e, ERR_FORMAT, json_off(d, of),
                       "%s: %s: [%llu, %llu) past the end of the data (%llu bytes)", fn, what,
                       (unsigned long long)x->begin, (unsigned long long)x->end,
                       (unsigned long long)dsize);

    t->dtype = type;
    t->stored_dtype = (uint32_t)type;
    t->size = nb;
    t->rel_off = x->begin;
    t->off = 8 + hlen + x->begin;           /* <= file size: checked just above */
    t->data = mf->data + t->off;
    t->file = fi;
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->hidx > y->hidx) - (x->hidx < y->hidx);
}

/*
 * Bytes after the header's JSON object: the header may only be padded with JSON
 * whitespace (spaces, as the Rust writer pads).  The end of the object is found by
 * matching braces outside strings (the JSON parser checks everything else), so that
 * NUL padding, a second object or a stray '}' are reported as what they are, at the
 * offset of the first such byte.  An object that never closes, or one that is not valid
 * JSON up to its closing brace, is left to the parser.
 */
static int check_trailing(const char *fn, const uint8_t *hdr, uint64_t hlen, uint64_t i0,
                          struct err *e)
{
    uint64_t depth = 0, i, j;
    int in_str = 0;

    for (i = i0; i < hlen; i++) {
        uint8_t ch = hdr[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if ((ch == '}' || ch == ']') && --depth == 0) {
            break;
        }
    }
    if (i >= hlen)
        return 0;
    for (j = i + 1; j < hlen && is_ws(hdr[j]); j++)
        ;
    if (j == hlen)
        return 0;
    {   /* Only when what precedes is a valid object; else the parser names the error. */
        struct json_doc d;
        struct err pe = ERR_INIT;
        if (json_parse(&d, (const char *)hdr, (size_t)(i + 1), 8, fn, &pe))
            return 0;
        json_release(&d);
    }
    return ERR_OFF(e, ERR_FORMAT, 8 + j,
                   "%s: %llu trailing byte%s after the header's JSON object (it ends at offset "
                   "%llu; the header, %llu bytes, may only be padded with spaces): first byte "
                   "0x%02x", fn, (unsigned long long)(hlen - j), hlen - j == 1 ? "" : "s",
                   (unsigned long long)(8 + i + 1),
                   (unsigned long long)hlen, hdr[j]);
}

/* Parse and validate m->files[fi]; append its tensors to m in file order. */
static int parse_file(struct st_ctx *c, uint32_t fi, struct err *e)
{
    struct model *m = c->m;
    const struct mfile *mf = &m->files[fi];
    const char *fn = mf->path;
    struct json_doc d;
    struct ent *ents = NULL;
    const uint8_t *hdr;
    uint64_t hlen, dsize, i0, n_ent = 0, pos = 0;
    struct rd r;
    int n_keys, k, seen_meta = 0, rc = -1;

    memset(&d, 0, sizeof d);
    rd_init(&r, mf->data, mf->size, fn);
    if (mf->size < 8)
        return ERR_OFF(e, ERR_FORMAT, 0,
                       "%s: file of %llu bytes is too short for a SafeTensors header (8 bytes)", fn,
                       (unsigned long long)mf->size);
    if (rd_u64(&r, &hlen, "header length", e))
        return -1;
    if (hlen > ST_MAX_HEADER)
        return ERR_OFF(e, ERR_LIMIT, 0, "%s: header length %llu exceeds the limit of %llu bytes",
                       fn, (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    if (hlen > rd_left(&r))
        return ERR_OFF(e, ERR_FORMAT, 0,
                       "%s: header length %llu exceeds the %llu bytes that follow it", fn,
                       (unsigned long long)hlen, (unsigned long long)rd_left(&r));
    if (rd_bytes(&r, hlen, &hdr, "header", e))
        return -1;
    dsize = rd_left(&r);
    for (i0 = 0; i0 < hlen && is_ws(hdr[i0]); i0++)
        ;
    if (i0 == hlen || hdr[i0] != '{')
        return ERR_OFF(e, ERR_FORMAT, 8 + i0, "%s: header is not a JSON object (%s)", fn,
                       i0 == hlen ? "empty" : "does not start with '{'");
    if (check_trailing(fn, hdr, hlen, i0, e))
        return -1;
    if (json_parse(&d, (const char *)hdr, (size_t)hlen, 8, fn, e))
        return -1;
    if (!json_is(&d, 0, JSMN_OBJECT)) {
        ERR_OFF(e, ERR_FORMAT, 8 + i0, "%s: header is not a JSON object", fn);
        goto done;
    }
    n_keys = d.tok[0].size;
    ents = calloc(n_keys ? (size_t)n_keys : 1, sizeof *ents);
    if (!ents) {
        ERR(e, ERR_NOMEM, "%s: out of memory for %d header entries", fn, n_keys);
        goto done;
    }
    k = 1;
    for (int j = 0; j < n_keys; j++, k = json_next(&d, k + 1)) {
        if (json_str_eq(&d, k, "__metadata__")) {
            if (seen_meta++) {
                ERR_OFF(e, ERR_FORMAT, json_off(&d, k), "%s: duplicate '__metadata__'", fn);
                goto done;
            }
            if (parse_meta(c, fi, &d, k + 1, e))
                goto done;
            continue;
        }
        if (parse_entry(c, fi, &d, k, hlen, dsize, &ents[n_ent], e))
            goto done;
        ents[n_ent].hidx = n_ent;
        n_ent++;
    }

    /* The ranges must tile [0, dsize) exactly. */
    qsort(ents, (size_t)n_ent, sizeof *ents, ent_cmp);
    for (uint64_t i = 0; i < n_ent; i++) {
        const struct ent *x = &ents[i];
        if (x->begin > pos) {
            ERR_OFF(e, ERR_FORMAT, x->joff,
                    "%s: tensor '%.*s': data_offsets [%llu, %llu) leave a hole: bytes [%llu, %llu) "
                    "belong to no tensor", fn, SL(x->t.name), (unsigned long long)x->begin,
                    (unsigned long long)x->end, (unsigned long long)pos,
                    (unsigned long long)x->begin);
            goto done;
        }
        if (x->begin < pos) {
            const struct ent *p = &ents[i - 1];   /* i > 0: pos > 0 only after an entry */
            ERR_OFF(e, ERR_FORMAT, x->joff,
                    "%s: tensor '%.*s': data_offsets [%llu, %llu) overlap tensor '%.*s' [%llu, %llu)",
                    fn, SL(x->t.name), (unsigned long long)x->begin, (unsigned long long)x->end,
                    SL(p->t.name), (unsigned long long)p->begin, (unsigned long long)p->end);
            goto done;
        }
        pos = x->end;
    }
    if (pos != dsize) {
        ERR_OFF(e, ERR_FORMAT, 8 + hlen + pos,
                "%s: %llu trailing bytes after the last tensor (data ends at %llu of %llu)", fn,
                (unsigned long long)(dsize - pos), (unsigned long long)pos,
                (unsigned long long)dsize);
        goto done;
    }
    for (uint64_t i = 0; i < n_ent; i++)
        if (tensor_push(c, &ents[i].t, e))
            goto done;
    if (fi == 0)
        m->data_off = 8 + hlen;
    m->header_size += 8 + hlen;
    m->total_size += mf->size;
    rc = 0;
done:
    free(ents);
    json_release(&d);
    return rc;
}

/* 1 when mf looks like a SafeTensors file: N fits and the header starts with '{'. */
static int looks_st(const struct mfile *mf)
{
    uint64_t hlen, i = 8;

    if (mf->size < 9)
        return 0;
    hlen = le64(mf->data);
    if (hlen > mf->size - 8)
        return 0;
    while (i < 8 + hlen && is_ws(mf->data[i]))
        i++;
    return i < 8 + hlen && mf->data[i] == '{';
}

/* 1 when mf looks like JSON text (an index): '{' after optional whitespace, and no NUL
 * among the first 8 bytes (which a truncated SafeTensors length would have). */
static int looks_json(const struct mfile *mf)
{
    uint64_t i = 0;

    for (uint64_t j = 0; j < mf->size && j < 8; j++)
        if (mf->data[j] == 0)
            return 0;
    while (i < mf->size && is_ws(mf->data[i]))
        i++;
    return i < mf->size && mf->data[i] == '{';
}

/* ---- config.json */

struct cfg {
    struct st_ctx         *c;
    const struct json_doc *d;
    const char            *arch;
};

/* Value token of key in obj, or -1 when absent or null. */
static int cfg_get(const struct json_doc *d, int obj, const char *key)
{
    int t = json_get(d, obj, key);
    return t < 0 || json_is_null(d, t) ? -1 : t;
}

static struct model_kv *cfg_push(struct cfg *g, const char *suffix, int tok, struct err *e)
{
    struct model *m = g->c->m;
    struct model_kv *kv = kv_push(g->c, KG_GGUF, e);
    char key[ST_MAX_ARCH + 64];
    int n = snprintf(key, sizeof key, "%s.%s", g->arch, suffix);

    if (!kv || kv_key(m, kv, "", key, (size_t)n, e))
        return NULL;
    kv->off = json_off(g->d, tok);
    return kv;
}

/* Read tok as a UINT32 count; -1 with e naming the key. */
static int cfg_u32_val(struct cfg *g, int tok, const char *hf, uint32_t *out, struct err *e)
{
    char what[96];
    uint64_t v;

    snprintf(what, sizeof what, "'%s'", hf);
    if (json_u64(g->d, tok, &v, what, e))
        return -1;
    if (v > UINT32_MAX)
        return ERR_OFF(e, ERR_FORMAT, json_off(g->d, tok), "%s: '%s': %llu does not fit UINT32",
                       g->d->name, hf, (unsigned long long)v);
    *out = (uint32_t)v;
    return 0;
}

static int cfg_u32(struct cfg *g, int obj, const char *hf, const char *suffix, struct err *e)
{
    int tok = cfg_get(g->d, obj, hf);
    struct model_kv *kv;
    uint32_t v = 0;

    if (tok < 0)
        return 0;
    if (cfg_u32_val(g, tok, hf, &v, e) || !(kv = cfg_push(g, suffix, tok, e)))
        return -1;
    kv->val.type = MV_U32;
    kv->val.v.u = v;
    return 0;
}

static int cfg_f32_tok(struct cfg *g, int tok, const char *hf, const char *suffix, struct err *e)
{
    struct model_kv *kv;
    char what[96];
    double v;

    snprintf(what, sizeof what, "'%s'", hf);
    if (json_f64(g->d, tok, &v, what, e))
        return -1;
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return ERR_OFF(e, ERR_FORMAT, json_off(g->d, tok), "%s: '%s': %g does not fit FLOAT32",
                       g->d->name, hf, v);
    if (!(kv = cfg_push(g, suffix, tok, e)))
        return -1;
    kv->val.type = MV_F32;
    kv->val.v.f = (double)(float)v;   /* exactly widened, as model.h wants */
    return 0;
}

static int cfg_f32(struct cfg *g, int obj, const char *hf, const char *suffix, struct err *e)
{
    int tok = cfg_get(g->d, obj, hf);
    return tok < 0 ? 0 : cfg_f32_tok(g, tok, hf, suffix, e);
}

/* A short string value into buf (NUL-terminated); 0 when absent, -1 when not a string
 * or too long (*why set). */
static int cfg_str(const struct json_doc *d, int tok, char *buf, size_t cap, struct err *e)
{
    struct sbuf b = SBUF_INIT(cap - 1);
    int rc = -1;

    if (!json_is(d, tok, JSMN_STRING))
        return ERR_OFF(e, ERR_FORMAT, json_off(d, tok), "%s: expected a string", d->name);
    if (json_str(d, tok, &b, e) == 0) {
        memcpy(buf, b.p ? b.p : "", b.len);
        buf[b.len] = 0;
        rc = 0;
    }
    sbuf_release(&b);
    return rc;
}

static int arch_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int cfg_derive(struct st_ctx *c, const struct json_doc *d, struct err *e)
{
    static const struct { const char *cls, *type; } classes[] = {
        { "LlamaForCausalLM", "llama" },   { "MistralForCausalLM", "mistral" },
        { "Qwen2ForCausalLM", "qwen2" },   { "Qwen3ForCausalLM", "qwen3" },
    };
    static const struct { const char *hf, *gguf; } archs[] = {
        { "llama", "llama" }, { "mistral", "llama" }, { "qwen2", "qwen2" }, { "qwen3", "qwen3" },
    };
    struct model *m = c->m;
    struct cfg g = { c, d, NULL };
    char type[ST_MAX_ARCH + 1] = "";
    struct err tmp = ERR_INIT;
    struct model_kv *kv;
    int tok, rp, rs, sc, heads;
    const char *hf;

    tok = cfg_get(d, 0, "model_type");
    if (tok >= 0) {
        if (!json_is(d, tok, JSMN_STRING))
            return ERR_OFF(e, ERR_FORMAT, json_off(d, tok), "%s: 'model_type' is not a string",
                           d->name);
        if (cfg_str(d, tok, type, sizeof type, &tmp) || !arch_ok(type)) {
            model__note(m, "%s: model_type is not a plain identifier; no GGUF keys derived",
                        d->name);
            return 0;
        }
    } else if ((tok = cfg_get(d, 0, "architectures")) >= 0 && json_is(d, tok, JSMN_ARRAY) &&
               d->tok[tok].size > 0) {
        for (size_t i = 0; i < sizeof classes / sizeof *classes; i++)
            if (json_str_eq(d, tok + 1, classes[i].cls))
                snprintf(type, sizeof type, "%s", classes[i].type);
    }
    if (!type[0])
        return 0;
    g.arch = type;
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (strcmp(type, archs[i].hf) == 0)
            g.arch = archs[i].gguf;

    kv = kv_push(c, KG_GGUF, e);
    if (!kv || kv_key(m, kv, "general.architecture", "", 0, e) ||
        model__strdup(m, g.arch, strlen(g.arch), &kv->val.v.s, e))
        return -1;
    kv->off = json_off(d, tok);
    kv->val.type = MV_STR;

    if (cfg_u32(&g, 0, "max_position_embeddings", "context_length", e) ||
        cfg_u32(&g, 0, "hidden_size", "embedding_length", e) ||
        cfg_u32(&g, 0, "num_hidden_layers", "block_count", e) ||
        cfg_u32(&g, 0, "intermediate_size", "feed_forward_length", e) ||
        cfg_u32(&g, 0, "num_attention_heads", "attention.head_count", e))
        return -1;
    heads = cfg_get(d, 0, "num_attention_heads");
    if (cfg_get(d, 0, "num_key_value_heads") >= 0) {
        if (cfg_u32(&g, 0, "num_key_value_heads", "attention.head_count_kv", e))
            return -1;
    } else if (heads >= 0) {
        if (cfg_u32(&g, 0, "num_attention_heads", "attention.head_count_kv", e))
            return -1;
    }

    /* rope: transformers 5 rope_parameters first, then the classic keys */
    rp = cfg_get(d, 0, "rope_parameters");
    if (rp >= 0 && !json_is(d, rp, JSMN_OBJECT))
        rp = -1;   /* e.g. per-layer-type dicts are not objects of numbers: kept in hf.config */
    tok = rp >= 0 ? cfg_get(d, rp, "rope_theta") : -1;
    hf = "rope_parameters.rope_theta";
    if (tok < 0) {
        tok = cfg_get(d, 0, "rope_theta");
        hf = "rope_theta";
    }
    if (tok >= 0 && cfg_f32_tok(&g, tok, hf, "rope.freq_base", e))
        return -1;
    if (cfg_f32(&g, 0, "rms_norm_eps", "attention.layer_norm_rms_epsilon", e) ||
        cfg_u32(&g, 0, "head_dim", "attention.key_length", e) ||
        cfg_u32(&g, 0, "head_dim", "attention.value_length", e) ||
        cfg_u32(&g, 0, "vocab_size", "vocab_size", e))
        return -1;

    /* rope scaling: the object that names a rope type */
    sc = -1;
    tok = -1;
    if (rp >= 0 && (tok = cfg_get(d, rp, "rope_type")) >= 0) {
        sc = rp;
    } else if ((rs = cfg_get(d, 0, "rope_scaling")) >= 0 && json_is(d, rs, JSMN_OBJECT)) {
        tok = cfg_get(d, rs, "rope_type");
        if (tok < 0)
            tok = cfg_get(d, rs, "type");
        if (tok >= 0)
            sc = rs;
    }
    if (sc >= 0) {
        char rt[32];
        memset(&tmp, 0, sizeof tmp);
        if (cfg_str(d, tok, rt, sizeof rt, &tmp)) {
            model__note(m, "%s: rope type is not a short string; no rope scaling keys", d->name);
            return 0;
        }
        if (strcmp(rt, "linear") == 0 || strcmp(rt, "yarn") == 0 || strcmp(rt, "longrope") == 0) {
            if (!(kv = cfg_push(&g, "rope.scaling.type", tok, e)) ||
                model__strdup(m, rt, strlen(rt), &kv->val.v.s, e))
                return -1;
            kv->val.type = MV_STR;
            if (cfg_f32(&g, sc, "factor", "rope.scaling.factor", e) ||
                cfg_u32(&g, sc, "original_max_position_embeddings",
                        "rope.scaling.original_context_length", e))
                return -1;
        } else if (strcmp(rt, "default") != 0) {
            model__note(m, "%s: rope type '%s' has no GGUF scaling keys (kept in hf.config)",
                        d->name, rt);
        }
    }
    return 0;
}

/* generation_config.json beside the weights: its text, whole (ST_GENCFG_KEY). */
static int keep_gencfg(struct st_ctx *c, const char *dir, struct err *e)
{
    struct mfile mf;
    struct json_doc d;
    struct stat st;
    struct model_kv *kv;
    char *path = st__path_join(dir, slice_from_cstr("generation_config.json"), e);
    int rc = -1;

    memset(&mf, 0, sizeof mf);
    memset(&d, 0, sizeof d);
    if (!path)
        return -1;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        free(path);
        return 0;
    }
    if (mfile_open(&mf, path, e))
        goto done;
    if (mf.size > ST_MAX_CONFIG) {
        ERR(e, ERR_LIMIT, "%s: %llu bytes is larger than the %llu-byte limit", path,
            (unsigned long long)mf.size, (unsigned long long)ST_MAX_CONFIG);
        goto done;
    }
    if (json_parse(&d, mf.data ? (const char *)mf.data : "", (size_t)mf.size, 0, path, e))
        goto done;
    if (!json_is(&d, 0, JSMN_OBJECT)) {
        ERR_OFF(e, ERR_FORMAT, json_off(&d, 0), "%s: not a JSON object", path);
        goto done;
    }
    kv = kv_push(c, KG_HF, e);
    if (!kv || kv_key(c->m, kv, ST_GENCFG_KEY, "", 0, e) ||
        model__strdup(c->m, mf.data ? (const char *)mf.data : "", (size_t)mf.size,
                      &kv->val.v.s, e))
        goto done;
    kv->val.type = MV_STR;
    rc = 0;
done:
    json_release(&d);
    mfile_close(&mf);
    free(path);
    return rc;
}

static int map_config_json(struct st_ctx *c, const char *dir, struct err *e)
{
    struct model *m = c->m;
    struct mfile mf;
    struct json_doc d;
    struct stat st;
    char *path = st__path_join(dir, slice_from_cstr("config.json"), e);
    int rc = -1, k;

    memset(&mf, 0, sizeof mf);
    memset(&d, 0, sizeof d);
    if (!path)
        return -1;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        free(path);
        return 0;
    }
    if (mfile_open(&mf, path, e))
        goto done;
    if (mf.size > ST_MAX_CONFIG) {
        ERR(e, ERR_LIMIT, "%s: %llu bytes is larger than the %llu-byte limit for config.json",
            path, (unsigned long long)mf.size, (unsigned long long)ST_MAX_CONFIG);
        goto done;
    }
    if (json_parse(&d, mf.data ? (const char *)mf.data : "", (size_t)mf.size, 0, path, e))
        goto done;
    if (!json_is(&d, 0, JSMN_OBJECT)) {
        ERR_OFF(e, ERR_FORMAT, json_off(&d, 0), "%s: not a JSON object", path);
        goto done;
    }
    if (cfg_derive(c, &d, e))
        goto done;
    k = 1;
    for (int j = 0; j < d.tok[0].size; j++, k = json_next(&d, k + 1)) {
        struct model_kv *kv = kv_push(c, KG_HF, e);
        struct slice key;
        if (!kv || tok_slice(m, &d, k, &key, e) || kv_key(m, kv, "hf.config.", key.p, key.n, e))
            goto done;
        kv->off = json_off(&d, k);
        if (model__json_val(m, &d, k + 1, &kv->val, e))
            goto done;
    }
    rc = 0;
done:
    json_release(&d);
    mfile_close(&mf);
    free(path);
    return rc;
}

/* config.json (mapped and kept), then generation_config.json (kept). */
static int map_config(struct st_ctx *c, const char *dir, struct err *e)
{
    return map_config_json(c, dir, e) ? -1 : keep_gencfg(c, dir, e);
}

/* ---- shards */

static int shard_name_ok(struct slice s)
{
    if (s.n == 0 || s.n > 255)
        return 0;
    if (memchr(s.p, '/', s.n) || memchr(s.p, '\\', s.n) || memchr(s.p, 0, s.n))
        return 0;
    for (size_t i = 0; i + 1 < s.n; i++)
        if (s.p[i] == '.' && s.p[i + 1] == '.')
            return 0;
    return 1;
}

/* Binary search for name in a sorted slice array; index or -1. */
static int64_t slice_find(const struct slice *a, uint64_t n, struct slice name)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int cmp = slice_cmp(a[mid], name);
        if (cmp == 0)
            return (int64_t)mid;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Open and parse the n shard files named in names (sorted), in dir. */
static int load_shards(struct st_ctx *c, const char *dir, const struct slice *names, uint64_t n,
                       struct err *e)
{
    struct model *m = c->m;

    m->files = calloc((size_t)n, sizeof *m->files);
    if (!m->files)
        return ERR(e, ERR_NOMEM, "out of memory");
    m->n_files = (uint32_t)n;
    for (uint64_t i = 0; i < n; i++) {
        char *p = st__path_join(dir, names[i], e);
        int rc = !p || mfile_open(&m->files[i], p, e) || parse_file(c, (uint32_t)i, e);
        free(p);
        if (rc)
            return -1;
    }
    return 0;
}

struct wm_ent {
    struct slice name, shard;
    uint64_t     off;    /* offset in the index, for messages */
    uint32_t     file;
};

static int wm_cmp(const void *a, const void *b)
{
    return slice_cmp(((const struct wm_ent *)a)->name, ((const struct wm_ent *)b)->name);
}

static int tord_cmp(const void *a, const void *b, void *ctx)
{
    const struct model *m = ctx;
    return slice_cmp(m->tensors[*(const uint64_t *)a].name, m->tensors[*(const uint64_t *)b].name);
}

/* The weight_map must list exactly the tensors of the shards, each in its own shard. */
static int check_weight_map(struct st_ctx *c, const char *ipath, struct wm_ent *w, uint64_t n,
                            const struct slice *shards, struct err *e)
{
    struct model *m = c->m;
    uint64_t *ord = NULL, nt = m->n_tensors;
    struct slice *names = NULL, *tnames = NULL;
    int rc = -1;

    ord = calloc(nt ? (size_t)nt : 1, sizeof *ord);
    names = calloc((size_t)n, sizeof *names);
    tnames = calloc(nt ? (size_t)nt : 1, sizeof *tnames);
    if (!ord || !names || !tnames) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < nt; i++)
        ord[i] = i;
    qsort_r(ord, (size_t)nt, sizeof *ord, tord_cmp, m);
    for (uint64_t i = 0; i < nt; i++) {
        tnames[i] = m->tensors[ord[i]].name;
        if (i > 0 && slice_eq(tnames[i], tnames[i - 1])) {
            const struct model_tensor *a = &m->tensors[ord[i - 1]], *b = &m->tensors[ord[i]];
            ERR(e, ERR_FORMAT, "%s: tensor '%.*s' appears in two shards: '%s' and '%s'", ipath,
                SL(b->name), m->files[a->file].path, m->files[b->file].path);
            goto done;
        }
    }
    qsort(w, (size_t)n, sizeof *w, wm_cmp);
    for (uint64_t i = 0; i < n; i++) {
        int64_t j;
        names[i] = w[i].name;
        if (i > 0 && slice_eq(w[i].name, w[i - 1].name)) {
            ERR_OFF(e, ERR_FORMAT, w[i].off, "%s: weight_map lists tensor '%.*s' twice", ipath,
                    SL(w[i].name));
            goto done;
        }
        j = slice_find(tnames, nt, w[i].name);
        if (j < 0) {
            ERR_OFF(e, ERR_FORMAT, w[i].off, "%s: weight_map: tensor '%.*s' is missing from shard '%.*s'",
                    ipath, SL(w[i].name), SL(w[i].shard));
            goto done;
        }
        if (m->tensors[ord[j]].file != w[i].file) {
            ERR_OFF(e, ERR_FORMAT, w[i].off,
                    "%s: weight_map: tensor '%.*s' is in shard '%.*s', not in '%.*s'", ipath,
                    SL(w[i].name), SL(shards[m->tensors[ord[j]].file]), SL(w[i].shard));
            goto done;
        }
    }
    for (uint64_t i = 0; i < nt; i++)
        if (slice_find(names, n, tnames[i]) < 0) {
            const struct model_tensor *t = &m->tensors[ord[i]];
            ERR_OFF(e, ERR_FORMAT, t->off, "%s: tensor '%.*s' is not listed in the weight_map of '%s'",
                    m->files[t->file].path, SL(t->name), ipath);
            goto done;
        }
    rc = 0;
done:
    free(ord);
    free(names);
    free(tnames);
    return rc;
}

/* A sharded checkpoint from its index (already mapped as idx); dir holds the shards. */
static int open_index(struct st_ctx *c, const char *dir, const struct mfile *idx, struct err *e)
{
    struct model *m = c->m;
    const char *ip = idx->path;
    struct json_doc d;
    struct wm_ent *w = NULL;
    struct slice *shards = NULL;
    uint64_t n, n_sh = 0;
    int wm, md, k, rc = -1;

    memset(&d, 0, sizeof d);
    if (idx->size > ST_MAX_INDEX)
        return ERR(e, ERR_LIMIT, "%s: index of %llu bytes is larger than the limit of %llu bytes",
                   ip, (unsigned long long)idx->size, (unsigned long long)ST_MAX_INDEX);
    if (json_parse(&d, idx->data ? (const char *)idx->data : "", (size_t)idx->size, 0, ip, e))
        return -1;
    if (!json_is(&d, 0, JSMN_OBJECT) || (wm = json_get(&d, 0, "weight_map")) < 0 ||
        !json_is(&d, wm, JSMN_OBJECT)) {
        ERR_OFF(e, ERR_FORMAT, 0, "%s: not a SafeTensors index (no 'weight_map' object)", ip);
        goto done;
    }
    md = json_get(&d, 0, "metadata");
    if (md >= 0 && !json_is_null(&d, md)) {
        if (!json_is(&d, md, JSMN_OBJECT)) {
            ERR_OFF(e, ERR_FORMAT, json_off(&d, md), "%s: 'metadata' is not an object", ip);
            goto done;
        }
        k = md + 1;
        for (int j = 0; j < d.tok[md].size; j++, k = json_next(&d, k + 1)) {
            struct model_kv *kv = kv_push(c, KG_INDEX, e);
            struct slice key;
            if (!kv || tok_slice(m, &d, k, &key, e) ||
                kv_key(m, kv, "safetensors.index.metadata.", key.p, key.n, e))
                goto done;
            kv->off = json_off(&d, k);
            if (model__json_val(m, &d, k + 1, &kv->val, e))
                goto done;
        }
    }
    n = (uint64_t)d.tok[wm].size;
    if (n == 0) {
        ERR_OFF(e, ERR_FORMAT, json_off(&d, wm), "%s: weight_map is empty", ip);
        goto done;
    }
    w = calloc((size_t)n, sizeof *w);
    shards = calloc((size_t)n, sizeof *shards);
    if (!w || !shards) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    k = wm + 1;
    for (uint64_t i = 0; i < n; i++, k = json_next(&d, k + 1)) {
        w[i].off = json_off(&d, k);
        if (tok_slice(m, &d, k, &w[i].name, e))
            goto done;
        if (!json_is(&d, k + 1, JSMN_STRING)) {
            ERR_OFF(e, ERR_FORMAT, json_off(&d, k + 1),
                    "%s: weight_map: shard of tensor '%.*s' is not a string", ip, SL(w[i].name));
            goto done;
        }
        if (tok_slice(m, &d, k + 1, &w[i].shard, e))
            goto done;
        if (!shard_name_ok(w[i].shard)) {
            ERR_OFF(e, ERR_FORMAT, json_off(&d, k + 1),
                    "%s: weight_map: shard '%.*s' of tensor '%.*s' is not a plain file name", ip,
                    SL(w[i].shard), SL(w[i].name));
            goto done;
        }
        shards[i] = w[i].shard;
    }
    qsort(shards, (size_t)n, sizeof *shards, slice_cmp_v);
    for (uint64_t i = 0; i < n; i++)
        if (n_sh == 0 || !slice_eq(shards[i], shards[n_sh - 1]))
            shards[n_sh++] = shards[i];
    if (n_sh > ST_MAX_SHARDS) {
        ERR(e, ERR_LIMIT, "%s: %llu shards (at most %u supported)", ip, (unsigned long long)n_sh,
            ST_MAX_SHARDS);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++)
        w[i].file = (uint32_t)slice_find(shards, n_sh, w[i].shard);
    if (load_shards(c, dir, shards, n_sh, e) || check_weight_map(c, ip, w, n, shards, e))
        goto done;
    rc = 0;
done:
    free(w);
    free(shards);
    json_release(&d);
    return rc;
}

static int name_cmp_v(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n > k && memcmp(s + n - k, suf, k) == 0;
}

/* A directory: its index, else its *.safetensors files. */
static int open_dir(struct st_ctx *c, const char *dir, struct err *e)
{
    static const char idx_name[] = "model.safetensors.index.json";
    char *ip = st__path_join(dir, slice_from_cstr(idx_name), e);
    char **names = NULL;
    struct slice *sl = NULL;
    size_t n = 0, cap = 0;
    struct stat st;
    struct dirent *de;
    DIR *dh = NULL;
    int rc = -1;

    if (!ip)
        return -1;
    if (stat(ip, &st) == 0) {
        struct mfile idx;
        if (mfile_open(&idx, ip, e) == 0) {
            rc = open_index(c, dir, &idx, e);
            mfile_close(&idx);
        }
        free(ip);
        return rc;
    }
    free(ip);
    dh = opendir(dir);
    if (!dh)
        return ERR_SYS(e, "cannot open directory '%s'", dir);
    while ((errno = 0, de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors"))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **nn;
            if (nc > ST_MAX_SHARDS) {
                ERR(e, ERR_LIMIT, "%s: more than %u *.safetensors files", dir, ST_MAX_SHARDS);
                goto done;
            }
            nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                ERR(e, ERR_NOMEM, "out of memory");
                goto done;
            }
            names = nn;
            cap = nc;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            ERR(e, ERR_NOMEM, "out of memory");
            goto done;
        }
        n++;
    }
    if (errno) {
        ERR_SYS(e, "cannot read directory '%s'", dir);
        goto done;
    }
    if (n == 0) {
        ERR(e, ERR_FORMAT, "%s: no model.safetensors.index.json and no *.safetensors file", dir);
        goto done;
    }
    qsort(names, n, sizeof *names, name_cmp_v);
    sl = calloc(n, sizeof *sl);
    if (!sl) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        sl[i] = slice_from_cstr(names[i]);
    rc = load_shards(c, dir, sl, n, e);
done:
    if (dh)
        closedir(dh);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(sl);
    return rc;
}

/* Common end of every open: shared checks, metadata order, format fields. */
static int finish(struct st_ctx *c, struct err *e)
{
    struct model *m = c->m;

    m->version = 0;
    m->alignment = 1;
    if (model__check_tensors(m, e) || kv_order(c, e))
        return -1;
    return 0;
}

int st_open(struct model *m, const char *path, struct err *e)
{
    struct st_ctx c;
    struct stat st;
    char *dir = NULL;
    int rc = -1;

    memset(&c, 0, sizeof c);
    c.m = m;
    if (model__init(m, MODEL_FMT_SAFETENSORS, path, e))
        goto fail;
    if (stat(path, &st) != 0) {
        ERR_SYS(e, "cannot open '%s'", path);
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        char rev[256];
        int k = st_hf_repo_snapshot(path, &dir, rev, sizeof rev, e);
        if (k < 0)
            goto fail;
        if (k > 0)
            model__note(m, "Hugging Face cache repository: read its snapshot %s", rev);
        if (open_dir(&c, dir ? dir : path, e) || map_config(&c, dir ? dir : path, e))
            goto fail;
    } else {
        struct mfile mf;
        if (mfile_open(&mf, path, e))
            goto fail;
        dir = path_dir(path, e);
        if (!dir) {
            mfile_close(&mf);
            goto fail;
        }
        if (!looks_st(&mf) && looks_json(&mf)) {
            /* A JSON text, not a SafeTensors file: a sharded-checkpoint index. */
            rc = open_index(&c, dir, &mf, e);
            mfile_close(&mf);
            if (rc)
                goto fail;
        } else {
            m->files = calloc(1, sizeof *m->files);
            if (!m->files) {
                mfile_close(&mf);
                ERR(e, ERR_NOMEM, "out of memory");
                goto fail;
            }
            m->files[0] = mf;   /* the model owns the mapping from here */
            m->n_files = 1;
            if (parse_file(&c, 0, e))
                goto fail;
        }
        if (map_config(&c, dir, e))
            goto fail;
    }
    if (finish(&c, e) || st_tokenizer_read(m, dir ? dir : path, e))
        goto fail;
    free(dir);
    free(c.kv_group);
    return 0;
fail:
    free(dir);
    free(c.kv_group);
    model_close(m);
    return -1;
}

int st_open_mem(struct model *m, const void *buf, size_t n, const char *name, struct err *e)
{
    struct st_ctx c;

    memset(&c, 0, sizeof c);
    c.m = m;
    if (model__init_file(m, MODEL_FMT_SAFETENSORS, name, buf ? buf : "", n, e))
        return -1;
    if (parse_file(&c, 0, e) || finish(&c, e))
        goto fail;
    free(c.kv_group);
    return 0;
fail:
    free(c.kv_group);
    model_close(m);
    return -1;
}
