/* main.c - apr-run's command line; the work is in run.c (and rt.h, forward.c). */
#include <stdlib.h>
#include <string.h>

#include "../common/cli.h"
#include "rt.h"
#include "run.h"
#include "tokenizer.h"
#include "../common/banned.h"

static const char usage_str[] =
    "usage: apr-run [-v] [-b n] [-n n] [-t n] [--ctx n] [--temp t] [--top-k k] [--top-p p]\n"
    "               [--min-p p] [--seed s] [--repeat-penalty r] [--ignore-eos]\n"
    "               [--rope-freq-dtype type] [--logits file] [--json] [--trace]\n"
    "               [--save-tensor stages]\n"
    "               [--save-tensor-dir dir] [--save-tensor-layers a..b]\n"
    "               [--chat] [--system text] --tokens ids | -p text model\n"
    "       apr-run [-v] [-b n] [-t n] [--ctx n] [--rope-freq-dtype type] [--json]\n"
    "               [--fail-cos c] [--fail-kl k] [--fail-top1 f] [--save-tensor stages]\n"
    "               [--save-tensor-dir dir] [--save-tensor-layers a..b]\n"
    "               --tokens ids --compare other model\n"
    "       apr-run [-t n] [--device dev] [--json] [--fail-cos c] [--fail-kl k]\n"
    "               [--save-tensor-dir dir] --tokens ids --parity model\n"
    "       apr-run [-v] [-b n] [-t n] [--ctx n] [--rope-freq-dtype type] [--json]\n"
    "               [--chunks n] [--compare other] --perplexity file | --perplexity-ids file\n"
    "               model\n"
    "       apr-run [--json] [--chat] [--system text] --tokenize -p text model\n"
    "       apr-run --detokenize ids model\n"
    "       apr-run --version\n";

static const char help_str[] =
    "\n"
    "Run a llama, mistral, qwen2 or qwen3 model (GGUF, SafeTensors or APR) on the CPU:\n"
    "evaluate the prompt, then generate tokens (greedy unless --temp is given).\n"
    "Prints the generated token ids.  --compare runs OTHER (the reference) and MODEL on\n"
    "the same tokens and compares their logits; --perplexity scores a text as\n"
    "llama-perplexity does.\n"
    "\n"
    "      --chat             -p is the user's turn of the model's chat template\n"
    "      --detokenize IDS   print the text of token ids and exit\n"
    "  -b, --batch N          prompt tokens per pass (default 512)\n"
    "      --chunks N         --perplexity: score at most N chunks (default: all)\n"
    "      --compare OTHER    compare MODEL with OTHER: per position cosine, KL, top-1, max |delta|\n"
    "      --device DEV       cpu (default), cuda or cuda:N (builds with CUDA)\n"
    "      --ctx N            context size (default: the training context, at most 4096;\n"
    "                         --perplexity: chunk size, default at most 512)\n"
    "      --fail-cos C       --compare: differ when a position's cosine is below C (0.999)\n"
    "      --fail-kl K        --compare: differ when a position's KL exceeds K\n"
    "      --fail-top1 F      --compare: differ when the top-1 agreement is below F (0..1)\n"
    "  -h, --help             this help\n"
    "      --ignore-eos       keep generating after the end-of-sequence token\n"
    "  -j, --json             ids, the top 5 logits of every position, timings as JSON\n"
    "      --logits FILE      write the prompt's logits: little-endian f32 [n_tokens][n_vocab]\n"
    "      --min-p P          drop tokens less likely than P x the top one (default 0.05)\n"
    "  -n, --predict N        tokens to generate (default 32; 0: only the prompt)\n"
    "      --parity           CPU vs GPU on the same tokens: per position cosine, KL, top-1;\n"
    "                         on failure the first divergent stage (exit 1)\n"
    "  -p, --prompt TEXT      the prompt as text (BOS per the model, special tokens parsed);\n"
    "                         generated tokens are then printed as text\n"
    "      --perplexity FILE  perplexity of the text in FILE (the model's tokenizer), in\n"
    "                         chunks of --ctx, the second half of each scored; -v: each chunk\n"
    "      --perplexity-ids FILE\n"
    "                         the same over token ids (1,5,42 or one per line)\n"
    "      --repeat-penalty R penalise the last 64 tokens (default 1: off)\n"
    "      --rope-freq-dtype f32|f16|bf16\n"
    "                         round the RoPE frequencies like transformers does for a model\n"
    "                         loaded in that type (default: exact)\n"
    "      --save-tensor STAGES\n"
    "                         write APRT stage dumps of the prompt pass (comma list or all)\n"
    "      --save-tensor-dir DIR\n"
    "                         where (default <model dir>/<model stem>-trace)\n"
    "      --save-tensor-layers A..B\n"
    "                         layers A to B-1 (default 0..1)\n"
    "      --seed S           sampling seed (default 0)\n"
    "      --system TEXT      with --chat: the system turn\n"
    "  -t, --threads N        threads (default: the CPUs this process may use)\n"
    "      --temp T           sampling temperature (default 0: greedy)\n"
    "      --tokenize         with -p: print the prompt's token ids (--json: ids and pieces)\n"
    "      --tokens IDS       the prompt as token ids: 1,5,42\n"
    "      --top-k K          sample among the K most likely (default 40)\n"
    "      --top-p P          nucleus sampling (default 0.95)\n"
    "      --trace            statistics of every stage of every layer of the prompt pass\n"
    "  -v, --verbose          prompt and generation speeds on standard error\n"
    "      --version          print the version\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

