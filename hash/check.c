/*
 * check.c - apr-hash -c: files, models (tensor by tensor, renamed or resharded) and
 * directories checked against a manifest; diff(1)-style exit status.
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
static void say(struct checker *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct checker *c, const char *path, const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;
    int n;
    if (c->o->quiet)
        return;
    cli_put_escaped(c->out, path, strlen(path));
    fputs(": ", c->out);
    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);   /* names from manifests and files: escaped */
    va_end(ap);
    if (n >= 0 && p)
        cli_put_text(c->out, p, (size_t)n);
    fputc('\n', c->out);
    free(p);
}

static void say_tensor(struct checker *c, const char *path, const char *name, const char *what)
{
    if (c->o->quiet)
        return;
    cli_put_escaped(c->out, path, strlen(path));
    fputs(": tensor '", c->out);
    cli_put_escaped(c->out, name, strlen(name));
    fprintf(c->out, "': %s\n", what);
}

static void link_models(struct checker *c, const char *path)
{
    for (size_t i = 0; i < c->man.n_m; i++)
        if (c->man.m[i].path && strcmp(c->man.m[i].path, path) == 0)
            c->man.m[i].matched = 1;
    for (size_t i = 0; i < c->man.n_f; i++)
        if (strcmp(c->man.f[i].path, path) == 0)
            c->man.f[i].matched = 1;
}

