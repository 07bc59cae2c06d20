/* gpt2_files.c - GPT-2's original tokenizer files (vocab.json = encoder.json, merges.txt =
 * vocab.bpe) read into the byte-level BPE of tokenizer/hf_bpe.c as the tokenizer.json
 * GPT2TokenizerFast would build from them (ByteLevel pre-tokenizer and decoder,
 * <|endoftext|> as a special added token): one build, one validation, one merge engine.
 * Nothing is held whole: vocab.json is streamed entry by entry (tokenizer/json_stream.h),
 * merges.txt read by lines through a fixed buffer, straight into the tables. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/hf_src.h"
#include "tokenizer/json_stream.h"

#include "loader/safetensors.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPT2_LINE_MAX (64u * 1024u) /* bytes of one merges line (the read buffer) */

/* What GPT2TokenizerFast makes of the two files, but the tables (given by the callbacks). */
static const char k_gpt2_rest[] =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"added_tokens\":[],"
    "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"}}";

typedef struct gpt2_src {
    const char *name;
    /* vocab.json: a tree (el_tokenizer_gpt2_from_json) or a stream */
    const cJSON *vocab;
    el_jstream *js;
    /* merges: text in memory, or a file read by lines */
    const char *mtext;
    size_t mlen;
    el_file *mfile;
    int64_t eot;            /* id of <|endoftext|>, -1 if absent (first pass sets it) */
    el_hf_vocab_fn fn;      /* the build's callback, wrapped by gpt2_entry */
    void *u;
} gpt2_src;

/* Every id an integer (vocab.json's own message), <|endoftext|> noted, then the build's. */
static el_status gpt2_entry(void *ctx, const char *s, size_t n, const cJSON *id) {
    gpt2_src *g = ctx;
    uint64_t v;
    if (!el_json_get_u64(id, INT32_MAX, &v)) {
        char d[64], p[64];
        return el_errorf(EL_E_INVALID,
                         "%s: vocab.json['%s'] is %s: vocab.json must map every token to an "
                         "integer id",
                         g->name, el_json_printable(s, n, p, sizeof p),
                         el_json_describe(id, d, sizeof d));
    }
    if (g->eot < 0 && n == 13 && !memcmp(s, "<|endoftext|>", 13)) g->eot = (int64_t)v;
    return g->fn(g->u, s, n, id);
}

static el_status gpt2_vocab(void *ctx, el_hf_vocab_fn fn, void *u) {
    gpt2_src *g = ctx;
    g->fn = fn;
    g->u = u;
    g->eot = -1;
    if (g->js) { /* the object, then nothing but whitespace after it */
        el_status st = el_hf_stream_vocab(g->js, 0, gpt2_entry, g);
        return st == EL_OK ? el_js_finish(g->js) : st;
    }
    for (const cJSON *it = g->vocab->child; it; it = it->next) {
        el_status st = gpt2_entry(g, it->string, strlen(it->string), it);
        if (st != EL_OK) return st;
    }
    return EL_OK;
}

/* <|endoftext|>: a special token matched in the text, as GPT2TokenizerFast adds it. */
static el_status gpt2_added(void *ctx, el_hf_added_fn fn, void *u) {
    gpt2_src *g = ctx;
    if (g->eot < 0) return EL_OK;
    cJSON *a = cJSON_CreateObject();
    el_status st;
    if (a && cJSON_AddNumberToObject(a, "id", (double)g->eot) &&
        cJSON_AddStringToObject(a, "content", "<|endoftext|>") &&
        cJSON_AddTrueToObject(a, "special"))
        st = fn(u, 0, a);
    else
        st = el_errorf(EL_E_NOMEM, "%s: out of memory", g->name);
    cJSON_Delete(a);
    return st;
}

/* One merges line s[0..n) (line number line; k counts merges). An optional "#version"
 * first line, then "a b" each. */
