/*
 * dq_iq2.c - the IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S and IQ1_M quantizers, byte-identical
 * with ggml's quantize_iq2_xxs / _iq2_xs / _iq2_s / _iq1_s / _iq1_m WITH importance
 * weights (llama-quantize makes these types only with an imatrix; the blocks are drawn
 * in reference/gguf-quant.md 3.6 and dq_ref.c).
 *
 * All five search an E8-like lattice: groups of 8 values, each magnitude one of three
 * levels (IQ2: 1, 3, 5 in units of the scale, stored as grid bytes 8, 25, 43; IQ1:
 * -1, 0, +1 around a shift), of which 256 / 512 / 1024 / 2048 combinations are grid
 * points.  The map from the 3^8 level combinations (2 bits a level, index
 * sum l_i << 2i) to grid points, and for a point off the grid the list of grid points
 * nearest to it, are built once at run time (pthread_once) from the dequantization
 * grids of dq_grids.h, the way ggml's iq2xs_init_impl builds them:
 *
 *   sort the grid points by squared distance to the point (in units of 2l+1; ties by
 *   index) and keep all those within the nwant smallest distinct distances (nwant = 2
 *   for IQ2_XXS and IQ2_XS, 1 for IQ2_S, 3 for IQ1_S and IQ1_M).
 *
 * ggml also builds lists for level 3 (never looked up); we build only the 3^8 points
 * the quantizers can reach.
 *
 * One known difference: IQ1_S / IQ1_M blocks whose values are ALL below 1e-12 / 1e-7
 * in magnitude are skipped, and ggml then writes the shift flag that block position
 * had in an earlier block of the same ggml_quantize_chunk call (an array that outlives
 * the rows, uninitialized at the start): its bytes depend on how llama-quantize split
 * the rows among its threads.  We carry the flag along the row (0 at its start), so
 * such blocks can differ in that one flag bit; real weights do not have them (the
 * test fixture has none).  Float evaluation follows ggml expression by expression
 * (dq_quant.c's header: -ffp-contract=off, nearest_int is round-half-even).
 */
#include "dq.h"
#include "dq_impl.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dq_grids.h"
#include "../common/banned.h"

#define KMAP 43692              /* ggml's kmap_size: indices 0 .. 0xAAAB */
#define EPS 1e-15f              /* GROUP_MAX_EPS */
#define EPS_IQ2_S 1e-8f

struct lattice8 {
    int       n;                /* grid size */
    uint8_t (*lv)[8];           /* level 0..2 of each element of each grid point */
    int32_t  *map;              /* KMAP: grid index, or -(offset + 1) into nb, or INT32_MIN */
    uint16_t *nb;               /* per off-grid point: count, then that many indices */
};

enum { L_IQ2XXS, L_IQ2XS, L_IQ2S, L_IQ1S, L_COUNT };
static struct lattice8 lat8[L_COUNT];
static pthread_once_t lat8_once = PTHREAD_ONCE_INIT;
static int lat8_ok;

static int level_of(int which, uint64_t g, int i)
{
    int b = (int)((g >> (8 * i)) & 255);
    if (which == L_IQ1S)
        return (int)(int8_t)b + 1;          /* -1, 0, +1 */
    return b == 0x08 ? 0 : b == 0x19 ? 1 : 2;   /* 8, 25, 43 */
}

