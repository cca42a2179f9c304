/*
 * dq.c - the per-type table, the checked whole-buffer and whole-tensor helpers, and
 * tensor statistics.  See dq.h for the contracts.
 *
 * THE TABLE.  One row per type, designated initializers indexed by enum dtype: the
 * scalar reference kernel (dq_ref.c), the AVX2 kernel when one exists (dq_avx2.c;
 * "scalar" below means the fast slot falls back to the reference, unless a LUT()
 * table-driven kernel from dq_lut.c is named, which is then the fast path), and the
 * quantizer when we can produce the type (dq_quant.c).  Block size and bytes per
 * block are NOT repeated here: dq_get() copies them from dtype_get().
 *
 * THREADS.  The helpers cut the work at block boundaries and hand contiguous block
 * ranges to threads_run(); kernels themselves never allocate and never see threads.
 */
#include "dq.h"
#include "dq_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/sz.h"
#include "../common/threads.h"
#include "../formats/model.h"
#include "../common/banned.h"

struct dq_row {
    dq_to_f32_fn   ref;    /* plain scalar reference (dq_ref.c) */
    dq_to_f32_fn   avx2;   /* AVX2+FMA+F16C kernel, or NULL (see lut) */
    dq_quantize_fn quant;  /* quantizer from f32, or NULL: read-only type */
    dq_to_f32_fn   lut;    /* portable table-driven fast kernel (dq_lut.c), or NULL */
};

#define REF(k) dq_##k##_to_f32_ref
#define Q(k)   dq_##k##_quantize
#ifdef DQ_HAVE_AVX2_BUILD
#define AVX2(k) dq_##k##_to_f32_avx2
#else
#define AVX2(k) NULL
#endif
#define SCALAR NULL
#define LUT(k) dq_##k##_to_f32_lut

