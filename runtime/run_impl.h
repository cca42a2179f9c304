/*
 * run_impl.h - what run.c shares with run_ppl.c (not installed): a model opened,
 * bound and given a context for one apr-run job.
 */
#ifndef RUN_IMPL_H
#define RUN_IMPL_H

#include "../formats/model.h"
#include "rt.h"
#include "run.h"

struct loaded {
    struct model    m;
    struct rt_model rm;
    struct rt_ctx  *ctx;
};

/* Open path, bind its weights and make a context of at least need positions (--ctx,
 * else the model's default), one that makes one-token steps (decode: the CPU backend
 * then repacks what its decode kernels read faster so) or not; -1 with e set, nothing
 * left open. */
int  run_load(struct loaded *L, const struct run_opts *o, const char *path, uint64_t need,
              int decode, struct err *e);
void run_unload(struct loaded *L);   /* accepts a zeroed one */

/* --perplexity / --perplexity-ids (run_ppl.c) */
int  run_perplexity(const struct run_opts *o, struct err *e);

#endif