static int build8(struct lattice8 *L, int which, int n, int nwant)
{
    const uint64_t *g = which == L_IQ2XXS ? dq_iq2xxs_grid : which == L_IQ2XS ? dq_iq2xs_grid
                        : which == L_IQ2S ? dq_iq2s_grid : dq_iq1s_grid;
    int *d2 = malloc((size_t)n * sizeof *d2);
    size_t cap = 0, used = 0;

    L->n = n;
    L->lv = malloc((size_t)n * sizeof *L->lv);
    L->map = malloc(KMAP * sizeof *L->map);
    if (!d2 || !L->lv || !L->map) {
        free(d2);
        return -1;
    }
    for (int u = 0; u < KMAP; u++)
        L->map[u] = INT32_MIN;                 /* not reachable (a level 3) */
    for (int u = 0; u < KMAP; u++) {
        int ok = 1;
        for (int i = 0; i < 8; i++)
            ok &= ((u >> (2 * i)) & 3) != 3;
        if (ok)
            L->map[u] = -1;
    }
    for (int k = 0; k < n; k++) {
        int u = 0;
        for (int i = 0; i < 8; i++) {
            L->lv[k][i] = (uint8_t)level_of(which, g[k], i);
            u |= L->lv[k][i] << (2 * i);
        }
        L->map[u] = k;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !(L->nb = malloc(cap * sizeof *L->nb))) {
            free(d2);
            return -1;
        }
        for (int u = 0; u < KMAP; u++) {
            if (L->map[u] != -1 && !(pass == 1 && L->map[u] < -1 && L->map[u] != INT32_MIN))
                continue;
            if (pass == 1 && L->map[u] != -1)
                continue;
            /* distances in units of 2l+1 (ggml: (2l+1) - (2l'+1)) */
            for (int j = 0; j < n; j++) {
                int s = 0;
                for (int i = 0; i < 8; i++) {
                    int dd = 2 * L->lv[j][i] - 2 * ((u >> (2 * i)) & 3);
                    s += dd * dd;
                }
                d2[j] = s;
            }
            /* the nwant smallest distinct distances, then every point at one of them, by
             * distance then index: what a stable (distance, index) sort keeps */
            int lim[4], nl = 0;
            for (int t = 0; t < nwant; t++) {
                int best = INT32_MAX;
                for (int j = 0; j < n; j++)
                    if (d2[j] < best && (nl == 0 || d2[j] > lim[nl - 1]))
                        best = d2[j];
                if (best == INT32_MAX)
                    break;
                lim[nl++] = best;
            }
            size_t start = used;
            int cnt = 0;
            if (pass == 1)
                used++;
            for (int t = 0; t < nl; t++)
                for (int j = 0; j < n; j++)
                    if (d2[j] == lim[t]) {
                        if (pass == 1)
                            L->nb[used++] = (uint16_t)j;
                        cnt++;
                    }
            if (pass == 0) {
                cap += (size_t)cnt + 1;
            } else {
                L->nb[start] = (uint16_t)cnt;
                L->map[u] = -(int32_t)(start + 1);
            }
        }
    }
    free(d2);
    return 0;
}

static void lat8_init(void)
{
    lat8_ok = build8(&lat8[L_IQ2XXS], L_IQ2XXS, 256, 2) == 0 &&
              build8(&lat8[L_IQ2XS], L_IQ2XS, 512, 2) == 0 &&
              build8(&lat8[L_IQ2S], L_IQ2S, 1024, 1) == 0 &&
              build8(&lat8[L_IQ1S], L_IQ1S, 2048, 3) == 0;
}

int dq__iq2_ready(void)
{
    pthread_once(&lat8_once, lat8_init);
    return lat8_ok;
}

static int clamp02(int l) { return l < 0 ? 0 : l > 2 ? 2 : l; }

static int index8(const int8_t *L)
{
    int u = 0;
    for (int i = 0; i < 8; i++)
        u |= L[i] << (2 * i);
    return u;
}

/* Levels for one group of 8 at inverse scale id; snapped onto the grid (sets *on). */
static int snap8(const struct lattice8 *G, const float *xval, const float *waux, float id,
                 float scale, int8_t *L, int *on)
{
    for (int i = 0; i < 8; i++)
        L[i] = (int8_t)clamp02(dq__nearest_int(0.5f * (id * xval[i] - 1)));
    int u = index8(L);
    *on = G->map[u] >= 0;
    return *on ? G->map[u] : dq__lattice_nearest(&G->lv[0][0], 8, G->nb + (-G->map[u] - 1),
                                                  xval, waux, scale, L);
}

static float sums_scale(const float *w, const float *xval, const int8_t *L, int n, float *sumq2)
{
    float sumqx = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        float q = (float)(2 * L[i] + 1);
        sumqx += w[i] * xval[i] * q;
        s2 += w[i] * q * q;
    }
    *sumq2 = s2;
    return sumqx;
}

/* |x| into xval and the sign bits of each group of 8; with parity (IQ2_XXS, IQ2_XS)
 * the count of flipped signs is made even by flipping the element of least w * x^2. */
