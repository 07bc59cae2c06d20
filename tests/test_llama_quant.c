/* test_llama_quant.c - a Llama-shaped model quantized on load: the hf_llama_gqa fixture
 * (f32, made by transformers) loaded with --dtype q8_0 / q4_0 / q4_1 / q5_0 / q5_1, logits at
 * every prompt position against
 *  - transformers on the same weights quantized and dequantized by gguf-py
 *    (tests/fixtures/quant/hf_llama_gqa_logits_<type>.bin): only our 8-bit activations
 *    differ, so the bound is tight;
 *  - transformers' f32 logits (logits_f32.bin): the quantization of the weights themselves,
 *    large in a 64-wide random model (the weights-only reference is as far from f32).
 * Then the five 32-block types and the Q4_K_M and Q5_K_M GGUFs (Q6_K too) with and without the
 * CPU's 8-row tiles: the same bits (test_tiles).
 * Skipped (77) while the forward passes refuse block-type weights. */
// ctest-labels: llama;model
// ctest-timeout: 60
#include "kernels/cpu/cpu.h"
#include "tests/support/el_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIR EL_SOURCE_DIR "/tests/fixtures/hf_llama_gqa"

/* Bounds, about 2x what we measure (docs/QUANT.md): mean KL over the prompt positions and
 * max |logit diff| (|logits| <= 10 in this model) against the quantized reference (q_*) and
 * against f32 (f_*). */
typedef struct bound {
    el_dtype dt;
    const char *file;
    double q_kl, q_maxdiff, f_kl, f_maxdiff;
} bound;
#define Q8_0_BOUNDS 1.5e-3, 0.35, 3e-3, 0.5 /* measured 7.1e-4, 0.16; 1.4e-3, 0.26 */
#define Q5_0_BOUNDS 1.5e-3, 0.4, 7e-2, 3.0  /* measured 6.8e-4, 0.19; 3.3e-2, 1.41 */
#define Q5_1_BOUNDS 1.5e-3, 0.35, 5e-2, 3.0 /* measured 5.2e-4, 0.15; 2.3e-2, 1.36 */
#define Q4_0_BOUNDS 1e-3, 0.35, 0.3, 6.5    /* measured 4.1e-4, 0.16; 1.5e-1, 3.22 */
#define Q4_1_BOUNDS 1.2e-3, 0.35, 0.22, 6.0 /* measured 5.5e-4, 0.17; 1.1e-1, 3.06 */
#define QDIR EL_SOURCE_DIR "/tests/fixtures/quant/hf_llama_gqa_logits_"
static const bound k_bounds[] = {
    {EL_DT_Q8_0, QDIR "q8_0.bin", Q8_0_BOUNDS}, {EL_DT_Q5_0, QDIR "q5_0.bin", Q5_0_BOUNDS},
    {EL_DT_Q5_1, QDIR "q5_1.bin", Q5_1_BOUNDS}, {EL_DT_Q4_0, QDIR "q4_0.bin", Q4_0_BOUNDS},
    {EL_DT_Q4_1, QDIR "q4_1.bin", Q4_1_BOUNDS},
};

