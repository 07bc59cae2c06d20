/* el_alloc_count.h - a process-wide counting allocator for "nothing allocates after init"
 * tests. Include it in exactly one test source. Plain builds interpose malloc, calloc,
 * realloc, aligned_alloc, posix_memalign and memalign over glibc's (__libc_*), so every
 * heap allocation in the process is seen, libc's own included; sanitizer builds register
 * the sanitizer allocator's hook instead. Arm it after init; read the count after the work. */
#ifndef EL_ALLOC_COUNT_H
#define EL_ALLOC_COUNT_H

#include "platform/platform.h"
#include "tests/support/el_test.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static atomic_int el_alloc_armed;
static atomic_long el_alloc_calls;

static inline void el_alloc_note(void) {
    if (atomic_load_explicit(&el_alloc_armed, memory_order_relaxed))
        atomic_fetch_add(&el_alloc_calls, 1);
}

#ifdef EL_SANITIZED
/* From the sanitizer runtimes' allocator interface (gcc ships no header for it). */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static void el_alloc_hook_malloc(const volatile void *p, size_t n) {
    (void)p;
    (void)n;
    el_alloc_note();
}
static void el_alloc_hook_free(const volatile void *p) { (void)p; }
static inline void el_alloc_install(void) {
    __sanitizer_install_malloc_and_free_hooks(el_alloc_hook_malloc, el_alloc_hook_free);
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n) {
    el_alloc_note();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    el_alloc_note();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    el_alloc_note();
    return __libc_realloc(p, n);
}
void *memalign(size_t al, size_t n) {
    el_alloc_note();
    return __libc_memalign(al, n);
}
void *aligned_alloc(size_t al, size_t n) {
    el_alloc_note();
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n) {
    el_alloc_note();
    void *p = __libc_memalign(al, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
void free(void *p) { __libc_free(p); }
static inline void el_alloc_install(void) {}
#endif

static inline void el_alloc_arm(void) {
    atomic_store(&el_alloc_calls, 0);
    atomic_store(&el_alloc_armed, 1);
}
/* Disarms and returns the allocations seen while armed. */
static inline long el_alloc_disarm(void) {
    atomic_store(&el_alloc_armed, 0);
    return atomic_load(&el_alloc_calls);
}

static void *el_alloc_noop(void *arg) { return arg; }

/* Allocations the runtime makes to start and join one thread (the loader starts one I/O
 * thread per load): none with plain glibc once a first thread has run, a few
 * runtime-internal blocks under the sanitizers (AsanThread::Init's pthread_getattr_np and
 * its cpuset, seen with gdb). Tests assert a load costs exactly this. */
static inline long el_alloc_thread_cost(void) {
    el_thread t = {0};
    el_alloc_arm();
    el_status s = el_thread_start(&t, el_alloc_noop, NULL);
    if (s == EL_OK) el_thread_join(&t);
    return el_alloc_disarm();
}

/* el_alloc_thread_cost, printed and, outside the sanitizers, checked to be 0: what a load
 * (one I/O thread) may allocate. */
static inline long el_alloc_checked_thread_cost(void) {
    long cost = el_alloc_thread_cost();
    printf("allocations to start and join a bare thread: %ld\n", cost);
#ifndef EL_SANITIZED
    EL_CHECK(cost == 0);
#endif
    return cost;
}

/* Checks that the counter works: an allocation while armed is seen. */
static inline void el_alloc_check_counter(void) {
    el_alloc_arm();
    void *volatile p = malloc(16);
    long seen = el_alloc_disarm();
    free(p);
    EL_CHECK(seen >= 1);
}

/* Opens path, plans it with pp, reserves the plan's arena and loads the weights, counting
 * the load's allocations into *load (-1 when no load ran). True with *m and *a held (the
 * caller closes both); false, every failure checked, with nothing held. */
static inline bool el_alloc_load(const char *path, const el_plan_params *pp, el_model **m,
                                 el_plan *plan, el_arena **a, long *load) {
    *m = NULL, *a = NULL, *load = -1;
    EL_CHECK_OK(el_model_open(path, NULL, m));
    if (!*m) return false;
    el_status st = el_plan_make(*m, pp, plan);
    EL_CHECK_OK(st);
    el_arena_params ap;
    if (st == EL_OK) {
        el_plan_arena_params(plan, plan->total_bytes, 0, &ap);
        EL_CHECK_OK(st = el_arena_init(a, &ap));
    }
    if (st == EL_OK) {
        el_alloc_arm();
        st = el_model_load(*m, plan, *a, NULL, NULL);
        *load = el_alloc_disarm();
        EL_CHECK_OK(st);
    }
    if (st == EL_OK) return true;
    el_arena_deinit(*a);
    el_model_close(*m);
    *m = NULL, *a = NULL;
    return false;
}

#endif /* EL_ALLOC_COUNT_H */
