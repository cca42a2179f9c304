# t6000: peak RSS stays bounded whatever the model size: whole-tensor and whole-file passes
# stream the bytes (common/stream.h) instead of faulting the mapping in.  A GGUF of real
# pseudo-random bytes (tests/bench/mkbig.c), bigger than the bound, goes through every tool
# that reads all of it; /usr/bin/time -f %M gives the peak RSS of each.  The file is small
# enough for `make check` (128 MiB, a few seconds in all); with the mapping read in, each
# of these would hold the file (apr-diff both files) in RSS.  The bound, 64 MiB, is the
# streamed figure (6-18 MiB measured: buffers, scratch, the libraries) with room for
# allocator slack, and half the file.  Skipped under ASan (its shadow memory is RSS).
. tests/cli/lib.sh

MIB=128
BOUND_KIB=$((64 * 1024))
if [ ! -x /usr/bin/time ]; then
    skip "peak RSS bounds" "/usr/bin/time not installed (tools/deps.sh installs it)"
elif grep -q __asan_init "$BUILD/apr-hash" 2>/dev/null; then
    skip "peak RSS bounds" "AddressSanitizer build (shadow memory counts as RSS)"
elif [ ! -x "$BUILD/bench/mkbig" ]; then
    skip "peak RSS bounds" "no $BUILD/bench/mkbig (make check builds it)"
else
    "$BUILD/bench/mkbig" "$FIX/big.gguf" "$MIB" 16 > /dev/null
    # rss NAME OKCODE CMD...: peak RSS of CMD (exit status 0..OKCODE) under the bound
    rss() {
        _n=$1 _ok=$2
        shift 2
        /usr/bin/time -o "$FIX/.rss" -f %M "$@" > /dev/null 2> "$FIX/.err"
        _rc=$?
        _k=$(tail -1 "$FIX/.rss")
        if [ "${_rc:-9}" -gt "$_ok" ]; then
            _fail "$_n" "exit $_rc: $*" "$(head -c 2000 "$FIX/.err")"
        elif [ "$_k" -lt "$BOUND_KIB" ]; then
            _rec pass "$_n"
            printf '%s: %s KiB\n' "$_n" "$_k" >> "$FIX/rss.log"
        else
            _fail "$_n" "peak RSS $_k KiB >= $BOUND_KIB KiB on a $MIB MiB file: $*"
        fi
    }
    rss "apr-hash --tensors peak RSS under 64 MiB" 0 apr-hash -t2 --tensors "$FIX/big.gguf"
    rss "apr-hash whole file peak RSS under 64 MiB" 0 apr-hash -t1 "$FIX/big.gguf"
    rss "apr-hash --content peak RSS under 64 MiB" 0 apr-hash -t2 --content "$FIX/big.gguf"
    rss "apr-inspect --stats peak RSS under 64 MiB" 0 apr-inspect --stats "$FIX/big.gguf"
    rss "apr-convert peak RSS under 64 MiB" 0 apr-convert -q --no-progress "$FIX/big.gguf" "$FIX/big.apr"
    rss "apr-diff --values peak RSS under 64 MiB" 1 apr-diff --values -t2 "$FIX/big.gguf" "$FIX/big.apr"
    rss "apr-diff (structural) peak RSS under 64 MiB" 1 apr-diff "$FIX/big.gguf" "$FIX/big.apr"
    rss "apr-inspect (APR checksum) peak RSS under 64 MiB" 0 apr-inspect "$FIX/big.apr"
    # the streamed bytes are the file's: sha256sum's hash; the model hash (container
    # independent) of the GGUF equals that of its conversion
    testing "streamed whole-file hash equals sha256sum" "apr-hash -t1 $FIX/big.gguf" \
        "$(sha256sum "$FIX/big.gguf")"
    testing "streamed model hash: GGUF equals its APR conversion" \
        "apr-hash --tensors $FIX/big.apr | sed -n 's/^model  *\([0-9a-f]*\).*/\1/p'" \
        "$(apr-hash --tensors "$FIX/big.gguf" | sed -n 's/^model  *\([0-9a-f]*\).*/\1/p')"
    rm -f "$FIX/big.gguf" "$FIX/big.apr"
fi
