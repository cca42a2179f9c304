# t4000: apr-hash: sha256sum compatibility, exit codes, --check (ours, llama-gguf-hash's,
# sha256sum's), bit flips named by tensor, renamed and edited files, --quiet, manifests.
. tests/cli/lib.sh

printf 'abc' > "$FIX/abc.txt"
: > "$FIX/empty"
ABC=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad

testing "whole file in sha256sum format" "apr-hash $FIX/abc.txt" "$ABC  $FIX/abc.txt"
testing "empty file" "apr-hash $FIX/empty | cut -c1-64" \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
testing "standard input" "printf abc | apr-hash -" "$ABC  -"
testing "same as sha256sum" "apr-hash $FIX/abc.txt $FIX/empty" "$(sha256sum "$FIX/abc.txt" "$FIX/empty")"
apr-hash "$FIX/abc.txt" "$FIX/empty" > "$FIX/SUMS"
expect_exit "sha256sum -c accepts our output" 0 "sha256sum -c $FIX/SUMS"
expect_exit "we check sha256sum output" 0 "sha256sum $FIX/abc.txt | apr-hash -c /dev/stdin"
expect_exit "check our own sums" 0 "apr-hash -c $FIX/SUMS"
expect_exit "nonexistent file" 1 "apr-hash $FIX/nonexistent"
expect_match "nonexistent names the file" "^apr-hash: cannot open '.*nonexistent'" "apr-hash $FIX/nonexistent"
expect_exit "worst status over files" 1 "apr-hash $FIX/abc.txt $FIX/nonexistent"
expect_match "good files still hashed" "^$ABC " "apr-hash $FIX/nonexistent $FIX/abc.txt"
mkdir "$FIX/emptydir"
testing "empty directory: no lines" "apr-hash $FIX/emptydir; echo \$?" "0"
expect_exit "no file is a usage error" 2 "apr-hash"
expect_exit "-t 0 is a usage error" 2 "apr-hash -t 0 $FIX/abc.txt"
expect_exit "-t junk is a usage error" 2 "apr-hash -t 2x $FIX/abc.txt"
expect_match "-j is --json" '"sha256": "'"$ABC"'"' "apr-hash -j $FIX/abc.txt"
expect_exit "--jobs stays an alias of --threads" 0 "apr-hash --jobs 1 $FIX/abc.txt"
expect_exit "bad --format" 2 "apr-hash --format xml -o $FIX/m $FIX/abc.txt"
expect_exit "-c and -o together" 2 "apr-hash -c $FIX/SUMS -o $FIX/m $FIX/abc.txt"
expect_exit "--tensors on a non-model" 1 "apr-hash --tensors $FIX/abc.txt"
expect_exit "stdout full" 1 "apr-hash $FIX/abc.txt > /dev/full"
expect_exit "--help" 0 "apr-hash --help"
testing "--help usage first" "apr-hash --help | head -1 | cut -c1-16" "usage: apr-hash "

# --check with sha256sum manifests: changed content, quiet, unreadable manifest
printf 'abd' > "$FIX/abc.txt"
expect_exit "changed file fails the check" 1 "apr-hash -c $FIX/SUMS"
expect_match "changed file is named" "abc\.txt: FAILED" "apr-hash -c $FIX/SUMS"
testing "quiet prints nothing" "apr-hash -q -c $FIX/SUMS; echo \$?" "1"
expect_exit "missing manifest is trouble" 2 "apr-hash -c $FIX/no-such-manifest"
printf 'not a manifest\n' > "$FIX/junk"
expect_exit "manifest without entries is trouble" 2 "apr-hash -c $FIX/junk"

