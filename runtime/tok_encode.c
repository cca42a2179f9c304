/*
 * tok_encode.c - text -> ids, as llama.cpp's llama_vocab::impl::tokenize.
 *
 * 1. Special tokens are cut out of the text (llama.cpp's tokenizer_st_partition):
 *    longest text first, every occurrence, USER_DEFINED always and CONTROL/UNKNOWN
 *    only with TOK_PARSE_SPECIAL; lstrip/rstrip attributes eat ASCII spaces beside them.
 * 2. Each remaining text fragment is tokenized alone:
 *    SentencePiece  " " -> "▁", a "▁" prefix when the fragment starts the text or
 *                   follows a special token (add_space_prefix); symbols are UTF-8
 *                   characters (by lead byte, unchecked), merged in a binary heap of
 *                   adjacent pairs that form a token, highest score first, leftmost
 *                   first on ties; a final symbol that is no token becomes byte tokens.
 *    byte-level BPE the fragment is read as UTF-8 (a bad byte is U+FFFD), split by the
 *                   pre-tokenizer, each piece's bytes mapped to their code points and
 *                   merged by rank (lowest first, leftmost on ties) through the merge
 *                   hash table; a piece seen before in the same call comes from a cache.
 * 3. BOS/EOS with TOK_ADD_SPECIAL when the model's flags say so.
 * Time is O(n log n) in the text length (heaps), memory O(n).
 */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "../common/banned.h"

/* ---- an id vector */

struct ids {
    int32_t *p;
    size_t   n, cap;
};

static int ids_push(struct ids *v, int32_t id, struct err *e)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->p, cap * sizeof *p);
        if (!p)
            return ERR(e, ERR_NOMEM, "out of memory");
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = id;
    return 0;
}

/* ---- the symbol list and the heap shared by both algorithms */

struct sym {
    int32_t  prev, next;
    uint32_t off, n;     /* bytes in the fragment buffer */
    int32_t  id;         /* BPE: symbol id (string table), -1 none */
};

struct bigram {
    float    score;      /* SPM: higher first; BPE: -rank */
    int32_t  left, right;
    uint32_t size;
};

struct heap {
    struct bigram *a;
    size_t n, cap;
};

/* a before b: higher score, then lower left (llama.cpp's comparators) */
static inline int bg_before(const struct bigram *a, const struct bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(struct heap *h, struct bigram b, struct err *e)
{
    size_t i;

    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        struct bigram *p = realloc(h->a, cap * sizeof *p);
        if (!p)
            return ERR(e, ERR_NOMEM, "out of memory");
        h->a = p;
        h->cap = cap;
    }
    i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!bg_before(&b, &h->a[up]))
            break;
        h->a[i] = h->a[up];
        i = up;
    }
    h->a[i] = b;
    return 0;
}

