/*
 * dq_quant.c - quantizers from f32, byte-identical with ggml's reference quantizers
 * (quantize_row_*_ref, i.e. ggml_quantize_chunk without an importance matrix), and
 * the f32 -> f16 / bf16 conversions.
 *
 * Bit-exactness depends on float evaluation (reference/gguf-quant.md 4): everything
 * here is scalar f32, in the order the reference writes it, and the Makefile builds
 * with -ffp-contract=off so that no multiply-add is fused.  Do not "simplify" an
 * expression (a*b*c is (a*b)*c; x + y - z is (x + y) - z): the bytes would change.
 * The rounding helpers matter too: nearest_int is round-half-even through the
 * 1.5*2^23 trick, Q8_0 uses roundf (half away from zero), the legacy formats
 * truncate after adding 8.5 / 16.5 / 0.5.
 *
 * Each quantizer takes n floats (n % blck == 0) and writes n/blck whole blocks.
 *
 * SIMD twins: the costly part of the K-quants, IQ4 and the weighted legacy types is a
 * search over candidate scales per sub-block.  dq_quant_avx2.c runs it for eight
 * sub-blocks at once, one a lane, each lane doing this file's operations in this
 * file's order; the sums over a sub-block's elements stay sequential (vectorizing
 * them across elements would reassociate the sums and change the chosen scale: that
 * is why no loop below is split by element).  The row functions take a simd flag; the
 * exported dq_<type>_quantize[_w] pass 0, dq_<type>_quantize[_w]_avx2 pass 1, and
 * dq.c installs the latter when the CPU has AVX2.  The Q8_0 twin is in dq_avx2.c.
 */
#include "dq.h"
#include "dq_impl.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "../common/banned.h"

#define GROUP_MAX_EPS 1e-15f   /* ggml: below this a group quantizes to all zeros */

/* ---------------------------------------------------------------------------------------
 * Scalar conversions (3.2).
 */

uint16_t dq_f32_to_f16(float f)
{
    uint32_t x = dq__f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t a = x & 0x7FFFFFFF;

    if (a > 0x7F800000)
        return (uint16_t)(sign | 0x7E00);                  /* any NaN: canonical quiet NaN */
    if (a >= 0x477FF000)
        return (uint16_t)(sign | 0x7C00);                  /* >= 65520 rounds to Inf */
    if (a >= 0x38800000) {                                 /* normal f16 (>= 2^-14) */
        uint32_t r = a + 0xFFF + ((a >> 13) & 1);
        return (uint16_t)(sign | ((r - 0x38000000) >> 13));
    }
    /* Zero or subnormal f16: round |x| / 2^-24 to nearest even.  |x| = m * 2^(e-150). */
    uint32_t e = a >> 23;
    if (e < 102)                                           /* < 2^-25: rounds to zero */
        return (uint16_t)sign;
    uint32_t m = (a & 0x7FFFFF) | 0x800000;
    uint32_t shift = 126 - e;                              /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return (uint16_t)(sign | q);                           /* q == 0x400 is the min normal */
}

float dq_f16_to_f32(uint16_t h) { return dq__h2f(h); }

uint16_t dq_f32_to_bf16(float f)
{
    uint32_t u = dq__f32_bits(f);
    if ((u & 0x7FFFFFFF) > 0x7F800000)
        return (uint16_t)((u >> 16) | 0x0040);             /* NaN: force quiet */
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

float dq_bf16_to_f32(uint16_t h) { return dq__bits_f32((uint32_t)h << 16); }

void dq_f32_quantize(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++)
        put_le32(p + 4 * i, dq__f32_bits(src[i]));
}

void dq_f16_quantize(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++)
        put_le16(p + 2 * i, dq_f32_to_f16(src[i]));
}

void dq_bf16_quantize(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++)
        put_le16(p + 2 * i, dq_f32_to_bf16(src[i]));
}

#define F16(f) dq_f32_to_f16(f)      /* f32 -> f16 bits, RNE */

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* ---------------------------------------------------------------------------------------
 * Legacy blocks of 32 (4.1, 4.2).
 */

void dq_q8_0_quantize(const float *x, void *dst, int64_t n)
{
    struct block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            float v = fabsf(x[j]);
            amax = amax > v ? amax : v;            /* ggml's MAX(), NaN behaviour included */
        }
        float d = amax / 127;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y->d = F16(d);
        for (int j = 0; j < 32; j++)
            y->qs[j] = (int8_t)dq__round_away(x[j] * id);
    }
}

/* The signed value of largest magnitude; the first one wins ties (strict <). */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo)
            lo = x[j];
        if (x[j] > hi)
            hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

void dq_q4_0_quantize(const float *x, void *dst, int64_t n)
{
    struct block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        float d = signed_absmax(x, 32) / -8;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y->d = F16(d);
        for (int j = 0; j < 16; j++) {
            float x0 = x[j] * id, x1 = x[j + 16] * id;
            int a = imin(15, (int8_t)(int)(x0 + 8.5f));
            int b = imin(15, (int8_t)(int)(x1 + 8.5f));
            y->qs[j] = (uint8_t)((unsigned)a | (unsigned)b << 4);   /* b < 0: same low bits */
        }
    }
}

void dq_q4_1_quantize(const float *x, void *dst, int64_t n)
{
    struct block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        float mn, mx;
        min_max(x, 32, &mn, &mx);
        float d = (mx - mn) / 15;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y->d = F16(d);
        y->m = F16(mn);
        for (int j = 0; j < 16; j++) {
            float x0 = (x[j] - mn) * id, x1 = (x[j + 16] - mn) * id;
            int a = imin(15, (int8_t)(int)(x0 + 0.5f));
            int b = imin(15, (int8_t)(int)(x1 + 0.5f));
            y->qs[j] = (uint8_t)((unsigned)a | (unsigned)b << 4);   /* b < 0: same low bits */
        }
    }
}

