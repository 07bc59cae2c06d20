/* encoder.c - the family-independent half of an encoder (BERT-style models): memory carved
 * from the arena's scratch region, the thread pool, input checks, packing a padded batch
 * into rows of valid tokens, pooling, normalisation and label probabilities. Families
 * supply the layers (el_family.encoder_init / encode / classify). */
#include "loader/stream.h"
#include "models/session_impl.h"
#include "platform/gpu.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

el_encoder *el_encoder_carve(el_carver *sc, uint32_t batch, uint32_t seq) {
    const uint64_t tokens = (uint64_t)batch * seq;
    el_encoder v = {.max_batch = batch, .max_seq = seq};
    el_encoder *e = el_carve(sc, 1, sizeof *e, "encoder");
    v.pool = el_carve(sc, 1, sizeof *v.pool, "thread pool");
    v.starts = el_carve(sc, batch, sizeof *v.starts, "sequence starts");
    v.lengths = el_carve(sc, batch, sizeof *v.lengths, "sequence lengths");
    v.idx = el_carve(sc, 5 * tokens, sizeof *v.idx, "packed rows");
    if (e) *e = v;
    return e;
}

el_status el_pooling_parse(const char *text, el_pooling *out) {
    if (text && !strcasecmp(text, "mean")) return *out = EL_POOLING_MEAN, EL_OK;
    if (text && !strcasecmp(text, "cls")) return *out = EL_POOLING_CLS, EL_OK;
    return el_errorf(EL_E_USAGE, "unknown pooling '%s' (expected mean or cls)",
                     text ? text : "(null)");
}

/* ---- lifecycle -------------------------------------------------------------------------- */

el_status el_encoder_init(el_model *m, el_arena *a, const el_plan *plan,
                          const el_encoder_params *params, el_encoder **out) {
    if (!m || !a || !plan || !out) return el_errorf(EL_E_USAGE, "el_encoder_init: NULL argument");
    *out = NULL;
    const el_encoder_params prm = params ? *params : (el_encoder_params){0, EL_DEVICE_CPU};
    bool on_gpu = false; /* the arena decides, as for sessions */
    void *stream = NULL;
    uint64_t marks[3];
    EL_TRY(el_run_start(m, a, plan, prm.device, prm.threads, true, &on_gpu, &stream, marks));
    el_carver sc = {a, EL_REGION_SCRATCH, 0, EL_OK};
    el_carver act = {a, EL_REGION_ACT, 0, EL_OK};
    el_encoder *e = el_encoder_carve(&sc, plan->params.batch, plan->params.ctx);
    el_status st = sc.status;
    if (st == EL_OK) {
        e->model = m;
        e->arena = a;
        e->family = m->family;
        e->plan = *plan;
        memcpy(e->marks, marks, sizeof marks);
        e->on_gpu = on_gpu;
        e->ops = el_ops_for(on_gpu);
        e->gpu_stream = stream;
        st = e->family->encoder_init(e, &sc, &act);
    }
    if (st == EL_OK) st = el_pool_init(e->pool, prm.threads, EL_ISA_AUTO);
    /* Streamed: every batch runs layer-major, each layer read once per el_encode. */
    if (st == EL_OK && m->stream && (st = el_stream_start(m->stream, stream)) != EL_OK)
        el_pool_deinit(e->pool);
    if (st != EL_OK) {
        el_run_end(a, NULL, stream, marks);
        return st;
    }
    *out = e;
    return EL_OK;
}

/* e lives in the scratch being released: nothing touches it after. */
void el_encoder_deinit(el_encoder *e) {
    if (!e) return;
    el_stream_stop(e->model->stream);
    el_run_end(e->arena, e->pool, e->gpu_stream, e->marks);
}

el_status el_encoder_stream_stats(el_encoder *e, el_stream_stats *out) {
    if (!e || !out) return el_errorf(EL_E_USAGE, "el_encoder_stream_stats: NULL argument");
    el_stream_stats_get(e->model->stream, out);
    return EL_OK;
}

uint32_t el_encoder_max_batch(const el_encoder *e) { return e->max_batch; }
uint32_t el_encoder_max_seq(const el_encoder *e) { return e->max_seq; }
uint32_t el_encoder_dim(const el_encoder *e) { return e->dim; }
unsigned el_encoder_threads(const el_encoder *e) { return e->pool->n_threads; }
uint32_t el_encoder_labels(const el_encoder *e) { return e->n_labels; }
bool el_encoder_labels_named(const el_encoder *e) { return e->labels_named; }

const char *el_encoder_label(const el_encoder *e, uint32_t i) {
    return e && i < e->n_labels ? e->labels[i] : NULL;
}

