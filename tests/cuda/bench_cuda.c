/*
 * bench_cuda.c - make bench-cuda: a Llama-2-7B-shaped model (hidden 4096, 32 layers,
 * 32 heads, FFN 11008, vocab 32000, random weights) quantized here by our own
 * quantizers into Q4_K_M (llama-quantize's per-tensor mix, convert/quant_mix.h), Q8_0
 * and F16, run by the CUDA backend: prompt processing (512 tokens) and decode (batch 1,
 * 128 tokens from an empty cache) in tokens/s, beside the decode roofline = copy
 * bandwidth (bytes read + written by a 1 GiB device-to-device copy, measured in this
 * run) / weight bytes read per token.  Medians of 3 runs after a warm-up.
 *
 * To keep generation short (our reference Q4_K quantizer runs at a few M elements/s a
 * thread), the layers' matrices of one role and one type share one random draw: every
 * layer still has its own device copy, so the bytes read per token are those of a 7B.
 *
 * Usage: bench_cuda [N_LAYER [GGUF_DIR]]   (32 layers by default; fewer for a quick look)
 * BENCH_QUICK=1 leaves out the kernel profile and the other levels' decode.
 * With GGUF_DIR each model is also written there as 7b-<TYPE>.gguf (llama.cpp's
 * tensor names and keys, tokenizer "no_vocab" with 32000 dummy tokens), so that
 * llama-bench measures the very same weights.
 */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/err.h"
#include "../../common/threads.h"
#include "../../convert/quant_mix.h"
#include "../../dequant/cuda/cu.h"
#include "../../dequant/dq.h"
#include "../../formats/dtype.h"
#include "../../formats/gguf/gguf.h"
#include "../../formats/model.h"
#include "../../runtime/pool.h"
#include "../../runtime/rt.h"
#include "../../runtime/cuda/rt_cuda.h"
#include "../../runtime/cuda/rtc_ops.h"
#include "../../common/banned.h"

/* "_Z6k_mmvqILi12ELi2ELi4E...EEv..." to "k_mmvq<12,2,4,...>" (the profile's names) */
static void short_name(const char *m, char *o, size_t n)
{
    const char *p = m;
    size_t k = 0;
    long len;
    if (strncmp(p, "_Z", 2) != 0 || (len = strtol(p + 2, (char **)&p, 10)) <= 0 || (size_t)len >= n) {
        snprintf(o, n, "%s", m);
        return;
    }
    memcpy(o, p, (size_t)len);
    k = (size_t)len;
    p += len;
    if (*p == 'I') {
        p++;
        o[k++] = '<';
        while (*p == 'L' && k + 24 < n) {
            while (*p && (*p < '0' || *p > '9'))
                p++;
            long v = strtol(p, (char **)&p, 10);
            k += (size_t)snprintf(o + k, n - k, "%ld,", v);
            if (*p == 'E')
                p++;
        }
        o[k - 1] = '>';
    }
    o[k] = 0;
}

#define N_MIX 3
static const char *mix_names[N_MIX] = { "Q4_K_M", "Q8_0", "F16" };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct gen { float *f; int64_t n; uint64_t seed; float amp; };

static void gen_task(void *arg, int i, int n_parts)
{
    struct gen *g = arg;
    int64_t lo = g->n * i / n_parts, hi = g->n * (i + 1) / n_parts;
    uint64_t s = g->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(i + 1));
    for (int64_t k = lo; k < hi; k++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        g->f[k] = g->amp * (float)((double)(s >> 11) * 0x1p-52 - 1.0);
    }
}

struct tens { char name[64]; int64_t rows, cols; int role; struct rt_mat *dst[N_MIX]; };

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* n decode steps at positions 0 .. n - 1 (tokens tok[0 .. n - 1]); *ts: tokens/s, or NULL */
static int decode_n(struct rt_ctx *ctx, const int32_t *tok, int n, float *logits, double *ts, struct err *e)
{
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (rt_eval(ctx, tok + i, 1, i, logits, 0, e))
            return -1;
    if (ts)
        *ts = n / (now_s() - t0);
    return 0;
}

/* one line of the decode profile: kernel i of kp */
static void kprof_line(const struct rt_cuda_kprof *kp, int i)
{
    char sn[64];
    short_name(kp[i].name, sn, sizeof sn);
    printf("      [%3d] %-44s grid %6u x %3u %8.2f us\n", i, sn, kp[i].grid, kp[i].block, kp[i].us);
}

/* ---- the GGUF copy of a generated model (for llama-bench) */

