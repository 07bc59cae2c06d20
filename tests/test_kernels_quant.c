/* test_kernels_quant.c - the GGUF block types on the CPU:
 *  - quantize (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) byte-identical, and dequantize (those and Q4_K,
 *    Q5_K, Q6_K) bit-identical, to gguf-py (fixtures by scripts/fixtures_quant.py);
 *  - el_cpu_matmul with each block type on the portable path and this build's vector path
 *    (AVX2 / NEON), 1 and 3 threads, odd shapes, against a double-precision matmul of the
 *    dequantized weights, within the bound the 8-bit activations allow (see check_matmul);
 *  - prompt batches (the GEMM), n = 1..67, every x86 variant, 1 and 2 threads, against the
 *    reference and against n decode calls (test_gemm);
 *  - the decode pass over several matrices (el_cpu_matvec_q) bit for bit against
 *    el_cpu_matmul_q per matrix and the epilogue's ops (test_matvec);
 *  - the AVX2 activation quantizers (q8a, q8k) byte for byte against the portable ones, on
 *    random blocks and on ties, zeros, a lone value, +-max both present and an infinity;
 *  - decode on weights repacked in 8-row tiles bit for bit against the untiled (test_x8);
 *  - the vector path against the portable one, much tighter; embedding rows; the dtype
 *    table's sizes and its error for rows that are not whole blocks. */
// ctest-labels: kernels
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/matmul_q_impl.h"
#include "kernels/fp16.h"
#include "tests/quant_fixture.h"
#include "tests/support/el_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


static const el_dtype k_types[] = {EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0,
                                   EL_DT_Q5_1, EL_DT_Q4_K, EL_DT_Q5_K, EL_DT_Q6_K};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) { return (uint32_t)(el_test_xorshift64(&g_rng) >> 32); }
static float frand(void) { return (float)rnd() / 2147483648.0f - 1.0f; } /* [-1, 1) */

/* Same float, or both NaN (a NaN's sign and payload depend on the CPU that made it). */
static bool same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return el_f32_bits(a) == el_f32_bits(b);
}

/* ---- fixtures: gguf-py's quantize / dequantize -------------------------------------------- */

static void test_fixture(el_dtype dt) {
    quant_fixture fx;
    if (!quant_fixture_read(dt, &fx)) return;
    const uint32_t rows = fx.rows, cols = fx.cols, has_in = fx.has_input;
    const uint64_t rb = fx.row_bytes;
    const uint8_t *x = fx.input, *q = fx.quant, *deq = fx.deq;
    uint8_t *qb = malloc(rb);
    float *xf = malloc(cols * 4), *yf = malloc(cols * 4);
    int bad_q = 0, bad_d = 0;
    EL_CHECK(el_quant_can_quantize(dt) == (has_in != 0));
    for (uint32_t r = 0; r < rows; r++) {
        if (has_in) {
            memcpy(xf, x + (size_t)r * cols * 4, cols * 4);
            el_quantize_row(dt, xf, qb, cols);
            if (memcmp(qb, q + r * rb, rb)) {
                bad_q++;
                for (size_t b = 0; b < rb; b++)
                    if (qb[b] != q[r * rb + b]) {
                        fprintf(stderr, "  %s row %u byte %zu: got %u, gguf-py %u\n",
                                el_dtype_name(dt), r, b, qb[b], q[r * rb + b]);
                        break;
                    }
            }
        }
        el_dequantize_row(dt, q + r * rb, yf, cols);
        for (uint32_t c = 0; c < cols; c++) {
            float want;
            memcpy(&want, deq + ((size_t)r * cols + c) * 4, 4);
            if (!same_float(yf[c], want)) {
                if (!bad_d)
                    fprintf(stderr, "  %s row %u col %u: dequantized %.9g, gguf-py %.9g\n",
                            el_dtype_name(dt), r, c, yf[c], want);
                bad_d++;
            }
        }
    }
    fprintf(stderr, "%s: %u rows x %u: %d rows quantized differently, %d values dequantized "
            "differently\n", el_dtype_name(dt), rows, cols, bad_q, bad_d);
    EL_CHECK(bad_q == 0);
    EL_CHECK(bad_d == 0);
    free(qb);
    free(xf);
    free(yf);
    free(fx.file);
}

/* ---- matmul --------------------------------------------------------------------------- */

