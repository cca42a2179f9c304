/*
 * check_quant.c - the quantizers of dequant/dq_quant.c against ggml's bytes.
 *
 *   fixtures   every tensor of the tiny-llama-small fixtures that llama-quantize
 *              wrote from tiny-llama-small-F32.gguf (F16, Q8_0, Q4_0, Q4_K_M, Q6_K,
 *              IQ4_XS): quantizing the F32 source tensor to the fixture tensor's type
 *              gives the fixture's bytes (sha256_raw in refs/NAME.tensors.json); skips
 *              visibly without ../shared
 *   threads    dq_quantize_mt: the same bytes for 1, 2, 3 and 7 threads, every type
 *   roundtrip  dequantize(quantize(x)) error within measured bounds, every new type
 *   special    all-zero blocks, a single spike, tiny groups: no NaN, decodable
 *   twins      each SIMD quantizer (dq_traits.quantize) against its scalar reference
 *              (quantize_ref), byte for byte, on random, tiny, huge, NaN and Inf blocks
 *   vectors    the input of reference/gguf-quant.md 4.7 quantized to the types the
 *              fixtures do not hold, against SHA-256 values of ggml's own output
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/sha256.h"
#include "../../dequant/dq.h"
#include "../../formats/model.h"
#include "tu.h"
#include "../../common/banned.h"

/* Every type dq_quantize can produce (besides F32). */
static const int prod_types[] = {
    DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q2_K, DT_Q3_K,
    DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_IQ4_NL, DT_IQ4_XS, DT_TQ1_0, DT_TQ2_0, DT_IQ3_XXS, DT_IQ3_S,
};
#define N_PROD (sizeof prod_types / sizeof prod_types[0])

static uint32_t rng = 0x2545F491u;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (float)(rng >> 8) * (1.0f / 16777216) * 2.0f - 1.0f;
}

