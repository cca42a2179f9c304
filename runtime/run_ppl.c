/*
 * run_ppl.c - apr-run --perplexity FILE (a text, tokenized with the model's tokenizer)
 * and --perplexity-ids FILE (token ids), scored as llama.cpp's llama-perplexity does it
 * (examples/perplexity/perplexity.cpp at c392e50, its default mode):
 *   - the text is tokenized with BOS when the model adds one, special tokens in it NOT
 *     parsed (common_tokenize(ctx, text, add_special = true, parse_special = false));
 *   - the tokens are cut into floor(n / ctx) chunks of ctx tokens (the tail is dropped);
 *     each chunk is evaluated from an empty cache, its first token replaced by BOS when
 *     the model adds one;
 *   - only the second half of a chunk is scored: the logits at positions ctx/2 .. ctx-2
 *     predict the tokens at ctx/2+1 .. ctx-1, ctx - 1 - ctx/2 predictions per chunk;
 *   - PPL = exp(mean NLL); its error is PPL x sqrt((mean(NLL^2) - mean(NLL)^2) / (N - 1)),
 *     N the predictions scored.
 * Differences, said in the man page: one chunk is enough (llama-perplexity asks for two),
 * the default chunk is min(512, training context) (llama-perplexity: 512), and the KV
 * cache is f32 (llama.cpp's default is f16).
 * A token-id file is scored as given, except that when it starts with the model's BOS
 * (as --tokenize prints it for a model that adds BOS) every chunk starts with BOS as
 * above, so a text and its --tokenize output give the same figure.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run_impl.h"
#include "tokenizer.h"
#include "../common/json.h"
#include "../common/mfile.h"
#include "../common/sbuf.h"
#include "../compare/compare.h"
#include "../common/banned.h"

/* the sums over every scored prediction */
struct ppl_sum {
    double nll, nll2;             /* MODEL's -log p(next token) */
    size_t n;
    double nll_ref, kl, kl2;      /* --compare: OTHER's NLL, KL(OTHER || MODEL) */
    size_t agree;                 /* --compare: same top-1 */
};

/* -log softmax(x)[id] in double */
static double nll(const float *x, int64_t nv, int32_t id)
{
    double mx = -INFINITY, s = 0;

    for (int64_t i = 0; i < nv; i++)
        if (x[i] > mx)
            mx = x[i];
    for (int64_t i = 0; i < nv; i++)
        s += exp((double)x[i] - mx);
    return log(s) + mx - x[id];
}

static int read_ids(const char *path, int32_t **ids, size_t *n, struct err *e)
{
    struct mfile f;
    int rc;

    if (mfile_open(&f, path, e))
        return -1;
    rc = run_parse_tokens((const char *)f.data, (size_t)f.size, ids, n, e);
    if (rc)
        err_prefix(e, "%s", path);
    mfile_close(&f);
    return rc;
}

/* The text of path in MODEL's tokens, BOS first when the model adds one (*bos: that id,
 * or -1).  EOS is never added, as llama-perplexity (which refuses such models). */
