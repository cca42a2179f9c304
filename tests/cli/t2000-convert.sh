# t2000: apr-convert: exit codes, --dry-run writes nothing, refusing to overwrite,
# --verify, round trips, determinism, hostile input, kill -9 and SIGINT mid-write.
. tests/cli/lib.sh


if ! mkfix demo "$FIX/demo.gguf" 2>/dev/null; then
    skip "apr-convert" "no mkfix in $BUILD"
    exit 0
fi
D=$FIX/demo.gguf

expect_exit "--help" 0 "apr-convert --help"
expect_exit "no arguments" 2 "apr-convert"
expect_exit "one argument" 2 "apr-convert $D"
expect_exit "unknown output extension" 2 "apr-convert $D $FIX/x.bin"
expect_exit "bad --dtype" 2 "apr-convert --dtype q9 $D $FIX/x.apr"
expect_exit "bad --to" 2 "apr-convert --to onnx $D $FIX/x.apr"
expect_exit "q8_0 into APR needs --lossless" 2 "apr-convert --dtype q8_0 $D $FIX/x.apr"
expect_exit "missing input" 1 "apr-convert $FIX/nope.gguf $FIX/x.apr"
testing "failures write nothing" "ls $FIX" "demo.gguf"

expect_exit "--dry-run" 0 "apr-convert --dry-run $D $FIX/dry.apr"
testing "--dry-run writes nothing" "ls $FIX; ls -A $FIX | grep -c apr-convert" "demo.gguf
0"
expect_match "--dry-run lists tensors" 'blk\.0\.attn_q\.weight +F32 +-> F32' "apr-convert --dry-run $D $FIX/dry.apr"
expect_match "--dry-run --json" '"action": "copy"' "apr-convert --dry-run --json $D $FIX/dry.apr"
expect_match "--dry-run shows the permutation" 'model\.layers\.0\.self_attn\.q_proj\.weight.*permuted' "apr-convert --dry-run $D $FIX/hf/"
expect_match "--dry-run names a renamed tensor's source" 'model\.layers\.0\.self_attn\.q_proj\.weight .*permuted from blk\.0\.attn_q\.weight$' "apr-convert --dry-run $D $FIX/hf/"
expect_match "--dry-run: a plain rename too" 'model\.embed_tokens\.weight .*F32 +\[[0-9, ]+\] +from token_embd\.weight$' "apr-convert --dry-run $D $FIX/hf/"

