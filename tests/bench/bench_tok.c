/*
 * bench_tok.c - tokenizer throughput on one thread, and the inputs to measure it with.
 *
 *   bench_tok gen DIR [MB]          write DIR/text.txt (MB of mixed text, default 4),
 *                                   DIR/bpe150k.gguf and DIR/spm32k.gguf (synthetic vocabs)
 *   bench_tok run MODEL TEXT [R]    tokenize TEXT (add BOS, parse special tokens, as
 *                                   llama-tokenize does) R times (default 3); prints the
 *                                   best MB/s and writes the ids to TEXT.ids.<pid> when
 *                                   BENCH_TOK_IDS is set (one "[a, b, ...]" line, as
 *                                   llama-tokenize --ids prints them)
 *
 * The synthetic vocabularies: no real 150k byte-level vocabulary ships with the
 * fixtures, so one is built the way BPE training shapes one: 256 byte tokens, then
 * syllables (consonant + vowel), then words of two and three syllables, each with and
 * without the "Ġ" space, every token reached by a merge of two tokens, ranks in that
 * order; pre-tokenizer "qwen2" (Qwen2's vocabulary is 151k).  The 32k SentencePiece one:
 * <unk> <s> </s>, 256 byte tokens, letters, syllables, "▁" words of one to three
 * syllables, scores falling in that order, so every word is reachable by merges.  The
 * text mixes those words (Zipf-like), unknown words, capitals, numbers, punctuation,
 * code-like lines with indentation, Cyrillic, CJK and emoji; it is deterministic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fixtures/gguf_fix.h"
#include "../../runtime/tokenizer.h"
#include "bench_util.h"
#include "../../common/banned.h"

static const char cons[] = "bcdfghjklmnprstvwz";
static const char vows[] = "aeiouy";
#define N_SYL 108   /* 18 x 6 */

static void syl(int i, char *o)
{
    o[0] = cons[i / 6];
    o[1] = vows[i % 6];
    o[2] = 0;
}

static void die(const struct err *e)
{
    fprintf(stderr, "bench_tok: %s\n", e->msg);
    exit(1);
}

/* a growing list of strings in one arena */
struct strs {
    char **p;
    size_t n, cap;
};

static const char *add(struct strs *s, const char *a, const char *b)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *x = malloc(la + lb + 1);
    if (!x)
        exit(1);
    memcpy(x, a, la);
    if (lb)
        memcpy(x + la, b, lb);
    x[la + lb] = 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->p = realloc(s->p, s->cap * sizeof *s->p);
        if (!s->p)
            exit(1);
    }
    s->p[s->n++] = x;
    return x;
}

static void strs_free(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->p[i]);
    free(s->p);
    s->p = NULL;
    s->n = s->cap = 0;
}

static void byte_tok(int b, char *o)
{
    int cp = b, n = 0;
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
        for (int c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)))
                n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        o[0] = (char)cp;
        o[1] = 0;
    } else {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        o[2] = 0;
    }
}

#define G "\xc4\xa0"   /* Ġ */

static void gen_bpe(const char *path)
{
    struct strs tok = { 0 }, mg = { 0 };
    struct model m;
    struct err e = ERR_INIT;
    char a[16], b[16], c[16], ab[32], m1[64];
    int32_t *types;

    for (int i = 0; i < 256; i++) {
        byte_tok(i, a);
        add(&tok, a, NULL);
    }
    for (int i = 0; i < N_SYL; i++) {          /* syllables, then " syllable" */
        syl(i, a);
        snprintf(m1, sizeof m1, "%c %c", a[0], a[1]);
        add(&mg, m1, NULL);
        add(&tok, a, NULL);
    }
    for (int i = 0; i < N_SYL; i++) {
        syl(i, a);
        snprintf(m1, sizeof m1, G " %s", a);
        add(&mg, m1, NULL);
        add(&tok, G, a);
    }
    for (int i = 0; i < N_SYL * N_SYL; i++) {  /* two syllables, both forms */
        syl(i / N_SYL, a);
        syl(i % N_SYL, b);
        snprintf(m1, sizeof m1, "%s %s", a, b);
        add(&mg, m1, NULL);
        snprintf(ab, sizeof ab, "%s%s", a, b);
        add(&tok, ab, NULL);
        snprintf(m1, sizeof m1, G "%s %s", a, b);
        add(&mg, m1, NULL);
        add(&tok, G, ab);
    }
    for (int i = 0; tok.n < 151000; i++) {     /* three syllables, both forms */
        int w = (int)(((unsigned)i * 2654435761u) % (N_SYL * N_SYL * N_SYL));
        syl(w / (N_SYL * N_SYL), a);
        syl(w / N_SYL % N_SYL, b);
        syl(w % N_SYL, c);
        snprintf(ab, sizeof ab, "%s%s", a, b);
        snprintf(m1, sizeof m1, "%s %s", ab, c);
        add(&mg, m1, NULL);
        add(&tok, ab, c);
        snprintf(m1, sizeof m1, G "%s %s", ab, c);
        add(&mg, m1, NULL);
        snprintf(m1, sizeof m1, G "%s", ab);
        add(&tok, m1, c);
    }
    add(&tok, "<|endoftext|>", NULL);
    add(&tok, "<|im_start|>", NULL);
    add(&tok, "<|im_end|>", NULL);
    types = malloc(tok.n * sizeof *types);
    for (size_t i = 0; i < tok.n; i++)
        types[i] = i + 3 >= tok.n ? 3 : 1;
    fx_init(&m, path, &e);
    fx_str(&m, "general.architecture", "qwen2", &e);
    fx_str(&m, "general.name", "bench-bpe150k", &e);
    fx_str(&m, "tokenizer.ggml.model", "gpt2", &e);
    fx_str(&m, "tokenizer.ggml.pre", "qwen2", &e);
    fx_arr_strs(&m, "tokenizer.ggml.tokens", tok.n, (const char *const *)tok.p, &e);
    fx_arr_raw(&m, "tokenizer.ggml.token_type", MV_I32, tok.n, types, &e);
    fx_arr_strs(&m, "tokenizer.ggml.merges", mg.n, (const char *const *)mg.p, &e);
    fx_uint(&m, "tokenizer.ggml.bos_token_id", MV_U32, tok.n - 3, &e);
    fx_uint(&m, "tokenizer.ggml.eos_token_id", MV_U32, tok.n - 1, &e);
    fx_uint(&m, "tokenizer.ggml.add_bos_token", MV_BOOL, 0, &e);
    if (!err_ok(&e) || gguf_write(&m, path, NULL, &e))
        die(&e);
    printf("%s: %zu tokens, %zu merges (byte-level BPE, pre qwen2)\n", path, tok.n, mg.n);
    model_close(&m);
    free(types);
    strs_free(&tok);
    strs_free(&mg);
}

