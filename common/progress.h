/*
 * progress.h - a progress bar on stderr, drawn only when stderr is a terminal
 * (and not when APR_NO_PROGRESS is set), throttled to about 10 redraws a second.
 * Thread-safe: workers may call progress_add concurrently.
 *
 *   struct progress p; progress_start(&p, "hashing", total_bytes);
 *   progress_add(&p, n); ... progress_done(&p);
 */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stdint.h>

struct progress {
    const char *label;
    uint64_t    total;
    uint64_t    done;      /* updated atomically */
    uint64_t    last_ns;   /* last redraw */
    uint64_t    start_ns;
    int         enabled;
    int         drawn;
};

void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_add(struct progress *p, uint64_t n);
void progress_done(struct progress *p);   /* clears the line */

#endif