static const struct hash_tensor *find_tensor(const struct hash_tensor **by_name,
                                             const struct hash_tensor **by_canon, uint64_t n,
                                             const char *name, int content)
{
    char canon[NAMES_MAX];
    uint64_t lo = 0, hi = n;
    /* stored bytes pair by the stored name first; content hashes by canonical name */
    if (!content) {
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            int r = strcmp(by_name[mid]->name, name);
            if (r == 0)
                return by_name[mid];
            if (r < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    if (names_canonical(NULL, slice_from_cstr(name), canon, sizeof canon) == -2)
        return NULL;
    lo = 0;
    hi = n;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        int r = strcmp(by_canon[mid]->canon, canon);
        if (r == 0) {
            while (mid > 0 && strcmp(by_canon[mid - 1]->canon, canon) == 0)
                mid--;
            return by_canon[mid];
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The model hash (content hash) to compare with mm: the form its manifest was written in. */
static const uint8_t *model_hash_for(const struct hash_model *h, const struct man_model *mm)
{
    return mm->keys_form ? h->model_hash : h->tensor_hash;
}

static const uint8_t *content_hash_for(const struct hash_model *h, const struct man_model *mm)
{
    return mm->keys_form ? h->content_hash : h->content_tensor_hash;
}

static void say_key(struct checker *c, const char *path, const char *key, size_t n,
                    const char *what)
{
    if (c->o->quiet)
        return;
    cli_put_escaped(c->out, path, strlen(path));
    fputs(": key '", c->out);
    cli_put_escaped(c->out, key, n);
    fprintf(c->out, "': %s\n", what);
}

/* Compare the canonical keys of h with mm's (keys_form manifests); returns the problems. */
static uint64_t compare_keys(struct checker *c, const char *path, const struct hash_model *h,
                             struct man_model *mm)
{
    uint64_t bad = 0;
    char *seen;

    if (!mm->keys_form)
        return 0;
    seen = calloc(h->n_keys + 1, 1);
    if (!seen) {
        say(c, path, "FAILED (out of memory comparing keys)");
        return 1;
    }
    for (size_t i = 0; i < mm->n_k; i++) {
        struct canon_key want = { mm->k[i].key, mm->k[i].n, { 0 } };
        const struct canon_key *k = h->n_keys ? bsearch(&want, h->keys, h->n_keys,
                                                        sizeof *h->keys, canon_key_cmp) : NULL;
        if (!k) {
            say_key(c, path, mm->k[i].key, mm->k[i].n, "MISSING (in the manifest, not in the model)");
            c->n_missing++;
            bad++;
            continue;
        }
        seen[k - h->keys] = 1;
        if (memcmp(k->sha, mm->k[i].sha, SHA256_LEN) != 0) {
            say_key(c, path, k->key, k->n, "MISMATCH (value differs from the manifest)");
            c->n_mismatch++;
            bad++;
        }
    }
    for (uint64_t i = 0; i < h->n_keys; i++)
        if (!seen[i]) {
            say_key(c, path, h->keys[i].key, h->keys[i].n, "EXTRA (in the model, not in the manifest)");
            c->n_extra++;
            bad++;
        }
    free(seen);
    return bad;
}

static uint64_t shared_names(const struct man_model *mm, const struct hash_tensor **bn,
                             const struct hash_tensor **bc, uint64_t n)
{
    uint64_t k = 0;
    for (size_t i = 0; i < mm->n_t; i++)
        if (find_tensor(bn, bc, n, mm->t[i].name, mm->t[i].content))
            k++;
    return k;
}

/* Compare model h (from path) with manifest model mm, tensor by tensor.  0 or 1 problems. */
static int compare_model(struct checker *c, const char *path, const struct model *m,
                         const struct hash_model *h, struct man_model *mm, struct err *e)
{
    const struct hash_tensor **bn = hash__sorted_tensors(h->t, h->n_tensors, 0, e);
    const struct hash_tensor **bc = hash__sorted_tensors(h->t, h->n_tensors, 1, e);
    char *seen_raw = calloc(h->n_tensors + 1, 1), *seen_content = calloc(h->n_tensors + 1, 1);
    uint64_t bad = 0;
    int rc = 0;

    if (!bn || !bc || !seen_raw || !seen_content) {
        rc = err_ok(e) ? ERR(e, ERR_NOMEM, "out of memory") : -1;
        goto out;
    }
    for (size_t i = 0; i < mm->n_t; i++) {
        struct man_tensor *mt = &mm->t[i];
        const struct hash_tensor *t = find_tensor(bn, bc, h->n_tensors, mt->name, mt->content);
        char what[256];
        if (!t) {
            say_tensor(c, path, mt->name, "MISSING (in the manifest, not in the file)");
            c->n_missing++;
            bad++;
            continue;
        }
        (mt->content ? seen_content : seen_raw)[t - h->t] = 1;
        what[0] = 0;
        if (!mt->content && mt->dtype && strcmp(mt->dtype, dtype_name(t->dtype)) != 0)
            snprintf(what, sizeof what, "MISMATCH (dtype %s, manifest %s)", dtype_name(t->dtype),
                     mt->dtype);
        else if (mt->n_dims >= 0 &&
                 (mt->n_dims != t->n_dims ||
                  memcmp(mt->shape, t->shape, (size_t)t->n_dims * sizeof t->shape[0]) != 0))
            snprintf(what, sizeof what, "MISMATCH (shape differs from the manifest)");
        else if (memcmp(mt->sha, mt->content ? t->content : t->sha, SHA256_LEN) != 0)
            snprintf(what, sizeof what, "MISMATCH (%s differs)",
                     mt->content ? "content sha256" : "sha256");
        if (what[0]) {
            say_tensor(c, path, t->name, what);
            c->n_mismatch++;
            bad++;
        }
    }
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        if ((mm->n_raw && !seen_raw[i]) || (!mm->n_raw && mm->n_content && !seen_content[i])) {
            say_tensor(c, path, h->t[i].name, "EXTRA (in the file, not in the manifest)");
            c->n_extra++;
            bad++;
        }
    }
    bad += compare_keys(c, path, h, mm);
    if (mm->n_t == 0 && mm->has_model && h->has_raw &&
        memcmp(mm->model_hash, model_hash_for(h, mm), SHA256_LEN) != 0) {
        say(c, path, "FAILED (model hash differs; the manifest lists no tensors)");
        bad++;
    }
    if (mm->n_t == 0 && !mm->has_model && mm->has_whole) {
        uint8_t d[SHA256_LEN];
        if (hash__hash_concat(m, d, e)) {
            rc = -1;
            goto out;
        }
        if (memcmp(d, mm->whole, SHA256_LEN) != 0) {
            say(c, path, "FAILED (sha256 of the tensor data differs from the manifest's "
                "model line)");
            bad++;
        }
    }
    if (mm->has_metadata && h->has_metadata &&
        memcmp(mm->metadata_hash, h->metadata_hash, SHA256_LEN) != 0) {
        say(c, path, "metadata: MISMATCH (metadata hash differs)");
        c->n_mismatch++;
        bad++;
    }
    rc = bad ? 1 : 0;
out:
    free(bn);
    free(bc);
    free(seen_raw);
    free(seen_content);
    return rc;
}

static int check_dir(struct checker *c, const char *dir);

/*
 * A regular file whose whole-file SHA-256 is a manifest entry's: OK.  Returns the
 * status, or -1 to go on (*have_sha says whether the file's bytes were hashed).
 */
static int check_whole(struct checker *c, const char *path, const struct stat *st,
                       int *have_sha)
{
    struct err e = ERR_INIT;
    uint8_t sha[SHA256_LEN];

    *have_sha = 0;
    if (!S_ISREG(st->st_mode) || c->man.n_f == 0)
        return -1;
    if (hash_file(path, sha, NULL, &e)) {
        if (!c->o->quiet)
            hash__put_err(c->errs, NULL, e.msg);
        c->n_trouble++;
        return EXIT_TROUBLE;
    }
    *have_sha = 1;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < c->man.n_f; i++) {
            struct man_file *f = &c->man.f[i];
            if (!f->has_sha || memcmp(f->sha, sha, SHA256_LEN) != 0 || (!pass && f->matched))
                continue;
            f->matched = 1;
            link_models(c, f->path);
            say(c, path, "OK");
            c->n_ok++;
            return EXIT_MATCH;
        }
    return -1;
}

/* A manifest of files only (no models): the file failed; name its entry when one has
 * its path or file name. */
static int fail_unlisted(struct checker *c, const char *path)
{
    struct man_file *same = NULL;

    for (size_t i = 0; i < c->man.n_f && !same; i++)
        if (strcmp(c->man.f[i].path, path) == 0)
            same = &c->man.f[i];
    for (size_t i = 0; i < c->man.n_f && !same; i++)
        if (!c->man.f[i].matched && path_same_base(c->man.f[i].path, path))
            same = &c->man.f[i];
    if (same) {
        same->matched = 1;
        say(c, path, "FAILED (sha256 differs from the manifest entry '%s')", same->path);
    } else {
        say(c, path, "FAILED (no manifest entry has its sha256)");
    }
    c->n_failed++;
    return EXIT_MISMATCH;
}

/* Checking a directory: the model's mapped files, relative to it (judged by tensors). */
static void note_shards(struct checker *c, const struct model *m, const char *path)
{
    if (!c->in_dir || m->n_files == 0)
        return;
    c->shard_rel = calloc(m->n_files, sizeof *c->shard_rel);
    for (uint32_t f = 0; c->shard_rel && f < m->n_files; f++) {
        const char *r = hash__rel_under(m->files[f].path, path);
        c->shard_rel[c->n_shard_rel] = r ? hash__xstrndup(r, strlen(r)) : NULL;
        if (c->shard_rel[c->n_shard_rel])
            c->n_shard_rel++;
    }
}

/* The manifest model whose model hash (or content hash) is h's, unmatched ones first. */
static struct man_model *match_by_hash(struct checker *c, const struct hash_model *h)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < c->man.n_m; i++) {
            struct man_model *mm = &c->man.m[i];
            if (!pass && mm->matched)
                continue;
            if ((mm->has_model && h->has_raw &&
                 !memcmp(mm->model_hash, model_hash_for(h, mm), SHA256_LEN)) ||
                (mm->has_content && h->has_content &&
                 !memcmp(mm->content_hash, content_hash_for(h, mm), SHA256_LEN)))
                return mm;
        }
    return NULL;
}

