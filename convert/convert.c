/*
 * convert.c - apr-convert: GGUF, SafeTensors and APR, each into the others.
 *
 * Pipeline (one function per step, all driven by convert_run):
 *
 *   model_open(in)                      the one model view; format detected by content
 *   meta_from_model()                   the source metadata as GGUF-style typed keys
 *                                       (+ hf.config.*, safetensors.metadata.*), the
 *                                       "canonical list" (formats/meta.h); from APR:
 *                                       restored exactly from the apr_tools.kv namespace
 *                                       when present, else synthesized from aprender's keys
 *   plan_tensors()                      per tensor: target name, Q/K permutation,
 *                                       target dtype and why (widened, converted)
 *   meta_gguf() / meta_st() / meta_apr() the target's metadata from the canonical list
 *   write (gguf_write/st_write/apr_write with a tensor_data producer) into a staging
 *   directory .apr-convert.tmp.XXXXXX beside the target; --verify re-reads the staged
 *   output; then rename into place and remove the staging directory.
 *
 * Names.  GGUF output uses llama.cpp's names, SafeTensors output Hugging Face names,
 * APR output aprender's convention (names_apr_style: GGUF names for the llama family,
 * HF names for qwen2/qwen3); --names overrides for APR.  Moving a llama-family q/k
 * projection between the GGUF and the HF spelling applies or undoes llama.cpp's row
 * permutation (whole rows move: lossless for quantized rows too).
 *
 * Data.  Bytes are copied unchanged whenever the target holds the type.  Otherwise:
 *   APR    (codes for F32 F16 BF16 Q4_K Q6_K + ints): other ggml types are widened to
 *          F32 (exact dequantization, like aprender's own importer), each one reported;
 *          --lossless stores them byte-exact under extension codes 0xC0 + ggml type id
 *          (convert_apr_ext_code) in a file marked so that neither aprender nor
 *          realizar can misread it (see man/apr.5 "Conversion"):
 *            - the codes are outside aprender's table (it fails with "invalid dtype")
 *              and outside realizar's ggml table (which would read unknown codes as F32);
 *            - the header flag ENCRYPTED (0x0004) is set, which realizar refuses;
 *            - the metadata key "apr_tools.dtype_ext" = "ggml+192" tells our reader
 *              (apr_read.c) that the flag means "extension codes", not encryption.
 *   SafeTensors: quantized types are widened to F32.
 *   GGUF   APR-native Q4/Q8 and SafeTensors-only floats (F8, F64...) become F32, and
 *          so do F16/BF16 tensors of one dimension and every "*_norm.weight"
 *          (llama.cpp's CPU backend multiplies by norm weights only in F32; its own
 *          converter makes the same choice).  Each such tensor is listed in the GGUF key
 *          "apr_tools.narrowed" (ARRAY[STRING] of "<gguf name>=<F16|BF16>", written
 *          last); converting that GGUF to SafeTensors or APR (--dtype keep) narrows the
 *          listed F32 tensors back when every element survives F32 -> type -> F32 bit for
 *          bit (else they stay F32, with a note), so HF -> GGUF -> HF is byte-identical.
 * --dtype converts the 2-D+ weights (1-D tensors, i.e. norms and biases, stay float as
 * llama.cpp keeps them; integer tensors are never touched); block types need rows that
 * are whole blocks, else the tensor falls back (K-quants -> Q8_0, else F16) and the plan
 * says so.  Embeddings and the output head are converted like other weights.
 *
 * Metadata.  APR output carries aprender's typed fields and custom keys (apr.md 3-4),
 * the provenance keys source_file, source_sha256 (of the source file; for a directory
 * or an index: of model.safetensors.index.json when present, else of the shards
 * concatenated in name order) and converter, and the namespace "apr_tools.kv": every
 * key of the canonical list with its exact type, as an array of entries
 *   {"k": key, "t": "UINT32"|...|"NULL"|"OBJECT"|"ARRAY", "e": element type (arrays),
 *    "v": value | "ref": another top-level key holding the same array}
 * (OBJECT values and arrays of arrays/objects hold entries without "k"; non-finite
 * floats are the strings "nan", "inf", "-inf").  Reading it back restores every GGUF
 * key (and config.json entry) with its exact type, so GGUF->APR->GGUF and
 * HF->APR->HF keep all metadata.
 *
 * GGUF keys.  A GGUF file's own keys (gguf_origin) are written back as they are.  From
 * any other origin meta_gguf adds what llama.cpp expects, identically on every route
 * (HF->GGUF == HF->APR->GGUF byte for byte): general.name, {arch}.rope.dimension_count
 * (llama family: the head size), bos/eos ids, general.file_type (file_type: llama_ftype
 * of the most common 2-D+ type by elements), and without a tokenizer
 * tokenizer.ggml.model = "none" plus {arch}.vocab_size (llama.cpp refuses a file
 * without the key; "none" gives placeholder tokens; st_write_tokenizer writes no
 * tokenizer.json for it).
 */
#include "convert.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "../common/json.h"
#include "../common/rd.h"
#include "../common/progress.h"
#include "../common/sbuf.h"
#include "../common/sha256.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../formats/apr/apr.h"
#include "../formats/gguf/gguf.h"
#include "../formats/model.h"
#include "../formats/meta.h"
#include "../formats/model_json.h"
#include "../formats/names.h"
#include "../formats/safetensors/st.h"
#include "../common/banned.h"

#define NARROW_KEY  "apr_tools.narrowed"
#define EXT_KEY     "apr_tools.dtype_ext"
#define EXT_VALUE   "ggml+192"
#define EXT_BASE    192
#define CHUNK       ((size_t)16 << 20)     /* bytes streamed per write */
#define CONV_ELEMS  ((int64_t)1 << 22)     /* f32 elements per conversion batch (16 MiB) */
#define DEFAULT_SHARD 5000000000ULL        /* transformers' "5GB" */

enum tgt { TGT_APR = 1, TGT_GGUF, TGT_ST };

int convert_apr_ext_code(int dtype)
{
    const struct dtype_info *d = dtype_get(dtype);
    if (!d || d->ggml_id < 0 || d->apr_code >= 0 || d->ggml_id + EXT_BASE > 255)
        return -1;
    return EXT_BASE + d->ggml_id;
}

/* ---- small helpers */

