/* decoder.c - the one decoder-only transformer, written once against the op table
 * (kernels/ops.h), and the architectures it runs, described as data (models/arch.c):
 * Llama (llama2.c checkpoints and HF folders), Mistral, Qwen2 and GPT-2 are rows of that
 * table, not code. Per layer:
 *   xb = norm(x); q, k, v = linear(xb) (k and v straight into an f32 KV cache; into f32
 *   rows first for an f16 cache), per-head q/k norms (Gemma 3), RoPE on q, k (unless
 *   learned positions; sliding layers may have their own base), [k, v rounded to f16 into
 *   the cache], causal GQA (within a sliding window on sliding layers),
 *   x += [post-norm] linear_o(att); xb = norm(x); h = act(linear_gate(xb)) * linear_up(xb)
 *   (gated) or act(linear_up(xb)); x += [post-norm] down(h).
 * Then the final norm and the classifier on the last position. A config feature the
 * description does not cover is refused by name in decoder_config (plan and run alike).
 * Linears go through el_ops_linear: on a backend with linear_fused (CUDA) the block's norm
 * runs in the next linear's prologue, q|k|v and gate|up are one pass each, and bias,
 * residual add, GELU and the gated product (SwiGLU, GeGLU) are its epilogue; RoPE of q and k
 * and the stores of k and v into the cache (f32 or f16) are the q|k|v pass's epilogue
 * (linear_qkv; else RoPE is one pass, rope_qk); the attention and O, and the FFN's two
 * linears, are one pass each where the table has attention_linear and linear_chain (CUDA's
 * phased launches) (docs/CUDA.md); elsewhere the separate ops.
 * On the GPU a decode step is one captured CUDA graph (dec_graph_step), its positions read
 * from device memory. */
#include "kernels/attn_split.h"
#include "loader/load_impl.h"
#include "models/arch.h"
#include "models/weights.h"
#include "loader/model_tok.h"
#include "loader/stream.h"
#include "models/session_impl.h"
#include "platform/gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config ----------------------------------------------------------------------------- */

typedef struct dec_cfg {
    const el_arch *a;
    char prefix[16];     /* tensor name prefix found in the file ("" or e.g. "transformer.") */
    uint32_t dim;        /* hidden size */
    uint32_t hidden;     /* FFN width */
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t n_kv_heads;
    uint32_t head_dim;
    uint32_t q_dim;      /* n_heads * head_dim */
    uint32_t kv_dim;     /* n_kv_heads * head_dim */
    uint32_t vocab;
    uint32_t max_pos;    /* 0 = not stated */
    float eps;
    el_rope rope;        /* base and scaling (global layers) */
    el_rope rope_local;  /* sliding layers' (rope_local: theta 0 = the same as rope) */
    float att_scale;     /* attention score scale */
    float embed_scale;   /* embeddings times this (0 = none) */
    el_arch_opts o;      /* activation, biases, sliding-window layers */
    el_norm_kind norm;   /* the architecture's, or plain RMS where 1 + w is stored */
    bool tied;           /* classifier = embedding */
    bool interleaved;    /* RoPE pairs (2i, 2i+1) (llama2.c, GGUF) vs rotate-half (HF) */
    bool conv1d;         /* GPT-2's Conv1D weights stored [in, out] (not GGUF's rows) */
} dec_cfg;

static const el_arch *arch_of(const el_model *m) { return m->family->arch; }

/* The first of a's tensor name prefixes under which m has the embedding (NULL: none). */
static const char *dec_prefix(const el_arch *a, const el_model *m) {
    char name[160];
    for (size_t i = 0; i < EL_ARCH_MAX_PREFIX && a->prefixes[i]; i++) {
        snprintf(name, sizeof name, "%s%s", a->prefixes[i], a->names[EL_R_EMBED]);
        if (el_model_find(m, name) >= 0) return a->prefixes[i];
    }
    return NULL;
}

