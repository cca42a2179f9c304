#!/bin/sh
# bench_tok.sh BUILD - tokenizer throughput on one thread, in MB/s, on a few MB of
# generated mixed text (bench_tok gen: deterministic, nothing downloaded) with a 150k
# byte-level BPE vocabulary and a 32k SentencePiece vocabulary (both synthetic, see
# bench_tok.c), plus llama.cpp's real llama-spm (32k SentencePiece) and gpt-2 (50k BPE)
# vocabularies when ../shared/fixtures is there.
#
# With LLAMA_TOKENIZE=/path/to/llama-tokenize, the same text and vocabularies go through
# llama.cpp in the same run (same flags: BOS as the model says, special tokens parsed):
# its time is the best of 3 whole runs minus the best of 3 runs on a one-byte text (the
# vocabulary load), and its ids are compared with ours.
#   BENCH_TOK_MB   text size (default 4)
set -eu
B=${1:-build}
MB=${BENCH_TOK_MB:-4}
D=$(mktemp -d /tmp/bench_tok.XXXXXX)
trap 'rm -rf "$D"' EXIT INT TERM

"$B/bench/bench_tok" gen "$D" "$MB"
models="$D/bpe150k.gguf $D/spm32k.gguf"
V=${APR_SHARED_FIXTURES:-../shared/fixtures}/gguf/vocab
if [ -f "$V/ggml-vocab-llama-spm.gguf" ] && [ -f "$V/ggml-vocab-gpt-2.gguf" ]; then
    models="$models $V/ggml-vocab-llama-spm.gguf $V/ggml-vocab-gpt-2.gguf"
fi
bytes=$(wc -c < "$D/text.txt")
printf x > "$D/one.txt"

best_of3() {   # best wall time in seconds of 3 runs of "$@" (stdout to $D/out)
    best=
    for _ in 1 2 3; do
        t0=$(date +%s.%N)
        "$@" > "$D/out" 2>/dev/null || return 1
        t1=$(date +%s.%N)
        best=$(echo "$t0 $t1 ${best:-1e9}" | awk '{ d = $2 - $1; print (d < $3 ? d : $3) }')
    done
    echo "$best"
}

for m in $models; do
    printf '\n-- %s\n' "$(basename "$m")"
    BENCH_TOK_IDS="$D/ours.ids" "$B/bench/bench_tok" run "$m" "$D/text.txt" 3 | tee "$D/ours.txt"
    [ -n "${LLAMA_TOKENIZE:-}" ] || continue
    set -- "$LLAMA_TOKENIZE" -m "$m" --ids --log-disable --no-escape
    if ! tl=$(best_of3 "$@" -f "$D/one.txt") || ! tf=$(best_of3 "$@" -f "$D/text.txt"); then
        echo "llama-tokenize failed on $m"
        continue
    fi
    cp "$D/out" "$D/llama.ids"
    # the number before "MB/s" ("apr-tools tokenizer  8.60 MB/s ...": not a fixed field)
    ours=$(awk '{ for (i = 2; i <= NF; i++) if ($i == "MB/s") { print $(i - 1); exit } }' "$D/ours.txt")
    echo "$bytes $tf $tl $ours" | awk '{ s = $2 - $3; if (s < 1e-6) s = 1e-6;
        mbs = $1 / 1048576 / s;
        printf "%-28s %8.2f MB/s  (%.3f s run - %.3f s load, best of 3)\n", "llama-tokenize", mbs, $2, $3;
        printf "%-28s %8.2fx llama-tokenize\n", "ratio", $4 / mbs }'
    if cmp -s "$D/ours.ids" "$D/llama.ids"; then
        echo "ids: identical ($(tr -cd ',' < "$D/ours.ids" | wc -c) + 1 tokens)"
    else
        echo "ids: DIFFER from llama-tokenize"
    fi
done
