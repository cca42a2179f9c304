#!/bin/sh
# run.sh - the benchmarks, one section per module; `make bench` calls it with the build
# directory.  Add a section per benchmark: a header line, then the binary.  Timings go
# to stdout for people; nothing here is a pass/fail test.  The file-tool benchmarks print
# each figure beside its floor measured in the same run (interleaved rounds, best of
# APR_BENCH_ROUNDS, default 5), the peak RSS and the load average (tests/bench/lib.sh):
# the machine is shared, so only same-run ratios mean anything.
#
#   sh tests/bench/run.sh build
set -e
BUILD=${1:-build}

section() {
    printf '\n==== %s ====\n' "$1"
}

# ---- dequant: per-type dequantization throughput vs memcpy (tests/bench/bench_dq.c)
section "dequant (bench_dq)"
"$BUILD/bench/bench_dq"

# ---- hash: apr-hash vs openssl dgst -sha256 (floor) on a 1 GiB GGUF, peak RSS (tests/bench/bench_hash.sh)
section "hash (bench_hash.sh)"
sh tests/bench/bench_hash.sh "$BUILD"

# ---- convert: apr-convert GGUF -> APR keeping types vs cp + sync and openssl (floors), peak RSS
# (tests/bench/bench_convert.sh)
section "convert (bench_convert.sh)"
sh tests/bench/bench_convert.sh "$BUILD"

# ---- diff: apr-diff --values F16 GGUF vs its F16 APR vs cat (floor), peak RSS (tests/bench/bench_diff.sh)
section "diff (bench_diff.sh)"
sh tests/bench/bench_diff.sh "$BUILD"

# ---- quantize: apr-convert --dtype Q4_K/Q6_K/Q8_0 on ~1 GB of F32, beside llama-quantize when
# LLAMA_QUANTIZE=path is set (tests/bench/bench_quant.sh)
section "quantize (bench_quant.sh)"
sh tests/bench/bench_quant.sh "$BUILD"

# ---- tokenizer: MB/s on one thread, beside llama-tokenize with LLAMA_TOKENIZE=path (tests/bench/bench_tok.sh)
section "tokenizer (bench_tok.sh)"
sh tests/bench/bench_tok.sh "$BUILD"

# ---- (next section here)
