/* test_kernels_cuda_quant.c - the K-quant CUDA kernels (kernels/cuda/matmul_k.cu: Q4_K,
 * Q5_K, Q6_K) against dequantize-then-f32 on the CPU, and the dp4a prompt-batch kernel of
 * the 32-block types:
 *  - gguf-py's fixtures (tests/fixtures/quant/q4_k.bin, q5_k.bin, q6_k.bin: blocks and
 *    gguf.quants.dequantize of them, scripts/fixtures_quant.py): el_cuda_embed_k gives
 *    gguf-py's floats bit for bit; el_cuda_matmul_k (f32 x) on those rows, n = 1..9, against a
 *    double-precision matmul of gguf-py's floats, nmse <= 1e-9 (f32 summation alone: ~1e-14);
 *  - random blocks (finite f16 scales) in ragged shapes: out 1, 7, 37 (warps of a block
 *    idle), in 256, 768 (3 super-blocks: Q6_K rows alternate 4- and 2-byte alignment),
 *    2304 (72 runs: lanes take 2 or 3), n = 1..9 (the second pass of 8 rows), x 16-byte
 *    aligned and not; against el_dequantize_row + double matmul, nmse <= 1e-9; embedding
 *    rows (by id, added by id, added from row0) equal to el_dequantize_row's;
 *  - rows that are not whole super-blocks, non-K types, misaligned weights: EL_E_INVALID;
 *  - prompt batches over the 32-block types (kernels/cuda/matmul_dp4a.cu, int8 dot
 *    products) against el_cpu_matmul's 8-bit activation path (test_dp4a), and over the K
 *    types (matmul_k.cu's dp4a kernel, Q8_K activations) likewise, n = 2..67 (test_dp4a_k);
 *  - the 32-block kernels' 16-byte staged loads: the same rows at every even offset mod 16
 *    give bit-identical outputs (test_q32_offsets);
 *  - the gated epilogues (SwiGLU, GeGLU) over every block type, decode and prompt batches:
 *    bit for bit the unfused path's; the norm prologue (RMS, LayerNorm) against the norm
 *    kernel first (test_glu);
 *  - the q|k|v epilogue (RoPE and the KV cache stores in the launch) over every block type,
 *    decode and prompt batches: bit for bit the separate launches' (test_qkv).
 * Needs a CUDA build and a GPU, or the cudasim build (-DEL_CUDA_SIM=ON); skips (77) otherwise. */
// ctest-labels: cuda;kernels
// ctest-timeout: 120
#include "tests/quant_fixture.h"
#include "tests/support/el_test.h"
#include "tests/support/el_test_cuda.h"
#include "tests/support/el_test_qkv.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quant.h"
#include "kernels/fp16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef EL_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"

#include <cuda_runtime_api.h>

#define NMSE_MAX 1e-9
#define NMAX 9

static const el_dtype k_types[] = {EL_DT_Q4_K, EL_DT_Q5_K, EL_DT_Q6_K};

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) { return (uint32_t)(el_test_xorshift64(&g_rng) >> 32); }
static float frand(void) { return el_test_frand(&g_rng); }

/* y = W x in double from the dequantized weights wd [out, in], n rows of x. */
static void ref_matmul(float *y, const float *wd, const float *x, size_t n, size_t in,
                       size_t out) {
    for (size_t t = 0; t < n; t++)
        for (size_t r = 0; r < out; r++) {
            double acc = 0;
            for (size_t i = 0; i < in; i++) acc += (double)wd[r * in + i] * x[t * in + i];
            y[t * out + r] = (float)acc;
        }
}

/* el_cuda_matmul_k (f32 activations) on the blocks wq (device) for n = 1..NMAX against
 * ref_matmul on wd, and el_cuda_matmul at n = 1 (decode) bit-identical to it; x at
 * a 16-byte boundary (float4 loads) or 4 bytes past one (scalar loads). Returns the worst
 * nmse. */
static double check_matmul(el_dtype dt, const void *dwq, const float *wd, size_t in,
                           size_t out, bool x_aligned) {
    float *x = malloc(NMAX * in * 4), *ref = malloc(NMAX * out * 4), *got = malloc(NMAX * out * 4);
    float *dx = el_test_dev_copy(NULL, (NMAX * in + 4) * 4);
    float *dy = el_test_dev_copy(NULL, NMAX * out * 4);
    double worst = 0;
    for (size_t n = 1; n <= NMAX; n++) {
        for (size_t i = 0; i < n * in; i++) x[i] = frand();
        ref_matmul(ref, wd, x, n, in, out);
        float *xs = x_aligned ? dx : dx + 1;
        cudaMemcpy(xs, x, n * in * 4, cudaMemcpyHostToDevice);
        EL_CHECK_OK(el_cuda_matmul_k(dy, out, xs, dwq, dt, n, in, out, NULL));
        el_test_host_copy(got, dy, n * out * 4);
        if (n == 1) { /* el_cuda_matmul's decode is the same kernel */
            float *g1 = malloc(out * 4);
            EL_CHECK_OK(el_cuda_matmul(dy, out, xs, dwq, dt, 1, in, out, NULL));
            el_test_host_copy(g1, dy, out * 4);
            EL_CHECK(!memcmp(g1, got, out * 4));
            free(g1);
        }
        const double e = el_test_nmse(got, ref, n * out);
        if (!(e <= NMSE_MAX))
            fprintf(stderr, "matmul %s in %zu out %zu n %zu: nmse %.3g\n", el_dtype_name(dt), in,
                    out, n, e);
        EL_CHECK(e <= NMSE_MAX);
        if (e > worst) worst = e;
    }
    cudaFree(dx), cudaFree(dy);
    free(x), free(ref), free(got);
    return worst;
}

