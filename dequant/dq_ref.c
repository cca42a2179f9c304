/*
 * dq_ref.c - the plain scalar reference dequantizer of every type.
 *
 * One function per type, dq_<type>_to_f32_ref(src, dst, n): n % blck == 0 (APR_Q4 and
 * APR_Q8 accept any n), src may be unaligned, nothing is allocated.  Quantized blocks
 * are read through the packed structs of blocks.h (alignment 1, so any mmap offset is
 * fine; multi-byte fields little endian, like every host we build for); the plain
 * types are read byte by byte (le16/le32).
 *
 * The ggml formulas are those of reference/gguf-quant.md sections 3.2-3.6, verified
 * there bit for bit against ggml's to_float.  All arithmetic is f32.  Every product
 * d * scale * quant is exact (3.7), so the only rounding is the final "+ m" / "- m"
 * of Q4_1, Q5_1, Q2_K, Q4_K and Q5_K: the fast kernels (dq_avx2.c) may use FMA and
 * still give these bits.
 *
 * Notation in the diagrams: "@n" is a byte offset inside the block, "d:f16" an IEEE
 * half read little-endian, "y[k]" the k-th f32 output of the block.
 */
#include "dq_impl.h"

#include <math.h>
#include <string.h>

#include "dq_grids.h"
#include "../common/banned.h"

const int8_t dq__kvalues_iq4nl[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};
/* E2M1 values doubled (ggml's kvalues_fp4); the scales are halved to match. */
const int8_t dq__kvalues_fp4[16] = {
    0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
};

/* ---------------------------------------------------------------------------------------
 * Plain types: one element per block, little-endian.
 */

void dq_f32_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = lef32(p + 4 * i);
}

void dq_f16_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = dq__h2f_at(p + 2 * i);
}

/* bf16 is the top half of an f32: exact, NaN payload kept. */
void dq_bf16_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = dq__bits_f32((uint32_t)le16(p + 2 * i) << 16);
}

/* The conversions below round to nearest even (C's default), like numpy's astype. */
void dq_f64_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)lef64(p + 8 * i);
}

void dq_i8_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(int8_t)p[i];
}

void dq_i16_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(int16_t)le16(p + 2 * i);
}

void dq_i32_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(int32_t)le32(p + 4 * i);
}

void dq_i64_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(int64_t)le64(p + 8 * i);
}

/* BOOL: any non-zero byte is true (1.0). */
void dq_bool_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = p[i] ? 1.0f : 0.0f;
}

void dq_u8_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)p[i];
}

void dq_u16_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)le16(p + 2 * i);
}

void dq_u32_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)le32(p + 4 * i);
}

void dq_u64_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)le64(p + 8 * i);
}

/* ---------------------------------------------------------------------------------------
 * Small floats (SafeTensors).  Each decodes to an exact f32.
 *
 *   F8_E4M3      (OCP "E4M3FN")  s eeee mmm, bias 7,  no Inf, S.1111.111 = NaN, max 448
 *   F8_E5M2      (OCP)           s eeeee mm, bias 15, IEEE-like: the top byte of an f16
 *   F8_E8M0      (OCP scale)     eeeeeeee,   2^(e-127), 0xFF = NaN, no sign, no zero
 *   F8_E4M3FNUZ  (AMD/Graphcore) s eeee mmm, bias 8,  0x80 = the only NaN, no -0, no Inf
 *   F8_E5M2FNUZ                  s eeeee mm, bias 16, 0x80 = the only NaN, no -0, no Inf
 *   F4 (E2M1)                    s ee m,     bias 1,  {0, .5, 1, 1.5, 2, 3, 4, 6}
 *   F6_E2M3                      s ee mmm,   bias 1,  max 7.5,  no Inf/NaN
 *   F6_E3M2                      s eee mm,   bias 3,  max 28,   no Inf/NaN
 * NaNs decode to sign | 0x7FC00000 (FNUZ NaN: +0x7FC00000).
 */

/* A mini-float with e_bits exponent bits, m_bits mantissa bits and the given bias,
 * no Inf/NaN encodings (the callers handle those); exact in f32 for these widths. */
static float minifloat(uint32_t sign, uint32_t e, uint32_t m, int m_bits, int bias)
{
    float v;
    if (e == 0)
        v = ldexpf((float)m, 1 - bias - m_bits);                    /* subnormal */
    else
        v = ldexpf((float)((1u << m_bits) | m), (int)e - bias - m_bits);
    return sign ? -v : v;
}