static el_status gpt2_line(gpt2_src *g, const char *s, size_t n, size_t line, uint32_t *k,
                           el_hf_merge_fn fn, void *u) {
    if (n > 0 && s[n - 1] == '\r') n--;
    if (line == 1 && n >= 8 && !memcmp(s, "#version", 8)) return EL_OK;
    const char *sp = memchr(s, ' ', n);
    if (n == 0 || !sp || sp == s || sp == s + n - 1 ||
        memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)) || memchr(s, 0, n)) {
        char p[64];
        return el_errorf(EL_E_INVALID,
                         "%s: merges line %zu is '%s': expected two tokens separated by one "
                         "space",
                         g->name, line, el_json_printable(s, n, p, sizeof p));
    }
    if (!el_utf8_valid(s, n))
        return el_errorf(EL_E_INVALID, "%s: merges line %zu is not valid UTF-8", g->name, line);
    size_t a = (size_t)(sp - s);
    return fn(u, (*k)++, s, a, sp + 1, n - a - 1);
}

static el_status gpt2_merges(void *ctx, el_hf_merge_fn fn, void *u) {
    gpt2_src *g = ctx;
    size_t line = 0;
    uint32_t k = 0;
    el_status st = EL_OK;
    if (!g->mfile) {
        for (size_t i = 0; i < g->mlen && st == EL_OK;) {
            const char *nl = memchr(g->mtext + i, '\n', g->mlen - i);
            size_t end = nl ? (size_t)(nl - g->mtext) : g->mlen;
            st = gpt2_line(g, g->mtext + i, end - i, ++line, &k, fn, u);
            i = nl ? end + 1 : g->mlen;
        }
        return st;
    }
    /* A file: lines through one buffer; the part of a line a read cut is moved to the
     * front before the next read. */
    char *buf = malloc(GPT2_LINE_MAX); /* transient */
    if (!buf) return el_errorf(EL_E_NOMEM, "%s: out of memory", g->name);
    uint64_t off = 0, size = g->mfile->size;
    size_t have = 0;
    while (st == EL_OK && (off < size || have > 0)) {
        size_t want = GPT2_LINE_MAX - have;
        if (want > size - off) want = (size_t)(size - off);
        if (want && (st = el_file_read_at(g->mfile, buf + have, want, off)) != EL_OK) break;
        off += want;
        have += want;
        size_t i = 0;
        for (;;) {
            const char *nl = memchr(buf + i, '\n', have - i);
            if (!nl) break;
            size_t end = (size_t)(nl - buf);
            if ((st = gpt2_line(g, buf + i, end - i, ++line, &k, fn, u)) != EL_OK) break;
            i = end + 1;
        }
        if (st != EL_OK) break;
        if (off >= size) { /* the last line, without its newline */
            if (i < have) st = gpt2_line(g, buf + i, have - i, ++line, &k, fn, u);
            break;
        }
        if (i == 0 && have == GPT2_LINE_MAX) {
            st = el_errorf(EL_E_INVALID, "%s: merges line %zu is longer than %u bytes",
                           g->name, line + 1, GPT2_LINE_MAX);
            break;
        }
        memmove(buf, buf + i, have - i);
        have -= i;
    }
    free(buf);
    return st;
}

/* GPT-2's files have every byte's token; one missing means a damaged vocab.json
 * (tokenizer.json files may lack some: SmolLM2's, see hf_bpe.c). */
static el_status gpt2_check_bytes(void *ctx, const el_tokenizer *t) {
    const gpt2_src *g = ctx;
    for (unsigned b = 0; b < 256; b++) {
        char c[5] = {0};
        size_t cl = el_tokenizer_byte_char(b, c);
        if (el_hf_bpe_find(t, c, cl) < 0) {
            uint32_t cp = cl == 1 ? (unsigned char)c[0]
                                  : ((uint32_t)(c[0] & 0x1f) << 6) | (c[1] & 0x3f);
            return el_errorf(EL_E_INVALID,
                             "%s: byte-level BPE: vocab.json has no token for byte 0x%02x "
                             "(character U+%04X); every byte needs one",
                             g->name, b, (unsigned)cp);
        }
    }
    return EL_OK;
}

static el_status gpt2_build(gpt2_src *g, uint32_t vocab_size, el_tok_mem *mem,
                            el_tokenizer **out) {
    cJSON *rest = cJSON_Parse(k_gpt2_rest);
    if (!rest) return el_errorf(EL_E_NOMEM, "%s: out of memory", g->name);
    el_hf_src src = {.root = rest, .name = g->name, .ctx = g, .vocab = gpt2_vocab,
                     .added = gpt2_added, .merges = gpt2_merges, .n_merges = UINT64_MAX,
                     .vocab_done = gpt2_check_bytes};
    g->eot = -1;
    el_status st = el_hf_bpe_build(&src, g->name, vocab_size, mem, out);
    cJSON_Delete(rest);
    return st;
}