/* rows x cols weights of dt: quantized random floats, or (K types) random blocks whose
 * f16 scales keep the values within about [-1, 1]. */
static uint8_t *make_weights(el_dtype dt, size_t rows, size_t cols, size_t *row_bytes) {
    uint64_t rb = 0;
    el_dtype_row_bytes(dt, cols, &rb);
    *row_bytes = (size_t)rb;
    uint8_t *w = malloc(rows * rb);
    if (el_quant_can_quantize(dt)) {
        float *x = malloc(cols * 4);
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < cols; c++) x[c] = frand() * (1.0f + (float)(c % 7));
            el_quantize_row(dt, x, w + r * rb, cols);
        }
        free(x);
        return w;
    }
    for (size_t i = 0; i < rows * rb; i++) w[i] = (uint8_t)rnd();
    const size_t bb = el_dtype_block_bytes(dt);
    for (size_t b = 0; b < rows * rb / bb; b++) {
        uint8_t *blk = w + b * bb;
        uint16_t d = el_fp32_to_fp16(frand() * (dt == EL_DT_Q6_K ? 0.0005f : 0.004f));
        uint16_t dmin = el_fp32_to_fp16(frand() * 0.004f);
        if (dt == EL_DT_Q6_K) {
            memcpy(blk + 208, &d, 2);
        } else {
            memcpy(blk, &d, 2);
            memcpy(blk + 2, &dmin, 2);
        }
    }
    return w;
}

/* The tolerance: y - y_ref comes from rounding each activation block (32 values, or 256
 * for the K types) to 8 bits with step d_x = max|x| / 127, an error of at most d_x / 2 per
 * value, so |y - y_ref| <= sum over blocks of d_x / 2 * sum |w| (exact integer products
 * after that), plus f32 accumulation: 1e-5 * sum |w x| + 1e-6. */
static double act_bound(const float *wd, const float *x, size_t in, size_t blk) {
    double bound = 0;
    for (size_t b0 = 0; b0 < in; b0 += blk) {
        double amax = 0, sw = 0;
        for (size_t i = b0; i < b0 + blk; i++) {
            if (fabs(x[i]) > amax) amax = fabs(x[i]);
            sw += fabs(wd[i]);
        }
        bound += amax / 127.0 / 2.0 * sw;
    }
    return bound;
}

static double g_worst_ratio[N_TYPES]; /* max |err| / bound seen per type */
static double g_nmse_num[N_TYPES], g_nmse_den[N_TYPES];

static void check_matmul(el_pool *pools[], size_t npools, size_t ti, size_t n, size_t in,
                         size_t out) {
    const el_dtype dt = k_types[ti];
    size_t rb;
    uint8_t *w = make_weights(dt, out, in, &rb);
    float *wd = malloc(out * in * 4), *x = malloc(n * in * 4);
    const size_t ldy = out + 3;
    float *y = malloc(npools * n * ldy * 4);
    for (size_t r = 0; r < out; r++) el_dequantize_row(dt, w + r * rb, wd + r * in, in);
    for (size_t i = 0; i < n * in; i++) x[i] = frand() * (i % 5 == 0 ? 3.0f : 1.0f);
    for (size_t k = 0; k < npools; k++)
        el_cpu_matmul(pools[k], y + k * n * ldy, ldy, x, w, dt, n, in, out);
    int bad = 0, diverge = 0;
    for (size_t t = 0; t < n; t++)
        for (size_t r = 0; r < out; r++) {
            const float *wr = wd + r * in, *xt = x + t * in;
            double ref = 0, mag = 0;
            for (size_t i = 0; i < in; i++) {
                ref += (double)wr[i] * xt[i];
                mag += fabs((double)wr[i] * xt[i]);
            }
            double bound = act_bound(wr, xt, in, el_dtype_block(dt)) + 1e-5 * mag + 1e-6;
            for (size_t k = 0; k < npools; k++) {
                double got = y[k * n * ldy + t * ldy + r], err = fabs(got - ref);
                if (!(err <= bound)) {
                    if (!bad)
                        fprintf(stderr, "  %s n=%zu in=%zu out=%zu pool %zu: y[%zu,%zu] = %g, "
                                "reference %g, bound %g\n", el_dtype_name(dt), n, in, out, k,
                                t, r, got, ref, bound);
                    bad++;
                }
                if (err / bound > g_worst_ratio[ti]) g_worst_ratio[ti] = err / bound;
                g_nmse_num[ti] += err * err;
                g_nmse_den[ti] += ref * ref;
                /* Every pool quantizes x the same way and sums the same integers: only the
                 * f32 summation order may differ. */
                double first = y[t * ldy + r];
                if (!(fabs(got - first) <= 2e-5 * mag + 1e-6)) diverge++;
            }
        }
    EL_CHECK(bad == 0);
    EL_CHECK(diverge == 0);
    if (diverge)
        fprintf(stderr, "  %s n=%zu in=%zu out=%zu: %d outputs differ between paths\n",
                el_dtype_name(dt), n, in, out, diverge);
    free(w);
    free(wd);
    free(x);
    free(y);
}

