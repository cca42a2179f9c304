/* diff_main.c - apr-diff's command line; the work is in diff.c. */
#include <math.h>
#include <string.h>

#include "../common/cli.h"
#include "diff.h"
#include "../common/banned.h"

static const char usage_str[] =
    "usage: apr-diff [--json] [--filter regex] a b\n"
    "       apr-diff --values [-t n] [--json] [--transpose-aware] [--filter regex]\n"
    "                [--limit n] [--sort worst|name] [--fail-cos x] [--fail-max x]\n"
    "                [--fail-nmse x] [--plot file.svg] a b\n"
    "       apr-diff --version\n";

static const char help_str[] =
    "\n"
    "Compare two models (GGUF, SafeTensors, APR; any pair of formats) or two activation\n"
    "dumps (APRT files, headerless f32 files, or directories of them).\n"
    "\n"
    "      --fail-cos X       fail when a tensor's cosine similarity is below X\n"
    "      --fail-max X       fail when max |a-b| is above X\n"
    "      --fail-nmse X      fail when NMSE (mse / mean square of a) is above X\n"
    "      --filter REGEX     only tensors whose name matches (POSIX extended)\n"
    "  -h, --help             this help\n"
    "  -j, --json             machine-readable output (stable key order)\n"
    "      --limit N          show N rows (top-N differences of dumps; default all/10)\n"
    "      --plot FILE.svg    draw 1-cosine and relative error per tensor or stage\n"
    "      --sort worst|name  order of the value rows (default name)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "      --transpose-aware  also match transposed, reinterpreted and Q/K-permuted layouts\n"
    "      --values           compare dequantized values tensor by tensor\n"
    "      --version          print the version\n"
    "\n"
    "Exit status: 0 same (or within the thresholds), 1 different, 2 trouble.\n";

enum {
    OPT_FAIL_COS = CLI_OPT_BASE, OPT_FAIL_MAX, OPT_FAIL_NMSE, OPT_FILTER, OPT_LIMIT,
    OPT_PLOT, OPT_SORT, OPT_TRANSPOSE_AWARE, OPT_VALUES,
};

static const struct option longopts[] = {
    { "fail-cos",        required_argument, NULL, OPT_FAIL_COS },
    { "fail-max",        required_argument, NULL, OPT_FAIL_MAX },
    { "fail-nmse",       required_argument, NULL, OPT_FAIL_NMSE },
    { "filter",          required_argument, NULL, OPT_FILTER },
    { "help",            no_argument,       NULL, 'h' },
    { "json",            no_argument,       NULL, 'j' },
    { "limit",           required_argument, NULL, OPT_LIMIT },
    { "list-options",    no_argument,       NULL, CLI_OPT_LIST_OPTIONS },
    { "plot",            required_argument, NULL, OPT_PLOT },
    { "sort",            required_argument, NULL, OPT_SORT },
    { "threads",         required_argument, NULL, 't' },
    { "transpose-aware", no_argument,       NULL, OPT_TRANSPOSE_AWARE },
    { "values",          no_argument,       NULL, OPT_VALUES },
    { "version",         no_argument,       NULL, CLI_OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

/* A threshold in [lo, hi] (NaN refused).  Usage errors exit 2: trouble, as diff(1). */
static int threshold(const char *arg, double lo, double hi, double *v)
{
    return cli_parse_f64(arg, lo, hi, v) != 0 || isnan(*v) ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct diff_opts o = DIFF_OPTS_INIT;
    struct err e = ERR_INIT;
    uint64_t n;
    int ch, rc;

    cli_init(argv[0]);
    while ((ch = getopt_long(argc, argv, "hjt:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':                  return cli_help(usage_str, help_str);
        case 'j':                  o.json = 1; break;
        case 't':
            if (cli_parse_u64(optarg, 1, 256, &n))
                return cli_usage_error(usage_str, "--threads: '%s' is not a number in 1..256",
                                       optarg);
            o.n_threads = (int)n;
            break;
        case OPT_FAIL_COS:
            if (threshold(optarg, -1, 1, &o.fail_cos))
                return cli_usage_error(usage_str, "--fail-cos: '%s' is not a number in [%g, %g]",
                                       optarg, (double)-1, (double)1);
            break;
        case OPT_FAIL_MAX:
            if (threshold(optarg, 0, HUGE_VAL, &o.fail_max))
                return cli_usage_error(usage_str, "--fail-max: '%s' is not a number in [%g, %g]",
                                       optarg, (double)0, (double)HUGE_VAL);
            break;
        case OPT_FAIL_NMSE:
            if (threshold(optarg, 0, HUGE_VAL, &o.fail_nmse))
                return cli_usage_error(usage_str, "--fail-nmse: '%s' is not a number in [%g, %g]",
                                       optarg, (double)0, (double)HUGE_VAL);
            break;
        case OPT_FILTER:           o.filter = optarg; break;
        case OPT_LIMIT:
            if (cli_parse_u64(optarg, 0, INT64_MAX, &n))
                return cli_usage_error(usage_str, "--limit: '%s' is not a count", optarg);
            o.limit = (int64_t)n;
            break;
        case OPT_PLOT:             o.plot = optarg; break;
        case OPT_SORT:
            if (strcmp(optarg, "worst") == 0)
                o.sort = DIFF_SORT_WORST;
            else if (strcmp(optarg, "name") == 0)
                o.sort = DIFF_SORT_NAME;
            else
                return cli_usage_error(usage_str, "--sort: '%s' is not worst or name", optarg);
            break;
        case OPT_TRANSPOSE_AWARE:  o.transpose_aware = 1; break;
        case OPT_VALUES:           o.values = 1; break;
        case CLI_OPT_VERSION:      return cli_version();
        case CLI_OPT_LIST_OPTIONS: return cli_list_options(longopts);
        default:                   return cli_usage_error(usage_str, NULL);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(usage_str, "two files or directories are needed");
    rc = diff_run(&o, argv[optind], argv[optind + 1], stdout, &e);
    if (rc < 0) {
        cli_fail(&e);   /* returns 1 for most errors: diff(1) says trouble is 2 */
        /* an APR input whose checksums fail is not what was written: different */
        return cli_exit(e.code == ERR_MISMATCH ? CLI_EXIT_DIFFERENT : CLI_EXIT_TROUBLE);
    }
    if (cli_exit(CLI_EXIT_OK) != CLI_EXIT_OK)   /* a failed write to stdout is trouble */
        return CLI_EXIT_TROUBLE;
    return rc ? CLI_EXIT_DIFFERENT : CLI_EXIT_SAME;
}
