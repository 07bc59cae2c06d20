/* test_cuda_managed.c - managed arenas: per-stream attachment and prefetch.
 * 1. Discrete GPU (concurrentManagedAccess): starting a session on a managed arena advises
 *    its weights read-mostly and preferably on the GPU and prefetches exactly the weights'
 *    bytes to the GPU (counted by the emulator); the greedy ids of two models, each alone:
 *    stories260K (llama2.c) and the GPT-2 fixture.
 * 2. Integrated GPU without concurrentManagedAccess (a Jetson): no advice, no prefetch (the
 *    runtime refuses both there), the same ids alone; then model A's prompt pass queued on
 *    its stream and not waited for while model B is loaded into its own managed arena by
 *    the CPU (before arenas were attached per stream this faulted: every managed block was
 *    attached globally, so closed to the CPU while any kernel was queued), then the two
 *    sessions stepping alternately: each one's ids equal to its run alone. A load into an
 *    arena a session holds is refused.
 * The references are the same models run alone on the same device (test_cuda_models checks
 * those against the CPU). Needs the cudasim build or a GPU; the Jetson half needs cudasim
 * (or a Jetson) and is skipped elsewhere. */
// ctest-labels: cuda;model
// ctest-timeout: 120
#include "models/session_impl.h"
#include "platform/gpu.h"
#include "tests/support/el_test_cuda.h"
#include "tests/llama_fixture.h"

#include <stdlib.h>
#include <string.h>

#ifdef EL_CUDA_SIM
#include "cudasim.h"
#endif

#define GPT2_PATH EL_SOURCE_DIR "/tests/fixtures/hf_gpt2_small"
#ifdef EL_SANITIZED
#define STEPS 4 /* greedy ids per model: the emulator under ASan is ~10x slower */
#else
#define STEPS 16
#endif

static const int32_t k_stories[] = {1, 403, 407, 261, 378, 261, 365, 281};
static const int32_t k_gpt2[] = {5, 77, 3, 120, 9};

typedef struct run {
    el_model *m;
    el_plan plan;
    el_arena *a;
    el_session *s;
    int32_t next; /* the greedy id after the last pass */
} run;

/* Open, plan and reserve in managed memory, then load (the CPU writes the arena). */
static bool load(const char *path, run *r) {
    memset(r, 0, sizeof *r);
    el_plan_params pp = {0, 1, EL_DT_F32, 64 * 1024, EL_MEMORY_CUDA_MANAGED, EL_DT_F32};
    EL_CHECK_OK(el_model_open(path, NULL, &r->m));
    if (!r->m) return false;
    EL_CHECK_OK(el_plan_make(r->m, &pp, &r->plan));
    r->a = el_test_arena(&r->plan, EL_MEMORY_CUDA_MANAGED);
    if (!r->a) return false;
    el_status s = el_model_load(r->m, &r->plan, r->a, NULL, NULL);
    EL_CHECK_OK(s);
    return s == EL_OK;
}

static bool start(run *r) {
    el_session_params sp = {1, EL_DEVICE_CUDA, 0, false};
    EL_CHECK_OK(el_session_init(r->m, r->a, &r->plan, &sp, &r->s));
    return r->s != NULL;
}

static void finish(run *r) {
    el_session_deinit(r->s);
    el_arena_deinit(r->a);
    el_model_close(r->m);
    memset(r, 0, sizeof *r);
}

/* One pass over ids (the prompt, or the last greedy id), then the greedy id after it. */
static bool step(run *r, const int32_t *ids, size_t n) {
    const float *lg = NULL;
    el_status s = el_session_forward(r->s, ids, n, &lg);
    EL_CHECK_OK(s);
    if (s != EL_OK) return false;
    uint32_t v = el_session_vocab(r->s);
    int32_t best = 0;
    for (uint32_t i = 1; i < v; i++)
        if (lg[i] > lg[best]) best = (int32_t)i;
    r->next = best;
    return true;
}

/* The prompt, then STEPS greedy ids into ids. */
static bool generate(run *r, const int32_t *prompt, size_t n, int32_t ids[STEPS]) {
    if (!step(r, prompt, n)) return false;
    for (int i = 0; i < STEPS; i++) {
        ids[i] = r->next;
        if (i + 1 < STEPS && !step(r, &ids[i], 1)) return false;
    }
    return true;
}

/* A model alone: load, start (checking the prefetch, or its absence), generate. */
static bool alone(const char *path, const int32_t *prompt, size_t n, bool discrete,
                  int32_t ids[STEPS]) {
    run r;
    bool ok = false;
    if (!load(path, &r)) goto done;
#ifdef EL_CUDA_SIM
    elsim_stats before, after;
    elsim_stats_get(&before);
#endif
    if (!start(&r)) goto done;
#ifdef EL_CUDA_SIM
    elsim_stats_get(&after);
    el_arena_stats as;
    el_arena_stats_get(r.a, &as);
    const uint64_t wbytes = as.region[EL_REGION_WEIGHTS].used;
    EL_CHECK(wbytes > 0);
    EL_CHECK(after.attaches[2] - before.attaches[2] == 1); /* to the session's stream */
    EL_CHECK(after.prefetches_device - before.prefetches_device == (discrete ? 1u : 0u));
    EL_CHECK(after.prefetch_device_bytes - before.prefetch_device_bytes ==
             (discrete ? wbytes : 0u));
    EL_CHECK(after.advises[1] - before.advises[1] == (discrete ? 1u : 0u)); /* read-mostly */
    EL_CHECK(after.advises[3] - before.advises[3] == (discrete ? 1u : 0u)); /* preferred */
#endif
    ok = generate(&r, prompt, n, ids);
#ifdef EL_CUDA_SIM
    elsim_stats_get(&before);
    el_session_deinit(r.s);
    r.s = NULL;
    elsim_stats_get(&after);
    EL_CHECK(after.attaches[1] - before.attaches[1] == 1); /* back to the host */
#endif
done:
    finish(&r);
    return ok;
}

