# t2500: apr-convert --dtype as a quantizer: every tensor of the six llama-quantize
# fixtures re-made from their F32 source (type and bytes: refs/*.tensors.json's
# sha256_raw, general.file_type), the --dtype list in --help == README == man page,
# --dry-run shows the chosen types, output bytes independent of --threads, quantized
# sources refused without --requantize, imatrix-only types refused with the reason.
. tests/cli/lib.sh

# ---- the one list of --dtype names: --help, README.md and man/apr-convert.1 agree
names() { tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -v '^$'; }
apr-convert --help | sed -n '/the same bytes:$/,/--pure/p' | sed '1d;$d' | names > "$FIX/help.txt"
grep 'Types for `--dtype`' README.md | sed 's/.*): //; s/\.$//' | names > "$FIX/readme.txt"
sed -n '/^\.\\" --dtype names/{n;p;}' man/apr-convert.1 | names > "$FIX/man.txt"
expect_exit "--dtype list: --help has one" 0 "test \$(wc -l < '$FIX/help.txt') -gt 20"
expect_file_same "--dtype list: README == --help" "$FIX/help.txt" "$FIX/readme.txt"
expect_file_same "--dtype list: man page == --help" "$FIX/help.txt" "$FIX/man.txt"

expect_match "imatrix-only type refused with the reason" "IQ2_XXS: needs an importance matrix" \
    "apr-convert --dtype IQ2_XXS x.gguf $FIX/y.gguf"
expect_exit "imatrix-only type: usage error" 2 "apr-convert --dtype iq1_s x.gguf $FIX/y.gguf"
expect_exit "unknown --dtype" 2 "apr-convert --dtype Q9_K x.gguf $FIX/y.gguf"

if [ -z "$SHARED" ] || [ ! -r "$SHARED/gguf/tiny-llama-small-F32.gguf" ]; then
    skip "t2500 fixtures" "no ../shared/fixtures/gguf (set APR_SHARED_FIXTURES)"
    exit 0
fi
G=$SHARED/gguf
SRC=$G/tiny-llama-small-F32.gguf

# "NAME TYPE SHA256" lines, sorted: from a refs json, and from apr-hash --tensors
ref_lines() {
    sed -n '/^ "tensors": \[/,$p' "$1" | grep -E '^   "(name|type|sha256_raw)":' |
        sed 's/.*": "//; s/",*$//' |
        paste - - - | awk '{ print $1, $2, $3 }' | sort
}
our_lines() { apr-hash --tensors "$1" | awk '$1 == "tensor" { print $5, $3, $2 }' | sort; }
ftype() { apr-inspect "$1" | awk '$1 == "general.file_type" { print $3 }'; }

for T in F16 Q8_0 Q4_0 Q4_K_M Q6_K IQ4_XS; do
    out=$FIX/$T.gguf
    expect_exit "--dtype $T of the F32 fixture" 0 \
        "apr-convert -q --no-progress --dtype $T '$SRC' '$out'"
    ref_lines "$G/refs/tiny-llama-small-$T.tensors.json" > "$FIX/$T.want"
    our_lines "$out" > "$FIX/$T.got"
    expect_exit "--dtype $T: 21 tensors listed" 0 "test \$(wc -l < '$FIX/$T.want') -eq 21"
    expect_file_same "--dtype $T: every tensor's type and bytes are llama-quantize's" \
        "$FIX/$T.want" "$FIX/$T.got"
    testing "--dtype $T: general.file_type is llama-quantize's" "apr-inspect '$out' |
        awk '\$1 == \"general.file_type\" { print \$3 }'" "$(ftype "$G/tiny-llama-small-$T.gguf")"
done

# the plan shows each tensor's type (Q4_K_M: attn_v and ffn_down of layer 1 in Q6_K)
expect_match "--dry-run shows the mix" "blk\.1\.ffn_down\.weight +F32 +-> Q6_K" \
    "apr-convert --dry-run --dtype Q4_K_M '$SRC' '$FIX/dry.gguf'"
expect_exit "--dry-run writes nothing" 1 "test -e '$FIX/dry.gguf'"
expect_match "--pure: one type" "output\.weight +F32 +-> Q4_K " \
    "apr-convert --dry-run --pure --dtype Q4_K_M '$SRC' '$FIX/dry.gguf'"

# bytes do not depend on the thread count
for T in Q4_K_M IQ4_XS Q8_0; do
    apr-convert -q --no-progress -t 1 --dtype $T "$SRC" "$FIX/t1.gguf" 2>/dev/null
    apr-convert -q --no-progress -t 3 --dtype $T "$SRC" "$FIX/t3.gguf" 2>/dev/null
    expect_file_same "--dtype $T: -t 1 == -t 3" "$FIX/t1.gguf" "$FIX/t3.gguf"
    rm -f "$FIX/t1.gguf" "$FIX/t3.gguf"
done

# a quantized source is refused unless --requantize
expect_match "quantized source refused" "already Q4_0.*--requantize" \
    "apr-convert --dtype Q4_K_M '$G/tiny-llama-small-Q4_0.gguf' '$FIX/rq.gguf'"
expect_exit "quantized source: usage error" 2 \
    "apr-convert --dtype Q4_K_M '$G/tiny-llama-small-Q4_0.gguf' '$FIX/rq.gguf'"
expect_exit "--requantize allows it" 0 \
    "apr-convert -q --no-progress --requantize --dtype Q4_K_M '$G/tiny-llama-small-Q4_0.gguf' '$FIX/rq.gguf'"
# F16 source: quantized like llama-quantize would from the F16 file (no --requantize)
expect_exit "F16 source quantizes" 0 \
    "apr-convert -q --no-progress --dtype Q8_0 '$G/tiny-llama-small-F16.gguf' '$FIX/f16q.gguf'"