/* gguf-py's dequantization of its K fixtures: embedding bit for bit, matmul by nmse. */
static void test_fixture(el_dtype dt) {
    quant_fixture fx;
    if (!quant_fixture_read(dt, &fx)) return;
    EL_CHECK(!fx.has_input); /* gguf-py has no K quantizer: blocks only */
    if (fx.has_input) {
        free(fx.file);
        return;
    }
    const size_t rows = fx.rows, cols = fx.cols;
    const uint64_t rb = fx.row_bytes;
    const uint8_t *q = fx.quant;
    float *deq = malloc(rows * cols * 4), *got = malloc(rows * cols * 4);
    memcpy(deq, fx.deq, rows * cols * 4);
    void *dw = el_test_dev_copy(q, rows * rb);
    int32_t *ids = malloc(rows * sizeof *ids);
    for (size_t r = 0; r < rows; r++) ids[r] = (int32_t)(rows - 1 - r);
    int32_t *dids = el_test_dev_copy(ids, rows * sizeof *ids);
    float *de = el_test_dev_copy(NULL, rows * cols * 4);
    EL_CHECK_OK(el_cuda_embed_k(de, dw, dt, cols, dids, 0, rows, false, NULL));
    el_test_host_copy(got, de, rows * cols * 4);
    size_t bad = 0;
    for (size_t r = 0; r < rows; r++)
        bad += memcmp(got + r * cols, deq + (rows - 1 - r) * cols, cols * 4) != 0;
    EL_CHECK(bad == 0);
    const double e = check_matmul(dt, dw, deq, cols, rows, true);
    printf("  %s fixture (%zu x %zu, gguf-py): embed %zu of %zu rows bit-identical, matmul "
           "n=1..%d worst nmse %.3g\n", el_dtype_name(dt), rows, cols, rows - bad, rows, NMAX, e);
    cudaFree(dw), cudaFree(dids), cudaFree(de);
    free(fx.file), free(deq), free(got), free(ids);
}

/* Random bytes with finite f16 scales (as test_kernels_quant's K blocks). */
static void random_blocks(el_dtype dt, uint8_t *w, size_t bytes) {
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd();
    const size_t bb = el_dtype_block_bytes(dt);
    for (size_t b = 0; b < bytes / bb; b++) {
        uint8_t *blk = w + b * bb;
        const uint16_t d = el_fp32_to_fp16(frand() * (dt == EL_DT_Q6_K ? 0.0005f : 0.004f));
        const uint16_t dmin = el_fp32_to_fp16(frand() * 0.004f);
        memcpy(blk + (dt == EL_DT_Q6_K ? 208 : 0), &d, 2);
        if (dt != EL_DT_Q6_K) memcpy(blk + 2, &dmin, 2);
    }
}

/* rows of in values of dt at wq (row bytes rb each): random K blocks, or random values
 * quantized (the 32-blocks); wd [rows, in] their dequantized values. */
static void random_rows(el_dtype dt, uint8_t *wq, float *wd, size_t rows, size_t in) {
    const bool kq = dt == EL_DT_Q4_K || dt == EL_DT_Q5_K || dt == EL_DT_Q6_K;
    const size_t rb = in / (kq ? 256 : 32) * el_dtype_block_bytes(dt);
    if (kq) {
        random_blocks(dt, wq, rows * rb);
    } else {
        for (size_t i = 0; i < rows * in; i++) wd[i] = frand();
        for (size_t r = 0; r < rows; r++) el_quantize_row(dt, wd + r * in, wq + r * rb, in);
    }
    for (size_t r = 0; r < rows; r++) el_dequantize_row(dt, wq + r * rb, wd + r * in, in);
}

