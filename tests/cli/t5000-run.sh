# t5000: apr-run: usage errors, generation, --logits, --json, --trace, stage dumps and
# apr-diff of two runs, GGUF/APR/SafeTensors conversions giving bit-identical logits,
# --compare gates and planted faults (named by layer and stage), --perplexity; with
# ../shared: the transformers and llama.cpp references through the CLI.
. tests/cli/lib.sh

if ! mkfix demo "$FIX/demo.gguf" 2>/dev/null || [ ! -x "$BUILD/apr-run" ]; then
    skip "apr-run" "no mkfix or apr-run in $BUILD"
    exit 0
fi
D=$FIX/demo.gguf
P=1,100,200,150,3,7,9,20

# usage and errors
expect_exit "--help" 0 "apr-run --help"
expect_exit "no model" 2 "apr-run --tokens 1,2"
expect_exit "no prompt" 2 "apr-run $D"
expect_exit "bad --tokens" 2 "apr-run --tokens 1,x $D"
expect_exit "bad stage" 2 "apr-run --tokens 1 --save-tensor attn_norm,nope $D"
expect_match "bad stage named" "unknown stage 'nope'" "apr-run --tokens 1 --save-tensor attn_norm,nope $D"
expect_exit "bad layer range" 2 "apr-run --tokens 1 --save-tensor all --save-tensor-layers 3..1 $D"
expect_exit "--fail-cos without --compare" 2 "apr-run --tokens 1 --fail-cos 0.9 $D"
expect_exit "token outside the vocabulary" 2 "apr-run --tokens 1,272 $D"
expect_match "says which token" "token 272 \\(position 1\\) is outside the vocabulary \\[0, 272\\)" "apr-run --tokens 1,272 $D"
expect_exit "context overflow" 2 "apr-run --ctx 8 -n 4 --tokens 1,2,3,4,5 $D"
expect_match "says context overflow" "context overflow: 9 positions needed" "apr-run --ctx 8 -n 4 --tokens 1,2,3,4,5 $D"
expect_exit "missing model" 1 "apr-run --tokens 1 $FIX/nope.gguf"
printf 'not a model' > "$FIX/junk.bin"
expect_exit "not a model" 1 "apr-run --tokens 1 $FIX/junk.bin"

# generation: deterministic, independent of threads and batch size
expect_match "greedy ids" '^[0-9]+( [0-9]+){7}$' "apr-run -n 8 --ignore-eos --tokens $P $D"
apr-run -n 8 --ignore-eos -t 1 --tokens $P "$D" > "$FIX/g1.txt" 2>/dev/null
apr-run -n 8 --ignore-eos -t 3 -b 3 --tokens $P "$D" > "$FIX/g3.txt" 2>/dev/null
expect_file_same "threads and batch do not change the tokens" "$FIX/g1.txt" "$FIX/g3.txt"
apr-run -n 8 --ignore-eos --temp 0.8 --seed 7 --tokens $P "$D" > "$FIX/s1.txt" 2>/dev/null
apr-run -n 8 --ignore-eos --temp 0.8 --seed 7 --tokens $P "$D" > "$FIX/s2.txt" 2>/dev/null
expect_file_same "same seed, same sample" "$FIX/s1.txt" "$FIX/s2.txt"
expect_match "-v speeds on stderr" 'generation 8 tokens in .* tokens/s' "apr-run -v -n 8 --ignore-eos --tokens $P $D"
testing "nothing on stdout with -n 0" "apr-run -n 0 --tokens $P $D | wc -c" "0"
expect_match "--json" '^\{"model":.*"prompt":\[1,100,200,150,3,7,9,20\],"prompt_top":\[\[\[[0-9]+,.*"tokens":\[[0-9,]+\],"timings":\{"prompt_s":' "apr-run --json -n 2 --tokens $P $D"

# --logits: [n_tokens][n_vocab] f32
apr-run -n 0 --tokens $P --logits "$FIX/l.f32" "$D"
testing "--logits size" "wc -c < $FIX/l.f32" "$((8 * 272 * 4))"

