/* test_llama_noalloc.c - "nothing allocates after init" for the Llama family, on the bundled
 * stories260K: a process-wide counting allocator is armed around el_model_load, around
 * el_generate (which tokenizes the prompt itself: greedy 8 tokens checked against the NumPy
 * reference, then temperature / top-k / top-p modes, the sampler's sorting included), and
 * around a batched 300-token prefill with el_tokenize and el_token_piece; with f32 and f16
 * weights and 1 and 2 threads, with an f32 KV cache, and f32 weights with an f16 one.
 * Every window must see no heap allocation at all. Open, plan, arena and session init
 * (which starts the pool's threads) are init and may allocate. */
// ctest-labels: llama;model
// ctest-timeout: 240
#include "tests/llama_fixture.h"
#include "tests/support/el_alloc_count.h"

#include "platform/platform.h"

#include <string.h>

#define N_GREEDY 8      /* greedy tokens checked against the reference */
#define N_SAMPLED 100   /* tokens per sampler mode */
#define N_PREFILL 300   /* prompt ids of the batched prefill: several batches of 64 */

/* Where the callback puts the tokens: static, so taking them allocates nothing. */
typedef struct sink {
    int32_t ids[N_GREEDY];
    uint32_t n;          /* tokens seen */
    char text[2048];
    size_t len;
} sink;

static bool on_token(void *user, int32_t id, const char *piece, size_t len) {
    sink *k = user;
    if (k->n < N_GREEDY) k->ids[k->n] = id;
    k->n++;
    if (k->len + len < sizeof k->text) {
        memcpy(k->text + k->len, piece, len);
        k->len += len;
        k->text[k->len] = 0;
    }
    return true;
}

typedef struct counts {
    long load;     /* allocations during el_model_load */
    long greedy;   /* during the greedy el_generate */
    long sampled;  /* during the sampled el_generate calls, all modes */
    long prefill;  /* during the 300-token prefill, el_tokenize and el_token_piece */
} counts;

static const int32_t *g_ref;       /* the reference's first N_GREEDY greedy ids */
static int32_t g_prompt[N_PREFILL];

static void run_session(el_model *m, el_session *s, counts *c) {
#ifdef EL_SANITIZED
    /* The sanitizer runtime allocates its own bookkeeping the first time a new thread runs
     * (seen only in sanitizer builds, from the pool's worker): run the pool once before
     * counting there (a 300-token prefill is split across the threads, so every worker
     * has run). Plain builds count from the very first job. */
    const float *warm;
    EL_CHECK_OK(el_session_forward(s, g_prompt, N_PREFILL, &warm));
    el_session_reset(s);
#endif
    static sink k;
    memset(&k, 0, sizeof k);
    el_gen_stats gs;
    el_sampler_params greedy = {0.0f, 0, 1.0f, 0};
    el_alloc_arm();
    el_status st = el_generate(s, "Once upon a time", N_GREEDY, &greedy, on_token, &k, &gs);
    c->greedy = el_alloc_disarm();
    EL_CHECK_OK(st);
    EL_CHECK(gs.prompt_tokens == 5 && gs.generated_tokens == N_GREEDY && k.n == N_GREEDY);
    EL_CHECK(!memcmp(k.ids, g_ref, sizeof k.ids));
    fprintf(stderr, "   greedy: \"Once upon a time%s\"\n", k.text);

    static const el_sampler_params modes[] = {
        {1.0f, 0, 1.0f, 2}, {0.8f, 0, 0.95f, 3}, {1.2f, 40, 1.0f, 4},
        {1.0f, 100, 0.9f, 5}, {2.0f, 0, 0.99f, 6},
    };
    c->sampled = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        memset(&k, 0, sizeof k);
        el_alloc_arm();
        st = el_generate(s, "Once upon a time, Lily", N_SAMPLED, &modes[i], on_token, &k, &gs);
        long n = el_alloc_disarm();
        EL_CHECK_OK(st);
        EL_CHECK(gs.generated_tokens > 0 && k.n == gs.generated_tokens);
        if (n) fprintf(stderr, "   sampler mode %zu: %ld allocations\n", i, n);
        c->sampled += n;
    }

    /* A prefill of several batches, then tokens and pieces. */
    const float *lg = NULL;
    int32_t ids[64];
    size_t n_ids = 0, plen = 0;
    char piece[64];
    el_session_reset(s);
    el_alloc_arm();
    el_status s1 = el_session_forward(s, g_prompt, N_PREFILL, &lg);
    el_status s2 = el_tokenize(m, "Hello world", 11, true, ids, 64, &n_ids);
    el_status s3 = s2 == EL_OK && n_ids > 1
                       ? el_token_piece(m, ids[0], ids[1], piece, sizeof piece, &plen)
                       : EL_E_INVALID;
    c->prefill = el_alloc_disarm();
    EL_CHECK_OK(s1);
    EL_CHECK_OK(s2);
    EL_CHECK_OK(s3);
    EL_CHECK(lg != NULL && el_session_pos(s) == N_PREFILL);
    EL_CHECK(plen > 0 && piece[0] != ' '); /* the dummy-prefix space after BOS is dropped */
}

