/* json_stream.h - a pull parser over a JSON document read through a fixed window
 * (internal): tokenizer files are streamed element by element into their tables instead of
 * being parsed into a whole cJSON tree. The source is a file (el_file_*, read in
 * EL_JS_WINDOW pieces; seekable, so a caller may come back to a remembered offset) or bytes
 * in memory (fuzzers, tests). Strictness matches el_json_parse: only JSON whitespace between
 * tokens, no raw control bytes in strings, valid escapes, no \u0000, strings valid UTF-8,
 * nesting at most EL_JSON_DEPTH_MAX. Heap held: the window and one decoded string (at most
 * EL_JS_STR_MAX bytes), both freed by el_js_close.
 *
 * Errors are EL_E_INVALID naming the source and the byte offset; after one, the stream
 * keeps returning it. */
#ifndef EL_JSON_STREAM_H
#define EL_JSON_STREAM_H

#include "edgeload.h"
#include "platform/platform.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define EL_JS_WINDOW (64u * 1024u)   /* bytes of the file held at a time */
#define EL_JS_STR_MAX (64u * 1024u)  /* bytes of one decoded string (a token, a key) */

typedef struct el_jstream {
    el_file file;          /* file source (fd -1 for memory) */
    const uint8_t *mem;    /* memory source, else NULL */
    uint64_t size;         /* bytes in the source */
    uint8_t *win;          /* file window (EL_JS_WINDOW bytes, heap) */
    uint64_t win_at;       /* source offset of win[0] */
    size_t win_len;        /* valid bytes in win */
    uint64_t pos;          /* offset of the next byte */
    char *str;             /* the last decoded string, NUL-terminated (heap) */
    size_t str_len;
    size_t str_cap;
    el_status err;         /* sticky */
    char name[512];        /* for messages */
} el_jstream;

/* Opens a file (1 byte to EL_TOKENIZER_JSON_MAX). */
el_status el_js_open_file(el_jstream *js, const char *path);
/* Streams len bytes at data (kept by the caller until el_js_close). */
el_status el_js_open_mem(el_jstream *js, const void *data, size_t len, const char *name);
void el_js_close(el_jstream *js);

/* Skips whitespace; *c = the next byte (not consumed), -1 at the end. */
el_status el_js_peek(el_jstream *js, int *c);
/* Offset of the next value (after whitespace) and a seek back to one. */
uint64_t el_js_tell(el_jstream *js);
void el_js_seek(el_jstream *js, uint64_t off);
/* A string value into js->str / *s (valid until the next string), *n bytes. */
el_status el_js_string(el_jstream *js, const char **s, size_t *n);
/* A number value (JSON grammar) as strtod reads it. */
el_status el_js_number(el_jstream *js, double *v);
/* Skips one value of any kind. */
el_status el_js_skip(el_jstream *js);
/* Object / array iteration: after el_js_begin(js, '{' or '['), call next with *first true
 * initially; *more false at the closing bracket (consumed). For objects, *key / *klen are
 * the member's name (js->str) and the ':' is consumed. */
el_status el_js_begin(el_jstream *js, char open);
el_status el_js_obj_next(el_jstream *js, bool *first, bool *more, const char **key,
                         size_t *klen);
el_status el_js_arr_next(el_jstream *js, bool *first, bool *more);
/* The next value, at most max bytes of text, parsed into a cJSON tree the caller deletes
 * (field names it when the value is larger: EL_E_INVALID). */
el_status el_js_capture(el_jstream *js, size_t max, const char *field, struct cJSON **out);
/* After the top-level value: only whitespace may follow. */
el_status el_js_finish(el_jstream *js);
/* EL_E_INVALID "<name>: not valid JSON at byte <pos>: <what>", made sticky. */
el_status el_js_fail(el_jstream *js, const char *what);

#endif /* EL_JSON_STREAM_H */
