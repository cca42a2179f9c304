/*
 * dq_impl.h - private to dequant/: kernel prototypes and the small helpers that the
 * scalar, SIMD and quantizer files share.  Tools include dq.h, never this file.
 */
#ifndef DQ_IMPL_H
#define DQ_IMPL_H

#include <float.h>
#include <stdint.h>
#include <string.h>

#include "blocks.h"
#include "../common/rd.h"

/* Every kernel name: dq_<type>_to_f32_ref (dq_ref.c) and dq_<type>_to_f32_avx2
 * (dq_avx2.c), dq_<type>_to_f32_lut (dq_lut.c); quantizers dq_<type>_quantize
 * (dq_quant.c). */
#define DQ_REF(t)   void dq_##t##_to_f32_ref(const void *src, float *dst, int64_t n);
#define DQ_AVX2(t)  void dq_##t##_to_f32_avx2(const void *src, float *dst, int64_t n);
#define DQ_QUANT(t) void dq_##t##_quantize(const float *src, void *dst, int64_t n);

DQ_REF(f32) DQ_REF(f16) DQ_REF(bf16) DQ_REF(f64)
DQ_REF(i8) DQ_REF(i16) DQ_REF(i32) DQ_REF(i64)
DQ_REF(bool) DQ_REF(u8) DQ_REF(u16) DQ_REF(u32) DQ_REF(u64)
DQ_REF(f8_e4m3) DQ_REF(f8_e5m2) DQ_REF(f8_e8m0) DQ_REF(f8_e4m3fnuz) DQ_REF(f8_e5m2fnuz)
DQ_REF(f4) DQ_REF(f6_e2m3) DQ_REF(f6_e3m2)
DQ_REF(q4_0) DQ_REF(q4_1) DQ_REF(q5_0) DQ_REF(q5_1) DQ_REF(q8_0) DQ_REF(q8_1)
DQ_REF(q2_k) DQ_REF(q3_k) DQ_REF(q4_k) DQ_REF(q5_k) DQ_REF(q6_k) DQ_REF(q8_k)
DQ_REF(iq2_xxs) DQ_REF(iq2_xs) DQ_REF(iq2_s) DQ_REF(iq3_xxs) DQ_REF(iq3_s)
DQ_REF(iq1_s) DQ_REF(iq1_m) DQ_REF(iq4_nl) DQ_REF(iq4_xs)
DQ_REF(tq1_0) DQ_REF(tq2_0) DQ_REF(mxfp4) DQ_REF(nvfp4) DQ_REF(q1_0) DQ_REF(q2_0)
DQ_REF(apr_q4) DQ_REF(apr_q8)

#if defined(__x86_64__) || defined(__i386__)
#define DQ_HAVE_AVX2_BUILD 1
DQ_AVX2(f32) DQ_AVX2(f16) DQ_AVX2(bf16)
DQ_AVX2(q8_0) DQ_AVX2(q4_0) DQ_AVX2(q4_1) DQ_AVX2(q5_0) DQ_AVX2(q5_1)
DQ_AVX2(q2_k) DQ_AVX2(q3_k) DQ_AVX2(q4_k) DQ_AVX2(q5_k) DQ_AVX2(q6_k) DQ_AVX2(iq4_nl) DQ_AVX2(iq4_xs)
void dq_q8_0_quantize_avx2(const float *src, void *dst, int64_t n);
/* the K-quants with the AVX2 scale searches (dq_quant.c over dq_quant_avx2.c) */
void dq_q4_k_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_q5_k_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_q6_k_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_q4_k_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_q5_k_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_q6_k_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_q2_k_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_q2_k_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_q3_k_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_q4_0_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_q5_0_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_q4_1_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_q5_1_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_iq4_nl_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_q4_0_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_q5_0_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_q4_1_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_q5_1_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_iq4_xs_quantize_avx2(const float *src, void *dst, int64_t n);
void dq_iq4_nl_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
void dq_iq4_xs_quantize_w_avx2(const float *src, void *dst, int64_t n, const float *qw);
/* dq_quant_avx2.c: make_qkx2_quants and make_qx_quants (dq_quant.c) of eight
 * sub-blocks of n <= 32 side by side (x + n*j, ...), the same results as eight scalar
 * calls; make_qx_quants' all-zero threshold is eps (GROUP_MAX_EPS). */