/* Else the entry with path's path, then file name, then the most shared tensor names,
 * then the only model the manifest describes; NULL when none. */
static struct man_model *match_by_name(struct checker *c, const char *path,
                                       const struct hash_model *h)
{
    struct err e = ERR_INIT;
    struct man_model *best = NULL, *only = NULL;
    const struct hash_tensor **bn, **bc;
    uint64_t top = 0;
    size_t n_unmatched = 0;

    for (size_t i = 0; i < c->man.n_m; i++)
        if (c->man.m[i].path && strcmp(c->man.m[i].path, path) == 0)
            return &c->man.m[i];
    for (size_t i = 0; i < c->man.n_m; i++)
        if (!c->man.m[i].matched && c->man.m[i].path && path_same_base(c->man.m[i].path, path))
            return &c->man.m[i];
    bn = hash__sorted_tensors(h->t, h->n_tensors, 0, &e);
    bc = hash__sorted_tensors(h->t, h->n_tensors, 1, &e);
    for (size_t i = 0; bn && bc && i < c->man.n_m; i++) {
        uint64_t k;
        if (c->man.m[i].matched)
            continue;
        k = shared_names(&c->man.m[i], bn, bc, h->n_tensors);
        if (k > top) {
            top = k;
            best = &c->man.m[i];
        }
    }
    free(bn);
    free(bc);
    if (best)
        return best;
    /* the only model the manifest describes (e.g. a model line and nothing else) */
    for (size_t i = 0; i < c->man.n_m; i++)
        if (!c->man.m[i].matched) {
            only = &c->man.m[i];
            n_unmatched++;
        }
    return n_unmatched == 1 && c->man.n_m == 1 ? only : NULL;
}

