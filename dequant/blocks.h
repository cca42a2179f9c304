/*
 * blocks.h - the byte layout of every ggml quantized block, as packed structs.
 *
 * One header for C (gcc, clang) and CUDA (nvcc): the dequantizers, the quantizers,
 * the runtime's dot products and the CUDA kernels all read blocks through these
 * structs, never through bare byte offsets.  Every struct is packed (alignment 1),
 * because SafeTensors and APR data need not be aligned; the static asserts below
 * pin each size to reference/gguf-quant.md section 3.1.
 *
 * Conventions: a field named d, dmin, m or s of type uint16_t holds IEEE binary16
 * bits (convert with dq__h2f or the CUDA intrinsic); multi-byte fields are little
 * endian, which is what every platform we build for is.  QK_K = 256.
 */
#ifndef DQ_BLOCKS_H
#define DQ_BLOCKS_H

#include <stdint.h>

#define QK_LEGACY 32   /* Q4_0 .. Q8_1, IQ4_NL, MXFP4 */
#define QK_K      256  /* K-quants, IQ*, TQ* */
#define K_SCALE_SIZE 12

#if defined(__cplusplus)
#define BLK_ASSERT(c, m) static_assert(c, m)
#else
#define BLK_ASSERT(c, m) _Static_assert(c, m)
#endif
#define BLK_PACKED __attribute__((packed))

/* ---- legacy blocks of 32 ---- */
struct BLK_PACKED block_q4_0 { uint16_t d;              uint8_t qs[16]; };
struct BLK_PACKED block_q4_1 { uint16_t d; uint16_t m;  uint8_t qs[16]; };
struct BLK_PACKED block_q5_0 { uint16_t d;              uint8_t qh[4]; uint8_t qs[16]; };
struct BLK_PACKED block_q5_1 { uint16_t d; uint16_t m;  uint8_t qh[4]; uint8_t qs[16]; };
struct BLK_PACKED block_q8_0 { uint16_t d;              int8_t qs[32]; };
struct BLK_PACKED block_q8_1 { uint16_t d; uint16_t s;  int8_t qs[32]; };   /* s = d * sum(qs) */
struct BLK_PACKED block_iq4_nl { uint16_t d;            uint8_t qs[16]; };
struct BLK_PACKED block_mxfp4 { uint8_t e;              uint8_t qs[16]; };  /* e: E8M0 scale */

/* ---- recent small blocks ---- */
struct BLK_PACKED block_nvfp4 { uint8_t d[4];           uint8_t qs[32]; };  /* 64 elems, UE4M3 scales */
struct BLK_PACKED block_q1_0  { uint16_t d;             uint8_t qs[16]; };  /* 128 elems */
struct BLK_PACKED block_q2_0  { uint16_t d;             uint8_t qs[16]; };  /* 64 elems */

/* ---- K-quants, super-blocks of 256 ---- */
struct BLK_PACKED block_q2_K {
    uint8_t  scales[QK_K / 16];   /* low nibble scale, high nibble min */
    uint8_t  qs[QK_K / 4];
    uint16_t d, dmin;
};
struct BLK_PACKED block_q3_K {
    uint8_t  hmask[QK_K / 8];
    uint8_t  qs[QK_K / 4];
    uint8_t  scales[12];          /* 16 six-bit scales */
    uint16_t d;
};
struct BLK_PACKED block_q4_K {
    uint16_t d, dmin;
    uint8_t  scales[K_SCALE_SIZE];/* 8 six-bit scales and mins (get_scale_min_k4) */
    uint8_t  qs[QK_K / 2];
};
struct BLK_PACKED block_q5_K {
    uint16_t d, dmin;
    uint8_t  scales[K_SCALE_SIZE];
    uint8_t  qh[QK_K / 8];
    uint8_t  qs[QK_K / 2];
};
struct BLK_PACKED block_q6_K {
    uint8_t  ql[QK_K / 2];
    uint8_t  qh[QK_K / 4];
    int8_t   scales[QK_K / 16];
    uint16_t d;
};
struct BLK_PACKED block_q8_K {    /* intermediate: activations for K-quant dot products */
    float    d;
    int8_t   qs[QK_K];
    int16_t  bsums[QK_K / 16];
};

