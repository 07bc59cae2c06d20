/* json_stream.c - see json_stream.h. */
#include "tokenizer/json_stream.h"
#include "tokenizer/tok_mem.h"

#include "loader/safetensors.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

el_status el_js_fail(el_jstream *js, const char *what) {
    if (js->err != EL_OK) return js->err;
    js->err = el_errorf(EL_E_INVALID, "%s: not valid JSON at byte %llu of %llu: %s", js->name,
                        (unsigned long long)js->pos, (unsigned long long)js->size, what);
    return js->err;
}

static void js_init(el_jstream *js, const char *name) {
    memset(js, 0, sizeof *js);
    js->file.fd = -1;
    snprintf(js->name, sizeof js->name, "%s", name ? name : "JSON");
}

el_status el_js_open_file(el_jstream *js, const char *path) {
    js_init(js, path);
    el_status s = el_file_open(&js->file, path, 0);
    if (s != EL_OK) return s;
    js->size = js->file.size;
    if (js->size == 0 || js->size > EL_TOKENIZER_JSON_MAX) {
        el_js_close(js);
        return el_errorf(EL_E_INVALID, "%s: %llu bytes: a tokenizer file must be 1 byte to "
                         "%llu MiB", path, (unsigned long long)js->size,
                         (unsigned long long)(EL_TOKENIZER_JSON_MAX >> 20));
    }
    js->win = el_tok_temp_alloc(EL_JS_WINDOW);
    if (!js->win) {
        el_js_close(js);
        return el_errorf(EL_E_NOMEM, "%s: out of memory for a %u-byte read window", path,
                         EL_JS_WINDOW);
    }
    return EL_OK;
}

el_status el_js_open_mem(el_jstream *js, const void *data, size_t len, const char *name) {
    js_init(js, name);
    if (!data || len == 0)
        return el_errorf(EL_E_INVALID, "%s: empty JSON: expected an object", js->name);
    js->mem = data;
    js->size = len;
    return EL_OK;
}

void el_js_close(el_jstream *js) {
    if (js->file.fd >= 0) el_file_close(&js->file);
    js->file.fd = -1;
    el_tok_temp_free(js->win);
    free(js->str);
    js->win = NULL;
    js->str = NULL;
    js->str_cap = 0;
}

/* The bytes from pos on that are in memory: *avail of them (at least 8 unless the source
 * ends sooner); NULL at the end or on a read error (sticky). */
static const uint8_t *js_span(el_jstream *js, size_t *avail) {
    if (js->err != EL_OK || js->pos >= js->size) return NULL;
    if (js->mem) {
        *avail = (size_t)(js->size - js->pos);
        return js->mem + js->pos;
    }
    uint64_t end = js->win_at + js->win_len;
    if (js->pos < js->win_at || js->pos >= end || (end - js->pos < 8 && end < js->size)) {
        uint64_t left = js->size - js->pos;
        size_t n = left < EL_JS_WINDOW ? (size_t)left : EL_JS_WINDOW;
        el_status s = el_file_read_at(&js->file, js->win, n, js->pos);
        if (s != EL_OK) {
            js->err = s;
            js->win_len = 0;
            return NULL;
        }
        js->win_at = js->pos;
        js->win_len = n;
    }
    *avail = (size_t)(js->win_at + js->win_len - js->pos);
    return js->win + (js->pos - js->win_at);
}

/* The byte at pos without consuming it; -1 at the end or on a read error (sticky). */
static inline int js_at(el_jstream *js) {
    size_t avail;
    const uint8_t *p = js_span(js, &avail);
    return p ? *p : -1;
}

/* Bytes at p[0..avail) that need no care inside a string (no quote, backslash or control
 * byte). With check, cut before a UTF-8 sequence the span may end inside, and *bad = offset
 * of invalid UTF-8 within them (else the count). */
static size_t js_plain(const uint8_t *p, size_t avail, size_t *bad, bool check) {
    size_t k = 0;
    bool ascii = true;
    while (k < avail && p[k] != '"' && p[k] != '\\' && p[k] >= 0x20) ascii &= p[k++] < 0x80;
    *bad = k;
    if (!check || ascii) return k;
    size_t e = el_utf8_check((const char *)p, k);
    if (e < k && k == avail && k - e < 4) k = e; /* perhaps cut by the window: retry */
    *bad = e < k ? e : k;
    return k;
}

