/*
 * ofile.h - output files: a temporary file beside the target, written in full and
 * renamed over it only when complete (git's tempfile/lockfile pattern).  The one
 * place that knows how apr-tools writes a file: the three model writers, aprt, the
 * SafeTensors side files and apr-hash's manifests all go through it.
 *
 *   struct ofile o = OFILE_INIT;
 *   if (ofile_open(&o, path, 0, e) || ofile_write(&o, p, n, e) || ofile_commit(&o, e)) {
 *       ofile_abort(&o);        // closes and unlinks the temporary file
 *       return -1;
 *   }
 *   ofile_abort(&o);            // after a commit: only frees the names
 *
 * The temporary file is "<dir>/.<base>.XXXXXX" (mkostemp, O_CLOEXEC) in the target's
 * directory, so the rename never crosses filesystems and a leftover from a killed
 * run is hidden.  Its mode is what open(path, O_CREAT, 0666) would give, 0666 & ~umask,
 * like any file cp(1) or a compiler writes.  The umask is read from /proc/self/status at every
 * ofile_open: reading it with umask(2) means setting it, which races with other
 * threads creating files, and caching it once would miss a later umask() call.
 * Without /proc, the umask(2) round trip is used, serialized against other
 * ofile_open calls by a mutex.
 *
 * Writes retry on EINTR and short counts and are split into pieces of at most 1 GiB.
 * An optional buffer (ofile_buffer) collects small writes; pieces at least as large as
 * the buffer go straight to write(2) from the caller's memory (a mapping, usually).
 * Every error message names the target path (the temporary file is gone by the time
 * the message is read), except the rename's, which names both:
 *   "cannot write 'out.apr': No space left on device"
 *
 * ofile_commit: flush, fsync, close, rename (every writer syncs: a crash leaves the old
 * file or the whole new one).  The directory is
 * not fsync()ed.  A writer that produces several files (SafeTensors shards and their
 * index) finishes each with ofile_finish, which closes the descriptor and frees the
 * buffer, and renames them all with ofile_commit only when every one is complete.
 */
#ifndef OFILE_H
#define OFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum ofile_flags {
    OFILE_NO_FSYNC  = 1 << 1,   /* ofile_finish does not fsync (set with OFILE_BORROWED) */
    OFILE_BORROWED  = 1 << 2,   /* set by ofile_attach: the fd is the caller's */
};

struct ofile {
    int       fd;        /* -1 when not open */
    char     *tmp;       /* owned temporary path; NULL when attached, renamed or removed */
    char     *final;     /* owned: the target path (ofile_attach: the name), for messages */
    unsigned  flags;     /* enum ofile_flags */
    uint64_t  pos;       /* offset of the next ofile_write byte, buffered bytes included
                          * (counted from 0 at ofile_open/ofile_attach, or ofile_seek's) */
    uint8_t  *buf;       /* owned write buffer (ofile_buffer), or NULL */
    size_t    cap, used;
    size_t    copy_min;  /* ofile_copy writes shorter pieces from memory (1 MiB by default) */
    int       no_cfr;    /* copy_file_range refused once: write() from memory from then on */
    uint64_t  kicked;    /* ofile_kick: writeback started for the bytes before this offset */
};

#define OFILE_INIT { .fd = -1 }

/* Writeback is started every OFILE_KICK bytes (ofile_kick). */
#define OFILE_KICK ((uint64_t)32 << 20)

/* Create the temporary file for final_path (flags: enum ofile_flags).  On failure o
 * holds nothing (ofile_abort is still allowed). */
int  ofile_open(struct ofile *o, const char *final_path, unsigned flags, struct err *e);
/* Write into a descriptor the caller owns (at its current offset): no temporary file;
 * ofile_finish and ofile_abort leave fd open, ofile_commit only flushes. */
int  ofile_attach(struct ofile *o, int fd, const char *name, struct err *e);
/* Give o a write buffer of cap bytes (before the first write). */
int  ofile_buffer(struct ofile *o, size_t cap, struct err *e);

/* Append all n bytes at pos (through the buffer when there is one). */
int  ofile_write(struct ofile *o, const void *p, size_t n, struct err *e);
/* Write what the buffer holds. */
int  ofile_flush(struct ofile *o, struct err *e);
/* Write all n bytes at file offset off; neither the buffer nor pos changes. */
int  ofile_pwrite(struct ofile *o, const void *p, size_t n, uint64_t off, struct err *e);
/* Flush, then move the file offset to off (pos = off; ofile_kick counts from there). */
int  ofile_seek(struct ofile *o, uint64_t off, struct err *e);
/*
 * Append n bytes that are both [src_off, src_off + n) of the file src_fd and the memory
 * at src_map: copy_file_range(2) moves them file to file (reflinks on filesystems that
 * share extents).  Where the kernel refuses (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP, EBADF:
 * another filesystem, a pipe...) the rest is written from src_map, and o->no_cfr makes
 * later calls skip the attempt.  Pieces under o->copy_min go through ofile_write.
 * src_fd and src_map must stay unchanged while o is being written.
 */
int  ofile_copy(struct ofile *o, int src_fd, uint64_t src_off, const void *src_map, size_t n,
                struct err *e);
/* Start writeback (sync_file_range WRITE) of what has reached the file once OFILE_KICK
 * bytes have gathered since the last kick, so the final fsync finds most of the file on
 * disk already.  Advisory: a failure shows up at fsync. */
void ofile_kick(struct ofile *o);

/* Flush, fsync (not for an attached fd) and close; the buffer is freed, the temporary
 * file stays until ofile_commit or ofile_abort. */
int  ofile_finish(struct ofile *o, struct err *e);
/* ofile_finish if still open, then rename the temporary file over the target. */
int  ofile_commit(struct ofile *o, struct err *e);
/* Close and unlink the temporary file if there still is one, free everything; o is
 * OFILE_INIT afterwards.  Accepts NULL, OFILE_INIT, and committed or aborted files.
 * errno is preserved. */
void ofile_abort(struct ofile *o);

/* The whole of a small output in one go: open, write p[0..n), commit (abort on failure). */
int  ofile_put(const char *final_path, const void *p, size_t n, struct err *e);

#endif
