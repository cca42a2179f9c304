/*
 * pool.h - a persistent pthread pool for the runtime's parallel loops (issue 12).
 *
 * rt_pool_create starts n_threads - 1 workers (the caller is worker 0); n_threads <= 0
 * means threads_ncpu(), the CPUs in this process's affinity mask (common/threads.h).
 *
 * rt_pool_run(p, fn, ctx, n) calls fn(ctx, i, n) exactly once for every part i in
 * [0, n) and returns when all calls have returned.  Parts are handed out to the
 * threads dynamically (an atomic counter), so WHICH thread runs a part varies from
 * run to run: fn must make part i's result depend on i and n only (split outputs,
 * never a reduction), which is what keeps the runtime deterministic whatever the
 * thread count.  n <= 0 means one part per thread (rt_pool_threads).  p == NULL runs
 * every part inline on the caller.  fn must not call rt_pool_run on the same pool.
 *
 * Idle workers spin briefly (a few tens of microseconds) for the next job, since a
 * forward pass issues hundreds of small jobs per token, then sleep on a condition
 * variable, so an idle pool costs no CPU.
 */
#ifndef RT_POOL_H
#define RT_POOL_H

#include "../common/err.h"

struct rt_pool;

typedef void (*rt_pool_fn)(void *ctx, int i, int n);

/* 0, or -1 with e set (ERR_NOMEM, or ERR_INTERNAL when a thread cannot start). */
int  rt_pool_create(struct rt_pool **p, int n_threads, struct err *e);
void rt_pool_run(struct rt_pool *p, rt_pool_fn fn, void *ctx, int n);
/* Threads of the pool (the caller included); 1 for NULL. */
int  rt_pool_threads(const struct rt_pool *p);
void rt_pool_free(struct rt_pool *p);

#endif
