/* test_arena_buffer.c - el_arena_init_buffer: an arena in the caller's memory. Layout (every
 * region inside the buffer, 4 KiB aligned, capacities as el_arena_init gives them, nothing
 * written past el_arena_buffer_bytes), no heap allocation in init or deinit, the refusals
 * (buffer too small by one byte, CUDA memory, lock/huge pages), and the bundled
 * stories260K loaded into a static buffer generating the independent NumPy reference's
 * greedy ids. */
// ctest-labels: arena;quick
// ctest-timeout: 60
#include "tests/llama_fixture.h"
#include "tests/support/el_alloc_count.h"

#include "arena/arena.h"

#include <string.h>

static uint8_t g_buf[8u << 20]; /* the "static arena" a firmware image would declare */

static void test_layout(void) {
    el_arena_params p = {.size = 1000000, .region_bytes = {65536, 8192, 4096, 0, 4096}};
    uint64_t need = 0;
    EL_CHECK_OK(el_arena_buffer_bytes(&p, &need));
    EL_CHECK(need == 1003520 + EL_ARENA_BUFFER_OVERHEAD); /* 1000000 rounded up to 4 KiB */
    /* An odd start: the buffer needs no alignment. */
    uint8_t *buf = g_buf + 3;
    memset(g_buf, 0xA5, need + 8192);
    el_arena *a = NULL, *ref = NULL;
    el_alloc_arm();
    EL_CHECK_OK(el_arena_init_buffer(&a, &p, buf, (size_t)need));
    long allocs = el_alloc_disarm();
    EL_CHECK(allocs == 0);
    EL_CHECK_OK(el_arena_init(&ref, &p));
    if (!a || !ref) return;
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        uint8_t *base = el_arena_region_base(a, (el_region)r);
        uint64_t cap = el_arena_region_capacity(a, (el_region)r);
        EL_CHECK(cap == el_arena_region_capacity(ref, (el_region)r));
        EL_CHECK(((uintptr_t)base & (EL_ALIGN_IO - 1)) == 0);
        EL_CHECK(base >= buf && base + cap <= buf + need);
    }
    el_arena_stats st;
    el_arena_stats_get(a, &st);
    EL_CHECK(st.reserved == 1003520 && st.memory == EL_MEMORY_HOST && !st.locked);
    /* Fill every region to its capacity: the bytes land inside the buffer, none past it. */
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        uint64_t cap = el_arena_region_capacity(a, (el_region)r);
        void *q = NULL;
        if (!cap) continue;
        EL_CHECK_OK(el_arena_alloc(a, (el_region)r, cap, 64, &q));
        if (q) memset(q, 0x5A, (size_t)cap);
        EL_CHECK_STATUS(el_arena_alloc(a, (el_region)r, 1, 1, &q), EL_E_NOFIT);
    }
    bool untouched = true;
    for (size_t i = 0; i < 4096; i++) untouched &= buf[need + i] == 0xA5;
    EL_CHECK(untouched && g_buf[0] == 0xA5 && g_buf[2] == 0xA5);
    el_alloc_arm();
    el_arena_deinit(a);
    EL_CHECK(el_alloc_disarm() == 0);
    el_arena_deinit(ref);
}

static void test_refusals(void) {
    el_arena_params p = {.size = 1 << 20};
    uint64_t need = 0;
    el_arena *a = NULL;
    EL_CHECK_OK(el_arena_buffer_bytes(&p, &need));
    EL_CHECK_STATUS(el_arena_init_buffer(&a, &p, g_buf, (size_t)need - 1), EL_E_NOFIT);
    EL_CHECK(a == NULL && strstr(el_last_error(), "missing 1 bytes"));
    p.memory = EL_MEMORY_CUDA_MANAGED;
    EL_CHECK_STATUS(el_arena_init_buffer(&a, &p, g_buf, sizeof g_buf), EL_E_USAGE);
    p.memory = EL_MEMORY_HOST;
    p.flags = EL_ARENA_LOCK;
    EL_CHECK_STATUS(el_arena_init_buffer(&a, &p, g_buf, sizeof g_buf), EL_E_USAGE);
    p.flags = EL_ARENA_PREFAULT;
    EL_CHECK_OK(el_arena_init_buffer(&a, &p, g_buf, sizeof g_buf));
    el_arena_deinit(a);
    p.size = 0;
    EL_CHECK_STATUS(el_arena_init_buffer(&a, &p, g_buf, sizeof g_buf), EL_E_USAGE);
    EL_CHECK_STATUS(el_arena_init_buffer(&a, &p, NULL, sizeof g_buf), EL_E_USAGE);
}

static bool on_token(void *user, int32_t id, const char *piece, size_t len) {
    int32_t *ids = user;
    if (ids[0] < 32) ids[1 + ids[0]++] = id;
    return true;
}

/* The bundled model in g_buf, against scripts/ref_llama2c.py's greedy ids. */
static void test_stories_in_static_buffer(void) {
    cJSON *fx = fixture_load(STORIES_FIXTURE);
    int32_t *want = NULL;
    size_t n_want = fixture_ids(cJSON_GetObjectItem(fx, "generated_ids"), &want);
    const char *prompt = cJSON_GetObjectItem(fx, "prompt")->valuestring;
    el_model *m = NULL;
    el_arena *a = NULL;
    el_session *s = NULL;
    el_plan plan;
    el_plan_params pp = {.ctx = 128, .batch = 1, .dtype = EL_DT_NONE};
    el_arena_params ap;
    int32_t got[33] = {0};
    EL_CHECK_OK(el_model_open(STORIES_BIN, NULL, &m));
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_plan_arena_params(&plan, plan.total_bytes, 0, &ap);
    EL_CHECK_OK(el_arena_init_buffer(&a, &ap, g_buf, sizeof g_buf));
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    el_session_params sp = {.threads = 2};
    EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    el_tensor_info t;
    EL_CHECK_OK(el_model_tensor(m, 0, &t));
    EL_CHECK((const uint8_t *)t.data >= g_buf && (const uint8_t *)t.data < g_buf + sizeof g_buf);
    if (s) EL_CHECK_OK(el_generate(s, prompt, 32, NULL, on_token, got, NULL));
    EL_CHECK(got[0] == 32 && n_want >= 32 && !memcmp(got + 1, want, 32 * sizeof *want));
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    free(want);
    cJSON_Delete(fx);
}

int main(void) {
    el_alloc_install();
    fixture_require_stories();
    test_layout();
    test_refusals();
    test_stories_in_static_buffer();
    return el_test_finish("test_arena_buffer");
}
