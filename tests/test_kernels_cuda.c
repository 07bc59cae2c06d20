/* test_kernels_cuda.c - every CUDA op against the CPU kernel of the same name, on random
 * inputs of awkward sizes, by normalised mean squared error
 *     nmse = sum (gpu - cpu)^2 / sum cpu^2.
 * Both sides compute in f32 from the same weight bits (f16/bf16 weights are widened the
 * same way), so only summation order and libm differ: the bound is 1e-9 for every op and
 * dtype (f32 rounding alone gives ~1e-13). argmax must agree exactly.
 * Needs a CUDA build and a GPU; skips (77) saying so otherwise: "compiled, not run". It says
 * which device ran it: a GPU's name, or "cudasim (simulated, CPU)" in -DEL_CUDA_SIM=ON builds,
 * where every op runs three times, with the emulated threads of each block resumed in
 * reverse, forward and random order (a missing __syncthreads shows in one of them: reverse
 * when a thread reads what a lower one writes, forward when it reads what a higher one
 * writes, as tree reductions do). */
// ctest-labels: cuda;kernels
// ctest-timeout: 120
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
#include "kernels/attn_split.h"
#include "kernels/cuda/cuda_ops.h"

#include <cuda_runtime_api.h>
#ifdef EL_CUDA_SIM
#include "cudasim.h"
#endif

#define NMSE_MAX 1e-9

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { return el_test_frand(&g_rng); }
static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = frand();
}

static void *weights(const float *src, size_t n, el_dtype dt) {
    size_t es = dt == EL_DT_F32 ? 4 : 2;
    void *w = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        if (dt == EL_DT_F32) ((float *)w)[i] = src[i];
        else if (dt == EL_DT_F16) ((uint16_t *)w)[i] = el_fp32_to_fp16(src[i]);
        else ((uint16_t *)w)[i] = el_fp32_to_bf16(src[i]);
    }
    return w;
}

#define CHECK_NMSE(got, want, n, what)                                             \
    do {                                                                           \
        double e_ = el_test_nmse(got, want, n);                                            \
        if (!(e_ <= NMSE_MAX)) fprintf(stderr, "%s: nmse %.3g\n", what, e_);        \
        EL_CHECK(e_ <= NMSE_MAX);                                                  \
    } while (0)

static void test_matmul_norms(el_pool *p) {
    /* n, in, out: element-wise loads (in 67), 16-byte loads (256, 1000, 512: decode), a
     * second pass of input rows (19 > 8). */
    const size_t shapes[][3] = {{1, 67, 45}, {5, 256, 130}, {19, 1000, 77}, {1, 512, 33}};
    for (int f = 0; f < 3; f++) {
        el_dtype dt = f == 0 ? EL_DT_F32 : f == 1 ? EL_DT_F16 : EL_DT_BF16;
        size_t es = dt == EL_DT_F32 ? 4 : 2;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
            float *x = malloc(n * in * 4), *src = malloc(in * out * 4);
            float *want = malloc(n * out * 4), *got = malloc(n * out * 4);
            fill(x, n * in);
            fill(src, in * out);
            void *w = weights(src, in * out, dt);
            el_cpu_matmul(p, want, out, x, w, dt, n, in, out);
            float *dx = el_test_dev_copy(x, n * in * 4);
            float *dy = el_test_dev_copy(NULL, n * out * 4);
            void *dw = el_test_dev_copy(w, in * out * es);
            EL_CHECK_OK(el_cuda_matmul(dy, out, dx, dw, dt, n, in, out, NULL));
            el_test_host_copy(got, dy, n * out * 4);
            CHECK_NMSE(got, want, n * out, "matmul");

            /* Norms over the same rows (dim = in), weights from the first in entries. */
            float *nw = malloc(n * in * 4), *ng = malloc(n * in * 4);
            float *dn = el_test_dev_copy(NULL, n * in * 4);
            el_cpu_rmsnorm(p, nw, x, w, dt, n, in, 1e-5f);
            EL_CHECK_OK(el_cuda_rmsnorm(dn, dx, dw, dt, n, in, 1e-5f, NULL));
            el_test_host_copy(ng, dn, n * in * 4);
            CHECK_NMSE(ng, nw, n * in, "rmsnorm");
            el_cpu_rmsnorm_off(p, nw, x, w, dt, n, in, 1e-5f, 1.0f); /* Gemma's (1 + w) */
            EL_CHECK_OK(el_cuda_rmsnorm_off(dn, dx, dw, dt, n, in, 1e-5f, 1.0f, NULL));
            el_test_host_copy(ng, dn, n * in * 4);
            CHECK_NMSE(ng, nw, n * in, "rmsnorm (1 + w)");
            void *b = (char *)dw + in * es; /* the next in weights serve as the bias */
            el_cpu_layernorm(p, nw, x, w, (char *)w + in * es, dt, n, in, 1e-5f);
            EL_CHECK_OK(el_cuda_layernorm(dn, dx, dw, b, dt, n, in, 1e-5f, NULL));
            el_test_host_copy(ng, dn, n * in * 4);
            CHECK_NMSE(ng, nw, n * in, "layernorm");
            /* Bias add on rows of out with padding stride out + 3. */
            cudaFree(dy);
            float *pad = malloc(n * (out + 3) * 4), *pad2 = malloc(n * (out + 3) * 4);
            fill(pad, n * (out + 3));
            memcpy(pad2, pad, n * (out + 3) * 4);
            dy = el_test_dev_copy(pad, n * (out + 3) * 4);
            el_cpu_add_bias(pad, out + 3, w, dt, n, out);
            EL_CHECK_OK(el_cuda_add_bias(dy, out + 3, dw, dt, n, out, NULL));
            el_test_host_copy(pad2, dy, n * (out + 3) * 4);
            CHECK_NMSE(pad2, pad, n * (out + 3), "add_bias");
            cudaFree(dx);
            cudaFree(dy);
            cudaFree(dw);
            cudaFree(dn);
            free(x), free(src), free(want), free(got), free(w), free(nw), free(ng), free(pad),
                free(pad2);
        }
    }
}

/* Three linears of one input in one launch (el_cuda_linear_parts), through each epilogue and
 * each prologue norm, against the CPU's norm, matmul, bias add, then add or GELU per part: a
 * padded row stride, an f32 bias, an f16 bias and none; element-wise (in 67) and 16-byte
 * loads (in 256), one and two passes of input rows. */
