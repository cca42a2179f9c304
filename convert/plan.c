/*
 * plan.c - the tensor plan: per tensor the target name, Q/K permutation and dtype (and why).
 */
#include "convert_impl.h"

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
#include "../common/path.h"
#include "../common/rd.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../formats/model_json.h"
#include "../common/banned.h"

/* ---- tensor plan */

int cv_is_block(int dt)
{
    const struct dtype_info *d = dtype_get(dt);
    return d && d->blck > 1;
}

int cv_holds(const struct cv *c, int dt)
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

const char * cv_tgt_name(enum tgt t)
{
    return t == TGT_APR ? "APR" : t == TGT_GGUF ? "GGUF" : "SafeTensors";
}

int cv_want_gguf_names(const struct cv *c)
{
    if (c->tgt == TGT_GGUF)
        return 1;
    if (c->tgt == TGT_ST)
        return 0;
    if (c->o->names)
        return strcmp(c->o->names, "gguf") == 0;
    return strcmp(names_apr_style(c->ck.arch[0] ? c->ck.arch : NULL), "gguf") == 0;
}

int cv_is_embedding(struct slice n)
{
    return slice_eq_cstr(n, "token_embd.weight") || slice_eq_cstr(n, "model.embed_tokens.weight");
}

int cv_is_head(const char *n)
{
    return strcmp(n, "output.weight") == 0 || strcmp(n, "lm_head.weight") == 0;
}

#define MIX_FALLBACK (1 << 16)     /* c->mix_out flags beside the dtype */
#define MIX_REFUSED  (1 << 17)

/*
 * --dtype of a quantized type: llama-quantize's choice for every source tensor
 * (quant_mix.c), made once over all tensors (the rules count layers) with the GGUF
 * names the tensors have or get.  c->mix_out[i]: the dtype | MIX_* flags, or -1 when
 * llama-quantize leaves the tensor as it is.
 */
/*
 * The importance data of one quantized tensor, as llama-quantize finds it: by its GGUF
 * name, ne0 values per expert (ne0 * ne2 in all).  A length that does not match is an
 * error, except for token_embd.weight (ignored, as llama-quantize does); a tensor whose
 * type cannot be made without data is an error when it has none.
 */
static int plan_imatrix(struct cv *c, const struct qmix_tensor *t,
                        const struct imatrix_entry **out, struct err *e)
{
    const struct imatrix_entry *en = c->im.n ? imatrix_find(&c->im, t->name) : NULL;
    int64_t ne0 = t->n_dims ? t->shape[t->n_dims - 1] : 1;
    int64_t ne2 = t->n_dims >= 3 ? t->shape[t->n_dims - 3] : 1;

    *out = NULL;
    if (en && en->n != (uint64_t)(ne0 * ne2)) {
        if (strcmp(t->name, "token_embd.weight") != 0)
            return ERR(e, ERR_FORMAT, "%s: entry '%s' has %llu values, the tensor needs %lld "
                       "(row length %lld x %lld experts)", c->im.path, t->name,
                       (unsigned long long)en->n, (long long)(ne0 * ne2), (long long)ne0,
                       (long long)ne2);
        en = NULL;
    }
    if (!en && qmix_tensor_needs_imatrix(c->mix, t->name, t->out))
        return ERR(e, c->im.n ? ERR_FORMAT : ERR_USAGE, "%s: %s needs an importance matrix "
                   "and %s has no data for it", t->name, dtype_name(t->out),
                   c->im.n ? c->im.path : "no --imatrix was given, so it");
    *out = en;
    return 0;
}

static int plan_mix(struct cv *c, const char *arch, uint64_t n_head, uint64_t n_kv,
                    struct err *e)
{
    uint64_t n = c->src.n_tensors, v;
    struct qmix_tensor *qt = calloc(n ? n : 1, sizeof *qt);
    char (*nm)[NAMES_MAX] = calloc(n ? n : 1, sizeof *nm);
    struct qmix_model mm = { arch, 0, (uint32_t)n_head, (uint32_t)n_kv, 0 };
    int rc;

