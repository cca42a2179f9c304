/* main.c - apr-convert's command line; the work is in convert.c. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cli.h"
#include "convert.h"
#include "quant_mix.h"
#include "../common/banned.h"

static const char usage_str[] =
    "usage: apr-convert [-fjqv] [-t threads] [--dry-run] [--dtype type] [--imatrix file]\n"
    "       [--lossless] [--names style] [--no-progress] [--pure] [--requantize]\n"
    "       [--salvage] [--shard-size bytes] [--split-max-size size] [--timestamp]\n"
    "       [--to format] [--verify] input output\n"
    "       apr-convert --version\n";

static const char help_head[] =
    "\n"
    "Convert a model between GGUF, SafeTensors (file, directory or index) and APR,\n"
    "losslessly where the target can hold the data.  The input format is detected from\n"
    "the content; the output format from the name (.apr, .gguf, .safetensors, or a\n"
    "directory / .json for sharded SafeTensors) or --to.\n"
    "\n"
    "  -f, --force         replace an existing output\n"
    "      --dry-run       print the plan (names, dtypes, shapes, widenings); write nothing\n"
    "      --dtype TYPE    keep (default), or a type by llama-quantize's name, with its\n"
    "                      per-tensor choices (Q4_K_M: Q4_K, some Q6_K), the same bytes:\n";

/* then the --dtype names (quant_mix.c's table), then: */
static const char help_str[] =
    "      --pure          --dtype: one type for every weight matrix (as llama-quantize)\n"
    "      --requantize    --dtype: quantize tensors that are already quantized\n"
    "      --imatrix FILE  --dtype: a llama.cpp importance matrix (llama-imatrix's .dat\n"
    "                      or GGUF form), used as llama-quantize --imatrix uses it;\n"
    "                      IQ1_*, IQ2_*, IQ3_XXS and Q2_K_S need one\n"
    "      --lossless      APR: store ggml types without an APR code byte-exact\n"
    "                      (extension codes; aprender and realizar refuse such files)\n"
    "      --names STYLE   APR tensor names: hf or gguf (default: aprender's choice)\n"
    "      --no-progress   no progress bar\n"
    "      --salvage       convert an APR source whose checksums fail (a warning, not\n"
    "                      an error)\n"
    "      --shard-size N  SafeTensors directory output: bytes per shard (default 5e9)\n"
    "      --split-max-size N[M|G]\n"
    "                      GGUF output as a llama.cpp split set (OUT-00001-of-0000K.gguf),\n"
    "                      at most N bytes of tensor data per part (M, G: 1e6, 1e9)\n"
    "      --timestamp     record created_at in APR (SOURCE_DATE_EPOCH when set)\n"
    "      --to FORMAT     apr, gguf or safetensors\n"
    "      --verify        re-read the output and compare every tensor with the source\n"
    "  -t, --threads N     threads for --dtype (default: all cores; the bytes do not\n"
    "                      depend on N)\n"
    "  -j, --json          the report as JSON\n"
    "  -q, --quiet         no notes on stderr (widened tensors, fallbacks)\n"
    "  -v, --verbose       print a report (tensors, bytes, widenings) on success\n"
    "  -h, --help          this help\n"
    "      --version       print the version\n"
    "\n"
    "Exit status: 0 ok, 1 failure (nothing written; a corrupt or truncated APR source\n"
    "too, unless --salvage), 2 usage error, 130 interrupted.\n";

enum { OPT_DRY_RUN = CLI_OPT_BASE, OPT_DTYPE, OPT_LOSSLESS, OPT_NAMES, OPT_NO_PROGRESS,
       OPT_PURE, OPT_REQUANTIZE, OPT_IMATRIX, OPT_SALVAGE, OPT_SHARD, OPT_SPLIT, OPT_TIMESTAMP,
       OPT_TO, OPT_VERIFY };