static void test_random(el_dtype dt) {
    static const size_t ins[] = {256, 768, 2304}, outs[] = {1, 7, 37};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            const size_t in = ins[a], out = outs[b];
            const size_t rb = in / 256 * el_dtype_block_bytes(dt);
            uint8_t *wq = malloc(out * rb);
            float *wd = malloc(out * in * 4);
            random_blocks(dt, wq, out * rb);
            for (size_t r = 0; r < out; r++) el_dequantize_row(dt, wq + r * rb, wd + r * in, in);
            void *dw = el_test_dev_copy(wq, out * rb);
            const double e1 = check_matmul(dt, dw, wd, in, out, true);
            const double e2 = check_matmul(dt, dw, wd, in, out, false);
            /* embedding: rows by id, then + rows by id, then + rows row0.. (3 rows each) */
            enum { NE = 3 };
            const int32_t ids[NE] = {(int32_t)(out - 1), 0, (int32_t)(out / 2)};
            const size_t row0 = out >= NE ? out - NE : 0, ne = out >= NE ? NE : out;
            float *want = malloc(NE * in * 4), *got = malloc(NE * in * 4);
            int32_t *dids = el_test_dev_copy(ids, sizeof ids);
            float *de = el_test_dev_copy(NULL, NE * in * 4);
            EL_CHECK_OK(el_cuda_embed_k(de, dw, dt, in, dids, 0, NE, false, NULL));
            el_test_host_copy(got, de, NE * in * 4);
            for (int t = 0; t < NE; t++) memcpy(want + t * in, wd + (size_t)ids[t] * in, in * 4);
            EL_CHECK(!memcmp(got, want, NE * in * 4));
            EL_CHECK_OK(el_cuda_embed_k(de, dw, dt, in, dids, 0, NE, true, NULL));
            EL_CHECK_OK(el_cuda_embed_k(de, dw, dt, in, NULL, row0, ne, true, NULL));
            el_test_host_copy(got, de, NE * in * 4);
            for (size_t t = 0; t < NE; t++)
                for (size_t i = 0; i < in; i++) {
                    float v = want[t * in + i] + wd[(size_t)ids[t] * in + i];
                    if (t < ne) v += wd[(row0 + t) * in + i];
                    want[t * in + i] = v;
                }
            EL_CHECK(!memcmp(got, want, NE * in * 4));
            printf("  %s random %zu x %zu: matmul n=1..%d worst nmse %.3g (x aligned) %.3g "
                   "(x at +4 bytes), embed exact\n", el_dtype_name(dt), out, in, NMAX, e1, e2);
            cudaFree(dw), cudaFree(dids), cudaFree(de);
            free(wq), free(wd), free(want), free(got);
        }
}

/* Prompt batches over the 32-block types (el_cuda_matmul with n >= 2: the dp4a kernel)
 * against el_cpu_matmul (portable ISA: the same 8-bit activations, scales and integer dots)
 * by nmse <= 1e-9, and against f32 math on the dequantized weights within the activations'
 * rounding (nmse <= 1e-3). in = 32, 320, 1056 (33 blocks: a second, ragged chunk of 32),
 * out 1, 7, 37, n = 2..9 and 17 (three passes of 8 rows). */
static void test_dp4a(el_pool *p) {
    static const el_dtype types[] = {EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0, EL_DT_Q5_1};
    static const size_t ins[] = {32, 320, 1056}, outs[] = {1, 7, 37}, ns[] = {2, 3, 5, 8, 9, 17};
    enum { NN = 17 };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 3; b++) {
                const el_dtype dt = types[ti];
                const size_t in = ins[a], out = outs[b], rb = in / 32 * el_dtype_block_bytes(dt);
                float *wf = malloc(out * in * 4), *wd = malloc(out * in * 4);
                float *x = malloc(NN * in * 4), *cpu = malloc(NN * out * 4);
                float *ref = malloc(NN * out * 4), *got = malloc(NN * out * 4);
                uint8_t *wq = malloc(out * rb);
                for (size_t i = 0; i < out * in; i++) wf[i] = frand();
                for (size_t r = 0; r < out; r++) {
                    el_quantize_row(dt, wf + r * in, wq + r * rb, in);
                    el_dequantize_row(dt, wq + r * rb, wd + r * in, in);
                }
                void *dw = el_test_dev_copy(wq, out * rb);
                float *dx = el_test_dev_copy(NULL, NN * in * 4);
                float *dy = el_test_dev_copy(NULL, NN * out * 4);
                double worst = 0, worst_f32 = 0;
                for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                    const size_t n = ns[k];
                    for (size_t i = 0; i < n * in; i++) x[i] = frand() * (1.0f + (float)(i % 5));
                    el_cpu_matmul(p, cpu, out, x, wq, dt, n, in, out);
                    ref_matmul(ref, wd, x, n, in, out);
                    cudaMemcpy(dx, x, n * in * 4, cudaMemcpyHostToDevice);
                    EL_CHECK_OK(el_cuda_matmul(dy, out, dx, dw, dt, n, in, out, NULL));
                    el_test_host_copy(got, dy, n * out * 4);
                    const double e = el_test_nmse(got, cpu, n * out);
                    const double ef = el_test_nmse(got, ref, n * out);
                    if (!(e <= NMSE_MAX && ef <= 1e-3))
                        fprintf(stderr, "dp4a %s %zu x %zu n %zu: nmse %.3g vs CPU, %.3g vs f32\n",
                                el_dtype_name(dt), out, in, n, e, ef);
                    EL_CHECK(e <= NMSE_MAX && ef <= 1e-3);
                    if (e > worst) worst = e;
                    if (ef > worst_f32) worst_f32 = ef;
                }
                if (b == 2)
                    printf("  dp4a %s %zu x %zu: n=2..17 worst nmse %.3g vs el_cpu_matmul, %.3g vs "
                           "f32 on the dequantized weights\n", el_dtype_name(dt), out, in, worst,
                           worst_f32);
                cudaFree(dw), cudaFree(dx), cudaFree(dy);
                free(wf), free(wd), free(x), free(cpu), free(ref), free(got), free(wq);
            }
}

