/* test_kernels_gemm.c - el_cpu_matmul with f32/f16/bf16 weights on every kernel variant this
 * CPU runs (portable; AVX2 and AVX-512 on x86-64, picked by CPUID in the library and forced
 * here; NEON on aarch64), on random shapes with ragged edges: n = 1..67 prompt rows (the
 * decode path, the register-tiled GEMM and its token tails), `in` not a multiple of any vector
 * width nor of the GEMM's 1024-input chunks, `out` not a multiple of the 4-row tiles, pools of 1
 * and 2 threads. Each result is checked against a double-precision sum written here (the
 * tolerance of test_kernels_cpu) and against the portable path (twice that); the padding
 * between rows of y must stay untouched; and a token's result does not depend on n: the
 * batch token by token (decode) and in chunks of 5 gives the same bits on every variant (a
 * prompt taken in chunks, and decode, are prefill's numbers). */
// ctest-labels: kernels
// ctest-timeout: 60
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/matmul_f_impl.h"
#include "kernels/fp16.h"
#include "tests/support/el_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_u64(void) { return el_test_xorshift64(&g_rng); }
static float frand(void) { return el_test_frand(&g_rng); }
static size_t urand(size_t lo, size_t hi) { /* [lo, hi] */
    return lo + (size_t)(next_u64() % (hi - lo + 1));
}

/* A kernel variant: the pool's isa, and on x86-64 whether AVX-512 may be used. */
typedef struct variant {
    el_isa isa;
    int no_avx512;
    const char *name;
} variant;

static variant g_var[4];
static int g_n_var;

