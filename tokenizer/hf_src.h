/* hf_src.h - where the hf-bpe backend's tables come from (internal): the three large parts
 * of a tokenizer (model.vocab, model.merges, added_tokens) are read element by element
 * through callbacks, so a tokenizer.json (streamed, tokenizer/hf_json.c), GPT-2's
 * vocab.json + merges.txt (tokenizer/gpt2_files.c), a GGUF file's metadata
 * (tokenizer/gguf_tok.c) or a cJSON tree all feed one build (tokenizer/hf_bpe.c) without a
 * whole-document tree. A source is read several times (the build counts, then fills), and
 * each pass must give the same elements in the same order. */
#ifndef EL_HF_SRC_H
#define EL_HF_SRC_H

#include "tokenizer/tok_mem.h"
#include "tokenizer/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* One model.vocab entry: token s[0..n) (no NUL inside) and its id as the file gives it
 * (any JSON value; the build checks that it is an integer id and names it when not). */
typedef el_status (*el_hf_vocab_fn)(void *u, const char *s, size_t n, const struct cJSON *id);
/* added_tokens[i] (any JSON value, valid during the call). */
typedef el_status (*el_hf_added_fn)(void *u, uint32_t i, const struct cJSON *o);
/* model.merges[i]: the pair a[0..al) b[0..bl). */
typedef el_status (*el_hf_merge_fn)(void *u, uint32_t i, const char *a, size_t al,
                                    const char *b, size_t bl);

/* The Split regexes the backend runs (matched by hand): Llama 3's (tiktoken cl100k's) and
 * Qwen2's, as their tokenizer.json files spell them. */
extern const char el_hf_pat_llama3[];
extern const char el_hf_pat_qwen2[];
/* Not a regex: the Split pattern gguf_tok.c gives for llama.cpp's default pre-tokenizer. */
extern const char el_hf_pat_ggml_default[];

typedef struct el_hf_src {
    /* Everything else of tokenizer.json: model's scalars, normalizer, pre_tokenizer,
     * decoder, post_processor. model.vocab / model.merges / added_tokens are there as
     * values of their type (possibly empty: the callbacks give the elements) or, when of
     * the wrong type, as they are (the build reports them). */
    const struct cJSON *root;
    const char *name;        /* for messages */
    void *ctx;
    el_status (*vocab)(void *ctx, el_hf_vocab_fn fn, void *u);
    el_status (*added)(void *ctx, el_hf_added_fn fn, void *u);  /* NULL: none */
    el_status (*merges)(void *ctx, el_hf_merge_fn fn, void *u); /* NULL: none */
    /* The number of merges when the source knows it without a pass (each then given
     * exactly once), else UINT64_MAX: the build counts with a pass first. */
    uint64_t n_merges;
    /* Optional: after the vocabulary is built, before the merges (GPT-2 files' check that
     * every byte has its token). t answers el_hf_bpe_find. */
    el_status (*vocab_done)(void *ctx, const el_tokenizer *t);
} el_hf_src;

/* The hf-bpe tokenizer from src, every table through mem (tokenizer/tok_mem.h); name is
 * for messages. */
el_status el_hf_bpe_build(const el_hf_src *src, const char *name, uint32_t vocab_size,
                          el_tok_mem *mem, el_tokenizer **out);
/* The id of token s[0..n) in an hf-bpe tokenizer's model vocabulary, -1 if absent. */
int32_t el_hf_bpe_find(const el_tokenizer *t, const char *s, size_t n);
/* Splits merge "a b" (s[0..n)): *sp = the offset of the one space; EL_E_INVALID naming
 * field[i] unless there is exactly one space with a token on either side. */
el_status el_hf_merge_split(const char *name, const char *field, uint32_t i, const char *s,
                            size_t n, size_t *sp);

/* WordPiece (tokenizer/wordpiece.c) from a tokenizer.json source: model.vocab and
 * added_tokens through the callbacks, normalizer / pre_tokenizer / model's scalars from
 * src->root. */
el_status el_tokenizer_wordpiece_from_src_mem(const el_hf_src *src, uint32_t vocab_size,
                                              el_tok_mem *mem, el_tokenizer **out);

/* Sources (tokenizer/hf_json.c). */
/* A parsed tokenizer.json (only read; kept by the caller while the source is used). */
void el_hf_src_tree(el_hf_src *src, const struct cJSON *root, const char *name);

/* A tokenizer.json streamed (tokenizer/json_stream.h): the first pass records where the
 * three tables are and captures the parts the build reads (normalizer, pre_tokenizer,
 * decoder, post_processor, model's scalars; each at most EL_HF_PART_MAX bytes of JSON,
 * EL_HF_PARTS_MAX together; other keys are skipped) into a small tree. One added token at
 * a time is captured the same way (at most EL_HF_PART_MAX). */
#define EL_HF_PART_MAX (64u * 1024u)
#define EL_HF_PARTS_MAX (256u * 1024u)
typedef struct el_hf_stream {
    struct el_jstream *js;
    struct cJSON *root;      /* the small tree (src.root), owned */
    uint64_t vocab_at;       /* offsets of the tables' values; UINT64_MAX = absent */
    uint64_t merges_at;
    uint64_t added_at;
    uint64_t n_merges;       /* elements of model.merges (counted while scanning) */
    uint64_t part_bytes;     /* captured so far (EL_HF_PARTS_MAX) */
    char *pair;              /* a merge's first half while its second is read (heap) */
    size_t pair_cap;
} el_hf_stream;
/* Scans js (opened by the caller) into hs and fills src. el_hf_stream_free frees hs's
 * heap (not js). */
el_status el_hf_stream_open(el_hf_stream *hs, struct el_jstream *js, el_hf_src *src);
void el_hf_stream_free(el_hf_stream *hs);
/* An object of token -> id at offset at of js (model.vocab; GPT-2's vocab.json), given to
 * fn in file order. */
el_status el_hf_stream_vocab(struct el_jstream *js, uint64_t at, el_hf_vocab_fn fn, void *u);

#endif /* EL_HF_SRC_H */
