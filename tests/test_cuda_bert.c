/* test_cuda_bert.c - BERT encoders on the GPU against the same encoder on the CPU: the tiny
 * HF fixtures hf_bert_cls (with a classification head) and hf_bert_base, in managed and in
 * device memory, f32 and f16 weights, a padded batch of three sequences of different
 * lengths with token types. Checked by normalised mean squared error against the CPU with
 * the same weights (bound 1e-8): the unpacked hidden states (padding rows must be exactly
 * 0), mean-pooled normalised embeddings, and the classifier's logits; and no CUDA
 * reservation after the arena's.
 * Needs a CUDA build and a GPU (or the cudasim emulator); skips saying which is missing. */
// ctest-labels: cuda;bert
// ctest-timeout: 300
#include "tests/support/el_test.h"
#include "platform/gpu.h"
#include "tests/support/el_test_cuda.h"

#include <stdlib.h>
#include <string.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures"
#define NMSE_SAME 1e-8
#define B 3
#define SEQ 12

typedef struct outs {
    float hidden[B * SEQ * 64];
    float emb[B * 64];
    float logits[B * 8];
    uint32_t dim, labels;
} outs;

static const uint32_t k_len[B] = {12, 5, 9};

static bool run(const char *dir, el_dtype dt, el_memory mem, outs *o) {
    memset(o, 0, sizeof *o);
    int32_t ids[B * SEQ], types[B * SEQ];
    for (int i = 0; i < B * SEQ; i++) {
        ids[i] = (i * 37 + 11) % 45 + 2; /* < 50: both fixtures' vocabularies */
        types[i] = (i % SEQ) >= 6;
    }
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return false;
    el_plan_params pp = {SEQ, B, dt, 64 * 1024, mem, EL_DT_F32};
    el_plan plan;
    el_arena *a = NULL;
    el_encoder *e = NULL;
    bool ok = false;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    a = el_test_arena(&plan, mem);
    if (!a) goto done;
    uint64_t reserved = el_gpu_reserve_count();
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    el_encoder_params ep = {1, mem == EL_MEMORY_HOST ? EL_DEVICE_CPU : EL_DEVICE_CUDA};
    EL_CHECK_OK(el_encoder_init(m, a, &plan, &ep, &e));
    if (!e) goto done;
    o->dim = el_encoder_dim(e);
    o->labels = el_encoder_labels(e);
    EL_CHECK(o->dim <= 64 && o->labels <= 8);
    const float *h = NULL;
    EL_CHECK_OK(el_encode(e, ids, types, k_len, B, SEQ, &h));
    if (h) memcpy(o->hidden, h, (size_t)B * SEQ * o->dim * sizeof(float));
    EL_CHECK_OK(el_embed(e, ids, types, k_len, B, SEQ, EL_POOLING_MEAN, true, o->emb,
                         B * o->dim));
    if (o->labels)
        EL_CHECK_OK(el_classify(e, ids, types, k_len, B, SEQ, o->logits, NULL, B * o->labels));
    EL_CHECK(el_gpu_reserve_count() == reserved);
    ok = true;
done:
    el_encoder_deinit(e);
    el_arena_deinit(a);
    el_model_close(m);
    return ok;
}

static void compare(const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, FIX "/%s", name);
    const el_dtype dts[2] = {EL_DT_F32, EL_DT_F16};
    const el_memory mems[2] = {EL_MEMORY_CUDA_MANAGED, EL_MEMORY_CUDA_DEVICE};
    for (int d = 0; d < 2; d++) {
        static outs cpu, gpu;
        if (!run(dir, dts[d], EL_MEMORY_HOST, &cpu)) return;
        for (int k = 0; k < 2; k++) {
            if (!run(dir, dts[d], mems[k], &gpu)) continue;
            size_t nh = (size_t)B * SEQ * cpu.dim;
            double eh = el_test_nmse(gpu.hidden, cpu.hidden, nh);
            double ee = el_test_nmse(gpu.emb, cpu.emb, (size_t)B * cpu.dim);
            double el = cpu.labels ? el_test_nmse(gpu.logits, cpu.logits, (size_t)B * cpu.labels) : 0;
            bool pad0 = true;
            for (int b = 0; b < B; b++)
                for (size_t i = k_len[b] * cpu.dim; i < SEQ * cpu.dim; i++)
                    pad0 = pad0 && gpu.hidden[b * SEQ * cpu.dim + i] == 0.0f;
            fprintf(stderr, "%s %s %s: hidden nmse %.3g, embeddings %.3g, logits %.3g%s\n",
                    name, el_dtype_name(dts[d]), el_memory_name(mems[k]), eh, ee, el,
                    pad0 ? "" : ", PADDING NOT ZERO");
            EL_CHECK(eh <= NMSE_SAME && ee <= NMSE_SAME && el <= NMSE_SAME);
            EL_CHECK(pad0);
        }
    }
}

int main(void) {
    el_test_cuda_require("test_cuda_bert", "CUDA encoders", NULL);
    compare("hf_bert_cls");
    compare("hf_bert_base");
    return el_test_finish("test_cuda_bert");
}
