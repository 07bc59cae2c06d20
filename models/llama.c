/* llama.c - the Llama family (llama2.c checkpoints and HF Llama/Mistral-style folders):
 * config and tensor-table checks, the exact KV/scratch plan, the tokenizer found with the
 * model, and the forward pass over a batch of positions: RMSNorm, q/k/v projections
 * (k and v written straight into the KV cache), RoPE (interleaved pairs for llama2.c,
 * rotate-half for HF), grouped-query attention, SwiGLU FFN, final norm, classifier. */
#include "loader/load_impl.h"
#include "models/family_tok.h"
#include "models/session_impl.h"
#include "models/weights.h"
#ifdef EL_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"
#include "platform/gpu.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config ----------------------------------------------------------------------------- */

typedef struct llama_cfg {
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
    float theta;
    bool tied;           /* classifier = embedding */
    bool interleaved;    /* RoPE pairs (2i, 2i+1) (llama2.c) vs (i, i + head_dim/2) (HF) */
} llama_cfg;

static el_status llama_config(const el_model *m, llama_cfg *c) {
    const el_config *k = &m->config;
    memset(c, 0, sizeof *c);
    if (!m->has_config)
        return el_errorf(EL_E_INVALID, "%s: no config.json next to the model", m->path);
    if (k->hidden_act[0] && strcmp(k->hidden_act, "silu") && strcmp(k->hidden_act, "swish"))
        return el_errorf(EL_E_UNSUPPORTED, "%s: config hidden_act '%s': the llama family runs "
                         "SwiGLU (silu) only", m->path, k->hidden_act);
    c->dim = k->hidden_size;
    c->hidden = k->intermediate_size;
    c->n_layers = k->num_layers;
    c->n_heads = k->num_heads;
    c->n_kv_heads = k->num_kv_heads ? k->num_kv_heads : k->num_heads;
    c->vocab = k->vocab_size;
    c->max_pos = k->max_positions;
    if (!c->dim || !c->hidden || !c->n_layers || !c->n_heads || !c->vocab)
        return el_errorf(EL_E_INVALID, "%s: config needs hidden_size, intermediate_size, "
                         "num_hidden_layers, num_attention_heads and vocab_size > 0 (got %u, "
                         "%u, %u, %u, %u)", m->path, c->dim, c->hidden, c->n_layers,
                         c->n_heads, c->vocab);
    if (c->n_heads % c->n_kv_heads)
        return el_errorf(EL_E_INVALID, "%s: num_attention_heads %u is not a multiple of "
                         "num_key_value_heads %u", m->path, c->n_heads, c->n_kv_heads);
    c->head_dim = k->head_dim;
    if (!c->head_dim) {
        if (c->dim % c->n_heads)
            return el_errorf(EL_E_INVALID, "%s: hidden_size %u is not a multiple of "
                             "num_attention_heads %u (and no head_dim)", m->path, c->dim,
                             c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    }
    if (c->head_dim % 2)
        return el_errorf(EL_E_INVALID, "%s: head_dim %u must be even for RoPE", m->path,
                         c->head_dim);
    uint64_t qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    if (qd > (1u << 24) || c->dim > (1u << 24) || c->hidden > (1u << 26))
        return el_errorf(EL_E_UNSUPPORTED, "%s: dimensions too large (heads x head_dim %llu)",
                         m->path, (unsigned long long)qd);
    c->q_dim = (uint32_t)qd;
    c->kv_dim = (uint32_t)kvd;
    c->eps = k->norm_eps > 0 ? (float)k->norm_eps : 1e-6f; /* LlamaConfig's default */
    c->theta = k->rope_theta > 0 ? (float)k->rope_theta : 10000.0f;
    bool has_head = el_model_find(m, "lm_head.weight") >= 0;
    c->tied = k->has_tie_word_embeddings ? k->tie_word_embeddings : !has_head;
    if (!c->tied && !has_head)
        return el_errorf(EL_E_INVALID, "%s: tie_word_embeddings is false but there is no "
                         "lm_head.weight", m->path);
    c->interleaved = (m->flags & EL_MODEL_ROPE_INTERLEAVED) != 0;
    if (el_model_find(m, "model.layers.0.self_attn.q_proj.bias") >= 0)
        return el_errorf(EL_E_UNSUPPORTED, "%s: attention biases (q_proj.bias) are not part "
                         "of the llama family (Qwen2-style models are not supported yet)",
                         m->path);
    return EL_OK;
}

/* ---- tensors ---------------------------------------------------------------------------- */

typedef el_weight llama_w;

typedef struct llama_layer {
    llama_w attn_norm; /* [dim] */
    llama_w wq;        /* [q_dim, dim] */
    llama_w wk;        /* [kv_dim, dim] */
    llama_w wv;        /* [kv_dim, dim] */
    llama_w wo;        /* [dim, q_dim] */
    llama_w ffn_norm;  /* [dim] */
    llama_w gate;      /* [hidden, dim] */
    llama_w up;        /* [hidden, dim] */
    llama_w down;      /* [dim, hidden] */
} llama_layer;

static el_status bind(const el_model *m, const char *name, uint64_t rows, uint64_t cols,
                      el_dtype target, llama_w *out) {
    return el_weight_bind(m, "llama", "", name, rows, cols, target, out);
}

/* Checks (layers NULL) or binds every tensor. */
static el_status llama_tensors(const el_model *m, const llama_cfg *c, el_dtype target,
                               llama_layer *layers, llama_w *embed, llama_w *norm,
                               llama_w *cls) {
    el_status s;
    llama_w tmp;
    if ((s = bind(m, "model.embed_tokens.weight", c->vocab, c->dim, target, embed)) != EL_OK)
        return s;
    if ((s = bind(m, "model.norm.weight", 0, c->dim, target, norm)) != EL_OK) return s;
    if (c->tied)
        *cls = *embed;
    else if ((s = bind(m, "lm_head.weight", c->vocab, c->dim, target, cls)) != EL_OK)
        return s;
    char name[160];
    for (uint32_t l = 0; l < c->n_layers; l++) {
        llama_layer *L = layers ? &layers[l] : NULL;
        const struct {
            const char *suffix;
            uint64_t rows, cols;
            llama_w *dst;
        } w[] = {
            {"input_layernorm.weight", 0, c->dim, L ? &L->attn_norm : &tmp},
            {"self_attn.q_proj.weight", c->q_dim, c->dim, L ? &L->wq : &tmp},
            {"self_attn.k_proj.weight", c->kv_dim, c->dim, L ? &L->wk : &tmp},
            {"self_attn.v_proj.weight", c->kv_dim, c->dim, L ? &L->wv : &tmp},
            {"self_attn.o_proj.weight", c->dim, c->q_dim, L ? &L->wo : &tmp},
            {"post_attention_layernorm.weight", 0, c->dim, L ? &L->ffn_norm : &tmp},
            {"mlp.gate_proj.weight", c->hidden, c->dim, L ? &L->gate : &tmp},
            {"mlp.up_proj.weight", c->hidden, c->dim, L ? &L->up : &tmp},
            {"mlp.down_proj.weight", c->dim, c->hidden, L ? &L->down : &tmp},
        };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
            snprintf(name, sizeof name, "model.layers.%u.%s", l, w[i].suffix);
            if ((s = bind(m, name, w[i].rows, w[i].cols, target, w[i].dst)) != EL_OK) return s;
        }
    }
    return EL_OK;
}

