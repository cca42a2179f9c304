# t2510: apr-convert --imatrix: llama.cpp importance matrices in both forms (legacy .dat,
# GGUF) quantize the F32 fixture to every mix exactly as llama-quantize --imatrix did
# (tests/fixtures/imatrix/refs.txt: per mix, every tensor's type and sha256, from
# llama-quantize c392e50, see tests/fixtures/imatrix/README.md); the importance data
# changes the bytes; the quantize.imatrix.* keys; errors (no --dtype, bad file, entry
# of the wrong length, imatrix-only type without one).  With LLAMA_QUANTIZE=path it
# also runs that llama-quantize live on the same inputs and compares (else: skip).
. tests/cli/lib.sh

IM=tests/fixtures/imatrix
DAT=$IM/tiny-llama-small.imatrix.dat
IMG=$IM/tiny-llama-small.imatrix.gguf

expect_match "Q2_K_S without --imatrix: refused with the reason" \
    "Q2_K_S: needs an importance matrix \(--imatrix" "apr-convert --dtype Q2_K_S x.gguf $FIX/y.gguf"
expect_exit "Q2_K_S without --imatrix: usage error" 2 "apr-convert --dtype q2_k_s x.gguf $FIX/y.gguf"
for M in IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS; do
    expect_match "$M without --imatrix: refused with the reason" \
        "$M: needs an importance matrix" "apr-convert --dtype $M x.gguf $FIX/y.gguf"
done
expect_match "--imatrix without --dtype" "--imatrix needs --dtype" \
    "apr-convert --imatrix $DAT x.gguf $FIX/y.gguf"
expect_match "--imatrix with a float --dtype" "--dtype F16 does not quantize" \
    "apr-convert --imatrix $DAT --dtype F16 x.gguf $FIX/y.gguf"
printf 'junk' > "$FIX/bad.dat"
expect_match "a malformed imatrix names the file and offset" \
    "bad.dat: entry count 1802401130 does not fit in 4 bytes at offset 0" \
    "apr-convert --imatrix '$FIX/bad.dat' --dtype Q4_K_M x.gguf $FIX/y.gguf"

if [ -z "$SHARED" ] || [ ! -r "$SHARED/gguf/tiny-llama-small-F32.gguf" ]; then
    skip "t2510 fixtures" "no ../shared/fixtures/gguf (set APR_SHARED_FIXTURES)"
    exit 0
fi
SRC=$SHARED/gguf/tiny-llama-small-F32.gguf
MIXES="Q8_0 Q6_K Q5_K_M Q5_K_S Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_1 Q4_0 IQ4_NL IQ4_XS IQ3_M IQ3_S
IQ3_XS Q3_K_L Q3_K_M Q3_K_S Q2_K Q2_K_S TQ2_0 TQ1_0 IQ3_XXS IQ2_M IQ2_S IQ2_XS IQ2_XXS IQ1_M IQ1_S"

our_lines() { apr-hash --tensors "$1" | awk -v m="$2" '$1 == "tensor" { print m, $5, $3, $2 }' | sort; }

for M in $MIXES; do
    grep "^$M " $IM/refs.txt > "$FIX/$M.want"
    for form in dat gguf; do
        f=$DAT
        [ $form = gguf ] && f=$IMG
        out=$FIX/$M.$form.gguf
        expect_exit "--imatrix ($form) --dtype $M" 0 \
            "apr-convert -q --no-progress --imatrix $f --dtype $M '$SRC' '$out'"
        our_lines "$out" "$M" > "$FIX/$M.$form.got"
        expect_file_same "--imatrix ($form) --dtype $M: 21 tensors' types and bytes are llama-quantize's" \
            "$FIX/$M.want" "$FIX/$M.$form.got"
    done
    rm -f "$FIX/$M.gguf.gguf"
done
testing "refs.txt holds 29 mixes x 21 tensors" "wc -l < $IM/refs.txt" "609"

# the importance data matters: Q4_K_M with it differs in every matrix that has data
# (the 14 layer matrices and output.weight; token_embd has none: llama-imatrix does
# not see a get_rows)
apr-convert -q --no-progress --dtype Q4_K_M "$SRC" "$FIX/plain.gguf"
our_lines "$FIX/plain.gguf" Q4_K_M > "$FIX/plain.got"
testing "--imatrix changes Q4_K_M's quantized tensors" \
    "comm -13 '$FIX/plain.got' '$FIX/Q4_K_M.dat.got' | grep -c ' Q[46]_K '" "15"
# llama-quantize's keys
testing "quantize.imatrix.* keys" "apr-inspect '$FIX/Q4_K_M.dat.gguf' | awk '/quantize.imatrix/ { print \$1, \$3 }'" \
"quantize.imatrix.file \"$DAT\"
quantize.imatrix.dataset \"text.txt\"
quantize.imatrix.entries_count 15
quantize.imatrix.chunks_count 8"
# the bytes do not depend on the thread count
apr-convert -q --no-progress -t 3 --imatrix $DAT --dtype IQ3_XS "$SRC" "$FIX/t3.gguf"
expect_file_same "--imatrix: -t 3 == -t default" "$FIX/IQ3_XS.dat.gguf" "$FIX/t3.gguf"

# an entry whose length does not match its tensor (layer 0's ffn_down has 512 columns)
python3 - "$DAT" "$FIX/short.dat" <<'EOF' 2>/dev/null || true
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n = b.find(b'blk.0.attn_q.weight')
nval = struct.unpack_from('<i', b, n + 19 + 4)[0]
struct.pack_into('<i', b, n + 19 + 4, nval // 2)
del b[n + 27 + 4 * (nval // 2): n + 27 + 4 * nval]
open(sys.argv[2], 'wb').write(b)
EOF
if [ -s "$FIX/short.dat" ]; then
    expect_match "--imatrix: an entry of the wrong length is an error" \
        "entry 'blk.0.attn_q.weight' has 128 values, the tensor needs 256" \
        "apr-convert --imatrix '$FIX/short.dat' --dtype Q4_K_M '$SRC' '$FIX/short.gguf'"
else
    skip "--imatrix: an entry of the wrong length" "python3 not available"
fi

# live: the same inputs through llama-quantize (LLAMA_QUANTIZE=path)
if [ -z "${LLAMA_QUANTIZE:-}" ] || [ ! -x "${LLAMA_QUANTIZE:-}" ]; then
    skip "t2510 live llama-quantize --imatrix" "LLAMA_QUANTIZE not set"
    exit 0
fi
for M in $MIXES; do
    "$LLAMA_QUANTIZE" --imatrix $DAT "$SRC" "$FIX/live.gguf" $M 1 >/dev/null 2>&1
    our_lines "$FIX/live.gguf" "$M" > "$FIX/live.got"
    expect_file_same "live llama-quantize --imatrix $M == apr-convert" "$FIX/live.got" "$FIX/$M.dat.got"
done
