/* gguf_write.c - pack's GGUF output: a decoder model as a GGUF v3 file in llama.cpp's layout
 * (its convert_hf_to_gguf.py is the model followed, not the code).
 *
 * File: "GGUF", version 3, tensor count, metadata count; the metadata entries; the tensor
 * infos (name, ne[] innermost first, GGML type, offset in the data section); the data
 * section at a multiple of the alignment (32), each tensor at a multiple of it.
 * Layouts per architecture: llama's q/k rows permuted per head from HF's rotate-half order
 * into adjacent pairs (unless the source already is: llama2.c, GGUF); Gemma 3's norm weights
 * stored as 1 + w; GPT-2's Conv1D weights [in, out] transposed to rows [out, in]. Types:
 * 1-D tensors (norms, biases) F32 as llama.cpp keeps them; matrices as quantize-on-load
 * decides (el_plan_tensor_dtype: whole-block rows quantize, the rest stay as stored).
 * Memory: the header (metadata and infos, built in one buffer) and three buffers of one row
 * group (about ROW_GROUP bytes of f32, at least one row, one head for a permuted q/k);
 * an .elimg source is loaded into an arena first (its weights as stored). */
#include "loader/formats/gguf_write.h"

#include "arena/arena.h"
#include "kernels/cpu/quant.h"
#include "loader/formats/gguf.h"
#include "loader/image.h"
#include "loader/load_impl.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 32u
#define ROW_GROUP (4u << 20)          /* f32 bytes per row group, the streaming unit */
#define TOKJSON_MAX (64ull << 20)      /* tokenizer.json / tokenizer_config.json read whole */

/* GGUF metadata value types. */
enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_BOOL = 7, T_STR = 8, T_ARR = 9 };
/* GGML token types (llama.cpp's llama_token_type). */
enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

/* ---- a growing byte buffer (the header) ------------------------------------------------ */

typedef struct gbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} gbuf;

