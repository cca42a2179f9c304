/*
 * run.c - see run.h.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "run.h"
#include "run_impl.h"
#include "rt.h"
#include "tokenizer.h"
#ifdef APR_CUDA
#include "cuda/rt_cuda.h"
#include "cuda/rt_parity.h"
#endif
#include "../common/json.h"
#include "../common/ofile.h"
#include "../common/sbuf.h"
#include "../compare/compare.h"
#include "../formats/apr/aprt.h"
#include "../common/banned.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int run_parse_tokens(const char *s, size_t len, int32_t **ids, size_t *n, struct err *e)
{
    size_t cap = 0, i = 0;
    int32_t *v = NULL;

    *ids = NULL;
    *n = 0;
    while (i < len) {
        int64_t x = 0;
        size_t st;
        while (i < len && (s[i] == ',' || s[i] == ' ' || s[i] == '\n' || s[i] == '\t' ||
                           s[i] == '\r'))
            i++;
        if (i == len)
            break;
        st = i;
        while (i < len && s[i] >= '0' && s[i] <= '9' && x <= INT32_MAX)
            x = x * 10 + (s[i++] - '0');
        if (i == st || x > INT32_MAX || (i < len && s[i] != ',' && s[i] != ' ' &&
                                         s[i] != '\n' && s[i] != '\t' && s[i] != '\r')) {
            free(v);
            return ERR(e, ERR_USAGE, "token list: '%.*s' at byte %zu is not a token id",
                       (int)(len - st > 16 ? 16 : len - st), s + st, st);
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            int32_t *q = realloc(v, nc * sizeof *q);
            if (!q) {
                free(v);
                return ERR(e, ERR_NOMEM, "out of memory");
            }
            v = q;
            cap = nc;
        }
        v[(*n)++] = (int32_t)x;
    }
    *ids = v;
    return 0;
}

/* ---- hooks: --trace statistics and --save-tensor dumps */

struct hook_state {
    const struct run_opts *o;
    FILE     *out;
    int       trace;           /* print statistics */
    uint32_t  save;            /* stages to dump */
    int       save_lo, save_hi;
    char      dir[4096];
    int       trace_header;
    unsigned  n_written;
    uint64_t  bytes_written;
};

static int mkdir_p(const char *path, struct err *e)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n >= sizeof buf)
        return ERR(e, ERR_LIMIT, "path too long: '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return ERR_SYS(e, "cannot create directory '%s'", buf);
        buf[i] = path[i];
    }
    return 0;
}

static void trace_line(struct hook_state *h, enum rt_stage st, int layer, const float *x,
                       int64_t n)
{
    double mn = 0, mx = 0, sum = 0, ss = 0, mean = 0, var = 0;
    uint64_t nan = 0, inf = 0, fin = 0;

    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (v != v) {
            nan++;
            continue;
        }
        if (isinf(v)) {
            inf++;
            continue;
        }
        if (!fin || v < mn)
            mn = v;
        if (!fin || v > mx)
            mx = v;
        fin++;
        sum += v;
        ss += v * v;
    }
    if (fin) {
        mean = sum / (double)fin;
        var = ss / (double)fin - mean * mean;
        if (var < 0)
            var = 0;
    }
    if (!h->trace_header) {
        fprintf(h->out, "%-5s %-18s %9s %13s %13s %13s %13s %13s %5s %5s\n", "layer", "stage",
                "n", "min", "max", "mean", "std", "l2", "nan", "inf");
        h->trace_header = 1;
    }
    if (layer == RT_LAYER_MODEL)
        fprintf(h->out, "%-5s ", "-");
    else
        fprintf(h->out, "%-5d ", layer);
    fprintf(h->out, "%-18s %9lld %13.6g %13.6g %13.6g %13.6g %13.6g %5llu %5llu\n",
            rt_stage_name(st), (long long)n, mn, mx, mean, sqrt(var), sqrt(ss),
            (unsigned long long)nan, (unsigned long long)inf);
}

