/* gpt2.c - the GPT-2 family (Hugging Face GPT2LMHeadModel / GPT2Model folders, tensor names
 * with or without the "transformer." prefix): config and tensor-table checks, the exact
 * KV/scratch plan, the tokenizer found with the model, and the forward pass over a batch of
 * positions: token + learned position embeddings, pre-LayerNorm blocks with the fused QKV
 * projection (k and v written straight into the KV cache), causal multi-head attention,
 * GELU (tanh) MLP, final LayerNorm, classifier tied to the token embedding.
 *
 * GPT-2 stores its projections as Conv1D, [in, out]; the open hook marks them transpose2d,
 * so the loader places them as [out, in] (nn.Linear's layout, the one every matmul kernel
 * takes) while streaming them in: no second copy, no transposed kernel. */
#include "loader/load_impl.h"
#include "models/family_tok.h"
#include "models/session_impl.h"
#include "models/weights.h"
#ifdef EL_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"
#include "platform/gpu.h"
#endif

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config ----------------------------------------------------------------------------- */

typedef struct gpt2_cfg {
    uint32_t dim;      /* n_embd */
    uint32_t inner;    /* n_inner (MLP width; 4 * dim when unset) */
    uint32_t n_layers; /* n_layer */
    uint32_t n_heads;  /* n_head */
    uint32_t head_dim; /* dim / n_heads */
    uint32_t vocab;
    uint32_t max_pos;  /* n_positions: rows of wpe */
    float eps;         /* layer_norm_epsilon */
    bool gelu_erf;     /* activation "gelu" (exact) instead of the tanh approximation */
    bool untied;       /* a separate lm_head.weight [vocab, dim] */
    char prefix[16];   /* "" or "transformer." */
} gpt2_cfg;