/* One walk open -> plan -> arena -> load -> session -> generate, counting allocations in
 * the load, generate and prefill windows. */
static counts run(el_dtype dt, unsigned threads, el_dtype kv) {
    counts c = {-1, -1, -1, -1};
    el_plan_params pp = {0, 1, dt, 64 * 1024, EL_MEMORY_HOST, kv};
    el_plan plan;
    el_model *m;
    el_arena *a;
    if (!el_alloc_load(STORIES_BIN, &pp, &m, &plan, &a, &c.load)) return c;
    el_session_params sp = {threads, EL_DEVICE_CPU, 0, false};
    el_session *s = NULL;
    EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    if (s) {
        EL_CHECK(el_session_threads(s) == threads);
        run_session(m, s, &c);
        el_session_deinit(s);
    }
    el_arena_deinit(a);
    el_model_close(m);
    return c;
}

int main(void) {
    fixture_require_stories();
    el_alloc_install();
    cJSON *j = fixture_load(STORIES_FIXTURE);
    int32_t *gen = NULL;
    size_t n_gen = fixture_ids(cJSON_GetObjectItem(j, "generated_ids"), &gen);
    cJSON_Delete(j);
    EL_CHECK(n_gen >= N_GREEDY);
    if (n_gen < N_GREEDY) return el_test_finish("test_llama_noalloc");
    g_ref = gen;
    for (int i = 0; i < N_PREFILL; i++) g_prompt[i] = 3 + (i * 37) % 500;

    /* Warm-up in this process, not counted: the first pthread_create of a process makes
     * glibc calloc the thread's DTV (allocate_dtv); later threads reuse a cached stack and
     * its DTV. The first load starts the first I/O thread (see test_loader_noalloc.c). */
    counts w = run(EL_DT_NONE, 2, EL_DT_F32);
    printf("warm-up (not counted): load %ld, greedy %ld, sampled %ld, prefill %ld "
           "allocations\n", w.load, w.greedy, w.sampled, w.prefill);

    long cost = el_alloc_checked_thread_cost();
    static const struct {
        el_dtype dt;
        unsigned threads;
        el_dtype kv; /* the KV cache */
    } cfg[] = {{EL_DT_NONE, 1, EL_DT_F32}, {EL_DT_F16, 1, EL_DT_F32}, {EL_DT_NONE, 2, EL_DT_F32},
               {EL_DT_F16, 2, EL_DT_F32}, {EL_DT_NONE, 1, EL_DT_F16}, {EL_DT_NONE, 2, EL_DT_F16}};
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        counts c = run(cfg[i].dt, cfg[i].threads, cfg[i].kv);
        printf("weights %s, KV %s, %u thread(s): allocations during load %ld, greedy generate %ld, "
               "sampled generate %ld, prefill+tokenize %ld\n",
               cfg[i].dt == EL_DT_NONE ? "f32" : el_dtype_name(cfg[i].dt),
               el_dtype_name(cfg[i].kv), cfg[i].threads,
               c.load, c.greedy, c.sampled, c.prefill);
        EL_CHECK(c.load == cost); /* 0 in plain builds (asserted above) */
        EL_CHECK(c.greedy == 0);
        EL_CHECK(c.sampled == 0);
        EL_CHECK(c.prefill == 0);
    }

    el_alloc_check_counter();
    free(gen);
    return el_test_finish("test_llama_noalloc");
}
