/*
 * matmul.c - rt_matmul and rt_mat_row; see matmul.h.  The kernels are in kern*.c.
 *
 * Work split: the activations are first converted to the kernel's format (once per
 * call, split by token across the pool), then the output rows are cut into parts of
 * whole row groups (one token, decode, and a prompt on the F32/F16/BF16 matrix kernels:
 * guided parts, large first, see dec_pieces);
 * a part computes its rows for every token: through the kernel's
 * matrix function when it has one (kern.h's gemm, register tiles of rows x tokens,
 * up to RT_GEMM_MAXT tokens a call), else a weight row is reused for RT_TOK_TILE
 * tokens while it is hot in L1 (the matrix-matrix path).
 * The split never cuts a dot product, so results are the same for any thread count.
 */
#include "matmul.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../dequant/dq.h"
#include "../dequant/dq_impl.h"   /* dq__apr_q8_range: APR_Q8 rows have no blocks */
#include "../formats/dtype.h"
#include "kern.h"
#include "../common/banned.h"

#define RT_TOK_TILE 8      /* tokens per weight-row pass (L1 reuse of the row) */
#define RT_ROW_GRAIN 16    /* output rows per part, at least */

/* ---------------------------------------------------------------------------------
 * Kernel selection (once per process; APR_RT_ISA caps it)
 */

static struct rt_kern kern_tab[3][RT_NKERN];
static rt_quant_fn    quant_tab[3][RT_ACT_COUNT];
static enum rt_isa    isa_best = RT_ISA_SCALAR;
static atomic_int     kern_ready;

static enum rt_isa cpu_isa(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (!dq__cpu_avx2())   /* AVX2 + FMA + F16C, and APR_DQ_SCALAR unset */
        return RT_ISA_SCALAR;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        return RT_ISA_AVX512;
    return RT_ISA_AVX2;
#else
    return RT_ISA_SCALAR;
#endif
}

static void init_once(void)
{
    const char *cap = getenv("APR_RT_ISA");
    enum rt_isa cpu = cpu_isa(), best = cpu;

    if (cap && !strcmp(cap, "scalar"))
        best = RT_ISA_SCALAR;
    else if (cap && !strcmp(cap, "avx2") && best > RT_ISA_AVX2)
        best = RT_ISA_AVX2;
    /*
     * A table is filled only on a CPU that can run its file: the compiler is free to
     * use the file's instruction set in the table function itself (gcc 12 stores the
     * struct rt_kern entries of kern_avx512.c with AVX-512 moves), so calling it on an
     * AVX2-only CPU dies of SIGILL before any kernel is chosen.  Tables above the CPU
     * stay copies of the one below; rt_kern_get never reaches them (cap <= isa_best).
     */
    rt_kern_ref_table(kern_tab[RT_ISA_SCALAR], quant_tab[RT_ISA_SCALAR]);
    memcpy(kern_tab[RT_ISA_AVX2], kern_tab[RT_ISA_SCALAR], sizeof kern_tab[0]);
    memcpy(quant_tab[RT_ISA_AVX2], quant_tab[RT_ISA_SCALAR], sizeof quant_tab[0]);
#if defined(__x86_64__)
    if (cpu >= RT_ISA_AVX2)
        rt_kern_avx2_table(kern_tab[RT_ISA_AVX2], quant_tab[RT_ISA_AVX2]);
#endif
    memcpy(kern_tab[RT_ISA_AVX512], kern_tab[RT_ISA_AVX2], sizeof kern_tab[0]);
    memcpy(quant_tab[RT_ISA_AVX512], quant_tab[RT_ISA_AVX2], sizeof quant_tab[0]);
#if defined(__x86_64__)
    if (cpu >= RT_ISA_AVX512)
        rt_kern_avx512_table(kern_tab[RT_ISA_AVX512], quant_tab[RT_ISA_AVX512]);
#endif
    isa_best = best;
    atomic_store_explicit(&kern_ready, 1, memory_order_release);
}

