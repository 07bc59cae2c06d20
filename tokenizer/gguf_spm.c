/* gguf_spm.c - the SentencePiece tokenizer of a GGUF file (tokenizer.ggml.model "llama":
 * Llama 2, Gemma), giving the ids llama.cpp's SPM tokenizer gives with parse_special = true
 * (llama-tokenize, llama-simple). The rules implemented, as in llama.cpp's llama-vocab.cpp:
 *
 *  - defaults for a "llama" vocabulary: BOS 1, EOS 2, UNK 0, add_bos true, add_eos false,
 *    add_space_prefix true; tokenizer.ggml.{bos,eos,unknown}_token_id, add_bos_token,
 *    add_eos_token and add_space_prefix override them; tokenizer.ggml.pre is ignored.
 *  - special tokens: tokens of type control (3), user-defined (4) and unknown (2) are
 *    matched verbatim in the raw text (bytes) and give their id; a longer one wins where
 *    several start at the same place. (llama.cpp splits the text token by token, longest
 *    first; scanning left to right gives the same split unless two special tokens can
 *    overlap in the text with the shorter one starting first, which no vocabulary here has:
 *    Gemma's are tags and runs of one whitespace character.) No lstrip/rstrip (llama.cpp
 *    sets those only for a few model names: phi-3, jina, modern-bert).
 *  - each stretch of text between special tokens: a ' ' in front when add_space_prefix and
 *    it is the first stretch or follows a special token (llama.cpp's is_prev_special, BOS
 *    included), every ' ' to U+2581, one symbol per UTF-8 character, then the adjacent pair
 *    whose concatenation is a token (any type) with the highest score merges, the leftmost
 *    pair on equal scores, until no pair is a token; a symbol that is not a token becomes
 *    the tokens of its bytes: <0xXX> (upper-case hex, found by text as llama.cpp does), else
 *    the one-byte token, else UNK (llama.cpp aborts there).
 *  - BOS in front when the caller asks (add_bos) and the file says add_bos; EOS at the end
 *    when the caller asks and the file says add_eos.
 *  - decode (llama.cpp's token_to_piece with special = false, detokenize's lstrip): control,
 *    unknown, unused and undefined types give nothing; user-defined give their text;
 *    byte tokens their byte; normal tokens their text with U+2581 -> ' '; the first token
 *    of a sequence (prev < 0) loses one leading ' ' when add_space_prefix.
 *
 * Memory (one block, tokenizer/tok_mem.h: the arena's tokenizer region, or an exact heap
 * block; el_tokenizer_gguf_spm_heap_bytes gives its bytes): the struct, the token texts
 * back to back (sum of their lengths), offsets (4 (n + 1)), scores (4 n), attributes (n)
 * and a hash table of the texts (4 bytes a slot, slots = the power of two >= 2 n): 9 bytes
 * a token + 8..16 in the hash + the texts, and encode's scratch (384 KiB). Tokens, scores
 * and types stream from the GGUF metadata (el_gguf_iter) twice, once to size the text and
 * once to copy it; the transient is one token's text. Gemma 3's 262,144 tokens: about
 * 7.2 MB (2.3 MB of it text, 2 MiB hash); the 1,000-token fixture 419,648 bytes
 * (test_tokenizer_gguf_gemma3 and _spm print them). At most SPM_TOKENS_MAX tokens and
 * SPM_TEXT_MAX bytes of text (empty names llama.cpp gives "[EMPTY_i]" included) are
 * accepted, so a hostile file cannot make it hold more than ~135 MB (4 Mi tokens: 36 MB of
 * tables, 32 MiB of hash, 64 MiB of text).
 *
 * encode allocates nothing and is O(m log m) for m characters. A stretch between special
 * tokens is cut further where no token can span (the last byte of a character followed by
 * the first of the next occurs in no token's text: in the vocabularies seen, before most
 * spaces); a piece of up to
 * SPM_STACK_SYMS characters is merged in stack arrays (24 B a character, 24 KiB), one of up
 * to SPM_SCRATCH_SYMS in the tokenizer's scratch (384 KiB, in the block, taken by one
 * encode at a time: a concurrent encode goes on to the next option), a longer one in the
 * unused end of the caller's ids buffer (6 ids a character, the output before it). Without
 * that room encode says EL_E_NOFIT with *n = a count of ids that suffices. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/gguf_tok.h"
#include "tokenizer/tok_mem.h"
#include "tokenizer/tok_merge.h"

#include "loader/safetensors.h" /* el_json_printable */
#include "platform/platform.h"

