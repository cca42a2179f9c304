#!/bin/sh
# gen.sh BUILD OUTDIR [SHARED] - the golden-output cases: runs apr-inspect, apr-diff,
# apr-hash and apr-convert on every generated fixture (mkfix) and, when SHARED (the
# ../shared/fixtures folder) is given, on the third-party fixtures, and writes one text
# file per group into OUTDIR:
#   inspect-gen.txt diff-gen.txt hash-gen.txt convert-gen.txt        (generated fixtures)
#   inspect-shared.txt diff-shared.txt hash-shared.txt convert-shared.txt  (SHARED only)
# Each case is "### COMMAND", then its stdout and stderr (inline when short text, else a
# sha256 and a size), its exit status and, for apr-convert, the sha256 of every file it
# wrote.  Commands run in a scratch folder with relative names, so nothing in the output
# depends on the machine (no absolute paths, no timings).
#
# tests/cli/t0100-golden.sh compares a fresh run with tests/golden/*.txt byte for byte.
# After an intended change of behaviour, regenerate and review the diff:
#   sh tests/golden/gen.sh build tests/golden ../shared/fixtures && git diff tests/golden
set -u
B=$(cd "${1:?usage: gen.sh BUILD OUTDIR [SHARED]}" && pwd)
mkdir -p "${2:?usage: gen.sh BUILD OUTDIR [SHARED]}"
OUT=$(cd "$2" && pwd)
SH=${3:-}
[ -n "$SH" ] && SH=$(cd "$SH" && pwd)
PATH="$B:$PATH"
export PATH
unset SOURCE_DATE_EPOCH APR_SHARED_FIXTURES
LC_ALL=C
export LC_ALL
MAXTEXT=3000

