/* arch.h - decoder architectures as data (internal): which tensors a model has (by role,
 * with their names), which norm, activation and positions it uses, and what its config may
 * ask for. models/decoder.c runs every one of them; models/arch.c holds the table. Adding
 * an architecture is a row in that table (docs/ARCHITECTURES.md). */
#ifndef EL_MODELS_ARCH_H
#define EL_MODELS_ARCH_H

#include "loader/model_impl.h"
#include "kernels/ops.h"

/* Tensor roles. Model-level roles come first; layer roles' names take the layer index. */
typedef enum el_role {
    EL_R_EMBED,       /* [vocab, dim] token embedding */
    EL_R_POS,         /* [max_pos, dim] learned positions */
    EL_R_OUT_NORM,    /* [dim] final norm weight */
    EL_R_OUT_NORM_B,  /* [dim] its bias (LayerNorm) */
    EL_R_HEAD,        /* [vocab, dim] classifier (absent when tied) */
    EL_R_FIRST_LAYER,
    EL_R_ATTN_NORM = EL_R_FIRST_LAYER, /* [dim] */
    EL_R_ATTN_NORM_B, /* [dim] */
    EL_R_QKV,         /* [q_dim + 2 kv_dim, dim] fused q | k | v rows */
    EL_R_QKV_B,       /* [q_dim + 2 kv_dim] */
    EL_R_Q, EL_R_Q_B, /* [q_dim, dim], [q_dim] */
    EL_R_K, EL_R_K_B, /* [kv_dim, dim], [kv_dim] */
    EL_R_V, EL_R_V_B, /* [kv_dim, dim], [kv_dim] */
    EL_R_Q_NORM,      /* [head_dim] per-head norm of q (Gemma 3) */
    EL_R_K_NORM,      /* [head_dim] per-head norm of k */
    EL_R_O, EL_R_O_B, /* [dim, q_dim], [dim] */
    EL_R_POST_ATTN_NORM, /* [dim] norm of the attention output before the residual add */
    EL_R_FFN_NORM,    /* [dim] */
    EL_R_FFN_NORM_B,  /* [dim] */
    EL_R_GATE_UP,           /* [2 hidden, dim] fused gate | up rows (Phi-3) */
    EL_R_GATE, EL_R_GATE_B, /* [hidden, dim], [hidden] (gated FFNs) */
    EL_R_UP, EL_R_UP_B,     /* [hidden, dim], [hidden] */
    EL_R_DOWN, EL_R_DOWN_B, /* [dim, hidden], [dim] */
    EL_R_POST_FFN_NORM,     /* [dim] norm of the FFN output before the residual add */
    EL_R_COUNT
} el_role;

/* Groups of optional biases. */
typedef enum el_bias_mask {
    EL_BIAS_QKV = 1u << 0,  /* q, k, v (or fused qkv) */
    EL_BIAS_O = 1u << 1,    /* attention output */
    EL_BIAS_MLP = 1u << 2,  /* gate, up, down */
    EL_BIAS_NORM = 1u << 3, /* LayerNorm biases */
} el_bias_mask;

/* Which layers attend within config sliding_window (when set). */
typedef enum el_window_rule {
    EL_WIN_IGNORED, /* the architecture has no window (transformers ignores the key) */
    EL_WIN_ALL,     /* every layer (Mistral, Phi-3) */
    EL_WIN_QWEN2,   /* with use_sliding_window, layers from max_window_layers on */
    EL_WIN_PATTERN, /* every layer but each sliding_window_pattern-th (Gemma 3; default 6) */
} el_window_rule;

/* What one model's config selects of its architecture (el_arch_check_config). */
typedef struct el_arch_opts {
    el_act_kind act;
    uint32_t biases;       /* el_bias_mask present */
    uint32_t window;       /* sliding window in tokens (0 = none) */
    uint64_t sliding[64];  /* bit l: layer l attends within the window (layer_types wins) */
} el_arch_opts;

#define EL_ARCH_MAX_PREFIX 3
#define EL_ARCH_MAX_TOK 4

typedef struct el_arch {
    const char *name;                  /* "llama", ...: the family name */
    const char *model_types[4];        /* config model_type values it runs, NULL-ended */
    const char *prefixes[EL_ARCH_MAX_PREFIX]; /* tensor name prefixes tried, NULL-ended */
    const char *names[EL_R_COUNT];     /* tensor names by role (NULL: no such role) */
    el_norm_kind norm;
    bool learned_pos;                  /* else RoPE */
    bool conv1d;                       /* projections stored [in, out]: placed transposed */
    bool llama2c;                      /* also runs llama2.c checkpoints */
    bool tied_default;                 /* tied unless the config says otherwise */
    bool embed_scale;                  /* embeddings times sqrt(dim) (Gemma) */
    el_window_rule window_rule;
    float local_theta_default;         /* sliding layers' RoPE base when it differs (0: same) */
    uint32_t biases;                   /* el_bias_mask always present */
    uint32_t ffn_mult_default;         /* FFN width = this x dim when unset; 0 = required */
    float eps_default;
    float theta_default;
    const char *key_dim, *key_layers, *key_heads, *key_pos; /* config keys, for messages */
    const char *tok_names[EL_ARCH_MAX_TOK]; /* side files tried (%u: vocab size) */
    const char *tok_what;              /* for "no tokenizer found" (%u: vocab size) */
} el_arch;

/* A role's tensor name for a layer: fmt (at most one %u) with layer in place of %u. */
void el_arch_name(char *buf, size_t cap, const char *fmt, uint32_t layer);
/* The bias group a role belongs to (0: not a bias). */
el_bias_mask el_arch_bias_of(el_role r);
/* True for roles stored as Conv1D by conv1d architectures (fused QKV, O, up, down). */
bool el_arch_is_conv1d_role(el_role r);
/* True if name is one of a's Conv1D tensors (any layer, any of its prefixes). */
bool el_arch_is_conv1d_name(const el_arch *a, const char *name);
bool el_arch_matches_type(const el_arch *a, const char *model_type);
/* What the config asks for, checked against what a runs: the activation, the optional
 * biases present, the layers with a sliding window; refuses by name what the decoder does
 * not implement. */
el_status el_arch_check_config(const el_arch *a, const el_model *m, uint32_t n_layers,
                               el_arch_opts *o);

/* The decoder's family hooks (models/decoder.c), shared by every architecture's family. */
bool el_decoder_detect(const el_family *f, const el_model *m);
el_status el_decoder_plan(const el_model *m, const el_plan_params *p, uint64_t *kv_bytes,
                          uint64_t *act_bytes, uint64_t *scratch_bytes);
el_status el_decoder_open(el_model *m);
void el_decoder_close(el_model *m);
/* The model's chat template into m->chat (models/chat.c; open time, may malloc). */
el_status el_model_chat_open(el_model *m);
void el_model_chat_close(el_model *m);
el_status el_decoder_session_init(el_session *s);
el_status el_decoder_forward(el_session *s, const int32_t *ids, size_t n, bool want_logits);

#endif /* EL_MODELS_ARCH_H */