static void signs8(const float *xb, const float *weight, int ngroups, int parity, float *xval,
                   uint8_t *signs)
{
    for (int k = 0; k < ngroups; k++) {
        int nflip = 0;
        unsigned s = 0;
        for (int i = 0; i < 8; i++) {
            if (xb[8 * k + i] >= 0) {
                xval[8 * k + i] = xb[8 * k + i];
            } else {
                xval[8 * k + i] = -xb[8 * k + i];
                nflip++;
                s |= 1u << i;
            }
        }
        if (parity && nflip % 2) {
            int imin = 0;
            float mn = weight[8 * k] * xb[8 * k] * xb[8 * k];
            for (int i = 1; i < 8; i++) {
                float ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                if (ax < mn) {
                    mn = ax;
                    imin = i;
                }
            }
            xval[8 * k + imin] = -xval[8 * k + imin];
            s ^= 1u << imin;
        }
        signs[k] = (uint8_t)(parity ? s & 127 : s);
    }
}

static float block_sum_x2(const float *x)
{
    float s = 0;
    for (int i = 0; i < 256; i++)
        s += x[i] * x[i];
    return s;
}

/* ---------------------------------------------------------------------------------------
 * IQ2_XXS: blocks of 32 (four groups of 8, 8-bit grid indices, 7-bit signs with even
 * parity, a 4-bit block scale in the top of the signs word), d = max scale / 31.
 */
void dq_iq2_xxs_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    const struct lattice8 *G = &lat8[L_IQ2XXS];
    struct block_iq2_xxs *y = dst;

    for (int64_t ibl = 0; ibl < n / 256; ibl++, x += 256, qw += 256, y++) {
        uint32_t q2[16];
        float scales[8], max_scale = 0;
        float sigma2 = block_sum_x2(x) / 256;

        memset(q2, 0, sizeof q2);
        y->d = dq_f32_to_f16(0.f);
        for (int ib = 0; ib < 8; ib++) {
            const float *xb = x + 32 * ib;
            float weight[32], waux[32], xval[32], sumq2;
            uint8_t sg[4], Lqp[32];
            int8_t L[32], Laux[32];
            int on;

            for (int i = 0; i < 32; i++)
                weight[i] = qw[32 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i]);
            for (int i = 0; i < 32; i++)
                waux[i] = sqrtf(weight[i]);
            signs8(xb, weight, 4, 1, xval, sg);
            float max = xval[0];
            for (int i = 1; i < 32; i++)
                max = max > xval[i] ? max : xval[i];
            if (max < EPS) {
                scales[ib] = 0;
                continue;
            }
            float scale = dq__make_qp_quants(32, 4, xval, Lqp, weight);
            for (int i = 0; i < 32; i++)
                L[i] = (int8_t)Lqp[i];
            float eff_max = scale * 3, best = 0;
            for (int is = -6; is <= 6; is++) {
                float id = (5 + (float)is * 0.1f) / eff_max;
                float this_scale = 1 / id;
                for (int k = 0; k < 4; k++)
                    snap8(G, xval + 8 * k, waux + 8 * k, id, this_scale, Laux + 8 * k, &on);
                float sumqx = sums_scale(weight, xval, Laux, 32, &sumq2);
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    scale = sumqx / sumq2;
                    best = scale * sumqx;
                    memcpy(L, Laux, 32);
                }
            }
            if (scale > 0) {
                float id = 1 / scale;
                for (int k = 0; k < 4; k++)
                    snap8(G, xval + 8 * k, waux + 8 * k, id, scale, L + 8 * k, &on);
                float sumqx = sums_scale(weight, xval, L, 32, &sumq2);
                if (sumq2 > 0)
                    scale = sumqx / sumq2;
            }
            if (scale < 0) {
                scale = -scale;
                for (int k = 0; k < 4; k++)
                    sg[k] = (uint8_t)(~sg[k] & 127);
            }
            for (int k = 0; k < 4; k++) {
                int gi = G->map[index8(L + 8 * k)];
                if (gi < 0)
                    gi = 0;        /* unreachable: every group was snapped (ggml aborts) */
                q2[2 * ib] |= (uint32_t)gi << (8 * k);
                q2[2 * ib + 1] |= (uint32_t)sg[k] << (7 * k);
            }
            scales[ib] = scale;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        if (max_scale == 0.0f) {
            memset(y->qs, 0, sizeof y->qs);
            continue;
        }
        float d = max_scale / 31;
        y->d = dq_f32_to_f16(d);
        float id = 1 / d;
        for (int ib = 0; ib < 8; ib++) {
            int l = dq__nearest_int(0.5f * (id * scales[ib] - 1));
            l = l < 0 ? 0 : l > 15 ? 15 : l;
            q2[2 * ib + 1] |= (uint32_t)l << 28;
        }
        for (int i = 0; i < 16; i++)
            put_le32((uint8_t *)y->qs + 4 * i, q2[i]);
    }
}