/* ---- memory layout ---------------------------------------------------------------------- */

typedef struct llama_state {
    llama_cfg c;
    uint32_t ctx;        /* positions in the cache */
    uint32_t chunk;      /* rows of the batch buffers */
    llama_w embed, norm, cls;
    llama_layer *layers; /* [n_layers] */
    float *kc;           /* [n_layers, ctx, kv_dim] keys (RoPE applied) */
    float *vc;           /* [n_layers, ctx, kv_dim] values */
    float *x;            /* [chunk, dim] residual stream */
    float *xb;           /* [chunk, dim] normed input of a block */
    float *xb2;          /* [chunk, dim] block output before the residual add */
    float *q;            /* [chunk, q_dim] */
    float *att_out;      /* [chunk, q_dim] */
    float *hb;           /* [chunk, hidden] gate, then SwiGLU */
    float *hb2;          /* [chunk, hidden] up */
    float *att;          /* [n_heads, ctx] attention scores */
    float *logits;       /* [vocab] */
    float *rope_cos;     /* [ctx, head_dim / 2] */
    float *rope_sin;     /* [ctx, head_dim / 2] */
    int32_t *gpu_ids;    /* [chunk] the batch's ids where the GPU reads them (act) */
    float *host_logits;  /* [vocab] logits copied back from the GPU (scratch) */
} llama_state;

