/*
 * dq_quant_avx2.c - AVX2 twins of the K-quant scale searches in dq_quant.c
 * (make_qkx2_quants and make_qx_quants), eight sub-blocks at a time.
 *
 * Built with -mavx2 -mfma -mf16c (Makefile rule for *_avx2.c) and called only when
 * dq__cpu_avx2() says the CPU has them.  The bytes must be those of the scalar search,
 * so the vector lanes run ACROSS SUB-BLOCKS, never across the elements of one: lane j
 * is sub-block j, and it performs exactly the scalar code's float operations, in the
 * scalar code's order.  Every sum over the elements of a sub-block (sum_l, sum_xl,
 * the error) stays a sequential chain per lane: summing a sub-block's elements in
 * parallel would reassociate them and change the chosen scale.  The search over
 * candidate scales cannot run across lanes either, because a step that improves the
 * error replaces the min that later steps quantize against; per lane it stays in
 * order, and a lane's branches ("D > 0", "cur < best") become blends.
 *
 * No multiply-add is fused (-ffp-contract=off, and no FMA intrinsic is used):
 * each mul and add rounds as the scalar ones do.  Comparisons are ordered (_OQ), the
 * scalar C comparisons' behaviour with NaN; min and max scans are compare-and-blend,
 * not min_ps / max_ps, whose NaN rules differ from "if (x < mn) mn = x".
 * check_quant.c (twins) compares these against the scalar path byte for byte.
 */
#include "dq.h"
#include "dq_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "../common/banned.h"

/* ggml's nearest_int, lane-wise: the low 23 bits of f + 1.5 * 2^23, minus 2^22. */
static inline __m256i nearest8(__m256 f)
{
    __m256i b = _mm256_castps_si256(_mm256_add_ps(f, _mm256_set1_ps(12582912.0f)));
    return _mm256_sub_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x007FFFFF)),
                            _mm256_set1_epi32(0x00400000));
}

static inline __m256i clamp8(__m256i v, int lo, int hi)
{
    return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), v));
}

/* Lane j of column i is x[n * j + i]: the sub-blocks side by side. */
static inline void columns8(const float *x, int n, __m256 *xt)
{
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32(n));
    for (int i = 0; i < n; i++)
        xt[i] = _mm256_i32gather_ps(x + i, idx, 4);
}

static inline int any8(__m256 m) { return _mm256_movemask_ps(m) != 0; }

/*
 * make_qkx2_quants for the 8 sub-blocks x[n*j .. n*j+n) (weights w likewise; n <= 32):
 * scales[j], mins[j] (the_min) and L[n*j + i], as 8 scalar calls would give them.
 */
