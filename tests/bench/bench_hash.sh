#!/bin/sh
# bench_hash.sh BUILD - apr-hash throughput against openssl and sha256sum, same run,
# same file: a GGUF of about 1 GiB of real pseudo-random bytes in 256 F16 tensors
# (tests/bench/mkbig.c; never sparse), written to a temporary directory that is
# removed afterwards.  Each command runs 3 times on a warm page cache; the best time
# counts.  Prints seconds, GB/s (10^9 bytes) and the ratio to `openssl dgst -sha256`,
# the physical baseline (SHA-NI): the aims are >= 0.9x at -t1 and >= 1.7x at -t2 with
# --tensors.  Whole-file hashing is one sequential SHA-256: -t cannot speed it up.
#
#   sh tests/bench/bench_hash.sh build     (APR_BENCH_HASH_MIB=1024 to change the size)
set -eu
B=${1:-build}
MIB=${APR_BENCH_HASH_MIB:-1024}
[ -x "$B/apr-hash" ] && [ -x "$B/bench/mkbig" ] || {
    echo "bench_hash: needs $B/apr-hash and $B/bench/mkbig (make all $B/bench/mkbig)" >&2
    exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apr-bench-hash.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM HUP
F=$tmp/big.gguf
"$B/bench/mkbig" "$F" "$MIB" 256
size=$(wc -c < "$F" | tr -d ' ')
cat "$F" > /dev/null                                  # warm the page cache

now() { date +%s%N; }
best() {                                               # best wall time of 3, in ns
    b=0
    for _ in 1 2 3; do
        s=$(now)
        "$@" > /dev/null || { echo "bench_hash: failed: $*" >&2; exit 1; }
        e=$(now)
        d=$((e - s))
        if [ "$b" -eq 0 ] || [ "$d" -lt "$b" ]; then b=$d; fi
    done
    echo "$b"
}

printf 'file: %s bytes (%s MiB), 256 tensors, %s CPUs\n' "$size" "$MIB" "$(nproc 2>/dev/null || echo ?)"
ossl=$(best openssl dgst -sha256 "$F") || exit 1
report() {                                             # NAME NS
    awk -v n="$1" -v t="$2" -v sz="$size" -v o="$ossl" \
        'BEGIN { s = t / 1e9; printf "%-36s %7.3f s  %6.2f GB/s  %5.2fx openssl\n", n, s, sz / s / 1e9, o / t }'
}
run() {                                                # NAME CMD...
    n=$1
    shift
    t=$(best "$@") || exit 1
    report "$n" "$t"
}
report "openssl dgst -sha256" "$ossl"
run "sha256sum" sha256sum "$F"
run "apr-hash -t1 (whole file)" "$B/apr-hash" -t1 "$F"
run "apr-hash -t1 --tensors" "$B/apr-hash" -t1 --tensors "$F"
run "apr-hash -t2 --tensors" "$B/apr-hash" -t2 --tensors "$F"
run "apr-hash -t1 --content (F16->f32)" "$B/apr-hash" -t1 --content "$F"
run "apr-hash -t2 --content (F16->f32)" "$B/apr-hash" -t2 --content "$F"
# the hashes agree with the baselines
a=$("$B/apr-hash" "$F" | cut -c1-64)
o=$(openssl dgst -sha256 -r "$F" | cut -c1-64)
[ "$a" = "$o" ] && echo "whole-file sha256 equals openssl's" || { echo "MISMATCH: $a vs $o"; exit 1; }
