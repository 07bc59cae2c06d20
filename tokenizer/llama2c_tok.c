/* llama2c_tok.c - the llama2.c tokenizer.bin backend: SentencePiece-style BPE with scores.
 * Encoding follows llama2.c's encode: a dummy-prefix space, one token per UTF-8 character
 * (bytes <0xXX> = id 3 + byte when the character is not in the vocabulary), then merge the
 * adjacent pair whose concatenation is the best-scoring vocabulary piece (the leftmost
 * among equals) until none is.
 *
 * Tables (one block, tokenizer/tok_mem.h): the pieces, their lengths, scores and byte
 * values, a hash of the pieces for lookups, the byte pairs that occur inside a piece
 * (8 KiB) and encode's scratch. tokenizer.bin is read twice through a 64 KiB window (count,
 * then copy), never whole.
 *
 * encode allocates nothing and is O(m log m) for m characters (tokenizer/tok_merge.h). No
 * merge can join two symbols where the last byte of the left one's text followed by the
 * first byte of the right one's occurs in no piece (for SentencePiece vocabularies: before
 * every space), so the text is cut there into stretches merged one at a time, with the ids
 * the whole text would give. A stretch of up to L2C_STACK_SYMS symbols is merged on the
 * stack (12 KiB), one of up to L2C_SCRATCH_SYMS in the tokenizer's scratch (192 KiB, taken
 * by one encode at a time), a longer one (or one meeting a concurrent encode) in the
 * unused end of the caller's ids buffer, which then needs 6 ids of room per symbol after
 * the ids before it; without that room encode says EL_E_NOFIT with *n a count that
 * suffices. */
#include "tokenizer/tokenizer.h"

#include "platform/platform.h"
#include "tokenizer/tok_mem.h"
#include "tokenizer/tok_merge.h"
#include "tokenizer/tok_read.h"

#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L2C_TOK_FILE_MAX (256u * 1024u * 1024u) /* bytes of tokenizer.bin accepted */
#define L2C_PIECE_MAX 65536u                    /* bytes in one piece (max_token_length) */
#define L2C_BYTE0 3                             /* id of <0x00>; <0xXX> = 3 + XX */
#define L2C_STACK_SYMS 512                      /* symbols merged in stack arrays */
#define L2C_SCRATCH_SYMS 8192                   /* symbols merged in the scratch */

typedef struct l2c_tok {
    el_tokenizer base;
    uint32_t n;            /* tokens */
    char *blob;            /* every piece, NUL-terminated, back to back */
    const char **piece;    /* [n] into blob */
    uint32_t *len;         /* [n] bytes of each piece */
    float *score;          /* [n] merge priority: higher merges first */
    int16_t *byte_val;     /* [n] raw byte a <0xXX> piece stands for, else -1 */
    uint32_t *slot;        /* [slot_mask + 1] id + 1 of a piece by its hash (open addressing),
                              0 empty; the lowest id of equal pieces */
    uint32_t slot_mask;
    uint8_t *joins;        /* [65536 / 8] bit a * 256 + b: byte a then b inside a piece */
    int32_t *scratch;      /* [EL_TOK_MERGE_INTS * L2C_SCRATCH_SYMS] one encode's work */
    atomic_bool busy;      /* scratch taken */
    bool byte_fallback;    /* ids 3..258 are <0x00>..<0xFF> */
} l2c_tok;

/* ---- lookups -------------------------------------------------------------------------- */

