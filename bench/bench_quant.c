/* bench_quant.c - el_cpu_matmul with each weight type (F16 and the GGUF block types) on a
 * SmolLM2-135M-shaped matrix: a decode matvec (n = 1) and a prompt batch (n = 32), on the
 * vector path of this CPU, 1 thread and --threads N; prints the median time, the weight bytes
 * streamed per second, the time relative to F16 and the fastest call (on a shared machine the
 * CPU work without preemption).
 *
 * usage: bench_quant [--in N] [--out N] [--n N] [--reps N] [--threads N] [--type T]
 *                    [--no-avx512] [--no-vnni]
 * (--n: the prompt batch, 32 by default; --type: that type only (and F16, the yardstick);
 * --no-avx512: the AVX2 variant of the float-weight kernels on an AVX-512 CPU; --no-vnni:
 * the AVX2 variant of the block-type kernels) */
#include "bench/bench_util.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/matmul_f_impl.h"
#include "kernels/cpu/matmul_q_impl.h"
#include "kernels/fp16.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)(g_rng >> 40) / 16777216.0f - 0.5f;
}

int main(int argc, char **argv) {
    size_t in = 576, out = 1536; /* SmolLM2-135M: hidden 576, ffn 1536 */
    int reps = 200;
    unsigned threads = 2;
    size_t nmax = 32;
    el_dtype only = EL_DT_NONE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-avx512")) el_mm_no_avx512 = 1;
        else if (!strcmp(argv[i], "--no-vnni")) el_qdot_no_vnni = 1;
        else if (i + 1 == argc) break;
        else if (!strcmp(argv[i], "--in")) in = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--out")) out = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads")) threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n")) nmax = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--type") && el_dtype_parse(argv[++i], &only) != EL_OK) {
            fprintf(stderr, "bench_quant: unknown type %s\n", argv[i]);
            return 1;
        }
    }
    if (nmax < 2) nmax = 2;
    if (in % 256 && in % 32) {
        fprintf(stderr, "bench_quant: --in must be a multiple of 32\n");
        return 1;
    }
    static const el_dtype types[] = {EL_DT_F16,  EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0,
                                     EL_DT_Q5_1, EL_DT_Q4_K, EL_DT_Q5_K, EL_DT_Q6_K};
    float *wf = malloc(in * out * 4), *x = malloc(nmax * in * 4), *y = malloc(nmax * out * 4);
    double *t = malloc((size_t)reps * sizeof *t);
    for (size_t i = 0; i < in * out; i++) wf[i] = frand();
    for (size_t i = 0; i < nmax * in; i++) x[i] = frand();
    bool vnni = false, avx512 = false;
#if defined(__x86_64__)
    vnni = el_cpu_has_avx512vnni();
    avx512 = el_cpu_has_avx512() && !el_mm_no_avx512;
#endif
    printf("matrix [%zu, %zu], %d reps, isa %s%s%s\n", out, in, reps,
           el_isa_name(el_cpu_isa_best()),
           vnni && !el_qdot_no_vnni ? " (block types: AVX-512 VNNI kernels)" : "",
           avx512 ? " (F16: AVX-512 kernels)" : "");
    printf("%-6s %8s %5s %12s %10s %8s %8s\n", "type", "threads", "n", "us/call", "weight GB/s",
           "vs F16", "min us");
    const unsigned tcount[2] = {1, threads};
    for (int ti = 0; ti < 2; ti++) {
        el_pool p;
        if (el_pool_init(&p, tcount[ti], EL_ISA_AUTO) != EL_OK) return 1;
        for (size_t n = 1; n <= nmax; n += nmax - 1) {
            double f16_us = 0;
            for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
                const el_dtype dt = types[k];
                const bool skip = only != EL_DT_NONE && dt != only && dt != EL_DT_F16;
                if (in % el_dtype_block(dt) || skip) continue;
                uint64_t rb = 0;
                el_dtype_row_bytes(dt, in, &rb);
                uint8_t *w = malloc(rb * out);
                for (size_t r = 0; r < out; r++) {
                    if (dt == EL_DT_F16)
                        for (size_t c = 0; c < in; c++)
                            ((uint16_t *)w)[r * in + c] = el_fp32_to_fp16(wf[r * in + c]);
                    else if (el_quant_can_quantize(dt))
                        el_quantize_row(dt, wf + r * in, w + r * rb, in);
                    else /* K types: random bytes, small f16 scales */
                        for (size_t b = 0; b < rb; b++) w[r * rb + b] = (uint8_t)(frand() * 256 + 128) & 0x33;
                }
                el_cpu_matmul(&p, y, out, x, w, dt, n, in, out); /* warm up */
                for (int r = 0; r < reps; r++) {
                    double t0 = bench_now();
                    el_cpu_matmul(&p, y, out, x, w, dt, n, in, out);
                    t[r] = bench_now() - t0;
                }
                double us = bench_median(t, reps) * 1e6, mn = t[0];
                for (int r = 1; r < reps; r++) mn = t[r] < mn ? t[r] : mn;
                if (dt == EL_DT_F16) f16_us = us;
                printf("%-6s %8u %5zu %12.1f %10.2f %8.2f %8.1f\n", el_dtype_name(dt), tcount[ti], n,
                       us, (double)(rb * out) / us * 1e-3, us / f16_us, mn * 1e6);
                free(w);
            }
        }
        el_pool_deinit(&p);
    }
    free(wf);
    free(x);
    free(y);
    free(t);
    return 0;
}