static int save_stage(struct hook_state *h, enum rt_stage st, int layer, const float *x,
                      int64_t n, struct err *e)
{
    char path[4600], sub[4300];

    if (n > UINT32_MAX)
        return ERR(e, ERR_LIMIT, "stage '%s': %lld values do not fit an APRT file",
                   rt_stage_name(st), (long long)n);
    if (layer == RT_LAYER_MODEL) {
        snprintf(sub, sizeof sub, "%s", h->dir);
    } else {
        if (layer < h->save_lo || layer >= h->save_hi)
            return 0;
        snprintf(sub, sizeof sub, "%s/layer-%d", h->dir, layer);
    }
    if (mkdir_p(sub, e))
        return -1;
    snprintf(path, sizeof path, "%s/%s.bin", sub, rt_stage_name(st));
    if (aprt_write(path, layer == RT_LAYER_MODEL ? APRT_LAYER_MODEL : (uint32_t)layer, x,
                   (uint32_t)n, e))
        return -1;
    h->n_written++;
    h->bytes_written += APRT_HEADER_SIZE + 4 * (uint64_t)n;
    return 0;
}

static int hook_fn(void *ud, enum rt_stage st, int layer, const float *x, int64_t rows,
                   int64_t cols, struct err *e)
{
    struct hook_state *h = ud;

    if (h->trace)
        trace_line(h, st, layer, x, rows * cols);
    if (h->save & (1u << st))
        return save_stage(h, st, layer, x, rows * cols, e);
    return 0;
}

/* Default dump directory: <model parent>/<model stem>-trace (aprender's code). */
static void default_dir(const char *model, char *out, size_t cap)
{
    size_t n = strlen(model);
    const char *base, *dot;

    while (n > 1 && model[n - 1] == '/')
        n--;
    base = model + n;
    while (base > model && base[-1] != '/')
        base--;
    dot = memchr(base, '.', (size_t)(model + n - base));
    if (dot == base)
        dot = NULL;
    snprintf(out, cap, "%.*s%.*s-trace", (int)(base - model), model,
             (int)((dot ? dot : model + n) - base), base);
}

static void hook_setup(struct hook_state *h, const struct run_opts *o, const char *model,
                       const struct rt_model *rm, struct rt_hook *hk)
{
    memset(h, 0, sizeof *h);
    h->o = o;
    h->out = o->out;
    h->trace = o->trace;
    h->save = o->save_stages;
    h->save_lo = o->save_lo;
    h->save_hi = o->save_hi;
    if (o->save_dir)
        snprintf(h->dir, sizeof h->dir, "%s", o->save_dir);
    else
        default_dir(model, h->dir, sizeof h->dir);
    hk->fn = hook_fn;
    hk->ud = h;
    hk->stages = (o->trace ? RT_STAGES_ALL : 0) | o->save_stages;
    hk->layer_lo = o->trace ? 0 : o->save_lo;
    hk->layer_hi = o->trace ? (int)rm->c.n_layer : o->save_hi;
}

/* ---- loading */

void run_unload(struct loaded *L)
{
    rt_ctx_free(L->ctx);
    rt_model_free(&L->rm);
    model_close(&L->m);
    memset(L, 0, sizeof *L);
}

/* The context size: --ctx, else min(training context, 4096), grown to what the run needs
 * when that stays within the training context. */
static int pick_ctx(const struct run_opts *o, const struct model_config *c, uint64_t need,
                    int *n_ctx, struct err *e)
{
    uint64_t train = c->n_ctx_train, def = train && train < 4096 ? train : 4096;

    if (o->n_ctx > 0) {
        if (need > (uint64_t)o->n_ctx)
            return ERR(e, ERR_USAGE, "context overflow: %llu positions needed (prompt and -n), "
                       "--ctx is %d", (unsigned long long)need, o->n_ctx);
        *n_ctx = o->n_ctx;
        return 0;
    }
    if (need > def) {
        if (train && need > train)
            return ERR(e, ERR_USAGE, "context overflow: %llu positions needed (prompt and -n), "
                       "the model was trained for %llu (give --ctx to go beyond)",
                       (unsigned long long)need, (unsigned long long)train);
        if (need > INT32_MAX)
            return ERR(e, ERR_LIMIT, "context of %llu positions is too large",
                       (unsigned long long)need);
        def = need;
    }
    *n_ctx = (int)def;
    return 0;
}

