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
#include "rt.h"
#include "../common/json.h"
#include "../common/ofile.h"
#include "../common/sbuf.h"
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

struct loaded {
    struct model    m;
    struct rt_model rm;
    struct rt_ctx  *ctx;
};

static void unload(struct loaded *L)
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

static int load(struct loaded *L, const struct run_opts *o, const char *path, uint64_t need,
                struct err *e)
{
    struct rt_params p = { 0, o->n_threads, o->n_batch, NULL, (enum rt_rope_freq)o->rope_freq };

    memset(L, 0, sizeof *L);
    if (model_open(&L->m, path, e))
        return -1;
    if (rt_model_load(&L->rm, &L->m, e) || pick_ctx(o, &L->rm.c, need, &p.n_ctx, e) ||
        rt_ctx_new(&L->ctx, &L->rm, &p, e)) {
        unload(L);
        return -1;
    }
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
    int64_t nv;
    int rc = -1;

    if (load(&L, o, o->model, np + (uint64_t)o->n_predict, e))
        return -1;
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
        json_w_obj(&w);
        json_w_key(&w, "model");
        json_w_str(&w, o->model);
        json_w_key(&w, "n_vocab");
        json_w_i64(&w, nv);
        json_w_key(&w, "prompt");
        json_w_arr(&w);
        for (size_t i = 0; i < np; i++)
            json_w_i64(&w, o->tokens[i]);
        json_w_arr_end(&w);
        json_w_key(&w, "prompt_top");
        json_w_arr(&w);
        for (size_t i = 0; i < np; i++)
            json_topk(&w, logits + i * (size_t)nv, nv, o->top_k);
        json_w_arr_end(&w);
        json_w_key(&w, "generated");
        json_w_arr(&w);
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
        } else {
            fprintf(o->out, "%s%d", n_gen > 1 ? " " : "", (int)id);
            fflush(o->out);
        }
        if ((!o->ignore_eos && L.rm.c.eos_id >= 0 && id == L.rm.c.eos_id) ||
            n_gen == (size_t)o->n_predict)
            break;
        if (rt_eval(L.ctx, &id, 1, (int)(n_hist - 1), logits, 0, e))
            goto out;
        last = logits;
    }
    t_gen = now_s() - t0;
    if (o->json) {
        json_w_arr_end(&w);
        json_w_key(&w, "tokens");
        json_w_arr(&w);
        for (size_t i = np; i < n_hist; i++)
            json_w_i64(&w, hist[i]);
        json_w_arr_end(&w);
        json_w_key(&w, "timings");
        json_w_obj(&w);
        json_w_key(&w, "prompt_s");
        json_w_f64(&w, t_prompt);
        json_w_key(&w, "prompt_tokens_per_s");
        json_w_f64(&w, np / (t_prompt > 0 ? t_prompt : 1e-9));
        json_w_key(&w, "gen_s");
        json_w_f64(&w, t_gen);
        json_w_key(&w, "gen_tokens_per_s");
        json_w_f64(&w, n_gen > 1 ? (n_gen - 1) / (t_gen > 0 ? t_gen : 1e-9) : 0);
        json_w_key(&w, "threads");
        json_w_i64(&w, L.ctx->n_threads);
        json_w_obj_end(&w);
        json_w_obj_end(&w);
        if (sbuf_check(&js, "JSON output", e))
            goto out;
        fwrite(js.p, 1, js.len, o->out);
        fputc('\n', o->out);
    } else if (n_gen) {
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
    free(hist);
    free(logits);
    unload(&L);
    return rc;
}

int run_exec(const struct run_opts *o, struct err *e)
{
    if (!o->n_tokens)
        return ERR(e, ERR_USAGE, "no prompt: give --tokens");
    if (o->n_tokens > INT32_MAX / 2)
        return ERR(e, ERR_LIMIT, "prompt of %zu tokens is too long", o->n_tokens);
    return generate(o, e);
}