void dq_q5_0_quantize(const float *x, void *dst, int64_t n)
{
    struct block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        float d = signed_absmax(x, 32) / -16;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint32_t qh = 0;
        y->d = F16(d);
        for (int j = 0; j < 16; j++) {
            float x0 = x[j] * id, x1 = x[j + 16] * id;
            int a = imin(31, (int8_t)(int)(x0 + 16.5f));
            int b = imin(31, (int8_t)(int)(x1 + 16.5f));
            y->qs[j] = (uint8_t)((a & 15) | (b & 15) << 4);
            qh |= (uint32_t)((a & 0x10) >> 4) << j;
            qh |= (uint32_t)((b & 0x10) >> 4) << (j + 16);
        }
        put_le32(y->qh, qh);
    }
}

void dq_q5_1_quantize(const float *x, void *dst, int64_t n)
{
    struct block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        float mn, mx;
        min_max(x, 32, &mn, &mx);
        float d = (mx - mn) / 31;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint32_t qh = 0;
        y->d = F16(d);
        y->m = F16(mn);
        for (int j = 0; j < 16; j++) {
            float x0 = (x[j] - mn) * id, x1 = (x[j + 16] - mn) * id;
            int a = (uint8_t)(int)(x0 + 0.5f);          /* no clamp, as in ggml */
            int b = (uint8_t)(int)(x1 + 0.5f);
            y->qs[j] = (uint8_t)((a & 15) | (b & 15) << 4);
            qh |= (uint32_t)((a & 0x10) >> 4) << j;
            qh |= (uint32_t)((b & 0x10) >> 4) << (j + 16);
        }
        put_le32(y->qh, qh);
    }
}

/* ---------------------------------------------------------------------------------------
 * K-quant helpers (4.3, 4.5).
 */

/* Scale and min for one sub-block by weighted least squares over a sweep of nstep+1
 * candidate scales; L gets the 0..nmax quants, *the_min the (positive) min.  The error
 * is w * diff^2, or w * |diff| with use_mad (Q2_K). */
static float err_term(float diff, int use_mad) { return use_mad ? fabsf(diff) : diff * diff; }

static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta,
                              int nstep, int use_mad)
{
    float mn = x[0], mx = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn)
            mn = x[i];
        if (x[i] > mx)
            mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0)
        mn = 0;
    if (mx == mn) {
        memset(L, 0, (size_t)n);
        *the_min = -mn;
        return 0.0f;
    }
    float iscale = (float)nmax / (mx - mn);
    float scale = 1 / iscale;
    float best = 0;
    for (int i = 0; i < n; i++) {
        int l = dq__nearest_int(iscale * (x[i] - mn));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * (float)L[i] + mn - x[i];
        best += w[i] * err_term(diff, use_mad);
    }
    if (nstep < 1) {
        *the_min = -mn;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (mx - mn);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(0, imin(nmax, dq__nearest_int(iscale * (x[i] - mn))));
            Laux[i] = (uint8_t)l;
            float fl = (float)l;
            sum_l += w[i] * fl;
            sum_l2 += w[i] * fl * fl;
            sum_xl += w[i] * fl * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                cur += w[i] * err_term(diff, use_mad);
            }
            if (cur < best) {
                memcpy(L, Laux, (size_t)n);
                best = cur;
                scale = this_scale;
                mn = this_min;
            }
        }
    }
    *the_min = -mn;
    return scale;
}

/* Signed scale for one sub-block (rmse_type 1): L gets the quants offset by +nmax
 * (0..2*nmax-1).  The weights are qw[i], or x[i]^2 without an importance matrix. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw);

static inline float make_qx_quants_impl(int n, int nmax, const float *x, int8_t *L,
                                         const float *qw, int weighted)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)(-nmax) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, dq__nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = weighted ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(-nmax, imin(nmax - 1, dq__nearest_int(iscale * x[i])));
            float w = weighted ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = dq__nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/*
 * The legacy blocks with importance weights (ggml's quantize_row_q4_0_impl, ...): the
 * weights are qw * sqrt(sigma2 + x^2) with sigma2 = <x^2> over the WHOLE ROW (n); the
 * signed types fit their scale by make_qx_quants, the types with a min by the fine
 * make_qkx2_quants sweep (rmin -0.9, step 0.05, 36 steps).  One row at a time.
 */
static float row_sigma2(const float *x, int64_t n)
{
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; j++)
        sum_x2 += x[j] * x[j];
    return sum_x2 / (float)n;
}

