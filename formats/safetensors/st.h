/*
 * st.h - SafeTensors reader (single file, directory, or model.safetensors.index.json
 * with shards) and writer.  config.json beside the weights is mapped into metadata.
 *
 * Reading (st_read.c has the byte layout and the config.json mapping table):
 *   - tensors come out in file order (sorted by data_offsets; shards in name order);
 *     shapes are SafeTensors' own order, outermost first (no reversal);
 *   - __metadata__ entries become STRING keys "safetensors.metadata.<name>";
 *   - an index's "metadata" object becomes "safetensors.index.metadata.<name>";
 *   - config.json becomes GGUF-style keys (general.architecture, {arch}.*) plus every
 *     top-level key as "hf.config.<key>" with its JSON type (objects stay OBJECT).
 *   - tokenizer.json (and its side files) becomes tokenizer.ggml.* keys plus its whole
 *     text as "tokenizer.huggingface.json" (st_tokenizer_read below).
 *   The result owns its mappings (one per shard); tensor names and data pointers
 *   borrow them and die with model_close().
 *
 * Writing (st_write.c): 8-byte aligned, space-padded header of compact JSON,
 * "__metadata__" first, data streamed tensor by tensor into a temporary file that
 * is renamed into place only when complete.
 */
#ifndef ST_H
#define ST_H

#include <stddef.h>
#include <stdint.h>

#include "../model.h"

struct sbuf;

/* Largest header the reader accepts (the Rust reader's MAX_HEADER_SIZE). */
#define ST_MAX_HEADER 100000000ULL

/*
 * Open path: a SafeTensors file, a directory (model.safetensors.index.json if present,
 * else its *.safetensors files: one file, or several loaded as shards in name order),
 * or an index file.  Everything is validated before returning; on failure m is left
 * zeroed and e names the file, the tensor or key, and the byte offset.
 */
int st_open(struct model *m, const char *path, struct err *e);
/* ---- Hugging Face hub cache (st_hfcache.c has the layout) */

/*
 * dir is a cache repository directory (<cache>/models--org--name, holding snapshots/):
 * 1 with *snap = the malloc()ed path of the snapshot refs/main names (or of the only
 * snapshot when there is no refs/main) and rev = its name; 0 when dir is not one; -1
 * with e set when refs/main is malformed, names a missing snapshot, or several
 * snapshots exist without refs/main.  rev may be NULL.  st_open calls it.
 */
int st_hf_repo_snapshot(const char *dir, char **snap, char *rev, size_t rev_cap, struct err *e);
/*
 * dir is (or links to) a cache snapshot, <cache>/models--org--name/snapshots/<rev>:
 * 1 with repo = "org/name" and rev = the commit (either may be NULL); else 0.
 */
int st_hf_snapshot_repo(const char *dir, char *repo, size_t repo_cap, char *rev, size_t rev_cap);
/*
 * 1 when path (a file of the cache snapshot snapshot_dir, usually a symlink into
 * ../../blobs/) resolves to a file inside the repository directory two levels above
 * the snapshot (models--org--name); 0 otherwise (a link leaving the cache, a dangling
 * link, or snapshot_dir not inside a models--* directory).
 */
int st_hf_link_in_cache(const char *snapshot_dir, const char *path);

/* One SafeTensors file in a caller-owned buffer (no config.json, no shards); buf
 * must outlive m. */
int st_open_mem(struct model *m, const void *buf, size_t n, const char *name, struct err *e);

/* The output stream a tensor_data producer writes to. */
struct st_out;
/* Append n bytes of the current tensor; 0, or -1 with e set. */
int st_out_write(struct st_out *out, const void *p, size_t n, struct err *e);

enum st_write_flags {
    /* Order tensors as the Rust serializer does (dtype descending, then name) instead
     * of keeping the model's order. */
    ST_WRITE_RUST_ORDER = 1 << 0,
};