# --trace: every stage of every layer
expect_match "--trace header" '^layer +stage +n +min +max +mean +std +l2 +nan +inf' "apr-run -n 0 --trace --tokens $P $D"
# header, embedding, 16 stages per layer (no qkv_bias: llama has no biases), final_norm, lm_head
testing "--trace lines" "apr-run -n 0 --trace --tokens $P $D | wc -l" "$((1 + 1 + 2 * 16 + 2))"
expect_match "--trace values" '^1 +ffn_swigl +1024 ' "apr-run -n 0 --trace --tokens $P $D"

# the same model in three containers: bit-identical logits and stage dumps
apr-convert -q "$D" "$FIX/demo.apr"
apr-convert -q --lossless "$D" "$FIX/demo-lossless.apr"
apr-convert -q "$D" "$FIX/hf/"
apr-convert -q --dtype f16 "$D" "$FIX/f16.gguf"
apr-convert -q "$FIX/f16.gguf" "$FIX/f16-hf/"
for m in demo.apr demo-lossless.apr hf; do
    apr-run -n 0 --tokens $P --logits "$FIX/l-$m.f32" "$FIX/$m"
    expect_file_same "GGUF vs $m: bit-identical logits" "$FIX/l.f32" "$FIX/l-$m.f32"
done
apr-run -n 0 --tokens $P --logits "$FIX/l16.f32" "$FIX/f16.gguf"
apr-run -n 0 --tokens $P --logits "$FIX/l16h.f32" "$FIX/f16-hf"
expect_file_same "F16 GGUF vs HF layout: bit-identical logits" "$FIX/l16.f32" "$FIX/l16h.f32"
apr-run -n 0 --tokens $P --save-tensor all --save-tensor-layers 0..2 --save-tensor-dir "$FIX/sa" "$D" 2>/dev/null
apr-run -n 0 --tokens $P --save-tensor all --save-tensor-layers 0..2 --save-tensor-dir "$FIX/sb" "$FIX/hf" 2>/dev/null
testing "stage dumps written" "find $FIX/sa -name '*.bin' | wc -l; ls $FIX/sa" "$((3 + 2 * 16))
embedding.bin
final_norm.bin
layer-0
layer-1
lm_head.bin"
# "APRT", layer 1, 8 positions x 128 = 1024 values
testing "APRT header of a dump" "od -An -tx1 -N12 $FIX/sa/layer-1/ffn_up.bin | tr -d ' \n'; echo" "415052540100000000040000"
expect_exit "apr-diff: GGUF and HF runs identical, stage by stage" 0 "apr-diff $FIX/sa $FIX/sb"
expect_match "default dump dir is <dir>/<stem>-trace" "under $FIX/demo-trace" "apr-run -n 0 --tokens 1 --save-tensor final_norm $D"
expect_exit "--compare: a conversion is the same" 0 "apr-run --tokens $P --compare $D $FIX/demo.apr"
expect_match "--compare prints same" '^same$' "apr-run --tokens $P --compare $D $FIX/hf"
expect_exit "--compare F16 vs F32 passes the default gate" 0 "apr-run --tokens $P --compare $D $FIX/f16.gguf"
expect_exit "--compare F16 vs F32 fails a strict gate" 1 "apr-run --tokens $P --fail-cos 1 --compare $D $FIX/f16.gguf"
expect_exit "--compare trouble is 2" 2 "apr-run --tokens $P --compare $FIX/nope.gguf $D"
expect_match "--compare --json" '"min_cosine":(1(\.0)?|0\.999999999[0-9]*),.*"same":true\}$' "apr-run --json --tokens $P --compare $D $FIX/demo.apr"