void dq__qkx2_x8_avx2(int n, int nmax, const float *x, const float *w, uint8_t *L,
                      float *scales, float *mins, float rmin, float rdelta, int nstep,
                      int use_mad)
{
    __m256 xt[32], wt[32], lb[32], la[32];
    const __m256 zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
    const __m256 vnmax = _mm256_set1_ps((float)nmax);

    if (n < 1 || n > 32)                                  /* callers: 16 or 32 */
        return;
    columns8(x, n, xt);
    columns8(w, n, wt);
    __m256 mn = xt[0], mx = xt[0];
    __m256 sum_w = wt[0], sum_x = _mm256_mul_ps(sum_w, xt[0]);
    for (int i = 1; i < n; i++) {
        mn = _mm256_blendv_ps(mn, xt[i], _mm256_cmp_ps(xt[i], mn, _CMP_LT_OQ));
        mx = _mm256_blendv_ps(mx, xt[i], _mm256_cmp_ps(xt[i], mx, _CMP_GT_OQ));
        sum_w = _mm256_add_ps(sum_w, wt[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(wt[i], xt[i]));
    }
    mn = _mm256_blendv_ps(mn, zero, _mm256_cmp_ps(mn, zero, _CMP_GT_OQ));
    /* lanes with mx == mn are done: L = 0, scale 0, the_min = -mn */
    const __m256 flat = _mm256_cmp_ps(mx, mn, _CMP_EQ_OQ);
    const __m256 live = _mm256_cmp_ps(mx, mn, _CMP_NEQ_UQ);

    __m256 iscale = _mm256_div_ps(vnmax, _mm256_sub_ps(mx, mn));
    __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale);
    __m256 best = zero;
    for (int i = 0; i < n; i++) {
        __m256i l = nearest8(_mm256_mul_ps(iscale, _mm256_sub_ps(xt[i], mn)));
        lb[i] = _mm256_cvtepi32_ps(clamp8(l, 0, nmax));
        __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, lb[i]), mn), xt[i]);
        __m256 e = use_mad ? _mm256_andnot_ps(sign, diff) : _mm256_mul_ps(diff, diff);
        best = _mm256_add_ps(best, _mm256_mul_ps(wt[i], e));
    }
    for (int is = 0; nstep >= 1 && is <= nstep; is++) {
        /* the same for every lane, and computed as the scalar code does */
        float num = rmin + rdelta * (float)is + (float)nmax;
        iscale = _mm256_div_ps(_mm256_set1_ps(num), _mm256_sub_ps(mx, mn));
        __m256 sl = zero, sl2 = zero, sxl = zero;
        for (int i = 0; i < n; i++) {
            __m256i l = nearest8(_mm256_mul_ps(iscale, _mm256_sub_ps(xt[i], mn)));
            __m256 fl = _mm256_cvtepi32_ps(clamp8(l, 0, nmax));
            __m256 wl = _mm256_mul_ps(wt[i], fl);
            la[i] = fl;
            sl = _mm256_add_ps(sl, wl);
            sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(wl, fl));
            sxl = _mm256_add_ps(sxl, _mm256_mul_ps(wl, xt[i]));
        }
        __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sl2), _mm256_mul_ps(sl, sl));
        __m256 ok = _mm256_and_ps(live, _mm256_cmp_ps(D, zero, _CMP_GT_OQ));
        if (!any8(ok))
            continue;
        __m256 ts = _mm256_div_ps(
            _mm256_sub_ps(_mm256_mul_ps(sum_w, sxl), _mm256_mul_ps(sum_x, sl)), D);
        __m256 tm = _mm256_div_ps(
            _mm256_sub_ps(_mm256_mul_ps(sl2, sum_x), _mm256_mul_ps(sl, sxl)), D);
        __m256 pos = _mm256_cmp_ps(tm, zero, _CMP_GT_OQ);
        tm = _mm256_blendv_ps(tm, zero, pos);
        ts = _mm256_blendv_ps(ts, _mm256_div_ps(sxl, sl2), pos);
        __m256 cur = zero;
        for (int i = 0; i < n; i++) {
            __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(ts, la[i]), tm), xt[i]);
            __m256 e = use_mad ? _mm256_andnot_ps(sign, diff) : _mm256_mul_ps(diff, diff);
            cur = _mm256_add_ps(cur, _mm256_mul_ps(wt[i], e));
        }
        __m256 sel = _mm256_and_ps(ok, _mm256_cmp_ps(cur, best, _CMP_LT_OQ));
        if (!any8(sel))
            continue;
        for (int i = 0; i < n; i++)
            lb[i] = _mm256_blendv_ps(lb[i], la[i], sel);
        best = _mm256_blendv_ps(best, cur, sel);
        scale = _mm256_blendv_ps(scale, ts, sel);
        mn = _mm256_blendv_ps(mn, tm, sel);
    }
    scale = _mm256_blendv_ps(scale, zero, flat);
    _mm256_storeu_ps(scales, scale);
    _mm256_storeu_ps(mins, _mm256_xor_ps(mn, sign));        /* -mn, as the scalar code */
    for (int i = 0; i < n; i++) {
        int32_t q[8];
        _mm256_storeu_si256((__m256i *)q,
                            _mm256_cvtps_epi32(_mm256_blendv_ps(lb[i], zero, flat)));
        for (int j = 0; j < 8; j++)
            L[n * j + i] = (uint8_t)q[j];
    }
}

/*
 * make_qx_quants for the 8 sub-blocks x[n*j .. n*j+n) (n <= 32), weights qw likewise
 * or x^2 when qw is NULL: scales[j] and L[n*j + i] (offset by +nmax), as 8 scalar
 * calls would give them.
 */
