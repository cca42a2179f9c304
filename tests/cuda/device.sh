#!/bin/sh
# tests/cuda/device.sh STEP OUT [LLAMACPP_SRC] - what the GPU machine runs (from a copy of
# the tree; see tests/cuda/README in the issue notes).  Logs go to OUT.
#   llama-start  copy the llama.cpp source to /tmp/llsrc and build llama-bench (CUDA,
#                sm_90) in /tmp/llb in the background (setsid), log /tmp/llb.log
#   test         make CUDA=1 (NOBUILD=1: binaries built elsewhere and carried in build/), check-cuda (kernels, forward pass, parity gate), bench_kern
#   bench        bench_cuda (writes the three 7B-shaped GGUFs to /tmp/gg once), then
#                llama-bench -p 512 -n 128 -ngl 99 on the same files when it is built
#                (waiting up to WAIT seconds for the background build)
set -u
step=$1 out=$2 src=${3:-}
jobs=${JOBS:-16}
case $step in
llama-start)
    [ -n "$src" ] && [ -d "$src" ] || { echo "device.sh: no llama.cpp source '$src'"; exit 2; }
    rm -rf /tmp/llsrc && cp -r "$src" /tmp/llsrc || exit 2
    setsid sh -c "t0=\$(date +%s); cmake -S /tmp/llsrc -B /tmp/llb -G Ninja -DGGML_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DCMAKE_BUILD_TYPE=Release > /tmp/llb.log 2>&1 && nice ninja -C /tmp/llb -j ${LLJOBS:-12} llama-bench \
        >> /tmp/llb.log 2>&1; echo \"llama-build: exit \$? after \$((\$(date +%s) - t0)) s\" >> /tmp/llb.log" \
        < /dev/null > /dev/null 2>&1 &
    echo "llama.cpp build started in the background"
    ;;
test)
    t0=$(date +%s)
    [ "${NOBUILD:-0}" = 1 ] || make CUDA=1 WERROR=1 -j"$jobs" > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
    [ "${NOBUILD:-0}" = 1 ] || make CUDA=1 -j"$jobs" build/tests/cuda/check_cuda build/tests/cuda/check_rt_cuda \
        build/tests/cuda/bench_kern build/tests/cuda/bench_cuda >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
    echo "build: $(( $(date +%s) - t0 )) s"
    t0=$(date +%s)
    sh tests/cuda/run.sh build "${FX:-../fixtures}" > "$out/check.log" 2>&1
    echo "check-cuda: exit $? in $(( $(date +%s) - t0 )) s: $(tail -1 "$out/check.log")"
    grep -E '^(FAIL|skip)' "$out/check.log" | head -20
    build/tests/cuda/bench_kern > "$out/kern.log" 2>&1
    echo "bench_kern: exit $?"
    ;;
bench)
    mkdir -p /tmp/gg
    if [ -f /tmp/gg/7b-F16.gguf ]; then gdir=""; else gdir=/tmp/gg; fi
    build/tests/cuda/bench_cuda 32 $gdir > "$out/bench.log" 2>&1
    echo "bench_cuda: exit $?"
    cat "$out/bench.log"
    w=0
    while ! grep -q '^llama-build:' /tmp/llb.log 2>/dev/null && [ $w -lt "${WAIT:-0}" ]; do
        sleep 5; w=$((w + 5))
    done
    tail -3 /tmp/llb.log 2>/dev/null
    if [ -x /tmp/llb/bin/llama-bench ]; then
        for t in Q4_K_M Q8_0 F16; do
            /tmp/llb/bin/llama-bench -m /tmp/gg/7b-$t.gguf -p 512 -n 128 -ngl 99 -r 3 2>&1 |
                grep -E '^\|' | tee -a "$out/llama.log"
        done
    else
        echo "llama-bench not built (yet)"
    fi
    ;;
esac
