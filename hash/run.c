/*
 * run.c - apr-hash's entry (hash.h): --verify-source, hashing the operands (files,
 * directories, models), and hash_run.
 */
#include "hash_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/cli.h"
#include "../common/dirwalk.h"
#include "../common/json.h"
#include "../common/mfile.h"
#include "../common/path.h"
#include "../common/ofile.h"
#include "../common/progress.h"
#include "../common/sbuf.h"
#include "../common/slice.h"
#include "../common/threads.h"
#include "../common/vec.h"
#include "../dequant/dq.h"
#include "../formats/apr/apr.h"
#include "../formats/config.h"
#include "../formats/names.h"
#include "../common/banned.h"
/* ---- --verify-source ---------------------------------------------------------------- */

/*
 * The source hash apr-convert records (source_sha256) for what it converted: a file's
 * bytes; for a directory, the bytes of its model.safetensors.index.json when it has one,
 * else of its SafeTensors files one after another in the model's order
 * (convert/provenance.c, source_sha: the two must agree; t4000 checks that they do).
 */
static int hash_source(const char *path, uint8_t out[SHA256_LEN], struct err *e)
{
    struct stat st;
    struct model m;
    struct sha256 h;
    char *idx;
    int rc;

    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return hash_file(path, out, NULL, e);
    idx = path_join(path, "model.safetensors.index.json");
    if (!idx)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (access(idx, R_OK) == 0) {
        rc = hash_file(idx, out, NULL, e);
        free(idx);
        return rc;
    }
    free(idx);
    if (model_open(&m, path, e))
        return -1;
    if (sha256_init(&h, e)) {
        sha256_release(&h);
        model_close(&m);
        return -1;
    }
    for (uint32_t i = 0; i < m.n_files; i++)
        if (hash__sha_mfile(&h, &m.files[i], NULL, e)) {   /* streamed: common/stream.h */
            sha256_release(&h);
            model_close(&m);
            return -1;
        }
    model_close(&m);
    return sha256_final(&h, out, e);
}

static int run_verify_source(const struct hash_opts *o, const char *apr, FILE *out, FILE *errs,
                             struct err *e)
{
    struct model m;
    struct slice rec;
    uint8_t want[SHA256_LEN], got[SHA256_LEN];
    char hex[SHA256_HEX_LEN + 1], whex[SHA256_HEX_LEN + 1];
    int rc;

    if (model_open(&m, apr, e)) {
        if (!o->quiet)
            hash__put_err(errs, NULL, e->msg);
        return EXIT_TROUBLE;
    }
    if (apr_check_integrity(&m, e)) {   /* not the file that was written */
        model_close(&m);
        if (!o->quiet)
            hash__put_err(errs, NULL, e->msg);
        return EXIT_MISMATCH;
    }
    if (model_kv_get_str(&m, HASH_SOURCE_KEY, &rec) != 0) {
        ERR(e, ERR_FORMAT, "'%s' records no source: metadata key '%s' (a string of 64 hex "
            "digits written by apr-convert) is missing", apr, HASH_SOURCE_KEY);
        model_close(&m);
        if (!o->quiet)
            hash__put_err(errs, NULL, e->msg);
        return EXIT_TROUBLE;
    }
    rc = sha256_parse_hex(rec.p, rec.n, want);
    model_close(&m);
    if (rc) {
        ERR(e, ERR_FORMAT, "'%s': metadata key '%s' is not 64 hex digits", apr, HASH_SOURCE_KEY);
        if (!o->quiet)
            hash__put_err(errs, NULL, e->msg);
        return EXIT_TROUBLE;
    }
    if (hash_source(o->verify_source, got, e)) {
        if (!o->quiet)
            hash__put_err(errs, NULL, e->msg);
        return EXIT_TROUBLE;
    }
    sha256_hex(got, hex);
    sha256_hex(want, whex);
    if (memcmp(want, got, SHA256_LEN) != 0) {
        if (!o->quiet) {
            cli_put_escaped(out, apr, strlen(apr));
            fprintf(out, ": source MISMATCH: recorded %s, '", whex);
            cli_put_escaped(out, o->verify_source, strlen(o->verify_source));
            fprintf(out, "' has %s\n", hex);
        }
        ERR(e, ERR_MISMATCH, "'%s' was not converted from '%s'", apr, o->verify_source);
        return EXIT_MISMATCH;
    }
    if (!o->quiet) {
        cli_put_escaped(out, apr, strlen(apr));
        fprintf(out, ": source OK (sha256 %s)\n", hex);
    }
    return EXIT_MATCH;
}