static el_status decoder_config(const el_model *m, dec_cfg *c) {
    const el_config *k = &m->config;
    const el_arch *a = arch_of(m);
    memset(c, 0, sizeof *c);
    c->a = a;
    c->conv1d = a->conv1d && !(m->flags & EL_MODEL_LINEAR_ROWS);
    if (!m->has_config)
        return el_errorf(EL_E_INVALID, "%s: no config.json next to the model", m->path);
    el_status s = el_arch_check_config(a, m, k->num_layers, &c->o);
    if (s != EL_OK) return s;
    const char *px = dec_prefix(a, m);
    snprintf(c->prefix, sizeof c->prefix, "%s", px ? px : "");
    c->dim = k->hidden_size;
    c->n_layers = k->num_layers;
    c->n_heads = k->num_heads;
    c->n_kv_heads = k->num_kv_heads ? k->num_kv_heads : k->num_heads;
    c->vocab = k->vocab_size;
    c->max_pos = k->max_positions;
    uint64_t hidden = k->intermediate_size ? k->intermediate_size
                                           : (uint64_t)a->ffn_mult_default * c->dim;
    if (!c->dim || !hidden || !c->n_layers || !c->n_heads || !c->vocab)
        return el_errorf(EL_E_INVALID, "%s: config needs hidden_size, intermediate_size, "
                         "num_hidden_layers, num_attention_heads and vocab_size > 0 (got %u, "
                         "%llu, %u, %u, %u)", m->path, c->dim, (unsigned long long)hidden,
                         c->n_layers, c->n_heads, c->vocab);
    if (a->learned_pos && !c->max_pos)
        return el_errorf(EL_E_INVALID, "%s: config needs n_positions (max_position_embeddings) "
                         "> 0: the %s architecture learns its positions", m->path, a->name);
    if (c->n_heads % c->n_kv_heads)
        return el_errorf(EL_E_INVALID, "%s: num_attention_heads %u is not a multiple of "
                         "num_key_value_heads %u", m->path, c->n_heads, c->n_kv_heads);
    c->head_dim = k->head_dim;
    if (!c->head_dim) {
        if (c->dim % c->n_heads)
            return el_errorf(EL_E_INVALID, "%s: %s %u is not a multiple of %s %u%s", m->path,
                             a->key_dim, c->dim, a->key_heads, c->n_heads,
                             a->learned_pos ? "" : " (and no head_dim)");
        c->head_dim = c->dim / c->n_heads;
    }
    if (!a->learned_pos && c->head_dim % 2)
        return el_errorf(EL_E_INVALID, "%s: head_dim %u must be even for RoPE", m->path,
                         c->head_dim);
    uint64_t qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    if (qd > (1u << 24) || c->dim > (1u << 24) || hidden > (1u << 26) || c->n_layers > 4096)
        return el_errorf(EL_E_UNSUPPORTED, "%s: dimensions too large (hidden %u, heads x "
                         "head_dim %llu, FFN %llu, layers %u)", m->path, c->dim,
                         (unsigned long long)qd, (unsigned long long)hidden, c->n_layers);
    c->hidden = (uint32_t)hidden;
    c->q_dim = (uint32_t)qd;
    c->kv_dim = (uint32_t)kvd;
    c->eps = k->norm_eps > 0 ? (float)k->norm_eps : a->eps_default;
    c->rope.theta = k->rope_theta > 0 ? (float)k->rope_theta : a->theta_default;
    c->rope.type = !strcmp(k->rope_type, "linear")   ? EL_ROPE_LINEAR
                   : !strcmp(k->rope_type, "llama3") ? EL_ROPE_LLAMA3
                                                     : EL_ROPE_DEFAULT;
    c->rope.factor = (float)k->rope_factor;
    c->rope.low_freq_factor = (float)k->rope_low_freq_factor;
    c->rope.high_freq_factor = (float)k->rope_high_freq_factor;
    c->rope.original_max_pos = (float)k->rope_original_max_pos;
    if (c->rope.type != EL_ROPE_DEFAULT && a->learned_pos)
        return el_errorf(EL_E_UNSUPPORTED, "%s: config rope scaling '%s' on the %s "
                         "architecture, which has no RoPE", m->path, k->rope_type, a->name);
    if (a->local_theta_default > 0) {
        c->rope_local = (el_rope){k->rope_local_theta > 0 ? (float)k->rope_local_theta
                                                         : a->local_theta_default,
                                  EL_ROPE_DEFAULT, 1.0f, 1.0f, 1.0f, 1.0f};
    } else if (k->rope_local_theta > 0) {
        return el_errorf(EL_E_UNSUPPORTED, "%s: config sets a separate RoPE base for sliding "
                         "layers, which the %s architecture does not have", m->path, a->name);
    }
    c->att_scale = 1.0f / sqrtf((float)c->head_dim);
    if (k->query_pre_attn_scalar > 0) {
        if (a->norm != EL_NORM_RMS_1P)
            return el_errorf(EL_E_UNSUPPORTED, "%s: config query_pre_attn_scalar is not part "
                             "of the %s architecture", m->path, a->name);
        c->att_scale = (float)(1.0 / sqrt(k->query_pre_attn_scalar));
    }
    if (a->embed_scale) c->embed_scale = (float)sqrt((double)c->dim);
    c->norm = a->norm;
    if (a->norm == EL_NORM_RMS_1P && (m->flags & EL_MODEL_NORM_PLUS_ONE)) c->norm = EL_NORM_RMS;
    const bool has_head = el_model_find(m, a->names[EL_R_HEAD]) >= 0; /* unprefixed */
    c->tied = k->has_tie_word_embeddings ? k->tie_word_embeddings
                                         : (a->tied_default || !has_head);
    if (!c->tied && !has_head)
        return el_errorf(EL_E_INVALID, "%s: tie_word_embeddings is false but there is no "
                         "%s", m->path, a->names[EL_R_HEAD]);
    c->interleaved = (m->flags & EL_MODEL_ROPE_INTERLEAVED) != 0;
    return EL_OK;
}

/* ---- tensors ---------------------------------------------------------------------------- */

typedef struct dec_layer {
    el_weight w[EL_R_COUNT]; /* by role; p NULL for roles the model has not */
} dec_layer;

/* Rows and columns (as stored) of each role the model has (given its architecture and
 * config); {0, 0}: it has not; 0 rows: a vector. */
static void role_shapes(const dec_cfg *c, uint64_t shape[EL_R_COUNT][2]) {
    const uint64_t d = c->dim, q = c->q_dim, kv = c->kv_dim, h = c->hidden;
    const uint64_t placed[EL_R_COUNT][2] = {
        [EL_R_EMBED] = {c->vocab, d},      [EL_R_POS] = {c->max_pos, d},
        [EL_R_OUT_NORM] = {0, d},          [EL_R_OUT_NORM_B] = {0, d},
        [EL_R_HEAD] = {c->vocab, d},
        [EL_R_ATTN_NORM] = {0, d},         [EL_R_ATTN_NORM_B] = {0, d},
        [EL_R_QKV] = {q + 2 * kv, d},      [EL_R_QKV_B] = {0, q + 2 * kv},
        [EL_R_Q] = {q, d},                 [EL_R_Q_B] = {0, q},
        [EL_R_K] = {kv, d},                [EL_R_K_B] = {0, kv},
        [EL_R_V] = {kv, d},                [EL_R_V_B] = {0, kv},
        [EL_R_Q_NORM] = {0, c->head_dim},  [EL_R_K_NORM] = {0, c->head_dim},
        [EL_R_O] = {d, q},                 [EL_R_O_B] = {0, d},
        [EL_R_POST_ATTN_NORM] = {0, d},    [EL_R_POST_FFN_NORM] = {0, d},
        [EL_R_FFN_NORM] = {0, d},          [EL_R_FFN_NORM_B] = {0, d},
        [EL_R_GATE_UP] = {2 * h, d},
        [EL_R_GATE] = {h, d},              [EL_R_GATE_B] = {0, h},
        [EL_R_UP] = {h, d},                [EL_R_UP_B] = {0, h},
        [EL_R_DOWN] = {d, h},              [EL_R_DOWN_B] = {0, d},
    };
    for (int r = 0; r < EL_R_COUNT; r++) {
        const el_bias_mask bm = el_arch_bias_of((el_role)r);
        const bool has = c->a->names[r] && (r == EL_R_HEAD  ? !c->tied
                                            : r == EL_R_POS ? c->a->learned_pos
                                                            : !bm || (c->o.biases & bm));
        /* Conv1D weights are stored [in, out]: the table above is the placed shape. */
        const bool t = c->conv1d && placed[r][0] && el_arch_is_conv1d_role((el_role)r);
        shape[r][0] = has ? placed[r][t] : 0;
        shape[r][1] = has ? placed[r][!t] : 0;
    }
}

