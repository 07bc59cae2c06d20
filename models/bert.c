/* bert.c - the BERT encoder family (Hugging Face BertModel / BertForSequenceClassification
 * folders, with or without the "bert." prefix): config and tensor-table checks, the exact
 * scratch plan for batch x seq tokens (an encoder has no KV cache), the WordPiece tokenizer
 * found with the model, and the forward pass over packed sequences: embeddings (word +
 * position + token type, LayerNorm), then per layer q/k/v projections, bidirectional
 * attention within each sequence, output projection + residual + LayerNorm, GELU FFN +
 * residual + LayerNorm; the optional pooler (tanh) and classifier head. */
#include "loader/load_impl.h"
#include "models/encoder_impl.h"
#include "models/family_tok.h"
#include "models/weights.h"

#include <math.h>
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
    uint32_t n_labels;   /* sequence classification outputs; 0 = no head */
} bert_cfg;


/* Shape of tensor i as "[a, b]" for messages. */
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
    if (!k->hidden_act[0] || !strcmp(k->hidden_act, "gelu"))
        c->gelu_tanh = false;
    else if (!strcmp(k->hidden_act, "gelu_new") || !strcmp(k->hidden_act, "gelu_pytorch_tanh"))
        c->gelu_tanh = true;
    else
        return el_errorf(EL_E_UNSUPPORTED, "%s: config hidden_act '%s': the bert family runs "
                         "gelu, gelu_new and gelu_pytorch_tanh", m->path, k->hidden_act);
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
     * pooler is a token-classification head, which embed can still run past. */
    long ci = el_model_find(m, "classifier.weight");
    if (ci >= 0 && has_tensor(m, c->prefix, "pooler.dense.weight")) {
        const el_tensor *t = &m->tensors.items[ci];
        if (t->ndim != 2 || t->shape[1] != c->dim || t->shape[0] == 0 || t->shape[0] > 65536) {
            char got[96];
            el_shape_str(t, got, sizeof got);
            return el_errorf(EL_E_INVALID, "%s: tensor classifier.weight has shape %s, "
                             "expected [labels, %u] with 1..65536 labels", m->path, got, c->dim);
        }
        c->n_labels = (uint32_t)t->shape[0];
    }
    return EL_OK;
}

/* ---- tensors ---------------------------------------------------------------------------- */

typedef el_weight bert_w;

typedef struct bert_layer {
    bert_w wq, bq, wk, bk, wv, bv; /* [dim, dim], [dim] */
    bert_w wo, bo;                 /* attention output dense [dim, dim], [dim] */
    bert_w ln1_w, ln1_b;           /* attention output LayerNorm [dim] */
    bert_w wi, bi;                 /* intermediate dense [inter, dim], [inter] */
    bert_w wo2, bo2;               /* output dense [dim, inter], [dim] */
    bert_w ln2_w, ln2_b;           /* output LayerNorm [dim] */
} bert_layer;

typedef struct bert_weights {
    bert_w word, pos, type;        /* [vocab | max_pos | n_types, dim] */
    bert_w ln_w, ln_b;             /* embeddings LayerNorm [dim] */
    bert_w pool_w, pool_b;         /* pooler dense [dim, dim], [dim] (with a head) */
    bert_w cls_w, cls_b;           /* classifier [n_labels, dim], [n_labels] (with a head) */
} bert_weights;

static el_status bind(const el_model *m, const char *prefix, const char *name, uint64_t rows,
                      uint64_t cols, el_dtype target, bert_w *out) {
    return el_weight_bind(m, "bert", prefix, name, rows, cols, target, out);
}

/* A LayerNorm: base.weight / base.bias, or the older base.gamma / base.beta spelling; both
 * must end up in one dtype (the kernel takes one). */
static el_status bind_ln(const el_model *m, const char *prefix, const char *base, uint32_t dim,
                         el_dtype target, bert_w *w, bert_w *b) {
    char wn[160], bn[160];
    snprintf(wn, sizeof wn, "%s.weight", base);
    snprintf(bn, sizeof bn, "%s.bias", base);
    if (!has_tensor(m, prefix, wn) && has_tensor(m, prefix, "embeddings.LayerNorm.gamma")) {
        snprintf(wn, sizeof wn, "%s.gamma", base);
        snprintf(bn, sizeof bn, "%s.beta", base);
    }
    el_status s = bind(m, prefix, wn, 0, dim, target, w);
    if (s == EL_OK) s = bind(m, prefix, bn, 0, dim, target, b);
    if (s == EL_OK && w->dt != b->dt)
        return el_errorf(EL_E_UNSUPPORTED, "%s: %s%s is %s but %s%s is %s; load with --dtype "
                         "f32 or f16 to make them one dtype", m->path, prefix, wn,
                         el_dtype_name(w->dt), prefix, bn, el_dtype_name(b->dt));
    return s;
}

