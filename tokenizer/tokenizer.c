/* tokenizer.c - el_tokenizer_open: picks the backend from the file's content (a JSON object
 * is an HF tokenizer.json (tokenizer/hf_bpe.c), anything else a llama2.c tokenizer.bin) and
 * the UTF-8 helpers the backends share. */
#include "tokenizer/tokenizer.h"

#include "platform/platform.h"

#include <string.h>

size_t el_utf8_len(const char *s, size_t n, size_t i) {
    unsigned char c = (unsigned char)s[i];
    (void)n;
    if (c < 0x80) return 1;
    if (c < 0xe0) return 2;
    if (c < 0xf0) return 3;
    return 4;
}

size_t el_utf8_check(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i; /* continuation byte, 0xc0/0xc1 overlong lead, or > 0xf4 */
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

/* True if the path's file name ends with suffix. */
static bool ends_with(const char *path, const char *suffix) {
    size_t a = strlen(path), b = strlen(suffix);
    return a >= b && !strcmp(path + a - b, suffix);
}

el_status el_tokenizer_open(const char *path, uint32_t vocab_size, el_tokenizer **out) {
    if (!path || !out) return el_errorf(EL_E_USAGE, "el_tokenizer_open: NULL argument");
    *out = NULL;
    el_file f;
    el_status s = el_file_open(&f, path, 0);
    if (s != EL_OK) return s;
    unsigned char head[64];
    size_t n = f.size < sizeof head ? (size_t)f.size : sizeof head;
    s = n ? el_file_read_at(&f, head, n, 0) : EL_OK;
    el_file_close(&f);
    if (s != EL_OK) return s;
    size_t i = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\n' || head[i] == '\r'))
        i++;
    /* All whitespace so far is JSON too (a long indent): a llama2.c tokenizer.bin cannot
     * start with it (its max_token_length would be at least 0x09090909). */
    if (i == n ? n > 0 : head[i] == '{') return el_tokenizer_hf_bpe_open(path, vocab_size, out);
    /* SentencePiece's protobuf starts with field 1 (pieces), wire type 2: byte 0x0a. */
    if (n > 0 && head[0] == 0x0a && ends_with(path, ".model"))
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: SentencePiece .model files are not read; use the model's "
                         "tokenizer.json or a llama2.c tokenizer.bin",
                         path);
    return el_tokenizer_llama2c_open(path, vocab_size, out);
}

void el_tokenizer_close(el_tokenizer *t) {
    if (t) t->vt->close(t);
}