/* Checks (layers NULL: binds to a dummy) or binds every tensor; target as in weights.h. */
static el_status dec_tensors(const el_model *m, const dec_cfg *c, el_dtype target,
                             dec_layer *layers, dec_layer *top) {
    const el_arch *a = c->a;
    uint64_t sh[EL_R_COUNT][2];
    role_shapes(c, sh);
    dec_layer tmp;
    char name[160];
    /* The classifier, the last model-level role, is named without the prefix. */
    EL_TRY(el_weight_bind_roles(m, a->name, c->prefix, a->names, sh, 0, EL_R_HEAD, 0, target,
                                top->w));
    EL_TRY(el_weight_bind_roles(m, a->name, "", a->names, sh, EL_R_HEAD, EL_R_FIRST_LAYER, 0,
                                target, top->w));
    if (c->tied) top->w[EL_R_HEAD] = top->w[EL_R_EMBED];
    for (uint32_t l = 0; l < c->n_layers; l++) {
        dec_layer *L = layers ? &layers[l] : &tmp;
        memset(L, 0, sizeof *L);
        EL_TRY(el_weight_bind_roles(m, a->name, c->prefix, a->names, sh, EL_R_FIRST_LAYER,
                                    EL_R_COUNT, l, target, L->w));
        /* Fused QKV: views of the q, k and v row blocks (and of the bias). */
        if (sh[EL_R_QKV][1]) {
            el_weight w = L->w[EL_R_QKV], b = L->w[EL_R_QKV_B];
            L->w[EL_R_Q] = w;
            L->w[EL_R_K] = el_weight_rows(w, c->q_dim, c->dim);
            L->w[EL_R_V] = el_weight_rows(w, (size_t)c->q_dim + c->kv_dim, c->dim);
            if (sh[EL_R_QKV_B][1]) {
                L->w[EL_R_Q_B] = b;
                L->w[EL_R_K_B] = el_weight_rows(b, 1, c->q_dim);
                L->w[EL_R_V_B] = el_weight_rows(b, 1, (size_t)c->q_dim + c->kv_dim);
            }
        }
        if (sh[EL_R_GATE_UP][1]) { /* fused gate | up: views of the two row blocks */
            L->w[EL_R_GATE] = L->w[EL_R_GATE_UP];
            L->w[EL_R_UP] = el_weight_rows(L->w[EL_R_GATE_UP], c->hidden, c->dim);
        }
    }
    /* A layer the config does not know about means the config and the weights disagree. */
    char extra[192];
    el_arch_name(name, sizeof name, a->names[EL_R_ATTN_NORM], c->n_layers);
    snprintf(extra, sizeof extra, "%s%s", c->prefix, name);
    if (el_model_find(m, extra) >= 0)
        return el_errorf(EL_E_INVALID, "%s: tensor %s exists but config %s is %u", m->path,
                         extra, a->key_layers, c->n_layers);
    return EL_OK;
}

/* ---- memory layout ---------------------------------------------------------------------- */

typedef struct dec_state {
    dec_cfg c;
    uint32_t ctx;        /* positions in the cache */
    uint32_t chunk;      /* rows of the batch buffers */
    dec_layer top;       /* model-level roles */
    dec_layer *layers;   /* [n_layers] */
    el_dtype kv_dt;      /* the cache's elements: EL_DT_F32 or EL_DT_F16 (--kv-dtype) */
    void *kc;            /* [n_layers, ctx, kv_dim] of kv_dt: keys (RoPE applied) */
    void *vc;            /* [n_layers, ctx, kv_dim] of kv_dt: values */
    float *kb;           /* [chunk, kv_dim] f16 cache: the batch's keys before the store */
    float *vb;           /* [chunk, kv_dim] (an f32 cache is written in place: both NULL) */
    float *x;            /* [chunk, dim] residual stream */
    float *xb;           /* [chunk, dim] normed input of a block */
    float *xb2;          /* [chunk, dim] block output before the residual add */
    float *q;            /* [chunk, q_dim] */
    float *att_out;      /* [chunk, q_dim] */
    float *hb;           /* [chunk, hidden] gate (or up), then the activation */
    float *hb2;          /* [chunk, hidden] up (gated FFNs only) */
    float *att;          /* [n_heads, att_stride] attention scores (CPU); CUDA: partials */
    size_t att_stride;   /* >= ctx: the scores buffer holds the partials too */
    float *logits;       /* [vocab] */
    float *rope_cos;     /* [ctx, head_dim / 2] (RoPE only) */
    float *rope_sin;     /* [ctx, head_dim / 2] */
    float *rope_lcos;    /* [ctx, head_dim / 2] sliding layers' tables (own RoPE base only) */
    float *rope_lsin;
    int32_t *dev_step;   /* [1 + chunk] the batch's first position, then its ids, where the
                            backend reads them (act): one copy up per pass */
    int32_t *dev_ids;    /* dev_step + 1 */
    int32_t *host_step;  /* [1 + chunk] what that copy sends (scratch) */
    unsigned *phase;     /* [2] a phased launch's control words (act; el_exec.phase) */
    float *host_logits;  /* [vocab] logits copied back from the backend (scratch) */
    unsigned ggml_flags; /* el_exec.numerics when the session runs EL_NUMERICS_GGML */
    unsigned rope_numerics; /* the numerics the RoPE tables were built with (GGML bit) */
} dec_state;