static struct bigram heap_pop(struct heap *h)
{
    struct bigram top = h->a[0], last = h->a[--h->n];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && bg_before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!bg_before(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

struct cache_ent {
    uint64_t h;
    uint32_t off, n, ids_off, n_ids;   /* n == 0: empty slot */
};

struct work {
    struct sym  *sym;
    size_t       n_sym, cap_sym;
    struct heap  heap;
    char        *buf;       /* SPM: the escaped fragment; BPE: the sanitized text */
    size_t       cap_buf;
    size_t      *rng;       /* BPE: piece ranges */
    size_t       n_rng, cap_rng;
    /* BPE piece cache: raw bytes -> ids */
    struct cache_ent *cache;
    size_t       cache_mask, cache_n;
    struct ids   pool;      /* cached ids */
    const char  *cache_text;
};

static void work_release(struct work *w)
{
    free(w->sym);
    free(w->heap.a);
    free(w->buf);
    free(w->rng);
    free(w->cache);
    free(w->pool.p);
}

static int sym_reserve(struct work *w, size_t n, struct err *e)
{
    if (n > w->cap_sym) {
        struct sym *p;
        if (n > (size_t)INT32_MAX)
            return ERR(e, ERR_LIMIT, "text too long to tokenize (%zu symbols)", n);
        p = realloc(w->sym, n * sizeof *p);
        if (!p)
            return ERR(e, ERR_NOMEM, "out of memory");
        w->sym = p;
        w->cap_sym = n;
    }
    return 0;
}

static int buf_reserve(struct work *w, size_t n, struct err *e)
{
    if (n > w->cap_buf) {
        char *p = realloc(w->buf, n);
        if (!p)
            return ERR(e, ERR_NOMEM, "out of memory");
        w->buf = p;
        w->cap_buf = n;
    }
    return 0;
}

/* ---- SentencePiece */

static int32_t vocab_find(const struct tokenizer *t, const char *p, size_t n)
{
    int32_t id = tok_strtab_find(&t->st, p, n);
    return id >= 0 && (uint32_t)id < t->n_vocab ? id : -1;
}

static int spm_add_bigram(const struct tokenizer *t, struct work *w, const char *buf, int32_t l,
                          int32_t r, struct err *e)
{
    struct bigram b;
    int32_t id;

    if (l < 0 || r < 0)
        return 0;
    b.size = w->sym[l].n + w->sym[r].n;
    id = vocab_find(t, buf + w->sym[l].off, b.size);
    if (id < 0)
        return 0;
    b.score = t->score[id];
    b.left = l;
    b.right = r;
    return heap_push(&w->heap, b, e);
}

static const uint8_t lead_len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };

/* Symbols (one UTF-8 character each, by the lead byte's high bits, unchecked, as
 * llama.cpp) of the escaped text b[0, n), merged, then written out. */
static int spm_run(const struct tokenizer *t, struct work *w, const char *b, size_t n,
                   struct ids *out, struct err *e)
{
    w->n_sym = 0;
    if (n == 0)
        return 0;
    if (sym_reserve(w, n, e))
        return -1;
    for (size_t off = 0; off < n;) {
        size_t k = lead_len[(uint8_t)b[off] >> 4];
        struct sym *s = &w->sym[w->n_sym];
        if (k > n - off)
            k = n - off;
        s->off = (uint32_t)off;
        s->n = (uint32_t)k;
        s->prev = (int32_t)w->n_sym - 1;
        off += k;
        s->next = off == n ? -1 : (int32_t)w->n_sym + 1;
        s->id = -1;
        w->n_sym++;
    }
    w->heap.n = 0;
    for (size_t i = 1; i < w->n_sym; i++)
        if (spm_add_bigram(t, w, b, (int32_t)i - 1, (int32_t)i, e))
            return -1;
    while (w->heap.n) {
        struct bigram bg = heap_pop(&w->heap);
        struct sym *l = &w->sym[bg.left], *r = &w->sym[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->sym[r->next].prev = bg.left;
        if (spm_add_bigram(t, w, b, l->prev, bg.left, e) ||
            spm_add_bigram(t, w, b, bg.left, l->next, e))
            return -1;
    }
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const struct sym *s = &w->sym[i];
        int32_t id = vocab_find(t, b + s->off, s->n);
        if (id >= 0) {
            if (ids_push(out, id, e))
                return -1;
            continue;
        }
        for (uint32_t j = 0; j < s->n; j++) {
            uint8_t c = (uint8_t)b[s->off + j];
            id = t->byte_tok[c];
            if (id < 0)
                return ERR(e, ERR_FORMAT, "byte 0x%02X has no token (no <0x%02X> and no "
                           "one-byte token in the vocabulary)", c, c);
            if (ids_push(out, id, e))
                return -1;
        }
    }
    return 0;
}

/* Append raw[0, n) to w->buf at *len with " " -> "▁". */
static int spm_escape(struct work *w, size_t *len, const char *raw, size_t n, struct err *e)
{
    size_t spaces = 0, o = *len;

    for (size_t i = 0; i < n; i++)
        spaces += raw[i] == ' ';
    if (n > (SIZE_MAX - o) / 3 || o + n + 2 * spaces + 3 > UINT32_MAX)
        return ERR(e, ERR_LIMIT, "text too long to tokenize (%zu bytes in one piece)", n);
    if (buf_reserve(w, o + n + 2 * spaces + 3, e))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == ' ') {
            memcpy(w->buf + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            w->buf[o++] = raw[i];
        }
    }
    *len = o;
    return 0;
}