/* The one sequence of carves, run by the plan (counting) and by session init (allocating).
 * batch: sequences the plan sized the KV cache for (the session uses the first). */
static llama_state *llama_carve(el_carver *kv, el_carver *act, el_carver *sc, const llama_cfg *c,
                                uint32_t ctx, uint32_t batch, uint32_t chunk) {
    llama_state *st = el_carve(sc, 1, sizeof *st, "llama state");
    llama_layer *layers = el_carve(sc, c->n_layers, sizeof *layers, "layer table");
    uint64_t cache = (uint64_t)c->n_layers * ctx * c->kv_dim;
    float *kc = el_carve(kv, 2 * cache * batch, sizeof(float), "KV cache");
    float *bufs[7];
    const uint64_t widths[7] = {c->dim, c->dim, c->dim, c->q_dim, c->q_dim, c->hidden, c->hidden};
    for (int i = 0; i < 7; i++)
        bufs[i] = el_carve(act, (uint64_t)chunk * widths[i], sizeof(float), "activations");
    float *att = el_carve(act, (uint64_t)c->n_heads * ctx, sizeof(float), "attention scores");
    float *logits = el_carve(act, c->vocab, sizeof(float), "logits");
    float *rc = el_carve(act, (uint64_t)ctx * (c->head_dim / 2), sizeof(float), "RoPE table");
    float *rs = el_carve(act, (uint64_t)ctx * (c->head_dim / 2), sizeof(float), "RoPE table");
    /* The GPU's view of the ids and the host's copy of the logits (unused on the CPU, where
     * logits above is host memory already; the plan is the same on every device). */
    int32_t *gids = el_carve(act, chunk, sizeof(int32_t), "token ids");
    float *hlogits = el_carve(sc, c->vocab, sizeof(float), "host logits");
    if (!st) return NULL;
    memset(st, 0, sizeof *st);
    st->c = *c;
    st->ctx = ctx;
    st->chunk = chunk;
    st->layers = layers;
    st->kc = kc;
    st->vc = kc ? kc + cache : NULL;
    st->x = bufs[0];
    st->xb = bufs[1];
    st->xb2 = bufs[2];
    st->q = bufs[3];
    st->att_out = bufs[4];
    st->hb = bufs[5];
    st->hb2 = bufs[6];
    st->att = att;
    st->logits = logits;
    st->rope_cos = rc;
    st->rope_sin = rs;
    st->gpu_ids = gids;
    st->host_logits = hlogits;
    return st;
}

static el_status resolve_ctx(const el_model *m, const llama_cfg *c, uint32_t want,
                             uint32_t *ctx) {
    if (want == 0) want = c->max_pos;
    if (want == 0)
        return el_errorf(EL_E_INVALID, "%s: the config states no max_position_embeddings: pass "
                         "--ctx", m->path);
    if (c->max_pos && want > c->max_pos)
        return el_errorf(EL_E_USAGE, "--ctx %u: %s was trained for at most %u positions", want,
                         m->path, c->max_pos);
    *ctx = want;
    return EL_OK;
}

/* ---- family hooks ----------------------------------------------------------------------- */

static bool llama_detect(const el_model *m) {
    if (!strcmp(m->format, "llama2c")) return true;
    if (!m->has_config) return false;
    if (strcmp(m->config.model_type, "llama") && strcmp(m->config.model_type, "mistral"))
        return false;
    return el_model_find(m, "model.embed_tokens.weight") >= 0 &&
           el_model_find(m, "model.layers.0.self_attn.q_proj.weight") >= 0;
}

