/* test_image_noalloc.c - loading an image allocates nothing from the heap after the arena
 * is committed (the I/O thread and the decode pool's threads are the only runtime cost,
 * measured as bare thread starts), and its peak RSS stays within the arena plus a small
 * constant: chunks are decoded in place, staging lives in the arena. */
// ctest-labels: image
#include "tests/support/el_alloc_count.h"
#include "tests/image_common.h"

#include "platform/platform.h"

static long load_counting(const char *file, uint64_t *arena_bytes) {
    el_model *m = NULL;
    el_arena *a = NULL;
    el_plan p;
    el_plan_params pp = {16, 1, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_model_open(file, NULL, &m));
    EL_CHECK_OK(el_plan_make(m, &pp, &p));
    a = el_test_arena(&p, EL_MEMORY_HOST);
    *arena_bytes = p.total_bytes;
    el_alloc_arm();
    el_status s = el_model_load(m, &p, a, NULL, NULL);
    long n = el_alloc_disarm();
    EL_CHECK_OK(s);
    el_arena_deinit(a);
    el_model_close(m);
    return n;
}

int main(void) {
    el_alloc_install();
    char src[1200], img[1200];
    snprintf(src, sizeof src, "%s", el_test_path("m.safetensors"));
    snprintf(img, sizeof img, "%s", el_test_path("m.elimg"));
    /* ~24 MiB of weights: peak RSS differences are then well above noise. */
    static const el_test_tensor t[] = {
        {"a", EL_DT_F32, 2, {2048, 2048}}, {"b", EL_DT_F16, 2, {2048, 2048}}, {"c", EL_DT_F32, 2, {1024, 2048}},
    };
    EL_CHECK(el_test_write_safetensors(src, t, 3, 5));
    el_image_pack_params p = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_SHUFFLE_LZ4, .chunk_bytes = 1 << 20};
    EL_CHECK_OK(el_image_pack(src, img, &p, NULL));
    uint64_t arena = 0;
    long first = load_counting(img, &arena); /* the first thread starts of the process */
    unsigned threads = 0;
    uint64_t slot = 0;
    {
        el_model *m = NULL;
        EL_CHECK_OK(el_model_open(img, NULL, &m));
        if (m) el_image_staging(&m->image->meta, &threads, &slot);
        el_model_close(m);
    }
    long cost = el_alloc_thread_cost(); /* per thread start + join */
    long n = load_counting(img, &arena);
    printf("allocations: first image load %ld, then %ld; %u decode threads + 1 I/O thread, "
           "bare thread start costs %ld\n", first, n, threads, cost);
    EL_CHECK(n <= cost * (long)(threads + 1));
#ifndef EL_SANITIZED
    EL_CHECK(n == 0);
#endif

    /* Peak RSS: a fresh process would be cleaner; here VmHWM is reset through clear_refs
     * when the kernel allows it, then one load must stay within the arena + 4 MiB. */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    bool reset = f && fputs("5", f) >= 0;
    if (f) reset = fclose(f) == 0 && reset;
    el_mem_report before;
    EL_CHECK_OK(el_mem_report_get(&before));
    load_counting(img, &arena);
    el_mem_report after;
    EL_CHECK_OK(el_mem_report_get(&after));
    printf("VmHWM: %.1f MiB before, %.1f MiB after a load into a %.1f MiB arena (reset %s)\n",
           before.vm_hwm / 1048576.0, after.vm_hwm / 1048576.0, arena / 1048576.0, reset ? "yes" : "no");
#ifndef EL_SANITIZED
    if (reset) EL_CHECK(after.vm_hwm <= before.vm_rss + arena + 4u * 1024 * 1024);
#endif
    el_test_tmpdir_cleanup();
    return el_test_finish("test_image_noalloc");
}
