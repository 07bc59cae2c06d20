/* test_loader_noalloc.c - after the arena is reserved, loading allocates nothing from the
 * heap: a process-wide counting allocator is armed between el_arena_init and the end of
 * el_model_load (as stored, converted, and with faults injected). */
#include "tests/support/el_alloc_count.h"
#include "tests/support/el_test.h"

#include "platform/platform.h"

#include <stdlib.h>

static long load_counting(const char *file, el_dtype dt) {
    el_model *m = NULL;
    el_arena *a = NULL;
    el_plan p;
    el_plan_params pp = {0, 0, dt, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_model_open(file, NULL, &m));
    EL_CHECK_OK(el_plan_make(m, &pp, &p));
    a = el_test_arena(&p, EL_MEMORY_HOST);
    el_load_stats st;
    el_mem_report mr;
    el_alloc_arm();
    EL_CHECK_OK(el_model_load(m, &p, a, NULL, &st));
    EL_CHECK_OK(el_mem_report_get(&mr)); /* the report is on the path too */
    long n = el_alloc_disarm();
    el_arena_deinit(a);
    el_model_close(m);
    return n;
}

int main(void) {
    el_alloc_install();
    static const el_test_tensor t[] = {
        {"a", EL_DT_F32, 2, {128, 1000}}, {"b", EL_DT_F16, 1, {5000}}, {"c", EL_DT_BF16, 1, {777}},
    };
    const char *file = el_test_path("m.safetensors");
    EL_CHECK(el_test_write_safetensors(file, t, 3, 5));
    /* The first load of a process starts the first I/O thread: glibc's pthread_create then
     * callocs the thread's DTV (allocate_dtv, seen with gdb); later threads reuse the
     * cached stack and its DTV. That one libc allocation is the only one allowed. */
    long first = load_counting(file, EL_DT_NONE);
    printf("allocations during the first load in this process: %ld (glibc's DTV)\n", first);
#ifndef EL_SANITIZED
    EL_CHECK(first <= 1);
#endif
    /* After that, loading may allocate only what starting its one I/O thread costs in this
     * runtime: nothing with plain glibc (asserted), a few runtime-internal blocks under the
     * sanitizers (AsanThread setup, measured here as a bare thread start + join). */
    long cost = el_alloc_checked_thread_cost();
    long n = load_counting(file, EL_DT_NONE);
    printf("allocations during load (as stored): %ld\n", n);
    EL_CHECK(n == cost);
    n = load_counting(file, EL_DT_F16);
    printf("allocations during load (f16 conversion): %ld\n", n);
    EL_CHECK(n == cost);
    el_fault_plan fp = {0, 2, 3};
    if (el_fault_set(&fp)) {
        n = load_counting(file, EL_DT_F32);
        printf("allocations during load with short reads and EINTR: %ld\n", n);
        EL_CHECK(n == cost);
        el_fault_clear();
    }
    el_alloc_check_counter();
    return el_test_finish("test_loader_noalloc");
}