int run_load(struct loaded *L, const struct run_opts *o, const char *path, uint64_t need,
             int decode, struct err *e)
{
    struct rt_params p = { 0, o->n_threads, o->n_batch, NULL, (enum rt_rope_freq)o->rope_freq,
                           !decode };

    memset(L, 0, sizeof *L);
    if (o->device >= 0) {
#ifdef APR_CUDA
        p.backend = rt_cuda_backend(o->device);
#else
        return ERR(e, ERR_USAGE, "--device cuda:%d: this apr-run was built without CUDA (make CUDA=1)",
                   o->device);
#endif
    }
    if (model_open(&L->m, path, e))
        return -1;
    if (rt_model_load(&L->rm, &L->m, e) || pick_ctx(o, &L->rm.c, need, &p.n_ctx, e) ||
        rt_ctx_new(&L->ctx, &L->rm, &p, e)) {
        run_unload(L);
        return -1;
    }
    if (o->verbose && o->diag && L->ctx->n_repacked)
        fprintf(o->diag, "apr-run: %d matrices repacked for decode (%.1f MiB)\n",
                L->ctx->n_repacked, L->ctx->repacked_bytes / 1048576.0);
    else if (o->verbose && o->diag && L->ctx->repack_skipped)
        fprintf(o->diag, "apr-run: not repacked for decode: no room for %.1f MiB (half the "
                "available memory at most)\n", L->ctx->repack_skipped / 1048576.0);
#ifdef APR_CUDA
    /* types widened on upload are always said; the device with -v */
    if (o->device >= 0 && o->diag && (o->verbose || strstr(rt_cuda_notes(L->ctx), "widened")))
        fprintf(o->diag, "apr-run: cuda:%d: %s\n", o->device, rt_cuda_notes(L->ctx));
#endif
    return 0;
}

/* ---- outputs */

static int write_logits(const char *path, const float *v, size_t n, struct err *e)
{
    struct ofile f = OFILE_INIT;
    uint8_t buf[4096];
    size_t k = 0;

    if (ofile_open(&f, path, 0, e))
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        buf[k++] = (uint8_t)u;
        buf[k++] = (uint8_t)(u >> 8);
        buf[k++] = (uint8_t)(u >> 16);
        buf[k++] = (uint8_t)(u >> 24);
        if (k == sizeof buf || i + 1 == n) {
            if (ofile_write(&f, buf, k, e)) {
                ofile_abort(&f);
                return -1;
            }
            k = 0;
        }
    }
    if (ofile_commit(&f, e)) {
        ofile_abort(&f);
        return -1;
    }
    ofile_abort(&f);
    return 0;
}

/* The k largest logits (ties: lower id first). */
static void json_topk(struct json_w *w, const float *x, int64_t nv, int k)
{
    int32_t best[64];
    int nb = 0;

    if (k > 64)
        k = 64;
    for (int64_t i = 0; i < nv; i++) {
        int pos = nb;
        if (x[i] != x[i])
            continue;
        while (pos > 0 && x[i] > x[best[pos - 1]])
            pos--;
        if (pos >= k)
            continue;
        if (nb < k)
            nb++;
        memmove(best + pos + 1, best + pos, (size_t)(nb - 1 - pos) * sizeof *best);
        best[pos] = (int32_t)i;
    }
    json_w_arr(w);
    for (int i = 0; i < nb; i++) {
        json_w_arr(w);
        json_w_i64(w, best[i]);
        json_w_f32(w, x[best[i]]);
        json_w_arr_end(w);
    }
    json_w_arr_end(w);
}

/* ---- generation */

/* --json: the model, the prompt and its top logits, and the opening of "generated" */
static void gen_json_head(const struct run_opts *o, const float *logits, int64_t nv,
                          struct json_w *w)
{
    json_w_obj(w);
    json_w_key(w, "model");
    json_w_str(w, o->model);
    json_w_key(w, "n_vocab");
    json_w_i64(w, nv);
    json_w_key(w, "prompt");
    json_w_arr(w);
    for (size_t i = 0; i < o->n_tokens; i++)
        json_w_i64(w, o->tokens[i]);
    json_w_arr_end(w);
    json_w_key(w, "prompt_top");
    json_w_arr(w);
    for (size_t i = 0; i < o->n_tokens; i++)
        json_topk(w, logits + i * (size_t)nv, nv, o->top_k);
    json_w_arr_end(w);
    json_w_key(w, "generated");
    json_w_arr(w);
}

/* --json: the end of "generated", the tokens and the timings */
static void gen_json_tail(const struct run_opts *o, const int32_t *hist, size_t n_hist,
                          double t_prompt, double t_gen, size_t n_gen, int threads,
                          struct json_w *w)
{
    const size_t np = o->n_tokens;

