/*
 * dq_iq3.c - the IQ3_XXS and IQ3_S quantizers, byte-identical with ggml's
 * quantize_iq3_xxs / quantize_iq3_s without an importance matrix (what llama-quantize
 * runs for IQ3_XS, IQ3_S and IQ3_M; reference/gguf-quant.md 3.6 draws the blocks).
 *
 * Both search a D4-like lattice: groups of 4 values, each magnitude one of 8 odd
 * levels 2l+1 (l = 0..7, 3 bits), of which only 256 (IQ3_XXS) or 512 (IQ3_S) of the
 * 4096 combinations are grid points.  A point off the grid is replaced by its best
 * neighbour among the grid points nearest to it: the neighbour lists are built once
 * at run time (pthread_once) from the dequantization grids of dq_grids.h, as ggml's
 * iq3xs_init_impl builds them from its own copy of the grid:
 *
 *   for every 3-bit point u off the grid: sort the grid points by squared distance
 *   to u (ties by index) and keep all those within the nwant smallest distinct
 *   distances (nwant = 2 for IQ3_XXS, 3 for IQ3_S).
 *
 * The level of a grid byte: IQ3_S stores 2l+1 itself; IQ3_XXS stores 4, 12, ..., 52,
 * 62, i.e. l = byte / 8.  The float evaluation order follows ggml (see dq_quant.c's
 * header: -ffp-contract=off, nearest_int is round-half-even).
 *
 * Quirks kept on purpose, because they are ggml's bytes: IQ3_S does not advance its
 * qs / signs write position past an all-zero group of 32 (later groups move up; qh
 * and the scales stay in place); IQ3_XXS makes the number of flipped signs in each
 * group of 8 even by flipping the element of least weight * x^2.
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

#define KMAP 4096               /* 4 levels of 3 bits */
#define IQ3XXS_EPS 1e-8f        /* ggml's GROUP_MAX_EPS_IQ3_XXS */

struct iq3_lattice {
    int      n;                 /* grid size */
    uint8_t  lv[512][4];        /* level l (0..7) of each element of each grid point */
    int32_t  map[KMAP];         /* grid index of point u, or -(offset + 1) into nb */
    uint16_t *nb;               /* per off-grid point: count, then that many indices */
};

static struct iq3_lattice lat[2];        /* 0: IQ3_XXS (256), 1: IQ3_S (512) */
static pthread_once_t lat_once = PTHREAD_ONCE_INIT;
static int lat_ok;

static int cmp_pair(const void *a, const void *b)
{
    const int *l = a, *r = b;
    return l[0] < r[0] ? -1 : l[0] > r[0] ? 1 : l[1] < r[1] ? -1 : l[1] > r[1] ? 1 : 0;
}

