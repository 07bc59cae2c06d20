/* tok_mem.h - where a tokenizer's tables live (internal).
 *
 * A tokenizer keeps everything it reads after open (its el_tokenizer, vocabulary, merges,
 * scores, hash tables, added tokens) in one block: the arena's tokenizer region when a model
 * is loaded, or a heap block of exactly the size needed for tools and tests. The size is not
 * known before parsing, so a backend's build runs twice with the same input:
 *   1. measure: allocations come from the heap, and `used` counts them as a bump allocator
 *      starting at a 4 KiB-aligned base would (padding included); then all are freed;
 *   2. build: the same allocations, in the same order, bump from a block of that size.
 * A build must therefore allocate deterministically (the same sizes and alignments in the
 * same order for the same input). Work space a build needs only while parsing (a read
 * buffer, one JSON element) is the transient: plain heap, freed before the build returns,
 * at most EL_TOK_TRANSIENT_MAX bytes in total, so peak RSS stays within arena + 4 MiB. */
#ifndef EL_TOK_MEM_H
#define EL_TOK_MEM_H

#include "edgeload.h"

#include <stddef.h>
#include <stdint.h>

#define EL_TOK_TRANSIENT_MAX (1u << 20) /* heap a build may hold besides its tables */

typedef struct el_tok_mem {
    uint8_t *base;  /* the block (4 KiB aligned in an arena); NULL in measure mode */
    size_t cap;     /* bytes in the block */
    size_t used;    /* bytes allocated, padding included */
    void *pieces;   /* measure mode: the heap pieces, linked, freed by el_tok_mem_release */
} el_tok_mem;

/* Measure mode (el_tok_mem_release frees what it handed out). */
void el_tok_mem_measure(el_tok_mem *m);
/* Build mode over base[0..cap) (base aligned to at least 64 bytes). */
void el_tok_mem_block(el_tok_mem *m, void *base, size_t cap);
/* bytes (may be 0) aligned to align (a power of two <= 4096), zeroed. NULL when the block is
 * full or the heap is exhausted; callers turn that into EL_E_NOMEM naming the table. */
void *el_tok_alloc(el_tok_mem *m, size_t bytes, size_t align);
/* n * size bytes, NULL on overflow as well. */
void *el_tok_alloc_array(el_tok_mem *m, size_t n, size_t size, size_t align);
/* Copies s[0..len) and a NUL. */
char *el_tok_strdup(el_tok_mem *m, const char *s, size_t len);
void el_tok_mem_release(el_tok_mem *m); /* measure mode: frees the pieces; build: nothing */

/* Transient work space for the build running on this thread (read windows): while a range
 * is set (el_model_load lends the arena's staging region, unused until the weights stream)
 * el_tok_temp_alloc bumps from it, else it mallocs; el_tok_temp_free frees only what malloc
 * gave. el_tok_temp_set(NULL, 0) ends the loan. */
void el_tok_temp_set(void *base, size_t cap);
void *el_tok_temp_alloc(size_t bytes);
void el_tok_temp_free(void *p);

struct el_tokenizer;
/* A backend's build: every table through mem (see above). */
typedef el_status (*el_tok_build_fn)(const void *args, el_tok_mem *mem,
                                     struct el_tokenizer **out);
/* Bytes build(args) needs (measure mode). */
el_status el_tok_measure(el_tok_build_fn build, const void *args, size_t *bytes);
/* Measures, then builds into one heap block of exactly that size that the tokenizer owns
 * (el_tokenizer_close frees it): the backends' path-based opens, tools and tests. */
el_status el_tok_build_heap(el_tok_build_fn build, const void *args, struct el_tokenizer **out);

#endif /* EL_TOK_MEM_H */