# planted faults: caught (exit 1) and localised to layer and stage
mkfix demo-swap "$FIX/swap.gguf"
mkfix demo-transposed "$FIX/tr.gguf"
expect_exit "swapped layers: different" 1 "apr-run --tokens $P --compare $D $FIX/swap.gguf"
expect_match "swapped layers: named" 'first divergent stage: layer 0 ffn_out' "apr-run --tokens $P --compare $D --save-tensor all --save-tensor-layers 0..2 --save-tensor-dir $FIX/fs $FIX/swap.gguf"
expect_match "swapped layers: apr-diff names it too" 'first divergent stage: layer-0/ffn_out.bin' "apr-diff $FIX/fs/other $FIX/fs/model"
expect_exit "transposed projection: different" 1 "apr-run --tokens $P --compare $D $FIX/tr.gguf"
expect_match "transposed projection: named" 'first divergent stage: layer 1 attn_out' "apr-run --tokens $P --compare $D --save-tensor all --save-tensor-layers 0..2 --save-tensor-dir $FIX/ft $FIX/tr.gguf"
expect_match "transposed projection: apr-diff names it too" 'first divergent stage: layer-1/attn_out.bin' "apr-diff $FIX/ft/other $FIX/ft/model"

# --perplexity-ids over a token file (scored as given: it does not start with BOS)
i=0; : > "$FIX/toks.txt"
while [ $i -lt 100 ]; do printf '%d,' $(( (i * 37 + 11) % 272 )) >> "$FIX/toks.txt"; i=$((i + 1)); done
expect_match "--perplexity-ids" '^PPL = [0-9.]+ \+/- [0-9.]+$' "apr-run --ctx 32 --perplexity-ids $FIX/toks.txt $D"
expect_match "--perplexity-ids: no BOS added" '^100 tokens, 3 chunks of 32, 45 predictions scored$' "apr-run --ctx 32 --perplexity-ids $FIX/toks.txt $D"
expect_match "--perplexity-ids --compare: same model" 'mean KLD = 0.000000 \+/- 0.000000, top-1 agreement 100.00% \(45/45\)' "apr-run --ctx 32 --perplexity-ids $FIX/toks.txt --compare $D $FIX/demo.apr"
expect_exit "--perplexity-ids: too few tokens" 2 "apr-run --ctx 512 --perplexity-ids $FIX/toks.txt $D"

