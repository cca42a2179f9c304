/*
 * tok_pre.c - byte-level BPE pre-tokenizers: lists of regexes through PCRE2.
 *
 * Each regex of a list splits every piece further, keeping the matches and the text
 * between them as pieces (Hugging Face's Split with behavior "Isolated"; llama.cpp's
 * unicode_regex_split).  A regex never sees past its piece: the piece is the whole
 * subject, so look-ahead and "$" stop at its end.
 *
 * The lists per tokenizer.ggml.pre are llama.cpp's (src/llama-vocab.cpp,
 * llm_tokenizer_bpe), which for Llama 3 and Qwen2 spell Hugging Face's
 * "(?i:'s|'t|...)" as "'[sS]|'[tT]|..." (ASCII-only case folding, as tiktoken).
 * Options: UTF, UCP (\p{L}, \p{N}, \p{P}, \s are Unicode properties; \s includes
 * U+0085 and U+00A0 as llama.cpp's tables do), DOLLAR_ENDONLY ("$" is the end of the
 * piece, as in the ECMAScript regexes llama.cpp runs).  Texts are made valid UTF-8
 * before (tok_encode.c), so matching skips PCRE2's UTF check.  Patterns are JIT-compiled
 * when the platform allows, else interpreted.
 *
 * Repeats that end an alternative are written possessive ("\\p{L}++"): nothing after
 * them can fail, so they match exactly what the greedy form matches, without keeping
 * backtracking state per character (20x faster on long runs of letters).
 *
 * Why PCRE2 (with UCP) rather than Oniguruma, which Hugging Face tokenizers uses: both
 * read these patterns the same way, but libonig exports the POSIX names regcomp and
 * regexec, which silently replace libc's in every program that links it (apr-diff
 * --filter broke that way), and PCRE2's JIT is several times faster.
 */
#include "tok_impl.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "../common/sbuf.h"
#include "../common/banned.h"

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}++| ?\\p{N}++| ?[^\\s\\p{L}\\p{N}]++|\\s+(?!\\S)"
#define RE_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}++|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s*[\\r\\n]++|\\s+(?!\\S)|\\s++"
#define RE_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}++|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s*[\\r\\n]++|\\s+(?!\\S)|\\s++"
#define RE_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]++"

static const char re_deepseek_llm_letters[] =
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc"
    "-\xc6\xbf\xc7\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd"
    "\xbb-\xcd\xbd\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3"
    "-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1"
    "\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2"
    "\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7"
    "\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1"
    "\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd"
    "\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4"
    "\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1"
    "\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf"
    "\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87"
    "\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2"
    "\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84"
    "\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83"
    "\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2"
    "\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a"
    "\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87\xea\x9e\x8b-\xea\x9e\x8e"
    "\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef"
    "\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f"
    "\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2"
    "\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91"
    "\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+"
    ;

struct pre_def {
    const char *names;     /* space-separated tokenizer.ggml.pre values */
    const char *re[6];
};

