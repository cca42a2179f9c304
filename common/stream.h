/*
 * stream.h - the streaming reader of whole-tensor and whole-file passes.
 *
 * Hashing, diffing, converting and --stats read every byte once, in order.  On a VM,
 * touching every page of a fresh read-only mmap costs several times a read() into a
 * reused buffer (page-table work: 0.42-0.48 s/GB against 0.07-0.08 s/GB measured on the
 * project's 2-core machine), and every page touched stays in the process's RSS until it
 * is unmapped.  So these passes read with pread() into reused, page-aligned buffers:
 *
 *   stream_open     borrow an open struct mfile (its descriptor; mfile.h): no new open,
 *                   so the bytes read are those of the file that was validated
 *   stream_begin    start a sequential pass over [off, off+len) of the file; with
 *                   STREAM_AHEAD a second thread reads the next chunk while the caller
 *                   works on this one (double buffering)
 *   stream_next     the next chunk of the pass, borrowed until the next call
 *   stream_at       random access: [off, off+n) in a buffer of its own (diff's row
 *                   gathers, convert's permuted rows)
 *
 * The random-access jobs (inspect's listing, --values N, the runtime's weights) keep the
 * mapping: they touch few pages, or the same pages many times.
 *
 * Ranges come from validated tensor ranges (bounds checks stay in the format readers);
 * stream_begin and stream_at still refuse a range past the size the file had at open.  A
 * file that shrinks while being read (where an mmap would raise SIGBUS) is an ERR_IO
 * naming the file and the offset where its data ended.  Short reads and EINTR are
 * retried.  A wrapped mfile (mfile_wrap: tests, fuzzers) has no descriptor: chunks then
 * point into its memory, no copy.
 *
 * Hints: POSIX_FADV_SEQUENTIAL over each pass (larger kernel read-ahead).  With
 * STREAM_DROP, POSIX_FADV_DONTNEED behind the reader as well (the page cache of a file
 * read once is given back; off by default, because it also evicts a warm cache that the
 * next tool would reuse, and pread()'s pages never count in this process's RSS).
 *
 * One struct stream belongs to one thread (plus its own read-ahead thread); workers each
 * open their own on the same mfile (pread has no shared file position).
 */
#ifndef STREAM_H
#define STREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "mfile.h"

#define STREAM_CHUNK ((size_t)1 << 20)   /* default chunk: 1 MiB (measured: see README) */

enum {
    STREAM_AHEAD = 1 << 0,   /* read the next chunk on a second thread */
    STREAM_DROP  = 1 << 1,   /* POSIX_FADV_DONTNEED behind the reader */
};

/* A chunk of a pass as soon as it is read: [off, off+n) of the file at p. */
typedef void (*stream_hook_fn)(void *ctx, uint64_t off, const uint8_t *p, size_t n);

/* pread(2)'s signature: tests inject short reads, EINTR and errors through it. */
typedef ssize_t (*stream_pread_fn)(int fd, void *buf, size_t n, off_t off);

struct stream {
    const struct mfile *src;   /* the mfile read (borrowed) */
    const char     *path;      /* borrowed from the mfile, for messages */
    int             fd;        /* borrowed; -1: memory source */
    const uint8_t  *mem;       /* the wrapped memory when fd < 0 */
    uint64_t        size;      /* the file's size at open */
    size_t          chunk;
    unsigned        flags;
    stream_pread_fn pread_fn;  /* pread unless a test set another */
    stream_hook_fn  hook;      /* stream_set_hook */
    void           *hook_ctx;
    uint8_t        *buf[2];    /* chunk buffers (page-aligned) */
    uint8_t        *abuf;      /* stream_at's buffer */
    size_t          acap;
    /* the current pass */
    uint64_t        pos;       /* next byte the caller gets */
    uint64_t        end;
    uint64_t        dropped;   /* STREAM_DROP: everything below this was given back */
    int             cur;       /* buffer the caller holds, or -1 */
    int             ahead_pass; /* the read-ahead thread reads this pass */
    /* read-ahead: the thread fills buf[slot] with [r_off, r_off + r_len) */
    int             thread_up;
    pthread_t       th;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             quit;
    uint64_t        gen;       /* pass number: a stale chunk is thrown away */
    uint64_t        r_next;    /* next offset the thread reads */
    uint64_t        r_end;
    int             full[2];   /* buf[i] holds a chunk of pass full_gen[i] */
    uint64_t        full_gen[2];
    uint64_t        full_off[2];
    size_t          full_len[2];
    int             busy;      /* the thread is inside a read */
    struct err      r_err;     /* the thread's read error, for the pass r_err_gen */
    uint64_t        r_err_gen;
};

