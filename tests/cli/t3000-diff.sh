# t3000: apr-diff: exit codes like diff(1) (0 same, 1 different, 2 trouble), the gates,
# --json's shape, --plot, headerless f32 dumps and dump directories, shared fixtures.
. tests/cli/lib.sh

mkfix demo "$FIX/a.gguf"
cp "$FIX/a.gguf" "$FIX/b.gguf"
# one low mantissa byte of the last tensor (the file ends on a 32-byte boundary, tensor
# data starts on one): a tiny change of one value
size=$(wc -c < "$FIX/b.gguf")
printf '\125' | dd of="$FIX/b.gguf" bs=1 seek=$((size - 64)) conv=notrunc 2>/dev/null

expect_exit "same file: structural 0" 0 "apr-diff $FIX/a.gguf $FIX/a.gguf"
expect_exit "same file: values 0" 0 "apr-diff --values $FIX/a.gguf $FIX/a.gguf"
expect_exit "changed value: structural 1" 1 "apr-diff $FIX/a.gguf $FIX/b.gguf"
expect_match "structural names the tensor" "^~ tensor +[a-z0-9_.]+: data -> data differs" \
    "apr-diff $FIX/a.gguf $FIX/b.gguf"
expect_exit "changed value: values 1" 1 "apr-diff --values $FIX/a.gguf $FIX/b.gguf"
expect_match "one tensor not identical" "tensors compared: [0-9]+ Identical, 1 NearlyIdentical" \
    "apr-diff --values $FIX/a.gguf $FIX/b.gguf"
expect_exit "--fail-max passes" 0 "apr-diff --fail-max 0.001 $FIX/a.gguf $FIX/b.gguf"
expect_exit "--fail-max 0 fails" 1 "apr-diff --fail-max 0 $FIX/a.gguf $FIX/b.gguf"
expect_exit "--fail-cos passes" 0 "apr-diff --values --fail-cos 0.999 $FIX/a.gguf $FIX/b.gguf"
expect_exit "--fail-nmse passes" 0 "apr-diff --values --fail-nmse 1e-6 $FIX/a.gguf $FIX/b.gguf"
expect_exit "--fail-nmse 0 fails" 1 "apr-diff --values --fail-nmse 0 $FIX/a.gguf $FIX/b.gguf"
expect_exit "--filter leaves it out" 0 "apr-diff --values --filter 'attn_norm' $FIX/a.gguf $FIX/b.gguf"
expect_exit "-t 1" 1 "apr-diff --values -t 1 $FIX/a.gguf $FIX/b.gguf"
testing "-t does not change the output" \
    "apr-diff --values --json -t 1 $FIX/a.gguf $FIX/b.gguf | cksum" \
    "$(apr-diff --values --json --threads 2 "$FIX/a.gguf" "$FIX/b.gguf" | cksum)"
testing "-j is --json" "apr-diff --values -j $FIX/a.gguf $FIX/b.gguf | cksum" \
    "$(apr-diff --values --json "$FIX/a.gguf" "$FIX/b.gguf" | cksum)"
expect_match "--sort worst puts it first" "^NearlyIdentical" \
    "apr-diff --values --sort worst --limit 1 $FIX/a.gguf $FIX/b.gguf | sed -n 4p"
expect_match "--limit says what it left out" "^\\.\\.\\. [0-9]+ more not shown \\(--limit 2\\)" \
    "apr-diff --values --limit 2 $FIX/a.gguf $FIX/b.gguf"

# --json: aprender's field names, stable order
expect_match "--json value diff" '"tensors_compared": [0-9]+,' "apr-diff --values --json $FIX/a.gguf $FIX/b.gguf"
expect_match "--json results" '"cosine_similarity": ' "apr-diff --values --json $FIX/a.gguf $FIX/b.gguf"
expect_match "--json status" '"status": "NearlyIdentical"' "apr-diff --values --json $FIX/a.gguf $FIX/b.gguf"
expect_match "--json structural" '"difference_count": 1,' "apr-diff --json $FIX/a.gguf $FIX/b.gguf"
expect_match "--json structural category" '"category": "tensor"' "apr-diff --json $FIX/a.gguf $FIX/b.gguf"
expect_exit "--json parses as one object" 0 \
    "apr-diff --values --json $FIX/a.gguf $FIX/b.gguf | head -1 | grep -qx '{'"

