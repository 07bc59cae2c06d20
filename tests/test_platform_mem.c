/* test_platform_mem.c - el_mem_report_get against /proc, and the arena's effect on
 * resident memory: reserving is free, touching or prefaulting costs exactly that. */
// ctest-labels: platform;unit
#include "tests/support/el_test.h"

#include "arena/arena.h"
#include "platform/platform.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MI (1024ull * 1024ull)

/* Independent reading of "Key: N kB" from a /proc file, in bytes; 0 if absent. */
static uint64_t proc_bytes(const char *file, const char *key) {
    char *text = el_test_read_file(file, NULL);
    if (!text) return 0;
    uint64_t v = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s:", key);
    const char *line = strstr(text, pat);
    if (line) v = strtoull(line + strlen(pat), NULL, 10) * 1024;
    free(text);
    return v;
}

static uint64_t absdiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

static el_mem_report report(void) {
    el_mem_report r;
    memset(&r, 0, sizeof r);
    EL_CHECK_OK(el_mem_report_get(&r));
    return r;
}

static void test_report(void) {
    el_mem_report r = report();
    printf("VmRSS %llu, VmHWM %llu, MemAvailable %llu bytes\n", (unsigned long long)r.vm_rss,
           (unsigned long long)r.vm_hwm, (unsigned long long)r.mem_available);
    EL_CHECK(r.vm_rss > 0);
    EL_CHECK(r.vm_hwm >= r.vm_rss);
    EL_CHECK(r.mem_available > 0);
    EL_CHECK(r.vm_rss % 1024 == 0 && r.mem_available % 1024 == 0); /* kB scaled to bytes */
    /* agrees with /proc read another way (small drift between the two reads) */
    uint64_t rss = proc_bytes("/proc/self/status", "VmRSS");
    uint64_t avail = proc_bytes("/proc/meminfo", "MemAvailable");
    EL_CHECK(absdiff(rss, r.vm_rss) < 4 * MI);
    EL_CHECK(absdiff(avail, r.mem_available) < 256 * MI);
    EL_CHECK_STATUS(el_mem_report_get(NULL), EL_E_USAGE);
    uint64_t page = el_page_size();
    EL_CHECK(page >= 4096 && (page & (page - 1)) == 0);
    EL_CHECK(page == (uint64_t)sysconf(_SC_PAGESIZE));
}

static void test_arena_rss(void) {
    /* Reserving 256 MiB maps address space, not memory. */
    el_mem_report r0 = report();
    el_arena *a = NULL;
    el_arena_params big = {.size = 256 * MI};
    EL_CHECK_OK(el_arena_init(&a, &big));
    el_mem_report r1 = report();
    printf("reserve 256 MiB: VmRSS %+lld bytes\n", (long long)(r1.vm_rss - r0.vm_rss));
    EL_CHECK(r1.vm_rss < r0.vm_rss + 8 * MI);
    el_arena_deinit(a);

    /* Touching 64 MiB of a fresh arena raises the peak by about 64 MiB. */
    el_arena_params p = {.size = 64 * MI, .region_bytes = {64 * MI}};
    EL_CHECK_OK(el_arena_init(&a, &p));
    if (!a) return;
    el_mem_report before = report();
    uint8_t *w = el_arena_region_base(a, EL_REGION_WEIGHTS);
    memset(w, 0x3c, 64 * MI);
    el_mem_report after = report();
    uint64_t floor_hwm = before.vm_rss + 62 * MI;
    uint64_t ceil_hwm = (before.vm_hwm > before.vm_rss + 64 * MI ? before.vm_hwm
                                                                 : before.vm_rss + 64 * MI) +
                        8 * MI;
    printf("touch 64 MiB: VmRSS %llu -> %llu, VmHWM %llu -> %llu bytes\n",
           (unsigned long long)before.vm_rss, (unsigned long long)after.vm_rss,
           (unsigned long long)before.vm_hwm, (unsigned long long)after.vm_hwm);
    EL_CHECK(after.vm_hwm >= floor_hwm);
    EL_CHECK(after.vm_hwm <= ceil_hwm);
    EL_CHECK(after.vm_rss >= before.vm_rss + 62 * MI && after.vm_rss <= before.vm_rss + 72 * MI);
    EL_CHECK(w[64 * MI - 1] == 0x3c);
    el_arena_deinit(a);
    el_mem_report freed = report();
    EL_CHECK(freed.vm_rss + 56 * MI <= after.vm_rss); /* deinit gives it back */
    printf("after deinit: VmRSS %llu, VmHWM %llu bytes\n", (unsigned long long)freed.vm_rss,
           (unsigned long long)freed.vm_hwm);
    /* The peak stays (the kernel's counters are per-CPU and may lag by a little). */
    EL_CHECK(freed.vm_hwm >= floor_hwm && freed.vm_hwm + 2 * MI >= after.vm_hwm);

    /* PREFAULT makes the pages resident at init, before anything is written. */
    el_mem_report q0 = report();
    el_arena_params pf = {.size = 32 * MI, .flags = EL_ARENA_PREFAULT};
    EL_CHECK_OK(el_arena_init(&a, &pf));
    el_mem_report q1 = report();
    printf("prefault 32 MiB: VmRSS %+lld bytes\n", (long long)(q1.vm_rss - q0.vm_rss));
    EL_CHECK(q1.vm_rss >= q0.vm_rss + 31 * MI);
    el_arena_deinit(a);
}

int main(void) {
    test_report();
    test_arena_rss();
    return el_test_finish("test_platform_mem");
}
