/* wordpiece.c - BERT WordPiece (vocab.txt or an HF tokenizer.json with a WordPiece model),
 * reproducing HF tokenizers' BertNormalizer + BertPreTokenizer + WordPiece ids, and
 * el_tokenizer_encode_pair for model inputs ([CLS] a [SEP] b [SEP], longest-first
 * truncation, token type ids). Behaviour and decode rules: tokenizer.h.
 *
 * encode allocates nothing: characters stream through the normalizer and pre-tokenizer one
 * at a time into a word buffer of WP_CHARS_MAX characters on the stack (a word longer than
 * max_input_chars_per_word is [UNK] whatever it holds, so only its length is counted past
 * that), and the word's pieces go to a stack array before they are written (a word that
 * cannot be spelled is one [UNK]).
 *
 * Tables (one block, tokenizer/tok_mem.h): the struct, the token bytes, offsets, lengths,
 * flags, the hash of the texts and the added tokens. vocab.txt is read twice (count, then
 * copy) through a 64 KiB window (tokenizer/tok_read.h), never whole; tokenizer.json comes
 * parsed (the caller's cJSON tree) and its vocabulary object is walked twice the same way,
 * so the build's own transient is the window at most. */
#include "tokenizer/tokenizer.h"

#include "loader/safetensors.h"
#include "platform/platform.h"
#include "tokenizer/hf_src.h"
#include "tokenizer/tok_mem.h"
#include "tokenizer/tok_read.h"
#include "tokenizer/unicode.h"

#include <cjson/cJSON.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WP_TOKENS_MAX (1u << 22)  /* tokens accepted */
#define WP_CHARS_MAX 512          /* max_input_chars_per_word accepted */
#define WP_TOKEN_BYTES 1024       /* bytes of one token accepted */
#define WP_PREFIX_MAX 16          /* bytes of the continuing-subword prefix */
#define WP_ADDED_MAX 4096         /* added (special) tokens */

enum { WP_TOK_SPECIAL = 1u << 0 };

typedef struct wp_tok {
    el_tokenizer base;
    char path[256];             /* for messages, truncated */

    uint32_t n;                 /* tokens, ids 0..n-1 */
    char *pool;                 /* every token's bytes, each NUL-terminated */
    uint32_t *off;              /* (n) offset of token i in pool */
    uint32_t *len;              /* (n) bytes of token i */
    uint8_t *flags;             /* (n) WP_TOK_* */
    int32_t *vslot;             /* string -> id open addressing, -1 empty */
    uint32_t vmask;
    uint32_t max_tok_len;       /* bytes of the longest token */

    /* normalizer (BertNormalizer) */
    bool clean_text;
    bool handle_cjk;
    bool fold;                  /* lowercase + strip accents */

    /* WordPiece model */
    uint32_t max_chars;         /* max_input_chars_per_word */
    char prefix[WP_PREFIX_MAX]; /* continuing_subword_prefix, "##" */
    uint32_t prefix_len;

    /* special tokens matched on the raw text, by first byte then longest first */
    int32_t *added;
    uint32_t n_added;
    uint32_t added_start[257];
} wp_tok;

static const el_tokenizer_vtable wp_vtable;

/* ---- vocabulary -------------------------------------------------------------------- */

static uint64_t wp_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static const char *wp_str(const wp_tok *t, int32_t id) {
    return t->pool + t->off[id];
}

static int32_t wp_find(const wp_tok *t, const char *s, size_t n) {
    uint64_t i = wp_hash(s, n) & t->vmask;
    for (;;) {
        int32_t id = t->vslot[i];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(t->pool + t->off[id], s, n) == 0) return id;
        i = (i + 1) & t->vmask;
    }
}

static bool wp_is(const wp_tok *t, int32_t id, const char *s) {
    size_t n = strlen(s);
    return id >= 0 && t->len[id] == n && memcmp(wp_str(t, id), s, n) == 0;
}

#define WP_NEW(mem, n, type) ((type *)el_tok_alloc_array(mem, n, sizeof(type), alignof(type)))