/* ---- running ---------------------------------------------------------------------------- */

/* Checks a call's inputs and packs them: the valid tokens of every sequence, one after the
 * other (sequence b is rows e->starts[b] .. + e->lengths[b] - 1), into e->idx. */
static el_status pack(el_encoder *e, const int32_t *ids, const int32_t *type_ids,
                      const uint32_t *lengths, uint32_t batch, uint32_t seq) {
    if (!e || !ids || !lengths)
        return el_errorf(EL_E_USAGE, "el_encode: NULL encoder, ids or lengths");
    if (batch == 0 || batch > e->max_batch)
        return el_errorf(EL_E_USAGE, "%u sequences in one call: the encoder was planned for "
                         "1 to %u (--batch)", batch, e->max_batch);
    if (seq == 0 || seq > e->max_seq)
        return el_errorf(EL_E_USAGE, "sequence length %u: the encoder was planned for 1 to %u "
                         "tokens (--ctx)", seq, e->max_seq);
    uint32_t rows = 0;
    e->max_len = 0;
    for (uint32_t b = 0; b < batch; b++) {
        if (lengths[b] == 0 || lengths[b] > seq)
            return el_errorf(EL_E_USAGE, "sequence %u: length %u, expected 1 to %u", b,
                             lengths[b], seq);
        e->starts[b] = rows;
        e->lengths[b] = lengths[b];
        if (lengths[b] > e->max_len) e->max_len = lengths[b];
        rows += lengths[b];
    }
    int32_t *ix = e->idx;
    for (uint32_t b = 0; b < batch; b++) {
        const int32_t *ir = ids + (size_t)b * seq;
        const int32_t *tr = type_ids ? type_ids + (size_t)b * seq : NULL;
        for (uint32_t t = 0; t < lengths[b]; t++) {
            if (ir[t] < 0 || (uint32_t)ir[t] >= e->vocab)
                return el_errorf(EL_E_INVALID, "sequence %u, token %u: id %d outside the "
                                 "vocabulary of %u", b, t, ir[t], e->vocab);
            if (tr && (tr[t] < 0 || (uint32_t)tr[t] >= e->n_types))
                return el_errorf(EL_E_INVALID, "sequence %u, token %u: token type %d outside "
                                 "the model's %u types", b, t, tr[t], e->n_types);
            const size_t r = (size_t)e->starts[b] + t;
            ix[r] = ir[t];
            ix[rows + r] = tr ? tr[t] : 0;
            ix[2 * (size_t)rows + r] = (int32_t)t;
            ix[3 * (size_t)rows + r] = (int32_t)e->starts[b];
            ix[4 * (size_t)rows + r] = (int32_t)lengths[b];
        }
    }
    e->n_seq = batch;
    e->n_rows = rows;
    return EL_OK;
}

/* The family's encoder on the encoder's device: *h = the packed hidden states, in host
 * memory. */
static el_status run_encode(el_encoder *e, const float **h) {
    return el_run_sync(e->on_gpu ? e->gpu_stream : NULL, e->family->encode(e, h));
}

el_status el_encode(el_encoder *e, const int32_t *ids, const int32_t *type_ids,
                    const uint32_t *lengths, uint32_t batch, uint32_t seq,
                    const float **hidden) {
    if (!hidden) return el_errorf(EL_E_USAGE, "el_encode: NULL hidden");
    el_status s = pack(e, ids, type_ids, lengths, batch, seq);
    if (s != EL_OK) return s;
    const float *h = NULL;
    if ((s = run_encode(e, &h)) != EL_OK) return s;
    const size_t dim = e->dim;
    /* Packed rows to [batch, seq, dim], last sequence first: each moves to an offset at or
     * past its own, so h may be e->out (the GPU's host copy is). */
    for (uint32_t b = batch; b-- > 0;) {
        float *dst = e->out + (size_t)b * seq * dim;
        const size_t len = e->lengths[b];
        memmove(dst, h + (size_t)e->starts[b] * dim, len * dim * sizeof *dst);
        memset(dst + len * dim, 0, (seq - len) * dim * sizeof *dst);
    }
    *hidden = e->out;
    return EL_OK;
}

