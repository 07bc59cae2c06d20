/* arch.c - the decoder architectures (see arch.h): one row each, their families, and the
 * registry of every family (el_families). */
#include "models/arch.h"
#include "loader/model_tok.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Hugging Face's Llama layout, in pieces that Phi-3 and Gemma 3 share. */
#define HF_LAYER "model.layers.%u."
#define HF_TOP                                                                                 \
    [EL_R_EMBED] = "model.embed_tokens.weight", [EL_R_OUT_NORM] = "model.norm.weight",        \
    [EL_R_HEAD] = "lm_head.weight", [EL_R_ATTN_NORM] = HF_LAYER "input_layernorm.weight"
#define HF_QKVO                                                                                \
    [EL_R_Q] = HF_LAYER "self_attn.q_proj.weight", [EL_R_Q_B] = HF_LAYER "self_attn.q_proj.bias", \
    [EL_R_K] = HF_LAYER "self_attn.k_proj.weight", [EL_R_K_B] = HF_LAYER "self_attn.k_proj.bias", \
    [EL_R_V] = HF_LAYER "self_attn.v_proj.weight", [EL_R_V_B] = HF_LAYER "self_attn.v_proj.bias", \
    [EL_R_O] = HF_LAYER "self_attn.o_proj.weight", [EL_R_O_B] = HF_LAYER "self_attn.o_proj.bias"
#define HF_MLP                                                                                 \
    [EL_R_GATE] = HF_LAYER "mlp.gate_proj.weight", [EL_R_UP] = HF_LAYER "mlp.up_proj.weight",  \
    [EL_R_DOWN] = HF_LAYER "mlp.down_proj.weight"
/* Llama, Mistral and Qwen2. */
#define HF_LLAMA_NAMES                                                                         \
    HF_TOP, HF_QKVO, HF_MLP, [EL_R_FFN_NORM] = HF_LAYER "post_attention_layernorm.weight",     \
    [EL_R_GATE_B] = HF_LAYER "mlp.gate_proj.bias", [EL_R_UP_B] = HF_LAYER "mlp.up_proj.bias",  \
    [EL_R_DOWN_B] = HF_LAYER "mlp.down_proj.bias"

/* What every Hugging Face row shares: config keys, no tensor prefix. */
#define HF_KEYS                                                                                \
    .key_dim = "hidden_size", .key_layers = "num_hidden_layers",                               \
    .key_heads = "num_attention_heads", .key_pos = "max_position_embeddings",                  \
    .prefixes = {"", NULL}

#define BPE_TOKENIZERS                                                                         \
    .tok_names = {"tokenizer.json", "vocab.json+merges.txt", "encoder.json+vocab.bpe"},       \
    .tok_what = "tokenizer.json, vocab.json + merges.txt, or encoder.json + vocab.bpe"
#define HF_TOKENIZERS                                                                          \
    .tok_names = {"tokenizer.json", "tokenizer.model"}, .tok_what = "tokenizer.json"

static const el_arch k_llama = {
    HF_KEYS,
    .name = "llama",
    .model_types = {"llama", NULL},
    .names = {HF_LLAMA_NAMES},
    .norm = EL_NORM_RMS,
    .llama2c = true,
    .eps_default = 1e-6f, /* LlamaConfig's */
    .theta_default = 10000.0f,
    .tok_names = {"tokenizer.json", "tokenizer.model", "tok%u.bin", "tokenizer.bin"},
    .tok_what = "tokenizer.json, tok%u.bin or tokenizer.bin",
};

static const el_arch k_mistral = {
    HF_KEYS,
    HF_TOKENIZERS,
    .name = "mistral",
    .model_types = {"mistral", NULL},
    .names = {HF_LLAMA_NAMES},
    .norm = EL_NORM_RMS,
    .window_rule = EL_WIN_ALL,
    .eps_default = 1e-6f,
    .theta_default = 10000.0f,
};

static const el_arch k_qwen2 = {
    HF_KEYS,
    BPE_TOKENIZERS,
    .name = "qwen2",
    .model_types = {"qwen2", NULL},
    .names = {HF_LLAMA_NAMES},
    .norm = EL_NORM_RMS,
    .biases = EL_BIAS_QKV,
    .window_rule = EL_WIN_QWEN2,
    .eps_default = 1e-6f,
    .theta_default = 10000.0f,
};