#define SP "\xe2\x96\x81"   /* ▁ */

static void gen_spm(const char *path)
{
    struct strs tok = { 0 };
    struct model m;
    struct err e = ERR_INIT;
    char a[16], b[16], c[16], x[64];
    float *sc;
    int32_t *ty;

    add(&tok, "<unk>", NULL);
    add(&tok, "<s>", NULL);
    add(&tok, "</s>", NULL);
    for (int i = 0; i < 256; i++) {
        snprintf(x, sizeof x, "<0x%02X>", i);
        add(&tok, x, NULL);
    }
    add(&tok, SP, NULL);
    for (int ch = 'a'; ch <= 'z'; ch++) {
        x[0] = (char)ch;
        x[1] = 0;
        add(&tok, x, NULL);
    }
    for (int i = 0; i < N_SYL; i++) {
        syl(i, a);
        add(&tok, a, NULL);
    }
    for (int i = 0; i < N_SYL; i++) {
        syl(i, a);
        add(&tok, SP, a);
    }
    for (int i = 0; i < N_SYL * N_SYL; i++) {
        syl(i / N_SYL, a);
        syl(i % N_SYL, b);
        snprintf(x, sizeof x, SP "%s%s", a, b);
        add(&tok, x, NULL);
    }
    for (int i = 0; tok.n < 32000; i++) {
        int w = (int)(((unsigned)i * 2654435761u) % (N_SYL * N_SYL * N_SYL));
        syl(w / (N_SYL * N_SYL), a);
        syl(w / N_SYL % N_SYL, b);
        syl(w % N_SYL, c);
        snprintf(x, sizeof x, SP "%s%s%s", a, b, c);
        add(&tok, x, NULL);
    }
    sc = malloc(tok.n * sizeof *sc);
    ty = malloc(tok.n * sizeof *ty);
    for (size_t i = 0; i < tok.n; i++) {
        sc[i] = i < 259 ? 0.0f : -(float)(i - 258);
        ty[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
    }
    fx_init(&m, path, &e);
    fx_str(&m, "general.architecture", "llama", &e);
    fx_str(&m, "general.name", "bench-spm32k", &e);
    fx_str(&m, "tokenizer.ggml.model", "llama", &e);
    fx_str(&m, "tokenizer.ggml.pre", "default", &e);
    fx_arr_strs(&m, "tokenizer.ggml.tokens", tok.n, (const char *const *)tok.p, &e);
    fx_arr_raw(&m, "tokenizer.ggml.scores", MV_F32, tok.n, sc, &e);
    fx_arr_raw(&m, "tokenizer.ggml.token_type", MV_I32, tok.n, ty, &e);
    fx_uint(&m, "tokenizer.ggml.bos_token_id", MV_U32, 1, &e);
    fx_uint(&m, "tokenizer.ggml.eos_token_id", MV_U32, 2, &e);
    fx_uint(&m, "tokenizer.ggml.unknown_token_id", MV_U32, 0, &e);
    fx_uint(&m, "tokenizer.ggml.add_bos_token", MV_BOOL, 1, &e);
    if (!err_ok(&e) || gguf_write(&m, path, NULL, &e))
        die(&e);
    printf("%s: %zu tokens (SentencePiece, scores)\n", path, tok.n);
    model_close(&m);
    free(sc);
    free(ty);
    strs_free(&tok);
}

static uint32_t rng = 0x9E3779B9u;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng % n;
}

