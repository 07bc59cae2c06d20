/* hf_bpe.c - the Hugging Face tokenizer.json BPE backend, reproducing the `tokenizers`
 * library's ids exactly for the pipelines it accepts: SentencePiece-shaped BPE with byte
 * fallback (Llama 2, TinyLlama, Mistral, Gemma 3) and byte-level BPE (GPT-2, RoBERTa,
 * Llama 3.x, Qwen2/2.5, SmolLM/SmolLM2). docs/TOKENIZERS.md has the table by model.
 *
 * Accepted (anything else is EL_E_UNSUPPORTED naming the component):
 *   added_tokens   matched on the raw text, leftmost-longest, before normalization (as HF
 *                  does for normalized=false tokens), through a sorted-array trie (Gemma 3
 *                  has thousands); lstrip / rstrip take the whitespace before / after into
 *                  the token, single_word drops a match with a word character (letter,
 *                  number, '_') on either side, as HF does; normalized true is refused
 *   normalizer     null, Prepend, Replace (String pattern of one character), or a Sequence
 *                  of those (Llama-2 / TinyLlama: Prepend "▁" + Replace " " -> "▁"); NFC
 *                  as the first step (Qwen2) is a check, not a normalization: text NFC
 *                  would change (el_uni_nfc_stable: quick check, Maybe resolved) is
 *                  EL_E_UNSUPPORTED "needs NFC normalization"; other text passes unchanged
 *   pre_tokenizer  null; Split String " " MergedWithPrevious after a normalizer that
 *                  replaces every ' ' (Gemma 3's: a no-op, as HF normalizes first);
 *                  Metaspace (prepend_scheme always/first/never or the older
 *                  add_prefix_space, split true/false), alone or as a one-element Sequence;
 *                  or ByteLevel (add_prefix_space false), alone or after one of
 *                    Split, Regex = Llama 3's or Qwen2's pattern (exact string compare),
 *                          behavior Isolated, invert false (hf_tk_pretoken matches them
 *                          by hand; any other pattern is refused naming it)
 *                    Digits, individual_digits true (SmolLM2) or false
 *                  with use_regex true: GPT-2's pattern (hf_bl_pretoken) inside each part;
 *                  false (Llama 3, Qwen2): each part is one word. Every byte of a word
 *                  becomes its byte-level character (bytes_to_unicode); a byte whose
 *                  character is not in the vocabulary (SmolLM2 lacks 21) is unk (fused or
 *                  not) when there is an unk_token, else dropped, as HF's BPE does. Only
 *                  NFC may come before ByteLevel in the normalizer
 *   model          BPE: vocab, merges ("a b" strings or [a, b] pairs), unk_token, fuse_unk,
 *                  byte_fallback, ignore_merges; no dropout, no subword prefix/suffix
 *   post_processor null, ByteLevel (ids unchanged), TemplateProcessing "<special> $A"
 *                  (gives the BOS id), or a Sequence of those (Llama 3.1: ByteLevel then
 *                  TemplateProcessing "<|begin_of_text|> $A")
 *   decoder        Metaspace, or a Sequence of Replace, ByteFallback, Fuse, Strip (stop 0),
 *                  Metaspace; or ByteLevel alone (each character back to its byte)
 *
 * vocab_size 0 skips the check against the model's vocabulary (tools that only tokenize).
 * A model with more rows than tokens is accepted (Qwen2.5 pads 151,665 tokens to 151,936;
 * decode gives nothing for the ids in between, as HF skips unknown ids). Fewer rows only
 * when every token past them is an added token (Gemma 3 1B's <image_soft_token>); encode
 * refuses a text that holds one, so no id ever reaches past the model's rows.
 * All tables are built at open, into one tok_mem block (tokenizer/tok_mem.h: the arena's
 * tokenizer region or an exact heap block), from a source (tokenizer/hf_src.h) that gives
 * model.vocab, model.merges and added_tokens element by element. encode allocates nothing (it uses about 26 KiB of stack):
 * the symbols of one word are merged in a fixed stack buffer (HF_WORD_MAX), or in the
 * caller's ids buffer when a word is longer. Merging follows HF's priority queue (lowest
 * rank, then leftmost) with an indexed heap over the word's pairs, O(m log m) for m
 * symbols; a word in the caller's buffer uses 5 m more ids of it behind the word as heap
 * space when they are free, else merges in place one rank per sweep (hf_bpe_scan: O(m)
 * per rank used, m <= cap); the text
 * between added tokens is processed as HF does (one BPE "word" per pre-token), split
 * further only where the vocabulary proves that no merge can cross the split (see
 * hf_split_safe), which gives identical ids with bounded work space. Pre-tokenizing is
 * linear: every matcher consumes what it scans, except the whitespace rule, which gives
 * back at most one character. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/hf_src.h"
#include "tokenizer/json_stream.h"

#include "loader/safetensors.h"
#include "tokenizer/unicode.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HF_TOKENS_MAX (1u << 22)    /* ids accepted (Gemma has 256 K) */
#define HF_WORD_MAX 1024            /* symbols of one word merged in stack memory */
#define HF_WORD_BYTES 1024          /* bytes of a word kept for ignore_merges lookups */
#define HF_OPS_MAX 8                /* normalizer / decoder steps */
#define HF_STR_MAX 32               /* bytes of a Prepend / Replace / Metaspace string */
#define HF_NORM_GROWTH_MAX 256      /* characters one character may become in the normalizer */
#define HF_BL_CHARS 324            /* byte-level characters are below U+0144 */
#define HF_DEC_CHAR_BYTES (HF_STR_MAX * 4) /* bytes one character may become in the decoder,
                                              NUL included (hf_decode's buffer) */

/* ---- the tokenizer ----------------------------------------------------------------- */

enum { HF_OP_PREPEND, HF_OP_REPLACE };

typedef struct hf_op {
    int kind;                   /* HF_OP_* */
    char pat[8];                /* REPLACE: the one character replaced (UTF-8) */
    uint32_t pat_len;           /* bytes */
    char text[HF_STR_MAX];      /* PREPEND: the prefix; REPLACE: the replacement */
    uint32_t text_len;          /* bytes, > 0 */
} hf_op;

enum { HF_SCHEME_ALWAYS, HF_SCHEME_FIRST, HF_SCHEME_NEVER };

/* Pre-tokenizer steps accepted before a ByteLevel one: Split with Llama 3's or Qwen2's
 * regex (Isolated), Digits (individual_digits true or false). */
enum { HF_SPLIT_NONE, HF_SPLIT_LLAMA3, HF_SPLIT_QWEN2, HF_SPLIT_DIGITS, HF_SPLIT_DIGIT_RUNS,
       HF_SPLIT_GGML_DEFAULT };

typedef struct hf_merge {
    uint64_t key;               /* (left id << 32) | right id; UINT64_MAX = empty slot */
    uint32_t rank;              /* position in merges: lower merges first */
    int32_t result;             /* id of left + right */
} hf_merge;

enum { HF_TOK_SPECIAL = 1u << 0, HF_TOK_BYTE = 1u << 1, HF_TOK_VOCAB = 1u << 2,
       HF_TOK_ADDED = 1u << 3, HF_TOK_LSTRIP = 1u << 4, HF_TOK_RSTRIP = 1u << 5,
       HF_TOK_SINGLE_WORD = 1u << 6,
       HF_TOK_HAS = 1u << 7 /* build only: the id has its string */ };

typedef struct hf_tok {
    el_tokenizer base;
    char path[256];             /* for messages, truncated */

    /* vocabulary: ids 0..n-1, dense */
    uint32_t n;
    char *pool;                 /* every token's bytes, each NUL-terminated */
    uint32_t *off;              /* (n) offset of token i in pool */
    uint32_t *len;              /* (n) bytes of token i */
    uint8_t *flags;             /* (n) HF_TOK_* */
    uint8_t *byte;              /* (n) the byte a <0xXX> token stands for */
    int32_t byte_id[256];       /* id of <0xXX>, -1 if absent */
    int32_t *vslot;             /* string -> id open-addressing table, -1 = empty */
    uint32_t vmask;             /* slots - 1 */
    uint32_t max_tok_len;       /* bytes of the longest token */

    /* merges */
    hf_merge *mslot;            /* open-addressing table */
    uint64_t mmask;             /* slots - 1 */
    uint32_t n_merges;

    /* added tokens, matched on the raw text */
    int32_t *added;             /* (n_added) ids sorted by their bytes (memcmp, a prefix
                                   first): a sorted-array trie (hf_added_at) */
    uint32_t n_added;

    /* BPE options */
    int32_t unk_id;             /* -1 if none */
    bool byte_fallback;
    bool fuse_unk;
    bool ignore_merges;

    /* normalizer */
    hf_op norm[HF_OPS_MAX];
    uint32_t n_norm;

    /* Metaspace pre-tokenizer */
    bool ms;
    char ms_rep[8];             /* the replacement character (UTF-8) */
    uint32_t ms_rep_len;
    int ms_scheme;              /* HF_SCHEME_* */
    bool ms_split;              /* split before every replacement character */

    /* Extra word splits that cannot change the result (hf_split_safe) */
    bool split_safe;
    char split_ch[8];           /* split before this character when it follows another */
    uint32_t split_ch_len;

    /* ByteLevel pre-tokenizer (GPT-2): bytes -> their one-character tokens */
    bool bl;
    int bl_split;               /* HF_SPLIT_*: the pre-tokenizer step before ByteLevel */
    bool bl_regex;              /* ByteLevel use_regex: GPT-2's pattern inside each split */
    bool nfc;                   /* NFC normalizer: text must be NFC already (hf_piece) */
    uint32_t model_vocab;       /* the model's vocab_size (>= n), 0 = n */
    int32_t bl_id[256];         /* id of the token for byte b, -1 if the vocabulary lacks it
                                   (SmolLM2 lacks 21: unk, or dropped as HF drops them) */
    char bl_chr[256][2];        /* byte b's character (UTF-8, 1 or 2 bytes) */
    bool dec_bl;                /* ByteLevel decoder: characters back to bytes */
    int16_t bl_byte[HF_BL_CHARS]; /* code point -> the byte it stands for, -1 if none */

    /* decoder */
    hf_op dec[HF_OPS_MAX];      /* Replace steps, applied in order */
    uint32_t n_dec;
    bool dec_byte_fallback;     /* <0xXX> -> the raw byte */
    uint32_t dec_strip_start;   /* leading ' ' characters stripped */
    bool dec_strip_each;        /* strip every token (Strip before any Fuse), else the first */
    bool dec_ms_first;          /* Metaspace decoder: drop the first token's replacement chars */
    char dec_ms_rep[8];
    uint32_t dec_ms_rep_len;
} hf_tok;

/* ---- small helpers ----------------------------------------------------------------- */

/* Length of the UTF-8 character at s[0..n), 0 if invalid (overlong, surrogate, > U+10FFFF,
 * truncated). */
static size_t hf_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return len;
}

/* True if s (n bytes) is exactly one valid UTF-8 character. */
static bool hf_one_char(const char *s, size_t n) {
    return n > 0 && hf_utf8_len((const unsigned char *)s, n) == n;
}

static uint64_t hf_hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hf_hash_pair(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 31);
}

static int32_t hf_vocab_find(const hf_tok *t, const char *s, size_t n) {
    uint64_t i = hf_hash_bytes(s, n) & t->vmask;
    for (;;) {
        int32_t id = t->vslot[i];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(t->pool + t->off[id], s, n) == 0) return id;
        i = (i + 1) & t->vmask;
    }
}

/* The same in model.vocab only: what HF's BPE model looks words and characters up in (an
 * added token that model.vocab lacks is not a BPE symbol). */
static int32_t hf_model_find(const hf_tok *t, const char *s, size_t n) {
    int32_t id = hf_vocab_find(t, s, n);
    return (id >= 0 && (t->flags[id] & HF_TOK_VOCAB)) ? id : -1;
}

static const hf_merge *hf_merge_find(const hf_tok *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t i = hf_hash_pair(key) & t->mmask;
    for (;;) {
        const hf_merge *m = &t->mslot[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
        i = (i + 1) & t->mmask;
    }
}

static const char *hf_tok_str(const hf_tok *t, int32_t id) {
    return t->pool + t->off[id];
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68
 * (controls, space, DEL, NBSP, soft hyphen...) for U+0100 onwards in byte order. */
static uint32_t hf_bl_char_of(unsigned b) {
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
        return b;
    uint32_t k = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff)))
            k++;
    return 256 + k;
}

size_t el_tokenizer_byte_char(unsigned b, char out[4]) {
    return el_uni_encode(hf_bl_char_of(b & 0xff), out);
}

/* ---- encode ------------------------------------------------------------------------ */

