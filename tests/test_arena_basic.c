/* test_arena_basic.c - the arena: region layout, aligned allocation, exhaustion messages,
 * marks, statistics, bad parameters, reservation failure, and the LOCK/HUGEPAGES/PREFAULT
 * flags falling back instead of failing. */
// ctest-labels: arena;unit
#include "tests/support/el_test.h"

#include "arena/arena.h"
#include "platform/gpu.h"
#include "platform/platform.h"

#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KI 1024ull
#define MI (1024ull * 1024ull)

/* A "Key:  N kB" line of /proc/self/status or /proc/meminfo, in bytes; -1 if absent. */
static long long proc_kb(const char *file, const char *key) {
    char *text = el_test_read_file(file, NULL);
    if (!text) return -1;
    long long v = -1;
    size_t kl = strlen(key);
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtoll(line + kl + 1, NULL, 10) * (strstr(line, "kB") ? 1024 : 1);
            break;
        }
    free(text);
    return v;
}

static bool contains(const char *hay, const char *needle) {
    bool ok = strstr(hay, needle) != NULL;
    if (!ok) fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", hay, needle);
    return ok;
}

static void test_layout_and_alloc(void) {
    el_arena_params p = {.size = MI, .region_bytes = {100000, 8192, 4096, 2 * 4096 + 1}};
    el_arena *a = NULL;
    EL_CHECK_OK(el_arena_init(&a, &p));
    if (!a) return;
    el_arena_stats st;
    el_arena_stats_get(a, &st);
    EL_CHECK(st.reserved >= MI && st.reserved % el_page_size() == 0);
    EL_CHECK(st.used == 0 && st.peak == 0);
    /* capacities rounded up to 4 KiB, the remainder of size in scratch */
    EL_CHECK(st.region[EL_REGION_WEIGHTS].capacity == 102400);
    EL_CHECK(st.region[EL_REGION_KV].capacity == 8192);
    EL_CHECK(st.region[EL_REGION_STAGING].capacity == 12288);
    EL_CHECK(st.region[EL_REGION_SCRATCH].capacity == MI - 102400 - 8192 - 12288);
    uint64_t sum = 0;
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        uint8_t *b = el_arena_region_base(a, (el_region)r);
        uint64_t cap = el_arena_region_capacity(a, (el_region)r);
        EL_CHECK(cap == st.region[r].capacity);
        EL_CHECK(cap % 4096 == 0);
        EL_CHECK(((uintptr_t)b & 4095) == 0);
        EL_CHECK(el_arena_region_available(a, (el_region)r) == cap);
        /* in order weights|kv|scratch|staging, back to back, no overlap */
        if (r + 1 < EL_REGION_COUNT)
            EL_CHECK((uint8_t *)el_arena_region_base(a, (el_region)(r + 1)) == b + cap);
        sum += cap;
    }
    EL_CHECK(sum == MI);
    EL_CHECK(sum <= st.reserved);

    /* Every alignment, with odd sizes in between, lands aligned, inside the region and
     * after the previous allocation. */
    uint8_t *wb = el_arena_region_base(a, EL_REGION_WEIGHTS);
    uint8_t *prev_end = wb;
    bool all_ok = true;
    uint64_t requested = 0;
    for (size_t align = 1; align <= 4096; align *= 2) {
        for (uint64_t n = 1; n <= 301; n += 100) {
            void *q = NULL;
            el_status s = el_arena_alloc(a, EL_REGION_WEIGHTS, n, align, &q);
            uint8_t *u = q;
            if (s != EL_OK || ((uintptr_t)u & (align - 1)) || u < prev_end ||
                u + n > wb + 102400) {
                fprintf(stderr, "  alloc(%llu, align %zu) = %s %p\n", (unsigned long long)n,
                        align, el_status_str(s), q);
                all_ok = false;
                continue;
            }
            memset(u, 0x5a, n);
            prev_end = u + n;
            requested += n;
        }
    }
    EL_CHECK(all_ok);
    el_arena_stats_get(a, &st);
    EL_CHECK(st.region[EL_REGION_WEIGHTS].used == (uint64_t)(prev_end - wb));
    EL_CHECK(st.region[EL_REGION_WEIGHTS].used >= requested);
    EL_CHECK(st.region[EL_REGION_WEIGHTS].peak == st.region[EL_REGION_WEIGHTS].used);

    /* exhaustion: kv holds 8192 */
    void *k1 = NULL, *k2 = (void *)&k2;
    EL_CHECK_OK(el_arena_alloc(a, EL_REGION_KV, 5000, 64, &k1));
    EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_KV, 5000, 64, &k2), EL_E_NOFIT);
    EL_CHECK(k2 == (void *)&k2); /* untouched */
    EL_CHECK(contains(el_last_error(), "arena region kv: requested 5000 bytes ("));
    EL_CHECK(contains(el_last_error(), "available 3192 bytes"));
    EL_CHECK(el_arena_region_available(a, EL_REGION_KV) == 3192);
    /* a request that fits only without alignment padding is refused too */
    EL_CHECK_OK(el_arena_alloc(a, EL_REGION_KV, 1, 1, &k2));
    EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_KV, 8192 - 5056 + 1, 64, &k2), EL_E_NOFIT);
    EL_CHECK_OK(el_arena_alloc(a, EL_REGION_KV, 8192 - 5001, 1, &k2));
    EL_CHECK(el_arena_region_available(a, EL_REGION_KV) == 0);
    EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_KV, 1, 1, &k2), EL_E_NOFIT);
    EL_CHECK(contains(el_last_error(), "available 0 bytes"));
    EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_KV, UINT64_MAX, 4096, &k2), EL_E_NOFIT);

    /* bad requests */
    EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_SCRATCH, 0, 64, &k2), EL_E_USAGE);
    EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_SCRATCH, 16, 0, &k2), EL_E_USAGE);
    EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_SCRATCH, 16, 3, &k2), EL_E_USAGE);
    EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_SCRATCH, 16, 8192, &k2), EL_E_USAGE);
    EL_CHECK(el_arena_mark(a, EL_REGION_SCRATCH) == 0);

    /* marks: scratch */
    uint8_t *sb = el_arena_region_base(a, EL_REGION_SCRATCH);
    void *s1 = NULL, *s2 = NULL, *s3 = NULL;
    EL_CHECK_OK(el_arena_alloc(a, EL_REGION_SCRATCH, 100, 64, &s1));
    EL_CHECK(s1 == sb);
    uint64_t m = el_arena_mark(a, EL_REGION_SCRATCH);
    EL_CHECK(m == 100);
    EL_CHECK_OK(el_arena_alloc(a, EL_REGION_SCRATCH, 1000, 64, &s2));
    EL_CHECK(s2 == sb + 128);
    EL_CHECK_OK(el_arena_alloc(a, EL_REGION_SCRATCH, 3000, 4096, &s3));
    EL_CHECK(s3 == sb + 4096);
    el_arena_stats_get(a, &st);
    EL_CHECK(st.region[EL_REGION_SCRATCH].used == 7096);
    EL_CHECK(st.region[EL_REGION_SCRATCH].peak == 7096);
    el_arena_release(a, EL_REGION_SCRATCH, m);
    EL_CHECK(el_arena_mark(a, EL_REGION_SCRATCH) == 100);
    void *s4 = NULL;
    EL_CHECK_OK(el_arena_alloc(a, EL_REGION_SCRATCH, 8, 64, &s4));
    EL_CHECK(s4 == s2); /* reused after release */
    el_arena_stats_get(a, &st);
    EL_CHECK(st.region[EL_REGION_SCRATCH].used == 136);
    EL_CHECK(st.region[EL_REGION_SCRATCH].peak == 7096);
    EL_CHECK(st.used == st.region[0].used + st.region[1].used + st.region[2].used +
                            st.region[3].used);
    EL_CHECK(st.peak == st.region[0].peak + st.region[1].peak + st.region[2].peak +
                            st.region[3].peak);
    EL_CHECK(st.region[EL_REGION_KV].used == 8192 && st.region[EL_REGION_STAGING].used == 0);

    /* calloc zeroes memory that was dirty */
    memset(sb, 0xab, 8192);
    el_arena_reset(a, EL_REGION_SCRATCH);
    EL_CHECK(el_arena_mark(a, EL_REGION_SCRATCH) == 0);
    void *z = NULL;
    EL_CHECK_OK(el_arena_calloc(a, EL_REGION_SCRATCH, 5000, 64, &z));
    bool zero = z == sb;
    for (size_t i = 0; zero && i < 5000; i++) zero = ((uint8_t *)z)[i] == 0;
    EL_CHECK(zero);
    EL_CHECK(sb[5000] == 0xab); /* and nothing past the request */
    EL_CHECK_STATUS(el_arena_calloc(a, EL_REGION_STAGING, 12289, 64, &z), EL_E_NOFIT);

    /* the whole region is writable memory */
    uint8_t *st_base = el_arena_region_base(a, EL_REGION_STAGING);
    memset(st_base, 0x11, 12288);
    EL_CHECK(st_base[12287] == 0x11);

    el_arena_deinit(a);
}