static el_status gpt2_config(const el_model *m, gpt2_cfg *c) {
    const el_config *k = &m->config;
    memset(c, 0, sizeof *c);
    if (!m->has_config)
        return el_errorf(EL_E_INVALID, "%s: no config.json next to the model", m->path);
    const char *act = k->hidden_act[0] ? k->hidden_act : "gelu_new";
    if (!strcmp(act, "gelu")) {
        c->gelu_erf = true;
    } else if (strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh")) {
        return el_errorf(EL_E_UNSUPPORTED, "%s: config activation_function '%s': the gpt2 "
                         "family runs gelu_new / gelu_pytorch_tanh (tanh GELU) and gelu",
                         m->path, act);
    }
    c->dim = k->hidden_size;
    c->n_layers = k->num_layers;
    c->n_heads = k->num_heads;
    c->vocab = k->vocab_size;
    c->max_pos = k->max_positions;
    if (!c->dim || !c->n_layers || !c->n_heads || !c->vocab || !c->max_pos)
        return el_errorf(EL_E_INVALID, "%s: config needs n_embd, n_layer, n_head, vocab_size "
                         "and n_positions > 0 (got %u, %u, %u, %u, %u)", m->path, c->dim,
                         c->n_layers, c->n_heads, c->vocab, c->max_pos);
    if (c->dim % c->n_heads)
        return el_errorf(EL_E_INVALID, "%s: n_embd %u is not a multiple of n_head %u", m->path,
                         c->dim, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    uint64_t inner = k->intermediate_size ? k->intermediate_size : 4ull * c->dim;
    if (c->dim > (1u << 20) || inner > (1u << 24) || c->n_layers > 4096)
        return el_errorf(EL_E_UNSUPPORTED, "%s: dimensions too large (n_embd %u, n_inner %llu, "
                         "n_layer %u)", m->path, c->dim, (unsigned long long)inner, c->n_layers);
    c->inner = (uint32_t)inner;
    c->eps = k->norm_eps > 0 ? (float)k->norm_eps : 1e-5f; /* GPT2Config's default */
    snprintf(c->prefix, sizeof c->prefix, "%s",
             el_model_find(m, "transformer.wte.weight") >= 0 ? "transformer." : "");
    bool has_head = el_model_find(m, "lm_head.weight") >= 0;
    c->untied = k->has_tie_word_embeddings && !k->tie_word_embeddings;
    if (c->untied && !has_head)
        return el_errorf(EL_E_INVALID, "%s: tie_word_embeddings is false but there is no "
                         "lm_head.weight", m->path);
    return EL_OK;
}

/* ---- tensors ---------------------------------------------------------------------------- */

typedef el_weight gpt2_w;

typedef struct gpt2_layer {
    gpt2_w ln1_w, ln1_b;   /* [dim] */
    gpt2_w attn_w;         /* [3 dim, dim] in the arena (stored [dim, 3 dim]): q | k | v rows */
    gpt2_w attn_b;         /* [3 dim] */
    gpt2_w proj_w, proj_b; /* [dim, dim] (stored transposed), [dim] */
    gpt2_w ln2_w, ln2_b;   /* [dim] */
    gpt2_w fc_w, fc_b;     /* [inner, dim] (stored [dim, inner]), [inner] */
    gpt2_w out_w, out_b;   /* [dim, inner] (stored [inner, dim]), [dim] */
} gpt2_layer;

static el_status bind(const el_model *m, const char *prefix, const char *name, uint64_t rows,
                      uint64_t cols, el_dtype target, gpt2_w *out) {
    return el_weight_bind(m, "gpt2", prefix, name, rows, cols, target, out);
}

/* The Conv1D weights of a block ([in, out] as stored), by suffix. */
static const char *const k_conv1d[] = {"attn.c_attn.weight", "attn.c_proj.weight",
                                       "mlp.c_fc.weight", "mlp.c_proj.weight"};

/* Checks (layers NULL) or binds every tensor. Shapes are the stored ones. */
static el_status gpt2_tensors(const el_model *m, const gpt2_cfg *c, el_dtype target,
                              gpt2_layer *layers, gpt2_w *wte, gpt2_w *wpe, gpt2_w *lnf_w,
                              gpt2_w *lnf_b, gpt2_w *cls) {
    const char *px = c->prefix;
    el_status s;
    if ((s = bind(m, px, "wte.weight", c->vocab, c->dim, target, wte)) != EL_OK) return s;
    if ((s = bind(m, px, "wpe.weight", c->max_pos, c->dim, target, wpe)) != EL_OK) return s;
    if ((s = bind(m, px, "ln_f.weight", 0, c->dim, target, lnf_w)) != EL_OK) return s;
    if ((s = bind(m, px, "ln_f.bias", 0, c->dim, target, lnf_b)) != EL_OK) return s;
    if (!c->untied)
        *cls = *wte;
    else if ((s = bind(m, "", "lm_head.weight", c->vocab, c->dim, target, cls)) != EL_OK)
        return s;
    const uint64_t d = c->dim, f = c->inner;
    char name[160];
    gpt2_w tmp;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        gpt2_layer *L = layers ? &layers[l] : NULL;
        const struct {
            const char *suffix;
            uint64_t rows, cols; /* as stored */
            gpt2_w *dst;
        } w[] = {
            {"ln_1.weight", 0, d, L ? &L->ln1_w : &tmp},
            {"ln_1.bias", 0, d, L ? &L->ln1_b : &tmp},
            {"attn.c_attn.weight", d, 3 * d, L ? &L->attn_w : &tmp},
            {"attn.c_attn.bias", 0, 3 * d, L ? &L->attn_b : &tmp},
            {"attn.c_proj.weight", d, d, L ? &L->proj_w : &tmp},
            {"attn.c_proj.bias", 0, d, L ? &L->proj_b : &tmp},
            {"ln_2.weight", 0, d, L ? &L->ln2_w : &tmp},
            {"ln_2.bias", 0, d, L ? &L->ln2_b : &tmp},
            {"mlp.c_fc.weight", d, f, L ? &L->fc_w : &tmp},
            {"mlp.c_fc.bias", 0, f, L ? &L->fc_b : &tmp},
            {"mlp.c_proj.weight", f, d, L ? &L->out_w : &tmp},
            {"mlp.c_proj.bias", 0, d, L ? &L->out_b : &tmp},
        };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
            snprintf(name, sizeof name, "h.%u.%s", l, w[i].suffix);
            if ((s = bind(m, px, name, w[i].rows, w[i].cols, target, w[i].dst)) != EL_OK)
                return s;
        }
    }
    /* A layer the config does not know about means the config and the weights disagree. */
    snprintf(name, sizeof name, "%sh.%u.ln_1.weight", px, c->n_layers);
    if (el_model_find(m, name) >= 0)
        return el_errorf(EL_E_INVALID, "%s: tensor %s exists but config n_layer is %u",
                         m->path, name, c->n_layers);
    return EL_OK;
}

