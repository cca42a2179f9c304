/*
 * apr.h - APR v2 (aprender) reader and writer.
 *
 * APR v2 is aprender's model container: a 64-byte header with a CRC-32, compact JSON
 * metadata, a packed tensor index sorted by name, 64-byte aligned tensor data and a
 * CRC-32 footer over everything before it.  The byte layout is drawn in apr_read.c;
 * the normative description is ../shared/reference/apr.md section 2.
 *
 * Reading fills the one model view (formats/model.h): every top-level metadata key
 * becomes a kv (dotted keys such as "tokenizer.vocabulary" stay literal keys), tensors
 * keep index order, shapes are outermost first (APR already is), stored_dtype is the
 * raw dtype byte (legacy 8/9 map to APR_Q4/APR_Q8).  The header CRC must match; a
 * footer CRC mismatch or a truncated footer is only a note at open (apr_footer_crc_ok,
 * below), as the index stays usable: a reader that uses the whole file calls
 * apr_check_integrity (or opens with apr_read_opts.verify) to make either an error.
 */
#ifndef APR_H
#define APR_H

#include <stddef.h>
#include <stdint.h>

#include "../model.h"

/* Header flags (u16 at offset 6; reference/apr.md 2.2). */
enum apr_flags {
    APR_FLAG_LZ4          = 1 << 0,   /* payload LZ4-compressed: refused */
    APR_FLAG_ZSTD         = 1 << 1,   /* payload zstd-compressed: refused */
    APR_FLAG_ENCRYPTED    = 1 << 2,   /* refused */
    APR_FLAG_SIGNED       = 1 << 3,   /* accepted; the signature is not checked (a note) */
    APR_FLAG_SHARDED      = 1 << 4,
    APR_FLAG_QUANTIZED    = 1 << 5,
    APR_FLAG_FILTERBANK   = 1 << 6,
    APR_FLAG_MODEL_CARD   = 1 << 7,
    APR_FLAG_STREAMING    = 1 << 8,
    APR_FLAG_VOCAB        = 1 << 9,
    APR_FLAG_ROW_MAJOR    = 1 << 10,  /* always set by aprender's writers and ours */
    APR_FLAG_COLUMN_MAJOR = 1 << 11,  /* "forbidden" by aprender: refused */
};

/* Values of model.apr_footer_crc_ok. */
#define APR_FOOTER_OK         1
#define APR_FOOTER_MISMATCH   0
/* The file ends before the end of the padded tensor data plus the 4-byte footer: it
 * was cut anywhere in the padding or the footer after the last tensor.  (A file whose
 * last 4 bytes checksum everything before them is OK even without the last padding.) */
#define APR_FOOTER_TRUNCATED (-1)
/* Not checked (apr_read_opts.skip_footer_crc, MODEL_OPEN_HEADER_ONLY). */
#define APR_FOOTER_UNCHECKED (-2)

/*
 * Read path into m.  m owns its mapping; tensor data pointers and names borrow it and
 * die with model_close(m).  On failure m is left zeroed and e names the file, the
 * tensor or key, and the byte offset.  Verifies the footer CRC, which reads the whole
 * file once (pages are dropped as it goes, so RSS stays small).
 */
int apr_open(struct model *m, const char *path, struct err *e);
/* The same over a caller-owned buffer, which must outlive m; name is for messages. */
int apr_open_mem(struct model *m, const void *buf, size_t n, const char *name, struct err *e);

struct apr_read_opts {
    int skip_footer_crc;  /* leave apr_footer_crc_ok = APR_FOOTER_UNCHECKED: header-only cost */
    int skip_header_crc;  /* FUZZING ONLY: let mutated headers reach the index/JSON parsers;
                             apr_header_crc_ok then says whether it matched */
    int verify;           /* 1: the open fails as apr_check_integrity does (a footer
                             mismatch or truncation is an error, not a note) */
};
int apr_open_opts(struct model *m, const char *path, const struct apr_read_opts *o,
                  struct err *e);
int apr_open_mem_opts(struct model *m, const void *buf, size_t n, const char *name,
                      const struct apr_read_opts *o, struct err *e);
/*
 * Check the footer CRC of an opened APR model now (after skip_footer_crc); sets and
 * returns m->apr_footer_crc_ok (APR_FOOTER_OK, _MISMATCH or _TRUNCATED) and adds the
 * same note apr_open would have.
 */
int apr_footer_verify(struct model *m);
/*
 * Require the integrity of an opened model: for an APR file, its header CRC and its
 * footer CRC (checked now when the open skipped it, which reads the whole file once).
 * 0 when both match, and for any other format (nothing to check).  Otherwise -1 with
 * ERR_FORMAT and a message naming the file and what failed:
 *   "x.apr: corrupt APR file (its bytes changed after it was written): footer checksum
 *    mismatch, stored 0x1234abcd at offset N"
 *   "x.apr: truncated APR file: it ends at byte N, but the tensor data padded to 64
 *    bytes ends at M and a 4-byte footer checksum follows it at offset N"
 *   "x.apr: corrupt APR file: header checksum mismatch" (only after skip_header_crc)
 * Every tool that reads a whole APR file (convert, hash, diff) calls it; a salvage
 * option may turn the error into a warning (print e.msg and go on).
 */
int apr_check_integrity(struct model *m, struct err *e);