static const struct option longopts[] = {
    { "dry-run",      no_argument,       NULL, OPT_DRY_RUN },
    { "dtype",        required_argument, NULL, OPT_DTYPE },
    { "force",        no_argument,       NULL, 'f' },
    { "help",         no_argument,       NULL, 'h' },
    { "imatrix",      required_argument, NULL, OPT_IMATRIX },
    { "json",         no_argument,       NULL, 'j' },
    { "list-options", no_argument,       NULL, CLI_OPT_LIST_OPTIONS },
    { "lossless",     no_argument,       NULL, OPT_LOSSLESS },
    { "names",        required_argument, NULL, OPT_NAMES },
    { "no-progress",  no_argument,       NULL, OPT_NO_PROGRESS },
    { "pure",         no_argument,       NULL, OPT_PURE },
    { "quiet",        no_argument,       NULL, 'q' },
    { "requantize",   no_argument,       NULL, OPT_REQUANTIZE },
    { "salvage",      no_argument,       NULL, OPT_SALVAGE },
    { "shard-size",   required_argument, NULL, OPT_SHARD },
    { "split-max-size", required_argument, NULL, OPT_SPLIT },
    { "threads",      required_argument, NULL, 't' },
    { "timestamp",    no_argument,       NULL, OPT_TIMESTAMP },
    { "to",           required_argument, NULL, OPT_TO },
    { "verbose",      no_argument,       NULL, 'v' },
    { "verify",       no_argument,       NULL, OPT_VERIFY },
    { "version",      no_argument,       NULL, CLI_OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

static volatile int cancel;
static volatile sig_atomic_t cancel_sig;

static void on_signal(int sig)
{
    cancel_sig = sig;
    cancel = 1;   /* convert_run stops at the next chunk and removes its staging files */
}

/* llama-gguf-split's --split-max-size N[M|G]: bytes, M and G decimal (1e6, 1e9). */
static int split_size(const char *s, uint64_t *v)
{
    char num[32];
    size_t l = strlen(s);
    uint64_t mul = 1;

    if (l > 0 && (s[l - 1] == 'M' || s[l - 1] == 'G')) {
        mul = s[l - 1] == 'M' ? 1000000u : 1000000000u;
        l--;
    }
    if (l == 0 || l >= sizeof num)
        return -1;
    memcpy(num, s, l);
    num[l] = 0;
    if (cli_parse_u64(num, 1, UINT64_MAX / mul, v))
        return -1;
    *v *= mul;
    return 0;
}

int main(int argc, char **argv)
{
    struct convert_opts o = CONVERT_OPTS_INIT;
    struct err e = ERR_INIT;
    struct sigaction sa;
    int ch;

    cli_init(argv[0]);
    o.progress = 1;
    while ((ch = getopt_long(argc, argv, "fhjqt:v", longopts, NULL)) != -1) {
        uint64_t u;
        switch (ch) {
        case 'f':                  o.force = 1; break;
        case 'h':
            fputs(usage_str, stdout);
            fputs(help_head, stdout);
            qmix_print_names(stdout, 22, 88);
            return cli_help("", help_str);
        case 't':
            if (cli_parse_u64(optarg, 1, 1024, &u))
                return cli_usage_error(usage_str, "--threads: '%s' is not 1 to 1024", optarg);
            o.n_threads = (int)u;
            break;
        case 'j':                  o.json = 1; break;
        case 'q':                  o.quiet = 1; break;
        case 'v':                  o.verbose = 1; break;
        case OPT_DRY_RUN:          o.dry_run = 1; break;
        case OPT_DTYPE:            o.dtype = optarg; break;
        case OPT_IMATRIX:          o.imatrix = optarg; break;
        case OPT_LOSSLESS:         o.lossless = 1; break;
        case OPT_NAMES:            o.names = optarg; break;
        case OPT_NO_PROGRESS:      o.progress = 0; break;
        case OPT_PURE:             o.pure = 1; break;
        case OPT_REQUANTIZE:       o.requantize = 1; break;
        case OPT_SALVAGE:          o.salvage = 1; break;
        case OPT_SHARD:
            if (cli_parse_u64(optarg, 1, UINT64_MAX, &o.shard_bytes))
                return cli_usage_error(usage_str, "--shard-size: '%s' is not a byte count",
                                       optarg);
            break;
        case OPT_SPLIT:
            if (split_size(optarg, &o.split_bytes))
                return cli_usage_error(usage_str, "--split-max-size: '%s' is not a size "
                                       "(N, NM or NG bytes)", optarg);
            break;
        case OPT_TIMESTAMP:        o.timestamp = 1; break;
        case OPT_TO:               o.to = optarg; break;
        case OPT_VERIFY:           o.verify = 1; break;
        case CLI_OPT_VERSION:      return cli_version();
        case CLI_OPT_LIST_OPTIONS: return cli_list_options(longopts);
        default:                   return cli_usage_error(usage_str, NULL);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(usage_str, "need an input and an output");
    o.out = stdout;
    o.diag = stderr;
    o.cancel = &cancel;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (convert_run(&o, argv[optind], argv[optind + 1], &e) != 0) {
        if (cancel) {
            /* Stopped by a signal (after cleaning up): the shell's 128 + signal number,
             * 130 for Ctrl-C, so a script can tell an interruption from a failure. */
            cli_fail(&e);
            return 128 + (int)cancel_sig;
        }
        return cli_fail(&e);
    }
    return cli_exit(CLI_EXIT_OK);
}