/* ---- memory layout ---------------------------------------------------------------------- */

typedef struct gpt2_state {
    gpt2_cfg c;
    uint32_t ctx;        /* positions in the cache */
    uint32_t chunk;      /* rows of the batch buffers */
    gpt2_w wte, wpe, lnf_w, lnf_b, cls;
    gpt2_layer *layers;  /* [n_layers] */
    float *kc;           /* [n_layers, ctx, dim] keys */
    float *vc;           /* [n_layers, ctx, dim] values */
    float *x;            /* [chunk, dim] residual stream */
    float *xb;           /* [chunk, dim] normed input of a block (position rows first) */
    float *xb2;          /* [chunk, dim] block output before the residual add */
    float *q;            /* [chunk, dim] */
    float *att_out;      /* [chunk, dim] */
    float *h;            /* [chunk, inner] MLP hidden */
    float *att;          /* [n_heads, ctx] attention scores */
    float *logits;       /* [vocab] */
    int32_t *gpu_ids;    /* [chunk] the batch's ids where the GPU reads them (act) */
    float *host_logits;  /* [vocab] logits copied back from the GPU (scratch) */
} gpt2_state;

/* The one sequence of carves, run by the plan (counting) and by session init (allocating). */
static gpt2_state *gpt2_carve(el_carver *kv, el_carver *act, el_carver *sc, const gpt2_cfg *c,
                              uint32_t ctx, uint32_t batch, uint32_t chunk) {
    gpt2_state *st = el_carve(sc, 1, sizeof *st, "gpt2 state");
    gpt2_layer *layers = el_carve(sc, c->n_layers, sizeof *layers, "layer table");
    uint64_t cache = (uint64_t)c->n_layers * ctx * c->dim;
    float *kc = el_carve(kv, 2 * cache * batch, sizeof(float), "KV cache");
    float *bufs[6];
    const uint64_t widths[6] = {c->dim, c->dim, c->dim, c->dim, c->dim, c->inner};
    for (int i = 0; i < 6; i++)
        bufs[i] = el_carve(act, (uint64_t)chunk * widths[i], sizeof(float), "activations");
    float *att = el_carve(act, (uint64_t)c->n_heads * ctx, sizeof(float), "attention scores");
    float *logits = el_carve(act, c->vocab, sizeof(float), "logits");
    /* The GPU's view of the ids and positions, and the host's copy of the logits (unused
     * on the CPU; the plan is the same on every device). */
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
    st->h = bufs[5];
    st->att = att;
    st->logits = logits;
    st->gpu_ids = gids;
    st->host_logits = hlogits;
    return st;
}

/* The context: --ctx, else n_positions; never more than n_positions (wpe has no rows past
 * it, so a longer context cannot be run, only rejected here, before anything is read). */
static el_status resolve_ctx(const el_model *m, const gpt2_cfg *c, uint32_t want,
                             uint32_t *ctx) {
    if (want == 0) want = c->max_pos;
    if (want > c->max_pos)
        return el_errorf(EL_E_USAGE, "--ctx %u: %s has learned positions for at most %u tokens "
                         "(n_positions); use --ctx %u or less", want, m->path, c->max_pos,
                         c->max_pos);
    *ctx = want;
    return EL_OK;
}

/* ---- family hooks ----------------------------------------------------------------------- */

static bool gpt2_detect(const el_model *m) {
    if (!m->has_config || strcmp(m->config.model_type, "gpt2")) return false;
    return (el_model_find(m, "wte.weight") >= 0 &&
            el_model_find(m, "h.0.attn.c_attn.weight") >= 0) ||
           (el_model_find(m, "transformer.wte.weight") >= 0 &&
            el_model_find(m, "transformer.h.0.attn.c_attn.weight") >= 0);
}

