# lib.sh - the CLI test helpers (toybox style).  Sourced by every tests/cli/tNNNN-*.sh,
# which run from the repository root with:
#   BUILD    absolute path of the build directory (tools are $BUILD/apr-*)
#   FIX      a scratch directory for this script (empty at start)
#   SHARED   ../shared/fixtures when present, else empty (tests needing it call need_shared)
#   RESULTS  a file where each check appends "pass NAME", "fail NAME" or "skip NAME"
#
#   testing NAME CMD EXPECTED     run CMD with sh -c; stdout must equal EXPECTED exactly
#   expect_exit NAME CODE CMD     exit status of CMD (sh -c) must be CODE
#   expect_match NAME REGEX CMD   stdout+stderr of CMD must match the extended REGEX
#   expect_file_same NAME A B     files A and B must be identical
#   skip NAME WHY                 record a skip
set -u
: "${BUILD:?}" "${FIX:?}" "${RESULTS:?}"
SHARED=${SHARED:-}
PATH="$BUILD:$PATH"
export PATH

_rec() { printf '%s %s\n' "$1" "$2" >> "$RESULTS"; }
_fail() {
    _rec fail "$1"
    printf 'FAIL: %s\n' "$1" >&2
    shift
    [ $# -gt 0 ] && printf '%s\n' "$@" >&2
    return 0
}

testing() {
    _n=$1 _c=$2 _want=$3
    _got=$(sh -c "$_c" 2>"$FIX/.stderr"; echo x)
    _got=${_got%x}
    _want="$_want
"
    if [ "$_got" = "$_want" ]; then _rec pass "$_n"
    else _fail "$_n" "command: $_c" "--- want" "$_want" "--- got" "$_got" "--- stderr" "$(cat "$FIX/.stderr")"
    fi
}

expect_exit() {
    _n=$1 _code=$2 _c=$3
    sh -c "$_c" >"$FIX/.stdout" 2>"$FIX/.stderr"
    _rc=$?
    if [ "$_rc" -eq "$_code" ]; then _rec pass "$_n"
    else _fail "$_n" "command: $_c" "exit $_rc, want $_code" "--- stdout" "$(head -c 2000 "$FIX/.stdout")" "--- stderr" "$(head -c 2000 "$FIX/.stderr")"
    fi
}

expect_match() {
    _n=$1 _re=$2 _c=$3
    _out=$(sh -c "$_c" 2>&1)
    if printf '%s\n' "$_out" | grep -Eq -- "$_re"; then _rec pass "$_n"
    else _fail "$_n" "command: $_c" "output does not match /$_re/:" "$(printf '%s\n' "$_out" | head -c 3000)"
    fi
}

expect_file_same() {
    if cmp -s "$2" "$3"; then _rec pass "$1"
    else _fail "$1" "files differ: $2 $3"
    fi
}

skip() { _rec skip "$1"; printf 'skip: %s (%s)\n' "$1" "$2" >&2; }

# need_shared NAME: true when the shared fixtures exist, else records a skip.
need_shared() {
    if [ -n "$SHARED" ] && [ -d "$SHARED" ]; then return 0; fi
    skip "$1" "no ../shared/fixtures"
    return 1
}