/*
 * IQ2_XS and IQ2_S: blocks of 16 (two groups of 8), 4-bit block scales.  IQ2_XS: 9-bit
 * grid indices with 7 sign bits (even parity) in one u16, sigma2 = <x^2>, d = max/31.
 * IQ2_S: 10-bit indices (low 8 in qs, high 2 in qh), 8 plain sign bits, sigma2 =
 * 2 <x^2>, its own zero threshold, d = max/31 * 0.9875.  The final pass re-snaps only
 * the groups that were off the grid.
 */
/* L is ggml's level buffer, which lives for the whole row: a block whose sweep never
 * improves on "best = 0" (all its weights 0) keeps the levels of the block before it,
 * as ggml does (zeros at the start of a row). */
static void iq2_16(const struct lattice8 *G, int is_s, const float *x, const float *qw,
                   float *scales, int8_t (*Lall)[16], uint8_t (*sgall)[2], int *skip,
                   int8_t *L)
{
    float sumx2 = block_sum_x2(x);
    float sigma2 = is_s ? 2 * sumx2 / 256 : sumx2 / 256;

    for (int ib = 0; ib < 16; ib++) {
        const float *xb = x + 16 * ib;
        float weight[16], waux[16], xval[16], sumq2;
        int8_t Laux[16];
        int on_grid[2] = { 1, 1 }, on_aux[2];

        for (int i = 0; i < 16; i++)
            weight[i] = qw[16 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i]);
        for (int i = 0; i < 16; i++)
            waux[i] = sqrtf(weight[i]);
        signs8(xb, weight, 2, !is_s, xval, sgall[ib]);
        float max = xval[0];
        for (int i = 1; i < 16; i++)
            max = max > xval[i] ? max : xval[i];
        skip[ib] = 0;
        if (max < (is_s ? EPS_IQ2_S : EPS)) {
            scales[ib] = 0;
            skip[ib] = 1;
            if (!is_s)
                memset(L, 0, 16);
            continue;
        }
        float best = 0, scale = max / 5;
        for (int is = -9; is <= 9; is++) {
            float id = (5 + (float)is * 0.1f) / max;
            float this_scale = 1 / id;
            for (int k = 0; k < 2; k++)
                snap8(G, xval + 8 * k, waux + 8 * k, id, this_scale, Laux + 8 * k, &on_aux[k]);
            float sumqx = sums_scale(weight, xval, Laux, 16, &sumq2);
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                memcpy(L, Laux, 16);
                on_grid[0] = on_aux[0];
                on_grid[1] = on_aux[1];
            }
        }
        if ((!on_grid[0] || !on_grid[1]) && scale > 0) {
            float id = 1 / scale;
            int on;
            for (int k = 0; k < 2; k++)
                if (!on_grid[k])
                    snap8(G, xval + 8 * k, waux + 8 * k, id, scale, L + 8 * k, &on);
            float sumqx = sums_scale(weight, xval, L, 16, &sumq2);
            if (sumq2 > 0)
                scale = sumqx / sumq2;
        }
        if (scale < 0) {
            scale = -scale;
            for (int k = 0; k < 2; k++)
                sgall[ib][k] = (uint8_t)(is_s ? ~sgall[ib][k] : ~sgall[ib][k] & 127);
        }
        scales[ib] = scale;
        memcpy(Lall[ib], L, 16);
    }
}

static uint8_t scale4(float id, float s)
{
    int l = dq__nearest_int(0.5f * (id * s - 1));
    return (uint8_t)(l < 0 ? 0 : l > 15 ? 15 : l);
}