expect_exit "GGUF to APR with --verify" 0 "apr-convert --verify $D $FIX/demo.apr"
testing "quiet on success" "apr-convert -f $D $FIX/demo.apr 2>&1 | wc -c" "0"
expect_match "-v report names both formats" '\(GGUF\) -> .*\(APR\)' "apr-convert -v -f $D $FIX/demo.apr"
expect_exit "refuses to overwrite" 1 "apr-convert $D $FIX/demo.apr"
expect_match "says why" 'exists \(use -f' "apr-convert $D $FIX/demo.apr"
expect_exit "-f replaces" 0 "apr-convert -q -f $D $FIX/demo.apr"
expect_exit "APR to GGUF" 0 "apr-convert -q --verify $FIX/demo.apr $FIX/back.gguf"
expect_file_same "GGUF -> APR -> GGUF is byte-identical" "$D" "$FIX/back.gguf"
# A corrupt APR (one data byte flipped) or a cut-off footer is refused, naming the file
# and what failed; --salvage converts it anyway with a warning.
cp "$FIX/demo.apr" "$FIX/bad.apr"
printf '\377' | dd of="$FIX/bad.apr" bs=1 seek=$(($(wc -c < "$FIX/demo.apr") - 100)) conv=notrunc 2>/dev/null
head -c $(($(wc -c < "$FIX/demo.apr") - 2)) "$FIX/demo.apr" > "$FIX/cut.apr"
expect_exit "corrupt APR: convert --verify fails" 1 "apr-convert --verify $FIX/bad.apr $FIX/bad.gguf"
expect_match "corrupt APR: says what failed" "bad\.apr: corrupt APR file .*: footer checksum mismatch.*--salvage" "apr-convert $FIX/bad.apr $FIX/bad.gguf"
expect_exit "truncated APR: convert fails" 1 "apr-convert $FIX/cut.apr $FIX/cut.gguf"
expect_match "truncated APR: says truncated" "cut\.apr: truncated APR file" "apr-convert $FIX/cut.apr $FIX/cut.gguf"
testing "corrupt APR: nothing written" "ls $FIX/bad.gguf $FIX/cut.gguf 2>/dev/null | wc -l" "0"
expect_match "--salvage: a warning" "warning: .*bad\.apr: corrupt APR file.*--salvage: converting anyway" "apr-convert --salvage $FIX/bad.apr $FIX/bad.gguf"
expect_exit "--salvage: converted" 0 "test -s $FIX/bad.gguf"
# apr-hash and apr-diff read whole files too: the same corrupt APR fails (exit 1).
expect_exit "corrupt APR: apr-hash --tensors fails" 1 "apr-hash --tensors $FIX/bad.apr"
expect_match "corrupt APR: apr-hash says what failed" "bad\.apr: corrupt APR file .*footer checksum mismatch" "apr-hash --tensors $FIX/bad.apr"
expect_exit "truncated APR: apr-hash fails" 1 "apr-hash --tensors $FIX/cut.apr"
expect_exit "corrupt APR: apr-hash --tensors -o fails" 1 "apr-hash --tensors -o $FIX/bad.json $FIX/bad.apr"
expect_exit "corrupt APR: apr-diff exits 1" 1 "apr-diff $FIX/demo.apr $FIX/bad.apr"
expect_match "corrupt APR: apr-diff says what failed" "bad\.apr: corrupt APR file .*footer checksum mismatch" "apr-diff $FIX/demo.apr $FIX/bad.apr"
expect_exit "truncated APR: apr-diff exits 1" 1 "apr-diff --values $FIX/demo.apr $FIX/cut.apr"
expect_exit "corrupt APR: --verify-source fails" 1 "apr-hash --verify-source $D $FIX/bad.apr"
apr-hash -o "$FIX/good.json" "$FIX/demo.apr" 2>/dev/null
cp "$FIX/bad.apr" "$FIX/demo.apr.bak" && cp "$FIX/demo.apr" "$FIX/demo.apr.good" && cp "$FIX/bad.apr" "$FIX/demo.apr"
expect_match "corrupt APR: apr-hash -c names it" "demo\.apr: FAILED" "apr-hash -c $FIX/good.json"
mv "$FIX/demo.apr.good" "$FIX/demo.apr"
rm -f "$FIX/bad.apr" "$FIX/cut.apr" "$FIX/bad.gguf" "$FIX/demo.apr.bak" "$FIX/good.json" "$FIX/bad.json"
expect_exit "second run" 0 "apr-convert -q $D $FIX/demo2.apr"
expect_file_same "deterministic" "$FIX/demo.apr" "$FIX/demo2.apr"
# APR provenance: the model's own name, no invented version, and --license shows the
# source's provenance keys kept in apr_tools.kv.
expect_match "APR keeps general.name" '^  name +"apr-tools demo"' "apr-inspect --license $FIX/demo.apr"
expect_match "APR invents no version" '^  version +\(missing\)' "apr-inspect --license $FIX/demo.apr"
expect_match "--license shows the source's provenance" '^  organization +"apr-tools"' "apr-inspect --license $FIX/demo.apr"
expect_match "--license --json too" '"source_provenance": \{.*"organization": "apr-tools"' "apr-inspect --license --json $FIX/demo.apr | tr -d '\n'"
# Widening notes: one summary line after writing (count, bytes before and after), the
# tensors under -v, nothing on stderr for a dry run (its plan lists them).
expect_exit "a Q8_0 GGUF" 0 "apr-convert -q --dtype q8_0 $D $FIX/q8.gguf"
testing "widening: one summary line" "apr-convert $FIX/q8.gguf $FIX/q8.apr 2>&1 >/dev/null | grep -c ." "1"
expect_match "widening: count and bytes" '^apr-convert: [0-9]+ tensors widened for APR \([0-9]+ -> [0-9]+ bytes\); -v lists them$' "apr-convert -f $FIX/q8.gguf $FIX/q8.apr"
expect_match "widening: -v lists each" "'blk\.0\.attn_q\.weight': Q8_0 -> F32 \(widened" "apr-convert -v -f $FIX/q8.gguf $FIX/q8.apr"
testing "widening: none on stderr for a dry run" "apr-convert --dry-run $FIX/q8.gguf $FIX/q8d.apr 2>&1 >/dev/null | wc -l" "0"
rm -f "$FIX/q8.gguf" "$FIX/q8.apr"
expect_match "source_sha256 recorded" "\"$(sha256sum "$D" | cut -c1-64)\"" "apr-inspect --full $FIX/demo.apr"
expect_exit "SafeTensors directory" 0 "apr-convert -q --verify $D $FIX/hf/"
# GGUF -> HF for an architecture without a config mapping: no (wrong) config.json, and
# the note says why.
mkfix gguf-small "$FIX/gs" >/dev/null 2>&1
sed 's/llama/bloom/g' "$FIX/gs/small-192.gguf" > "$FIX/bloom.gguf"
expect_match "no config mapping: said" "no config\.json written: no Hugging Face config mapping for architecture 'bloom'" "apr-convert $FIX/bloom.gguf $FIX/bloom-hf/"
testing "no config mapping: no config.json" "ls $FIX/bloom-hf" "model.safetensors"
rm -rf "$FIX/gs" "$FIX/bloom.gguf" "$FIX/bloom-hf"
# Split GGUF: --split-max-size writes a llama.cpp split set; every tool reads it from its
# first part as one model, with the bytes of every tensor; back to one GGUF it is
# byte-identical.  With LLAMA_GGUF_SPLIT (a llama-gguf-split binary), llama.cpp's own
# --merge of our set gives a GGUF holding the same tensors.
SP=$FIX/sp
mkdir -p "$SP"
expect_exit "--split-max-size writes a set" 0 "apr-convert -q --verify --split-max-size 100000 $D $SP/sp.gguf"
testing "split set: parts named as llama-gguf-split, nothing else" "ls -A $SP" "sp-00001-of-00005.gguf
sp-00002-of-00005.gguf
sp-00003-of-00005.gguf
sp-00004-of-00005.gguf
sp-00005-of-00005.gguf"
expect_match "split set: split keys in a later part" '^  split\.no +UINT16 +1$' "apr-inspect $SP/sp-00002-of-00005.gguf"
expect_match "split set: split.tensors.count in the last part" '^  split\.tensors\.count +INT32 +21$' "apr-inspect $SP/sp-00005-of-00005.gguf"
expect_match "split set: apr-inspect reads one model" '^tensors: +21$' "apr-inspect $SP/sp-00001-of-00005.gguf"
expect_match "split set: apr-diff pairs every tensor" '^0 differences' "apr-diff $D $SP/sp-00001-of-00005.gguf"
testing "split set: apr-hash, every tensor's bytes equal" "apr-hash --tensors $SP/sp-00001-of-00005.gguf | grep ^tensor" "$(apr-hash --tensors "$D" | grep ^tensor)"
testing "split set: apr-run gives the same tokens" "apr-run --tokens 1,5,42 -n 4 $SP/sp-00001-of-00005.gguf" "$(apr-run --tokens 1,5,42 -n 4 "$D")"
expect_exit "split set: back to one GGUF" 0 "apr-convert -q --verify $SP/sp-00001-of-00005.gguf $SP/back.gguf"
expect_file_same "split set -> one GGUF is byte-identical" "$D" "$SP/back.gguf"
expect_exit "split set: refuses to replace a part" 1 "apr-convert --split-max-size 100000 $D $SP/sp.gguf"
expect_match "split set: names the part" 'sp-00001-of-00005\.gguf: exists \(use -f' "apr-convert --split-max-size 100000 $D $SP/sp.gguf"
expect_exit "split set: -f replaces" 0 "apr-convert -q -f --split-max-size 100000 $D $SP/sp-00001-of-00005.gguf"
expect_exit "--split-max-size 1M: one part" 0 "apr-convert -q --split-max-size 1M $D $SP/one.gguf"
testing "--split-max-size 1M: -00001-of-00001" "ls $SP | grep '^one'" "one-00001-of-00001.gguf"
expect_exit "--split-max-size is for GGUF" 2 "apr-convert --split-max-size 1M $D $SP/x.apr"
expect_exit "--split-max-size needs a size" 2 "apr-convert --split-max-size 1K $D $SP/x.gguf"
expect_exit "--split-max-size 0 is refused" 2 "apr-convert --split-max-size 0 $D $SP/x.gguf"
testing "no staging directory or stray file left" "ls -A $SP | grep -c -v '^sp-0000[1-5]-of-00005\.gguf$\|^back\.gguf$\|^one-00001-of-00001\.gguf$'" "0"
if [ -n "${LLAMA_GGUF_SPLIT:-}" ] && [ -x "$LLAMA_GGUF_SPLIT" ]; then
    expect_exit "llama-gguf-split --merge reads our set" 0 \
        "$LLAMA_GGUF_SPLIT --merge $SP/sp-00001-of-00005.gguf $SP/merged.gguf"
    testing "llama.cpp's merge holds every tensor's bytes" "apr-hash --tensors $SP/merged.gguf | grep ^tensor" "$(apr-hash --tensors "$D" | grep ^tensor)"
    expect_exit "llama-gguf-split --split-max-tensors 5 set" 0 \
        "$LLAMA_GGUF_SPLIT --split-max-tensors 5 $D $SP/theirs >/dev/null"
    testing "llama.cpp's split set reads as the same model" "apr-hash --tensors $SP/theirs-00001-of-*.gguf | grep ^tensor" "$(apr-hash --tensors "$D" | grep ^tensor)"
