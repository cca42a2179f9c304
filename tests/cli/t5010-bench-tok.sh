# t5010: tests/bench/bench_tok.sh's llama.cpp comparison: the ratio it prints is our MB/s
# over llama-tokenize's (a stand-in llama-tokenize here, which takes about 0.2 s).
. tests/cli/lib.sh

if [ ! -x "$BUILD/bench/bench_tok" ]; then
    skip "bench_tok.sh" "no $BUILD/bench/bench_tok"
    exit 0
fi
cat > "$FIX/llama-tokenize" <<'SH'
#!/bin/sh
# stand-in: -f FILE; a one-byte file is the vocabulary-load run
while [ $# -gt 0 ]; do [ "$1" = -f ] && f=$2; shift; done
[ "$(wc -c < "$f")" -gt 1 ] && sleep 0.2
echo '[1, 2, 3]'
SH
chmod +x "$FIX/llama-tokenize"
APR_SHARED_FIXTURES=/nonexistent BENCH_TOK_MB=0.05 LLAMA_TOKENIZE=$FIX/llama-tokenize \
    sh tests/bench/bench_tok.sh "$BUILD" > "$FIX/bench.txt" 2>&1
# per vocabulary: ours, llama-tokenize's and the ratio, which must be ours / theirs (5%:
# the MB/s are printed with 2 decimals, about 0.25 MB/s for the stand-in)
awk '/^apr-tools tokenizer/ { ours = $3 } /^llama-tokenize/ { ll = $2 }
     /^ratio/ { n++; r = $2 + 0; want = ll > 0 ? ours / ll : -1
                if (want <= 0 || r <= 0 || r - want > 0.05 * want || want - r > 0.05 * want) bad++ }
     END { exit !(n == 2 && !bad) }' "$FIX/bench.txt"
if [ $? -eq 0 ]; then
    _rec pass "bench_tok.sh: the ratio is our MB/s over llama-tokenize's"
else
    _fail "bench_tok.sh: the ratio is our MB/s over llama-tokenize's" "$(cat "$FIX/bench.txt")" ""
fi
