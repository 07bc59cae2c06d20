/* test_bert_stream.c - layer streaming for a BERT encoder (el_plan_stream_ex): a generated
 * 6-layer BERT with a classification head, run as a padded batch of 3 sequences, gives the
 * resident run's last hidden states and logits bit for bit streamed (2 slots; 3 slots with a
 * pinned layer; O_DIRECT; --dtype f16 converted on the way), and each el_encode reads every
 * streamed layer once for the whole batch (layer-major: the bytes are counted by the ring).
 * The tiny transformers fixture hf_bert_cls ("bert." prefix) and the GGUF BERT fixture
 * stream like they run resident.
 * Native: well under a second. */
// ctest-labels: bert;model
// ctest-timeout: 60
#include "edgeload.h"
#include "tests/support/el_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIM 64
#define INTER 128
#define LAYERS 6
#define VOCAB 100
#define MAX_POS 32
#define LABELS 3
#define BATCH 3
#define SEQ 16

/* dir/config.json and dir/model.safetensors of a BERT for sequence classification. */
static void write_bert(const char *dir) {
    mkdir(dir, 0755);
    static el_test_tensor t[9 + 16 * LAYERS];
    static char names[16 * LAYERS][80];
    static const struct { const char *name; uint64_t rows, cols; } roles[] = {
        {"attention.self.query.weight", DIM, DIM}, {"attention.self.query.bias", 0, DIM},
        {"attention.self.key.weight", DIM, DIM},   {"attention.self.key.bias", 0, DIM},
        {"attention.self.value.weight", DIM, DIM}, {"attention.self.value.bias", 0, DIM},
        {"attention.output.dense.weight", DIM, DIM}, {"attention.output.dense.bias", 0, DIM},
        {"attention.output.LayerNorm.weight", 0, DIM},
        {"attention.output.LayerNorm.bias", 0, DIM},
        {"intermediate.dense.weight", INTER, DIM}, {"intermediate.dense.bias", 0, INTER},
        {"output.dense.weight", DIM, INTER},       {"output.dense.bias", 0, DIM},
        {"output.LayerNorm.weight", 0, DIM},       {"output.LayerNorm.bias", 0, DIM},
    };
    size_t n = 0;
    t[n++] = (el_test_tensor){"embeddings.word_embeddings.weight", EL_DT_F32, 2, {VOCAB, DIM}};
    t[n++] = (el_test_tensor){"embeddings.position_embeddings.weight", EL_DT_F32, 2,
                              {MAX_POS, DIM}};
    t[n++] = (el_test_tensor){"embeddings.token_type_embeddings.weight", EL_DT_F32, 2, {2, DIM}};
    t[n++] = (el_test_tensor){"embeddings.LayerNorm.weight", EL_DT_F32, 1, {DIM}};
    t[n++] = (el_test_tensor){"embeddings.LayerNorm.bias", EL_DT_F32, 1, {DIM}};
    for (unsigned l = 0; l < LAYERS; l++)
        for (unsigned r = 0; r < 16; r++) {
            char *nm = names[l * 16 + r];
            snprintf(nm, 80, "encoder.layer.%u.%s", l, roles[r].name);
            t[n++] = roles[r].rows ? (el_test_tensor){nm, EL_DT_F32, 2, {roles[r].rows, roles[r].cols}}
                                   : (el_test_tensor){nm, EL_DT_F32, 1, {roles[r].cols}};
        }
    t[n++] = (el_test_tensor){"pooler.dense.weight", EL_DT_F32, 2, {DIM, DIM}};
    t[n++] = (el_test_tensor){"pooler.dense.bias", EL_DT_F32, 1, {DIM}};
    t[n++] = (el_test_tensor){"classifier.weight", EL_DT_F32, 2, {LABELS, DIM}};
    t[n++] = (el_test_tensor){"classifier.bias", EL_DT_F32, 1, {LABELS}};
    char path[700], cfg[900];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    EL_CHECK(el_test_write_safetensors(path, t, n, 7));
    snprintf(cfg, sizeof cfg,
             "{\"model_type\":\"bert\",\"hidden_size\":%d,\"intermediate_size\":%d,"
             "\"num_hidden_layers\":%d,\"num_attention_heads\":4,\"vocab_size\":%d,"
             "\"max_position_embeddings\":%d,\"type_vocab_size\":2,\"layer_norm_eps\":1e-12,"
             "\"hidden_act\":\"gelu\",\"num_labels\":%d}",
             DIM, INTER, LAYERS, VOCAB, MAX_POS, LABELS);
    snprintf(path, sizeof path, "%s/config.json", dir);
    EL_CHECK(el_test_write_file(path, cfg, strlen(cfg)));
}

/* One run: hidden states of the batch, logits, the ring's counters around each call. */
typedef struct enc_out {
    float hidden[BATCH * SEQ * DIM];
    float logits[BATCH * LABELS];
    el_plan plan;
    el_stream_stats init, encoded, classified;
    uint32_t dim, labels;
    bool ok;
} enc_out;

