/* test_llama_session.c - the session and generation API on the bundled stories260K: errors
 * that must be clear and leave nothing half-done (prompt longer than the context, -n past
 * it, invalid UTF-8, devices, thread counts, an arena from a smaller plan), the callback
 * stopping generation, seeded sampling, and sessions returning their memory to the arena. */
// ctest-labels: llama
#include "tests/llama_fixture.h"

#include <string.h>

typedef struct collect {
    int32_t ids[600];
    size_t n;
    size_t stop_after; /* 0 = never */
} collect;

static bool on_token(void *user, int32_t id, const char *piece, size_t len) {
    (void)piece;
    (void)len;
    collect *c = user;
    if (c->n < 600) c->ids[c->n++] = id;
    return !(c->stop_after && c->n >= c->stop_after);
}

typedef struct loaded {
    el_model *m;
    el_plan plan;
    el_arena *a;
} loaded;

static bool load(loaded *L, uint32_t ctx, uint64_t extra) {
    memset(L, 0, sizeof *L);
    EL_CHECK_OK(el_model_open(STORIES_BIN, NULL, &L->m));
    if (!L->m) return false;
    el_plan_params pp = {ctx, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_plan_make(L->m, &pp, &L->plan));
    el_arena_params ap;
    el_plan_arena_params(&L->plan, L->plan.total_bytes + extra, 0, &ap);
    EL_CHECK_OK(el_arena_init(&L->a, &ap));
    if (!L->a) return false;
    EL_CHECK_OK(el_model_load(L->m, &L->plan, L->a, NULL, NULL));
    return true;
}

static void unload(loaded *L) {
    el_arena_deinit(L->a);
    el_model_close(L->m);
}

static void test_errors(void) {
    loaded L;
    if (!load(&L, 24, 0)) return;
    el_session *s = NULL;
    EL_CHECK_OK(el_session_init(L.m, L.a, &L.plan, NULL, &s));
    if (!s) {
        unload(&L);
        return;
    }
    EL_CHECK(el_session_ctx(s) == 24);
    collect c;
    memset(&c, 0, sizeof c);
    el_gen_stats st;
    /* 30+ tokens of prompt in a context of 24. */
    const char *longp = "Once upon a time there was a big dog and a small cat who liked to "
                        "play in the sun every day";
    EL_CHECK_STATUS(el_generate(s, longp, 1, NULL, on_token, &c, &st), EL_E_TOOLONG);
    EL_CHECK(strstr(el_last_error(), "context of 24") && strstr(el_last_error(), "tokens"));
    EL_CHECK(c.n == 0 && st.generated_tokens == 0);
    /* 5 prompt tokens + 20 = 25 > 24: the message says which --ctx would do. */
    EL_CHECK_STATUS(el_generate(s, "Once upon a time", 20, NULL, on_token, &c, NULL),
                    EL_E_TOOLONG);
    EL_CHECK(strstr(el_last_error(), "--ctx 25") != NULL);
    EL_CHECK(c.n == 0);
    /* Past the model's 512 positions: -n is what must shrink. */
    EL_CHECK_STATUS(el_generate(s, "Once", 600, NULL, on_token, &c, NULL), EL_E_TOOLONG);
    EL_CHECK(strstr(el_last_error(), "512") != NULL);
    /* Invalid UTF-8. */
    EL_CHECK_STATUS(el_generate(s, "Once \xe2\x28\xa1", 4, NULL, on_token, &c, NULL),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "byte 5") != NULL);
    /* Exactly filling the context works: 5 + 19 = 24. */
    EL_CHECK_OK(el_generate(s, "Once upon a time", 19, NULL, on_token, &c, &st));
    EL_CHECK(c.n == 19 && st.generated_tokens == 19 && el_session_pos(s) <= 24);
    /* The callback stops generation. */
    memset(&c, 0, sizeof c);
    c.stop_after = 3;
    EL_CHECK_OK(el_generate(s, "Once upon a time", 10, NULL, on_token, &c, &st));
    EL_CHECK(c.n == 3 && st.generated_tokens == 3);
    /* n 0: prefill only. */
    memset(&c, 0, sizeof c);
    EL_CHECK_OK(el_generate(s, "Once upon a time", 0, NULL, on_token, &c, &st));
    EL_CHECK(c.n == 0 && st.prompt_tokens == 5 && el_session_pos(s) == 5);
    /* An empty prompt starts from BOS alone. */
    EL_CHECK_OK(el_generate(s, "", 8, NULL, on_token, &c, &st));
    EL_CHECK(st.prompt_tokens == 1 && c.n == 8);
    el_session_deinit(s);
    unload(&L);
}