static el_status llama_plan(const el_model *m, const el_plan_params *p, uint64_t *kv_bytes,
                            uint64_t *act_bytes, uint64_t *scratch_bytes) {
    llama_cfg c;
    el_status s = llama_config(m, &c);
    if (s != EL_OK) return s;
    llama_w e, n, k;
    if ((s = llama_tensors(m, &c, p->dtype, NULL, &e, &n, &k)) != EL_OK) return s;
    uint32_t ctx = 0;
    if ((s = resolve_ctx(m, &c, p->ctx, &ctx)) != EL_OK) return s;
    el_carver kv = {NULL, EL_REGION_KV, 0, EL_OK}, sc = {NULL, EL_REGION_SCRATCH, 0, EL_OK};
    el_carver act = {NULL, EL_REGION_ACT, 0, EL_OK};
    llama_carve(&kv, &act, &sc, &c, ctx, p->batch ? p->batch : 1, el_session_planned_chunk(ctx));
    if (kv.status != EL_OK) return kv.status;
    if (act.status != EL_OK) return act.status;
    if (sc.status != EL_OK) return sc.status;
    *act_bytes = act.bytes;
    uint64_t generic;
    if ((s = el_session_plan_scratch(c.vocab, ctx, &generic)) != EL_OK) return s;
    *kv_bytes = kv.bytes;
    if (!el_add_u64(sc.bytes, generic, scratch_bytes))
        return el_errorf(EL_E_NOFIT, "%s: scratch size overflows", m->path);
    return EL_OK;
}


/* The tokenizer (models/family_tok.c); when none opens, el_tokenize reports why later. */
static el_status llama_open(el_model *m) {
    char tokbin[32], what[96];
    snprintf(tokbin, sizeof tokbin, "tok%u.bin", m->config.vocab_size);
    snprintf(what, sizeof what, "tokenizer.json, %s or tokenizer.bin", tokbin);
    const char *const names[] = {"tokenizer.json", "tokenizer.model", tokbin, "tokenizer.bin"};
    return el_family_tok_open(m, names, 4, what);
}

static el_status llama_session_init(el_session *s) {
    const el_model *m = s->model;
    llama_cfg c;
    el_status st = llama_config(m, &c);
    if (st != EL_OK) return st;
    uint32_t ctx = 0;
    if ((st = resolve_ctx(m, &c, s->ctx, &ctx)) != EL_OK) return st;
    el_carver kv = {s->arena, EL_REGION_KV, 0, EL_OK};
    el_carver sc = {s->arena, EL_REGION_SCRATCH, 0, EL_OK};
    el_carver act = {s->arena, EL_REGION_ACT, 0, EL_OK};
    uint32_t batch = s->plan.params.batch ? s->plan.params.batch : 1;
    llama_state *L = llama_carve(&kv, &act, &sc, &c, ctx, batch, el_session_planned_chunk(ctx));
    if (kv.status != EL_OK) return kv.status;
    if (act.status != EL_OK) return act.status;
    if (sc.status != EL_OK) return sc.status;
    if ((st = llama_tensors(m, &c, EL_DT_COUNT, L->layers, &L->embed, &L->norm, &L->cls)) !=
        EL_OK)
        return st;
    /* RoPE angles in float, the way llama2.c and HF compute them. */
    const uint32_t half = c.head_dim / 2;
#ifdef EL_HAVE_CUDA
    if (s->on_gpu && (st = el_cuda_rope_table(L->rope_cos, L->rope_sin, ctx, c.head_dim, c.theta,
                                              s->gpu_stream)) != EL_OK)
        return st;
#endif
    for (uint32_t i = 0; i < half && !s->on_gpu; i++) {
        float freq = 1.0f / powf(c.theta, (float)(2 * i) / (float)c.head_dim);
        for (uint32_t p = 0; p < ctx; p++) {
            float a = (float)p * freq;
            L->rope_cos[(size_t)p * half + i] = cosf(a);
            L->rope_sin[(size_t)p * half + i] = sinf(a);
        }
    }
    s->family_state = L;
    s->logits = s->on_gpu ? L->host_logits : L->logits;
    s->vocab = c.vocab;
    s->max_ctx = c.max_pos ? c.max_pos : ctx;
    s->n_stop = 0;
    int32_t bos = -1, eos = -1;
    el_token_special(m, &bos, &eos);
    if (m->config.eos_token_id >= 0 && m->config.eos_token_id < (int64_t)c.vocab)
        s->stop[s->n_stop++] = (int32_t)m->config.eos_token_id;
    if (eos >= 0 && (s->n_stop == 0 || eos != s->stop[0])) s->stop[s->n_stop++] = eos;
    /* llama2.c's data separates stories with BOS and has no EOS: BOS ends a text. */
    if (!strcmp(m->format, "llama2c") && bos >= 0) s->stop[s->n_stop++] = bos;
    return EL_OK;
}

