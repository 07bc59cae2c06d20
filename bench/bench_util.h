/* bench_util.h - what every benchmark shares: a monotonic clock, medians, dropping a
 * file's page cache, resetting VmHWM, timing a raw read of a file (the baseline the
 * loader benchmarks compare with), and a model opened with its arena. Header-only: each
 * bench_*.c is its own program. */
#ifndef EL_BENCH_UTIL_H
#define EL_BENCH_UTIL_H

#include "edgeload.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v). */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Writes back and evicts path's pages, so the next read comes from storage. */
static inline void bench_drop_cache(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

/* Resets VmHWM to the current RSS (/proc/self/clear_refs 5). */
static inline void bench_reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

/* Seconds to read the whole file with 4 MiB read() calls, one at a time, opened with
 * oflags added (O_DIRECT: no page cache, no kernel readahead); *bytes = bytes read. */
static inline double bench_raw_read_flags(const char *path, int oflags, uint64_t *bytes) {
    char *buf = aligned_alloc(4096, 4u << 20);
    int fd = open(path, O_RDONLY | oflags);
    double t0 = bench_now();
    ssize_t n;
    *bytes = 0;
    while (buf && fd >= 0 && (n = read(fd, buf, 4u << 20)) > 0) *bytes += (uint64_t)n;
    double t = bench_now() - t0;
    if (fd >= 0) close(fd);
    free(buf);
    return t;
}

static inline double bench_raw_read(const char *path, uint64_t *bytes) {
    return bench_raw_read_flags(path, 0, bytes);
}

/* ---- memory read bandwidth ------------------------------------------------------------ */

typedef struct bench_bw_job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bench_bw_job;

/* 32-byte vectors (GCC/Clang vector extension, any target): four independent sums keep
 * enough loads in flight that memory, not the adds, is the limit. */
typedef uint64_t bench_v4u64 __attribute__((vector_size(32)));

static inline void *bench_bw_read(void *arg) {
    bench_bw_job *j = arg;
    const bench_v4u64 *p = (const bench_v4u64 *)j->p;
    size_t n = j->n / 4;
    bench_v4u64 a = {0}, b = {0}, c = {0}, d = {0};
    for (size_t i = 0; i + 4 <= n; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    bench_v4u64 s = a + b + c + d;
    j->sum = s[0] + s[1] + s[2] + s[3];
    return NULL;
}

#define BENCH_BW_MAX_THREADS 64
#define BENCH_BW_MAX_RUNS 21

/* Bytes per second read by `threads` threads (<= 64) streaming through buf (words 8-byte
 * words, 32-byte aligned), the median of runs (<= 21). */
static inline double bench_read_bandwidth(const uint64_t *buf, size_t words, int threads,
                                          int runs) {
    double t[BENCH_BW_MAX_RUNS];
    volatile uint64_t sink = 0;
    if (runs > BENCH_BW_MAX_RUNS) runs = BENCH_BW_MAX_RUNS;
    if (threads > BENCH_BW_MAX_THREADS) threads = BENCH_BW_MAX_THREADS;
    for (int r = 0; r < runs; r++) {
        pthread_t th[BENCH_BW_MAX_THREADS];
        bench_bw_job jobs[BENCH_BW_MAX_THREADS];
        size_t per = words / (size_t)threads;
        double t0 = bench_now();
        for (int k = 0; k < threads; k++) {
            jobs[k] = (bench_bw_job){buf + (size_t)k * per, per, 0};
            if (k) pthread_create(&th[k], NULL, bench_bw_read, &jobs[k]);
        }
        bench_bw_read(&jobs[0]);
        for (int k = 1; k < threads; k++) pthread_join(th[k], NULL);
        t[r] = (double)(per * (size_t)threads * 8) / (bench_now() - t0);
        for (int k = 0; k < threads; k++) sink += jobs[k].sum;
    }
    (void)sink;
    return bench_median(t, runs);
}

/* Opens path, plans it with pp and reserves an arena of the plan's total bytes in
 * pp->memory. NULL when all three worked; else what failed (path, "plan" or "arena") for the
 * caller's message, with what was made left in *m and *a. */
static inline const char *bench_open_arena(const char *path, const el_plan_params *pp,
                                           el_model **m, el_plan *plan, el_arena **a) {
    *m = NULL, *a = NULL;
    if (el_model_open(path, NULL, m) != EL_OK) return path;
    if (el_plan_make(*m, pp, plan) != EL_OK) return "plan";
    el_arena_params ap;
    el_plan_arena_params(plan, plan->total_bytes, 0, &ap);
    ap.memory = pp->memory;
    if (el_arena_init(a, &ap) != EL_OK) return "arena";
    return NULL;
}

#endif /* EL_BENCH_UTIL_H */