static void test_linear_parts(el_pool *p) {
    const size_t shapes[][2] = {{1, 256}, {11, 67}, {3, 256}};
    const size_t outs[3] = {40, 24, 17}, pad = 5;
    for (int f = 0; f < 3; f++) {
        const el_dtype dt = f == 0 ? EL_DT_F32 : f == 1 ? EL_DT_F16 : EL_DT_BF16;
        const size_t es = dt == EL_DT_F32 ? 4 : 2;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const size_t n = shapes[s][0], in = shapes[s][1];
            float *x = malloc(n * in * 4), *src = malloc(outs[0] * in * 4);
            float *bias = malloc(outs[0] * 4), *tmp = malloc(n * outs[0] * 4);
            fill(x, n * in);
            fill(bias, outs[0]);
            float *dx = el_test_dev_copy(x, n * in * 4);
            void *bw[2] = {bias, weights(bias, outs[1], EL_DT_F16)};
            void *db[3] = {el_test_dev_copy(bias, outs[0] * 4),
                           el_test_dev_copy(bw[1], outs[1] * 2), NULL};
            const el_dtype bt[3] = {EL_DT_F32, EL_DT_F16, EL_DT_F32};
            void *w[3], *dw[3];
            float *y0[3], *want[3], *got[3], *dy[3];
            size_t ldy[3];
            for (int k = 0; k < 3; k++) {
                fill(src, outs[k] * in);
                w[k] = weights(src, outs[k] * in, dt);
                dw[k] = el_test_dev_copy(w[k], outs[k] * in * es);
                ldy[k] = outs[k] + (k == 0 ? pad : 0);
                y0[k] = malloc(n * ldy[k] * 4);
                want[k] = malloc(n * ldy[k] * 4);
                got[k] = malloc(n * ldy[k] * 4);
                fill(y0[k], n * ldy[k]);
                dy[k] = el_test_dev_copy(NULL, n * ldy[k] * 4);
            }
            /* The prologue's norms: weights (and LayerNorm's bias) of dt. */
            float *nsrc = malloc(2 * in * 4), *xn = malloc(n * in * 4);
            fill(nsrc, 2 * in);
            void *nw = weights(nsrc, 2 * in, dt), *dnw = el_test_dev_copy(nw, 2 * in * es);
            for (int c = 0; c < 16; c++) {
                const int e = c % 4, nk = c / 4; /* none, RMS, RMS (1 + w), LayerNorm */
                const el_cuda_prenorm pn = {nk == 0 ? EL_CUDA_NORM_NONE
                                            : nk == 3 ? EL_CUDA_NORM_LAYER : EL_CUDA_NORM_RMS,
                                            dnw, nk == 3 ? (char *)dnw + in * es : NULL, dt,
                                            1e-5f, nk == 2 ? 1.0f : 0.0f};
                memcpy(xn, x, n * in * 4);
                if (nk == 1 || nk == 2)
                    el_cpu_rmsnorm_off(p, xn, x, nw, dt, n, in, 1e-5f, pn.w_offset);
                if (nk == 3)
                    el_cpu_layernorm(p, xn, x, nw, (char *)nw + in * es, dt, n, in, 1e-5f);
                el_cuda_part parts[3];
                for (int k = 0; k < 3; k++) {
                    parts[k] = (el_cuda_part){dy[k], ldy[k], dw[k], db[k], bt[k], outs[k]};
                    cudaMemcpy(dy[k], y0[k], n * ldy[k] * 4, cudaMemcpyHostToDevice);
                    memcpy(want[k], y0[k], n * ldy[k] * 4);
                    el_cpu_matmul(p, tmp, outs[k], xn, w[k], dt, n, in, outs[k]);
                    if (k < 2) el_cpu_add_bias(tmp, outs[k], bw[k], bt[k], n, outs[k]);
                    if (e == EL_CUDA_EPI_GELU_TANH) el_cpu_gelu_tanh(p, tmp, n * outs[k]);
                    if (e == EL_CUDA_EPI_GELU_ERF) el_cpu_gelu_erf(p, tmp, n * outs[k]);
                    for (size_t t = 0; t < n; t++)
                        for (size_t r = 0; r < outs[k]; r++) {
                            float *d = &want[k][t * ldy[k] + r];
                            *d = e == EL_CUDA_EPI_ACCUMULATE ? *d + tmp[t * outs[k] + r]
                                                             : tmp[t * outs[k] + r];
                        }
                }
                EL_CHECK_OK(el_cuda_linear_parts(parts, 3, dx, dt, n, in, (el_cuda_epi)e,
                                                 nk ? &pn : NULL, NULL));
                for (int k = 0; k < 3; k++) {
                    el_test_host_copy(got[k], dy[k], n * ldy[k] * 4);
                    char what[64];
                    snprintf(what, sizeof what, "linear_parts %s n=%zu in=%zu part %d epi %d "
                             "norm %d", el_dtype_name(dt), n, in, k, e, nk);
                    CHECK_NMSE(got[k], want[k], n * ldy[k], what);
                }
            }
            for (int k = 0; k < 3; k++) {
                cudaFree(dw[k]), cudaFree(dy[k]), cudaFree(db[k]);
                free(w[k]), free(y0[k]), free(want[k]), free(got[k]);
            }
            cudaFree(dx), cudaFree(dnw);
            free(x), free(src), free(bias), free(tmp), free(bw[1]), free(nsrc), free(xn), free(nw);
        }
    }
    /* More parts than a launch takes: refused. */
    el_cuda_part four[4] = {{0}};
    EL_CHECK(el_cuda_linear_parts(four, 4, NULL, EL_DT_F32, 1, 8, EL_CUDA_EPI_STORE, NULL,
                                  NULL) == EL_E_USAGE);
}

/* The q|k|v launch with RoPE and the cache stores in its epilogue (el_cuda_linear_qkv), bit
 * for bit against what the decoder runs without it (el_test_qkv_case): f32/f16/bf16 weights;
 * f32 and f16 caches; rotate-half pairs, interleaved pairs and no RoPE; GQA; decode (n 1)
 * and prompt batches (n 3, and 11: two passes of input rows); element-wise (in 67) and
 * 16-byte loads (in 64); with and without an RMS prologue; positions 0, 5 and the cache's
 * last rows, by value and from a device word. Not full (the emulator's other thread orders:
 * the epilogue has no block barrier): 4 of the 12 cases. */