    json_w_arr_end(w);
    json_w_key(w, "tokens");
    json_w_arr(w);
    for (size_t i = np; i < n_hist; i++)
        json_w_i64(w, hist[i]);
    json_w_arr_end(w);
    json_w_key(w, "timings");
    json_w_obj(w);
    json_w_key(w, "prompt_s");
    json_w_f64(w, t_prompt);
    json_w_key(w, "prompt_tokens_per_s");
    json_w_f64(w, np / (t_prompt > 0 ? t_prompt : 1e-9));
    json_w_key(w, "gen_s");
    json_w_f64(w, t_gen);
    json_w_key(w, "gen_tokens_per_s");
    json_w_f64(w, n_gen > 1 ? (n_gen - 1) / (t_gen > 0 ? t_gen : 1e-9) : 0);
    json_w_key(w, "threads");
    json_w_i64(w, threads);
    json_w_obj_end(w);
    json_w_obj_end(w);
}

static int generate(const struct run_opts *o, struct err *e)
{
    struct loaded L;
    struct hook_state hs;
    struct rt_hook hk = { 0 };
    struct rt_sampler sm = { 0 };
    const size_t np = o->n_tokens;
    const int want_all = o->logits_path || o->json;
    float *logits = NULL, *last;
    int32_t *hist = NULL;
    size_t n_hist = np, n_gen = 0;
    double t0, t_prompt, t_gen = 0;
    struct sbuf js = SBUF_INIT((size_t)1 << 34);
    struct json_w w;
    struct tok_stream ts;
    int64_t nv;
    int rc = -1;

    if (o->tok)
        tok_stream_init(&ts, o->tok, 0);
    /* one-token steps: generation, or a prompt fed a token a pass */
    if (run_load(&L, o, o->model, np + (uint64_t)o->n_predict, o->n_predict > 1 || o->n_batch == 1,
                 e)) {
        if (o->tok)
            tok_stream_release(&ts);
        return -1;
    }
    nv = L.rm.c.n_vocab;
    hist = malloc((np + (size_t)o->n_predict + 1) * sizeof *hist);
    logits = malloc((want_all ? np : 1) * (size_t)nv * sizeof *logits);
    if (!hist || !logits) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(hist, o->tokens, np * sizeof *hist);
    if (rt_sampler_init(&sm, &o->sp, (int32_t)nv, e))
        goto out;
    if (o->trace || o->save_stages) {
        hook_setup(&hs, o, o->model, &L.rm, &hk);
        rt_ctx_set_hook(L.ctx, &hk);
    }
    t0 = now_s();
    if (rt_eval(L.ctx, o->tokens, (int)np, 0, logits, want_all ? RT_EVAL_ALL_LOGITS : 0, e))
        goto out;
    t_prompt = now_s() - t0;
    rt_ctx_set_hook(L.ctx, NULL);
    if (o->save_stages && o->diag)
        fprintf(o->diag, "%s: wrote %u stage tensor file(s) under %s (%llu bytes)\n",
                "apr-run", hs.n_written, hs.dir, (unsigned long long)hs.bytes_written);
    if (o->logits_path && write_logits(o->logits_path, logits, np * (size_t)nv, e))
        goto out;
    if (o->json) {
        json_w_init(&w, &js, 0);
        gen_json_head(o, logits, nv, &w);
    }
    last = logits + (want_all ? (np - 1) * (size_t)nv : 0);
    t0 = now_s();
    while (n_gen < (size_t)o->n_predict) {
        int32_t id;
        if (o->json) {
            json_w_obj(&w);
            json_w_key(&w, "top");
            json_topk(&w, last, nv, o->top_k);
        }
        id = rt_sample(&sm, last, hist, n_hist);
        hist[n_hist++] = id;
        n_gen++;
        if (o->json) {
            json_w_key(&w, "id");
            json_w_i64(&w, id);
            json_w_obj_end(&w);
        } else if (o->tok) {
            const char *txt;
            size_t tl;
            if (tok_stream_push(&ts, id, &txt, &tl, e))
                goto out;
            fwrite(txt, 1, tl, o->out);
            fflush(o->out);
        } else {
            fprintf(o->out, "%s%d", n_gen > 1 ? " " : "", (int)id);
            fflush(o->out);
        }
        if ((!o->ignore_eos && ((L.rm.c.eos_id >= 0 && id == L.rm.c.eos_id) ||
                                (o->tok && tok_is_eog(o->tok, id)))) ||
            n_gen == (size_t)o->n_predict)
            break;
        if (rt_eval(L.ctx, &id, 1, (int)(n_hist - 1), logits, 0, e))
            goto out;
        last = logits;
    }
    t_gen = now_s() - t0;
    if (o->json) {
        gen_json_tail(o, hist, n_hist, t_prompt, t_gen, n_gen, L.ctx->n_threads, &w);
        if (sbuf_check(&js, "JSON output", e))
            goto out;
        fwrite(js.p, 1, js.len, o->out);
        fputc('\n', o->out);
    } else if (n_gen) {
        if (o->tok) {
            const char *txt;
            size_t tl;
            tok_stream_flush(&ts, &txt, &tl);
            fwrite(txt, 1, tl, o->out);
        }
        fputc('\n', o->out);
    }
    if (o->verbose && o->diag) {
        fprintf(o->diag, "apr-run: prompt %zu tokens in %.3f s (%.2f tokens/s)\n", np, t_prompt,
                np / (t_prompt > 0 ? t_prompt : 1e-9));
        /* the first generated token comes from the prompt pass: n_gen - 1 decode steps */
        fprintf(o->diag, "apr-run: generation %zu tokens in %.3f s (%.2f tokens/s), %d threads\n",
                n_gen, t_gen, n_gen > 1 ? (n_gen - 1) / (t_gen > 0 ? t_gen : 1e-9) : 0.0,
                L.ctx->n_threads);
    }
    rc = 0;
out:
    sbuf_release(&js);
    rt_sampler_free(&sm);
    if (o->tok)
        tok_stream_release(&ts);
    free(hist);
    free(logits);
    run_unload(&L);
    return rc;
}