/* Prompt batches over the K types (el_cuda_matmul with n >= 2: matmul_k.cu's dp4a kernel,
 * x quantized per 256 values as the CPU's Q8_K) against el_cpu_matmul (portable ISA: the same
 * 8-bit activations, integer sums and f32 operations per super-block; only the order of the
 * super-blocks' f32 sums differs) by nmse <= 1e-9, and against f32 math on the dequantized
 * weights within the activations' rounding: Q8_K moves each x by at most d / 2 (d = max |x|
 * / 127 of its 256), so |y - y_ref| <= sum_i |w_i| d(i) / 2, plus 1e-5 of sum |w x| for the
 * f32 sums (k_bound; docs/QUANT.md "Tolerance"). Random blocks (finite scales); in 256, 768,
 * 2304 (72 runs: a ragged third chunk of 8), out 1, 7, 37 (idle warps),
 * n = 2..67 (every size: ragged passes of 8 rows) at 768 x 37, a sample of n elsewhere (and
 * there too under the sanitizers); x 16-byte aligned and not. */
/* The bound above for weight row w and x row x of in values (in a multiple of 256). */
static double k_bound(const float *w, const float *x, size_t in) {
    double b = 0, wx = 0;
    for (size_t s0 = 0; s0 < in; s0 += 256) {
        double amax = 0, sw = 0;
        for (size_t i = s0; i < s0 + 256; i++) {
            if (fabs(x[i]) > amax) amax = fabs(x[i]);
            sw += fabs(w[i]);
            wx += fabs((double)w[i] * x[i]);
        }
        b += sw * amax / 127 / 2;
    }
    return b + 1e-5 * wx;
}
#ifdef EL_SANITIZED /* 10-20x slower: the sample of n everywhere */
#define KQ_EVERY_N false
#else
#define KQ_EVERY_N true
#endif
static void test_dp4a_k(el_pool *p, el_dtype dt) {
    static const size_t ins[] = {256, 768, 2304}, outs[] = {1, 7, 37};
    static const size_t few[] = {2, 3, 8, 9, 17, 67};
    enum { NN = 67 };
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            const size_t in = ins[a], out = outs[b];
            const size_t rb = in / 256 * el_dtype_block_bytes(dt);
            const bool every = KQ_EVERY_N && in == 768 && out == 37;
            uint8_t *wq = malloc(out * rb);
            float *wd = malloc(out * in * 4), *x = malloc(NN * in * 4);
            float *cpu = malloc(NN * out * 4), *ref = malloc(NN * out * 4);
            float *got = malloc(NN * out * 4);
            random_blocks(dt, wq, out * rb);
            for (size_t r = 0; r < out; r++) el_dequantize_row(dt, wq + r * rb, wd + r * in, in);
            void *dw = el_test_dev_copy(wq, out * rb);
            float *dx = el_test_dev_copy(NULL, (NN * in + 4) * 4);
            float *dy = el_test_dev_copy(NULL, NN * out * 4);
            double worst = 0, worst_f32 = 0;
            const size_t count = every ? NN - 1 : sizeof few / sizeof few[0];
            for (size_t k = 0; k < count; k++) {
                const size_t n = every ? k + 2 : few[k];
                for (size_t i = 0; i < n * in; i++) x[i] = frand() * (1.0f + (float)(i % 7));
                el_cpu_matmul(p, cpu, out, x, wq, dt, n, in, out);
                ref_matmul(ref, wd, x, n, in, out);
                float *xs = k % 2 ? dx + 1 : dx; /* x at +4 bytes every other n */
                cudaMemcpy(xs, x, n * in * 4, cudaMemcpyHostToDevice);
                EL_CHECK_OK(el_cuda_matmul(dy, out, xs, dw, dt, n, in, out, NULL));
                el_test_host_copy(got, dy, n * out * 4);
                const double e = el_test_nmse(got, cpu, n * out);
                double ratio = 0; /* worst |error| / bound against f32 */
                for (size_t t = 0; t < n; t++)
                    for (size_t r = 0; r < out; r++) {
                        const double q = fabs((double)got[t * out + r] - ref[t * out + r]) /
                                         k_bound(wd + r * in, x + t * in, in);
                        if (q > ratio) ratio = q;
                    }
                if (!(e <= NMSE_MAX && ratio <= 1))
                    fprintf(stderr, "dp4a %s %zu x %zu n %zu: nmse %.3g vs CPU, error / bound "
                            "%.3g vs f32\n", el_dtype_name(dt), out, in, n, e, ratio);
                EL_CHECK(e <= NMSE_MAX && ratio <= 1);
                if (e > worst) worst = e;
                if (ratio > worst_f32) worst_f32 = ratio;
            }
            printf("  dp4a %s %zu x %zu: n=%s worst nmse %.3g vs el_cpu_matmul; vs f32 on the "
                   "dequantized weights worst error / bound %.3g\n", el_dtype_name(dt), out,
                   in, every ? "2..67" : "2,3,8,9,17,67", worst, worst_f32);
            cudaFree(dw), cudaFree(dx), cudaFree(dy);
            free(wq), free(wd), free(x), free(cpu), free(ref), free(got);
        }
}