/* Checks (layers NULL) or binds every tensor the model runs with. */
static el_status bert_tensors(const el_model *m, const bert_cfg *c, el_dtype target,
                              bert_layer *layers, bert_weights *w) {
    const char *px = c->prefix;
    el_status s;
    if ((s = bind(m, px, "embeddings.word_embeddings.weight", c->vocab, c->dim, target,
                  &w->word)) != EL_OK ||
        (s = bind(m, px, "embeddings.position_embeddings.weight", c->max_pos, c->dim, target,
                  &w->pos)) != EL_OK ||
        (s = bind(m, px, "embeddings.token_type_embeddings.weight", c->n_types, c->dim, target,
                  &w->type)) != EL_OK ||
        (s = bind_ln(m, px, "embeddings.LayerNorm", c->dim, target, &w->ln_w, &w->ln_b)) !=
            EL_OK)
        return s;
    if (c->n_labels) {
        if ((s = bind(m, px, "pooler.dense.weight", c->dim, c->dim, target, &w->pool_w)) !=
                EL_OK ||
            (s = bind(m, px, "pooler.dense.bias", 0, c->dim, target, &w->pool_b)) != EL_OK ||
            (s = bind(m, "", "classifier.weight", c->n_labels, c->dim, target, &w->cls_w)) !=
                EL_OK ||
            (s = bind(m, "", "classifier.bias", 0, c->n_labels, target, &w->cls_b)) != EL_OK)
            return s;
    }
    char name[160], base[160];
    bert_layer tmp; /* where checks (layers NULL) bind to */
    memset(&tmp, 0, sizeof tmp);
    for (uint32_t l = 0; l < c->n_layers; l++) {
        bert_layer *L = layers ? &layers[l] : &tmp;
        const struct {
            const char *suffix;
            uint64_t rows, cols;
            bert_w *dst;
        } t[] = {
            {"attention.self.query.weight", c->dim, c->dim, &L->wq},
            {"attention.self.query.bias", 0, c->dim, &L->bq},
            {"attention.self.key.weight", c->dim, c->dim, &L->wk},
            {"attention.self.key.bias", 0, c->dim, &L->bk},
            {"attention.self.value.weight", c->dim, c->dim, &L->wv},
            {"attention.self.value.bias", 0, c->dim, &L->bv},
            {"attention.output.dense.weight", c->dim, c->dim, &L->wo},
            {"attention.output.dense.bias", 0, c->dim, &L->bo},
            {"intermediate.dense.weight", c->inter, c->dim, &L->wi},
            {"intermediate.dense.bias", 0, c->inter, &L->bi},
            {"output.dense.weight", c->dim, c->inter, &L->wo2},
            {"output.dense.bias", 0, c->dim, &L->bo2},
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            snprintf(name, sizeof name, "encoder.layer.%u.%s", l, t[i].suffix);
            if ((s = bind(m, px, name, t[i].rows, t[i].cols, target, t[i].dst)) != EL_OK)
                return s;
        }
        snprintf(base, sizeof base, "encoder.layer.%u.attention.output.LayerNorm", l);
        if ((s = bind_ln(m, px, base, c->dim, target, &L->ln1_w, &L->ln1_b)) != EL_OK) return s;
        snprintf(base, sizeof base, "encoder.layer.%u.output.LayerNorm", l);
        if ((s = bind_ln(m, px, base, c->dim, target, &L->ln2_w, &L->ln2_b)) != EL_OK) return s;
    }
    return EL_OK;
}

/* ---- memory layout ---------------------------------------------------------------------- */

typedef struct bert_state {
    bert_cfg c;
    uint32_t batch, seq;      /* planned maxima */
    bert_weights w;
    bert_layer *layers;       /* [n_layers] */
    float *x;                 /* [batch * seq, dim] residual stream (packed rows) */
    float *q;                 /* [batch * seq, dim] queries, then attention output */
    float *k;                 /* [batch * seq, dim] keys, then dense outputs */
    float *v;                 /* [batch * seq, dim] values */
    float *ffn;               /* [min(batch * seq, BERT_FFN_ROWS), inter] */
    uint32_t ffn_rows;
    float *att;               /* [batch * n_heads, seq] attention scores */
    float *cls;               /* [batch, dim] [CLS] rows (with a head) */
    float *pooled;            /* [batch, dim] pooler output (with a head) */
    int32_t *host_idx;        /* [5, batch * seq] ids, type ids, positions, sequence start
                                 and length per row, built here (scratch) ... */
    /* GPU plans only (the arena's weights and act in CUDA memory): */
    int32_t *gpu_idx;         /* ... and where the kernels read them (act) */
    float *host_hidden;       /* [batch * seq, dim] hidden states copied back (scratch) */
    float *gpu_logits;        /* [batch, n_labels] (act) */
} bert_state;