/* The one sequence of carves, run by the plan (counting) and by session init (allocating). */
static dec_state *dec_carve(el_carver *kv, el_carver *act, el_carver *sc, const dec_cfg *c,
                            uint32_t ctx, uint32_t chunk, el_dtype kv_dt) {
    const bool gated = c->o.act == EL_ACT_SWIGLU || c->o.act == EL_ACT_GEGLU;
    const bool rope = !c->a->learned_pos;
    dec_state *st = el_carve(sc, 1, sizeof *st, "decoder state");
    dec_layer *layers = el_carve(sc, c->n_layers, sizeof *layers, "layer table");
    uint64_t cache = (uint64_t)c->n_layers * ctx * c->kv_dim;
    const size_t esz = el_dtype_size(kv_dt);
    uint8_t *kc = el_carve(kv, 2 * cache, esz, "KV cache");
    float *bufs[7];
    const uint64_t widths[7] = {c->dim, c->dim, c->dim, c->q_dim, c->q_dim, c->hidden,
                                gated ? c->hidden : 0};
    for (int i = 0; i < 7; i++)
        bufs[i] = el_carve(act, (uint64_t)chunk * widths[i], sizeof(float), "activations");
    /* The CPU's scores, or the CUDA split attention's partials for one row over the whole
     * context (kernels/attn_split.h): whichever is larger, so the plan is the same on
     * every device and a decode step always gets all of its chunks. */
    const uint64_t parts = el_attn_partial_floats(1, c->n_heads, c->head_dim, ctx);
    const uint64_t att_stride = parts && parts / c->n_heads > ctx ? parts / c->n_heads : ctx;
    float *att = el_carve(act, (uint64_t)c->n_heads * att_stride, sizeof(float),
                          "attention scores");
    float *logits = el_carve(act, c->vocab, sizeof(float), "logits");
    uint64_t rope_n = rope ? (uint64_t)ctx * (c->head_dim / 2) : 0;
    float *rc = el_carve(act, rope_n, sizeof(float), "RoPE table");
    float *rs = el_carve(act, rope_n, sizeof(float), "RoPE table");
    uint64_t local_n = c->rope_local.theta > 0 ? rope_n : 0;
    float *lrc = el_carve(act, local_n, sizeof(float), "RoPE table (sliding layers)");
    float *lrs = el_carve(act, local_n, sizeof(float), "RoPE table (sliding layers)");
    /* The backend's view of the ids and the host's copy of the logits (unused on the CPU,
     * where both are host memory already; the plan is the same on every device). */
    int32_t *ids = el_carve(act, 1 + (uint64_t)chunk, sizeof(int32_t), "position and token ids");
    unsigned *phase = el_carve(act, 2, sizeof(unsigned), "phased launch counters");
    float *hlogits = el_carve(sc, c->vocab, sizeof(float), "host logits");
    int32_t *hids = el_carve(sc, 1 + (uint64_t)chunk, sizeof(int32_t), "position and ids up");
    /* An f16 cache: f32 keys and values of the batch (norms and RoPE run on them), then
     * stored rounded (carved last: an f32 plan is what it was before f16 caches). */
    const uint64_t kvrows = kv_dt == EL_DT_F16 ? (uint64_t)chunk * c->kv_dim : 0;
    float *kb = el_carve(act, kvrows, sizeof(float), "keys before the KV store");
    float *vb = el_carve(act, kvrows, sizeof(float), "values before the KV store");
    if (!st) return NULL;
    memset(st, 0, sizeof *st);
    st->c = *c;
    st->ctx = ctx;
    st->chunk = chunk;
    st->layers = layers;
    st->kv_dt = kv_dt;
    st->kc = kc;
    st->vc = kc ? kc + cache * esz : NULL;
    st->kb = kb;
    st->vb = vb;
    st->x = bufs[0];
    st->xb = bufs[1];
    st->xb2 = bufs[2];
    st->q = bufs[3];
    st->att_out = bufs[4];
    st->hb = bufs[5];
    st->hb2 = bufs[6];
    st->att = att;
    st->att_stride = (size_t)att_stride;
    st->logits = logits;
    st->rope_cos = rc;
    st->rope_sin = rs;
    st->rope_lcos = lrc;
    st->rope_lsin = lrs;
    st->dev_step = ids;
    st->dev_ids = ids ? ids + 1 : NULL;
    st->host_step = hids;
    st->phase = phase;
    st->host_logits = hlogits;
    return st;
}

/* ---- family hooks ----------------------------------------------------------------------- */

bool el_decoder_detect(const el_family *f, const el_model *m) {
    const el_arch *a = f->arch;
    if (a->llama2c && !strcmp(m->format, "llama2c")) return true;
    return m->has_config && el_arch_matches_type(a, m->config.model_type) && dec_prefix(a, m);
}