static void test_matmul(el_pool *pools[], size_t npools) {
    static const size_t outs[] = {1, 5, 7, 13, 33};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const size_t blk = el_dtype_block(k_types[ti]);
        const size_t ins[] = {blk, 3 * blk, blk == 32 ? 800 : 1024};
        for (size_t a = 0; a < sizeof ins / sizeof ins[0]; a++)
            for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++) {
                check_matmul(pools, npools, ti, 1, ins[a], outs[o]);
                check_matmul(pools, npools, ti, 5, ins[a], outs[o]);
            }
        /* Past the stack buffer: token groups (n = 5 at in = 16384) and chunks of in whose
         * partial sums add up (in = 65536). */
        check_matmul(pools, npools, ti, 5, 16384, 6);
        check_matmul(pools, npools, ti, 2, 65536, 3);
    }
}

/* The x86 kernel variants give the same bits: the AVX-512 VNNI variant (where the CPU has
 * it) equals the AVX2 one, for the decode path (eight or four weight rows per pass, n = 1) and
 * for prompt batches (the GEMM). */
static void test_variants(el_pool *p) {
#if defined(__x86_64__)
    const bool vnni = el_cpu_has_avx512vnni();
    fprintf(stderr, "kernel variants on %s: AVX-512 VNNI %s\n", el_isa_name(p->isa),
            vnni ? "present (compared with AVX2)" : "absent");
    int differ = 0;
    for (size_t ti = 0; vnni && ti < N_TYPES; ti++) {
        const el_dtype dt = k_types[ti];
        const size_t in = el_dtype_block(dt) == 32 ? 800 : 1024;
        static const size_t outs[] = {1, 5, 7, 13, 33, 64};
        for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++) {
            const size_t out = outs[o];
            size_t rb;
            uint8_t *w = make_weights(dt, out, in, &rb);
            float *x = malloc(11 * in * 4), *y[4];
            for (size_t i = 0; i < 11 * in; i++) x[i] = frand();
            for (int k = 0; k < 4; k++) y[k] = calloc(11 * out, 4);
            for (int k = 0; k < 2; k++) {
                el_qdot_no_vnni = k;
                el_cpu_matmul(p, y[2 * k], out, x, w, dt, 1, in, out);
                el_cpu_matmul(p, y[2 * k + 1], out, x, w, dt, 11, in, out);
            }
            el_qdot_no_vnni = 0;
            if (memcmp(y[0], y[2], out * 4) || memcmp(y[1], y[3], 11 * out * 4)) differ++;
            for (int k = 0; k < 4; k++) free(y[k]);
            free(x);
            free(w);
        }
    }
    EL_CHECK(differ == 0);
#else
    (void)p;
#endif
}

/* Prompt batches (the register-blocked GEMM where the variant has one) for every n = 1..67 on
 * ragged shapes (out not a multiple of the 8-row tile, tokens not of the token tile), every
 * variant (x86: VNNI and AVX2) and pools of 1 and 2 threads: against the dequantize-then-f64
 * reference within act_bound, and against n single-row (decode) calls of the same variant,
 * bit for bit: a token takes the same operations whatever n (the GEMM's tiles repeat rows and
 * tokens where they run out, they never reorder a sum). */