else
    skip "llama-gguf-split interop" "LLAMA_GGUF_SPLIT not set"
fi
rm -rf "$SP"
# A single .safetensors file keeps every GGUF key in __metadata__["apr_tools.kv"].
expect_exit "GGUF to one .safetensors file" 0 "apr-convert -q $D $FIX/one.safetensors"
expect_match "__metadata__ holds the keys" 'safetensors\.metadata\.apr_tools\.kv +STRING +"\[\{"k":"general\.architecture"' "apr-inspect $FIX/one.safetensors"
expect_exit "one .safetensors back to GGUF" 0 "apr-convert -q $FIX/one.safetensors $FIX/one.gguf"
expect_file_same "GGUF -> .safetensors -> GGUF is byte-identical" "$D" "$FIX/one.gguf"
expect_match "GGUF keeps config.json whole" '^  apr_tools\.hf\.config +STRING +"\{' "apr-convert -q $FIX/hf/ $FIX/hfnote.gguf && apr-inspect $FIX/hfnote.gguf"
expect_exit "refuses a directory holding a model" 1 "apr-convert $D $FIX/hf/"
expect_exit "SafeTensors back to GGUF" 0 "apr-convert -q --verify $FIX/hf $FIX/hf.gguf"
testing "GGUF -> HF -> GGUF keeps every tensor" "apr-hash --tensors $FIX/hf.gguf | grep ^tensor" "$(apr-hash --tensors "$D" | grep ^tensor)"
expect_exit "--dtype q4_k --verify" 0 "apr-convert -q --verify --dtype q4_k $D $FIX/q4k.gguf"
expect_exit "--dtype q8_0 --lossless" 0 "apr-convert -q --verify --lossless --dtype q8_0 $D $FIX/q8.apr"
expect_match "--json report" '"verified": true' "apr-convert --json --verify $FIX/q8.apr $FIX/q8.gguf"
testing "no staging directory left" "ls -A $FIX | grep -c apr-convert.tmp" "0"