static void test_params(void) {
    el_arena *a = (el_arena *)&a;
    el_arena_params p = {.size = 64 * KI, .region_bytes = {40000, 30000, 0, 0}};
    /* 40960 + 32768 = 73728 after rounding, more than 65536 */
    EL_CHECK_STATUS(el_arena_init(&a, &p), EL_E_USAGE);
    EL_CHECK(a == NULL);
    EL_CHECK(contains(el_last_error(), "73728"));
    EL_CHECK(contains(el_last_error(), "65536"));

    p.region_bytes[1] = 0;
    p.region_bytes[0] = UINT64_MAX - 10;
    EL_CHECK_STATUS(el_arena_init(&a, &p), EL_E_USAGE);
    p.region_bytes[0] = UINT64_MAX / 2;
    p.region_bytes[3] = UINT64_MAX / 2 + 4096;
    EL_CHECK_STATUS(el_arena_init(&a, &p), EL_E_USAGE);

    /* exactly full: scratch gets nothing */
    el_arena_params full = {.size = 64 * KI, .region_bytes = {32 * KI, 16 * KI, 0, 16 * KI}};
    EL_CHECK_OK(el_arena_init(&a, &full));
    if (a) {
        void *q;
        EL_CHECK(el_arena_region_capacity(a, EL_REGION_SCRATCH) == 0);
        EL_CHECK_STATUS(el_arena_alloc(a, EL_REGION_SCRATCH, 1, 1, &q), EL_E_NOFIT);
        EL_CHECK(contains(el_last_error(), "arena region scratch: requested 1 bytes"));
        el_arena_deinit(a);
    }

    /* a size that is not a 4 KiB multiple is rounded up, all of it to scratch */
    el_arena_params odd = {.size = 10000};
    EL_CHECK_OK(el_arena_init(&a, &odd));
    if (a) {
        EL_CHECK(el_arena_region_capacity(a, EL_REGION_SCRATCH) == 12288);
        EL_CHECK(el_arena_region_capacity(a, EL_REGION_WEIGHTS) == 0);
        el_arena_deinit(a);
    }

    el_arena_params zero = {0};
    EL_CHECK_STATUS(el_arena_init(&a, &zero), EL_E_USAGE);
    EL_CHECK_STATUS(el_arena_init(&a, NULL), EL_E_USAGE);
    EL_CHECK_STATUS(el_arena_init(NULL, &odd), EL_E_USAGE);
    el_arena_params badflag = {.size = 4096, .flags = 1u << 20};
    EL_CHECK_STATUS(el_arena_init(&a, &badflag), EL_E_USAGE);

    el_arena_deinit(NULL); /* no-op */
    el_arena_stats st;
    memset(&st, 0xff, sizeof st);
    el_arena_stats_get(NULL, &st);
    EL_CHECK(st.reserved == 0 && st.used == 0 && !st.locked);

    EL_CHECK(strcmp(el_region_name(EL_REGION_WEIGHTS), "weights") == 0);
    EL_CHECK(strcmp(el_region_name(EL_REGION_KV), "kv") == 0);
    EL_CHECK(strcmp(el_region_name(EL_REGION_SCRATCH), "scratch") == 0);
    EL_CHECK(strcmp(el_region_name(EL_REGION_STAGING), "staging") == 0);
    EL_CHECK(strcmp(el_region_name(EL_REGION_COUNT), "unknown") == 0);
}

