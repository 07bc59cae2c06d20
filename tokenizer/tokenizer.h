/* tokenizer.h - one interface over the tokenizer kinds (internal): llama2.c tokenizer.bin
 * (SentencePiece-style BPE with scores), HF tokenizer.json BPE with byte fallback (Llama,
 * TinyLlama, SmolLM, Gemma 3) or byte-level (GPT-2 from tokenizer.json or vocab.json +
 * merges.txt; Llama 3.x, Qwen2/2.5, SmolLM2: docs/TOKENIZERS.md), and BERT WordPiece
 * (tokenizer.json or vocab.txt).
 *
 * A tokenizer's tables (its el_tokenizer, vocabulary, merges, hash tables, added tokens)
 * live in one block (tokenizer/tok_mem.h): el_model_open measures the bytes they need
 * (EL_REGION_TOKENIZER in the plan), el_model_load builds them into that arena region; a
 * model used without a load, tools and tests build them into one exact heap block (the
 * path-based opens below, which el_tokenizer_close frees). Building parses with a bounded
 * transient (EL_TOK_TRANSIENT_MAX: a read window, one element at a time; never a whole
 * file or a whole-document cJSON tree for the hf-bpe / GPT-2 / GGUF-gpt2 backends). After
 * that they are read-only: encode and decode allocate nothing, so they may run after the
 * arena is committed. */
#ifndef EL_TOKENIZER_H
#define EL_TOKENIZER_H

#include "edgeload.h"
#include "tokenizer/tok_mem.h"

struct cJSON;
struct el_tok_mem; /* tokenizer/tok_mem.h */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct el_tokenizer el_tokenizer;

/* A tokenizer kind: a table of functions (Zephyr-driver style). */
typedef struct el_tokenizer_vtable {
    const char *name; /* "llama2c", "hf-bpe", ... */
    /* Encodes len bytes of UTF-8 text (invalid UTF-8 -> EL_E_INVALID naming the byte
     * offset). Writes at most cap ids; needing more -> EL_E_NOFIT with the count needed
     * in *n. add_bos prepends the BOS id. */
    el_status (*encode)(const el_tokenizer *t, const char *text, size_t len, bool add_bos,
                        int32_t *ids, size_t cap, size_t *n);
    /* The bytes token id stands for when it follows prev (leading-space rules), into
     * buf (capacity cap, NUL-terminated); *n = bytes written (excluding the NUL).
     * Byte-fallback tokens give their raw byte (which may be part of a UTF-8 sequence). */
    el_status (*decode)(const el_tokenizer *t, int32_t prev, int32_t id, char *buf,
                        size_t cap, size_t *n);
    /* Frees what a backend holds outside its tables' block; NULL for backends built
     * through tokenizer/tok_mem.h (everything in the block). */
    void (*close)(el_tokenizer *t);
} el_tokenizer_vtable;

/* Special ids, -1 where the tokenizer has none. GPT-2 (byte-level): bos = eos =
 * <|endoftext|> (50256 in the real vocabulary), no unk (every byte has a token). WordPiece:
 * bos = [CLS], eos = [SEP], and the BERT specials below. */
struct el_tokenizer {
    const el_tokenizer_vtable *vt;
    uint32_t vocab_size;
    int32_t bos_id;      /* prepended by encode's add_bos */
    int32_t eos_id;
    int32_t unk_id;      /* hf-bpe: model.unk_token; WordPiece: [UNK] (always present) */
    int32_t cls_id;      /* WordPiece: [CLS] (always present) */
    int32_t sep_id;      /* WordPiece: [SEP] (always present) */
    int32_t pad_id;      /* WordPiece: [PAD] */
    int32_t mask_id;     /* WordPiece: [MASK] */
    void *block;         /* the heap block holding the tables (el_tok_build_heap), freed by
                            el_tokenizer_close; NULL when they are in an arena */
};

/* Sets every special id of a new tokenizer to -1 (backends call it first). */
void el_tokenizer_base_init(el_tokenizer *t);