# hostile input: truncated file
head -c 3000 "$D" > "$FIX/trunc.gguf"
expect_exit "truncated source" 1 "apr-convert $FIX/trunc.gguf $FIX/trunc.apr"
testing "truncated source leaves nothing" "ls $FIX/trunc.apr 2>/dev/null; ls -A $FIX | grep -c apr-convert.tmp" "0"

# kill -9 and SIGINT mid-write: a big model (about 300 MiB) converted with a dtype change
if [ -x "$BUILD/bench/mkbig" ] || command -v "$BUILD/bench/mkbig" >/dev/null 2>&1; then
    K=$FIX/k
    mkdir -p "$K"
    "$BUILD/bench/mkbig" "$FIX/big.gguf" 300 24 > /dev/null
    apr-convert --dtype q4_k "$FIX/big.gguf" "$K/big.apr" 2>/dev/null &
    pid=$!
    sleep 1
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    testing "kill -9: no output" "test -e $K/big.apr && echo yes || echo no" "no"
    testing "kill -9: at most a recognisable staging directory" \
        "ls -A $K | grep -v -c '^\\.apr-convert\\.tmp\\.'" "0"
    rm -rf "$K"/.apr-convert.tmp.*
    apr-convert --dtype q4_k "$FIX/big.gguf" "$K/big.apr" 2>/dev/null &
    pid=$!
    sleep 1
    kill -INT $pid 2>/dev/null
    wait $pid
    rc=$?
    testing "SIGINT: exit 130 (128 + SIGINT)" "echo $rc" "130"
    testing "SIGINT: nothing left" "ls -A $K | wc -l" "0"
    rm -f "$FIX/big.gguf"