void dq_f8_e4m3_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint32_t x = p[i];
        if ((x & 0x7F) == 0x7F)
            dst[i] = dq__bits_f32((x & 0x80) << 24 | 0x7FC00000u);
        else
            dst[i] = minifloat(x & 0x80, (x >> 3) & 15, x & 7, 3, 7);
    }
}

void dq_f8_e5m2_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = dq__h2f((uint16_t)(p[i] << 8));
}

void dq_f8_e8m0_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint32_t x = p[i];
        if (x == 0xFF)
            dst[i] = dq__bits_f32(0x7FC00000u);
        else if (x == 0)
            dst[i] = dq__bits_f32(0x00400000u);                        /* 2^-127, subnormal */
        else
            dst[i] = dq__bits_f32(x << 23);
    }
}

void dq_f8_e4m3fnuz_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint32_t x = p[i];
        if (x == 0x80)
            dst[i] = dq__bits_f32(0x7FC00000u);
        else
            dst[i] = minifloat(x & 0x80, (x >> 3) & 15, x & 7, 3, 8);
    }
}

void dq_f8_e5m2fnuz_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint32_t x = p[i];
        if (x == 0x80)
            dst[i] = dq__bits_f32(0x7FC00000u);
        else
            dst[i] = minifloat(x & 0x80, (x >> 2) & 31, x & 3, 2, 16);
    }
}

/*
 * F4: two values per byte.  SafeTensors leaves the order open; we follow the OCP MX
 * spec / PyTorch float4_e2m1fn_x2 convention: the FIRST element is in the LOW nibble.
 *     byte i:  [7..4] element 2i+1   [3..0] element 2i
 */
void dq_f4_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint32_t x = (p[i / 2] >> (4 * (i & 1))) & 15;
        dst[i] = minifloat(x & 8, (x >> 1) & 3, x & 1, 1, 1);
    }
}

/*
 * F6: four values per 3 bytes, as a little-endian 24-bit word w = b0 | b1<<8 | b2<<16;
 * element k of the group is (w >> 6k) & 63, i.e. the first element in the low bits
 * (OCP MX convention, as for F4):
 *     b2        b1        b0
 *     33333322 22221111 11000000
 */
static void f6_to_f32(const void *src, float *dst, int64_t n, int e_bits, int bias)
{
    const uint8_t *p = src;
    int m_bits = 5 - e_bits;
    for (int64_t g = 0; g < n / 4; g++) {
        uint32_t w = p[3 * g] | (uint32_t)p[3 * g + 1] << 8 | (uint32_t)p[3 * g + 2] << 16;
        for (int k = 0; k < 4; k++) {
            uint32_t x = (w >> (6 * k)) & 63;
            dst[4 * g + k] = minifloat(x & 32, (x >> m_bits) & ((1u << e_bits) - 1),
                                       x & ((1u << m_bits) - 1), m_bits, bias);
        }
    }
}

void dq_f6_e2m3_to_f32_ref(const void *src, float *dst, int64_t n) { f6_to_f32(src, dst, n, 2, 1); }
void dq_f6_e3m2_to_f32_ref(const void *src, float *dst, int64_t n) { f6_to_f32(src, dst, n, 3, 3); }

/* ---------------------------------------------------------------------------------------
 * Legacy blocks of 32 (3.3).  qs[j] holds element j in its low nibble and j+16 in its
 * high nibble:
 *
 *   Q4_0  18 B  +--------+-------------------------+
 *               | d:f16  | qs[16]  lo: y[j]  hi: y[j+16]   y = (q - 8) * d
 *               +--------+-------------------------+
 *               @0       @2                        @18
 *   Q4_1  20 B  | d:f16 | m:f16 | qs[16] |                 y = q * d + m
 *   Q5_0  22 B  | d:f16 | qh:u32 | qs[16] |                y = (q | bit << 4) - 16) * d
 *   Q5_1  24 B  | d:f16 | m:f16 | qh:u32 | qs[16] |        y = (q | bit << 4) * d + m
 *               qh bit j is bit 4 of y[j], bit j+16 is bit 4 of y[j+16]
 *   Q8_0  34 B  | d:f16 | qs:i8[32] |                      y = qs * d
 *   Q8_1  36 B  | d:f16 | s:f16 | qs:i8[32] |              y = qs * d  (s = d * sum(qs), unused)
 */