static void test_gemm(el_isa isa) {
    el_pool pools[2];
    EL_CHECK_OK(el_pool_init(&pools[0], 1, isa));
    EL_CHECK_OK(el_pool_init(&pools[1], 2, isa));
    int variants = 1;
#if defined(__x86_64__)
    if (el_cpu_has_avx512vnni()) variants = 2;
#endif
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const el_dtype dt = k_types[ti];
        const size_t in = el_dtype_block(dt) * (el_dtype_block(dt) == 32 ? 5 : 2), out = 37;
        const size_t nmax = 67, ldy = out + 5;
        size_t rb;
        uint8_t *w = make_weights(dt, out, in, &rb);
        float *wd = malloc(out * in * 4), *x = malloc(nmax * in * 4);
        float *y = malloc(nmax * ldy * 4), *y1 = malloc(nmax * out * 4);
        double *ref = malloc(nmax * out * sizeof *ref), *bound = malloc(nmax * out * sizeof *bound);
        for (size_t r = 0; r < out; r++) el_dequantize_row(dt, w + r * rb, wd + r * in, in);
        for (size_t i = 0; i < nmax * in; i++) x[i] = frand() * (i % 3 == 0 ? 2.0f : 1.0f);
        for (size_t t = 0; t < nmax; t++)
            for (size_t r = 0; r < out; r++) {
                const float *wr = wd + r * in, *xt = x + t * in;
                double s = 0, m = 0;
                for (size_t i = 0; i < in; i++) {
                    s += (double)wr[i] * xt[i];
                    m += fabs((double)wr[i] * xt[i]);
                }
                ref[t * out + r] = s;
                bound[t * out + r] = act_bound(wr, xt, in, el_dtype_block(dt)) + 1e-5 * m + 1e-6;
            }
        int bad = 0, far = 0;
        for (int v = 0; v < variants; v++) {
#if defined(__x86_64__)
            el_qdot_no_vnni = v;
#endif
            for (size_t pi = 0; pi < 2; pi++) {
                for (size_t t = 0; t < nmax; t++) /* decode, one row at a time */
                    el_cpu_matmul(&pools[pi], y1 + t * out, out, x + t * in, w, dt, 1, in, out);
                for (size_t n = 1; n <= nmax; n++) {
                    for (size_t i = 0; i < n * ldy; i++) y[i] = -7.0f; /* never read */
                    el_cpu_matmul(&pools[pi], y, ldy, x, w, dt, n, in, out);
                    for (size_t t = 0; t < n; t++)
                        for (size_t r = 0; r < out; r++) {
                            const size_t i = t * out + r;
                            const double got = y[t * ldy + r];
                            if (!(fabs(got - ref[i]) <= bound[i]) && bad++ == 0)
                                fprintf(stderr, "  %s variant %d pool %zu n=%zu: y[%zu,%zu] = %g, "
                                        "reference %g, bound %g\n", el_dtype_name(dt), v, pi, n,
                                        t, r, got, ref[i], bound[i]);
                            if (!same_float(y[t * ldy + r], y1[i]) && far++ == 0)
                                fprintf(stderr, "  %s variant %d pool %zu n=%zu: y[%zu,%zu] = "
                                        "%.9g, decode %.9g\n", el_dtype_name(dt), v, pi, n, t,
                                        r, got, y1[i]);
                        }
                    for (size_t t = 0; t < n; t++) /* the padding of y stays untouched */
                        for (size_t r = out; r < ldy; r++)
                            if (y[t * ldy + r] != -7.0f) bad++;
                }
            }
        }
#if defined(__x86_64__)
        el_qdot_no_vnni = 0;
#endif
        fprintf(stderr, "  %s batches n = 1..%zu: %d outputs differ from decode's\n",
                el_dtype_name(dt), nmax, far);
        EL_CHECK(bad == 0);
        EL_CHECK(far == 0);
        free(w);
        free(wd);
        free(x);
        free(y);
        free(y1);
        free(ref);
        free(bound);
    }
    el_pool_deinit(&pools[0]);
    el_pool_deinit(&pools[1]);
}

/* ---- embed, dtype table, bad rows ------------------------------------------------------- */

static void test_embed(void) {
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const el_dtype dt = k_types[ti];
        const size_t dim = 2 * el_dtype_block(dt);
        size_t rb;
        uint8_t *w = make_weights(dt, 3, dim, &rb);
        float got[512], want[512];
        el_cpu_embed(got, w, dt, dim, 2);
        el_dequantize_row(dt, w + 2 * rb, want, dim);
        EL_CHECK(!memcmp(got, want, dim * 4));
        free(w);
    }
}

