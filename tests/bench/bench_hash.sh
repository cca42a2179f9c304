#!/bin/sh
# bench_hash.sh BUILD - apr-hash throughput against `openssl dgst -sha256` (the floor: one
# SHA-256 pass, SHA-NI where the CPU has it) and sha256sum, same run, same file: a GGUF of
# about 1 GiB of real pseudo-random bytes in 256 F16 tensors (tests/bench/mkbig.c; never
# sparse) in a temporary directory removed afterwards.  Warm page cache; ROUNDS rounds
# (default 5), each running every command once in turn; the best time of each counts.
# Prints seconds, GB/s (10^9 bytes), the ratio to openssl (> 1 is faster), apr-hash's
# peak RSS and the load average.  Aims (issue 11): --tensors >= 0.95x openssl at -t1,
# >= 1.8x at -t2; whole file >= 0.95x; RSS < 256 MiB.  Ratios are not pass/fail.
#
#   sh tests/bench/bench_hash.sh build   (APR_BENCH_HASH_MIB=1024, APR_BENCH_ROUNDS=5)
set -eu
B=${1:-build}
MIB=${APR_BENCH_HASH_MIB:-1024}
ROUNDS=${APR_BENCH_ROUNDS:-5}
. tests/bench/lib.sh
[ -x "$B/apr-hash" ] && [ -x "$B/bench/mkbig" ] || {
    echo "bench_hash: needs $B/apr-hash and $B/bench/mkbig (make all $B/bench/mkbig)" >&2
    exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apr-bench-hash.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
F=$tmp/big.gguf
"$B/bench/mkbig" "$F" "$MIB" 256 > /dev/null
size=$(wc -c < "$F" | tr -d ' ')
cat "$F" > /dev/null                                  # warm the page cache

printf 'file: %s bytes (%s MiB), 256 F16 tensors, %s CPUs; best of %s rounds\n' "$size" "$MIB" \
    "$(nproc 2>/dev/null || echo ?)" "$ROUNDS"
printf 'load before: %s\n' "$(bench_load)"
bench_add ossl "openssl dgst -sha256 '$F'"
bench_add sum "sha256sum '$F'"
bench_add whole "'$B/apr-hash' -t1 '$F'"
bench_add t1 "'$B/apr-hash' -t1 --tensors '$F'"
bench_add t2 "'$B/apr-hash' -t2 --tensors '$F'"
bench_add c1 "'$B/apr-hash' -t1 --content '$F'"
bench_add c2 "'$B/apr-hash' -t2 --content '$F'"
bench_run "$ROUNDS"
ossl=$(bench_best ossl)
report() {                                             # LABEL NAME [RSS-CMD]
    t=$(bench_best "$2")
    rss=-
    [ -z "${3:-}" ] || rss="$(( $(bench_rss "$3") / 1024 )) MiB"
    awk -v n="$1" -v t="$t" -v sz="$size" -v o="$ossl" -v r="$rss" \
        'BEGIN { s = t / 1e9; printf "%-34s %7.3f s  %6.2f GB/s  %5.2fx openssl  RSS %s\n", n, s, sz / s / 1e9, o / t, r }'
}
report "openssl dgst -sha256 (floor)" ossl
report "sha256sum" sum
report "apr-hash -t1 (whole file)" whole "'$B/apr-hash' -t1 '$F'"
report "apr-hash -t1 --tensors" t1 "'$B/apr-hash' -t1 --tensors '$F'"
report "apr-hash -t2 --tensors" t2 "'$B/apr-hash' -t2 --tensors '$F'"
report "apr-hash -t1 --content (F16->f32)" c1 "'$B/apr-hash' -t1 --content '$F'"
report "apr-hash -t2 --content (F16->f32)" c2 "'$B/apr-hash' -t2 --content '$F'"
printf 'load after: %s\n' "$(bench_load)"
# the hashes agree with the floor's
a=$("$B/apr-hash" "$F" | cut -c1-64)
o=$(openssl dgst -sha256 -r "$F" | cut -c1-64)
[ "$a" = "$o" ] && echo "whole-file sha256 equals openssl's" || { echo "MISMATCH: $a vs $o"; exit 1; }