static const char *base_name(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    while (n > 0 && p[n - 1] != '/')
        n--;
    return p + n;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

/* Drop the pages of a read-only file mapping behind the reader (RSS stays bounded).
 * Only ever called on model data, which is always a MAP_PRIVATE read-only file map. */
static void drop_pages(const void *p, size_t n)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p, b = a + n;
    a = (a + pg - 1) & ~(pg - 1);
    b &= ~(pg - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- the state of one conversion */

struct tplan {
    const struct model_tensor *src;
    char        name[NAMES_MAX];
    int         dtype;         /* target dtype */
    int         perm;          /* 0, or 1 = HF->GGUF rows, 2 = GGUF->HF rows */
    int64_t     n_head;        /* heads for the permutation */
    int         widened;       /* dtype changed because the target cannot hold it */
    int         converted;     /* dtype changed (widened or --dtype) */
    int         tied_copy;     /* APR lm_head.weight synthesized from the embedding */
    int         f32_norm;      /* GGUF: kept F32 or widened to F32 for llama.cpp (1-D, norm) */
    int         orig_dtype;    /* F16/BF16 this F32 tensor stands for (apr_tools.narrowed), or 0 */
    int         narrowed;      /* dtype restored to orig_dtype (exactly) */
    char        note[160];
};

struct cv {
    const struct convert_opts *o;
    enum tgt          tgt;
    const char       *in, *out;
    struct model      src;
    struct model      out_m;      /* the output view (arena, kv, tensors) */
    uint8_t          *kv_own;     /* per out_m.kv: 1 when the value's arrays are ours */
    struct meta       ck;         /* the canonical list (formats/meta.h) */
    struct tplan     *tp;
    uint64_t          n_tp;
    int               dtype_req;  /* --dtype, or -1 for keep */
    int               use_ext;    /* APR output holds extension codes */
    int               drop_tied;  /* APR source: lm_head is a tied copy, dropped */
    int               tied_apr;   /* APR output: lm_head synthesized */
    char              sha_hex[SHA256_HEX_LEN + 1];
    int               n_threads;
    struct progress   prog;
    float            *fbuf;       /* conversion scratch */
    uint8_t          *bbuf, *bbuf2;
    size_t            bcap, bcap2;
    char             *stage;      /* staging directory */
    char             *stage_out;  /* the output inside it */
    int               verified;
    uint64_t          n_widened;
    uint64_t          n_narrowed;
    int              *fds;        /* per source file, opened on demand for pread (-1) */
    /* APR: the source SHA-256 is computed on a second thread while the data is written;
     * source_sha256 holds a placeholder of the same length until apr_write's meta_final */
    pthread_t         sha_tid;
    int               sha_state;  /* 0 not started, 1 thread running, 2 done */
    int               sha_rc;
    struct err        sha_err;
    char              sha_new[SHA256_HEX_LEN + 1];
    atomic_int        sha_stop;
};

static int cancelled(const struct cv *c, struct err *e)
{
    if (c->o->cancel && *c->o->cancel)
        return ERR(e, ERR_IO, "interrupted");
    return 0;
}

static void note(const struct cv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const struct cv *c, const char *fmt, ...)
{
    va_list ap;
    if (c->o->quiet || !c->o->diag)
        return;
    fputs(CONVERT_NAME ": ", c->o->diag);
    va_start(ap, fmt);
    vfprintf(c->o->diag, fmt, ap);
    va_end(ap);
    fputc('\n', c->o->diag);
}

/* Arena copy of a C string as a slice (keys of the output view). */
static int kstr(struct cv *c, const char *s, struct slice *out, struct err *e)
{
    return model__strdup(&c->out_m, s, strlen(s), out, e);
}

/*
 * Whether the canonical list is a GGUF file's own keys: a GGUF source, or an APR file
 * whose apr_tools.kv came from one (it has no hf.config.* entries).  GGUF output then
 * reproduces those keys as they are; otherwise (SafeTensors, an APR file made from
 * one, an aprender APR file) it derives the keys llama.cpp wants the same way on
 * every route (meta_gguf), so HF -> GGUF and HF -> APR -> GGUF give the same file.
 */
static int gguf_origin(const struct cv *c)
{
    if (c->src.format == MODEL_FMT_GGUF)
        return 1;
    if (c->src.format != MODEL_FMT_APR || !model_kv_find(&c->src, META_NS_KEY))
        return 0;
    for (uint64_t i = 0; i < c->ck.n; i++)
        if (slice_starts_with(c->ck.kv[i].key, "hf.config."))
            return 0;
    return 1;
}

/* ---- tensor plan */

static int is_block(int dt)
{
    const struct dtype_info *d = dtype_get(dt);
    return d && d->blck > 1;
}

static int holds(const struct cv *c, int dt)
{
    const struct dtype_info *d = dtype_get(dt);
    if (!d)
        return 0;
    switch (c->tgt) {
    case TGT_APR:  return d->apr_code >= 0 || (c->o->lossless && convert_apr_ext_code(dt) >= 0);
    case TGT_GGUF: return d->ggml_id >= 0;
    case TGT_ST:   return d->st_name != NULL;
    }
    return 0;
}

static const char *tgt_name(enum tgt t)
{
    return t == TGT_APR ? "APR" : t == TGT_GGUF ? "GGUF" : "SafeTensors";
}

static int want_gguf_names(const struct cv *c)
{
    if (c->tgt == TGT_GGUF)
        return 1;
    if (c->tgt == TGT_ST)
        return 0;
    if (c->o->names)
        return strcmp(c->o->names, "gguf") == 0;
    return strcmp(names_apr_style(c->ck.arch[0] ? c->ck.arch : NULL), "gguf") == 0;
}

static int is_embedding(struct slice n)
{
    return slice_eq_cstr(n, "token_embd.weight") || slice_eq_cstr(n, "model.embed_tokens.weight");
}

static int is_head(const char *n)
{
    return strcmp(n, "output.weight") == 0 || strcmp(n, "lm_head.weight") == 0;
}

static int plan_dtype(struct cv *c, struct tplan *p)
{
    const struct model_tensor *t = p->src;
    const struct dtype_info *sd = dtype_get(t->dtype);
    int want = t->dtype;
    int64_t row = t->n_dims > 0 ? t->shape[t->n_dims - 1] : 1;

    if (c->dtype_req >= 0 && sd->kind != DTK_INT && sd->kind != DTK_COMPLEX) {
        if (t->n_dims < 2) {
            /* norms, biases, 1-D: stay float (F32 unless already a plain float the
             * target holds) */
            want = sd->kind == DTK_FLOAT && holds(c, t->dtype) ? t->dtype : DT_F32;
            if (c->dtype_req == DT_F32)
                want = DT_F32;
        } else {
            want = c->dtype_req;
            if (is_block(want) && row % (int64_t)dtype_get(want)->blck) {
                int fb = dtype_get(want)->blck == 256 && row % 32 == 0 && holds(c, DT_Q8_0)
                             ? DT_Q8_0 : DT_F16;
                snprintf(p->note, sizeof p->note, "rows of %lld not a multiple of %u: %s",
                         (long long)row, dtype_get(want)->blck, dtype_name(fb));
                want = fb;
            }
        }
    }
    if (!holds(c, want)) {
        if (sd->kind == DTK_INT || sd->kind == DTK_COMPLEX || !dq_get(want) ||
            !dq_get(want)->to_f32)
            return -2;
        if (c->tgt == TGT_APR && convert_apr_ext_code(want) >= 0)
            snprintf(p->note, sizeof p->note, "widened: APR has no %s code (--lossless keeps "
                     "the bytes)", dtype_name(want));
        else
            snprintf(p->note, sizeof p->note, "widened: %s cannot hold %s", tgt_name(c->tgt),
                     dtype_name(want));
        want = DT_F32;
        p->widened = 1;
    }
    /* llama.cpp multiplies by norm weights only in F32 (ggml_compute_forward_mul: "only
     * f32 src1 supported"); its converter keeps n_dims <= 1 and *_norm.weight in F32 */
    if (c->tgt == TGT_GGUF && (want == DT_F16 || want == DT_BF16) &&
        (t->n_dims <= 1 || ends_with(p->name, "_norm.weight"))) {
        p->f32_norm = 1;
        if (t->dtype == DT_F16 || t->dtype == DT_BF16) {
            snprintf(p->note, sizeof p->note, "widened: llama.cpp needs norms and 1-D "
                     "tensors in F32; %s records %s", NARROW_KEY, dtype_name(t->dtype));
            p->widened = 1;
            p->orig_dtype = t->dtype;
        } else {
            snprintf(p->note, sizeof p->note, "kept F32: llama.cpp needs norms and 1-D "
                     "tensors in F32");
        }
        want = DT_F32;
    }
    p->dtype = want;
    p->converted = want != t->dtype;
    return 0;
}

/* The F16/BF16 type that the source's apr_tools.narrowed records for tensor name, or 0. */
static int narrow_lookup(const struct cv *c, struct slice name)
{
    const struct model_kv *kv = meta_find(&c->ck, NARROW_KEY);

    if (!kv || kv->val.type != MV_ARR || !kv->val.v.arr.strs)
        return 0;
    for (uint64_t i = 0; i < kv->val.v.arr.n; i++) {
        struct slice s = kv->val.v.arr.strs[i];
        size_t eq = s.n;
        char tn[16];
        int dt;
        while (eq > 0 && s.p[eq - 1] != '=')
            eq--;
        if (eq == 0 || eq - 1 != name.n || memcmp(s.p, name.p, name.n) != 0 ||
            s.n - eq >= sizeof tn)
            continue;
        snprintf(tn, sizeof tn, "%.*s", (int)(s.n - eq), s.p + eq);
        dt = dtype_from_name(tn);
        return dt == DT_F16 || dt == DT_BF16 ? dt : 0;
    }
    return 0;
}

/* Whether every element of F32 tensor t survives F32 -> dt -> F32 bit for bit. */
static int narrow_exact(const struct cv *c, const struct model_tensor *t, int dt, int *ok,
                        struct err *e)
{
    int64_t chunk = t->n_elems < CONV_ELEMS ? t->n_elems : CONV_ELEMS;
    float *a, *b;
    uint8_t *h;
    int rc = 0;

    *ok = 1;
    if (chunk < 1)
        return 0;
    a = malloc((size_t)chunk * sizeof *a);
    b = malloc((size_t)chunk * sizeof *b);
    h = malloc((size_t)chunk * 2);
    if (!a || !b || !h)
        rc = ERR(e, ERR_NOMEM, "out of memory");
    for (int64_t i0 = 0; rc == 0 && *ok && i0 < t->n_elems; i0 += chunk) {
        int64_t n = t->n_elems - i0 < chunk ? t->n_elems - i0 : chunk;
        if (dq_to_f32(DT_F32, t->data + (size_t)i0 * 4, (uint64_t)n * 4, a, n, 1, e) ||
            dq_quantize_mt(dt, a, h, 1, n, c->n_threads, e) ||
            dq_to_f32(dt, h, (uint64_t)n * 2, b, n, 1, e))
            rc = -1;
        else if (memcmp(a, b, (size_t)n * sizeof *a) != 0)
            *ok = 0;
    }
    free(a);
    free(b);
    free(h);
    drop_pages(t->data, t->size);
    return rc;
}

/* SafeTensors or APR output (--dtype keep) of a tensor that apr_tools.narrowed lists:
 * back to the recorded type when that is exact, else F32 with a note. */
static int plan_narrow(struct cv *c, struct tplan *p, struct err *e)
{
    int dt = p->orig_dtype, ok;

    if (!dt || c->tgt == TGT_GGUF || c->dtype_req >= 0 || p->src->dtype != DT_F32 ||
        p->dtype != DT_F32 || !holds(c, dt))
        return 0;
    if (narrow_exact(c, p->src, dt, &ok, e)) {
        err_prefix(e, "%s: tensor '%s'", c->in, p->name);
        return -1;
    }
    if (!ok) {
        snprintf(p->note, sizeof p->note, "kept F32: not every value survives F32 -> %s -> "
                 "F32 (%s)", dtype_name(dt), NARROW_KEY);
        return 0;
    }
    snprintf(p->note, sizeof p->note, "narrowed: back to %s (%s)", dtype_name(dt), NARROW_KEY);
    p->dtype = dt;
    p->converted = 1;
    p->narrowed = 1;
    c->n_narrowed++;
    return 0;
}

/* APR output records the source tensor order ("apr_tools.tensor_order", output names);
 * an APR source that has it gets its tensors back in that order (GGUF and SafeTensors
 * writers keep the model's order, so round trips are byte-identical). */
static const struct model_val *g_order;

static int64_t order_pos(struct slice name)
{
    for (uint64_t i = 0; g_order && i < g_order->v.arr.n; i++)
        if (slice_eq(g_order->v.arr.strs[i], name))
            return (int64_t)i;
    return INT64_MAX;
}

static int tp_order_cmp(const void *a, const void *b)
{
    const struct tplan *x = a, *y = b;
    int64_t px = x->tied_copy ? INT64_MAX : order_pos(x->src->name);
    int64_t py = y->tied_copy ? INT64_MAX : order_pos(y->src->name);
    if (px != py)
        return px < py ? -1 : 1;
    return x->src < y->src ? -1 : x->src > y->src;
}

static void plan_order(struct cv *c)
{
    const struct model_kv *kv = c->src.format == MODEL_FMT_APR
                                    ? model_kv_find(&c->src, "apr_tools.tensor_order") : NULL;
    if (!kv || kv->val.type != MV_ARR || !kv->val.v.arr.strs)
        return;
    g_order = &kv->val;
    qsort(c->tp, c->n_tp, sizeof *c->tp, tp_order_cmp);
    g_order = NULL;
}

static int plan_tensors(struct cv *c, struct err *e)
{
    int to_gguf = want_gguf_names(c);
    const char *arch = c->ck.arch[0] ? c->ck.arch : NULL;
    uint64_t n_head = 0, n_kv = 0, have_head = 0, emb = UINT64_MAX;

    meta_aget_u64(&c->ck, "attention.head_count", &n_head);
    if (meta_aget_u64(&c->ck, "attention.head_count_kv", &n_kv))
        n_kv = n_head;
    c->tp = calloc(c->src.n_tensors + 1, sizeof *c->tp);
    if (!c->tp)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < c->src.n_tensors; i++) {
        const struct model_tensor *t = &c->src.tensors[i];
        struct tplan *p = &c->tp[c->n_tp];
        int src_gguf = names_is_gguf_style(t->name), r;
        enum names_perm pk;

        if (c->drop_tied && c->tgt != TGT_APR && slice_eq_cstr(t->name, "lm_head.weight")) {
            note(c, "'lm_head.weight' is aprender's copy of the tied embedding: not written");
            continue;
        }
        p->src = t;
        if (t->name.n >= 256)
            return ERR(e, ERR_LIMIT, "%s: tensor name of %zu bytes is too long", c->in, t->name.n);
        r = to_gguf ? (src_gguf ? -1 : names_to_gguf(arch, t->name, p->name, sizeof p->name))
                    : names_to_hf(arch, t->name, p->name, sizeof p->name);
        if (r != 0)
            snprintf(p->name, sizeof p->name, "%.*s", (int)t->name.n, t->name.p);
        pk = names_qk_permute_kind(arch, t->name);
        if (pk != NAMES_PERM_NONE && src_gguf != to_gguf) {
            p->perm = to_gguf ? 1 : 2;
            p->n_head = (int64_t)(pk == NAMES_PERM_Q ? n_head : n_kv);
            if (p->n_head < 1 || names_perm_check(t->shape[0], p->n_head, e) ||
                (t->n_dims < 2 && is_block(t->dtype)))
                return ERR(e, ERR_FORMAT, "%s: tensor '%s': cannot permute %lld rows with %lld "
                           "heads", c->in, p->name, (long long)t->shape[0],
                           (long long)p->n_head);
        }
        if (t->dtype == DT_F32)
            p->orig_dtype = narrow_lookup(c, t->name);
        r = plan_dtype(c, p);
        if (r == -2)
            return ERR(e, ERR_UNSUPPORTED, "%s: tensor '%s': %s cannot hold %s", c->in, p->name,
                       tgt_name(c->tgt), dtype_name(t->dtype));
        if (plan_narrow(c, p, e))
            return -1;
        if (p->widened)
            c->n_widened++;
        if (is_head(p->name))
            have_head = 1;
        if (is_embedding(t->name))
            emb = c->n_tp;
        c->n_tp++;
    }
    /* aprender's tied embeddings: an lm_head.weight copy of the embedding */
    if (c->tgt == TGT_APR && !have_head && emb != UINT64_MAX) {
        struct tplan *p = &c->tp[c->n_tp++];
        *p = c->tp[emb];
        snprintf(p->name, sizeof p->name, "lm_head.weight");
        snprintf(p->note, sizeof p->note, "tied: copy of the embedding (aprender's rule)");
        p->tied_copy = 1;
        c->tied_apr = 1;
    }
    plan_order(c);
    for (uint64_t i = 0; i < c->n_tp; i++)
        for (uint64_t j = i + 1; j < c->n_tp; j++)
            if (strcmp(c->tp[i].name, c->tp[j].name) == 0)
                return ERR(e, ERR_FORMAT, "%s: two tensors map to '%s'", c->in, c->tp[i].name);
    return 0;
}

/* ---- the output view */

static int out_push(struct cv *c, struct slice key, const struct model_val *v, int own,
                    uint64_t *cap, struct err *e)
{
    struct model *m = &c->out_m;
    if (m->n_kv == *cap) {
        uint64_t nc = *cap ? *cap * 2 : 64;
        struct model_kv *k = realloc(m->kv, nc * sizeof *k);
        uint8_t *o = k ? realloc(c->kv_own, nc) : NULL;
        if (!k || !o) {
            if (k)
                m->kv = k;
            return ERR(e, ERR_NOMEM, "out of memory");
        }
        m->kv = k;
        c->kv_own = o;
        *cap = nc;
    }
    memset(&m->kv[m->n_kv], 0, sizeof *m->kv);
    m->kv[m->n_kv].key = key;
    m->kv[m->n_kv].val = *v;
    c->kv_own[m->n_kv++] = (uint8_t)own;
    return 0;
}

static int out_find(const struct cv *c, const char *key)
{
    for (uint64_t i = 0; i < c->out_m.n_kv; i++)
        if (slice_eq_cstr(c->out_m.kv[i].key, key))
            return (int)i;
    return -1;
}

static int out_tensors(struct cv *c, struct err *e)
{
    struct model *m = &c->out_m;

    m->tensors = calloc(c->n_tp + 1, sizeof *m->tensors);
    if (!m->tensors)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < c->n_tp; i++) {
        const struct tplan *p = &c->tp[i];
        struct model_tensor *t = &m->tensors[i];
        *t = *p->src;
        t->name.p = p->name;
        t->name.n = strlen(p->name);
        t->dtype = p->dtype;
        if (dtype_nbytes(p->dtype, t->n_elems, &t->size, e))
            return -1;
        if (!t->data)
            t->data = (const uint8_t *)"";
    }
    m->n_tensors = c->n_tp;
    return 0;
}