static const struct dq_row rows[DT_COUNT] = {
    /*  type             scalar kernel     fast (AVX2)      quantizer  table-driven fast */
    [DT_F32]         = { REF(f32),         AVX2(f32),       Q(f32),  NULL },
    [DT_F16]         = { REF(f16),         AVX2(f16),       Q(f16),  NULL },
    [DT_BF16]        = { REF(bf16),        AVX2(bf16),      Q(bf16), NULL },
    [DT_F64]         = { REF(f64),         SCALAR,          NULL,    NULL },
    [DT_I8]          = { REF(i8),          SCALAR,          NULL,    NULL },
    [DT_I16]         = { REF(i16),         SCALAR,          NULL,    NULL },
    [DT_I32]         = { REF(i32),         SCALAR,          NULL,    NULL },
    [DT_I64]         = { REF(i64),         SCALAR,          NULL,    NULL },
    [DT_Q4_0]        = { REF(q4_0),        AVX2(q4_0),      Q(q4_0), NULL },
    [DT_Q4_1]        = { REF(q4_1),        AVX2(q4_1),      Q(q4_1), NULL },
    [DT_Q5_0]        = { REF(q5_0),        AVX2(q5_0),      Q(q5_0), NULL },
    [DT_Q5_1]        = { REF(q5_1),        AVX2(q5_1),      Q(q5_1), NULL },
    [DT_Q8_0]        = { REF(q8_0),        AVX2(q8_0),      Q(q8_0), NULL },
    [DT_Q8_1]        = { REF(q8_1),        SCALAR,          NULL,    NULL },
    [DT_Q2_K]        = { REF(q2_k),        AVX2(q2_k),      Q(q2_k), NULL },
    [DT_Q3_K]        = { REF(q3_k),        AVX2(q3_k),      Q(q3_k), NULL },
    [DT_Q4_K]        = { REF(q4_k),        AVX2(q4_k),      Q(q4_k), NULL },
    [DT_Q5_K]        = { REF(q5_k),        AVX2(q5_k),      Q(q5_k), NULL },
    [DT_Q6_K]        = { REF(q6_k),        AVX2(q6_k),      Q(q6_k), NULL },
    [DT_Q8_K]        = { REF(q8_k),        SCALAR,          NULL,    NULL },
    [DT_IQ2_XXS]     = { REF(iq2_xxs),     SCALAR,          NULL,    NULL },
    [DT_IQ2_XS]      = { REF(iq2_xs),      SCALAR,          NULL,    NULL },
    [DT_IQ2_S]       = { REF(iq2_s),       SCALAR,          NULL,    NULL },
    [DT_IQ3_XXS]     = { REF(iq3_xxs),     SCALAR,          Q(iq3_xxs), NULL },
    [DT_IQ3_S]       = { REF(iq3_s),       SCALAR,          Q(iq3_s), NULL },
    [DT_IQ1_S]       = { REF(iq1_s),       SCALAR,          NULL,    NULL },
    [DT_IQ1_M]       = { REF(iq1_m),       SCALAR,          NULL,    NULL },
    [DT_IQ4_NL]      = { REF(iq4_nl),      AVX2(iq4_nl),    Q(iq4_nl), NULL },
    [DT_IQ4_XS]      = { REF(iq4_xs),      AVX2(iq4_xs),    Q(iq4_xs), NULL },
    [DT_TQ1_0]       = { REF(tq1_0),       SCALAR,          Q(tq1_0), NULL },
    [DT_TQ2_0]       = { REF(tq2_0),       SCALAR,          Q(tq2_0), NULL },
    [DT_MXFP4]       = { REF(mxfp4),       SCALAR,          NULL,    NULL },
    [DT_NVFP4]       = { REF(nvfp4),       SCALAR,          NULL,    NULL },
    [DT_Q1_0]        = { REF(q1_0),        SCALAR,          NULL,    NULL },
    [DT_Q2_0]        = { REF(q2_0),        SCALAR,          NULL,    NULL },
    [DT_BOOL]        = { REF(bool),        SCALAR,          NULL,    NULL },
    [DT_U8]          = { REF(u8),          SCALAR,          NULL,    NULL },
    [DT_U16]         = { REF(u16),         SCALAR,          NULL,    NULL },
    [DT_U32]         = { REF(u32),         SCALAR,          NULL,    NULL },
    [DT_U64]         = { REF(u64),         SCALAR,          NULL,    NULL },
    [DT_F8_E4M3]     = { REF(f8_e4m3),     SCALAR,          NULL,    LUT(f8_e4m3) },
    [DT_F8_E5M2]     = { REF(f8_e5m2),     SCALAR,          NULL,    LUT(f8_e5m2) },
    [DT_F8_E8M0]     = { REF(f8_e8m0),     SCALAR,          NULL,    LUT(f8_e8m0) },
    [DT_F8_E4M3FNUZ] = { REF(f8_e4m3fnuz), SCALAR,          NULL,    LUT(f8_e4m3fnuz) },
    [DT_F8_E5M2FNUZ] = { REF(f8_e5m2fnuz), SCALAR,          NULL,    LUT(f8_e5m2fnuz) },
    [DT_C64]         = { NULL,             NULL,            NULL,    NULL },  /* no real value */
    [DT_F4]          = { REF(f4),          SCALAR,          NULL,    LUT(f4) },
    [DT_F6_E2M3]     = { REF(f6_e2m3),     SCALAR,          NULL,    LUT(f6_e2m3) },
    [DT_F6_E3M2]     = { REF(f6_e3m2),     SCALAR,          NULL,    LUT(f6_e3m2) },
    [DT_APR_Q4]      = { REF(apr_q4),      SCALAR,          NULL,    NULL },
    [DT_APR_Q8]      = { REF(apr_q8),      SCALAR,          NULL,    NULL },
};

#define QW(k) dq_##k##_quantize_w
static const dq_quantize_w_fn rows_w[DT_COUNT] = {
    [DT_Q4_0] = QW(q4_0), [DT_Q4_1] = QW(q4_1), [DT_Q5_0] = QW(q5_0), [DT_Q5_1] = QW(q5_1),
    [DT_Q2_K] = QW(q2_k), [DT_Q3_K] = QW(q3_k), [DT_Q4_K] = QW(q4_k), [DT_Q5_K] = QW(q5_k),
    [DT_Q6_K] = QW(q6_k), [DT_IQ4_NL] = QW(iq4_nl), [DT_IQ4_XS] = QW(iq4_xs),
    [DT_IQ3_XXS] = QW(iq3_xxs), [DT_IQ3_S] = QW(iq3_s),
    [DT_IQ2_XXS] = QW(iq2_xxs), [DT_IQ2_XS] = QW(iq2_xs), [DT_IQ2_S] = QW(iq2_s),
    [DT_IQ1_S] = QW(iq1_s), [DT_IQ1_M] = QW(iq1_m),
};