#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPM_TOKENS_MAX (1u << 22)          /* tokens accepted */
#define SPM_TEXT_MAX (64u << 20)           /* bytes of all token texts together */
#define SPM_STACK_SYMS 1024                /* characters merged in stack arrays */
#define SPM_SCRATCH_SYMS 16384             /* characters merged in the tokenizer's scratch */
#define SPM_SCAN_MAX 128                   /* special tokens up to this long are found with
                                              one hashing pass per candidate position */
#define SPM_RAW_SPACE INT32_MIN            /* symbol: the prefix space, not a token */

static const char k_ws[] = "\xe2\x96\x81"; /* U+2581, what ' ' becomes */

/* llama.cpp's token attributes (llama_token_attr), from the types and by-text overrides. */
enum { SPM_A_UNKNOWN = 1 << 1, SPM_A_UNUSED = 1 << 2, SPM_A_NORMAL = 1 << 3,
       SPM_A_CONTROL = 1 << 4, SPM_A_USER = 1 << 5, SPM_A_BYTE = 1 << 6 };

/* Texts llama.cpp makes control tokens whatever their type (llama-vocab.cpp, "auto-detect
 * special tokens by text": its EOT, EOM and end-of-generation lists). */
static const char *const k_ctl_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]",
    "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~[",
};
/* Its fill-in-the-middle texts, by kind: the kind's first token found becomes control when
 * the file names none (tokenizer.ggml.fim_*_token_id). */