static void gb_put(gbuf *b, const void *d, size_t n) {
    if (b->oom || n > SIZE_MAX / 4 - b->n) { /* no doubling past SIZE_MAX */
        b->oom = true;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void gb_u32(gbuf *b, uint32_t v) { gb_put(b, &v, 4); } /* little-endian host (gguf.h) */
static void gb_u64(gbuf *b, uint64_t v) { gb_put(b, &v, 8); }
static void gb_str(gbuf *b, const char *s) {
    size_t n = strlen(s);
    gb_u64(b, n);
    gb_put(b, s, n);
}

/* ---- the job ----------------------------------------------------------------------------- */

typedef struct wtensor {
    const el_tensor *t;
    char name[96];        /* the GGUF name */
    el_dtype out;         /* written as */
    uint64_t rows, cols;  /* written [rows, cols]; cols is ne[0] */
    uint32_t ndim;        /* 1 or 2 */
    uint32_t perm;        /* llama q/k: rows permuted within groups of this many (a head); 0 none */
    bool transposed;      /* stored [cols, rows] (GPT-2's Conv1D from safetensors) */
    bool plus_one;        /* Gemma norm: 1 + w */
    uint64_t offset;      /* in the data section */
    uint64_t bytes;
} wtensor;

typedef struct writer {
    el_model *m;
    const char *arch;
    el_dtype dtype;
    wtensor *wt;
    size_t nt;
    gbuf kv;
    uint64_t n_kv;
    gbuf head;
    uint64_t data_off, data_bytes;
    uint8_t *raw, *enc;
    float *f32;
    size_t raw_cap, enc_cap, f32_cap;
    el_gguf_write_stats *st;
} writer;

/* ---- metadata ------------------------------------------------------------------------------ */

static void kv_key(writer *w, const char *key, uint32_t type) {
    gb_str(&w->kv, key);
    gb_u32(&w->kv, type);
    w->n_kv++;
}
static void kv_u32(writer *w, const char *key, uint32_t v) {
    kv_key(w, key, T_U32);
    gb_u32(&w->kv, v);
}
static void kv_f32(writer *w, const char *key, double v) {
    kv_key(w, key, T_F32);
    float f = (float)v;
    gb_put(&w->kv, &f, 4);
}
static void kv_str(writer *w, const char *key, const char *v) {
    kv_key(w, key, T_STR);
    gb_str(&w->kv, v);
}
static void kv_bool(writer *w, const char *key, bool v) {
    kv_key(w, key, T_BOOL);
    uint8_t b = v;
    gb_put(&w->kv, &b, 1);
}
static void kv_arr(writer *w, const char *key, uint32_t elem, uint64_t n) {
    kv_key(w, key, T_ARR);
    gb_u32(&w->kv, elem);
    gb_u64(&w->kv, n);
}
/* "<arch>.<key>" entries. */
static void akv_u32(writer *w, const char *key, uint32_t v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", w->arch, key);
    kv_u32(w, k, v);
}
static void akv_f32(writer *w, const char *key, double v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", w->arch, key);
    kv_f32(w, k, v);
}

/* llama.cpp's llama_ftype for the dtype asked for (or, as stored, the first matrix's). */
static uint32_t file_type(el_dtype d) {
    switch (d) {
    case EL_DT_F16: return 1;
    case EL_DT_Q4_0: return 2;
    case EL_DT_Q4_1: return 3;
    case EL_DT_Q8_0: return 7;
    case EL_DT_Q5_0: return 8;
    case EL_DT_Q5_1: return 9;
    case EL_DT_BF16: return 32;
    case EL_DT_Q4_K: return 15; /* MOSTLY_Q4_K_M: a GGUF or image source kept as stored */
    case EL_DT_Q5_K: return 17;
    case EL_DT_Q6_K: return 18;
    default: return 0; /* ALL_F32 */
    }
}

/* The GGML type id of a dtype (the inverse of el_gguf_dtype); -1 if none. */
static int ggml_type(el_dtype d) {
    for (int id = 0; id < 64; id++)
        if (el_gguf_dtype((uint32_t)id) == d) return id;
    return -1;
}

static el_status hparams(writer *w) {
    const el_config *c = &w->m->config;
    const char *a = w->arch;
    bool gpt2 = !strcmp(a, "gpt2"), gemma = !strcmp(a, "gemma3");
    uint32_t hd = c->head_dim ? c->head_dim : (c->num_heads ? c->hidden_size / c->num_heads : 0);
    if (!c->hidden_size || !c->num_layers || !c->num_heads || !c->max_positions)
        return el_errorf(EL_E_UNSUPPORTED, "%s: the config lacks hidden size, layers, heads or "
                         "the context length: GGUF needs all four", w->m->path);
    if (c->rope_type[0] && strcmp(c->rope_type, "default") && strcmp(c->rope_type, "linear"))
        return el_errorf(EL_E_UNSUPPORTED, "%s: RoPE scaling '%s' is not written to GGUF (llama.cpp "
                         "stores it as a rope_freqs tensor edgeload does not read); linear is",
                         w->m->path, c->rope_type);
    if (c->softcapping[0])
        return el_errorf(EL_E_UNSUPPORTED, "%s: config '%s': logit soft-capping is not written",
                         w->m->path, c->softcapping);
    if (!strcmp(a, "qwen2") && c->use_sliding_window && c->sliding_window &&
        c->sliding_window < c->max_positions)
        return el_errorf(EL_E_UNSUPPORTED, "%s: Qwen2 with use_sliding_window (window %u): "
                         "llama.cpp's qwen2 has no sliding window", w->m->path, c->sliding_window);
    if (!strcmp(a, "llama") && c->sliding_window && c->sliding_window < c->max_positions)
        return el_errorf(EL_E_UNSUPPORTED, "%s: sliding window %u (Mistral): GGUF's llama has no "
                         "sliding window", w->m->path, c->sliding_window);
    if (gemma) {
        /* llama.cpp (and edgeload's GGUF reader) fix the layout: every sixth layer global. */
        for (uint32_t l = 0; c->sliding_window && l < c->num_layers; l++) {
            bool sliding = l < c->n_layer_types ? (c->sliding_layers[l / 64] >> (l % 64) & 1)
                           : c->sliding_window_pattern ? (l + 1) % c->sliding_window_pattern != 0
                                                       : true;
            if (sliding != ((l + 1) % 6 != 0))
                return el_errorf(EL_E_UNSUPPORTED, "%s: Gemma 3 layer %u is %s: GGUF gemma3 has "
                                 "every sixth layer global, the others sliding", w->m->path, l,
                                 sliding ? "sliding" : "global");
        }
        if (c->query_pre_attn_scalar && fabs(c->query_pre_attn_scalar - hd) > 1e-9)
            return el_errorf(EL_E_UNSUPPORTED, "%s: Gemma 3 query_pre_attn_scalar %g: GGUF gemma3 "
                             "scales by the head size %u", w->m->path, c->query_pre_attn_scalar, hd);
    }
    akv_u32(w, "context_length", c->max_positions);
    akv_u32(w, "embedding_length", c->hidden_size);
    akv_u32(w, "feed_forward_length", c->intermediate_size ? c->intermediate_size : 4 * c->hidden_size);
    akv_u32(w, "block_count", c->num_layers);
    akv_u32(w, "attention.head_count", c->num_heads);
    if (gpt2) {
        akv_f32(w, "attention.layer_norm_epsilon", c->norm_eps ? c->norm_eps : 1e-5);
        return EL_OK;
    }
    akv_u32(w, "attention.head_count_kv", c->num_kv_heads ? c->num_kv_heads : c->num_heads);
    akv_f32(w, "attention.layer_norm_rms_epsilon", c->norm_eps ? c->norm_eps : 1e-6);
    akv_f32(w, "rope.freq_base", c->rope_theta ? c->rope_theta : 10000.0);
    if (gemma || (c->head_dim && c->head_dim != c->hidden_size / c->num_heads)) {
        akv_u32(w, "attention.key_length", hd);
        akv_u32(w, "attention.value_length", hd);
    }
    if (!strcmp(a, "llama") || !strcmp(a, "phi3")) akv_u32(w, "rope.dimension_count", hd);
    if (!strcmp(a, "llama")) akv_u32(w, "vocab_size", c->vocab_size);
    if (!strcmp(c->rope_type, "linear")) {
        char k[96];
        snprintf(k, sizeof k, "%s.rope.scaling.type", a);
        kv_str(w, k, "linear");
        akv_f32(w, "rope.scaling.factor", c->rope_factor);
    }
    if ((gemma || !strcmp(a, "phi3")) && c->sliding_window)
        akv_u32(w, "attention.sliding_window", c->sliding_window);
    if (gemma && c->rope_local_theta) akv_f32(w, "rope.freq_base_swa", c->rope_local_theta);
    return EL_OK;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* ---- the tokenizer ------------------------------------------------------------------------- */

static const char k_re_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char k_re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char k_re_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static bool jtype(const cJSON *o, const char *type) {
    const char *t = jstr(o, "type");
    return t && !strcmp(t, type);
}

/* True if a node of this "type" is in the tree (Sequence nesting). */
static bool has_type(const cJSON *o, const char *type) {
    if (!o) return false;
    if (jtype(o, type)) return true;
    const cJSON *e;
    cJSON_ArrayForEach(e, o)
        if ((cJSON_IsObject(e) || cJSON_IsArray(e)) && has_type(e, type)) return true;
    return false;
}

/* llama.cpp's tokenizer.ggml.pre for a byte-level pre-tokenizer, or NULL. */
static const char *pre_name(const cJSON *pre) {
    if (jtype(pre, "ByteLevel")) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(pre, "use_regex");
        return cJSON_IsFalse(r) ? NULL : "gpt-2";
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    if (!jtype(pre, "Sequence") || cJSON_GetArraySize(list) != 2) return NULL;
    const cJSON *a = cJSON_GetArrayItem(list, 0), *b = cJSON_GetArrayItem(list, 1);
    if (!jtype(b, "ByteLevel")) return NULL;
    bool regex = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(b, "use_regex"));
    /* SmolLM2: digits apart, then GPT-2's split */
    if (regex && jtype(a, "Digits") &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "individual_digits")))
        return "smollm";
    /* one regex split, then the byte mapping alone */
    const char *re = !regex && jtype(a, "Split")
                         ? jstr(cJSON_GetObjectItemCaseSensitive(a, "pattern"), "Regex")
                         : NULL;
    if (!re) return NULL;
    if (!strcmp(re, k_re_gpt2)) return "gpt-2";
    if (!strcmp(re, k_re_llama3)) return "llama-bpe";
    if (!strcmp(re, k_re_qwen2)) return "qwen2";
    return NULL;
}