static int read_text(const char *path, const char *model, int32_t **ids, size_t *n,
                     int32_t *bos, struct err *e)
{
    struct tokenizer *tk = NULL;
    struct mfile f;
    int32_t *v = NULL, *w;
    size_t nv = 0;
    int rc = -1;

    *ids = NULL;
    *n = 0;
    *bos = -1;
    if (tok_cli_open(model, &tk, e)) {
        err_prefix(e, "--perplexity needs the model's tokenizer (--perplexity-ids takes "
                   "token ids)");
        return -1;
    }
    if (mfile_open(&f, path, e)) {
        tok_free(tk);
        return -1;
    }
    if (tok_encode(tk, (const char *)f.data, (size_t)f.size, 0, &v, &nv, e)) {
        err_prefix(e, "%s", path);
        goto out;
    }
    if (tok_add_bos(tk)) {
        *bos = tok_bos(tk);
        if (*bos < 0) {
            ERR(e, ERR_FORMAT, "%s: the model asks for a BOS token but has none", model);
            goto out;
        }
        w = realloc(v, (nv + 1) * sizeof *w);
        if (!w) {
            ERR(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        v = w;
        memmove(v + 1, v, nv * sizeof *v);
        v[0] = *bos;
        nv++;
    }
    *ids = v;
    *n = nv;
    v = NULL;
    rc = 0;
out:
    free(v);
    mfile_close(&f);
    tok_free(tk);
    return rc;
}

/* The chunk size: --ctx, else min(training context, 512); and the model's BOS id. */
static int chunk_size(const struct run_opts *o, int *n_ctx, int64_t *bos_id, struct err *e)
{
    struct model m;
    struct model_config c;

    if (model_open_ex(&m, o->model, MODEL_OPEN_HEADER_ONLY, e))
        return -1;
    if (model_config_load(&m, &c, e)) {
        model_close(&m);
        return -1;
    }
    model_close(&m);
    *n_ctx = o->n_ctx > 0 ? o->n_ctx
           : c.n_ctx_train && c.n_ctx_train < 512 ? (int)c.n_ctx_train : 512;
    *bos_id = c.bos_id;
    if (*n_ctx < 3)
        return ERR(e, ERR_USAGE, "--perplexity needs a context of at least 3 tokens");
    return 0;
}

/*
 * One chunk (ct[0, n_ctx), ct[0] replaced by bos when bos >= 0) through MODEL (B) and
 * OTHER (A, when there is one); its second half added to s.  *chunk: the chunk's NLL sum.
 */
static int score_chunk(struct loaded *A, struct loaded *B, const int32_t *ct, int n_ctx,
                       int32_t bos, int32_t *buf, float *la, float *lb, struct ppl_sum *s,
                       double *chunk, struct err *e)
{
    const int64_t nv = B->rm.c.n_vocab;
    const int first = n_ctx / 2;

    memcpy(buf, ct, (size_t)n_ctx * sizeof *buf);
    if (bos >= 0)
        buf[0] = bos;
    if (rt_eval(B->ctx, buf, n_ctx, 0, lb, RT_EVAL_ALL_LOGITS, e) ||
        (A && rt_eval(A->ctx, buf, n_ctx, 0, la, RT_EVAL_ALL_LOGITS, e)))
        return -1;
    *chunk = 0;
    for (int j = first; j < n_ctx - 1; j++) {
        const float *rb = lb + (size_t)j * nv;
        const double v = nll(rb, nv, buf[j + 1]);
        if (!isfinite(v))
            return ERR(e, ERR_MISMATCH, "non-finite logits at position %d", j);
        s->nll += v;
        s->nll2 += v * v;
        *chunk += v;
        s->n++;
        if (A) {
            const float *ra = la + (size_t)j * nv;
            struct cmp_logits cl;
            cmp_logits(ra, rb, (size_t)nv, 1, &cl);
            s->nll_ref += nll(ra, nv, buf[j + 1]);
            s->kl += cl.kl;
            s->kl2 += cl.kl * cl.kl;
            s->agree += cl.top1_agree != 0;
        }
    }
    return 0;
}

/* mean and standard error of the mean of a sum and sum of squares over n */
static void mean_err(double sum, double sum2, size_t n, double *mean, double *err)
{
    const double m = sum / (double)n, var = sum2 / (double)n - m * m;

    *mean = m;
    *err = n > 1 && var > 0 ? sqrt(var / (double)(n - 1)) : 0;
}

struct ppl_run {
    const struct run_opts *o;
    size_t  n_tokens, n_chunks;
    int     n_ctx, per_chunk;     /* predictions scored per chunk */
    int     bos_each;             /* every chunk starts with BOS */
    double *chunk_nll;            /* [n_chunks] */
    struct ppl_sum s;
};

static int report_json(const struct ppl_run *r, struct err *e)
{
    const struct run_opts *o = r->o;
    struct sbuf js = SBUF_INIT((size_t)1 << 30);
    struct json_w w;
    double mean, err, cum = 0;
    int rc;

    mean_err(r->s.nll, r->s.nll2, r->s.n, &mean, &err);
    json_w_init(&w, &js, 0);
    json_w_obj(&w);
    json_w_key(&w, "model");
    json_w_str(&w, o->model);
    json_w_key(&w, o->perplexity_ids ? "ids_file" : "text_file");
    json_w_str(&w, o->perplexity);
    json_w_key(&w, "tokens");
    json_w_u64(&w, r->n_tokens);
    json_w_key(&w, "bos_each_chunk");
    json_w_bool(&w, r->bos_each);
    json_w_key(&w, "chunks");
    json_w_u64(&w, r->n_chunks);
    json_w_key(&w, "ctx");
    json_w_i64(&w, r->n_ctx);
    json_w_key(&w, "scored");
    json_w_u64(&w, r->s.n);
    json_w_key(&w, "ppl");
    json_w_f64(&w, exp(mean));
    json_w_key(&w, "ppl_error");
    json_w_f64(&w, exp(mean) * err);
    json_w_key(&w, "per_chunk");
    json_w_arr(&w);
    for (size_t c = 0; c < r->n_chunks; c++) {
        cum += r->chunk_nll[c];
        json_w_obj(&w);
        json_w_key(&w, "ppl");
        json_w_f64(&w, exp(r->chunk_nll[c] / r->per_chunk));
        json_w_key(&w, "running");
        json_w_f64(&w, exp(cum / ((double)(c + 1) * r->per_chunk)));
        json_w_obj_end(&w);
    }
    json_w_arr_end(&w);
    if (o->other) {
        double mk, ek;
        mean_err(r->s.kl, r->s.kl2, r->s.n, &mk, &ek);
        json_w_key(&w, "other");
        json_w_str(&w, o->other);
        json_w_key(&w, "ppl_other");
        json_w_f64(&w, exp(r->s.nll_ref / (double)r->s.n));
        json_w_key(&w, "mean_kld");
        json_w_f64(&w, mk);
        json_w_key(&w, "mean_kld_error");
        json_w_f64(&w, ek);
        json_w_key(&w, "top1_agreement");
        json_w_f64(&w, (double)r->s.agree / (double)r->s.n);
    }
    json_w_obj_end(&w);
    rc = sbuf_check(&js, "JSON output", e);
    if (!rc) {
        fwrite(js.p, 1, js.len, o->out);
        fputc('\n', o->out);
    }
    sbuf_release(&js);
    return rc;
}

static void report_text(const struct ppl_run *r)
{
    const struct run_opts *o = r->o;
    double mean, err;

    mean_err(r->s.nll, r->s.nll2, r->s.n, &mean, &err);
    fprintf(o->out, "%zu tokens, %zu chunks of %d, %zu predictions scored%s\n", r->n_tokens,
            r->n_chunks, r->n_ctx, r->s.n, r->bos_each ? ", BOS first in each chunk" : "");
    fprintf(o->out, "PPL = %.4f +/- %.5f\n", exp(mean), exp(mean) * err);
    if (o->other) {
        double mk, ek;
        mean_err(r->s.kl, r->s.kl2, r->s.n, &mk, &ek);
        fprintf(o->out, "PPL(other) = %.4f, mean KLD = %.6f +/- %.6f, top-1 agreement "
                "%.2f%% (%zu/%zu)\n", exp(r->s.nll_ref / (double)r->s.n), mk, ek,
                100.0 * (double)r->s.agree / (double)r->s.n, r->s.agree, r->s.n);
    }
}

int run_perplexity(const struct run_opts *o, struct err *e)
{
    struct loaded A, B;      /* B = MODEL; A = --compare OTHER (the reference) */
    struct ppl_run r;
    struct run_opts lo = *o;
    int32_t *tok = NULL, *buf = NULL, bos = -1;
    float *la = NULL, *lb = NULL;
    int64_t bos_id, nv;
    double cum = 0;
    int rc = -1;

    memset(&A, 0, sizeof A);
    memset(&B, 0, sizeof B);
    memset(&r, 0, sizeof r);
    r.o = o;
    if (chunk_size(o, &r.n_ctx, &bos_id, e))
        return -1;
    if (o->perplexity_ids) {
        if (read_ids(o->perplexity, &tok, &r.n_tokens, e))
            return -1;
        if (r.n_tokens && bos_id >= 0 && tok[0] == bos_id)
            bos = (int32_t)bos_id;
    } else if (read_text(o->perplexity, o->model, &tok, &r.n_tokens, &bos, e)) {
        return -1;
    }
    r.bos_each = bos >= 0;
    r.per_chunk = r.n_ctx - 1 - r.n_ctx / 2;
    r.n_chunks = r.n_tokens / (size_t)r.n_ctx;
    if (o->n_chunks > 0 && r.n_chunks > (size_t)o->n_chunks)
        r.n_chunks = (size_t)o->n_chunks;
    if (!r.n_chunks) {
        ERR(e, ERR_USAGE, "%s: %zu tokens, at least %d (one chunk of --ctx) needed",
            o->perplexity, r.n_tokens, r.n_ctx);
        goto out;
    }
    lo.n_ctx = r.n_ctx;
    if (run_load(&B, &lo, o->model, (uint64_t)r.n_ctx, lo.n_batch == 1, e) ||
        (o->other && run_load(&A, &lo, o->other, (uint64_t)r.n_ctx, lo.n_batch == 1, e)))
        goto out;
    nv = B.rm.c.n_vocab;
    if (o->other && A.rm.c.n_vocab != B.rm.c.n_vocab) {
        ERR(e, ERR_MISMATCH, "'%s' and '%s' have different vocabularies (%u, %u tokens)",
            o->other, o->model, A.rm.c.n_vocab, B.rm.c.n_vocab);
        goto out;
    }
    la = o->other ? malloc((size_t)r.n_ctx * nv * sizeof *la) : NULL;
    lb = malloc((size_t)r.n_ctx * nv * sizeof *lb);
    buf = malloc((size_t)r.n_ctx * sizeof *buf);
    r.chunk_nll = malloc(r.n_chunks * sizeof *r.chunk_nll);
    if (!lb || !buf || !r.chunk_nll || (o->other && !la)) {
        ERR(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < r.n_chunks; c++) {
        if (score_chunk(o->other ? &A : NULL, &B, tok + c * (size_t)r.n_ctx, r.n_ctx, bos, buf,
                        la, lb, &r.s, &r.chunk_nll[c], e)) {
            err_prefix(e, "chunk %zu", c + 1);
            goto out;
        }
        cum += r.chunk_nll[c];
        if (o->verbose && !o->json)
            fprintf(o->out, "chunk %zu/%zu: ppl %.4f (running %.4f)\n", c + 1, r.n_chunks,
                    exp(r.chunk_nll[c] / r.per_chunk),
                    exp(cum / ((double)(c + 1) * r.per_chunk)));
    }
    if (o->json ? report_json(&r, e) : (report_text(&r), 0))
        goto out;
    rc = 0;
out:
    free(r.chunk_nll);
    free(buf);
    free(la);
    free(lb);
    free(tok);
    run_unload(&A);
    run_unload(&B);
    return rc;
}
