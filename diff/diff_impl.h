/*
 * diff_impl.h - apr-diff's internals shared by the files of diff/ (not library API):
 * the statuses, the two sides and their tensor pairs, the value engine's types, the
 * structural and dump records, and the helpers more than one file uses.
 *
 *   util.c        statuses, metrics from the comparison engine, small helpers
 *   pair.c        what a path is, the two sides, pairing tensors by canonical name
 *   values.c      the value engine (jobs over workers) and the layout decisions
 *   report.c      the value diff's text and JSON reports
 *   plot.c        --plot: the SVG picture
 *   structural.c  the structural diff (format, metadata, tensors, dtypes, shapes)
 *   dumps.c       activation dumps (APRT, f32) and dump directories
 *   diff.c        diff_run: the entry
 */
#ifndef APR_TOOLS_DIFF_IMPL_H
#define APR_TOOLS_DIFF_IMPL_H

#include "../common/stream.h"
#include <regex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/json.h"
#include "../common/progress.h"
#include "../common/sbuf.h"
#include "../common/slice.h"
#include "../compare/compare.h"
#include "../formats/model.h"
#include "diff.h"

#define DIFF_COS_CRIT 0.9       /* below this cosine the direction is wrong: Critical */
#define DIFF_CHUNK    65536     /* floats dequantized at a time per side (256 KiB) */
#define DIFF_JOB      (16 * DIFF_CHUNK)   /* elements per job: multiple of every block */
#define DIFF_TOPK     10        /* default top-K of dump diffs */
#define DIFF_MAX_FILES 1000000  /* files per dump directory */
#define OUT_MAX       ((size_t)1 << 31)

#define PLOT_LO  (-12)     /* decades shown: 1e-12 (and anything smaller, zero too) .. 10 */
#define PLOT_HI  1
#define N_STAGES ((int)(sizeof stage_order / sizeof stage_order[0]))

/* ---- statuses ---------------------------------------------------------------------- */

enum st {
    ST_IDENTICAL, ST_NEARLY, ST_SMALL, ST_MEDIUM, ST_LARGE, ST_CRITICAL,
    ST_TRANSPOSED, ST_REINTERPRETED, ST_PERMUTED, ST_COUNT
};

/* ---- what a path is ------------------------------------------------------------------ */

enum kind { K_MODEL, K_APRT, K_RAW, K_DUMPDIR };

/* ---- one side of a model diff -------------------------------------------------------- */

struct side {
    struct model m;
    const char  *path;
    char         arch[64];
    int64_t      n_head, n_head_kv;   /* 0 when unknown */
};

/* ---- pairing ------------------------------------------------------------------------- */

enum map { MAP_FLAT, MAP_ROWPERM, MAP_TRANSPOSE };

struct pair {
    int64_t   ia, ib;          /* tensor indices; -1 when absent on that side */
    char     *key;             /* the pairing key: canonical name (owned) */
    int       layer;           /* from the canonical name; -1 when not a layer tensor */
    /* plan */
    int       comparable;      /* element counts agree (and the types have values) */
    int       perm_kind;       /* enum names_perm for llama Q/K */
    int64_t   heads;           /* H of the Q/K permutation, 0 when unknown */
    int       layouts_differ;  /* one side GGUF row order, the other HF */
    /* result */
    int       done;
    int       map, perm_dir;   /* the comparison reported */
    struct diff_metrics m;
    enum st   status, vstatus;
    int       pass;            /* same (no gates) or within thresholds (gates) */
    int       zero_a, zero_b;  /* that side is all zeros (and the other is not) */
    char      note[160];
};

struct ent {
    char    *key;
    int64_t  idx;
    struct slice name;
};

struct pairs {
    struct pair *v;
    size_t       n;
    uint64_t     n_only_a, n_only_b, n_paired;
};

/* ---- value comparison engine --------------------------------------------------------- */

struct cmp {
    size_t      pair;
    int         map;          /* enum map */
    int         perm_dir;     /* ROWPERM: names_perm_row's to_gguf for A's row -> B's row */
    int         whole;        /* one job: both tensors dequantized whole */
    struct cmp_sums acc;      /* merged result */
};

struct job {
    size_t      cmp;
    int64_t     begin, end;   /* FLAT: elements; ROWPERM: rows of A; whole: unused */
    struct cmp_sums acc;      /* the sums of its elements (a segment of the stream) */
};

struct engine {
    const struct side *A, *B;
    struct pair      *pairs;
    struct cmp       *cmps;
    size_t            n_cmps;
    struct job       *jobs;
    size_t            n_jobs;
    atomic_size_t     next;
    atomic_int        failed;
    struct err       *errs;       /* per worker */
    float           **buf;        /* per worker: 2 buffers each */
    struct stream    *st;         /* per worker: 2 streams each (A's side, B's side) */
    struct cmp_acc   *accs;       /* per worker */
    size_t           *cap;
    struct progress  *prog;
};

