#!/bin/sh
# run.sh BUILD - runs every tests/cli/t*.sh (each in its own scratch dir) and prints
# "cli: N passed, N failed, N skipped".  Exit 1 when any check failed.
set -u
BUILD=$(cd "${1:-build}" && pwd)
top=$(pwd)
SHARED=${APR_SHARED_FIXTURES:-$top/../shared/fixtures}
[ -d "$SHARED" ] && SHARED=$(cd "$SHARED" && pwd) || SHARED=
scratch=$(mktemp -d "${TMPDIR:-/tmp}/apr-cli.XXXXXX")
RESULTS=$scratch/results
: > "$RESULTS"
for t in tests/cli/t[0-9]*.sh; do
    [ -f "$t" ] || continue
    FIX=$scratch/$(basename "$t" .sh)
    mkdir -p "$FIX"
    BUILD=$BUILD FIX=$FIX SHARED=$SHARED RESULTS=$RESULTS sh "$t" || {
        echo "fail $t (script exited non-zero)" >> "$RESULTS"
        echo "FAIL: $t exited non-zero" >&2
    }
done
p=$(grep -c '^pass ' "$RESULTS") f=$(grep -c '^fail ' "$RESULTS") s=$(grep -c '^skip ' "$RESULTS")
rm -rf "$scratch"
echo "cli: $p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