void dq__qkx2_x8_avx2(int n, int nmax, const float *x, const float *w, uint8_t *L,
                      float *scales, float *mins, float rmin, float rdelta, int nstep,
                      int use_mad);
void dq__qx_x8_avx2(int n, int nmax, const float *x, int8_t *L, const float *qw,
                    float *scales, float eps);
/* dq_quant_avx2.c: the IQ4 scale search of eight blocks of 32 (dq_quant.c's
 * iq4_block_scale, weights w) and best_index_iq4(id * x[j]) for j < n (n % 8 == 0). */
void dq__iq4_scales_x8_avx2(const float *x, const float *w, float *scales, float eps);
void dq__iq4_index_avx2(const float *x, int n, float id, uint8_t *L);
#endif

/* table-driven fast paths (dq_lut.c); valid after dq__lut_init() */
#define DQ_LUT(t) void dq_##t##_to_f32_lut(const void *src, float *dst, int64_t n);
DQ_LUT(f8_e4m3) DQ_LUT(f8_e5m2) DQ_LUT(f8_e8m0) DQ_LUT(f8_e4m3fnuz) DQ_LUT(f8_e5m2fnuz)
DQ_LUT(f4) DQ_LUT(f6_e2m3) DQ_LUT(f6_e3m2)
#undef DQ_LUT
void dq__lut_init(void);

DQ_QUANT(f32) DQ_QUANT(f16) DQ_QUANT(bf16)
DQ_QUANT(q8_0) DQ_QUANT(q4_0) DQ_QUANT(q4_1) DQ_QUANT(q5_0) DQ_QUANT(q5_1)
DQ_QUANT(q2_k) DQ_QUANT(q3_k) DQ_QUANT(q4_k) DQ_QUANT(q5_k) DQ_QUANT(q6_k)
DQ_QUANT(iq4_nl) DQ_QUANT(iq4_xs) DQ_QUANT(tq1_0) DQ_QUANT(tq2_0)
DQ_QUANT(iq3_xxs) DQ_QUANT(iq3_s)

/* quantizers with importance weights (one row of n, qw[n]); dq_quant.c, dq_iq3.c */
#define DQ_QUANT_W(t) void dq_##t##_quantize_w(const float *src, void *dst, int64_t n, \
                                               const float *qw);
DQ_QUANT_W(q4_0) DQ_QUANT_W(q4_1) DQ_QUANT_W(q5_0) DQ_QUANT_W(q5_1)
DQ_QUANT_W(q2_k) DQ_QUANT_W(q3_k) DQ_QUANT_W(q4_k) DQ_QUANT_W(q5_k) DQ_QUANT_W(q6_k)
DQ_QUANT_W(iq4_nl) DQ_QUANT_W(iq4_xs) DQ_QUANT_W(iq3_xxs) DQ_QUANT_W(iq3_s)
DQ_QUANT_W(iq2_xxs) DQ_QUANT_W(iq2_xs) DQ_QUANT_W(iq2_s) DQ_QUANT_W(iq1_s) DQ_QUANT_W(iq1_m)
#undef DQ_QUANT_W

#undef DQ_REF
#undef DQ_AVX2
#undef DQ_QUANT

/* 1 once the IQ3 quantizers' neighbour tables are built (dq_iq3.c; 0: no memory). */
int dq__iq3_ready(void);
/* 1 once the IQ2 / IQ1 quantizers' lattice maps and neighbour lists are built
 * (dq_iq2.c; 0: no memory). */
int dq__iq2_ready(void);

/* 1 when the CPU (and OS) support AVX2, FMA and F16C (dq_cpu.c). */
int dq__cpu_avx2(void);

/* APR_Q8 elements [first, first+n) of a tensor whose bytes start at src (scale first):
 * the one kernel whose source cannot be cut at a block boundary. */
void dq__apr_q8_range(const void *src, int64_t first, float *dst, int64_t n);