/* The output stream a tensor_data producer writes to. */
struct apr_out;
/* Append n bytes of the current tensor; 0, or -1 with e set. */
int apr_out_write(struct apr_out *out, const void *p, size_t n, struct err *e);
/*
 * Append n bytes of the current tensor that are both in memory at p and in the file fd
 * at [off, off+n) (a source file and its mapping).  The writer has the kernel copy them
 * (copy_file_range(2): the bytes never pass through user space, and filesystems with
 * reflinks share the blocks) and reads p only for the CRC; where the kernel cannot
 * (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP, EBADF) it writes from p instead, as apr_out_write.
 * Both copies must stay unchanged while the writer runs: a source modified meanwhile can
 * leave a footer CRC that does not match, which apr_open reports.
 */
int apr_out_copy(struct apr_out *out, int fd, uint64_t off, const void *p, size_t n,
                 struct err *e);
/*
 * As apr_out_copy, but the writer does not read the bytes at all: their CRC-32 comes
 * from apr_write_opts.tensor_crc at the end (for a caller that reads the source in a
 * pass of its own anyway).  p is read only where the kernel cannot copy.  A tensor's
 * bytes come all this way or none (else ERR_INTERNAL: tensor_crc is per tensor).
 */
int apr_out_copy_crc_later(struct apr_out *out, int fd, uint64_t off, const void *p, size_t n,
                           struct err *e);

/*
 * Writer options.  Zero-initialise: { 0 } is aprender's default file (flags 0x0400).
 */
struct apr_write_opts {
    uint16_t extra_flags;   /* OR-ed into 0x0400 (e.g. APR_FLAG_VOCAB); LZ4/ZSTD/ENCRYPTED/
                               COLUMN_MAJOR are refused: we would write what nobody can read */
    /* Called after each tensor's data is written (may be NULL). */
    void   (*progress)(void *ctx, uint64_t done_bytes, uint64_t total_bytes);
    void    *progress_ctx;
    /*
     * Optional producer of tensor data (as gguf_write_opts.tensor_data): NULL copies
     * t->size bytes from t->data.  Otherwise called once per tensor i, in the sorted
     * order the data is laid out in, and it must write exactly m->tensors[i].size
     * bytes through apr_out_write (the writer adds the padding and the CRC).
     */
    int    (*tensor_data)(void *ctx, const struct model *m, uint64_t i, struct apr_out *out,
                          struct err *e);
    void    *tensor_data_ctx;
    /*
     * Optional: called once after the last tensor's data is written and before the
     * header, metadata and index, which go in last at the front of the file.  It may
     * change values in m->kv (through the caller's own pointer to m) as long as the
     * metadata JSON keeps its length: a value only known once the data has gone out,
     * such as a hash of the source computed alongside (fixed-width hex).  A length
     * change is ERR_INTERNAL.
     */
    int    (*meta_final)(void *ctx, struct err *e);
    void    *meta_final_ctx;
    /*
     * Required when tensor_data uses apr_out_copy_crc_later: *crc = the CRC-32 (zlib) of
     * the m->tensors[i].size bytes of tensor i.  Called after meta_final, once for each
     * such tensor, in data order.  A wrong value gives a file whose footer CRC does not
     * match (apr_open reports it).
     */
    int    (*tensor_crc)(void *ctx, uint64_t i, uint32_t *crc, struct err *e);
    void    *tensor_crc_ctx;
    /*
     * 1: tensors whose ggml type has no APR code are stored byte-exact under the
     * extension code 0xC0 + ggml type id, and the header gets APR_FLAG_ENCRYPTED so that
     * realizar refuses the file instead of misreading it (aprender already refuses the
     * codes).  m must then hold the metadata key "apr_tools.dtype_ext" = "ggml+192",
     * which tells apr_read that the flag means extension codes.  See man/apr.5.
     */
    int      ggml_ext_codes;
};

/* The extension code base and marker of apr_write_opts.ggml_ext_codes. */
#define APR_EXT_CODE_BASE 192
#define APR_EXT_KEY       "apr_tools.dtype_ext"
#define APR_EXT_VALUE     "ggml+192"

/*
 * Write m as an APR v2 file byte-compatible with aprender's AprV2Writer:
 *   magic "APR\0", version 2.0, flags 0x0400 | o->extra_flags;
 *   metadata at 64 = compact JSON of m->kv in kv order (model_val_to_json), zero-padded to 64;
 *   index sorted bytewise by name, data offsets assigned cumulatively in that order;
 *   each tensor's data (read from t->data) zero-padded to 64; header CRC; footer CRC.
 * The data goes out first (from offset data_off), then header, metadata and index at
 * offset 0, then the footer, whose CRC joins the two parts with crc_combine.
 * Tensor dtypes must have an APR code (dtype_get(t->dtype)->apr_code >= 0), else
 * ERR_UNSUPPORTED naming the tensor.  Names must be unique, non-empty and at most 256
 * bytes; shapes at most 8 dims; t->size must equal dtype_nbytes of the shape.
 * The file is streamed to a temporary file beside path (common/ofile.h) and renamed over path
 * only when complete; on failure nothing is left behind.  An existing path is replaced:
 * refusing to overwrite is the caller's decision.  o may be NULL.
 */
int apr_write(const struct model *m, const char *path, const struct apr_write_opts *o,
              struct err *e);

#endif