# models: generated demo GGUF (mkfix) when it was built
if command -v mkfix > /dev/null 2>&1 && mkfix demo "$FIX/demo.gguf" 2>/dev/null; then
    D=$FIX/demo.gguf
    expect_match "--tensors lists tensors" '^tensor  [0-9a-f]{64}  F32  \[[0-9,]+\]  blk\.0\.attn_q\.weight$' "apr-hash --tensors $D"
    expect_match "--tensors prints the model hash" '^model  [0-9a-f]{64}  ' "apr-hash --tensors $D"
    expect_match "--json model_hash" '"model_hash": "[0-9a-f]{64}"' "apr-hash --json --tensors $D"
    testing "-t1 and -t2 agree" "apr-hash -t1 --tensors --content $D | md5sum" \
        "$(apr-hash -t2 --tensors --content "$D" | md5sum)"
    expect_exit "write a manifest" 0 "apr-hash -o $FIX/man.json $D"
    expect_exit "check it" 0 "apr-hash -c $FIX/man.json"
    cp "$D" "$FIX/renamed.gguf"
    expect_exit "renamed file checks" 0 "apr-hash -c $FIX/man.json $FIX/renamed.gguf"
    expect_exit "text manifest" 0 "apr-hash --format text -o $FIX/man.txt $D"
    expect_exit "check text manifest" 0 "apr-hash -c $FIX/man.txt $FIX/renamed.gguf"
    testing "manifest is deterministic" "apr-hash -o $FIX/man2.json $D && cmp $FIX/man.json $FIX/man2.json && echo same" "same"
    expect_match "SOURCE_DATE_EPOCH" '"generated_at": "1970-01-01T00:00:00Z"' \
        "SOURCE_DATE_EPOCH=0 apr-hash -o $FIX/man3.json $D && cat $FIX/man3.json"
else
    skip "demo model checks" "no mkfix in $BUILD"
fi

