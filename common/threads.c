/* threads.c - a tiny parallel-for over pthreads; see threads.h. */
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "banned.h"

#define THREADS_MAX 256

struct job {
    threads_fn fn;
    void      *arg;
    int64_t    begin, end;
    int        worker, rc;
};

static void *job_main(void *p)
{
    struct job *j = p;
    j->rc = j->fn(j->arg, j->begin, j->end, j->worker);
    return NULL;
}

int threads_run(int n_threads, int64_t n_items, threads_fn fn, void *arg)
{
    struct job jobs[THREADS_MAX];
    pthread_t tids[THREADS_MAX];
    int started[THREADS_MAX] = { 0 };
    int rc = 0;

    if (n_items <= 0)
        return 0;
    if (n_threads > THREADS_MAX)
        n_threads = THREADS_MAX;
    if ((int64_t)n_threads > n_items)
        n_threads = (int)n_items;
    if (n_threads <= 1)
        return fn(arg, 0, n_items, 0);
    for (int w = 0; w < n_threads; w++) {
        jobs[w].fn = fn;
        jobs[w].arg = arg;
        jobs[w].begin = n_items * w / n_threads;
        jobs[w].end = n_items * (w + 1) / n_threads;
        jobs[w].worker = w;
        jobs[w].rc = 0;
    }
    for (int w = 1; w < n_threads; w++)
        started[w] = pthread_create(&tids[w], NULL, job_main, &jobs[w]) == 0;
    /* Worker 0 runs on the caller; a worker whose thread failed to start runs here too. */
    job_main(&jobs[0]);
    for (int w = 1; w < n_threads; w++) {
        if (started[w])
            pthread_join(tids[w], NULL);
        else
            job_main(&jobs[w]);
    }
    for (int w = 0; w < n_threads; w++)
        if (jobs[w].rc)
            rc = -1;
    return rc;
}

int threads_ncpu(void)
{
    cpu_set_t set;
    long n;

    /* The CPUs this process may run on (taskset, cgroups' cpusets), not all online ones. */
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    else
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > THREADS_MAX ? THREADS_MAX : (int)n);
}
