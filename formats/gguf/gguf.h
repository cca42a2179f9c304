/*
 * gguf.h - GGUF v1/v2/v3 reader and v3 writer (public interface).
 * (Design comment with the byte layout: see gguf_read.c.)
 */
#ifndef GGUF_H
#define GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "../model.h"

/*
 * Read a GGUF file (v1, v2 or v3, little-endian) into m (see model.h).  The whole
 * structure is validated before it returns (reference/gguf-quant.md 6): counts
 * against the bytes left, strings, value types, keys unique and non-empty,
 * general.alignment, dims, types, sizes, offsets aligned, in the file and not
 * overlapping.  On success m owns the mapping, every slice and data pointer borrows
 * it (they die with model_close), ne[] is reversed into outermost-first shapes, and
 * m->notes lists accepted oddities (non-canonical layout, BOOL bytes other than 0/1,
 * names over 63 bytes, short final padding).  On failure returns -1, m is left
 * zeroed and e names the file, the key or tensor, and the byte offset (ERR_FORMAT;
 * ERR_UNSUPPORTED for big-endian files, versions > 3 and unknown tensor types).
 */
int gguf_open(struct model *m, const char *path, struct err *e);
/*
 * Split sets (gguf_split.c): gguf_open on the first part of a llama.cpp gguf-split set
 * (model-00001-of-00003.gguf with split.no 0 and split.count 3) reads every part as one
 * model: tensors of part i+1 have file = i (m->files[i] is that part), the keys are the
 * first part's without split.no / split.count / split.tensors.count, and the parts are
 * checked against each other (numbering, counts, every part present, unique names).
 * A later part opened alone keeps its split keys and gets a note naming the first part.
 * gguf_open_single reads exactly one file, whatever its split keys say.
 */
int gguf_open_single(struct model *m, const char *path, struct err *e);
/* The same over a caller-owned buffer (tests, fuzzers); buf must outlive m.  name
 * (or "<memory>") is used in messages. */
int gguf_open_mem(struct model *m, const void *buf, size_t n, const char *name, struct err *e);

/* ---- writer (gguf_write.c) ------------------------------------------------------------ */

/* The output stream a tensor_data callback writes to (buffered, position-counting). */
struct gguf_out;

/* Append n bytes to the output; 0, or -1 with e set (ERR_IO). */
int gguf_out_write(struct gguf_out *out, const void *p, size_t n, struct err *e);
/*
 * Append n bytes that are both in memory at p and in the file fd at [off, off+n) (a
 * source file and its mapping): the kernel copies them file to file (copy_file_range(2),
 * no pass through user space; a reflink where the filesystem shares blocks).  Where it
 * cannot (EXDEV, EINVAL as for a pipe, ENOSYS, EOPNOTSUPP) the bytes at p are written
 * instead, as gguf_out_write.  Both must stay unchanged while the writer runs.
 */
int gguf_out_copy(struct gguf_out *out, int fd, uint64_t off, const void *p, size_t n,
                  struct err *e);

struct gguf_write_opts {
    /*
     * Optional producer of tensor data.  NULL: each tensor's bytes are copied from
     * m->tensors[i].data (t->size bytes).  Otherwise called once per tensor, in
     * order, and it must write exactly the tensor's byte size (computed from its
     * dtype and shape) through gguf_out_write; the writer adds the padding.  This is
     * how a converter streams new data (requantized, permuted) tensor by tensor.
     */
    int  (*tensor_data)(void *ctx, const struct model *m, uint64_t i, struct gguf_out *out,
                        struct err *e);
    void  *ctx;
    /*
     * With no tensors there is no data section.  0 (default): the file ends after the
     * last KV, as gguf-py writes vocab-only files (llama.cpp's own vocab test files are
     * so).  1: pad to the alignment anyway, as ggml's gguf_write_to_file does.
     */
    int    pad_empty;
};

#define GGUF_WRITE_OPTS_INIT { NULL, NULL, 0 }

/*
 * Write m as GGUF v3 in llama.cpp's canonical form:
 *   - the KVs in m's order with their exact value types (GGUF holds no NULL or
 *     OBJECT values: such keys are refused, naming the key);
 *   - ALIGNMENT = general.alignment when m has it (it must be a UINT32 power of two),
 *     else 32;
 *   - the tensor infos in m's order: shape reversed back into ne[], n_dims = the
 *     tensor's n_dims, the ggml type of its dtype, offset = the running sum of the
 *     aligned sizes of the tensors before it;
 *   - 0x00 padding to ALIGNMENT after the infos and after every tensor, the last too.
 * The model is checked completely before anything is written.  Data is streamed
 * tensor by tensor (never the whole file in memory) into a temporary file beside path
 * (common/ofile.h: "<dir>/.<base>.XXXXXX", not fsync()ed), which is renamed onto path
 * when complete and removed on any failure.  o may be NULL.  Returns 0, or -1 with e set.
 */
int gguf_write(const struct model *m, const char *path, const struct gguf_write_opts *o,
               struct err *e);

/*
 * Write m as a split set that llama.cpp loads, as llama-gguf-split --split-max-size
 * writes it: parts named {prefix}-00001-of-0000N.gguf (prefix = path without ".gguf"
 * and without a "-00001-of-NNNNN" of its own), tensors in m's order, a new part
 * whenever the next tensor's padded data would take the part past max_bytes (a larger
 * tensor gets a part of its own); the first part holds every key of m, and every part
 * split.no (UINT16, from 0), split.count (UINT16) and split.tensors.count (INT32); m's
 * own split.* keys are replaced.  Each part is in gguf_write's canonical form.  All
 * parts are written to temporary files and renamed only when every one is complete.
 * o->tensor_data (when set) is called with m and m's tensor index, as gguf_write does.
 * *n_parts (may be NULL) gets the number of parts.  gguf_open reads the set back from
 * its first part.
 */
int gguf_write_split(const struct model *m, const char *path, uint64_t max_bytes,
                     const struct gguf_write_opts *o, uint32_t *n_parts, struct err *e);

/* The name gguf_write_split gives part no (from 1) of count for path, into buf (cap
 * bytes).  Returns 0, or -1 when buf is too small. */
int gguf_split_path(const char *path, uint32_t no, uint32_t count, char *buf, size_t cap);

/* The same into an open descriptor positioned at the start of the output (name is used
 * in messages).  The caller owns fd; on failure partial output may remain. */
int gguf_write_fd(const struct model *m, int fd, const char *name,
                  const struct gguf_write_opts *o, struct err *e);

#endif