#define L2C_FNV0 2166136261u
static uint32_t fnv(uint32_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Id of the piece equal to a || b (b may be empty), the lowest id if several; -1 if none. */
static int32_t lookup2(const l2c_tok *t, const char *a, size_t al, const char *b, size_t bl) {
    for (uint32_t i = fnv(fnv(L2C_FNV0, a, al), b, bl) & t->slot_mask;;
         i = (i + 1) & t->slot_mask) {
        uint32_t v = t->slot[i];
        if (!v) return -1;
        const char *p = t->piece[v - 1];
        if (t->len[v - 1] == al + bl && !memcmp(p, a, al) && !memcmp(p + al, b, bl))
            return (int32_t)(v - 1);
    }
}

static int32_t merge_of(const l2c_tok *t, int32_t x, int32_t y) {
    return lookup2(t, t->piece[x], t->len[x], t->piece[y], t->len[y]);
}

/* ---- encode --------------------------------------------------------------------------- */

/* The tokens of one character (or the dummy prefix) into out[0..4); their count. The
 * character must be spellable (checked by split first). */
static size_t char_toks(const l2c_tok *t, const char *c, size_t cl, int32_t out[4]) {
    int32_t id = lookup2(t, c, cl, "", 0);
    if (id >= 0 || !t->byte_fallback) {
        out[0] = id;
        return 1;
    }
    for (size_t k = 0; k < cl; k++) out[k] = L2C_BYTE0 + (int32_t)(unsigned char)c[k];
    return cl;
}

/* Counts the pre-merge tokens of the text (dummy prefix included); a character neither in
 * the vocabulary nor spellable in byte tokens -> EL_E_INVALID. */
static el_status split_count(const l2c_tok *t, const char *text, size_t len, size_t *n) {
    if (len > 0) (*n)++; /* " " is in every llama2.c vocabulary that gets this far */
    for (size_t i = 0; i < len;) {
        size_t cl = el_utf8_len(text, len, i);
        if (lookup2(t, text + i, cl, "", 0) >= 0) {
            (*n)++;
        } else if (t->byte_fallback) {
            *n += cl;
        } else {
            return el_errorf(EL_E_INVALID,
                             "text byte %zu: character not in the vocabulary, and this "
                             "tokenizer has no <0xXX> byte tokens to spell it",
                             i);
        }
        i += cl;
    }
    return EL_OK;
}

static int32_t pair_fn(const void *ctx, int32_t a, int32_t b) {
    return merge_of(ctx, a, b);
}

/* True when no piece holds the last byte of a's text followed by the first of b's. */
static bool cut_between(const l2c_tok *t, int32_t a, int32_t b) {
    unsigned x = (unsigned char)t->piece[a][t->len[a] - 1];
    unsigned y = (unsigned char)t->piece[b][0];
    return !(t->joins[(x << 5) | (y >> 3)] >> (y & 7) & 1);
}

/* Where the text is read: byte *at, with the dummy prefix still to come when *prefix. */
typedef struct l2c_cursor {
    size_t at;
    bool prefix;
} l2c_cursor;

/* The tokens of the stretch starting at c, up to the next cut (or the end), into sym when
 * not NULL; returns their count and moves c past them. */
static size_t stretch(const l2c_tok *t, const char *text, size_t len, l2c_cursor *c,
                      int32_t *sym) {
    size_t m = 0;
    int32_t last = -1;
    while (c->prefix || c->at < len) {
        const char *ch = c->prefix ? " " : text + c->at;
        size_t cl = c->prefix ? 1 : el_utf8_len(text, len, c->at);
        int32_t tok[4];
        size_t k = char_toks(t, ch, cl, tok);
        if (m > 0 && cut_between(t, last, tok[0])) break;
        if (sym) memcpy(sym + m, tok, k * sizeof *tok);
        m += k;
        last = tok[k - 1];
        if (c->prefix) c->prefix = false;
        else c->at += cl;
    }
    return m;
}

static el_status l2c_encode(const el_tokenizer *base, const char *text, size_t len,
                            bool add_bos, int32_t *ids, size_t cap, size_t *n_out) {
    const l2c_tok *t = (const l2c_tok *)base;
    l2c_tok *mt = (l2c_tok *)base; /* the scratch's flag is the one thing encode changes */
    *n_out = 0;
    if (!text && len) return el_errorf(EL_E_USAGE, "encode: NULL text");
    if (!ids) cap = 0;
    size_t bad = el_utf8_check(text, len);
    if (bad < len)
        return el_errorf(EL_E_INVALID, "text is not valid UTF-8 at byte %zu (0x%02x)", bad,
                         (unsigned)(unsigned char)text[bad]);
    if (add_bos && t->base.bos_id < 0)
        return el_errorf(EL_E_INVALID, "tokenizer has no BOS token");
    if (len > INT32_MAX)
        return el_errorf(EL_E_INVALID, "text of %zu bytes: at most %d accepted", len,
                         INT32_MAX);
    /* Count first: the output is at most the pre-merge tokens, and they must fit. */
    size_t m0 = add_bos ? 1 : 0;
    el_status s = split_count(t, text, len, &m0);
    if (s != EL_OK) return s;
    if (m0 > cap) {
        *n_out = m0;
        return el_errorf(EL_E_NOFIT,
                         "text of %zu bytes needs room for %zu tokens before merging; the "
                         "buffer holds %zu",
                         len, m0, cap);
    }
    size_t n = 0, need = m0;
    if (add_bos) ids[n++] = t->base.bos_id;
    int32_t stack[EL_TOK_MERGE_INTS * L2C_STACK_SYMS];
    l2c_cursor c = {0, len > 0};
    while (c.prefix || c.at < len) {
        l2c_cursor c0 = c;
        size_t m = stretch(t, text, len, &c, NULL);
        int32_t *work = stack;
        if (m > L2C_STACK_SYMS && m <= L2C_SCRATCH_SYMS &&
            !atomic_exchange_explicit(&mt->busy, true, memory_order_acquire))
            work = mt->scratch;
        if (work == stack && m > L2C_STACK_SYMS) {
            size_t room = m <= SIZE_MAX / EL_TOK_MERGE_INTS ? EL_TOK_MERGE_INTS * m : SIZE_MAX;
            if (cap - n < room) { /* counted only: m bounds this stretch's ids */
                size_t want = room > SIZE_MAX - n ? SIZE_MAX : n + room;
                if (need < want) need = want;
                n += m;
                continue;
            }
            work = ids + cap - room; /* its first m unused: sym is the output itself */
        }
        el_tok_merge w;
        el_tok_merge_init(&w, work, m, pair_fn, t, t->score);
        if (work != stack && work != t->scratch) w.sym = ids + n; /* see above */
        stretch(t, text, len, &c0, w.sym);
        el_tok_merge_run(&w, m);
        for (int32_t i = 0; i >= 0; i = w.nx[i]) ids[n++] = w.sym[i]; /* n <= position */
        if (work == t->scratch) atomic_store_explicit(&mt->busy, false, memory_order_release);
    }
    if (need > cap) {
        *n_out = need;
        return el_errorf(EL_E_NOFIT,
                         "text of %zu bytes needs room for %zu ids (tokens, and work space "
                         "for a stretch of more than %d symbols without a place to cut); the "
                         "buffer holds %zu",
                         len, need, L2C_SCRATCH_SYMS, cap);
    }
    *n_out = n;
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

static const el_tokenizer_vtable k_l2c_vt = {"llama2c", l2c_encode, l2c_decode, NULL};

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

/* What a build reads: a file (path) or bytes in memory (data, len). */
typedef struct l2c_args {
    const char *path;
    const void *data;
    size_t len;
    const char *name;
    uint32_t vocab_size;
} l2c_args;

/* Pass 1: validates every record against the bytes remaining; counts tokens and bytes. */
static el_status l2c_scan(el_tok_reader *r, const char *name, int32_t *max_len,
                          size_t *count_out, size_t *blob_out) {
    unsigned char hdr[8];
    if (r->size < 4)
        return el_errorf(EL_E_INVALID, "%s: %llu bytes, too small for a llama2.c tokenizer",
                         name, (unsigned long long)r->size);
    el_status s = el_tok_read(r, hdr, 4);
    if (s != EL_OK) return s;
    *max_len = rd_i32(hdr);
    if (*max_len < 1 || (uint32_t)*max_len > L2C_PIECE_MAX)
        return el_errorf(EL_E_INVALID, "%s: max_token_length %d, expected 1..%u", name,
                         *max_len, L2C_PIECE_MAX);
    size_t count = 0, blob_bytes = 0;
    while (r->pos < r->size) {
        uint64_t left = r->size - r->pos;
        if (left < 8)
            return el_errorf(EL_E_INVALID, "%s: truncated in token %zu (record header at byte "
                             "%llu needs 8 bytes, %llu left)", name, count,
                             (unsigned long long)r->pos, (unsigned long long)left);
        if ((s = el_tok_read(r, hdr, 8)) != EL_OK) return s;
        float sc = rd_f32(hdr);
        int32_t len = rd_i32(hdr + 4);
        if (!isfinite(sc))
            return el_errorf(EL_E_INVALID, "%s: token %zu: score is not a finite number", name,
                             count);
        if (len < 1 || len > *max_len)
            return el_errorf(EL_E_INVALID, "%s: token %zu: length %d, expected 1..%d "
                             "(max_token_length)", name, count, len, *max_len);
        if ((uint64_t)len > r->size - r->pos)
            return el_errorf(EL_E_INVALID, "%s: token %zu: length %d past the end of the file "
                             "(%llu bytes left)", name, count, len,
                             (unsigned long long)(r->size - r->pos));
        if ((s = el_tok_read(r, NULL, (size_t)len)) != EL_OK) return s;
        blob_bytes += (size_t)len + 1;
        count++;
        if (count > (1u << 24))
            return el_errorf(EL_E_INVALID, "%s: more than 16M tokens", name);
    }
    *count_out = count;
    *blob_out = blob_bytes;
    return EL_OK;
}

/* Pass 2: copies the records (validated by pass 1; a file that changed since -> EL_E_IO). */
static el_status l2c_copy(el_tok_reader *r, const char *name, int32_t max_len, l2c_tok *t,
                          size_t blob_bytes) {
    unsigned char hdr[8];
    el_tok_reader_rewind(r);
    el_status s = el_tok_read(r, NULL, 4);
    size_t used = 0;
    for (size_t i = 0; i < t->n && s == EL_OK; i++) {
        if ((s = el_tok_read(r, hdr, 8)) != EL_OK) break;
        t->score[i] = rd_f32(hdr);
        int32_t l = rd_i32(hdr + 4);
        if (l < 1 || l > max_len || (size_t)l + 1 > blob_bytes - used || !isfinite(t->score[i]))
            return el_errorf(EL_E_IO, "%s: changed while read (token %zu)", name, i);
        uint32_t len = (uint32_t)l;
        char *b = t->blob + used;
        if ((s = el_tok_read(r, b, len)) != EL_OK) break;
        b[len] = 0;
        used += len + 1;
        t->piece[i] = b;
        t->len[i] = len;
        t->byte_val[i] = (int16_t)el_tokenizer_byte_piece(b, len);
        if (lookup2(t, b, len, "", 0) < 0) { /* the lowest id of equal pieces */
            uint32_t h = fnv(L2C_FNV0, b, len) & t->slot_mask;
            while (t->slot[h]) h = (h + 1) & t->slot_mask;
            t->slot[h] = (uint32_t)i + 1;
        }
        for (uint32_t k = 0; k + 1 < len; k++) {
            unsigned x = (unsigned char)b[k], y = (unsigned char)b[k + 1];
            t->joins[(x << 5) | (y >> 3)] |= (uint8_t)(1u << (y & 7));
        }
    }
    return s;
}

#define L2C_NEW(mem, n, type) ((type *)el_tok_alloc_array(mem, n, sizeof(type), alignof(type)))

static el_status l2c_build(const void *pa, el_tok_mem *mem, el_tokenizer **out) {
    const l2c_args *a = pa;
    const char *name = a->name ? a->name : a->path ? a->path : "tokenizer.bin";
    *out = NULL;
    el_tok_reader r;
    if (a->path) {
        el_status s = el_tok_reader_open(&r, a->path);
        if (s != EL_OK) return s;
        if (r.size > L2C_TOK_FILE_MAX) {
            el_tok_reader_close(&r);
            return el_errorf(EL_E_INVALID, "%s: %llu bytes, more than the %u accepted for a "
                             "tokenizer", name, (unsigned long long)r.size, L2C_TOK_FILE_MAX);
        }
    } else {
        el_tok_reader_mem(&r, a->data, a->len, name);
    }
    int32_t max_len = 0;
    size_t count = 0, blob_bytes = 0;
    el_status s = l2c_scan(&r, name, &max_len, &count, &blob_bytes);
    if (s == EL_OK && count < L2C_BYTE0)
        s = el_errorf(EL_E_INVALID, "%s: %zu tokens; a llama2.c vocabulary starts with "
                      "<unk>, <s>, </s>", name, count);
    if (s == EL_OK && a->vocab_size && count != a->vocab_size)
        s = el_errorf(EL_E_INVALID, "%s: holds %zu tokens, the model's vocabulary is %u: "
                      "not this model's tokenizer", name, count, a->vocab_size);
    l2c_tok *t = NULL;
    if (s == EL_OK) {
        t = L2C_NEW(mem, 1, l2c_tok);
        if (t) {
            t->n = (uint32_t)count;
            t->blob = L2C_NEW(mem, blob_bytes, char);
            t->piece = L2C_NEW(mem, count, const char *);
            t->len = L2C_NEW(mem, count, uint32_t);
            t->score = L2C_NEW(mem, count, float);
            t->byte_val = L2C_NEW(mem, count, int16_t);
            size_t slots = 16;
            while (slots < 2 * count) slots *= 2;
            t->slot_mask = (uint32_t)(slots - 1);
            t->slot = L2C_NEW(mem, slots, uint32_t);
            t->joins = L2C_NEW(mem, 65536 / 8, uint8_t);
            t->scratch = el_tok_alloc_array(mem, (size_t)EL_TOK_MERGE_INTS * L2C_SCRATCH_SYMS,
                                            sizeof(int32_t), 64);
        }
        if (!t || !t->blob || !t->piece || !t->len || !t->score || !t->byte_val ||
            !t->slot || !t->joins || !t->scratch)
            s = el_errorf(EL_E_NOMEM, "%s: out of memory for the tables of %zu tokens", name,
                          count);
    }
    if (s == EL_OK) s = l2c_copy(&r, name, max_len, t, blob_bytes);
    el_tok_reader_close(&r);
    if (s != EL_OK) return s;
    t->byte_fallback = count >= L2C_BYTE0 + 256;
    for (int v = 0; v < 256 && t->byte_fallback; v++)
        if (t->byte_val[L2C_BYTE0 + v] != v) t->byte_fallback = false;
    atomic_init(&t->busy, false);
    t->base.vt = &k_l2c_vt;
    el_tokenizer_base_init(&t->base);
    t->base.vocab_size = t->n;
    t->base.bos_id = 1; /* llama2.c's fixed ids: 0 <unk>, 1 <s>, 2 </s> */
    t->base.eos_id = 2;
    t->base.unk_id = 0;
    *out = &t->base;
    return EL_OK;
}

el_status el_tokenizer_llama2c_parse_mem(const void *data, size_t len, const char *name,
                                         uint32_t vocab_size, el_tok_mem *mem,
                                         el_tokenizer **out) {
    l2c_args a = {.data = data, .len = data ? len : 0, .name = name, .vocab_size = vocab_size};
    return l2c_build(&a, mem, out);
}

el_status el_tokenizer_llama2c_parse(const void *data, size_t len, const char *name,
                                     uint32_t vocab_size, el_tokenizer **out) {
    l2c_args a = {.data = data, .len = data ? len : 0, .name = name, .vocab_size = vocab_size};
    return el_tok_build_heap(l2c_build, &a, out);
}

el_status el_tokenizer_llama2c_open_mem(const char *path, uint32_t vocab_size,
                                        el_tok_mem *mem, el_tokenizer **out) {
    l2c_args a = {.path = path, .vocab_size = vocab_size};
    return l2c_build(&a, mem, out);
}

el_status el_tokenizer_llama2c_open(const char *path, uint32_t vocab_size, el_tokenizer **out) {
    l2c_args a = {.path = path, .vocab_size = vocab_size};
    return el_tok_build_heap(l2c_build, &a, out);
}