static void test_dtype_table(void) {
    static const struct { el_dtype t; size_t block, bytes; const char *name; } k[] = {
        {EL_DT_Q8_0, 32, 34, "q8_0"}, {EL_DT_Q4_0, 32, 18, "Q4_0"},
        {EL_DT_Q4_1, 32, 20, "q4_1"}, {EL_DT_Q5_0, 32, 22, "q5_0"},
        {EL_DT_Q5_1, 32, 24, "q5_1"}, {EL_DT_Q4_K, 256, 144, "q4_k"},
        {EL_DT_Q5_K, 256, 176, "Q5_K"}, {EL_DT_Q6_K, 256, 210, "q6_k"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        el_dtype p = EL_DT_NONE;
        EL_CHECK_OK(el_dtype_parse(k[i].name, &p));
        EL_CHECK(p == k[i].t);
        EL_CHECK(el_dtype_block(k[i].t) == k[i].block);
        EL_CHECK(el_dtype_block_bytes(k[i].t) == k[i].bytes);
        EL_CHECK(el_dtype_is_block(k[i].t));
        EL_CHECK(el_dtype_size(k[i].t) == 0);
        uint64_t b = 0;
        EL_CHECK(el_dtype_row_bytes(k[i].t, 4 * k[i].block, &b) && b == 4 * k[i].bytes);
        EL_CHECK(!el_dtype_row_bytes(k[i].t, 4 * k[i].block + 16, &b));
        EL_CHECK(!el_dtype_row_bytes(k[i].t, UINT64_MAX / 32 * 32 - 31 * 256 + 0, &b) ||
                 b != 0);
    }
    /* Scalar types keep their sizes. */
    EL_CHECK(el_dtype_size(EL_DT_F32) == 4 && el_dtype_block(EL_DT_F32) == 1);
    EL_CHECK(el_dtype_size(EL_DT_BF16) == 2 && !el_dtype_is_block(EL_DT_BF16));
    EL_CHECK(el_dtype_size(EL_DT_NONE) == 0 && el_dtype_block(EL_DT_NONE) == 0);
    uint64_t b = 0;
    const uint64_t ok_shape[2] = {3, 512}, bad_shape[2] = {512, 100}, huge[2] = {1ull << 62, 256};
    EL_CHECK_OK(el_dtype_tensor_bytes(EL_DT_Q4_K, ok_shape, 2, "w", &b));
    EL_CHECK(b == 3 * 2 * 144);
    EL_CHECK_OK(el_dtype_tensor_bytes(EL_DT_F16, bad_shape, 2, "w", &b));
    EL_CHECK(b == 512 * 100 * 2);
    /* Rows of 100 elements are not whole Q4_0 blocks: the error names tensor and type. */
    EL_CHECK_STATUS(el_dtype_tensor_bytes(EL_DT_Q4_0, bad_shape, 2, "blk.0.attn_q.weight", &b),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "blk.0.attn_q.weight") &&
             strstr(el_last_error(), "Q4_0") && strstr(el_last_error(), "100"));
    EL_CHECK_STATUS(el_dtype_tensor_bytes(EL_DT_Q8_0, huge, 2, "big", &b), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "overflows") != NULL);
    const uint64_t zero[2] = {0, 256};
    EL_CHECK_OK(el_dtype_tensor_bytes(EL_DT_Q6_K, zero, 2, "z", &b));
    EL_CHECK(b == 0);
}

/* ---- decode: several matrices in one pool run ------------------------------------------ */

static void swiglu_act(void *ctx, float *gate, const float *up, size_t n) {
    el_cpu_swiglu(ctx, gate, up, n);
}

/* el_cpu_matvec_q (mixed block types, ragged outs, an f32 and an f16 bias, every epilogue)
 * bit for bit against el_cpu_matmul_q of each part, then the bias, add or SwiGLU. */