static void kern_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    if (!atomic_load_explicit(&kern_ready, memory_order_acquire))
        pthread_once(&once, init_once);
}

enum rt_isa rt_isa_best(void)
{
    kern_init();
    return isa_best;
}

const char *rt_matmul_isa(void)
{
    static const char *const names[] = { "scalar", "avx2", "avx512" };
    return names[rt_isa_best()];
}

const struct rt_kern *rt_kern_get(int dtype, enum rt_isa cap)
{
    kern_init();
    if (cap > isa_best)
        cap = isa_best;
    if (dtype < 0 || dtype >= RT_NKERN || !kern_tab[cap][dtype].dot)
        return NULL;
    return &kern_tab[cap][dtype];
}

rt_quant_fn rt_kern_quant(enum rt_act act, enum rt_isa cap)
{
    kern_init();
    if (cap > isa_best)
        cap = isa_best;
    return quant_tab[cap][act];
}

/* ---------------------------------------------------------------------------------
 * Matrices
 */

/* 1 when row r starts at data + r * row_bytes with whole blocks. */
static int rows_whole(int dtype, int64_t cols)
{
    if (dtype == DT_APR_Q4)
        return cols % 32 == 0;
    return dtype != DT_APR_Q8 && dtype_row_ok(dtype, cols);
}

int rt_mat_init(struct rt_mat *w, int dtype, int64_t rows, int64_t cols, const void *data,
                struct err *e)
{
    const struct dq_traits *tr = dq_get(dtype);
    uint64_t nb = 0;

    memset(w, 0, sizeof *w);
    if (!tr || !tr->to_f32_ref)
        return ERR(e, ERR_UNSUPPORTED, "matmul: type '%s' has no f32 value", dtype_name(dtype));
    if (rows < 0 || cols <= 0)
        return ERR(e, ERR_FORMAT, "matmul: bad shape [%lld, %lld]", (long long)rows,
                   (long long)cols);
    if (dtype != DT_APR_Q4 && dtype != DT_APR_Q8 && !dtype_row_ok(dtype, cols))
        return ERR(e, ERR_FORMAT, "matmul: rows of %lld '%s' elements are not whole blocks of %u",
                   (long long)cols, dtype_name(dtype), tr->blck);
    if (rows_whole(dtype, cols) && dtype_nbytes(dtype, cols, &nb, e))
        return -1;
    w->dtype = dtype;
    w->rows = rows;
    w->cols = cols;
    w->data = data;
    w->row_bytes = (size_t)nb;
    return 0;
}

static size_t row_bytes_of(const struct rt_mat *w)
{
    uint64_t nb = 0;
    struct err e = ERR_INIT;

    if (w->row_bytes)
        return w->row_bytes;
    if (rows_whole(w->dtype, w->cols) && dtype_nbytes(w->dtype, w->cols, &nb, &e) == 0)
        return (size_t)nb;
    return 0;
}

/*
 * Elements [c0, c0 + len) of row r as f32 into out (len <= RT_GENERIC_CHUNK; out has
 * room for RT_GENERIC_CHUNK + 32 floats: an APR_Q4 row that starts inside a block
 * decodes that whole block first).
 */
static void mat_chunk(const struct rt_mat *w, const struct dq_traits *tr, size_t rb, int64_t r,
                      int64_t c0, int64_t len, float *out)
{
    if (rb) {
        tr->to_f32(w->data + (size_t)r * rb + (size_t)(c0 / tr->blck) * tr->type_size, out, len);
        return;
    }
    int64_t first = r * w->cols + c0;
    if (w->dtype == DT_APR_Q8) {
        dq__apr_q8_range(w->data, first, out, len);
        return;
    }
    /* APR_Q4 with rows that do not start on a block: decode the covering blocks */
    int64_t b0 = first / 32, off = first - b0 * 32;
    int64_t nblk = (off + len + 31) / 32;
    tr->to_f32(w->data + (size_t)b0 * tr->type_size, out, nblk * 32);
    if (off)
        memmove(out, out + off, (size_t)len * sizeof(float));
}

