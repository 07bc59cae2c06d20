/* bench_bert.c - encoder throughput on the real all-MiniLM-L6-v2 (fetched by
 * scripts/fetch_minilm.sh): sequences per second for batches of 1 and 32 sequences of 128
 * tokens, 1 and 2 threads, f32 weights, the median of 5 passes (el_encode, one pass per
 * batch). The baseline, measured in the same run: the GFLOP/s of the CPU matmul kernel alone
 * on the model's largest layer shape (128 x 384 -> 1536, f32), per thread count; the model's
 * GFLOP/s divided by it is the fraction of that peak the whole forward pass reaches
 * (LayerNorm, GELU, attention and packing are what is lost).
 * Usage: bench_bert [MODEL_DIR] [--runs N]   (default .cache/all-MiniLM-L6-v2, run from the
 * repository root). Prints a table; exits 0 with a message when the model is absent; never
 * run by ctest. */
#include "bench/bench_util.h"
#include "edgeload.h"
#include "kernels/cpu/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SEQ 128
#define MAX_BATCH 32
#define MAX_RUNS 21

static int fail(const char *what) {
    fprintf(stderr, "bench_bert: %s: %s\n", what, el_last_error());
    return 2;
}

/* The baseline: y[128, 1536] = x[128, 384] W^T, f32, median GFLOP/s over runs. */
static double matmul_gflops(unsigned threads, int runs) {
    const size_t n = SEQ, in = 384, out = 1536;
    float *x = malloc(n * in * sizeof *x), *w = malloc(out * in * sizeof *w);
    float *y = malloc(n * out * sizeof *y);
    for (size_t i = 0; i < n * in; i++) x[i] = (float)(i % 17) * 0.01f;
    for (size_t i = 0; i < out * in; i++) w[i] = (float)(i % 13) * 0.01f;
    static el_pool pool;
    if (el_pool_init(&pool, threads, EL_ISA_AUTO) != EL_OK) return 0;
    double t[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        const int reps = 20;
        double t0 = bench_now();
        for (int k = 0; k < reps; k++) el_cpu_matmul(&pool, y, out, x, w, EL_DT_F32, n, in, out);
        t[r] = (bench_now() - t0) / reps;
    }
    el_pool_deinit(&pool);
    free(x);
    free(w);
    free(y);
    return 2.0 * n * in * out / bench_median(t, runs) / 1e9;
}

int main(int argc, char **argv) {
    const char *dir = ".cache/all-MiniLM-L6-v2";
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else
            dir = argv[i];
    }
    if (runs < 1 || runs > MAX_RUNS) runs = 5;
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    struct stat st;
    if (stat(p, &st) != 0) {
        printf("bench_bert: %s not found: run scripts/fetch_minilm.sh first (nothing measured)\n",
               p);
        return 0;
    }
    el_plan_params pp = {SEQ, MAX_BATCH, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_F32};
    el_model *m;
    el_plan plan;
    el_arena *a;
    const char *err = bench_open_arena(dir, &pp, &m, &plan, &a);
    if (err) return fail(err);
    if (el_model_load(m, &plan, a, NULL, NULL) != EL_OK) return fail("load");

    /* 32 sequences of 128 ids: [CLS], ordinary word pieces, [SEP]. */
    static int32_t ids[MAX_BATCH * SEQ];
    static uint32_t lengths[MAX_BATCH];
    for (int b = 0; b < MAX_BATCH; b++) {
        lengths[b] = SEQ;
        for (int t = 0; t < SEQ; t++)
            ids[b * SEQ + t] = t == 0 ? 101 : t == SEQ - 1 ? 102 : 1996 + (b * 131 + t * 17) % 20000;
    }
    /* FLOPs of one 128-token sequence: six layers of q, k, v, output (4 x 384^2), FFN
     * (2 x 384 x 1536) multiply-adds per token, and attention (2 x 128 x 384 per token). */
    const double d = 384, f = 1536, L = 6;
    const double flops_seq = L * 2.0 * SEQ * (4 * d * d + 2 * d * f + 2.0 * SEQ * d);

    char mem[32];
    printf("all-MiniLM-L6-v2 (%s), f32 weights, sequence length %d, median of %d passes; "
           "arena %s\n", dir, SEQ, runs, el_size_format(plan.total_bytes, mem, sizeof mem));
    printf("%6s %8s %12s %12s %12s %14s %10s\n", "batch", "threads", "s/pass", "seq/s",
           "model GF/s", "matmul GF/s", "of peak");
    for (unsigned th = 1; th <= 2; th++) {
        double base = matmul_gflops(th, runs);
        el_encoder *e = NULL;
        el_encoder_params ep = {th, EL_DEVICE_CPU};
        if (el_encoder_init(m, a, &plan, &ep, &e) != EL_OK) return fail("encoder");
        static const uint32_t batches[] = {1, 32};
        for (size_t bi = 0; bi < 2; bi++) {
            const uint32_t B = batches[bi];
            const float *h = NULL;
            if (el_encode(e, ids, NULL, lengths, B, SEQ, &h) != EL_OK) return fail("encode");
            double t[MAX_RUNS];
            for (int r = 0; r < runs; r++) {
                double t0 = bench_now();
                if (el_encode(e, ids, NULL, lengths, B, SEQ, &h) != EL_OK) return fail("encode");
                t[r] = bench_now() - t0;
            }
            double s = bench_median(t, runs), gf = flops_seq * B / s / 1e9;
            printf("%6u %8u %12.4f %12.1f %12.2f %14.2f %9.0f%%\n", B, th, s, B / s, gf, base,
                   100.0 * gf / base);
        }
        el_encoder_deinit(e);
    }
    el_arena_deinit(a);
    el_model_close(m);
    return 0;
}