void dq_q4_0_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q4_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        float d = dq__h2f(b->d);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)((b->qs[j] & 15) - 8) * d;
            dst[j + 16] = (float)((b->qs[j] >> 4) - 8) * d;
        }
    }
}

void dq_q4_1_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q4_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        float d = dq__h2f(b->d), m = dq__h2f(b->m);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)(b->qs[j] & 15) * d + m;
            dst[j + 16] = (float)(b->qs[j] >> 4) * d + m;
        }
    }
}

void dq_q5_0_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q5_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        float d = dq__h2f(b->d);
        uint32_t qh = le32(b->qh);
        for (int j = 0; j < 16; j++) {
            int lo = (b->qs[j] & 15) | ((qh >> j) & 1) << 4;
            int hi = (b->qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
            dst[j]      = (float)(lo - 16) * d;
            dst[j + 16] = (float)(hi - 16) * d;
        }
    }
}

void dq_q5_1_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q5_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        float d = dq__h2f(b->d), m = dq__h2f(b->m);
        uint32_t qh = le32(b->qh);
        for (int j = 0; j < 16; j++) {
            int lo = (b->qs[j] & 15) | ((qh >> j) & 1) << 4;
            int hi = (b->qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
            dst[j]      = (float)lo * d + m;
            dst[j + 16] = (float)hi * d + m;
        }
    }
}

void dq_q8_0_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q8_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        float d = dq__h2f(b->d);
        for (int j = 0; j < 32; j++)
            dst[j] = (float)b->qs[j] * d;
    }
}

void dq_q8_1_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q8_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        float d = dq__h2f(b->d);
        for (int j = 0; j < 32; j++)
            dst[j] = (float)b->qs[j] * d;
    }
}

/*
 *   Q1_0  18 B, 128 elems  | d:f16 | qs[16] |   bit j = (qs[j/8] >> (j%8)) & 1;  y = bit ? d : -d
 *   Q2_0  18 B,  64 elems  | d:f16 | qs[16] |   q = (qs[j/4] >> 2(j%4)) & 3;     y = (q - 1) * d
 */
void dq_q1_0_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q1_0 *b = src;
    for (int64_t i = 0; i < n / 128; i++, b++, dst += 128) {
        float d = dq__h2f(b->d);
        for (int j = 0; j < 128; j++)
            dst[j] = (b->qs[j / 8] >> (j % 8)) & 1 ? d : -d;
    }
}

void dq_q2_0_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q2_0 *b = src;
    for (int64_t i = 0; i < n / 64; i++, b++, dst += 64) {
        float d = dq__h2f(b->d);
        for (int j = 0; j < 64; j++)
            dst[j] = (float)(((b->qs[j / 4] >> (2 * (j % 4))) & 3) - 1) * d;
    }
}

/*
 *   IQ4_NL  18 B  | d:f16 | qs[16] |   y[j] = d * KV[qs[j] & 15],  y[j+16] = d * KV[qs[j] >> 4]
 *   MXFP4   17 B  | e:u8 (E8M0) | qs[16] |   y = F[nibble] * 2^(e-128)   (F = E2M1 doubled)
 *   NVFP4   36 B, 64 elems  | d[4]:UE4M3 | qs[32] |  sub-block s (16 elems) uses d[s] / 2 and
 *                   qs[8s..8s+7]: lo nibbles are y[16s+j], hi nibbles y[16s+8+j]
 */
void dq_iq4_nl_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        float d = dq__h2f(b->d);
        for (int j = 0; j < 16; j++) {
            dst[j]      = d * (float)dq__kvalues_iq4nl[b->qs[j] & 15];
            dst[j + 16] = d * (float)dq__kvalues_iq4nl[b->qs[j] >> 4];
        }
    }
}

/* ggml's E8M0 "half" scale: 2^(e-128), as f32 bits (e = 0 and 1 are f32 subnormals). */
static float e8m0_half(uint32_t e)
{
    if (e == 0)
        return dq__bits_f32(0x00200000u);
    if (e == 1)
        return dq__bits_f32(0x00400000u);
    return dq__bits_f32((e - 1) << 23);
}

void dq_mxfp4_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_mxfp4 *b = src;
    for (int64_t i = 0; i < n / 32; i++, b++, dst += 32) {
        float d = e8m0_half(b->e);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)dq__kvalues_fp4[b->qs[j] & 15] * d;
            dst[j + 16] = (float)dq__kvalues_fp4[b->qs[j] >> 4] * d;
        }
    }
}

