/*
 * sample.h - choosing the next token from logits: greedy, or temperature sampling with
 * top-k, top-p (nucleus), min-p and a repetition penalty, from a seeded generator.
 *
 * Order (llama.cpp's default chain): repetition penalty on the logits of recently seen
 * tokens (divide positive logits by the penalty, multiply negative ones), then greedy
 * when temp <= 0; otherwise top-k, softmax at temperature, top-p, min-p, renormalise,
 * draw.  Ties in the greedy choice go to the lowest token id.  The same seed, logits and
 * history give the same token on every machine (the generator is xoshiro256** seeded with
 * splitmix64; the draw is one double in [0, 1)).
 */
#ifndef RT_SAMPLE_H
#define RT_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

struct rt_sampler_params {
    double   temp;            /* <= 0: greedy */
    int      top_k;           /* <= 0: off */
    double   top_p;           /* >= 1: off */
    double   min_p;           /* <= 0: off */
    double   repeat_penalty;  /* 1: off */
    int      repeat_last_n;   /* how many recent tokens the penalty looks at */
    uint64_t seed;
};

#define RT_SAMPLER_DEFAULTS { 0.0, 40, 0.95, 0.05, 1.0, 64, 0 }

struct rt_cand { float v; int32_t id; };

struct rt_sampler {
    struct rt_sampler_params p;
    uint64_t s[4];            /* generator state */
    int32_t  n_vocab;
    struct rt_cand *cand;     /* [n_vocab] scratch */
};

int  rt_sampler_init(struct rt_sampler *sm, const struct rt_sampler_params *p, int32_t n_vocab,
                     struct err *e);
void rt_sampler_free(struct rt_sampler *sm);

/*
 * The next token.  logits [n_vocab] is modified (penalty applied in place); hist holds the
 * n_hist tokens so far (prompt and generated), of which the last repeat_last_n count.
 */
int32_t rt_sample(struct rt_sampler *sm, float *logits, const int32_t *hist, size_t n_hist);

/* Index of the largest value (the lowest index among equals); NaN never wins. */
int32_t rt_argmax(const float *x, int64_t n);

#endif