/* The 32-block weights reach the kernels by 16-byte loads of the aligned chunks that hold a
 * warp's 32 blocks (mm_stage16: whatever the rows' offset mod 16). The same rows placed at
 * every even offset 0..14 past a 16-byte boundary (the tensor's end also moves within its
 * chunk) give bit-identical outputs, for decode (n = 1, f32 activations: against a double
 * matmul of the dequantized rows, nmse <= 1e-9) and prompt batches (n = 5, dp4a: against
 * el_cpu_matmul, nmse <= 1e-9); in 32 (one block, rows 2 mod 16 apart for Q8_0), 320 and
 * 1056 (33 blocks: a second stage of one block), out 7 and 37. */
static void test_q32_offsets(el_pool *p) {
    static const el_dtype types[] = {EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0, EL_DT_Q5_1};
    static const size_t ins[] = {32, 320, 1056}, outs[] = {7, 37}, ns[] = {1, 5};
    enum { NN = 5 };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 2; b++) {
                const el_dtype dt = types[ti];
                const size_t in = ins[a], out = outs[b], rb = in / 32 * el_dtype_block_bytes(dt);
                float *wf = malloc(out * in * 4), *wd = malloc(out * in * 4);
                float *x = malloc(NN * in * 4), *want = malloc(NN * out * 4);
                float *first = malloc(NN * out * 4), *got = malloc(NN * out * 4);
                uint8_t *wq = malloc(out * rb);
                for (size_t i = 0; i < out * in; i++) wf[i] = frand();
                for (size_t r = 0; r < out; r++) {
                    el_quantize_row(dt, wf + r * in, wq + r * rb, in);
                    el_dequantize_row(dt, wq + r * rb, wd + r * in, in);
                }
                for (size_t i = 0; i < NN * in; i++) x[i] = frand();
                uint8_t *dw = el_test_dev_copy(NULL, out * rb + 16);
                float *dx = el_test_dev_copy(x, NN * in * 4);
                float *dy = el_test_dev_copy(NULL, NN * out * 4);
                double worst = 0;
                size_t same = 0, runs = 0;
                for (size_t k = 0; k < 2; k++) {
                    const size_t n = ns[k];
                    if (n == 1) ref_matmul(want, wd, x, 1, in, out);
                    else el_cpu_matmul(p, want, out, x, wq, dt, n, in, out);
                    for (size_t off = 0; off < 16; off += 2) {
                        cudaMemcpy(dw + off, wq, out * rb, cudaMemcpyHostToDevice);
                        EL_CHECK_OK(el_cuda_matmul(dy, out, dx, dw + off, dt, n, in, out, NULL));
                        el_test_host_copy(got, dy, n * out * 4);
                        const double e = el_test_nmse(got, want, n * out);
                        if (!(e <= NMSE_MAX))
                            fprintf(stderr, "q32 %s %zu x %zu n %zu at +%zu: nmse %.3g\n",
                                    el_dtype_name(dt), out, in, n, off, e);
                        EL_CHECK(e <= NMSE_MAX);
                        if (e > worst) worst = e;
                        if (off == 0) memcpy(first, got, n * out * 4);
                        same += !memcmp(first, got, n * out * 4);
                        runs++;
                    }
                }
                EL_CHECK(same == runs);
                if (a == 2 && b == 1)
                    printf("  q32 loads %s %zu x %zu: weights at +0..14 bytes, n = 1 and 5: %zu of "
                           "%zu outputs bit-identical to +0's, worst nmse %.3g\n",
                           el_dtype_name(dt), out, in, same, runs, worst);
                cudaFree(dw), cudaFree(dx), cudaFree(dy);
                free(wf), free(wd), free(x), free(want), free(first), free(got), free(wq);
            }
}

/* Gated FFNs (EL_CUDA_EPI_SWIGLU / GEGLU) over every block type: gate and up in one launch,
 * act(gate) * up stored into the gate's y (row stride out + 3), equal bit for bit (memcmp)
 * to the unfused path (both linears in one EL_CUDA_EPI_STORE launch, then el_cuda_swiglu, or
 * el_cuda_gelu_tanh then el_cuda_mul), at decode (n = 1: f32 activations) and in prompt
 * batches (n = 5, 9: the dp4a kernels, a second pass of 8 rows at 9); biases of f32 (gate)
 * and f16 (up); the up part's y is not written. With a norm in the prologue (RMSNorm scaled
 * by 1 + w, LayerNorm with a bias; f16 weights) against the norm kernel first, then the
 * unfused path: nmse <= NORM_TOL (the statistics' sums run in another order: the 8-bit
 * activations of a prompt batch may round differently). All within nmse F32_TOL of f32 math on
 * the dequantized weights. in: 64 and 1056 (33 blocks: a second, ragged stage) for the
 * 32-blocks, 256 and 768 for the K types (under the sanitizers: 64 and 256); out 7 and 37. */