/* SentencePiece-style BPE: byte fallback, spaces as U+2581. *prefix: a U+2581 is put first. */
static bool spm_style(const cJSON *root, const cJSON *model, bool *prefix) {
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    *prefix = false;
    const cJSON *e;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(norm, "normalizers");
    cJSON_ArrayForEach(e, list)
        if (jtype(e, "Prepend") && jstr(e, "prepend") && !strcmp(jstr(e, "prepend"), "\xe2\x96\x81"))
            *prefix = true;
    if (jtype(norm, "Prepend")) *prefix = true;
    if (has_type(pre, "Metaspace")) {
        const char *scheme = NULL;
        if (jtype(pre, "Metaspace")) scheme = jstr(pre, "prepend_scheme");
        *prefix = !scheme || strcmp(scheme, "never");
        return true;
    }
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")) ||
           has_type(norm, "Replace");
}

static bool is_byte_token(const char *s) {
    return strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>';
}

/* The tokenizer_config.json next to the model (NULL if none or unreadable). */
static cJSON *tok_config(const el_model *m) {
    char path[1200];
    uint8_t *text = NULL;
    size_t len = 0;
    cJSON *o = NULL;
    if (!el_model_side_file(m, "tokenizer_config.json", path, sizeof path)) return NULL;
    if (el_pack_read_file(path, TOKJSON_MAX, &text, &len) == EL_OK &&
        el_json_parse((const char *)text, len, path, &o) != EL_OK)
        o = NULL;
    free(text);
    return o;
}

/* tokenizer.json as tokenizer.ggml.*: tokens in id order with types, and merges (gpt2) or
 * scores (llama). */
static el_status tok_json(writer *w, const char *path, cJSON *root, const cJSON *tcfg) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *mtype = jstr(model, "type");
    if (!mtype || strcmp(mtype, "BPE"))
        return el_errorf(EL_E_UNSUPPORTED, "%s: model type '%s': only BPE tokenizers are written "
                         "to GGUF", path, mtype ? mtype : "(none)");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!cJSON_IsObject(vocab))
        return el_errorf(EL_E_INVALID, "%s: model.vocab: expected an object", path);
    bool bytelevel = has_type(pre, "ByteLevel"), prefix = false;
    bool spm = !bytelevel && spm_style(root, model, &prefix);
    const char *pname = bytelevel ? pre_name(pre) : NULL;
    if (bytelevel && !pname) {
        char *txt = cJSON_PrintUnformatted(pre);
        el_status s = el_errorf(EL_E_UNSUPPORTED, "%s: pre-tokenizer %.300s: not one llama.cpp "
                                "names (gpt-2, llama-bpe, qwen2, smollm)", path, txt ? txt : "?");
        free(txt);
        return s;
    }
    if (!bytelevel && !spm)
        return el_errorf(EL_E_UNSUPPORTED, "%s: a BPE that is neither byte-level nor "
                         "SentencePiece-style (byte fallback): not expressible in GGUF", path);
    /* Ids: the vocabulary and the added tokens; holes become [PAD<id>] as llama.cpp does. */
    uint64_t n = w->m->config.vocab_size;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= 16777216)
            return el_errorf(EL_E_INVALID, "%s: model.vocab '%s': expected an id 0..2^24", path, e->string);
        if ((uint64_t)e->valuedouble + 1 > n) n = (uint64_t)e->valuedouble + 1;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= 16777216 || !jstr(e, "content"))
            return el_errorf(EL_E_INVALID, "%s: added_tokens: expected id and content", path);
        if ((uint64_t)id->valuedouble + 1 > n) n = (uint64_t)id->valuedouble + 1;
    }
    if (w->m->config.vocab_size && n > w->m->config.vocab_size)
        return el_errorf(EL_E_UNSUPPORTED, "%s: %llu token ids, the model's embedding has %u rows: "
                         "GGUF needs one token per row", path, (unsigned long long)n,
                         w->m->config.vocab_size);
    const char **text = calloc(n, sizeof *text);
    int32_t *type = calloc(n, sizeof *type);
    float *score = calloc(n, sizeof *score);
    char (*pad)[32] = calloc(n, sizeof *pad);
    el_status s = EL_OK;
    if (!text || !type || !score || !pad) s = el_errorf(EL_E_NOMEM, "%s: out of memory", path);
    uint64_t n_merges = (uint64_t)cJSON_GetArraySize(merges);
    cJSON_ArrayForEach(e, vocab) {
        if (s != EL_OK) break;
        uint64_t id = (uint64_t)e->valuedouble;
        text[id] = e->string;
        type[id] = spm && is_byte_token(e->string) ? TOK_BYTE : TOK_NORMAL;
        score[id] = -(float)(n_merges + id); /* below every merge result (see below) */
    }
    const char *unk = jstr(model, "unk_token");
    for (uint64_t id = 0; s == EL_OK && id < n; id++)
        if (spm && unk && text[id] && !strcmp(text[id], unk)) type[id] = TOK_UNKNOWN;
    cJSON_ArrayForEach(e, added) {
        if (s != EL_OK) break;
        uint64_t id = (uint64_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
        text[id] = jstr(e, "content");
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"));
        if (type[id] != TOK_UNKNOWN) type[id] = special ? TOK_CONTROL : TOK_USER;
        score[id] = 0;
    }
    for (uint64_t id = 0; s == EL_OK && id < n; id++)
        if (!text[id]) {
            snprintf(pad[id], sizeof pad[id], "[PAD%llu]", (unsigned long long)id);
            text[id] = pad[id];
            type[id] = TOK_UNUSED;
        }
    /* llama's SentencePiece merge picks the pair whose token scores highest: a token made by
     * merge k scores -k, so merges apply in the tokenizer.json's rank order. */
    char buf[1024];
    uint64_t k = 0;
    if (merges && !cJSON_IsArray(merges))
        s = el_errorf(EL_E_INVALID, "%s: model.merges: expected an array", path);
    cJSON_ArrayForEach(e, merges) {
        if (s != EL_OK || !spm) break;
        const char *a = NULL, *b = NULL;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && strlen(e->valuestring) < sizeof buf) {
                snprintf(buf, sizeof buf, "%s", e->valuestring);
                buf[sp - e->valuestring] = 0;
                a = buf;
                b = buf + (sp - e->valuestring) + 1;
            }
        } else if (cJSON_GetArraySize(e) == 2) {
            a = cJSON_GetArrayItem(e, 0)->valuestring; /* NULL unless a string */
            b = cJSON_GetArrayItem(e, 1)->valuestring;
        }
        char joined[1024];
        if (a && b && snprintf(joined, sizeof joined, "%s%s", a, b) < (int)sizeof joined) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(vocab, joined);
            if (cJSON_IsNumber(id) && score[(uint64_t)id->valuedouble] < -(float)k)
                score[(uint64_t)id->valuedouble] = -(float)k;
        }
        k++;
    }
    if (s == EL_OK) {
        kv_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
        if (pname) kv_str(w, "tokenizer.ggml.pre", pname);
        kv_arr(w, "tokenizer.ggml.tokens", T_STR, n);
        for (uint64_t id = 0; id < n; id++) gb_str(&w->kv, text[id]);
        if (spm) {
            kv_arr(w, "tokenizer.ggml.scores", T_F32, n);
            gb_put(&w->kv, score, n * sizeof *score);
        }
        kv_arr(w, "tokenizer.ggml.token_type", T_I32, n);
        gb_put(&w->kv, type, n * sizeof *type);
        if (!spm) {
            kv_arr(w, "tokenizer.ggml.merges", T_STR, n_merges);
            cJSON_ArrayForEach(e, merges) {
                if (cJSON_IsString(e)) {
                    gb_str(&w->kv, e->valuestring);
                } else {
                    const cJSON *a = cJSON_GetArrayItem(e, 0), *b = cJSON_GetArrayItem(e, 1);
                    if (cJSON_GetArraySize(e) != 2 || !cJSON_IsString(a) || !cJSON_IsString(b)) {
                        s = el_errorf(EL_E_INVALID, "%s: model.merges: expected \"a b\" or "
                                      "[\"a\", \"b\"]", path);
                        break;
                    }
                    int len = snprintf(buf, sizeof buf, "%s %s", a->valuestring, b->valuestring);
                    if (len < 0 || len >= (int)sizeof buf) {
                        s = el_errorf(EL_E_UNSUPPORTED, "%s: a merge longer than %zu bytes", path, sizeof buf);
                        break;
                    }
                    gb_str(&w->kv, buf);
                }
            }
        } else {
            kv_bool(w, "tokenizer.ggml.add_space_prefix", prefix);
            for (uint64_t id = 0; id < n; id++)
                if (type[id] == TOK_UNKNOWN) {
                    kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)id);
                    break;
                }
        }
        snprintf(w->st->tokenizer, sizeof w->st->tokenizer, "%s%s%s%s", spm ? "llama" : "gpt2",
                 pname ? " (pre " : "", pname ? pname : "", pname ? ")" : "");
    }
    /* BOS at the start of a prompt: tokenizer_config.json's add_bos_token, else the
     * post-processor's template, else SentencePiece's default (yes). */
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(tcfg, "add_bos_token");
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (s == EL_OK && cJSON_IsBool(ab)) {
        kv_bool(w, "tokenizer.ggml.add_bos_token", cJSON_IsTrue(ab));
    } else if (s == EL_OK && jtype(post, "TemplateProcessing")) {
        const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(post, "single"), 0);
        kv_bool(w, "tokenizer.ggml.add_bos_token",
                cJSON_GetObjectItemCaseSensitive(first, "SpecialToken") != NULL);
    } else if (s == EL_OK) { /* SentencePiece adds BOS; a byte-level BPE without a template not */
        kv_bool(w, "tokenizer.ggml.add_bos_token", spm);
    }
    free(text);
    free(type);
    free(score);
    free(pad);
    return s;
}

