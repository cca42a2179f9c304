/*
 * convert.c - apr-convert: GGUF, SafeTensors and APR, each into the others.
 *
 * Pipeline (one function per step, all driven by convert_run):
 *
 *   model_open(in)                      the one model view; format detected by content
 *   meta_from_model()                   the source metadata as GGUF-style typed keys
 *                                       (+ hf.config.*, safetensors.metadata.*), the
 *                                       "canonical list" (formats/meta.h); from APR:
 *                                       restored exactly from the apr_tools.kv namespace
 *                                       when present, else synthesized from aprender's keys
 *   plan_tensors()                      per tensor: target name, Q/K permutation,
 *                                       target dtype and why (widened, converted)
 *   meta_gguf() / meta_st() / meta_apr() the target's metadata from the canonical list
 *   write (gguf_write/st_write/apr_write with a tensor_data producer) into a staging
 *   directory .apr-convert.tmp.XXXXXX beside the target; --verify re-reads the staged
 *   output; then rename into place and remove the staging directory.
 *
 * Names.  GGUF output uses llama.cpp's names, SafeTensors output Hugging Face names,
 * APR output aprender's convention (names_apr_style: GGUF names for the llama family,
 * HF names for qwen2/qwen3); --names overrides for APR.  Moving a llama-family q/k
 * projection between the GGUF and the HF spelling applies or undoes llama.cpp's row
 * permutation (whole rows move: lossless for quantized rows too).
 *
 * Data.  Bytes are copied unchanged whenever the target holds the type.  Otherwise:
 *   APR    (codes for F32 F16 BF16 Q4_K Q6_K + ints): other ggml types are widened to
 *          F32 (exact dequantization, like aprender's own importer), each one reported;
 *          --lossless stores them byte-exact under extension codes 0xC0 + ggml type id
 *          (convert_apr_ext_code) in a file marked so that neither aprender nor
 *          realizar can misread it (see man/apr.5 "Conversion"):
 *            - the codes are outside aprender's table (it fails with "invalid dtype")
 *              and outside realizar's ggml table (which would read unknown codes as F32);
 *            - the header flag ENCRYPTED (0x0004) is set, which realizar refuses;
 *            - the metadata key "apr_tools.dtype_ext" = "ggml+192" tells our reader
 *              (apr_read.c) that the flag means "extension codes", not encryption.
 *   SafeTensors: quantized types are widened to F32.
 *   GGUF   APR-native Q4/Q8 and SafeTensors-only floats (F8, F64...) become F32, and
 *          so do F16/BF16 tensors of one dimension and every "*_norm.weight"
 *          (llama.cpp's CPU backend multiplies by norm weights only in F32; its own
 *          converter makes the same choice).  Each such tensor is listed in the GGUF key
 *          "apr_tools.narrowed" (ARRAY[STRING] of "<gguf name>=<F16|BF16>", written
 *          last); converting that GGUF to SafeTensors or APR (--dtype keep) narrows the
 *          listed F32 tensors back when every element survives F32 -> type -> F32 bit for
 *          bit (else they stay F32, with a note), so HF -> GGUF -> HF is byte-identical.
 * --dtype converts the 2-D+ weights (1-D tensors, i.e. norms and biases, stay float as
 * llama.cpp keeps them; integer tensors are never touched); block types need rows that
 * are whole blocks, else the tensor falls back (K-quants -> Q8_0, else F16) and the plan
 * says so.  Embeddings and the output head are converted like other weights.
 *
 * Metadata.  APR output carries aprender's typed fields and custom keys (apr.md 3-4),
 * the provenance keys source_file, source_sha256 (of the source file; for a directory
 * or an index: of model.safetensors.index.json when present, else of the shards
 * concatenated in name order) and converter, and the namespace "apr_tools.kv": every
 * key of the canonical list with its exact type, as an array of entries
 *   {"k": key, "t": "UINT32"|...|"NULL"|"OBJECT"|"ARRAY", "e": element type (arrays),
 *    "v": value | "ref": another top-level key holding the same array}
 * (OBJECT values and arrays of arrays/objects hold entries without "k"; non-finite
 * floats are the strings "nan", "inf", "-inf").  Reading it back restores every GGUF
 * key (and config.json entry) with its exact type, so GGUF->APR->GGUF and
 * HF->APR->HF keep all metadata.
 *
 * GGUF keys.  A GGUF file's own keys (gguf_origin) are written back as they are.  From
 * any other origin meta_gguf adds what llama.cpp expects, identically on every route
 * (HF->GGUF == HF->APR->GGUF byte for byte): general.name, {arch}.rope.dimension_count
 * (llama family: the head size), bos/eos ids, general.file_type (file_type: llama_ftype
 * of the most common 2-D+ type by elements), and without a tokenizer
 * tokenizer.ggml.model = "none" plus {arch}.vocab_size (llama.cpp refuses a file
 * without the key; "none" gives placeholder tokens; st_write_tokenizer writes no
 * tokenizer.json for it).
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

#include "../common/cli.h"
#include "../common/json.h"
#include "../common/path.h"
#include "../common/rd.h"
#include "../common/sbuf.h"
#include "../common/sz.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../formats/model_json.h"
#include "../common/banned.h"

int convert_apr_ext_code(int dtype)
{
    const struct dtype_info *d = dtype_get(dtype);
    if (!d || d->ggml_id < 0 || d->apr_code >= 0 || d->ggml_id + EXT_BASE > 255)
        return -1;
    return EXT_BASE + d->ggml_id;
}

int cv_cancelled(const struct cv *c, struct err *e)
{
    if (c->o->cancel && *c->o->cancel)
        return ERR(e, ERR_IO, "interrupted");
    return 0;
}

/* A note on diag; it quotes tensor names from the file, so it goes out escaped. */
void cv_note(const struct cv *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (c->o->quiet || !c->o->diag)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fputs(CONVERT_NAME ": ", c->o->diag);
    cli_put_text(c->o->diag, msg, strlen(msg));
    fputc('\n', c->o->diag);
}

