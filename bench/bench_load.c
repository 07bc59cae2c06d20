/* bench_load.c - load throughput against the machine's own speeds, measured in one run.
 *
 * Cases: each --file PATH[:DTYPE] (DTYPE as `edgeload load --dtype`, default as stored), or,
 * without --file, a generated safetensors file (default 1 GiB of f32 tensors) loaded as
 * stored and as f16. For each case and each of N repetitions (default 5), alternating which
 * side of a pair runs first:
 *   cold  - `cat FILE > /dev/null` vs an edgeload load, the file's pages dropped from the
 *           page cache (fdatasync + posix_fadvise DONTNEED) before each
 *   warm  - memcpy of the file's byte count between two buffers already faulted in (the
 *           bandwidth bound) vs an edgeload load with the file in the page cache; also a
 *           memcpy into fresh pages (what any copy into new anonymous memory pays: the
 *           kernel zeroes each page first)
 * A load is el_model_open + plan + arena + el_model_load; its speed is the file's bytes
 * over the weights part (el_load_stats.seconds: after the tokenizer tables are built),
 * the whole wall time printed beside it. Prints medians, the ratios against the goals
 * (cold >= 0.9x cat, warm >= 0.8x memcpy), the load average before and after, and peak
 * RSS / arena of the loads (VmHWM reset through /proc/self/clear_refs before each).
 *
 * usage: bench_load [--file PATH[:DTYPE]]... [--size-mib N] [--bf16-values] [--reps N]
 *                   [--ctx N] [--only cold|warm] [--keep] [--hugepages] [--direct]
 * --bf16-values: the generated f32 weights carry bf16 precision (low 16 bits zero), as a
 * model trained in bf16 and saved as f32: shuffle-lz4 images of it compress ~2x. */
#include "bench/bench_util.h"
#include "edgeload.h"
#include "platform/platform.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static bool g_bf16_values;

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
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    for (size_t k = 0; k < (4u << 20); k++) {
        if (!g_bf16_values) {
            buf[k] = (float)((k * 2654435761u) >> 8) * 1e-7f;
            continue;
        }
        /* A spread like a trained layer's (sum of 4 uniforms, std ~0.02), rounded to bf16. */
        double sum = 0;
        for (int j = 0; j < 4; j++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            sum += (double)(rng >> 11) / 9007199254740992.0;
        }
        float v = (float)((sum - 2.0) * 0.035);
        uint32_t u;
        memcpy(&u, &v, 4);
        u &= 0xffff0000u;
        memcpy(&buf[k], &u, 4);
    }
    for (uint64_t i = 0; i < n; i++) fwrite(buf, 1, 16u << 20, f);
    free(buf);
    return fclose(f);
}

static unsigned g_arena_flags;
static bool g_direct;
static uint32_t g_ctx = 256;
static int g_only; /* 0 both, 1 cold pairs only, 2 warm pairs only */

typedef struct load_result {
    double wall;       /* open + plan + arena + load */
    double weights;    /* el_load_stats.seconds: the weights, after the tokenizer */
    uint64_t bytes;    /* bytes read */
    uint64_t hwm;      /* VmHWM of the load */
    uint64_t arena;    /* plan total */
} load_result;

static load_result edgeload_load(const char *path, el_dtype dt) {
    el_model *m;
    el_arena *a;
    el_plan p;
    el_plan_params pp = {g_ctx, 0, dt, 0, EL_MEMORY_HOST, EL_DT_F16};
    el_load_params lp = {0};
    lp.direct_io = g_direct;
    el_load_stats st;
    load_result r = {0};
    bench_reset_hwm();
    double t0 = el_now();
    if (el_model_open(path, NULL, &m) != EL_OK || el_plan_make(m, &pp, &p) != EL_OK) {
        fprintf(stderr, "bench_load: %s\n", el_last_error());
        exit(2);
    }
    el_arena_params ap;
    el_plan_arena_params(&p, p.total_bytes, g_arena_flags, &ap);
    if (el_arena_init(&a, &ap) != EL_OK || el_model_load(m, &p, a, &lp, &st) != EL_OK) {
        fprintf(stderr, "bench_load: %s\n", el_last_error());
        exit(2);
    }
    r.wall = el_now() - t0;
    r.weights = st.seconds;
    el_mem_report mr;
    el_mem_report_get(&mr);
    r.hwm = mr.vm_hwm;
    r.bytes = st.bytes_read;
    r.arena = p.total_bytes;
    el_arena_deinit(a);
    el_model_close(m);
    return r;
}