static struct slice sl(const char *p) { struct slice r = { p, strlen(p) }; return r; }

static void kv_u32(struct model_kv *kv, const char *k, uint32_t v)
{
    memset(kv, 0, sizeof *kv);
    kv->key = sl(k);
    kv->val.type = MV_U32;
    kv->val.v.u = v;
}

static void kv_f32(struct model_kv *kv, const char *k, double v)
{
    memset(kv, 0, sizeof *kv);
    kv->key = sl(k);
    kv->val.type = MV_F32;
    kv->val.v.f = v;
}

static void kv_str(struct model_kv *kv, const char *k, const char *v)
{
    memset(kv, 0, sizeof *kv);
    kv->key = sl(k);
    kv->val.type = MV_STR;
    kv->val.v.s = sl(v);
}

static void tensor2(struct model_tensor *t, const char *name, const struct rt_mat *m, struct err *e)
{
    memset(t, 0, sizeof *t);
    t->name = sl(name);
    t->dtype = m->dtype;
    t->n_dims = 2;
    for (int i = 0; i < MODEL_MAX_DIMS; i++)
        t->shape[i] = 1;
    t->shape[0] = m->rows;
    t->shape[1] = m->cols;
    t->n_elems = m->rows * m->cols;
    dtype_nbytes(m->dtype, t->n_elems, &t->size, e);
    t->data = m->data;
}

static void tensor1(struct model_tensor *t, const char *name, const float *v, int64_t n)
{
    memset(t, 0, sizeof *t);
    t->name = sl(name);
    t->dtype = DT_F32;
    t->n_dims = 1;
    for (int i = 0; i < MODEL_MAX_DIMS; i++)
        t->shape[i] = 1;
    t->shape[0] = n;
    t->n_elems = n;
    t->size = (uint64_t)n * 4;
    t->data = (const uint8_t *)v;
}

