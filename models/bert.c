/* bert.c - the BERT encoder family (Hugging Face BertModel / BertForSequenceClassification
 * folders, with or without the "bert." prefix): config and tensor-table checks, the exact
 * scratch plan for batch x seq tokens (an encoder has no KV cache), the WordPiece tokenizer
 * found with the model, and the forward pass over packed sequences: embeddings (word +
 * position + token type, LayerNorm), then per layer q/k/v projections, bidirectional
 * attention within each sequence, output projection + residual + LayerNorm, GELU FFN +
 * residual + LayerNorm; the optional pooler (tanh) and classifier head. */
#include "loader/load_impl.h"
#include "models/arch.h"
#include "loader/model_tok.h"
#include "loader/stream.h"
#include "models/session_impl.h"
#include "models/weights.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FFN rows per pass: the intermediate activations are [rows, intermediate]; chunking them
 * keeps the scratch of a large batch from growing by 4x hidden per token. */
#define BERT_FFN_ROWS 256u

/* ---- config ----------------------------------------------------------------------------- */

typedef struct bert_cfg {
    char prefix[8];      /* "" or "bert." */
    uint32_t dim;        /* hidden size */
    uint32_t inter;      /* FFN width */
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t head_dim;
    uint32_t vocab;
    uint32_t max_pos;    /* rows of the position table */
    uint32_t n_types;    /* rows of the token type table */
    float eps;           /* LayerNorm epsilon */
    bool gelu_tanh;      /* hidden_act gelu_new / gelu_pytorch_tanh instead of exact gelu */
    bool gamma;          /* LayerNorms spelled gamma / beta (older checkpoints) */
    uint32_t n_labels;   /* sequence classification outputs; 0 = no head */
} bert_cfg;

static bool has_tensor(const el_model *m, const char *prefix, const char *name) {
    char full[200];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return el_model_find(m, full) >= 0;
}

static el_status bert_config(const el_model *m, bert_cfg *c) {
    const el_config *k = &m->config;
    memset(c, 0, sizeof *c);
    if (!m->has_config)
        return el_errorf(EL_E_INVALID, "%s: no config.json next to the model", m->path);
    if (has_tensor(m, "bert.", "embeddings.word_embeddings.weight"))
        snprintf(c->prefix, sizeof c->prefix, "bert.");
    c->gamma = !has_tensor(m, c->prefix, "embeddings.LayerNorm.weight") &&
               has_tensor(m, c->prefix, "embeddings.LayerNorm.gamma");
    const char *ha = k->hidden_act;
    c->gelu_tanh = !strcmp(ha, "gelu_new") || !strcmp(ha, "gelu_pytorch_tanh");
    if (ha[0] && strcmp(ha, "gelu") && !c->gelu_tanh)
        return el_errorf(EL_E_UNSUPPORTED, "%s: config hidden_act '%s': the bert family runs "
                         "gelu, gelu_new and gelu_pytorch_tanh", m->path, ha);
    if (k->position_embedding_type[0] && strcmp(k->position_embedding_type, "absolute"))
        return el_errorf(EL_E_UNSUPPORTED, "%s: config position_embedding_type '%s': the bert "
                         "family runs absolute position embeddings only", m->path,
                         k->position_embedding_type);
    if (k->problem_type[0] && strcmp(k->problem_type, "single_label_classification") &&
        strcmp(k->problem_type, "multi_label_classification") &&
        strcmp(k->problem_type, "regression"))
        return el_errorf(EL_E_UNSUPPORTED, "%s: config problem_type '%s': expected "
                         "single_label_classification, multi_label_classification or "
                         "regression", m->path, k->problem_type);
    c->dim = k->hidden_size;
    c->inter = k->intermediate_size;
    c->n_layers = k->num_layers;
    c->n_heads = k->num_heads;
    c->vocab = k->vocab_size;
    c->max_pos = k->max_positions;
    c->n_types = k->type_vocab_size ? k->type_vocab_size : 2; /* BertConfig's default */
    if (!c->dim || !c->inter || !c->n_layers || !c->n_heads || !c->vocab || !c->max_pos)
        return el_errorf(EL_E_INVALID, "%s: config needs hidden_size, intermediate_size, "
                         "num_hidden_layers, num_attention_heads, vocab_size and "
                         "max_position_embeddings > 0 (got %u, %u, %u, %u, %u, %u)", m->path,
                         c->dim, c->inter, c->n_layers, c->n_heads, c->vocab, c->max_pos);
    if (c->dim % c->n_heads)
        return el_errorf(EL_E_INVALID, "%s: hidden_size %u is not a multiple of "
                         "num_attention_heads %u", m->path, c->dim, c->n_heads);
    if (c->dim > (1u << 20) || c->inter > (1u << 22) || c->n_layers > 4096 ||
        c->max_pos > (1u << 20) || c->n_types > 65536)
        return el_errorf(EL_E_UNSUPPORTED, "%s: dimensions too large (hidden %u, intermediate "
                         "%u, layers %u, positions %u, types %u)", m->path, c->dim, c->inter,
                         c->n_layers, c->max_pos, c->n_types);
    c->head_dim = c->dim / c->n_heads;
    c->eps = k->norm_eps > 0 ? (float)k->norm_eps : 1e-12f; /* BertConfig's default */
    /* A sequence head is a classifier over the pooled [CLS] state; a classifier without a
     * pooler is a token-classification head, which embed can still run past. Its rows are
     * the labels (bert_tensors checks the rest of its shape). */
    long ci = el_model_find(m, "classifier.weight");
    if (ci >= 0 && has_tensor(m, c->prefix, "pooler.dense.weight")) {
        const el_tensor *t = &m->tensors.items[ci];
        if (t->ndim == 0 || t->shape[0] == 0 || t->shape[0] > 65536)
            return el_errorf(EL_E_INVALID, "%s: tensor classifier.weight has %llu rows: a "
                             "classifier has 1 to 65536 labels", m->path,
                             t->ndim ? (unsigned long long)t->shape[0] : 0ull);
        c->n_labels = (uint32_t)t->shape[0];
    }
    return EL_OK;
}

