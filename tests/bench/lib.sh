# lib.sh - helpers shared by the benchmark scripts (sourced, POSIX sh).
#
#   bench_add NAME CMD      register a command (run through sh -c; stdout discarded)
#   bench_run ROUNDS        run every registered command once per round, in turn, ROUNDS
#                           times (a neighbour's load hits them alike); BEST_<i> is the
#                           best wall time of command i in ns; PREP runs before each
#                           command when set (untimed)
#   bench_best NAME         the best time of NAME in ns
#   bench_rss CMD           peak RSS of one run of CMD in KiB (/usr/bin/time -f %M), or "n/a"
#   bench_load              the load averages, for the record beside the figures
#
# Timings on a shared machine are noisy: every figure is printed beside its floor
# measured in the same run, and the best of ROUNDS counts.  Ratios are not pass/fail.
BENCH_N=0
bench_now() { date +%s%N; }
bench_load() { uptime | sed 's/.*load average[s]*: *//'; }
bench_add() {
    BENCH_N=$((BENCH_N + 1))
    eval "BENCH_NAME_$BENCH_N=\$1; BENCH_CMD_$BENCH_N=\$2; BEST_$BENCH_N=0"
}
bench_run() {
    _r=0
    while [ "$_r" -lt "$1" ]; do
        _i=1
        while [ "$_i" -le "$BENCH_N" ]; do
            eval "_c=\$BENCH_CMD_$_i; _b=\$BEST_$_i"
            [ -z "${PREP:-}" ] || sh -c "$PREP" > /dev/null 2>&1
            _s=$(bench_now)
            _rc=0
            sh -c "$_c" > /dev/null || _rc=$?
            _e=$(bench_now)
            if [ "$_rc" -gt "${BENCH_OK_RC:-0}" ]; then
                echo "bench: failed ($_rc): $_c" >&2
                exit 1
            fi
            _d=$((_e - _s))
            if [ "$_b" -eq 0 ] || [ "$_d" -lt "$_b" ]; then eval "BEST_$_i=\$_d"; fi
            _i=$((_i + 1))
        done
        _r=$((_r + 1))
    done
}
bench_best() {
    _i=1
    while [ "$_i" -le "$BENCH_N" ]; do
        eval "_n=\$BENCH_NAME_$_i"
        if [ "$_n" = "$1" ]; then eval "echo \$BEST_$_i"; return 0; fi
        _i=$((_i + 1))
    done
    echo "bench: no command named '$1'" >&2
    exit 1
}
bench_rss() {
    if [ -x /usr/bin/time ]; then
        { /usr/bin/time -f %M sh -c "exec $1" > /dev/null; } 2>&1 | tail -1
    else
        echo n/a
    fi
}