/* Encoder state: lives on encode's stack, so encode allocates nothing. */
typedef struct hf_enc {
    const hf_tok *t;
    int32_t *ids;               /* caller's buffer */
    size_t cap;                 /* its capacity in ids */
    size_t count;               /* ids produced so far; may pass cap (then only counted) */
    bool inexact;               /* a word outgrew all work space: count is an upper bound */
    el_status st;               /* first failure */
    size_t text_off;            /* byte offset of the character being processed */

    /* the current piece (text between added tokens) */
    bool ms_first_pending;      /* Metaspace has not seen the piece's first character */
    bool ms_prepend;            /* Metaspace prepends its replacement to this piece */
    bool last_was_split;        /* previous character was split_ch (hf_split_safe) */

    /* the current word */
    int32_t *w;                 /* symbols: stack or &ids[count] */
    size_t wlen;                /* symbols in the word (counted past wcap on overflow) */
    size_t wcap;                /* capacity of w */
    bool w_in_ids;              /* w lives in the caller's buffer */
    bool w_over;                /* no room anywhere: symbols only counted */
    bool pending_unk;           /* HF's deferred (possibly fused) unknown token */
    char wb[HF_WORD_BYTES];     /* the word's bytes, for ignore_merges */
    size_t wb_len;
    bool wb_over;               /* word longer than wb: cannot be a token */
    int32_t stack[HF_WORD_MAX];
    int32_t work[5 * HF_WORD_MAX]; /* hf_bpe's heap and links for a word in stack */
} hf_enc;

static void hf_word_reset(hf_enc *e) {
    e->w = e->stack;
    e->wlen = 0;
    e->wcap = HF_WORD_MAX;
    e->w_in_ids = false;
    e->w_over = false;
    e->pending_unk = false;
    e->wb_len = 0;
    e->wb_over = false;
}

static void hf_word_push(hf_enc *e, int32_t id) {
    if (!e->w_over && e->wlen == e->wcap) {
        /* The stack buffer is full: carry on in the caller's buffer if it has room. */
        if (!e->w_in_ids && e->count < e->cap && e->cap - e->count > e->wlen) {
            memcpy(e->ids + e->count, e->w, e->wlen * sizeof *e->w);
            e->w = e->ids + e->count;
            e->wcap = e->cap - e->count;
            e->w_in_ids = true;
        } else {
            e->w_over = true;
        }
    }
    if (!e->w_over) e->w[e->wlen] = id;
    e->wlen++;
}

/* The merge heap over a word's symbols s[0..m): pair (i, nx[i]) has rank rk[i]
 * (UINT32_MAX: no merge); h[0..hn) holds the positions with a rank as a binary heap by
 * (rank, position), at[i] is i's index in h or -1. Five int32 per symbol. */
typedef struct hf_heap {
    int32_t *h, *at, *nx, *pv;
    uint32_t *rk;
    size_t hn;
} hf_heap;

/* Pair at position a before pair at b: lower rank, then further left. */
static bool hf_heap_less(const hf_heap *q, int32_t a, int32_t b) {
    uint32_t ra = q->rk[a], rb = q->rk[b];
    return ra < rb || (ra == rb && a < b);
}

static void hf_heap_place(hf_heap *q, size_t i, int32_t pos) {
    q->h[i] = pos;
    q->at[pos] = (int32_t)i;
}

