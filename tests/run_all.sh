#!/bin/sh
# run_all.sh BUILD - the whole test suite: unit tests (check), then CLI tests.
# Prints each runner's summary and, last, the total as "check: N passed, N failed,
# N skipped" (skips: a missing shared fixture, a CPU without the feature under test).
set -u
B=${1:-build}
out=$(mktemp)
status=0
"$B/tests/check_all" 2>&1 | tee "$out" || status=1
u=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1 \2 \3/p' "$out" | tail -n 1)
[ -n "$u" ] || { u="0 1 0"; status=1; }
sh tests/cli/run.sh "$B" 2>&1 | tee "$out" || status=1
c=$(sed -n 's/^cli: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1 \2 \3/p' "$out" | tail -n 1)
[ -n "$c" ] || { c="0 1 0"; status=1; }
rm -f "$out"
set -- $u $c
[ "$2" -eq 0 ] && [ "$5" -eq 0 ] || status=1
echo "check: $(($1 + $4)) passed, $(($2 + $5)) failed, $(($3 + $6)) skipped"
exit $status