void dq__qx_x8_avx2(int n, int nmax, const float *x, int8_t *L, const float *qw,
                    float *scales, float eps)
{
    __m256 xt[32], wt[32];
    __m256i lb[32], la[32];
    const __m256 zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
    const __m256i off = _mm256_set1_epi32(nmax);

    if (n < 1 || n > 32)
        return;
    columns8(x, n, xt);
    if (qw)
        columns8(qw, n, wt);
    else
        for (int i = 0; i < n; i++)
            wt[i] = _mm256_mul_ps(xt[i], xt[i]);
    __m256 max = zero, amax = zero;
    for (int i = 0; i < n; i++) {
        __m256 ax = _mm256_andnot_ps(sign, xt[i]);
        __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = _mm256_blendv_ps(amax, ax, gt);
        max = _mm256_blendv_ps(max, xt[i], gt);
    }
    /* lanes with amax < eps are done: L = 0, scale 0 */
    const __m256 small = _mm256_cmp_ps(amax, _mm256_set1_ps(eps), _CMP_LT_OQ);
    if (_mm256_movemask_ps(small) == 0xFF) {
        memset(L, 0, (size_t)(8 * n));
        memset(scales, 0, 8 * sizeof *scales);
        return;
    }
    __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)(-nmax)), max);
    __m256 sumlx = zero, suml2 = zero;
    for (int i = 0; i < n; i++) {
        __m256i l = clamp8(nearest8(_mm256_mul_ps(iscale, xt[i])), -nmax, nmax - 1);
        __m256 fl = _mm256_cvtepi32_ps(l);
        lb[i] = l;
        sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(wt[i], xt[i]), fl));
        suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(wt[i], fl), fl));
    }
    __m256 scale = _mm256_blendv_ps(_mm256_div_ps(sumlx, suml2), zero,
                                    _mm256_cmp_ps(suml2, zero, _CMP_EQ_OQ));
    __m256 best = _mm256_mul_ps(scale, sumlx);
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        float num = -((float)nmax + 0.1f * (float)is);
        iscale = _mm256_div_ps(_mm256_set1_ps(num), max);
        sumlx = suml2 = zero;
        for (int i = 0; i < n; i++) {
            __m256i l = clamp8(nearest8(_mm256_mul_ps(iscale, xt[i])), -nmax, nmax - 1);
            __m256 fl = _mm256_cvtepi32_ps(l);
            la[i] = l;
            sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(wt[i], xt[i]), fl));
            suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(wt[i], fl), fl));
        }
        __m256 sel = _mm256_and_ps(
            _mm256_cmp_ps(suml2, zero, _CMP_GT_OQ),
            _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2), _CMP_GT_OQ));
        if (!any8(sel))
            continue;
        __m256i seli = _mm256_castps_si256(sel);
        for (int i = 0; i < n; i++)
            lb[i] = _mm256_blendv_epi8(lb[i], la[i], seli);
        __m256 s = _mm256_div_ps(sumlx, suml2);
        scale = _mm256_blendv_ps(scale, s, sel);
        best = _mm256_blendv_ps(best, _mm256_mul_ps(s, sumlx), sel);
    }
    _mm256_storeu_ps(scales, _mm256_blendv_ps(scale, zero, small));
    const __m256i smalli = _mm256_castps_si256(small);
    for (int i = 0; i < n; i++) {
        int32_t q[8];
        __m256i v = _mm256_andnot_si256(smalli, _mm256_add_epi32(lb[i], off));
        _mm256_storeu_si256((__m256i *)q, v);
        for (int j = 0; j < 8; j++)
            L[n * j + i] = (int8_t)q[j];
    }
}

/*
 * best_index_iq4 (dq_quant.c), lane-wise: 0 at or below the first value, 15 at or above
 * the last, else the nearer of values[mu-1], values[mu] (the lower one only when
 * strictly nearer), where mu is what the scalar binary search ends on: 1 + the number of
 * k in 1..14 with !(v < values[k]) (the search's test is monotone in k, and a NaN fails
 * every "v < values[k]", so it ends at 15 as the count does).  *q gets values[index].
 */