static void hf_heap_fix(hf_heap *q, size_t i) {
    int32_t pos = q->h[i];
    while (i > 0 && hf_heap_less(q, pos, q->h[(i - 1) / 2])) { /* up */
        hf_heap_place(q, i, q->h[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) { /* down */
        size_t c = 2 * i + 1;
        if (c >= q->hn) break;
        if (c + 1 < q->hn && hf_heap_less(q, q->h[c + 1], q->h[c])) c++;
        if (!hf_heap_less(q, q->h[c], pos)) break;
        hf_heap_place(q, i, q->h[c]);
        i = c;
    }
    hf_heap_place(q, i, pos);
}

/* Sets the rank of the pair at pos (UINT32_MAX removes it). */
static void hf_heap_set(hf_heap *q, int32_t pos, uint32_t rank) {
    int32_t i = q->at[pos];
    q->rk[pos] = rank;
    if (i < 0) {
        if (rank == UINT32_MAX) return;
        q->hn++;
        hf_heap_place(q, q->hn - 1, pos);
        hf_heap_fix(q, q->hn - 1);
        return;
    }
    if (rank == UINT32_MAX) {
        q->at[pos] = -1;
        q->hn--;
        if ((size_t)i == q->hn) return;
        hf_heap_place(q, (size_t)i, q->h[q->hn]);
        hf_heap_fix(q, (size_t)i);
        return;
    }
    hf_heap_fix(q, (size_t)i);
}

static uint32_t hf_pair_rank(const hf_tok *t, int32_t a, int32_t b) {
    const hf_merge *g = hf_merge_find(t, a, b);
    return g ? g->rank : UINT32_MAX;
}

/* Merges the lowest-ranked adjacent pair, leftmost first, until no pair merges: the order
 * HF's priority queue produces. work holds 5 * m int32. Returns the new symbol count. */
static size_t hf_bpe_heap(const hf_tok *t, int32_t *s, size_t m, int32_t *work) {
    hf_heap q = {.h = work, .at = work + m, .nx = work + 2 * m, .pv = work + 3 * m,
                 .rk = (uint32_t *)(work + 4 * m), .hn = 0};
    for (size_t i = 0; i < m; i++) {
        q.at[i] = -1;
        q.nx[i] = (int32_t)i + 1;
        q.pv[i] = (int32_t)i - 1;
        q.rk[i] = UINT32_MAX;
    }
    for (size_t i = 0; i + 1 < m; i++)
        hf_heap_set(&q, (int32_t)i, hf_pair_rank(t, s[i], s[i + 1]));
    while (q.hn > 0) {
        int32_t pos = q.h[0];
        int32_t j = q.nx[pos];
        s[pos] = hf_merge_find(t, s[pos], s[j])->result;
        hf_heap_set(&q, j, UINT32_MAX); /* j is gone */
        q.nx[pos] = q.nx[j];
        if ((size_t)q.nx[j] < m) q.pv[q.nx[j]] = pos;
        if (q.pv[pos] >= 0) hf_heap_set(&q, q.pv[pos], hf_pair_rank(t, s[q.pv[pos]], s[pos]));
        hf_heap_set(&q, pos,
                    (size_t)q.nx[pos] < m ? hf_pair_rank(t, s[pos], s[q.nx[pos]]) : UINT32_MAX);
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i = (size_t)q.nx[i]) s[k++] = s[i];
    return k;
}

/* The same without work space, for a word in the caller's buffer without room for the
 * heap: each pass finds the lowest rank present and merges its pairs left to right in one
 * sweep (HF's order for equal ranks, which are one pair), compacting in place. A merge that
 * makes a pair of a lower rank than the sweep's (a file whose merges are not in training
 * order) ends the sweep, so that pair goes first, as in HF. Passes: at most one per rank
 * used, so a long run of one letter takes a few passes (O(m) each), not m. */
static size_t hf_bpe_scan(const hf_tok *t, int32_t *s, size_t m) {
    while (m > 1) {
        uint32_t best = UINT32_MAX;
        for (size_t i = 0; i + 1 < m; i++) {
            uint32_t r = hf_pair_rank(t, s[i], s[i + 1]);
            if (r < best) best = r;
        }
        if (best == UINT32_MAX) break;
        size_t o = 0, i = 0;
        bool stop = false;
        while (i < m) {
            const hf_merge *g = (!stop && i + 1 < m) ? hf_merge_find(t, s[i], s[i + 1]) : NULL;
            if (g && g->rank == best) {
                int32_t r = g->result;
                stop = (o > 0 && hf_pair_rank(t, s[o - 1], r) < best) ||
                       (i + 2 < m && hf_pair_rank(t, r, s[i + 2]) < best);
                s[o++] = r;
                i += 2;
            } else {
                s[o++] = s[i++];
            }
        }
        m = o;
    }
    return m;
}

static void hf_emit(hf_enc *e, int32_t id) {
    if (e->count < e->cap) e->ids[e->count] = id;
    e->count++;
}

/* Merges the current word with the heap when work space exists for it. */
static size_t hf_bpe_word(hf_enc *e) {
    size_t m = e->wlen;
    if (!e->w_in_ids) return hf_bpe_heap(e->t, e->w, m, e->work);
    size_t room = e->cap - e->count; /* ids from the word's start to the buffer's end */
    if (m <= room / 6) return hf_bpe_heap(e->t, e->w, m, e->w + m);
    return hf_bpe_scan(e->t, e->w, m);
}

static void hf_word_flush(hf_enc *e) {
    const hf_tok *t = e->t;
    if (e->pending_unk) {
        e->pending_unk = false;
        hf_word_push(e, t->unk_id);
    }
    if (e->wlen == 0) return;
    if (e->w_over) {
        e->count += e->wlen;
        e->inexact = true;
    } else {
        int32_t whole = -1;
        if (t->ignore_merges && !e->wb_over) whole = hf_model_find(t, e->wb, e->wb_len);
        size_t m;
        if (whole >= 0) {
            e->w[0] = whole;
            m = 1;
        } else {
            m = hf_bpe_word(e);
        }
        if (e->w_in_ids) {
            e->count += m; /* already in place */
        } else {
            for (size_t i = 0; i < m; i++) hf_emit(e, e->w[i]);
        }
    }
    hf_word_reset(e);
}

static bool hf_is(const char *c, size_t n, const char *s, size_t sn) {
    return n == sn && memcmp(c, s, n) == 0;
}

/* One character of a word: its vocabulary id, else its byte tokens, else unk (HF's
 * merge_word, including its quirk of not flushing a pending unk before byte tokens). */
static void hf_word_char(hf_enc *e, const char *c, size_t n) {
    const hf_tok *t = e->t;
    bool is_split = false;
    if (t->ms && t->ms_split) {
        if (hf_is(c, n, t->ms_rep, t->ms_rep_len) && (e->wlen > 0 || e->pending_unk))
            hf_word_flush(e);
    } else if (t->split_safe) {
        is_split = hf_is(c, n, t->split_ch, t->split_ch_len);
        if (is_split && !e->last_was_split && (e->wlen > 0 || e->pending_unk))
            hf_word_flush(e);
    }
    e->last_was_split = is_split;

    if (e->wb_len + n <= sizeof e->wb) {
        memcpy(e->wb + e->wb_len, c, n);
        e->wb_len += n;
    } else {
        e->wb_over = true;
    }

    int32_t id = hf_model_find(t, c, n);
    if (id >= 0) {
        if (e->pending_unk) {
            e->pending_unk = false;
            hf_word_push(e, t->unk_id);
        }
        hf_word_push(e, id);
        return;
    }
    if (t->byte_fallback) {
        bool all = true;
        for (size_t k = 0; k < n; k++) all = all && t->byte_id[(unsigned char)c[k]] >= 0;
        if (all) {
            for (size_t k = 0; k < n; k++) hf_word_push(e, t->byte_id[(unsigned char)c[k]]);
            return;
        }
    }
    if (t->unk_id < 0) {
        if (e->st == EL_OK)
            e->st = el_errorf(EL_E_INVALID,
                              "%s: the character at byte %zu of the text is not in the "
                              "vocabulary and the tokenizer has neither byte fallback nor an "
                              "unk_token",
                              t->path, e->text_off);
        return;
    }
    if (!e->pending_unk) {
        e->pending_unk = true;
    } else if (!t->fuse_unk) {
        hf_word_push(e, t->unk_id);
    }
}

/* One character out of the normalizer: the Metaspace pre-tokenizer's part, then the word. */
static void hf_pretok_char(hf_enc *e, const char *c, size_t n) {
    const hf_tok *t = e->t;
    if (t->ms) {
        if (n == 1 && c[0] == ' ') {
            c = t->ms_rep;
            n = t->ms_rep_len;
        }
        if (e->ms_first_pending) {
            e->ms_first_pending = false;
            if (e->ms_prepend && !hf_is(c, n, t->ms_rep, t->ms_rep_len))
                hf_word_char(e, t->ms_rep, t->ms_rep_len);
        }
    }
    hf_word_char(e, c, n);
}

/* Feeds character c through normalizer steps from..n_norm-1 (each Replace maps one
 * character to a string; the recursion depth is at most HF_OPS_MAX). */
static void hf_norm_char(hf_enc *e, const char *c, size_t n, uint32_t from) {
    const hf_tok *t = e->t;
    for (uint32_t j = from; j < t->n_norm; j++) {
        const hf_op *op = &t->norm[j];
        if (op->kind != HF_OP_REPLACE || !hf_is(c, n, op->pat, op->pat_len)) continue;
        for (uint32_t k = 0; k < op->text_len;) {
            size_t cl = hf_utf8_len((const unsigned char *)op->text + k, op->text_len - k);
            hf_norm_char(e, op->text + k, cl, j + 1);
            k += (uint32_t)cl;
        }
        return;
    }
    hf_pretok_char(e, c, n);
}

/* ---- ByteLevel: GPT-2's pre-tokenization ------------------------------------------ */

enum { HF_BL_SPACE, HF_BL_LETTER, HF_BL_NUMBER, HF_BL_OTHER };

/* The class of the character at s[i] for the GPT-2 pattern; *len = its bytes. */
static int hf_bl_class(const char *s, size_t n, size_t i, size_t *len) {
    uint32_t cp;
    *len = el_uni_decode(s + i, n - i, &cp);
    if (el_uni_is_space(cp)) return HF_BL_SPACE;
    int k = el_uni_class(cp);
    if (k == EL_UNI_LETTER) return HF_BL_LETTER;
    if (k == EL_UNI_NUMBER) return HF_BL_NUMBER;
    return HF_BL_OTHER;
}

/* The end of the contraction 's|'t|'re|'ve|'m|'ll|'d at s[i], or 0. icase: (?i:...), where
 * Oniguruma's case folding also lets U+017F (long s) match s. */
static size_t hf_contraction(const char *s, size_t n, size_t i, bool icase) {
    if (s[i] != '\'' || i + 1 >= n) return 0;
    char c = s[i + 1], d = i + 2 < n ? s[i + 2] : 0;
    if (icase) {
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (d >= 'A' && d <= 'Z') d = (char)(d + 32);
        if (c == '\xc5' && d == '\xbf') return i + 3; /* U+017F */
    }
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return i + 3;
    return 0;
}

/* The end of the pre-token starting at s[i] (i < n) under GPT-2's pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (alternatives tried in order, each greedy; \s is White_Space). */
static size_t hf_bl_pretoken(const char *s, size_t n, size_t i) {
    size_t c = hf_contraction(s, n, i, false);
    if (c) return c;
    size_t len = 0, j = i;
    int k = hf_bl_class(s, n, i, &len);
    if (s[i] == ' ' && i + 1 < n) { /* " ?" before a letter, number or other run */
        size_t l2 = 0;
        int k2 = hf_bl_class(s, n, i + 1, &l2);
        if (k2 != HF_BL_SPACE) {
            j = i + 1;
            k = k2;
            len = l2;
        }
    }
    if (k != HF_BL_SPACE) {
        j += len;
        while (j < n && hf_bl_class(s, n, j, &len) == k) j += len;
        return j;
    }
    /* Whitespace: the run, less its last character when a non-space follows (so that
     * character can lead the next pre-token), unless that leaves nothing. */
    size_t end = i, last = i;
    while (end < n && hf_bl_class(s, n, end, &len) == HF_BL_SPACE) {
        last = end;
        end += len;
    }
    if (end == n || last == i) return end;
    return last;
}

/* The end of the run of class k characters from s[j] (at most max of them). */
static size_t hf_run(const char *s, size_t n, size_t j, int k, size_t max) {
    size_t len = 0;
    for (size_t count = 0; j < n && count < max && hf_bl_class(s, n, j, &len) == k; count++)
        j += len;
    return j;
}

static bool hf_is_nl(char c) {
    return c == '\r' || c == '\n';
}

/* The end of the pre-token starting at s[i] (i < n) under Llama 3's pattern (tiktoken's
 * cl100k; max_digits 3) or Qwen2's (max_digits 1: \p{N} instead of \p{N}{1,3}):
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * (alternatives in order, greedy with backtracking, as Oniguruma runs it). Every character
 * starts a match, so Isolated splitting leaves no gaps. */
static size_t hf_tk_pretoken(const char *s, size_t n, size_t i, size_t max_digits) {
    size_t c = hf_contraction(s, n, i, true);
    if (c) return c;
    size_t len = 0, len2 = 0;
    int k = hf_bl_class(s, n, i, &len);
    if (k == HF_BL_LETTER) return hf_run(s, n, i, HF_BL_LETTER, SIZE_MAX);
    if (k != HF_BL_NUMBER && !hf_is_nl(s[i]) && i + len < n &&
        hf_bl_class(s, n, i + len, &len2) == HF_BL_LETTER) /* one leading non-letter */
        return hf_run(s, n, i + len, HF_BL_LETTER, SIZE_MAX);
    if (k == HF_BL_NUMBER) return hf_run(s, n, i, HF_BL_NUMBER, max_digits);
    size_t j = i;
    if (s[i] == ' ' && i + 1 < n && hf_bl_class(s, n, i + 1, &len2) == HF_BL_OTHER) j = i + 1;
    if (j > i || k == HF_BL_OTHER) { /* punctuation and symbols, then line breaks */
        j = hf_run(s, n, j, HF_BL_OTHER, SIZE_MAX);
        while (j < n && hf_is_nl(s[j])) j++;
        return j;
    }
    /* Whitespace: through its last line break if it has one (\s*[\r\n]+); else the run
     * less its last character when a non-space follows, unless that leaves nothing. */
    size_t end = i, last = i, after_nl = 0;
    while (end < n && hf_bl_class(s, n, end, &len) == HF_BL_SPACE) {
        last = end;
        end += len;
        if (hf_is_nl(s[last])) after_nl = end;
    }
    if (after_nl) return after_nl;
    if (end == n || last == i) return end;
    return last;
}

/* llama.cpp's default BPE pre-tokenizer, first regex: [\p{P}\$\+<=>\^~\|]+ (P*, and the
 * ASCII symbols it names; not '`'). */
static bool hf_ggml_punct(const char *s, size_t n, size_t i, size_t *len) {
    uint32_t cp = 0;
    *len = el_uni_decode(s + i, n - i, &cp);
    if (cp && cp < 0x80 && strchr("$+<=>^~|", (int)cp)) return true;
    return el_uni_class(cp) == EL_UNI_PUNCT;
}

/* The end of the piece at s[i] of llama.cpp's default regexes 3 and 4 inside one piece of
 * GPT-2's pattern s[0..n): \p{N}+ runs apart, then [0-9][0-9][0-9] apart inside them, each
 * match taken left to right from the start of its run (a0: where the current \p{N} run or
 * gap began). */
static size_t hf_ggml_num_end(const char *s, size_t n, size_t a0, size_t i) {
    size_t len = 0;
    if (hf_bl_class(s, n, i, &len) != HF_BL_NUMBER) {
        size_t j = i;
        while (j < n && hf_bl_class(s, n, j, &len) != HF_BL_NUMBER) j += len;
        return j;
    }
    const size_t r = hf_run(s, n, a0, HF_BL_NUMBER, SIZE_MAX);
#define EL_D3(k) ((k) + 3 <= r && s[k] >= '0' && s[k] <= '9' && s[(k) + 1] >= '0' && \
                  s[(k) + 1] <= '9' && s[(k) + 2] >= '0' && s[(k) + 2] <= '9')
    if (EL_D3(i)) return i + 3;
    size_t j = i + 1;
    while (j < r && !EL_D3(j)) j++;
#undef EL_D3
    return j;
}

/* The end of the part starting at s[i] (i < n) that the step before ByteLevel splits off
 * (the whole text when there is none). */
static size_t hf_split_end(const hf_tok *t, const char *s, size_t n, size_t i) {
    size_t len = 0;
    switch (t->bl_split) {
    case HF_SPLIT_GGML_DEFAULT: { /* a run of the first regex's characters, or of others */
        const bool p = hf_ggml_punct(s, n, i, &len);
        size_t j = i + len;
        while (j < n && hf_ggml_punct(s, n, j, &len) == p) j += len;
        return j;
    }
    case HF_SPLIT_LLAMA3: return hf_tk_pretoken(s, n, i, 3);
    case HF_SPLIT_QWEN2: return hf_tk_pretoken(s, n, i, 1);
    case HF_SPLIT_DIGITS:
    case HF_SPLIT_DIGIT_RUNS: {
        /* Digits: Rust's char::is_numeric (N*) characters apart, one each or in runs */
        int k = hf_bl_class(s, n, i, &len) == HF_BL_NUMBER ? HF_BL_NUMBER : -1;
        if (k == HF_BL_NUMBER)
            return t->bl_split == HF_SPLIT_DIGITS ? i + len
                                                  : hf_run(s, n, i, HF_BL_NUMBER, SIZE_MAX);
        size_t j = i;
        while (j < n && hf_bl_class(s, n, j, &len) != HF_BL_NUMBER) j += len;
        return j;
    }
    default: return n;
    }
}

/* Pushes the byte-level symbols of s[0..n) into the current word. */
static void hf_bl_word(hf_enc *e, const unsigned char *s, size_t n) {
    const hf_tok *t = e->t;
    for (size_t k = 0; k < n; k++) {
        int32_t id = t->bl_id[s[k]];
        size_t cl = (unsigned char)t->bl_chr[s[k]][0] < 0x80 ? 1 : 2;
        if (e->wb_len + cl <= sizeof e->wb) {
            memcpy(e->wb + e->wb_len, t->bl_chr[s[k]], cl);
            e->wb_len += cl;
        } else {
            e->wb_over = true;
        }
        if (id >= 0) {
            if (e->pending_unk) {
                e->pending_unk = false;
                hf_word_push(e, t->unk_id);
            }
            hf_word_push(e, id);
        } else if (t->unk_id >= 0) { /* HF's unk, fused or not */
            if (!e->pending_unk) e->pending_unk = true;
            else if (!t->fuse_unk) hf_word_push(e, t->unk_id);
        } /* else HF's BPE drops a character it has no token for */
    }
}

/* The text between two added tokens (or the ends): normalized and pre-tokenized on its
 * own, as HF does; at_start when it begins at byte 0 of the input (prepend_scheme first). */
static void hf_piece(hf_enc *e, const char *p, size_t m, size_t base, bool at_start) {
    const hf_tok *t = e->t;
    if (m == 0) return; /* HF drops empty pieces before any normalizer runs */
    if (t->nfc) {
        size_t at = el_uni_nfc_stable(p, m);
        if (at < m) {
            uint32_t cp = 0;
            (void)el_uni_decode(p + at, m - at, &cp);
            e->st = el_errorf(EL_E_UNSUPPORTED,
                              "%s: the text needs NFC normalization (U+%04X at byte %zu may "
                              "change under NFC), which is not supported: pass NFC text",
                              t->path, (unsigned)cp, base + at);
            return;
        }
    }
    if (t->bl) { /* split, then GPT-2's pattern inside each part, one word per pre-token */
        for (size_t i = 0; i < m && e->st == EL_OK;) {
            size_t end = hf_split_end(t, p, m, i);
            for (size_t j = i; j < end;) {
                size_t stop = t->bl_regex ? i + hf_bl_pretoken(p + i, end - i, j - i) : end;
                /* llama.cpp's default: numbers apart inside each piece, then digit triples */
                for (size_t a = j, a0 = j; a < stop;) {
                    size_t b = t->bl_split == HF_SPLIT_GGML_DEFAULT
                                   ? hf_ggml_num_end(p, stop, a0, a) : stop;
                    hf_word_reset(e);
                    hf_bl_word(e, (const unsigned char *)p + a, b - a);
                    hf_word_flush(e);
                    size_t l0 = 0, l1 = 0; /* a new \p{N} run or gap starts at b */
                    if (b < stop && (hf_bl_class(p, stop, a, &l0) == HF_BL_NUMBER) !=
                                        (hf_bl_class(p, stop, b, &l1) == HF_BL_NUMBER))
                        a0 = b;
                    a = b;
                }
                j = stop;
            }
            i = end;
        }
        return;
    }
    e->ms_first_pending = t->ms;
    e->ms_prepend = t->ms && (t->ms_scheme == HF_SCHEME_ALWAYS ||
                              (t->ms_scheme == HF_SCHEME_FIRST && at_start));
    e->last_was_split = false;
    hf_word_reset(e);
    /* Prepend steps act on non-empty text, later steps in front of earlier ones; each
     * prefix passes through the steps after its own. */
    e->text_off = base;
    for (uint32_t j = t->n_norm; j-- > 0;) {
        const hf_op *op = &t->norm[j];
        if (op->kind != HF_OP_PREPEND) continue;
        for (uint32_t k = 0; k < op->text_len;) {
            size_t cl = hf_utf8_len((const unsigned char *)op->text + k, op->text_len - k);
            hf_norm_char(e, op->text + k, cl, j + 1);
            k += (uint32_t)cl;
        }
    }
    for (size_t i = 0; i < m && e->st == EL_OK;) {
        size_t cl = hf_utf8_len((const unsigned char *)p + i, m - i); /* validated */
        e->text_off = base + i;
        hf_norm_char(e, p + i, cl, 0);
        i += cl;
    }
    hf_word_flush(e);
}

/* Byte d of added token k (-1 past its end): nondecreasing over a range of t->added whose
 * tokens share their first d bytes. */
static int hf_added_byte(const hf_tok *t, uint32_t k, size_t d) {
    int32_t id = t->added[k];
    return d < t->len[id] ? (unsigned char)t->pool[t->off[id] + d] : -1;
}

/* The first k in [lo, hi) with byte d of added token k >= c (or > c when above). */
static uint32_t hf_added_bound(const hf_tok *t, uint32_t lo, uint32_t hi, size_t d, int c,
                               bool above) {
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int b = hf_added_byte(t, mid, d);
        if (b < c || (above && b == c)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The longest added token starting at s[0..n), or -1: walks the sorted tokens as a trie,
 * narrowing the range that shares s[0..d] byte by byte (two binary searches a byte). Gemma
 * 3 has thousands of added tokens, most starting with '<'. */
static int32_t hf_added_at(const hf_tok *t, const char *s, size_t n, size_t *tlen) {
    uint32_t lo = 0, hi = t->n_added;
    int32_t best = -1;
    for (size_t d = 0; d < n && lo < hi; d++) {
        int c = (unsigned char)s[d];
        uint32_t l2 = hf_added_bound(t, lo, hi, d, c, false);
        hi = hf_added_bound(t, l2, hi, d, c, true);
        lo = l2;
        if (lo < hi && t->len[t->added[lo]] == d + 1) { /* a token ends here (sorts first) */
            best = t->added[lo];
            *tlen = d + 1;
        }
    }
    return best;
}

/* Sorts ids[0..n) by their token bytes (memcmp order, a prefix first); tmp holds n ids. */
static void hf_sort_by_bytes(const hf_tok *t, int32_t *ids, int32_t *tmp, size_t n) {
    for (size_t w = 1; w < n; w *= 2) { /* bottom-up merge sort */
        for (size_t a = 0; a < n; a += 2 * w) {
            size_t m = a + w < n ? a + w : n, b = a + 2 * w < n ? a + 2 * w : n;
            size_t i = a, j = m, o = a;
            while (i < m || j < b) {
                bool left = j >= b;
                if (i < m && j < b) {
                    int32_t x = ids[i], y = ids[j];
                    size_t lx = t->len[x], ly = t->len[y];
                    int c = memcmp(hf_tok_str(t, x), hf_tok_str(t, y), lx < ly ? lx : ly);
                    left = c < 0 || (c == 0 && lx <= ly);
                }
                tmp[o++] = (left && i < m) ? ids[i++] : ids[j++];
            }
        }
        memcpy(ids, tmp, n * sizeof *ids);
    }
}

/* The start of the character before byte i of valid UTF-8 text (i > 0). */
static size_t hf_char_before(const char *s, size_t i) {
    do {
        i--;
    } while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

/* The code point before (before) or at byte i of valid UTF-8 text s. */
static uint32_t hf_cp_near(const char *s, size_t i, bool before) {
    uint32_t cp = 0;
    size_t at = before ? hf_char_before(s, i) : i;
    (void)el_uni_decode(s + at, 4, &cp);
    return cp;
}

/* Whitespace (Rust's char::is_whitespace) before / at byte i. */
static bool hf_space_at(const char *s, size_t i, bool before) {
    return el_uni_is_space(hf_cp_near(s, i, before));
}

/* A word character (\w, HF's single_word boundary) before / at byte i. */
static bool hf_word_char_at(const char *s, size_t i, bool before) {
    return el_uni_is_word(hf_cp_near(s, i, before));
}

static el_status hf_encode(const el_tokenizer *base, const char *text, size_t len,
                           bool add_bos, int32_t *ids, size_t cap, size_t *n) {
    const hf_tok *t = (const hf_tok *)base;
    *n = 0;
    if (!text && len > 0) return el_errorf(EL_E_USAGE, "hf-bpe encode: text is NULL");
    for (size_t i = 0; i < len;) {
        size_t cl = hf_utf8_len((const unsigned char *)text + i, len - i);
        if (cl == 0)
            return el_errorf(EL_E_INVALID,
                             "text is not valid UTF-8 at byte %zu (0x%02x): pass UTF-8 text",
                             i, (unsigned char)text[i]);
        i += cl;
    }
    if (add_bos && t->base.bos_id < 0)
        return el_errorf(EL_E_USAGE,
                         "%s: BOS requested but the tokenizer defines none (no <s> token and "
                         "no post_processor prefix)",
                         t->path);

    hf_enc e;
    e.t = t;
    e.ids = ids;
    e.cap = ids ? cap : 0;
    e.count = 0;
    e.inexact = false;
    e.st = EL_OK;
    e.text_off = 0;
    hf_word_reset(&e);
    if (add_bos) hf_emit(&e, t->base.bos_id);
    if (len == 0) text = ""; /* no arithmetic on a NULL pointer below */

    size_t piece = 0;
    for (size_t i = 0; i < len && e.st == EL_OK;) {
        size_t tl = 0;
        int32_t id = t->n_added ? hf_added_at(t, text + i, len - i, &tl) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        /* HF's flags: single_word drops a match inside a word (and matching goes on after
         * it); lstrip / rstrip take the whitespace before / after into the token. */
        size_t start = i, stop = i + tl;
        uint8_t f = t->flags[id];
        if ((f & HF_TOK_SINGLE_WORD) &&
            ((start > 0 && hf_word_char_at(text, start, true)) ||
             (stop < len && hf_word_char_at(text, stop, false)))) {
            i = stop;
            continue;
        }
        while ((f & HF_TOK_LSTRIP) && start > piece && hf_space_at(text, start, true))
            start = hf_char_before(text, start);
        while ((f & HF_TOK_RSTRIP) && stop < len && hf_space_at(text, stop, false))
            stop += hf_utf8_len((const unsigned char *)text + stop, len - stop);
        if (t->model_vocab != 0 && (uint32_t)id >= t->model_vocab) {
            char p[64];
            return el_errorf(EL_E_INVALID,
                             "%s: the text holds the added token '%s' (id %d, at byte %zu), "
                             "past the model's %u rows: remove it from the text",
                             t->path,
                             el_json_printable(hf_tok_str(t, id), t->len[id], p, sizeof p),
                             (int)id, i, (unsigned)t->model_vocab);
        }
        hf_piece(&e, text + piece, start - piece, piece, piece == 0);
        hf_emit(&e, id);
        i = stop;
        piece = i;
    }
    if (e.st == EL_OK) hf_piece(&e, text + piece, len - piece, piece, piece == 0);
    if (e.st != EL_OK) return e.st;
    *n = e.count;
    if (e.count > e.cap)
        return el_errorf(EL_E_NOFIT,
                         "the text needs %s%zu token ids but the buffer holds %zu",
                         e.inexact ? "up to " : "", e.count, e.cap);
    return EL_OK;
}

/* ---- decode ------------------------------------------------------------------------ */

/* Appends s[0..n) to buf (capacity cap, one byte kept for the NUL) at *o; counts past cap. */
static void hf_put(char *buf, size_t cap, size_t *o, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, (*o)++)
        if (*o + 1 < cap) buf[*o] = s[i];
}

/* Writes character c through decoder Replace steps from..n_dec-1. */
static void hf_dec_char(const hf_tok *t, const char *c, size_t n, uint32_t from, char *buf,
                        size_t cap, size_t *o) {
    for (uint32_t j = from; j < t->n_dec; j++) {
        const hf_op *op = &t->dec[j];
        if (!hf_is(c, n, op->pat, op->pat_len)) continue;
        for (uint32_t k = 0; k < op->text_len;) {
            size_t cl = hf_utf8_len((const unsigned char *)op->text + k, op->text_len - k);
            hf_dec_char(t, op->text + k, cl, j + 1, buf, cap, o);
            k += (uint32_t)cl;
        }
        return;
    }
    hf_put(buf, cap, o, c, n);
}

static el_status hf_decode(const el_tokenizer *base, int32_t prev, int32_t id, char *buf,
                           size_t cap, size_t *n) {
    const hf_tok *t = (const hf_tok *)base;
    *n = 0;
    uint32_t limit = t->model_vocab > t->n ? t->model_vocab : t->n;
    if (id < 0 || (uint32_t)id >= limit)
        return el_errorf(EL_E_INVALID, "%s: token id %d is out of range [0, %u)", t->path,
                         (int)id, (unsigned)limit);
    if ((uint32_t)id >= t->n) { /* a model row past the tokenizer: nothing, as HF skips it */
        if (cap > 0) buf[0] = 0;
        return cap > 0 ? EL_OK
                       : el_errorf(EL_E_NOFIT, "token %d decodes to 1 byte but the buffer "
                                   "holds 0", (int)id);
    }
    size_t o = 0;
    if (t->flags[id] & HF_TOK_SPECIAL) {
        /* skip_special_tokens, as generation output is shown */
    } else if (t->dec_bl) {
        const char *s = hf_tok_str(t, id);
        size_t sl = t->len[id];
        for (size_t i = 0; i < sl;) {
            size_t cl = hf_utf8_len((const unsigned char *)s + i, sl - i);
            if (cl == 0) cl = 1;
            uint32_t cp = 0;
            (void)el_uni_decode(s + i, cl, &cp);
            int b = cp < HF_BL_CHARS ? t->bl_byte[cp] : -1;
            if (b >= 0) {
                char c = (char)b;
                hf_put(buf, cap, &o, &c, 1);
            } else {
                hf_put(buf, cap, &o, s + i, cl); /* not a byte character: as it is */
            }
            i += cl;
        }
    } else if ((t->flags[id] & HF_TOK_BYTE) && t->dec_byte_fallback) {
        char b = (char)t->byte[id];
        hf_put(buf, cap, &o, &b, 1);
    } else {
        /* HF strips at the start of the decoded sequence; one token at a time, that is
         * the token after BOS (or the very first). */
        bool first = prev < 0 || prev == t->base.bos_id;
        const char *s = hf_tok_str(t, id);
        size_t sl = t->len[id];
        uint32_t strip = (first || t->dec_strip_each) ? t->dec_strip_start : 0;
        for (size_t i = 0; i < sl;) {
            size_t cl = hf_utf8_len((const unsigned char *)s + i, sl - i);
            if (cl == 0) cl = 1; /* tokens need not be valid UTF-8; pass bytes through */
            if (first && t->dec_ms_first && hf_is(s + i, cl, t->dec_ms_rep, t->dec_ms_rep_len)) {
                i += cl;
                continue;
            }
            char tmp[HF_DEC_CHAR_BYTES];
            size_t tl = 0;
            /* Render the character, then apply Strip to what it became. */
            hf_dec_char(t, s + i, cl, 0, tmp, sizeof tmp, &tl);
            if (tl >= sizeof tmp) tl = sizeof tmp - 1;
            size_t k = 0;
            while (strip > 0 && k < tl && tmp[k] == ' ') {
                k++;
                strip--;
            }
            if (k < tl) strip = 0; /* Strip stops at the first other character */
            hf_put(buf, cap, &o, tmp + k, tl - k);
            i += cl;
        }
    }
    *n = o;
    if (cap > 0) buf[o < cap ? o : cap - 1] = 0;
    if (o + 1 > cap)
        return el_errorf(EL_E_NOFIT, "token %d decodes to %zu bytes but the buffer holds %zu",
                         (int)id, o + 1, cap);
    return EL_OK;
}

/* ---- open / close ------------------------------------------------------------------ */

static const el_tokenizer_vtable hf_vtable = {
    .name = "hf-bpe",
    .encode = hf_encode,
    .decode = hf_decode,
    .close = NULL, /* every table is in the tok_mem block */
};

/* A field that may be absent or null. */
static const cJSON *hf_get(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static el_status hf_bad_type(const hf_tok *t, const char *field, const char *want,
                             const cJSON *got) {
    char d[64];
    return el_errorf(EL_E_INVALID, "%s: %s must be %s, got %s", t->path, field, want,
                     el_json_describe(got, d, sizeof d));
}

static el_status hf_get_bool(const hf_tok *t, const cJSON *obj, const char *key,
                             const char *where, bool *out) {
    const cJSON *v = hf_get(obj, key);
    if (!v) return EL_OK; /* keep the default */
    if (!cJSON_IsBool(v)) {
        char f[96];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return hf_bad_type(t, f, "true or false", v);
    }
    *out = cJSON_IsTrue(v);
    return EL_OK;
}

/* A string of 1..HF_STR_MAX-1 bytes of valid UTF-8 (one_char: exactly one character). */
static el_status hf_get_str(const hf_tok *t, const cJSON *obj, const char *key,
                            const char *where, bool one_char, char *out, uint32_t *out_len) {
    const cJSON *v = hf_get(obj, key);
    char f[96];
    snprintf(f, sizeof f, "%s.%s", where, key);
    if (!v || !cJSON_IsString(v))
        return hf_bad_type(t, f, one_char ? "a one-character string" : "a string", v);
    size_t n = strlen(v->valuestring);
    if (n == 0 || n >= HF_STR_MAX || !el_utf8_valid(v->valuestring, n) ||
        (one_char && !hf_one_char(v->valuestring, n))) {
        char d[64];
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: %s is %s; supported: %s of at most %d bytes", t->path, f,
                         el_json_describe(v, d, sizeof d),
                         one_char ? "one character" : "a non-empty UTF-8 string",
                         HF_STR_MAX - 1);
    }
    memcpy(out, v->valuestring, n);
    *out_len = (uint32_t)n;
    return EL_OK;
}

static const char *hf_type_of(const cJSON *obj) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

/* A Replace step: {"pattern": {"String": "<one char>"}, "content": "..."}. */
static el_status hf_parse_replace(const hf_tok *t, const cJSON *o, const char *where,
                                  hf_op *op) {
    const cJSON *pat = hf_get(o, "pattern");
    const cJSON *ps = pat ? cJSON_GetObjectItemCaseSensitive(pat, "String") : NULL;
    if (!cJSON_IsObject(pat) || !cJSON_IsString(ps))
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: %s Replace with a non-String (regex) pattern is not supported",
                         t->path, where);
    size_t pn = strlen(ps->valuestring);
    if (!hf_one_char(ps->valuestring, pn) || pn >= sizeof op->pat)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: %s Replace pattern must be one character (got %zu bytes)",
                         t->path, where, pn);
    memcpy(op->pat, ps->valuestring, pn);
    op->pat_len = (uint32_t)pn;
    op->kind = HF_OP_REPLACE;
    return hf_get_str(t, o, "content", where, false, op->text, &op->text_len);
}

/* Adds to *count what character c (cl bytes) becomes through the Replace steps
 * ops[from..n): characters, or bytes when in_bytes; stops adding once past limit. */
static void hf_growth(const hf_op *ops, uint32_t n, uint32_t from, const char *c, size_t cl,
                      bool in_bytes, uint64_t limit, uint64_t *count) {
    for (uint32_t j = from; j < n; j++) {
        const hf_op *op = &ops[j];
        if (op->kind != HF_OP_REPLACE || !hf_is(c, cl, op->pat, op->pat_len)) continue;
        for (uint32_t k = 0; k < op->text_len && *count <= limit;) {
            size_t l = hf_utf8_len((const unsigned char *)op->text + k, op->text_len - k);
            hf_growth(ops, n, j + 1, op->text + k, l, in_bytes, limit, count);
            k += (uint32_t)l;
        }
        return;
    }
    *count += in_bytes ? cl : 1;
}

/* Replace steps feed each other, so what one character becomes grows exponentially with
 * the steps (8 steps that each turn "a" into 31 a's make 31^8 characters of every "a", and
 * encode and decode would run for hours): refuses steps where a character (a Replace
 * pattern from the first step; any other character stays itself) or a Prepend text (through
 * the steps after it) becomes more than limit. The walk stops at the limit, so this check
 * does bounded work. */
static el_status hf_check_growth(const hf_tok *t, const hf_op *ops, uint32_t n, bool in_bytes,
                                 uint64_t limit, const char *what) {
    for (uint32_t j = 0; j < n; j++) {
        const hf_op *op = &ops[j];
        uint64_t count = 0;
        if (op->kind == HF_OP_REPLACE) {
            hf_growth(ops, n, 0, op->pat, op->pat_len, in_bytes, limit, &count);
        } else {
            for (uint32_t k = 0; k < op->text_len && count <= limit;) {
                size_t l = hf_utf8_len((const unsigned char *)op->text + k, op->text_len - k);
                hf_growth(ops, n, j + 1, op->text + k, l, in_bytes, limit, &count);
                k += (uint32_t)l;
            }
        }
        if (count > limit)
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: %s step %u makes more than %llu %s out of one character "
                             "(its Replace steps feed each other); at most %llu are supported",
                             t->path, what, (unsigned)j, (unsigned long long)limit,
                             in_bytes ? "bytes" : "characters", (unsigned long long)limit);
    }
    return EL_OK;
}