/* Seconds of `cat path > /dev/null` (the shell's start, ~1 ms, included). */
static double cat_file(const char *path) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cat '%s' > /dev/null", path);
    double t0 = bench_now();
    if (system(cmd) != 0) fprintf(stderr, "bench_load: %s failed\n", cmd);
    return bench_now() - t0;
}

/* Seconds to memcpy n bytes: into a buffer already faulted in (fresh = false) or into
 * newly mapped pages (huge-page advice as the arena's). */
static double memcpy_time(uint64_t n, bool fresh) {
    size_t len = (size_t)((n + 4095) & ~(uint64_t)4095);
    uint8_t *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (src == MAP_FAILED || dst == MAP_FAILED) {
        fprintf(stderr, "bench_load: out of memory for two %zu-byte buffers\n", len);
        exit(2);
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(src, len, MADV_HUGEPAGE);
    (void)madvise(dst, len, MADV_HUGEPAGE);
#endif
    memset(src, 0x5a, len);
    if (!fresh) memset(dst, 1, len);
    double t0 = bench_now();
    memcpy(dst, src, (size_t)n);
    double t = bench_now() - t0;
    volatile uint8_t sink = dst[n / 2];
    (void)sink;
    munmap(src, len);
    munmap(dst, len);
    return t;
}

static void load_average(char *out, size_t cap) {
    double l[3] = {0, 0, 0};
    if (getloadavg(l, 3) < 3) l[0] = l[1] = l[2] = -1;
    snprintf(out, cap, "%.2f %.2f %.2f", l[0], l[1], l[2]);
}

#define MAX_CASES 16
#define MAX_REPS 100

typedef struct bench_case {
    char path[1024];
    el_dtype dtype;
    uint64_t fbytes;
    double cat[MAX_REPS], cold[MAX_REPS], cold_wall[MAX_REPS];
    double mc[MAX_REPS], mc_fresh[MAX_REPS], warm[MAX_REPS], warm_wall[MAX_REPS];
    double hwm[MAX_REPS];
    uint64_t arena;
} bench_case;

static void run_case(bench_case *c, int r) {
    const bool cat_first = r % 2 == 0;
    load_result lr;
    for (int side = 0; side < 2 && g_only != 2; side++) {
        bench_drop_cache(c->path);
        if ((side == 0) == cat_first) {
            c->cat[r] = cat_file(c->path);
        } else {
            lr = edgeload_load(c->path, c->dtype);
            c->cold[r] = lr.weights;
            c->cold_wall[r] = lr.wall;
            c->hwm[r] = (double)lr.hwm / (double)lr.arena;
            c->arena = lr.arena;
        }
    }
    cat_file(c->path); /* into the page cache */
    for (int side = 0; side < 2 && g_only != 1; side++) {
        if ((side == 0) == cat_first) {
            c->mc[r] = memcpy_time(c->fbytes, false);
            c->mc_fresh[r] = memcpy_time(c->fbytes, true);
        } else {
            lr = edgeload_load(c->path, c->dtype);
            c->warm[r] = lr.weights;
            c->warm_wall[r] = lr.wall;
        }
    }
    printf("  %-44s rep %d: cold cat %.3f s, load %.3f s (wall %.3f); warm memcpy %.3f s "
           "(fresh pages %.3f), load %.3f s (wall %.3f)\n", c->path, r + 1, c->cat[r],
           c->cold[r], c->cold_wall[r], c->mc[r], c->mc_fresh[r], c->warm[r], c->warm_wall[r]);
    fflush(stdout);
}

int main(int argc, char **argv) {
    static bench_case cases[MAX_CASES];
    int ncase = 0;
    uint64_t mib = 1024;
    int reps = 5;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--file") && i + 1 < argc && ncase < MAX_CASES) {
            bench_case *c = &cases[ncase++];
            snprintf(c->path, sizeof c->path, "%s", argv[++i]);
            c->dtype = EL_DT_NONE;
            char *colon = strrchr(c->path, ':');
            if (colon && el_dtype_parse(colon + 1, &c->dtype) == EL_OK) *colon = 0;
            else c->dtype = EL_DT_NONE;
        } else if (!strcmp(argv[i], "--size-mib") && i + 1 < argc) {
            mib = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) {
            g_ctx = (uint32_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            i++;
            g_only = !strcmp(argv[i], "cold") ? 1 : !strcmp(argv[i], "warm") ? 2 : 0;
        } else if (!strcmp(argv[i], "--keep")) {
            keep = true;
        } else if (!strcmp(argv[i], "--bf16-values")) {
            g_bf16_values = true;
        } else if (!strcmp(argv[i], "--hugepages")) {
            g_arena_flags |= EL_ARENA_HUGEPAGES;
        } else if (!strcmp(argv[i], "--direct")) {
            g_direct = true;
        } else {
            fprintf(stderr, "usage: bench_load [--file PATH[:DTYPE]]... [--size-mib N] "
                            "[--bf16-values] [--reps N] [--ctx N] [--keep] [--hugepages] "
                            "[--direct]\n");
            return 1;
        }
    }
    if (reps < 1 || reps > MAX_REPS) reps = 5;
    char tmp[] = "/var/tmp/bench_load_XXXXXX.safetensors";
    bool generated = false;
    if (ncase == 0) {
        int fd = mkstemps(tmp, 12);
        if (fd < 0) return perror("mkstemps"), 1;
        close(fd);
        printf("generating %llu MiB of f32 tensors in %s ...\n", (unsigned long long)mib, tmp);
        if (write_model(tmp, mib)) return perror("write"), 1;
        generated = true;
        for (int k = 0; k < 2; k++) {
            snprintf(cases[k].path, sizeof cases[k].path, "%s", tmp);
            cases[k].dtype = k ? EL_DT_F16 : EL_DT_NONE;
        }
        ncase = 2;
    }
    for (int k = 0; k < ncase; k++) {
        struct stat sb;
        if (stat(cases[k].path, &sb) != 0) return perror(cases[k].path), 1;
        cases[k].fbytes = (uint64_t)sb.st_size;
    }
    char la0[64], la1[64];
    load_average(la0, sizeof la0);
    /* Rounds outside, cases inside: every case sees the same stretch of machine noise. */
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < ncase; k++) run_case(&cases[k], r);
    load_average(la1, sizeof la1);

    printf("\n%d reps (medians), load average %s before, %s after%s%s\n", reps, la0, la1,
           g_direct ? ", --direct" : "", g_arena_flags & EL_ARENA_HUGEPAGES ? ", --hugepages" : "");
    printf("GB/s = file bytes / seconds; load = weights part (wall: open + plan + arena + load)\n");
    printf("%-44s %-6s %8s | %7s %7s %6s %6s | %7s %7s %7s %6s %6s | %6s\n", "file", "dtype",
           "MiB", "cat", "load", "wall", "/cat", "memcpy", "fresh", "load", "wall", "/mcpy",
           "HWM/a");
    for (int k = 0; k < ncase; k++) {
        bench_case *c = &cases[k];
        const double gb = (double)c->fbytes / 1e9;
        double cat = bench_median(c->cat, reps), cold = bench_median(c->cold, reps);
        double coldw = bench_median(c->cold_wall, reps), mc = bench_median(c->mc, reps);
        double mcf = bench_median(c->mc_fresh, reps), warm = bench_median(c->warm, reps);
        double warmw = bench_median(c->warm_wall, reps), hwm = bench_median(c->hwm, reps);
        const char *name = strrchr(c->path, '/') ? strrchr(c->path, '/') + 1 : c->path;
        printf("%-44.44s %-6s %8.1f | %7.2f %7.2f %6.2f %6.2f | %7.2f %7.2f %7.2f %6.2f %6.2f | "
               "%6.3f\n", name, c->dtype == EL_DT_NONE ? "stored" : el_dtype_name(c->dtype),
               c->fbytes / 1048576.0, gb / cat, gb / cold, gb / coldw, cat / cold, gb / mc,
               gb / mcf, gb / warm, gb / warmw, mc / warm, hwm);
    }
    printf("goals: cold load / cat >= 0.90, warm load / memcpy >= 0.80, f32 no slower than f16\n");
    if (generated && !keep) unlink(tmp);
    else if (generated) printf("kept %s\n", tmp);
    return 0;
}