/* Mark mm as the entry of path. */
static void take(struct checker *c, struct man_model *mm)
{
    mm->matched = 1;
    c->hit = mm;
    if (mm->path)
        link_models(c, mm->path);
}

/* Judge an open model against the manifest: by its hashes, else tensor by tensor. */
static int check_model(struct checker *c, const char *path, const struct model *m,
                       const struct hash_model *h, int have_sha)
{
    struct err e = ERR_INIT;
    struct man_model *best = match_by_hash(c, h);
    int rc;

    if (best && !(best->has_metadata && h->has_metadata &&
                  memcmp(best->metadata_hash, h->metadata_hash, SHA256_LEN) != 0)) {
        take(c, best);
        say(c, path, "OK (%s%s)", best->keys_form ? "model hash" :
            "tensors; the manifest does not cover metadata",
            have_sha ? "; the file's bytes differ" : "");
        c->n_ok++;
        return EXIT_MATCH;
    }
    if (!best)
        best = match_by_name(c, path, h);
    if (!best) {
        say(c, path, "FAILED (no manifest entry matches its hashes, path or tensor names)");
        c->n_failed++;
        return EXIT_MISMATCH;
    }
    take(c, best);
    rc = compare_model(c, path, m, h, best, &e);
    if (rc < 0) {
        if (!c->o->quiet)
            hash__put_err(c->errs, path, e.msg);
        c->n_trouble++;
        return EXIT_TROUBLE;
    }
    if (rc == 0) {
        say(c, path, "OK (tensors%s)", best->keys_form ? "" :
            "; the manifest does not cover metadata");
        c->n_ok++;
        return EXIT_MATCH;
    }
    say(c, path, "FAILED");
    c->n_failed++;
    return EXIT_MISMATCH;
}

