/*
 * check_dq.c - the dequantization / quantization library (dequant/).
 *
 *   table      every dtype has a row; block sizes come from dtype.h; C64 refused
 *   grids      the i-quant grids, ksigns and kvalues match reference/gguf-quant.md 3.6
 *   golden     a hand-computed block per type (values worked out in the comments)
 *   twins      random blocks: fast kernel == scalar kernel, bit for bit (memcmp)
 *   edges      zero sizes, odd counts, misaligned sources, size checks
 *   vectors    the quantizer test vectors of gguf-quant.md 4.7, byte for byte (SHA-256)
 *   roundtrip  quantize -> dequantize within ggml's test-quantize-fns error bounds
 *   tensors    dq_tensor_to_f32_new, dq_tensor_values, dq_tensor_stats
 *   fixtures   every tensor of the shared tiny-llama-small GGUF fixtures
 *              dequantizes to the f32 bytes whose SHA-256 the refs list (skips when
 *              the shared fixtures directory is absent)
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/rd.h"
#include "../../common/sha256.h"
#include "../../dequant/dq.h"
#include "../../dequant/dq_impl.h"
#include "../../dequant/dq_grids.h"
#include "../../formats/model.h"
#include "tu.h"
#include "../../common/banned.h"

/* ---------------------------------------------------------------------------------------
 * Helpers
 */

static uint32_t rng_state = 0x9E3779B9u;