static void legacy_weights(const float *xb, const float *qw, float sigma2, float *w)
{
    for (int j = 0; j < 32; j++)
        w[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

/* Up to eight blocks of 32 at a time: the x8 searches (below) for a full group, the
 * scalar ones for the row's last few blocks. */
static void qx_blocks(int simd, int nb, int nmax, const float *x, int8_t *L, const float *w,
                      float *d);
static void qkx2_blocks(int simd, int nb, int nmax, const float *x, const float *w,
                        uint8_t *L, float *d, float *mn);

static int group8(int64_t ib, int64_t nblk) { return nblk - ib < 8 ? (int)(nblk - ib) : 8; }

static void q4_0_rows_w(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_q4_0 *y = dst;
    float sigma2 = row_sigma2(x, n), weight[256], d[8];
    int8_t L[256];
    for (int64_t ib = 0; ib < n / 32; ib += 8) {
        int nb = group8(ib, n / 32);
        const float *xb = x + 32 * ib;
        for (int j = 0; j < nb; j++)
            legacy_weights(xb + 32 * j, qw + 32 * (ib + j), sigma2, weight + 32 * j);
        qx_blocks(simd, nb, 8, xb, L, weight, d);
        for (int j = 0; j < nb; j++, y++) {
            const int8_t *Lj = L + 32 * j;
            y->d = F16(d[j]);
            for (int l = 0; l < 16; l++)
                y->qs[l] = (uint8_t)(Lj[l] | Lj[l + 16] << 4);
        }
    }
}

static void q5_0_rows_w(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_q5_0 *y = dst;
    float sigma2 = row_sigma2(x, n), weight[256], d[8];
    int8_t L[256];
    for (int64_t ib = 0; ib < n / 32; ib += 8) {
        int nb = group8(ib, n / 32);
        const float *xb = x + 32 * ib;
        for (int j = 0; j < nb; j++)
            legacy_weights(xb + 32 * j, qw + 32 * (ib + j), sigma2, weight + 32 * j);
        qx_blocks(simd, nb, 16, xb, L, weight, d);
        for (int j = 0; j < nb; j++, y++) {
            const int8_t *Lj = L + 32 * j;
            uint32_t qh = 0;
            y->d = F16(d[j]);
            for (int l = 0; l < 16; l++) {
                uint8_t a = (uint8_t)Lj[l], b = (uint8_t)Lj[l + 16];
                y->qs[l] = (uint8_t)((a & 15) | (b & 15) << 4);
                qh |= (uint32_t)((a & 0x10u) >> 4) << l;
                qh |= (uint32_t)((b & 0x10u) >> 4) << (l + 16);
            }
            put_le32(y->qh, qh);
        }
    }
}

static void q4_1_rows_w(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_q4_1 *y = dst;
    float sigma2 = row_sigma2(x, n), weight[256], d[8], mn[8];
    uint8_t L[256];
    for (int64_t ib = 0; ib < n / 32; ib += 8) {
        int nb = group8(ib, n / 32);
        const float *xb = x + 32 * ib;
        for (int j = 0; j < nb; j++)
            legacy_weights(xb + 32 * j, qw + 32 * (ib + j), sigma2, weight + 32 * j);
        qkx2_blocks(simd, nb, 15, xb, weight, L, d, mn);
        for (int j = 0; j < nb; j++, y++) {
            const uint8_t *Lj = L + 32 * j;
            y->d = F16(d[j]);
            y->m = F16(-mn[j]);
            for (int l = 0; l < 16; l++)
                y->qs[l] = (uint8_t)(Lj[l] | Lj[l + 16] << 4);
        }
    }
}

static void q5_1_rows_w(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_q5_1 *y = dst;
    float sigma2 = row_sigma2(x, n), weight[256], d[8], mn[8];
    uint8_t L[256];
    for (int64_t ib = 0; ib < n / 32; ib += 8) {
        int nb = group8(ib, n / 32);
        const float *xb = x + 32 * ib;
        for (int j = 0; j < nb; j++)
            legacy_weights(xb + 32 * j, qw + 32 * (ib + j), sigma2, weight + 32 * j);
        qkx2_blocks(simd, nb, 31, xb, weight, L, d, mn);
        for (int j = 0; j < nb; j++, y++) {
            const uint8_t *Lj = L + 32 * j;
            uint32_t qh = 0;
            y->d = F16(d[j]);
            y->m = F16(-mn[j]);
            for (int l = 0; l < 16; l++) {
                uint8_t a = Lj[l], b = Lj[l + 16];
                y->qs[l] = (uint8_t)((a & 15) | (b & 15) << 4);
                qh |= (uint32_t)((a & 0x10u) >> 4) << l;
                qh |= (uint32_t)((b & 0x10u) >> 4) << (l + 16);
            }
            put_le32(y->qh, qh);
        }
    }
}

void dq_q4_0_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q4_0_rows_w(x, dst, n, qw, 0);
}
void dq_q5_0_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q5_0_rows_w(x, dst, n, qw, 0);
}
void dq_q4_1_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q4_1_rows_w(x, dst, n, qw, 0);
}
void dq_q5_1_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q5_1_rows_w(x, dst, n, qw, 0);
}

/* The two instances (the weight choice is a constant in each: the unweighted Q6_K path
 * stays as fast as before weights existed). */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw)
{
    return qw ? make_qx_quants_impl(n, nmax, x, L, qw, 1) : make_qx_quants_impl(n, nmax, x, L, NULL, 0);
}

/*
 * The searches of eight sub-blocks of n side by side (x + n*j, w + n*j, L + n*j): with
 * simd, the AVX2 twins of dq_quant_avx2.c (same bytes: each lane is one sub-block and
 * repeats the scalar operations in order); else eight scalar calls.  The K-quants call
 * these; the row functions below take the simd flag from their exported entry points
 * (dq_<type>_quantize: scalar, dq_<type>_quantize_avx2: dq.c picks it at run time).
 */
static void qkx2_x8(int simd, int n, int nmax, const float *x, const float *w, uint8_t *L,
                    float *scales, float *mins, float rmin, float rdelta, int nstep,
                    int use_mad)
{
#ifdef DQ_HAVE_AVX2_BUILD
    if (simd) {
        dq__qkx2_x8_avx2(n, nmax, x, w, L, scales, mins, rmin, rdelta, nstep, use_mad);
        return;
    }
#endif
    (void)simd;
    uint8_t Laux[32];
    for (int j = 0; j < 8; j++)
        scales[j] = make_qkx2_quants(n, nmax, x + n * j, w + n * j, L + n * j, &mins[j], Laux,
                                     rmin, rdelta, nstep, use_mad);
}

static void qx_x8(int simd, int n, int nmax, const float *x, int8_t *L, const float *qw,
                  float *scales)
{
#ifdef DQ_HAVE_AVX2_BUILD
    if (simd) {
        dq__qx_x8_avx2(n, nmax, x, L, qw, scales, GROUP_MAX_EPS);
        return;
    }
#endif
    (void)simd;
    for (int j = 0; j < 8; j++)
        scales[j] = make_qx_quants(n, nmax, x + n * j, L + n * j, qw ? qw + n * j : NULL);
}

static void qx_blocks(int simd, int nb, int nmax, const float *x, int8_t *L, const float *w,
                      float *d)
{
    if (nb == 8) {
        qx_x8(simd, 32, nmax, x, L, w, d);
        return;
    }
    for (int j = 0; j < nb; j++)
        d[j] = make_qx_quants(32, nmax, x + 32 * j, L + 32 * j, w + 32 * j);
}

static void qkx2_blocks(int simd, int nb, int nmax, const float *x, const float *w,
                        uint8_t *L, float *d, float *mn)
{
    uint8_t Laux[32];
    if (nb == 8) {
        qkx2_x8(simd, 32, nmax, x, w, L, d, mn, -0.9f, 0.05f, 36, 0);
        return;
    }
    for (int j = 0; j < nb; j++)
        d[j] = make_qkx2_quants(32, nmax, x + 32 * j, w + 32 * j, L + 32 * j, &mn[j], Laux,
                                -0.9f, 0.05f, 36, 0);
}

