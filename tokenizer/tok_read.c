/* tok_read.c - see tok_read.h. */
#include "tokenizer/tok_read.h"
#include "tokenizer/tok_mem.h"

#include <stdlib.h>
#include <string.h>

void el_tok_reader_mem(el_tok_reader *r, const void *data, size_t len, const char *name) {
    memset(r, 0, sizeof *r);
    r->name = name;
    r->data = data;
    r->size = len;
    r->file.fd = -1;
}

el_status el_tok_reader_open(el_tok_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->name = path;
    r->file.fd = -1;
    el_status s = el_file_open(&r->file, path, 0);
    if (s != EL_OK) return s;
    char *w = el_tok_temp_alloc(EL_TOK_READ_WINDOW);
    if (!w) {
        el_file_close(&r->file);
        return el_errorf(EL_E_NOMEM, "%s: out of memory for a %u-byte read window", path,
                         EL_TOK_READ_WINDOW);
    }
    r->data = w;
    r->size = r->file.size;
    r->is_file = true;
    return EL_OK;
}

void el_tok_reader_close(el_tok_reader *r) {
    if (!r->is_file) return;
    el_tok_temp_free((char *)r->data);
    r->data = NULL;
    el_file_close(&r->file);
    r->is_file = false;
}

void el_tok_reader_rewind(el_tok_reader *r) {
    r->pos = 0;
    r->win_off = 0;
    r->win_len = 0;
}

/* File: makes the window start at r->pos and hold as much as it can. */
static el_status refill(el_tok_reader *r) {
    uint64_t left = r->size - r->pos;
    size_t n = left < EL_TOK_READ_WINDOW ? (size_t)left : EL_TOK_READ_WINDOW;
    uint64_t keep_from = r->pos - r->win_off; /* window bytes not consumed yet */
    size_t kept = r->pos >= r->win_off && keep_from < r->win_len
                      ? r->win_len - (size_t)keep_from : 0;
    char *w = (char *)r->data;
    if (kept) memmove(w, w + keep_from, kept);
    r->win_off = r->pos;
    r->win_len = kept;
    if (n > kept) {
        el_status s = el_file_read_at(&r->file, w + kept, n - kept, r->pos + kept);
        if (s != EL_OK) return s;
        r->win_len = n;
    }
    return EL_OK;
}

el_status el_tok_read(el_tok_reader *r, void *dst, size_t n) {
    if (n > r->size - r->pos)
        return el_errorf(EL_E_INVALID, "%s: truncated: %zu bytes needed at byte %llu, %llu "
                         "left", r->name, n, (unsigned long long)r->pos,
                         (unsigned long long)(r->size - r->pos));
    if (!r->is_file) {
        if (dst && n) memcpy(dst, r->data + r->pos, n);
        r->pos += n;
        return EL_OK;
    }
    while (n > 0) {
        if (r->pos < r->win_off || r->pos >= r->win_off + r->win_len) {
            if (!dst) { /* skipped bytes past the window need no reading */
                r->pos += n;
                return EL_OK;
            }
            el_status s = refill(r);
            if (s != EL_OK) return s;
        }
        size_t at = (size_t)(r->pos - r->win_off);
        size_t k = r->win_len - at < n ? r->win_len - at : n;
        if (dst) {
            memcpy(dst, r->data + at, k);
            dst = (char *)dst + k;
        }
        r->pos += k;
        n -= k;
    }
    return EL_OK;
}

el_status el_tok_read_line(el_tok_reader *r, const char **line, size_t *len, bool *got) {
    *line = NULL;
    *len = 0;
    *got = false;
    if (r->pos >= r->size) return EL_OK;
    *got = true;
    if (!r->is_file) {
        const char *s = r->data + r->pos;
        size_t left = (size_t)(r->size - r->pos);
        const char *nl = memchr(s, '\n', left);
        *line = s;
        *len = nl ? (size_t)(nl - s) : left;
        r->pos += *len + (nl != NULL);
        return EL_OK;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (r->pos < r->win_off || r->pos > r->win_off + r->win_len) {
            el_status s = refill(r);
            if (s != EL_OK) return s;
        }
        size_t at = (size_t)(r->pos - r->win_off);
        const char *s = r->data + at;
        size_t have = r->win_len - at;
        const char *nl = memchr(s, '\n', have);
        bool at_end = r->win_off + r->win_len == r->size;
        if (nl || at_end) {
            *line = s;
            *len = nl ? (size_t)(nl - s) : have;
            r->pos += *len + (nl != NULL);
            return EL_OK;
        }
        if (pass == 0) { /* the line goes on past the window: start the window at it */
            el_status s2 = refill(r);
            if (s2 != EL_OK) return s2;
        }
    }
    return el_errorf(EL_E_UNSUPPORTED, "%s: a line at byte %llu is longer than %u bytes",
                     r->name, (unsigned long long)r->pos, EL_TOK_READ_WINDOW);
}