static const struct {
    const char *key;
    const char *texts[9];
} k_fim[] = {
    {"tokenizer.ggml.fim_pre_token_id",
     {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
      "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
      "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"}},
    {"tokenizer.ggml.fim_suf_token_id",
     {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
      "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>", "\xe2\x96\x81<SUF>",
      "<|code_suffix|>", "<|suffix|>"}},
    {"tokenizer.ggml.fim_mid_token_id",
     {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
      "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", "\xe2\x96\x81<MID>",
      "<|code_middle|>", "<|middle|>"}},
    {"tokenizer.ggml.fim_pad_token_id",
     {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}},
    {"tokenizer.ggml.fim_rep_token_id",
     {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
    {"tokenizer.ggml.fim_sep_token_id", {"<|file_sep|>"}},
};

typedef struct spm_tok {
    el_tokenizer base;
    char name[300];
    uint32_t n;              /* tokens */
    char *text;              /* token i is text[off[i] .. off[i + 1]) */
    uint32_t *off;           /* [n + 1] */
    float *score;            /* [n] */
    uint8_t *attr;           /* [n] SPM_A_* bits */
    uint32_t *slot;          /* [slot_mask + 1] id + 1, 0 = empty (open addressing) */
    uint32_t slot_mask;
    int32_t byte_tok[256];   /* encode's token for a raw byte, -1 none */
    uint64_t sp_len[256];    /* by first byte: bit L-1 set if a special of L <= 64 bytes */
    uint32_t sp_max[256];    /* by first byte: bytes of the longest special */
    uint8_t *joins;          /* [65536 / 8] bit a * 256 + b: byte a then b inside a token */
    bool add_bos, add_eos, space_prefix;
    int32_t *scratch;        /* [6 SPM_SCRATCH_SYMS] work space of one encode at a time */
    atomic_bool busy;        /* scratch in use */
    size_t block_bytes;      /* everything above: the tables' bytes (el_tok_mem) */
} spm_tok;

/* ---- lookups ---------------------------------------------------------------------------- */

#define SPM_FNV0 2166136261u
static uint32_t fnv(uint32_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static size_t tok_len(const spm_tok *t, int32_t id) { return t->off[id + 1] - t->off[id]; }
static const char *tok_text(const spm_tok *t, int32_t id) { return t->text + t->off[id]; }

/* The id whose text is a || b (hash h of it), -1 if none. */
static int32_t lookup_h(const spm_tok *t, uint32_t h, const char *a, size_t al, const char *b,
                        size_t bl) {
    for (uint32_t i = h & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        uint32_t v = t->slot[i];
        if (!v) return -1;
        int32_t id = (int32_t)(v - 1);
        if (tok_len(t, id) == al + bl && !memcmp(tok_text(t, id), a, al) &&
            !memcmp(tok_text(t, id) + al, b, bl))
            return id;
    }
}

static int32_t lookup2(const spm_tok *t, const char *a, size_t al, const char *b, size_t bl) {
    return lookup_h(t, fnv(fnv(SPM_FNV0, a, al), b, bl), a, al, b, bl);
}

static bool is_special(const spm_tok *t, int32_t id) {
    return t->attr[id] & (SPM_A_CONTROL | SPM_A_USER | SPM_A_UNKNOWN);
}

/* The longest special token starting at s[0] (n bytes left): its id, *len its bytes; -1. */
static int32_t special_at(const spm_tok *t, const char *s, size_t n, size_t *len) {
    unsigned char c = (unsigned char)s[0];
    size_t max = t->sp_max[c] < n ? t->sp_max[c] : n;
    if (!max) return -1;
    for (size_t l = max; l > SPM_SCAN_MAX; l--) { /* rare: very long specials */
        int32_t id = lookup2(t, s, l, "", 0);
        if (id >= 0 && is_special(t, id)) return *len = l, id;
    }
    uint32_t h[SPM_SCAN_MAX + 1];
    size_t top = max < SPM_SCAN_MAX ? max : SPM_SCAN_MAX;
    h[0] = SPM_FNV0;
    for (size_t l = 1; l <= top; l++) h[l] = (h[l - 1] ^ (unsigned char)s[l - 1]) * 16777619u;
    for (size_t l = top; l > 0; l--) {
        if (l <= 64 && !(t->sp_len[c] >> (l - 1) & 1)) continue;
        int32_t id = lookup_h(t, h[l], s, l, "", 0);
        if (id >= 0 && is_special(t, id)) return *len = l, id;
    }
    return -1;
}

/* ---- encode ----------------------------------------------------------------------------- */

/* A stretch being merged (tokenizer/tok_merge.h): a symbol is a token id, or a character
 * of the stretch that is no token (-1 - its byte offset in s, or SPM_RAW_SPACE for the
 * prefix). */
typedef struct spm_work {
    const spm_tok *t;
    const char *s;           /* the stretch's text (before ' ' -> U+2581) */
} spm_work;

/* The bytes symbol v stands for (U+2581 for a space). */
static const char *sym_text(const spm_work *w, int32_t v, size_t *len) {
    if (v >= 0) return *len = tok_len(w->t, v), tok_text(w->t, v);
    if (v == SPM_RAW_SPACE) return *len = 3, k_ws;
    const char *c = w->s + (-1 - (int64_t)v);
    if (*c == ' ') return *len = 3, k_ws;
    *len = el_utf8_len(c, 4, 0);
    return c;
}

static int32_t pair_fn(const void *ctx, int32_t a, int32_t b) {
    size_t al, bl;
    const char *at = sym_text(ctx, a, &al), *bt = sym_text(ctx, b, &bl);
    return lookup2(((const spm_work *)ctx)->t, at, al, bt, bl);
}

/* Appends id at out[*k] while it fits under lim; counts it either way. */
static void emit(int32_t *out, size_t lim, size_t *k, int32_t id) {
    if (*k < lim) out[*k] = id;
    (*k)++;
}

/* The ids of the symbols left after merge, in order, from out[*k]; no token to spell a
 * byte with -> EL_E_INVALID (at: the stretch's first byte in the text). */
static el_status emit_syms(const spm_work *w, const el_tok_merge *mg, int32_t *out,
                           size_t lim, size_t *k, size_t at) {
    for (int32_t i = 0; i >= 0; i = mg->nx[i]) {
        if (mg->sym[i] >= 0) {
            emit(out, lim, k, mg->sym[i]);
            continue;
        }
        size_t len;
        const char *p = sym_text(w, mg->sym[i], &len);
        for (size_t b = 0; b < len; b++) {
            int32_t id = w->t->byte_tok[(unsigned char)p[b]];
            if (id < 0) id = w->t->base.unk_id;
            if (id < 0)
                return el_errorf(EL_E_INVALID, "text from byte %zu: a character not in the "
                                 "vocabulary, and no <0xXX> byte token or unknown token to "
                                 "spell it with", at);
            emit(out, lim, k, id);
        }
    }
    return EL_OK;
}

/* Characters of s[0..len) plus the prefix. */
static size_t count_syms(const char *s, size_t len, bool prefix) {
    size_t m = prefix;
    for (size_t i = 0; i < len; i += el_utf8_len(s, len, i)) m++;
    return m;
}

/* Encodes the stretch s[0..len) (at byte `at` of the text) after the *k ids before it.
 * *need grows to the room this needs. */
static el_status stretch(const spm_tok *t, const char *s, size_t len, size_t at, bool prefix,
                         int32_t *ids, size_t cap, size_t *k, size_t *need) {
    size_t m = count_syms(s, len, prefix);
    int32_t stack[EL_TOK_MERGE_INTS * SPM_STACK_SYMS];
    int32_t *work = stack;
    spm_tok *mt = (spm_tok *)t; /* the scratch's flag is the one thing encode changes */
    if (m > SPM_STACK_SYMS && m <= SPM_SCRATCH_SYMS &&
        !atomic_exchange_explicit(&mt->busy, true, memory_order_acquire))
        work = mt->scratch;
    if (work == stack && m > SPM_STACK_SYMS) {
        /* the end of the caller's buffer, behind at most 4 ids per character of output */
        size_t room = m <= SIZE_MAX / 10 ? m * 10 : SIZE_MAX;
        if (*need < *k + room) *need = room > SIZE_MAX - *k ? SIZE_MAX : *k + room;
        if (cap < *k || cap - *k < room) {
            *k += 4 * m; /* an upper bound: the count is not known without merging */
            return EL_OK;
        }
        work = ids + cap - 6 * m;
    }
    spm_work w = {.t = t, .s = s};
    el_tok_merge mg;
    el_tok_merge_init(&mg, work, m, pair_fn, &w, t->score);
    size_t i = 0;
    if (prefix) {
        mg.sym[i++] = lookup2(t, k_ws, 3, "", 0);
        if (mg.sym[0] < 0) mg.sym[0] = SPM_RAW_SPACE;
    }
    for (size_t b = 0; b < len; i++) {
        size_t cl = el_utf8_len(s, len, b);
        int32_t id = s[b] == ' ' ? lookup2(t, k_ws, 3, "", 0) : lookup2(t, s + b, cl, "", 0);
        mg.sym[i] = id >= 0 ? id : -1 - (int32_t)b;
        b += cl;
    }
    el_tok_merge_run(&mg, m);
    /* the output goes before the work space when that is in the caller's buffer */
    size_t lim = work == stack || work == t->scratch ? cap : cap - 6 * m;
    el_status st = emit_syms(&w, &mg, ids, lim, k, at);
    if (work == t->scratch) atomic_store_explicit(&mt->busy, false, memory_order_release);
    if (*need < *k) *need = *k;
    return st;
}

/* The stretch s[0..len) cut where no token can span (the last byte of one character,
 * ' ' as U+2581, followed by the first of the next occurs in no token's text: for
 * SentencePiece vocabularies, before a space), each piece merged on its own: the same ids,
 * with work space for the longest piece only. */
static el_status stretches(const spm_tok *t, const char *s, size_t len, size_t at,
                           bool prefix, int32_t *ids, size_t cap, size_t *k, size_t *need) {
    size_t from = 0;
    unsigned last = 0;
    for (size_t b = 0; b < len;) {
        size_t cl = el_utf8_len(s, len, b);
        unsigned first = s[b] == ' ' ? 0xe2u : (unsigned char)s[b];
        if (b > from && !(t->joins[(last << 5) | (first >> 3)] >> (first & 7) & 1)) {
            el_status st = stretch(t, s + from, b - from, at + from, prefix && from == 0, ids,
                                   cap, k, need);
            if (st != EL_OK) return st;
            from = b;
        }
        last = s[b] == ' ' ? 0x81u : (unsigned char)s[b + cl - 1];
        b += cl;
    }
    return stretch(t, s + from, len - from, at + from, prefix && from == 0, ids, cap, k, need);
}

static el_status spm_encode(const el_tokenizer *base, const char *text, size_t len,
                            bool add_bos, int32_t *ids, size_t cap, size_t *n_out) {
    const spm_tok *t = (const spm_tok *)base;
    *n_out = 0;
    if (!text && len) return el_errorf(EL_E_USAGE, "encode: NULL text");
    if (!ids) cap = 0;
    if (len > INT32_MAX)
        return el_errorf(EL_E_INVALID, "text of %zu bytes: at most %d accepted", len,
                         INT32_MAX);
    size_t bad = el_utf8_check(text, len);
    if (bad < len)
        return el_errorf(EL_E_INVALID, "text is not valid UTF-8 at byte %zu (0x%02x)", bad,
                         (unsigned)(unsigned char)text[bad]);
    size_t k = 0, need = 0;
    if (add_bos && t->add_bos) emit(ids, cap, &k, t->base.bos_id);
    bool prev_special = true; /* the first stretch gets the prefix too */
    size_t from = 0;
    el_status s = EL_OK;
    for (size_t p = 0; p <= len && s == EL_OK;) {
        size_t sl = 0;
        int32_t sp = p < len ? special_at(t, text + p, len - p, &sl) : -1;
        if (sp < 0 && p < len) {
            p++;
            continue;
        }
        if (p > from) {
            s = stretches(t, text + from, p - from, from, t->space_prefix && prev_special, ids,
                        cap, &k, &need);
            prev_special = false;
        }
        if (sp < 0) break;
        emit(ids, cap, &k, sp);
        prev_special = true;
        p += sl;
        from = p;
    }
    if (s != EL_OK) return s;
    if (add_bos && t->add_eos) emit(ids, cap, &k, t->base.eos_id);
    if (need < k) need = k;
    if (need > cap) {
        *n_out = need;
        return el_errorf(EL_E_NOFIT, "text of %zu bytes needs room for %zu ids (tokens, and "
                         "work space for a stretch of more than %d characters between special "
                         "tokens); the buffer holds %zu", len, need, SPM_STACK_SYMS, cap);
    }
    *n_out = k;
    return EL_OK;
}

/* ---- decode ----------------------------------------------------------------------------- */

static el_status spm_decode(const el_tokenizer *base, int32_t prev, int32_t id, char *buf,
                            size_t cap, size_t *n) {
    const spm_tok *t = (const spm_tok *)base;
    *n = 0;
    if (id < 0 || (uint32_t)id >= t->n)
        return el_errorf(EL_E_INVALID, "token id %d outside the vocabulary of %u", id, t->n);
    if (!cap) return el_errorf(EL_E_NOFIT, "token %d: no room in a buffer of 0 bytes", id);
    const char *p = tok_text(t, id);
    size_t len = tok_len(t, id), o = 0;
    bool strip = prev < 0 && t->space_prefix;
    uint8_t a = t->attr[id];
    if (a & (SPM_A_CONTROL | SPM_A_UNKNOWN)) {
        len = 0;
    } else if (!(a & (SPM_A_USER | SPM_A_NORMAL)) && (a & SPM_A_BYTE)) {
        char c = (char)el_tokenizer_byte_piece(p, len); /* validated at open */
        if (strip && c == ' ') {
            buf[0] = 0;
            return EL_OK;
        }
        if (cap < 2) return el_errorf(EL_E_NOFIT, "token %d: 1 byte, buffer holds 0", id);
        buf[0] = c;
        buf[1] = 0;
        *n = 1;
        return EL_OK;
    } else if (!(a & (SPM_A_USER | SPM_A_NORMAL))) {
        len = 0; /* unused, undefined */
    }
    bool unescape = !(a & SPM_A_USER);
    for (size_t i = 0; i < len;) {
        bool ws = unescape && len - i >= 3 && !memcmp(p + i, k_ws, 3);
        char c = ws ? ' ' : p[i];
        i += ws ? 3 : 1;
        if (strip && c == ' ' && o == 0) {
            strip = false;
            continue;
        }
        strip = false;
        if (o + 1 >= cap)
            return el_errorf(EL_E_NOFIT, "token %d: piece longer than the %zu bytes the buffer "
                             "holds", id, cap - 1);
        buf[o++] = c;
    }
    buf[o] = 0;
    *n = o;
    return EL_OK;
}

static const el_tokenizer_vtable k_spm_vt = {"gguf-spm", spm_encode, spm_decode, NULL};

/* ---- open ------------------------------------------------------------------------------- */

/* An optional bool key into *v (unchanged if absent); another type -> false. */
static bool meta_bool(const el_gguf *g, const char *key, bool *v) {
    const el_gguf_kv *kv = el_gguf_find(g, key);
    if (!kv) return true;
    if (kv->v.type != EL_GGUF_BOOL) return false;
    *v = kv->v.num.u != 0;
    return true;
}

/* Reads the tokens, scores and types into t (n tokens; scores and types may be NULL). */
#define SPM_NEW(mem, n, type) ((type *)el_tok_alloc_array(mem, n, sizeof(type), alignof(type)))

static el_status read_tables(spm_tok *t, el_tok_mem *mem, const el_gguf *g,
                             const el_gguf_value *tokens, const el_gguf_value *scores,
                             const el_gguf_value *types) {
    const uint32_t n = t->n;
    /* pass 1: the bytes of all texts (llama.cpp renames an empty one "[EMPTY_i]") */
    el_gguf_iter it;
    el_gguf_iter_init(g, tokens, &it);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        el_gguf_value v;
        el_status s = el_gguf_iter_next(&it, &v);
        if (s != EL_OK) return s;
        bytes += v.len ? v.len : 20;
        if (bytes > SPM_TEXT_MAX)
            return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.tokens': more than "
                             "the %u bytes of text accepted", g->src.name, SPM_TEXT_MAX);
    }
    size_t slots = 1;
    while (slots < 2 * (size_t)n) slots *= 2;
    t->slot_mask = (uint32_t)(slots - 1);
    t->text = SPM_NEW(mem, bytes ? (size_t)bytes : 1, char);
    t->off = SPM_NEW(mem, (size_t)n + 1, uint32_t);
    t->score = SPM_NEW(mem, n, float);
    t->attr = SPM_NEW(mem, n, uint8_t);
    t->slot = SPM_NEW(mem, slots, uint32_t);
    t->scratch = el_tok_alloc_array(mem, (size_t)EL_TOK_MERGE_INTS * SPM_SCRATCH_SYMS,
                                    sizeof(int32_t), 64);
    t->joins = SPM_NEW(mem, 65536 / 8, uint8_t);
    if (!t->text || !t->off || !t->score || !t->attr || !t->slot || !t->scratch || !t->joins)
        return el_errorf(EL_E_NOMEM, "%s: out of memory for the tables of %u tokens (%llu "
                         "bytes of text)", g->src.name, n, (unsigned long long)bytes);
    /* pass 2: texts, scores, types */
    el_gguf_iter si, ti;
    el_gguf_iter_init(g, tokens, &it);
    if (scores) el_gguf_iter_init(g, scores, &si);
    if (types) el_gguf_iter_init(g, types, &ti);
    char *buf = NULL;
    size_t bcap = 0, o = 0;
    el_status s = EL_OK;
    for (uint32_t i = 0; i < n && s == EL_OK; i++) {
        if ((s = el_gt_next_str(g, &it, "tokenizer.ggml.tokens", i, &buf, &bcap)) != EL_OK)
            break;
        size_t l = strlen(buf);
        if (bytes - o < (l ? l : 20)) {
            s = el_errorf(EL_E_IO, "%s: metadata 'tokenizer.ggml.tokens' changed while read",
                          g->src.name);
            break;
        }
        t->off[i] = (uint32_t)o;
        if (l)
            memcpy(t->text + o, buf, l);
        else
            l = (size_t)snprintf(t->text + o, 21, "[EMPTY_%u]", i);
        o += l;
        el_gguf_value v;
        t->score[i] = 0.0f;
        if (scores) {
            if ((s = el_gguf_iter_next(&si, &v)) != EL_OK) break;
            t->score[i] = scores->elem_type == EL_GGUF_F32 ? (float)v.num.f : (float)v.num.i;
            if (isnan(t->score[i])) {
                s = el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.scores'[%u]: "
                              "expected a number, got NaN", g->src.name, i);
                break;
            }
        }
        int64_t ty = GT_NORMAL;
        if (types) {
            if ((s = el_gguf_iter_next(&ti, &v)) != EL_OK) break;
            ty = v.num.i;
        }
        t->attr[i] = ty == GT_NORMAL ? SPM_A_NORMAL : ty == GT_UNKNOWN ? SPM_A_UNKNOWN
                   : ty == GT_CONTROL ? SPM_A_CONTROL : ty == GT_USER_DEFINED ? SPM_A_USER
                   : ty == GT_UNUSED ? SPM_A_UNUSED : ty == GT_BYTE ? SPM_A_BYTE : 0;
        if (ty == GT_BYTE && el_tokenizer_byte_piece(t->text + o - l, l) < 0) {
            char shown[64];
            el_json_printable(t->text + o - l, l, shown, sizeof shown);
            s = el_errorf(EL_E_INVALID, "%s: token %u '%s' has the byte type (6): expected "
                          "the text <0xXX>", g->src.name, i, shown);
        }
    }
    free(buf);
    if (s != EL_OK) return s;
    t->off[n] = (uint32_t)o;
    /* the hash of the texts; a text twice is refused (llama.cpp asserts on it) */
    for (uint32_t i = 0; i < n; i++) {
        const char *p = tok_text(t, (int32_t)i);
        size_t l = tok_len(t, (int32_t)i);
        int32_t dup = lookup2(t, p, l, "", 0);
        if (dup >= 0) {
            char shown[64];
            el_json_printable(p, l, shown, sizeof shown);
            return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.tokens': '%s' is "
                             "token %d and token %u: expected each text once", g->src.name,
                             shown, dup, i);
        }
        uint32_t j = fnv(SPM_FNV0, p, l) & t->slot_mask;
        while (t->slot[j]) j = (j + 1) & t->slot_mask;
        t->slot[j] = i + 1;
        for (size_t q = 0; q + 1 < l; q++) {
            unsigned x = (unsigned char)p[q], y = (unsigned char)p[q + 1];
            t->joins[(x << 5) | (y >> 3)] |= (uint8_t)(1u << (y & 7));
        }
    }
    return EL_OK;
}