/* Opens a tokenizer file by content:
 *   tokenizer.json, model.type "BPE"   -> hf-bpe (byte fallback or ByteLevel, tokenizer/hf_bpe.c)
 *   tokenizer.json, model.type "WordPiece" -> wordpiece (lowercase from its BertNormalizer)
 *   another JSON object (vocab.json / encoder.json) -> GPT-2 byte-level BPE with the
 *                       merges.txt or vocab.bpe in the same folder (neither -> EL_E_INVALID)
 *   a text file of tokens, one a line (vocab.txt) -> wordpiece, lowercase from
 *                       tokenizer_config.json's do_lower_case in the same folder (default true)
 *   anything else      -> llama2.c tokenizer.bin
 * vocab_size is the model's (0: no check); a tokenizer of another size -> EL_E_INVALID with
 * both, except that hf-bpe (tokenizer.json BPE, GPT-2 files) accepts a model vocabulary
 * larger than the tokenizer (padded rows, Qwen2.5: 151,665 tokens, vocab_size 151,936);
 * decode gives nothing for the ids in between. */
el_status el_tokenizer_open(const char *path, uint32_t vocab_size, el_tokenizer **out);
/* The same with every table through mem (measure or build, tokenizer/tok_mem.h): the
 * backends' _mem variants below. The tokenizer belongs to mem's block (close it only if it
 * came from el_tok_build_heap). */
el_status el_tokenizer_open_mem(const char *path, uint32_t vocab_size, struct el_tok_mem *mem,
                                el_tokenizer **out);
void el_tokenizer_close(el_tokenizer *t);

/* Backends (el_tokenizer_open dispatches by content). */
/* llama2.c tokenizer.bin from bytes in memory (data, len; name for messages). vocab_size 0
 * = as many tokens as the file holds. Used by el_tokenizer_llama2c_open, tests and fuzzing. */
el_status el_tokenizer_llama2c_parse(const void *data, size_t len, const char *name,
                                     uint32_t vocab_size, el_tokenizer **out);
el_status el_tokenizer_llama2c_open(const char *path, uint32_t vocab_size, el_tokenizer **out);
/* The _mem forms of the backends build into mem (tokenizer/tok_mem.h: measure, or a block
 * such as the arena's tokenizer region) and take the same other arguments; the forms
 * without _mem build into an exact heap block (el_tok_build_heap) that close frees. */
el_status el_tokenizer_llama2c_parse_mem(const void *data, size_t len, const char *name,
                                         uint32_t vocab_size, el_tok_mem *mem,
                                         el_tokenizer **out);
el_status el_tokenizer_llama2c_open_mem(const char *path, uint32_t vocab_size,
                                        el_tok_mem *mem, el_tokenizer **out);
/* HF tokenizer.json with a BPE model (tokenizer/hf_bpe.c). */
el_status el_tokenizer_hf_bpe_open(const char *path, uint32_t vocab_size, el_tokenizer **out);
/* Streamed (tokenizer/hf_json.c): model.vocab, model.merges and added_tokens element by
 * element into the tables, the other parts captured (at most EL_HF_PART_MAX bytes each). */
el_status el_tokenizer_hf_bpe_open_mem(const char *path, uint32_t vocab_size,
                                       struct el_tok_mem *mem, el_tokenizer **out);
/* The same streamed from len bytes in memory (name for messages): fuzzing, tests. */
el_status el_tokenizer_hf_bpe_parse(const char *data, size_t len, const char *name,
                                    uint32_t vocab_size, el_tokenizer **out);
/* The same from a parsed tokenizer.json (root is only read; name for messages). */
el_status el_tokenizer_hf_bpe_from_json(const struct cJSON *root, const char *name,
                                        uint32_t vocab_size, el_tokenizer **out);
/* The tokenizer in a GGUF file's tokenizer.ggml.* metadata (tokenizer/gguf_tok.c):
 * model "gpt2" with pre "default"/"gpt2" (or none), or one that splits digits apart first
 * ("smollm", "starcoder", ...), becomes the equivalent tokenizer.json (tokens in id order,
 * merges, control and user-defined token types as added tokens matched in the text,
 * [Digits,] ByteLevel pre-tokenizer and decoder) built by the hf-bpe backend. bos_id is
 * tokenizer.ggml.bos_token_id when tokenizer.ggml.add_bos_token is true, else -1; eos_id is
 * tokenizer.ggml.eos_token_id. Model "llama": el_tokenizer_gguf_spm_open. Other models /
 * pre-tokenizers: EL_E_UNSUPPORTED naming them. */
struct el_gguf;
el_status el_tokenizer_gguf_open(const struct el_gguf *g, uint32_t vocab_size,
                                 el_tokenizer **out);