static el_status hf_parse_normalizer(hf_tok *t, const cJSON *root) {
    const cJSON *nz = hf_get(root, "normalizer");
    if (!nz) return EL_OK;
    if (!cJSON_IsObject(nz)) return hf_bad_type(t, "normalizer", "an object or null", nz);
    const char *ty = hf_type_of(nz);
    const cJSON *list = NULL;
    if (ty && strcmp(ty, "Sequence") == 0) {
        list = hf_get(nz, "normalizers");
        if (!cJSON_IsArray(list))
            return hf_bad_type(t, "normalizer.normalizers", "an array", list);
    }
    int count = list ? cJSON_GetArraySize(list) : 1;
    if (count > HF_OPS_MAX)
        return el_errorf(EL_E_UNSUPPORTED, "%s: normalizer has %d steps; at most %d supported",
                         t->path, count, HF_OPS_MAX);
    for (int i = 0; i < count; i++) {
        const cJSON *o = list ? cJSON_GetArrayItem(list, i) : nz;
        const char *oty = cJSON_IsObject(o) ? hf_type_of(o) : NULL;
        char where[48];
        snprintf(where, sizeof where, "normalizer[%d]", i);
        hf_op *op = &t->norm[t->n_norm];
        memset(op, 0, sizeof *op);
        el_status st;
        if (oty && strcmp(oty, "NFC") == 0) {
            /* First only: then the raw text must be NFC already (checked by hf_piece). */
            if (i != 0)
                return el_errorf(EL_E_UNSUPPORTED,
                                 "%s: %s: NFC after other normalizer steps is not supported "
                                 "(only as the first step)",
                                 t->path, where);
            t->nfc = true;
            continue;
        } else if (oty && strcmp(oty, "Prepend") == 0) {
            op->kind = HF_OP_PREPEND;
            st = hf_get_str(t, o, "prepend", where, false, op->text, &op->text_len);
        } else if (oty && strcmp(oty, "Replace") == 0) {
            st = hf_parse_replace(t, o, where, op);
        } else {
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: %s type '%s' is not supported by the hf-bpe tokenizer "
                             "(supported: NFC (first), Prepend, Replace, Sequence)",
                             t->path, where, oty ? oty : "?");
        }
        if (st != EL_OK) return st;
        t->n_norm++;
    }
    return hf_check_growth(t, t->norm, t->n_norm, false, HF_NORM_GROWTH_MAX, "normalizer");
}

