# t1000: apr-inspect on generated and hostile files.
. tests/cli/lib.sh

mkfix demo "$FIX/demo.gguf" || _fail "mkfix demo"
D=$FIX/demo.gguf

expect_exit "inspect demo" 0 "apr-inspect $D"
expect_match "inspect shows format" '^format: +GGUF v3$' "apr-inspect $D"
expect_match "inspect shows shapes outermost first" 'blk\.0\.attn_q\.weight +F32 +\[64, 64\]' "apr-inspect $D"
expect_match "inspect --json keys" '^  "file": ".*demo.gguf",$' "apr-inspect --json $D"
expect_match "inspect --license shows holes" 'source_url +\(missing\)' "apr-inspect --license $D"
expect_match "inspect --license --json" '"missing": \[' "apr-inspect --license --json $D"
expect_match "inspect --tensor" 'token_embd\.weight +F32 +\[[0-9]+, 64\]' "apr-inspect -t token_embd.weight $D"
expect_exit "inspect missing tensor" 1 "apr-inspect -t nope $D"
expect_exit "inspect no file" 2 "apr-inspect"
expect_exit "inspect nonexistent" 1 "apr-inspect $FIX/nonexistent.gguf"
expect_match "inspect nonexistent names the file" "^apr-inspect: cannot open '.*nonexistent.gguf': No such file" "apr-inspect $FIX/nonexistent.gguf"
expect_exit "inspect stdout full" 1 "apr-inspect $D > /dev/full"

# Two files: each reported, exit status is the worst seen.
expect_exit "inspect multiple files worst status" 1 "apr-inspect $D $FIX/nonexistent.gguf"

# --no-offsets: the tensor listing of two different files holding the same tensors at
# different offsets (the GGUF and its APR copy with GGUF names; APR sorts its index, so
# the lines are sorted) is the same; with offsets it is not (the control).
apr-convert --names gguf "$D" "$FIX/same.apr" || _fail "convert for --no-offsets"
apr-inspect "$D" | sed -n '/^tensors:$/,$p' | sort > "$FIX/with-offsets.txt"
testing "no-offsets: GGUF and APR copy list the same tensors" \
    "apr-inspect --no-offsets $FIX/same.apr | sed -n '/^tensors:\$/,\$p' | sort | cksum" \
    "$(apr-inspect --no-offsets "$D" | sed -n '/^tensors:$/,$p' | sort | cksum)"
testing "with offsets the two listings differ" \
    "apr-inspect $FIX/same.apr | sed -n '/^tensors:\$/,\$p' | sort | cmp -s - $FIX/with-offsets.txt; echo \$?" "1"

# Truncated: clean error naming the file and an offset, exit 1.
head -c 1000 "$D" > "$FIX/trunc.gguf"
expect_exit "inspect truncated" 1 "apr-inspect $FIX/trunc.gguf"
expect_match "truncated message names file and offset" "trunc\.gguf: .* at offset [0-9]+" "apr-inspect $FIX/trunc.gguf"

# Not a model.
printf 'hello world\n' > "$FIX/text.txt"
expect_match "not a model" "text\.txt: unrecognised format" "apr-inspect $FIX/text.txt"

# A hostile key and string with terminal escapes: printed escaped, never raw.
# GGUF v3, 0 tensors, 1 kv: key "k\033[31m" (6 bytes) STRING "v\033]0;x\007" (7 bytes)
printf 'GGUF\003\000\000\000\000\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000' > "$FIX/evil.gguf"
printf '\006\000\000\000\000\000\000\000k\033[31m\010\000\000\000' >> "$FIX/evil.gguf"
printf '\007\000\000\000\000\000\000\000v\033]0;x\007' >> "$FIX/evil.gguf"
expect_exit "hostile strings read" 0 "apr-inspect $FIX/evil.gguf"
n=$(apr-inspect "$FIX/evil.gguf" | tr -d -c '\033\007' | wc -c)
testing "hostile strings escaped" "echo $n" "0"
expect_match "hostile key shown escaped" 'k\\x1b\[31m' "apr-inspect $FIX/evil.gguf"
n=$(apr-inspect --json "$FIX/evil.gguf" | tr -d -c '\033\007' | wc -c)
testing "hostile strings escaped in JSON" "echo $n" "0"

