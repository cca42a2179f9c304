/*
 * gguf_split.c - split GGUF sets (llama.cpp's gguf-split) read as one model.
 *
 * llama-gguf-split cuts a model into parts named {prefix}-NNNNN-of-MMMMM.gguf (5 digits,
 * numbered from 1) and writes into every part three keys (reference/gguf-quant.md 2.9,
 * landscape.md 1.4):
 *
 *   split.no             UINT16  this part's index, counted from 0 (the name counts from 1)
 *   split.count          UINT16  number of parts
 *   split.tensors.count  INT32   tensors in the whole set
 *
 * The first part holds every other key of the model ("save all metadata in first split
 * only") and may hold no tensor at all (--no-tensor-first-split); each later part holds
 * the split keys and its tensors.  Each part is a complete GGUF file with its own
 * alignment and data section.
 *
 * gguf_open on the first part reads the whole set: every part is parsed and validated
 * on its own (gguf_open_single), then the parts' tensors are appended in part order,
 * each with its file index (model.files[i] is part i+1) and its own absolute offset.
 * The checks: the name of the first part ends in -00001-of-MMMMM.gguf with MMMMM equal
 * to split.count (that is how the other parts are found, as llama.cpp finds them);
 * every part exists, says split.no = its index, the same split.count and the same
 * split.tensors.count; the total number of tensors equals split.tensors.count; tensor
 * names are unique across the set.  The split.* keys describe the container, not the
 * model, so they are dropped from the view (a single-file output must not claim to be
 * a part); every other key comes from the first part.  Keys a later part has beyond the
 * split keys are ignored with a note.
 *
 * A later part opened directly is read alone, keeping its split keys, with a note that
 * names the first part.  A file with split.count 1 (or none) is an ordinary model, and
 * so is one with split.count 0 and split.no 0: what llama-gguf-split --merge writes
 * (llama.cpp's loader reads more parts only when split.count > 1).
 */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_impl.h"
#include "../../common/banned.h"

#define SPLIT_NO      "split.no"
#define SPLIT_COUNT   "split.count"
#define SPLIT_TENSORS "split.tensors.count"
#define SPLIT_SUFFIX  "-00000-of-00000.gguf"   /* its length is the suffix's */
#define SPLIT_MAX     65535u                   /* split.count is a UINT16 */

/*
 * The integer value of a split key into *v: 1 present, 0 absent, -1 present with a
 * non-integer type or a negative value (error set, naming the file and the key).
 */
static int split_key(const struct model *m, const char *path, const char *key, uint64_t *v,
                     struct err *e)
{
    const struct model_kv *kv = model_kv_find(m, key);

    if (!kv)
        return 0;
    if (model_kv_get_u64(m, key, v) != 0)
        return ERR_OFF(e, ERR_FORMAT, kv->off, "%s: key '%s' is %s, not a non-negative integer",
                       path, key, model_vtype_name(kv->val.type));
    return 1;
}

/* Parse "-NNNNN-of-MMMMM.gguf" at the end of path: the part number and the count, or -1. */
static int split_name(const char *path, unsigned *no, unsigned *count)
{
    size_t n = strlen(path), k = sizeof SPLIT_SUFFIX - 1;
    const char *s;
    unsigned a = 0, b = 0;

    if (n <= k)
        return -1;
    s = path + n - k;
    if (s[0] != '-' || memcmp(s + 6, "-of-", 4) != 0 || strcmp(s + 15, ".gguf") != 0)
        return -1;
    for (int i = 0; i < 5; i++) {
        if (s[1 + i] < '0' || s[1 + i] > '9' || s[10 + i] < '0' || s[10 + i] > '9')
            return -1;
        a = a * 10 + (unsigned)(s[1 + i] - '0');
        b = b * 10 + (unsigned)(s[10 + i] - '0');
    }
    *no = a;
    *count = b;
    return 0;
}

