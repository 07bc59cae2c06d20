/* test_kernels_quant_neon.c - the aarch64 block-type kernels chosen at run time
 * (kernels/cpu/matmul_q_neon.h) and the CPU feature probe behind the choice (platform.h):
 *  - the probe against the CPU model qemu-aarch64 emulates, when QEMU_CPU names one whose
 *    features are known (max: dotprod, i8mm, fp16; cortex-a76: dotprod, fp16; cortex-a53/a57/
 *    a72: none of them), else printed; off aarch64 every answer is false;
 *  - every level this CPU has (neon, dotprod, i8mm), forced through el_qdot_neon_max:
 *    el_cpu_matmul for each block type and n = 1..67 tokens, 19 rows (eight-row passes and a
 *    ragged rest), a pool of 1 thread (and of 2 for n <= 9, 15..17, 31..33, ... 63..67), within the 8-bit activation bound of a
 *    double-precision matmul of the dequantized weights, and bit-identical across levels and
 *    pools (the integer sums are exact, the float operations the same on every path);
 *  - the prompt kernels of each level called directly (eight weight rows x four tokens, and
 *    x one) against the plain NEON one-row kernel: the same bits.
 * Under qemu: QEMU_CPU=max (all levels), cortex-a76 (neon, dotprod), cortex-a53 (neon). */
// ctest-labels: kernels
// ctest-timeout: 120
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quant.h"
#include "kernels/fp16.h"
#include "platform/platform.h"
#include "tests/support/el_test.h"
#if defined(__aarch64__)
#include "kernels/cpu/matmul_q_neon.h"
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the probe --------------------------------------------------------------------------- */

static void test_probe(void) {
    const bool dp = el_cpu_has_dotprod(), mm = el_cpu_has_i8mm(), hp = el_cpu_has_fp16();
    const char *model = getenv("QEMU_CPU");
    fprintf(stderr, "CPU features: dotprod %d, i8mm %d, fp16 %d (QEMU_CPU=%s)\n", dp, mm, hp,
            model ? model : "unset");
#if defined(__aarch64__)
    if (!model) return; /* real hardware, or qemu's default model: printed only */
    static const struct { const char *model; bool dp, mm, hp; } k_models[] = {
        {"max", true, true, true},
        {"cortex-a53", false, false, false},
        {"cortex-a57", false, false, false},
        {"cortex-a72", false, false, false},
        {"cortex-a76", true, false, true},
    };
    for (size_t i = 0; i < sizeof k_models / sizeof k_models[0]; i++)
        if (!strcmp(model, k_models[i].model)) {
            EL_CHECK(dp == k_models[i].dp);
            EL_CHECK(mm == k_models[i].mm);
            EL_CHECK(hp == k_models[i].hp);
        }
#else
    EL_CHECK(!dp && !mm && !hp);
#endif
}

#if defined(__aarch64__)
static const el_dtype k_types[] = {EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0,
                                   EL_DT_Q5_1, EL_DT_Q4_K, EL_DT_Q5_K, EL_DT_Q6_K};
#define N_TYPES (sizeof k_types / sizeof k_types[0])
#define MAX_N 67
#define OUT 19

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) { return (uint32_t)(el_test_xorshift64(&g_rng) >> 32); }
static float frand(void) { return (float)rnd() / 2147483648.0f - 1.0f; } /* [-1, 1) */

/* rows x cols of dt: quantized random floats (the 32-blocks) or random blocks with f16
 * scales small enough to keep the values near [-1, 1] (the K types). */
static uint8_t *random_weights(el_dtype dt, size_t rows, size_t cols, size_t *row_bytes) {
    uint64_t rb = 0;
    EL_CHECK(el_dtype_row_bytes(dt, cols, &rb));
    *row_bytes = (size_t)rb;
    uint8_t *w = malloc(rows * rb);
    if (el_quant_can_quantize(dt)) {
        float *x = malloc(cols * sizeof *x);
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < cols; c++) x[c] = frand() * (float)(1 + (c * 7 + r) % 5);
            el_quantize_row(dt, x, w + r * rb, cols);
        }
        free(x);
        return w;
    }
    for (size_t i = 0; i < rows * rb; i++) w[i] = (uint8_t)rnd();
    const size_t bb = el_dtype_block_bytes(dt);
    for (uint8_t *blk = w; blk < w + rows * rb; blk += bb) {
        const uint16_t d = el_fp32_to_fp16(frand() * (dt == EL_DT_Q6_K ? 0.0005f : 0.004f));
        const uint16_t dmin = el_fp32_to_fp16(frand() * 0.004f);
        memcpy(blk + (dt == EL_DT_Q6_K ? 208 : 0), &d, 2);
        if (dt != EL_DT_Q6_K) memcpy(blk + 2, &dmin, 2);
    }
    return w;
}

