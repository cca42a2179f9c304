#!/bin/sh
# bench_quant.sh BUILD - apr-convert --dtype Q4_K, Q6_K and Q8_0 on a ~1 GB F32 model
# (tests/bench/bench_quant_mk.c: llama-shaped, 4 layers of 2048/5632, vocab 16384,
# 0.99 GB of pseudo-random weights), beside llama-quantize on the same file with the
# same threads when LLAMA_QUANTIZE=/path/to/llama-quantize is set.  Same run, warm page
# cache, one run of each command per type (they take tens of seconds); prints seconds,
# MB/s of F32 input (10^6 bytes), the ratio llama-quantize time / apr-convert time
# (aim >= 1.0x) and whether the two outputs hold the same tensor bytes.  Q4_K and Q5_K
# are llama-quantize's aliases of the Q4_K_M / Q5_K_M mixes: both tools make the mix.
# Not part of make check (the model alone is 1 GB).
#
#   LLAMA_QUANTIZE=/tmp/llama.cpp/build/bin/llama-quantize sh tests/bench/bench_quant.sh build
#   (APR_BENCH_THREADS=N: threads for both, default all CPUs; APR_BENCH_QUANT_TYPES="Q8_0")
set -eu
B=${1:-build}
T=${APR_BENCH_THREADS:-$(nproc 2>/dev/null || echo 2)}
TYPES=${APR_BENCH_QUANT_TYPES:-Q4_K Q6_K Q8_0}
LQ=${LLAMA_QUANTIZE:-}
[ -x "$B/apr-convert" ] && [ -x "$B/bench/bench_quant_mk" ] || {
    echo "bench_quant: needs $B/apr-convert and $B/bench/bench_quant_mk" >&2
    exit 1
}
if [ -n "$LQ" ] && [ ! -x "$LQ" ]; then
    echo "bench_quant: LLAMA_QUANTIZE=$LQ is not an executable" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apr-bench-quant.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
F=$tmp/f32.gguf
"$B/bench/bench_quant_mk" "$F" 4 2048 5632 16384
size=$(wc -c < "$F" | tr -d ' ')
cat "$F" > /dev/null

now() { date +%s%N; }
run() {                                   # R = wall ns of one run of "$@"
    rm -f "$tmp/out.gguf"
    cat "$F" > /dev/null
    s=$(now)
    "$@" > "$tmp/log" 2>&1 || { echo "bench_quant: failed: $*" >&2; tail -5 "$tmp/log" >&2; exit 1; }
    R=$(( $(now) - s ))
}
tensors() { "$B/apr-hash" --tensors "$1" | awk '$1 == "tensor" { print $5, $3, $2 }' | sort; }

printf 'model: %s bytes of F32 (247 M weights), %s threads, %s CPUs\n' "$size" "$T" \
    "$(nproc 2>/dev/null || echo ?)"
printf 'load before: %s\n' "$(uptime | sed 's/.*load/load/')"
[ -n "$LQ" ] || echo "(LLAMA_QUANTIZE not set: apr-convert alone)"
for ty in $TYPES; do
    run "$B/apr-convert" -q --no-progress -t "$T" --dtype "$ty" "$F" "$tmp/out.gguf"
    ta=$R
    tensors "$tmp/out.gguf" > "$tmp/ours.txt"
    line=$(awk -v t="$ta" -v n="$size" -v ty="$ty" 'BEGIN {
        printf "%-5s apr-convert    %7.2f s  %7.1f MB/s", ty, t / 1e9, n / (t / 1e9) / 1e6 }')
    if [ -n "$LQ" ]; then
        run "$LQ" "$F" "$tmp/out.gguf" "$ty" "$T"
        tl=$R
        tensors "$tmp/out.gguf" > "$tmp/theirs.txt"
        same=no
        cmp -s "$tmp/ours.txt" "$tmp/theirs.txt" && same=yes
        line=$(awk -v l="$line" -v t="$tl" -v a="$ta" -v n="$size" -v s="$same" 'BEGIN {
            printf "%s   llama-quantize %7.2f s  %7.1f MB/s   ratio %.2fx   same bytes: %s",
                   l, t / 1e9, n / (t / 1e9) / 1e6, t / a, s }')
    fi
    echo "$line"
done
printf 'load after: %s\n' "$(uptime | sed 's/.*load/load/')"