/* ---- reservation failure and the platform table ---------------------------------- */

static int g_reserve_calls, g_release_calls;
static void *g_reserved_ptr, *g_released_ptr;
static uint64_t g_reserved_bytes, g_released_bytes;
static el_status (*g_os_reserve)(uint64_t, unsigned, void **, unsigned *);
static void (*g_os_release)(void *, uint64_t);

static el_status fake_reserve_fail(uint64_t bytes, unsigned flags, void **out, unsigned *got) {
    g_reserve_calls++;
    return el_errorf(EL_E_NOMEM, "fake reservation refused");
}

static el_status counting_reserve(uint64_t bytes, unsigned flags, void **out, unsigned *got) {
    g_reserve_calls++;
    g_reserved_bytes = bytes;
    el_status s = g_os_reserve(bytes, flags, out, got);
    g_reserved_ptr = *out;
    return s;
}

static void counting_release(void *p, uint64_t bytes) {
    g_release_calls++;
    g_released_ptr = p;
    g_released_bytes = bytes;
    g_os_release(p, bytes);
}

static void test_reservation(void) {
    el_arena *a = (el_arena *)&a;
    el_arena_params huge = {.size = 1ull << 60};
    EL_CHECK_STATUS(el_arena_init(&a, &huge), EL_E_NOMEM);
    EL_CHECK(a == NULL);
    EL_CHECK(contains(el_last_error(), "1152921504606846976"));
    EL_CHECK(contains(el_last_error(), "MemAvailable"));
    EL_CHECK(contains(el_last_error(), "--arena"));

    el_platform_methods fail = {.name = "fail", .x_reserve = fake_reserve_fail};
    el_platform_set(&fail);
    el_arena_params p = {.size = MI};
    g_reserve_calls = 0;
    EL_CHECK_STATUS(el_arena_init(&a, &p), EL_E_NOMEM);
    EL_CHECK(g_reserve_calls == 1);
    EL_CHECK(contains(el_last_error(), "fake reservation refused"));
    EL_CHECK(contains(el_last_error(), "reserving 1048576 bytes"));
    el_platform_set(NULL);

    /* One reservation per arena, released through the same table even if the table was
     * swapped back in between. */
    g_os_reserve = el_platform_get()->x_reserve;
    g_os_release = el_platform_get()->x_release;
    el_platform_methods counting = {.name = "counting", .x_reserve = counting_reserve,
                                    .x_release = counting_release};
    el_platform_set(&counting);
    g_reserve_calls = g_release_calls = 0;
    EL_CHECK_OK(el_arena_init(&a, &p));
    el_platform_set(NULL);
    EL_CHECK(g_reserve_calls == 1 && g_reserved_bytes >= MI);
    if (a) {
        void *q = NULL;
        EL_CHECK_OK(el_arena_alloc(a, EL_REGION_SCRATCH, MI, 4096, &q));
        EL_CHECK(q == g_reserved_ptr);
        el_arena_deinit(a);
    }
    EL_CHECK(g_reserve_calls == 1);
    EL_CHECK(g_release_calls == 1 && g_released_ptr == g_reserved_ptr &&
             g_released_bytes == g_reserved_bytes);
}