# the shared fixtures: llama.cpp's own GGUFs and llama-gguf-hash manifests
if need_shared "llama-gguf-hash manifests"; then
    for q in F16 Q4_K_M; do
        G=$SHARED/gguf/tiny-llama-small-$q.gguf
        R=$SHARED/gguf/refs/tiny-llama-small-$q
        testing "$q whole file equals sha256sum" "apr-hash $G | cut -c1-64" "$(sha256sum "$G" | cut -c1-64)"
        expect_exit "$q --check llama-gguf-hash" 0 "apr-hash -c $R.gguf-hash.txt $G"
        expect_match "$q xxh64 and sha1 lines ignored with a note" "ignored" "apr-hash -c $R.gguf-hash.txt $G"
        # flip one bit inside blk.0.ffn_up.weight (offset from the reference listing)
        off=$(sed -n '/"name": "blk.0.ffn_up.weight"/,/"offset"/s/.*"offset": \([0-9]*\).*/\1/p' "$R.tensors.json")
        doff=$(sed -n 's/.*"data_offset": \([0-9]*\).*/\1/p' "$R.tensors.json")
        cp "$G" "$FIX/flip.gguf"
        pos=$((doff + off + 17))
        b=$(dd if="$FIX/flip.gguf" bs=1 skip=$pos count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
        printf "\\$(printf '%03o' $((b ^ 4)))" | dd of="$FIX/flip.gguf" bs=1 seek=$pos conv=notrunc 2>/dev/null
        expect_exit "$q flipped bit exits 1" 1 "apr-hash -c $R.gguf-hash.txt $FIX/flip.gguf"
        expect_match "$q flipped bit names the tensor" "tensor 'blk\.0\.ffn_up\.weight': MISMATCH" \
            "apr-hash -c $R.gguf-hash.txt $FIX/flip.gguf"
        testing "$q flipped bit: only that tensor" \
            "apr-hash -c $R.gguf-hash.txt $FIX/flip.gguf 2>/dev/null | grep -c MISMATCH" "1"
        testing "$q --quiet" "apr-hash -q -c $R.gguf-hash.txt $FIX/flip.gguf; echo \$?" "1"
    done
fi

# model directories (Hugging Face layout): every regular file, symbolic links not followed
H=$FIX/hf
mkdir "$H" "$H/sub"
if [ -n "$SHARED" ] && [ -f "$SHARED/hf/qwen2-f32/model.safetensors" ]; then
    cp "$SHARED/hf/qwen2-f32/model.safetensors" "$SHARED/hf/qwen2-f32/config.json" "$H/"
    chmod u+w "$H"/*
elif command -v mkfix > /dev/null 2>&1 && mkfix demo "$FIX/demo-st.gguf" 2>/dev/null &&
     apr-convert -q --to safetensors "$FIX/demo-st.gguf" "$FIX/demo-st" > /dev/null 2>&1 &&
     [ -f "$FIX/demo-st/model.safetensors" ]; then
    cp "$FIX/demo-st/model.safetensors" "$FIX/demo-st/config.json" "$H/"
fi
if [ -f "$H/model.safetensors" ]; then
    TOK='{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}'
    printf '%s' "$TOK" > "$H/tokenizer.json"
    printf 'notes\n' > "$H/sub/notes.txt"
    printf 'secret\n' > "$FIX/secret"
    ln -s "$FIX/secret" "$H/outside"
    apr-hash "$H" > "$FIX/HSUMS" 2> "$FIX/hsums.err"
    expect_exit "directory: sha256sum -c accepts the listing" 0 "sha256sum -c $FIX/HSUMS"
    testing "directory: files sorted by relative path" "sed 's/^[0-9a-f]*  //' $FIX/HSUMS" \
        "$H/config.json
$H/model.safetensors
$H/sub/notes.txt
$H/tokenizer.json"
    expect_match "directory: the link is noted, not followed" \
        "note: '.*/hf/outside': symbolic link not followed" "cat $FIX/hsums.err"
    testing "directory: the link's target is not hashed" "grep -c secret $FIX/HSUMS" "0"
    expect_exit "directory -o manifest" 0 "apr-hash -o $FIX/hman.json $H"
    expect_match "directory manifest lists tokenizer.json" "\"path\": \"$H/tokenizer.json\"" \
        "cat $FIX/hman.json"
    expect_match "directory manifest lists config.json" "\"path\": \"$H/config.json\"" \
        "cat $FIX/hman.json"
    expect_exit "directory --check unchanged" 0 "apr-hash -c $FIX/hman.json $H"
    expect_exit "directory --check from the manifest's paths" 0 "apr-hash -c $FIX/hman.json"
    printf '%s' '{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ba":2},"merges":["b a"]}}' > "$H/tokenizer.json"
    expect_exit "directory: edited tokenizer.json exits 1" 1 "apr-hash -c $FIX/hman.json $H"
    expect_match "directory: edited tokenizer.json is named" \
        "file 'tokenizer\.json': MISMATCH" "apr-hash -c $FIX/hman.json $H"
    printf '%s' "$TOK" > "$H/tokenizer.json"
    printf 'x' > "$H/added.txt"
    expect_exit "directory: added file exits 1" 1 "apr-hash -c $FIX/hman.json $H"
    expect_match "directory: added file is extra" "file 'added\.txt': EXTRA" \
        "apr-hash -c $FIX/hman.json $H"
    rm "$H/added.txt"
    mv "$H/config.json" "$FIX/config.json.away"
    expect_exit "directory: removed config.json exits 1" 1 "apr-hash -c $FIX/hman.json $H"
    expect_match "directory: removed config.json is missing" "file 'config\.json': MISSING" \
        "apr-hash -c $FIX/hman.json $H"
    mv "$FIX/config.json.away" "$H/config.json"
    expect_exit "directory: restored, exit 0" 0 "apr-hash -c $FIX/hman.json $H"
    expect_exit "directory: text manifest" 0 \
        "apr-hash --format text -o $FIX/hman.txt $H && apr-hash -c $FIX/hman.txt $H"
    printf 'changed\n' > "$FIX/secret"
    expect_exit "directory: a changed link target is not checked" 0 "apr-hash -c $FIX/hman.json $H"
else
    skip "model directory checks" "no qwen2-f32 fixture and no mkfix/apr-convert SafeTensors"
fi

# Like sha256sum: /dev/null, a pipe and /dev/stdin are read to their end and hashed.
testing "/dev/null" "apr-hash /dev/null" "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  /dev/null"
testing "a pipe through /dev/stdin" "echo hello | apr-hash /dev/stdin" "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  /dev/stdin"
testing "standard input as -" "echo hello | apr-hash -" "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  -"

# A Hugging Face cache snapshot: every file a symlink into ../../blobs/.  Links that stay
# inside the cache are followed and their targets hashed; a link leaving it is not.
if mkfix demo "$FIX/hfdemo.gguf" >/dev/null 2>&1 && apr-convert -q "$FIX/hfdemo.gguf" "$FIX/hfsrc/" 2>/dev/null; then
    R=$FIX/cache/models--org--demo
    S=$R/snapshots/0123abcd
    mkdir -p "$R/blobs" "$S" "$R/refs"
    echo 0123abcd > "$R/refs/main"
    for f in $(ls "$FIX/hfsrc"); do
        h=$(sha256sum "$FIX/hfsrc/$f" | cut -c1-64)
        mv "$FIX/hfsrc/$f" "$R/blobs/$h"
        ln -s "../../blobs/$h" "$S/$f"
    done
    printf 'secret\n' > "$FIX/outside"
    ln -s "$FIX/outside" "$S/escape.txt"
    testing "HF cache: the snapshot's files are hashed" \
        "apr-hash $S 2>/dev/null | grep -c 'snapshots/0123abcd/'" "$(ls "$R/blobs" | wc -l)"
    expect_match "HF cache: the target's bytes" "^$(sha256sum "$R/blobs/$(ls "$R/blobs" | head -1)" | cut -c1-64)  " "apr-hash $S 2>/dev/null"
    expect_match "HF cache: a link out of the cache is not followed" "escape\\.txt': symbolic link not followed" "apr-hash $S"
    expect_exit "HF cache: manifest" 0 "apr-hash -o $FIX/cache.json $S 2>/dev/null"
    expect_exit "HF cache: --check" 0 "apr-hash -c $FIX/cache.json 2>/dev/null"
    expect_match "HF cache: the repository directory reads as the model" '^model +[0-9a-f]{64}' "apr-hash --tensors $R"
    testing "HF cache: same model hash from repo and snapshot" \
        "apr-hash --tensors $R | head -1 | cut -c1-70" "$(apr-hash --tensors $S | head -1 | cut -c1-70)"
else
    skip "HF cache snapshot" "no mkfix/apr-convert"
fi

# --verify-source with a directory source (apr-convert accepts and records one).
if mkfix demo "$FIX/vs.gguf" >/dev/null 2>&1 && apr-convert -q "$FIX/vs.gguf" "$FIX/vsdir/" 2>/dev/null &&
   apr-convert -q "$FIX/vsdir" "$FIX/vs.apr" 2>/dev/null; then
    expect_exit "--verify-source DIR" 0 "apr-hash --verify-source $FIX/vsdir $FIX/vs.apr"
    expect_match "--verify-source DIR says OK" 'vs\.apr: source OK' "apr-hash --verify-source $FIX/vsdir $FIX/vs.apr"
    apr-convert -q --shard-size 100000 "$FIX/vs.gguf" "$FIX/vsshards/" 2>/dev/null
    apr-convert -q "$FIX/vsshards" "$FIX/vs2.apr" 2>/dev/null
    expect_exit "--verify-source sharded DIR" 0 "apr-hash --verify-source $FIX/vsshards $FIX/vs2.apr"
    expect_exit "--verify-source another DIR" 1 "apr-hash --verify-source $FIX/vsdir $FIX/vs2.apr"
else
    skip "--verify-source DIR" "no mkfix/apr-convert"
fi

# --check --ignore-missing, as sha256sum: entries whose files do not exist are skipped;
# checking nothing at all still fails.
mkdir -p "$FIX/im"
printf 'a\n' > "$FIX/im/a"
printf 'b\n' > "$FIX/im/b"
(cd "$FIX/im" && apr-hash -o m.json a b && rm b)
expect_exit "-c: a missing file fails" 1 "cd $FIX/im && apr-hash -c m.json"
expect_exit "-c --ignore-missing: skipped" 0 "cd $FIX/im && apr-hash --ignore-missing -c m.json"
testing "-c --ignore-missing: not reported" "cd $FIX/im && apr-hash --ignore-missing -c m.json 2>&1" "a: OK"
rm "$FIX/im/a"
expect_exit "-c --ignore-missing: nothing verified fails" 1 "cd $FIX/im && apr-hash --ignore-missing -c m.json"
expect_exit "--ignore-missing goes with -c" 2 "apr-hash --ignore-missing $FIX/im/m.json"

# The model hash covers what changes the model (apr-hash(1) MODEL HASH KEYS): a token,
# a hyperparameter; not general.name.  A mismatch names the key.
if mkfix demo "$FIX/mh.gguf" >/dev/null 2>&1; then
    apr-hash -o "$FIX/mh.json" "$FIX/mh.gguf"
    apr-hash --format text -o "$FIX/mh.txt" "$FIX/mh.gguf"
    # one byte at a time, same length: the layout stays
    poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }
    cp "$FIX/mh.gguf" "$FIX/tok.gguf"
    pos=$(grep -obUa "$(printf '\342\226\201the')" "$FIX/tok.gguf" | head -1 | cut -d: -f1)
    poke "$FIX/tok.gguf" $((pos + 3)) X
    for m in mh.json mh.txt; do
        expect_exit "$m: one token edited fails" 1 "apr-hash -c $FIX/$m $FIX/tok.gguf"
        testing "$m: the changed key is named" "apr-hash -c $FIX/$m $FIX/tok.gguf 2>/dev/null" \
            "$FIX/tok.gguf: key 'tokenizer.ggml.tokens': MISMATCH (value differs from the manifest)