static int file_worker(void *arg, int64_t b, int64_t end, int w)
{
    struct filejob *J = arg;
    (void)b;
    (void)end;
    (void)w;
    for (;;) {
        int i = atomic_fetch_add(&J->next, 1);
        if (i >= J->n)
            break;
        struct item *it = &J->items[i];
        if (strcmp(it->path, "-") == 0)
            continue;   /* standard input: hashed in order by the caller */
        if (hash__hash_file_prog(it->path, it->sha, &it->size, J->prog, &J->errs[i]) == 0) {
            it->ok = 1;
            it->has_sha = 1;
        }
    }
    return 0;
}

/* Hash one model file (tensors, content, and its files' bytes when with_files). */
static int hash_model_item(const struct hash_opts *o, struct item *it, unsigned what,
                           int with_files, int n_threads, struct progress *prog, struct err *e)
{
    struct model m;
    uint8_t (*fsha)[SHA256_LEN] = NULL;
    struct stat st;

    if (model_open(&m, it->path, e))
        return -1;
    {   /* a whole-file reader: APR checksums must hold (ERR_MISMATCH: not "not a model") */
        struct err ie = ERR_INIT;
        if (apr_check_integrity(&m, &ie)) {
            model_close(&m);
            return ERR(e, ERR_MISMATCH, "%s", ie.msg);
        }
    }
    if (with_files) {
        fsha = calloc(m.n_files ? m.n_files : 1, sizeof *fsha);
        if (!fsha) {
            model_close(&m);
            return ERR(e, ERR_NOMEM, "out of memory");
        }
    }
    if (hash__compute(&m, what, n_threads, fsha, o->quiet || o->no_progress ? NULL : prog, &it->hm, e)) {
        free(fsha);
        model_close(&m);
        return -1;
    }
    it->is_model = 1;
    it->is_reg = stat(it->path, &st) == 0 && S_ISREG(st.st_mode);
    for (uint32_t f = 0; with_files && f < m.n_files; f++) {
        if (it->is_reg && strcmp(m.files[f].path, it->path) == 0) {
            memcpy(it->sha, fsha[f], SHA256_LEN);
            it->size = m.files[f].size;
            it->has_sha = 1;
            continue;
        }
        if (hash__item_add_file(it, m.files[f].path, m.files[f].size, fsha[f], e)) {
            free(fsha);
            model_close(&m);
            return -1;
        }
    }
    /* an index.json or a file outside the mapped set: hash it too */
    if (with_files && it->is_reg && !it->has_sha) {
        if (hash_file(it->path, it->sha, &it->size, e)) {
            free(fsha);
            model_close(&m);
            return -1;
        }
        it->has_sha = 1;
    }
    free(fsha);
    model_close(&m);
    return 0;
}

/*
 * Whole-file mode: each directory argument becomes the regular files under it (sorted
 * by relative path, symbolic links and other entries noted and skipped).  *out (the new
 * argument list) and *owned (the strings to free) are allocated; returns the count, or
 * -1 when out of memory.  A directory that cannot be read is reported and sets *status.
 */