static double wval(const void *w, el_dtype wt, size_t i) {
    if (wt == EL_DT_F16) return el_fp16_to_fp32(((const uint16_t *)w)[i]);
    if (wt == EL_DT_BF16) return el_bf16_to_fp32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

static int run_case(el_pool *pools, el_dtype wt, size_t n, size_t in, size_t out) {
    const size_t ldy = out + 5, esz = wt == EL_DT_F32 ? 4 : 2;
    float *x = malloc(n * in * 4 + 4), *y = malloc(n * ldy * 4), *yp = malloc(n * ldy * 4);
    float *yc = malloc(n * ldy * 4);
    double *want = malloc(n * out * sizeof(double)), *scale = malloc(n * out * sizeof(double));
    void *w = malloc(in * out * esz + 4);
    EL_CHECK(x && y && yp && yc && want && scale && w);
    for (size_t i = 0; i < in * out; i++) {
        const float v = frand();
        if (wt == EL_DT_F32) ((float *)w)[i] = v;
        else ((uint16_t *)w)[i] = wt == EL_DT_F16 ? el_fp32_to_fp16(v) : el_fp32_to_bf16(v);
    }
    for (size_t i = 0; i < n * in; i++) x[i] = frand();
    for (size_t t = 0; t < n; t++)
        for (size_t r = 0; r < out; r++) {
            double s = 0, a = 0;
            for (size_t i = 0; i < in; i++) {
                const double term = wval(w, wt, r * in + i) * x[t * in + i];
                s += term;
                a += fabs(term);
            }
            want[t * out + r] = s;
            scale[t * out + r] = a;
        }
    int bad = 0;
    for (int v = 0; v < g_n_var; v++)
        for (unsigned th = 0; th < 2; th++) {
            el_pool *p = &pools[v * 2 + th];
            el_mm_no_avx512 = g_var[v].no_avx512;
            float *dst = v == 0 && th == 0 ? yp : y; /* the first run: portable, 1 thread */
            for (size_t i = 0; i < n * ldy; i++) dst[i] = 12345.0f;
            el_cpu_matmul(p, dst, ldy, x, w, wt, n, in, out);
            int b = 0;
            for (size_t t = 0; t < n; t++) {
                for (size_t r = 0; r < out; r++) {
                    const double got = dst[t * ldy + r], tol = 1e-5 * scale[t * out + r] + 1e-6;
                    if (!(fabs(got - want[t * out + r]) <= tol)) b++;
                    else if (!(fabs(got - yp[t * ldy + r]) <= 2 * tol)) b++;
                }
                for (size_t r = out; r < ldy; r++) b += dst[t * ldy + r] != 12345.0f;
            }
            for (size_t chunk = 1; chunk <= 5; chunk += 4) {
                for (size_t t0 = 0; t0 < n; t0 += chunk)
                    el_cpu_matmul(p, yc + t0 * ldy, ldy, x + t0 * in, w, wt,
                                  n - t0 < chunk ? n - t0 : chunk, in, out);
                int c = 0;
                for (size_t t = 0; t < n; t++)
                    for (size_t r = 0; r < out; r++)
                        c += memcmp(&yc[t * ldy + r], &dst[t * ldy + r], sizeof *yc) != 0;
                if (c)
                    fprintf(stderr, "matmul %s %s threads %u n %zu in %zu out %zu: %d differ "
                            "in chunks of %zu\n", el_dtype_name(wt), g_var[v].name, th + 1, n,
                            in, out, c, chunk);
                b += c;
            }
            if (b)
                fprintf(stderr, "matmul %s %s threads %u n %zu in %zu out %zu: %d bad\n",
                        el_dtype_name(wt), g_var[v].name, th + 1, n, in, out, b);
            bad += b;
        }
    el_mm_no_avx512 = 0;
    free(x);
    free(y);
    free(yp);
    free(yc);
    free(want);
    free(scale);
    free(w);
    return bad;
}

int main(void) {
    g_var[g_n_var++] = (variant){EL_ISA_PORTABLE, 0, "portable"};
#if defined(__x86_64__)
    if (el_cpu_isa_best() == EL_ISA_AVX2) {
        g_var[g_n_var++] = (variant){EL_ISA_AVX2, 1, "avx2"};
        if (el_cpu_has_avx512()) g_var[g_n_var++] = (variant){EL_ISA_AVX2, 0, "avx512"};
        else fprintf(stderr, "note: no AVX-512 F/BW/VL on this CPU: that variant is not tested\n");
    }
#elif defined(__aarch64__)
    g_var[g_n_var++] = (variant){EL_ISA_NEON, 0, "neon"};
#endif
    fprintf(stderr, "test_kernels_gemm: variants:");
    for (int v = 0; v < g_n_var; v++) fprintf(stderr, " %s", g_var[v].name);
    fprintf(stderr, "\n");
    el_pool pools[8];
    for (int v = 0; v < g_n_var; v++)
        for (unsigned th = 0; th < 2; th++)
            EL_CHECK_OK(el_pool_init(&pools[v * 2 + th], th + 1, g_var[v].isa));

    static const el_dtype dts[] = {EL_DT_F32, EL_DT_F16, EL_DT_BF16};
    int bad = 0, cases = 0;
    /* every n = 1..67 with random small shapes (tails of every vector loop, 1-row tiles) */
    for (size_t n = 1; n <= 67; n++)
        for (size_t d = 0; d < 3; d++, cases++)
            bad += run_case(pools, dts[d], n, urand(1, 200), urand(1, 23));
    /* longer rows: several 1024-input chunks (the later ones added into y), ragged at the end,
     * and outputs enough to split across threads */
    static const size_t big[][3] = {
        {1, 1100, 37}, {4, 1100, 37}, {7, 1031, 129}, {33, 513, 66}, {67, 1543, 21},
        {2, 2048, 64}, {32, 768, 96}, {5, 0, 9}, {9, 1024, 4}, {16, 2048, 3}, {6, 2500, 13},
    };
    for (size_t c = 0; c < sizeof big / sizeof big[0]; c++)
        for (size_t d = 0; d < 3; d++, cases++)
            bad += run_case(pools, dts[d], big[c][0], big[c][1], big[c][2]);
    fprintf(stderr, "test_kernels_gemm: %d cases x %d variants x 2 pools, %d bad outputs\n", cases,
            g_n_var, bad);
    EL_CHECK(bad == 0);
    for (int v = 0; v < g_n_var * 2; v++) el_pool_deinit(&pools[v]);
    return el_test_finish("test_kernels_gemm");
}
