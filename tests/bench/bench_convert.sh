#!/bin/sh
# bench_convert.sh BUILD - apr-convert GGUF -> APR keeping types, against cp of the same
# file, same run: a GGUF of about 1 GiB of real pseudo-random bytes in 256 F16 tensors
# (tests/bench/mkbig.c; never sparse) in a temporary directory removed afterwards.
# Three rounds on a warm page cache, each running every command once in turn (so a
# neighbour's load hits them alike; outputs removed and `sync`ed between runs); the best
# time of each counts.  Prints seconds, GB/s (10^9 bytes), the ratio to cp (aim >= 0.8x),
# apr-convert's peak RSS from /usr/bin/time -f %M (aim < 256 MiB) and the load average.
#
# What apr-convert does that cp does not: it fsync()s its output (writeback is started
# as the data goes out, so little is left for the fsync), computes the APR CRC-32 over
# every byte, and hashes the whole source (SHA-256 for source_sha256) on a second thread
# while the kernel copies the tensor bytes (copy_file_range).  With two or more cores its
# floor is therefore one SHA-256 pass over the file, printed as "sha256 of the file", and
# "cp + sync" is printed too.
#
#   sh tests/bench/bench_convert.sh build     (APR_BENCH_CONVERT_MIB=1024 to change the size)
set -eu
B=${1:-build}
MIB=${APR_BENCH_CONVERT_MIB:-1024}
[ -x "$B/apr-convert" ] && [ -x "$B/bench/mkbig" ] || {
    echo "bench_convert: needs $B/apr-convert and $B/bench/mkbig (make all $B/bench/mkbig)" >&2
    exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/apr-bench-convert.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
F=$tmp/big.gguf
"$B/bench/mkbig" "$F" "$MIB" 256 > /dev/null
size=$(wc -c < "$F" | tr -d ' ')
cat "$F" > /dev/null                                  # warm the page cache
if command -v openssl > /dev/null 2>&1; then
    SHA="openssl dgst -sha256 '$F'"
else
    SHA="sha256sum '$F'"
fi

now() { date +%s%N; }
run() {                                                # R = wall time of one run, in ns
    rm -f "$tmp/out" "$tmp/out.apr"
    sync
    cat "$F" > /dev/null                               # warm again: the cache is shared
    s=$(now)
    sh -c "$1" > /dev/null || { echo "bench_convert: failed: $1" >&2; exit 1; }
    e=$(now)
    rm -f "$tmp/out" "$tmp/out.apr"
    R=$((e - s))
}
min() { if [ "$1" -eq 0 ] || [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi; }

printf 'file: %s bytes (%s MiB), 256 F16 tensors, %s CPUs\n' "$size" "$MIB" "$(nproc 2>/dev/null || echo ?)"
printf 'load before: %s\n' "$(uptime | sed 's/.*load/load/')"
tcp=0 tcs=0 tsh=0 tcv=0
for _ in 1 2 3; do
    run "cp '$F' '$tmp/out'"; tcp=$(min "$tcp" "$R")
    run "cp '$F' '$tmp/out' && sync '$tmp/out'"; tcs=$(min "$tcs" "$R")
    run "$SHA"; tsh=$(min "$tsh" "$R")
    run "'$B/apr-convert' -q --no-progress '$F' '$tmp/out.apr'"; tcv=$(min "$tcv" "$R")
done
report() {                                             # NAME NS
    awk -v n="$1" -v t="$2" -v sz="$size" -v c="$tcp" -v cs="$tcs" \
        'BEGIN { s = t / 1e9; printf "%-34s %7.3f s  %6.2f GB/s  %5.2fx cp  %5.2fx cp+sync\n", n, s, sz / s / 1e9, c / t, cs / t }'
}
report "cp" "$tcp"
report "cp + sync" "$tcs"
report "sha256 of the file (~floor)" "$tsh"
report "apr-convert in.gguf out.apr" "$tcv"
if [ -x /usr/bin/time ]; then
    rss=$( { /usr/bin/time -f %M "$B/apr-convert" -q --no-progress "$F" "$tmp/rss.apr" > /dev/null; } 2>&1 | tail -1)
    rm -f "$tmp/rss.apr"
    printf 'apr-convert peak RSS: %s KiB (%s MiB; aim < 256 MiB)\n' "$rss" "$((rss / 1024))"
else
    echo "apr-convert peak RSS: /usr/bin/time not installed"
fi
printf 'load after: %s\n' "$(uptime | sed 's/.*load/load/')"