static void test_linear_qkv(bool full) {
    enum { QD = EL_TEST_QKV_QD, KVD = EL_TEST_QKV_KVD, ROWS = EL_TEST_QKV_ROWS };
    const size_t shapes[][2] = {{1, 64}, {11, 67}, {3, 64}};
    const size_t pos0s[] = {0, 5, EL_TEST_QKV_NP - EL_TEST_QKV_NMAX};
    el_test_qkv t;
    el_test_qkv_init(&t, &g_rng);
    for (int f = 0; f < 3; f++) {
        const el_dtype dt = f == 0 ? EL_DT_F32 : f == 1 ? EL_DT_F16 : EL_DT_BF16;
        const size_t es = dt == EL_DT_F32 ? 4 : 2;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const size_t n = shapes[s][0], in = shapes[s][1];
            float *x = malloc(n * in * 4), *src = malloc(ROWS * in * 4), *nsrc = malloc(in * 4);
            fill(x, n * in), fill(src, ROWS * in), fill(nsrc, in);
            void *w = weights(src, ROWS * in, dt), *nw = weights(nsrc, in, dt);
            float *dx = el_test_dev_copy(x, n * in * 4);
            void *dw = el_test_dev_copy(w, ROWS * in * es), *dnw = el_test_dev_copy(nw, in * es);
            const el_cuda_prenorm pn = {EL_CUDA_NORM_RMS, dnw, NULL, dt, 1e-5f, 0.0f};
            /* Every cache and pair layout with and without the norm; positions and by value
             * or word rotate across the shapes. */
            for (int c = 0; c < (full ? 12 : 4); c++) {
                const size_t pos0 = pos0s[(c + s + f) % 3];
                const bool byword = (c / 3 + s) % 2 == 1;
                EL_CHECK(el_test_qkv_case(&t, dt, dw, in * es, dx, n, in, c / 6 ? &pn : NULL,
                                          c, pos0, byword));
            }
            cudaFree(dx), cudaFree(dw), cudaFree(dnw);
            free(x), free(src), free(nsrc), free(w), free(nw);
        }
    }
    /* Refused: weights no matmul takes, shapes the pairs do not cover, another cache dtype,
     * and the epilogue through el_cuda_linear_parts. */
    const el_cuda_part sh[3] = {{NULL, QD, NULL, NULL, EL_DT_F32, QD},
                                {NULL, KVD, NULL, NULL, EL_DT_F32, KVD},
                                {NULL, KVD, NULL, NULL, EL_DT_F32, KVD}};
    el_cuda_qkv r = {t.cos, t.sin, EL_TEST_QKV_HD, 0, NULL, false, t.c[1][0], t.c[1][1],
                     EL_DT_F32};
    EL_CHECK(el_cuda_linear_qkv_fuses(sh, EL_DT_F32, &r));
    EL_CHECK(el_cuda_linear_qkv_fuses(sh, EL_DT_Q8_0, &r));
    EL_CHECK(el_cuda_linear_qkv_fuses(sh, EL_DT_Q6_K, &r));
    EL_CHECK(!el_cuda_linear_qkv_fuses(sh, EL_DT_I8, &r));
    EL_CHECK(el_cuda_linear_qkv(sh, NULL, EL_DT_I8, 1, 64, NULL, &r, NULL) == EL_E_UNSUPPORTED);
    r.head_dim = 24; /* 64 rows of q are not whole heads */
    EL_CHECK(!el_cuda_linear_qkv_fuses(sh, EL_DT_F32, &r));
    EL_CHECK(el_cuda_linear_qkv(sh, NULL, EL_DT_F32, 1, 64, NULL, &r, NULL) == EL_E_USAGE);
    r.head_dim = EL_TEST_QKV_HD;
    r.kv_dt = EL_DT_BF16;
    EL_CHECK(!el_cuda_linear_qkv_fuses(sh, EL_DT_F32, &r));
    EL_CHECK(el_cuda_linear_parts(sh, 3, NULL, EL_DT_F32, 1, 64, EL_CUDA_EPI_QKV, NULL, NULL) ==
             EL_E_USAGE);
    el_test_qkv_deinit(&t);
}

/* The gated epilogues (gate and up in one launch, act(gate) * up stored): against the CPU's
 * matmul, bias add and SwiGLU or GELU-tanh times up (nmse), and bit for bit against the same
 * launch storing both parts followed by el_cuda_swiglu, or el_cuda_gelu_tanh then
 * el_cuda_mul (what the decoder ran before). f32/f16/bf16, element-wise and 16-byte loads,
 * with and without an RMS prologue, biases of f32 (gate) and f16 (up), a padded row. */