void rt_mat_row(const struct rt_mat *w, int64_t r, float *out)
{
    const struct dq_traits *tr = dq_get(w->dtype);
    size_t rb = row_bytes_of(w);
    float tmp[RT_GENERIC_CHUNK + 32];

    for (int64_t c0 = 0; c0 < w->cols; c0 += RT_GENERIC_CHUNK) {
        int64_t len = w->cols - c0 < RT_GENERIC_CHUNK ? w->cols - c0 : RT_GENERIC_CHUNK;
        if (rb) {
            mat_chunk(w, tr, rb, r, c0, len, out + c0);
        } else {
            mat_chunk(w, tr, rb, r, c0, len, tmp);
            memcpy(out + c0, tmp, (size_t)len * sizeof(float));
        }
    }
}

/* ---------------------------------------------------------------------------------
 * Decode's repacked copy (matmul.h)
 */

/* w's kernel when it has dec8 and w's rows suit it, else NULL */
static const struct rt_kern *pack8_kern(const struct rt_mat *w)
{
    const struct rt_kern *k = rt_kern_get(w->dtype, RT_ISA_AVX512);

    if (!k || !k->dec8 || !k->pack8 || !row_bytes_of(w) || w->rows <= 0 ||
        w->cols % k->pack8_n || w->cols % rt_act_blck(k->dec_act))
        return NULL;
    return k;
}

/* bytes of a group of 8 rows of w packed by k (pack8_kern's, or NULL: 0) */
static size_t pack8_group(const struct rt_kern *k, const struct rt_mat *w)
{
    return k ? (size_t)(w->cols / k->pack8_n) * k->pack8_sb : 0;
}

size_t rt_mat_pack8_stride(const struct rt_mat *w)
{
    return pack8_group(pack8_kern(w), w);
}

size_t rt_mat_pack8_bytes(const struct rt_mat *w)
{
    return rt_mat_pack8_stride(w) * (size_t)((w->rows + 7) / 8);
}

void rt_mat_pack8(const struct rt_mat *w, void *dst, int64_t g0, int64_t g1)
{
    const struct rt_kern *k = pack8_kern(w);
    size_t rb = row_bytes_of(w), gs = pack8_group(k, w);

    for (int64_t g = g0; k && g < g1 && 8 * g < w->rows; g++) {
        int64_t nr = w->rows - 8 * g < 8 ? w->rows - 8 * g : 8;
        k->pack8(w->cols, w->data + (size_t)(8 * g) * rb, rb, (int)nr, (uint8_t *)dst + (size_t)g * gs);
    }
}

/* ---------------------------------------------------------------------------------
 * The generic path: dequantize a chunk of a row, dot it with every token's chunk.
 * Eight f32 partial sums in a fixed order (vectorizable, deterministic).
 */