typedef struct spm_args {
    const el_gguf *g;
    uint32_t vocab_size;
} spm_args;

static el_status spm_build(const void *pa, el_tok_mem *mem, el_tokenizer **out) {
    const el_gguf *g = ((const spm_args *)pa)->g;
    uint32_t vocab_size = ((const spm_args *)pa)->vocab_size;
    *out = NULL;
    size_t used0 = mem->used;
    const el_gguf_value *tokens = NULL;
    el_status s = el_gt_str_array(g, "tokenizer.ggml.tokens", &tokens);
    if (s != EL_OK) return s;
    if (tokens->len == 0 || tokens->len > SPM_TOKENS_MAX)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.tokens': expected 1 to %u "
                         "tokens, got %llu", g->src.name, SPM_TOKENS_MAX,
                         (unsigned long long)tokens->len);
    const uint32_t n = (uint32_t)tokens->len;
    if (vocab_size && n != vocab_size)
        return el_errorf(EL_E_INVALID, "%s: tokenizer.ggml.tokens holds %u tokens, the model's "
                         "vocabulary is %u", g->src.name, n, vocab_size);
    const el_gguf_kv *sk = el_gguf_find(g, "tokenizer.ggml.scores");
    const el_gguf_kv *tk = el_gguf_find(g, "tokenizer.ggml.token_type");
    if (sk && (sk->v.type != EL_GGUF_ARRAY || sk->v.len < n ||
               (sk->v.elem_type != EL_GGUF_F32 && sk->v.elem_type != EL_GGUF_I32)))
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.scores': expected %u f32 "
                         "or i32 values (one per token)", g->src.name, n);
    if (tk && (tk->v.type != EL_GGUF_ARRAY || tk->v.len < n || tk->v.elem_type != EL_GGUF_I32))
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.token_type': expected %u "
                         "i32 values (one per token)", g->src.name, n);
    int64_t bos = 1, eos = 2, unk = 0; /* llama.cpp's defaults for a "llama" vocabulary */
    const char *idk[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                         "tokenizer.ggml.unknown_token_id"};
    int64_t *idv[] = {&bos, &eos, &unk};
    for (int i = 0; i < 3; i++) {
        int64_t v = el_gt_meta_id(g, idk[i]);
        if (v < -1 || v >= (int64_t)n)
            return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected an id below the %u "
                             "tokens", g->src.name, idk[i], n);
        if (v >= 0) *idv[i] = v;
        if (*idv[i] >= (int64_t)n) *idv[i] = -1;
    }
    bool add_bos = true, add_eos = false, space_prefix = true;
    if (!meta_bool(g, "tokenizer.ggml.add_bos_token", &add_bos) ||
        !meta_bool(g, "tokenizer.ggml.add_eos_token", &add_eos) ||
        !meta_bool(g, "tokenizer.ggml.add_space_prefix", &space_prefix))
        return el_errorf(EL_E_INVALID, "%s: metadata tokenizer.ggml.add_bos_token, "
                         "add_eos_token and add_space_prefix: expected bools", g->src.name);
    if ((add_bos && bos < 0) || (add_eos && eos < 0))
        return el_errorf(EL_E_INVALID, "%s: tokenizer.ggml.add_%s_token is true but the "
                         "vocabulary of %u has no such token", g->src.name,
                         add_bos && bos < 0 ? "bos" : "eos", n);

    spm_tok *t = SPM_NEW(mem, 1, spm_tok);
    if (!t) return el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
    t->n = n;
    atomic_init(&t->busy, false);
    s = read_tables(t, mem, g, tokens, sk ? &sk->v : NULL, tk ? &tk->v : NULL);
    if (s != EL_OK) return s;
    t->block_bytes = mem->used - used0;
    /* llama.cpp's overrides by text: control-looking tokens become control; gpt-oss's
     * (and gemma 4's "</s>" beside "<|tool_response>") lose it */
    for (size_t i = 0; i < sizeof k_ctl_texts / sizeof *k_ctl_texts; i++) {
        int32_t id = lookup2(t, k_ctl_texts[i], strlen(k_ctl_texts[i]), "", 0);
        if (id >= 0) t->attr[id] |= SPM_A_CONTROL;
    }
    for (size_t k = 0; k < sizeof k_fim / sizeof *k_fim; k++) {
        if (el_gguf_find(g, k_fim[k].key)) continue;
        for (size_t i = 0; i < 9 && k_fim[k].texts[i]; i++) {
            int32_t id = lookup2(t, k_fim[k].texts[i], strlen(k_fim[k].texts[i]), "", 0);
            if (id < 0) continue;
            t->attr[id] |= SPM_A_CONTROL;
            break;
        }
    }
    if (lookup2(t, "<|tool_response>", 16, "", 0) >= 0 ||
        lookup2(t, "<|plamo:eos|>", 13, "", 0) >= 0) {
        int32_t id = lookup2(t, "</s>", 4, "", 0);
        if (id >= 0) t->attr[id] = SPM_A_NORMAL;
    }
    static const char *const k_user[] = {"<|channel|>", "<|message|>", "<|start|>",
                                         "<|constrain|>"};
    for (size_t i = 0; i < 4; i++) {
        int32_t id = lookup2(t, k_user[i], strlen(k_user[i]), "", 0);
        if (id >= 0) t->attr[id] = SPM_A_USER;
    }
    /* llama.cpp's byte_to_token: "<0xXX>" by text, else the one-byte token */
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        char one = (char)b;
        t->byte_tok[b] = lookup2(t, hex, 6, "", 0);
        if (t->byte_tok[b] < 0) t->byte_tok[b] = lookup2(t, &one, 1, "", 0);
    }
    for (uint32_t i = 0; i < n; i++) {
        size_t l = tok_len(t, (int32_t)i);
        if (!is_special(t, (int32_t)i) || !l) continue;
        unsigned char c = (unsigned char)tok_text(t, (int32_t)i)[0];
        if (l <= 64) t->sp_len[c] |= 1ull << (l - 1);
        if (l > t->sp_max[c]) t->sp_max[c] = (uint32_t)l;
    }
    t->add_bos = add_bos;
    t->add_eos = add_eos;
    t->space_prefix = space_prefix;
    snprintf(t->name, sizeof t->name, "%s (tokenizer.ggml metadata)", g->src.name);
    t->base.vt = &k_spm_vt;
    el_tokenizer_base_init(&t->base);
    t->base.vocab_size = n;
    t->base.bos_id = add_bos ? (int32_t)bos : -1;
    t->base.eos_id = (int32_t)eos;
    t->base.unk_id = (int32_t)unk;
    *out = &t->base;
    return EL_OK;
}

el_status el_tokenizer_gguf_spm_open_mem(const el_gguf *g, uint32_t vocab_size,
                                         el_tok_mem *mem, el_tokenizer **out) {
    spm_args a = {g, vocab_size};
    return spm_build(&a, mem, out);
}

el_status el_tokenizer_gguf_spm_open(const el_gguf *g, uint32_t vocab_size,
                                     el_tokenizer **out) {
    spm_args a = {g, vocab_size};
    return el_tok_build_heap(spm_build, &a, out);
}

size_t el_tokenizer_gguf_spm_heap_bytes(const el_tokenizer *t) {
    return t && t->vt == &k_spm_vt ? ((const spm_tok *)t)->block_bytes : 0;
}