static const struct pre_def pre_defs[] = {
    { "default", { "[\\p{P}\\$\\+<=>\\^~\\|]++", RE_GPT2, "\\p{N}++", "[0-9][0-9][0-9]" } },
    { "llama3 llama-v3 llama-bpe falcon3 dbrx smaug-bpe chatglm-bpe", { RE_LLAMA3 } },
    { "deepseek-llm", { "[\r\n]", re_deepseek_llm_letters,
        "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f"
        "\xe3\x80\x80-\xe3\x80\x82]+", "\\s+$", RE_CJK, "\\p{N}+" } },
    { "deepseek-v3", { "\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f"
        "\xe3\x82\xa0-\xe3\x83\xbf]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
        "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+" } },
    { "deepseek-coder", { "[\r\n]", "\\s?\\p{L}++", "\\s?\\p{P}++", RE_CJK, "\\p{N}" } },
    { "falcon", { "[\\p{P}\\$\\+<=>\\^~\\|`]++", RE_GPT2, "[0-9][0-9][0-9]" } },
    { "starcoder refact command-r smollm codeshell exaone minerva-7b", { "\\p{N}", RE_GPT2 } },
    { "gpt-2 phi-2 jina-es jina-de gigachat jina-v1-en jina-v2-es jina-v2-de jina-v2-code "
      "roberta-bpe mpt olmo jais", { RE_GPT2 } },
    { "qwen2 deepseek-r1-qwen stablelm2 megrez", { RE_QWEN2 } },
    { "poro-chat bloom gpt3-finnish", { " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c"
        "\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+" } },
    { "viking", { " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4"
        "\xdb\x94\xd8\x8c)]+", "\\p{N}" } },
    { "tekken", { "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|"
        "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?"
        "[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
    { "chameleon", { "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
        "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2 } },
};

static int name_in(const char *names, const char *pre)
{
    size_t n = strlen(pre);
    const char *p = names;

    while (*p) {
        size_t k = strcspn(p, " ");
        if (k == n && memcmp(p, pre, n) == 0)
            return 1;
        p += k;
        while (*p == ' ')
            p++;
    }
    return 0;
}

static int compile(struct tok_pre *p, const char *pat, size_t len, struct err *e)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re;

    if (p->n >= TOK_MAX_REGEX)
        return ERR(e, ERR_LIMIT, "more than %d pre-tokenizer regexes", TOK_MAX_REGEX);
    re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec,
                       &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return ERR(e, ERR_FORMAT, "pre-tokenizer regex '%.*s': %s at offset %zu",
                   (int)(len > 80 ? 80 : len), pat, (const char *)msg, (size_t)eo);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* a failure leaves the interpreter */
    p->re[p->n++] = re;
    return 0;
}

/* ---- tokenizer.json: the pre_tokenizer and normalizer as Hugging Face runs them */

/* HF ByteLevel's split pattern (use_regex: true) is GPT-2's */
static int hf_pre(struct tokenizer *t, const struct json_doc *d, int i, int depth, struct err *e)
{
    struct sbuf b = SBUF_INIT(1 << 20);
    int ty = json_get(d, i, "type"), rc = -1;

    if (json_is_null(d, i))
        return 0;
    if (depth > 4 || ty < 0 || !json_is(d, i, JSMN_OBJECT))
        return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: pre_tokenizer: not an object with a type");
    if (json_str_eq(d, ty, "Sequence")) {
        int arr = json_get(d, i, "pretokenizers");
        if (arr < 0 || !json_is(d, arr, JSMN_ARRAY))
            return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: pre_tokenizer Sequence without a list");
        for (int k = 0, c = arr + 1; k < d->tok[arr].size; k++, c = json_next(d, c))
            if (hf_pre(t, d, c, depth + 1, e))
                return -1;
        return 0;
    }
    if (json_str_eq(d, ty, "ByteLevel")) {
        int ur = json_get(d, i, "use_regex"), v = 1;
        if (ur >= 0 && !json_is_bool(d, ur, &v))
            v = 1;
        return v ? compile(&t->pre, RE_GPT2, strlen(RE_GPT2), e) : 0;
    }
    if (json_str_eq(d, ty, "Digits")) {
        int id = json_get(d, i, "individual_digits"), v = 0;
        if (id >= 0)
            json_is_bool(d, id, &v);
        return compile(&t->pre, v ? "\\p{N}" : "\\p{N}++", v ? 5 : 7, e);
    }
    if (json_str_eq(d, ty, "Split")) {
        int pat = json_get(d, i, "pattern"), beh = json_get(d, i, "behavior");
        int inv = json_get(d, i, "invert"), v = 0, re, str;
        if (inv >= 0 && json_is_bool(d, inv, &v) && v)
            return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: Split with invert: true");
        if (beh >= 0 && !json_str_eq(d, beh, "Isolated"))
            return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: Split behavior '%.*s' (only Isolated)",
                       (int)(json_raw(d, beh).n > 40 ? 40 : json_raw(d, beh).n), json_raw(d, beh).p);
        if (pat < 0 || !json_is(d, pat, JSMN_OBJECT))
            return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: Split without a pattern");
        re = json_get(d, pat, "Regex");
        str = json_get(d, pat, "String");
        if (re >= 0 && json_is(d, re, JSMN_STRING)) {
            if (json_str(d, re, &b, e) == 0 && sbuf_check(&b, "Split regex", e) == 0)
                rc = compile(&t->pre, b.p ? b.p : "", b.len, e);
        } else if (str >= 0 && json_is(d, str, JSMN_STRING)) {
            /* a literal: quote it for the regex engine */
            struct sbuf lit = SBUF_INIT(1 << 20);
            if (json_str(d, str, &lit, e) == 0) {
                sbuf_adds(&b, "\\Q");
                sbuf_add(&b, lit.p ? lit.p : "", lit.len);
                sbuf_adds(&b, "\\E");
                if (sbuf_check(&b, "Split string", e) == 0)
                    rc = compile(&t->pre, b.p, b.len, e);
            }
            sbuf_release(&lit);
        } else {
            ERR(e, ERR_UNSUPPORTED, "tokenizer.json: Split pattern is neither Regex nor String");
        }
        sbuf_release(&b);
        return rc;
    }
    {
        struct slice n = json_raw(d, ty);
        return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: pre_tokenizer '%.*s' is not supported "
                   "(ByteLevel, Split, Digits, Sequence are)", (int)(n.n > 40 ? 40 : n.n), n.p);
    }
}

static int hf_norm(struct tokenizer *t, const struct json_doc *d, int i, int depth, struct err *e)
{
    int ty = json_get(d, i, "type");

    if (json_is_null(d, i))
        return 0;
    if (depth > 4 || ty < 0)
        return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: normalizer: not an object with a type");
    if (json_str_eq(d, ty, "Sequence")) {
        int arr = json_get(d, i, "normalizers");
        if (arr < 0 || !json_is(d, arr, JSMN_ARRAY))
            return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: normalizer Sequence without a list");
        for (int k = 0, c = arr + 1; k < d->tok[arr].size; k++, c = json_next(d, c))
            if (hf_norm(t, d, c, depth + 1, e))
                return -1;
        return 0;
    }
    if (t->normalize)
        return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: more than one Unicode normalization");
    if (json_str_eq(d, ty, "NFC"))
        t->normalize = TOK_NFC;
    else if (json_str_eq(d, ty, "NFKC"))
        t->normalize = TOK_NFKC;
    else if (json_str_eq(d, ty, "NFD"))
        t->normalize = TOK_NFD;
    else if (json_str_eq(d, ty, "NFKD"))
        t->normalize = TOK_NFKD;
    else {
        struct slice n = json_raw(d, ty);
        return ERR(e, ERR_UNSUPPORTED, "tokenizer.json: normalizer '%.*s' is not supported for "
                   "byte-level BPE (NFC, NFKC, NFD, NFKD are)", (int)(n.n > 40 ? 40 : n.n), n.p);
    }
    return 0;
}

/* The split and normalization of a tokenizer.json (byte-level BPE). */
static int hf_init(struct tokenizer *t, const char *json, size_t len, struct err *e)
{
    struct json_doc d;
    int pt, nm, rc = -1;

    if (json_parse(&d, json, len, 0, "tokenizer.json", e))
        return -1;
    pt = json_get(&d, 0, "pre_tokenizer");
    nm = json_get(&d, 0, "normalizer");
    if ((pt < 0 || hf_pre(t, &d, pt, 0, e) == 0) && (nm < 0 || hf_norm(t, &d, nm, 0, e) == 0))
        rc = 0;
    json_release(&d);
    return rc;
}

int tok__pre_init(struct tokenizer *t, const char *pre, const char *hf_json, size_t hf_len,
                  struct err *e)
{
    if (hf_json) {
        if (hf_init(t, hf_json, hf_len, e))
            return -1;
        snprintf(t->pre_name, sizeof t->pre_name, "%s", "tokenizer.json");
        return 0;
    }
    for (size_t i = 0; i < sizeof pre_defs / sizeof *pre_defs; i++) {
        if (!name_in(pre_defs[i].names, pre))
            continue;
        for (int k = 0; k < 6 && pre_defs[i].re[k]; k++)
            if (compile(&t->pre, pre_defs[i].re[k], strlen(pre_defs[i].re[k]), e))
                return -1;
        return 0;
    }
    return ERR(e, ERR_UNSUPPORTED, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", pre);
}

void tok__pre_free(struct tok_pre *p)
{
    for (int i = 0; i < p->n; i++)
        pcre2_code_free(p->re[i]);
    p->n = 0;
}

static int push(size_t **r, size_t *nr, size_t *cap, size_t a, size_t b, struct err *e)
{
    if (*nr == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        size_t *p = realloc(*r, c * 2 * sizeof *p);
        if (!p)
            return ERR(e, ERR_NOMEM, "out of memory");
        *r = p;
        *cap = c;
    }
    (*r)[2 * *nr] = a;
    (*r)[2 * *nr + 1] = b;
    (*nr)++;
    return 0;
}

static size_t utf8_step(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    return k < n ? k : n;
}

int tok__pre_split(const struct tok_pre *p, const char *text, size_t n, size_t **r,
                   size_t *nr, size_t *cap, struct err *e)
{
    size_t *cur = NULL, ncur = 0, ccur = 0;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 256u << 20, NULL);
    int rc = -1;

    if (!md || !mc || !js) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    /* long runs of spaces backtrack once per character (\s+(?!\S)): room for that */
    pcre2_jit_stack_assign(mc, NULL, js);
    pcre2_set_heap_limit(mc, 1u << 22);   /* KiB: 4 GiB, the interpreter's frames */
    /* "\s*[\r\n]+" walks back over a whole run of spaces once per search: linear in the
     * piece, but past the default limit of 10M steps on a 10 MB run */
    pcre2_set_match_limit(mc, UINT32_MAX);
    if (push(&cur, &ncur, &ccur, 0, n, e))
        goto done;
    for (int k = 0; k < p->n; k++) {
        size_t *nxt = NULL, nn = 0, cn = 0;
        for (size_t i = 0; i < ncur; i++) {
            size_t a = cur[2 * i], b = cur[2 * i + 1], pos = a;
            while (pos < b) {
                int m = pcre2_match(p->re[k], (PCRE2_SPTR)text + a, b - a, pos - a,
                                    PCRE2_NO_UTF_CHECK, md, mc);
                PCRE2_SIZE *ov;
                size_t ms, me;
                if (m == PCRE2_ERROR_NOMATCH)
                    break;
                if (m < 0) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(m, msg, sizeof msg);
                    ERR(e, ERR_LIMIT, "pre-tokenizer regex %d failed on a %zu-byte piece: %s",
                        k + 1, b - a, (const char *)msg);
                    free(nxt);
                    goto done;
                }
                ov = pcre2_get_ovector_pointer(md);
                ms = a + (size_t)ov[0];
                me = a + (size_t)ov[1];
                if (me == ms) {   /* an empty match: no piece; step over one character */
                    pos = ms + utf8_step((const unsigned char *)text + ms, b - ms);
                    continue;
                }
                if ((ms > pos && push(&nxt, &nn, &cn, pos, ms, e)) || push(&nxt, &nn, &cn, ms, me, e)) {
                    free(nxt);
                    goto done;
                }
                pos = me;
            }
            if (pos < b && push(&nxt, &nn, &cn, pos, b, e)) {
                free(nxt);
                goto done;
            }
        }
        free(cur);
        cur = nxt;
        ncur = nn;
        ccur = cn;
    }
    for (size_t i = 0; i < ncur; i++)
        if (push(r, nr, cap, cur[2 * i], cur[2 * i + 1], e))
            goto done;
    rc = 0;
done:
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    free(cur);
    return rc;
}
