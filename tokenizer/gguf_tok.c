/* gguf_tok.c - the tokenizer a GGUF file carries in its tokenizer.ggml.* metadata, built
 * into the hf-bpe backend: tokenizer.ggml.model "gpt2" (byte-level BPE) becomes the
 * tokenizer.json it was converted from (tokens in id order as model.vocab, merges, control
 * and user-defined tokens as added tokens matched in the raw text, ByteLevel pre-tokenizer,
 * after Digits for the pre-tokenizers that split digits apart, and ByteLevel decoder), then
 * the hf-bpe backend validates and builds it as for any tokenizer.json. No whole tree: the
 * tokens and merges are read from the metadata on demand (el_gguf_iter) into the tables;
 * only the small rest and one added token at a time are cJSON. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/gguf_tok.h"
#include "tokenizer/hf_src.h"

#include "loader/formats/gguf.h"
#include "loader/safetensors.h" /* el_json_printable */
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* tokenizer.ggml.pre names as llama.cpp's llama-vocab.cpp maps them (0.3.36), and the
 * tokenizer.json pre-tokenizer that splits the same way:
 *   GT_GPT2    GPT-2's pattern (HF ByteLevel with use_regex);
 *   GT_DIGITS  "\p{N}" then GPT-2's pattern (HF Digits(individual_digits), ByteLevel);
 *   GT_LLAMA3  Llama 3's regex (HF Split, then ByteLevel without its own), whole words that
 *              are tokens taken as they are (ignore_merges), BOS unless the file says;
 *   GT_QWEN2   Qwen2's regex (\p{N} one digit at a time).
 *   GT_DEFAULT llama.cpp's "default" (and a file without the key): its cascade of four
 *              regexes, each splitting the pieces of the one before (punctuation runs, GPT-2's
 *              pattern, \p{N}+, digit triples), which no tokenizer.json expresses: asked for
 *              by a Split whose pattern is the marker el_hf_pat_ggml_default. */
enum { GT_GPT2, GT_DIGITS, GT_LLAMA3, GT_QWEN2, GT_DEFAULT };
static const struct {
    const char *name;
    int split;
} k_pre[] = {
    {"gpt2", GT_GPT2}, {"gpt-2", GT_GPT2}, {"phi-2", GT_GPT2},
    {"smollm", GT_DIGITS}, {"starcoder", GT_DIGITS}, {"refact", GT_DIGITS},
    {"command-r", GT_DIGITS}, {"codeshell", GT_DIGITS}, {"exaone", GT_DIGITS},
    {"minerva-7b", GT_DIGITS},
    {"llama3", GT_LLAMA3}, {"llama-v3", GT_LLAMA3}, {"llama-bpe", GT_LLAMA3},
    {"falcon3", GT_LLAMA3}, {"pixtral", GT_LLAMA3},
    {"qwen2", GT_QWEN2}, {"deepseek-r1-qwen", GT_QWEN2},
    {"default", GT_DEFAULT},
};

/* A string array of the metadata (key), required, with its element count. */
el_status el_gt_str_array(const el_gguf *g, const char *key, const el_gguf_value **out) {
    const el_gguf_kv *kv = el_gguf_find(g, key);
    if (!kv || kv->v.type != EL_GGUF_ARRAY || kv->v.elem_type != EL_GGUF_STRING)
        return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected an array of strings, got %s",
                         g->src.name, key, !kv ? "nothing" :
                         kv->v.type == EL_GGUF_ARRAY ? "an array of something else"
                                                     : el_gguf_value_type_name(kv->v.type));
    *out = &kv->v;
    return EL_OK;
}