static el_status hf_parse_scheme(const hf_tok *t, const cJSON *o, const char *where,
                                 int *scheme) {
    const cJSON *ps = hf_get(o, "prepend_scheme");
    if (ps) {
        if (cJSON_IsString(ps) && strcmp(ps->valuestring, "always") == 0) {
            *scheme = HF_SCHEME_ALWAYS;
        } else if (cJSON_IsString(ps) && strcmp(ps->valuestring, "first") == 0) {
            *scheme = HF_SCHEME_FIRST;
        } else if (cJSON_IsString(ps) && strcmp(ps->valuestring, "never") == 0) {
            *scheme = HF_SCHEME_NEVER;
        } else {
            char f[64];
            snprintf(f, sizeof f, "%s.prepend_scheme", where);
            return hf_bad_type(t, f, "\"always\", \"first\" or \"never\"", ps);
        }
        return EL_OK;
    }
    bool add = true; /* older files: add_prefix_space */
    el_status st = hf_get_bool(t, o, "add_prefix_space", where, &add);
    *scheme = add ? HF_SCHEME_ALWAYS : HF_SCHEME_NEVER;
    return st;
}

/* The known split patterns (compared as strings; hand-written matchers, no regex engine). */
const char el_hf_pat_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Not a regex: the name under which gguf_tok.c asks for llama.cpp's default cascade (its
 * four regexes, the second GPT-2's, each splitting the pieces of the one before), which no
 * tokenizer.json pre-tokenizer expresses. */
const char el_hf_pat_ggml_default[] =
    "llama.cpp default: [\\p{P}\\$\\+<=>\\^~\\|]+ then GPT-2 then \\p{N}+ then [0-9]{3}";
const char el_hf_pat_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The step before a ByteLevel pre-tokenizer: Split (Llama 3's or Qwen2's regex, Isolated,
 * invert false) or Digits. */
static el_status hf_parse_split(hf_tok *t, const cJSON *o) {
    const char *ty = cJSON_IsObject(o) ? hf_type_of(o) : NULL;
    if (ty && strcmp(ty, "Digits") == 0) {
        bool each = false;
        el_status st = hf_get_bool(t, o, "individual_digits", "pre_tokenizer[0]", &each);
        t->bl_split = each ? HF_SPLIT_DIGITS : HF_SPLIT_DIGIT_RUNS;
        return st;
    }
    if (!ty || strcmp(ty, "Split") != 0)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: pre_tokenizer[0] type '%s' before ByteLevel is not supported "
                         "(supported: Split with Llama 3's or Qwen2's pattern, Digits)",
                         t->path, ty ? ty : "?");
    const cJSON *pat = hf_get(o, "pattern");
    const cJSON *rx = cJSON_IsObject(pat) ? cJSON_GetObjectItemCaseSensitive(pat, "Regex") : NULL;
    if (!cJSON_IsString(rx))
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: pre_tokenizer[0] Split needs a Regex pattern (Llama 3's or "
                         "Qwen2's); a String pattern is not supported",
                         t->path);
    if (strcmp(rx->valuestring, el_hf_pat_llama3) == 0) {
        t->bl_split = HF_SPLIT_LLAMA3;
    } else if (strcmp(rx->valuestring, el_hf_pat_ggml_default) == 0) {
        t->bl_split = HF_SPLIT_GGML_DEFAULT;
    } else if (strcmp(rx->valuestring, el_hf_pat_qwen2) == 0) {
        t->bl_split = HF_SPLIT_QWEN2;
    } else {
        char p[64];
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: pre_tokenizer[0] Split regex '%s' is not supported: only Llama "
                         "3's and Qwen2's patterns are (matched by hand, no regex engine)",
                         t->path,
                         el_json_printable(rx->valuestring, strlen(rx->valuestring), p,
                                           sizeof p));
    }
    const cJSON *beh = hf_get(o, "behavior");
    bool invert = false;
    el_status st = hf_get_bool(t, o, "invert", "pre_tokenizer[0]", &invert);
    if (st != EL_OK) return st;
    if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") != 0 || invert)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: pre_tokenizer[0] Split with behavior %s%s is not supported "
                         "(Isolated, invert false only)",
                         t->path, cJSON_IsString(beh) ? beh->valuestring : "?",
                         invert ? " and invert true" : "");
    return EL_OK;
}

/* Whether pt is Split on the String " " (MergedWithPrevious, invert false) after a
 * normalizer that leaves no ' ' (Gemma 3: Replace " " -> "▁"): a no-op, as HF runs the
 * normalizer first. */
static bool hf_split_space_noop(const hf_tok *t, const cJSON *pt) {
    const char *ty = hf_type_of(pt);
    const cJSON *pat = hf_get(pt, "pattern");
    const cJSON *str = cJSON_IsObject(pat) ? cJSON_GetObjectItemCaseSensitive(pat, "String")
                                           : NULL;
    const cJSON *beh = hf_get(pt, "behavior"), *inv = hf_get(pt, "invert");
    if (!ty || strcmp(ty, "Split") != 0 || !cJSON_IsString(str) ||
        strcmp(str->valuestring, " ") != 0 || !cJSON_IsString(beh) ||
        strcmp(beh->valuestring, "MergedWithPrevious") != 0 || cJSON_IsTrue(inv))
        return false;
    bool gone = false; /* a Replace of ' ' with no space in it, none put back later */
    for (uint32_t j = 0; j < t->n_norm; j++) {
        const hf_op *op = &t->norm[j];
        bool adds_space = memchr(op->text, ' ', op->text_len) != NULL;
        if (op->kind == HF_OP_REPLACE && hf_is(op->pat, op->pat_len, " ", 1) && !adds_space)
            gone = true;
        else if (adds_space)
            gone = false;
    }
    return gone;
}

