/*
 * mfile.h - read-only whole-file memory maps.
 *
 * mfile_open opens O_RDONLY, fstat()s and maps PROT_READ/MAP_PRIVATE.  The descriptor
 * stays open beside the mapping (fd) for the streaming reader (stream.h), which pread()s
 * whole-tensor passes from the very file that was mapped and validated.  An empty file
 * has data == NULL, size == 0 (no mmap) and no descriptor.  Directories and other non-regular files are refused.
 * Everything a reader parses borrows mf->data: close the parsed object before
 * mfile_close(mf).
 */
#ifndef MFILE_H
#define MFILE_H

#include <stdint.h>
#include <stddef.h>

#include "err.h"

struct mfile {
    const uint8_t *data;   /* owned mapping; NULL when size == 0 */
    uint64_t       size;
    char          *path;   /* owned copy, for messages */
    int            mapped; /* 1 when data must be munmap()ed; 0 for mfile_wrap */
    int            fd;     /* open O_RDONLY descriptor when mapped (closed by mfile_close);
                            * meaningless when mapped == 0 */
};

int mfile_open(struct mfile *mf, const char *path, struct err *e);
/* Wrap caller-owned memory (tests, fuzzers): nothing is unmapped on close. */
int mfile_wrap(struct mfile *mf, const void *data, size_t size, const char *name, struct err *e);
void mfile_close(struct mfile *mf);       /* accepts a zeroed or closed mf */
/* Advise the kernel that [off, off+len) will be read sequentially (MADV_SEQUENTIAL: more
 * read-ahead, early reclaim of pages behind the reader; no-op on failure). */
void mfile_advise_seq(const struct mfile *mf, uint64_t off, uint64_t len);

#endif