static void scale_min_k4(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m  = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m  = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* The 6-bit scales ls[8] and mins lm[8] (values above 63 clamp) into scales[12]. */
static void k_pack(uint8_t S[12], const uint8_t *ls_in, const uint8_t *lm_in)
{
    memset(S, 0, 12);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = ls_in[j] < 63 ? ls_in[j] : 63;
        uint8_t lm = lm_in[j] < 63 ? lm_in[j] : 63;
        if (j < 4) {
            S[j] = ls;
            S[j + 4] = lm;
        } else {
            S[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
            S[j - 4] |= (uint8_t)((ls >> 4) << 6);
            S[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
}

/* Requantize every element of a Q4_K / Q5_K super-block with the f16 d, dmin and the
 * packed scales; a sub-block whose scale is 0 keeps the quants it has. */
static void k_requant(const float *x, uint16_t d16, uint16_t dmin16, const uint8_t S[12],
                      uint8_t *L, int nmax)
{
    for (int j = 0; j < 8; j++) {
        int sc, m;
        scale_min_k4(j, S, &sc, &m);
        float d = dq__h2f(d16) * (float)sc;
        if (d == 0.0f)
            continue;
        float dm = dq__h2f(dmin16) * (float)m;
        for (int ii = 0; ii < 32; ii++) {
            int l = dq__nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

/*
 * The shared part of Q4_K and Q5_K (4.4): per sub-block of 32 a (scale, min) pair by
 * make_qkx2_quants, both quantized to 6 bits against the largest, packed into
 * scales[12] (layout drawn in dq_ref.c), then every element requantized with the
 * f16-rounded d and dmin.  Returns d and dmin (f16 bits) and scales[12], the quants
 * in L.
 */
static void quantize_k_scales(const float *x, uint16_t *d_out, uint16_t *dmin_out,
                              uint8_t S[12], uint8_t *L, int nmax, float rmin, int nstep,
                              int simd)
{
    float w[256], mins[8], scales[8];
    float max_scale = 0, max_min = 0;

    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            w[32 * j + l] = av_x + fabsf(xs[l]);
    }
    qkx2_x8(simd, 32, nmax, x, w, L, scales, mins, rmin, 0.1f, nstep, 0);
    for (int j = 0; j < 8; j++) {
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)dq__nearest_int(inv_scale * scales[j]);
        lm[j] = (uint8_t)dq__nearest_int(inv_min * mins[j]);
    }
    k_pack(S, ls, lm);
    *d_out = F16(max_scale / 63.f);
    *dmin_out = F16(max_min / 63.f);
    k_requant(x, *d_out, *dmin_out, S, L, nmax);
}

/*
 * ggml's make_qp_quants: an unsigned scale for n non-negative values x (the sub-block
 * scales or mins of a K-quant super-block) against weights qw: the best of nine
 * candidate scales, then up to five passes of coordinate descent.  L gets 0..nmax.
 */
float dq__make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw)
{
    float max = 0;
    for (int i = 0; i < n; i++)
        max = max > x[i] ? max : x[i];
    if (max == 0.0f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; i++)
        L[i] = (uint8_t)dq__nearest_int(iscale * x[i]);
    float scale = 1 / iscale, best_mse = 0;
    for (int i = 0; i < n; i++) {
        float diff = x[i] - scale * (float)L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0)
            continue;
        float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        float scale_is = 1 / iscale_is, mse = 0;
        for (int i = 0; i < n; i++) {
            int l = imin(nmax, dq__nearest_int(iscale_is * x[i]));
            float diff = x[i] - scale_is * (float)l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imin(nmax, dq__nearest_int(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += qw[i] * x[i] * (float)l;
        suml2 += qw[i] * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = qw[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = imin(nmax, dq__nearest_int(x[i] * sl2 / slx));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    return sumlx / suml2;
}

/*
 * Q4_K / Q5_K with importance weights (ggml's quantize_row_q4_K_impl and _q5_K_impl):
 * weights qw * sqrt(sigma2 + x^2) with sigma2 = 2 <x^2> over the super-block, a
 * finer sweep (rmin -0.9, step 0.05, 36 steps), and the 6-bit scales and mins fitted
 * by make_qp_quants against the sub-blocks' summed weights.
 */
static void quantize_k_weighted(const float *x, const float *qw, uint16_t *d_out,
                                uint16_t *dmin_out, uint8_t S[12], uint8_t *L, int nmax,
                                int simd)
{
    float weights[256], sw[8], mins[8], scales[8];
    uint8_t Ls[8], Lm[8];
    float sum_x2 = 0;

    for (int l = 0; l < 256; l++)
        sum_x2 += x[l] * x[l];
    float sigma2 = 2 * sum_x2 / 256;
    for (int j = 0; j < 8; j++) {
        float sumw = 0, *wj = weights + 32 * j;
        for (int l = 0; l < 32; l++)
            wj[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        for (int l = 0; l < 32; l++)
            sumw += wj[l];
        sw[j] = sumw;
    }
    qkx2_x8(simd, 32, nmax, x, weights, L, scales, mins, -0.9f, 0.05f, 36, 0);
    float d_block = dq__make_qp_quants(8, 63, scales, Ls, sw);
    float m_block = dq__make_qp_quants(8, 63, mins, Lm, sw);
    k_pack(S, Ls, Lm);
    *d_out = F16(d_block);
    *dmin_out = F16(m_block);
    k_requant(x, *d_out, *dmin_out, S, L, nmax);
}

static void q4_k_rows(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_q4_K *y = dst;
    uint8_t L[256];
    for (int64_t i = 0; i < n / 256; i++, x += 256, y++) {
        uint16_t d, dmin;
        if (qw)
            quantize_k_weighted(x, qw + 256 * i, &d, &dmin, y->scales, L, 15, simd);
        else
            quantize_k_scales(x, &d, &dmin, y->scales, L, 15, -1.0f, 20, simd);
        y->d = d;
        y->dmin = dmin;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void dq_q4_k_quantize(const float *x, void *dst, int64_t n) { q4_k_rows(x, dst, n, NULL, 0); }
void dq_q4_k_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q4_k_rows(x, dst, n, qw, 0);
}

static void q5_k_rows(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_q5_K *y = dst;
    uint8_t L[256];
    for (int64_t i = 0; i < n / 256; i++, x += 256, y++) {
        uint8_t *qh = y->qh, *ql = y->qs;
        uint16_t d, dmin;
        if (qw)
            quantize_k_weighted(x, qw + 256 * i, &d, &dmin, y->scales, L, 31, simd);
        else
            quantize_k_scales(x, &d, &dmin, y->scales, L, 31, -0.5f, 15, simd);
        y->d = d;
        y->dmin = dmin;
        memset(qh, 0, 32);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[l] |= (uint8_t)(1u << (2 * c));
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[l] |= (uint8_t)(2u << (2 * c));
                }
                ql[32 * c + l] = (uint8_t)(l1 | l2 << 4);
            }
    }
}

void dq_q5_k_quantize(const float *x, void *dst, int64_t n) { q5_k_rows(x, dst, n, NULL, 0); }
void dq_q5_k_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q5_k_rows(x, dst, n, qw, 0);
}

/* Q6_K (4.6): 16 signed sub-block scales by make_qx_quants, quantized to i8 against
 * the largest in magnitude; quants requantized with the f16-rounded d. */
static void q6_k_rows(const float *x, void *dst, int64_t n, const float *qw0, int simd)
{
    struct block_q6_K *y = dst;
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < n / 256; i++, x += 256, y++) {
        const float *qw = qw0 ? qw0 + 256 * i : NULL;
        float max_scale = 0, max_abs = 0;
        qx_x8(simd, 16, 32, x, L, qw, scales);
        qx_x8(simd, 16, 32, x + 128, L + 128, qw ? qw + 128 : NULL, scales + 8);
        for (int ib = 0; ib < 16; ib++) {
            float a = fabsf(scales[ib]);
            if (a > max_abs) {
                max_abs = a;
                max_scale = scales[ib];
            }
        }
        if (max_abs < GROUP_MAX_EPS) {
            memset(y, 0, sizeof *y);           /* d = f16(0) = 0 as well */
            continue;
        }
        float iscale = -128.f / max_scale;
        y->d = F16(1 / iscale);
        for (int ib = 0; ib < 16; ib++)
            y->scales[ib] = (int8_t)imin(127, dq__nearest_int(iscale * scales[ib]));
        for (int j = 0; j < 16; j++) {
            float d = dq__h2f(y->d) * (float)y->scales[j];
            if (d == 0.0f)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = dq__nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
            }
        }
        uint8_t *ql = y->ql, *qh = y->qh;
        for (int h = 0; h < 2; h++) {
            const int8_t *Q = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = Q[l] & 15, q2 = Q[l + 32] & 15, q3 = Q[l + 64] & 15, q4 = Q[l + 96] & 15;
                ql[64 * h + l]      = (uint8_t)(q1 | q3 << 4);
                ql[64 * h + 32 + l] = (uint8_t)(q2 | q4 << 4);
                qh[32 * h + l] = (uint8_t)((Q[l] >> 4) | (Q[l + 32] >> 4) << 2 |
                                           (Q[l + 64] >> 4) << 4 | (Q[l + 96] >> 4) << 6);
            }
        }
    }
}

void dq_q6_k_quantize(const float *x, void *dst, int64_t n) { q6_k_rows(x, dst, n, NULL, 0); }

/* With importance weights (ggml's quantize_row_q6_K_impl): the sub-block fits weigh
 * by qw itself. */
void dq_q6_k_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q6_k_rows(x, dst, n, qw, 0);
}

#ifdef DQ_HAVE_AVX2_BUILD
/* The same quantizers with the AVX2 searches (dq.c installs them when the CPU has AVX2;
 * check_quant.c's twins test compares them with the scalar ones above). */
void dq_q4_k_quantize_avx2(const float *x, void *dst, int64_t n) { q4_k_rows(x, dst, n, NULL, 1); }
void dq_q5_k_quantize_avx2(const float *x, void *dst, int64_t n) { q5_k_rows(x, dst, n, NULL, 1); }
void dq_q6_k_quantize_avx2(const float *x, void *dst, int64_t n) { q6_k_rows(x, dst, n, NULL, 1); }
void dq_q4_k_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q4_k_rows(x, dst, n, qw, 1);
}
void dq_q5_k_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q5_k_rows(x, dst, n, qw, 1);
}
void dq_q6_k_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q6_k_rows(x, dst, n, qw, 1);
}
#endif