el_status el_decoder_plan(const el_model *m, const el_plan_params *p, uint64_t *kv_bytes,
                              uint64_t *act_bytes, uint64_t *scratch_bytes) {
    dec_cfg c;
    el_status s = decoder_config(m, &c);
    if (s != EL_OK) return s;
    dec_layer top;
    memset(&top, 0, sizeof top);
    if ((s = dec_tensors(m, &c, p->dtype, NULL, &top)) != EL_OK) return s;
    uint32_t ctx = 0;
    EL_TRY(el_ctx_resolve(m, p->ctx, c.max_pos, c.a->key_pos, c.a->learned_pos, &ctx));
    if (p->batch > 1)
        return el_errorf(EL_E_UNSUPPORTED, "--batch %u: a decoder session runs one sequence "
                         "(--batch sizes the batches of embed and classify); plan with --batch "
                         "1", p->batch);
    el_carver kv = {NULL, EL_REGION_KV, 0, EL_OK}, sc = {NULL, EL_REGION_SCRATCH, 0, EL_OK};
    el_carver act = {NULL, EL_REGION_ACT, 0, EL_OK};
    dec_carve(&kv, &act, &sc, &c, ctx, el_session_planned_chunk(ctx), p->kv_dtype);
    if (kv.status != EL_OK) return kv.status;
    if (act.status != EL_OK) return act.status;
    if (sc.status != EL_OK) return sc.status;
    uint64_t generic;
    if ((s = el_session_plan_scratch(c.vocab, ctx, &generic)) != EL_OK) return s;
    *kv_bytes = kv.bytes;
    *act_bytes = act.bytes;
    if (!el_add_u64(sc.bytes, generic, scratch_bytes))
        return el_errorf(EL_E_NOFIT, "%s: scratch size overflows", m->path);
    return EL_OK;
}

/* Marks each layer's tensors with their layer (el_tensor.stream_layer), so a streamed plan
 * knows what to read per layer. A config the plan will refuse marks nothing. */
static void dec_mark_layers(el_model *m) {
    dec_cfg c;
    if (decoder_config(m, &c) != EL_OK) return;
    char name[160], full[192];
    for (uint32_t l = 0; l < c.n_layers; l++)
        for (int r = EL_R_FIRST_LAYER; r < EL_R_COUNT; r++) {
            if (!c.a->names[r]) continue;
            el_arch_name(name, sizeof name, c.a->names[r], l);
            snprintf(full, sizeof full, "%s%s", c.prefix, name);
            long i = el_model_find(m, full);
            if (i >= 0) m->tensors.items[i].stream_layer = l + 1;
        }
}

/* Layer l's binding for ring slot k: bound once in slot 0 (where the load points layer
 * tensors), moved by the slots' distance for another slot. */
static const el_weight *dec_layer_in_slot(const dec_state *D, const el_stream *S, uint32_t l,
                                          unsigned k, dec_layer *tmp) {
    if (k == 0) return D->layers[l].w;
    *tmp = D->layers[l];
    for (int r = 0; r < EL_R_COUNT; r++) tmp->w[r].p = el_stream_in_slot(S, k, tmp->w[r].p);
    return tmp->w;
}

el_status el_decoder_open(el_model *m) {
    const el_arch *a = arch_of(m);
    dec_mark_layers(m);
    /* Conv1D weights are placed transposed ([in, out] -> [out, in]) while they stream in:
     * the kernels take nn.Linear's layout. Only 2-D ones: a wrong shape is reported by the
     * plan, with the shape the config implies. */
    if (a->conv1d && !(m->flags & EL_MODEL_LINEAR_ROWS))
        for (size_t i = 0; i < m->tensors.count; i++)
            if (m->tensors.items[i].ndim == 2 && el_arch_is_conv1d_name(a, m->tensors.items[i].name))
                m->tensors.items[i].transpose2d = true;
    char names[EL_ARCH_MAX_TOK][32];
    const char *np[EL_ARCH_MAX_TOK];
    size_t n = 0;
    for (; n < EL_ARCH_MAX_TOK && a->tok_names[n]; n++) {
        el_arch_name(names[n], sizeof names[n], a->tok_names[n], m->config.vocab_size);
        np[n] = names[n];
    }
    char what[160];
    el_arch_name(what, sizeof what, a->tok_what, m->config.vocab_size);
    el_status s = el_family_tok_open(m, np, n, what);
    return s == EL_OK ? el_model_chat_open(m) : s;
}

void el_decoder_close(el_model *m) {
    el_model_chat_close(m);
    el_family_tok_close(m);
}

/* Adds id to the session's stop ids (once, while there is room). */
static void add_stop(el_session *s, int32_t id) {
    if (id < 0 || (uint32_t)id >= s->vocab) return;
    for (uint32_t i = 0; i < s->n_stop; i++)
        if (s->stop[i] == id) return;
    if (s->n_stop < EL_SESSION_MAX_STOP) s->stop[s->n_stop++] = id;
}

/* Fills the RoPE tables with x's arithmetic (again when the session's numerics change). */
static el_status dec_rope_tables(const el_session *s, dec_state *D, const el_exec *x) {
    const dec_cfg *c = &D->c;
    EL_TRY(s->ops->rope_table(x, D->rope_cos, D->rope_sin, D->ctx, c->head_dim, c->rope));
    if (D->rope_lcos)
        EL_TRY(s->ops->rope_table(x, D->rope_lcos, D->rope_lsin, D->ctx, c->head_dim,
                                  c->rope_local));
    D->rope_numerics = x->numerics & EL_EXEC_GGML;
    return EL_OK;
}

