/* inspect_main.c - apr-inspect's command line; the work is in inspect.c. */
#include <stdlib.h>
#include <string.h>

#include "../common/cli.h"
#include "inspect.h"
#include "../common/banned.h"

static const char usage_str[] =
    "usage: apr-inspect [-hj] [--full] [--license] [--no-offsets] [-t name] file ...\n"
    "       apr-inspect --stats [-j] [--strict] [--threads n] [-t name] [--values n]\n"
    "                   file ...\n"
    "       apr-inspect --version\n";

static const char help_str[] =
    "\n"
    "Show what a model file is (GGUF, SafeTensors file, directory or index, APR),\n"
    "its metadata and its tensors.  The format is detected from the content.\n"
    "\n"
    "  -j, --json          machine-readable output (stable key order)\n"
    "      --full          every array element and full strings\n"
    "      --license       license and provenance view (alias --provenance)\n"
    "      --no-offsets    leave out file offsets (diffable across containers)\n"
    "  -t, --tensor NAME   show one tensor's entry\n"
    "      --stats         per-tensor min, max, mean, std, L2 norm, NaN/Inf/zero\n"
    "                      counts; warns about all-zero or non-finite tensors\n"
    "      --strict        with --stats: such a tensor is an error (exit 1)\n"
    "      --threads N     threads for --stats (default: all cores)\n"
    "      --values N      print the first N values (dequantized) of each tensor\n"
    "  -h, --help          this help\n"
    "      --version       print the version\n"
    "\n"
    "Exit status: 0 ok, 1 bad or unreadable file (or, with --stats --strict, an all-zero\n"
    "or non-finite tensor), 2 usage error.\n";

enum { OPT_FULL = CLI_OPT_BASE, OPT_LICENSE, OPT_NO_OFFSETS, OPT_STATS, OPT_STRICT, OPT_THREADS,
       OPT_VALUES };

static const struct option longopts[] = {
    { "full",         no_argument,       NULL, OPT_FULL },
    { "help",         no_argument,       NULL, 'h' },
    { "json",         no_argument,       NULL, 'j' },
    { "license",      no_argument,       NULL, OPT_LICENSE },
    { "list-options", no_argument,       NULL, CLI_OPT_LIST_OPTIONS },
    { "no-offsets",   no_argument,       NULL, OPT_NO_OFFSETS },
    { "provenance",   no_argument,       NULL, OPT_LICENSE },
    { "stats",        no_argument,       NULL, OPT_STATS },
    { "strict",       no_argument,       NULL, OPT_STRICT },
    { "tensor",       required_argument, NULL, 't' },
    { "threads",      required_argument, NULL, OPT_THREADS },
    { "values",       required_argument, NULL, OPT_VALUES },
    { "version",      no_argument,       NULL, CLI_OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
    struct inspect_opts o = INSPECT_OPTS_INIT;
    uint64_t n;
    int ch, status = 0;

    cli_init(argv[0]);
    while ((ch = getopt_long(argc, argv, "hjt:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':                  return cli_help(usage_str, help_str);
        case 'j':                  o.json = 1; break;
        case 't':                  o.tensor = optarg; break;
        case OPT_FULL:             o.full = 1; break;
        case OPT_LICENSE:          o.license = 1; break;
        case OPT_NO_OFFSETS:       o.no_offsets = 1; break;
        case OPT_STATS:            o.stats = 1; break;
        case OPT_STRICT:           o.strict = 1; break;
        case OPT_THREADS:
            if (cli_parse_u64(optarg, 1, 256, &n))
                return cli_usage_error(usage_str, "--threads: '%s' is not a number in 1..256", optarg);
            o.n_threads = (int)n;
            break;
        case OPT_VALUES:
            if (cli_parse_u64(optarg, 0, INT64_MAX, &n))
                return cli_usage_error(usage_str, "--values: '%s' is not a count", optarg);
            o.values = (int64_t)n;
            break;
        case CLI_OPT_VERSION:      return cli_version();
        case CLI_OPT_LIST_OPTIONS: return cli_list_options(longopts);
        default:                   return cli_usage_error(usage_str, NULL);
        }
    }
    if (optind >= argc)
        return cli_usage_error(usage_str, "no file given");
    if (o.strict && !o.stats)
        return cli_usage_error(usage_str, "--strict goes with --stats");
    if (o.license && (o.stats || o.values >= 0))
        return cli_usage_error(usage_str, "--license cannot be combined with --stats or --values");
    for (int i = optind; i < argc; i++) {
        struct err e = ERR_INIT;
        if (i > optind && !o.json)
            fputc('\n', stdout);
        /* Several files: the -t, --stats and --values blocks name theirs (the report
         * and --license start with a "file:" line of their own). */
        if (argc - optind > 1 && !o.json && !o.license && (o.tensor || o.stats || o.values >= 0)) {
            fputs("file: ", stdout);
            cli_put_escaped(stdout, argv[i], strlen(argv[i]));
            fputc('\n', stdout);
        }
        if (inspect_run(&o, argv[i], stdout, &e) != 0) {
            int code = cli_fail(&e);
            if (code > status)
                status = code;
        }
    }
    return cli_exit(status);
}
