/* llama2c_tok.c - the llama2.c tokenizer.bin backend: SentencePiece-style BPE with scores.
 * Encoding follows llama2.c's encode: a dummy-prefix space, one token per UTF-8 character
 * (bytes <0xXX> = id 3 + byte when the character is not in the vocabulary), then merge the
 * adjacent pair whose concatenation is the best-scoring vocabulary piece until none is.
 * Everything that needs memory (the pieces, a sorted index for lookups) is built at open;
 * encode and decode allocate nothing: encode works inside the caller's ids buffer. */
#include "tokenizer/tokenizer.h"

#include "platform/platform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L2C_TOK_FILE_MAX (256u * 1024u * 1024u) /* bytes of tokenizer.bin accepted */
#define L2C_PIECE_MAX 65536u                    /* bytes in one piece (max_token_length) */
#define L2C_BYTE0 3                             /* id of <0x00>; <0xXX> = 3 + XX */

typedef struct l2c_sorted {
    const char *s; /* piece bytes (in blob) */
    uint32_t len;  /* bytes */
    uint32_t id;
} l2c_sorted;

typedef struct l2c_tok {
    el_tokenizer base;
    uint32_t n;            /* tokens */
    char *blob;            /* every piece, NUL-terminated, back to back */
    const char **piece;    /* [n] into blob */
    uint32_t *len;         /* [n] bytes of each piece */
    float *score;          /* [n] merge priority: higher merges first */
    int16_t *byte_val;     /* [n] raw byte a <0xXX> piece stands for, else -1 */
    l2c_sorted *sorted;    /* [n] by (bytes, id) for binary search */
    bool byte_fallback;    /* ids 3..258 are <0x00>..<0xFF> */
} l2c_tok;

/* ---- lookups -------------------------------------------------------------------------- */

/* Compares piece v (vl bytes) with the concatenation a (al) || b (bl), memcmp order. */
static int cmp_concat(const char *v, size_t vl, const char *a, size_t al, const char *b,
                      size_t bl) {
    size_t k = vl < al ? vl : al;
    int c = memcmp(v, a, k);
    if (c) return c;
    if (vl < al) return -1;
    size_t r = vl - al;
    k = r < bl ? r : bl;
    c = memcmp(v + al, b, k);
    if (c) return c;
    return r < bl ? -1 : r > bl ? 1 : 0;
}

/* Id of the piece equal to a || b (b may be empty), the lowest id if several; -1 if none. */
static int32_t lookup2(const l2c_tok *t, const char *a, size_t al, const char *b, size_t bl) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) { /* first entry >= key */
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_concat(t->sorted[mid].s, t->sorted[mid].len, a, al, b, bl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n && cmp_concat(t->sorted[lo].s, t->sorted[lo].len, a, al, b, bl) == 0)
        return (int32_t)t->sorted[lo].id;
    return -1;
}

static int32_t merge_of(const l2c_tok *t, int32_t x, int32_t y) {
    return lookup2(t, t->piece[x], t->len[x], t->piece[y], t->len[y]);
}

/* ---- encode --------------------------------------------------------------------------- */

/* Appends the tokens of one character (or the dummy prefix) at ids[*n] if ids is not NULL;
 * counts them either way. */
static el_status push_char(const l2c_tok *t, const char *c, size_t cl, size_t at,
                           int32_t *ids, size_t *n) {
    int32_t id = lookup2(t, c, cl, "", 0);
    if (id >= 0) {
        if (ids) ids[*n] = id;
        (*n)++;
        return EL_OK;
    }
    if (!t->byte_fallback)
        return el_errorf(EL_E_INVALID,
                         "text byte %zu: character not in the vocabulary, and this tokenizer "
                         "has no <0xXX> byte tokens to spell it",
                         at);
    for (size_t k = 0; k < cl; k++) {
        if (ids) ids[*n] = L2C_BYTE0 + (int32_t)(unsigned char)c[k];
        (*n)++;
    }
    return EL_OK;
}

/* One pass over the text: writes the pre-merge tokens when ids is not NULL. */
static el_status split(const l2c_tok *t, const char *text, size_t len, int32_t *ids,
                       size_t *n) {
    el_status s;
    if (len > 0 && (s = push_char(t, " ", 1, 0, ids, n)) != EL_OK) return s;
    for (size_t i = 0; i < len;) {
        size_t cl = el_utf8_len(text, len, i);
        if ((s = push_char(t, text + i, cl, i, ids, n)) != EL_OK) return s;
        i += cl;
    }
    return EL_OK;
}