    c->mix_out = calloc(n ? n : 1, sizeof *c->mix_out);
    c->mix_qw = calloc(n ? n : 1, sizeof *c->mix_qw);
    if (!qt || !nm || !c->mix_out || !c->mix_qw) {
        free(qt);
        free(nm);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    if (meta_aget_u64(&c->ck, "block_count", &v) == 0 && v < UINT32_MAX)
        mm.n_layer = (uint32_t)v;
    if (meta_aget_u64(&c->ck, "expert_count", &v) == 0 && v < UINT32_MAX)
        mm.n_expert = (uint32_t)v;
    for (uint64_t i = 0; i < n; i++) {
        const struct model_tensor *t = &c->src.tensors[i];
        if (names_is_gguf_style(t->name) || names_to_gguf(arch, t->name, nm[i], sizeof nm[i]))
            snprintf(nm[i], sizeof nm[i], "%.*s", (int)t->name.n, t->name.p);
        qt[i].name = nm[i];
        qt[i].n_dims = t->n_dims > 4 ? 4 : t->n_dims;
        for (int d = 0; d < qt[i].n_dims; d++)
            qt[i].shape[d] = t->shape[d + (t->n_dims - qt[i].n_dims)];
    }
    rc = qmix_plan_im(c->mix, c->o->pure, c->im.n > 0, &mm, qt, n, e);
    for (uint64_t i = 0; i < n && rc == 0; i++)
        c->mix_out[i] = qt[i].out < 0 ? -1 : qt[i].out | (qt[i].fallback ? MIX_FALLBACK : 0) |
                                              (qt[i].refused ? MIX_REFUSED : 0);
    for (uint64_t i = 0; i < n && rc == 0; i++)
        if (qt[i].out >= 0)
            rc = plan_imatrix(c, &qt[i], &c->mix_qw[i], e);
    free(qt);
    free(nm);
    return rc;
}

static int plan_dtype(struct cv *c, struct tplan *p)
{
    const struct model_tensor *t = p->src;
    const struct dtype_info *sd = dtype_get(t->dtype);
    int want = t->dtype;
    int64_t row = t->n_dims > 0 ? t->shape[t->n_dims - 1] : 1;

    if (c->mix && sd->kind != DTK_INT && sd->kind != DTK_COMPLEX) {
        int m = c->mix_out[p->src - c->src.tensors];
        if (m >= 0) {
            want = m & 0xFFFF;
            if (sd->kind == DTK_QUANT && want != t->dtype && !c->o->requantize)
                return -3;
            if (m & MIX_REFUSED)
                snprintf(p->note, sizeof p->note, "rows of %lld not whole %s blocks: F16 "
                         "(llama-quantize refuses this tensor)", (long long)row,
                         dtype_name(c->mix->dtype));
            else if (m & MIX_FALLBACK)
                snprintf(p->note, sizeof p->note, "rows of %lld: %s, llama-quantize's "
                         "fallback", (long long)row, dtype_name(want));
        }
    } else if (c->dtype_req >= 0 && sd->kind != DTK_INT && sd->kind != DTK_COMPLEX) {
        if (t->n_dims < 2) {
            /* norms, biases, 1-D: stay float (F32 unless already a plain float the
             * target holds) */
            want = sd->kind == DTK_FLOAT && cv_holds(c, t->dtype) ? t->dtype : DT_F32;
            if (c->dtype_req == DT_F32)
                want = DT_F32;
        } else {
            want = c->dtype_req;
            if (cv_is_block(want) && row % (int64_t)dtype_get(want)->blck) {
                int fb = dtype_get(want)->blck == 256 && row % 32 == 0 && cv_holds(c, DT_Q8_0)
                             ? DT_Q8_0 : DT_F16;
                snprintf(p->note, sizeof p->note, "rows of %lld not a multiple of %u: %s",
                         (long long)row, dtype_get(want)->blck, dtype_name(fb));
                want = fb;
            }
        }
    }
    if (!cv_holds(c, want)) {
        if (sd->kind == DTK_INT || sd->kind == DTK_COMPLEX || !dq_get(want) ||
            !dq_get(want)->to_f32)
            return -2;
        if (c->tgt == TGT_APR && convert_apr_ext_code(want) >= 0)
            snprintf(p->note, sizeof p->note, "widened: APR has no %s code (--lossless keeps "
                     "the bytes)", dtype_name(want));
        else
            snprintf(p->note, sizeof p->note, "widened: %s cannot hold %s", cv_tgt_name(c->tgt),
                     dtype_name(want));
        want = DT_F32;
        p->widened = 1;
    }
    /* llama.cpp multiplies by norm weights only in F32 (ggml_compute_forward_mul: "only
     * f32 src1 supported"); its converter keeps n_dims <= 1 and *_norm.weight in F32 */
    if (c->tgt == TGT_GGUF && (want == DT_F16 || want == DT_BF16) &&
        (t->n_dims <= 1 || str_ends_with_ci(p->name, "_norm.weight"))) {
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
    cv_drop_pages(t->data, t->size);
    return rc;
}

/* SafeTensors or APR output (--dtype keep) of a tensor that apr_tools.narrowed lists:
 * back to the recorded type when that is exact, else F32 with a note. */
static int plan_narrow(struct cv *c, struct tplan *p, struct err *e)
{
    int dt = p->orig_dtype, ok;

    if (!dt || c->tgt == TGT_GGUF || c->dtype_req >= 0 || p->src->dtype != DT_F32 ||
        p->dtype != DT_F32 || !cv_holds(c, dt))
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

int cv_plan_tensors(struct cv *c, struct err *e)
{
    int to_gguf = cv_want_gguf_names(c);
    const char *arch = c->ck.arch[0] ? c->ck.arch : NULL;
    uint64_t n_head = 0, n_kv = 0, have_head = 0, emb = UINT64_MAX;

    meta_aget_u64(&c->ck, "attention.head_count", &n_head);
    if (meta_aget_u64(&c->ck, "attention.head_count_kv", &n_kv))
        n_kv = n_head;
    c->tp = calloc(c->src.n_tensors + 1, sizeof *c->tp);
    if (!c->tp)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (c->mix && plan_mix(c, arch, n_head, n_kv, e))
        return -1;
    for (uint64_t i = 0; i < c->src.n_tensors; i++) {
        const struct model_tensor *t = &c->src.tensors[i];
        struct tplan *p = &c->tp[c->n_tp];
        int src_gguf = names_is_gguf_style(t->name), r;
        enum names_perm pk;

        if (c->drop_tied && c->tgt != TGT_APR && slice_eq_cstr(t->name, "lm_head.weight")) {
            cv_note(c, "'lm_head.weight' is aprender's copy of the tied embedding: not written");
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
                (t->n_dims < 2 && cv_is_block(t->dtype)))
                return ERR(e, ERR_FORMAT, "%s: tensor '%s': cannot permute %lld rows with %lld "
                           "heads", c->in, p->name, (long long)t->shape[0],
                           (long long)p->n_head);
        }
        if (t->dtype == DT_F32)
            p->orig_dtype = narrow_lookup(c, t->name);
        r = plan_dtype(c, p);
        if (r == -3)
            return ERR(e, ERR_USAGE, "%s: tensor '%s' is already %s: quantizing it again loses "
                       "precision (add --requantize)", c->in, p->name, dtype_name(t->dtype));
        if (r == -2)
            return ERR(e, ERR_UNSUPPORTED, "%s: tensor '%s': %s cannot hold %s", c->in, p->name,
                       cv_tgt_name(c->tgt), dtype_name(t->dtype));
        if (plan_narrow(c, p, e))
            return -1;
        if (p->widened)
            c->n_widened++;
        if (cv_is_head(p->name))
            have_head = 1;
        if (cv_is_embedding(t->name))
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