#ifdef EL_SANITIZED /* 10-20x slower: the smaller in only */
#define GLU_INS 1
#else
#define GLU_INS 2
#endif
#define NORM_TOL 1e-9
#define F32_TOL 5e-3 /* the prompt batches' 8-bit activations, through the activations */
static void test_glu(el_pool *p) {
    static const el_dtype types[] = {EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0,
                                     EL_DT_Q5_1, EL_DT_Q4_K, EL_DT_Q5_K, EL_DT_Q6_K};
    static const size_t ns[] = {1, 5, 9}, outs[] = {7, 37};
    enum { NN = 9 };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        double worst = 0, worst_norm = 0;
        size_t same = 0, runs = 0;
        for (size_t a = 0; a < GLU_INS; a++)
            for (size_t b = 0; b < 2; b++) {
                const el_dtype dt = types[ti];
                const bool kq = dt == EL_DT_Q4_K || dt == EL_DT_Q5_K || dt == EL_DT_Q6_K;
                const size_t in = kq ? (a ? 768 : 256) : (a ? 1056 : 64), out = outs[b];
                const size_t rb = in / (kq ? 256 : 32) * el_dtype_block_bytes(dt), ld = out + 3;
                uint8_t *wq = malloc(2 * out * rb); /* gate rows, then up rows */
                float *wd = malloc(2 * out * in * 4), *x = malloc(NN * in * 4);
                float *xn = malloc(NN * in * 4), *bg = malloc(out * 4);
                float *want = malloc(NN * out * 4), *got = malloc(NN * ld * 4);
                float *sep = malloc(NN * out * 4), *up = malloc(NN * out * 4);
                float *fused = malloc(NN * out * 4);
                uint16_t *bu = malloc(out * 2), *nw = malloc(in * 2), *nb = malloc(in * 2);
                random_rows(dt, wq, wd, 2 * out, in);
                for (size_t r = 0; r < out; r++) {
                    bg[r] = frand() * 0.5f;
                    bu[r] = el_fp32_to_fp16(frand() * 0.5f);
                }
                for (size_t i = 0; i < in; i++) {
                    nw[i] = el_fp32_to_fp16(frand() * 0.5f);
                    nb[i] = el_fp32_to_fp16(frand() * 0.2f);
                }
                for (size_t i = 0; i < NN * in; i++) x[i] = frand() * (1.0f + (float)(i % 5));
                uint8_t *dw = el_test_dev_copy(wq, 2 * out * rb);
                float *dx = el_test_dev_copy(x, NN * in * 4);
                float *dxn = el_test_dev_copy(NULL, NN * in * 4);
                float *dy = el_test_dev_copy(NULL, NN * ld * 4);
                float *du = el_test_dev_copy(NULL, NN * out * 4);
                float *dg = el_test_dev_copy(NULL, NN * out * 4);
                void *dbg = el_test_dev_copy(bg, out * 4), *dbu = el_test_dev_copy(bu, out * 2);
                void *dnw = el_test_dev_copy(nw, in * 2), *dnb = el_test_dev_copy(nb, in * 2);
                for (size_t kn = 0; kn < sizeof ns / sizeof ns[0]; kn++)
                    for (int c = 0; c < 6; c++) {
                        const size_t n = ns[kn];
                        const int glu = c % 2, norm = c / 2; /* none, RMS (1 + w), LayerNorm */
                        const el_cuda_prenorm pn = {norm == 2 ? EL_CUDA_NORM_LAYER
                                                              : EL_CUDA_NORM_RMS,
                                                    dnw, norm == 2 ? dnb : NULL, EL_DT_F16,
                                                    1e-5f, norm == 1 ? 1.0f : 0.0f};
                        const el_cuda_part parts[2] = {{dy, ld, dw, dbg, EL_DT_F32, out},
                                                       {du, out, dw + out * rb, dbu, EL_DT_F16,
                                                        out}};
                        cudaMemset(dy, 0, NN * ld * 4);
                        cudaMemset(du, 0xff, NN * out * 4); /* NaNs: must stay */
                        EL_CHECK_OK(el_cuda_linear_parts(parts, 2, dx, dt, n, in,
                                                         glu ? EL_CUDA_EPI_GEGLU
                                                             : EL_CUDA_EPI_SWIGLU,
                                                         norm ? &pn : NULL, NULL));
                        el_test_host_copy(got, dy, n * ld * 4);
                        el_test_host_copy(up, du, n * out * 4);
                        size_t kept = 0;
                        for (size_t i = 0; i < n * out; i++) kept += isnan(up[i]) != 0;
                        EL_CHECK(kept == n * out);
                        for (size_t t = 0; t < n; t++)
                            memcpy(fused + t * out, got + t * ld, out * 4);
                        /* Unfused: the norm kernel, both linears in one launch, the act. */
                        const float *xin = dx;
                        if (norm == 1)
                            EL_CHECK_OK(el_cuda_rmsnorm_off(dxn, dx, dnw, EL_DT_F16, n, in,
                                                            1e-5f, 1.0f, NULL));
                        if (norm == 2)
                            EL_CHECK_OK(el_cuda_layernorm(dxn, dx, dnw, dnb, EL_DT_F16, n, in,
                                                          1e-5f, NULL));
                        if (norm) xin = dxn;
                        const el_cuda_part sp[2] = {{dg, out, dw, dbg, EL_DT_F32, out},
                                                    parts[1]};
                        EL_CHECK_OK(el_cuda_linear_parts(sp, 2, xin, dt, n, in,
                                                         EL_CUDA_EPI_STORE, NULL, NULL));
                        if (glu) {
                            EL_CHECK_OK(el_cuda_gelu_tanh(dg, n * out, NULL));
                            EL_CHECK_OK(el_cuda_mul(dg, du, n * out, NULL));
                        } else {
                            EL_CHECK_OK(el_cuda_swiglu(dg, du, n * out, NULL));
                        }
                        el_test_host_copy(sep, dg, n * out * 4);
                        const bool eq = !memcmp(sep, fused, n * out * 4);
                        const double en = el_test_nmse(fused, sep, n * out);
                        if (!norm) {
                            EL_CHECK(eq);
                            same += eq;
                            runs++;
                        } else {
                            EL_CHECK(en <= NORM_TOL);
                            if (en > worst_norm) worst_norm = en;
                        }
                        /* f32 math on the dequantized weights, in double */
                        if (norm == 1)
                            el_cpu_rmsnorm_off(p, xn, x, nw, EL_DT_F16, n, in, 1e-5f, 1.0f);
                        if (norm == 2)
                            el_cpu_layernorm(p, xn, x, nw, nb, EL_DT_F16, n, in, 1e-5f);
                        const float *xh = norm ? xn : x;
                        for (size_t t = 0; t < n; t++)
                            for (size_t r = 0; r < out; r++) {
                                double g = bg[r], u = el_fp16_to_fp32(bu[r]);
                                for (size_t i = 0; i < in; i++) {
                                    g += (double)wd[r * in + i] * xh[t * in + i];
                                    u += (double)wd[(out + r) * in + i] * xh[t * in + i];
                                }
                                const double act =
                                    glu ? 0.5 * g * (1 + tanh(0.7978845608028654 *
                                                              (g + 0.044715 * g * g * g)))
                                        : g / (1 + exp(-g));
                                want[t * out + r] = (float)(act * u);
                            }
                        const double e = el_test_nmse(fused, want, n * out);
                        if (!((eq || norm) && en <= NORM_TOL && e <= F32_TOL))
                            fprintf(stderr, "glu %s %zu x %zu n %zu %s norm %d: %s unfused "
                                    "(nmse %.3g), nmse %.3g vs f32\n", el_dtype_name(dt), out,
                                    in, n, glu ? "geglu" : "swiglu", norm,
                                    eq ? "equal to" : "NOT equal to", en, e);
                        EL_CHECK(e <= F32_TOL);
                        if (e > worst) worst = e;
                    }
                cudaFree(dw), cudaFree(dx), cudaFree(dxn), cudaFree(dy), cudaFree(du),
                    cudaFree(dg), cudaFree(dbg), cudaFree(dbu), cudaFree(dnw), cudaFree(dnb);
                free(wq), free(wd), free(x), free(xn), free(bg), free(want), free(got),
                    free(sep), free(up), free(fused), free(bu), free(nw), free(nb);
            }
        printf("  glu %s: swiglu and geglu, n = 1, 5, 9: %zu of %zu fused outputs equal to the "
               "unfused path's (memcmp); norm in the prologue (RMS, LayerNorm) vs the norm "
               "kernel first: worst nmse %.3g; worst nmse %.3g vs f32\n",
               el_dtype_name(types[ti]), same, runs, worst_norm, worst);
    }
}

