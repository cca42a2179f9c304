# t5020: no function of apr-run's own files (runtime/ minus the kernels and CUDA) is longer
# than 150 lines (house style: split by job).  A function is counted from its first line
# at column 0 to its closing brace at column 0.
. tests/cli/lib.sh

long=$(for f in runtime/main.c runtime/run.c runtime/run_ppl.c runtime/forward.c runtime/rt.c \
               runtime/sample.c runtime/tok_*.c; do
    awk -v F="$f" '/^[A-Za-z].*\(/ && !/;[ \t]*$/ && !start { start = NR; name = $0 }
                   /^}/ && start { if (NR - start + 1 > 150) printf "%s:%d: %d lines: %s\n", F, start, NR - start + 1, name; start = 0 }' "$f"
done)
if [ -z "$long" ]; then
    _rec pass "apr-run's functions are at most 150 lines"
else
    _fail "apr-run's functions are at most 150 lines" "$long"
fi