/* The tables for n tokens of pool bytes in all (each NUL included). */
static el_status wp_alloc(wp_tok *t, el_tok_mem *mem, uint32_t n, uint64_t pool) {
    if (pool > UINT32_MAX)
        return el_errorf(EL_E_UNSUPPORTED, "%s: %llu bytes of tokens; at most 4 GiB", t->path,
                         (unsigned long long)pool);
    uint64_t slots = 16;
    while (slots < (uint64_t)n * 2) slots <<= 1;
    t->n = n;
    t->pool = WP_NEW(mem, (size_t)pool, char);
    t->off = WP_NEW(mem, n, uint32_t);
    t->len = WP_NEW(mem, n, uint32_t);
    t->flags = WP_NEW(mem, n, uint8_t);
    t->vslot = WP_NEW(mem, (size_t)slots, int32_t);
    if (!t->pool || !t->off || !t->len || !t->flags || !t->vslot)
        return el_errorf(EL_E_NOMEM, "%s: out of memory for the tables of %u tokens (%llu "
                         "bytes of text)", t->path, (unsigned)n, (unsigned long long)pool);
    memset(t->vslot, 0xff, (size_t)slots * sizeof *t->vslot);
    t->vmask = (uint32_t)(slots - 1);
    return EL_OK;
}

/* Token id = s[0..l), copied at pool + *used (room checked by the caller's count). */
static el_status wp_put(wp_tok *t, uint32_t id, const char *s, size_t l, uint32_t *used) {
    if (l == 0) return el_errorf(EL_E_INVALID, "%s: token %u is empty", t->path, (unsigned)id);
    if (l > WP_TOKEN_BYTES)
        return el_errorf(EL_E_UNSUPPORTED, "%s: token %u has %zu bytes; at most %d", t->path,
                         (unsigned)id, l, WP_TOKEN_BYTES);
    if (!el_utf8_valid(s, l) || memchr(s, 0, l))
        return el_errorf(EL_E_INVALID, "%s: token %u is not valid UTF-8 text", t->path,
                         (unsigned)id);
    int32_t dup = wp_find(t, s, l);
    if (dup >= 0) {
        char p[64];
        return el_errorf(EL_E_INVALID, "%s: token '%s' appears twice (ids %d and %u)", t->path,
                         el_json_printable(s, l, p, sizeof p), (int)dup, (unsigned)id);
    }
    memcpy(t->pool + *used, s, l);
    t->pool[*used + l] = 0;
    t->off[id] = *used;
    t->len[id] = (uint32_t)l;
    *used += (uint32_t)l + 1;
    if (l > t->max_tok_len) t->max_tok_len = (uint32_t)l;
    uint64_t h = wp_hash(s, l) & t->vmask;
    while (t->vslot[h] >= 0) h = (h + 1) & t->vmask;
    t->vslot[h] = (int32_t)id;
    return EL_OK;
}

/* Adds id to the special tokens matched in the raw text (kept sorted: first byte, then
 * longest first). */
static el_status wp_add_special(wp_tok *t, el_tok_mem *mem, int32_t id) {
    for (uint32_t k = 0; k < t->n_added; k++)
        if (t->added[k] == id) return EL_OK;
    if (t->n_added == WP_ADDED_MAX)
        return el_errorf(EL_E_UNSUPPORTED, "%s: more than %d added tokens", t->path,
                         WP_ADDED_MAX);
    if (!t->added) {
        t->added = WP_NEW(mem, WP_ADDED_MAX, int32_t);
        if (!t->added)
            return el_errorf(EL_E_NOMEM, "%s: out of memory for the added tokens", t->path);
    }
    t->flags[id] |= WP_TOK_SPECIAL;
    uint32_t k = t->n_added++;
    unsigned char fb = (unsigned char)wp_str(t, id)[0];
    while (k > 0) {
        int32_t p = t->added[k - 1];
        unsigned char pb = (unsigned char)wp_str(t, p)[0];
        if (pb < fb || (pb == fb && t->len[p] >= t->len[id])) break;
        t->added[k] = p;
        k--;
    }
    t->added[k] = id;
    uint32_t j = 0;
    for (unsigned b = 0; b <= 256; b++) {
        while (b < 256 && j < t->n_added && (unsigned char)wp_str(t, t->added[j])[0] < b) j++;
        t->added_start[b] = b < 256 ? j : t->n_added;
    }
    return EL_OK;
}

/* The special ids, the required ones checked, and the model's vocabulary size. */
static el_status wp_finish(wp_tok *t, const char *unk, uint32_t vocab_size) {
    t->base.unk_id = wp_find(t, unk, strlen(unk));
    t->base.cls_id = wp_find(t, "[CLS]", 5);
    t->base.sep_id = wp_find(t, "[SEP]", 5);
    t->base.pad_id = wp_find(t, "[PAD]", 5);
    t->base.mask_id = wp_find(t, "[MASK]", 6);
    t->base.bos_id = t->base.cls_id;
    t->base.eos_id = t->base.sep_id;
    t->base.vocab_size = t->n;
    const char *missing = t->base.unk_id < 0 ? unk
                          : t->base.cls_id < 0 ? "[CLS]"
                          : t->base.sep_id < 0 ? "[SEP]"
                                               : NULL;
    if (missing) {
        char p[64];
        return el_errorf(EL_E_INVALID,
                         "%s: the vocabulary has no '%s' token: a BERT WordPiece vocabulary "
                         "needs its unknown token, [CLS] and [SEP]",
                         t->path, el_json_printable(missing, strlen(missing), p, sizeof p));
    }
    if (vocab_size != 0 && vocab_size != t->n)
        return el_errorf(EL_E_INVALID,
                         "%s: the tokenizer has %u tokens but the model's vocab_size is %u: "
                         "use the tokenizer that came with the model",
                         t->path, (unsigned)t->n, (unsigned)vocab_size);
    return EL_OK;
}