$FIX/tok.gguf: FAILED"
    done
    cp "$FIX/mh.gguf" "$FIX/hp.gguf"
    pos=$(grep -obUa 'llama.context_length' "$FIX/hp.gguf" | head -1 | cut -d: -f1)
    poke "$FIX/hp.gguf" $((pos + 20 + 4)) '\001'   # after the key: type (4 bytes), value
    expect_match "a hyperparameter edit is named" "key 'llama.context_length': MISMATCH" \
        "apr-hash -c $FIX/mh.json $FIX/hp.gguf"
    expect_exit "a hyperparameter edit fails" 1 "apr-hash -c $FIX/mh.json $FIX/hp.gguf"
    cp "$FIX/mh.gguf" "$FIX/nm.gguf"
    pos=$(grep -obUa 'apr-tools demo' "$FIX/nm.gguf" | head -1 | cut -d: -f1)
    poke "$FIX/nm.gguf" $((pos + 10)) D
    testing "general.name is not in the model hash" "apr-hash -c $FIX/mh.json $FIX/nm.gguf; echo \$?" \
        "$FIX/nm.gguf: OK (model hash; the file's bytes differ)
0"
    # a key the manifest lacks is EXTRA, one it names that the model lacks MISSING (no
    # whole-file or model line here: the keys are compared one by one)
    grep -v ' tokenizer\.ggml\.pre$' "$FIX/mh.txt" | grep -v '^[0-9a-f]\{64\}  \|^model ' | sed 's/  tokenizer\.ggml\.model$/  tokenizer.ggml.modeX/' > "$FIX/keys.txt"
    testing "a key added and one removed are named" "apr-hash -c $FIX/keys.txt $FIX/mh.gguf 2>/dev/null; echo \$?" \
        "$FIX/mh.gguf: key 'tokenizer.ggml.modeX': MISSING (in the manifest, not in the model)