/* ---- SentencePiece's tokenizer.model (a protobuf ModelProto) ---- */

typedef struct pb {
    const uint8_t *p, *end;
    bool bad;
} pb;

static uint64_t pb_varint(pb *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) break;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = true;
    return 0;
}

/* The next field: its number, wire type, and for wire type 2 the bytes (*sub); varints in
 * *val, fixed32 in *val's low bits. False at the end or on a malformed field. */
static bool pb_next(pb *r, uint32_t *field, uint32_t *wire, uint64_t *val, pb *sub) {
    if (r->bad || r->p >= r->end) return false;
    uint64_t key = pb_varint(r);
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    *val = 0;
    size_t left = (size_t)(r->end - r->p);
    if (*wire == 0) {
        *val = pb_varint(r);
    } else if (*wire == 1 || *wire == 5) {
        size_t n = *wire == 1 ? 8 : 4;
        if (left < n) r->bad = true;
        else {
            memcpy(val, r->p, n);
            r->p += n;
        }
    } else if (*wire == 2) {
        uint64_t n = pb_varint(r);
        if (n > (uint64_t)(r->end - r->p)) r->bad = true;
        else {
            sub->p = r->p;
            sub->end = r->p + n;
            sub->bad = false;
            r->p += n;
        }
    } else {
        r->bad = true;
    }
    return !r->bad;
}

/* tokenizer.model as a llama vocabulary: pieces, scores and types (SentencePiece numbers its
 * piece types as GGUF does) in id order, add_space_prefix from add_dummy_prefix. Refused:
 * a model type other than BPE and normalization llama.cpp does not do. */