/* syllable count 1..4, Zipf-ish word choice among the first words */
static void word(FILE *f, int cap)
{
    int ns = 1 + (int)rnd(100) % 100 / 30;   /* 1: 30%, 2: 30%, 3: 30%, 4: 10% */
    uint32_t base = rnd(1000) < 700 ? rnd(64) : rnd(4096);
    for (int k = 0; k < ns; k++) {
        char s[3];
        syl((int)((base * 7 + (uint32_t)k * 13 + rnd(3)) % N_SYL), s);
        if (k == 0 && cap)
            s[0] = (char)(s[0] - 32);
        fputs(s, f);
    }
}

static void gen_text(const char *path, double mb)
{
    static const char *const other[] = {
        "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c",
        "\xf0\x9f\xa6\x99", "\xf0\x9f\x98\x80", "\xc3\xa9t\xc3\xa9", "na\xc3\xafve", ("\xe2\x82\xac" "42"),
    };
    static const char *const punct[] = { ",", ".", "!", "?", ";", ":", " -", " (", ")", "'s", "\"" };
    FILE *f = fopen(path, "w");
    size_t target = (size_t)(mb * 1048576.0);

    if (!f) {
        perror(path);
        exit(1);
    }
    while ((size_t)ftell(f) < target) {
        uint32_t kind = rnd(100);
        if (kind < 80) {                       /* a sentence */
            int n = 5 + (int)rnd(15);
            for (int i = 0; i < n; i++) {
                if (i)
                    fputc(' ', f);
                if (rnd(50) == 0)
                    fprintf(f, "%u", rnd(100000));
                else if (rnd(40) == 0)
                    fputs(other[rnd(7)], f);
                else
                    word(f, i == 0);
                if (rnd(8) == 0)
                    fputs(punct[rnd(11)], f);
            }
            fputs(rnd(4) ? ". " : ".\n", f);
        } else if (kind < 95) {                /* a line of code */
            int ind = (int)rnd(4) * 4;
            fprintf(f, "\n%*s", ind, "");
            word(f, 0);
            fputs("_", f);
            word(f, 0);
            fprintf(f, " = %s(", rnd(2) ? "get" : "make");
            word(f, 0);
            fprintf(f, ", %u);", rnd(1000));
            fputs("\n", f);
        } else {                               /* blank lines, tabs */
            fputs(rnd(2) ? "\n\n" : "\t\n", f);
        }
    }
    fclose(f);
    printf("%s: %.1f MB of mixed text\n", path, mb);
}

static int run(const char *model, const char *text_path, int reps)
{
    struct model m;
    struct err e = ERR_INIT;
    struct tokenizer *t;
    FILE *f = fopen(text_path, "rb");
    char *text;
    long len;
    double best = 1e30;
    int32_t *ids = NULL;
    size_t n = 0;

    if (!f) {
        perror(text_path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
        perror(text_path);
        return 1;
    }
    fclose(f);
    if (model_open(&m, model, &e) || tok_load(&m, &t, &e))
        die(&e);
    model_close(&m);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now(), dt;
        free(ids);
        if (tok_encode(t, text, (size_t)len, TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, &ids, &n, &e))
            die(&e);
        dt = bench_now() - t0;
        best = dt < best ? dt : best;
    }
    printf("%-28s %8.2f MB/s  (%zu tokens, %.2f MB, %s %zu tokens, best of %d)\n",
           "apr-tools tokenizer", (double)len / 1048576.0 / best, n, (double)len / 1048576.0,
           tok_kind(t) == TOK_SPM ? "SentencePiece" : "byte-level BPE", tok_n_vocab(t), reps);
    if (getenv("BENCH_TOK_IDS")) {
        FILE *o = fopen(getenv("BENCH_TOK_IDS"), "w");
        if (!o) {
            perror("BENCH_TOK_IDS");
            return 1;
        }
        fputc('[', o);
        for (size_t i = 0; i < n; i++)
            fprintf(o, "%s%d", i ? ", " : "", ids[i]);
        fputs("]\n", o);
        fclose(o);
    }
    free(ids);
    free(text);
    tok_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "gen") == 0) {
        char p[4096];
        double mb = argc > 3 ? strtod(argv[3], NULL) : 4.0;
        snprintf(p, sizeof p, "%s/text.txt", argv[2]);
        gen_text(p, mb > 0 ? mb : 4.0);
        snprintf(p, sizeof p, "%s/bpe150k.gguf", argv[2]);
        gen_bpe(p);
        snprintf(p, sizeof p, "%s/spm32k.gguf", argv[2]);
        gen_spm(p);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "run") == 0)
        return run(argv[2], argv[3], argc > 4 ? (int)strtol(argv[4], NULL, 10) : 3);
    fprintf(stderr, "usage: bench_tok gen DIR [MB]\n       bench_tok run MODEL TEXT [REPEATS]\n");
    return 2;
}