/* UE4M3 (NVFP4 sub-scale), halved: 0 and 0x7F give 0; bit 7 is ignored. */
static float ue4m3_half(uint32_t x)
{
    uint32_t e = (x >> 3) & 15, m = x & 7;
    float v;
    if (x == 0 || x == 0x7F)
        return 0.0f;
    v = e == 0 ? ldexpf((float)m, -9) : ldexpf(1.0f + (float)m / 8.0f, (int)e - 7);
    return v * 0.5f;
}

void dq_nvfp4_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_nvfp4 *b = src;
    for (int64_t i = 0; i < n / 64; i++, b++, dst += 64) {
        for (int s = 0; s < 4; s++) {
            float ds = ue4m3_half(b->d[s]);
            for (int j = 0; j < 8; j++) {
                uint8_t q = b->qs[8 * s + j];
                dst[16 * s + j]     = (float)dq__kvalues_fp4[q & 15] * ds;
                dst[16 * s + 8 + j] = (float)dq__kvalues_fp4[q >> 4] * ds;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * K-quants: super-blocks of 256 (3.4).
 *
 * get_scale_min_k4: twelve bytes hold eight 6-bit scales and eight 6-bit mins:
 *
 *     byte:   0..3                 4..7                 8..11
 *           +--+------+          +--+------+          +----+----+
 *           |s4|sc0..3|          |m4|m0..3 |          |m4lo|s4lo|   (j = 4..7)
 *           +--+------+          +--+------+          +----+----+
 *           7 6 5    0           7 6 5    0           7   4 3   0
 *   "s4" = bits 5:4 of sc4..7, "m4" = bits 5:4 of m4..7.
 */
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

/*
 *   Q4_K  144 B  +-------+---------+------------+--------------------------------+
 *                | d:f16 | dmin:f16| scales[12] | qs[128]                        |
 *                +-------+---------+------------+--------------------------------+
 *                @0      @2        @4           @16                              @144
 *   chunk c = 0..3 covers y[64c .. 64c+63] with qs[32c .. 32c+31]:
 *       y[64c+l]    = d*sc(2c)   * (qs[32c+l] & 15) - dmin*m(2c)
 *       y[64c+32+l] = d*sc(2c+1) * (qs[32c+l] >> 4) - dmin*m(2c+1)
 */
void dq_q4_k_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q4_K *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d), dmin = dq__h2f(b->dmin);
        const uint8_t *q = b->qs;
        for (int c = 0; c < 4; c++, q += 32) {
            int s1, m1, s2, m2;
            scale_min_k4(2 * c, b->scales, &s1, &m1);
            scale_min_k4(2 * c + 1, b->scales, &s2, &m2);
            float d1 = d * (float)s1, mf1 = dmin * (float)m1;
            float d2 = d * (float)s2, mf2 = dmin * (float)m2;
            for (int l = 0; l < 32; l++) {
                dst[64 * c + l]      = d1 * (float)(q[l] & 15) - mf1;
                dst[64 * c + 32 + l] = d2 * (float)(q[l] >> 4) - mf2;
            }
        }
    }
}

/*
 *   Q5_K  176 B  | d:f16 | dmin:f16 | scales[12] | qh[32] | qs[128] |
 *                @0      @2         @4           @16      @48       @176
 *   As Q4_K, plus bit 4 of each quant: qh[l] bit 2c for y[64c+l], bit 2c+1 for y[64c+32+l].
 */
void dq_q5_k_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q5_K *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d), dmin = dq__h2f(b->dmin);
        const uint8_t *qh = b->qh, *q = b->qs;
        for (int c = 0; c < 4; c++, q += 32) {
            int s1, m1, s2, m2;
            scale_min_k4(2 * c, b->scales, &s1, &m1);
            scale_min_k4(2 * c + 1, b->scales, &s2, &m2);
            float d1 = d * (float)s1, mf1 = dmin * (float)m1;
            float d2 = d * (float)s2, mf2 = dmin * (float)m2;
            for (int l = 0; l < 32; l++) {
                int lo = (q[l] & 15) + 16 * ((qh[l] >> (2 * c)) & 1);
                int hi = (q[l] >> 4) + 16 * ((qh[l] >> (2 * c + 1)) & 1);
                dst[64 * c + l]      = d1 * (float)lo - mf1;
                dst[64 * c + 32 + l] = d2 * (float)hi - mf2;
            }
        }
    }
}