/* Check one file against the manifest: 0 match, 1 mismatch, 2 trouble. */
static int check_one(struct checker *c, const char *path)
{
    struct err e = ERR_INIT;
    struct stat st;
    struct model m;
    struct hash_model h;
    int have_sha, rc;

    if (stat(path, &st) != 0) {
        if (!c->o->quiet)
            hash__errf(c->errs, "%s: %s", path, strerror(errno));
        say(c, path, "FAILED (cannot open)");
        c->n_failed++;
        return EXIT_MISMATCH;
    }
    if (S_ISDIR(st.st_mode) && !c->in_dir)
        return check_dir(c, path);
    rc = check_whole(c, path, &st, &have_sha);
    if (rc >= 0)
        return rc;
    if (c->man.n_m == 0)
        return fail_unlisted(c, path);
    if (model_open(&m, path, &e)) {
        say(c, path, "FAILED (%s; cannot compare tensors: %s)",
            have_sha ? "file sha256 not in the manifest" : "not a readable model", e.msg);
        c->n_failed++;
        return EXIT_MISMATCH;
    }
    if (apr_check_integrity(&m, &e)) {   /* a whole-file reader: APR checksums must hold */
        say(c, path, "FAILED (%s)", e.msg);
        model_close(&m);
        c->n_failed++;
        return EXIT_MISMATCH;
    }
    note_shards(c, &m, path);
    if (hash__compute(&m, c->need, c->n_threads, NULL, NULL, &h, &e)) {
        if (!c->o->quiet)
            hash__put_err(c->errs, path, e.msg);
        model_close(&m);
        c->n_trouble++;
        return EXIT_TROUBLE;
    }
    rc = check_model(c, path, &m, &h, have_sha);
    hash_model_release(&h);
    model_close(&m);
    return rc;
}

/* Whether path does not exist (--ignore-missing); other errors are checked and reported. */
static int absent(const char *path)
{
    struct stat st;
    return stat(path, &st) != 0 && errno == ENOENT;
}

static int worst(int a, int b)
{
    return a > b ? a : b;
}

/* The manifest's unmatched (or, any: matched too) file entry rel under prefix, or NULL. */
struct man_file *hash__dir_entry(struct checker *c, const char *prefix, const char *rel,
                                  const uint8_t *sha, int any)
{
    for (size_t i = 0; i < c->man.n_f; i++) {
        struct man_file *f = &c->man.f[i];
        const char *r = hash__rel_under(f->path, prefix);
        if (!r || (f->matched && !any) || (rel && strcmp(r, rel) != 0))
            continue;
        if (sha && (!f->has_sha || memcmp(f->sha, sha, SHA256_LEN) != 0))
            continue;
        return f;
    }
    return NULL;
}

