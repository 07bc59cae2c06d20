/* test_gguf_real.c - the real GGUF models from PyPI (scripts/fetch_gguf.sh puts them in
 * .cache/gguf, or $EL_GGUF_DIR) against llama.cpp: for every prompt recorded by
 * scripts/ref_gguf_llamacpp.py (tests/fixtures/gguf_real/<model>.json: plain text, code,
 * a ChatML and a Gemma conversation with special tokens, non-ASCII), the prompt ids equal
 * llama-tokenize's and 32 greedy tokens give llama-simple's text (at least the recorded
 * number of prompts: see the floor below; a prompt agrees when edgeload's text equals the
 * text of either llama.cpp build recorded, AVX2 or AVX-512, which differ themselves; with the
 * ggml numerics and an f16 cache: that build's text, each build modelled), with an
 * f32 and with an f16 KV cache, each with the exact and the ggml numerics (a GGUF's
 * default, checked); the per-prompt agreement is printed (=/x); peak RSS (VmHWM, reset before each model) within the plan's
 * total + 4 MiB, tokenizer included (issue 17/18; not under the sanitizers). Skips, loudly,
 * when a model file is absent (CI fetches them). */
// ctest-labels: model;real
// ctest-timeout: 900
#include "tests/support/el_test.h"

#include "kernels/cpu/cpu.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Under the sanitizers (10-20x slower) only the first prompt of each model runs. */
#if defined(__SANITIZE_ADDRESS__)
#define EL_REAL_CASES 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EL_REAL_CASES 1
#endif
#endif
#ifndef EL_REAL_CASES
#define EL_REAL_CASES 1000
#define EL_REAL_RSS_CHECK 1 /* (sanitizer runtimes hold their own memory) */
#else
#define EL_REAL_RSS_CHECK 0
#endif

/* Resets VmHWM to the current RSS (Linux: "5" to clear_refs); false if it cannot. */
static bool reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

typedef struct text_buf {
    char s[8192];
    size_t n;
} text_buf;

static bool on_token(void *u, int32_t id, const char *piece, size_t len) {
    text_buf *t = u;
    (void)id;
    if (t->n + len < sizeof t->s) {
        memcpy(t->s + t->n, piece, len);
        t->n += len;
    }
    return true;
}

/* Runs every recorded case of ref (name.json) on model; false when the model is absent.
 * build: 0 = a text agrees when it equals either build's; 8 / 16 = the ggml numerics model
 * llama.cpp's AVX2 / AVX-512 build (el_cpu_ggml_width_force) and a text agrees only when it
 * equals that build's (text / text_alt). */