static void test_linear_glu(el_pool *p) {
    const size_t shapes[][2] = {{1, 256}, {11, 67}, {3, 256}}, out = 24, ld = out + 3;
    for (int f = 0; f < 3; f++) {
        const el_dtype dt = f == 0 ? EL_DT_F32 : f == 1 ? EL_DT_F16 : EL_DT_BF16;
        const size_t es = dt == EL_DT_F32 ? 4 : 2;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const size_t n = shapes[s][0], in = shapes[s][1];
            float *x = malloc(n * in * 4), *src = malloc(2 * out * in * 4), *bias = malloc(2 * out * 4);
            float *g = malloc(n * out * 4), *u = malloc(n * out * 4), *want = malloc(n * ld * 4);
            float *got = malloc(n * ld * 4), *sep = malloc(n * ld * 4), *nsrc = malloc(in * 4);
            fill(x, n * in), fill(src, 2 * out * in), fill(bias, 2 * out), fill(nsrc, in);
            void *w = weights(src, 2 * out * in, dt), *bu = weights(bias + out, out, EL_DT_F16);
            void *nw = weights(nsrc, in, dt);
            float *dx = el_test_dev_copy(x, n * in * 4);
            float *dy = el_test_dev_copy(NULL, n * ld * 4);
            float *du = el_test_dev_copy(NULL, n * out * 4);
            void *dw = el_test_dev_copy(w, 2 * out * in * es);
            void *dbg = el_test_dev_copy(bias, out * 4);
            void *dbu = el_test_dev_copy(bu, out * 2), *dnw = el_test_dev_copy(nw, in * es);
            float *xn = malloc(n * in * 4);
            for (int c = 0; c < 4; c++) {
                const int glu = c % 2, norm = c / 2; /* SwiGLU / GeGLU; no norm / RMS */
                const el_cuda_prenorm pn = {EL_CUDA_NORM_RMS, dnw, NULL, dt, 1e-5f, 0.0f};
                memcpy(xn, x, n * in * 4);
                if (norm) el_cpu_rmsnorm_off(p, xn, x, nw, dt, n, in, 1e-5f, 0.0f);
                el_cpu_matmul(p, g, out, xn, w, dt, n, in, out);
                el_cpu_matmul(p, u, out, xn, (char *)w + out * in * es, dt, n, in, out);
                el_cpu_add_bias(g, out, bias, EL_DT_F32, n, out);
                el_cpu_add_bias(u, out, bu, EL_DT_F16, n, out);
                if (glu) {
                    el_cpu_gelu_tanh(p, g, n * out);
                    for (size_t i = 0; i < n * out; i++) g[i] *= u[i];
                } else {
                    el_cpu_swiglu(p, g, u, n * out);
                }
                for (size_t i = 0; i < n * ld; i++) want[i] = got[i] = sep[i] = 0.0f;
                for (size_t t = 0; t < n; t++) memcpy(want + t * ld, g + t * out, out * 4);
                const el_cuda_part parts[2] = {{dy, ld, dw, dbg, EL_DT_F32, out},
                                               {du, out, (char *)dw + out * in * es, dbu,
                                                EL_DT_F16, out}};
                cudaMemset(dy, 0, n * ld * 4);
                EL_CHECK_OK(el_cuda_linear_parts(parts, 2, dx, dt, n, in,
                                                 glu ? EL_CUDA_EPI_GEGLU : EL_CUDA_EPI_SWIGLU,
                                                 norm ? &pn : NULL, NULL));
                el_test_host_copy(got, dy, n * ld * 4);
                char what[64];
                snprintf(what, sizeof what, "linear glu %s n=%zu in=%zu %s norm %d",
                         el_dtype_name(dt), n, in, glu ? "geglu" : "swiglu", norm);
                CHECK_NMSE(got, want, n * ld, what);
                /* The separate kernels: the same bits (rows of ld: compacted first). */
                const el_cuda_part sp[2] = {{dy, out, dw, dbg, EL_DT_F32, out}, parts[1]};
                cudaMemset(dy, 0, n * ld * 4);
                EL_CHECK_OK(el_cuda_linear_parts(sp, 2, dx, dt, n, in, EL_CUDA_EPI_STORE,
                                                 norm ? &pn : NULL, NULL));
                if (glu) {
                    EL_CHECK_OK(el_cuda_gelu_tanh(dy, n * out, NULL));
                    EL_CHECK_OK(el_cuda_mul(dy, du, n * out, NULL));
                } else {
                    EL_CHECK_OK(el_cuda_swiglu(dy, du, n * out, NULL));
                }
                el_test_host_copy(g, dy, n * out * 4);
                for (size_t t = 0; t < n; t++) memcpy(sep + t * ld, g + t * out, out * 4);
                EL_CHECK(!memcmp(sep, got, n * ld * 4));
            }
            cudaFree(dx), cudaFree(dy), cudaFree(du), cudaFree(dw), cudaFree(dbg), cudaFree(dbu),
                cudaFree(dnw);
            free(x), free(src), free(bias), free(g), free(u), free(want), free(got), free(sep),
                free(nsrc), free(w), free(bu), free(nw), free(xn);
        }
    }
    /* One part, or parts of different rows: refused. */
    const el_cuda_part one[2] = {{NULL, 8, NULL, NULL, EL_DT_F32, 8},
                                 {NULL, 4, NULL, NULL, EL_DT_F32, 4}};
    EL_CHECK(el_cuda_linear_parts(one, 1, NULL, EL_DT_F32, 1, 8, EL_CUDA_EPI_SWIGLU, NULL,
                                  NULL) == EL_E_USAGE);
    EL_CHECK(el_cuda_linear_parts(one, 2, NULL, EL_DT_F32, 1, 8, EL_CUDA_EPI_SWIGLU, NULL,
                                  NULL) == EL_E_USAGE);
}

static void test_elementwise(el_pool *p) {
    enum { N = 1237 };
    float a[N], b[N], want[N], got[N];
    fill(a, N);
    fill(b, N);
    for (size_t i = 0; i < N; i++) a[i] *= 6; /* reach the tails of silu/gelu */
    float *da = el_test_dev_copy(a, sizeof a), *db = el_test_dev_copy(b, sizeof b);
    memcpy(want, a, sizeof a);
    el_cpu_swiglu(p, want, b, N);
    EL_CHECK_OK(el_cuda_swiglu(da, db, N, NULL));
    el_test_host_copy(got, da, sizeof got);
    CHECK_NMSE(got, want, N, "swiglu");
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    memcpy(want, a, sizeof a);
    el_cpu_gelu_tanh(p, want, N);
    EL_CHECK_OK(el_cuda_gelu_tanh(da, N, NULL));
    el_test_host_copy(got, da, sizeof got);
    CHECK_NMSE(got, want, N, "gelu_tanh");
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    memcpy(want, a, sizeof a);
    el_cpu_gelu_erf(p, want, N);
    EL_CHECK_OK(el_cuda_gelu_erf(da, N, NULL));
    el_test_host_copy(got, da, sizeof got);
    CHECK_NMSE(got, want, N, "gelu_erf");
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    memcpy(want, a, sizeof a);
    el_cpu_add(p, want, b, N);
    EL_CHECK_OK(el_cuda_add(da, db, N, NULL));
    el_test_host_copy(got, da, sizeof got);
    CHECK_NMSE(got, want, N, "add");
    /* softmax over 3 rows of 411; the CPU kernel runs row by row. */
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    memcpy(want, a, sizeof a);
    for (int r = 0; r < 3; r++) el_cpu_softmax(p, want + r * 411, 411);
    EL_CHECK_OK(el_cuda_softmax(da, 3, 411, NULL));
    el_test_host_copy(got, da, 3 * 411 * 4);
    CHECK_NMSE(got, want, 3 * 411, "softmax");
    /* argmax: exact, including a tie (first wins) and a NaN that must not win. */
    a[700] = 50.0f;
    a[900] = 50.0f;
    a[10] = NAN;
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    int32_t *di = el_test_dev_copy(NULL, sizeof(int32_t)), idx = -1;
    EL_CHECK_OK(el_cuda_argmax(da, N, di, NULL));
    el_test_host_copy(&idx, di, sizeof idx);
    EL_CHECK(idx == (int32_t)el_cpu_argmax(a, N) && idx == 700);
    cudaFree(da);
    cudaFree(db);
    cudaFree(di);
}