/* Phi-3: the Llama layout with fused qkv_proj and gate_up_proj. */
static const el_arch k_phi3 = {
    HF_KEYS,
    HF_TOKENIZERS,
    .name = "phi3",
    .model_types = {"phi3", NULL},
    .names = {
        HF_TOP,
        [EL_R_QKV] = HF_LAYER "self_attn.qkv_proj.weight",
        [EL_R_O] = HF_LAYER "self_attn.o_proj.weight",
        [EL_R_FFN_NORM] = HF_LAYER "post_attention_layernorm.weight",
        [EL_R_GATE_UP] = HF_LAYER "mlp.gate_up_proj.weight",
        [EL_R_DOWN] = HF_LAYER "mlp.down_proj.weight",
    },
    .norm = EL_NORM_RMS,
    .window_rule = EL_WIN_ALL,
    .eps_default = 1e-5f,
    .theta_default = 10000.0f,
};

/* Gemma 3 (text): (1 + w) RMSNorm before and after attention and FFN, per-head q/k norms,
 * GeGLU, embeddings times sqrt(dim), local (sliding) and global layers with their own RoPE
 * bases, scores scaled by query_pre_attn_scalar^-1/2. */
static const el_arch k_gemma3 = {
    HF_KEYS,
    HF_TOKENIZERS,
    .name = "gemma3",
    .model_types = {"gemma3_text", NULL},
    .names = {
        HF_TOP, HF_QKVO, HF_MLP,
        [EL_R_Q_NORM] = HF_LAYER "self_attn.q_norm.weight",
        [EL_R_K_NORM] = HF_LAYER "self_attn.k_norm.weight",
        [EL_R_POST_ATTN_NORM] = HF_LAYER "post_attention_layernorm.weight",
        [EL_R_FFN_NORM] = HF_LAYER "pre_feedforward_layernorm.weight",
        [EL_R_POST_FFN_NORM] = HF_LAYER "post_feedforward_layernorm.weight",
    },
    .norm = EL_NORM_RMS_1P,
    .tied_default = true,
    .embed_scale = true,
    .window_rule = EL_WIN_PATTERN,
    .eps_default = 1e-6f,
    .theta_default = 1000000.0f,
    .local_theta_default = 10000.0f,
};

static const el_arch k_gpt2 = {
    .key_dim = "n_embd", .key_layers = "n_layer", .key_heads = "n_head",
    .key_pos = "n_positions",
    .name = "gpt2",
    .model_types = {"gpt2", NULL},
    .prefixes = {"transformer.", "", NULL},
    .names = {
        [EL_R_EMBED] = "wte.weight", [EL_R_POS] = "wpe.weight",
        [EL_R_OUT_NORM] = "ln_f.weight", [EL_R_OUT_NORM_B] = "ln_f.bias",
        [EL_R_HEAD] = "lm_head.weight",
        [EL_R_ATTN_NORM] = "h.%u.ln_1.weight", [EL_R_ATTN_NORM_B] = "h.%u.ln_1.bias",
        [EL_R_QKV] = "h.%u.attn.c_attn.weight", [EL_R_QKV_B] = "h.%u.attn.c_attn.bias",
        [EL_R_O] = "h.%u.attn.c_proj.weight", [EL_R_O_B] = "h.%u.attn.c_proj.bias",
        [EL_R_FFN_NORM] = "h.%u.ln_2.weight", [EL_R_FFN_NORM_B] = "h.%u.ln_2.bias",
        [EL_R_UP] = "h.%u.mlp.c_fc.weight", [EL_R_UP_B] = "h.%u.mlp.c_fc.bias",
        [EL_R_DOWN] = "h.%u.mlp.c_proj.weight", [EL_R_DOWN_B] = "h.%u.mlp.c_proj.bias",
    },
    .norm = EL_NORM_LAYER,
    .learned_pos = true,
    .conv1d = true,
    .tied_default = true,
    .biases = EL_BIAS_QKV | EL_BIAS_O | EL_BIAS_MLP | EL_BIAS_NORM,
    .ffn_mult_default = 4,
    .eps_default = 1e-5f, /* GPT2Config's */
    BPE_TOKENIZERS,
};