static el_status tok_spm_model(writer *w, const char *path) {
    uint8_t *data = NULL;
    size_t len = 0;
    el_status s = el_pack_read_file(path, TOKJSON_MAX, &data, &len);
    if (s != EL_OK) return s;
    pb r = {data, data + len, false}, sub, f;
    uint32_t field, wire;
    uint64_t val, n = 0;
    uint64_t model_type = 1; /* unigram unless the trainer spec says */
    bool dummy_prefix = true, extra_ws = true;
    char norm[64] = "";
    /* pass 1: count pieces, read the specs */
    while (pb_next(&r, &field, &wire, &val, &sub)) {
        if (field == 1 && wire == 2) n++;
        if (field == 2 && wire == 2)
            while (pb_next(&sub, &field, &wire, &val, &f))
                if (field == 3 && wire == 0) model_type = val;
        if (field == 3 && wire == 2)
            while (pb_next(&sub, &field, &wire, &val, &f)) {
                if (field == 1 && wire == 2)
                    snprintf(norm, sizeof norm, "%.*s", (int)(f.end - f.p), (const char *)f.p);
                if (field == 3 && wire == 0) dummy_prefix = val != 0;
                if (field == 4 && wire == 0) extra_ws = val != 0;
            }
    }
    uint64_t rows = w->m->config.vocab_size;
    if (r.bad || !n)
        s = el_errorf(EL_E_INVALID, "%s: not a SentencePiece model (a protobuf with pieces)", path);
    else if (model_type != 2)
        s = el_errorf(EL_E_UNSUPPORTED, "%s: SentencePiece model type %llu: GGUF's llama tokenizer "
                      "is BPE (type 2)", path, (unsigned long long)model_type);
    else if ((norm[0] && strcmp(norm, "identity")) || extra_ws)
        s = el_errorf(EL_E_UNSUPPORTED, "%s: SentencePiece normalization '%s'%s: llama.cpp's "
                      "tokenizer does not normalize (identity, whitespace kept)", path, norm,
                      extra_ws ? " removing extra whitespace" : "");
    else if (rows && n > rows)
        s = el_errorf(EL_E_UNSUPPORTED, "%s: %llu pieces, the model's embedding has %llu rows",
                      path, (unsigned long long)n, (unsigned long long)rows);
    uint64_t total = rows > n ? rows : n;
    float *score = s == EL_OK ? calloc(total, sizeof *score) : NULL;
    int32_t *type = s == EL_OK ? calloc(total, sizeof *type) : NULL;
    if (s == EL_OK && (!score || !type)) s = el_errorf(EL_E_NOMEM, "%s: out of memory", path);
    if (s == EL_OK) {
        kv_str(w, "tokenizer.ggml.model", "llama");
        kv_arr(w, "tokenizer.ggml.tokens", T_STR, total);
        r = (pb){data, data + len, false};
        uint64_t i = 0;
        while (pb_next(&r, &field, &wire, &val, &sub)) {
            if (field != 1 || wire != 2) continue;
            const uint8_t *piece = (const uint8_t *)"";
            size_t plen = 0;
            type[i] = TOK_NORMAL;
            while (pb_next(&sub, &field, &wire, &val, &f)) {
                if (field == 1 && wire == 2) {
                    piece = f.p;
                    plen = (size_t)(f.end - f.p);
                }
                if (field == 2 && wire == 5) memcpy(&score[i], &val, 4);
                if (field == 3 && wire == 0) type[i] = val >= 1 && val <= 6 ? (int32_t)val : TOK_NORMAL;
            }
            gb_u64(&w->kv, plen);
            gb_put(&w->kv, piece, plen);
            i++;
        }
        for (; i < total; i++) { /* rows past the pieces, as llama.cpp pads them */
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
            gb_str(&w->kv, pad);
            type[i] = TOK_UNUSED;
        }
        kv_arr(w, "tokenizer.ggml.scores", T_F32, total);
        gb_put(&w->kv, score, total * sizeof *score);
        kv_arr(w, "tokenizer.ggml.token_type", T_I32, total);
        gb_put(&w->kv, type, total * sizeof *type);
        kv_bool(w, "tokenizer.ggml.add_space_prefix", dummy_prefix);
        kv_bool(w, "tokenizer.ggml.add_bos_token", true);
        for (uint64_t k = 0; k < n; k++)
            if (type[k] == TOK_UNKNOWN) {
                kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)k);
                break;
            }
        snprintf(w->st->tokenizer, sizeof w->st->tokenizer, "llama (tokenizer.model)");
    }
    free(score);
    free(type);
    free(data);
    return s;
}

