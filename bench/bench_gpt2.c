/* bench_gpt2.c - GPT-2 decode speed on a generated GPT-2 124M-shaped model (12 layers, 768
 * wide, 12 heads, vocab 50257, n_positions 1024; seeded random f32 weights written as an HF
 * folder into a temp dir), against the memory-bandwidth bound measured in the same run.
 *
 * For f32 and f16 weights and 1 and 2 threads: the median of 5 runs of 64 greedy decode steps
 * after an 8-token prompt (tokens per second), and of 5 prefills of a 128-token prompt (one
 * batched forward; prompt tokens per second, the last column). The bound: read bandwidth (a
 * streaming sum with the same thread count, median of 5) divided by the weight bytes one
 * token reads (every weight except the position table, of which one row is read; the
 * classifier reads all of wte). Bandwidth is measured over a buffer the size of those weight
 * bytes (the same cache levels decode goes through: a big-L3 machine holds much of a 124M
 * model) and over 2 GiB (memory proper); the table gives tok/s as a fraction of both bounds.
 *
 * Usage: bench_gpt2 [--runs N] [--keep DIR]   (DIR: write the model there and keep it;
 *        --write-only: only that, for bench/vs_llamacpp.py).
 * Never run by ctest. */
#include "bench/bench_util.h"
#include "bench/gpt2_124m.h"
#include "edgeload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CTX 256
#define PROMPT 8
#define PREFILL 128 /* prompt tokens of the prefill measurement (one batched forward) */
#define STEPS 64
#define MAX_RUNS 21
#define BW_BYTES (2048ull << 20) /* 4x the 504 MiB L3 this VM reports */

/* ---- decode --------------------------------------------------------------------------- */

static int fail(const char *what) {
    fprintf(stderr, "bench_gpt2: %s: %s\n", what, el_last_error());
    return 2;
}

/* Decode tok/s (median of runs) for each thread count; *touched = weight bytes per token. */
static int bench_dtype(const char *dir, el_dtype dtype, int runs, double tps[2], double pps[2],
                       uint64_t *touched, uint64_t *arena) {
    el_plan_params pp = {CTX, 1, dtype, 0, EL_MEMORY_HOST, EL_DT_F32};
    el_model *m;
    el_plan plan;
    el_arena *a;
    const char *err = bench_open_arena(dir, &pp, &m, &plan, &a);
    if (err) return fail(err);
    el_load_stats ls;
    if (el_model_load(m, &plan, a, NULL, &ls) != EL_OK) return fail("load");
    *arena = plan.total_bytes;
    *touched = 0;
    for (size_t i = 0; i < el_model_tensor_count(m); i++) {
        el_tensor_info ti;
        el_model_tensor(m, i, &ti);
        uint64_t b = 0;
        if (strcmp(ti.name, "wpe.weight") &&
            el_dtype_tensor_bytes(ti.loaded_dtype, ti.shape, ti.ndim, ti.name, &b) == EL_OK)
            *touched += b;
    }
    fprintf(stderr, "  %s: loaded %.0f MB in %.2f s\n", dtype == EL_DT_F16 ? "f16" : "f32",
            ls.bytes_read / 1e6, ls.seconds);
    for (unsigned th = 1; th <= 2; th++) {
        el_session_params sp = {th, EL_DEVICE_CPU, 0, false};
        el_session *s = NULL;
        if (el_session_init(m, a, &plan, &sp, &s) != EL_OK) return fail("session");
        double t[MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            int32_t ids[PROMPT] = {464, 2003, 286, 9552, 318, 262, 3287, 286};
            const float *lg = NULL;
            el_session_reset(s);
            if (el_session_forward(s, ids, PROMPT, &lg) != EL_OK) return fail("prefill");
            double t0 = bench_now();
            for (int k = 0; k < STEPS; k++) {
                int32_t next = 0;
                for (int32_t v = 1; v < VOCAB; v++)
                    if (lg[v] > lg[next]) next = v;
                if (el_session_forward(s, &next, 1, &lg) != EL_OK) return fail("decode");
            }
            t[r] = STEPS / (bench_now() - t0);
        }
        tps[th - 1] = bench_median(t, runs);
        for (int r = 0; r < runs; r++) { /* prefill: one forward of PREFILL tokens */
            int32_t ids[PREFILL];
            for (int k = 0; k < PREFILL; k++) ids[k] = (int32_t)((k * 7919 + 13) % VOCAB);
            const float *lg = NULL;
            el_session_reset(s);
            double t0 = bench_now();
            if (el_session_forward(s, ids, PREFILL, &lg) != EL_OK) return fail("prefill");
            t[r] = PREFILL / (bench_now() - t0);
        }
        pps[th - 1] = bench_median(t, runs);
        el_session_deinit(s);
    }
    el_arena_deinit(a);
    el_model_close(m);
    return 0;
}