el_bias_mask el_arch_bias_of(el_role r) {
    switch (r) {
    case EL_R_QKV_B: case EL_R_Q_B: case EL_R_K_B: case EL_R_V_B: return EL_BIAS_QKV;
    case EL_R_O_B: return EL_BIAS_O;
    case EL_R_GATE_B: case EL_R_UP_B: case EL_R_DOWN_B: return EL_BIAS_MLP;
    case EL_R_OUT_NORM_B: case EL_R_ATTN_NORM_B: case EL_R_FFN_NORM_B: return EL_BIAS_NORM;
    default: return (el_bias_mask)0;
    }
}

bool el_arch_is_conv1d_role(el_role r) {
    return r == EL_R_QKV || r == EL_R_O || r == EL_R_UP || r == EL_R_DOWN;
}

void el_arch_name(char *buf, size_t cap, const char *fmt, uint32_t layer) {
    const char *u = strstr(fmt, "%u");
    if (u)
        snprintf(buf, cap, "%.*s%u%s", (int)(u - fmt), fmt, layer, u + 2);
    else
        snprintf(buf, cap, "%s", fmt);
}

/* name against a format whose only conversion is %u (one or more digits). */
static bool match_fmt(const char *fmt, const char *s) {
    while (*fmt) {
        if (fmt[0] == '%' && fmt[1] == 'u') {
            if (!isdigit((unsigned char)*s)) return false;
            while (isdigit((unsigned char)*s)) s++;
            fmt += 2;
        } else if (*fmt++ != *s++) {
            return false;
        }
    }
    return *s == '\0';
}

bool el_arch_is_conv1d_name(const el_arch *a, const char *name) {
    for (size_t p = 0; p < EL_ARCH_MAX_PREFIX && a->prefixes[p]; p++) {
        size_t pl = strlen(a->prefixes[p]);
        if (strncmp(name, a->prefixes[p], pl)) continue;
        for (int r = EL_R_FIRST_LAYER; r < EL_R_COUNT; r++)
            if (el_arch_is_conv1d_role((el_role)r) && a->names[r] &&
                match_fmt(a->names[r], name + pl))
                return true;
    }
    return false;
}

bool el_arch_matches_type(const el_arch *a, const char *model_type) {
    for (size_t i = 0; i < 4 && a->model_types[i]; i++)
        if (!strcmp(a->model_types[i], model_type)) return true;
    return false;
}

/* Role r's tensor (layer 0) in the file while config key says the model has no such bias. */
static el_status stray_bias(const el_arch *a, const el_model *m, const el_arch_opts *o,
                            el_role r, const char *key) {
    char name[160];
    if (!a->names[r] || (o->biases & el_arch_bias_of(r))) return EL_OK;
    el_arch_name(name, sizeof name, a->names[r], 0);
    if (el_model_find(m, name) >= 0)
        return el_errorf(EL_E_UNSUPPORTED, "%s: tensor %s is present but config %s is false: "
                         "the model as configured would not use it", m->path, name, key);
    return EL_OK;
}

