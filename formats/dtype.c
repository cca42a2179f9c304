/*
 * dtype.c - the table behind dtype.h.  Block sizes and byte counts are ggml's
 * type_traits (reference/gguf-quant.md 3.1), SafeTensors' dtype list (5.2) and
 * aprender's TensorDType (reference/apr.md 2.5).
 */
#include "dtype.h"

#include <string.h>
#include <strings.h>

#include "../common/sz.h"
#include "../common/banned.h"

#define G(id_, nm, st, apr, b, s, k) [id_] = { nm, st, id_, apr, b, s, k }
#define X(id_, nm, st, apr, b, s, k) [id_] = { nm, st, -1, apr, b, s, k }

static const struct dtype_info table[DT_COUNT] = {
    G(DT_F32,     "F32",     "F32",  0,   1,   4,   DTK_FLOAT),
    G(DT_F16,     "F16",     "F16",  1,   1,   2,   DTK_FLOAT),
    G(DT_Q4_0,    "Q4_0",    NULL,  -1,  32,  18,   DTK_QUANT),
    G(DT_Q4_1,    "Q4_1",    NULL,  -1,  32,  20,   DTK_QUANT),
    G(DT_Q5_0,    "Q5_0",    NULL,  -1,  32,  22,   DTK_QUANT),
    G(DT_Q5_1,    "Q5_1",    NULL,  -1,  32,  24,   DTK_QUANT),
    G(DT_Q8_0,    "Q8_0",    NULL,  -1,  32,  34,   DTK_QUANT),
    G(DT_Q8_1,    "Q8_1",    NULL,  -1,  32,  36,   DTK_QUANT),
    G(DT_Q2_K,    "Q2_K",    NULL,  -1, 256,  84,   DTK_QUANT),
    G(DT_Q3_K,    "Q3_K",    NULL,  -1, 256, 110,   DTK_QUANT),
    G(DT_Q4_K,    "Q4_K",    NULL,  12, 256, 144,   DTK_QUANT),
    G(DT_Q5_K,    "Q5_K",    NULL,  -1, 256, 176,   DTK_QUANT),
    G(DT_Q6_K,    "Q6_K",    NULL,  14, 256, 210,   DTK_QUANT),
    G(DT_Q8_K,    "Q8_K",    NULL,  -1, 256, 292,   DTK_QUANT),
    G(DT_IQ2_XXS, "IQ2_XXS", NULL,  -1, 256,  66,   DTK_QUANT),
    G(DT_IQ2_XS,  "IQ2_XS",  NULL,  -1, 256,  74,   DTK_QUANT),
    G(DT_IQ3_XXS, "IQ3_XXS", NULL,  -1, 256,  98,   DTK_QUANT),
    G(DT_IQ1_S,   "IQ1_S",   NULL,  -1, 256,  50,   DTK_QUANT),
    G(DT_IQ4_NL,  "IQ4_NL",  NULL,  -1,  32,  18,   DTK_QUANT),
    G(DT_IQ3_S,   "IQ3_S",   NULL,  -1, 256, 110,   DTK_QUANT),
    G(DT_IQ2_S,   "IQ2_S",   NULL,  -1, 256,  82,   DTK_QUANT),
    G(DT_IQ4_XS,  "IQ4_XS",  NULL,  -1, 256, 136,   DTK_QUANT),
    G(DT_I8,      "I8",      "I8",   6,   1,   1,   DTK_INT),
    G(DT_I16,     "I16",     "I16", -1,   1,   2,   DTK_INT),
    G(DT_I32,     "I32",     "I32",  4,   1,   4,   DTK_INT),
    G(DT_I64,     "I64",     "I64",  5,   1,   8,   DTK_INT),
    G(DT_F64,     "F64",     "F64",  3,   1,   8,   DTK_FLOAT),
    G(DT_IQ1_M,   "IQ1_M",   NULL,  -1, 256,  56,   DTK_QUANT),
    G(DT_BF16,    "BF16",    "BF16", 30,  1,   2,   DTK_FLOAT),
    G(DT_TQ1_0,   "TQ1_0",   NULL,  -1, 256,  54,   DTK_QUANT),
    G(DT_TQ2_0,   "TQ2_0",   NULL,  -1, 256,  66,   DTK_QUANT),
    G(DT_MXFP4,   "MXFP4",   NULL,  -1,  32,  17,   DTK_QUANT),
    G(DT_NVFP4,   "NVFP4",   NULL,  -1,  64,  36,   DTK_QUANT),
    G(DT_Q1_0,    "Q1_0",    NULL,  -1, 128,  18,   DTK_QUANT),
    G(DT_Q2_0,    "Q2_0",    NULL,  -1,  64,  18,   DTK_QUANT),

    X(DT_BOOL,        "BOOL",        "BOOL",        -1, 1, 1, DTK_INT),
    X(DT_U8,          "U8",          "U8",           7, 1, 1, DTK_INT),
    X(DT_U16,         "U16",         "U16",         -1, 1, 2, DTK_INT),
    X(DT_U32,         "U32",         "U32",         -1, 1, 4, DTK_INT),
    X(DT_U64,         "U64",         "U64",         -1, 1, 8, DTK_INT),
    X(DT_F8_E4M3,     "F8_E4M3",     "F8_E4M3",     -1, 1, 1, DTK_FLOAT),
    X(DT_F8_E5M2,     "F8_E5M2",     "F8_E5M2",     -1, 1, 1, DTK_FLOAT),
    X(DT_F8_E8M0,     "F8_E8M0",     "F8_E8M0",     -1, 1, 1, DTK_FLOAT),
    X(DT_F8_E4M3FNUZ, "F8_E4M3FNUZ", "F8_E4M3FNUZ", -1, 1, 1, DTK_FLOAT),
    X(DT_F8_E5M2FNUZ, "F8_E5M2FNUZ", "F8_E5M2FNUZ", -1, 1, 1, DTK_FLOAT),
    X(DT_C64,         "C64",         "C64",         -1, 1, 8, DTK_COMPLEX),
    X(DT_F4,          "F4",          "F4",          -1, 2, 1, DTK_FLOAT),
    X(DT_F6_E2M3,     "F6_E2M3",     "F6_E2M3",     -1, 4, 3, DTK_FLOAT),
    X(DT_F6_E3M2,     "F6_E3M2",     "F6_E3M2",     -1, 4, 3, DTK_FLOAT),
    X(DT_APR_Q4,      "APR_Q4",      NULL,         128, 32, 18, DTK_QUANT),
    X(DT_APR_Q8,      "APR_Q8",      NULL,         129, 1, 1, DTK_QUANT),
};

