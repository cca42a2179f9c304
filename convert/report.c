/*
 * report.c - the report (text, dry-run plan, JSON).
 */
#include "convert_impl.h"
#include "../common/cli.h"

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

/* ---- report */

static void shape_str(const struct model_tensor *t, char *b, size_t cap)
{
    size_t o = (size_t)snprintf(b, cap, "[");
    for (int k = 0; k < t->n_dims && o < cap; k++)
        o += (size_t)snprintf(b + o, cap - o, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
    if (o < cap)
        snprintf(b + o, cap - o, "]");
}

void cv_report(struct cv *c, int wrote)
{
    FILE *f = c->o->out;
    uint64_t bytes = 0;

    /* Quiet on success: the report only when asked for (-v, --json) or planning. */
    if (!f || !(c->o->verbose || c->o->json || c->o->dry_run))
        return;
    for (uint64_t i = 0; i < c->n_tp; i++)
        bytes += c->out_m.tensors ? c->out_m.tensors[i].size : 0;
    if (c->o->json) {
        struct sbuf b = SBUF_INIT(SIZE_MAX / 2);
        struct json_w w;
        json_w_init(&w, &b, 1);
        json_w_obj(&w);
        json_w_key(&w, "input");
        json_w_str(&w, c->in);
        json_w_key(&w, "input_format");
        json_w_str(&w, model_format_name(c->src.format));
        json_w_key(&w, "output");
        json_w_str(&w, c->out);
        json_w_key(&w, "output_format");
        json_w_str(&w, cv_tgt_name(c->tgt));
        json_w_key(&w, "dry_run");
        json_w_bool(&w, c->o->dry_run);
        json_w_key(&w, "written");
        json_w_bool(&w, wrote);
        json_w_key(&w, "verified");
        json_w_bool(&w, c->verified);
        if (c->sha_hex[0]) {
            json_w_key(&w, "source_sha256");
            json_w_str(&w, c->sha_hex);
        }
        json_w_key(&w, "tensor_count");
        json_w_u64(&w, c->n_tp);
        json_w_key(&w, "data_bytes");
        json_w_u64(&w, bytes);
        json_w_key(&w, "widened");
        json_w_u64(&w, c->n_widened);
        json_w_key(&w, "narrowed");
        json_w_u64(&w, c->n_narrowed);
        json_w_key(&w, "tensors");
        json_w_arr(&w);
        for (uint64_t i = 0; i < c->n_tp; i++) {
            const struct tplan *p = &c->tp[i];
            json_w_obj(&w);
            json_w_key(&w, "name");
            json_w_str(&w, p->name);
            json_w_key(&w, "source_name");
            json_w_str_n(&w, p->src->name.p, p->src->name.n);
            json_w_key(&w, "source_dtype");
            json_w_str(&w, dtype_name(p->src->dtype));
            json_w_key(&w, "dtype");
            json_w_str(&w, dtype_name(p->dtype));
            json_w_key(&w, "shape");
            json_w_arr(&w);
            for (int k = 0; k < p->src->n_dims; k++)
                json_w_u64(&w, (uint64_t)p->src->shape[k]);
            json_w_arr_end(&w);
            json_w_key(&w, "action");
            json_w_str(&w, p->widened ? "widen" : p->narrowed ? "narrow"
                           : p->converted ? "convert" : p->perm ? "permute" : "copy");
            if (p->perm) {
                json_w_key(&w, "permutation");
                json_w_str(&w, p->perm == 1 ? "hf-to-gguf" : "gguf-to-hf");
            }
            if (p->note[0]) {
                json_w_key(&w, "note");
                json_w_str(&w, p->note);
            }
            json_w_obj_end(&w);
        }
        json_w_arr_end(&w);
        json_w_obj_end(&w);
        sbuf_addc(&b, '\n');
        if (b.p)
            fwrite(b.p, 1, b.len, f);
        sbuf_release(&b);
        return;
    }
    fprintf(f, "%s (%s) -> %s (%s)%s\n", c->in, model_format_name(c->src.format), c->out,
            cv_tgt_name(c->tgt), c->o->dry_run ? " [dry run: nothing written]" : "");
    if (c->o->dry_run)
        for (uint64_t i = 0; i < c->n_tp; i++) {
            const struct tplan *p = &c->tp[i];
            char sh[128];
            shape_str(p->src, sh, sizeof sh);
            fprintf(f, "  %-44s %-7s -> %-7s %-16s %s", p->name, dtype_name(p->src->dtype),
                    dtype_name(p->dtype), sh, p->perm ? "permuted " : "");
            if (!slice_eq_cstr(p->src->name, p->name)) {   /* renamed: name its source */
                fputs("from ", f);
                cli_put_escaped(f, p->src->name.p, p->src->name.n);
                if (p->note[0])
                    fputc(' ', f);
            }
            fprintf(f, "%s\n", p->note);
        }
    fprintf(f, "%llu tensors, %llu data bytes, %llu widened", (unsigned long long)c->n_tp,
            (unsigned long long)bytes, (unsigned long long)c->n_widened);
    if (c->n_narrowed)
        fprintf(f, ", %llu narrowed", (unsigned long long)c->n_narrowed);
    fprintf(f, "%s\n", c->verified ? ", verified" : "");
}