/* |y - y_ref| allowed for row w . x: each x value moves by at most half its block's 8-bit
 * step (max |x| / 127) when quantized, and the integer products are exact; plus f32
 * rounding, 1e-5 of sum |w x|. */
static double bound_of(const float *w, const float *x, size_t in, size_t blk) {
    double b = 1e-6;
    for (size_t b0 = 0; b0 < in; b0 += blk) {
        double amax = 0, sw = 0;
        for (size_t i = b0; i < b0 + blk; i++) {
            amax = fmax(amax, fabs(x[i]));
            sw += fabs(w[i]);
            b += 1e-5 * fabs((double)w[i] * x[i]);
        }
        b += amax / 254.0 * sw;
    }
    return b;
}

/* Every level up to the CPU's, both pools, n = 1..MAX_N tokens of one random x: each y
 * checked against the reference once and against the first run bit for bit. */
static void test_levels(el_pool *pools[2], el_qneon_level best) {
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const el_dtype dt = k_types[ti];
        const size_t blk = el_dtype_block(dt);
        const size_t ins[2] = {2 * blk, blk == 32 ? 800 : 1024}; /* 1024: four K blocks */
        for (size_t ii = 0; ii < 2; ii++) {
            const size_t in = ins[ii], ns = ii == 0 ? MAX_N : 9; /* the large in: n = 1..9 */
            size_t rb;
            uint8_t *w = random_weights(dt, OUT, in, &rb);
            float *wd = malloc(OUT * in * sizeof *wd), *x = malloc(ns * in * sizeof *x);
            float *first = malloc(ns * OUT * sizeof *first), *y = malloc(ns * OUT * sizeof *y);
            for (size_t r = 0; r < OUT; r++) el_dequantize_row(dt, w + r * rb, wd + r * in, in);
            for (size_t i = 0; i < ns * in; i++) x[i] = frand() * (i % 9 == 0 ? 4.0f : 1.0f);
            double *ref = malloc(ns * OUT * sizeof *ref), *bound = malloc(ns * OUT * sizeof *bound);
            for (size_t t = 0; t < ns; t++) /* token t's row of y, whatever n */
                for (size_t r = 0; r < OUT; r++) {
                    const float *wr = wd + r * in, *xt = x + t * in;
                    double v = 0;
                    for (size_t i = 0; i < in; i++) v += (double)wr[i] * xt[i];
                    ref[t * OUT + r] = v;
                    bound[t * OUT + r] = bound_of(wr, xt, in, blk);
                }
            int bad = 0, differ = 0;
            for (size_t n = 1; n <= ns; n++) {
                bool have_first = false;
                /* two threads: every n up to 9, around the multiples of 16, the last few */
                const int pools_n = n <= 9 || (n + 1) % 16 <= 2 || n + 4 >= MAX_N ? 2 : 1;
                for (int l = EL_QNEON_BASE; l <= (int)best; l++)
                    for (int k = 0; k < pools_n; k++) {
                        el_qdot_neon_max = (el_qneon_level)l;
                        el_cpu_matmul(pools[k], y, OUT, x, w, dt, n, in, OUT);
                        if (!have_first) {
                            memcpy(first, y, n * OUT * sizeof *y);
                            have_first = true;
                            for (size_t i = 0; i < n * OUT; i++)
                                if (!(fabs(y[i] - ref[i]) <= bound[i]) && !bad++)
                                    fprintf(stderr, "  %s in=%zu n=%zu y[%zu,%zu] = %g, "
                                            "reference %g\n", el_dtype_name(dt), in, n,
                                            i / OUT, i % OUT, y[i], ref[i]);
                        } else if (memcmp(first, y, n * OUT * sizeof *y)) {
                            if (!differ++)
                                fprintf(stderr, "  %s in=%zu n=%zu: level %s, %u threads "
                                        "differs from plain NEON, 1 thread\n",
                                        el_dtype_name(dt), in, n,
                                        el_qneon_level_name((el_qneon_level)l),
                                        pools[k]->n_threads);
                        }
                    }
            }
            el_qdot_neon_max = EL_QNEON_AUTO;
            EL_CHECK(bad == 0);
            EL_CHECK(differ == 0);
            free(w);
            free(wd);
            free(x);
            free(first);
            free(y);
            free(ref);
            free(bound);
        }
    }
}

/* The prompt kernels of every level the CPU has, directly: out[t * 8 + r] of r8t4 and out[r]
 * of r8 equal the plain NEON one-row kernel's, for activation rows built here (random qs,
 * scales and sums). */
