/*
 * pool.c - the runtime's persistent pthread pool; see pool.h.
 *
 * One job at a time.  A job is published as ONE 64-bit word, `claim`: its generation (16
 * bits, a change for sleepers and spinners to see), its part count n and the next part
 * to take (24 bits each).  Every thread (the caller too) takes parts with a fetch-add on
 * that word; the index it gets is valid only below the n of the same word, so a thread
 * that comes late (descheduled, or still waking from the condition variable) finds the
 * job finished in the word it reads and touches nothing else of it.  The caller waits
 * for the parts to be DONE (a count the part runners bump), not for every worker to
 * have looked at the job: a worker that took no part cannot hold the caller up (on a
 * shared machine a preempted worker did: each of decode's ~200 jobs a token waited for
 * it to be scheduled again).  fn, ctx are read only by a thread holding a part of the
 * job, and the caller does not publish the next job before every part is done, so they
 * cannot change under it.  The generation is read under the mutex before a worker
 * sleeps, so a wake-up cannot be lost.
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#include "../common/threads.h"
#include "../common/banned.h"

#define POOL_MAX   256
#define POOL_SPINS 4000    /* pause loops before sleeping: ~10-130 us */

/* the claim word: generation << 48 | n << 24 | next part; a part index runs past n by at
 * most one failed claim per thread, so n stays below 2^24 - POOL_MAX */
#define CL_BITS    24
#define CL_MASK    ((UINT64_C(1) << CL_BITS) - 1)
#define CL_GEN(v)  ((unsigned)((v) >> (2 * CL_BITS)))
#define CL_N(v)    ((int)(((v) >> CL_BITS) & CL_MASK))
#define CL_I(v)    ((int)((v) & CL_MASK))
#define POOL_NMAX  (1 << 23)

struct rt_pool {
    int              n_threads;
    pthread_t       *tids;
    int              n_started;
    pthread_mutex_t  mu;
    pthread_cond_t   wake, done_cv;
    _Atomic uint64_t claim;      /* see above */
    atomic_int       done;       /* parts of the job finished */
    atomic_int       stop;
    int              sleepers;   /* under mu */
    rt_pool_fn       fn;
    void            *ctx;
    void            *scratch;    /* rt_pool_scratch */
    size_t           scratch_len;
};

/* Takes and runs parts until none is left; returns the generation of the word that said so. */
static unsigned run_parts(struct rt_pool *p)
{
    for (;;) {
        uint64_t v = atomic_fetch_add_explicit(&p->claim, 1, memory_order_acquire);
        int n = CL_N(v);

        if (CL_I(v) >= n)
            return CL_GEN(v);
        p->fn(p->ctx, CL_I(v), n);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) == n - 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static unsigned gen_now(struct rt_pool *p)
{
    return CL_GEN(atomic_load_explicit(&p->claim, memory_order_acquire));
}

static void *worker_main(void *arg)
{
    struct rt_pool *p = arg;
    unsigned seen = gen_now(p);

    for (;;) {
        unsigned g;
        int spins = 0;

        while ((g = gen_now(p)) == seen && !atomic_load_explicit(&p->stop, memory_order_acquire) &&
               spins < POOL_SPINS) {
            CPU_RELAX();
            spins++;
        }
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (gen_now(p) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = run_parts(p);
    }
}

int rt_pool_create(struct rt_pool **out, int n_threads, struct err *e)
{
    struct rt_pool *p;

    *out = NULL;
    if (n_threads <= 0)
        n_threads = threads_ncpu();
    if (n_threads > POOL_MAX)
        n_threads = POOL_MAX;
    p = calloc(1, sizeof *p);
    if (!p)
        return ERR(e, ERR_NOMEM, "thread pool: out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->claim, 0);   /* generation 0, no parts */
    atomic_init(&p->done, 0);
    atomic_init(&p->stop, 0);
    if (n_threads > 1) {
        p->tids = calloc((size_t)n_threads - 1, sizeof *p->tids);
        if (!p->tids) {
            rt_pool_free(p);
            return ERR(e, ERR_NOMEM, "thread pool: out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&p->tids[i], NULL, worker_main, p) != 0) {
                rt_pool_free(p);
                return ERR(e, ERR_INTERNAL, "thread pool: cannot start thread %d of %d",
                           i + 2, n_threads);
            }
            p->n_started++;
        }
    }
    *out = p;
    return 0;
}

void *rt_pool_scratch(struct rt_pool *p, size_t bytes)
{
    if (!p)
        return NULL;
    if (bytes > p->scratch_len) {
        /* grow by half again at least, so slowly growing sizes reallocate rarely */
        size_t len = bytes + bytes / 2;
        len = (len + 63) & ~(size_t)63;
        if (len < bytes)
            return NULL;
        void *b = aligned_alloc(64, len);
        if (!b)
            return NULL;
        free(p->scratch);
        p->scratch = b;
        p->scratch_len = len;
    }
    return p->scratch;
}

int rt_pool_threads(const struct rt_pool *p)
{
    return p ? p->n_threads : 1;
}

/* a job of more than POOL_NMAX parts runs as several; this maps their parts back */
struct big_job {
    rt_pool_fn fn;
    void      *ctx;
    int        base, n;
};

static void big_part(void *ctx, int i, int n)
{
    const struct big_job *b = ctx;

    (void)n;
    b->fn(b->ctx, b->base + i, b->n);
}

void rt_pool_run(struct rt_pool *p, rt_pool_fn fn, void *ctx, int n)
{
    if (n <= 0)
        n = rt_pool_threads(p);
    if (!p || p->n_started == 0 || n == 1) {
        for (int i = 0; i < n; i++)
            fn(ctx, i, n);
        return;
    }
    if (n > POOL_NMAX) {
        struct big_job b = { fn, ctx, 0, n };
        for (; b.base < n; b.base += POOL_NMAX)
            rt_pool_run(p, big_part, &b, n - b.base < POOL_NMAX ? n - b.base : POOL_NMAX);
        return;
    }
    /* every part of the last job is done, so no thread reads fn, ctx or done now */
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint64_t gen = (uint64_t)(gen_now(p) + 1) & 0xffff;
    atomic_store_explicit(&p->claim, gen << (2 * CL_BITS) | (uint64_t)n << CL_BITS,
                          memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_parts(p);

    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n; spins++) {
        if (spins < POOL_SPINS) {
            CPU_RELAX();
            continue;
        }
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->done) < n)
            pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
        break;
    }
}

void rt_pool_free(struct rt_pool *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->tids[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p->scratch);
    free(p);
}