static int dlist_has(const struct dirlist *dl, const char *rel)
{
    size_t lo = 0, hi = dl->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(dl->v[mid].rel, rel);
        if (r == 0)
            return 1;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/*
 * Check a directory: its model (when the manifest describes models) by tensors as
 * check_one does, then every other regular file under it against the manifest's file
 * entries under the model's manifest path (or under dir), paired by relative path and
 * sha256, then by sha256 alone (moved), then by path (MISMATCH), then by file name;
 * unpaired files are EXTRA, unpaired entries MISSING.  Mapped model files are judged
 * by their tensors only, so metadata edits keep the check green.
 */
static int check_dir(struct checker *c, const char *dir)
{
    struct dirlist dl;
    struct err e = ERR_INIT;
    const char *prefix = dir;
    int status = EXIT_MATCH;

    c->in_dir = 1;
    c->hit = NULL;
    if (c->man.n_m > 0)
        status = check_one(c, dir);
    if (c->hit && c->hit->path)
        prefix = c->hit->path;
    if (dir_walk(&dl, dir, 0, HASH_MAX_DEPTH, 0, NULL, &e)) {
        if (!c->o->quiet)
            hash__put_err(c->errs, NULL, e.msg);
        c->n_trouble++;
        status = EXIT_TROUBLE;
        goto out;
    }
    for (size_t i = 0; i < dl.n; i++) {
        const char *rel = dl.v[i].rel;
        struct man_file *f;
        uint8_t sha[SHA256_LEN];
        char *full;
        int shard = 0;
        for (uint32_t k = 0; k < c->n_shard_rel && !shard; k++)
            shard = strcmp(c->shard_rel[k], rel) == 0;
        if (shard) {
            for (f = hash__dir_entry(c, prefix, rel, NULL, 0); f; f = hash__dir_entry(c, prefix, rel, NULL, 0))
                f->matched = 1;   /* judged by its tensors above */
            continue;
        }
        if (!hash__dent_hashable(dir, &dl.v[i])) {
            if (!c->o->quiet)
                hash__dent_note(c->errs, dir, &dl.v[i]);
            continue;
        }
        full = path_join(dir, rel);
        if (!full || hash_file(full, sha, NULL, &e)) {
            if (!full)
                ERR(&e, ERR_NOMEM, "out of memory");
            if (!c->o->quiet)
                hash__put_err(c->errs, NULL, e.msg);
            err_clear(&e);
            free(full);
            c->n_trouble++;
            status = worst(status, EXIT_TROUBLE);
            continue;
        }
        f = hash__dir_entry(c, prefix, rel, sha, 0);
        if (!f)
            f = hash__dir_entry(c, prefix, NULL, sha, 0);
        if (f) {
            f->matched = 1;
            say(c, full, "OK");
            c->n_ok++;
        } else if (hash__dir_entry(c, prefix, rel, NULL, 1) && !hash__dir_entry(c, prefix, rel, NULL, 0)) {
            /* its entry was checked already (the manifest's own paths, no files given) */
        } else {
            f = hash__dir_entry(c, prefix, rel, NULL, 0);
            for (size_t k = 0; !f && k < c->man.n_f; k++) {
                const char *r = hash__rel_under(c->man.f[k].path, prefix);
                if (r && !c->man.f[k].matched && !dlist_has(&dl, r) &&
                    path_same_base(r, rel))
                    f = &c->man.f[k];
            }
            if (f) {
                const char *r = hash__rel_under(f->path, prefix);
                f->matched = 1;
                if (strcmp(r, rel) == 0)
                    say(c, dir, "file '%s': MISMATCH (sha256 differs from the manifest)", rel);
                else
                    say(c, dir, "file '%s': MISMATCH (sha256 differs from the manifest entry "
                        "'%s')", rel, r);
                c->n_mismatch++;
                c->n_failed++;
            } else {
                say(c, dir, "file '%s': EXTRA (in the directory, not in the manifest)", rel);
                c->n_extra++;
            }
            status = worst(status, EXIT_MISMATCH);
        }
        free(full);
    }
    for (size_t i = 0; i < c->man.n_f; i++) {
        struct man_file *f = &c->man.f[i];
        const char *r = hash__rel_under(f->path, prefix);
        if (!r || f->matched)
            continue;
        f->matched = 1;
        if (c->o->ignore_missing)
            continue;   /* --ignore-missing */
        say(c, dir, "file '%s': MISSING (in the manifest, not in the directory)", r);
        c->n_missing++;
        status = worst(status, EXIT_MISMATCH);
    }
    dirlist_release(&dl);
out:
    for (uint32_t k = 0; k < c->n_shard_rel; k++)
        free(c->shard_rel[k]);
    free(c->shard_rel);
    c->shard_rel = NULL;
    c->n_shard_rel = 0;
    c->hit = NULL;
    c->in_dir = 0;
    return status;
}

int hash__run_check(const struct hash_opts *o, int n_files, char **files, FILE *out, FILE *errs,
                     struct err *e)
{
    struct checker c;
    int status = EXIT_MATCH;
    size_t n_skipped = 0;

    memset(&c, 0, sizeof c);
    c.o = o;
    c.out = out;
    c.errs = errs;
    c.n_threads = o->n_threads > 0 ? o->n_threads : threads_ncpu();
    if (hash__manifest_load(&c.man, o->check, e)) {
        if (!o->quiet)
            hash__put_err(errs, NULL, e->msg);
        return EXIT_TROUBLE;
    }
    for (size_t i = 0; i < c.man.n_m; i++) {
        const struct man_model *mm = &c.man.m[i];
        if (mm->n_raw || mm->has_model || mm->has_whole)
            c.need |= HASH_WANT_RAW;
        if (mm->n_content || mm->has_content)
            c.need |= HASH_WANT_CONTENT;
        if (mm->has_metadata)
            c.need |= HASH_WANT_METADATA;
    }
    for (size_t i = 0; i < c.man.n_m && !o->quiet; i++) {
        const struct man_model *mm = &c.man.m[i];
        if (!mm->keys_form && (mm->has_model || mm->has_content)) {
            hash__errf(errs, "%s: note: written before the model hash covered metadata "
                       "(tokenizer, hyperparameters, chat template): tensors are checked, "
                       "metadata is not until the manifest is rewritten with apr-hash -o",
                       o->check);
            break;
        }
    }
    if (!o->quiet && c.man.n_ignored)
        hash__errf(errs, "%s: note: %zu xxh64/sha1/xxh3/uuid lines ignored (only sha256 is "
                   "checked)", o->check, c.man.n_ignored);
    if (!o->quiet && c.man.n_bad)
        hash__errf(errs, "%s: WARNING: %zu lines are improperly formatted", o->check,
                   c.man.n_bad);
    if (n_files > 0) {
        for (int i = 0; i < n_files; i++)
            status = worst(status, check_one(&c, files[i]));
    } else {
        /* the paths the manifest names (relative to the working directory, as sha256sum -c);
         * --ignore-missing: an entry whose file does not exist is neither checked nor
         * reported */
        for (size_t i = 0; i < c.man.n_f; i++) {
            if (o->ignore_missing && !c.man.f[i].matched && absent(c.man.f[i].path)) {
                c.man.f[i].matched = 1;
                n_skipped++;
                continue;
            }
            if (!c.man.f[i].matched)
                status = worst(status, check_one(&c, c.man.f[i].path));
        }
        for (size_t i = 0; i < c.man.n_m; i++) {
            if (o->ignore_missing && c.man.m[i].path && !c.man.m[i].matched &&
                absent(c.man.m[i].path)) {
                c.man.m[i].matched = 1;
                n_skipped++;
                continue;
            }
            if (!c.man.m[i].matched && c.man.m[i].path)
                status = worst(status, check_one(&c, c.man.m[i].path));
        }
        if (o->ignore_missing && c.n_ok + c.n_failed + c.n_trouble == 0) {
            /* as sha256sum: ignoring every entry is not a success */
            if (!o->quiet)
                hash__errf(errs, "%s: no file was verified (%zu missing, ignored)", o->check,
                           n_skipped);
            status = worst(status, EXIT_MISMATCH);
        }
    }
    for (size_t i = 0; i < c.man.n_f; i++)
        if (!c.man.f[i].matched) {
            say(&c, o->check, "file '%s': MISSING (no file checked matches it)", c.man.f[i].path);
            c.n_missing++;
            status = worst(status, EXIT_MISMATCH);
        }
    for (size_t i = 0; i < c.man.n_m; i++)
        if (!c.man.m[i].matched) {
            say(&c, o->check, "model '%s': MISSING (no file checked matches it)",
                c.man.m[i].path ? c.man.m[i].path : "(unnamed)");
            c.n_missing++;
            status = worst(status, EXIT_MISMATCH);
        }
    if (!o->quiet && status != EXIT_MATCH)
        fprintf(errs, "%s: WARNING: %llu mismatched, %llu missing, %llu extra; %llu of %llu files "
                "failed\n", cli_progname, (unsigned long long)c.n_mismatch,
                (unsigned long long)c.n_missing, (unsigned long long)c.n_extra,
                (unsigned long long)(c.n_failed + c.n_trouble),
                (unsigned long long)(c.n_ok + c.n_failed + c.n_trouble));
    hash__manifest_release(&c.man);
    return status;
}