static el_status hf_parse_pretok(hf_tok *t, const cJSON *root) {
    const cJSON *pt = hf_get(root, "pre_tokenizer");
    if (!pt) return EL_OK;
    if (!cJSON_IsObject(pt)) return hf_bad_type(t, "pre_tokenizer", "an object or null", pt);
    const char *ty = hf_type_of(pt);
    const cJSON *first = NULL; /* the step before ByteLevel */
    if (ty && strcmp(ty, "Sequence") == 0) {
        const cJSON *list = hf_get(pt, "pretokenizers");
        if (!cJSON_IsArray(list))
            return hf_bad_type(t, "pre_tokenizer.pretokenizers", "an array", list);
        int count = cJSON_GetArraySize(list);
        if (count == 0) return EL_OK;
        if (count > 2)
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: pre_tokenizer Sequence of %d steps is not supported by the "
                             "hf-bpe tokenizer (Metaspace, ByteLevel, or Split/Digits then "
                             "ByteLevel)",
                             t->path, count);
        if (count == 2) first = cJSON_GetArrayItem(list, 0);
        pt = cJSON_GetArrayItem(list, count - 1);
        ty = cJSON_IsObject(pt) ? hf_type_of(pt) : NULL;
    }
    if (!first && cJSON_IsObject(pt) && hf_split_space_noop(t, pt)) return EL_OK;
    if (first || (ty && (strcmp(ty, "Split") == 0 || strcmp(ty, "Digits") == 0))) {
        if (!ty || strcmp(ty, "ByteLevel") != 0)
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: pre_tokenizer: a Split or Digits step is supported only "
                             "followed by ByteLevel (got '%s' after it), or Split on the "
                             "String \" \" MergedWithPrevious after a normalizer that "
                             "replaces every ' ' (Gemma 3)",
                             t->path, first ? (ty ? ty : "?") : "nothing");
        el_status st = hf_parse_split(t, first);
        if (st != EL_OK) return st;
    }
    if (ty && strcmp(ty, "ByteLevel") == 0) {
        bool prefix = false, regex = true;
        el_status st = hf_get_bool(t, pt, "add_prefix_space", "pre_tokenizer", &prefix);
        if (st == EL_OK) st = hf_get_bool(t, pt, "use_regex", "pre_tokenizer", &regex);
        if (st != EL_OK) return st;
        if (prefix)
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: ByteLevel pre_tokenizer with add_prefix_space true is not "
                             "supported",
                             t->path);
        if (t->n_norm > 0)
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: a normalizer (other than NFC) before the ByteLevel "
                             "pre_tokenizer is not supported",
                             t->path);
        t->bl = true;
        t->bl_regex = regex;
        return EL_OK;
    }
    if (!ty || strcmp(ty, "Metaspace") != 0)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: pre_tokenizer type '%s' is not supported by the hf-bpe "
                         "tokenizer (supported: Metaspace, ByteLevel, or none)",
                         t->path, ty ? ty : "?");
    t->ms = true;
    t->ms_split = true;
    el_status st = hf_get_str(t, pt, "replacement", "pre_tokenizer", true, t->ms_rep,
                              &t->ms_rep_len);
    if (st == EL_OK) st = hf_parse_scheme(t, pt, "pre_tokenizer", &t->ms_scheme);
    if (st == EL_OK) st = hf_get_bool(t, pt, "split", "pre_tokenizer", &t->ms_split);
    return st;
}

static el_status hf_parse_decoder(hf_tok *t, const cJSON *root) {
    const cJSON *d = hf_get(root, "decoder");
    if (!d)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: decoder is null; the hf-bpe tokenizer needs a Metaspace or "
                         "Replace/ByteFallback/Fuse/Strip decoder to turn pieces into text",
                         t->path);
    if (!cJSON_IsObject(d)) return hf_bad_type(t, "decoder", "an object", d);
    const char *ty = hf_type_of(d);
    const cJSON *list = NULL;
    if (ty && strcmp(ty, "Sequence") == 0) {
        list = hf_get(d, "decoders");
        if (!cJSON_IsArray(list)) return hf_bad_type(t, "decoder.decoders", "an array", list);
    }
    int count = list ? cJSON_GetArraySize(list) : 1;
    bool fused = false;
    for (int i = 0; i < count; i++) {
        const cJSON *o = list ? cJSON_GetArrayItem(list, i) : d;
        const char *oty = cJSON_IsObject(o) ? hf_type_of(o) : NULL;
        char where[48];
        snprintf(where, sizeof where, "decoder[%d]", i);
        el_status st = EL_OK;
        if (oty && strcmp(oty, "Replace") == 0) {
            if (t->n_dec == HF_OPS_MAX)
                return el_errorf(EL_E_UNSUPPORTED, "%s: more than %d decoder Replace steps",
                                 t->path, HF_OPS_MAX);
            hf_op *op = &t->dec[t->n_dec];
            memset(op, 0, sizeof *op);
            st = hf_parse_replace(t, o, where, op);
            if (st == EL_OK) t->n_dec++;
        } else if (oty && strcmp(oty, "ByteLevel") == 0) {
            if (count != 1)
                return el_errorf(EL_E_UNSUPPORTED,
                                 "%s: a ByteLevel decoder together with other decoders is not "
                                 "supported",
                                 t->path);
            t->dec_bl = true;
        } else if (oty && strcmp(oty, "ByteFallback") == 0) {
            t->dec_byte_fallback = true;
        } else if (oty && strcmp(oty, "Fuse") == 0) {
            fused = true;
        } else if (oty && strcmp(oty, "Strip") == 0) {
            const cJSON *c = hf_get(o, "content");
            const cJSON *start = hf_get(o, "start");
            const cJSON *stop = hf_get(o, "stop");
            uint64_t a = 0, b = 0;
            if (!cJSON_IsString(c) || strcmp(c->valuestring, " ") != 0)
                return el_errorf(EL_E_UNSUPPORTED,
                                 "%s: %s Strip of anything but ' ' is not supported", t->path,
                                 where);
            if (!el_json_get_u64(start, 64, &a) || !el_json_get_u64(stop, 64, &b))
                return hf_bad_type(t, where, "a Strip with integer start and stop",
                                   start ? stop : start);
            if (b != 0)
                return el_errorf(EL_E_UNSUPPORTED,
                                 "%s: %s Strip with stop %llu: stripping the end of the text "
                                 "cannot be done token by token; only stop 0 is supported",
                                 t->path, where, (unsigned long long)b);
            t->dec_strip_start = (uint32_t)a;
            t->dec_strip_each = !fused;
        } else if (oty && strcmp(oty, "Metaspace") == 0) {
            int scheme = HF_SCHEME_ALWAYS;
            st = hf_get_str(t, o, "replacement", where, true, t->dec_ms_rep,
                            &t->dec_ms_rep_len);
            if (st == EL_OK) st = hf_parse_scheme(t, o, where, &scheme);
            if (st == EL_OK && t->n_dec < HF_OPS_MAX) {
                /* Every replacement character becomes ' ' (the first token: dropped). */
                hf_op *op = &t->dec[t->n_dec++];
                memset(op, 0, sizeof *op);
                op->kind = HF_OP_REPLACE;
                memcpy(op->pat, t->dec_ms_rep, t->dec_ms_rep_len);
                op->pat_len = t->dec_ms_rep_len;
                op->text[0] = ' ';
                op->text_len = 1;
                t->dec_ms_first = scheme != HF_SCHEME_NEVER;
            } else if (st == EL_OK) {
                st = el_errorf(EL_E_UNSUPPORTED, "%s: more than %d decoder steps", t->path,
                               HF_OPS_MAX);
            }
        } else {
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: %s type '%s' is not supported by the hf-bpe tokenizer "
                             "(supported: Replace, ByteFallback, Fuse, Strip, Metaspace, "
                             "ByteLevel)",
                             t->path, where, oty ? oty : "?");
        }
        if (st != EL_OK) return st;
    }
    return hf_check_growth(t, t->dec, t->n_dec, true, HF_DEC_CHAR_BYTES - 1, "decoder");
}

/* One post-processor: ByteLevel, or TemplateProcessing "<special> $A" (the special
 * token's id is the BOS). */
static el_status hf_parse_post_one(hf_tok *t, const cJSON *pp, int32_t *bos) {
    const char *ty = cJSON_IsObject(pp) ? hf_type_of(pp) : NULL;
    if (ty && strcmp(ty, "ByteLevel") == 0) return EL_OK; /* offsets only; ids unchanged */
    if (!ty || strcmp(ty, "TemplateProcessing") != 0)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: post_processor type '%s' is not supported by the hf-bpe "
                         "tokenizer (supported: TemplateProcessing \"<s> $A\", ByteLevel, a "
                         "Sequence of those, or none)",
                         t->path, ty ? ty : "?");
    const cJSON *single = hf_get(pp, "single");
    if (!cJSON_IsArray(single))
        return hf_bad_type(t, "post_processor.single", "an array", single);
    int count = cJSON_GetArraySize(single);
    bool seen_a = false;
    for (int i = 0; i < count; i++) {
        const cJSON *it = cJSON_GetArrayItem(single, i);
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        if (sq && !seen_a) {
            seen_a = true;
            continue;
        }
        const cJSON *name = sp ? cJSON_GetObjectItemCaseSensitive(sp, "id") : NULL;
        if (!cJSON_IsString(name) || seen_a || i != 0)
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: post_processor.single item %d: only one special token "
                             "before $A is supported (it becomes the BOS)",
                             t->path, i);
        const cJSON *map = hf_get(pp, "special_tokens");
        const cJSON *ent = map ? cJSON_GetObjectItemCaseSensitive(map, name->valuestring) : NULL;
        const cJSON *idl = ent ? cJSON_GetObjectItemCaseSensitive(ent, "ids") : NULL;
        uint64_t v;
        if (!cJSON_IsArray(idl) || cJSON_GetArraySize(idl) != 1 ||
            !el_json_get_u64(cJSON_GetArrayItem(idl, 0), INT32_MAX, &v))
            return el_errorf(EL_E_INVALID,
                             "%s: post_processor.special_tokens['%s'].ids must be a list of "
                             "one token id",
                             t->path, name->valuestring);
        *bos = (int32_t)v;
    }
    if (!seen_a)
        return el_errorf(EL_E_UNSUPPORTED, "%s: post_processor.single has no $A sequence",
                         t->path);
    return EL_OK;
}

/* The post_processor, alone or a Sequence (Llama 3.1: ByteLevel then TemplateProcessing). */
static el_status hf_parse_post(hf_tok *t, const cJSON *root, int32_t *bos) {
    const cJSON *pp = hf_get(root, "post_processor");
    *bos = -1;
    if (!pp) return EL_OK;
    const char *ty = cJSON_IsObject(pp) ? hf_type_of(pp) : NULL;
    if (!ty || strcmp(ty, "Sequence") != 0) return hf_parse_post_one(t, pp, bos);
    const cJSON *list = hf_get(pp, "processors");
    if (!cJSON_IsArray(list)) return hf_bad_type(t, "post_processor.processors", "an array", list);
    for (const cJSON *it = list->child; it; it = it->next) {
        int32_t b = -1;
        el_status st = hf_parse_post_one(t, it, &b);
        if (st != EL_OK) return st;
        if (b >= 0 && *bos >= 0)
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: post_processor Sequence with two TemplateProcessing steps "
                             "is not supported",
                             t->path);
        if (b >= 0) *bos = b;
    }
    return EL_OK;
}

static bool hf_is_byte_token(const char *s, size_t n, uint8_t *b) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return false;
    const char *h1 = memchr(hex, s[3], 16), *h2 = memchr(hex, s[4], 16);
    if (!h1 || !h2 || !s[3] || !s[4]) return false;
    *b = (uint8_t)(((h1 - hex) << 4) | (h2 - hex));
    return true;
}

el_status el_hf_merge_split(const char *name, const char *field, uint32_t i, const char *s,
                            size_t n, size_t *sp) {
    const char *p = memchr(s, ' ', n);
    if (!p || p == s || p == s + n - 1 || memchr(p + 1, ' ', n - (size_t)(p + 1 - s))) {
        char d[96];
        return el_errorf(EL_E_INVALID,
                         "%s: %s[%u] is '%s': expected two tokens separated by one space",
                         name, field, (unsigned)i, el_json_printable(s, n, d, sizeof d));
    }
    *sp = (size_t)(p - s);
    return EL_OK;
}

static uint64_t hf_pow2_at_least(uint64_t v) {
    uint64_t p = 16;
    while (p < v) p <<= 1;
    return p;
}

#define HF_MERGES_MAX (1u << 22) /* merges accepted (Llama 3 has 280 K) */

/* Build state the vocabulary and merge passes share. */
typedef struct hf_bld {
    hf_tok *t;
    el_tok_mem *mem;
    uint64_t max_id;
    bool any;
    uint64_t pool_bytes;     /* upper bound: every vocab string and added content */
    uint32_t na;             /* added_tokens elements */
    uint32_t pool_used;
    char *cat;               /* merges: a + b (max_tok_len bytes, heap) */
    uint32_t n_merges_in;    /* merges counted */
} hf_bld;

static el_status hf_vocab_id(const hf_tok *t, const char *s, size_t n, const cJSON *id,
                             uint64_t *v) {
    if (el_json_get_u64(id, HF_TOKENS_MAX - 1, v)) return EL_OK;
    char d[64], p[64];
    return el_errorf(EL_E_INVALID,
                     "%s: model.vocab['%s'] is %s: token ids must be integers in [0, %u)",
                     t->path, el_json_printable(s, n, p, sizeof p),
                     el_json_describe(id, d, sizeof d), (unsigned)HF_TOKENS_MAX);
}

/* Pass 1: the id range and the bytes of the strings. */
static el_status hf_vocab_count(void *u, const char *s, size_t n, const cJSON *id) {
    hf_bld *b = u;
    uint64_t v;
    el_status st = hf_vocab_id(b->t, s, n, id, &v);
    if (st != EL_OK) return st;
    if (v > b->max_id) b->max_id = v;
    b->any = true;
    b->pool_bytes += n + 1;
    return EL_OK;
}

static const cJSON *hf_added_id(const cJSON *o) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "id") : NULL;
}