$FIX/mh.gguf: key 'tokenizer.ggml.model': EXTRA (in the model, not in the manifest)
$FIX/mh.gguf: key 'tokenizer.ggml.pre': EXTRA (in the model, not in the manifest)
$FIX/mh.gguf: FAILED
1"
    # a manifest written before keys counted (no keys lines): tensors checked, with a note
    grep -v '^keys\{0,1\} ' "$FIX/mh.txt" > "$FIX/old.txt"
    testing "old manifest: tensors only" "apr-hash -c $FIX/old.txt $FIX/tok.gguf; echo \$?" \
        "$FIX/tok.gguf: OK (tensors; the manifest does not cover metadata)
0"
    expect_match "old manifest: the note" "old\\.txt: note: written before the model hash covered metadata" \
        "apr-hash -c $FIX/old.txt $FIX/tok.gguf"
    # the same model in every container apr-convert writes: one model hash
    if apr-convert -q "$FIX/mh.gguf" "$FIX/mh.apr" && apr-convert -q "$FIX/mh.gguf" "$FIX/mh.safetensors" &&
       apr-convert -q "$FIX/mh.apr" "$FIX/mh2.gguf" && apr-convert -q "$FIX/mh.gguf" "$FIX/mhhf/"; then
        want=$(apr-hash --tensors "$FIX/mh.gguf" | sed -n 's/^model  \([0-9a-f]*\) .*/\1/p')
        for f in mh.apr mh2.gguf; do
            testing "same model hash: $f" "apr-hash --tensors $FIX/$f | sed -n 's/^model  \\([0-9a-f]*\\) .*/\\1/p'" "$want"
        done
        # .safetensors stores llama's q/k rows permuted (Hugging Face order): the values agree
        want=$(apr-hash --content "$FIX/mh.gguf" | sed -n 's/^content-model  \([0-9a-f]*\) .*/\1/p')
        testing "same model content hash: mh.safetensors" \
            "apr-hash --content $FIX/mh.safetensors | sed -n 's/^content-model  \\([0-9a-f]*\\) .*/\\1/p'" "$want"
        expect_exit "-c the APR against the GGUF's manifest" 0 "apr-hash -c $FIX/mh.json $FIX/mh.apr"
        # a Hugging Face directory: tokenizer.json holds no SentencePiece scores
        testing "HF directory: only the scores differ" \
            "apr-hash --tensors $FIX/mh.gguf | grep '^key ' > $FIX/k1; apr-hash --tensors $FIX/mhhf | grep '^key ' > $FIX/k2; diff $FIX/k1 $FIX/k2 | grep '^[<>]' | sed 's/.*  //' | sort -u" \
            "tokenizer.ggml.scores"
    else
        skip "model hash across containers" "apr-convert failed"
    fi
