#!/bin/sh
# bench_diff.sh BUILD - apr-diff --values input throughput against `cat a b > /dev/null`,
# same run, same files: a generated llama-style model written twice by
# tests/bench/mkpair.c, as F16 (about 2.3 GB) and as Q8_0 (about 1.2 GB), into a
# temporary directory removed afterwards.  The page cache cannot be dropped here, so
# cat runs first to warm it and both are measured warm; each command runs 3 times and
# the best time counts.  Prints seconds and GB/s (10^9 bytes of input: both files) and
# the ratio to cat.  Aims: >= 1.5 GB/s of input on 2 cores, within 2x of cat.
#
#   sh tests/bench/bench_diff.sh build     (APR_BENCH_DIFF_LAYERS=5 to change the size)
set -eu
B=${1:-build}
LAYERS=${APR_BENCH_DIFF_LAYERS:-5}
[ -x "$B/apr-diff" ] && [ -x "$B/bench/mkpair" ] || {
    echo "bench_diff: needs $B/apr-diff and $B/bench/mkpair (make all $B/bench/mkpair)" >&2
    exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apr-bench-diff.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM HUP
A=$tmp/f16.gguf
Q=$tmp/q8_0.gguf
"$B/bench/mkpair" "$A" "$Q" "$LAYERS"
size=$(( $(wc -c < "$A") + $(wc -c < "$Q") ))
cat "$A" "$Q" > /dev/null                             # warm the page cache

now() { date +%s%N; }
best() {                                               # best wall time of 3, in ns
    b=0
    for _ in 1 2 3; do
        s=$(now)
        rc=0
        "$@" > /dev/null || rc=$?
        e=$(now)
        # apr-diff exits 1 here (F16 and Q8_0 differ): only 2 is a failure
        [ "$rc" -le 1 ] || { echo "bench_diff: failed ($rc): $*" >&2; exit 1; }
        d=$((e - s))
        if [ "$b" -eq 0 ] || [ "$d" -lt "$b" ]; then b=$d; fi
    done
    echo "$b"
}

printf 'files: F16 %s + Q8_0 %s = %s bytes, %s CPUs\n' "$(wc -c < "$A" | tr -d ' ')" \
    "$(wc -c < "$Q" | tr -d ' ')" "$size" "$(nproc 2>/dev/null || echo ?)"
floor=$(best cat "$A" "$Q") || exit 1
report() {                                             # NAME NS
    awk -v n="$1" -v t="$2" -v sz="$size" -v c="$floor" \
        'BEGIN { s = t / 1e9; printf "%-36s %7.3f s  %6.2f GB/s  %5.2fx cat time\n", n, s, sz / s / 1e9, t / c }'
}
report "cat a b > /dev/null (warm)" "$floor"
for j in 1 2; do
    t=$(best "$B/apr-diff" --values -t "$j" "$A" "$Q") || exit 1
    report "apr-diff --values -t $j (warm)" "$t"
done
t=$(best "$B/apr-diff" --values --transpose-aware --json "$A" "$Q") || exit 1
report "apr-diff --values --transpose-aware --json" "$t"