/* ---------------------------------------------------------------------------------------
 * Q2_K: 16 sub-blocks of 16, each an unsigned 2-bit quant with a 4-bit scale and a
 * 4-bit min (make_qkx2_quants with |diff| errors and weights |x|), both quantized
 * against the largest; then every element requantized with the f16-rounded d, dmin.
 */
/* Requantize a Q2_K super-block with its f16 d, dmin and 4-bit scales (a sub-block
 * of scale 0 keeps its quants), then pack four 2-bit quants a byte. */
static void q2_k_finish(const float *x, struct block_q2_K *y, uint8_t *L)
{
    for (int j = 0; j < 16; j++) {
        float d = dq__h2f(y->d) * (float)(y->scales[j] & 15);
        if (d == 0.0f)
            continue;
        float dm = dq__h2f(y->dmin) * (float)(y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ii++) {
            int l = dq__nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
        }
    }
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; l++)
            y->qs[j / 4 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 2 |
                                         L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

static void q2_k_rows(const float *x, void *dst, int64_t n, int simd)
{
    struct block_q2_K *y = dst;
    uint8_t L[256];
    float w[256], mins[16], scales[16];
    const float q4scale = 15.f;

    for (int64_t i = 0; i < n / 256; i++, x += 256, y++) {
        float max_scale = 0, max_min = 0;
        for (int l = 0; l < 256; l++)
            w[l] = fabsf(x[l]);
        qkx2_x8(simd, 16, 3, x, w, L, scales, mins, -0.5f, 0.1f, 15, 1);
        qkx2_x8(simd, 16, 3, x + 128, w + 128, L + 128, scales + 8, mins + 8, -0.5f, 0.1f, 15, 1);
        for (int j = 0; j < 16; j++) {
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; j++)
                y->scales[j] = (uint8_t)dq__nearest_int(iscale * scales[j]);
            y->d = F16(max_scale / q4scale);
        } else {
            memset(y->scales, 0, sizeof y->scales);
            y->d = F16(0.f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < 16; j++)
                y->scales[j] |= (uint8_t)((unsigned)dq__nearest_int(iscale * mins[j]) << 4);
            y->dmin = F16(max_min / q4scale);
        } else {
            y->dmin = F16(0.f);
        }
        q2_k_finish(x, y, L);
    }
}