/* The same through mem: tokens and merges read on demand (el_gguf_iter), no tree. */
el_status el_tokenizer_gguf_open_mem(const struct el_gguf *g, uint32_t vocab_size,
                                     struct el_tok_mem *mem, el_tokenizer **out);
/* Model "llama" (SentencePiece BPE: Llama 2, Gemma), which el_tokenizer_gguf_open hands
 * on (tokenizer/gguf_spm.c): llama.cpp's SPM tokenizer with parse_special = true; see there
 * for the rules, the memory it holds and encode's work space. */
el_status el_tokenizer_gguf_spm_open(const struct el_gguf *g, uint32_t vocab_size,
                                     el_tokenizer **out);
el_status el_tokenizer_gguf_spm_open_mem(const struct el_gguf *g, uint32_t vocab_size,
                                         el_tok_mem *mem, el_tokenizer **out);
/* Model "bert" (WordPiece, llama.cpp's phantom-space vocabulary turned back into vocab.txt
 * form; tokenizer/gguf_wpm.c), which el_tokenizer_gguf_open hands on. */
el_status el_tokenizer_gguf_wpm_open(const struct el_gguf *g, uint32_t vocab_size,
                                     el_tokenizer **out);
el_status el_tokenizer_gguf_wpm_open_mem(const struct el_gguf *g, uint32_t vocab_size,
                                         el_tok_mem *mem, el_tokenizer **out);
/* Bytes of such a tokenizer's tables (its block; 0 for another kind). */
size_t el_tokenizer_gguf_spm_heap_bytes(const el_tokenizer *t);

/* GPT-2 byte-level BPE from vocab.json (= encoder.json) + merges.txt (= vocab.bpe)
 * (tokenizer/gpt2_files.c). vocab_size 0 = whatever the files hold; else fewer rows than
 * tokens -> EL_E_INVALID naming both (more rows are padding). <|endoftext|>, when in the vocabulary, is a special token
 * matched in the text (as GPT2TokenizerFast does) and is bos_id and eos_id. Errors
 * (EL_E_INVALID unless said): a missing merges file (EL_E_IO), a vocab.json that is not an
 * object of token -> integer id, duplicate or missing ids, a merges line that is not two
 * tokens, a merge naming a token not in the vocabulary or whose result is not in it, a byte
 * without its token. */
el_status el_tokenizer_gpt2_open(const char *vocab_json, const char *merges_txt,
                                 uint32_t vocab_size, el_tokenizer **out);
/* The same through mem: vocab.json streamed, merges.txt read by lines. */
el_status el_tokenizer_gpt2_open_mem(const char *vocab_json, const char *merges_txt,
                                     uint32_t vocab_size, struct el_tok_mem *mem,
                                     el_tokenizer **out);
/* The same from parsed vocab.json and merges text in memory (merges, mlen bytes; names for
 * messages). Used by el_tokenizer_open and fuzzing. */
el_status el_tokenizer_gpt2_from_json(const struct cJSON *vocab, const char *merges,
                                      size_t mlen, const char *name, uint32_t vocab_size,
                                      el_tokenizer **out);

/* BERT WordPiece from vocab.txt (one token per line) (tokenizer/wordpiece.c). lowercase:
 * uncased models (lower casing + accent stripping, as HF BertNormalizer with
 * lowercase=True, strip_accents=None). vocab_size 0 = as many tokens as the file has.
 * [UNK], [CLS] and [SEP] must be in the vocabulary (EL_E_INVALID naming the missing one);
 * a token twice, an empty line before the end, or invalid UTF-8 -> EL_E_INVALID.
 *
 * encode: HF's BertNormalizer (clean text: control characters, U+FFFD and NUL removed,
 * whitespace to ' '; CJK ideographs set apart; uncased: NFD, Mn removed, lower case),
 * BertPreTokenizer (split on whitespace, every punctuation character its own word), then
 * greedy longest-match-first WordPiece with "##" continuations, [UNK] for a word that
 * cannot be spelled or has more than 100 characters (max_input_chars_per_word). The
 * special tokens ([PAD] [UNK] [CLS] [SEP] [MASK], or tokenizer.json's added_tokens) are
 * matched verbatim in the raw text first, as HF does. add_bos prepends [CLS] only; use
 * el_tokenizer_encode_pair for model inputs.
 * decode (one token after prev): specials give nothing (skip_special_tokens); "##x" gives
 * "x"; other tokens get a leading ' ' unless first (prev < 0 or prev is [CLS]) or one of
 * . , ? ! -- HF's WordPiece decoder (cleanup true) cleans each token on its own, so this
 * gives HF's decode(ids, skip_special_tokens=True) except where a special other than [CLS]
 * starts the text (HF drops it and the next token is first; here it gets a space). */
