/*
 * dtype.h - the one table of tensor element types, across GGUF, SafeTensors and APR.
 *
 * Our ids equal the ggml type ids for 0..42 (so a GGUF type id needs no
 * translation); types that exist only in SafeTensors or APR get ids from 64 up.
 * Removed ggml ids (4, 5, 31-33, 36-38) have no row: dtype_valid() is false for them.
 *
 * Every type is stored in blocks: blck elements take type_size bytes.  Plain types
 * have blck = 1; sub-byte SafeTensors types have blck > 1 (F4: 2 elements per byte,
 * F6: 4 elements per 3 bytes); quantized types have blck 32, 64, 128 or 256.
 * APR_Q8 is special: a 4-byte f32 scale for the whole tensor, then one i8 per element
 * (dtype_nbytes handles it); APR_Q4 pads its last block of 32 with zeros.
 */
#ifndef DTYPE_H
#define DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

enum dtype {
    DT_F32 = 0, DT_F16 = 1, DT_Q4_0 = 2, DT_Q4_1 = 3,
    DT_Q5_0 = 6, DT_Q5_1 = 7, DT_Q8_0 = 8, DT_Q8_1 = 9,
    DT_Q2_K = 10, DT_Q3_K = 11, DT_Q4_K = 12, DT_Q5_K = 13, DT_Q6_K = 14, DT_Q8_K = 15,
    DT_IQ2_XXS = 16, DT_IQ2_XS = 17, DT_IQ3_XXS = 18, DT_IQ1_S = 19, DT_IQ4_NL = 20,
    DT_IQ3_S = 21, DT_IQ2_S = 22, DT_IQ4_XS = 23,
    DT_I8 = 24, DT_I16 = 25, DT_I32 = 26, DT_I64 = 27, DT_F64 = 28, DT_IQ1_M = 29,
    DT_BF16 = 30, DT_TQ1_0 = 34, DT_TQ2_0 = 35, DT_MXFP4 = 39, DT_NVFP4 = 40,
    DT_Q1_0 = 41, DT_Q2_0 = 42,
    DT_GGML_COUNT = 43,         /* ggml ids are < this */
    /* SafeTensors-only */
    DT_BOOL = 64, DT_U8, DT_U16, DT_U32, DT_U64,
    DT_F8_E4M3, DT_F8_E5M2, DT_F8_E8M0, DT_F8_E4M3FNUZ, DT_F8_E5M2FNUZ,
    DT_C64, DT_F4, DT_F6_E2M3, DT_F6_E3M2,
    /* APR-only (aprender native quantization) */
    DT_APR_Q4, DT_APR_Q8,
    DT_COUNT
};

enum dtype_kind {
    DTK_FLOAT = 1,   /* plain IEEE-like float (F32, F16, BF16, F64, F8*, F4, F6) */
    DTK_INT,         /* plain integer or bool */
    DTK_QUANT,       /* block-quantized */
    DTK_COMPLEX,     /* C64 */
};

struct dtype_info {
    const char *name;        /* our canonical spelling: ggml's ("Q4_K", "F16"), else SafeTensors' */
    const char *st_name;     /* SafeTensors dtype string, or NULL when ST cannot hold it */
    int         ggml_id;     /* GGUF type id, or -1 */
    int         apr_code;    /* current aprender dtype byte, or -1 */
    uint32_t    blck;        /* elements per block (0 = no row: invalid id) */
    uint32_t    type_size;   /* bytes per block */
    enum dtype_kind kind;
};

/* The row for t, or NULL when t is not a valid type. */
const struct dtype_info *dtype_get(int t);
static inline int dtype_valid(int t) { return dtype_get(t) != 0; }
const char *dtype_name(int t);                 /* "?" for invalid */

/* Lookups by each format's spelling; -1 when unknown. */
int dtype_from_ggml(uint32_t id);             /* removed or out-of-range ids -> -1 */
int dtype_from_st(const char *s, size_t n);    /* exact SafeTensors strings */
int dtype_from_apr(uint8_t code);             /* current and legacy codes (8->APR_Q4, 9->APR_Q8) */
int dtype_from_name(const char *s);           /* our names, case-insensitive ("q4_k", "BF16") */

/*
 * Bytes for n_elems elements of type t.  -1 with ERR_FORMAT when n_elems is not a
 * multiple of the block (except APR_Q4, which pads) or on overflow.
 */
int dtype_nbytes(int t, int64_t n_elems, uint64_t *nbytes, struct err *e);

/* 1 when rows of row_len elements are whole blocks (GGUF's ne[0] % blck rule). */
int dtype_row_ok(int t, int64_t row_len);

#endif