/* ---- ternary ---- */
struct BLK_PACKED block_tq1_0 {
    uint8_t  qs[(QK_K - 4 * QK_K / 64) / 5];   /* 48: 5 trits a byte */
    uint8_t  qh[QK_K / 64];                    /* 4: 4 trits a byte */
    uint16_t d;
};
struct BLK_PACKED block_tq2_0 { uint8_t qs[QK_K / 4]; uint16_t d; };

/* ---- i-quants ---- */
struct BLK_PACKED block_iq2_xxs { uint16_t d; uint16_t qs[QK_K / 8]; };
struct BLK_PACKED block_iq2_xs  { uint16_t d; uint16_t qs[QK_K / 8]; uint8_t scales[QK_K / 32]; };
struct BLK_PACKED block_iq2_s {
    uint16_t d;
    uint8_t  qs[QK_K / 8];        /* grid index low bits */
    uint8_t  signs[QK_K / 8];
    uint8_t  qh[QK_K / 32];
    uint8_t  scales[QK_K / 32];
};
struct BLK_PACKED block_iq3_xxs { uint16_t d; uint8_t qs[3 * QK_K / 8]; };  /* 64 grid + 32 scale/sign */
struct BLK_PACKED block_iq3_s {
    uint16_t d;
    uint8_t  qs[QK_K / 4];
    uint8_t  qh[QK_K / 32];
    uint8_t  signs[QK_K / 8];
    uint8_t  scales[QK_K / 64];
};
struct BLK_PACKED block_iq1_s { uint16_t d; uint8_t qs[QK_K / 8]; uint16_t qh[QK_K / 32]; };
struct BLK_PACKED block_iq1_m { uint8_t qs[QK_K / 8]; uint8_t qh[QK_K / 16]; uint16_t scales[QK_K / 64]; };
struct BLK_PACKED block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;
    uint8_t  scales_l[QK_K / 64];
    uint8_t  qs[QK_K / 2];
};

BLK_ASSERT(sizeof(struct block_q4_0) == 18, "q4_0");
BLK_ASSERT(sizeof(struct block_q4_1) == 20, "q4_1");
BLK_ASSERT(sizeof(struct block_q5_0) == 22, "q5_0");
BLK_ASSERT(sizeof(struct block_q5_1) == 24, "q5_1");
BLK_ASSERT(sizeof(struct block_q8_0) == 34, "q8_0");
BLK_ASSERT(sizeof(struct block_q8_1) == 36, "q8_1");
BLK_ASSERT(sizeof(struct block_iq4_nl) == 18, "iq4_nl");
BLK_ASSERT(sizeof(struct block_mxfp4) == 17, "mxfp4");
BLK_ASSERT(sizeof(struct block_nvfp4) == 36, "nvfp4");
BLK_ASSERT(sizeof(struct block_q1_0) == 18, "q1_0");
BLK_ASSERT(sizeof(struct block_q2_0) == 18, "q2_0");
BLK_ASSERT(sizeof(struct block_q2_K) == 84, "q2_K");
BLK_ASSERT(sizeof(struct block_q3_K) == 110, "q3_K");
BLK_ASSERT(sizeof(struct block_q4_K) == 144, "q4_K");
BLK_ASSERT(sizeof(struct block_q5_K) == 176, "q5_K");
BLK_ASSERT(sizeof(struct block_q6_K) == 210, "q6_K");
BLK_ASSERT(sizeof(struct block_q8_K) == 292, "q8_K");
BLK_ASSERT(sizeof(struct block_tq1_0) == 54, "tq1_0");
BLK_ASSERT(sizeof(struct block_tq2_0) == 66, "tq2_0");
BLK_ASSERT(sizeof(struct block_iq2_xxs) == 66, "iq2_xxs");
BLK_ASSERT(sizeof(struct block_iq2_xs) == 74, "iq2_xs");
BLK_ASSERT(sizeof(struct block_iq2_s) == 82, "iq2_s");
BLK_ASSERT(sizeof(struct block_iq3_xxs) == 98, "iq3_xxs");
BLK_ASSERT(sizeof(struct block_iq3_s) == 110, "iq3_s");
BLK_ASSERT(sizeof(struct block_iq1_s) == 50, "iq1_s");
BLK_ASSERT(sizeof(struct block_iq1_m) == 56, "iq1_m");
BLK_ASSERT(sizeof(struct block_iq4_xs) == 136, "iq4_xs");

#endif