static void llama_forward(el_session *s, const int32_t *ids, size_t n, bool want_logits) {
    llama_state *L = s->family_state;
    const llama_cfg *c = &L->c;
    el_pool *p = s->pool;
    const size_t dim = c->dim, qd = c->q_dim, kvd = c->kv_dim, hid = c->hidden;
    const size_t hd = c->head_dim, half = hd / 2, pos = s->pos, ctx = L->ctx;
    for (size_t t = 0; t < n; t++)
        el_cpu_embed(L->x + t * dim, L->embed.p, L->embed.dt, dim, (size_t)ids[t]);
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const llama_layer *w = &L->layers[l];
        float *kc = L->kc + (size_t)l * ctx * kvd, *vc = L->vc + (size_t)l * ctx * kvd;
        el_cpu_rmsnorm(p, L->xb, L->x, w->attn_norm.p, w->attn_norm.dt, n, dim, c->eps);
        el_cpu_matmul(p, L->q, qd, L->xb, w->wq.p, w->wq.dt, n, dim, qd);
        el_cpu_matmul(p, kc + pos * kvd, kvd, L->xb, w->wk.p, w->wk.dt, n, dim, kvd);
        el_cpu_matmul(p, vc + pos * kvd, kvd, L->xb, w->wv.p, w->wv.dt, n, dim, kvd);
        for (size_t t = 0; t < n; t++) {
            const float *cs = L->rope_cos + (pos + t) * half, *sn = L->rope_sin + (pos + t) * half;
            el_cpu_rope(L->q + t * qd, c->n_heads, hd, cs, sn, c->interleaved);
            el_cpu_rope(kc + (pos + t) * kvd, c->n_kv_heads, hd, cs, sn, c->interleaved);
        }
        el_cpu_attention(p, L->att_out, L->q, kc, vc, L->att, ctx, n, pos, c->n_heads,
                         c->n_kv_heads, hd);
        el_cpu_matmul(p, L->xb2, dim, L->att_out, w->wo.p, w->wo.dt, n, qd, dim);
        el_cpu_add(p, L->x, L->xb2, n * dim);
        el_cpu_rmsnorm(p, L->xb, L->x, w->ffn_norm.p, w->ffn_norm.dt, n, dim, c->eps);
        el_cpu_matmul(p, L->hb, hid, L->xb, w->gate.p, w->gate.dt, n, dim, hid);
        el_cpu_matmul(p, L->hb2, hid, L->xb, w->up.p, w->up.dt, n, dim, hid);
        el_cpu_swiglu(p, L->hb, L->hb2, n * hid);
        el_cpu_matmul(p, L->xb2, dim, L->hb, w->down.p, w->down.dt, n, hid, dim);
        el_cpu_add(p, L->x, L->xb2, n * dim);
    }
    if (!want_logits) return;
    el_cpu_rmsnorm(p, L->xb, L->x + (n - 1) * dim, L->norm.p, L->norm.dt, 1, dim, c->eps);
    el_cpu_matmul(p, L->logits, c->vocab, L->xb, L->cls.p, L->cls.dt, 1, dim, c->vocab);
}

#ifdef EL_HAVE_CUDA
/* llama_forward on the GPU: the same steps on the session's stream; only the ids go up and
 * the last position's logits come back. */
