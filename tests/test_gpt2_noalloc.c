/* test_gpt2_noalloc.c - the GPT-2 path allocates nothing on the heap after the arena is
 * reserved (loading with Conv1D weights transposed through staging, session prefill in
 * several passes, 16 decode steps with greedy picks), counted with a process-wide counting
 * allocator, for f32 and f16 weights on 1 and 2 threads; and the peak RSS of a ~50 MiB
 * synthetic GPT-2 that is loaded and run stays within its arena + 4 MiB. */
// ctest-labels: gpt2;model
// ctest-timeout: 300
#include "tests/gpt2_synth.h"
#include "tests/support/el_alloc_count.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE EL_SOURCE_DIR "/tests/fixtures/hf_gpt2_small"
#define N_STEPS 16
#define N_PREFILL 150

typedef struct counts {
    long load;    /* allocations during el_model_load */
    long prefill; /* during a 150-token prefill */
    long decode;  /* during 16 decode steps with argmax picks */
} counts;

static counts run(const char *path, el_dtype dt, unsigned threads, uint32_t ctx) {
    counts c = {-1, -1, -1};
    el_plan_params pp = {ctx, 1, dt, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    el_model *m;
    el_arena *a;
    if (!el_alloc_load(path, &pp, &m, &plan, &a, &c.load)) return c;
    el_session_params sp = {threads, EL_DEVICE_CPU, 16, false}; /* prefill in passes of 16 */
    el_session *s = NULL;
    EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    if (s) {
        static int32_t ids[N_PREFILL];
        uint32_t vocab = el_session_vocab(s), room = el_session_ctx(s) - N_STEPS;
        uint32_t n = room < N_PREFILL ? room : N_PREFILL;
        for (uint32_t i = 0; i < N_PREFILL; i++) ids[i] = (int32_t)((i * 37 + 11) % vocab);
        const float *lg = NULL;
#ifdef EL_SANITIZED
        /* The sanitizer runtime allocates its bookkeeping when a new thread first runs
         * (see test_llama_noalloc.c). This model's matrices are below EL_POOL_MIN_WORK, so
         * no job wakes the worker: give it time to start (and finish that bookkeeping)
         * before counting, then run a pass. Plain builds count from the first job. */
        usleep(200 * 1000);
        EL_CHECK_OK(el_session_forward(s, ids, n, &lg));
        el_session_reset(s);
#endif
        el_alloc_arm();
        el_status s1 = el_session_forward(s, ids, n, &lg);
        c.prefill = el_alloc_disarm();
        EL_CHECK_OK(s1);
        el_alloc_arm();
        for (int i = 0; i < N_STEPS && s1 == EL_OK; i++) {
            int32_t next = 0;
            for (uint32_t k = 1; k < vocab; k++)
                if (lg[k] > lg[next]) next = (int32_t)k;
            s1 = el_session_forward(s, &next, 1, &lg);
        }
        c.decode = el_alloc_disarm();
        EL_CHECK_OK(s1);
        el_session_deinit(s);
    }
    el_arena_deinit(a);
    el_model_close(m);
    return c;
}

static uint64_t g_base_hwm; /* VmHWM at startup: the test process's own libraries */

/* ~50 MiB of f32 weights, loaded and run: VmHWM within the arena + 4 MiB (sanitizer
 * builds: + arena/8 shadow and 48 MiB runtime, as test_loader_peak_rss.c). */
static void peak_rss(void) {
    gpt2_synth g;
    gpt2_synth_default(&g);
    g.dim = 512;
    g.heads = 8;
    g.layers = 4;
    g.inner = 2048;
    g.vocab = 8000;
    g.n_pos = 256;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/big", el_test_tmpdir());
    EL_CHECK(gpt2_synth_write(dir, &g));
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return;
    el_plan plan;
    EL_CHECK_OK(el_plan_make(m, NULL, &plan));
    el_arena *a = el_test_arena(&plan, EL_MEMORY_HOST);
    el_status st = a ? el_model_load(m, &plan, a, NULL, NULL) : EL_E_NOMEM;
    EL_CHECK_OK(st);
    el_session *s = NULL;
    if (st == EL_OK) EL_CHECK_OK(el_session_init(m, a, &plan, NULL, &s));
    if (s) {
        int32_t ids[200];
        for (int i = 0; i < 200; i++) ids[i] = (i * 131 + 7) % (int32_t)g.vocab;
        const float *lg = NULL;
        EL_CHECK_OK(el_session_forward(s, ids, 200, &lg));
        for (int i = 0; i < 40; i++) EL_CHECK_OK(el_session_forward(s, &ids[i], 1, &lg));
        el_session_deinit(s);
    }
    uint64_t hwm = el_test_vmhwm(), slack = 4u << 20,
             bound = g_base_hwm + plan.total_bytes + slack;
#ifdef EL_SANITIZED
    bound += plan.total_bytes / 8 + (48u << 20);
#endif
    printf("peak RSS: weights %.1f MiB, arena %.1f MiB, VmHWM %.1f MiB, bound %.1f MiB (startup "
           "footprint %.1f + arena + 4 MiB)\n", plan.region_bytes[EL_REGION_WEIGHTS] / 1048576.0,
           plan.total_bytes / 1048576.0, hwm / 1048576.0, bound / 1048576.0,
           g_base_hwm / 1048576.0);
    EL_CHECK(plan.region_bytes[EL_REGION_WEIGHTS] > (48u << 20));
    EL_CHECK(hwm > 0 && hwm <= bound);
    el_arena_deinit(a);
    el_model_close(m);
}

int main(void) {
    g_base_hwm = el_test_vmhwm();
    el_alloc_install();
    /* Warm-up, not counted: the process's first thread start allocates (glibc's DTV). */
    counts w = run(FIXTURE, EL_DT_NONE, 2, 0);
    printf("warm-up (not counted): load %ld, prefill %ld, decode %ld allocations\n", w.load,
           w.prefill, w.decode);
    long cost = el_alloc_checked_thread_cost();
    static const struct {
        el_dtype dt;
        unsigned threads;
    } cfg[] = {{EL_DT_NONE, 1}, {EL_DT_F16, 1}, {EL_DT_NONE, 2}, {EL_DT_F16, 2}};
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        counts c = run(FIXTURE, cfg[i].dt, cfg[i].threads, 0);
        printf("weights %s, %u thread(s): allocations during load %ld, prefill %ld, "
               "decode %ld\n", cfg[i].dt == EL_DT_NONE ? "f32" : el_dtype_name(cfg[i].dt),
               cfg[i].threads, c.load, c.prefill, c.decode);
        EL_CHECK(c.load == cost);
        EL_CHECK(c.prefill == 0);
        EL_CHECK(c.decode == 0);
    }
    el_alloc_check_counter();

    peak_rss();
    el_test_tmpdir_cleanup();
    return el_test_finish("test_gpt2_noalloc");
}