/* Reads the next string of it into *buf (grown as needed, NUL-terminated, no inner NUL). */
el_status el_gt_next_str(const el_gguf *g, el_gguf_iter *it, const char *key, uint64_t i,
                          char **buf, size_t *cap) {
    el_gguf_value v;
    el_status s = el_gguf_iter_next(it, &v);
    if (s != EL_OK) return s;
    if (v.len > GT_TOKEN_MAX)
        return el_errorf(EL_E_INVALID, "%s: metadata '%s'[%llu]: expected at most %u bytes, got "
                         "%llu", g->src.name, key, (unsigned long long)i, GT_TOKEN_MAX,
                         (unsigned long long)v.len);
    if (v.len + 1 > *cap) {
        char *p = realloc(*buf, (size_t)v.len + 1);
        if (!p) return el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
        *buf = p;
        *cap = (size_t)v.len + 1;
    }
    size_t n = 0;
    if ((s = el_gguf_iter_read_string(it, &v, *buf, *cap, &n)) != EL_OK) return s;
    if (strlen(*buf) != n)
        return el_errorf(EL_E_INVALID, "%s: metadata '%s'[%llu]: expected no NUL byte",
                         g->src.name, key, (unsigned long long)i);
    return EL_OK;
}

/* An optional integer id key; -1 if absent. */
int64_t el_gt_meta_id(const el_gguf *g, const char *key) {
    const el_gguf_kv *kv = el_gguf_find(g, key);
    if (!kv) return -1;
    if (kv->v.type == EL_GGUF_U32 || kv->v.type == EL_GGUF_U64 || kv->v.type == EL_GGUF_U16 ||
        kv->v.type == EL_GGUF_U8)
        return kv->v.num.u > INT32_MAX ? -2 : (int64_t)kv->v.num.u;
    if (kv->v.type == EL_GGUF_I32 || kv->v.type == EL_GGUF_I64)
        return kv->v.num.i < 0 || kv->v.num.i > INT32_MAX ? -2 : kv->v.num.i;
    return -2;
}