/*
 *   Q2_K  84 B  | scales[16] | qs[64] | d:f16 | dmin:f16 |
 *               @0           @16      @80     @82        @84
 *   scales[is]: lo nibble = scale, hi nibble = min.  For half h, shift g, sub sb:
 *       is = 8h+2g+sb;  q = (qs[32h+16sb+l] >> 2g) & 3
 *       y[128h+32g+16sb+l] = d*(scales[is]&15) * q - dmin*(scales[is]>>4)
 */
void dq_q2_k_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q2_K *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d), dmin = dq__h2f(b->dmin);
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int sb = 0; sb < 2; sb++) {
                    uint8_t sc = b->scales[8 * h + 2 * g + sb];
                    float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
                    const uint8_t *q = b->qs + 32 * h + 16 * sb;
                    float *y = dst + 128 * h + 32 * g + 16 * sb;
                    for (int l = 0; l < 16; l++)
                        y[l] = dl * (float)((q[l] >> (2 * g)) & 3) - ml;
                }
    }
}

/*
 *   Q3_K  110 B  | hmask[32] | qs[64] | scales[12] | d:f16 |
 *                @0          @32      @96          @108    @110
 *   sixteen 6-bit scales S_j (j = 0..15), stored -32-biased:
 *       low 4 bits: j < 8 ? scales[j] & 15 : scales[j-8] >> 4
 *       high 2 bits: (scales[8 + j%4] >> 2(j/4)) & 3
 *   quant = ((qs[32h+i] >> 2g) & 3) - (hmask[i] bit (4h+g) ? 0 : 4),  i = 16sb+l
 *   y[128h+32g+16sb+l] = d * S_{8h+2g+sb} * quant
 */
void dq_q3_k_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q3_K *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        const uint8_t *hm = b->hmask, *qs = b->qs, *sc = b->scales;
        float d = dq__h2f(b->d);
        int S[16];
        for (int j = 0; j < 16; j++) {
            int low4 = j < 8 ? sc[j] & 15 : sc[j - 8] >> 4;
            int hi2 = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
            S[j] = (low4 | hi2 << 4) - 32;
        }
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int sb = 0; sb < 2; sb++) {
                    float dl = d * (float)S[8 * h + 2 * g + sb];
                    float *y = dst + 128 * h + 32 * g + 16 * sb;
                    for (int l = 0; l < 16; l++) {
                        int ii = 16 * sb + l;
                        int q = (qs[32 * h + ii] >> (2 * g)) & 3;
                        int hb = (hm[ii] >> (4 * h + g)) & 1;
                        y[l] = dl * (float)(q - (hb ? 0 : 4));
                    }
                }
    }
}

/*
 *   Q6_K  210 B  | ql[128] | qh[64] | scales:i8[16] | d:f16 |
 *                @0        @128     @192            @208    @210
 *   half h = 0..1 (128 elems), l = 0..31, a = ql[64h+l], c = ql[64h+32+l], e = qh[32h+l]:
 *       y[128h+l]    = d*sc[8h+l/16]   * ((a & 15 | (e >> 0 & 3) << 4) - 32)
 *       y[128h+32+l] = d*sc[8h+l/16+2] * ((c & 15 | (e >> 2 & 3) << 4) - 32)
 *       y[128h+64+l] = d*sc[8h+l/16+4] * ((a >> 4 | (e >> 4 & 3) << 4) - 32)
 *       y[128h+96+l] = d*sc[8h+l/16+6] * ((c >> 4 | (e >> 6 & 3) << 4) - 32)
 */
void dq_q6_k_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q6_K *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        const int8_t *sc = b->scales;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
            float *y = dst + 128 * h;
            for (int l = 0; l < 32; l++) {
                int is = 8 * h + l / 16;
                int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l]      = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

/*   Q8_K  292 B  | d:f32 | qs:i8[256] | bsums:i16[16] |   y = d * qs   (bsums unused) */
void dq_q8_k_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q8_K *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = b->d;
        for (int j = 0; j < 256; j++)
            dst[j] = d * (float)b->qs[j];
    }
}

/* ---------------------------------------------------------------------------------------
 * Ternary (3.5).
 *
 *   TQ2_0  66 B  | qs[64] | d:f16 |    y[128h+32l+m] = (((qs[32h+m] >> 2l) & 3) - 1) * d
 *   TQ1_0  54 B  | qs[48] | qh[4] | d:f16 |   base-3 bytes: trit n of byte q is
 *                  ((q * 3^n mod 256) * 3) >> 8; qs[0..31] give 5 trits each (160 elems),
 *                  qs[32..47] 5 each (80), qh[0..3] 4 each (16); y = (trit - 1) * d
 */
