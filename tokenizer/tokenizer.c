/* tokenizer.c - el_tokenizer_open: picks the backend from the file's content (see
 * tokenizer.h), the JSON reading and the UTF-8 helpers the backends share. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/hf_src.h"
#include "tokenizer/json_stream.h"
#include "tokenizer/tok_mem.h"

#include "loader/safetensors.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
            /* ASCII runs eight bytes at a time */
            for (uint64_t w; i + 8 <= n; i += 8) {
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull) break;
            }
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

void el_tokenizer_base_init(el_tokenizer *t) {
    t->bos_id = t->eos_id = t->unk_id = -1;
    t->cls_id = t->sep_id = t->pad_id = t->mask_id = -1;
    t->block = NULL;
}

/* Reads a whole file of at most max bytes (malloc'd, NUL-terminated; *len without it). */
static el_status read_file(const char *path, uint64_t max, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    el_file f;
    el_status st = el_file_open(&f, path, 0);
    if (st != EL_OK) return st;
    if (f.size == 0 || f.size > max) {
        el_file_close(&f);
        return el_errorf(EL_E_INVALID, "%s: %llu bytes: a tokenizer file must be 1 byte to "
                         "%llu MiB", path, (unsigned long long)f.size,
                         (unsigned long long)(max >> 20));
    }
    char *buf = malloc((size_t)f.size + 1);
    if (!buf) {
        el_file_close(&f);
        return el_errorf(EL_E_NOMEM, "%s: out of memory for %llu bytes", path,
                         (unsigned long long)f.size);
    }
    st = el_file_read_at(&f, buf, (size_t)f.size, 0);
    *len = (size_t)f.size;
    el_file_close(&f);
    if (st != EL_OK) {
        free(buf);
        return st;
    }
    buf[*len] = 0;
    *out = buf;
    return EL_OK;
}

el_status el_tokenizer_read_json(const char *path, cJSON **root) {
    *root = NULL;
    char *json = NULL;
    size_t len = 0;
    el_status st = read_file(path, EL_TOKENIZER_JSON_MAX, &json, &len);
    if (st != EL_OK) return st;
    st = el_json_parse(json, len, path, root);
    free(json);
    return st;
}

/* True if the path's file name ends with suffix. */
static bool ends_with(const char *path, const char *suffix) {
    size_t a = strlen(path), b = strlen(suffix);
    return a >= b && !strcmp(path + a - b, suffix);
}

/* dir of path + "/" + name into buf; false if it does not fit. */
static bool sibling(const char *path, const char *name, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
    int k = snprintf(buf, cap, "%.*s%s", (int)dl, path, name);
    return k > 0 && (size_t)k < cap;
}

static bool file_exists(const char *path) {
    if (el_storage_active()) return el_storage_exists(path);
    return access(path, F_OK) == 0;
}

/* What a JSON tokenizer file is, from a scan that stops at model.type: 1 = a "model"
 * object with type "WordPiece", 2 = another "model" object (hf-bpe reports a bad type),
 * 0 = no "model" object (a GPT-2 vocab.json). */
static el_status json_kind(const char *path, int *kind) {
    *kind = 0;
    el_jstream js;
    el_status st = el_js_open_file(&js, path);
    if (st != EL_OK) return st;
    int c = -1;
    st = el_js_peek(&js, &c);
    bool first = true, more = c == '{';
    if (st == EL_OK && more) st = el_js_begin(&js, '{');
    while (st == EL_OK && *kind == 0) {
        const char *k;
        size_t kl;
        if ((st = el_js_obj_next(&js, &first, &more, &k, &kl)) != EL_OK || !more) break;
        bool model = kl == 5 && !memcmp(k, "model", 5);
        if (model && (st = el_js_peek(&js, &c)) == EL_OK && c == '{') {
            /* (a vocab.json may hold a token "model": its value is a number) */
            *kind = 2;
            bool mf = true, mm = true;
            st = el_js_begin(&js, '{');
            while (st == EL_OK) {
                if ((st = el_js_obj_next(&js, &mf, &mm, &k, &kl)) != EL_OK || !mm) break;
                if (kl == 4 && !memcmp(k, "type", 4) && (st = el_js_peek(&js, &c)) == EL_OK &&
                    c == '"') {
                    const char *ty;
                    size_t tl;
                    if ((st = el_js_string(&js, &ty, &tl)) == EL_OK && tl == 9 &&
                        !memcmp(ty, "WordPiece", 9))
                        *kind = 1;
                    break; /* the first "type" is the one cJSON would see */
                }
                if (st == EL_OK) st = el_js_skip(&js);
            }
        } else if (st == EL_OK) {
            st = el_js_skip(&js);
        }
    }
    el_js_close(&js);
    return st;
}

