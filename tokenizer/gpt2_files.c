/* gpt2_files.c - GPT-2's original tokenizer files (vocab.json = encoder.json, merges.txt =
 * vocab.bpe) read into the byte-level BPE of tokenizer/hf_bpe.c: the two files are turned
 * into the tokenizer.json tree GPT2TokenizerFast would build from them (ByteLevel
 * pre-tokenizer and decoder, <|endoftext|> as a special added token), so both ways in share
 * one parser, one validation and one merge engine. */
#include "tokenizer/tokenizer.h"

#include "loader/safetensors.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPT2_MERGES_MAX (1u << 22) /* merge lines accepted */

/* merges.txt -> a JSON array of "a b" strings. Lines: an optional "#version" first line,
 * then "a b" each; CRLF accepted; a final newline optional. */
static el_status gpt2_merges(const char *txt, size_t len, const char *name, cJSON *arr) {
    size_t line = 0, count = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(txt + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - txt) : len;
        size_t e = end;
        if (e > i && txt[e - 1] == '\r') e--;
        line++;
        const char *s = txt + i;
        size_t n = e - i;
        i = nl ? end + 1 : len;
        if (line == 1 && n >= 8 && !memcmp(s, "#version", 8)) continue;
        const char *sp = memchr(s, ' ', n);
        if (n == 0 || !sp || sp == s || sp == s + n - 1 || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)) ||
            memchr(s, 0, n)) {
            char p[64];
            return el_errorf(EL_E_INVALID,
                             "%s: merges line %zu is '%s': expected two tokens separated by "
                             "one space",
                             name, line, el_json_printable(s, n, p, sizeof p));
        }
        if (!el_utf8_valid(s, n))
            return el_errorf(EL_E_INVALID, "%s: merges line %zu is not valid UTF-8", name, line);
        if (++count > GPT2_MERGES_MAX)
            return el_errorf(EL_E_UNSUPPORTED, "%s: more than %u merges", name, GPT2_MERGES_MAX);
        char buf[512];
        char *heap = NULL;
        char *m = buf;
        if (n + 1 > sizeof buf) m = heap = malloc(n + 1);
        if (!m) return el_errorf(EL_E_NOMEM, "%s: out of memory", name);
        memcpy(m, s, n);
        m[n] = 0;
        cJSON *it = cJSON_CreateString(m);
        free(heap);
        if (!it || !cJSON_AddItemToArray(arr, it)) {
            cJSON_Delete(it);
            return el_errorf(EL_E_NOMEM, "%s: out of memory for the merges", name);
        }
    }
    return EL_OK;
}