/* ---- --compare: two models teacher-forced on the same tokens */

struct stage_rec {
    enum rt_stage st;
    int           layer;
    int64_t       n;
    float        *v;
};

struct stage_cmp {
    struct hook_state  save;        /* dumps of this side (when --save-tensor) */
    int                record;      /* 1: keep copies (the reference side) */
    struct stage_rec  *recs;        /* the reference side's stages, in order */
    size_t             n_recs, cap;
    const struct stage_cmp *ref;    /* the test side: compare with these */
    double             thr;         /* cosine below which a stage diverges */
    int                found;       /* first divergent stage found */
    struct stage_rec   first;       /* its stage and layer (v unused) */
    double             first_cos, first_max;
    unsigned           n_compared;
};

static int cmp_hook(void *ud, enum rt_stage st, int layer, const float *x, int64_t rows,
                    int64_t cols, struct err *e)
{
    struct stage_cmp *s = ud;
    const int64_t n = rows * cols;

    if ((s->save.save & (1u << st)) && save_stage(&s->save, st, layer, x, n, e))
        return -1;
    if (s->record) {
        struct stage_rec *r;
        if (s->n_recs == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 64;
            r = realloc(s->recs, nc * sizeof *r);
            if (!r)
                return ERR(e, ERR_NOMEM, "out of memory");
            s->recs = r;
            s->cap = nc;
        }
        r = &s->recs[s->n_recs];
        r->v = malloc((size_t)n * sizeof *r->v);
        if (!r->v)
            return ERR(e, ERR_NOMEM, "out of memory for stage '%s'", rt_stage_name(st));
        memcpy(r->v, x, (size_t)n * sizeof *r->v);
        r->st = st;
        r->layer = layer;
        r->n = n;
        s->n_recs++;
        return 0;
    }
    if (s->ref && !s->found) {
        for (size_t i = 0; i < s->ref->n_recs; i++) {
            const struct stage_rec *r = &s->ref->recs[i];
            struct cmp_acc acc;
            struct cmp_stats cs;
            if (r->st != st || r->layer != layer)
                continue;
            s->n_compared++;
            memset(&cs, 0, sizeof cs);
            if (r->n != n) {
                cs.cosine = 0;
                cs.max_abs = INFINITY;
            } else {
                cmp_init(&acc);
                cmp_add(&acc, r->v, x, (size_t)n);
                cmp_finish(&acc, &cs);
            }
            if (!(cs.cosine >= s->thr) || cs.nan_y + cs.inf_y > cs.nan_x + cs.inf_x) {
                s->found = 1;
                s->first.st = st;
                s->first.layer = layer;
                s->first_cos = cs.cosine;
                s->first_max = cs.max_abs;
            }
            break;
        }
    }
    return 0;
}