static void test_embed_rope_attention(el_pool *p) {
    enum { ROWS = 50, DIM = 96, NT = 7, POS0 = 13, NH = 4, NKV = 2, HD = 24 };
    float table[ROWS * DIM];
    fill(table, ROWS * DIM);
    int32_t ids[NT] = {3, 49, 0, 17, 17, 8, 22};
    for (int f = 0; f < 2; f++) {
        el_dtype dt = f ? EL_DT_F16 : EL_DT_F32;
        void *w = weights(table, ROWS * DIM, dt);
        float want[NT * DIM], got[NT * DIM];
        for (int t = 0; t < NT; t++) el_cpu_embed(want + t * DIM, w, dt, DIM, (size_t)ids[t]);
        void *dw = el_test_dev_copy(w, ROWS * DIM * (f ? 2 : 4));
        int32_t *dids = el_test_dev_copy(ids, sizeof ids);
        float *dout = el_test_dev_copy(NULL, sizeof got);
        EL_CHECK_OK(el_cuda_embed(dout, dw, dt, DIM, dids, NT, NULL));
        el_test_host_copy(got, dout, sizeof got);
        CHECK_NMSE(got, want, NT * DIM, "embed");
        /* add_rows: positions POS0 .. POS0 + NT - 1 added on top (GPT-2's wpe). */
        for (int t = 0; t < NT; t++) {
            float row[DIM];
            el_cpu_embed(row, w, dt, DIM, (size_t)(POS0 + t));
            for (int i = 0; i < DIM; i++) want[t * DIM + i] += row[i];
        }
        EL_CHECK_OK(el_cuda_add_rows(dout, dw, dt, DIM, POS0, NT, NULL));
        el_test_host_copy(got, dout, sizeof got);
        CHECK_NMSE(got, want, NT * DIM, "add_rows");
        cudaFree(dw), cudaFree(dids), cudaFree(dout);
        free(w);
    }
    /* RoPE tables: the GPU fills [POS0 + NT, HD/2] as llama.c does on the CPU (float). */
    enum { NP = POS0 + NT, HALF = HD / 2 };
    float tc[NP * HALF], ts[NP * HALF], gc[NP * HALF], gs[NP * HALF];
    for (int i = 0; i < HALF; i++) {
        float freq = 1.0f / powf(10000.0f, (float)(2 * i) / (float)HD);
        for (int q = 0; q < NP; q++) {
            tc[q * HALF + i] = cosf((float)q * freq);
            ts[q * HALF + i] = sinf((float)q * freq);
        }
    }
    float *dtc = el_test_dev_copy(NULL, sizeof tc), *dts = el_test_dev_copy(NULL, sizeof ts);
    EL_CHECK_OK(el_cuda_rope_table(dtc, dts, NP, HD, (el_rope){10000.0f, EL_ROPE_DEFAULT, 1, 1, 1, 1}, NULL));
    el_test_host_copy(gc, dtc, sizeof gc);
    el_test_host_copy(gs, dts, sizeof gs);
    CHECK_NMSE(gc, tc, NP * HALF, "rope table cos");
    CHECK_NMSE(gs, ts, NP * HALF, "rope table sin");
    /* RoPE at positions POS0.., both layouts, against the CPU kernel with the same tables. */
    for (int il = 0; il < 2; il++) {
        float x[NT * NH * HD], want[NT * NH * HD], got[NT * NH * HD];
        fill(x, NT * NH * HD);
        memcpy(want, x, sizeof x);
        for (int t = 0; t < NT; t++)
            el_cpu_rope(want + t * NH * HD, NH, HD, tc + (POS0 + t) * HALF,
                        ts + (POS0 + t) * HALF, il != 0);
        float *dx = el_test_dev_copy(x, sizeof x), *dc = el_test_dev_copy(tc, sizeof tc),
              *ds = el_test_dev_copy(ts, sizeof ts);
        EL_CHECK_OK(el_cuda_rope(dx, NH * HD, NT, NH, HD, dc + POS0 * HALF, ds + POS0 * HALF,
                                 il != 0, NULL));
        el_test_host_copy(got, dx, sizeof got);
        CHECK_NMSE(got, want, NT * NH * HD, "rope");
        /* q and k in one launch (el_cuda_rope2): x again as q, a second tensor of NKV heads
         * with a padded row stride as k. */
        enum { LDK = NKV * HD + 5 };
        float k[NT * LDK], kwant[NT * LDK], kgot[NT * LDK];
        fill(k, NT * LDK);
        memcpy(kwant, k, sizeof k);
        memcpy(want, x, sizeof x);
        for (int t = 0; t < NT; t++) {
            el_cpu_rope(want + t * NH * HD, NH, HD, tc + (POS0 + t) * HALF,
                        ts + (POS0 + t) * HALF, il != 0);
            el_cpu_rope(kwant + t * LDK, NKV, HD, tc + (POS0 + t) * HALF,
                        ts + (POS0 + t) * HALF, il != 0);
        }
        float *dk = el_test_dev_copy(k, sizeof k);
        cudaMemcpy(dx, x, sizeof x, cudaMemcpyHostToDevice);
        EL_CHECK_OK(el_cuda_rope2(dx, NH * HD, NH, dk, LDK, NKV, NT, HD, dc + POS0 * HALF,
                                  ds + POS0 * HALF, il != 0, NULL));
        el_test_host_copy(got, dx, sizeof got);
        el_test_host_copy(kgot, dk, sizeof kgot);
        CHECK_NMSE(got, want, NT * NH * HD, "rope2 q");
        CHECK_NMSE(kgot, kwant, NT * LDK, "rope2 k");
        cudaFree(dx), cudaFree(dc), cudaFree(ds), cudaFree(dk);
    }
    cudaFree(dtc), cudaFree(dts);
    /* Attention: NT new rows at POS0 over a cache of POS0 + NT rows, GQA 4 over 2. */
    size_t ctx = POS0 + NT;
    float *q = malloc(NT * NH * HD * 4), *k = malloc(ctx * NKV * HD * 4),
          *v = malloc(ctx * NKV * HD * 4), *want = malloc(NT * NH * HD * 4),
          *got = malloc(NT * NH * HD * 4), *att = malloc(NH * ctx * 4);
    fill(q, NT * NH * HD);
    fill(k, ctx * NKV * HD);
    fill(v, ctx * NKV * HD);
    el_cpu_attention(p, want, q, k, v, att, ctx, NT, POS0, NH, NKV, HD);
    float *dq = el_test_dev_copy(q, NT * NH * HD * 4);
    float *dk = el_test_dev_copy(k, ctx * NKV * HD * 4);
    float *dv = el_test_dev_copy(v, ctx * NKV * HD * 4);
    float *dout = el_test_dev_copy(NULL, NT * NH * HD * 4);
    EL_CHECK_OK(el_cuda_attention(dout, dq, dk, dv, NT, POS0, NH, NKV, HD, NULL));
    el_test_host_copy(got, dout, NT * NH * HD * 4);
    CHECK_NMSE(got, want, NT * NH * HD, "attention");
    /* Sliding windows inside and past the context, and another score scale. */
    static const size_t windows[] = {1, 4, POS0 + NT + 3};
    for (size_t wi = 0; wi < 3; wi++) {
        el_cpu_attention_ex(p, want, q, k, v, att, ctx, NT, POS0, NH, NKV, HD, windows[wi],
                            0.3f);
        EL_CHECK_OK(el_cuda_attention_ex(dout, dq, dk, dv, NT, POS0, NH, NKV, HD, windows[wi],
                                         0.3f, NULL));
        el_test_host_copy(got, dout, NT * NH * HD * 4);
        CHECK_NMSE(got, want, NT * NH * HD, "attention (window, scale)");
    }
    /* x *= y and x *= s (GeGLU, Gemma's embedding scale). */
    float *mv = malloc(NT * NH * HD * 4);
    memcpy(mv, q, NT * NH * HD * 4);
    for (size_t i = 0; i < NT * NH * HD; i++) mv[i] *= want[i] * 0.5f;
    float *dm = el_test_dev_copy(want, NT * NH * HD * 4);
    EL_CHECK_OK(el_cuda_mul(dq, dm, NT * NH * HD, NULL));
    EL_CHECK_OK(el_cuda_scale(dq, 0.5f, NT * NH * HD, NULL));
    el_test_host_copy(got, dq, NT * NH * HD * 4);
    CHECK_NMSE(got, mv, NT * NH * HD, "mul, scale");
    cudaFree(dm);
    free(mv);
    /* No context limit; head_dim has one (4 dims per thread of a block). */
    EL_CHECK_STATUS(el_cuda_attention(dout, dq, dk, dv, 1, 0, 1, 1, 1025, NULL), EL_E_UNSUPPORTED);
    cudaFree(dq), cudaFree(dk), cudaFree(dv), cudaFree(dout);
    free(q), free(k), free(v), free(want), free(got), free(att);
}
/* Split-context attention (kernels/attn_split.h) against the CPU kernels. Decode rows at
 * position CTX - 1 = 30000, past the 24,576 positions of the shared-memory kernel this
 * replaced (118 chunks of 256): GQA ratios 1, 3 and 4 over 2 KV heads, head_dim 16 (16-byte
 * loads) and 12 (scalar loads), f32 and f16 caches, a window across three chunks and one
 * inside a chunk, and a partials buffer too small for every chunk (fewer, longer chunks).
 * Prompt batches of 5 rows at 600 (3 chunks each; a window, and no partials buffer: one
 * block per row and KV head). Wide heads: head_dim 264 (a key row in two pieces of 256
 * dims, a GQA group of 4 in two sub-groups), 260 (scalar loads), 128 and 64. Under the
 * emulator the launches are counted: 2 (chunks, then the combine) when the context is
 * split, 1 when not. Then bidirectional attention of two rows over a 25,000-row sequence
 * (the old limit applied there too), against the causal CPU kernel at the sequence's last
 * position (the same keys, all of them). The long contexts run when long_ctx (the
 * emulator: in one thread order; the rest in all three). */