/* A GGUF source's tokenizer.* entries, copied as they are (arrays byte for byte). */
static el_status copy_gguf_tokenizer(writer *w) {
    const el_gguf *g = w->m->gguf;
    static const uint8_t k_size[EL_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    for (size_t i = 0; i < g->n_kv; i++) {
        const el_gguf_kv *kv = &g->kv[i];
        const el_gguf_value *v = &kv->v;
        if (strncmp(kv->key, "tokenizer.", 10)) continue;
        kv_key(w, kv->key, v->type);
        if (v->type == EL_GGUF_STRING || v->type == EL_GGUF_ARRAY) {
            if (v->type == EL_GGUF_ARRAY) {
                gb_u32(&w->kv, v->elem_type);
                gb_u64(&w->kv, v->len);
            } else {
                gb_u64(&w->kv, v->len);
            }
            uint8_t *buf = malloc(v->size ? (size_t)v->size : 1);
            if (!buf) return el_errorf(EL_E_NOMEM, "%s: out of memory copying '%s'", w->m->path, kv->key);
            el_status s = el_file_read_at(&w->m->files[0], buf, (size_t)v->size, v->offset);
            if (s == EL_OK) gb_put(&w->kv, buf, (size_t)v->size);
            free(buf);
            if (s != EL_OK) return s;
        } else {
            uint8_t b[8];
            float f = (float)v->num.f;
            if (v->type == EL_GGUF_F32) memcpy(b, &f, 4);
            else if (v->type == EL_GGUF_F64) memcpy(b, &v->num.f, 8);
            else memcpy(b, &v->num.u, 8); /* little-endian: the low bytes first */
            gb_put(&w->kv, b, k_size[v->type]);
        }
        if (!strcmp(kv->key, "tokenizer.ggml.model"))
            snprintf(w->st->tokenizer, sizeof w->st->tokenizer, "%s (copied)", v->str ? v->str : "?");
    }
    return EL_OK;
}

el_status el_gguf_tokenizer_blob(const el_model *m, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    el_gguf_write_stats st = {0};
    writer w = {.m = (el_model *)m, .st = &st}; /* copy_gguf_tokenizer only reads m */
    el_status s = copy_gguf_tokenizer(&w);
    if (s == EL_OK) {
        gbuf *h = &w.head;
        gb_put(h, "GGUF", 4);
        gb_u32(h, 3);
        gb_u64(h, 0); /* no tensors */
        gb_u64(h, w.n_kv);
        gb_put(h, w.kv.p, w.kv.n);
        if (w.kv.oom || h->oom) s = el_errorf(EL_E_NOMEM, "%s: out of memory for the tokenizer's metadata", m->path);
    }
    free(w.kv.p);
    if (s != EL_OK) {
        free(w.head.p);
        return s;
    }
    *out = w.head.p;
    *len = w.head.n;
    return EL_OK;
}

static el_status tokenizer(writer *w, const char *explicit_path) {
    char path[1200];
    const el_config *c = &w->m->config;
    bool have = false, spm_model = false;
    if (explicit_path) {
        spm_model = ends_with(explicit_path, ".model");
        if (!spm_model && !ends_with(explicit_path, ".json"))
            return el_errorf(EL_E_UNSUPPORTED, "--tokenizer %s: GGUF output takes a tokenizer.json "
                             "or a SentencePiece tokenizer.model", explicit_path);
        snprintf(path, sizeof path, "%s", explicit_path);
        have = true;
    } else if (el_model_side_file(w->m, "tokenizer.model", path, sizeof path)) {
        have = spm_model = true; /* SentencePiece's own scores, as llama.cpp prefers */
    } else {
        have = el_model_side_file(w->m, "tokenizer.json", path, sizeof path);
    }
    snprintf(w->st->tokenizer, sizeof w->st->tokenizer, "none");
    if (w->m->gguf && !explicit_path) return copy_gguf_tokenizer(w);
    cJSON *tcfg = tok_config(w->m);
    el_status s = EL_OK;
    if (have && spm_model) {
        s = tok_spm_model(w, path);
    } else if (have) {
        uint8_t *text = NULL;
        size_t len = 0;
        cJSON *root = NULL;
        s = el_pack_read_file(path, TOKJSON_MAX, &text, &len);
        if (s == EL_OK) s = el_json_parse((const char *)text, len, path, &root);
        free(text);
        if (s == EL_OK) s = tok_json(w, path, root, tcfg);
        cJSON_Delete(root);
    }
    if (s == EL_OK && c->bos_token_id >= 0) kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_token_id);
    if (s == EL_OK && c->eos_token_id >= 0) kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_token_id);
    if (s == EL_OK && c->pad_token_id >= 0)
        kv_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)c->pad_token_id);
    /* The chat template: tokenizer_config.json's string, else chat_template.jinja. */
    const char *tmpl = jstr(tcfg, "chat_template");
    uint8_t *jinja = NULL;
    size_t jlen = 0;
    if (s == EL_OK && !tmpl && el_model_side_file(w->m, "chat_template.jinja", path, sizeof path) &&
        (s = el_pack_read_file(path, TOKJSON_MAX, &jinja, &jlen)) == EL_OK)
        tmpl = (const char *)jinja;
    if (s == EL_OK && tmpl) kv_str(w, "tokenizer.chat_template", tmpl);
    free(jinja);
    cJSON_Delete(tcfg);
    return s;
}

/* ---- tensors ------------------------------------------------------------------------------- */

/* Tensors a checkpoint carries that are no weights (GPT-2's attention masks, rotary
 * caches): not written, as llama.cpp's converter drops them. */
static bool skipped(const char *name) {
    return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") ||
           ends_with(name, "rotary_emb.inv_freq");
}

static el_status plan_tensor(writer *w, const el_tensor *t, wtensor *x) {
    const el_model *m = w->m;
    const el_config *c = &m->config;
    memset(x, 0, sizeof *x);
    x->t = t;
    if (!el_gguf_name_from_hf(w->arch, t->name, x->name, sizeof x->name))
        return el_errorf(EL_E_UNSUPPORTED, "%s: tensor '%s' has no name in GGUF's %s architecture",
                         m->path, t->name, w->arch);
    bool fl = t->dtype == EL_DT_F32 || t->dtype == EL_DT_F16 || t->dtype == EL_DT_BF16;
    if ((!fl && !el_dtype_is_block(t->dtype)) || t->ndim < 1 || t->ndim > 2 ||
        (el_dtype_is_block(t->dtype) && t->ndim != 2))
        return el_errorf(EL_E_UNSUPPORTED, "%s: tensor '%s': %uD %s is not written (1-D or 2-D "
                         "F32/F16/BF16, or 2-D blocks)", m->path, t->name, t->ndim,
                         el_dtype_name(t->dtype));
    x->ndim = t->ndim;
    x->transposed = t->transpose2d && !t->data; /* a loaded image holds it transposed already */
    if (t->ndim == 1) {
        x->rows = 1;
        x->cols = t->shape[0];
        x->out = EL_DT_F32; /* llama.cpp keeps 1-D tensors in F32 */
    } else {
        x->rows = t->transpose2d ? t->shape[1] : t->shape[0]; /* shape: as stored */
        x->cols = t->transpose2d ? t->shape[0] : t->shape[1];
        x->out = w->dtype == EL_DT_NONE ? t->dtype : el_plan_tensor_dtype(t, w->dtype);
    }
    /* llama: HF's rotate-half q/k rows into llama.cpp's pairs, per head. */
    if (!strcmp(w->arch, "llama") && !(m->flags & EL_MODEL_ROPE_INTERLEAVED)) {
        uint32_t heads = 0;
        if (ends_with(t->name, "q_proj.weight") || ends_with(t->name, "q_proj.bias")) heads = c->num_heads;
        if (ends_with(t->name, "k_proj.weight") || ends_with(t->name, "k_proj.bias"))
            heads = c->num_kv_heads ? c->num_kv_heads : c->num_heads;
        uint64_t n = t->shape[0];
        if (heads && (n % heads || (n / heads) % 2))
            return el_errorf(EL_E_UNSUPPORTED, "%s: tensor '%s': %llu rows are not %u heads of an "
                             "even size", m->path, t->name, (unsigned long long)n, heads);
        if (heads) {
            x->perm = (uint32_t)(n / heads);
            if (t->ndim == 1) { /* a bias: its elements are the rows */
                x->rows = n;
                x->cols = 1;
            }
        }
    }
    x->plus_one = !strcmp(w->arch, "gemma3") && !(m->flags & EL_MODEL_NORM_PLUS_ONE) &&
                  ends_with(t->name, "norm.weight");
    uint64_t shape[2] = {x->rows, x->cols};
    if (t->ndim == 1) shape[0] = x->rows * x->cols;
    el_status s = el_dtype_tensor_bytes(x->out, shape, t->ndim, t->name, &x->bytes);
    if (s != EL_OK) return s;
    if (ggml_type(x->out) < 0)
        return el_errorf(EL_E_UNSUPPORTED, "%s: tensor '%s': %s has no GGML type", m->path,
                         t->name, el_dtype_name(x->out));
    if (t->ndim == 2) {
        if (el_dtype_is_block(x->out) && x->out != t->dtype) w->st->quantized++;
        else if (el_dtype_is_block(w->dtype)) w->st->kept++;
    }
    return EL_OK;
}