# --plot
expect_exit "--plot exit status" 1 "apr-diff --plot $FIX/d.svg $FIX/a.gguf $FIX/b.gguf"
expect_exit "--plot writes an SVG" 0 "grep -q '</svg>' $FIX/d.svg && head -2 $FIX/d.svg | grep -q '<svg'"

# trouble
expect_exit "missing file is trouble" 2 "apr-diff $FIX/a.gguf $FIX/nonexistent"
expect_match "missing file named" "^apr-diff: cannot open '.*nonexistent'" "apr-diff $FIX/a.gguf $FIX/nonexistent"
expect_exit "one operand" 2 "apr-diff $FIX/a.gguf"
expect_exit "bad --sort" 2 "apr-diff --values --sort best $FIX/a.gguf $FIX/b.gguf"
expect_exit "bad --fail-cos" 2 "apr-diff --fail-cos 2 $FIX/a.gguf $FIX/b.gguf"
expect_exit "bad regex" 2 "apr-diff --filter '(' $FIX/a.gguf $FIX/b.gguf"
expect_exit "stdout full is trouble" 2 "apr-diff --values $FIX/a.gguf $FIX/b.gguf > /dev/full"

# headerless f32 dumps: [1, 2] vs [1, 2.5]
printf '\000\000\200\077\000\000\000\100' > "$FIX/x.bin"
printf '\000\000\200\077\000\000\040\100' > "$FIX/y.bin"
printf '\000\000\200' > "$FIX/odd.bin"
expect_exit "same dump" 0 "apr-diff $FIX/x.bin $FIX/x.bin"
expect_exit "different dump" 1 "apr-diff $FIX/x.bin $FIX/y.bin"
expect_match "dump max and index" "max\\|a-b\\| 0\\.5 at \\[1\\]" "apr-diff $FIX/x.bin $FIX/y.bin"
expect_match "dump --json schema" '"schema": "apr-stage-diff-v1"' "apr-diff --json $FIX/x.bin $FIX/y.bin"
expect_exit "dump gate" 0 "apr-diff --fail-max 0.5 $FIX/x.bin $FIX/y.bin"
expect_exit "odd dump is trouble" 2 "apr-diff $FIX/x.bin $FIX/odd.bin"
expect_exit "model vs dump is trouble" 2 "apr-diff $FIX/a.gguf $FIX/x.bin"

# dump directories: divergence planted at layer-1/attn_out
for d in A B; do mkdir -p "$FIX/$d/layer-0" "$FIX/$d/layer-1"; done
for s in attn_norm attn_out ffn_out; do
    for l in 0 1; do cp "$FIX/x.bin" "$FIX/A/layer-$l/$s.bin"; cp "$FIX/x.bin" "$FIX/B/layer-$l/$s.bin"; done
done
cp "$FIX/x.bin" "$FIX/A/lm_head.bin"
cp "$FIX/y.bin" "$FIX/B/lm_head.bin"
cp "$FIX/y.bin" "$FIX/B/layer-1/attn_out.bin"
cp "$FIX/y.bin" "$FIX/B/layer-1/ffn_out.bin"
expect_exit "same directories" 0 "apr-diff $FIX/A $FIX/A"
expect_exit "different directories" 1 "apr-diff $FIX/A $FIX/B"
expect_match "first divergent stage" "^first divergent stage: layer-1/attn_out\\.bin" "apr-diff $FIX/A $FIX/B"
expect_match "directory --json" '"first_divergent": "layer-1/attn_out.bin"' "apr-diff --json $FIX/A $FIX/B"
expect_exit "directory vs model is trouble" 2 "apr-diff $FIX/A $FIX/a.gguf"

# the shared third-party fixtures: llama-quantize's Q8_0 against its F16
if need_shared "apr-diff shared fixtures"; then
    G=$SHARED/gguf
    expect_exit "F16 vs Q8_0: cosine >= 0.9999 everywhere" 0 \
        "apr-diff --values --fail-cos 0.9999 $G/tiny-llama-small-F16.gguf $G/tiny-llama-small-Q8_0.gguf"
    expect_exit "F16 vs Q4_0 fails a tight gate" 1 \
        "apr-diff --values --fail-cos 0.9999 $G/tiny-llama-small-F16.gguf $G/tiny-llama-small-Q4_0.gguf"
    expect_exit "logits as dumps" 0 \
        "apr-diff --fail-cos 0.99 $G/refs/tiny-llama-small-F16.prompt0.logits.f32 $G/refs/tiny-llama-small-Q8_0.prompt0.logits.f32"