/* ---- encode ------------------------------------------------------------------------ */

typedef struct wp_enc {
    const wp_tok *t;
    int32_t *ids;               /* caller's buffer, or NULL to count only */
    size_t cap;
    size_t count;               /* ids produced (may pass cap: counted only) */
    char word[WP_CHARS_MAX * 4]; /* the word being built, normalized */
    size_t wlen;                /* bytes in word */
    size_t wchars;              /* characters of the word (counted past the buffer) */
} wp_enc;

static void wp_emit(wp_enc *e, int32_t id) {
    if (e->ids && e->count < e->cap) e->ids[e->count] = id;
    e->count++;
}

/* The word's WordPiece pieces: greedy longest match from the left, "##" after the first;
 * the whole word is [UNK] when it is too long or a part cannot be matched. */
static void wp_word_end(wp_enc *e) {
    const wp_tok *t = e->t;
    if (e->wchars == 0) return;
    size_t chars = e->wchars, wl = e->wlen;
    e->wchars = 0;
    e->wlen = 0;
    if (chars > t->max_chars) {
        wp_emit(e, t->base.unk_id);
        return;
    }
    int32_t pieces[WP_CHARS_MAX];
    size_t np = 0;
    char key[WP_PREFIX_MAX + WP_CHARS_MAX * 4];
    for (size_t start = 0; start < wl;) {
        size_t pre = start > 0 ? t->prefix_len : 0;
        if (pre) memcpy(key, t->prefix, pre);
        size_t end = wl;
        int32_t found = -1;
        while (end > start) {
            if (pre + (end - start) <= t->max_tok_len) {
                memcpy(key + pre, e->word + start, end - start);
                found = wp_find(t, key, pre + (end - start));
                if (found >= 0) break;
            }
            do end--; /* to the previous character boundary */
            while (end > start && ((unsigned char)e->word[end] & 0xc0) == 0x80);
        }
        if (found < 0) {
            wp_emit(e, t->base.unk_id);
            return;
        }
        pieces[np++] = found;
        start = end;
    }
    for (size_t i = 0; i < np; i++) wp_emit(e, pieces[i]);
}

static void wp_word_add(wp_enc *e, uint32_t cp) {
    char u[4];
    size_t ul = el_uni_encode(cp, u);
    if (e->wlen + ul <= sizeof e->word) {
        memcpy(e->word + e->wlen, u, ul);
        e->wlen += ul;
    }
    e->wchars++; /* past the buffer only the count matters: the word is [UNK] */
}

/* One normalized character through BertPreTokenizer. */
static void wp_pretok(wp_enc *e, uint32_t cp) {
    if (el_uni_is_space(cp)) {
        wp_word_end(e);
    } else if (el_uni_is_bert_punct(cp)) {
        wp_word_end(e);
        wp_word_add(e, cp);
        wp_word_end(e);
    } else {
        wp_word_add(e, cp);
    }
}

/* One character of the text through BertNormalizer. */
static void wp_char(wp_enc *e, uint32_t cp) {
    const wp_tok *t = e->t;
    if (t->clean_text) {
        bool ctl = el_uni_class(cp) == EL_UNI_CONTROL && cp != '\t' && cp != '\n' && cp != '\r';
        if (cp == 0 || cp == 0xfffd || ctl) return;
        if (el_uni_is_space(cp)) cp = ' ';
    }
    bool cjk = t->handle_cjk && el_uni_is_cjk(cp);
    if (cjk) wp_word_end(e);
    uint32_t f[3] = {cp, 0, 0};
    size_t nf = t->fold ? el_uni_bert_fold(cp, f) : 1;
    for (size_t k = 0; k < nf; k++) wp_pretok(e, f[k]);
    if (cjk) wp_word_end(e);
}

static void wp_piece(wp_enc *e, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += el_uni_decode(s + i, n - i, &cp);
        wp_char(e, cp);
    }
    wp_word_end(e);
}

