/* bench_util.h - what every benchmark shares: a monotonic clock, medians, dropping a
 * file's page cache, resetting VmHWM, and timing a raw read of a file (the baseline the
 * loader benchmarks compare with). Header-only: each bench_*.c is its own program. */
#ifndef EL_BENCH_UTIL_H
#define EL_BENCH_UTIL_H

#include <fcntl.h>
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

/* Seconds to read the whole file with 4 MiB read() calls; *bytes = bytes read. */
static inline double bench_raw_read(const char *path, uint64_t *bytes) {
    char *buf = aligned_alloc(4096, 4u << 20);
    int fd = open(path, O_RDONLY);
    double t0 = bench_now();
    ssize_t n;
    *bytes = 0;
    while (buf && fd >= 0 && (n = read(fd, buf, 4u << 20)) > 0) *bytes += (uint64_t)n;
    double t = bench_now() - t0;
    if (fd >= 0) close(fd);
    free(buf);
    return t;
}

#endif /* EL_BENCH_UTIL_H */
