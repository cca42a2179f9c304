/*
 * convert_impl.h - private to convert/: the state of one conversion and the steps
 * convert_run drives (see convert.c for the pipeline and the rules).
 *
 *   convert.c    options, the run, cleanup            plan.c     the tensor plan
 *   meta_out.c   the output view's metadata           data.c     producing tensor bytes
 *   verify.c     --verify of the staged output        report.c   the report
 *   provenance.c the source's SHA-256 (a 2nd thread)  stage.c    staging and commit
 */
#ifndef CONVERT_IMPL_H
#define CONVERT_IMPL_H

#include "../common/stream.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "convert.h"
#include "imatrix.h"
#include "quant_mix.h"
#include "../common/progress.h"
#include "../common/sha256.h"
#include "../formats/meta.h"
#include "../formats/model.h"
#include "../formats/names.h"
#include "../formats/apr/apr.h"
#include "../formats/gguf/gguf.h"
#include "../formats/safetensors/st.h"

#define NARROW_KEY  "apr_tools.narrowed"
#define EXT_KEY     "apr_tools.dtype_ext"
#define EXT_VALUE   "ggml+192"
#define EXT_BASE    192
#define CHUNK       ((size_t)16 << 20)     /* bytes streamed per write */
#define CONV_ELEMS  ((int64_t)1 << 22)     /* f32 elements per conversion batch (16 MiB) */
#define DEFAULT_SHARD 5000000000ULL        /* transformers' "5GB" */

enum tgt { TGT_APR = 1, TGT_GGUF, TGT_ST };

/* ---- the state of one conversion */

struct tplan {
    const struct model_tensor *src;
    char        name[NAMES_MAX];
    int         dtype;         /* target dtype */
    int         perm;          /* 0, or 1 = HF->GGUF rows, 2 = GGUF->HF rows */
    int64_t     n_head;        /* heads for the permutation */
    int         widened;       /* dtype changed because the target cannot hold it */
    int         converted;     /* dtype changed (widened or --dtype) */
    int         tied_copy;     /* APR lm_head.weight synthesized from the embedding */
    int         f32_norm;      /* GGUF: kept F32 or widened to F32 for llama.cpp (1-D, norm) */
    int         orig_dtype;    /* F16/BF16 this F32 tensor stands for (apr_tools.narrowed), or 0 */
    int         narrowed;      /* dtype restored to orig_dtype (exactly) */
    char        note[160];
};

struct cv {
    const struct convert_opts *o;
    enum tgt          tgt;
    const char       *in, *out;
    struct model      src;
    struct model      out_m;      /* the output view (arena, kv, tensors) */
    uint8_t          *kv_own;     /* per out_m.kv: 1 when the value's arrays are ours */
    struct meta       ck;         /* the canonical list (formats/meta.h) */
    struct tplan     *tp;
    uint64_t          n_tp;
    int               dtype_req;  /* --dtype, or -1 for keep */
    const struct qmix *mix;       /* --dtype of a quantized type: llama-quantize's rules */
    int              *mix_out;    /* per source tensor: the mix's choice, -1 = untouched */
    struct imatrix    im;         /* --imatrix (imatrix.h); im.n == 0 without */
    const struct imatrix_entry **mix_qw; /* per source tensor: its importance data, or NULL */
    int               use_ext;    /* APR output holds extension codes */
    int               drop_tied;  /* APR source: lm_head is a tied copy, dropped */
    int               tied_apr;   /* APR output: lm_head synthesized */
    char              sha_hex[SHA256_HEX_LEN + 1];
    int               n_threads;
    struct progress   prog;
    float            *fbuf;       /* conversion scratch */
    uint8_t          *bbuf, *bbuf2;
    size_t            bcap, bcap2;
    char             *stage;      /* staging directory */
    char             *stage_out;  /* the output inside it */
    char             *tdir;       /* the target's directory */
    int               dir_out;    /* SafeTensors directory output */
    int               verified;
    uint64_t          n_widened;
    uint64_t          n_narrowed;
    uint32_t          n_parts;    /* GGUF split set (--split-max-size): its parts, else 0 */
    int              *fds;        /* unused (the source's mfiles hold descriptors) */
    struct stream     st;         /* reads the source's tensors (data.c; common/stream.h) */
    int               st_open;
    /* APR: the source SHA-256 is computed on a second thread while the data is written;
     * source_sha256 holds a placeholder of the same length until apr_write's meta_final */
    pthread_t         sha_tid;
    int               sha_state;  /* 0 not started, 1 thread running, 2 done */
    int               sha_rc;
    struct err        sha_err;
    char              sha_new[SHA256_HEX_LEN + 1];
    atomic_int        sha_stop;
    /* The CRC-32 of each source tensor's bytes, computed by the hash pass (sha_start) for
     * the tensors of the files it reads through their open mfile (tcrc_file[k]): an
     * unchanged tensor then goes to the APR writer with apr_out_copy_crc_later and is
     * never read a second time (data.c; cv_tensor_crc).  NULL when there is no pass. */
    uint32_t         *tcrc;
    uint8_t          *tcrc_file;
};