static float dot_f32_plain(const float *a, const float *b, int64_t n)
{
    float s[8] = { 0 };
    int64_t i = 0;

    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a[i + k] * b[i + k];
    for (; i < n; i++)
        s[i & 7] += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

struct mm_job {
    const struct rt_mat      *w;
    const struct dq_traits   *tr;
    const struct rt_kern     *k;       /* NULL: generic */
    size_t                    rb;      /* weight row bytes (0: no self-contained rows) */
    const float              *x;
    const uint8_t            *act;     /* converted activations (kernel formats) */
    size_t                    act_rb;
    rt_quant_fn               quant;
    int                       gemm;    /* use k->gemm (on k->gemm_act activations) */
    int                       dec;     /* use k->dec (on k->dec_act activations) */
    enum rt_act               act_fmt; /* of act */
    int64_t                   n_tok, rows_per_part;
    float                    *y;
};

static void generic_part(const struct mm_job *j, int64_t r0, int64_t r1)
{
    const struct rt_mat *w = j->w;
    float buf[RT_GENERIC_CHUNK + 32];

    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t = 0; t < j->n_tok; t++)
            j->y[t * w->rows + r] = 0.0f;
        /* chunks of the row in order; per token the chunk sums add in that order */
        for (int64_t c0 = 0; c0 < w->cols; c0 += RT_GENERIC_CHUNK) {
            int64_t len = w->cols - c0 < RT_GENERIC_CHUNK ? w->cols - c0 : RT_GENERIC_CHUNK;
            mat_chunk(w, j->tr, j->rb, r, c0, len, buf);
            for (int64_t t = 0; t < j->n_tok; t++)
                j->y[t * w->rows + r] += dot_f32_plain(buf, j->x + t * w->cols + c0, len);
        }
    }
}

static void kern_part(const struct mm_job *j, int64_t r0, int64_t r1)
{
    const struct rt_mat *w = j->w;

    if (j->dec && w->x8 && j->k->dec8 && r0 % 8 == 0) {   /* dec_pieces: whole groups */
        j->k->dec8(w->cols, w->x8 + (size_t)(r0 / 8) * w->x8_stride, w->x8_stride,
                   (int)(r1 - r0), j->act, j->act_rb, (int)j->n_tok, j->y + r0, (size_t)w->rows);
        return;
    }
    if (j->dec) {
        j->k->dec(w->cols, w->data + (size_t)r0 * j->rb, j->rb, (int)(r1 - r0), j->act,
                  j->act_rb, (int)j->n_tok, j->y + r0, (size_t)w->rows);
        return;
    }
    if (j->gemm) {
        for (int64_t t0 = 0; t0 < j->n_tok; t0 += RT_GEMM_MAXT) {
            int nt = (int)(j->n_tok - t0 < RT_GEMM_MAXT ? j->n_tok - t0 : RT_GEMM_MAXT);
            j->k->gemm(w->cols, w->data + (size_t)r0 * j->rb, j->rb, (int)(r1 - r0),
                       j->act + (size_t)t0 * j->act_rb, j->act_rb, nt,
                       j->y + t0 * w->rows + r0, (size_t)w->rows);
        }
        return;
    }

    for (int64_t t0 = 0; t0 < j->n_tok; t0 += RT_TOK_TILE) {
        int nt = (int)(j->n_tok - t0 < RT_TOK_TILE ? j->n_tok - t0 : RT_TOK_TILE);
        const uint8_t *a = j->act + (size_t)t0 * j->act_rb;
        for (int64_t r = r0; r < r1; r++)
            j->k->dot(w->cols, w->data + (size_t)r * j->rb, a, j->act_rb, nt,
                      j->y + t0 * w->rows + r, (size_t)w->rows);
    }
}

/* rows [r0, r1) of job j, through its kernel or the generic path */
static void job_rows(const struct mm_job *j, int64_t r0, int64_t r1)
{
    if (j->k)
        kern_part(j, r0, r1);
    else
        generic_part(j, r0, r1);
}

static void mm_part(void *ctx, int i, int n)
{
    const struct mm_job *j = ctx;
    int64_t r0 = j->rows_per_part * i, r1 = r0 + j->rows_per_part;

    (void)n;
    if (r1 > j->w->rows)
        r1 = j->w->rows;
    if (r0 < r1)
        job_rows(j, r0, r1);
}

