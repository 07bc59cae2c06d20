/* test_cuda_gguf_kquant.c - GGUF files with K-quant weights through the GPU decoder against
 * the CPU. tests/fixtures/gguf/llama_kq_q4_k_m.gguf and llama_kq_q5_k_m.gguf
 * (scripts/fixtures_gguf_kquant.py: a Llama of hidden 256, 2 layers, quantized by llama.cpp's
 * llama-quantize to Q4_K_M: Q4_K + Q6_K, and Q5_K_M: Q5_K + Q6_K; the tied Q6_K embeddings
 * are both the lookup table and the classifier) loaded as stored into host memory (CPU),
 * managed and device memory (GPU). Checked:
 *  - the file really holds Q4_K / Q5_K and Q6_K weights, loaded as such;
 *  - --device auto picks the GPU for it (the K types no longer send it to the CPU);
 *  - prompt logits, GPU against CPU: nmse <= NMSE_KQ (both quantize a prompt's activations
 *    to 8 bits per 256-block, as ggml's Q8_K, and do the same integer sums; the GPU's decode
 *    (n = 1) keeps them in f32), and 24 greedy ids equal (under the sanitizers: 8, device
 *    memory only). Measured 5.6e-5 (Q4_K_M) and 5.9e-5 (Q5_K_M); 7.2e-4 and 9.2e-4 when the
 *    GPU's prompts took f32 activations.
 * Needs a CUDA build and a GPU, or the cudasim build; skips (77) otherwise. */
// ctest-labels: cuda;model
// ctest-timeout: 120
#include "tests/support/el_test.h"
#include "tests/support/el_test_cuda.h"
#include "edgeload_session.h"

#include <stdlib.h>
#include <string.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures/gguf/"
#define GREEDY 24
#ifdef EL_SANITIZED /* 10-20x slower: fewer greedy steps, device memory only */
#define STEPS 8
#define N_MEMS 1
#else
#define STEPS GREEDY
#define N_MEMS 2
#endif
#define NMSE_KQ 3e-4

typedef struct kq_run {
    float *logits; /* [vocab] after the prompt (malloc'd) */
    uint32_t vocab;
    int32_t ids[GREEDY];
} kq_run;

static int32_t argmax(const float *x, uint32_t n) {
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int32_t)i;
    return best;
}

/* Weights as stored, context 64, f32 KV cache; the prompt, then STEPS greedy ids. */
static bool run(const char *path, el_memory mem, const int32_t *prompt, size_t n, kq_run *out) {
    memset(out, 0, sizeof *out);
    el_model *m = NULL;
    el_arena *a = NULL;
    el_session *s = NULL;
    bool ok = false;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    if (!m) return false;
    el_plan_params pp = {64, 1, EL_DT_NONE, 1u << 20, mem, EL_DT_F32};
    el_plan plan;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    a = el_test_arena(&plan, mem);
    if (!a) goto done;
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    el_session_params sp = {1, mem == EL_MEMORY_HOST ? EL_DEVICE_CPU : EL_DEVICE_CUDA, 0, false};
    EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    const float *lg = NULL;
    if (!s || el_session_forward(s, prompt, n, &lg) != EL_OK || !lg) goto done;
    out->vocab = el_session_vocab(s);
    out->logits = malloc(out->vocab * sizeof(float));
    memcpy(out->logits, lg, out->vocab * sizeof(float));
    for (int i = 0; i < STEPS; i++) {
        out->ids[i] = argmax(lg, out->vocab);
        if (i + 1 < STEPS && el_session_forward(s, &out->ids[i], 1, &lg) != EL_OK) goto done;
    }
    ok = true;
done:
    EL_CHECK(ok);
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    return ok;
}

/* Counts the file's tensors of each K type (as stored, and as the plan places them). */
static void check_types(const char *path, el_dtype k4, size_t *nk4, size_t *nq6) {
    el_model *m = NULL;
    *nk4 = *nq6 = 0;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    if (!m) return;
    for (size_t i = 0; i < el_model_tensor_count(m); i++) {
        el_tensor_info t;
        if (el_model_tensor(m, i, &t) != EL_OK) continue;
        *nk4 += t.dtype == k4 && t.loaded_dtype == k4;
        *nq6 += t.dtype == EL_DT_Q6_K && t.loaded_dtype == EL_DT_Q6_K;
    }
    el_device dev = EL_DEVICE_CPU;
    el_memory mem = EL_MEMORY_HOST;
    char why[512] = "";
    EL_CHECK_OK(el_device_resolve_model(m, EL_DEVICE_AUTO, EL_CUDA_MEMORY_AUTO, &dev, &mem, why,
                                        sizeof why));
    fprintf(stderr, "   --device auto: %s\n", why);
    EL_CHECK(dev == EL_DEVICE_CUDA && mem != EL_MEMORY_HOST);
    el_model_close(m);
}

static void compare(const char *file, el_dtype k4) {
    char path[512];
    snprintf(path, sizeof path, FIX "%s", file);
    fprintf(stderr, "== %s\n", file);
    size_t nk4, nq6;
    check_types(path, k4, &nk4, &nq6);
    fprintf(stderr, "   %zu %s and %zu Q6_K matrices\n", nk4, el_dtype_name(k4), nq6);
    EL_CHECK(nk4 >= 10 && nq6 >= 1);
    static const int32_t prompt[] = {1, 17, 42, 5, 99, 3, 200, 64};
    const size_t n = sizeof prompt / sizeof *prompt;
    kq_run cpu;
    if (!run(path, EL_MEMORY_HOST, prompt, n, &cpu)) return;
    const el_memory mems[2] = {EL_MEMORY_CUDA_DEVICE, EL_MEMORY_CUDA_MANAGED};
    for (int k = 0; k < N_MEMS; k++) {
        kq_run gpu;
        if (!run(path, mems[k], prompt, n, &gpu)) continue;
        EL_CHECK(gpu.vocab == cpu.vocab);
        const double e = el_test_nmse(gpu.logits, cpu.logits, cpu.vocab);
        int same = 0;
        while (same < STEPS && gpu.ids[same] == cpu.ids[same]) same++;
        fprintf(stderr, "   %-7s GPU vs CPU logits nmse %.3g, %d of %d greedy ids equal\n",
                el_memory_name(mems[k]), e, same, STEPS);
        EL_CHECK(e <= NMSE_KQ);
        EL_CHECK(same == STEPS);
        free(gpu.logits);
    }
    free(cpu.logits);
}

int main(void) {
    el_test_cuda_require("test_cuda_gguf_kquant", "CUDA forward passes", NULL);
    compare("llama_kq_q4_k_m.gguf", EL_DT_Q4_K);
    compare("llama_kq_q5_k_m.gguf", EL_DT_Q5_K);
    return el_test_finish("test_cuda_gguf_kquant");
}