/* plan.c */
int  cv_is_block(int dt);
int  cv_holds(const struct cv *c, int dt);
const char * cv_tgt_name(enum tgt t);
int  cv_want_gguf_names(const struct cv *c);
int  cv_is_embedding(struct slice n);
int  cv_is_head(const char *n);
int  cv_plan_tensors(struct cv *c, struct err *e);

/* meta_out.c */
int  cv_out_tensors(struct cv *c, struct err *e);
uint32_t  cv_file_type(const struct cv *c);
int  cv_any_quant(const struct cv *c);
int  cv_ck_fixup(struct cv *c, struct err *e);
int  cv_meta_gguf(struct cv *c, struct err *e);
int  cv_meta_st(struct cv *c, struct err *e);
int  cv_meta_apr(struct cv *c, struct err *e);

/* data.c */
void  cv_drop_pages(const void *p, size_t n);
int64_t  cv_src_row(const struct tplan *p, int64_t r);
const uint8_t * cv_gather(struct cv *c, const struct tplan *p, int64_t r0, int64_t n,
                             size_t row_bytes, struct err *e);
int  cv_td_gguf(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                   struct err *e);
int  cv_td_apr(void *ctx, const struct model *m, uint64_t i, struct apr_out *out,
                  struct err *e);
int  cv_td_st(void *ctx, const struct model *m, uint64_t i, struct st_out *out, struct err *e);

/* verify.c */
int  cv_verify(struct cv *c, const char *path, struct err *e);

/* provenance.c */
int  cv_sha_start(struct cv *c, struct err *e);
int  cv_sha_join(void *ctx, struct err *e);
int  cv_sha_bind(struct cv *c, struct err *e);
/* 1 when the hash pass computes the CRC-32 of source tensor t (c->tcrc). */
int  cv_tcrc_planned(const struct cv *c, const struct model_tensor *t);
/* apr_write_opts.tensor_crc: the CRC of output tensor i's bytes, from the hash pass. */
int  cv_tensor_crc(void *ctx, uint64_t i, uint32_t *crc, struct err *e);

/* stage.c */
int cv_stage_target(struct cv *c, struct err *e);
int  cv_stage_make(struct cv *c, const char *target_dir, struct err *e);
void  cv_stage_remove(struct cv *c);
char * cv_dir_of(const char *path);
int  cv_is_dir(const char *p);
int  cv_split_part(const struct cv *c, const char *path, uint32_t no, char *buf, size_t cap,
                   struct err *e);
int  cv_commit_split(struct cv *c, struct err *e);

/* report.c */
void  cv_report(struct cv *c, int wrote);

/* convert.c */
int  cv_cancelled(const struct cv *c, struct err *e);
void cv_note(const struct cv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  cv_kstr(struct cv *c, const char *s, struct slice *out, struct err *e);
int  cv_exists(const char *dir, const char *name);
int  cv_move_into(const char *from_dir, const char *name, const char *to_dir, struct err *e);
int  cv_move_all(struct cv *c, const char *dir, struct err *e);

#endif