#ifdef DQ_HAVE_AVX2_BUILD
/* SIMD quantizer twins (dq_avx2.c, dq_quant.c over dq_quant_avx2.c): the same bytes as
 * rows[].quant and rows_w[] (check_quant.c, twins). */
static const struct {
    int dtype;
    dq_quantize_fn q;
    dq_quantize_w_fn qw;
} simd_quant[] = {
    { DT_Q8_0, dq_q8_0_quantize_avx2, NULL },
    { DT_Q4_K, dq_q4_k_quantize_avx2, dq_q4_k_quantize_w_avx2 },
    { DT_Q5_K, dq_q5_k_quantize_avx2, dq_q5_k_quantize_w_avx2 },
    { DT_Q6_K, dq_q6_k_quantize_avx2, dq_q6_k_quantize_w_avx2 },
    { DT_Q2_K, dq_q2_k_quantize_avx2, dq_q2_k_quantize_w_avx2 },
    { DT_Q3_K, NULL, dq_q3_k_quantize_w_avx2 },
    { DT_Q4_0, dq_q4_0_quantize_avx2, dq_q4_0_quantize_w_avx2 },
    { DT_Q5_0, dq_q5_0_quantize_avx2, dq_q5_0_quantize_w_avx2 },
    { DT_Q4_1, dq_q4_1_quantize_avx2, dq_q4_1_quantize_w_avx2 },
    { DT_Q5_1, dq_q5_1_quantize_avx2, dq_q5_1_quantize_w_avx2 },
    { DT_IQ4_NL, dq_iq4_nl_quantize_avx2, dq_iq4_nl_quantize_w_avx2 },
    { DT_IQ4_XS, dq_iq4_xs_quantize_avx2, dq_iq4_xs_quantize_w_avx2 },
};
#endif

static struct dq_traits traits[DT_COUNT];
static pthread_once_t traits_once = PTHREAD_ONCE_INIT;

static void traits_init(void)
{
    int simd = dq__cpu_avx2();
    dq__lut_init();
    for (int t = 0; t < DT_COUNT; t++) {
        const struct dtype_info *info = dtype_get(t);
        struct dq_traits *tr = &traits[t];
        if (!info)
            continue;
        tr->dtype = t;
        tr->info = info;
        tr->blck = info->blck;
        tr->type_size = info->type_size;
        tr->to_f32_ref = rows[t].ref;
        tr->to_f32 = rows[t].ref;
        tr->fast_isa = "scalar";
        tr->quantize = tr->quantize_ref = rows[t].quant;
        tr->quantize_w = tr->quantize_w_ref = rows_w[t];
        tr->needs_imatrix = rows_w[t] && !rows[t].quant;
        if (rows[t].lut) {
            tr->to_f32 = rows[t].lut;
            tr->fast_isa = "lut";
        }
        if (simd && rows[t].avx2) {
            tr->to_f32 = rows[t].avx2;
            tr->fast_isa = "avx2";
        }
#ifdef DQ_HAVE_AVX2_BUILD
        for (size_t k = 0; simd && k < sizeof simd_quant / sizeof simd_quant[0]; k++)
            if (simd_quant[k].dtype == t) {
                if (simd_quant[k].q)
                    tr->quantize = simd_quant[k].q;
                if (simd_quant[k].qw)
                    tr->quantize_w = simd_quant[k].qw;
            }
#endif
    }
}

const struct dq_traits *dq_get(int dtype)
{
    if (!dtype_get(dtype))
        return NULL;
    pthread_once(&traits_once, traits_init);
    return &traits[dtype];
}

/* ---------------------------------------------------------------------------------------
 * Decoding element ranges.  A range [e0, e1) starts on a block boundary and ends on one
 * or at the end of the tensor (APR_Q4's padded last block, or any APR_Q8 element).
 */

static void decode_range(const struct dq_traits *tr, const uint8_t *src, int64_t e0, int64_t e1,
                         float *dst, int use_ref)
{
    if (e1 <= e0)
        return;
    if (tr->dtype == DT_APR_Q8) {
        dq__apr_q8_range(src, e0, dst, e1 - e0);
        return;
    }
    (use_ref ? tr->to_f32_ref : tr->to_f32)(src + (uint64_t)(e0 / tr->blck) * tr->type_size,
                                            dst, e1 - e0);
}

/* Block count of n elements (APR_Q4 rounds up; APR_Q8 has one "block" per element). */
static int64_t n_blocks(const struct dq_traits *tr, int64_t n)
{
    return n / tr->blck + (n % tr->blck != 0);
}

