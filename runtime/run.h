/*
 * run.h - apr-run's work, callable from tests: generation, teacher-forced logits,
 * tracing and stage dumps, model-vs-model comparison and perplexity (run_ppl.c).  main.c only
 * parses options into struct run_opts.
 */
#ifndef RUN_H
#define RUN_H

#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"
#include "sample.h"

struct tokenizer;

struct run_opts {
    const char    *model;            /* MODEL */
    const char    *other;            /* --compare OTHER, or NULL */
    const int32_t *tokens;           /* the prompt (--tokens) */
    size_t         n_tokens;
    int            n_predict;        /* -n: tokens to generate */
    int            ignore_eos;       /* keep generating after the end-of-sequence token */
    struct rt_sampler_params sp;
    const char    *logits_path;      /* --logits FILE: teacher-forced prompt logits */
    int            json;             /* --json */
    int            top_k;            /* candidates per position in --json */
    int            verbose;          /* -v: speeds on diag */
    int            trace;            /* --trace: per-stage statistics on out */
    uint32_t       save_stages;      /* --save-tensor: stage mask (0: off) */
    const char    *save_dir;         /* --save-tensor-dir; NULL: <model dir>/<stem>-trace */
    int            save_lo, save_hi; /* --save-tensor-layers A..B (B exclusive) */
    int            n_ctx;            /* --ctx; 0: default */
    int            n_threads;        /* -t; 0: every CPU */
    int            n_batch;          /* prompt tokens per pass; 0: 512 */
    int            rope_freq;        /* --rope-freq-dtype: enum rt_rope_freq */
    double         fail_cos;         /* --fail-cos: minimum per-position cosine (< -1: 0.999) */
    double         fail_kl;          /* --fail-kl: maximum per-position KL (< 0: off) */
    double         fail_top1;        /* --fail-top1: minimum top-1 agreement (< 0: off) */
    const char    *perplexity;       /* --perplexity FILE (text) or --perplexity-ids FILE */
    int            perplexity_ids;   /* 1: that file holds token ids, not text */
    int            n_chunks;         /* --chunks: at most this many (0: all) */
    int            device;           /* --device: -1 the CPU, N cuda:N (CUDA builds) */
    int            parity;           /* --parity: CPU vs cuda:N gate (exit 0 pass, 1 fail) */
    FILE          *out;              /* results (stdout) */
    FILE          *diag;             /* -v speeds, notes (stderr) */
    const struct tokenizer *tok;     /* -p: generated tokens printed as text through it */
};

#define RUN_OPTS_INIT { .n_predict = 32, .sp = RT_SAMPLER_DEFAULTS, .top_k = 5, .save_lo = 0, \
                        .save_hi = 1, .fail_cos = -2, .fail_kl = -1, .fail_top1 = -1, \
                        .device = -1 }

/*
 * Run what o asks.  Returns the exit status: 0, or for --compare 0 same / 1 different
 * (a gate failed); -1 with e set on trouble (the caller maps it to 1, or 2 for
 * --compare and usage errors).
 */
int run_exec(const struct run_opts *o, struct err *e);

/* Parse "1,5,42" (also spaces or newlines between ids) into a malloc'd array. */
int run_parse_tokens(const char *s, size_t len, int32_t **ids, size_t *n, struct err *e);

#endif
