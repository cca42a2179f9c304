/* progress.c - a throttled progress bar on stderr; see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void progress_start(struct progress *p, const char *label, uint64_t total)
{
    p->label = label;
    p->total = total;
    p->done = 0;
    p->drawn = 0;
    p->start_ns = p->last_ns = now_ns();
    p->enabled = isatty(STDERR_FILENO) && !getenv("APR_NO_PROGRESS") && total > 0;
}

static void draw(struct progress *p, uint64_t done)
{
    const int width = 30;
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    double secs = (double)(now_ns() - p->start_ns) / 1e9;
    int fill;
    char bar[64];

    if (frac > 1.0)
        frac = 1.0;
    fill = (int)(frac * width);
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r%s [%s] %3d%% %.1f/%.1f MiB %.0f MiB/s ", p->label, bar, (int)(frac * 100),
            (double)done / 1048576.0, (double)p->total / 1048576.0,
            secs > 0 ? (double)done / 1048576.0 / secs : 0.0);
    p->drawn = 1;
}

void progress_add(struct progress *p, uint64_t n)
{
    uint64_t done, t, last;

    if (!p || !p->enabled)
        return;
    done = __atomic_add_fetch(&p->done, n, __ATOMIC_RELAXED);
    t = now_ns();
    last = __atomic_load_n(&p->last_ns, __ATOMIC_RELAXED);
    if (t - last < 100000000u)
        return;
    if (!__atomic_compare_exchange_n(&p->last_ns, &last, t, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;   /* another thread is drawing */
    draw(p, done);
}

void progress_done(struct progress *p)
{
    if (!p || !p->enabled || !p->drawn)
        return;
    fprintf(stderr, "\r%*s\r", 80, "");
    p->drawn = 0;
}