/* Copy the JSON string value after `key` (searching from *pos) into out; advances *pos. */
static int json_next_str(const char **pos, const char *key, char *out, size_t cap)
{
    const char *k = strstr(*pos, key), *q, *end;
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

/* ---------------------------------------------------------------------------------------
 * The fixtures: llama-quantize's bytes, tensor by tensor.
 */
START_TEST(test_fixtures)
{
    static const char *names[] = { "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K", "IQ4_XS" };
    char dir[1024], path[1200];
    int per_type[DT_COUNT] = { 0 }, n_checked = 0;
    struct model src;
    struct err e = ERR_INIT;

    if (!tu_need_shared("gguf/tiny-llama-small-F32.gguf"))
        return;
    snprintf(dir, sizeof dir, "%s/gguf", tu_shared_dir());
    snprintf(path, sizeof path, "%s/tiny-llama-small-F32.gguf", dir);
    ck_assert_msg(model_open(&src, path, &e) == 0, "%s: %s", path, e.msg);
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        struct model m;
        size_t jn = 0;
        char *js;
        const char *pos;
        char tname[256], sha[80], hex[65];

        snprintf(path, sizeof path, "%s/refs/tiny-llama-small-%s.tensors.json", dir, names[f]);
        js = tu_slurp_str(path, &jn);
        snprintf(path, sizeof path, "%s/tiny-llama-small-%s.gguf", dir, names[f]);
        ck_assert_msg(model_open(&m, path, &e) == 0, "%s: %s", path, e.msg);
        pos = strstr(js, "\"tensors\"");
        ck_assert_ptr_nonnull(pos);
        while (json_next_str(&pos, "\"name\":", tname, sizeof tname) == 0) {
            ck_assert_int_eq(json_next_str(&pos, "\"sha256_raw\":", sha, sizeof sha), 0);
            const struct model_tensor *t = model_tensor_find(&m, tname);
            const struct model_tensor *s = model_tensor_find(&src, tname);
            ck_assert_msg(t && s, "%s: tensor '%s' missing", names[f], tname);
            ck_assert_int_eq(s->dtype, DT_F32);
            ck_assert_int_eq(s->n_elems, t->n_elems);
            int64_t per_row = s->shape[s->n_dims - 1], rows = s->n_elems / per_row;
            uint64_t nb;
            ck_assert_int_eq(dtype_nbytes(t->dtype, t->n_elems, &nb, &e), 0);
            ck_assert_uint_eq(nb, t->size);
            uint8_t *q = malloc((size_t)nb);
            ck_assert_ptr_nonnull(q);
            /* the source is F32 on disk: dequantize (a copy) to get aligned floats */
            float *x = dq_tensor_to_f32_new(s, 1, &e);
            ck_assert_ptr_nonnull(x);
            ck_assert_msg(dq_quantize(t->dtype, x, q, rows, per_row, &e) == 0, "%s: %s: %s",
                          names[f], tname, e.msg);
            tu_sha_hex(q, (size_t)nb, hex);
            ck_assert_msg(strcmp(hex, sha) == 0, "%s: tensor '%s' (%s): sha %s, want %s",
                          names[f], tname, dtype_name(t->dtype), hex, sha);
            ck_assert_msg(memcmp(q, t->data, (size_t)nb) == 0, "%s: '%s' bytes", names[f],
                          tname);
            per_type[t->dtype]++;
            n_checked++;
            free(x);
            free(q);
        }
        model_close(&m);
        free(js);
    }
    model_close(&src);
    /* the fixtures hold these types; each must have been checked */
    ck_assert_int_gt(per_type[DT_F16], 0);
    ck_assert_int_gt(per_type[DT_Q8_0], 0);
    ck_assert_int_gt(per_type[DT_Q4_0], 0);
    ck_assert_int_gt(per_type[DT_Q4_K], 0);
    ck_assert_int_gt(per_type[DT_Q5_K], 0);
    ck_assert_int_gt(per_type[DT_Q6_K], 0);
    ck_assert_int_gt(per_type[DT_IQ4_XS], 0);
    ck_assert_int_gt(n_checked, 100);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Threads: the bytes do not depend on how rows are split.
 */
START_TEST(test_threads)
{
    const int64_t rows = 37, per_row = 512;
    float *x = malloc((size_t)(rows * per_row) * sizeof *x);
    struct err e = ERR_INIT;
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < rows * per_row; i++)
        x[i] = frand() * (i % 700 == 3 ? 40.0f : 1.0f);
    for (size_t k = 0; k < N_PROD; k++) {
        int dt = prod_types[k];
        uint64_t nb;
        ck_assert_int_eq(dtype_nbytes(dt, rows * per_row, &nb, &e), 0);
        uint8_t *a = malloc((size_t)nb), *b = malloc((size_t)nb);
        ck_assert(a && b);
        ck_assert_int_eq(dq_quantize_mt(dt, x, a, rows, per_row, 1, &e), 0);
        static const int nt[] = { 2, 3, 7 };
        for (size_t j = 0; j < 3; j++) {
            memset(b, 0xA5, (size_t)nb);
            ck_assert_int_eq(dq_quantize_mt(dt, x, b, rows, per_row, nt[j], &e), 0);
            ck_assert_msg(memcmp(a, b, (size_t)nb) == 0, "%s: %d threads differ",
                          dtype_name(dt), nt[j]);
        }
        free(a);
        free(b);
    }
    free(x);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Round trip.  The bound is on the RMS error relative to the RMS of the data (uniform
 * values in [-1, 1), 64 K of them, this file's generator).  Measured (gcc 12, x86-64):
 *   F16 0.00018  BF16 0.0015  Q8_0 0.0038  Q4_0 0.065  Q4_1 0.061  Q5_0 0.031
 *   Q5_1 0.029  Q2_K 0.231  Q3_K 0.125  Q4_K 0.055  Q5_K 0.028  Q6_K 0.013
 *   IQ4_NL 0.064  IQ4_XS 0.065  IQ3_XXS 0.193  IQ3_S 0.142  TQ1_0 0.497  TQ2_0 0.497
 *   (ternary: d = max |x|, so uniform data is mostly rounded to 0 or +-d)
 * The limits are about 1.3x those: a quantizer that packs a field wrongly lands near
 * 1.0 or far above, a lost scale or rounding step well above 1.3x.
 */
START_TEST(test_roundtrip)
{
    static const struct { int dt; double lim; } lim[] = {
        { DT_F16, 0.00025 }, { DT_BF16, 0.002 }, { DT_Q8_0, 0.005 }, { DT_Q4_0, 0.085 },
        { DT_Q4_1, 0.08 }, { DT_Q5_0, 0.041 }, { DT_Q5_1, 0.039 }, { DT_Q2_K, 0.30 },
        { DT_Q3_K, 0.165 }, { DT_Q4_K, 0.072 }, { DT_Q5_K, 0.037 }, { DT_Q6_K, 0.018 },
        { DT_IQ4_NL, 0.084 }, { DT_IQ4_XS, 0.085 }, { DT_TQ1_0, 0.55 }, { DT_TQ2_0, 0.55 },
        { DT_IQ3_XXS, 0.25 }, { DT_IQ3_S, 0.185 },
    };
    const int64_t n = 65536;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    struct err e = ERR_INIT;
    ck_assert(x && y);
    for (int64_t i = 0; i < n; i++)
        x[i] = frand();
    for (size_t k = 0; k < sizeof lim / sizeof lim[0]; k++) {
        uint64_t nb;
        ck_assert_int_eq(dtype_nbytes(lim[k].dt, n, &nb, &e), 0);
        uint8_t *q = malloc((size_t)nb);
        ck_assert_ptr_nonnull(q);
        ck_assert_int_eq(dq_quantize(lim[k].dt, x, q, n / 256, 256, &e), 0);
        ck_assert_int_eq(dq_to_f32(lim[k].dt, q, nb, y, n, 1, &e), 0);
        double se = 0, sx = 0;
        for (int64_t i = 0; i < n; i++) {
            se += (double)(y[i] - x[i]) * (y[i] - x[i]);
            sx += (double)x[i] * x[i];
        }
        double rel = sqrt(se / sx);
        ck_assert_msg(rel < lim[k].lim, "%s: relative RMS error %.4f >= %.4f",
                      dtype_name(lim[k].dt), rel, lim[k].lim);
        /* and not suspiciously exact either (a quantizer that stores nothing useful
         * cannot reach these; one that copies would give 0) */
        ck_assert_msg(rel > lim[k].lim / 100, "%s: error %.6f", dtype_name(lim[k].dt), rel);
        free(q);
    }
    free(x);
    free(y);
}
END_TEST

/* All-zero super-blocks, a single spike, values below GROUP_MAX_EPS: decodable, no NaN,
 * zeros stay zeros. */
START_TEST(test_special)
{
    const int64_t n = 1024;
    float x[1024], y[1024];
    struct err e = ERR_INIT;
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.0f;
    for (int64_t i = 256; i < 512; i++)
        x[i] = 1e-20f * (float)(i - 300);
    x[700] = 1000.0f;
    for (int64_t i = 768; i < 1024; i++)
        x[i] = frand();
    for (size_t k = 0; k < N_PROD; k++) {
        uint8_t q[4096];
        uint64_t nb;
        ck_assert_int_eq(dtype_nbytes(prod_types[k], n, &nb, &e), 0);
        ck_assert_uint_le(nb, sizeof q);
        ck_assert_int_eq(dq_quantize(prod_types[k], x, q, 4, 256, &e), 0);
        ck_assert_int_eq(dq_to_f32(prod_types[k], q, nb, y, n, 1, &e), 0);
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(isfinite(y[i]), "%s: y[%lld] = %g", dtype_name(prod_types[k]),
                          (long long)i, y[i]);
        for (int64_t i = 0; i < 256; i++)
            ck_assert_msg(y[i] == 0.0f, "%s: zero block gives %g", dtype_name(prod_types[k]),
                          y[i]);
        /* IQ3_S: ggml does not advance its qs position past an all-zero group of 32
         * (dq_iq3.c), so a lone spike after zero groups decodes wrongly, in ggml too
         * (same bytes: test_vectors and the scratch comparison) */
        if (prod_types[k] != DT_IQ3_S)
            ck_assert_msg(y[700] > 500.0f, "%s: spike %g", dtype_name(prod_types[k]), y[700]);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * SIMD twins: same bytes as the scalar reference, whatever the data.
 */
START_TEST(test_twins)
{
    enum { N = 256 * 128 };
    static float x[N], qw[N];
    static uint8_t a[N * 2], b[N * 2];
    int n_twins = 0, n_twins_w = 0;

    /* adversarial blocks, and sub-blocks of different kinds side by side in one block
     * (the K-quant twins run eight sub-blocks in the lanes of one vector) */
    for (int i = 0; i < N; i++) {
        int blk = i / 256, sub = i / 16;
        float v = frand();
        switch (blk % 14) {
        case 0: x[i] = v; break;
        case 1: x[i] = v * 1e-38f; break;                  /* id overflows to Inf */
        case 2: x[i] = v * 3e38f; break;                   /* near FLT_MAX */
        case 3: x[i] = i % 37 == 0 ? NAN : v; break;
        case 4: x[i] = i % 41 == 0 ? (i % 2 ? INFINITY : -INFINITY) : v; break;
        case 5: x[i] = i % 3 == 1 ? -0.0f : 0.0f; break;   /* zeros of both signs */
        case 6: x[i] = (float)((int)(v * 8)) * 0.5f; break; /* exact halves: rounding ties */
        case 7: x[i] = i % 256 == 77 ? 3e37f : v; break;   /* one huge value */
        case 8: x[i] = v * 1e-40f; break;                  /* denormals */
        case 9: x[i] = 0.3f; break;                        /* constant */
        case 10: x[i] = 1.0f + v * 1e-7f; break;           /* nearly constant, all > 0 */
        case 11: x[i] = -fabsf(v) - 0.5f; break;           /* all negative */
        case 12:                                           /* one kind per sub-block */
            switch (sub % 5) {
            case 0: x[i] = -0.25f; break;
            case 1: x[i] = 0.0f; break;
            case 2: x[i] = v; break;
            case 3: x[i] = i % 16 == 5 ? NAN : v; break;
            default: x[i] = v * 1e-20f; break;
            }
            break;
        default: x[i] = i % 5 == 2 ? (i % 2 ? -0.0f : 0.0f) : fabsf(v) * (float)(1 << (i % 20));
            break;                                         /* min +-0 among positives */
        }
        /* importance weights: random, some zero, one block all zero */
        qw[i] = blk % 14 == 13 && blk % 28 == 13 ? 0.0f : i % 7 == 0 ? 0.0f : 1.0f + frand();
    }
    for (size_t k = 0; k < N_PROD; k++) {
        const struct dq_traits *tr = dq_get(prod_types[k]);
        uint64_t nb;
        struct err e = ERR_INIT;
        ck_assert_int_eq(dtype_nbytes(prod_types[k], N, &nb, &e), 0);
        if (tr->quantize != tr->quantize_ref) {
            memset(a, 0x11, sizeof a);
            memset(b, 0x22, sizeof b);
            tr->quantize_ref(x, a, N);
            tr->quantize(x, b, N);
            for (uint64_t j = 0; j < nb; j++)
                ck_assert_msg(a[j] == b[j], "%s: byte %llu: scalar %02x, SIMD %02x",
                              dtype_name(prod_types[k]), (unsigned long long)j, a[j], b[j]);
            n_twins++;
        }
        if (tr->quantize_w != tr->quantize_w_ref) {
            memset(a, 0x11, sizeof a);
            memset(b, 0x22, sizeof b);
            tr->quantize_w_ref(x, a, N, qw);
            tr->quantize_w(x, b, N, qw);
            for (uint64_t j = 0; j < nb; j++)
                ck_assert_msg(a[j] == b[j], "%s weighted: byte %llu: scalar %02x, SIMD %02x",
                              dtype_name(prod_types[k]), (unsigned long long)j, a[j], b[j]);
            n_twins_w++;
            /* rows of blocks of 32 go eight blocks at a time: a row with a tail of 5 */
            if (tr->blck == 32) {
                int64_t n2 = N - 96;
                uint64_t nb2;
                ck_assert_int_eq(dtype_nbytes(prod_types[k], n2, &nb2, &e), 0);
                memset(a, 0x11, sizeof a);
                memset(b, 0x11, sizeof b);
                tr->quantize_w_ref(x + 32, a, n2, qw + 32);
                tr->quantize_w(x + 32, b, n2, qw + 32);
                ck_assert_msg(memcmp(a, b, sizeof a) == 0,
                              "%s weighted, row with a tail: differs in its %llu bytes",
                              dtype_name(prod_types[k]), (unsigned long long)nb2);
            }
        }
    }
    /* the CPU this runs on has AVX2 (x86-64 CI) unless APR_DQ_SCALAR is set */
    if (!getenv("APR_DQ_SCALAR") && dq_get(DT_Q8_0)->to_f32 != dq_get(DT_Q8_0)->to_f32_ref) {
        ck_assert_int_ge(n_twins, 4);                  /* Q8_0, Q4_K, Q5_K, Q6_K at least */
        ck_assert_int_ge(n_twins_w, 3);                /* Q4_K, Q5_K, Q6_K at least */
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Test vectors for the types the fixtures do not hold.  The input is that of
 * reference/gguf-quant.md 4.7 (32 rows of 256; its SHA-256 is checked).  The expected
 * SHA-256 values were computed with ggml's own quantize_* functions (no imatrix) from
 * llama.cpp c392e509 (the fixtures' commit), ggml-quants.c compiled with gcc 12 -O2
 * -ffp-contract=off in a scratch directory outside this repository.
 */
START_TEST(test_vectors)
{
    static const struct { int dt; size_t bytes; const char *sha; } v[] = {
        { DT_Q2_K, 2688, "50a25fb3bf5e78609529f0690aea73582fbdd7b0fec7825e7abbfe39089ea68f" },
        { DT_Q3_K, 3520, "59c2bca707f9049edec9fbe76788adb5fe744a29f3e1856203cffe060f875e2b" },
        { DT_Q5_K, 5632, "21462091d9ac5d2d39def2ce3cfe9e9e10a96e0aca385f1a4a084b11e3ea3cfd" },
        { DT_Q4_1, 5120, "e5db6660ff653472fc602bbbe66641be94953c65bdc0e812637cb3c740f0e8aa" },
        { DT_Q5_0, 5632, "9b588e35dc58bf7a760854b0536839afb89d091780ac4563d5c672da60145286" },
        { DT_Q5_1, 6144, "f12648c82b217544b237b0fa736f5513b9c69d05c498171f508a14625147e285" },
        { DT_IQ4_NL, 4608, "e08807586b3ea0d87404f866b790658152e5621f7ad6ea406b3faa793f2baccf" },
        { DT_IQ4_XS, 4352, "b21e0510c9ad725576602144601918971204557d554f6ecdd26cbaaed7d5ac1a" },
        { DT_TQ1_0, 1728, "c3a3b62e903eb6e87181e395026ea5c7d6dec40fa90ce0fd0563bcc561858d64" },
        { DT_TQ2_0, 2112, "2f4f09a3bc2fc8e7cd40d9daca969d1ff7ec4c4e3b060dc5d313b89dd9f353cc" },
        { DT_IQ3_XXS, 3136, "6cb9df13a1b2782af1f92ef40fab83b8f053f3f23677b68f330cd37c023a9916" },
        { DT_IQ3_S, 3520, "d04157d30c34bac5f5937f9a13fc90e551a4183469937655e626d8cc1d6ec93f" },
    };
    static const float mul[4] = { 1.0f, 0.001f, 37.5f, 1e-6f };
    static float x[8192];
    static uint8_t q[8192];
    struct err e = ERR_INIT;
    char hex[65];
    uint32_t st = 0x12345678;

    for (int i = 0; i < 8192; i++) {
        st ^= st << 13;
        st ^= st >> 17;
        st ^= st << 5;
        x[i] = ((float)(st >> 8) * (1.0f / 16777216) * 2.0f - 1.0f) * mul[(i / 256) % 4];
    }
    memset(x + 7 * 256, 0, 256 * sizeof *x);
    x[13 * 256 + 5] = 1000;
    tu_sha_hex(x, sizeof x, hex);
    ck_assert_str_eq(hex, "d0a8a14ea09a41d62b643c9160fbb02ca7da59265a978394ee9aeb83d45823bf");
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        uint64_t nb;
        ck_assert_int_eq(dtype_nbytes(v[k].dt, 8192, &nb, &e), 0);
        ck_assert_uint_eq(nb, v[k].bytes);
        ck_assert_int_eq(dq_quantize(v[k].dt, x, q, 32, 256, &e), 0);
        tu_sha_hex(q, (size_t)nb, hex);
        ck_assert_msg(strcmp(hex, v[k].sha) == 0, "%s: sha %s, want %s", dtype_name(v[k].dt),
                      hex, v[k].sha);
    }
}
END_TEST

Suite *quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fixtures);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_special);
    tcase_add_test(tc, test_vectors);
    tcase_add_test(tc, test_twins);
    suite_add_tcase(s, tc);
    return s;
}