W=$(mktemp -d "${TMPDIR:-/tmp}/apr-golden.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 2
mkdir .t

# emit LABEL FILE SIZE: FILE's bytes inline when short text, else their sha256 and size
emit() {
    n=$3
    [ "$n" -eq 0 ] && return 0
    if [ "$n" -le $MAXTEXT ] && ! grep -qaP '\x00' "$2"; then
        printf -- '--- %s\n' "$1"
        cat "$2"
        [ -z "$(tail -c 1 "$2")" ] || printf '\n\\ no newline at end\n'
    else
        printf -- '--- %s: %s bytes, %s lines, sha256 %s\n' "$1" "$n" "$(($(wc -l < "$2")))" \
            "$(sha256sum < "$2" | cut -c1-64)"
    fi
}

# c COMMAND...: one case, recorded in $G
c() {
    {
        printf '### %s\n' "$*"
        (eval "$*") > .t/out 2> .t/err < /dev/null
        rc=$?
        set -- $(wc -c .t/out .t/err)
        emit stdout .t/out "$1"
        emit stderr .t/err "$3"
        printf 'exit %d\n' "$rc"
    } >> "$G"
}

# files PATH...: the sha256 of each file (a folder: of each file in it, sorted)
files() {
    for p in "$@"; do
        if [ -d "$p" ]; then
            find "$p" -type f | LC_ALL=C sort | while read -r f; do
                printf 'file %s %s bytes sha256 %s\n' "$f" "$(wc -c < "$f" | tr -d ' ')" "$(sha256sum < "$f" | cut -c1-64)"
            done
        elif [ -f "$p" ]; then
            printf 'file %s %s bytes sha256 %s\n' "$p" "$(wc -c < "$p" | tr -d ' ')" "$(sha256sum < "$p" | cut -c1-64)"
        else
            printf 'file %s absent\n' "$p"
        fi
    done >> "$G"
}

# conv ARGS... IN OUTPUT: apr-convert, then the output's hashes
conv() {
    eval "last=\${$#}"
    c apr-convert "$@"
    # shellcheck disable=SC2154
    files "$last"
}

# ---------------------------------------------------------------- generated fixtures
mkfix demo demo.gguf > /dev/null
mkfix gguf-small . > /dev/null
GEN="demo.gguf small-types.gguf small-values.gguf small-notensors.gguf small-192.gguf small-v1.gguf small-v2.gguf"
# one changed low mantissa byte in the last tensor of a copy
cp demo.gguf demo-b.gguf
size=$(wc -c < demo-b.gguf)
printf '\125' | dd of=demo-b.gguf bs=1 seek=$((size - 64)) conv=notrunc 2>/dev/null
# dumps: headerless f32 [1, 2] and [1, 2.5]; APRT layer 3, 2 values; dump folders
printf '\000\000\200\077\000\000\000\100' > x.bin
printf '\000\000\200\077\000\000\040\100' > y.bin
printf 'APRT\003\000\000\000\002\000\000\000\000\000\200\077\000\000\000\100' > x.aprt
printf 'APRT\003\000\000\000\002\000\000\000\000\000\200\077\000\000\100\100' > y.aprt
for d in A B; do mkdir -p "$d/layer-0" "$d/layer-1"; done
for s in attn_norm attn_out ffn_out; do
    for l in 0 1; do cp x.bin "A/layer-$l/$s.bin"; cp x.bin "B/layer-$l/$s.bin"; done
done
cp x.bin A/lm_head.bin; cp y.bin B/lm_head.bin
cp y.bin B/layer-1/attn_out.bin; cp y.bin B/layer-1/ffn_out.bin

# convert first: its outputs are inputs of the other groups
G=$OUT/convert-gen.txt; : > "$G"
for f in $GEN; do
    s=${f%.gguf}
    conv -v "$f" "$s.apr"
    conv -v "$f" "$s.safetensors"
    conv -v "$f" "$s-st/"
    conv -v --lossless "$f" "$s-lossless.apr"
done
conv -v demo.apr demo-from-apr.gguf
conv -v demo.safetensors demo-from-st.gguf
conv -v demo-st/ demo-from-dir.gguf
conv -v demo.apr demo-from-apr.safetensors
conv -v demo.safetensors demo-from-st.apr
conv -v demo-st demo-from-dir.apr
conv -v demo-lossless.apr demo-from-lossless.gguf
conv -v small-types-lossless.apr small-types-back.gguf
conv -v --names hf demo.gguf demo-hf.apr
conv -v --names gguf demo.gguf demo-ggufnames.apr
conv -v --names gguf demo.safetensors demo-st-ggufnames.apr
conv --json demo.gguf demo-json.apr
conv --json --dry-run demo.gguf demo-dry.safetensors
conv -v --verify demo.gguf demo-verify.safetensors
conv -v --to gguf demo.apr demo-to.out
conv -v --shard-size 100000 demo.gguf demo-shards/
conv -v demo-shards/model.safetensors.index.json demo-from-shards.gguf
for t in f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k; do
    conv -v --dtype "$t" demo.gguf "demo-$t.gguf"
done
conv -v --dtype q8_0 demo.gguf demo-q8_0.apr
conv -v --lossless --dtype q8_0 demo.gguf demo-q8_0-lossless.apr
conv -v --dtype f16 demo.gguf demo-f16.safetensors
conv -v demo-q8_0.gguf demo-q8_0-from.safetensors
conv -v demo-q4_k.gguf demo-q4_k.apr
conv -v demo-q4_k.gguf demo-q4_k-lossless.apr --lossless
conv -v demo-f16.gguf demo-f16-back.apr
c apr-convert demo.gguf demo.apr
c apr-convert -f demo.gguf demo.apr
c apr-convert demo.gguf demo.txt
c apr-convert x.bin x.apr
c apr-convert --dtype q9 demo.gguf demo-q9.gguf

G=$OUT/inspect-gen.txt; : > "$G"
M="$GEN demo.apr demo.safetensors demo-st demo-st/model.safetensors demo-lossless.apr demo-shards demo-shards/model.safetensors.index.json small-types-lossless.apr demo-q4_k.apr demo-hf.apr demo-f16.gguf demo-q8_0.gguf"
for f in $M; do
    c apr-inspect "$f"
    c apr-inspect --json "$f"
    c apr-inspect --license "$f"
    c apr-inspect --stats "$f"
done
for f in demo.gguf demo.apr demo-st small-values.gguf demo-shards; do
    c apr-inspect --no-offsets "$f"
    c apr-inspect --license --json "$f"
    c apr-inspect --stats --json "$f"
done
for f in demo.gguf small-values.gguf small-notensors.gguf demo.apr demo.safetensors; do
    c apr-inspect --full "$f"
    c apr-inspect --full --json "$f"
done
for f in demo.gguf demo.apr demo.safetensors demo-q4_k.apr demo-q8_0.gguf small-types.gguf small-v1.gguf; do
    c apr-inspect --stats --values 5 "$f"
    c apr-inspect --stats --values 3 --json "$f"
done
c apr-inspect -t token_embd.weight demo.gguf
c apr-inspect -t model.embed_tokens.weight --json demo.safetensors
c apr-inspect --stats -t output.weight demo.gguf
c apr-inspect -t nope demo.gguf
c apr-inspect demo.gguf small-v1.gguf
c apr-inspect --stats --threads 1 demo.gguf
c apr-inspect x.bin
c apr-inspect missing.gguf

G=$OUT/diff-gen.txt; : > "$G"
P="demo.gguf:demo-b.gguf demo.gguf:demo.apr demo.gguf:demo.safetensors demo.gguf:demo-st demo.gguf:demo-hf.apr
demo.apr:demo-st demo.gguf:demo-f16.gguf demo.gguf:demo-q4_k.apr demo.gguf:demo-q8_0.gguf demo.gguf:demo-shards
small-v1.gguf:small-v2.gguf small-types.gguf:small-types-lossless.apr small-values.gguf:small-192.gguf
demo.gguf:small-notensors.gguf demo-f16.gguf:demo-f16-back.apr"
for p in $P; do
    a=${p%%:*} b=${p#*:}
    c apr-diff "$a" "$b"
    c apr-diff --json "$a" "$b"
    c apr-diff --values "$a" "$b"
    c apr-diff --values --json "$a" "$b"
done
for p in demo.gguf:demo-hf.apr demo.gguf:demo-st small-types.gguf:small-types-lossless.apr demo.gguf:demo-q4_k.apr; do
    a=${p%%:*} b=${p#*:}
    c apr-diff --values --transpose-aware "$a" "$b"
    c apr-diff --values --transpose-aware --json "$a" "$b"
done
c apr-diff --values --sort worst --limit 3 demo.gguf demo-q4_k.apr
c apr-diff --values --filter "'attn_(q|k)'" --transpose-aware demo.gguf demo-hf.apr
c apr-diff --values --fail-cos 0.9999 --fail-max 0.01 --fail-nmse 1e-4 demo.gguf demo-q8_0.gguf
c apr-diff --fail-max 0 demo.gguf demo-b.gguf
c apr-diff --values -t 1 demo.gguf demo-f16.gguf
c apr-diff --values --plot plot.svg demo.gguf demo-q4_k.apr
files plot.svg
c apr-diff --values --transpose-aware --plot plot2.svg demo.gguf demo-hf.apr
files plot2.svg
for p in x.bin:y.bin x.aprt:y.aprt x.bin:x.bin A:B A:A; do
    a=${p%%:*} b=${p#*:}
    c apr-diff "$a" "$b"
    c apr-diff --json "$a" "$b"
    c apr-diff --limit 2 "$a" "$b"
done
c apr-diff --plot stages.svg A B
files stages.svg
c apr-diff demo.gguf x.bin
c apr-diff demo.gguf missing.gguf

G=$OUT/hash-gen.txt; : > "$G"
H="$GEN demo.apr demo.safetensors demo-st demo-lossless.apr demo-shards demo-hf.apr demo-f16.gguf demo-q4_k.apr small-types-lossless.apr"
c apr-hash $H
c apr-hash --json $H
for f in $H; do
    c apr-hash --tensors "$f"
    c apr-hash --tensors --content --with-metadata "$f"
done
for f in demo.gguf demo-st small-types.gguf; do
    c apr-hash --tensors --json "$f"
    c apr-hash --tensors --with-metadata "$f"
done
c apr-hash --content --json demo.gguf demo.apr demo.safetensors demo-hf.apr
c apr-hash --tensors -t 1 demo.gguf
c apr-hash -o man.json demo.gguf demo.apr demo-st
files man.json
c cat man.json
c apr-hash --format text -o man.txt demo.gguf demo.apr
c cat man.txt
c apr-hash --content --with-metadata -o man-content.json demo.gguf demo-shards
c cat man-content.json
c apr-hash -c man.json
c apr-hash -c man.txt
c apr-hash -c man-content.json
c apr-hash -c man.json demo-b.gguf
c apr-hash -q -c man.json demo-b.gguf
c apr-hash -c man.json demo.apr demo.gguf
apr-hash demo.gguf demo.apr > sums.txt
c apr-hash -c sums.txt
c apr-hash --verify-source demo.gguf demo.apr
c apr-hash --verify-source demo-b.gguf demo.apr
c apr-hash missing.gguf

# ---------------------------------------------------------------- shared fixtures
[ -n "$SH" ] || exit 0
ln -s "$SH" shared
TL="F32 F16 Q8_0 Q4_0 Q4_K_M Q6_K IQ4_XS"
VOC="llama-spm gpt-2 phi-3 deepseek-coder"

G=$OUT/convert-shared.txt; : > "$G"
for t in $TL; do
    conv -v "shared/gguf/tiny-llama-small-$t.gguf" "tl-$t.apr"
    conv -v "shared/gguf/tiny-llama-small-$t.gguf" "tl-$t-st/"
done
conv -v --lossless shared/gguf/tiny-llama-small-Q4_K_M.gguf tl-Q4_K_M-lossless.apr
conv -v --lossless shared/gguf/tiny-llama-small-IQ4_XS.gguf tl-IQ4_XS-lossless.apr
conv -v tl-F16.apr tl-F16-back.gguf
conv -v tl-F32-st tl-F32-back.gguf
conv -v tl-Q4_K_M-lossless.apr tl-Q4_K_M-back.gguf
for v in $VOC; do
    conv -v "shared/gguf/vocab/ggml-vocab-$v.gguf" "voc-$v.apr"
    conv -v "shared/gguf/vocab/ggml-vocab-$v.gguf" "voc-$v-st/"
done
for m in qwen2-f32 llama-bf16; do
    conv -v "shared/hf/$m" "$m.gguf"
    conv -v "shared/hf/$m" "$m.apr"
    conv -v "shared/hf/$m/model.safetensors" "$m-file.gguf"
    conv -v "$m.gguf" "$m-back/"
    conv -v "$m.apr" "$m-from-apr.gguf"
done
conv -v --dtype q8_0 shared/hf/qwen2-f32 qwen2-q8_0.gguf
conv -v --dtype f16 shared/gguf/tiny-llama-small-F32.gguf tl-f16-ours.gguf
conv -v --dtype q4_k shared/gguf/tiny-llama-small-F32.gguf tl-q4_k-ours.gguf
conv -v --dtype q6_k shared/gguf/tiny-llama-small-F32.gguf tl-q6_k-ours.gguf

G=$OUT/inspect-shared.txt; : > "$G"
S=""
for t in $TL; do S="$S shared/gguf/tiny-llama-small-$t.gguf"; done
for v in $VOC; do S="$S shared/gguf/vocab/ggml-vocab-$v.gguf"; done
S="$S shared/hf/qwen2-f32 shared/hf/llama-bf16 shared/hf/llama-bf16/model.safetensors tl-F16.apr tl-Q4_K_M-lossless.apr qwen2-f32.apr llama-bf16.gguf voc-gpt-2.apr"
for f in $S; do
    c apr-inspect "$f"
    c apr-inspect --json "$f"
    c apr-inspect --license "$f"
    c apr-inspect --stats --values 4 --json "$f"
done
for f in shared/gguf/vocab/ggml-vocab-gpt-2.gguf shared/hf/qwen2-f32 tl-F16.apr; do
    c apr-inspect --full "$f"
    c apr-inspect --license --json "$f"
    c apr-inspect --stats "$f"
done

G=$OUT/diff-shared.txt; : > "$G"
F=shared/gguf/tiny-llama-small-F32.gguf
P=""
for t in F16 Q8_0 Q4_0 Q4_K_M Q6_K IQ4_XS; do P="$P $F:shared/gguf/tiny-llama-small-$t.gguf"; done
P="$P shared/gguf/tiny-llama-small-F16.gguf:tl-F16.apr shared/gguf/tiny-llama-small-Q4_K_M.gguf:tl-Q4_K_M-lossless.apr"
P="$P shared/hf/qwen2-f32:qwen2-f32.gguf shared/hf/llama-bf16:llama-bf16.gguf shared/hf/llama-bf16:llama-bf16.apr"
P="$P shared/hf/qwen2-f32:qwen2-q8_0.gguf shared/gguf/tiny-llama-small-Q4_K_M.gguf:tl-q4_k-ours.gguf"
P="$P shared/gguf/vocab/ggml-vocab-gpt-2.gguf:shared/gguf/vocab/ggml-vocab-phi-3.gguf"
for p in $P; do
    a=${p%%:*} b=${p#*:}
    c apr-diff "$a" "$b"
    c apr-diff --values --json "$a" "$b"
done
for p in shared/hf/qwen2-f32:qwen2-f32.gguf shared/hf/llama-bf16:llama-bf16.gguf $F:shared/gguf/tiny-llama-small-Q4_K_M.gguf; do
    a=${p%%:*} b=${p#*:}
    c apr-diff --json "$a" "$b"
    c apr-diff --values "$a" "$b"
    c apr-diff --values --transpose-aware "$a" "$b"
    c apr-diff --values --transpose-aware --json "$a" "$b"
done
R=shared/gguf/refs
for p in "$R/tiny-llama-small-F16.prompt0.logits.f32:$R/tiny-llama-small-Q4_0.prompt0.logits.f32" \
         "shared/hf/qwen2-f32/ref-hidden-1.f32:shared/hf/qwen2-f32/ref-hidden-2.f32" \
         "shared/hf/qwen2-f32/ref-logits.f32:shared/hf/llama-bf16/ref-logits.f32"; do
    a=${p%%:*} b=${p#*:}
    c apr-diff "$a" "$b"
    c apr-diff --json "$a" "$b"
done

G=$OUT/hash-shared.txt; : > "$G"
c apr-hash $S
for f in $S; do
    c apr-hash --tensors --content --with-metadata "$f"
done
c apr-hash --tensors shared/hf/llama-bf16 tl-Q4_K_M-lossless.apr
c apr-hash --tensors --with-metadata --json shared/gguf/tiny-llama-small-Q4_K_M.gguf
c apr-hash --content --json shared/hf/llama-bf16 llama-bf16.gguf llama-bf16.apr
for t in ${TL#F32 }; do
    c apr-hash -c "$R/tiny-llama-small-$t.gguf-hash.txt" "shared/gguf/tiny-llama-small-$t.gguf"
done
c apr-hash -c "$R/tiny-llama-small-F16.gguf-hash.txt" tl-F16-back.gguf
c apr-hash -c "$R/tiny-llama-small-Q8_0.gguf-hash.txt" shared/gguf/tiny-llama-small-Q6_K.gguf
c apr-hash -o shared-man.json shared/hf/qwen2-f32 shared/gguf/tiny-llama-small-Q4_K_M.gguf
c cat shared-man.json
c apr-hash -c shared-man.json
c apr-hash --verify-source shared/gguf/tiny-llama-small-F16.gguf tl-F16.apr
exit 0