el_status el_arch_check_config(const el_arch *a, const el_model *m, uint32_t n_layers,
                               el_arch_opts *o) {
    const el_config *k = &m->config;
    const char *ha = k->hidden_act;
    memset(o, 0, sizeof *o);
    o->biases = a->biases;
    if (k->bidirectional)
        return el_errorf(EL_E_UNSUPPORTED, "%s: config use_bidirectional_attention is true: "
                         "the decoder runs causal attention only", m->path);
    if (k->softcapping[0])
        return el_errorf(EL_E_UNSUPPORTED, "%s: config %s is set: logit soft-capping is not "
                         "supported", m->path, k->softcapping);
    if (a->conv1d) { /* GPT-2's activation_function */
        if (!ha[0] || !strcmp(ha, "gelu_new") || !strcmp(ha, "gelu_pytorch_tanh"))
            o->act = EL_ACT_GELU_TANH;
        else if (!strcmp(ha, "gelu"))
            o->act = EL_ACT_GELU_ERF;
        else
            return el_errorf(EL_E_UNSUPPORTED, "%s: config activation_function '%s': the %s "
                             "family runs gelu_new / gelu_pytorch_tanh (tanh GELU) and gelu",
                             m->path, ha, a->name);
        return EL_OK;
    }
    if (a->norm == EL_NORM_RMS_1P) { /* Gemma's GeGLU */
        if (ha[0] && strcmp(ha, "gelu_pytorch_tanh") && strcmp(ha, "gelu_new"))
            return el_errorf(EL_E_UNSUPPORTED, "%s: config hidden_activation '%s': the %s "
                             "family runs GeGLU with tanh GELU (gelu_pytorch_tanh) only",
                             m->path, ha, a->name);
        o->act = EL_ACT_GEGLU;
    } else {
        if (ha[0] && strcmp(ha, "silu") && strcmp(ha, "swish"))
            return el_errorf(EL_E_UNSUPPORTED, "%s: config hidden_act '%s': the %s family runs "
                             "SwiGLU (silu) only", m->path, ha, a->name);
        o->act = EL_ACT_SWIGLU;
    }
    if (k->attention_bias) o->biases |= EL_BIAS_QKV | EL_BIAS_O;
    if (k->mlp_bias) o->biases |= EL_BIAS_MLP;
    EL_TRY(stray_bias(a, m, o, EL_R_Q_B, "attention_bias"));
    EL_TRY(stray_bias(a, m, o, EL_R_O_B, "attention_bias"));
    EL_TRY(stray_bias(a, m, o, EL_R_GATE_B, "mlp_bias"));
    /* Sliding-window layers: layer_types when the config lists them, else the
     * architecture's rule (what transformers does for configs without the list). */
    if (!k->sliding_window || a->window_rule == EL_WIN_IGNORED) return EL_OK;
    if (k->n_layer_types && k->n_layer_types != n_layers)
        return el_errorf(EL_E_INVALID, "%s: config layer_types has %u entries for %u layers",
                         m->path, k->n_layer_types, n_layers);
    if (n_layers > 64 * 64)
        return el_errorf(EL_E_UNSUPPORTED, "%s: %u layers (at most %u)", m->path, n_layers,
                         64 * 64);
    const uint32_t pattern = k->sliding_window_pattern ? k->sliding_window_pattern : 6;
    bool any = false;
    for (uint32_t l = 0; l < n_layers; l++) {
        bool sl;
        if (k->n_layer_types)
            sl = (k->sliding_layers[l / 64] >> (l % 64)) & 1;
        else if (a->window_rule == EL_WIN_QWEN2)
            sl = k->use_sliding_window && l >= k->max_window_layers;
        else if (a->window_rule == EL_WIN_PATTERN)
            sl = (l + 1) % pattern != 0;
        else
            sl = true;
        if (sl) o->sliding[l / 64] |= 1ull << (l % 64);
        any |= sl;
    }
    if (any) o->window = k->sliding_window;
    return EL_OK;
}

#define DECODER_FAMILY(var, ar, nm, nobos)                                                    \
    static const el_family var = {                                                             \
        .name = nm,                                                                            \
        .arch = &ar,                                                                           \
        .prompt_without_bos = nobos,                                                           \
        .detect = el_decoder_detect,                                                           \
        .plan = el_decoder_plan,                                                               \
        .open = el_decoder_open,                                                               \
        .close = el_decoder_close,                                                             \
        .session_init = el_decoder_session_init,                                               \
        .forward = el_decoder_forward,                                                         \
        .tokenizer = el_family_tok_get, .tokenizer_load = el_family_tok_load,                  \
    }

DECODER_FAMILY(el_family_llama, k_llama, "llama", false);
DECODER_FAMILY(el_family_mistral, k_mistral, "mistral", false);
DECODER_FAMILY(el_family_qwen2, k_qwen2, "qwen2", false);
DECODER_FAMILY(el_family_phi3, k_phi3, "phi3", false);
DECODER_FAMILY(el_family_gemma3, k_gemma3, "gemma3", false);
DECODER_FAMILY(el_family_gpt2, k_gpt2, "gpt2", true);

/* The registered model families, tried in order by el_model_open: the decoders above, then
 * the encoder. */
extern const el_family el_family_bert; /* models/bert.c */
const el_family *const el_families[] = {
    &el_family_llama, &el_family_mistral, &el_family_qwen2, &el_family_phi3, &el_family_gemma3,
    &el_family_gpt2, &el_family_bert, NULL,
};