/* Drop the split.* keys from m's view (integer values: nothing to free). */
static void drop_split_keys(struct model *m)
{
    uint64_t j = 0;

    for (uint64_t i = 0; i < m->n_kv; i++) {
        struct slice k = m->kv[i].key;
        if (slice_eq_cstr(k, SPLIT_NO) || slice_eq_cstr(k, SPLIT_COUNT) ||
            slice_eq_cstr(k, SPLIT_TENSORS))
            continue;
        m->kv[j++] = m->kv[i];
    }
    m->n_kv = j;
}

/* Move part p (already validated) into m as file index fi. */
static int merge_part(struct model *m, struct model *p, uint32_t fi, struct err *e)
{
    struct model_tensor *t;
    uint64_t extra = 0;

    if (p->n_tensors) {
        t = realloc(m->tensors, (size_t)(m->n_tensors + p->n_tensors) * sizeof *t);
        if (!t)
            return ERR(e, ERR_NOMEM, "%s: out of memory for %llu tensors", p->path,
                       (unsigned long long)(m->n_tensors + p->n_tensors));
        m->tensors = t;
        for (uint64_t i = 0; i < p->n_tensors; i++) {
            t[m->n_tensors + i] = p->tensors[i];
            t[m->n_tensors + i].file = fi;   /* data pointers stay: the mapping moves as is */
        }
        m->n_tensors += p->n_tensors;
    }
    m->files[fi] = p->files[0];
    memset(&p->files[0], 0, sizeof p->files[0]);   /* m owns the mapping now */
    m->n_files = fi + 1;
    m->total_size += p->total_size;
    m->header_size += p->header_size;
    if (!p->gguf_canonical)
        m->gguf_canonical = 0;
    for (uint64_t i = 0; i < p->n_kv; i++) {
        struct slice k = p->kv[i].key;
        extra += !(slice_eq_cstr(k, SPLIT_NO) || slice_eq_cstr(k, SPLIT_COUNT) ||
                   slice_eq_cstr(k, SPLIT_TENSORS));
    }
    if (extra)
        model__note(m, "part %u (%s): %llu keys besides split.* ignored (the first part's "
                       "keys describe the model)", fi + 1, p->path, (unsigned long long)extra);
    for (uint32_t i = 0; i < p->n_notes; i++)
        model__note(m, "part %u: %s", fi + 1, p->notes[i].msg);
    return 0;
}

/* Open the parts after the first (m holds the first, already validated). */
static int open_rest(struct model *m, const char *path, uint64_t count, uint64_t n_total,
                     int has_total, struct err *e)
{
    size_t plen = strlen(path) - (sizeof SPLIT_SUFFIX - 1);
    size_t cap = plen + sizeof SPLIT_SUFFIX;
    struct mfile *files;
    char *pp = malloc(cap);

    if (!pp)
        return ERR(e, ERR_NOMEM, "out of memory");
    files = realloc(m->files, (size_t)count * sizeof *files);
    if (!files) {
        free(pp);
        return ERR(e, ERR_NOMEM, "out of memory for %llu parts", (unsigned long long)count);
    }
    m->files = files;
    memset(files + 1, 0, (size_t)(count - 1) * sizeof *files);
    for (uint64_t i = 1; i < count; i++) {
        struct model p;
        uint64_t no, cnt, tot;
        int hn, hc, ht;

        snprintf(pp, cap, "%.*s-%05u-of-%05u.gguf", (int)plen, path, (unsigned)(i + 1),
                 (unsigned)count);
        if (gguf_open_single(&p, pp, e)) {
            err_prefix(e, "%s: part %llu of %llu of the split set", path,
                       (unsigned long long)(i + 1), (unsigned long long)count);
            free(pp);
            return -1;
        }
        hn = split_key(&p, pp, SPLIT_NO, &no, e);
        hc = hn < 0 ? -1 : split_key(&p, pp, SPLIT_COUNT, &cnt, e);
        ht = hc < 0 ? -1 : split_key(&p, pp, SPLIT_TENSORS, &tot, e);
        if (hn == 0 || hc == 0)
            ERR(e, ERR_FORMAT, "%s: part %llu of the split set of '%s' has no '%s' key", pp,
                (unsigned long long)(i + 1), path, hn == 0 ? SPLIT_NO : SPLIT_COUNT);
        else if (hn > 0 && hc > 0 && ht >= 0 && no != i)
            ERR(e, ERR_FORMAT, "%s: split.no is %llu, but this is part %llu (split.no %llu) of "
                "the set of '%s'", pp, (unsigned long long)no, (unsigned long long)(i + 1),
                (unsigned long long)i, path);
        else if (hn > 0 && hc > 0 && ht >= 0 && cnt != count)
            ERR(e, ERR_FORMAT, "%s: split.count is %llu, the first part '%s' says %llu", pp,
                (unsigned long long)cnt, path, (unsigned long long)count);
        else if (ht > 0 && has_total && tot != n_total)
            ERR(e, ERR_FORMAT, "%s: split.tensors.count is %llu, the first part '%s' says %llu",
                pp, (unsigned long long)tot, path, (unsigned long long)n_total);
        if (!err_ok(e) || merge_part(m, &p, (uint32_t)i, e)) {
            model_close(&p);
            free(pp);
            return -1;
        }
        model_close(&p);
    }
    free(pp);
    return 0;
}