static inline __m256i iq4_index8(__m256 v, const float *vf, __m256 *q)
{
    __m256i mu = _mm256_set1_epi32(1);
    for (int k = 1; k < 15; k++)        /* masks are -1: subtracting one adds 1 */
        mu = _mm256_sub_epi32(mu, _mm256_castps_si256(
                                      _mm256_cmp_ps(v, _mm256_set1_ps(vf[k]), _CMP_NLT_UQ)));
    __m256i m1 = _mm256_sub_epi32(mu, _mm256_set1_epi32(1));
    __m256 lo = _mm256_i32gather_ps(vf, m1, 4), hi = _mm256_i32gather_ps(vf, mu, 4);
    __m256 below = _mm256_cmp_ps(_mm256_sub_ps(v, lo), _mm256_sub_ps(hi, v), _CMP_LT_OQ);
    __m256i idx = _mm256_blendv_epi8(mu, m1, _mm256_castps_si256(below));
    __m256 qv = _mm256_blendv_ps(hi, lo, below);
    __m256 first = _mm256_cmp_ps(v, _mm256_set1_ps(vf[0]), _CMP_LE_OQ);
    __m256 last = _mm256_cmp_ps(v, _mm256_set1_ps(vf[15]), _CMP_GE_OQ);
    idx = _mm256_blendv_epi8(idx, _mm256_set1_epi32(15), _mm256_castps_si256(last));
    qv = _mm256_blendv_ps(qv, _mm256_set1_ps(vf[15]), last);
    idx = _mm256_blendv_epi8(idx, _mm256_setzero_si256(), _mm256_castps_si256(first));
    qv = _mm256_blendv_ps(qv, _mm256_set1_ps(vf[0]), first);
    *q = qv;
    return idx;
}

static void iq4_values(float *vf)
{
    for (int k = 0; k < 16; k++)
        vf[k] = (float)dq__kvalues_iq4nl[k];
}

/* L[j] = best_index_iq4(id * x[j]) for j < n (n a multiple of 8). */
void dq__iq4_index_avx2(const float *x, int n, float id, uint8_t *L)
{
    float vf[16];
    __m256 q;
    iq4_values(vf);
    for (int j = 0; j < n; j += 8) {
        int32_t t[8];
        __m256 v = _mm256_mul_ps(_mm256_set1_ps(id), _mm256_loadu_ps(x + j));
        _mm256_storeu_si256((__m256i *)t, iq4_index8(v, vf, &q));
        for (int k = 0; k < 8; k++)
            L[j + k] = (uint8_t)t[k];
    }
}

/*
 * The IQ4 scale search of iq4_quantize (dq_quant.c) for the 8 blocks of 32 at x, with
 * weights w likewise: scales[j] is the d the scalar search leaves for block j (0 when
 * its largest magnitude is below eps).
 */
void dq__iq4_scales_x8_avx2(const float *x, const float *w, float *scales, float eps)
{
    __m256 xt[32], wt[32], q;
    const __m256 zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
    float vf[16];

    iq4_values(vf);
    columns8(x, 32, xt);
    columns8(w, 32, wt);
    __m256 max = zero, amax = zero;
    for (int i = 0; i < 32; i++) {
        __m256 ax = _mm256_andnot_ps(sign, xt[i]);
        __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = _mm256_blendv_ps(amax, ax, gt);
        max = _mm256_blendv_ps(max, xt[i], gt);
    }
    const __m256 small = _mm256_cmp_ps(amax, _mm256_set1_ps(eps), _CMP_LT_OQ);
    if (_mm256_movemask_ps(small) == 0xFF) {
        memset(scales, 0, 8 * sizeof *scales);
        return;
    }
    /* d = -max / values[0]; id = 1 / d */
    __m256 d = _mm256_div_ps(_mm256_xor_ps(max, sign), _mm256_set1_ps(vf[0]));
    __m256 id = _mm256_div_ps(_mm256_set1_ps(1.0f), d);
    __m256 sumqx = zero, sumq2 = zero;
    for (int i = 0; i < 32; i++) {
        (void)iq4_index8(_mm256_mul_ps(id, xt[i]), vf, &q);
        __m256 wq = _mm256_mul_ps(wt[i], q);
        sumqx = _mm256_add_ps(sumqx, _mm256_mul_ps(wq, xt[i]));
        sumq2 = _mm256_add_ps(sumq2, _mm256_mul_ps(wq, q));
    }
    d = _mm256_div_ps(sumqx, sumq2);
    __m256 best = _mm256_mul_ps(d, sumqx);
    for (int itry = -7; itry <= 7; itry++) {
        id = _mm256_div_ps(_mm256_set1_ps((float)(itry + dq__kvalues_iq4nl[0])), max);
        sumqx = sumq2 = zero;
        for (int i = 0; i < 32; i++) {
            (void)iq4_index8(_mm256_mul_ps(id, xt[i]), vf, &q);
            __m256 wq = _mm256_mul_ps(wt[i], q);
            sumqx = _mm256_add_ps(sumqx, _mm256_mul_ps(wq, xt[i]));
            sumq2 = _mm256_add_ps(sumq2, _mm256_mul_ps(wq, q));
        }
        __m256 sel = _mm256_and_ps(
            _mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ),
            _mm256_cmp_ps(_mm256_mul_ps(sumqx, sumqx), _mm256_mul_ps(best, sumq2), _CMP_GT_OQ));
        if (!any8(sel))
            continue;
        __m256 dn = _mm256_div_ps(sumqx, sumq2);
        d = _mm256_blendv_ps(d, dn, sel);
        best = _mm256_blendv_ps(best, _mm256_mul_ps(dn, sumqx), sel);
    }
    _mm256_storeu_ps(scales, _mm256_blendv_ps(d, zero, small));
}

