/*
 * pool.c - the runtime's persistent pthread pool; see pool.h.
 *
 * One job at a time.  The caller publishes (fn, ctx, n), resets the part counter,
 * bumps the generation number and wakes sleepers; every thread (the caller too)
 * takes parts from the counter until none is left; the last worker to finish
 * wakes the caller.  The generation number is read under the mutex before a
 * worker sleeps, so a wake-up cannot be lost.
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
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
#define POOL_SPINS 4000    /* pause loops before sleeping: ~10-40 us */

struct rt_pool {
    int              n_threads;
    pthread_t       *tids;
    int              n_started;
    pthread_mutex_t  mu;
    pthread_cond_t   wake, done;
    atomic_uint      gen;        /* bumped once per job */
    atomic_int       next;       /* next part to take */
    atomic_int       busy;       /* workers (not the caller) still in the job */
    atomic_int       stop;
    int              sleepers;   /* under mu */
    rt_pool_fn       fn;
    void            *ctx;
    int              n;
    void            *scratch;    /* rt_pool_scratch */
    size_t           scratch_len;
};

static void run_parts(struct rt_pool *p)
{
    int i;

    while ((i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed)) < p->n)
        p->fn(p->ctx, i, p->n);
}

static void *worker_main(void *arg)
{
    struct rt_pool *p = arg;
    unsigned seen = 0;

    for (;;) {
        unsigned g;
        int spins = 0;

        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_acquire) && spins < POOL_SPINS) {
            CPU_RELAX();
            spins++;
        }
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        run_parts(p);
        if (atomic_fetch_sub_explicit(&p->busy, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
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
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->busy, 0);
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

void rt_pool_run(struct rt_pool *p, rt_pool_fn fn, void *ctx, int n)
{
    if (n <= 0)
        n = rt_pool_threads(p);
    if (!p || p->n_started == 0 || n == 1) {
        for (int i = 0; i < n; i++)
            fn(ctx, i, n);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->n_started, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_parts(p);

    for (int spins = 0; atomic_load_explicit(&p->busy, memory_order_acquire) > 0; spins++) {
        if (spins < POOL_SPINS) {
            CPU_RELAX();
            continue;
        }
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->busy) > 0)
            pthread_cond_wait(&p->done, &p->mu);
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
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p->scratch);
    free(p);
}