/* ---- the picture (--plot) ------------------------------------------------------------ */

struct plot_pt {
    const char *label;    /* borrowed; escaped on output */
    size_t      label_n;
    int         group;    /* layer number, -1 before the layers, INT32_MAX after */
    double      cos_dist; /* 1 - cosine */
    double      rel_err;  /* RMSE / RMS(a) */
    int         bad;      /* 0 identical, 1 close, 2 far: the colour */
    int         valid;
};

/* ---- structural diff ----------------------------------------------------------------- */

enum cat { CAT_FORMAT, CAT_METADATA, CAT_TENSOR, CAT_QUANT, CAT_SIZE, CAT_COUNT };

struct sdiff {
    enum cat    cat;
    const char *change;      /* "added", "removed", "changed" */
    char       *field;       /* owned */
    char       *v1, *v2;     /* owned; NULL when absent */
};

struct sdiffs {
    struct sdiff *v;
    size_t        n, cap;
};

/* ---- activation dumps ---------------------------------------------------------------- */

struct dump {
    float    *v;          /* owned */
    uint64_t  n;
    int       aprt;       /* 1: APRT, 0: headerless f32 */
    uint32_t  layer;      /* APRT only */
};

struct top {
    int64_t index;
    float   a, b;
    double  d;            /* Inf for a non-finite mismatch */
};

struct stage {
    char         *rel;     /* relative path (directories) or NULL; owned */
    const char   *path_a, *path_b;
    struct dump   da, db;
    int           have_a, have_b;
    int           comparable;
    struct diff_metrics m;
    enum st       status;
    int           pass;
    struct top   *top;     /* owned */
    size_t        n_top;
    /* order key */
    int64_t       group;
    int           rank;
    char          stage_name[64];
    int           layer;   /* from the path, -1 */
    char          err[256];/* directories: why this stage could not be read ("" when read) */
};

extern const char *const diff_st_names[ST_COUNT];
extern const char *const diff_kind_names[];
extern const struct side *diff_g_sort_a, *diff_g_sort_b;
extern const struct side *diff_g_sort_a, *diff_g_sort_b;

enum st diff_value_status(const struct diff_metrics *m);
void diff_metrics_of(const struct cmp_sums *s, struct diff_metrics *m);
int diff_natcmp(const char *a, size_t na, const char *b, size_t nb);
char *diff_dup_n(const char *p, size_t n, struct err *e);
const char *diff_shape_of(char *buf, size_t cap, const struct model_tensor *t);
void diff_json_shape(struct json_w *w, const struct model_tensor *t);
int diff_same_shape(const struct model_tensor *a, const struct model_tensor *b);
int diff_swapped_2d(const struct model_tensor *a, const struct model_tensor *b);
void diff_fmt_coords(char *buf, size_t cap, int n_dims, const int64_t *shape, int64_t idx);
void diff_json_coords(struct json_w *w, int n_dims, const int64_t *shape, int64_t idx);
const char *diff_num(char *buf, size_t cap, double v);
int diff_write_json(FILE *out, struct sbuf *b, struct err *e);
int diff_gates_given(const struct diff_opts *o);
int diff_within(const struct diff_opts *o, const struct diff_metrics *m);
int diff_detect(const char *path, enum kind *k, struct err *e);
int diff_side_gguf_layout(const struct side *s, const struct model_tensor *t);
int diff_side_open(struct side *s, const char *path, struct err *e);
void diff_pairs_release(struct pairs *P);
const struct model_tensor *diff_pa(const struct side *A, const struct pair *p);
const struct model_tensor *diff_pb(const struct side *B, const struct pair *p);
struct slice diff_pname(const struct side *A, const struct side *B, const struct pair *p);
int diff_pair_cmp_name(const struct side *A, const struct side *B, const struct pair *x,
                         const struct pair *y);
int diff_pairs_build(const struct side *A, const struct side *B, const regex_t *re,
                       struct pairs *P, struct err *e);
int64_t diff_rows_of(const struct model_tensor *t);
void diff_plan_perm(const struct side *A, const struct side *B, struct pair *p);
int diff_perm_dir_for(const struct side *A, const struct pair *p);
const char *diff_layout_name(const struct side *A, const struct side *B, const struct pair *p);
int diff_values_compute(const struct diff_opts *o, const struct side *A, const struct side *B,
                          struct pairs *P, struct err *e);
int diff_plot_write(const char *path, const char *title_a, const char *title_b,
                      const struct plot_pt *pt, size_t n, struct err *e);
int diff_plot_bad(enum st s);
int diff_values_report(const struct diff_opts *o, const struct side *A, const struct side *B,
                         const struct pairs *P, FILE *out, int *different, struct err *e);
int diff_values_plot(const struct diff_opts *o, const struct side *A, const struct side *B,
                       const struct pairs *P, struct err *e);
int diff_structural(const struct diff_opts *o, const struct side *A, const struct side *B,
                      struct pairs *P, FILE *out, int *different, struct err *e);

#endif
