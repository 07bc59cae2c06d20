/* test_cuda_kvf16.c - the f16 KV cache (--kv-dtype f16) on the CUDA backend, against the
 * CPU's:
 *   - el_cuda_kv_store gives el_fp32_to_fp16's bits (round to nearest even; NaN: a NaN) for
 *     edge values and random bit patterns, and copies an f32 cache exactly;
 *   - el_cuda_attention_kv over an f16 cache against el_cpu_attention_kv over the same
 *     cache, by normalised error (bound 1e-9, as test_kernels_cuda: both widen the same
 *     bits exactly and compute in f32; only summation order differs), with windows and GQA.
 * The decoders with an f16 cache, GPU against CPU, are in test_cuda_models.c.
 * Needs a CUDA build and a GPU, or the cudasim emulator build; skips saying which is
 * missing otherwise. */
// ctest-labels: cuda;kernels
// ctest-timeout: 60
#include "tests/support/el_test.h"
#include "tests/support/el_test_cuda.h"

#include "kernels/cpu/cpu.h"
#include "kernels/fp16.h"

#include <math.h>
#include <string.h>

#ifdef EL_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"

#include <cuda_runtime_api.h>

#define NMSE_KERNEL 1e-9

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd32(void) { return (uint32_t)(el_test_xorshift64(&g_rng) >> 32); }
static float frand(void) { return el_test_frand(&g_rng); }

static void check_store(void) {
    enum { N = 20011 }; /* odd: the grid-stride tail */
    static float k[N], v[N], k2[N], v2[N];
    static uint16_t kh[N], vh[N];
    static const float edge[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -1e9f,
                                 6.0975552e-05f, 5.9604645e-08f, 2.9802322e-08f,
                                 2.9802326e-08f, 1.0004883f, 1.0014648f, INFINITY, NAN};
    for (size_t i = 0; i < N; i++) {
        uint32_t b = rnd32();
        memcpy(&k[i], &b, 4);
        v[i] = frand() * 100.0f;
    }
    memcpy(k, edge, sizeof edge);
    float *dk = el_test_dev_copy(k, sizeof k), *dv = el_test_dev_copy(v, sizeof v);
    void *hk = el_test_dev_copy(NULL, sizeof kh), *hv = el_test_dev_copy(NULL, sizeof vh);
    EL_CHECK_OK(el_cuda_kv_store(hk, hv, EL_DT_F16, dk, dv, N, NULL));
    el_test_host_copy(kh, hk, sizeof kh);
    el_test_host_copy(vh, hv, sizeof vh);
    size_t bad = 0;
    for (size_t i = 0; i < N; i++) {
        uint16_t wk = el_fp32_to_fp16(k[i]);
        bool same = isnan(k[i]) ? (kh[i] & 0x7c00u) == 0x7c00u && (kh[i] & 0x3ffu) : kh[i] == wk;
        bad += !same + (vh[i] != el_fp32_to_fp16(v[i]));
    }
    fprintf(stderr, "   kv_store f16: %zu of %d differ from round-to-nearest-even\n", bad, 2 * N);
    EL_CHECK(bad == 0);
    void *fk = el_test_dev_copy(NULL, sizeof k), *fv = el_test_dev_copy(NULL, sizeof v);
    EL_CHECK_OK(el_cuda_kv_store(fk, fv, EL_DT_F32, dk, dv, N, NULL));
    el_test_host_copy(k2, fk, sizeof k2);
    el_test_host_copy(v2, fv, sizeof v2);
    EL_CHECK(memcmp(k2, k, sizeof k) == 0 && memcmp(v2, v, sizeof v) == 0);
    EL_CHECK_STATUS(el_cuda_kv_store(fk, fv, EL_DT_BF16, dk, dv, N, NULL), EL_E_USAGE);
    cudaFree(dk), cudaFree(dv), cudaFree(hk), cudaFree(hv), cudaFree(fk), cudaFree(fv);
}

static void check_attention(el_pool *p) {
    enum { NT = 3, POS0 = 29, NH = 4, NKV = 2, HD = 40, CTX = POS0 + NT };
    static float q[NT * NH * HD], want[NT * NH * HD], got[NT * NH * HD], att[NH * CTX];
    static uint16_t k[CTX * NKV * HD], v[CTX * NKV * HD];
    for (size_t i = 0; i < NT * NH * HD; i++) q[i] = frand();
    for (size_t i = 0; i < CTX * NKV * HD; i++) {
        k[i] = el_fp32_to_fp16(frand() * 2.0f);
        v[i] = el_fp32_to_fp16(frand());
    }
    float *dq = el_test_dev_copy(q, sizeof q), *dout = el_test_dev_copy(NULL, sizeof got);
    void *dk = el_test_dev_copy(k, sizeof k), *dv = el_test_dev_copy(v, sizeof v);
    static const size_t windows[] = {0, 1, 6, CTX + 3};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        el_cpu_attention_kv(p, want, q, k, v, EL_DT_F16, att, CTX, NT, POS0, NH, NKV, HD,
                            windows[w], 0.2f);
        EL_CHECK_OK(el_cuda_attention_kv(dout, dq, dk, dv, EL_DT_F16, NT, POS0, NH, NKV, HD,
                                         windows[w], 0.2f, NULL, 0, NULL));
        el_test_host_copy(got, dout, sizeof got);
        double e = el_test_nmse(got, want, NT * NH * HD);
        fprintf(stderr, "   attention over an f16 cache, window %zu: nmse %.3g\n", windows[w], e);
        EL_CHECK(e <= NMSE_KERNEL);
    }
    EL_CHECK_STATUS(el_cuda_attention_kv(dout, dq, dk, dv, EL_DT_BF16, NT, POS0, NH, NKV, HD, 0,
                                         0.2f, NULL, 0, NULL),
                    EL_E_USAGE);
    cudaFree(dq), cudaFree(dout), cudaFree(dk), cudaFree(dv);
}

#endif

int main(void) {
#ifndef EL_HAVE_CUDA
    el_test_skip("this build has no CUDA backend (configure with -DEL_CUDA=ON, or "
                 "-DEL_CUDA_SIM=ON for the emulator)");
#else
    el_test_cuda_require("test_cuda_kvf16", "CUDA f16 KV cache kernels", NULL);
    el_pool p;
    EL_CHECK_OK(el_pool_init(&p, 1, EL_ISA_PORTABLE));
    check_store();
    check_attention(&p);
    el_pool_deinit(&p);
#endif
    return el_test_finish("test_cuda_kvf16");
}