/* ggml's nearest_int: round half to even for |f| <= 4194303 by adding 1.5 * 2^23 and
 * reading the low 23 mantissa bits (the same bits outside that range, too).  One copy
 * for every quantizer (dq_quant.c, dq_iq2.c, dq_iq3.c): their bytes depend on it. */
static inline int dq__nearest_int(float f)
{
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007FFFFF) - 0x00400000;
}

/* ggml's make_qp_quants (dq_quant.c): an unsigned scale for n non-negative values x
 * against weights qw, L gets 0..nmax.  The weighted K-quants fit their sub-block scales
 * with it and IQ2_XXS takes its starting scale from it. */
float dq__make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw);

static inline float dq__bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t dq__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/*
 * f16 bits -> f32, exact (reference/gguf-quant.md 3.2).  Zero and subnormals are
 * m * 2^-24; Inf stays Inf; a NaN keeps its payload and gets the quiet bit, which is
 * what ggml and the F16C instruction both do.
 */
static inline float dq__h2f(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 31;
    uint32_t m = h & 0x3FF;

    if (e == 0) {
        float v = (float)m * 0x1p-24f;
        return s ? -v : v;
    }
    if (e == 31)
        return dq__bits_f32(s | 0x7F800000u | m << 13 | (m ? 0x00400000u : 0));
    return dq__bits_f32(s | (e + 112) << 23 | m << 13);
}

static inline float dq__h2f_at(const uint8_t *p) { return dq__h2f(le16(p)); }

/*
 * (int)roundf(v) (half away from zero) without a libm call: truncate, then step away
 * from zero when the dropped part is at least one half (v - trunc(v) is exact).  NaN
 * and |v| >= 2^31 give INT32_MIN, what ggml's (int)roundf(v) gives on x86 (cvttss2si;
 * ISO C leaves it undefined): a Q8_0 block of amax below ~4e-37 has id = inf.  Q8_0
 * rounds this way; dq_avx2.c's twin computes the same.
 */
static inline int dq__round_away(float v)
{
    if (!(v < 2147483648.0f && v > -2147483648.0f))
        return INT32_MIN;
    int i = (int)v;
    float r = v - (float)i;
    return i + (r >= 0.5f) - (r <= -0.5f);
}

/* KS(i): ggml's ksigns_iq2xs computed, not tabled: i plus an even-parity bit 7
 * (reference/gguf-quant.md 3.6). */
#define DQ_KS(i) ((uint8_t)((i) | (__builtin_popcount((unsigned)(i)) & 1) << 7))

/*
 * The lattice quantizers' neighbour search (ggml's iq2/iq3_find_best_neighbour): of the
 * grid points nb[1..nb[0]] (dim levels each, row-major from lv), the one whose values
 * scale * (2 * level + 1) are nearest xval in weighted squared error; its levels go to
 * L and its index is returned.  Ties keep the first.  When no error is below FLT_MAX
 * (non-finite input) it is nb[1], never an index outside the grid.  Inline with a
 * constant dim, so each caller gets its own unrolled loop.
 */
static inline int dq__lattice_nearest(const uint8_t *lv, int dim, const uint16_t *nb,
                                      const float *xval, const float *w, float scale,
                                      int8_t *L)
{
    int gi = nb[1];
    float best = FLT_MAX;
    for (int j = 1; j <= nb[0]; j++) {
        const uint8_t *g = lv + (size_t)nb[j] * (size_t)dim;
        float d2 = 0;
        for (int i = 0; i < dim; i++) {
            float q = (float)(2 * g[i] + 1);
            float diff = scale * q - xval[i];
            d2 += w[i] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            gi = nb[j];
        }
    }
    for (int i = 0; i < dim; i++)
        L[i] = (int8_t)lv[(size_t)gi * (size_t)dim + (size_t)i];
    return gi;
}

/* kvalues_iq4nl and kvalues_fp4 (reference/gguf-quant.md 3.3); 16 values each. */
extern const int8_t dq__kvalues_iq4nl[16];
extern const int8_t dq__kvalues_fp4[16];

#endif