/* llama_ftype of the dominant weight type (gguf-quant.md 2.9). */
static uint32_t file_type(const struct cv *c)
{
    static const struct { int dt; uint32_t ft; } map[] = {
        { DT_F32, 0 }, { DT_F16, 1 }, { DT_Q4_0, 2 }, { DT_Q4_1, 3 }, { DT_Q8_0, 7 },
        { DT_Q5_0, 8 }, { DT_Q5_1, 9 }, { DT_Q2_K, 10 }, { DT_Q3_K, 12 }, { DT_Q4_K, 15 },
        { DT_Q5_K, 17 }, { DT_Q6_K, 18 }, { DT_IQ4_NL, 25 }, { DT_IQ4_XS, 30 }, { DT_BF16, 32 },
    };
    uint64_t best = 0, cnt[DT_COUNT] = { 0 };
    int dt = DT_F32;
    for (uint64_t i = 0; i < c->n_tp; i++)
        if (c->tp[i].src->n_dims >= 2)
            cnt[c->tp[i].dtype] += (uint64_t)c->tp[i].src->n_elems;
    for (int t = 0; t < DT_COUNT; t++)
        if (cnt[t] > best) {
            best = cnt[t];
            dt = t;
        }
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (map[i].dt == dt)
            return map[i].ft;
    return 1024;   /* "guessed" */
}

static int any_quant(const struct cv *c)
{
    for (uint64_t i = 0; i < c->n_tp; i++)
        if (dtype_get(c->tp[i].dtype)->kind == DTK_QUANT)
            return 1;
    return 0;
}

/* After a dtype change the GGUF keys that describe the types follow (in the canonical
 * list, so APR's namespace and GGUF output agree). */
static int ck_fixup(struct cv *c, struct err *e)
{
    int any_conv = 0;
    /* (the exact F32 <-> F16/BF16 moves of apr_tools.narrowed tensors are not a change) */
    for (uint64_t k = 0; k < c->n_tp; k++)
        any_conv |= c->tp[k].converted && !c->tp[k].f32_norm && !c->tp[k].narrowed;
    if (!any_conv)
        return 0;
    for (uint64_t i = 0; i < c->ck.n; i++)
        if (slice_eq_cstr(c->ck.kv[i].key, "general.file_type") && c->ck.kv[i].val.type == MV_U32)
            c->ck.kv[i].val.v.u = file_type(c);
    if (any_quant(c) && !meta_find(&c->ck, "general.quantization_version") &&
        meta_find(&c->ck, "general.file_type") &&
        meta_add_u(&c->ck, "general.quantization_version", MV_U32, 2, e))
        return -1;
    return 0;
}

static int out_add_u(struct cv *c, const char *key, enum model_vtype t, uint64_t u,
                     uint64_t *cap, struct err *e)
{
    struct model_val v = { .type = t };
    struct slice k;
    v.v.u = u;
    return kstr(c, key, &k, e) || out_push(c, k, &v, 0, cap, e);
}

/* The attention head size: hf.config.head_dim, {arch}.attention.key_length, else
 * embedding_length / head_count.  0, or -1 when none is known. */
static int head_dim(const struct cv *c, uint64_t *u)
{
    uint64_t heads = 0, hidden = 0;

    if ((meta_get_u64(&c->ck, "hf.config.head_dim", u) == 0 || meta_aget_u64(&c->ck, "attention.key_length", u) == 0) &&
        *u > 0 && *u <= UINT32_MAX)
        return 0;
    if (meta_aget_u64(&c->ck, "attention.head_count", &heads) || meta_aget_u64(&c->ck, "embedding_length", &hidden) ||
        heads == 0 || hidden / heads == 0 || hidden / heads > UINT32_MAX)
        return -1;
    *u = hidden / heads;
    return 0;
}

/* apr_tools.narrowed: "<name>=<F16|BF16>" for every F32 output tensor that stands for
 * an F16/BF16 one (widened for llama.cpp here, or listed by the source).  Last key. */
static int meta_gguf_narrowed(struct cv *c, uint64_t *cap, struct err *e)
{
    struct model_val v = { .type = MV_ARR };
    struct slice k;
    uint64_t n = 0;

    for (uint64_t i = 0; i < c->n_tp; i++)
        n += c->tp[i].dtype == DT_F32 && c->tp[i].orig_dtype;
    if (!n)
        return 0;
    v.v.arr.elem = MV_STR;
    v.v.arr.strs = calloc(n, sizeof *v.v.arr.strs);
    if (!v.v.arr.strs)
        return ERR(e, ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < c->n_tp; i++) {
        const struct tplan *p = &c->tp[i];
        char ent[NAMES_MAX + 16];
        if (p->dtype != DT_F32 || !p->orig_dtype)
            continue;
        snprintf(ent, sizeof ent, "%s=%s", p->name, dtype_name(p->orig_dtype));
        if (kstr(c, ent, &v.v.arr.strs[v.v.arr.n++], e)) {
            free(v.v.arr.strs);
            return -1;
        }
    }
    if (kstr(c, NARROW_KEY, &k, e) || out_push(c, k, &v, 1, cap, e)) {
        free(v.v.arr.strs);
        return -1;
    }
    return 0;
}

static int meta_gguf(struct cv *c, struct err *e)
{
    uint64_t cap = 0, u;
    int exact = gguf_origin(c);
    int any_conv = 0, i;

    for (uint64_t k = 0; k < c->n_tp; k++)
        any_conv |= c->tp[k].converted;
    for (uint64_t k = 0; k < c->ck.n; k++) {
        const struct model_kv *kv = &c->ck.kv[k];
        if (slice_starts_with(kv->key, "hf.config.") || slice_starts_with(kv->key, "safetensors.") ||
            slice_eq_cstr(kv->key, NARROW_KEY))
            continue;
        if (kv->val.type >= MV_GGUF_COUNT ||
            (kv->val.type == MV_ARR && (kv->val.v.arr.items || kv->val.v.arr.elem >= MV_GGUF_COUNT)))
            continue;
        if (out_push(c, kv->key, &kv->val, 0, &cap, e))
            return -1;
    }
    if (out_find(c, "general.architecture") < 0)
        return ERR(e, ERR_UNSUPPORTED, "%s: no architecture known (general.architecture): "
                   "GGUF needs one", c->in);
    if (!exact) {
        const struct model_kv *hf;
        char key[160];
        if (out_find(c, "general.name") < 0 &&
            (hf = meta_find(&c->ck, "hf.config._name_or_path")) && hf->val.type == MV_STR) {
            struct model_val v = hf->val;
            struct slice k;
            if (kstr(c, "general.name", &k, e) || out_push(c, k, &v, 0, &cap, e))
                return -1;
        }
        /* llama family: the rotary dimensions are the head size */
        if (names_arch_permutes(c->ck.arch) &&
            out_find(c, meta_akey(&c->ck, "rope.dimension_count", key, sizeof key)) < 0 &&
            head_dim(c, &u) == 0 && out_add_u(c, key, MV_U32, u, &cap, e))
            return -1;
        if (out_find(c, "tokenizer.ggml.tokens") >= 0) {
            if (meta_get_u64(&c->ck, "hf.config.bos_token_id", &u) == 0 && u <= UINT32_MAX &&
                out_find(c, "tokenizer.ggml.bos_token_id") < 0 &&
                out_add_u(c, "tokenizer.ggml.bos_token_id", MV_U32, u, &cap, e))
                return -1;
            if (meta_get_u64(&c->ck, "hf.config.eos_token_id", &u) == 0 && u <= UINT32_MAX &&
                out_find(c, "tokenizer.ggml.eos_token_id") < 0 &&
                out_add_u(c, "tokenizer.ggml.eos_token_id", MV_U32, u, &cap, e))
                return -1;
        }
    }
    i = out_find(c, "general.file_type");
    if (i < 0 && !exact && out_add_u(c, "general.file_type", MV_U32, file_type(c), &cap, e))
        return -1;
    if (any_quant(c) && out_find(c, "general.quantization_version") < 0 &&
        out_add_u(c, "general.quantization_version", MV_U32, 2, &cap, e))
        return -1;
    if (!exact && out_find(c, "tokenizer.ggml.model") < 0) {
        /* no tokenizer: llama.cpp loads "none" (LLAMA_VOCAB_TYPE_NONE) with
         * {arch}.vocab_size placeholder tokens, and refuses a file without the key */
        struct model_val v = { .type = MV_STR };
        struct slice k;
        char key[160];
        v.v.s = slice_from_cstr("none");
        if (kstr(c, "tokenizer.ggml.model", &k, e) || out_push(c, k, &v, 0, &cap, e))
            return -1;
        if (out_find(c, meta_akey(&c->ck, "vocab_size", key, sizeof key)) < 0) {
            for (uint64_t t = 0; t < c->n_tp; t++) {
                const struct model_tensor *emb = c->tp[t].src;
                if (!is_embedding(emb->name) || emb->n_dims != 2 ||
                    (uint64_t)emb->shape[0] > UINT32_MAX)
                    continue;
                if (out_add_u(c, key, MV_U32, (uint64_t)emb->shape[0], &cap, e))
                    return -1;
                break;
            }
        }
    }
    (void)any_conv;
    return meta_gguf_narrowed(c, &cap, e);
}

