#!/bin/sh
# Writes the suite table for check_main.c: every tests/unit/check_*.c that defines
# "Suite *NAME_suite(void)" at the start of a line is registered, in file order.
set -e
names=$(grep -h '^Suite \*[a-z0-9_]*_suite(void)' "$@" | sed 's/^Suite \*\([a-z0-9_]*\)_suite(void).*/\1/')
for n in $names; do echo "Suite *${n}_suite(void);"; done
echo "static Suite *(*const all_suites[])(void) = {"
for n in $names; do echo "    ${n}_suite,"; done
echo "    NULL"
echo "};"