/* Common checks for a source of n elements in src_bytes bytes. */
static int check_src(const struct dq_traits *tr, int dtype, const void *src, uint64_t src_bytes,
                     int64_t n, struct err *e)
{
    uint64_t need;
    if (!tr)
        return ERR(e, ERR_USAGE, "unknown dtype id %d", dtype);
    if (!tr->to_f32_ref)
        return ERR(e, ERR_UNSUPPORTED, "dtype '%s' (complex) has no real f32 value",
                   tr->info->name);
    if (n < 0)
        return ERR(e, ERR_USAGE, "negative element count %lld", (long long)n);
    if (n == 0)
        return 0;               /* nothing is read: even APR_Q8's scale may be absent */
    if (dtype_nbytes(dtype, n, &need, e))
        return -1;
    if (src_bytes < need)
        return ERR(e, ERR_FORMAT, "%lld %s elements need %llu bytes, the source holds %llu",
                   (long long)n, tr->info->name, (unsigned long long)need,
                   (unsigned long long)src_bytes);
    if (n > 0 && !src)
        return ERR(e, ERR_USAGE, "null source for %lld elements", (long long)n);
    return 0;
}

struct dq_job {
    const struct dq_traits *tr;
    const uint8_t          *src;
    float                  *dst;
    int64_t                 n;
    int                     use_ref;
};

static int dq_job_run(void *arg, int64_t b0, int64_t b1, int worker)
{
    const struct dq_job *j = arg;
    int64_t e0 = b0 * j->tr->blck, e1 = b1 * j->tr->blck;
    (void)worker;
    if (e1 > j->n)
        e1 = j->n;
    decode_range(j->tr, j->src, e0, e1, j->dst + e0, j->use_ref);
    return 0;
}

static int to_f32(int dtype, const void *src, uint64_t src_bytes, float *dst, int64_t n,
                  int n_threads, int use_ref, struct err *e)
{
    const struct dq_traits *tr = dq_get(dtype);
    struct dq_job j;

    if (check_src(tr, dtype, src, src_bytes, n, e))
        return -1;
    if (n == 0)
        return 0;
    if (!dst)
        return ERR(e, ERR_USAGE, "null destination for %lld elements", (long long)n);
    j.tr = tr;
    j.src = src;
    j.dst = dst;
    j.n = n;
    j.use_ref = use_ref;
    /* Below ~64K elements a thread costs more than it saves. */
    if (n < 65536)
        n_threads = 1;
    return threads_run(n_threads, n_blocks(tr, n), dq_job_run, &j);
}

int dq_to_f32(int dtype, const void *src, uint64_t src_bytes, float *dst, int64_t n,
              int n_threads, struct err *e)
{
    return to_f32(dtype, src, src_bytes, dst, n, n_threads, 0, e);
}

int dq_to_f32_ref(int dtype, const void *src, uint64_t src_bytes, float *dst, int64_t n,
                  int n_threads, struct err *e)
{
    return to_f32(dtype, src, src_bytes, dst, n, n_threads, 1, e);
}

/* ---------------------------------------------------------------------------------------
 * Whole tensors.
 */

#define TNAME(t) (int)(t)->name.n, (t)->name.p

static int tensor_check(const struct model_tensor *t, const struct dq_traits **out, struct err *e)
{
    struct err e2 = ERR_INIT;
    const struct dq_traits *tr = dq_get(t->dtype);
    uint64_t need;

    if (!tr)
        return ERR(e, ERR_FORMAT, "tensor '%.*s': unknown dtype id %d", TNAME(t), t->dtype);
    if (!tr->to_f32_ref)
        return ERR(e, ERR_UNSUPPORTED, "tensor '%.*s': dtype '%s' (complex) has no real f32 value",
                   TNAME(t), tr->info->name);
    if (dtype_nbytes(t->dtype, t->n_elems, &need, &e2))
        return ERR(e, ERR_FORMAT, "tensor '%.*s': %s", TNAME(t), e2.msg);
    if (t->size < need)
        return ERR(e, ERR_FORMAT, "tensor '%.*s': %llu bytes of data, %lld %s elements need %llu",
                   TNAME(t), (unsigned long long)t->size, (long long)t->n_elems,
                   tr->info->name, (unsigned long long)need);
    if (need > 0 && !t->data)
        return ERR(e, ERR_USAGE, "tensor '%.*s': no data", TNAME(t));
    *out = tr;
    return 0;
}

