/* test_cuda_kvf16.c - the f16 KV cache (--kv-dtype f16) on the CUDA backend, against the
 * CPU's:
 *   - el_cuda_kv_store gives el_fp32_to_fp16's bits (round to nearest even; NaN: a NaN) for
 *     edge values and random bit patterns, and copies an f32 cache exactly;
 *   - el_cuda_attention_kv over an f16 cache against el_cpu_attention_kv over the same
 *     cache, by normalised error (bound 1e-9, as test_kernels_cuda: both widen the same
 *     bits exactly and compute in f32; only summation order differs), with windows and GQA;
 *   - decoders with an f16 cache, GPU (managed and device memory) against CPU: the prompt's
 *     logits by nmse (bound 1e-8, as test_cuda_models) and 16 greedy ids identical, on
 *     stories260K, hf_llama_gqa, hf_llama_qwen2win (sliding layers), hf_llama_gemma3 and
 *     hf_gpt2_small.
 * Needs a CUDA build and a GPU, or the cudasim emulator build; skips saying which is
 * missing otherwise. */
// ctest-labels: cuda;model
// ctest-timeout: 300
#include "tests/llama_fixture.h"

#include "kernels/cpu/cpu.h"
#include "kernels/fp16.h"
#include "platform/gpu.h"

#include <math.h>
#include <string.h>

#ifdef EL_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"

#include <cuda_runtime_api.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures"
#define NMSE_KERNEL 1e-9
#define NMSE_MODEL 1e-8
#define GREEDY 16

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}
static float frand(void) { return (float)((double)(rnd32() >> 8) / 16777216.0) * 2.0f - 1.0f; }

/* Device copies (test-only allocations). */
static void *dev_copy(const void *src, size_t bytes) {
    void *d = NULL;
    if (cudaMalloc(&d, bytes ? bytes : 1) != cudaSuccess) return NULL;
    if (src) cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice);
    return d;
}
static void host_copy(void *dst, const void *d, size_t bytes) {
    cudaDeviceSynchronize();
    cudaMemcpy(dst, d, bytes, cudaMemcpyDeviceToHost);
}

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
    float *dk = dev_copy(k, sizeof k), *dv = dev_copy(v, sizeof v);
    void *hk = dev_copy(NULL, sizeof kh), *hv = dev_copy(NULL, sizeof vh);
    EL_CHECK_OK(el_cuda_kv_store(hk, hv, EL_DT_F16, dk, dv, N, NULL));
    host_copy(kh, hk, sizeof kh);
    host_copy(vh, hv, sizeof vh);
    size_t bad = 0;
    for (size_t i = 0; i < N; i++) {
        uint16_t wk = el_fp32_to_fp16(k[i]);
        bool same = isnan(k[i]) ? (kh[i] & 0x7c00u) == 0x7c00u && (kh[i] & 0x3ffu) : kh[i] == wk;
        bad += !same + (vh[i] != el_fp32_to_fp16(v[i]));
    }
    fprintf(stderr, "   kv_store f16: %zu of %d differ from round-to-nearest-even\n", bad, 2 * N);
    EL_CHECK(bad == 0);
    void *fk = dev_copy(NULL, sizeof k), *fv = dev_copy(NULL, sizeof v);
    EL_CHECK_OK(el_cuda_kv_store(fk, fv, EL_DT_F32, dk, dv, N, NULL));
    host_copy(k2, fk, sizeof k2);
    host_copy(v2, fv, sizeof v2);
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
    float *dq = dev_copy(q, sizeof q), *dout = dev_copy(NULL, sizeof got);
    void *dk = dev_copy(k, sizeof k), *dv = dev_copy(v, sizeof v);
    static const size_t windows[] = {0, 1, 6, CTX + 3};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        el_cpu_attention_kv(p, want, q, k, v, EL_DT_F16, att, CTX, NT, POS0, NH, NKV, HD,
                            windows[w], 0.2f);
        EL_CHECK_OK(el_cuda_attention_kv(dout, dq, dk, dv, EL_DT_F16, NT, POS0, NH, NKV, HD,
                                         windows[w], 0.2f, NULL));
        host_copy(got, dout, sizeof got);
        double e = el_test_nmse(got, want, NT * NH * HD);
        fprintf(stderr, "   attention over an f16 cache, window %zu: nmse %.3g\n", windows[w], e);
        EL_CHECK(e <= NMSE_KERNEL);
    }
    EL_CHECK_STATUS(el_cuda_attention_kv(dout, dq, dk, dv, EL_DT_BF16, NT, POS0, NH, NKV, HD, 0,
                                         0.2f, NULL),
                    EL_E_USAGE);
    cudaFree(dq), cudaFree(dout), cudaFree(dk), cudaFree(dv);
}