static el_status l2c_encode(const el_tokenizer *base, const char *text, size_t len,
                            bool add_bos, int32_t *ids, size_t cap, size_t *n_out) {
    const l2c_tok *t = (const l2c_tok *)base;
    *n_out = 0;
    if (!text && len) return el_errorf(EL_E_USAGE, "encode: NULL text");
    size_t bad = el_utf8_check(text, len);
    if (bad < len)
        return el_errorf(EL_E_INVALID, "text is not valid UTF-8 at byte %zu (0x%02x)", bad,
                         (unsigned)(unsigned char)text[bad]);
    if (add_bos && t->base.bos_id < 0)
        return el_errorf(EL_E_INVALID, "tokenizer has no BOS token");
    /* Count first: the pre-merge tokens are the working space, and they must fit. */
    size_t m0 = add_bos ? 1 : 0;
    el_status s = split(t, text, len, NULL, &m0);
    if (s != EL_OK) return s;
    if (m0 > cap) {
        *n_out = m0;
        return el_errorf(EL_E_NOFIT,
                         "text of %zu bytes needs room for %zu tokens before merging; the "
                         "buffer holds %zu",
                         len, m0, cap);
    }
    size_t n = 0;
    if (add_bos) ids[n++] = t->base.bos_id;
    size_t first = n; /* BOS never merges */
    if ((s = split(t, text, len, ids, &n)) != EL_OK) return s;

    /* With room for a second array, keep each pair's merge id cached so one merge costs two
     * lookups instead of a lookup per pair; both paths pick the same pairs. */
    int32_t *tok = ids + first;
    size_t m = n - first;
    int32_t *cache = cap - n >= m ? ids + n : NULL;
    if (cache)
        for (size_t i = 0; i + 1 < m; i++) cache[i] = merge_of(t, tok[i], tok[i + 1]);
    while (m > 1) {
        float best = -INFINITY;
        int32_t best_id = -1;
        size_t best_i = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            int32_t id = cache ? cache[i] : merge_of(t, tok[i], tok[i + 1]);
            if (id >= 0 && t->score[id] > best) { /* strict: the leftmost wins ties */
                best = t->score[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_id < 0) break;
        tok[best_i] = best_id;
        memmove(tok + best_i + 1, tok + best_i + 2, (m - best_i - 2) * sizeof *tok);
        m--;
        if (cache) {
            memmove(cache + best_i + 1, cache + best_i + 2,
                    (m > best_i + 1 ? m - best_i - 2 : 0) * sizeof *cache);
            if (best_i > 0) cache[best_i - 1] = merge_of(t, tok[best_i - 1], tok[best_i]);
            if (best_i + 1 < m) cache[best_i] = merge_of(t, tok[best_i], tok[best_i + 1]);
        }
    }
    *n_out = first + m;
    return EL_OK;
}

/* ---- decode --------------------------------------------------------------------------- */

static el_status l2c_decode(const el_tokenizer *base, int32_t prev, int32_t id, char *buf,
                            size_t cap, size_t *n) {
    const l2c_tok *t = (const l2c_tok *)base;
    *n = 0;
    if (id < 0 || (uint32_t)id >= t->n)
        return el_errorf(EL_E_INVALID, "token id %d outside the vocabulary of %u", id, t->n);
    const char *p = t->piece[id];
    size_t len = t->len[id];
    char byte;
    if (t->byte_val[id] >= 0) {
        byte = (char)t->byte_val[id];
        p = &byte;
        len = 1;
    } else if (prev == t->base.bos_id && len > 0 && p[0] == ' ') {
        p++; /* the dummy prefix after BOS is not part of the text */
        len--;
    }
    if (len + 1 > cap)
        return el_errorf(EL_E_NOFIT, "token %d: piece of %zu bytes, buffer holds %zu", id, len,
                         cap ? cap - 1 : 0);
    memcpy(buf, p, len);
    buf[len] = 0;
    *n = len;
    return EL_OK;
}

static void l2c_close(el_tokenizer *base) {
    l2c_tok *t = (l2c_tok *)base;
    free(t->blob);
    free(t->piece);
    free(t->len);
    free(t->score);
    free(t->byte_val);
    free(t->sorted);
    free(t);
}

static const el_tokenizer_vtable k_l2c_vt = {"llama2c", l2c_encode, l2c_decode, l2c_close};

/* ---- open ----------------------------------------------------------------------------- */

static int32_t rd_i32(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

static float rd_f32(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

static int cmp_sorted(const void *pa, const void *pb) {
    const l2c_sorted *a = pa, *b = pb;
    size_t k = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, k);
    if (c) return c;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

el_status el_tokenizer_llama2c_parse(const void *data, size_t size, const char *name,
                                     uint32_t vocab_size, el_tokenizer **out) {
    const unsigned char *d = data;
    *out = NULL;
    if (!name) name = "tokenizer.bin";
    if (size < 4)
        return el_errorf(EL_E_INVALID, "%s: %zu bytes, too small for a llama2.c tokenizer", name,
                         size);
    int32_t max_len = rd_i32(d);
    if (max_len < 1 || (uint32_t)max_len > L2C_PIECE_MAX)
        return el_errorf(EL_E_INVALID, "%s: max_token_length %d, expected 1..%u", name, max_len,
                         L2C_PIECE_MAX);
    /* Pass 1: validate every record against the bytes remaining and count. */
    size_t off = 4, count = 0, blob_bytes = 0;
    while (off < size) {
        if (size - off < 8)
            return el_errorf(EL_E_INVALID, "%s: truncated in token %zu (record header at byte "
                             "%zu needs 8 bytes, %zu left)", name, count, off, size - off);
        float sc = rd_f32(d + off);
        int32_t len = rd_i32(d + off + 4);
        if (!isfinite(sc))
            return el_errorf(EL_E_INVALID, "%s: token %zu: score is not a finite number", name,
                             count);
        if (len < 1 || len > max_len)
            return el_errorf(EL_E_INVALID, "%s: token %zu: length %d, expected 1..%d "
                             "(max_token_length)", name, count, len, max_len);
        off += 8;
        if ((size_t)len > size - off)
            return el_errorf(EL_E_INVALID, "%s: token %zu: length %d past the end of the file "
                             "(%zu bytes left)", name, count, len, size - off);
        off += (size_t)len;
        blob_bytes += (size_t)len + 1;
        count++;
        if (count > (1u << 24))
            return el_errorf(EL_E_INVALID, "%s: more than 16M tokens", name);
    }
    if (count < L2C_BYTE0)
        return el_errorf(EL_E_INVALID, "%s: %zu tokens; a llama2.c vocabulary starts with "
                         "<unk>, <s>, </s>", name, count);
    if (vocab_size && count != vocab_size)
        return el_errorf(EL_E_INVALID, "%s: holds %zu tokens, the model's vocabulary is %u: "
                         "not this model's tokenizer", name, count, vocab_size);

    l2c_tok *t = calloc(1, sizeof *t);
    if (!t) return el_errorf(EL_E_NOMEM, "%s: out of memory", name);
    t->n = (uint32_t)count;
    t->blob = malloc(blob_bytes);
    t->piece = malloc(count * sizeof *t->piece);
    t->len = malloc(count * sizeof *t->len);
    t->score = malloc(count * sizeof *t->score);
    t->byte_val = malloc(count * sizeof *t->byte_val);
    t->sorted = malloc(count * sizeof *t->sorted);
    if (!t->blob || !t->piece || !t->len || !t->score || !t->byte_val || !t->sorted) {
        l2c_close(&t->base);
        return el_errorf(EL_E_NOMEM, "%s: out of memory for %zu tokens", name, count);
    }
    /* Pass 2: copy (already validated). */
    off = 4;
    char *b = t->blob;
    for (size_t i = 0; i < count; i++) {
        t->score[i] = rd_f32(d + off);
        uint32_t len = (uint32_t)rd_i32(d + off + 4);
        off += 8;
        memcpy(b, d + off, len);
        b[len] = 0;
        off += len;
        t->piece[i] = b;
        t->len[i] = len;
        t->byte_val[i] = (int16_t)el_tokenizer_byte_piece(b, len);
        t->sorted[i] = (l2c_sorted){b, len, (uint32_t)i};
        b += len + 1;
    }
    qsort(t->sorted, count, sizeof *t->sorted, cmp_sorted);
    t->byte_fallback = count >= L2C_BYTE0 + 256;
    for (int v = 0; v < 256 && t->byte_fallback; v++)
        if (t->byte_val[L2C_BYTE0 + v] != v) t->byte_fallback = false;
    t->base.vt = &k_l2c_vt;
    el_tokenizer_base_init(&t->base);
    t->base.vocab_size = t->n;
    t->base.bos_id = 1; /* llama2.c's fixed ids: 0 <unk>, 1 <s>, 2 </s> */
    t->base.eos_id = 2;
    t->base.unk_id = 0;
    *out = &t->base;
    return EL_OK;
}

el_status el_tokenizer_llama2c_open(const char *path, uint32_t vocab_size, el_tokenizer **out) {
    *out = NULL;
    el_file f;
    el_status s = el_file_open(&f, path, 0);
    if (s != EL_OK) return s;
    if (f.size > L2C_TOK_FILE_MAX) {
        el_file_close(&f);
        return el_errorf(EL_E_INVALID, "%s: %llu bytes, more than the %u accepted for a "
                         "tokenizer", path, (unsigned long long)f.size, L2C_TOK_FILE_MAX);
    }
    size_t size = (size_t)f.size;
    void *buf = malloc(size ? size : 1);
    if (!buf) {
        el_file_close(&f);
        return el_errorf(EL_E_NOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    s = size ? el_file_read_at(&f, buf, size, 0) : EL_OK;
    el_file_close(&f);
    if (s == EL_OK) s = el_tokenizer_llama2c_parse(buf, size, path, vocab_size, out);
    free(buf);
    return s;
}