/* The one sequence of carves after the generic encoder's, run by the plan (counting) and by
 * encoder init (allocating). */
static bert_state *bert_carve(el_carver *sc, el_carver *act, const bert_cfg *c, uint32_t batch,
                              uint32_t seq, bool gpu, float **logits,
                              char (**labels)[EL_LABEL_NAME_MAX]) {
    const uint64_t rows = (uint64_t)batch * seq;
    const uint64_t ffn_rows = rows < BERT_FFN_ROWS ? rows : BERT_FFN_ROWS;
    bert_state *st = el_carve(sc, 1, sizeof *st, "bert state");
    bert_layer *layers = el_carve(sc, c->n_layers, sizeof *layers, "layer table");
    float *bufs[4];
    for (int i = 0; i < 4; i++)
        bufs[i] = el_carve(act, rows * c->dim, sizeof(float), "activations");
    float *ffn = el_carve(act, ffn_rows * c->inter, sizeof(float), "FFN activations");
    float *att = el_carve(act, (uint64_t)batch * c->n_heads * seq, sizeof(float),
                          "attention scores");
    float *cls = el_carve(act, c->n_labels ? (uint64_t)batch * c->dim : 0, sizeof(float), "pooler");
    float *pooled = el_carve(act, c->n_labels ? (uint64_t)batch * c->dim : 0, sizeof(float),
                             "pooler");
    *logits = el_carve(sc, (uint64_t)batch * c->n_labels, sizeof(float), "logits");
    *labels = el_carve(sc, c->n_labels, EL_LABEL_NAME_MAX, "label names");
    float *hh = el_carve(sc, gpu ? rows * c->dim : 0, sizeof(float), "hidden states (host)");
    int32_t *hidx = el_carve(sc, 5 * rows, sizeof(int32_t), "row indices (host)");
    int32_t *gidx = el_carve(act, gpu ? 5 * rows : 0, sizeof(int32_t), "row indices");
    float *glog = el_carve(act, gpu ? (uint64_t)batch * c->n_labels : 0, sizeof(float), "logits");
    if (!st) return NULL;
    memset(st, 0, sizeof *st);
    st->c = *c;
    st->batch = batch;
    st->seq = seq;
    st->layers = layers;
    st->x = bufs[0];
    st->q = bufs[1];
    st->k = bufs[2];
    st->v = bufs[3];
    st->ffn = ffn;
    st->ffn_rows = (uint32_t)ffn_rows;
    st->att = att;
    st->cls = cls;
    st->pooled = pooled;
    st->host_hidden = hh;
    st->host_idx = hidx;
    st->gpu_idx = gidx;
    st->gpu_logits = glog;
    return st;
}

static el_status resolve_ctx(const el_model *m, const bert_cfg *c, uint32_t want, uint32_t *ctx) {
    if (want == 0) want = c->max_pos;
    if (want > c->max_pos)
        return el_errorf(EL_E_USAGE, "--ctx %u: %s has %u positions "
                         "(max_position_embeddings)", want, m->path, c->max_pos);
    *ctx = want;
    return EL_OK;
}

/* ---- family hooks ----------------------------------------------------------------------- */

static bool bert_detect(const el_family *f, const el_model *m) {
    (void)f;
    if (!m->has_config) return false;
    if (strcmp(m->config.model_type, "bert") && strncmp(m->config.architecture, "Bert", 4))
        return false;
    return el_model_find(m, "embeddings.word_embeddings.weight") >= 0 ||
           el_model_find(m, "bert.embeddings.word_embeddings.weight") >= 0;
}