el_status el_decoder_session_init(el_session *s) {
    const el_model *m = s->model;
    dec_cfg c;
    el_status st = decoder_config(m, &c);
    if (st != EL_OK) return st;
    uint32_t ctx = 0;
    EL_TRY(el_ctx_resolve(m, s->ctx, c.max_pos, c.a->key_pos, c.a->learned_pos, &ctx));
    const el_dtype kv_dt = s->kv_dtype;
    if (kv_dt != EL_DT_F32 && kv_dt != EL_DT_F16)
        return el_errorf(EL_E_USAGE, "%s: the plan's KV cache is %s; el_plan_make resolves it "
                         "to F32 or F16", m->path, el_dtype_name(kv_dt));
    el_carver kv = {s->arena, EL_REGION_KV, 0, EL_OK};
    el_carver sc = {s->arena, EL_REGION_SCRATCH, 0, EL_OK};
    el_carver act = {s->arena, EL_REGION_ACT, 0, EL_OK};
    dec_state *D = dec_carve(&kv, &act, &sc, &c, ctx, el_session_planned_chunk(ctx), kv_dt);
    if (kv.status != EL_OK) return kv.status;
    if (act.status != EL_OK) return act.status;
    if (sc.status != EL_OK) return sc.status;
    if (c.conv1d)
        for (size_t i = 0; i < m->tensors.count; i++)
            if (m->tensors.items[i].ndim == 2 && !m->tensors.items[i].transpose2d &&
                el_arch_is_conv1d_name(c.a, m->tensors.items[i].name))
                return el_errorf(EL_E_USAGE, "%s: %s was loaded untransposed", m->path,
                                 m->tensors.items[i].name);
    /* llama.cpp's Gemma 3 and Phi-3 graphs scale the query, the others the scores. */
    const bool pre = !strcmp(c.a->name, "gemma3") || !strcmp(c.a->name, "phi3");
    D->ggml_flags = EL_EXEC_GGML | (pre ? EL_EXEC_GGML_PRESCALE : 0u);
    /* The CPU's 8-row tiles (the fused QKV and gate | up views start at multiples of 8), with
     * the FFN's activations (unused until a pass, [chunk, hidden]) as the repack's buffer. */
    const bool qkv_ok = !c.a->names[EL_R_QKV] || (c.q_dim % 8 == 0 && c.kv_dim % 8 == 0);
    const bool gu_ok = !c.a->names[EL_R_GATE_UP] || c.hidden % 8 == 0;
    if (el_arena_memory(s->arena) == EL_MEMORY_HOST && qkv_ok && gu_ok) /* the CPU's */
        el_weights_tile_cpu(s->model, D->hb, (size_t)D->chunk * c.hidden * sizeof *D->hb);
    if ((st = dec_tensors(m, &c, EL_DT_COUNT, D->layers, &D->top)) != EL_OK) return st;
    D->rope_numerics = 0;
    if (D->rope_cos) {
        const el_exec x = {s->pool, s->gpu_stream, 0, NULL, 0, NULL};
        if ((st = dec_rope_tables(s, D, &x)) != EL_OK) return st;
    }
    if (!s->ops->host_visible) { /* zero before the first phased launch, which keeps them so */
        static const unsigned zero[2];
        const el_exec x = {s->pool, s->gpu_stream, 0, NULL, 0, NULL};
        if ((st = s->ops->upload(&x, D->phase, zero, sizeof zero)) != EL_OK) return st;
    }
    s->family_state = D;
    s->logits = s->ops->host_visible ? D->logits : D->host_logits;
    s->vocab = c.vocab;
    s->max_ctx = c.max_pos ? c.max_pos : ctx;
    s->n_stop = 0;
    int32_t bos = -1, eos = -1;
    el_token_special(m, &bos, &eos);
    if (m->config.eos_token_id >= 0 && m->config.eos_token_id < (int64_t)c.vocab)
        add_stop(s, (int32_t)m->config.eos_token_id);
    add_stop(s, eos);
    /* llama2.c's data separates stories with BOS and has no EOS: BOS ends a text. */
    if (!strcmp(m->format, "llama2c")) add_stop(s, bos);
    /* End-of-turn tokens of the chat formats (as llama.cpp's end-of-generation set): a
     * text the tokenizer makes one token of ends generation too. */
    static const char *const eot[] = {"<|im_end|>", "<|eot_id|>", "<|eom_id|>",
                                      "<end_of_turn>", "<|end|>", "<|endoftext|>"};
    for (size_t i = 0; i < sizeof eot / sizeof eot[0]; i++) {
        int32_t ids[4];
        size_t n = 0;
        if (el_tokenize(m, eot[i], strlen(eot[i]), false, ids, 4, &n) == EL_OK && n == 1)
            add_stop(s, ids[0]);
    }
    return EL_OK;
}

/* x += [post-norm] (W in + b) for n rows of in_dim -> dim: the residual add in the linear's
 * epilogue, unless a post-norm comes between (then through xb2). */
static el_status dec_residual(const el_ops *o, const el_exec *x, const dec_state *D,
                              float *xr, el_weight w, el_weight b, el_weight post_norm,
                              const float *in, size_t n, size_t in_dim) {
    const dec_cfg *c = &D->c;
    const size_t dim = c->dim;
    el_linear_part p = {xr, dim, w, b, dim};
    if (!post_norm.p)
        return el_ops_linear(o, x, &p, 1, in, n, in_dim, EL_EPI_ACCUMULATE, NULL, D->xb2);
    p.y = D->xb2;
    EL_TRY(el_ops_linear(o, x, &p, 1, in, n, in_dim, EL_EPI_STORE, NULL, NULL));
    EL_TRY(o->norm(x, c->norm, D->xb2, D->xb2, post_norm, (el_weight){NULL, EL_DT_F32, false}, n,
                   dim, c->eps));
    return o->add(x, xr, D->xb2, n * dim);
}

/* The kernels of one pass: n tokens at positions s->pos .. (ids: where the backend reads
 * them), then with want_logits the last one's logits into D->logits and, greedy, their argmax
 * into D->dev_ids[0] (free once the embedding has read it). With x->dpos every position
 * comes from that device word: what a CUDA graph captures (the same pointers every step). */