/*
 * Decode's parts (one token): guided, largest first.  Measured on this Zen 4 (Q8_0,
 * 2048 columns, 512 MiB from DRAM, one thread, the decode kernel over parts, best of
 * 40 alternated): parts of 16 rows 13.3 GB/s, 64 rows 20.4, 128 rows 22.0, 256 rows
 * 22.7, 1024 rows 23.6 (F16: 64 rows 28.2, 256 rows 30.2); every part restarts its four
 * streams (DEC4_ROWS), and prefetching the next part's first 2-8 KB did not buy that
 * back (19.2-21.0 GB/s).  Fixed parts of 64 rows (and k and v's 256 rows in parts of
 * 16) kept the threads balanced at the end of a job; guided self-scheduling keeps both:
 * over the rows of the job's weights in order, each part is 1/threads of the rows left
 * (whole 8-row tiles, at least MM_DEC_MIN rows, never across two weights), so the first
 * parts are large and the last ones small, and a thread that ends early waits for at
 * most one small part.  1/(2 * threads) measured 1-6% slower end to end (TinyLlama tg,
 * token by token alternated), 1/(4 * threads) slower still.  No decode part holds more
 * than MM_DEC_MAXB bytes of a weight (more only where a job would need over
 * MM_DEC_MAXP / 2 such parts): on a shared machine a thread may lose its core while it
 * holds a part, and the job then waits for the rest of that part (uncapped, up to half
 * the job: F16 tg median 64.2 ms a token against 63.9 for the fixed parts, 63.2 with
 * the cap; the cap costs nothing at the best tokens).  Which rows a part holds never
 * changes a result.
 */
#define MM_DEC_MIN   32
#define MM_DEC_MAXB  ((int64_t)1 << 20)
#define MM_DEC_MAXP  512
/*
 * A prompt on the F32/F16/BF16 matrix kernels runs guided parts too, 1/(MM_PP_DIV *
 * threads) of the rows left, at least RT_ROW_GRAIN: with 16 equal parts a thread, the
 * last part taken left the other thread idle for half a part on average (an F16
 * TinyLlama gate/up part, 176 rows of both matrices, is ~2.3 ms), and the large first
 * parts stream the activations through L2 fewer times.  Measured on F16 only (the
 * quantized matrix kernels keep equal parts): see the commit adding MM_PP_DIV.
 */
#define MM_PP_DIV    4

struct mm_piece {
    int     k;        /* the job (weight) */
    int64_t r0, r1;   /* its rows */
};

/* Several products in one pool job: part i belongs to the job whose range holds it
 * (with an epilogue: part i is rows [i * rows_per_part, ...) of every job, then epi);
 * with pieces (decode), part i is pc[i]. */
struct mm_multi {
    struct mm_job *j;
    int            nj;
    rt_mm_epi_fn   epi;
    void          *ud;
    int            first[RT_MATMUL_MAXW + 1];   /* job k owns parts [first[k], first[k+1]) */
    int            per;                         /* quant: parts per activation format */
    int            fmt_job[RT_MATMUL_MAXW];     /* quant: a job of each format to convert */
    const struct mm_piece *pc;                  /* decode's guided parts, or NULL */
};

/* The guided parts of jobs j[0..nj) (rows of each in order; with an epilogue nj = 1:
 * the rows every job shares) into pc, each 1/div of the rows left, at least min rows
 * and (maxb > 0) at most maxb bytes of a weight; returns their count. */
static int dec_pieces(const struct mm_job *j, int nj, int div, int64_t min, int64_t maxb,
                      struct mm_piece *pc)
{
    int64_t rem = 0, r = 0, bytes = 0;
    int np = 0, k = 0;