static int expand_dirs(const struct hash_opts *o, int n_files, char **files, char ***out,
                       char ***owned, FILE *errs, int *status, struct err *e)
{
    char **list = NULL, **own = NULL;
    size_t n = 0, cap = 0, n_own = 0, cap_own = 0;

    for (int i = 0; i < n_files; i++) {
        struct stat st;
        struct dirlist dl;
        struct err de = ERR_INIT;
        if (strcmp(files[i], "-") == 0 || stat(files[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            if (vec_reserve((void **)&list, &cap, n + 1, sizeof *list, e))
                goto fail;
            list[n++] = files[i];
            continue;
        }
        if (dir_walk(&dl, files[i], 0, HASH_MAX_DEPTH, 0, NULL, &de)) {
            if (!o->quiet)
                hash__put_err(errs, NULL, de.msg);
            if (err_ok(e))
                *e = de;
            *status = 1;
            continue;
        }
        for (size_t k = 0; k < dl.n; k++) {
            char *full;
            if (!hash__dent_hashable(files[i], &dl.v[k])) {
                if (!o->quiet)
                    hash__dent_note(errs, files[i], &dl.v[k]);
                continue;
            }
            full = path_join(files[i], dl.v[k].rel);
            if (!full || vec_reserve((void **)&list, &cap, n + 1, sizeof *list, e) ||
                vec_reserve((void **)&own, &cap_own, n_own + 1, sizeof *own, e)) {
                free(full);
                dirlist_release(&dl);
                goto fail;
            }
            list[n++] = full;
            own[n_own++] = full;
        }
        dirlist_release(&dl);
    }
    if (n > (size_t)INT32_MAX / 2)
        goto fail;
    if (vec_reserve((void **)&own, &cap_own, n_own + 1, sizeof *own, e))
        goto fail;
    own[n_own] = NULL;
    *out = list;
    *owned = own;
    return (int)n;
fail:
    for (size_t k = 0; k < n_own; k++)
        free(own[k]);
    free(own);
    free(list);
    if (err_ok(e))
        ERR(e, ERR_NOMEM, "out of memory");
    return -1;
}

/* Whole-file mode: the items' bytes, in parallel across files; 0 ok, 1 a file failed. */
static int hash_whole_files(const struct hash_opts *o, struct item *items, int n_files,
                            int n_threads, FILE *errs, struct err *e)
{
    struct filejob J;
    struct progress prog;
    struct err *errv = calloc((size_t)(n_files ? n_files : 1), sizeof *errv);
    uint64_t total = 0;
    int status = 0;

    if (!errv)
        return ERR(e, ERR_NOMEM, "out of memory"), 1;
    for (int i = 0; i < n_files; i++) {
        struct stat st;
        errv[i] = (struct err)ERR_INIT;
        if (stat(items[i].path, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    for (int i = 0; i < n_files; i++)     /* "-": read once, in argument order */
        if (strcmp(items[i].path, "-") == 0 &&
            hash__hash_file_prog(items[i].path, items[i].sha, &items[i].size, NULL,
                                 &errv[i]) == 0)
            items[i].ok = items[i].has_sha = 1;
    J.items = items;
    J.n = n_files;
    atomic_init(&J.next, 0);
    J.errs = errv;
    J.prog = o->quiet || o->no_progress ? NULL : &prog;
    if (J.prog)
        progress_start(J.prog, "hashing", total);
    n_threads = n_threads < n_files ? n_threads : n_files;
    if (n_threads > 0)
        threads_run(n_threads, n_threads, file_worker, &J);
    if (J.prog)
        progress_done(J.prog);
    for (int i = 0; i < n_files; i++) {
        if (items[i].ok)
            continue;
        if (!o->quiet)
            hash__put_err(errs, NULL, errv[i].msg);
        if (err_ok(e))
            *e = errv[i];
        status = 1;
    }
    free(errv);
    return status;
}

/* One operand read as a model (its tensors; with -o its files too); a file or directory
 * that is no model is still recorded by -o.  0 ok, -1 (fe says why). */
static int hash_operand(const struct hash_opts *o, struct item *it, unsigned what,
                        int n_threads, struct progress *prog, FILE *errs, struct err *fe)
{
    struct stat st;
    int is_dir = stat(it->path, &st) == 0 && S_ISDIR(st.st_mode);

    if (hash_model_item(o, it, what, o->output != NULL, n_threads, prog, fe) == 0)
        /* a model directory's manifest also lists config, tokenizer, ... files */
        return !o->output || !is_dir ? 0 : hash__item_add_dir(o, it, errs, fe);
    if (!o->output || fe->code == ERR_MISMATCH)
        return -1;   /* a corrupt APR model is not recorded as if it were a plain file */
    if (is_dir && !o->quiet)
        hash__errf(errs, "note: %s; listing the files of '%s' without tensors", fe->msg,
                   it->path);
    err_clear(fe);
    if (is_dir)
        return hash__item_add_dir(o, it, errs, fe);
    if (stat(it->path, &st) == 0 && S_ISREG(st.st_mode) &&
        hash_file(it->path, it->sha, &it->size, fe) == 0) {
        it->has_sha = 1;
        return 0;
    }
    return -1;
}

/* Per-tensor modes (--tensors, --content, --with-metadata, -o): 0 ok, 1 a file failed. */
static int hash_models(const struct hash_opts *o, struct item *items, int n_files,
                       int n_threads, FILE *errs, struct err *e)
{
    struct progress prog;
    unsigned what = 0;
    int status = 0;

    if (o->tensors || o->output || (!o->content && o->with_metadata))
        what |= HASH_WANT_RAW;
    if (o->content)
        what |= HASH_WANT_CONTENT;
    if (o->with_metadata)
        what |= HASH_WANT_METADATA;
    for (int i = 0; i < n_files; i++) {
        struct err fe = ERR_INIT;
        if (hash_operand(o, &items[i], what, n_threads, &prog, errs, &fe) == 0) {
            items[i].ok = 1;
            continue;
        }
        if (!o->quiet)
            hash__put_err(errs, NULL, fe.msg);
        if (err_ok(e))
            *e = fe;
        status = 1;
    }
    return status;
}

/* The manifest (-o), JSON or text on standard output: 0 ok, 1 it could not be written. */
static int write_results(const struct hash_opts *o, struct item *items, int n_files, FILE *out,
                         struct err *e)
{
    struct sbuf b = SBUF_INIT(HASH_MAX_TEXT);
    int rc = 0;

    if (o->output && o->format == HASH_FMT_TEXT) {
        char *p = NULL;
        size_t n = 0;
        FILE *mf = open_memstream(&p, &n);
        rc = mf ? hash__write_text(mf, items, n_files, e) : ERR_SYS(e, "open_memstream");
        if (mf && fclose(mf) != 0 && !rc)
            rc = ERR_SYS(e, "cannot buffer the manifest");
        if (!rc)
            rc = ofile_put(o->output, p ? p : "", n, e);
        free(p);
    } else if (o->output) {
        rc = hash__write_json(&b, o, items, n_files, e);
        if (!rc)
            rc = ofile_put(o->output, b.p ? b.p : "", b.len, e);
    } else if (o->json) {
        rc = hash__write_json(&b, o, items, n_files, e);
        if (!rc && !o->quiet)
            fwrite(b.p, 1, b.len, out);
    } else if (!o->quiet) {
        rc = hash__write_text(out, items, n_files, e);
    }
    sbuf_release(&b);
    return rc ? 1 : 0;
}

static int run_hash(const struct hash_opts *o, int n_files, char **files, FILE *out, FILE *errs,
                    struct err *e)
{
    struct item *items;
    int n_threads = o->n_threads > 0 ? o->n_threads : threads_ncpu();
    int per_tensor = o->tensors || o->content || o->output || o->with_metadata;
    int status = 0;
    char **expanded = NULL, **owned = NULL;

    if (!per_tensor) {
        n_files = expand_dirs(o, n_files, files, &expanded, &owned, errs, &status, e);
        if (n_files < 0) {
            if (!o->quiet)
                hash__put_err(errs, NULL, e->msg);
            return 1;
        }
        files = expanded;
    }
    items = calloc((size_t)(n_files ? n_files : 1), sizeof *items);
    if (!items) {
        ERR(e, ERR_NOMEM, "out of memory");
        status = 1;
        goto out;
    }
    for (int i = 0; i < n_files; i++)
        items[i].path = files[i];
    if (per_tensor ? hash_models(o, items, n_files, n_threads, errs, e)
                   : hash_whole_files(o, items, n_files, n_threads, errs, e))
        status = 1;
    if (write_results(o, items, n_files, out, e)) {
        if (!o->quiet)
            hash__put_err(errs, NULL, e->msg);
        status = 1;
    }
    for (int i = 0; i < n_files; i++)
        hash__item_release(&items[i]);
    free(items);
out:
    for (size_t k = 0; owned && owned[k]; k++)
        free(owned[k]);
    free(owned);
    free(expanded);
    return status;
}

int hash_run(const struct hash_opts *o, int n_files, char **files, struct err *e)
{
    FILE *out = o->out ? o->out : stdout, *errs = o->errs ? o->errs : stderr;

    if (o->verify_source) {
        if (n_files != 1)
            return ERR(e, ERR_USAGE, "--verify-source takes one APR file"), EXIT_TROUBLE;
        return run_verify_source(o, files[0], out, errs, e);
    }
    if (o->check)
        return hash__run_check(o, n_files, files, out, errs, e);
    return run_hash(o, n_files, files, out, errs, e);
}