struct st_write_opts {
    unsigned flags;             /* enum st_write_flags */
    /* 0: write one file at path.  > 0: path is a directory (created when missing);
     * tensors are packed in order into shards of at most this many data bytes (a
     * tensor larger than that gets a shard of its own) named
     * model-00001-of-0000N.safetensors, plus model.safetensors.index.json.  When
     * everything fits in one shard, the directory gets model.safetensors and no
     * index, as transformers' save_pretrained does. */
    uint64_t max_shard_bytes;
    /*
     * Optional producer of tensor data (as gguf_write_opts.tensor_data): NULL copies
     * t->size bytes from t->data.  Otherwise called once per tensor i (in write order)
     * and it must write exactly m->tensors[i].size bytes through st_out_write.  Lets a
     * converter stream changed data (widened, permuted) tensor by tensor.
     */
    int  (*tensor_data)(void *ctx, const struct model *m, uint64_t i, struct st_out *out,
                        struct err *e);
    void  *ctx;
};

#define ST_WRITE_OPTS_INIT { 0, 0, NULL, NULL }

/*
 * Write m's tensors as SafeTensors.  "__metadata__" is built from the STRING keys
 * "safetensors.metadata.*" (omitted when there are none); other metadata is not
 * written (see st_write_config).  Tensors whose dtype SafeTensors cannot hold
 * (quantized ggml types) are refused with ERR_UNSUPPORTED naming the tensor.  The
 * output appears only when complete: temporary files are unlinked on failure.
 * o may be NULL (defaults).
 */
int st_write(const struct model *m, const char *path, const struct st_write_opts *o,
             struct err *e);

/*
 * Hugging Face side files kept whole where the target has no place for them as such:
 *   ST_GENCFG_KEY   STRING  the text of generation_config.json, as read (a directory
 *                           source); st_write_config writes it back byte for byte.
 *   ST_CONFIG_KEY   STRING  in GGUF (apr-convert): config.json as st_config_text writes
 *                           it from the hf.config.* entries, i.e. the file itself for
 *                           a config.json transformers wrote; GGUF -> SafeTensors writes
 *                           it back while it agrees with the GGUF's hyperparameters.
 */
#define ST_GENCFG_KEY "apr_tools.hf.generation_config"
#define ST_CONFIG_KEY "apr_tools.hf.config"

/*
 * The text of config.json from m's "hf.config.<key>" entries, in their order, as
 * pretty JSON with 2-space indentation (transformers' layout), into b (empty when m
 * has none).  Returns 0, or -1 with e set.
 */
int st_config_text(const struct model *m, struct sbuf *b, struct err *e);

/*
 * Write dir/config.json (st_config_text; nothing when m has no hf.config.* entries)
 * and dir/generation_config.json (m's ST_GENCFG_KEY text, when it has one).
 */
int st_write_config(const struct model *m, const char *dir, struct err *e);

/* ---- tokenizer.json (st_tokenizer.c has the mapping table) */

/* Largest tokenizer.json the reader accepts. */
#define ST_MAX_TOKENIZER (256ULL << 20)

/*
 * Map dir/tokenizer.json (with tokenizer_config.json, generation_config.json and
 * chat_template.jinja beside it, and m's hf.config.* keys) into tokenizer.ggml.* keys
 * as llama.cpp's converter writes them, plus the whole text as the STRING key
 * "tokenizer.huggingface.json".  The keys go before m's first safetensors.* or hf.*
 * key; their strings live in m's arena.  No tokenizer.json: returns 0, adds nothing.
 * A malformed one: -1 with ERR_FORMAT (or ERR_LIMIT) naming the file and the offset.
 * st_open calls it for the directory of the weights.
 */
int st_tokenizer_read(struct model *m, const char *dir, struct err *e);
/*
 * st_tokenizer_read for tokenizer.json given as json[0, n) (copied into m's arena;
 * the caller keeps json), called name in messages (NULL: "tokenizer.json"), with no
 * side files beside it: only m's hf.config.* keys add to it.  For tests and fuzzers.
 */
int st_tokenizer_read_mem(struct model *m, const char *json, size_t n, const char *name,
                          struct err *e);

/*
 * Write dir/tokenizer.json: m's "tokenizer.huggingface.json" byte for byte when
 * present, else one synthesized from a "gpt2" or "llama" tokenizer.ggml.* vocabulary;
 * and dir/tokenizer_config.json (special tokens, add_bos/add_eos, chat template)
 * whenever m has tokenizer.ggml.tokens.  Each through a temporary file and rename.
 * Writes nothing and returns 0 when m has no tokenizer (or another family: bert, t5...).
 */
int st_write_tokenizer(const struct model *m, const char *dir, struct err *e);

#endif