static el_status gpt2_plan(const el_model *m, const el_plan_params *p, uint64_t *kv_bytes,
                           uint64_t *act_bytes, uint64_t *scratch_bytes) {
    gpt2_cfg c;
    el_status s = gpt2_config(m, &c);
    if (s != EL_OK) return s;
    gpt2_w a, b, d, e, f;
    if ((s = gpt2_tensors(m, &c, p->dtype, NULL, &a, &b, &d, &e, &f)) != EL_OK) return s;
    uint32_t ctx = 0;
    if ((s = resolve_ctx(m, &c, p->ctx, &ctx)) != EL_OK) return s;
    el_carver kv = {NULL, EL_REGION_KV, 0, EL_OK}, sc = {NULL, EL_REGION_SCRATCH, 0, EL_OK};
    el_carver act = {NULL, EL_REGION_ACT, 0, EL_OK};
    gpt2_carve(&kv, &act, &sc, &c, ctx, p->batch ? p->batch : 1, el_session_planned_chunk(ctx));
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

/* True for [transformer.]h.N.<a Conv1D weight>. */
static bool is_conv1d(const char *name) {
    const char *s = name;
    if (!strncmp(s, "transformer.", 12)) s += 12;
    if (strncmp(s, "h.", 2) || !isdigit((unsigned char)s[2])) return false;
    for (s += 2; isdigit((unsigned char)*s); s++) {}
    if (*s++ != '.') return false;
    for (size_t k = 0; k < sizeof k_conv1d / sizeof k_conv1d[0]; k++)
        if (!strcmp(s, k_conv1d[k])) return true;
    return false;
}

static el_status gpt2_open(el_model *m) {
    /* Conv1D weights: placed transposed (see the top of this file). Only 2-D ones: a
     * wrong shape is reported by the plan, with the shape the config implies. */
    for (size_t i = 0; i < m->tensors.count; i++)
        if (m->tensors.items[i].ndim == 2 && is_conv1d(m->tensors.items[i].name))
            m->tensors.items[i].transpose2d = true;
    /* The tokenizer (models/family_tok.c); when none opens, el_tokenize reports why later. */
    static const char *const names[] = {"tokenizer.json", "vocab.json+merges.txt",
                                        "encoder.json+vocab.bpe"};
    return el_family_tok_open(m, names, 3, "tokenizer.json, vocab.json + merges.txt, or "
                              "encoder.json + vocab.bpe");
}

static el_status gpt2_session_init(el_session *s) {
    const el_model *m = s->model;
    gpt2_cfg c;
    el_status st = gpt2_config(m, &c);
    if (st != EL_OK) return st;
    uint32_t ctx = 0;
    if ((st = resolve_ctx(m, &c, s->ctx, &ctx)) != EL_OK) return st;
    el_carver kv = {s->arena, EL_REGION_KV, 0, EL_OK};
    el_carver sc = {s->arena, EL_REGION_SCRATCH, 0, EL_OK};
    el_carver act = {s->arena, EL_REGION_ACT, 0, EL_OK};
    uint32_t batch = s->plan.params.batch ? s->plan.params.batch : 1;
    gpt2_state *G = gpt2_carve(&kv, &act, &sc, &c, ctx, batch, el_session_planned_chunk(ctx));
    if (kv.status != EL_OK) return kv.status;
    if (act.status != EL_OK) return act.status;
    if (sc.status != EL_OK) return sc.status;
    for (size_t k = 0; k < sizeof k_conv1d / sizeof k_conv1d[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "%sh.0.%s", c.prefix, k_conv1d[k]);
        long i = el_model_find(m, name);
        if (i >= 0 && !m->tensors.items[i].transpose2d)
            return el_errorf(EL_E_USAGE, "%s: %s was loaded untransposed", m->path, name);
    }
    if ((st = gpt2_tensors(m, &c, EL_DT_COUNT, G->layers, &G->wte, &G->wpe, &G->lnf_w,
                           &G->lnf_b, &G->cls)) != EL_OK)
        return st;
    s->family_state = G;
    s->logits = s->on_gpu ? G->host_logits : G->logits;
    s->vocab = c.vocab;
    s->max_ctx = c.max_pos;
    s->n_stop = 0;
    int32_t bos = -1, eos = -1;
    el_token_special(m, &bos, &eos);
    if (m->config.eos_token_id >= 0 && m->config.eos_token_id < (int64_t)c.vocab)
        s->stop[s->n_stop++] = (int32_t)m->config.eos_token_id;
    if (eos >= 0 && eos < (int32_t)c.vocab && (s->n_stop == 0 || eos != s->stop[0]))
        s->stop[s->n_stop++] = eos;
    return EL_OK;
}

/* LayerNorm with the weight and bias of one block (the kernel takes one dtype for both;
 * a bias stored in another dtype, seen in no real checkpoint, is added separately). */
static void layernorm(const el_pool *p, float *out, const float *x, const gpt2_w *w,
                      const gpt2_w *b, size_t n, size_t dim, float eps) {
    if (w->dt == b->dt) {
        el_cpu_layernorm(p, out, x, w->p, b->p, w->dt, n, dim, eps);
        return;
    }
    el_cpu_layernorm(p, out, x, w->p, NULL, w->dt, n, dim, eps);
    el_cpu_add_bias(out, dim, b->p, b->dt, n, dim);
}

/* Row offset into a [rows, cols] weight of dt: the start of row r. */
static const void *row_at(const gpt2_w *w, size_t r, size_t cols) {
    return (const uint8_t *)w->p + r * cols * el_dtype_size(w->dt);
}

static void gpt2_forward(el_session *s, const int32_t *ids, size_t n, bool want_logits) {
    gpt2_state *G = s->family_state;
    const gpt2_cfg *c = &G->c;
    el_pool *p = s->pool;
    const size_t dim = c->dim, inner = c->inner, pos = s->pos, ctx = G->ctx;
    for (size_t t = 0; t < n; t++) {
        el_cpu_embed(G->x + t * dim, G->wte.p, G->wte.dt, dim, (size_t)ids[t]);
        el_cpu_embed(G->xb + t * dim, G->wpe.p, G->wpe.dt, dim, pos + t);
    }
    el_cpu_add(p, G->x, G->xb, n * dim);
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const gpt2_layer *w = &G->layers[l];
        float *kc = G->kc + (size_t)l * ctx * dim, *vc = G->vc + (size_t)l * ctx * dim;
        layernorm(p, G->xb, G->x, &w->ln1_w, &w->ln1_b, n, dim, c->eps);
        /* Fused QKV: rows [0, dim) of the placed [3 dim, dim] weight give q, the next dim
         * rows k and the last dim rows v, written straight into this layer's cache. */
        float *outs[3] = {G->q, kc + pos * dim, vc + pos * dim};
        for (size_t j = 0; j < 3; j++) {
            el_cpu_matmul(p, outs[j], dim, G->xb, row_at(&w->attn_w, j * dim, dim),
                          w->attn_w.dt, n, dim, dim);
            el_cpu_add_bias(outs[j], dim, row_at(&w->attn_b, j, dim), w->attn_b.dt, n, dim);
        }
        el_cpu_attention(p, G->att_out, G->q, kc, vc, G->att, ctx, n, pos, c->n_heads,
                         c->n_heads, c->head_dim);
        el_cpu_matmul(p, G->xb2, dim, G->att_out, w->proj_w.p, w->proj_w.dt, n, dim, dim);
        el_cpu_add_bias(G->xb2, dim, w->proj_b.p, w->proj_b.dt, n, dim);
        el_cpu_add(p, G->x, G->xb2, n * dim);
        layernorm(p, G->xb, G->x, &w->ln2_w, &w->ln2_b, n, dim, c->eps);
        el_cpu_matmul(p, G->h, inner, G->xb, w->fc_w.p, w->fc_w.dt, n, dim, inner);
        el_cpu_add_bias(G->h, inner, w->fc_b.p, w->fc_b.dt, n, inner);
        if (c->gelu_erf)
            el_cpu_gelu_erf(p, G->h, n * inner);
        else
            el_cpu_gelu_tanh(p, G->h, n * inner);
        el_cpu_matmul(p, G->xb2, dim, G->h, w->out_w.p, w->out_w.dt, n, inner, dim);
        el_cpu_add_bias(G->xb2, dim, w->out_b.p, w->out_b.dt, n, dim);
        el_cpu_add(p, G->x, G->xb2, n * dim);
    }
    if (!want_logits) return;
    layernorm(p, G->xb, G->x + (n - 1) * dim, &G->lnf_w, &G->lnf_b, 1, dim, c->eps);
    el_cpu_matmul(p, G->logits, c->vocab, G->xb, G->cls.p, G->cls.dt, 1, dim, c->vocab);
}