void dq_tq2_0_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_tq2_0 *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    dst[128 * h + 32 * l + m] =
                        (float)(((b->qs[32 * h + m] >> (2 * l)) & 3) - 1) * d;
    }
}

static int trit(uint8_t q, int nth)
{
    static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
    uint8_t x = (uint8_t)(q * pow3[nth]);
    return (int)(((uint16_t)x * 3) >> 8);
}

void dq_tq1_0_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_tq1_0 *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        float *y = dst;
        for (int t = 0; t < 5; t++)
            for (int m = 0; m < 32; m++)
                *y++ = (float)(trit(b->qs[m], t) - 1) * d;
        for (int t = 0; t < 5; t++)
            for (int m = 0; m < 16; m++)
                *y++ = (float)(trit(b->qs[32 + m], t) - 1) * d;
        for (int t = 0; t < 4; t++)
            for (int j = 0; j < 4; j++)
                *y++ = (float)(trit(b->qh[j], t) - 1) * d;
    }
}

/* ---------------------------------------------------------------------------------------
 * I-quants (3.6).  8 groups of 32 per super-block (ib), 4 sub-groups of 8 (l).  Grid
 * entries: byte j of the LE entry is the magnitude of element j; a sign byte negates
 * element j when its bit j is set.  KS(i) = i with an even-parity bit 7.
 */

/* 8 outputs from one u64 grid entry, scale db and sign byte s. */
static void grid8(float *y, uint64_t g, float db, uint32_t s)
{
    for (int j = 0; j < 8; j++) {
        float v = db * (float)((g >> (8 * j)) & 255);
        y[j] = (s >> j) & 1 ? -v : v;
    }
}

/* 4 outputs from one u32 grid entry, sign bits s (bit j for element j). */
static void grid4(float *y, uint32_t g, float db, uint32_t s)
{
    for (int j = 0; j < 4; j++) {
        float v = db * (float)((g >> (8 * j)) & 255);
        y[j] = (s >> j) & 1 ? -v : v;
    }
}

/*
 *   IQ2_XXS  66 B  | d:f16 | qs: 8 x (u32 a0, u32 a1) |
 *     group ib: a0 bytes = 4 grid indices; a1 = 4 x 7-bit sign codes | 4-bit scale << 28
 *     db = d * (0.5 + (a1 >> 28)) * 0.25;  y[32ib+8l+j] = db * grid[a0 byte l]_j * sign
 */
void dq_iq2_xxs_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq2_xxs *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        for (int ib = 0; ib < 8; ib++) {
            /* the u16 words qs[4ib..4ib+3] read as two u32 (little endian) */
            uint32_t a0 = b->qs[4 * ib] | (uint32_t)b->qs[4 * ib + 1] << 16;
            uint32_t a1 = b->qs[4 * ib + 2] | (uint32_t)b->qs[4 * ib + 3] << 16;
            float db = d * (0.5f + (float)(a1 >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++)
                grid8(dst + 32 * ib + 8 * l, dq_iq2xxs_grid[(a0 >> (8 * l)) & 255], db,
                      DQ_KS((a1 >> (7 * l)) & 127));
        }
    }
}

/*
 *   IQ2_XS  74 B  | d:f16 | qs:u16[32] | scales[8] |
 *     qs[4ib+l] = 9-bit grid index | 7-bit sign code << 9;
 *     db = d * (0.5 + nibble) * 0.25, low nibble of scales[ib] for l < 2, high for l >= 2
 */
void dq_iq2_xs_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq2_xs *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        for (int ib = 0; ib < 8; ib++) {
            float db0 = d * (0.5f + (float)(b->scales[ib] & 15)) * 0.25f;
            float db1 = d * (0.5f + (float)(b->scales[ib] >> 4)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                uint32_t v = b->qs[4 * ib + l];
                grid8(dst + 32 * ib + 8 * l, dq_iq2xs_grid[v & 511], l < 2 ? db0 : db1,
                      DQ_KS(v >> 9));
            }
        }
    }
}