/* ---- flags --------------------------------------------------------------------------- */

/* Writes and reads back every page, so a flag that left memory unusable is caught. */
static bool arena_usable(el_arena *a) {
    uint8_t *b = el_arena_region_base(a, EL_REGION_WEIGHTS);
    uint64_t n = 0;
    for (int r = 0; r < EL_REGION_COUNT; r++) n += el_arena_region_capacity(a, (el_region)r);
    for (uint64_t o = 0; o < n; o += 4096) b[o] = (uint8_t)(o >> 12);
    for (uint64_t o = 0; o < n; o += 4096)
        if (b[o] != (uint8_t)(o >> 12)) return false;
    return true;
}

static void test_flags(void) {
    /* LOCK: whether it is granted depends on privileges and RLIMIT_MEMLOCK; what the
     * stats say must match what the kernel reports as locked. */
    long long lck0 = proc_kb("/proc/self/status", "VmLck");
    el_arena *a = NULL;
    el_arena_params p = {.size = 4 * MI, .flags = EL_ARENA_LOCK};
    EL_CHECK_OK(el_arena_init(&a, &p));
    if (a) {
        el_arena_stats st;
        el_arena_stats_get(a, &st);
        long long lck1 = proc_kb("/proc/self/status", "VmLck");
        printf("LOCK 4 MiB: locked=%d VmLck %lld -> %lld bytes\n", st.locked, lck0, lck1);
        if (lck0 >= 0 && lck1 >= 0) {
            if (st.locked)
                EL_CHECK(lck1 - lck0 >= (long long)(4 * MI));
            else
                EL_CHECK(lck1 - lck0 < (long long)(4 * MI));
        }
        EL_CHECK(arena_usable(a));
        el_arena_deinit(a);
        long long lck2 = proc_kb("/proc/self/status", "VmLck");
        EL_CHECK(lck2 == lck0);
    }

    /* HUGEPAGES: with no huge page pool it must fall back to normal pages, not fail. */
    long long hp_free = proc_kb("/proc/meminfo", "HugePages_Free");
    long long hp_size = proc_kb("/proc/meminfo", "Hugepagesize");
    el_arena_params h = {.size = 64 * MI, .flags = EL_ARENA_HUGEPAGES};
    EL_CHECK_OK(el_arena_init(&a, &h));
    if (a) {
        el_arena_stats st;
        el_arena_stats_get(a, &st);
        printf("HUGEPAGES 64 MiB: hugepages=%d (pool: %lld free of %lld bytes)\n", st.hugepages,
               hp_free, hp_size);
        if (hp_free >= 0 && hp_size > 0 && hp_free * hp_size < (long long)(64 * MI))
            EL_CHECK(!st.hugepages);
        EL_CHECK(arena_usable(a));
        el_arena_deinit(a);
    }
    h.size = 3 * MI + 4096; /* not a huge page multiple */
    EL_CHECK_OK(el_arena_init(&a, &h));
    if (a) {
        EL_CHECK(arena_usable(a));
        el_arena_deinit(a);
    }

    el_arena_params all = {.size = 8 * MI,
                           .flags = EL_ARENA_LOCK | EL_ARENA_HUGEPAGES | EL_ARENA_PREFAULT};
    EL_CHECK_OK(el_arena_init(&a, &all));
    if (a) {
        EL_CHECK(arena_usable(a));
        el_arena_deinit(a);
    }
}

