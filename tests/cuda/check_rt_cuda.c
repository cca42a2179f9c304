/*
 * check_rt_cuda.c - the CUDA forward pass against the CPU forward pass (rt.h), on every
 * fixture model: the parity gate passes with its default bounds (cosine >= 0.99999 per
 * position for F32/F16/BF16 weights, >= 0.9999 quantized; KL <= 1e-3; top-1 equal where
 * the CPU's top-two margin exceeds 0.05); one-token decode through the CUDA graph
 * matches the CPU's teacher-forced logits; and the planted fault (APR_CUDA_FAULT=
 * gemv_transposed) fails the gate and is located at layer 0's qkv_matmul.
 * Skips without a device.
 *
 * Usage: check_rt_cuda FIXTURES_DIR [MODEL...]   (models default to every FIXTURES/gguf .gguf
 * and FIXTURES/hf/<dir>)
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/err.h"
#include "../../dequant/cuda/cu.h"
#include "../../formats/model.h"
#include "../../runtime/rt.h"
#include "../../runtime/cuda/rt_cuda.h"
#include "../../runtime/cuda/rt_parity.h"
#include "../../runtime/cuda/rtc_ops.h"
#include "../../compare/compare.h"
#include "../../dequant/dq.h"
#include "../fixtures/gguf_fix.h"
#include "../../common/banned.h"

static int n_pass, n_fail, n_skip;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", cond ? "ok" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (cond)
        n_pass++;
    else
        n_fail++;
}

#define N_TOK 24
static const int32_t toks[N_TOK] = { 1, 5, 42, 99, 7, 300, 12, 77, 500, 3, 260, 261, 262, 400, 401,
                                     11, 13, 17, 19, 23, 29, 31, 37, 41 };

/*
 * The decode step at each programmatic-launch level (APR_CUDA_PDL, rtc_set_pdl): the
 * levels change the int8 matrix kernels' rows a block, their L2 prefetch and which
 * launches may start early; a row's sum and every kernel's arithmetic stay the same, so
 * the logits must be the same bits at every level.  The prompt (8 tokens) on the exact
 * path, the decode on the fast one (the attention kernel the graph runs).
 */
static void decode_levels(struct rt_model *rm, const int32_t *tk, int n, const char *name)
{
    const int64_t nv = rm->c.n_vocab;
    const size_t per = (size_t)(n - 8) * nv;
    float *lg[4] = { NULL, NULL, NULL, NULL };
    struct err e = ERR_INIT;
    int rc = 0, lv0 = rtc_pdl();
    for (int lv = 0; lv < 4 && !rc; lv++) {
        struct rt_params p;
        struct rt_ctx *c = NULL;
        memset(&p, 0, sizeof p);
        p.n_ctx = n;
        p.n_threads = 4;
        p.backend = rt_cuda_backend(0);
        rtc_set_pdl(lv);
        rc = !(lg[lv] = malloc(per * 4)) || rt_ctx_new(&c, rm, &p, &e) || (rt_cuda_set_exact(c, 1), 0) ||
             rt_eval(c, tk, 8, 0, lg[lv], 0, &e);
        if (!rc)
            rt_cuda_set_exact(c, 0);
        for (int t = 8; !rc && t < n; t++)
            rc = rt_eval(c, tk + t, 1, t, lg[lv] + (size_t)(t - 8) * nv, 0, &e);
        rt_ctx_free(c);
    }
    rtc_set_pdl(lv0);
    int diff = -1;
    for (int lv = 1; lv < 4 && !rc && diff < 0; lv++)
        for (size_t i = 0; i < per; i++)
            if (memcmp(&lg[0][i], &lg[lv][i], 4)) {
                diff = (int)(8 + i / (size_t)nv);
                printf("  level %d differs from level 0 first at position %d, logit %lld: %.9g vs %.9g\n", lv,
                       diff, (long long)(i % (size_t)nv), lg[lv][i], lg[0][i]);
                break;
            }
    ok(!rc && diff < 0, "%s decode positions 8..%d at APR_CUDA_PDL levels 0, 1, 2, 3: the same logits, bit for bit %s",
       name, n - 1, e.msg);
    for (int lv = 0; lv < 4; lv++)
        free(lg[lv]);
}