const struct dtype_info *dtype_get(int t)
{
    if (t < 0 || t >= DT_COUNT || table[t].blck == 0)
        return NULL;
    return &table[t];
}

const char *dtype_name(int t)
{
    const struct dtype_info *d = dtype_get(t);
    return d ? d->name : "?";
}

int dtype_from_ggml(uint32_t id)
{
    if (id >= DT_GGML_COUNT || table[id].blck == 0)
        return -1;
    return (int)id;
}

int dtype_from_st(const char *s, size_t n)
{
    for (int t = 0; t < DT_COUNT; t++)
        if (table[t].st_name && strlen(table[t].st_name) == n && memcmp(table[t].st_name, s, n) == 0)
            return t;
    return -1;
}

int dtype_from_apr(uint8_t code)
{
    if (code == 8)
        return DT_APR_Q4;      /* legacy (pre GH-438) codes */
    if (code == 9)
        return DT_APR_Q8;
    for (int t = 0; t < DT_COUNT; t++)
        if (table[t].blck && table[t].apr_code == code)
            return t;
    return -1;
}

int dtype_from_name(const char *s)
{
    for (int t = 0; t < DT_COUNT; t++)
        if (table[t].blck && strcasecmp(table[t].name, s) == 0)
            return t;
    return -1;
}

int dtype_row_ok(int t, int64_t row_len)
{
    const struct dtype_info *d = dtype_get(t);
    if (!d || row_len < 0)
        return 0;
    if (t == DT_APR_Q4 || t == DT_APR_Q8)
        return 1;
    return row_len % d->blck == 0;
}

int dtype_nbytes(int t, int64_t n_elems, uint64_t *nbytes, struct err *e)
{
    const struct dtype_info *d = dtype_get(t);
    uint64_t blocks;

    if (!d)
        return ERR(e, ERR_FORMAT, "unknown dtype id %d", t);
    if (n_elems < 0)
        return ERR(e, ERR_FORMAT, "negative element count");
    if (t == DT_APR_Q8) {            /* f32 scale + one i8 per element */
        if (sz_add((uint64_t)n_elems, 4, nbytes))
            return ERR(e, ERR_FORMAT, "size of %lld APR_Q8 elements overflows", (long long)n_elems);
        return 0;
    }
    if (t == DT_APR_Q4) {            /* last block zero-padded */
        blocks = (uint64_t)n_elems / 32 + ((uint64_t)n_elems % 32 != 0);
    } else {
        if ((uint64_t)n_elems % d->blck)
            return ERR(e, ERR_FORMAT, "%lld elements are not whole %s blocks of %u",
                       (long long)n_elems, d->name, d->blck);
        blocks = (uint64_t)n_elems / d->blck;
    }
    if (sz_mul(blocks, d->type_size, nbytes))
        return ERR(e, ERR_FORMAT, "size of %lld %s elements overflows", (long long)n_elems, d->name);
    return 0;
}
