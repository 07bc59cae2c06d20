/* gguf_model.c - a parsed GGUF file as an el_model: the tensor table in row-major shapes
 * (GGUF stores ne[0], the row length, first), names mapped to the Hugging Face names the
 * families bind, and the config from "<arch>.*" metadata. llama-architecture files keep
 * llama.cpp's q/k row order (its converter permutes HF's rotate-half rows into adjacent
 * pairs), which is the llama family's interleaved RoPE: EL_MODEL_ROPE_INTERLEAVED. */
#include "loader/formats/gguf.h"
#include "loader/model_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static el_status file_read(void *ctx, void *dst, size_t n, uint64_t off) {
    return el_file_read_at(ctx, dst, n, off);
}

/* ---- names ---------------------------------------------------------------------------- */

typedef struct name_map {
    const char *gguf;
    const char *hf;
} name_map;

static const name_map k_llama_top[] = {
    {"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"}, {"output", "lm_head"},
};
static const name_map k_llama_blk[] = {
    {"attn_q", "self_attn.q_proj"},     {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},     {"attn_output", "self_attn.o_proj"},
    {"attn_norm", "input_layernorm"},   {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},      {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The HF name of a llama GGUF tensor into out (cap bytes); false if name is not one. */
static bool llama_name(const char *name, char *out, size_t cap) {
    const char *dot = strrchr(name, '.');
    if (!dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias"))) return false;
    size_t base = (size_t)(dot - name);
    int k = -1;
    if (!strncmp(name, "blk.", 4)) {
        const char *p = name + 4;
        unsigned long layer = 0;
        size_t digits = 0;
        while (p[digits] >= '0' && p[digits] <= '9' && digits < 6)
            layer = layer * 10 + (unsigned long)(p[digits++] - '0');
        if (!digits || p[digits] != '.' || (digits > 1 && p[0] == '0')) return false;
        const char *role = p + digits + 1;
        if (dot < role) return false;
        size_t rlen = (size_t)(dot - role);
        for (size_t i = 0; i < COUNT(k_llama_blk); i++)
            if (strlen(k_llama_blk[i].gguf) == rlen && !strncmp(role, k_llama_blk[i].gguf, rlen))
                k = snprintf(out, cap, "model.layers.%lu.%s%s", layer, k_llama_blk[i].hf, dot);
    } else {
        for (size_t i = 0; i < COUNT(k_llama_top); i++)
            if (strlen(k_llama_top[i].gguf) == base && !strncmp(name, k_llama_top[i].gguf, base))
                k = snprintf(out, cap, "%s%s", k_llama_top[i].hf, dot);
    }
    return k > 0 && (size_t)k < cap;
}

/* ---- metadata ------------------------------------------------------------------------- */

static el_status meta_u32(const el_gguf *g, const char *key, bool required, uint32_t *out) {
    const el_gguf_kv *kv = el_gguf_find(g, key);
    if (!kv) {
        if (!required) return EL_OK;
        return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected an unsigned integer, got "
                         "nothing (the key is missing)", g->src.name, key);
    }
    const el_gguf_value *v = &kv->v;
    bool is_u = v->type == EL_GGUF_U8 || v->type == EL_GGUF_U16 || v->type == EL_GGUF_U32 ||
                v->type == EL_GGUF_U64;
    bool is_i = v->type == EL_GGUF_I8 || v->type == EL_GGUF_I16 || v->type == EL_GGUF_I32 ||
                v->type == EL_GGUF_I64;
    if (!is_u && !is_i)
        return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected an unsigned integer, got "
                         "a %s", g->src.name, key, el_gguf_value_type_name(v->type));
    if ((is_i && (v->num.i < 0 || v->num.i > (int64_t)UINT32_MAX)) ||
        (is_u && v->num.u > UINT32_MAX))
        return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected 0..%u, got %lld",
                         g->src.name, key, UINT32_MAX,
                         is_i ? (long long)v->num.i : (long long)v->num.u);
    *out = is_i ? (uint32_t)v->num.i : (uint32_t)v->num.u;
    return EL_OK;
}

static el_status meta_f64(const el_gguf *g, const char *key, bool required, double *out) {
    const el_gguf_kv *kv = el_gguf_find(g, key);
    if (!kv) {
        if (!required) return EL_OK;
        return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected a float, got nothing (the "
                         "key is missing)", g->src.name, key);
    }
    if (kv->v.type != EL_GGUF_F32 && kv->v.type != EL_GGUF_F64)
        return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected a float, got a %s",
                         g->src.name, key, el_gguf_value_type_name(kv->v.type));
    if (!(kv->v.num.f > 0 && kv->v.num.f < 1e300))
        return el_errorf(EL_E_INVALID, "%s: metadata '%s': expected a positive finite number, "
                         "got %g", g->src.name, key, kv->v.num.f);
    *out = kv->v.num.f;
    return EL_OK;
}

