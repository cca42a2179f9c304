/*
 * threads.h - a tiny parallel-for over pthreads.
 *
 * threads_run(n_threads, n_items, fn, arg) calls fn(arg, begin, end, worker) on
 * disjoint contiguous ranges that cover [0, n_items), one range per worker, and
 * waits for all of them.  n_threads <= 1 (or one item) runs inline on the caller.
 * fn returns 0 or -1; threads_run returns -1 if any call did.  Nothing allocates
 * per item; a worker's scratch memory is the caller's business (index it by worker).
 */
#ifndef THREADS_H
#define THREADS_H

#include <stdint.h>

typedef int (*threads_fn)(void *arg, int64_t begin, int64_t end, int worker);

int threads_run(int n_threads, int64_t n_items, threads_fn fn, void *arg);
/* CPUs this process may run on (its affinity mask; at least 1). */
int threads_ncpu(void);

#endif
