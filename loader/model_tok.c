/* model_tok.c - see model_tok.h. */
#include "loader/model_tok.h"
#include "loader/formats/gguf.h"
#include "platform/platform.h"
#include "tokenizer/tok_mem.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How the tokenizer is built (again): what the open found. */
enum { FT_NONE, FT_PATH, FT_GPT2, FT_GGUF };

typedef struct family_tok {
    el_tokenizer *tok; /* NULL until built (el_family_tok_load, or the first use) */
    bool in_arena;     /* tok lives in the arena's tokenizer region (nothing to free) */
    int kind;          /* FT_*: FT_NONE if none could be opened */
    char path[1024];   /* FT_PATH: the file; FT_GPT2: vocab.json */
    char merges[1024]; /* FT_GPT2: merges.txt */
    const el_gguf *g;  /* FT_GGUF: el_model_tok_gguf(m) */
    uint32_t vocab;    /* the model's vocab_size */
    el_status status;  /* why not */
    char error[512];
} family_tok;

/* el_tok_build_fn over a family_tok's recipe. */
static el_status ft_build(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const family_tok *ft = args;
    switch (ft->kind) {
    case FT_PATH: return el_tokenizer_open_mem(ft->path, ft->vocab, mem, out);
    case FT_GPT2: return el_tokenizer_gpt2_open_mem(ft->path, ft->merges, ft->vocab, mem, out);
    case FT_GGUF: return el_tokenizer_gguf_open_mem(ft->g, ft->vocab, mem, out);
    }
    return el_errorf(EL_E_INVALID, "no tokenizer");
}

/* Measures the recipe ft holds (the tables' bytes go to m->tokenizer_bytes); a failure
 * leaves ft without one. */
static el_status ft_measure(el_model *m, family_tok *ft, int kind) {
    ft->kind = kind;
    size_t bytes = 0;
    el_status s = el_tok_measure(ft_build, ft, &bytes);
    if (s != EL_OK) {
        ft->kind = FT_NONE;
        return s;
    }
    m->tokenizer_bytes = bytes;
    return EL_OK;
}

el_status el_family_tok_open(el_model *m, const char *const *names, size_t n,
                             const char *what) {
    family_tok *ft = calloc(1, sizeof *ft);
    if (!ft) return el_errorf(EL_E_NOMEM, "out of memory");
    m->family_data = ft;
    uint32_t vocab = m->config.vocab_size;
    ft->vocab = vocab;
    m->tokenizer_bytes = 0;
    if (m->tokenizer_path[0]) {
        snprintf(ft->path, sizeof ft->path, "%s", m->tokenizer_path);
        el_status s = ft_measure(m, ft, FT_PATH);
        if (s != EL_OK) {
            char why[600];
            snprintf(why, sizeof why, "%s", el_last_error());
            return el_errorf(s, "--tokenizer: %s", why);
        }
        return EL_OK;
    }
    /* A GGUF file (or an image packed from one) carries its own tokenizer; its failure is
     * kept as the reason. */
    const el_gguf *g = el_model_tok_gguf(m);
    if (g && el_gguf_find(g, "tokenizer.ggml.model")) {
        ft->g = g;
        el_status s = ft_measure(m, ft, FT_GGUF);
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
            else {
                snprintf(ft->path, sizeof ft->path, "%s", path);
                snprintf(ft->merges, sizeof ft->merges, "%s", merges);
                s = ft_measure(m, ft, FT_GPT2);
            }
        } else {
            if (!el_model_side_file(m, names[i], path, sizeof path)) continue;
            snprintf(ft->path, sizeof ft->path, "%s", path);
            s = ft_measure(m, ft, FT_PATH);
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
    if (!ft->in_arena) el_tokenizer_close(ft->tok);
    free(ft);
    m->family_data = NULL;
}

el_status el_family_tok_load(el_model *m, void *block, uint64_t cap) {
    family_tok *ft = m->family_data;
    if (!ft || ft->kind == FT_NONE) return EL_OK;
    if (ft->tok && !ft->in_arena) { /* used before the load: the heap copy goes */
        el_tokenizer_close(ft->tok);
        ft->tok = NULL;
    }
    el_tok_mem mem;
    el_tok_mem_block(&mem, block, (size_t)cap);
    el_tokenizer *t = NULL;
    el_status s = ft_build(ft, &mem, &t);
    if (s == EL_OK && mem.used != m->tokenizer_bytes)
        s = el_errorf(EL_E_INVALID, "%s: the tokenizer's tables took %zu bytes, %llu were "
                      "measured at open (did the file change?)", ft->path, mem.used,
                      (unsigned long long)m->tokenizer_bytes);
    if (s != EL_OK) return s;
    ft->tok = t;
    ft->in_arena = true;
    return EL_OK;
}

el_status el_family_tok_get(const el_model *m, const el_tokenizer **out) {
    family_tok *ft = m->family_data;
    if (ft && ft->tok) {
        *out = ft->tok;
        return EL_OK;
    }
    if (!ft) return el_errorf(EL_E_INVALID, "%s: no tokenizer", m->path);
    if (ft->kind == FT_NONE) return el_error_set(ft->status, ft->error);
    /* Opened, not loaded (tokenize, tools, tests): the tables on the heap, once, freed at
     * close. */
    el_tokenizer *t = NULL;
    el_status s = el_tok_build_heap(ft_build, ft, &t);
    if (s != EL_OK) return s;
    ft->tok = t;
    *out = t;
    return EL_OK;
}