static bool run_model(const char *dir, const char *file, const char *name, const char *arena,
                      int text_floor, el_dtype kv, el_numerics nu, unsigned build) {
    char path[1200], ref_path[600];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct stat st;
    if (stat(path, &st)) {
        fprintf(stderr, "!! %s is absent: run scripts/fetch_gguf.sh (CI does)\n", path);
        return false;
    }
    snprintf(ref_path, sizeof ref_path, "%s/tests/fixtures/gguf_real/%s.json", EL_SOURCE_DIR,
             name);
    char *text = el_test_read_file(ref_path, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    if (!ref) return true;
    bool hwm_reset = reset_hwm();
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    el_plan plan;
    el_plan_params pp = {256, 1, EL_DT_NONE, 4u << 20, EL_MEMORY_HOST, kv};
    if (m) EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_arena_params ap;
    uint64_t bytes = 0;
    el_size_parse(arena, &bytes);
    el_plan_arena_params(&plan, bytes > plan.total_bytes ? bytes : plan.total_bytes, 0, &ap);
    el_arena *a = NULL;
    if (m) EL_CHECK_OK(el_arena_init(&a, &ap));
    el_session *s = NULL;
    if (a) EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    el_session_params sp = {2, EL_DEVICE_CPU, 0, false};
    if (a) EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    if (s) EL_CHECK(el_session_numerics(s) == EL_NUMERICS_EXACT); /* the default (auto) */
    if (s) EL_CHECK_OK(el_session_set_numerics(s, nu));
    int n_ids_ok = 0, n_text_ok = 0, n = 0;
    char marks[64] = ""; /* per prompt: '=' same text as llama.cpp, 'x' not */
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        if (!s || n >= EL_REAL_CASES) break;
        const char *prompt = cJSON_GetObjectItem(c, "prompt")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        int32_t ids[512];
        size_t k = 0;
        EL_CHECK_OK(el_tokenize(m, prompt, strlen(prompt), true, ids, 512, &k));
        bool same = (int)k == cJSON_GetArraySize(want);
        for (size_t i = 0; same && i < k; i++)
            same = cJSON_GetArrayItem(want, (int)i)->valueint == ids[i];
        n_ids_ok += same;
        if (!same) fprintf(stderr, "   %s: ids differ for %.40s...\n", name, prompt);
        text_buf *t = calloc(1, sizeof *t);
        el_gen_stats gs;
        EL_CHECK_OK(el_generate(s, prompt, 32, NULL, on_token, t, &gs));
        const char *wt = cJSON_GetObjectItem(c, "text")->valuestring;
        const cJSON *alt = cJSON_GetObjectItem(c, "text_alt");
        const char *wa = cJSON_IsString(alt) ? alt->valuestring : NULL;
        if (build == 16 && wa) wt = wa; /* the AVX-512 build's text */
        if (build) wa = NULL;
        bool tsame = (t->n == strlen(wt) && !memcmp(t->s, wt, t->n)) ||
                     (wa && t->n == strlen(wa) && !memcmp(t->s, wa, t->n));
        n_text_ok += tsame;
        if (n < (int)sizeof marks - 1) marks[n] = tsame ? '=' : 'x', marks[n + 1] = 0;
        if (!tsame)
            fprintf(stderr, "   %s: text differs for %.40s...\n     got  %.*s\n     want %s\n",
                    name, prompt, (int)t->n, t->s, wt);
        free(t);
        n++;
    }
    uint64_t hwm = el_test_vmhwm();
    fprintf(stderr, "-- %s, %s KV cache, %s numerics%s: prompt ids equal llama.cpp's in %d of "
            "%d prompts, greedy text in %d of %d (%s); peak RSS %.1f MiB for an arena of %.1f "
            "MiB (plan %.1f MiB, tokenizer region %.1f MiB)%s\n", name,
            kv == EL_DT_F16 ? "f16" : "f32", el_numerics_name(nu),
            build == 8 ? " (AVX2 build's)" : build == 16 ? " (AVX-512 build's)" : "",
            n_ids_ok, n, n_text_ok, n, marks, hwm / 1048576.0, ap.size / 1048576.0,
            plan.total_bytes / 1048576.0, plan.region_bytes[EL_REGION_TOKENIZER] / 1048576.0,
            hwm_reset ? "" : " (VmHWM could not be reset: not checked)");
    /* Peak RSS within the plan + 4 MiB (binary, libc, the test's own buffers). */
    if (EL_REAL_RSS_CHECK && hwm_reset) {
        EL_CHECK(hwm <= plan.total_bytes + (4ull << 20));
        EL_CHECK(plan.region_bytes[EL_REGION_TOKENIZER] > 0);
    }
    /* Every prompt's ids equal llama.cpp's. The greedy text: with --numerics ggml and the
     * f16 cache (llama.cpp's defaults) SmolLM2's and Gemma 3's logits are llama.cpp's bit
     * for bit, so all six texts must agree; elsewhere a text agrees only where no near tie meets a rounding
     * difference: one differing bit anywhere (a sum in another order) flips an activation's
     * 8-bit rounding in some later matrix product, after which the two runs' rounding noise
     * is unrelated. Those counts are draws from the f32 rounding (scaling every block-type
     * output by one ulp moved them between 1 and 5 of 6), so their floor is 1: garbage text
     * (a broken kernel or tokenizer) still fails (docs/GGUF.md "The real models"). */
    /* A floor of 6 is the bit-exact claim: every prompt run must agree, also in the
     * sanitizers' one-prompt debug build (it does: measured). The draws' floors hold for the
     * full run only: a debug build's own rounding is another draw. */
    const int need = text_floor >= 6 ? n : EL_REAL_CASES < 1000 ? 0 : text_floor;
    EL_CHECK(n > 0 && n_ids_ok == n && n_text_ok >= need);
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    cJSON_Delete(ref);
    return true;
}

int main(void) {
    const char *env = getenv("EL_GGUF_DIR");
    const char *dir = env && *env ? env : EL_SOURCE_DIR "/.cache/gguf";
    /* Both KV caches: llama.cpp's references were made with its default, an f16 cache. */
    bool any = false;
    /* Floors: greedy texts equal to llama.cpp's per model for {f32, f16} cache x {exact,
     * ggml} numerics (see run_model). The ggml numerics sum as llama.cpp's AVX-512 build
     * (which made text_alt) on a CPU with AVX-512, as its AVX2 build (text) otherwise. With
     * the f16 cache both models are bit-exact (Gemma 3's Q4_K / Q6_K products in llama.cpp's
     * repacked, tiled and vec_dot orders, kernels/cpu/matmul_qk_ggml.c; its last layer's FFN
     * on one token as in llama.cpp's graph): that case runs twice, modelling each build on
     * this CPU (el_cpu_ggml_width_force: the sums' lanes, SwiGLU's exp polynomial), and
     * must give that build's own text on every prompt (the two builds' texts differ on 1 of
     * SmolLM2's prompts and 2 of Gemma's). */
    static const struct {
        el_dtype kv;
        el_numerics nu;
        unsigned build;
        int floor_smollm, floor_gemma;
    } runs[] = {
        {EL_DT_F32, EL_NUMERICS_EXACT, 0, 1, 1}, {EL_DT_F16, EL_NUMERICS_EXACT, 0, 1, 1},
        {EL_DT_F32, EL_NUMERICS_GGML, 0, 1, 1},  {EL_DT_F16, EL_NUMERICS_GGML, 8, 6, 6},
        {EL_DT_F16, EL_NUMERICS_GGML, 16, 6, 6},
    };
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
        el_cpu_ggml_width_force = runs[k].build;
        any |= run_model(dir, "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2_q4_1", "120M",
                         runs[k].floor_smollm, runs[k].kv, runs[k].nu, runs[k].build);
        any |= run_model(dir, "gemma-3-270m-q4_k_m.gguf", "gemma3_270m_q4_k_m", "300M",
                         runs[k].floor_gemma, runs[k].kv, runs[k].nu, runs[k].build);
    }
    el_cpu_ggml_width_force = 0;
    if (!any) el_test_skip("no real GGUF model in %s: run scripts/fetch_gguf.sh", dir);
    return el_test_finish("test_gguf_real");
}