# A 70B-sized file (sparse, real header): only the header is read.
if mkfix sparse70b "$FIX/big.gguf" 2>/dev/null; then
    sz=$(stat -c %s "$FIX/big.gguf")
    testing "sparse 70B file is over 100 GB" "[ $sz -gt 100000000000 ] && echo big" "big"
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M %e' -o "$FIX/time" apr-inspect "$FIX/big.gguf" > /dev/null
        rss=$(cut -d' ' -f1 "$FIX/time") secs=$(cut -d' ' -f2 "$FIX/time")
        testing "70B inspect RSS under 64 MiB (${rss} KiB)" "[ $rss -lt 65536 ] && echo ok" "ok"
        # a guard against reading the data (141 GB: tens of seconds at best), not a speed
        # claim; 5 s leaves room for sanitizer builds on a loaded machine (measured
        # 0.00 s plain, 1.24 s under ASan at load 15)
        testing "70B inspect reads only the header (${secs} s < 5 s)" "awk 'BEGIN{exit !($secs < 5.0)}' && echo ok" "ok"
    else
        skip "70B inspect RSS" "no /usr/bin/time"
    fi
else
    _fail "mkfix sparse70b"
fi

# Shared fixtures: every one is read.
if need_shared "inspect shared fixtures"; then
    for f in "$SHARED"/gguf/*.gguf "$SHARED"/gguf/vocab/*.gguf "$SHARED"/hf/*/model.safetensors "$SHARED"/hf/*; do
        expect_exit "inspect $(basename "$(dirname "$f")")/$(basename "$f")" 0 "apr-inspect '$f'"
    done
fi

# --stats: every tensor streamed; a zeroed tensor is flagged and warned about.
expect_exit "stats demo" 0 "apr-inspect --stats $D"
expect_match "stats columns" '^  name +dtype +min +max +mean +std +l2 +nan +inf +zeros +status$' "apr-inspect --stats $D"
testing "stats: no suspicious tensor in demo" "apr-inspect --stats $D 2>&1 | grep -c -E 'ALL-ZERO|NON-FINITE|warning'" "0"
off=$(apr-inspect -j -t blk.1.ffn_up.weight "$D" | sed -n 's/.*"offset": \([0-9]*\).*/\1/p')
len=$(apr-inspect -j -t blk.1.ffn_up.weight "$D" | sed -n 's/.*"bytes": \([0-9]*\).*/\1/p')
cp "$D" "$FIX/zeroed.gguf"
dd if=/dev/zero of="$FIX/zeroed.gguf" bs=1 seek="$off" count="$len" conv=notrunc 2>/dev/null
expect_match "stats flags the zeroed tensor" 'blk\.1\.ffn_up\.weight .* ALL-ZERO$' "apr-inspect --stats $FIX/zeroed.gguf"
expect_match "stats warns on stderr" 'warning: .*zeroed\.gguf: 1 tensor is all zeros or not finite' "apr-inspect --stats $FIX/zeroed.gguf 2>&1 >/dev/null"
expect_match "stats json counts it" '"n_suspicious": 1' "apr-inspect --stats --json $FIX/zeroed.gguf 2>/dev/null"
# A NaN planted in a tensor (f32 0x7fc00000 little-endian at the tensor's first element).
cp "$D" "$FIX/nan.gguf"
printf '\000\000\300\177' | dd of="$FIX/nan.gguf" bs=1 seek="$off" conv=notrunc 2>/dev/null
expect_match "stats flags a NaN" 'blk\.1\.ffn_up\.weight .* 1 +0 +[0-9]+  NON-FINITE$' "apr-inspect --stats $FIX/nan.gguf"
# -t in any naming (HF, GGUF, APR), as apr-diff and apr-hash pair names; with several
# files each block names its file; a sharded model's listing shows each tensor's shard.
expect_match "-t takes the HF name of a GGUF tensor" '^  blk\.0\.attn_q\.weight +F32' "apr-inspect -t model.layers.0.self_attn.q_proj.weight $D"
testing "-t with several files names each" "apr-inspect -t output_norm.weight $D $D | grep -c '^file: '" "2"
mkdir -p "$FIX/shards"
apr-convert -q --shard-size 100000 "$D" "$FIX/shards/" 2>/dev/null
expect_match "sharded listing: shard column" '^  name .* bytes  shard$' "apr-inspect $FIX/shards"
expect_match "sharded listing: each tensor's shard" '^  model\.layers\.1\.mlp\.down_proj\.weight .* model-0000[0-9]-of-0000[0-9]\.safetensors$' "apr-inspect $FIX/shards"
expect_match "sharded listing: JSON shard" '"shard": "model-00001-of-0000[0-9]\.safetensors"' "apr-inspect -j $FIX/shards"
rm -rf "$FIX/shards"
# --stats --strict: such a tensor is an error (exit 1, after the table)
expect_exit "--stats --strict: all-zero tensor fails" 1 "apr-inspect --stats --strict $FIX/zeroed.gguf"
expect_exit "--stats --strict: NaN fails" 1 "apr-inspect --stats --strict $FIX/nan.gguf"
expect_match "--stats --strict says why" 'zeroed\.gguf: tensors all zeros or not finite \(--strict\)' "apr-inspect --stats --strict $FIX/zeroed.gguf"
expect_match "--stats --strict still prints the table" 'ALL-ZERO$' "apr-inspect --stats --strict $FIX/zeroed.gguf"
expect_exit "--stats --strict: a clean model passes" 0 "apr-inspect --stats --strict $D"
expect_exit "--strict needs --stats" 2 "apr-inspect --strict $D"
expect_match "values prints the first values" '^    \[0\] nan$' "apr-inspect -t blk.1.ffn_up.weight --values 3 $FIX/nan.gguf"
testing "values count" "apr-inspect -t blk.1.ffn_up.weight --values 3 $D | grep -c '^    \['" "3"
expect_match "values json" '"values": \[' "apr-inspect -j -t output_norm.weight --values 2 $D"
if need_shared "stats on quantized fixtures"; then
    for f in "$SHARED"/gguf/tiny-llama-small-*.gguf; do
        expect_exit "stats $(basename "$f")" 0 "apr-inspect --stats '$f'"
    done
    # Values equal the reference's first8 of output.weight in the Q4_K_M file.
    expect_match "values match llama.cpp's first values" '^    \[0\] -0\.019886017$' \
        "apr-inspect -t output.weight --values 1 '$SHARED/gguf/tiny-llama-small-Q4_K_M.gguf'"
