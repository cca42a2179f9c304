#!/bin/sh
# tests/cuda/run.sh BUILD [FIXTURES] - the CUDA tests: kernels vs CPU twins (check_cuda),
# the forward pass and the parity gate vs the CPU forward (check_rt_cuda, when built),
# and apr-run --parity from the command line (pass, planted fault, exit codes).
# Without a device every part says "skip" and why.  Last line: "cuda: N passed, N failed, N skipped".
set -u
B=${1:-build}
FX=${2:-${APR_SHARED_FIXTURES:-../shared/fixtures}}
pass=0 fail=0 skip=0
tally() {   # tally LOGFILE: add the runner's summary line
    set -- $(sed -n 's/^cuda[-a-z]*: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1 \2 \3/p' "$1" | tail -n 1)
    if [ $# -eq 3 ]; then pass=$((pass + $1)); fail=$((fail + $2)); skip=$((skip + $3)); else fail=$((fail + 1)); fi
}
log=$(mktemp)
"$B/tests/cuda/check_cuda" "$FX" > "$log" 2>&1; cat "$log"; tally "$log"
if [ -x "$B/tests/cuda/check_rt_cuda" ]; then
    "$B/tests/cuda/check_rt_cuda" "$FX" > "$log" 2>&1; cat "$log"; tally "$log"
fi
M=$FX/gguf/tiny-llama-small-Q4_K_M.gguf
T=1,5,42,99,7,300,12,77,500,3,260,261
if [ -x "$B/apr-run" ] && [ -f "$M" ]; then
    d=$(mktemp -d)
    "$B/apr-run" --parity --tokens $T "$M" > "$d/out" 2> "$d/err"; rc=$?
    if [ $rc -eq 2 ] && grep -q 'CUDA\|cuda' "$d/err"; then
        echo "skip - apr-run --parity: $(cat "$d/err")"; skip=$((skip + 1))
    else
        if [ $rc -eq 0 ] && grep -q '^parity: PASS' "$d/out"; then
            echo "ok - apr-run --parity Q4_K_M exits 0: $(grep '^parity: PASS' "$d/out")"; pass=$((pass + 1))
        else
            echo "FAIL - apr-run --parity Q4_K_M: exit $rc"; cat "$d/out" "$d/err"; fail=$((fail + 1))
        fi
        APR_CUDA_FAULT=gemv_transposed "$B/apr-run" --parity --tokens $T --save-tensor-dir "$d/dump" "$M" \
            > "$d/out" 2> "$d/err"; rc=$?
        if [ $rc -eq 1 ] && grep -q 'first divergent stage: qkv_matmul, layer 0' "$d/out" &&
           [ -f "$d/dump/cpu/layer-0/qkv_matmul.bin" ] && [ -f "$d/dump/gpu/layer-0/qkv_matmul.bin" ]; then
            echo "ok - planted fault: exit 1, $(grep 'first divergent' "$d/out")"; pass=$((pass + 1))
        else
            echo "FAIL - planted fault: exit $rc"; tail -5 "$d/out"; cat "$d/err"; fail=$((fail + 1))
        fi
        if [ -x "$B/apr-diff" ] && [ -d "$d/dump/cpu" ]; then
            "$B/apr-diff" "$d/dump/cpu/layer-0/attn_norm.bin" "$d/dump/gpu/layer-0/attn_norm.bin" > /dev/null 2>&1; r1=$?
            "$B/apr-diff" "$d/dump/cpu/layer-0/qkv_matmul.bin" "$d/dump/gpu/layer-0/qkv_matmul.bin" > /dev/null 2>&1; r2=$?
            if [ $r2 -eq 1 ] && [ $r1 -le 1 ]; then
                echo "ok - apr-diff on the dumps: attn_norm exit $r1, qkv_matmul exit $r2 (differs)"; pass=$((pass + 1))
            else
                echo "FAIL - apr-diff on the dumps: attn_norm exit $r1, qkv_matmul exit $r2"; fail=$((fail + 1))
            fi
        fi
        # every fixture's APR and SafeTensors (or, for the HF ones, GGUF) conversion
        if [ -x "$B/apr-convert" ]; then
            for src in "$FX"/gguf/*.gguf "$FX"/hf/*/; do
                [ -e "$src" ] || continue
                n=$(basename "$src" .gguf)
                case "$src" in
                */) outs="$d/$n.apr $d/$n.gguf" ;;
                *)  outs="$d/$n.apr $d/$n-st/" ;;
                esac
                for out in $outs; do
                    if ! "$B/apr-convert" "$src" "$out" > /dev/null 2> "$d/cerr"; then
                        echo "FAIL - apr-convert $n -> $(basename "$out")"; cat "$d/cerr"; fail=$((fail + 1)); continue
                    fi
                    "$B/apr-run" --parity --tokens $T "$out" > "$d/out" 2> "$d/err"; rc=$?
                    if [ $rc -eq 0 ]; then
                        echo "ok - parity of $n as $(basename "$out"): $(grep '^parity: PASS' "$d/out")"; pass=$((pass + 1))
                    else
                        echo "FAIL - parity of $n as $(basename "$out"): exit $rc"; tail -3 "$d/out"; cat "$d/err"
                        fail=$((fail + 1))
                    fi
                    rm -rf "$out" "$d/${n}-parity"
                done
            done
        fi
        "$B/apr-run" --parity --device cuda:63 --tokens 1,2 "$M" > "$d/out" 2> "$d/err"; rc=$?
        if [ $rc -eq 2 ] && grep -q 'does not exist' "$d/err"; then
            echo "ok - --device cuda:63: exit 2: $(cat "$d/err")"; pass=$((pass + 1))
        else
            echo "FAIL - --device cuda:63: exit $rc"; cat "$d/err"; fail=$((fail + 1))
        fi
    fi
    rm -rf "$d"
else
    echo "skip - apr-run --parity: no $B/apr-run or no $M"; skip=$((skip + 1))
fi
rm -f "$log"
echo "cuda: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