typedef struct run_out {
    float *logits; /* [vocab] after the prompt (malloc'd) */
    uint32_t vocab;
    int32_t ids[GREEDY];
} run_out;

static int32_t argmax(const float *x, uint32_t n) {
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int32_t)i;
    return best;
}

/* Open, plan with an f16 cache in mem, load, the prompt, then GREEDY greedy ids. */
static bool run(const char *path, el_memory mem, const int32_t *prompt, size_t n_prompt,
                run_out *out) {
    memset(out, 0, sizeof *out);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    if (!m) return false;
    el_plan_params pp = {64, 1, EL_DT_NONE, 64 * 1024, mem, EL_DT_F16};
    el_plan plan;
    el_arena *a = NULL;
    el_session *s = NULL;
    bool ok = false;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_arena_params ap;
    el_plan_arena_params(&plan, plan.total_bytes, 0, &ap);
    ap.memory = mem;
    EL_CHECK_OK(el_arena_init(&a, &ap));
    if (!a) goto done;
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    el_session_params sp = {1, mem == EL_MEMORY_HOST ? EL_DEVICE_CPU : EL_DEVICE_CUDA, 0};
    EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    if (!s) goto done;
    const float *lg = NULL;
    EL_CHECK_OK(el_session_forward(s, prompt, n_prompt, &lg));
    if (!lg) goto done;
    out->vocab = el_session_vocab(s);
    out->logits = malloc(out->vocab * sizeof(float));
    memcpy(out->logits, lg, out->vocab * sizeof(float));
    for (int i = 0; i < GREEDY; i++) {
        out->ids[i] = argmax(lg, out->vocab);
        if (i + 1 < GREEDY && el_session_forward(s, &out->ids[i], 1, &lg) != EL_OK) goto done;
    }
    ok = true;
done:
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    return ok;
}

static void compare(const char *what, const char *path, const int32_t *prompt, size_t n,
                    int n_mem) {
    run_out cpu;
    fprintf(stderr, "== %s, f16 KV cache\n", what);
    if (!run(path, EL_MEMORY_HOST, prompt, n, &cpu)) return;
    const el_memory mems[2] = {EL_MEMORY_CUDA_MANAGED, EL_MEMORY_CUDA_DEVICE};
    for (int k = 0; k < n_mem; k++) {
        run_out g;
        if (!run(path, mems[k], prompt, n, &g)) continue;
        double e = el_test_nmse(g.logits, cpu.logits, cpu.vocab);
        bool same = !memcmp(g.ids, cpu.ids, sizeof g.ids);
        fprintf(stderr, "   %-7s nmse %.3g against the CPU, %d greedy ids %s\n",
                el_memory_name(mems[k]), e, GREEDY, same ? "equal" : "DIFFER");
        EL_CHECK(g.vocab == cpu.vocab && e <= NMSE_MODEL && same);
        free(g.logits);
    }
    free(cpu.logits);
}
#endif

int main(void) {
#ifndef EL_HAVE_CUDA
    el_test_skip("this build has no CUDA backend (configure with -DEL_CUDA=ON, or "
                 "-DEL_CUDA_SIM=ON for the emulator)");
#else
    int n = 0;
    if (el_gpu_count(&n) != EL_OK || n == 0)
        el_test_skip("the CUDA f16 KV cache is compiled but not run: %s",
                     n == 0 ? "no CUDA device" : el_last_error());
    el_gpu_info g;
    EL_CHECK_OK(el_gpu_info_get(0, &g));
    fprintf(stderr, "GPU 0: %s (sm_%d%d)\n", g.name, g.cc_major, g.cc_minor);
    fixture_require_stories();
    el_pool p;
    EL_CHECK_OK(el_pool_init(&p, 1, EL_ISA_PORTABLE));
    check_store();
    check_attention(&p);
    el_pool_deinit(&p);
    static const int32_t stories[] = {1, 403, 407, 261, 378, 261, 365, 281};
    compare("stories260K", STORIES_BIN, stories, sizeof stories / sizeof *stories, 2);
    static const int32_t llama[] = {1, 17, 42, 5, 99, 3};
    static const char *const dirs[] = {"hf_llama_gqa", "hf_llama_qwen2win", "hf_llama_gemma3"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", FIX, dirs[i]);
        compare(dirs[i], path, llama, sizeof llama / sizeof *llama, 1);
    }
    static const int32_t gpt2s[] = {5, 77, 3, 120, 9};
    compare("hf_gpt2_small", FIX "/hf_gpt2_small", gpt2s, sizeof gpt2s / sizeof *gpt2s, 1);
#endif
    return el_test_finish("test_cuda_kvf16");
}
