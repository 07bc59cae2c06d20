/* gguf_wpm.c - tokenizer.ggml.model "bert" (WordPiece) from GGUF metadata: llama.cpp's
 * converter writes the BERT vocabulary in "phantom space" form (a word-initial piece gets a
 * leading U+2581, a "##" continuation loses its "##", control tokens stay as they are);
 * this turns it back into vocab.txt lines and builds the wordpiece backend from them.
 * Lowercasing (and accent stripping, which follows it) from tokenizer.ggml.normalizer.*,
 * true by default as llama.cpp has it. The vocab.txt text is the build's transient: at most
 * EL_TOK_TRANSIENT_MAX bytes (a 30k BERT vocabulary is ~0.25 MB), else refused by name. */
#include "loader/formats/gguf.h"
#include "platform/platform.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

typedef struct wpm_args {
    const el_gguf *g;
    uint32_t vocab_size;
} wpm_args;

static const char k_phantom[] = "\xe2\x96\x81"; /* U+2581 */

/* A boolean key, def when absent; EL_E_INVALID when not a bool. */
static el_status meta_bool(const el_gguf *g, const char *key, bool def, bool *out) {
    const el_gguf_kv *kv = el_gguf_find(g, key);
    *out = def;
    if (!kv) return EL_OK;
    if (kv->v.type != EL_GGUF_BOOL)
        return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected a bool, got a %s",
                         g->src.name, key, el_gguf_value_type_name(kv->v.type));
    *out = kv->v.num.u != 0;
    return EL_OK;
}

static el_status wpm_build(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const wpm_args *a = args;
    const el_gguf *g = a->g;
    bool lower, strip;
    el_status s = meta_bool(g, "tokenizer.ggml.normalizer.lowercase", true, &lower);
    if (s == EL_OK) s = meta_bool(g, "tokenizer.ggml.normalizer.strip_accents", lower, &strip);
    if (s != EL_OK) return s;
    if (strip != lower)
        return el_errorf(EL_E_UNSUPPORTED, "%s: tokenizer.ggml.normalizer.strip_accents %s with "
                         "lowercase %s: the wordpiece backend strips accents exactly when it "
                         "lowercases", g->src.name, strip ? "true" : "false",
                         lower ? "true" : "false");
    const el_gguf_kv *tk = el_gguf_find(g, "tokenizer.ggml.tokens");
    const el_gguf_kv *ty = el_gguf_find(g, "tokenizer.ggml.token_type");
    if (!tk || tk->v.type != EL_GGUF_ARRAY || tk->v.elem_type != EL_GGUF_STRING)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.tokens': expected an array "
                         "of strings", g->src.name);
    if (ty && (ty->v.type != EL_GGUF_ARRAY || ty->v.elem_type != EL_GGUF_I32 ||
               ty->v.len != tk->v.len))
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.token_type': expected %llu "
                         "i32 values", g->src.name, (unsigned long long)tk->v.len);
    /* vocab.txt bytes: each token's own bytes plus "##" and a newline at most */
    uint64_t need = 0;
    if (tk->v.size > EL_TOK_TRANSIENT_MAX || tk->v.len > EL_TOK_TRANSIENT_MAX / 3 ||
        (need = tk->v.size + 3 * tk->v.len) > EL_TOK_TRANSIENT_MAX)
        return el_errorf(EL_E_UNSUPPORTED, "%s: a BERT vocabulary of %llu tokens (%llu bytes) "
                         "is past the %u-byte parse budget of GGUF WordPiece tokenizers",
                         g->src.name, (unsigned long long)tk->v.len,
                         (unsigned long long)tk->v.size, EL_TOK_TRANSIENT_MAX);
    char *text = malloc((size_t)need + 1);
    if (!text) return el_errorf(EL_E_NOMEM, "%s: out of memory for the vocabulary", g->src.name);
    el_gguf_iter ti, yi;
    el_gguf_iter_init(g, &tk->v, &ti);
    if (ty) el_gguf_iter_init(g, &ty->v, &yi);
    size_t len = 0;
    char piece[1024];
    for (uint64_t i = 0; i < tk->v.len && s == EL_OK; i++) {
        el_gguf_value v, t = {0};
        size_t n = 0;
        if ((s = el_gguf_iter_next(&ti, &v)) != EL_OK) break;
        if (ty && (s = el_gguf_iter_next(&yi, &t)) != EL_OK) break;
        if (v.len >= sizeof piece) {
            s = el_errorf(EL_E_UNSUPPORTED, "%s: token %llu is %llu bytes (at most %zu)",
                          g->src.name, (unsigned long long)i, (unsigned long long)v.len,
                          sizeof piece - 1);
            break;
        }
        if ((s = el_gguf_iter_read_string(&ti, &v, piece, sizeof piece, &n)) != EL_OK) break;
        if (memchr(piece, '\n', n) || memchr(piece, '\r', n) || memchr(piece, 0, n)) {
            s = el_errorf(EL_E_INVALID, "%s: token %llu holds a line break or NUL, which a "
                          "WordPiece vocabulary cannot", g->src.name, (unsigned long long)i);
            break;
        }
        const bool control = ty && t.num.i == 3;
        if (!control && n >= 3 && !memcmp(piece, k_phantom, 3)) { /* word start */
            memcpy(text + len, piece + 3, n - 3);
            len += n - 3;
        } else if (!control) { /* a continuation */
            memcpy(text + len, "##", 2);
            memcpy(text + len + 2, piece, n);
            len += n + 2;
        } else {
            memcpy(text + len, piece, n);
            len += n;
        }
        text[len++] = '\n';
    }
    if (s == EL_OK)
        s = el_tokenizer_wordpiece_parse_mem(text, len, g->src.name, lower, a->vocab_size, mem,
                                             out);
    free(text);
    return s;
}

el_status el_tokenizer_gguf_wpm_open_mem(const el_gguf *g, uint32_t vocab_size,
                                         el_tok_mem *mem, el_tokenizer **out) {
    wpm_args a = {g, vocab_size};
    return wpm_build(&a, mem, out);
}

el_status el_tokenizer_gguf_wpm_open(const el_gguf *g, uint32_t vocab_size, el_tokenizer **out) {
    wpm_args a = {g, vocab_size};
    return el_tok_build_heap(wpm_build, &a, out);
}
