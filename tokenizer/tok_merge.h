/* tok_merge.h - SentencePiece-style merging in O(m log m) (internal; llama2c_tok.c and
 * gguf_spm.c). The m symbols of a stretch are a linked list; every adjacent pair whose
 * concatenation is a token sits in a binary heap ordered by that token's score, higher
 * first, then by position, leftmost first; the best pair merges (the left symbol becomes
 * the token, the right leaves the list) and its neighbours' pairs are looked up again,
 * until no pair is a token. That is the rescanning loop's choice at every step (best
 * score, leftmost among equals), so the ids are the same. Allocates nothing: the caller
 * gives EL_TOK_MERGE_INTS int32 a symbol. */
#ifndef EL_TOK_MERGE_H
#define EL_TOK_MERGE_H

#include <stddef.h>
#include <stdint.h>

#define EL_TOK_MERGE_INTS 6 /* int32 of work space per symbol */

/* The token whose text is symbol a's text followed by b's, or -1 (symbols are the
 * backend's: token ids, or its own negative codes for characters that are no token). */
typedef int32_t (*el_tok_pair_fn)(const void *ctx, int32_t a, int32_t b);

typedef struct el_tok_merge {
    el_tok_pair_fn pair;
    const void *ctx;
    const float *score; /* [vocabulary] merge priority of each token */
    int32_t *sym;       /* [m] the symbols; the caller fills them before el_tok_merge_run */
    int32_t *nx, *pv;   /* [m] list links, -1 at the ends */
    int32_t *pid;       /* [m] token of pair (i, nx[i]), -1 none */
    int32_t *h;         /* [m] heap of the positions with a pair, best first */
    int32_t *at;        /* [m] a position's place in h, -1 out of it */
    size_t hn;          /* entries in h */
} el_tok_merge;

/* Points w's arrays into work (EL_TOK_MERGE_INTS * m int32, m <= INT32_MAX). */
void el_tok_merge_init(el_tok_merge *w, int32_t *work, size_t m, el_tok_pair_fn pair,
                       const void *ctx, const float *score);
/* Links sym[0..m) (m >= 1) and merges. The result: for (i = 0; i >= 0; i = w->nx[i])
 * sym[i]. */
void el_tok_merge_run(el_tok_merge *w, size_t m);

#endif /* EL_TOK_MERGE_H */
