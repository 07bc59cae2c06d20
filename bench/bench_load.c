/* bench_load.c - load throughput against the storage's own speed, measured in one run.
 *
 * Generates a safetensors file (default 1 GiB of f32 tensors) unless given one, then for
 * each of N repetitions (default 5), with the file's pages dropped from the page cache
 * before each measurement (posix_fadvise DONTNEED):
 *   raw   - sequential read() of the whole file into one 4 MiB buffer (the baseline)
 *   load  - el_model_open + plan + arena + el_model_load (as stored)
 *   f16   - the same with --dtype f16 (conversion through staging)
 * and prints the medians, the ratio load/raw (goal >= 0.9), and peak RSS / file bytes for
 * a load (VmHWM reset through /proc/self/clear_refs before it).
 *
 * usage: bench_load [--file PATH] [--size-mib N] [--reps N] [--keep] [--hugepages] */
#include "bench/bench_util.h"
#include "edgeload.h"
#include "platform/platform.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_model(const char *path, uint64_t mib) {
    /* n tensors of 16 MiB f32 each: [1024, 4096]. */
    uint64_t n = mib / 16 ? mib / 16 : 1;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char *json = malloc(160 * n + 16);
    size_t len = 0;
    len += (size_t)sprintf(json + len, "{");
    for (uint64_t i = 0; i < n; i++)
        len += (size_t)sprintf(json + len, "%s\"t%llu\":{\"dtype\":\"F32\",\"shape\":[1024,4096],"
                               "\"data_offsets\":[%llu,%llu]}", i ? "," : "",
                               (unsigned long long)i, (unsigned long long)(i << 24),
                               (unsigned long long)((i + 1) << 24));
    len += (size_t)sprintf(json + len, "}");
    uint64_t jl = len;
    fwrite(&jl, 8, 1, f);
    fwrite(json, 1, len, f);
    free(json);
    float *buf = malloc(16u << 20);
    for (size_t k = 0; k < (4u << 20); k++) buf[k] = (float)((k * 2654435761u) >> 8) * 1e-7f;
    for (uint64_t i = 0; i < n; i++) fwrite(buf, 1, 16u << 20, f);
    free(buf);
    return fclose(f);
}

static unsigned g_arena_flags;

static double edgeload_load(const char *path, el_dtype dt, uint64_t *bytes, uint64_t *hwm,
                            uint64_t *arena) {
    el_model *m;
    el_arena *a;
    el_plan p;
    el_plan_params pp = {0, 0, dt, 0, EL_MEMORY_HOST, EL_DT_F32};
    el_load_stats st;
    bench_reset_hwm();
    double t0 = el_now();
    if (el_model_open(path, NULL, &m) != EL_OK || el_plan_make(m, &pp, &p) != EL_OK) {
        fprintf(stderr, "bench_load: %s\n", el_last_error());
        exit(2);
    }
    el_arena_params ap;
    el_plan_arena_params(&p, p.total_bytes, g_arena_flags, &ap);
    if (el_arena_init(&a, &ap) != EL_OK || el_model_load(m, &p, a, NULL, &st) != EL_OK) {
        fprintf(stderr, "bench_load: %s\n", el_last_error());
        exit(2);
    }
    double t = el_now() - t0;
    el_mem_report r;
    el_mem_report_get(&r);
    *hwm = r.vm_hwm;
    *bytes = st.bytes_read;
    *arena = p.total_bytes;
    el_arena_deinit(a);
    el_model_close(m);
    return t;
}

int main(int argc, char **argv) {
    const char *file = NULL;
    uint64_t mib = 1024;
    int reps = 5;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--file") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--size-mib") && i + 1 < argc) mib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep")) keep = true;
        else if (!strcmp(argv[i], "--hugepages")) g_arena_flags |= EL_ARENA_HUGEPAGES;
        else {
            fprintf(stderr, "usage: bench_load [--file PATH] [--size-mib N] [--reps N] [--keep] [--hugepages]\n");
            return 1;
        }
    }
    if (reps < 1 || reps > 100) reps = 5;
    char tmp[] = "/var/tmp/bench_load_XXXXXX.safetensors";
    bool generated = false;
    if (!file) {
        int fd = mkstemps(tmp, 12);
        if (fd < 0) return perror("mkstemps"), 1;
        close(fd);
        file = tmp;
        printf("generating %llu MiB of f32 tensors in %s ...\n", (unsigned long long)mib, file);
        if (write_model(file, mib)) return perror("write"), 1;
        generated = true;
    }
    double raw[100], load[100], f16[100], hwm_ratio[100];
    uint64_t fbytes = 0, lbytes = 0, hwm = 0, arena = 0;
    for (int r = 0; r < reps; r++) {
        bench_drop_cache(file);
        raw[r] = (double)0;
        double t = bench_raw_read(file, &fbytes);
        raw[r] = fbytes / t / 1e6;
        bench_drop_cache(file);
        t = edgeload_load(file, EL_DT_NONE, &lbytes, &hwm, &arena);
        load[r] = lbytes / t / 1e6;
        hwm_ratio[r] = (double)hwm / (double)fbytes;
        bench_drop_cache(file);
        t = edgeload_load(file, EL_DT_F16, &lbytes, &hwm, &arena);
        f16[r] = lbytes / t / 1e6;
        printf("rep %d: raw %.0f MB/s, load %.0f MB/s, load --dtype f16 %.0f MB/s, VmHWM/file %.3f\n",
               r + 1, raw[r], load[r], f16[r], hwm_ratio[r]);
    }
    double mr = bench_median(raw, reps), ml = bench_median(load, reps), mf = bench_median(f16, reps);
    double mh = bench_median(hwm_ratio, reps);
    printf("\nfile %.1f MiB, %d reps, page cache dropped before each run (medians)\n",
           fbytes / 1048576.0, reps);
    printf("  raw sequential read      %8.0f MB/s\n", mr);
    printf("  edgeload load            %8.0f MB/s   ratio %.2f (goal >= 0.90)\n", ml, ml / mr);
    printf("  edgeload load --dtype f16%8.0f MB/s   ratio %.2f (of the f32 bytes read)\n", mf, mf / mr);
    printf("  peak RSS / file bytes    %8.3f      (load as stored)\n", mh);
    if (generated && !keep) unlink(file);
    return 0;
}