static void stage_cmp_release(struct stage_cmp *s)
{
    for (size_t i = 0; i < s->n_recs; i++)
        free(s->recs[i].v);
    free(s->recs);
    s->recs = NULL;
    s->n_recs = s->cap = 0;
}

/* --compare's figures over the positions */
struct cmp_sum {
    double   min_cos, max_kl, sum_kl, max_abs;
    size_t   worst_pos, kl_pos, agree, n;
    uint64_t n_bad;             /* NaN/Inf logits of MODEL */
};

/* --save-tensor with --compare: dumps under DIR/other and DIR/model, and OTHER's stages
 * kept so that MODEL's are compared with them as they come */
static void cmp_hooks(const struct run_opts *o, struct loaded *A, struct loaded *B,
                      struct stage_cmp *sa, struct stage_cmp *sb, struct rt_hook *ha,
                      struct rt_hook *hb, double fail_cos)
{
    char base[3072];

    if (o->save_dir)
        snprintf(base, sizeof base, "%s", o->save_dir);
    else
        default_dir(o->model, base, sizeof base);
    hook_setup(&sa->save, o, o->other, &A->rm, ha);
    snprintf(sa->save.dir, sizeof sa->save.dir, "%s/other", base);
    hook_setup(&sb->save, o, o->model, &B->rm, hb);
    snprintf(sb->save.dir, sizeof sb->save.dir, "%s/model", base);
    sa->save.trace = sb->save.trace = 0;
    ha->fn = hb->fn = cmp_hook;
    ha->ud = sa;
    hb->ud = sb;
    ha->stages = hb->stages = o->save_stages;
    ha->layer_lo = hb->layer_lo = o->save_lo;
    ha->layer_hi = hb->layer_hi = o->save_hi;
    sa->record = 1;
    sb->ref = sa;
    sb->thr = fail_cos;
    rt_ctx_set_hook(A->ctx, ha);
    rt_ctx_set_hook(B->ctx, hb);
}

/* Each position's cosine, KL, top-1 and max |delta| into cs, and as a row (text) or an
 * object of the "positions" array (JSON, w != NULL). */
static void cmp_positions(const struct run_opts *o, const float *la, const float *lb,
                          int64_t nv, struct cmp_sum *cs, struct json_w *w)
{
    cs->min_cos = 2;
    if (!w)
        fprintf(o->out, "%-5s %-8s %-12s %-12s %-10s %-10s %s\n", "pos", "token", "cosine",
                "kl", "top1_other", "top1_model", "max|delta|");
    for (size_t t = 0; t < o->n_tokens; t++) {
        const float *ra = la + t * (size_t)nv, *rb = lb + t * (size_t)nv;
        struct cmp_acc acc;
        struct cmp_stats st;
        struct cmp_logits cl;

        cmp_init(&acc);
        cmp_add(&acc, ra, rb, (size_t)nv);
        cmp_finish(&acc, &st);
        cmp_logits(ra, rb, (size_t)nv, 5, &cl);
        if (!(st.cosine >= cs->min_cos)) {
            cs->min_cos = st.cosine;
            cs->worst_pos = t;
        }
        if (!(cl.kl <= cs->max_kl)) {
            cs->max_kl = cl.kl;
            cs->kl_pos = t;
        }
        cs->n_bad += st.nan_y + st.inf_y;
        cs->sum_kl += cl.kl;
        if (!(st.max_abs <= cs->max_abs))
            cs->max_abs = st.max_abs;
        cs->agree += cl.top1_agree != 0;
        cs->n++;
        if (w) {
            json_w_obj(w);
            json_w_key(w, "token");
            json_w_i64(w, o->tokens[t]);
            json_w_key(w, "cosine");
            json_w_f64(w, st.cosine);
            json_w_key(w, "kl");
            json_w_f64(w, cl.kl);
            json_w_key(w, "top1_other");
            json_w_i64(w, cl.top1_ref);
            json_w_key(w, "top1_model");
            json_w_i64(w, cl.top1_test);
            json_w_key(w, "max_abs_delta");
            json_w_f64(w, st.max_abs);
            json_w_obj_end(w);
        } else {
            fprintf(o->out, "%-5zu %-8d %-12.8f %-12.4g %-10d %-10d %.4g\n", t, (int)o->tokens[t],
                    st.cosine, cl.kl, (int)cl.top1_ref, (int)cl.top1_test, st.max_abs);
        }
    }
}