/* The special token starting at s[0..n) (longest first), or -1. */
static int32_t wp_added_at(const wp_tok *t, const char *s, size_t n, size_t *tlen) {
    unsigned b = (unsigned char)s[0];
    for (uint32_t k = t->added_start[b]; k < t->added_start[b + 1]; k++) {
        int32_t id = t->added[k];
        size_t l = t->len[id];
        if (l <= n && memcmp(s, wp_str(t, id), l) == 0) {
            *tlen = l;
            return id;
        }
    }
    return -1;
}

/* The ids of text (validated), appended to e: specials in the raw text, and the pieces. */
static void wp_text(wp_enc *e, const char *text, size_t len) {
    const wp_tok *t = e->t;
    e->wlen = e->wchars = 0;
    size_t piece = 0;
    for (size_t i = 0; i < len && t->n_added;) {
        size_t tl = 0;
        int32_t id = wp_added_at(t, text + i, len - i, &tl);
        if (id < 0) {
            i++;
            continue;
        }
        wp_piece(e, text + piece, i - piece);
        wp_emit(e, id);
        i += tl;
        piece = i;
    }
    wp_piece(e, text + piece, len - piece);
}

static el_status wp_check_text(const char *what, const char *text, size_t len) {
    if (!text && len > 0) return el_errorf(EL_E_USAGE, "wordpiece encode: %s is NULL", what);
    size_t bad = len ? el_utf8_check(text, len) : 0;
    if (bad < len)
        return el_errorf(EL_E_INVALID,
                         "%s is not valid UTF-8 at byte %zu (0x%02x): pass UTF-8 text", what,
                         bad, (unsigned char)text[bad]);
    return EL_OK;
}

static el_status wp_encode(const el_tokenizer *base, const char *text, size_t len,
                           bool add_bos, int32_t *ids, size_t cap, size_t *n) {
    const wp_tok *t = (const wp_tok *)base;
    *n = 0;
    el_status st = wp_check_text("text", text, len);
    if (st != EL_OK) return st;
    wp_enc e = {.t = t, .ids = ids, .cap = ids ? cap : 0, .count = 0};
    if (add_bos) wp_emit(&e, t->base.cls_id);
    if (len > 0) wp_text(&e, text, len);
    *n = e.count;
    if (e.count > e.cap)
        return el_errorf(EL_E_NOFIT, "the text needs %zu token ids but the buffer holds %zu",
                         e.count, e.cap);
    return EL_OK;
}

/* How many of la and lb ids stay to fit m (HF's LongestFirst: the shorter keeps what it
 * can, the longer the rest; when both are long, halves, the odd one to the longer). */
static void wp_truncate(size_t la, size_t lb, size_t m, size_t *ka, size_t *kb) {
    if (la + lb <= m) {
        *ka = la;
        *kb = lb;
        return;
    }
    bool swap = la > lb;
    size_t n1 = swap ? lb : la, n2;
    if (n1 > m) n2 = n1;
    else n2 = n1 > m - n1 ? n1 : m - n1;
    if (n1 + n2 > m) {
        n1 = m / 2;
        n2 = n1 + m % 2;
    }
    size_t a = swap ? n2 : n1, b = swap ? n1 : n2;
    *ka = la < a ? la : a;
    *kb = lb < b ? lb : b;
}

el_status el_tokenizer_encode_pair(const el_tokenizer *base, const char *a, size_t alen,
                                   const char *b, size_t blen, size_t max_len, int32_t *ids,
                                   int32_t *type_ids, size_t cap, size_t *n, bool *truncated) {
    if (n) *n = 0;
    if (truncated) *truncated = false;
    if (!base || !n) return el_errorf(EL_E_USAGE, "el_tokenizer_encode_pair: NULL argument");
    if (base->vt != &wp_vtable)
        return el_errorf(EL_E_USAGE,
                         "el_tokenizer_encode_pair: a %s tokenizer has no BERT sentence "
                         "pairs (WordPiece only)",
                         base->vt->name);
    const wp_tok *t = (const wp_tok *)base;
    size_t specials = b ? 3 : 2;
    if (max_len < specials)
        return el_errorf(EL_E_USAGE,
                         "el_tokenizer_encode_pair: max_len %zu leaves no room: [CLS] and "
                         "[SEP]%s need %zu",
                         max_len, b ? " twice" : "", specials);
    el_status st = wp_check_text("text a", a, alen);
    if (st == EL_OK && b) st = wp_check_text("text b", b, blen);
    if (st != EL_OK) return st;

    /* Count both, then write what stays of each (encoding writes a prefix of its ids). */
    wp_enc e = {.t = t, .ids = NULL, .cap = 0, .count = 0};
    if (alen) wp_text(&e, a, alen);
    size_t la = e.count;
    e.count = 0;
    if (b && blen) wp_text(&e, b, blen);
    size_t lb = e.count;
    size_t ka = la, kb = lb;
    wp_truncate(la, b ? lb : 0, max_len - specials, &ka, &kb);
    if (!b) kb = 0;
    if (truncated) *truncated = ka < la || (b && kb < lb);
    size_t total = ka + kb + specials;
    *n = total;
    if (!ids || cap < total)
        return el_errorf(EL_E_NOFIT, "the input needs %zu token ids but the buffer holds %zu",
                         total, ids ? cap : 0);
    ids[0] = t->base.cls_id;
    e.ids = ids + 1;
    e.cap = ka;
    e.count = 0;
    if (ka) wp_text(&e, a, alen);
    ids[1 + ka] = t->base.sep_id;
    if (b) {
        e.ids = ids + 2 + ka;
        e.cap = kb;
        e.count = 0;
        if (kb) wp_text(&e, b, blen);
        ids[2 + ka + kb] = t->base.sep_id;
    }
    if (type_ids)
        for (size_t i = 0; i < total; i++) type_ids[i] = i < ka + 2 ? 0 : 1;
    return EL_OK;
}

