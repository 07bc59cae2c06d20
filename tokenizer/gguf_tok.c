/* gguf_tok.c - the tokenizer a GGUF file carries in its tokenizer.ggml.* metadata, built
 * into the hf-bpe backend: tokenizer.ggml.model "gpt2" (byte-level BPE) becomes the
 * tokenizer.json it was converted from (tokens in id order as model.vocab, merges, control
 * and user-defined tokens as added tokens matched in the raw text, ByteLevel pre-tokenizer,
 * after Digits for the pre-tokenizers that split digits apart, and ByteLevel decoder), then
 * the hf-bpe backend validates and builds it as for any tokenizer.json. The cJSON tree
 * lives only during the open. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/gguf_tok.h"

#include "loader/formats/gguf.h"
#include "loader/safetensors.h" /* el_json_printable */
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* tokenizer.ggml.pre names and whether each splits digits apart first: llama.cpp runs
 * "\p{N}" then GPT-2's pattern for these, which is HF's Digits(individual_digits) then
 * ByteLevel. */
static const struct {
    const char *name;
    bool digits;
} k_pre[] = {
    {"default", false}, {"gpt2", false}, {"gpt-2", false}, {"phi-2", false},
    {"smollm", true}, {"starcoder", true},
    {"refact", true}, {"command-r", true}, {"codeshell", true}, {"exaone", true},
    {"minerva-7b", true},
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
    if ((s = el_gguf_read_string(g, &v, *buf, *cap, &n)) != EL_OK) return s;
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
    cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "content", content);
    cJSON_AddBoolToObject(o, "single_word", false);
    cJSON_AddBoolToObject(o, "lstrip", false);
    cJSON_AddBoolToObject(o, "rstrip", false);
    cJSON_AddBoolToObject(o, "normalized", false);
    cJSON_AddBoolToObject(o, "special", special);
    return o;
}

/* The tokenizer.json a gpt2-model GGUF tokenizer stands for. */
static el_status build_json(const el_gguf *g, bool digits, cJSON *root) {
    const el_gguf_value *tokens = NULL, *merges = NULL;
    el_status s = el_gt_str_array(g, "tokenizer.ggml.tokens", &tokens);
    if (s == EL_OK) s = el_gt_str_array(g, "tokenizer.ggml.merges", &merges);
    if (s != EL_OK) return s;
    const el_gguf_kv *types = el_gguf_find(g, "tokenizer.ggml.token_type");
    if (types && (types->v.type != EL_GGUF_ARRAY || types->v.elem_type != EL_GGUF_I32 ||
                  types->v.len != tokens->len))
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.token_type': expected "
                         "%llu i32 values (one per token)", g->src.name,
                         (unsigned long long)tokens->len);
    /* The tree costs ~100 bytes per token or merge: bounded as any tokenizer.json is. */
    if (tokens->len == 0 || merges->len > EL_JSON_VALUES_MAX ||
        tokens->len > EL_JSON_VALUES_MAX - merges->len)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.tokens': expected 1 to %u "
                         "tokens and merges together, got %llu + %llu", g->src.name,
                         EL_JSON_VALUES_MAX, (unsigned long long)tokens->len,
                         (unsigned long long)merges->len);

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON *vocab = model ? cJSON_AddObjectToObject(model, "vocab") : NULL;
    cJSON *mlist = model ? cJSON_AddArrayToObject(model, "merges") : NULL;
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *seq = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON *steps = seq ? cJSON_AddArrayToObject(seq, "pretokenizers") : NULL;
    cJSON *dig = digits && steps ? cJSON_CreateObject() : NULL;
    if (dig) {
        cJSON_AddStringToObject(dig, "type", "Digits");
        cJSON_AddBoolToObject(dig, "individual_digits", true);
        cJSON_AddItemToArray(steps, dig);
    }
    cJSON *pre = steps ? cJSON_CreateObject() : NULL;
    if (pre && !cJSON_AddItemToArray(steps, pre)) {
        cJSON_Delete(pre);
        pre = NULL;
    }
    if (seq) cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    if (!vocab || !mlist || !added || !pre || !dec || (digits && !dig))
        return el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddBoolToObject(model, "fuse_unk", false);
    cJSON_AddBoolToObject(model, "byte_fallback", false);
    cJSON_AddBoolToObject(model, "ignore_merges", false);
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", false);
    cJSON_AddBoolToObject(pre, "use_regex", true);
    cJSON_AddStringToObject(dec, "type", "ByteLevel");

    char *buf = NULL;
    size_t cap = 0;
    el_gguf_iter it, ti;
    el_gguf_iter_init(g, tokens, &it);
    if (types) el_gguf_iter_init(g, &types->v, &ti);
    for (uint64_t i = 0; s == EL_OK && i < tokens->len; i++) {
        s = el_gt_next_str(g, &it, "tokenizer.ggml.tokens", i, &buf, &cap);
        if (s != EL_OK) break;
        int64_t type = GT_NORMAL;
        el_gguf_value tv;
        if (types) {
            if ((s = el_gguf_iter_next(&ti, &tv)) != EL_OK) break;
            type = tv.num.i;
        }
        /* (a token twice is caught by the hf-bpe build: "appears twice in model.vocab") */
        cJSON *num = cJSON_CreateNumber((double)i);
        if (!num || !cJSON_AddItemToObject(vocab, buf, num)) {
            cJSON_Delete(num);
            s = el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
            break;
        }
        if (type == GT_CONTROL || type == GT_USER_DEFINED) {
            cJSON *a = added_token((int32_t)i, buf, type == GT_CONTROL);
            if (!a || !cJSON_AddItemToArray(added, a)) {
                cJSON_Delete(a);
                s = el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
            }
        }
    }
    el_gguf_iter_init(g, merges, &it);
    for (uint64_t i = 0; s == EL_OK && i < merges->len; i++) {
        s = el_gt_next_str(g, &it, "tokenizer.ggml.merges", i, &buf, &cap);
        if (s != EL_OK) break;
        cJSON *m = cJSON_CreateString(buf);
        if (!m || !cJSON_AddItemToArray(mlist, m)) {
            cJSON_Delete(m);
            s = el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
        }
    }
    free(buf);
    return s;
}

