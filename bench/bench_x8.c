/* bench_x8.c - decode matvecs on weights as stored (GGUF's row-major blocks) against the same
 * weights repacked in 8-row tiles (el_q_x8_repack, as sessions on the CPU run them), on a
 * SmolLM2-135M-shaped set of matrices
 * (30 layers of q, k, v, o, gate, up, down and the 49152-row head: more than the L3), one
 * token at a time through the pool, plus the read bandwidth of that memory in the same run
 * (developer-run, never CI). --cached: the first 4 layers only (no head; 4-9 MB, in a 32 MB
 * L3), the kernels' speed where memory does not bound them.
 *
 * usage: bench_x8 [--type q4_0|q4_1|q5_0|q5_1|q8_0] [--threads N] [--rounds N] [--tokens N]
 *                 [--cached]
 * Each round runs --tokens tokens as stored, then tiled, then streams the weights with
 * bench_read_bandwidth; prints the weight GB/s of each and their medians over the rounds
 * (alternating, so a slow spell of the machine hits both). The tiled result is checked bit
 * for bit against the stored one first. */
#include "bench/bench_util.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUNDS 21
#define N_MATS (30 * 7 + 1)

static float frand(void) { return (float)rand() / (float)RAND_MAX - 0.5f; }

typedef struct mat {
    size_t out, in, off; /* rows, columns, byte offset in the buffers */
} mat;

/* One token through every matrix: y = W x per matrix, as stored or tiled. */
static double token_pass(el_pool *p, const mat *m, size_t nm, const uint8_t *w, el_dtype dt,
                         bool tiled, const float *x, float *y, int tokens) {
    const double t0 = bench_now();
    for (int t = 0; t < tokens; t++)
        for (size_t i = 0; i < nm; i++) {
            if (!tiled)
                el_cpu_matmul_q(p, y, m[i].out, x, w + m[i].off, dt, 1, m[i].in, m[i].out, false);
            else
                el_cpu_matmul_qx(p, y, m[i].out, x, w + m[i].off, dt, 1, m[i].in, m[i].out,
                                 false, true);
        }
    return bench_now() - t0;
}

int main(int argc, char **argv) {
    el_dtype dt = EL_DT_Q4_0;
    int threads = 2, rounds = 8, tokens = 10;
    size_t nm = N_MATS;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            i++;
            dt = !strcmp(argv[i], "q8_0")   ? EL_DT_Q8_0
                 : !strcmp(argv[i], "q4_0") ? EL_DT_Q4_0
                 : !strcmp(argv[i], "q4_1") ? EL_DT_Q4_1
                 : !strcmp(argv[i], "q5_0") ? EL_DT_Q5_0
                 : !strcmp(argv[i], "q5_1") ? EL_DT_Q5_1
                                            : EL_DT_NONE;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cached")) nm = 4 * 7;
        else dt = EL_DT_NONE;
    }
    if (dt == EL_DT_NONE || threads < 1 || threads > BENCH_BW_MAX_THREADS || rounds < 1 ||
        rounds > MAX_ROUNDS || tokens < 1) {
        fprintf(stderr, "usage: bench_x8 [--type q4_0|q4_1|q5_0|q5_1|q8_0] [--threads 1..64] "
                "[--rounds 1..21] [--tokens N] [--cached]\n");
        return 1;
    }
    el_pool pool;
    if (el_pool_init(&pool, (unsigned)threads, el_cpu_isa_best()) != EL_OK ||
        !el_q_x8_can(pool.isa, dt, 8)) {
        fprintf(stderr, "bench_x8: no tile kernel for %s on %s\n", el_dtype_name(dt),
                el_isa_name(el_cpu_isa_best()));
        return 2;
    }
    mat m[N_MATS];
    const size_t shapes[7][2] = {{576, 576}, {192, 576}, {192, 576}, {576, 576},
                                 {1536, 576}, {1536, 576}, {576, 1536}};
    const size_t bb = el_dtype_block_bytes(dt);
    size_t total = 0;
    for (size_t i = 0; i < nm; i++) {
        const size_t *s = i < N_MATS - 1 ? shapes[i % 7] : (const size_t[2]){49152, 576};
        m[i] = (mat){s[0], s[1], total};
        total += s[0] * s[1] / 32 * bb;
    }
    total = (total + 63) / 64 * 64;
    uint8_t *w = aligned_alloc(64, total), *wt = aligned_alloc(64, total);
    uint8_t *tmp = malloc(8 * 1536 / 32 * bb);
    float *row = malloc(1536 * sizeof *row), x[1536], y[49152], ya[49152];
    if (!w || !wt || !tmp || !row) return 2;
    for (size_t i = 0; i < nm; i++)
        for (size_t r = 0; r < m[i].out; r++) {
            for (size_t c = 0; c < m[i].in; c++) row[c] = frand() * (1.0f + (float)(c % 5));
            el_quantize_row(dt, row, w + m[i].off + r * m[i].in / 32 * bb, m[i].in);
        }
    memcpy(wt, w, total);
    for (size_t i = 0; i < nm; i++)
        el_q_x8_repack(dt, wt + m[i].off, m[i].out, m[i].in / 32, tmp, true);
    for (size_t i = 0; i < 1536; i++) x[i] = frand();
    /* the check: the last matrix, then every matrix once each way (also the warm-up) */
    if (token_pass(&pool, m, nm, w, dt, false, x, ya, 1) < 0 ||
        token_pass(&pool, m, nm, wt, dt, true, x, y, 1) < 0 ||
        memcmp(y, ya, m[nm - 1].out * sizeof *y)) {
        fprintf(stderr, "bench_x8: the tiled result differs from the stored one\n");
        return 2;
    }
    printf("bench_x8: %s, %d thread(s), %.1f MB of weights, %d tokens per run, on %s\n",
           el_dtype_name(dt), threads, (double)total / 1e6, tokens, el_isa_name(pool.isa));
    printf("| round | as stored GB/s | tiled GB/s | tiled / stored | read probe GB/s |\n"
           "|---|---|---|---|---|\n");
    double a[MAX_ROUNDS], b[MAX_ROUNDS], ratio[MAX_ROUNDS], bw[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        a[r] = (double)total * tokens / token_pass(&pool, m, nm, w, dt, false, x, y, tokens) / 1e9;
        b[r] = (double)total * tokens / token_pass(&pool, m, nm, wt, dt, true, x, y, tokens) / 1e9;
        bw[r] = bench_read_bandwidth((const uint64_t *)(const void *)w, total / 8, threads, 3) /
                1e9;
        ratio[r] = b[r] / a[r];
        printf("| %d | %.1f | %.1f | %.2f | %.1f |\n", r + 1, a[r], b[r], ratio[r], bw[r]);
        fflush(stdout);
    }
    printf("| median | %.1f | %.1f | %.2f | %.1f |\n", bench_median(a, rounds),
           bench_median(b, rounds), bench_median(ratio, rounds), bench_median(bw, rounds));
    el_pool_deinit(&pool);
    free(w), free(wt), free(tmp), free(row);
    return 0;
}