static void check_ids(const char *what, const int32_t *got, const int32_t *want) {
    int bad = -1;
    for (int i = 0; i < STEPS && bad < 0; i++)
        if (got[i] != want[i]) bad = i;
    if (bad >= 0)
        fprintf(stderr, "%s: id %d is %d, alone %d\n", what, bad, got[bad], want[bad]);
    EL_CHECK(bad < 0);
}

/* Model A's pass queued while B loads, then both sessions alternately. */
static void two_models(const int32_t want_a[STEPS], const int32_t want_b[STEPS]) {
    run a, b;
    memset(&b, 0, sizeof b);
    int32_t ids_a[STEPS], ids_b[STEPS];
    if (!load(STORIES_BIN, &a) || !start(&a)) goto done;
    /* The prompt pass as el_session_forward runs it, without its wait: A's kernels stay
     * queued on A's stream. */
    EL_CHECK_OK(a.s->family->forward(a.s, k_stories, sizeof k_stories / sizeof *k_stories,
                                     true));
#ifdef EL_CUDA_SIM
    elsim_stats q0, q1;
    elsim_stats_get(&q0);
    /* (kernels run by CUDA graph replays count in kernels_run, not in launches) */
    EL_CHECK(q0.pending > 0 && q0.launches + q0.graph_nodes_run > q0.kernels_run);
#endif
    /* A second model loaded by the CPU into its own managed arena meanwhile. */
    if (!load(GPT2_PATH, &b)) goto done;
#ifdef EL_CUDA_SIM
    elsim_stats_get(&q1);
    EL_CHECK(q1.kernels_run == q0.kernels_run); /* A's kernels queued through B's load */
    EL_CHECK(q1.pending >= q0.pending);
#endif
    /* A load into an arena a session holds is refused (its kernels may be running). */
    el_model *again = NULL;
    EL_CHECK_OK(el_model_open(STORIES_BIN, NULL, &again));
    if (again) EL_CHECK_STATUS(el_model_load(again, &a.plan, a.a, NULL, NULL), EL_E_USAGE);
    el_model_close(again);

    EL_CHECK_OK(el_gpu_sync(a.s->gpu_stream));
    el_session_reset(a.s); /* the queued pass only kept A busy; generate from the start */
    if (!start(&b)) goto done;
    /* Both generate, alternately, each on its own stream. */
    if (!step(&a, k_stories, sizeof k_stories / sizeof *k_stories) ||
        !step(&b, k_gpt2, sizeof k_gpt2 / sizeof *k_gpt2))
        goto done;
    for (int i = 0; i < STEPS; i++) {
        ids_a[i] = a.next;
        ids_b[i] = b.next;
        if (i + 1 < STEPS && (!step(&a, &ids_a[i], 1) || !step(&b, &ids_b[i], 1))) goto done;
    }
    check_ids("stories260K beside GPT-2", ids_a, want_a);
    check_ids("GPT-2 beside stories260K", ids_b, want_b);
done:
    finish(&b);
    finish(&a);
}

int main(void) {
    fixture_require_stories();
    el_gpu_info g;
    el_test_cuda_require("test_cuda_managed", "managed-memory runs", &g);
    if (!g.managed) el_test_skip("GPU 0 (%s) has no managed memory", g.name);

    int32_t stories_alone[STEPS], gpt2_alone[STEPS];
    bool have_alone = false;
    if (g.concurrent_managed) {
        fprintf(stderr, "== discrete GPU (concurrentManagedAccess): prefetch\n");
        have_alone = alone(STORIES_BIN, k_stories, sizeof k_stories / sizeof *k_stories, true,
                           stories_alone) &&
                     alone(GPT2_PATH, k_gpt2, sizeof k_gpt2 / sizeof *k_gpt2, true, gpt2_alone);
    }
    el_test_cuda_sim_jetson(&g);
    if (g.concurrent_managed) {
        fprintf(stderr, "the integrated-GPU half needs a device without concurrentManagedAccess "
                        "(a Jetson, or the cudasim build)\n");
        return el_test_finish("test_cuda_managed");
    }
    fprintf(stderr, "== integrated GPU (no concurrentManagedAccess): no prefetch\n");
    int32_t s2[STEPS], g2[STEPS];
    if (alone(STORIES_BIN, k_stories, sizeof k_stories / sizeof *k_stories, false, s2) &&
        alone(GPT2_PATH, k_gpt2, sizeof k_gpt2 / sizeof *k_gpt2, false, g2)) {
        if (have_alone) {
            check_ids("stories260K alone, integrated vs discrete", s2, stories_alone);
            check_ids("GPT-2 alone, integrated vs discrete", g2, gpt2_alone);
        }
        fprintf(stderr, "== two models: B loads while A's pass is queued, then both\n");
        two_models(s2, g2);
    }
    return el_test_finish("test_cuda_managed");
}