/* ---- decode ------------------------------------------------------------------------ */

/* HF's WordPiece decoder cleans every token on its own (" ." -> "." and so on): of its
 * rules only the four one-character ones can match a token with its leading space. */
static bool wp_no_space_before(const char *s, size_t n) {
    return n == 1 && (s[0] == '.' || s[0] == ',' || s[0] == '?' || s[0] == '!');
}

static el_status wp_decode(const el_tokenizer *base, int32_t prev, int32_t id, char *buf,
                           size_t cap, size_t *n) {
    const wp_tok *t = (const wp_tok *)base;
    *n = 0;
    if (id < 0 || (uint32_t)id >= t->n)
        return el_errorf(EL_E_INVALID, "%s: token id %d is out of range [0, %u)", t->path,
                         (int)id, (unsigned)t->n);
    const char *s = wp_str(t, id);
    size_t sl = t->len[id];
    bool space = false;
    if (t->flags[id] & WP_TOK_SPECIAL) {
        sl = 0; /* skip_special_tokens */
    } else if (sl > t->prefix_len && memcmp(s, t->prefix, t->prefix_len) == 0) {
        s += t->prefix_len;
        sl -= t->prefix_len;
    } else {
        bool first = prev < 0 || prev == t->base.cls_id;
        space = !first && !wp_no_space_before(s, sl);
    }
    size_t o = (space ? 1 : 0) + sl;
    *n = o;
    if (o + 1 > cap) {
        if (cap > 0) buf[0] = 0;
        *n = 0;
        return el_errorf(EL_E_NOFIT, "token %d decodes to %zu bytes but the buffer holds %zu",
                         (int)id, o + 1, cap);
    }
    if (space) buf[0] = ' ';
    memcpy(buf + (space ? 1 : 0), s, sl);
    buf[o] = 0;
    return EL_OK;
}

/* ---- open / close ------------------------------------------------------------------ */

static const el_tokenizer_vtable wp_vtable = {
    .name = "wordpiece",
    .encode = wp_encode,
    .decode = wp_decode,
    .close = NULL, /* everything is in the block */
};

static wp_tok *wp_new(el_tok_mem *mem, const char *name) {
    wp_tok *t = WP_NEW(mem, 1, wp_tok);
    if (!t) return NULL;
    t->base.vt = &wp_vtable;
    el_tokenizer_base_init(&t->base);
    snprintf(t->path, sizeof t->path, "%s", name ? name : "?");
    t->max_chars = 100;
    memcpy(t->prefix, "##", 2);
    t->prefix_len = 2;
    t->clean_text = true;
    t->handle_cjk = true;
    return t;
}

/* What a build reads: vocab.txt (a file at path, or data[0..len)), or a parsed
 * tokenizer.json (root). */
typedef struct wp_args {
    const char *path;
    const char *data;
    size_t len;
    const el_hf_src *src;     /* tokenizer.json (a tree, or the file streamed) */
    const char *name;
    bool lowercase;
    uint32_t vocab_size;
} wp_args;