/*
 * One text fragment: " " -> "▁", a "▁" in front when asked.  When no token holds "▁"
 * after another character (t->spm_split), no merge can join a "▁" to the character
 * before it, so the text is cut before each space that follows a non-space and each
 * piece is merged alone: the ids are those of the whole (pairs compare by score, then
 * position, and never across a cut), in small buffers.  A cut is only taken where the
 * symbols of the piece end exactly there (a truncated UTF-8 lead byte before a space
 * takes bytes of its "▁" as llama.cpp's symbol splitting does).
 */
static int spm_fragment(const struct tokenizer *t, struct work *w, const char *text, size_t len,
                        int prefix, struct ids *out, struct err *e)
{
    size_t n = 0, walk = 0, a = 0;

    if (prefix) {
        if (buf_reserve(w, 3, e))
            return -1;
        memcpy(w->buf, "\xe2\x96\x81", 3);
        n = 3;
    }
    if (!t->spm_split) {
        if (spm_escape(w, &n, text, len, e))
            return -1;
        return spm_run(t, w, w->buf, n, out, e);
    }
    while (a < len) {
        size_t p = a + 1;
        while (p < len && !(text[p] == ' ' && text[p - 1] != ' '))
            p++;
        if (spm_escape(w, &n, text + a, p - a, e))
            return -1;
        a = p;
        /* walk the symbols: does the last one end at n? */
        while (walk < n) {
            size_t k = lead_len[(uint8_t)w->buf[walk] >> 4];
            if (k > n - walk)
                break;
            walk += k;
        }
        if (walk < n && a < len)
            continue;   /* a truncated character: take the next piece too */
        if (spm_run(t, w, w->buf, n, out, e))
            return -1;
        n = 0;
        walk = 0;
    }
    if (n && spm_run(t, w, w->buf, n, out, e))   /* only the prefix */
        return -1;
    return 0;
}

/* ---- byte-level BPE */

/* llama.cpp's reading of UTF-8 (unicode_cpts_from_utf8): lead byte decides the length,
 * continuation bytes are checked, overlong forms are accepted and re-encoded; a bad
 * byte is U+FFFD.  Surrogates and code points past U+10FFFF (which llama.cpp cannot
 * encode again) become U+FFFD too, so the regexes always see valid UTF-8. */
