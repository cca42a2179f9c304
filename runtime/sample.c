/*
 * sample.c - see sample.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"
#include "../common/banned.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next(uint64_t *s)
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

int rt_sampler_init(struct rt_sampler *sm, const struct rt_sampler_params *p, int32_t n_vocab,
                    struct err *e)
{
    uint64_t x = p->seed;

    memset(sm, 0, sizeof *sm);
    sm->p = *p;
    sm->n_vocab = n_vocab;
    for (int i = 0; i < 4; i++)
        sm->s[i] = splitmix64(&x);
    sm->cand = malloc((size_t)(n_vocab > 0 ? n_vocab : 1) * sizeof *sm->cand);
    if (!sm->cand)
        return ERR(e, ERR_NOMEM, "out of memory");
    return 0;
}

void rt_sampler_free(struct rt_sampler *sm)
{
    free(sm->cand);
    sm->cand = NULL;
}

int32_t rt_argmax(const float *x, int64_t n)
{
    int64_t best = 0;

    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best] || (x[best] != x[best] && x[i] == x[i]))
            best = i;
    return (int32_t)best;
}

static int cand_cmp(const void *a, const void *b)
{
    const struct rt_cand *x = a, *y = b;

    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t rt_sample(struct rt_sampler *sm, float *logits, const int32_t *hist, size_t n_hist)
{
    const struct rt_sampler_params *p = &sm->p;
    const int32_t nv = sm->n_vocab;
    size_t first = 0;
    int32_t n;
    double sum = 0, acc = 0, r, mx;

    if (p->repeat_penalty != 1.0 && p->repeat_penalty > 0 && p->repeat_last_n > 0) {
        if (n_hist > (size_t)p->repeat_last_n)
            first = n_hist - (size_t)p->repeat_last_n;
        /* each distinct token once: mark with a pass over the history */
        for (size_t i = first; i < n_hist; i++) {
            int32_t id = hist[i];
            int seen = 0;
            if (id < 0 || id >= nv)
                continue;
            for (size_t k = first; k < i && !seen; k++)
                seen = hist[k] == id;
            if (seen)
                continue;
            logits[id] = logits[id] > 0 ? (float)(logits[id] / p->repeat_penalty)
                                        : (float)(logits[id] * p->repeat_penalty);
        }
    }
    if (p->temp <= 0)
        return rt_argmax(logits, nv);

    for (int32_t i = 0; i < nv; i++) {
        sm->cand[i].v = logits[i] == logits[i] ? logits[i] : -INFINITY;
        sm->cand[i].id = i;
    }
    qsort(sm->cand, (size_t)nv, sizeof *sm->cand, cand_cmp);
    n = nv;
    if (p->top_k > 0 && p->top_k < n)
        n = p->top_k;
    /* softmax at temperature over the kept candidates */
    mx = sm->cand[0].v;
    for (int32_t i = 0; i < n; i++) {
        double v = exp(((double)sm->cand[i].v - mx) / p->temp);
        sm->cand[i].v = (float)v;
        sum += v;
    }
    if (!(sum > 0))
        return sm->cand[0].id;
    for (int32_t i = 0; i < n; i++)
        sm->cand[i].v = (float)(sm->cand[i].v / sum);
    if (p->top_p < 1.0) {
        double cum = 0;
        for (int32_t i = 0; i < n; i++) {
            cum += sm->cand[i].v;
            if (cum >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0) {
        const double lim = p->min_p * sm->cand[0].v;
        int32_t k = 1;
        while (k < n && sm->cand[k].v >= lim)
            k++;
        n = k;
    }
    sum = 0;
    for (int32_t i = 0; i < n; i++)
        sum += sm->cand[i].v;
    r = (double)(next(sm->s) >> 11) * 0x1.0p-53 * sum;
    for (int32_t i = 0; i < n; i++) {
        acc += sm->cand[i].v;
        if (r < acc)
            return sm->cand[i].id;
    }
    return sm->cand[n - 1].id;
}
