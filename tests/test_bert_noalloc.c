/* test_bert_noalloc.c - "nothing allocates after init" for the bert family, on the
 * hf_bert_cls fixture: a process-wide counting allocator is armed around el_model_load and
 * around a window of el_encode, el_embed (mean and cls pooling) and el_classify on a padded
 * batch (the results checked against transformers' logits, so the window did real work),
 * with f32 and f16 weights and 1 and 2 threads. Open, plan, arena and el_encoder_init (which
 * starts the pool's threads) are init and may allocate. */
// ctest-labels: bert;model
// ctest-timeout: 120
#include "tests/llama_fixture.h"
#include "tests/support/el_alloc_count.h"

#include <math.h>
#include <string.h>

#define DIR_CLS EL_SOURCE_DIR "/tests/fixtures/hf_bert_cls"

typedef struct fixture {
    uint32_t batch, seq, labels;
    uint32_t lengths[8];
    int32_t *ids, *types;
    float logits[8 * 8];
} fixture;

static fixture g;

typedef struct counts {
    long load, run;
    float worst; /* max |logit - transformers| */
} counts;

static counts run(el_dtype dt, unsigned threads) {
    counts c = {-1, -1, INFINITY};
    el_plan_params pp = {g.seq, g.batch, dt, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    el_model *m;
    el_arena *a;
    if (!el_alloc_load(DIR_CLS, &pp, &m, &plan, &a, &c.load)) return c;
    el_encoder *e = NULL;
    el_encoder_params ep = {threads, EL_DEVICE_CPU};
    EL_CHECK_OK(el_encoder_init(m, a, &plan, &ep, &e));
    if (e) {
        const float *h = NULL;
        static float emb[8 * 64], lg[8 * 8], pr[8 * 8];
#ifdef EL_SANITIZED
        /* The sanitizer runtime allocates bookkeeping the first time a new thread runs:
         * one pass before counting there. */
        EL_CHECK_OK(el_encode(e, g.ids, g.types, g.lengths, g.batch, g.seq, &h));
#endif
        el_alloc_arm();
        el_status s1 = el_encode(e, g.ids, g.types, g.lengths, g.batch, g.seq, &h);
        el_status s2 = el_embed(e, g.ids, g.types, g.lengths, g.batch, g.seq, EL_POOLING_MEAN,
                                true, emb, sizeof emb / sizeof emb[0]);
        el_status s3 = el_embed(e, g.ids, NULL, g.lengths, g.batch, g.seq, EL_POOLING_CLS,
                                false, emb, sizeof emb / sizeof emb[0]);
        el_status s4 = el_classify(e, g.ids, g.types, g.lengths, g.batch, g.seq, lg, pr,
                                   sizeof lg / sizeof lg[0]);
        c.run = el_alloc_disarm();
        EL_CHECK_OK(s1);
        EL_CHECK_OK(s2);
        EL_CHECK_OK(s3);
        EL_CHECK_OK(s4);
        c.worst = 0;
        for (size_t i = 0; i < (size_t)g.batch * g.labels; i++)
            c.worst = fmaxf(c.worst, fabsf(lg[i] - g.logits[i]));
    }
    el_encoder_deinit(e);
    el_arena_deinit(a);
    el_model_close(m);
    return c;
}

int main(void) {
    el_alloc_install();
    cJSON *j = fixture_load(DIR_CLS "/reference.json");
    g.batch = (uint32_t)cJSON_GetObjectItem(j, "batch")->valuedouble;
    g.seq = (uint32_t)cJSON_GetObjectItem(j, "seq")->valuedouble;
    g.labels = (uint32_t)cJSON_GetObjectItem(j, "num_labels")->valuedouble;
    EL_CHECK(g.batch <= 8 && g.labels <= 8);
    if (g.batch > 8 || g.labels > 8) return el_test_finish("test_bert_noalloc");
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "lengths")) g.lengths[i++] = (uint32_t)e->valuedouble;
    fixture_ids(cJSON_GetObjectItem(j, "input_ids"), &g.ids);
    fixture_ids(cJSON_GetObjectItem(j, "token_type_ids"), &g.types);
    size_t b = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "logits")) {
        const cJSON *x;
        size_t k = 0;
        cJSON_ArrayForEach(x, e) g.logits[b * g.labels + k++] = (float)x->valuedouble;
        b++;
    }
    cJSON_Delete(j);

    /* Warm-up, not counted: the first thread of a process allocates its DTV in glibc. */
    counts w = run(EL_DT_NONE, 2);
    printf("warm-up (not counted): load %ld, run %ld allocations\n", w.load, w.run);
    long cost = el_alloc_checked_thread_cost();
    static const struct {
        el_dtype dt;
        unsigned threads;
    } cfg[] = {{EL_DT_NONE, 1}, {EL_DT_F16, 1}, {EL_DT_NONE, 2}, {EL_DT_F16, 2}};
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        counts c = run(cfg[k].dt, cfg[k].threads);
        printf("weights %s, %u thread(s): allocations during load %ld, encode+embed+classify "
               "%ld; logits max |diff| %.3g\n", cfg[k].dt == EL_DT_NONE ? "f32" : "F16",
               cfg[k].threads, c.load, c.run, c.worst);
        EL_CHECK(c.load == cost);
        EL_CHECK(c.run == 0);
        EL_CHECK(c.worst < (cfg[k].dt == EL_DT_NONE ? 1e-4f : 5e-2f));
    }
    el_alloc_check_counter();
    free(g.ids);
    free(g.types);
    return el_test_finish("test_bert_noalloc");
}