/* 1 (and why) when a gate fails: NaN/Inf, --fail-cos (default 0.999), --fail-kl,
 * --fail-top1; else 0 */
static int cmp_verdict(const struct run_opts *o, const struct cmp_sum *cs, double fail_cos,
                       char *why, size_t cap)
{
    const double top1 = (double)cs->agree / (double)cs->n;

    if (cs->n_bad)
        snprintf(why, cap, "%llu NaN or Inf logits", (unsigned long long)cs->n_bad);
    else if (!(cs->min_cos >= fail_cos))
        snprintf(why, cap, "cosine %.8f < %g at position %zu", cs->min_cos, fail_cos,
                 cs->worst_pos);
    else if (o->fail_kl >= 0 && !(cs->max_kl <= o->fail_kl))
        snprintf(why, cap, "KL %.4g > %g at position %zu", cs->max_kl, o->fail_kl, cs->kl_pos);
    else if (o->fail_top1 >= 0 && !(top1 >= o->fail_top1))
        snprintf(why, cap, "top-1 agreement %.4f < %g", top1, o->fail_top1);
    else
        return 0;
    return 1;
}

/* the end of --compare's JSON object: the summary, the first divergent stage, the verdict */
static void cmp_json_tail(const struct run_opts *o, const struct cmp_sum *cs,
                          const struct stage_cmp *sb, int differ, struct json_w *w)
{
    json_w_arr_end(w);
    json_w_key(w, "min_cosine");
    json_w_f64(w, cs->min_cos);
    json_w_key(w, "max_kl");
    json_w_f64(w, cs->max_kl);
    json_w_key(w, "mean_kl");
    json_w_f64(w, cs->sum_kl / (double)cs->n);
    json_w_key(w, "top1_agreement");
    json_w_f64(w, (double)cs->agree / (double)cs->n);
    json_w_key(w, "max_abs_delta");
    json_w_f64(w, cs->max_abs);
    if (o->save_stages) {
        json_w_key(w, "first_divergent_stage");
        if (sb->found) {
            json_w_obj(w);
            json_w_key(w, "stage");
            json_w_str(w, rt_stage_name(sb->first.st));
            json_w_key(w, "layer");
            if (sb->first.layer == RT_LAYER_MODEL)
                json_w_null(w);
            else
                json_w_i64(w, sb->first.layer);
            json_w_key(w, "cosine");
            json_w_f64(w, sb->first_cos);
            json_w_obj_end(w);
        } else {
            json_w_null(w);
        }
    }
    json_w_key(w, "same");
    json_w_bool(w, !differ);
    json_w_obj_end(w);
}

/* the end of --compare's text: the summary, the first divergent stage, the verdict */
static void cmp_text_tail(const struct run_opts *o, const struct cmp_sum *cs,
                          const struct stage_cmp *sb, double fail_cos, int differ,
                          const char *why)
{
    fprintf(o->out, "min cosine %.8f (position %zu), max KL %.4g, mean KL %.4g, top-1 "
            "agreement %zu/%zu, max |delta| %.4g\n", cs->min_cos, cs->worst_pos, cs->max_kl,
            cs->sum_kl / (double)cs->n, cs->agree, cs->n, cs->max_abs);
    if (o->save_stages && sb->found) {
        if (sb->first.layer == RT_LAYER_MODEL)
            fprintf(o->out, "first divergent stage: %s (cosine %.6f, max |delta| %.4g)\n",
                    rt_stage_name(sb->first.st), sb->first_cos, sb->first_max);
        else
            fprintf(o->out, "first divergent stage: layer %d %s (cosine %.6f, max |delta| "
                    "%.4g)\n", sb->first.layer, rt_stage_name(sb->first.st), sb->first_cos,
                    sb->first_max);
    } else if (o->save_stages) {
        fprintf(o->out, "no stage below cosine %g (%u stages compared)\n", fail_cos,
                sb->n_compared);
    }
    fprintf(o->out, differ ? "different: %s\n" : "same%s\n", why);
}

