/*
 * rt_parity.cu - the CPU-vs-GPU parity gate (see rt_parity.h).  Host code only.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rt_parity.h"
#include "rt_cuda.h"

extern "C" {
#include "../../formats/model.h"
#include "../../compare/compare.h"
#include "../../formats/apr/aprt.h"
#include "../../formats/dtype.h"
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int is_float_type(int t) { return t == DT_F32 || t == DT_F16 || t == DT_BF16; }

extern "C" double rt_parity_default_cos(const struct rt_model *rm)
{
    int all_float = is_float_type(rm->tok_embd.dtype) && is_float_type(rm->output.dtype);
    for (uint32_t l = 0; l < rm->c.n_layer && all_float; l++) {
        const struct rt_layer *L = &rm->layers[l];
        const struct rt_mat *ms[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int i = 0; i < 7; i++)
            all_float &= is_float_type(ms[i]->dtype);
    }
    return all_float ? 0.99999 : 0.9999;
}

/* ---- stage recording */

struct rec {
    int stage, layer;
    int64_t rows, cols;
    float *v;
};

struct recorder {
    struct rec *r;
    int n, cap;
    /* GPU side: compare against the CPU's records as they come */
    const struct recorder *ref;
    double stage_cos;
    int found, f_stage, f_layer;
    double f_cos;
    uint64_t f_nan;
    const char *dump;                 /* dir for this side's APRT files, or NULL */
    char dump_err[512];               /* why dumping stopped (the gate goes on without) */
};

