/*
 * fuzz_gguf.c - libFuzzer harness for the GGUF reader: any input must give a model
 * or a clean error, never a crash, leak or out-of-bounds read.  Built and run by
 * tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <stddef.h>
#include <stdint.h>

#include "../../formats/gguf/gguf.h"
#include "../../common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct model m;
    struct err e = ERR_INIT;

    if (gguf_open_mem(&m, d, n, "fuzz.gguf", &e) == 0) {
        /* touch what the reader promised: every tensor's bytes lie inside the input */
        volatile uint8_t sink = 0;
        for (uint64_t i = 0; i < m.n_tensors; i++)
            if (m.tensors[i].size)
                sink ^= m.tensors[i].data[0] ^ m.tensors[i].data[m.tensors[i].size - 1];
        (void)sink;
        model_close(&m);
    }
    return 0;
}
