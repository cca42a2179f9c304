/*
 * compare_impl.h - the block kernel of compare.c and its AVX2 and AVX-512 twins
 * (compare_avx2.c, compare_avx512.c).
 * Private to compare/ and its unit test.
 *
 * Both kernels fill the same eight lanes: lane k gets elements j + k for j = 0, 8, 16...
 * (sums in double, products and sums as separate roundings: no FMA), and the m % 8 tail
 * goes to lane 0 in order.  So the SIMD kernels' sums are bit-identical to the scalar
 * ones.  Only finite inputs are meaningful (compare.c redoes a block element by element
 * when its sums of squares are not finite).
 */
#ifndef APR_TOOLS_COMPARE_IMPL_H
#define APR_TOOLS_COMPARE_IMPL_H

#include <stdint.h>

#include "compare.h"

#define CMP_LANES 8

struct cmp_lanes {
    double   xy[CMP_LANES], xx[CMP_LANES], yy[CMP_LANES], sd[CMP_LANES], sd2[CMP_LANES];
    double   mx[CMP_LANES];                   /* max |x-y| */
    uint64_t c0[CMP_LANES], c1[CMP_LANES], c2[CMP_LANES];   /* d == 0, < SMALL, < MEDIUM */
};

typedef void (*cmp_lanes_fn)(const float *x, const float *y, int64_t m, struct cmp_lanes *L);
/* The same over IEEE half values (2 bytes each, little-endian, any alignment): the
 * kernel converts them (exactly) to f32 itself, then computes the bits its f32 twin
 * computes for the converted values. */
typedef void (*cmp_lanes_h_fn)(const uint8_t *x, const uint8_t *y, int64_t m,
                               struct cmp_lanes *L);

/* Accumulate x[0..m) against y[0..m) into L, which the caller zeroed.  The sums' lanes
 * are bit-identical between the kernels; the max and the counts (exact) are spread over
 * the lanes differently, so read them only as a whole. */
void cmp__lanes_scalar(const float *x, const float *y, int64_t m, struct cmp_lanes *L);
void cmp__lanes_h_scalar(const uint8_t *x, const uint8_t *y, int64_t m, struct cmp_lanes *L);
#if defined(__x86_64__) || defined(__i386__)
#define CMP_HAVE_AVX2_BUILD 1
void cmp__lanes_avx2(const float *x, const float *y, int64_t m, struct cmp_lanes *L);
void cmp__lanes_h_avx2(const uint8_t *x, const uint8_t *y, int64_t m, struct cmp_lanes *L);
void cmp__lanes_avx512(const float *x, const float *y, int64_t m, struct cmp_lanes *L);
void cmp__lanes_h_avx512(const uint8_t *x, const uint8_t *y, int64_t m, struct cmp_lanes *L);
#endif

/* The kernels cmp_add and cmp_add_f16 use (chosen once: the CPU's best unless
 * APR_DQ_SCALAR=1). */
cmp_lanes_fn cmp__kernel(void);
cmp_lanes_h_fn cmp__kernel_h(void);
/* 1 when this CPU runs the AVX2 kernels (AVX2 and F16C; the OS saves the YMM registers). */
int cmp__cpu_avx2(void);
/* 1 when this CPU runs the AVX-512 kernels (AVX-512F and F16C, ZMM state saved). */
int cmp__cpu_avx512(void);

#endif
