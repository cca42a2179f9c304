#!/bin/sh
# bench_diff.sh BUILD - apr-diff --values input throughput against `cat a b > /dev/null`
# (the floor: reading both files once), same run, same files: a generated llama-style
# model (tests/bench/mkpair.c, 7B shapes, LAYERS layers) as F16 GGUF and its apr-convert
# to APR (F16 vs F16, the same values: the case of checking a conversion), in a temporary
# directory removed afterwards.  With APR_BENCH_DIFF_Q8=1, F16 vs Q8_0 as well.  Warm page
# cache; ROUNDS rounds (default 5), each running every command once in turn; the best time
# of each counts.  Prints seconds, GB/s of input (10^9 bytes: both files), the ratio of
# cat's time to it, peak RSS and the load average.  Aims (issue 11): F16 vs F16 >= 3 GB/s
# of input at -t2, RSS < 256 MiB.  Ratios are not pass/fail.
#
#   sh tests/bench/bench_diff.sh build   (APR_BENCH_DIFF_LAYERS=1, APR_BENCH_ROUNDS=5)
set -eu
B=${1:-build}
LAYERS=${APR_BENCH_DIFF_LAYERS:-1}
ROUNDS=${APR_BENCH_ROUNDS:-5}
. tests/bench/lib.sh
[ -x "$B/apr-diff" ] && [ -x "$B/apr-convert" ] && [ -x "$B/bench/mkpair" ] || {
    echo "bench_diff: needs $B/apr-diff, $B/apr-convert and $B/bench/mkpair (make all $B/bench/mkpair)" >&2
    exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apr-bench-diff.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
A=$tmp/f16.gguf
Q=$tmp/q8_0.gguf
R=$tmp/f16.apr
"$B/bench/mkpair" "$A" "$Q" "$LAYERS" > /dev/null
[ "${APR_BENCH_DIFF_Q8:-0}" = 1 ] || rm -f "$Q"
"$B/apr-convert" -q --no-progress "$A" "$R"
sz() { wc -c < "$1" | tr -d ' '; }
size=$(( $(sz "$A") + $(sz "$R") ))
cat "$A" "$R" > /dev/null                             # warm the page cache

printf 'files: F16 GGUF %s + F16 APR %s = %s bytes, %s CPUs; best of %s rounds\n' "$(sz "$A")" \
    "$(sz "$R")" "$size" "$(nproc 2>/dev/null || echo ?)" "$ROUNDS"
printf 'load before: %s\n' "$(bench_load)"
BENCH_OK_RC=1                                          # apr-diff: 1 = the files differ
bench_add cat "cat '$A' '$R'"
bench_add d1 "'$B/apr-diff' --values -t1 '$A' '$R'"
bench_add d2 "'$B/apr-diff' --values -t2 '$A' '$R'"
if [ "${APR_BENCH_DIFF_Q8:-0}" = 1 ]; then
    bench_add catq "cat '$A' '$Q'"
    bench_add q2 "'$B/apr-diff' --values -t2 '$A' '$Q'"
fi
bench_run "$ROUNDS"
report() {                                             # LABEL NAME FLOOR-NAME BYTES [RSS-CMD]
    t=$(bench_best "$2")
    c=$(bench_best "$3")
    rss=-
    [ -z "${5:-}" ] || rss="$(( $(bench_rss "$5") / 1024 )) MiB"
    awk -v n="$1" -v t="$t" -v sz="$4" -v c="$c" -v r="$rss" \
        'BEGIN { s = t / 1e9; printf "%-36s %7.3f s  %6.2f GB/s  %5.2fx cat  RSS %s\n", n, s, sz / s / 1e9, c / t, r }'
}
report "cat gguf apr > /dev/null (floor)" cat cat "$size"
report "apr-diff --values -t1 F16 vs F16" d1 cat "$size" "'$B/apr-diff' --values -t1 '$A' '$R'"
report "apr-diff --values -t2 F16 vs F16" d2 cat "$size" "'$B/apr-diff' --values -t2 '$A' '$R'"
if [ "${APR_BENCH_DIFF_Q8:-0}" = 1 ]; then
    qs=$(( $(sz "$A") + $(sz "$Q") ))
    report "cat f16 q8_0 > /dev/null (floor)" catq catq "$qs"
    report "apr-diff --values -t2 F16 vs Q8_0" q2 catq "$qs" "'$B/apr-diff' --values -t2 '$A' '$Q'"
fi
printf 'load after: %s\n' "$(bench_load)"
