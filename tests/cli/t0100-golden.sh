# t0100: golden outputs: apr-inspect, apr-diff, apr-hash and apr-convert on every generated
# fixture (and the shared ones when present) print, exit and write byte for byte what
# tests/golden/*.txt recorded (see tests/golden/gen.sh; regenerate after an intended change).
. tests/cli/lib.sh

sh tests/golden/gen.sh "$BUILD" "$FIX/out" $SHARED > "$FIX/gen.log" 2>&1 ||
    _fail "golden: gen.sh ran" "$(tail -n 20 "$FIX/gen.log")"
for g in inspect diff hash convert; do
    for k in gen shared; do
        n="golden: $g on $k fixtures"
        if [ "$k" = shared ] && [ -z "$SHARED" ]; then skip "$n" "no ../shared/fixtures"; continue; fi
        if cmp -s "tests/golden/$g-$k.txt" "$FIX/out/$g-$k.txt"; then _rec pass "$n"
        else _fail "$n" "$(diff -u "tests/golden/$g-$k.txt" "$FIX/out/$g-$k.txt" | head -n 80)"
        fi
    done
done