static int compare(const struct run_opts *o, struct err *e)
{
    struct loaded A, B;     /* A = OTHER (the reference), B = MODEL (under test) */
    struct stage_cmp sa, sb;
    struct rt_hook ha = { cmp_hook, &sa, 0, 0, 0 }, hb = { cmp_hook, &sb, 0, 0, 0 };
    const size_t np = o->n_tokens;
    const double fail_cos = o->fail_cos >= -1 ? o->fail_cos : 0.999;
    float *la = NULL, *lb = NULL;
    struct cmp_sum cs;
    struct sbuf js = SBUF_INIT((size_t)1 << 30);
    struct json_w w;
    int64_t nv;
    int rc = -1, differ;
    char why[256] = "";

    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    memset(&cs, 0, sizeof cs);
    if (run_load(&A, o, o->other, np, o->n_batch == 1, e))
        return -1;
    if (run_load(&B, o, o->model, np, o->n_batch == 1, e)) {
        run_unload(&A);
        return -1;
    }
    nv = B.rm.c.n_vocab;
    if (A.rm.c.n_vocab != B.rm.c.n_vocab) {
        ERR(e, ERR_MISMATCH, "'%s' has %u tokens in its vocabulary, '%s' %u: logits do not "
            "compare", o->other, A.rm.c.n_vocab, o->model, B.rm.c.n_vocab);
        goto out;
    }
    la = malloc(np * (size_t)nv * sizeof *la);
    lb = malloc(np * (size_t)nv * sizeof *lb);
    if (!la || !lb) {
        ERR(e, ERR_NOMEM, "out of memory for %zu x %lld logits", np, (long long)nv);
        goto out;
    }
    if (o->save_stages)
        cmp_hooks(o, &A, &B, &sa, &sb, &ha, &hb, fail_cos);
    if (rt_eval(A.ctx, o->tokens, (int)np, 0, la, RT_EVAL_ALL_LOGITS, e) ||
        rt_eval(B.ctx, o->tokens, (int)np, 0, lb, RT_EVAL_ALL_LOGITS, e))
        goto out;
    if (o->json) {
        json_w_init(&w, &js, 0);
        json_w_obj(&w);
        json_w_key(&w, "model");
        json_w_str(&w, o->model);
        json_w_key(&w, "other");
        json_w_str(&w, o->other);
        json_w_key(&w, "positions");
        json_w_arr(&w);
    }
    cmp_positions(o, la, lb, nv, &cs, o->json ? &w : NULL);
    differ = cmp_verdict(o, &cs, fail_cos, why, sizeof why);
    if (o->json) {
        cmp_json_tail(o, &cs, &sb, differ, &w);
        if (sbuf_check(&js, "JSON output", e))
            goto out;
        fwrite(js.p, 1, js.len, o->out);
        fputc('\n', o->out);
    } else {
        cmp_text_tail(o, &cs, &sb, fail_cos, differ, why);
    }
    if (o->save_stages && o->diag)
        fprintf(o->diag, "apr-run: wrote %u + %u stage tensor file(s) under %s and %s\n",
                sa.save.n_written, sb.save.n_written, sa.save.dir, sb.save.dir);
    rc = differ;
out:
    sbuf_release(&js);
    stage_cmp_release(&sa);
    free(la);
    free(lb);
    run_unload(&A);
    run_unload(&B);
    return rc;
}

/* --parity: the CPU (reference) and cuda:N on the same tokens (runtime/cuda/rt_parity.h) */
static int parity(const struct run_opts *o, struct err *e)
{
#ifdef APR_CUDA
    struct rt_parity_opts po;

    memset(&po, 0, sizeof po);
    po.device = o->device >= 0 ? o->device : 0;
    po.min_cos = o->fail_cos >= -1 ? o->fail_cos : -3;    /* -3: the model's default */
    po.max_kl = o->fail_kl >= 0 ? o->fail_kl : 1e-3;
    po.top1_margin = 0.05;
    po.dump_dir = o->save_dir;
    po.n_threads = o->n_threads;
    return rt_parity_main(o->model, o->tokens, o->n_tokens, &po, o->json, o->out, o->diag, e);
#else
    (void)o;
    return ERR(e, ERR_USAGE, "--parity: this apr-run was built without CUDA (make CUDA=1)");
#endif
}

int run_exec(const struct run_opts *o, struct err *e)
{
    if (o->parity)
        return parity(o, e);
    if (o->perplexity)
        return run_perplexity(o, e);
    if (!o->n_tokens)
        return ERR(e, ERR_USAGE, "no prompt: give --tokens");
    if (o->n_tokens > INT32_MAX / 2)
        return ERR(e, ERR_LIMIT, "prompt of %zu tokens is too long", o->n_tokens);
    if (o->other)
        return compare(o, e);
    return generate(o, e);
}