void dq_q2_k_quantize(const float *x, void *dst, int64_t n) { q2_k_rows(x, dst, n, 0); }

/* Q2_K with importance weights (ggml's quantize_row_q2_K_impl): weights
 * qw * sqrt(sigma2 + x^2), sigma2 = <x^2> over the super-block; the 4-bit scales and
 * mins are fitted by make_qp_quants against the sub-blocks' summed weights. */
static void q2_k_rows_w(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_q2_K *y = dst;
    uint8_t L[256], Ls[16], Lm[16];
    float weight[256], sw[16], mins[16], scales[16];

    for (int64_t i = 0; i < n / 256; i++, x += 256, y++, qw += 256) {
        float sumx2 = 0;
        for (int j = 0; j < 256; j++)
            sumx2 += x[j] * x[j];
        float sigma2 = sumx2 / 256;
        for (int j = 0; j < 16; j++) {
            float *wj = weight + 16 * j;
            sw[j] = 0;
            for (int l = 0; l < 16; l++)
                wj[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            for (int l = 0; l < 16; l++)
                sw[j] += wj[l];
        }
        qkx2_x8(simd, 16, 3, x, weight, L, scales, mins, -0.9f, 0.05f, 36, 0);
        qkx2_x8(simd, 16, 3, x + 128, weight + 128, L + 128, scales + 8, mins + 8, -0.9f, 0.05f,
                36, 0);
        float dm = dq__make_qp_quants(16, 15, scales, Ls, sw);
        float mm = dq__make_qp_quants(16, 15, mins, Lm, sw);
        y->d = F16(dm);
        y->dmin = F16(mm);
        for (int j = 0; j < 16; j++)
            y->scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
        q2_k_finish(x, y, L);
    }
}

void dq_q2_k_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q2_k_rows_w(x, dst, n, qw, 0);
}

/* Signed scale of one Q3_K sub-block: start from -nmax/max, then up to five passes of
 * coordinate descent on the weighted (w = x^2) least-squares fit; L gets the quants
 * offset by +nmax (all zero, NOT offset, for an all-zero group, as in ggml). */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)(-nmax) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, dq__nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = imax(-nmax, imin(nmax - 1, dq__nearest_int(x[i] * sl2 / slx)));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return sumlx / suml2;
}

/* Q3_K: 16 signed 6-bit sub-block scales (packed as drawn in dq_ref.c), 3-bit quants:
 * the low two bits in qs, the third in hmask (bit j/32 of hmask[j%32]). */
/* Requantize a Q3_K super-block with its f16 d and packed 6-bit scales, then split the
 * 3-bit quants: the low two bits into qs, the third into hmask. */
static void q3_k_finish(const float *x, struct block_q3_K *y, int8_t *L)
{
    for (int j = 0; j < 16; j++) {
        int sc = j < 8 ? y->scales[j] & 15 : y->scales[j - 8] >> 4;
        sc = (sc | ((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
        float d = dq__h2f(y->d) * (float)sc;
        if (d == 0.0f)
            continue;
        for (int ii = 0; ii < 16; ii++) {
            int l = dq__nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(imax(-4, imin(3, l)) + 4);
        }
    }
    memset(y->hmask, 0, sizeof y->hmask);
    for (int j = 0, m = 0, hm = 1; j < 256; j++) {
        if (L[j] > 3) {
            y->hmask[m] |= (uint8_t)hm;
            L[j] = (int8_t)(L[j] - 4);
        }
        if (++m == 32) {
            m = 0;
            hm <<= 1;
        }
    }
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; l++)
            y->qs[j / 4 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 2 |
                                         L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

void dq_q3_k_quantize(const float *x, void *dst, int64_t n)
{
    struct block_q3_K *y = dst;
    int8_t L[256];
    float scales[16];

    for (int64_t i = 0; i < n / 256; i++, x += 256, y++) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            float a = fabsf(scales[j]);
            if (a > amax) {
                amax = a;
                max_scale = scales[j];
            }
        }
        memset(y->scales, 0, sizeof y->scales);
        if (max_scale != 0.0f) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int l = imax(-32, imin(31, (int8_t)dq__nearest_int(iscale * scales[j]))) + 32;
                if (j < 8)
                    y->scales[j] = (uint8_t)(l & 15);
                else
                    y->scales[j - 8] |= (uint8_t)((l & 15) << 4);
                l >>= 4;
                y->scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            y->d = F16(1 / iscale);
        } else {
            y->d = F16(0.f);
        }
        q3_k_finish(x, y, L);
    }
}

/* Q3_K with importance weights (ggml's quantize_row_q3_K_impl): sub-block scales by
 * make_qx_quants with weights qw * sqrt(sigma2 + x^2), sigma2 = 2 <x^2>, and the
 * 6-bit scales by make_qx_quants again against the sub-blocks' summed weights. */
static void q3_k_rows_w(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_q3_K *y = dst;
    int8_t L[256], Ls[16];
    float scales[16], weight[256], sw[16];

    for (int64_t i = 0; i < n / 256; i++, x += 256, y++, qw += 256) {
        float sumx2 = 0;
        for (int j = 0; j < 256; j++)
            sumx2 += x[j] * x[j];
        float sigma2 = 2 * sumx2 / 256;
        for (int j = 0; j < 16; j++) {
            float sumw = 0, *wj = weight + 16 * j;
            for (int l = 0; l < 16; l++)
                wj[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            for (int l = 0; l < 16; l++)
                sumw += wj[l];
            sw[j] = sumw;
        }
        qx_x8(simd, 16, 4, x, L, weight, scales);
        qx_x8(simd, 16, 4, x + 128, L + 128, weight + 128, scales + 8);
        memset(y->scales, 0, sizeof y->scales);
        float d_block = make_qx_quants(16, 32, scales, Ls, sw);
        for (int j = 0; j < 16; j++) {
            int l = Ls[j];
            if (j < 8)
                y->scales[j] = (uint8_t)(l & 15);
            else
                y->scales[j - 8] |= (uint8_t)((l & 15) << 4);
            l >>= 4;
            y->scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
        }
        y->d = F16(d_block);
        q3_k_finish(x, y, L);
    }
}

void dq_q3_k_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    q3_k_rows_w(x, dst, n, qw, 0);
}

#ifdef DQ_HAVE_AVX2_BUILD
void dq_q2_k_quantize_avx2(const float *x, void *dst, int64_t n) { q2_k_rows(x, dst, n, 1); }
void dq_q2_k_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q2_k_rows_w(x, dst, n, qw, 1);
}
void dq_q3_k_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q3_k_rows_w(x, dst, n, qw, 1);
}
void dq_q4_0_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q4_0_rows_w(x, dst, n, qw, 1);
}
void dq_q5_0_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q5_0_rows_w(x, dst, n, qw, 1);
}
void dq_q4_1_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q4_1_rows_w(x, dst, n, qw, 1);
}
void dq_q5_1_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    q5_1_rows_w(x, dst, n, qw, 1);
}
#endif