/* vocab.txt: one token a line; CRLF accepted; the last newline optional. */
static el_status wp_build_txt(wp_tok *t, el_tok_mem *mem, el_tok_reader *r,
                              uint32_t vocab_size) {
    /* pass 1: lines and bytes */
    uint64_t lines = 0, pool = 0;
    const char *line;
    size_t ll;
    bool got;
    el_status st;
    while ((st = el_tok_read_line(r, &line, &ll, &got)) == EL_OK && got) {
        lines++;
        pool += (ll > 0 && line[ll - 1] == '\r' ? ll - 1 : ll) + 1;
    }
    if (st != EL_OK) return st;
    if (lines == 0) return el_errorf(EL_E_INVALID, "%s: the vocabulary is empty", t->path);
    if (lines > WP_TOKENS_MAX)
        return el_errorf(EL_E_UNSUPPORTED, "%s: %llu tokens; at most %u", t->path,
                         (unsigned long long)lines, WP_TOKENS_MAX);
    if ((st = wp_alloc(t, mem, (uint32_t)lines, pool)) != EL_OK) return st;
    /* pass 2: the tokens */
    el_tok_reader_rewind(r);
    uint32_t used = 0;
    for (uint32_t k = 0; k < (uint32_t)lines; k++) {
        if ((st = el_tok_read_line(r, &line, &ll, &got)) != EL_OK) return st;
        size_t e = got && ll > 0 && line[ll - 1] == '\r' ? ll - 1 : ll;
        if (!got || used + (uint64_t)e + 1 > pool)
            return el_errorf(EL_E_IO, "%s: changed while read (line %u)", t->path,
                             (unsigned)k + 1);
        if (e == 0)
            return el_errorf(EL_E_INVALID,
                             "%s: line %u is empty: a vocab.txt holds one token per line",
                             t->path, (unsigned)k + 1);
        if ((st = wp_put(t, k, line, e, &used)) != EL_OK) return st;
    }
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (size_t i = 0; i < 5; i++) {
        int32_t id = wp_find(t, specials[i], strlen(specials[i]));
        if (id >= 0 && (st = wp_add_special(t, mem, id)) != EL_OK) return st;
    }
    return wp_finish(t, "[UNK]", vocab_size);
}

static el_status wp_build_json(wp_tok *t, el_tok_mem *mem, const el_hf_src *src,
                               uint32_t vocab_size);

static el_status wp_build(const void *pa, el_tok_mem *mem, el_tokenizer **out) {
    const wp_args *a = pa;
    *out = NULL;
    const char *name = a->name ? a->name : a->path;
    wp_tok *t = wp_new(mem, name);
    if (!t) return el_errorf(EL_E_NOMEM, "%s: out of memory", name ? name : "wordpiece");
    el_status st;
    if (a->src) {
        st = wp_build_json(t, mem, a->src, a->vocab_size);
    } else {
        t->fold = a->lowercase;
        el_tok_reader r;
        if (a->path) {
            if ((st = el_tok_reader_open(&r, a->path)) != EL_OK) return st;
            if (r.size == 0 || r.size > EL_TOKENIZER_JSON_MAX) {
                el_tok_reader_close(&r);
                return el_errorf(EL_E_INVALID,
                                 "%s: %llu bytes: a vocab.txt must be 1 byte to %llu MiB",
                                 a->path, (unsigned long long)r.size,
                                 (unsigned long long)(EL_TOKENIZER_JSON_MAX >> 20));
            }
        } else {
            el_tok_reader_mem(&r, a->data, a->len, t->path);
        }
        st = wp_build_txt(t, mem, &r, a->vocab_size);
        el_tok_reader_close(&r);
    }
    if (st != EL_OK) return st;
    *out = &t->base;
    return EL_OK;
}

el_status el_tokenizer_wordpiece_parse_mem(const char *data, size_t len, const char *name,
                                           bool lowercase, uint32_t vocab_size,
                                           el_tok_mem *mem, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: out is NULL");
    *out = NULL;
    if (!data && len > 0) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: data is NULL");
    wp_args a = {.data = data, .len = len, .name = name, .lowercase = lowercase,
                 .vocab_size = vocab_size};
    return wp_build(&a, mem, out);
}

el_status el_tokenizer_wordpiece_parse(const char *data, size_t len, const char *name,
                                       bool lowercase, uint32_t vocab_size,
                                       el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: out is NULL");
    *out = NULL;
    if (!data && len > 0) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: data is NULL");
    wp_args a = {.data = data, .len = len, .name = name, .lowercase = lowercase,
                 .vocab_size = vocab_size};
    return el_tok_build_heap(wp_build, &a, out);
}

el_status el_tokenizer_wordpiece_open_mem(const char *vocab_txt, bool lowercase,
                                          uint32_t vocab_size, el_tok_mem *mem,
                                          el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: out is NULL");
    *out = NULL;
    if (!vocab_txt) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: path is NULL");
    wp_args a = {.path = vocab_txt, .lowercase = lowercase, .vocab_size = vocab_size};
    return wp_build(&a, mem, out);
}