/* ---- tensors ---------------------------------------------------------------------------- */

/* Tensor roles: model-level first (the classifier, named without the prefix, last of them);
 * layer roles' names take the layer index. */
typedef enum bert_role {
    B_WORD, B_POS, B_TYPE, /* [vocab | max_pos | n_types, dim] embeddings */
    B_LN, B_LN_B,          /* [dim] embeddings LayerNorm */
    B_POOL, B_POOL_B,      /* [dim, dim], [dim] pooler dense (with a head) */
    B_CLS, B_CLS_B,        /* [n_labels, dim], [n_labels] classifier (with a head) */
    B_FIRST_LAYER,
    B_Q = B_FIRST_LAYER, B_Q_B, B_K, B_K_B, B_V, B_V_B, /* [dim, dim], [dim] */
    B_O, B_O_B,            /* attention output dense [dim, dim], [dim] */
    B_UP, B_UP_B,          /* intermediate dense [inter, dim], [inter] */
    B_DOWN, B_DOWN_B,      /* output dense [dim, inter], [dim] */
    B_LN1, B_LN1_B,        /* [dim] attention output LayerNorm */
    B_LN2, B_LN2_B,        /* [dim] output LayerNorm */
    B_COUNT
} bert_role;

#define LAYER "encoder.layer.%u."
static const char *const k_names[B_COUNT] = {
    [B_WORD] = "embeddings.word_embeddings.weight",
    [B_POS] = "embeddings.position_embeddings.weight",
    [B_TYPE] = "embeddings.token_type_embeddings.weight",
    [B_LN] = "embeddings.LayerNorm.weight", [B_LN_B] = "embeddings.LayerNorm.bias",
    [B_POOL] = "pooler.dense.weight", [B_POOL_B] = "pooler.dense.bias",
    [B_CLS] = "classifier.weight", [B_CLS_B] = "classifier.bias",
    [B_Q] = LAYER "attention.self.query.weight", [B_Q_B] = LAYER "attention.self.query.bias",
    [B_K] = LAYER "attention.self.key.weight", [B_K_B] = LAYER "attention.self.key.bias",
    [B_V] = LAYER "attention.self.value.weight", [B_V_B] = LAYER "attention.self.value.bias",
    [B_O] = LAYER "attention.output.dense.weight", [B_O_B] = LAYER "attention.output.dense.bias",
    [B_UP] = LAYER "intermediate.dense.weight", [B_UP_B] = LAYER "intermediate.dense.bias",
    [B_DOWN] = LAYER "output.dense.weight", [B_DOWN_B] = LAYER "output.dense.bias",
    [B_LN1] = LAYER "attention.output.LayerNorm.weight",
    [B_LN1_B] = LAYER "attention.output.LayerNorm.bias",
    [B_LN2] = LAYER "output.LayerNorm.weight", [B_LN2_B] = LAYER "output.LayerNorm.bias",
};
/* The LayerNorms in the older gamma / beta spelling (bert_cfg.gamma). */
static const char *const k_gamma[B_COUNT] = {
    [B_LN] = "embeddings.LayerNorm.gamma", [B_LN_B] = "embeddings.LayerNorm.beta",
    [B_LN1] = LAYER "attention.output.LayerNorm.gamma",
    [B_LN1_B] = LAYER "attention.output.LayerNorm.beta",
    [B_LN2] = LAYER "output.LayerNorm.gamma", [B_LN2_B] = LAYER "output.LayerNorm.beta",
};
#undef LAYER