static int mkdirs(const char *p)
{
    char b[4096];
    snprintf(b, sizeof b, "%s", p);
    for (char *s = b + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(b, 0777) && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(b, 0777) && errno != EEXIST ? -1 : 0;
}

static int dump_stage(const char *dir, enum rt_stage st, int layer, const float *x, int64_t n,
                      struct err *e)
{
    char d[4096], path[4200];
    if (rt_stage_is_model(st))
        snprintf(d, sizeof d, "%s", dir);
    else
        snprintf(d, sizeof d, "%s/layer-%d", dir, layer);
    if (mkdirs(d))
        return ERR_SYS(e, "cannot create '%s'", d);
    snprintf(path, sizeof path, "%s/%s.bin", d, rt_stage_name(st));
    return aprt_write(path, rt_stage_is_model(st) ? 0xFFFFFFFFu : (uint32_t)layer, x, (uint32_t)n, e);
}

static int record(void *ud, enum rt_stage st, int layer, const float *x, int64_t rows, int64_t cols,
                  struct err *e)
{
    struct recorder *R = (struct recorder *)ud;
    int64_t n = rows * cols;
    if (R->dump) {
        struct err de = ERR_INIT;
        if (dump_stage(R->dump, st, layer, x, n, &de)) {
            snprintf(R->dump_err, sizeof R->dump_err, "%s", de.msg);
            R->dump = NULL;
        }
    }
    if (R->ref) {
        if (R->found)
            return 0;
        for (int i = 0; i < R->ref->n; i++) {
            const struct rec *c = &R->ref->r[i];
            if (c->stage != (int)st || c->layer != layer || c->rows * c->cols != n)
                continue;
            struct cmp_acc a;
            struct cmp_stats s;
            cmp_init(&a);
            cmp_add(&a, c->v, x, (size_t)n);
            cmp_finish(&a, &s);
            if (s.cosine < R->stage_cos || s.nan_y + s.inf_y > s.nan_x + s.inf_x) {
                R->found = 1;
                R->f_stage = st;
                R->f_layer = layer;
                R->f_cos = s.cosine;
                R->f_nan = s.nan_y + s.inf_y;
            }
            return 0;
        }
        return 0;
    }
    if (R->n == R->cap) {
        int nc = R->cap ? 2 * R->cap : 64;
        struct rec *nr = (struct rec *)realloc(R->r, (size_t)nc * sizeof *nr);
        if (!nr)
            return ERR(e, ERR_NOMEM, "out of memory recording stages");
        R->r = nr;
        R->cap = nc;
    }
    float *v = (float *)malloc((size_t)n * 4 + 4);
    if (!v)
        return ERR(e, ERR_NOMEM, "out of memory recording stages");
    memcpy(v, x, (size_t)n * 4);
    R->r[R->n++] = (struct rec){ (int)st, layer, rows, cols, v };
    return 0;
}

static void rec_free(struct recorder *R)
{
    for (int i = 0; i < R->n; i++)
        free(R->r[i].v);
    free(R->r);
}

static int run_side(const struct rt_model *rm, const struct rt_backend *be, const int32_t *tok, int n,
                    int n_threads, struct recorder *R, float *logits, double *ms, char *notes,
                    size_t notes_n, struct err *e)
{
    struct rt_params p;
    struct rt_ctx *ctx = NULL;
    memset(&p, 0, sizeof p);
    p.n_ctx = n;
    p.n_threads = n_threads;
    p.n_batch = n;
    p.backend = be;
    p.no_repack = 1;   /* one pass of n tokens: no one-token steps */
    if (rt_ctx_new(&ctx, rm, &p, e))
        return -1;
    if (be != &rt_backend_cpu) {
        /* the gate checks the exact f32 prompt path unless APR_CUDA_GEMM=fast asks
         * for the tensor-core one (rt_cuda.h) */
        const char *g = getenv("APR_CUDA_GEMM");
        rt_cuda_set_exact(ctx, !(g && strcmp(g, "fast") == 0));
    }
    if (notes && be != &rt_backend_cpu)
        snprintf(notes, notes_n, "%s", rt_cuda_notes(ctx));
    if (R) {
        struct rt_hook h;
        h.fn = record;
        h.ud = R;
        h.stages = RT_STAGES_ALL;
        h.layer_lo = 0;
        h.layer_hi = (int)rm->c.n_layer;
        rt_ctx_set_hook(ctx, &h);
    }
    double t0 = now_ms();
    int rc = rt_eval(ctx, tok, n, 0, logits, RT_EVAL_ALL_LOGITS, e);
    if (ms)
        *ms = now_ms() - t0;
    rt_ctx_free(ctx);
    return rc;
}

extern "C" int rt_parity(const struct rt_model *rm, const int32_t *tok, int n,
                         const struct rt_parity_opts *o, struct rt_parity_result *r, struct err *e)
{
    const int64_t nv = rm->c.n_vocab;
    const struct rt_backend *gpu = rt_cuda_backend(o->device);
    float *lc = NULL, *lg = NULL;
    int rc = -1;

    memset(r, 0, sizeof *r);
    r->stage = -1;
    r->layer = -1;
    if (!gpu)
        return ERR(e, ERR_USAGE, "no device cuda:%d", o->device);
    if (n < 1)
        return ERR(e, ERR_USAGE, "parity needs at least one token");
    lc = (float *)malloc((size_t)n * nv * 4);
    lg = (float *)malloc((size_t)n * nv * 4);
    r->pos = (struct rt_parity_pos *)calloc((size_t)n, sizeof *r->pos);
    if (!lc || !lg || !r->pos) {
        ERR(e, ERR_NOMEM, "out of memory for %d x %lld logits", n, (long long)nv);
        goto out;
    }
    if (run_side(rm, &rt_backend_cpu, tok, n, o->n_threads, NULL, lc, &r->cpu_ms, NULL, 0, e) ||
        run_side(rm, gpu, tok, n, o->n_threads, NULL, lg, &r->gpu_ms, r->notes, sizeof r->notes, e))
        goto out;
    r->n = n;
    r->pass = 1;
    r->worst_cos = 1.0;
    for (int t = 0; t < n; t++) {
        struct rt_parity_pos *P = &r->pos[t];
        const float *a = lc + (size_t)t * nv, *b = lg + (size_t)t * nv;
        struct cmp_acc acc;
        struct cmp_stats s;
        struct cmp_logits L;
        cmp_init(&acc);
        cmp_add(&acc, a, b, (size_t)nv);
        cmp_finish(&acc, &s);
        cmp_logits(a, b, (size_t)nv, 5, &L);
        float m1 = -INFINITY, m2 = -INFINITY;
        for (int64_t i = 0; i < nv; i++) {
            if (a[i] > m1) {
                m2 = m1;
                m1 = a[i];
            } else if (a[i] > m2) {
                m2 = a[i];
            }
        }
        P->cos = s.cosine;
        P->kl = L.kl;
        P->max_abs = s.max_abs;
        P->margin = (double)m1 - m2;
        P->top1_cpu = L.top1_ref;
        P->top1_gpu = L.top1_test;
        P->nan_cpu = s.nan_x;
        P->nan_gpu = s.nan_y;
        P->inf_cpu = s.inf_x;
        P->inf_gpu = s.inf_y;
        P->ok = !(s.cosine < o->min_cos) && !(L.kl > o->max_kl) &&
                s.nan_y + s.inf_y <= s.nan_x + s.inf_x &&
                (L.top1_agree || P->margin <= o->top1_margin);
        r->top1_agree += L.top1_agree != 0;
        if (!(s.cosine >= r->worst_cos))
            r->worst_cos = s.cosine;
        if (!(L.kl <= r->max_kl))
            r->max_kl = L.kl;
        if (!P->ok)
            r->pass = 0;
    }
    if (!r->pass) {
        struct recorder cpu_r, gpu_r;
        char dc[4096], dg[4096];
        memset(&cpu_r, 0, sizeof cpu_r);
        memset(&gpu_r, 0, sizeof gpu_r);
        if (o->dump_dir) {
            snprintf(dc, sizeof dc, "%s/cpu", o->dump_dir);
            snprintf(dg, sizeof dg, "%s/gpu", o->dump_dir);
            cpu_r.dump = dc;
            gpu_r.dump = dg;
        }
        gpu_r.ref = &cpu_r;
        gpu_r.stage_cos = o->stage_cos > 0 ? o->stage_cos : o->min_cos;
        if (run_side(rm, &rt_backend_cpu, tok, n, o->n_threads, &cpu_r, lc, NULL, NULL, 0, e) ||
            run_side(rm, gpu, tok, n, o->n_threads, &gpu_r, lg, NULL, NULL, 0, e)) {
            rec_free(&cpu_r);
            goto out;
        }
        if (cpu_r.dump_err[0] || gpu_r.dump_err[0])
            snprintf(r->dump_note, sizeof r->dump_note, "%s",
                     cpu_r.dump_err[0] ? cpu_r.dump_err : gpu_r.dump_err);
        r->dumped = o->dump_dir && !r->dump_note[0];
        if (gpu_r.found) {
            r->stage = gpu_r.f_stage;
            r->layer = gpu_r.f_layer;
            r->stage_cos = gpu_r.f_cos;
            r->stage_nan_gpu = gpu_r.f_nan;
        }
        rec_free(&cpu_r);
    }
    rc = 0;
out:
    free(lc);
    free(lg);
    if (rc)
        rt_parity_free(r);
    return rc;
}

static void default_dump_dir(const char *model, char *buf, size_t n)
{
    const char *slash = strrchr(model, '/');
    size_t dl = slash ? (size_t)(slash - model) : 0;
    const char *base = slash ? slash + 1 : model;
    size_t bl = strlen(base);
    while (bl > 1 && base[bl - 1] == '/')
        bl--;
    const char *dot = (const char *)memrchr(base, '.', bl);
    if (dot && dot > base)
        bl = (size_t)(dot - base);
    if (slash)
        snprintf(buf, n, "%.*s/%.*s-parity", (int)dl, model, (int)bl, base);
    else
        snprintf(buf, n, "%.*s-parity", (int)bl, base);
}

extern "C" int rt_parity_main(const char *model, const int32_t *tok, size_t n,
                              const struct rt_parity_opts *o_in, int json, FILE *out, FILE *diag,
                              struct err *e)
{
    struct model m;
    struct rt_model rm;
    struct rt_parity_result r;
    struct rt_parity_opts o = *o_in;
    char dump[4096];
    int rc;

    memset(&rm, 0, sizeof rm);
    if (model_open(&m, model, e))
        return -1;
    if (rt_model_load(&rm, &m, e)) {
        model_close(&m);
        return -1;
    }
    if (n > (size_t)INT32_MAX / 2) {
        rt_model_free(&rm);
        model_close(&m);
        return ERR(e, ERR_USAGE, "too many tokens");
    }
    for (size_t i = 0; i < n; i++)
        if (tok[i] < 0 || (uint32_t)tok[i] >= rm.c.n_vocab) {
            rt_model_free(&rm);
            model_close(&m);
            return ERR(e, ERR_USAGE, "token %d (position %zu) is outside the vocabulary [0, %u)",
                       (int)tok[i], i, rm.c.n_vocab);
        }
    if (!(o.min_cos > -2))
        o.min_cos = rt_parity_default_cos(&rm);
    if (!o.dump_dir) {
        default_dump_dir(model, dump, sizeof dump);
        o.dump_dir = dump;
    }
    if (rt_parity(&rm, tok, (int)n, &o, &r, e)) {
        rt_model_free(&rm);
        model_close(&m);
        return -1;
    }
    if (r.notes[0])
        fprintf(diag, "apr-run: cuda:%d: %s\n", o.device, r.notes);
    if (r.dump_note[0])
        fprintf(diag, "apr-run: parity: no stage dumps: %s\n", r.dump_note);
    if (json) {
        fprintf(out, "{\"schema\": \"apr-run-parity-v1\", \"model\": \"");
        for (const char *c = model; *c; c++)
            fprintf(out, *c == '"' || *c == '\\' ? "\\%c" : (unsigned char)*c < 32 ? "?" : "%c", *c);
        fprintf(out, "\", \"device\": \"cuda:%d\", \"min_cos\": %.9g, \"max_kl\": %.9g, "
                "\"top1_margin\": %.9g, \"pass\": %s, \"positions\": [", o.device, o.min_cos,
                o.max_kl, o.top1_margin, r.pass ? "true" : "false");
        for (int t = 0; t < r.n; t++) {
            const struct rt_parity_pos *P = &r.pos[t];
            fprintf(out, "%s\n  {\"pos\": %d, \"cosine\": %.12g, \"kl\": %.6g, \"top1_cpu\": %d, "
                    "\"top1_gpu\": %d, \"margin\": %.6g, \"max_abs\": %.6g, \"nan_gpu\": %llu, "
                    "\"inf_gpu\": %llu, \"ok\": %s}", t ? "," : "", t, isfinite(P->cos) ? P->cos : -2.0,
                    isfinite(P->kl) ? P->kl : -1.0, P->top1_cpu, P->top1_gpu, P->margin,
                    isfinite(P->max_abs) ? P->max_abs : -1.0, (unsigned long long)P->nan_gpu,
                    (unsigned long long)P->inf_gpu, P->ok ? "true" : "false");
        }
        fprintf(out, "],\n \"first_divergent\": ");
        if (r.stage >= 0)
            fprintf(out, "{\"stage\": \"%s\", \"layer\": %d, \"cosine\": %.9g}",
                    rt_stage_name((enum rt_stage)r.stage), r.layer,
                    isfinite(r.stage_cos) ? r.stage_cos : -2.0);
        else
            fprintf(out, "null");
        fprintf(out, ", \"dump_dir\": ");
        if (r.dumped)
            fprintf(out, "\"%s\"", o.dump_dir);
        else
            fprintf(out, "null");
        fprintf(out, "}\n");
    } else {
        fprintf(out, "parity: %s on cuda:%d vs cpu, %d positions (cosine >= %g, KL <= %g, "
                "top-1 where the margin > %g)\n", model, o.device, r.n, o.min_cos, o.max_kl,
                o.top1_margin);
        fprintf(out, "%5s %14s %10s %13s %8s %10s %9s %s\n", "pos", "cosine", "KL", "top1 cpu/gpu",
                "margin", "max|d|", "nan/inf", "");
        for (int t = 0; t < r.n; t++) {
            const struct rt_parity_pos *P = &r.pos[t];
            fprintf(out, "%5d %14.9f %10.3g %6d/%-6d %8.3f %10.3g %4llu/%-4llu %s\n", t, P->cos, P->kl,
                    P->top1_cpu, P->top1_gpu, P->margin, P->max_abs,
                    (unsigned long long)P->nan_gpu, (unsigned long long)P->inf_gpu,
                    P->ok ? "ok" : "FAIL");
        }
        if (r.pass)
            fprintf(out, "parity: PASS: worst cosine %.9f, max KL %.3g, top-1 %d/%d\n", r.worst_cos,
                    r.max_kl, r.top1_agree, r.n);
        else {
            fprintf(out, "parity: FAIL: worst cosine %.9f, max KL %.3g, top-1 %d/%d\n", r.worst_cos,
                    r.max_kl, r.top1_agree, r.n);
            if (r.stage >= 0)
                fprintf(out, "parity: first divergent stage: %s, layer %s%d (cosine %.6f%s)\n",
                        rt_stage_name((enum rt_stage)r.stage),
                        r.layer < 0 ? "(whole model) " : "", r.layer, r.stage_cos,
                        r.stage_nan_gpu ? ", NaN/Inf on the GPU" : "");
            else
                fprintf(out, "parity: no single stage under cosine %g: the logits drift without one "
                        "divergent stage\n", o.stage_cos > 0 ? o.stage_cos : o.min_cos);
            if (r.dumped)
                fprintf(out, "parity: stage dumps: %s/cpu %s/gpu (apr-diff them)\n", o.dump_dir, o.dump_dir);
        }
    }
    rc = r.pass ? 0 : 1;
    rt_parity_free(&r);
    rt_model_free(&rm);
    model_close(&m);
    return rc;
}

extern "C" void rt_parity_free(struct rt_parity_result *r)
{
    free(r->pos);
    r->pos = NULL;
}