/* A JSON file: tokenizer.json by model.type, else a GPT-2 vocab.json. */
static el_status open_json(const char *path, uint32_t vocab_size, el_tok_mem *mem,
                           el_tokenizer **out) {
    int kind = 0;
    el_status st = json_kind(path, &kind);
    if (st != EL_OK) return st;
    if (kind == 1) { /* WordPiece, streamed like hf-bpe (tokenizer/hf_src.h) */
        el_jstream js;
        if ((st = el_js_open_file(&js, path)) != EL_OK) return st;
        el_hf_stream hs;
        el_hf_src src;
        st = el_hf_stream_open(&hs, &js, &src);
        if (st == EL_OK) st = el_tokenizer_wordpiece_from_src_mem(&src, vocab_size, mem, out);
        el_hf_stream_free(&hs);
        el_js_close(&js);
        return st;
    }
    if (kind == 2) return el_tokenizer_hf_bpe_open_mem(path, vocab_size, mem, out);
    /* vocab.json / encoder.json: the merges lie next to it. */
    static const char *const names[] = {"merges.txt", "vocab.bpe"};
    char mp[1024];
    const char *found = NULL;
    for (size_t i = 0; i < 2 && !found; i++)
        if (sibling(path, names[i], mp, sizeof mp) && file_exists(mp)) found = mp;
    if (!found)
        return el_errorf(EL_E_INVALID,
                         "%s: a JSON file without \"model\" is read as a GPT-2 vocab.json, "
                         "but there is no merges.txt or vocab.bpe next to it",
                         path);
    return el_tokenizer_gpt2_open_mem(path, found, vocab_size, mem, out);
}

/* A vocab.txt: do_lower_case from tokenizer_config.json next to it (default true). */
static el_status open_vocab_txt(const char *path, uint32_t vocab_size, el_tok_mem *mem,
                                el_tokenizer **out) {
    bool lower = true;
    char cp[1024];
    if (sibling(path, "tokenizer_config.json", cp, sizeof cp) && file_exists(cp)) {
        cJSON *cfg = NULL;
        el_status st = el_tokenizer_read_json(cp, &cfg);
        if (st != EL_OK) return st;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "do_lower_case");
        if (cJSON_IsBool(v)) lower = cJSON_IsTrue(v);
        cJSON_Delete(cfg);
    }
    return el_tokenizer_wordpiece_open_mem(path, lower, vocab_size, mem, out);
}

/* Looks like text with lines: no NUL in the head, a newline in it (or all of a short
 * file), and valid UTF-8 up to the last newline. A llama2.c tokenizer.bin starts with an
 * int32 max_token_length, so with NUL bytes. */
static bool looks_like_lines(const unsigned char *head, size_t n, bool whole) {
    if (n == 0 || memchr(head, 0, n)) return false;
    const unsigned char *nl = NULL;
    for (size_t i = n; i-- > 0;)
        if (head[i] == '\n') {
            nl = head + i;
            break;
        }
    if (!nl) return whole;
    size_t m = (size_t)(nl - head);
    return el_utf8_check((const char *)head, m) == m;
}

el_status el_tokenizer_open_mem(const char *path, uint32_t vocab_size, el_tok_mem *mem,
                                el_tokenizer **out) {
    if (!path || !out || !mem) return el_errorf(EL_E_USAGE, "el_tokenizer_open: NULL argument");
    *out = NULL;
    el_file f;
    el_status s = el_file_open(&f, path, 0);
    if (s != EL_OK) return s;
    unsigned char head[256];
    size_t n = f.size < sizeof head ? (size_t)f.size : sizeof head;
    bool whole = f.size <= sizeof head;
    s = n ? el_file_read_at(&f, head, n, 0) : EL_OK;
    el_file_close(&f);
    if (s != EL_OK) return s;
    size_t i = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\n' || head[i] == '\r'))
        i++;
    /* All whitespace so far is JSON too (a long indent): a llama2.c tokenizer.bin cannot
     * start with it (its max_token_length would be at least 0x09090909). */
    if (i == n ? n > 0 : head[i] == '{') return open_json(path, vocab_size, mem, out);
    /* SentencePiece's protobuf starts with field 1 (pieces), wire type 2: byte 0x0a. */
    if (n > 0 && head[0] == 0x0a && ends_with(path, ".model"))
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: SentencePiece .model files are not read; use the model's "
                         "tokenizer.json or a llama2.c tokenizer.bin",
                         path);
    if (ends_with(path, ".txt") || looks_like_lines(head, n, whole))
        return open_vocab_txt(path, vocab_size, mem, out);
    return el_tokenizer_llama2c_open_mem(path, vocab_size, mem, out);
}

typedef struct open_args {
    const char *path;
    uint32_t vocab_size;
} open_args;

static el_status open_build(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const open_args *a = args;
    return el_tokenizer_open_mem(a->path, a->vocab_size, mem, out);
}

el_status el_tokenizer_open(const char *path, uint32_t vocab_size, el_tokenizer **out) {
    if (!path || !out) return el_errorf(EL_E_USAGE, "el_tokenizer_open: NULL argument");
    *out = NULL;
    open_args a = {path, vocab_size};
    return el_tok_build_heap(open_build, &a, out);
}

void el_tokenizer_close(el_tokenizer *t) {
    if (!t) return;
    void *block = t->block;
    if (t->vt->close) t->vt->close(t);
    free(block);
}

/* Parses <0xXX> (exactly, upper- or lower-case hex); -1 if p is not such a piece. */
int el_tokenizer_byte_piece(const char *p, size_t len) {
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}