void dq_iq2_xs_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    const struct lattice8 *G = &lat8[L_IQ2XS];
    struct block_iq2_xs *y = dst;
    int8_t Lrow[16] = { 0 };

    for (int64_t ibl = 0; ibl < n / 256; ibl++, x += 256, qw += 256, y++) {
        float scales[16], max_scale = 0;
        int8_t L[16][16];
        uint8_t sg[16][2];
        int skip[16];
        uint16_t q2[32];

        memset(q2, 0, sizeof q2);
        memset(y->scales, 0, sizeof y->scales);
        y->d = dq_f32_to_f16(0.f);
        iq2_16(G, 0, x, qw, scales, L, sg, skip, Lrow);
        for (int ib = 0; ib < 16; ib++) {
            if (skip[ib])
                continue;
            for (int k = 0; k < 2; k++) {
                int gi = G->map[index8(L[ib] + 8 * k)];
                q2[2 * ib + k] = (uint16_t)((gi < 0 ? 0 : gi) | sg[ib][k] << 9);
            }
            max_scale = max_scale > scales[ib] ? max_scale : scales[ib];
        }
        if (max_scale == 0.0f) {
            memset(y->qs, 0, sizeof y->qs);
            continue;
        }
        float d = max_scale / 31;
        y->d = dq_f32_to_f16(d);
        float id = 1 / d;
        for (int ib = 0; ib < 16; ib++)
            y->scales[ib / 2] |= (uint8_t)(scale4(id, scales[ib]) << (4 * (ib % 2)));
        for (int i = 0; i < 32; i++)
            put_le16((uint8_t *)y->qs + 2 * i, q2[i]);
    }
}

void dq_iq2_s_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    const struct lattice8 *G = &lat8[L_IQ2S];
    struct block_iq2_s *y = dst;
    int8_t Lrow[16] = { 0 };

    for (int64_t ibl = 0; ibl < n / 256; ibl++, x += 256, qw += 256, y++) {
        float scales[16], max_scale = 0;
        int8_t L[16][16];
        uint8_t sg[16][2];
        int skip[16];

        memset(y, 0, sizeof *y);
        y->d = dq_f32_to_f16(0.f);
        iq2_16(G, 1, x, qw, scales, L, sg, skip, Lrow);
        for (int ib = 0; ib < 16; ib++) {
            if (skip[ib])
                continue;
            for (int k = 0; k < 2; k++) {
                int gi = G->map[index8(L[ib] + 8 * k)], i8 = 2 * ib + k;
                gi = gi < 0 ? 0 : gi;
                y->qs[i8] = (uint8_t)(gi & 255);
                y->qh[i8 / 4] |= (uint8_t)((gi >> 8) << (2 * (i8 % 4)));
                y->signs[i8] = sg[ib][k];
            }
            max_scale = max_scale > scales[ib] ? max_scale : scales[ib];
        }
        if (max_scale == 0.0f)
            continue;
        float d = max_scale / 31;
        y->d = dq_f32_to_f16(d * 0.9875f);
        float id = 1 / d;
        for (int ib = 0; ib < 16; ib++)
            y->scales[ib / 2] |= (uint8_t)(scale4(id, scales[ib]) << (4 * (ib % 2)));
    }
}

/* ---------------------------------------------------------------------------------------
 * IQ1_S and IQ1_M: ternary groups of 8 (-1, 0, +1 shifted by +-delta) on the 2048-point
 * grid.  Each block (32 for IQ1_S, 16 for IQ1_M) is solved exactly: the values are
 * sorted (qsort, as ggml, so that equal values keep glibc's order) and every pair of
 * boundaries splitting them into the three levels is scored; off-grid groups snap to
 * the neighbour of least weighted error (iq1_find_best_neighbour2).
 */
#define IQ1_DELTA 0.125f
#define EPS_IQ1_S 1e-12f
#define EPS_IQ1_M 1e-7f

struct fpair { float x; int i; };

static int fpair_cmp(const void *a, const void *b)
{
    const float l = ((const struct fpair *)a)->x, r = ((const struct fpair *)b)->x;
    return l < r ? -1 : l > r ? 1 : 0;
}

static const float x_p[3] = { -1 + IQ1_DELTA, IQ1_DELTA, 1 + IQ1_DELTA };
static const float x_m[3] = { -1 - IQ1_DELTA, -IQ1_DELTA, 1 - IQ1_DELTA };