/* config.json for a model that has none (GGUF or aprender APR source). */
static int synth_config(struct cv *c, uint64_t *cap, struct err *e)
{
    static const struct { const char *hf, *gguf; int is_f; } hyper[] = {
        { "hidden_size",             "embedding_length",                 0 },
        { "intermediate_size",       "feed_forward_length",              0 },
        { "max_position_embeddings", "context_length",                   0 },
        { "num_attention_heads",     "attention.head_count",             0 },
        { "num_hidden_layers",       "block_count",                      0 },
        { "num_key_value_heads",     "attention.head_count_kv",          0 },
        { "rms_norm_eps",            "attention.layer_norm_rms_epsilon", 1 },
        { "rope_theta",              "rope.freq_base",                   1 },
        { "vocab_size",              "vocab_size",                       0 },
    };
    struct sbuf b = SBUF_INIT(1 << 20);
    struct json_w w;
    struct json_doc d;
    struct model_kv *kv = NULL;
    uint64_t n = 0, u, heads = 0, hidden = 0, tok_n = 0;
    double f;
    int rc = -1, tied = 1, bf16 = 0, f16 = 0;
    const char *cls;
    const struct model_kv *toks = meta_find(&c->ck, "tokenizer.ggml.tokens");

    if (toks && toks->val.type == MV_ARR)
        tok_n = toks->val.v.arr.n;
    for (uint64_t i = 0; i < c->n_tp; i++) {
        if (is_head(c->tp[i].name))
            tied = 0;
        bf16 |= c->tp[i].dtype == DT_BF16;
        f16 |= c->tp[i].dtype == DT_F16;
    }
    cls = strcmp(c->ck.arch, "qwen2") == 0 ? "Qwen2ForCausalLM"
        : strcmp(c->ck.arch, "qwen3") == 0 ? "Qwen3ForCausalLM"
        : strcmp(c->ck.arch, "mistral") == 0 ? "MistralForCausalLM" : "LlamaForCausalLM";
    json_w_init(&w, &b, 0);
    json_w_obj(&w);
    json_w_key(&w, "architectures");
    json_w_arr(&w);
    json_w_str(&w, cls);
    json_w_arr_end(&w);
    if (strcmp(c->ck.arch, "qwen2") == 0) {
        json_w_key(&w, "attention_bias");
        json_w_bool(&w, 1);
    }
    if (meta_get_u64(&c->ck, "tokenizer.ggml.bos_token_id", &u) == 0) {
        json_w_key(&w, "bos_token_id");
        json_w_u64(&w, u);
    }
    if (meta_get_u64(&c->ck, "tokenizer.ggml.eos_token_id", &u) == 0) {
        json_w_key(&w, "eos_token_id");
        json_w_u64(&w, u);
    }
    meta_aget_u64(&c->ck, "attention.head_count", &heads);
    meta_aget_u64(&c->ck, "embedding_length", &hidden);
    if (meta_aget_u64(&c->ck, "attention.key_length", &u) == 0 || meta_aget_u64(&c->ck, "rope.dimension_count", &u) == 0 ||
        (heads && (u = hidden / heads, 1))) {
        json_w_key(&w, "head_dim");
        json_w_u64(&w, u);
    }
    json_w_key(&w, "hidden_act");
    json_w_str(&w, "silu");
    for (size_t i = 0; i < sizeof hyper / sizeof *hyper; i++) {
        if (hyper[i].is_f ? meta_aget_f64(&c->ck, hyper[i].gguf, &f) : meta_aget_u64(&c->ck, hyper[i].gguf, &u)) {
            if (strcmp(hyper[i].hf, "vocab_size") == 0 && tok_n)
                u = tok_n;
            else if (strcmp(hyper[i].hf, "num_key_value_heads") == 0 && heads)
                u = heads;
            else if (strcmp(hyper[i].hf, "vocab_size") == 0) {
                for (uint64_t k = 0; k < c->n_tp; k++)
                    if (is_embedding(c->tp[k].src->name))
                        u = (uint64_t)c->tp[k].src->shape[0];
            } else
                continue;
        }
        if (strcmp(hyper[i].hf, "model_type") == 0)
            continue;
        if (strcmp(hyper[i].hf, "num_hidden_layers") == 0) {
            json_w_key(&w, "model_type");
            json_w_str(&w, c->ck.arch);
        }
        json_w_key(&w, hyper[i].hf);
        if (hyper[i].is_f)
            json_w_f32(&w, (float)f);
        else
            json_w_u64(&w, u);
    }
    json_w_key(&w, "tie_word_embeddings");
    json_w_bool(&w, tied);
    json_w_key(&w, "torch_dtype");
    json_w_str(&w, bf16 ? "bfloat16" : f16 ? "float16" : "float32");
    json_w_obj_end(&w);
    if (sbuf_check(&b, "config.json", e))
        goto done;
    if (json_parse(&d, b.p, b.len, 0, "config.json", e))
        goto done;
    if (model__json_obj(&c->out_m, &d, 0, &kv, &n, 0, e) == 0) {
        rc = 0;
        for (uint64_t i = 0; i < n && rc == 0; i++) {
            char key[200];
            struct slice k;
            snprintf(key, sizeof key, "hf.config.%.*s", (int)kv[i].key.n, kv[i].key.p);
            rc = kstr(c, key, &k, e) || out_push(c, k, &kv[i].val, 1, cap, e) ? -1 : 0;
            if (rc == 0)
                kv[i].val.type = MV_NULL;   /* moved */
        }
    }
    for (uint64_t i = 0; kv && i < n; i++)
        model__val_free(&kv[i].val);
    free(kv);
    json_release(&d);
done:
    sbuf_release(&b);
    return rc;
}

static int meta_st(struct cv *c, struct err *e)
{
    uint64_t cap = 0;
    int have_cfg = 0, have_meta = 0;

    for (uint64_t k = 0; k < c->ck.n; k++) {
        const struct model_kv *kv = &c->ck.kv[k];
        if (slice_starts_with(kv->key, "safetensors.metadata.") && kv->val.type == MV_STR) {
            have_meta = 1;
            if (out_push(c, kv->key, &kv->val, 0, &cap, e))
                return -1;
        }
    }
    if (!have_meta) {
        struct model_val v = { .type = MV_STR };
        struct slice k;
        v.v.s = slice_from_cstr("pt");
        if (kstr(c, "safetensors.metadata.format", &k, e) || out_push(c, k, &v, 0, &cap, e))
            return -1;
    }
    for (uint64_t k = 0; k < c->ck.n; k++) {
        const struct model_kv *kv = &c->ck.kv[k];
        if (slice_starts_with(kv->key, "hf.config.")) {
            have_cfg = 1;
            if (out_push(c, kv->key, &kv->val, 0, &cap, e))
                return -1;
        }
    }
    if (!have_cfg && synth_config(c, &cap, e))
        return -1;
    return 0;
}

static const char *hf_class(const char *arch)
{
    static const struct { const char *a, *cls; } map[] = {
        { "qwen2", "Qwen2ForCausalLM" }, { "qwen2.5", "Qwen2ForCausalLM" },
        { "qwen", "Qwen2ForCausalLM" }, { "qwen3", "Qwen3ForCausalLM" },
        { "llama", "LlamaForCausalLM" }, { "mistral", "MistralForCausalLM" },
        { "phi", "PhiForCausalLM" }, { "phi3", "Phi3ForCausalLM" },
        { "gemma", "GemmaForCausalLM" }, { "gemma2", "Gemma2ForCausalLM" },
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i].a, arch) == 0)
            return map[i].cls;
    return NULL;
}

static void w_kv_str(struct json_w *w, const char *key, const struct cv *c, const char *ck_key,
                     int null_if_absent)
{
    struct slice s;
    if (meta_get_str(&c->ck, ck_key, &s) == 0) {
        json_w_key(w, key);
        json_w_str_n(w, s.p, s.n);
    } else if (null_if_absent) {
        json_w_key(w, key);
        json_w_null(w);
    }
}

static void w_kv_ck(struct json_w *w, const char *key, const struct cv *c, const char *ck_key)
{
    const struct model_kv *kv = meta_find(&c->ck, ck_key);
    if (!kv)
        return;
    json_w_key(w, key);
    if (kv->val.type == MV_ARR)
        meta_json_val(w, &kv->val);
    else
        meta_json_val(w, &kv->val);
}

static int tensor_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tplan *const *)a)[0]->name, ((const struct tplan *const *)b)[0]->name);
}

