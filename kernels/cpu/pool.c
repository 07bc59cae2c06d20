/* pool.c - the fixed CPU thread pool: workers are started once (session init), pinned one
 * per CPU when the process may use enough CPUs, wait for a job by spinning for a couple of
 * milliseconds and then sleeping on a condition variable. A job has one share per thread;
 * every thread, the caller included, claims unclaimed shares until none is left, and the
 * caller waits for the claimed ones to finish: a worker the OS has preempted (more runnable
 * threads than cores) holds up only a share it already took. Nothing allocates per job. */
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include "kernels/cpu/cpu.h"

#include <sched.h>
#include <string.h>

/* A worker spins this long for the next job before it sleeps: long enough to stay awake
 * through a prefill or a decode step (a sleeping worker looks idle to the scheduler, which
 * then wakes it on the caller's core, and the two take turns on one core: measured 19k vs
 * 55k prompt tok/s on stories260K), short enough that an idle session frees its cores. */
#define EL_POOL_SPIN_SECONDS 0.002
/* The caller spins this many times for stragglers before it starts yielding its core. */
#define EL_POOL_SPIN 2000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

el_isa el_cpu_isa_best(void) {
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v >= 0) return (el_isa)v;
    v = EL_ISA_PORTABLE;
#if defined(__x86_64__)
    __builtin_cpu_init();
    /* f16c through cpuid leaf 1 (ECX bit 29): clang 14 does not know "f16c" as a
     * __builtin_cpu_supports feature name. */
    unsigned a = 0, b = 0, c = 0, d = 0;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c)
        v = EL_ISA_AVX2;
#elif defined(__aarch64__)
    v = EL_ISA_NEON; /* mandatory in ARMv8-A: nothing to probe */
#endif
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return (el_isa)v;
}

const char *el_isa_name(el_isa isa) {
    switch (isa) {
    case EL_ISA_AUTO: return "auto";
    case EL_ISA_PORTABLE: return "portable";
    case EL_ISA_AVX2: return "avx2";
    case EL_ISA_NEON: return "neon";
    }
    return "unknown";
}

/* Claims and runs shares of job g until none is left. A claim is a compare-and-swap on
 * (generation, next share), so a thread that wakes late cannot claim a share of a later job
 * with this job's function: fn and ctx stay in place until every claimed share is done. */