/* ---------------------------------------------------------------------------------------
 * The legacy blocks of 32 without weights (dq_q4_0_quantize, ...): a scan for the scale,
 * then each element on its own.  The scans are order-free where done here (the largest
 * magnitude and its first position; the min and max), and a block whose answer could
 * depend on the order (a +0 / -0 choice) goes to the scalar code.  The elements use
 * the scalar operations: x * id (+ 8.5 / 16.5 / 0.5), truncation (cvttps, x86's
 * (int) of a float, INT32_MIN when out of range), the (int8_t) or (uint8_t) cast.
 */

static inline float hmax8(__m256 m)
{
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
}

static inline float hmin8(__m256 m)
{
    __m128 h = _mm_min_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_min_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_min_ss(h, _mm_shuffle_ps(h, h, 1)));
}

/* signed_absmax (dq_quant.c): the first value of largest magnitude, NaN never taken,
 * +0 when none is above 0. */
static inline float signed_absmax32(const float *x, const __m256 *v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
    __m256 m = zero;
    for (int k = 0; k < 4; k++) {
        __m256 a = _mm256_andnot_ps(sign, v[k]);
        m = _mm256_blendv_ps(m, a, _mm256_cmp_ps(a, m, _CMP_GT_OQ));   /* NaN: no */
    }
    float amax = hmax8(m);                        /* no NaN left: max_ps is exact here */
    if (!(amax > 0.0f))
        return 0.0f;
    for (int j = 0; j < 32; j++)
        if (__builtin_fabsf(x[j]) == amax)
            return x[j];
    return 0.0f;                                  /* not reached */
}

/* min_max (dq_quant.c) with NaN skipped; 1 when the answer is order-free (no zero). */
static inline int min_max32(const __m256 *v, float *mn, float *mx)
{
    __m256 lo = _mm256_set1_ps(FLT_MAX), hi = _mm256_set1_ps(-FLT_MAX);
    for (int k = 0; k < 4; k++) {
        lo = _mm256_blendv_ps(lo, v[k], _mm256_cmp_ps(v[k], lo, _CMP_LT_OQ));
        hi = _mm256_blendv_ps(hi, v[k], _mm256_cmp_ps(v[k], hi, _CMP_GT_OQ));
    }
    *mn = hmin8(lo);
    *mx = hmax8(hi);
    return *mn != 0.0f && *mx != 0.0f;
}

/* (int)(v * id + add), as x86 truncates: the low byte sign-extended when sx (int8_t),
 * else kept as is for the caller's mask. */
static inline __m256i trunc8(__m256 v, __m256 id, __m256 add)
{
    return _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v, id), add));
}

static inline __m256i sext8(__m256i t)
{
    return _mm256_srai_epi32(_mm256_slli_epi32(t, 24), 24);
}

/* the low bytes of the i32 lanes of a (elements j..j+7) and b (j+16..): a | b << 4 */
static inline void pack_nibbles(__m256i a, __m256i b, uint8_t *out)
{
    int32_t t[8];
    _mm256_storeu_si256((__m256i *)t, _mm256_or_si256(a, _mm256_slli_epi32(b, 4)));
    for (int k = 0; k < 8; k++)
        out[k] = (uint8_t)t[k];
}

