/*
 * fuzz_st.c - libFuzzer harness for the SafeTensors reader (st_open_mem).
 *
 * libFuzzer's buffer is exactly `size` bytes, so ASan reports any read past it.
 * After a successful open every tensor's first and last byte, every name and every
 * metadata string is read, so an out-of-range slice or data pointer shows up too;
 * the tiling rule (ranges cover the data exactly) is re-checked independently.
 *
 *   seeds: tests/fuzz/corpus/st/ (small valid files: metadata, several dtypes,
 *   unaligned data, zero-size and scalar tensors, escaped names)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../formats/safetensors/st.h"
#include "../../common/banned.h"

static volatile uint32_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct model m;
    struct err e = ERR_INIT;
    uint32_t h = 0;
    uint64_t covered = 0;

    if (st_open_mem(&m, data, size, "fuzz.safetensors", &e) != 0) {
        if (e.code == ERR_OK || !e.msg[0] || m.tensors || m.kv || m.path)
            abort();   /* a failure must say why and leave m zeroed */
        return 0;
    }
    for (uint64_t i = 0; i < m.n_tensors; i++) {
        const struct model_tensor *t = &m.tensors[i];
        if (t->off < m.data_off || t->size > size - t->off)
            abort();
        if (t->size) {
            h += t->data[0];
            h += t->data[t->size - 1];
        }
        for (size_t k = 0; k < t->name.n; k++)
            h += (uint8_t)t->name.p[k];
        covered += t->size;
    }
    if (m.data_off + covered != size)
        abort();   /* the tensors tile the data section */
    for (uint64_t i = 0; i < m.n_kv; i++) {
        const struct model_kv *kv = &m.kv[i];
        for (size_t k = 0; k < kv->key.n; k++)
            h += (uint8_t)kv->key.p[k];
        if (kv->val.type == MV_STR)
            for (size_t k = 0; k < kv->val.v.s.n; k++)
                h += (uint8_t)kv->val.v.s.p[k];
    }
    sink = h;
    model_close(&m);
    return 0;
}