else
    skip "kill -9 mid-write" "no $BUILD/bench/mkbig"
fi

# shared fixtures: every GGUF through APR and back
if need_shared "fixture round trips"; then
    for q in Q4_K_M Q6_K IQ4_XS Q8_0 Q4_0 F16; do
        S=$SHARED/gguf/tiny-llama-small-$q.gguf
        apr-convert -q --lossless "$S" "$FIX/$q.apr" && apr-convert -q "$FIX/$q.apr" "$FIX/$q.gguf"
        expect_file_same "$q lossless round trip" "$S" "$FIX/$q.gguf"
    done
    expect_match "Q8_0 widened by default, and said so" "widened: APR has no Q8_0 code" \
        "apr-convert --dry-run $SHARED/gguf/tiny-llama-small-Q8_0.gguf $FIX/w.apr"
    expect_exit "HF directory to APR" 0 "apr-convert -q --verify $SHARED/hf/llama-bf16 $FIX/l.apr"
    expect_exit "APR to HF" 0 "apr-convert -q --verify $FIX/l.apr $FIX/l/"
    expect_file_same "HF -> APR -> HF weights" "$SHARED/hf/llama-bf16/model.safetensors" "$FIX/l/model.safetensors"
    expect_file_same "HF -> APR -> HF config" "$SHARED/hf/llama-bf16/config.json" "$FIX/l/config.json"
    expect_file_same "HF -> APR -> HF generation_config" "$SHARED/hf/llama-bf16/generation_config.json" "$FIX/l/generation_config.json"
    # HF -> GGUF -> HF: config.json (rope_parameters, layer_types, sliding_window, null
    # token ids...) and generation_config.json come back byte for byte, kept whole in
    # apr_tools.hf.config / apr_tools.hf.generation_config; HF -> GGUF is the same file
    # as HF -> APR -> GGUF.
    for h in llama-bf16 qwen2-f32; do
        expect_exit "$h: HF to GGUF" 0 "apr-convert -q --verify $SHARED/hf/$h $FIX/$h.gguf"
        expect_exit "$h: GGUF to HF" 0 "apr-convert -q --verify $FIX/$h.gguf $FIX/$h-back/"
        expect_file_same "$h: HF -> GGUF -> HF config.json" "$SHARED/hf/$h/config.json" "$FIX/$h-back/config.json"
        expect_file_same "$h: HF -> GGUF -> HF generation_config.json" "$SHARED/hf/$h/generation_config.json" "$FIX/$h-back/generation_config.json"
        apr-convert -q "$SHARED/hf/$h" "$FIX/$h.apr" && apr-convert -q "$FIX/$h.apr" "$FIX/$h-apr.gguf"
        expect_file_same "$h: HF -> GGUF == HF -> APR -> GGUF" "$FIX/$h.gguf" "$FIX/$h-apr.gguf"
        expect_exit "$h: GGUF -> APR -> HF" 0 "apr-convert -q $FIX/$h-apr.gguf $FIX/$h-2.apr && apr-convert -q $FIX/$h-2.apr $FIX/$h-back2/"
        expect_file_same "$h: HF -> GGUF -> APR -> HF config.json" "$SHARED/hf/$h/config.json" "$FIX/$h-back2/config.json"
        expect_file_same "$h: HF -> GGUF -> APR -> HF generation_config.json" "$SHARED/hf/$h/generation_config.json" "$FIX/$h-back2/generation_config.json"
    done
    # A GGUF whose hyperparameters were changed after conversion: config.json is
    # regenerated from them, and that is said.
    cp "$FIX/qwen2-f32.gguf" "$FIX/ed.gguf"
    off=$(grep -obUa 'qwen2\.context_length' "$FIX/ed.gguf" | head -1 | cut -d: -f1)
    printf '\001\002\000\000' | dd of="$FIX/ed.gguf" bs=1 seek=$((off + 24)) conv=notrunc 2>/dev/null
    expect_match "edited GGUF: config.json regenerated, said" \
        "config\.json regenerated from the GGUF's hyperparameters: qwen2\.context_length is 513, the kept config\.json's max_position_embeddings 512" \
        "apr-convert $FIX/ed.gguf $FIX/ed/"
    expect_match "edited GGUF: the new value is written" '"max_position_embeddings": 513' "cat $FIX/ed/config.json"