    for (int i = 0; i < nj; i++) {
        rem += j[i].w->rows;
        bytes += j[i].w->rows * (int64_t)j[i].rb;
    }
    /* a job of more than MM_DEC_MAXP / 2 capped parts: larger parts, not more */
    if (maxb > 0 && bytes / maxb > MM_DEC_MAXP / 2)
        maxb = bytes / (MM_DEC_MAXP / 2) + 1;
    while (rem > 0) {
        int64_t c = (rem / div + 7) & ~(int64_t)7;
        while (r == j[k].w->rows) {
            k++;
            r = 0;
        }
        if (maxb > 0 && j[k].rb && c * (int64_t)j[k].rb > maxb)
            c = (maxb / (int64_t)j[k].rb) & ~(int64_t)7;
        if (c < min)
            c = min;
        /* the slots left hold the rest of every job, a whole job each */
        if (np >= MM_DEC_MAXP - RT_MATMUL_MAXW)
            c = j[k].w->rows - r;
        if (c > j[k].w->rows - r)
            c = j[k].w->rows - r;
        pc[np].k = k;
        pc[np].r0 = r;
        pc[np].r1 = r + c;
        np++;
        r += c;
        rem -= c;
    }
    return np;
}

static void piece_part(void *ctx, int i, int n)
{
    const struct mm_multi *m = ctx;
    const struct mm_piece *pc = &m->pc[i];

    (void)n;
    if (!m->epi) {
        job_rows(&m->j[pc->k], pc->r0, pc->r1);
        return;
    }
    for (int k = 0; k < m->nj; k++)
        job_rows(&m->j[k], pc->r0, pc->r1);
    m->epi(m->ud, pc->r0, pc->r1);
}

static void multi_part(void *ctx, int i, int n)
{
    const struct mm_multi *m = ctx;
    int k = 0;

    (void)n;
    while (i >= m->first[k + 1])
        k++;
    mm_part(&m->j[k], i - m->first[k], m->first[k + 1] - m->first[k]);
}

static void epi_part(void *ctx, int i, int n)
{
    const struct mm_multi *m = ctx;
    int64_t r0 = m->j[0].rows_per_part * i, r1 = r0 + m->j[0].rows_per_part;

    for (int k = 0; k < m->nj; k++)
        mm_part(&m->j[k], i, n);
    if (r1 > m->j[0].w->rows)
        r1 = m->j[0].w->rows;
    if (r0 < r1)
        m->epi(m->ud, r0, r1);
}

static void quant_part(void *ctx, int i, int n)
{
    const struct mm_multi *m = ctx;
    const struct mm_job *j = &m->j[m->fmt_job[i / m->per]];
    int64_t t0 = j->n_tok * (i % m->per) / m->per, t1 = j->n_tok * (i % m->per + 1) / m->per;

    (void)n;
    for (int64_t t = t0; t < t1; t++)
        j->quant(j->x + t * j->w->cols, (uint8_t *)j->act + (size_t)t * j->act_rb, j->w->cols);
}

/* Checks w and picks its kernel and activation format (j->quant set when the
 * activations need converting; j->act then still to be placed). */