static void test_matvec(el_pool *pools[], size_t npools) {
    const size_t in = 512, outs[3] = {37, 13, 150}, omax = 150;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const el_dtype dts[3] = {k_types[ti], k_types[(ti + 5) % N_TYPES], k_types[ti]};
        uint8_t *w[3];
        float x[512], b32[150], y0[3][150], want[3][150], got[3][150];
        uint16_t b16[150];
        size_t rb;
        for (size_t i = 0; i < 3; i++) w[i] = make_weights(dts[i], omax, in, &rb);
        for (size_t i = 0; i < in; i++) x[i] = frand() * (i % 3 == 0 ? 2.0f : 1.0f);
        for (size_t r = 0; r < omax; r++) {
            b32[r] = frand();
            b16[r] = el_fp32_to_fp16(frand());
            for (size_t i = 0; i < 3; i++) y0[i][r] = frand() * 4.0f;
        }
        for (size_t pi = 0; pi < npools; pi++)
            for (int rowwise = 0; rowwise < 2; rowwise++)
                for (int e = EL_QMV_STORE; e <= EL_QMV_GATED; e++) {
                    el_pool *p = pools[pi];
                    const bool gated = e == EL_QMV_GATED;
                    const size_t np = gated ? 2 : 3;
                    el_qmv_part parts[3];
                    for (size_t i = 0; i < np; i++) {
                        const size_t out = gated ? omax : outs[i];
                        parts[i] = (el_qmv_part){got[i], w[i], dts[i], out,
                                                 i == 1 ? (const void *)b32
                                                 : i == 2 ? (const void *)b16 : NULL,
                                                 i == 1 ? EL_DT_F32 : EL_DT_F16, false};
                        float tmp[150];
                        el_cpu_matmul_q(p, tmp, out, x, w[i], dts[i], 1, in, out, rowwise);
                        if (parts[i].b) el_cpu_add_bias(tmp, out, parts[i].b, parts[i].bt, 1, out);
                        for (size_t r = 0; r < out; r++) {
                            want[i][r] = e == EL_QMV_ADD ? y0[i][r] + tmp[r] : tmp[r];
                            got[i][r] = y0[i][r];
                        }
                    }
                    if (gated) el_cpu_swiglu(p, want[0], want[1], omax);
                    EL_CHECK(el_cpu_matvec_q(p, x, in, parts, np, (el_qmv_epi)e,
                                             gated ? swiglu_act : NULL, p, rowwise != 0));
                    size_t bad = 0;
                    for (size_t i = 0; i < np; i++)
                        for (size_t r = 0; r < parts[i].out; r++)
                            bad += !same_float(got[i][r], want[i][r]);
                    if (bad)
                        fprintf(stderr, "matvec %s+%s epilogue %d rowwise %d pool %zu: %zu "
                                "values differ\n", el_dtype_name(dts[0]),
                                el_dtype_name(dts[1]), e, rowwise, pi, bad);
                    EL_CHECK(bad == 0);
                }
        /* what it does not take: a float weight, gated parts of unequal out */
        el_qmv_part f = {got[0], w[0], EL_DT_F32, 8, NULL, EL_DT_F32, false};
        EL_CHECK(!el_cpu_matvec_q(pools[0], x, in, &f, 1, EL_QMV_STORE, NULL, NULL, false));
        el_qmv_part g[2] = {{got[0], w[0], dts[0], 16, NULL, EL_DT_F32, false},
                            {got[1], w[1], dts[0], 8, NULL, EL_DT_F32, false}};
        EL_CHECK(!el_cpu_matvec_q(pools[0], x, in, g, 2, EL_QMV_GATED, NULL, NULL, false));
        for (size_t i = 0; i < 3; i++) free(w[i]);
    }
}

