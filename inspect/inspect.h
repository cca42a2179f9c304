/*
 * inspect.h - apr-inspect's work, callable from tests without a process.
 */
#ifndef INSPECT_H
#define INSPECT_H

#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"

struct inspect_opts {
    int         json;        /* --json */
    int         full;        /* --full: every array element */
    int         license;     /* --license / --provenance */
    int         stats;       /* --stats */
    int         no_offsets;  /* --no-offsets: diffable output */
    const char *tensor;      /* --tensor NAME, or NULL */
    int64_t     values;      /* --values N (with --tensor), -1 when not asked */
    int         n_threads;   /* -j */
    int         strict;      /* --strict: with --stats, an all-zero or non-finite tensor fails */
};

#define INSPECT_OPTS_INIT { 0, 0, 0, 0, 0, NULL, -1, 0, 0 }

/* Inspect one file, writing to out.  0, or -1 with e set (e names the file). */
int inspect_run(const struct inspect_opts *o, const char *path, FILE *out, struct err *e);

#endif