/* --model mode: one greedy generation from prompt ids through the public API, timed from
 * before el_model_open, as one JSON line (bench/seed_gpt2.py uses it where `edgeload
 * generate` has no tokenizer for the model). */
static int run_model(const char *dir, const char *id_list, int n_new, el_dtype dtype,
                     uint32_t ctx) {
    static int32_t ids[1024];
    size_t n = 0;
    for (const char *p = id_list; *p && n < 1024;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return fprintf(stderr, "--ids: bad list\n"), 1;
        ids[n++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    double t0 = bench_now();
    el_plan_params pp = {ctx, 1, dtype, 0, EL_MEMORY_HOST, EL_DT_F32};
    el_model *m;
    el_plan plan;
    el_arena *a;
    const char *err = bench_open_arena(dir, &pp, &m, &plan, &a);
    if (err) return fail(err);
    el_load_stats ls;
    if (el_model_load(m, &plan, a, NULL, &ls) != EL_OK) return fail("load");
    el_session *s = NULL;
    if (el_session_init(m, a, &plan, NULL, &s) != EL_OK) return fail("session");
    const float *lg = NULL;
    if (el_session_forward(s, ids, n, &lg) != EL_OK) return fail("prefill");
    uint32_t vocab = el_session_vocab(s);
    int32_t out[256];
    double t_first = 0;
    for (int k = 0; k < n_new && k < 256; k++) {
        int32_t next = 0;
        for (uint32_t v = 1; v < vocab; v++)
            if (lg[v] > lg[next]) next = (int32_t)v;
        out[k] = next;
        if (k == 0) t_first = bench_now();
        if (k + 1 < n_new && el_session_forward(s, &next, 1, &lg) != EL_OK) return fail("decode");
    }
    double t_end = bench_now();
    el_mem_report mr;
    el_mem_report_get(&mr);
    printf("{\"ids\":[");
    for (int k = 0; k < n_new && k < 256; k++) printf("%s%d", k ? "," : "", out[k]);
    printf("],\"load_s\":%.6f,\"ttft_s\":%.6f,\"gen_tok_s\":%.3f,\"arena\":%llu,"
           "\"vm_hwm\":%llu,\"threads\":%u}\n", ls.seconds, t_first - t0,
           n_new > 1 ? (n_new - 1) / (t_end - t_first) : 0.0,
           (unsigned long long)plan.total_bytes, (unsigned long long)mr.vm_hwm,
           el_session_threads(s));
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    return 0;
}

int main(int argc, char **argv) {
    int runs = 5, n_new = 20;
    const char *keep = NULL, *model = NULL, *id_list = NULL;
    bool write_only = false;
    el_dtype dtype = EL_DT_NONE;
    uint32_t ctx = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--keep") && i + 1 < argc) {
            keep = argv[++i];
        } else if (!strcmp(argv[i], "--write-only")) {
            write_only = true;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--ids") && i + 1 < argc) {
            id_list = argv[++i];
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            n_new = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) {
            ctx = (uint32_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            if (el_dtype_parse(argv[++i], &dtype) != EL_OK) return fail("--dtype");
        } else {
            fprintf(stderr, "usage: bench_gpt2 [--runs N] [--keep DIR [--write-only]]\n"
                    "       bench_gpt2 --model DIR --ids 1,2,3 [-n N] [--dtype f16] [--ctx N]\n");
            return 1;
        }
    }
    if (model) return run_model(model, id_list ? id_list : "", n_new, dtype, ctx);
    if (runs < 1 || runs > MAX_RUNS) return fprintf(stderr, "--runs: 1..%d\n", MAX_RUNS), 1;
    char dir[1024];
    if (keep) {
        snprintf(dir, sizeof dir, "%s", keep);
        mkdir(dir, 0755);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/bench_gpt2.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) return fprintf(stderr, "bench_gpt2: cannot make a temp dir\n"), 2;
    }
    struct stat st;
    char mpath[1100];
    snprintf(mpath, sizeof mpath, "%s/model.safetensors", dir);
    if (stat(mpath, &st) != 0) {
        double t0 = bench_now();
        int rc = write_model(dir);
        if (rc) return rc;
        fprintf(stderr, "wrote a GPT-2 124M-shaped model to %s in %.1f s\n", dir, bench_now() - t0);
    }
    if (write_only) return keep ? 0 : fail("--write-only needs --keep DIR");

    double tps[2][2], pps[2][2];
    uint64_t touched[2], arena[2];
    static const el_dtype dts[2] = {EL_DT_NONE, EL_DT_F16};
    for (int d = 0; d < 2; d++) {
        int rc = bench_dtype(dir, dts[d], runs, tps[d], pps[d], &touched[d], &arena[d]);
        if (rc) return rc;
    }

    /* Read bandwidth, same run: over BW_BYTES (past any cache this machine reports), and
     * over a buffer the size of each dtype's per-token weight bytes (what decode streams,
     * through the same cache hierarchy: the bound quoted below). */
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, BW_BYTES)) return fprintf(stderr, "no memory\n"), 3;
    memset(buf, 1, BW_BYTES);
    double bw_big[2], bw_ws[2][2];
    for (int th = 0; th < 2; th++) {
        bw_big[th] = bench_read_bandwidth(buf, BW_BYTES / 8, th + 1, runs);
        for (int d = 0; d < 2; d++) bw_ws[d][th] = bench_read_bandwidth(buf, touched[d] / 8, th + 1, runs);
    }
    free(buf);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("GPT-2 124M shape (12 x 768, vocab 50257), ctx %d, %d-token prompt, %d decode steps, "
           "median of %d; %ld CPUs online\n", CTX, PROMPT, STEPS, runs, cpus);
    printf("read bandwidth over %llu MiB: 1 thread %.2f GB/s, 2 threads %.2f GB/s\n",
           (unsigned long long)(BW_BYTES >> 20), bw_big[0] / 1e9, bw_big[1] / 1e9);
    printf("%-8s %-8s %10s %12s %10s %14s %12s %9s %12s %12s\n", "weights", "threads", "arena MB",
           "bytes/token", "tok/s", "bw(ws) GB/s", "bound tok/s", "fraction",
           "vs big-buf", "prefill t/s");
    for (int d = 0; d < 2; d++)
        for (int th = 0; th < 2; th++) {
            double bound = bw_ws[d][th] / (double)touched[d];
            double bound_big = bw_big[th] / (double)touched[d];
            printf("%-8s %-8d %10.1f %11.1fM %10.2f %14.2f %12.2f %9.2f %12.2f %12.1f\n",
                   d ? "f16" : "f32", th + 1, arena[d] / 1e6, touched[d] / 1e6, tps[d][th],
                   bw_ws[d][th] / 1e9, bound, tps[d][th] / bound, tps[d][th] / bound_big,
                   pps[d][th]);
        }
    if (!keep) {
        unlink(mpath);
        snprintf(mpath, sizeof mpath, "%s/config.json", dir);
        unlink(mpath);
        rmdir(dir);
    }
    return 0;
}