/* The grid point for the levels L[0..8) (snapped when off the grid: *on = 0). */
static int snap_iq1(const float *xb, const float *w, float scale, const float *xx, int8_t *L,
                    int *on)
{
    const struct lattice8 *G = &lat8[L_IQ1S];
    int u = index8(L);
    if (G->map[u] >= 0) {
        *on = 1;
        return G->map[u];
    }
    *on = 0;
    const uint16_t *nb = G->nb + (-G->map[u] - 1);
    int gi = nb[1];
    float best = FLT_MAX;
    for (int j = 1; j <= nb[0]; j++) {
        float d2 = 0;
        for (int i = 0; i < 8; i++) {
            float q = xx[G->lv[nb[j]][i]];
            float diff = scale * q - xb[i];
            d2 += w[i] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            gi = nb[j];
        }
    }
    for (int i = 0; i < 8; i++)
        L[i] = (int8_t)G->lv[gi][i];
    return gi;
}

/* Sort a block's values, keeping their positions (pairs as ggml lays them out). */
static void sort_block(const float *xb, int bs, struct fpair *p)
{
    for (int j = 0; j < bs; j++) {
        p[j].x = xb[j];
        p[j].i = j;
    }
    qsort(p, (size_t)bs, sizeof *p, fpair_cmp);
}

void dq_iq1_s_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    const struct lattice8 *G = &lat8[L_IQ1S];
    struct block_iq1_s *y = dst;
    int shifts[8] = { 0 };        /* lives for the row, as ggml's (a zero block reuses it) */

    for (int64_t ibl = 0; ibl < n / 256; ibl++, x += 256, qw += 256, y++) {
        float scales[8], max_scale = 0;
        uint16_t qh[8] = { 0 };
        float sigma2 = 2 * block_sum_x2(x) / 256;

        y->d = dq_f32_to_f16(0.f);
        memset(y->qs, 0, sizeof y->qs);
        for (int ib = 0; ib < 8; ib++) {
            const float *xb = x + 32 * ib;
            float weight[32], sumx[33], sumw[33];
            struct fpair p[32];
            int8_t L[32];
            int index[4], all_on = 1;

            for (int i = 0; i < 32; i++)
                weight[i] = qw[32 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i]);
            float max = fabsf(xb[0]);
            for (int i = 1; i < 32; i++)
                max = max > fabsf(xb[i]) ? max : fabsf(xb[i]);
            if (max < EPS_IQ1_S) {
                scales[ib] = 0;
                continue;
            }
            sort_block(xb, 32, p);
            sumx[0] = sumw[0] = 0;
            for (int j = 0; j < 32; j++) {
                int i = p[j].i;
                sumx[j + 1] = sumx[j] + weight[i] * xb[i];
                sumw[j + 1] = sumw[j] + weight[i];
            }
            float best_score = -FLT_MIN, scale = max;
            int besti1 = -1, besti2 = -1, best_shift = 0;
            for (int i1 = 0; i1 <= 32; i1++)
                for (int i2 = i1; i2 <= 32; i2++) {
                    float a = sumx[i1] - sumx[0], b = sumx[i2] - sumx[i1], c = sumx[32] - sumx[i2];
                    float wa = sumw[i1] - sumw[0], wb = sumw[i2] - sumw[i1], wc = sumw[32] - sumw[i2];
                    float sumqx = a * x_p[0] + b * x_p[1] + c * x_p[2];
                    float sumq2 = wa * x_p[0] * x_p[0] + wb * x_p[1] * x_p[1] + wc * x_p[2] * x_p[2];
                    if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
                        scale = sumqx / sumq2;
                        best_score = scale * sumqx;
                        besti1 = i1;
                        besti2 = i2;
                        best_shift = 1;
                    }
                    sumqx = a * x_m[0] + b * x_m[1] + c * x_m[2];
                    sumq2 = wa * x_m[0] * x_m[0] + wb * x_m[1] * x_m[1] + wc * x_m[2] * x_m[2];
                    if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
                        scale = sumqx / sumq2;
                        best_score = scale * sumqx;
                        besti1 = i1;
                        besti2 = i2;
                        best_shift = -1;
                    }
                }
            if (besti1 < 0) {              /* ggml asserts; only with all weights 0 */
                besti1 = besti2 = 0;
                best_shift = 1;
            }
            for (int j = 0; j < 32; j++)
                L[p[j].i] = (int8_t)(j < besti1 ? 0 : j < besti2 ? 1 : 2);
            if (scale < 0) {
                for (int j = 0; j < 32; j++)
                    L[j] = (int8_t)(2 - L[j]);
                scale = -scale;
                best_shift = -best_shift;
            }
            const float *xx = best_shift == 1 ? x_p : x_m;
            for (int k = 0; k < 4; k++) {
                int on;
                index[k] = snap_iq1(xb + 8 * k, weight + 8 * k, scale, xx, L + 8 * k, &on);
                all_on &= on;
            }
            if (!all_on) {
                float sumqx = 0, sumq2 = 0;
                for (int k = 0; k < 4; k++)
                    for (int j = 0; j < 8; j++) {
                        float w = weight[8 * k + j];
                        float q = xx[G->lv[index[k]][j]];
                        sumqx += w * q * xb[8 * k + j];
                        sumq2 += w * q * q;
                    }
                if (sumqx > 0 && sumq2 > 0)
                    scale = sumqx / sumq2;
            }
            uint16_t h = 0;
            for (int k = 0; k < 4; k++) {
                y->qs[4 * ib + k] = (uint8_t)(index[k] & 255);
                h = (uint16_t)(h | (index[k] >> 8) << (3 * k));
            }
            qh[ib] = h;
            scales[ib] = scale;
            shifts[ib] = best_shift;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        if (max_scale != 0.0f) {
            float d = max_scale / 15;
            y->d = dq_f32_to_f16(d * 1.125f);
            float id = 1 / d;
            for (int ib = 0; ib < 8; ib++) {
                int l = dq__nearest_int(0.5f * (id * scales[ib] - 1));
                l = l < 0 ? 0 : l > 7 ? 7 : l;
                if (shifts[ib] == -1)
                    l |= 8;
                qh[ib] = (uint16_t)(qh[ib] | l << 12);
            }
        }
        for (int ib = 0; ib < 8; ib++)
            put_le16((uint8_t *)y->qh + 2 * ib, qh[ib]);
    }
}