/* Borrow mf (which must stay open while s is) for streaming; chunk 0 = STREAM_CHUNK.
 * mf may be NULL (nothing to read until stream_retarget or stream_view names a file).
 * Allocates nothing: buffers and the read-ahead thread come with the first pass. */
int stream_open(struct stream *s, const struct mfile *mf, size_t chunk, unsigned flags,
                struct err *e);
/* Read another mfile from now on (the pass in progress is abandoned); buffers and the
 * read-ahead thread are kept: a worker keeps one stream across the files of a model. */
void stream_retarget(struct stream *s, const struct mfile *mf);
/* Stop the read-ahead thread and free the buffers; accepts a zeroed or closed stream. */
void stream_close(struct stream *s);

/* Start a sequential pass over [off, off+len) (any previous pass is abandoned). */
int stream_begin(struct stream *s, uint64_t off, uint64_t len, struct err *e);
/* The next chunk of the pass: 1 with *p, *n set (borrowed until the next call), 0 at the
 * end of the pass, -1 on error. */
int stream_next(struct stream *s, const uint8_t **p, size_t *n, struct err *e);

/* [off, off+n) of the file, read into s's random-access buffer (grown to n): valid until
 * the next stream_at or stream_close.  NULL on error. */
const uint8_t *stream_at(struct stream *s, uint64_t off, size_t n, struct err *e);

struct sha256;
struct progress;
/* Feed [off, off+len) of the file to h as one pass; progress_add per chunk when prog;
 * stops with an error as soon as *stop is set (stop may be NULL). */
int stream_sha256(struct stream *s, uint64_t off, uint64_t len, struct sha256 *h,
                  struct progress *prog, const atomic_int *stop, struct err *e);

/* The n bytes at p, a pointer into mf's mapping (a validated tensor range), read through
 * s (retargeted to mf when it reads another file) into its random-access buffer, valid
 * until the next stream_at/stream_view.  p itself when mf has no descriptor (wrapped
 * memory) or p does not lie in mf's mapping.  NULL on error. */
const uint8_t *stream_view(struct stream *s, const struct mfile *mf, const uint8_t *p, size_t n,
                           struct err *e);

/* Read exactly n bytes at off from fd into buf (EINTR and short reads retried); a file
 * that ends first is an ERR_IO naming path and the offset where it ended. */
int stream_pread_full(stream_pread_fn fn, int fd, const char *path, void *buf, size_t n,
                      uint64_t off, struct err *e);

/*
 * Feed every chunk of the passes from now on to fn(ctx, ...) as soon as it is read, on
 * the thread that read it: the read-ahead thread with STREAM_AHEAD, so fn's work runs
 * beside the caller's (apr-convert: the tensors' CRC-32 on one thread, the SHA-256 of the
 * same chunk on the other).  Each chunk once, in file order; stream_at's reads are not
 * fed.  A pass abandoned midway (stream_begin, stream_retarget) may have fed a chunk
 * its caller never got.  NULL stops.  Call before stream_begin; not while a pass runs.
 */
void stream_set_hook(struct stream *s, stream_hook_fn fn, void *ctx);

/* Tests: read through fn instead of pread (NULL restores pread).  Call before
 * stream_begin; not while a pass runs. */
void stream_set_pread(struct stream *s, stream_pread_fn fn);

#endif