static int meta_apr(struct cv *c, struct err *e)
{
    struct sbuf b = SBUF_INIT(UINT32_MAX);
    struct json_w w;
    struct json_doc d;
    struct model_kv *kv = NULL;
    const struct tplan **ord = NULL;
    uint64_t n = 0, u, params = 0, bytes = 0, cap = 0, heads = 0, hidden = 0, tok_n = 0;
    double f;
    int rc = -1, qwen = strncmp(c->ck.arch, "qwen", 4) == 0;
    const char *cls = hf_class(c->ck.arch);
    const struct model_kv *toks = meta_find(&c->ck, "tokenizer.ggml.tokens");
    const char *fmt = c->src.format == MODEL_FMT_GGUF ? "gguf"
                    : c->src.format == MODEL_FMT_APR ? "apr" : "safetensors";
    char capcls[80];

    if (toks && toks->val.type == MV_ARR && toks->val.v.arr.strs)
        tok_n = toks->val.v.arr.n;
    else
        toks = NULL;
    for (uint64_t i = 0; i < c->n_tp; i++) {
        params += (uint64_t)c->out_m.tensors[i].n_elems;
        bytes += c->out_m.tensors[i].size;
    }
    if (!cls) {
        size_t k = 0;
        struct slice hc;
        const struct model_kv *arr = meta_find(&c->ck, "hf.config.architectures");
        if (arr && arr->val.type == MV_ARR && arr->val.v.arr.strs && arr->val.v.arr.n) {
            hc = arr->val.v.arr.strs[0];
            snprintf(capcls, sizeof capcls, "%.*s", (int)(hc.n < 70 ? hc.n : 70), hc.p);
        } else {
            snprintf(capcls, sizeof capcls, "%sForCausalLM", c->ck.arch[0] ? c->ck.arch : "Unknown");
            if (capcls[0] >= 'a' && capcls[0] <= 'z')
                capcls[0] = (char)(capcls[0] - 'a' + 'A');
        }
        (void)k;
        cls = capcls;
    }
    json_w_init(&w, &b, 0);
    json_w_obj(&w);
    /* aprender's typed fields, in AprV2Metadata order */
    json_w_key(&w, "model_type");
    json_w_str(&w, c->ck.arch);
    json_w_key(&w, "name");
    json_w_str(&w, c->ck.arch);
    w_kv_str(&w, "description", c, "general.description", 0);
    w_kv_str(&w, "author", c, "general.author", 0);
    w_kv_str(&w, "license", c, "general.license", 1);
    json_w_key(&w, "data_source");
    json_w_null(&w);
    json_w_key(&w, "data_license");
    json_w_null(&w);
    json_w_key(&w, "version");
    json_w_str(&w, "1.0.0");
    json_w_key(&w, "source");
    json_w_str(&w, base_name(c->in));
    json_w_key(&w, "original_format");
    json_w_str(&w, fmt);
    if (c->o->timestamp || getenv("SOURCE_DATE_EPOCH")) {
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        time_t t = sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
        struct tm tm;
        char ts[40];
        gmtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_w_key(&w, "created_at");
        json_w_str(&w, ts);
    }
    json_w_key(&w, "total_size");
    json_w_u64(&w, bytes);
    json_w_key(&w, "param_count");
    json_w_u64(&w, params);
    w_kv_str(&w, "chat_template", c, "tokenizer.chat_template", 0);
    json_w_key(&w, "architecture");
    json_w_str(&w, c->ck.arch);
    json_w_key(&w, "hf_architecture");
    json_w_str(&w, cls);
    json_w_key(&w, "hf_model_type");
    json_w_str(&w, c->ck.arch);
    meta_aget_u64(&c->ck, "attention.head_count", &heads);
    meta_aget_u64(&c->ck, "embedding_length", &hidden);
    for (size_t i = 0; i < meta_apr_out_n; i++) {
        const struct meta_apr_field *hf = &meta_apr_out[i];
        if (hf->kind == MAK_ROPE_TYPE) {
            json_w_key(&w, "rope_type");
            json_w_u64(&w, qwen ? 2 : 0);
            continue;
        }
        if (hf->kind == MAK_HEAD_DIM) {
            if (meta_aget_u64(&c->ck, "attention.key_length", &u) && meta_aget_u64(&c->ck, "rope.dimension_count", &u) &&
                meta_get_u64(&c->ck, "hf.config.head_dim", &u)) {
                if (!heads || !hidden)
                    continue;
                u = hidden / heads;
            }
            json_w_key(&w, "head_dim");
            json_w_u64(&w, u);
            continue;
        }
        if (hf->kind == MAK_F32) {
            if (meta_aget_f64(&c->ck, hf->gguf, &f))
                continue;
            json_w_key(&w, hf->apr);
            json_w_f32(&w, (float)f);
        } else {
            if (meta_aget_u64(&c->ck, hf->gguf, &u)) {
                if (strcmp(hf->apr, "vocab_size") == 0 && tok_n)
                    u = tok_n;
                else if (strcmp(hf->apr, "num_kv_heads") == 0 && heads)
                    u = heads;
                else
                    continue;
            }
            json_w_key(&w, hf->apr);
            json_w_u64(&w, u);
        }
    }
    /* custom keys */
    ord = calloc(c->n_tp + 1, sizeof *ord);
    if (!ord) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < c->n_tp; i++)
        ord[i] = &c->tp[i];
    qsort(ord, c->n_tp, sizeof *ord, tensor_cmp);
    json_w_key(&w, "apr_tools.tensor_order");
    json_w_arr(&w);
    for (uint64_t i = 0; i < c->n_tp; i++)
        if (!c->tp[i].tied_copy)
            json_w_str(&w, c->tp[i].name);
    json_w_arr_end(&w);
    json_w_key(&w, "tensor_shapes");
    json_w_obj(&w);
    for (uint64_t i = 0; i < c->n_tp; i++) {
        json_w_key(&w, ord[i]->name);
        json_w_arr(&w);
        for (int k = 0; k < ord[i]->src->n_dims; k++)
            json_w_u64(&w, (uint64_t)ord[i]->src->shape[k]);
        json_w_arr_end(&w);
    }
    json_w_obj_end(&w);
    if (toks) {
        const struct model_kv *sc = meta_find(&c->ck, "tokenizer.ggml.scores");
        struct slice tm;
        json_w_key(&w, "tokenizer.vocabulary");
        meta_json_val(&w, &toks->val);
        json_w_key(&w, "tokenizer.vocab_size");
        json_w_u64(&w, tok_n);
        if (meta_get_str(&c->ck, "tokenizer.ggml.model", &tm) == 0) {
            json_w_key(&w, "tokenizer.model");
            json_w_str_n(&w, tm.p, tm.n);
            json_w_key(&w, "tokenizer.model_type");
            json_w_str(&w, slice_eq_cstr(tm, "gpt2") ? "bpe" : slice_eq_cstr(tm, "llama") ? "spm"
                                                            : "unknown");
        }
        w_kv_ck(&w, "tokenizer.bos_token_id", c, "tokenizer.ggml.bos_token_id");
        w_kv_ck(&w, "tokenizer.eos_token_id", c, "tokenizer.ggml.eos_token_id");
        w_kv_ck(&w, "tokenizer.unknown_token_id", c, "tokenizer.ggml.unknown_token_id");
        w_kv_ck(&w, "tokenizer.padding_token_id", c, "tokenizer.ggml.padding_token_id");
        w_kv_str(&w, "tokenizer.pre_type", c, "tokenizer.ggml.pre", 0);
        w_kv_ck(&w, "tokenizer.merges", c, "tokenizer.ggml.merges");
        w_kv_ck(&w, "tokenizer.token_type", c, "tokenizer.ggml.token_type");
        if (sc && sc->val.type == MV_ARR && meta_arr_all_finite(&sc->val))
            w_kv_ck(&w, "tokenizer.scores", c, "tokenizer.ggml.scores");
        w_kv_ck(&w, "tokenizer.add_bos_token", c, "tokenizer.ggml.add_bos_token");
        w_kv_ck(&w, "tokenizer.add_eos_token", c, "tokenizer.ggml.add_eos_token");
        w_kv_str(&w, "tokenizer.chat_template", c, "tokenizer.chat_template", 0);
    }
    if (c->tied_apr) {
        json_w_key(&w, "tied_embeddings");
        json_w_bool(&w, 1);
    }
    json_w_key(&w, "source_file");
    json_w_str(&w, base_name(c->in));
    json_w_key(&w, "source_sha256");
    json_w_str(&w, c->sha_hex);
    json_w_key(&w, "converter");
    json_w_str(&w, CONVERT_NAME " " APR_TOOLS_VERSION);
    if (c->use_ext) {
        json_w_key(&w, EXT_KEY);
        json_w_str(&w, EXT_VALUE);
    }
    /* the typed namespace */
    json_w_key(&w, META_NS_KEY);
    json_w_arr(&w);
    for (uint64_t i = 0; i < c->ck.n; i++) {
        const struct model_kv *k = &c->ck.kv[i];
        const char *ref = NULL;
        if (slice_eq_cstr(k->key, NARROW_KEY))
            continue;   /* about the source's tensors; GGUF output writes its own */
        if (toks && k->val.type == MV_ARR) {
            if (slice_eq_cstr(k->key, "tokenizer.ggml.tokens"))
                ref = "tokenizer.vocabulary";
            else if (slice_eq_cstr(k->key, "tokenizer.ggml.merges") && k->val.v.arr.strs)
                ref = "tokenizer.merges";
            else if (slice_eq_cstr(k->key, "tokenizer.ggml.token_type") && k->val.v.arr.raw)
                ref = "tokenizer.token_type";
            else if (slice_eq_cstr(k->key, "tokenizer.ggml.scores") && meta_arr_all_finite(&k->val))
                ref = "tokenizer.scores";
        }
        meta_ns_encode(&w, &k->key, &k->val, ref);
    }
    json_w_arr_end(&w);
    json_w_obj_end(&w);
    if (sbuf_check(&b, "APR metadata", e))
        goto done;
    if (json_parse(&d, b.p, b.len, 0, "APR metadata", e))
        goto done;
    if (model__json_obj(&c->out_m, &d, 0, &kv, &n, 0, e) == 0) {
        rc = 0;
        for (uint64_t i = 0; i < n && rc == 0; i++) {
            rc = out_push(c, kv[i].key, &kv[i].val, 1, &cap, e);
            if (rc == 0)
                kv[i].val.type = MV_NULL;
        }
    }
    for (uint64_t i = 0; kv && i < n; i++)
        model__val_free(&kv[i].val);
    free(kv);
    json_release(&d);
done:
    free(ord);
    sbuf_release(&b);
    return rc;
}

/* ---- producing tensor data */

typedef int (*sink_fn)(void *out, const void *p, size_t n, struct err *e);
/* n bytes at p that are also [off, off+n) of fd: the writer may copy file to file. */
typedef int (*copy_fn)(void *out, int fd, uint64_t off, const void *p, size_t n,
                       struct err *e);

static int grow(uint8_t **b, size_t *cap, size_t n, struct err *e)
{
    if (n <= *cap)
        return 0;
    free(*b);
    *b = malloc(n);
    *cap = *b ? n : 0;
    return *b ? 0 : ERR(e, ERR_NOMEM, "out of memory for a %zu-byte buffer", n);
}

/* Source row r of p (after the permutation, when there is one). */
static int64_t src_row(const struct tplan *p, int64_t r)
{
    return p->perm ? names_perm_row(r, p->src->shape[0], p->n_head, p->perm == 1) : r;
}

/* Gather outer rows [r0, r0+n) of p's source (permuted) into a contiguous buffer. */
static const uint8_t *gather(struct cv *c, const struct tplan *p, int64_t r0, int64_t n,
                             size_t row_bytes, struct err *e)
{
    const uint8_t *s = p->src->data;
    if (!p->perm)
        return s + (size_t)r0 * row_bytes;
    if (grow(&c->bbuf2, &c->bcap2, (size_t)n * row_bytes, e))
        return NULL;
    for (int64_t r = 0; r < n; r++)
        memcpy(c->bbuf2 + (size_t)r * row_bytes, s + (size_t)src_row(p, r0 + r) * row_bytes,
               row_bytes);
    return c->bbuf2;
}

#define RD_CHUNK ((size_t)4 << 20)