static cJSON *added_token(int32_t id, const char *content, bool special) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (!cJSON_AddNumberToObject(o, "id", id) || !cJSON_AddStringToObject(o, "content", content) ||
        !cJSON_AddBoolToObject(o, "special", special)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The tokenizer.json a gpt2-model GGUF tokenizer stands for, but its tables: those the
 * callbacks below read from the metadata on demand (el_gguf_iter). */
typedef struct gt_src {
    const el_gguf *g;
    const el_gguf_value *tokens, *merges;
    const el_gguf_kv *types;  /* NULL: every token normal */
    char *buf;                /* one string (heap, grown to GT_TOKEN_MAX + 1) */
    size_t cap;
} gt_src;

static el_status gt_vocab(void *ctx, el_hf_vocab_fn fn, void *u) {
    gt_src *gs = ctx;
    el_gguf_iter it;
    el_gguf_iter_init(gs->g, gs->tokens, &it);
    for (uint64_t i = 0; i < gs->tokens->len; i++) {
        el_status s = el_gt_next_str(gs->g, &it, "tokenizer.ggml.tokens", i, &gs->buf, &gs->cap);
        if (s != EL_OK) return s;
        cJSON num;
        memset(&num, 0, sizeof num);
        num.type = cJSON_Number;
        num.valuedouble = (double)i;
        /* (a token twice is caught by the build: "appears twice in model.vocab") */
        if ((s = fn(u, gs->buf, strlen(gs->buf), &num)) != EL_OK) return s;
    }
    return EL_OK;
}

/* Control and user-defined tokens: added tokens matched in the raw text. */
static el_status gt_added(void *ctx, el_hf_added_fn fn, void *u) {
    gt_src *gs = ctx;
    if (!gs->types) return EL_OK;
    el_gguf_iter it, ti;
    el_gguf_iter_init(gs->g, gs->tokens, &it);
    el_gguf_iter_init(gs->g, &gs->types->v, &ti);
    uint32_t k = 0;
    for (uint64_t i = 0; i < gs->tokens->len; i++) {
        el_status s = el_gt_next_str(gs->g, &it, "tokenizer.ggml.tokens", i, &gs->buf, &gs->cap);
        el_gguf_value tv;
        if (s == EL_OK) s = el_gguf_iter_next(&ti, &tv);
        if (s != EL_OK) return s;
        if (tv.num.i != GT_CONTROL && tv.num.i != GT_USER_DEFINED) continue;
        cJSON *a = added_token((int32_t)i, gs->buf, tv.num.i == GT_CONTROL);
        s = a ? fn(u, k++, a) : el_errorf(EL_E_NOMEM, "%s: out of memory", gs->g->src.name);
        cJSON_Delete(a);
        if (s != EL_OK) return s;
    }
    return EL_OK;
}

static el_status gt_merges(void *ctx, el_hf_merge_fn fn, void *u) {
    gt_src *gs = ctx;
    el_gguf_iter it;
    el_gguf_iter_init(gs->g, gs->merges, &it);
    for (uint64_t i = 0; i < gs->merges->len; i++) {
        el_status s = el_gt_next_str(gs->g, &it, "tokenizer.ggml.merges", i, &gs->buf, &gs->cap);
        size_t n = s == EL_OK ? strlen(gs->buf) : 0, sp = 0;
        if (s == EL_OK)
            s = el_hf_merge_split(gs->g->src.name, "tokenizer.ggml.merges", (uint32_t)i, gs->buf,
                                  n, &sp);
        if (s == EL_OK) s = fn(u, (uint32_t)i, gs->buf, sp, gs->buf + sp + 1, n - sp - 1);
        if (s != EL_OK) return s;
    }
    return EL_OK;
}

/* The rest of the tokenizer.json: model options, the pre-tokenizer of split (k_pre) and
 * the ByteLevel decoder. */
static cJSON *gt_rest(int split) {
    static const char a[] =
        "{\"model\":{\"type\":\"BPE\",\"fuse_unk\":false,\"byte_fallback\":false,"
        "\"ignore_merges\":%s,\"vocab\":{},\"merges\":[]},\"added_tokens\":[],"
        "\"decoder\":{\"type\":\"ByteLevel\"},\"pre_tokenizer\":{\"type\":\"Sequence\","
        "\"pretokenizers\":[%s{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
        "\"use_regex\":%s}]}}";
    static const char d[] = "{\"type\":\"Digits\",\"individual_digits\":true},";
    const bool rx = split == GT_LLAMA3 || split == GT_QWEN2;
    char text[sizeof a + sizeof d + 16]; /* + "false" twice for two %s */
    snprintf(text, sizeof text, a, split == GT_LLAMA3 ? "true" : "false",
             split == GT_DIGITS ? d : "", rx ? "false" : "true");
    cJSON *root = cJSON_Parse(text);
    if (!root || !(rx || split == GT_DEFAULT)) return root;
    /* Split with the regex first (cJSON escapes it) */
    cJSON *sp = cJSON_CreateObject(), *pat = cJSON_CreateObject();
    cJSON *seq = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "pre_tokenizer"), "pretokenizers");
    if (!sp || !pat || !cJSON_AddStringToObject(sp, "type", "Split") ||
        !cJSON_AddStringToObject(pat, "Regex",
                                 split == GT_LLAMA3   ? el_hf_pat_llama3
                                 : split == GT_QWEN2  ? el_hf_pat_qwen2
                                                      : el_hf_pat_ggml_default) ||
        !cJSON_AddItemToObject(sp, "pattern", pat) ||
        !cJSON_AddStringToObject(sp, "behavior", "Isolated") ||
        !cJSON_AddFalseToObject(sp, "invert") || !cJSON_InsertItemInArray(seq, 0, sp)) {
        if (!cJSON_IsObject(cJSON_GetObjectItem(sp, "pattern"))) cJSON_Delete(pat);
        cJSON_Delete(sp);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* The hf-bpe tokenizer under the file's BOS rule: a prompt gets BOS only when
 * tokenizer.ggml.add_bos_token says so, whatever the caller asks. */
typedef struct gguf_tok {
    el_tokenizer base;
    el_tokenizer *inner; /* hf-bpe, in the same block */
    bool add_bos;
} gguf_tok;

static el_status gt_encode(const el_tokenizer *t, const char *text, size_t len, bool add_bos,
                           int32_t *ids, size_t cap, size_t *n) {
    const gguf_tok *g = (const gguf_tok *)t;
    return g->inner->vt->encode(g->inner, text, len, add_bos && g->add_bos, ids, cap, n);
}

static el_status gt_decode(const el_tokenizer *t, int32_t prev, int32_t id, char *buf,
                           size_t cap, size_t *n) {
    const gguf_tok *g = (const gguf_tok *)t;
    return g->inner->vt->decode(g->inner, prev, id, buf, cap, n);
}

static const el_tokenizer_vtable k_gguf_vt = {"gguf-gpt2", gt_encode, gt_decode, NULL};

typedef struct gt_args {
    const el_gguf *g;
    uint32_t vocab_size;
} gt_args;

static el_status gt_build(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const gt_args *ga = args;
    const el_gguf *g = ga->g;
    *out = NULL;
    const el_gguf_kv *mk = el_gguf_find(g, "tokenizer.ggml.model");
    if (!mk || mk->v.type != EL_GGUF_STRING)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.model': expected a string, "
                         "got %s", g->src.name,
                         mk ? el_gguf_value_type_name(mk->v.type) : "nothing");
    char shown[64];
    el_json_printable(mk->v.str, (size_t)mk->v.len, shown, sizeof shown);
    if (strcmp(mk->v.str, "gpt2"))
        return el_errorf(EL_E_UNSUPPORTED, "%s: tokenizer.ggml.model '%s' is not supported yet "
                         "(supported: gpt2, llama, bert)", g->src.name, shown);
    /* The pre-tokenizer (k_pre); none is llama.cpp's "default". */
    const el_gguf_kv *pk = el_gguf_find(g, "tokenizer.ggml.pre");
    int pre = pk ? -1 : (int)(sizeof k_pre / sizeof *k_pre) - 1;
    for (size_t i = 0; pk && pk->v.type == EL_GGUF_STRING && i < sizeof k_pre / sizeof *k_pre;
         i++)
        if (!strcmp(pk->v.str, k_pre[i].name) && strlen(pk->v.str) == pk->v.len) pre = (int)i;
    if (pre < 0) {
        if (pk && pk->v.type == EL_GGUF_STRING)
            el_json_printable(pk->v.str, (size_t)pk->v.len, shown, sizeof shown);
        else
            snprintf(shown, sizeof shown, "%s", "(not a string)");
        return el_errorf(EL_E_UNSUPPORTED, "%s: tokenizer.ggml.pre '%s' is not supported yet "
                         "(supported: gpt2, gpt-2, phi-2, smollm, starcoder, refact, command-r, "
                         "codeshell, exaone, minerva-7b, llama3, llama-v3, llama-bpe, falcon3, "
                         "pixtral, qwen2, deepseek-r1-qwen, default)",
                         g->src.name, shown);
    }
    int64_t bos = el_gt_meta_id(g, "tokenizer.ggml.bos_token_id");
    int64_t eos = el_gt_meta_id(g, "tokenizer.ggml.eos_token_id");
    if (bos < -1 || eos < -1)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.%s_token_id': expected an "
                         "id in 0..2^31-1", g->src.name, bos < -1 ? "bos" : "eos");
    const el_gguf_kv *ab = el_gguf_find(g, "tokenizer.ggml.add_bos_token");
    /* gpt2: no BOS unless the file says; llama.cpp's llama3 pre-tokenizer defaults to BOS */
    bool add_bos = ab && ab->v.type == EL_GGUF_BOOL ? ab->v.num.u != 0
                                                    : k_pre[pre].split == GT_LLAMA3;

    gt_src gs = {.g = g};
    el_status s = el_gt_str_array(g, "tokenizer.ggml.tokens", &gs.tokens);
    if (s == EL_OK) s = el_gt_str_array(g, "tokenizer.ggml.merges", &gs.merges);
    if (s != EL_OK) return s;
    gs.types = el_gguf_find(g, "tokenizer.ggml.token_type");
    if (gs.types && (gs.types->v.type != EL_GGUF_ARRAY || gs.types->v.elem_type != EL_GGUF_I32 ||
                     gs.types->v.len != gs.tokens->len))
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.token_type': expected "
                         "%llu i32 values (one per token)", g->src.name,
                         (unsigned long long)gs.tokens->len);
    if (gs.tokens->len == 0 || gs.merges->len > EL_JSON_VALUES_MAX ||
        gs.tokens->len > EL_JSON_VALUES_MAX - gs.merges->len)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.tokens': expected 1 to %u "
                         "tokens and merges together, got %llu + %llu", g->src.name,
                         EL_JSON_VALUES_MAX, (unsigned long long)gs.tokens->len,
                         (unsigned long long)gs.merges->len);
    gguf_tok *w = el_tok_alloc(mem, sizeof *w, 64);
    if (!w) return el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
    cJSON *rest = gt_rest(k_pre[pre].split);
    if (!rest) return el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
    char name[300];
    snprintf(name, sizeof name, "%s (tokenizer.ggml metadata)", g->src.name);
    el_hf_src src = {.root = rest, .name = name, .ctx = &gs, .vocab = gt_vocab,
                     .added = gt_added, .merges = gt_merges, .n_merges = gs.merges->len};
    el_tokenizer *t = NULL;
    /* A byte without its token (SmolLM2 lacks a few) encodes to nothing, as in llama.cpp
     * and HF's BPE (hf_bpe.c). */
    s = el_hf_bpe_build(&src, name, ga->vocab_size, mem, &t);
    cJSON_Delete(rest);
    free(gs.buf);
    if (s != EL_OK) return s;
    const uint32_t nv = t->vocab_size;
    if ((bos >= 0 && (uint64_t)bos >= nv) || (eos >= 0 && (uint64_t)eos >= nv))
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.%s_token_id': expected an "
                         "id below the %u tokens, got %lld", g->src.name,
                         bos >= 0 && (uint64_t)bos >= nv ? "bos" : "eos", nv,
                         (long long)(bos >= 0 && (uint64_t)bos >= nv ? bos : eos));
    t->bos_id = (int32_t)bos;
    t->eos_id = (int32_t)eos;
    w->base = *t;
    w->base.vt = &k_gguf_vt;
    w->base.bos_id = add_bos ? (int32_t)bos : -1;
    w->base.block = NULL;
    w->inner = t;
    w->add_bos = add_bos && bos >= 0;
    *out = &w->base;
    return EL_OK;
}