static void one_model(const char *path)
{
    struct model m;
    struct rt_model rm;
    struct err e = ERR_INIT;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    memset(&rm, 0, sizeof rm);
    if (model_open(&m, path, &e) || rt_model_load(&rm, &m, &e)) {
        ok(0, "%s loads: %s", name, e.msg);
        if (m.n_tensors)
            model_close(&m);
        return;
    }
    int n = N_TOK;
    int32_t tk[N_TOK];
    for (int i = 0; i < n; i++)
        tk[i] = toks[i] % (int32_t)rm.c.n_vocab;

    struct rt_parity_opts o;
    struct rt_parity_result r;
    memset(&o, 0, sizeof o);
    o.min_cos = rt_parity_default_cos(&rm);
    o.max_kl = 1e-3;
    o.top1_margin = 0.05;
    o.n_threads = 4;
    if (rt_parity(&rm, tk, n, &o, &r, &e)) {
        ok(0, "%s parity runs: %s", name, e.msg);
    } else {
        ok(r.pass, "%s parity (%s): %d positions, worst cosine %.9f (bound %g), max KL %.3g, "
           "top-1 %d/%d, gpu %.1f ms cpu %.1f ms [%s]", name, rm.c.arch, r.n, r.worst_cos,
           o.min_cos, r.max_kl, r.top1_agree, r.n, r.gpu_ms, r.cpu_ms, r.notes);
        if (!r.pass)
            printf("  first divergent stage: %s layer %d (cosine %.6f)\n",
                   r.stage >= 0 ? rt_stage_name((enum rt_stage)r.stage) : "none", r.layer, r.stage_cos);
        rt_parity_free(&r);
    }

    /* decode: prompt of 8, then one token at a time (the CUDA graph), against the CPU's
     * teacher-forced logits of the whole sequence */
    {
        struct rt_params p;
        struct rt_ctx *cg = NULL;
        int64_t nv = rm.c.n_vocab;
        float *ref = malloc((size_t)n * nv * 4), *got = malloc((size_t)nv * 4);
        double worst = 1;
        memset(&p, 0, sizeof p);
        p.n_ctx = n;
        p.n_threads = 4;
        struct rt_ctx *cc = NULL;
        int rc = rt_ctx_new(&cc, &rm, &p, &e) || rt_eval(cc, tk, n, 0, ref, RT_EVAL_ALL_LOGITS, &e);
        rt_ctx_free(cc);
        p.backend = rt_cuda_backend(0);
        /* the prompt on the CPU's numerics (rt_cuda_set_exact), as the gate runs it */
        rc = rc || rt_ctx_new(&cg, &rm, &p, &e) || (rt_cuda_set_exact(cg, 1), 0) ||
             rt_eval(cg, tk, 8, 0, got, 0, &e);
        for (int t = 8; !rc && t < n; t++) {
            struct cmp_acc a;
            struct cmp_stats s;
            rc = rt_eval(cg, tk + t, 1, t, got, 0, &e);
            cmp_init(&a);
            cmp_add(&a, ref + (size_t)t * nv, got, (size_t)nv);
            cmp_finish(&a, &s);
            if (!(s.cosine >= worst))
                worst = s.cosine;
        }
        ok(!rc && worst >= rt_parity_default_cos(&rm),
           "%s decode positions 8..%d one token at a time (CUDA graph): worst cosine %.9f %s", name,
           n - 1, worst, e.msg);
        /* the tensor-core prompt path against the same CPU logits: measured, not gated
         * (the gate keeps the exact path) */
        if (!rc) {
            struct rt_ctx *cf = NULL;
            float *all = malloc((size_t)n * nv * 4);
            double wf = 1;
            if (all && !rt_ctx_new(&cf, &rm, &p, &e) && (rt_cuda_set_exact(cf, 0), 1) &&
                !rt_eval(cf, tk, n, 0, all, RT_EVAL_ALL_LOGITS, &e)) {
                for (int t = 0; t < n; t++) {
                    struct cmp_acc a;
                    struct cmp_stats st;
                    cmp_init(&a);
                    cmp_add(&a, ref + (size_t)t * nv, all + (size_t)t * nv, (size_t)nv);
                    cmp_finish(&a, &st);
                    if (!(st.cosine >= wf))
                        wf = st.cosine;
                }
                printf("info - %s tensor-core prompt path vs CPU: worst cosine %.9f over %d positions "
                       "(gate bound %g)\n", name, wf, n, rt_parity_default_cos(&rm));
            }
            rt_ctx_free(cf);
            free(all);
        }
        rt_ctx_free(cg);
        free(ref);
        free(got);
    }

    decode_levels(&rm, tk, n, name);

    /* the planted fault must fail the gate and be found where it is */
    setenv("APR_CUDA_FAULT", "gemv_transposed", 1);
    err_clear(&e);
    if (rt_parity(&rm, tk, n, &o, &r, &e)) {
        ok(0, "%s parity with the planted fault runs: %s", name, e.msg);
    } else {
        ok(!r.pass && r.stage == RT_ST_QKV_MATMUL && r.layer == 0,
           "%s planted fault: gate %s, worst cosine %.4f, first divergent stage %s layer %d (cosine %.4f)",
           name, r.pass ? "PASSED" : "failed", r.worst_cos,
           r.stage >= 0 ? rt_stage_name((enum rt_stage)r.stage) : "none", r.layer, r.stage_cos);
        rt_parity_free(&r);
    }
    unsetenv("APR_CUDA_FAULT");
    rt_model_free(&rm);
    model_close(&m);
}

