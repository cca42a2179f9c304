/*
 * diff.h - apr-diff's work, callable from tests without a process.
 *
 * Three comparisons, chosen from what the two paths are (by content, never by name):
 *   models   (GGUF, SafeTensors file/dir/index, APR): a structural diff (format,
 *            typed metadata, tensor set, dtypes, shapes, stored bytes) or, with
 *            values, a per-tensor value diff of the dequantized tensors, paired by
 *            canonical name (formats/names.h) across formats, layout-aware;
 *   dumps    two APRT stage files or two headerless little-endian f32 files;
 *   dump dirs two directories of such files, paired by relative path and reported in
 *            aprender's forward stage order, naming the first divergent stage.
 *
 * Element buckets (|a-b| = d, computed in double): identical d == 0, small d < 1e-3,
 * medium d < 1e-2, large otherwise (aprender's thresholds).  NaN/Inf: a pair that is
 * the same non-finite value (both NaN, or the same infinity) counts as identical, any
 * other pair with a non-finite side is a non-finite mismatch; neither enters the sums.
 *
 * Tensor status (from max d and cosine, in this order):
 *   Critical        a non-finite mismatch, cosine < 0.9, max d >= 1, or not comparable
 *   Identical       max d == 0          NearlyIdentical  max d < 1e-3
 *   SmallDiff       max d < 1e-2        MediumDiff       max d < 0.1
 *   LargeDiff       max d < 1
 * and, when the values match (MediumDiff or better) only under a layout change:
 *   Transposed      the true transpose ([r,c] vs [c,r], element (i,j) vs (j,i))
 *   Reinterpreted   the same flat order under a different shape ("same bytes, different
 *                   meaning": a [r,c] read as [c,r])
 *   Permuted        llama Q/K rows in the other RoPE layout than the names say
 */
#ifndef DIFF_H
#define DIFF_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"

enum diff_sort { DIFF_SORT_NAME = 0, DIFF_SORT_WORST };

/* The default cosine below which a dump stage counts as divergent (dump directories). */
#define DIFF_STAGE_COS 0.999

struct diff_opts {
    int         json;             /* --json */
    int         values;           /* --values: value diff of models */
    int         transpose_aware;  /* --transpose-aware */
    int64_t     limit;            /* --limit N: rows shown (top-K of dumps); -1 none */
    const char *filter;           /* --filter: POSIX extended regex on tensor names */
    int         sort;             /* enum diff_sort */
    double      fail_cos;         /* --fail-cos: NAN when not given */
    double      fail_max;         /* --fail-max */
    double      fail_nmse;        /* --fail-nmse */
    const char *plot;             /* --plot FILE.svg, or NULL */
    int         n_threads;        /* -j: <= 0 all cores */
};

#define DIFF_OPTS_INIT { 0, 0, 0, -1, NULL, DIFF_SORT_NAME, NAN, NAN, NAN, NULL, 0 }

/* Metrics of one pair of equally long f32 arrays (b already in a's order). */
struct diff_metrics {
    uint64_t n;                    /* elements */
    uint64_t n_identical;          /* d == 0, or the same non-finite value */
    uint64_t n_small, n_medium, n_large;
    uint64_t n_nonfinite;          /* non-finite mismatches */
    double   cosine;               /* f64; 1 when both are all zero, 0 when one is */
    double   max_diff;             /* max d over finite pairs */
    int64_t  max_index;            /* flat index of the first max, -1 when none */
    double   mean_diff, rmse;      /* over finite pairs */
    double   nmse;                 /* sum d^2 / sum a^2 (mse / mean square of a); Inf when a is 0 */
    double   rms_a;                /* sqrt(mean a^2) */
};

/* Metrics of a[0..n) against b[0..n) (single thread, deterministic). */
void diff_f32(const float *a, const float *b, int64_t n, struct diff_metrics *out);

/* Status name of metrics alone ("Identical" ... "Critical"). */
const char *diff_status_name(const struct diff_metrics *m);

/*
 * Compare a with b and report to out (text, or JSON with o->json); write o->plot when
 * set.  Returns 0 when the inputs are the same (or within every threshold given),
 * 1 when they differ, -1 with e set on trouble (unreadable or malformed input, bad
 * regex, a model against a dump).
 */
int diff_run(const struct diff_opts *o, const char *a, const char *b, FILE *out, struct err *e);

#endif
