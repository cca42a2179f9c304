#!/bin/sh
# demo.sh BUILD - the main job on the embedded default model: generate a tiny llama
# model with our own GGUF writer, then show what the tools say about it.
set -eu
B=${1:-build}
D=$B/demo
mkdir -p "$D"
run() { printf '\n$ %s\n' "$*"; "$@"; }
"$B/mkfix" demo "$D/demo.gguf"
cd "$D"
PATH=$(cd .. && pwd):$PATH
run apr-inspect demo.gguf
run apr-inspect --license demo.gguf
run apr-inspect --tensor blk.0.attn_q.weight demo.gguf
run apr-inspect --stats demo.gguf
# apr-hash: the manifest of the demo model, then the check a pipeline would run
run apr-hash -o demo.manifest.json demo.gguf
run cat demo.manifest.json
run apr-hash --check demo.manifest.json demo.gguf
# apr-convert: GGUF -> APR -> GGUF, checked, and both inspected
run apr-convert -v -f --verify demo.gguf demo.apr
run apr-inspect demo.apr
run apr-convert -v -f --verify demo.apr demo-back.gguf
run apr-inspect demo-back.gguf
run cmp demo.gguf demo-back.gguf
# apr-diff: the GGUF and its APR conversion hold the same model, tensor for tensor
run apr-diff --values --transpose-aware demo.gguf demo.apr
# and its Hugging Face form (llama Q/K rows un-permuted on the way; apr-diff undoes it to compare)
run apr-convert -f demo.gguf demo-hf/
run apr-diff --values --limit 3 demo.gguf demo-hf
# and the same model hash, whatever the container
printf '\n$ apr-hash --tensors demo.gguf demo.apr | grep ^model\n'
apr-hash --tensors demo.gguf demo.apr | grep '^model'
# apr-run: the model runs, and computes the same logits in every container it was converted to
run apr-run -n 8 --ignore-eos --tokens 1,267,268,269,270 demo.gguf
for m in demo.apr demo-back.gguf demo-hf; do
    run apr-run --tokens 1,267,268,269,270,100,3 --compare demo.gguf "$m"
done