static inline uint32_t high_bits(__m256i a, int shift)
{
    /* bit 4 of each lane's low byte, lane k to bit shift + k */
    __m256 b = _mm256_castsi256_ps(_mm256_slli_epi32(a, 27));
    return (uint32_t)_mm256_movemask_ps(b) << shift;
}

void dq_q4_0_quantize_avx2(const float *x, void *dst, int64_t n)
{
    struct block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        __m256 v[4];
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_loadu_ps(x + 8 * k);
        float d = signed_absmax32(x, v) / -8;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id), add = _mm256_set1_ps(8.5f);
        __m256i q[4];
        y->d = dq_f32_to_f16(d);
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_min_epi32(_mm256_set1_epi32(15), sext8(trunc8(v[k], vid, add)));
        pack_nibbles(q[0], q[2], y->qs);
        pack_nibbles(q[1], q[3], y->qs + 8);
    }
}

void dq_q5_0_quantize_avx2(const float *x, void *dst, int64_t n)
{
    struct block_q5_0 *y = dst;
    const __m256i m15 = _mm256_set1_epi32(15);
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        __m256 v[4];
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_loadu_ps(x + 8 * k);
        float d = signed_absmax32(x, v) / -16;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id), add = _mm256_set1_ps(16.5f);
        __m256i q[4];
        uint32_t qh = 0;
        y->d = dq_f32_to_f16(d);
        for (int k = 0; k < 4; k++) {
            q[k] = _mm256_min_epi32(_mm256_set1_epi32(31), sext8(trunc8(v[k], vid, add)));
            qh |= high_bits(q[k], 8 * k);
        }
        pack_nibbles(_mm256_and_si256(q[0], m15), _mm256_and_si256(q[2], m15), y->qs);
        pack_nibbles(_mm256_and_si256(q[1], m15), _mm256_and_si256(q[3], m15), y->qs + 8);
        put_le32(y->qh, qh);
    }
}

void dq_q4_1_quantize_avx2(const float *x, void *dst, int64_t n)
{
    struct block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        __m256 v[4];
        float mn, mx;
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_loadu_ps(x + 8 * k);
        if (!min_max32(v, &mn, &mx)) {
            dq_q4_1_quantize(x, y, 32);
            continue;
        }
        float d = (mx - mn) / 15;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id), add = _mm256_set1_ps(0.5f), vmn = _mm256_set1_ps(mn);
        __m256i q[4];
        y->d = dq_f32_to_f16(d);
        y->m = dq_f32_to_f16(mn);
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_min_epi32(_mm256_set1_epi32(15),
                                    sext8(trunc8(_mm256_sub_ps(v[k], vmn), vid, add)));
        pack_nibbles(q[0], q[2], y->qs);
        pack_nibbles(q[1], q[3], y->qs + 8);
    }
}

void dq_q5_1_quantize_avx2(const float *x, void *dst, int64_t n)
{
    struct block_q5_1 *y = dst;
    const __m256i m15 = _mm256_set1_epi32(15);
    for (int64_t i = 0; i < n / 32; i++, x += 32, y++) {
        __m256 v[4];
        float mn, mx;
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_loadu_ps(x + 8 * k);
        if (!min_max32(v, &mn, &mx)) {
            dq_q5_1_quantize(x, y, 32);
            continue;
        }
        float d = (mx - mn) / 31;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id), add = _mm256_set1_ps(0.5f), vmn = _mm256_set1_ps(mn);
        __m256i q[4];
        uint32_t qh = 0;
        y->d = dq_f32_to_f16(d);
        y->m = dq_f32_to_f16(mn);
        for (int k = 0; k < 4; k++) {
            /* (uint8_t), no clamp, as the scalar code */
            q[k] = _mm256_and_si256(trunc8(_mm256_sub_ps(v[k], vmn), vid, add),
                                    _mm256_set1_epi32(255));
            qh |= high_bits(q[k], 8 * k);
        }
        pack_nibbles(_mm256_and_si256(q[0], m15), _mm256_and_si256(q[2], m15), y->qs);
        pack_nibbles(_mm256_and_si256(q[1], m15), _mm256_and_si256(q[3], m15), y->qs + 8);
        put_le32(y->qh, qh);
    }
}

#else
/* Not x86: nothing to compile here (ISO C forbids an empty translation unit). */
typedef int dq_quant_avx2_unused;
#endif