static void run_shares(el_pool *p, unsigned g) {
    const uint64_t n = p->n_threads;
    uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
    while ((unsigned)(v >> 32) == g && (v & 0xffffffffu) < n) {
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* v reloaded */
        p->fn(p->ctx, (unsigned)(v & 0xffffffffu), p->n_threads);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
        v = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    el_pool_worker *w = arg;
    el_pool *p = w->pool;
    unsigned seen = 0;
    atomic_fetch_add_explicit(&p->started, 1, memory_order_release);
    for (;;) {
        unsigned g = atomic_load_explicit(&p->generation, memory_order_acquire);
        double deadline = 0;
        for (unsigned i = 0; g == seen; i++) {
            cpu_relax();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
            if (i % 64 == 0) { /* the clock costs ~20 ns: read it now and then */
                double t = el_now();
                if (deadline == 0)
                    deadline = t + EL_POOL_SPIN_SECONDS;
                else if (t > deadline)
                    break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_shares(p, g);
    }
    return NULL;
}

/* Pins worker i to the i-th CPU after the caller's, among the CPUs this process may use,
 * when there is one per thread: otherwise the scheduler sometimes runs a worker on the
 * caller's core. The caller itself stays free. Best effort: a failure changes nothing. */
static void pin_workers(el_pool *p) {
#if defined(__linux__)
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    int cpus[EL_POOL_MAX_THREADS], n = 0, start = 0, me = sched_getcpu();
    for (int c = 0; c < CPU_SETSIZE && n < EL_POOL_MAX_THREADS; c++) {
        if (!CPU_ISSET(c, &allowed)) continue;
        if (c == me) start = n;
        cpus[n++] = c;
    }
    if (n < (int)p->n_threads) return;
    for (unsigned i = 1; i < p->n_threads; i++) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[(start + (int)i) % n], &one);
        pthread_setaffinity_np(p->workers[i].thread.handle, sizeof one, &one);
    }
#else
    (void)p;
#endif
}

el_status el_pool_init(el_pool *p, unsigned n_threads, el_isa isa) {
    memset(p, 0, sizeof *p);
    el_isa best = el_cpu_isa_best();
    if (isa == EL_ISA_AUTO) isa = best;
    if (isa == EL_ISA_AVX2 && best != EL_ISA_AVX2)
        return el_errorf(EL_E_USAGE, "thread pool: this CPU lacks AVX2/FMA/F16C");
    if (isa == EL_ISA_NEON && best != EL_ISA_NEON)
        return el_errorf(EL_E_USAGE, "thread pool: NEON kernels exist only in aarch64 builds");
    if (isa != EL_ISA_PORTABLE && isa != EL_ISA_AVX2 && isa != EL_ISA_NEON)
        return el_errorf(EL_E_USAGE, "thread pool: unknown instruction set %d", (int)isa);
    if (n_threads == 0) {
        n_threads = el_cpu_count();
        if (n_threads > EL_POOL_MAX_THREADS) n_threads = EL_POOL_MAX_THREADS;
    }
    if (n_threads > EL_POOL_MAX_THREADS)
        return el_errorf(EL_E_USAGE, "--threads %u: at most %u", n_threads, EL_POOL_MAX_THREADS);
    p->n_threads = n_threads;
    p->isa = isa;
    if (n_threads == 1) return EL_OK;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return el_errorf(EL_E_NOMEM, "thread pool: cannot create a mutex");
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return el_errorf(EL_E_NOMEM, "thread pool: cannot create a condition variable");
    }
    p->sync_ready = true;
    for (unsigned i = 1; i < n_threads; i++) {
        p->workers[i].pool = p;
        p->workers[i].ith = i;
        el_status s = el_thread_start(&p->workers[i].thread, worker_main, &p->workers[i]);
        if (s != EL_OK) {
            el_pool_deinit(p);
            return el_errorf(EL_E_NOMEM, "thread pool: cannot start thread %u of %u", i,
                             n_threads);
        }
    }
    /* Return only once every worker runs: whatever a thread's start costs (the C library's
     * and a sanitizer's per-thread setup) is then paid inside init, never in a later job. */
    while (atomic_load_explicit(&p->started, memory_order_acquire) < n_threads - 1) sched_yield();
    pin_workers(p);
    return EL_OK;
}

void el_pool_deinit(el_pool *p) {
    if (!p || !p->sync_ready) return;
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->stop, true, memory_order_release);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 1; i < p->n_threads; i++)
        if (p->workers[i].thread.started) el_thread_join(&p->workers[i].thread);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    p->sync_ready = false;
}

void el_pool_run(el_pool *p, el_pool_fn fn, void *ctx) {
    if (p->n_threads <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    const unsigned g = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (uint64_t)g << 32, memory_order_release);
    /* The bump happens under the mutex so a worker between its last check and its wait
     * cannot miss it. */
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->generation, g, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    run_shares(p, g);
    /* Spin for shares still running elsewhere; past the spin budget their thread has
     * probably been preempted (more runnable threads than cores), so give the core away. */
    for (unsigned i = 0; atomic_load_explicit(&p->done, memory_order_acquire) != p->n_threads;
         i++) {
        if (i < EL_POOL_SPIN)
            cpu_relax();
        else
            sched_yield();
    }
}

void el_pool_run_sized(el_pool *p, uint64_t work, el_pool_fn fn, void *ctx) {
    if (work < EL_POOL_MIN_WORK || p->n_threads <= 1)
        fn(ctx, 0, 1);
    else
        el_pool_run(p, fn, ctx);
}