enum {
    OPT_COMPARE = CLI_OPT_BASE, OPT_CTX, OPT_FAIL_COS, OPT_FAIL_KL, OPT_FAIL_TOP1, OPT_PERPLEXITY,
    OPT_IGNORE_EOS, OPT_LOGITS, OPT_MIN_P, OPT_REPEAT_PENALTY, OPT_ROPE_FREQ_DTYPE,
    OPT_SAVE_TENSOR, OPT_SAVE_TENSOR_DIR, OPT_SAVE_TENSOR_LAYERS, OPT_SEED, OPT_TEMP,
    OPT_TOKENS, OPT_TOP_K, OPT_TOP_P, OPT_TRACE, OPT_DEVICE, OPT_PARITY,
    OPT_CHAT, OPT_SYSTEM, OPT_TOKENIZE, OPT_DETOKENIZE, OPT_PERPLEXITY_IDS, OPT_CHUNKS,
};

static const struct option longopts[] = {
    { "batch",              required_argument, NULL, 'b' },
    { "chat",               no_argument,       NULL, OPT_CHAT },
    { "chunks",             required_argument, NULL, OPT_CHUNKS },
    { "compare",            required_argument, NULL, OPT_COMPARE },
    { "ctx",                required_argument, NULL, OPT_CTX },
    { "detokenize",         required_argument, NULL, OPT_DETOKENIZE },
    { "device",             required_argument, NULL, OPT_DEVICE },
    { "fail-cos",           required_argument, NULL, OPT_FAIL_COS },
    { "fail-kl",            required_argument, NULL, OPT_FAIL_KL },
    { "fail-top1",          required_argument, NULL, OPT_FAIL_TOP1 },
    { "help",               no_argument,       NULL, 'h' },
    { "ignore-eos",         no_argument,       NULL, OPT_IGNORE_EOS },
    { "json",               no_argument,       NULL, 'j' },
    { "list-options",       no_argument,       NULL, CLI_OPT_LIST_OPTIONS },
    { "logits",             required_argument, NULL, OPT_LOGITS },
    { "min-p",              required_argument, NULL, OPT_MIN_P },
    { "parity",             no_argument,       NULL, OPT_PARITY },
    { "perplexity",         required_argument, NULL, OPT_PERPLEXITY },
    { "perplexity-ids",     required_argument, NULL, OPT_PERPLEXITY_IDS },
    { "prompt",             required_argument, NULL, 'p' },
    { "predict",            required_argument, NULL, 'n' },
    { "repeat-penalty",     required_argument, NULL, OPT_REPEAT_PENALTY },
    { "rope-freq-dtype",    required_argument, NULL, OPT_ROPE_FREQ_DTYPE },
    { "save-tensor",        required_argument, NULL, OPT_SAVE_TENSOR },
    { "save-tensor-dir",    required_argument, NULL, OPT_SAVE_TENSOR_DIR },
    { "save-tensor-layers", required_argument, NULL, OPT_SAVE_TENSOR_LAYERS },
    { "seed",               required_argument, NULL, OPT_SEED },
    { "system",             required_argument, NULL, OPT_SYSTEM },
    { "temp",               required_argument, NULL, OPT_TEMP },
    { "threads",            required_argument, NULL, 't' },
    { "tokenize",           no_argument,       NULL, OPT_TOKENIZE },
    { "tokens",             required_argument, NULL, OPT_TOKENS },
    { "top-k",              required_argument, NULL, OPT_TOP_K },
    { "top-p",              required_argument, NULL, OPT_TOP_P },
    { "trace",              no_argument,       NULL, OPT_TRACE },
    { "verbose",            no_argument,       NULL, 'v' },
    { "version",            no_argument,       NULL, CLI_OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

/* "A..B" with 0 <= A < B */
static int parse_range(const char *s, int *lo, int *hi)
{
    const char *dots = strstr(s, "..");
    char a[32];
    uint64_t x, y;

    if (!dots || (size_t)(dots - s) >= sizeof a)
        return -1;
    memcpy(a, s, (size_t)(dots - s));
    a[dots - s] = '\0';
    if (cli_parse_u64(a, 0, 1u << 20, &x) || cli_parse_u64(dots + 2, 1, 1u << 20, &y) || y <= x)
        return -1;
    *lo = (int)x;
    *hi = (int)y;
    return 0;
}

/* apr-run's options as they are parsed, and what they own */
struct cli_st {
    struct run_opts   o;
    struct err        e;
    int32_t          *tokens;     /* --tokens or -p's ids */
    const char       *prompt, *sys, *detok;
    int               chat, tokenize;
    struct tokenizer *tk;         /* -p, --detokenize */
};

static void cli_st_release(struct cli_st *s)
{
    free(s->tokens);
    tok_free(s->tk);
    s->tokens = NULL;
    s->tk = NULL;
}

/* a usage error: release what the options own, exit status 2 */
#define USAGE(...)                                                                           \
    do {                                                                                     \
        cli_st_release(s);                                                                   \
        return cli_usage_error(usage_str, __VA_ARGS__);                                      \
    } while (0)

/* What an option parser returns: the option is taken (go on), or not one of its own;
 * anything else (>= 0) is the exit status. */
enum { OPT_NEXT = -1, OPT_NOT_MINE = -2 };

/* sizes, threads and sampling */
static int opt_numbers(struct cli_st *s, int ch)
{
    uint64_t u;
    double d;

    switch (ch) {
    case 'b':
        if (cli_parse_u64(optarg, 1, 1u << 20, &u))
            USAGE("-b: '%s' is not a number in [1, 1048576]", optarg);
        s->o.n_batch = (int)u;
        break;
    case 'n':
        if (cli_parse_u64(optarg, 0, 1u << 24, &u))
            USAGE("-n: '%s' is not a number in [0, 16777216]", optarg);
        s->o.n_predict = (int)u;
        break;
    case 't':
        if (cli_parse_u64(optarg, 1, 1024, &u))
            USAGE("-t: '%s' is not a number in [1, 1024]", optarg);
        s->o.n_threads = (int)u;
        break;
    case OPT_CHUNKS:
        if (cli_parse_u64(optarg, 1, INT32_MAX, &u))
            USAGE("--chunks: '%s' is not a number >= 1", optarg);
        s->o.n_chunks = (int)u;
        break;
    case OPT_CTX:
        if (cli_parse_u64(optarg, 1, 1u << 24, &u))
            USAGE("--ctx: '%s' is not a number in [1, 16777216]", optarg);
        s->o.n_ctx = (int)u;
        break;
    case OPT_MIN_P:
        if (cli_parse_f64(optarg, 0, 1, &d))
            USAGE("--min-p: '%s' is not a number in [0, 1]", optarg);
        s->o.sp.min_p = d;
        break;
    case OPT_REPEAT_PENALTY:
        if (cli_parse_f64(optarg, 0.01, 100, &d))
            USAGE("--repeat-penalty: '%s' is not a number in [0.01, 100]", optarg);
        s->o.sp.repeat_penalty = d;
        break;
    case OPT_SEED:
        if (cli_parse_u64(optarg, 0, UINT64_MAX, &u))
            USAGE("--seed: '%s' is not a number", optarg);
        s->o.sp.seed = u;
        break;
    case OPT_TEMP:
        if (cli_parse_f64(optarg, 0, 100, &d))
            USAGE("--temp: '%s' is not a number in [0, 100]", optarg);
        s->o.sp.temp = d;
        break;
    case OPT_TOP_K:
        if (cli_parse_u64(optarg, 0, INT32_MAX, &u))
            USAGE("--top-k: '%s' is not a number", optarg);
        s->o.sp.top_k = (int)u;
        break;
    case OPT_TOP_P:
        if (cli_parse_f64(optarg, 0, 1, &d))
            USAGE("--top-p: '%s' is not a number in [0, 1]", optarg);
        s->o.sp.top_p = d;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return OPT_NEXT;
}

/* comparison, perplexity, the device, RoPE and the stage traces and dumps */
static int opt_modes(struct cli_st *s, int ch)
{
    double d;

    switch (ch) {
    case OPT_DEVICE: {
        uint64_t dn = 0;
        if (strcmp(optarg, "cpu") == 0)
            s->o.device = -1;
        else if (strcmp(optarg, "cuda") == 0)
            s->o.device = 0;
        else if (strncmp(optarg, "cuda:", 5) == 0 && cli_parse_u64(optarg + 5, 0, 63, &dn) == 0)
            s->o.device = (int)dn;
        else
            USAGE("--device: '%s' is not cpu, cuda or cuda:N", optarg);
        break;
    }
    case OPT_PARITY:
        s->o.parity = 1;
        break;
    case OPT_COMPARE:
        s->o.other = optarg;
        break;
    case OPT_FAIL_COS:
        if (cli_parse_f64(optarg, -1, 1, &d))
            USAGE("--fail-cos: '%s' is not a number in [-1, 1]", optarg);
        s->o.fail_cos = d;
        break;
    case OPT_FAIL_KL:
        if (cli_parse_f64(optarg, 0, 1e30, &d))
            USAGE("--fail-kl: '%s' is not a number >= 0", optarg);
        s->o.fail_kl = d;
        break;
    case OPT_FAIL_TOP1:
        if (cli_parse_f64(optarg, 0, 1, &d))
            USAGE("--fail-top1: '%s' is not a number in [0, 1]", optarg);
        s->o.fail_top1 = d;
        break;
    case OPT_PERPLEXITY:
    case OPT_PERPLEXITY_IDS:
        if (s->o.perplexity)
            USAGE("--perplexity and --perplexity-ids: one file, please");
        s->o.perplexity = optarg;
        s->o.perplexity_ids = ch == OPT_PERPLEXITY_IDS;
        break;
    case OPT_LOGITS:
        s->o.logits_path = optarg;
        break;
    case OPT_ROPE_FREQ_DTYPE:
        if (!strcmp(optarg, "f32"))
            s->o.rope_freq = RT_ROPE_FREQ_F32;
        else if (!strcmp(optarg, "f16"))
            s->o.rope_freq = RT_ROPE_FREQ_F16;
        else if (!strcmp(optarg, "bf16"))
            s->o.rope_freq = RT_ROPE_FREQ_BF16;
        else
            USAGE("--rope-freq-dtype: '%s' is not f32, f16 or bf16", optarg);
        break;
    case OPT_SAVE_TENSOR:
        if (rt_stages_parse(optarg, &s->o.save_stages, &s->e))
            USAGE("--save-tensor: %s", s->e.msg);
        break;
    case OPT_SAVE_TENSOR_DIR:
        s->o.save_dir = optarg;
        break;
    case OPT_SAVE_TENSOR_LAYERS:
        if (parse_range(optarg, &s->o.save_lo, &s->o.save_hi))
            USAGE("--save-tensor-layers: '%s' is not A..B with A < B", optarg);
        break;
    case OPT_TRACE:
        s->o.trace = 1;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return OPT_NEXT;
}

/* the prompt, text, output and information options */
static int opt_other(struct cli_st *s, int ch)
{
    switch (ch) {
    case 'h':
        cli_st_release(s);
        return cli_help(usage_str, help_str);
    case 'v':
        s->o.verbose = 1;
        break;
    case 'p':
        s->prompt = optarg;
        break;
    case OPT_CHAT:
        s->chat = 1;
        break;
    case OPT_SYSTEM:
        s->sys = optarg;
        break;
    case OPT_TOKENIZE:
        s->tokenize = 1;
        break;
    case OPT_DETOKENIZE:
        s->detok = optarg;
        break;
    case OPT_IGNORE_EOS:
        s->o.ignore_eos = 1;
        break;
    case 'j':
        s->o.json = 1;
        break;
    case OPT_TOKENS:
        free(s->tokens);
        if (run_parse_tokens(optarg, strlen(optarg), &s->tokens, &s->o.n_tokens, &s->e))
            USAGE("--tokens: %s", s->e.msg);
        s->o.tokens = s->tokens;
        break;
    case CLI_OPT_VERSION:
        cli_st_release(s);
        return cli_version();
    case CLI_OPT_LIST_OPTIONS:
        cli_st_release(s);
        return cli_list_options(longopts);
    default:
        USAGE(NULL);
    }
    return OPT_NEXT;
}

/* the model argument and the text options' combinations; OPT_NEXT when they are fine */
static int check_text_args(struct cli_st *s, int argc, char **argv)
{
    if (argc - optind != 1)
        USAGE(argc - optind ? "one model, please" : "no model given");
    s->o.model = argv[optind];
    if ((s->chat || s->sys) && !s->prompt)
        USAGE("--chat and --system need -p");
    if (s->sys && !s->chat)
        USAGE("--system needs --chat");
    if (s->tokenize && (!s->prompt || s->detok))
        USAGE("--tokenize needs -p");
    if ((s->prompt || s->detok) && (s->o.n_tokens || s->o.perplexity || s->o.other || s->o.parity))
        USAGE("-p and --detokenize do not go with --tokens, --perplexity, --compare or --parity");
    if (s->prompt && s->detok)
        USAGE("-p and --detokenize are two different jobs");
    return OPT_NEXT;
}

/* -p, --tokenize, --detokenize through the model's tokenizer: the exit status when that
 * was the whole job, else OPT_NEXT with -p's ids in s->o.tokens */
static int text_job(struct cli_st *s)
{
    int rc;

    if (tok_cli_open(s->o.model, &s->tk, &s->e)) {
        cli_st_release(s);
        return cli_exit(cli_fail(&s->e));
    }
    if (s->detok) {
        int32_t *ids = NULL;
        size_t n = 0;
        rc = run_parse_tokens(s->detok, strlen(s->detok), &ids, &n, &s->e) ||
             tok_cli_print_text(s->tk, ids, n, stdout, &s->e) ? -1 : 0;
        free(ids);
    } else {
        rc = tok_cli_prompt(s->tk, s->prompt, s->sys, s->chat, &s->tokens, &s->o.n_tokens, &s->e);
        if (!rc && s->tokenize)
            rc = tok_cli_print_ids(s->tk, s->tokens, s->o.n_tokens, s->o.json, stdout) ? -1 : 0;
    }
    if (rc || s->detok || s->tokenize) {
        rc = cli_exit(rc ? cli_fail(&s->e) : 0);
        cli_st_release(s);
        return rc;
    }
    s->o.tokens = s->tokens;
    if (!s->o.json)
        s->o.tok = s->tk;
    return OPT_NEXT;
}

/* the run options' combinations; OPT_NEXT when they are fine */
static int check_run_args(struct cli_st *s)
{
    const struct run_opts *o = &s->o;

    if (!o->n_tokens && !o->perplexity)
        USAGE("no prompt: give --tokens or -p");
    if (o->perplexity && o->n_tokens)
        USAGE("--perplexity reads its tokens from the file, not --tokens");
    if (o->parity && (o->other || o->perplexity || o->logits_path || o->trace || o->save_stages ||
                      o->fail_top1 >= 0))
        USAGE("--parity takes --tokens, --device, --fail-cos, --fail-kl and --save-tensor-dir");
    if (!o->other && !o->parity && (o->fail_cos >= -1 || o->fail_kl >= 0 || o->fail_top1 >= 0))
        USAGE("--fail-cos, --fail-kl and --fail-top1 need --compare");
    if ((o->other || o->perplexity) && (o->logits_path || o->trace))
        USAGE("--logits and --trace are for one model's run");
    if (o->n_chunks && !o->perplexity)
        USAGE("--chunks needs --perplexity");
    if (o->perplexity && o->save_stages)
        USAGE("--save-tensor does not go with --perplexity");
    return OPT_NEXT;
}

int main(int argc, char **argv)
{
    struct cli_st st = { RUN_OPTS_INIT, ERR_INIT, NULL, NULL, NULL, NULL, 0, 0, NULL };
    struct cli_st *s = &st;
    int ch, rc;

    cli_init(argv[0]);
    s->o.out = stdout;
    s->o.diag = stderr;
    while ((ch = getopt_long(argc, argv, "b:hjn:p:t:v", longopts, NULL)) != -1) {
        rc = opt_numbers(s, ch);
        if (rc == OPT_NOT_MINE)
            rc = opt_modes(s, ch);
        if (rc == OPT_NOT_MINE)
            rc = opt_other(s, ch);
        if (rc != OPT_NEXT)
            return rc;
    }
    if ((rc = check_text_args(s, argc, argv)) != OPT_NEXT ||
        ((s->prompt || s->detok) && (rc = text_job(s)) != OPT_NEXT) ||
        (rc = check_run_args(s)) != OPT_NEXT)
        return rc;
    rc = run_exec(&s->o, &s->e);
    cli_st_release(s);
    if (rc < 0) {
        int code = cli_fail(&s->e);
        /* --compare follows diff(1): trouble is 2 */
        return cli_exit((s->o.other && !s->o.perplexity) || s->o.parity ? CLI_EXIT_TROUBLE : code);
    }
    return cli_exit(rc);
}