el_status el_tokenizer_wordpiece_open(const char *vocab_txt, bool lowercase,
                                      uint32_t vocab_size, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: out is NULL");
    *out = NULL;
    if (!vocab_txt) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: path is NULL");
    wp_args a = {.path = vocab_txt, .lowercase = lowercase, .vocab_size = vocab_size};
    return el_tok_build_heap(wp_build, &a, out);
}

/* ---- tokenizer.json ---------------------------------------------------------------- */

static const cJSON *wp_get(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static el_status wp_bad(const wp_tok *t, const char *field, const char *want, const cJSON *got) {
    char d[64];
    return el_errorf(EL_E_INVALID, "%s: %s must be %s, got %s", t->path, field, want,
                     el_json_describe(got, d, sizeof d));
}

static el_status wp_bool(const wp_tok *t, const cJSON *o, const char *key, bool *out) {
    const cJSON *v = wp_get(o, key);
    if (!v) return EL_OK;
    if (!cJSON_IsBool(v)) {
        char f[64];
        snprintf(f, sizeof f, "normalizer.%s", key);
        return wp_bad(t, f, "true, false or null", v);
    }
    *out = cJSON_IsTrue(v);
    return EL_OK;
}

static const char *wp_type(const cJSON *o) {
    const cJSON *ty = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "type") : NULL;
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static el_status wp_json_normalizer(wp_tok *t, const cJSON *root) {
    const cJSON *nz = wp_get(root, "normalizer");
    if (!nz) {
        t->clean_text = t->handle_cjk = t->fold = false;
        return EL_OK;
    }
    const char *ty = wp_type(nz);
    if (!ty || strcmp(ty, "BertNormalizer") != 0)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: normalizer type '%s' is not supported by the wordpiece "
                         "tokenizer (BertNormalizer or none)",
                         t->path, ty ? ty : "?");
    bool lower = true, strip = false, strip_set = false;
    el_status st = wp_bool(t, nz, "clean_text", &t->clean_text);
    if (st == EL_OK) st = wp_bool(t, nz, "handle_chinese_chars", &t->handle_cjk);
    if (st == EL_OK) st = wp_bool(t, nz, "lowercase", &lower);
    if (st == EL_OK && wp_get(nz, "strip_accents")) {
        strip_set = true;
        st = wp_bool(t, nz, "strip_accents", &strip);
    }
    if (st != EL_OK) return st;
    if (!strip_set) strip = lower; /* HF: strip_accents null follows lowercase */
    if (strip != lower)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: BertNormalizer with lowercase %s and strip_accents %s is not "
                         "supported (both true, or both false)",
                         t->path, lower ? "true" : "false", strip ? "true" : "false");
    t->fold = lower;
    return EL_OK;
}

/* The passes over a tokenizer.json's model.vocab and added_tokens (tokenizer/hf_src.h: a
 * tree, or the file streamed element by element). */
typedef struct wp_json_pass {
    wp_tok *t;
    el_tok_mem *mem;
    uint64_t n, pool; /* pass 1: tokens and their bytes */
    uint32_t used;    /* pass 2: pool bytes filled */
} wp_json_pass;

static el_status wp_json_count(void *u, const char *s, size_t n, const cJSON *id) {
    wp_json_pass *p = u;
    (void)s;
    (void)id;
    p->n++;
    p->pool += n + 1;
    return EL_OK;
}

static el_status wp_json_put(void *u, const char *s, size_t n, const cJSON *id) {
    wp_json_pass *p = u;
    uint64_t v = 0;
    if (!el_json_get_u64(id, p->n - 1, &v)) {
        char shown[64];
        return el_errorf(EL_E_INVALID,
                         "%s: model.vocab['%s'] must be an id in [0, %u): ids must be 0..n-1 "
                         "without gaps", p->t->path, el_json_printable(s, n, shown, sizeof shown),
                         (unsigned)p->n);
    }
    if (p->t->len[v]) /* tokens are never empty: set */
        return el_errorf(EL_E_INVALID, "%s: model.vocab gives id %llu to two tokens",
                         p->t->path, (unsigned long long)v);
    if (memchr(s, 0, n))
        return el_errorf(EL_E_INVALID, "%s: model.vocab: a token holds a NUL", p->t->path);
    return wp_put(p->t, (uint32_t)v, s, n, &p->used);
}

static el_status wp_json_added(void *u, uint32_t i, const cJSON *a) {
    wp_json_pass *p = u;
    uint64_t v = 0;
    const cJSON *c = wp_get(a, "content");
    const cJSON *idv = wp_get(a, "id");
    (void)i;
    if (!cJSON_IsString(c) || !el_json_get_u64(idv, p->n - 1, &v) ||
        !wp_is(p->t, (int32_t)v, c->valuestring))
        return el_errorf(EL_E_UNSUPPORTED, "%s: added_tokens: every added token must be a "
                         "vocabulary token with its id", p->t->path);
    return wp_add_special(p->t, p->mem, (int32_t)v);
}