fi

# Hostile tensor names (OSC title, BEL, colour, clear screen): no tool writes a raw control
# byte to stdout or stderr, in any mode, including the overlap error that quotes both.
# GGUF v3, one F32 [4] tensor named "t ESC ]0;x BEL ESC [31m"
N='t\033]0;x\007\033[31m'
{ printf 'GGUF\003\000\000\000\001\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
  printf '\014\000\000\000\000\000\000\000'; printf "$N"
  printf '\001\000\000\000\004\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
  head -c 44 /dev/zero; } > "$FIX/evil1.gguf"
# two tensors at the same offset: the overlap error names both
{ printf 'GGUF\003\000\000\000\002\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
  printf '\014\000\000\000\000\000\000\000'; printf "$N"
  printf '\001\000\000\000\004\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
  printf '\005\000\000\000\000\000\000\000u\033[2J'
  printf '\001\000\000\000\004\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
  head -c 39 /dev/zero; } > "$FIX/evil2.gguf"
for f in evil1 evil2; do
    for c in "apr-inspect" "apr-inspect --json" "apr-inspect --full" "apr-inspect --license" \
             "apr-inspect --stats --values 2" "apr-inspect --stats --json" "apr-hash --tensors" \
             "apr-hash --tensors --content --with-metadata" "apr-hash --json --tensors" \
             "apr-diff" "apr-diff --values" "apr-diff --values --json --transpose-aware"; do
        case $c in apr-diff*) args="$FIX/$f.gguf $D" ;; *) args="$FIX/$f.gguf" ;; esac
        testing "hostile names: $c $f.gguf: no raw ESC or BEL" \
            "$c $args 2>&1 | tr -d -c '\\033\\007' | wc -c | tr -d ' '" "0"
    done
done
expect_match "hostile names: overlap error escaped" "overlaps tensor" "apr-inspect $FIX/evil2.gguf"
apr-hash -o "$FIX/evil.json" "$FIX/evil1.gguf" > /dev/null 2>&1
testing "hostile names: --check reports escaped" \
    "apr-hash -c $FIX/evil.json $FIX/evil1.gguf 2>&1 | tr -d -c '\\033\\007' | wc -c | tr -d ' '" "0"