static el_status dec_pass(el_session *s, dec_state *D, const el_exec *x, const int32_t *dids,
                          size_t n, bool want_logits, bool greedy) {
    const dec_cfg *c = &D->c;
    const el_ops *o = s->ops;
    const el_norm_kind nk = c->norm;
    const size_t dim = c->dim, qd = c->q_dim, kvd = c->kv_dim, hid = c->hidden;
    const size_t hd = c->head_dim, pos = s->pos, ctx = D->ctx;
    const float eps = c->eps;
    const bool f16 = D->kv_dt == EL_DT_F16;
    /* Keys and values computed apart, then stored: an f16 cache (rounded), and a step whose
     * cache row is a device word (in att_out's first rows: free until the attention). */
    const bool staged = f16 || x->dpos;
    const size_t esz = f16 ? 2 : sizeof(float);
    const bool gated = c->o.act == EL_ACT_SWIGLU || c->o.act == EL_ACT_GEGLU;
    const el_weight *top = D->top.w, none = {NULL, EL_DT_F32, false};
    if (x->dpos && 2 * kvd * n > (size_t)D->chunk * qd)
        return el_errorf(EL_E_UNSUPPORTED, "decoder: %zu rows of keys and values do not fit "
                         "the attention output's %u rows", n, D->chunk);
    EL_TRY(o->embed(x, D->x, top[EL_R_EMBED], dim, dids, n));
    if (c->embed_scale) EL_TRY(o->scale(x, D->x, c->embed_scale, n * dim));
    if (c->a->learned_pos) EL_TRY(o->embed_add(x, D->x, top[EL_R_POS], dim, NULL, pos, n));
    el_stream *S = s->model->stream;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const el_weight *w = D->layers[l].w;
        dec_layer moved;
        if (S && l >= S->first) { /* streamed: wait for layer l's slot (the next ones are
                                     read meanwhile); pinned layers stay resident */
            unsigned k = 0;
            EL_TRY(el_stream_acquire(S, l, &k));
            w = dec_layer_in_slot(D, S, l, k, &moved);
        }
        /* This layer's cache, and where the batch's keys and values are computed: in
         * place in an f32 cache, else apart (staged) and stored after RoPE. */
        uint8_t *kc = (uint8_t *)D->kc + (size_t)l * ctx * kvd * esz;
        uint8_t *vc = (uint8_t *)D->vc + (size_t)l * ctx * kvd * esz;
        float *kn = f16 ? D->kb : x->dpos ? D->att_out : (float *)(void *)(kc + pos * kvd * esz);
        float *vn = f16 ? D->vb : x->dpos ? D->att_out + n * kvd
                                          : (float *)(void *)(vc + pos * kvd * esz);
        const bool sliding = (c->o.sliding[l / 64] >> (l % 64)) & 1;
        const float *cs = sliding && D->rope_lcos ? D->rope_lcos : D->rope_cos;
        const float *sn = sliding && D->rope_lsin ? D->rope_lsin : D->rope_sin;
        /* The block's norm in the next linear's prologue (or into xb first). */
        const el_linear_norm an = {nk, w[EL_R_ATTN_NORM], w[EL_R_ATTN_NORM_B], eps, D->xb};
        const el_linear_norm fn = {nk, w[EL_R_FFN_NORM], w[EL_R_FFN_NORM_B], eps, D->xb};
        const el_linear_part qkv[3] = {{D->q, qd, w[EL_R_Q], w[EL_R_Q_B], qd},
                                       {kn, kvd, w[EL_R_K], w[EL_R_K_B], kvd},
                                       {vn, kvd, w[EL_R_V], w[EL_R_V_B], kvd}};
        /* RoPE and the cache stores in the q|k|v pass where the backend takes them (not
         * with per-head q/k norms, which come between), else the separate ops. */
        bool fused = false;
        if (o->linear_qkv && !w[EL_R_Q_NORM].p) {
            const el_qkv_tail qt = {cs, sn, hd, pos, c->interleaved, kc, vc, D->kv_dt};
            EL_TRY(o->linear_qkv(x, qkv, D->x, n, dim, &an, &qt, &fused));
        }
        if (!fused) EL_TRY(el_ops_linear(o, x, qkv, 3, D->x, n, dim, EL_EPI_STORE, &an, NULL));
        if (!fused && w[EL_R_Q_NORM].p) { /* per head: rows of head_dim */
            EL_TRY(o->norm(x, nk, D->q, D->q, w[EL_R_Q_NORM], none,
                           n * c->n_heads, hd, eps));
            EL_TRY(o->norm(x, nk, kn, kn, w[EL_R_K_NORM], none,
                           n * c->n_kv_heads, hd, eps));
        }
        if (!fused && cs) {
            if (o->rope_qk) {
                EL_TRY(o->rope_qk(x, D->q, qd, c->n_heads, kn, kvd, c->n_kv_heads, n, hd, cs, sn,
                                  pos, c->interleaved));
            } else {
                EL_TRY(o->rope(x, D->q, qd, n, c->n_heads, hd, cs, sn, pos, c->interleaved));
                EL_TRY(o->rope(x, kn, kvd, n, c->n_kv_heads, hd, cs, sn, pos, c->interleaved));
            }
        }
        if (!fused && staged) EL_TRY(o->kv_store(x, kc, vc, D->kv_dt, kvd, pos, kn, vn, n));
        /* The attention and x += O att in one pass where the backend takes it. */
        const size_t win = sliding ? c->o.window : 0;
        bool att_fused = false;
        if (o->attention_linear && !w[EL_R_POST_ATTN_NORM].p) {
            const el_linear_part op = {D->x, dim, w[EL_R_O], w[EL_R_O_B], dim};
            EL_TRY(o->attention_linear(x, D->att_out, D->q, kc, vc, D->kv_dt, D->att,
                                       D->att_stride, n, pos, c->n_heads, c->n_kv_heads, hd,
                                       win, c->att_scale, &op, &att_fused));
        }
        if (!att_fused) {
            EL_TRY(o->attention(x, D->att_out, D->q, kc, vc, D->kv_dt, D->att, D->att_stride,
                                n, pos, c->n_heads, c->n_kv_heads, hd, win, c->att_scale));
            EL_TRY(dec_residual(o, x, D, D->x, w[EL_R_O], w[EL_R_O_B], w[EL_R_POST_ATTN_NORM],
                                D->att_out, n, qd));
        }
        /* The last layer's FFN feeds only the logits: a prompt batch runs it on the last row
         * alone on the CPU, and so do ggml numerics everywhere (llama.cpp's graphs keep only
         * the output rows after the last layer's attention, so its FFN sees one token: a
         * batch size that picks its K-quant kernels). */
        const bool last_only = ((x->numerics & EL_EXEC_GGML) || o->host_visible) &&
                               want_logits && n > 1 && l + 1 == c->n_layers;
        float *xf = last_only ? D->x + (n - 1) * dim : D->x;
        const size_t nf = last_only ? 1 : n;
        /* Gate and up in one pass, the gated activation its epilogue; or up with a GELU
         * there. Then x += down h, in the same pass where the backend takes it. */
        const el_linear_part ffn[2] = {{D->hb, hid, w[gated ? EL_R_GATE : EL_R_UP],
                                        w[gated ? EL_R_GATE_B : EL_R_UP_B], hid},
                                       {D->hb2, hid, w[EL_R_UP], w[EL_R_UP_B], hid}};
        const el_act_kind ak = c->o.act;
        const el_epilogue e = ak == EL_ACT_SWIGLU      ? EL_EPI_SWIGLU
                              : ak == EL_ACT_GEGLU     ? EL_EPI_GEGLU
                              : ak == EL_ACT_GELU_TANH ? EL_EPI_GELU_TANH
                              : ak == EL_ACT_GELU_ERF  ? EL_EPI_GELU_ERF
                                                       : EL_EPI_STORE;
        const size_t nparts = gated ? 2 : 1;
        bool ffn_fused = false;
        if (o->linear_chain && e != EL_EPI_STORE && !w[EL_R_POST_FFN_NORM].p) {
            const el_linear_part dn = {xf, dim, w[EL_R_DOWN], w[EL_R_DOWN_B], dim};
            EL_TRY(o->linear_chain(x, ffn, nparts, xf, nf, dim, e, &fn, &dn, &ffn_fused));
        }
        if (!ffn_fused) {
            EL_TRY(el_ops_linear(o, x, ffn, nparts, xf, nf, dim, e, &fn, NULL));
            if (e == EL_EPI_STORE) EL_TRY(o->act(x, ak, D->hb, NULL, nf * hid));
            EL_TRY(dec_residual(o, x, D, xf, w[EL_R_DOWN], w[EL_R_DOWN_B],
                                w[EL_R_POST_FFN_NORM], D->hb, nf, hid));
        }
    }
    if (!want_logits) return EL_OK;
    const el_linear_norm on = {nk, top[EL_R_OUT_NORM], top[EL_R_OUT_NORM_B], eps, D->xb};
    const el_linear_part head = {D->logits, c->vocab, top[EL_R_HEAD], none, c->vocab};
    EL_TRY(el_ops_linear(o, x, &head, 1, D->x + (n - 1) * dim, 1, dim, EL_EPI_STORE, &on, NULL));
    return greedy ? o->argmax(x, D->logits, c->vocab, D->dev_ids) : EL_OK;
}

