/*
 * st_hfcache.c - the Hugging Face hub cache layout (huggingface_hub's snapshot_download,
 * transformers' from_pretrained), so that a cached model is read where it lies:
 *
 *   <cache>/models--<org>--<name>/                  the repository directory
 *       blobs/<sha256 | git sha1>                   file contents, named by their hash
 *       refs/main                                   the commit of "main" (text, one line)
 *       snapshots/<commit>/config.json  ->  ../../blobs/<hash>      every file a symlink
 *       snapshots/<commit>/model.safetensors  ->  ../../blobs/<hash>
 *       snapshots/<commit>/sub/dir/file  ->  ../../../../blobs/<hash>
 *
 * A snapshot directory is an ordinary model directory whose files are symlinks: the
 * reader opens them like any file (open(2) follows links).  Tools that list a
 * directory without following links (apr-hash's whole-file mode) ask
 * st_hf_link_in_cache whether a link stays inside the repository directory.  The
 * repository directory itself is also accepted as the model: st_open reads the
 * snapshot that refs/main names (or the only snapshot when there is no refs/main).
 */
#include "st.h"
#include "st_impl.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/mfile.h"
#include "../../common/banned.h"

#define REPO_PREFIX "models--"

/* A revision or snapshot name: [0-9A-Za-z._-], not "." or "..", at most 255 bytes. */
static int rev_ok(const char *s, size_t n)
{
    if (n == 0 || n > 255 || (n <= 2 && s[0] == '.' && (n == 1 || s[1] == '.')))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The only entry of dir/snapshots when there is exactly one: 1 (name in out), 0 when
 * there are none, -1 with e set when several or unreadable. */
static int only_snapshot(const char *snaps, char *out, size_t cap, struct err *e)
{
    DIR *dh = opendir(snaps);
    struct dirent *de;
    int n = 0;

    if (!dh)
        return ERR_SYS(e, "cannot open directory '%s'", snaps);
    while ((errno = 0, de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.' || !rev_ok(de->d_name, strlen(de->d_name)))
            continue;
        if (n++ == 0)
            snprintf(out, cap, "%s", de->d_name);
    }
    closedir(dh);
    if (n > 1)
        return ERR(e, ERR_FORMAT, "%s: %d snapshots and no refs/main: pass the snapshot "
                   "directory you want (%s/<commit>)", snaps, n, snaps);
    return n;
}

int st_hf_repo_snapshot(const char *dir, char **snap, char *rev, size_t revcap, struct err *e)
{
    char *snaps = NULL, *refp = NULL, name[256];
    struct mfile ref;
    int rc = 0;

    *snap = NULL;
    memset(&ref, 0, sizeof ref);
    snaps = st__path_join(dir, slice_from_cstr("snapshots"), e);
    refp = st__path_join(dir, slice_from_cstr("refs/main"), e);
    if (!snaps || !refp) {
        rc = -1;
        goto done;
    }
    if (!is_dir(snaps))
        goto done;   /* not a repository directory */
    if (access(refp, F_OK) == 0) {
        size_t n;
        if (mfile_open(&ref, refp, e)) {
            rc = -1;
            goto done;
        }
        n = (size_t)ref.size;
        while (n > 0 && (ref.data[n - 1] == '\n' || ref.data[n - 1] == '\r'))
            n--;
        if (!ref.data || !rev_ok((const char *)ref.data, n)) {
            rc = ERR(e, ERR_FORMAT, "%s: not a commit name (expected letters, digits, '.', "
                     "'_' or '-')", refp);
            goto done;
        }
        memcpy(name, ref.data, n);
        name[n] = 0;
    } else {
        int k = only_snapshot(snaps, name, sizeof name, e);
        if (k <= 0) {
            rc = k;
            if (k == 0)
                rc = ERR(e, ERR_FORMAT, "%s: Hugging Face cache repository without a "
                         "snapshot", dir);
            goto done;
        }
    }
    *snap = st__path_join(snaps, slice_from_cstr(name), e);
    if (!*snap) {
        rc = -1;
        goto done;
    }
    if (!is_dir(*snap)) {
        rc = ERR(e, ERR_FORMAT, "%s: refs/main names commit '%s', but %s is not a directory "
                 "(the snapshot was deleted?)", dir, name, *snap);
        free(*snap);
        *snap = NULL;
        goto done;
    }
    if (rev)
        snprintf(rev, revcap, "%s", name);
    rc = 1;
done:
    mfile_close(&ref);
    free(snaps);
    free(refp);
    return rc;
}

int st_hf_snapshot_repo(const char *dir, char *repo, size_t repo_cap, char *rev, size_t rev_cap)
{
    char real[PATH_MAX];
    char *s, *rv, *rp;

    if (!realpath(dir, real))
        return 0;
    /* .../models--<org>--<name>/snapshots/<rev> */
    rv = strrchr(real, '/');
    if (!rv || rv == real)
        return 0;
    *rv++ = 0;
    s = strrchr(real, '/');
    if (!s || strcmp(s + 1, "snapshots") != 0 || !rev_ok(rv, strlen(rv)))
        return 0;
    *s = 0;
    rp = strrchr(real, '/');
    if (!rp || strncmp(rp + 1, REPO_PREFIX, sizeof REPO_PREFIX - 1) != 0)
        return 0;
    rp += 1 + strlen(REPO_PREFIX);   /* past "/models--" */
    if (!*rp)
        return 0;
    if (repo) {
        /* "org--name" -> "org/name" (the first "--": org names have no "--") */
        char *sep = strstr(rp, "--");
        if (sep)
            snprintf(repo, repo_cap, "%.*s/%s", (int)(sep - rp), rp, sep + 2);
        else
            snprintf(repo, repo_cap, "%s", rp);
    }
    if (rev)
        snprintf(rev, rev_cap, "%s", rv);
    return 1;
}

int st_hf_link_in_cache(const char *snapshot_dir, const char *path)
{
    char root[PATH_MAX], target[PATH_MAX], *s;
    size_t n;

    /* The repository directory: two levels above the snapshot. */
    if (!realpath(snapshot_dir, root))
        return 0;
    for (int k = 0; k < 2; k++) {
        s = strrchr(root, '/');
        if (!s || s == root)
            return 0;
        *s = 0;
    }
    s = strrchr(root, '/');
    if (!s || strncmp(s + 1, REPO_PREFIX, sizeof REPO_PREFIX - 1) != 0)
        return 0;
    if (!realpath(path, target))
        return 0;
    n = strlen(root);
    return strncmp(target, root, n) == 0 && target[n] == '/';
}
