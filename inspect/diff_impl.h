/*
 * diff_impl.h - apr-diff's accumulation kernel, shared by diff.c (scalar twin and
 * dispatch) and diff_avx2.c (AVX2).  Private to inspect/diff*.c.
 *
 * Both kernels fill the same eight lanes: lane k gets elements j + k for j = 0, 8, 16...
 * (sums in double, products and sums as separate roundings: no FMA), and the m % 8 tail
 * goes to lane 0 in order.  So the AVX2 kernel's lanes are bit-identical to the
 * scalar ones, and diff.c reduces them in one fixed order: results do not depend on
 * the CPU or on the number of threads.  Only finite inputs are meaningful (diff.c
 * redoes a block element by element when its sums of squares are not finite).
 */
#ifndef DIFF_IMPL_H
#define DIFF_IMPL_H

#include <stdint.h>

#define DIFF_SMALL   1e-3      /* element buckets (aprender's thresholds) */
#define DIFF_MEDIUM  1e-2
#define DIFF_LANES   8

struct diff_lanes {
    double   ab[DIFF_LANES], aa[DIFF_LANES], bb[DIFF_LANES], sd[DIFF_LANES], sd2[DIFF_LANES];
    double   mx[DIFF_LANES];                   /* max |a-b| */
    uint64_t c0[DIFF_LANES], c1[DIFF_LANES], c2[DIFF_LANES];   /* d == 0, < small, < medium */
};

/* Accumulate x[0..m) against y[0..m) into L, which the caller zeroed.  The sums'
 * lanes are bit-identical between the kernels; the max and the counts (exact) are
 * spread over the lanes differently, so read them only as a whole. */
void diff__lanes_scalar(const float *x, const float *y, int64_t m, struct diff_lanes *L);
#if defined(__x86_64__) || defined(__i386__)
#define DIFF_HAVE_AVX2_BUILD 1
void diff__lanes_avx2(const float *x, const float *y, int64_t m, struct diff_lanes *L);
#endif

#endif
