/*
 * dq_lut.c - table-driven fast paths for the small float types (F8_*, F4, F6_*).
 *
 * Their scalar references (dq_ref.c) decode bit fields with ldexpf per element.  The
 * fast paths instead look each code up in a table that dq__lut_init() fills ONCE by
 * running the scalar reference over every possible code, so the two are bit-identical
 * by construction (check_dq.c compares them anyway).  dq.c calls dq__lut_init() from
 * its pthread_once initializer, before any kernel pointer is handed out.
 */
#include "dq_impl.h"

#include "../common/banned.h"

static float lut_e4m3[256], lut_e5m2[256], lut_e8m0[256], lut_e4m3fnuz[256], lut_e5m2fnuz[256];
static float lut_f4[256][2];                 /* a byte = two F4 values, low nibble first */
static float lut_f6_e2m3[64], lut_f6_e3m2[64];

static void fill8(float *lut, void (*ref)(const void *, float *, int64_t))
{
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    ref(all, lut, 256);
}

static void fill6(float *lut, void (*ref)(const void *, float *, int64_t))
{
    for (int c = 0; c < 64; c++) {
        uint8_t g[3] = { (uint8_t)c, 0, 0 };  /* code c as element 0 of a group */
        float y[4];
        ref(g, y, 4);
        lut[c] = y[0];
    }
}

void dq__lut_init(void)
{
    uint8_t all[256];
    fill8(lut_e4m3, dq_f8_e4m3_to_f32_ref);
    fill8(lut_e5m2, dq_f8_e5m2_to_f32_ref);
    fill8(lut_e8m0, dq_f8_e8m0_to_f32_ref);
    fill8(lut_e4m3fnuz, dq_f8_e4m3fnuz_to_f32_ref);
    fill8(lut_e5m2fnuz, dq_f8_e5m2fnuz_to_f32_ref);
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (int i = 0; i < 256; i++)
        dq_f4_to_f32_ref(all + i, lut_f4[i], 2);
    fill6(lut_f6_e2m3, dq_f6_e2m3_to_f32_ref);
    fill6(lut_f6_e3m2, dq_f6_e3m2_to_f32_ref);
}

#define LUT8(name, lut)                                                 \
    void dq_##name##_to_f32_lut(const void *src, float *dst, int64_t n) \
    {                                                                   \
        const uint8_t *p = src;                                         \
        for (int64_t i = 0; i < n; i++)                                 \
            dst[i] = lut[p[i]];                                         \
    }

LUT8(f8_e4m3, lut_e4m3)
LUT8(f8_e5m2, lut_e5m2)
LUT8(f8_e8m0, lut_e8m0)
LUT8(f8_e4m3fnuz, lut_e4m3fnuz)
LUT8(f8_e5m2fnuz, lut_e5m2fnuz)

void dq_f4_to_f32_lut(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / 2; i++) {
        dst[2 * i] = lut_f4[p[i]][0];
        dst[2 * i + 1] = lut_f4[p[i]][1];
    }
}

/* Four 6-bit codes per 3 bytes, first in the low bits (layout drawn in dq_ref.c). */
static void f6(const uint8_t *p, float *dst, int64_t n, const float *lut)
{
    for (int64_t g = 0; g < n / 4; g++, p += 3, dst += 4) {
        uint32_t w = p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
        dst[0] = lut[w & 63];
        dst[1] = lut[(w >> 6) & 63];
        dst[2] = lut[(w >> 12) & 63];
        dst[3] = lut[w >> 18];
    }
}

void dq_f6_e2m3_to_f32_lut(const void *src, float *dst, int64_t n) { f6(src, dst, n, lut_f6_e2m3); }
void dq_f6_e3m2_to_f32_lut(const void *src, float *dst, int64_t n) { f6(src, dst, n, lut_f6_e3m2); }