static el_status llama_forward_cuda(el_session *s, const int32_t *ids, size_t n,
                                    bool want_logits) {
    llama_state *L = s->family_state;
    const llama_cfg *c = &L->c;
    el_cuda_stream g = s->gpu_stream;
    const size_t dim = c->dim, qd = c->q_dim, kvd = c->kv_dim, hid = c->hidden;
    const size_t hd = c->head_dim, half = hd / 2, pos = s->pos, ctx = L->ctx;
    const float *cs = L->rope_cos + pos * half, *sn = L->rope_sin + pos * half;
    EL_TRY(el_gpu_copy_async(L->gpu_ids, ids, n * sizeof *ids, s->gpu_stream));
    EL_TRY(el_cuda_embed(L->x, L->embed.p, L->embed.dt, dim, L->gpu_ids, n, g));
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const llama_layer *w = &L->layers[l];
        float *kc = L->kc + (size_t)l * ctx * kvd, *vc = L->vc + (size_t)l * ctx * kvd;
        EL_TRY(el_cuda_rmsnorm(L->xb, L->x, w->attn_norm.p, w->attn_norm.dt, n, dim, c->eps, g));
        EL_TRY(el_cuda_matmul(L->q, qd, L->xb, w->wq.p, w->wq.dt, n, dim, qd, g));
        EL_TRY(el_cuda_matmul(kc + pos * kvd, kvd, L->xb, w->wk.p, w->wk.dt, n, dim, kvd, g));
        EL_TRY(el_cuda_matmul(vc + pos * kvd, kvd, L->xb, w->wv.p, w->wv.dt, n, dim, kvd, g));
        EL_TRY(el_cuda_rope(L->q, qd, n, c->n_heads, hd, cs, sn, c->interleaved, g));
        EL_TRY(el_cuda_rope(kc + pos * kvd, kvd, n, c->n_kv_heads, hd, cs, sn, c->interleaved, g));
        EL_TRY(el_cuda_attention(L->att_out, L->q, kc, vc, n, pos, c->n_heads, c->n_kv_heads, hd,
                              g));
        EL_TRY(el_cuda_matmul(L->xb2, dim, L->att_out, w->wo.p, w->wo.dt, n, qd, dim, g));
        EL_TRY(el_cuda_add(L->x, L->xb2, n * dim, g));
        EL_TRY(el_cuda_rmsnorm(L->xb, L->x, w->ffn_norm.p, w->ffn_norm.dt, n, dim, c->eps, g));
        EL_TRY(el_cuda_matmul(L->hb, hid, L->xb, w->gate.p, w->gate.dt, n, dim, hid, g));
        EL_TRY(el_cuda_matmul(L->hb2, hid, L->xb, w->up.p, w->up.dt, n, dim, hid, g));
        EL_TRY(el_cuda_swiglu(L->hb, L->hb2, n * hid, g));
        EL_TRY(el_cuda_matmul(L->xb2, dim, L->hb, w->down.p, w->down.dt, n, hid, dim, g));
        EL_TRY(el_cuda_add(L->x, L->xb2, n * dim, g));
    }
    if (!want_logits) return EL_OK;
    EL_TRY(el_cuda_rmsnorm(L->xb, L->x + (n - 1) * dim, L->norm.p, L->norm.dt, 1, dim, c->eps, g));
    EL_TRY(el_cuda_matmul(L->logits, c->vocab, L->xb, L->cls.p, L->cls.dt, 1, dim, c->vocab, g));
    return el_gpu_copy_async(L->host_logits, L->logits, (uint64_t)c->vocab * sizeof(float),
                             s->gpu_stream);
}
#endif

const el_family el_family_llama = {
    .name = "llama",
    .detect = llama_detect,
    .plan = llama_plan,
    .open = llama_open,
    .close = el_family_tok_close,
    .session_init = llama_session_init,
    .session_deinit = NULL,
    .forward = llama_forward,
#ifdef EL_HAVE_CUDA
    .forward_cuda = llama_forward_cuda,
#endif
    .tokenizer = el_family_tok_get,
};