/* The hf-bpe tokenizer under the file's BOS rule: a prompt gets BOS only when
 * tokenizer.ggml.add_bos_token says so, whatever the caller asks. */
typedef struct gguf_tok {
    el_tokenizer base;
    el_tokenizer *inner; /* hf-bpe, owned */
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

static void gt_close(el_tokenizer *t) {
    gguf_tok *g = (gguf_tok *)t;
    el_tokenizer_close(g->inner);
    free(g);
}

static const el_tokenizer_vtable k_gguf_vt = {"gguf-gpt2", gt_encode, gt_decode, gt_close};

el_status el_tokenizer_gguf_open(const el_gguf *g, uint32_t vocab_size, el_tokenizer **out) {
    *out = NULL;
    const el_gguf_kv *mk = el_gguf_find(g, "tokenizer.ggml.model");
    if (!mk || mk->v.type != EL_GGUF_STRING)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.model': expected a string, "
                         "got %s", g->src.name,
                         mk ? el_gguf_value_type_name(mk->v.type) : "nothing");
    char shown[64];
    el_json_printable(mk->v.str, (size_t)mk->v.len, shown, sizeof shown);
    if (!strcmp(mk->v.str, "llama") && mk->v.len == 5)
        return el_tokenizer_gguf_spm_open(g, vocab_size, out);
    if (!strcmp(mk->v.str, "bert") && mk->v.len == 4)
        return el_tokenizer_gguf_wpm_open(g, vocab_size, out);
    if (strcmp(mk->v.str, "gpt2"))
        return el_errorf(EL_E_UNSUPPORTED, "%s: tokenizer.ggml.model '%s' is not supported yet "
                         "(supported: gpt2, llama, bert)", g->src.name, shown);
    /* The pre-tokenizer: GPT-2's pattern, with or without digits apart (others use other
     * patterns, which the hf-bpe backend does not run yet). */
    const el_gguf_kv *pk = el_gguf_find(g, "tokenizer.ggml.pre");
    int pre = pk ? -1 : 0;
    for (size_t i = 0; pk && pk->v.type == EL_GGUF_STRING && i < sizeof k_pre / sizeof *k_pre;
         i++)
        if (!strcmp(pk->v.str, k_pre[i].name) && strlen(pk->v.str) == pk->v.len) pre = (int)i;
    if (pre < 0) {
        el_json_printable(pk->v.str ? pk->v.str : "", pk->v.str ? (size_t)pk->v.len : 0,
                          shown, sizeof shown);
        return el_errorf(EL_E_UNSUPPORTED, "%s: tokenizer.ggml.pre '%s' is not supported yet "
                         "(supported: default, gpt2, smollm, starcoder, refact, command-r, "
                         "codeshell, exaone, minerva-7b)", g->src.name, shown);
    }
    int64_t bos = el_gt_meta_id(g, "tokenizer.ggml.bos_token_id");
    int64_t eos = el_gt_meta_id(g, "tokenizer.ggml.eos_token_id");
    if (bos < -1 || eos < -1)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.%s_token_id': expected an "
                         "id in 0..2^31-1", g->src.name, bos < -1 ? "bos" : "eos");
    const el_gguf_kv *ab = el_gguf_find(g, "tokenizer.ggml.add_bos_token");
    bool add_bos = ab && ab->v.type == EL_GGUF_BOOL && ab->v.num.u; /* gpt2: no BOS by default */

    cJSON *root = cJSON_CreateObject();
    if (!root) return el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
    el_status s = build_json(g, k_pre[pre].digits, root);
    el_tokenizer *t = NULL;
    char name[300];
    snprintf(name, sizeof name, "%s (tokenizer.ggml metadata)", g->src.name);
    /* A byte without its token (SmolLM2 lacks a few) encodes to nothing, as in llama.cpp
     * and HF's BPE (hf_bpe.c). */
    if (s == EL_OK) s = el_tokenizer_hf_bpe_from_json(root, name, vocab_size, &t);
    cJSON_Delete(root);
    if (s != EL_OK) return s;
    const uint32_t nv = t->vocab_size;
    if ((bos >= 0 && (uint64_t)bos >= nv) || (eos >= 0 && (uint64_t)eos >= nv)) {
        el_tokenizer_close(t);
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.ggml.%s_token_id': expected an "
                         "id below the %u tokens, got %lld", g->src.name,
                         bos >= 0 && (uint64_t)bos >= nv ? "bos" : "eos", nv,
                         (long long)(bos >= 0 && (uint64_t)bos >= nv ? bos : eos));
    }
    gguf_tok *w = calloc(1, sizeof *w);
    if (!w) {
        el_tokenizer_close(t);
        return el_errorf(EL_E_NOMEM, "%s: out of memory", g->src.name);
    }
    t->bos_id = (int32_t)bos;
    t->eos_id = (int32_t)eos;
    w->base = *t;
    w->base.vt = &k_gguf_vt;
    w->base.bos_id = add_bos ? (int32_t)bos : -1;
    w->inner = t;
    w->add_bos = add_bos && bos >= 0;
    *out = &w->base;
    return EL_OK;
}