/* IQ1_M: blocks of 16, each half with its own shift sign (4 cases), 3-bit block scales
 * and the f16 super-scale spread over the top nibbles of the four scale words. */
void dq_iq1_m_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    const struct lattice8 *G = &lat8[L_IQ1S];
    struct block_iq1_m *y = dst;
    static const uint8_t masks[4] = { 0x00, 0x80, 0x08, 0x88 };
    int shifts[16] = { 0 };       /* ggml's lives for the whole call: a zero block reuses
                                     the shift its position had in the block before */

    for (int64_t ibl = 0; ibl < n / 256; ibl++, x += 256, qw += 256, y++) {
        float scales[16], max_scale = 0;
        uint16_t sc[4] = { 0 };
        float sigma2 = 2 * block_sum_x2(x) / 256;

        memset(y, 0, sizeof *y);
        for (int ib = 0; ib < 16; ib++) {
            const float *xb = x + 16 * ib;
            float weight[16];
            struct fpair p[16];
            int8_t L[16];
            int index[2], all_on = 1;

            for (int i = 0; i < 16; i++)
                weight[i] = qw[16 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i]);
            float max = fabsf(xb[0]);
            for (int i = 1; i < 16; i++)
                max = max > fabsf(xb[i]) ? max : fabsf(xb[i]);
            if (max < EPS_IQ1_M) {
                scales[ib] = 0;
                continue;
            }
            sort_block(xb, 16, p);
            float best_score = -FLT_MIN, scale = max;
            int besti1 = -1, besti2 = -1, best_k = -1;
            for (int i1 = 0; i1 <= 16; i1++)
                for (int i2 = i1; i2 <= 16; i2++) {
                    float sqx[4] = { 0 }, sq2[4] = { 0 };
                    for (int j = 0; j < 16; j++) {
                        int i = p[j].i, lv = j < i1 ? 0 : j < i2 ? 1 : 2;
                        float wp = weight[i] * x_p[lv], wm = weight[i] * x_m[lv];
                        float qxp = wp * xb[i], qxm = wm * xb[i];
                        float q2p = wp * x_p[lv], q2m = wm * x_m[lv];
                        /* first half: cases 0,1 use +, 2,3 use -; second: 0,2 +, 1,3 - */
                        if (i < 8) {
                            sqx[0] += qxp; sqx[1] += qxp; sqx[2] += qxm; sqx[3] += qxm;
                            sq2[0] += q2p; sq2[1] += q2p; sq2[2] += q2m; sq2[3] += q2m;
                        } else {
                            sqx[0] += qxp; sqx[2] += qxp; sqx[1] += qxm; sqx[3] += qxm;
                            sq2[0] += q2p; sq2[2] += q2p; sq2[1] += q2m; sq2[3] += q2m;
                        }
                    }
                    for (int k = 0; k < 4; k++)
                        if (sq2[k] > 0 && sqx[k] * sqx[k] > best_score * sq2[k]) {
                            scale = sqx[k] / sq2[k];
                            best_score = scale * sqx[k];
                            besti1 = i1;
                            besti2 = i2;
                            best_k = k;
                        }
                }
            if (besti1 < 0) {              /* ggml asserts; only with all weights 0 */
                besti1 = besti2 = 0;
                best_k = 0;
            }
            for (int j = 0; j < 16; j++)
                L[p[j].i] = (int8_t)(j < besti1 ? 0 : j < besti2 ? 1 : 2);
            if (scale < 0) {
                for (int j = 0; j < 16; j++)
                    L[j] = (int8_t)(2 - L[j]);
                scale = -scale;
                best_k = 3 - best_k;
            }
            for (int k = 0; k < 2; k++) {
                const float *xx = (k == 0 ? best_k < 2 : best_k % 2 == 0) ? x_p : x_m;
                int on;
                index[k] = snap_iq1(xb + 8 * k, weight + 8 * k, scale, xx, L + 8 * k, &on);
                all_on &= on;
            }
            if (!all_on) {
                float sumqx = 0, sumq2 = 0;
                for (int k = 0; k < 2; k++) {
                    const float *xx = (k == 0 ? best_k < 2 : best_k % 2 == 0) ? x_p : x_m;
                    for (int j = 0; j < 8; j++) {
                        float w = weight[8 * k + j];
                        float q = xx[G->lv[index[k]][j]];
                        sumqx += w * q * xb[8 * k + j];
                        sumq2 += w * q * q;
                    }
                }
                if (sumqx > 0 && sumq2 > 0)
                    scale = sumqx / sumq2;
            }
            y->qs[2 * ib] = (uint8_t)(index[0] & 255);
            y->qs[2 * ib + 1] = (uint8_t)(index[1] & 255);
            y->qh[ib] = (uint8_t)((index[0] >> 8) | (index[1] >> 8) << 4);
            scales[ib] = scale;
            shifts[ib] = best_k;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        if (max_scale == 0.0f)
            continue;
        float d = max_scale / 15, id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int ib = 0; ib < 16; ib++) {
            const float *xb = x + 16 * ib;
            int l = dq__nearest_int(0.5f * (id * scales[ib] - 1));
            l = l < 0 ? 0 : l > 7 ? 7 : l;
            sc[ib / 4] = (uint16_t)(sc[ib / 4] | l << (3 * (ib % 4)));
            y->qh[ib] |= masks[shifts[ib]];
            for (int k = 0; k < 2; k++) {
                const float *xx = (k == 0 ? shifts[ib] < 2 : shifts[ib] % 2 == 0) ? x_p : x_m;
                int gi = y->qs[2 * ib + k] + ((y->qh[ib] << (8 - 4 * k)) & 0x700);
                for (int j = 0; j < 8; j++) {
                    float w = qw[16 * ib + 8 * k + j] *
                              sqrtf(sigma2 + xb[8 * k + j] * xb[8 * k + j]);
                    float q = xx[G->lv[gi][j]] * (float)(2 * l + 1);
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
        }
        if (sumq2 > 0)
            d = sumqx / sumq2;
        uint16_t s = dq_f32_to_f16(d * 1.1125f);
        sc[0] = (uint16_t)(sc[0] | (s & 0x000f) << 12);
        sc[1] = (uint16_t)(sc[1] | (s & 0x00f0) << 8);
        sc[2] = (uint16_t)(sc[2] | (s & 0x0f00) << 4);
        sc[3] = (uint16_t)(sc[3] | (s & 0xf000));
        for (int i = 0; i < 4; i++)
            put_le16((uint8_t *)y->scales + 2 * i, sc[i]);
    }
}