# --perplexity over a text: the model's tokenizer, BOS first in every chunk (llama-perplexity)
printf 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light.' > "$FIX/ppl.txt"
expect_match "--perplexity text: chunks and BOS" '^[0-9]+ tokens, 5 chunks of 32, 75 predictions scored, BOS first in each chunk$' "apr-run --ctx 32 --perplexity $FIX/ppl.txt $D"
expect_match "--perplexity text: PPL with its error" '^PPL = [0-9.]+ \+/- [0-9.]+$' "apr-run --ctx 32 --perplexity $FIX/ppl.txt $D"
expect_match "--perplexity -v: each chunk" '^chunk 5/5: ppl [0-9.]+ \(running [0-9.]+\)$' "apr-run -v --ctx 32 --perplexity $FIX/ppl.txt $D"
expect_match "--chunks 2" ', 2 chunks of 32, 30 predictions scored' "apr-run --chunks 2 --ctx 32 --perplexity $FIX/ppl.txt $D"
expect_match "--perplexity --json" '"bos_each_chunk":true,"chunks":5,"ctx":32,"scored":75,"ppl":[0-9.e+-]+,"ppl_error":[0-9.e+-]+,"per_chunk":\[\{"ppl":' "apr-run --json --ctx 32 --perplexity $FIX/ppl.txt $D"
# the text's --tokenize ids start with BOS, so every chunk does: the same figure
"$BUILD/apr-run" --tokenize -p "$(cat "$FIX/ppl.txt")" "$D" > "$FIX/ppl.ids" 2>/dev/null
a=$("$BUILD/apr-run" --ctx 32 --perplexity "$FIX/ppl.txt" "$D" 2>&1 | tail -1)
b=$("$BUILD/apr-run" --ctx 32 --perplexity-ids "$FIX/ppl.ids" "$D" 2>&1 | tail -1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then _rec pass "--perplexity: text and its ids agree"; else _fail "--perplexity: text and its ids agree" "text: $a" "ids: $b"; fi
expect_exit "--perplexity and --perplexity-ids: usage error" 2 "apr-run --perplexity $FIX/ppl.txt --perplexity-ids $FIX/toks.txt $D"
expect_exit "--chunks without --perplexity: usage error" 2 "apr-run --chunks 2 --tokens 1 $D"
expect_exit "--perplexity: missing text" 1 "apr-run --perplexity $FIX/nope.txt $D"

# the third-party references through the CLI
if need_shared "apr-run: shared fixtures"; then
    H=$SHARED/hf
    ids=1,5,42,999,7,300,12,77,500,3
    testing "transformers greedy (qwen2)" "apr-run -n 16 --tokens $ids $H/qwen2-f32" \
        "420 236 621 855 131 75 247 226 793 391 831 4 558 703 901 596"
    testing "transformers greedy (llama bf16)" "apr-run -n 16 --rope-freq-dtype bf16 --tokens $ids $H/llama-bf16" \
        "172 523 92 940 742 359 157 489 987 819 484 751 137 275 694 837"
    apr-run -n 0 --tokens $ids --logits "$FIX/q.f32" "$H/qwen2-f32"
    expect_match "apr-diff of the logits against transformers'" 'cosine +1\.0000|cos(ine)?[^0-9]*(1|0\.99999)' "apr-diff $FIX/q.f32 $H/qwen2-f32/ref-logits.f32"
    G=$SHARED/gguf
    apr-convert -q "$G/tiny-llama-small-F32.gguf" "$FIX/small-hf/"
    apr-run -n 0 --tokens 1,229,153,132,87,505 --logits "$FIX/s1.f32" "$G/tiny-llama-small-F32.gguf"
    apr-run -n 0 --tokens 1,229,153,132,87,505 --logits "$FIX/s2.f32" "$FIX/small-hf"
    expect_file_same "llama.cpp fixture: GGUF vs HF layout bit-identical" "$FIX/s1.f32" "$FIX/s2.f32"
    # quantized types: APR --lossless keeps the blocks, so the logits are the same bits
    for t in Q4_K_M IQ4_XS; do
        apr-convert -q --lossless "$G/tiny-llama-small-$t.gguf" "$FIX/$t.apr"
        apr-run -n 0 --tokens 1,229,153,132,87,505 --logits "$FIX/$t-g.f32" "$G/tiny-llama-small-$t.gguf"
        apr-run -n 0 --tokens 1,229,153,132,87,505 --logits "$FIX/$t-a.f32" "$FIX/$t.apr"
        expect_file_same "llama.cpp fixture: $t GGUF vs lossless APR bit-identical" "$FIX/$t-g.f32" "$FIX/$t-a.f32"
    done
fi

# text in and out through the model's tokenizer (the demo's SentencePiece vocab)
expect_match "--tokenize -p: BOS then the pieces' ids" '^1( [0-9]+)+$' "$BUILD/apr-run --tokenize -p 'hello world' $D"
expect_match "--tokenize --json: ids and pieces" '^\{"tokens":\[\{"id":1,"piece":"<s>"\}' "$BUILD/apr-run --tokenize --json -p 'hello' $D"
expect_match "--detokenize gives the text back" 'hello world$' "$BUILD/apr-run --detokenize \"\$($BUILD/apr-run --tokenize -p 'hello world' $D)\" $D"
expect_exit "-p and --tokens together: usage error" 2 "$BUILD/apr-run -p hi --tokens 1 $D"
expect_exit "--tokenize without -p: usage error" 2 "$BUILD/apr-run --tokenize $D"
expect_match "--chat without a template says so" 'no chat template' "$BUILD/apr-run --chat -p hi $D"
ids=$("$BUILD/apr-run" --tokenize -p 'hello world' "$D" | tr ' ' ,)
a=$("$BUILD/apr-run" -n 6 --ignore-eos --json -p 'hello world' "$D" | sed 's/.*"tokens":\(\[[^]]*\]\).*/\1/')
b=$("$BUILD/apr-run" -n 6 --ignore-eos --json --tokens "$ids" "$D" | sed 's/.*"tokens":\(\[[^]]*\]\).*/\1/')
if [ -n "$a" ] && [ "$a" = "$b" ]; then _rec pass "-p generates as --tokens"; else _fail "-p generates as --tokens" "-p: $a" "--tokens: $b"; fi