static el_status wp_build_json(wp_tok *t, el_tok_mem *mem, const el_hf_src *src,
                               uint32_t vocab_size) {
    el_status st = EL_OK;
    const cJSON *root = src->root;
    const cJSON *model = wp_get(root, "model");
    const cJSON *vocab = wp_get(model, "vocab");
    if (!cJSON_IsObject(vocab)) return wp_bad(t, "model.vocab", "an object", vocab);
    /* the pre-tokenizer */
    const cJSON *pt = wp_get(root, "pre_tokenizer");
    const char *pty = wp_type(pt);
    if (!pty || strcmp(pty, "BertPreTokenizer") != 0)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: pre_tokenizer type '%s' is not supported by the wordpiece "
                         "tokenizer (BertPreTokenizer only)",
                         t->path, pty ? pty : "none");
    if ((st = wp_json_normalizer(t, root)) != EL_OK) return st;
    /* model options */
    const char *unk = "[UNK]";
    const cJSON *u = wp_get(model, "unk_token");
    const cJSON *pre = wp_get(model, "continuing_subword_prefix");
    const cJSON *mc = wp_get(model, "max_input_chars_per_word");
    uint64_t v = 0;
    if (u && !cJSON_IsString(u)) return wp_bad(t, "model.unk_token", "a string", u);
    if (u) unk = u->valuestring;
    if (pre) {
        size_t pl = cJSON_IsString(pre) ? strlen(pre->valuestring) : 0;
        if (pl == 0 || pl >= WP_PREFIX_MAX)
            return wp_bad(t, "model.continuing_subword_prefix", "a string of 1 to 15 bytes",
                          pre);
        memcpy(t->prefix, pre->valuestring, pl);
        t->prefix_len = (uint32_t)pl;
    }
    if (mc) {
        if (!el_json_get_u64(mc, WP_CHARS_MAX, &v) || v == 0)
            return el_errorf(EL_E_UNSUPPORTED, "%s: model.max_input_chars_per_word must be "
                             "1..%d", t->path, WP_CHARS_MAX);
        t->max_chars = (uint32_t)v;
    }
    /* the vocabulary: ids 0..n-1, each once; pass 1 sizes the text, pass 2 copies it (in
     * the object's order: off[] places each id) */
    wp_json_pass jp = {t, mem, 0, 0, 0};
    if ((st = src->vocab(src->ctx, wp_json_count, &jp)) != EL_OK) return st;
    if (jp.n == 0 || jp.n > WP_TOKENS_MAX)
        return el_errorf(EL_E_INVALID, "%s: model.vocab has %llu tokens: 1 to %u supported",
                         t->path, (unsigned long long)jp.n, WP_TOKENS_MAX);
    if ((st = wp_alloc(t, mem, (uint32_t)jp.n, jp.pool)) != EL_OK) return st;
    if ((st = src->vocab(src->ctx, wp_json_put, &jp)) != EL_OK) return st;
    /* added tokens: matched in the raw text */
    const cJSON *added = wp_get(root, "added_tokens");
    if (added && !cJSON_IsArray(added)) return wp_bad(t, "added_tokens", "an array", added);
    if (src->added && (st = src->added(src->ctx, wp_json_added, &jp)) != EL_OK) return st;
    return wp_finish(t, unk, vocab_size);
}

el_status el_tokenizer_wordpiece_from_json_mem(const cJSON *root, const char *name,
                                               uint32_t vocab_size, el_tok_mem *mem,
                                               el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: out is NULL");
    *out = NULL;
    el_hf_src src;
    el_hf_src_tree(&src, root, name ? name : "tokenizer.json");
    return el_tokenizer_wordpiece_from_src_mem(&src, vocab_size, mem, out);
}

el_status el_tokenizer_wordpiece_from_src_mem(const el_hf_src *src, uint32_t vocab_size,
                                              el_tok_mem *mem, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: out is NULL");
    *out = NULL;
    wp_args a = {.src = src, .name = src->name, .vocab_size = vocab_size};
    return wp_build(&a, mem, out);
}

el_status el_tokenizer_wordpiece_from_json(const cJSON *root, const char *name,
                                           uint32_t vocab_size, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "wordpiece tokenizer: out is NULL");
    *out = NULL;
    el_hf_src src;
    el_hf_src_tree(&src, root, name ? name : "tokenizer.json");
    wp_args a = {.src = &src, .name = src.name, .vocab_size = vocab_size};
    return el_tok_build_heap(wp_build, &a, out);
}