static el_status bert_plan(const el_model *m, const el_plan_params *p, uint64_t *kv_bytes,
                           uint64_t *act_bytes, uint64_t *scratch_bytes) {
    bert_cfg c;
    el_status s = bert_config(m, &c);
    if (s != EL_OK) return s;
    bert_weights w;
    if ((s = bert_tensors(m, &c, p->dtype, NULL, &w)) != EL_OK) return s;
    uint32_t ctx = 0;
    if ((s = resolve_ctx(m, &c, p->ctx, &ctx)) != EL_OK) return s;
    const uint32_t batch = p->batch ? p->batch : 1;
    el_carver sc = {NULL, EL_REGION_SCRATCH, 0, EL_OK}, act = {NULL, EL_REGION_ACT, 0, EL_OK};
    el_encoder *e;
    el_pool *pool;
    uint32_t *starts, *lengths;
    int32_t *ids, *tids;
    float *logits;
    char(*labels)[EL_LABEL_NAME_MAX];
    el_encoder_carve_generic(&sc, batch, ctx, &e, &pool, &starts, &lengths, &ids, &tids);
    bert_carve(&sc, &act, &c, batch, ctx, p->memory != EL_MEMORY_HOST, &logits, &labels);
    if (sc.status != EL_OK) return sc.status;
    if (act.status != EL_OK) return act.status;
    *kv_bytes = 0;
    *act_bytes = act.bytes;
    *scratch_bytes = sc.bytes;
    return EL_OK;
}

/* The tokenizer (models/family_tok.c): tokenizer.json, else vocab.txt. When none opens,
 * the reason is kept for el_encoder_tokenize, so inspect, plan, load and --ids still work. */
static el_status bert_open(el_model *m) {
    static const char *const names[] = {"tokenizer.json", "vocab.txt"};
    return el_family_tok_open(m, names, 2, "tokenizer.json or vocab.txt; or give token ids "
                              "with --ids");
}

static el_status bert_encoder_init(el_encoder *e, el_carver *sc, el_carver *act) {
    const el_model *m = e->model;
    bert_cfg c;
    el_status s = bert_config(m, &c);
    if (s != EL_OK) return s;
    uint32_t ctx = 0;
    if ((s = resolve_ctx(m, &c, e->max_seq, &ctx)) != EL_OK) return s;
    float *logits;
    char(*labels)[EL_LABEL_NAME_MAX];
    bert_state *st = bert_carve(sc, act, &c, e->max_batch, ctx,
                                e->plan.params.memory != EL_MEMORY_HOST, &logits, &labels);
    if (sc->status != EL_OK) return sc->status;
    if (act->status != EL_OK) return act->status;
    if ((s = bert_tensors(m, &c, EL_DT_COUNT, st->layers, &st->w)) != EL_OK) return s;
    e->family_state = st;
    e->dim = c.dim;
    e->vocab = c.vocab;
    e->n_types = c.n_types;
    e->n_labels = c.n_labels;
    e->labels = labels;
    e->logits = logits;
    e->out = e->on_gpu ? st->host_hidden : st->q;
    if (e->on_gpu && !st->host_hidden)
        return el_errorf(EL_E_USAGE, "%s: the encoder runs on the GPU but the plan was made for "
                         "host memory", m->path);
    e->labels_named = c.n_labels && m->config.id2label && m->config.num_labels == c.n_labels;
    for (uint32_t i = 0; i < c.n_labels; i++) {
        if (e->labels_named)
            snprintf(labels[i], EL_LABEL_NAME_MAX, "%s", m->config.id2label[i]);
        else
            snprintf(labels[i], EL_LABEL_NAME_MAX, "LABEL_%u", i);
    }
    return EL_OK;
}

/* Packs the batch's row indices (ids, type ids, positions, each row's sequence start and
 * length) into host_idx and, off the host, uploads them. */
static el_status bert_rows(el_encoder *e, bert_state *S, const int32_t **idx, el_seqs *sq) {
    const size_t rows = e->n_rows;
    int32_t *hi = S->host_idx;
    sq->start = e->starts;
    sq->len = e->lengths;
    sq->n_seq = e->n_seq;
    sq->rows = rows;
    sq->max_len = 0;
    for (uint32_t b = 0; b < e->n_seq; b++) {
        if (e->lengths[b] > sq->max_len) sq->max_len = e->lengths[b];
        for (uint32_t t = 0; t < e->lengths[b]; t++) {
            const size_t r = (size_t)e->starts[b] + t;
            hi[r] = e->ids[r];
            hi[rows + r] = e->type_ids ? e->type_ids[r] : 0;
            hi[2 * rows + r] = (int32_t)t;
            hi[3 * rows + r] = (int32_t)e->starts[b];
            hi[4 * rows + r] = (int32_t)e->lengths[b];
        }
    }
    *idx = hi;
    if (!e->ops->host_visible) {
        el_exec x = {e->pool, e->gpu_stream};
        EL_TRY(e->ops->upload(&x, S->gpu_idx, hi, 5 * rows * sizeof *hi));
        *idx = S->gpu_idx;
    }
    sq->row_start = *idx + 3 * rows;
    sq->row_len = *idx + 4 * rows;
    return EL_OK;
}

