/*
 * compare.h - the comparison engine: how far apart two float vectors are (weights,
 * activations, logits), streamed and deterministic.  apr-diff reports with it; the
 * runtime's compare and parity modes use it, and cmp_logits for next-token logits.
 *
 *   struct cmp_acc a;                       one stream: x[i] against y[i], i = 0, 1, ...
 *   cmp_init(&a);
 *   cmp_add(&a, x, y, n);                   any number of times, chunks of any size
 *   cmp_add_f16(&a, hx, hy, n);             (or F16 bytes: the same bits, no conversion pass)
 *   cmp_finish(&a, &stats);                 cosine, max |x-y| and where, mean |x-y|,
 *                                           RMSE, NMSE, NaN/Inf counts
 *
 * The reduction order is fixed, so a result never depends on the CPU, the chunk sizes
 * or the thread count:
 *   - the stream is cut into blocks of CMP_BLOCK elements, counted from the first
 *     element of the accumulator (a block split between two cmp_add calls is buffered
 *     and finished when complete);
 *   - inside a block, element j adds to lane j % 8 for j < 8 * floor(m / 8) and the last
 *     m % 8 elements of a short final block add to lane 0 in order; every sum is in
 *     double, products and sums rounded separately (no FMA); the lanes reduce as
 *     ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7));
 *   - a block holding a NaN or an Inf is redone element by element in order, skipping
 *     the non-finite pairs (they are counted instead);
 *   - block sums add to the running totals in block order.
 * The AVX2 kernel (compare_avx2.c, chosen at run time; APR_DQ_SCALAR=1 forces the
 * scalar one) computes the very same bits as its scalar twin.
 *
 * Parallel use: cut the stream into segments at fixed multiples of CMP_BLOCK (e.g.
 * CMP_SEGMENT, never a function of the thread count), accumulate each segment in its own
 * accumulator (cmp_init_at gives the flat index of its first element), cmp_flush each,
 * and cmp_merge their sums in segment order: the result depends on the cut positions
 * only.  Library code: nothing here prints or fails; only cmp_logits allocates (k > 64).
 */
#ifndef APR_TOOLS_COMPARE_H
#define APR_TOOLS_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#define CMP_BLOCK    1024            /* elements per accumulation block */
#define CMP_SEGMENT  (1 << 20)       /* a good segment length for parallel use */
#define CMP_SMALL    1e-3            /* |x-y| buckets (aprender's thresholds) */
#define CMP_MEDIUM   1e-2

/* Mergeable totals of a run of whole blocks. */
struct cmp_sums {
    double   xy, xx, yy;            /* sums over finite pairs */
    double   sd, sd2;               /* sum |x-y|, sum (x-y)^2 over finite pairs */
    double   max_d;                 /* max |x-y| over finite pairs */
    int64_t  max_i;                 /* flat index of the first max; -1: none yet */
    uint64_t n;                     /* every element */
    uint64_t n_zero, n_small, n_medium;   /* finite pairs: d == 0, d < SMALL, d < MEDIUM */
    uint64_t nf_same, nf_diff;      /* non-finite pairs: the same value / different */
    uint64_t nan_x, nan_y, inf_x, inf_y;
};

struct cmp_acc {
    struct cmp_sums s;
    int64_t  pos;                   /* flat index of the next element */
    uint32_t nbuf;                  /* elements of the current, split block */
    float    bx[CMP_BLOCK], by[CMP_BLOCK];
};

struct cmp_stats {
    uint64_t n;                     /* elements */
    uint64_t n_finite;              /* pairs where both are finite (the metrics' domain) */
    double   cosine;                /* 1 when both are all zero, 0 when only one is */
    double   max_abs;               /* max |x-y| */
    int64_t  max_idx;               /* flat index of its first occurrence; -1: none */
    double   mean_abs, rmse;
    double   nmse;                  /* sum (x-y)^2 / sum x^2; Inf when x is 0 and y is not */
    double   rms_x;                 /* sqrt(mean x^2) */
    uint64_t n_zero, n_small, n_medium;   /* finite pairs with d == 0, < CMP_SMALL, < CMP_MEDIUM */
    uint64_t nf_same, nf_diff;      /* non-finite pairs: the same (NaN and NaN, equal Inf) / not */
    uint64_t nan_x, nan_y, inf_x, inf_y;
};

void cmp_init(struct cmp_acc *a);
/* An accumulator whose first element has flat index pos (for max_idx). */
void cmp_init_at(struct cmp_acc *a, int64_t pos);
void cmp_add(struct cmp_acc *a, const float *x, const float *y, size_t n);
/* x and y as n IEEE half values each (2 bytes, little-endian, any alignment: F16 tensor
 * bytes as read from a file): the same result, bit for bit, as cmp_add of their exact f32
 * conversions, without a conversion pass (whole blocks go to the kernel as they are). */
void cmp_add_f16(struct cmp_acc *a, const void *x, const void *y, size_t n);
/* Finish the split block, if any: later elements start a new block. */
void cmp_flush(struct cmp_acc *a);
/* Fold later (the sums of the elements after into's) into into. */
void cmp_merge(struct cmp_sums *into, const struct cmp_sums *later);
void cmp_finish(const struct cmp_acc *a, struct cmp_stats *out);
void cmp_stats_of(const struct cmp_sums *s, struct cmp_stats *out);
/* One call: cmp_init, cmp_add, cmp_finish. */
void cmp_f32(const float *x, const float *y, size_t n, struct cmp_stats *out);

/* "avx2" or "scalar": the block kernel cmp_add uses on this CPU. */
const char *cmp_isa(void);

/*
 * Next-token logits: ref against test, n_vocab each.  In double: KL(softmax(ref) ||
 * softmax(test)) (log-sum-exp, sequential sums), argmax of each (first index on ties),
 * and how many of ref's top k are among test's top k (ties: lower index first).
 * k is clamped to [1, n_vocab].  A NaN anywhere makes kl NaN.
 */
struct cmp_logits {
    double  kl;                     /* KL(softmax(ref) || softmax(test)), nats */
    int32_t top1_ref, top1_test;
    int     top1_agree;
    int     k;                      /* the k used */
    double  topk_overlap;           /* |topk(ref) & topk(test)| / k */
};
void cmp_logits(const float *ref, const float *test, size_t n_vocab, int k,
                struct cmp_logits *out);

#endif
