/* tok_read.h - a tokenizer file read front to back through a fixed window (internal;
 * vocab.txt, tokenizer.bin): the same calls over bytes in memory (the _parse entries, tests,
 * fuzzers) or over a file read with el_file_* in EL_TOK_READ_WINDOW pieces, so a build's
 * transient stays that window whatever the file's size. */
#ifndef EL_TOK_READ_H
#define EL_TOK_READ_H

#include "platform/platform.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EL_TOK_READ_WINDOW (64u << 10) /* bytes of a file held at a time (heap, transient) */

typedef struct el_tok_reader {
    const char *name;    /* for messages */
    const char *data;    /* memory: the bytes; file: the window (EL_TOK_READ_WINDOW) */
    uint64_t size;       /* bytes in the source */
    uint64_t pos;        /* bytes of the source consumed */
    el_file file;        /* file: open; memory: fd -1 */
    bool is_file;
    uint64_t win_off;    /* file: source offset of data[0] */
    size_t win_len;      /* file: bytes valid in data */
} el_tok_reader;

/* Over data[0..len) (not copied; must outlive the reader). */
void el_tok_reader_mem(el_tok_reader *r, const void *data, size_t len, const char *name);
/* Opens path (its size in r->size); el_tok_reader_close frees the window. */
el_status el_tok_reader_open(el_tok_reader *r, const char *path);
void el_tok_reader_close(el_tok_reader *r);
/* Back to the first byte. */
void el_tok_reader_rewind(el_tok_reader *r);
/* n bytes into dst (NULL: skipped); fewer than n left -> EL_E_INVALID (callers check
 * r->size - r->pos first for their own message). */
el_status el_tok_read(el_tok_reader *r, void *dst, size_t n);
/* The next line without its '\n' (*line valid until the next call; *got false at the end).
 * A line longer than the window -> EL_E_UNSUPPORTED naming the limit. */
el_status el_tok_read_line(el_tok_reader *r, const char **line, size_t *len, bool *got);

#endif /* EL_TOK_READ_H */