typedef struct bert_layer {
    el_weight w[B_COUNT]; /* by role (model-level roles in bert_state.top) */
} bert_layer;

/* The LayerNorm at role r (weight r, bias r + 1) in one dtype: the kernel takes one. */
static el_status ln_dtype(const el_model *m, const char *px, const char *const *names,
                          const el_weight *w, int r, uint32_t layer) {
    if (w[r].dt == w[r + 1].dt) return EL_OK;
    char wn[160], bn[160];
    el_arch_name(wn, sizeof wn, names[r], layer);
    el_arch_name(bn, sizeof bn, names[r + 1], layer);
    return el_errorf(EL_E_UNSUPPORTED, "%s: %s%s is %s but %s%s is %s; load with --dtype f32 "
                     "or f16 to make them one dtype", m->path, px, wn, el_dtype_name(w[r].dt),
                     px, bn, el_dtype_name(w[r + 1].dt));
}

/* Checks (layers NULL) or binds every tensor the model runs with. */
static el_status bert_tensors(const el_model *m, const bert_cfg *c, el_dtype target,
                              bert_layer *layers, bert_layer *top) {
    const uint64_t d = c->dim, in = c->inter, nl = c->n_labels, hd = nl ? d : 0;
    const uint64_t sh[B_COUNT][2] = { /* {rows, cols}; 0 rows: a vector, {0, 0}: absent */
        [B_WORD] = {c->vocab, d}, [B_POS] = {c->max_pos, d}, [B_TYPE] = {c->n_types, d},
        [B_LN] = {0, d}, [B_LN_B] = {0, d}, [B_POOL] = {hd, hd}, [B_POOL_B] = {0, hd},
        [B_CLS] = {nl, hd}, [B_CLS_B] = {0, nl},
        [B_Q] = {d, d}, [B_Q_B] = {0, d}, [B_K] = {d, d}, [B_K_B] = {0, d},
        [B_V] = {d, d}, [B_V_B] = {0, d}, [B_O] = {d, d}, [B_O_B] = {0, d},
        [B_UP] = {in, d}, [B_UP_B] = {0, in}, [B_DOWN] = {d, in}, [B_DOWN_B] = {0, d},
        [B_LN1] = {0, d}, [B_LN1_B] = {0, d}, [B_LN2] = {0, d}, [B_LN2_B] = {0, d},
    };
    const char *names[B_COUNT], *px = c->prefix;
    for (int r = 0; r < B_COUNT; r++) names[r] = c->gamma && k_gamma[r] ? k_gamma[r] : k_names[r];
    EL_TRY(el_weight_bind_roles(m, "bert", px, names, sh, 0, B_CLS, 0, target, top->w));
    EL_TRY(el_weight_bind_roles(m, "bert", "", names, sh, B_CLS, B_FIRST_LAYER, 0, target,
                                top->w));
    EL_TRY(ln_dtype(m, px, names, top->w, B_LN, 0));
    bert_layer tmp = {0}; /* where checks (layers NULL) bind to */
    for (uint32_t l = 0; l < c->n_layers; l++) {
        bert_layer *L = layers ? &layers[l] : &tmp;
        EL_TRY(el_weight_bind_roles(m, "bert", px, names, sh, B_FIRST_LAYER, B_COUNT, l, target,
                                    L->w));
        EL_TRY(ln_dtype(m, px, names, L->w, B_LN1, l));
        EL_TRY(ln_dtype(m, px, names, L->w, B_LN2, l));
    }
    return EL_OK;
}

/* ---- memory layout ---------------------------------------------------------------------- */

