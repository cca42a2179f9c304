/*
 * convert.h - apr-convert's work: read any model (GGUF, SafeTensors file/dir/index,
 * APR), map names, layout, dtypes and metadata, and write GGUF, SafeTensors or APR.
 *
 *   read (model_open) -> plan (names, Q/K permutation, dtype per tensor, metadata)
 *   -> stage beside the target (.apr-convert.tmp.XXXXXX/) -> write, streaming tensor by
 *   tensor from the source mapping -> optional --verify of the staged output
 *   -> rename into place.
 *
 * The rules (names, widening, extension dtype codes, provenance keys) are documented
 * in convert.c and man/apr.5; the metadata rules (the typed namespace "apr_tools.kv",
 * aprender's fields) live in formats/meta.h.
 */
#ifndef CONVERT_H
#define CONVERT_H

#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"

/* Converter name and version recorded in APR output ("converter"). */
#define CONVERT_NAME "apr-convert"

struct convert_opts {
    const char *to;          /* "apr", "gguf", "safetensors"; NULL: from the output name */
    const char *names;       /* "hf", "gguf"; NULL: the target format's convention */
    const char *dtype;       /* NULL or "keep", or a name of quant_mix.h's table */
    int         lossless;    /* APR: keep ggml types without an APR code byte-exact */
    int         force;       /* replace an existing output */
    int         dry_run;     /* print the plan, write nothing */
    int         verify;      /* re-read the output and compare with the source */
    int         json;        /* the report as JSON */
    int         quiet;       /* no notes (widenings, fallbacks) on stderr */
    int         verbose;     /* the report on success (always with json or dry_run) */
    int         progress;    /* progress bar on stderr (only drawn on a terminal) */
    int         timestamp;   /* record created_at (SOURCE_DATE_EPOCH or now) */
    int         n_threads;   /* for dtype conversion; 0 = all cores */
    uint64_t    shard_bytes; /* SafeTensors directory output: max shard size (0 = 5 GB) */
    FILE       *out;         /* report (stdout) */
    FILE       *diag;        /* notes: widened tensors, fallbacks (stderr); may be NULL */
    volatile int *cancel;    /* set non-zero (by a signal handler) to stop: cleaned up */
    int         pure;        /* --dtype: one type for every weight (llama-quantize --pure) */
    int         requantize;  /* allow quantizing tensors that are already quantized */
    int         salvage;     /* an APR source whose CRCs fail is a note, not an error */
    uint64_t    split_bytes; /* GGUF output: a llama.cpp split set whose parts hold at most
                                this many tensor data bytes (0: one file) */
    const char *imatrix;     /* --dtype: llama.cpp importance matrix file (imatrix.h), or NULL */
};

#define CONVERT_OPTS_INIT { NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, \
                           0, 0, 0, 0, NULL }

/*
 * Convert in to out.  Returns 0, or -1 with e set (ERR_USAGE for bad options, which
 * the CLI maps to exit 2).  Never leaves a partial output: the result appears under
 * its name only when complete (and verified, with o->verify).
 */
int convert_run(const struct convert_opts *o, const char *in, const char *out, struct err *e);

/* The extension dtype code of a ggml type stored byte-exact in APR (--lossless), or -1. */
int convert_apr_ext_code(int dtype);

#endif