static int mm_setup(struct mm_job *j, const struct rt_mat *w, const float *x, int64_t n_tok,
                    float *y, int nth, struct err *e)
{
    const struct dq_traits *tr = dq_get(w->dtype);

    if (!tr || !tr->to_f32_ref)
        return ERR(e, ERR_UNSUPPORTED, "matmul: type '%s' has no f32 value",
                   dtype_name(w->dtype));
    if (w->rows < 0 || w->cols <= 0 || n_tok < 0)
        return ERR(e, ERR_FORMAT, "matmul: bad shape [%lld, %lld] x %lld tokens",
                   (long long)w->rows, (long long)w->cols, (long long)n_tok);
    if (w->dtype != DT_APR_Q4 && w->dtype != DT_APR_Q8 && !dtype_row_ok(w->dtype, w->cols))
        return ERR(e, ERR_FORMAT, "matmul: rows of %lld '%s' elements are not whole blocks of %u",
                   (long long)w->cols, dtype_name(w->dtype), tr->blck);
    memset(j, 0, sizeof *j);
    j->w = w;
    j->tr = tr;
    j->rb = row_bytes_of(w);
    j->x = x;
    j->y = y;
    j->n_tok = n_tok;
    j->k = j->rb ? rt_kern_get(w->dtype, RT_ISA_AVX512) : NULL;
    /* one token (decode) is memory-bound: the decode kernel (dec) streams the rows once;
     * without one, the AVX2 quantized kernels read the weights straight into registers,
     * while the AVX-512 ones unpack a tile for many tokens.  All give the scalar twin's
     * bits, so the choice never changes a result */
    if (j->k && n_tok == 1 && j->k->dec && w->cols % rt_act_blck(j->k->dec_act) == 0)
        j->dec = 1;
    else if (j->k && n_tok == 1 && j->k->act != RT_ACT_F32 && j->k->isa == RT_ISA_AVX512)
        j->k = rt_kern_get(w->dtype, RT_ISA_AVX2);
    if (j->k && j->k->act != RT_ACT_F32 && w->cols % rt_act_blck(j->k->act) != 0)
        j->k = NULL;   /* e.g. Q8_0 rows of 32*k elements with Q8_K-sized activations */
    /* the matrix kernel when the kernel has one: always where it reads the activations
     * as dot does, else (its own layout, worth converting to) from 3 tokens on, or the
     * kernel's gemm_min */
    j->gemm = !j->dec && j->k && j->k->gemm &&
              (j->k->gemm_act == j->k->act || n_tok >= (j->k->gemm_min ? j->k->gemm_min : 3));
    if (j->k) {
        j->act_fmt = j->dec ? j->k->dec_act : j->gemm ? j->k->gemm_act : j->k->act;
        if (j->act_fmt == RT_ACT_F32) {
            j->act = (const uint8_t *)x;
            j->act_rb = (size_t)w->cols * sizeof(float);
        } else {
            j->act_rb = rt_act_row_bytes(j->act_fmt, w->cols);
            j->quant = rt_kern_quant(j->act_fmt, RT_ISA_AVX512);
        }
    }
    /* a prompt's parts: several per thread for balance (a part is taken whole by one
     * thread, so the last one leaves the other threads idle, and on a shared machine a
     * thread may lose its core for a while: 16 parts per thread; a part still reuses each
     * packed weight block for all its tokens), never below RT_ROW_GRAIN rows (one token,
     * and a prompt on the F32/F16/BF16 matrix kernels, run dec_pieces' parts instead) */
    int per = 16;
    j->rows_per_part = (w->rows + nth * per - 1) / (nth * per);
    if (j->rows_per_part < RT_ROW_GRAIN)
        j->rows_per_part = RT_ROW_GRAIN;
    j->rows_per_part = (j->rows_per_part + 7) & ~(int64_t)7;   /* whole 8-row tiles */
    return 0;
}