/* The q|k|v epilogue (el_cuda_linear_qkv: RoPE of q and k, k and v into the caches) over
 * every block type, bit for bit (memcmp) the separate launches' (el_test_qkv_case: the
 * linear, RoPE, the cache stores): f32 and f16 caches, rotate-half and interleaved pairs and
 * no RoPE, GQA, with and without an RMS prologue (f16 weights), at decode (n = 1) and in
 * prompt batches (n = 5, 9: the dp4a kernels, a second pass of 8 rows at 9); positions 0, 5
 * and the cache's last rows, by value and from the device word. in: 96 (3 blocks: idle
 * lanes) and 1056 (33 blocks: a second stage) for the 32-blocks, 256 and 512 for the K
 * types (under the sanitizers: the smaller only). */
static void test_qkv(void) {
    static const el_dtype types[] = {EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0,
                                     EL_DT_Q5_1, EL_DT_Q4_K, EL_DT_Q5_K, EL_DT_Q6_K};
    static const size_t ns[] = {1, 5, 9};
    const size_t pos0s[] = {0, 5, EL_TEST_QKV_NP - EL_TEST_QKV_NMAX};
    el_test_qkv t;
    el_test_qkv_init(&t, &g_rng);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const el_dtype dt = types[ti];
        const bool kq = dt == EL_DT_Q4_K || dt == EL_DT_Q5_K || dt == EL_DT_Q6_K;
        size_t same = 0, runs = 0;
        for (size_t a = 0; a < GLU_INS; a++) {
            const size_t in = kq ? (a ? 512 : 256) : (a ? 1056 : 96);
            const size_t rb = in / (kq ? 256 : 32) * el_dtype_block_bytes(dt);
            uint8_t *wq = malloc(EL_TEST_QKV_ROWS * rb);
            float *wd = malloc(EL_TEST_QKV_ROWS * in * 4);
            float *x = malloc(EL_TEST_QKV_NMAX * in * 4);
            uint16_t *nw = malloc(in * 2);
            random_rows(dt, wq, wd, EL_TEST_QKV_ROWS, in);
            for (size_t i = 0; i < EL_TEST_QKV_NMAX * in; i++)
                x[i] = frand() * (1.0f + (float)(i % 5));
            for (size_t i = 0; i < in; i++) nw[i] = el_fp32_to_fp16(frand() * 0.5f);
            void *dw = el_test_dev_copy(wq, EL_TEST_QKV_ROWS * rb);
            float *dx = el_test_dev_copy(x, EL_TEST_QKV_NMAX * in * 4);
            void *dnw = el_test_dev_copy(nw, in * 2);
            const el_cuda_prenorm pn = {EL_CUDA_NORM_RMS, dnw, NULL, EL_DT_F16, 1e-5f, 0.0f};
            for (size_t kn = 0; kn < sizeof ns / sizeof ns[0]; kn++)
                for (int c = 0; c < 12; c++) {
                    const size_t pos0 = pos0s[(c + kn + a) % 3];
                    const bool byword = (c / 3 + kn) % 2 == 1;
                    const bool eq = el_test_qkv_case(&t, dt, dw, rb, dx, ns[kn], in,
                                                     c / 6 ? &pn : NULL, c, pos0, byword);
                    EL_CHECK(eq);
                    same += eq;
                    runs++;
                }
            cudaFree(dw), cudaFree(dx), cudaFree(dnw);
            free(wq), free(wd), free(x), free(nw);
        }
        printf("  qkv %s: n = 1, 5, 9, f32/f16 caches, rotate-half/interleaved/none, norm or "
               "not: %zu of %zu fused launches equal to the separate ones (memcmp)\n",
               el_dtype_name(dt), same, runs);
    }
    el_test_qkv_deinit(&t);
}

