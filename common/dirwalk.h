/*
 * dirwalk.h - every entry under a directory, recursively, as sorted relative paths:
 * one walker for apr-hash (directories as models, manifests) and apr-diff (folders
 * of activation dumps).
 *
 *   struct dirlist L;
 *   if (dir_walk(&L, "model/", 0, 256, 0, NULL, e)) return -1;
 *   for (size_t i = 0; i < L.n; i++) ... L.v[i].rel, L.v[i].kind ...
 *   dirlist_release(&L);
 */
#ifndef APR_TOOLS_DIRWALK_H
#define APR_TOOLS_DIRWALK_H

#include <stddef.h>

#include "err.h"

enum dir_kind { DIRENT_REG, DIRENT_LINK, DIRENT_OTHER };

struct dir_entry {
    char         *rel;    /* path relative to the root ("a/b.bin"), owned */
    enum dir_kind kind;   /* never a directory: those are walked */
};

struct dirlist {
    struct dir_entry *v;
    size_t            n, cap;
};

enum {
    DW_FOLLOW     = 1,    /* stat(): symbolic links are followed; entries that cannot be
                             stat'ed (dangling links) are left out.  Default: lstat(),
                             links listed as DIRENT_LINK, a failing lstat is an error */
    DW_SKIP_DOT   = 2,    /* leave out names starting with '.' */
    DW_DEPTH_STOP = 4,    /* directories deeper than max_depth are left out; default:
                             an ERR_LIMIT error */
};

/*
 * Walk root (its subdirectories up to max_depth levels below it).  keep (may be NULL)
 * chooses the non-directory entries to list by their name; at most max_files of them
 * (0: no limit; more is ERR_LIMIT).  Sorted by strcmp of rel.  0, or -1 with e set
 * (L is then released).  ".", ".." are never listed.
 */
int dir_walk(struct dirlist *L, const char *root, unsigned flags, int max_depth,
             size_t max_files, int (*keep)(const char *name), struct err *e);
void dirlist_release(struct dirlist *L);

#endif