static void test_prompt_kernels(el_qneon_level best) {
    enum { NB = 3 };
    typedef qdot_fn (*pick_fn)(el_dtype, qdot_r4_fn *, qdot_r8t4_fn *);
    static const pick_fn k_pick[] = {el_qdot_pick_neon, el_qdot_pick_dotprod, el_qdot_pick_i8mm};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const el_dtype dt = k_types[ti];
        const bool k = el_dtype_block(dt) == 256;
        const size_t ab = k ? sizeof(q8k) : sizeof(q8a), arow = NB * ab + 16;
        size_t rb;
        uint8_t *w = random_weights(dt, 8, NB * el_dtype_block(dt), &rb);
        uint8_t *act = calloc(4, arow);
        for (size_t t = 0; t < 4; t++)
            for (size_t b = 0; b < NB; b++) {
                if (k) {
                    q8k *a = (q8k *)(void *)(act + t * arow) + b;
                    a->d = frand() * 0.01f;
                    for (int g = 0; g < 16; g++) {
                        int s = 0;
                        for (int j = 0; j < 16; j++)
                            s += a->qs[16 * g + j] = (int8_t)((int)(rnd() % 255) - 127);
                        a->bsums[g] = (int16_t)s;
                    }
                } else {
                    q8a *a = (q8a *)(void *)(act + t * arow) + b;
                    a->d = frand() * 0.01f;
                    int s = 0;
                    for (int j = 0; j < 32; j++)
                        s += a->qs[j] = (int8_t)((int)(rnd() % 255) - 127);
                    a->s = a->d * (float)s;
                    a->s16 = el_fp16_to_fp32(el_fp32_to_fp16(a->s));
                }
            }
        qdot_r4_fn r8;
        qdot_r8t4_fn r8t4;
        const qdot_fn x1 = el_qdot_pick_neon(dt, &r8, &r8t4);
        float want[32];
        for (size_t t = 0; t < 4; t++)
            for (size_t r = 0; r < 8; r++) x1(dt, w + r * rb, act + t * arow, 0, NB, &want[t * 8 + r]);
        for (int l = EL_QNEON_BASE; l <= (int)best; l++) {
            float got[32], got1[8];
            const qdot_fn f = k_pick[l - EL_QNEON_BASE](dt, &r8, &r8t4);
            EL_CHECK(f && r8 && r8t4);
            if (!f || !r8 || !r8t4) continue;
            r8t4(w, rb, act, arow, NB, got);
            r8(w, rb, act + 3 * arow, NB, got1);
            EL_CHECK(!memcmp(got1, want + 24, sizeof got1));
            EL_CHECK(!memcmp(got, want, sizeof got));
            for (int i = 0; i < 32; i++)
                if (memcmp(&got[i], &want[i], sizeof got[i])) {
                    fprintf(stderr, "  %s %s r8t4: token %d row %d: %.9g, one-row kernel %.9g\n",
                            el_dtype_name(dt), el_qneon_level_name((el_qneon_level)l), i / 8,
                            i % 8, got[i], want[i]);
                    break;
                }
        }
        free(w);
        free(act);
    }
}
#endif /* __aarch64__ */

int main(void) {
    test_probe();
#if defined(__aarch64__)
    const el_qneon_level best = el_qdot_neon_level();
    fprintf(stderr, "quantized kernels: this CPU runs level %s\n", el_qneon_level_name(best));
    EL_CHECK(best == (el_cpu_has_dotprod() ? el_cpu_has_i8mm() ? EL_QNEON_I8MM
                                                               : EL_QNEON_DOTPROD
                                           : EL_QNEON_BASE));
    for (int l = EL_QNEON_BASE; l <= (int)best; l++) { /* the override caps, never raises */
        el_qdot_neon_max = (el_qneon_level)l;
        EL_CHECK(el_qdot_neon_level() == (el_qneon_level)l);
    }
    el_qdot_neon_max = EL_QNEON_I8MM;
    EL_CHECK(el_qdot_neon_level() == best);
    el_qdot_neon_max = EL_QNEON_AUTO;

    el_pool pools[2];
    el_pool *pp[2] = {&pools[0], &pools[1]};
    EL_CHECK_OK(el_pool_init(&pools[0], 1, EL_ISA_NEON));
    EL_CHECK_OK(el_pool_init(&pools[1], 2, EL_ISA_NEON));
    test_levels(pp, best);
    test_prompt_kernels(best);
    el_pool_deinit(&pools[0]);
    el_pool_deinit(&pools[1]);
#endif
    return el_test_finish("test_kernels_quant_neon");
}
