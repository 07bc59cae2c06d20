/* family_tok.c - see family_tok.h. */
#include "models/family_tok.h"
#include "loader/formats/gguf.h"
#include "platform/platform.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct family_tok {
    el_tokenizer *tok; /* NULL if none could be opened */
    el_status status;  /* why not */
    char error[512];
} family_tok;

el_status el_family_tok_open(el_model *m, const char *const *names, size_t n,
                             const char *what) {
    family_tok *ft = calloc(1, sizeof *ft);
    if (!ft) return el_errorf(EL_E_NOMEM, "out of memory");
    m->family_data = ft;
    uint32_t vocab = m->config.vocab_size;
    if (m->tokenizer_path[0]) {
        el_status s = el_tokenizer_open(m->tokenizer_path, vocab, &ft->tok);
        if (s != EL_OK) {
            char why[600];
            snprintf(why, sizeof why, "%s", el_last_error());
            return el_errorf(s, "--tokenizer: %s", why);
        }
        return EL_OK;
    }
    /* A GGUF file carries its own tokenizer; its failure is kept as the reason. */
    if (m->gguf && el_gguf_find(m->gguf, "tokenizer.ggml.model")) {
        el_status s = el_tokenizer_gguf_open(m->gguf, vocab, &ft->tok);
        if (s != EL_OK) {
            ft->status = s;
            snprintf(ft->error, sizeof ft->error, "%s", el_last_error());
        }
        return EL_OK;
    }
    ft->status = EL_E_INVALID;
    snprintf(ft->error, sizeof ft->error, "%.300s: no tokenizer found next to the model "
             "(%s): pass --tokenizer FILE", m->path, what);
    bool first_failure = true;
    char path[sizeof m->tokenizer_path];
    for (size_t i = 0; i < n; i++) {
        el_status s;
        const char *plus = strchr(names[i], '+');
        if (plus) { /* "vocab+merges": a GPT-2 pair, both found with the model */
            char first[64], merges[sizeof m->tokenizer_path];
            snprintf(first, sizeof first, "%.*s", (int)(plus - names[i]), names[i]);
            if (!el_model_side_file(m, first, path, sizeof path)) continue;
            if (!el_model_side_file(m, plus + 1, merges, sizeof merges))
                s = el_errorf(EL_E_INVALID, "%.400s is next to the model but %s is missing",
                              path, plus + 1);
            else
                s = el_tokenizer_gpt2_open(path, merges, vocab, &ft->tok);
        } else {
            if (!el_model_side_file(m, names[i], path, sizeof path)) continue;
            s = el_tokenizer_open(path, vocab, &ft->tok);
        }
        if (s == EL_OK) {
            memcpy(m->tokenizer_path, path, sizeof path);
            return EL_OK;
        }
        if (first_failure) {
            ft->status = s;
            /* Inside an image the path is a descriptor's: name the stored file. */
            const char *base = plus ? "vocab.json" : names[i];
            if (strstr(el_last_error(), base))
                snprintf(ft->error, sizeof ft->error, "%s", el_last_error());
            else
                snprintf(ft->error, sizeof ft->error, "%s (stored in %.200s): %s", base, m->path,
                         el_last_error());
            first_failure = false;
        }
        /* A corrupt file is an error, never a reason to try the next one: falling back
         * (tokenizer.json -> vocab.txt) would hide it. A format we cannot read
         * (EL_E_UNSUPPORTED, e.g. a Unigram tokenizer.json) lets the next one try. */
        if (s != EL_E_UNSUPPORTED) break;
    }
    return EL_OK;
}

void el_family_tok_close(el_model *m) {
    family_tok *ft = m->family_data;
    if (!ft) return;
    el_tokenizer_close(ft->tok);
    free(ft);
    m->family_data = NULL;
}

el_status el_family_tok_get(const el_model *m, const el_tokenizer **out) {
    const family_tok *ft = m->family_data;
    if (ft && ft->tok) {
        *out = ft->tok;
        return EL_OK;
    }
    if (!ft) return el_errorf(EL_E_INVALID, "%s: no tokenizer", m->path);
    return el_error_set(ft->status, ft->error);
}