/* Arena copy of a C string as a slice (keys of the output view). */
int cv_kstr(struct cv *c, const char *s, struct slice *out, struct err *e)
{
    return model__strdup(&c->out_m, s, strlen(s), out, e);
}

/* ---- the run */

static void cv_release(struct cv *c)
{
    if (c->sha_state == 1) {
        atomic_store(&c->sha_stop, 1);
        pthread_join(c->sha_tid, NULL);
        c->sha_state = 2;
    }
    for (uint32_t i = 0; c->fds && i < c->src.n_files; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    free(c->fds);
    if (c->st_open)
        stream_close(&c->st);
    for (uint64_t i = 0; i < c->out_m.n_kv; i++)
        if (c->kv_own[i])
            model__val_free(&c->out_m.kv[i].val);
    free(c->out_m.kv);
    free(c->kv_own);
    c->out_m.kv = NULL;
    c->out_m.n_kv = 0;
    meta_free(&c->ck);
    model_close(&c->out_m);
    model_close(&c->src);
    free(c->tp);
    free(c->tcrc);
    free(c->tcrc_file);
    free(c->mix_out);
    free(c->mix_qw);
    imatrix_free(&c->im);
    free(c->fbuf);
    free(c->bbuf);
    free(c->bbuf2);
    cv_stage_remove(c);
    free(c->stage_out);
    free(c->tdir);
}

static int target_of(const struct convert_opts *o, const char *out, enum tgt *t, int *dir,
                     struct err *e)
{
    *dir = 0;
    if (o->to) {
        if (strcmp(o->to, "apr") == 0) *t = TGT_APR;
        else if (strcmp(o->to, "gguf") == 0) *t = TGT_GGUF;
        else if (strcmp(o->to, "safetensors") == 0 || strcmp(o->to, "st") == 0) *t = TGT_ST;
        else
            return ERR(e, ERR_USAGE, "--to: '%s' is not apr, gguf or safetensors", o->to);
    } else if (str_ends_with_ci(out, ".apr")) {
        *t = TGT_APR;
    } else if (str_ends_with_ci(out, ".gguf")) {
        *t = TGT_GGUF;
    } else if (str_ends_with_ci(out, ".safetensors") || str_ends_with_ci(out, ".json") ||
               cv_is_dir(out) || out[strlen(out) - 1] == '/') {
        *t = TGT_ST;
    } else {
        return ERR(e, ERR_USAGE, "%s: cannot tell the output format from the name (use .apr, "
                   ".gguf, .safetensors, a directory, or --to)", out);
    }
    if (*t == TGT_ST && !str_ends_with_ci(out, ".safetensors"))
        *dir = 1;
    if (*t != TGT_ST && cv_is_dir(out))
        return ERR(e, ERR_USAGE, "%s: is a directory", out);
    return 0;
}

int cv_exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

int cv_move_into(const char *from_dir, const char *name, const char *to_dir, struct err *e)
{
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    if (rename(a, b) != 0)
        return ERR_SYS(e, "cannot rename '%s' to '%s'", a, b);
    return 0;
}

static int name_cmp_s(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Move every file of the staging directory into dir, the index last. */
int cv_move_all(struct cv *c, const char *dir, struct err *e)
{
    DIR *d = opendir(c->stage);
    struct dirent *de;
    char *names[4096];
    int n = 0, rc = 0, idx = 0;

    if (!d)
        return ERR_SYS(e, "cannot read '%s'", c->stage);
    while ((de = readdir(d)) != NULL && n < 4096)
        if (de->d_name[0] != '.')
            names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, name_cmp_s);
    for (int i = 0; i < n; i++) {
        if (!names[i])
            rc = ERR(e, ERR_NOMEM, "out of memory");
        else if (strcmp(names[i], "model.safetensors.index.json") == 0)
            idx = 1;
        else if (rc == 0)
            rc = cv_move_into(c->stage, names[i], dir, e);
    }
    if (rc == 0 && idx)
        rc = cv_move_into(c->stage, "model.safetensors.index.json", dir, e);
    for (int i = 0; i < n; i++)
        free(names[i]);
    return rc;
}

/* Options: the target format, --names, --dtype, --lossless, input != output. */
static int check_opts(struct cv *c, struct err *e)
{
    const struct convert_opts *o = c->o;
    struct stat si, so;

    if (target_of(o, c->out, &c->tgt, &c->dir_out, e))
        return -1;
    if (o->split_bytes && c->tgt != TGT_GGUF)
        return ERR(e, ERR_USAGE, "--split-max-size: only GGUF output is written as a split set");
    if (o->names && strcmp(o->names, "hf") != 0 && strcmp(o->names, "gguf") != 0)
        return ERR(e, ERR_USAGE, "--names: '%s' is not hf or gguf", o->names);
    if (o->dtype && strcmp(o->dtype, "keep") != 0) {
        /* quant_mix.h: the one table */
        const struct qmix *mx = qmix_find_im(o->dtype, o->imatrix != NULL, e);
        if (!mx)
            return -1;
        if (o->imatrix && !mx->rules)
            return ERR(e, ERR_USAGE, "--imatrix: --dtype %s does not quantize", mx->name);
        c->dtype_req = mx->dtype;
        c->mix = mx->rules ? mx : NULL;
    }
    if (o->imatrix && (!o->dtype || strcmp(o->dtype, "keep") == 0))
        return ERR(e, ERR_USAGE, "--imatrix needs --dtype (a quantized type)");
    if (o->imatrix && imatrix_load(&c->im, o->imatrix, e))
        return -1;
    if (o->lossless && c->tgt != TGT_APR)
        return ERR(e, ERR_USAGE, "--lossless applies to APR output only");
    if (stat(c->in, &si) == 0 && stat(c->out, &so) == 0 && si.st_dev == so.st_dev &&
        si.st_ino == so.st_ino)
        return ERR(e, ERR_USAGE, "%s: input and output are the same file", c->out);
    return 0;
}

/* Open the source and plan everything: metadata, tensors, the output view. */
static int plan_all(struct cv *c, struct err *e)
{
    const struct convert_opts *o = c->o;

    if (model__init(&c->out_m, (enum model_format)(c->tgt == TGT_APR ? MODEL_FMT_APR
                                 : c->tgt == TGT_GGUF ? MODEL_FMT_GGUF : MODEL_FMT_SAFETENSORS),
                    c->out, e))
        return -1;
    if (model_open(&c->src, c->in, e))
        return -1;
    /* A whole-file reader: an APR source must pass its checksums (--salvage: a note). */
    {
        struct err ie = ERR_INIT;
        if (apr_check_integrity(&c->src, &ie)) {
            if (!o->salvage)
                return ERR(e, ie.code, "%s (--salvage converts it anyway)", ie.msg);
            cv_note(c, "warning: %s (--salvage: converting anyway)", ie.msg);
        }
    }
    mfile_advise_seq(&c->src.files[0], 0, c->src.files[0].size);
    /* APR: hash the source alongside everything from here on (sha_start) */
    if (c->tgt == TGT_APR && !o->dry_run && cv_sha_start(c, e))
        return -1;
    if (c->dtype_req >= 0 && !cv_holds(c, c->dtype_req))
        return ERR(e, ERR_USAGE, "--dtype %s: %s has no code for it%s", o->dtype,
                   cv_tgt_name(c->tgt), c->tgt == TGT_APR ? " (add --lossless to store it "
                   "with an extension code)" : "");
    if (meta_from_model(&c->src, &c->ck, e))
        return -1;
    c->drop_tied = c->ck.apr_tied;
    if (cv_plan_tensors(c, e))
        return -1;
    if (c->tgt == TGT_APR)
        for (uint64_t i = 0; i < c->n_tp; i++)
            if (dtype_get(c->tp[i].dtype)->apr_code < 0)
                c->use_ext = 1;
    if (cv_out_tensors(c, e) || cv_ck_fixup(c, e))
        return -1;
    if ((c->tgt == TGT_APR ? cv_meta_apr(c, e) : c->tgt == TGT_GGUF ? cv_meta_gguf(c, e)
                                                                 : cv_meta_st(c, e)))
        return -1;
    if (c->tgt == TGT_APR && !o->dry_run && cv_sha_bind(c, e))
        return -1;
    return 0;
}

/* SafeTensors output, plus config.json, tokenizer.json and tokenizer_config.json beside
 * a directory or a model.safetensors (never replacing one without -f). */
static int write_st(struct cv *c, struct err *e)
{
    const struct convert_opts *o = c->o;
    struct st_write_opts so = ST_WRITE_OPTS_INIT;
    struct model tm;
    int rc;

    so.tensor_data = cv_td_st;
    so.ctx = c;
    so.max_shard_bytes = c->dir_out ? (o->shard_bytes ? o->shard_bytes : DEFAULT_SHARD) : 0;
    rc = st_write(&c->out_m, c->stage_out, &so, e);
    if (rc || !(c->dir_out || strcmp(path_base(c->out, NULL), "model.safetensors") == 0))
        return rc;
    if (!c->dir_out && !o->force && cv_exists(c->tdir, "config.json"))
        cv_note(c, "%s/config.json exists: not replaced (use -f)", c->tdir);
    else if (st_write_config(&c->out_m, c->stage, e))
        return -1;
    /* tokenizer.json and tokenizer_config.json come from the canonical keys: meta_st puts
     * no tokenizer.* keys in out_m */
    memset(&tm, 0, sizeof tm);
    tm.kv = c->ck.kv;
    tm.n_kv = c->ck.n;
    if (!c->dir_out && !o->force && cv_exists(c->tdir, "tokenizer.json"))
        cv_note(c, "%s/tokenizer.json exists: not replaced (use -f)", c->tdir);
    else
        return st_write_tokenizer(&tm, c->stage, e);
    return 0;
}

/* Write the output into the staging directory, streaming the tensors. */
static int write_out(struct cv *c, struct err *e)
{
    int rc;

    if (c->o->progress) {
        uint64_t total = 0;
        for (uint64_t i = 0; i < c->n_tp; i++)
            total += c->tp[i].src->size;
        progress_start(&c->prog, "converting", total);
    }
    c->fbuf = malloc((size_t)CONV_ELEMS * sizeof *c->fbuf);
    if (!c->fbuf)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (c->tgt == TGT_APR) {
        struct apr_write_opts ao;
        memset(&ao, 0, sizeof ao);
        ao.tensor_data = cv_td_apr;
        ao.tensor_data_ctx = c;
        ao.ggml_ext_codes = c->use_ext;
        ao.meta_final = cv_sha_join;
        ao.meta_final_ctx = c;
        ao.tensor_crc = cv_tensor_crc;
        ao.tensor_crc_ctx = c;
        rc = apr_write(&c->out_m, c->stage_out, &ao, e);
    } else if (c->tgt == TGT_GGUF) {
        struct gguf_write_opts go = GGUF_WRITE_OPTS_INIT;
        go.tensor_data = cv_td_gguf;
        go.ctx = c;
        if (c->o->split_bytes)
            rc = gguf_write_split(&c->out_m, c->stage_out, c->o->split_bytes, &go,
                                  &c->n_parts, e);
        else
            rc = gguf_write(&c->out_m, c->stage_out, &go, e);
    } else {
        rc = write_st(c, e);
    }
    progress_done(&c->prog);
    return rc;
}

/* --verify the staged output, then move it into place. */
static int commit(struct cv *c, struct err *e)
{
    if (c->o->verify) {
        const char *vp = c->stage_out;
        char idx[4096];
        if (c->n_parts) {   /* a split set is read from its first part */
            if (cv_split_part(c, c->stage_out, 1, idx, sizeof idx, e))
                return -1;
            vp = idx;
        } else if (c->dir_out) {
            snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", c->stage);
            if (access(idx, F_OK) != 0)
                snprintf(idx, sizeof idx, "%s/model.safetensors", c->stage);
            vp = idx;
        }
        if (cv_verify(c, vp, e))
            return -1;
    }
    if (cv_cancelled(c, e))
        return -1;
    if (c->dir_out)
        return cv_move_all(c, c->tdir, e);
    if (c->n_parts)
        return cv_commit_split(c, e);
    if (rename(c->stage_out, c->out) != 0)
        return ERR_SYS(e, "cannot rename '%s' to '%s'", c->stage_out, c->out);
    for (int k = 0; c->tgt == TGT_ST && k < 2; k++) {
        const char *cf = k ? "generation_config.json" : "config.json";
        if (cv_exists(c->stage, cf) && cv_move_into(c->stage, cf, c->tdir, e))
            return -1;
    }
    for (int k = 0; c->tgt == TGT_ST && k < 2; k++) {
        const char *tf = k ? "tokenizer_config.json" : "tokenizer.json";
        if (cv_exists(c->stage, tf) && cv_move_into(c->stage, tf, c->tdir, e))
            return -1;
    }
    return 0;
}

/*
 * The type changes of the written tensors, once the output is in place (a failed or
 * dry run wrote nothing: the plan lists them instead): one summary line for the
 * widened tensors (count, bytes before and after), one for the other type notes
 * (kept F32 for llama.cpp, fallbacks), and with -v one line per tensor.
 */
static void type_notes(const struct cv *c)
{
    uint64_t n_wide = 0, n_other = 0, before = 0, after = 0;

    for (uint64_t i = 0; i < c->n_tp; i++) {
        const struct tplan *p = &c->tp[i];
        int other = !p->widened && p->note[0] && !p->tied_copy && !p->narrowed;
        uint64_t nb = 0;
        struct err ie = ERR_INIT;
        if (p->widened) {
            n_wide++;
            before += p->src->size;
            if (dtype_nbytes(p->dtype, p->src->n_elems, &nb, &ie) == 0)
                after += nb;
        }
        n_other += other;
        if (c->o->verbose && (p->widened || other))
            cv_note(c, "'%s': %s -> %s (%s)", p->name, dtype_name(p->src->dtype),
                    dtype_name(p->dtype), p->note);
    }
    if (n_wide)
        cv_note(c, "%llu tensor%s widened for %s (%llu -> %llu bytes)%s",
                (unsigned long long)n_wide, n_wide == 1 ? "" : "s", cv_tgt_name(c->tgt),
                (unsigned long long)before, (unsigned long long)after,
                c->o->verbose ? "" : "; -v lists them");
    if (n_other)
        cv_note(c, "%llu other tensor%s changed or kept type for the target%s",
                (unsigned long long)n_other, n_other == 1 ? "" : "s",
                c->o->verbose ? "" : "; -v lists them");
}

int convert_run(const struct convert_opts *o, const char *in, const char *out, struct err *e)
{
    struct cv cv, *c = &cv;
    int rc = -1, wrote = 0;

    memset(c, 0, sizeof *c);
    c->o = o;
    c->in = in;
    c->out = out;
    c->dtype_req = -1;
    c->n_threads = o->n_threads > 0 ? o->n_threads : threads_ncpu();
    if (check_opts(c, e))
        return -1;
    if (plan_all(c, e))
        goto done;
    if (!o->dry_run) {
        if (cv_stage_target(c, e) || write_out(c, e) || commit(c, e))
            goto done;
        wrote = 1;
        type_notes(c);
    }
    rc = 0;
done:
    if (rc == 0)
        cv_report(c, wrote);
    cv_release(c);
    return rc;
}