/*
 *   IQ2_S  82 B  | d:f16 | qs[32] | signs[32] | qh[8] | scales[8] |
 *                @0      @2       @34         @66     @74         @82
 *     index = qs[4ib+l] | ((qh[ib] >> 2l) & 3) << 8 (10 bits); sign byte signs[4ib+l]
 */
void dq_iq2_s_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq2_s *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        for (int ib = 0; ib < 8; ib++) {
            float db0 = d * (0.5f + (float)(b->scales[ib] & 15)) * 0.25f;
            float db1 = d * (0.5f + (float)(b->scales[ib] >> 4)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                uint32_t idx = b->qs[4 * ib + l] | ((b->qh[ib] >> (2 * l)) & 3u) << 8;
                grid8(dst + 32 * ib + 8 * l, dq_iq2s_grid[idx], l < 2 ? db0 : db1,
                      b->signs[4 * ib + l]);
            }
        }
    }
}

/*
 *   IQ3_XXS  98 B  | d:f16 | qs[64] (grid indices) | scales_and_signs:u32[8] |
 *                  @0      @2                      @66                       @98
 *     a = u32[ib]: 4 x 7-bit sign codes | scale << 28;  db = d * (0.5 + (a >> 28)) * 0.5
 *     sub-group l: two u32 grid entries qs[8ib+2l], qs[8ib+2l+1]; sign bits 0..3, 4..7
 */
void dq_iq3_xxs_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq3_xxs *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        const uint8_t *qs = b->qs, *sas = b->qs + QK_K / 4;   /* scales_and_signs */
        for (int ib = 0; ib < 8; ib++) {
            uint32_t a = le32(sas + 4 * ib);
            float db = d * (0.5f + (float)(a >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++) {
                uint32_t s = DQ_KS((a >> (7 * l)) & 127);
                float *y = dst + 32 * ib + 8 * l;
                grid4(y, dq_iq3xxs_grid[qs[8 * ib + 2 * l]], db, s);
                grid4(y + 4, dq_iq3xxs_grid[qs[8 * ib + 2 * l + 1]], db, s >> 4);
            }
        }
    }
}

/*
 *   IQ3_S  110 B  | d:f16 | qs[64] | qh[8] | signs[32] | scales[4] |
 *                 @0      @2       @66     @74         @106        @110
 *     db = d * (1 + 2*nibble), nibble of scales[ib/2] (low for even ib);
 *     indices (9 bits) qs[8ib+2l] | (qh[ib] bit 2l) << 8 and qs[8ib+2l+1] | (bit 2l+1) << 8
 */
void dq_iq3_s_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq3_s *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        for (int ib = 0; ib < 8; ib++) {
            int nib = (b->scales[ib / 2] >> (4 * (ib % 2))) & 15;
            float db = d * (float)(1 + 2 * nib);
            uint32_t qh = b->qh[ib];
            for (int l = 0; l < 4; l++) {
                uint32_t i1 = b->qs[8 * ib + 2 * l] | ((qh >> (2 * l)) & 1) << 8;
                uint32_t i2 = b->qs[8 * ib + 2 * l + 1] | ((qh >> (2 * l + 1)) & 1) << 8;
                uint32_t s = b->signs[4 * ib + l];
                float *y = dst + 32 * ib + 8 * l;
                grid4(y, dq_iq3s_grid[i1], db, s);
                grid4(y + 4, dq_iq3s_grid[i2], db, s >> 4);
            }
        }
    }
}

/* 8 outputs of an iq1s grid entry (signed bytes in {-1,0,1}) plus delta, times dl. */
static void grid1(float *y, uint64_t g, float dl, float delta)
{
    for (int j = 0; j < 8; j++)
        y[j] = dl * ((float)(int8_t)((g >> (8 * j)) & 255) + delta);
}

/*
 *   IQ1_S  50 B  | d:f16 | qs[32] | qh:u16[8] |
 *     h = qh[ib]: bits 0..11 = 4 x 3 index high bits, 12..14 = scale, 15 = delta sign
 *     dl = d * (2*scale + 1);  y[32ib+8l+j] = dl * (grid[qs[4ib+l] | hb << 8]_j +- 0.125)
 */
void dq_iq1_s_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq1_s *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        for (int ib = 0; ib < 8; ib++) {
            uint32_t h = b->qh[ib];
            float dl = d * (float)(2 * ((h >> 12) & 7) + 1);
            float delta = h & 0x8000 ? -0.125f : 0.125f;
            for (int l = 0; l < 4; l++) {
                uint32_t idx = b->qs[4 * ib + l] | ((h >> (3 * l)) & 7) << 8;
                grid1(dst + 32 * ib + 8 * l, dq_iq1s_grid[idx], dl, delta);
            }
        }
    }
}