/* ---- from a tree and text in memory --------------------------------------------------- */

typedef struct gpt2_mem_args {
    const cJSON *vocab;
    const char *merges;
    size_t mlen;
    const char *name;
    uint32_t vocab_size;
} gpt2_mem_args;

static el_status gpt2_build_mem(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const gpt2_mem_args *a = args;
    gpt2_src g = {.name = a->name, .vocab = a->vocab, .mtext = a->merges, .mlen = a->mlen};
    return gpt2_build(&g, a->vocab_size, mem, out);
}

el_status el_tokenizer_gpt2_from_json(const cJSON *vocab, const char *merges, size_t mlen,
                                      const char *name, uint32_t vocab_size,
                                      el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "gpt2 tokenizer: out is NULL");
    *out = NULL;
    if (!cJSON_IsObject(vocab)) {
        char d[64];
        return el_errorf(EL_E_INVALID,
                         "%s: vocab.json must be an object of token -> integer id, got %s",
                         name, el_json_describe(vocab, d, sizeof d));
    }
    gpt2_mem_args a = {vocab, merges ? merges : "", merges ? mlen : 0, name, vocab_size};
    return el_tok_build_heap(gpt2_build_mem, &a, out);
}

/* ---- from the two files ------------------------------------------------------------------ */

typedef struct gpt2_file_args {
    const char *vocab_json;
    const char *merges_txt;
    uint32_t vocab_size;
} gpt2_file_args;

static el_status gpt2_build_files(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const gpt2_file_args *a = args;
    el_file f;
    el_status st = el_file_open(&f, a->merges_txt, 0);
    if (st != EL_OK)
        return el_errorf(st, "%s: cannot open the GPT-2 merges file (merges.txt / vocab.bpe) "
                             "that goes with %s",
                         a->merges_txt, a->vocab_json);
    if (f.size > EL_TOKENIZER_JSON_MAX) {
        el_file_close(&f);
        return el_errorf(EL_E_INVALID, "%s: %llu bytes: too large for a merges file",
                         a->merges_txt, (unsigned long long)f.size);
    }
    el_jstream js;
    st = el_js_open_file(&js, a->vocab_json);
    if (st != EL_OK) {
        el_file_close(&f);
        return st;
    }
    char name[1100];
    snprintf(name, sizeof name, "%s + %s", a->vocab_json, a->merges_txt);
    int c = -1;
    st = el_js_peek(&js, &c);
    if (st == EL_OK && c != '{') {
        cJSON *v = NULL;
        st = el_js_capture(&js, EL_HF_PART_MAX, "vocab.json", &v);
        if (st == EL_OK) {
            char d[64];
            st = el_errorf(EL_E_INVALID,
                           "%s: vocab.json must be an object of token -> integer id, got %s",
                           name, el_json_describe(v, d, sizeof d));
        }
        cJSON_Delete(v);
    }
    if (st == EL_OK) {
        gpt2_src g = {.name = name, .js = &js, .mfile = &f};
        st = gpt2_build(&g, a->vocab_size, mem, out);
    }
    el_js_close(&js);
    el_file_close(&f);
    return st;
}

el_status el_tokenizer_gpt2_open_mem(const char *vocab_json, const char *merges_txt,
                                     uint32_t vocab_size, el_tok_mem *mem, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "gpt2 tokenizer: out is NULL");
    *out = NULL;
    if (!vocab_json || !merges_txt || !mem)
        return el_errorf(EL_E_USAGE, "gpt2 tokenizer: vocab.json and merges.txt paths are "
                                     "both needed");
    gpt2_file_args a = {vocab_json, merges_txt, vocab_size};
    return gpt2_build_files(&a, mem, out);
}

el_status el_tokenizer_gpt2_open(const char *vocab_json, const char *merges_txt,
                                 uint32_t vocab_size, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "gpt2 tokenizer: out is NULL");
    *out = NULL;
    if (!vocab_json || !merges_txt)
        return el_errorf(EL_E_USAGE, "gpt2 tokenizer: vocab.json and merges.txt paths are "
                                     "both needed");
    gpt2_file_args a = {vocab_json, merges_txt, vocab_size};
    return el_tok_build_heap(gpt2_build_files, &a, out);
}
