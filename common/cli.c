/* cli.c - shared command-line helpers; see cli.h. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "utf8.h"
#include "banned.h"

const char *cli_progname = "apr-tools";

void cli_init(const char *argv0)
{
    const char *s;
    if (!argv0 || !*argv0)
        return;
    s = strrchr(argv0, '/');
    cli_progname = s ? s + 1 : argv0;
}

int cli_help(const char *usage, const char *help)
{
    fputs(usage, stdout);
    if (help)
        fputs(help, stdout);
    return cli_exit(CLI_EXIT_OK);
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        fprintf(stderr, "%s: ", cli_progname);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    fputs(usage, stderr);
    fprintf(stderr, "Try '%s --help' for more information.\n", cli_progname);
    return CLI_EXIT_USAGE;
}

int cli_version(void)
{
    printf("%s (apr-tools) %s\n", cli_progname, APR_TOOLS_VERSION);
    return cli_exit(CLI_EXIT_OK);
}

int cli_list_options(const struct option *o)
{
    for (; o->name; o++)
        if (strcmp(o->name, "list-options") != 0)
            printf("--%s\n", o->name);
    return cli_exit(CLI_EXIT_OK);
}

int cli_fail(const struct err *e)
{
    fflush(stdout);
    /* messages quote names and strings from files: escaped on the way out */
    fprintf(stderr, "%s: ", cli_progname);
    if (e->msg[0])
        cli_put_text(stderr, e->msg, strlen(e->msg));
    else
        fputs(err_code_name(e->code), stderr);
    fputc('\n', stderr);
    if (getenv("APR_DEBUG") && e->src_file)
        fprintf(stderr, "%s: (raised at %s:%d)\n", cli_progname, e->src_file, e->src_line);
    return e->code == ERR_USAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", cli_progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_exit(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int saved = errno;
        fprintf(stderr, "%s: write error on standard output: %s\n", cli_progname,
                strerror(saved ? saved : EIO));
        return CLI_EXIT_FAIL;
    }
    return code;
}

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
    char *end;
    unsigned long long x;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    x = strtoull(s, &end, 10);
    if (errno || *end || x < min || x > max)
        return -1;
    *v = x;
    return 0;
}

int cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *v)
{
    char *end;
    long long x;
    if (!s || !*s || *s == ' ')
        return -1;
    errno = 0;
    x = strtoll(s, &end, 10);
    if (errno || *end || x < min || x > max)
        return -1;
    *v = x;
    return 0;
}

int cli_parse_f64(const char *s, double min, double max, double *v)
{
    char *end;
    double x;
    if (!s || !*s || *s == ' ')
        return -1;
    errno = 0;
    x = strtod(s, &end);
    if (errno || *end || isnan(x) || x < min || x > max)
        return -1;
    *v = x;
    return 0;
}

/* The one escaping routine for terminal output; bs: escape backslashes too (names on
 * their own), else keep them (messages, whose own text may hold one). */
static void put_esc(FILE *f, const char *str, size_t n, int bs)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c >= 0x20 && c < 0x7F && (c != '\\' || !bs)) {
            size_t j = i;
            while (j < n && s[j] >= 0x20 && s[j] < 0x7F && (s[j] != '\\' || !bs))
                j++;
            fwrite(s + i, 1, j - i, f);
            i = j;
            continue;
        }
        if (c == '\\') { fputs("\\\\", f); i++; continue; }
        if (c == '\n') { fputs("\\n", f); i++; continue; }
        if (c == '\t') { fputs("\\t", f); i++; continue; }
        if (c == '\r') { fputs("\\r", f); i++; continue; }
        if (c >= 0x80) {
            uint32_t cp;
            int len = utf8_decode(s + i, n - i, &cp);
            if (len && !utf8_is_c1(cp)) {   /* valid and printable: as is */
                fwrite(s + i, 1, (size_t)len, f);
                i += (size_t)len;
                continue;
            }
        }
        fprintf(f, "\\x%02x", c);
        i++;
    }
}

void cli_put_escaped(FILE *f, const char *s, size_t n)
{
    put_esc(f, s, n, 1);
}

void cli_put_text(FILE *f, const char *s, size_t n)
{
    put_esc(f, s, n, 0);
}

int cli_isatty_stderr(void)
{
    return isatty(STDERR_FILENO);
}
