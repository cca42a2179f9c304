#!/bin/sh
# tests/fuzz/run.sh [SECONDS] - smoke-fuzz every reader.
#
# Builds each tests/fuzz/fuzz_*.c with clang -fsanitize=fuzzer,address,undefined
# together with the library sources (common, formats, dequant, runtime/tok_*), then runs each
# harness for SECONDS (default 10).  Seeds per harness NAME (fuzz_NAME.c):
#   tests/fuzz/corpus/NAME/       committed seeds, when the folder exists
#   $FUZZ_BUILD/seeds/NAME/       written by "mkfix fuzz-seeds NAME DIR" (if mkfix knows NAME)
# New inputs go to $FUZZ_BUILD/corpus/NAME/, crashes to $FUZZ_BUILD/artifacts/.
# Exits non-zero when a build fails or any harness finds a crash, leak or timeout.
#
# Environment: CLANG (clang), FUZZ_BUILD (build-fuzz), FUZZ_MAX_LEN (16384).
set -eu

secs=${1:-10}
CLANG=${CLANG:-clang}
OUT=${FUZZ_BUILD:-build-fuzz}
MAX_LEN=${FUZZ_MAX_LEN:-16384}

cd "$(dirname "$0")/../.."
mkdir -p "$OUT/obj" "$OUT/bin" "$OUT/seeds" "$OUT/corpus" "$OUT/artifacts"

CFLAGS="-std=c11 -D_GNU_SOURCE -DAPR_TOOLS_VERSION=\"fuzz\" -g -O1 -ffp-contract=off -pthread"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
LIBS="-lcrypto -lz -lm -lpcre2-8 -lutf8proc -pthread"

# Library objects, instrumented for coverage.  Rebuilt when any source or header is
# newer than the last build (a stamp file), which is simple and always right.
sources=$(ls common/*.c formats/*.c formats/*/*.c dequant/*.c runtime/tok_*.c 2>/dev/null | grep -v -e '/main\.c$' -e '_main\.c$' || true)
stamp="$OUT/obj/.stamp"
rebuild=1
if [ -f "$stamp" ]; then
    newer=$(find common formats dequant runtime -name '*.[ch]' -newer "$stamp" 2>/dev/null | head -n 1)
    [ -z "$newer" ] && rebuild=0
fi
objs=""
for src in $sources; do
    obj="$OUT/obj/$(printf '%s' "$src" | tr '/' '_' | sed 's/\.c$/.o/')"
    objs="$objs $obj"
    [ "$rebuild" = 0 ] && [ -f "$obj" ] && continue
    extra=""
    case "$src" in *_avx2.c) extra="-mavx2 -mfma -mf16c" ;; esac
    echo "CC $src"
    # shellcheck disable=SC2086
    $CLANG $CFLAGS $SAN -fsanitize=fuzzer-no-link $extra -c "$src" -o "$obj"
done
touch "$stamp"

# mkfix writes generated seeds (plain ASan build from the same objects).
# shellcheck disable=SC2086
$CLANG $CFLAGS $SAN -fsanitize=fuzzer-no-link -o "$OUT/bin/mkfix" tests/fixtures/mkfix.c $objs $LIBS

status=0
for h in tests/fuzz/fuzz_*.c; do
    [ -f "$h" ] || continue
    name=$(basename "$h" .c)
    name=${name#fuzz_}
    bin="$OUT/bin/fuzz_$name"
    echo "== fuzz_$name: build"
    # shellcheck disable=SC2086
    if ! $CLANG $CFLAGS $SAN -fsanitize=fuzzer -o "$bin" "$h" $objs $LIBS; then
        echo "fuzz_$name: build failed" >&2
        status=1
        continue
    fi
    seeds="$OUT/seeds/$name"
    rm -rf "$seeds"
    mkdir -p "$seeds" "$OUT/corpus/$name"
    "$OUT/bin/mkfix" fuzz-seeds "$name" "$seeds" 2>/dev/null || true
    dirs="$OUT/corpus/$name $seeds"
    [ -d "tests/fuzz/corpus/$name" ] && dirs="$dirs tests/fuzz/corpus/$name"
    echo "== fuzz_$name: ${secs}s"
    # shellcheck disable=SC2086
    if ! "$bin" -max_total_time="$secs" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$OUT/artifacts/${name}-" $dirs \
            >"$OUT/fuzz_$name.log" 2>&1; then
        echo "fuzz_$name: FAILED (see $OUT/fuzz_$name.log and $OUT/artifacts/)" >&2
        tail -n 40 "$OUT/fuzz_$name.log" >&2
        status=1
        continue
    fi
    grep -E '^stat::number_of_executed_units|^Done' "$OUT/fuzz_$name.log" || true
    echo "fuzz_$name: ok"
done
exit $status