static void test_attention_split(el_pool *p, bool long_ctx) {
    enum { NKV = 2, CTX = 30001, MAXH = 4 * NKV, MAXD = 16, MAXN = 5, LONG = 25000 };
    const size_t kv_n = (size_t)CTX * NKV * MAXD, q_n = (size_t)4 * MAXH * 264;
    float *k = malloc(kv_n * 4), *v = malloc(kv_n * 4), *q = malloc(q_n * 4),
          *want = malloc(q_n * 4), *got = malloc(q_n * 4), *att = malloc((size_t)MAXH * CTX * 4);
    uint16_t *kh = malloc(kv_n * 2), *vh = malloc(kv_n * 2);
    EL_CHECK(k && v && q && want && got && att && kh && vh);
    for (size_t i = 0; i < kv_n; i++) {
        k[i] = frand() * 1.5f, v[i] = frand();
        kh[i] = el_fp32_to_fp16(k[i]), vh[i] = el_fp32_to_fp16(v[i]);
    }
    fill(q, q_n);
    const size_t part_n = (size_t)el_attn_partial_floats(MAXN, MAXH, MAXD, CTX);
    float *dq = el_test_dev_copy(q, q_n * 4), *dout = el_test_dev_copy(NULL, q_n * 4),
          *dpart = el_test_dev_copy(NULL, part_n * 4);
    void *dk = el_test_dev_copy(k, kv_n * 4), *dv = el_test_dev_copy(v, kv_n * 4);
    void *dkh = el_test_dev_copy(kh, kv_n * 2), *dvh = el_test_dev_copy(vh, kv_n * 2);
    enum { FULL, SMALL, NONE };
    static const struct {
        size_t ratio, hd, n, pos0, window;
        bool f16;
        int part;
    } cases[] = {
        {1, 16, 1, CTX - 1, 0, false, FULL},   {3, 16, 1, CTX - 1, 0, true, FULL},
        {4, 12, 1, CTX - 1, 0, false, FULL},   {4, 16, 1, CTX - 1, 700, true, FULL},
        {3, 12, 1, CTX - 1, 5, true, FULL},    {1, 16, 1, CTX - 1, 0, false, SMALL},
        {4, 16, MAXN, 600, 0, false, FULL},    {3, 12, MAXN, 600, 300, true, FULL},
        {4, 16, MAXN, 600, 0, true, NONE},     {4, 264, 1, 600, 0, true, FULL},
        {3, 260, 4, 600, 0, false, FULL},      {1, 64, 1, 2000, 0, true, FULL},
        {2, 128, 2, 1500, 0, false, FULL},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        if (!long_ctx && cases[ci].pos0 == CTX - 1 && cases[ci].window != 5) continue;
        const size_t nh = cases[ci].ratio * NKV, hd = cases[ci].hd, n = cases[ci].n,
                     pos0 = cases[ci].pos0, win = cases[ci].window, qn = n * nh * hd;
        const size_t span = win && win < pos0 + n ? win : pos0 + n;
        const el_dtype dt = cases[ci].f16 ? EL_DT_F16 : EL_DT_F32;
        size_t pf = (size_t)el_attn_partial_floats(n, nh, hd, span);
        if (cases[ci].part == SMALL) pf = 7 * n * nh * (hd + 2); /* 7 chunks of 4,288 */
        if (cases[ci].part == NONE) pf = 0;
        EL_CHECK(pf <= part_n && qn <= q_n && (pos0 + n) * NKV * hd <= kv_n);
        el_cpu_attention_kv(p, want, q, cases[ci].f16 ? (const void *)kh : k,
                            cases[ci].f16 ? (const void *)vh : v, dt, att, CTX, n, pos0, nh, NKV,
                            hd, win, 0.25f);
#ifdef EL_CUDA_SIM
        elsim_reset_stats();
#endif
        EL_CHECK_OK(el_cuda_attention_kv(dout, dq, cases[ci].f16 ? dkh : dk,
                                         cases[ci].f16 ? dvh : dv, dt, n, pos0, nh, NKV, hd, win,
                                         0.25f, pf ? dpart : NULL, pf, NULL));
        el_test_host_copy(got, dout, qn * 4);
        double e = el_test_nmse(got, want, qn);
        printf("  split attention: ratio %zu, head_dim %zu, %s, %zu row(s) at %zu, window %zu, "
               "%zu partials: nmse %.3g\n", cases[ci].ratio, hd, el_dtype_name(dt), n, pos0, win,
               pf, e);
        EL_CHECK(e <= NMSE_MAX);
#ifdef EL_CUDA_SIM
        elsim_stats st;
        elsim_stats_get(&st);
        EL_CHECK(st.launches == (pf && el_attn_splits(span) > 1 ? 2u : 1u));
#endif
    }
    /* Bidirectional: rows 0 and 1 of q over keys 0 .. LONG - 1 (2 heads, head_dim 16). */
    enum { BH = 2, BD = 16 };
    const int32_t rs[2] = {0, 0}, rl[2] = {LONG, LONG};
    int32_t *drs = el_test_dev_copy(rs, sizeof rs), *drl = el_test_dev_copy(rl, sizeof rl);
    if (long_ctx) {
        for (int t = 0; t < 2; t++)
            el_cpu_attention_ex(p, want + t * BH * BD, q + t * BH * BD, k, v, att, CTX, 1,
                                LONG - 1, BH, BH, BD, 0, 1.0f / sqrtf((float)BD));
        EL_CHECK_OK(el_cuda_attention_bidir(dout, dq, dk, dv, 2, drs, drl, LONG, BH, BD, NULL));
        el_test_host_copy(got, dout, 2 * BH * BD * 4);
        CHECK_NMSE(got, want, 2 * BH * BD, "attention_bidir (25,000 rows)");
    }
    cudaFree(dq), cudaFree(dout), cudaFree(dpart), cudaFree(dk), cudaFree(dv), cudaFree(dkh);
    cudaFree(dvh), cudaFree(drs), cudaFree(drl);
    free(k), free(v), free(q), free(want), free(got), free(att), free(kh), free(vh);
}

