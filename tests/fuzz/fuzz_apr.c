/*
 * fuzz_apr.c - libFuzzer harness for the APR v2 reader and the APRT reader.
 *
 * The header CRC would stop almost every mutation at byte 40, so the main pass opens
 * with skip_header_crc (a fuzzing-only option) and lets mutated headers reach the
 * offset checks, the JSON metadata and the tensor index.  A second pass runs the
 * reader as users get it.  After a successful open every tensor byte is read, so an
 * out-of-range data pointer shows up under ASan.
 *
 *   seeds: tests/fuzz/corpus/apr/ (the worked example of apr.md 2.9, a multi-dtype file
 *   with rich metadata, legacy magic/codes, APRT dumps)
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../formats/apr/apr.h"
#include "../../formats/apr/aprt.h"
#include "../../common/banned.h"

static volatile uint32_t sink;

static void touch(const struct model *m)
{
    uint32_t h = 0;

    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[i];
        if (t->size) {
            h += t->data[0];
            h += t->data[t->size - 1];
        }
        h += (uint32_t)t->name.n + (t->name.n ? (uint8_t)t->name.p[t->name.n - 1] : 0);
    }
    for (uint64_t i = 0; i < m->n_kv; i++)
        h += (uint32_t)m->kv[i].key.n + (uint32_t)m->kv[i].val.type;
    sink = h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct apr_read_opts deep = { 0, 1, 0 };
    struct model m;
    struct aprt d;
    struct err e = ERR_INIT;

    if (apr_open_mem_opts(&m, data, size, "fuzz.apr", &deep, &e) == 0) {
        touch(&m);
        model_close(&m);
    }
    err_clear(&e);
    if (apr_open_mem(&m, data, size, "fuzz.apr", &e) == 0) {
        touch(&m);
        model_close(&m);
    }
    err_clear(&e);
    if (aprt_open_mem(&d, data, size, "fuzz.bin", &e) == 0) {
        if (d.count) {
            float f = aprt_get(&d, d.count - 1);
            uint32_t u;
            memcpy(&u, &f, sizeof u);   /* not a float->int conversion: NaN would be UB */
            sink = u;
        }
        aprt_close(&d);
    }
    return 0;
}