int gguf_open(struct model *m, const char *path, struct err *e)
{
    uint64_t count = 0, no = 0, total = 0;
    unsigned name_no, name_count;
    int hc, hn, ht;

    if (gguf_open_single(m, path, e))
        return -1;
    if ((hc = split_key(m, path, SPLIT_COUNT, &count, e)) < 0 ||
        (hn = split_key(m, path, SPLIT_NO, &no, e)) < 0 ||
        (ht = split_key(m, path, SPLIT_TENSORS, &total, e)) < 0)
        goto fail;
    if (hc == 0 && hn == 0)
        return 0;   /* not a part of a split set */
    if (hc == 0 || hn == 0) {
        ERR(e, ERR_FORMAT, "%s: has '%s' but no '%s'", path, hc ? SPLIT_COUNT : SPLIT_NO,
            hc ? SPLIT_NO : SPLIT_COUNT);
        goto fail;
    }
    if (count > SPLIT_MAX || (count == 0 ? no != 0 : no >= count)) {
        ERR(e, ERR_FORMAT, "%s: split.no %llu and split.count %llu do not describe a part of a "
            "set (1 to %u parts, split.no counted from 0; 0 and 0: a merged file)", path, (unsigned long long)no,
            (unsigned long long)count, SPLIT_MAX);
        goto fail;
    }
    if (no != 0) {
        char first[64];
        snprintf(first, sizeof first, "-00001-of-%05u.gguf", (unsigned)count);
        model__note(m, "part %llu of %llu of a split GGUF set: only this part is read (open "
                       "the first part, *%s, for the whole model)", (unsigned long long)no + 1,
                    (unsigned long long)count, first);
        return 0;
    }
    if (count > 1) {
        if (split_name(path, &name_no, &name_count) != 0 || name_no != 1 ||
            name_count != count) {
            ERR(e, ERR_FORMAT, "%s: first part of a split GGUF set of %llu parts, but its name "
                "does not end in -00001-of-%05u.gguf, so the other parts cannot be found "
                "(llama.cpp's naming)", path, (unsigned long long)count, (unsigned)count);
            goto fail;
        }
        if (open_rest(m, path, count, total, ht > 0, e))
            goto fail;
        if (ht > 0 && m->n_tensors != total) {
            ERR(e, ERR_FORMAT, "%s: split.tensors.count is %llu, but the %llu parts hold %llu "
                "tensors", path, (unsigned long long)total, (unsigned long long)count,
                (unsigned long long)m->n_tensors);
            goto fail;
        }
        if (model__check_tensors(m, e))
            goto fail;
    }
    drop_split_keys(m);
    return 0;
fail:
    model_close(m);
    return -1;
}