fi

# tokenizer.json: GGUF -> SafeTensors writes one; SafeTensors -> GGUF maps it to
# tokenizer.ggml.* and keeps the text, so the next SafeTensors copy is byte-identical.
T=$FIX/tok
mkdir -p "$T"
expect_exit "GGUF to SafeTensors writes tokenizer.json" 0 \
    "apr-convert -q $D $T/st/ && test -s $T/st/tokenizer.json && test -s $T/st/tokenizer_config.json"
expect_exit "SafeTensors dir with tokenizer.json to GGUF" 0 "apr-convert -q --verify $T/st $T/a.gguf"
expect_match "tokenizer.ggml.tokens from tokenizer.json" \
    'tokenizer\.ggml\.tokens +ARRAY\[STRING\] +\(272\) \["<unk>", "<s>", "</s>"' "apr-inspect $T/a.gguf"
expect_match "token types from tokenizer.json" \
    'tokenizer\.ggml\.token_type +ARRAY\[INT32\] +\(272\) \[2, 3, 3, 6, 6' "apr-inspect $T/a.gguf"
expect_exit "and back to SafeTensors" 0 "apr-convert -q $T/a.gguf $T/back/"
expect_file_same "tokenizer.json reproduced byte for byte" "$T/st/tokenizer.json" "$T/back/tokenizer.json"
mkdir -p "$T/bl"
cp "$T/st/model.safetensors" "$T/st/config.json" "$T/bl/"
printf '%s' '{"added_tokens":[{"id":3,"content":"<|endoftext|>","special":true}],"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]}}' > "$T/bl/tokenizer.json"
printf '%s' '{"eos_token":"<|endoftext|>","chat_template":"{{ messages }}"}' > "$T/bl/tokenizer_config.json"
expect_exit "byte-level tokenizer.json to GGUF" 0 "apr-convert -q $T/bl $T/bl.gguf"
testing "byte-level: model, merges, eos, template" \
    "apr-inspect $T/bl.gguf | grep -E '^  tokenizer\.(ggml\.(model|merges|eos_token_id)|chat_template) ' | tr -s ' '" \
    ' tokenizer.ggml.model STRING "gpt2"
 tokenizer.ggml.merges ARRAY[STRING] (1) ["a b"]
 tokenizer.ggml.eos_token_id UINT32 3
 tokenizer.chat_template STRING "{{ messages }}"'
printf '{"model":{"type":"BPE","vocab":{"a":"x"}}}' > "$T/bl/tokenizer.json"
expect_match "malformed tokenizer.json: file and offset" "tokenizer\\.json: .*model\\.vocab. id.*at offset 37" \
    "apr-convert $T/bl $T/bad.gguf"
testing "malformed tokenizer.json: no output" "test -e $T/bad.gguf && echo yes || echo no" "no"

# llama.cpp interop: HF -> GGUF keeps norms in F32 (ggml multiplies by them in F32 only)
# and, without a tokenizer, writes tokenizer.ggml.model "none" (llama.cpp needs the key)
if need_shared "HF to GGUF for llama.cpp"; then
    expect_exit "HF (BF16, no tokenizer) to GGUF" 0 \
        "apr-convert -q --verify $SHARED/hf/llama-bf16 $FIX/llama.gguf"
    expect_match "norms are F32" '^  blk\.0\.attn_norm\.weight +F32 ' "apr-inspect $FIX/llama.gguf"
    expect_match "tokenizer.ggml.model is none" '^  tokenizer\.ggml\.model +STRING +"none"$' \
        "apr-inspect $FIX/llama.gguf"
    expect_match "the widening is said (in the plan)" 'blk\.0\.attn_norm\.weight +BF16 +-> F32 .*widened: llama\.cpp needs norms' \
        "apr-convert --dry-run $SHARED/hf/llama-bf16 $FIX/llama2.gguf"
    expect_exit "and back to HF" 0 "apr-convert -q --verify $FIX/llama.gguf $FIX/llama-hf/"
    expect_file_same "HF -> GGUF -> HF weights (norms narrowed back)" \
        "$SHARED/hf/llama-bf16/model.safetensors" "$FIX/llama-hf/model.safetensors"
    testing "no tokenizer.json from tokenizer.ggml.model none" \
        "ls $FIX/llama-hf" "config.json
generation_config.json
model.safetensors"
fi