fi

# Stage-dump directories: an unreadable dump is a row (status error, the reason) and the
# rest is still compared; the exit-1 verdict says why; a NaN facing a finite value is
# named, max|a-b| is not 0 there; two empty dumps print no "at [-1]".
one='\000\000\200\077' two='\000\000\000\100' nan='\000\000\300\177'
hdr() { printf 'APRT'; printf "$1"; printf "$2"; }   # layer, count as octal escapes
W='\377\377\377\377' L0='\000\000\000\000' L7='\007\000\000\000' C2='\002\000\000\000' C0='\000\000\000\000'
mkdir -p "$FIX/sa/layer-0" "$FIX/sb/layer-0"
{ hdr "$W" "$C2"; printf "$one$two"; } > "$FIX/sa/embedding.bin"
{ hdr "$W" "$C2"; printf "$one$two"; } > "$FIX/sb/embedding.bin"
{ hdr "$L0" "$C2"; printf "$one$two"; } > "$FIX/sa/layer-0/attn_norm.bin"
{ hdr "$L0" "$C2"; printf "$one\000\000"; } > "$FIX/sb/layer-0/attn_norm.bin"
{ hdr "$L0" "$C2"; printf "$one$two"; } > "$FIX/sa/layer-0/ffn_up.bin"
{ hdr "$L7" "$C2"; printf "$one$two"; } > "$FIX/sb/layer-0/ffn_up.bin"
{ hdr "$L0" "$C2"; printf "$nan$two"; } > "$FIX/sa/layer-0/ffn_out.bin"
{ hdr "$L0" "$C2"; printf "$one$two"; } > "$FIX/sb/layer-0/ffn_out.bin"
printf 'abcdef' > "$FIX/sa/layer-0/attn_out.bin"
printf 'abcdef' > "$FIX/sb/layer-0/attn_out.bin"
hdr "$W" "$C0" > "$FIX/sa/final_norm.bin"
hdr "$W" "$C0" > "$FIX/sb/final_norm.bin"
expect_exit "dump dir: a truncated dump does not abort it" 1 "apr-diff $FIX/sa $FIX/sb"
expect_match "dump dir: the truncated dump is an error row" '^error .* layer-0/attn_norm\.bin  \(.*attn_norm\.bin: APRT value count 2 needs 8 bytes' "apr-diff $FIX/sa $FIX/sb"
expect_match "dump dir: the other stages still compared" '^Identical .* embedding\.bin$' "apr-diff $FIX/sa $FIX/sb"
expect_match "dump dir: odd-size raw file refused" "^error .* layer-0/attn_out\\.bin  \\(.*6 bytes is not a whole number of f32 values" "apr-diff $FIX/sa $FIX/sb"
expect_match "dump dir: layers differ named" 'layer-0/ffn_up\.bin  \(layers differ: 0 vs 7\)' "apr-diff $FIX/sa $FIX/sb"
expect_match "dump dir: NaN named, max not 0" '^Critical +1 +nan .* layer-0/ffn_out\.bin  \(1 NaN/Inf mismatches\)' "apr-diff $FIX/sa $FIX/sb"
expect_match "dump dir: says why it differs" '^different: 2 stages differ, 0 only on one side, 2 unreadable$' "apr-diff $FIX/sa $FIX/sb"
expect_match "dump dir: JSON error row" '"status": "error"' "apr-diff --json $FIX/sa $FIX/sb"
testing "two empty dumps: no at [-1]" "apr-diff $FIX/sa/final_norm.bin $FIX/sb/final_norm.bin | grep -c 'at \\[-1\\]'" "0"
rm -f "$FIX"/sa/layer-0/attn_norm.bin "$FIX"/sb/layer-0/attn_norm.bin "$FIX"/s[ab]/layer-0/attn_out.bin
expect_match "dump dir: NaN as the first divergence" '^first divergent stage: layer-0/ffn_out\.bin \(1 NaN/Inf where the other side is finite\)$' "apr-diff $FIX/sa $FIX/sb"