typedef struct bert_state {
    bert_cfg c;
    uint32_t seq;             /* planned tokens per sequence (the scores' stride) */
    bert_layer top;           /* model-level roles */
    bert_layer *layers;       /* [n_layers] */
    float *x;                 /* [batch * seq, dim] residual stream (packed rows) */
    float *q;                 /* [batch * seq, dim] queries, then attention output */
    float *k;                 /* [batch * seq, dim] keys, then dense outputs */
    float *v;                 /* [batch * seq, dim] values */
    float *ffn;               /* [ffn_rows, inter] */
    uint32_t ffn_rows;        /* min(batch * seq, BERT_FFN_ROWS) */
    float *att;               /* [batch * n_heads, seq] attention scores */
    float *cls;               /* [batch, dim] [CLS] rows (with a head) */
    float *pooled;            /* [batch, dim] pooler output (with a head) */
    char (*labels)[EL_LABEL_NAME_MAX]; /* [n_labels] (scratch): el_encoder.labels */
    /* GPU plans only (the arena's weights and act in CUDA memory): */
    int32_t *gpu_idx;         /* [5, batch * seq] el_encoder.idx where the kernels read it (act) */
    float *host_hidden;       /* [batch * seq, dim] hidden states copied back (scratch) */
    float *gpu_logits;        /* [batch, n_labels] (act) */
} bert_state;

/* The one sequence of carves after the generic encoder's, run by the plan (counting) and by
 * encoder init (allocating). */
static bert_state *bert_carve(el_carver *sc, el_carver *act, const bert_cfg *c, uint32_t batch,
                              uint32_t seq, bool gpu) {
    const uint64_t rows = (uint64_t)batch * seq, heads = c->n_labels ? (uint64_t)batch * c->dim : 0;
    bert_state v = {.c = *c, .seq = seq};
    v.ffn_rows = (uint32_t)(rows < BERT_FFN_ROWS ? rows : BERT_FFN_ROWS);
    bert_state *st = el_carve(sc, 1, sizeof *st, "bert state");
    v.layers = el_carve(sc, c->n_layers, sizeof *v.layers, "layer table");
    v.x = el_carve(act, rows * c->dim, sizeof(float), "activations");
    v.q = el_carve(act, rows * c->dim, sizeof(float), "activations");
    v.k = el_carve(act, rows * c->dim, sizeof(float), "activations");
    v.v = el_carve(act, rows * c->dim, sizeof(float), "activations");
    v.ffn = el_carve(act, (uint64_t)v.ffn_rows * c->inter, sizeof(float), "FFN activations");
    v.att = el_carve(act, (uint64_t)batch * c->n_heads * seq, sizeof(float), "attention scores");
    v.cls = el_carve(act, heads, sizeof(float), "pooler");
    v.pooled = el_carve(act, heads, sizeof(float), "pooler");
    v.labels = el_carve(sc, c->n_labels, EL_LABEL_NAME_MAX, "label names");
    v.host_hidden = el_carve(sc, gpu ? rows * c->dim : 0, sizeof(float), "hidden states (host)");
    v.gpu_idx = el_carve(act, gpu ? 5 * rows : 0, sizeof(int32_t), "row indices");
    v.gpu_logits = el_carve(act, gpu ? (uint64_t)batch * c->n_labels : 0, sizeof(float), "logits");
    if (st) *st = v;
    return st;
}

/* ---- family hooks ----------------------------------------------------------------------- */

static bool bert_detect(const el_family *f, const el_model *m) {
    (void)f;
    return m->has_config &&
           (!strcmp(m->config.model_type, "bert") || !strncmp(m->config.architecture, "Bert", 4)) &&
           (has_tensor(m, "", k_names[B_WORD]) || has_tensor(m, "bert.", k_names[B_WORD]));
}

static el_status bert_plan(const el_model *m, const el_plan_params *p, uint64_t *kv_bytes,
                           uint64_t *act_bytes, uint64_t *scratch_bytes) {
    bert_cfg c;
    bert_layer top;
    uint32_t ctx = 0;
    EL_TRY(bert_config(m, &c));
    EL_TRY(bert_tensors(m, &c, p->dtype, NULL, &top));
    EL_TRY(el_ctx_resolve(m, p->ctx, c.max_pos, "max_position_embeddings", true, &ctx));
    const uint32_t batch = p->batch ? p->batch : 1;
    el_carver sc = {NULL, EL_REGION_SCRATCH, 0, EL_OK}, act = {NULL, EL_REGION_ACT, 0, EL_OK};
    el_encoder_carve(&sc, batch, ctx);
    bert_carve(&sc, &act, &c, batch, ctx, p->memory != EL_MEMORY_HOST);
    if (sc.status != EL_OK) return sc.status;
    if (act.status != EL_OK) return act.status;
    *kv_bytes = 0;
    *act_bytes = act.bytes;
    *scratch_bytes = sc.bytes;
    return EL_OK;
}

