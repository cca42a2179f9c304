/*
 * verify.c - --verify: re-read the staged output and compare it with the source.
 */
#include "convert_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "../common/json.h"
#include "../common/path.h"
#include "../common/rd.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../formats/model_json.h"
#include "../common/banned.h"

/* ---- verify: re-read the staged output and compare with the source */

/* Relative RMS error allowed for a conversion to dt (quantization noise). */
static double tolerance(int dt)
{
    switch (dt) {
    case DT_F32: return 0;
    case DT_F16: return 1e-3;
    case DT_BF16: return 8e-3;
    case DT_Q8_0: return 1.5e-2;
    case DT_Q6_K: return 3e-2;
    case DT_Q5_K: case DT_Q5_0: case DT_Q5_1: return 7e-2;
    default: return 0.15;
    }
}

static int verify_tensor(struct cv *c, const struct tplan *p, const struct model_tensor *o,
                         struct err *e)
{
    const struct model_tensor *t = p->src;

    if (o->n_dims != t->n_dims || memcmp(o->shape, t->shape, sizeof o->shape) != 0 ||
        o->dtype != p->dtype)
        return ERR(e, ERR_MISMATCH, "dtype or shape differs");
    if (!p->converted) {
        /* bytes: each output row against its source row (permutation included) */
        int64_t rows = p->perm ? t->shape[0] : 1;
        size_t rb = (size_t)(t->size / (uint64_t)rows);
        for (int64_t r = 0; r < rows; r++) {
            if (memcmp(o->data + (size_t)r * rb, t->data + (size_t)cv_src_row(p, r) * rb, rb) != 0)
                return ERR(e, ERR_MISMATCH, "row %lld differs from the source", (long long)r);
        }
        cv_drop_pages(t->data, t->size);
        cv_drop_pages(o->data, o->size);
        return 0;
    }
    {
        /* values: dequantize both, row batch by row batch */
        int64_t rows = t->n_dims >= 1 && p->perm ? t->shape[0] : 1, row_elems, batch;
        size_t srb, orb;
        double se = 0, ss = 0;
        float *a = NULL, *b = NULL;
        int rc = 0;
        if (t->n_dims >= 2)
            rows = t->shape[0];
        row_elems = t->n_elems / rows;
        srb = (size_t)(t->size / (uint64_t)rows);
        orb = (size_t)(o->size / (uint64_t)rows);
        batch = CONV_ELEMS / (row_elems ? row_elems : 1);
        if (batch < 1)
            batch = 1;
        if (batch > rows)
            batch = rows;
        a = malloc((size_t)(batch * row_elems) * sizeof *a + 4);
        b = malloc((size_t)(batch * row_elems) * sizeof *b + 4);
        if (!a || !b)
            rc = ERR(e, ERR_NOMEM, "out of memory");
        for (int64_t r = 0; rc == 0 && r < rows; r += batch) {
            int64_t n = rows - r < batch ? rows - r : batch, ne = n * row_elems;
            const uint8_t *g = cv_gather(c, p, r, n, srb, e);
            if (!g || dq_to_f32(t->dtype, g, (uint64_t)n * srb, a, ne, c->n_threads, e) ||
                dq_to_f32(o->dtype, o->data + (size_t)r * orb, (uint64_t)n * orb, b, ne,
                          c->n_threads, e)) {
                rc = -1;
                break;
            }
            for (int64_t i = 0; i < ne; i++) {
                if ((p->widened || p->narrowed) && memcmp(&a[i], &b[i], 4) != 0 &&
                    !(isnan(a[i]) && isnan(b[i]))) {
                    rc = ERR(e, ERR_MISMATCH, "element %lld: %g %s to %g",
                             (long long)(r * row_elems + i), (double)a[i],
                             p->narrowed ? "narrowed" : "widened", (double)b[i]);
                    break;
                }
                if (isfinite(a[i]) && isfinite(b[i])) {
                    se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
                    ss += (double)a[i] * a[i];
                }
            }
        }
        free(a);
        free(b);
        cv_drop_pages(t->data, t->size);
        cv_drop_pages(o->data, o->size);
        if (rc)
            return -1;
        if (ss > 0 && sqrt(se / ss) > tolerance(p->dtype))
            return ERR(e, ERR_MISMATCH, "relative RMS error %.3g over the %s tolerance %.3g",
                       sqrt(se / ss), dtype_name(p->dtype), tolerance(p->dtype));
        return 0;
    }
}

int cv_verify(struct cv *c, const char *path, struct err *e)
{
    struct model m;
    int rc = 0;

    if (model_open(&m, path, e) || apr_check_integrity(&m, e)) {
        model_close(&m);
        err_prefix(e, "verify");
        return -1;
    }
    for (uint64_t i = 0; rc == 0 && i < c->n_tp; i++) {
        const struct model_tensor *o = model_tensor_find(&m, c->tp[i].name);
        if (!o)
            rc = ERR(e, ERR_MISMATCH, "verify: tensor '%s' is missing from the output",
                     c->tp[i].name);
        else if (verify_tensor(c, &c->tp[i], o, e)) {
            err_prefix(e, "verify: tensor '%s'", c->tp[i].name);
            rc = -1;
        }
    }
    if (rc == 0 && m.n_tensors != c->n_tp)
        rc = ERR(e, ERR_MISMATCH, "verify: output has %llu tensors, expected %llu",
                 (unsigned long long)m.n_tensors, (unsigned long long)c->n_tp);
    model_close(&m);
    if (rc == 0)
        c->verified = 1;
    return rc;
}