/* A decode step on the GPU as the graph of its variant (greedy or not), captured at the
 * first such step with every position read from D->dev_step[0]; *ran: the step is queued.
 * A capture that fails turns graphs off for the session (the caller then launches the
 * kernels one by one): never an error of the step. */
static el_status dec_graph_step(el_session *s, dec_state *D, const el_exec *x, bool greedy,
                                bool *ran) {
    el_gpu_graph **g = (el_gpu_graph **)&s->graph[greedy];
    *ran = false;
    if (!*g) {
        el_exec gx = *x;
        gx.dpos = D->dev_step;
        gx.max_pos = D->ctx;
        char why[512] = "";
        el_status st = el_gpu_capture_begin(s->gpu_stream);
        if (st == EL_OK) {
            st = dec_pass(s, D, &gx, D->dev_ids, 1, true, greedy);
            if (st != EL_OK) snprintf(why, sizeof why, "%s", el_last_error()); /* the cause */
            const el_status end = el_gpu_capture_end(s->gpu_stream, st == EL_OK ? g : NULL);
            if (st == EL_OK) st = end;
        }
        if (st != EL_OK) {
            el_session_graphs_fail(s, why[0] ? why : el_last_error());
            return EL_OK;
        }
    }
    EL_TRY(el_gpu_graph_launch(*g, s->gpu_stream));
    *ran = true;
    return EL_OK;
}

/* n tokens at positions s->pos ..; the last one's logits into s->logits when want_logits
 * (or, with s->want_next_id on a backend with argmax, only their argmax into s->next_id). */
el_status el_decoder_forward(el_session *s, const int32_t *ids, size_t n, bool want_logits) {
    dec_state *D = s->family_state;
    const dec_cfg *c = &D->c;
    const el_ops *o = s->ops;
    const unsigned num = s->numerics == EL_NUMERICS_GGML ? D->ggml_flags : 0;
    const el_exec ex = {s->pool, s->gpu_stream, num, NULL, 0, D->phase}, *x = &ex;
    if (D->rope_cos && (num & EL_EXEC_GGML) != D->rope_numerics)
        EL_TRY(dec_rope_tables(s, D, x));
    s->next_id_ready = false;
    if (o->host_visible) return dec_pass(s, D, x, ids, n, want_logits, false);
    /* The position and the ids up in one copy (a graph reads the position there). */
    const bool greedy = want_logits && s->want_next_id && o->argmax;
    D->host_step[0] = (int32_t)s->pos;
    memcpy(D->host_step + 1, ids, n * sizeof *ids);
    EL_TRY(o->upload(x, D->dev_step, D->host_step, (n + 1) * sizeof *ids));
    bool ran = false;
    if (n == 1 && want_logits && el_session_graphs_on(s))
        EL_TRY(dec_graph_step(s, D, x, greedy, &ran));
    if (!ran) EL_TRY(dec_pass(s, D, x, D->dev_ids, n, want_logits, greedy));
    if (!want_logits) return EL_OK;
    if (greedy) { /* only the id comes back */
        s->next_id_ready = true;
        return o->download(x, &s->next_id, D->dev_ids, sizeof s->next_id);
    }
    return o->download(x, D->host_logits, D->logits, (size_t)c->vocab * sizeof(float));
}
