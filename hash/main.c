/* hash_main.c - apr-hash's command line; the work is in hash.c. */
#include <string.h>

#include "../common/cli.h"
#include "hash.h"
#include "../common/banned.h"

static const char usage_str[] =
    "usage: apr-hash [-q] [-t n] [--content] [--json] [--tensors] [--with-metadata] file ...\n"
    "       apr-hash [-q] [-t n] [--content] [--with-metadata] [--format json|text]\n"
    "                [--timestamp] -o manifest file ...\n"
    "       apr-hash [-q] [-t n] [--ignore-missing] -c manifest [file ...]\n"
    "       apr-hash [-q] --verify-source source file.apr\n"
    "       apr-hash --version\n";

static const char help_str[] =
    "\n"
    "SHA-256 of model files (any file), of every tensor, of the whole model independent\n"
    "of tensor order, sharding, container and metadata, and of the dequantized values.\n"
    "\n"
    "  -c, --check MANIFEST   verify files against a manifest (ours, llama-gguf-hash's or\n"
    "                         sha256sum's); files default to those the manifest names\n"
    "      --content          per-tensor hash of the values as little-endian f32, names and\n"
    "                         llama q/k rows normalised: equal across GGUF/SafeTensors/APR\n"
    "      --format json|text the manifest format of -o (default json)\n"
    "      --ignore-missing   with -c: entries whose files do not exist are not checked\n"
    "                         nor reported (sha256sum's option); nothing checked fails\n"
    "  -h, --help             this help\n"
    "  -j, --json             JSON on standard output\n"
    "  -o, --output MANIFEST  write a manifest: files, tensors and model hash\n"
    "  -q, --quiet            print nothing; the exit status tells\n"
    "      --tensors          one line per tensor and the model hash\n"
    "  -t, --threads N        worker threads (default: the number of CPUs; alias --jobs)\n"
    "      --timestamp        add generated_at to the manifest (or set SOURCE_DATE_EPOCH)\n"
    "      --verify-source SOURCE\n"
    "                         check that file.apr records SOURCE's sha256 (source_sha256)\n"
    "      --version          print the version\n"
    "      --with-metadata    also a canonical hash of the metadata\n"
    "\n"
    "Exit status: hashing 0 ok, 1 a file failed; --check and --verify-source 0 match,\n"
    "1 mismatch, 2 trouble; 2 usage error.\n";

enum {
    OPT_CONTENT = CLI_OPT_BASE, OPT_FORMAT, OPT_IGNORE_MISSING, OPT_TENSORS, OPT_TIMESTAMP,
    OPT_VERIFY_SOURCE, OPT_WITH_METADATA,
};

static const struct option longopts[] = {
    { "check",         required_argument, NULL, 'c' },
    { "content",       no_argument,       NULL, OPT_CONTENT },
    { "format",        required_argument, NULL, OPT_FORMAT },
    { "help",          no_argument,       NULL, 'h' },
    { "ignore-missing", no_argument,      NULL, OPT_IGNORE_MISSING },
    { "jobs",          required_argument, NULL, 't' },
    { "json",          no_argument,       NULL, 'j' },
    { "list-options",  no_argument,       NULL, CLI_OPT_LIST_OPTIONS },
    { "output",        required_argument, NULL, 'o' },
    { "quiet",         no_argument,       NULL, 'q' },
    { "tensors",       no_argument,       NULL, OPT_TENSORS },
    { "threads",       required_argument, NULL, 't' },
    { "timestamp",     no_argument,       NULL, OPT_TIMESTAMP },
    { "verify-source", required_argument, NULL, OPT_VERIFY_SOURCE },
    { "version",       no_argument,       NULL, CLI_OPT_VERSION },
    { "with-metadata", no_argument,       NULL, OPT_WITH_METADATA },
    { NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
    struct hash_opts o = HASH_OPTS_INIT;
    struct err e = ERR_INIT;
    uint64_t v;
    int ch, modes;

    cli_init(argv[0]);
    while ((ch = getopt_long(argc, argv, "c:hjo:qt:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':                  o.check = optarg; break;
        case 'h':                  return cli_help(usage_str, help_str);
        case 'j':                  o.json = 1; break;
        case 't':
            if (cli_parse_u64(optarg, 1, 256, &v))
                return cli_usage_error(usage_str, "--threads: '%s' is not a number in [1, 256]", optarg);
            o.n_threads = (int)v;
            break;
        case 'o':                  o.output = optarg; break;
        case 'q':                  o.quiet = 1; break;
        case OPT_CONTENT:          o.content = 1; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "json") == 0)
                o.format = HASH_FMT_JSON;
            else if (strcmp(optarg, "text") == 0)
                o.format = HASH_FMT_TEXT;
            else
                return cli_usage_error(usage_str, "--format: '%s' is not json or text", optarg);
            break;
        case OPT_IGNORE_MISSING:   o.ignore_missing = 1; break;
        case OPT_TENSORS:          o.tensors = 1; break;
        case OPT_TIMESTAMP:        o.timestamp = 1; break;
        case OPT_VERIFY_SOURCE:    o.verify_source = optarg; break;
        case OPT_WITH_METADATA:    o.with_metadata = 1; break;
        case CLI_OPT_VERSION:      return cli_version();
        case CLI_OPT_LIST_OPTIONS: return cli_list_options(longopts);
        default:                   return cli_usage_error(usage_str, NULL);
        }
    }
    argc -= optind;
    argv += optind;
    modes = (o.check != NULL) + (o.verify_source != NULL) + (o.output != NULL);
    if (modes > 1)
        return cli_usage_error(usage_str, "-c, -o and --verify-source exclude each other");
    if (o.ignore_missing && !o.check)
        return cli_usage_error(usage_str, "--ignore-missing goes with -c");
    if (o.verify_source && argc != 1)
        return cli_usage_error(usage_str, "--verify-source takes one APR file");
    if (!o.check && argc < 1)
        return cli_usage_error(usage_str, "no file given");
    if (o.json && (o.output || o.check || o.verify_source))
        return cli_usage_error(usage_str, "--json is for hashing to standard output");
    return cli_exit(hash_run(&o, argc, argv, &e));
}