/* In a child without CAP_IPC_LOCK and with RLIMIT_MEMLOCK 0, mlock must fail, and the
 * arena must still come up, unlocked. Exit: 0 ok, 1 wrong, 77 could not set up. */
static int lock_fallback_child(void) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) == 0) {
        data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
        if (syscall(SYS_capset, &hdr, data) != 0) return 77;
    }
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) return 77;
    el_arena *a = NULL;
    el_arena_params p = {.size = 16 * MI, .flags = EL_ARENA_LOCK | EL_ARENA_PREFAULT};
    if (el_arena_init(&a, &p) != EL_OK) {
        fprintf(stderr, "  child: %s\n", el_last_error());
        return 1;
    }
    el_arena_stats st;
    el_arena_stats_get(a, &st);
    bool ok = !st.locked && arena_usable(a);
    el_arena_deinit(a);
    return ok ? 0 : 1;
}

static void test_lock_fallback(void) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(lock_fallback_child());
    int ws = 0;
    EL_CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid);
    EL_CHECK(WIFEXITED(ws));
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 77)
        printf("lock fallback: could not drop CAP_IPC_LOCK or RLIMIT_MEMLOCK; sub-check not run\n");
    else
        EL_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* A mark newer than the offset is a bug: asserts in debug builds, ignored in release. */
