/*
 * bench_util.h - what the C benchmarks of tests/bench share: the monotonic clock, and
 * the parsing of their small numeric options.  Header-only: each benchmark is one file.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* seconds on the monotonic clock */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* s as a number in 1..1000, or a message naming prog and exit 2 */
static inline int bench_int(const char *prog, const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < 1 || v > 1000) {
        fprintf(stderr, "%s: bad number '%s' (1..1000)\n", prog, s);
        exit(2);
    }
    return (int)v;
}

#endif