/* The string value of key, or NULL when absent / not a string. */
static const char *meta_str(const el_gguf *g, const char *key) {
    const el_gguf_kv *kv = el_gguf_find(g, key);
    if (!kv || kv->v.type != EL_GGUF_STRING || strlen(kv->v.str) != kv->v.len) return NULL;
    return kv->v.str;
}

static void refuse(el_gguf *g, el_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(el_gguf *g, el_status s, const char *fmt, ...) {
    if (g->refuse[0]) return; /* the first reason stands */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->refuse, sizeof g->refuse, fmt, ap);
    va_end(ap);
    g->refuse_status = s;
}

/* el_config from llama.* metadata; the llama family checks it against the tensors. */
static el_status llama_config(el_model *m, el_gguf *g) {
    el_config *c = &m->config;
    el_status s;
    uint32_t key_len = 0, value_len = 0, rope_dim = 0, u = 0;
    if ((s = meta_u32(g, "llama.embedding_length", true, &c->hidden_size)) != EL_OK ||
        (s = meta_u32(g, "llama.feed_forward_length", true, &c->intermediate_size)) != EL_OK ||
        (s = meta_u32(g, "llama.block_count", true, &c->num_layers)) != EL_OK ||
        (s = meta_u32(g, "llama.attention.head_count", true, &c->num_heads)) != EL_OK ||
        (s = meta_u32(g, "llama.attention.head_count_kv", false, &c->num_kv_heads)) != EL_OK ||
        (s = meta_u32(g, "llama.context_length", true, &c->max_positions)) != EL_OK ||
        (s = meta_u32(g, "llama.attention.key_length", false, &key_len)) != EL_OK ||
        (s = meta_u32(g, "llama.attention.value_length", false, &value_len)) != EL_OK ||
        (s = meta_u32(g, "llama.rope.dimension_count", false, &rope_dim)) != EL_OK ||
        (s = meta_f64(g, "llama.attention.layer_norm_rms_epsilon", true, &c->norm_eps)) != EL_OK ||
        (s = meta_f64(g, "llama.rope.freq_base", false, &c->rope_theta)) != EL_OK)
        return s;
    c->head_dim = key_len;
    if (value_len && value_len != key_len)
        refuse(g, EL_E_UNSUPPORTED, "%s: metadata 'llama.attention.value_length' %u differs "
               "from key_length %u: not supported", g->src.name, value_len, key_len);
    uint32_t hd = key_len ? key_len : (c->num_heads ? c->hidden_size / c->num_heads : 0);
    if (rope_dim && rope_dim != hd)
        refuse(g, EL_E_UNSUPPORTED, "%s: metadata 'llama.rope.dimension_count' %u: partial "
               "RoPE (head size %u) is not supported", g->src.name, rope_dim, hd);
    const char *scaling = meta_str(g, "llama.rope.scaling.type");
    if (el_gguf_find(g, "llama.rope.scaling.type") && (!scaling || strcmp(scaling, "none")))
        refuse(g, EL_E_UNSUPPORTED, "%s: metadata 'llama.rope.scaling.type' '%s': scaled RoPE "
               "is not supported", g->src.name, scaling ? scaling : "(not a string)");
    if (el_gguf_find(g, "llama.rope.scale_linear"))
        refuse(g, EL_E_UNSUPPORTED, "%s: metadata 'llama.rope.scale_linear': scaled RoPE is "
               "not supported", g->src.name);
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, "rope_freqs.weight"))
            refuse(g, EL_E_UNSUPPORTED, "%s: tensor 'rope_freqs.weight': scaled RoPE "
                   "(Llama 3.1-style frequency factors) is not supported", g->src.name);
    long e = el_model_find(m, "model.embed_tokens.weight");
    if (e >= 0 && m->tensors.items[e].ndim == 2) {
        uint64_t rows = m->tensors.items[e].shape[0];
        c->vocab_size = rows > UINT32_MAX ? UINT32_MAX : (uint32_t)rows;
    } else if ((s = meta_u32(g, "llama.vocab_size", false, &c->vocab_size)) != EL_OK) {
        return s;
    }
    c->tie_word_embeddings = el_model_find(m, "lm_head.weight") < 0;
    c->has_tie_word_embeddings = true;
    if ((s = meta_u32(g, "tokenizer.ggml.bos_token_id", false, &u)) != EL_OK) return s;
    if (el_gguf_find(g, "tokenizer.ggml.bos_token_id")) c->bos_token_id = u;
    if ((s = meta_u32(g, "tokenizer.ggml.eos_token_id", false, &u)) != EL_OK) return s;
    if (el_gguf_find(g, "tokenizer.ggml.eos_token_id")) c->eos_token_id = u;
    if ((s = meta_u32(g, "tokenizer.ggml.padding_token_id", false, &u)) != EL_OK) return s;
    if (el_gguf_find(g, "tokenizer.ggml.padding_token_id")) c->pad_token_id = u;
    snprintf(c->model_type, sizeof c->model_type, "llama");
    snprintf(c->architecture, sizeof c->architecture, "LlamaForCausalLM");
    snprintf(c->hidden_act, sizeof c->hidden_act, "silu");
    m->has_config = true;
    m->flags |= EL_MODEL_ROPE_INTERLEAVED;
    return EL_OK;
}