/*
 * A qwen3 model built here (../shared/fixtures/hf holds llama and qwen2 only): QK-norm,
 * GQA 8/2, head_dim 64 != n_embd / n_head, no biases, untied output, 2 layers, all
 * matrices in one type.  Written to a temporary GGUF and run through one_model (parity
 * gate, one-token decode, planted fault).
 */
static int qwen3_build(const char *path, int dt, struct err *e)
{
    enum { L = 2, EMBD = 256, HEADS = 8, KV = 2, HD = 64, FF = 512, VOCAB = 512, CTX = 128 };
    static const char *const names[] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                         "ffn_gate", "ffn_up", "ffn_down" };
    struct model m;
    char name[96];
    uint32_t seed = 0x51E3u;
    memset(&m, 0, sizeof m);
    if (fx_init(&m, "qwen3-test.gguf", e))
        return -1;
    fx_str(&m, "general.architecture", "qwen3", e);
    fx_uint(&m, "qwen3.block_count", MV_U32, L, e);
    fx_uint(&m, "qwen3.context_length", MV_U32, CTX, e);
    fx_uint(&m, "qwen3.embedding_length", MV_U32, EMBD, e);
    fx_uint(&m, "qwen3.feed_forward_length", MV_U32, FF, e);
    fx_uint(&m, "qwen3.attention.head_count", MV_U32, HEADS, e);
    fx_uint(&m, "qwen3.attention.head_count_kv", MV_U32, KV, e);
    fx_uint(&m, "qwen3.attention.key_length", MV_U32, HD, e);
    fx_uint(&m, "qwen3.attention.value_length", MV_U32, HD, e);
    fx_uint(&m, "qwen3.rope.dimension_count", MV_U32, HD, e);
    fx_uint(&m, "qwen3.vocab_size", MV_U32, VOCAB, e);
    fx_float(&m, "qwen3.rope.freq_base", MV_F32, 1000000.0, e);
    fx_float(&m, "qwen3.attention.layer_norm_rms_epsilon", MV_F32, 1e-6, e);
    struct { const char *n; int dt, nd; int64_t sh[2]; float c, sc; } T[3 + L * 11];
    int nt = 0;