static double kl_softmax(const float *p_logits, const float *q_logits, size_t n) {
    double mp = -INFINITY, mq = -INFINITY, zp = 0, zq = 0, kl = 0;
    for (size_t i = 0; i < n; i++) {
        if (p_logits[i] > mp) mp = p_logits[i];
        if (q_logits[i] > mq) mq = q_logits[i];
    }
    for (size_t i = 0; i < n; i++) {
        zp += exp(p_logits[i] - mp);
        zq += exp(q_logits[i] - mq);
    }
    for (size_t i = 0; i < n; i++) {
        double lp = p_logits[i] - mp - log(zp), lq = q_logits[i] - mq - log(zq);
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

/* path (DIR: quantized on load to dt; a GGUF file: dt EL_DT_NONE) in a host arena (*a,
 * planned into *plan). */
static el_model *load_q(const char *path, el_dtype dt, el_plan *plan, el_arena **a) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    el_plan_params pp = {0, 1, dt, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_plan_make(m, &pp, plan));
    *a = el_test_arena(plan, EL_MEMORY_HOST);
    EL_CHECK_OK(el_model_load(m, plan, *a, NULL, NULL));
    return m;
}

/* The CPU's 8-row tiles (el_tensor_info.cpu_tiles, EL_CPU_TILES): a model loaded with tiles
 * (the default) and without, the same logits bit for bit at every position (decode), for the
 * whole prompt in one batch (the tile GEMM) and with --numerics ggml (the one-row kernels on
 * rows copied back); its Q matrices tiled where the CPU has the tile kernels, none with
 * EL_CPU_TILES=0. */
static void run_tiles(const char *path, el_dtype dt, const int32_t *ids, size_t P, size_t V,
                      bool tiles, float *dec, float *batch, float *ggml, size_t *tiled,
                      size_t *tileable) {
    setenv("EL_CPU_TILES", tiles ? "1" : "0", 1);
    el_plan plan;
    el_arena *a = NULL;
    el_model *m = load_q(path, dt, &plan, &a);
    el_session_params sp = {2, EL_DEVICE_CPU, 0, false};
    el_session *s = NULL;
    EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    EL_CHECK(s && el_session_vocab(s) == V);
    *tiled = *tileable = 0;
    for (size_t i = 0; i < el_model_tensor_count(m); i++) {
        el_tensor_info t;
        EL_CHECK_OK(el_model_tensor(m, i, &t));
        *tiled += t.cpu_tiles;
        *tileable += el_dtype_block(t.loaded_dtype) > 1 && t.ndim == 2 && t.shape[0] % 8 == 0;
    }
    const float *lg = NULL;
    for (size_t i = 0; s && i < P; i++) {
        EL_CHECK_OK(el_session_forward(s, &ids[i], 1, &lg));
        if (lg) memcpy(dec + i * V, lg, V * 4);
    }
    el_session_reset(s);
    EL_CHECK_OK(el_session_forward(s, ids, P, &lg));
    if (lg) memcpy(batch, lg, V * 4);
    el_session_reset(s);
    EL_CHECK_OK(el_session_set_numerics(s, EL_NUMERICS_GGML));
    EL_CHECK_OK(el_session_forward(s, ids, P, &lg));
    if (lg) memcpy(ggml, lg, V * 4);
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    unsetenv("EL_CPU_TILES");
}

/* The 32-block types quantized on load, and the Q4_K_M and Q5_K_M GGUF fixtures (Q4_K / Q5_K
 * and Q6_K; vocab 256: the ids taken mod 256). */
static void test_tiles(const int32_t *ids_in, size_t P, size_t V_in) {
    const struct { const char *path; el_dtype dt; const char *name; } k[] = {
        {DIR, EL_DT_Q8_0, "Q8_0"}, {DIR, EL_DT_Q4_0, "Q4_0"}, {DIR, EL_DT_Q4_1, "Q4_1"},
        {DIR, EL_DT_Q5_0, "Q5_0"}, {DIR, EL_DT_Q5_1, "Q5_1"},
        {EL_SOURCE_DIR "/tests/fixtures/gguf/llama_kq_q4_k_m.gguf", EL_DT_NONE, "Q4_K_M GGUF"},
        {EL_SOURCE_DIR "/tests/fixtures/gguf/llama_kq_q5_k_m.gguf", EL_DT_NONE, "Q5_K_M GGUF"}};
    int32_t ids[64];
    for (size_t d = 0; d < sizeof k / sizeof *k; d++) {
        const size_t V = k[d].dt == EL_DT_NONE ? 256 : V_in;
        for (size_t i = 0; i < P; i++) ids[i] = (int32_t)((size_t)ids_in[i] % V);
        float *r[2][3];
        size_t tiled[2], tileable = 0;
        for (int t = 0; t < 2; t++) {
            r[t][0] = calloc(P * V, 4), r[t][1] = calloc(V, 4), r[t][2] = calloc(V, 4);
            run_tiles(k[d].path, k[d].dt, ids, P, V, t == 1, r[t][0], r[t][1], r[t][2],
                      &tiled[t], &tileable);
        }
        const bool same = !memcmp(r[0][0], r[1][0], P * V * 4) &&
                          !memcmp(r[0][1], r[1][1], V * 4) && !memcmp(r[0][2], r[1][2], V * 4);
        fprintf(stderr, "%s: %zu matrices in 8-row tiles (%zu with EL_CPU_TILES=0), logits %s\n",
                k[d].name, tiled[1], tiled[0], same ? "bit-identical" : "DIFFER");
        EL_CHECK(same);
        EL_CHECK(tiled[0] == 0);
#if defined(__x86_64__)
        /* every block-type matrix of whole tiles (each type has its tile kernels) */
        if (el_cpu_isa_best() == EL_ISA_AVX2) EL_CHECK(tiled[1] > 0 && tiled[1] == tileable);
#endif
        for (int t = 0; t < 2; t++) free(r[t][0]), free(r[t][1]), free(r[t][2]);
    }
}

int main(void) {
    size_t jl = 0, ll = 0;
    char *js = el_test_read_file(DIR "/reference.json", &jl);
    float *want = (float *)el_test_read_file(DIR "/logits_f32.bin", &ll);
    cJSON *j = js ? cJSON_Parse(js) : NULL;
    EL_CHECK(j != NULL && want != NULL);
    if (!j || !want) return el_test_finish("test_llama_quant");
    const size_t V = (size_t)cJSON_GetObjectItem(j, "vocab_size")->valuedouble;
    const cJSON *pid = cJSON_GetObjectItem(j, "prompt_ids");
    int32_t ids[64];
    size_t P = 0;
    for (const cJSON *c = pid ? pid->child : NULL; c && P < 64; c = c->next) ids[P++] = (int32_t)c->valuedouble;
    EL_CHECK(P > 0 && ll == P * V * 4);

    for (size_t b = 0; b < sizeof k_bounds / sizeof k_bounds[0] && ll == P * V * 4; b++) {
        const bound *bd = &k_bounds[b];
        el_plan plan;
        el_arena *a = NULL;
        el_model *m = load_q(DIR, bd->dt, &plan, &a);
        el_session_params sp = {1, EL_DEVICE_CPU, 0, false};
        el_session *s = NULL;
        el_status st = el_session_init(m, a, &plan, &sp, &s);
        if (st == EL_E_UNSUPPORTED) {
            fprintf(stderr, "%s\n", el_last_error());
            el_arena_deinit(a);
            el_model_close(m);
            free(js);
            free(want);
            cJSON_Delete(j);
            el_test_skip("the llama forward pass does not take %s weights yet",
                         el_dtype_name(bd->dt));
        }
        EL_CHECK_OK(st);
        size_t ql = 0;
        float *qref = (float *)el_test_read_file(bd->file, &ql);
        EL_CHECK(qref && ql == P * V * 4);
        double kl[2] = {0, 0}, maxd[2] = {0, 0};
        size_t top1[2] = {0, 0};
        for (size_t i = 0; s && qref && ql == P * V * 4 && i < P; i++) {
            const float *lg = NULL;
            EL_CHECK_OK(el_session_forward(s, &ids[i], 1, &lg));
            if (!lg) break;
            for (int r = 0; r < 2; r++) {
                const float *w = (r ? want : qref) + i * V;
                kl[r] += kl_softmax(w, lg, V) / (double)P;
                top1[r] += el_test_argmax(w, V) == el_test_argmax(lg, V);
                for (size_t v = 0; v < V; v++)
                    if (fabs((double)lg[v] - w[v]) > maxd[r]) maxd[r] = fabs((double)lg[v] - w[v]);
            }
        }
        fprintf(stderr, "%s vs gguf-py-quantized weights in transformers: mean KL %.2e (bound "
                "%.1e), max |diff| %.3f (bound %.2f), top-1 %zu/%zu\n", el_dtype_name(bd->dt),
                kl[0], bd->q_kl, maxd[0], bd->q_maxdiff, top1[0], P);
        fprintf(stderr, "%s vs f32: mean KL %.2e (bound %.1e), max |diff| %.3f (bound %.2f), "
                "top-1 %zu/%zu\n", el_dtype_name(bd->dt), kl[1], bd->f_kl, maxd[1],
                bd->f_maxdiff, top1[1], P);
        EL_CHECK(kl[0] <= bd->q_kl && maxd[0] <= bd->q_maxdiff && top1[0] == P);
        EL_CHECK(kl[1] <= bd->f_kl && maxd[1] <= bd->f_maxdiff);
        free(qref);
        el_session_deinit(s);
        el_arena_deinit(a);
        el_model_close(m);
    }
    if (P > 0 && ll == P * V * 4) test_tiles(ids, P, V);
    free(js);
    free(want);
    cJSON_Delete(j);
    return el_test_finish("test_llama_quant");
}