float *dq_tensor_to_f32_new(const struct model_tensor *t, int n_threads, struct err *e)
{
    const struct dq_traits *tr;
    uint64_t bytes;
    size_t sz;
    float *out;

    if (tensor_check(t, &tr, e))
        return NULL;
    if (sz_mul((uint64_t)t->n_elems, sizeof(float), &bytes) || sz_to_size(bytes, &sz)) {
        ERR(e, ERR_LIMIT, "tensor '%.*s': %lld elements do not fit in memory", TNAME(t),
            (long long)t->n_elems);
        return NULL;
    }
    out = malloc(sz ? sz : sizeof(float));
    if (!out) {
        ERR(e, ERR_NOMEM, "tensor '%.*s': cannot allocate %zu bytes for f32 values", TNAME(t), sz);
        return NULL;
    }
    if (dq_to_f32(t->dtype, t->data, t->size, out, t->n_elems, n_threads, e)) {
        free(out);
        return NULL;
    }
    return out;
}

int dq_tensor_values(const struct model_tensor *t, int64_t first_n, float *out, struct err *e)
{
    const struct dq_traits *tr;
    float tmp[256];
    int64_t m, full;

    if (tensor_check(t, &tr, e))
        return -1;
    if (first_n < 0)
        return ERR(e, ERR_USAGE, "negative value count %lld", (long long)first_n);
    m = first_n < t->n_elems ? first_n : t->n_elems;
    if (m == 0)
        return 0;
    if (tr->blck > 256)
        return ERR(e, ERR_INTERNAL, "block of %u elements exceeds the scratch buffer", tr->blck);
    full = m / tr->blck * tr->blck;
    decode_range(tr, t->data, 0, full, out, 0);
    if (full < m) {
        int64_t end = full + tr->blck < t->n_elems ? full + tr->blck : t->n_elems;
        decode_range(tr, t->data, full, end, tmp, 0);
        memcpy(out + full, tmp, (size_t)(m - full) * sizeof(float));
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Statistics.  The tensor is cut into chunks of DQ_STATS_CHUNK elements (a multiple of
 * every block size); each chunk is decoded into its worker's scratch buffer and
 * summarised on its own (count, min, max, mean, M2 = sum of squared deviations, sum of
 * squares; two passes over the buffer, in double).  The chunk summaries are then
 * merged in chunk order (Chan et al.'s pairwise update), so threads never change the
 * result.
 */

struct dq_part {
    uint64_t n_fin, n_nan, n_inf, n_zero;
    double   min, max, mean, m2, sumsq;
};

struct stats_job {
    const struct dq_traits *tr;
    const uint8_t          *src;
    int64_t                 n;
    float                  *scratch;   /* DQ_STATS_CHUNK floats per worker */
    struct dq_part         *parts;     /* one per chunk */
};

static void part_of(const float *x, int64_t n, struct dq_part *p)
{
    double sum = 0;
    memset(p, 0, sizeof *p);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (isnan(v)) {
            p->n_nan++;
            continue;
        }
        if (isinf(v)) {
            p->n_inf++;
            continue;
        }
        if (v == 0.0f)
            p->n_zero++;
        if (p->n_fin == 0 || v < p->min)
            p->min = v;
        if (p->n_fin == 0 || v > p->max)
            p->max = v;
        p->n_fin++;
        sum += v;
        p->sumsq += (double)v * v;
    }
    if (p->n_fin == 0)
        return;
    p->mean = sum / (double)p->n_fin;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            double dv = x[i] - p->mean;
            p->m2 += dv * dv;
        }
}

static int stats_run(void *arg, int64_t c0, int64_t c1, int worker)
{
    const struct stats_job *j = arg;
    float *buf = j->scratch + (size_t)worker * DQ_STATS_CHUNK;
    for (int64_t c = c0; c < c1; c++) {
        int64_t e0 = c * DQ_STATS_CHUNK, e1 = e0 + DQ_STATS_CHUNK;
        if (e1 > j->n)
            e1 = j->n;
        decode_range(j->tr, j->src, e0, e1, buf, 0);
        part_of(buf, e1 - e0, &j->parts[c]);
    }
    return 0;
}

void dq_stats_begin(struct dq_stats_acc *a)
{
    memset(a, 0, sizeof *a);
}

int dq_stats_add(struct dq_stats_acc *a, int dtype, const void *src, uint64_t src_bytes,
                 int64_t n, int n_threads, struct err *e)
{
    const struct dq_traits *tr = dq_get(dtype);
    struct stats_job j;
    int64_t n_chunks;
    int rc;

    if (check_src(tr, dtype, src, src_bytes, n, e))
        return -1;
    a->n += (uint64_t)n;
    if (n == 0)
        return 0;
    n_chunks = (n + DQ_STATS_CHUNK - 1) / DQ_STATS_CHUNK;
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > n_chunks)
        n_threads = (int)n_chunks;
    j.tr = tr;
    j.src = src;
    j.n = n;
    j.scratch = malloc((size_t)n_threads * DQ_STATS_CHUNK * sizeof(float));
    j.parts = calloc((size_t)n_chunks, sizeof *j.parts);
    if (!j.scratch || !j.parts) {
        free(j.scratch);
        free(j.parts);
        return ERR(e, ERR_NOMEM, "cannot allocate statistics buffers");
    }
    rc = threads_run(n_threads, n_chunks, stats_run, &j);
    for (int64_t c = 0; c < n_chunks && rc == 0; c++) {
        const struct dq_part *p = &j.parts[c];
        a->n_nan += p->n_nan;
        a->n_inf += p->n_inf;
        a->n_zero += p->n_zero;
        a->sumsq += p->sumsq;
        if (p->n_fin == 0)
            continue;
        if (a->n_fin == 0 || p->min < a->min)
            a->min = p->min;
        if (a->n_fin == 0 || p->max > a->max)
            a->max = p->max;
        uint64_t nn = a->n_fin + p->n_fin;
        double delta = p->mean - a->mean;
        a->mean += delta * (double)p->n_fin / (double)nn;
        a->m2 += p->m2 + delta * delta * (double)a->n_fin * (double)p->n_fin / (double)nn;
        a->n_fin = nn;
    }
    free(j.scratch);
    free(j.parts);
    if (rc)
        return ERR(e, ERR_INTERNAL, "statistics failed");
    return 0;
}

