/* bench_cuda.c - the CUDA backend on the GPU it finds, against baselines measured in the
 * same run:
 *   - the device's memory bandwidth: a device-to-device cudaMemcpy of 1 GiB (read + write,
 *     median of 5); decode's bound is that bandwidth over the weight bytes one token reads;
 *   - raw read bandwidth of the model file (4 MiB read()s, page cache dropped) against the
 *     load into the GPU arena (page cache dropped again): MB/s and the ratio;
 *   - prefill tok/s (a 64-token prompt) and decode tok/s (64 greedy steps), medians;
 *   - host memory: VmRSS before CUDA starts, after the context exists (CUDA's own
 *     overhead), and VmHWM after the run minus that overhead (edgeload's share, to compare
 *     with the arena's host regions).
 * Models: a GPT-2 124M-shaped model (bench/gpt2_124m.h) with f16 weights, and the bundled
 * stories260K. --memory managed|device picks the arena's CUDA memory (default: as
 * --device auto would: managed on integrated GPUs, device memory on discrete ones).
 *
 * Usage: bench_cuda [--runs N] [--memory managed|device] [--small]  (--small: stories260K
 * only, e.g. under the cudasim emulator, where the numbers mean nothing). Without a GPU it
 * says so and exits 0. Never run by ctest. */
#include "bench/bench_util.h"
#include "bench/gpt2_124m.h"
#include "edgeload.h"
#include "platform/gpu.h"
#include "platform/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef EL_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#define PREFILL 64
#define STEPS 64
#define MAX_RUNS 21

static int fail(const char *what) {
    fprintf(stderr, "bench_cuda: %s: %s\n", what, el_last_error());
    return 2;
}

#ifdef EL_HAVE_CUDA
/* Device bandwidth in bytes/s: a D2D copy reads and writes each byte (median of runs). */
static double device_bandwidth(int runs) {
    const size_t bytes = 1ull << 30;
    void *a = NULL, *b = NULL;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) {
        cudaFree(a);
        return 0;
    }
    double t[MAX_RUNS];
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice); /* warm up */
    cudaDeviceSynchronize();
    for (int r = 0; r < runs; r++) {
        double t0 = bench_now();
        cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
        cudaDeviceSynchronize();
        t[r] = 2.0 * (double)bytes / (bench_now() - t0);
    }
    cudaFree(a);
    cudaFree(b);
    return bench_median(t, runs);
}
#endif

typedef struct result {
    double load_mbs, raw_mbs, prefill_tps, decode_tps, touched, hwm, host_arena;
} result;

static int bench_model(const char *path, const char *file, el_dtype dt, el_memory mem,
                       int runs, uint32_t ctx, result *r) {
    memset(r, 0, sizeof *r);
    uint64_t raw_bytes = 0;
    bench_drop_cache(file);
    double raw_s = bench_raw_read(file, &raw_bytes);
    r->raw_mbs = raw_s > 0 ? (double)raw_bytes / raw_s / 1e6 : 0;
    bench_drop_cache(file);
    el_plan_params pp = {ctx, 1, dt, 0, mem, EL_DT_F32};
    el_model *m;
    el_plan plan;
    el_arena *a;
    const char *err = bench_open_arena(path, &pp, &m, &plan, &a);
    if (err) return fail(err);
    for (int i = 0; i < EL_REGION_COUNT; i++)
        if (!el_region_on_gpu((el_region)i)) r->host_arena += (double)plan.region_bytes[i];
    el_load_stats ls;
    double t0 = bench_now();
    if (el_model_load(m, &plan, a, NULL, &ls) != EL_OK) return fail("load");
    r->load_mbs = (double)ls.bytes_read / (bench_now() - t0) / 1e6;
    for (size_t i = 0; i < el_model_tensor_count(m); i++) {
        el_tensor_info ti;
        el_model_tensor(m, i, &ti);
        uint64_t b = 0;
        if (strcmp(ti.name, "wpe.weight") &&
            el_dtype_tensor_bytes(ti.loaded_dtype, ti.shape, ti.ndim, ti.name, &b) == EL_OK)
            r->touched += (double)b;
    }
    el_session_params sp = {1, EL_DEVICE_CUDA, 0, false};
    el_session *s = NULL;
    if (el_session_init(m, a, &plan, &sp, &s) != EL_OK) return fail("session");
    uint32_t vocab = el_session_vocab(s);
    int32_t ids[PREFILL];
    for (int i = 0; i < PREFILL; i++) ids[i] = (int32_t)((i * 131 + 7) % vocab);
    double tp[MAX_RUNS], td[MAX_RUNS];
    for (int k = 0; k < runs; k++) {
        const float *lg = NULL;
        el_session_reset(s);
        double a0 = bench_now();
        if (el_session_forward(s, ids, PREFILL, &lg) != EL_OK) return fail("prefill");
        tp[k] = PREFILL / (bench_now() - a0);
        a0 = bench_now();
        for (int j = 0; j < STEPS; j++) {
            int32_t next = 0;
            for (uint32_t v = 1; v < vocab; v++)
                if (lg[v] > lg[next]) next = (int32_t)v;
            if (el_session_forward(s, &next, 1, &lg) != EL_OK) return fail("decode");
        }
        td[k] = STEPS / (bench_now() - a0);
    }
    r->prefill_tps = bench_median(tp, runs);
    r->decode_tps = bench_median(td, runs);
    el_mem_report mr;
    if (el_mem_report_get(&mr) == EL_OK) r->hwm = (double)mr.vm_hwm;
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    return 0;
}