/* el_quantize_act on this build's vector path equals the portable one, byte for byte. */
static void test_quantize_act(el_isa best) {
    if (best == EL_ISA_PORTABLE) return;
    enum { N = 4096 }; /* 128 q8a blocks, 16 q8k blocks */
    static float x[N];
    static uint8_t a[N / 32 * sizeof(q8a)], b[N / 32 * sizeof(q8a)];
    _Static_assert(N / 256 * sizeof(q8k) <= sizeof a, "q8k blocks fit");
    int bad = 0;
    for (int c = 0; c < 14; c++) {
        for (size_t i = 0; i < N; i++) x[i] = frand() * (c < 4 ? 1.0f : 1e-3f * (float)c);
        if (c == 4) /* ties: x * 127 / 127 lands on k + 0.5 */
            for (size_t i = 0; i < N; i++) x[i] = (float)((int)(rnd() % 255) - 127) + 0.5f;
        if (c == 5) memset(x, 0, 256 * sizeof *x);      /* a zero q8k block */
        if (c == 6) memset(x + 512, 0, 32 * sizeof *x); /* a zero q8a block */
        if (c == 7) x[300] = -7.0f, x[301] = 7.0f;       /* -max first, then +max */
        if (c == 8) x[600] = 5.0f, x[777] = -5.0f;       /* +max first */
        if (c == 9) {                                    /* lone values */
            memset(x, 0, 512 * sizeof *x);
            x[3] = -1e-30f, x[300] = 3.0f;
        }
        if (c == 10) x[40] = INFINITY, x[1000] = -INFINITY;
        if (c == 11) x[41] = NAN, x[1001] = -NAN, x[2000] = 1e-40f;
        if (c == 12) /* blocks whose 127 / max overflows (max below 3.7e-37): zeros */
            for (size_t i = 0; i < 512; i++) x[i] *= 1e-36f;
        if (c == 13) /* just above that: multipliers near FLT_MAX */
            for (size_t i = 0; i < 512; i++) x[i] = frand() * 1e-35f;
        for (int k = 0; k < 2; k++) {
            const size_t nb = k ? N / 256 : N / 32, n = nb * (k ? sizeof(q8k) : sizeof(q8a));
            memset(a, 0x5a, sizeof a), memset(b, 0xa5, sizeof b);
            el_quantize_act(EL_ISA_PORTABLE, k, x, a, nb);
            el_quantize_act(best, k, x, b, nb);
            if (memcmp(a, b, n) && bad++ < 4)
                fprintf(stderr, "activation quantizer %s, case %d: differs\n", k ? "q8k" : "q8a", c);
        }
    }
    EL_CHECK(bad == 0);
    if (!bad)
        fprintf(stderr, "   activation quantizers (%s) equal the portable ones\n", el_isa_name(best));
}

/* Weights in 8-row tiles (el_q_x8_repack, el_cpu_matmul_qx, el_cpu_matvec_q's x8 parts,
 * el_q_x8_row): bit for bit the untiled results, for decode and batches (the tile GEMM),
 * rowwise and not, on every pool (portable: each row copied back), each x86 variant, shapes
 * from one block to past the stack scratch (passes over `in`); rows back from the tiles
 * equal the stored ones; the repack back restores every byte. */
static void test_x8(el_pool *pools[], size_t npools) {
    const size_t ins[] = {32, 96, 256, 576, 1536, 65536, 70016}, outs[] = {8, 24, 64};
    const size_t ns[] = {1, 3, 9, 17};
    const el_dtype *dts = k_types;
    size_t tested = 0, fast = 0, fast_dt[N_TYPES] = {0};
    for (size_t di = 0; di < N_TYPES; di++)
        for (size_t ii = 0; ii < sizeof ins / sizeof *ins; ii++)
            for (size_t oi = 0; oi < sizeof outs / sizeof *outs; oi++) {
                const el_dtype dt = dts[di];
                const size_t blk = el_dtype_block(dt), in = ins[ii], out = outs[oi];
                if (in % blk) continue;
                const size_t nb = in / blk, nmax = in > 2000 ? 3 : 17;
                size_t rb;
                uint8_t *w = make_weights(dt, out, in, &rb), *t = malloc(out * rb);
                uint8_t *tmp = malloc(8 * rb), *row = malloc(rb);
                float *x = malloc(nmax * in * 4), *want = malloc(nmax * out * 4);
                float *got = malloc(nmax * out * 4);
                for (size_t i = 0; i < nmax * in; i++) x[i] = frand() * (i % 5 == 0 ? 3.0f : 1.0f);
                memcpy(t, w, out * rb);
                el_q_x8_repack(dt, t, out, nb, tmp, true);
                /* (one whole-block Q6_K block per row is its own tile) */
                EL_CHECK((memcmp(t, w, out * rb) != 0) == (nb > 1 || dt != EL_DT_Q6_K));
                size_t bad = 0;
                for (size_t r = 0; r < out; r++) {
                    el_q_x8_row(dt, t, nb, r, 0, nb, row);
                    bad += memcmp(row, w + r * rb, rb) != 0;
                    if (nb > 2) { /* a piece: blocks 1 .. nb - 2 */
                        el_q_x8_row(dt, t, nb, r, 1, nb - 2, row);
                        bad += memcmp(row, w + r * rb + rb / nb, rb - 2 * rb / nb) != 0;
                    }
                }
                EL_CHECK(bad == 0);
                for (size_t pi = 0; pi < npools; pi++)
                    for (int novnni = 0; novnni < 2; novnni++)
                        for (int rowwise = 0; rowwise < 2; rowwise++)
                            for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
                                el_pool *p = pools[pi];
                                const size_t n = ns[ni];
                                if (n > nmax || (novnni && p->isa == EL_ISA_PORTABLE)) continue;
                                el_qdot_no_vnni = novnni;
                                el_cpu_matmul_q(p, want, out, x, w, dt, n, in, out, rowwise);
                                memset(got, 0xff, n * out * 4);
                                el_cpu_matmul_qx(p, got, out, x, t, dt, n, in, out, rowwise,
                                                 true);
                                bad = 0;
                                for (size_t k = 0; k < n * out; k++)
                                    bad += !same_float(got[k], want[k]);
                                const size_t ab = blk == 256 ? sizeof(q8k) : sizeof(q8a);
                                if (n == 1 && nb * ab <= 32 * 1024) {
                                    el_qmv_part q = {got, t, dt, out, NULL, EL_DT_F32, true};
                                    memset(got, 0xff, out * 4);
                                    EL_CHECK(el_cpu_matvec_q(p, x, in, &q, 1, EL_QMV_STORE, NULL,
                                                             NULL, rowwise));
                                    for (size_t k = 0; k < out; k++)
                                        bad += !same_float(got[k], want[k]);
                                }
                                if (bad)
                                    fprintf(stderr, "x8 %s in %zu out %zu n %zu pool %zu "
                                            "novnni %d rowwise %d: %zu differ\n",
                                            el_dtype_name(dt), in, out, n, pi, novnni, rowwise,
                                            bad);
                                EL_CHECK(bad == 0);
                                tested++;
                                fast += !rowwise && el_q_x8_can(p->isa, dt, out);
                                fast_dt[di] += !rowwise && el_q_x8_can(p->isa, dt, out);
                                el_qdot_no_vnni = 0;
                            }
                el_q_x8_repack(dt, t, out, nb, tmp, false);
                EL_CHECK(!memcmp(t, w, out * rb));
                free(w), free(t), free(tmp), free(row), free(x), free(want), free(got);
            }
    const el_isa best = npools > 1 ? pools[1]->isa : EL_ISA_PORTABLE;
    EL_CHECK(!el_q_x8_can(best, EL_DT_Q4_0, 12) && !el_q_x8_can(best, EL_DT_F16, 8) &&
             !el_q_x8_can(EL_ISA_PORTABLE, EL_DT_Q4_0, 8));