/*
 *   IQ1_M  56 B  | qs[32] | qh[16] | scales:u16[4] |      (no f16 field of its own)
 *                @0       @32      @48             @56
 *     d = f16 bits gathered from the top nibbles of the four scale words;
 *     sc[ib/2] holds two 3-bit scales per group: dl1 (l < 2) and dl2 (l >= 2);
 *     a nibble of qh per sub-group: bits 0..2 = index high bits, bit 3 = delta sign
 */
void dq_iq1_m_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq1_m *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        uint32_t sc[4];
        for (int k = 0; k < 4; k++)
            sc[k] = b->scales[k];
        float d = dq__h2f((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) |
                                     ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000)));
        for (int ib = 0; ib < 8; ib++) {
            int sh = 6 * (ib % 2);
            float dl1 = d * (float)(2 * ((sc[ib / 2] >> sh) & 7) + 1);
            float dl2 = d * (float)(2 * ((sc[ib / 2] >> (sh + 3)) & 7) + 1);
            for (int l = 0; l < 4; l++) {
                uint32_t qh = b->qh[2 * ib + l / 2];
                uint32_t hn = l % 2 == 0 ? qh & 15 : qh >> 4;
                uint32_t idx = b->qs[4 * ib + l] | (hn & 7) << 8;
                grid1(dst + 32 * ib + 8 * l, dq_iq1s_grid[idx], l < 2 ? dl1 : dl2,
                      hn & 8 ? -0.125f : 0.125f);
            }
        }
    }
}

/*
 *   IQ4_XS  136 B  | d:f16 | scales_h:u16 | scales_l[4] | qs[128] |
 *                  @0      @2             @4            @8        @136
 *     6-bit scale of group ib: nibble ib of scales_l | 2 bits (scales_h >> 2ib) << 4;
 *     dl = d * (ls - 32);  y[32ib+j] = dl * KV[qs[16ib+j] & 15], y[32ib+16+j] with >> 4
 */
void dq_iq4_xs_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / 256; i++, b++, dst += 256) {
        float d = dq__h2f(b->d);
        uint32_t sh = b->scales_h;
        for (int ib = 0; ib < 8; ib++) {
            int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 15) |
                     (int)((sh >> (2 * ib)) & 3) << 4;
            float dl = d * (float)(ls - 32);
            const uint8_t *q = b->qs + 16 * ib;
            for (int j = 0; j < 16; j++) {
                dst[32 * ib + j]      = dl * (float)dq__kvalues_iq4nl[q[j] & 15];
                dst[32 * ib + 16 + j] = dl * (float)dq__kvalues_iq4nl[q[j] >> 4];
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * aprender's own types (reference/apr.md 2.5).
 *
 *   APR_Q4  18 B per 32 elems, last block zero-padded:  | scale:f16 | qs[16] |
 *           element 2k in the LOW nibble of qs[k], 2k+1 in the high nibble (unlike
 *           ggml's j / j+16 split); y = (nibble - 8) * scale, with the scale forced to 0
 *           when it is NaN, Inf or below the smallest normal f16 (2^-14) in magnitude.
 *   APR_Q8  | scale:f32 | q:i8[n] |   one scale for the whole tensor;  y = q * scale
 */
void dq_apr_q4_to_f32_ref(const void *src, float *dst, int64_t n)
{
    const struct block_q4_0 *b = src;        /* the same 18 bytes: f16 scale, 16 bytes */
    for (int64_t i = 0; i < n; i += 32, b++) {
        float s = dq__h2f(b->d);
        if (!isfinite(s) || fabsf(s) < 0x1p-14f)
            s = 0.0f;
        int64_t m = n - i < 32 ? n - i : 32;
        for (int64_t j = 0; j < m; j++) {
            int q = (b->qs[j / 2] >> (4 * (j & 1))) & 15;
            dst[i + j] = (float)(q - 8) * s;
        }
    }
}

void dq__apr_q8_range(const void *src, int64_t first, float *dst, int64_t n)
{
    const uint8_t *b = src;
    float s = lef32(b);
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(int8_t)b[4 + first + i] * s;
}

void dq_apr_q8_to_f32_ref(const void *src, float *dst, int64_t n)
{
    dq__apr_q8_range(src, 0, dst, n);
}