el_status el_js_peek(el_jstream *js, int *c) {
    for (;;) {
        int b = js_at(js);
        if (b == ' ' || b == '\t' || b == '\n' || b == '\r') {
            js->pos++;
            continue;
        }
        if (js->err != EL_OK) return js->err;
        if (b >= 0 && b < 0x20) {
            char what[96];
            snprintf(what, sizeof what, "control byte 0x%02x between tokens (only space, tab, "
                     "CR and LF may separate them)", (unsigned)b);
            return el_js_fail(js, what);
        }
        *c = b;
        return EL_OK;
    }
}

uint64_t el_js_tell(el_jstream *js) {
    int c = -1;
    (void)el_js_peek(js, &c);
    return js->pos;
}

void el_js_seek(el_jstream *js, uint64_t off) { js->pos = off; }

/* Expects byte want next (after whitespace) and consumes it. */
static el_status js_expect(el_jstream *js, char want, const char *what) {
    int c = -1;
    el_status s = el_js_peek(js, &c);
    if (s != EL_OK) return s;
    if (c != want) return el_js_fail(js, c < 0 ? "the text ends too early (truncated?)" : what);
    js->pos++;
    return EL_OK;
}

static el_status js_put(el_jstream *js, const char *b, size_t n) {
    if (js->str_len + n + 1 > js->str_cap) {
        if (js->str_len + n + 1 > EL_JS_STR_MAX + 1) {
            char what[96];
            snprintf(what, sizeof what, "a string longer than %u bytes (the most a token or "
                     "name may have)", EL_JS_STR_MAX);
            return el_js_fail(js, what);
        }
        size_t cap = js->str_cap ? js->str_cap * 2 : 256;
        if (cap > EL_JS_STR_MAX + 1) cap = EL_JS_STR_MAX + 1;
        if (cap < js->str_len + n + 1) cap = js->str_len + n + 1;
        char *p = realloc(js->str, cap);
        if (!p) return js->err = el_errorf(EL_E_NOMEM, "%s: out of memory", js->name);
        js->str = p;
        js->str_cap = cap;
    }
    memcpy(js->str + js->str_len, b, n);
    js->str_len += n;
    js->str[js->str_len] = 0;
    return EL_OK;
}

static int js_hex4(el_jstream *js, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = js_at(js);
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v << 4 | (unsigned)d;
        js->pos++;
    }
    return 0;
}