/* ---------------------------------------------------------------------------------------
 * Ternary (3.5): d = max |x| of the super-block, trits lroundf(x / d) + 1 in {0, 1, 2}.
 */
static int trit_of(float v, float id) { return (int)lroundf(v * id) + 1; }

void dq_tq1_0_quantize(const float *x, void *dst, int64_t n)
{
    struct block_tq1_0 *y = dst;
    for (int64_t i = 0; i < n / 256; i++, y++) {
        float amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            float v = fabsf(x[j]);
            amax = amax > v ? amax : v;            /* ggml's MAX() */
        }
        float d = amax, id = d != 0.0f ? 1.0f / d : 0.0f;
        y->d = F16(d);
        /* qs[0..31]: 5 trits each from x[m + 32t]; qs[32..47]: from x[160 + m + 16t];
         * qh[0..3]: 4 trits each from x[240 + j + 4t], then shifted up one trit.  The
         * base-3 number v (first trit most significant) is stored as ceil(v * 256 / 243). */
        for (int m = 0; m < 32; m++) {
            unsigned q = 0;
            for (int t = 0; t < 5; t++)
                q = (uint8_t)(q * 3 + (unsigned)trit_of(x[m + 32 * t], id));
            y->qs[m] = (uint8_t)((q * 256 + 242) / 243);
        }
        x += 160;
        for (int m = 0; m < 16; m++) {
            unsigned q = 0;
            for (int t = 0; t < 5; t++)
                q = (uint8_t)(q * 3 + (unsigned)trit_of(x[m + 16 * t], id));
            y->qs[32 + m] = (uint8_t)((q * 256 + 242) / 243);
        }
        x += 80;
        for (int j = 0; j < 4; j++) {
            unsigned q = 0;
            for (int t = 0; t < 4; t++)
                q = (uint8_t)(q * 3 + (unsigned)trit_of(x[j + 4 * t], id));
            q = (uint8_t)(q * 3);
            y->qh[j] = (uint8_t)((q * 256 + 242) / 243);
        }
        x += 16;
    }
}

void dq_tq2_0_quantize(const float *x, void *dst, int64_t n)
{
    struct block_tq2_0 *y = dst;
    for (int64_t i = 0; i < n / 256; i++, y++) {
        float amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            float v = fabsf(x[j]);
            amax = amax > v ? amax : v;
        }
        float d = amax, id = d != 0.0f ? 1.0f / d : 0.0f;
        y->d = F16(d);
        for (int j = 0; j < 64; j += 32, x += 128)
            for (int m = 0; m < 32; m++) {
                unsigned q = 0;
                for (int t = 0; t < 4; t++)
                    q += (unsigned)(trit_of(x[m + 32 * t], id) & 3) << (2 * t);
                y->qs[j + m] = (uint8_t)q;
            }
    }
}

/* ---------------------------------------------------------------------------------------
 * IQ4_NL and IQ4_XS: non-linear 4-bit quants (values kvalues_iq4nl), as ggml's
 * quantize_iq4_nl / quantize_iq4_xs compute them without an importance matrix (what
 * llama-quantize runs; ntry = 7, weights x^2).  IQ4_NL is one block of 32 with an f16
 * scale; IQ4_XS eight blocks of 32 with 6-bit scales against an f16 super-scale.
 */

/* Index of the kvalues entry nearest to v (ties to the lower entry). */
static int best_index_iq4(float v)
{
    const int8_t *val = dq__kvalues_iq4nl;
    if (v <= (float)val[0])
        return 0;
    if (v >= (float)val[15])
        return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        int mav = (ml + mu) / 2;
        if (v < (float)val[mav])
            mu = mav;
        else
            ml = mav;
    }
    return v - (float)val[mu - 1] < (float)val[mu] - v ? mu - 1 : mu;
}

struct iq4_out {
    uint16_t d;          /* f16 bits */
    uint16_t scales_h;   /* IQ4_XS only */
    uint8_t  scales_l[4];
};

/* The weights of sbs = 32 (IQ4_NL) or 256 (IQ4_XS) elements at x: qw * sqrt(sigma2 +
 * x^2) with sigma2 = 2 <x^2> over the sbs, or x^2 without importance weights. */
static void iq4_weights(int sbs, const float *x, const float *qw, float *weight)
{
    float sigma2 = 0;
    for (int j = 0; j < sbs; j++)
        sigma2 += x[j] * x[j];
    sigma2 *= 2.f / (float)sbs;
    for (int j = 0; j < sbs; j++)
        weight[j] = qw ? qw[j] * sqrtf(sigma2 + x[j] * x[j]) : x[j] * x[j];
}

/* The scale of one block of 32: from -max / values[0], the best of 15 more candidates
 * by weighted least squares; 0 for an all-(near-)zero block. */