/* Adds item to parent (an object when key, else an array); NULL (item freed) on failure. */
static cJSON *gpt2_attach(cJSON *parent, const char *key, cJSON *item) {
    if (!item) return NULL;
    bool ok = parent && (key ? cJSON_AddItemToObject(parent, key, item)
                             : cJSON_AddItemToArray(parent, item));
    if (!ok) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

/* GPT-2's files have every byte's token; one missing means a damaged vocab.json
 * (tokenizer.json files may lack some: SmolLM2's, see hf_bpe.c). */
static el_status gpt2_check_bytes(const cJSON *vocab, const char *name) {
    for (unsigned b = 0; b < 256; b++) {
        char c[5] = {0};
        size_t cl = el_tokenizer_byte_char(b, c);
        if (!cJSON_GetObjectItemCaseSensitive(vocab, c)) {
            uint32_t cp = cl == 1 ? (unsigned char)c[0]
                                  : ((uint32_t)(c[0] & 0x1f) << 6) | (c[1] & 0x3f);
            return el_errorf(EL_E_INVALID,
                             "%s: byte-level BPE: vocab.json has no token for byte 0x%02x "
                             "(character U+%04X); every byte needs one",
                             name, b, (unsigned)cp);
        }
    }
    return EL_OK;
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
    for (const cJSON *it = vocab->child; it; it = it->next) {
        uint64_t v;
        if (!el_json_get_u64(it, INT32_MAX, &v)) {
            char d[64], p[64];
            return el_errorf(EL_E_INVALID,
                             "%s: vocab.json['%s'] is %s: vocab.json must map every token to "
                             "an integer id",
                             name, el_json_printable(it->string, strlen(it->string), p, sizeof p),
                             el_json_describe(it, d, sizeof d));
        }
    }
    el_status st = EL_OK;
    cJSON *root = cJSON_CreateObject();
    cJSON *model = gpt2_attach(root, "model", cJSON_CreateObject());
    cJSON *arr = gpt2_attach(model, "merges", cJSON_CreateArray());
    cJSON *pre = gpt2_attach(root, "pre_tokenizer", cJSON_CreateObject());
    cJSON *dec = gpt2_attach(root, "decoder", cJSON_CreateObject());
    cJSON *added = gpt2_attach(root, "added_tokens", cJSON_CreateArray());
    bool ok = root && model && arr && pre && dec && added &&
              cJSON_AddStringToObject(model, "type", "BPE") &&
              cJSON_AddItemReferenceToObject(model, "vocab", (cJSON *)vocab) &&
              cJSON_AddStringToObject(pre, "type", "ByteLevel") &&
              cJSON_AddStringToObject(dec, "type", "ByteLevel");
    /* <|endoftext|>: a special token matched in the text, as GPT2TokenizerFast adds it. */
    const cJSON *eot = cJSON_GetObjectItemCaseSensitive(vocab, "<|endoftext|>");
    if (ok && eot) {
        cJSON *a = gpt2_attach(added, NULL, cJSON_CreateObject());
        ok = a && cJSON_AddNumberToObject(a, "id", eot->valuedouble) &&
             cJSON_AddStringToObject(a, "content", "<|endoftext|>") &&
             cJSON_AddTrueToObject(a, "special");
    }
    if (!ok) st = el_errorf(EL_E_NOMEM, "%s: out of memory", name);
    if (st == EL_OK) st = gpt2_merges(merges, mlen, name, arr);
    if (st == EL_OK) st = el_tokenizer_hf_bpe_from_json(root, name, vocab_size, out);
    cJSON_Delete(root); /* the vocab is only referenced: the caller's */
    if (st == EL_OK) st = gpt2_check_bytes(vocab, name);
    if (st != EL_OK) {
        el_tokenizer_close(*out);
        *out = NULL;
    }
    return st;
}

el_status el_tokenizer_gpt2_open(const char *vocab_json, const char *merges_txt,
                                 uint32_t vocab_size, el_tokenizer **out) {
    if (!out) return el_errorf(EL_E_USAGE, "gpt2 tokenizer: out is NULL");
    *out = NULL;
    if (!vocab_json || !merges_txt)
        return el_errorf(EL_E_USAGE, "gpt2 tokenizer: vocab.json and merges.txt paths are "
                                     "both needed");
    el_file f;
    el_status st = el_file_open(&f, merges_txt, 0);
    if (st != EL_OK)
        return el_errorf(st, "%s: cannot open the GPT-2 merges file (merges.txt / vocab.bpe) "
                             "that goes with %s",
                         merges_txt, vocab_json);
    if (f.size > EL_TOKENIZER_JSON_MAX) {
        el_file_close(&f);
        return el_errorf(EL_E_INVALID, "%s: %llu bytes: too large for a merges file",
                         merges_txt, (unsigned long long)f.size);
    }
    char *m = malloc((size_t)f.size + 1);
    if (!m) {
        el_file_close(&f);
        return el_errorf(EL_E_NOMEM, "%s: out of memory", merges_txt);
    }
    size_t mlen = (size_t)f.size;
    st = mlen ? el_file_read_at(&f, m, mlen, 0) : EL_OK;
    el_file_close(&f);
    cJSON *vocab = NULL;
    if (st == EL_OK) st = el_tokenizer_read_json(vocab_json, &vocab);
    if (st == EL_OK) {
        char name[600];
        snprintf(name, sizeof name, "%s + %s", vocab_json, merges_txt);
        st = el_tokenizer_gpt2_from_json(vocab, m, mlen, name, vocab_size, out);
    }
    cJSON_Delete(vocab);
    free(m);
    return st;
}