/* A \uXXXX escape (pos after the 'u'), with a following low surrogate for a high one. */
static el_status js_unicode(el_jstream *js) {
    unsigned cp, lo;
    if (js_hex4(js, &cp)) return el_js_fail(js, "invalid \\u escape: expected 4 hex digits");
    if (cp == 0) return el_js_fail(js, "\\u0000 in a string: NUL is not allowed");
    if (cp >= 0xdc00 && cp <= 0xdfff) return el_js_fail(js, "a lone UTF-16 low surrogate");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (js_at(js) != '\\') return el_js_fail(js, "a UTF-16 high surrogate without its pair");
        js->pos++;
        if (js_at(js) != 'u') return el_js_fail(js, "a UTF-16 high surrogate without its pair");
        js->pos++;
        if (js_hex4(js, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return el_js_fail(js, "a UTF-16 high surrogate without its pair");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    return js_put(js, u, n);
}

el_status el_js_string(el_jstream *js, const char **s, size_t *n) {
    el_status st = js_expect(js, '"', "expected a string");
    if (st != EL_OK) return st;
    uint64_t start = js->pos;
    js->str_len = 0;
    if ((st = js_put(js, "", 0)) != EL_OK) return st;
    for (;;) {
        size_t avail = 0, bad;
        const uint8_t *run = js_span(js, &avail);
        size_t plain = run ? js_plain(run, avail, &bad, false) : 0;
        if (plain) { /* (UTF-8 is checked on the whole string below) */
            if ((st = js_put(js, (const char *)run, plain)) != EL_OK) return st;
            js->pos += plain;
            continue;
        }
        int c = js_at(js);
        if (c < 0) {
            if (js->err != EL_OK) return js->err;
            js->pos = start - 1;
            return el_js_fail(js, "a string is not terminated (truncated file?)");
        }
        js->pos++;
        if (c == '"') break;
        if (c < 0x20) {
            js->pos--;
            return el_js_fail(js, "a raw control byte in a string (JSON requires it escaped)");
        }
        if (c != '\\') {
            char b = (char)c;
            if ((st = js_put(js, &b, 1)) != EL_OK) return st;
            continue;
        }
        int e = js_at(js);
        js->pos++;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e > 0 ? strchr(from, e) : NULL;
        if (e == 'u') {
            st = js_unicode(js);
        } else if (k) {
            st = js_put(js, &to[k - from], 1);
        } else {
            js->pos--;
            st = el_js_fail(js, "an invalid escape in a string");
        }
        if (st != EL_OK) return st;
    }
    size_t bad = el_utf8_check(js->str, js->str_len);
    if (bad != js->str_len) {
        js->pos = start;
        return el_js_fail(js, "invalid UTF-8 in a string (JSON text is UTF-8; the file is "
                              "corrupt)");
    }
    *s = js->str;
    *n = js->str_len;
    return EL_OK;
}

/* Whether b[0..n) is a JSON number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool js_number_ok(const char *b, size_t n) {
    size_t i = 0, d;
    if (i < n && b[i] == '-') i++;
    if (i < n && b[i] == '0') {
        i++;
    } else {
        for (d = i; i < n && b[i] >= '0' && b[i] <= '9'; i++) {}
        if (i == d) return false;
    }
    if (i < n && b[i] == '.') {
        for (d = ++i; i < n && b[i] >= '0' && b[i] <= '9'; i++) {}
        if (i == d) return false;
    }
    if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        if (i < n && (b[i] == '+' || b[i] == '-')) i++;
        for (d = i; i < n && b[i] >= '0' && b[i] <= '9'; i++) {}
        if (i == d) return false;
    }
    return i == n;
}

el_status el_js_number(el_jstream *js, double *v) {
    int c = -1;
    el_status s = el_js_peek(js, &c);
    if (s != EL_OK) return s;
    char buf[64];
    size_t n = 0;
    for (;; js->pos++) {
        c = js_at(js);
        if (!(c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9')))
            break;
        if (n + 1 >= sizeof buf) return el_js_fail(js, "a number longer than 62 characters");
        buf[n++] = (char)c;
    }
    if (js->err != EL_OK) return js->err;
    if (n == 0) return el_js_fail(js, "expected a value");
    if (!js_number_ok(buf, n)) return el_js_fail(js, "a malformed number");
    buf[n] = 0;
    if (n < 16 && buf[0] != '-' && !strpbrk(buf, ".eE")) { /* an id: exact, no strtod */
        uint64_t u = 0;
        for (size_t i = 0; i < n; i++) u = u * 10 + (uint64_t)(buf[i] - '0');
        *v = (double)u;
        return EL_OK;
    }
    *v = strtod(buf, NULL);
    return EL_OK;
}

/* Skips a literal true / false / null. */
static el_status js_literal(el_jstream *js) {
    static const char *const lits[] = {"true", "false", "null"};
    int c = js_at(js);
    for (size_t i = 0; i < 3; i++) {
        if (c != lits[i][0]) continue;
        for (const char *p = lits[i]; *p; p++, js->pos++)
            if (js_at(js) != *p) return el_js_fail(js, "expected a value");
        return EL_OK;
    }
    return el_js_fail(js, c < 0 ? "the text ends too early (truncated?)" : "expected a value");
}

