/* test_llama_noalloc.c - after el_session_init, inference allocates nothing from the heap:
 * a process-wide counting allocator is armed around el_generate (greedy, temperature with
 * top-k and top-p: the sampler's sorting included), el_session_forward (batched prefill),
 * el_tokenize and el_token_piece, with 1 and 2 threads, on the bundled stories260K. */
// ctest-labels: llama
#include "tests/llama_fixture.h"
#include "tests/support/el_alloc_count.h"

#include <string.h>

static bool count_tokens(void *user, int32_t id, const char *piece, size_t len) {
    (void)id;
    (void)piece;
    (*(size_t *)user) += len > 0;
    return true;
}

int main(void) {
    fixture_require_stories();
    el_alloc_install();
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(STORIES_BIN, NULL, &m));
    if (!m) return el_test_finish("test_llama_noalloc");
    el_plan plan;
    el_plan_params pp = {0, 1, EL_DT_NONE, 64 * 1024};
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_arena_params ap;
    el_plan_arena_params(&plan, plan.total_bytes, 0, &ap);
    el_arena *a = NULL;
    EL_CHECK_OK(el_arena_init(&a, &ap));
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    static int32_t prompt[300];
    for (int i = 0; i < 300; i++) prompt[i] = 3 + (i * 37) % 500;
    for (unsigned threads = 1; threads <= 2; threads++) {
        el_session_params sp = {threads, EL_DEVICE_CPU, 0};
        el_session *s = NULL;
        EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
        if (!s) break;
#ifdef EL_SANITIZED
        /* The sanitizer runtime allocates its own bookkeeping the first time a new thread
         * runs (3 allocations, seen only in sanitizer builds, from the pool's worker): run
         * the pool once before counting there (a 300-token prefill is large enough to be
         * split across the threads, so every worker has run). Plain builds count from the
         * very first job. */
        const float *warm;
        EL_CHECK_OK(el_session_forward(s, prompt, 300, &warm));
#endif
        static const el_sampler_params modes[] = {
            {0.0f, 0, 1.0f, 1}, {1.0f, 0, 1.0f, 2}, {0.8f, 0, 0.95f, 3}, {1.2f, 40, 1.0f, 4},
            {1.0f, 100, 0.9f, 5}, {2.0f, 0, 0.99f, 6},
        };
        for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
            size_t pieces = 0;
            el_gen_stats st;
            el_alloc_arm();
            el_status rc = el_generate(s, "Once upon a time, Lily", 100, &modes[k], count_tokens,
                                       &pieces, &st);
            long n = el_alloc_disarm();
            EL_CHECK_OK(rc);
            if (n) fprintf(stderr, "threads %u, sampler mode %zu: %ld allocations\n", threads, k, n);
            EL_CHECK(n == 0);
            EL_CHECK(st.generated_tokens > 0);
        }
        /* A prefill of several batches (300 tokens), then tokens and pieces. */
        const float *lg;
        int32_t ids[64];
        size_t n_ids = 0, plen = 0;
        char piece[64];
        el_session_reset(s);
        el_alloc_arm();
        EL_CHECK_OK(el_session_forward(s, prompt, 300, &lg));
        EL_CHECK_OK(el_tokenize(m, "Hello world", 11, true, ids, 64, &n_ids));
        EL_CHECK_OK(el_token_piece(m, 1, ids[1], piece, sizeof piece, &plen));
        long n = el_alloc_disarm();
        EL_CHECK(n == 0);
        el_session_deinit(s);
    }
    /* The counter works: an allocation while armed is seen. */
    el_alloc_arm();
    void *volatile p = malloc(16);
    long seen = el_alloc_disarm();
    free(p);
    EL_CHECK(seen >= 1);
    el_arena_deinit(a);
    el_model_close(m);
    return el_test_finish("test_llama_noalloc");
}