/* The header: magic, version, counts, metadata, tensor infos, padding to the data section. */
static void build_header(writer *w) {
    gbuf *h = &w->head;
    gb_put(h, "GGUF", 4);
    gb_u32(h, 3);
    gb_u64(h, w->nt);
    gb_u64(h, w->n_kv);
    gb_put(h, w->kv.p, w->kv.n);
    uint64_t off = 0;
    for (size_t i = 0; i < w->nt; i++) {
        wtensor *x = &w->wt[i];
        gb_str(h, x->name);
        gb_u32(h, x->ndim);
        if (x->ndim == 1) {
            gb_u64(h, x->rows * x->cols);
        } else {
            gb_u64(h, x->cols);
            gb_u64(h, x->rows);
        }
        gb_u32(h, (uint32_t)ggml_type(x->out));
        gb_u64(h, off);
        x->offset = off;
        off = (off + x->bytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    static const uint8_t zeros[ALIGN];
    gb_put(h, zeros, (ALIGN - h->n % ALIGN) % ALIGN);
    w->data_off = h->n;
    w->data_bytes = off;
}

static el_status grow(void **p, size_t *cap, size_t need) {
    if (need <= *cap) return EL_OK;
    void *q = realloc(*p, need);
    if (!q) return el_errorf(EL_E_NOMEM, "out of memory for a %zu-byte tensor buffer", need);
    *p = q;
    *cap = need;
    return EL_OK;
}

/* n bytes of t's stored data from byte off: the source file, or the arena (loaded image). */
static el_status src_read(writer *w, const el_tensor *t, uint64_t off, size_t n, void *dst) {
    if (t->data) {
        memcpy(dst, (const uint8_t *)t->data + off, n);
        return EL_OK;
    }
    return el_file_read_at(&w->m->files[t->file], dst, n, t->offset + off);
}

/* The written row for stored row i of a permuted group of d rows: HF's rows i and i + d/2
 * (rotate-half) become rows 2i and 2i + 1 (adjacent pairs). */
static uint64_t perm_row(uint64_t i, uint32_t d) {
    uint64_t h = d / 2;
    return i < h ? 2 * i : 2 * (i - h) + 1;
}

/* Streams one tensor into fd at its place, a row group at a time. */
static el_status write_tensor(writer *w, int fd, const char *fname, const wtensor *x) {
    const el_tensor *t = x->t;
    const el_dtype sd = t->dtype;
    const bool blocks = el_dtype_is_block(sd); /* written as stored (x->out == sd) */
    uint64_t in_row = 0, out_row = 0;
    if (!el_dtype_row_bytes(sd, x->cols, &in_row) || !el_dtype_row_bytes(x->out, x->cols, &out_row))
        return el_errorf(EL_E_INVALID, "%s: tensor '%s': row size", w->m->path, t->name);
    uint64_t unit = x->perm ? x->perm : 1, widest = x->cols * 4;
    if (in_row > widest) widest = in_row;
    uint64_t g = ROW_GROUP / (widest ? widest : 1);
    g = g < unit ? unit : g / unit * unit;
    if (g > x->rows) g = x->rows;
    el_status s = EL_OK;
    if ((s = grow((void **)&w->raw, &w->raw_cap, (size_t)(g * (x->transposed ? el_dtype_size(sd) : in_row)))) != EL_OK ||
        (s = grow((void **)&w->f32, &w->f32_cap, (size_t)(g * x->cols * 4))) != EL_OK ||
        (s = grow((void **)&w->enc, &w->enc_cap, (size_t)(g * (out_row > 4 ? out_row : 4)))) != EL_OK)
        return s;
    uint64_t peak = w->raw_cap + w->f32_cap + w->enc_cap;
    if (peak > w->st->buffer_bytes) w->st->buffer_bytes = peak;
    uint64_t base = w->data_off + x->offset;
    for (uint64_t r0 = 0; s == EL_OK && r0 < x->rows; r0 += g) {
        uint64_t n = x->rows - r0 < g ? x->rows - r0 : g;
        const uint8_t *outp;
        if (x->transposed) {
            /* stored [cols, rows]: elements [r0, r0 + n) of each stored row are column i of
             * the written rows r0.. */
            size_t es = el_dtype_size(sd);
            float *col = (float *)(void *)w->enc; /* n floats fit: enc holds g rows of >= 4 bytes */
            for (uint64_t i = 0; s == EL_OK && i < x->cols; i++) {
                s = src_read(w, t, (i * x->rows + r0) * es, (size_t)(n * es), w->raw);
                if (s != EL_OK) break;
                el_convert(sd, w->raw, EL_DT_F32, col, n);
                for (uint64_t r = 0; r < n; r++) w->f32[r * x->cols + i] = col[r];
            }
        } else {
            s = src_read(w, t, r0 * in_row, (size_t)(n * in_row), w->raw);
            if (s == EL_OK && blocks) {
                for (uint64_t r = 0; r < n; r++) {
                    uint64_t o = x->perm ? r / unit * unit + perm_row(r % unit, x->perm) : r;
                    memcpy(w->enc + o * out_row, w->raw + r * in_row, (size_t)in_row);
                }
            } else if (s == EL_OK) {
                for (uint64_t r = 0; r < n; r++) {
                    uint64_t o = x->perm ? r / unit * unit + perm_row(r % unit, x->perm) : r;
                    el_convert(sd, w->raw + r * in_row, EL_DT_F32, w->f32 + o * x->cols, x->cols);
                }
            }
        }
        if (s != EL_OK) break;
        if (blocks) {
            outp = w->enc;
        } else {
            if (x->plus_one)
                for (uint64_t i = 0; i < n * x->cols; i++) w->f32[i] += 1.0f;
            if (x->out == EL_DT_F32) {
                outp = (const uint8_t *)w->f32;
            } else {
                el_convert(EL_DT_F32, w->f32, x->out, w->enc, n * x->cols);
                outp = w->enc;
            }
        }
        s = el_fd_write_at(fd, outp, (size_t)(n * out_row), base + r0 * out_row, fname);
    }
    return s;
}

static el_status job_write(void *ctx, int fd, const char *name, uint64_t *size) {
    writer *w = ctx;
    el_status s = el_fd_write_at(fd, w->head.p, w->head.n, 0, name);
    uint64_t end = w->data_off;
    for (size_t i = 0; s == EL_OK && i < w->nt; i++) {
        s = write_tensor(w, fd, name, &w->wt[i]);
        end = w->data_off + w->wt[i].offset + w->wt[i].bytes;
    }
    /* The file ends at the last tensor's end padded to the alignment, as gguf-py writes. */
    uint64_t total = w->data_off + w->data_bytes;
    static const uint8_t zeros[ALIGN];
    if (s == EL_OK && total > end) s = el_fd_write_at(fd, zeros, (size_t)(total - end), end, name);
    *size = total;
    return s;
}

/* ---- the whole ------------------------------------------------------------------------------ */

static const char *gguf_arch_of(const el_model *m) {
    const char *f = el_model_family(m);
    if (!strcmp(f, "llama") || !strcmp(f, "mistral")) return "llama";
    if (!strcmp(f, "qwen2") || !strcmp(f, "gemma3") || !strcmp(f, "phi3") || !strcmp(f, "gpt2"))
        return f;
    return NULL;
}

static el_status build(writer *w, const el_gguf_write_params *p) {
    el_model *m = w->m;
    /* general.name: the model's file or folder name without its extension. */
    size_t n = strlen(m->path);
    while (n > 1 && m->path[n - 1] == '/') n--;
    const char *b = m->path + n;
    while (b > m->path && b[-1] != '/') b--;
    char name[sizeof m->path];
    snprintf(name, sizeof name, "%.*s", (int)(m->path + n - b), b);
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = 0;
    uint32_t ft = file_type(w->dtype);
    if (w->dtype == EL_DT_NONE)
        for (size_t i = 0; i < m->tensors.count; i++)
            if (m->tensors.items[i].ndim == 2) {
                ft = file_type(m->tensors.items[i].dtype);
                break;
            }
    kv_str(w, "general.architecture", w->arch);
    kv_str(w, "general.name", name);
    kv_u32(w, "general.alignment", ALIGN);
    kv_u32(w, "general.file_type", ft);
    kv_u32(w, "general.quantization_version", 2);
    el_status s = hparams(w);
    if (s == EL_OK) s = tokenizer(w, p->tokenizer_path);
    w->wt = calloc(m->tensors.count ? m->tensors.count : 1, sizeof *w->wt);
    if (s == EL_OK && !w->wt) s = el_errorf(EL_E_NOMEM, "out of memory");
    for (size_t i = 0; s == EL_OK && i < m->tensors.count; i++) {
        const el_tensor *t = &m->tensors.items[i];
        if (skipped(t->name)) continue;
        s = plan_tensor(w, t, &w->wt[w->nt]);
        if (s == EL_OK) w->nt++;
    }
    if (s == EL_OK) build_header(w);
    if (s == EL_OK && (w->kv.oom || w->head.oom)) s = el_errorf(EL_E_NOMEM, "out of memory for the GGUF header");
    return s;
}

el_status el_gguf_write(const char *src, const char *out, const el_gguf_write_params *p,
                        el_gguf_write_stats *stats) {
    el_gguf_write_stats st;
    memset(&st, 0, sizeof st);
    if (p->dtype != EL_DT_NONE && p->dtype != EL_DT_F32 && p->dtype != EL_DT_F16 &&
        p->dtype != EL_DT_BF16 && !el_quant_can_quantize(p->dtype))
        return el_errorf(EL_E_USAGE, "--dtype %s: GGUF output takes f32, f16, bf16, q8_0, q4_0, "
                         "q4_1, q5_0 or q5_1", el_dtype_name(p->dtype));
    el_status s = el_pack_output_check(out, p->write_through);
    if (s != EL_OK) return s;
    writer w;
    memset(&w, 0, sizeof w);
    w.st = &st;
    w.dtype = p->dtype;
    /* A tokenizer.json is opened with the model too (checked against its rows); edgeload
     * reads no tokenizer.model, so that one is only read here. */
    bool json_tok = p->tokenizer_path && ends_with(p->tokenizer_path, ".json");
    el_model_open_params op = {.tokenizer_path = json_tok ? p->tokenizer_path : NULL,
                               .offset = p->src_offset};
    el_arena *a = NULL;
    s = el_model_open(src, &op, &w.m);
    if (s == EL_OK) s = el_pack_output_not_input(out, w.m);
    if (s == EL_OK && !(w.arch = gguf_arch_of(w.m)))
        s = el_errorf(EL_E_UNSUPPORTED, "%s: model family '%s': GGUF output knows llama, mistral, "
                      "qwen2, gemma3, phi3 and gpt2", src, el_model_family(w.m));
    if (s == EL_OK && w.m->image) { /* chunked and encoded: loaded as stored first */
        el_plan plan;
        s = el_pack_load_weights(w.m, EL_DT_NONE, &plan, &a);
    }
    if (s == EL_OK) s = build(&w, p);
    if (s == EL_OK) {
        snprintf(st.arch, sizeof st.arch, "%s", w.arch);
        st.tensors = (uint32_t)w.nt;
        st.kv = (uint32_t)w.n_kv;
        st.header_bytes = w.data_off;
        s = el_pack_output_write(out, p->write_through, job_write, &w, &st.file_bytes);
    }
    free(w.kv.p);
    free(w.head.p);
    free(w.wt);
    free(w.raw);
    free(w.f32);
    free(w.enc);
    el_arena_deinit(a);
    el_model_close(w.m);
    if (stats) *stats = st;
    return s;
}