#if defined(__x86_64__)
    if (best == EL_ISA_AVX2) /* every block type on the tile kernels */
        for (size_t di = 0; di < N_TYPES; di++) EL_CHECK(fast_dt[di] > 0);
#endif
    fprintf(stderr, "8-row tiles: %zu cases bit-identical (%zu on the tile kernels)\n", tested,
            fast);
}

int main(void) {
    test_dtype_table();
    for (size_t i = 0; i < N_TYPES; i++) test_fixture(k_types[i]);
    test_embed();

    /* Pools: portable 1 thread first (the others are compared with it), then this build's
     * vector path with 1 and 3 threads, portable with 3. */
    el_pool pools[4];
    el_pool *pp[4];
    size_t np = 0;
    const el_isa best = el_cpu_isa_best();
    const struct { el_isa isa; unsigned nt; } cfg[] = {
        {EL_ISA_PORTABLE, 1}, {best, 1}, {best, 3}, {EL_ISA_PORTABLE, 3}};
    for (size_t i = 0; i < 4; i++) {
        if (i == 3 && best == EL_ISA_PORTABLE) break;
        EL_CHECK_OK(el_pool_init(&pools[np], cfg[i].nt, cfg[i].isa));
        pp[np] = &pools[np];
        np++;
    }
    fprintf(stderr, "matmul on %s (and portable), %zu pools\n", el_isa_name(best), np);
    test_matmul(pp, np);
    if (np > 1) test_variants(pp[1]);
    test_gemm(best);
    test_quantize_act(best);
    test_matvec(pp, np);
    test_x8(pp, np);
    for (size_t ti = 0; ti < N_TYPES; ti++)
        fprintf(stderr, "  %s: worst |error| / bound %.3f, NMSE %.2e\n",
                el_dtype_name(k_types[ti]), g_worst_ratio[ti],
                g_nmse_num[ti] / (g_nmse_den[ti] > 0 ? g_nmse_den[ti] : 1));
    for (size_t i = 0; i < np; i++) el_pool_deinit(&pools[i]);
    return el_test_finish("test_kernels_quant");
}