static void test_refusals(void) {
    float *d = el_test_dev_copy(NULL, 4096);
    EL_CHECK_STATUS(el_cuda_matmul(d, 1, d, d, EL_DT_Q4_K, 1, 320, 1, NULL), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "Q4_K") && strstr(el_last_error(), "320"));
    EL_CHECK_STATUS(el_cuda_matmul_k(d, 1, d, d, EL_DT_Q8_0, 1, 256, 1, NULL), EL_E_INVALID);
    EL_CHECK_STATUS(el_cuda_embed_k(d, d, EL_DT_Q6_K, 100, NULL, 0, 1, false, NULL),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "Q6_K") && strstr(el_last_error(), "256"));
    EL_CHECK_STATUS(el_cuda_matmul(d, 1, d, (const char *)d + 8, EL_DT_Q5_K, 1, 256, 1, NULL),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "16-byte alignment"));
    EL_CHECK_STATUS(el_cuda_matmul(d, 1, d, (const char *)d + 1, EL_DT_Q4_0, 1, 32, 1, NULL),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "2-byte alignment"));
    cudaFree(d);
}

#endif /* EL_HAVE_CUDA */

int main(void) {
#ifndef EL_HAVE_CUDA
    el_test_skip("this build has no CUDA backend (EL_CUDA=OFF or no toolkit)");
#else
    el_test_cuda_require("test_kernels_cuda_quant", "CUDA kernels", NULL);
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++) {
        test_fixture(k_types[i]);
        test_random(k_types[i]);
    }
    el_pool p;
    EL_CHECK_OK(el_pool_init(&p, 1, EL_ISA_PORTABLE));
    test_dp4a(&p);
    test_q32_offsets(&p);
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++) test_dp4a_k(&p, k_types[i]);
    test_glu(&p);
    test_qkv();
    el_pool_deinit(&p);
    test_refusals();
    EL_CHECK(cudaDeviceSynchronize() == cudaSuccess);
#endif
    return el_test_finish("test_kernels_cuda_quant");
}