static void test_bad_release(void) {
#ifndef NDEBUG
    printf("expect an assertion message from a child process next:\n");
#endif
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        el_arena *a = NULL;
        el_arena_params p = {.size = 64 * KI};
        if (el_arena_init(&a, &p) != EL_OK) _exit(2);
        void *q;
        if (el_arena_alloc(a, EL_REGION_SCRATCH, 100, 1, &q) != EL_OK) _exit(2);
        el_arena_release(a, EL_REGION_SCRATCH, 200);
        _exit(el_arena_mark(a, EL_REGION_SCRATCH) == 100 ? 0 : 1);
    }
    int ws = 0;
    EL_CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid);
#ifdef NDEBUG
    EL_CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
#else
    EL_CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT);
#endif
}

/* CUDA memory (with a GPU or the emulator): weights|kv|act in one GPU block, scratch on the
 * host, staging pinned for device memory; one reservation per kind at init; a GPU too
 * small gives EL_E_NODEV with requested and free bytes. Without a GPU: EL_E_NODEV. */
static void test_cuda_memory(void) {
    el_arena_params p = {4 * MI, {MI, MI / 2, 64 * 1024, 256 * 1024, MI / 4}, 0,
                         EL_MEMORY_CUDA_DEVICE, 0};
    el_arena *a = NULL;
    if (!el_device_available(EL_DEVICE_CUDA)) {
        EL_CHECK_STATUS(el_arena_init(&a, &p), EL_E_NODEV);
        printf("note: no GPU: CUDA arenas are only checked to refuse\n");
        return;
    }
    for (int k = 0; k < 2; k++) {
        p.memory = k ? EL_MEMORY_CUDA_MANAGED : EL_MEMORY_CUDA_DEVICE;
        uint64_t before = el_gpu_reserve_count();
        EL_CHECK_OK(el_arena_init(&a, &p));
        if (!a) continue;
        EL_CHECK(el_gpu_reserve_count() == before + (k ? 1 : 2));
        el_arena_stats st;
        el_arena_stats_get(a, &st);
        EL_CHECK(st.memory == p.memory);
        EL_CHECK(st.gpu_reserved == MI + MI / 2 + MI / 4);
        uint8_t *w = el_arena_region_base(a, EL_REGION_WEIGHTS);
        EL_CHECK((uint8_t *)el_arena_region_base(a, EL_REGION_KV) == w + MI);
        EL_CHECK((uint8_t *)el_arena_region_base(a, EL_REGION_ACT) == w + MI + MI / 2);
        uint8_t *sc = el_arena_region_base(a, EL_REGION_SCRATCH);
        EL_CHECK(sc < w || sc >= w + st.gpu_reserved); /* scratch is not in the GPU block */
        sc[0] = 1; /* the host may write scratch */
        EL_CHECK(el_region_on_gpu(EL_REGION_ACT) && !el_region_on_gpu(EL_REGION_SCRATCH));
        el_arena_deinit(a);
        a = NULL;
    }
    p.memory = EL_MEMORY_CUDA_DEVICE;
    p.region_bytes[EL_REGION_WEIGHTS] = 1ull << 46; /* 64 TiB: no GPU has it */
    p.size = p.region_bytes[EL_REGION_WEIGHTS] + 4 * MI;
    EL_CHECK_STATUS(el_arena_init(&a, &p), EL_E_NODEV);
    EL_CHECK(strstr(el_last_error(), "reserving") && strstr(el_last_error(), "free"));
}

int main(void) {
    test_cuda_memory();
    test_layout_and_alloc();
    test_params();
    test_reservation();
    test_flags();
    test_lock_fallback();
    test_bad_release();
    return el_test_finish("test_arena_basic");
}