static int write_gguf(const char *path, const struct rt_model *rm, const char *mix, struct err *e)
{
    const struct model_config *c = &rm->c;
    int nl = (int)c->n_layer, nt = 3 + 9 * nl, i = 0;
    struct model m;
    struct model_kv kv[16];
    struct model_tensor *t = calloc((size_t)nt, sizeof *t);
    char (*names)[48] = calloc((size_t)nt, 48);
    char title[64];
    int rc;
    if (!t || !names) {
        free(t);
        free(names);
        return ERR(e, ERR_NOMEM, "out of memory");
    }
    snprintf(title, sizeof title, "bench-cuda 7B-shaped %s (random weights)", mix);
    memset(&m, 0, sizeof m);
    kv_str(&kv[0], "general.architecture", "llama");
    kv_str(&kv[1], "general.name", title);
    kv_u32(&kv[2], "llama.context_length", c->n_ctx_train);
    kv_u32(&kv[3], "llama.embedding_length", c->n_embd);
    kv_u32(&kv[4], "llama.block_count", c->n_layer);
    kv_u32(&kv[5], "llama.feed_forward_length", c->n_ff);
    kv_u32(&kv[6], "llama.rope.dimension_count", c->n_rot);
    kv_u32(&kv[7], "llama.attention.head_count", c->n_head);
    kv_u32(&kv[8], "llama.attention.head_count_kv", c->n_head_kv);
    kv_f32(&kv[9], "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    kv_f32(&kv[10], "llama.rope.freq_base", c->rope_theta);
    kv_u32(&kv[11], "llama.vocab_size", c->n_vocab);
    kv_str(&kv[12], "tokenizer.ggml.model", "no_vocab");
    m.kv = kv;
    m.n_kv = 13;
    tensor2(&t[i++], "token_embd.weight", &rm->tok_embd, e);
    tensor1(&t[i++], "output_norm.weight", rm->output_norm, c->n_embd);
    tensor2(&t[i++], "output.weight", &rm->output, e);
    for (int l = 0; l < nl; l++) {
        const struct rt_layer *L = &rm->layers[l];
        const struct rt_mat *ms[7] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        static const char *ln[7] = { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                     "ffn_down" };
        snprintf(names[i], 48, "blk.%d.attn_norm.weight", l);
        tensor1(&t[i], names[i], L->attn_norm, c->n_embd);
        i++;
        snprintf(names[i], 48, "blk.%d.ffn_norm.weight", l);
        tensor1(&t[i], names[i], L->ffn_norm, c->n_embd);
        i++;
        for (int k = 0; k < 7; k++, i++) {
            snprintf(names[i], 48, "blk.%d.%s.weight", l, ln[k]);
            tensor2(&t[i], names[i], ms[k], e);
        }
    }
    m.tensors = t;
    m.n_tensors = (uint64_t)i;
    rc = gguf_write(&m, path, NULL, e);
    free(t);
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    struct err e = ERR_INIT;
    int n_dev = 0;
    char why[256];
    cu_device_count(&n_dev, why, sizeof why);
    if (n_dev == 0) {
        printf("bench_cuda: skipped: %s\n", why);
        return 0;
    }
    int n_layer = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 32;
    struct cu_info info;
    if (cu_open(0, &info, &e)) {
        fprintf(stderr, "bench_cuda: %s\n", e.msg);
        return 2;
    }
    /* copy bandwidth, same run */
    double bw;
    {
        size_t cb = (size_t)1 << 30;
        void *a, *b;
        cudaMalloc(&a, cb);
        cudaMalloc(&b, cb);
        cudaMemset(a, 1, cb);
        double t[10];
        for (int i = 0; i < 11; i++) {
            cudaDeviceSynchronize();
            double t0 = now_s();
            cudaMemcpy(b, a, cb, cudaMemcpyDeviceToDevice);
            cudaDeviceSynchronize();
            if (i)
                t[i - 1] = now_s() - t0;
        }
        qsort(t, 10, sizeof t[0], cmpd);
        bw = 2.0 * cb / t[5];
        cudaFree(a);
        cudaFree(b);
    }

    struct rt_model rm[N_MIX];
    memset(rm, 0, sizeof rm);
    struct model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch, sizeof c.arch, "llama");
    c.n_layer = (uint32_t)n_layer;
    c.n_embd = 4096;
    c.n_head = 32;
    c.n_head_kv = 32;
    c.head_dim = 128;
    c.n_ff = 11008;
    c.n_vocab = 32000;
    c.n_ctx_train = 4096;
    c.n_rot = 128;
    c.rope_style = ROPE_NORM;
    c.rope_theta = 10000;
    c.norm_eps = 1e-5;
    c.bos_id = 1;
    c.eos_id = 2;
    c.qk_rows_permuted = 1;

    /* the tensors, in GGUF names, and each mix's plan */
    int nt = 2 + 7 * n_layer;
    struct tens *T = calloc((size_t)nt, sizeof *T);
    struct qmix_tensor *qt = calloc((size_t)nt, sizeof *qt);
    float *norm = malloc(4096 * 4);
    for (int i = 0; i < 4096; i++)
        norm[i] = 1.0f;
    for (int k = 0; k < N_MIX; k++) {
        rm[k].c = c;
        rm[k].layers = calloc((size_t)n_layer, sizeof *rm[k].layers);
        rm[k].output_norm = norm;
        for (int l = 0; l < n_layer; l++)
            rm[k].layers[l].attn_norm = rm[k].layers[l].ffn_norm = norm;
    }
    {
        int i = 0;
        const char *ln[7] = { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down" };
        int64_t shp[7][2] = { { 4096, 4096 }, { 4096, 4096 }, { 4096, 4096 }, { 4096, 4096 },
                              { 11008, 4096 }, { 11008, 4096 }, { 4096, 11008 } };
        snprintf(T[i].name, 64, "token_embd.weight");
        T[i].rows = 32000; T[i].cols = 4096;
        T[i].role = 7;
        for (int k = 0; k < N_MIX; k++) T[i].dst[k] = &rm[k].tok_embd;
        i++;
        snprintf(T[i].name, 64, "output.weight");
        T[i].rows = 32000; T[i].cols = 4096;
        T[i].role = 8;
        for (int k = 0; k < N_MIX; k++) T[i].dst[k] = &rm[k].output;
        i++;
        for (int l = 0; l < n_layer; l++)
            for (int j = 0; j < 7; j++, i++) {
                snprintf(T[i].name, 64, "blk.%d.%s.weight", l, ln[j]);
                T[i].rows = shp[j][0];
                T[i].cols = shp[j][1];
                T[i].role = j;
                for (int k = 0; k < N_MIX; k++) {
                    struct rt_layer *L = &rm[k].layers[l];
                    struct rt_mat *m[7] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
                    T[i].dst[k] = m[j];
                }
            }
    }
    int types[N_MIX][2 + 7 * 64];
    for (int k = 0; k < N_MIX; k++) {
        const struct qmix *mx = qmix_find(mix_names[k], &e);
        struct qmix_model mm = { "llama", (uint32_t)n_layer, 32, 32, 1 };
        for (int i = 0; i < nt; i++) {
            qt[i].name = T[i].name;
            qt[i].n_dims = 2;
            qt[i].shape[0] = T[i].rows;
            qt[i].shape[1] = T[i].cols;
            qt[i].shape[2] = qt[i].shape[3] = 1;
        }
        if (!mx || qmix_plan(mx, 0, &mm, qt, (size_t)nt, &e)) {
            fprintf(stderr, "bench_cuda: %s: %s\n", mix_names[k], e.msg);
            return 2;
        }
        for (int i = 0; i < nt; i++)
            types[k][i] = qt[i].out < 0 ? DT_F32 : qt[i].out;
    }

    /* one random draw per role, quantized once per type it needs (shared by layers) */
    struct rt_pool *pool;
    if (rt_pool_create(&pool, 0, &e)) {
        fprintf(stderr, "bench_cuda: %s\n", e.msg);
        return 2;
    }
    double tg0 = now_s();
    float *f = malloc((size_t)32000 * 4096 * 4);
    void *cache[9][DT_COUNT];
    memset(cache, 0, sizeof cache);
    for (int role = 0; role < 9; role++) {
        int have = 0;
        for (int i = 0; i < nt; i++) {
            if (T[i].role != role)
                continue;
            int64_t n = T[i].rows * T[i].cols;
            if (!have) {
                struct gen g = { f, n, 0x1234567ull + (uint64_t)role * 7919, 0.05f };
                rt_pool_run(pool, gen_task, &g, 64);
                have = 1;
            }
            for (int k = 0; k < N_MIX; k++) {
                int t = types[k][i];
                if (!cache[role][t]) {
                    uint64_t nb;
                    dtype_nbytes(t, n, &nb, &e);
                    cache[role][t] = malloc(nb);
                    if (!cache[role][t] ||
                        dq_quantize_mt(t, f, cache[role][t], T[i].rows, T[i].cols, 0, &e)) {
                        fprintf(stderr, "bench_cuda: %s: %s\n", T[i].name, e.msg);
                        return 2;
                    }
                }
                if (rt_mat_init(T[i].dst[k], t, T[i].rows, T[i].cols, cache[role][t], &e)) {
                    fprintf(stderr, "bench_cuda: %s: %s\n", T[i].name, e.msg);
                    return 2;
                }
            }
        }
    }
    free(f);
    double tgen = now_s() - tg0;
    printf("device: %s (%d SMs, %.1f GiB), d2d copy %.0f GB/s (read + write, 1 GiB)\n", info.name,
           info.sm_count, (double)info.mem_total / (1 << 30), bw / 1e9);
    printf("model: llama %d layers, hidden 4096, 32 heads, FFN 11008, vocab 32000; generated and "
           "quantized on %d threads in %.1f s\n", n_layer, threads_ncpu(), tgen);

    if (argc > 2)
        for (int k = 0; k < N_MIX; k++) {
            char path[4096];
            double tw = now_s();
            snprintf(path, sizeof path, "%s/7b-%s.gguf", argv[2], mix_names[k]);
            if (write_gguf(path, &rm[k], mix_names[k], &e)) {
                fprintf(stderr, "bench_cuda: %s\n", e.msg);
                return 2;
            }
            printf("wrote %s in %.1f s\n", path, now_s() - tw);
        }

    int32_t *tok = malloc(512 * 4);
    for (int i = 0; i < 512; i++)
        tok[i] = (int32_t)((i * 7919 + 13) % 32000);
    float *logits = malloc(32000 * 4);
    printf("%-7s %9s %12s %14s %12s %10s\n", "type", "weights", "pp512 tok/s", "tg128 tok/s", "roofline", "% roof");
    for (int k = 0; k < N_MIX; k++) {
        struct rt_params p;
        struct rt_ctx *ctx = NULL;
        memset(&p, 0, sizeof p);
        p.n_ctx = 640;
        p.n_batch = 512;
        p.n_threads = 1;
        p.backend = rt_cuda_backend(0);
        if (rt_ctx_new(&ctx, &rm[k], &p, &e)) {
            fprintf(stderr, "bench_cuda: %s: %s\n", mix_names[k], e.msg);
            return 2;
        }
        double pp[3], tg[3], tgp[3];
        const int pdl = rtc_pdl();
        /* warm-up: a prompt, then a few decode steps (captures the graph) */
        if (rt_eval(ctx, tok, 512, 0, logits, 0, &e))
            goto fail;
        if (decode_n(ctx, tok, 4, logits, NULL, &e))
            goto fail;
        for (int r = 0; r < 3; r++) {
            double t0 = now_s();
            if (rt_eval(ctx, tok, 512, 0, logits, 0, &e))
                goto fail;
            pp[r] = 512 / (now_s() - t0);
            if (decode_n(ctx, tok, 128, logits, &tg[r], &e))
                goto fail;
        }
        qsort(pp, 3, sizeof pp[0], cmpd);
        qsort(tg, 3, sizeof tg[0], cmpd);
        double wb = (double)rt_cuda_weight_bytes(ctx), roof = bw / wb;
        char notes[512];
        snprintf(notes, sizeof notes, "%s", rt_cuda_notes(ctx));
        const int quick = getenv("BENCH_QUICK") != NULL;
        if (!quick) {
            /* one decode step kernel by kernel: totals by kernel, and the second layer's run */
            static struct rt_cuda_kprof kp[1024];
            int nk = 0;
            double step = 0, sum = 0;
            if (rt_cuda_decode_profile(ctx, 5, kp, 1024, &nk, &step, &e) == 0) {
                char nm[1024][64];
                double tot[1024];
                int cnt[1024], nu = 0;
                for (int i = 0; i < nk; i++) {
                    char sn[64];
                    short_name(kp[i].name, sn, sizeof sn);
                    sum += kp[i].us;
                    int j = 0;
                    while (j < nu && strcmp(nm[j], sn) != 0)
                        j++;
                    if (j == nu) {
                        snprintf(nm[nu], sizeof nm[nu], "%s", sn);
                        tot[nu] = 0;
                        cnt[nu++] = 0;
                    }
                    tot[j] += kp[i].us;
                    cnt[j]++;
                }
                printf("  profile %s: %d kernels, %.1f us one by one, %.1f us as the graph\n", mix_names[k], nk, sum,
                       step);
                for (int j = 0; j < nu; j++)
                    printf("    %-44s x%-4d %9.1f us %5.1f%%\n", nm[j], cnt[j], tot[j], 100 * tot[j] / sum);
                int per = (nk - 4) / 32 > 0 ? (nk - 4) / 32 : 0;     /* kernels a layer, about */
                for (int i = 1 + per; i < 1 + 2 * per && i < nk; i++)
                    kprof_line(kp, i);
                for (int i = nk - 3 > 0 ? nk - 3 : 0; i < nk; i++)
                    kprof_line(kp, i);
            } else {
                printf("  profile %s: %s\n", mix_names[k], e.msg);
                e = (struct err)ERR_INIT;
            }
        }
        rt_ctx_free(ctx);
        ctx = NULL;
        /* the same decode at the other levels of programmatic launch (a fresh context
         * each: its graph is captured at that level), same run */
        double tgl[4] = { 0, 0, 0, 0 };
        tgl[pdl] = tg[1];
        for (int lv = 0; lv < 4 && !quick; lv++) {
            if (lv == pdl)
                continue;
            rtc_set_pdl(lv);
            if (rt_ctx_new(&ctx, &rm[k], &p, &e))
                goto fail;
            if (decode_n(ctx, tok, 4, logits, NULL, &e))
                goto fail;
            for (int r = 0; r < 3; r++)
                if (decode_n(ctx, tok, 128, logits, &tgp[r], &e))
                    goto fail;
            qsort(tgp, 3, sizeof tgp[0], cmpd);
            tgl[lv] = tgp[1];
            rt_ctx_free(ctx);
            ctx = NULL;
        }
        rtc_set_pdl(pdl);
        printf("%-7s %7.2f GB %12.0f %14.1f %12.1f %9.0f%%\n", mix_names[k], wb / 1e9, pp[1], tg[1], roof,
               100 * tg[1] / roof);
        printf("        tg128 by PDL level (APR_CUDA_PDL, %d in use): 0: %.1f (%.0f%%)  1: %.1f (%.0f%%)  2: %.1f (%.0f%%)"
               "  3: %.1f (%.0f%%)\n", pdl, tgl[0], 100 * tgl[0] / roof, tgl[1], 100 * tgl[1] / roof, tgl[2],
               100 * tgl[2] / roof, tgl[3], 100 * tgl[3] / roof);
        printf("        (%s)\n", notes);
        continue;
fail:
        fprintf(stderr, "bench_cuda: %s: %s\n", mix_names[k], e.msg);
        return 2;
    }
    rt_pool_free(pool);
    return 0;
}