/* Embeddings (word + position within the sequence + token type, LayerNorm), then per
 * layer: q, k, v; attention within each sequence; output dense + residual + LayerNorm;
 * FFN (in chunks of ffn_rows) + residual + LayerNorm. */
static el_status bert_encode(el_encoder *e, const float **hidden) {
    bert_state *S = e->family_state;
    const bert_cfg *c = &S->c;
    const el_ops *o = e->ops;
    const el_exec ex = {e->pool, e->gpu_stream}, *x = &ex;
    const size_t dim = c->dim, rows = e->n_rows;
    const int32_t *di;
    el_seqs sq;
    EL_TRY(bert_rows(e, S, &di, &sq));
    EL_TRY(o->embed(x, S->x, S->w.word, dim, di, rows));
    EL_TRY(o->embed_add(x, S->x, S->w.pos, dim, di + 2 * rows, 0, rows));
    EL_TRY(o->embed_add(x, S->x, S->w.type, dim, di + rows, 0, rows));
    EL_TRY(o->norm(x, EL_NORM_LAYER, S->x, S->x, S->w.ln_w, S->w.ln_b, rows, dim, c->eps));
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const bert_layer *L = &S->layers[l];
        EL_TRY(o->linear(x, S->q, dim, S->x, L->wq, L->bq, rows, dim, dim));
        EL_TRY(o->linear(x, S->k, dim, S->x, L->wk, L->bk, rows, dim, dim));
        EL_TRY(o->linear(x, S->v, dim, S->x, L->wv, L->bv, rows, dim, dim));
        EL_TRY(o->attention_bidir(x, S->q, S->q, S->k, S->v, &sq, c->n_heads, c->head_dim,
                                  S->att, S->seq));
        EL_TRY(o->linear(x, S->k, dim, S->q, L->wo, L->bo, rows, dim, dim));
        EL_TRY(o->add(x, S->k, S->x, rows * dim));
        EL_TRY(o->norm(x, EL_NORM_LAYER, S->x, S->k, L->ln1_w, L->ln1_b, rows, dim, c->eps));
        for (size_t r0 = 0; r0 < rows; r0 += S->ffn_rows) {
            const size_t n = rows - r0 < S->ffn_rows ? rows - r0 : S->ffn_rows;
            EL_TRY(o->linear(x, S->ffn, c->inter, S->x + r0 * dim, L->wi, L->bi, n, dim,
                             c->inter));
            EL_TRY(o->act(x, c->gelu_tanh ? EL_ACT_GELU_TANH : EL_ACT_GELU_ERF, S->ffn, NULL,
                          n * c->inter));
            EL_TRY(o->linear(x, S->k + r0 * dim, dim, S->ffn, L->wo2, L->bo2, n, c->inter, dim));
        }
        EL_TRY(o->add(x, S->k, S->x, rows * dim));
        EL_TRY(o->norm(x, EL_NORM_LAYER, S->x, S->k, L->ln2_w, L->ln2_b, rows, dim, c->eps));
    }
    if (o->host_visible) {
        *hidden = S->x;
        return EL_OK;
    }
    *hidden = S->host_hidden;
    return o->download(x, S->host_hidden, S->x, rows * dim * sizeof(float));
}

/* After bert_encode: the pooler (dense + tanh) and the classifier on each sequence's
 * first row. */
static el_status bert_classify(el_encoder *e, float *logits) {
    bert_state *S = e->family_state;
    const bert_cfg *c = &S->c;
    const el_ops *o = e->ops;
    const el_exec ex = {e->pool, e->gpu_stream}, *x = &ex;
    const size_t dim = c->dim, n = e->n_seq;
    for (size_t b = 0; b < n; b++)
        EL_TRY(o->copy(x, S->cls + b * dim, S->x + (size_t)e->starts[b] * dim, dim));
    EL_TRY(o->linear(x, S->pooled, dim, S->cls, S->w.pool_w, S->w.pool_b, n, dim, dim));
    EL_TRY(o->act(x, EL_ACT_TANH, S->pooled, NULL, n * dim));
    float *lg = o->host_visible ? logits : S->gpu_logits;
    EL_TRY(o->linear(x, lg, c->n_labels, S->pooled, S->w.cls_w, S->w.cls_b, n, dim,
                     c->n_labels));
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