/* ---- the model ------------------------------------------------------------------------ */

static int cmp_el_name(const void *a, const void *b) {
    return strcmp((*(el_gguf_tensor *const *)a)->el_name, (*(el_gguf_tensor *const *)b)->el_name);
}

el_status el_gguf_model_open(el_model *m) {
    el_file *f = &m->files[0];
    el_gguf_source src = {file_read, f, f->size, f->path};
    el_gguf *g = NULL;
    el_status s = el_gguf_parse(&src, &g);
    if (s != EL_OK) return s;
    m->gguf = g;
    snprintf(m->format, sizeof m->format, "gguf");
    const el_gguf_kv *akv = el_gguf_find(g, "general.architecture");
    if (!akv || akv->v.type != EL_GGUF_STRING)
        return el_errorf(EL_E_INVALID, "%s: metadata 'general.architecture': expected a string, "
                         "got %s", f->path, akv ? el_gguf_value_type_name(akv->v.type) : "nothing");
    const char *arch = meta_str(g, "general.architecture");
    bool llama = arch && !strcmp(arch, "llama");
    if (!llama) {
        char shown[80];
        el_json_printable(akv->v.str, (size_t)akv->v.len, shown, sizeof shown);
        refuse(g, EL_E_UNSUPPORTED, "%s: architecture '%s' is not supported yet (supported: "
               "llama); inspect reads it, plan/load/run do not", f->path, shown);
    }

    /* The table: HF names for llama; GGUF names otherwise (and for tensors llama does not
     * know, which then refuse to plan). */
    char name[EL_GGUF_NAME_MAX + 64];
    for (size_t i = 0; i < g->n_tensors; i++) {
        el_gguf_tensor *t = &g->tensors[i];
        bool mapped = llama && llama_name(t->name, name, sizeof name);
        if (!mapped) snprintf(name, sizeof name, "%s", t->name);
        if (llama && !mapped && strcmp(t->name, "rope_freqs.weight"))
            refuse(g, EL_E_UNSUPPORTED, "%s: tensor '%s' is not part of the llama architecture "
                   "as edgeload runs it", f->path, t->name);
        if (!(t->el_name = strdup(name)))
            return el_errorf(EL_E_NOMEM, "%s: out of memory", f->path);
        el_tensor e;
        memset(&e, 0, sizeof e);
        e.name = name;
        e.dtype = el_gguf_dtype(t->type);
        e.loaded_dtype = e.dtype;
        e.ndim = t->n_dims;
        for (uint32_t d = 0; d < t->n_dims; d++) e.shape[d] = t->ne[t->n_dims - 1 - d];
        e.nbytes = t->nbytes;
        e.file = 0;
        e.offset = t->offset;
        if ((s = el_tensor_table_push(&m->tensors, &e)) != EL_OK) return s;
    }
    /* The lookup by table name; mapping can make two names one ("output.weight" and a
     * literal "lm_head.weight"). */
    g->by_el_name = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *g->by_el_name);
    if (!g->by_el_name) return el_errorf(EL_E_NOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < g->n_tensors; i++) g->by_el_name[i] = &g->tensors[i];
    qsort(g->by_el_name, g->n_tensors, sizeof *g->by_el_name, cmp_el_name);
    for (size_t i = 1; i < g->n_tensors; i++)
        if (!strcmp(g->by_el_name[i - 1]->el_name, g->by_el_name[i]->el_name))
            return el_errorf(EL_E_INVALID, "%s: tensor names: two tensors map to '%s'", f->path,
                             g->by_el_name[i]->el_name);
    return llama ? llama_config(m, g) : EL_OK;
}

el_status el_gguf_plan_check(const el_model *m) {
    const el_gguf *g = m->gguf;
    if (!g) return EL_OK;
    if (g->refuse[0]) return el_error_set(g->refuse_status, g->refuse);
    for (size_t i = 0; i < g->n_tensors; i++) {
        const el_gguf_tensor *t = &g->tensors[i];
        if (el_gguf_dtype(t->type) == EL_DT_NONE)
            return el_errorf(EL_E_UNSUPPORTED, "%s: tensor '%s': GGML type %s cannot be loaded "
                             "(loadable: F32, F16, BF16, F64, I8..I64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)", g->src.name,
                             t->name, el_gguf_type_name(t->type));
    }
    return EL_OK;
}

const char *el_gguf_tensor_type_name(const el_model *m, size_t i) {
    if (i >= m->tensors.count) return "?";
    const el_tensor *t = &m->tensors.items[i];
    if (m->gguf && m->gguf->by_el_name && t->dtype == EL_DT_NONE) {
        el_gguf_tensor key = {.el_name = t->name}, *kp = &key;
        el_gguf_tensor **hit = bsearch(&kp, m->gguf->by_el_name, m->gguf->n_tensors,
                                       sizeof *hit, cmp_el_name);
        if (hit) return el_gguf_type_name((*hit)->type);
    }
    return el_dtype_name(t->dtype);
}