static void test_sampling_and_reuse(void) {
    loaded L;
    if (!load(&L, 0, 0)) return;
    el_arena_stats before, after;
    el_arena_stats_get(L.a, &before);
    collect c[3];
    memset(c, 0, sizeof c);
    for (int run = 0; run < 3; run++) {
        /* A new session each time on the same arena: deinit gave the memory back. */
        el_session *s = NULL;
        el_session_params sp = {run == 1 ? 2u : 1u, EL_DEVICE_AUTO, 0, false};
        EL_CHECK_OK(el_session_init(L.m, L.a, &L.plan, &sp, &s));
        if (!s) break;
        el_sampler_params smp = {0.9f, 40, 0.95f, run == 2 ? 8u : 7u};
        EL_CHECK_OK(el_generate(s, "Lily", 48, &smp, on_token, &c[run], NULL));
        el_session_deinit(s);
    }
    EL_CHECK(c[0].n == 48 && c[1].n == 48);
    /* Same seed, different thread counts: the same tokens. */
    EL_CHECK(!memcmp(c[0].ids, c[1].ids, 48 * sizeof(int32_t)));
    EL_CHECK(memcmp(c[0].ids, c[2].ids, c[2].n * sizeof(int32_t)) != 0);
    el_arena_stats_get(L.a, &after);
    EL_CHECK(after.region[EL_REGION_KV].used == before.region[EL_REGION_KV].used);
    EL_CHECK(after.region[EL_REGION_SCRATCH].used == before.region[EL_REGION_SCRATCH].used);
    EL_CHECK(after.region[EL_REGION_ACT].used == before.region[EL_REGION_ACT].used);

    el_session *s = NULL;
    el_session_params bad = {0, EL_DEVICE_CUDA, 0, false};
    EL_CHECK_STATUS(el_session_init(L.m, L.a, &L.plan, &bad, &s), EL_E_NODEV);
    EL_CHECK(el_device_available(EL_DEVICE_CPU)); /* CUDA: tests/test_platform_gpu.c */
    bad = (el_session_params){65, EL_DEVICE_CPU, 0, false};
    EL_CHECK_STATUS(el_session_init(L.m, L.a, &L.plan, &bad, &s), EL_E_USAGE);
    el_device d;
    EL_CHECK_OK(el_device_parse("CUDA", &d));
    EL_CHECK(d == EL_DEVICE_CUDA);
    EL_CHECK_STATUS(el_device_parse("tpu", &d), EL_E_USAGE);
    unload(&L);
}

static void test_small_arena(void) {
    /* An arena made from a ctx-16 plan cannot hold a ctx-512 session: refused cleanly. */
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(STORIES_BIN, NULL, &m));
    if (!m) return;
    el_plan small, full;
    el_plan_params pp = {16, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_plan_make(m, &pp, &small));
    pp.ctx = 0;
    EL_CHECK_OK(el_plan_make(m, &pp, &full));
    el_arena *a = el_test_arena(&small, EL_MEMORY_HOST);
    EL_CHECK_OK(el_model_load(m, &small, a, NULL, NULL));
    el_session *s = NULL;
    EL_CHECK_STATUS(el_session_init(m, a, &full, NULL, &s), EL_E_NOFIT);
    EL_CHECK(s == NULL);
    el_arena_stats st;
    el_arena_stats_get(a, &st);
    EL_CHECK(st.region[EL_REGION_KV].used == 0 && st.region[EL_REGION_SCRATCH].used == 0);
    /* The right plan works in the same arena afterwards. */
    EL_CHECK_OK(el_session_init(m, a, &small, NULL, &s));
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
}

static void test_tokenizer_option(void) {
    /* An explicit tokenizer of the wrong size is refused at open. */
    size_t len = 0;
    char *tok = el_test_read_file(STORIES_TOK, &len);
    if (!tok) return;
    const char *cut = el_test_path("tok_cut.bin");
    EL_CHECK(el_test_write_file(cut, tok, len - 100));
    el_model_open_params op = {.tokenizer_path = cut};
    el_model *m = NULL;
    EL_CHECK_STATUS(el_model_open(STORIES_BIN, &op, &m), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "--tokenizer") != NULL);
    op.tokenizer_path = STORIES_TOK;
    EL_CHECK_OK(el_model_open(STORIES_BIN, &op, &m));
    int32_t bos, eos;
    el_token_special(m, &bos, &eos);
    EL_CHECK(bos == 1 && eos == 2);
    char piece[16];
    size_t n;
    EL_CHECK_OK(el_token_piece(m, 1, 403, piece, sizeof piece, &n));
    EL_CHECK(!strcmp(piece, "Once"));
    el_model_close(m);
    free(tok);
}

int main(void) {
    fixture_require_stories();
    test_errors();
    test_sampling_and_reuse();
    test_small_arena();
    test_tokenizer_option();
    el_test_tmpdir_cleanup();
    return el_test_finish("test_llama_session");
}