static float iq4_block_scale(const float *xb, const float *weight)
{
    const int8_t *values = dq__kvalues_iq4nl;
    const int ntry = 7;
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++) {
        float ax = fabsf(xb[j]);
        if (ax > amax) {
            amax = ax;
            max = xb[j];
        }
    }
    if (amax < GROUP_MAX_EPS)
        return 0;
    float d = -max / (float)values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        int l = best_index_iq4(id * xb[j]);
        float q = (float)values[l], w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
    }
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; itry++) {
        id = (float)(itry + values[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            float q = (float)values[best_index_iq4(id * xb[j])], w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* The scales of nb <= 8 blocks of 32: the AVX2 twin (dq_quant_avx2.c, one block a
 * lane) for a full group of 8, else one block at a time. */
static void iq4_scales(int simd, int nb, const float *x, const float *weight, float *scales)
{
#ifdef DQ_HAVE_AVX2_BUILD
    if (simd && nb == 8) {
        dq__iq4_scales_x8_avx2(x, weight, scales, GROUP_MAX_EPS);
        return;
    }
#endif
    (void)simd;
    for (int ib = 0; ib < nb; ib++)
        scales[ib] = iq4_block_scale(x + 32 * ib, weight + 32 * ib);
}

/* L[j] = best_index_iq4(id * x[j]), j < n (a multiple of 32). */
static void iq4_index(int simd, const float *x, int n, float id, uint8_t *L)
{
#ifdef DQ_HAVE_AVX2_BUILD
    if (simd) {
        dq__iq4_index_avx2(x, n, id, L);
        return;
    }
#endif
    (void)simd;
    for (int j = 0; j < n; j++)
        L[j] = (uint8_t)best_index_iq4(id * x[j]);
}

/* sbs = 32 (IQ4_NL) or 256 (IQ4_XS) elements at x with their block scales (above):
 * the f16 scale(s), and the quants requantized against them, packed into q4[sbs/2]. */
static void iq4_finish(int sbs, const float *x, const float *scales, uint8_t *q4,
                       struct iq4_out *o, int simd)
{
    const int nb = sbs / 32;
    uint8_t L[256];
    float max_scale = 0, amax_scale = 0;

    memset(o, 0, sizeof *o);
    for (int ib = 0; ib < nb; ib++)
        if (fabsf(scales[ib]) > amax_scale) {
            amax_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    if (nb > 1) {
        float d = -max_scale / 32;
        float id = d != 0.0f ? 1 / d : 0.f;
        o->d = F16(d);
        for (int ib = 0; ib < nb; ib++) {
            int l = imax(-32, imin(31, dq__nearest_int(id * scales[ib])));
            float dl = d * (float)l;
            float idl = dl != 0.0f ? 1 / dl : 0.f;
            iq4_index(simd, x + 32 * ib, 32, idl, L + 32 * ib);
            l += 32;
            if (ib % 2 == 0)
                o->scales_l[ib / 2] = (uint8_t)(l & 15);
            else
                o->scales_l[ib / 2] |= (uint8_t)((l & 15) << 4);
            o->scales_h |= (uint16_t)((l >> 4) << 2 * (ib % 8));
        }
    } else {
        o->d = F16(scales[0]);
        float id = scales[0] != 0.0f ? 1 / scales[0] : 0;
        iq4_index(simd, x, sbs, id, L);
    }
    for (int i = 0; i < sbs / 32; i++)
        for (int j = 0; j < 16; j++)
            q4[16 * i + j] = (uint8_t)(L[32 * i + j] | L[32 * i + 16 + j] << 4);
}

/* IQ4_NL: blocks of 32, each with its own sigma2; their searches eight at a time. */
static void iq4_nl_rows(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_iq4_nl *y = dst;
    struct iq4_out o;
    float weight[256], scales[8];
    for (int64_t i = 0; i < n / 32; i += 8) {
        int nb = group8(i, n / 32);
        const float *xg = x + 32 * i;
        for (int j = 0; j < nb; j++)
            iq4_weights(32, xg + 32 * j, qw ? qw + 32 * (i + j) : NULL, weight + 32 * j);
        iq4_scales(simd, nb, xg, weight, scales);
        for (int j = 0; j < nb; j++, y++) {
            iq4_finish(32, xg + 32 * j, scales + j, y->qs, &o, simd);
            y->d = o.d;
        }
    }
}

static void iq4_xs_rows(const float *x, void *dst, int64_t n, const float *qw, int simd)
{
    struct block_iq4_xs *y = dst;
    struct iq4_out o;
    float weight[256], scales[8];
    for (int64_t i = 0; i < n / 256; i++, x += 256, y++) {
        iq4_weights(256, x, qw ? qw + 256 * i : NULL, weight);
        iq4_scales(simd, 8, x, weight, scales);
        iq4_finish(256, x, scales, y->qs, &o, simd);
        y->d = o.d;
        y->scales_h = o.scales_h;
        memcpy(y->scales_l, o.scales_l, sizeof y->scales_l);
    }
}

void dq_iq4_nl_quantize(const float *x, void *dst, int64_t n) { iq4_nl_rows(x, dst, n, NULL, 0); }
void dq_iq4_xs_quantize(const float *x, void *dst, int64_t n) { iq4_xs_rows(x, dst, n, NULL, 0); }

/* With importance weights: qw * sqrt(sigma2 + x^2), sigma2 = 2 <x^2> over the block
 * (32, IQ4_NL) or super-block (256, IQ4_XS). */
void dq_iq4_nl_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    iq4_nl_rows(x, dst, n, qw, 0);
}

void dq_iq4_xs_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    iq4_xs_rows(x, dst, n, qw, 0);
}

#ifdef DQ_HAVE_AVX2_BUILD
void dq_iq4_nl_quantize_avx2(const float *x, void *dst, int64_t n)
{
    iq4_nl_rows(x, dst, n, NULL, 1);
}
void dq_iq4_xs_quantize_avx2(const float *x, void *dst, int64_t n)
{
    iq4_xs_rows(x, dst, n, NULL, 1);
}
void dq_iq4_nl_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    iq4_nl_rows(x, dst, n, qw, 1);
}
void dq_iq4_xs_quantize_w_avx2(const float *x, void *dst, int64_t n, const float *qw)
{
    iq4_xs_rows(x, dst, n, qw, 1);
}
#endif