static el_status hf_added_count(void *u, uint32_t i, const cJSON *o) {
    hf_bld *b = u;
    const cJSON *idv = hf_added_id(o);
    uint64_t v;
    if (!el_json_get_u64(idv, HF_TOKENS_MAX - 1, &v)) {
        char f[48];
        snprintf(f, sizeof f, "added_tokens[%u].id", (unsigned)i);
        return hf_bad_type(b->t, f, "an integer token id", idv);
    }
    if (v > b->max_id) b->max_id = v;
    b->any = true;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "content");
    if (cJSON_IsString(c)) b->pool_bytes += strlen(c->valuestring) + 1;
    if (b->na == UINT32_MAX) return el_errorf(EL_E_INVALID, "%s: too many added tokens", b->t->path);
    b->na++;
    return EL_OK;
}

/* Pass 2: each vocabulary string into the pool under its id. */
static el_status hf_vocab_fill(void *u, const char *s, size_t n, const cJSON *id) {
    hf_bld *b = u;
    hf_tok *t = b->t;
    uint64_t v = 0;
    (void)el_json_get_u64(id, HF_TOKENS_MAX - 1, &v);
    if (t->flags[v] & HF_TOK_HAS) {
        char p1[64], p2[64];
        return el_errorf(EL_E_INVALID, "%s: model.vocab gives id %llu to both '%s' and '%s'",
                         t->path, (unsigned long long)v,
                         el_json_printable(hf_tok_str(t, (int32_t)v), t->len[v], p1, sizeof p1),
                         el_json_printable(s, n, p2, sizeof p2));
    }
    if (n == 0)
        return el_errorf(EL_E_INVALID, "%s: model.vocab has an empty token (id %llu)", t->path,
                         (unsigned long long)v);
    if (n > UINT32_MAX - 1 - b->pool_used || b->pool_used + n + 1 > b->pool_bytes)
        return el_errorf(EL_E_INVALID, "%s: model.vocab changed while it was read", t->path);
    memcpy(t->pool + b->pool_used, s, n);
    t->pool[b->pool_used + n] = 0;
    t->off[v] = b->pool_used;
    t->len[v] = (uint32_t)n;
    b->pool_used += (uint32_t)n + 1;
    t->flags[v] |= HF_TOK_VOCAB | HF_TOK_HAS;
    return EL_OK;
}

static el_status hf_added_fill(void *u, uint32_t i, const cJSON *o) {
    hf_bld *b = u;
    hf_tok *t = b->t;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "content");
    uint64_t v = 0;
    (void)el_json_get_u64(hf_added_id(o), HF_TOKENS_MAX - 1, &v);
    char where[48];
    snprintf(where, sizeof where, "added_tokens[%u]", (unsigned)i);
    if (!cJSON_IsString(c) || c->valuestring[0] == 0) {
        char f[64];
        snprintf(f, sizeof f, "%s.content", where);
        return hf_bad_type(t, f, "a non-empty string", c);
    }
    const char *cs = c->valuestring;
    size_t cl = strlen(cs);
    static const char *const opts[] = {"lstrip", "rstrip", "single_word", "normalized"};
    static const uint8_t opt_flag[] = {HF_TOK_LSTRIP, HF_TOK_RSTRIP, HF_TOK_SINGLE_WORD, 0};
    uint8_t flags = 0;
    for (size_t k = 0; k < 4; k++) {
        bool on = false;
        el_status st = hf_get_bool(t, o, opts[k], where, &on);
        if (st != EL_OK) return st;
        if (on && opt_flag[k]) {
            flags |= opt_flag[k];
        } else if (on) {
            char p[64];
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: %s ('%s') has normalized true: the hf-bpe tokenizer "
                             "matches added tokens on the raw text only",
                             t->path, where, el_json_printable(cs, cl, p, sizeof p));
        }
    }
    bool special = false;
    el_status st = hf_get_bool(t, o, "special", where, &special);
    if (st != EL_OK) return st;
    if ((t->flags[v] & HF_TOK_HAS) &&
        (t->len[v] != cl || memcmp(hf_tok_str(t, (int32_t)v), cs, cl) != 0)) {
        char p1[64], p2[64];
        return el_errorf(EL_E_INVALID,
                         "%s: %s gives id %llu to '%s' but model.vocab has '%s' there",
                         t->path, where, (unsigned long long)v,
                         el_json_printable(cs, cl, p1, sizeof p1),
                         el_json_printable(hf_tok_str(t, (int32_t)v), t->len[v], p2,
                                           sizeof p2));
    }
    if (!(t->flags[v] & HF_TOK_HAS)) {
        if (cl > UINT32_MAX - 1 - b->pool_used || b->pool_used + cl + 1 > b->pool_bytes)
            return el_errorf(EL_E_INVALID, "%s: added_tokens changed while read", t->path);
        memcpy(t->pool + b->pool_used, cs, cl + 1);
        t->off[v] = b->pool_used;
        t->len[v] = (uint32_t)cl;
        b->pool_used += (uint32_t)cl + 1;
        t->flags[v] |= HF_TOK_HAS;
    }
    t->flags[v] |= flags;
    if (special) t->flags[v] |= HF_TOK_SPECIAL;
    /* Added tokens for matching, each id once (sorted by their bytes after the passes). */
    if (!(t->flags[v] & HF_TOK_ADDED) && t->n_added < b->na) {
        t->flags[v] |= HF_TOK_ADDED;
        t->added[t->n_added++] = (int32_t)v;
    }
    return EL_OK;
}

/* The vocabulary tables from model.vocab and added_tokens. */
static el_status hf_build_vocab(hf_bld *b, const el_hf_src *src) {
    hf_tok *t = b->t;
    /* Pass 1: the id range and the pool's size. */
    el_status st = src->vocab(src->ctx, hf_vocab_count, b);
    if (st == EL_OK && src->added) st = src->added(src->ctx, hf_added_count, b);
    if (st != EL_OK) return st;
    if (!b->any)
        return el_errorf(EL_E_INVALID, "%s: model.vocab is empty: not a usable tokenizer",
                         t->path);
    if (b->pool_bytes > UINT32_MAX)
        return el_errorf(EL_E_UNSUPPORTED, "%s: %llu bytes of token strings; at most 4 GiB",
                         t->path, (unsigned long long)b->pool_bytes);
    uint32_t n = (uint32_t)b->max_id + 1;
    t->n = n;
    el_tok_mem *mem = b->mem;
    uint64_t slots = hf_pow2_at_least((uint64_t)n * 2);
    t->off = el_tok_alloc_array(mem, n, sizeof *t->off, 8);
    t->len = el_tok_alloc_array(mem, n, sizeof *t->len, 8);
    t->flags = el_tok_alloc(mem, n, 8);
    t->byte = el_tok_alloc(mem, n, 8);
    t->pool = el_tok_alloc(mem, (size_t)b->pool_bytes, 8);
    t->vslot = el_tok_alloc_array(mem, (size_t)slots, sizeof *t->vslot, 64);
    if (b->na) t->added = el_tok_alloc_array(mem, b->na, sizeof *t->added, 8);
    if (!t->off || !t->len || !t->flags || !t->byte || !t->pool || !t->vslot ||
        (b->na && !t->added))
        return el_errorf(EL_E_NOMEM, "%s: out of memory for the tables of %u tokens", t->path,
                         n);
    /* Pass 2: strings per id; duplicates and gaps are corrupt files. */
    st = src->vocab(src->ctx, hf_vocab_fill, b);
    if (st == EL_OK && src->added) st = src->added(src->ctx, hf_added_fill, b);
    if (st != EL_OK) return st;
    for (uint32_t i = 0; i < n; i++) {
        if (!(t->flags[i] & HF_TOK_HAS))
            return el_errorf(EL_E_INVALID,
                             "%s: no token has id %u although ids go up to %u: a token id is "
                             "out of range (ids must be 0..n-1 without gaps)",
                             t->path, (unsigned)i, (unsigned)(n - 1));
        t->flags[i] &= (uint8_t)~HF_TOK_HAS;
    }
    t->vmask = (uint32_t)(slots - 1);
    memset(t->vslot, 0xff, (size_t)slots * sizeof *t->vslot);
    for (int c = 0; c < 256; c++) t->byte_id[c] = -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *ts = hf_tok_str(t, (int32_t)i);
        size_t l = t->len[i];
        if (!el_utf8_valid(ts, l))
            return el_errorf(EL_E_INVALID, "%s: token %u is not valid UTF-8", t->path,
                             (unsigned)i);
        if (l > t->max_tok_len) t->max_tok_len = (uint32_t)l;
        uint8_t by;
        if (hf_is_byte_token(ts, l, &by)) {
            t->flags[i] |= HF_TOK_BYTE;
            if (t->byte_id[by] < 0 && (t->flags[i] & HF_TOK_VOCAB))
                t->byte_id[by] = (int32_t)i; /* HF falls back on model.vocab's */
            t->byte[i] = by;
        }
    }
    /* String -> id: model.vocab's entries first (BPE looks strings up there), then added
     * tokens that model.vocab lacks. A string twice in model.vocab is corrupt; an added
     * token repeating a vocab string under another id keeps the vocab id for BPE (it is
     * still matched as an added token by its own id). */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < n; i++) {
            bool in_vocab = (t->flags[i] & HF_TOK_VOCAB) != 0;
            if (in_vocab != (pass == 0)) continue;
            const char *ts = hf_tok_str(t, (int32_t)i);
            if (hf_vocab_find(t, ts, t->len[i]) >= 0) {
                if (in_vocab) {
                    char p[64];
                    return el_errorf(EL_E_INVALID,
                                     "%s: token '%s' appears twice in model.vocab (id %u)",
                                     t->path, el_json_printable(ts, t->len[i], p, sizeof p),
                                     (unsigned)i);
                }
                continue;
            }
            uint64_t h = hf_hash_bytes(ts, t->len[i]) & t->vmask;
            while (t->vslot[h] >= 0) h = (h + 1) & t->vmask;
            t->vslot[h] = (int32_t)i;
        }
    }
    if (t->n_added > 1) {
        /* The sort's work space is in the block too: a hostile file's millions of added
         * tokens then cost the plan, not an unplanned transient. */
        int32_t *tmp = el_tok_alloc_array(b->mem, t->n_added, sizeof *tmp, 4);
        if (!tmp) return el_errorf(EL_E_NOMEM, "%s: out of memory", t->path);
        hf_sort_by_bytes(t, t->added, tmp, t->n_added);
    }
    return EL_OK;
}

static el_status hf_merge_count(void *u, uint32_t i, const char *a, size_t al, const char *b_,
                                size_t bl) {
    hf_bld *b = u;
    (void)i, (void)a, (void)al, (void)b_, (void)bl;
    if (b->n_merges_in >= HF_MERGES_MAX)
        return el_errorf(EL_E_UNSUPPORTED, "%s: more than %u merges", b->t->path,
                         HF_MERGES_MAX);
    b->n_merges_in++;
    return EL_OK;
}

static el_status hf_merge_add(void *u, uint32_t i, const char *a, size_t al, const char *bs,
                              size_t bl) {
    hf_bld *b = u;
    hf_tok *t = b->t;
    if (i >= b->n_merges_in)
        return el_errorf(EL_E_INVALID, "%s: model.merges changed while read", t->path);
    int32_t ia = hf_vocab_find(t, a, al), ib = hf_vocab_find(t, bs, bl);
    if (ia < 0 || ib < 0) {
        char p[64];
        return el_errorf(EL_E_INVALID,
                         "%s: model.merges[%u] names '%s', which is not in model.vocab",
                         t->path, (unsigned)i,
                         ia < 0 ? el_json_printable(a, al, p, sizeof p)
                                : el_json_printable(bs, bl, p, sizeof p));
    }
    int32_t ir = -1;
    if (al + bl <= t->max_tok_len) {
        memcpy(b->cat, a, al);
        memcpy(b->cat + al, bs, bl);
        ir = hf_vocab_find(t, b->cat, al + bl);
    }
    if (ir < 0) {
        char p1[64], p2[64];
        return el_errorf(EL_E_INVALID,
                         "%s: model.merges[%u] ('%s' + '%s'): the merged token is not in "
                         "model.vocab",
                         t->path, (unsigned)i, el_json_printable(a, al, p1, sizeof p1),
                         el_json_printable(bs, bl, p2, sizeof p2));
    }
    /* As in HF (a map built in order), a repeated pair takes the later rank. */
    uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
    uint64_t h = hf_hash_pair(key) & t->mmask;
    while (t->mslot[h].key != UINT64_MAX && t->mslot[h].key != key) h = (h + 1) & t->mmask;
    if (t->mslot[h].key == UINT64_MAX) t->n_merges++;
    t->mslot[h].key = key;
    t->mslot[h].rank = i;
    t->mslot[h].result = ir;
    return EL_OK;
}

