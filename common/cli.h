/*
 * cli.h - what every apr-* main shares: program name, usage and help output,
 * strict number parsing, exit codes, terminal-safe printing, and failing on
 * stdout write errors (coreutils' close_stdout, git's maybe_flush_or_die).
 *
 * Exit codes (listed under EXIT STATUS in every man page):
 *   0 success; 1 failure (I/O, bad or unsupported file); 2 usage error.
 *   apr-diff and apr-hash --check follow diff(1): 0 same, 1 different, 2 trouble.
 */
#ifndef CLI_H
#define CLI_H

#include <stdint.h>
#include <stdio.h>
#include <getopt.h>

#include "err.h"

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_USAGE = 2,
    /* diff(1) convention */
    CLI_EXIT_SAME = 0,
    CLI_EXIT_DIFFERENT = 1,
    CLI_EXIT_TROUBLE = 2,
};

/* Long-only option ids start here (coreutils: CHAR_MAX + 1). */
#define CLI_OPT_BASE 256
#define CLI_OPT_VERSION (CLI_OPT_BASE - 1 + 200)
#define CLI_OPT_LIST_OPTIONS (CLI_OPT_BASE - 1 + 201)

extern const char *cli_progname;

void cli_init(const char *argv0);
/* Print usage (and the rest of the help text) to stdout; returns CLI_EXIT_OK (or 1 on write error). */
int  cli_help(const char *usage, const char *help);
/* Print usage and "Try 'apr-x --help'" to stderr; returns CLI_EXIT_USAGE. */
int  cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "apr-x (apr-tools) 0.1.0"; returns CLI_EXIT_OK. */
int  cli_version(void);
/* The hidden --list-options: every long option name, one per line (man-page sync test). */
int  cli_list_options(const struct option *longopts);
/* "apr-x: <msg>" on stderr; returns the exit code for e (2 for ERR_USAGE, else 1). */
int  cli_fail(const struct err *e);
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Flush stdout and check for write errors (EPIPE, ENOSPC): returns code, or 1 on error. */
int  cli_exit(int code);

/* Strict numbers: the whole string, in [min, max], no sign surprises.  0 or -1. */
int  cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v);
int  cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *v);
int  cli_parse_f64(const char *s, double min, double max, double *v);

/* Print bytes from a file with control bytes and invalid UTF-8 escaped (\xNN, \n, ...),
 * so a hostile name cannot send terminal escape sequences.  Returns bytes written. */
void cli_put_escaped(FILE *f, const char *s, size_t n);
/* The same for a message that quotes such names (cli_fail, apr-convert's notes): control
 * bytes and invalid UTF-8 escaped, backslashes kept as they are. */
void cli_put_text(FILE *f, const char *s, size_t n);

/* stdin/stdout/stderr are terminals? */
int  cli_isatty_stderr(void);

#endif
