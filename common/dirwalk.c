/*
 * dirwalk.c - see dirwalk.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dirwalk.h"
#include "path.h"
#include "vec.h"
#include "banned.h"

struct walk {
    struct dirlist *L;
    const char     *root;
    unsigned        flags;
    int             max_depth;
    size_t          max_files;
    int           (*keep)(const char *name);
};

static int walk(struct walk *W, const char *rel, int depth, struct err *e);

/* One entry d_name of directory rel (NULL: the root itself). */
static int entry(struct walk *W, const char *rel, const char *name, int depth, struct err *e)
{
    struct dirlist *L = W->L;
    char *r = rel ? path_join(rel, name) : strdup(name), *full = r ? path_join(W->root, r) : NULL;
    struct stat st;
    int rc = 0;

    if (!r || !full) {
        rc = ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((W->flags & DW_FOLLOW ? stat(full, &st) : lstat(full, &st)) != 0) {
        if (!(W->flags & DW_FOLLOW))
            rc = ERR_SYS(e, "cannot open '%s'", full);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = walk(W, r, depth + 1, e);
        goto out;
    }
    if (W->keep && !W->keep(name))
        goto out;
    if (W->max_files && L->n >= W->max_files) {
        rc = ERR(e, ERR_LIMIT, "'%s': more than %zu files", W->root, W->max_files);
        goto out;
    }
    if (vec_reserve((void **)&L->v, &L->cap, L->n + 1, sizeof *L->v, e)) {
        rc = -1;
        goto out;
    }
    L->v[L->n].rel = r;
    L->v[L->n].kind = S_ISREG(st.st_mode) ? DIRENT_REG : S_ISLNK(st.st_mode) ? DIRENT_LINK
                                                                            : DIRENT_OTHER;
    L->n++;
    r = NULL;
out:
    free(r);
    free(full);
    return rc;
}

static int walk(struct walk *W, const char *rel, int depth, struct err *e)
{
    char *dir;
    DIR *dh;
    int rc = 0;

    if (depth > W->max_depth) {
        if (W->flags & DW_DEPTH_STOP)
            return 0;
        return ERR(e, ERR_LIMIT, "'%s': directories nested deeper than %d levels", W->root,
                   W->max_depth);
    }
    dir = rel ? path_join(W->root, rel) : strdup(W->root);
    if (!dir)
        return ERR(e, ERR_NOMEM, "out of memory");
    dh = opendir(dir);
    if (!dh) {
        rc = ERR_SYS(e, "cannot open directory '%s'", dir);
        free(dir);
        return rc;
    }
    while (!rc) {
        struct dirent *de;
        errno = 0;
        de = readdir(dh);
        if (!de) {
            if (errno)
                rc = ERR_SYS(e, "cannot read directory '%s'", dir);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            ((W->flags & DW_SKIP_DOT) && de->d_name[0] == '.'))
            continue;
        rc = entry(W, rel, de->d_name, depth, e);
    }
    closedir(dh);
    free(dir);
    return rc;
}

static int by_rel(const void *a, const void *b)
{
    return strcmp(((const struct dir_entry *)a)->rel, ((const struct dir_entry *)b)->rel);
}

int dir_walk(struct dirlist *L, const char *root, unsigned flags, int max_depth,
             size_t max_files, int (*keep)(const char *name), struct err *e)
{
    struct walk W = { L, root, flags, max_depth, max_files, keep };

    memset(L, 0, sizeof *L);
    if (walk(&W, NULL, 0, e)) {
        dirlist_release(L);
        return -1;
    }
    if (L->n > 1)
        qsort(L->v, L->n, sizeof *L->v, by_rel);
    return 0;
}

void dirlist_release(struct dirlist *L)
{
    if (!L)
        return;
    for (size_t i = 0; i < L->n; i++)
        free(L->v[i].rel);
    free(L->v);
    memset(L, 0, sizeof *L);
}