static int mm_run(struct rt_pool *p, const struct rt_mat *const *w, int nw, const float *x,
                  int64_t n_tok, float *const *y, rt_mm_epi_fn epi, void *ud, struct err *e)
{
    struct mm_job j[RT_MATMUL_MAXW];
    struct mm_multi m;
    uint8_t *act = NULL;
    size_t off[RT_MATMUL_MAXW], job_off[RT_MATMUL_MAXW], total = 0;
    int nth = rt_pool_threads(p), nfmt = 0;

    if (nw < 1 || nw > RT_MATMUL_MAXW)
        return ERR(e, ERR_INTERNAL, "matmul: %d weights in one call (1..%d)", nw,
                   RT_MATMUL_MAXW);
    memset(&m, 0, sizeof m);
    for (int k = 0; k < nw; k++) {
        if (k && w[k]->cols != w[0]->cols)
            return ERR(e, ERR_INTERNAL, "matmul: weights of %lld and %lld columns in one call",
                       (long long)w[0]->cols, (long long)w[k]->cols);
        if (k && epi && w[k]->rows != w[0]->rows)
            return ERR(e, ERR_INTERNAL, "matmul: weights of %lld and %lld rows with an epilogue",
                       (long long)w[0]->rows, (long long)w[k]->rows);
        if (mm_setup(&j[k], w[k], x, n_tok, y[k], nth, e))
            return -1;
    }
    if (n_tok == 0)
        return 0;
    /* one conversion per activation format: a job of a format seen before shares it */
    for (int k = 0; k < nw; k++) {
        int f = 0;
        if (!j[k].quant || j[k].w->rows == 0)
            continue;
        while (f < nfmt && j[m.fmt_job[f]].act_fmt != j[k].act_fmt)
            f++;
        if (f == nfmt) {
            m.fmt_job[nfmt++] = k;
            off[f] = total;
            total += (j[k].act_rb * (size_t)n_tok + 63) & ~(size_t)63;
        }
        job_off[k] = off[f];
    }
    if (nfmt) {
        /* the pool's scratch, reused call after call; malloc only without a pool */
        uint8_t *buf = rt_pool_scratch(p, total);
        if (!buf) {
            act = malloc(total);
            if (!act)
                return ERR(e, ERR_NOMEM, "matmul: out of memory for %lld x %lld activations",
                           (long long)n_tok, (long long)w[0]->cols);
            buf = act;
        }
        for (int k = 0; k < nw; k++)
            if (j[k].quant && j[k].w->rows)
                j[k].act = buf + job_off[k];
        m.j = j;
        m.per = (int)(n_tok < nth ? n_tok : nth);
        rt_pool_run(p, quant_part, &m, nfmt * m.per);
    }
    m.j = j;
    m.nj = nw;
    /* guided parts: decode, and a prompt where every weight runs the F32/F16/BF16
     * matrix kernels (MM_PP_DIV) */
    int pp_guided = n_tok > 1 && nth > 1;
    for (int k = 0; k < nw; k++)
        if (!j[k].gemm || j[k].act_fmt != RT_ACT_F32)
            pp_guided = 0;
    if (n_tok == 1 || pp_guided) {
        struct mm_piece pc[MM_DEC_MAXP];
        int np;
        m.epi = epi;
        m.ud = ud;
        if (n_tok == 1)
            np = dec_pieces(j, epi ? 1 : nw, nth < 16 ? nth : 16, MM_DEC_MIN, MM_DEC_MAXB, pc);
        else
            np = dec_pieces(j, epi ? 1 : nw, MM_PP_DIV * nth, RT_ROW_GRAIN, 0, pc);
        m.pc = pc;
        if (np)
            rt_pool_run(p, piece_part, &m, np);
        free(act);
        return 0;
    }
    if (epi) {
        /* the same rows, so the same rows_per_part: part i is rows i * rows_per_part on */
        m.epi = epi;
        m.ud = ud;
        if (w[0]->rows)
            rt_pool_run(p, epi_part, &m,
                        (int)((w[0]->rows + j[0].rows_per_part - 1) / j[0].rows_per_part));
        free(act);
        return 0;
    }
    for (int k = 0; k < nw; k++)
        m.first[k + 1] = m.first[k] +
                         (int)((j[k].w->rows + j[k].rows_per_part - 1) / j[k].rows_per_part);
    if (m.first[nw])
        rt_pool_run(p, multi_part, &m, m.first[nw]);
    free(act);
    return 0;
}

int rt_matmul_n(struct rt_pool *p, const struct rt_mat *const *w, int nw, const float *x,
                int64_t n_tok, float *const *y, struct err *e)
{
    return mm_run(p, w, nw, x, n_tok, y, NULL, NULL, e);
}

int rt_matmul_epi(struct rt_pool *p, const struct rt_mat *const *w, int nw, const float *x,
                  int64_t n_tok, float *const *y, rt_mm_epi_fn epi, void *ud, struct err *e)
{
    return mm_run(p, w, nw, x, n_tok, y, epi, ud, e);
}

int rt_matmul(struct rt_pool *p, const struct rt_mat *w, const float *x, int64_t n_tok,
              float *y, struct err *e)
{
    return rt_matmul_n(p, &w, 1, x, n_tok, &y, e);
}