#define ADD(nm, d, nd_, r, cl, cen, scl) do { T[nt].n = strdup(nm); T[nt].dt = (d); T[nt].nd = (nd_); \
        T[nt].sh[0] = (r); T[nt].sh[1] = (cl); T[nt].c = (cen); T[nt].sc = (scl); nt++; } while (0)
    ADD("token_embd.weight", dt, 2, VOCAB, EMBD, 0.0f, 0.5f);
    ADD("output_norm.weight", DT_F32, 1, EMBD, 1, 1.0f, 0.1f);
    ADD("output.weight", dt, 2, VOCAB, EMBD, 0.0f, 0.125f);
    for (int l = 0; l < L; l++) {
        int64_t sh[7][2] = { { HEADS * HD, EMBD }, { KV * HD, EMBD }, { KV * HD, EMBD }, { EMBD, HEADS * HD },
                             { FF, EMBD }, { FF, EMBD }, { EMBD, FF } };
        for (int k = 0; k < 7; k++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[k]);
            ADD(name, dt, 2, sh[k][0], sh[k][1], 0.0f, 1.5f / sqrtf((float)sh[k][1]));
        }
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        ADD(name, DT_F32, 1, EMBD, 1, 1.0f, 0.2f);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        ADD(name, DT_F32, 1, EMBD, 1, 1.0f, 0.2f);
        snprintf(name, sizeof name, "blk.%d.attn_q_norm.weight", l);
        ADD(name, DT_F32, 1, HD, 1, 1.0f, 0.3f);
        snprintf(name, sizeof name, "blk.%d.attn_k_norm.weight", l);
        ADD(name, DT_F32, 1, HD, 1, 1.0f, 0.3f);
    }
#undef ADD
    for (int i = 0; i < nt; i++) {
        int64_t n = T[i].sh[0] * T[i].sh[1];
        float *v = malloc((size_t)n * 4);
        uint8_t *p = v ? fx_tensor(&m, T[i].n, T[i].dt, T[i].nd, T[i].sh, e) : NULL;
        if (v)
            fx_fill_f32((uint8_t *)v, (uint64_t)n, seed++, T[i].c, T[i].sc);
        if (p && dq_quantize(T[i].dt, v, p, T[i].nd == 1 ? 1 : T[i].sh[0], T[i].nd == 1 ? T[i].sh[0] : T[i].sh[1], e))
            p = NULL;
        free(v);
        free((void *)T[i].n);
        if (!p && err_ok(e))
            ERR(e, ERR_NOMEM, "out of memory");
    }
    int rc = err_ok(e) ? gguf_write(&m, path, NULL, e) : -1;
    model_close(&m);
    return rc;
}

static void qwen3_models(void)
{
    const int dts[] = { DT_F32, DT_BF16, DT_Q8_0, DT_Q4_K };
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        char path[] = "/tmp/apr-qwen3-XXXXXX";
        int fd = mkstemp(path);
        struct err e = ERR_INIT;
        if (fd < 0) {
            ok(0, "qwen3 %s: mkstemp failed", dtype_name(dts[i]));
            continue;
        }
        close(fd);
        if (qwen3_build(path, dts[i], &e))
            ok(0, "qwen3 %s: building the model: %s", dtype_name(dts[i]), e.msg);
        else
            one_model(path);
        unlink(path);
    }
}

int main(int argc, char **argv)
{
    char why[256];
    int n_dev = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    cu_device_count(&n_dev, why, sizeof why);
    if (n_dev == 0) {
        printf("skip - CUDA forward pass and parity gate: %s\n", why);
        printf("cuda-rt: 0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    const char *fx = argc > 1 ? argv[1] : "../shared/fixtures";
    if (argc > 2) {
        for (int i = 2; i < argc; i++)
            one_model(argv[i]);
    } else {
        const char *sub[] = { "gguf", "hf" };
        for (int k = 0; k < 2; k++) {
            char d[2048];
            snprintf(d, sizeof d, "%s/%s", fx, sub[k]);
            DIR *dir = opendir(d);
            struct dirent *de;
            if (!dir) {
                printf("skip - %s: no such directory\n", d);
                n_skip++;
                continue;
            }
            while ((de = readdir(dir))) {
                size_t l = strlen(de->d_name);
                char p[4096];
                if (de->d_name[0] == '.' || (k == 0 && (l < 6 || strcmp(de->d_name + l - 5, ".gguf"))) ||
                    strcmp(de->d_name, "vocab") == 0 || strcmp(de->d_name, "refs") == 0)
                    continue;
                snprintf(p, sizeof p, "%s/%s", d, de->d_name);
                one_model(p);
            }
            closedir(dir);
        }
        qwen3_models();
    }
    printf("cuda-rt: %d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}