static size_t sanitize(const char *src, size_t n, char *dst)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0, i = 0;

    while (i < n) {
        unsigned c = s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            dst[o++] = (char)c;
            i++;
            continue;
        }
        k = !(c & 0x40) ? 0 : !(c & 0x20) ? 2 : !(c & 0x10) ? 3 : !(c & 0x08) ? 4 : 0;
        if (k == 0 || i + k > n) {
            k = 0;
        } else {
            for (size_t j = 1; j < k; j++)
                if ((s[i + j] & 0xC0) != 0x80)
                    k = 0;
        }
        if (k == 0) {
            cp = 0xFFFD;
            i++;
        } else {
            cp = c & (0x7Fu >> k);
            for (size_t j = 1; j < k; j++)
                cp = cp << 6 | (s[i + j] & 0x3F);
            i += k;
            if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
                cp = 0xFFFD;
        }
        if (cp < 0x80) {
            dst[o++] = (char)cp;
        } else if (cp < 0x800) {
            dst[o++] = (char)(0xC0 | cp >> 6);
            dst[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            dst[o++] = (char)(0xE0 | cp >> 12);
            dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            dst[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            dst[o++] = (char)(0xF0 | cp >> 18);
            dst[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            dst[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return o;
}

static int bpe_add_bigram(const struct tokenizer *t, struct work *w, int32_t l, int32_t r,
                          struct err *e)
{
    struct bigram b;
    int32_t res, rank;

    if (l < 0 || r < 0 || w->sym[l].id < 0 || w->sym[r].id < 0)
        return 0;
    rank = tok__merge_find(t, w->sym[l].id, w->sym[r].id, &res);
    if (rank < 0)
        return 0;
    b.score = -(float)rank;   /* exact: ranks < 2^24 */
    b.left = l;
    b.right = r;
    b.size = w->sym[l].n + w->sym[r].n;
    return heap_push(&w->heap, b, e);
}

/* One piece of raw bytes p[0, n) -> ids. */
static int bpe_piece(const struct tokenizer *t, struct work *w, const char *p, size_t n,
                     struct ids *out, struct err *e)
{
    char enc[64];

    if (t->ignore_merges) {   /* the whole piece is a token: take it as is */
        char *ep = n * 2 <= sizeof enc ? enc : malloc(n * 2);
        size_t en = 0;
        int32_t id;
        if (!ep)
            return ERR(e, ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            uint8_t c = (uint8_t)p[i];
            memcpy(ep + en, t->byte_enc[c], t->byte_enc_len[c]);
            en += t->byte_enc_len[c];
        }
        id = vocab_find(t, ep, en);
        if (ep != enc)
            free(ep);
        if (id >= 0)
            return ids_push(out, id, e);
    }
    w->n_sym = 0;
    if (sym_reserve(w, n, e))
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct sym *s = &w->sym[i];
        s->off = (uint32_t)i;
        s->n = 1;
        s->prev = (int32_t)i - 1;
        s->next = i + 1 == n ? -1 : (int32_t)i + 1;
        s->id = t->byte_sym[(uint8_t)p[i]];
    }
    w->n_sym = n;
    w->heap.n = 0;
    for (size_t i = 1; i < n; i++)
        if (bpe_add_bigram(t, w, (int32_t)i - 1, (int32_t)i, e))
            return -1;
    while (w->heap.n) {
        struct bigram bg = heap_pop(&w->heap);
        struct sym *l = &w->sym[bg.left], *r = &w->sym[bg.right];
        int32_t res = -1;
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size)
            continue;
        tok__merge_find(t, l->id, r->id, &res);
        l->id = res;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->sym[r->next].prev = bg.left;
        if (bpe_add_bigram(t, w, l->prev, bg.left, e) || bpe_add_bigram(t, w, bg.left, l->next, e))
            return -1;
    }
    for (int32_t i = n ? 0 : -1; i != -1; i = w->sym[i].next) {
        const struct sym *s = &w->sym[i];
        if (s->id >= 0 && (uint32_t)s->id < t->n_vocab) {
            if (ids_push(out, s->id, e))
                return -1;
            continue;
        }
        /* not a token: llama.cpp looks up each byte of the piece's UTF-8 text alone */
        for (uint32_t j = 0; j < s->n; j++) {
            uint8_t c = (uint8_t)p[s->off + j];
            for (int k = 0; k < t->byte_enc_len[c]; k++) {
                int32_t id = vocab_find(t, &t->byte_enc[c][k], 1);
                if (id >= 0 && ids_push(out, id, e))
                    return -1;
            }
        }
    }
    return 0;
}

#define CACHE_MAX_PIECE 256

static int cache_grow(struct work *w, struct err *e)
{
    size_t cap = w->cache ? (w->cache_mask + 1) * 2 : 4096;
    struct cache_ent *nc = calloc(cap, sizeof *nc);
    if (!nc)
        return ERR(e, ERR_NOMEM, "out of memory");
    if (w->cache) {
        for (size_t i = 0; i <= w->cache_mask; i++) {
            size_t j;
            if (!w->cache[i].n)
                continue;
            j = (size_t)w->cache[i].h & (cap - 1);
            while (nc[j].n)
                j = (j + 1) & (cap - 1);
            nc[j] = w->cache[i];
        }
        free(w->cache);
    }
    w->cache = nc;
    w->cache_mask = cap - 1;
    return 0;
}

/* text: the sanitized buffer (w->buf); the cache keys point into it */
static int bpe_cached(const struct tokenizer *t, struct work *w, const char *text, size_t a,
                      size_t b, struct ids *out, struct err *e)
{
    size_t n = b - a, i;
    uint64_t h;
    size_t before;

    if (n > CACHE_MAX_PIECE || n == 0)
        return bpe_piece(t, w, text + a, n, out, e);
    if ((!w->cache || w->cache_n * 2 >= w->cache_mask) && cache_grow(w, e))
        return -1;
    h = tok_hash(text + a, n);
    i = (size_t)h & w->cache_mask;
    while (w->cache[i].n) {
        if (w->cache[i].h == h && w->cache[i].n == n &&
            memcmp(w->cache_text + w->cache[i].off, text + a, n) == 0) {
            const int32_t *src = w->pool.p + w->cache[i].ids_off;
            for (uint32_t k = 0; k < w->cache[i].n_ids; k++)
                if (ids_push(out, src[k], e))
                    return -1;
            return 0;
        }
        i = (i + 1) & w->cache_mask;
    }
    before = out->n;
    if (bpe_piece(t, w, text + a, n, out, e))
        return -1;
    if (w->pool.n + (out->n - before) > UINT32_MAX)
        return 0;
    w->cache[i].h = h;
    w->cache[i].off = (uint32_t)a;
    w->cache[i].n = (uint32_t)n;
    w->cache[i].ids_off = (uint32_t)w->pool.n;
    w->cache[i].n_ids = (uint32_t)(out->n - before);
    for (size_t k = before; k < out->n; k++)
        if (ids_push(&w->pool, out->p[k], e))
            return -1;
    w->cache_n++;
    return 0;
}

static int bpe_fragment(const struct tokenizer *t, struct work *w, const char *text, size_t len,
                        struct ids *out, struct err *e)
{
    size_t n;

    if (len > (SIZE_MAX - 16) / 3 || len > UINT32_MAX / 3)
        return ERR(e, ERR_LIMIT, "text too long to tokenize (%zu bytes)", len);
    if (buf_reserve(w, len * 3 + 1, e))
        return -1;
    n = sanitize(text, len, w->buf);
    if (t->normalize && n) {
        static const utf8proc_option_t opt[] = { 0, UTF8PROC_COMPOSE,
            UTF8PROC_COMPOSE | UTF8PROC_COMPAT, UTF8PROC_DECOMPOSE,
            UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT };
        utf8proc_uint8_t *nb = NULL;
        utf8proc_ssize_t nn = utf8proc_map((const utf8proc_uint8_t *)w->buf, (utf8proc_ssize_t)n,
                                           &nb, UTF8PROC_STABLE | opt[t->normalize]);
        if (nn < 0)
            return ERR(e, ERR_INTERNAL, "Unicode normalization failed: %s", utf8proc_errmsg(nn));
        free(w->buf);
        w->buf = (char *)nb;
        w->cap_buf = (size_t)nn + 1;
        n = (size_t)nn;
    }
    w->n_rng = 0;
    if (tok__pre_split(&t->pre, w->buf, n, &w->rng, &w->n_rng, &w->cap_rng, e))
        return -1;
    /* the cache keys are offsets into this fragment's buffer: start afresh */
    if (w->cache) {
        memset(w->cache, 0, (w->cache_mask + 1) * sizeof *w->cache);
        w->cache_n = 0;
        w->pool.n = 0;
    }
    w->cache_text = w->buf;
    for (size_t i = 0; i < w->n_rng; i++)
        if (bpe_cached(t, w, w->buf, w->rng[2 * i], w->rng[2 * i + 1], out, e))
            return -1;
    return 0;
}

/* ---- special-token partition */

struct frag {
    int32_t tok;       /* -1: text */
    size_t  off, len;
};

struct frags {
    struct frag *p;
    size_t n, cap;
};

static int frag_push(struct frags *f, int32_t tok, size_t off, size_t len, struct err *e)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct frag *p = realloc(f->p, cap * sizeof *p);
        if (!p)
            return ERR(e, ERR_NOMEM, "out of memory");
        f->p = p;
        f->cap = cap;
    }
    f->p[f->n].tok = tok;
    f->p[f->n].off = off;
    f->p[f->n].len = len;
    f->n++;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int partition(const struct tokenizer *t, const char *text, size_t len, int parse_special,
                     struct frags *f, struct err *e)
{
    struct frags nf = { NULL, 0, 0 };

    if (len && frag_push(f, -1, 0, len, e))
        return -1;
    for (uint32_t s = 0; s < t->n_special; s++) {
        int32_t id = t->special[s];
        uint16_t at = t->attr[id];
        size_t tl;
        const char *tt = tok_str(&t->st, id, &tl);
        int any = 0;
        if (!parse_special && (at & (TA_CONTROL | TA_UNKNOWN)))
            continue;
        if (tl == 0)
            continue;
        for (size_t i = 0; i < f->n && !any; i++)
            any = f->p[i].tok < 0 && f->p[i].len >= tl &&
                  memmem(text + f->p[i].off, f->p[i].len, tt, tl) != NULL;
        if (!any)
            continue;
        nf.n = 0;
        for (size_t i = 0; i < f->n; i++) {
            struct frag fr = f->p[i];
            size_t off = fr.off, end = fr.off + fr.len;
            if (fr.tok >= 0) {
                if (frag_push(&nf, fr.tok, fr.off, fr.len, e))
                    goto fail;
                continue;
            }
            for (;;) {
                const char *m = off < end ? memmem(text + off, end - off, tt, tl) : NULL;
                size_t ms, le;
                if (!m) {
                    if (off < end && frag_push(&nf, -1, off, end - off, e))
                        goto fail;
                    break;
                }
                ms = (size_t)(m - text);
                le = ms - off;
                if (at & TA_LSTRIP)
                    while (le > 0 && is_space(text[off + le - 1]))
                        le--;
                if (le > 0 && frag_push(&nf, -1, off, le, e))
                    goto fail;
                if (frag_push(&nf, id, 0, 0, e))
                    goto fail;
                off = ms + tl;
                if (at & TA_RSTRIP)
                    while (off < end && is_space(text[off]))
                        off++;
            }
        }
        {
            struct frags tmp = *f;
            *f = nf;
            nf = tmp;
        }
    }
    free(nf.p);
    return 0;
fail:
    free(nf.p);
    return -1;
}

int tok_encode(const struct tokenizer *t, const char *text, size_t len, unsigned flags,
               int32_t **ids_out, size_t *n_out, struct err *e)
{
    struct frags f = { NULL, 0, 0 };
    struct ids out = { NULL, 0, 0 };
    struct work w;
    int add = (flags & TOK_ADD_SPECIAL) != 0, prev_special = 1;

    *ids_out = NULL;
    *n_out = 0;
    memset(&w, 0, sizeof w);
    if (!text && len)
        return ERR(e, ERR_USAGE, "tok_encode: no text");
    if (partition(t, text, len, (flags & TOK_PARSE_SPECIAL) != 0, &f, e))
        goto fail;
    if (add && t->add_bos) {
        if (t->bos < 0) {
            ERR(e, ERR_FORMAT, "the model asks for a BOS token but has none");
            goto fail;
        }
        if (ids_push(&out, t->bos, e))
            goto fail;
    }
    for (size_t i = 0; i < f.n; i++) {
        const struct frag *fr = &f.p[i];
        if (fr->tok >= 0) {
            if (ids_push(&out, fr->tok, e))
                goto fail;
            prev_special = 1;
            continue;
        }
        if (t->kind == TOK_SPM) {
            if (spm_fragment(t, &w, text + fr->off, fr->len, t->add_space_prefix && prev_special,
                             &out, e))
                goto fail;
        } else if (bpe_fragment(t, &w, text + fr->off, fr->len, &out, e)) {
            goto fail;
        }
        prev_special = 0;
    }
    if (add && t->add_eos) {
        if (t->eos < 0) {
            ERR(e, ERR_FORMAT, "the model asks for an EOS token but has none");
            goto fail;
        }
        if (ids_push(&out, t->eos, e))
            goto fail;
    }
    free(f.p);
    work_release(&w);
    if (!out.p) {
        out.p = malloc(sizeof *out.p);
        if (!out.p)
            return ERR(e, ERR_NOMEM, "out of memory");
    }
    *ids_out = out.p;
    *n_out = out.n;
    return 0;
fail:
    free(f.p);
    free(out.p);
    work_release(&w);
    return -1;
}
