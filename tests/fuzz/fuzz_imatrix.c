/*
 * fuzz_imatrix.c - libFuzzer harness for convert/imatrix.c (llama.cpp importance
 * matrices, legacy .dat and GGUF): any input gives an imatrix or a clean error, never a
 * crash, leak or out-of-bounds read.  Built and run by tests/fuzz/run.sh, which links
 * the library objects only: the reader (a tool internal) is compiled in here.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../convert/imatrix.c"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct imatrix im;
    struct err e = ERR_INIT;

    if (imatrix_load_mem(&im, d, n, "fuzz.imatrix", &e) == 0) {
        /* touch what the reader promised: n values per entry, names terminated */
        volatile float sink = 0;
        for (size_t i = 0; i < im.n; i++) {
            sink += im.e[i].v[0] + im.e[i].v[im.e[i].n - 1];
            sink += (float)strlen(im.e[i].name);
            (void)imatrix_find(&im, im.e[i].name);
        }
        (void)sink;
        imatrix_free(&im);
    }
    return 0;
}
