/*
 * rt_parity.h - the CPU-vs-GPU parity gate (apr-run --parity).
 *
 * The same model and the same tokens through the CPU backend (the reference) and the
 * CUDA backend, teacher-forced, all positions in one prompt pass.  Per position: cosine
 * of the logits, KL(softmax(cpu) || softmax(gpu)), top-1 agreement and the CPU's
 * top-two margin, NaN/Inf counts (compare/compare.h).  The gate fails when any position
 * has cosine < min_cos, KL > max_kl, a non-finite GPU logit where the CPU's is finite,
 * or a different top-1 where the CPU's top-two margin exceeds top1_margin.
 *
 * On failure both backends run again with every stage hooked: the CPU's stages are kept
 * and each GPU stage is compared when it is produced, in forward order; the first whose
 * cosine falls under stage_cos (or that holds a NaN/Inf the CPU's lacks) is named, with
 * its layer.  With dump_dir, both sides' stages are written as APRT files under
 * dump_dir/cpu and dump_dir/gpu with aprender's paths (layer-N/<stage>.bin), so
 * `apr-diff DIR/cpu DIR/gpu` shows the same.
 */
#ifndef RT_PARITY_H
#define RT_PARITY_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../rt.h"

struct rt_parity_opts {
    int         device;          /* cuda:N */
    double      min_cos;         /* per-position logit cosine; default 0.9999 quantized, 0.99999 float */
    double      max_kl;          /* per-position KL; default 1e-3 */
    double      top1_margin;     /* top-1 must agree where the CPU's top-two margin exceeds this; 0.05 */
    double      stage_cos;       /* first divergent stage: cosine under this; default min_cos */
    const char *dump_dir;        /* NULL: no dumps */
    int         n_threads;       /* CPU threads; <= 0 all */
};

struct rt_parity_pos {
    double   cos, kl, max_abs, margin;
    int32_t  top1_cpu, top1_gpu;
    uint64_t nan_cpu, nan_gpu, inf_cpu, inf_gpu;
    int      ok;
};

struct rt_parity_result {
    int      n;                   /* positions */
    struct rt_parity_pos *pos;    /* [n], malloc'd: rt_parity_free */
    int      pass;
    double   worst_cos, max_kl;
    int      top1_agree;          /* positions whose top-1 agree */
    /* on failure: the first divergent stage (stage < 0: none found) */
    int      stage, layer;
    double   stage_cos;
    uint64_t stage_nan_gpu;
    double   gpu_ms, cpu_ms;      /* prompt pass wall time of each backend */
    char     notes[1024];         /* the CUDA backend's notes */
    int      dumped;              /* stage dumps written under dump_dir */
    char     dump_note[512];      /* why they were not (the gate's verdict stands) */
};

/* The default cosine bound of a model: 0.99999 when every matrix is F32/F16/BF16, else 0.9999. */
double rt_parity_default_cos(const struct rt_model *rm);

/* Run the gate.  0 with r filled (r->pass says the verdict), -1 with e set on trouble. */
int  rt_parity(const struct rt_model *rm, const int32_t *tok, int n, const struct rt_parity_opts *o,
               struct rt_parity_result *r, struct err *e);
void rt_parity_free(struct rt_parity_result *r);

/*
 * apr-run --parity: open MODEL, run the gate on tok[0..n), print the per-position table
 * and the verdict to out (JSON with json), notes to diag.  On failure the stages are
 * dumped under o->dump_dir (NULL: <model dir>/<model stem>-parity).  Returns 0 pass,
 * 1 fail, -1 trouble (e set).
 */
int rt_parity_main(const char *model, const int32_t *tok, size_t n, const struct rt_parity_opts *o,
                   int json, FILE *out, FILE *diag, struct err *e);

#ifdef __cplusplus
}
#endif

#endif
