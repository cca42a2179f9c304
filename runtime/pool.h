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

#include <stddef.h>

#include "../common/err.h"

struct rt_pool;

typedef void (*rt_pool_fn)(void *ctx, int i, int n);

/* 0, or -1 with e set (ERR_NOMEM, or ERR_INTERNAL when a thread cannot start). */
int  rt_pool_create(struct rt_pool **p, int n_threads, struct err *e);
void rt_pool_run(struct rt_pool *p, rt_pool_fn fn, void *ctx, int n);
/*
 * A scratch buffer owned by the pool, at least `bytes` long and 64-byte aligned, kept
 * between calls (grown when a call needs more, freed by rt_pool_free): per-call
 * buffers of the runtime (rt_matmul's converted activations) come from here instead
 * of malloc.  The contents are undefined; the buffer is valid until the next
 * rt_pool_scratch or rt_pool_free on the pool, so ONE user at a time (the caller of
 * rt_pool_run, which is never reentrant anyway).  NULL for a NULL pool or when out of
 * memory: the caller then allocates itself.
 */
void *rt_pool_scratch(struct rt_pool *p, size_t bytes);
/* Threads of the pool (the caller included); 1 for NULL. */
int  rt_pool_threads(const struct rt_pool *p);
void rt_pool_free(struct rt_pool *p);

#endif