/* The tokenizer (loader/model_tok.c): tokenizer.json, else vocab.txt. When none opens,
 * the reason is kept for el_encoder_tokenize, so inspect, plan, load and --ids still work. */
/* Marks each layer's tensors ("encoder.layer.N.") with their layer (el_tensor.stream_layer),
 * so a streamed plan knows what to read per layer. A config the plan will refuse marks
 * nothing. */
static void bert_mark_layers(el_model *m) {
    bert_cfg c;
    if (bert_config(m, &c) != EL_OK) return;
    static const char key[] = "encoder.layer.";
    for (size_t i = 0; i < m->tensors.count; i++) {
        el_tensor *t = &m->tensors.items[i];
        const char *at = strstr(t->name, key);
        if (!at || at - t->name != (ptrdiff_t)strlen(c.prefix) ||
            strncmp(t->name, c.prefix, strlen(c.prefix)))
            continue;
        char *end = NULL;
        unsigned long l = strtoul(at + sizeof key - 1, &end, 10);
        if (end && *end == '.' && end != at + sizeof key - 1 && l < c.n_layers)
            t->stream_layer = (uint32_t)l + 1;
    }
}

static el_status bert_open(el_model *m) {
    static const char *const names[] = {"tokenizer.json", "vocab.txt"};
    bert_mark_layers(m);
    return el_family_tok_open(m, names, 2, "tokenizer.json or vocab.txt; or give token ids "
                              "with --ids");
}

static el_status bert_encoder_init(el_encoder *e, el_carver *sc, el_carver *act) {
    const el_model *m = e->model;
    bert_cfg c;
    uint32_t ctx = 0;
    EL_TRY(bert_config(m, &c));
    EL_TRY(el_ctx_resolve(m, e->max_seq, c.max_pos, "max_position_embeddings", true, &ctx));
    bert_state *st = bert_carve(sc, act, &c, e->max_batch, ctx,
                                e->plan.params.memory != EL_MEMORY_HOST);
    if (sc->status != EL_OK) return sc->status;
    if (act->status != EL_OK) return act->status;
    EL_TRY(bert_tensors(m, &c, EL_DT_COUNT, st->layers, &st->top));
    e->family_state = st;
    e->dim = c.dim;
    e->vocab = c.vocab;
    e->n_types = c.n_types;
    e->n_labels = c.n_labels;
    e->labels = st->labels;
    e->out = e->on_gpu ? st->host_hidden : st->q;
    e->labels_named = c.n_labels && m->config.id2label && m->config.num_labels == c.n_labels;
    for (uint32_t i = 0; i < c.n_labels; i++) {
        if (e->labels_named)
            snprintf(st->labels[i], EL_LABEL_NAME_MAX, "%s", m->config.id2label[i]);
        else
            snprintf(st->labels[i], EL_LABEL_NAME_MAX, "LABEL_%u", i);
    }
    return EL_OK;
}

/* Embeddings (word + position within the sequence + token type, LayerNorm), then per
 * layer: q, k, v; attention within each sequence; output dense + residual + LayerNorm;
 * FFN (in chunks of ffn_rows) + residual + LayerNorm. */