el_status el_tokenizer_wordpiece_open(const char *vocab_txt, bool lowercase,
                                      uint32_t vocab_size, el_tokenizer **out);
el_status el_tokenizer_wordpiece_open_mem(const char *vocab_txt, bool lowercase,
                                          uint32_t vocab_size, el_tok_mem *mem,
                                          el_tokenizer **out);
/* From vocab.txt bytes in memory (name for messages). */
el_status el_tokenizer_wordpiece_parse(const char *data, size_t len, const char *name,
                                       bool lowercase, uint32_t vocab_size, el_tokenizer **out);
el_status el_tokenizer_wordpiece_parse_mem(const char *data, size_t len, const char *name,
                                           bool lowercase, uint32_t vocab_size,
                                           el_tok_mem *mem, el_tokenizer **out);
/* From a parsed tokenizer.json with model.type "WordPiece" (BertNormalizer or null
 * normalizer, BertPreTokenizer, WordPiece decoder). */
el_status el_tokenizer_wordpiece_from_json(const struct cJSON *root, const char *name,
                                           uint32_t vocab_size, el_tokenizer **out);
el_status el_tokenizer_wordpiece_from_json_mem(const struct cJSON *root, const char *name,
                                               uint32_t vocab_size, el_tok_mem *mem,
                                               el_tokenizer **out);

/* BERT inputs: [CLS] a [SEP] (b [SEP] when b != NULL), truncated longest-first (as HF's
 * default TruncationStrategy) to max_len ids in total; type_ids 0 for [CLS] a [SEP], 1 for
 * b [SEP] (type_ids may be NULL; an empty b still makes a pair: [CLS] a [SEP] [SEP], as
 * tokenizers' encode((a, "")) does). *truncated says whether anything was cut. Wordpiece
 * tokenizers only (EL_E_USAGE otherwise; also for max_len below the 2 or 3 special ids).
 * Allocates nothing. cap < needed -> EL_E_NOFIT with *n needed. Invalid UTF-8 in a or b
 * -> EL_E_INVALID naming the text and byte offset. */
el_status el_tokenizer_encode_pair(const el_tokenizer *t, const char *a, size_t alen,
                                   const char *b, size_t blen, size_t max_len, int32_t *ids,
                                   int32_t *type_ids, size_t cap, size_t *n, bool *truncated);

/* Reads and parses a JSON tokenizer file (at most EL_TOKENIZER_JSON_MAX bytes); the caller
 * frees *root with cJSON_Delete. */
#define EL_TOKENIZER_JSON_MAX (256ull << 20)
el_status el_tokenizer_read_json(const char *path, struct cJSON **root);

/* GPT-2's bytes_to_unicode: the character (UTF-8, 1 or 2 bytes, written to out) that
 * byte-level BPE uses for byte b; returns its length. */
size_t el_tokenizer_byte_char(unsigned b, char out[4]);

/* UTF-8 helpers shared by the backends. el_utf8_check returns the offset of the first
 * byte that does not start a valid sequence (overlongs, surrogates and > U+10FFFF are
 * invalid), or n when all of s[0..n) is valid. el_utf8_len is the length (1..4) of the
 * valid sequence starting at s[i] (i < n, s already checked). */
size_t el_utf8_check(const char *s, size_t n);
/* The byte a <0xXX> piece (len bytes, exactly that form, hex in either case) stands for,
 * or -1 if p is not such a piece (llama2.c and GGUF SentencePiece byte tokens). */
int el_tokenizer_byte_piece(const char *p, size_t len);
size_t el_utf8_len(const char *s, size_t n, size_t i);

static inline el_status el_tokenizer_encode(const el_tokenizer *t, const char *text,
                                            size_t len, bool add_bos, int32_t *ids,
                                            size_t cap, size_t *n) {
    return t->vt->encode(t, text, len, add_bos, ids, cap, n);
}
static inline el_status el_tokenizer_decode(const el_tokenizer *t, int32_t prev, int32_t id,
                                            char *buf, size_t cap, size_t *n) {
    return t->vt->decode(t, prev, id, buf, cap, n);
}

#endif /* EL_TOKENIZER_H */