/* A descriptor on the file holding t, or -1 (then the mapping is used). */
static int src_fd(struct cv *c, const struct model_tensor *t)
{
    const char *path;
    if (t->file >= c->src.n_files || !c->src.files[t->file].mapped)
        return -1;
    if (!c->fds) {
        c->fds = malloc(c->src.n_files * sizeof *c->fds);
        if (!c->fds)
            return -1;
        for (uint32_t i = 0; i < c->src.n_files; i++)
            c->fds[i] = -2;
    }
    if (c->fds[t->file] == -2) {
        path = c->src.files[t->file].path;
        c->fds[t->file] = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (c->fds[t->file] >= 0)
            posix_fadvise(c->fds[t->file], 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    return c->fds[t->file];
}

static int produce(struct cv *c, const struct tplan *p, sink_fn put, copy_fn cp, void *out,
                   struct err *e)
{
    const struct model_tensor *t = p->src;
    int64_t rows = t->n_dims >= 1 ? t->shape[0] : 1;
    size_t row_bytes;

    if (t->size == 0)
        return 0;
    if (t->n_dims <= 1 && !p->perm)
        rows = 1;                     /* 1-D: one "row"; chunked below */
    row_bytes = (size_t)(t->size / (uint64_t)rows);
    if (!p->converted && !p->perm) {
        /* Unchanged bytes: file to file where the writer can (cp), else pread() into
         * one reused buffer (faster than faulting the mapping in page by page inside
         * write(), and no RSS growth) */
        int fd = src_fd(c, t);
        if (fd >= 0 && cp) {
            /* The writer has the kernel copy the bytes (copy_file_range) and reads the
             * mapping at most for a CRC: drop those pages behind it */
            for (uint64_t off = 0; off < t->size; off += CHUNK) {
                size_t n = t->size - off > CHUNK ? CHUNK : (size_t)(t->size - off);
                if (cancelled(c, e) || cp(out, fd, t->off + off, t->data + off, n, e))
                    return -1;
                drop_pages(t->data + off, n);
                progress_add(&c->prog, n);
            }
            return 0;
        }
        if (fd >= 0 && grow(&c->bbuf, &c->bcap, RD_CHUNK, e) == 0) {
            for (uint64_t off = 0; off < t->size;) {
                size_t n = t->size - off > RD_CHUNK ? RD_CHUNK : (size_t)(t->size - off);
                ssize_t k = pread(fd, c->bbuf, n, (off_t)(t->off + off));
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0)
                    return ERR_SYS(e, "cannot read %s", c->src.files[t->file].path);
                if (cancelled(c, e) || put(out, c->bbuf, (size_t)k, e))
                    return -1;
                off += (uint64_t)k;
                progress_add(&c->prog, (uint64_t)k);
            }
            return 0;
        }
        err_clear(e);
        for (uint64_t off = 0; off < t->size; off += CHUNK) {
            size_t n = t->size - off > CHUNK ? CHUNK : (size_t)(t->size - off);
            if (cancelled(c, e) || put(out, t->data + off, n, e))
                return -1;
            drop_pages(t->data + off, n);
            progress_add(&c->prog, n);
        }
        return 0;
    }
    if (!p->converted) {
        int64_t batch = (int64_t)(CHUNK / row_bytes);
        if (batch < 1)
            batch = 1;
        for (int64_t r = 0; r < rows; r += batch) {
            int64_t n = rows - r < batch ? rows - r : batch;
            const uint8_t *g = gather(c, p, r, n, row_bytes, e);
            if (!g || cancelled(c, e) || put(out, g, (size_t)n * row_bytes, e))
                return -1;
            progress_add(&c->prog, (uint64_t)n * row_bytes);
        }
        drop_pages(t->data, t->size);
        return 0;
    }
    /* dtype change: dequantize a batch of rows to f32, quantize to the target */
    {
        const struct dtype_info *sd = dtype_get(t->dtype), *dd = dtype_get(p->dtype);
        int64_t row_elems = t->n_elems / rows, per_row, batch, lcm = 256;
        if (t->n_dims <= 1 && !p->perm) {
            /* 1-D: chunks of whole blocks of both types */
            int64_t chunk = CONV_ELEMS;
            uint64_t so, sn, dn;
            for (int64_t i0 = 0; i0 < t->n_elems; i0 += chunk) {
                int64_t n = t->n_elems - i0 < chunk ? t->n_elems - i0 : chunk;
                if (dtype_nbytes(t->dtype, i0, &so, e) || dtype_nbytes(t->dtype, n, &sn, e) ||
                    dtype_nbytes(p->dtype, n, &dn, e) ||
                    grow(&c->bbuf, &c->bcap, (size_t)dn, e))
                    return -1;
                if (dq_to_f32(t->dtype, t->data + so, sn, c->fbuf, n, c->n_threads, e) ||
                    dq_quantize_mt(p->dtype, c->fbuf, c->bbuf, 1, n, c->n_threads, e) ||
                    cancelled(c, e) || put(out, c->bbuf, (size_t)dn, e))
                    return -1;
                progress_add(&c->prog, sn);
            }
            drop_pages(t->data, t->size);
            return 0;
        }
        (void)sd;
        (void)lcm;
        per_row = t->shape[t->n_dims - 1];
        batch = CONV_ELEMS / (row_elems ? row_elems : 1);
        if (batch < 1)
            batch = 1;
        if (row_elems > CONV_ELEMS) {
            float *nb = realloc(c->fbuf, (size_t)row_elems * sizeof *nb);
            if (!nb)
                return ERR(e, ERR_NOMEM, "out of memory");
            c->fbuf = nb;
        }
        for (int64_t r = 0; r < rows; r += batch) {
            int64_t n = rows - r < batch ? rows - r : batch, ne = n * row_elems;
            uint64_t dn;
            const uint8_t *g = gather(c, p, r, n, row_bytes, e);
            if (!g || dtype_nbytes(p->dtype, ne, &dn, e) || grow(&c->bbuf, &c->bcap, (size_t)dn, e))
                return -1;
            if (dq_to_f32(t->dtype, g, (uint64_t)n * row_bytes, c->fbuf, ne, c->n_threads, e) ||
                dq_quantize_mt(p->dtype, c->fbuf, c->bbuf, ne / per_row, per_row, c->n_threads, e) ||
                cancelled(c, e) || put(out, c->bbuf, (size_t)dn, e))
                return -1;
            progress_add(&c->prog, (uint64_t)n * row_bytes);
        }
        (void)dd;
        drop_pages(t->data, t->size);
        return 0;
    }
}

static int put_gguf(void *o, const void *p, size_t n, struct err *e)
{
    return gguf_out_write(o, p, n, e);
}

static int put_apr(void *o, const void *p, size_t n, struct err *e)
{
    return apr_out_write(o, p, n, e);
}

static int put_st(void *o, const void *p, size_t n, struct err *e)
{
    return st_out_write(o, p, n, e);
}

static int copy_apr(void *o, int fd, uint64_t off, const void *p, size_t n, struct err *e)
{
    return apr_out_copy(o, fd, off, p, n, e);
}

static int copy_gguf(void *o, int fd, uint64_t off, const void *p, size_t n, struct err *e)
{
    return gguf_out_copy(o, fd, off, p, n, e);
}

static int td_gguf(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                   struct err *e)
{
    struct cv *c = ctx;
    (void)m;
    if (produce(c, &c->tp[i], put_gguf, copy_gguf, out, e)) {
        err_prefix(e, "tensor '%s'", c->tp[i].name);
        return -1;
    }
    return 0;
}

static int td_apr(void *ctx, const struct model *m, uint64_t i, struct apr_out *out,
                  struct err *e)
{
    struct cv *c = ctx;
    (void)m;
    if (produce(c, &c->tp[i], put_apr, copy_apr, out, e)) {
        err_prefix(e, "tensor '%s'", c->tp[i].name);
        return -1;
    }
    return 0;
}

static int td_st(void *ctx, const struct model *m, uint64_t i, struct st_out *out, struct err *e)
{
    struct cv *c = ctx;
    (void)m;
    if (produce(c, &c->tp[i], put_st, NULL, out, e)) {
        err_prefix(e, "tensor '%s'", c->tp[i].name);
        return -1;
    }
    return 0;
}

/* ---- verify: re-read the staged output and compare with the source */

/* Relative RMS error allowed for a conversion to dt (quantization noise). */
static double tolerance(int dt)
{
    switch (dt) {
    case DT_F32: return 0;
    case DT_F16: return 1e-3;
    case DT_BF16: return 8e-3;
    case DT_Q8_0: return 1.5e-2;
    case DT_Q6_K: return 3e-2;
    case DT_Q5_K: case DT_Q5_0: case DT_Q5_1: return 7e-2;
    default: return 0.15;
    }
}

static int verify_tensor(struct cv *c, const struct tplan *p, const struct model_tensor *o,
                         struct err *e)
{
    const struct model_tensor *t = p->src;

    if (o->n_dims != t->n_dims || memcmp(o->shape, t->shape, sizeof o->shape) != 0 ||
        o->dtype != p->dtype)
        return ERR(e, ERR_MISMATCH, "dtype or shape differs");
    if (!p->converted) {
        /* bytes: each output row against its source row (permutation included) */
        int64_t rows = p->perm ? t->shape[0] : 1;
        size_t rb = (size_t)(t->size / (uint64_t)rows);
        for (int64_t r = 0; r < rows; r++) {
            if (memcmp(o->data + (size_t)r * rb, t->data + (size_t)src_row(p, r) * rb, rb) != 0)
                return ERR(e, ERR_MISMATCH, "row %lld differs from the source", (long long)r);
        }
        drop_pages(t->data, t->size);
        drop_pages(o->data, o->size);
        return 0;
    }
    {
        /* values: dequantize both, row batch by row batch */
        int64_t rows = t->n_dims >= 1 && p->perm ? t->shape[0] : 1, row_elems, batch;
        size_t srb, orb;
        double se = 0, ss = 0;
        float *a = NULL, *b = NULL;
        int rc = 0;
        if (t->n_dims >= 2)
            rows = t->shape[0];
        row_elems = t->n_elems / rows;
        srb = (size_t)(t->size / (uint64_t)rows);
        orb = (size_t)(o->size / (uint64_t)rows);
        batch = CONV_ELEMS / (row_elems ? row_elems : 1);
        if (batch < 1)
            batch = 1;
        if (batch > rows)
            batch = rows;
        a = malloc((size_t)(batch * row_elems) * sizeof *a + 4);
        b = malloc((size_t)(batch * row_elems) * sizeof *b + 4);
        if (!a || !b)
            rc = ERR(e, ERR_NOMEM, "out of memory");
        for (int64_t r = 0; rc == 0 && r < rows; r += batch) {
            int64_t n = rows - r < batch ? rows - r : batch, ne = n * row_elems;
            const uint8_t *g = gather(c, p, r, n, srb, e);
            if (!g || dq_to_f32(t->dtype, g, (uint64_t)n * srb, a, ne, c->n_threads, e) ||
                dq_to_f32(o->dtype, o->data + (size_t)r * orb, (uint64_t)n * orb, b, ne,
                          c->n_threads, e)) {
                rc = -1;
                break;
            }
            for (int64_t i = 0; i < ne; i++) {
                if ((p->widened || p->narrowed) && memcmp(&a[i], &b[i], 4) != 0 &&
                    !(isnan(a[i]) && isnan(b[i]))) {
                    rc = ERR(e, ERR_MISMATCH, "element %lld: %g %s to %g",
                             (long long)(r * row_elems + i), (double)a[i],
                             p->narrowed ? "narrowed" : "widened", (double)b[i]);
                    break;
                }
                if (isfinite(a[i]) && isfinite(b[i])) {
                    se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
                    ss += (double)a[i] * a[i];
                }
            }
        }
        free(a);
        free(b);
        drop_pages(t->data, t->size);
        drop_pages(o->data, o->size);
        if (rc)
            return -1;
        if (ss > 0 && sqrt(se / ss) > tolerance(p->dtype))
            return ERR(e, ERR_MISMATCH, "relative RMS error %.3g over the %s tolerance %.3g",
                       sqrt(se / ss), dtype_name(p->dtype), tolerance(p->dtype));
        return 0;
    }
}

static int verify(struct cv *c, const char *path, struct err *e)
{
    struct model m;
    int rc = 0;

    if (model_open(&m, path, e)) {
        err_prefix(e, "verify");
        return -1;
    }
    for (uint64_t i = 0; rc == 0 && i < c->n_tp; i++) {
        const struct model_tensor *o = model_tensor_find(&m, c->tp[i].name);
        if (!o)
            rc = ERR(e, ERR_MISMATCH, "verify: tensor '%s' is missing from the output",
                     c->tp[i].name);
        else if (verify_tensor(c, &c->tp[i], o, e)) {
            err_prefix(e, "verify: tensor '%s'", c->tp[i].name);
            rc = -1;
        }
    }
    if (rc == 0 && m.n_tensors != c->n_tp)
        rc = ERR(e, ERR_MISMATCH, "verify: output has %llu tensors, expected %llu",
                 (unsigned long long)m.n_tensors, (unsigned long long)c->n_tp);
    model_close(&m);
    if (rc == 0)
        c->verified = 1;
    return rc;
}

/* ---- provenance: SHA-256 of the source, on a second thread (sha_start, sha_join) */

static int sha_file(struct cv *c, struct sha256 *h, const char *path, uint8_t *buf, size_t cap,
                    struct err *e)
{
    struct mfile mf;
    struct err me = ERR_INIT;
    int fd;

    /* Over a mapping of its own (no copy into a buffer), pages dropped behind it */
    if (mfile_open(&mf, path, &me) == 0) {
        mfile_advise_seq(&mf, 0, mf.size);
        for (uint64_t off = 0; off < mf.size; off += CHUNK) {
            size_t n = mf.size - off > CHUNK ? CHUNK : (size_t)(mf.size - off);
            if (atomic_load(&c->sha_stop)) {
                mfile_close(&mf);
                return ERR(e, ERR_IO, "interrupted");
            }
            sha256_update(h, mf.data + off, n);
            drop_pages(mf.data + off, n);
        }
        mfile_close(&mf);
        return 0;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ERR_SYS(e, "cannot open '%s'", path);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (;;) {
        ssize_t k = read(fd, buf, cap);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            ERR_SYS(e, "cannot read '%s'", path);
            close(fd);
            return -1;
        }
        if (k == 0)
            break;
        sha256_update(h, buf, (size_t)k);
    }
    close(fd);
    return 0;
}

/* The SHA-256 of the source as hex into hex (see the comment at the top). */
static int source_sha(struct cv *c, char hex[SHA256_HEX_LEN + 1], struct err *e)
{
    struct sha256 h;
    struct stat st;
    uint8_t d[SHA256_LEN];
    size_t cap = (size_t)4 << 20;
    uint8_t *buf = malloc(cap);
    int rc = 0;

    if (!buf)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (sha256_init(&h, e)) {
        free(buf);
        return -1;
    }
    if (stat(c->in, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(c->in) + 40;
        char *idx = malloc(n);
        if (!idx)
            rc = ERR(e, ERR_NOMEM, "out of memory");
        else {
            snprintf(idx, n, "%s/model.safetensors.index.json", c->in);
            if (access(idx, R_OK) == 0)
                rc = sha_file(c, &h, idx, buf, cap, e);
            else
                for (uint32_t i = 0; rc == 0 && i < c->src.n_files; i++)
                    rc = sha_file(c, &h, c->src.files[i].path, buf, cap, e);
            free(idx);
        }
    } else {
        rc = sha_file(c, &h, c->in, buf, cap, e);
    }
    free(buf);
    if (rc) {
        sha256_release(&h);
        return -1;
    }
    if (sha256_final(&h, d, e))
        return -1;
    sha256_hex(d, hex);
    return 0;
}

static void *sha_main(void *arg)
{
    struct cv *c = arg;
    c->sha_rc = source_sha(c, c->sha_new, &c->sha_err);
    return NULL;
}

/*
 * Start hashing the source.  With a second thread, c->sha_hex is a placeholder of the
 * same length until sha_join, so the metadata can be laid out before the hash is known
 * (apr_write writes it last); with one thread (or none to be had), hash here.
 */
static int sha_start(struct cv *c, struct err *e)
{
    struct err z = ERR_INIT;

    c->sha_err = z;
    atomic_store(&c->sha_stop, 0);
    if (c->n_threads > 1 && pthread_create(&c->sha_tid, NULL, sha_main, c) == 0) {
        c->sha_state = 1;
        memset(c->sha_hex, '0', SHA256_HEX_LEN);
        c->sha_hex[SHA256_HEX_LEN] = 0;
        return 0;
    }
    c->sha_state = 2;
    return source_sha(c, c->sha_hex, e);
}

/* Wait for the hash and put it in c->sha_hex (apr_write_opts.meta_final). */
static int sha_join(void *ctx, struct err *e)
{
    struct cv *c = ctx;

    if (c->sha_state != 1)
        return 0;
    pthread_join(c->sha_tid, NULL);
    c->sha_state = 2;
    if (c->sha_rc) {
        if (err_ok(e))
            *e = c->sha_err;
        return -1;
    }
    memcpy(c->sha_hex, c->sha_new, sizeof c->sha_hex);
    return 0;
}

/* Point the output's source_sha256 value at c->sha_hex, which sha_join fills in. */
static int sha_bind(struct cv *c, struct err *e)
{
    for (uint64_t i = 0; i < c->out_m.n_kv; i++) {
        struct model_val *v = &c->out_m.kv[i].val;
        if (slice_eq_cstr(c->out_m.kv[i].key, "source_sha256") && v->type == MV_STR &&
            slice_eq_cstr(v->v.s, c->sha_hex)) {
            v->v.s.p = c->sha_hex;   /* strings are never freed (val_free) */
            return 0;
        }
    }
    return ERR(e, ERR_INTERNAL, "no source_sha256 in the APR metadata");
}

/* ---- staging and commit */

static int stage_make(struct cv *c, const char *target_dir, struct err *e)
{
    size_t n = strlen(target_dir) + 64;
    c->stage = malloc(n);
    if (!c->stage)
        return ERR(e, ERR_NOMEM, "out of memory");
    snprintf(c->stage, n, "%s/.apr-convert.tmp.XXXXXX", target_dir);
    if (!mkdtemp(c->stage)) {
        ERR_SYS(e, "cannot create a staging directory in '%s'", target_dir);
        free(c->stage);
        c->stage = NULL;
        return -1;
    }
    return 0;
}

/* Remove the staging directory and whatever is left in it (one level: our files). */
static void stage_remove(struct cv *c)
{
    DIR *d;
    struct dirent *de;

    if (!c->stage)
        return;
    d = opendir(c->stage);
    if (d) {
        while ((de = readdir(d)) != NULL) {
            char p[4096];
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", c->stage, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(c->stage);
    free(c->stage);
    c->stage = NULL;
}

static char *dir_of(const char *path)
{
    const char *sl = strrchr(path, '/');
    if (!sl)
        return strdup(".");
    if (sl == path)
        return strdup("/");
    return strndup(path, (size_t)(sl - path));
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- report */

static void shape_str(const struct model_tensor *t, char *b, size_t cap)
{
    size_t o = (size_t)snprintf(b, cap, "[");
    for (int k = 0; k < t->n_dims && o < cap; k++)
        o += (size_t)snprintf(b + o, cap - o, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
    if (o < cap)
        snprintf(b + o, cap - o, "]");
}

static void report(struct cv *c, int wrote)
{
    FILE *f = c->o->out;
    uint64_t bytes = 0;

    /* Quiet on success: the report only when asked for (-v, --json) or planning. */
    if (!f || !(c->o->verbose || c->o->json || c->o->dry_run))
        return;
    for (uint64_t i = 0; i < c->n_tp; i++)
        bytes += c->out_m.tensors ? c->out_m.tensors[i].size : 0;
    if (c->o->json) {
        struct sbuf b = SBUF_INIT(SIZE_MAX / 2);
        struct json_w w;
        json_w_init(&w, &b, 1);
        json_w_obj(&w);
        json_w_key(&w, "input");
        json_w_str(&w, c->in);
        json_w_key(&w, "input_format");
        json_w_str(&w, model_format_name(c->src.format));
        json_w_key(&w, "output");
        json_w_str(&w, c->out);
        json_w_key(&w, "output_format");
        json_w_str(&w, tgt_name(c->tgt));
        json_w_key(&w, "dry_run");
        json_w_bool(&w, c->o->dry_run);
        json_w_key(&w, "written");
        json_w_bool(&w, wrote);
        json_w_key(&w, "verified");
        json_w_bool(&w, c->verified);
        if (c->sha_hex[0]) {
            json_w_key(&w, "source_sha256");
            json_w_str(&w, c->sha_hex);
        }
        json_w_key(&w, "tensor_count");
        json_w_u64(&w, c->n_tp);
        json_w_key(&w, "data_bytes");
        json_w_u64(&w, bytes);
        json_w_key(&w, "widened");
        json_w_u64(&w, c->n_widened);
        json_w_key(&w, "narrowed");
        json_w_u64(&w, c->n_narrowed);
        json_w_key(&w, "tensors");
        json_w_arr(&w);
        for (uint64_t i = 0; i < c->n_tp; i++) {
            const struct tplan *p = &c->tp[i];
            json_w_obj(&w);
            json_w_key(&w, "name");
            json_w_str(&w, p->name);
            json_w_key(&w, "source_name");
            json_w_str_n(&w, p->src->name.p, p->src->name.n);
            json_w_key(&w, "source_dtype");
            json_w_str(&w, dtype_name(p->src->dtype));
            json_w_key(&w, "dtype");
            json_w_str(&w, dtype_name(p->dtype));
            json_w_key(&w, "shape");
            json_w_arr(&w);
            for (int k = 0; k < p->src->n_dims; k++)
                json_w_u64(&w, (uint64_t)p->src->shape[k]);
            json_w_arr_end(&w);
            json_w_key(&w, "action");
            json_w_str(&w, p->widened ? "widen" : p->narrowed ? "narrow"
                           : p->converted ? "convert" : p->perm ? "permute" : "copy");
            if (p->perm) {
                json_w_key(&w, "permutation");
                json_w_str(&w, p->perm == 1 ? "hf-to-gguf" : "gguf-to-hf");
            }
            if (p->note[0]) {
                json_w_key(&w, "note");
                json_w_str(&w, p->note);
            }
            json_w_obj_end(&w);
        }
        json_w_arr_end(&w);
        json_w_obj_end(&w);
        sbuf_addc(&b, '\n');
        if (b.p)
            fwrite(b.p, 1, b.len, f);
        sbuf_release(&b);
        return;
    }
    fprintf(f, "%s (%s) -> %s (%s)%s\n", c->in, model_format_name(c->src.format), c->out,
            tgt_name(c->tgt), c->o->dry_run ? " [dry run: nothing written]" : "");
    if (c->o->dry_run)
        for (uint64_t i = 0; i < c->n_tp; i++) {
            const struct tplan *p = &c->tp[i];
            char sh[128];
            shape_str(p->src, sh, sizeof sh);
            fprintf(f, "  %-44s %-7s -> %-7s %-16s %s%s%s%s\n", p->name, dtype_name(p->src->dtype),
                    dtype_name(p->dtype), sh, p->perm ? "permuted " : "",
                    slice_eq_cstr(p->src->name, p->name) ? "" : "from ",
                    slice_eq_cstr(p->src->name, p->name) ? "" : "",
                    p->note);
        }
    fprintf(f, "%llu tensors, %llu data bytes, %llu widened", (unsigned long long)c->n_tp,
            (unsigned long long)bytes, (unsigned long long)c->n_widened);
    if (c->n_narrowed)
        fprintf(f, ", %llu narrowed", (unsigned long long)c->n_narrowed);
    fprintf(f, "%s\n", c->verified ? ", verified" : "");
}

/* ---- the run */

static void cv_release(struct cv *c)
{
    if (c->sha_state == 1) {
        atomic_store(&c->sha_stop, 1);
        pthread_join(c->sha_tid, NULL);
        c->sha_state = 2;
    }
    for (uint32_t i = 0; c->fds && i < c->src.n_files; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    free(c->fds);
    for (uint64_t i = 0; i < c->out_m.n_kv; i++)
        if (c->kv_own[i])
            model__val_free(&c->out_m.kv[i].val);
    free(c->out_m.kv);
    free(c->kv_own);
    c->out_m.kv = NULL;
    c->out_m.n_kv = 0;
    meta_free(&c->ck);
    model_close(&c->out_m);
    model_close(&c->src);
    free(c->tp);
    free(c->fbuf);
    free(c->bbuf);
    free(c->bbuf2);
    stage_remove(c);
    free(c->stage_out);
}

static int target_of(const struct convert_opts *o, const char *out, enum tgt *t, int *dir,
                     struct err *e)
{
    *dir = 0;
    if (o->to) {
        if (strcmp(o->to, "apr") == 0) *t = TGT_APR;
        else if (strcmp(o->to, "gguf") == 0) *t = TGT_GGUF;
        else if (strcmp(o->to, "safetensors") == 0 || strcmp(o->to, "st") == 0) *t = TGT_ST;
        else
            return ERR(e, ERR_USAGE, "--to: '%s' is not apr, gguf or safetensors", o->to);
    } else if (ends_with(out, ".apr")) {
        *t = TGT_APR;
    } else if (ends_with(out, ".gguf")) {
        *t = TGT_GGUF;
    } else if (ends_with(out, ".safetensors") || ends_with(out, ".json") ||
               is_dir(out) || out[strlen(out) - 1] == '/') {
        *t = TGT_ST;
    } else {
        return ERR(e, ERR_USAGE, "%s: cannot tell the output format from the name (use .apr, "
                   ".gguf, .safetensors, a directory, or --to)", out);
    }
    if (*t == TGT_ST && !ends_with(out, ".safetensors"))
        *dir = 1;
    if (*t != TGT_ST && is_dir(out))
        return ERR(e, ERR_USAGE, "%s: is a directory", out);
    return 0;
}

static int exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static int move_into(const char *from_dir, const char *name, const char *to_dir, struct err *e)
{
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    if (rename(a, b) != 0)
        return ERR_SYS(e, "cannot rename '%s' to '%s'", a, b);
    return 0;
}

static int name_cmp_s(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Move every file of the staging directory into dir, the index last. */
static int move_all(struct cv *c, const char *dir, struct err *e)
{
    DIR *d = opendir(c->stage);
    struct dirent *de;
    char *names[4096];
    int n = 0, rc = 0, idx = 0;

    if (!d)
        return ERR_SYS(e, "cannot read '%s'", c->stage);
    while ((de = readdir(d)) != NULL && n < 4096)
        if (de->d_name[0] != '.')
            names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, name_cmp_s);
    for (int i = 0; i < n; i++) {
        if (!names[i])
            rc = ERR(e, ERR_NOMEM, "out of memory");
        else if (strcmp(names[i], "model.safetensors.index.json") == 0)
            idx = 1;
        else if (rc == 0)
            rc = move_into(c->stage, names[i], dir, e);
    }
    if (rc == 0 && idx)
        rc = move_into(c->stage, "model.safetensors.index.json", dir, e);
    for (int i = 0; i < n; i++)
        free(names[i]);
    return rc;
}

int convert_run(const struct convert_opts *o, const char *in, const char *out, struct err *e)
{
    struct cv cv, *c = &cv;
    int dir_out = 0, rc = -1, wrote = 0;
    char *tdir = NULL;
    struct stat si, so;

    memset(c, 0, sizeof *c);
    c->o = o;
    c->in = in;
    c->out = out;
    c->dtype_req = -1;
    c->n_threads = o->n_threads > 0 ? o->n_threads : threads_ncpu();
    if (target_of(o, out, &c->tgt, &dir_out, e))
        return -1;
    if (o->names && strcmp(o->names, "hf") != 0 && strcmp(o->names, "gguf") != 0)
        return ERR(e, ERR_USAGE, "--names: '%s' is not hf or gguf", o->names);
    if (o->dtype && strcmp(o->dtype, "keep") != 0) {
        static const char *const ok[] = { "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k",
                                          "q6_k" };
        size_t i;
        for (i = 0; i < sizeof ok / sizeof *ok; i++)
            if (strcasecmp(o->dtype, ok[i]) == 0)
                break;
        if (i == sizeof ok / sizeof *ok)
            return ERR(e, ERR_USAGE, "--dtype: '%s' is not keep, f32, f16, bf16, q8_0, q4_0, "
                       "q4_k, q5_k or q6_k", o->dtype);
        c->dtype_req = dtype_from_name(o->dtype);
    }
    if (o->lossless && c->tgt != TGT_APR)
        return ERR(e, ERR_USAGE, "--lossless applies to APR output only");
    if (stat(in, &si) == 0 && stat(out, &so) == 0 && si.st_dev == so.st_dev &&
        si.st_ino == so.st_ino)
        return ERR(e, ERR_USAGE, "%s: input and output are the same file", out);

    if (model__init(&c->out_m, (enum model_format)(c->tgt == TGT_APR ? MODEL_FMT_APR
                                 : c->tgt == TGT_GGUF ? MODEL_FMT_GGUF : MODEL_FMT_SAFETENSORS),
                    out, e))
        return -1;
    if (model_open(&c->src, in, e))
        goto done;
    mfile_advise_seq(&c->src.files[0], 0, c->src.files[0].size);
    /* APR: hash the source alongside everything from here on (sha_start) */
    if (c->tgt == TGT_APR && !o->dry_run && sha_start(c, e))
        goto done;
    if (c->dtype_req >= 0 && !holds(c, c->dtype_req)) {
        ERR(e, ERR_USAGE, "--dtype %s: %s has no code for it%s", o->dtype, tgt_name(c->tgt),
            c->tgt == TGT_APR ? " (add --lossless to store it with an extension code)" : "");
        goto done;
    }
    if (meta_from_model(&c->src, &c->ck, e))
        goto done;
    c->drop_tied = c->ck.apr_tied;
    if (plan_tensors(c, e))
        goto done;
    if (c->tgt == TGT_APR)
        for (uint64_t i = 0; i < c->n_tp; i++)
            if (dtype_get(c->tp[i].dtype)->apr_code < 0)
                c->use_ext = 1;
    for (uint64_t i = 0; i < c->n_tp; i++)
        if (c->tp[i].widened ||
            (c->tp[i].note[0] && !c->tp[i].tied_copy && !c->tp[i].narrowed))
            note(c, "'%s': %s -> %s (%s)", c->tp[i].name, dtype_name(c->tp[i].src->dtype),
                 dtype_name(c->tp[i].dtype), c->tp[i].note);
    if (out_tensors(c, e) || ck_fixup(c, e))
        goto done;
    if ((c->tgt == TGT_APR ? meta_apr(c, e) : c->tgt == TGT_GGUF ? meta_gguf(c, e)
                                                                 : meta_st(c, e)))
        goto done;
    if (c->tgt == TGT_APR && !o->dry_run && sha_bind(c, e))
        goto done;
    if (o->dry_run) {
        rc = 0;
        goto done;
    }

    /* refuse to overwrite, then stage beside the target */
    tdir = dir_out ? (ends_with(out, ".json") ? dir_of(out) : strdup(out)) : dir_of(out);
    if (!tdir) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (dir_out) {
        if (mkdir(tdir, 0777) != 0 && errno != EEXIST) {
            ERR_SYS(e, "cannot create '%s'", tdir);
            goto done;
        }
        if (!o->force && (exists(tdir, "model.safetensors") ||
                          exists(tdir, "model.safetensors.index.json") ||
                          exists(tdir, "config.json"))) {
            ERR(e, ERR_IO, "%s: already holds a model (use -f to replace it)", tdir);
            goto done;
        }
    } else if (!o->force && lstat(out, &so) == 0) {
        ERR(e, ERR_IO, "%s: exists (use -f to replace it)", out);
        goto done;
    }
    if (stage_make(c, tdir, e))
        goto done;
    {
        size_t n = strlen(c->stage) + strlen(base_name(out)) + 2;
        c->stage_out = malloc(n);
        if (!c->stage_out) {
            ERR(e, ERR_NOMEM, "out of memory");
            goto done;
        }
        snprintf(c->stage_out, n, "%s/%s", c->stage, dir_out ? "" : base_name(out));
        if (dir_out)
            c->stage_out[strlen(c->stage)] = 0;
    }
    if (o->progress) {
        uint64_t total = 0;
        for (uint64_t i = 0; i < c->n_tp; i++)
            total += c->tp[i].src->size;
        progress_start(&c->prog, "converting", total);
    }
    c->fbuf = malloc((size_t)CONV_ELEMS * sizeof *c->fbuf);
    if (!c->fbuf) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (c->tgt == TGT_APR) {
        struct apr_write_opts ao;
        memset(&ao, 0, sizeof ao);
        ao.tensor_data = td_apr;
        ao.tensor_data_ctx = c;
        ao.ggml_ext_codes = c->use_ext;
        ao.meta_final = sha_join;
        ao.meta_final_ctx = c;
        rc = apr_write(&c->out_m, c->stage_out, &ao, e);
    } else if (c->tgt == TGT_GGUF) {
        struct gguf_write_opts go = GGUF_WRITE_OPTS_INIT;
        go.tensor_data = td_gguf;
        go.ctx = c;
        rc = gguf_write(&c->out_m, c->stage_out, &go, e);
    } else {
        struct st_write_opts so2 = ST_WRITE_OPTS_INIT;
        so2.tensor_data = td_st;
        so2.ctx = c;
        so2.max_shard_bytes = dir_out ? (o->shard_bytes ? o->shard_bytes : DEFAULT_SHARD) : 0;
        rc = st_write(&c->out_m, c->stage_out, &so2, e);
        if (rc == 0 && (dir_out || strcmp(base_name(out), "model.safetensors") == 0)) {
            if (!dir_out && !o->force && exists(tdir, "config.json"))
                note(c, "%s/config.json exists: not replaced (use -f)", tdir);
            else
                rc = st_write_config(&c->out_m, c->stage, e);
            if (rc == 0) {
                /* tokenizer.json and tokenizer_config.json come from the canonical
                 * keys: meta_st puts no tokenizer.* keys in out_m */
                struct model tm;
                memset(&tm, 0, sizeof tm);
                tm.kv = c->ck.kv;
                tm.n_kv = c->ck.n;
                if (!dir_out && !o->force && exists(tdir, "tokenizer.json"))
                    note(c, "%s/tokenizer.json exists: not replaced (use -f)", tdir);
                else
                    rc = st_write_tokenizer(&tm, c->stage, e);
            }
        }
    }
    progress_done(&c->prog);
    if (rc)
        goto done;
    rc = -1;
    if (o->verify) {
        const char *vp = c->stage_out;
        char idx[4096];
        if (dir_out) {
            snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", c->stage);
            if (access(idx, F_OK) != 0)
                snprintf(idx, sizeof idx, "%s/model.safetensors", c->stage);
            vp = idx;
        }
        if (verify(c, vp, e))
            goto done;
    }
    if (cancelled(c, e))
        goto done;
    if (dir_out) {
        if (move_all(c, tdir, e))
            goto done;
    } else {
        if (rename(c->stage_out, out) != 0) {
            ERR_SYS(e, "cannot rename '%s' to '%s'", c->stage_out, out);
            goto done;
        }
        if (c->tgt == TGT_ST && exists(c->stage, "config.json") && move_into(c->stage, "config.json", tdir, e))
            goto done;
        for (int k = 0; c->tgt == TGT_ST && k < 2; k++) {
            const char *tf = k ? "tokenizer_config.json" : "tokenizer.json";
            if (exists(c->stage, tf) && move_into(c->stage, tf, tdir, e))
                goto done;
        }
    }
    wrote = 1;
    rc = 0;
done:
    if (rc == 0)
        report(c, wrote);
    free(tdir);
    cv_release(c);
    return rc;
}