static void run(const char *dir, el_dtype dtype, const el_stream_params *sp, enc_out *o) {
    memset(o, 0, sizeof *o);
    el_model *m = NULL;
    el_arena *a = NULL;
    el_encoder *e = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return;
    el_plan_params pp = {SEQ, BATCH, dtype, 0, EL_MEMORY_HOST, EL_DT_NONE};
    el_plan p;
    EL_CHECK_OK(el_plan_make(m, &pp, &p));
    EL_CHECK_OK(el_plan_stream_ex(m, sp, p.total_bytes, &p));
    o->plan = p;
    a = el_test_arena(&p, EL_MEMORY_HOST);
    if (a) EL_CHECK_OK(el_model_load(m, &p, a, NULL, NULL));
    el_encoder_params ep = {2, EL_DEVICE_CPU};
    if (a) EL_CHECK_OK(el_encoder_init(m, a, &p, &ep, &e));
    if (e) {
        o->dim = el_encoder_dim(e);
        o->labels = el_encoder_labels(e);
        EL_CHECK(o->dim == DIM || o->dim < DIM);
        int32_t ids[BATCH * SEQ], types[BATCH * SEQ];
        const uint32_t lengths[BATCH] = {5, SEQ, 9};
        for (size_t i = 0; i < BATCH * SEQ; i++) {
            ids[i] = (int32_t)((i * 37 + 3) % 20);
            types[i] = (int32_t)(i % SEQ > 3);
        }
        const float *h = NULL;
        EL_CHECK_OK(el_encoder_stream_stats(e, &o->init));
        EL_CHECK_OK(el_encode(e, ids, types, lengths, BATCH, SEQ, &h));
        EL_CHECK_OK(el_encoder_stream_stats(e, &o->encoded));
        if (h && o->dim <= DIM) memcpy(o->hidden, h, sizeof(float) * BATCH * SEQ * o->dim);
        if (o->labels && o->labels <= LABELS)
            EL_CHECK_OK(el_classify(e, ids, types, lengths, BATCH, SEQ, o->logits, NULL,
                                    BATCH * LABELS));
        EL_CHECK_OK(el_encoder_stream_stats(e, &o->classified));
        o->ok = h != NULL;
    }
    el_encoder_deinit(e);
    el_model_close(m);
    el_arena_deinit(a);
}

static bool same(const enc_out *x, const enc_out *y) {
    return x->ok && y->ok && x->dim == y->dim && x->labels == y->labels &&
           !memcmp(x->hidden, y->hidden, sizeof x->hidden) &&
           !memcmp(x->logits, y->logits, sizeof x->logits);
}

/* Every el_encode (classify runs one too) read the plan's bytes per pass. */
static bool one_pass_each(const enc_out *o) {
    const uint64_t pass = o->plan.stream_pass_bytes;
    return pass > 0 && o->encoded.bytes_read - o->init.bytes_read == pass &&
           o->classified.bytes_read - o->encoded.bytes_read == pass;
}

int main(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bert6", el_test_tmpdir());
    write_bert(dir);
    static enc_out res, str;
    const el_stream_params off = {EL_STREAM_OFF, 0, 0, false};
    run(dir, EL_DT_NONE, &off, &res);
    EL_CHECK(res.ok && res.labels == LABELS && !res.plan.streamed && !res.init.streamed);
    static const el_stream_params on[] = {{EL_STREAM_ON, 0, 0, false},
                                          {EL_STREAM_ON, 3, 1, false},
                                          {EL_STREAM_ON, 0, 0, true}};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        run(dir, EL_DT_NONE, &on[i], &str);
        printf("bert: %u slots, %u pinned, %s: %.1f KiB of layers per batch, plan %.1f KiB "
               "(resident %.1f KiB)\n", str.plan.stream_slots, str.plan.stream_pinned,
               str.init.direct ? "O_DIRECT" : "buffered", str.plan.stream_pass_bytes / 1024.0,
               str.plan.total_bytes / 1024.0, res.plan.total_bytes / 1024.0);
        EL_CHECK(str.plan.streamed && str.plan.stream_layers == LAYERS);
        EL_CHECK(str.plan.stream_pinned == on[i].pin_layers);
        EL_CHECK(str.plan.total_bytes < res.plan.total_bytes);
        EL_CHECK(same(&res, &str));
        EL_CHECK(one_pass_each(&str));
    }
    /* Converted to f16 on the way: the resident f16 run. */
    const el_stream_params on16 = {EL_STREAM_ON, 0, 0, false};
    run(dir, EL_DT_F16, &off, &res);
    run(dir, EL_DT_F16, &on16, &str);
    EL_CHECK(str.plan.stream_stage_bytes > 0 && same(&res, &str) && one_pass_each(&str));
    /* transformers' tiny BERT with the "bert." prefix (2 layers: the ring keeps both after
     * the first pass, so only the equality is checked). */
    const char *hf = EL_SOURCE_DIR "/tests/fixtures/hf_bert_cls";
    run(hf, EL_DT_NONE, &off, &res);
    run(hf, EL_DT_NONE, &on16, &str);
    EL_CHECK(str.plan.streamed && str.plan.stream_layers == 2 && same(&res, &str));
    /* A GGUF BERT (tensor names mapped at open). */
    const char *gg = EL_SOURCE_DIR "/tests/fixtures/gguf/bert_base_f32.gguf";
    run(gg, EL_DT_NONE, &off, &res);
    run(gg, EL_DT_NONE, &on16, &str);
    EL_CHECK(str.plan.streamed && str.plan.stream_layers >= 2 && same(&res, &str));
    return el_test_finish("test_bert_stream");
}