/* Bidirectional attention over three packed sequences (lengths 5, 1, 9), in place as BERT
 * runs it, against the CPU kernel; plus the tanh and embed_add BERT uses. */
/* GGUF 32-block weights (quantized by el_quantize_row, gguf-py's rounding): el_cuda_matmul and
 * el_cuda_embed against f32 math on the CPU's dequantization of the same bytes (the GPU
 * keeps the activations in f32; the CPU's el_cpu_matmul_q quantizes them to 8 bits, so it
 * is not the reference here). nmse bound 1e-9 as for the float weights; in = 320 (10
 * blocks: lanes past the last block idle), n = 1 (decode; prompt batches, n >= 2, take the
 * int8 dp4a kernel: test_kernels_cuda_quant compares it with el_cpu_matmul). */
static void test_matmul_q32(void) {
    static const el_dtype types[] = {EL_DT_Q8_0, EL_DT_Q4_0, EL_DT_Q4_1, EL_DT_Q5_0, EL_DT_Q5_1};
    enum { IN = 320, OUT = 37, NMAX = 11 };
    static float wf[OUT * IN], wd[OUT * IN], x[NMAX * IN], ref[NMAX * OUT], got[NMAX * OUT];
    static float emb[3 * IN], embref[3 * IN];
    static uint8_t wq[OUT * IN * 2];
    const int32_t ids[3] = {5, 0, 36};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const el_dtype dt = types[ti];
        fill(wf, OUT * IN);
        const size_t rb = IN / 32 * el_dtype_block_bytes(dt);
        for (size_t r = 0; r < OUT; r++) {
            el_quantize_row(dt, wf + r * IN, wq + r * rb, IN);
            el_dequantize_row(dt, wq + r * rb, wd + r * IN, IN);
        }
        void *dw = el_test_dev_copy(wq, OUT * rb);
        static const size_t ns[] = {1};
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            const size_t n = ns[k];
            fill(x, n * IN);
            for (size_t t = 0; t < n; t++)
                for (size_t r = 0; r < OUT; r++) {
                    double acc = 0;
                    for (size_t i = 0; i < IN; i++) acc += (double)wd[r * IN + i] * x[t * IN + i];
                    ref[t * OUT + r] = (float)acc;
                }
            void *dx = el_test_dev_copy(x, n * IN * 4), *dy = el_test_dev_copy(NULL, n * OUT * 4);
            EL_CHECK_OK(el_cuda_matmul(dy, OUT, dx, dw, dt, n, IN, OUT, NULL));
            el_test_host_copy(got, dy, n * OUT * 4);
            double e = el_test_nmse(got, ref, n * OUT);
            printf("  matmul %s n=%zu: nmse %.3g\n", el_dtype_name(dt), n, e);
            EL_CHECK(e <= 1e-9);
            cudaFree(dx);
            cudaFree(dy);
        }
        /* embedding rows dequantized on lookup */
        void *dids = el_test_dev_copy(ids, sizeof ids), *de = el_test_dev_copy(NULL, sizeof emb);
        EL_CHECK_OK(el_cuda_embed(de, dw, dt, IN, dids, 3, NULL));
        el_test_host_copy(emb, de, sizeof emb);
        for (int t = 0; t < 3; t++) memcpy(embref + t * IN, wd + (size_t)ids[t] * IN, IN * 4);
        double e = el_test_nmse(emb, embref, 3 * IN);
        printf("  embed %s: nmse %.3g\n", el_dtype_name(dt), e);
        EL_CHECK(e <= 1e-12);
        cudaFree(dids);
        cudaFree(de);
        cudaFree(dw);
    }
}