static uint32_t rnd(void)
{
    uint32_t s = rng_state;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    rng_state = s;
    return s;
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Decode one buffer through both the scalar and the fast path; they must agree. */
static void decode(int dt, const void *src, size_t nbytes, int64_t n, float *out)
{
    struct err e = ERR_INIT;
    float *ref = malloc((size_t)(n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(ref);
    ck_assert_msg(dq_to_f32_ref(dt, src, nbytes, ref, n, 1, &e) == 0, "%s: %s", dtype_name(dt),
                  e.msg);
    ck_assert_msg(dq_to_f32(dt, src, nbytes, out, n, 1, &e) == 0, "%s: %s", dtype_name(dt), e.msg);
    ck_assert_msg(memcmp(ref, out, (size_t)n * sizeof(float)) == 0, "%s: fast != scalar",
                  dtype_name(dt));
    free(ref);
}

#define EXPECT(dt, y, i, want)                                                            \
    ck_assert_msg(fbits((y)[i]) == fbits(want), "%s: y[%d] = %.9g, want %.9g", dtype_name(dt), \
                  (int)(i), (double)(y)[i], (double)(want))

static void put_h(uint8_t *p, float f) { put_le16(p, dq_f32_to_f16(f)); }

/* ---------------------------------------------------------------------------------------
 * The table
 */

START_TEST(test_table)
{
    int n_rows = 0;
    for (int t = -3; t < DT_COUNT + 3; t++) {
        const struct dtype_info *di = dtype_get(t);
        const struct dq_traits *tr = dq_get(t);
        if (!di) {
            ck_assert_ptr_null(tr);
            continue;
        }
        ck_assert_ptr_nonnull(tr);
        n_rows++;
        ck_assert_int_eq(tr->dtype, t);
        ck_assert_uint_eq(tr->blck, di->blck);
        ck_assert_uint_eq(tr->type_size, di->type_size);
        if (t == DT_C64) {
            ck_assert(tr->to_f32_ref == NULL);
            continue;
        }
        ck_assert_msg(tr->to_f32_ref && tr->to_f32, "%s has no kernel", di->name);
    }
    ck_assert_int_ge(n_rows, 35 + 14 + 2);

    struct err e = ERR_INIT;
    float y[2];
    uint8_t b[16] = { 0 };
    ck_assert_int_eq(dq_to_f32(DT_C64, b, 16, y, 2, 1, &e), -1);
    ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(e.msg, "C64"));
}
END_TEST

START_TEST(test_grids)
{
    static const struct {
        const char *name;
        const void *p;
        size_t      n_entries, width;
        const char *sha;
    } g[] = {
        { "iq2xxs", dq_iq2xxs_grid, 256, 8,
          "05826b5d3e472a3a78f196be62ac78acf81df0f909626e12ab9fa2a5d490dd54" },
        { "iq2xs", dq_iq2xs_grid, 512, 8,
          "06e47aaca60b4dc1d9b5a3f34540437058a6b142b4d7a59d5ded769b4d1bf1de" },
        { "iq2s", dq_iq2s_grid, 1024, 8,
          "e1aa1473412b0552c2174c30ef22ab4073f6a181b85a17056e8249bd2932fd88" },
        { "iq3xxs", dq_iq3xxs_grid, 256, 4,
          "46e35f5a997efdee6c99ce57854c8a0d4f0ff8ca57e5e8a60c0793ea580acf5d" },
        { "iq3s", dq_iq3s_grid, 512, 4,
          "bd1af4945a1717c65610b0284e4628b9a1ba3b306fae3a06f6e5f597356e349f" },
        { "iq1s", dq_iq1s_grid, 2048, 8,
          "07540ffc1aeaf6ad4d97e96b0fcc765aae39671d4ae4a27bbd0e796fde167c6a" },
    };
    char hex[65];
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        /* the little-endian byte image, whatever the host order */
        size_t nb = g[i].n_entries * g[i].width;
        uint8_t *img = malloc(nb);
        ck_assert_ptr_nonnull(img);
        for (size_t k = 0; k < g[i].n_entries; k++) {
            if (g[i].width == 8)
                put_le64(img + 8 * k, ((const uint64_t *)g[i].p)[k]);
            else
                put_le32(img + 4 * k, ((const uint32_t *)g[i].p)[k]);
        }
        tu_sha_hex(img, nb, hex);
        ck_assert_msg(strcmp(hex, g[i].sha) == 0, "%s grid: sha %s", g[i].name, hex);
        free(img);
    }
    uint8_t ks[128];
    for (int i = 0; i < 128; i++)
        ks[i] = DQ_KS(i);
    tu_sha_hex(ks, sizeof ks, hex);
    ck_assert_str_eq(hex, "a76742a603f8beca5212ecce0f1f02f11a4887fd2f7c8b15aca0ea3eb3380c31");
    tu_sha_hex(dq__kvalues_iq4nl, 16, hex);
    ck_assert_str_eq(hex, "61aa47540aa024b5d6ddaa839b84ffe59f3d5a349af5c6c7ffcb5e0474b46163");
    tu_sha_hex(dq__kvalues_fp4, 16, hex);
    ck_assert_str_eq(hex, "adf76b672d47eb7fc0afd4db132d548d59d3190aa0ad118fdbf569d5fd478f97");
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Scalar conversions
 */

START_TEST(test_f16_all)
{
    /* f16 -> f32 -> f16 is the identity for every non-NaN pattern; NaN -> sign|0x7E00 */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = dq_f16_to_f32((uint16_t)h);
        uint16_t back = dq_f32_to_f16(f);
        int is_nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
        if (is_nan)
            ck_assert_uint_eq(back, (h & 0x8000) | 0x7E00);
        else
            ck_assert_msg(back == h, "h %04x -> %08x -> %04x", h, fbits(f), back);
    }
    /* rounding: ties to even, overflow, subnormals */
    ck_assert_uint_eq(dq_f32_to_f16(65519.0f), 0x7BFF);
    ck_assert_uint_eq(dq_f32_to_f16(65520.0f), 0x7C00);
    ck_assert_uint_eq(dq_f32_to_f16(-1e30f), 0xFC00);
    ck_assert_uint_eq(dq_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);             /* tie -> even */
    ck_assert_uint_eq(dq_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02);         /* tie -> even */
    ck_assert_uint_eq(dq_f32_to_f16(0x1p-25f), 0x0000);                    /* tie -> 0 */
    ck_assert_uint_eq(dq_f32_to_f16(0x1.8p-25f), 0x0001);
    ck_assert_uint_eq(dq_f32_to_f16(3 * 0x1p-25f), 0x0002);                /* 1.5 -> 2 */
    ck_assert_uint_eq(dq_f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400);         /* to min normal */
    ck_assert_uint_eq(dq_f32_to_f16(-0.0f), 0x8000);
    ck_assert_uint_eq(dq_f16_to_f32(0x7D00) != dq_f16_to_f32(0x7D00), 1);
    ck_assert_uint_eq(fbits(dq_f16_to_f32(0x7D00)), 0x7FE00000u);          /* quieted */
    ck_assert_uint_eq(fbits(dq_f16_to_f32(0x0001)), fbits(0x1p-24f));
    /* bf16 */
    ck_assert_uint_eq(dq_f32_to_bf16(1.0f), 0x3F80);
    ck_assert_uint_eq(dq_f32_to_bf16(dq__bits_f32(0x3F808000u)), 0x3F80);   /* tie -> even */
    ck_assert_uint_eq(dq_f32_to_bf16(dq__bits_f32(0x3F818000u)), 0x3F82);
    ck_assert_uint_eq(dq_f32_to_bf16(dq__bits_f32(0x7F800001u)), 0x7FC0);   /* NaN quieted */
    ck_assert_uint_eq(dq_f32_to_bf16(dq__bits_f32(0xFF810000u)), 0xFFC1);
    ck_assert_uint_eq(dq_f32_to_bf16(dq__bits_f32(0x7F7FFFFFu)), 0x7F80);   /* -> Inf */
    ck_assert_uint_eq(dq_f32_to_bf16(dq__bits_f32(0x00010000u)), 0x0001);   /* subnormal kept */
    ck_assert_uint_eq(fbits(dq_bf16_to_f32(0xC040)), fbits(-3.0f));
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Golden blocks, hand-computed.  y = decoded outputs.
 */

START_TEST(test_golden_plain)
{
    uint8_t b[64];
    float y[16];

    put_le32(b, fbits(1.5f));
    decode(DT_F32, b, 4, 1, y);
    EXPECT(DT_F32, y, 0, 1.5f);

    put_le16(b, 0x3C00); put_le16(b + 2, 0xC000); put_le16(b + 4, 0x0001); put_le16(b + 6, 0x7C00);
    decode(DT_F16, b, 8, 4, y);
    EXPECT(DT_F16, y, 0, 1.0f); EXPECT(DT_F16, y, 1, -2.0f);
    EXPECT(DT_F16, y, 2, 0x1p-24f); EXPECT(DT_F16, y, 3, INFINITY);

    put_le16(b, 0x3F80); put_le16(b + 2, 0xC040);
    decode(DT_BF16, b, 4, 2, y);
    EXPECT(DT_BF16, y, 0, 1.0f); EXPECT(DT_BF16, y, 1, -3.0f);

    double dv = 2.5;
    uint64_t du;
    memcpy(&du, &dv, 8);
    put_le64(b, du);
    decode(DT_F64, b, 8, 1, y);
    EXPECT(DT_F64, y, 0, 2.5f);

    b[0] = 0xFF; b[1] = 0x05;
    decode(DT_I8, b, 2, 2, y);
    EXPECT(DT_I8, y, 0, -1.0f); EXPECT(DT_I8, y, 1, 5.0f);
    put_le16(b, 0x8000);
    decode(DT_I16, b, 2, 1, y);
    EXPECT(DT_I16, y, 0, -32768.0f);
    put_le32(b, (uint32_t)-5);
    decode(DT_I32, b, 4, 1, y);
    EXPECT(DT_I32, y, 0, -5.0f);
    put_le64(b, (uint64_t)1 << 40);
    decode(DT_I64, b, 8, 1, y);
    EXPECT(DT_I64, y, 0, 1099511627776.0f);

    b[0] = 0; b[1] = 1; b[2] = 7;
    decode(DT_BOOL, b, 3, 3, y);
    EXPECT(DT_BOOL, y, 0, 0.0f); EXPECT(DT_BOOL, y, 1, 1.0f); EXPECT(DT_BOOL, y, 2, 1.0f);
    b[0] = 200;
    decode(DT_U8, b, 1, 1, y);
    EXPECT(DT_U8, y, 0, 200.0f);
    put_le16(b, 65535);
    decode(DT_U16, b, 2, 1, y);
    EXPECT(DT_U16, y, 0, 65535.0f);
    put_le32(b, 0xFFFFFFFFu);
    decode(DT_U32, b, 4, 1, y);
    EXPECT(DT_U32, y, 0, 4294967296.0f);          /* rounds up to 2^32 */
    put_le64(b, UINT64_MAX);
    decode(DT_U64, b, 8, 1, y);
    EXPECT(DT_U64, y, 0, 0x1p64f);
}
END_TEST

START_TEST(test_golden_small_floats)
{
    uint8_t b[16];
    float y[16];

    /* E4M3FN: 0x38 = 0 0111 000 = 1; 0x7E = 0 1111 110 = 1.75 * 2^8; 0x01 = 2^-9 (sub) */
    b[0] = 0x38; b[1] = 0x7E; b[2] = 0x01; b[3] = 0xFF; b[4] = 0x80; b[5] = 0xB8;
    decode(DT_F8_E4M3, b, 6, 6, y);
    EXPECT(DT_F8_E4M3, y, 0, 1.0f); EXPECT(DT_F8_E4M3, y, 1, 448.0f);
    EXPECT(DT_F8_E4M3, y, 2, 0x1p-9f); ck_assert(isnan(y[3]));
    EXPECT(DT_F8_E4M3, y, 4, -0.0f); EXPECT(DT_F8_E4M3, y, 5, -1.0f);

    /* E5M2 = the top byte of an f16 */
    b[0] = 0x3C; b[1] = 0x7B; b[2] = 0x7C; b[3] = 0x01; b[4] = 0x7D;
    decode(DT_F8_E5M2, b, 5, 5, y);
    EXPECT(DT_F8_E5M2, y, 0, 1.0f); EXPECT(DT_F8_E5M2, y, 1, 57344.0f);
    EXPECT(DT_F8_E5M2, y, 2, INFINITY); EXPECT(DT_F8_E5M2, y, 3, 0x1p-16f);
    ck_assert(isnan(y[4]));

    /* E8M0: 2^(e-127) */
    b[0] = 127; b[1] = 0; b[2] = 255; b[3] = 130;
    decode(DT_F8_E8M0, b, 4, 4, y);
    EXPECT(DT_F8_E8M0, y, 0, 1.0f); EXPECT(DT_F8_E8M0, y, 1, 0x1p-127f);
    ck_assert(isnan(y[2])); EXPECT(DT_F8_E8M0, y, 3, 8.0f);

    /* E4M3FNUZ: bias 8; 0x80 is the NaN; 0x7F = 1.875 * 2^7 */
    b[0] = 0x40; b[1] = 0x80; b[2] = 0x01; b[3] = 0x7F; b[4] = 0xC0;
    decode(DT_F8_E4M3FNUZ, b, 5, 5, y);
    EXPECT(DT_F8_E4M3FNUZ, y, 0, 1.0f); ck_assert(isnan(y[1]));
    EXPECT(DT_F8_E4M3FNUZ, y, 2, 0x1p-10f); EXPECT(DT_F8_E4M3FNUZ, y, 3, 240.0f);
    EXPECT(DT_F8_E4M3FNUZ, y, 4, -1.0f);

    /* E5M2FNUZ: bias 16; exponent 31 is a normal number */
    b[0] = 0x40; b[1] = 0x7F; b[2] = 0x01; b[3] = 0x80;
    decode(DT_F8_E5M2FNUZ, b, 4, 4, y);
    EXPECT(DT_F8_E5M2FNUZ, y, 0, 1.0f); EXPECT(DT_F8_E5M2FNUZ, y, 1, 57344.0f);
    EXPECT(DT_F8_E5M2FNUZ, y, 2, 0x1p-17f); ck_assert(isnan(y[3]));

    /* F4 (E2M1), first element in the low nibble: 0x72 -> [0b0010 = 1.0, 0b0111 = 6.0];
     * 0x09 -> [0b1001 = -0.5, 0] */
    b[0] = 0x72; b[1] = 0x09;
    decode(DT_F4, b, 2, 4, y);
    EXPECT(DT_F4, y, 0, 1.0f); EXPECT(DT_F4, y, 1, 6.0f);
    EXPECT(DT_F4, y, 2, -0.5f); EXPECT(DT_F4, y, 3, 0.0f);

    /* F6_E2M3, 24-bit LE word, first element in the low 6 bits:
     * 001000 = 1.0, 011111 = 1.875 * 4 = 7.5, 100001 = -(1/8), 000000 = 0 */
    uint32_t w = 8u | 31u << 6 | 33u << 12 | 0u << 18;
    b[0] = (uint8_t)w; b[1] = (uint8_t)(w >> 8); b[2] = (uint8_t)(w >> 16);
    decode(DT_F6_E2M3, b, 3, 4, y);
    EXPECT(DT_F6_E2M3, y, 0, 1.0f); EXPECT(DT_F6_E2M3, y, 1, 7.5f);
    EXPECT(DT_F6_E2M3, y, 2, -0.125f); EXPECT(DT_F6_E2M3, y, 3, 0.0f);

    /* F6_E3M2: 001100 = 1.0, 011111 = 1.75 * 16 = 28, 000001 = 2^-4, 100100 = -0.25 */
    w = 12u | 31u << 6 | 1u << 12 | 36u << 18;
    b[0] = (uint8_t)w; b[1] = (uint8_t)(w >> 8); b[2] = (uint8_t)(w >> 16);
    decode(DT_F6_E3M2, b, 3, 4, y);
    EXPECT(DT_F6_E3M2, y, 0, 1.0f); EXPECT(DT_F6_E3M2, y, 1, 28.0f);
    EXPECT(DT_F6_E3M2, y, 2, 0.0625f); EXPECT(DT_F6_E3M2, y, 3, -0.25f);
}
END_TEST

START_TEST(test_golden_legacy)
{
    uint8_t b[64];
    float y[128];

    /* Q4_0: d = 0.5; qs[0] = 0x1F: y[0] = (15-8)*.5 = 3.5, y[16] = (1-8)*.5 = -3.5 */
    memset(b, 0x88, sizeof b);
    put_h(b, 0.5f);
    b[2] = 0x1F;
    decode(DT_Q4_0, b, 18, 32, y);
    EXPECT(DT_Q4_0, y, 0, 3.5f); EXPECT(DT_Q4_0, y, 16, -3.5f); EXPECT(DT_Q4_0, y, 5, 0.0f);

    /* Q4_1: d = 0.5, m = 1; qs[1] = 0xF3: y[1] = 3*.5+1 = 2.5, y[17] = 15*.5+1 = 8.5 */
    memset(b, 0, sizeof b);
    put_h(b, 0.5f); put_h(b + 2, 1.0f);
    b[5] = 0xF3;
    decode(DT_Q4_1, b, 20, 32, y);
    EXPECT(DT_Q4_1, y, 0, 1.0f); EXPECT(DT_Q4_1, y, 1, 2.5f); EXPECT(DT_Q4_1, y, 17, 8.5f);

    /* Q5_0: d = 1, qh bits 0 and 16; qs[0] = 0x21: y[0] = (1|16)-16 = 1, y[16] = (2|16)-16 = 2 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f); put_le32(b + 2, 1u | 1u << 16);
    b[6] = 0x21;
    decode(DT_Q5_0, b, 22, 32, y);
    EXPECT(DT_Q5_0, y, 0, 1.0f); EXPECT(DT_Q5_0, y, 16, 2.0f); EXPECT(DT_Q5_0, y, 1, -16.0f);

    /* Q5_1: d = 2, m = -1, qh bit 1; qs[1] = 0x0F: y[1] = 31*2-1 = 61, y[17] = -1 */
    memset(b, 0, sizeof b);
    put_h(b, 2.0f); put_h(b + 2, -1.0f); put_le32(b + 4, 2u);
    b[9] = 0x0F;
    decode(DT_Q5_1, b, 24, 32, y);
    EXPECT(DT_Q5_1, y, 1, 61.0f); EXPECT(DT_Q5_1, y, 17, -1.0f);

    /* Q8_0: d = 0.25; qs[0] = -128 -> -32, qs[31] = 127 -> 31.75 */
    memset(b, 0, sizeof b);
    put_h(b, 0.25f);
    b[2] = 0x80; b[33] = 127;
    decode(DT_Q8_0, b, 34, 32, y);
    EXPECT(DT_Q8_0, y, 0, -32.0f); EXPECT(DT_Q8_0, y, 31, 31.75f);

    /* Q8_1: d = 0.25, s ignored, qs[0] = 4 -> 1 */
    memset(b, 0, sizeof b);
    put_h(b, 0.25f); put_h(b + 2, 99.0f);
    b[4] = 4;
    decode(DT_Q8_1, b, 36, 32, y);
    EXPECT(DT_Q8_1, y, 0, 1.0f); EXPECT(DT_Q8_1, y, 1, 0.0f);

    /* Q1_0: d = 3; bit 0 of qs[0] set -> +3, others -3; bit 9 (qs[1] bit 1) set */
    memset(b, 0, sizeof b);
    put_h(b, 3.0f);
    b[2] = 1; b[3] = 2;
    decode(DT_Q1_0, b, 18, 128, y);
    EXPECT(DT_Q1_0, y, 0, 3.0f); EXPECT(DT_Q1_0, y, 1, -3.0f); EXPECT(DT_Q1_0, y, 9, 3.0f);

    /* Q2_0: d = 2; qs[0] = 0b11100100: q = 0,1,2,3 -> -2, 0, 2, 4 */
    memset(b, 0, sizeof b);
    put_h(b, 2.0f);
    b[2] = 0xE4;
    decode(DT_Q2_0, b, 18, 64, y);
    EXPECT(DT_Q2_0, y, 0, -2.0f); EXPECT(DT_Q2_0, y, 1, 0.0f);
    EXPECT(DT_Q2_0, y, 2, 2.0f); EXPECT(DT_Q2_0, y, 3, 4.0f);

    /* IQ4_NL: d = 0.5; qs[0] = 0xF0: y[0] = .5*KV[0] = -63.5, y[16] = .5*KV[15] = 56.5 */
    memset(b, 0, sizeof b);
    put_h(b, 0.5f);
    b[2] = 0xF0;
    decode(DT_IQ4_NL, b, 18, 32, y);
    EXPECT(DT_IQ4_NL, y, 0, -63.5f); EXPECT(DT_IQ4_NL, y, 16, 56.5f);

    /* MXFP4: e = 128 -> d = 2^0 = 1; qs[0] = 0xF7: y[0] = F[7] = 12, y[16] = F[15] = -12;
     * e = 130 -> 4 */
    memset(b, 0, sizeof b);
    b[0] = 128; b[1] = 0xF7;
    decode(DT_MXFP4, b, 17, 32, y);
    EXPECT(DT_MXFP4, y, 0, 12.0f); EXPECT(DT_MXFP4, y, 16, -12.0f);
    b[0] = 130;
    decode(DT_MXFP4, b, 17, 32, y);
    EXPECT(DT_MXFP4, y, 0, 48.0f);

    /* NVFP4: d[0] = 0x38 (exp 7, man 0: 1.0, halved 0.5), d[1] = 0x7F (-> 0),
     * d[2] = 0x01 (2^-9, halved 2^-10); qs[0] = 0x21: y[0] = F[1]*.5 = .5, y[8] = F[2]*.5 = 1 */
    memset(b, 0, sizeof b);
    b[0] = 0x38; b[1] = 0x7F; b[2] = 0x01;
    b[4] = 0x21; b[12] = 0x77; b[20] = 0x07;
    decode(DT_NVFP4, b, 36, 64, y);
    EXPECT(DT_NVFP4, y, 0, 0.5f); EXPECT(DT_NVFP4, y, 8, 1.0f);
    EXPECT(DT_NVFP4, y, 16, 0.0f); EXPECT(DT_NVFP4, y, 32, 12.0f * 0x1p-10f);
}
END_TEST

START_TEST(test_golden_k)
{
    uint8_t b[300];
    float y[256];

    /* Q2_K: every scale byte 0x21 (scale 1, min 2), d = 1, dmin = .5 -> ml = 1;
     * qs[0] = 0xE4: y[0] (g=0) q=0 -> -1, y[32] (g=1) q=1 -> 0, y[64] 1, y[96] 2 */
    memset(b, 0, sizeof b);
    memset(b, 0x21, 16);
    b[16] = 0xE4;
    put_h(b + 80, 1.0f); put_h(b + 82, 0.5f);
    decode(DT_Q2_K, b, 84, 256, y);
    EXPECT(DT_Q2_K, y, 0, -1.0f); EXPECT(DT_Q2_K, y, 32, 0.0f);
    EXPECT(DT_Q2_K, y, 64, 1.0f); EXPECT(DT_Q2_K, y, 96, 2.0f);

    /* Q3_K: d = 1; scales[0] = 1, scales[8] = 2 -> S_0 = (1 | 2<<4) - 32 = 1; S_1 = -32.
     * qs[0] = 3 with hmask[0] bit 0 clear: y[0] = 1*(3-4) = -1;
     * qs[16] = 2 with hmask[16] bit 0 set: y[16] = -32*2 = -64 */
    memset(b, 0, sizeof b);
    b[16] = 1;                     /* hmask[16] */
    b[32 + 0] = 3; b[32 + 16] = 2;
    b[96] = 1; b[96 + 8] = 2;
    put_h(b + 108, 1.0f);
    decode(DT_Q3_K, b, 110, 256, y);
    EXPECT(DT_Q3_K, y, 0, -1.0f); EXPECT(DT_Q3_K, y, 16, -64.0f);
    EXPECT(DT_Q3_K, y, 1, -4.0f);  /* q = 0, hb = 0: 1 * (0 - 4) */

    /* Q4_K: d = dmin = 1; sc0 = 2, m0 = 3, sc1 = 1, m1 = 0; sc4 = 1 | (1 << 4) = 17 (high
     * bits from byte 0), m4 = 2.  qs[0] = 0x5A: y[0] = 2*10-3 = 17, y[32] = 1*5-0 = 5;
     * qs[64] = 0x03: y[128] = 17*3-2 = 49 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f); put_h(b + 2, 1.0f);
    b[4 + 0] = 2 | 0x40; b[4 + 4] = 3; b[4 + 1] = 1; b[4 + 8] = 0x21;
    b[16] = 0x5A; b[16 + 64] = 0x03;
    decode(DT_Q4_K, b, 144, 256, y);
    EXPECT(DT_Q4_K, y, 0, 17.0f); EXPECT(DT_Q4_K, y, 32, 5.0f); EXPECT(DT_Q4_K, y, 128, 49.0f);

    /* Q5_K: the same scales; qh[0] = 1 adds 16 to y[0]: 2*26-3 = 49 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f); put_h(b + 2, 1.0f);
    b[4 + 0] = 2 | 0x40; b[4 + 4] = 3; b[4 + 1] = 1; b[4 + 8] = 0x21;
    b[16] = 0x01;
    b[48] = 0x5A; b[48 + 64] = 0x03;
    decode(DT_Q5_K, b, 176, 256, y);
    EXPECT(DT_Q5_K, y, 0, 49.0f); EXPECT(DT_Q5_K, y, 32, 5.0f); EXPECT(DT_Q5_K, y, 128, 49.0f);

    /* Q6_K: d = 1; sc[0] = 2, sc[2] = -1, sc[4] = 1; ql[0] = 0x31, qh[0] = 2:
     * y[0] = 2*((1 | 2<<4) - 32) = 2; y[32] = -1*(0-32) = 32; y[64] = 1*(3-32) = -29 */
    memset(b, 0, sizeof b);
    b[0] = 0x31; b[128] = 2;
    b[192] = 2; b[194] = 0xFF; b[196] = 1;
    put_h(b + 208, 1.0f);
    decode(DT_Q6_K, b, 210, 256, y);
    EXPECT(DT_Q6_K, y, 0, 2.0f); EXPECT(DT_Q6_K, y, 32, 32.0f); EXPECT(DT_Q6_K, y, 64, -29.0f);

    /* Q8_K: d = 0.5 (f32); qs[0] = -2 -> -1 */
    memset(b, 0, sizeof b);
    put_le32(b, fbits(0.5f));
    b[4] = 0xFE;
    decode(DT_Q8_K, b, 292, 256, y);
    EXPECT(DT_Q8_K, y, 0, -1.0f); EXPECT(DT_Q8_K, y, 1, 0.0f);

    /* TQ2_0: d = 2; qs[0] = 0xE4: y[0] (l=0) q=0 -> -2, y[32] q=1 -> 0, y[64] 2, y[96] 4 */
    memset(b, 0, sizeof b);
    b[0] = 0xE4;
    put_h(b + 64, 2.0f);
    decode(DT_TQ2_0, b, 66, 256, y);
    EXPECT(DT_TQ2_0, y, 0, -2.0f); EXPECT(DT_TQ2_0, y, 32, 0.0f);
    EXPECT(DT_TQ2_0, y, 64, 2.0f); EXPECT(DT_TQ2_0, y, 96, 4.0f);

    /* TQ1_0: d = 1.  Trits (2,1,0,0,0) most-significant first = 2*81 + 1*27 = 189;
     * stored ceil(189*256/243) = 200.  Trit n of 200: n=0: (200*3)>>8 = 2; n=1: 200*3 mod
     * 256 = 88, 88*3>>8 = 1; n=2: 200*9 mod 256 = 8 -> 0.  y = trit - 1. */
    memset(b, 0, sizeof b);
    b[0] = 200;
    b[48] = 200;                   /* qh[0] */
    put_h(b + 52, 1.0f);
    decode(DT_TQ1_0, b, 54, 256, y);
    EXPECT(DT_TQ1_0, y, 0, 1.0f); EXPECT(DT_TQ1_0, y, 32, 0.0f); EXPECT(DT_TQ1_0, y, 64, -1.0f);
    EXPECT(DT_TQ1_0, y, 240, 1.0f);   /* qh[0] trit 0 */
    EXPECT(DT_TQ1_0, y, 244, 0.0f);   /* qh[0] trit 1 */
}
END_TEST

START_TEST(test_golden_iq)
{
    uint8_t b[300];
    float y[256];

    /* IQ2_XXS: d = 1; group 0: a0 = grid indices (1, 0, 0, 0), a1 = scale 3 << 28 | sign
     * code 1 for l = 0 -> KS(1) = 0x81 (elements 0 and 7 negative).  db = (0.5+3)*0.25
     * = 0.875; iq2xxs_grid[1] = 0x080808080808082b: y[0] = -.875*43, y[1] = .875*8 = 7,
     * y[7] = -7, y[8] (grid[0], no signs) = 7 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f);
    put_le32(b + 2, 1); put_le32(b + 6, 3u << 28 | 1u);
    decode(DT_IQ2_XXS, b, 66, 256, y);
    EXPECT(DT_IQ2_XXS, y, 0, -37.625f); EXPECT(DT_IQ2_XXS, y, 1, 7.0f);
    EXPECT(DT_IQ2_XXS, y, 7, -7.0f); EXPECT(DT_IQ2_XXS, y, 8, 7.0f);

    /* IQ2_XS: d = 1; qs[0] = index 1 | sign code 3 << 9 (KS(3) = 3: elements 0, 1
     * negative); scales[0] = 0x21: db0 = 1.5*.25 = .375, db1 = 2.5*.25 = .625.
     * iq2xs_grid[1] = 0x080808080808082b: y[0] = -.375*43 = -16.125, y[1] = -3, y[2] = 3;
     * y[16] (l = 2, grid[0]) = .625*8 = 5 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f);
    put_le16(b + 2, 1 | 3 << 9);
    b[66] = 0x21;
    decode(DT_IQ2_XS, b, 74, 256, y);
    EXPECT(DT_IQ2_XS, y, 0, -16.125f); EXPECT(DT_IQ2_XS, y, 1, -3.0f);
    EXPECT(DT_IQ2_XS, y, 2, 3.0f); EXPECT(DT_IQ2_XS, y, 16, 5.0f);

    /* IQ2_S: d = 1; qs[0] = 1, qh[0] = 0 -> index 1; signs[0] = 0x02 (element 1);
     * scales[0] = 0x21 as above: y[0] = .375*43 = 16.125, y[1] = -3 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f);
    b[2] = 1; b[34] = 0x02; b[74] = 0x21;
    decode(DT_IQ2_S, b, 82, 256, y);
    EXPECT(DT_IQ2_S, y, 0, 16.125f); EXPECT(DT_IQ2_S, y, 1, -3.0f); EXPECT(DT_IQ2_S, y, 8, 3.0f);

    /* IQ3_XXS: d = 1; qs[0] = 1 (grid 0x04040414), qs[1] = 0 (0x04040404); a = scale 1 << 28
     * | sign code 1 (KS = 0x81: elements 0 and 7); db = 1.5 * .5 = .75.
     * y[0] = -.75*20 = -15, y[1] = 3, y[4] = 3, y[7] = -3 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f);
    b[2] = 1;
    put_le32(b + 66, 1u << 28 | 1u);
    decode(DT_IQ3_XXS, b, 98, 256, y);
    EXPECT(DT_IQ3_XXS, y, 0, -15.0f); EXPECT(DT_IQ3_XXS, y, 1, 3.0f);
    EXPECT(DT_IQ3_XXS, y, 4, 3.0f); EXPECT(DT_IQ3_XXS, y, 7, -3.0f);

    /* IQ3_S: d = 1; scales[0] = 0x01 -> db(ib 0) = 1 + 2 = 3; qs[0] = 1 (grid 0x01010103),
     * signs[0] = 0x10 (element 4): y[0] = 3*3 = 9, y[1] = 3, y[4] = -3 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f);
    b[2] = 1; b[74] = 0x10; b[106] = 0x01;
    decode(DT_IQ3_S, b, 110, 256, y);
    EXPECT(DT_IQ3_S, y, 0, 9.0f); EXPECT(DT_IQ3_S, y, 1, 3.0f); EXPECT(DT_IQ3_S, y, 4, -3.0f);

    /* IQ1_S: d = 1; qh[0] = scale 1 << 12 (dl = 3), delta +.125; qs[0] = 1
     * (grid 0xffffffffffffff01): y[0] = 3*(1+.125) = 3.375, y[1] = 3*(-1+.125) = -2.625.
     * qh[1] with bit 15: delta -.125, scale 0: grid[0] all -1 -> y[32] = -1.125 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f);
    b[2] = 1;
    put_le16(b + 34, 1 << 12); put_le16(b + 36, 0x8000);
    decode(DT_IQ1_S, b, 50, 256, y);
    EXPECT(DT_IQ1_S, y, 0, 3.375f); EXPECT(DT_IQ1_S, y, 1, -2.625f);
    EXPECT(DT_IQ1_S, y, 32, -1.125f);

    /* IQ1_M: d = 1.0 = f16 0x3C00 split over the top nibbles of the scale words:
     * sc3 & 0xF000 = 0x3000, (sc2 >> 4) & 0x0F00 = 0x0C00 -> sc2 = 0xC000.  sc[0] low bits
     * = 0b001 (dl1 = 3) and bits 3..5 = 0b010 (dl2 = 5).  qs[0] = 1, qh[0] = 0 (delta +);
     * qs[2] = 0, qh[1] = 0x08 (delta -): y[0] = 3*1.125, y[1] = 3*(-0.875), y[16] = 5*(-1.125) */
    memset(b, 0, sizeof b);
    b[0] = 1;
    b[33] = 0x08;
    put_le16(b + 48, 0x0001 | 0x2 << 3); put_le16(b + 52, 0xC000); put_le16(b + 54, 0x3000);
    decode(DT_IQ1_M, b, 56, 256, y);
    EXPECT(DT_IQ1_M, y, 0, 3.375f); EXPECT(DT_IQ1_M, y, 1, -2.625f);
    EXPECT(DT_IQ1_M, y, 16, -5.625f);

    /* IQ4_XS: d = 1; group 0: scales_l[0] low nibble 1, scales_h bits 0..1 = 2 -> ls = 33,
     * dl = 1; qs[0] = 0xF0: y[0] = KV[0] = -127, y[16] = KV[15] = 113.  Group 1: ls = 0
     * -> dl = -32, qs[16] = 0x08: y[32] = -32*1 = -32 */
    memset(b, 0, sizeof b);
    put_h(b, 1.0f);
    put_le16(b + 2, 2); b[4] = 0x01;
    b[8] = 0xF0; b[8 + 16] = 0x08;
    decode(DT_IQ4_XS, b, 136, 256, y);
    EXPECT(DT_IQ4_XS, y, 0, -127.0f); EXPECT(DT_IQ4_XS, y, 16, 113.0f);
    EXPECT(DT_IQ4_XS, y, 32, -32.0f);
}
END_TEST

START_TEST(test_golden_apr)
{
    uint8_t b[64];
    float y[64];

    /* APR_Q4: scale 0.5; element 2k in the low nibble: qs[0] = 0x9F -> y[0] = (15-8)*.5 =
     * 3.5, y[1] = (9-8)*.5 = .5.  40 elements = 2 blocks, the second one partial. */
    memset(b, 0x88, sizeof b);
    put_h(b, 0.5f);
    b[2] = 0x9F;
    put_h(b + 18, 2.0f);
    b[20] = 0x0A;
    decode(DT_APR_Q4, b, 36, 40, y);
    EXPECT(DT_APR_Q4, y, 0, 3.5f); EXPECT(DT_APR_Q4, y, 1, 0.5f); EXPECT(DT_APR_Q4, y, 2, 0.0f);
    EXPECT(DT_APR_Q4, y, 32, 4.0f); EXPECT(DT_APR_Q4, y, 33, -16.0f);
    /* subnormal and non-finite scales are forced to 0 */
    put_le16(b, 0x0001);
    decode(DT_APR_Q4, b, 18, 2, y);
    EXPECT(DT_APR_Q4, y, 0, 0.0f);
    put_le16(b, 0x7C00);
    decode(DT_APR_Q4, b, 18, 2, y);
    EXPECT(DT_APR_Q4, y, 0, 0.0f);

    /* APR_Q8: f32 scale for the tensor, then i8 */
    put_le32(b, fbits(0.25f));
    b[4] = 0xFC; b[5] = 8; b[6] = 1;
    decode(DT_APR_Q8, b, 7, 3, y);
    EXPECT(DT_APR_Q8, y, 0, -1.0f); EXPECT(DT_APR_Q8, y, 1, 2.0f); EXPECT(DT_APR_Q8, y, 2, 0.25f);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Random blocks: fast == scalar
 */

/* Byte offsets of the f16 scale fields inside a block (made finite before decoding:
 * with NaN scales only the NaN payload could legitimately differ). */
static void sanitize_block(int dt, uint8_t *b)
{
    static const struct { int dt; int off[4]; } f16s[] = {
        { DT_Q4_0, { 0, -1 } },   { DT_Q4_1, { 0, 2, -1 } }, { DT_Q5_0, { 0, -1 } },
        { DT_Q5_1, { 0, 2, -1 } }, { DT_Q8_0, { 0, -1 } },   { DT_Q8_1, { 0, 2, -1 } },
        { DT_Q2_K, { 80, 82, -1 } }, { DT_Q3_K, { 108, -1 } }, { DT_Q4_K, { 0, 2, -1 } },
        { DT_Q5_K, { 0, 2, -1 } }, { DT_Q6_K, { 208, -1 } }, { DT_IQ2_XXS, { 0, -1 } },
        { DT_IQ2_XS, { 0, -1 } },  { DT_IQ2_S, { 0, -1 } },  { DT_IQ3_XXS, { 0, -1 } },
        { DT_IQ3_S, { 0, -1 } },   { DT_IQ1_S, { 0, -1 } },  { DT_IQ4_NL, { 0, -1 } },
        { DT_IQ4_XS, { 0, -1 } },  { DT_TQ1_0, { 52, -1 } }, { DT_TQ2_0, { 64, -1 } },
        { DT_Q1_0, { 0, -1 } },    { DT_Q2_0, { 0, -1 } },   { DT_APR_Q4, { 0, -1 } },
    };
    for (size_t i = 0; i < sizeof f16s / sizeof f16s[0]; i++)
        if (f16s[i].dt == dt)
            for (int k = 0; k < 4 && f16s[i].off[k] >= 0; k++)
                b[f16s[i].off[k] + 1] &= 0xBF;       /* exponent < 31: finite */
    if (dt == DT_Q8_K)
        b[3] &= 0xBF;                                 /* finite f32 */
    if (dt == DT_IQ1_M)
        b[55] &= 0xBF;                                /* top nibble of the f16 d */
}

START_TEST(test_twins_random)
{
    for (int dt = 0; dt < DT_COUNT; dt++) {
        const struct dq_traits *tr = dq_get(dt);
        if (!tr || !tr->to_f32_ref)
            continue;
        int64_t blocks = 67;                         /* odd on purpose */
        int64_t n = blocks * tr->blck;
        uint64_t nb;
        struct err e = ERR_INIT;
        ck_assert_int_eq(dtype_nbytes(dt, n, &nb, &e), 0);
        uint8_t *src = malloc(nb + 1);
        float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
        ck_assert(src && a && b);
        for (int rep = 0; rep < 8; rep++) {
            for (uint64_t i = 0; i < nb; i++)
                src[i + 1] = (uint8_t)rnd();
            if (dt != DT_APR_Q8)
                for (int64_t k = 0; k < blocks; k++)
                    sanitize_block(dt, src + 1 + k * tr->type_size);
            else
                src[1 + 3] &= 0xBF;
            /* +1: misaligned on purpose */
            tr->to_f32_ref(src + 1, a, n);
            tr->to_f32(src + 1, b, n);
            ck_assert_msg(memcmp(a, b, (size_t)n * 4) == 0, "%s (%s): fast != scalar",
                          tr->info->name, tr->fast_isa);
        }
        free(src);
        free(a);
        free(b);
    }
}
END_TEST

/* Plain types whose fast path converts any bit pattern: NaN, Inf, subnormals included. */
START_TEST(test_twins_f16_bf16_all)
{
    uint8_t *src = malloc(2 * 65536 + 3);
    float *a = malloc(65536 * 4), *b = malloc(65536 * 4);
    ck_assert(src && a && b);
    for (int off = 0; off < 3; off++) {
        for (uint32_t h = 0; h < 65536; h++)
            put_le16(src + off + 2 * h, (uint16_t)h);
        for (int dt = DT_F16; dt <= DT_BF16; dt += DT_BF16 - DT_F16) {
            const struct dq_traits *tr = dq_get(dt);
            tr->to_f32_ref(src + off, a, 65536 - off);
            tr->to_f32(src + off, b, 65536 - off);
            ck_assert_msg(memcmp(a, b, (size_t)(65536 - off) * 4) == 0, "%s offset %d",
                          tr->info->name, off);
        }
    }
    free(src);
    free(a);
    free(b);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Edges: sizes, counts, alignment
 */

START_TEST(test_edges)
{
    struct err e = ERR_INIT;
    uint8_t buf[128] = { 0 };
    float y[64];

    /* zero elements: a no-op for every type but C64, even with NULL buffers */
    for (int dt = 0; dt < DT_COUNT; dt++) {
        if (!dtype_valid(dt) || dt == DT_C64)
            continue;
        struct err z = ERR_INIT;
        ck_assert_msg(dq_to_f32(dt, NULL, 0, NULL, 0, 4, &z) == 0, "%s: %s", dtype_name(dt),
                      z.msg);
        if (dt != DT_APR_Q8)   /* APR_Q8 always has its 4-byte scale */
            ck_assert_int_eq(dq_to_f32(dt, buf, 0, y, 0, 1, &z), 0);
    }
    /* not whole blocks */
    ck_assert_int_eq(dq_to_f32(DT_Q4_0, buf, 64, y, 33, 1, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    err_clear(&e);
    ck_assert_int_eq(dq_to_f32(DT_F4, buf, 64, y, 3, 1, &e), -1);
    err_clear(&e);
    /* source too short */
    ck_assert_int_eq(dq_to_f32(DT_Q8_0, buf, 33, y, 32, 1, &e), -1);
    ck_assert_int_eq(e.code, ERR_FORMAT);
    err_clear(&e);
    ck_assert_int_eq(dq_to_f32(DT_APR_Q8, buf, 4, y, 1, 1, &e), -1);
    err_clear(&e);
    ck_assert_int_eq(dq_to_f32(999, buf, 64, y, 1, 1, &e), -1);
    err_clear(&e);
    ck_assert_int_eq(dq_to_f32(DT_F32, buf, 64, y, -1, 1, &e), -1);
    err_clear(&e);

    /* odd plain counts exercise the SIMD tails */
    for (int n = 1; n < 40; n += 3) {
        for (int i = 0; i < 2 * n; i++)
            buf[i] = (uint8_t)rnd();
        decode(DT_F16, buf, (size_t)2 * n, n, y);
        decode(DT_BF16, buf, (size_t)2 * n, n, y);
    }
    /* APR_Q4 with a partial last block, APR_Q8 with any count */
    for (int i = 0; i < 64; i++)
        buf[i] = (uint8_t)rnd();
    buf[1] &= 0xBF;
    decode(DT_APR_Q4, buf, 18, 5, y);
    decode(DT_APR_Q8, buf, 64, 13, y);
}
END_TEST

/* Misaligned sources and multi-threaded splits give the same bits as one aligned pass. */
START_TEST(test_misaligned_threads)
{
    for (int dt = 0; dt < DT_COUNT; dt++) {
        const struct dq_traits *tr = dq_get(dt);
        if (!tr || !tr->to_f32_ref)
            continue;
        int64_t n = (int64_t)tr->blck * (70000 / tr->blck + 3);   /* > 64K: threads engage */
        if (dt == DT_APR_Q4 || dt == DT_APR_Q8)
            n += 5;
        uint64_t nb;
        struct err e = ERR_INIT;
        ck_assert_int_eq(dtype_nbytes(dt, n, &nb, &e), 0);
        uint8_t *raw = malloc(nb + 8), *mis = malloc(nb + 8);
        float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
        ck_assert(raw && mis && a && b);
        for (uint64_t i = 0; i < nb; i++)
            raw[i] = (uint8_t)rnd();
        if (dt != DT_APR_Q8)
            for (uint64_t k = 0; k < nb / tr->type_size; k++)
                sanitize_block(dt, raw + k * tr->type_size);
        else
            raw[3] &= 0xBF;
        ck_assert_msg(dq_to_f32(dt, raw, nb, a, n, 1, &e) == 0, "%s", e.msg);
        for (int off = 1; off < 8; off += 2) {
            memcpy(mis + off, raw, nb);
            ck_assert_msg(dq_to_f32(dt, mis + off, nb, b, n, 3, &e) == 0, "%s", e.msg);
            ck_assert_msg(memcmp(a, b, (size_t)n * 4) == 0, "%s offset %d", tr->info->name, off);
        }
        free(mis);
        free(raw);
        free(a);
        free(b);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * The quantizer test vectors of reference/gguf-quant.md 4.7
 */

static float *vectors_input(void)
{
    static const float mult[4] = { 1.0f, 0.001f, 37.5f, 1e-6f };
    float *x = malloc(8192 * sizeof(float));
    uint32_t s = 0x12345678;
    ck_assert_ptr_nonnull(x);
    for (int i = 0; i < 8192; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        float v = (float)(s >> 8) * (1.0f / 16777216) * 2.0f - 1.0f;
        x[i] = v * mult[(i / 256) % 4];
    }
    for (int i = 7 * 256; i < 8 * 256; i++)
        x[i] = 0;
    x[13 * 256 + 5] = 1000;
    return x;
}

START_TEST(test_vectors)
{
    static const struct {
        int         dt;
        size_t      bytes;
        const char *sha_q, *sha_dq;
    } v[] = {
        { DT_Q8_0, 8704, "410d053367c2bb21876f72ecd7ed9ec8c0fcc550408e186e23dba90d9b916bd6",
          "dc4a1284100e2d0d1dcd8618b13fcfeb0e490bfe9386bfffa53369b8d881891d" },
        { DT_Q4_0, 4608, "f9e7d88ce9906a29e6329a669754389d27467fe1c94ba91089b1d75e2b9cb518",
          "2620871bad98f9d2947fc35ec8c4ce27d55d8a539552e1431f13309baf58fca0" },
        { DT_Q4_K, 4608, "71d29ec427ce73bd46270ea106228c7d904f2c47933f613ae9a53a497fa148cd",
          "a887d47ed1940fab7ae0b68ebc368b15bc9aeb59cbbd61bf83b10669fc6530a8" },
        { DT_Q6_K, 6720, "d65728a67ef2378a0358e2565495bdd44f999ffd2720f0f0e3e48a454dc201fc",
          "66ad4cfe00bbf1b13410a0880f6a45bc2a7104085382c598660db53c7ea5b91b" },
        { DT_F16, 16384, "1f35e2c4cef2f933e2cc039d2a15a5b5b652ed5a024cf9539065a2e6ac7729ff",
          "d54908b747c1be032e81e6f3a96d9612364d159ef8fd3f36432e921affc09fe4" },
        { DT_BF16, 16384, "467039149831de52b92de66a6fc77f834d2e522dc578e1af0657280610f9b883",
          "7432531518c1ccf6be1d576fe590b4decad56c278914087fe582b3f3ae6eebd8" },
    };
    float *x = vectors_input(), *y = malloc(8192 * sizeof(float));
    uint8_t *q = malloc(16384);
    char hex[65];
    struct err e = ERR_INIT;

    ck_assert(y && q);
    tu_sha_hex(x, 8192 * 4, hex);   /* the host is little-endian: the bytes are the LE image */
    ck_assert_str_eq(hex, "d0a8a14ea09a41d62b643c9160fbb02ca7da59265a978394ee9aeb83d45823bf");
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const char *name = dtype_name(v[i].dt);
        ck_assert_msg(dq_quantize(v[i].dt, x, q, 32, 256, &e) == 0, "%s: %s", name, e.msg);
        tu_sha_hex(q, v[i].bytes, hex);
        ck_assert_msg(strcmp(hex, v[i].sha_q) == 0, "%s quantized: sha %s", name, hex);
        ck_assert_int_eq(dq_to_f32(v[i].dt, q, v[i].bytes, y, 8192, 2, &e), 0);
        tu_sha_hex(y, 8192 * 4, hex);
        ck_assert_msg(strcmp(hex, v[i].sha_dq) == 0, "%s dequantized: sha %s", name, hex);
    }
    /* first bytes quoted by the reference */
    static const uint8_t q8_head[8] = { 0xdc, 0x1f, 0x08, 0x93, 0xc7, 0x02, 0xf0, 0xa8 };
    static const uint8_t q4k_head[8] = { 0x63, 0x18, 0x32, 0x24, 0xf9, 0xf9, 0xff, 0xfd };
    ck_assert_int_eq(dq_quantize(DT_Q8_0, x, q, 32, 256, &e), 0);
    ck_assert_mem_eq(q, q8_head, 8);
    ck_assert_int_eq(dq_quantize(DT_Q4_K, x, q, 32, 256, &e), 0);
    ck_assert_mem_eq(q, q4k_head, 8);

    /* the bytes do not depend on the thread count */
    uint8_t *q2 = malloc(16384);
    ck_assert_ptr_nonnull(q2);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ck_assert_int_eq(dq_quantize(v[i].dt, x, q, 32, 256, &e), 0);
        ck_assert_int_eq(dq_quantize_mt(v[i].dt, x, q2, 32, 256, 3, &e), 0);
        ck_assert_mem_eq(q, q2, v[i].bytes);
    }
    free(q2);
    free(x);
    free(y);
    free(q);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Round trips within ggml's test-quantize-fns bounds.  Its metric: sqrt(sum of squared
 * errors) / n over 0.1 + 2 cos(i + offset); its bound for 4-bit and wider types is
 * 0.002.  We also check the plain RMSE against a per-type bound (a step of the grid).
 */

START_TEST(test_roundtrip)
{
    static const struct { int dt; double max_rmse; } t[] = {
        { DT_Q8_0, 0.01 }, { DT_Q4_0, 0.15 }, { DT_Q4_1, 0.1 }, { DT_Q5_0, 0.08 },
        { DT_Q5_1, 0.05 }, { DT_Q4_K, 0.1 },  { DT_Q5_K, 0.05 }, { DT_Q6_K, 0.03 },
        { DT_F16, 0.001 }, { DT_BF16, 0.01 }, { DT_F32, 0.0 },
    };
    enum { N = 32 * 128 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint8_t *q = malloc(N * 4);
    struct err e = ERR_INIT;

    ck_assert(x && y && q);
    for (int i = 0; i < N; i++)
        x[i] = 0.1f + 2 * cosf((float)i + 0.5f);
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        uint64_t nb;
        ck_assert_int_eq(dtype_nbytes(t[k].dt, N, &nb, &e), 0);
        ck_assert_msg(dq_quantize(t[k].dt, x, q, 16, N / 16, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(dq_to_f32(t[k].dt, q, nb, y, N, 1, &e), 0);
        double s = 0;
        for (int i = 0; i < N; i++)
            s += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        double ggml_err = sqrt(s) / N, rmse = sqrt(s / N);
        ck_assert_msg(ggml_err < 0.002, "%s: total error %g", dtype_name(t[k].dt), ggml_err);
        ck_assert_msg(rmse <= t[k].max_rmse, "%s: rmse %g", dtype_name(t[k].dt), rmse);
    }
    /* constant and all-zero blocks */
    for (int i = 0; i < 256; i++)
        x[i] = 0.0f;
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        uint64_t nb;
        ck_assert_int_eq(dtype_nbytes(t[k].dt, 256, &nb, &e), 0);
        ck_assert_int_eq(dq_quantize(t[k].dt, x, q, 1, 256, &e), 0);
        ck_assert_int_eq(dq_to_f32(t[k].dt, q, nb, y, 256, 1, &e), 0);
        for (int i = 0; i < 256; i++)
            ck_assert_msg(y[i] == 0.0f, "%s: zero block gives %g", dtype_name(t[k].dt), y[i]);
    }
    /* refusals */
    ck_assert_int_eq(dq_quantize(DT_IQ2_XXS, x, q, 1, 256, &e), -1);
    ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
    err_clear(&e);
    ck_assert_int_eq(dq_quantize(DT_Q4_0, x, q, 1, 48, &e), -1);
    err_clear(&e);
    free(x);
    free(y);
    free(q);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Whole-tensor helpers
 */

static struct model_tensor mk_tensor(int dt, const void *data, uint64_t size, int64_t n)
{
    struct model_tensor t;
    memset(&t, 0, sizeof t);
    t.name.p = "t";
    t.name.n = 1;
    t.dtype = dt;
    t.n_dims = 1;
    t.shape[0] = n;
    t.n_elems = n;
    t.size = size;
    t.data = data;
    return t;
}

START_TEST(test_tensor_helpers)
{
    struct err e = ERR_INIT;
    float vals[10] = { 1, -2, 0, -0.0f, 3, NAN, INFINITY, -INFINITY, 4, 0.5f };
    struct model_tensor t = mk_tensor(DT_F32, vals, sizeof vals, 10);
    struct dq_stats st;

    ck_assert_int_eq(dq_tensor_stats(&t, 2, &st, &e), 0);
    ck_assert_uint_eq(st.n, 10);
    ck_assert_uint_eq(st.n_nan, 1);
    ck_assert_uint_eq(st.n_inf, 2);
    ck_assert_uint_eq(st.n_zero, 2);
    ck_assert_double_eq(st.min, -2);
    ck_assert_double_eq(st.max, 4);
    /* finite: 1 -2 0 0 3 4 .5 -> sum 6.5, mean 6.5/7; sum of squares 30.25 */
    ck_assert_double_eq_tol(st.mean, 6.5 / 7, 1e-12);
    ck_assert_double_eq_tol(st.l2, sqrt(30.25), 1e-12);
    ck_assert_double_eq_tol(st.std, sqrt(30.25 / 7 - (6.5 / 7) * (6.5 / 7)), 1e-12);

    /* values: the first N, clamped */
    float out[10];
    ck_assert_int_eq(dq_tensor_values(&t, 3, out, &e), 0);
    ck_assert(out[0] == 1 && out[1] == -2 && out[2] == 0);
    ck_assert_int_eq(dq_tensor_values(&t, 100, out, &e), 0);
    ck_assert(out[9] == 0.5f);

    /* a quantized tensor: values of a partial block equal the full decode */
    enum { N = 256 * 5 };
    float *x = malloc(N * 4), *full = NULL, *some = malloc(N * 4);
    uint8_t *q = malloc(N);
    ck_assert(x && q && some);
    for (int i = 0; i < N; i++)
        x[i] = sinf((float)i * 0.37f) * 3;
    ck_assert_int_eq(dq_quantize(DT_Q4_K, x, q, 5, 256, &e), 0);
    t = mk_tensor(DT_Q4_K, q, 5 * 144, N);
    full = dq_tensor_to_f32_new(&t, 2, &e);
    ck_assert_ptr_nonnull(full);
    ck_assert_int_eq(dq_tensor_values(&t, 300, some, &e), 0);
    ck_assert_mem_eq(some, full, 300 * 4);

    /* truncated data, unknown dtype, complex */
    t.size = 5 * 144 - 1;
    ck_assert_ptr_null(dq_tensor_to_f32_new(&t, 1, &e));
    ck_assert_int_eq(e.code, ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "tensor 't'"));
    err_clear(&e);
    t = mk_tensor(DT_C64, q, 16, 2);
    ck_assert_int_eq(dq_tensor_stats(&t, 1, &st, &e), -1);
    ck_assert_int_eq(e.code, ERR_UNSUPPORTED);
    err_clear(&e);

    /* zero-size tensor */
    t = mk_tensor(DT_Q4_K, NULL, 0, 0);
    float *z = dq_tensor_to_f32_new(&t, 1, &e);
    ck_assert_ptr_nonnull(z);
    free(z);
    ck_assert_int_eq(dq_tensor_stats(&t, 1, &st, &e), 0);
    ck_assert_uint_eq(st.n, 0);
    ck_assert_int_eq(dq_tensor_values(&t, 5, out, &e), 0);

    free(x);
    free(full);
    free(some);
    free(q);
}
END_TEST

/* Stats stream in chunks and do not depend on the thread count. */
START_TEST(test_stats_threads)
{
    enum { N = DQ_STATS_CHUNK * 3 + 1000 };
    uint8_t *h = malloc(N * 2);
    struct err e = ERR_INIT;
    struct dq_stats a, b;
    double sum = 0, sum2 = 0, mn = INFINITY, mx = -INFINITY;

    ck_assert_ptr_nonnull(h);
    for (int i = 0; i < N; i++) {
        float v = (float)(rnd() % 2001) / 100.0f - 10.0f;
        uint16_t hv = dq_f32_to_f16(v);
        double dv = dq_f16_to_f32(hv);
        put_le16(h + 2 * i, hv);
        sum += dv;
        sum2 += dv * dv;
        mn = dv < mn ? dv : mn;
        mx = dv > mx ? dv : mx;
    }
    struct model_tensor t = mk_tensor(DT_F16, h, N * 2, N);
    ck_assert_int_eq(dq_tensor_stats(&t, 1, &a, &e), 0);
    ck_assert_int_eq(dq_tensor_stats(&t, 3, &b, &e), 0);
    ck_assert_mem_eq(&a, &b, sizeof a);
    ck_assert_double_eq(a.min, mn);
    ck_assert_double_eq(a.max, mx);
    ck_assert_double_eq_tol(a.mean, sum / N, 1e-9);
    ck_assert_double_eq_tol(a.l2, sqrt(sum2), 1e-6);
    ck_assert_double_eq_tol(a.std, sqrt(sum2 / N - (sum / N) * (sum / N)), 1e-6);
    free(h);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Real files: the tiny-llama-small GGUF fixtures against their refs (tensors.json)
 */

/* Copy the JSON string value after `key` (searching from *pos) into out; advances *pos. */
static int json_next_str(const char *js, const char **pos, const char *key, char *out, size_t cap)
{
    const char *k = strstr(*pos, key), *q, *end;
    (void)js;
    if (!k)
        return -1;
    q = strchr(k + strlen(key), '"');
    if (!q)
        return -1;
    end = strchr(q + 1, '"');
    if (!end || (size_t)(end - q - 1) >= cap)
        return -1;
    memcpy(out, q + 1, (size_t)(end - q - 1));
    out[end - q - 1] = 0;
    *pos = end + 1;
    return 0;
}

START_TEST(test_fixtures)
{
    static const char *names[] = { "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K", "IQ4_XS" };
    char dir[1024], path[1200];
    int n_checked = 0;

    if (!tu_need_shared("gguf"))
        return;
    snprintf(dir, sizeof dir, "%s/gguf", tu_shared_dir());
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        struct model m;
        struct err e = ERR_INIT;
        size_t jn = 0;
        char *js;
        const char *pos;
        char tname[256], sha[80], hex[65];

        snprintf(path, sizeof path, "%s/refs/tiny-llama-small-%s.tensors.json", dir, names[f]);
        js = tu_slurp_str(path, &jn);   /* fails the test when unreadable */
        snprintf(path, sizeof path, "%s/tiny-llama-small-%s.gguf", dir, names[f]);
        ck_assert_msg(model_open(&m, path, &e) == 0, "%s: %s", path, e.msg);
        pos = strstr(js, "\"tensors\"");
        ck_assert_ptr_nonnull(pos);
        while (json_next_str(js, &pos, "\"name\":", tname, sizeof tname) == 0) {
            ck_assert_int_eq(json_next_str(js, &pos, "\"sha256_f32\":", sha, sizeof sha), 0);
            const struct model_tensor *t = model_tensor_find(&m, tname);
            ck_assert_msg(t != NULL, "%s: tensor '%s' missing", names[f], tname);
            float *y = dq_tensor_to_f32_new(t, 2, &e);
            ck_assert_msg(y != NULL, "%s: %s", names[f], e.msg);
            tu_sha_hex(y, (size_t)t->n_elems * 4, hex);
            ck_assert_msg(strcmp(hex, sha) == 0, "%s: tensor '%s' (%s): f32 sha %s, want %s",
                          names[f], tname, dtype_name(t->dtype), hex, sha);
            /* the scalar path too */
            ck_assert_int_eq(dq_to_f32_ref(t->dtype, t->data, t->size, y, t->n_elems, 1, &e), 0);
            tu_sha_hex(y, (size_t)t->n_elems * 4, hex);
            ck_assert_msg(strcmp(hex, sha) == 0, "%s: tensor '%s' scalar sha", names[f], tname);
            free(y);
            n_checked++;
        }
        model_close(&m);
        free(js);
    }
    ck_assert_int_gt(n_checked, 100);
}
END_TEST

Suite *dq_suite(void)
{
    Suite *s = suite_create("dq");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_grids);
    tcase_add_test(tc, test_f16_all);
    tcase_add_test(tc, test_golden_plain);
    tcase_add_test(tc, test_golden_small_floats);
    tcase_add_test(tc, test_golden_legacy);
    tcase_add_test(tc, test_golden_k);
    tcase_add_test(tc, test_golden_iq);
    tcase_add_test(tc, test_golden_apr);
    tcase_add_test(tc, test_twins_random);
    tcase_add_test(tc, test_twins_f16_bf16_all);
    tcase_add_test(tc, test_edges);
    tcase_add_test(tc, test_misaligned_threads);
    tcase_add_test(tc, test_vectors);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_tensor_helpers);
    tcase_add_test(tc, test_stats_threads);
    tcase_add_test(tc, test_fixtures);
    suite_add_tcase(s, tc);
    return s;
}