/* Model "llama" goes to the SentencePiece backend (tokenizer/gguf_spm.c), "bert" to the
 * WordPiece one (tokenizer/gguf_wpm.c). */
static bool gt_is(const el_gguf *g, const char *model) {
    const el_gguf_kv *mk = el_gguf_find(g, "tokenizer.ggml.model");
    return mk && mk->v.type == EL_GGUF_STRING && mk->v.len == strlen(model) &&
           !strcmp(mk->v.str, model);
}

el_status el_tokenizer_gguf_open_mem(const el_gguf *g, uint32_t vocab_size, el_tok_mem *mem,
                                     el_tokenizer **out) {
    *out = NULL;
    if (gt_is(g, "llama")) return el_tokenizer_gguf_spm_open_mem(g, vocab_size, mem, out);
    if (gt_is(g, "bert")) return el_tokenizer_gguf_wpm_open_mem(g, vocab_size, mem, out);
    gt_args a = {g, vocab_size};
    return gt_build(&a, mem, out);
}

el_status el_tokenizer_gguf_open(const el_gguf *g, uint32_t vocab_size, el_tokenizer **out) {
    *out = NULL;
    if (gt_is(g, "llama")) return el_tokenizer_gguf_spm_open(g, vocab_size, out);
    if (gt_is(g, "bert")) return el_tokenizer_gguf_wpm_open(g, vocab_size, out);
    gt_args a = {g, vocab_size};
    return el_tok_build_heap(gt_build, &a, out);
}