int main(int argc, char **argv) {
    int runs = 5;
    bool small = false;
    const char *memarg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--memory") && i + 1 < argc) memarg = argv[++i];
        else if (!strcmp(argv[i], "--small")) small = true;
        else return fprintf(stderr, "usage: bench_cuda [--runs N] [--memory managed|device] "
                            "[--small]\n"), 1;
    }
    if (runs < 1 || runs > MAX_RUNS) runs = 5;
    el_mem_report m0;
    el_mem_report_get(&m0);
    int n = 0;
    if (!el_gpu_built() || el_gpu_count(&n) != EL_OK || n == 0) {
        printf("bench_cuda: no GPU to measure (%s)\n",
               el_gpu_built() ? (n == 0 ? "no CUDA device" : el_last_error())
                              : "this build has no CUDA backend");
        return 0;
    }
    el_gpu_info g;
    if (el_gpu_info_get(0, &g) != EL_OK) return fail("GPU 0");
    el_mem_report m1;
    el_mem_report_get(&m1);
    double ctx_mib = ((double)m1.vm_rss - (double)m0.vm_rss) / 1048576.0;
    el_memory mem = g.integrated ? EL_MEMORY_CUDA_MANAGED : EL_MEMORY_CUDA_DEVICE;
    if (memarg) mem = !strcmp(memarg, "managed") ? EL_MEMORY_CUDA_MANAGED : EL_MEMORY_CUDA_DEVICE;
    double bw = 0;
#ifdef EL_HAVE_CUDA
    bw = device_bandwidth(runs);
#endif
    printf("GPU 0: %s, sm_%d%d, %s, %.1f GiB; arena memory: %s\n", g.name, g.cc_major,
           g.cc_minor, g.integrated ? "integrated" : "discrete",
           (double)g.total_bytes / 1073741824.0, el_memory_name(mem));
#ifdef EL_CUDA_SIM
    printf("cudasim build: the GPU is emulated on the CPU; every number below is a CPU timing "
           "of the emulation, not a GPU speed\n");
#endif
    printf("device bandwidth (D2D copy, median of %d): %.1f GB/s\n", runs, bw / 1e9);
    printf("host RSS: %.1f MiB before CUDA, +%.1f MiB for the CUDA context\n",
           (double)m0.vm_rss / 1048576.0, ctx_mib);

    char dir[] = "/tmp/bench_cuda.XXXXXX";
    const char *stories = EL_SOURCE_DIR "/assets/stories260K/stories260K.bin";
    struct {
        const char *name, *path;
        char file[1100];
        el_dtype dt;
        uint32_t ctx;
    } models[2] = {{"stories260K f32", stories, "", EL_DT_F32, 256}, {0}};
    snprintf(models[0].file, sizeof models[0].file, "%s", stories);
    int count = 1;
    if (!small) {
        if (!mkdtemp(dir)) return fprintf(stderr, "bench_cuda: mkdtemp failed\n"), 2;
        if (write_model(dir) != 0) return 2;
        models[1].name = "GPT-2 124M f16";
        models[1].path = dir;
        snprintf(models[1].file, sizeof models[1].file, "%s/model.safetensors", dir);
        models[1].dt = EL_DT_F16;
        models[1].ctx = 256;
        count = 2;
    }
    printf("\n| model | load MB/s | raw read MB/s | load/raw | prefill tok/s | decode tok/s "
           "| bound tok/s | of bound | host HWM - ctx MiB | host arena MiB |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        result r;
        bench_reset_hwm();
        rc = bench_model(models[i].path, models[i].file, models[i].dt, mem, runs, models[i].ctx,
                         &r);
        if (rc) break;
        double bound = bw > 0 && r.touched > 0 ? bw / r.touched : 0;
        printf("| %s | %.0f | %.0f | %.2f | %.0f | %.1f | %.0f | %.0f%% | %.1f | %.1f |\n",
               models[i].name, r.load_mbs, r.raw_mbs, r.raw_mbs > 0 ? r.load_mbs / r.raw_mbs : 0,
               r.prefill_tps, r.decode_tps, bound, bound > 0 ? 100.0 * r.decode_tps / bound : 0,
               r.hwm / 1048576.0 - (double)m1.vm_rss / 1048576.0, r.host_arena / 1048576.0);
    }
    if (!small) {
        char p[1200];
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/config.json", dir);
        unlink(p);
        rmdir(dir);
    }
    return rc;
}
