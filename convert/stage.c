/*
 * stage.c - staging beside the target and the commit (renames into place).
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

/* ---- staging and commit */

int cv_stage_make(struct cv *c, const char *target_dir, struct err *e)
{
    size_t n = strlen(target_dir) + 64;
    c->stage = malloc(n);
    if (!c->stage)
        return ERR(e, ERR_NOMEM, "out of memory");
    snprintf(c->stage, n, "%s/.apr-convert.tmp.XXXXXX", target_dir);
    if (!mkdtemp(c->stage)) {
        ERR_SYS(e, "cannot create a staging directory in '%s'", target_dir);
        free(c->stage);
        c->stage = NULL;
        return -1;
    }
    return 0;
}

/* Remove the staging directory and whatever is left in it (one level: our files). */
void cv_stage_remove(struct cv *c)
{
    DIR *d;
    struct dirent *de;

    if (!c->stage)
        return;
    d = opendir(c->stage);
    if (d) {
        while ((de = readdir(d)) != NULL) {
            char p[4096];
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", c->stage, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(c->stage);
    free(c->stage);
    c->stage = NULL;
}

char * cv_dir_of(const char *path)
{
    const char *sl = strrchr(path, '/');
    if (!sl)
        return strdup(".");
    if (sl == path)
        return strdup("/");
    return strndup(path, (size_t)(sl - path));
}

int cv_is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Refuse to overwrite (without -f), then make the staging directory beside the target
 * and the output's path inside it (c->tdir, c->stage, c->stage_out). */
int cv_stage_target(struct cv *c, struct err *e)
{
    const char *out = c->out;
    struct stat so;
    size_t n;

    c->tdir = c->dir_out ? (str_ends_with_ci(out, ".json") ? cv_dir_of(out) : strdup(out))
                         : cv_dir_of(out);
    if (!c->tdir)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (c->dir_out) {
        if (mkdir(c->tdir, 0777) != 0 && errno != EEXIST)
            return ERR_SYS(e, "cannot create '%s'", c->tdir);
        if (!c->o->force && (cv_exists(c->tdir, "model.safetensors") ||
                             cv_exists(c->tdir, "model.safetensors.index.json") ||
                             cv_exists(c->tdir, "config.json")))
            return ERR(e, ERR_IO, "%s: already holds a model (use -f to replace it)", c->tdir);
    } else if (!c->o->force && !c->o->split_bytes && lstat(out, &so) == 0) {
        /* (a split set's part names are known once written: cv_commit_split checks) */
        return ERR(e, ERR_IO, "%s: exists (use -f to replace it)", out);
    }
    if (cv_stage_make(c, c->tdir, e))
        return -1;
    n = strlen(c->stage) + strlen(path_base(out, NULL)) + 2;
    c->stage_out = malloc(n);
    if (!c->stage_out)
        return ERR(e, ERR_NOMEM, "out of memory");
    snprintf(c->stage_out, n, "%s/%s", c->stage, c->dir_out ? "" : path_base(out, NULL));
    if (c->dir_out)
        c->stage_out[strlen(c->stage)] = 0;
    return 0;
}

/* The name of part no of the split set written for path (gguf_split_path). */
int cv_split_part(const struct cv *c, const char *path, uint32_t no, char *buf, size_t cap,
                  struct err *e)
{
    if (gguf_split_path(path, no, c->n_parts, buf, cap))
        return ERR(e, ERR_LIMIT, "%s: name too long for a split part", path);
    return 0;
}

/* A GGUF split set, complete (and verified) in the staging directory: refuse to replace
 * any part without -f, then give every part its name.  A set of another count under
 * the same prefix is not touched (it does not share names with this one). */
int cv_commit_split(struct cv *c, struct err *e)
{
    char from[4096], to[4096];
    struct stat st;

    for (uint32_t p = 1; !c->o->force && p <= c->n_parts; p++) {
        if (cv_split_part(c, c->out, p, to, sizeof to, e))
            return -1;
        if (lstat(to, &st) == 0)
            return ERR(e, ERR_IO, "%s: exists (use -f to replace it)", to);
    }
    for (uint32_t p = 1; p <= c->n_parts; p++) {
        if (cv_split_part(c, c->stage_out, p, from, sizeof from, e) ||
            cv_split_part(c, c->out, p, to, sizeof to, e))
            return -1;
        if (rename(from, to) != 0)
            return ERR_SYS(e, "cannot rename '%s' to '%s'", from, to);
    }
    return 0;
}