static el_status bert_encode(el_encoder *e, const float **hidden) {
    bert_state *S = e->family_state;
    const bert_cfg *c = &S->c;
    const el_ops *o = e->ops;
    const el_exec ex = {e->pool, e->gpu_stream, 0, NULL, 0, NULL}, *x = &ex;
    const size_t dim = c->dim, rows = e->n_rows;
    const el_weight *top = S->top.w;
    const int32_t *di = e->idx; /* the packed rows' indices where the backend reads them */
    if (!o->host_visible) {
        EL_TRY(o->upload(x, S->gpu_idx, e->idx, 5 * rows * sizeof *e->idx));
        di = S->gpu_idx;
    }
    const el_seqs sq = {e->starts, e->lengths, e->n_seq, e->max_len, rows, di + 3 * rows,
                        di + 4 * rows};
    EL_TRY(o->embed(x, S->x, top[B_WORD], dim, di, rows));
    EL_TRY(o->embed_add(x, S->x, top[B_POS], dim, di + 2 * rows, 0, rows));
    EL_TRY(o->embed_add(x, S->x, top[B_TYPE], dim, di + rows, 0, rows));
    EL_TRY(o->norm(x, EL_NORM_LAYER, S->x, S->x, top[B_LN], top[B_LN_B], rows, dim, c->eps));
    el_stream *R = e->model->stream;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const el_weight *w = S->layers[l].w;
        bert_layer moved;
        if (R && l >= R->first) { /* streamed: the whole batch through layer l in its slot */
            unsigned k = 0;
            EL_TRY(el_stream_acquire(R, l, &k));
            moved = S->layers[l];
            for (int r = 0; k && r < B_COUNT; r++)
                moved.w[r].p = el_stream_in_slot(R, k, moved.w[r].p);
            w = moved.w;
        }
        EL_TRY(o->linear(x, S->q, dim, S->x, w[B_Q], w[B_Q_B], rows, dim, dim));
        EL_TRY(o->linear(x, S->k, dim, S->x, w[B_K], w[B_K_B], rows, dim, dim));
        EL_TRY(o->linear(x, S->v, dim, S->x, w[B_V], w[B_V_B], rows, dim, dim));
        EL_TRY(o->attention_bidir(x, S->q, S->q, S->k, S->v, &sq, c->n_heads, c->head_dim,
                                  S->att, S->seq));
        EL_TRY(o->linear(x, S->k, dim, S->q, w[B_O], w[B_O_B], rows, dim, dim));
        EL_TRY(o->add(x, S->k, S->x, rows * dim));
        EL_TRY(o->norm(x, EL_NORM_LAYER, S->x, S->k, w[B_LN1], w[B_LN1_B], rows, dim, c->eps));
        for (size_t r0 = 0; r0 < rows; r0 += S->ffn_rows) {
            const size_t n = rows - r0 < S->ffn_rows ? rows - r0 : S->ffn_rows;
            EL_TRY(o->linear(x, S->ffn, c->inter, S->x + r0 * dim, w[B_UP], w[B_UP_B], n, dim,
                             c->inter));
            EL_TRY(o->act(x, c->gelu_tanh ? EL_ACT_GELU_TANH : EL_ACT_GELU_ERF, S->ffn, NULL,
                          n * c->inter));
            EL_TRY(o->linear(x, S->k + r0 * dim, dim, S->ffn, w[B_DOWN], w[B_DOWN_B], n,
                             c->inter, dim));
        }
        EL_TRY(o->add(x, S->k, S->x, rows * dim));
        EL_TRY(o->norm(x, EL_NORM_LAYER, S->x, S->k, w[B_LN2], w[B_LN2_B], rows, dim, c->eps));
    }
    *hidden = o->host_visible ? S->x : S->host_hidden;
    return o->host_visible ? EL_OK
                           : o->download(x, S->host_hidden, S->x, rows * dim * sizeof(float));
}

/* After bert_encode: the pooler (dense + tanh) and the classifier on each sequence's
 * first row. */
static el_status bert_classify(el_encoder *e, float *logits) {
    bert_state *S = e->family_state;
    const bert_cfg *c = &S->c;
    const el_ops *o = e->ops;
    const el_exec ex = {e->pool, e->gpu_stream, 0, NULL, 0, NULL}, *x = &ex;
    const size_t dim = c->dim, n = e->n_seq;
    const el_weight *top = S->top.w;
    for (size_t b = 0; b < n; b++)
        EL_TRY(o->copy(x, S->cls + b * dim, S->x + (size_t)e->starts[b] * dim, dim));
    EL_TRY(o->linear(x, S->pooled, dim, S->cls, top[B_POOL], top[B_POOL_B], n, dim, dim));
    EL_TRY(o->act(x, EL_ACT_TANH, S->pooled, NULL, n * dim));
    float *lg = o->host_visible ? logits : S->gpu_logits;
    EL_TRY(o->linear(x, lg, c->n_labels, S->pooled, top[B_CLS], top[B_CLS_B], n, dim, c->n_labels));
    if (o->host_visible) return EL_OK;
    return o->download(x, logits, lg, n * c->n_labels * sizeof(float));
}

const el_family el_family_bert = {
    .name = "bert",
    .detect = bert_detect,
    .plan = bert_plan,
    .open = bert_open,
    .close = el_family_tok_close,
    .tokenizer = el_family_tok_get,
    .tokenizer_load = el_family_tok_load,
    .encoder_init = bert_encoder_init,
    .encode = bert_encode,
    .classify = bert_classify,
};