static el_status js_skip(el_jstream *js, int depth) {
    int c = -1;
    el_status s = el_js_peek(js, &c);
    if (s != EL_OK) return s;
    if (c == '"') {
        /* Skipped strings are checked as read ones are but not kept past the window. */
        js->pos++;
        uint64_t start = js->pos;
        for (;;) {
            size_t avail = 0, bad = 0;
            const uint8_t *sp = js_span(js, &avail);
            size_t k = sp ? js_plain(sp, avail, &bad, true) : 0;
            if (bad < k) {
                js->pos += bad;
                return el_js_fail(js, "invalid UTF-8 in a string (JSON text is UTF-8; the "
                                      "file is corrupt)");
            }
            if (k) {
                js->pos += k;
                continue;
            }
            int b = js_at(js);
            if (b < 0) {
                if (js->err != EL_OK) return js->err;
                js->pos = start - 1;
                return el_js_fail(js, "a string is not terminated (truncated file?)");
            }
            if (b == '"') break;
            if (b < 0x20) return el_js_fail(js, "a raw control byte in a string (JSON requires "
                                                "it escaped)");
            if (b == '\\') {
                js->pos++;
                int e = js_at(js);
                if (e == 'u') {
                    js->pos++;
                    unsigned v;
                    if (js_hex4(js, &v)) return el_js_fail(js, "invalid \\u escape: expected 4 "
                                                               "hex digits");
                    if (v == 0) return el_js_fail(js, "\\u0000 in a string: NUL is not allowed");
                    continue;
                }
                if (e <= 0 || !strchr("\"\\/bfnrt", e))
                    return el_js_fail(js, "an invalid escape in a string");
            } else if (b >= 0x80) {
                /* One UTF-8 sequence, read byte by byte through the window. */
                char u[4] = {(char)b};
                size_t len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
                for (size_t k = 1; k < len; k++) {
                    js->pos++;
                    int cb = js_at(js);
                    u[k] = (char)(cb < 0 ? 0 : cb);
                }
                if (el_utf8_check(u, len) != len) {
                    js->pos -= len - 1;
                    return el_js_fail(js, "invalid UTF-8 in a string (JSON text is UTF-8; the "
                                          "file is corrupt)");
                }
            }
            js->pos++;
        }
        js->pos++;
        return EL_OK;
    }
    if (c == '{' || c == '[') {
        if (depth >= EL_JSON_DEPTH_MAX) {
            char what[64];
            snprintf(what, sizeof what, "JSON nests deeper than %d", EL_JSON_DEPTH_MAX);
            return el_js_fail(js, what);
        }
        js->pos++;
        bool first = true, more = true;
        while (s == EL_OK) {
            if (c == '{') {
                const char *k;
                size_t kl;
                s = el_js_obj_next(js, &first, &more, &k, &kl);
            } else {
                s = el_js_arr_next(js, &first, &more);
            }
            if (s != EL_OK || !more) break;
            s = js_skip(js, depth + 1);
        }
        return s;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        double v;
        return el_js_number(js, &v);
    }
    return js_literal(js);
}

el_status el_js_skip(el_jstream *js) { return js_skip(js, 1); }

el_status el_js_begin(el_jstream *js, char open) {
    return js_expect(js, open, open == '{' ? "expected an object" : "expected an array");
}

el_status el_js_obj_next(el_jstream *js, bool *first, bool *more, const char **key,
                         size_t *klen) {
    int c = -1;
    el_status s = el_js_peek(js, &c);
    if (s != EL_OK) return s;
    if (c == '}' && *first) {
        js->pos++;
        *more = false;
        return EL_OK;
    }
    if (!*first) {
        if (c == '}') {
            js->pos++;
            *more = false;
            return EL_OK;
        }
        if ((s = js_expect(js, ',', "expected ',' or '}' in an object")) != EL_OK) return s;
    }
    *first = false;
    if ((s = el_js_string(js, key, klen)) != EL_OK) return s;
    if ((s = js_expect(js, ':', "expected ':' after an object key")) != EL_OK) return s;
    *more = true;
    return EL_OK;
}

el_status el_js_arr_next(el_jstream *js, bool *first, bool *more) {
    int c = -1;
    el_status s = el_js_peek(js, &c);
    if (s != EL_OK) return s;
    if (c == ']') {
        js->pos++;
        *more = false;
        return EL_OK;
    }
    if (!*first && (s = js_expect(js, ',', "expected ',' or ']' in an array")) != EL_OK)
        return s;
    *first = false;
    *more = true;
    return EL_OK;
}

el_status el_js_capture(el_jstream *js, size_t max, const char *field, cJSON **out) {
    *out = NULL;
    uint64_t start = el_js_tell(js);
    el_status s = el_js_skip(js);
    if (s != EL_OK) return s;
    uint64_t len = js->pos - start;
    if (len > max)
        return el_errorf(EL_E_INVALID, "%s: %s takes %llu bytes of JSON: at most %zu are read "
                         "for it", js->name, field, (unsigned long long)len, max);
    if (js->mem) return el_json_parse((const char *)js->mem + start, (size_t)len, js->name, out);
    char *text = malloc((size_t)len + 1);
    if (!text) return el_errorf(EL_E_NOMEM, "%s: out of memory for %s", js->name, field);
    s = el_file_read_at(&js->file, text, (size_t)len, start);
    if (s == EL_OK) s = el_json_parse(text, (size_t)len, js->name, out);
    free(text);
    return s;
}

el_status el_js_finish(el_jstream *js) {
    int c = -1;
    el_status s = el_js_peek(js, &c);
    if (s != EL_OK) return s;
    if (c >= 0) return el_js_fail(js, "unexpected bytes after the JSON value");
    return EL_OK;
}
