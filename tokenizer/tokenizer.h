/* tokenizer.h - one interface over the tokenizer kinds (internal): llama2.c tokenizer.bin
 * (SentencePiece-style BPE with scores), HF tokenizer.json BPE with byte fallback (Llama,
 * TinyLlama, SmolLM), and later GPT-2 byte-level BPE and BERT WordPiece.
 *
 * Tokenizers are built at model-open time (malloc allowed there) and are read-only after:
 * encode and decode allocate nothing, so they may run after the arena is committed. */
#ifndef EL_TOKENIZER_H
#define EL_TOKENIZER_H

#include "edgeload.h"

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
    void (*close)(el_tokenizer *t);
} el_tokenizer_vtable;

struct el_tokenizer {
    const el_tokenizer_vtable *vt;
    uint32_t vocab_size;
    int32_t bos_id;      /* -1 if none */
    int32_t eos_id;      /* -1 if none */
};

/* Opens a tokenizer file by content (tokenizer.json, llama2.c tokenizer.bin).
 * vocab_size is the model's; a tokenizer of another size -> EL_E_INVALID with both. */
el_status el_tokenizer_open(const char *path, uint32_t vocab_size, el_tokenizer **out);
void el_tokenizer_close(el_tokenizer *t);

/* Backends (el_tokenizer_open dispatches by content). */
/* llama2.c tokenizer.bin from bytes in memory (data, len; name for messages). vocab_size 0
 * = as many tokens as the file holds. Used by el_tokenizer_llama2c_open, tests and fuzzing. */
el_status el_tokenizer_llama2c_parse(const void *data, size_t len, const char *name,
                                     uint32_t vocab_size, el_tokenizer **out);
el_status el_tokenizer_llama2c_open(const char *path, uint32_t vocab_size, el_tokenizer **out);
/* HF tokenizer.json with a BPE model (tokenizer/hf_bpe.c). */
el_status el_tokenizer_hf_bpe_open(const char *path, uint32_t vocab_size, el_tokenizer **out);

/* UTF-8 helpers shared by the backends. el_utf8_check returns the offset of the first
 * byte that does not start a valid sequence (overlongs, surrogates and > U+10FFFF are
 * invalid), or n when all of s[0..n) is valid. el_utf8_len is the length (1..4) of the
 * valid sequence starting at s[i] (i < n, s already checked). */
size_t el_utf8_check(const char *s, size_t n);
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