static int lattice_build(struct iq3_lattice *L, int n, int nwant)
{
    int (*dist)[2] = malloc((size_t)n * sizeof *dist);
    size_t cap = 0, used = 0;

    if (!dist)
        return -1;
    L->n = n;
    for (int u = 0; u < KMAP; u++)
        L->map[u] = -1;
    for (int k = 0; k < n; k++) {
        int u = 0;
        for (int i = 0; i < 4; i++) {
            int b = n == 256 ? (int)((dq_iq3xxs_grid[k] >> (8 * i)) & 255)
                             : (int)((dq_iq3s_grid[k] >> (8 * i)) & 255);
            L->lv[k][i] = (uint8_t)(n == 256 ? b / 8 : (b - 1) / 2);
            u |= L->lv[k][i] << (3 * i);
        }
        L->map[u] = k;
    }
    /* two passes: count, then fill */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            L->nb = malloc(cap * sizeof *L->nb);
            if (!L->nb) {
                free(dist);
                return -1;
            }
        }
        for (int u = 0; u < KMAP; u++) {
            if (L->map[u] >= 0)        /* on the grid (pass 1: off-grid points are still -1) */
                continue;
            for (int j = 0; j < n; j++) {
                int d2 = 0;
                for (int i = 0; i < 4; i++) {
                    int dd = 2 * L->lv[j][i] - 2 * ((u >> (3 * i)) & 7);
                    d2 += dd * dd;
                }
                dist[j][0] = d2;
                dist[j][1] = j;
            }
            qsort(dist, (size_t)n, sizeof *dist, cmp_pair);
            int cnt = 0, nhave = 1, d2 = dist[0][0];
            size_t start = used;
            if (pass == 1)
                used++;
            for (int j = 0; j < n; j++) {
                if (dist[j][0] > d2) {
                    if (nhave == nwant)
                        break;
                    d2 = dist[j][0];
                    nhave++;
                }
                if (pass == 1)
                    L->nb[used++] = (uint16_t)dist[j][1];
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
    free(dist);
    return 0;
}

static void lattice_init(void)
{
    lat_ok = lattice_build(&lat[0], 256, 2) == 0 && lattice_build(&lat[1], 512, 3) == 0;
}

/* Whether the neighbour tables could be built (they need ~40 KB of heap). */
int dq__iq3_ready(void)
{
    pthread_once(&lat_once, lattice_init);
    return lat_ok;
}

static int clamp07(int l) { return l < 0 ? 0 : l > 7 ? 7 : l; }

/* The grid point for the levels L[0..3] of group k, snapping to a neighbour when
 * off the grid (sets *on to 0 then). */
static int snap(const struct iq3_lattice *G, const float *xval, const float *waux, float scale,
                int8_t *L, int *on)
{
    int u = 0;
    for (int i = 0; i < 4; i++)
        u |= L[i] << (3 * i);
    int gi = G->map[u];
    *on = gi >= 0;
    if (gi < 0)
        gi = dq__lattice_nearest(&G->lv[0][0], 4, G->nb + (-gi - 1), xval, waux, scale, L);
    return gi;
}

/*
 * The search shared by both types for one group of 32: xval = |x| (signs already
 * taken), weight = x^2.  Returns the scale; L gets the levels (all on the grid).
 * is_lo..is_hi: the sweep of candidate inverse scales; only_off: the final pass
 * re-snaps only the groups of 4 that were off the grid (IQ3_XXS) or all (IQ3_S).
 */
static float search32(const struct iq3_lattice *G, const float *xval, const float *weight,
                      float max, int is_lo, int is_hi, int only_off, int8_t *L)
{
    float waux[32], best = 0, scale = max / 15;
    int8_t Laux[32];
    int on_grid[8] = { 0 }, on_aux[8];

    memset(L, 0, 32);
    for (int i = 0; i < 32; i++)
        waux[i] = sqrtf(weight[i]);
    for (int is = is_lo; is <= is_hi; is++) {
        float id = (15 + (float)is * 0.2f) / max;
        float this_scale = 1 / id;
        for (int k = 0; k < 8; k++) {
            for (int i = 0; i < 4; i++)
                Laux[4 * k + i] = (int8_t)clamp07(dq__nearest_int(0.5f * (id * xval[4 * k + i] - 1)));
            snap(G, xval + 4 * k, waux + 4 * k, this_scale, Laux + 4 * k, &on_aux[k]);
        }
        float sumqx = 0, sumq2 = 0;
        for (int i = 0; i < 32; i++) {
            float w = weight[i], q = (float)(2 * Laux[i] + 1);
            sumqx += w * xval[i] * q;
            sumq2 += w * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(L, Laux, 32);
            memcpy(on_grid, on_aux, sizeof on_grid);
        }
    }
    int n_off = 0;
    for (int k = 0; k < 8; k++)
        n_off += !on_grid[k];
    if (n_off > 0 && scale > 0) {
        float id = 1 / scale;
        for (int k = 0; k < 8; k++) {
            int on;
            if (only_off && on_grid[k])
                continue;
            for (int i = 0; i < 4; i++)
                L[4 * k + i] = (int8_t)clamp07(dq__nearest_int(0.5f * (id * xval[4 * k + i] - 1)));
            snap(G, xval + 4 * k, waux + 4 * k, scale, L + 4 * k, &on);
        }
        float sumqx = 0, sumq2 = 0;
        for (int i = 0; i < 32; i++) {
            float w = weight[i], q = (float)(2 * L[i] + 1);
            sumqx += w * xval[i] * q;
            sumq2 += w * q * q;
        }
        if (sumq2 > 0)
            scale = sumqx / sumq2;
    }
    return scale;
}

/* 2 <x^2> over a super-block of 256: the sigma2 of the importance weights */
static float block_sigma2(const float *x)
{
    float sumx2 = 0;
    for (int i = 0; i < 256; i++)
        sumx2 += x[i] * x[i];
    return 2 * sumx2 / 256;
}

static int grid_index(const struct iq3_lattice *G, const int8_t *L)
{
    int u = 0;
    for (int i = 0; i < 4; i++)
        u |= L[i] << (3 * i);
    return G->map[u];          /* always >= 0: search32 leaves every group on the grid */
}

static void iq3_xxs_rows(const float *x, void *dst, int64_t n, const float *qw)
{
    struct block_iq3_xxs *y = dst;
    const struct iq3_lattice *G = &lat[0];

    if (!dq__iq3_ready())
        return;                /* dq_quantize_mt checks dq__iq3_ready() first */
    for (int64_t ibl = 0; ibl < n / 256; ibl++, x += 256, y++) {
        uint8_t q3[104];
        uint32_t sas[8];
        float scales[8], max_scale = 0, sigma2 = block_sigma2(x);

        memset(q3, 0, sizeof q3);
        memset(sas, 0, sizeof sas);
        for (int ib = 0; ib < 8; ib++) {
            const float *xb = x + 32 * ib;
            float weight[32], xval[32];
            uint8_t block_signs[4];
            int8_t L[32];

            for (int i = 0; i < 32; i++)
                weight[i] = qw ? qw[256 * ibl + 32 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i])
                               : xb[i] * xb[i];
            for (int k = 0; k < 4; k++) {
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
                if (nflip % 2) {
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
                block_signs[k] = (uint8_t)(s & 127);
            }
            float max = xval[0];
            for (int i = 1; i < 32; i++)
                max = max > xval[i] ? max : xval[i];
            if (max < IQ3XXS_EPS) {
                scales[ib] = 0;
                continue;
            }
            float scale = search32(G, xval, weight, max, -15, 15, 1, L);
            if (scale < 0) {
                scale = -scale;
                for (int k = 0; k < 4; k++)
                    block_signs[k] = (uint8_t)(~block_signs[k] & 127);
            }
            for (int k = 0; k < 8; k++)
                q3[8 * ib + k] = (uint8_t)grid_index(G, L + 4 * k);
            sas[ib] = block_signs[0] | (uint32_t)block_signs[1] << 7 |
                      (uint32_t)block_signs[2] << 14 | (uint32_t)block_signs[3] << 21;
            scales[ib] = scale;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        memset(y, 0, sizeof *y);
        y->d = dq_f32_to_f16(0.f);
        if (max_scale == 0.0f)
            continue;
        float d = max_scale / 31;
        y->d = dq_f32_to_f16(d * 1.0125f);
        float id = 1 / d;
        for (int ib = 0; ib < 8; ib++) {
            int l = dq__nearest_int(0.5f * (id * scales[ib] - 1));
            l = l < 0 ? 0 : l > 15 ? 15 : l;
            sas[ib] |= (uint32_t)l << 28;
        }
        memcpy(y->qs, q3, 64);
        for (int ib = 0; ib < 8; ib++)
            put_le32(y->qs + 64 + 4 * ib, sas[ib]);
    }
}

static void iq3_s_rows(const float *x, void *dst, int64_t n, const float *qw)
{
    struct block_iq3_s *y = dst;
    const struct iq3_lattice *G = &lat[1];

    if (!dq__iq3_ready())
        return;
    for (int64_t ibl = 0; ibl < n / 256; ibl++, x += 256, y++) {
        float scales[8], max_scale = 0, sigma2 = block_sigma2(x);
        uint8_t *qs = y->qs, *signs = y->signs;

        memset(y, 0, sizeof *y);
        for (int ib = 0; ib < 8; ib++) {
            const float *xb = x + 32 * ib;
            float weight[32], xval[32];
            uint8_t block_signs[4];
            int8_t L[32];

            for (int i = 0; i < 32; i++)
                weight[i] = qw ? qw[256 * ibl + 32 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i])
                               : xb[i] * xb[i];
            for (int k = 0; k < 4; k++) {
                unsigned s = 0;
                for (int i = 0; i < 8; i++) {
                    if (xb[8 * k + i] >= 0) {
                        xval[8 * k + i] = xb[8 * k + i];
                    } else {
                        xval[8 * k + i] = -xb[8 * k + i];
                        s |= 1u << i;
                    }
                }
                block_signs[k] = (uint8_t)s;
            }
            float max = xval[0];
            for (int i = 1; i < 32; i++)
                max = max > xval[i] ? max : xval[i];
            if (max == 0.0f) {
                scales[ib] = 0;
                continue;      /* ggml: qs and signs do not advance (see the header) */
            }
            float scale = search32(G, xval, weight, max, -9, 9, 0, L);
            if (scale < 0) {
                scale = -scale;
                for (int k = 0; k < 4; k++)
                    block_signs[k] = (uint8_t)~block_signs[k];
            }
            for (int k = 0; k < 8; k++) {
                int gi = grid_index(G, L + 4 * k);
                qs[k] = (uint8_t)(gi & 255);
                y->qh[ib] |= (uint8_t)((gi >> 8) << k);
            }
            qs += 8;
            memcpy(signs, block_signs, 4);
            signs += 4;
            scales[ib] = scale;
            max_scale = max_scale > scale ? max_scale : scale;
        }
        if (max_scale == 0.0f)
            continue;
        float d = max_scale / 31;
        y->d = dq_f32_to_f16(d * 1.033f);
        float id = 1 / d;
        for (int ib = 0; ib < 8; ib += 2) {
            int l1 = dq__nearest_int(0.5f * (id * scales[ib] - 1));
            int l2 = dq__nearest_int(0.5f * (id * scales[ib + 1] - 1));
            l1 = l1 < 0 ? 0 : l1 > 15 ? 15 : l1;
            l2 = l2 < 0 ? 0 : l2 > 15 ? 15 : l2;
            y->scales[ib / 2] = (uint8_t)(l1 | l2 << 4);
        }
    }
}

void dq_iq3_xxs_quantize(const float *x, void *dst, int64_t n) { iq3_xxs_rows(x, dst, n, NULL); }
void dq_iq3_s_quantize(const float *x, void *dst, int64_t n) { iq3_s_rows(x, dst, n, NULL); }

/* With importance weights: qw * sqrt(sigma2 + x^2), sigma2 = 2 <x^2> per super-block
 * (ggml's quantize_row_iq3_xxs_impl / _iq3_s_impl with quant_weights). */
void dq_iq3_xxs_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    iq3_xxs_rows(x, dst, n, qw);
}

void dq_iq3_s_quantize_w(const float *x, void *dst, int64_t n, const float *qw)
{
    iq3_s_rows(x, dst, n, qw);
}
