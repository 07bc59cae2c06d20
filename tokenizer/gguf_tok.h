/* gguf_tok.h - helpers shared by the GGUF tokenizer backends (internal): gguf_tok.c (model
 * "gpt2") and gguf_spm.c (model "llama", SentencePiece). */
#ifndef EL_GGUF_TOK_H
#define EL_GGUF_TOK_H

#include "loader/formats/gguf.h"

#include <stddef.h>
#include <stdint.h>

#define GT_TOKEN_MAX (64u * 1024u) /* bytes of one token or merge */

/* llama.cpp's token types (tokenizer.ggml.token_type). */
enum { GT_NORMAL = 1, GT_UNKNOWN = 2, GT_CONTROL = 3, GT_USER_DEFINED = 4, GT_UNUSED = 5,
       GT_BYTE = 6 };

/* The string array of the metadata under key (required) into *out. */
el_status el_gt_str_array(const el_gguf *g, const char *key, const el_gguf_value **out);
/* Reads the next string of it (element i, for messages) into *buf, grown as needed up to
 * GT_TOKEN_MAX + 1 bytes, NUL-terminated; an inner NUL -> EL_E_INVALID. */
el_status el_gt_next_str(const el_gguf *g, el_gguf_iter *it, const char *key, uint64_t i,
                         char **buf, size_t *cap);
/* An optional integer id key: -1 if absent, -2 if not an id in 0..INT32_MAX. */
int64_t el_gt_meta_id(const el_gguf *g, const char *key);

#endif /* EL_GGUF_TOK_H */