void dq_stats_end(const struct dq_stats_acc *a, struct dq_stats *out)
{
    memset(out, 0, sizeof *out);
    out->n = a->n;
    out->n_nan = a->n_nan;
    out->n_inf = a->n_inf;
    out->n_zero = a->n_zero;
    if (a->n_fin) {
        out->min = a->min;
        out->max = a->max;
        out->mean = a->mean;
        out->std = sqrt(a->m2 / (double)a->n_fin);
        out->l2 = sqrt(a->sumsq);
    }
}

int dq_tensor_check(const struct model_tensor *t, struct err *e)
{
    const struct dq_traits *tr;
    return tensor_check(t, &tr, e);
}

int dq_tensor_stats(const struct model_tensor *t, int n_threads, struct dq_stats *out,
                    struct err *e)
{
    const struct dq_traits *tr;
    struct dq_stats_acc a;

    memset(out, 0, sizeof *out);
    if (tensor_check(t, &tr, e))
        return -1;
    dq_stats_begin(&a);
    if (dq_stats_add(&a, t->dtype, t->data, t->size, t->n_elems, n_threads, e)) {
        err_prefix(e, "tensor '%.*s'", TNAME(t));
        return -1;
    }
    dq_stats_end(&a, out);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Quantization.
 */

/* The grids' neighbour tables some quantizers search, built once. */
static int dq__quant_init(int dtype, struct err *e)
{
    if ((dtype == DT_IQ3_XXS || dtype == DT_IQ3_S) && !dq__iq3_ready())
        return ERR(e, ERR_NOMEM, "cannot allocate the IQ3 neighbour tables");
    if ((dtype == DT_IQ2_XXS || dtype == DT_IQ2_XS || dtype == DT_IQ2_S || dtype == DT_IQ1_S ||
         dtype == DT_IQ1_M) && !dq__iq2_ready())
        return ERR(e, ERR_NOMEM, "cannot allocate the IQ2/IQ1 lattice tables");
    return 0;
}

/* The checks both quantize entry points make: a shape that fits int64 and whole blocks
 * per row, buffers, the type's tables.  -1: error (in e); 0: nothing to quantize; 1: go. */
static int quant_args(int dtype, const struct dq_traits *tr, const float *src, const void *dst,
                      int64_t n_rows, int64_t n_per_row, struct err *e)
{
    int64_t n;

    if (sz_mul_i64(n_rows, n_per_row, &n))
        return ERR(e, ERR_USAGE, "bad shape %lld x %lld", (long long)n_rows, (long long)n_per_row);
    if (n_per_row % tr->blck)
        return ERR(e, ERR_FORMAT, "rows of %lld elements are not whole %s blocks of %u",
                   (long long)n_per_row, tr->info->name, tr->blck);
    if (n == 0)
        return 0;
    if (!src || !dst)
        return ERR(e, ERR_USAGE, "null buffer");
    if (dq__quant_init(dtype, e))
        return -1;
    return 1;
}

struct quant_job {
    dq_quantize_fn fn;
    const float   *src;
    uint8_t       *dst;
    int64_t        n_per_row;
    uint64_t       row_bytes;
};

static int quant_run(void *arg, int64_t r0, int64_t r1, int worker)
{
    const struct quant_job *j = arg;
    (void)worker;
    j->fn(j->src + r0 * j->n_per_row, j->dst + (uint64_t)r0 * j->row_bytes,
          (r1 - r0) * j->n_per_row);
    return 0;
}

int dq_quantize_mt(int dtype, const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                   int n_threads, struct err *e)
{
    const struct dq_traits *tr = dq_get(dtype);
    struct quant_job j;
    int rc;

    if (!tr)
        return ERR(e, ERR_USAGE, "unknown dtype id %d", dtype);
    if (!tr->quantize)
        return ERR(e, ERR_UNSUPPORTED, "cannot quantize to '%s'", tr->info->name);
    if ((rc = quant_args(dtype, tr, src, dst, n_rows, n_per_row, e)) <= 0)
        return rc;
    j.fn = tr->quantize;
    j.src = src;
    j.dst = dst;
    j.n_per_row = n_per_row;
    j.row_bytes = (uint64_t)(n_per_row / tr->blck) * tr->type_size;
    return threads_run(n_threads, n_rows, quant_run, &j);
}

struct quant_w_job {
    dq_quantize_w_fn fn;
    const float     *src, *qw;
    uint8_t         *dst;
    int64_t          n_per_row, qw_rows, row0;
    uint64_t         row_bytes;
};

static int quant_w_run(void *arg, int64_t r0, int64_t r1, int worker)
{
    const struct quant_w_job *j = arg;
    (void)worker;
    for (int64_t r = r0; r < r1; r++) {
        const float *w = j->qw;
        if (j->qw_rows > 0)
            w += ((j->row0 + r) / j->qw_rows) * j->n_per_row;
        j->fn(j->src + r * j->n_per_row, j->dst + (uint64_t)r * j->row_bytes, j->n_per_row, w);
    }
    return 0;
}

int dq_quantize_w_mt(int dtype, const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                     const float *qw, int64_t qw_rows, int64_t row0, int n_threads,
                     struct err *e)
{
    const struct dq_traits *tr = dq_get(dtype);
    struct quant_w_job j;
    int rc;