static el_status hf_build_merges(hf_bld *b, const el_hf_src *src) {
    hf_tok *t = b->t;
    el_status st = EL_OK;
    if (src->merges && src->n_merges != UINT64_MAX) {
        if (src->n_merges > HF_MERGES_MAX)
            return el_errorf(EL_E_UNSUPPORTED, "%s: more than %u merges", t->path,
                             HF_MERGES_MAX);
        b->n_merges_in = (uint32_t)src->n_merges;
    } else if (src->merges) {
        st = src->merges(src->ctx, hf_merge_count, b);
    }
    if (st != EL_OK) return st;
    uint64_t nm = b->n_merges_in;
    uint64_t slots = hf_pow2_at_least((nm > 0 ? nm : 1) * 2);
    t->mslot = el_tok_alloc_array(b->mem, (size_t)slots, sizeof *t->mslot, 64);
    if (!t->mslot)
        return el_errorf(EL_E_NOMEM, "%s: out of memory for %llu merges", t->path,
                         (unsigned long long)nm);
    t->mmask = slots - 1;
    for (uint64_t i = 0; i < slots; i++) t->mslot[i].key = UINT64_MAX;
    if (!src->merges || nm == 0) return EL_OK;
    b->cat = malloc((size_t)t->max_tok_len + 1); /* transient */
    if (!b->cat) return el_errorf(EL_E_NOMEM, "%s: out of memory", t->path);
    st = src->merges(src->ctx, hf_merge_add, b);
    free(b->cat);
    b->cat = NULL;
    return st;
}

/* Whether words may also be split before split_ch (U+2581 or the Metaspace replacement)
 * where it follows another character, without changing any id. A merge result spanning
 * such a split would be a token with split_ch right after a different character; if the
 * merges make no such token, no merge ever crosses the split, merges on either side never
 * interact, and lowest-rank-first on the whole word equals it on each part. The character
 * itself must be a token (else unk fusing could cross). ignore_merges looks whole words up
 * first, so it keeps words whole. */
static void hf_split_safe(hf_tok *t) {
    static const char spiece[] = "\xe2\x96\x81";
    if (t->ms) {
        memcpy(t->split_ch, t->ms_rep, t->ms_rep_len);
        t->split_ch_len = t->ms_rep_len;
    } else {
        memcpy(t->split_ch, spiece, 3);
        t->split_ch_len = 3;
    }
    t->split_safe = false;
    if (t->ignore_merges || (t->ms && t->ms_split)) return;
    if (hf_vocab_find(t, t->split_ch, t->split_ch_len) < 0) return;
    for (uint64_t i = 0; i <= t->mmask; i++) {
        if (t->mslot[i].key == UINT64_MAX) continue;
        int32_t r = t->mslot[i].result;
        const char *s = hf_tok_str(t, r);
        size_t n = t->len[r];
        bool prev_is_split = false, have_prev = false;
        for (size_t k = 0; k < n;) {
            size_t cl = hf_utf8_len((const unsigned char *)s + k, n - k);
            if (cl == 0) cl = 1;
            bool is_split = hf_is(s + k, cl, t->split_ch, t->split_ch_len);
            if (is_split && have_prev && !prev_is_split) return;
            have_prev = true;
            prev_is_split = is_split;
            k += cl;
        }
    }
    t->split_safe = true;
}

/* ByteLevel tables: each byte's token (a byte without one is dropped or unk, as in HF)
 * and the inverse map for decoding. */
static void hf_bl_setup(hf_tok *t) {
    for (uint32_t c = 0; c < HF_BL_CHARS; c++) t->bl_byte[c] = -1;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = hf_bl_char_of(b);
        char u[4];
        size_t ul = el_tokenizer_byte_char(b, u); /* 1 or 2 bytes: cp < U+0144 */
        memcpy(t->bl_chr[b], u, ul);
        t->bl_byte[cp] = (int16_t)b;
        t->bl_id[b] = hf_model_find(t, u, ul);
    }
}

static el_status hf_parse(hf_bld *b, const el_hf_src *src, uint32_t vocab_size) {
    hf_tok *t = b->t;
    const cJSON *root = src->root;
    if (!cJSON_IsObject(root)) return hf_bad_type(t, "the top level", "an object", root);
    const cJSON *model = hf_get(root, "model");
    if (!cJSON_IsObject(model)) return hf_bad_type(t, "model", "an object", model);
    const char *ty = hf_type_of(model);
    if (!ty)
        return el_errorf(EL_E_INVALID, "%s: model.type is missing: expected \"BPE\"", t->path);
    if (strcmp(ty, "BPE") != 0)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: model.type '%s' is not supported by the hf-bpe tokenizer (BPE "
                         "only)",
                         t->path, ty);
    const cJSON *dropout = hf_get(model, "dropout");
    if (dropout && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0.0))
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: model.dropout is set: BPE dropout (random merges) is a "
                         "training feature and is not supported",
                         t->path);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = hf_get(model, affixes[i]);
        if (v && !(cJSON_IsString(v) && v->valuestring[0] == 0))
            return el_errorf(EL_E_UNSUPPORTED, "%s: model.%s is set: not supported", t->path,
                             affixes[i]);
    }
    el_status st = hf_get_bool(t, model, "fuse_unk", "model", &t->fuse_unk);
    if (st == EL_OK) st = hf_get_bool(t, model, "byte_fallback", "model", &t->byte_fallback);
    if (st == EL_OK) st = hf_get_bool(t, model, "ignore_merges", "model", &t->ignore_merges);
    if (st != EL_OK) return st;

    const cJSON *vocab = hf_get(model, "vocab");
    if (!cJSON_IsObject(vocab)) return hf_bad_type(t, "model.vocab", "an object", vocab);
    const cJSON *merges = hf_get(model, "merges");
    if (merges && !cJSON_IsArray(merges))
        return hf_bad_type(t, "model.merges", "an array", merges);
    const cJSON *added = hf_get(root, "added_tokens");
    if (added && !cJSON_IsArray(added))
        return hf_bad_type(t, "added_tokens", "an array", added);

    st = hf_build_vocab(b, src);
    if (st == EL_OK && src->vocab_done) st = src->vocab_done(src->ctx, &t->base);
    if (st == EL_OK) st = hf_build_merges(b, src);
    if (st != EL_OK) return st;

    t->unk_id = -1;
    const cJSON *unk = hf_get(model, "unk_token");
    if (unk) {
        if (!cJSON_IsString(unk)) return hf_bad_type(t, "model.unk_token", "a string", unk);
        t->unk_id = hf_vocab_find(t, unk->valuestring, strlen(unk->valuestring));
        if (t->unk_id < 0) {
            char p[64];
            return el_errorf(EL_E_INVALID, "%s: model.unk_token '%s' is not in model.vocab",
                             t->path,
                             el_json_printable(unk->valuestring, strlen(unk->valuestring), p,
                                               sizeof p));
        }
    }
    if (t->ignore_merges && t->max_tok_len > HF_WORD_BYTES)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: a token of %u bytes with ignore_merges: at most %d supported",
                         t->path, (unsigned)t->max_tok_len, HF_WORD_BYTES);

    st = hf_parse_normalizer(t, root);
    if (st == EL_OK) st = hf_parse_pretok(t, root);
    if (st == EL_OK) st = hf_parse_decoder(t, root);
    int32_t bos = -1;
    if (st == EL_OK) st = hf_parse_post(t, root, &bos);
    if (st != EL_OK) return st;
    if (bos >= 0 && (uint32_t)bos >= t->n)
        return el_errorf(EL_E_INVALID,
                         "%s: post_processor BOS id %d is out of range: the vocabulary has "
                         "%u tokens",
                         t->path, (int)bos, (unsigned)t->n);
    if (t->bl != t->dec_bl)
        return el_errorf(EL_E_UNSUPPORTED,
                         "%s: a ByteLevel %s needs a ByteLevel %s as well", t->path,
                         t->bl ? "pre_tokenizer" : "decoder",
                         t->bl ? "decoder" : "pre_tokenizer");
    if (t->bl) hf_bl_setup(t);
    t->base.bos_id = bos >= 0 ? bos : hf_vocab_find(t, "<s>", 3);
    t->base.eos_id = hf_vocab_find(t, "</s>", 4);
    if (t->bl) { /* GPT-2: <|endoftext|> begins and ends texts */
        int32_t eot = hf_vocab_find(t, "<|endoftext|>", 13);
        if (t->base.bos_id < 0) t->base.bos_id = eot;
        if (t->base.eos_id < 0) t->base.eos_id = eot;
    }
    t->base.unk_id = t->unk_id;
    t->base.vocab_size = t->n;
    hf_split_safe(t);

    /* A model may have more rows than the tokenizer has tokens (Qwen2.5: 151,665 tokens,
     * vocab_size 151,936, padded). Fewer: only added tokens may lie past the model's rows
     * (Gemma 3 1B: <image_soft_token> is 262,144, vocab_size 262,144); encode refuses a
     * text that holds one, so no id reaches past the model. */
    for (uint32_t id = vocab_size; vocab_size != 0 && id < t->n; id++) {
        if ((t->flags[id] & HF_TOK_VOCAB) || !(t->flags[id] & HF_TOK_ADDED) ||
            id == (uint32_t)t->base.bos_id || id == (uint32_t)t->unk_id)
            return el_errorf(EL_E_INVALID,
                             "%s: the tokenizer has %u tokens but the model's vocab_size is "
                             "%u, and token %u is a vocabulary, BOS or unk token past the "
                             "model's rows: use the tokenizer that came with the model",
                             t->path, (unsigned)t->n, (unsigned)vocab_size, (unsigned)id);
    }
    t->model_vocab = vocab_size;
    return EL_OK;
}

el_status el_hf_bpe_build(const el_hf_src *src, const char *name, uint32_t vocab_size,
                          el_tok_mem *mem, el_tokenizer **out) {
    *out = NULL;
    hf_tok *t = el_tok_alloc(mem, sizeof *t, 64);
    if (!t) return el_errorf(EL_E_NOMEM, "%s: out of memory", name);
    t->base.vt = &hf_vtable;
    el_tokenizer_base_init(&t->base);
    snprintf(t->path, sizeof t->path, "%s", name);
    hf_bld b = {.t = t, .mem = mem};
    el_status st = hf_parse(&b, src, vocab_size);
    if (st != EL_OK) return st;
    *out = &t->base;
    return EL_OK;
}

int32_t el_hf_bpe_find(const el_tokenizer *t, const char *s, size_t n) {
    return hf_model_find((const hf_tok *)t, s, n);
}

/* tokenizer.json from a tree (el_tokenizer_hf_bpe_from_json). */
typedef struct hf_tree_args {
    const cJSON *root;
    const char *name;
    uint32_t vocab_size;
} hf_tree_args;

static el_status hf_build_tree(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const hf_tree_args *a = args;
    el_hf_src src;
    el_hf_src_tree(&src, a->root, a->name);
    return el_hf_bpe_build(&src, a->name, a->vocab_size, mem, out);
}

el_status el_tokenizer_hf_bpe_from_json(const cJSON *root, const char *name,
                                        uint32_t vocab_size, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "hf-bpe tokenizer: out is NULL");
    *out = NULL;
    if (!cJSON_IsObject(root)) {
        char d[64];
        return el_errorf(EL_E_INVALID, "%s: the top level must be an object, got %s", name,
                         el_json_describe(root, d, sizeof d));
    }
    hf_tree_args a = {root, name, vocab_size};
    return el_tok_build_heap(hf_build_tree, &a, out);
}

/* tokenizer.json streamed from its file, or from bytes in memory (data != NULL). */
typedef struct hf_file_args {
    const char *path;   /* the file, or the name for messages */
    const char *data;
    size_t len;
    uint32_t vocab_size;
} hf_file_args;

static el_status hf_build_file(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const hf_file_args *a = args;
    el_jstream js;
    el_status st = a->data ? el_js_open_mem(&js, a->data, a->len, a->path)
                           : el_js_open_file(&js, a->path);
    if (st != EL_OK) return st;
    el_hf_stream hs;
    el_hf_src src;
    st = el_hf_stream_open(&hs, &js, &src);
    if (st == EL_OK) st = el_hf_bpe_build(&src, a->path, a->vocab_size, mem, out);
    el_hf_stream_free(&hs);
    el_js_close(&js);
    return st;
}

el_status el_tokenizer_hf_bpe_parse(const char *data, size_t len, const char *name,
                                    uint32_t vocab_size, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "hf-bpe tokenizer: out is NULL");
    *out = NULL;
    hf_file_args a = {name ? name : "tokenizer.json", data, len, vocab_size};
    return el_tok_build_heap(hf_build_file, &a, out);
}

el_status el_tokenizer_hf_bpe_open_mem(const char *path, uint32_t vocab_size, el_tok_mem *mem,
                                       el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "hf-bpe tokenizer: out is NULL");
    *out = NULL;
    if (!path || !mem) return el_errorf(EL_E_USAGE, "hf-bpe tokenizer: path or mem is NULL");
    hf_file_args a = {path, NULL, 0, vocab_size};
    return hf_build_file(&a, mem, out);
}

el_status el_tokenizer_hf_bpe_open(const char *path, uint32_t vocab_size, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "hf-bpe tokenizer: out is NULL");
    *out = NULL;
    if (!path) return el_errorf(EL_E_USAGE, "hf-bpe tokenizer: path is NULL");
    hf_file_args a = {path, NULL, 0, vocab_size};
    return el_tok_build_heap(hf_build_file, &a, out);
}