static void test_bidir(el_pool *p) {
    enum { NH = 3, HD = 20, LD = NH * HD, ROWS = 15, NSEQ = 3 };
    const uint32_t starts[NSEQ] = {0, 5, 6}, lens[NSEQ] = {5, 1, 9};
    static float q[ROWS * LD], k[ROWS * LD], v[ROWS * LD], want[ROWS * LD], got[ROWS * LD];
    static float att[NSEQ * NH * 9];
    fill(q, ROWS * LD), fill(k, ROWS * LD), fill(v, ROWS * LD);
    memcpy(want, q, sizeof q);
    el_cpu_attention_bidir(p, want, want, k, v, LD, starts, lens, NSEQ, NH, HD, att, 9);
    int32_t rs[ROWS], rl[ROWS];
    for (int b = 0; b < NSEQ; b++)
        for (uint32_t t = 0; t < lens[b]; t++) {
            rs[starts[b] + t] = (int32_t)starts[b];
            rl[starts[b] + t] = (int32_t)lens[b];
        }
    float *dq = el_test_dev_copy(q, sizeof q), *dk = el_test_dev_copy(k, sizeof k);
    float *dv = el_test_dev_copy(v, sizeof v);
    int32_t *drs = el_test_dev_copy(rs, sizeof rs), *drl = el_test_dev_copy(rl, sizeof rl);
    EL_CHECK_OK(el_cuda_attention_bidir(dq, dq, dk, dv, ROWS, drs, drl, 9, NH, HD, NULL));
    el_test_host_copy(got, dq, sizeof got);
    CHECK_NMSE(got, want, ROWS * LD, "attention_bidir");
    /* tanh */
    for (int i = 0; i < ROWS * LD; i++) want[i] = tanhf(q[i]);
    float *dt = el_test_dev_copy(q, sizeof q);
    EL_CHECK_OK(el_cuda_tanh(dt, ROWS * LD, NULL));
    el_test_host_copy(got, dt, sizeof got);
    CHECK_NMSE(got, want, ROWS * LD, "tanh");
    /* embed_add: rows of k (as a table) picked by index, added to v */
    int32_t idx[ROWS];
    for (int i = 0; i < ROWS; i++) idx[i] = (i * 7) % ROWS;
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < LD; i++) want[r * LD + i] = v[r * LD + i] + k[idx[r] * LD + i];
    int32_t *didx = el_test_dev_copy(idx, sizeof idx);
    EL_CHECK_OK(el_cuda_embed_add(dv, dk, EL_DT_F32, LD, didx, ROWS, NULL));
    el_test_host_copy(got, dv, sizeof got);
    CHECK_NMSE(got, want, ROWS * LD, "embed_add");
    cudaFree(dq), cudaFree(dk), cudaFree(dv), cudaFree(drs), cudaFree(drl), cudaFree(dt);
    cudaFree(didx);
}

#endif /* EL_HAVE_CUDA */

int main(void) {
#ifndef EL_HAVE_CUDA
    el_test_skip("this build has no CUDA backend (EL_CUDA=OFF or no toolkit)");
#else
    el_gpu_info g;
    el_test_cuda_require("test_kernels_cuda", "CUDA kernels", &g);
    el_pool p;
    EL_CHECK_OK(el_pool_init(&p, 1, EL_ISA_PORTABLE));
#ifdef EL_CUDA_SIM
    EL_CHECK(!strcmp(g.name, ELSIM_DEVICE_NAME));
    const elsim_order orders[] = {ELSIM_REVERSE, ELSIM_FORWARD, ELSIM_RANDOM};
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        elsim_set_order(orders[o], 12345);
        printf("test_kernels_cuda: emulated threads in %s order\n", elsim_order_name(orders[o]));
        int failed = el_test_failed;
#else
    {
        const size_t o = 0; /* a GPU: one run */
#endif
        test_matmul_norms(&p);
        test_linear_parts(&p);
        test_linear_glu(&p);
        test_linear_qkv(o == 0);
        test_elementwise(&p);
        test_embed_rope_attention(&p);
        test_attention_split(&p, o == 0);
        test_bidir(&p);
        test_matmul_q32();
#ifdef EL_CUDA_SIM
        if (el_test_failed != failed)
            fprintf(stderr, "test_kernels_cuda: the failures above are in %s order\n",
                    elsim_order_name(orders[o]));
#endif
    }
    el_pool_deinit(&p);
    EL_CHECK(cudaDeviceSynchronize() == cudaSuccess);
#endif
    return el_test_finish("test_kernels_cuda");
}