    if (!tr)
        return ERR(e, ERR_USAGE, "unknown dtype id %d", dtype);
    if (!tr->quantize_w || (!qw && !tr->needs_imatrix))
        return dq_quantize_mt(dtype, src, dst, n_rows, n_per_row, n_threads, e);
    if (!qw)
        return ERR(e, ERR_UNSUPPORTED, "quantizing to '%s' needs an importance matrix",
                   tr->info->name);
    if (qw_rows < 0 || row0 < 0)
        return ERR(e, ERR_USAGE, "bad shape %lld x %lld", (long long)n_rows, (long long)n_per_row);
    if ((rc = quant_args(dtype, tr, src, dst, n_rows, n_per_row, e)) <= 0)
        return rc;
    j.fn = tr->quantize_w;
    j.src = src;
    j.qw = qw;
    j.dst = dst;
    j.n_per_row = n_per_row;
    j.qw_rows = qw_rows;
    j.row0 = row0;
    j.row_bytes = (uint64_t)(n_per_row / tr->blck) * tr->type_size;
    return threads_run(n_threads, n_rows, quant_w_run, &j);
}

int dq_quantize(int dtype, const float *src, void *dst, int64_t n_rows, int64_t n_per_row,
                struct err *e)
{
    return dq_quantize_mt(dtype, src, dst, n_rows, n_per_row, 1, e);
}
