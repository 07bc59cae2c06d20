/* gguf_model.c - a parsed GGUF file as an el_model: the tensor table in row-major shapes
 * (GGUF stores ne[0], the row length, first), names mapped to the Hugging Face names the
 * families bind, and the config from "<arch>.*" metadata, for llama, qwen2 and gemma3.
 * llama-architecture files keep llama.cpp's q/k row order (its converter permutes HF's
 * rotate-half rows into adjacent pairs), which is interleaved RoPE:
 * EL_MODEL_ROPE_INTERLEAVED. Gemma's converter stores every norm weight plus one:
 * EL_MODEL_NORM_PLUS_ONE (the decoder then multiplies by w, not 1 + w). */
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
static const name_map k_gpt2_top[] = {
    {"token_embd", "wte"}, {"position_embd", "wpe"}, {"output_norm", "ln_f"},
    {"output", "lm_head"},
};
static const name_map k_llama_blk[] = {
    {"attn_q", "self_attn.q_proj"},     {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},     {"attn_output", "self_attn.o_proj"},
    {"attn_norm", "input_layernorm"},   {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},      {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
/* Gemma 3: norms before and after each block and per-head q/k norms. */
static const name_map k_gemma3_blk[] = {
    {"attn_q", "self_attn.q_proj"},         {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},         {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},    {"attn_k_norm", "self_attn.k_norm"},
    {"attn_norm", "input_layernorm"},       {"post_attention_norm", "post_attention_layernorm"},
    {"ffn_norm", "pre_feedforward_layernorm"}, {"post_ffw_norm", "post_feedforward_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},          {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
/* Phi-3: fused q|k|v and gate|up, as the HF checkpoint has them. */
static const name_map k_phi3_blk[] = {
    {"attn_qkv", "self_attn.qkv_proj"},  {"attn_output", "self_attn.o_proj"},
    {"attn_norm", "input_layernorm"},    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_up", "mlp.gate_up_proj"},      {"ffn_down", "mlp.down_proj"},
};
/* GPT-2: the converter stores the Conv1D weights transposed, as rows (EL_MODEL_LINEAR_ROWS). */
static const name_map k_gpt2_blk[] = {
    {"attn_norm", "ln_1"},        {"attn_qkv", "attn.c_attn"}, {"attn_output", "attn.c_proj"},
    {"ffn_norm", "ln_2"},         {"ffn_up", "mlp.c_fc"},      {"ffn_down", "mlp.c_proj"},
};
/* BERT: the HF BertModel names (llama.cpp's converter drops the pooler). */
static const name_map k_bert_top[] = {
    {"token_embd", "embeddings.word_embeddings"}, {"token_types", "embeddings.token_type_embeddings"},
    {"position_embd", "embeddings.position_embeddings"}, {"token_embd_norm", "embeddings.LayerNorm"},
};
static const name_map k_bert_blk[] = {
    {"attn_q", "attention.self.query"},   {"attn_k", "attention.self.key"},
    {"attn_v", "attention.self.value"},   {"attn_output", "attention.output.dense"},
    {"attn_output_norm", "attention.output.LayerNorm"}, {"ffn_up", "intermediate.dense"},
    {"ffn_down", "output.dense"},          {"layer_output_norm", "output.LayerNorm"},
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A GGUF general.architecture edgeload runs: its tensor names and the config it becomes. */
typedef struct gguf_arch {
    const char *name;         /* general.architecture, also the metadata key prefix */
    const char *model_type;   /* el_config.model_type: picks the family */
    const char *hf_class;     /* el_config.architecture */
    const char *act;          /* el_config.hidden_act */
    const name_map *blk;      /* block tensors */
    size_t n_blk;
    uint32_t flags;           /* EL_MODEL_*: llama's q/k rows are permuted into pairs;
                                 Gemma's converter adds 1 to every norm weight; GPT-2's
                                 Conv1D weights are rows already */
    const name_map *top;      /* tensors outside the blocks */
    size_t n_top;
    const char *blk_prefix;   /* before "<layer>.<role>" in the HF name of a block tensor */
    const char *eps_key;      /* the norm epsilon's key after "<arch>." */
} gguf_arch;

#define LLAMA_NAMES k_llama_top, COUNT(k_llama_top), "model.layers.", \
    "attention.layer_norm_rms_epsilon"
static const gguf_arch k_archs[] = {
    {"llama", "llama", "LlamaForCausalLM", "silu", k_llama_blk, COUNT(k_llama_blk),
     EL_MODEL_ROPE_INTERLEAVED, LLAMA_NAMES},
    {"qwen2", "qwen2", "Qwen2ForCausalLM", "silu", k_llama_blk, COUNT(k_llama_blk), 0,
     LLAMA_NAMES},
    {"gemma3", "gemma3_text", "Gemma3ForCausalLM", "gelu_pytorch_tanh", k_gemma3_blk,
     COUNT(k_gemma3_blk), EL_MODEL_NORM_PLUS_ONE, LLAMA_NAMES},
    {"phi3", "phi3", "Phi3ForCausalLM", "silu", k_phi3_blk, COUNT(k_phi3_blk), 0, LLAMA_NAMES},
    {"gpt2", "gpt2", "GPT2LMHeadModel", "gelu_new", k_gpt2_blk, COUNT(k_gpt2_blk),
     EL_MODEL_LINEAR_ROWS, k_gpt2_top, COUNT(k_gpt2_top), "h.",
     "attention.layer_norm_epsilon"},
    {"bert", "bert", "BertModel", "gelu", k_bert_blk, COUNT(k_bert_blk), 0, k_bert_top,
     COUNT(k_bert_top), "encoder.layer.", "attention.layer_norm_epsilon"},
};
#define SUPPORTED "llama, qwen2, gemma3, phi3, gpt2, bert"

/* Maps a tensor name of architecture a between its GGUF and HF forms into out (cap bytes):
 * to_hf from GGUF ("blk.N.<role>.weight") to HF ("<blk_prefix>N.<hf role>.weight"), else
 * the other way. False if name is not one of a's. */
static bool map_name(const gguf_arch *a, const char *name, bool to_hf, char *out, size_t cap) {
    const char *dot = strrchr(name, '.');
    if (!dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias"))) return false;
    const char *from_prefix = to_hf ? "blk." : a->blk_prefix, *to_prefix = to_hf ? a->blk_prefix : "blk.";
    size_t pl = strlen(from_prefix), base = (size_t)(dot - name);
    int k = -1;
    if (!strncmp(name, from_prefix, pl)) {
        const char *p = name + pl;
        unsigned long layer = 0;
        size_t digits = 0;
        while (p[digits] >= '0' && p[digits] <= '9' && digits < 6)
            layer = layer * 10 + (unsigned long)(p[digits++] - '0');
        if (!digits || p[digits] != '.' || (digits > 1 && p[0] == '0')) return false;
        const char *role = p + digits + 1;
        if (dot < role) return false;
        size_t rlen = (size_t)(dot - role);
        for (size_t i = 0; i < a->n_blk; i++) {
            const char *from = to_hf ? a->blk[i].gguf : a->blk[i].hf;
            const char *to = to_hf ? a->blk[i].hf : a->blk[i].gguf;
            if (strlen(from) == rlen && !strncmp(role, from, rlen))
                k = snprintf(out, cap, "%s%lu.%s%s", to_prefix, layer, to, dot);
        }
    } else {
        for (size_t i = 0; i < a->n_top; i++) {
            const char *from = to_hf ? a->top[i].gguf : a->top[i].hf;
            const char *to = to_hf ? a->top[i].hf : a->top[i].gguf;
            if (strlen(from) == base && !strncmp(name, from, base))
                k = snprintf(out, cap, "%s%s", to, dot);
        }
    }
    return k > 0 && (size_t)k < cap;
}

static bool hf_name(const gguf_arch *a, const char *name, char *out, size_t cap) {
    return map_name(a, name, true, out, cap);
}

bool el_gguf_name_from_hf(const char *arch, const char *hf, char *out, size_t cap) {
    for (size_t i = 0; i < COUNT(k_archs); i++) {
        const gguf_arch *a = &k_archs[i];
        if (strcmp(arch, a->name)) continue;
        if (!strcmp(a->name, "gpt2") && !strncmp(hf, "transformer.", 12)) hf += 12;
        return map_name(a, hf, false, out, cap);
    }
    return false;
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

/* Per-frequency RoPE factor tensors: refused by name, never mapped. */
static bool rope_factors(const char *name) {
    return !strcmp(name, "rope_freqs.weight") || !strcmp(name, "rope_factors_long.weight") ||
           !strcmp(name, "rope_factors_short.weight");
}

/* "<arch>.<key>" into buf. */
static const char *akey(char *buf, size_t cap, const gguf_arch *a, const char *key) {
    snprintf(buf, cap, "%s.%s", a->name, key);
    return buf;
}

/* el_config from "<arch>.*" metadata; the family checks it against the tensors. */
static el_status arch_config(el_model *m, el_gguf *g, const gguf_arch *a) {
    el_config *c = &m->config;
    el_status s;
    uint32_t key_len = 0, value_len = 0, rope_dim = 0, u = 0;
    char k[12][96];
    if ((s = meta_u32(g, akey(k[0], 96, a, "embedding_length"), true, &c->hidden_size)) != EL_OK ||
        (s = meta_u32(g, akey(k[1], 96, a, "feed_forward_length"), true,
                      &c->intermediate_size)) != EL_OK ||
        (s = meta_u32(g, akey(k[2], 96, a, "block_count"), true, &c->num_layers)) != EL_OK ||
        (s = meta_u32(g, akey(k[3], 96, a, "attention.head_count"), true, &c->num_heads)) !=
            EL_OK ||
        (s = meta_u32(g, akey(k[4], 96, a, "attention.head_count_kv"), false,
                      &c->num_kv_heads)) != EL_OK ||
        (s = meta_u32(g, akey(k[5], 96, a, "context_length"), true, &c->max_positions)) !=
            EL_OK ||
        (s = meta_u32(g, akey(k[6], 96, a, "attention.key_length"), false, &key_len)) != EL_OK ||
        (s = meta_u32(g, akey(k[7], 96, a, "attention.value_length"), false, &value_len)) !=
            EL_OK ||
        (s = meta_u32(g, akey(k[8], 96, a, "rope.dimension_count"), false, &rope_dim)) != EL_OK ||
        (s = meta_f64(g, akey(k[9], 96, a, a->eps_key), true,
                      &c->norm_eps)) != EL_OK ||
        (s = meta_f64(g, akey(k[10], 96, a, "rope.freq_base"), false, &c->rope_theta)) != EL_OK ||
        (s = meta_u32(g, akey(k[11], 96, a, "attention.sliding_window"), false,
                      &c->sliding_window)) != EL_OK)
        return s;
    c->head_dim = key_len;
    if (value_len && value_len != key_len)
        refuse(g, EL_E_UNSUPPORTED, "%s: metadata '%s' %u differs from key_length %u: not "
               "supported", g->src.name, k[7], value_len, key_len);
    uint32_t hd = key_len ? key_len : (c->num_heads ? c->hidden_size / c->num_heads : 0);
    if (rope_dim && rope_dim != hd)
        refuse(g, EL_E_UNSUPPORTED, "%s: metadata '%s' %u: partial RoPE (head size %u) is not "
               "supported", g->src.name, k[8], rope_dim, hd);
    char sk[96], fk[96];
    const char *scaling = meta_str(g, akey(sk, sizeof sk, a, "rope.scaling.type"));
    double factor = 0;
    if (el_gguf_find(g, sk) && (!scaling || strcmp(scaling, "none"))) {
        /* Linear scaling (Gemma 3 4B+ global layers); others are refused. */
        if (scaling && !strcmp(scaling, "linear") &&
            (s = meta_f64(g, akey(fk, sizeof fk, a, "rope.scaling.factor"), true, &factor)) ==
                EL_OK) {
            snprintf(c->rope_type, sizeof c->rope_type, "linear");
            c->rope_factor = factor;
        } else {
            refuse(g, EL_E_UNSUPPORTED, "%s: metadata '%s' '%s': this RoPE scaling is not "
                   "supported (linear is)", g->src.name, sk, scaling ? scaling : "(not a string)");
        }
    }
    if (el_gguf_find(g, akey(sk, sizeof sk, a, "rope.scale_linear")))
        refuse(g, EL_E_UNSUPPORTED, "%s: metadata '%s': scaled RoPE is not supported",
               g->src.name, sk);
    static const char *const caps[] = {"final_logit_softcapping", "attn_logit_softcapping"};
    for (size_t i = 0; i < 2; i++)
        if (el_gguf_find(g, akey(sk, sizeof sk, a, caps[i])))
            refuse(g, EL_E_UNSUPPORTED, "%s: metadata '%s': logit soft-capping is not "
                   "supported", g->src.name, sk);
    for (size_t i = 0; i < g->n_tensors; i++)
        if (rope_factors(g->tensors[i].name))
            refuse(g, EL_E_UNSUPPORTED, "%s: tensor '%s': scaled RoPE (Llama 3.1-style "
                   "frequency factors, Phi-3 LongRoPE) is not supported", g->src.name,
                   g->tensors[i].name);
    char embed[64];
    if (!hf_name(a, "token_embd.weight", embed, sizeof embed)) embed[0] = 0;
    long e = el_model_find(m, embed);
    if (e >= 0 && m->tensors.items[e].ndim == 2) {
        uint64_t rows = m->tensors.items[e].shape[0];
        c->vocab_size = rows > UINT32_MAX ? UINT32_MAX : (uint32_t)rows;
    } else if ((s = meta_u32(g, akey(sk, sizeof sk, a, "vocab_size"), false, &c->vocab_size)) !=
               EL_OK) {
        return s;
    }
    if (!strcmp(a->name, "bert")) {
        /* token types: the rows of their table; an encoder attends both ways */
        long tt = el_model_find(m, "embeddings.token_type_embeddings.weight");
        if (tt >= 0 && m->tensors.items[tt].ndim == 2 && m->tensors.items[tt].shape[0] <= 65536)
            c->type_vocab_size = (uint32_t)m->tensors.items[tt].shape[0];
        const el_gguf_kv *causal = el_gguf_find(g, "bert.attention.causal");
        if (causal && (causal->v.type != EL_GGUF_BOOL || causal->v.num.u))
            refuse(g, EL_E_UNSUPPORTED, "%s: metadata 'bert.attention.causal': a causal BERT "
                   "is not supported", g->src.name);
    }
    if (!strcmp(a->name, "llama")) { /* optional biases: llama.cpp's llama takes them when present */
        c->attention_bias = el_model_find(m, "model.layers.0.self_attn.q_proj.bias") >= 0;
        c->mlp_bias = el_model_find(m, "model.layers.0.mlp.gate_proj.bias") >= 0;
    }
    c->tie_word_embeddings = el_model_find(m, "lm_head.weight") < 0;
    c->has_tie_word_embeddings = true;
    if ((s = meta_u32(g, "tokenizer.ggml.bos_token_id", false, &u)) != EL_OK) return s;
    if (el_gguf_find(g, "tokenizer.ggml.bos_token_id")) c->bos_token_id = u;
    if ((s = meta_u32(g, "tokenizer.ggml.eos_token_id", false, &u)) != EL_OK) return s;
    if (el_gguf_find(g, "tokenizer.ggml.eos_token_id")) c->eos_token_id = u;
    if ((s = meta_u32(g, "tokenizer.ggml.padding_token_id", false, &u)) != EL_OK) return s;
    if (el_gguf_find(g, "tokenizer.ggml.padding_token_id")) c->pad_token_id = u;
    snprintf(c->model_type, sizeof c->model_type, "%s", a->model_type);
    snprintf(c->architecture, sizeof c->architecture, "%s", a->hf_class);
    snprintf(c->hidden_act, sizeof c->hidden_act, "%s", a->act);
    m->has_config = true;
    m->flags |= a->flags;
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
    const char *arch_name = meta_str(g, "general.architecture");
    const gguf_arch *arch = NULL;
    for (size_t i = 0; arch_name && i < COUNT(k_archs); i++)
        if (!strcmp(arch_name, k_archs[i].name)) arch = &k_archs[i];
    if (!arch) {
        char shown[80];
        el_json_printable(akv->v.str, (size_t)akv->v.len, shown, sizeof shown);
        refuse(g, EL_E_UNSUPPORTED, "%s: architecture '%s' is not supported yet (supported: "
               SUPPORTED "); inspect reads it, plan/load/run do not", f->path, shown);
    }

    /* The table: HF names for a known architecture; GGUF names otherwise (and for tensors
     * it does not know, which then refuse to plan). */
    char name[EL_GGUF_NAME_MAX + 64];
    for (size_t i = 0; i < g->n_tensors; i++) {
        el_gguf_tensor *t = &g->tensors[i];
        bool mapped = arch && hf_name(arch, t->name, name, sizeof name);
        if (!mapped) snprintf(name, sizeof name, "%s", t->name);
        if (arch && !mapped && !rope_factors(t->name))
            refuse(g, EL_E_UNSUPPORTED, "%s: tensor '%s' is not part of the %s architecture "
                   "as edgeload runs it", f->path, t->name, arch->name);
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
    return arch ? arch_config(m, g, arch) : EL_OK;
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