else
    skip "model hash keys" "no mkfix"
fi

# An HF model and every conversion of it: one model hash (qwen2: no q/k permutation).
if [ -n "$SHARED" ] && [ -d "$SHARED/hf/qwen2-f32" ]; then
    H=$SHARED/hf/qwen2-f32
    apr-convert -q "$H" "$FIX/q.gguf" && apr-convert -q "$H" "$FIX/q.apr" &&
        apr-convert -q "$FIX/q.gguf" "$FIX/qback/" && apr-convert -q "$FIX/q.gguf" "$FIX/q.safetensors"
    want=$(apr-hash --tensors "$H" | sed -n 's/^model  \([0-9a-f]*\) .*/\1/p')
    for f in q.gguf q.apr qback q.safetensors; do
        testing "qwen2-f32 and its $f: same model hash" "apr-hash --tensors $FIX/$f | sed -n 's/^model  \\([0-9a-f]*\\) .*/\\1/p'" "$want"
    done
else
    skip "HF fixture model hash" "no shared hf/qwen2-f32"
fi

# apr-hash(1) MODEL HASH KEYS lists formats/canon.c's table, rule for rule.
sed -n 's/^    { "\([^"]*\)", \([01]\), .*/\1 \2/p' formats/canon.c > "$FIX/rules.code"
awk '/^\.Sh MODEL HASH KEYS/ { on = 1; next } /^\.Sh / { on = 0 }
     on && /^\.It Ql / { pat = $3; getline; print pat, ($1 == "counts:") ? 1 : 0 }' \
    man/apr-hash.1 > "$FIX/rules.man"
testing "man page key rules = canon_rules" "diff $FIX/rules.code $FIX/rules.man && wc -l < $FIX/rules.code" "12"

# Notes and warnings print paths escaped (a hostile name cannot reach the terminal raw).
mkdir -p "$FIX/esc"
printf 'x\n' > "$FIX/esc/f"
ln -s f "$FIX/esc/$(printf 'l\033[31mink')"
testing "a link's note is escaped" "apr-hash $FIX/esc 2>&1 >/dev/null | grep -c 'l\\\\x1b\\[31mink'" "1"
testing "no raw escape byte on stderr" "apr-hash $FIX/esc 2>&1 >/dev/null | tr -d -c '\\033' | wc -c" "0"
printf '%s  %s\n' "$ABC" "$FIX/esc/$(printf 'gone\033]0;t\007')" > "$FIX/esc.sums"
testing "-c: a missing hostile name is escaped" "apr-hash -c $FIX/esc.sums 2>&1 | tr -d -c '\\033\\007' | wc -c" "0"