el_status el_embed(el_encoder *e, const int32_t *ids, const int32_t *type_ids,
                   const uint32_t *lengths, uint32_t batch, uint32_t seq, el_pooling pooling,
                   bool normalize, float *out, size_t cap) {
    if (!out) return el_errorf(EL_E_USAGE, "el_embed: NULL out");
    if (pooling != EL_POOLING_MEAN && pooling != EL_POOLING_CLS)
        return el_errorf(EL_E_USAGE, "el_embed: unknown pooling %d", (int)pooling);
    el_status s = pack(e, ids, type_ids, lengths, batch, seq);
    if (s != EL_OK) return s;
    const size_t dim = e->dim;
    if (cap / dim < batch)
        return el_errorf(EL_E_USAGE, "el_embed: out holds %zu floats, %u vectors of %zu need "
                         "%zu", cap, batch, dim, (size_t)batch * dim);
    const float *h = NULL;
    if ((s = run_encode(e, &h)) != EL_OK) return s;
    for (uint32_t b = 0; b < batch; b++) {
        float *o = out + (size_t)b * dim;
        const float *rows = h + (size_t)e->starts[b] * dim;
        const size_t len = e->lengths[b];
        if (pooling == EL_POOLING_CLS) {
            memcpy(o, rows, dim * sizeof *o);
        } else {
            /* Sum in double: 512 tokens of float would lose digits the 1e-4 checks see. */
            for (size_t i = 0; i < dim; i++) {
                double acc = 0;
                for (size_t t = 0; t < len; t++) acc += rows[t * dim + i];
                o[i] = (float)(acc / (double)len);
            }
        }
        if (normalize) {
            double ss = 0;
            for (size_t i = 0; i < dim; i++) ss += (double)o[i] * o[i];
            double norm = sqrt(ss);
            float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
            for (size_t i = 0; i < dim; i++) o[i] *= inv;
        }
    }
    return EL_OK;
}

el_status el_classify(el_encoder *e, const int32_t *ids, const int32_t *type_ids,
                      const uint32_t *lengths, uint32_t batch, uint32_t seq, float *logits,
                      float *probs, size_t cap) {
    if (!logits) return el_errorf(EL_E_USAGE, "el_classify: NULL logits");
    if (e && (!e->family->classify || e->n_labels == 0))
        return el_errorf(EL_E_UNSUPPORTED, "%s: the model has no classification head "
                         "(classifier.weight and pooler.dense.weight): use embed",
                         e->model->path);
    el_status s = pack(e, ids, type_ids, lengths, batch, seq);
    if (s != EL_OK) return s;
    const size_t nl = e->n_labels;
    if (cap / nl < batch)
        return el_errorf(EL_E_USAGE, "el_classify: logits hold %zu floats, %u sequences of %zu "
                         "labels need %zu", cap, batch, nl, (size_t)batch * nl);
    const float *h = NULL;
    if ((s = e->family->encode(e, &h)) == EL_OK) s = e->family->classify(e, logits);
    if ((s = el_run_sync(e->on_gpu ? e->gpu_stream : NULL, s)) != EL_OK) return s;
    if (!probs) return EL_OK;
    /* As transformers' pipelines: one label or multi-label heads -> an independent sigmoid
     * per label; single-label heads -> softmax; regression -> the raw value. */
    const char *pt = e->model->config.problem_type;
    bool multi = !strcmp(pt, "multi_label_classification"), regression = !strcmp(pt, "regression");
    for (uint32_t b = 0; b < batch; b++) {
        const float *l = logits + (size_t)b * nl;
        float *p = probs + (size_t)b * nl;
        if (regression) {
            for (size_t i = 0; i < nl; i++) p[i] = l[i];
            continue;
        }
        if (nl == 1 || multi) {
            for (size_t i = 0; i < nl; i++) p[i] = 1.0f / (1.0f + expf(-l[i]));
            continue;
        }
        float mx = l[0];
        for (size_t i = 1; i < nl; i++)
            if (l[i] > mx) mx = l[i];
        double sum = 0;
        for (size_t i = 0; i < nl; i++) sum += p[i] = expf(l[i] - mx);
        for (size_t i = 0; i < nl; i++) p[i] = (float)(p[i] / sum);
    }
    return EL_OK;
}

/* ---- tokens ----------------------------------------------------------------------------- */

el_status el_encoder_tokenize(const el_encoder *e, const char *a, size_t alen, const char *b,
                              size_t blen, size_t max_len, int32_t *ids, int32_t *type_ids,
                              size_t cap, size_t *n, bool *truncated) {
    if (!e || !a || !ids || !n) return el_errorf(EL_E_USAGE, "el_encoder_tokenize: NULL argument");
    const el_tokenizer *t = NULL;
    el_status s = el_model_tokenizer(e->model, &t);
    if (s != EL_OK) return s;
    if (max_len == 0 || max_len > e->max_seq) max_len = e->max_seq;
    bool cut = false;
    s = el_tokenizer_encode_pair(t, a, alen, b, blen, max_len, ids, type_ids, cap, n, &cut);
    if (truncated) *truncated = cut;
    return s;
}