#ifdef EL_HAVE_CUDA
static el_status layernorm_cuda(float *out, const float *x, const gpt2_w *w, const gpt2_w *b,
                                size_t n, size_t dim, float eps, el_cuda_stream g) {
    if (w->dt == b->dt) return el_cuda_layernorm(out, x, w->p, b->p, w->dt, n, dim, eps, g);
    EL_TRY(el_cuda_layernorm(out, x, w->p, NULL, w->dt, n, dim, eps, g));
    return el_cuda_add_bias(out, dim, b->p, b->dt, n, dim, g);
}

/* gpt2_forward on the GPU: the same steps on the session's stream; only the ids go up and
 * the last position's logits come back. */
static el_status gpt2_forward_cuda(el_session *s, const int32_t *ids, size_t n,
                                   bool want_logits) {
    gpt2_state *G = s->family_state;
    const gpt2_cfg *c = &G->c;
    el_cuda_stream g = s->gpu_stream;
    const size_t dim = c->dim, inner = c->inner, pos = s->pos, ctx = G->ctx;
    EL_TRY(el_gpu_copy_async(G->gpu_ids, ids, n * sizeof *ids, s->gpu_stream));
    EL_TRY(el_cuda_embed(G->x, G->wte.p, G->wte.dt, dim, G->gpu_ids, n, g));
    EL_TRY(el_cuda_add_rows(G->x, G->wpe.p, G->wpe.dt, dim, pos, n, g));
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const gpt2_layer *w = &G->layers[l];
        float *kc = G->kc + (size_t)l * ctx * dim, *vc = G->vc + (size_t)l * ctx * dim;
        EL_TRY(layernorm_cuda(G->xb, G->x, &w->ln1_w, &w->ln1_b, n, dim, c->eps, g));
        float *outs[3] = {G->q, kc + pos * dim, vc + pos * dim};
        for (size_t j = 0; j < 3; j++)
            EL_TRY(el_cuda_linear(outs[j], dim, G->xb, row_at(&w->attn_w, j * dim, dim),
                                  w->attn_w.dt, row_at(&w->attn_b, j, dim), w->attn_b.dt, n,
                                  dim, dim, g));
        EL_TRY(el_cuda_attention(G->att_out, G->q, kc, vc, n, pos, c->n_heads, c->n_heads,
                                 c->head_dim, g));
        EL_TRY(el_cuda_linear(G->xb2, dim, G->att_out, w->proj_w.p, w->proj_w.dt, w->proj_b.p,
                              w->proj_b.dt, n, dim, dim, g));
        EL_TRY(el_cuda_add(G->x, G->xb2, n * dim, g));
        EL_TRY(layernorm_cuda(G->xb, G->x, &w->ln2_w, &w->ln2_b, n, dim, c->eps, g));
        EL_TRY(el_cuda_linear(G->h, inner, G->xb, w->fc_w.p, w->fc_w.dt, w->fc_b.p, w->fc_b.dt,
                              n, dim, inner, g));
        EL_TRY(c->gelu_erf ? el_cuda_gelu_erf(G->h, n * inner, g)
                           : el_cuda_gelu_tanh(G->h, n * inner, g));
        EL_TRY(el_cuda_linear(G->xb2, dim, G->h, w->out_w.p, w->out_w.dt, w->out_b.p,
                              w->out_b.dt, n, inner, dim, g));
        EL_TRY(el_cuda_add(G->x, G->xb2, n * dim, g));
    }
    if (!want_logits) return EL_OK;
    EL_TRY(layernorm_cuda(G->xb, G->x + (n - 1) * dim, &G->lnf_w, &G->lnf_b, 1, dim, c->eps, g));
    EL_TRY(el_cuda_matmul(G->logits, c->vocab, G->xb, G->cls.p, G->cls.dt, 1, dim, c->vocab, g));
    return el_gpu_copy_async(G->host_logits, G->logits, (uint64_t)c->vocab * sizeof(float),
                             s->gpu_stream);
}
#endif

const el_family el_family_gpt2 = {
    .name = "gpt2",
    .prompt_without_bos = true,
    .detect = gpt2_detect,
    .plan = gpt2_plan,
    .open = gpt2_open,
    .close = el_family_tok_close,
    .session_init = gpt2_session_init,
    .session_deinit = NULL,
    .forward = gpt2_forward,
#ifdef EL_HAVE_CUDA
    .forward_cuda = gpt2_forward_cuda,
#endif
    .tokenizer = el_family_tok_get,
};
